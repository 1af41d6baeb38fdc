/*
 * fs_rename.c — unlink and rename.
 *
 * A file rename is one txn: put the target with the source's value and
 * lease, delete the source, on condition that the source's mod_revision is
 * still the one read (a concurrent change is never lost: the txn is retried,
 * up to FS_RENAME_TRIES times, then EAGAIN).  A directory rename is one txn
 * too: every key under the source prefix (its marker included) is put under
 * the target prefix and the source range deleted, on condition that nothing
 * under the source changed since it was read and that the target holds
 * nothing but its marker.  Above FS_RENAME_DIR_MAX keys it fails EXDEV so
 * that mv(1) falls back to copy + delete.  After a rename the inode table
 * is rekeyed: the kernel moved its dentries and keeps the same inodes.  A
 * file rename holds the write buffers' locks of both names from its txn to
 * the rekey, so that a concurrent close of the source commits either before
 * the rename (which then moves the new value) or under the new name, never
 * back under the old one; a close's commit queued before the lock was taken
 * (asynchronous, fs_file.c) may not have landed yet, so a source missing
 * from the store is looked for again behind it (still_missing).  A
 * directory rename does not (see reference.md).
 */
#include "fs_int.h"
#include "fs_replay.h"
#include "fs_lease.h"

#include <errno.h>
#include <stdio.h> /* RENAME_NOREPLACE */
#include <stdlib.h>
#include <string.h>

#define FS_RENAME_TRIES   8
#define FS_RENAME_DIR_MAX 1000

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A file created by this mount and not committed yet. */
static bool is_pending(struct fs *fs, const char *key, size_t len)
{
	return fs_inode_pending(fs, key, len);
}

/*
 * What (parent, name) names: a file (*is_dir false, key) or a directory
 * (*is_dir true, key = its prefix).  0 or -errno.
 */
static int resolve_child(struct fs *fs, struct fs_inode *p, const char *name,
                         char **key, size_t *key_len, bool *is_dir)
{
	struct fs_dname dn;
	struct eng_kv kv = {0};
	char *k;
	size_t kl;
	int rc;

	if (strchr(name, '@'))
		return -EINVAL;
	rc = fs_name_decode(name, strlen(name), &dn);
	if (rc < 0)
		return rc;
	rc = fs_name_to_key(fs, p, name, true, false, &k, &kl);
	if (rc < 0)
		return rc;
	if (!dn.twin && kl > 1 && (dn.hashed || dn.len > 0)) {
		rc = eng_get(fs->e, k, kl - 1, 0, NULL, &kv);
		if (rc < 0) {
			free(k);
			return -fs_errno(rc);
		}
		if (kv.mod_rev > 0 || is_pending(fs, k, kl - 1)) {
			eng_kv_release(&kv);
			k[kl - 1] = '\0';
			*key = k;
			*key_len = kl - 1;
			*is_dir = false;
			return 0;
		}
		eng_kv_release(&kv);
	}
	rc = fs_prefix_exists(fs, k, kl, 0, NULL);
	if (rc <= 0) {
		free(k);
		return rc < 0 ? rc : -ENOENT;
	}
	*key = k;
	*key_len = kl;
	*is_dir = true;
	return 0;
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent);
	char *key = NULL;
	size_t key_len;
	struct fs_inode *w;
	bool pending;
	int64_t deleted = 0;
	eng_rev_t rev = 0;
	int rc;

	if (fs_replay_req(fs, req)) {
		/* an inotify replay of a deletion already made (fs_replay.c) */
		fuse_reply_err(req, 0);
		return;
	}
	if (!p) {
		fs_reply_err(req, ESTALE, "unlink", "unknown parent inode");
		return;
	}
	if (fs_lease_is_dir(p)) {
		fs_lease_unlink(req, fs, name);
		return;
	}
	if (fs_inode_read_only(fs, p)) {
		fs_reply_err(req, EROFS, "unlink", "'%s' in a read-only tree",
		             name);
		return;
	}
	rc = fs_name_to_key(fs, p, name, false, false, &key, &key_len);
	if (rc < 0)
		goto fail;
	/*
	 * An open writer's commit (a close, or the release of a create not
	 * committed yet) must come before the delete or never: with its
	 * inode lock held across the delete, the buffer is then orphaned.
	 */
	w = fs_inode_writer(fs, key, key_len);
	if (w)
		pthread_mutex_lock(&w->lock);
	rc = fs_eng_delete(fs, key, key_len, NULL, 0, &deleted, &rev);
	pending = w && w->wbuf;
	if (rc == 0 && (deleted > 0 || pending) && w) {
		fs_wbuf_orphan_locked(w);
		fs_inode_unhash(fs, w);
	}
	if (w) {
		pthread_mutex_unlock(&w->lock);
		fs_inode_forget(fs, w->ino, 1);
	}
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto fail;
	}
	if (deleted == 0 && !pending) {
		rc = -ENOENT;
		goto fail;
	}
	if (deleted > 0) {
		fs_vanish_check(
		    fs, key, fs_key_parent_len(key, key_len, fs->prefix_len));
	}
	fs_logf(ENG_LOG_DEBUG, "unlink '%s' at revision %lld", key,
	        (long long)rev);
	free(key);
	fuse_reply_err(req, 0);
	return;
fail:
	free(key);
	fs_reply_err(req, -rc, "unlink", "'%s'", name);
}

/*
 * Whether a pending source is still missing from the store once every
 * commit queued before this call has landed: 1, 0 (it is stored now) or
 * -errno.  A close's commit of the source may be queued (eng_txn_async)
 * and not applied yet, under the old name; the caller holds the source's
 * inode lock, so no newer one can be queued, and a synchronous txn is
 * committed after it.
 */
static int still_missing(struct fs *fs, const char *src, size_t src_len)
{
	struct eng_cmp cmp = {.key = src,
	                      .key_len = src_len,
	                      .target = ENG_CMP_VERSION,
	                      .result = ENG_CMP_EQ,
	                      .number = 0};
	struct eng_txn t = {&cmp, 1, NULL, 0, NULL, 0};
	struct eng_txn_res tr = {0};
	int rc = eng_txn(fs->e, &t, &tr);

	if (rc == 0)
		rc = tr.succeeded ? 1 : 0;
	else
		rc = -fs_errno(rc);
	eng_txn_res_release(&tr);
	return rc;
}

static int rename_file(struct fs *fs, const char *src, size_t src_len,
                       const char *dst, size_t dst_len, unsigned flags)
{
	int rc = -EAGAIN;

	if (src_len == dst_len && memcmp(src, dst, src_len) == 0)
		return 0;
	for (int i = 0; i < FS_RENAME_TRIES; i++) {
		struct eng_kv kv = {0};
		struct eng_txn_res tr = {0};

		rc = eng_get(fs->e, src, src_len, 0, NULL, &kv);
		if (rc < 0)
			return -fs_errno(rc);
		if (kv.mod_rev == 0) {
			eng_kv_release(&kv);
			if (!is_pending(fs, src, src_len))
				return -ENOENT;
			rc = still_missing(fs, src, src_len);
			if (rc < 0)
				return rc;
			/* Not committed yet: the close will write the new
			 * name (the inode is rekeyed). */
			if (rc == 1)
				return 0;
			rc = -EAGAIN; /* a close committed it meanwhile */
			continue;
		}
		struct eng_cmp cmps[2] = {
		    {.key = src,
		     .key_len = src_len,
		     .target = ENG_CMP_MOD,
		     .result = ENG_CMP_EQ,
		     .number = kv.mod_rev},
		    {.key = dst,
		     .key_len = dst_len,
		     .target = ENG_CMP_VERSION,
		     .result = ENG_CMP_EQ,
		     .number = 0},
		};
		struct eng_op ops[2] = {
		    {.type = ENG_OP_PUT,
		     .key = dst,
		     .key_len = dst_len,
		     .value = kv.value ? kv.value : "",
		     .value_len = kv.value_len,
		     .lease = kv.lease},
		    {.type = ENG_OP_DELETE, .key = src, .key_len = src_len},
		};
		struct eng_txn t = {
		    cmps, (flags & RENAME_NOREPLACE) ? 2 : 1, ops, 2, NULL, 0};

		rc = fs_eng_txn(fs, &t, &tr);
		if (rc == ENG_E_LEASE_NOT_FOUND) {
			ops[0].lease = 0;
			rc = fs_eng_txn(fs, &t, &tr);
		}
		bool ok = rc == 0 && tr.succeeded;
		eng_rev_t rev = tr.header_rev;

		eng_txn_res_release(&tr);
		eng_kv_release(&kv);
		if (rc < 0)
			return -fs_errno(rc);
		if (ok) {
			fs_logf(ENG_LOG_DEBUG, "rename '%s' -> '%s' at %lld",
			        src, dst, (long long)rev);
			return 0;
		}
		if (flags & RENAME_NOREPLACE) {
			struct eng_kv d = {0};

			rc = eng_get(fs->e, dst, dst_len, 0, NULL, &d);
			bool exists = rc == 0 && d.mod_rev > 0;

			eng_kv_release(&d);
			if (exists)
				return -EEXIST;
		}
		rc = -EAGAIN;
	}
	return rc;
}

static int rename_dir(struct fs *fs, const char *src, size_t src_len,
                      const char *dst, size_t dst_len)
{
	char *send = malloc(src_len + 1), *dend = malloc(dst_len + 1);
	char *dlo = malloc(dst_len + 1);
	int rc = -EAGAIN;

	if (!send || !dend || !dlo) {
		rc = -ENOMEM;
		goto out;
	}
	size_t send_len = eng_prefix_end(src, src_len, send);
	size_t dend_len = eng_prefix_end(dst, dst_len, dend);

	memcpy(dlo, dst, dst_len);
	dlo[dst_len] = '\0';
	for (int i = 0; i < FS_RENAME_TRIES; i++) {
		struct eng_range_res res = {0};
		struct eng_txn_res tr = {0};
		struct eng_op *ops = NULL;
		char **keys = NULL;
		size_t n;
		struct eng_range_req rq = {.key = src,
		                           .key_len = src_len,
		                           .end = send,
		                           .end_len = send_len,
		                           .limit = FS_RENAME_DIR_MAX};

		rc = eng_range(fs->e, &rq, &res);
		if (rc < 0) {
			rc = -fs_errno(rc);
			eng_range_res_release(&res);
			goto out;
		}
		if (res.more) {
			fs_logf(ENG_LOG_INFO,
			        "rename of directory '%s' refused: more than "
			        "%d keys (EXDEV: mv copies instead)",
			        src, FS_RENAME_DIR_MAX);
			eng_range_res_release(&res);
			rc = -EXDEV;
			goto out;
		}
		n = res.n;
		ops = calloc(n + 1, sizeof(*ops));
		keys = calloc(n + 1, sizeof(*keys));
		rc = ops && keys ? 0 : -ENOMEM;
		for (size_t k = 0; k < n && rc == 0; k++) {
			const struct eng_kv *kv = &res.kvs[k];
			size_t rest = kv->key_len - src_len;

			keys[k] = malloc(dst_len + rest + 1);
			if (!keys[k]) {
				rc = -ENOMEM;
				break;
			}
			memcpy(keys[k], dst, dst_len);
			memcpy(keys[k] + dst_len, kv->key + src_len, rest);
			ops[k].type = ENG_OP_PUT;
			ops[k].key = keys[k];
			ops[k].key_len = dst_len + rest;
			ops[k].value = kv->value ? kv->value : "";
			ops[k].value_len = kv->value_len;
			ops[k].lease = kv->lease;
		}
		if (rc == 0) {
			ops[n].type = ENG_OP_DELETE;
			ops[n].key = src;
			ops[n].key_len = src_len;
			ops[n].end = send;
			ops[n].end_len = send_len;
			struct eng_cmp cmps[2] = {
			    /* Nothing under the source changed... */
			    {.key = src,
			     .key_len = src_len,
			     .end = send,
			     .end_len = send_len,
			     .target = ENG_CMP_MOD,
			     .result = ENG_CMP_LT,
			     .number = res.header_rev + 1},
			    /* ...and the target is empty (marker aside). */
			    {.key = dlo,
			     .key_len = dst_len + 1,
			     .end = dend,
			     .end_len = dend_len,
			     .target = ENG_CMP_VERSION,
			     .result = ENG_CMP_EQ,
			     .number = 0},
			};
			struct eng_txn t = {cmps, 2, ops, n + 1, NULL, 0};

			rc = fs_eng_txn(fs, &t, &tr);
			if (rc < 0)
				rc = -fs_errno(rc);
			else if (!tr.succeeded)
				rc = fs_prefix_exists(fs, dlo, dst_len + 1, 0,
				                      NULL) > 0
				         ? -ENOTEMPTY
				         : -EAGAIN;
		}
		for (size_t k = 0; keys && k < n; k++)
			free(keys[k]);
		free(keys);
		free(ops);
		eng_txn_res_release(&tr);
		eng_range_res_release(&res);
		if (rc != -EAGAIN)
			goto out;
	}
out:
	free(send);
	free(dend);
	free(dlo);
	return rc;
}

static void lock_pair(struct fs_inode *a, struct fs_inode *b)
{
	if (a && b && b->ino < a->ino) {
		struct fs_inode *t = a;

		a = b;
		b = t;
	}
	if (a)
		pthread_mutex_lock(&a->lock);
	if (b && b != a)
		pthread_mutex_lock(&b->lock);
}

static void unlock_pair(struct fs_inode *a, struct fs_inode *b)
{
	if (b && b != a)
		pthread_mutex_unlock(&b->lock);
	if (a)
		pthread_mutex_unlock(&a->lock);
}

/*
 * A file's rename, with the write buffers of both names locked (in inode
 * order) from the txn to the rekey: a close of the source committing in
 * between would put its buffer back under the old name, and one of a
 * replaced target would write over the value renamed onto its key (its
 * buffer is orphaned instead).
 */
static int rename_file_locked(struct fs *fs, const char *src, size_t src_len,
                              const char *dst, size_t dst_len, unsigned flags)
{
	bool same = src_len == dst_len && memcmp(src, dst, src_len) == 0;
	/* The source's inode even without a buffer: a writer opening it
	 * meanwhile joins under its lock, after the rekey. */
	struct fs_inode *sw = fs_inode_file(fs, src, src_len);
	struct fs_inode *dw = same ? NULL : fs_inode_writer(fs, dst, dst_len);
	int rc;

	lock_pair(sw, dw);
	rc = rename_file(fs, src, src_len, dst, dst_len, flags);
	if (rc == 0 && dw) {
		fs_wbuf_orphan_locked(dw);
		fs_inode_unhash(fs, dw);
	}
	if (rc == 0)
		fs_inode_rekey(fs, false, src, src_len, dst, dst_len);
	unlock_pair(sw, dw);
	if (sw)
		fs_inode_forget(fs, sw->ino, 1);
	if (dw)
		fs_inode_forget(fs, dw->ino, 1);
	return rc;
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent);
	struct fs_inode *np = fs_inode_find(fs, newparent);
	char *src = NULL, *dst = NULL;
	size_t src_len, dst_len;
	bool is_dir;
	int rc;

	if (!p || !np) {
		fs_reply_err(req, ESTALE, "rename", "unknown parent inode");
		return;
	}
	if (flags & RENAME_EXCHANGE) {
		fs_reply_err(req, EINVAL, "rename", "RENAME_EXCHANGE of '%s'",
		             name);
		return;
	}
	if (fs_inode_read_only(fs, p) || fs_inode_read_only(fs, np)) {
		fs_reply_err(req, EROFS, "rename", "'%s' -> '%s': read-only",
		             name, newname);
		return;
	}
	rc = resolve_child(fs, p, name, &src, &src_len, &is_dir);
	if (rc < 0)
		goto fail;
	rc = fs_name_to_key(fs, np, newname, is_dir, true, &dst, &dst_len);
	if (rc < 0)
		goto fail;
	if (is_dir) {
		if (dst_len >= src_len && memcmp(dst, src, src_len) == 0) {
			rc = -EINVAL; /* into itself */
			goto fail;
		}
		rc = rename_dir(fs, src, src_len, dst, dst_len);
		if (rc < 0)
			goto fail;
		fs_inode_rekey(fs, true, src, src_len, dst, dst_len);
	} else {
		rc = rename_file_locked(fs, src, src_len, dst, dst_len, flags);
		if (rc < 0)
			goto fail;
	}
	/* The next lookup makes the inode numbered for the new key. */
	fs_inval_entry_later(fs, newparent, newname);
	fs_vanish_check(fs, src,
	                fs_key_parent_len(src, src_len, fs->prefix_len));
	free(src);
	free(dst);
	fuse_reply_err(req, 0);
	return;
fail:
	fs_reply_err(req, -rc, "rename", "'%s' -> '%s'", name, newname);
	free(src);
	free(dst);
}
