/*
 * bench_watch.c — watch delivery latency and memory per watcher under load,
 * for the engine and (with --etcd) for etcd itself in the same run.
 *
 * Opens P watchers on separate prefixes ("/w/pNNNN/") and A watchers on the
 * whole keyspace, then writers put at a fixed total rate (open loop: each
 * put has its slot; a writer that falls behind does not sleep) into keys
 * spread round-robin over the prefixes.  Each value starts with the
 * monotonic time just before the put, so a consumer computes the latency
 * from submission to reading (which includes the durable commit); for the
 * engine, the event's mtime_ns (the commit time, CLOCK_REALTIME) also gives
 * the latency from commit to reading.
 *
 * Engine: a few consumer threads; the notify callback sets a per-watcher
 * flag and, on its first setting, writes the consumer's eventfd (notify
 * must not block); the consumer drains flagged watchers with
 * eng_watch_read.  etcd (--etcd): Debian's etcd 3.4 on loopback; the same
 * watchers in up to 4 etcdctl processes (etcd's Go client, interactive
 * mode, the watches of a process sharing one gRPC stream); the same keys,
 * values and rate put through etcd's JSON gateway with libcurl.  Before the
 * load, one marker per prefix is put until every watch has seen a round of
 * them, so all watches exist when the load starts; markers are not counted.
 *
 * Checked (an engine failure exits 1): per watcher, revisions strictly
 * increase, and at the end each watcher got exactly the puts made under its
 * range.  Printed: achieved put rate, put latency, delivery latency
 * p50/p99/max, deliveries/s, CPU, memory per watcher, and with --etcd the
 * ratios engine/etcd.  Aim (issue 3): p99 < 50 ms.  For scale (issue 3):
 * etcd 3.4 on this kind of machine delivers to 100 watchers at 100 puts/s
 * with p99 10 ms; at 500 puts/s it saturates both cores with p99 0.3-13 s;
 * etcd reports ~350 bytes per watching.
 *
 * usage: bench_watch [--prefix-watchers P] [--all-watchers A] [--rate R]
 *                    [--seconds S] [--writers W] [--consumers C]
 *                    [--value-size B] [--dir BASE] [--etcd]
 */
#include "engine/engine.h"
#include "tests/bench/bench_etcd.h"
#include "tests/bench/bench_util.h"

#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>

#define WATCH_KEYS_PER_PREFIX 100
#define WATCH_READ_MAX        512
#define WATCH_MAX_THREADS     64
#define WATCH_CATCHUP_S       20

struct watch_cfg {
	long prefix_watchers, all_watchers, writers, consumers, value_size;
	long prefixes; /* keys are spread over max(prefix_watchers, 1) */
	double rate, seconds;
	const char *base;
	bool etcd;
};

/* What one side (engine or etcd) measured. */
struct bw_result {
	uint64_t puts, delivered, progress;
	double put_rate, deliv_rate, load_s, catchup_s;
	int64_t put_p50, put_p99;
	struct bench_hist sub, com; /* from submit, from commit */
	double cpu_pct;             /* this process, % of one core */
	double server_cpu_pct;      /* etcd's process (etcd side only) */
	double clients_cpu_pct;     /* the etcdctl clients (etcd side only) */
	long clients_rss_kib;       /* the etcdctl clients (etcd side only) */
	double bytes_per_watcher;
	long rss_after_kib;
	long missing; /* watchers short of events at the end */
	bool bad;     /* excess, disorder or errors */
};

/* A watcher of either side; the counters polled by the main thread while
 * it waits for the consumers to catch up are atomics. */
struct bw_watcher {
	long prefix; /* index of its prefix, or -1 for the whole keyspace */
	eng_rev_t last_rev;
	uint64_t progress;
	atomic_uint_fast64_t events, disorder;
	atomic_int err;
	/* engine */
	eng_watch *w;
	struct bw_consumer *c;
	atomic_int pending; /* set by notify, cleared by the consumer */
};

struct bw_consumer {
	pthread_t th;
	int efd;
	struct bw_watcher **ws; /* the watchers this thread drains */
	size_t nws;
	atomic_int *stop;
	struct bench_hist from_submit, from_commit;
};

struct bw_writer {
	pthread_t th;
	long id;
	const struct watch_cfg *cfg;
	eng *e;                        /* engine side */
	const struct bench_etcd *etcd; /* etcd side */
	int64_t start_ns;
	atomic_long *per_prefix; /* puts made under each prefix */
	uint64_t puts;
	int64_t end_ns;
	int failed;
	struct bench_hist put_lat;
};

/* ------------------------------------------------------------ the writers */

static void *bw_writer_main(void *arg)
{
	struct bw_writer *wr = arg;
	const struct watch_cfg *cfg = wr->cfg;
	char key[64], *val = calloc(1, (size_t)cfg->value_size);
	double step_ns = 1e9 * (double)cfg->writers / cfg->rate;
	int64_t end = wr->start_ns + (int64_t)(cfg->seconds * 1e9), slot, ts;
	uint64_t seed = 0xABCDEF + (uint64_t)wr->id;
	struct bench_buf ans = {0};
	CURL *h = wr->etcd ? curl_easy_init() : NULL;

	if (!val || (wr->etcd && !h)) {
		wr->failed = 1;
		goto out;
	}
	bench_fill(&seed, val, (size_t)cfg->value_size);
	for (uint64_t i = 0;; i++) {
		uint64_t g = i * (uint64_t)cfg->writers + (uint64_t)wr->id;
		long p = (long)(g % (uint64_t)cfg->prefixes);
		long k =
		    (long)(g / (uint64_t)cfg->prefixes % WATCH_KEYS_PER_PREFIX);
		size_t klen;
		int rc;

		slot = wr->start_ns + (int64_t)((double)i * step_ns);
		if (slot >= end)
			break;
		bench_sleep_until(slot);
		klen = (size_t)snprintf(key, sizeof(key), "/w/p%04ld/k%03ld", p,
		                        k);
		ts = bench_mono_ns();
		memcpy(val, &ts, sizeof(ts));
		if (wr->etcd) {
			rc = bench_etcd_put(h, wr->etcd, key, klen, val,
			                    (size_t)cfg->value_size, &ans);
			if (rc)
				fprintf(stderr, "etcd put failed\n");
		} else {
			rc = eng_put(wr->e, key, klen, val,
			             (size_t)cfg->value_size, 0, NULL, NULL);
			if (rc)
				fprintf(stderr, "eng_put: %s\n",
				        eng_strerror(rc));
		}
		if (rc) {
			wr->failed = 1;
			break;
		}
		bench_hist_add(&wr->put_lat, bench_mono_ns() - ts);
		atomic_fetch_add(&wr->per_prefix[p], 1);
		wr->puts++;
	}
out:
	wr->end_ns = bench_mono_ns();
	if (h)
		curl_easy_cleanup(h);
	free(ans.p);
	free(val);
	return NULL;
}

/* Run cfg->writers writers from t_load to the end; fills the put figures. */
static int bw_write_load(const struct watch_cfg *cfg, eng *e,
                         const struct bench_etcd *etcd, atomic_long *per_prefix,
                         int64_t t_load, struct bw_result *r)
{
	struct bw_writer *wrs = calloc((size_t)cfg->writers, sizeof(*wrs));
	struct bench_hist put;
	int64_t t_end = t_load;
	long n;
	int rc = 0;

	if (!wrs || bench_hist_init(&put)) {
		free(wrs);
		return -1;
	}
	for (n = 0; n < cfg->writers; n++) {
		struct bw_writer *wr = &wrs[n];

		wr->id = n;
		wr->cfg = cfg;
		wr->e = e;
		wr->etcd = etcd;
		wr->start_ns = t_load;
		wr->per_prefix = per_prefix;
		if (bench_hist_init(&wr->put_lat))
			break;
		if (pthread_create(&wr->th, NULL, bw_writer_main, wr)) {
			bench_hist_free(&wr->put_lat);
			break;
		}
	}
	if (n < cfg->writers)
		rc = -1;
	while (n-- > 0) {
		pthread_join(wrs[n].th, NULL);
		r->puts += wrs[n].puts;
		if (wrs[n].end_ns > t_end)
			t_end = wrs[n].end_ns;
		if (wrs[n].failed)
			rc = -1;
		bench_hist_merge(&put, &wrs[n].put_lat);
		bench_hist_free(&wrs[n].put_lat);
	}
	r->load_s = (double)(t_end - t_load) / 1e9;
	r->put_rate = (double)r->puts / r->load_s;
	r->put_p50 = bench_hist_quantile(&put, 0.5);
	r->put_p99 = bench_hist_quantile(&put, 0.99);
	bench_hist_free(&put);
	free(wrs);
	return rc;
}

/* How many watchers are short of the puts under their ranges; *bad on
 * excess, disorder or errors. */
static long bw_missing(struct bw_watcher *ws, long n, atomic_long *per_prefix,
                       uint64_t total, bool *bad)
{
	long short_ = 0;

	*bad = false;
	for (long i = 0; i < n; i++) {
		uint64_t want =
		    ws[i].prefix < 0
		        ? total
		        : (uint64_t)atomic_load(&per_prefix[ws[i].prefix]);
		uint64_t got = atomic_load(&ws[i].events);

		if (got < want)
			short_++;
		if (got > want || atomic_load(&ws[i].disorder) ||
		    atomic_load(&ws[i].err))
			*bad = true;
	}
	return short_;
}

/* Wait (bounded) until every watcher has its events. */
static void bw_wait_caught_up(struct bw_watcher *ws, long n,
                              atomic_long *per_prefix, struct bw_result *r)
{
	int64_t t0 = bench_mono_ns();

	do {
		r->missing = bw_missing(ws, n, per_prefix, r->puts, &r->bad);
		if (!r->missing || r->bad)
			break;
		usleep(5000);
	} while (bench_mono_ns() - t0 < WATCH_CATCHUP_S * 1000000000LL);
	r->catchup_s = (double)(bench_mono_ns() - t0) / 1e9;
}

/* Record one event's revision and latency. */
static void bw_count(struct bw_watcher *w, eng_rev_t rev)
{
	/* One put per revision: revisions strictly rise. */
	if (rev <= w->last_rev)
		atomic_fetch_add(&w->disorder, 1);
	w->last_rev = rev;
	atomic_fetch_add_explicit(&w->events, 1, memory_order_relaxed);
}

static void bw_key_range(long prefix, char *key, size_t *klen, char *end,
                         size_t *elen)
{
	if (prefix >= 0) {
		*klen = (size_t)snprintf(key, 32, "/w/p%04ld/", prefix);
		*elen = eng_prefix_end(key, *klen, end);
	} else {
		key[0] = end[0] = 0; /* every key >= "\0" */
		*klen = *elen = 1;
	}
}

/* ------------------------------------------------------------- the engine */

static void bw_notify(void *arg)
{
	struct bw_watcher *w = arg;
	uint64_t one = 1;

	if (!atomic_exchange(&w->pending, 1) &&
	    write(w->c->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the consumer is awake */
	}
}

static void bw_drain(struct bw_consumer *c, struct bw_watcher *w)
{
	struct eng_event *evs;
	int n;

	while ((n = eng_watch_read(w->w, &evs, WATCH_READ_MAX)) > 0) {
		int64_t now = bench_mono_ns(), real = bench_real_ns();

		for (int i = 0; i < n; i++) {
			const struct eng_kv *kv = &evs[i].kv;
			int64_t ts;

			if (evs[i].type == ENG_EV_PROGRESS) {
				w->progress++;
				continue;
			}
			if (evs[i].type == ENG_EV_COMPACTED) {
				atomic_store(&w->err, ENG_E_COMPACTED);
				continue;
			}
			bw_count(w, kv->mod_rev);
			if (evs[i].type != ENG_EV_PUT || !kv->value ||
			    kv->value_len < sizeof(ts))
				continue;
			memcpy(&ts, kv->value, sizeof(ts));
			bench_hist_add(&c->from_submit, now - ts);
			if (kv->mtime_ns)
				bench_hist_add(&c->from_commit,
				               real - kv->mtime_ns);
		}
	}
	if (n < 0 && n != ENG_E_CLOSED)
		atomic_store(&w->err, n);
}

static void *bw_consumer_main(void *arg)
{
	struct bw_consumer *c = arg;
	struct pollfd pfd = {.fd = c->efd, .events = POLLIN};
	uint64_t cnt;

	while (!atomic_load(c->stop)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (read(c->efd, &cnt, sizeof(cnt)) < 0)
			continue;
		for (size_t i = 0; i < c->nws; i++)
			if (atomic_exchange(&c->ws[i]->pending, 0))
				bw_drain(c, c->ws[i]);
	}
	return NULL;
}

static int bw_run_engine(const struct watch_cfg *cfg, const char *dir,
                         struct bw_result *r)
{
	long nw = cfg->prefix_watchers + cfg->all_watchers;
	struct bw_consumer cons[WATCH_MAX_THREADS];
	struct bw_watcher *ws = calloc((size_t)nw, sizeof(*ws));
	atomic_long *per_prefix =
	    calloc((size_t)cfg->prefixes, sizeof(*per_prefix));
	char store[PATH_MAX + 8];
	struct eng_options opt;
	atomic_int stop = 0;
	eng *e = NULL;
	long opened = 0, ncons = 0, running = 0, rss0, rss1;
	int64_t t_load, cpu0;
	int rc = -1, erc;

	memset(cons, 0, sizeof(cons));
	if (!ws || !per_prefix)
		goto out;
	snprintf(store, sizeof(store), "%s/store", dir);
	eng_options_init(&opt);
	erc = eng_open(store, &opt, &e);
	if (erc) {
		fprintf(stderr, "eng_open: %s\n", eng_strerror(erc));
		goto out;
	}
	for (ncons = 0; ncons < cfg->consumers;) {
		struct bw_consumer *c = &cons[ncons++];

		c->stop = &stop;
		c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		c->ws = calloc((size_t)nw / (size_t)cfg->consumers + 1,
		               sizeof(*c->ws));
		if (c->efd < 0 || !c->ws || bench_hist_init(&c->from_submit) ||
		    bench_hist_init(&c->from_commit))
			goto out;
	}

	usleep(200000);
	rss0 = bench_rss_kib();
	for (opened = 0; opened < nw; opened++) {
		struct bw_watcher *w = &ws[opened];
		char key[32], end[32];
		size_t klen, elen;

		w->c = &cons[opened % cfg->consumers];
		w->c->ws[w->c->nws++] = w;
		w->prefix = opened < cfg->prefix_watchers ? opened : -1;
		bw_key_range(w->prefix, key, &klen, end, &elen);
		erc = eng_watch_open(e, key, klen, end, elen, 0, bw_notify, w,
		                     &w->w);
		if (erc) {
			fprintf(stderr, "eng_watch_open: %s\n",
			        eng_strerror(erc));
			goto out;
		}
	}
	usleep(200000);
	rss1 = bench_rss_kib();
	r->bytes_per_watcher = (double)(rss1 - rss0) * 1024 / (double)nw;

	for (running = 0; running < ncons; running++)
		if (pthread_create(&cons[running].th, NULL, bw_consumer_main,
		                   &cons[running]))
			goto out;
	t_load = bench_mono_ns() + 20000000;
	cpu0 = bench_cpu_ns();
	if (bw_write_load(cfg, e, NULL, per_prefix, t_load, r))
		goto out;
	bw_wait_caught_up(ws, nw, per_prefix, r);
	r->cpu_pct = (double)(bench_cpu_ns() - cpu0) /
	             (double)(bench_mono_ns() - t_load) * 100;
	atomic_store(&stop, 1);
	for (; running > 0; running--)
		pthread_join(cons[running - 1].th, NULL);
	r->rss_after_kib = bench_rss_kib();
	r->missing = bw_missing(ws, nw, per_prefix, r->puts, &r->bad);
	for (long i = 0; i < nw; i++) {
		r->delivered += atomic_load(&ws[i].events);
		r->progress += ws[i].progress;
	}
	for (long i = 0; i < ncons; i++) {
		bench_hist_merge(&r->sub, &cons[i].from_submit);
		bench_hist_merge(&r->com, &cons[i].from_commit);
	}
	r->deliv_rate = (double)r->delivered / r->load_s;
	rc = 0;
out:
	atomic_store(&stop, 1);
	for (; running > 0; running--)
		pthread_join(cons[running - 1].th, NULL);
	for (long i = 0; i < opened; i++)
		eng_watch_close(ws[i].w);
	eng_close(e);
	for (long i = 0; i < ncons; i++) {
		if (cons[i].efd >= 0)
			close(cons[i].efd);
		free(cons[i].ws);
		bench_hist_free(&cons[i].from_submit);
		bench_hist_free(&cons[i].from_commit);
	}
	free(ws);
	free(per_prefix);
	return rc;
}

/* --------------------------------------------------------------- etcd */

/*
 * etcd's watchers live in a few etcdctl processes (etcd's own Go client) in
 * interactive mode: each gets its share of the watchers as `watch --prefix
 * KEY` lines on stdin, and the client multiplexes them over one gRPC watch
 * stream, as the kube-apiserver does.  Their `-w json` output is read
 * through pipes by one thread here.  The output does not name the watcher,
 * so counts are checked per process.  The whole-keyspace watchers watch
 * "/w/", the prefix every key of the benchmark is under.
 */
#define WATCH_ETCD_CLIENTS 4

struct bw_client {
	pid_t pid;
	int out, in;           /* its stdout (read) and stdin (kept open) */
	struct bench_buf line; /* bytes of an unfinished JSON line */
	atomic_uint_fast64_t events;
	atomic_int err;
	long nall;      /* its whole-keyspace watchers */
	long *prefixes; /* its prefix watchers' prefixes */
	long nprefix;
	struct bench_hist *hist; /* the etcd consumer's */
	atomic_int *measuring;   /* the load has started */
};

/* One JSON line of etcdctl's output: a watch response with events. */
static void bw_etcd_line(struct bw_client *c, const char *line, size_t len,
                         int64_t now)
{
	/* cluster_id and member_id may not fit in an int64. */
	json_t *root = json_loadb(line, len, JSON_DECODE_INT_AS_REAL, NULL);
	json_t *evs, *ev;
	size_t i;

	if (!root) {
		atomic_store(&c->err, -1);
		return;
	}
	evs = json_object_get(root, "Events");
	json_array_foreach(evs, i, ev)
	{
		json_t *kv = json_object_get(ev, "kv");
		const char *val =
		    json_string_value(json_object_get(kv, "value"));
		int64_t ts;

		atomic_fetch_add(&c->events, 1);
		/* The ready markers' values are too short to hold a time. */
		if (val && atomic_load(c->measuring) &&
		    bench_b64_decode(val, &ts, sizeof(ts)) == (long)sizeof(ts))
			bench_hist_add(c->hist, now - ts);
	}
	json_decref(root);
}

/* Read what etcdctl wrote; returns -1 at EOF or error. */
static int bw_etcd_read(struct bw_client *c)
{
	char buf[65536], *nl;
	ssize_t n = read(c->out, buf, sizeof(buf));
	int64_t now = bench_mono_ns();
	size_t start = 0;

	if (n <= 0)
		return n < 0 && errno == EINTR ? 0 : -1;
	if (bench_buf_write(buf, 1, (size_t)n, &c->line) != (size_t)n)
		return -1;
	while ((nl = memchr(c->line.p + start, '\n', c->line.len - start))) {
		size_t l = (size_t)(nl - (c->line.p + start));

		bw_etcd_line(c, c->line.p + start, l, now);
		start += l + 1;
	}
	memmove(c->line.p, c->line.p + start, c->line.len - start);
	c->line.len -= start;
	return 0;
}

struct bw_etcd_cons {
	struct bw_client *cl;
	long n;
	atomic_int *stop;
};

static void *bw_etcd_consumer(void *arg)
{
	struct bw_etcd_cons *c = arg;
	struct pollfd pfd[WATCH_ETCD_CLIENTS];

	for (long i = 0; i < c->n; i++) {
		pfd[i].fd = c->cl[i].out;
		pfd[i].events = POLLIN;
	}
	while (!atomic_load(c->stop)) {
		if (poll(pfd, (nfds_t)c->n, 50) <= 0)
			continue;
		for (long i = 0; i < c->n; i++) {
			if (!pfd[i].revents)
				continue;
			if (bw_etcd_read(&c->cl[i]))
				pfd[i].fd = -1; /* etcdctl ended */
		}
	}
	return NULL;
}

/* Start `etcdctl watch -i` and give it its watchers. */
static int bw_etcdctl_spawn(const struct bench_etcd *x, struct bw_client *c)
{
	int o[2], in[2] = {-1, -1};
	FILE *f;

	if (pipe2(o, O_CLOEXEC))
		return -1;
	if (pipe2(in, O_CLOEXEC)) {
		close(o[0]);
		close(o[1]);
		return -1;
	}
	c->pid = fork();
	if (c->pid < 0) {
		close(o[0]);
		close(o[1]);
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(o[1], 1);
		dup2(in[0], 0);
		setenv("ETCDCTL_API", "3", 1);
		execlp("etcdctl", "etcdctl", "--endpoints", x->url, "watch",
		       "-i", "-w", "json", (char *)NULL);
		_exit(127);
	}
	close(o[1]);
	close(in[0]);
	c->out = o[0];
	c->in = in[1];
	f = fdopen(dup(c->in), "w");
	if (!f)
		return -1;
	for (long i = 0; i < c->nprefix; i++)
		fprintf(f, "watch --prefix /w/p%04ld/\n", c->prefixes[i]);
	for (long i = 0; i < c->nall; i++)
		fprintf(f, "watch --prefix /w/\n");
	return fclose(f) ? -1 : 0;
}

static int64_t bw_clients_cpu(const struct bw_client *cl, long n)
{
	int64_t sum = 0;

	for (long i = 0; i < n; i++)
		sum += bench_pid_cpu_ns(cl[i].pid);
	return sum;
}

static long bw_clients_rss(const struct bw_client *cl, long n)
{
	long sum = 0;

	for (long i = 0; i < n; i++)
		sum += bench_pid_rss_kib(cl[i].pid);
	return sum;
}

/* Events client c must get for the load (or, with per_prefix NULL, for one
 * round of ready markers). */
static uint64_t bw_client_want(const struct watch_cfg *cfg,
                               const struct bw_client *c,
                               atomic_long *per_prefix, uint64_t total)
{
	uint64_t want =
	    (uint64_t)c->nall * (per_prefix ? total : (uint64_t)cfg->prefixes);

	for (long i = 0; i < c->nprefix; i++)
		want += per_prefix
		            ? (uint64_t)atomic_load(&per_prefix[c->prefixes[i]])
		            : 1;
	return want;
}

/*
 * Put one marker per prefix until a whole round of them reached every
 * watcher: then every watch exists.  Returns 0, or -1 after 30 s.
 */
static int bw_etcd_ready(const struct watch_cfg *cfg,
                         const struct bench_etcd *x, struct bw_client *cl,
                         long ncl)
{
	struct bench_buf ans = {0};
	uint64_t before[WATCH_ETCD_CLIENTS];
	CURL *h = curl_easy_init();
	int64_t t0 = bench_mono_ns();
	int rc = -1;

	while (h && bench_mono_ns() - t0 < 30000000000LL) {
		long ready = 0;

		for (long i = 0; i < ncl; i++)
			before[i] = atomic_load(&cl[i].events);
		for (long p = 0; p < cfg->prefixes; p++) {
			char key[32];
			size_t klen = (size_t)snprintf(key, sizeof(key),
			                               "/w/p%04ld/ready", p);

			if (bench_etcd_put(h, x, key, klen, "r", 1, &ans))
				goto out;
		}
		usleep(500000);
		for (long i = 0; i < ncl; i++)
			ready += atomic_load(&cl[i].events) - before[i] >=
			         bw_client_want(cfg, &cl[i], NULL, 0);
		if (ready == ncl) {
			rc = 0;
			break;
		}
	}
out:
	if (h)
		curl_easy_cleanup(h);
	free(ans.p);
	return rc;
}

/* Wait (bounded) until every client has its events. */
static long bw_etcd_missing(const struct watch_cfg *cfg, struct bw_client *cl,
                            long ncl, atomic_long *per_prefix,
                            struct bw_result *r)
{
	long short_ = 0;

	r->bad = false;
	for (long i = 0; i < ncl; i++) {
		uint64_t want =
		    bw_client_want(cfg, &cl[i], per_prefix, r->puts);
		uint64_t got = atomic_load(&cl[i].events);

		short_ += got < want;
		if (got > want || atomic_load(&cl[i].err))
			r->bad = true;
	}
	return short_;
}

static int bw_run_etcd(const struct watch_cfg *cfg, const char *dir,
                       struct bw_result *r)
{
	long nw = cfg->prefix_watchers + cfg->all_watchers, spawned = 0;
	long ncl = nw < WATCH_ETCD_CLIENTS ? nw : WATCH_ETCD_CLIENTS;
	struct bw_client cl[WATCH_ETCD_CLIENTS];
	atomic_long *per_prefix =
	    calloc((size_t)cfg->prefixes, sizeof(*per_prefix));
	uint64_t pre[WATCH_ETCD_CLIENTS];
	struct bw_etcd_cons cons = {.cl = cl, .n = ncl};
	struct bench_etcd etcd = {0};
	char edir[PATH_MAX + 8];
	atomic_int stop = 0, measuring = 0;
	pthread_t th;
	bool th_running = false;
	long rss0, rss1, crss0, crss1;
	int64_t t_load, cpu0, ecpu0, ccpu0, wall, t_wait;
	int rc = -1;

	memset(cl, 0, sizeof(cl));
	for (long i = 0; i < ncl; i++) {
		cl[i].prefixes =
		    calloc((size_t)cfg->prefix_watchers + 1, sizeof(long));
		cl[i].hist = &r->sub;
		cl[i].measuring = &measuring;
		if (!cl[i].prefixes)
			goto out;
	}
	for (long i = 0; i < nw; i++) {
		struct bw_client *c = &cl[i % ncl];

		if (i < cfg->prefix_watchers)
			c->prefixes[c->nprefix++] = i;
		else
			c->nall++;
	}
	if (!per_prefix)
		goto out;
	snprintf(edir, sizeof(edir), "%s/etcd", dir);
	if (bench_etcd_start(&etcd, edir)) {
		fprintf(stderr, "could not start etcd (see %s.log)\n", edir);
		goto out;
	}
	usleep(200000);
	rss0 = bench_pid_rss_kib(etcd.pid);
	for (spawned = 0; spawned < ncl; spawned++)
		if (bw_etcdctl_spawn(&etcd, &cl[spawned])) {
			spawned++;
			goto out;
		}
	cons.stop = &stop;
	if (pthread_create(&th, NULL, bw_etcd_consumer, &cons))
		goto out;
	th_running = true;
	if (bw_etcd_ready(cfg, &etcd, cl, ncl)) {
		fprintf(stderr, "etcd: the etcdctl watchers did not start\n");
		for (long i = 0; i < ncl; i++)
			fprintf(stderr, "etcdctl %ld: %" PRIu64 " events\n", i,
			        (uint64_t)atomic_load(&cl[i].events));
		goto out;
	}
	usleep(500000); /* the last markers' events */
	rss1 = bench_pid_rss_kib(etcd.pid);
	crss0 = bw_clients_rss(cl, ncl);
	r->bytes_per_watcher = (double)(rss1 - rss0) * 1024 / (double)nw;
	for (long i = 0; i < ncl; i++)
		pre[i] = atomic_load(&cl[i].events);

	t_load = bench_mono_ns() + 20000000;
	atomic_store(&measuring, 1);
	cpu0 = bench_cpu_ns();
	ecpu0 = bench_pid_cpu_ns(etcd.pid);
	ccpu0 = bw_clients_cpu(cl, ncl);
	if (bw_write_load(cfg, NULL, &etcd, per_prefix, t_load, r))
		goto out;
	/* Count only the load's events from here on. */
	for (long i = 0; i < ncl; i++)
		atomic_fetch_sub(&cl[i].events, pre[i]);
	t_wait = bench_mono_ns();
	while ((r->missing = bw_etcd_missing(cfg, cl, ncl, per_prefix, r)) &&
	       !r->bad &&
	       bench_mono_ns() - t_wait < WATCH_CATCHUP_S * 1000000000LL)
		usleep(5000);
	r->catchup_s = (double)(bench_mono_ns() - t_wait) / 1e9;
	wall = bench_mono_ns() - t_load;
	r->cpu_pct = (double)(bench_cpu_ns() - cpu0) / (double)wall * 100;
	r->server_cpu_pct =
	    (double)(bench_pid_cpu_ns(etcd.pid) - ecpu0) / (double)wall * 100;
	r->clients_cpu_pct =
	    (double)(bw_clients_cpu(cl, ncl) - ccpu0) / (double)wall * 100;
	r->rss_after_kib = bench_pid_rss_kib(etcd.pid);
	crss1 = bw_clients_rss(cl, ncl);
	r->clients_rss_kib = crss1 > crss0 ? crss1 : crss0;
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	th_running = false;
	for (long i = 0; i < ncl; i++)
		r->delivered += atomic_load(&cl[i].events);
	r->deliv_rate = (double)r->delivered / r->load_s;
	rc = 0;
out:
	atomic_store(&stop, 1);
	if (th_running)
		pthread_join(th, NULL);
	for (long i = 0; i < spawned; i++) {
		if (cl[i].pid > 0) {
			kill(cl[i].pid, SIGTERM);
			waitpid(cl[i].pid, NULL, 0);
		}
		if (cl[i].out > 0)
			close(cl[i].out);
		if (cl[i].in > 0)
			close(cl[i].in);
	}
	for (long i = 0; i < ncl; i++) {
		free(cl[i].line.p);
		free(cl[i].prefixes);
	}
	bench_etcd_stop(&etcd);
	free(per_prefix);
	return rc;
}

/* ----------------------------------------------------------------- report */

static void bw_print(const char *side, const struct watch_cfg *cfg,
                     const struct bw_result *r)
{
	printf("%s: puts %" PRIu64 " in %.2f s = %.0f puts/s (asked %.0f); "
	       "put latency p50 %.2f ms, p99 %.2f ms\n",
	       side, r->puts, r->load_s, r->put_rate, cfg->rate,
	       r->put_p50 / 1e6, r->put_p99 / 1e6);
	printf("%s: deliveries %" PRIu64 " (%.0f/s), %" PRIu64
	       " progress markers; caught up %.2f s after the last put%s\n",
	       side, r->delivered, r->deliv_rate, r->progress, r->catchup_s,
	       r->missing ? " (NOT all delivered)" : "");
	printf("%s: delivery latency from submit (includes the durable put): "
	       "p50 %.2f ms, p99 %.2f ms, max %.2f ms (aim p99 < 50 ms: %s)\n",
	       side, bench_hist_quantile(&r->sub, 0.5) / 1e6,
	       bench_hist_quantile(&r->sub, 0.99) / 1e6, r->sub.max_ns / 1e6,
	       bench_hist_quantile(&r->sub, 0.99) < 50000000 ? "met"
	                                                     : "missed");
	if (r->com.n)
		printf("%s: delivery latency from commit (mtime): p50 %.2f ms, "
		       "p99 %.2f ms, max %.2f ms\n",
		       side, bench_hist_quantile(&r->com, 0.5) / 1e6,
		       bench_hist_quantile(&r->com, 0.99) / 1e6,
		       r->com.max_ns / 1e6);
	if (r->server_cpu_pct > 0)
		printf("%s: CPU during the load: etcd %.0f%%, the etcdctl "
		       "clients %.0f%%, the writers (this process) %.0f%% of "
		       "one core; etcd RSS after %.1f MiB, the etcdctl "
		       "clients' %.0f MiB\n",
		       side, r->server_cpu_pct, r->clients_cpu_pct, r->cpu_pct,
		       r->rss_after_kib / 1024.0, r->clients_rss_kib / 1024.0);
	else
		printf("%s: CPU during the load (engine, writers, consumers): "
		       "%.0f%% of one core; RSS after %.1f MiB\n",
		       side, r->cpu_pct, r->rss_after_kib / 1024.0);
	printf("%s: memory per watcher (idle, %s RSS delta / watchers): %.0f "
	       "bytes\n",
	       side, r->server_cpu_pct > 0 ? "etcd's" : "the process's",
	       r->bytes_per_watcher);
	fflush(stdout);
}

static void watch_usage(void)
{
	fprintf(stderr, "usage: bench_watch [--prefix-watchers P] "
	                "[--all-watchers A] [--rate R] [--seconds S] "
	                "[--writers W] [--consumers C] [--value-size B] "
	                "[--dir BASE] [--etcd]\n");
}

int main(int argc, char **argv)
{
	struct watch_cfg cfg = {.prefix_watchers = 1000,
	                        .all_watchers = 100,
	                        .writers = 32,
	                        .consumers = 2,
	                        .value_size = 256,
	                        .rate = 2000,
	                        .seconds = 20};
	struct bw_result en = {0}, et = {0};
	char dir[PATH_MAX] = "";
	int rc = 1;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(a, "--etcd") == 0) {
			cfg.etcd = true;
			i--;
		} else if (strcmp(a, "--prefix-watchers") == 0) {
			cfg.prefix_watchers = atol(v);
		} else if (strcmp(a, "--all-watchers") == 0) {
			cfg.all_watchers = atol(v);
		} else if (strcmp(a, "--rate") == 0) {
			cfg.rate = atof(v);
		} else if (strcmp(a, "--seconds") == 0) {
			cfg.seconds = atof(v);
		} else if (strcmp(a, "--writers") == 0) {
			cfg.writers = atol(v);
		} else if (strcmp(a, "--consumers") == 0) {
			cfg.consumers = atol(v);
		} else if (strcmp(a, "--value-size") == 0) {
			cfg.value_size = atol(v);
		} else if (strcmp(a, "--dir") == 0) {
			cfg.base = v;
		} else {
			cfg.writers = 0;
		}
	}
	if (cfg.prefix_watchers < 0 || cfg.all_watchers < 0 ||
	    cfg.prefix_watchers + cfg.all_watchers < 1 || cfg.rate <= 0 ||
	    cfg.seconds <= 0 || cfg.writers < 1 ||
	    cfg.writers > WATCH_MAX_THREADS || cfg.consumers < 1 ||
	    cfg.consumers > WATCH_MAX_THREADS ||
	    cfg.value_size < (long)sizeof(int64_t)) {
		watch_usage();
		return 2;
	}
	cfg.prefixes = cfg.prefix_watchers ? cfg.prefix_watchers : 1;
	if (bench_hist_init(&en.sub) || bench_hist_init(&en.com) ||
	    bench_hist_init(&et.sub) || bench_hist_init(&et.com))
		goto out;
	if (bench_mkdtemp(cfg.base, "watch", dir)) {
		perror("mkdtemp");
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	printf("== bench_watch: %ld prefix watchers + %ld whole-keyspace "
	       "watchers, %.0f puts/s for %.0f s (%ld writers, %ld-byte "
	       "values)%s\n",
	       cfg.prefix_watchers, cfg.all_watchers, cfg.rate, cfg.seconds,
	       cfg.writers, cfg.value_size,
	       cfg.etcd ? "; baseline: etcd 3.4, etcdctl watchers" : "");
	bench_print_machine(dir);

	if (bw_run_engine(&cfg, dir, &en))
		goto out;
	bw_print("engine", &cfg, &en);
	if (en.missing || en.bad) {
		fprintf(stderr,
		        "WRONG: %ld watchers short of events; excess, "
		        "disorder or errors: %s\n",
		        en.missing, en.bad ? "yes" : "no");
		goto out;
	}
	printf("engine: every watcher got exactly its events, in order\n");
	if (cfg.etcd) {
		bench_print_load("before etcd");
		if (bw_run_etcd(&cfg, dir, &et))
			goto out;
		bw_print("etcd", &cfg, &et);
		if (et.bad)
			printf("etcd: excess, out-of-order or unparsable "
			       "events seen\n");
		printf("ratio engine/etcd: p50 %.3f, p99 %.3f, bytes per "
		       "watcher %.2f\n",
		       (double)bench_hist_quantile(&en.sub, 0.5) /
		           (double)bench_hist_quantile(&et.sub, 0.5),
		       (double)bench_hist_quantile(&en.sub, 0.99) /
		           (double)bench_hist_quantile(&et.sub, 0.99),
		       et.bytes_per_watcher > 0
		           ? en.bytes_per_watcher / et.bytes_per_watcher
		           : 0);
	}
	bench_print_load("after");
	rc = 0;
out:
	bench_hist_free(&en.sub);
	bench_hist_free(&en.com);
	bench_hist_free(&et.sub);
	bench_hist_free(&et.com);
	if (dir[0])
		bench_rmtree(dir);
	curl_global_cleanup();
	return rc;
}
