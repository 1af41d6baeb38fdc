/*
 * test_revfsctl.c — the revfsctl program (tools/revfsctl.c) run as a user
 * would, against stores built through the engine: exit codes (0, 2 usage,
 * 3 damaged, 4 in use), check finding damage and --repair fixing it,
 * status in both formats, snapshot save/status/restore, silence on a
 * stderr that is not a terminal, and on a terminal (a pseudo-terminal) the
 * progress line of every long command: a bar when the total is known, the
 * count and the rate, erased before a problem is printed; none with -q.
 * The binary is the one built beside this test: $(B)/revfsctl for
 * $(B)/tests/test_revfsctl (make bins builds both).
 */
#include "engine_helpers.h"
#include "engine/codec.h"

#include <errno.h>
#include <leveldb/c.h>
#include <libgen.h>
#include <pty.h>
#include <sys/wait.h>

static char ctl[4096];

/* Run revfsctl with args (NULL-terminated); stdout into out (may be NULL),
 * stderr into err (may be NULL).  Returns the exit status. */
static int run(char *out, size_t outlen, char *err, size_t errlen, ...)
{
	char *argv[16], ofile[] = "/tmp/revfsctl-out-XXXXXX",
	                efile[] = "/tmp/revfsctl-err-XXXXXX";
	int ofd = mkstemp(ofile), efd = mkstemp(efile), st, argc = 1;
	va_list ap;
	pid_t pid;

	assert_true(ofd >= 0 && efd >= 0);
	argv[0] = ctl;
	va_start(ap, errlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(ctl, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (out) {
		ssize_t n = pread(ofd, out, outlen - 1, 0);
		out[n > 0 ? n : 0] = 0;
	}
	if (err) {
		ssize_t n = pread(efd, err, errlen - 1, 0);
		err[n > 0 ? n : 0] = 0;
	}
	close(ofd);
	close(efd);
	unlink(ofile);
	unlink(efile);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Run revfsctl with args (NULL-terminated) on a new pseudo-terminal: its
 * stdout and stderr both, as a user sees them, into out.  Returns the exit
 * status. */
static int run_tty(char *out, size_t outlen, ...)
{
	char *argv[16], scratch[4096];
	int argc = 1, master, st;
	size_t got = 0;
	va_list ap;
	pid_t pid;

	argv[0] = ctl;
	va_start(ap, outlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		execv(ctl, argv);
		_exit(127);
	}
	for (;;) {
		/* Drain to the end (EIO once the child is gone), so that
		 * it never blocks on a full terminal. */
		bool room = got < outlen - 1;
		ssize_t n = read(master, room ? out + got : scratch,
		                 room ? outlen - 1 - got : sizeof(scratch));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (room)
			got += (size_t)n;
	}
	out[got] = 0;
	close(master);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static char *sibling(const char *store, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s.%s", store, name) > 0);
	return p;
}

static void build_store(const char *dir)
{
	eng *e = th_open(dir, NULL);
	eng_lease_t id;
	char k[32];

	for (int i = 0; i < 30; i++) {
		snprintf(k, sizeof(k), "k%02d", i % 10);
		th_put(e, k, "v");
	}
	assert_int_equal(eng_lease_grant(e, 0, 30, "n\"1", &id), 0);
	assert_int_equal(eng_put(e, "leased", 6, "x", 1, id, NULL, NULL), 0);
	eng_close(e);
}

/* Remove one latest-index record behind the engine's back. */
static void damage(const char *dir)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	char *err = NULL;
	leveldb_t *db = leveldb_open(o, dir, &err);
	struct cbuf k = {0};

	assert_null(err);
	assert_int_equal(codec_latest_key(&k, "k03", 3), 0);
	leveldb_delete(db, wo, k.p, k.len, &err);
	assert_null(err);
	cbuf_free(&k);
	leveldb_close(db);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
}

static void test_usage(void **state)
{
	char out[4096], err[4096];

	(void)state;
	assert_int_equal(run(out, sizeof(out), NULL, 0, "--help", NULL), 0);
	assert_non_null(strstr(out, "snapshot restore"));
	assert_int_equal(run(NULL, 0, err, sizeof(err), NULL), 2);
	assert_int_equal(run(NULL, 0, err, sizeof(err), "frobnicate", NULL), 2);
	assert_int_equal(run(NULL, 0, err, sizeof(err), "status", NULL), 2);
	assert_int_equal(
	    run(NULL, 0, err, sizeof(err), "-w", "yaml", "status", "x", NULL),
	    2);
	assert_int_equal(
	    run(NULL, 0, err, sizeof(err), "defrag", "x", "--repair", NULL), 2);
}

static void test_status_check_repair(void **state)
{
	char *store = th_tmpdir(), out[8192], err[4096];
	eng *e;

	(void)state;
	build_store(store);
	assert_int_equal(run(out, sizeof(out), err, sizeof(err), "-w", "json",
	                     "status", store, NULL),
	                 0);
	assert_non_null(strstr(out, "\"revision\":32,"));
	assert_non_null(strstr(out, "\"keys\":11,"));
	/* The lease name is escaped in JSON. */
	assert_non_null(strstr(out, "\"name\":\"n\\\"1\",\"ttl\":30"));
	assert_string_equal(err, "");
	assert_int_equal(run(out, sizeof(out), NULL, 0, "status", store, NULL),
	                 0);
	assert_non_null(strstr(out, "compaction revision: 0"));

	/* In use: exit 4 with a clear message. */
	e = th_open(store, NULL);
	assert_int_equal(run(NULL, 0, err, sizeof(err), "check", store, NULL),
	                 4);
	assert_non_null(strstr(err, "in use"));
	eng_close(e);

	assert_int_equal(run(out, sizeof(out), NULL, 0, "check", store, NULL),
	                 0);
	damage(store);
	assert_int_equal(run(out, sizeof(out), NULL, 0, "check", store, NULL),
	                 3);
	assert_non_null(strstr(out, "problem: live key k03"));
	assert_non_null(strstr(out, "--repair"));
	assert_int_equal(run(out, sizeof(out), err, sizeof(err), "check", store,
	                     "--repair", NULL),
	                 0);
	assert_non_null(strstr(out, "consistent after repair"));
	assert_non_null(strstr(out, "rebuilt 11 latest, 1 attach, 1 name"));
	assert_string_equal(err, ""); /* not a terminal: no progress */
	assert_int_equal(run(out, sizeof(out), NULL, 0, "check", store, NULL),
	                 0);
	e = th_open(store, NULL);
	assert_string_equal(th_get(e, "k03", 0), "v");
	eng_close(e);

	assert_int_equal(
	    run(out, sizeof(out), NULL, 0, "status", "/nonexistent", NULL), 1);
	th_cleanup(store);
}

static void test_snapshot_commands(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *dst = sibling(store, "restored"), out[8192], err[4096];
	FILE *f;

	(void)state;
	build_store(store);
	assert_int_equal(run(out, sizeof(out), err, sizeof(err), "-w", "json",
	                     "snapshot", "save", store, file, NULL),
	                 0);
	assert_non_null(strstr(out, "\"revision\":32,"));
	assert_string_equal(err, "");
	assert_int_equal(
	    run(out, sizeof(out), NULL, 0, "snapshot", "status", file, NULL),
	    0);
	assert_non_null(strstr(out, "checksum matches"));
	assert_int_equal(run(out, sizeof(out), NULL, 0, "-q", "snapshot",
	                     "restore", file, dst, NULL),
	                 0);
	assert_int_equal(
	    run(out, sizeof(out), NULL, 0, "-w", "json", "status", dst, NULL),
	    0);
	assert_non_null(strstr(out, "\"revision\":32,"));
	assert_int_equal(run(NULL, 0, err, sizeof(err), "snapshot", "restore",
	                     file, dst, NULL),
	                 1);
	/* Damage the last byte (the trailer's checksum): exit 3. */
	f = fopen(file, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, -1, SEEK_END), 0);
	int c = fgetc(f);
	assert_int_equal(fseek(f, -1, SEEK_END), 0);
	fputc(c ^ 1, f);
	fclose(f);
	assert_int_equal(
	    run(NULL, 0, err, sizeof(err), "snapshot", "status", file, NULL),
	    3);
	assert_non_null(strstr(err, "checksum mismatch"));
	th_rmrf(dst);
	free(dst);
	unlink(file);
	free(file);
	th_cleanup(store);
}

/* A progress line was drawn: "\rLABEL" ... erased to the end of line. */
static void assert_progress(const char *out, const char *label,
                            const char *figures)
{
	char want[64];

	snprintf(want, sizeof(want), "\r%-8s ", label);
	if (!strstr(out, want) || !strstr(out, figures) ||
	    !strstr(out, "\033[K"))
		fail_msg("no '%s' progress with '%s' in: %s", label, figures,
		         out);
}

static void test_progress_on_a_terminal(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *dst = sibling(store, "restored"), out[65536];
	const char *p;

	(void)state;
	build_store(store);
	/* check: the records read and their rate; the final line has the
	 * count as its total, so a full bar */
	assert_int_equal(run_tty(out, sizeof(out), "check", store, NULL), 0);
	assert_progress(out, "check", "records/s");
	assert_non_null(strstr(out, "[####################] 100%"));
	assert_non_null(strstr(out, "is consistent"));
	/* defrag: a bar over the record spaces */
	assert_int_equal(run_tty(out, sizeof(out), "defrag", store, NULL), 0);
	assert_progress(out, "defrag", "100%  7 spaces / 7 spaces");
	/* snapshot save: bytes and rate (the total is not known before) */
	assert_int_equal(
	    run_tty(out, sizeof(out), "snapshot", "save", store, file, NULL),
	    0);
	assert_progress(out, "save", "MiB/s");
	/* status and restore: a bar over the file's bytes */
	assert_int_equal(
	    run_tty(out, sizeof(out), "snapshot", "status", file, NULL), 0);
	assert_progress(out, "verify", "[####################] 100%");
	assert_non_null(strstr(out, "MiB/s"));
	assert_int_equal(
	    run_tty(out, sizeof(out), "snapshot", "restore", file, dst, NULL),
	    0);
	assert_progress(out, "restore", "[####################] 100%");
	/* check --repair of a damaged store: each problem on a line of its
	 * own, then the repair's and the second check's progress */
	damage(store);
	assert_int_equal(
	    run_tty(out, sizeof(out), "check", store, "--repair", NULL), 0);
	p = strstr(out, "problem: live key k03");
	assert_non_null(p);
	assert_true(p == out || p[-1] == '\n' || p[-1] == 'K');
	assert_progress(out, "repair", "records/s");
	assert_progress(out, "recheck", "100%");
	assert_non_null(strstr(out, "consistent after repair"));
	/* -q: no progress line at all, even on a terminal */
	assert_int_equal(run_tty(out, sizeof(out), "-q", "check", store, NULL),
	                 0);
	assert_null(strstr(out, "\033[K"));
	assert_int_equal(run_tty(out, sizeof(out), "-q", "defrag", store, NULL),
	                 0);
	assert_null(strstr(out, "\033[K"));
	th_rmrf(dst);
	free(dst);
	unlink(file);
	free(file);
	th_cleanup(store);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_status_check_repair),
	    cmocka_unit_test(test_snapshot_commands),
	    cmocka_unit_test(test_progress_on_a_terminal),
	};
	char *self = strdup(argv[0]);

	(void)argc;
	snprintf(ctl, sizeof(ctl), "%s/../revfsctl", dirname(self));
	free(self);
	if (access(ctl, X_OK) != 0) {
		fprintf(stderr, "%s: not built (make bins)\n", ctl);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
