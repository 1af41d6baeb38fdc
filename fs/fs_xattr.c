/*
 * fs_xattr.c — a key's metadata as extended attributes (reference §5):
 * user.revfs.create_revision, mod_revision, version (read-only) and lease
 * (settable: attaching a key to a lease is one put that keeps the value).
 *
 * A file at KEY@REV shows the metadata of that version.  Directories and
 * generated files have none.  Other names: get ENODATA, set ENOTSUP.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define X_PREFIX "user.revfs."

static const char *const xnames[] = {
    X_PREFIX "create_revision",
    X_PREFIX "mod_revision",
    X_PREFIX "version",
    X_PREFIX "lease",
};

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static bool has_xattrs(const struct fs_inode *in)
{
	return in->kind == FS_I_FILE;
}

/* Reply with a value per the getxattr protocol (size 0: the length). */
static void reply_value(fuse_req_t req, const char *v, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, len);
}

static int get_kv(struct fs *fs, struct fs_inode *in, struct eng_kv *kv)
{
	char *key;
	size_t key_len;
	int rc = fs_inode_key(fs, in, &key, &key_len);

	if (rc < 0)
		return rc;
	rc = eng_get(fs->e, key, key_len, in->rev, NULL, kv);
	free(key);
	if (rc < 0)
		return -fs_errno(rc);
	return kv->mod_rev > 0 ? 0 : -ENOENT;
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                    size_t size)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	struct eng_kv kv = {0};
	char v[ENG_LEASE_NAME_MAX + 32];
	int idx = -1, rc;
	size_t len;

	if (!in) {
		fs_reply_err(req, ESTALE, "getxattr", "unknown inode");
		return;
	}
	for (int i = 0; i < 4; i++)
		if (strcmp(name, xnames[i]) == 0)
			idx = i;
	if (idx < 0 || !has_xattrs(in)) {
		fuse_reply_err(req, ENODATA); /* the normal "no such" */
		return;
	}
	rc = get_kv(fs, in, &kv);
	if (rc < 0) {
		char *key = fs_inode_key_str(fs, in);

		fs_reply_err(req, -rc, "getxattr", "'%s' %s", FS_KSTR(key),
		             name);
		free(key);
		goto out;
	}
	switch (idx) {
	case 0:
		len = (size_t)snprintf(v, sizeof(v), "%" PRId64, kv.create_rev);
		break;
	case 1:
		len = (size_t)snprintf(v, sizeof(v), "%" PRId64, kv.mod_rev);
		break;
	case 2:
		len = (size_t)snprintf(v, sizeof(v), "%" PRId64, kv.version);
		break;
	default: {
		struct eng_lease_info li = {0};

		len = (size_t)snprintf(v, sizeof(v), "%" PRId64, kv.lease);
		/* Show the lease by name when it has one. */
		if (kv.lease && eng_lease_ttl(fs->e, kv.lease, 0, &li) == 0 &&
		    li.name[0])
			len = (size_t)snprintf(v, sizeof(v), "%s", li.name);
		eng_lease_info_release(&li);
		break;
	}
	}
	reply_value(req, v, len, size);
out:
	eng_kv_release(&kv);
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	char buf[256];
	size_t len = 0;

	if (in && has_xattrs(in)) {
		for (int i = 0; i < 4; i++) {
			size_t n = strlen(xnames[i]) + 1;

			memcpy(buf + len, xnames[i], n);
			len += n;
		}
	}
	reply_value(req, buf, len, size);
}

/* Attach (lease != 0) or detach the key: one put keeping the value. */
static int set_lease(struct fs *fs, struct fs_inode *in, eng_lease_t lease)
{
	struct eng_txn_res tr = {0};
	char *key;
	size_t key_len;
	int rc = fs_inode_key(fs, in, &key, &key_len);

	if (rc < 0)
		return rc;
	struct eng_cmp cmp = {.key = key,
	                      .key_len = key_len,
	                      .target = ENG_CMP_VERSION,
	                      .result = ENG_CMP_GT,
	                      .number = 0};
	struct eng_op op = {.type = ENG_OP_PUT,
	                    .key = key,
	                    .key_len = key_len,
	                    .lease = lease,
	                    .flags = ENG_PUT_IGNORE_VALUE};
	struct eng_txn t = {&cmp, 1, &op, 1, NULL, 0};

	rc = fs_eng_txn(fs, &t, &tr);
	if (rc < 0)
		rc = -fs_errno(rc);
	else if (!tr.succeeded)
		rc = -ENOENT;
	eng_txn_res_release(&tr);
	free(key);
	return rc;
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                    const char *value, size_t size, int flags)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	char lname[ENG_LEASE_NAME_MAX + 1];
	eng_lease_t lease = 0;
	eng_rev_t num;
	char *key = NULL; /* for messages, copied when needed */
	int rc;

	if (!in) {
		fs_reply_err(req, ESTALE, "setxattr", "unknown inode");
		return;
	}
	if (strncmp(name, X_PREFIX, strlen(X_PREFIX)) != 0 || !has_xattrs(in)) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, ENOTSUP, "setxattr", "'%s' on '%s'", name,
		             FS_KSTR(key));
		goto out;
	}
	if (strcmp(name, xnames[3]) != 0) {
		fs_reply_err(req,
		             strcmp(name, xnames[0]) == 0 ||
		                     strcmp(name, xnames[1]) == 0 ||
		                     strcmp(name, xnames[2]) == 0
		                 ? EPERM
		                 : ENOTSUP,
		             "setxattr", "'%s' is read-only", name);
		return;
	}
	if (fs_inode_read_only(fs, in)) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, EROFS, "setxattr", "'%s'", FS_KSTR(key));
		goto out;
	}
	if (size > ENG_LEASE_NAME_MAX) {
		fs_reply_err(req, ENOENT, "setxattr", "lease name too long");
		return;
	}
	memcpy(lname, value, size);
	lname[size] = '\0';
	while (size && (lname[size - 1] == '\n' || lname[size - 1] == '\0'))
		lname[--size] = '\0';
	if (size == 0 || strcmp(lname, "0") == 0) {
		lease = 0;
	} else {
		rc = eng_lease_lookup(fs->e, lname, &lease);
		/* A decimal id names an unnamed lease. */
		if (rc == ENG_E_LEASE_NOT_FOUND &&
		    fs_parse_rev(lname, size, &num) == 0) {
			struct eng_lease_info li = {0};

			rc = eng_lease_ttl(fs->e, num, 0, &li);
			eng_lease_info_release(&li);
			lease = num;
		}
		if (rc < 0) {
			fs_reply_err(req, fs_errno(rc), "setxattr",
			             "lease '%s': %s", lname, eng_strerror(rc));
			return;
		}
	}
	rc = set_lease(fs, in, lease);
	if (rc < 0) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, -rc, "setxattr", "lease of '%s'",
		             FS_KSTR(key));
		goto out;
	}
	fuse_reply_err(req, 0);
out:
	free(key);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *in = fs_inode_find(fs, ino);
	char *key = NULL; /* for messages, copied when needed */
	int rc;

	if (!in || !has_xattrs(in) || strcmp(name, xnames[3]) != 0) {
		fs_reply_err(req, in && has_xattrs(in) ? ENOTSUP : ENODATA,
		             "removexattr", "'%s'", name);
		return;
	}
	if (fs_inode_read_only(fs, in)) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, EROFS, "removexattr", "'%s'", FS_KSTR(key));
		goto out;
	}
	rc = set_lease(fs, in, 0);
	if (rc < 0) {
		key = fs_inode_key_str(fs, in);
		fs_reply_err(req, -rc, "removexattr", "'%s'", FS_KSTR(key));
		goto out;
	}
	fuse_reply_err(req, 0);
out:
	free(key);
}
