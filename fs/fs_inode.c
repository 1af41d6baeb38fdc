/*
 * fs_inode.c — the inode table: FUSE node ids <-> (kind, revision, key).
 *
 * Every node the kernel knows has one struct fs_inode, found by id (for
 * every operation) and by (kind, rev, key) (for lookup, readdirplus and the
 * notifier).  The id is a hash of (kind, rev, key), so a key keeps its inode
 * number while mounted and even across remounts; on a collision the next
 * free id is taken.  nlookup counts the kernel's references (each
 * successful lookup/create/mkdir/readdirplus entry adds one, forget
 * subtracts); at zero the inode is freed (the root never is).
 *
 * Locking: fs->itab_lock guards both hash chains, nlookup and the key of
 * every inode (rename rekeys).  It is never held across an engine call or a
 * FUSE reply.  An inode's own lock guards its write buffer.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t key_hash(enum fs_ikind kind, eng_rev_t rev, int special,
                         const char *key, size_t len)
{
	uint64_t seed = (uint64_t)kind * 0x9e3779b97f4a7c15ULL ^
	                (uint64_t)rev * 0xbf58476d1ce4e5b9ULL ^
	                (uint64_t)special * 0x94d049bb133111ebULL;

	return fs_hash64(key, len, seed);
}

static size_t bucket(struct fs *fs, uint64_t h)
{
	return (size_t)(h ^ (h >> 29)) & (fs->nbuckets - 1);
}

static bool same(const struct fs_inode *in, enum fs_ikind kind, eng_rev_t rev,
                 int special, const char *key, size_t len)
{
	return in->hashed && in->kind == kind && in->rev == rev &&
	       in->special == special && in->key_len == len &&
	       memcmp(in->key, key, len) == 0;
}

static void link_key(struct fs *fs, struct fs_inode *in)
{
	size_t b = bucket(
	    fs, key_hash(in->kind, in->rev, in->special, in->key, in->key_len));

	in->next_key = fs->by_key[b];
	fs->by_key[b] = in;
	in->hashed = true;
}

static void unlink_key(struct fs *fs, struct fs_inode *in)
{
	size_t b;
	struct fs_inode **pp;

	if (!in->hashed)
		return;
	b = bucket(
	    fs, key_hash(in->kind, in->rev, in->special, in->key, in->key_len));
	for (pp = &fs->by_key[b]; *pp; pp = &(*pp)->next_key) {
		if (*pp == in) {
			*pp = in->next_key;
			break;
		}
	}
	in->hashed = false;
	in->next_key = NULL;
}

static struct fs_inode *find_ino_locked(struct fs *fs, fuse_ino_t ino)
{
	struct fs_inode *in = fs->by_ino[bucket(fs, ino)];

	while (in && in->ino != ino)
		in = in->next_ino;
	return in;
}

static struct fs_inode *find_key_locked(struct fs *fs, enum fs_ikind kind,
                                        const char *key, size_t len)
{
	struct fs_inode *in =
	    fs->by_key[bucket(fs, key_hash(kind, 0, 0, key, len))];

	while (in && !same(in, kind, 0, 0, key, len))
		in = in->next_key;
	return in;
}

/* Double the tables when they get crowded; on ENOMEM keep the old ones. */
static void maybe_grow(struct fs *fs)
{
	size_t nb = fs->nbuckets * 2, old = fs->nbuckets;
	struct fs_inode **bi, **bk, **oi = fs->by_ino, **ok = fs->by_key;

	if (fs->ninodes < fs->nbuckets * 2)
		return;
	bi = calloc(nb, sizeof(*bi));
	bk = calloc(nb, sizeof(*bk));
	if (!bi || !bk) {
		free(bi);
		free(bk);
		return;
	}
	fs->by_ino = bi;
	fs->by_key = bk;
	fs->nbuckets = nb;
	for (size_t i = 0; i < old; i++) {
		struct fs_inode *in = oi[i], *next;

		for (; in; in = next) {
			size_t b = bucket(fs, in->ino);

			next = in->next_ino;
			in->next_ino = bi[b];
			bi[b] = in;
		}
		for (in = ok[i]; in; in = next) {
			next = in->next_key;
			link_key(fs, in);
		}
	}
	free(oi);
	free(ok);
}

static struct fs_inode *new_inode(struct fs *fs, enum fs_ikind kind,
                                  eng_rev_t rev, int special, const char *key,
                                  size_t len)
{
	struct fs_inode *in = calloc(1, sizeof(*in));
	uint64_t id;

	if (!in)
		return NULL;
	in->key = malloc(len + 1);
	if (!in->key) {
		free(in);
		return NULL;
	}
	memcpy(in->key, key, len);
	in->key[len] = '\0';
	in->key_len = len;
	in->kind = kind;
	in->rev = rev;
	in->special = special;
	pthread_mutex_init(&in->lock, NULL);
	id = key_hash(kind, rev, special, key, len);
	/* Ids 0 and 1 are FUSE's (none and the root); ino_t is 64 bits. */
	if (id <= FUSE_ROOT_ID)
		id += 2;
	while (find_ino_locked(fs, id) || id <= FUSE_ROOT_ID)
		id++;
	in->ino = id;
	return in;
}

static void insert(struct fs *fs, struct fs_inode *in)
{
	size_t b = bucket(fs, in->ino);

	in->next_ino = fs->by_ino[b];
	fs->by_ino[b] = in;
	link_key(fs, in);
	fs->ninodes++;
	maybe_grow(fs);
}

static void free_inode(struct fs_inode *in)
{
	if (in->wbuf) {
		free(in->wbuf->data);
		free(in->wbuf);
	}
	pthread_mutex_destroy(&in->lock);
	free(in->key);
	free(in);
}

int fs_itab_init(struct fs *fs)
{
	pthread_mutex_init(&fs->itab_lock, NULL);
	fs->nbuckets = 1024;
	fs->by_ino = calloc(fs->nbuckets, sizeof(*fs->by_ino));
	fs->by_key = calloc(fs->nbuckets, sizeof(*fs->by_key));
	if (!fs->by_ino || !fs->by_key)
		return -ENOMEM;
	fs->root = new_inode(fs, FS_I_DIR, 0, 0, fs->prefix, fs->prefix_len);
	if (!fs->root)
		return -ENOMEM;
	fs->root->ino = FUSE_ROOT_ID;
	fs->root->nlookup = 1;
	insert(fs, fs->root);
	return 0;
}

void fs_itab_free(struct fs *fs)
{
	if (fs->by_ino) {
		for (size_t i = 0; i < fs->nbuckets; i++) {
			struct fs_inode *in = fs->by_ino[i], *next;

			for (; in; in = next) {
				next = in->next_ino;
				free_inode(in);
			}
		}
	}
	free(fs->by_ino);
	free(fs->by_key);
	fs->by_ino = fs->by_key = NULL;
	pthread_mutex_destroy(&fs->itab_lock);
}

struct fs_inode *fs_inode_get(struct fs *fs, enum fs_ikind kind, eng_rev_t rev,
                              int special, const char *key, size_t key_len,
                              uint64_t add_lookup)
{
	struct fs_inode *in;
	size_t b;

	pthread_mutex_lock(&fs->itab_lock);
	b = bucket(fs, key_hash(kind, rev, special, key, key_len));
	for (in = fs->by_key[b]; in; in = in->next_key)
		if (same(in, kind, rev, special, key, key_len))
			break;
	if (!in) {
		in = new_inode(fs, kind, rev, special, key, key_len);
		if (in)
			insert(fs, in);
	}
	if (in)
		in->nlookup += add_lookup;
	pthread_mutex_unlock(&fs->itab_lock);
	return in;
}

struct fs_inode *fs_inode_find(struct fs *fs, fuse_ino_t ino)
{
	struct fs_inode *in;

	pthread_mutex_lock(&fs->itab_lock);
	in = find_ino_locked(fs, ino);
	pthread_mutex_unlock(&fs->itab_lock);
	return in;
}

fuse_ino_t fs_inode_ino_of(struct fs *fs, enum fs_ikind kind, const char *key,
                           size_t key_len)
{
	struct fs_inode *in;
	fuse_ino_t ino = 0;

	pthread_mutex_lock(&fs->itab_lock);
	in = find_key_locked(fs, kind, key, key_len);
	if (in && in->nlookup > 0)
		ino = in->ino;
	pthread_mutex_unlock(&fs->itab_lock);
	return ino;
}

bool fs_inode_pending(struct fs *fs, const char *key, size_t key_len)
{
	struct fs_inode *in;
	bool pending = false;

	pthread_mutex_lock(&fs->itab_lock);
	in = find_key_locked(fs, FS_I_FILE, key, key_len);
	/* The inode cannot be freed while itab_lock is held. */
	if (in)
		pending = __atomic_load_n(&in->wbuf, __ATOMIC_ACQUIRE) != NULL;
	pthread_mutex_unlock(&fs->itab_lock);
	return pending;
}

static struct fs_inode *file_ref(struct fs *fs, const char *key, size_t key_len,
                                 bool writer)
{
	struct fs_inode *in;

	pthread_mutex_lock(&fs->itab_lock);
	in = find_key_locked(fs, FS_I_FILE, key, key_len);
	if (in && (!writer || __atomic_load_n(&in->wbuf, __ATOMIC_ACQUIRE)))
		in->nlookup++;
	else
		in = NULL;
	pthread_mutex_unlock(&fs->itab_lock);
	return in;
}

struct fs_inode *fs_inode_writer(struct fs *fs, const char *key, size_t key_len)
{
	return file_ref(fs, key, key_len, true);
}

struct fs_inode *fs_inode_file(struct fs *fs, const char *key, size_t key_len)
{
	return file_ref(fs, key, key_len, false);
}

void fs_inode_unhash(struct fs *fs, struct fs_inode *in)
{
	pthread_mutex_lock(&fs->itab_lock);
	unlink_key(fs, in);
	pthread_mutex_unlock(&fs->itab_lock);
}

void fs_inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct fs_inode *in, **pp;

	pthread_mutex_lock(&fs->itab_lock);
	in = find_ino_locked(fs, ino);
	if (!in || in == fs->root) {
		pthread_mutex_unlock(&fs->itab_lock);
		return;
	}
	in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
	if (in->nlookup > 0) {
		pthread_mutex_unlock(&fs->itab_lock);
		return;
	}
	unlink_key(fs, in);
	for (pp = &fs->by_ino[bucket(fs, ino)]; *pp; pp = &(*pp)->next_ino) {
		if (*pp == in) {
			*pp = in->next_ino;
			break;
		}
	}
	fs->ninodes--;
	pthread_mutex_unlock(&fs->itab_lock);
	free_inode(in);
}

int fs_inode_key(struct fs *fs, struct fs_inode *in, char **key,
                 size_t *key_len)
{
	char *k;

	pthread_mutex_lock(&fs->itab_lock);
	k = malloc(in->key_len + 1);
	if (k) {
		memcpy(k, in->key, in->key_len + 1);
		*key_len = in->key_len;
	}
	pthread_mutex_unlock(&fs->itab_lock);
	*key = k;
	return k ? 0 : -ENOMEM;
}

char *fs_inode_key_str(struct fs *fs, struct fs_inode *in)
{
	char *k;
	size_t len;

	return fs_inode_key(fs, in, &k, &len) == 0 ? k : NULL;
}

/* Replace in's key by to + (in->key after from_len); 0 or -ENOMEM. */
static int set_key(struct fs_inode *in, size_t from_len, const char *to,
                   size_t to_len)
{
	size_t rest = in->key_len - from_len;
	char *k = malloc(to_len + rest + 1);

	if (!k)
		return -ENOMEM;
	memcpy(k, to, to_len);
	memcpy(k + to_len, in->key + from_len, rest);
	k[to_len + rest] = '\0';
	free(in->key);
	in->key = k;
	in->key_len = to_len + rest;
	return 0;
}

static bool has_prefix(const struct fs_inode *in, const char *p, size_t n)
{
	return in->key_len >= n && memcmp(in->key, p, n) == 0;
}

fuse_ino_t fs_inode_ino_for(struct fs *fs, enum fs_ikind kind, eng_rev_t rev,
                            const char *key, size_t key_len)
{
	struct fs_inode *in;
	uint64_t id = key_hash(kind, rev, 0, key, key_len);

	pthread_mutex_lock(&fs->itab_lock);
	for (in = fs->by_key[bucket(fs, id)]; in; in = in->next_key)
		if (same(in, kind, rev, 0, key, key_len))
			break;
	if (in)
		id = in->ino;
	else if (id <= FUSE_ROOT_ID)
		id += 2;
	pthread_mutex_unlock(&fs->itab_lock);
	return id;
}

void fs_inode_rekey(struct fs *fs, bool dir, const char *from, size_t from_len,
                    const char *to, size_t to_len)
{
	struct fs_inode *moved = NULL;

	pthread_mutex_lock(&fs->itab_lock);
	if (!dir) {
		/* A file: two hash lookups, not a walk of the table. */
		struct fs_inode *t = find_key_locked(fs, FS_I_FILE, to, to_len);
		struct fs_inode *f;

		if (t)
			unlink_key(fs, t);
		f = find_key_locked(fs, FS_I_FILE, from, from_len);
		if (f) {
			unlink_key(fs, f);
			if (set_key(f, from_len, to, to_len) == 0 &&
			    __atomic_load_n(&f->wbuf, __ATOMIC_ACQUIRE))
				link_key(fs, f);
		}
		pthread_mutex_unlock(&fs->itab_lock);
		return;
	}
	for (size_t i = 0; i < fs->nbuckets; i++) {
		for (struct fs_inode *in = fs->by_ino[i]; in;
		     in = in->next_ino) {
			if (in->rev != 0 && in->kind != FS_I_IFREV)
				continue;
			if (in == fs->root)
				continue;
			/* The replaced target answers for nothing now. */
			if (dir ? has_prefix(in, to, to_len)
			        : (in->key_len == to_len &&
			           memcmp(in->key, to, to_len) == 0))
				unlink_key(fs, in);
		}
	}
	for (size_t i = 0; i < fs->nbuckets; i++) {
		for (struct fs_inode *in = fs->by_ino[i]; in;
		     in = in->next_ino) {
			if (in == fs->root || !in->hashed)
				continue;
			if (in->rev != 0 && in->kind != FS_I_IFREV)
				continue;
			if (dir ? !has_prefix(in, from, from_len)
			        : (in->key_len != from_len ||
			           memcmp(in->key, from, from_len) != 0))
				continue;
			unlink_key(fs, in);
			/* On ENOMEM the inode stays unhashed: a later lookup
			 * makes a fresh one. */
			if (set_key(in, from_len, to, to_len) == 0) {
				in->next_key = moved;
				moved = in;
			}
		}
	}
	/* Relink after the walk so that no inode is moved twice. */
	while (moved) {
		struct fs_inode *in = moved;

		moved = in->next_key;
		in->next_key = NULL;
		if (__atomic_load_n(&in->wbuf, __ATOMIC_ACQUIRE))
			link_key(fs, in);
	}
	pthread_mutex_unlock(&fs->itab_lock);
}
