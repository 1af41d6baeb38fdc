/*
 * fs_notify.c — keeping the kernel's caches honest.
 *
 * The kernel caches names, attributes and pages of this mount.  Changes
 * made through the mount are known to it; changes made by any other path
 * (a lease expiring and deleting its keys, another client of a shared
 * engine, a control file) are not.  So the fs watches the mount's prefix in
 * the engine and, for every event, invalidates the key's inode (attributes
 * and pages) and its name in its parent directory, if the kernel knows
 * them.  A revision committed by this mount's own operation holds exactly
 * that operation's change (one txn, one revision), which the kernel saw:
 * its names are right, so only the key's attributes (the new commit time
 * and size) are invalidated, without touching pages or names.  That also
 * keeps the notifier from ever waiting on a page or directory lock held by
 * a request of this mount (if the daemon is killed with such a request in
 * flight, a notifier blocked in the kernel would keep the dying process and
 * its FUSE connection alive).  Pages of other changes are invalidated here;
 * a reader's open also drops pages of an older version (fs_file.c).
 *
 * The engine's notify callback runs under engine locks, so it only writes
 * to an eventfd; a dedicated thread, holding no lock any FUSE operation
 * needs, reads the events and calls fuse_lowlevel_notify_inval_*.
 *
 * Pacing: after a round that had events the thread naps 1 ms before it
 * polls again, so a stream of commits (this mount's own, mostly) costs one
 * wake-up per millisecond rather than one per revision.  An event after a
 * quiet spell is handled at once; none waits more than one nap longer
 * (plus the engine dispatcher's own nap, engine/watch.c).
 */
#include "fs_int.h"
#include "fs_replay.h"
#include "fs_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define FS_NOTIFY_BATCH 256
/* After a round with events, the thread naps this long before it polls. */
#define FS_NOTIFY_PACE_NS 1000000

static void on_watch(void *arg)
{
	struct fs *fs = arg;
	uint64_t one = 1;

	/* Non-blocking: a full counter still wakes the reader. */
	if (write(fs->notify_efd, &one, sizeof(one)) < 0) {
		/* nothing to do: the reader is awake anyway */
	}
}

static int open_watch(struct fs *fs)
{
	const char *key = fs->prefix;
	size_t key_len = fs->prefix_len;
	char *end = malloc(fs->prefix_len + 1);
	size_t end_len;
	int rc;

	if (!end)
		return -ENOMEM;
	if (key_len == 0) {
		key = "\0";
		key_len = 1;
		end[0] = '\0';
		end_len = 1;
	} else {
		end_len = eng_prefix_end(fs->prefix, fs->prefix_len, end);
	}
	rc = eng_watch_open(fs->e, key, key_len, end, end_len, 0, on_watch, fs,
	                    &fs->watch);
	free(end);
	return rc < 0 ? -fs_errno(rc) : 0;
}

static void own_rev(struct fs *fs, eng_rev_t rev)
{
	if (rev > 0)
		__atomic_store_n(&fs->own_revs[rev & (FS_OWN_REVS - 1)], rev,
		                 __ATOMIC_RELEASE);
}

void fs_own_begin(struct fs *fs)
{
	__atomic_add_fetch(&fs->own_inflight, 1, __ATOMIC_SEQ_CST);
}

void fs_own_end(struct fs *fs, eng_rev_t rev)
{
	own_rev(fs, rev);
	__atomic_sub_fetch(&fs->own_inflight, 1, __ATOMIC_SEQ_CST);
}

int fs_eng_txn(struct fs *fs, const struct eng_txn *txn,
               struct eng_txn_res *res)
{
	bool changed = false;
	int rc;

	fs_own_begin(fs);
	rc = eng_txn(fs->e, txn, res);
	for (size_t i = 0; rc == 0 && res->succeeded && i < res->nres; i++)
		if (res->res[i].type == ENG_OP_PUT ||
		    (res->res[i].type == ENG_OP_DELETE && res->res[i].deleted))
			changed = true;
	fs_own_end(fs, changed ? res->header_rev : 0);
	return rc;
}

int fs_eng_put(struct fs *fs, const void *key, size_t key_len,
               const void *value, size_t value_len, eng_lease_t lease,
               eng_rev_t *rev, struct eng_kv *prev)
{
	eng_rev_t r = 0;
	int rc;

	fs_own_begin(fs);
	rc = eng_put(fs->e, key, key_len, value, value_len, lease, &r, prev);
	fs_own_end(fs, rc == 0 ? r : 0);
	if (rev)
		*rev = r;
	return rc;
}

int fs_eng_delete(struct fs *fs, const void *key, size_t key_len,
                  const void *end, size_t end_len, int64_t *deleted,
                  eng_rev_t *rev)
{
	int64_t d = 0;
	eng_rev_t r = 0;
	int rc;

	fs_own_begin(fs);
	rc = eng_delete(fs->e, key, key_len, end, end_len, &d, &r);
	fs_own_end(fs, rc == 0 && d > 0 ? r : 0);
	if (deleted)
		*deleted = d;
	if (rev)
		*rev = r;
	return rc;
}

/*
 * Was rev committed by this mount?  A commit may still be between the
 * engine's publication of its event and the recording of its revision: if
 * commits are in flight, give them a moment (at most ~20 ms per revision).
 */
static bool is_own_rev(struct fs *fs, eng_rev_t rev)
{
	for (int i = 0; i < 20; i++) {
		if (__atomic_load_n(&fs->own_revs[rev & (FS_OWN_REVS - 1)],
		                    __ATOMIC_ACQUIRE) == rev)
			return true;
		if (__atomic_load_n(&fs->own_inflight, __ATOMIC_SEQ_CST) == 0)
			return __atomic_load_n(
			           &fs->own_revs[rev & (FS_OWN_REVS - 1)],
			           __ATOMIC_ACQUIRE) == rev;
		usleep(1000);
	}
	return false;
}

static void invalidate(struct fs *fs, const struct eng_kv *kv, bool own)
{
	char name[FS_NAME_MAX + 1];
	fuse_ino_t ino = 0, parent;
	size_t pl, sl;
	bool dir = kv->key_len > 0 && kv->key[kv->key_len - 1] == '/';
	int n;

	if (kv->key_len < fs->prefix_len ||
	    memcmp(kv->key, fs->prefix, fs->prefix_len) != 0)
		return;
	if (own) {
		ino =
		    dir ? 0
		        : fs_inode_ino_of(fs, FS_I_FILE, kv->key, kv->key_len);
		/* A negative offset: attributes only. */
		if (ino)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
		return;
	}
	if (!dir) {
		ino = fs_inode_ino_of(fs, FS_I_FILE, kv->key, kv->key_len);
		if (ino)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	}
	if (kv->key_len == fs->prefix_len)
		return; /* the root's own marker */
	pl = fs_key_parent_len(kv->key, kv->key_len, fs->prefix_len);
	parent = pl == fs->prefix_len
	             ? FUSE_ROOT_ID
	             : fs_inode_ino_of(fs, FS_I_DIR, kv->key, pl);
	if (!parent)
		return;
	sl = kv->key_len - pl - (dir ? 1 : 0);
	/* A deletion the kernel did not see is replayed through the mount
	 * (inotify's IN_DELETE), which drops the entry too. */
	if (kv->deleted && !dir && fs_replay_delete(fs, kv))
		return;
	n = fs_name_encode(kv->key + pl, sl, true, name);
	if (n > 0)
		fuse_lowlevel_notify_inval_entry(fs->se, parent, name,
		                                 (size_t)n);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fs_notify_wait(struct fs *fs, eng_rev_t rev, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	while (__atomic_load_n(&fs->notified_rev, __ATOMIC_ACQUIRE) < rev) {
		if (!fs->notify_running || mono_ms() >= deadline)
			return;
		usleep(1000);
	}
	fs_replay_wait_idle(fs, timeout_ms);
}

static void queue_inval(struct fs *fs, fuse_ino_t ino, const char *name,
                        size_t len)
{
	uint64_t one = 1;
	char *n = NULL;

	if (name) {
		n = malloc(len + 1);
		if (!n)
			return; /* the entry timeout bounds the staleness */
		memcpy(n, name, len);
		n[len] = '\0';
	}
	pthread_mutex_lock(&fs->inval_lock);
	if (fs->inval_n < FS_INVAL_Q) {
		fs->inval_q[fs->inval_n].ino = ino;
		fs->inval_q[fs->inval_n].name = n;
		fs->inval_n++;
		n = NULL;
	}
	/* Under inval_lock: fs_stop_notifier closes the eventfd under it
	 * (a commit refused at shutdown queues from the completer thread
	 * while the notifier stops). */
	if (fs->notify_efd >= 0 &&
	    write(fs->notify_efd, &one, sizeof(one)) < 0) {
		/* the thread also wakes up every second */
	}
	pthread_mutex_unlock(&fs->inval_lock);
	free(n);
}

void fs_inval_later(struct fs *fs, fuse_ino_t ino)
{
	queue_inval(fs, ino, NULL, 0);
}

void fs_inval_entry_later(struct fs *fs, fuse_ino_t parent, const char *name)
{
	queue_inval(fs, parent, name, strlen(name));
}

void fs_vanish_check(struct fs *fs, const char *prefix, size_t len)
{
	char name[FS_NAME_MAX + 1];

	/* The root never vanishes; stop at the first directory that stays. */
	while (len > fs->prefix_len &&
	       fs_prefix_exists(fs, prefix, len, 0, NULL) == 0) {
		size_t pl = fs_key_parent_len(prefix, len, fs->prefix_len);
		fuse_ino_t parent =
		    pl == fs->prefix_len
		        ? FUSE_ROOT_ID
		        : fs_inode_ino_of(fs, FS_I_DIR, prefix, pl);
		int n = fs_name_encode(prefix + pl, len - pl - 1, true, name);

		if (parent && n > 0)
			queue_inval(fs, parent, name, (size_t)n);
		len = pl;
	}
}

static void drain_inval_queue(struct fs *fs)
{
	struct fs_inval q[FS_INVAL_Q];
	size_t n;

	pthread_mutex_lock(&fs->inval_lock);
	n = fs->inval_n;
	memcpy(q, fs->inval_q, n * sizeof(q[0]));
	fs->inval_n = 0;
	pthread_mutex_unlock(&fs->inval_lock);
	for (size_t i = 0; i < n; i++) {
		if (q[i].name)
			fuse_lowlevel_notify_inval_entry(
			    fs->se, q[i].ino, q[i].name, strlen(q[i].name));
		else
			fuse_lowlevel_notify_inval_inode(fs->se, q[i].ino, 0,
			                                 0);
		free(q[i].name);
	}
}

static void *notify_main(void *arg)
{
	struct fs *fs = arg;
	bool busy = false; /* the last round had events */

	while (!fs->notify_stop) {
		struct pollfd pfd = {.fd = fs->notify_efd, .events = POLLIN};
		uint64_t cnt;
		struct eng_event *evs;
		int n;

		if (busy) {
			/* Paced: see the top of this file. */
			struct timespec ts = {0, FS_NOTIFY_PACE_NS};

			nanosleep(&ts, NULL);
			busy = false;
		}
		if (poll(&pfd, 1, 1000) > 0 &&
		    read(fs->notify_efd, &cnt, sizeof(cnt)) < 0 &&
		    errno != EAGAIN)
			break;
		if (fs->notify_stop)
			break;
		drain_inval_queue(fs);
		while ((n = eng_watch_read(fs->watch, &evs, FS_NOTIFY_BATCH)) >
		       0) {
			bool reopen = false;

			eng_rev_t seen = 0;
			bool own = false;

			busy = true;

			for (int i = 0; i < n; i++) {
				if (evs[i].type != ENG_EV_PUT &&
				    evs[i].type != ENG_EV_DELETE) {
					if (evs[i].type == ENG_EV_COMPACTED)
						reopen = true;
					continue;
				}
				/* One decision per revision. */
				if (evs[i].kv.mod_rev != seen) {
					seen = evs[i].kv.mod_rev;
					own = is_own_rev(fs, seen);
				}
				invalidate(fs, &evs[i].kv, own);
				if (!own && evs[i].type == ENG_EV_PUT)
					fs_replay_put(fs, &evs[i].kv);
			}
			if (seen)
				__atomic_store_n(&fs->notified_rev, seen,
				                 __ATOMIC_RELEASE);
			if (reopen) {
				/* Fell behind a compaction: start afresh;
				 * attribute timeouts bound what was missed. */
				fs_logf(ENG_LOG_WARN,
				        "notifier: watch compacted, reopened");
				eng_watch_close(fs->watch);
				fs->watch = NULL;
				if (open_watch(fs) < 0)
					return NULL;
			}
		}
		if (n < 0) {
			if (n != ENG_E_CLOSED)
				fs_logf(ENG_LOG_ERR, "notifier: watch: %s",
				        eng_strerror(n));
			break;
		}
	}
	return NULL;
}

int fs_start_notifier(struct fs *fs, struct fuse_session *se)
{
	int rc;

	fs->se = se;
	fs->notify_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fs->notify_efd < 0)
		return -errno;
	rc = open_watch(fs);
	if (rc < 0)
		goto fail;
	rc = -pthread_create(&fs->notify_thread, NULL, notify_main, fs);
	if (rc < 0)
		goto fail;
	fs->notify_running = true;
	rc = fs_watch_start(fs); /* the @watch dispatcher */
	if (rc == 0)
		rc = fs_replay_start(fs); /* inotify for others' changes */
	if (rc < 0)
		fs_stop_notifier(fs);
	return rc;
fail:
	eng_watch_close(fs->watch);
	fs->watch = NULL;
	close(fs->notify_efd);
	fs->notify_efd = -1;
	return rc;
}

void fs_stop_notifier(struct fs *fs)
{
	uint64_t one = 1;

	fs_watch_stop(fs); /* held @watch reads end before the session */
	fs_replay_stop(fs);
	if (!fs->notify_running)
		return;
	fs->notify_stop = 1;
	if (write(fs->notify_efd, &one, sizeof(one)) < 0) {
		/* the thread also wakes up every second */
	}
	pthread_join(fs->notify_thread, NULL);
	fs->notify_running = false;
	eng_watch_close(fs->watch);
	fs->watch = NULL;
	pthread_mutex_lock(&fs->inval_lock);
	close(fs->notify_efd);
	fs->notify_efd = -1;
	for (size_t i = 0; i < fs->inval_n; i++)
		free(fs->inval_q[i].name);
	fs->inval_n = 0;
	pthread_mutex_unlock(&fs->inval_lock);
}
