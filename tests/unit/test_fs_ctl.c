/*
 * test_fs_ctl.c — the content of the control files (fs/fs_ctl.c) over a
 * real engine: @stats is well-formed Prometheus text whose values follow
 * known operations (revision, keys, leases, the NOSPACE alarm, txn counts,
 * cumulative histogram buckets); @compact reads the compaction revision,
 * compacts at a written N and refuses a revision too new (EINVAL), already
 * compacted (ENODATA) or not a number (EINVAL); @snapshot read by offsets
 * gives the whole file the engine describes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "fs/fs_ctl.h"
#include "fs/fs_int.h"
#include "tests/unit/engine_helpers.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
	char *dir;
	eng *e;
	struct fs fs;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	c->dir = th_tmpdir();
	c->e = th_open(c->dir, NULL);
	c->fs.e = c->e;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	eng_close(c->e);
	th_cleanup(c->dir);
	free(c);
	return 0;
}

/* The value of the sample named exactly `name` in text, or -1. */
static double sample(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n')) {
		if (*l == '\n')
			l++;
		if (strncmp(l, name, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	}
	return -1;
}

static char *stats(struct ctx *c)
{
	char *buf = NULL, *s;
	size_t len = 0;

	assert_int_equal(fs_ctl_stats_read(&c->fs, "", 0, 0, &buf, &len), 0);
	s = malloc(len + 1);
	memcpy(s, buf, len);
	s[len] = '\0';
	free(buf);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_stats_values(void **state)
{
	struct ctx *c = *state;
	eng_lease_t id;
	char *s;
	double txn0;

	s = stats(c);
	txn0 = sample(s, "revfs_op_duration_seconds_count{op=\"txn\"}");
	assert_true(txn0 >= 0);
	free(s);
	th_put(c->e, "a", "1");
	th_put(c->e, "b", "2");
	th_put(c->e, "a", "3");
	th_del(c->e, "b", NULL, 1);
	assert_int_equal(eng_lease_grant(c->e, 0, 30, "n1", &id), 0);
	s = stats(c);
	assert_true(sample(s, "revfs_revision") == 5);
	assert_true(sample(s, "revfs_compact_revision") == 0);
	assert_true(sample(s, "revfs_keys") == 1);
	assert_true(sample(s, "revfs_leases") == 1);
	assert_true(sample(s, "revfs_alarm{type=\"NOSPACE\"}") == 0);
	assert_true(sample(s, "revfs_db_bytes") > 0);
	assert_true(sample(s, "revfs_op_duration_seconds_count{op=\"txn\"}") ==
	            txn0 + 4);
	assert_true(
	    sample(
	        s,
	        "revfs_op_duration_seconds_bucket{op=\"txn\",le=\"+Inf\"}") ==
	    txn0 + 4);
	free(s);
}

static void test_stats_format(void **state)
{
	struct ctx *c = *state;
	regex_t re;
	char *s, *save = NULL;
	double last = -1;
	int buckets = 0;

	th_put(c->e, "k", "v");
	s = stats(c);
	assert_int_equal(
	    regcomp(&re,
	            "^[a-z_]+(\\{[a-z]+=\"[^\"]*\"(,[a-z]+=\"[^\"]*\")*\\})? "
	            "[-+0-9.eE]+$",
	            REG_EXTENDED | REG_NOSUB),
	    0);
	for (char *l = strtok_r(s, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "# HELP ", 7) == 0 ||
		    strncmp(l, "# TYPE ", 7) == 0)
			continue;
		if (regexec(&re, l, 0, NULL, 0) != 0)
			fail_msg("not a sample line: '%s'", l);
		if (strncmp(l, "revfs_op_duration_seconds_bucket{op=\"txn\"",
		            41) == 0) {
			double v = strtod(strrchr(l, ' ') + 1, NULL);

			assert_true(v >= last); /* cumulative */
			last = v;
			buckets++;
		}
	}
	assert_int_equal(buckets, ENG_LAT_BUCKETS + 1);
	regfree(&re);
	free(s);
}

static long long compact_read(struct ctx *c)
{
	char *buf = NULL;
	size_t len = 0;
	long long v;

	assert_int_equal(fs_ctl_compact_read(&c->fs, "", 0, 0, &buf, &len), 0);
	assert_true(len > 0 && buf[len - 1] == '\n');
	v = strtoll(buf, NULL, 10);
	free(buf);
	return v;
}

static void test_compact(void **state)
{
	struct ctx *c = *state;

	for (int i = 0; i < 5; i++)
		th_put(c->e, "k", "v");
	assert_int_equal(compact_read(c), 0);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "3\n", 2), 0);
	assert_int_equal(compact_read(c), 3);
	assert_int_equal(eng_current_rev(c->e), 6); /* no revision taken */
	assert_int_equal(fs_ctl_compact_write(&c->fs, "3\n", 2), -ENODATA);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "2", 1), -ENODATA);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "7\n", 2), -EINVAL);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "x\n", 2), -EINVAL);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "4x", 2), -EINVAL);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "", 0), -EINVAL);
	assert_int_equal(fs_ctl_compact_write(&c->fs, "-1", 2), -EINVAL);
	assert_int_equal(compact_read(c), 3);
	assert_int_equal(fs_ctl_compact_write(&c->fs, " 6 \n", 4), 0);
	assert_int_equal(compact_read(c), 6);
}

static void test_snapshot_read(void **state)
{
	struct ctx *c = *state;
	eng_snapshot_stream *s = NULL;
	char buf[1000];
	uint64_t off = 0;
	ssize_t n;

	for (int i = 0; i < 200; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%03d", i);
		th_put(c->e, k, "some value");
	}
	assert_int_equal(fs_ctl_snapshot_open(&c->fs, &s), 0);
	while ((n = fs_ctl_snapshot_read(s, buf, sizeof(buf), (off_t)off)) > 0)
		off += (uint64_t)n;
	assert_int_equal(n, 0);
	assert_true(off > 200 * 10);
	assert_int_equal(eng_snapshot_stream_info(s)->bytes, off);
	assert_int_equal(eng_snapshot_stream_info(s)->rev, 201);
	/* past the end: EOF again; a negative offset: EINVAL */
	assert_int_equal(fs_ctl_snapshot_read(s, buf, sizeof(buf), (off_t)off),
	                 0);
	assert_int_equal(fs_ctl_snapshot_read(s, buf, sizeof(buf), -1),
	                 -EINVAL);
	eng_snapshot_stream_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stats_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stats_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_read, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
