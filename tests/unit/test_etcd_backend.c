/*
 * test_etcd_backend.c — the etcd backend (engine/etcd_backend*.c) against a
 * real etcd: the test starts Debian's etcd (/usr/bin/etcd) on free loopback
 * ports with its own mktemp -d data directory, and kills it and removes the
 * directory at the end.  If etcd cannot be started the whole group fails
 * (nothing is skipped).  Every test works under its own key prefix.
 *
 * Covered: ranges (limit, count, keys-only, the emulated delimiter compared
 * with the local backend on the same keys), txns, the reserved key space
 * staying invisible, snapshots pinning a revision and failing after a
 * compaction, the compaction revision, history (live and deleted keys,
 * limits, after a compaction), leases (names, keys, set_ttl keeping the
 * id, list, revoke, expiry), watches (progress markers at once and every
 * interval, replay, compacted start, a stream cut by an etcd restart
 * resuming without loss), endpoint failover and a dead cluster failing
 * within the bound and recovering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "engine/engine.h"
#include "engine/etcd_backend.h"

static char g_dir[64];
static char g_url[64];
static int g_cport, g_pport;
static pid_t g_pid;

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A loopback port that was free a moment ago. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void etcd_spawn(void)
{
	char data[128], log[128], curl[64], purl[64], cluster[96];
	pid_t pid;

	snprintf(data, sizeof(data), "%s/data", g_dir);
	snprintf(log, sizeof(log), "%s/etcd.log", g_dir);
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", g_cport);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", g_pport);
	snprintf(cluster, sizeof(cluster), "t=%s", purl);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir",
		      data, "--listen-client-urls", curl,
		      "--advertise-client-urls", curl, "--listen-peer-urls",
		      purl, "--initial-advertise-peer-urls", purl,
		      "--initial-cluster", cluster,
		      "--experimental-watch-progress-notify-interval", "200ms",
		      (char *)NULL);
		_exit(127);
	}
	g_pid = pid;
}

static void etcd_kill(void)
{
	if (g_pid > 0) {
		kill(g_pid, SIGKILL);
		waitpid(g_pid, NULL, 0);
		g_pid = 0;
	}
}

static void test_log(void *arg, enum eng_log_level level, const char *msg)
{
	(void)arg;
	if (level <= ENG_LOG_WARN && getenv("TEST_VERBOSE"))
		fprintf(stderr, "[engine] %s\n", msg);
}

static int open_eps(const char *const *eps, size_t n, eng **out, int prog_ms)
{
	struct eng_etcd_options eo;
	struct eng_options o;

	eng_etcd_options_init(&eo);
	eo.endpoints = eps;
	eo.nendpoints = n;
	eo.timeout_ms = 2000;
	eo.connect_timeout_ms = 500;
	eng_options_init(&o);
	o.progress_interval_ms = prog_ms;
	o.log = test_log;
	return eng_open_etcd(&eo, &o, out);
}

static eng *open_e(void)
{
	const char *ep[] = {g_url};
	eng *e = NULL;

	assert_int_equal(open_eps(ep, 1, &e, 200), 0);
	return e;
}

/* Wait until etcd answers (up to 20 s). */
static bool etcd_wait(void)
{
	const char *ep[] = {g_url};
	int64_t dl = now_ms() + 20000;

	while (now_ms() < dl) {
		eng *e = NULL;

		if (open_eps(ep, 1, &e, 200) == 0) {
			eng_close(e);
			return true;
		}
		if (g_pid > 0 && waitpid(g_pid, NULL, WNOHANG) == g_pid) {
			g_pid = 0;
			return false;
		}
		sleep_ms(100);
	}
	return false;
}

static int group_setup(void **state)
{
	char tmpl[] = "/tmp/revfs-etcdb-XXXXXX";

	(void)state;
	if (access("/usr/bin/etcd", X_OK) != 0) {
		fprintf(stderr,
		        "etcd is not installed (Debian: etcd-server)\n");
		return -1;
	}
	if (!mkdtemp(tmpl))
		return -1;
	snprintf(g_dir, sizeof(g_dir), "%s", tmpl);
	for (int try = 0; try < 3; try++) {
		g_cport = free_port();
		g_pport = free_port();
		snprintf(g_url, sizeof(g_url), "http://127.0.0.1:%d", g_cport);
		etcd_spawn();
		if (etcd_wait())
			return 0;
		etcd_kill();
	}
	fprintf(stderr, "etcd did not start (log in %s/etcd.log)\n", g_dir);
	return -1;
}

static int group_teardown(void **state)
{
	(void)state;
	etcd_kill();
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static eng_rev_t put(eng *e, const char *k, const char *v)
{
	eng_rev_t rev = 0;

	assert_int_equal(eng_put(e, k, strlen(k), v, strlen(v), 0, &rev, NULL),
	                 0);
	assert_true(rev > 0);
	return rev;
}

static bool kv_is(const struct eng_kv *kv, const char *k)
{
	return kv->key_len == strlen(k) && memcmp(kv->key, k, kv->key_len) == 0;
}

/* ---------------------------------------------------------------- kv */

static void test_kv(void **state)
{
	eng *e = open_e();
	struct eng_range_req req = {0};
	struct eng_range_res res;
	struct eng_kv kv;
	eng_rev_t r1, r2, r3;
	int64_t deleted = 0;

	(void)state;
	r1 = put(e, "kv/a", "1");
	r2 = put(e, "kv/b", "22");
	r3 = put(e, "kv/a", "333");
	assert_true(r1 < r2 && r2 < r3);
	assert_true(eng_current_rev(e) >= r3);

	assert_int_equal(eng_get(e, "kv/a", 4, 0, NULL, &kv), 0);
	assert_int_equal(kv.value_len, 3);
	assert_memory_equal(kv.value, "333", 3);
	assert_int_equal(kv.create_rev, r1);
	assert_int_equal(kv.mod_rev, r3);
	assert_int_equal(kv.version, 2);
	eng_kv_release(&kv);
	/* an older revision */
	assert_int_equal(eng_get(e, "kv/a", 4, r2, NULL, &kv), 0);
	assert_memory_equal(kv.value, "1", 1);
	eng_kv_release(&kv);
	/* a future one */
	assert_int_equal(eng_get(e, "kv/a", 4, r3 + 1000000, NULL, &kv),
	                 ENG_E_FUTURE_REV);

	req.key = "kv/";
	req.key_len = 3;
	req.end = "kv0";
	req.end_len = 3;
	req.limit = 1;
	req.flags = ENG_RANGE_KEYS_ONLY | ENG_RANGE_COUNT;
	assert_int_equal(eng_range(e, &req, &res), 0);
	assert_int_equal(res.n, 1);
	assert_true(res.more);
	assert_int_equal(res.count, 2);
	assert_null(res.kvs[0].value);
	assert_true(kv_is(&res.kvs[0], "kv/a"));
	eng_range_res_release(&res);

	/* txn: a failed compare runs the failure branch */
	{
		struct eng_cmp c = {.key = "kv/a",
		                    .key_len = 4,
		                    .target = ENG_CMP_MOD,
		                    .result = ENG_CMP_EQ,
		                    .number = r1};
		struct eng_op ok = {.type = ENG_OP_PUT,
		                    .key = "kv/c",
		                    .key_len = 4,
		                    .value = "x",
		                    .value_len = 1};
		struct eng_op no = {
		    .type = ENG_OP_RANGE, .key = "kv/a", .key_len = 4};
		struct eng_txn t = {.cmps = &c,
		                    .ncmps = 1,
		                    .success = &ok,
		                    .nsuccess = 1,
		                    .failure = &no,
		                    .nfailure = 1};
		struct eng_txn_res tr;

		assert_int_equal(eng_txn(e, &t, &tr), 0);
		assert_false(tr.succeeded);
		assert_int_equal(tr.nres, 1);
		assert_int_equal(tr.res[0].range.n, 1);
		assert_int_equal(tr.res[0].range.kvs[0].mod_rev, r3);
		eng_txn_res_release(&tr);
		c.number = r3;
		assert_int_equal(eng_txn(e, &t, &tr), 0);
		assert_true(tr.succeeded);
		assert_true(tr.header_rev > r3);
		eng_txn_res_release(&tr);
	}
	assert_int_equal(eng_delete(e, "kv/", 3, "kv0", 3, &deleted, NULL), 0);
	assert_int_equal(deleted, 3);
	eng_close(e);
}

/* The delimiter emulation gives what the local backend gives. */
static void compare_pages(eng *a, eng *b, const char *pfx, int64_t limit,
                          unsigned flags, eng_rev_t ra, eng_rev_t rb)
{
	char end[64], cur[128];
	size_t el = eng_prefix_end(pfx, strlen(pfx), end), cl = strlen(pfx);
	int pages = 0;

	memcpy(cur, pfx, cl);
	for (;;) {
		struct eng_range_req req = {.key = cur,
		                            .key_len = cl,
		                            .end = end,
		                            .end_len = el,
		                            .limit = limit,
		                            .flags = flags,
		                            .delim = '/',
		                            .prefix_len = strlen(pfx)};
		struct eng_range_res x, y;

		req.rev = ra;
		assert_int_equal(eng_range(a, &req, &x), 0);
		req.rev = rb;
		assert_int_equal(eng_range(b, &req, &y), 0);
		assert_int_equal(x.n, y.n);
		assert_int_equal(x.more, y.more);
		assert_int_equal(x.count, y.count);
		for (size_t i = 0; i < x.n; i++) {
			assert_int_equal(x.kvs[i].key_len, y.kvs[i].key_len);
			assert_memory_equal(x.kvs[i].key, y.kvs[i].key,
			                    x.kvs[i].key_len);
			assert_int_equal(x.kvs[i].is_prefix,
			                 y.kvs[i].is_prefix);
			if (!x.kvs[i].is_prefix &&
			    !(flags & ENG_RANGE_KEYS_ONLY)) {
				assert_int_equal(x.kvs[i].value_len,
				                 y.kvs[i].value_len);
				assert_memory_equal(x.kvs[i].value,
				                    y.kvs[i].value,
				                    x.kvs[i].value_len);
			} else if (!x.kvs[i].is_prefix &&
			           (flags & ENG_RANGE_VALUE_LEN)) {
				/* lengths only: etcd reads the values and
				 * drops them */
				assert_null(x.kvs[i].value);
				assert_null(y.kvs[i].value);
				assert_int_equal(x.kvs[i].value_len,
				                 y.kvs[i].value_len);
				assert_true(x.kvs[i].value_len > 0);
			}
		}
		pages++;
		if (!x.more || x.n == 0) {
			eng_range_res_release(&x);
			eng_range_res_release(&y);
			break;
		}
		/* next page: after the last entry (past a whole prefix) */
		{
			const struct eng_kv *l = &x.kvs[x.n - 1];

			if (l->is_prefix) {
				cl = eng_prefix_end(l->key, l->key_len, cur);
			} else {
				memcpy(cur, l->key, l->key_len);
				cur[l->key_len] = '\0';
				cl = l->key_len + 1;
			}
		}
		eng_range_res_release(&x);
		eng_range_res_release(&y);
		assert_true(pages < 1000);
	}
}

static void test_delimiter(void **state)
{
	static const char *keys[] = {
	    "dl/a",          "dl/b/1",         "dl/b/2",   "dl/b/3/x",
	    "dl/c",          "dl/d/",          "dl/d/e",   "dl/e//f",
	    "dl/f",          "dl/g/1",         "dl/g/2",   "dl/h",
	    "dl/i/j",        "dl/k",           "dl/l/m/n", "dl/m\xff/",
	    "dl/\xff\xff/z", "dl/\xff\xff\xff"};
	eng *e = open_e(), *l;
	char tmpl[] = "/tmp/revfs-etcdb-local-XXXXXX";
	char store[96];
	eng_rev_t ra, rb;
	int64_t lims[] = {0, 1, 2, 3, 5, 100};

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	snprintf(store, sizeof(store), "%s/store", tmpl);
	assert_int_equal(eng_open(store, NULL, &l), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		put(e, keys[i], keys[i] + 3);
		put(l, keys[i], keys[i] + 3);
	}
	ra = eng_current_rev(e);
	rb = eng_current_rev(l);
	/* a later change must not show at the pinned revisions */
	put(e, "dl/b/4", "late");
	put(l, "dl/b/4", "late");
	for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
		compare_pages(e, l, "dl/", lims[i], 0, 0, 0);
		compare_pages(e, l, "dl/", lims[i], ENG_RANGE_KEYS_ONLY, ra,
		              rb);
		compare_pages(e, l, "dl/b/", lims[i], ENG_RANGE_KEYS_ONLY, 0,
		              0);
		compare_pages(e, l, "dl/", lims[i],
		              ENG_RANGE_KEYS_ONLY | ENG_RANGE_VALUE_LEN, 0, 0);
	}
	/* count only: entries, prefixes counted once */
	{
		char end[8];
		struct eng_range_req req = {.key = "dl/",
		                            .key_len = 3,
		                            .end = end,
		                            .end_len =
		                                eng_prefix_end("dl/", 3, end),
		                            .flags = ENG_RANGE_COUNT_ONLY,
		                            .delim = '/',
		                            .prefix_len = 3};
		struct eng_range_res x, y;

		assert_int_equal(eng_range(e, &req, &x), 0);
		assert_int_equal(eng_range(l, &req, &y), 0);
		assert_int_equal(x.count, y.count);
		assert_int_equal(x.n, 0);
		eng_range_res_release(&x);
		eng_range_res_release(&y);
	}
	eng_close(l);
	nftw(tmpl, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	eng_close(e);
}

/* --------------------------------------------------- reserved keys */

static void test_reserved(void **state)
{
	eng *e = open_e();
	struct eng_range_req req = {
	    .key = "\0", .key_len = 1, .end = "\0", .end_len = 1};
	struct eng_range_res res;
	eng_lease_t id = 0, found = 0;
	int64_t deleted = 0;
	eng_rev_t rev;

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, 60, "rsv-name", &id), 0);
	assert_int_equal(eng_lease_lookup(e, "rsv-name", &found), 0);
	assert_int_equal(found, id);
	/* a second lease of that name */
	assert_int_equal(eng_lease_grant(e, 0, 60, "rsv-name", &found),
	                 ENG_E_LEASE_EXISTS);
	put(e, "rsv/k", "v");
	/* the whole key space shows no reserved record */
	assert_int_equal(eng_range(e, &req, &res), 0);
	for (size_t i = 0; i < res.n; i++)
		assert_true(res.kvs[i].key_len < 4 ||
		            memcmp(res.kvs[i].key, "\xff\xff\xff\xff", 4) != 0);
	eng_range_res_release(&res);
	/* writes cannot reach it */
	assert_int_equal(
	    eng_put(e, "\xff\xff\xff\xffrevfs/x", 10, "v", 1, 0, &rev, NULL),
	    ENG_E_INVAL);
	/* deleting everything keeps the name while the lease lives */
	assert_int_equal(eng_delete(e, "\0", 1, "\0", 1, &deleted, NULL), 0);
	assert_true(deleted >= 1);
	assert_int_equal(eng_lease_lookup(e, "rsv-name", &found), 0);
	assert_int_equal(found, id);
	assert_int_equal(eng_lease_revoke(e, id, NULL), 0);
	assert_int_equal(eng_lease_lookup(e, "rsv-name", &found),
	                 ENG_E_LEASE_NOT_FOUND);
	eng_close(e);
}

/* ------------------------------------------- snapshots and compaction */

static void test_snapshot_compact(void **state)
{
	eng *e = open_e();
	eng_snap *s;
	struct eng_kv kv;
	eng_rev_t r1, r2, r3;

	(void)state;
	r1 = put(e, "sn/a", "1");
	assert_int_equal(eng_snap_open(e, &s), 0);
	assert_true(eng_snap_rev(s) >= r1);
	r2 = put(e, "sn/a", "2");
	assert_int_equal(eng_get(e, "sn/a", 4, 0, s, &kv), 0);
	assert_memory_equal(kv.value, "1", 1);
	eng_kv_release(&kv);
	assert_int_equal(eng_get(e, "sn/a", 4, r2, s, &kv), ENG_E_FUTURE_REV);
	r3 = put(e, "sn/a", "3");
	/* a compaction past the snapshot: its reads fail */
	assert_int_equal(eng_compact(e, r3, true), 0);
	assert_int_equal(eng_compact_rev(e), r3);
	assert_int_equal(eng_get(e, "sn/a", 4, 0, s, &kv), ENG_E_COMPACTED);
	assert_int_equal(eng_get(e, "sn/a", 4, r2, NULL, &kv), ENG_E_COMPACTED);
	assert_int_equal(eng_compact(e, r2, false), ENG_E_COMPACTED);
	eng_snap_release(e, s);
	/* a new engine learns the compaction revision from etcd */
	{
		eng *e2 = open_e();

		assert_int_equal(eng_compact_rev(e2), r3);
		eng_close(e2);
	}
	eng_close(e);
}

/* ------------------------------------------------------------ history */

static void test_history(void **state)
{
	eng *e = open_e();
	struct eng_range_res h;
	eng_rev_t r1, r2, r3, r4;

	(void)state;
	r1 = put(e, "hi/k", "one");
	put(e, "hi/other", "x");
	r2 = put(e, "hi/k", "two");
	assert_int_equal(eng_delete(e, "hi/k", 4, NULL, 0, NULL, &r3), 0);
	r4 = put(e, "hi/k", "three");

	assert_int_equal(eng_history(e, "hi/k", 4, r1, 0, &h), 0);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.kvs[0].mod_rev, r1);
	assert_int_equal(h.kvs[0].version, 1);
	assert_memory_equal(h.kvs[0].value, "one", 3);
	assert_int_equal(h.kvs[1].mod_rev, r2);
	assert_int_equal(h.kvs[1].version, 2);
	assert_true(h.kvs[2].deleted);
	assert_int_equal(h.kvs[2].mod_rev, r3);
	assert_int_equal(h.kvs[3].mod_rev, r4);
	assert_int_equal(h.kvs[3].create_rev, r4);
	assert_false(h.more);
	eng_range_res_release(&h);

	/* limit and from */
	assert_int_equal(eng_history(e, "hi/k", 4, r1, 2, &h), 0);
	assert_int_equal(h.n, 2);
	assert_true(h.more);
	eng_range_res_release(&h);
	assert_int_equal(eng_history(e, "hi/k", 4, r2 + 1, 0, &h), 0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.kvs[0].mod_rev, r3);
	eng_range_res_release(&h);

	/* a deleted key still has its history */
	assert_int_equal(eng_delete(e, "hi/k", 4, NULL, 0, NULL, NULL), 0);
	assert_int_equal(eng_history(e, "hi/k", 4, r1, 0, &h), 0);
	assert_int_equal(h.n, 5);
	assert_true(h.kvs[4].deleted);
	eng_range_res_release(&h);

	/* after a compaction: the version live at it is the oldest */
	put(e, "hi/c", "a");
	r1 = put(e, "hi/c", "b");
	put(e, "hi/x", "pad");
	r2 = put(e, "hi/x", "pad2");
	r3 = put(e, "hi/c", "c");
	assert_int_equal(eng_compact(e, r2, false), 0);
	assert_int_equal(eng_history(e, "hi/c", 4, 0, 0, &h), 0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.kvs[0].mod_rev, r1);
	assert_int_equal(h.kvs[1].mod_rev, r3);
	eng_range_res_release(&h);
	assert_int_equal(eng_history(e, "hi/c", 4, r1, 0, &h), ENG_E_COMPACTED);
	eng_close(e);
}

/* ------------------------------------------------------------- leases */

static void test_leases(void **state)
{
	eng *e = open_e();
	struct eng_lease_info li;
	struct eng_lease_info *all = NULL;
	eng_lease_t id = 0, tmp = 0;
	size_t n = 0;
	int64_t ttl = 0;
	bool seen = false;
	struct eng_kv kv;
	int64_t t0;

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, 30, "le-a", &id), 0);
	assert_int_equal(eng_put(e, "le/k1", 5, "v", 1, id, NULL, NULL), 0);
	assert_int_equal(eng_put(e, "le/k2", 5, "w", 1, id, NULL, NULL), 0);
	assert_int_equal(eng_lease_keepalive(e, id, &ttl), 0);
	assert_int_equal(ttl, 30);
	assert_int_equal(eng_lease_ttl(e, id, ENG_LEASE_KEYS, &li), 0);
	assert_string_equal(li.name, "le-a");
	assert_int_equal(li.granted_ttl, 30);
	assert_int_equal(li.nkeys, 2); /* the name records are hidden */
	eng_lease_info_release(&li);
	assert_int_equal(eng_lease_list(e, &all, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (all[i].id == id) {
			seen = true;
			assert_string_equal(all[i].name, "le-a");
		}
	free(all);
	assert_true(seen);

	/* a new TTL keeps the id, the name and the keys */
	assert_int_equal(eng_lease_set_ttl(e, id, 50), 0);
	assert_int_equal(eng_lease_ttl(e, id, ENG_LEASE_KEYS, &li), 0);
	assert_int_equal(li.granted_ttl, 50);
	assert_int_equal(li.nkeys, 2);
	assert_string_equal(li.name, "le-a");
	eng_lease_info_release(&li);
	assert_int_equal(eng_get(e, "le/k1", 5, 0, NULL, &kv), 0);
	assert_int_equal(kv.lease, id);
	assert_memory_equal(kv.value, "v", 1);
	eng_kv_release(&kv);
	assert_int_equal(eng_lease_lookup(e, "le-a", &tmp), 0);
	assert_int_equal(tmp, id);

	/* revoke: keys and name gone */
	assert_int_equal(eng_lease_revoke(e, id, NULL), 0);
	assert_int_equal(eng_get(e, "le/k1", 5, 0, NULL, &kv), 0);
	assert_int_equal(kv.mod_rev, 0);
	assert_int_equal(eng_lease_keepalive(e, id, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_lease_lookup(e, "le-a", &tmp),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_int_equal(eng_put(e, "le/k3", 5, "v", 1, id, NULL, NULL),
	                 ENG_E_LEASE_NOT_FOUND);

	/* expiry: the key and the name vanish after the TTL */
	assert_int_equal(eng_lease_grant(e, 0, 2, "le-short", &id), 0);
	assert_int_equal(eng_put(e, "le/k4", 5, "v", 1, id, NULL, NULL), 0);
	t0 = now_ms();
	for (;;) {
		assert_int_equal(eng_get(e, "le/k4", 5, 0, NULL, &kv), 0);
		if (kv.mod_rev == 0)
			break;
		eng_kv_release(&kv);
		assert_true(now_ms() - t0 < 8000);
		sleep_ms(100);
	}
	assert_true(now_ms() - t0 >= 1000);
	assert_int_equal(eng_lease_lookup(e, "le-short", &tmp),
	                 ENG_E_LEASE_NOT_FOUND);
	eng_close(e);
}

/* ------------------------------------------------------------ watches */

static int wait_events(eng_watch *w, struct eng_event *copy, int want, int ms)
{
	int64_t dl = now_ms() + ms;
	int got = 0;

	while (got < want && now_ms() < dl) {
		struct eng_event *evs;
		int n = eng_watch_read(w, &evs, 64);

		assert_true(n >= 0);
		for (int i = 0; i < n && got < want; i++)
			if (evs[i].type != ENG_EV_PROGRESS) {
				copy[got] = evs[i];
				copy[got].kv.key = NULL; /* not kept */
				copy[got].kv.value = NULL;
				got++;
			}
		if (n == 0)
			sleep_ms(20);
	}
	return got;
}

/* Read until a marker of `type` (its revision) or the deadline (-1). */
static eng_rev_t wait_marker(eng_watch *w, enum eng_event_type type, int ms)
{
	int64_t dl = now_ms() + ms;

	while (now_ms() < dl) {
		struct eng_event *evs;
		int n = eng_watch_read(w, &evs, 64);

		assert_true(n >= 0);
		for (int i = 0; i < n; i++)
			if (evs[i].type == type)
				return evs[i].kv.mod_rev;
		if (n == 0)
			sleep_ms(10);
	}
	return -1;
}

static eng_rev_t wait_progress(eng_watch *w, int ms)
{
	return wait_marker(w, ENG_EV_PROGRESS, ms);
}

static int g_notified;

static void on_note(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&g_notified, 1, __ATOMIC_SEQ_CST);
}

static void test_watch(void **state)
{
	eng *e = open_e();
	eng_watch *w, *old;
	struct eng_event ev[8];
	eng_rev_t r0, r1, r2, p;
	int64_t t0, t1;

	(void)state;
	r0 = put(e, "wa/pre", "x");
	assert_int_equal(
	    eng_watch_open(e, "wa/", 3, "wa0", 3, 0, on_note, NULL, &w), 0);
	/* at once: a marker at the current revision */
	p = wait_progress(w, 2000);
	assert_true(p >= r0);
	r1 = put(e, "wa/k", "1");
	put(e, "wb/outside", "x");
	assert_int_equal(wait_events(w, ev, 1, 3000), 1);
	assert_int_equal(ev[0].type, ENG_EV_PUT);
	assert_int_equal(ev[0].kv.mod_rev, r1);
	assert_true(g_notified > 0);
	/* then every interval (200 ms) while idle */
	p = wait_progress(w, 2000);
	t0 = now_ms();
	assert_true(p >= r1);
	p = wait_progress(w, 2000);
	t1 = now_ms();
	assert_true(p >= r1);
	assert_true(t1 - t0 >= 150 && t1 - t0 < 1500);
	assert_int_equal(eng_watch_next_rev(w), p + 1);

	/* replay from the past, events and then a marker past them */
	assert_int_equal(
	    eng_watch_open(e, "wa/", 3, "wa0", 3, r0, NULL, NULL, &old), 0);
	assert_int_equal(wait_events(old, ev, 2, 3000), 2);
	assert_int_equal(ev[0].kv.mod_rev, r0);
	assert_int_equal(ev[1].kv.mod_rev, r1);
	assert_true(wait_progress(old, 3000) >= r1);
	eng_watch_close(old);

	/* a compacted start */
	r2 = put(e, "wa/k", "2");
	assert_int_equal(wait_events(w, ev, 1, 3000), 1);
	assert_int_equal(ev[0].kv.mod_rev, r2);
	assert_int_equal(eng_compact(e, r2, false), 0);
	assert_int_equal(
	    eng_watch_open(e, "wa/", 3, "wa0", 3, r0, NULL, NULL, &old), 0);
	{
		int64_t dl = now_ms() + 3000;
		bool compacted = false;

		while (!compacted && now_ms() < dl) {
			struct eng_event *evs;
			int n = eng_watch_read(old, &evs, 8);

			assert_true(n >= 0);
			for (int i = 0; i < n; i++)
				if (evs[i].type == ENG_EV_COMPACTED) {
					assert_int_equal(evs[i].kv.mod_rev, r2);
					compacted = true;
				}
			if (n == 0)
				sleep_ms(20);
		}
		assert_true(compacted);
	}
	eng_watch_close(old);
	/* the live watch is not affected */
	put(e, "wa/k", "3");
	assert_int_equal(wait_events(w, ev, 1, 3000), 1);
	eng_watch_close(w);
	eng_close(e);
}

/* A stream cut by an etcd restart resumes from its position: every event
 * written while etcd was down and after it came back arrives once. */
static void test_watch_resume(void **state)
{
	eng *e = open_e(), *e2;
	eng_watch *w;
	struct eng_event ev[16];
	eng_rev_t revs[6];
	int got;

	(void)state;
	assert_int_equal(
	    eng_watch_open(e, "wr/", 3, "wr0", 3, 0, NULL, NULL, &w), 0);
	revs[0] = put(e, "wr/a", "0");
	revs[1] = put(e, "wr/a", "1");
	assert_int_equal(wait_events(w, ev, 2, 3000), 2);
	etcd_kill();
	/* while it is down, calls fail within the bound */
	{
		struct eng_kv kv;
		int64_t t0 = now_ms();
		int rc = eng_get(e, "wr/a", 4, 0, NULL, &kv);

		/* retried for timeout_ms (2 s), then one more attempt */
		assert_true(rc == ENG_E_UNAVAILABLE || rc == ENG_E_TIMEOUT);
		assert_true(now_ms() - t0 >= 1900);
		assert_true(now_ms() - t0 < 4500);
	}
	etcd_spawn();
	assert_true(etcd_wait());
	e2 = open_e();
	for (int i = 2; i < 6; i++)
		revs[i] = put(e2, "wr/a", "n");
	got = wait_events(w, ev, 4, 10000);
	assert_int_equal(got, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ev[i].kv.mod_rev, revs[i + 2]);
	/* nothing repeated */
	assert_int_equal(wait_events(w, ev, 1, 500), 0);
	eng_close(e2);
	eng_watch_close(w);
	eng_close(e);
}

/* ------------------------------------------------------ the watch hub */

struct buf {
	char *p;
	size_t n;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	char *np = realloc(b->p, b->n + size * nmemb + 1);

	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, ptr, size * nmemb);
	b->n += size * nmemb;
	b->p[b->n] = '\0';
	return size * nmemb;
}

/* A gauge of etcd's /metrics (-1 if it cannot be read). */
static long etcd_metric(const char *name)
{
	char url[96];
	struct buf b = {0};
	CURL *c = curl_easy_init();
	long v = -1;
	size_t nl = strlen(name);

	snprintf(url, sizeof(url), "%s/metrics", g_url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
	if (curl_easy_perform(c) == CURLE_OK && b.p) {
		for (char *l = b.p; l && *l;
		     l = strchr(l, '\n'), l = l ? l + 1 : l)
			if (!strncmp(l, name, nl) && l[nl] == ' ') {
				v = strtol(l + nl + 1, NULL, 10);
				break;
			}
	}
	curl_easy_cleanup(c);
	free(b.p);
	return v;
}

/* Wait until the gauge is `want` (up to 3 s; it moves asynchronously). */
static long wait_metric(const char *name, long want)
{
	int64_t dl = now_ms() + 3000;
	long v;

	while ((v = etcd_metric(name)) != want && now_ms() < dl)
		sleep_ms(50);
	return v;
}

#define HUB_WATCHERS 500
#define HUB_REVS     20

/* 500 watchers share ONE etcd watch stream: each gets every event of its
 * range, in order, whole revisions, then a marker covering them. */
static void test_watch_hub(void **state)
{
	static eng_watch *w[HUB_WATCHERS];
	static int got[HUB_WATCHERS];
	eng *e = open_e(), *e2 = open_e();
	eng_rev_t revs[HUB_REVS];
	long streams0 =
	    wait_metric("etcd_debugging_mvcc_watch_stream_total", 0);
	long watchers0 = etcd_metric("etcd_debugging_mvcc_watcher_total");
	int64_t dl;
	int done;

	(void)state;
	assert_int_equal(streams0, 0);
	for (int i = 0; i < HUB_WATCHERS; i++) {
		/* half on the prefix, half on one key of it */
		bool one = i % 2;

		assert_int_equal(eng_watch_open(e, one ? "wh/k" : "wh/",
		                                one ? 4 : 3, one ? NULL : "wh0",
		                                one ? 0 : 3, 0, on_note, NULL,
		                                &w[i]),
		                 0);
	}
	assert_int_equal(
	    wait_metric("etcd_debugging_mvcc_watch_stream_total", 1), 1);
	assert_int_equal(etcd_metric("etcd_debugging_mvcc_watcher_total"),
	                 watchers0 + 1);
	{
		struct eng_stats st;

		assert_int_equal(eng_stats_get(e, &st), 0);
		assert_int_equal(st.watchers, HUB_WATCHERS);
	}
	/* written by another client: the stream brings them */
	for (int i = 0; i < HUB_REVS; i++) {
		struct eng_op ops[2] = {
		    {.type = ENG_OP_PUT,
		     .key = "wh/k",
		     .key_len = 4,
		     .value = "v",
		     .value_len = 1},
		    {.type = ENG_OP_PUT,
		     .key = "wh/j",
		     .key_len = 4,
		     .value = "v",
		     .value_len = 1},
		};
		struct eng_txn t = {.success = ops, .nsuccess = 2};
		struct eng_txn_res res;

		assert_int_equal(eng_txn(e2, &t, &res), 0);
		revs[i] = res.header_rev;
		eng_txn_res_release(&res);
	}
	put(e2, "wi/outside", "x");
	dl = now_ms() + 20000;
	do {
		done = 0;
		for (int i = 0; i < HUB_WATCHERS; i++) {
			struct eng_event *evs;
			bool one = i % 2;
			int per = one ? 1 : 2, n;

			if (got[i] == HUB_REVS * per) {
				done++;
				continue;
			}
			n = eng_watch_read(w[i], &evs, 64);
			assert_true(n >= 0);
			for (int k = 0; k < n; k++) {
				int r;

				if (evs[k].type == ENG_EV_PROGRESS) {
					/* every event <= it was delivered */
					assert_true(got[i] % per == 0);
					assert_true(got[i] == 0 ||
					            evs[k].kv.mod_rev >=
					                revs[got[i] / per - 1]);
					continue;
				}
				assert_int_equal(evs[k].type, ENG_EV_PUT);
				r = got[i] / per;
				assert_true(r < HUB_REVS);
				assert_int_equal(evs[k].kv.mod_rev, revs[r]);
				assert_true(evs[k].kv.mtime_ns > 0);
				if (one)
					assert_true(kv_is(&evs[k].kv, "wh/k"));
				got[i]++;
			}
		}
		if (done < HUB_WATCHERS)
			sleep_ms(20);
	} while (done < HUB_WATCHERS && now_ms() < dl);
	assert_int_equal(done, HUB_WATCHERS);
	/* nothing more (the outside key reached nobody) */
	for (int i = 0; i < HUB_WATCHERS; i++) {
		struct eng_event *evs;
		int n = eng_watch_read(w[i], &evs, 64);

		assert_true(n >= 0);
		for (int k = 0; k < n; k++)
			assert_int_equal(evs[k].type, ENG_EV_PROGRESS);
	}
	/* still one stream after all that traffic */
	assert_int_equal(etcd_metric("etcd_debugging_mvcc_watch_stream_total"),
	                 1);
	for (int i = 0; i < HUB_WATCHERS; i++)
		eng_watch_close(w[i]);
	eng_close(e2);
	eng_close(e);
	assert_int_equal(
	    wait_metric("etcd_debugging_mvcc_watch_stream_total", 0), 0);
}

static eng_rev_t wait_compacted(eng_watch *w, int ms)
{
	return wait_marker(w, ENG_EV_COMPACTED, ms);
}

/* The hub's stream is cut: it resumes at its position (nothing lost or
 * repeated); if that position was compacted meanwhile, live watchers get
 * COMPACTED with etcd's compaction revision, never a silent gap.  A start
 * below a compaction made by another client (unknown to this engine) is
 * COMPACTED too. */
static void test_watch_hub_cut(void **state)
{
	eng *e = open_e(), *e2 = open_e();
	eng_watch *w, *w2, *old;
	struct eng_event ev[8];
	eng_rev_t r[4], crev;

	(void)state;
	assert_int_equal(
	    eng_watch_open(e, "wc/", 3, "wc0", 3, 0, NULL, NULL, &w), 0);
	r[0] = put(e2, "wc/a", "0");
	assert_int_equal(wait_events(w, ev, 1, 3000), 1);
	assert_int_equal(ev[0].kv.mod_rev, r[0]);

	/* cut, two writes while it is down, resume: both, once */
	etcdb_test_cut_stream(e, true);
	r[1] = put(e2, "wc/a", "1");
	r[2] = put(e2, "wc/b", "2");
	assert_int_equal(wait_events(w, ev, 1, 300), 0);
	etcdb_test_cut_stream(e, false);
	assert_int_equal(wait_events(w, ev, 2, 5000), 2);
	assert_int_equal(ev[0].kv.mod_rev, r[1]);
	assert_int_equal(ev[1].kv.mod_rev, r[2]);
	assert_int_equal(wait_events(w, ev, 1, 300), 0);

	/* cut, write, compact past the position (another client), resume */
	assert_int_equal(
	    eng_watch_open(e, "wc/a", 4, NULL, 0, 0, NULL, NULL, &w2), 0);
	assert_true(wait_progress(w2, 2000) >= r[2]);
	etcdb_test_cut_stream(e, true);
	put(e2, "wc/a", "3");
	r[3] = put(e2, "wc/z", "4");
	assert_int_equal(eng_compact(e2, r[3], false), 0);
	etcdb_test_cut_stream(e, false);
	crev = wait_compacted(w, 5000);
	assert_int_equal(crev, r[3]);
	assert_int_equal(wait_compacted(w2, 5000), r[3]);
	eng_watch_close(w2);
	eng_watch_close(w);

	/* after that the hub streams on: a new watch works */
	assert_int_equal(
	    eng_watch_open(e, "wc/", 3, "wc0", 3, 0, NULL, NULL, &w), 0);
	r[0] = put(e2, "wc/c", "5");
	assert_int_equal(wait_events(w, ev, 1, 5000), 1);
	assert_int_equal(ev[0].kv.mod_rev, r[0]);
	eng_watch_close(w);

	/* a start below a compaction this engine did not see */
	r[1] = put(e2, "wc/c", "6");
	assert_int_equal(eng_compact(e2, r[1], false), 0);
	assert_int_equal(
	    eng_watch_open(e, "wc/", 3, "wc0", 3, r[0], NULL, NULL, &old), 0);
	assert_int_equal(wait_compacted(old, 5000), r[1]);
	eng_watch_close(old);
	eng_close(e2);
	eng_close(e);
}

/* mtime_ns: the time this engine first saw the revision, stable. */
/* key's mtime is in [t0, t1], and the same at a second read. */
static void mtime_between(eng *e, const char *key, int64_t t0, int64_t t1)
{
	struct eng_kv kv;
	int64_t m;

	assert_int_equal(eng_get(e, key, strlen(key), 0, NULL, &kv), 0);
	assert_true(kv.mtime_ns >= t0 && kv.mtime_ns <= t1);
	m = kv.mtime_ns;
	eng_kv_release(&kv);
	assert_int_equal(eng_get(e, key, strlen(key), 0, NULL, &kv), 0);
	assert_int_equal(kv.mtime_ns, m);
	eng_kv_release(&kv);
}

static void test_mtime(void **state)
{
	eng *e0 = open_e(), *e, *e2;
	eng_watch *w;
	struct eng_kv kv;
	struct eng_event ev[2];
	struct eng_range_res hist;
	int64_t t0, t1, t2, t3, m, m2;
	struct timespec ts;

	(void)state;
#define REAL_NS()                                                              \
	(clock_gettime(CLOCK_REALTIME, &ts),                                   \
	 (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec)
	put(e0, "mt/old", "x");
	eng_close(e0);
	t0 = REAL_NS();
	e = open_e();
	t1 = REAL_NS();
	e2 = open_e();
	/* older than the engine: its open time */
	mtime_between(e, "mt/old", t0, t1);

	/* our own write: the time of its reply, the same in every read */
	t0 = REAL_NS();
	put(e, "mt/own", "x");
	t1 = REAL_NS();
	sleep_ms(30);
	mtime_between(e, "mt/own", t0, t1);

	/* another client's write: when the stream (or a read) brought it;
	 * the event and later reads agree */
	assert_int_equal(
	    eng_watch_open(e, "mt/", 3, "mt0", 3, 0, NULL, NULL, &w), 0);
	t2 = REAL_NS();
	put(e2, "mt/other", "y");
	assert_int_equal(wait_events(w, ev, 1, 3000), 1);
	t3 = REAL_NS();
	m = ev[0].kv.mtime_ns;
	assert_true(m >= t2 && m <= t3);
	sleep_ms(30);
	assert_int_equal(eng_get(e, "mt/other", 8, 0, NULL, &kv), 0);
	assert_int_equal(kv.mtime_ns, m);
	eng_kv_release(&kv);
	/* and the history line of that version */
	assert_int_equal(eng_history(e, "mt/other", 8, 0, 0, &hist), 0);
	assert_int_equal(hist.n, 1);
	assert_int_equal(hist.kvs[0].mtime_ns, m);
	eng_range_res_release(&hist);
	/* a read racing ahead of the stream fixes the time once */
	etcdb_test_cut_stream(e, true);
	t2 = REAL_NS();
	put(e2, "mt/race", "z");
	assert_int_equal(eng_get(e, "mt/race", 7, 0, NULL, &kv), 0);
	t3 = REAL_NS();
	m2 = kv.mtime_ns;
	assert_true(m2 >= t2 && m2 <= t3);
	eng_kv_release(&kv);
	etcdb_test_cut_stream(e, false);
	assert_int_equal(wait_events(w, ev, 1, 3000), 1);
	assert_int_equal(ev[0].kv.mtime_ns, m2);
	eng_watch_close(w);
	eng_close(e2);
	eng_close(e);
#undef REAL_NS
}

/* -------------------------------------------------------- failures */

struct stats_loop {
	eng *e;
	int n;
};

static void *stats_loop_main(void *p)
{
	struct stats_loop *a = p;
	struct eng_stats st;

	for (int i = 0; i < a->n; i++)
		eng_stats_get(a->e, &st);
	return NULL;
}

/* @stats read while @watch files open: the stats took the engine's lock,
 * then the hub's, and a watch open the hub's, then the engine's (a
 * deadlock that left every later request waiting). */
static void test_stats_vs_watch_open(void **state)
{
	struct stats_loop a = {open_e(), 150};
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, stats_loop_main, &a), 0);
	for (int i = 0; i < 150; i++) {
		eng_watch *w;

		assert_int_equal(
		    eng_watch_open(a.e, "sw/", 3, "sw0", 3, 0, NULL, NULL, &w),
		    0);
		eng_watch_close(w);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	eng_close(a.e);
}

static void test_failover(void **state)
{
	char dead[64];
	const char *eps[2];
	eng *e = NULL;
	int64_t t0;
	int rc;

	(void)state;
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", free_port());
	/* a dead endpoint first: the next one answers */
	eps[0] = dead;
	eps[1] = g_url;
	assert_int_equal(open_eps(eps, 2, &e, 200), 0);
	put(e, "fo/k", "v");
	eng_close(e);
	/* only dead endpoints: a clear error, quickly */
	eps[1] = dead;
	t0 = now_ms();
	rc = open_eps(eps, 2, &e, 200);
	assert_int_equal(rc, ENG_E_UNAVAILABLE);
	assert_true(now_ms() - t0 < 2000);
	/* stats on the live one */
	{
		struct eng_stats st;

		eps[0] = g_url;
		assert_int_equal(open_eps(eps, 1, &e, 200), 0);
		assert_int_equal(eng_stats_get(e, &st), 0);
		assert_true(st.rev > 0);
		assert_true(st.keys >= 1);
		assert_true(st.db_bytes > 0);
		assert_true(st.txn.count == 0);
		put(e, "fo/k", "w");
		assert_int_equal(eng_stats_get(e, &st), 0);
		assert_int_equal(st.txn.count, 1);
		assert_int_equal(st.commits, 1);
		eng_close(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kv),
	    cmocka_unit_test(test_delimiter),
	    cmocka_unit_test(test_reserved),
	    cmocka_unit_test(test_history),
	    cmocka_unit_test(test_leases),
	    cmocka_unit_test(test_watch),
	    cmocka_unit_test(test_snapshot_compact),
	    cmocka_unit_test(test_failover),
	    cmocka_unit_test(test_watch_resume),
	    cmocka_unit_test(test_watch_hub),
	    cmocka_unit_test(test_watch_hub_cut),
	    cmocka_unit_test(test_mtime),
	    cmocka_unit_test(test_stats_vs_watch_open),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
