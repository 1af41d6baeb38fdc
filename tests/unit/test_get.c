/*
 * test_get.c — eng_get's point-read fast path (engine.c -> local_get_latest:
 * one LevelDB Get, no snapshot) answers exactly what the range path answers
 * (eng_get through a snapshot or at an explicit revision, and eng_range):
 * missing, live, overwritten, deleted and leased keys, empty values, binary
 * keys and values, after a compaction; a reader racing a writer never sees
 * a torn or older version; bad arguments fail as before.
 */
#include "engine_helpers.h"

#include <sched.h>

#include <pthread.h>

/* Every field of a and b matches, value bytes included. */
static void assert_kv_same(const struct eng_kv *a, const struct eng_kv *b)
{
	assert_int_equal(a->mod_rev, b->mod_rev);
	assert_int_equal(a->create_rev, b->create_rev);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->lease, b->lease);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_int_equal(a->key_len, b->key_len);
	assert_int_equal(a->value_len, b->value_len);
	assert_int_equal(a->deleted, b->deleted);
	assert_int_equal(a->is_prefix, b->is_prefix);
	if (a->mod_rev == 0) {
		assert_null(a->key);
		assert_null(b->key);
		return;
	}
	assert_memory_equal(a->key, b->key, a->key_len);
	assert_non_null(a->value);
	assert_non_null(b->value);
	if (a->value_len)
		assert_memory_equal(a->value, b->value, a->value_len);
}

/* The fast path's answer for key against the range path's (a snapshot, the
 * current revision given explicitly, and eng_range itself). */
static void check_key(eng *e, const void *key, size_t key_len)
{
	struct eng_kv fast, viasnap, atrev;
	struct eng_range_res res = {0};
	struct eng_range_req req = {.key = key, .key_len = key_len};
	eng_snap *s = NULL;

	assert_int_equal(eng_snap_open(e, &s), 0);
	assert_int_equal(eng_get(e, key, key_len, 0, NULL, &fast), 0);
	assert_int_equal(eng_get(e, key, key_len, 0, s, &viasnap), 0);
	assert_int_equal(eng_get(e, key, key_len, eng_snap_rev(s), s, &atrev),
	                 0);
	assert_int_equal(eng_range(e, &req, &res), 0);
	assert_kv_same(&fast, &viasnap);
	assert_kv_same(&fast, &atrev);
	if (fast.mod_rev) {
		assert_int_equal(res.n, 1);
		assert_kv_same(&fast, &res.kvs[0]);
	} else {
		assert_int_equal(res.n, 0);
	}
	eng_range_res_release(&res);
	eng_kv_release(&fast);
	eng_kv_release(&viasnap);
	eng_kv_release(&atrev);
	eng_snap_release(e, s);
}

static void test_get_matches_range(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	const char bkey[] = {'b', 0, 'i', (char)0xff, 'n'};
	const char bval[] = {0, 1, 0, (char)0xfe, 0};
	eng_lease_t lease = 0;
	eng_rev_t r1, r2;
	struct eng_kv kv;

	(void)state;
	check_key(e, "missing", 7);
	r1 = th_put(e, "a", "one");
	check_key(e, "a", 1);
	r2 = th_put(e, "a", "two, longer");
	check_key(e, "a", 1);
	assert_int_equal(eng_get(e, "a", 1, 0, NULL, &kv), 0);
	assert_int_equal(kv.create_rev, r1);
	assert_int_equal(kv.mod_rev, r2);
	assert_int_equal(kv.version, 2);
	assert_int_equal(kv.value_len, 11);
	assert_memory_equal(kv.value, "two, longer", 11);
	assert_true(kv.mtime_ns > 0);
	eng_kv_release(&kv);

	/* "a" at r1 (the range path) is still the first version. */
	assert_string_equal(th_get(e, "a", r1), "one");

	th_put(e, "empty", "");
	check_key(e, "empty", 5);
	assert_int_equal(eng_get(e, "empty", 5, 0, NULL, &kv), 0);
	assert_non_null(kv.value);
	assert_int_equal(kv.value_len, 0);
	eng_kv_release(&kv);

	assert_int_equal(
	    eng_put(e, bkey, sizeof(bkey), bval, sizeof(bval), 0, NULL, NULL),
	    0);
	check_key(e, bkey, sizeof(bkey));
	/* A key that is a prefix of a live one, and one just after it. */
	check_key(e, "b", 1);
	check_key(e, "a\0", 2);

	assert_int_equal(eng_lease_grant(e, 0, 60, NULL, &lease), 0);
	assert_int_equal(eng_put(e, "leased", 6, "x", 1, lease, NULL, NULL), 0);
	check_key(e, "leased", 6);
	assert_int_equal(eng_get(e, "leased", 6, 0, NULL, &kv), 0);
	assert_int_equal(kv.lease, lease);
	eng_kv_release(&kv);

	th_del(e, "a", NULL, 1);
	check_key(e, "a", 1);
	assert_null(th_get(e, "a", 0));

	/* Compaction keeps the latest versions the fast path reads. */
	th_put(e, "c", "1");
	th_put(e, "c", "2");
	assert_int_equal(eng_compact(e, eng_current_rev(e), true), 0);
	check_key(e, "c", 1);
	check_key(e, "a", 1);
	check_key(e, "empty", 5);
	assert_string_equal(th_get(e, "c", 0), "2");

	eng_close(e);
	th_cleanup(dir);
}

static void test_get_bad_args_and_stats(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_stats a, b;
	struct eng_kv kv;

	(void)state;
	assert_int_equal(eng_get(e, "", 0, 0, NULL, &kv), ENG_E_INVAL);
	assert_null(kv.key);
	assert_int_equal(eng_get(e, NULL, 0, 0, NULL, &kv), ENG_E_INVAL);
	assert_int_equal(eng_get(e, "k", 1, 0, NULL, NULL), ENG_E_INVAL);
	assert_int_equal(eng_get(e, "k", 1, -1, NULL, &kv), ENG_E_INVAL);
	assert_int_equal(eng_get(e, "k", 1, 5, NULL, &kv), ENG_E_FUTURE_REV);
	assert_int_equal(eng_get(NULL, "k", 1, 0, NULL, &kv), ENG_E_INVAL);

	/* A fast get is still counted as a range in the stats. */
	th_put(e, "k", "v");
	assert_int_equal(eng_stats_get(e, &a), 0);
	assert_string_equal(th_get(e, "k", 0), "v");
	assert_null(th_get(e, "nope", 0));
	assert_int_equal(eng_stats_get(e, &b), 0);
	assert_int_equal(b.range.count, a.range.count + 2);
	assert_int_equal(b.range.errors, a.range.errors);

	eng_close(e);
	th_cleanup(dir);
}

/*
 * A writer bumps one key; its value is always its own version number.
 * tests/run.sh valgrind sets RV_UNDER_VALGRIND: 10x fewer puts there, where
 * threads take turns on one lock and a reader that never sleeps nearly
 * starves the writer (the run took over 10 minutes).
 */
#define RACE_PUTS 1500

struct race {
	eng *e;
	int puts;
	bool stop;
};

static void *race_writer(void *arg)
{
	struct race *r = arg;

	for (int i = 1; i <= r->puts; i++) {
		char v[32];
		int n = snprintf(v, sizeof(v), "%d", i);

		if (eng_put(r->e, "ctr", 3, v, (size_t)n, 0, NULL, NULL))
			break;
	}
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	return NULL;
}

static void test_get_races_writer(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	struct race r = {0};
	pthread_t t;
	eng_rev_t last_mod = 0;
	int64_t last_ver = 0;
	long reads = 0;
	char want[16];

	(void)state;
	eng_options_init(&o);
	o.sync = ENG_SYNC_NONE;
	r.e = th_open(dir, &o);
	r.puts = getenv("RV_UNDER_VALGRIND") ? RACE_PUTS / 10 : RACE_PUTS;
	assert_int_equal(pthread_create(&t, NULL, race_writer, &r), 0);
	while (!__atomic_load_n(&r.stop, __ATOMIC_ACQUIRE)) {
		struct eng_kv kv;
		char v[32];

		assert_int_equal(eng_get(r.e, "ctr", 3, 0, NULL, &kv), 0);
		reads++;
		if (kv.mod_rev == 0) {
			assert_int_equal(last_mod, 0);
			continue;
		}
		/* Never older than a version already seen, never torn. */
		assert_true(kv.mod_rev >= last_mod);
		assert_true(kv.version >= last_ver);
		assert_true(kv.value_len < sizeof(v));
		memcpy(v, kv.value, kv.value_len);
		v[kv.value_len] = 0;
		assert_int_equal(atoll(v), kv.version);
		last_mod = kv.mod_rev;
		last_ver = kv.version;
		eng_kv_release(&kv);
		/* Let the writer run between reads (see RACE_PUTS). */
		sched_yield();
	}
	pthread_join(t, NULL);
	assert_true(reads > 0);
	snprintf(want, sizeof(want), "%d", r.puts);
	assert_string_equal(th_get(r.e, "ctr", 0), want);
	eng_close(r.e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_matches_range),
	    cmocka_unit_test(test_get_bad_args_and_stats),
	    cmocka_unit_test(test_get_races_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
