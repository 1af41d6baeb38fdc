/*
 * test_kv.c — the engine's key-value semantics (SPEC.md §1) on the local
 * backend: revisions, generations, ranges (count, more, limits, keys-only,
 * delimiter), errors at past and future revisions, txns (compares on
 * missing keys, own writes, DUP_KEY, no-op txns), value limit, reopen,
 * NOT_STORE / LOCKED, snapshots, history and concurrent group commit.
 */
#include "engine_helpers.h"

#include <leveldb/c.h>

#include "engine/codec.h"

#include <pthread.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static void test_generations(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_kv kv;

	(void)state;
	assert_int_equal(eng_current_rev(e), 1);
	assert_int_equal(th_put(e, "a", "1"), 2);
	assert_int_equal(th_put(e, "a", "2"), 3);
	assert_int_equal(eng_get(e, "a", 1, 0, NULL, &kv), 0);
	assert_int_equal(kv.create_rev, 2);
	assert_int_equal(kv.mod_rev, 3);
	assert_int_equal(kv.version, 2);
	assert_int_equal(kv.value_len, 1);
	assert_memory_equal(kv.value, "2", 1);
	eng_kv_release(&kv);
	assert_int_equal(th_del(e, "a", NULL, 1), 4);
	assert_null(th_get(e, "a", 0));
	/* A new generation: create_rev moves, version restarts at 1. */
	assert_int_equal(th_put(e, "a", "3"), 5);
	assert_int_equal(eng_get(e, "a", 1, 0, NULL, &kv), 0);
	assert_int_equal(kv.create_rev, 5);
	assert_int_equal(kv.version, 1);
	eng_kv_release(&kv);
	/* Old revisions still read. */
	assert_string_equal(th_get(e, "a", 2), "1");
	assert_string_equal(th_get(e, "a", 3), "2");
	assert_null(th_get(e, "a", 4));
	assert_int_equal(eng_get(e, "a", 1, 3, NULL, &kv), 0);
	assert_int_equal(kv.create_rev, 2);
	assert_int_equal(kv.version, 2);
	eng_kv_release(&kv);
	/* Deleting what is not there takes no revision. */
	assert_int_equal(th_del(e, "nope", NULL, 0), 5);
	assert_int_equal(th_del(e, "x", "y", 0), 5);
	assert_int_equal(eng_current_rev(e), 5);
	eng_close(e);
	th_cleanup(dir);
}

static void put_keys(eng *e, const char *fmt, int n)
{
	char k[64];

	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), fmt, i);
		th_put(e, k, k);
	}
}

static void test_range_count_more(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_range_res res;
	eng_rev_t mid;

	(void)state;
	put_keys(e, "k%02d", 10);
	th_put(e, "z", "z");
	mid = eng_current_rev(e);
	th_put(e, "k10", "x");
	th_del(e, "k00", NULL, 1);

	/* At the current revision: [k, l) has k01..k10 = 10 keys. */
	assert_int_equal(th_range(e, "k", "l", 0, 3, ENG_RANGE_COUNT, &res), 0);
	assert_int_equal(res.n, 3);
	assert_true(res.more);
	assert_int_equal(res.count, 10);
	assert_memory_equal(res.kvs[0].key, "k01", 3);
	assert_memory_equal(res.kvs[2].key, "k03", 3);
	assert_int_equal(res.header_rev, eng_current_rev(e));
	eng_range_res_release(&res);
	/* count is -1 when neither asked for nor cheap. */
	assert_int_equal(th_range(e, "k", "l", 0, 3, 0, &res), 0);
	assert_int_equal(res.count, -1);
	assert_true(res.more);
	eng_range_res_release(&res);
	/* Whole range returned: count is cheap. */
	assert_int_equal(th_range(e, "k", "l", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 10);
	assert_false(res.more);
	assert_int_equal(res.count, 10);
	eng_range_res_release(&res);
	/* limit == number of matches: no more. */
	assert_int_equal(th_range(e, "k", "l", 0, 10, 0, &res), 0);
	assert_int_equal(res.n, 10);
	assert_false(res.more);
	eng_range_res_release(&res);
	/* The whole keyspace: count from the live-key counter. */
	{
		struct eng_range_req all = {.key = "",
		                            .key_len = 1,
		                            .end = "",
		                            .end_len = 1,
		                            .limit = 1};

		assert_int_equal(eng_range(e, &all, &res), 0);
	}
	assert_int_equal(res.n, 1);
	assert_true(res.more);
	assert_int_equal(res.count, 11);
	eng_range_res_release(&res);
	/* Keys only, count only. */
	assert_int_equal(th_range(e, "k", "l", 0, 0, ENG_RANGE_KEYS_ONLY, &res),
	                 0);
	assert_null(res.kvs[0].value);
	assert_int_equal(res.kvs[0].version, 1);
	eng_range_res_release(&res);
	assert_int_equal(
	    th_range(e, "k", "l", 0, 2, ENG_RANGE_COUNT_ONLY, &res), 0);
	assert_int_equal(res.n, 0);
	assert_int_equal(res.count, 10);
	assert_false(res.more);
	eng_range_res_release(&res);
	/* From a key to the end ("\0"). */
	assert_int_equal(th_range(e, "k05", "", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 7); /* k05..k10, z */
	eng_range_res_release(&res);
	/* An end <= key matches nothing. */
	assert_int_equal(th_range(e, "k05", "k01", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 0);
	eng_range_res_release(&res);

	/* At an older revision: k00..k09, no k10. */
	assert_int_equal(th_range(e, "k", "l", mid, 4, ENG_RANGE_COUNT, &res),
	                 0);
	assert_int_equal(res.n, 4);
	assert_true(res.more);
	assert_int_equal(res.count, 10);
	assert_memory_equal(res.kvs[0].key, "k00", 3);
	assert_int_equal(res.header_rev, eng_current_rev(e));
	eng_range_res_release(&res);
	assert_int_equal(th_range(e, "k", "l", mid, 0, 0, &res), 0);
	assert_int_equal(res.n, 10);
	assert_int_equal(res.count, 10);
	assert_false(res.more);
	assert_memory_equal(res.kvs[9].key, "k09", 3);
	eng_range_res_release(&res);
	eng_close(e);
	th_cleanup(dir);
}

static void test_rev_errors(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_range_res res;
	eng_rev_t r2, r3;

	(void)state;
	th_put(e, "a", "1");
	r2 = th_put(e, "a", "2");
	r3 = th_put(e, "a", "3");
	assert_int_equal(th_range(e, "a", NULL, r3 + 1, 0, 0, &res),
	                 ENG_E_FUTURE_REV);
	eng_range_res_release(&res);
	assert_int_equal(eng_compact(e, r2, true), 0);
	assert_int_equal(eng_compact_rev(e), r2);
	assert_int_equal(th_range(e, "a", NULL, r2 - 1, 0, 0, &res),
	                 ENG_E_COMPACTED);
	eng_range_res_release(&res);
	/* Exactly at the compaction revision still reads. */
	assert_string_equal(th_get(e, "a", r2), "2");
	assert_int_equal(eng_compact(e, r2, false), ENG_E_COMPACTED);
	assert_int_equal(eng_compact(e, r3 + 1, false), ENG_E_FUTURE_REV);
	/* Logical at once: without waiting for the physical pass, a read
	 * below the new compaction revision fails from the return on. */
	assert_int_equal(eng_compact(e, r3, false), 0);
	assert_int_equal(eng_compact_rev(e), r3);
	assert_int_equal(th_range(e, "a", NULL, r2, 0, 0, &res),
	                 ENG_E_COMPACTED);
	eng_range_res_release(&res);
	assert_string_equal(th_get(e, "a", r3), "3");
	/* Compacting at the current revision is allowed (etcd's). */
	assert_int_equal(eng_current_rev(e), r3);
	eng_close(e);
	th_cleanup(dir);
}

static void test_delimiter(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	const char *want[] = {"a/b/", "a/c", "a/d/", "a/e"};
	struct eng_range_req req = {
	    .key = "a/",
	    .key_len = 2,
	    .end = "a0",
	    .end_len = 2,
	    .delim = '/',
	    .prefix_len = 2,
	};
	struct eng_range_res res;
	eng_rev_t old;

	(void)state;
	th_put(e, "a/b/1", "");
	th_put(e, "a/b/2", "");
	th_put(e, "a/c", "");
	th_put(e, "a/d/x/y", "");
	th_put(e, "a/e", "");
	th_put(e, "a/f/1", "");
	old = eng_current_rev(e);
	th_del(e, "a/f/1", NULL, 1);
	th_put(e, "b", "");
	for (int pass = 0; pass < 2; pass++) {
		req.rev = pass ? old : 0;
		req.limit = 0;
		assert_int_equal(eng_range(e, &req, &res), 0);
		assert_int_equal(res.n, pass ? 5 : 4);
		for (size_t i = 0; i < 4; i++) {
			assert_int_equal(res.kvs[i].key_len, strlen(want[i]));
			assert_memory_equal(res.kvs[i].key, want[i],
			                    strlen(want[i]));
			assert_int_equal(res.kvs[i].is_prefix,
			                 want[i][strlen(want[i]) - 1] == '/');
		}
		assert_int_equal(res.count, (int64_t)res.n);
		eng_range_res_release(&res);
		/* limit counts entries; more is set, count unknown. */
		req.limit = 2;
		assert_int_equal(eng_range(e, &req, &res), 0);
		assert_int_equal(res.n, 2);
		assert_true(res.more);
		assert_int_equal(res.count, -1);
		eng_range_res_release(&res);
	}
	eng_close(e);
	th_cleanup(dir);
}

static int run_txn(eng *e, const struct eng_cmp *c, size_t nc,
                   const struct eng_op *ok, size_t nok, struct eng_txn_res *res)
{
	struct eng_txn t = {
	    .cmps = c,
	    .ncmps = nc,
	    .success = ok,
	    .nsuccess = nok,
	};

	return eng_txn(e, &t, res);
}

/* Does `key target result operand` hold (a txn with that one compare)? */
static bool cmp_key_holds(eng *e, const char *key, enum eng_cmp_target target,
                          enum eng_cmp_result result, int64_t number,
                          const char *value, size_t value_len)
{
	struct eng_cmp c = {
	    .key = key,
	    .key_len = strlen(key),
	    .target = target,
	    .result = result,
	    .number = number,
	    .value = value,
	    .value_len = value_len,
	};
	struct eng_txn_res res;
	bool ok;

	assert_int_equal(run_txn(e, &c, 1, NULL, 0, &res), 0);
	ok = res.succeeded;
	eng_txn_res_release(&res);
	return ok;
}

/* Does `missing target result operand` hold? */
static bool cmp_holds(eng *e, enum eng_cmp_target target,
                      enum eng_cmp_result result, int64_t number,
                      const char *value)
{
	return cmp_key_holds(e, "missing", target, result, number, value,
	                     value ? strlen(value) : 0);
}

static void test_txn_compares_missing(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_cmp c = {
	    .key = "r",
	    .key_len = 1,
	    .end = "s",
	    .end_len = 1,
	    .target = ENG_CMP_VERSION,
	    .result = ENG_CMP_GT,
	    .number = 0,
	};
	struct eng_txn_res res;

	(void)state;
	assert_false(cmp_holds(e, ENG_CMP_VALUE, ENG_CMP_EQ, 0, ""));
	assert_false(cmp_holds(e, ENG_CMP_VALUE, ENG_CMP_NE, 0, "x"));
	assert_true(cmp_holds(e, ENG_CMP_VERSION, ENG_CMP_EQ, 0, NULL));
	assert_true(cmp_holds(e, ENG_CMP_CREATE, ENG_CMP_LT, 1, NULL));
	assert_true(cmp_holds(e, ENG_CMP_MOD, ENG_CMP_EQ, 0, NULL));
	assert_true(cmp_holds(e, ENG_CMP_LEASE, ENG_CMP_EQ, 0, NULL));
	assert_false(cmp_holds(e, ENG_CMP_VERSION, ENG_CMP_GT, 0, NULL));
	/* A range compare: every key must hold. */
	th_put(e, "r1", "v");
	th_put(e, "r2", "v");
	assert_int_equal(run_txn(e, &c, 1, NULL, 0, &res), 0);
	assert_true(res.succeeded);
	eng_txn_res_release(&res);
	c.target = ENG_CMP_VALUE;
	c.result = ENG_CMP_EQ;
	c.value = "v";
	c.value_len = 1;
	assert_int_equal(run_txn(e, &c, 1, NULL, 0, &res), 0);
	assert_true(res.succeeded);
	eng_txn_res_release(&res);
	th_put(e, "r3", "w");
	assert_int_equal(run_txn(e, &c, 1, NULL, 0, &res), 0);
	assert_false(res.succeeded);
	eng_txn_res_release(&res);
	eng_close(e);
	th_cleanup(dir);
}

/*
 * Every target with every operator on an existing key, against an operand
 * below, equal to and above the key's own value: `actual OP operand`, as
 * etcd's Compare (values bytewise, unsigned, a prefix sorting first).
 */
static void test_txn_compare_targets(void **state)
{
	static const enum eng_cmp_result ops[] = {ENG_CMP_EQ, ENG_CMP_NE,
	                                          ENG_CMP_LT, ENG_CMP_GT};
	/* expected[op][below, equal, above] */
	static const bool want[4][3] = {
	    {false, true, false}, /* = */
	    {true, false, true},  /* != */
	    {false, false, true}, /* < : actual < operand */
	    {true, false, false}, /* > */
	};
	/* operands for the value "m": where = -1 below, 0 equal, 1 above */
	static const struct {
		const char *v;
		int where;
	} vals[] = {{"", -1}, {"l", -1}, {"m", 0}, {"ma", 1}, {"\x80", 1}};
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	eng_rev_t create, mod;
	eng_lease_t lease;
	int64_t actual[5] = {0};

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, 600, NULL, &lease), 0);
	th_put(e, "other", "x");
	create = th_put(e, "k", "m");
	th_put(e, "other", "y");
	assert_int_equal(eng_put(e, "k", 1, "m", 1, lease, &mod, NULL), 0);
	actual[ENG_CMP_VERSION] = 2;
	actual[ENG_CMP_CREATE] = create;
	actual[ENG_CMP_MOD] = mod;
	actual[ENG_CMP_LEASE] = lease;
	for (int t = ENG_CMP_VERSION; t <= ENG_CMP_LEASE; t++) {
		if (t == ENG_CMP_VALUE)
			continue;
		for (int o = 0; o < 4; o++)
			for (int d = -1; d <= 1; d++) {
				bool got = cmp_key_holds(
				    e, "k", (enum eng_cmp_target)t, ops[o],
				    actual[t] + d, NULL, 0);

				if (got != want[o][d + 1])
					fprintf(stderr,
					        "target %d op %d operand "
					        "%+d: %d\n",
					        t, o, d, got);
				assert_int_equal(got, want[o][d + 1]);
			}
	}
	/* Values, bytewise and unsigned: "" < "l" < "m" < "ma" < "\x80". */
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		for (int o = 0; o < 4; o++)
			assert_int_equal(cmp_key_holds(e, "k", ENG_CMP_VALUE,
			                               ops[o], 0, vals[i].v,
			                               strlen(vals[i].v)),
			                 want[o][vals[i].where + 1]);
	/* None of the compares took a revision. */
	assert_int_equal(eng_current_rev(e), mod);
	eng_close(e);
	th_cleanup(dir);
}

static void test_txn_own_writes(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_op ops[] = {
	    {.type = ENG_OP_PUT,
	     .key = "t1",
	     .key_len = 2,
	     .value = "new",
	     .value_len = 3},
	    {.type = ENG_OP_RANGE,
	     .key = "t",
	     .key_len = 1,
	     .end = "u",
	     .end_len = 1,
	     .flags = ENG_RANGE_COUNT},
	    {.type = ENG_OP_DELETE,
	     .key = "t0",
	     .key_len = 2,
	     .flags = ENG_DEL_PREV_KV},
	    {.type = ENG_OP_RANGE,
	     .key = "t",
	     .key_len = 1,
	     .end = "u",
	     .end_len = 1},
	};
	struct eng_txn_res res;
	eng_rev_t before;

	(void)state;
	th_put(e, "t0", "old");
	before = eng_current_rev(e);
	assert_int_equal(run_txn(e, NULL, 0, ops, 4, &res), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.header_rev, before + 1);
	assert_int_equal(res.nres, 4);
	assert_int_equal(res.res[1].range.n, 2);
	assert_int_equal(res.res[1].range.count, 2);
	assert_int_equal(res.res[1].range.header_rev, before + 1);
	assert_int_equal(res.res[1].range.kvs[1].mod_rev, before + 1);
	assert_memory_equal(res.res[1].range.kvs[1].value, "new", 3);
	assert_int_equal(res.res[2].deleted, 1);
	assert_int_equal(res.res[2].nprev, 1);
	assert_memory_equal(res.res[2].prev_kvs[0].value, "old", 3);
	assert_int_equal(res.res[3].range.n, 1);
	assert_memory_equal(res.res[3].range.kvs[0].key, "t1", 2);
	eng_txn_res_release(&res);
	/* One revision for the whole txn. */
	assert_int_equal(eng_current_rev(e), before + 1);
	eng_close(e);
	th_cleanup(dir);
}

static void test_txn_dup_and_noop(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_op pp[] = {
	    {.type = ENG_OP_PUT, .key = "a", .key_len = 1},
	    {.type = ENG_OP_PUT, .key = "a", .key_len = 1},
	};
	struct eng_op pd[] = {
	    {.type = ENG_OP_PUT, .key = "ab", .key_len = 2},
	    {.type = ENG_OP_DELETE,
	     .key = "a",
	     .key_len = 1,
	     .end = "b",
	     .end_len = 1},
	};
	struct eng_op dd[] = {
	    {.type = ENG_OP_DELETE, .key = "a", .key_len = 1},
	    {.type = ENG_OP_DELETE,
	     .key = "a",
	     .key_len = 1,
	     .end = "b",
	     .end_len = 1},
	};
	struct eng_op rd[] = {
	    {.type = ENG_OP_RANGE, .key = "a", .key_len = 1},
	};
	struct eng_txn_res res;
	eng_rev_t rev;

	(void)state;
	assert_int_equal(run_txn(e, NULL, 0, pp, 2, &res), ENG_E_DUP_KEY);
	eng_txn_res_release(&res);
	assert_int_equal(run_txn(e, NULL, 0, pd, 2, &res), ENG_E_DUP_KEY);
	eng_txn_res_release(&res);
	rev = eng_current_rev(e);
	/* Two deletes of one key are allowed; nothing there: no revision. */
	assert_int_equal(run_txn(e, NULL, 0, dd, 2, &res), 0);
	assert_int_equal(res.header_rev, rev);
	eng_txn_res_release(&res);
	th_put(e, "a", "1");
	th_put(e, "aa", "1");
	rev = eng_current_rev(e);
	assert_int_equal(run_txn(e, NULL, 0, dd, 2, &res), 0);
	assert_int_equal(res.header_rev, rev + 1);
	assert_int_equal(res.res[0].deleted, 1);
	assert_int_equal(res.res[1].deleted, 1);
	eng_txn_res_release(&res);
	/* A read-only txn takes no revision. */
	rev = eng_current_rev(e);
	assert_int_equal(run_txn(e, NULL, 0, rd, 1, &res), 0);
	assert_int_equal(res.header_rev, rev);
	eng_txn_res_release(&res);
	assert_int_equal(eng_current_rev(e), rev);
	eng_close(e);
	th_cleanup(dir);
}

static void test_put_flags_and_limits(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	eng *e;
	struct eng_op op = {.type = ENG_OP_PUT,
	                    .key = "p",
	                    .key_len = 1,
	                    .flags = ENG_PUT_IGNORE_VALUE};
	struct eng_txn_res res;
	struct eng_kv prev;
	char big[101];

	(void)state;
	eng_options_init(&o);
	o.max_value = 100;
	e = th_open(dir, &o);
	memset(big, 'x', sizeof(big));
	assert_int_equal(eng_put(e, "b", 1, big, 101, 0, NULL, NULL),
	                 ENG_E_TOO_LARGE);
	assert_int_equal(eng_put(e, "b", 1, big, 100, 0, NULL, NULL), 0);
	/* IGNORE_VALUE on a missing key: etcd's key-not-found. */
	assert_int_equal(run_txn(e, NULL, 0, &op, 1, &res),
	                 ENG_E_KEY_NOT_FOUND);
	eng_txn_res_release(&res);
	th_put(e, "p", "keep");
	assert_int_equal(run_txn(e, NULL, 0, &op, 1, &res), 0);
	eng_txn_res_release(&res);
	assert_string_equal(th_get(e, "p", 0), "keep");
	/* prev kv. */
	assert_int_equal(eng_put(e, "p", 1, "n", 1, 0, NULL, &prev), 0);
	assert_int_equal(prev.version, 2);
	assert_int_equal(prev.value_len, 4);
	assert_memory_equal(prev.value, "keep", 4);
	eng_kv_release(&prev);
	assert_int_equal(eng_put(e, "q", 1, "n", 1, 0, NULL, &prev), 0);
	assert_int_equal(prev.mod_rev, 0);
	eng_kv_release(&prev);
	/* A missing lease. */
	assert_int_equal(eng_put(e, "q", 1, "n", 1, 77, NULL, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	/* Empty key. */
	assert_int_equal(eng_put(e, "", 0, "n", 1, 0, NULL, NULL), ENG_E_INVAL);
	eng_close(e);
	th_cleanup(dir);
}

/* The engine's own defaults (etcd's): values up to 1,572,864 bytes, a
 * quota of 2 GiB. */
static void test_default_limits(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	struct eng_stats st;
	eng *e;
	char *v;

	(void)state;
	eng_options_init(&o);
	assert_int_equal(o.max_value, 1572864);
	assert_int_equal(o.quota_bytes, 2ULL << 30);
	o.max_value = 0; /* 0 means the default too */
	o.quota_bytes = 0;
	e = th_open(dir, &o);
	v = malloc(1572865);
	assert_non_null(v);
	memset(v, 'v', 1572865);
	assert_int_equal(eng_put(e, "big", 3, v, 1572865, 0, NULL, NULL),
	                 ENG_E_TOO_LARGE);
	assert_int_equal(eng_current_rev(e), 1);
	assert_int_equal(eng_put(e, "big", 3, v, 1572864, 0, NULL, NULL), 0);
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_int_equal(st.quota_bytes, 2ULL << 30);
	assert_false(st.alarm_nospace);
	free(v);
	eng_close(e);
	th_cleanup(dir);
}

static void test_arg_checks(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	static struct eng_op many[1025];
	struct eng_op op = {.type = ENG_OP_PUT, .key = "k", .key_len = 1};
	struct eng_txn t = {.success = many, .nsuccess = 1025};
	struct eng_range_req rq = {.key = "k", .key_len = 1};
	struct eng_range_res rr;
	struct eng_txn_res res;
	eng_lease_t id;
	eng_rev_t rev = eng_current_rev(e);

	(void)state;
	for (int i = 0; i < 1025; i++)
		many[i] = (struct eng_op){
		    .type = ENG_OP_RANGE, .key = "k", .key_len = 1};
	assert_int_equal(eng_txn(e, &t, &res), ENG_E_TOO_MANY_OPS);
	t.nsuccess = 1024;
	assert_int_equal(eng_txn(e, &t, &res), 0);
	eng_txn_res_release(&res);
	/* etcd's ValueProvided / LeaseProvided. */
	op.flags = ENG_PUT_IGNORE_VALUE;
	op.value = "v";
	op.value_len = 1;
	t = (struct eng_txn){.success = &op, .nsuccess = 1};
	assert_int_equal(eng_txn(e, &t, &res), ENG_E_INVAL);
	op.flags = ENG_PUT_IGNORE_LEASE;
	op.lease = 5;
	assert_int_equal(eng_txn(e, &t, &res), ENG_E_INVAL);
	/* Ranges. */
	rq.limit = -1;
	assert_int_equal(eng_range(e, &rq, &rr), ENG_E_INVAL);
	rq.limit = 0;
	rq.end_len = 3; /* end NULL with a length */
	assert_int_equal(eng_range(e, &rq, &rr), ENG_E_INVAL);
	rq.end_len = 0;
	rq.key_len = 0;
	assert_int_equal(eng_range(e, &rq, &rr), ENG_E_INVAL);
	assert_int_equal(rr.count, -1);
	assert_int_equal(eng_history(e, "", 0, 0, 0, &rr), ENG_E_INVAL);
	assert_int_equal(eng_compact(e, 0, false), ENG_E_INVAL);
	assert_int_equal(eng_lease_grant(e, 0, 0, NULL, &id), ENG_E_TTL);
	/* Nothing above took a revision. */
	assert_int_equal(eng_current_rev(e), rev);
	assert_string_equal(eng_strerror(ENG_E_KEY_NOT_FOUND), "key not found");
	assert_string_equal(eng_strerror(12345), "unknown error");
	eng_close(e);
	th_cleanup(dir);
}

static void test_reopen(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_stats st;
	eng_rev_t rev;
	struct stat sb;

	(void)state;
	put_keys(e, "r%03d", 50);
	th_del(e, "r007", NULL, 1);
	rev = eng_current_rev(e);
	eng_close(e);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	e = th_open(dir, NULL);
	assert_int_equal(eng_current_rev(e), rev);
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_int_equal(st.keys, 49);
	assert_string_equal(th_get(e, "r010", 0), "r010");
	assert_null(th_get(e, "r007", 0));
	assert_string_equal(th_get(e, "r007", rev - 1), "r007");
	assert_int_equal(th_put(e, "x", "y"), rev + 1);
	eng_close(e);
	th_cleanup(dir);
}

static void test_not_store_and_locked(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	eng *e = NULL;
	char *f;
	FILE *fp;
	pid_t pid;
	int status, fds[2], child_rc = 0;

	(void)state;
	eng_options_init(&o);
	o.create = false;
	assert_int_equal(eng_open(dir, &o, &e), ENG_E_NOT_STORE);
	assert_null(e);
	/* A non-empty directory that is not a store. */
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_true(asprintf(&f, "%s/file", dir) > 0);
	fp = fopen(f, "w");
	assert_non_null(fp);
	fputs("hello", fp);
	fclose(fp);
	assert_int_equal(eng_open(dir, NULL, &e), ENG_E_NOT_STORE);
	/* A regular file where the directory should be. */
	assert_int_equal(eng_open(f, NULL, &e), ENG_E_NOT_STORE);
	assert_null(e);
	unlink(f);
	free(f);
	/* Locked by another process. */
	e = th_open(dir, NULL);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		eng *e2 = NULL;
		int rc = eng_open(dir, NULL, &e2);

		/* Report, then die without exit-time checks (the child
		 * holds the parent's copies of everything). */
		if (write(fds[1], &rc, sizeof(rc)) != sizeof(rc))
			rc = 0;
		kill(getpid(), SIGKILL);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &child_rc, sizeof(child_rc)),
	                 sizeof(child_rc));
	close(fds[0]);
	assert_int_equal(child_rc, ENG_E_LOCKED);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	eng_close(e);
	th_cleanup(dir);
}

/* Write one raw record into a LevelDB at dir (creating it). */
static void raw_put(const char *dir, const char *k, const void *v, size_t vn)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	char *err = NULL;
	leveldb_t *db;

	leveldb_options_set_create_if_missing(o, 1);
	db = leveldb_open(o, dir, &err);
	assert_null(err);
	leveldb_put(db, wo, k, strlen(k), v, vn, &err);
	assert_null(err);
	leveldb_close(db);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
}

static void test_foreign_and_newer_stores(void **state)
{
	char *dir = th_tmpdir();
	eng *e = NULL;

	(void)state;
	/* Some other program's LevelDB. */
	raw_put(dir, "user:1", "x", 1);
	assert_int_equal(eng_open(dir, NULL, &e), ENG_E_NOT_STORE);
	assert_null(e);
	th_cleanup(dir);

	/* A store written by a newer revfs. */
	dir = th_tmpdir();
	e = th_open(dir, NULL);
	eng_close(e);
	raw_put(dir, "Mmagic", "revfs-store\0\0\0\x63", 15);
	assert_int_equal(eng_open(dir, NULL, &e), ENG_E_VERSION);
	th_cleanup(dir);
}

static void test_snapshot_and_history(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_range_res res;
	struct eng_range_req req = {.key = "h", .key_len = 1};
	eng_snap *s;
	eng_rev_t r1;

	(void)state;
	r1 = th_put(e, "h", "1");
	th_put(e, "h", "2");
	assert_int_equal(eng_snap_open(e, &s), 0);
	assert_int_equal(eng_snap_rev(s), r1 + 1);
	th_put(e, "h", "3");
	th_del(e, "h", NULL, 1);
	th_put(e, "h", "5");
	req.snap = s;
	assert_int_equal(eng_range(e, &req, &res), 0);
	assert_int_equal(res.n, 1);
	assert_memory_equal(res.kvs[0].value, "2", 1);
	assert_int_equal(res.header_rev, r1 + 1);
	eng_range_res_release(&res);
	req.rev = r1 + 2;
	assert_int_equal(eng_range(e, &req, &res), ENG_E_FUTURE_REV);
	eng_range_res_release(&res);
	eng_snap_release(e, s);

	assert_int_equal(eng_history(e, "h", 1, 0, 0, &res), 0);
	assert_int_equal(res.n, 5);
	assert_int_equal(res.kvs[0].mod_rev, r1);
	assert_true(res.kvs[3].deleted);
	assert_null(res.kvs[3].value);
	assert_memory_equal(res.kvs[4].value, "5", 1);
	eng_range_res_release(&res);
	assert_int_equal(eng_history(e, "h", 1, r1 + 1, 2, &res), 0);
	assert_int_equal(res.n, 2);
	assert_true(res.more);
	assert_int_equal(res.kvs[0].mod_rev, r1 + 1);
	eng_range_res_release(&res);
	eng_close(e);
	th_cleanup(dir);
}

static void test_sync_modes_and_stats(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	struct eng_stats st;
	struct timespec ts = {0, 300000000};
	eng *e;

	(void)state;
	eng_options_init(&o);
	o.sync = ENG_SYNC_NONE;
	e = th_open(dir, &o);
	for (int i = 0; i < 10; i++)
		th_put(e, "s", "v");
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_int_equal(st.fsyncs, 0);
	assert_int_equal(st.commits, 10);
	assert_int_equal(st.txn.count, 10);
	assert_int_equal(st.txn.errors, 0);
	/* Cumulative buckets: each holds at least the one before. */
	for (int i = 1; i < ENG_LAT_BUCKETS; i++)
		assert_true(st.txn.buckets[i] >= st.txn.buckets[i - 1]);
	assert_int_equal(st.txn.buckets[ENG_LAT_BUCKETS - 1], 10);
	eng_close(e);

	/* Interval: the background thread syncs what is pending. */
	o.sync = ENG_SYNC_INTERVAL;
	o.sync_interval_ms = 50;
	e = th_open(dir, &o);
	th_put(e, "s", "v");
	th_put(e, "s", "v");
	/* Within a few intervals; a loaded machine may take longer (5 s). */
	for (int i = 0; i < 17; i++) {
		nanosleep(&ts, NULL);
		assert_int_equal(eng_stats_get(e, &st), 0);
		if (st.fsyncs >= 1)
			break;
	}
	assert_true(st.fsyncs >= 1);
	assert_true(st.fsyncs <= 3);
	assert_int_equal(st.rev, 13);
	assert_int_equal(st.keys, 1);
	eng_close(e);
	th_cleanup(dir);
}

#define NTHREADS 8
#define NPUTS    100

struct putter {
	eng *e;
	int id;
	eng_rev_t revs[NPUTS];
};

static void *putter_main(void *arg)
{
	struct putter *p = arg;
	char k[32];

	for (int i = 0; i < NPUTS; i++) {
		snprintf(k, sizeof(k), "c%d/%d", p->id, i);
		if (eng_put(p->e, k, strlen(k), k, strlen(k), 0, &p->revs[i],
		            NULL))
			p->revs[i] = -1;
	}
	return NULL;
}

static int rev_cmp(const void *a, const void *b)
{
	eng_rev_t x = *(const eng_rev_t *)a, y = *(const eng_rev_t *)b;

	return x < y ? -1 : x > y;
}

static void test_concurrent_group_commit(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	static struct putter p[NTHREADS];
	static eng_rev_t all[NTHREADS * NPUTS];
	pthread_t t[NTHREADS];
	struct eng_stats st;

	(void)state;
	for (int i = 0; i < NTHREADS; i++) {
		p[i].e = e;
		p[i].id = i;
		assert_int_equal(
		    pthread_create(&t[i], NULL, putter_main, &p[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		memcpy(all + i * NPUTS, p[i].revs, sizeof(p[i].revs));
	}
	qsort(all, NTHREADS * NPUTS, sizeof(all[0]), rev_cmp);
	/* Unique and gap-free: 2 .. 1 + N. */
	for (int i = 0; i < NTHREADS * NPUTS; i++)
		assert_int_equal(all[i], i + 2);
	assert_int_equal(eng_current_rev(e), NTHREADS * NPUTS + 1);
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_int_equal(st.keys, NTHREADS * NPUTS);
	/* Group commit shared writes; the default sync mode synced every
	 * group before its writers returned (durable on return). */
	assert_true(st.commits < NTHREADS * NPUTS);
	assert_int_equal(st.fsyncs, st.commits);
	eng_close(e);
	th_cleanup(dir);
}

/* Compare-and-swap increments from many threads: later txns of a group
 * must see the earlier ones (the overlay), or increments get lost. */
#define CAS_THREADS 8
#define CAS_INCS    40

static void *cas_main(void *arg)
{
	eng *e = arg;

	for (int done = 0; done < CAS_INCS;) {
		struct eng_kv kv;
		char v[32];
		long n = 0;

		if (eng_get(e, "ctr", 3, 0, NULL, &kv))
			return (void *)1;
		if (kv.mod_rev) {
			memcpy(v, kv.value, kv.value_len);
			v[kv.value_len] = 0;
			n = atol(v);
		}
		{
			struct eng_cmp c = {.key = "ctr",
			                    .key_len = 3,
			                    .target = ENG_CMP_MOD,
			                    .result = ENG_CMP_EQ,
			                    .number = kv.mod_rev};
			struct eng_op op = {.type = ENG_OP_PUT,
			                    .key = "ctr",
			                    .key_len = 3,
			                    .value = v};
			struct eng_txn t = {.cmps = &c,
			                    .ncmps = 1,
			                    .success = &op,
			                    .nsuccess = 1};
			struct eng_txn_res res;

			snprintf(v, sizeof(v), "%ld", n + 1);
			op.value_len = strlen(v);
			if (eng_txn(e, &t, &res))
				return (void *)1;
			done += res.succeeded;
			eng_txn_res_release(&res);
		}
		eng_kv_release(&kv);
	}
	return NULL;
}

static void test_cas_counter(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	pthread_t t[CAS_THREADS];
	struct eng_kv kv;
	char want[32];

	(void)state;
	for (int i = 0; i < CAS_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cas_main, e), 0);
	for (int i = 0; i < CAS_THREADS; i++) {
		void *rv;

		pthread_join(t[i], &rv);
		assert_null(rv);
	}
	snprintf(want, sizeof(want), "%d", CAS_THREADS * CAS_INCS);
	assert_string_equal(th_get(e, "ctr", 0), want);
	assert_int_equal(eng_get(e, "ctr", 3, 0, NULL, &kv), 0);
	assert_int_equal(kv.version, CAS_THREADS * CAS_INCS);
	eng_kv_release(&kv);
	/* Failed compares took no revision. */
	assert_int_equal(eng_current_rev(e), 1 + CAS_THREADS * CAS_INCS);
	eng_close(e);
	th_cleanup(dir);
}

/*
 * Txns from many threads that delete-range their own prefix, put two keys
 * and range over everything: within a group commit each txn must see the
 * earlier txns of its group through the overlay, merged into LevelDB's
 * order, and never half of another txn.
 */
#define OV_THREADS 8
#define OV_ITERS   30

static void *overlay_main(void *arg)
{
	eng *e = ((void **)arg)[0];
	int id = (int)(intptr_t)((void **)arg)[1];
	char dfrom[8], dto[8], k1[16], k2[16];

	for (int i = 0; i < OV_ITERS; i++) {
		struct eng_op ops[4];
		struct eng_txn t = {.success = ops, .nsuccess = 4};
		struct eng_txn_res res;
		const struct eng_range_res *all;
		int per[OV_THREADS] = {0};
		char fam = i % 2 ? 'B' : 'A', other = i % 2 ? 'A' : 'B';

		/* Replace the other family of keys by this one (a put inside
		 * the delete-range would be etcd's DUP_KEY). */
		snprintf(dfrom, sizeof(dfrom), "g%d/%c", id, other);
		snprintf(dto, sizeof(dto), "g%d/%c", id, other + 1);
		snprintf(k1, sizeof(k1), "g%d/%c1", id, fam);
		snprintf(k2, sizeof(k2), "g%d/%c2", id, fam);
		ops[0] = (struct eng_op){.type = ENG_OP_DELETE,
		                         .key = dfrom,
		                         .key_len = strlen(dfrom),
		                         .end = dto,
		                         .end_len = strlen(dto)};
		ops[1] = (struct eng_op){.type = ENG_OP_PUT,
		                         .key = k1,
		                         .key_len = strlen(k1),
		                         .value = k1,
		                         .value_len = strlen(k1)};
		ops[2] = (struct eng_op){.type = ENG_OP_PUT,
		                         .key = k2,
		                         .key_len = strlen(k2),
		                         .value = "x",
		                         .value_len = 1};
		ops[3] = (struct eng_op){.type = ENG_OP_RANGE,
		                         .key = "g",
		                         .key_len = 1,
		                         .end = "h",
		                         .end_len = 1,
		                         .flags = ENG_RANGE_COUNT};
		if (eng_txn(e, &t, &res))
			return (void *)1;
		all = &res.res[3].range;
		if (res.res[0].deleted != (i ? 2 : 0) ||
		    all->count != (int64_t)all->n)
			return (void *)2;
		for (size_t j = 0; j < all->n; j++) {
			int who = all->kvs[j].key[1] - '0';

			if (who < 0 || who >= OV_THREADS ||
			    (j &&
			     codec_cmp(all->kvs[j - 1].key,
			               all->kvs[j - 1].key_len, all->kvs[j].key,
			               all->kvs[j].key_len) >= 0))
				return (void *)3;
			per[who]++;
		}
		for (int w = 0; w < OV_THREADS; w++)
			if (per[w] != 0 && per[w] != 2)
				return (void *)4;
		if (per[id] != 2)
			return (void *)5;
		eng_txn_res_release(&res);
	}
	return NULL;
}

static void test_group_overlay_ranges(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	pthread_t t[OV_THREADS];
	void *args[OV_THREADS][2];
	struct eng_range_res res;
	struct eng_stats st;

	(void)state;
	for (int i = 0; i < OV_THREADS; i++) {
		args[i][0] = e;
		args[i][1] = (void *)(intptr_t)i;
		assert_int_equal(
		    pthread_create(&t[i], NULL, overlay_main, args[i]), 0);
	}
	for (int i = 0; i < OV_THREADS; i++) {
		void *rv;

		pthread_join(t[i], &rv);
		if (rv)
			fprintf(stderr, "overlay thread %d: failure %ld\n", i,
			        (long)(intptr_t)rv);
		assert_null(rv);
	}
	assert_int_equal(th_range(e, "g", "h", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 2 * OV_THREADS);
	eng_range_res_release(&res);
	assert_int_equal(eng_current_rev(e), 1 + OV_THREADS * OV_ITERS);
	/* Groups did form, so the overlay was exercised. */
	assert_int_equal(eng_stats_get(e, &st), 0);
	assert_true(st.commits < OV_THREADS * OV_ITERS);
	eng_close(e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generations),
	    cmocka_unit_test(test_range_count_more),
	    cmocka_unit_test(test_rev_errors),
	    cmocka_unit_test(test_delimiter),
	    cmocka_unit_test(test_txn_compares_missing),
	    cmocka_unit_test(test_txn_compare_targets),
	    cmocka_unit_test(test_txn_own_writes),
	    cmocka_unit_test(test_txn_dup_and_noop),
	    cmocka_unit_test(test_put_flags_and_limits),
	    cmocka_unit_test(test_default_limits),
	    cmocka_unit_test(test_arg_checks),
	    cmocka_unit_test(test_reopen),
	    cmocka_unit_test(test_not_store_and_locked),
	    cmocka_unit_test(test_foreign_and_newer_stores),
	    cmocka_unit_test(test_snapshot_and_history),
	    cmocka_unit_test(test_sync_modes_and_stats),
	    cmocka_unit_test(test_concurrent_group_commit),
	    cmocka_unit_test(test_cas_counter),
	    cmocka_unit_test(test_group_overlay_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
