/*
 * etcd_backend.h — private to engine/etcd_backend*.c: the state of the etcd
 * backend (engine.h's calls over a remote etcd cluster, through
 * etcd_client.h) and the seams between its files:
 *
 *   etcd_backend.c          open/close, ranges (with the delimiter
 *                           emulated), txns, snapshots, revisions,
 *                           compaction, stats, auto-compaction
 *   etcd_backend_lease.c    leases and lease names
 *   etcd_backend_watch.c    eng_watch: one etcd watch stream feeding the
 *                           engine's watch hub (watch.c)
 *   etcd_backend_mtime.c    commit times (the time a revision was first
 *                           seen)
 *   etcd_backend_history.c  eng_history (a watch filtered to one key)
 *
 * The reserved key space.  The backend keeps a few records of its own in
 * etcd (the lease names).  They live at keys >= ETCDB_RSV ("\xff\xff\xff\xff"
 * "revfs/"), the very end of the key space, and the backend clips every
 * range, delete-range, compare and watch to [.., ETCDB_RSV): no read shows
 * them, no write reaches them.  Keys from ETCDB_RSV on are therefore not
 * usable through revfs (docs/etcd-backend.md).
 */
#ifndef REVFS_ETCD_BACKEND_H
#define REVFS_ETCD_BACKEND_H

#include "eng_int.h"
#include "etcd_client.h"

#include <pthread.h>
#include <stdbool.h>

#define ETCDB_RSV          "\xff\xff\xff\xffrevfs/"
#define ETCDB_RSV_LEN      10
#define ETCDB_NAME_PFX     ETCDB_RSV "lease-name/"
#define ETCDB_NAME_PFX_LEN (ETCDB_RSV_LEN + 11)
#define ETCDB_ID_PFX       ETCDB_RSV "lease-id/"
#define ETCDB_ID_PFX_LEN   (ETCDB_RSV_LEN + 9)

struct etcdb_mtime;

struct etcdb {
	struct eng base;
	struct etcd_client *c;
	long timeout_ms; /* one request's bound (etcd_client's) */

	pthread_mutex_t lock;
	eng_rev_t rev;         /* protected by lock: highest revision seen */
	eng_rev_t compact_rev; /* protected by lock: highest compaction
	                          revision known (0: none known) */
	struct eng_op_stats st_range, st_txn,
	    st_compact;         /* protected by lock */
	uint64_t commits;       /* protected by lock: txns that wrote */
	struct etcdb_mtime *mt; /* its own lock */

	/* the watch hub and the one stream that feeds it, made by the
	 * first eng_watch_open (etcd_backend_watch.c) */
	pthread_mutex_t hub_lock; /* serializes the hub's creation */
	struct watch_hub *hub;    /* set once under hub_lock */
	bool hub_closing;         /* protected by lock */
	bool pump_running;        /* protected by hub_lock */
	pthread_t pump;           /* the stream's reader */
	eng_rev_t pump_from;      /* the stream's first revision */
	bool pump_cut;  /* protected by lock: tests, drop the stream */
	bool pump_hold; /* protected by lock: tests, do not reopen */

	/* auto-compaction thread */
	pthread_cond_t cond; /* signalled on close */
	bool stopping;       /* protected by lock */
	bool maint_running;
	pthread_t maint;
};

/* Record a revision seen in an answer (keeps ee->rev the maximum). */
void etcdb_seen_rev(struct etcdb *ee, eng_rev_t rev);
/* Record a compaction revision learnt from etcd (keeps the maximum). */
void etcdb_seen_compact(struct etcdb *ee, eng_rev_t rev);
/* Add one call's latency and outcome to a counter. */
void etcdb_stat(struct etcdb *ee, struct eng_op_stats *s, int64_t t0_ns,
                int rc);

/*
 * Whether a call that failed `rc` should be made again: ENG_E_UNAVAILABLE
 * means no endpoint could be connected to (nothing was sent) or etcd had no
 * leader (nothing was applied), both of which a leader election or a
 * restart cause for a moment.  Repeats every 100 ms until timeout_ms after
 * the first failure (*deadline, 0 at first, is set by the first call).
 */
bool etcdb_again(struct etcdb *ee, int rc, int64_t *deadline);
#define ETCDB_RETRY(ee, call)                                                  \
	({                                                                     \
		int64_t dl_ = 0;                                               \
		int rc_;                                                       \
		do                                                             \
			rc_ = (call);                                          \
		while (etcdb_again((ee), rc_, &dl_));                          \
		rc_;                                                           \
	})

/* Is this key in the reserved key space? */
bool etcdb_reserved(const void *key, size_t key_len);
/*
 * Clip [key, *end) (engine.h's end convention) to the user key space.
 * Returns false if nothing of it is left (a reserved single key, or a range
 * starting in the reserved space).  *end and *end_len may be replaced by
 * ETCDB_RSV.
 */
bool etcdb_clip(const void *key, size_t key_len, const void **end,
                size_t *end_len);

/* ---- etcd_backend_lease.c ---- */
int etcdb_lease_grant(eng *e, eng_lease_t id, int64_t ttl, const char *name,
                      eng_lease_t *out);
int etcdb_lease_lookup(eng *e, const char *name, eng_lease_t *out);
int etcdb_lease_keepalive(eng *e, eng_lease_t id, int64_t *ttl);
int etcdb_lease_set_ttl(eng *e, eng_lease_t id, int64_t ttl);
int etcdb_lease_revoke(eng *e, eng_lease_t id, eng_rev_t *rev);
int etcdb_lease_ttl(eng *e, eng_lease_t id, unsigned flags,
                    struct eng_lease_info *out);
int etcdb_lease_list(eng *e, struct eng_lease_info **out, size_t *n);

/* ---- etcd_backend_watch.c ---- */
/* At close: stop the stream, end every open watch with ENG_E_CLOSED. */
void etcdb_watch_shutdown(struct etcdb *ee);
int64_t etcdb_watch_count(struct etcdb *ee);
/* For tests: drop the hub's stream now (cut) and do not reopen it while
 * hold is true (a cut stream, resumed when the test says). */
void etcdb_test_cut_stream(eng *e, bool hold);
int etcdb_watch_open(eng *e, const void *key, size_t key_len, const void *end,
                     size_t end_len, eng_rev_t start,
                     eng_watch_notify_fn notify, void *arg, eng_watch **out);

/* ---- etcd_backend_mtime.c ---- */
/* The cache of first-seen times; revisions <= open_rev get the open time. */
int etcdb_mtime_new(eng_rev_t open_rev, struct etcdb_mtime **out);
void etcdb_mtime_free(struct etcdb_mtime *mt);
/* rev was seen now (a txn reply; in_order: the watch stream, in revision
 * order, which also places a checkpoint).  The first sighting wins. */
void etcdb_mtime_seen(struct etcdb_mtime *mt, eng_rev_t rev, bool in_order);
/* The time of rev (see the file's comment); never a request. */
int64_t etcdb_mtime_of(struct etcdb_mtime *mt, eng_rev_t rev);
/* Set mtime_ns of every kv (not of rolled-up prefixes). */
void etcdb_mtime_fill(struct etcdb_mtime *mt, struct eng_kv *kvs, size_t n);

/* ---- etcd_backend_history.c ---- */
int etcdb_history(eng *e, const void *key, size_t key_len, eng_rev_t from,
                  int64_t limit, struct eng_range_res *res);
/* The compaction revision, asked of etcd (see etcd_backend.c). */
int etcdb_probe_compact(struct etcdb *ee, eng_rev_t *out);

#endif /* REVFS_ETCD_BACKEND_H */
