/*
 * local_admin.c — the maintenance calls of snapshot.h behind revfsctl(1):
 * check (local_check on an open store), defrag (LevelDB's manual
 * compaction, one record space at a time) and the offline repair of the
 * derived records.
 *
 * Repair opens LevelDB itself rather than through eng_open(): a store
 * whose counters or indexes are wrong may not open, and no engine thread
 * (compactor, lease expiry) may write while the indexes are rebuilt.
 * The truth is the history `k` and the lease records `L`; `l`, `A`, `N`
 * and Mstate's live-key counter are derived from them.  Repair first
 * deletes every derived record, then writes them again from one snapshot;
 * a crash in between leaves a store that a second repair fixes.
 */
#include "local_int.h"
#include "snapshot.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPAIR_BATCH 1000
#define REPORT_MAX   50

int eng_check(eng *e, void (*report)(void *arg, const char *msg), void *arg)
{
	return eng_check_progress(e, report, arg, NULL, NULL);
}

int eng_check_progress(eng *e, void (*report)(void *arg, const char *msg),
                       void *arg, eng_progress_fn progress, void *parg)
{
	struct local *l = local_from_eng(e);

	if (!l)
		return ENG_E_INVAL;
	return local_check_progress(l, report, arg, progress, parg);
}

/* ---------------------------------------------------------------- defrag */

int eng_defrag(eng *e, eng_progress_fn progress, void *parg, uint64_t *before,
               uint64_t *after)
{
	/* The spaces in key order; each range ends where the next begins. */
	static const char spaces[] = {SP_ATTACH, SP_LEASE,  SP_META, SP_LNAME,
	                              SP_HIST,   SP_LATEST, SP_LOG};
	const size_t n = sizeof(spaces);
	struct local *l = local_from_eng(e);

	if (!l)
		return ENG_E_INVAL;
	if (before)
		*before = local_measure_bytes(l);
	for (size_t i = 0; i < n; i++) {
		char lo = spaces[i], hi = (char)(spaces[i] + 1);

		if (progress)
			progress(parg, i, n);
		/* The first and last ranges are open-ended: every key. */
		leveldb_compact_range(l->db, i ? &lo : NULL, i ? 1 : 0,
		                      i + 1 < n ? &hi : NULL,
		                      i + 1 < n ? 1 : 0);
	}
	if (progress)
		progress(parg, n, n);
	if (after)
		*after = local_measure_bytes(l);
	return 0;
}

/* ---------------------------------------------------------------- repair */

struct rep {
	struct local *l;
	leveldb_readoptions_t *ro;
	leveldb_writeoptions_t *wo;
	leveldb_writebatch_t *wb;
	size_t nb;
	void (*report)(void *arg, const char *msg);
	void *arg;
	int nreports;
	struct eng_repair_stats *st;
};

static void rep_say(struct rep *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rep_say(struct rep *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!r->report || ++r->nreports > REPORT_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->report(r->arg, msg);
}

static int rep_flush(struct rep *r)
{
	char *err = NULL;

	if (!r->nb)
		return 0;
	leveldb_write(r->l->db, r->wo, r->wb, &err);
	leveldb_writebatch_clear(r->wb);
	r->nb = 0;
	if (err)
		return local_ldb_err(r->l, err, "repair write");
	return 0;
}

static int rep_put(struct rep *r, const char *k, size_t kn, const char *v,
                   size_t vn)
{
	if (v)
		leveldb_writebatch_put(r->wb, k, kn, v, vn);
	else
		leveldb_writebatch_delete(r->wb, k, kn);
	if (++r->nb >= REPAIR_BATCH)
		return rep_flush(r);
	return 0;
}

/* Delete every record of space sp. */
static int rep_clear_space(struct rep *r, char sp)
{
	leveldb_iterator_t *it = leveldb_create_iterator(r->l->db, r->ro);
	int rc = 0;

	for (leveldb_iter_seek(it, &sp, 1); leveldb_iter_valid(it) && !rc;
	     leveldb_iter_next(it)) {
		size_t kn;
		const char *k = leveldb_iter_key(it, &kn);

		if (k[0] != sp)
			break;
		r->st->derived_removed++;
		rc = rep_put(r, k, kn, NULL, 0);
	}
	leveldb_iter_destroy(it);
	return rc ? rc : rep_flush(r);
}

/* 1 if lease id has an `L` record, 0 if not, or an error. */
static int lease_exists(struct rep *r, int64_t id)
{
	struct cbuf k = {0};
	char *err = NULL, *v;
	size_t n;

	if (codec_lease_key(&k, id))
		return ENG_E_NOMEM;
	v = leveldb_get(r->l->db, r->ro, k.p, k.len, &n, &err);
	cbuf_free(&k);
	if (err)
		return local_ldb_err(r->l, err, "repair get");
	leveldb_free(v);
	return v != NULL;
}

/* Rebuild `l` and `A` from the newest version of each key in `k`. */
static int rep_latest(struct rep *r, int64_t *live, int64_t *maxrev,
                      eng_progress_fn progress, void *parg)
{
	leveldb_iterator_t *it = leveldb_create_iterator(r->l->db, r->ro);
	struct cbuf key = {0}, last = {0}, lk = {0}, lv = {0}, ak = {0};
	char sp = SP_HIST;
	uint64_t seen = 0;
	int rc = 0;

	for (leveldb_iter_seek(it, &sp, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t kn, vn, plen;
		const char *k = leveldb_iter_key(it, &kn);
		const char *v = leveldb_iter_value(it, &vn);
		int64_t vrev;
		struct rec rec;

		if (k[0] != SP_HIST)
			break;
		if (progress && ++seen % 4096 == 0)
			progress(parg, seen, 0);
		if (codec_hist_parse(k, kn, &key, &vrev, &plen) ||
		    codec_rec_decode(v, vn, &rec)) {
			r->st->undecodable++;
			rep_say(r, "undecodable history record (%zu bytes)",
			        kn);
			continue;
		}
		if (vrev > *maxrev)
			*maxrev = vrev;
		/* Versions run newest first: only the first counts. */
		if (last.len == plen && memcmp(last.p, k, plen) == 0)
			continue;
		last.len = 0;
		if (cbuf_add(&last, k, plen)) {
			rc = ENG_E_NOMEM;
			break;
		}
		if (rec.type != REC_PUT)
			continue;
		(*live)++;
		lv.len = 0;
		if (codec_latest_key(&lk, key.p, key.len) ||
		    codec_latest_encode(&lv, &rec)) {
			rc = ENG_E_NOMEM;
			break;
		}
		rc = rep_put(r, lk.p, lk.len, lv.p, lv.len);
		r->st->latest_written++;
		if (!rc && rec.lease) {
			rc = lease_exists(r, rec.lease);
			if (rc == 0) {
				r->st->orphan_leases++;
				rep_say(r,
				        "key %.*s names lease %lld, which "
				        "does not exist",
				        (int)key.len, key.p,
				        (long long)rec.lease);
			}
			if (rc >= 0) {
				rc = codec_attach_key(&ak, rec.lease, key.p,
				                      key.len);
				if (!rc)
					rc = rep_put(r, ak.p, ak.len, "", 0);
				r->st->attach_written++;
			}
		}
		if (rc)
			break;
	}
	if (!rc)
		rc = rep_flush(r);
	if (!rc && progress)
		progress(parg, seen, seen); /* the final count */
	leveldb_iter_destroy(it);
	cbuf_free(&key);
	cbuf_free(&last);
	cbuf_free(&lk);
	cbuf_free(&lv);
	cbuf_free(&ak);
	return rc;
}

/* Rebuild `N` from the names in `L`; note the newest log revision. */
static int rep_names(struct rep *r, int64_t *maxrev)
{
	leveldb_iterator_t *it = leveldb_create_iterator(r->l->db, r->ro);
	struct cbuf nk = {0};
	char sp = SP_LEASE, id[8];
	int rc = 0;

	for (leveldb_iter_seek(it, &sp, 1); leveldb_iter_valid(it) && !rc;
	     leveldb_iter_next(it)) {
		size_t kn, vn;
		const char *k = leveldb_iter_key(it, &kn);
		const char *v = leveldb_iter_value(it, &vn);
		char name[ENG_LEASE_NAME_MAX + 1];

		if (k[0] != SP_LEASE)
			break;
		if (kn != 9 || vn < 8 || vn - 8 > ENG_LEASE_NAME_MAX) {
			rep_say(r, "undecodable lease record");
			continue;
		}
		if (vn == 8)
			continue;
		memcpy(name, v + 8, vn - 8);
		name[vn - 8] = 0;
		memcpy(id, k + 1, 8);
		rc = codec_lname_key(&nk, name);
		if (!rc)
			rc = rep_put(r, nk.p, nk.len, id, 8);
		r->st->names_written++;
	}
	leveldb_iter_destroy(it);
	cbuf_free(&nk);
	if (rc)
		return rc;
	/* The log's last record holds the newest revision. */
	it = leveldb_create_iterator(r->l->db, r->ro);
	sp = SP_LOG + 1;
	leveldb_iter_seek(it, &sp, 1);
	if (leveldb_iter_valid(it))
		leveldb_iter_prev(it);
	else
		leveldb_iter_seek_to_last(it);
	if (leveldb_iter_valid(it)) {
		size_t kn;
		const char *k = leveldb_iter_key(it, &kn);

		if (kn == 13 && k[0] == SP_LOG &&
		    (int64_t)codec_get_be64(k + 1) > *maxrev)
			*maxrev = (int64_t)codec_get_be64(k + 1);
	}
	leveldb_iter_destroy(it);
	return rep_flush(r);
}

static int rep_open(struct local *l, const char *dir)
{
	char *err = NULL, *p;
	size_t n;
	int rc = 0;

	struct stat st;
	char *cur;

	/* LevelDB would call a missing directory a lock failure. */
	if (asprintf(&cur, "%s/CURRENT", dir) < 0)
		return ENG_E_NOMEM;
	rc = stat(cur, &st);
	free(cur);
	if (rc || !S_ISREG(st.st_mode))
		return ENG_E_NOT_STORE;
	l->dbopt = leveldb_options_create();
	l->bloom = leveldb_filterpolicy_create_bloom(10);
	l->ro_plain = leveldb_readoptions_create();
	leveldb_options_set_filter_policy(l->dbopt, l->bloom);
	leveldb_options_set_create_if_missing(l->dbopt, 0);
	l->db = leveldb_open(l->dbopt, dir, &err);
	if (err) {
		l->db = NULL;
		return local_ldb_err(l, err, "open");
	}
	p = leveldb_get(l->db, l->ro_plain, META_MAGIC, strlen(META_MAGIC), &n,
	                &err);
	if (err)
		return local_ldb_err(l, err, "open");
	if (!p || n < 4)
		rc = ENG_E_NOT_STORE;
	else if (codec_get_be32(p + n - 4) > CODEC_FORMAT_VERSION)
		rc = ENG_E_VERSION;
	leveldb_free(p);
	return rc;
}

int eng_repair(const char *dir, void (*report)(void *arg, const char *msg),
               void *arg, eng_progress_fn progress, void *parg,
               struct eng_repair_stats *st)
{
	static const char derived[] = {SP_LATEST, SP_ATTACH, SP_LNAME};
	struct local *l = calloc(1, sizeof(*l));
	struct rep r = {.report = report, .arg = arg, .st = st};
	const leveldb_snapshot_t *snap = NULL;
	int64_t rev, keys, live = 0, maxrev;
	char state[16];
	int rc;

	if (!l)
		return ENG_E_NOMEM;
	memset(st, 0, sizeof(*st));
	eng_options_init(&l->base.opt);
	rc = rep_open(l, dir);
	if (rc)
		goto out;
	r.l = l;
	r.wo = leveldb_writeoptions_create();
	r.wb = leveldb_writebatch_create();
	r.ro = leveldb_readoptions_create();
	rc = local_meta_get(l, l->ro_plain, META_STATE, &rev, &keys);
	if (rc)
		goto out;
	st->rev_before = rev;
	st->keys_before = keys;
	for (size_t i = 0; i < sizeof(derived) && !rc; i++)
		rc = rep_clear_space(&r, derived[i]);
	if (rc)
		goto out;
	/* Rebuild from one view of what is left. */
	snap = leveldb_create_snapshot(l->db);
	leveldb_readoptions_set_snapshot(r.ro, snap);
	maxrev = rev;
	/* The rebuilt `l` holds value references (format 2): mark the store
	 * in the batch of the first of them, so that no crash part way
	 * leaves references under an older format's magic. */
	local_put_magic(r.wb);
	r.nb++;
	rc = rep_latest(&r, &live, &maxrev, progress, parg);
	if (!rc)
		rc = rep_names(&r, &maxrev);
	if (rc)
		goto out;
	st->rev_after = maxrev < 1 ? 1 : maxrev;
	st->keys_after = live;
	codec_put_be64(state, (uint64_t)st->rev_after);
	codec_put_be64(state + 8, (uint64_t)live);
	rc = rep_put(&r, META_STATE, strlen(META_STATE), state, 16);
	if (!rc) {
		leveldb_writeoptions_set_sync(r.wo, 1);
		rc = rep_flush(&r);
	}
	if (!rc && st->undecodable)
		rc = ENG_E_CORRUPT;
out:
	if (snap)
		leveldb_release_snapshot(l->db, snap);
	if (r.ro)
		leveldb_readoptions_destroy(r.ro);
	if (r.wb)
		leveldb_writebatch_destroy(r.wb);
	if (r.wo)
		leveldb_writeoptions_destroy(r.wo);
	if (l->db)
		leveldb_close(l->db);
	if (l->dbopt)
		leveldb_options_destroy(l->dbopt);
	if (l->bloom)
		leveldb_filterpolicy_destroy(l->bloom);
	if (l->ro_plain)
		leveldb_readoptions_destroy(l->ro_plain);
	free(l);
	return rc;
}
