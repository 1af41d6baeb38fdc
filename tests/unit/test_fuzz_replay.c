/*
 * test_fuzz_replay.c — the libFuzzer targets' inputs as unit tests.
 *
 * Every file of tests/fuzz/corpus/TARGET (the seeds) and of
 * tests/fuzz/regress/TARGET (inputs that once broke a property or crashed)
 * is run through that target's own property checks, compiled here with
 * FUZZ_CHECK as a cmocka assertion, so `make test` (plain, ASan+UBSan and
 * valgrind) replays them without clang or libFuzzer.  A crash that
 * `make fuzz` finds is kept this way: its input goes into
 * tests/fuzz/regress/TARGET/ (tests/fuzz/run.sh says so), and the bug's own
 * behaviour gets a test below when the property alone does not say it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond) assert_true(cond)

int fuzz_name_one(const uint8_t *data, size_t size);
int fuzz_codec_one(const uint8_t *data, size_t size);
int fuzz_opts_one(const uint8_t *data, size_t size);
int fuzz_snapshot_one(const uint8_t *data, size_t size);

#define LLVMFuzzerTestOneInput fuzz_name_one
#include "tests/fuzz/fuzz_name.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_codec_one
#include "tests/fuzz/fuzz_codec.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_snapshot_one
#include "tests/fuzz/fuzz_snapshot.c"
#undef LLVMFuzzerTestOneInput
/* The daemon's sources are not in a library: compile them in. */
#include "daemon/rv_log.c"
#include "daemon/rv_opts.c"
#define LLVMFuzzerTestOneInput fuzz_opts_one
#include "tests/fuzz/fuzz_opts.c"
#undef LLVMFuzzerTestOneInput

static char fuzz_dir[PATH_MAX + 32]; /* the repository's tests/fuzz */

/* Run every file of tests/fuzz/SUB/TARGET through fn; the count. */
static int replay_dir(const char *sub, const char *target,
                      int (*fn)(const uint8_t *, size_t))
{
	char dir[PATH_MAX + 128], path[PATH_MAX + 400];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s/%s", fuzz_dir, sub, target);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		uint8_t *buf;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode) ||
		    de->d_name[0] == '.')
			continue;
		f = fopen(path, "rb");
		assert_non_null(f);
		/* An exact-size copy: ASan sees a read past the input. */
		buf = malloc((size_t)st.st_size + 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)st.st_size, f),
		                 (size_t)st.st_size);
		fclose(f);
		print_message("  %s/%s/%s\n", sub, target, de->d_name);
		fn(buf, (size_t)st.st_size);
		free(buf);
		n++;
	}
	closedir(d);
	return n;
}

/* The seeds, then the kept inputs of TARGET; the number of kept ones. */
static int replay(const char *target, int (*fn)(const uint8_t *, size_t))
{
	/* The seeds must be there: an empty replay would pass silently. */
	assert_true(replay_dir("corpus", target, fn) > 0);
	return replay_dir("regress", target, fn);
}

static void test_name(void **state)
{
	(void)state;
	replay("name", fuzz_name_one);
}

static void test_codec(void **state)
{
	(void)state;
	replay("codec", fuzz_codec_one);
}

static void test_snapshot(void **state)
{
	(void)state;
	replay("snapshot", fuzz_snapshot_one);
}

static void test_opts(void **state)
{
	(void)state;
	/* The input of the finding below is kept there. */
	assert_true(replay("opts", fuzz_opts_one) > 0);
}

/*
 * The fuzzer's one finding (commit 0e07ba6): `-o backend=etcd,endpoints=`
 * parses with endpoints and no data directory, which broke the target's
 * property "a successful parse has a data directory".  The property was
 * out of date, not the parser; what the parser must do is pinned here.
 */
static void test_opts_etcd_backend(void **state)
{
	char a0[] = "revfs", a1[] = "-o",
	     a2[] = "backend=etcd,endpoints=http://127.0.0.1:2379",
	     a3[] = "/mnt", b2[] = "endpoints=http://127.0.0.1:2379",
	     c2[] = "backend=etcd", err[256];
	char *ok[] = {a0, a1, a2, a3, NULL},
	     *no_backend[] = {a0, a1, b2, a3, NULL},
	     *no_endpoints[] = {a0, a1, c2, a3, NULL};
	struct rv_opts o;

	(void)state;
	assert_int_equal(rv_opts_parse(4, ok, &o, err, sizeof(err)), 0);
	assert_string_equal(o.backend, "etcd");
	assert_string_equal(o.endpoints, "http://127.0.0.1:2379");
	assert_null(o.data_dir);
	rv_opts_free(&o);
	assert_int_equal(rv_opts_parse(4, no_backend, &o, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "needs backend=etcd"));
	rv_opts_free(&o);
	assert_int_equal(rv_opts_parse(4, no_endpoints, &o, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "needs endpoints"));
	rv_opts_free(&o);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_codec),
	    cmocka_unit_test(test_snapshot),
	    cmocka_unit_test(test_opts),
	    cmocka_unit_test(test_opts_etcd_backend),
	};
	char self[PATH_MAX];

	(void)argc;
	/* build/tests/test_x or build/san/tests/test_x: look upwards for
	 * the repository's tests/fuzz. */
	if (!realpath(argv[0], self)) {
		perror(argv[0]);
		return 1;
	}
	for (int up = 0; up < 5; up++) {
		char *d = dirname(self);
		struct stat st;

		memmove(self, d, strlen(d) + 1);
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/tests/fuzz/corpus",
		         self);
		if (stat(fuzz_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/tests/fuzz",
			         self);
			return cmocka_run_group_tests(tests, NULL, NULL);
		}
	}
	fprintf(stderr, "%s: tests/fuzz/corpus not found above it\n", argv[0]);
	return 1;
}
