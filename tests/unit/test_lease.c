/*
 * test_lease.c — leases through the real engine (eng_open in a mktemp -d
 * directory): grant (ids, names, TTL bounds), keepalive, set_ttl, revoke,
 * time-to-live with keys, list; attached keys deleted in one revision with
 * DELETE events to a watcher, by revoke and by expiry; expiry within
 * 500 ms of the deadline (issue 3) — alone, after a reopen, for 2,000
 * leases due at once, among 100,000 live leases and under a write load;
 * renewals that keep a lease alive, take no revision, no commit and write
 * no byte to the store; reopen (leases survive with their full TTL);
 * keepalive racing expiry.
 *
 * How late an expiry was is measured on the deletion itself: the
 * tombstone's mtime_ns is the wall-clock time its commit started, so the
 * measure does not depend on when this test's thread got to look.
 */
#include "tests/unit/engine_helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Issue 3's bound: a lease expires within 500 ms of its deadline.  Under
 * valgrind (tests/run.sh sets RV_UNDER_VALGRIND) the engine runs 20-50
 * times slower; there the tests check behaviour and the bound is the unit
 * and san suites' business.
 */
static int64_t late_max_ms(void)
{
	return getenv("RV_UNDER_VALGRIND") ? 5000 : 500;
}

/*
 * The same bound for the last of 2,000 leases due at the same instant:
 * 2,000 commits, about 120 ms in the plain build and 300 ms under ASan on
 * an idle machine (420 ms with two CPU hogs).  The sanitizer build
 * (the san suite) gets twice the bound there: its job is memory and
 * undefined behaviour, and the plain build checks the 500 ms.
 */
#if defined(__SANITIZE_ADDRESS__)
#define RV_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RV_SANITIZED 1
#endif
#endif
static int64_t burst_max_ms(void)
{
#ifdef RV_SANITIZED
	return 2 * late_max_ms();
#else
	return late_max_ms();
#endif
}

/*
 * How late (ms) the deletion of k committed after `deadline_ns` (wall
 * clock): its tombstone's commit time minus the deadline.  A negative
 * answer means the key went before its lease's deadline.  *rev (if not
 * NULL) gets the deletion's revision.
 */
static int64_t deletion_late_ms(eng *e, const char *k, int64_t deadline_ns,
                                eng_rev_t *rev)
{
	struct eng_range_res res;
	const struct eng_kv *last;
	int64_t late;

	assert_int_equal(eng_history(e, k, strlen(k), 0, 0, &res), 0);
	assert_true(res.n > 0);
	last = &res.kvs[res.n - 1];
	assert_true(last->deleted);
	assert_true(last->mtime_ns > 0);
	late = (last->mtime_ns - deadline_ns) / 1000000;
	if (rev)
		*rev = last->mod_rev;
	eng_range_res_release(&res);
	return late;
}

/*
 * Check one lateness measured from the moment just before the call that
 * set the deadline (grant, keepalive, open): the true deadline is at or
 * after that, so the measure is never below the true lateness, and a key
 * deleted on time measures >= 0.
 */
static void check_late_within(const char *what, int64_t late, int64_t max)
{
	fprintf(stderr, "# %s: deleted %lld ms after its deadline\n", what,
	        (long long)late);
	/* 2 ms: the deadline is on the monotonic clock, the commit time on
	 * the wall clock, which NTP may slew a little meanwhile */
	assert_true(late >= -2);
	assert_true(late <= max);
}

static void check_late(const char *what, int64_t late)
{
	check_late_within(what, late, late_max_ms());
}

static eng *open_fast(const char *dir)
{
	struct eng_options o;

	eng_options_init(&o);
	o.sync = ENG_SYNC_NONE; /* leases are about time, not fsync */
	o.progress_interval_ms = 100;
	return th_open(dir, &o);
}

static void put_leased(eng *e, const char *k, eng_lease_t id)
{
	assert_int_equal(eng_put(e, k, strlen(k), "v", 1, id, NULL, NULL), 0);
}

static bool exists(eng *e, const char *k)
{
	return th_get(e, k, 0) != NULL;
}

/* Read a watch until n DELETE events came (or timeout_ms passed); with
 * same_rev they must share one revision.  Returns the first DELETE's
 * revision (0 on timeout). */
static eng_rev_t wait_deletes(eng_watch *w, int n, int64_t timeout_ms,
                              int64_t *when_ms, bool same_rev)
{
	int64_t end = now_ms() + timeout_ms;
	eng_rev_t rev = 0;
	int got = 0;

	while (got < n && now_ms() < end) {
		struct eng_event *evs;
		int k = eng_watch_read(w, &evs, 64);

		assert_true(k >= 0);
		for (int i = 0; i < k; i++) {
			/* the puts that attached the keys come first */
			if (evs[i].type == ENG_EV_PROGRESS ||
			    evs[i].type == ENG_EV_PUT)
				continue;
			assert_int_equal(evs[i].type, ENG_EV_DELETE);
			assert_true(evs[i].kv.deleted);
			if (!rev)
				rev = evs[i].kv.mod_rev;
			if (same_rev)
				assert_int_equal(evs[i].kv.mod_rev, rev);
			got++;
		}
		if (!k)
			usleep(1000);
	}
	if (when_ms)
		*when_ms = now_ms();
	return got == n ? rev : 0;
}

/* ------------------------------------------------------------- tests */

static void test_lease_grant_ops(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	struct eng_lease_info info, *list;
	eng_lease_t a, b, c, got;
	eng_rev_t rev0 = eng_current_rev(e);
	int64_t ttl = 0;
	size_t n;

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, 0, NULL, &a), ENG_E_TTL);
	assert_int_equal(eng_lease_grant(e, 0, 9000000001LL, NULL, &a),
	                 ENG_E_TTL);
	assert_int_equal(eng_lease_grant(e, 0, 9000000000LL, NULL, &c), 0);
	assert_int_equal(eng_lease_grant(e, 0, 60, NULL, &a), 0);
	assert_true(a > 0 && a != c);
	assert_int_equal(eng_lease_grant(e, 42, 30, "node-1", &b), 0);
	assert_int_equal(b, 42);
	assert_int_equal(eng_lease_grant(e, 42, 30, NULL, &got),
	                 ENG_E_LEASE_EXISTS);
	assert_int_equal(eng_lease_grant(e, 0, 30, "node-1", &got),
	                 ENG_E_LEASE_EXISTS);
	assert_int_equal(eng_lease_lookup(e, "node-1", &got), 0);
	assert_int_equal(got, 42);
	assert_int_equal(eng_lease_lookup(e, "node-2", &got),
	                 ENG_E_LEASE_NOT_FOUND);
	/* leases take no revision */
	assert_int_equal(eng_current_rev(e), rev0);

	assert_int_equal(eng_lease_ttl(e, 42, 0, &info), 0);
	assert_int_equal(info.id, 42);
	assert_string_equal(info.name, "node-1");
	assert_int_equal(info.granted_ttl, 30);
	assert_true(info.remaining_ms > 29000 && info.remaining_ms <= 30000);
	assert_int_equal(info.nkeys, 0);
	eng_lease_info_release(&info);
	assert_int_equal(eng_lease_ttl(e, c, 0, &info), 0);
	assert_int_equal(info.granted_ttl, 9000000000LL);
	assert_true(info.remaining_ms > 8999999000000LL);
	eng_lease_info_release(&info);

	usleep(1100000);
	assert_int_equal(eng_lease_keepalive(e, 42, &ttl), 0);
	assert_int_equal(ttl, 30);
	assert_int_equal(eng_lease_ttl(e, 42, 0, &info), 0);
	assert_true(info.remaining_ms > 29500); /* renewed, not 28.9 s */
	eng_lease_info_release(&info);
	assert_int_equal(eng_lease_set_ttl(e, 42, 5), 0);
	assert_int_equal(eng_lease_ttl(e, 42, 0, &info), 0);
	assert_int_equal(info.granted_ttl, 5);
	assert_true(info.remaining_ms > 4500 && info.remaining_ms <= 5000);
	eng_lease_info_release(&info);
	assert_int_equal(eng_lease_set_ttl(e, 42, 0), ENG_E_TTL);
	assert_int_equal(eng_current_rev(e), rev0);

	assert_int_equal(eng_lease_list(e, &list, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 1; i < n; i++)
		assert_true(list[i - 1].id < list[i].id);
	assert_int_equal(list[0].id, 42);
	assert_string_equal(list[0].name, "node-1");
	free(list);

	assert_int_equal(eng_lease_revoke(e, 42, &rev0), 0);
	assert_int_equal(rev0, eng_current_rev(e)); /* no keys: no revision */
	assert_int_equal(eng_lease_revoke(e, 42, NULL), ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_lease_keepalive(e, 42, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_lease_ttl(e, 42, 0, &info), ENG_E_LEASE_NOT_FOUND);
	eng_lease_info_release(&info);
	assert_int_equal(eng_lease_lookup(e, "node-1", &got),
	                 ENG_E_LEASE_NOT_FOUND);
	/* the name is free again */
	assert_int_equal(eng_lease_grant(e, 0, 30, "node-1", &got), 0);
	assert_true(got != 42);
	/* many names (the name table grows), each found by lookup */
	for (int i = 0; i < 600; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "svc-%d", i);
		assert_int_equal(eng_lease_grant(e, 1000 + i, 60, nm, &got), 0);
	}
	for (int i = 0; i < 600; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "svc-%d", i);
		assert_int_equal(eng_lease_lookup(e, nm, &got), 0);
		assert_int_equal(got, 1000 + i);
		if (i % 2)
			assert_int_equal(eng_lease_revoke(e, got, NULL), 0);
	}
	assert_int_equal(eng_lease_lookup(e, "svc-7", &got),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_lease_lookup(e, "svc-8", &got), 0);
	/* a put attaching a missing lease fails and writes nothing */
	assert_int_equal(eng_put(e, "k", 1, "v", 1, 42, NULL, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_current_rev(e), rev0);
	eng_close(e);
	th_cleanup(dir);
}

/* Revoke deletes every attached key in one revision; watchers see it. */
static void test_lease_revoke_keys(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	struct eng_lease_info info;
	eng_watch *w;
	eng_lease_t id;
	eng_rev_t rev;

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, 60, NULL, &id), 0);
	put_leased(e, "r/a", id);
	put_leased(e, "r/b", id);
	put_leased(e, "r/c", id);
	th_put(e, "r/free", "v");
	assert_int_equal(eng_lease_ttl(e, id, ENG_LEASE_KEYS, &info), 0);
	assert_int_equal(info.nkeys, 3);
	assert_int_equal(info.keys[0].key_len, 3);
	assert_memory_equal(info.keys[0].key, "r/a", 3);
	assert_memory_equal(info.keys[2].key, "r/c", 3);
	eng_lease_info_release(&info);
	assert_int_equal(eng_watch_open(e, "r/", 2, "r0", 2, 0, NULL, NULL, &w),
	                 0);

	assert_int_equal(eng_lease_revoke(e, id, &rev), 0);
	assert_int_equal(rev, eng_current_rev(e));
	assert_int_equal(wait_deletes(w, 3, 5000, NULL, true), rev);
	assert_false(exists(e, "r/a"));
	assert_false(exists(e, "r/c"));
	assert_true(exists(e, "r/free"));
	eng_watch_close(w);
	eng_close(e);
	th_cleanup(dir);
}

/* Expiry: the keys vanish in one revision, on time; renewals keep a lease
 * alive and take no revision. */
static void test_lease_expiry(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	struct eng_lease_info info;
	eng_watch *w;
	eng_lease_t id, kept;
	eng_rev_t rev, rev0, drev;
	int64_t t0, t1, when, g0, k0 = 0;

	(void)state;
	assert_int_equal(eng_watch_open(e, "x/", 2, "x0", 2, 0, NULL, NULL, &w),
	                 0);
	assert_int_equal(eng_lease_grant(e, 0, 2, NULL, &kept), 0);
	put_leased(e, "x/kept", kept);
	t0 = now_ms();
	g0 = real_ns();
	assert_int_equal(eng_lease_grant(e, 0, 1, NULL, &id), 0);
	t1 = now_ms();
	put_leased(e, "x/1", id);
	put_leased(e, "x/2", id);
	put_leased(e, "x/3", id);

	/* renew "kept" every 300 ms while "id" expires */
	rev0 = eng_current_rev(e);
	while (now_ms() < t0 + 900) {
		assert_int_equal(eng_lease_keepalive(e, kept, NULL), 0);
		usleep(300000);
	}
	assert_int_equal(eng_lease_keepalive(e, kept, NULL), 0);
	assert_int_equal(eng_current_rev(e), rev0);
	rev = wait_deletes(w, 3, 5000, &when, true);
	/* the three keys and the lease: one commit, one revision */
	assert_int_equal(rev, rev0 + 1);
	assert_int_equal(eng_current_rev(e), rev0 + 1);
	fprintf(stderr,
	        "# expiry of a 1 s lease seen %lld ms after its "
	        "deadline\n",
	        (long long)(when - (t1 + 1000)));
	/* seen by this thread, which polls: a loose bound; the issue's
	 * bound is checked on the commit itself */
	assert_true(when >= t0 + 1000);
	assert_true(when <= t1 + 1000 + 1500);
	check_late("1 s lease",
	           deletion_late_ms(e, "x/1", g0 + 1000000000, &drev));
	assert_int_equal(drev, rev);
	assert_int_equal(eng_lease_keepalive(e, id, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_lease_ttl(e, id, 0, &info), ENG_E_LEASE_NOT_FOUND);
	eng_lease_info_release(&info);
	assert_false(exists(e, "x/1"));

	for (int i = 0; i < 8; i++) {
		usleep(300000);
		k0 = real_ns();
		assert_int_equal(eng_lease_keepalive(e, kept, NULL), 0);
		t0 = now_ms();
	}
	assert_true(exists(e, "x/kept"));
	/* stop renewing: it goes 2 s after the last keepalive */
	rev = wait_deletes(w, 1, 5000, &when, true);
	assert_true(rev > 0);
	fprintf(stderr, "# expiry of a 2 s lease: %lld ms after its deadline\n",
	        (long long)(when - (t0 + 2000)));
	assert_true(when >= t0 + 1950);
	assert_true(when <= t0 + 2000 + 1500);
	assert_false(exists(e, "x/kept"));
	check_late("2 s lease after its last renewal",
	           deletion_late_ms(e, "x/kept", k0 + 2000000000, NULL));
	eng_watch_close(w);
	eng_close(e);
	th_cleanup(dir);
}

/* Leases survive a reopen with their full TTL (etcd's rule). */
static void test_lease_reopen(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	struct eng_lease_info info;
	eng_lease_t id, got;
	eng_watch *w;
	int64_t t0, t1, when, r0;
	/* valgrind is slow enough to eat a 2 s lease before the close */
	int64_t ttl = getenv("RV_UNDER_VALGRIND") ? 6 : 2;

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, ttl, "lock", &id), 0);
	assert_int_equal(eng_lease_grant(e, 77, 100, NULL, &got), 0);
	assert_int_equal(eng_lease_set_ttl(e, 77, 50), 0);
	put_leased(e, "lk/holder", id);
	usleep(ttl * 600000); /* 40 % of its TTL left */
	eng_close(e);

	t0 = now_ms(); /* the deadlines are set during the open */
	r0 = real_ns();
	e = open_fast(dir);
	t1 = now_ms();
	assert_int_equal(eng_lease_lookup(e, "lock", &got), 0);
	assert_int_equal(got, id);
	assert_int_equal(eng_lease_ttl(e, id, ENG_LEASE_KEYS, &info), 0);
	assert_int_equal(info.granted_ttl, ttl);
	/* the full TTL counted from the open, not the 40 % left */
	assert_true(info.remaining_ms >= ttl * 1000 - (now_ms() - t0) - 20);
	assert_true(info.remaining_ms > ttl * 400 + 100);
	assert_int_equal(info.nkeys, 1);
	assert_memory_equal(info.keys[0].key, "lk/holder", 9);
	eng_lease_info_release(&info);
	assert_int_equal(eng_lease_ttl(e, 77, 0, &info), 0);
	assert_int_equal(info.granted_ttl, 50);
	eng_lease_info_release(&info);
	assert_true(exists(e, "lk/holder"));

	assert_int_equal(
	    eng_watch_open(e, "lk/", 3, "lk0", 3, 0, NULL, NULL, &w), 0);
	assert_true(wait_deletes(w, 1, ttl * 1000 + 5000, &when, true) > 0);
	fprintf(stderr,
	        "# reopened %lld s lease expired %lld..%lld ms after its "
	        "deadline (set during the open)\n",
	        (long long)ttl, (long long)(when - (t1 + ttl * 1000)),
	        (long long)(when - (t0 + ttl * 1000)));
	assert_true(when >= t0 + ttl * 1000);
	assert_true(when <= t1 + ttl * 1000 + 1500);
	check_late(
	    "reopened lease",
	    deletion_late_ms(e, "lk/holder", r0 + ttl * 1000000000, NULL));
	assert_int_equal(eng_lease_lookup(e, "lock", &got),
	                 ENG_E_LEASE_NOT_FOUND);
	eng_watch_close(w);
	eng_close(e);

	e = open_fast(dir); /* the expiry was durable */
	assert_int_equal(eng_lease_lookup(e, "lock", &got),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_false(exists(e, "lk/holder"));
	assert_int_equal(eng_lease_ttl(e, 77, 0, &info), 0);
	eng_lease_info_release(&info);
	eng_close(e);
	th_cleanup(dir);
}

/* 100,000 live leases: short ones still expire on time, renewals are
 * cheap. */
#define NMANY     100000
#define NGRANTERS 4

struct granter {
	eng *e;
	eng_lease_t *ids;
	int from, to;
};

/* tests/run.sh valgrind sets RV_UNDER_VALGRIND: 10x fewer leases there */
static int nmany(void)
{
	return getenv("RV_UNDER_VALGRIND") ? NMANY / 10 : NMANY;
}

static void *grant_many(void *arg)
{
	struct granter *g = arg;

	for (int i = g->from; i < g->to; i++)
		if (eng_lease_grant(g->e, 0, 3600, NULL, &g->ids[i]))
			g->ids[i] = -1;
	return NULL;
}

static void test_lease_many(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	eng_lease_t *ids = calloc(NMANY, sizeof(*ids));
	eng_lease_t shorts[5];
	int64_t granted[5];
	struct granter g[NGRANTERS];
	pthread_t th[NGRANTERS];
	struct eng_stats st;
	eng_watch *w;
	int64_t t0, t1, when, worst = 0;
	int many = nmany();
	char k[32];

	(void)state;
	assert_non_null(ids);
	t0 = now_ms();
	for (int i = 0; i < NGRANTERS; i++) {
		g[i].e = e;
		g[i].ids = ids;
		g[i].from = i * (many / NGRANTERS);
		g[i].to = (i + 1) * (many / NGRANTERS);
		assert_int_equal(
		    pthread_create(&th[i], NULL, grant_many, &g[i]), 0);
	}
	for (int i = 0; i < NGRANTERS; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "# %d grants in %lld ms\n", many,
	        (long long)(now_ms() - t0));
	for (int i = 0; i < many; i++)
		assert_true(ids[i] > 0);

	assert_int_equal(eng_watch_open(e, "m/", 2, "m0", 2, 0, NULL, NULL, &w),
	                 0);
	t0 = now_ms();
	for (int i = 0; i < 5; i++) {
		granted[i] = real_ns();
		assert_int_equal(eng_lease_grant(e, 0, 1, NULL, &shorts[i]), 0);
		snprintf(k, sizeof(k), "m/%d", i);
		put_leased(e, k, shorts[i]);
	}
	t1 = now_ms();
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_int_equal(st.leases, many + 5);

	/* renew them all meanwhile: O(log n) each, no revision */
	for (int i = 0; i < many; i++)
		assert_int_equal(eng_lease_keepalive(e, ids[i], NULL), 0);
	fprintf(stderr, "# %d keepalives in %lld ms\n", many,
	        (long long)(now_ms() - t1));

	/* five expiries, five revisions */
	assert_true(wait_deletes(w, 5, 5000, &when, false) > 0);
	worst = when - (t0 + 1000);
	/* deadlines were set between t0 and t1 */
	fprintf(stderr,
	        "# 5 short leases among %d: last gone %lld ms after "
	        "the first deadline (grants took %lld ms)\n",
	        many, (long long)worst, (long long)(t1 - t0));
	assert_true(worst <= (t1 - t0) + 1500);
	for (int i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "m/%d", i);
		check_late(
		    "a 1 s lease among 100,000",
		    deletion_late_ms(e, k, granted[i] + 1000000000, NULL));
	}
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_int_equal(st.leases, many);
	eng_watch_close(w);
	free(ids);
	eng_close(e);
	th_cleanup(dir);
}

/* A burst: after a reopen every lease gets its full TTL at the same
 * instant, so they all fall due together; the expiry threads share the
 * work (and the store's group commit) and finish on time. */
static void test_lease_burst(void **state)
{
	char *dir = th_tmpdir();
	bool vg = getenv("RV_UNDER_VALGRIND") != NULL;
	int n = vg ? 200 : 2000;
	int64_t ttl = vg ? 6 : 2; /* longer than granting them takes */
	struct eng_stats st;
	int64_t t0, t1, when, r0, late, worst = INT64_MIN;
	eng *e = open_fast(dir);
	char k[32];

	(void)state;
	for (int i = 0; i < n; i++) {
		eng_lease_t id;

		assert_int_equal(eng_lease_grant(e, 0, ttl, NULL, &id), 0);
		snprintf(k, sizeof(k), "burst/%d", i);
		put_leased(e, k, id);
	}
	eng_close(e);
	t0 = now_ms();
	r0 = real_ns();
	e = open_fast(dir);
	t1 = now_ms();
	/* a lease leaves the count when its expiry starts, its keys when
	 * that commit is done */
	do {
		usleep(2000);
		assert_int_equal(eng_stats_get(e, &st), 0);
		assert_true(now_ms() < t1 + ttl * 1000 + 10000);
	} while (st.leases > 0 || st.keys > 0);
	when = now_ms();
	fprintf(stderr,
	        "# %d leases due at once: all gone %lld..%lld ms after their "
	        "deadline (set during the open)\n",
	        n, (long long)(when - (t1 + ttl * 1000)),
	        (long long)(when - (t0 + ttl * 1000)));
	assert_true(when >= t0 + ttl * 1000);
	assert_true(when <= t1 + ttl * 1000 + 1500);
	/* each of them on time, measured on its own deletion */
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "burst/%d", i);
		late = deletion_late_ms(e, k, r0 + ttl * 1000000000, NULL);
		assert_true(late >= -2);
		worst = late > worst ? late : worst;
	}
	check_late_within("the last of a burst of leases due at once", worst,
	                  burst_max_ms());
	eng_close(e);
	th_cleanup(dir);
}

/* ---------------------------------------------- renewals write nothing */

static uint64_t tree_bytes;
static int tree_files;

static int tree_add(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)p;
	(void)ftw;
	if (flag == FTW_F) {
		tree_bytes += (uint64_t)st->st_size;
		tree_files++;
	}
	return 0;
}

/* The store directory's regular files: their number and total size. */
static void store_size(const char *dir, int *files, uint64_t *bytes)
{
	tree_bytes = 0;
	tree_files = 0;
	assert_int_equal(nftw(dir, tree_add, 16, FTW_PHYS), 0);
	*files = tree_files;
	*bytes = tree_bytes;
}

/*
 * A renewal takes no revision, no commit and writes nothing to LevelDB
 * (issue 3): 1,000 leases with a key each, renewed 100 times over (100,000
 * keepalives), leave the revision, the commit and fsync counts and every
 * file of the store (their number and sizes) exactly as they were, and
 * every lease renewed.
 */
static void test_lease_renew_writes_nothing(void **state)
{
	enum { NL = 1000 };
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	eng_lease_t *ids = calloc(NL, sizeof(*ids));
	int rounds = getenv("RV_UNDER_VALGRIND") ? 10 : 100;
	struct eng_stats st0, st1;
	struct eng_lease_info info;
	eng_rev_t rev0;
	uint64_t bytes0, bytes1;
	int files0, files1;
	char k[32];

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < NL; i++) {
		assert_int_equal(eng_lease_grant(e, 0, 60, NULL, &ids[i]), 0);
		snprintf(k, sizeof(k), "hb/%d", i);
		put_leased(e, k, ids[i]);
	}
	usleep(1100000); /* so that a renewal shows in remaining_ms */
	rev0 = eng_current_rev(e);
	assert_int_equal(eng_stats_get(e, &st0), 0);
	store_size(dir, &files0, &bytes0);

	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < NL; i++)
			assert_int_equal(eng_lease_keepalive(e, ids[i], NULL),
			                 0);

	assert_int_equal(eng_stats_get(e, &st1), 0);
	store_size(dir, &files1, &bytes1);
	fprintf(stderr,
	        "# %d keepalives: revision %lld -> %lld, commits %llu -> "
	        "%llu, store %d files %llu bytes -> %d files %llu bytes\n",
	        rounds * NL, (long long)rev0, (long long)eng_current_rev(e),
	        (unsigned long long)st0.commits,
	        (unsigned long long)st1.commits, files0,
	        (unsigned long long)bytes0, files1, (unsigned long long)bytes1);
	assert_int_equal(eng_current_rev(e), rev0);
	assert_int_equal(st1.commits, st0.commits);
	assert_int_equal(st1.fsyncs, st0.fsyncs);
	assert_int_equal(files1, files0);
	assert_int_equal(bytes1, bytes0);
	for (int i = 0; i < NL; i += 97) {
		assert_int_equal(eng_lease_ttl(e, ids[i], 0, &info), 0);
		assert_true(info.remaining_ms > 59000);
		eng_lease_info_release(&info);
	}
	free(ids);
	eng_close(e);
	th_cleanup(dir);
}

/* ----------------------------------------------- expiry under a load */

struct loader {
	eng *e;
	int id;
	atomic_bool *stop;
	long puts;
};

static void *load_writer(void *arg)
{
	struct loader *ld = arg;
	char k[32], v[256];

	memset(v, 'v', sizeof(v));
	while (!atomic_load(ld->stop)) {
		snprintf(k, sizeof(k), "load/%d/%ld", ld->id, ld->puts % 200);
		if (eng_put(ld->e, k, strlen(k), v, sizeof(v), 0, NULL, NULL))
			break;
		ld->puts++;
	}
	return NULL;
}

/*
 * Expiry under load (issue 3): four threads put without pause — the
 * commit queue the expiries go through is never idle — while 20 leases of
 * 1 s, granted 50 ms apart, fall due one by one.  Each lease's two keys go
 * in one revision, within the bound of its deadline.
 */
#define NLOADED 20

static void test_lease_expiry_under_load(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	struct loader ld[4];
	pthread_t th[4];
	atomic_bool stop;
	eng_lease_t ids[NLOADED];
	int64_t granted[NLOADED], t0, late, worst = INT64_MIN;
	struct eng_range_res res;
	int64_t left;
	long done = 0;
	char k[32];

	(void)state;
	atomic_init(&stop, false);
	for (int t = 0; t < 4; t++) {
		ld[t].e = e;
		ld[t].id = t;
		ld[t].stop = &stop;
		ld[t].puts = 0;
		assert_int_equal(
		    pthread_create(&th[t], NULL, load_writer, &ld[t]), 0);
	}
	usleep(200000); /* the load is on */
	for (int i = 0; i < NLOADED; i++) {
		granted[i] = real_ns();
		assert_int_equal(eng_lease_grant(e, 0, 1, NULL, &ids[i]), 0);
		snprintf(k, sizeof(k), "ld/%d/a", i);
		put_leased(e, k, ids[i]);
		snprintf(k, sizeof(k), "ld/%d/b", i);
		put_leased(e, k, ids[i]);
		usleep(50000);
	}
	/* until every leased key is gone, the load still on */
	t0 = now_ms();
	do {
		usleep(5000);
		assert_int_equal(
		    th_range(e, "ld/", "ld0", 0, 0, ENG_RANGE_COUNT_ONLY, &res),
		    0);
		left = res.count;
		eng_range_res_release(&res);
		assert_true(now_ms() < t0 + 10000);
	} while (left > 0);
	atomic_store(&stop, true);
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		done += ld[t].puts;
	}
	for (int i = 0; i < NLOADED; i++) {
		eng_rev_t ra, rb;

		snprintf(k, sizeof(k), "ld/%d/a", i);
		late = deletion_late_ms(e, k, granted[i] + 1000000000, &ra);
		snprintf(k, sizeof(k), "ld/%d/b", i);
		assert_int_equal(
		    deletion_late_ms(e, k, granted[i] + 1000000000, &rb), late);
		assert_int_equal(ra, rb); /* one revision per lease */
		assert_true(late >= -2);
		worst = late > worst ? late : worst;
	}
	fprintf(stderr, "# under a load of %ld puts by 4 threads:\n", done);
	check_late("the latest of 20 leases", worst);
	eng_close(e);
	th_cleanup(dir);
}

/* A keepalive racing expiry: whichever the manager takes first wins, and
 * the outcome is consistent either way. */
static void test_lease_keepalive_race(void **state)
{
	char *dir = th_tmpdir();
	eng *e = open_fast(dir);
	int won = 0, lost = 0;

	(void)state;
	for (int r = 0; r < 4; r++) {
		eng_lease_t id;
		int64_t t0;
		int rc;

		assert_int_equal(eng_lease_grant(e, 0, 1, NULL, &id), 0);
		t0 = now_ms();
		put_leased(e, "race/k", id);
		/* aim at the deadline, a little before or after */
		while (now_ms() < t0 + 992 + r * 4)
			usleep(500);
		rc = eng_lease_keepalive(e, id, NULL);
		if (rc == 0) {
			/* renewed: alive for about another second */
			won++;
			usleep(300000);
			assert_true(exists(e, "race/k"));
			assert_int_equal(eng_lease_revoke(e, id, NULL), 0);
		} else {
			int64_t end = now_ms() + 3000;

			assert_int_equal(rc, ENG_E_LEASE_NOT_FOUND);
			lost++;
			while (exists(e, "race/k") && now_ms() < end)
				usleep(1000);
			assert_false(exists(e, "race/k"));
			assert_int_equal(eng_lease_keepalive(e, id, NULL),
			                 ENG_E_LEASE_NOT_FOUND);
		}
	}
	fprintf(stderr,
	        "# keepalive at the deadline: %d renewed, %d too late\n", won,
	        lost);
	eng_close(e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lease_grant_ops),
	    cmocka_unit_test(test_lease_revoke_keys),
	    cmocka_unit_test(test_lease_expiry),
	    cmocka_unit_test(test_lease_reopen),
	    cmocka_unit_test(test_lease_keepalive_race),
	    cmocka_unit_test(test_lease_renew_writes_nothing),
	    cmocka_unit_test(test_lease_expiry_under_load),
	    cmocka_unit_test(test_lease_burst),
	    cmocka_unit_test(test_lease_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
