/*
 * side_engine.c — the revfs engine side of the conformance test: every
 * operation goes through engine/engine.h on a store in a private
 * directory.
 *
 * Lone ranges ask for count (etcd always returns it) two times out of
 * three; the third time the engine may answer -1 ("not computed"), which
 * only matches when it did not ask, so the cheap path's more/kvs are
 * compared too.  Ranges inside txns always ask.  A lone put or
 * delete goes through eng_put/eng_delete, or through eng_txn when the op
 * asks for something those wrappers cannot do (flags) or when the
 * generator picked the txn path (cop.via_txn), so both paths are checked.
 * The store runs with ENG_SYNC_NONE: durability is not what is compared,
 * and fsyncs would only slow the run.
 */
#include "conf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void engine_log(void *arg, enum eng_log_level level, const char *msg)
{
	if (level <= ENG_LOG_WARN || conf_verbose)
		fprintf(stderr, "  [engine] %s\n", msg);
}

struct engine_side {
	eng *e;
	char dir[4096];     /* the embedded backend's store, or */
	char etcd_url[256]; /* the etcd backend's endpoint */
	int progress_ms;
	uint64_t quota_bytes; /* 0: the default */
};

static eng *E(struct side *s)
{
	return ((struct engine_side *)s->impl)->e;
}

static int engine_open(struct engine_side *es)
{
	struct eng_options opt;

	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE;
	opt.progress_interval_ms = es->progress_ms;
	opt.quota_bytes = es->quota_bytes;
	opt.log = engine_log;
	if (es->etcd_url[0]) {
		const char *eps[1] = {es->etcd_url};
		struct eng_etcd_options eo;

		eng_etcd_options_init(&eo);
		eo.endpoints = eps;
		eo.nendpoints = 1;
		eo.timeout_ms = 30000; /* physical compactions */
		return eng_open_etcd(&eo, &opt, &es->e);
	}
	return eng_open(es->dir, &opt, &es->e);
}

/* Close and open the store again: everything must have persisted. */
static int g_reopen(struct side *s)
{
	struct engine_side *es = s->impl;

	eng_close(es->e);
	es->e = NULL;
	return engine_open(es);
}

static int g_range(struct side *s, const struct eng_range_req *req,
                   struct cres *r)
{
	struct eng_range_req q = *req;
	struct eng_range_res res;
	int rc;

	memset(&res, 0, sizeof(res));
	if (++s->nranges % 3 != 0 || (q.flags & ENG_RANGE_COUNT_ONLY))
		q.flags |= ENG_RANGE_COUNT;
	rc = eng_range(E(s), &q, &res);
	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_range(s->idx, &res, r);
	if (!rc && !(q.flags & ENG_RANGE_COUNT) && res.count == -1)
		r->subs[0].count_unknown = true;
	r->err = rc;
	eng_range_res_release(&res);
	return 0;
}

static int g_txn(struct side *s, const struct eng_txn *txn, struct cres *r)
{
	struct eng_op succ[CONF_MAX_BRANCH + 2], fail[CONF_MAX_BRANCH + 2];
	struct eng_txn t = *txn;
	struct eng_txn_res res;
	size_t i;
	int rc;

	if (t.nsuccess > CONF_MAX_BRANCH + 2 ||
	    t.nfailure > CONF_MAX_BRANCH + 2)
		abort();
	for (i = 0; i < t.nsuccess; i++) {
		succ[i] = t.success[i];
		if (succ[i].type == ENG_OP_RANGE)
			succ[i].flags |= ENG_RANGE_COUNT;
	}
	for (i = 0; i < t.nfailure; i++) {
		fail[i] = t.failure[i];
		if (fail[i].type == ENG_OP_RANGE)
			fail[i].flags |= ENG_RANGE_COUNT;
	}
	t.success = succ;
	t.failure = fail;
	memset(&res, 0, sizeof(res));
	rc = eng_txn(E(s), &t, &res);
	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_txn(s->idx, &res, r);
	r->err = rc;
	eng_txn_res_release(&res);
	return 0;
}

static int g_put(struct side *s, const struct eng_op *op, struct cres *r)
{
	struct eng_kv prev;
	struct eng_op_res o;
	struct eng_txn_res t;
	eng_rev_t rev = 0;
	bool want_prev = op->flags & ENG_PUT_PREV_KV;
	int rc;

	memset(&prev, 0, sizeof(prev));
	rc = eng_put(E(s), op->key, op->key_len, op->value, op->value_len,
	             op->lease, &rev, want_prev ? &prev : NULL);
	memset(r, 0, sizeof(*r));
	if (!rc) {
		memset(&o, 0, sizeof(o));
		o.type = ENG_OP_PUT;
		if (want_prev && prev.mod_rev) {
			o.prev_kvs = &prev;
			o.nprev = 1;
		}
		memset(&t, 0, sizeof(t));
		t.succeeded = true;
		t.header_rev = rev;
		t.res = &o;
		t.nres = 1;
		cres_from_txn(s->idx, &t, r);
	}
	r->err = rc;
	if (want_prev)
		eng_kv_release(&prev);
	return 0;
}

static int g_del(struct side *s, const struct eng_op *op, struct cres *r)
{
	struct eng_op_res o;
	struct eng_txn_res t;
	int64_t deleted = 0;
	eng_rev_t rev = 0;
	int rc;

	rc = eng_delete(E(s), op->key, op->key_len, op->end, op->end_len,
	                &deleted, &rev);
	memset(r, 0, sizeof(*r));
	if (!rc) {
		memset(&o, 0, sizeof(o));
		o.type = ENG_OP_DELETE;
		o.deleted = deleted;
		memset(&t, 0, sizeof(t));
		t.succeeded = true;
		t.header_rev = rev;
		t.res = &o;
		t.nres = 1;
		cres_from_txn(s->idx, &t, r);
	}
	r->err = rc;
	return 0;
}

static int g_compact(struct side *s, eng_rev_t rev, bool wait, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = eng_compact(E(s), rev, wait);
	return 0;
}

static int g_lease_grant(struct side *s, eng_lease_t id, int64_t ttl,
                         eng_lease_t *out, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = eng_lease_grant(E(s), id, ttl, NULL, out);
	return 0;
}

static int g_lease_revoke(struct side *s, eng_lease_t id, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = eng_lease_revoke(E(s), id, &r->rev);
	return 0;
}

static int g_lease_ttl(struct side *s, eng_lease_t id, struct cres *r)
{
	struct eng_lease_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	rc = eng_lease_ttl(E(s), id, ENG_LEASE_KEYS, &info);
	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_lease(&info, r);
	r->err = rc;
	eng_lease_info_release(&info);
	return 0;
}

static int g_lease_keepalive(struct side *s, eng_lease_t id, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = eng_lease_keepalive(E(s), id, &r->ttl);
	return 0;
}

static int g_lease_list(struct side *s, struct cres *r)
{
	struct eng_lease_info *infos = NULL;
	eng_lease_t *ids;
	size_t i, n = 0;
	int rc = eng_lease_list(E(s), &infos, &n);

	memset(r, 0, sizeof(*r));
	if (!rc) {
		ids = calloc(n ? n : 1, sizeof(*ids));
		if (!ids)
			abort();
		for (i = 0; i < n; i++)
			ids[i] = infos[i].id;
		cres_from_lease_ids(s->idx, ids, n, r);
		free(ids);
	}
	r->err = rc;
	free(infos);
	return 0;
}

static int g_lease_alive(struct side *s, eng_lease_t id)
{
	struct eng_lease_info info;
	int rc;

	memset(&info, 0, sizeof(info));
	rc = eng_lease_ttl(E(s), id, 0, &info);
	eng_lease_info_release(&info);
	if (rc == ENG_E_LEASE_NOT_FOUND)
		return 0;
	return rc ? rc : 1;
}

static int g_current_rev(struct side *s, eng_rev_t *rev)
{
	*rev = eng_current_rev(E(s));
	return 0;
}

static int g_watch_open(struct side *s, const void *key, size_t key_len,
                        const void *end, size_t end_len, eng_rev_t start,
                        void **w)
{
	eng_watch *ew = NULL;
	int rc = eng_watch_open(E(s), key, key_len, end, end_len, start, NULL,
	                        NULL, &ew);

	*w = rc ? NULL : ew;
	return rc;
}

static int g_watch_poll(struct side *s, void *w, struct cevlist *l,
                        int timeout_ms)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	struct eng_event *evs;
	int i, n, waited = 0;

	while (!l->end_err) {
		n = eng_watch_read(w, &evs, 256);
		if (n < 0) {
			l->end_err = n;
			break;
		}
		/* a batch ends at a revision's end unless it is full */
		if (n > 0 && l->n > 0 && l->batch_n < 256 &&
		    evs[0].type != ENG_EV_PROGRESS &&
		    evs[0].kv.mod_rev == l->last_ev && !l->problem[0])
			snprintf(l->problem, sizeof(l->problem),
			         "revision %lld split across two reads",
			         (long long)l->last_ev);
		for (i = 0; i < n; i++)
			cevlist_push(s->idx, l, &evs[i]);
		if (n > 0)
			l->batch_n = (size_t)n;
		if (n > 0) {
			timeout_ms = 0;
			continue;
		}
		if (waited >= timeout_ms)
			break;
		nanosleep(&ts, NULL);
		waited += 10;
	}
	return 0;
}

static void g_watch_close(struct side *s, void *w)
{
	eng_watch_close(w);
}

static void g_close(struct side *s)
{
	eng_close(E(s));
	free(s->impl);
	s->impl = NULL;
}

static const struct side_ops engine_ops = {
    .kind = "engine",
    .range = g_range,
    .txn = g_txn,
    .put = g_put,
    .del = g_del,
    .compact = g_compact,
    .lease_grant = g_lease_grant,
    .lease_revoke = g_lease_revoke,
    .lease_ttl = g_lease_ttl,
    .lease_keepalive = g_lease_keepalive,
    .lease_list = g_lease_list,
    .lease_alive = g_lease_alive,
    .current_rev = g_current_rev,
    .watch_open = g_watch_open,
    .watch_poll = g_watch_poll,
    .watch_close = g_watch_close,
    .reopen = g_reopen,
    .close = g_close,
};

static int side_open(struct side *s, int idx, struct engine_side *es,
                     const char *what)
{
	int rc = engine_open(es);

	memset(s, 0, sizeof(*s));
	if (rc) {
		free(es);
		return rc;
	}
	snprintf(s->name, sizeof(s->name), "engine %s", what);
	s->ops = &engine_ops;
	s->idx = idx;
	s->impl = es;
	return 0;
}

int side_engine_open(struct side *s, int idx, const char *dir, int progress_ms)
{
	struct engine_side *es = calloc(1, sizeof(*es));

	if (!es)
		return ENG_E_NOMEM;
	snprintf(es->dir, sizeof(es->dir), "%s", dir);
	es->progress_ms = progress_ms;
	return side_open(s, idx, es, dir);
}

int side_engine_open_quota(struct side *s, int idx, const char *dir,
                           uint64_t quota_bytes)
{
	struct engine_side *es = calloc(1, sizeof(*es));

	if (!es)
		return ENG_E_NOMEM;
	snprintf(es->dir, sizeof(es->dir), "%s", dir);
	es->progress_ms = 100;
	es->quota_bytes = quota_bytes;
	return side_open(s, idx, es, dir);
}

int side_engine_open_etcd(struct side *s, int idx, const char *endpoint,
                          int progress_ms)
{
	struct engine_side *es = calloc(1, sizeof(*es));
	char what[300];

	if (!es)
		return ENG_E_NOMEM;
	snprintf(es->etcd_url, sizeof(es->etcd_url), "%s", endpoint);
	es->progress_ms = progress_ms;
	snprintf(what, sizeof(what), "(etcd backend) on %s", endpoint);
	return side_open(s, idx, es, what);
}
