/*
 * bench_open.c — a large store: open time, RSS after open, 1,000-key ranges
 * at an old revision, and paging through the whole keyspace.
 *
 * The store (default 1,000,000 keys x 10 versions of 256 random bytes) is
 * built once into CACHE/store, with CACHE/meta recording what was built and
 * the revision after each round of versions, so later runs reuse it.  A
 * round writes every key once, 1,000 puts per eng_txn (so a round takes
 * ~keys/1000 revisions; each key still gets its own version record), from
 * a few threads, with sync=none (the store is closed cleanly, which makes
 * it durable).  Building stops after the round that would overrun the time
 * budget; the figures then name the real size.
 *
 * The build runs in a child process; the measuring process opens the store
 * fresh: eng_open's wall time, VmRSS after it, the time to the first
 * answer, then 1,000-key ranges at the revision after round 2 (every key at
 * version 2; checked) and at the current revision, then a scan of the whole
 * prefix 500 keys per page at one pinned revision (the time of the first and
 * last pages shows whether the cost per page is flat, i.e. O(n) in total).
 *
 * For scale (from issue 2, not measured here): etcd 3.4 holding 1,000,000
 * keys of 256 bytes takes 6.0-6.5 s from start to its first answer and
 * holds 1.25 GiB RSS; paging it by 500 takes 196 s.  Aims: open < 100 ms,
 * RSS < 100 MiB.  Exit status 1 only on an engine error or a wrong result.
 *
 * usage: bench_open [--dir CACHE] [--keys N] [--versions V] [--value-size B]
 *                   [--budget SECONDS] [--ranges R] [--threads T]
 *                   [--drop-caches] [--extend] [--etcd]
 *
 * --extend continues a store that an earlier budget cut short.
 * --etcd also loads the same keys (one version each: etcd's default 2 GiB
 * quota would not hold ten) into etcd 3.4, cached in CACHE/etcd, and
 * measures it the same way in the same run: start to first answer, RSS, a
 * 1,000-key range and the first pages of paging by 500 through its JSON
 * gateway.
 */
#include "engine/engine.h"
#include "tests/bench/bench_etcd.h"
#include "tests/bench/bench_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

#define OPEN_KEY_LEN      40
#define OPEN_PREFIX       "/registry/pods/"
#define OPEN_TXN_OPS      1000
#define OPEN_RANGE_KEYS   1000
#define OPEN_PAGE         500
#define OPEN_MAX_VERSIONS 64

struct open_meta {
	long keys;
	long value_size;
	long versions;                              /* rounds completed */
	eng_rev_t rev_after[OPEN_MAX_VERSIONS + 1]; /* [v]: rev after round v */
	double build_s;
};

/* The engine's figures, kept for the ratios against etcd. */
struct open_figs {
	int64_t first_ns; /* open to first answer */
	long rss_kib;     /* after open */
	double range_ms;  /* 1,000-key range at the current revision, avg */
	double page_ms;   /* median page of the first tenth of the scan */
};

struct open_cfg {
	char dir[PATH_MAX];
	long keys, versions, value_size, ranges, threads;
	double budget_s;
	bool drop_caches;
	bool extend; /* add versions to a store the budget cut short */
	bool etcd;   /* also measure etcd 3.4 holding the same keys */
};

static void open_key(char *key, long i)
{
	char buf[64];

	/* "/registry/pods/default/object-0000001234": 40 bytes, sorted by i */
	snprintf(buf, sizeof(buf), OPEN_PREFIX "default/object-%010ld", i);
	memcpy(key, buf, OPEN_KEY_LEN);
}

static int open_meta_read(const char *dir, struct open_meta *m)
{
	char path[PATH_MAX + 8];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/meta", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	memset(m, 0, sizeof(*m));
	if (fscanf(f, "keys %ld value_size %ld versions %ld build_s %lf",
	           &m->keys, &m->value_size, &m->versions, &m->build_s) != 4 ||
	    m->versions < 0 || m->versions > OPEN_MAX_VERSIONS)
		goto out;
	for (long v = 1; v <= m->versions; v++)
		if (fscanf(f, " %" SCNd64, &m->rev_after[v]) != 1)
			goto out;
	rc = 0;
out:
	fclose(f);
	return rc;
}

/* Write meta atomically (tmp + rename) so a killed build leaves a usable
 * record of the rounds it finished. */
static int open_meta_write(const char *dir, const struct open_meta *m)
{
	char path[PATH_MAX + 8], tmp[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/meta", dir);
	snprintf(tmp, sizeof(tmp), "%s/meta.tmp", dir);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "keys %ld value_size %ld versions %ld build_s %.1f\n",
	        m->keys, m->value_size, m->versions, m->build_s);
	for (long v = 1; v <= m->versions; v++)
		fprintf(f, " %" PRId64, m->rev_after[v]);
	fprintf(f, "\n");
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return rename(tmp, path);
}

/* ------------------------------------------------------------------- build */

struct open_build {
	eng *e;
	long keys, value_size, round;
	atomic_long next; /* next key index to write in this round */
	atomic_int failed;
};

static void *open_build_thread(void *arg)
{
	struct open_build *b = arg;
	struct eng_op *ops = calloc(OPEN_TXN_OPS, sizeof(*ops));
	char *keys = malloc((size_t)OPEN_TXN_OPS * OPEN_KEY_LEN);
	char *vals = malloc((size_t)OPEN_TXN_OPS * (size_t)b->value_size);

	if (!ops || !keys || !vals) {
		atomic_store(&b->failed, 1);
		goto out;
	}
	while (!atomic_load(&b->failed)) {
		long first = atomic_fetch_add(&b->next, OPEN_TXN_OPS);
		struct eng_txn txn = {.success = ops};
		struct eng_txn_res res;
		int rc;

		if (first >= b->keys)
			break;
		for (long i = first; i < first + OPEN_TXN_OPS && i < b->keys;
		     i++) {
			size_t j = (size_t)(i - first);
			uint64_t seed =
			    (uint64_t)i * 1000003 + (uint64_t)b->round + 1;
			char *v = vals + j * (size_t)b->value_size;

			open_key(keys + j * OPEN_KEY_LEN, i);
			bench_fill(&seed, v, (size_t)b->value_size);
			ops[j] = (struct eng_op){
			    .type = ENG_OP_PUT,
			    .key = keys + j * OPEN_KEY_LEN,
			    .key_len = OPEN_KEY_LEN,
			    .value = v,
			    .value_len = (size_t)b->value_size,
			};
			txn.nsuccess = j + 1;
		}
		rc = eng_txn(b->e, &txn, &res);
		if (rc) {
			fprintf(stderr, "build: eng_txn: %s\n",
			        eng_strerror(rc));
			atomic_store(&b->failed, 1);
			break;
		}
		eng_txn_res_release(&res);
	}
out:
	free(ops);
	free(keys);
	free(vals);
	return NULL;
}

/* Build (or extend) the store; runs in a child process. */
static int open_build_store(const struct open_cfg *c, struct open_meta *m)
{
	char store[PATH_MAX + 8];
	struct eng_options opt;
	struct open_build b = {.keys = c->keys, .value_size = c->value_size};
	pthread_t th[16];
	int64_t t_start = bench_mono_ns(), t_round;
	int rc;

	snprintf(store, sizeof(store), "%s/store", c->dir);
	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE;     /* eng_close makes it durable */
	opt.quota_bytes = 1ULL << 40; /* the default 2 GiB is too small */
	rc = eng_open(store, &opt, &b.e);
	if (rc) {
		fprintf(stderr, "build: eng_open %s: %s\n", store,
		        eng_strerror(rc));
		return -1;
	}
	while (m->versions < c->versions) {
		long nth = c->threads > 16 ? 16 : c->threads, n = 0;
		double round_s, elapsed;

		t_round = bench_mono_ns();
		b.round = m->versions + 1;
		atomic_store(&b.next, 0);
		for (n = 0; n < nth; n++)
			if (pthread_create(&th[n], NULL, open_build_thread,
			                   &b)) {
				atomic_store(&b.failed, 1);
				break;
			}
		while (n > 0)
			pthread_join(th[--n], NULL);
		if (atomic_load(&b.failed)) {
			rc = -1;
			break;
		}
		m->versions++;
		m->rev_after[m->versions] = eng_current_rev(b.e);
		round_s = (double)(bench_mono_ns() - t_round) / 1e9;
		elapsed = (double)(bench_mono_ns() - t_start) / 1e9;
		m->build_s += round_s;
		if (open_meta_write(c->dir, m)) {
			perror("build: meta");
			rc = -1;
			break;
		}
		printf("build: round %ld/%ld: %ld puts in %.1f s (%.0f puts/s),"
		       " rev %" PRId64 ", store %.0f MiB\n",
		       m->versions, c->versions, c->keys, round_s,
		       (double)c->keys / round_s, m->rev_after[m->versions],
		       (double)bench_tree_bytes(store) / (1 << 20));
		fflush(stdout);
		if (m->versions < c->versions &&
		    elapsed + round_s > c->budget_s) {
			printf("build: stopping after %ld versions: the next "
			       "round would overrun the %.0f s budget\n",
			       m->versions, c->budget_s);
			break;
		}
	}
	eng_close(b.e);
	return rc;
}

/* ----------------------------------------------------------------- measure */

static int open_range(eng *e, long start, long keys, eng_rev_t rev, long limit,
                      int64_t want_version, int64_t *ns)
{
	char key[OPEN_KEY_LEN], end[sizeof(OPEN_PREFIX)];
	struct eng_range_req req = {0};
	struct eng_range_res res = {0};
	long want_n = keys - start < limit ? keys - start : limit;
	int64_t t0;
	int rc;

	open_key(key, start);
	req.key = key;
	req.key_len = OPEN_KEY_LEN;
	req.end = end;
	req.end_len = eng_prefix_end(OPEN_PREFIX, strlen(OPEN_PREFIX), end);
	req.rev = rev;
	req.limit = limit;
	t0 = bench_mono_ns();
	rc = eng_range(e, &req, &res);
	*ns = bench_mono_ns() - t0;
	if (rc) {
		fprintf(stderr, "eng_range at %" PRId64 ": %s\n", rev,
		        eng_strerror(rc));
		goto out;
	}
	if ((long)res.n != want_n) {
		fprintf(stderr,
		        "range from %ld at %" PRId64 ": %zu keys, "
		        "want %ld\n",
		        start, rev, res.n, want_n);
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < res.n; i++) {
		open_key(key, start + (long)i);
		if (res.kvs[i].key_len != OPEN_KEY_LEN ||
		    memcmp(res.kvs[i].key, key, OPEN_KEY_LEN) != 0 ||
		    res.kvs[i].version != want_version) {
			fprintf(stderr,
			        "range at %" PRId64 ": entry %zu: "
			        "wrong key or version %" PRId64
			        " (want %" PRId64 ")\n",
			        rev, i, res.kvs[i].version, want_version);
			rc = -1;
			goto out;
		}
	}
out:
	eng_range_res_release(&res);
	return rc;
}

static int open_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median of n values (sorts a copy). */
static int64_t open_median(const int64_t *v, size_t n)
{
	int64_t *c = malloc(n * sizeof(*c)), m;

	if (!c)
		return 0;
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), open_cmp_i64);
	m = c[n / 2];
	free(c);
	return m;
}

/* R ranges of 1,000 keys at rev, random starts; prints avg/p50/max. */
static int open_ranges(eng *e, const struct open_meta *m, long nranges,
                       eng_rev_t rev, int64_t want_version, const char *what,
                       double *avg_ms)
{
	int64_t *ns = calloc((size_t)nranges, sizeof(*ns)), sum = 0;
	uint64_t seed = 0x51ED2701ULL;
	long span = m->keys > OPEN_RANGE_KEYS ? m->keys - OPEN_RANGE_KEYS : 1;
	int rc = -1;

	if (!ns)
		return -1;
	for (long r = 0; r < nranges; r++) {
		long start = (long)(bench_rand(&seed) % (uint64_t)span);

		if (open_range(e, start, m->keys, rev, OPEN_RANGE_KEYS,
		               want_version, &ns[r]))
			goto out;
		sum += ns[r];
	}
	qsort(ns, (size_t)nranges, sizeof(*ns), open_cmp_i64);
	printf("range %d keys at %s (rev %" PRId64 "): avg %.2f ms, p50 %.2f "
	       "ms, max %.2f ms over %ld ranges at random starts\n",
	       OPEN_RANGE_KEYS, what, rev,
	       *avg_ms = (double)sum / nranges / 1e6, ns[nranges / 2] / 1e6,
	       ns[nranges - 1] / 1e6, nranges);
	rc = 0;
out:
	free(ns);
	return rc;
}

/* Page through the whole prefix by 500 at one revision. */
static int open_paging(eng *e, const struct open_meta *m, double *page_ms)
{
	char end[sizeof(OPEN_PREFIX)], *next = NULL;
	size_t next_len = strlen(OPEN_PREFIX), end_len;
	long pages_max = m->keys / OPEN_PAGE + 2, pages = 0, total = 0;
	int64_t *ns = calloc((size_t)pages_max, sizeof(*ns)), t_all, first,
	        last;
	eng_rev_t rev = 0;
	bool more = true;
	int rc = -1, k;

	next = malloc(OPEN_KEY_LEN + 1);
	if (!ns || !next)
		goto out;
	memcpy(next, OPEN_PREFIX, next_len);
	end_len = eng_prefix_end(OPEN_PREFIX, strlen(OPEN_PREFIX), end);
	t_all = bench_mono_ns();
	while (more) {
		struct eng_range_req req = {.key = next,
		                            .key_len = next_len,
		                            .end = end,
		                            .end_len = end_len,
		                            .rev = rev,
		                            .limit = OPEN_PAGE};
		struct eng_range_res res = {0};
		int64_t t0 = bench_mono_ns();
		struct eng_kv *lastkv;

		rc = eng_range(e, &req, &res);
		if (rc) {
			fprintf(stderr, "paging: eng_range: %s\n",
			        eng_strerror(rc));
			eng_range_res_release(&res);
			goto out;
		}
		if (pages < pages_max)
			ns[pages] = bench_mono_ns() - t0;
		pages++;
		if (!rev)
			rev = res.header_rev; /* one revision for the scan */
		total += (long)res.n;
		more = res.more;
		if (res.n) {
			/* Continue after the last key: last key + "\0". */
			lastkv = &res.kvs[res.n - 1];
			if (lastkv->key_len != OPEN_KEY_LEN) {
				fprintf(stderr, "paging: unexpected key\n");
				eng_range_res_release(&res);
				rc = -1;
				goto out;
			}
			memcpy(next, lastkv->key, lastkv->key_len);
			next[lastkv->key_len] = 0;
			next_len = lastkv->key_len + 1;
		} else {
			more = false;
		}
		eng_range_res_release(&res);
	}
	t_all = bench_mono_ns() - t_all;
	if (total != m->keys) {
		fprintf(stderr, "paging: %ld keys, want %ld\n", total, m->keys);
		rc = -1;
		goto out;
	}
	/* Medians per tenth of the pages, robust to a neighbour's burst on a
	 * shared machine: flat from the first tenth to the last means each
	 * page costs the same, so the scan is O(n) in total. */
	if (pages > pages_max)
		pages = pages_max;
	k = pages / 10 > 1 ? (int)(pages / 10) : 1;
	first = open_median(ns, (size_t)k);
	*page_ms = (double)first / 1e6;
	last = open_median(ns + pages - k, (size_t)k);
	printf("paging %ld keys by %d at rev %" PRId64 ": %ld pages in %.2f s "
	       "(%.3f ms/page) [etcd 3.4, for scale, not measured here: "
	       "196 s]\n",
	       total, OPEN_PAGE, rev, pages, t_all / 1e9, t_all / 1e6 / pages);
	printf("paging: median ms/page per tenth of the scan:");
	for (long t = 0; t + k <= pages && t < 10 * (long)k; t += k)
		printf(" %.3f", open_median(ns + t, (size_t)k) / 1e6);
	printf("; last/first %.2f\n", first ? (double)last / (double)first : 0);
	rc = 0;
out:
	free(ns);
	free(next);
	return rc;
}

/* RSS split: anonymous memory vs file pages (LevelDB mmaps its tables:
 * pages of the page cache that the kernel can drop, not heap). */
static void open_print_rss(const char *when)
{
	printf("rss %s: %.1f MiB (anonymous %.1f MiB, mapped files %.1f "
	       "MiB)\n",
	       when, bench_rss_kib() / 1024.0,
	       bench_status_kib("RssAnon") / 1024.0,
	       bench_status_kib("RssFile") / 1024.0);
}

/* leveldb_open + close of the store with the engine's options, in ns. */
static int64_t open_raw_leveldb(const char *store)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_cache_t *cache = leveldb_cache_create_lru(64 << 20);
	leveldb_filterpolicy_t *bloom = leveldb_filterpolicy_create_bloom(10);
	char *err = NULL;
	leveldb_t *db;
	int64_t t0 = bench_mono_ns(), ns;

	leveldb_options_set_cache(o, cache);
	leveldb_options_set_filter_policy(o, bloom);
	leveldb_options_set_write_buffer_size(o, 8u << 20);
	db = leveldb_open(o, store, &err);
	ns = bench_mono_ns() - t0;
	if (err) {
		fprintf(stderr, "leveldb_open: %s\n", err);
		leveldb_free(err);
		ns = -1;
	} else {
		leveldb_close(db);
	}
	leveldb_options_destroy(o);
	leveldb_cache_destroy(cache);
	leveldb_filterpolicy_destroy(bloom);
	return ns;
}

/*
 * The time of a raw leveldb_open of the store as it is now, without
 * touching it: tables are hard-linked (LevelDB never rewrites one) and the
 * small files (log, manifest) copied into `scratch`, which is removed.
 * Returns ns or -1.
 */
static int64_t open_raw_copy(const char *store, const char *scratch)
{
	char src[PATH_MAX + 300], dst[PATH_MAX + 300], buf[65536];
	DIR *d = opendir(store);
	struct dirent *de;
	int64_t ns = -1;

	if (!d || mkdir(scratch, 0700))
		goto out;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		int in, o;
		ssize_t n;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "LOCK") == 0)
			continue;
		snprintf(src, sizeof(src), "%s/%s", store, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", scratch, de->d_name);
		if (l > 4 && (strcmp(de->d_name + l - 4, ".ldb") == 0 ||
		              strcmp(de->d_name + l - 4, ".sst") == 0)) {
			if (link(src, dst))
				goto out;
			continue;
		}
		in = open(src, O_RDONLY);
		o = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
		while (in >= 0 && o >= 0 &&
		       (n = read(in, buf, sizeof(buf))) > 0)
			if (write(o, buf, (size_t)n) != n)
				break;
		if (in >= 0)
			close(in);
		if (o >= 0)
			close(o);
		if (in < 0 || o < 0)
			goto out;
	}
	ns = open_raw_leveldb(scratch);
out:
	if (d)
		closedir(d);
	bench_rmtree(scratch);
	return ns;
}

static int open_measure(const struct open_cfg *c, const struct open_meta *m,
                        struct open_figs *f)
{
	char store[PATH_MAX + 8], scratch[PATH_MAX + 16], key[OPEN_KEY_LEN];
	struct eng_options opt;
	struct eng_kv kv;
	eng *e = NULL;
	long rss0, rss1, anon1;
	int64_t t0, t_open, t_first, t_raw;
	eng_rev_t old_rev;
	int64_t old_version;
	int rc;

	snprintf(store, sizeof(store), "%s/store", c->dir);
	if (c->drop_caches) {
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

		sync();
		if (fd < 0 || write(fd, "3\n", 2) != 2)
			fprintf(stderr, "drop_caches failed (not root?)\n");
		else
			printf("page cache dropped: cold open\n");
		if (fd >= 0)
			close(fd);
	}
	snprintf(scratch, sizeof(scratch), "%s/rawcopy", c->dir);
	t_raw = open_raw_copy(store, scratch);
	if (t_raw < 0) {
		fprintf(stderr, "raw copy of %s failed\n", store);
		return -1;
	}
	eng_options_init(&opt);
	opt.create = false;
	opt.quota_bytes = 1ULL << 40;
	rss0 = bench_rss_kib();
	t0 = bench_mono_ns();
	rc = eng_open(store, &opt, &e);
	t_open = bench_mono_ns() - t0;
	if (rc) {
		fprintf(stderr, "eng_open %s: %s\n", store, eng_strerror(rc));
		return -1;
	}
	rss1 = bench_rss_kib();
	anon1 = bench_status_kib("RssAnon");
	f->rss_kib = rss1;
	open_key(key, m->keys / 2);
	rc = eng_get(e, key, OPEN_KEY_LEN, 0, NULL, &kv);
	t_first = bench_mono_ns() - t0;
	f->first_ns = t_first;
	if (rc || kv.version != m->versions) {
		fprintf(stderr, "first get: %s, version %" PRId64 "\n",
		        eng_strerror(rc), rc ? 0 : kv.version);
		if (!rc)
			eng_kv_release(&kv);
		rc = -1;
		goto out;
	}
	eng_kv_release(&kv);
	printf("open (fresh process): %.1f ms (aim < 100 ms: %s); raw "
	       "leveldb_open of the same files in the same state (baseline): "
	       "%.1f ms; ratio %.2f\n",
	       t_open / 1e6, t_open < 100000000 ? "met" : "missed", t_raw / 1e6,
	       t_raw ? (double)t_open / (double)t_raw : 0);
	printf("open to first answer: %.1f ms [etcd 3.4, for scale, not "
	       "measured here: 6.0-6.5 s; ratio %.4f]\n",
	       t_first / 1e6, t_first / 1e9 / 6.0);
	printf("rss after open: %.1f MiB (anonymous %.1f MiB; process before "
	       "open %.1f MiB; aim < 100 MiB: %s) [etcd 3.4, for scale: 1.25 "
	       "GiB]\n",
	       rss1 / 1024.0, anon1 / 1024.0, rss0 / 1024.0,
	       rss1 < 100 * 1024 ? "met" : "missed");

	/* The revision after round 2: every key at version 2. */
	old_version = m->versions >= 2 ? 2 : 1;
	old_rev = m->rev_after[old_version];
	rc = open_ranges(e, m, c->ranges, old_rev, old_version,
	                 "an old revision", &f->range_ms);
	if (rc)
		goto out;
	rc = open_ranges(e, m, c->ranges, 0, m->versions,
	                 "the current revision", &f->range_ms);
	if (rc)
		goto out;
	open_print_rss("after the ranges");
	rc = open_paging(e, m, &f->page_ms);
	if (rc)
		goto out;
	open_print_rss("after paging");
	/* The first open after a build replays LevelDB's log; a second one
	 * shows the steady state (page cache warm either way). */
	eng_close(e);
	t0 = bench_mono_ns();
	rc = eng_open(store, &opt, &e);
	t_open = bench_mono_ns() - t0;
	if (rc) {
		fprintf(stderr, "reopen: %s\n", eng_strerror(rc));
		e = NULL;
		goto out;
	}
	printf("reopen (same process, after a clean close): %.1f ms",
	       t_open / 1e6);
	eng_close(e);
	e = NULL;
	t0 = open_raw_leveldb(store);
	if (t0 < 0) {
		rc = -1;
		goto out;
	}
	printf("; raw leveldb_open of it then: %.1f ms; ratio %.2f\n", t0 / 1e6,
	       t0 ? (double)t_open / (double)t0 : 0);
out:
	eng_close(e);
	return rc;
}

/* ------------------------------------------------------------------ etcd */

#define OPEN_ETCD_TXN     128 /* etcd's default --max-txn-ops */
#define OPEN_ETCD_THREADS 8

struct open_etcd_load {
	const struct bench_etcd *x;
	long keys, value_size;
	atomic_long next;
	atomic_int failed;
};

/* Put keys OPEN_ETCD_TXN at a time, one txn each, through the gateway. */
static void *open_etcd_load_thread(void *arg)
{
	struct open_etcd_load *L = arg;
	size_t vb64 = 4 * (((size_t)L->value_size + 2) / 3);
	size_t cap = OPEN_ETCD_TXN * (vb64 + 128) + 64;
	char *body = malloc(cap), *val = malloc((size_t)L->value_size);
	char key[OPEN_KEY_LEN];
	struct bench_buf ans = {0};
	CURL *h = curl_easy_init();

	if (!body || !val || !h) {
		atomic_store(&L->failed, 1);
		goto out;
	}
	while (!atomic_load(&L->failed)) {
		long first = atomic_fetch_add(&L->next, OPEN_ETCD_TXN);
		size_t o;

		if (first >= L->keys)
			break;
		o = (size_t)snprintf(body, cap, "{\"success\":[");
		for (long i = first; i < first + OPEN_ETCD_TXN && i < L->keys;
		     i++) {
			uint64_t seed = (uint64_t)i * 1000003 + 1;

			open_key(key, i);
			bench_fill(&seed, val, (size_t)L->value_size);
			o += (size_t)snprintf(body + o, cap - o,
			                      "%s{\"request_put\":{\"key\":\"",
			                      i == first ? "" : ",");
			o += bench_b64_encode(key, OPEN_KEY_LEN, body + o);
			o += (size_t)snprintf(body + o, cap - o,
			                      "\",\"value\":\"");
			o += bench_b64_encode(val, (size_t)L->value_size,
			                      body + o);
			o += (size_t)snprintf(body + o, cap - o, "\"}}");
		}
		snprintf(body + o, cap - o, "]}");
		if (bench_http_post(h, L->x->url, "/v3/kv/txn", body, &ans) !=
		    200) {
			fprintf(stderr, "etcd txn: %.200s\n",
			        ans.p ? ans.p : "(no answer)");
			atomic_store(&L->failed, 1);
		}
	}
out:
	if (h)
		curl_easy_cleanup(h);
	free(ans.p);
	free(body);
	free(val);
	return NULL;
}

/* Load the keys into a new etcd data directory; writes CACHE/etcd-meta. */
static int open_etcd_build(const struct open_cfg *c, const char *edir)
{
	struct open_etcd_load L = {.keys = c->keys,
	                           .value_size = c->value_size};
	struct bench_etcd x;
	pthread_t th[OPEN_ETCD_THREADS];
	char meta[PATH_MAX + 16];
	int64_t t0 = bench_mono_ns();
	FILE *f;
	int n, rc = -1;

	if (bench_etcd_start_timed(&x, edir, 30, 100, NULL)) {
		fprintf(stderr, "etcd did not start (see %s.log)\n", edir);
		return -1;
	}
	L.x = &x;
	for (n = 0; n < OPEN_ETCD_THREADS; n++)
		if (pthread_create(&th[n], NULL, open_etcd_load_thread, &L)) {
			atomic_store(&L.failed, 1);
			break;
		}
	while (n > 0)
		pthread_join(th[--n], NULL);
	bench_etcd_stop(&x);
	if (atomic_load(&L.failed))
		return -1;
	printf("etcd: loaded %ld keys x %ld bytes in %.0f s (%d puts per "
	       "txn, %d threads)\n",
	       c->keys, c->value_size, (bench_mono_ns() - t0) / 1e9,
	       OPEN_ETCD_TXN, OPEN_ETCD_THREADS);
	snprintf(meta, sizeof(meta), "%s-meta", edir);
	f = fopen(meta, "w");
	if (f) {
		fprintf(f, "keys %ld value_size %ld\n", c->keys, c->value_size);
		rc = fclose(f) ? -1 : 0;
	}
	return rc;
}

/* One range through the gateway; returns its time in ns, or -1. */
static int64_t open_etcd_range(CURL *h, const struct bench_etcd *x, long start,
                               long limit, struct bench_buf *ans)
{
	char key[OPEN_KEY_LEN], end[sizeof(OPEN_PREFIX)], body[256];
	char k64[64], e64[64];
	size_t elen = eng_prefix_end(OPEN_PREFIX, strlen(OPEN_PREFIX), end);
	int64_t t0;

	open_key(key, start);
	bench_b64_encode(key, OPEN_KEY_LEN, k64);
	bench_b64_encode(end, elen, e64);
	snprintf(body, sizeof(body),
	         "{\"key\":\"%s\",\"range_end\":\"%s\",\"limit\":%ld}", k64,
	         e64, limit);
	t0 = bench_mono_ns();
	if (bench_http_post(h, x->url, "/v3/kv/range", body, ans) != 200)
		return -1;
	return bench_mono_ns() - t0;
}

/*
 * etcd 3.4 holding the same keys (one version each), in the same run:
 * start to first answer, RSS, 1,000-key ranges and the first pages of a
 * paging by 500 (etcd counts the rest of the range on every page).
 */
static int open_etcd(const struct open_cfg *c, const struct open_meta *m,
                     const struct open_figs *f)
{
	char edir[PATH_MAX + 8], meta[PATH_MAX + 16];
	struct bench_etcd x;
	struct bench_buf ans = {0};
	uint64_t seed = 0x51ED2701ULL;
	int64_t ready, sum = 0, ns;
	long rss, span = m->keys - OPEN_RANGE_KEYS, pages = 10;
	struct stat st;
	CURL *h = NULL;
	int rc = -1;

	snprintf(edir, sizeof(edir), "%s/etcd", c->dir);
	snprintf(meta, sizeof(meta), "%s-meta", edir);
	if (stat(meta, &st)) {
		bench_rmtree(edir);
		if (open_etcd_build(c, edir))
			return -1;
	}
	if (bench_etcd_start_timed(&x, edir, 120, 10, &ready)) {
		fprintf(stderr, "etcd did not answer within 120 s\n");
		return -1;
	}
	rss = bench_pid_rss_kib(x.pid);
	printf("etcd 3.4, same keys (1 version each; %.0f MiB data dir): "
	       "start to first answer %.2f s, RSS then %.0f MiB "
	       "[engine: %.1f ms, %.1f MiB; ratio engine/etcd %.4f, %.4f]\n",
	       (double)bench_tree_bytes(edir) / (1 << 20), ready / 1e9,
	       rss / 1024.0, f->first_ns / 1e6, f->rss_kib / 1024.0,
	       (double)f->first_ns / (double)ready,
	       (double)f->rss_kib / (double)rss);
	h = curl_easy_init();
	if (!h)
		goto out;
	for (long r = 0; r < 10; r++) {
		ns = open_etcd_range(h, &x,
		                     (long)(bench_rand(&seed) % (uint64_t)span),
		                     OPEN_RANGE_KEYS, &ans);
		if (ns < 0)
			goto out;
		sum += ns;
	}
	printf("etcd: range %d keys at the current revision: avg %.2f ms "
	       "over 10 [engine %.2f ms; ratio %.3f]\n",
	       OPEN_RANGE_KEYS, sum / 10 / 1e6, f->range_ms,
	       f->range_ms / (sum / 10 / 1e6));
	sum = 0;
	for (long p = 0; p < pages; p++) {
		ns = open_etcd_range(h, &x, p * OPEN_PAGE, OPEN_PAGE, &ans);
		if (ns < 0)
			goto out;
		sum += ns;
	}
	printf("etcd: paging by %d, first %ld pages: %.1f ms/page (each page "
	       "counts the rest of the range; the whole scan would be about "
	       "%.1f s) [engine: %.3f ms/page; ratio %.4f]\n",
	       OPEN_PAGE, pages, sum / pages / 1e6,
	       sum / pages / 1e9 * (double)(m->keys / OPEN_PAGE) / 2,
	       f->page_ms, f->page_ms / (sum / pages / 1e6));
	printf("etcd: RSS after the reads %.0f MiB\n",
	       bench_pid_rss_kib(x.pid) / 1024.0);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "etcd range failed: %.200s\n",
		        ans.p ? ans.p : "");
	if (h)
		curl_easy_cleanup(h);
	free(ans.p);
	bench_etcd_stop(&x);
	return rc;
}

static void open_usage(void)
{
	fprintf(stderr,
	        "usage: bench_open [--dir CACHE] [--keys N] [--versions V] "
	        "[--value-size B] [--budget S] [--ranges R] [--threads T] "
	        "[--drop-caches] [--extend] [--etcd]\n");
}

int main(int argc, char **argv)
{
	struct open_cfg c = {.keys = 1000000,
	                     .versions = 10,
	                     .value_size = 256,
	                     .ranges = 100,
	                     .threads = 2,
	                     .budget_s = 300};
	struct open_meta m = {0};
	struct open_figs figs = {0};
	char store[PATH_MAX + 8];
	bool tmp_dir = false, have_meta;
	struct stat st;
	int64_t bytes;
	int rc = 1, status;
	pid_t pid;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(a, "--drop-caches") == 0) {
			c.drop_caches = true;
			continue;
		}
		if (strcmp(a, "--extend") == 0) {
			c.extend = true;
			continue;
		}
		if (strcmp(a, "--etcd") == 0) {
			c.etcd = true;
			continue;
		}
		if (strcmp(a, "--dir") == 0)
			snprintf(c.dir, sizeof(c.dir), "%s", v);
		else if (strcmp(a, "--keys") == 0)
			c.keys = atol(v);
		else if (strcmp(a, "--versions") == 0)
			c.versions = atol(v);
		else if (strcmp(a, "--value-size") == 0)
			c.value_size = atol(v);
		else if (strcmp(a, "--budget") == 0)
			c.budget_s = atof(v);
		else if (strcmp(a, "--ranges") == 0)
			c.ranges = atol(v);
		else if (strcmp(a, "--threads") == 0)
			c.threads = atol(v);
		else
			c.keys = 0;
		i++;
	}
	if (c.keys < OPEN_RANGE_KEYS || c.versions < 1 ||
	    c.versions > OPEN_MAX_VERSIONS || c.value_size < 1 ||
	    c.ranges < 1 || c.threads < 1 || c.budget_s <= 0) {
		open_usage();
		return 2;
	}
	/* Line-buffered: a long build or load shows its progress in a log. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!c.dir[0]) {
		if (bench_mkdtemp(NULL, "open", c.dir)) {
			perror("mkdtemp");
			return 1;
		}
		tmp_dir = true;
	} else if (mkdir(c.dir, 0700) && errno != EEXIST) {
		perror(c.dir);
		return 1;
	}
	snprintf(store, sizeof(store), "%s/store", c.dir);

	printf("== bench_open: open time, RSS, old-revision ranges and paging "
	       "in a large store\n");
	bench_print_machine(c.dir);
	have_meta = open_meta_read(c.dir, &m) == 0;
	if (have_meta && (m.keys != c.keys || m.value_size != c.value_size)) {
		fprintf(stderr,
		        "%s holds a store of %ld keys x %ld bytes; "
		        "remove it or use another --dir\n",
		        c.dir, m.keys, m.value_size);
		goto out;
	}
	if (!have_meta && stat(store, &st) == 0) {
		fprintf(stderr,
		        "%s has a store but no meta (interrupted "
		        "build?); remove it\n",
		        c.dir);
		goto out;
	}
	if (!have_meta) {
		m.keys = c.keys;
		m.value_size = c.value_size;
	}
	if (!have_meta || (c.extend && m.versions < c.versions)) {
		printf("building %ld keys x %ld versions x %ld-byte values "
		       "in %s from version %ld (budget %.0f s, %ld threads)\n",
		       c.keys, c.versions, c.value_size, store, m.versions + 1,
		       c.budget_s, c.threads);
		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			perror("fork");
			goto out;
		}
		if (pid == 0)
			_exit(open_build_store(&c, &m) ? 1 : 0);
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "build failed\n");
			goto out;
		}
		if (open_meta_read(c.dir, &m)) {
			fprintf(stderr, "build wrote no meta\n");
			goto out;
		}
	} else {
		printf("reusing the store in %s\n", store);
	}
	bytes = bench_tree_bytes(store);
	printf("store: %ld keys x %ld versions (%ld versions in all) of %ld "
	       "bytes, %.0f MiB on disk, built in %.0f s%s\n",
	       m.keys, m.versions, m.keys * m.versions, m.value_size,
	       (double)bytes / (1 << 20), m.build_s,
	       m.versions < c.versions ? " (SMALLER than asked: budget)" : "");
	fflush(stdout);
	if (open_measure(&c, &m, &figs))
		goto out;
	if (c.etcd && open_etcd(&c, &m, &figs))
		goto out;
	bench_print_load("after");
	rc = 0;
out:
	if (tmp_dir)
		bench_rmtree(c.dir);
	curl_global_cleanup();
	return rc;
}
