/*
 * bench_null_fuse.c — the ceiling of any FUSE file system on this machine,
 * a baseline for tests/bench/fs_write.sh.
 *
 *   bench_null_fuse MOUNTPOINT
 *
 * A flat, in-memory file system on libfuse's low-level API that does the
 * least a file system can do for the writers' load: LOOKUP finds a name in
 * a hash table or says ENOENT, CREATE adds it, WRITE keeps only the size,
 * FLUSH and RELEASE do nothing, GETXATTR says ENODATA.  Nothing is stored,
 * nothing is synced.  It runs the same multi-threaded session loop as the
 * revfs daemon (64 workers), in the foreground, until unmounted or
 * signalled.  Whatever rate the writers reach on it is what the kernel's
 * FUSE path and the writers themselves cost: no FUSE file system that
 * answers the same requests can pass it on the same machine.
 *
 * Entries, attributes and negative lookups are not cached by the kernel
 * (timeouts 0 for negative, 1 s for positive, as revfs does for files it
 * just created), so the request mix per file is revfs's: LOOKUP, CREATE,
 * GETXATTR (security.capability, asked by the kernel before the first
 * write), WRITE, FLUSH, RELEASE.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NF_BUCKETS (1u << 20)

/* As daemon/main.c: the 3.12 loop, whatever the header maps. */
int fuse_session_loop_mt_312(struct fuse_session *se,
                             struct fuse_loop_config *config);

struct nf_file {
	struct nf_file *next;
	fuse_ino_t ino;
	off_t size;
	char name[];
};

static struct nf_file *nf_table[NF_BUCKETS]; /* protected by nf_lock */
static struct nf_file **nf_byino;            /* protected by nf_lock */
static size_t nf_count, nf_cap;              /* protected by nf_lock */
static pthread_mutex_t nf_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned nf_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h & (NF_BUCKETS - 1);
}

/* Called with nf_lock held. */
static struct nf_file *nf_find(const char *name)
{
	struct nf_file *f = nf_table[nf_hash(name)];

	while (f && strcmp(f->name, name) != 0)
		f = f->next;
	return f;
}

static void nf_stat(fuse_ino_t ino, off_t size, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0644;
	st->st_nlink = ino == FUSE_ROOT_ID ? 2 : 1;
	st->st_size = size;
}

static void nf_entry(fuse_ino_t ino, off_t size, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr_timeout = 1.0;
	e->entry_timeout = 1.0;
	nf_stat(ino, size, &e->attr);
}

static void nf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct nf_file *f;
	fuse_ino_t ino = 0;
	off_t size = 0;

	pthread_mutex_lock(&nf_lock);
	f = parent == FUSE_ROOT_ID ? nf_find(name) : NULL;
	if (f) {
		ino = f->ino;
		size = f->size;
	}
	pthread_mutex_unlock(&nf_lock);
	if (!ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	nf_entry(ino, size, &e);
	fuse_reply_entry(req, &e);
}

static void nf_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
	size_t len = strlen(name);
	struct fuse_entry_param e;
	struct nf_file *f;
	unsigned h;
	int rc = 0;

	(void)mode;
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, EPERM);
		return;
	}
	pthread_mutex_lock(&nf_lock);
	h = nf_hash(name);
	if (nf_find(name)) {
		rc = EEXIST;
		goto out;
	}
	if (nf_count == nf_cap) {
		size_t cap = nf_cap ? 2 * nf_cap : 4096;
		struct nf_file **n = realloc(nf_byino, cap * sizeof(*n));

		if (!n) {
			rc = ENOMEM;
			goto out;
		}
		nf_byino = n;
		nf_cap = cap;
	}
	f = malloc(sizeof(*f) + len + 1);
	if (!f) {
		rc = ENOMEM;
		goto out;
	}
	memcpy(f->name, name, len + 1);
	f->size = 0;
	f->ino = FUSE_ROOT_ID + 1 + nf_count;
	nf_byino[nf_count++] = f;
	f->next = nf_table[h];
	nf_table[h] = f;
	nf_entry(f->ino, 0, &e);
out:
	pthread_mutex_unlock(&nf_lock);
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	fi->fh = 0;
	fuse_reply_create(req, &e, fi);
}

/* Called with nf_lock held; NULL for the root or an unknown number. */
static struct nf_file *nf_byino_locked(fuse_ino_t ino)
{
	if (ino <= FUSE_ROOT_ID || ino - FUSE_ROOT_ID - 1 >= nf_count)
		return NULL;
	return nf_byino[ino - FUSE_ROOT_ID - 1];
}

static void nf_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	struct nf_file *f;
	struct stat st;
	off_t size = 0;

	(void)fi;
	pthread_mutex_lock(&nf_lock);
	f = nf_byino_locked(ino);
	if (f)
		size = f->size;
	pthread_mutex_unlock(&nf_lock);
	if (!f && ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	nf_stat(ino, size, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void nf_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct nf_file *f;

	(void)buf;
	(void)fi;
	pthread_mutex_lock(&nf_lock);
	f = nf_byino_locked(ino);
	if (f && off + (off_t)size > f->size)
		f->size = off + (off_t)size;
	pthread_mutex_unlock(&nf_lock);
	if (!f)
		fuse_reply_err(req, EBADF);
	else
		fuse_reply_write(req, size);
}

static void nf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void nf_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void nf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static const struct fuse_lowlevel_ops nf_ops = {
    .lookup = nf_lookup,
    .getattr = nf_getattr,
    .create = nf_create,
    .write = nf_write,
    .flush = nf_flush,
    .release = nf_release,
    .getxattr = nf_getxattr,
};

int main(int argc, char **argv)
{
	char *args[] = {argv[0], "-o", "fsname=nullfuse,subtype=nullfuse",
	                NULL};
	struct fuse_args fa = FUSE_ARGS_INIT(3, args);
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s MOUNTPOINT\n", argv[0]);
		return 2;
	}
	se = fuse_session_new(&fa, &nf_ops, sizeof(nf_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, argv[1]) != 0)
		goto out_signals;
	lc = fuse_loop_cfg_create();
	if (!lc)
		goto out_unmount;
	/* As the revfs daemon: 64 workers, none exits when idle. */
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 64);
	fuse_loop_cfg_set_idle_threads(lc, 64);
	rc = fuse_session_loop_mt_312(se, lc) != 0;
	fuse_loop_cfg_destroy(lc);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return rc;
}
