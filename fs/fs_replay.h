/*
 * fs_replay.h — inotify for changes the kernel did not see: the notifier
 * hands them here and a replay thread performs a matching operation on the
 * mount itself, which the fs answers from the store without writing.
 * See fs_replay.c and docs/inotify-replay.md.
 */
#ifndef REVFS_FS_REPLAY_H
#define REVFS_FS_REPLAY_H

#include "fs.h"

#include <stdbool.h>

/* Start / stop the replay thread (needs fs->cfg.mountpoint; without one
 * replay is off).  0 or -errno. */
int fs_replay_start(struct fs *fs);
void fs_replay_stop(struct fs *fs);
void fs_replay_free(struct fs *fs);

/* From the notifier: a PUT that this mount did not make.  Never blocks
 * (a full queue drops the replay, logged). */
void fs_replay_put(struct fs *fs, const struct eng_kv *kv);

/* Is this request the replay thread's own?  Then the fs answers it from
 * the store and writes nothing. */
bool fs_replay_req(struct fs *fs, fuse_req_t req);

/* Wait (at most timeout_ms) until every replay queued so far is done. */
void fs_replay_wait_idle(struct fs *fs, int timeout_ms);

/* From the notifier: a DELETE that this mount did not make.  Returns true
 * if it was queued (the replay drops the kernel's entry), false if the
 * caller must invalidate the entry itself. */
bool fs_replay_delete(struct fs *fs, const struct eng_kv *kv);

/* A lookup by the replay thread of the name it is replaying: answered here
 * (ENOENT for a create, the deleted key for a delete); true if it was. */
bool fs_replay_lookup(struct fs *fs, fuse_req_t req, const char *name);

#endif /* REVFS_FS_REPLAY_H */
