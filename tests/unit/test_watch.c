/*
 * test_watch.c — the watch hub through the real engine (eng_open in a
 * mktemp -d directory): watches from past, current and future revisions,
 * from the compaction revision and below it, prefix/key/range filtering,
 * revisions never split, ordering and no gaps under 4 writers x 10,000 puts
 * (and 1,000 deletes each) with 50 watchers (each checked against the
 * store's history), a slow watcher that overflows and catches up exactly
 * once, 100 stalled watchers held to their queue's bound while the writes
 * go on, progress markers' timing (the configured interval, its 100 ms
 * minimum) and meaning, close with a notify in flight, and shutdown.
 *
 * Every expected sequence is computed from eng_history() of the keys the
 * test wrote, never hard-coded.
 */
#include "tests/unit/engine_helpers.h"
#include "engine/watch_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* ----------------------------------------------------------- helpers */

struct rec {
	enum eng_event_type type;
	char key[48];
	eng_rev_t mod, create;
	int64_t ver;
};

/* What one watcher received. */
struct coll {
	struct rec *r;
	size_t n, cap;
	int nprog;
	eng_rev_t last_prog;
	eng_rev_t compacted; /* COMPACTED's revision, 0 if none */
	size_t max_batch;    /* largest batch seen */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void coll_add(struct coll *c, const struct eng_event *ev)
{
	struct rec *r;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		c->r = realloc(c->r, c->cap * sizeof(*c->r));
		assert_non_null(c->r);
	}
	r = &c->r[c->n++];
	memset(r, 0, sizeof(*r));
	r->type = ev->type;
	assert_true(ev->kv.key_len < sizeof(r->key));
	memcpy(r->key, ev->kv.key, ev->kv.key_len);
	r->mod = ev->kv.mod_rev;
	r->create = ev->kv.create_rev;
	r->ver = ev->kv.version;
}

/*
 * One read: record events, check that a marker R comes only after every
 * event <= R and that events after it are > R.  Returns the number read.
 */
static int coll_read(eng_watch *w, struct coll *c, size_t max)
{
	struct eng_event *evs;
	int n = eng_watch_read(w, &evs, max);

	assert_true(n >= 0);
	if ((size_t)n > c->max_batch)
		c->max_batch = (size_t)n;
	for (int i = 0; i < n; i++) {
		const struct eng_event *ev = &evs[i];

		if (ev->type == ENG_EV_PROGRESS) {
			assert_true(ev->kv.mod_rev >= c->last_prog);
			if (c->n)
				assert_true(ev->kv.mod_rev >=
				            c->r[c->n - 1].mod);
			c->nprog++;
			c->last_prog = ev->kv.mod_rev;
			continue;
		}
		if (ev->type == ENG_EV_COMPACTED) {
			c->compacted = ev->kv.mod_rev;
			continue;
		}
		assert_true(ev->kv.mod_rev > c->last_prog);
		if (c->n)
			assert_true(ev->kv.mod_rev >= c->r[c->n - 1].mod);
		coll_add(c, ev);
	}
	return n;
}

/* Read until nothing is ready. */
static void coll_drain(eng_watch *w, struct coll *c, size_t max)
{
	while (coll_read(w, c, max) > 0)
		;
}

/* Read until a progress marker >= rev arrives (or time runs out). */
static void coll_until(eng_watch *w, struct coll *c, size_t max, eng_rev_t rev)
{
	int64_t end = now_ms() + 20000;

	while (c->last_prog < rev && !c->compacted) {
		if (coll_read(w, c, max) == 0) {
			assert_true(now_ms() < end);
			usleep(2000);
		}
	}
}

static void coll_free(struct coll *c)
{
	free(c->r);
	memset(c, 0, sizeof(*c));
}

/* The etcd range convention, for the oracle. */
static bool in_range(const char *k, const char *key, size_t key_len,
                     const char *end, size_t end_len)
{
	size_t kl = strlen(k);
	int c;

	if (!end_len)
		return kl == key_len && !memcmp(k, key, kl);
	c = memcmp(k, key, kl < key_len ? kl : key_len);
	if (c < 0 || (c == 0 && kl < key_len))
		return false;
	if (end_len == 1 && end[0] == '\0')
		return true;
	c = memcmp(k, end, kl < end_len ? kl : end_len);
	return c < 0 || (c == 0 && kl < end_len);
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->mod != y->mod)
		return x->mod < y->mod ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* Every retained version of the given keys in [key, end) with revision in
 * [from, to], in revision order (ties by key): what a watch must give. */
static void oracle(eng *e, char **keys, size_t nkeys, const char *key,
                   size_t key_len, const char *end, size_t end_len,
                   eng_rev_t from, eng_rev_t to, struct coll *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < nkeys; i++) {
		struct eng_range_res res;

		if (!in_range(keys[i], key, key_len, end, end_len))
			continue;
		assert_int_equal(
		    eng_history(e, keys[i], strlen(keys[i]), 0, 0, &res), 0);
		for (size_t j = 0; j < res.n; j++) {
			struct eng_event ev = {
			    .type =
			        res.kvs[j].deleted ? ENG_EV_DELETE : ENG_EV_PUT,
			    .kv = res.kvs[j],
			};

			if (ev.kv.mod_rev >= from && ev.kv.mod_rev <= to)
				coll_add(out, &ev);
		}
		eng_range_res_release(&res);
	}
	if (out->n)
		qsort(out->r, out->n, sizeof(*out->r), rec_cmp);
}

/* The part of an oracle(all keys, every revision) that one watch must give:
 * cheaper than reading the histories again per watcher. */
static void oracle_filter(const struct coll *all, const char *key,
                          size_t key_len, const char *end, size_t end_len,
                          eng_rev_t from, eng_rev_t to, struct coll *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < all->n; i++) {
		const struct rec *r = &all->r[i];

		if (r->mod < from || r->mod > to ||
		    !in_range(r->key, key, key_len, end, end_len))
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 256;
			out->r = realloc(out->r, out->cap * sizeof(*out->r));
			assert_non_null(out->r);
		}
		out->r[out->n++] = *r;
	}
}

/* got must equal want exactly (same order within a revision up to keys). */
static void coll_check(struct coll *got, const struct coll *want)
{
	if (got->n != want->n)
		fprintf(stderr, "got %zu events, want %zu\n", got->n, want->n);
	assert_int_equal(got->n, want->n);
	if (got->n) /* order within a revision is by key, as the oracle's */
		qsort(got->r, got->n, sizeof(*got->r), rec_cmp);
	for (size_t i = 0; i < got->n; i++) {
		assert_int_equal(got->r[i].type, want->r[i].type);
		assert_string_equal(got->r[i].key, want->r[i].key);
		assert_int_equal(got->r[i].mod, want->r[i].mod);
		assert_int_equal(got->r[i].create, want->r[i].create);
		assert_int_equal(got->r[i].ver, want->r[i].ver);
	}
}

/* A set of distinct key names the test wrote. */
struct keyset {
	char **k;
	size_t n, cap;
};

static void keyset_add(struct keyset *s, const char *k)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->k[i], k))
			return;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->k = realloc(s->k, s->cap * sizeof(*s->k));
		assert_non_null(s->k);
	}
	s->k[s->n++] = strdup(k);
}

static void keyset_free(struct keyset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->k[i]);
	free(s->k);
	memset(s, 0, sizeof(*s));
}

static eng *open_fast(const char *dir, int progress_ms)
{
	struct eng_options o;

	eng_options_init(&o);
	o.sync = ENG_SYNC_NONE; /* the tests are about watches, not fsync */
	o.progress_interval_ms = progress_ms;
	return th_open(dir, &o);
}

static eng_watch *wopen(eng *e, const char *key, const char *end,
                        eng_rev_t start)
{
	eng_watch *w = NULL;
	size_t el = end ? (end[0] ? strlen(end) : 1) : 0;

	assert_int_equal(eng_watch_open(e, key, key[0] ? strlen(key) : 1, end,
	                                el, start, NULL, NULL, &w),
	                 0);
	return w;
}

static eng_watch *wopen_prefix(eng *e, const char *pfx, eng_rev_t start)
{
	char end[64];
	size_t el = eng_prefix_end(pfx, strlen(pfx), end);
	eng_watch *w = NULL;

	assert_int_equal(
	    eng_watch_open(e, pfx, strlen(pfx), end, el, start, NULL, NULL, &w),
	    0);
	return w;
}

/* ------------------------------------------------------------- tests */

/* Past, current and future starts on a prefix; create/mod/version. */
static void test_watch_starts(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 100);
	struct keyset ks = {0};
	eng_watch *past, *now, *fut, *from1, *key;
	struct coll cp = {0}, cn = {0}, cf = {0}, c1 = {0}, ck = {0}, want;
	eng_rev_t mid, cur, fstart;
	char k[32];

	(void)state;
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof(k), "a/%d", i % 4);
		keyset_add(&ks, k);
		th_put(e, k, "x");
		th_put(e, "b/other", "y");
	}
	keyset_add(&ks, "b/other");
	th_del(e, "a/1", NULL, 1);
	mid = th_put(e, "a/2", "again") - 5;
	cur = eng_current_rev(e);
	past = wopen_prefix(e, "a/", mid);
	from1 = wopen_prefix(e, "a/", 1);
	key = wopen(e, "a/2", NULL, 1); /* one key, replayed from the window */
	now = wopen_prefix(e, "a/", 0);
	fstart = cur + 6;
	fut = wopen_prefix(e, "a/", fstart);
	assert_int_equal(eng_watch_next_rev(now), cur + 1);

	/* history is replayed, then a marker at the current revision */
	coll_until(past, &cp, 7, cur);
	coll_until(from1, &c1, 1000, cur);
	coll_until(now, &cn, 7, cur);
	assert_int_equal(cn.n, 0);
	assert_int_equal(cn.last_prog, cur);
	assert_int_equal(cp.last_prog, cur);

	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "a/%d", 10 + i);
		keyset_add(&ks, k);
		th_put(e, k, "later");
	}
	th_put(e, "b/other", "z");
	cur = eng_current_rev(e);
	coll_until(past, &cp, 7, cur);
	coll_until(from1, &c1, 1000, cur);
	coll_until(now, &cn, 7, cur);
	coll_until(fut, &cf, 7, cur);
	coll_until(key, &ck, 2, cur);

	oracle(e, ks.k, ks.n, "a/", 2, "a0", 2, mid, cur, &want);
	coll_check(&cp, &want);
	coll_free(&want);
	oracle(e, ks.k, ks.n, "a/", 2, "a0", 2, 1, cur, &want);
	coll_check(&c1, &want);
	coll_free(&want);
	oracle(e, ks.k, ks.n, "a/", 2, "a0", 2, cur - 10, cur, &want);
	assert_int_equal(want.n, 10);
	coll_check(&cn, &want);
	coll_free(&want);
	oracle(e, ks.k, ks.n, "a/", 2, "a0", 2, fstart, cur, &want);
	coll_check(&cf, &want);
	assert_true(cf.n > 0 && cf.r[0].mod == fstart);
	coll_free(&want);
	assert_int_equal(eng_watch_next_rev(past), cur + 1);
	oracle(e, ks.k, ks.n, "a/2", 3, NULL, 0, 1, cur, &want);
	assert_int_equal(want.n, 6);
	coll_check(&ck, &want);
	coll_free(&want);
	eng_watch_close(key);
	coll_free(&ck);

	eng_watch_close(past);
	eng_watch_close(from1);
	eng_watch_close(now);
	eng_watch_close(fut);
	coll_free(&cp);
	coll_free(&c1);
	coll_free(&cn);
	coll_free(&cf);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* Below the compaction revision: COMPACTED carrying it; at it: works. */
static void test_watch_compacted(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 100);
	struct keyset ks = {0};
	struct coll c = {0}, want;
	eng_watch *w;
	eng_rev_t crev, cur;
	char k[32];

	(void)state;
	for (int i = 0; i < 30; i++) {
		snprintf(k, sizeof(k), "k/%d", i % 5);
		keyset_add(&ks, k);
		th_put(e, k, "v");
	}
	crev = 20;
	assert_int_equal(eng_compact(e, crev, true), 0);
	cur = eng_current_rev(e);

	w = wopen_prefix(e, "k/", crev - 1);
	coll_until(w, &c, 10, cur);
	assert_int_equal(c.compacted, crev);
	assert_int_equal(c.n, 0);
	assert_int_equal(c.nprog, 0);
	th_put(e, "k/0", "after"); /* nothing more comes after COMPACTED */
	usleep(50000);
	coll_drain(w, &c, 10);
	assert_int_equal(c.n, 0);
	eng_watch_close(w);
	coll_free(&c);

	w = wopen_prefix(e, "k/", crev);
	cur = eng_current_rev(e);
	coll_until(w, &c, 10, cur);
	assert_int_equal(c.compacted, 0);
	oracle(e, ks.k, ks.n, "k/", 2, "k0", 2, crev, cur, &want);
	assert_true(want.n > 0 && want.r[0].mod == crev);
	coll_check(&c, &want);
	coll_free(&want);
	eng_watch_close(w);
	coll_free(&c);

	/* compaction at a deletion drops it (etcd's rule): a replay from
	 * that revision starts after it, even from the window */
	crev = th_del(e, "k/2", NULL, 1);
	th_put(e, "k/2", "back");
	assert_int_equal(eng_compact(e, crev, false), 0);
	cur = eng_current_rev(e);
	w = wopen_prefix(e, "k/", crev);
	coll_until(w, &c, 10, cur);
	assert_int_equal(c.compacted, 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.r[0].type, ENG_EV_PUT);
	assert_int_equal(c.r[0].mod, crev + 1);
	eng_watch_close(w);
	coll_free(&c);

	/* a watch below the compaction revision of a single key, too */
	w = wopen(e, "k/1", NULL, 1);
	coll_until(w, &c, 10, cur);
	assert_int_equal(c.compacted, crev);
	eng_watch_close(w);
	coll_free(&c);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* Prefix, single key, [a, b) range and "every key >= k" filtering, with
 * 1,000 prefix watchers sharing the index. */
static void test_watch_filter(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 100);
	struct keyset ks = {0};
	enum { NP = 1000 };
	eng_watch **pw = calloc(NP, sizeof(*pw));
	struct coll *pc = calloc(NP, sizeof(*pc));
	eng_watch *wkey, *wrange, *wall, *wge;
	struct coll ck = {0}, cr = {0}, ca = {0}, cg = {0}, want;
	eng_rev_t start = eng_current_rev(e) + 1, cur;
	char k[48], p[48];

	(void)state;
	assert_non_null(pw);
	assert_non_null(pc);
	for (int i = 0; i < NP; i++) {
		snprintf(p, sizeof(p), "ns/%d/", i);
		pw[i] = wopen_prefix(e, p, 0);
	}
	wkey = wopen(e, "ns/7/x", NULL, 0);
	wrange = wopen(e, "ns/3", "ns/5", 0);
	wall = wopen(e, "", "", 0); /* key "\0", end "\0": everything */
	wge = wopen(e, "ns/9", "", 0);
	for (int i = 0; i < 600; i++) {
		/* ns/1/ is a prefix of ns/1x/: make sure it does not leak */
		snprintf(k, sizeof(k), "ns/%d%s/%c", (i * 7) % 40,
		         i % 3 ? "" : "x", 'a' + i % 3);
		if (i % 50 == 0)
			snprintf(k, sizeof(k), "ns/7/x");
		keyset_add(&ks, k);
		th_put(e, k, "v");
		if (i % 11 == 0)
			th_del(e, k, NULL, 1);
	}
	cur = eng_current_rev(e);
	for (int i = 0; i < NP; i++) {
		snprintf(p, sizeof(p), "ns/%d/", i);
		coll_until(pw[i], &pc[i], 64, cur);
		if (i < 50) {
			char end[48];
			size_t el = eng_prefix_end(p, strlen(p), end);

			oracle(e, ks.k, ks.n, p, strlen(p), end, el, start, cur,
			       &want);
			coll_check(&pc[i], &want);
			coll_free(&want);
		} else {
			assert_int_equal(pc[i].n, 0);
		}
		eng_watch_close(pw[i]);
		coll_free(&pc[i]);
	}
	coll_until(wkey, &ck, 64, cur);
	oracle(e, ks.k, ks.n, "ns/7/x", 6, NULL, 0, start, cur, &want);
	assert_true(want.n >= 12);
	coll_check(&ck, &want);
	coll_free(&want);
	coll_until(wrange, &cr, 64, cur);
	oracle(e, ks.k, ks.n, "ns/3", 4, "ns/5", 4, start, cur, &want);
	coll_check(&cr, &want);
	coll_free(&want);
	coll_until(wall, &ca, 64, cur);
	oracle(e, ks.k, ks.n, "\0", 1, "\0", 1, start, cur, &want);
	coll_check(&ca, &want);
	coll_free(&want);
	coll_until(wge, &cg, 64, cur);
	oracle(e, ks.k, ks.n, "ns/9", 4, "\0", 1, start, cur, &want);
	coll_check(&cg, &want);
	coll_free(&want);

	eng_watch_close(wkey);
	eng_watch_close(wrange);
	eng_watch_close(wall);
	eng_watch_close(wge);
	coll_free(&ck);
	coll_free(&cr);
	coll_free(&ca);
	coll_free(&cg);
	free(pw);
	free(pc);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* Multi-key transactions: a batch never splits a revision unless that
 * revision alone exceeds max. */
static void test_watch_no_split(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 5000);
	struct eng_op ops[5];
	struct eng_txn txn = {.success = ops, .nsuccess = 5};
	struct eng_txn_res res;
	char keys[5][16];
	eng_watch *w = wopen_prefix(e, "t/", 0);
	eng_watch *w2 = wopen_prefix(e, "t/", 0);
	struct eng_event *evs;
	eng_rev_t cur;
	int n;

	(void)state;
	memset(ops, 0, sizeof(ops));
	for (int i = 0; i < 5; i++) {
		snprintf(keys[i], sizeof(keys[i]), "t/%d", i);
		ops[i].type = ENG_OP_PUT;
		ops[i].key = keys[i];
		ops[i].key_len = strlen(keys[i]);
		ops[i].value = "v";
		ops[i].value_len = 1;
	}
	/* drain the opening markers */
	assert_int_equal(eng_watch_read(w, &evs, 8), 1);
	assert_int_equal(evs[0].type, ENG_EV_PROGRESS);
	assert_int_equal(eng_watch_read(w2, &evs, 8), 1);
	for (int r = 0; r < 3; r++) {
		assert_int_equal(eng_txn(e, &txn, &res), 0);
		eng_txn_res_release(&res);
	}
	cur = eng_current_rev(e);
	usleep(100000);
	/* max 7: whole revisions of 5 only, one per read */
	for (int r = 0; r < 3; r++) {
		n = eng_watch_read(w, &evs, 7);
		assert_int_equal(n, 5);
		for (int i = 0; i < 5; i++)
			assert_int_equal(evs[i].kv.mod_rev, cur - 2 + r);
		assert_int_equal(eng_watch_next_rev(w), cur - 1 + r);
	}
	/* max 3: one revision alone exceeds it, so it is split 3 + 2 */
	n = eng_watch_read(w2, &evs, 3);
	assert_int_equal(n, 3);
	assert_int_equal(evs[2].kv.mod_rev, cur - 2);
	assert_int_equal(eng_watch_next_rev(w2), cur - 2);
	n = eng_watch_read(w2, &evs, 3);
	assert_int_equal(n, 2);
	assert_int_equal(evs[1].kv.mod_rev, cur - 2);
	assert_int_equal(eng_watch_next_rev(w2), cur - 1);
	eng_watch_close(w);
	eng_watch_close(w2);
	eng_close(e);
	th_cleanup(dir);
}

/* ------------------------------------------- 4 writers x 10,000, 50 watchers
 */

#define NWRITERS 4
#define NPUTS    10000
#define NWATCH   50

struct wctx {
	eng *e;
	int id;
};

static atomic_int writers_done;

/* tests/run.sh valgrind sets RV_UNDER_VALGRIND: 10x fewer puts there */
static int nputs(void)
{
	return getenv("RV_UNDER_VALGRIND") ? NPUTS / 10 : NPUTS;
}

static void *writer(void *arg)
{
	struct wctx *c = arg;
	char k[32];

	/* nputs() puts, and after every tenth a delete of that key */
	for (int i = 0, n = nputs(); i < n; i++) {
		snprintf(k, sizeof(k), "w/%d/%d", c->id, i % 50);
		th_put(c->e, k, "value");
		if (i % 10 == 9)
			assert_int_equal(
			    eng_delete(c->e, k, strlen(k), NULL, 0, NULL, NULL),
			    0);
	}
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

struct wspec {
	const char *key, *end; /* end NULL: prefix of key */
	eng_rev_t start;       /* 0: now; -1: opened mid-run */
	bool slow;
};

static void test_watch_concurrent(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 200);
	struct keyset ks = {0};
	pthread_t th[NWRITERS];
	struct wctx wc[NWRITERS];
	eng_watch *w[NWATCH];
	struct coll c[NWATCH], all;
	struct wspec spec[NWATCH];
	char ends[NWATCH][32], k[32];
	size_t endl[NWATCH];
	eng_rev_t starts[NWATCH], cur;
	int64_t t0;
	bool opened[NWATCH];
	int round = 0;

	(void)state;
	memset(c, 0, sizeof(c));
	memset(opened, 0, sizeof(opened));
	for (int t = 0; t < NWRITERS; t++)
		for (int i = 0; i < 50; i++) {
			snprintf(k, sizeof(k), "w/%d/%d", t, i);
			keyset_add(&ks, k);
		}
	/* some history before the watchers */
	for (int i = 0; i < 200; i++)
		th_put(e, ks.k[i % ks.n], "pre");
	for (int i = 0; i < NWATCH; i++) {
		static const char *pfx[] = {"w/0/", "w/1/", "w/2/",
		                            "w/3/", "w/",   "w/1/1"};
		spec[i].key = pfx[i % 6];
		spec[i].end = NULL;
		spec[i].start = i % 3 == 0 ? 0 : i % 3 == 1 ? 1 + i : -1;
		spec[i].slow = i % 7 == 3;
		if (i % 10 == 9) {
			spec[i].key = "w/1/";
			spec[i].end = "w/3/";
		}
		if (i == 49) {
			spec[i].key = "\0";
			spec[i].end = "";
		}
		if (spec[i].end) {
			snprintf(ends[i], sizeof(ends[i]), "%s", spec[i].end);
			endl[i] = spec[i].end[0] ? strlen(spec[i].end) : 1;
		} else {
			endl[i] = eng_prefix_end(spec[i].key,
			                         strlen(spec[i].key), ends[i]);
		}
	}
	for (int i = 0; i < NWATCH; i++) {
		if (spec[i].start < 0)
			continue;
		assert_int_equal(
		    eng_watch_open(e, spec[i].key,
		                   spec[i].key[0] ? strlen(spec[i].key) : 1,
		                   ends[i], endl[i], spec[i].start, NULL, NULL,
		                   &w[i]),
		    0);
		starts[i] = eng_watch_next_rev(w[i]);
		opened[i] = true;
	}
	t0 = now_ms();
	atomic_store(&writers_done, 0);
	for (int t = 0; t < NWRITERS; t++) {
		wc[t].e = e;
		wc[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, writer, &wc[t]),
		                 0);
	}
	/* read while the writers run; open the rest mid-run */
	while (atomic_load(&writers_done) < NWRITERS) {
		for (int i = 0; i < NWATCH; i++) {
			if (!opened[i] && eng_current_rev(e) > nputs()) {
				assert_int_equal(
				    eng_watch_open(
				        e, spec[i].key,
				        spec[i].key[0] ? strlen(spec[i].key)
				                       : 1,
				        ends[i], endl[i], 0, NULL, NULL, &w[i]),
				    0);
				starts[i] = eng_watch_next_rev(w[i]);
				opened[i] = true;
			}
			if (opened[i] && (!spec[i].slow || round % 100 == 0))
				coll_drain(w[i], &c[i], 100);
		}
		round++;
		usleep(1000);
	}
	for (int t = 0; t < NWRITERS; t++)
		pthread_join(th[t], NULL);
	cur = eng_current_rev(e);
	/* every put and delete took its revision, after 200 of history */
	assert_int_equal(cur, 1 + 200 + NWRITERS * (nputs() + nputs() / 10));
	fprintf(stderr, "# %d puts and %d deletes in %lld ms\n",
	        NWRITERS * nputs(), NWRITERS * nputs() / 10,
	        (long long)(now_ms() - t0));
	oracle(e, ks.k, ks.n, "\0", 1, "\0", 1, 1, cur, &all);
	for (int i = 0; i < NWATCH; i++) {
		struct coll want;
		size_t kl = spec[i].key[0] ? strlen(spec[i].key) : 1;

		coll_until(w[i], &c[i], 100, cur);
		oracle_filter(&all, spec[i].key, kl, ends[i], endl[i],
		              starts[i], cur, &want);
		coll_check(&c[i], &want);
		assert_int_equal(eng_watch_next_rev(w[i]), cur + 1);
		coll_free(&want);
		coll_free(&c[i]);
		eng_watch_close(w[i]);
	}
	coll_free(&all);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* ------------------------------------------------------------- churn */

#define NCHURN 150

struct churned {
	char key[8];
	eng_rev_t start;
	struct coll c;
};

/*
 * Watchers opened at random starts (history, now, future) on random
 * prefixes, read in random batches and closed, while two writers run, with
 * a tiny window and queue so that catch-up from the store, from the window
 * and the switch to live all race the dispatcher.  Each must have got
 * exactly the store's history from its start up to its last marker.
 */
static void test_watch_churn(void **state)
{
	struct watch_limits lim = {
	    .window_events = 256,
	    .window_bytes = 1 << 20,
	    .queue_events = 16,
	    .queue_bytes = 1 << 16,
	};
	static const char *pfx[] = {"w/0/", "w/1/", "w/"};
	char *dir = th_tmpdir();
	struct churned *ch = calloc(NCHURN, sizeof(*ch));
	struct coll all;
	struct keyset ks = {0};
	pthread_t th[2];
	struct wctx wc[2];
	unsigned seed = 12345;
	size_t nev = 0;
	int nw = 0;
	char k[32];
	eng *e;

	(void)state;
	assert_non_null(ch);
	watch_set_test_limits(&lim);
	e = open_fast(dir, 100);
	watch_set_test_limits(NULL);
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < 50; i++) {
			snprintf(k, sizeof(k), "w/%d/%d", t, i);
			keyset_add(&ks, k);
		}
	atomic_store(&writers_done, 0);
	for (int t = 0; t < 2; t++) {
		wc[t].e = e;
		wc[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, writer, &wc[t]),
		                 0);
	}
	for (int i = 0; i < NCHURN; i++) {
		struct churned *x = &ch[i];
		eng_rev_t cur = eng_current_rev(e);
		int reads = rand_r(&seed) % 40;
		eng_watch *w;

		snprintf(x->key, sizeof(x->key), "%s", pfx[rand_r(&seed) % 3]);
		switch (rand_r(&seed) % 4) {
		case 0:
			x->start = 1 + rand_r(&seed) % cur;
			break;
		case 1:
			x->start = cur > 300 ? cur - 300 : 1;
			break;
		case 2:
			x->start = cur + 1 + rand_r(&seed) % 20;
			break;
		default:
			x->start = 0;
		}
		w = wopen_prefix(e, x->key, x->start);
		x->start = eng_watch_next_rev(w);
		for (int r = 0; r < reads; r++) {
			coll_read(w, &x->c, 1 + rand_r(&seed) % 50);
			if (rand_r(&seed) % 4 == 0)
				usleep(rand_r(&seed) % 3000);
		}
		eng_watch_close(w);
		if (atomic_load(&writers_done) == 2)
			break;
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < NCHURN && ch[i].key[0]; i++) {
		nw++;
		nev += ch[i].c.n;
	}
	fprintf(stderr, "# %d watchers churned, %zu events checked\n", nw, nev);
	oracle(e, ks.k, ks.n, "\0", 1, "\0", 1, 1, eng_current_rev(e), &all);
	for (int i = 0; i < NCHURN; i++) {
		struct churned *x = &ch[i];
		struct coll want;
		char end[8];
		size_t el;
		eng_rev_t upto = x->c.last_prog;

		if (!x->key[0])
			break;
		if (x->c.n && x->c.r[x->c.n - 1].mod > upto)
			upto = x->c.r[x->c.n - 1].mod;
		el = eng_prefix_end(x->key, strlen(x->key), end);
		oracle_filter(&all, x->key, strlen(x->key), end, el, x->start,
		              upto, &want);
		coll_check(&x->c, &want);
		coll_free(&want);
		coll_free(&x->c);
	}
	coll_free(&all);
	free(ch);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* ------------------------------------------------------ slow consumers */

static void test_watch_slow_consumer(void **state)
{
	struct watch_limits lim = {
	    .window_events = 64,
	    .window_bytes = 1 << 20,
	    .queue_events = 8,
	    .queue_bytes = 1 << 16,
	};
	char *dir = th_tmpdir();
	eng *e;
	struct keyset ks = {0};
	eng_watch *slow, *fast, *replay;
	struct coll cs = {0}, cf = {0}, cr = {0}, want;
	eng_rev_t start, cur;
	int nslow = nputs() / 5;
	char k[32];

	(void)state;
	watch_set_test_limits(&lim);
	e = open_fast(dir, 100);
	watch_set_test_limits(NULL);
	th_put(e, "s/0", "first");
	keyset_add(&ks, "s/0");
	start = eng_current_rev(e) + 1;
	slow = wopen_prefix(e, "s/", 0);
	fast = wopen_prefix(e, "s/", 0);
	for (int i = 0; i < nslow; i++) {
		snprintf(k, sizeof(k), "s/%d", i % 37);
		keyset_add(&ks, k);
		th_put(e, k, "v");
		if (i % 5 == 0)
			coll_drain(fast, &cf, 5);
	}
	cur = eng_current_rev(e);
	/* the slow one was not read at all: it overflowed long ago, and the
	 * window (64 events) no longer has its position */
	coll_until(slow, &cs, 5, cur);
	coll_until(fast, &cf, 5, cur);
	oracle(e, ks.k, ks.n, "s/", 2, "s0", 2, start, cur, &want);
	assert_int_equal(want.n, nslow);
	coll_check(&cs, &want);
	coll_check(&cf, &want);
	coll_free(&want);

	/* a catching-up watcher whose position is compacted meanwhile */
	replay = wopen_prefix(e, "s/", 2);
	assert_true(coll_read(replay, &cr, 5) > 0);
	assert_int_equal(cr.r[0].mod, 2);
	assert_int_equal(eng_compact(e, nslow / 2, false), 0);
	coll_until(replay, &cr, 5, cur);
	assert_int_equal(cr.compacted, nslow / 2);
	assert_true(cr.n <= lim.queue_events + 5);

	eng_watch_close(slow);
	eng_watch_close(fast);
	eng_watch_close(replay);
	coll_free(&cs);
	coll_free(&cf);
	coll_free(&cr);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/*
 * Consumers that stop reading cannot stall the engine, and cost a bounded
 * memory each (issue 3): 100 watchers that never read, while 3,000
 * revisions are written (one in three an 8 KiB value, one in six a 4-key
 * txn), each hold at most their queue's bound — queue_events events and
 * queue_bytes bytes, plus the rest of the one revision that crossed it —
 * and the writes all complete; a watcher that reads keeps up; a stalled
 * one that finally reads gets exactly the history (from the store: the
 * window has long dropped its position).
 */
#define NSTALLED 100

static void test_watch_stalled(void **state)
{
	struct watch_limits lim = {
	    .window_events = 256,
	    .window_bytes = 1 << 20,
	    .queue_events = 32,
	    .queue_bytes = 32 << 10,
	};
	/* the largest revision: one 8 KiB value, or 4 small ones; an event
	 * is accounted with its header (< 256 bytes here) */
	const size_t rev_events = 4, rev_bytes = 8192 + 4 * 256;
	char *dir = th_tmpdir();
	static char big[8192];
	struct keyset ks = {0};
	eng_watch *stalled[NSTALLED], *reader;
	struct coll cr = {0}, cs = {0}, want;
	struct eng_op ops[4];
	struct eng_txn txn = {.success = ops, .nsuccess = 4};
	struct eng_txn_res tres;
	char keys[4][16], k[32];
	size_t qe, qb, max_qe = 0, max_qb = 0;
	eng_rev_t start, cur;
	int nrev = getenv("RV_UNDER_VALGRIND") ? 600 : 3000;
	int64_t t0;
	eng *e;

	(void)state;
	memset(big, 'b', sizeof(big));
	watch_set_test_limits(&lim);
	e = open_fast(dir, 100);
	watch_set_test_limits(NULL);
	start = eng_current_rev(e) + 1;
	for (int i = 0; i < NSTALLED; i++)
		stalled[i] = wopen_prefix(e, "st/", 0);
	reader = wopen_prefix(e, "st/", 0);
	memset(ops, 0, sizeof(ops));
	for (int j = 0; j < 4; j++) {
		ops[j].type = ENG_OP_PUT;
		ops[j].key = keys[j];
		ops[j].value = "tx";
		ops[j].value_len = 2;
	}
	t0 = now_ms();
	for (int i = 0; i < nrev; i++) {
		snprintf(k, sizeof(k), "st/%d", i % 61);
		keyset_add(&ks, k);
		switch (i % 6) {
		case 1:
		case 4: /* 8 KiB: the byte bound binds before the count */
			assert_int_equal(eng_put(e, k, strlen(k), big,
			                         sizeof(big), 0, NULL, NULL),
			                 0);
			break;
		case 3:
			for (int j = 0; j < 4; j++) {
				snprintf(keys[j], sizeof(keys[j]), "st/t%d",
				         (i + j) % 9);
				ops[j].key_len = strlen(keys[j]);
				keyset_add(&ks, keys[j]);
			}
			assert_int_equal(eng_txn(e, &txn, &tres), 0);
			eng_txn_res_release(&tres);
			break;
		default:
			th_put(e, k, "v");
		}
		if (i % 50 == 0)
			coll_drain(reader, &cr, 64);
	}
	cur = eng_current_rev(e);
	assert_int_equal(cur, start - 1 + nrev);
	fprintf(stderr, "# %d revisions with %d stalled watchers: %lld ms\n",
	        nrev, NSTALLED, (long long)(now_ms() - t0));
	usleep(50000); /* the dispatcher's last batch */
	for (int i = 0; i < NSTALLED; i++) {
		watch_test_queued(stalled[i], &qe, &qb);
		max_qe = qe > max_qe ? qe : max_qe;
		max_qb = qb > max_qb ? qb : max_qb;
	}
	fprintf(stderr,
	        "# a stalled watcher holds at most %zu events, %zu "
	        "bytes (bound %zu + %zu, %zu + %zu)\n",
	        max_qe, max_qb, lim.queue_events, rev_events, lim.queue_bytes,
	        rev_bytes);
	assert_true(max_qe > 0);
	assert_true(max_qe <= lim.queue_events + rev_events);
	assert_true(max_qb <= lim.queue_bytes + rev_bytes);

	coll_until(reader, &cr, 64, cur);
	oracle(e, ks.k, ks.n, "st/", 3, "st0", 3, start, cur, &want);
	coll_check(&cr, &want);
	/* a stalled consumer that reads at last: every event, once */
	coll_until(stalled[0], &cs, 64, cur);
	coll_check(&cs, &want);
	coll_free(&want);
	for (int i = 0; i < NSTALLED; i++)
		eng_watch_close(stalled[i]);
	eng_watch_close(reader);
	coll_free(&cr);
	coll_free(&cs);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* Publishes that lose their events (out of memory in the hub): live
 * watchers replay the lost revisions from the store, exactly once; a watch
 * starting after them stays live. */
static void test_watch_lost_publish(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 100);
	struct keyset ks = {0};
	eng_watch *a, *b, *later;
	struct coll ca = {0}, cb = {0}, cl = {0}, want;
	eng_rev_t start, cur;
	char k[32];

	(void)state;
	start = eng_current_rev(e) + 1;
	a = wopen_prefix(e, "h/", 0);
	b = wopen(e, "h/3", NULL, 0);
	later = wopen_prefix(e, "h/", start + 40);
	for (int i = 0; i < 60; i++) {
		snprintf(k, sizeof(k), "h/%d", i % 7);
		keyset_add(&ks, k);
		if (i == 20)
			watch_test_fail_publishes(5);
		th_put(e, k, "v");
		if (i % 4 == 0)
			coll_drain(a, &ca, 3);
	}
	watch_test_fail_publishes(0);
	cur = eng_current_rev(e);
	coll_until(a, &ca, 3, cur);
	coll_until(b, &cb, 3, cur);
	coll_until(later, &cl, 3, cur);
	oracle(e, ks.k, ks.n, "h/", 2, "h0", 2, start, cur, &want);
	assert_int_equal(want.n, 60);
	coll_check(&ca, &want);
	coll_free(&want);
	oracle(e, ks.k, ks.n, "h/3", 3, NULL, 0, start, cur, &want);
	coll_check(&cb, &want);
	coll_free(&want);
	oracle(e, ks.k, ks.n, "h/", 2, "h0", 2, start + 40, cur, &want);
	coll_check(&cl, &want);
	coll_free(&want);
	eng_watch_close(a);
	eng_watch_close(b);
	eng_watch_close(later);
	coll_free(&ca);
	coll_free(&cb);
	coll_free(&cl);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/* -------------------------------------------------------------- progress */

static atomic_int notified;

static void count_notify(void *arg)
{
	(void)arg;
	atomic_fetch_add(&notified, 1);
}

/* Read one batch; return the index of a PROGRESS in it or -1. */
static int read_marker(eng_watch *w, struct eng_event **evs, int *n)
{
	*n = eng_watch_read(w, evs, 64);
	assert_true(*n >= 0);
	for (int i = 0; i < *n; i++)
		if ((*evs)[i].type == ENG_EV_PROGRESS)
			return i;
	return -1;
}

/*
 * Read nmarkers markers from w, idle at revision cur (each read gives one
 * marker at cur and nothing else), and widen [*gmin, *gmax] by the gaps
 * between them.  A gap runs from just before the read that gave one marker
 * (the first: from `last`) to just after the read giving the next, so it
 * is never below the true gap, even when a read is slow (valgrind).  Fails
 * after 5 s without a marker.
 */
static void idle_marker_gaps(eng_watch *w, eng_rev_t cur, int nmarkers,
                             int64_t last, int64_t *gmin, int64_t *gmax)
{
	struct eng_event *evs;
	int n, markers = 0;

	while (markers < nmarkers) {
		int64_t before = now_ms();

		if (read_marker(w, &evs, &n) >= 0) {
			int64_t gap = now_ms() - last;

			assert_int_equal(n, 1);
			assert_int_equal(evs[0].kv.mod_rev, cur);
			*gmin = gap < *gmin ? gap : *gmin;
			*gmax = gap > *gmax ? gap : *gmax;
			last = before;
			markers++;
		}
		assert_true(now_ms() < last + 5000);
		usleep(2000);
	}
}

static void test_watch_progress(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 100);
	struct keyset ks = {0};
	struct eng_event *evs;
	eng_watch *w, *h;
	struct coll ch = {0}, want;
	int64_t t0, last, gap_min = 1 << 30, gap_max = 0;
	eng_rev_t cur;
	int n, i;
	char k[32];

	(void)state;
	for (i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "p/%d", i % 10);
		keyset_add(&ks, k);
		th_put(e, k, "v");
	}
	cur = eng_current_rev(e);

	/* at once after open when there is nothing to replay, and notified */
	atomic_store(&notified, 0);
	assert_int_equal(
	    eng_watch_open(e, "p/", 2, "p0", 2, 0, count_notify, NULL, &w), 0);
	t0 = now_ms();
	i = read_marker(w, &evs, &n);
	assert_int_equal(n, 1);
	assert_int_equal(i, 0);
	assert_int_equal(evs[0].kv.mod_rev, cur);
	while (!atomic_load(&notified) && now_ms() < t0 + 2000)
		usleep(1000);
	assert_true(atomic_load(&notified) >= 1);

	/* then every interval while idle (counted from the last read that
	 * gave something: measured from just before that read to just after
	 * the one giving the next marker, so never below the true gap, even
	 * when a read is slow, as under valgrind) */
	idle_marker_gaps(w, cur, 8, t0, &gap_min, &gap_max);
	fprintf(stderr, "# idle markers every %lld..%lld ms (interval 100)\n",
	        (long long)gap_min, (long long)gap_max);
	assert_true(gap_min >= 95);
	assert_true(gap_max < 1000);

	/* none while behind: events wait unread for 5 intervals */
	for (i = 0; i < 5; i++)
		th_put(e, "p/x", "behind");
	usleep(500000);
	last = now_ms(); /* before the read that restarts the interval */
	i = read_marker(w, &evs, &n);
	assert_int_equal(i, -1);
	assert_int_equal(n, 5);
	do {
		usleep(2000);
		i = read_marker(w, &evs, &n);
	} while (i < 0 && now_ms() < last + 5000);
	assert_int_equal(i, 0);
	assert_true(now_ms() - last >= 95);
	assert_int_equal(evs[0].kv.mod_rev, eng_current_rev(e));
	eng_watch_close(w);

	/* at once on catching up from history, and meaning all <= R */
	cur = eng_current_rev(e);
	h = wopen_prefix(e, "p/", 1);
	while (!ch.nprog)
		assert_true(coll_read(h, &ch, 16) > 0);
	assert_int_equal(ch.last_prog, cur);
	keyset_add(&ks, "p/x");
	oracle(e, ks.k, ks.n, "p/", 2, "p0", 2, 1, ch.last_prog, &want);
	coll_check(&ch, &want);
	coll_free(&want);
	eng_watch_close(h);
	coll_free(&ch);
	keyset_free(&ks);
	eng_close(e);
	th_cleanup(dir);
}

/*
 * The interval is the option's: 300 ms asked gives markers 300 ms apart
 * while idle; 20 ms asked (below the minimum) gives 100 ms.  And a watch
 * whose start is in the future gets start - 1 at once (docs: revisions
 * below the start are not its business), then its events from the start.
 */
static void measure_idle_gaps(int asked_ms, int want_ms)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, asked_ms);
	struct eng_event *evs;
	eng_watch *w;
	int64_t last, gap_min = INT64_MAX, gap_max = 0;
	eng_rev_t cur;
	int n;

	th_put(e, "q/0", "v");
	cur = eng_current_rev(e);
	w = wopen_prefix(e, "q/", 0);
	last = now_ms();
	assert_int_equal(read_marker(w, &evs, &n), 0); /* at once */
	/* from before the read of one marker to after the read of the next
	 * (as in test_watch_progress): never below the true gap */
	idle_marker_gaps(w, cur, 4, last, &gap_min, &gap_max);
	fprintf(stderr, "# progress=%d ms: idle markers every %lld..%lld ms\n",
	        asked_ms, (long long)gap_min, (long long)gap_max);
	assert_true(gap_min >= want_ms - 5);
	assert_true(gap_max < want_ms + 400);
	eng_watch_close(w);
	eng_close(e);
	th_cleanup(dir);
}

static void test_watch_progress_interval(void **state)
{
	char *dir;
	struct eng_event *evs;
	eng_watch *w;
	eng_rev_t cur;
	eng *e;
	int n;

	(void)state;
	measure_idle_gaps(300, 300);
	measure_idle_gaps(20, 100);

	dir = th_tmpdir();
	e = open_fast(dir, 100);
	th_put(e, "f/0", "v");
	cur = eng_current_rev(e);
	w = wopen_prefix(e, "f/", cur + 3);
	assert_int_equal(read_marker(w, &evs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(evs[0].kv.mod_rev, cur + 2);
	th_put(e, "f/1", "skipped"); /* cur + 1, before the start */
	th_put(e, "f/2", "skipped");
	th_put(e, "f/3", "first"); /* cur + 3 */
	for (int64_t end = now_ms() + 5000;;) {
		n = eng_watch_read(w, &evs, 8);
		assert_true(n >= 0);
		if (n > 0 && evs[0].type == ENG_EV_PUT)
			break;
		assert_true(now_ms() < end);
		usleep(2000);
	}
	assert_int_equal(evs[0].kv.mod_rev, cur + 3);
	assert_memory_equal(evs[0].kv.key, "f/3", 3);
	eng_watch_close(w);
	eng_close(e);
	th_cleanup(dir);
}

/* ------------------------------------------------- close and shutdown */

static atomic_int after_close;
static atomic_bool closed_flag;

static void strict_notify(void *arg)
{
	(void)arg;
	if (atomic_load(&closed_flag))
		atomic_fetch_add(&after_close, 1);
	usleep(200); /* widen the window for a close in flight */
}

static void *busy_writer(void *arg)
{
	eng *e = arg;

	for (int i = 0; i < 3000; i++)
		th_put(e, "c/k", "v");
	return NULL;
}

static void test_watch_close_notify(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 100);
	pthread_t th;
	struct eng_event *evs;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, busy_writer, e), 0);
	for (int r = 0; r < 30; r++) {
		eng_watch *w;

		atomic_store(&closed_flag, false);
		assert_int_equal(eng_watch_open(e, "c/", 2, "c0", 2, 0,
		                                strict_notify, NULL, &w),
		                 0);
		for (int i = 0; i < r % 5; i++) {
			while (eng_watch_read(w, &evs, 4) > 0)
				;
			usleep(500);
		}
		eng_watch_close(w);
		atomic_store(&closed_flag, true);
		usleep(1000);
	}
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&after_close), 0);
	eng_close(e);
	th_cleanup(dir);
}

/* eng_close ends every watch with ENG_E_CLOSED (a watch still open then
 * can only be read and closed). */
static void test_watch_shutdown(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir, 5000);
	struct eng_event *evs;
	eng_watch *w, *old;

	(void)state;
	th_put(e, "d/1", "v");
	assert_int_equal(
	    eng_watch_open(e, "d/", 2, "d0", 2, 0, count_notify, NULL, &w), 0);
	old = wopen_prefix(e, "d/", 1);
	assert_int_equal(eng_watch_read(w, &evs, 4), 1);
	usleep(20000);
	atomic_store(&notified, 0);
	eng_close(e);
	assert_true(atomic_load(&notified) >= 1);
	assert_int_equal(eng_watch_read(w, &evs, 4), ENG_E_CLOSED);
	assert_int_equal(eng_watch_read(old, &evs, 4), ENG_E_CLOSED);
	eng_watch_close(w);
	eng_watch_close(old);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_watch_starts),
	    cmocka_unit_test(test_watch_compacted),
	    cmocka_unit_test(test_watch_filter),
	    cmocka_unit_test(test_watch_no_split),
	    cmocka_unit_test(test_watch_slow_consumer),
	    cmocka_unit_test(test_watch_stalled),
	    cmocka_unit_test(test_watch_lost_publish),
	    cmocka_unit_test(test_watch_churn),
	    cmocka_unit_test(test_watch_progress),
	    cmocka_unit_test(test_watch_progress_interval),
	    cmocka_unit_test(test_watch_close_notify),
	    cmocka_unit_test(test_watch_shutdown),
	    cmocka_unit_test(test_watch_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
