/*
 * fs_file.c — file contents: open, create, read, write, flush, fsync,
 * release, and the write buffer that makes a close one put.
 *
 * A file open for writing has one write buffer per inode (shared by every
 * descriptor of this mount that writes it): the whole new value, in memory,
 * bounded by max_value.  A write past it fails EFBIG at once and the
 * buffer goes back to the stored value; the error then sticks (wb->error):
 * every later write, truncate, flush and fsync of the buffer fails with it
 * and nothing is committed until its last writer closes, so a program that
 * ignores the write's error still sees close() fail and never stores a
 * value with a hole where the refused bytes were.  flush (each close), fsync
 * and the last release commit it as one put, only if it changed since the last
 * commit; the commit's error is the close's or fsync's.  A buffer made dirty
 * only by O_CREAT or O_TRUNC (no write yet) is not committed by flush but by
 * fsync, utimens (touch) or the release: the shell's `echo x > f` opens,
 * dup2()s and closes the file before writing, and that first close must not
 * cost a revision of its own.  Concurrent commits of different files share the
 * engine's group commit.  A close's or an fsync's commit is queued with
 * eng_txn_async and answered by its completion (acommit_done, on the
 * engine's completer thread), so the FUSE worker serves other requests
 * while the group's fsync runs instead of sleeping through it; the buffer
 * is marked clean when the commit is queued and dirty again if it is
 * refused (an fsync or close that finds it clean meanwhile is answered
 * behind the commit, afsync_queue_locked).  Conditional (ifrev) files and
 * backends without asynchronous commits (etcd) commit synchronously.
 * fs_op_destroy waits for commits in flight before the session goes.
 *
 * A descriptor opened only for reading reads one version: the one current
 * at open (or the write buffer, if this mount is writing the file, so that
 * it agrees with the kernel's page cache).  The kernel's pages are shared
 * by every descriptor of the inode, and an open must see every commit made
 * before it (close-to-open), so the pages belong to one version at a time,
 * cache_mod_rev, read through cache_users open descriptors:
 *  - an open of that version, or of any version when no descriptor uses
 *    the pages, uses them; it keeps them (keep_cache) only when they are
 *    known to hold its version, else the kernel drops them, in the
 *    opener's context, after our reply;
 *  - "known" (cache_sure) means: a descriptor opened without keep_cache in
 *    the current cache epoch has read, so its drop is done.  A concurrent
 *    open of the same version cannot keep pages that another opener's drop
 *    has not reached yet;
 *  - an open of another version while the pages are in use bypasses them
 *    (direct_io): it neither reads the older bytes nor makes the older
 *    descriptors read its own.
 * An open of a version whose size the kernel was not told also drops the
 * kernel's attributes, so that the read is not cut at a stale size.
 *
 * KEY@ifrev=REV inodes have their own buffer; their commit is a txn that
 * puts only if KEY's mod_revision is still <= REV, else ESTALE.  History
 * files are generated (fs_history.c); control files come from the special
 * table.  Locking: in->lock guards the buffer and is held while a commit of
 * that inode is queued or, when synchronous, runs (so two closes of one
 * file commit in turn, in order); no other lock is held across an engine
 * call.  The completion takes in->lock: the engine runs it on a thread that
 * holds no lock, and a holder of in->lock waiting for a synchronous commit
 * leads that commit itself (engine/local_commit.c).
 */
#include "fs_ctl.h"
#include "fs_int.h"
#include "fs_lease.h"
#include "fs_special.h"
#include "fs_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define FS_SPECIAL_WRITE_MAX (1 << 20)

struct fs_fh {
	struct fs_hlink link; /* first: on fs->file_handles once open */
	struct fs *fs;
	struct fs_inode *in;
	bool writer;               /* holds a share of in->wbuf */
	bool from_wbuf;            /* a reader that reads in->wbuf */
	struct eng_kv kv;          /* a reader's version */
	struct fs_hist *hist;      /* KEY@history */
	struct fs_wstream *ws;     /* @watch */
	eng_snapshot_stream *snap; /* @snapshot; reads under lock */
	char *sbuf;                /* control file content (read or written) */
	size_t slen;
	bool sdirty;
	bool trunc_join; /* its O_TRUNC emptied a buffer another held */
	bool held;       /* @leases/NAME: this descriptor holds the lease */
	bool cache_user; /* one of in->cache_users */
	uint64_t
	    cache_epoch;      /* opened without keep_cache in this epoch and
	                         not read yet (0: none); protected by in->lock */
	pthread_mutex_t lock; /* guards sbuf, and kv of a from_wbuf reader */
};

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fs_fh *)(uintptr_t)fi->fh;
}

static void fh_free(struct fs *fs, struct fs_fh *fh)
{
	if (!fh)
		return;
	if (fh->link.next != &fh->link)
		fs_handle_unlink(fh->fs, &fh->link);
	if (fh->cache_user) {
		pthread_mutex_lock(&fh->in->lock);
		fh->in->cache_users--;
		pthread_mutex_unlock(&fh->in->lock);
	}
	eng_kv_release(&fh->kv);
	fs_hist_free(fh->hist);
	if (fh->ws)
		fs_watch_release(fh->ws);
	eng_snapshot_stream_close(fh->snap);
	if (fh->held)
		fs_lease_close(fh->fs, fh->in);
	free(fh->sbuf);
	pthread_mutex_destroy(&fh->lock);
	free(fh);
}

static struct fs_fh *fh_new(struct fs *fs, struct fs_inode *in)
{
	struct fs_fh *fh = calloc(1, sizeof(*fh));

	if (fh) {
		fh->link.prev = fh->link.next = &fh->link;
		fh->fs = fs;
		fh->in = in;
		pthread_mutex_init(&fh->lock, NULL);
	}
	return fh;
}

/* Make room for `need` bytes; the caller checked need <= max_value. */
static int wbuf_reserve(struct fs_wbuf *wb, size_t need)
{
	size_t cap = wb->cap ? wb->cap : 4096;
	char *d;

	if (need <= wb->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	d = realloc(wb->data, cap);
	if (!d)
		return -ENOMEM;
	wb->data = d;
	wb->cap = cap;
	return 0;
}

/*
 * Join (or start) the inode's write buffer.  `cur` is the key's current
 * version (mod_rev 0 if none), used to fill a new buffer unless `trunc`.
 * Called with in->lock held.
 */
static int wbuf_join(struct fs_inode *in, const struct eng_kv *cur, bool trunc)
{
	struct fs_wbuf *wb = in->wbuf;
	int rc;

	if (!wb) {
		wb = calloc(1, sizeof(*wb));
		if (!wb)
			return -ENOMEM;
		if (!trunc && cur->mod_rev > 0 && cur->value_len > 0) {
			rc = wbuf_reserve(wb, cur->value_len);
			if (rc < 0) {
				free(wb);
				return rc;
			}
			memcpy(wb->data, cur->value, cur->value_len);
			wb->len = cur->value_len;
		}
		wb->lease = cur->lease;
		/* A new key, or `>` of a non-empty one, is a change. */
		wb->dirty = cur->mod_rev == 0 || (trunc && cur->value_len > 0);
		__atomic_store_n(&in->wbuf, wb, __ATOMIC_RELEASE);
	} else if (trunc && wb->len > 0) {
		/* O_TRUNC of a buffer another descriptor holds: a change but
		 * not a write, as for a buffer of its own.  This descriptor's
		 * first close may be bash's close after dup2, before its write
		 * (and the holder may only be the previous `>`, whose RELEASE
		 * comes after this open): committing the empty value there
		 * would cost a revision.  Its release commits the truncation
		 * if nothing was written since (fs_op_release). */
		wb->len = 0;
		wb->dirty = true;
		wb->nwriters++;
		return 1;
	}
	wb->nwriters++;
	return 0;
}

/* The kernel's pages may hold bytes of no known version (a writer's). */
static void cache_forget_locked(struct fs_inode *in)
{
	in->cache_mod_rev = 0;
	in->cache_sure = false;
	/* A reader opened before may not prove the pages known: they may
	 * hold this writer's bytes now. */
	in->cache_epoch++;
}

/* Commit in's buffer if dirty.  Called with in->lock held. */
static int commit_locked(struct fs *fs, struct fs_inode *in)
{
	struct fs_wbuf *wb = in->wbuf;
	char *key = NULL;
	size_t key_len;
	eng_rev_t rev = 0;
	int rc;

	if (!wb || !wb->dirty || wb->orphan || wb->error)
		return 0;
	rc = fs_inode_key(fs, in, &key, &key_len);
	if (rc < 0)
		return rc;
	if (in->kind == FS_I_IFREV) {
		struct eng_cmp cmp = {.key = key,
		                      .key_len = key_len,
		                      .target = ENG_CMP_MOD,
		                      .result = ENG_CMP_LT,
		                      .number = in->rev + 1};
		struct eng_op op = {.type = ENG_OP_PUT,
		                    .key = key,
		                    .key_len = key_len,
		                    .value = wb->data ? wb->data : "",
		                    .value_len = wb->len,
		                    .lease = wb->lease};
		struct eng_txn t = {&cmp, 1, &op, 1, NULL, 0};
		struct eng_txn_res tr = {0};

		rc = fs_eng_txn(fs, &t, &tr);
		if (rc == ENG_E_LEASE_NOT_FOUND) {
			op.lease = 0;
			rc = fs_eng_txn(fs, &t, &tr);
		}
		if (rc == 0 && !tr.succeeded)
			rc = 1;
		rev = tr.header_rev;
		eng_txn_res_release(&tr);
		if (rc == 1) {
			fs_logf(
			    ENG_LOG_INFO,
			    "commit of '%s' refused: changed after revision "
			    "%lld (conditional update)",
			    key, (long long)in->rev);
			free(key);
			/* The conflict is final: nothing to retry at release.
			 */
			wb->dirty = wb->written = false;
			return -ESTALE;
		}
	} else {
		rc = fs_eng_put(fs, key, key_len, wb->data ? wb->data : "",
		                wb->len, wb->lease, &rev, NULL);
		/* The key's lease expired meanwhile: keep the data. */
		if (rc == ENG_E_LEASE_NOT_FOUND)
			rc = fs_eng_put(fs, key, key_len,
			                wb->data ? wb->data : "", wb->len, 0,
			                &rev, NULL);
	}
	if (rc < 0) {
		fs_logf(rc == ENG_E_IO ? ENG_LOG_ERR : ENG_LOG_INFO,
		        "commit of '%s' (%zu bytes) refused: %s", key, wb->len,
		        eng_strerror(rc));
		free(key);
		/* The kernel's size and pages show what was not stored. */
		cache_forget_locked(in);
		fs_inval_later(fs, in->ino);
		return -fs_errno(rc);
	}
	fs_logf(ENG_LOG_DEBUG, "commit '%s' (%zu bytes) at revision %lld", key,
	        wb->len, (long long)rev);
	wb->dirty = false;
	wb->written = false;
	/* The kernel's pages were written through: drop them at next open. */
	cache_forget_locked(in);
	free(key);
	return 0;
}

/*
 * A close's or an fsync's commit in flight (eng_txn_async): the request to
 * answer, and the key and a copy of the value, which the engine reads
 * until the completion.  The descriptor, hence the inode and its buffer,
 * stays open until the answer: the kernel sends RELEASE after FLUSH's
 * reply and an fsync holds its file.
 */
struct fs_acommit {
	struct fs *fs;
	fuse_req_t req;
	struct fs_inode *in;
	bool flush;
	bool barrier; /* an fsync's empty txn behind the commits in flight */
	uint64_t seq; /* in->wbuf->commit_seq of this commit */
	char *key;
	size_t key_len;
	struct eng_op op;
	struct eng_txn txn;
	size_t len;
	char data[]; /* the value */
};

static void acommit_end(struct fs *fs)
{
	pthread_mutex_lock(&fs->acommit_lock);
	if (--fs->acommits == 0)
		pthread_cond_broadcast(&fs->acommit_cond);
	pthread_mutex_unlock(&fs->acommit_lock);
}

void fs_acommit_drain(struct fs *fs)
{
	pthread_mutex_lock(&fs->acommit_lock);
	while (fs->acommits > 0)
		pthread_cond_wait(&fs->acommit_cond, &fs->acommit_lock);
	pthread_mutex_unlock(&fs->acommit_lock);
}

/* Called by fuse_session_destroy(), before the session's memory goes. */
void fs_op_destroy(void *userdata)
{
	fs_acommit_drain(userdata);
}

static void inval_attrs(struct fs *fs, fuse_ino_t ino);

/*
 * An fsync's or a close's barrier completed, hence every commit of the
 * inode queued before it: one that was refused left the buffer dirty (and
 * written), and this call commits it now, as one that found it so would
 * have.
 */
static void afsync_done(struct fs_acommit *ac, int rc)
{
	struct fs *fs = ac->fs;
	struct fs_inode *in = ac->in;

	pthread_mutex_lock(&in->lock);
	if (rc < 0)
		rc = -fs_errno(rc);
	else if (in->wbuf->error)
		rc = -in->wbuf->error;
	else if (!ac->flush || in->wbuf->written)
		rc = commit_locked(fs, in);
	pthread_mutex_unlock(&in->lock);
	if (rc < 0)
		fs_reply_err(ac->req, -rc, ac->flush ? "close" : "fsync",
		             "'%.*s'", (int)ac->key_len, ac->key);
	else
		fuse_reply_err(ac->req, 0);
	free(ac->key);
	free(ac);
	acommit_end(fs);
}

/*
 * The completion, on the engine's completer thread (no lock held): what
 * commit_locked does after its eng_put, then the answer.  The buffer was
 * marked clean when the commit was queued; a refused commit makes it
 * dirty again unless it changed or was queued again since (the newer
 * commit carries the whole newer value).
 */
static void acommit_done(void *arg, int rc, const struct eng_txn_res *res)
{
	struct fs_acommit *ac = arg;
	struct fs *fs = ac->fs;
	struct fs_inode *in = ac->in;
	struct fs_wbuf *wb;
	eng_rev_t rev = rc == 0 ? res->header_rev : 0;
	bool latest;

	if (ac->barrier) {
		afsync_done(ac, rc);
		return;
	}
	fs_own_end(fs, rev);
	pthread_mutex_lock(&in->lock);
	wb = in->wbuf;
	wb->acommits--;
	latest = wb->commit_seq == ac->seq && !wb->dirty;
	/* The key's lease expired meanwhile: keep the data. */
	if (rc == ENG_E_LEASE_NOT_FOUND && latest)
		rc = fs_eng_put(fs, ac->key, ac->key_len, ac->data, ac->len, 0,
		                &rev, NULL);
	if (rc < 0) {
		fs_logf(rc == ENG_E_IO ? ENG_LOG_ERR : ENG_LOG_INFO,
		        "commit of '%.*s' (%zu bytes) refused: %s",
		        (int)ac->key_len, ac->key, ac->len, eng_strerror(rc));
		if (latest)
			wb->dirty = wb->written = true;
		/* The kernel's size and pages show what was not stored. */
		fs_inval_later(fs, in->ino);
	} else {
		fs_logf(ENG_LOG_DEBUG,
		        "commit '%.*s' (%zu bytes) at revision %lld",
		        (int)ac->key_len, ac->key, ac->len, (long long)rev);
	}
	/* The kernel's pages were written through: drop them at next open. */
	cache_forget_locked(in);
	pthread_mutex_unlock(&in->lock);
	if (rc < 0) {
		inval_attrs(fs, in->ino);
		fs_reply_err(ac->req, fs_errno(rc),
		             ac->flush ? "close" : "fsync", "'%.*s'",
		             (int)ac->key_len, ac->key);
	} else {
		fuse_reply_err(ac->req, 0);
	}
	free(ac->key);
	free(ac);
	acommit_end(fs);
}

/*
 * A new commit in flight for req on in, with room for a value of len
 * bytes (the header zeroed, the value not): NULL and *rc = -errno on
 * failure.  Called with in->lock held (the key is copied now).
 */
static struct fs_acommit *acommit_new(struct fs *fs, fuse_req_t req,
                                      struct fs_inode *in, bool flush,
                                      size_t len, int *rc)
{
	struct fs_acommit *ac = malloc(sizeof(*ac) + len);

	if (!ac) {
		*rc = -ENOMEM;
		return NULL;
	}
	memset(ac, 0, sizeof(*ac));
	*rc = fs_inode_key(fs, in, &ac->key, &ac->key_len);
	if (*rc < 0) {
		free(ac);
		return NULL;
	}
	ac->fs = fs;
	ac->req = req;
	ac->in = in;
	ac->flush = flush;
	ac->len = len;
	return ac;
}

/*
 * Queue ac's txn, counted in flight for fs_acommit_drain.  Returns 0, or
 * an ENG_E_* code after freeing ac (nothing queued).
 */
static int acommit_submit(struct fs *fs, struct fs_acommit *ac)
{
	int rc;

	pthread_mutex_lock(&fs->acommit_lock);
	fs->acommits++;
	pthread_mutex_unlock(&fs->acommit_lock);
	rc = eng_txn_async(fs->e, &ac->txn, acommit_done, ac);
	if (rc < 0) {
		acommit_end(fs);
		free(ac->key);
		free(ac);
	}
	return rc;
}

/*
 * Queue the commit of in's dirty buffer for req and return: the worker
 * thread goes back to serving requests while the group commit's fsync
 * runs, and acommit_done() answers.  Called with in->lock held, which
 * fixes the commit's place in the commit order against every other commit
 * of the inode.  Returns 1 if queued, 0 if the caller must commit
 * synchronously (a conditional KEY@ifrev file, or a backend without
 * asynchronous commits), or -errno (nothing queued).
 */
static int acommit_queue_locked(struct fs *fs, fuse_req_t req,
                                struct fs_inode *in, bool flush)
{
	struct fs_wbuf *wb = in->wbuf;
	struct fs_acommit *ac;
	int rc;

	if (in->kind == FS_I_IFREV ||
	    __atomic_load_n(&fs->no_acommit, __ATOMIC_RELAXED))
		return 0;
	ac = acommit_new(fs, req, in, flush, wb->len, &rc);
	if (!ac)
		return rc;
	if (wb->len)
		memcpy(ac->data, wb->data, wb->len);
	ac->op = (struct eng_op){.type = ENG_OP_PUT,
	                         .key = ac->key,
	                         .key_len = ac->key_len,
	                         .value = ac->data,
	                         .value_len = ac->len,
	                         .lease = wb->lease};
	ac->txn.success = &ac->op;
	ac->txn.nsuccess = 1;
	ac->seq = wb->commit_seq + 1;
	fs_own_begin(fs);
	rc = acommit_submit(fs, ac);
	if (rc < 0) {
		fs_own_end(fs, 0);
		if (rc != ENG_E_NOT_SUPPORTED)
			return -fs_errno(rc);
		__atomic_store_n(&fs->no_acommit, true, __ATOMIC_RELAXED);
		return 0;
	}
	/* The completion waits for in->lock: these are set before it runs. */
	wb->commit_seq = ac->seq;
	wb->acommits++;
	wb->dirty = wb->written = false;
	return 1;
}

/*
 * An fsync, or a close, of a buffer that is clean only because its commit
 * is queued (by another descriptor's close) must not be answered before
 * that commit is durable, nor with 0 if it is refused (the descriptor may
 * have written some of those bytes): queue an empty txn behind it, whose
 * completion (afsync_done) answers.  Before commits were asynchronous
 * such a call waited on in->lock for the commit.  Called with in->lock
 * held; returns 1 if queued or -errno.
 */
static int afsync_queue_locked(struct fs *fs, fuse_req_t req,
                               struct fs_inode *in, bool flush)
{
	struct fs_acommit *ac;
	int rc;

	ac = acommit_new(fs, req, in, flush, 0, &rc);
	if (!ac)
		return rc;
	ac->barrier = true;
	rc = acommit_submit(fs, ac);
	return rc < 0 ? -fs_errno(rc) : 1;
}

/*
 * A refused write loses nothing: the buffer goes back to the stored value
 * (undoing an O_TRUNC too) and is clean again.  Called with in->lock held.
 */
static void wbuf_reset_locked(struct fs *fs, struct fs_inode *in)
{
	struct fs_wbuf *wb = in->wbuf;
	struct eng_kv kv = {0};
	char *key = NULL;
	size_t key_len;

	wb->len = 0;
	wb->dirty = wb->written = false;
	if (fs_inode_key(fs, in, &key, &key_len) == 0 &&
	    eng_get(fs->e, key, key_len, 0, NULL, &kv) == 0 && kv.mod_rev > 0 &&
	    wbuf_reserve(wb, kv.value_len) == 0) {
		memcpy(wb->data, kv.value, kv.value_len);
		wb->len = kv.value_len;
	}
	eng_kv_release(&kv);
	free(key);
	/* The kernel set its size at the O_TRUNC and its pages may hold the
	 * refused bytes: make it ask again. */
	cache_forget_locked(in);
	fs_inval_later(fs, in->ino);
}

int fs_wbuf_truncate(struct fs *fs, struct fs_inode *in, size_t size)
{
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	if (!in->wbuf)
		goto out;
	rc = -in->wbuf->error;
	if (rc < 0)
		goto out;
	rc = wbuf_reserve(in->wbuf, size);
	if (rc < 0)
		goto out;
	if (size > in->wbuf->len)
		memset(in->wbuf->data + in->wbuf->len, 0, size - in->wbuf->len);
	if (size != in->wbuf->len)
		in->wbuf->dirty = in->wbuf->written = true;
	in->wbuf->len = size;
	rc = 1;
out:
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* Open a live file or a conditional view for writing. */
/* Is in's key no longer key (renamed)?  Takes itab_lock (after in->lock). */
static bool key_moved(struct fs *fs, struct fs_inode *in, const char *key,
                      size_t key_len)
{
	char *now = NULL;
	size_t now_len;
	bool moved;

	if (fs_inode_key(fs, in, &now, &now_len) < 0)
		return false;
	moved = now_len != key_len || memcmp(now, key, key_len) != 0;
	free(now);
	return moved;
}

static int open_writer(struct fs *fs, struct fs_inode *in, struct fs_fh *fh,
                       int flags)
{
	struct eng_kv cur = {0};
	char *key = NULL;
	size_t key_len;
	int rc;

again:
	rc = fs_inode_key(fs, in, &key, &key_len);
	if (rc < 0)
		return rc;
	rc = eng_get(fs->e, key, key_len, 0, NULL, &cur);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto out;
	}
	if (in->kind == FS_I_IFREV && cur.mod_rev > in->rev) {
		fs_logf(ENG_LOG_INFO,
		        "open of '%s@ifrev=%lld' refused: modified at "
		        "revision %lld",
		        key, (long long)in->rev, (long long)cur.mod_rev);
		rc = -ESTALE;
		goto out;
	}
	pthread_mutex_lock(&in->lock);
	/* A rename (which holds in->lock from its txn to the rekey) moved
	 * the key after our read: read the value under its new name. */
	if (!in->wbuf && in->kind == FS_I_FILE &&
	    key_moved(fs, in, key, key_len)) {
		pthread_mutex_unlock(&in->lock);
		eng_kv_release(&cur);
		free(key);
		key = NULL;
		goto again;
	}
	/* Two conditional writers of one REV would share the buffer and
	 * both "succeed" with one put: the second loses now. */
	rc = in->kind == FS_I_IFREV && in->wbuf
	         ? -ESTALE
	         : wbuf_join(in, &cur, (flags & O_TRUNC) != 0);
	/* The kernel's pages may soon hold bytes never committed. */
	cache_forget_locked(in);
	pthread_mutex_unlock(&in->lock);
	if (rc >= 0) {
		fh->writer = true;
		fh->trunc_join = rc == 1;
		rc = 0;
	}
out:
	eng_kv_release(&cur);
	free(key);
	return rc;
}

/* Drop the kernel's attributes of ino now (offset -1: attributes only,
 * which takes no page or inode lock, so it is safe inside a request). */
static void inval_attrs(struct fs *fs, fuse_ino_t ino)
{
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

/* Open a version for reading (live or at in->rev). */
static int open_reader(struct fs *fs, struct fs_inode *in, struct fs_fh *fh,
                       struct fuse_file_info *fi)
{
	char *key = NULL;
	size_t key_len;
	int rc;

	if (in->rev == 0) {
		pthread_mutex_lock(&in->lock);
		fh->from_wbuf = in->wbuf != NULL;
		pthread_mutex_unlock(&in->lock);
		if (fh->from_wbuf)
			return 0;
	}
	rc = fs_inode_key(fs, in, &key, &key_len);
	if (rc < 0)
		return rc;
	rc = eng_get(fs->e, key, key_len, in->rev, NULL, &fh->kv);
	free(key);
	if (rc < 0)
		return -fs_errno(rc);
	if (fh->kv.mod_rev == 0)
		return -ENOENT;
	pthread_mutex_lock(&in->lock);
	if (in->cache_users > 0 && in->cache_mod_rev != fh->kv.mod_rev) {
		fi->direct_io = 1; /* the pages are another version's */
	} else {
		fi->keep_cache =
		    in->cache_sure && in->cache_mod_rev == fh->kv.mod_rev;
		if (!fi->keep_cache) {
			in->cache_mod_rev = fh->kv.mod_rev;
			in->cache_sure = false;
			fh->cache_epoch = ++in->cache_epoch;
		}
		in->cache_users++;
		fh->cache_user = true;
	}
	pthread_mutex_unlock(&in->lock);
	/* The kernel's size may come from another version's short read,
	 * which attr_mod_rev does not see: only an open that keeps the pages
	 * of its own version trusts it. */
	if (!fi->keep_cache ||
	    __atomic_load_n(&in->attr_mod_rev, __ATOMIC_RELAXED) !=
	        fh->kv.mod_rev)
		inval_attrs(fs, in->ino);
	return 0;
}

static int open_special(struct fs *fs, struct fs_inode *in, struct fs_fh *fh,
                        bool wr)
{
	const struct fs_special *sp = fs_special_get(in->special);
	char *key = NULL;
	size_t key_len;
	int rc;

	if (fs_lease_is_file(in)) {
		rc = fs_lease_open(fs, in, wr, &fh->sbuf, &fh->slen);
		fh->held = rc == 0;
		fh->writer = rc == 0 && wr;
		return rc;
	}
	if (wr) {
		if (!sp->write)
			return -EACCES;
		fh->writer = true;
		return 0;
	}
	if (fs_ctl_is_snapshot(in->special))
		return fs_ctl_snapshot_open(fs, &fh->snap);
	/* The directory's prefix: a rename of the directory changes it. */
	rc = fs_inode_key(fs, in, &key, &key_len);
	if (rc < 0)
		return rc;
	if (!sp->read)
		rc = fs_watch_open(fs, key, key_len, in->rev, &fh->ws);
	else
		rc = sp->read(fs, key, key_len, in->rev, &fh->sbuf, &fh->slen);
	free(key);
	return rc;
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	bool wr = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct fs_fh *fh;
	char *key = NULL;
	size_t key_len;
	int rc = 0;

	if (!in) {
		fs_reply_err(req, ESTALE, "open", "unknown inode");
		return;
	}
	if (in->kind == FS_I_DIR) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, EISDIR, "open", "'%s'", FS_KSTR(key));
		goto out;
	}
	if (wr && fs_inode_read_only(fs, in)) {
		const struct fs_special *sp = in->kind == FS_I_SPECIAL
		                                  ? fs_special_get(in->special)
		                                  : NULL;

		key = fs_inode_key_str(fs, in);
		/* A control file's key is its directory's: name the file. */
		fs_reply_err(req, EROFS, "open", "'%s%s' is read-only",
		             FS_KSTR(key), sp ? sp->name : "");
		goto out;
	}
	fh = fh_new(fs, in);
	if (!fh) {
		fs_reply_err(req, ENOMEM, "open", "handle");
		return;
	}
	switch (in->kind) {
	case FS_I_FILE:
		rc = wr ? open_writer(fs, in, fh, fi->flags)
		        : open_reader(fs, in, fh, fi);
		break;
	case FS_I_IFREV:
		if (!wr) {
			rc = -EACCES;
			break;
		}
		rc = open_writer(fs, in, fh, fi->flags);
		fi->direct_io = 1;
		break;
	case FS_I_HISTORY:
		rc = fs_inode_key(fs, in, &key, &key_len);
		if (rc == 0)
			rc = fs_hist_open(fs, key, key_len, &fh->hist);
		fi->direct_io = 1;
		break;
	case FS_I_SPECIAL:
		rc = open_special(fs, in, fh, wr);
		fi->direct_io = 1;
		fi->nonseekable = fh->ws != NULL;
		break;
	case FS_I_DIR:
		rc = -EISDIR;
		break;
	}
	if (rc < 0) {
		fh_free(fs, fh);
		if (!key)
			key = fs_inode_key_str(fs, in);
		fs_reply_err(req, -rc, "open", "'%s'", FS_KSTR(key));
		goto out;
	}
	fi->fh = (uintptr_t)fh;
	/* A reader's close has nothing to commit, nor has a lease file's
	 * (its TTL is applied at write): no FLUSH round trip.  A renewing
	 * `touch` is then LOOKUP-free (fs_lease.c), OPEN, SETATTR, RELEASE. */
	fi->noflush = !wr || fs_lease_is_file(in);
	fs_handle_link(fs, &fs->file_handles, &fh->link);
	if (fuse_reply_open(req, fi) != 0) {
		/* Interrupted: the kernel will not release this handle. */
		if (fh->writer && in->kind != FS_I_SPECIAL) {
			/* The caller saw the open fail: a buffer nobody else
			 * writes goes, dirty or not, and its O_TRUNC with it
			 * (else readers of this mount would read the truncated
			 * buffer and no release would ever commit or free it).
			 * An O_TRUNC of a buffer other writers share stays
			 * (not undone: known limit). */
			pthread_mutex_lock(&in->lock);
			if (--in->wbuf->nwriters == 0) {
				free(in->wbuf->data);
				free(in->wbuf);
				__atomic_store_n(&in->wbuf, NULL,
				                 __ATOMIC_RELEASE);
			}
			pthread_mutex_unlock(&in->lock);
		}
		fh_free(fs, fh);
	}
out:
	free(key);
}

/* `echo TTL > @leases/NEW`: the lease is granted when the TTL is written
 * (at the write); until then the open descriptor makes the name visible. */
static void create_lease(fuse_req_t req, struct fs *fs, const char *name,
                         struct fuse_file_info *fi)
{
	struct fuse_entry_param ep = {0};
	struct fs_inode *in;
	struct fs_fh *fh;
	int rc;

	in = fs_lease_inode(fs, name, &rc);
	if (!in)
		goto fail;
	fh = fh_new(fs, in);
	rc = fh ? open_special(fs, in, fh, true) : -ENOMEM;
	if (rc < 0) {
		fh_free(fs, fh);
		fs_inode_forget(fs, in->ino, 1);
		goto fail;
	}
	if (fs_inode_stat(fs, in, &ep.attr) < 0)
		fs_fill_file_attr(fs, in, NULL, &ep.attr);
	ep.ino = in->ino;
	fi->direct_io = 1;
	fi->noflush = 1; /* the TTL is applied at write (fs_op_write) */
	fi->fh = (uintptr_t)fh;
	fs_handle_link(fs, &fs->file_handles, &fh->link);
	if (fuse_reply_create(req, &ep, fi) != 0) {
		fh_free(fs, fh);
		fs_inode_forget(fs, in->ino, 1);
	}
	return;
fail:
	fs_reply_err(req, -rc, "create", "@leases/%s", name);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                  mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent), *in;
	struct fuse_entry_param ep = {0};
	struct fs_pname pn;
	struct eng_kv cur = {0};
	struct fs_fh *fh = NULL;
	enum fs_ikind kind = FS_I_FILE;
	eng_rev_t rev = 0;
	char *key = NULL;
	size_t key_len, size = 0;
	int rc;

	if (!p) {
		fs_reply_err(req, ESTALE, "create", "unknown parent inode");
		return;
	}
	if (fs_lease_is_dir(p)) {
		create_lease(req, fs, name, fi);
		return;
	}
	if (fs_inode_read_only(fs, p)) {
		fs_reply_err(req, EROFS, "create", "'%s' in a read-only tree",
		             name);
		return;
	}
	if (strlen(name) > FS_NAME_MAX) {
		fs_reply_err(req, ENAMETOOLONG, "create", "name over %d bytes",
		             FS_NAME_MAX);
		return;
	}
	if (fs_parse_name(name, &pn) == 0 && pn.kind == FS_P_IFREV) {
		char base[FS_NAME_MAX + 1];

		memcpy(base, pn.base, pn.base_len);
		base[pn.base_len] = '\0';
		kind = FS_I_IFREV;
		rev = pn.rev;
		rc = fs_name_to_key(fs, p, base, false, true, &key, &key_len);
	} else {
		rc = fs_name_to_key(fs, p, name, false, true, &key, &key_len);
	}
	if (rc < 0)
		goto fail;
	rc = eng_get(fs->e, key, key_len, 0, NULL, &cur);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto fail;
	}
	if (cur.mod_rev > 0 && (fi->flags & O_EXCL)) {
		rc = -EEXIST;
		goto fail;
	}
	if (kind == FS_I_IFREV && cur.mod_rev > rev) {
		fs_logf(ENG_LOG_INFO,
		        "create of '%s' refused: modified at "
		        "revision %lld",
		        name, (long long)cur.mod_rev);
		rc = -ESTALE;
		goto fail;
	}
	in = fs_inode_get(fs, kind, rev, 0, key, key_len, 1);
	fh = in ? fh_new(fs, in) : NULL;
	if (!fh) {
		if (in)
			fs_inode_forget(fs, in->ino, 1);
		rc = -ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&in->lock);
	rc = kind == FS_I_IFREV && in->wbuf
	         ? -ESTALE /* another conditional writer of REV: see above */
	         : wbuf_join(in, &cur, (fi->flags & O_TRUNC) != 0);
	if (rc >= 0)
		size = in->wbuf->len;
	pthread_mutex_unlock(&in->lock);
	if (rc < 0) {
		fs_inode_forget(fs, in->ino, 1);
		goto fail;
	}
	fh->writer = true;
	fh->trunc_join = rc == 1;
	if (kind == FS_I_IFREV)
		fi->direct_io = 1;
	/* As fs_inode_stat() of a pending file, from the read above. */
	fs_fill_file_attr(fs, in, &cur, &ep.attr);
	ep.attr.st_size = (off_t)size;
	ep.attr.st_blocks = (ep.attr.st_size + 511) / 512;
	if (kind == FS_I_IFREV && cur.mod_rev == 0)
		ep.attr.st_mode = S_IFREG | 0200;
	ep.ino = in->ino;
	ep.attr_timeout = ep.entry_timeout =
	    kind == FS_I_IFREV ? 0 : fs->cfg.attr_timeout;
	fi->fh = (uintptr_t)fh;
	fs_handle_link(fs, &fs->file_handles, &fh->link);
	eng_kv_release(&cur);
	free(key);
	if (fuse_reply_create(req, &ep, fi) != 0) {
		fs_op_release(NULL, in->ino, fi);
		fs_inode_forget(fs, in->ino, 1);
	}
	return;
fail:
	fh_free(fs, fh);
	eng_kv_release(&cur);
	free(key);
	fs_reply_err(req, -rc, "create", "'%s'", name);
}

/* Copy [off, off + size) of src (len bytes) into buf; the count. */
static size_t copy_range(char *buf, const char *src, size_t len, size_t size,
                         off_t off)
{
	size_t n;

	if (off < 0 || (size_t)off >= len)
		return 0;
	n = len - (size_t)off < size ? len - (size_t)off : size;
	memcpy(buf, src + off, n);
	return n;
}

/*
 * A reader's bytes.  The first read of a descriptor whose open had the
 * pages dropped proves the drop done (see the top of this file).
 */
static ssize_t read_version(struct fs_inode *in, struct fs_fh *fh, char *buf,
                            size_t size, off_t off)
{
	if (fh->cache_user) {
		pthread_mutex_lock(&in->lock);
		if (fh->cache_epoch && fh->cache_epoch == in->cache_epoch)
			in->cache_sure = true;
		fh->cache_epoch = 0;
		pthread_mutex_unlock(&in->lock);
	}
	return (ssize_t)copy_range(buf, fh->kv.value, fh->kv.value_len, size,
	                           off);
}

/*
 * A reader opened while this mount was writing the file read the write
 * buffer; once the last writer released it, the reader goes on with the
 * value the writer committed (fetched once), not an empty file (the kernel
 * would take a 0-byte read for the file's new size).
 */
static ssize_t read_committed(struct fs *fs, struct fs_inode *in,
                              struct fs_fh *fh, char *buf, size_t size,
                              off_t off)
{
	char *key = NULL;
	size_t key_len, n;
	int rc = 0;

	pthread_mutex_lock(&fh->lock);
	if (fh->kv.mod_rev == 0) {
		rc = fs_inode_key(fs, in, &key, &key_len);
		if (rc == 0) {
			rc = eng_get(fs->e, key, key_len, 0, NULL, &fh->kv);
			rc = rc < 0 ? -fs_errno(rc) : 0;
		}
		free(key);
	}
	n = rc == 0 ? copy_range(buf, fh->kv.value, fh->kv.value_len, size, off)
	            : 0;
	pthread_mutex_unlock(&fh->lock);
	return rc < 0 ? rc : (ssize_t)n;
}

/*
 * Every read copies into its own buffer and replies from it: once the
 * reply is written the kernel may release the handle (and forget the
 * inode) at once, from another thread, so nothing of theirs may be touched
 * after fuse_reply_buf(), not even a lock.
 */
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                struct fuse_file_info *fi)
{
	struct fs_fh *fh = fh_of(fi);
	struct fs_inode *in = fh->in;
	char *buf;
	ssize_t n = 0;

	if (fh->ws) {
		/* Answered now or later, from its own copy. */
		fs_watch_read(req, fh->ws, size);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fs_reply_err(req, ENOMEM, "read", "buffer of %zu bytes", size);
		return;
	}
	if (fh->hist) {
		n = fs_hist_read(fh->hist, buf, size, off);
	} else if (fh->snap) {
		pthread_mutex_lock(&fh->lock);
		n = fs_ctl_snapshot_read(fh->snap, buf, size, off);
		pthread_mutex_unlock(&fh->lock);
	} else if (in->kind == FS_I_SPECIAL) {
		pthread_mutex_lock(&fh->lock);
		n = (ssize_t)copy_range(buf, fh->sbuf, fh->slen, size, off);
		pthread_mutex_unlock(&fh->lock);
	} else if (fh->writer || fh->from_wbuf) {
		bool gone;

		pthread_mutex_lock(&in->lock);
		gone = !in->wbuf;
		if (!gone)
			n = (ssize_t)copy_range(buf, in->wbuf->data,
			                        in->wbuf->len, size, off);
		pthread_mutex_unlock(&in->lock);
		if (gone && !fh->writer)
			n = read_committed(req_fs(req), in, fh, buf, size, off);
	} else {
		n = read_version(in, fh, buf, size, off);
	}
	if (n < 0) {
		char *key = fs_inode_key_str(req_fs(req), in);

		fs_reply_err(req, (int)-n, "read", "'%s'", FS_KSTR(key));
		free(key);
	} else {
		fuse_reply_buf(req, buf, (size_t)n);
	}
	free(buf);
}

/* Is KEY still at a mod_revision <= REV?  0, -ESTALE or -errno. */
static int ifrev_check(struct fs *fs, struct fs_inode *in)
{
	struct eng_kv cur = {0};
	char *key = NULL;
	size_t key_len;
	int rc = fs_inode_key(fs, in, &key, &key_len);

	if (rc < 0)
		return rc;
	rc = eng_get(fs->e, key, key_len, 0, NULL, &cur);
	if (rc < 0)
		rc = -fs_errno(rc);
	else if (cur.mod_rev > in->rev)
		rc = -ESTALE;
	eng_kv_release(&cur);
	free(key);
	return rc;
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
                 off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_fh *fh = fh_of(fi);
	struct fs_inode *in = fh->in;
	struct fs_wbuf *wb;
	size_t end;
	int rc;

	if (!fh->writer) {
		fs_reply_err(req, EBADF, "write", "not open for writing");
		return;
	}
	if (in->kind == FS_I_SPECIAL) {
		size_t slen0;

		pthread_mutex_lock(&fh->lock);
		slen0 = fh->slen;
		end = (size_t)off + size;
		if (off < 0 || end > FS_SPECIAL_WRITE_MAX) {
			pthread_mutex_unlock(&fh->lock);
			fs_reply_err(req, EFBIG, "write", "control file");
			return;
		}
		if (end > fh->slen) {
			char *n = realloc(fh->sbuf, end);

			if (!n) {
				pthread_mutex_unlock(&fh->lock);
				fs_reply_err(req, ENOMEM, "write", "buffer");
				return;
			}
			memset(n + fh->slen, 0, end - fh->slen);
			fh->sbuf = n;
			fh->slen = end;
		}
		memcpy(fh->sbuf + off, buf, size);
		fh->sdirty = true;
		rc = 0;
		/* A lease file's close sends no FLUSH (see fs_op_open): its
		 * TTL takes effect at the write, whose error the shell's
		 * `echo TTL >` reports, unlike close()'s.  A refused write
		 * leaves the content as it was before it. */
		if (fs_lease_is_file(in)) {
			rc = fs_lease_commit(fs, in, fh->sbuf, fh->slen);
			if (rc < 0 && (size_t)off >= slen0)
				fh->slen = slen0;
			fh->sdirty = false;
		}
		pthread_mutex_unlock(&fh->lock);
		if (rc < 0)
			fs_reply_err(req, -rc, "write", "@leases/%s: '%.*s'",
			             in->key, (int)(size < 64 ? size : 64),
			             buf);
		else
			fuse_reply_write(req, size);
		return;
	}
	/* KEY@ifrev=REV: a conflict fails the write already, so that the
	 * shell's `echo > ...`, which ignores close()'s error, reports it. */
	if (in->kind == FS_I_IFREV) {
		rc = ifrev_check(fs, in);
		if (rc < 0) {
			char *key = fs_inode_key_str(fs, in);

			fs_reply_err(req, -rc, "write", "'%s@ifrev=%lld'",
			             FS_KSTR(key), (long long)in->rev);
			free(key);
			return;
		}
	}
	pthread_mutex_lock(&in->lock);
	wb = in->wbuf;
	if (wb->error) {
		rc = wb->error;
		pthread_mutex_unlock(&in->lock);
		fs_reply_err(req, rc, "write",
		             "an earlier write of this file was refused");
		return;
	}
	if (fi->flags & O_APPEND)
		off = (off_t)wb->len;
	end = (size_t)off + size;
	if (off < 0 || end > fs->cfg.max_value) {
		char *key;

		wbuf_reset_locked(fs, in);
		wb->error = EFBIG;
		pthread_mutex_unlock(&in->lock);
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, EFBIG, "write",
		             "'%s': %zu bytes would pass max_value %zu; the "
		             "write is dropped, the stored value kept, and "
		             "the file's close will fail too",
		             FS_KSTR(key), end, fs->cfg.max_value);
		free(key);
		return;
	}
	rc = wbuf_reserve(wb, end);
	if (rc < 0) {
		pthread_mutex_unlock(&in->lock);
		fs_reply_err(req, -rc, "write", "buffer of %zu bytes", end);
		return;
	}
	if ((size_t)off > wb->len)
		memset(wb->data + wb->len, 0, (size_t)off - wb->len);
	memcpy(wb->data + off, buf, size);
	if (end > wb->len)
		wb->len = end;
	wb->dirty = wb->written = true;
	pthread_mutex_unlock(&in->lock);
	fuse_reply_write(req, size);
}

static int special_commit(struct fs *fs, struct fs_fh *fh)
{
	const struct fs_special *sp = fs_special_get(fh->in->special);
	int rc = 0;

	pthread_mutex_lock(&fh->lock);
	if (fh->sdirty) {
		rc = fs_lease_is_file(fh->in)
		         ? fs_lease_commit(fs, fh->in, fh->sbuf ? fh->sbuf : "",
		                           fh->slen)
		         : sp->write(fs, fh->sbuf ? fh->sbuf : "", fh->slen);
		if (rc == 0)
			fh->sdirty = false;
	}
	pthread_mutex_unlock(&fh->lock);
	return rc;
}

/*
 * Commit a descriptor's buffer for a close (flush) or an fsync.  With req,
 * a commit that can run asynchronously is queued and 1 returned: the
 * completion answers req.  Otherwise returns 0 or -errno.
 */
static int commit_fh(struct fs *fs, struct fs_fh *fh, bool flush,
                     fuse_req_t req)
{
	struct fs_inode *in = fh->in;
	struct fs_wbuf *wb;
	int rc = 0;

	if (!fh->writer)
		return 0;
	if (in->kind == FS_I_SPECIAL)
		return special_commit(fs, fh);
	pthread_mutex_lock(&in->lock);
	wb = in->wbuf;
	if (wb && wb->error) {
		rc = -wb->error;
	} else if (wb && wb->dirty && !wb->orphan && (!flush || wb->written)) {
		rc = req ? acommit_queue_locked(fs, req, in, flush) : 0;
		if (rc == 0)
			rc = commit_locked(fs, in);
	} else if (wb && !wb->orphan && req && wb->acommits > 0) {
		rc = afsync_queue_locked(fs, req, in, flush);
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

void fs_wbuf_orphan_locked(struct fs_inode *in)
{
	if (in->wbuf) {
		in->wbuf->orphan = true;
		in->wbuf->dirty = in->wbuf->written = false;
	}
}

int fs_wbuf_commit(struct fs *fs, struct fs_inode *in)
{
	int rc;

	pthread_mutex_lock(&in->lock);
	rc = commit_locked(fs, in);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/*
 * At unmount no request runs any more: the inodes cannot go away, so the
 * ones with a dirty buffer are collected under itab_lock and committed
 * outside it (the commit takes itab_lock to copy the key).
 */
void fs_commit_all(struct fs *fs)
{
	struct fs_inode **dirty = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&fs->itab_lock);
	for (size_t i = 0; i < fs->nbuckets; i++) {
		for (struct fs_inode *in = fs->by_ino[i]; in;
		     in = in->next_ino) {
			struct fs_inode **d;

			if (!in->wbuf || !in->wbuf->dirty)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				d = realloc(dirty, cap * sizeof(*d));
				if (!d)
					break;
				dirty = d;
			}
			dirty[n++] = in;
		}
	}
	pthread_mutex_unlock(&fs->itab_lock);
	for (size_t i = 0; i < n; i++) {
		struct fs_inode *in = dirty[i];
		char *key;
		int rc;

		pthread_mutex_lock(&in->lock);
		rc = commit_locked(fs, in);
		pthread_mutex_unlock(&in->lock);
		key = fs_inode_key_str(fs, in);
		if (rc < 0)
			fs_logf(ENG_LOG_ERR,
			        "unmount: '%s' lost its last write: %s",
			        FS_KSTR(key), strerror(-rc));
		else
			fs_logf(
			    ENG_LOG_INFO,
			    "unmount: committed '%s', still open for writing",
			    FS_KSTR(key));
		free(key);
	}
	free(dirty);
}

/*
 * Commit a descriptor's buffer for a close (flush) or an fsync and reply.
 * A refused commit drops the kernel's attributes (size, and existence for
 * a create) before the call returns, so that the caller's next stat asks;
 * commit_locked also queues the pages' invalidation.
 */
static void commit_reply(fuse_req_t req, fuse_ino_t ino,
                         struct fuse_file_info *fi, bool flush)
{
	struct fs *fs = req_fs(req);
	int rc = commit_fh(fs, fh_of(fi), flush, req);

	if (rc == 1)
		return; /* queued: acommit_done() answers */
	if (rc < 0) {
		char *key = fs_inode_key_str(fs, fh_of(fi)->in);

		inval_attrs(fs, ino);
		fs_reply_err(req, -rc, flush ? "close" : "fsync", "'%s'",
		             FS_KSTR(key));
		free(key);
	} else {
		fuse_reply_err(req, 0);
	}
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	commit_reply(req, ino, fi, true);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                 struct fuse_file_info *fi)
{
	commit_reply(req, ino, fi, false);
}

/* req is NULL when called to undo an interrupted create. */
/*
 * A release's commit, with in->lock held: nobody waits for it, so a
 * refusal can only be logged (in->lock, then itab_lock for the key: the
 * documented order).
 */
static void release_commit_locked(struct fs *fs, struct fs_inode *in,
                                  const char *what)
{
	int rc = commit_locked(fs, in);

	if (rc < 0) {
		char *key = fs_inode_key_str(fs, in);

		fs_logf(ENG_LOG_ERR, "release: '%s' lost %s: %s", FS_KSTR(key),
		        what, strerror(-rc));
		free(key);
	}
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_fh *fh = fh_of(fi);
	struct fs_inode *in = fh->in;
	struct fs *fs = req ? req_fs(req) : NULL;

	if (fh->writer && in->kind == FS_I_SPECIAL) {
		if (fs)
			special_commit(fs, fh);
	} else if (fh->writer) {
		pthread_mutex_lock(&in->lock);
		if (--in->wbuf->nwriters == 0) {
			/* Normally flush committed already; a descriptor
			 * that was never closed (the writer died) ends up
			 * here. */
			if (fs)
				release_commit_locked(fs, in, "its last write");
			free(in->wbuf->data);
			free(in->wbuf);
			__atomic_store_n(&in->wbuf, NULL, __ATOMIC_RELEASE);
		} else if (fs && fh->trunc_join && !in->wbuf->written) {
			/* Its truncation is the buffer's only change (see
			 * wbuf_join): commit it now, not at the holder's
			 * close. */
			release_commit_locked(fs, in, "its truncation");
		}
		pthread_mutex_unlock(&in->lock);
	}
	fh_free(fs, fh);
	if (req)
		fuse_reply_err(req, 0);
}

void fs_op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                struct fuse_pollhandle *ph)
{
	struct fs_fh *fh = fh_of(fi);

	if (fh->ws) {
		fs_watch_poll(req, fh->ws, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
}

void fs_file_release_all(struct fs *fs)
{
	for (;;) {
		struct fs_hlink *l;
		struct fs_fh *fh;

		pthread_mutex_lock(&fs->handles_lock);
		l = fs->file_handles.next;
		pthread_mutex_unlock(&fs->handles_lock);
		if (l == &fs->file_handles)
			break;
		fh = (struct fs_fh *)l;
		/* Buffers were committed by fs_commit_all(); drop the share. */
		if (fh->writer && fh->in->kind != FS_I_SPECIAL) {
			pthread_mutex_lock(&fh->in->lock);
			if (fh->in->wbuf && --fh->in->wbuf->nwriters == 0) {
				free(fh->in->wbuf->data);
				free(fh->in->wbuf);
				__atomic_store_n(&fh->in->wbuf, NULL,
				                 __ATOMIC_RELEASE);
			}
			pthread_mutex_unlock(&fh->in->lock);
		}
		fh_free(fs, fh);
	}
}
