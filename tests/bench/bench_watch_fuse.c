/*
 * bench_watch_fuse.c — watch fan-out through files: R reader threads each
 * block in read(2) on their own DIR/@watch@REV descriptor while W writer
 * threads put files in DIR at a fixed total rate; prints the delivery
 * latency (p50, p90, p99, max) from the start of a writer's open(2) to the
 * return of the reader's read(2) that carries the event, over every
 * (event, reader) pair.
 *
 *   bench_watch_fuse DIR READERS RATE SECONDS
 *
 * DIR is a directory on a revfs mount, empty and idle.  Writer w writes
 * DIR/wW_N in turn (N cycling over 64 names); its k-th put is the k-th
 * event of writer w for every reader, because a reader's events come in
 * revision order and each put is one revision — so the reader finds the
 * put's start time in the writer's table without a clock in the data.
 * A reader that misses or repeats an event is an error (exit 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NWRITERS 4
#define NNAMES   64
/* latency histogram: 10 us buckets up to 1 s, then 10 ms up to 60 s */
#define FINE_N   100000
#define COARSE_N 6000

/* A latency histogram: 10 us buckets up to 1 s, then 10 ms up to 60 s. */
struct hist {
	uint64_t fine[FINE_N], coarse[COARSE_N], over;
	uint64_t max_ns, count;
};

static const char *g_dir;
static long g_rate, g_seconds, g_readers, g_per_writer;
static int64_t *g_start[NWRITERS]; /* start time of put k of writer w */
static struct hist g_deliver, g_put;
static int g_errors;
static long long g_from_rev;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void record(struct hist *h, int64_t lat)
{
	uint64_t l = lat < 0 ? 0 : (uint64_t)lat;
	uint64_t m = __atomic_load_n(&h->max_ns, __ATOMIC_RELAXED);

	while (l > m &&
	       !__atomic_compare_exchange_n(&h->max_ns, &m, l, false,
	                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (l / 10000 < FINE_N)
		__atomic_add_fetch(&h->fine[l / 10000], 1, __ATOMIC_RELAXED);
	else if (l / 10000000 < COARSE_N)
		__atomic_add_fetch(&h->coarse[l / 10000000], 1,
		                   __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&h->over, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
}

static void *writer(void *arg)
{
	long w = (long)arg;
	int64_t t0 = now_ns(), gap = 1000000000LL * NWRITERS / g_rate;
	char path[4096], val[32];

	for (long k = 0; k < g_per_writer; k++) {
		int64_t due = t0 + k * gap, t = now_ns();
		struct timespec ts;
		int fd, n;

		if (due > t) {
			ts.tv_sec = (due - t) / 1000000000;
			ts.tv_nsec = (due - t) % 1000000000;
			nanosleep(&ts, NULL);
		}
		snprintf(path, sizeof(path), "%s/w%ld_%ld", g_dir, w,
		         k % NNAMES);
		n = snprintf(val, sizeof(val), "%ld\n", k);
		__atomic_store_n(&g_start[w][k], now_ns(), __ATOMIC_RELEASE);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, val, (size_t)n) != n || close(fd) < 0) {
			perror(path);
			__atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		record(&g_put, now_ns() - g_start[w][k]);
	}
	return NULL;
}

/* Latencies a reader keeps before adding them to the shared histogram:
 * 1,000 readers incrementing shared counters per event would measure the
 * client's cache-line traffic, not the daemon. */
#define LOCAL_N 512
static pthread_mutex_t g_hist_lock = PTHREAD_MUTEX_INITIALIZER;

static void flush(struct hist *h, const int64_t *lat, int n)
{
	pthread_mutex_lock(&g_hist_lock);
	for (int i = 0; i < n; i++)
		record(h, lat[i]);
	pthread_mutex_unlock(&g_hist_lock);
}

/* The writer of a "REV PUT DIR/wW_N" line, or -1 (another line). */
static long put_writer(const char *l, const char *end)
{
	const char *slash = NULL;

	while (l < end && *l >= '0' && *l <= '9')
		l++;
	if (end - l < 5 || memcmp(l, " PUT ", 5) != 0)
		return -1;
	for (const char *p = l + 5; p < end; p++)
		if (*p == '/')
			slash = p;
	if (!slash || end - slash < 3 || slash[1] != 'w' || slash[2] < '0' ||
	    slash[2] > '9')
		return -1;
	return strtol(slash + 2, NULL, 10);
}

/* One reader: its descriptor, what it has seen, a partial line. */
struct rd {
	int fd;
	bool done;
	long seen[NWRITERS], total;
	int nlat;
	size_t carry; /* a partial line kept at the front of buf */
	int64_t lat[LOCAL_N];
	char buf[65536 + 512];
};

/* One read(2) and its lines.  0, or -1 on an error (counted). */
static int consume(struct rd *r)
{
	long want = g_per_writer * NWRITERS;
	ssize_t n = read(r->fd, r->buf + r->carry, 65536);
	int64_t t = now_ns();
	char *l, *end, *nl;

	if (n <= 0) {
		fprintf(stderr, "reader: read: %s\n",
		        n < 0 ? strerror(errno) : "end of file");
		__atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
		return -1;
	}
	l = r->buf;
	end = r->buf + r->carry + n;
	while ((nl = memchr(l, '\n', (size_t)(end - l)))) {
		long w = put_writer(l, nl);

		l = nl + 1;
		if (w < 0 || w >= NWRITERS)
			continue; /* PROGRESS */
		if (r->seen[w] >= g_per_writer) {
			__atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		r->lat[r->nlat++] = t - __atomic_load_n(&g_start[w][r->seen[w]],
		                                        __ATOMIC_ACQUIRE);
		if (r->nlat == LOCAL_N) {
			flush(&g_deliver, r->lat, r->nlat);
			r->nlat = 0;
		}
		r->seen[w]++;
		r->total++;
	}
	r->carry = (size_t)(end - l);
	if (r->carry > 512) {
		fprintf(stderr, "reader: a line over 512 bytes\n");
		__atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
		return -1;
	}
	memmove(r->buf, l, r->carry);
	if (r->total >= want) {
		r->done = true;
		flush(&g_deliver, r->lat, r->nlat);
		r->nlat = 0;
		close(r->fd);
	}
	return 0;
}

/* A thread blocked in read(2) on one descriptor. */
static void *reader(void *arg)
{
	struct rd *r = arg;

	while (!r->done && consume(r) == 0)
		;
	return NULL;
}

/* WATCH_POLL=K: thread k polls the readers i with i % K == k and reads
 * the ready ones. */
static struct rd **g_rds;
static long g_pollers;

static void *poller(void *arg)
{
	long k = (long)arg, nfd = 0;
	struct pollfd *pf = calloc((size_t)g_readers, sizeof(*pf));
	struct rd **who = calloc((size_t)g_readers, sizeof(*who));

	for (;;) {
		nfd = 0;
		for (long i = k; i < g_readers; i += g_pollers) {
			if (g_rds[i]->done)
				continue;
			pf[nfd].fd = g_rds[i]->fd;
			pf[nfd].events = POLLIN;
			who[nfd++] = g_rds[i];
		}
		if (nfd == 0)
			break;
		if (poll(pf, (nfds_t)nfd, 10000) <= 0) {
			fprintf(stderr, "poller: poll: %s\n",
			        strerror(errno ? errno : ETIMEDOUT));
			__atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
			break;
		}
		for (long j = 0; j < nfd; j++)
			if ((pf[j].revents & (POLLIN | POLLERR | POLLHUP)) &&
			    consume(who[j]) < 0)
				who[j]->done = true;
	}
	free(pf);
	free(who);
	return NULL;
}

static double pct(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->count), acc = 0;

	for (int i = 0; i < FINE_N; i++)
		if ((acc += h->fine[i]) > want)
			return (i + 1) * 0.01;
	for (int i = 0; i < COARSE_N; i++)
		if ((acc += h->coarse[i]) > want)
			return (i + 1) * 10.0;
	return 60000.0;
}

static void print_hist(const char *what, const struct hist *h)
{
	printf("%s ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", what,
	       pct(h, 0.50), pct(h, 0.90), pct(h, 0.99),
	       (double)h->max_ns / 1e6);
}

int main(int argc, char **argv)
{
	pthread_t *rt, wt[NWRITERS];
	pthread_attr_t at;
	char path[4096];
	FILE *f;
	int64_t t0, t1;
	struct rusage ru;

	if (argc != 5) {
		fprintf(stderr, "usage: %s DIR READERS RATE SECONDS\n",
		        argv[0]);
		return 2;
	}
	g_pollers = getenv("WATCH_POLL") ? atol(getenv("WATCH_POLL")) : 0;
	if (g_pollers > atol(argv[2]))
		g_pollers = atol(argv[2]);
	g_dir = argv[1];
	g_readers = atol(argv[2]);
	g_rate = atol(argv[3]);
	g_seconds = atol(argv[4]);
	if (g_readers <= 0 || g_rate < NWRITERS || g_seconds <= 0)
		return 2;
	g_per_writer = g_rate * g_seconds / NWRITERS;
	for (int w = 0; w < NWRITERS; w++)
		g_start[w] = calloc((size_t)g_per_writer, sizeof(int64_t));
	/* the revision to start at: the mount's current one + 1 */
	snprintf(path, sizeof(path), "%s/../@revision", g_dir);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%lld", &g_from_rev) != 1) {
		fprintf(stderr, "cannot read %s\n", path);
		return 1;
	}
	fclose(f);
	rt = calloc((size_t)g_readers, sizeof(*rt));
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 * 1024);
	g_rds = calloc((size_t)g_readers, sizeof(*g_rds));
	for (long i = 0; i < g_readers; i++) {
		snprintf(path, sizeof(path), "%s/@watch@%lld", g_dir,
		         g_from_rev + 1);
		g_rds[i] = calloc(1, sizeof(*g_rds[i]));
		g_rds[i]->fd = open(path, O_RDONLY);
		if (g_rds[i]->fd < 0) {
			perror(path);
			return 1;
		}
		if (!g_pollers &&
		    pthread_create(&rt[i], &at, reader, g_rds[i]) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	for (long k = 0; k < g_pollers; k++)
		pthread_create(&rt[k], &at, poller, (void *)k);
	usleep(500000); /* the readers are waiting in read() */
	t0 = now_ns();
	for (long w = 0; w < NWRITERS; w++)
		pthread_create(&wt[w], NULL, writer, (void *)w);
	for (int w = 0; w < NWRITERS; w++)
		pthread_join(wt[w], NULL);
	t1 = now_ns();
	for (long i = 0; i < (g_pollers ? g_pollers : g_readers); i++)
		pthread_join(rt[i], NULL);
	for (long i = 0; i < g_readers; i++)
		free(g_rds[i]);
	free(g_rds);
	printf("readers %ld, puts %ld in %.2f s (%.0f/s), deliveries %" PRIu64
	       "\n",
	       g_readers, g_per_writer * NWRITERS, (double)(t1 - t0) / 1e9,
	       (double)(g_per_writer * NWRITERS) / ((double)(t1 - t0) / 1e9),
	       g_deliver.count);
	print_hist("latency", &g_deliver);
	print_hist("put (open to close)", &g_put);
	getrusage(RUSAGE_SELF, &ru);
	printf("client CPU: %.2f s\n",
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	if (g_errors || g_deliver.count !=
	                    (uint64_t)(g_readers * g_per_writer * NWRITERS)) {
		fprintf(stderr, "errors: %d, deliveries %" PRIu64 " of %ld\n",
		        g_errors, g_deliver.count,
		        g_readers * g_per_writer * NWRITERS);
		return 1;
	}
	return 0;
}
