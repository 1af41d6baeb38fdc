/*
 * bench_lease.c — the cost of keeping 10,000 leases alive.
 *
 * Grants N leases (named like Kubernetes node leases, TTL 40 s) and attaches
 * one key to each, then renews every lease once per interval for the run,
 * the renewals spread evenly over the interval (10 ms ticks).  Measured over
 * the renewal window, for the whole process (the renewing thread included):
 * CPU time (getrusage), bytes written (/proc/self/io wchar and write_bytes)
 * and the size of the store's files.  The revision must not move and every
 * lease must still be alive at the end; otherwise the run fails.
 *
 * Two comparisons in the same run: the same process idle (no renewals) for
 * a few seconds first, which is the floor; and a baseline that persists
 * each renewal's deadline with leveldb_put(sync=1) into a raw LevelDB on the
 * same schedule (what storing deadlines on disk would cost).  The aim
 * (issue 3: < 5% of one core, no growth from renewals) is reported, never
 * asserted.
 *
 * usage: bench_lease [--quick] [--leases N] [--interval S] [--seconds S]
 *                    [--ttl S] [--idle-seconds S] [--baseline-seconds S]
 *                    [--dir BASE]
 * --quick: 10 s of renewals, 2 s idle, 4 s of baseline (options after it
 * override it).
 */
#include "engine/engine.h"
#include "tests/bench/bench_util.h"

#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define LEASE_GRANT_THREADS 16
#define LEASE_TICK_NS       (10 * 1000000LL)
#define LEASE_VALUE_LEN     300

struct lease_cfg {
	long leases;
	double interval_s, seconds, idle_s, baseline_s;
	int64_t ttl;
	const char *base;
};

struct lease_window {
	double wall_s;
	double cpu_pct; /* of one core */
	int64_t wchar, write_bytes, files_delta;
	uint64_t renewals, errors;
	int64_t p99_ns, max_ns;
};

struct lease_grant {
	eng *e;
	long n;
	int64_t ttl;
	eng_lease_t *ids;
	atomic_long next;
	atomic_int failed;
};

static void *lease_grant_thread(void *arg)
{
	struct lease_grant *g = arg;
	char name[32], key[96], val[LEASE_VALUE_LEN];
	uint64_t seed = 0xC0FFEE;
	long i;

	bench_fill(&seed, val, sizeof(val));
	while ((i = atomic_fetch_add(&g->next, 1)) < g->n) {
		int rc;

		snprintf(name, sizeof(name), "node-%05ld", i);
		rc = eng_lease_grant(g->e, 0, g->ttl, name, &g->ids[i]);
		if (!rc) {
			snprintf(key, sizeof(key),
			         "/registry/leases/kube-node-lease/%s", name);
			rc = eng_put(g->e, key, strlen(key), val, sizeof(val),
			             g->ids[i], NULL, NULL);
		}
		if (rc) {
			fprintf(stderr, "grant/attach %s: %s\n", name,
			        eng_strerror(rc));
			atomic_store(&g->failed, 1);
			break;
		}
	}
	return NULL;
}

/* One renewal of lease i; the engine's or the baseline's. */
typedef int (*lease_renew_fn)(void *arg, long i);

/*
 * Run renewals on the schedule for `seconds` (fn NULL: stay idle) and
 * measure the process meanwhile.  `dir` is the store whose files are sized.
 */
static void lease_window_run(const struct lease_cfg *c, const char *dir,
                             lease_renew_fn fn, void *arg,
                             struct lease_window *w)
{
	struct bench_hist h;
	struct bench_io io0, io1;
	int64_t t0, t_end, cpu0, size0, tick, now;
	uint64_t done = 0, due;
	double per_ns = (double)c->leases / (c->interval_s * 1e9);

	memset(w, 0, sizeof(*w));
	if (bench_hist_init(&h))
		return;
	size0 = bench_tree_bytes(dir);
	bench_io_get(&io0);
	cpu0 = bench_cpu_ns();
	t0 = bench_mono_ns();
	t_end = t0 + (int64_t)(c->seconds * 1e9);
	for (tick = t0; tick < t_end; tick += LEASE_TICK_NS) {
		bench_sleep_until(tick);
		if (!fn)
			continue;
		/* Every renewal whose slot is at or before this tick. */
		due = (uint64_t)((double)(tick - t0) * per_ns) + 1;
		while (done < due) {
			int64_t s = bench_mono_ns();

			if (fn(arg, (long)(done % (uint64_t)c->leases)))
				w->errors++;
			now = bench_mono_ns();
			bench_hist_add(&h, now - s);
			done++;
		}
	}
	bench_sleep_until(t_end);
	now = bench_mono_ns();
	w->wall_s = (double)(now - t0) / 1e9;
	w->cpu_pct = (double)(bench_cpu_ns() - cpu0) / (double)(now - t0) * 100;
	bench_io_get(&io1);
	w->wchar = io1.wchar - io0.wchar;
	w->write_bytes = io1.write_bytes - io0.write_bytes;
	w->files_delta = bench_tree_bytes(dir) - size0;
	w->renewals = done;
	w->p99_ns = bench_hist_quantile(&h, 0.99);
	w->max_ns = h.max_ns;
	bench_hist_free(&h);
}

static void lease_window_print(const char *what, const struct lease_window *w)
{
	printf("%s: %.1f s, %" PRIu64 " renewals (%.0f/s, %" PRIu64
	       " errors, p99 %.3f ms, max %.3f ms): CPU %.2f%% of one core, "
	       "wchar %+" PRId64 " B, write_bytes %+" PRId64
	       " B, store files %+" PRId64 " B\n",
	       what, w->wall_s, w->renewals, (double)w->renewals / w->wall_s,
	       w->errors, w->p99_ns / 1e6, w->max_ns / 1e6, w->cpu_pct,
	       w->wchar, w->write_bytes, w->files_delta);
}

struct lease_eng_arg {
	eng *e;
	const eng_lease_t *ids;
};

static int lease_renew_engine(void *arg, long i)
{
	struct lease_eng_arg *a = arg;

	return eng_lease_keepalive(a->e, a->ids[i], NULL);
}

struct lease_ldb_arg {
	leveldb_t *db;
	leveldb_writeoptions_t *wo;
	int64_t ttl_ns;
};

static int lease_renew_leveldb(void *arg, long i)
{
	struct lease_ldb_arg *a = arg;
	char key[32], *err = NULL;
	int64_t deadline = bench_real_ns() + a->ttl_ns;

	snprintf(key, sizeof(key), "lease/%016lx", (unsigned long)i);
	leveldb_put(a->db, a->wo, key, strlen(key), (const char *)&deadline,
	            sizeof(deadline), &err);
	if (err) {
		leveldb_free(err);
		return -1;
	}
	return 0;
}

/* The baseline: deadlines persisted in a raw LevelDB, one sync put each. */
static int lease_baseline(const struct lease_cfg *c, struct lease_window *w)
{
	struct lease_cfg bc = *c;
	struct lease_ldb_arg a = {.ttl_ns = c->ttl * 1000000000LL};
	leveldb_options_t *o = leveldb_options_create();
	char dir[PATH_MAX], *err = NULL;
	int rc = -1;

	if (bench_mkdtemp(c->base, "lease-ldb", dir)) {
		perror("mkdtemp");
		leveldb_options_destroy(o);
		return -1;
	}
	leveldb_options_set_create_if_missing(o, 1);
	a.db = leveldb_open(o, dir, &err);
	if (err) {
		fprintf(stderr, "leveldb_open: %s\n", err);
		leveldb_free(err);
		goto out;
	}
	a.wo = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(a.wo, 1);
	/* Every lease gets its record first, as a grant would write it. */
	for (long i = 0; i < c->leases; i++)
		lease_renew_leveldb(&a, i);
	bc.seconds = c->baseline_s;
	lease_window_run(&bc, dir, lease_renew_leveldb, &a, w);
	leveldb_writeoptions_destroy(a.wo);
	leveldb_close(a.db);
	rc = 0;
out:
	leveldb_options_destroy(o);
	bench_rmtree(dir);
	return rc;
}

static void lease_usage(void)
{
	fprintf(stderr,
	        "usage: bench_lease [--quick] [--leases N] [--interval S] "
	        "[--seconds S] [--ttl S] [--idle-seconds S] "
	        "[--baseline-seconds S] [--dir BASE]\n");
}

int main(int argc, char **argv)
{
	struct lease_cfg c = {.leases = 10000,
	                      .interval_s = 10,
	                      .seconds = 60,
	                      .ttl = 40,
	                      .idle_s = 5,
	                      .baseline_s = 20};
	struct lease_grant g = {0};
	struct lease_eng_arg ea;
	struct lease_window idle, run, base;
	struct eng_options opt;
	struct eng_stats st0, st1;
	pthread_t th[LEASE_GRANT_THREADS];
	char dir[PATH_MAX] = "", store[PATH_MAX + 8];
	int64_t t0;
	int n, rc = 1, erc;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(a, "--quick") == 0) {
			/* Same leases and rate, shorter windows. */
			c.seconds = 10;
			c.idle_s = 2;
			c.baseline_s = 4;
			i--;
		} else if (strcmp(a, "--leases") == 0)
			c.leases = atol(v);
		else if (strcmp(a, "--interval") == 0)
			c.interval_s = atof(v);
		else if (strcmp(a, "--seconds") == 0)
			c.seconds = atof(v);
		else if (strcmp(a, "--ttl") == 0)
			c.ttl = atol(v);
		else if (strcmp(a, "--idle-seconds") == 0)
			c.idle_s = atof(v);
		else if (strcmp(a, "--baseline-seconds") == 0)
			c.baseline_s = atof(v);
		else if (strcmp(a, "--dir") == 0)
			c.base = v;
		else
			c.leases = 0;
	}
	if (c.leases < 1 || c.interval_s <= 0 || c.seconds <= 0 ||
	    c.ttl <= c.interval_s || c.idle_s <= 0 || c.baseline_s <= 0) {
		lease_usage();
		return 2;
	}
	if (bench_mkdtemp(c.base, "lease", dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(store, sizeof(store), "%s/store", dir);
	printf("== bench_lease: %ld leases (TTL %" PRId64 " s, one key each) "
	       "renewed every %.0f s for %.0f s\n",
	       c.leases, c.ttl, c.interval_s, c.seconds);
	bench_print_machine(dir);

	eng_options_init(&opt);
	erc = eng_open(store, &opt, &g.e);
	if (erc) {
		fprintf(stderr, "eng_open: %s\n", eng_strerror(erc));
		goto out;
	}
	g.n = c.leases;
	g.ttl = c.ttl;
	g.ids = calloc((size_t)c.leases, sizeof(*g.ids));
	if (!g.ids)
		goto close;
	t0 = bench_mono_ns();
	for (n = 0; n < LEASE_GRANT_THREADS; n++)
		if (pthread_create(&th[n], NULL, lease_grant_thread, &g)) {
			atomic_store(&g.failed, 1);
			break;
		}
	while (n > 0)
		pthread_join(th[--n], NULL);
	if (atomic_load(&g.failed))
		goto close;
	printf("granted %ld leases and attached a key to each in %.1f s "
	       "(%d threads)\n",
	       c.leases, (bench_mono_ns() - t0) / 1e9, LEASE_GRANT_THREADS);
	fflush(stdout);

	/* The floor: the same process with the leases, not renewing. */
	{
		struct lease_cfg ic = c;

		ic.seconds = c.idle_s;
		lease_window_run(&ic, store, NULL, NULL, &idle);
		lease_window_print("idle (no renewals)", &idle);
		fflush(stdout);
	}
	if (eng_stats_get(g.e, &st0)) {
		fprintf(stderr, "eng_stats_get failed\n");
		goto close;
	}
	ea.e = g.e;
	ea.ids = g.ids;
	lease_window_run(&c, store, lease_renew_engine, &ea, &run);
	lease_window_print("engine renewals", &run);
	if (eng_stats_get(g.e, &st1)) {
		fprintf(stderr, "eng_stats_get failed\n");
		goto close;
	}
	printf("revision %" PRId64 " -> %" PRId64 ", live leases %" PRId64
	       " -> %" PRId64 ", group commits %" PRIu64 " -> %" PRIu64 "\n",
	       st0.rev, st1.rev, st0.leases, st1.leases, st0.commits,
	       st1.commits);
	printf("aim: < 5%% of one core: %s (%.2f%%); no growth from renewals: "
	       "%s (store files %+" PRId64 " B, write_bytes %+" PRId64 " B)\n",
	       run.cpu_pct < 5 ? "met" : "missed", run.cpu_pct,
	       run.files_delta <= 0 && run.write_bytes <= 0 ? "met" : "missed",
	       run.files_delta, run.write_bytes);
	fflush(stdout);
	if (run.errors || st1.rev != st0.rev || st1.leases != c.leases) {
		fprintf(stderr, "WRONG: renewals failed, took a revision or "
		                "let leases expire\n");
		goto close;
	}
	rc = 0;
close:
	eng_close(g.e);
	free(g.ids);
	if (rc == 0) {
		if (lease_baseline(&c, &base)) {
			rc = 1;
			goto out;
		}
		lease_window_print("baseline (deadline persisted per renewal, "
		                   "leveldb_put sync=1)",
		                   &base);
		printf("ratio engine/baseline: CPU %.3f, write_bytes per "
		       "second %.3f\n",
		       base.cpu_pct > 0 ? run.cpu_pct / base.cpu_pct : 0,
		       base.write_bytes > 0
		           ? ((double)run.write_bytes / run.wall_s) /
		                 ((double)base.write_bytes / base.wall_s)
		           : 0);
		bench_print_load("after");
	}
out:
	bench_rmtree(dir);
	return rc;
}
