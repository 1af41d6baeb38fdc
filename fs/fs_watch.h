/*
 * fs_watch.h — `DIR/@watch` and `DIR/@watch@REV`: engine watches read as
 * text streams, with read requests held (not threads) while nothing is
 * ready.  See fs_watch.c and docs/reference.md ("Watch streams").
 */
#ifndef REVFS_FS_WATCH_H
#define REVFS_FS_WATCH_H

#include "fs.h"

struct fs_wstream;

/* Start / stop the dispatcher thread that answers held reads (the session
 * must exist: fs->se).  Stop answers every held read with end-of-file and
 * makes later reads end at once; streams stay open until released.
 * 0 or -errno. */
int fs_watch_start(struct fs *fs);
void fs_watch_stop(struct fs *fs);

/* Open a stream of the changes under the key prefix `dir` from revision
 * `start` (0: from the next revision).  0 or -errno. */
int fs_watch_open(struct fs *fs, const char *dir, size_t dir_len,
                  eng_rev_t start, struct fs_wstream **out);
/* Answer a read now, or hold it until something is ready. */
void fs_watch_read(fuse_req_t req, struct fs_wstream *s, size_t size);
/* Answer a poll (ph: may be NULL; taken over). */
void fs_watch_poll(fuse_req_t req, struct fs_wstream *s,
                   struct fuse_pollhandle *ph);
/* The handle is released: answer a held read, close the engine watch. */
void fs_watch_release(struct fs_wstream *s);
/* At fs_free, after every handle was released: stop and free it all. */
void fs_watch_free(struct fs *fs);

#endif /* REVFS_FS_WATCH_H */
