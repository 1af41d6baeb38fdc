/*
 * bench_etcd.h — a throwaway etcd for same-run baselines (tests/bench/).
 *
 * Starts Debian's etcd (3.4) on free loopback ports with its own data
 * directory, talks to it through its JSON gateway (/v3/...) with libcurl,
 * and stops it.  The child gets PR_SET_PDEATHSIG so it never outlives the
 * benchmark.  Keys and values travel base64-encoded, as the gateway wants.
 * Static inline helpers only, for the one-file benchmark programs.
 */
#ifndef REVFS_BENCH_ETCD_H
#define REVFS_BENCH_ETCD_H

#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bench_etcd {
	pid_t pid;
	char url[64];            /* http://127.0.0.1:PORT */
	char dir[PATH_MAX + 16]; /* its data directory */
};

/* ----------------------------------------------------------------- base64 */

static const char bench_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode n bytes; out needs 4 * ((n + 2) / 3) + 1 bytes.  Returns length. */
static inline size_t bench_b64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = bench_b64[(v >> 18) & 63];
		out[o++] = bench_b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? bench_b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? bench_b64[v & 63] : '=';
	}
	out[o] = 0;
	return o;
}

static inline int bench_b64_val(char c)
{
	const char *p = c ? strchr(bench_b64, c) : NULL;

	return p ? (int)(p - bench_b64) : -1;
}

/* Decode at most `max` bytes into out; returns the length or -1. */
static inline long bench_b64_decode(const char *in, void *out, size_t max)
{
	unsigned char *o = out;
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (; *in && *in != '='; in++) {
		int v = bench_b64_val(*in);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= max)
				return (long)n;
			o[n++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)n;
}

/* ------------------------------------------------------------------ HTTP */

struct bench_buf {
	char *p;
	size_t len, cap;
};

static inline size_t bench_buf_write(char *data, size_t sz, size_t nm,
                                     void *arg)
{
	struct bench_buf *b = arg;
	size_t n = sz * nm;

	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

/* POST `body` to url+path on handle h (kept alive by the caller).  Returns
 * the HTTP status, or -1; the answer is in *ans (reset first). */
static inline long bench_http_post(CURL *h, const char *url, const char *path,
                                   const char *body, struct bench_buf *ans)
{
	char full[256];
	long code = -1;

	snprintf(full, sizeof(full), "%s%s", url, path);
	ans->len = 0;
	curl_easy_setopt(h, CURLOPT_URL, full);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_buf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

/* A put through the gateway.  Returns 0 or -1. */
static inline int bench_etcd_put(CURL *h, const struct bench_etcd *x,
                                 const void *key, size_t klen, const void *val,
                                 size_t vlen, struct bench_buf *ans)
{
	size_t cap = 4 * ((klen + vlen + 4) / 3) + 64;
	char *body = malloc(cap);
	size_t o;
	long code;

	if (!body)
		return -1;
	o = (size_t)snprintf(body, cap, "{\"key\":\"");
	o += bench_b64_encode(key, klen, body + o);
	o += (size_t)snprintf(body + o, cap - o, "\",\"value\":\"");
	o += bench_b64_encode(val, vlen, body + o);
	snprintf(body + o, cap - o, "\"}");
	code = bench_http_post(h, x->url, "/v3/kv/put", body, ans);
	free(body);
	if (code != 200)
		fprintf(stderr, "etcd put: HTTP %ld: %.200s\n", code,
		        ans->p ? ans->p : "");
	return code == 200 ? 0 : -1;
}

/* ------------------------------------------------------------- lifecycle */

static inline bool bench_port_free(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return false;
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static inline int64_t bench_etcd_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Start etcd with its data in `dir` (created by etcd if missing) and its
 * log in dir.log.  Waits until a range answers (timeout_s at most, polling
 * every poll_ms); *ready_ns (if not NULL) gets the time from the fork to
 * that first answer.  Returns 0 or -1.
 */
static inline int bench_etcd_start_timed(struct bench_etcd *x, const char *dir,
                                         int timeout_s, int poll_ms,
                                         int64_t *ready_ns)
{
	char purl[64], cluster[96], log[PATH_MAX + 32];
	int port = 0;
	CURL *h;
	struct bench_buf ans = {0};
	int64_t t0, deadline;
	bool up = false;

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "%s", dir);
	snprintf(log, sizeof(log), "%s.log", dir);
	srand((unsigned)(getpid() ^ time(NULL)));
	for (int tries = 0; tries < 50 && !port; tries++) {
		int p = 20000 + rand() % 30000;

		if (bench_port_free(p) && bench_port_free(p + 1))
			port = p;
	}
	if (!port)
		return -1;
	snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d", port);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", port + 1);
	snprintf(cluster, sizeof(cluster), "default=%s", purl);
	h = curl_easy_init();
	if (!h)
		return -1;
	t0 = bench_etcd_mono_ns();
	x->pid = fork();
	if (x->pid < 0) {
		curl_easy_cleanup(h);
		return -1;
	}
	if (x->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execlp("etcd", "etcd", "--data-dir", dir, "--name", "default",
		       "--listen-client-urls", x->url,
		       "--advertise-client-urls", x->url, "--listen-peer-urls",
		       purl, "--initial-advertise-peer-urls", purl,
		       "--initial-cluster", cluster, (char *)NULL);
		_exit(127);
	}
	deadline = t0 + (int64_t)timeout_s * 1000000000;
	while (bench_etcd_mono_ns() < deadline) {
		if (bench_http_post(h, x->url, "/v3/kv/range",
		                    "{\"key\":\"AA==\"}", &ans) == 200) {
			up = true;
			break;
		}
		usleep((useconds_t)poll_ms * 1000);
	}
	if (ready_ns)
		*ready_ns = bench_etcd_mono_ns() - t0;
	curl_easy_cleanup(h);
	free(ans.p);
	if (up)
		return 0;
	kill(x->pid, SIGKILL);
	waitpid(x->pid, NULL, 0);
	x->pid = 0;
	return -1;
}

static inline int bench_etcd_start(struct bench_etcd *x, const char *dir)
{
	return bench_etcd_start_timed(x, dir, 10, 100, NULL);
}

static inline void bench_etcd_stop(struct bench_etcd *x)
{
	int64_t deadline = (int64_t)time(NULL) + 30;

	if (x->pid <= 0)
		return;
	kill(x->pid, SIGTERM);
	while (waitpid(x->pid, NULL, WNOHANG) == 0) {
		if (time(NULL) >= deadline) {
			kill(x->pid, SIGKILL);
			waitpid(x->pid, NULL, 0);
			break;
		}
		usleep(50000);
	}
	x->pid = 0;
}

/* etcd's RSS in KiB and CPU time in ns (from /proc/PID), or -1. */
static inline long bench_pid_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static inline int64_t bench_pid_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || sscanf(p + 2,
	                 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	                 "%lu %lu",
	                 &ut, &st) != 2)
		return -1;
	return (int64_t)(ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
}

#endif /* REVFS_BENCH_ETCD_H */
