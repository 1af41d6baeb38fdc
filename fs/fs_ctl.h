/*
 * fs_ctl.h — the content of the store-wide control files: `@compact`,
 * `@stats` and the `@snapshot` stream (fs_ctl.c).  Rows of the special
 * table (fs_special.c) point at the callbacks; `@snapshot` is a stream, so
 * fs_file.c asks fs_ctl_is_snapshot() at open and serves its reads here.
 */
#ifndef REVFS_FS_CTL_H
#define REVFS_FS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "engine/snapshot.h"

struct fs;

int fs_ctl_compact_read(struct fs *fs, const char *dir, size_t dir_len,
                        eng_rev_t rev, char **buf, size_t *len);
int fs_ctl_compact_write(struct fs *fs, const char *buf, size_t len);
int fs_ctl_stats_read(struct fs *fs, const char *dir, size_t dir_len,
                      eng_rev_t rev, char **buf, size_t *len);

/* Is the special-table row `idx` the @snapshot stream? */
bool fs_ctl_is_snapshot(int idx);
/* Start a snapshot stream at open.  0 or -errno. */
int fs_ctl_snapshot_open(struct fs *fs, eng_snapshot_stream **out);
/* Up to size bytes at off: the count (0 at the end) or -errno. */
ssize_t fs_ctl_snapshot_read(eng_snapshot_stream *s, char *buf, size_t size,
                             off_t off);

#endif /* REVFS_FS_CTL_H */
