/*
 * fs.h — the FUSE view of the engine, as the daemon sees it: create the
 * filesystem state over an open engine, hand its low-level operations to a
 * session, start and stop its invalidation thread.
 */
#ifndef REVFS_FS_H
#define REVFS_FS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <stdbool.h>
#include <sys/types.h>

#include "engine/engine.h"

struct fs_config {
	const char *prefix;  /* the mount root's key prefix ("" or "x/") */
	double attr_timeout; /* entry/attr cache timeout, seconds */
	size_t max_value;    /* a write past it fails EFBIG */
	bool read_only;
	uid_t uid; /* owner shown for every file */
	gid_t gid;
	const char *mountpoint; /* absolute; for the inotify replay */
};

struct fs;

/*
 * Log sink for fs/ (level as the engine's); NULL drops messages.  Only
 * messages at `max` or more severe are formatted and passed to it (the
 * sink's own threshold: a negative lookup's debug line then costs
 * nothing).
 */
void fs_set_log_sink(void (*sink)(enum eng_log_level level, const char *msg),
                     enum eng_log_level max);

/* Returns 0 or -errno. */
int fs_new(eng *e, const struct fs_config *cfg, struct fs **out);
void fs_free(struct fs *fs);

/* The operations table to pass to fuse_session_new with the fs as data. */
const struct fuse_lowlevel_ops *fs_lowlevel_ops(void);

/* Start the invalidation thread (after the session is mounted). */
int fs_start_notifier(struct fs *fs, struct fuse_session *se);
/* Stop it (before the session is unmounted and destroyed). */
void fs_stop_notifier(struct fs *fs);

#endif /* REVFS_FS_H */
