/*
 * fs_int.h — private to fs/: the filesystem state, the inode table, open
 * handles and the seams between the files of fs/:
 *
 *   fs_name.c    name <-> segment encoding, `@` name parsing
 *   fs_special.c the table of control names
 *   fs_errno.c   the one engine-error -> errno map
 *   fs_log.c     logging and the one reply-with-error path
 *   fs_inode.c   the inode table (ino <-> (kind, rev, key)), lookup counts
 *   fs_lookup.c  lookup, getattr, setattr, forget, statfs, mknod, init
 *   fs_dir.c     opendir/readdir(plus)/releasedir, mkdir, rmdir
 *   fs_file.c    open/create/read/write/flush/fsync/release, write buffers
 *   fs_rename.c  unlink, rename (files and directories)
 *   fs_xattr.c   user.revfs.* attributes
 *   fs_history.c the KEY@history file
 *   fs_notify.c  the engine watch and the kernel-cache invalidation thread
 *   fs_watch.c   DIR/@watch streams: held reads, their dispatcher thread
 *   fs_replay.c  inotify replay of changes the kernel did not see
 *   fs_main.c    struct fs and the operations table
 *
 * Lock order: an inode's lock, then itab_lock (briefly, to copy a key);
 * inval_lock is a leaf.  No lock is held across a FUSE reply or a call
 * into the kernel, and only an inode's lock across an engine call (its
 * commit).
 */
#ifndef REVFS_FS_INT_H
#define REVFS_FS_INT_H

#include "fs.h"
#include "fs_name.h"

#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>

enum fs_ikind {
	FS_I_DIR,     /* key = the directory's prefix ("" or ending in '/') */
	FS_I_FILE,    /* key = the key */
	FS_I_HISTORY, /* KEY@history */
	FS_I_IFREV,   /* KEY@ifrev=REV (rev = REV) */
	FS_I_SPECIAL, /* a control file; key = the directory's prefix */
};

/* The whole new value of a file open for writing (one per inode). */
struct fs_wbuf {
	char *data;
	size_t len, cap;
	bool dirty;          /* differs from the store: commit it */
	bool written;        /* dirty by a write or truncate, not only by
	                        O_CREAT/O_TRUNC: flush commits only then */
	int nwriters;        /* open write handles sharing it */
	eng_lease_t lease;   /* the lease the key had at open (kept) */
	bool orphan;         /* unlinked while open: never committed */
	int error;           /* sticky errno of a refused write (EFBIG): every
	                        later write, truncate, flush and fsync fails
	                        with it and nothing is committed, until the
	                        last writer closes */
	uint64_t commit_seq; /* asynchronous commits queued so far */
	int acommits;        /* of them, not completed yet: an fsync of the
	                        clean buffer waits for them */
};

/*
 * An inode's key is protected by fs->itab_lock: a rename rekeys every live
 * inode under the renamed name (any kind, IFREV too) and frees the old key,
 * so copy it (fs_inode_key, fs_inode_key_str) to use it outside the lock.
 * Two kinds keep theirs for life and are read directly: snapshot inodes
 * (rev != 0, not IFREV: fs_inode_rekey skips them) and @leases/NAME inodes
 * (the key is a lease name, which has no '/', and a directory rename only
 * moves keys under a prefix ending in '/').
 */
struct fs_inode {
	fuse_ino_t ino;
	enum fs_ikind kind;
	eng_rev_t rev;    /* 0: live; FILE/DIR: snapshot revision; IFREV: REV */
	int special;      /* FS_I_SPECIAL: table index */
	char *key;        /* protected by fs->itab_lock (see above) */
	size_t key_len;   /* protected by fs->itab_lock */
	bool hashed;      /* in the key index; protected by fs->itab_lock */
	uint64_t nlookup; /* kernel references; protected by fs->itab_lock */
	struct fs_inode *next_ino; /* protected by fs->itab_lock */
	struct fs_inode *next_key; /* protected by fs->itab_lock */

	pthread_mutex_t lock;
	/* protected by lock; stored atomically so that fs_inode_pending()
	 * may peek under itab_lock alone */
	struct fs_wbuf *wbuf;
	/* The version the kernel's pages hold (0: unknown), whether that is
	 * known yet, the epoch of the last open that had them dropped and
	 * the descriptors reading them (fs_file.c explains); protected by
	 * lock. */
	eng_rev_t cache_mod_rev;
	bool cache_sure;
	uint64_t cache_epoch;
	int cache_users;
	/* The version whose size the kernel was last given (0: none or a
	 * new file).  Atomic loads/stores; a stale value only costs one
	 * attribute invalidation at open. */
	eng_rev_t attr_mod_rev;
};

/* Open handles are linked so that unmount can free the ones the kernel
 * never released (the session ended first). */
struct fs_hlink {
	struct fs_hlink *prev, *next;
};

#define FS_INVAL_Q  256
#define FS_OWN_REVS 65536 /* a power of two */

struct fs {
	eng *e;
	struct fs_config cfg;
	char *prefix; /* cfg.prefix, normalised (ends in '/' unless empty) */
	size_t prefix_len;
	struct timespec start_time;

	pthread_mutex_t itab_lock;
	struct fs_inode **by_ino; /* protected by itab_lock */
	struct fs_inode **by_key; /* protected by itab_lock */
	size_t nbuckets;          /* protected by itab_lock */
	size_t ninodes;           /* protected by itab_lock */
	struct fs_inode *root;

	/* notifier (fs_notify.c) */
	struct fuse_session *se;
	eng_watch *watch;
	pthread_t notify_thread;
	bool notify_running;
	int notify_efd;
	volatile int notify_stop;
	pthread_mutex_t inval_lock;
	struct fs_inval {
		fuse_ino_t ino; /* the inode, or the parent of name */
		char *name;     /* NULL: the inode; else an entry */
	} inval_q[FS_INVAL_Q];  /* protected by inval_lock */
	size_t inval_n;         /* protected by inval_lock */
	/* Revisions this mount committed, direct-mapped by rev (atomic
	 * loads/stores; an overwritten slot only costs an invalidation). */
	eng_rev_t *own_revs;
	int own_inflight; /* commits running now (atomic) */
	/* The newest revision whose invalidations and replays the notifier
	 * has handed on (atomic). */
	eng_rev_t notified_rev;
	/* Asynchronous commits of closes and fsyncs (fs_file.c). */
	pthread_mutex_t acommit_lock;
	pthread_cond_t acommit_cond;
	size_t acommits; /* protected by acommit_lock: in flight */
	bool no_acommit; /* the backend has no eng_txn_async (atomic) */
	pthread_mutex_t handles_lock;
	struct fs_hlink file_handles; /* protected by handles_lock */
	struct fs_hlink dir_handles;  /* protected by handles_lock */
	struct fs_watchers *watchers; /* @watch streams (fs_watch.c) */
	struct fs_leases *leases;     /* @leases/ holds (fs_lease.c) */
	struct fs_replay *replay;     /* inotify replay (fs_replay.c) */
};

void fs_handle_link(struct fs *fs, struct fs_hlink *head, struct fs_hlink *h);
void fs_handle_unlink(struct fs *fs, struct fs_hlink *h);
/* At unmount: free the handles still open (fs_file.c, fs_dir.c). */
void fs_file_release_all(struct fs *fs);
void fs_dir_release_all(struct fs *fs);

/* ---- fs_log.c ---- */
void fs_logf(enum eng_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reply an error (errno > 0) and log the refusal with its reason. */
void fs_reply_err(fuse_req_t req, int err, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- fs_errno.c ---- */
int fs_errno(int eng_err);

/* ---- fs_inode.c ---- */
int fs_itab_init(struct fs *fs);
void fs_itab_free(struct fs *fs);
/* Find or add the inode for (kind, rev, key); nlookup += add_lookup.
 * Returns NULL on ENOMEM. */
struct fs_inode *fs_inode_get(struct fs *fs, enum fs_ikind kind, eng_rev_t rev,
                              int special, const char *key, size_t key_len,
                              uint64_t add_lookup);
/* The inode for ino (no reference taken: the kernel holds one). */
struct fs_inode *fs_inode_find(struct fs *fs, fuse_ino_t ino);
/* The live inode for a key, if the kernel knows it; its ino or 0. */
fuse_ino_t fs_inode_ino_of(struct fs *fs, enum fs_ikind kind, const char *key,
                           size_t key_len);
void fs_inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n);
/* The number (kind, rev, key) has, or will have when looked up (the same
 * as stat shows, collisions aside): for readdir's d_ino. */
fuse_ino_t fs_inode_ino_for(struct fs *fs, enum fs_ikind kind, eng_rev_t rev,
                            const char *key, size_t key_len);
/* Is the live FILE inode of key open for writing (a create not yet
 * committed resolves through it)?  Safe against a concurrent forget. */
bool fs_inode_pending(struct fs *fs, const char *key, size_t key_len);
/*
 * The live file inode of key if it has a write buffer, with one reference
 * taken (drop it with fs_inode_forget(fs, in->ino, 1)); NULL if none.
 */
struct fs_inode *fs_inode_writer(struct fs *fs, const char *key,
                                 size_t key_len);
/* The live file inode of key, writer or not, with one reference taken (drop
 * it with fs_inode_forget(fs, in->ino, 1)); NULL if the kernel has none. */
struct fs_inode *fs_inode_file(struct fs *fs, const char *key, size_t key_len);
/* Take in out of the key index: a new create of its name gets a fresh
 * inode (unlink, rename over: in's open descriptors keep the old one). */
void fs_inode_unhash(struct fs *fs, struct fs_inode *in);
/* Copy the inode's key (it can change by rename) into a malloc'd buffer. */
int fs_inode_key(struct fs *fs, struct fs_inode *in, char **key,
                 size_t *key_len);
/* The same as a string for a message (free() it); NULL when out of memory,
 * which FS_KSTR() prints as "?". */
char *fs_inode_key_str(struct fs *fs, struct fs_inode *in);
#define FS_KSTR(k) ((k) ? (k) : "?")
/*
 * After a rename: the inode of `from` (files) or every inode under `from`
 * (dir prefixes) now has the key under `to` (an open write buffer commits
 * to the new name); an old inode of `to` is unhashed.  The moved inodes are
 * unhashed too, unless a write buffer is pending, so that the next lookup
 * of the new name makes the inode whose number is the hash of the new key
 * (the caller has the kernel drop its entry): numbers stay the same across
 * remounts.
 */
void fs_inode_rekey(struct fs *fs, bool dir, const char *from, size_t from_len,
                    const char *to, size_t to_len);

/* ---- fs_lookup.c ---- */
/* Fill st for a kv (FILE) at the given kind/rev. */
void fs_fill_file_attr(struct fs *fs, struct fs_inode *in,
                       const struct eng_kv *kv, struct stat *st);
void fs_fill_dir_attr(struct fs *fs, struct fs_inode *in, struct stat *st);
/* The attributes of an inode, read from the engine.  0 or -errno. */
int fs_inode_stat(struct fs *fs, struct fs_inode *in, struct stat *st);
/* Build child key = dir prefix + seg (+ '/' for a dir).  malloc'd. */
int fs_child_key(const char *dir, size_t dir_len, const char *seg,
                 size_t seg_len, bool as_dir, char **out, size_t *out_len);
/* Does any key exist under prefix (at rev, through snap)? 1, 0 or -errno */
int fs_prefix_exists(struct fs *fs, const char *prefix, size_t len,
                     eng_rev_t rev, eng_snap *snap);
/* Resolve a hashed name to the full raw segment in dir (at rev). */
int fs_resolve_hashed(struct fs *fs, const char *dir, size_t dir_len,
                      eng_rev_t rev, const struct fs_dname *dn, char **seg,
                      size_t *seg_len);
/* Create key with an empty value only if it does not exist (one txn, one
 * revision; *rev gets it if not NULL).  0, -EEXIST or -errno. */
int fs_put_empty_if_absent(struct fs *fs, const char *key, size_t key_len,
                           eng_rev_t *rev);
/* Reject writes to snapshots and history with EROFS. */
bool fs_inode_read_only(struct fs *fs, const struct fs_inode *in);
/* The key prefix for a dir name inside dir `parent` (encoded), for create */
int fs_name_to_key(struct fs *fs, struct fs_inode *parent, const char *name,
                   bool as_dir, bool creating, char **key, size_t *key_len);
/* Split a key into (parent prefix length, segment) for notifications. */
size_t fs_key_parent_len(const char *key, size_t key_len, size_t min);

void fs_op_init(void *userdata, struct fuse_conn_info *conn);
void fs_op_destroy(void *userdata);
/* Wait until every asynchronous commit of a close or fsync has answered
 * (fs_file.c; before the session goes away). */
void fs_acommit_drain(struct fs *fs);
void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_op_forget_multi(fuse_req_t req, size_t count,
                        struct fuse_forget_data *forgets);
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                   int to_set, struct fuse_file_info *fi);
void fs_op_statfs(fuse_req_t req, fuse_ino_t ino);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                 mode_t mode, dev_t rdev);

/* ---- fs_dir.c ---- */
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
                      struct fuse_file_info *fi);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                 mode_t mode);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);

/* ---- fs_file.c ---- */
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                  mode_t mode, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                 off_t off, struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                 struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Streams (@watch) wait for data; every other file is always ready. */
void fs_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                struct fuse_pollhandle *ph);
/* Resize the open write buffer of `in`, if any: 1 done, 0 none, -errno. */
int fs_wbuf_truncate(struct fs *fs, struct fs_inode *in, size_t size);
/* The file was unlinked: its open descriptors' writes are never committed.
 * Called with in->lock held. */
void fs_wbuf_orphan_locked(struct fs_inode *in);
/* Commit a pending create/truncate now (touch's utimens).  0 or -errno. */
int fs_wbuf_commit(struct fs *fs, struct fs_inode *in);
/* Commit every dirty buffer (at unmount, for files still open). */
void fs_commit_all(struct fs *fs);

/* ---- fs_rename.c ---- */
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                  fuse_ino_t newparent, const char *newname,
                  unsigned int flags);

/* ---- fs_xattr.c ---- */
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                    size_t size);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                    const char *value, size_t size, int flags);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ---- fs_notify.c ---- */
/* Have the notifier thread invalidate ino's attributes and pages (for an
 * operation that may not call the kernel itself).  Best effort: when the
 * queue is full the attribute timeout bounds the staleness. */
void fs_inval_later(struct fs *fs, fuse_ino_t ino);
/* The same for the name `name` in directory `parent`. */
void fs_inval_entry_later(struct fs *fs, fuse_ino_t parent, const char *name);
/*
 * Wait (at most timeout_ms) until the notifier has handled revision rev and
 * the inotify replays it queued are done, so that a change made through a
 * name the kernel did not see change (a lease revoke deleting keys) is
 * visible when the request that made it returns.  For an op holding no fs
 * lock; the replay only locks the keys' directories, never @leases.
 */
void fs_notify_wait(struct fs *fs, eng_rev_t rev, int timeout_ms);
/*
 * Every write of fs/ goes through these wrappers of eng_txn/eng_put/
 * eng_delete (same arguments, the fs first): they count the commit as in
 * flight while the engine runs it and record its revision as this mount's
 * own if it changed something, so that the notifier can tell own events
 * from others even when it sees the event before the call returns.
 */
int fs_eng_txn(struct fs *fs, const struct eng_txn *txn,
               struct eng_txn_res *res);
int fs_eng_put(struct fs *fs, const void *key, size_t key_len,
               const void *value, size_t value_len, eng_lease_t lease,
               eng_rev_t *rev, struct eng_kv *prev);
int fs_eng_delete(struct fs *fs, const void *key, size_t key_len,
                  const void *end, size_t end_len, int64_t *deleted,
                  eng_rev_t *rev);
/*
 * The same bookkeeping for a commit the wrappers can't run (an
 * asynchronous one, fs_file.c): fs_own_begin() before it is queued,
 * fs_own_end(fs, its revision, or 0 if it changed nothing or failed) when
 * it completed, before anything waits on it.
 */
void fs_own_begin(struct fs *fs);
void fs_own_end(struct fs *fs, eng_rev_t rev);
/*
 * After this mount removed a key under `prefix` (a directory prefix): if
 * the directory has vanished with it (no marker, no key left), have the
 * notifier drop the kernel's cached entries of it and of every ancestor
 * that vanished too.
 */
void fs_vanish_check(struct fs *fs, const char *prefix, size_t len);

/* ---- fs_history.c ---- */
struct fs_hist;
int fs_hist_open(struct fs *fs, const char *key, size_t key_len,
                 struct fs_hist **out);
/* Read up to size bytes at off into buf; returns bytes or -errno. */
ssize_t fs_hist_read(struct fs_hist *h, char *buf, size_t size, off_t off);
void fs_hist_free(struct fs_hist *h);

#endif /* REVFS_FS_INT_H */
