/*
 * test_fs_opts.c — the daemon's command line (daemon/rv_opts.c): sizes,
 * durations, auto_compact and sync values, the default data directory,
 * SOURCE MOUNTPOINT as mount.fuse3 passes them, and which options stay for
 * libfuse.  The daemon's sources are compiled in: they are not in a library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/rv_log.c"
#include "daemon/rv_opts.c"

static void test_sizes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(rv_parse_size("100", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(rv_parse_size("1536K", &v), 0);
	assert_int_equal(v, 1572864);
	assert_int_equal(rv_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(rv_parse_size("3MiB", &v), 0);
	assert_int_equal(v, 3ULL << 20);
	assert_int_equal(rv_parse_size("1kb", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(rv_parse_size("10B", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(rv_parse_size("", &v), -1);
	assert_int_equal(rv_parse_size("-1", &v), -1);
	assert_int_equal(rv_parse_size("1X", &v), -1);
	assert_int_equal(rv_parse_size("1KX", &v), -1);
	assert_int_equal(rv_parse_size("99999999999T", &v), -1);
}

static void test_durations(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(rv_parse_duration_ms("5", &ms), 0);
	assert_int_equal(ms, 5000);
	assert_int_equal(rv_parse_duration_ms("100ms", &ms), 0);
	assert_int_equal(ms, 100);
	assert_int_equal(rv_parse_duration_ms("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(rv_parse_duration_ms("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(rv_parse_duration_ms("1d", &ms), 0);
	assert_int_equal(ms, 86400000);
	assert_int_equal(rv_parse_duration_ms("1y", &ms), -1);
	assert_int_equal(rv_parse_duration_ms("-1s", &ms), -1);
}

static void test_auto_compact_and_sync(void **state)
{
	enum eng_auto_compact m;
	enum eng_sync s;
	int64_t v;
	int iv = 0;

	(void)state;
	assert_int_equal(rv_parse_auto_compact("1h", &m, &v), 0);
	assert_int_equal(m, ENG_AUTO_COMPACT_PERIODIC);
	assert_int_equal(v, 3600000);
	assert_int_equal(rv_parse_auto_compact("10000r", &m, &v), 0);
	assert_int_equal(m, ENG_AUTO_COMPACT_REVISION);
	assert_int_equal(v, 10000);
	assert_int_equal(rv_parse_auto_compact("off", &m, &v), 0);
	assert_int_equal(m, ENG_AUTO_COMPACT_OFF);
	assert_int_equal(rv_parse_auto_compact("0r", &m, &v), -1);
	assert_int_equal(rv_parse_auto_compact("r", &m, &v), -1);
	assert_int_equal(rv_parse_auto_compact("1x", &m, &v), -1);

	assert_int_equal(rv_parse_sync("always", &s, &iv), 0);
	assert_int_equal(s, ENG_SYNC_ALWAYS);
	assert_int_equal(rv_parse_sync("none", &s, &iv), 0);
	assert_int_equal(s, ENG_SYNC_NONE);
	assert_int_equal(rv_parse_sync("interval", &s, &iv), 0);
	assert_int_equal(s, ENG_SYNC_INTERVAL);
	assert_int_equal(rv_parse_sync("interval:250", &s, &iv), 0);
	assert_int_equal(iv, 250);
	assert_int_equal(rv_parse_sync("interval:1s", &s, &iv), 0);
	assert_int_equal(iv, 1000);
	assert_int_equal(rv_parse_sync("sometimes", &s, &iv), -1);
	assert_int_equal(rv_parse_sync("interval:", &s, &iv), -1);
}

static int parse(struct rv_opts *o, char *err, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	return rv_opts_parse(argc, argv, o, err, 256);
}

/* Is `opt` among the arguments left for libfuse? */
static bool kept(const struct rv_opts *o, const char *opt)
{
	for (int i = 0; i < o->fargs.argc; i++)
		if (strstr(o->fargs.argv[i], opt))
			return true;
	return false;
}

static void test_full_command_line(void **state)
{
	struct rv_opts o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, 5, "revfs", "-f", "-o",
	                       "data=/tmp/d,prefix=app/,quota=1G,max_value="
	                       "64K,sync=none,ro,allow_other,auto_compact="
	                       "100r,progress=200ms,attr_timeout=1.5",
	                       "/mnt/x"),
	                 0);
	assert_true(o.foreground);
	assert_false(o.debug);
	assert_string_equal(o.data_dir, "/tmp/d");
	assert_string_equal(o.prefix, "app/");
	assert_int_equal(o.quota, 1ULL << 30);
	assert_int_equal(o.max_value, 65536);
	assert_int_equal(o.sync, ENG_SYNC_NONE);
	assert_true(o.ro);
	assert_int_equal(o.auto_compact, ENG_AUTO_COMPACT_REVISION);
	assert_int_equal(o.auto_compact_value, 100);
	assert_int_equal(o.progress_ms, 200);
	assert_true(o.attr_timeout > 1.4 && o.attr_timeout < 1.6);
	assert_string_equal(o.mountpoint, "/mnt/x");
	assert_null(o.source);
	/* FUSE's options stay for libfuse, revfs's do not. */
	assert_true(kept(&o, "allow_other"));
	assert_true(kept(&o, "ro"));
	assert_false(kept(&o, "data="));
	assert_false(kept(&o, "quota="));
	rv_opts_free(&o);
}

static void test_source_argument(void **state)
{
	struct rv_opts o;
	char err[256];

	(void)state;
	/* mount.fuse3 runs: revfs SOURCE MOUNTPOINT -o OPTS */
	assert_int_equal(parse(&o, err, 5, "revfs", "/var/lib/kv", "/mnt/kv",
	                       "-o", "dev,suid"),
	                 0);
	assert_string_equal(o.source, "/var/lib/kv");
	assert_string_equal(o.mountpoint, "/mnt/kv");
	assert_string_equal(o.data_dir, "/var/lib/kv");
	assert_false(o.foreground);
	rv_opts_free(&o);
	/* "revfs" as SOURCE: the default (or data=) wins. */
	assert_int_equal(
	    parse(&o, err, 5, "revfs", "revfs", "/mnt/kv", "-o", "data=/d"), 0);
	assert_string_equal(o.data_dir, "/d");
	rv_opts_free(&o);
	assert_int_equal(parse(&o, err, 4, "revfs", "a", "b", "c"), -1);
	assert_non_null(strstr(err, "unexpected"));
	rv_opts_free(&o);
}

static void test_defaults_and_errors(void **state)
{
	struct rv_opts o;
	char err[256];

	(void)state;
	setenv("XDG_DATA_HOME", "/xdg", 1);
	assert_int_equal(parse(&o, err, 2, "revfs", "/m"), 0);
	assert_string_equal(o.data_dir, "/xdg/revfs/default");
	assert_int_equal(o.sync, ENG_SYNC_ALWAYS);
	assert_int_equal(o.loglevel, ENG_LOG_INFO);
	rv_opts_free(&o);
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(parse(&o, err, 2, "revfs", "/m"), 0);
	assert_string_equal(o.data_dir, "/home/u/.local/share/revfs/default");
	rv_opts_free(&o);

	assert_int_equal(parse(&o, err, 1, "revfs"), -1);
	assert_non_null(strstr(err, "mountpoint"));
	rv_opts_free(&o);
	assert_int_equal(parse(&o, err, 4, "revfs", "-o", "quota=lots", "/m"),
	                 -1);
	assert_non_null(strstr(err, "quota"));
	rv_opts_free(&o);
	assert_int_equal(
	    parse(&o, err, 4, "revfs", "-o", "progress=10ms", "/m"), -1);
	rv_opts_free(&o);
	assert_int_equal(parse(&o, err, 4, "revfs", "-o", "data", "/m"), -1);
	assert_non_null(strstr(err, "needs a value"));
	rv_opts_free(&o);
	assert_int_equal(parse(&o, err, 3, "revfs", "-d", "/m"), 0);
	assert_true(o.debug && o.foreground);
	assert_int_equal(o.loglevel, ENG_LOG_DEBUG);
	rv_opts_free(&o);
	assert_int_equal(parse(&o, err, 2, "revfs", "--version"), 0);
	assert_true(o.version);
	rv_opts_free(&o);
	assert_int_equal(parse(&o, err, 2, "revfs", "--help"), 0);
	assert_true(o.help);
	rv_opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_auto_compact_and_sync),
	    cmocka_unit_test(test_full_command_line),
	    cmocka_unit_test(test_source_argument),
	    cmocka_unit_test(test_defaults_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
