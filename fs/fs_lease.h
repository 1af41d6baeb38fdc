/*
 * fs_lease.h — the `@leases/` directory of the mount root (fs_lease.c).
 *
 * `@leases` and the files in it are FS_I_SPECIAL inodes of two rows of the
 * special table ("@leases", and "@leases/NAME" which no lookup can name); a
 * lease file's inode key is its file name.  The operations of fs_lookup.c,
 * fs_dir.c, fs_file.c and fs_rename.c hand these inodes to the calls below.
 */
#ifndef REVFS_FS_LEASE_H
#define REVFS_FS_LEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "fs_int.h"

bool fs_lease_is_dir(const struct fs_inode *in);
bool fs_lease_is_file(const struct fs_inode *in);

/* The special-table callbacks of the two rows (a control file's write is
 * routed to fs_lease_commit instead; these refuse). */
int fs_lease_row_write(struct fs *fs, const char *buf, size_t len);

/* lookup NAME in @leases (inode parent): replies.  The name is cached for
 * the lease's remaining TTL; its attributes are not. */
void fs_lease_lookup(fuse_req_t req, struct fs *fs, fuse_ino_t parent,
                     const char *name);
/* The attributes of @leases or of a lease file.  0 or -errno. */
int fs_lease_stat(struct fs *fs, struct fs_inode *in, struct stat *st);
/* setattr of a lease file: times renew it, a size is ignored.  Replies. */
void fs_lease_setattr(fuse_req_t req, struct fs *fs, struct fs_inode *in,
                      int to_set);
void fs_lease_opendir(fuse_req_t req, struct fs *fs, struct fuse_file_info *fi);
void fs_lease_readdir(fuse_req_t req, struct fs *fs, size_t size, off_t off,
                      struct fuse_file_info *fi, bool plus);
/* req NULL: undo an opendir whose reply failed (no reply). */
void fs_lease_releasedir(fuse_req_t req, struct fs *fs,
                         struct fuse_file_info *fi);
/* unlink NAME in @leases (revoke): replies. */
void fs_lease_unlink(fuse_req_t req, struct fs *fs, const char *name);

/* The inode of NAME in @leases with one kernel reference (for create), or
 * NULL with -errno in *rc. */
struct fs_inode *fs_lease_inode(struct fs *fs, const char *name, int *rc);
/* Open a lease file: the descriptor holds the lease (renewed every TTL/3
 * until fs_lease_close); a reader gets the content in *buf.  0 or -errno. */
int fs_lease_open(struct fs *fs, struct fs_inode *in, bool wr, char **buf,
                  size_t *len);
/* Drop the hold fs_lease_open took. */
void fs_lease_close(struct fs *fs, struct fs_inode *in);
/* A TTL written to the file (at flush): grant, or set the TTL and renew. */
int fs_lease_commit(struct fs *fs, struct fs_inode *in, const char *buf,
                    size_t len);
/* At unmount: stop the renewal thread, free the holds. */
void fs_lease_free(struct fs *fs);

#endif /* REVFS_FS_LEASE_H */
