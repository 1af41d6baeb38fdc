/*
 * test_value_ref.c — values over the inline limit (REC_INLINE_MAX, 256
 * bytes) are written once, in their version record, and the latest index
 * holds a reference (docs/engine.md, "The latest index").  Every path that
 * returns or compares a current value must follow the reference: eng_get's
 * one-read path, ranges (with limits, keys-only, counts), txn compares on
 * VALUE (one key and a range), a txn's own reads, PREV_KV of puts and
 * deletes, IGNORE_VALUE; and the reference must survive compaction,
 * reopening, the consistency check, repair, a snapshot restore and the
 * upgrade of a format-1 store.  A reader racing puts and compactions never
 * sees a dangling reference.
 */
#include "engine_helpers.h"

#include <leveldb/c.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "engine/codec.h"
#include "engine/snapshot.h"

#define BIG 1000

/* A value of n bytes that names its seed: "seed|" then a pattern. */
static char *big_value(int seed, size_t n)
{
	char *v = malloc(n + 1);
	int h;

	assert_non_null(v);
	h = snprintf(v, n + 1, "%d|", seed);
	for (size_t i = (size_t)h; i < n; i++)
		v[i] = (char)('a' + (i * 31 + (size_t)seed) % 26);
	v[n] = 0;
	return v;
}

static void put_big(eng *e, const char *k, const char *v)
{
	assert_int_equal(eng_put(e, k, strlen(k), v, strlen(v), 0, NULL, NULL),
	                 0);
}

/* eng_get at the current revision (the one-read path) and at an explicit
 * one (the range path) both give want (NULL: missing). */
static void check_get(eng *e, const char *k, const char *want)
{
	const char *got = th_get(e, k, 0);

	if (!want) {
		assert_null(got);
	} else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
	got = th_get(e, k, eng_current_rev(e));
	if (!want)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

/* KEYS_ONLY | VALUE_LEN of a/ at rev: the four lengths test_reads wrote
 * (1,000 by reference, 5, 300 by reference, 256 inline), no values. */
static void check_lengths(eng *e, eng_rev_t rev)
{
	static const size_t want[] = {BIG, 5, 300, 256};
	struct eng_range_res res;

	assert_int_equal(th_range(e, "a/", "a0", rev, 0,
	                          ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN,
	                          &res),
	                 0);
	assert_int_equal(res.n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_null(res.kvs[i].value);
		assert_int_equal(res.kvs[i].value_len, want[i]);
	}
	eng_range_res_release(&res);
}

static void test_reads(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	char *b1 = big_value(1, BIG), *b2 = big_value(2, 300);
	char *b3 = big_value(3, 257), *edge = big_value(4, 256);
	struct eng_range_res res;
	eng_rev_t r4;

	(void)state;
	put_big(e, "a/1", b1);
	th_put(e, "a/2", "small");
	put_big(e, "a/3", b2);
	put_big(e, "a/4", edge); /* exactly the limit: inline */
	r4 = eng_current_rev(e);
	check_get(e, "a/1", b1);
	check_get(e, "a/2", "small");
	check_get(e, "a/3", b2);
	check_get(e, "a/4", edge);

	assert_int_equal(th_range(e, "a/", "a0", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.kvs[0].value_len, BIG);
	assert_memory_equal(res.kvs[0].value, b1, BIG);
	assert_memory_equal(res.kvs[1].value, "small", 5);
	assert_memory_equal(res.kvs[2].value, b2, 300);
	assert_memory_equal(res.kvs[3].value, edge, 256);
	eng_range_res_release(&res);

	/* A page ends before a reference: the next key is only counted. */
	assert_int_equal(th_range(e, "a/", "a0", 0, 1, ENG_RANGE_COUNT, &res),
	                 0);
	assert_int_equal(res.n, 1);
	assert_true(res.more);
	assert_int_equal(res.count, 4);
	assert_memory_equal(res.kvs[0].value, b1, BIG);
	eng_range_res_release(&res);
	assert_int_equal(
	    th_range(e, "a/3", NULL, 0, 0, ENG_RANGE_KEYS_ONLY, &res), 0);
	assert_int_equal(res.n, 1);
	assert_null(res.kvs[0].value);
	eng_range_res_release(&res);
	/* A listing's sizes: lengths without values, references unread. */
	check_lengths(e, 0);
	assert_int_equal(
	    th_range(e, "a/", "a0", 0, 0, ENG_RANGE_COUNT_ONLY, &res), 0);
	assert_int_equal(res.count, 4);
	eng_range_res_release(&res);

	/* big -> small -> big, and a deletion. */
	th_put(e, "a/1", "tiny");
	check_get(e, "a/1", "tiny");
	put_big(e, "a/1", b3);
	check_get(e, "a/1", b3);
	th_del(e, "a/3", NULL, 1);
	check_get(e, "a/3", NULL);
	/* Lengths at an older revision come from the versions (`k`). */
	check_lengths(e, r4);
	/* The old versions are still there, through history. */
	assert_int_equal(eng_history(e, "a/1", 3, 0, 0, &res), 0);
	assert_int_equal(res.n, 3);
	assert_memory_equal(res.kvs[0].value, b1, BIG);
	eng_range_res_release(&res);

	eng_close(e);
	free(b1);
	free(b2);
	free(b3);
	free(edge);
	th_cleanup(dir);
}

static struct eng_cmp cmp_value(const char *k, const char *end, const char *v)
{
	return (struct eng_cmp){.key = k,
	                        .key_len = strlen(k),
	                        .end = end,
	                        .end_len = end ? strlen(end) : 0,
	                        .target = ENG_CMP_VALUE,
	                        .result = ENG_CMP_EQ,
	                        .value = v,
	                        .value_len = strlen(v)};
}

static bool txn_if(eng *e, struct eng_cmp *c)
{
	struct eng_txn t = {.cmps = c, .ncmps = 1};
	struct eng_txn_res res;
	bool ok;

	assert_int_equal(eng_txn(e, &t, &res), 0);
	ok = res.succeeded;
	eng_txn_res_release(&res);
	return ok;
}

static void test_txns(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	char *b1 = big_value(1, BIG), *b2 = big_value(2, BIG);
	struct eng_cmp c;
	struct eng_txn_res res;

	(void)state;
	put_big(e, "b/1", b1);
	put_big(e, "b/2", b1);
	c = cmp_value("b/1", NULL, b1);
	assert_true(txn_if(e, &c));
	c = cmp_value("b/1", NULL, b2);
	assert_false(txn_if(e, &c));
	c = cmp_value("b/", "b0", b1); /* every key of the range */
	assert_true(txn_if(e, &c));
	put_big(e, "b/2", b2);
	assert_false(txn_if(e, &c));

	/* A txn reads its own write (the leader's overlay), then a later
	 * one reads it through the reference. */
	{
		struct eng_op ops[3] = {
		    {.type = ENG_OP_PUT,
		     .key = "c",
		     .key_len = 1,
		     .value = b2,
		     .value_len = BIG},
		    {.type = ENG_OP_RANGE, .key = "c", .key_len = 1},
		    {.type = ENG_OP_RANGE,
		     .key = "c",
		     .key_len = 1,
		     .flags = ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN},
		};
		struct eng_txn t = {.success = ops, .nsuccess = 3};

		assert_int_equal(eng_txn(e, &t, &res), 0);
		assert_int_equal(res.res[1].range.n, 1);
		assert_memory_equal(res.res[1].range.kvs[0].value, b2, BIG);
		assert_int_equal(res.res[2].range.n, 1);
		assert_null(res.res[2].range.kvs[0].value);
		assert_int_equal(res.res[2].range.kvs[0].value_len, BIG);
		eng_txn_res_release(&res);
		c = cmp_value("c", NULL, b2);
		assert_true(txn_if(e, &c));
		/* The same lengths-only range read through the reference. */
		t.success = &ops[2];
		t.nsuccess = 1;
		assert_int_equal(eng_txn(e, &t, &res), 0);
		assert_int_equal(res.res[0].range.n, 1);
		assert_null(res.res[0].range.kvs[0].value);
		assert_int_equal(res.res[0].range.kvs[0].value_len, BIG);
		eng_txn_res_release(&res);
	}

	/* PREV_KV of a put, IGNORE_VALUE, PREV_KV of a delete-range. */
	{
		struct eng_op put = {.type = ENG_OP_PUT,
		                     .key = "b/1",
		                     .key_len = 3,
		                     .value = "x",
		                     .value_len = 1,
		                     .flags = ENG_PUT_PREV_KV};
		struct eng_op keep = {.type = ENG_OP_PUT,
		                      .key = "c",
		                      .key_len = 1,
		                      .flags = ENG_PUT_IGNORE_VALUE};
		struct eng_op del = {.type = ENG_OP_DELETE,
		                     .key = "b/",
		                     .key_len = 2,
		                     .end = "b0",
		                     .end_len = 2,
		                     .flags = ENG_DEL_PREV_KV};
		struct eng_txn t = {.success = &put, .nsuccess = 1};

		assert_int_equal(eng_txn(e, &t, &res), 0);
		assert_int_equal(res.res[0].nprev, 1);
		assert_int_equal(res.res[0].prev_kvs[0].value_len, BIG);
		assert_memory_equal(res.res[0].prev_kvs[0].value, b1, BIG);
		eng_txn_res_release(&res);

		t.success = &keep;
		assert_int_equal(eng_txn(e, &t, &res), 0);
		eng_txn_res_release(&res);
		check_get(e, "c", b2);

		t.success = &del;
		assert_int_equal(eng_txn(e, &t, &res), 0);
		assert_int_equal(res.res[0].deleted, 2);
		assert_int_equal(res.res[0].nprev, 2);
		assert_memory_equal(res.res[0].prev_kvs[0].value, "x", 1);
		assert_memory_equal(res.res[0].prev_kvs[1].value, b2, BIG);
		eng_txn_res_release(&res);
	}
	eng_close(e);
	free(b1);
	free(b2);
	th_cleanup(dir);
}

static void report_fail(void *arg, const char *msg)
{
	(void)arg;
	fail_msg("check: %s", msg);
}

/* Save e's @snapshot stream to DIR.snap; the path, to free. */
static char *save_snapshot(eng *e, const char *dir)
{
	eng_snapshot_stream *s;
	char *path, buf[8192];
	int64_t n;
	FILE *f;

	assert_true(asprintf(&path, "%s.snap", dir) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(eng_snapshot_stream_open(e, &s), 0);
	while ((n = eng_snapshot_stream_read(s, buf, sizeof(buf))) > 0)
		assert_int_equal(fwrite(buf, 1, (size_t)n, f), (size_t)n);
	assert_int_equal(n, 0);
	eng_snapshot_stream_close(s);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void test_compact_reopen_check_restore(void **state)
{
	char *dir = th_tmpdir(), *dir2 = th_tmpdir(), *snapf;
	char *vals[6];
	struct eng_snapshot_info info;
	char err[256];
	eng *e = th_open(dir, NULL);

	(void)state;
	for (int i = 0; i < 6; i++)
		vals[i] = big_value(10 + i, 400 + (size_t)i);
	put_big(e, "old", vals[0]); /* never rewritten */
	for (int i = 1; i < 6; i++) {
		put_big(e, "hot", vals[i]);
		th_put(e, "other", "o");
	}
	assert_int_equal(eng_compact(e, eng_current_rev(e), true), 0);
	check_get(e, "old", vals[0]);
	check_get(e, "hot", vals[5]);
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	eng_close(e);

	e = th_open(dir, NULL);
	check_get(e, "old", vals[0]);
	check_get(e, "hot", vals[5]);

	/* A snapshot restores with its references. */
	snapf = save_snapshot(e, dir);
	eng_close(e);
	assert_int_equal(eng_snapshot_restore(snapf, dir2, NULL, NULL, &info,
	                                      err, sizeof(err)),
	                 0);
	e = th_open(dir2, NULL);
	check_get(e, "old", vals[0]);
	check_get(e, "hot", vals[5]);
	eng_close(e);

	/* Repair rebuilds `l` (with references) from the history. */
	{
		struct eng_repair_stats st;

		assert_int_equal(
		    eng_repair(dir, report_fail, NULL, NULL, NULL, &st), 0);
		assert_int_equal(st.latest_written, 3);
	}
	e = th_open(dir, NULL);
	check_get(e, "old", vals[0]);
	check_get(e, "hot", vals[5]);
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	eng_close(e);

	unlink(snapf);
	free(snapf);
	for (int i = 0; i < 6; i++)
		free(vals[i]);
	th_cleanup(dir);
	th_cleanup(dir2);
}

/* The format number in the store's magic record. */
static uint32_t raw_magic(const char *dir, const uint32_t *set)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	char *err = NULL, *p;
	uint32_t ver;
	size_t n;
	leveldb_t *db;

	db = leveldb_open(o, dir, &err);
	assert_null(err);
	p = leveldb_get(db, ro, "Mmagic", 6, &n, &err);
	assert_non_null(p);
	assert_int_equal(n, 15);
	ver = (uint32_t)(uint8_t)p[14];
	if (set) {
		p[14] = (char)*set;
		leveldb_put(db, wo, "Mmagic", 6, p, n, &err);
		assert_null(err);
	}
	leveldb_free(p);
	leveldb_close(db);
	leveldb_readoptions_destroy(ro);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
	return ver;
}

static void test_format_upgrade(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options opt;
	const uint32_t one = 1;
	eng *e = th_open(dir, NULL);
	char *b = big_value(5, 600);

	(void)state;
	th_put(e, "k", "v");
	eng_close(e);
	assert_int_equal(raw_magic(dir, &one), 2);
	/* Read-only leaves a format-1 store as it is. */
	eng_options_init(&opt);
	opt.read_only = true;
	e = th_open(dir, &opt);
	check_get(e, "k", "v");
	eng_close(e);
	assert_int_equal(raw_magic(dir, NULL), 1);
	/* Opened for writing, it is marked format 2 at once, before
	 * anything can write a reference. */
	e = th_open(dir, NULL);
	eng_close(e);
	assert_int_equal(raw_magic(dir, NULL), 2);
	e = th_open(dir, NULL);
	put_big(e, "k", b);
	check_get(e, "k", b);
	eng_close(e);
	free(b);
	th_cleanup(dir);
}

/* A format-1 store that fails to open (here: its state record is
 * damaged) is left at format 1: nothing was written to it, and an older
 * build must still open or repair it rather than refuse its format. */
static void test_failed_open_keeps_format1(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options opt;
	const uint32_t one = 1;
	eng *e = th_open(dir, NULL);

	(void)state;
	th_put(e, "k", "v");
	eng_close(e);
	raw_magic(dir, &one);
	{
		leveldb_options_t *o = leveldb_options_create();
		leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
		char *err = NULL, bad[16] = {0};
		leveldb_t *db = leveldb_open(o, dir, &err);

		assert_null(err);
		/* revision 0: not a store's state */
		leveldb_put(db, wo, META_STATE, strlen(META_STATE), bad,
		            sizeof(bad), &err);
		assert_null(err);
		leveldb_close(db);
		leveldb_writeoptions_destroy(wo);
		leveldb_options_destroy(o);
	}
	eng_options_init(&opt);
	assert_int_equal(eng_open(dir, &opt, &e), ENG_E_CORRUPT);
	assert_int_equal(raw_magic(dir, NULL), 1);
	th_cleanup(dir);
}

/* What a format-1 build wrote: `l` of key holds a copy of its version
 * record at rev (value included). */
static void raw_copy_to_latest(const char *dir, const char *key, int64_t rev)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	struct cbuf hk = {0}, lk = {0};
	char *err = NULL, *v;
	leveldb_t *db;
	size_t n;

	db = leveldb_open(o, dir, &err);
	assert_null(err);
	assert_int_equal(codec_hist_key(&hk, key, strlen(key), rev), 0);
	assert_int_equal(codec_latest_key(&lk, key, strlen(key)), 0);
	v = leveldb_get(db, ro, hk.p, hk.len, &n, &err);
	assert_non_null(v);
	assert_true(n > REC_HDR_LEN + REC_INLINE_MAX);
	leveldb_put(db, wo, lk.p, lk.len, v, n, &err);
	assert_null(err);
	leveldb_free(v);
	cbuf_free(&hk);
	cbuf_free(&lk);
	leveldb_close(db);
	leveldb_readoptions_destroy(ro);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
}

/*
 * A format-1 store holds copies of long values in `l`.  Backed up as it is
 * (read-only), restored, then opened for writing: the copies read like
 * references do, check accepts both forms, and new puts write references.
 */
/* check's report: the messages, joined by newlines. */
static void report_keep(void *arg, const char *msg)
{
	char *all = arg;

	strncat(all, msg, 4000 - strlen(all));
	strncat(all, "\n", 4000 - strlen(all));
}

/* A reference in a store still marked format 1 (as a crashed format
 * upgrade would leave it): an older build would read it as corruption, so
 * check names it. */
static void test_check_ref_in_format1(void **state)
{
	char *dir = th_tmpdir(), *b = big_value(11, 400);
	char msgs[4096] = "";
	struct eng_options opt;
	const uint32_t one = 1;
	eng *e = th_open(dir, NULL);

	(void)state;
	put_big(e, "r", b);
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	eng_close(e);
	raw_magic(dir, &one);
	eng_options_init(&opt);
	opt.read_only = true; /* leaves the format as it is */
	e = th_open(dir, &opt);
	check_get(e, "r", b);
	assert_int_equal(eng_check(e, report_keep, msgs), ENG_E_CORRUPT);
	assert_non_null(strstr(msgs, "latest record of r is a value "
	                             "reference, but the store is marked "
	                             "format 1"));
	eng_close(e);
	free(b);
	th_cleanup(dir);
}

static void test_format1_copies(void **state)
{
	char *dir = th_tmpdir(), *dir2 = th_tmpdir(), *snapf;
	char *b1 = big_value(8, 600), *b2 = big_value(9, 700);
	struct eng_options opt;
	struct eng_snapshot_info info;
	struct eng_range_res res;
	struct eng_cmp c;
	char err[256];
	const uint32_t one = 1;
	eng_rev_t rev;
	eng *e;

	(void)state;
	e = th_open(dir, NULL);
	put_big(e, "big", b2);
	put_big(e, "big", b1);
	rev = eng_current_rev(e);
	th_put(e, "small", "s");
	eng_close(e);
	raw_copy_to_latest(dir, "big", rev);
	raw_magic(dir, &one);

	eng_options_init(&opt);
	opt.read_only = true;
	e = th_open(dir, &opt);
	check_get(e, "big", b1);
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	snapf = save_snapshot(e, dir);
	eng_close(e);
	assert_int_equal(raw_magic(dir, NULL), 1);
	assert_int_equal(eng_snapshot_restore(snapf, dir2, NULL, NULL, &info,
	                                      err, sizeof(err)),
	                 0);
	assert_int_equal(info.store_version, 1);
	assert_int_equal(raw_magic(dir2, NULL), 1);

	e = th_open(dir2, NULL);
	check_get(e, "big", b1);
	assert_int_equal(th_range(e, "a", "z", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.kvs[0].value_len, 600);
	assert_memory_equal(res.kvs[0].value, b1, 600);
	eng_range_res_release(&res);
	assert_int_equal(th_range(e, "a", "z", 0, 0,
	                          ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN,
	                          &res),
	                 0);
	assert_int_equal(res.kvs[0].value_len, 600);
	assert_null(res.kvs[0].value);
	eng_range_res_release(&res);
	c = cmp_value("big", NULL, b1);
	assert_true(txn_if(e, &c));
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	put_big(e, "big", b2);
	check_get(e, "big", b2);
	assert_int_equal(eng_compact(e, eng_current_rev(e), true), 0);
	check_get(e, "big", b2);
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	eng_close(e);
	assert_int_equal(raw_magic(dir2, NULL), 2);

	unlink(snapf);
	free(snapf);
	free(b1);
	free(b2);
	th_cleanup(dir);
	th_cleanup(dir2);
}

/* Replace the version record of key at rev with rec (n bytes). */
static void raw_put_version(const char *dir, const char *key, int64_t rev,
                            const char *rec, size_t n)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	struct cbuf k = {0};
	char *err = NULL;
	leveldb_t *db;

	db = leveldb_open(o, dir, &err);
	assert_null(err);
	assert_int_equal(codec_hist_key(&k, key, strlen(key), rev), 0);
	leveldb_put(db, wo, k.p, k.len, rec, n, &err);
	assert_null(err);
	cbuf_free(&k);
	leveldb_close(db);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
}

/*
 * A reference belongs in `l` only: a version record (`k`) of that type is
 * corrupt, and every reader of `k` (history, a range at an older revision,
 * a watch's replay, check) says so instead of taking it for a put whose
 * value is missing.
 */
static void test_ref_in_history_is_corrupt(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	char *b = big_value(6, 500);
	struct rec r = {.type = REC_PUT, .val = b, .val_len = 500};
	struct eng_range_res res;
	struct cbuf ref = {0};
	eng_rev_t rev;

	(void)state;
	th_put(e, "h", "v1");
	rev = th_put(e, "h", "v2");
	th_put(e, "other", "o");
	eng_close(e);
	r.create_rev = rev - 1;
	r.mod_rev = rev;
	r.version = 2;
	assert_int_equal(codec_latest_encode(&ref, &r), 0);
	assert_int_equal(ref.len, REC_HDR_LEN + 8);
	raw_put_version(dir, "h", rev, ref.p, ref.len);

	e = th_open(dir, NULL);
	assert_int_equal(eng_history(e, "h", 1, 0, 0, &res), ENG_E_CORRUPT);
	eng_range_res_release(&res);
	assert_int_equal(th_range(e, "h", NULL, rev, 0, 0, &res),
	                 ENG_E_CORRUPT);
	eng_range_res_release(&res);
	assert_int_equal(th_range(e, "h", NULL, rev, 0,
	                          ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN,
	                          &res),
	                 ENG_E_CORRUPT);
	eng_range_res_release(&res);
	assert_int_equal(eng_check(e, NULL, NULL), ENG_E_CORRUPT);
	eng_close(e);
	cbuf_free(&ref);
	free(b);
	th_cleanup(dir);
}

/* A crash at the first progress report: SIGKILL, so that nothing runs
 * after it (not even valgrind's leak check of the child). */
static void exit_now(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	(void)done;
	(void)total;
	kill(getpid(), SIGKILL);
}

/* The store's magic format and how many `l` records are references. */
static uint32_t scan_refs(const char *dir, size_t *nrefs)
{
	uint32_t ver = raw_magic(dir, NULL);
	leveldb_options_t *o = leveldb_options_create();
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_iterator_t *it;
	char *err = NULL, sp = SP_LATEST;
	leveldb_t *db;
	size_t n;

	db = leveldb_open(o, dir, &err);
	assert_null(err);
	*nrefs = 0;
	it = leveldb_create_iterator(db, ro);
	for (leveldb_iter_seek(it, &sp, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		const char *k = leveldb_iter_key(it, &n);
		const char *v;

		if (k[0] != SP_LATEST)
			break;
		v = leveldb_iter_value(it, &n);
		if (n && v[0] == REC_PUT_REF)
			(*nrefs)++;
	}
	leveldb_iter_destroy(it);
	leveldb_close(db);
	leveldb_readoptions_destroy(ro);
	leveldb_options_destroy(o);
	return ver;
}

/*
 * Repair of a format-1 store writes references into `l` in batches: a
 * crash part way (here the repair process exits at its first progress
 * report, after four batches) must not leave references in a store still
 * marked format 1, which an older build would read as corruption.
 */
static void test_repair_crash_format1(void **state)
{
	char *dir = th_tmpdir(), *b = big_value(7, 300);
	const uint32_t one = 1;
	struct eng_options opt;
	size_t nrefs;
	pid_t pid;
	int st;
	eng *e;

	(void)state;
	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE;
	e = th_open(dir, &opt);
	for (int i = 0; i < 4200; i += 100) {
		struct eng_op ops[100];
		char keys[100][16];
		struct eng_txn t = {.success = ops, .nsuccess = 100};
		struct eng_txn_res res;

		for (int j = 0; j < 100; j++) {
			snprintf(keys[j], sizeof(keys[j]), "f/%05d", i + j);
			ops[j] = (struct eng_op){.type = ENG_OP_PUT,
			                         .key = keys[j],
			                         .key_len = strlen(keys[j]),
			                         .value = b,
			                         .value_len = 300};
		}
		assert_int_equal(eng_txn(e, &t, &res), 0);
		eng_txn_res_release(&res);
	}
	eng_close(e);
	raw_magic(dir, &one);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct eng_repair_stats rs;

		eng_repair(dir, NULL, NULL, exit_now, NULL, &rs);
		_exit(1); /* the progress report comes first */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	if (scan_refs(dir, &nrefs) < 2)
		assert_int_equal(nrefs, 0);

	/* A second repair finishes the job. */
	{
		struct eng_repair_stats rs;

		assert_int_equal(
		    eng_repair(dir, report_fail, NULL, NULL, NULL, &rs), 0);
		assert_int_equal(rs.latest_written, 4200);
	}
	assert_int_equal(scan_refs(dir, &nrefs), 2);
	assert_int_equal(nrefs, 4200);
	free(b);
	th_cleanup(dir);
}

/* One queued request of test_group_overlay and what it must answer. */
struct gjob {
	struct eng_txn txn;
	struct eng_op ops[2];
	struct eng_cmp cmp;
	const char *want_prev;  /* its first op's prev value, or NULL */
	const char *want_range; /* its second op's (a range) value, or NULL */
	atomic_int state;       /* 0 queued, 1 as expected, 2 not */
};

static bool kv_is(const struct eng_kv *kv, const char *want)
{
	return kv->value_len == strlen(want) &&
	       memcmp(kv->value, want, kv->value_len) == 0;
}

static void gjob_done(void *arg, int rc, const struct eng_txn_res *res)
{
	struct gjob *j = arg;
	bool ok = rc == 0 && res->succeeded;

	if (ok && j->want_prev)
		ok = res->res[0].nprev == 1 &&
		     kv_is(&res->res[0].prev_kvs[0], j->want_prev);
	if (ok && j->want_range)
		ok = res->res[1].range.n == 1 &&
		     kv_is(&res->res[1].range.kvs[0], j->want_range);
	atomic_store(&j->state, ok ? 1 : 2);
}

/*
 * Requests queued together are applied in one group; the later ones read
 * the earlier ones through the leader's overlay (full records), never a
 * reference to a version still in the batch: put, delete, put again of one
 * long value, then a VALUE compare with PREV_KV and IGNORE_VALUE and a
 * range in one txn, a delete with PREV_KV, another put and a compare.
 */
static void test_group_overlay(void **state)
{
	enum { NJ = 7, ROUNDS = 30 };
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	char *v1 = big_value(21, 400), *v2 = big_value(22, 500);
	char *v3 = big_value(23, 600);
	static struct gjob j[NJ];
	struct eng_stats st;
	int grouped = 0;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		uint64_t before;

		memset(j, 0, sizeof(j));
		for (int i = 0; i < NJ; i++) {
			j[i].txn.success = j[i].ops;
			j[i].txn.nsuccess = 1;
			j[i].ops[0].key = "g";
			j[i].ops[0].key_len = 1;
		}
		j[0].ops[0].type = ENG_OP_PUT;
		j[0].ops[0].value = v1;
		j[0].ops[0].value_len = strlen(v1);
		j[1].ops[0].type = ENG_OP_DELETE;
		j[1].ops[0].flags = ENG_DEL_PREV_KV;
		j[1].want_prev = v1;
		j[2].ops[0] = j[0].ops[0];
		j[2].ops[0].value = v2;
		j[2].ops[0].value_len = strlen(v2);
		j[3].cmp = cmp_value("g", NULL, v2);
		j[3].txn.cmps = &j[3].cmp;
		j[3].txn.ncmps = 1;
		j[3].ops[0].type = ENG_OP_PUT;
		j[3].ops[0].flags = ENG_PUT_IGNORE_VALUE | ENG_PUT_PREV_KV;
		j[3].ops[1] = (struct eng_op){
		    .type = ENG_OP_RANGE, .key = "g", .key_len = 1};
		j[3].txn.nsuccess = 2;
		j[3].want_prev = v2;
		j[3].want_range = v2;
		j[4].ops[0] = j[1].ops[0];
		j[4].want_prev = v2;
		j[5].ops[0] = j[0].ops[0];
		j[5].ops[0].value = v3;
		j[5].ops[0].value_len = strlen(v3);
		j[6].cmp = cmp_value("g", NULL, v3);
		j[6].txn.cmps = &j[6].cmp;
		j[6].txn.ncmps = 1;
		j[6].txn.nsuccess = 0;

		assert_int_equal(eng_stats_get(e, &st), 0);
		before = st.commits;
		for (int i = 0; i < NJ; i++)
			assert_int_equal(
			    eng_txn_async(e, &j[i].txn, gjob_done, &j[i]), 0);
		for (int i = 0; i < NJ; i++) {
			while (atomic_load(&j[i].state) == 0)
				sched_yield();
			if (atomic_load(&j[i].state) != 1)
				fail_msg("round %d: request %d answered wrong",
				         round, i);
		}
		check_get(e, "g", v3);
		assert_int_equal(eng_stats_get(e, &st), 0);
		if (st.commits - before < NJ - 1)
			grouped++;
	}
	/* Some rounds must have shared a group, or nothing was tested. */
	assert_true(grouped > 0);
	assert_int_equal(eng_check(e, report_fail, NULL), 0);
	eng_close(e);
	free(v1);
	free(v2);
	free(v3);
	th_cleanup(dir);
}

/* A reader's eng_get races puts and compactions of the same key. */
struct race {
	eng *e;
	atomic_bool stop;
	int reads;
};

static void *reader(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		struct eng_kv kv;
		int seed;

		assert_int_equal(eng_get(r->e, "r", 1, 0, NULL, &kv), 0);
		assert_true(kv.mod_rev > 0);
		{
			char head[16] = {0};

			memcpy(head, kv.value,
			       kv.value_len < 15 ? kv.value_len : 15);
			assert_true(sscanf(head, "%d|", &seed) == 1);
		}
		{
			char *want = big_value(seed, kv.value_len);

			assert_memory_equal(kv.value, want, kv.value_len);
			free(want);
		}
		eng_kv_release(&kv);
		r->reads++;
		sched_yield();
	}
	return NULL;
}

static void test_get_races_compaction(void **state)
{
	char *dir = th_tmpdir();
	struct race r = {.e = th_open(dir, NULL)};
	int rounds = getenv("RV_UNDER_VALGRIND") ? 40 : 400;
	pthread_t t;

	(void)state;
	{
		char *v = big_value(0, 500);

		put_big(r.e, "r", v);
		free(v);
	}
	assert_int_equal(pthread_create(&t, NULL, reader, &r), 0);
	for (int i = 1; i <= rounds; i++) {
		char *v = big_value(i, 300 + (size_t)(i % 200));

		put_big(r.e, "r", v);
		free(v);
		if (i % 4 == 0)
			assert_int_equal(
			    eng_compact(r.e, eng_current_rev(r.e), true), 0);
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	assert_true(r.reads > 0);
	eng_close(r.e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads),
	    cmocka_unit_test(test_txns),
	    cmocka_unit_test(test_compact_reopen_check_restore),
	    cmocka_unit_test(test_format_upgrade),
	    cmocka_unit_test(test_failed_open_keeps_format1),
	    cmocka_unit_test(test_check_ref_in_format1),
	    cmocka_unit_test(test_format1_copies),
	    cmocka_unit_test(test_ref_in_history_is_corrupt),
	    cmocka_unit_test(test_repair_crash_format1),
	    cmocka_unit_test(test_group_overlay),
	    cmocka_unit_test(test_get_races_compaction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
