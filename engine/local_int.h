/*
 * local_int.h — private to the embedded (LevelDB) backend: its state and the
 * calls between its files.
 *
 *   local_open.c    open/close, meta records, background thread (size,
 *                   quota, auto-compaction, interval sync), stats
 *   local_view.c    the committer's overlay and merged iterators
 *   local_commit.c  the commit queue (leader/follower group commit)
 *   local_apply.c   applying txns, compactions and lease changes to a batch
 *   local_read.c    ranges, history, snapshots, the watch replay
 *   local_compact.c physical compaction
 *   local_lease.c   lease persistence seams (eng_int.h)
 *   local_check.c   the offline consistency check
 *   local_snapshot.c, local_admin.c  backups, check/defrag/repair
 *                   (snapshot.h)
 *
 * Concurrency: readers only use LevelDB snapshots and atomics; the commit
 * leader is the only writer of `k`, `l`, `r`, `L`, `N`, `A` and Mstate;
 * the compactor only deletes records no reader at or above the compaction
 * revision can see.
 */
#ifndef REVFS_LOCAL_INT_H
#define REVFS_LOCAL_INT_H

#include "eng_int.h"
#include "codec.h"

#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>

#define LOCAL_AC_SAMPLES 128

struct overlay;
struct commit_req;

struct local {
	struct eng base;
	char *dir;
	leveldb_t *db;
	leveldb_options_t *dbopt;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *bloom;
	leveldb_writeoptions_t *wo_sync;
	leveldb_writeoptions_t *wo_nosync;
	leveldb_readoptions_t *ro_plain; /* no snapshot, no cache fill */

	/* Published by the committer after each durable write. */
	_Atomic int64_t rev;
	_Atomic int64_t compact_rev;
	_Atomic int64_t keys;

	/* The commit queue (local_commit.c). */
	pthread_mutex_t q_lock;
	struct commit_req *q_head; /* protected by q_lock */
	struct commit_req *q_tail; /* protected by q_lock */
	bool q_closed;             /* protected by q_lock */
	bool q_leading;            /* protected by q_lock: a group is led */
	/* Asynchronous requests committed, to complete in order. */
	struct commit_req *q_done;      /* protected by q_lock */
	struct commit_req *q_done_tail; /* protected by q_lock */
	size_t q_async;        /* protected by q_lock: queued or completing */
	bool q_stop;           /* protected by q_lock */
	pthread_cond_t q_cond; /* wakes the committer thread */
	pthread_cond_t q_done_cond; /* wakes the completer thread */
	bool q_started;
	pthread_t q_thread;      /* leads when only async requests wait */
	pthread_t q_done_thread; /* runs the completions */
	/* Only the current commit leader touches these. */
	struct overlay *ov;
	leveldb_writebatch_t *wb;
	int64_t last_sync_ns;
	_Atomic bool unsynced; /* a nosync write since the last sync */

	/* Physical compaction. */
	pthread_mutex_t c_lock;
	pthread_cond_t c_cond;
	int64_t phys_done;         /* protected by c_lock */
	bool c_stop;               /* protected by c_lock */
	int c_waiters;             /* protected by c_lock */
	int64_t c_last_squeeze_ns; /* compactor thread only */
	bool c_started;
	pthread_t c_thread;

	/* Background: size, quota, auto-compaction, interval sync. */
	pthread_mutex_t bg_lock;
	pthread_cond_t bg_cond;
	bool bg_stop; /* protected by bg_lock */
	bool bg_started;
	pthread_t bg_thread;
	int64_t ac_time[LOCAL_AC_SAMPLES]; /* bg thread only */
	int64_t ac_rev[LOCAL_AC_SAMPLES];  /* bg thread only */
	size_t ac_n, ac_head;              /* bg thread only */
	int64_t ac_last_sample_ns;         /* bg thread only */

	_Atomic uint64_t db_bytes;      /* last measured size of the files */
	_Atomic uint64_t pending_bytes; /* written since that measure */
	_Atomic bool alarm;             /* NOSPACE */

	/* Stats. */
	pthread_mutex_t st_lock;
	struct eng_op_stats st_range;   /* protected by st_lock */
	struct eng_op_stats st_txn;     /* protected by st_lock */
	struct eng_op_stats st_compact; /* protected by st_lock */
	_Atomic uint64_t commits;
	_Atomic uint64_t fsyncs;

	struct watch_hub *hub;
	struct lease_mgr *leases;
};

struct local_snap {
	struct eng_snap base;
	const leveldb_snapshot_t *ls;
	int64_t keys;
};

/* ---- local_open.c ---- */
int local_open(const char *dir, const struct eng_options *opt, eng **out);
/* The local backend behind e, or NULL if e is another backend. */
struct local *local_from_eng(eng *e);
uint64_t local_measure_bytes(struct local *l);
void local_stat_record(struct local *l, struct eng_op_stats *s,
                       int64_t start_ns, int rc);
/* Add the magic record of the current store format to wb. */
void local_put_magic(leveldb_writebatch_t *wb);

/* Map a LevelDB error string (freed here) to ENG_E_IO, logged. */
int local_ldb_err(struct local *l, char *err, const char *what);

/* ---- local_view.c ---- */
/*
 * A view reads LevelDB through `ro` (a snapshot or none) with the
 * committer's overlay (records written in the current batch) on top.
 */
struct view {
	struct local *l;
	leveldb_readoptions_t *ro;
	struct overlay *ov; /* NULL for readers */
};

int overlay_new(struct overlay **out);
void overlay_free(struct overlay *ov);
void overlay_clear(struct overlay *ov);
size_t overlay_count(const struct overlay *ov);
/* val NULL: a deletion. */
int overlay_set(struct overlay *ov, const char *k, size_t klen, const char *val,
                size_t vlen);

/* Point read: 1 and *val filled if present, 0 if absent, or an error. */
int view_get(struct view *v, const char *k, size_t klen, struct cbuf *val);
/*
 * r was decoded from key's `l` record through v.  If its value is a
 * reference (r->val_ref), read the version record at r->mod_rev through v
 * into buf and point r->val into buf; otherwise do nothing.  0,
 * ENG_E_CORRUPT if that version is missing or is not the one `l` named,
 * or an error of the read.
 */
int view_rec_value(struct view *v, const char *key, size_t klen, struct rec *r,
                   struct cbuf *buf);

struct ov_ent;
/* A merged iterator over [lo, hi) (hi NULL: unbounded). */
struct vit {
	leveldb_iterator_t *it;
	struct ov_ent **ents;
	size_t nents, pos;
	struct cbuf lo, hi;
	bool has_hi;
	bool valid;
	bool from_ov, ov_same;
	const char *k, *v;
	size_t klen, vlen;
};

int vit_open(struct vit *it, struct view *v, const char *lo, size_t lolen,
             const char *hi, size_t hilen);
void vit_seek(struct vit *it, const char *k, size_t klen);
void vit_next(struct vit *it);
int vit_error(struct vit *it, struct local *l);
void vit_close(struct vit *it);

/* ---- local_read.c ---- */
/* A read context: one LevelDB snapshot and what the store was then. */
struct lread {
	struct local *l;
	leveldb_readoptions_t *ro;
	const leveldb_snapshot_t *ls;
	bool own_snap;
	eng_rev_t rev, compact_rev;
	int64_t keys;
};

int lread_open(struct local *l, struct local_snap *s, struct lread *rd);
void lread_close(struct lread *rd);

/* Range parameters shared by eng_range and txn range ops. */
struct rparams {
	const char *key;
	size_t key_len;
	const char *end;
	size_t end_len;
	int64_t limit;
	unsigned flags;
	char delim;
	size_t prefix_len;
	int64_t keys_total; /* live key count for the cheap count, or -1 */
};

/* Range over the latest index through view v (header_rev not set). */
int local_range_latest(struct view *v, const struct rparams *p,
                       struct eng_range_res *res);
/* Range at an older revision through the history index. */
int local_range_hist(struct local *l, leveldb_readoptions_t *ro,
                     const struct rparams *p, eng_rev_t rev,
                     struct eng_range_res *res);
/* Read a meta int64 record (0 if absent). */
int local_meta_get(struct local *l, leveldb_readoptions_t *ro, const char *name,
                   int64_t *v1, int64_t *v2);

int local_range(eng *e, const struct eng_range_req *req,
                struct eng_range_res *res);
int local_history(eng *e, const void *key, size_t key_len, eng_rev_t from,
                  int64_t limit, struct eng_range_res *res);
int local_snap_open(eng *e, eng_snap **out);
void local_snap_release(eng *e, eng_snap *s);

/* Append one kv to a result (copies into the result's arena). */
int res_add_kv(struct eng_range_res *res, size_t *cap, const char *key,
               size_t key_len, const struct rec *r, unsigned flags);
int res_add_prefix(struct eng_range_res *res, size_t *cap, const char *key,
                   size_t key_len);

/* ---- local_commit.c ---- */
enum creq_type { CREQ_TXN, CREQ_COMPACT, CREQ_LEASE_PUT, CREQ_LEASE_DEL };

struct commit_req {
	enum creq_type type;
	const struct eng_txn *txn;    /* CREQ_TXN */
	struct eng_txn_res *tres;     /* CREQ_TXN */
	eng_rev_t crev;               /* CREQ_COMPACT */
	const struct lease_rec *lrec; /* CREQ_LEASE_PUT */
	bool lcreate;                 /* CREQ_LEASE_PUT */
	eng_lease_t lid;              /* CREQ_LEASE_DEL */
	eng_rev_t out_rev;            /* CREQ_LEASE_DEL */
	bool barrier;                 /* must lead its group */
	size_t bytes;                 /* rough size, for group bounds */
	int rc;
	bool done;               /* protected by q_lock */
	pthread_cond_t cv;       /* synchronous requests only */
	struct commit_req *next; /* protected by q_lock */
	/* Asynchronous requests (eng_txn_async): heap-allocated, completed
	 * and freed by the completer thread. */
	eng_txn_done_fn done_fn;
	void *done_arg;
	struct eng_txn_res ares; /* the result tres points to */
	int64_t t0;              /* queued at, for the stats */
};

/* Queue r and wait until it is committed; returns r->rc. */
int local_commit(struct local *l, struct commit_req *r);
/* Start the committer and completer threads (asynchronous requests). */
int local_commit_start(struct local *l);
/* Reject new requests, wait until the queue is empty and every
 * asynchronous request has completed, and stop both threads. */
void local_commit_close(struct local *l);
int local_txn(eng *e, const struct eng_txn *txn, struct eng_txn_res *res);
int local_txn_async(eng *e, const struct eng_txn *txn, eng_txn_done_fn done,
                    void *arg);
int local_compact(eng *e, eng_rev_t rev, bool wait);

/* ---- local_apply.c: run by the commit leader ---- */
/* What one group commit accumulates. */
struct batch {
	int64_t base_rev;    /* the durable revision at the start */
	int64_t rev;         /* the last revision assigned */
	int64_t keys;        /* live keys after the batch */
	int64_t compact_rev; /* a compaction in this batch, or the current */
	int64_t mtime_ns;
	size_t bytes;          /* bytes added to the writebatch */
	bool dirty;            /* the writebatch holds something */
	struct eng_event *evs; /* events, in revision order */
	size_t nevs, capevs;
	struct eng_arena *arena; /* event keys and values */
};

/*
 * Apply one request.  A validation error (nothing written) is returned in
 * r->rc and 0 is returned; a failure while writing (the batch is then
 * unusable) is returned.
 */
int apply_req(struct local *l, struct batch *b, struct commit_req *r);
void batch_free_events(struct batch *b);
/* Publish the batch's events to the watch hub, in revision order. */
void batch_publish(struct local *l, struct batch *b);

/* ---- local_compact.c ---- */
int local_compactor_start(struct local *l);
void local_compactor_stop(struct local *l);
/* Wake the compactor after the compaction revision moved. */
void local_compactor_kick(struct local *l);
/* Wait until physical compaction reached rev (or the store closes). */
void local_compactor_wait(struct local *l, eng_rev_t rev);

/* ---- local_check.c ---- */
/*
 * Verify that the indexes agree: every `l` record is the newest `k` version
 * of its key, every key whose newest version is a put has its `l` record,
 * the live-key counter matches, no `k` or `r` record is newer than the
 * store's revision, and the lease attach index matches the `l` records.
 * Each problem is reported through report (may be NULL).  Returns 0,
 * ENG_E_CORRUPT if a problem was found, or another error.
 */
int local_check(struct local *l, void (*report)(void *arg, const char *msg),
                void *arg);
/* The same, calling progress(parg, records read, 0) every 65,536 records
 * (progress may be NULL). */
int local_check_progress(
    struct local *l, void (*report)(void *arg, const char *msg), void *arg,
    void (*progress)(void *arg, uint64_t done, uint64_t total), void *parg);

#endif /* REVFS_LOCAL_INT_H */
