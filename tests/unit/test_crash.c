/*
 * test_crash.c — kill -9 a process that writes with 8 threads, reopen the
 * store: every write whose call returned (reported through a pipe after
 * the return) is there at its revision, the revision did not go back, and
 * local_check() finds the indexes in agreement.  Two rounds on one store,
 * so the second crash hits a store that was already recovered once.
 */
#include "engine_helpers.h"
#include "engine/local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define NTHREADS    8
#define MAX_REPORTS 200000

/* One returned write, as the child reports it (< PIPE_BUF: atomic). */
struct report {
	int32_t thread;
	int32_t seq;
	int32_t round;
	int32_t is_delete;
	int64_t rev;
};

struct child_arg {
	eng *e;
	int fd;
	int thread;
	int round;
};

static void key_of(char *k, size_t n, int round, int thread, int seq)
{
	snprintf(k, n, "crash/%d/%d/%06d", round, thread, seq);
}

static void *child_writer(void *arg)
{
	struct child_arg *a = arg;
	char k[64], v[64];

	for (int seq = 0;; seq++) {
		struct report r = {
		    .thread = a->thread, .seq = seq, .round = a->round};

		key_of(k, sizeof(k), a->round, a->thread, seq);
		snprintf(v, sizeof(v), "v%d", seq);
		if (eng_put(a->e, k, strlen(k), v, strlen(v), 0, &r.rev, NULL))
			_exit(3);
		if (write(a->fd, &r, sizeof(r)) != sizeof(r))
			_exit(4);
		/* Every third key is deleted again: the latest index must
		 * follow deletions too. */
		if (seq % 3 == 2) {
			key_of(k, sizeof(k), a->round, a->thread, seq - 1);
			r.seq = seq - 1;
			r.is_delete = 1;
			if (eng_delete(a->e, k, strlen(k), NULL, 0, NULL,
			               &r.rev))
				_exit(5);
			if (write(a->fd, &r, sizeof(r)) != sizeof(r))
				_exit(6);
		}
	}
	return NULL;
}

static void run_child(const char *dir, int fd, int round)
{
	static struct child_arg args[NTHREADS];
	pthread_t t[NTHREADS];
	eng *e = NULL;

	if (eng_open(dir, NULL, &e))
		_exit(2);
	for (int i = 0; i < NTHREADS; i++) {
		args[i] = (struct child_arg){e, fd, i, round};
		pthread_create(&t[i], NULL, child_writer, &args[i]);
	}
	for (;;)
		pause();
}

static size_t read_reports(int fd, struct report *out, size_t have, size_t want,
                           int timeout_ms)
{
	int64_t deadline = eng_now_mono_ns() + (int64_t)timeout_ms * 1000000;

	while (have < want && eng_now_mono_ns() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, &out[have], sizeof(*out));
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		assert_int_equal(n, sizeof(*out));
		have++;
	}
	return have;
}

static void report_problem(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "check: %s\n", msg);
}

static void verify(const char *dir, struct report *r, size_t n)
{
	eng *e = th_open(dir, NULL);
	eng_rev_t max = 0;
	char k[64], v[64];

	for (size_t i = 0; i < n; i++) {
		struct eng_kv kv;

		if (r[i].rev > max)
			max = r[i].rev;
		key_of(k, sizeof(k), r[i].round, r[i].thread, r[i].seq);
		assert_int_equal(eng_get(e, k, strlen(k), r[i].rev, NULL, &kv),
		                 0);
		if (r[i].is_delete) {
			assert_int_equal(kv.mod_rev, 0);
		} else {
			snprintf(v, sizeof(v), "v%d", r[i].seq);
			assert_int_equal(kv.mod_rev, r[i].rev);
			assert_int_equal(kv.value_len, strlen(v));
			assert_memory_equal(kv.value, v, strlen(v));
		}
		eng_kv_release(&kv);
	}
	/* The revision never goes back. */
	assert_true(eng_current_rev(e) >= max);
	assert_int_equal(local_check(local_from_eng(e), report_problem, NULL),
	                 0);
	eng_close(e);
}

static void crash_round(const char *dir, int round, struct report *reps,
                        size_t *nreps)
{
	int fds[2];
	pid_t pid;
	int status;
	size_t before = *nreps;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		run_child(dir, fds[1], round);
	}
	close(fds[1]);
	/* Let it write for a while (at least some hundred writes). */
	*nreps = read_reports(fds[0], reps, *nreps, before + 4000, 10000);
	assert_true(*nreps > before + 50);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	/* Whatever was reported before the kill is still in the pipe. */
	*nreps = read_reports(fds[0], reps, *nreps, MAX_REPORTS, 500);
	close(fds[0]);
}

static void test_kill9(void **state)
{
	char *dir = th_tmpdir();
	struct report *reps = calloc(MAX_REPORTS, sizeof(*reps));
	size_t n = 0;
	eng *e;

	(void)state;
	assert_non_null(reps);
	e = th_open(dir, NULL); /* create it first */
	eng_close(e);
	for (int round = 0; round < 2; round++) {
		crash_round(dir, round, reps, &n);
		verify(dir, reps, n);
	}
	free(reps);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill9),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
