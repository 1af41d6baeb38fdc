/*
 * local_check.c — verify that the local store's indexes agree (used by the
 * crash test and the offline `check` tool).  Reads through one LevelDB
 * snapshot, so it can run on an open store while writers go on.
 *
 * Checked: every key's newest `k` version matches its `l` record (a put has
 * an identical `l` record, a deletion has none); the number of `l` records
 * equals the live-key counter in Mstate; no `k` or `r` record is newer than
 * Mstate's revision; every `r` put at or above the compaction revision has
 * its `k` version; every live key with a lease has its `A` record and every
 * `A` record names a live key holding that lease.  Cost: one pass over the
 * whole store.
 */
#include "local_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chk {
	struct local *l;
	leveldb_readoptions_t *ro;
	void (*report)(void *arg, const char *msg);
	void *arg;
	int64_t problems;
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *parg;
	uint64_t seen;   /* records read, over every pass */
	uint32_t format; /* the store format Mmagic names */
};

#define CHECK_PROGRESS_EVERY 65536

/* One record read: tell the caller now and then (the total is unknown
 * until the end, when the last call gives the count as the total). */
static void tick(struct chk *c)
{
	if (c->progress && ++c->seen % CHECK_PROGRESS_EVERY == 0)
		c->progress(c->parg, c->seen, 0);
}

static void problem(struct chk *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct chk *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	c->problems++;
	if (!c->report || c->problems > 50)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->report(c->arg, msg);
}

/* Fetch a raw record: 1 (into *v, leveldb_free it), 0 missing, or error. */
static int raw_get(struct chk *c, const struct cbuf *k, char **v, size_t *n)
{
	char *err = NULL;

	*v = leveldb_get(c->l->db, c->ro, k->p, k->len, n, &err);
	if (err)
		return local_ldb_err(c->l, err, "check get");
	return *v != NULL;
}

/* c->format from Mmagic (its last four bytes, big-endian). */
static int read_format(struct chk *c)
{
	struct cbuf k = {0};
	char *v = NULL;
	size_t n;
	int rc;

	if (cbuf_add(&k, META_MAGIC, strlen(META_MAGIC))) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	rc = raw_get(c, &k, &v, &n);
	if (rc < 0)
		goto out;
	if (rc == 0 || n < 4) {
		problem(c, "no store format record");
		c->format = 0;
	} else {
		c->format = codec_get_be32(v + n - 4);
	}
	rc = 0;
out:
	leveldb_free(v);
	cbuf_free(&k);
	return rc;
}

static int check_hist(struct chk *c, int64_t rev, int64_t *live)
{
	leveldb_iterator_t *it = leveldb_create_iterator(c->l->db, c->ro);
	struct cbuf key = {0}, last = {0}, lk = {0};
	char start = SP_HIST;
	int rc = 0;

	*live = 0;
	for (leveldb_iter_seek(it, &start, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		tick(c);
		size_t kn, vn, plen, ln;
		const char *k = leveldb_iter_key(it, &kn);
		const char *v = leveldb_iter_value(it, &vn);
		struct rec r, lr;
		int64_t vrev;
		char *lv;
		int drc;

		if (k[0] != SP_HIST)
			break;
		if (codec_hist_parse(k, kn, &key, &vrev, &plen) ||
		    codec_rec_decode(v, vn, &r)) {
			problem(c, "undecodable history record");
			continue;
		}
		if (vrev > rev || vrev < 1)
			problem(c,
			        "history version at %lld beyond revision "
			        "%lld",
			        (long long)vrev, (long long)rev);
		/* Only the newest (first) version of each key. */
		if (last.len == plen && memcmp(last.p, k, plen) == 0)
			continue;
		last.len = 0;
		if (cbuf_add(&last, k, plen) ||
		    codec_latest_key(&lk, key.p, key.len)) {
			rc = ENG_E_NOMEM;
			break;
		}
		rc = raw_get(c, &lk, &lv, &ln);
		if (rc < 0)
			break;
		drc = rc == 1 ? codec_latest_decode(lv, ln, &lr) : 0;
		if (r.type == REC_DEL) {
			if (rc == 1)
				problem(c,
				        "deleted key %.*s has a latest "
				        "record",
				        (int)key.len, key.p);
		} else if (rc == 0) {
			problem(c,
			        "live key %.*s (rev %lld) has no latest "
			        "record",
			        (int)key.len, key.p, (long long)vrev);
		} else if (drc == 0 && lr.val_ref && c->format < 2) {
			problem(c,
			        "latest record of %.*s is a value reference, "
			        "but the store is marked format %u",
			        (int)key.len, key.p, c->format);
		} else if (drc || lr.type != REC_PUT || lr.mod_rev != vrev ||
		           lr.val_len != r.val_len ||
		           (!lr.val_ref &&
		            memcmp(lr.val, r.val, r.val_len) != 0) ||
		           lr.create_rev != r.create_rev ||
		           lr.version != r.version || lr.lease != r.lease) {
			problem(c,
			        "latest record of %.*s differs from its "
			        "newest version %lld",
			        (int)key.len, key.p, (long long)vrev);
		}
		if (r.type == REC_PUT) {
			(*live)++;
			if (r.lease) {
				struct cbuf ak = {0};
				char *av;
				size_t an;
				int arc;

				if (codec_attach_key(&ak, r.lease, key.p,
				                     key.len)) {
					rc = ENG_E_NOMEM;
					leveldb_free(lv);
					break;
				}
				arc = raw_get(c, &ak, &av, &an);
				cbuf_free(&ak);
				if (arc == 0)
					problem(c,
					        "key %.*s: lease %lld has "
					        "no attach record",
					        (int)key.len, key.p,
					        (long long)r.lease);
				leveldb_free(av);
			}
		}
		leveldb_free(lv);
		rc = 0;
	}
	leveldb_iter_destroy(it);
	cbuf_free(&key);
	cbuf_free(&last);
	cbuf_free(&lk);
	return rc;
}

static int64_t count_space(struct chk *c, char sp)
{
	leveldb_iterator_t *it = leveldb_create_iterator(c->l->db, c->ro);
	int64_t n = 0;

	for (leveldb_iter_seek(it, &sp, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		tick(c);
		size_t kn;

		if (leveldb_iter_key(it, &kn)[0] != sp)
			break;
		n++;
	}
	leveldb_iter_destroy(it);
	return n;
}

static int check_log(struct chk *c, int64_t rev, int64_t crev)
{
	leveldb_iterator_t *it = leveldb_create_iterator(c->l->db, c->ro);
	struct cbuf hk = {0};
	char start = SP_LOG;
	int rc = 0;

	for (leveldb_iter_seek(it, &start, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		tick(c);
		size_t kn, vn, hn;
		const char *k = leveldb_iter_key(it, &kn);
		const char *v = leveldb_iter_value(it, &vn);
		int64_t r;
		char *hv;

		if (k[0] != SP_LOG)
			break;
		if (kn != 13 || vn < 1) {
			problem(c, "undecodable log record");
			continue;
		}
		r = (int64_t)codec_get_be64(k + 1);
		if (r > rev)
			problem(c, "log record at %lld beyond revision %lld",
			        (long long)r, (long long)rev);
		if (r < crev || v[0] != REC_PUT)
			continue;
		if (codec_hist_key(&hk, v + 1, vn - 1, r)) {
			rc = ENG_E_NOMEM;
			break;
		}
		rc = raw_get(c, &hk, &hv, &hn);
		if (rc < 0)
			break;
		if (rc == 0)
			problem(c, "log record %lld of %.*s has no version",
			        (long long)r, (int)(vn - 1), v + 1);
		leveldb_free(hv);
		rc = 0;
	}
	leveldb_iter_destroy(it);
	cbuf_free(&hk);
	return rc;
}

static int check_attach(struct chk *c)
{
	leveldb_iterator_t *it = leveldb_create_iterator(c->l->db, c->ro);
	struct cbuf lk = {0};
	char start = SP_ATTACH;
	int rc = 0;

	for (leveldb_iter_seek(it, &start, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		tick(c);
		size_t kn, ln;
		const char *k = leveldb_iter_key(it, &kn);
		int64_t id;
		struct rec r;
		char *lv;

		if (k[0] != SP_ATTACH)
			break;
		if (kn < 10) {
			problem(c, "undecodable attach record");
			continue;
		}
		id = (int64_t)codec_get_be64(k + 1);
		if (codec_latest_key(&lk, k + 9, kn - 9)) {
			rc = ENG_E_NOMEM;
			break;
		}
		rc = raw_get(c, &lk, &lv, &ln);
		if (rc < 0)
			break;
		if (rc == 0 || codec_latest_decode(lv, ln, &r) || r.lease != id)
			problem(c,
			        "attach record %lld/%.*s names no live key "
			        "with that lease",
			        (long long)id, (int)(kn - 9), k + 9);
		leveldb_free(lv);
		rc = 0;
	}
	leveldb_iter_destroy(it);
	cbuf_free(&lk);
	return rc;
}

int local_check(struct local *l, void (*report)(void *arg, const char *msg),
                void *arg)
{
	return local_check_progress(l, report, arg, NULL, NULL);
}

int local_check_progress(
    struct local *l, void (*report)(void *arg, const char *msg), void *arg,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *parg)
{
	const leveldb_snapshot_t *snap = leveldb_create_snapshot(l->db);
	struct chk c = {.l = l,
	                .report = report,
	                .arg = arg,
	                .progress = progress,
	                .parg = parg};
	int64_t rev, keys, crev, live, nlatest;
	int rc;

	c.ro = leveldb_readoptions_create();
	leveldb_readoptions_set_snapshot(c.ro, snap);
	rc = local_meta_get(l, c.ro, META_STATE, &rev, &keys);
	if (!rc)
		rc = local_meta_get(l, c.ro, META_COMPACT, &crev, NULL);
	if (!rc)
		rc = read_format(&c);
	if (!rc)
		rc = check_hist(&c, rev, &live);
	if (rc)
		goto out;
	nlatest = count_space(&c, SP_LATEST);
	if (nlatest != live)
		problem(&c, "%lld latest records but %lld live keys in history",
		        (long long)nlatest, (long long)live);
	if (keys != live)
		problem(&c, "live-key counter %lld but %lld live keys",
		        (long long)keys, (long long)live);
	rc = check_log(&c, rev, crev);
	if (!rc)
		rc = check_attach(&c);
	if (!rc && progress)
		progress(parg, c.seen, c.seen); /* the final count */
	if (!rc && c.problems)
		rc = ENG_E_CORRUPT;
out:
	leveldb_readoptions_destroy(c.ro);
	leveldb_release_snapshot(l->db, snap);
	return rc;
}
