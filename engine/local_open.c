/*
 * local_open.c — the local backend's life cycle: open (create the directory
 * 0700, open LevelDB in it, check the magic record, read the state records),
 * close, the background thread (file size and quota, auto-compaction,
 * interval sync), statistics, and the operations table.
 *
 * Invariants: opening reads a handful of meta records and never scans keys;
 * a directory is a store only if it holds the magic record (or is an empty
 * LevelDB left by a crash during creation); LevelDB's LOCK file decides
 * who may open it.  Close stops every thread before LevelDB goes away.
 */
#include "local_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAGIC      "revfs-store"
#define MAGIC_LEN  (sizeof(MAGIC) - 1)
#define BG_TICK_MS 250

int local_ldb_err(struct local *l, char *err, const char *what)
{
	int rc = ENG_E_IO;

	/* At open: "IO error: lock DIR/LOCK: Resource temporarily
	 * unavailable" or "... already held by process". */
	if (!strcmp(what, "open") && strstr(err, "lock "))
		rc = ENG_E_LOCKED;
	else if (strstr(err, "Corruption"))
		rc = ENG_E_CORRUPT;
	eng_logf(&l->base.opt, ENG_LOG_ERR, "leveldb %s: %s", what, err);
	leveldb_free(err);
	return rc;
}

void local_stat_record(struct local *l, struct eng_op_stats *s,
                       int64_t start_ns, int rc)
{
	pthread_mutex_lock(&l->st_lock);
	eng_op_stats_add(s, start_ns, rc);
	pthread_mutex_unlock(&l->st_lock);
}

/* The size of LevelDB's data files (tables and logs). */
uint64_t local_measure_bytes(struct local *l)
{
	uint64_t total = 0;
	struct dirent *de;
	DIR *d = opendir(l->dir);

	if (!d)
		return atomic_load(&l->db_bytes);
	atomic_store(&l->pending_bytes, 0);
	while ((de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		struct stat st;

		if (!dot || (strcmp(dot, ".ldb") && strcmp(dot, ".sst") &&
		             strcmp(dot, ".log")))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	atomic_store(&l->db_bytes, total);
	return total;
}

/*
 * The size of the tables as LevelDB's version set records it: no directory
 * scan and no stat, so opening a store of thousands of files stays cheap.
 * The table files cover every record ever flushed; the write-ahead log is
 * small right after open (recovery flushes it), and the background thread
 * replaces this estimate with a real measure at its first tick.
 */
static uint64_t estimate_bytes(struct local *l)
{
	static const char lo[] = "";
	static const char hi[] = "\xff\xff\xff\xff\xff\xff\xff\xff";
	const char *starts[1] = {lo};
	const char *limits[1] = {hi};
	size_t start_lens[1] = {0};
	size_t limit_lens[1] = {sizeof(hi) - 1};
	uint64_t size = 0;

	leveldb_approximate_sizes(l->db, 1, starts, start_lens, limits,
	                          limit_lens, &size);
	atomic_store(&l->pending_bytes, 0);
	atomic_store(&l->db_bytes, size);
	return size;
}

/* ---------------------------------------------------------- background */

static void auto_compact(struct local *l, int64_t now)
{
	const struct eng_options *o = &l->base.opt;
	int64_t rev = atomic_load(&l->rev);
	int64_t target = 0;

	if (o->auto_compact == ENG_AUTO_COMPACT_REVISION) {
		target = rev - o->auto_compact_value;
	} else if (o->auto_compact == ENG_AUTO_COMPACT_PERIODIC) {
		int64_t window = o->auto_compact_value * 1000000;
		int64_t every = window / 100;

		/* A ring of (time, rev) samples: compact at the revision
		 * that was current one window ago. */
		if (every < 100000000)
			every = 100000000;
		if (now - l->ac_last_sample_ns >= every) {
			size_t i = (l->ac_head + l->ac_n) % LOCAL_AC_SAMPLES;

			if (l->ac_n == LOCAL_AC_SAMPLES) {
				l->ac_head =
				    (l->ac_head + 1) % LOCAL_AC_SAMPLES;
				l->ac_n--;
			}
			l->ac_time[i] = now;
			l->ac_rev[i] = rev;
			l->ac_n++;
			l->ac_last_sample_ns = now;
		}
		while (l->ac_n && now - l->ac_time[l->ac_head] >= window) {
			target = l->ac_rev[l->ac_head];
			l->ac_head = (l->ac_head + 1) % LOCAL_AC_SAMPLES;
			l->ac_n--;
		}
	}
	if (target > atomic_load(&l->compact_rev)) {
		int rc = local_compact(&l->base, target, false);

		if (rc && rc != ENG_E_COMPACTED)
			eng_logf(o, ENG_LOG_WARN, "auto-compaction at %lld: %s",
			         (long long)target, eng_strerror(rc));
		else if (!rc)
			eng_logf(o, ENG_LOG_INFO, "auto-compacted at %lld",
			         (long long)target);
	}
}

static void *bg_main(void *arg)
{
	struct local *l = arg;
	int64_t last_measure = 0;

	pthread_mutex_lock(&l->bg_lock);
	while (!l->bg_stop) {
		struct timespec ts;
		int64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += BG_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l->bg_cond, &l->bg_lock, &ts);
		if (l->bg_stop)
			break;
		pthread_mutex_unlock(&l->bg_lock);
		now = eng_now_mono_ns();
		if (now - last_measure >= 1000000000LL) {
			local_measure_bytes(l);
			last_measure = now;
		}
		if (l->base.opt.sync == ENG_SYNC_INTERVAL &&
		    atomic_load(&l->unsynced)) {
			/* An empty synced write flushes LevelDB's log. */
			leveldb_writebatch_t *wb = leveldb_writebatch_create();
			char *err = NULL;

			atomic_store(&l->unsynced, false);
			leveldb_write(l->db, l->wo_sync, wb, &err);
			leveldb_writebatch_destroy(wb);
			if (err)
				local_ldb_err(l, err, "interval sync");
			else
				atomic_fetch_add(&l->fsyncs, 1);
		}
		if (l->base.opt.auto_compact != ENG_AUTO_COMPACT_OFF &&
		    !l->base.opt.read_only)
			auto_compact(l, now);
		pthread_mutex_lock(&l->bg_lock);
	}
	pthread_mutex_unlock(&l->bg_lock);
	return NULL;
}

/* ------------------------------------------------------------ open/close */

/* 1 if dir has entries other than . and .., 0 if empty, or an error. */
static int dir_state(const char *dir, bool *has_current)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	*has_current = false;
	/* A missing path, or a file that is not a directory, is no store. */
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? ENG_E_NOT_STORE
		                                           : ENG_E_IO;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n = 1;
		if (!strcmp(de->d_name, "CURRENT"))
			*has_current = true;
	}
	closedir(d);
	return n;
}

static int put_meta(struct local *l, leveldb_writebatch_t *wb, const char *name,
                    int64_t v1, int64_t v2, bool two)
{
	char v[16];

	codec_put_be64(v, (uint64_t)v1);
	codec_put_be64(v + 8, (uint64_t)v2);
	leveldb_writebatch_put(wb, name, strlen(name), v, two ? 16 : 8);
	return 0;
}

void local_put_magic(leveldb_writebatch_t *wb)
{
	char magic[MAGIC_LEN + 4];

	memcpy(magic, MAGIC, MAGIC_LEN);
	magic[MAGIC_LEN] = 0;
	magic[MAGIC_LEN + 1] = 0;
	magic[MAGIC_LEN + 2] = 0;
	magic[MAGIC_LEN + 3] = CODEC_FORMAT_VERSION;
	leveldb_writebatch_put(wb, META_MAGIC, strlen(META_MAGIC), magic,
	                       sizeof(magic));
}

/*
 * Mark an older store with the current format before anything writes to
 * it: a format-1 store is valid format 2, but once format 2's records are
 * in it an older build must refuse it (ENG_E_VERSION) rather than read
 * them as corruption.
 */
static int upgrade_magic(struct local *l)
{
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	char *err = NULL;

	local_put_magic(wb);
	leveldb_write(l->db, l->wo_sync, wb, &err);
	leveldb_writebatch_destroy(wb);
	if (err)
		return local_ldb_err(l, err, "format upgrade");
	return 0;
}

static int init_store(struct local *l)
{
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	char *err = NULL;

	local_put_magic(wb);
	/* etcd: a new store is at revision 1. */
	put_meta(l, wb, META_STATE, 1, 0, true);
	put_meta(l, wb, META_COMPACT, 0, 0, false);
	put_meta(l, wb, META_PHYS, 0, 0, false);
	leveldb_write(l->db, l->wo_sync, wb, &err);
	leveldb_writebatch_destroy(wb);
	if (err)
		return local_ldb_err(l, err, "init");
	/*
	 * Flush the meta records into a table now.  LevelDB places a flushed
	 * memtable that overlaps nothing as deep as level 2 and its manual
	 * compaction never rewrites the deepest level on its own, so the
	 * first memtable of a store would keep every overwritten version
	 * forever.  With this table at the bottom, every later memtable
	 * (each holds Mstate) overlaps it, lands above it and is merged into
	 * it by the compaction that follows a physical compaction.
	 */
	leveldb_compact_range(l->db, NULL, 0, NULL, 0);
	return 0;
}

static bool db_is_empty(struct local *l)
{
	leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->ro_plain);
	bool empty;

	leveldb_iter_seek_to_first(it);
	empty = !leveldb_iter_valid(it);
	leveldb_iter_destroy(it);
	return empty;
}

/* *upgrade: the store is of an older format and will be written to. */
static int check_magic(struct local *l, bool *upgrade)
{
	char *err = NULL, *p;
	size_t n;
	uint32_t ver;
	int rc;

	p = leveldb_get(l->db, l->ro_plain, META_MAGIC, strlen(META_MAGIC), &n,
	                &err);
	if (err)
		return local_ldb_err(l, err, "open");
	if (!p) {
		if (!db_is_empty(l))
			return ENG_E_NOT_STORE;
		if (l->base.opt.read_only)
			return ENG_E_NOT_STORE;
		return init_store(l);
	}
	rc = 0;
	if (n != MAGIC_LEN + 4 || memcmp(p, MAGIC, MAGIC_LEN) != 0) {
		rc = ENG_E_NOT_STORE;
	} else {
		ver = codec_get_be32(p + MAGIC_LEN);
		if (ver > CODEC_FORMAT_VERSION)
			rc = ENG_E_VERSION;
		else if (ver < CODEC_FORMAT_VERSION && !l->base.opt.read_only)
			*upgrade = true;
	}
	leveldb_free(p);
	return rc;
}

static int open_ldb(struct local *l, bool create)
{
	char *err = NULL;

	l->dbopt = leveldb_options_create();
	l->cache = leveldb_cache_create_lru(l->base.opt.cache_bytes);
	l->bloom = leveldb_filterpolicy_create_bloom(10);
	l->wo_sync = leveldb_writeoptions_create();
	l->wo_nosync = leveldb_writeoptions_create();
	l->ro_plain = leveldb_readoptions_create();
	if (!l->dbopt || !l->cache || !l->bloom || !l->wo_sync ||
	    !l->wo_nosync || !l->ro_plain)
		return ENG_E_NOMEM;
	leveldb_writeoptions_set_sync(l->wo_sync, 1);
	leveldb_writeoptions_set_sync(l->wo_nosync, 0);
	leveldb_options_set_create_if_missing(l->dbopt, create);
	leveldb_options_set_cache(l->dbopt, l->cache);
	leveldb_options_set_filter_policy(l->dbopt, l->bloom);
	leveldb_options_set_write_buffer_size(l->dbopt, 8u << 20);
	l->db = leveldb_open(l->dbopt, l->dir, &err);
	if (err) {
		int rc = local_ldb_err(l, err, "open");

		l->db = NULL;
		return rc;
	}
	return 0;
}

static int load_state(struct local *l)
{
	int64_t rev, keys, crev, phys;
	int rc;

	rc = local_meta_get(l, l->ro_plain, META_STATE, &rev, &keys);
	if (!rc)
		rc = local_meta_get(l, l->ro_plain, META_COMPACT, &crev, NULL);
	if (!rc)
		rc = local_meta_get(l, l->ro_plain, META_PHYS, &phys, NULL);
	if (rc)
		return rc;
	if (rev < 1 || keys < 0 || crev < 0 || crev > rev || phys > crev)
		return ENG_E_CORRUPT;
	atomic_store(&l->rev, rev);
	atomic_store(&l->keys, keys);
	atomic_store(&l->compact_rev, crev);
	l->phys_done = phys;
	return 0;
}

static void local_close(eng *e);
static const struct eng_backend_ops local_ops;

static int start_threads(struct local *l)
{
	int rc;

	rc = local_compactor_start(l);
	if (!rc)
		rc = local_commit_start(l);
	if (rc)
		return rc;
	if (pthread_create(&l->bg_thread, NULL, bg_main, l))
		return ENG_E_NOMEM;
	l->bg_started = true;
	return 0;
}

int local_open(const char *dir, const struct eng_options *opt, eng **out)
{
	struct local *l = calloc(1, sizeof(*l));
	bool has_current, create = opt->create && !opt->read_only;
	bool upgrade = false;
	int rc;

	if (!l)
		return ENG_E_NOMEM;
	l->base.ops = &local_ops;
	l->base.opt = *opt;
	pthread_mutex_init(&l->q_lock, NULL);
	pthread_mutex_init(&l->c_lock, NULL);
	pthread_cond_init(&l->c_cond, NULL);
	pthread_mutex_init(&l->bg_lock, NULL);
	pthread_cond_init(&l->bg_cond, NULL);
	pthread_mutex_init(&l->st_lock, NULL);
	l->dir = strdup(dir);
	if (!l->dir) {
		rc = ENG_E_NOMEM;
		goto fail;
	}
	if (create && mkdir(dir, 0700) && errno != EEXIST) {
		eng_logf(opt, ENG_LOG_ERR, "mkdir %s: %s", dir,
		         strerror(errno));
		rc = ENG_E_IO;
		goto fail;
	}
	rc = dir_state(dir, &has_current);
	if (rc < 0)
		goto fail;
	if (!has_current && (rc == 1 || !create)) {
		rc = ENG_E_NOT_STORE;
		goto fail;
	}
	rc = open_ldb(l, create);
	if (rc)
		goto fail;
	rc = overlay_new(&l->ov);
	if (rc)
		goto fail;
	l->wb = leveldb_writebatch_create();
	rc = check_magic(l, &upgrade);
	if (!rc)
		rc = load_state(l);
	/* Only once the store has opened, and before any thread can write:
	 * a store that fails to open is left as it was. */
	if (!rc && upgrade)
		rc = upgrade_magic(l);
	if (rc)
		goto fail;
	l->last_sync_ns = eng_now_mono_ns();
	if (estimate_bytes(l) > opt->quota_bytes) {
		atomic_store(&l->alarm, true);
		eng_logf(opt, ENG_LOG_WARN,
		         "NOSPACE alarm: store is over quota");
	}
	rc = start_threads(l);
	if (!rc)
		rc = watch_hub_new(l, &l->base.opt, atomic_load(&l->rev),
		                   &l->hub);
	if (!rc)
		rc = lease_mgr_new(l, &l->base.opt, &l->leases);
	if (rc)
		goto fail;
	*out = &l->base;
	return 0;
fail:
	local_close(&l->base);
	return rc;
}

static void local_close(eng *e)
{
	struct local *l = (struct local *)e;

	if (l->hub)
		watch_hub_shutdown(l->hub);
	if (l->leases)
		lease_mgr_free(l->leases);
	l->leases = NULL;
	if (l->bg_started) {
		pthread_mutex_lock(&l->bg_lock);
		l->bg_stop = true;
		pthread_cond_broadcast(&l->bg_cond);
		pthread_mutex_unlock(&l->bg_lock);
		pthread_join(l->bg_thread, NULL);
	}
	local_compactor_stop(l);
	local_commit_close(l);
	if (l->hub)
		watch_hub_free(l->hub);
	if (l->db) {
		if (atomic_load(&l->unsynced)) {
			leveldb_writebatch_t *wb = leveldb_writebatch_create();
			char *err = NULL;

			leveldb_write(l->db, l->wo_sync, wb, &err);
			leveldb_writebatch_destroy(wb);
			if (err)
				local_ldb_err(l, err, "final sync");
		}
		/*
		 * Flush the memtable into a table so the next open has no log
		 * to replay.  LevelDB's manual compaction always flushes the
		 * memtable first; the range holds no key ('Z' is an unused
		 * space), so nothing else is compacted.
		 */
		leveldb_compact_range(l->db, "Z", 1, "Z", 1);
		leveldb_close(l->db);
	}
	if (l->wb)
		leveldb_writebatch_destroy(l->wb);
	overlay_free(l->ov);
	if (l->dbopt)
		leveldb_options_destroy(l->dbopt);
	if (l->cache)
		leveldb_cache_destroy(l->cache);
	if (l->bloom)
		leveldb_filterpolicy_destroy(l->bloom);
	if (l->wo_sync)
		leveldb_writeoptions_destroy(l->wo_sync);
	if (l->wo_nosync)
		leveldb_writeoptions_destroy(l->wo_nosync);
	if (l->ro_plain)
		leveldb_readoptions_destroy(l->ro_plain);
	pthread_mutex_destroy(&l->q_lock);
	pthread_mutex_destroy(&l->c_lock);
	pthread_cond_destroy(&l->c_cond);
	pthread_mutex_destroy(&l->bg_lock);
	pthread_cond_destroy(&l->bg_cond);
	pthread_mutex_destroy(&l->st_lock);
	free(l->dir);
	free(l);
}

/* ------------------------------------------------------------------- ops */

struct local *local_from_eng(eng *e)
{
	return e && e->ops == &local_ops ? (struct local *)e : NULL;
}

eng_rev_t local_current_rev(struct local *l)
{
	return atomic_load(&l->rev);
}

eng_rev_t local_compact_rev(struct local *l)
{
	return atomic_load(&l->compact_rev);
}

static eng_rev_t op_current_rev(eng *e)
{
	return local_current_rev((struct local *)e);
}

static eng_rev_t op_compact_rev(eng *e)
{
	return local_compact_rev((struct local *)e);
}

static int local_stats_get(eng *e, struct eng_stats *out)
{
	struct local *l = (struct local *)e;

	out->rev = atomic_load(&l->rev);
	out->compact_rev = atomic_load(&l->compact_rev);
	out->keys = atomic_load(&l->keys);
	out->db_bytes =
	    atomic_load(&l->db_bytes) + atomic_load(&l->pending_bytes);
	out->quota_bytes = l->base.opt.quota_bytes;
	out->alarm_nospace = atomic_load(&l->alarm);
	out->leases = l->leases ? lease_mgr_count(l->leases) : 0;
	out->watchers = l->hub ? watch_hub_count(l->hub) : 0;
	out->commits = atomic_load(&l->commits);
	out->fsyncs = atomic_load(&l->fsyncs);
	pthread_mutex_lock(&l->st_lock);
	out->range = l->st_range;
	out->txn = l->st_txn;
	out->compact = l->st_compact;
	pthread_mutex_unlock(&l->st_lock);
	return 0;
}

static int op_lease_grant(eng *e, eng_lease_t id, int64_t ttl, const char *name,
                          eng_lease_t *out)
{
	return lease_mgr_grant(((struct local *)e)->leases, id, ttl, name, out);
}

static int op_lease_lookup(eng *e, const char *name, eng_lease_t *out)
{
	return lease_mgr_lookup(((struct local *)e)->leases, name, out);
}

static int op_lease_keepalive(eng *e, eng_lease_t id, int64_t *ttl)
{
	return lease_mgr_keepalive(((struct local *)e)->leases, id, ttl);
}

static int op_lease_set_ttl(eng *e, eng_lease_t id, int64_t ttl)
{
	return lease_mgr_set_ttl(((struct local *)e)->leases, id, ttl);
}

static int op_lease_revoke(eng *e, eng_lease_t id, eng_rev_t *rev)
{
	return lease_mgr_revoke(((struct local *)e)->leases, id, rev);
}

static int op_lease_ttl(eng *e, eng_lease_t id, unsigned flags,
                        struct eng_lease_info *out)
{
	return lease_mgr_ttl(((struct local *)e)->leases, id, flags, out);
}

static int op_lease_list(eng *e, struct eng_lease_info **out, size_t *n)
{
	return lease_mgr_list(((struct local *)e)->leases, out, n);
}

static int op_watch_open(eng *e, const void *key, size_t key_len,
                         const void *end, size_t end_len, eng_rev_t start,
                         eng_watch_notify_fn notify, void *arg, eng_watch **out)
{
	struct local *l = (struct local *)e;

	if (!l->hub)
		return ENG_E_INTERNAL;
	return watch_hub_open(l->hub, key, key_len, end, end_len, start, notify,
	                      arg, out);
}

static const struct eng_backend_ops local_ops = {
    .name = "local",
    .close = local_close,
    .range = local_range,
    .txn = local_txn,
    .txn_async = local_txn_async,
    .history = local_history,
    .snap_open = local_snap_open,
    .snap_release = local_snap_release,
    .current_rev = op_current_rev,
    .compact_rev = op_compact_rev,
    .compact = local_compact,
    .lease_grant = op_lease_grant,
    .lease_lookup = op_lease_lookup,
    .lease_keepalive = op_lease_keepalive,
    .lease_set_ttl = op_lease_set_ttl,
    .lease_revoke = op_lease_revoke,
    .lease_ttl = op_lease_ttl,
    .lease_list = op_lease_list,
    .watch_open = op_watch_open,
    .stats_get = local_stats_get,
};
