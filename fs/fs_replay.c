/*
 * fs_replay.c — inotify events for changes the kernel did not see.
 *
 * Changes made through this mount are reported by the kernel itself.  Those
 * made by anyone else (a lease expiring and deleting its keys, another
 * client of a shared engine) reach the fs only through its engine watch
 * (fs_notify.c), and the kernel has no FUSE call that raises an inotify
 * event.  So:
 *
 *  - a DELETE is told with fuse_lowlevel_notify_delete() by the notifier
 *    (the kernel then emits IN_DELETE itself if it has the name cached);
 *  - a PUT is queued here, and a replay thread performs an operation on the
 *    mount that makes the kernel emit the event: mknodat() of the name in
 *    its parent for a new key (IN_CREATE), then truncate() to the current
 *    size (IN_MODIFY).  The fs recognises these requests as the replay
 *    thread's (the request's pid is the thread's tid) and answers them from
 *    the store without any engine write: no revision, no loop.  For the
 *    mknod the thread's own lookup of that one name is answered ENOENT, so
 *    the kernel goes on to create it.
 *
 * No deadlock: the replay thread holds no lock while it makes its system
 * calls, and the requests they cause are answered by the FUSE workers
 * without waiting for anything the replay thread holds.  The notifier only
 * appends to the queue (queue_lock, a leaf) and never waits for a replay.
 * Limits (docs/inotify-replay.md): the queue is bounded (overflow drops
 * replays, logged); a replay runs after the change, so a reader may see
 * the new content before the event; a move by another client shows as a
 * delete and a create; a new directory is not replayed (its files are,
 * once the kernel knows the directory).
 */
#include "fs_int.h"
#include "fs_replay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FS_REPLAY_Q 4096

enum fs_replay_op {
	FS_RP_CREATE, /* a key's first version: IN_CREATE, IN_MODIFY */
	FS_RP_MODIFY, /* a later version: IN_MODIFY */
	FS_RP_DELETE, /* IN_DELETE */
};

struct fs_replay_item {
	char *key;
	size_t key_len;
	enum fs_replay_op op;
};

/* What the replay thread's own lookup of one name answers. */
enum fs_replay_pose {
	FS_RP_NONE,
	FS_RP_HIDE,      /* ENOENT: the kernel goes on to create it */
	FS_RP_RESURRECT, /* the deleted key: the kernel goes on to unlink */
};

struct fs_replay {
	struct fs *fs;
	pthread_t thread;
	pid_t tid; /* the thread's, as FUSE requests carry it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fs_replay_item q[FS_REPLAY_Q]; /* protected by lock */
	size_t head, n;                       /* protected by lock */
	bool stop;                            /* protected by lock */
	uint64_t dropped;                     /* protected by lock */
	uint64_t queued, done; /* replays ever queued / finished (or dropped);
	                          protected by lock */
	pthread_cond_t done_cond; /* signalled when done moves */
	/* The name the thread is creating or deleting, and how its own
	 * lookups of it are answered.  Set by the thread around one system
	 * call. */
	char pose_name[FS_NAME_MAX + 1];        /* protected by lock */
	enum fs_replay_pose pose;               /* protected by lock */
	const struct fs_replay_item *pose_item; /* protected by lock */
};

bool fs_replay_req(struct fs *fs, fuse_req_t req)
{
	struct fs_replay *r = fs->replay;

	return r && fuse_req_ctx(req)->pid ==
	                __atomic_load_n(&r->tid, __ATOMIC_ACQUIRE);
}

bool fs_replay_lookup(struct fs *fs, fuse_req_t req, const char *name)
{
	struct fs_replay *r = fs->replay;
	struct fuse_entry_param ep;
	struct eng_kv kv = {0};
	enum fs_replay_pose pose = FS_RP_NONE;
	struct fs_inode *in;

	if (!fs_replay_req(fs, req))
		return false;
	pthread_mutex_lock(&r->lock);
	if (r->pose != FS_RP_NONE && strcmp(r->pose_name, name) == 0) {
		pose = r->pose;
		/* Once: the mknod that follows resolves the name for real. */
		if (pose == FS_RP_HIDE)
			r->pose = FS_RP_NONE;
		/* the item lives until the thread's system call returns */
		kv.key = r->pose_item->key;
		kv.key_len = r->pose_item->key_len;
	}
	pthread_mutex_unlock(&r->lock);
	if (pose == FS_RP_NONE)
		return false;
	if (pose == FS_RP_HIDE) {
		fuse_reply_err(req, ENOENT);
		return true;
	}
	/* The deleted key, as an empty file that no cache keeps. */
	in = fs_inode_get(fs, FS_I_FILE, 0, 0, (const char *)kv.key, kv.key_len,
	                  1);
	if (!in) {
		fs_reply_err(req, ENOMEM, "lookup", "inode table");
		return true;
	}
	memset(&ep, 0, sizeof(ep));
	fs_fill_file_attr(fs, in, &kv, &ep.attr);
	ep.ino = in->ino;
	if (fuse_reply_entry(req, &ep) != 0)
		fs_inode_forget(fs, in->ino, 1);
	return true;
}

static void queue(struct fs *fs, const struct eng_kv *kv, enum fs_replay_op op)
{
	struct fs_replay *r = fs->replay;
	struct fs_replay_item it;

	it.key = malloc(kv->key_len);
	if (!it.key)
		return;
	memcpy(it.key, kv->key, kv->key_len);
	it.key_len = kv->key_len;
	it.op = op;
	pthread_mutex_lock(&r->lock);
	if (r->n < FS_REPLAY_Q && !r->stop) {
		r->q[(r->head + r->n) % FS_REPLAY_Q] = it;
		r->n++;
		r->queued++;
		it.key = NULL;
		pthread_cond_signal(&r->cond);
	} else {
		r->dropped++;
	}
	pthread_mutex_unlock(&r->lock);
	if (it.key) {
		free(it.key);
		fs_logf(ENG_LOG_WARN, "inotify replay: queue full, dropped");
	}
}

/* Only files: a directory marker or the root itself is not replayed. */
static bool replayable(struct fs *fs, const struct eng_kv *kv)
{
	return fs->replay && kv->key_len > fs->prefix_len &&
	       kv->key[kv->key_len - 1] != '/';
}

void fs_replay_put(struct fs *fs, const struct eng_kv *kv)
{
	if (replayable(fs, kv))
		queue(fs, kv, kv->version == 1 ? FS_RP_CREATE : FS_RP_MODIFY);
}

bool fs_replay_delete(struct fs *fs, const struct eng_kv *kv)
{
	if (!replayable(fs, kv))
		return false;
	queue(fs, kv, FS_RP_DELETE);
	return true;
}

void fs_replay_wait_idle(struct fs *fs, int timeout_ms)
{
	struct fs_replay *r = fs->replay;
	struct timespec ts;
	uint64_t target;

	if (!r)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	target = r->queued;
	while (r->done < target &&
	       pthread_cond_timedwait(&r->done_cond, &r->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&r->lock);
}

/* The key's path on the mount, each segment encoded as names are.
 * *name points at the last segment's encoded name inside path. */
static int key_path(struct fs *fs, const char *key, size_t key_len, char *path,
                    size_t size, char **name)
{
	const char *k = key + fs->prefix_len, *end = key + key_len;
	size_t len = strlen(fs->cfg.mountpoint);
	char seg[FS_NAME_MAX + 1];

	if (len + 1 >= size)
		return -ENAMETOOLONG;
	memcpy(path, fs->cfg.mountpoint, len);
	while (k < end) {
		const char *slash = memchr(k, '/', (size_t)(end - k));
		size_t sl = slash ? (size_t)(slash - k) : (size_t)(end - k);
		int n = fs_name_encode(k, sl, true, seg);

		if (n <= 0)
			return -EINVAL;
		if (len + 1 + (size_t)n + 1 > size)
			return -ENAMETOOLONG;
		path[len++] = '/';
		*name = path + len;
		memcpy(path + len, seg, (size_t)n);
		len += (size_t)n;
		if (!slash)
			break;
		k = slash + 1;
	}
	path[len] = '\0';
	return 0;
}

static void set_pose(struct fs_replay *r, enum fs_replay_pose pose,
                     const char *name, const struct fs_replay_item *it)
{
	pthread_mutex_lock(&r->lock);
	if (name)
		snprintf(r->pose_name, sizeof(r->pose_name), "%s", name);
	r->pose = pose;
	r->pose_item = it;
	pthread_mutex_unlock(&r->lock);
}

/* The deletion could not be replayed: at least drop the kernel's entry. */
static void drop_entry(struct fs *fs, const struct fs_replay_item *it,
                       const char *name)
{
	size_t pl = fs_key_parent_len(it->key, it->key_len, fs->prefix_len);
	fuse_ino_t parent = pl == fs->prefix_len
	                        ? FUSE_ROOT_ID
	                        : fs_inode_ino_of(fs, FS_I_DIR, it->key, pl);

	if (parent)
		fs_inval_entry_later(fs, parent, name);
}

static void replay_one(struct fs_replay *r, const struct fs_replay_item *it)
{
	char path[PATH_MAX], *name = NULL;
	struct stat st;
	int dfd;

	if (key_path(r->fs, it->key, it->key_len, path, sizeof(path), &name) <
	    0)
		return;
	/* Opening the parent does the lookups of the path before the last
	 * name gets its pose. */
	name[-1] = '\0';
	dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	name[-1] = '/';
	if (it->op == FS_RP_DELETE) {
		if (dfd < 0 || (set_pose(r, FS_RP_RESURRECT, name, it),
		                unlinkat(dfd, name, 0) < 0)) {
			fs_logf(ENG_LOG_DEBUG,
			        "inotify replay: delete '%s': %s", path,
			        strerror(errno));
			drop_entry(r->fs, it, name);
		}
		set_pose(r, FS_RP_NONE, NULL, NULL);
		if (dfd >= 0)
			close(dfd);
		return;
	}
	if (it->op == FS_RP_CREATE && dfd >= 0) {
		set_pose(r, FS_RP_HIDE, name, it);
		/* EEXIST: the kernel had the name already */
		if (mknodat(dfd, name, S_IFREG | 0644, 0) < 0 &&
		    errno != EEXIST)
			fs_logf(ENG_LOG_DEBUG,
			        "inotify replay: create '%s': %s", path,
			        strerror(errno));
		set_pose(r, FS_RP_NONE, NULL, NULL);
	}
	if (dfd >= 0)
		close(dfd);
	/* IN_MODIFY: a truncate to the size it has; the fs answers the
	 * setattr from the store. */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    truncate(path, st.st_size) < 0)
		fs_logf(ENG_LOG_DEBUG, "inotify replay: modify '%s': %s", path,
		        strerror(errno));
}

static void *replay_main(void *arg)
{
	struct fs_replay *r = arg;

	__atomic_store_n(&r->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct fs_replay_item it;

		while (!r->stop && r->n == 0)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		it = r->q[r->head];
		r->head = (r->head + 1) % FS_REPLAY_Q;
		r->n--;
		pthread_mutex_unlock(&r->lock);
		replay_one(r, &it);
		free(it.key);
		pthread_mutex_lock(&r->lock);
		r->done++;
		pthread_cond_broadcast(&r->done_cond);
	}
	/* Stopped: nobody may wait for what will never run. */
	r->done = r->queued;
	pthread_cond_broadcast(&r->done_cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int fs_replay_start(struct fs *fs)
{
	struct fs_replay *r;
	int rc;

	if (!fs->cfg.mountpoint || !fs->cfg.mountpoint[0])
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fs = fs;
	r->tid = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->done_cond, NULL);
	rc = -pthread_create(&r->thread, NULL, replay_main, r);
	if (rc < 0) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		pthread_cond_destroy(&r->done_cond);
		free(r);
		return rc;
	}
	fs->replay = r;
	return 0;
}

/* Before the session ends: a replay in flight finishes (its requests are
 * answered by the still-running workers), queued ones are dropped.  The
 * state stays (requests may still ask fs_replay_req) until fs_replay_free.
 */
void fs_replay_stop(struct fs *fs)
{
	struct fs_replay *r = fs->replay;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->stop) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	__atomic_store_n(&r->tid, -1, __ATOMIC_RELEASE);
}

/* At fs_free, after the session ended. */
void fs_replay_free(struct fs *fs)
{
	struct fs_replay *r = fs->replay;

	if (!r)
		return;
	fs_replay_stop(fs);
	fs->replay = NULL;
	for (; r->n; r->n--, r->head = (r->head + 1) % FS_REPLAY_Q)
		free(r->q[r->head].key);
	if (r->dropped)
		fs_logf(ENG_LOG_WARN, "inotify replay: %llu dropped",
		        (unsigned long long)r->dropped);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->done_cond);
	free(r);
}
