/*
 * bench_util.h — helpers shared by the engine benchmarks (tests/bench/).
 *
 * Each benchmark is one program built from one bench_*.c file, so the
 * shared pieces live here as static inline functions: clocks, CPU time,
 * process RSS and I/O counters, the size of a directory tree, a temporary
 * directory that is removed afterwards, a fast PRNG for incompressible
 * values, a latency histogram and a description of the machine.
 *
 * Benchmarks report speed; they never assert it.  A benchmark fails (exit
 * status 1) only when the engine returns an error or a result is wrong.
 */
#ifndef REVFS_BENCH_UTIL_H
#define REVFS_BENCH_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ clocks */

static inline int64_t bench_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t bench_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleep until the monotonic time `ns` (returns at once if it is past). */
static inline void bench_sleep_until(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000,
	                      .tv_nsec = ns % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* User + system CPU time of the whole process (every thread), in ns. */
static inline int64_t bench_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* -------------------------------------------------- process memory and I/O */

/* A "Name:   N kB" field of /proc/self/status in KiB, or -1. */
static inline long bench_status_kib(const char *field)
{
	char line[256];
	size_t flen = strlen(field);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static inline long bench_rss_kib(void)
{
	return bench_status_kib("VmRSS");
}

struct bench_io {
	int64_t wchar;       /* bytes passed to write() and friends */
	int64_t write_bytes; /* bytes this process caused to be sent to disk */
};

static inline void bench_io_get(struct bench_io *io)
{
	char name[64];
	long long v;
	FILE *f = fopen("/proc/self/io", "r");

	io->wchar = -1;
	io->write_bytes = -1;
	if (!f)
		return;
	while (fscanf(f, "%63[^:]: %lld\n", name, &v) == 2) {
		if (strcmp(name, "wchar") == 0)
			io->wchar = v;
		else if (strcmp(name, "write_bytes") == 0)
			io->write_bytes = v;
	}
	fclose(f);
}

/* -------------------------------------------------------------- directories */

static int64_t bench_tree_bytes_acc; /* only used inside bench_tree_bytes */

static inline int bench_tree_bytes_cb(const char *path, const struct stat *st,
                                      int type, struct FTW *ftw)
{
	if (type == FTW_F)
		bench_tree_bytes_acc += st->st_size;
	return 0;
}

/* Total size of the regular files under `dir` (not thread-safe). */
static inline int64_t bench_tree_bytes(const char *dir)
{
	bench_tree_bytes_acc = 0;
	if (nftw(dir, bench_tree_bytes_cb, 16, FTW_PHYS) != 0)
		return -1;
	return bench_tree_bytes_acc;
}

static inline int bench_rm_cb(const char *path, const struct stat *st, int type,
                              struct FTW *ftw)
{
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf `dir`. */
static inline int bench_rmtree(const char *dir)
{
	return nftw(dir, bench_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Make a fresh directory under `base` (NULL: $TMPDIR or /tmp) into `out`
 * (PATH_MAX bytes).  Returns 0 or -1 with errno.
 */
static inline int bench_mkdtemp(const char *base, const char *tag, char *out)
{
	if (!base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(out, PATH_MAX, "%s/revfs-bench-%s.XXXXXX", base, tag);
	return mkdtemp(out) ? 0 : -1;
}

/* ------------------------------------------------------------------- PRNG */

/* xorshift64*: fast and good enough for benchmark data (never 0 state). */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Fill `len` bytes with pseudo-random (incompressible) data. */
static inline void bench_fill(uint64_t *s, void *buf, size_t len)
{
	unsigned char *p = buf;
	uint64_t r;

	while (len >= 8) {
		r = bench_rand(s);
		memcpy(p, &r, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		r = bench_rand(s);
		memcpy(p, &r, len);
	}
}

/* -------------------------------------------------------- latency histogram */

/*
 * A latency histogram with 1 us buckets up to 100 ms, then 100 us buckets up
 * to 10 s; above that the last bucket.  Not thread-safe: one per thread,
 * merged with bench_hist_merge().
 */
#define BENCH_HIST_FINE   100000 /* 1 us buckets: [0, 100 ms) */
#define BENCH_HIST_COARSE 99000  /* 100 us buckets: [100 ms, 10 s) */
#define BENCH_HIST_N      (BENCH_HIST_FINE + BENCH_HIST_COARSE + 1)

struct bench_hist {
	uint64_t n;
	int64_t max_ns;
	int64_t sum_ns;
	uint32_t *b; /* BENCH_HIST_N buckets */
};

static inline int bench_hist_init(struct bench_hist *h)
{
	h->n = 0;
	h->max_ns = 0;
	h->sum_ns = 0;
	h->b = calloc(BENCH_HIST_N, sizeof(*h->b));
	return h->b ? 0 : -1;
}

static inline void bench_hist_free(struct bench_hist *h)
{
	free(h->b);
	h->b = NULL;
}

static inline void bench_hist_add(struct bench_hist *h, int64_t ns)
{
	int64_t us = ns / 1000;
	size_t i;

	if (ns < 0)
		ns = us = 0;
	if (us < BENCH_HIST_FINE)
		i = (size_t)us;
	else if (us < BENCH_HIST_FINE + (int64_t)BENCH_HIST_COARSE * 100)
		i = BENCH_HIST_FINE + (size_t)((us - BENCH_HIST_FINE) / 100);
	else
		i = BENCH_HIST_N - 1;
	h->b[i]++;
	h->n++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

static inline void bench_hist_merge(struct bench_hist *dst,
                                    const struct bench_hist *src)
{
	for (size_t i = 0; i < BENCH_HIST_N; i++)
		dst->b[i] += src->b[i];
	dst->n += src->n;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

/* The q-quantile (0..1) in ns: the upper edge of its bucket. */
static inline int64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t want, acc = 0;

	if (!h->n)
		return 0;
	want = (uint64_t)(q * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (size_t i = 0; i < BENCH_HIST_N; i++) {
		acc += h->b[i];
		if (acc > want) {
			if (i < BENCH_HIST_FINE)
				return ((int64_t)i + 1) * 1000;
			if (i < BENCH_HIST_N - 1)
				return (BENCH_HIST_FINE +
				        ((int64_t)i - BENCH_HIST_FINE + 1) *
				            100) *
				       1000;
			return h->max_ns;
		}
	}
	return h->max_ns;
}

/* ---------------------------------------------------------------- machine */

/* The file system type and device of the mount holding `path`. */
static inline void bench_mount_of(const char *path, char *dev, size_t devsz,
                                  char *type, size_t typesz)
{
	char real[PATH_MAX], line[4096], mdev[1024], mdir[1024], mtype[64];
	size_t best = 0;
	FILE *f;

	snprintf(dev, devsz, "?");
	snprintf(type, typesz, "?");
	if (!realpath(path, real))
		return;
	f = fopen("/proc/mounts", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		size_t l;

		if (sscanf(line, "%1023s %1023s %63s", mdev, mdir, mtype) != 3)
			continue;
		l = strlen(mdir);
		if (strncmp(real, mdir, l) != 0 ||
		    (real[l] != '/' && real[l] != 0 && l > 1))
			continue;
		if (l >= best) {
			best = l;
			snprintf(dev, devsz, "%s", mdev);
			snprintf(type, typesz, "%s", mtype);
		}
	}
	fclose(f);
}

/* Print the machine, the load and the data directory's file system. */
static inline void bench_print_machine(const char *data_dir)
{
	char line[512], model[256] = "?", dev[1024], type[64];
	double load[3] = {0, 0, 0};
	struct utsname u;
	FILE *f;

	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *c = strchr(line, ':');

			if (strncmp(line, "model name", 10) == 0 && c) {
				snprintf(model, sizeof(model), "%s", c + 2);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		}
		fclose(f);
	}
	uname(&u);
	getloadavg(load, 3);
	bench_mount_of(data_dir, dev, sizeof(dev), type, sizeof(type));
	printf(
	    "machine: %ld cpus (%s), %ld MiB RAM, kernel %s\n",
	    sysconf(_SC_NPROCESSORS_ONLN), model,
	    (long)((long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) >>
	           20),
	    u.release);
	printf("data dir: %s on %s (%s)\n", data_dir, dev, type);
	printf("load average: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
}

static inline void bench_print_load(const char *when)
{
	double load[3] = {0, 0, 0};

	getloadavg(load, 3);
	printf("load average %s: %.2f %.2f %.2f\n", when, load[0], load[1],
	       load[2]);
}

#endif /* REVFS_BENCH_UTIL_H */
