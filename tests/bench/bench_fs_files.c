/*
 * bench_fs_files.c — the file-creating half of the filesystem benchmarks
 * (tests/bench/fs_*.sh): T threads create N files of S bytes in a directory
 * and the rate is printed; or the same load as durable puts to a private
 * etcd, the same-run baseline.
 *
 *   bench_fs_files files DIR PREFIX N THREADS SIZE [fsync]
 *       create DIR/PREFIX<n> for n in [0, N), thread t taking n = t mod T;
 *       each file is opened O_CREAT|O_EXCL, written in one write(), then
 *       fsync()ed if "fsync" is given, then closed.  On a revfs mount
 *       with sync=always the close is the durable commit; on a local file
 *       system the fsync is.  After the timed part every file is stat()ed
 *       and must have SIZE bytes (outside the timing).
 *   bench_fs_files etcd DIR N THREADS SIZE
 *       start etcd 3.4 with its data in DIR (loopback ports), and put N
 *       keys of SIZE bytes from THREADS threads, each with its own
 *       keep-alive HTTP connection to the JSON gateway; then check the
 *       key count with a count-only range, and stop etcd.
 *
 * Output: one line "RESULT <what> files=N seconds=S rate=R" for the
 * scripts to pick up, plus human-readable context.  Exit status 0 only if
 * every file or put succeeded and the check saw all of them.  The speed is
 * reported, never judged here.
 */
#include "tests/bench/bench_etcd.h"
#include "tests/bench/bench_util.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>

struct bf_job {
	const char *dir;
	const char *prefix;
	long n;
	int threads;
	int t; /* this thread's index */
	size_t size;
	bool fsync;
	const struct bench_etcd *etcd;
	const char *val;
	long done; /* written by this thread only, read after join */
	int failed;
	int64_t phase_ns[4]; /* open, write, fsync, close; this thread only */
};

enum { BF_OPEN, BF_WRITE, BF_FSYNC, BF_CLOSE };

static void *bf_file_thread(void *arg)
{
	struct bf_job *j = arg;
	char path[PATH_MAX];

	for (long i = j->t; i < j->n && !j->failed; i += j->threads) {
		int64_t t0, t1, t2, t3, t4;
		int fd;

		snprintf(path, sizeof(path), "%s/%s%ld", j->dir, j->prefix, i);
		t0 = bench_mono_ns();
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		t1 = bench_mono_ns();
		if (fd < 0) {
			fprintf(stderr, "open %s: %s\n", path, strerror(errno));
			j->failed = 1;
			break;
		}
		if (j->size && write(fd, j->val, j->size) != (ssize_t)j->size) {
			fprintf(stderr, "write %s: %s\n", path,
			        strerror(errno));
			j->failed = 1;
		}
		t2 = bench_mono_ns();
		if (j->fsync && fsync(fd)) {
			fprintf(stderr, "fsync %s: %s\n", path,
			        strerror(errno));
			j->failed = 1;
		}
		t3 = bench_mono_ns();
		/* on revfs the close is the commit: its error counts */
		if (close(fd)) {
			fprintf(stderr, "close %s: %s\n", path,
			        strerror(errno));
			j->failed = 1;
		}
		t4 = bench_mono_ns();
		j->phase_ns[BF_OPEN] += t1 - t0;
		j->phase_ns[BF_WRITE] += t2 - t1;
		j->phase_ns[BF_FSYNC] += t3 - t2;
		j->phase_ns[BF_CLOSE] += t4 - t3;
		if (!j->failed)
			j->done++;
	}
	return NULL;
}

static void *bf_etcd_thread(void *arg)
{
	struct bf_job *j = arg;
	struct bench_buf ans = {0};
	CURL *h = curl_easy_init();
	char key[64];

	if (!h) {
		j->failed = 1;
		return NULL;
	}
	for (long i = j->t; i < j->n && !j->failed; i += j->threads) {
		int kl = snprintf(key, sizeof(key), "w/k%ld", i);

		if (bench_etcd_put(h, j->etcd, key, (size_t)kl, j->val, j->size,
		                   &ans))
			j->failed = 1;
		else
			j->done++;
	}
	free(ans.p);
	curl_easy_cleanup(h);
	return NULL;
}

/* Run the jobs on `threads` threads; returns the wall time in ns, or -1. */
static int64_t bf_run(struct bf_job *jobs, int threads, void *(*fn)(void *),
                      long *done)
{
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	int64_t t0, t1;
	int started = 0, failed = 0;

	if (!tid)
		return -1;
	t0 = bench_mono_ns();
	for (; started < threads; started++)
		if (pthread_create(&tid[started], NULL, fn, &jobs[started]))
			break;
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	t1 = bench_mono_ns();
	free(tid);
	*done = 0;
	for (int i = 0; i < started; i++) {
		*done += jobs[i].done;
		failed |= jobs[i].failed;
	}
	return failed || started < threads ? -1 : t1 - t0;
}

static int bf_check_files(const char *dir, const char *prefix, long n,
                          size_t size)
{
	char path[PATH_MAX];
	struct stat st;

	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s%ld", dir, prefix, i);
		if (stat(path, &st) || (size_t)st.st_size != size) {
			fprintf(stderr, "check %s: %s\n", path,
			        errno ? strerror(errno) : "wrong size");
			return -1;
		}
	}
	return 0;
}

/* The number of keys under w/ in etcd, by a count-only range. */
static long bf_etcd_count(const struct bench_etcd *x)
{
	struct bench_buf ans = {0};
	CURL *h = curl_easy_init();
	long code, count = -1;
	char *p;

	if (!h)
		return -1;
	/* key "w/", range_end "w0" */
	code = bench_http_post(h, x->url, "/v3/kv/range",
	                       "{\"key\":\"dy8=\",\"range_end\":\"dzA=\","
	                       "\"count_only\":true}",
	                       &ans);
	if (code == 200 && ans.p) {
		p = strstr(ans.p, "\"count\":\"");
		count = p ? atol(p + 9) : 0; /* absent when zero */
	}
	free(ans.p);
	curl_easy_cleanup(h);
	return count;
}

static void bf_result(const char *what, long n, int64_t ns)
{
	double s = (double)ns / 1e9;

	printf("RESULT %s files=%ld seconds=%.3f rate=%.0f\n", what, n, s,
	       s > 0 ? (double)n / s : 0.0);
}

/* Where a writer's time went: the mean of each call, over every file. */
static void bf_phases(const struct bf_job *jobs, int threads, long n)
{
	static const char *const name[] = {"open", "write", "fsync", "close"};
	int64_t sum[4] = {0};

	if (n <= 0)
		return;
	for (int t = 0; t < threads; t++)
		for (int p = 0; p < 4; p++)
			sum[p] += jobs[t].phase_ns[p];
	printf("mean per file:");
	for (int p = 0; p < 4; p++)
		printf(" %s %.3f ms", name[p],
		       (double)sum[p] / (double)n / 1e6);
	printf("\n");
}

static int bf_usage(void)
{
	fprintf(stderr, "usage: bench_fs_files files DIR PREFIX N THREADS SIZE "
	                "[fsync]\n"
	                "       bench_fs_files etcd DIR N THREADS SIZE\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct bench_etcd etcd = {0};
	struct bf_job *jobs = NULL;
	bool is_etcd, do_fsync = false;
	char *val = NULL;
	int threads, rc = 1;
	long n, done = 0, count;
	size_t size;
	int64_t ns;

	if (argc < 2)
		return bf_usage();
	is_etcd = !strcmp(argv[1], "etcd");
	if (is_etcd ? argc != 6
	            : (strcmp(argv[1], "files") || (argc != 7 && argc != 8)))
		return bf_usage();
	n = atol(argv[is_etcd ? 3 : 4]);
	threads = atoi(argv[is_etcd ? 4 : 5]);
	size = (size_t)atol(argv[is_etcd ? 5 : 6]);
	if (!is_etcd && argc == 8) {
		if (strcmp(argv[7], "fsync"))
			return bf_usage();
		do_fsync = true;
	}
	if (n < 0 || threads < 1)
		return bf_usage();
	val = malloc(size + 1);
	jobs = calloc((size_t)threads, sizeof(*jobs));
	if (!val || !jobs)
		goto out;
	memset(val, 'x', size); /* bytes that survive a JSON string as-is */
	for (int t = 0; t < threads; t++)
		jobs[t] = (struct bf_job){.dir = argv[2],
		                          .prefix = is_etcd ? "" : argv[3],
		                          .n = n,
		                          .threads = threads,
		                          .t = t,
		                          .size = size,
		                          .fsync = do_fsync,
		                          .etcd = &etcd,
		                          .val = val};
	if (!is_etcd) {
		ns = bf_run(jobs, threads, bf_file_thread, &done);
		if (ns < 0) {
			fprintf(stderr, "files: failed after %ld files\n",
			        done);
			goto out;
		}
		if (bf_check_files(argv[2], argv[3], n, size))
			goto out;
		printf("%ld files of %zu bytes by %d threads%s: all present "
		       "with their size\n",
		       n, size, threads, do_fsync ? ", fsync each" : "");
		bf_phases(jobs, threads, n);
		bf_result(do_fsync ? "files-fsync" : "files", n, ns);
		rc = 0;
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (bench_etcd_start(&etcd, argv[2])) {
		fprintf(stderr, "etcd: did not start (log %s.log)\n", argv[2]);
		goto out_curl;
	}
	ns = bf_run(jobs, threads, bf_etcd_thread, &done);
	if (ns < 0) {
		fprintf(stderr, "etcd: failed after %ld puts\n", done);
		goto out_etcd;
	}
	count = bf_etcd_count(&etcd);
	if (count != n) {
		fprintf(stderr, "etcd: %ld keys after %ld puts\n", count, n);
		goto out_etcd;
	}
	printf("etcd %s: %ld puts of %zu bytes by %d keep-alive clients; "
	       "count %ld\n",
	       etcd.url, n, size, threads, count);
	bf_result("etcd", n, ns);
	rc = 0;
out_etcd:
	bench_etcd_stop(&etcd);
out_curl:
	curl_global_cleanup();
out:
	free(jobs);
	free(val);
	return rc;
}
