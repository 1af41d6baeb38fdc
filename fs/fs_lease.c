/*
 * fs_lease.c — `MOUNT/@leases/`: leases as files (docs/reference.md,
 * "Leases").
 *
 *   echo 40 > @leases/NAME   grant NAME with a TTL of 40 s; writing again
 *                            sets the TTL and renews (eng_lease_set_ttl)
 *   touch @leases/NAME       renew (keepalive: no revision, no disk write)
 *   cat @leases/NAME         id, TTL, remaining seconds, attached keys
 *   rm @leases/NAME          revoke (its keys go in one revision)
 *   ls @leases               the live leases
 *
 * A lease without a name (granted through the API) is listed as `%ID`
 * (decimal id); a file name starting with `%` or `@` cannot be granted, and
 * a name the listing cannot show (one with a '/') is listed by id too.
 *
 * Holders: every open descriptor of a lease file holds the lease.  A hold
 * renews at open and then every TTL/3 from one renewal thread, so a lease
 * held by `exec 3>@leases/NAME` lives as long as the descriptor; when the
 * last holder closes it (or dies: the kernel releases its descriptors) the
 * renewals stop and the engine expires it after its TTL, deleting its keys
 * in one revision (fs_notify.c then invalidates the kernel's caches).
 * Opening with O_TRUNC changes nothing: only a written TTL does.
 *
 * Every lease-file operation resolves the name again (eng_lease_lookup), so
 * nothing here caches engine state; the only state is the holds table.
 * Lock order: holds lock is a leaf, never held across an engine call.
 *
 * The kernel caches a lease file's name (so that a renewing `touch` is no
 * LOOKUP), never its attributes: the entry's timeout is the lease's
 * remaining TTL at the lookup, so the cached name never outlives the
 * deadline known then (a renewal only moves the deadline later; the next
 * lookup after the timeout caches it again).  A TTL written through the
 * mount may move the deadline earlier: the name is then invalidated by the
 * notifier thread.  With attributes never cached, every stat, open and
 * setattr still asks the engine, so a lease revoked by another path (the
 * API, another etcd client) fails them with ENOENT at once, cached name or
 * not; `ls @leases` lists afresh at each opendir.
 */
#include "fs_lease.h"
#include "fs_special.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FS_LEASE_MIN_RENEW_MS 200
#define FS_LEASE_RETRY_MS     1000 /* a held name not granted (yet) */
#define FS_LEASE_IDLE_MS      60000
/* The longest a lease file's name is cached (the kernel's entry timeout is
 * the remaining TTL, at most this). */
#define FS_LEASE_ENTRY_MAX_S 3600.0

struct fs_lease_hold {
	struct fs_lease_hold *next;
	char *name;
	int count;       /* open descriptors */
	int64_t next_ms; /* monotonic time of the next renewal */
};

/* An open listing of @leases: the names at opendir. */
struct fs_lease_dh {
	struct fs_lease_dh *next; /* on fs->leases->dirs */
	char **names;
	size_t n;
};

static void dh_free(struct fs_lease_dh *dh)
{
	for (size_t i = 0; i < dh->n; i++)
		free(dh->names[i]);
	free(dh->names);
	free(dh);
}

struct fs_leases {
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* wakes the renewal thread */
	struct fs_lease_hold *holds; /* protected by lock */
	/* open listings, freed at unmount if the kernel never released
	 * them; protected by lock */
	struct fs_lease_dh *dirs;
	bool stop; /* protected by lock */
	/* When the renewal thread wakes up next by itself (monotonic ms): a
	 * new hold due later needs no wake-up; protected by lock */
	int64_t wake_ms;
	pthread_t thread;
	bool running;
	/* The @leases directory's inode, once a lookup in it cached a name
	 * (atomic; 0: none cached yet) */
	fuse_ino_t dir_ino;
};

static pthread_mutex_t leases_init_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool row_is(const struct fs_inode *in, const char *name)
{
	const struct fs_special *sp;

	if (in->kind != FS_I_SPECIAL)
		return false;
	sp = fs_special_get(in->special);
	return sp && strcmp(sp->name, name) == 0;
}

bool fs_lease_is_dir(const struct fs_inode *in)
{
	return row_is(in, "@leases");
}

bool fs_lease_is_file(const struct fs_inode *in)
{
	return row_is(in, "@leases/NAME");
}

int fs_lease_row_write(struct fs *fs, const char *buf, size_t len)
{
	return -EINVAL;
}

/*
 * A file name -> lease id.  `%ID` names an unnamed lease.  With remaining_ms
 * not NULL, also the lease's remaining time (one more engine call for a
 * name; `%ID` gets it from its existence check).
 */
static int resolve_ttl(struct fs *fs, const char *name, eng_lease_t *id,
                       int64_t *remaining_ms)
{
	struct eng_lease_info info;
	eng_rev_t v;
	int rc;

	if (name[0] == '%') {
		if (fs_parse_rev(name + 1, strlen(name + 1), &v) < 0 || v <= 0)
			return -ENOENT;
		*id = (eng_lease_t)v;
	} else {
		rc = eng_lease_lookup(fs->e, name, id);
		if (rc < 0)
			return -fs_errno(rc);
		if (!remaining_ms)
			return 0;
	}
	memset(&info, 0, sizeof(info));
	rc = eng_lease_ttl(fs->e, *id, 0, &info);
	if (rc == 0 && remaining_ms)
		*remaining_ms = info.remaining_ms;
	eng_lease_info_release(&info);
	return rc < 0 ? -fs_errno(rc) : 0;
}

static int resolve(struct fs *fs, const char *name, eng_lease_t *id)
{
	return resolve_ttl(fs, name, id, NULL);
}

/* ------------------------------------------------------------------ holds */

static struct fs_leases *leases_get(struct fs *fs)
{
	struct fs_leases *ls;
	pthread_condattr_t ca;

	pthread_mutex_lock(&leases_init_lock);
	ls = fs->leases;
	if (!ls) {
		ls = calloc(1, sizeof(*ls));
		if (ls) {
			pthread_mutex_init(&ls->lock, NULL);
			pthread_condattr_init(&ca);
			pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
			pthread_cond_init(&ls->cond, &ca);
			pthread_condattr_destroy(&ca);
			fs->leases = ls;
		}
	}
	pthread_mutex_unlock(&leases_init_lock);
	return ls;
}

/* Renew `name` now; the delay until the next renewal, in ms. */
static int64_t renew(struct fs *fs, const char *name)
{
	eng_lease_t id;
	int64_t ttl = 0;

	if (resolve(fs, name, &id) < 0 ||
	    eng_lease_keepalive(fs->e, id, &ttl) < 0)
		return FS_LEASE_RETRY_MS;
	ttl = ttl * 1000 / 3;
	return ttl < FS_LEASE_MIN_RENEW_MS ? FS_LEASE_MIN_RENEW_MS : ttl;
}

static void *renew_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_leases *ls = fs->leases;

	pthread_mutex_lock(&ls->lock);
	while (!ls->stop) {
		int64_t now = now_ms(), next = now + FS_LEASE_IDLE_MS;
		struct fs_lease_hold *h;
		struct timespec ts;
		char *name = NULL;

		for (h = ls->holds; h; h = h->next) {
			if (h->next_ms <= now) {
				name = strdup(h->name);
				h->next_ms = now + FS_LEASE_RETRY_MS;
				break;
			}
			if (h->next_ms < next)
				next = h->next_ms;
		}
		if (name) {
			int64_t d;

			/* one at a time, the lock dropped for the engine */
			pthread_mutex_unlock(&ls->lock);
			d = renew(fs, name);
			pthread_mutex_lock(&ls->lock);
			for (h = ls->holds; h; h = h->next)
				if (strcmp(h->name, name) == 0)
					h->next_ms = now_ms() + d;
			free(name);
			continue;
		}
		ts.tv_sec = next / 1000;
		ts.tv_nsec = (next % 1000) * 1000000;
		ls->wake_ms = next;
		pthread_cond_timedwait(&ls->cond, &ls->lock, &ts);
		ls->wake_ms = 0; /* awake: it rescans before sleeping again */
	}
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

static int hold(struct fs *fs, const char *name)
{
	struct fs_leases *ls = leases_get(fs);
	struct fs_lease_hold *h;
	int64_t d;
	int rc = 0;

	if (!ls)
		return -ENOMEM;
	d = renew(fs, name); /* an open is a renewal */
	pthread_mutex_lock(&ls->lock);
	for (h = ls->holds; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			break;
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h || !(h->name = strdup(name))) {
			free(h);
			rc = -ENOMEM;
			goto out;
		}
		h->next = ls->holds;
		ls->holds = h;
		h->next_ms = now_ms() + d;
	}
	h->count++;
	if (!ls->running && !ls->stop) {
		if (pthread_create(&ls->thread, NULL, renew_main, fs) == 0)
			ls->running = true;
		else
			fs_logf(ENG_LOG_ERR, "@leases: no renewal thread");
	}
	/* A `touch` holds for a moment only: wake the thread (a context
	 * switch per open) only if it would sleep past this hold's renewal. */
	if (ls->wake_ms > 0 && h->next_ms < ls->wake_ms)
		pthread_cond_signal(&ls->cond);
out:
	pthread_mutex_unlock(&ls->lock);
	return rc;
}

/* Is `name` held by an open descriptor (a grant may still be pending)? */
static bool held(struct fs *fs, const char *name)
{
	struct fs_leases *ls = fs->leases;
	struct fs_lease_hold *h;
	bool found = false;

	if (!ls)
		return false;
	pthread_mutex_lock(&ls->lock);
	for (h = ls->holds; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			found = true;
	pthread_mutex_unlock(&ls->lock);
	return found;
}

void fs_lease_close(struct fs *fs, struct fs_inode *in)
{
	struct fs_leases *ls = fs->leases;
	struct fs_lease_hold **pp, *h;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	for (pp = &ls->holds; (h = *pp); pp = &h->next) {
		if (strcmp(h->name, in->key) != 0)
			continue;
		if (--h->count == 0) {
			*pp = h->next;
			free(h->name);
			free(h);
		}
		break;
	}
	pthread_mutex_unlock(&ls->lock);
}

void fs_lease_free(struct fs *fs)
{
	struct fs_leases *ls = fs->leases;
	struct fs_lease_hold *h;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	ls->stop = true;
	pthread_cond_signal(&ls->cond);
	pthread_mutex_unlock(&ls->lock);
	if (ls->running)
		pthread_join(ls->thread, NULL);
	while ((h = ls->holds)) {
		ls->holds = h->next;
		free(h->name);
		free(h);
	}
	while (ls->dirs) {
		struct fs_lease_dh *dh = ls->dirs;

		ls->dirs = dh->next;
		dh_free(dh);
	}
	pthread_cond_destroy(&ls->cond);
	pthread_mutex_destroy(&ls->lock);
	free(ls);
	fs->leases = NULL;
}

/* ------------------------------------------------------------- attributes */

/* The attributes of a lease file known to exist (no engine call). */
static void file_attr(struct fs *fs, struct fs_inode *in, struct stat *st)
{
	fs_fill_file_attr(fs, in, NULL, st);
	st->st_mode = S_IFREG | (fs->cfg.read_only ? 0444 : 0644);
}

int fs_lease_stat(struct fs *fs, struct fs_inode *in, struct stat *st)
{
	eng_lease_t id;
	int rc;

	if (fs_lease_is_dir(in)) {
		fs_fill_dir_attr(fs, in, st);
		return 0;
	}
	rc = resolve(fs, in->key, &id);
	if (rc < 0 && !(rc == -ENOENT && held(fs, in->key)))
		return rc;
	file_attr(fs, in, st);
	return 0;
}

static int name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > ENG_LEASE_NAME_MAX)
		return -ENAMETOOLONG;
	if (name[0] == '@' || name[0] == '%')
		return -EINVAL; /* revfs's names and unnamed leases' */
	return 0;
}

struct fs_inode *fs_lease_inode(struct fs *fs, const char *name, int *rc)
{
	eng_rev_t rev;
	int idx = fs_special_find("@leases/NAME", &rev);
	struct fs_inode *in;

	*rc = name[0] == '%' ? 0 : name_ok(name);
	if (*rc < 0)
		return NULL;
	in = fs_inode_get(fs, FS_I_SPECIAL, 0, idx, name, strlen(name), 1);
	if (!in)
		*rc = -ENOMEM;
	return in;
}

void fs_lease_lookup(fuse_req_t req, struct fs *fs, fuse_ino_t parent,
                     const char *name)
{
	struct fuse_entry_param ep;
	struct fs_leases *ls;
	struct fs_inode *in;
	int64_t remaining_ms = 0;
	eng_lease_t id;
	int rc;

	rc = resolve_ttl(fs, name, &id, &remaining_ms);
	if (rc < 0 && !(rc == -ENOENT && held(fs, name)))
		goto fail;
	if (rc < 0)
		remaining_ms = 0; /* held, not granted yet */
	in = fs_lease_inode(fs, name, &rc);
	if (!in)
		goto fail;
	memset(&ep, 0, sizeof(ep));
	file_attr(fs, in, &ep.attr); /* resolved above: a touch costs less */
	ep.ino = in->ino;
	/* The name until the deadline known now (see the top of the file);
	 * a held name not granted yet, and the attributes, not at all. */
	ep.attr_timeout = 0;
	ep.entry_timeout = remaining_ms > 0 ? (double)remaining_ms / 1000 : 0;
	if (ep.entry_timeout > FS_LEASE_ENTRY_MAX_S)
		ep.entry_timeout = FS_LEASE_ENTRY_MAX_S;
	if (ep.entry_timeout > 0 && (ls = leases_get(fs)))
		__atomic_store_n(&ls->dir_ino, parent, __ATOMIC_RELAXED);
	if (fuse_reply_entry(req, &ep) != 0)
		fs_inode_forget(fs, in->ino, 1);
	return;
fail:
	if (rc == -ENOENT)
		fuse_reply_err(req, ENOENT); /* a plain miss: not logged */
	else
		fs_reply_err(req, -rc, "lookup", "@leases/%s", name);
}

void fs_lease_setattr(fuse_req_t req, struct fs *fs, struct fs_inode *in,
                      int to_set)
{
	struct stat st;
	eng_lease_t id;
	bool renewed = false;
	int rc = 0;

	if (fs->cfg.read_only) {
		rc = -EROFS;
		goto fail;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
	              FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		rc = resolve(fs, in->key, &id);
		if (rc == 0)
			rc = eng_lease_keepalive(fs->e, id, NULL);
		if (rc < 0) {
			rc = rc == -ENOENT ? rc : -fs_errno(rc);
			goto fail;
		}
		renewed = true;
	}
	/* a size (O_TRUNC, truncate) is accepted and changes nothing */
	if (renewed)
		file_attr(fs, in, &st); /* it exists: no second look-up */
	else
		rc = fs_lease_stat(fs, in, &st);
	if (rc < 0)
		goto fail;
	fuse_reply_attr(req, &st, 0);
	return;
fail:
	fs_reply_err(req, -rc, "setattr", "@leases/%s", in->key);
}

/* ------------------------------------------------------------ the listing */

/* The listed name of a lease; malloc'd. */
static char *list_name(const struct eng_lease_info *li)
{
	char *s;

	if (li->name[0] && !strchr(li->name, '/') && li->name[0] != '%' &&
	    li->name[0] != '@')
		return strdup(li->name);
	if (asprintf(&s, "%%%lld", (long long)li->id) < 0)
		return NULL;
	return s;
}

void fs_lease_opendir(fuse_req_t req, struct fs *fs, struct fuse_file_info *fi)
{
	struct fs_leases *ls = leases_get(fs);
	struct eng_lease_info *l = NULL;
	struct fs_lease_dh *dh;
	size_t n = 0;
	int rc;

	dh = ls ? calloc(1, sizeof(*dh)) : NULL;
	if (!dh) {
		fs_reply_err(req, ENOMEM, "opendir", "@leases");
		return;
	}
	/* One list at opendir: the listing is one moment's leases. */
	rc = eng_lease_list(fs->e, &l, &n);
	if (rc < 0) {
		free(dh);
		fs_reply_err(req, fs_errno(rc), "opendir", "@leases");
		return;
	}
	dh->names = calloc(n ? n : 1, sizeof(*dh->names));
	for (size_t i = 0; dh->names && i < n; i++)
		if ((dh->names[dh->n] = list_name(&l[i])))
			dh->n++;
	free(l);
	if (!dh->names) {
		free(dh);
		fs_reply_err(req, ENOMEM, "opendir", "@leases");
		return;
	}
	pthread_mutex_lock(&ls->lock);
	dh->next = ls->dirs;
	ls->dirs = dh;
	pthread_mutex_unlock(&ls->lock);
	fi->fh = (uintptr_t)dh;
	if (fuse_reply_open(req, fi) != 0)
		fs_lease_releasedir(NULL, fs, fi);
}

void fs_lease_readdir(fuse_req_t req, struct fs *fs, size_t size, off_t off,
                      struct fuse_file_info *fi, bool plus)
{
	struct fs_lease_dh *dh = (struct fs_lease_dh *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t pos = 0;

	if (!buf) {
		fs_reply_err(req, ENOMEM, "readdir", "@leases");
		return;
	}
	/* entries: ".", "..", then the names; off is the next index */
	for (size_t i = off < 0 ? 0 : (size_t)off; i < dh->n + 2; i++) {
		const char *name = i == 0   ? "."
		                   : i == 1 ? ".."
		                            : dh->names[i - 2];
		struct fuse_entry_param ep;
		size_t need;

		memset(&ep, 0, sizeof(ep));
		ep.attr.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		/* a number for d_ino; no inode is made (ep.ino 0) */
		ep.attr.st_ino = fs_hash64(name, strlen(name), 0x1ea5e) | 1;
		if (plus)
			need =
			    fuse_add_direntry_plus(req, buf + pos, size - pos,
			                           name, &ep, (off_t)i + 1);
		else
			need = fuse_add_direntry(req, buf + pos, size - pos,
			                         name, &ep.attr, (off_t)i + 1);
		if (need > size - pos)
			break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

void fs_lease_releasedir(fuse_req_t req, struct fs *fs,
                         struct fuse_file_info *fi)
{
	struct fs_lease_dh *dh = (struct fs_lease_dh *)(uintptr_t)fi->fh;
	struct fs_leases *ls = fs->leases;

	pthread_mutex_lock(&ls->lock);
	for (struct fs_lease_dh **pp = &ls->dirs; *pp; pp = &(*pp)->next) {
		if (*pp == dh) {
			*pp = dh->next;
			break;
		}
	}
	pthread_mutex_unlock(&ls->lock);
	dh_free(dh);
	if (req)
		fuse_reply_err(req, 0);
}

/* ------------------------------------------------------- open, write, rm */

/* Append the key, relative to the mount and encoded, and a newline. */
static int put_key(struct fs *fs, FILE *f, const char *key, size_t len)
{
	char name[FS_NAME_MAX + 1];

	if (len < fs->prefix_len || memcmp(key, fs->prefix, fs->prefix_len))
		return 0; /* outside this mount's prefix */
	key += fs->prefix_len;
	len -= fs->prefix_len;
	while (len > 0) {
		const char *sl = memchr(key, '/', len);
		size_t seg = sl ? (size_t)(sl - key) : len;

		if (fs_name_encode(key, seg, true, name) < 0)
			return -EINVAL;
		fputs(name, f);
		if (!sl)
			break;
		fputc('/', f);
		key += seg + 1;
		len -= seg + 1;
	}
	fputc('\n', f);
	return 0;
}

/* The content of a lease file. */
static int content(struct fs *fs, const char *name, char **buf, size_t *len)
{
	struct eng_lease_info info;
	eng_lease_t id;
	FILE *f;
	int rc;

	memset(&info, 0, sizeof(info));
	*buf = NULL;
	*len = 0;
	rc = resolve(fs, name, &id);
	if (rc < 0)
		return rc == -ENOENT && held(fs, name) ? 0 : rc;
	rc = eng_lease_ttl(fs->e, id, ENG_LEASE_KEYS, &info);
	if (rc < 0)
		return -fs_errno(rc);
	f = open_memstream(buf, len);
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	fprintf(f, "id %lld\nttl %lld\nremaining %.3f\nkeys %zu\n",
	        (long long)info.id, (long long)info.granted_ttl,
	        info.remaining_ms > 0 ? (double)info.remaining_ms / 1000 : 0.0,
	        info.nkeys);
	for (size_t i = 0; i < info.nkeys && rc == 0; i++)
		rc = put_key(fs, f, info.keys[i].key, info.keys[i].key_len);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(*buf);
		*buf = NULL;
	}
out:
	eng_lease_info_release(&info);
	return rc;
}

int fs_lease_open(struct fs *fs, struct fs_inode *in, bool wr, char **buf,
                  size_t *len)
{
	int rc = 0;

	if (wr && fs->cfg.read_only)
		return -EROFS; /* create_lease comes here before any check */
	if (!wr)
		rc = content(fs, in->key, buf, len);
	if (rc == 0)
		rc = hold(fs, in->key);
	if (rc < 0 && !wr) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

int fs_lease_commit(struct fs *fs, struct fs_inode *in, const char *buf,
                    size_t len)
{
	int64_t ttl;
	eng_lease_t id;
	fuse_ino_t dir;
	int rc;

	if (fs_parse_written_number(buf, len, &ttl) < 0)
		return -EINVAL;
	rc = resolve(fs, in->key, &id);
	if (rc == 0) {
		rc = eng_lease_set_ttl(fs->e, id, ttl);
		/* The deadline may have moved earlier than the cached name's
		 * timeout: the next lookup caches it again. */
		if (rc == 0 && fs->leases &&
		    (dir = __atomic_load_n(&fs->leases->dir_ino,
		                           __ATOMIC_RELAXED)))
			fs_inval_entry_later(fs, dir, in->key);
	} else if (rc == -ENOENT && in->key[0] != '%') {
		rc = eng_lease_grant(fs->e, 0, ttl, in->key, &id);
		if (rc == 0)
			fs_logf(ENG_LOG_DEBUG, "@leases/%s: granted, TTL %lld",
			        in->key, (long long)ttl);
	} else {
		return rc;
	}
	return rc < 0 ? -fs_errno(rc) : 0;
}

void fs_lease_unlink(fuse_req_t req, struct fs *fs, const char *name)
{
	eng_lease_t id;
	eng_rev_t rev = 0;
	int rc;

	if (fs->cfg.read_only) {
		rc = -EROFS;
		goto fail;
	}
	rc = resolve(fs, name, &id);
	if (rc == 0) {
		rc = eng_lease_revoke(fs->e, id, &rev);
		rc = rc < 0 ? -fs_errno(rc) : 0;
	}
	if (rc < 0)
		goto fail;
	fs_logf(ENG_LOG_DEBUG, "@leases/%s revoked at revision %lld", name,
	        (long long)rev);
	/* The kernel saw an unlink of @leases/NAME, not of the keys: let the
	 * notifier drop their entries (and replay their IN_DELETE) before
	 * rm returns, so a stat right after it finds them gone.  Bounded: a
	 * stuck notifier only costs this wait. */
	if (rev > 0)
		fs_notify_wait(fs, rev, 2000);
	fuse_reply_err(req, 0);
	return;
fail:
	fs_reply_err(req, -rc, "unlink", "@leases/%s", name);
}
