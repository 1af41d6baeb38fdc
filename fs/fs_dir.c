/*
 * fs_dir.c — directories: paginated, consistent listings; mkdir; rmdir.
 *
 * A listing reads the engine a page at a time (eng_range with delimiter
 * '/', so a subdirectory costs one entry however big it is) through one
 * eng_snap taken at opendir and released at releasedir: every page sees the
 * revision of opendir, whatever writers and compaction do meanwhile.  The
 * handle keeps one page and a small ring of checkpoints (ordinal of a page's
 * first entry -> the key it starts at), so memory does not depend on the
 * directory's size.
 *
 * Offsets are ordinals: 0 is ".", 1 is "..", 2 + k is the k-th child; an
 * entry's cookie is the ordinal of the next one.  Reading on from where the
 * last call stopped costs nothing extra; a seek to a remembered page resumes
 * there and skips within the page; an older offset restarts from the first
 * child and counts (the snapshot keeps the order fixed).
 *
 * Never listed: the directory's own marker key and any `@` name (encoded
 * names never contain a raw '@').
 */
#include "fs_int.h"
#include "fs_lease.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FS_PAGE      1000 /* entries per engine read, names only */
#define FS_PAGE_PLUS 128  /* entries per engine read with value lengths */
#define FS_NCKPT     32

struct fs_ckpt {
	off_t ord; /* child ordinal of the first entry read from key */
	char *key;
	size_t len;
};

struct fs_dh {
	struct fs_hlink link; /* first: on fs->dir_handles */
	pthread_mutex_t lock;
	struct fs_inode *in;
	eng_snap *snap;
	eng_rev_t rev; /* 0: the snapshot's revision */
	char *prefix;  /* the directory's key prefix */
	size_t prefix_len;
	char *end; /* the range end of the prefix */
	size_t end_len;

	struct eng_range_res page; /* protected by lock (like all below) */
	bool have_page;
	bool page_values; /* the page carries value lengths */
	size_t idx;       /* next entry of page to look at */
	off_t pos;        /* child ordinal of the next entry */
	char *cursor;     /* where the next page starts */
	size_t cursor_len;
	bool eof; /* no page after this one */

	struct fs_ckpt ck[FS_NCKPT];
	int ck_next;
};

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int set_cursor(struct fs_dh *dh, const char *k, size_t len)
{
	char *c = malloc(len + 1);

	if (!c)
		return -ENOMEM;
	memcpy(c, k, len);
	free(dh->cursor);
	dh->cursor = c;
	dh->cursor_len = len;
	return 0;
}

static void add_ckpt(struct fs_dh *dh, off_t ord)
{
	struct fs_ckpt *c;

	for (int i = 0; i < FS_NCKPT; i++)
		if (dh->ck[i].key && dh->ck[i].ord == ord)
			return;
	c = &dh->ck[dh->ck_next];
	dh->ck_next = (dh->ck_next + 1) % FS_NCKPT;
	free(c->key);
	c->key = malloc(dh->cursor_len + 1);
	if (!c->key)
		return; /* a missing checkpoint only costs a longer seek */
	memcpy(c->key, dh->cursor, dh->cursor_len);
	c->len = dh->cursor_len;
	c->ord = ord;
}

/* Position at the first child. */
static int rewind_dh(struct fs_dh *dh)
{
	eng_range_res_release(&dh->page);
	memset(&dh->page, 0, sizeof(dh->page));
	dh->have_page = false;
	dh->eof = false;
	dh->idx = 0;
	dh->pos = 0;
	if (dh->prefix_len == 0)
		return set_cursor(dh, "\0", 1);
	return set_cursor(dh, dh->prefix, dh->prefix_len);
}

/* Read the page starting at the cursor. */
static int load_page(struct fs *fs, struct fs_dh *dh, bool values)
{
	struct eng_range_req rq = {
	    .key = dh->cursor,
	    .key_len = dh->cursor_len,
	    .end = dh->end,
	    .end_len = dh->end_len,
	    .rev = dh->rev,
	    .limit = values ? FS_PAGE_PLUS : FS_PAGE,
	    .flags = ENG_RANGE_KEYS_ONLY | (values ? ENG_RANGE_VALUE_LEN : 0),
	    .delim = '/',
	    .prefix_len = dh->prefix_len,
	    .snap = dh->snap,
	};
	int rc;

	eng_range_res_release(&dh->page);
	memset(&dh->page, 0, sizeof(dh->page));
	dh->have_page = false;
	add_ckpt(dh, dh->pos);
	rc = eng_range(fs->e, &rq, &dh->page);
	if (rc < 0)
		return -fs_errno(rc);
	dh->have_page = true;
	dh->page_values = values;
	dh->idx = 0;
	dh->eof = !dh->page.more;
	return 0;
}

/* Move the cursor past entry kv (past its whole subtree for a prefix). */
static int advance_cursor(struct fs_dh *dh, const struct eng_kv *kv)
{
	char *c = malloc(kv->key_len + 1);

	if (!c)
		return -ENOMEM;
	memcpy(c, kv->key, kv->key_len);
	free(dh->cursor);
	dh->cursor = c;
	if (kv->is_prefix) {
		dh->cursor_len = eng_prefix_end(kv->key, kv->key_len, c);
	} else {
		c[kv->key_len] = '\0';
		dh->cursor_len = kv->key_len + 1;
	}
	return 0;
}

/*
 * The next visible entry (without consuming it): 1 and *kv, 0 at the end,
 * or -errno.  With `values`, the entry carries its value length.
 */
static int peek(struct fs *fs, struct fs_dh *dh, bool values,
                const struct eng_kv **kv)
{
	int rc;

	for (;;) {
		if (dh->have_page && dh->idx >= dh->page.n) {
			if (dh->eof || dh->page.n == 0)
				return 0;
			rc = advance_cursor(dh, &dh->page.kvs[dh->page.n - 1]);
			if (rc < 0)
				return rc;
			dh->have_page = false;
		}
		if (dh->have_page && values && !dh->page_values) {
			/* Re-read from this entry on, with values. */
			if (dh->idx > 0) {
				rc = advance_cursor(dh,
				                    &dh->page.kvs[dh->idx - 1]);
				if (rc < 0)
					return rc;
			}
			dh->have_page = false;
		}
		if (!dh->have_page) {
			rc = load_page(fs, dh, values);
			if (rc < 0)
				return rc;
			continue;
		}
		*kv = &dh->page.kvs[dh->idx];
		/* The directory's own marker is the directory, not a file. */
		if (!(*kv)->is_prefix && (*kv)->key_len == dh->prefix_len) {
			dh->idx++;
			continue;
		}
		return 1;
	}
}

static void consume(struct fs_dh *dh)
{
	dh->idx++;
	dh->pos++;
}

/* Position so that the next entry has child ordinal `ord`. */
static int seek_dh(struct fs *fs, struct fs_dh *dh, off_t ord)
{
	const struct eng_kv *kv;
	struct fs_ckpt *best = NULL;
	int rc;

	if (ord == dh->pos)
		return 0;
	for (int i = 0; i < FS_NCKPT; i++) {
		struct fs_ckpt *c = &dh->ck[i];

		if (c->key && c->ord <= ord && (!best || c->ord > best->ord))
			best = c;
	}
	if (ord > dh->pos && (!best || best->ord <= dh->pos)) {
		/* Skipping forward from here is cheapest. */
	} else if (best) {
		rc = set_cursor(dh, best->key, best->len);
		if (rc < 0)
			return rc;
		dh->have_page = false;
		dh->eof = false;
		dh->pos = best->ord;
	} else {
		rc = rewind_dh(dh);
		if (rc < 0)
			return rc;
	}
	while (dh->pos < ord) {
		rc = peek(fs, dh, false, &kv);
		if (rc <= 0)
			return rc;
		consume(dh);
	}
	return 0;
}

/* The name of an entry in out; false if it cannot be shown (never). */
static int entry_name(struct fs *fs, struct fs_dh *dh, const struct eng_kv *kv,
                      char *out)
{
	size_t sl = kv->key_len - dh->prefix_len;
	int n;

	if (kv->is_prefix)
		sl--;
	n = fs_name_encode(kv->key + dh->prefix_len, sl, true, out);
	if (n < 0)
		return n;
	/* (An empty segment's "file" would be this directory's marker.) */
	if (kv->is_prefix && sl > 0) {
		struct eng_kv f = {0};

		/* A key that is also a prefix: the directory is NAME%. */
		if (eng_get(fs->e, kv->key, kv->key_len - 1, dh->rev, dh->snap,
		            &f) == 0 &&
		    f.mod_rev > 0 && n < FS_NAME_MAX) {
			out[n++] = '%';
			out[n] = '\0';
		}
		eng_kv_release(&f);
	}
	return n;
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	struct fs_dh *dh;
	int rc;

	if (in && fs_lease_is_dir(in)) {
		fs_lease_opendir(req, fs, fi);
		return;
	}
	if (!in || in->kind != FS_I_DIR) {
		fs_reply_err(req, in ? ENOTDIR : ESTALE, "opendir", "inode %lu",
		             (unsigned long)ino);
		return;
	}
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		fs_reply_err(req, ENOMEM, "opendir", "handle");
		return;
	}
	pthread_mutex_init(&dh->lock, NULL);
	dh->in = in;
	dh->rev = in->rev;
	rc = fs_inode_key(fs, in, &dh->prefix, &dh->prefix_len);
	if (rc < 0)
		goto fail;
	dh->end = malloc(dh->prefix_len + 1);
	if (!dh->end) {
		rc = -ENOMEM;
		goto fail;
	}
	if (dh->prefix_len == 0) {
		dh->end[0] = '\0';
		dh->end_len = 1;
	} else {
		dh->end_len =
		    eng_prefix_end(dh->prefix, dh->prefix_len, dh->end);
	}
	rc = eng_snap_open(fs->e, &dh->snap);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto fail;
	}
	if (dh->rev && dh->rev < eng_snap_compact_rev(dh->snap)) {
		rc = -ENODATA;
		goto fail;
	}
	rc = rewind_dh(dh);
	if (rc < 0)
		goto fail;
	fi->fh = (uintptr_t)dh;
	fs_handle_link(fs, &fs->dir_handles, &dh->link);
	fs_logf(ENG_LOG_DEBUG, "opendir '%s' at revision %lld", dh->prefix,
	        (long long)eng_snap_rev(dh->snap));
	fuse_reply_open(req, fi);
	return;
fail:
	if (dh->snap)
		eng_snap_release(fs->e, dh->snap);
	free(dh->end);
	free(dh->prefix);
	free(dh->cursor);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
	fs_reply_err(req, -rc, "opendir", "inode %lu", (unsigned long)ino);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = req_fs(req);
	struct fs_dh *dh = (struct fs_dh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	char name[FS_NAME_MAX + 2];
	int rc = 0;

	if (!buf) {
		fs_reply_err(req, ENOMEM, "readdir", "buffer");
		return;
	}
	pthread_mutex_lock(&dh->lock);
	/* "." and ".." (ordinals 0 and 1). */
	for (; off < 2; off++) {
		struct stat st = {0};
		struct fuse_entry_param ep = {0};
		const char *dn = off == 0 ? "." : "..";
		size_t n;

		st.st_ino = off == 0 ? dh->in->ino : FUSE_ROOT_ID;
		st.st_mode = S_IFDIR;
		if (plus) {
			/* The kernel takes no reference for these. */
			ep.attr = st;
			n = fuse_add_direntry_plus(req, buf + used, size - used,
			                           dn, &ep, off + 1);
		} else {
			n = fuse_add_direntry(req, buf + used, size - used, dn,
			                      &st, off + 1);
		}
		if (n > size - used)
			goto reply;
		used += n;
	}
	rc = seek_dh(fs, dh, off - 2);
	if (rc < 0)
		goto reply;
	for (;;) {
		const struct eng_kv *kv;
		struct fuse_entry_param ep;
		struct fs_inode *ci = NULL;
		size_t n;
		int nl;

		rc = peek(fs, dh, plus, &kv);
		if (rc <= 0)
			break;
		nl = entry_name(fs, dh, kv, name);
		if (nl < 0) {
			rc = nl;
			break;
		}
		memset(&ep, 0, sizeof(ep));
		if (plus) {
			enum fs_ikind k = kv->is_prefix ? FS_I_DIR : FS_I_FILE;

			ci = fs_inode_get(fs, k, dh->rev, 0, kv->key,
			                  kv->key_len, 1);
			if (!ci) {
				rc = -ENOMEM;
				break;
			}
			if (kv->is_prefix)
				fs_fill_dir_attr(fs, ci, &ep.attr);
			else
				fs_fill_file_attr(fs, ci, kv, &ep.attr);
			ep.ino = ci->ino;
			ep.attr_timeout = ep.entry_timeout =
			    dh->rev ? 3600.0 : fs->cfg.attr_timeout;
			n = fuse_add_direntry_plus(req, buf + used, size - used,
			                           name, &ep, dh->pos + 3);
		} else {
			ep.attr.st_ino = fs_inode_ino_for(
			    fs, kv->is_prefix ? FS_I_DIR : FS_I_FILE, dh->rev,
			    kv->key, kv->key_len);
			ep.attr.st_mode = kv->is_prefix ? S_IFDIR : S_IFREG;
			n = fuse_add_direntry(req, buf + used, size - used,
			                      name, &ep.attr, dh->pos + 3);
		}
		if (n > size - used) {
			if (ci)
				fs_inode_forget(fs, ci->ino, 1);
			rc = 0;
			break;
		}
		used += n;
		consume(dh);
	}
reply:
	pthread_mutex_unlock(&dh->lock);
	if (rc < 0 && used == 0)
		fs_reply_err(req, -rc, "readdir", "'%s'", dh->prefix);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

/* The @leases directory has its own listing (fs_lease.c). */
static bool lease_dir(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_inode *in = fs_inode_find(req_fs(req), ino);

	return in && fs_lease_is_dir(in);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
	if (lease_dir(req, ino)) {
		fs_lease_readdir(req, req_fs(req), size, off, fi, false);
		return;
	}
	do_readdir(req, ino, size, off, fi, false);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	if (lease_dir(req, ino)) {
		fs_lease_readdir(req, req_fs(req), size, off, fi, true);
		return;
	}
	do_readdir(req, ino, size, off, fi, true);
}

static void dh_free(struct fs *fs, struct fs_dh *dh)
{
	fs_handle_unlink(fs, &dh->link);
	eng_range_res_release(&dh->page);
	eng_snap_release(fs->e, dh->snap);
	for (int i = 0; i < FS_NCKPT; i++)
		free(dh->ck[i].key);
	free(dh->cursor);
	free(dh->end);
	free(dh->prefix);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (lease_dir(req, ino)) {
		fs_lease_releasedir(req, req_fs(req), fi);
		return;
	}
	dh_free(req_fs(req), (struct fs_dh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void fs_dir_release_all(struct fs *fs)
{
	for (;;) {
		struct fs_hlink *l;

		pthread_mutex_lock(&fs->handles_lock);
		l = fs->dir_handles.next;
		pthread_mutex_unlock(&fs->handles_lock);
		if (l == &fs->dir_handles)
			break;
		dh_free(fs, (struct fs_dh *)l);
	}
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                 mode_t mode)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent);
	struct fs_dname dn;
	struct eng_kv kv = {0};
	eng_rev_t rev = 0;
	char *key = NULL;
	size_t key_len;
	int rc;

	if (!p) {
		fs_reply_err(req, ESTALE, "mkdir", "unknown parent inode");
		return;
	}
	if (fs_inode_read_only(fs, p)) {
		fs_reply_err(req, EROFS, "mkdir", "'%s' in a read-only tree",
		             name);
		return;
	}
	rc = fs_name_to_key(fs, p, name, true, true, &key, &key_len);
	if (rc < 0)
		goto fail;
	/* key is "dir/seg/": the file "dir/seg" takes the plain name. */
	if (fs_name_decode(name, strlen(name), &dn) == 0 && !dn.twin &&
	    (dn.hashed || dn.len > 0)) {
		rc = eng_get(fs->e, key, key_len - 1, 0, NULL, &kv);
		if (rc < 0) {
			rc = -fs_errno(rc);
			goto fail;
		}
		if (kv.mod_rev > 0) {
			rc = -EEXIST;
			goto fail;
		}
	}
	rc = fs_prefix_exists(fs, key, key_len, 0, NULL);
	if (rc < 0)
		goto fail;
	if (rc > 0) {
		rc = -EEXIST;
		goto fail;
	}
	rc = fs_put_empty_if_absent(fs, key, key_len, &rev);
	if (rc < 0)
		goto fail;
	struct fs_inode *in = fs_inode_get(fs, FS_I_DIR, 0, 0, key, key_len, 1);
	struct fuse_entry_param ep = {0};

	if (!in) {
		rc = -ENOMEM;
		goto fail;
	}
	fs_fill_dir_attr(fs, in, &ep.attr);
	ep.ino = in->ino;
	ep.attr_timeout = ep.entry_timeout = fs->cfg.attr_timeout;
	fs_logf(ENG_LOG_DEBUG, "mkdir '%s' at revision %lld", key,
	        (long long)rev);
	if (fuse_reply_entry(req, &ep) != 0)
		fs_inode_forget(fs, in->ino, 1);
	goto out;
fail:
	fs_reply_err(req, -rc, "mkdir", "'%s'", name);
out:
	eng_kv_release(&kv);
	free(key);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *p = fs_inode_find(fs, parent);
	struct eng_txn_res tr = {0};
	char *key = NULL, *lo = NULL, *end = NULL;
	size_t key_len;
	int rc;

	if (!p) {
		fs_reply_err(req, ESTALE, "rmdir", "unknown parent inode");
		return;
	}
	if (fs_inode_read_only(fs, p)) {
		fs_reply_err(req, EROFS, "rmdir", "'%s' in a read-only tree",
		             name);
		return;
	}
	rc = fs_name_to_key(fs, p, name, true, false, &key, &key_len);
	if (rc < 0)
		goto fail;
	lo = malloc(key_len + 1);
	end = malloc(key_len + 1);
	if (!lo || !end) {
		rc = -ENOMEM;
		goto fail;
	}
	/* Atomically: nothing but the marker under the prefix. */
	memcpy(lo, key, key_len);
	lo[key_len] = '\0';
	struct eng_cmp cmp = {.key = lo,
	                      .key_len = key_len + 1,
	                      .end = end,
	                      .end_len = eng_prefix_end(key, key_len, end),
	                      .target = ENG_CMP_VERSION,
	                      .result = ENG_CMP_EQ,
	                      .number = 0};
	struct eng_op op = {
	    .type = ENG_OP_DELETE, .key = key, .key_len = key_len};
	struct eng_txn t = {&cmp, 1, &op, 1, NULL, 0};

	rc = fs_eng_txn(fs, &t, &tr);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto fail;
	}
	if (!tr.succeeded) {
		rc = -ENOTEMPTY;
		goto fail;
	}
	if (tr.nres == 1 && tr.res[0].deleted == 0) {
		/* No marker: fine if the directory is gone anyway. */
		rc = fs_prefix_exists(fs, key, key_len, 0, NULL);
		if (rc != 0) {
			rc = rc < 0 ? rc : -ENOTEMPTY;
			goto fail;
		}
	}
	fuse_reply_err(req, 0);
	goto out;
fail:
	fs_reply_err(req, -rc, "rmdir", "'%s'", name);
out:
	eng_txn_res_release(&tr);
	free(lo);
	free(end);
	free(key);
}
