/*
 * local_compact.c — physical compaction, in a background thread.
 *
 * The logical compaction revision C is persisted and published by the
 * committer (local_apply.c); this thread then removes what no read at or
 * above C can see.  It walks only the revision log between the previous
 * physical compaction P and C: for a log record (rev, key), if rev is the
 * key's newest version <= C, every older version of the key is deleted, and
 * that version too if it is a deletion (etcd drops such keys); log records
 * below C are deleted (the one at C stays so a watch from C can replay it).
 * Deletes go out in batches of BATCH_OPS without sync, with a yield between
 * batches, so writers share LevelDB's write queue with small batches only.
 * A key's older versions are deleted before its newest, so a reader at
 * >= C never sees an older version resurface.  When the pass is done Mphys
 * records C (a crash before that only repeats the idempotent pass) and
 * LevelDB compacts the store so the files shrink (see squeeze()).
 */
#include "local_int.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_OPS        1000
#define SQUEEZE_EVERY_NS (600 * 1000000000LL)

struct cpass {
	struct local *l;
	leveldb_writebatch_t *wb;
	size_t ops;
	uint64_t total;
};

static int cp_flush(struct cpass *cp)
{
	char *err = NULL;

	if (cp->ops == 0)
		return 0;
	leveldb_write(cp->l->db, cp->l->wo_nosync, cp->wb, &err);
	leveldb_writebatch_clear(cp->wb);
	cp->ops = 0;
	if (err)
		return local_ldb_err(cp->l, err, "compaction write");
	sched_yield();
	return 0;
}

static int cp_del(struct cpass *cp, const char *k, size_t n)
{
	leveldb_writebatch_delete(cp->wb, k, n);
	cp->total++;
	if (++cp->ops >= BATCH_OPS)
		return cp_flush(cp);
	return 0;
}

static bool stop_requested(struct local *l)
{
	bool stop;

	pthread_mutex_lock(&l->c_lock);
	stop = l->c_stop;
	pthread_mutex_unlock(&l->c_lock);
	return stop;
}

/* Handle one key whose newest version <= to has revision rev. */
static int compact_key(struct cpass *cp, leveldb_iterator_t *hit,
                       const char *key, size_t klen, int64_t rev, int64_t to)
{
	struct cbuf hk = {0}, pfx = {0}, newest = {0};
	size_t plen, n;
	const char *k, *v;
	bool is_del;
	int rc = ENG_E_NOMEM;

	if (codec_hist_key(&hk, key, klen, to) ||
	    codec_hist_prefix(&pfx, key, klen))
		goto out;
	plen = pfx.len;
	rc = 0;
	leveldb_iter_seek(hit, hk.p, hk.len);
	if (!leveldb_iter_valid(hit))
		goto out;
	k = leveldb_iter_key(hit, &n);
	if (n != plen + 8 || memcmp(k, pfx.p, plen) != 0 ||
	    (int64_t)~codec_get_be64(k + plen) != rev)
		goto out; /* not the newest <= to: its turn comes later */
	v = leveldb_iter_value(hit, &n);
	is_del = n > 0 && v[0] == REC_DEL;
	k = leveldb_iter_key(hit, &n);
	if (cbuf_add(&newest, k, n)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	for (leveldb_iter_next(hit); leveldb_iter_valid(hit);
	     leveldb_iter_next(hit)) {
		k = leveldb_iter_key(hit, &n);
		if (n != plen + 8 || memcmp(k, pfx.p, plen) != 0)
			break;
		if ((rc = cp_del(cp, k, n)))
			goto out;
	}
	if (is_del)
		rc = cp_del(cp, newest.p, newest.len);
out:
	cbuf_free(&hk);
	cbuf_free(&pfx);
	cbuf_free(&newest);
	return rc;
}

/* One pass over the log [from, to]; *stopped if close interrupted it. */
static int compact_pass(struct local *l, int64_t from, int64_t to,
                        bool *stopped, uint64_t *deleted)
{
	struct cpass cp = {.l = l};
	struct cbuf pos = {0};
	bool done = false;
	int rc = 0;

	*stopped = false;
	*deleted = 0;
	cp.wb = leveldb_writebatch_create();
	if (codec_log_key(&pos, from, 0)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	while (!done && !rc) {
		leveldb_iterator_t *it, *hit;
		size_t visited = 0;

		if (stop_requested(l)) {
			*stopped = true;
			break;
		}
		/* Fresh iterators per round: they pin no old files. */
		it = leveldb_create_iterator(l->db, l->ro_plain);
		hit = leveldb_create_iterator(l->db, l->ro_plain);
		leveldb_iter_seek(it, pos.p, pos.len);
		for (; leveldb_iter_valid(it) && visited < BATCH_OPS;
		     leveldb_iter_next(it), visited++) {
			size_t kn, vn;
			const char *k = leveldb_iter_key(it, &kn);
			const char *v = leveldb_iter_value(it, &vn);
			int64_t rev;

			if (kn != 13 || k[0] != SP_LOG)
				break;
			rev = (int64_t)codec_get_be64(k + 1);
			if (rev > to)
				break;
			if (vn < 1) {
				rc = ENG_E_CORRUPT;
				break;
			}
			rc = compact_key(&cp, hit, v + 1, vn - 1, rev, to);
			if (!rc && rev < to)
				rc = cp_del(&cp, k, kn);
			if (rc)
				break;
			/* Resume just after this record. */
			pos.len = 0;
			if (cbuf_add(&pos, k, kn) || cbuf_add_u8(&pos, 0)) {
				rc = ENG_E_NOMEM;
				break;
			}
		}
		if (!rc && visited < BATCH_OPS)
			done = true;
		leveldb_iter_destroy(hit);
		leveldb_iter_destroy(it);
		if (!rc)
			rc = cp_flush(&cp);
	}
	if (!rc && done) {
		struct cbuf v = {0};
		char *err = NULL;

		if (cbuf_add_be64(&v, (uint64_t)to)) {
			rc = ENG_E_NOMEM;
			goto out;
		}
		leveldb_put(l->db, l->wo_nosync, META_PHYS, strlen(META_PHYS),
		            v.p, v.len, &err);
		cbuf_free(&v);
		if (err) {
			rc = local_ldb_err(l, err, "compaction mark");
			goto out;
		}
		*deleted = cp.total;
	}
out:
	leveldb_writebatch_destroy(cp.wb);
	cbuf_free(&pos);
	return rc;
}

/*
 * Make LevelDB drop what the pass deleted, so the files shrink.  Its
 * manual compaction only rewrites levels above the deepest one that
 * overlaps the range, so the range includes the meta records, which sit in
 * the deepest level (local_open.c puts them there at creation).  That
 * rewrites most of the store, so it runs only when someone waits for it,
 * the NOSPACE alarm is on, or SQUEEZE_EVERY_NS passed since the last one;
 * otherwise LevelDB's own compactions drop the deletions over time.
 */
static void squeeze(struct local *l, uint64_t deleted)
{
	int64_t now = eng_now_mono_ns();
	bool go;

	pthread_mutex_lock(&l->c_lock);
	go = deleted && (l->c_waiters > 0 || atomic_load(&l->alarm) ||
	                 now - l->c_last_squeeze_ns >= SQUEEZE_EVERY_NS);
	pthread_mutex_unlock(&l->c_lock);
	if (!go)
		return;
	leveldb_compact_range(l->db, "M", 1, "s", 1);
	l->c_last_squeeze_ns = now;
}

static void after_compaction(struct local *l, uint64_t deleted)
{
	uint64_t bytes;

	squeeze(l, deleted);
	bytes = local_measure_bytes(l);

	if (atomic_load(&l->alarm) && bytes < l->base.opt.quota_bytes) {
		atomic_store(&l->alarm, false);
		eng_logf(&l->base.opt, ENG_LOG_WARN,
		         "NOSPACE alarm cleared: database size %llu is under "
		         "the quota of %llu bytes",
		         (unsigned long long)bytes,
		         (unsigned long long)l->base.opt.quota_bytes);
	}
}

static void *compactor_main(void *arg)
{
	struct local *l = arg;

	pthread_mutex_lock(&l->c_lock);
	while (!l->c_stop) {
		int64_t target = atomic_load(&l->compact_rev);
		int64_t from = l->phys_done;
		bool stopped = false;
		uint64_t deleted = 0;
		int rc;

		if (from >= target) {
			pthread_cond_wait(&l->c_cond, &l->c_lock);
			continue;
		}
		pthread_mutex_unlock(&l->c_lock);
		rc = compact_pass(l, from, target, &stopped, &deleted);
		if (rc == 0 && !stopped)
			after_compaction(l, deleted);
		pthread_mutex_lock(&l->c_lock);
		if (rc == 0 && !stopped) {
			l->phys_done = target;
			pthread_cond_broadcast(&l->c_cond);
		} else if (rc) {
			struct timespec ts;

			eng_logf(&l->base.opt, ENG_LOG_ERR,
			         "physical compaction to %lld failed: %s",
			         (long long)target, eng_strerror(rc));
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&l->c_cond, &l->c_lock, &ts);
		}
	}
	pthread_cond_broadcast(&l->c_cond);
	pthread_mutex_unlock(&l->c_lock);
	return NULL;
}

int local_compactor_start(struct local *l)
{
	if (pthread_create(&l->c_thread, NULL, compactor_main, l))
		return ENG_E_NOMEM;
	l->c_started = true;
	return 0;
}

void local_compactor_stop(struct local *l)
{
	if (!l->c_started)
		return;
	pthread_mutex_lock(&l->c_lock);
	l->c_stop = true;
	pthread_cond_broadcast(&l->c_cond);
	pthread_mutex_unlock(&l->c_lock);
	pthread_join(l->c_thread, NULL);
	l->c_started = false;
}

void local_compactor_kick(struct local *l)
{
	pthread_mutex_lock(&l->c_lock);
	pthread_cond_broadcast(&l->c_cond);
	pthread_mutex_unlock(&l->c_lock);
}

void local_compactor_wait(struct local *l, eng_rev_t rev)
{
	pthread_mutex_lock(&l->c_lock);
	l->c_waiters++;
	while (l->phys_done < rev && !l->c_stop)
		pthread_cond_wait(&l->c_cond, &l->c_lock);
	l->c_waiters--;
	pthread_mutex_unlock(&l->c_lock);
}
