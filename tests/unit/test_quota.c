/*
 * test_quota.c — the NOSPACE alarm with a tiny quota: puts, and txns with a
 * put in either branch (etcd's capped applier, whichever branch would run),
 * are refused once the store would pass the quota; the alarm is sticky;
 * reads, deletes, txns that put nothing and compaction still work, and the
 * alarm clears once compaction brings the files back under.
 * Also the read-only store.
 */
#include "engine_helpers.h"

#define QUOTA (512 * 1024)

static void fill(char *p, size_t n, unsigned *seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)rand_r(seed);
}

static void test_alarm_and_recovery(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	static char v[16384];
	unsigned seed = 7;
	struct eng_stats st;
	struct eng_txn_res res;
	struct eng_op put = {.type = ENG_OP_PUT,
	                     .key = "q",
	                     .key_len = 1,
	                     .value = "x",
	                     .value_len = 1};
	struct eng_op rd = {.type = ENG_OP_RANGE, .key = "q", .key_len = 1};
	struct eng_cmp never = {.key = "q",
	                        .key_len = 1,
	                        .target = ENG_CMP_VERSION,
	                        .result = ENG_CMP_LT,
	                        .number = 0};
	struct eng_txn t = {.cmps = &never,
	                    .ncmps = 1,
	                    .success = &put,
	                    .nsuccess = 1,
	                    .failure = &rd,
	                    .nfailure = 1};
	struct eng_op ops[] = {
	    {.type = ENG_OP_DELETE, .key = "q", .key_len = 1},
	    {.type = ENG_OP_RANGE, .key = "q", .key_len = 1},
	};
	struct eng_txn nop = {.cmps = &never,
	                      .ncmps = 1,
	                      .success = ops,
	                      .nsuccess = 2,
	                      .failure = &rd,
	                      .nfailure = 1};
	eng_rev_t rev;
	eng *e;
	int rc = 0, i;

	(void)state;
	eng_options_init(&o);
	o.quota_bytes = QUOTA;
	e = th_open(dir, &o);
	th_put(e, "keep", "1");
	for (i = 0; i < 200; i++) {
		fill(v, sizeof(v), &seed);
		rc = eng_put(e, "q", 1, v, sizeof(v), 0, NULL, NULL);
		if (rc)
			break;
	}
	assert_int_equal(rc, ENG_E_NOSPACE);
	assert_true(i > 5);
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_true(st.alarm_nospace);
	/* Sticky: even a small put is refused. */
	assert_int_equal(eng_put(e, "small", 5, "x", 1, 0, NULL, NULL),
	                 ENG_E_NOSPACE);
	/* Reads and deletes work. */
	assert_string_equal(th_get(e, "keep", 0), "1");
	th_del(e, "keep", NULL, 1);
	/*
	 * etcd's capped applier refuses a txn with a put in either branch
	 * before its compares run: even when the branch that would run only
	 * reads, and whichever branch holds the put.
	 */
	rev = eng_current_rev(e);
	assert_int_equal(eng_txn(e, &t, &res), ENG_E_NOSPACE);
	assert_false(res.succeeded);
	eng_txn_res_release(&res);
	never.result = ENG_CMP_GT; /* now the put branch would run */
	assert_int_equal(eng_txn(e, &t, &res), ENG_E_NOSPACE);
	eng_txn_res_release(&res);
	t = (struct eng_txn){.cmps = &never,
	                     .ncmps = 1,
	                     .success = &rd,
	                     .nsuccess = 1,
	                     .failure = &put,
	                     .nfailure = 1};
	assert_int_equal(eng_txn(e, &t, &res), ENG_E_NOSPACE);
	eng_txn_res_release(&res);
	assert_int_equal(eng_current_rev(e), rev);
	/* A txn that puts nothing runs, in either branch. */
	never.result = ENG_CMP_LT;
	assert_int_equal(eng_txn(e, &nop, &res), 0);
	assert_false(res.succeeded);
	assert_int_equal(res.nres, 1);
	eng_txn_res_release(&res);
	nop.ncmps = 0; /* the success branch: a delete and a range */
	assert_int_equal(eng_txn(e, &nop, &res), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.res[0].deleted, 1);
	assert_int_equal(res.header_rev, rev + 1);
	eng_txn_res_release(&res);
	/* Compaction clears it once the files are back under the quota. */
	assert_int_equal(eng_compact(e, eng_current_rev(e), true), 0);
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_false(st.alarm_nospace);
	assert_true(st.db_bytes < QUOTA);
	assert_int_equal(eng_put(e, "small", 5, "x", 1, 0, NULL, NULL), 0);
	eng_close(e);
	th_cleanup(dir);
}

/* A store already over its quota raises the alarm as it opens (from
 * LevelDB's table sizes, without scanning the directory), so the very
 * first put after a restart is refused. */
static void test_alarm_at_open(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	static char v[16384];
	unsigned seed = 9;
	struct eng_stats st;
	eng *e;

	(void)state;
	e = th_open(dir, NULL);
	for (int i = 0; i < 64; i++) {
		char k[16];

		fill(v, sizeof(v), &seed);
		snprintf(k, sizeof(k), "big%02d", i);
		assert_int_equal(
		    eng_put(e, k, strlen(k), v, sizeof(v), 0, NULL, NULL), 0);
	}
	eng_close(e);
	eng_options_init(&o);
	o.quota_bytes = QUOTA;
	e = th_open(dir, &o);
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_true(st.alarm_nospace);
	assert_true(st.db_bytes > QUOTA);
	assert_int_equal(eng_put(e, "small", 5, "x", 1, 0, NULL, NULL),
	                 ENG_E_NOSPACE);
	eng_close(e);
	th_cleanup(dir);
}

static void test_read_only(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	eng *e = th_open(dir, NULL);
	struct eng_range_res res;

	(void)state;
	th_put(e, "a", "1");
	eng_close(e);
	eng_options_init(&o);
	o.read_only = true;
	e = th_open(dir, &o);
	assert_string_equal(th_get(e, "a", 0), "1");
	assert_int_equal(eng_put(e, "a", 1, "2", 1, 0, NULL, NULL),
	                 ENG_E_READ_ONLY);
	assert_int_equal(eng_delete(e, "a", 1, NULL, 0, NULL, NULL),
	                 ENG_E_READ_ONLY);
	assert_int_equal(eng_compact(e, 2, false), ENG_E_READ_ONLY);
	assert_int_equal(th_range(e, "a", "b", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 1);
	eng_range_res_release(&res);
	eng_close(e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alarm_and_recovery),
	    cmocka_unit_test(test_alarm_at_open),
	    cmocka_unit_test(test_read_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
