/*
 * etcd_backend.c — the etcd backend's core: engine.h's calls over a remote
 * etcd v3 cluster (docs/etcd-backend.md).  Open/close, ranges, txns,
 * snapshots, revisions, compaction, stats and auto-compaction; leases,
 * watches and history are in the other etcd_backend_*.c files.
 *
 * Every call is one or a few requests through etcd_client (which fails over
 * between endpoints and bounds every request by its timeouts), so nothing
 * here blocks longer than a request's bound times the requests of a call.
 *
 * Invariants: every range, delete-range, compare and watch is clipped to
 * the user key space [.., ETCDB_RSV) (etcd_backend.h), so the backend's
 * own records never show; results follow eng_int.h's result-memory rule
 * (etcd_client's results already do, and the delimiter emulation builds its
 * own arena); ee->rev and ee->compact_rev only grow.
 */
#include "etcd_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DELIM_PAGE 256 /* keys asked per request by the delimiter emulation */

static const struct eng_backend_ops etcdb_ops;

/* ------------------------------------------------------------- helpers */

void etcdb_seen_rev(struct etcdb *ee, eng_rev_t rev)
{
	pthread_mutex_lock(&ee->lock);
	if (rev > ee->rev)
		ee->rev = rev;
	pthread_mutex_unlock(&ee->lock);
}

void etcdb_seen_compact(struct etcdb *ee, eng_rev_t rev)
{
	pthread_mutex_lock(&ee->lock);
	if (rev > ee->compact_rev)
		ee->compact_rev = rev;
	pthread_mutex_unlock(&ee->lock);
}

void etcdb_stat(struct etcdb *ee, struct eng_op_stats *s, int64_t t0_ns, int rc)
{
	pthread_mutex_lock(&ee->lock);
	eng_op_stats_add(s, t0_ns, rc);
	pthread_mutex_unlock(&ee->lock);
}

bool etcdb_again(struct etcdb *ee, int rc, int64_t *deadline)
{
	struct timespec ts = {0, 100 * 1000000L};
	int64_t now;

	if (rc != ENG_E_UNAVAILABLE)
		return false;
	now = eng_now_mono_ns();
	if (!*deadline)
		*deadline = now + (int64_t)ee->timeout_ms * 1000000;
	if (now >= *deadline)
		return false;
	nanosleep(&ts, NULL);
	return true;
}

static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

bool etcdb_reserved(const void *key, size_t key_len)
{
	return bytes_cmp(key, key_len, ETCDB_RSV, ETCDB_RSV_LEN) >= 0;
}

bool etcdb_clip(const void *key, size_t key_len, const void **end,
                size_t *end_len)
{
	if (etcdb_reserved(key, key_len))
		return false;
	if (*end_len == 0)
		return true;
	if ((*end_len == 1 && ((const char *)*end)[0] == '\0') ||
	    bytes_cmp(*end, *end_len, ETCDB_RSV, ETCDB_RSV_LEN) > 0) {
		*end = ETCDB_RSV;
		*end_len = ETCDB_RSV_LEN;
	}
	return bytes_cmp(key, key_len, *end, *end_len) < 0;
}

/* ------------------------------------------------------------- ranges */

/* Where the delimiter rolls k up: the prefix length, or 0. */
static size_t delim_at(const struct eng_range_req *req, const char *k, size_t n)
{
	const char *d;

	if (req->prefix_len >= n)
		return 0;
	d = memchr(k + req->prefix_len, req->delim, n - req->prefix_len);
	return d ? (size_t)(d - k) + 1 : 0;
}

struct dl_out {
	struct eng_arena *a;
	struct eng_kv *kvs; /* malloc'd while building */
	size_t n, cap;
	const char *last_pfx; /* in a: the last rolled-up prefix */
	size_t last_pfx_len;
};

static int dl_add(struct dl_out *o, const struct eng_kv *kv, size_t pfx_len)
{
	struct eng_kv *d;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct eng_kv *p = realloc(o->kvs, cap * sizeof(*p));

		if (!p)
			return ENG_E_NOMEM;
		o->kvs = p;
		o->cap = cap;
	}
	d = &o->kvs[o->n];
	memset(d, 0, sizeof(*d));
	if (pfx_len) {
		d->key = eng_arena_dup(o->a, kv->key, pfx_len);
		d->key_len = pfx_len;
		d->is_prefix = true;
		if (!d->key)
			return ENG_E_NOMEM;
		o->last_pfx = d->key;
		o->last_pfx_len = pfx_len;
	} else {
		*d = *kv;
		d->key = eng_arena_dup(o->a, kv->key, kv->key_len);
		d->value = kv->value
		               ? eng_arena_dup(o->a, kv->value, kv->value_len)
		               : NULL;
		if (!d->key || (kv->value && !d->value))
			return ENG_E_NOMEM;
	}
	o->n++;
	return 0;
}

/*
 * A range with a delimiter: etcd has none, so page through [key, end) and
 * roll keys up here; after a rolled-up prefix the next request starts at
 * the prefix's end, so a listing costs its direct children plus at most one
 * page per subdirectory.  Every page reads at the first page's revision.
 */
static int range_delim(struct etcdb *ee, const struct eng_range_req *req,
                       eng_rev_t rev, struct eng_range_res *res)
{
	bool count_only = req->flags & ENG_RANGE_COUNT_ONLY;
	int64_t want = count_only || !req->limit ? 0 : req->limit + 1;
	struct dl_out o = {0};
	char *cur = NULL;
	size_t cur_len = req->key_len;
	bool done = false, more = false;
	int64_t counted = 0;
	int rc = 0;

	o.a = eng_arena_new();
	cur = malloc(req->key_len + 1);
	if (!o.a || !cur) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	memcpy(cur, req->key, req->key_len);
	while (!done) {
		struct eng_range_req pr = {
		    .key = cur,
		    .key_len = cur_len,
		    .end = req->end,
		    .end_len = req->end_len,
		    .rev = rev,
		    .flags = (req->flags &
		              (ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN)) |
		             (count_only ? ENG_RANGE_KEYS_ONLY : 0),
		};
		struct eng_range_res page;
		bool last_rolled = false;
		int64_t left = want ? want - (int64_t)o.n : DELIM_PAGE;

		pr.limit = left < DELIM_PAGE ? left : DELIM_PAGE;
		if (req->end_len == 0)
			pr.limit = 0;
		rc = ETCDB_RETRY(ee, etcd_range(ee->c, &pr, &page));
		if (rc)
			goto out;
		etcdb_seen_rev(ee, page.header_rev);
		if (!rev)
			rev = page.header_rev;
		if (!res->header_rev)
			res->header_rev = page.header_rev;
		for (size_t i = 0; i < page.n && !done; i++) {
			const struct eng_kv *kv = &page.kvs[i];
			size_t d = delim_at(req, kv->key, kv->key_len);

			last_rolled = d != 0;
			if (d && o.last_pfx && o.last_pfx_len == d &&
			    memcmp(o.last_pfx, kv->key, d) == 0)
				continue;
			if (count_only) {
				counted++;
				if (d) {
					o.last_pfx =
					    eng_arena_dup(o.a, kv->key, d);
					o.last_pfx_len = d;
					if (!o.last_pfx) {
						rc = ENG_E_NOMEM;
						break;
					}
				}
				continue;
			}
			rc = dl_add(&o, kv, d);
			if (rc)
				break;
			if (want && (int64_t)o.n == want) {
				more = true;
				o.n--;
				done = true;
			}
		}
		if (!rc && !done && page.more && page.n > 0) {
			const struct eng_kv *lk = &page.kvs[page.n - 1];
			char *nc;
			size_t nl;

			if (last_rolled) {
				nc = malloc(o.last_pfx_len);
				nl = nc ? eng_prefix_end(o.last_pfx,
				                         o.last_pfx_len, nc)
				        : 0;
				/* a prefix of 0xff bytes: nothing follows */
				if (nc && nl == 1 && nc[0] == '\0')
					done = true;
			} else {
				nl = lk->key_len + 1;
				nc = malloc(nl);
				if (nc) {
					memcpy(nc, lk->key, lk->key_len);
					nc[lk->key_len] = '\0';
				}
			}
			if (!nc)
				rc = ENG_E_NOMEM;
			free(cur);
			cur = nc;
			cur_len = nl;
			if (!rc && !done &&
			    bytes_cmp(cur, cur_len, req->end, req->end_len) >=
			        0)
				done = true;
		} else {
			done = true;
		}
		eng_range_res_release(&page);
		if (rc)
			goto out;
	}
	if (count_only) {
		res->count = counted;
	} else {
		res->kvs = o.n ? eng_arena_dup(o.a, o.kvs, o.n * sizeof(*o.kvs))
		               : NULL;
		if (o.n && !res->kvs) {
			rc = ENG_E_NOMEM;
			goto out;
		}
		res->n = o.n;
		res->more = more;
		res->count = more ? -1 : (int64_t)o.n;
	}
	res->priv_ = o.a;
	o.a = NULL;
out:
	free(o.kvs);
	free(cur);
	eng_arena_free(o.a);
	return rc;
}

static int etcdb_range(eng *e, const struct eng_range_req *req,
                       struct eng_range_res *res)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct eng_range_req r = *req;
	int64_t t0 = eng_now_mono_ns();
	int rc;

	r.snap = NULL;
	if (req->snap) {
		if (req->rev > req->snap->rev) {
			rc = ENG_E_FUTURE_REV;
			goto out;
		}
		if (!req->rev)
			r.rev = req->snap->rev;
	}
	if (!etcdb_clip(r.key, r.key_len, &r.end, &r.end_len)) {
		/* Nothing of it is the user's (empty, reversed or reserved):
		 * ask etcd for [key, key), which matches nothing but still has
		 * its revision checked (compacted, future) as etcd checks an
		 * empty range's. */
		r.end = r.key;
		r.end_len = r.key_len;
	}
	if (r.delim) {
		rc = range_delim(ee, &r, r.rev, res);
	} else {
		r.delim = 0;
		rc = ETCDB_RETRY(ee, etcd_range(ee->c, &r, res));
		if (!rc)
			etcdb_seen_rev(ee, res->header_rev);
	}
	if (!rc)
		etcdb_mtime_fill(ee->mt, res->kvs, res->n);
	if (!rc && req->snap)
		res->header_rev = req->snap->rev;
out:
	if (rc) {
		eng_range_res_release(res);
		res->count = -1;
	}
	etcdb_stat(ee, &ee->st_range, t0, rc);
	return rc;
}

/* --------------------------------------------------------------- txns */

static bool writes(const struct eng_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].type != ENG_OP_RANGE)
			return true;
	return false;
}

/* Copy the ops with their ranges clipped to the user's key space; a put of a
 * reserved key is ENG_E_INVAL. */
static int clip_ops(const struct eng_op *ops, size_t n, struct eng_op **out)
{
	struct eng_op *c;

	*out = NULL;
	if (!n)
		return 0;
	c = malloc(n * sizeof(*c));
	if (!c)
		return ENG_E_NOMEM;
	memcpy(c, ops, n * sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		size_t el = c[i].type == ENG_OP_PUT ? 0 : c[i].end_len;

		if (!etcdb_clip(c[i].key, c[i].key_len, &c[i].end, &el)) {
			if (c[i].type == ENG_OP_PUT) {
				free(c); /* a put into the reserved space */
				return ENG_E_INVAL;
			}
			/* Empty, reversed or reserved: etcd answers [key, key)
			 * with nothing, as it answers an empty range. */
			c[i].end = c[i].key;
			c[i].end_len = c[i].key_len;
			continue;
		}
		if (c[i].type != ENG_OP_PUT)
			c[i].end_len = el;
	}
	*out = c;
	return 0;
}

static int etcdb_txn(eng *e, const struct eng_txn *txn, struct eng_txn_res *res)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct eng_op *succ = NULL, *fail = NULL;
	struct eng_cmp *cmps = NULL;
	struct eng_txn t = *txn;
	int64_t t0 = eng_now_mono_ns();
	int rc;

	if (e->opt.read_only && (writes(txn->success, txn->nsuccess) ||
	                         writes(txn->failure, txn->nfailure))) {
		rc = ENG_E_READ_ONLY;
		goto out;
	}
	rc = clip_ops(txn->success, txn->nsuccess, &succ);
	if (!rc)
		rc = clip_ops(txn->failure, txn->nfailure, &fail);
	if (!rc && txn->ncmps) {
		cmps = malloc(txn->ncmps * sizeof(*cmps));
		if (!cmps)
			rc = ENG_E_NOMEM;
		for (size_t i = 0; !rc && i < txn->ncmps; i++) {
			cmps[i] = txn->cmps[i];
			if (!etcdb_clip(cmps[i].key, cmps[i].key_len,
			                &cmps[i].end, &cmps[i].end_len)) {
				/* no user key in it: compare with nothing */
				cmps[i].end = cmps[i].key;
				cmps[i].end_len = cmps[i].key_len;
			}
		}
	}
	if (rc)
		goto out;
	t.success = succ;
	t.failure = fail;
	t.cmps = cmps;
	rc = ETCDB_RETRY(ee, etcd_txn(ee->c, &t, res));
	if (!rc) {
		bool wrote = writes(res->succeeded ? t.success : t.failure,
		                    res->succeeded ? t.nsuccess : t.nfailure);

		etcdb_seen_rev(ee, res->header_rev);
		pthread_mutex_lock(&ee->lock);
		if (wrote)
			ee->commits++;
		pthread_mutex_unlock(&ee->lock);
		/* our own commit: its time is now, not when the stream
		 * brings it */
		if (wrote)
			etcdb_mtime_seen(ee->mt, res->header_rev, false);
		for (size_t i = 0; i < res->nres; i++) {
			struct eng_op_res *r = &res->res[i];

			etcdb_mtime_fill(ee->mt, r->range.kvs, r->range.n);
			etcdb_mtime_fill(ee->mt, r->prev_kvs, r->nprev);
		}
	}
out:
	free(succ);
	free(fail);
	free(cmps);
	etcdb_stat(ee, &ee->st_txn, t0, rc);
	return rc;
}

/* ---------------------------------------------------------- revisions */

static eng_rev_t etcdb_current_rev(eng *e)
{
	struct etcdb *ee = (struct etcdb *)e;
	eng_rev_t rev = 0;

	/* No error channel: on failure, the last revision seen. */
	if (etcd_current_rev(ee->c, &rev) == 0)
		etcdb_seen_rev(ee, rev);
	pthread_mutex_lock(&ee->lock);
	rev = ee->rev;
	pthread_mutex_unlock(&ee->lock);
	return rev;
}

/* Can revision `rev` be read?  1 yes, 0 compacted, < 0 an error. */
static int readable(struct etcdb *ee, eng_rev_t rev)
{
	struct eng_range_req req = {
	    .key = ETCDB_RSV,
	    .key_len = ETCDB_RSV_LEN,
	    .rev = rev,
	    .flags = ENG_RANGE_COUNT_ONLY,
	};
	struct eng_range_res res;
	int rc = ETCDB_RETRY(ee, etcd_range(ee->c, &req, &res));

	eng_range_res_release(&res);
	if (rc == ENG_E_COMPACTED)
		return 0;
	return rc ? rc : 1;
}

/*
 * etcd tells its compaction revision only to a watch that starts below it,
 * so ask with ranges: compaction only grows, so if the last known value C
 * is still readable it is the answer (one request), else a binary search
 * over (C, current] for the lowest readable revision (log2 of the
 * revisions since C).
 */
int etcdb_probe_compact(struct etcdb *ee, eng_rev_t *out)
{
	eng_rev_t lo, hi, cur = 0;
	int rc;

	pthread_mutex_lock(&ee->lock);
	lo = ee->compact_rev;
	pthread_mutex_unlock(&ee->lock);
	rc = readable(ee, lo ? lo : 1);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		*out = lo;
		return 0;
	}
	rc = ETCDB_RETRY(ee, etcd_current_rev(ee->c, &cur));
	if (rc)
		return rc;
	etcdb_seen_rev(ee, cur);
	/* lo is compacted, hi is readable */
	lo = lo ? lo : 1;
	hi = cur;
	while (hi - lo > 1) {
		eng_rev_t mid = lo + (hi - lo) / 2;

		rc = readable(ee, mid);
		if (rc < 0)
			return rc;
		if (rc)
			hi = mid;
		else
			lo = mid;
	}
	etcdb_seen_compact(ee, hi);
	*out = hi;
	return 0;
}

static eng_rev_t etcdb_compact_rev(eng *e)
{
	struct etcdb *ee = (struct etcdb *)e;
	eng_rev_t rev;

	if (etcdb_probe_compact(ee, &rev) == 0)
		return rev;
	pthread_mutex_lock(&ee->lock);
	rev = ee->compact_rev;
	pthread_mutex_unlock(&ee->lock);
	return rev;
}

static int etcdb_compact(eng *e, eng_rev_t rev, bool wait)
{
	struct etcdb *ee = (struct etcdb *)e;
	int64_t t0 = eng_now_mono_ns();
	eng_rev_t h = 0;
	int rc;

	rc = ETCDB_RETRY(ee, etcd_compact(ee->c, rev, wait, &h));
	if (!rc) {
		etcdb_seen_rev(ee, h);
		etcdb_seen_compact(ee, rev);
	}
	etcdb_stat(ee, &ee->st_compact, t0, rc);
	return rc;
}

/* ---------------------------------------------------------- snapshots */

/*
 * etcd has no snapshots: a snapshot pins a revision, and reads through it
 * read at that revision.  It does not keep the data: a compaction past it
 * makes its reads fail ENG_E_COMPACTED.
 */
static int etcdb_snap_open(eng *e, eng_snap **out)
{
	struct etcdb *ee = (struct etcdb *)e;
	eng_snap *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return ENG_E_NOMEM;
	rc = ETCDB_RETRY(ee, etcd_current_rev(ee->c, &s->rev));
	if (!rc)
		rc = etcdb_probe_compact(ee, &s->compact_rev);
	if (rc) {
		free(s);
		return rc;
	}
	etcdb_seen_rev(ee, s->rev);
	*out = s;
	return 0;
}

static void etcdb_snap_release(eng *e, eng_snap *s)
{
	free(s);
}

/* -------------------------------------------------------------- stats */

static int etcdb_stats_get(eng *e, struct eng_stats *out)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct eng_range_req req = {
	    .key = "\0",
	    .key_len = 1,
	    .end = ETCDB_RSV,
	    .end_len = ETCDB_RSV_LEN,
	    .flags = ENG_RANGE_COUNT_ONLY,
	};
	struct eng_range_res res;
	struct etcd_status st;
	eng_lease_t *ids = NULL;
	size_t nids = 0;
	int rc;

	rc = etcd_status(ee->c, &st);
	if (rc)
		return rc;
	rc = etcd_range(ee->c, &req, &res);
	if (rc)
		return rc;
	out->keys = res.count;
	etcdb_seen_rev(ee, res.header_rev);
	eng_range_res_release(&res);
	rc = etcd_lease_list(ee->c, &ids, &nids);
	free(ids);
	if (rc)
		return rc;
	out->leases = (int64_t)nids;
	out->compact_rev = etcdb_compact_rev(e);
	out->db_bytes = (uint64_t)st.db_size;
	out->quota_bytes = e->opt.quota_bytes;
	out->alarm_nospace = st.alarm_nospace;
	/* Before ee->lock: the hub takes its lock, then ee->lock. */
	out->watchers = etcdb_watch_count(ee);
	pthread_mutex_lock(&ee->lock);
	out->rev = ee->rev;
	out->commits = ee->commits; /* each a raft entry; fsyncs are etcd's */
	out->range = ee->st_range;
	out->txn = ee->st_txn;
	out->compact = ee->st_compact;
	pthread_mutex_unlock(&ee->lock);
	return 0;
}

/* --------------------------------------------------- auto-compaction */

#define AC_RING 128

/*
 * Auto-compaction, checked every second: REVISION keeps the last N
 * revisions; PERIODIC samples (time, revision) and compacts at the revision
 * that was current one window ago.  Several mounts of one cluster may all
 * do it: a compaction another one did first just fails ENG_E_COMPACTED.
 */
static void *maint_main(void *arg)
{
	struct etcdb *ee = arg;
	const struct eng_options *o = &ee->base.opt;
	struct {
		int64_t t;
		eng_rev_t rev;
	} ring[AC_RING];
	size_t rn = 0, rh = 0;
	int64_t every = o->auto_compact == ENG_AUTO_COMPACT_PERIODIC
	                    ? o->auto_compact_value / 100
	                    : 1000;
	int64_t last = 0;

	if (every < 1000)
		every = 1000;
	pthread_mutex_lock(&ee->lock);
	while (!ee->stopping) {
		struct timespec ts;
		eng_rev_t cur = 0, target = 0, known;
		int64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&ee->cond, &ee->lock, &ts);
		if (ee->stopping)
			break;
		known = ee->compact_rev;
		pthread_mutex_unlock(&ee->lock);
		now = eng_now_mono_ns() / 1000000;
		if (etcd_current_rev(ee->c, &cur) == 0) {
			etcdb_seen_rev(ee, cur);
			if (o->auto_compact == ENG_AUTO_COMPACT_REVISION) {
				target = cur - o->auto_compact_value;
			} else if (now - last >= every) {
				last = now;
				ring[(rh + rn) % AC_RING].t = now;
				ring[(rh + rn) % AC_RING].rev = cur;
				if (rn < AC_RING)
					rn++;
				else
					rh = (rh + 1) % AC_RING;
				while (rn > 0 && now - ring[rh].t >=
				                     o->auto_compact_value) {
					target = ring[rh].rev;
					rh = (rh + 1) % AC_RING;
					rn--;
				}
			}
			if (target > known && target > 0) {
				int rc =
				    etcdb_compact(&ee->base, target, false);

				if (rc == ENG_E_COMPACTED)
					etcdb_seen_compact(ee, target);
				else if (rc)
					eng_logf(
					    o, ENG_LOG_WARN,
					    "etcd auto-compaction at %lld: "
					    "%s",
					    (long long)target,
					    eng_strerror(rc));
			}
		}
		pthread_mutex_lock(&ee->lock);
	}
	pthread_mutex_unlock(&ee->lock);
	return NULL;
}

/* --------------------------------------------------------- open/close */

void eng_etcd_options_init(struct eng_etcd_options *eo)
{
	memset(eo, 0, sizeof(*eo));
	eo->timeout_ms = 5000;
	eo->connect_timeout_ms = 1000;
}

static void etcdb_close(eng *e)
{
	struct etcdb *ee = (struct etcdb *)e;

	etcdb_watch_shutdown(ee);
	if (ee->maint_running) {
		pthread_mutex_lock(&ee->lock);
		ee->stopping = true;
		pthread_cond_broadcast(&ee->cond);
		pthread_mutex_unlock(&ee->lock);
		pthread_join(ee->maint, NULL);
	}
	etcd_client_close(ee->c);
	etcdb_mtime_free(ee->mt);
	pthread_mutex_destroy(&ee->hub_lock);
	pthread_cond_destroy(&ee->cond);
	pthread_mutex_destroy(&ee->lock);
	free(ee);
}

int eng_open_etcd(const struct eng_etcd_options *eo,
                  const struct eng_options *opt, eng **out)
{
	struct etcd_client_options co;
	struct etcd_status st;
	struct eng_options o;
	struct etcdb *ee;
	int rc;

	if (!out)
		return ENG_E_INVAL;
	*out = NULL;
	if (!eo || !eo->endpoints || eo->nendpoints == 0)
		return ENG_E_INVAL;
	rc = eng_options_resolve(opt, &o);
	if (rc)
		return rc;

	ee = calloc(1, sizeof(*ee));
	if (!ee)
		return ENG_E_NOMEM;
	ee->base.ops = &etcdb_ops;
	ee->base.opt = o;
	ee->timeout_ms = eo->timeout_ms > 0 ? eo->timeout_ms : 5000;
	pthread_mutex_init(&ee->lock, NULL);
	pthread_mutex_init(&ee->hub_lock, NULL);
	pthread_cond_init(&ee->cond, NULL);

	etcd_client_options_init(&co);
	co.endpoints = eo->endpoints;
	co.nendpoints = eo->nendpoints;
	if (eo->timeout_ms > 0)
		co.timeout_ms = eo->timeout_ms;
	if (eo->connect_timeout_ms > 0)
		co.connect_timeout_ms = eo->connect_timeout_ms;
	co.ca_file = eo->ca_file;
	co.cert_file = eo->cert_file;
	co.key_file = eo->key_file;
	co.user = eo->user;
	co.password = eo->password;
	co.log = o.log;
	co.log_arg = o.log_arg;
	rc = etcd_client_open(&co, &ee->c);
	if (rc)
		goto fail;
	rc = etcd_status(ee->c, &st);
	if (rc)
		goto fail;
	ee->rev = st.rev;
	rc = etcdb_mtime_new(st.rev, &ee->mt);
	if (rc)
		goto fail;
	eng_logf(&o, ENG_LOG_INFO,
	         "etcd backend: etcd %s, revision %lld, %zu endpoint(s)",
	         st.version, (long long)st.rev, eo->nendpoints);
	if (o.auto_compact != ENG_AUTO_COMPACT_OFF) {
		if (pthread_create(&ee->maint, NULL, maint_main, ee)) {
			rc = ENG_E_NOMEM;
			goto fail;
		}
		ee->maint_running = true;
	}
	*out = &ee->base;
	return 0;
fail:
	etcdb_close(&ee->base);
	return rc;
}

static const struct eng_backend_ops etcdb_ops = {
    .name = "etcd",
    .close = etcdb_close,
    .range = etcdb_range,
    .txn = etcdb_txn,
    .history = etcdb_history,
    .snap_open = etcdb_snap_open,
    .snap_release = etcdb_snap_release,
    .current_rev = etcdb_current_rev,
    .compact_rev = etcdb_compact_rev,
    .compact = etcdb_compact,
    .lease_grant = etcdb_lease_grant,
    .lease_lookup = etcdb_lease_lookup,
    .lease_keepalive = etcdb_lease_keepalive,
    .lease_set_ttl = etcdb_lease_set_ttl,
    .lease_revoke = etcdb_lease_revoke,
    .lease_ttl = etcdb_lease_ttl,
    .lease_list = etcdb_lease_list,
    .watch_open = etcdb_watch_open,
    .stats_get = etcdb_stats_get,
};
