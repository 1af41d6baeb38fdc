/*
 * fs_lookup.c — name resolution and attributes: lookup, getattr, setattr,
 * forget, statfs, mknod and the session's init.
 *
 * A name in a directory resolves, by fs_parse_name(), to a plain segment
 * (a key or a sub-prefix), a history form (KEY@REV, DIR@REV, @REV,
 * KEY@history, KEY@ifrev=REV) or a control name from the special table.  A
 * plain name is a file if the key exists, else a directory if any key lies
 * under key + "/"; a file created but not yet committed (its write buffer
 * is pending) also resolves.  Attributes come from the engine on every
 * getattr; the kernel caches them for attr_timeout and the notifier
 * invalidates what other paths change.  Nothing here holds a lock across an
 * engine call.
 */
#include "fs_int.h"
#include "fs_replay.h"
#include "fs_lease.h"
#include "fs_special.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#define FS_IMMUTABLE_TIMEOUT 3600.0

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* O_TRUNC comes with open, so `>` is one put, not a truncate first. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	/* Write-through: flush must see every byte to commit it. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= conn->capable & FUSE_CAP_EXPORT_SUPPORT;
	fs_logf(ENG_LOG_INFO, "FUSE session started (protocol %u.%u)",
	        conn->proto_major, conn->proto_minor);
}

static void ts_from_ns(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

bool fs_inode_read_only(struct fs *fs, const struct fs_inode *in)
{
	if (fs->cfg.read_only)
		return true;
	switch (in->kind) {
	case FS_I_DIR:
	case FS_I_FILE:
		return in->rev != 0;
	case FS_I_HISTORY:
		return true;
	case FS_I_SPECIAL:
		return fs_special_get(in->special)->write == NULL;
	case FS_I_IFREV:
		return false;
	}
	return true;
}

void fs_fill_dir_attr(struct fs *fs, struct fs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = S_IFDIR | (fs_inode_read_only(fs, in) ? 0555 : 0755);
	st->st_nlink = 2;
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_blocks = 8;
	st->st_mtim = st->st_ctim = st->st_atim = fs->start_time;
}

void fs_fill_file_attr(struct fs *fs, struct fs_inode *in,
                       const struct eng_kv *kv, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = S_IFREG | (fs_inode_read_only(fs, in) ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_blksize = 4096;
	if (kv && kv->mod_rev > 0) {
		st->st_size = (off_t)kv->value_len;
		if (kv->mtime_ns > 0)
			ts_from_ns(&st->st_mtim, kv->mtime_ns);
		else
			st->st_mtim = fs->start_time;
	} else {
		clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	}
	st->st_ctim = st->st_atim = st->st_mtim;
	st->st_blocks = (st->st_size + 511) / 512;
	__atomic_store_n(&in->attr_mod_rev, kv ? kv->mod_rev : 0,
	                 __ATOMIC_RELAXED);
}

/* Range request over every key under prefix (the whole store for ""). */
static void prefix_req(struct eng_range_req *rq, const char *prefix, size_t len,
                       char *endbuf)
{
	memset(rq, 0, sizeof(*rq));
	if (len == 0) {
		rq->key = "\0";
		rq->key_len = 1;
		rq->end = "\0";
		rq->end_len = 1;
		return;
	}
	rq->key = prefix;
	rq->key_len = len;
	rq->end = endbuf;
	rq->end_len = eng_prefix_end(prefix, len, endbuf);
}

int fs_prefix_exists(struct fs *fs, const char *prefix, size_t len,
                     eng_rev_t rev, eng_snap *snap)
{
	struct eng_range_req rq;
	struct eng_range_res res = {0};
	char *end = malloc(len + 1);
	int rc;

	if (!end)
		return -ENOMEM;
	prefix_req(&rq, prefix, len, end);
	rq.rev = rev;
	rq.limit = 1;
	rq.flags = ENG_RANGE_KEYS_ONLY;
	rq.snap = snap;
	rc = eng_range(fs->e, &rq, &res);
	if (rc == 0)
		rc = res.n > 0;
	else
		rc = -fs_errno(rc);
	eng_range_res_release(&res);
	free(end);
	return rc;
}

int fs_child_key(const char *dir, size_t dir_len, const char *seg,
                 size_t seg_len, bool as_dir, char **out, size_t *out_len)
{
	char *k = malloc(dir_len + seg_len + 2);

	if (!k)
		return -ENOMEM;
	memcpy(k, dir, dir_len);
	memcpy(k + dir_len, seg, seg_len);
	*out_len = dir_len + seg_len;
	if (as_dir)
		k[(*out_len)++] = '/';
	k[*out_len] = '\0';
	*out = k;
	return 0;
}

size_t fs_key_parent_len(const char *key, size_t key_len, size_t min)
{
	size_t i = key_len;

	/* A directory prefix's own trailing '/' is not its parent's. */
	if (i > min && key[i - 1] == '/')
		i--;
	while (i > min && key[i - 1] != '/')
		i--;
	return i;
}

/*
 * Is "PREFIX%%HASH" (dn) the one name of seg?  Only if seg's own encoding is
 * hashed with exactly that prefix: matching the hash and starting with the
 * prefix is not enough, or "a%%" + hash("ab") would be a second name of ab.
 */
static bool hashed_name_of(const char *seg, size_t seg_len,
                           const struct fs_dname *dn)
{
	char full[FS_NAME_MAX + 1], pre[FS_NAME_MAX + 1];
	int n = fs_name_encode(seg, seg_len, true, full);
	int m = fs_name_encode(dn->seg, dn->len, false, pre);

	return n > 0 && m > 0 && (size_t)n == (size_t)m + 18 &&
	       memcmp(full, pre, (size_t)m) == 0 && full[m] == '%' &&
	       full[m + 1] == '%';
}

int fs_resolve_hashed(struct fs *fs, const char *dir, size_t dir_len,
                      eng_rev_t rev, const struct fs_dname *dn, char **seg,
                      size_t *seg_len)
{
	char *start = NULL, *end = NULL;
	size_t start_len;
	int rc;

	rc = fs_child_key(dir, dir_len, dn->seg, dn->len, false, &start,
	                  &start_len);
	if (rc < 0)
		return rc;
	end = malloc(start_len + 1);
	if (!end) {
		free(start);
		return -ENOMEM;
	}
	struct eng_range_req rq = {
	    .key = start,
	    .key_len = start_len,
	    .end = end,
	    .end_len = eng_prefix_end(start, start_len, end),
	    .rev = rev,
	    .limit = 256,
	    .flags = ENG_RANGE_KEYS_ONLY,
	    .delim = '/',
	    .prefix_len = dir_len,
	};
	char *cursor = NULL;

	rc = -ENOENT;
	for (;;) {
		struct eng_range_res res = {0};
		int e = eng_range(fs->e, &rq, &res);

		if (e < 0) {
			rc = -fs_errno(e);
			eng_range_res_release(&res);
			break;
		}
		for (size_t i = 0; i < res.n && rc == -ENOENT; i++) {
			const struct eng_kv *kv = &res.kvs[i];
			size_t sl = kv->key_len - dir_len;

			if (kv->is_prefix)
				sl--;
			if (fs_hash64(kv->key + dir_len, sl, 0) != dn->hash ||
			    !hashed_name_of(kv->key + dir_len, sl, dn))
				continue;
			*seg = malloc(sl + 1);
			if (!*seg) {
				rc = -ENOMEM;
				break;
			}
			memcpy(*seg, kv->key + dir_len, sl);
			*seg_len = sl;
			rc = 0;
		}
		if (rc != -ENOENT || !res.more || res.n == 0) {
			eng_range_res_release(&res);
			break;
		}
		/* Continue after the last entry (past a whole sub-prefix). */
		const struct eng_kv *last = &res.kvs[res.n - 1];
		char *nc = malloc(last->key_len + 1);

		if (!nc) {
			rc = -ENOMEM;
			eng_range_res_release(&res);
			break;
		}
		memcpy(nc, last->key, last->key_len);
		if (last->is_prefix) {
			rq.key_len =
			    eng_prefix_end(last->key, last->key_len, nc);
		} else {
			nc[last->key_len] = '\0';
			rq.key_len = last->key_len + 1;
		}
		free(cursor);
		cursor = nc;
		rq.key = cursor;
		eng_range_res_release(&res);
	}
	free(cursor);
	free(start);
	free(end);
	return rc;
}

int fs_name_to_key(struct fs *fs, struct fs_inode *parent, const char *name,
                   bool as_dir, bool creating, char **key, size_t *key_len)
{
	struct fs_dname dn;
	char *seg = NULL, *pkey = NULL;
	size_t seg_len, pkey_len;
	int rc;

	if (parent->kind != FS_I_DIR)
		return -ENOTDIR;
	if (strchr(name, '@'))
		return -EINVAL;
	rc = fs_name_decode(name, strlen(name), &dn);
	if (rc < 0)
		return rc;
	if (dn.twin && !as_dir)
		return -EINVAL;
	rc = fs_inode_key(fs, parent, &pkey, &pkey_len);
	if (rc < 0)
		return rc;
	if (dn.hashed) {
		rc = fs_resolve_hashed(fs, pkey, pkey_len, parent->rev, &dn,
		                       &seg, &seg_len);
		if (rc < 0) {
			rc = creating ? -EINVAL : rc;
			goto out;
		}
		rc = fs_child_key(pkey, pkey_len, seg, seg_len, as_dir, key,
		                  key_len);
	} else {
		rc = fs_child_key(pkey, pkey_len, dn.seg, dn.len, as_dir, key,
		                  key_len);
	}
	/* An empty segment as a file would be the directory's marker. */
	if (rc == 0 && !as_dir && !dn.hashed && dn.len == 0) {
		free(*key);
		*key = NULL;
		rc = -EINVAL;
	}
	if (rc == 0 && *key_len == 0) {
		free(*key);
		*key = NULL;
		rc = -EINVAL;
	}
out:
	free(seg);
	free(pkey);
	return rc;
}

int fs_inode_stat(struct fs *fs, struct fs_inode *in, struct stat *st)
{
	struct eng_kv kv = {0};
	char *key = NULL;
	size_t key_len;
	bool pending = false;
	size_t plen = 0;
	int rc;

	if (in->kind == FS_I_DIR) {
		fs_fill_dir_attr(fs, in, st);
		return 0;
	}
	if (fs_lease_is_dir(in) || fs_lease_is_file(in))
		return fs_lease_stat(fs, in, st);
	if (in->kind == FS_I_SPECIAL) {
		fs_fill_file_attr(fs, in, NULL, st);
		st->st_mode = fs_special_get(in->special)->mode;
		return 0;
	}
	if (in->kind == FS_I_HISTORY) {
		fs_fill_file_attr(fs, in, NULL, st);
		return 0;
	}
	rc = fs_inode_key(fs, in, &key, &key_len);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&in->lock);
	if (in->wbuf) {
		pending = true;
		plen = in->wbuf->len;
	}
	pthread_mutex_unlock(&in->lock);
	rc = eng_get(fs->e, key, key_len, in->kind == FS_I_IFREV ? 0 : in->rev,
	             NULL, &kv);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto out;
	}
	if (kv.mod_rev == 0 && !pending && in->kind != FS_I_IFREV) {
		rc = -ENOENT;
		goto out;
	}
	fs_fill_file_attr(fs, in, &kv, st);
	if (pending) {
		st->st_size = (off_t)plen;
		st->st_blocks = (st->st_size + 511) / 512;
	}
	if (in->kind == FS_I_IFREV && kv.mod_rev == 0)
		st->st_mode = S_IFREG | 0200;
out:
	eng_kv_release(&kv);
	free(key);
	return rc;
}

static double timeout_for(struct fs *fs, const struct fs_inode *in)
{
	/* @leases never changes (a lease file answers for itself): cached,
	 * so that a path through it is no LOOKUP. */
	if (fs_lease_is_dir(in))
		return fs->cfg.attr_timeout;
	if (in->kind == FS_I_HISTORY || in->kind == FS_I_IFREV ||
	    in->kind == FS_I_SPECIAL)
		return 0;
	return in->rev ? FS_IMMUTABLE_TIMEOUT : fs->cfg.attr_timeout;
}

/* Register (kind, rev, key) with one kernel reference and reply it. */
static void reply_entry(fuse_req_t req, struct fs *fs, enum fs_ikind kind,
                        eng_rev_t rev, int special, const char *key,
                        size_t key_len, const struct eng_kv *kv)
{
	struct fuse_entry_param ep;
	struct fs_inode *in;
	int rc;

	in = fs_inode_get(fs, kind, rev, special, key, key_len, 1);
	if (!in) {
		fs_reply_err(req, ENOMEM, "lookup", "inode table");
		return;
	}
	memset(&ep, 0, sizeof(ep));
	if (kv && kind == FS_I_FILE) {
		fs_fill_file_attr(fs, in, kv, &ep.attr);
		rc = 0;
	} else {
		rc = fs_inode_stat(fs, in, &ep.attr);
	}
	if (rc < 0) {
		fs_inode_forget(fs, in->ino, 1);
		fs_reply_err(req, -rc, "lookup", "stat of a resolved name");
		return;
	}
	ep.ino = in->ino;
	ep.attr_timeout = ep.entry_timeout = timeout_for(fs, in);
	if (fuse_reply_entry(req, &ep) != 0)
		fs_inode_forget(fs, in->ino, 1);
}

/* A file created by this mount and not yet committed resolves too. */
static bool pending_create(struct fs *fs, const char *key, size_t len)
{
	return fs_inode_pending(fs, key, len);
}

/*
 * What NAME is, in one read: the range [key, end of "key/") with '/' as
 * delimiter from key_len on starts with the key itself if it exists, then
 * its siblings whose next byte sorts before '/' ("key.txt"), then "key/"
 * rolled up into one entry if anything lies under it.  With limit 1 the
 * answer is the key (a file, with its value's length for the attributes:
 * ENG_RANGE_VALUE_LEN, so a value stored apart is not read), "key/"
 * (a directory), nothing (neither), or a sibling: then only a second read
 * can tell whether "key/" exists (*maybe_dir).  One read instead of a get
 * and a prefix probe, which matters for the negative lookup before every
 * create.  Returns 1 (file, *kv filled), 2 (directory), 0 or -errno.
 */
static int probe_name(struct fs *fs, const char *key, size_t dkey_len,
                      eng_rev_t rev, struct eng_kv *kv, bool *maybe_dir)
{
	char *end = malloc(dkey_len + 1);
	struct eng_range_res res = {0};
	struct eng_range_req rq = {
	    .key = key,
	    .key_len = dkey_len - 1,
	    .end = end,
	    .rev = rev,
	    .limit = 1,
	    .flags = ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN,
	    .delim = '/',
	    .prefix_len = dkey_len - 1,
	};
	int rc;

	*maybe_dir = false;
	if (!end)
		return -ENOMEM;
	rq.end_len = eng_prefix_end(key, dkey_len, end);
	rc = eng_range(fs->e, &rq, &res);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto out;
	}
	rc = 0;
	if (res.n == 0)
		goto out;
	if (res.kvs[0].is_prefix) {
		/* Any prefix in the range lies under "key": at least one
		 * byte past it, and the delimiter comes first. */
		if (res.kvs[0].key_len == dkey_len &&
		    memcmp(res.kvs[0].key, key, dkey_len) == 0)
			rc = 2;
		else
			*maybe_dir = true;
	} else if (res.kvs[0].key_len == dkey_len - 1 &&
	           memcmp(res.kvs[0].key, key, dkey_len - 1) == 0) {
		rc = 1;
		*kv = res.kvs[0];
		kv->key = NULL; /* kept: only the attributes are used */
		kv->value = NULL;
	} else {
		*maybe_dir = res.more;
	}
out:
	eng_range_res_release(&res);
	free(end);
	return rc;
}

/* Resolve a plain (or twin/hashed) segment of dir at rev. */
static void lookup_plain(fuse_req_t req, struct fs *fs, const char *dir,
                         size_t dir_len, eng_rev_t rev, const char *name,
                         size_t name_len)
{
	struct fs_dname dn;
	struct eng_kv kv = {0};
	char *seg = NULL, *key = NULL;
	size_t seg_len, key_len;
	bool maybe_dir = true;
	int rc;

	rc = fs_name_decode(name, name_len, &dn);
	if (rc < 0) {
		fs_reply_err(req, ENOENT, "lookup", "'%.*s' is no encoded name",
		             (int)name_len, name);
		return;
	}
	if (dn.hashed) {
		rc = fs_resolve_hashed(fs, dir, dir_len, rev, &dn, &seg,
		                       &seg_len);
		if (rc < 0)
			goto fail;
		rc = fs_child_key(dir, dir_len, seg, seg_len, true, &key,
		                  &key_len);
	} else {
		rc = fs_child_key(dir, dir_len, dn.seg, dn.len, true, &key,
		                  &key_len);
	}
	if (rc < 0)
		goto fail;
	/* key is "dir/seg/"; key_len - 1 is the file's key, unless the
	 * segment is empty: "dir/" is the directory's own marker. */
	if (!dn.twin && key_len > 1 && (dn.hashed || dn.len > 0)) {
		rc = probe_name(fs, key, key_len, rev, &kv, &maybe_dir);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			reply_entry(req, fs, FS_I_FILE, rev, 0, key,
			            key_len - 1, &kv);
			goto out;
		}
		if (rev == 0 && pending_create(fs, key, key_len - 1)) {
			reply_entry(req, fs, FS_I_FILE, 0, 0, key, key_len - 1,
			            NULL);
			goto out;
		}
		if (rc == 2) {
			reply_entry(req, fs, FS_I_DIR, rev, 0, key, key_len,
			            NULL);
			goto out;
		}
	}
	rc = maybe_dir ? fs_prefix_exists(fs, key, key_len, rev, NULL) : 0;
	if (rc < 0)
		goto fail;
	if (rc == 1) {
		reply_entry(req, fs, FS_I_DIR, rev, 0, key, key_len, NULL);
		goto out;
	}
	rc = -ENOENT;
fail:
	fs_reply_err(req, -rc, "lookup",
	             rc == -ENODATA ? "'%s': below the compaction revision"
	                            : "'%s'",
	             name);
out:
	free(seg);
	free(key);
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent);
	struct fs_pname pn;
	char *dir = NULL, *key = NULL;
	size_t dir_len, key_len;
	struct eng_kv kv = {0};
	int rc;

	if (!p) {
		fs_reply_err(req, ESTALE, "lookup", "unknown parent inode");
		return;
	}
	if (fs_replay_lookup(fs, req, name))
		return; /* the inotify replay's own name (fs_replay.c) */
	if (fs_lease_is_dir(p)) {
		fs_lease_lookup(req, fs, parent, name);
		return;
	}
	if (p->kind != FS_I_DIR) {
		fs_reply_err(req, ENOTDIR, "lookup", "parent is a file");
		return;
	}
	rc = fs_parse_name(name, &pn);
	if (rc < 0 || (p->rev != 0 && pn.kind != FS_P_PLAIN)) {
		fs_reply_err(req, ENOENT, "lookup", "'%s' means nothing", name);
		return;
	}
	rc = fs_inode_key(fs, p, &dir, &dir_len);
	if (rc < 0)
		goto fail;
	switch (pn.kind) {
	case FS_P_PLAIN:
		lookup_plain(req, fs, dir, dir_len, p->rev, name, strlen(name));
		goto out;
	case FS_P_AT_REV:
		lookup_plain(req, fs, dir, dir_len, pn.rev, pn.base,
		             pn.base_len);
		goto out;
	case FS_P_DIR_REV:
		/* The directory at REV: it must have existed (the root
		 * always does, but REV must still be readable). */
		rc = fs_prefix_exists(fs, dir, dir_len, pn.rev, NULL);
		if (rc < 0)
			goto fail;
		if (rc == 0 && p != fs->root) {
			rc = -ENOENT;
			goto fail;
		}
		reply_entry(req, fs, FS_I_DIR, pn.rev, 0, dir, dir_len, NULL);
		goto out;
	case FS_P_HISTORY:
	case FS_P_IFREV: {
		struct fs_dname dn;

		rc = fs_name_decode(pn.base, pn.base_len, &dn);
		if (rc < 0 || dn.twin || dn.hashed) {
			rc = -ENOENT;
			goto fail;
		}
		rc = fs_child_key(dir, dir_len, dn.seg, dn.len, false, &key,
		                  &key_len);
		if (rc < 0 || key_len == 0) {
			rc = rc < 0 ? rc : -ENOENT;
			goto fail;
		}
		rc = eng_get(fs->e, key, key_len, 0, NULL, &kv);
		if (rc < 0) {
			rc = -fs_errno(rc);
			goto fail;
		}
		if (pn.kind == FS_P_IFREV) {
			/* Missing key: ENOENT so that open(O_CREAT) gets to
			 * create(), which takes the conditional form too. */
			if (kv.mod_rev == 0) {
				rc = -ENOENT;
				goto fail;
			}
			reply_entry(req, fs, FS_I_IFREV, pn.rev, 0, key,
			            key_len, NULL);
			goto out;
		}
		if (kv.mod_rev == 0) {
			struct eng_range_res h = {0};

			/* A deleted key still has a history to show. */
			rc = eng_history(fs->e, key, key_len, 0, 1, &h);
			rc = rc < 0 ? -fs_errno(rc) : (h.n ? 0 : -ENOENT);
			eng_range_res_release(&h);
			if (rc < 0)
				goto fail;
		}
		reply_entry(req, fs, FS_I_HISTORY, 0, 0, key, key_len, NULL);
		goto out;
	}
	case FS_P_SPECIAL:
		if (p != fs->root && !fs_special_get(pn.special)->per_dir) {
			rc = -ENOENT;
			goto fail;
		}
		reply_entry(req, fs, FS_I_SPECIAL, pn.rev, pn.special, dir,
		            dir_len, NULL);
		goto out;
	}
	rc = -ENOENT;
fail:
	fs_reply_err(req, -rc, "lookup",
	             rc == -ENODATA ? "'%s': below the compaction revision"
	                            : "'%s'",
	             name);
out:
	eng_kv_release(&kv);
	free(key);
	free(dir);
}

void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_inode_forget(req_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count,
                        struct fuse_forget_data *forgets)
{
	struct fs *fs = req_fs(req);

	for (size_t i = 0; i < count; i++)
		fs_inode_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	struct stat st;
	int rc;

	if (!in) {
		fs_reply_err(req, ESTALE, "getattr", "unknown inode");
		return;
	}
	rc = fs_inode_stat(fs, in, &st);
	if (rc < 0) {
		char *key = fs_inode_key_str(fs, in);

		fs_reply_err(req, -rc, "getattr", "'%s'", FS_KSTR(key));
		free(key);
		return;
	}
	fuse_reply_attr(req, &st, timeout_for(fs, in));
}

/* truncate(1) of a key not open for writing: one put if the size changes. */
static int truncate_key(struct fs *fs, struct fs_inode *in, size_t size)
{
	struct eng_kv kv = {0};
	char *key = NULL, *val = NULL;
	size_t key_len;
	eng_rev_t rev = 0;
	int rc;

	rc = fs_inode_key(fs, in, &key, &key_len);
	if (rc < 0)
		return rc;
	rc = eng_get(fs->e, key, key_len, 0, NULL, &kv);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto out;
	}
	if (kv.mod_rev == 0) {
		rc = -ENOENT;
		goto out;
	}
	if (kv.value_len == size)
		goto out;
	val = calloc(1, size + 1);
	if (!val) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(val, kv.value, kv.value_len < size ? kv.value_len : size);
	rc = fs_eng_put(fs, key, key_len, val, size, kv.lease, &rev, NULL);
	if (rc == ENG_E_LEASE_NOT_FOUND)
		rc = fs_eng_put(fs, key, key_len, val, size, 0, &rev, NULL);
	rc = rc < 0 ? -fs_errno(rc) : 0;
out:
	free(val);
	eng_kv_release(&kv);
	free(key);
	return rc;
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                   int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	struct stat st;
	char *key = NULL; /* for messages, copied when needed */
	int rc = 0;

	if (!in) {
		fs_reply_err(req, ESTALE, "setattr", "unknown inode");
		return;
	}
	if (fs_lease_is_file(in)) {
		fs_lease_setattr(req, fs, in, to_set);
		return;
	}
	if (fs_replay_req(fs, req)) {
		/* an inotify replay's truncate: the store's, unchanged */
		fs_op_getattr(req, ino, NULL);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		size_t size = (size_t)attr->st_size;

		if (fs_inode_read_only(fs, in) || in->kind == FS_I_DIR) {
			rc = in->kind == FS_I_DIR ? -EISDIR : -EROFS;
			key = fs_inode_key_str(fs, in);
			fs_reply_err(req, -rc, "truncate", "'%s' is read-only",
			             FS_KSTR(key));
			goto out;
		}
		if (attr->st_size < 0 || size > fs->cfg.max_value) {
			fs_reply_err(req, EFBIG, "truncate",
			             "%lld bytes is over max_value %zu",
			             (long long)attr->st_size,
			             fs->cfg.max_value);
			return;
		}
		rc = fs_wbuf_truncate(fs, in, size);
		if (rc == 0 && in->kind == FS_I_FILE)
			rc = truncate_key(fs, in, size);
		if (rc < 0) {
			key = fs_inode_key_str(fs, in);
			fs_reply_err(req, -rc, "truncate", "'%s'",
			             FS_KSTR(key));
			goto out;
		}
	} else if (!fs_inode_read_only(fs, in) && in->kind == FS_I_FILE &&
	           (to_set & (FUSE_SET_ATTR_ATIME_NOW |
	                      FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_MTIME))) {
		/* touch NEW: the create becomes a key now, not at release. */
		rc = fs_wbuf_commit(fs, in);
		if (rc < 0) {
			key = fs_inode_key_str(fs, in);
			fs_reply_err(req, -rc, "utimens", "'%s'", FS_KSTR(key));
			goto out;
		}
	} else if (fs_inode_read_only(fs, in) && in->kind != FS_I_DIR &&
	           (to_set &
	            (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
	             FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, EROFS, "utimens", "'%s' is read-only",
		             FS_KSTR(key));
		goto out;
	}
	/* Modes, owners and times are not stored: accepted, unchanged. */
	rc = fs_inode_stat(fs, in, &st);
	if (rc < 0) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, -rc, "setattr", "'%s'", FS_KSTR(key));
		goto out;
	}
	fuse_reply_attr(req, &st, timeout_for(fs, in));
out:
	free(key);
}

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	struct eng_stats s;
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	memset(&s, 0, sizeof(s));
	eng_stats_get(fs->e, &s);
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = s.quota_bytes / 4096;
	sv.f_bfree = sv.f_bavail = s.quota_bytes > s.db_bytes
	                               ? (s.quota_bytes - s.db_bytes) / 4096
	                               : 0;
	sv.f_files = (fsfilcnt_t)(s.keys > 0 ? s.keys : 0) + sv.f_bfree;
	sv.f_ffree = sv.f_favail = sv.f_bfree;
	sv.f_namemax = FS_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

int fs_put_empty_if_absent(struct fs *fs, const char *key, size_t key_len,
                           eng_rev_t *rev)
{
	struct eng_cmp cmp = {.key = key,
	                      .key_len = key_len,
	                      .target = ENG_CMP_VERSION,
	                      .result = ENG_CMP_EQ,
	                      .number = 0};
	struct eng_op op = {.type = ENG_OP_PUT,
	                    .key = key,
	                    .key_len = key_len,
	                    .value = "",
	                    .value_len = 0};
	struct eng_txn t = {&cmp, 1, &op, 1, NULL, 0};
	struct eng_txn_res tr = {0};
	int rc;

	rc = fs_eng_txn(fs, &t, &tr);
	if (rc < 0)
		rc = -fs_errno(rc);
	else if (!tr.succeeded)
		rc = -EEXIST;
	else if (rev)
		*rev = tr.header_rev;
	eng_txn_res_release(&tr);
	return rc;
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                 mode_t mode, dev_t rdev)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent);
	char *key = NULL;
	size_t key_len;
	int rc;

	if (fs_replay_req(fs, req)) {
		/* an inotify replay's create: the entry the store has */
		fs_op_lookup(req, parent, name);
		return;
	}
	if (!S_ISREG(mode)) {
		fs_reply_err(req, EPERM, "mknod", "'%s': only regular files",
		             name);
		return;
	}
	if (!p) {
		fs_reply_err(req, ESTALE, "mknod", "unknown parent inode");
		return;
	}
	if (fs_inode_read_only(fs, p)) {
		fs_reply_err(req, EROFS, "mknod", "'%s' in a read-only tree",
		             name);
		return;
	}
	rc = fs_name_to_key(fs, p, name, false, true, &key, &key_len);
	if (rc == 0)
		rc = fs_put_empty_if_absent(fs, key, key_len, NULL);
	if (rc < 0) {
		fs_reply_err(req, -rc, "mknod", "'%s'", name);
		free(key);
		return;
	}
	reply_entry(req, fs, FS_I_FILE, 0, 0, key, key_len, NULL);
	free(key);
}
