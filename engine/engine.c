/*
 * engine.c — every public eng_* call: the argument checks that do not depend
 * on the backend, then dispatch through e->ops (or w->ops for watches).
 * Also the generic pieces every backend shares: error strings, option
 * defaults, the put/delete/get wrappers over txn/range, result release,
 * logging and clocks.
 *
 * Invariants: a call that fails here leaves its result empty and never
 * reaches the backend; results are released only through the rules in
 * eng_int.h ("Result memory"), whatever the backend.
 */
#include "eng_int.h"
#include "local_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENG_MAX_TXN_OPS 1024
#define ENG_TTL_MAX     9000000000LL

const char *eng_strerror(int err)
{
	switch (err) {
	case ENG_OK:
		return "success";
	case ENG_E_INVAL:
		return "invalid argument";
	case ENG_E_NOMEM:
		return "out of memory";
	case ENG_E_IO:
		return "storage I/O error";
	case ENG_E_CORRUPT:
		return "corrupt record in the store";
	case ENG_E_NOT_STORE:
		return "not a revfs store";
	case ENG_E_LOCKED:
		return "store is locked by another process";
	case ENG_E_COMPACTED:
		return "required revision has been compacted";
	case ENG_E_FUTURE_REV:
		return "required revision is a future revision";
	case ENG_E_TOO_LARGE:
		return "value too large";
	case ENG_E_NOSPACE:
		return "database space exceeded (NOSPACE alarm)";
	case ENG_E_LEASE_NOT_FOUND:
		return "requested lease not found";
	case ENG_E_LEASE_EXISTS:
		return "lease already exists";
	case ENG_E_DUP_KEY:
		return "duplicate key given in txn request";
	case ENG_E_TOO_MANY_OPS:
		return "too many operations in txn request";
	case ENG_E_READ_ONLY:
		return "store is read-only";
	case ENG_E_CLOSED:
		return "engine is closing";
	case ENG_E_UNAVAILABLE:
		return "backend unavailable";
	case ENG_E_TIMEOUT:
		return "backend timed out";
	case ENG_E_AGAIN:
		return "try again";
	case ENG_E_VERSION:
		return "store format is newer than this program";
	case ENG_E_INTERNAL:
		return "internal error";
	case ENG_E_TTL:
		return "lease TTL out of range";
	case ENG_E_KEY_NOT_FOUND:
		return "key not found";
	case ENG_E_NOT_SUPPORTED:
		return "not supported by this backend";
	}
	return "unknown error";
}

void eng_options_init(struct eng_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->create = true;
	opt->max_value = 1572864;
	opt->quota_bytes = 2ULL << 30;
	opt->sync = ENG_SYNC_ALWAYS;
	opt->sync_interval_ms = 100;
	opt->auto_compact = ENG_AUTO_COMPACT_OFF;
	opt->progress_interval_ms = 5000;
	opt->cache_bytes = 64u << 20;
}

void eng_logf(const struct eng_options *opt, enum eng_log_level level,
              const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!opt || !opt->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	opt->log(opt->log_arg, level, msg);
}

int64_t eng_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t eng_now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ open / close */

int eng_options_resolve(const struct eng_options *opt, struct eng_options *o)
{
	if (opt)
		*o = *opt;
	else
		eng_options_init(o);
	if (o->max_value == 0)
		o->max_value = 1572864;
	if (o->quota_bytes == 0)
		o->quota_bytes = 2ULL << 30;
	if (o->sync_interval_ms <= 0)
		o->sync_interval_ms = 100;
	if (o->progress_interval_ms <= 0)
		o->progress_interval_ms = 5000;
	if (o->progress_interval_ms < 100)
		o->progress_interval_ms = 100;
	if (o->cache_bytes == 0)
		o->cache_bytes = 64u << 20;
	if (o->sync > ENG_SYNC_NONE ||
	    o->auto_compact > ENG_AUTO_COMPACT_REVISION)
		return ENG_E_INVAL;
	if (o->auto_compact != ENG_AUTO_COMPACT_OFF &&
	    o->auto_compact_value <= 0)
		return ENG_E_INVAL;
	return 0;
}

void eng_op_stats_add(struct eng_op_stats *s, int64_t t0_ns, int rc)
{
	uint64_t us = (uint64_t)((eng_now_mono_ns() - t0_ns) / 1000);

	s->count++;
	if (rc)
		s->errors++;
	s->sum_us += us;
	for (int i = 0; i < ENG_LAT_BUCKETS; i++)
		if (us < (50ULL << i))
			s->buckets[i]++;
}

int eng_open(const char *dir, const struct eng_options *opt, eng **out)
{
	struct eng_options o;
	int rc;

	if (!dir || !*dir || !out)
		return ENG_E_INVAL;
	*out = NULL;
	rc = eng_options_resolve(opt, &o);
	if (rc)
		return rc;
	return local_open(dir, &o, out);
}

void eng_close(eng *e)
{
	if (e)
		e->ops->close(e);
}

/* ---------------------------------------------------------------- ranges */

/* etcd: an empty key is invalid; end follows the convention in engine.h. */
static bool key_ok(const void *key, size_t len)
{
	return key && len > 0;
}

static bool end_ok(const void *end, size_t len)
{
	return len == 0 || end != NULL;
}

int eng_range(eng *e, const struct eng_range_req *req,
              struct eng_range_res *res)
{
	if (!res)
		return ENG_E_INVAL;
	memset(res, 0, sizeof(*res));
	res->count = -1;
	if (!e || !req || !key_ok(req->key, req->key_len) ||
	    !end_ok(req->end, req->end_len) || req->rev < 0 || req->limit < 0)
		return ENG_E_INVAL;
	return e->ops->range(e, req, res);
}

void eng_range_res_release(struct eng_range_res *res)
{
	if (!res)
		return;
	eng_arena_free(res->priv_);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------ txns */

/*
 * etcd's checkIntervals, per branch: two puts of one key, or a put inside a
 * delete-range of the same branch, is DUP_KEY.  The delete interval is taken
 * literally ([key, end) bytewise), as etcd's interval tree does, so an end of
 * "\0" overlaps nothing.  Quadratic, but a branch has at most 1024 ops.
 */
static bool op_in_delete(const struct eng_op *p, const struct eng_op *d)
{
	if (d->end_len == 0)
		return codec_cmp(p->key, p->key_len, d->key, d->key_len) == 0;
	return codec_cmp(p->key, p->key_len, d->key, d->key_len) >= 0 &&
	       codec_cmp(p->key, p->key_len, d->end, d->end_len) < 0;
}

static int check_branch(const struct eng_op *ops, size_t n, size_t max_value)
{
	if (n > ENG_MAX_TXN_OPS)
		return ENG_E_TOO_MANY_OPS;
	if (n && !ops)
		return ENG_E_INVAL;
	for (size_t i = 0; i < n; i++) {
		const struct eng_op *o = &ops[i];

		if (!key_ok(o->key, o->key_len))
			return ENG_E_INVAL;
		switch (o->type) {
		case ENG_OP_RANGE:
			if (!end_ok(o->end, o->end_len) || o->rev < 0 ||
			    o->limit < 0)
				return ENG_E_INVAL;
			break;
		case ENG_OP_DELETE:
			if (!end_ok(o->end, o->end_len))
				return ENG_E_INVAL;
			break;
		case ENG_OP_PUT:
			if (o->value_len && !o->value)
				return ENG_E_INVAL;
			if (o->lease < 0)
				return ENG_E_INVAL;
			/* etcd: ErrGRPCValueProvided / LeaseProvided. */
			if ((o->flags & ENG_PUT_IGNORE_VALUE) && o->value_len)
				return ENG_E_INVAL;
			if ((o->flags & ENG_PUT_IGNORE_LEASE) && o->lease)
				return ENG_E_INVAL;
			if (o->value_len > max_value)
				return ENG_E_TOO_LARGE;
			break;
		default:
			return ENG_E_INVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].type != ENG_OP_PUT)
			continue;
		for (size_t j = 0; j < n; j++) {
			if (j == i)
				continue;
			if (ops[j].type == ENG_OP_PUT && j < i &&
			    codec_cmp(ops[i].key, ops[i].key_len, ops[j].key,
			              ops[j].key_len) == 0)
				return ENG_E_DUP_KEY;
			if (ops[j].type == ENG_OP_DELETE &&
			    op_in_delete(&ops[i], &ops[j]))
				return ENG_E_DUP_KEY;
		}
	}
	return 0;
}

/* The checks of eng_txn that need no store. */
static int txn_check(eng *e, const struct eng_txn *txn)
{
	int rc;

	if (!e || !txn)
		return ENG_E_INVAL;
	if (txn->ncmps > ENG_MAX_TXN_OPS || txn->nsuccess > ENG_MAX_TXN_OPS ||
	    txn->nfailure > ENG_MAX_TXN_OPS)
		return ENG_E_TOO_MANY_OPS;
	if (txn->ncmps && !txn->cmps)
		return ENG_E_INVAL;
	for (size_t i = 0; i < txn->ncmps; i++) {
		const struct eng_cmp *c = &txn->cmps[i];

		if (!key_ok(c->key, c->key_len) ||
		    !end_ok(c->end, c->end_len) || c->target > ENG_CMP_LEASE ||
		    c->result > ENG_CMP_GT ||
		    (c->target == ENG_CMP_VALUE && c->value_len && !c->value))
			return ENG_E_INVAL;
	}
	rc = check_branch(txn->success, txn->nsuccess, e->opt.max_value);
	if (rc)
		return rc;
	return check_branch(txn->failure, txn->nfailure, e->opt.max_value);
}

int eng_txn(eng *e, const struct eng_txn *txn, struct eng_txn_res *res)
{
	int rc;

	if (!res)
		return ENG_E_INVAL;
	memset(res, 0, sizeof(*res));
	rc = txn_check(e, txn);
	return rc ? rc : e->ops->txn(e, txn, res);
}

int eng_txn_async(eng *e, const struct eng_txn *txn, eng_txn_done_fn done,
                  void *arg)
{
	int rc = txn_check(e, txn);

	if (rc)
		return rc;
	if (!done)
		return ENG_E_INVAL;
	if (!e->ops->txn_async)
		return ENG_E_NOT_SUPPORTED;
	return e->ops->txn_async(e, txn, done, arg);
}

void eng_txn_res_release(struct eng_txn_res *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->nres; i++)
		eng_range_res_release(&res->res[i].range);
	eng_arena_free(res->priv_);
	memset(res, 0, sizeof(*res));
}

/* Copy one kv into a single allocation (key first) for eng_kv_release. */
static int kv_copy_out(const struct eng_kv *src, struct eng_kv *dst)
{
	char *p;

	*dst = *src;
	dst->key = dst->value = NULL;
	p = malloc(src->key_len + src->value_len + 1);
	if (!p)
		return ENG_E_NOMEM;
	memcpy(p, src->key, src->key_len);
	if (src->value_len)
		memcpy(p + src->key_len, src->value, src->value_len);
	dst->key = p;
	dst->value = src->value ? p + src->key_len : NULL;
	return 0;
}

void eng_kv_release(struct eng_kv *kv)
{
	if (!kv)
		return;
	free((void *)kv->key);
	memset(kv, 0, sizeof(*kv));
}

int eng_put(eng *e, const void *key, size_t key_len, const void *value,
            size_t value_len, eng_lease_t lease, eng_rev_t *rev,
            struct eng_kv *prev)
{
	struct eng_op op = {
	    .type = ENG_OP_PUT,
	    .key = key,
	    .key_len = key_len,
	    .value = value ? value : "",
	    .value_len = value_len,
	    .lease = lease,
	    .flags = prev ? ENG_PUT_PREV_KV : 0,
	};
	struct eng_txn txn = {.success = &op, .nsuccess = 1};
	struct eng_txn_res res;
	int rc;

	if (prev)
		memset(prev, 0, sizeof(*prev));
	rc = eng_txn(e, &txn, &res);
	if (rc)
		goto out;
	if (rev)
		*rev = res.header_rev;
	if (prev && res.nres == 1 && res.res[0].nprev == 1)
		rc = kv_copy_out(&res.res[0].prev_kvs[0], prev);
out:
	eng_txn_res_release(&res);
	return rc;
}

int eng_delete(eng *e, const void *key, size_t key_len, const void *end,
               size_t end_len, int64_t *deleted, eng_rev_t *rev)
{
	struct eng_op op = {
	    .type = ENG_OP_DELETE,
	    .key = key,
	    .key_len = key_len,
	    .end = end,
	    .end_len = end_len,
	};
	struct eng_txn txn = {.success = &op, .nsuccess = 1};
	struct eng_txn_res res;
	int rc;

	rc = eng_txn(e, &txn, &res);
	if (rc)
		goto out;
	if (deleted)
		*deleted = res.nres == 1 ? res.res[0].deleted : 0;
	if (rev)
		*rev = res.header_rev;
out:
	eng_txn_res_release(&res);
	return rc;
}

int eng_get(eng *e, const void *key, size_t key_len, eng_rev_t rev,
            eng_snap *snap, struct eng_kv *kv)
{
	struct eng_range_req req = {
	    .key = key,
	    .key_len = key_len,
	    .rev = rev,
	    .snap = snap,
	};
	struct eng_range_res res;
	struct local *l;
	int rc;

	if (!kv)
		return ENG_E_INVAL;
	memset(kv, 0, sizeof(*kv));
	/* The common case (a stat, an open, a create's check) is one point
	 * read in the local backend: no range, snapshot or result arena. */
	if (e && !snap && rev == 0 && key_ok(key, key_len) &&
	    (l = local_from_eng(e)) != NULL)
		return local_get_latest(l, key, key_len, kv);
	rc = eng_range(e, &req, &res);
	if (rc == 0 && res.n == 1)
		rc = kv_copy_out(&res.kvs[0], kv);
	eng_range_res_release(&res);
	return rc;
}

int eng_history(eng *e, const void *key, size_t key_len, eng_rev_t from,
                int64_t limit, struct eng_range_res *res)
{
	if (!res)
		return ENG_E_INVAL;
	memset(res, 0, sizeof(*res));
	res->count = -1;
	if (!e || !key_ok(key, key_len) || from < 0 || limit < 0)
		return ENG_E_INVAL;
	return e->ops->history(e, key, key_len, from, limit, res);
}

size_t eng_prefix_end(const void *prefix, size_t prefix_len, char *out)
{
	const unsigned char *p = prefix;
	size_t n = prefix_len;

	while (n > 0 && p[n - 1] == 0xff)
		n--;
	if (n == 0) {
		out[0] = 0;
		return 1;
	}
	memcpy(out, p, n);
	out[n - 1] = (char)(p[n - 1] + 1);
	return n;
}

/* -------------------------------------------------------------- snapshots */

int eng_snap_open(eng *e, eng_snap **out)
{
	if (!e || !out)
		return ENG_E_INVAL;
	*out = NULL;
	return e->ops->snap_open(e, out);
}

eng_rev_t eng_snap_rev(const eng_snap *s)
{
	return s ? s->rev : 0;
}

eng_rev_t eng_snap_compact_rev(const eng_snap *s)
{
	return s ? s->compact_rev : 0;
}

void eng_snap_release(eng *e, eng_snap *s)
{
	if (e && s)
		e->ops->snap_release(e, s);
}

/* -------------------------------------------------------------- revisions */

eng_rev_t eng_current_rev(eng *e)
{
	return e ? e->ops->current_rev(e) : 0;
}

eng_rev_t eng_compact_rev(eng *e)
{
	return e ? e->ops->compact_rev(e) : 0;
}

int eng_compact(eng *e, eng_rev_t rev, bool wait)
{
	if (!e || rev <= 0)
		return ENG_E_INVAL;
	if (e->opt.read_only)
		return ENG_E_READ_ONLY;
	return e->ops->compact(e, rev, wait);
}

/* ----------------------------------------------------------------- leases */

static bool name_ok(const char *name)
{
	return !name || strlen(name) <= ENG_LEASE_NAME_MAX;
}

static bool ttl_ok(int64_t ttl)
{
	return ttl >= 1 && ttl <= ENG_TTL_MAX;
}

int eng_lease_grant(eng *e, eng_lease_t id, int64_t ttl, const char *name,
                    eng_lease_t *out)
{
	if (!e || id < 0 || !name_ok(name))
		return ENG_E_INVAL;
	if (!ttl_ok(ttl))
		return ENG_E_TTL;
	if (e->opt.read_only)
		return ENG_E_READ_ONLY;
	return e->ops->lease_grant(e, id, ttl, name, out);
}

int eng_lease_lookup(eng *e, const char *name, eng_lease_t *out)
{
	if (!e || !name || !*name || !name_ok(name) || !out)
		return ENG_E_INVAL;
	return e->ops->lease_lookup(e, name, out);
}

int eng_lease_keepalive(eng *e, eng_lease_t id, int64_t *ttl)
{
	if (!e || id <= 0)
		return ENG_E_INVAL;
	return e->ops->lease_keepalive(e, id, ttl);
}

int eng_lease_set_ttl(eng *e, eng_lease_t id, int64_t ttl)
{
	if (!e || id <= 0)
		return ENG_E_INVAL;
	if (!ttl_ok(ttl))
		return ENG_E_TTL;
	if (e->opt.read_only)
		return ENG_E_READ_ONLY;
	return e->ops->lease_set_ttl(e, id, ttl);
}

int eng_lease_revoke(eng *e, eng_lease_t id, eng_rev_t *rev)
{
	if (!e || id <= 0)
		return ENG_E_INVAL;
	if (e->opt.read_only)
		return ENG_E_READ_ONLY;
	return e->ops->lease_revoke(e, id, rev);
}

int eng_lease_ttl(eng *e, eng_lease_t id, unsigned flags,
                  struct eng_lease_info *out)
{
	if (!out)
		return ENG_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (!e || id <= 0)
		return ENG_E_INVAL;
	return e->ops->lease_ttl(e, id, flags, out);
}

void eng_lease_info_release(struct eng_lease_info *info)
{
	if (!info)
		return;
	eng_arena_free(info->priv_);
	info->priv_ = NULL;
	info->keys = NULL;
	info->nkeys = 0;
}

int eng_lease_list(eng *e, struct eng_lease_info **out, size_t *n)
{
	if (!e || !out || !n)
		return ENG_E_INVAL;
	*out = NULL;
	*n = 0;
	return e->ops->lease_list(e, out, n);
}

/* ---------------------------------------------------------------- watches */

int eng_watch_open(eng *e, const void *key, size_t key_len, const void *end,
                   size_t end_len, eng_rev_t start, eng_watch_notify_fn notify,
                   void *arg, eng_watch **out)
{
	if (!out)
		return ENG_E_INVAL;
	*out = NULL;
	if (!e || !key_ok(key, key_len) || !end_ok(end, end_len) || start < 0)
		return ENG_E_INVAL;
	return e->ops->watch_open(e, key, key_len, end, end_len, start, notify,
	                          arg, out);
}

int eng_watch_read(eng_watch *w, struct eng_event **evs, size_t max)
{
	if (!w || !evs || max == 0)
		return ENG_E_INVAL;
	return w->ops->read(w, evs, max);
}

eng_rev_t eng_watch_next_rev(const eng_watch *w)
{
	return w ? w->ops->next_rev(w) : 0;
}

void eng_watch_close(eng_watch *w)
{
	if (w)
		w->ops->close(w);
}

/* ------------------------------------------------------------------ stats */

int eng_stats_get(eng *e, struct eng_stats *out)
{
	if (!e || !out)
		return ENG_E_INVAL;
	memset(out, 0, sizeof(*out));
	return e->ops->stats_get(e, out);
}
