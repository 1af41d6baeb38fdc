/*
 * eng_int.h — private to engine/: the backend operations table behind the
 * public calls of engine.h, and the seams between the pieces of the
 * embedded (LevelDB) backend.
 *
 * engine.c holds every public eng_* function; each one checks its arguments
 * that do not depend on the backend and calls e->ops->*.  A backend fills a
 * `struct eng_backend_ops` and embeds `struct eng` at the start of its own
 * state.  The embedded backend ("local") is split by concept:
 *
 *   local_*.c  — LevelDB layout, open/close, the commit queue (group commit),
 *                reads, compaction, quota, lease persistence and the
 *                key<->lease index (see docs/engine.md).
 *   lease.c    — lease deadlines in memory and the expiry thread.
 *   watch.c    — the watch hub: recent-event window, fan-out, catch-up,
 *                progress markers.
 *
 * The seams below are the only calls between those files.
 */
#ifndef REVFS_ENG_INT_H
#define REVFS_ENG_INT_H

#include "engine.h"

#include <stdarg.h>

/* ------------------------------------------------------- backend dispatch */

struct eng_backend_ops {
	const char *name;
	void (*close)(eng *e);
	int (*range)(eng *e, const struct eng_range_req *req,
	             struct eng_range_res *res);
	int (*txn)(eng *e, const struct eng_txn *txn, struct eng_txn_res *res);
	/* NULL: eng_txn_async() returns ENG_E_NOT_SUPPORTED. */
	int (*txn_async)(eng *e, const struct eng_txn *txn,
	                 eng_txn_done_fn done, void *arg);
	int (*history)(eng *e, const void *key, size_t key_len, eng_rev_t from,
	               int64_t limit, struct eng_range_res *res);
	int (*snap_open)(eng *e, eng_snap **out);
	void (*snap_release)(eng *e, eng_snap *s);
	eng_rev_t (*current_rev)(eng *e);
	eng_rev_t (*compact_rev)(eng *e);
	int (*compact)(eng *e, eng_rev_t rev, bool wait);
	int (*lease_grant)(eng *e, eng_lease_t id, int64_t ttl,
	                   const char *name, eng_lease_t *out);
	int (*lease_lookup)(eng *e, const char *name, eng_lease_t *out);
	int (*lease_keepalive)(eng *e, eng_lease_t id, int64_t *ttl);
	int (*lease_set_ttl)(eng *e, eng_lease_t id, int64_t ttl);
	int (*lease_revoke)(eng *e, eng_lease_t id, eng_rev_t *rev);
	int (*lease_ttl)(eng *e, eng_lease_t id, unsigned flags,
	                 struct eng_lease_info *out);
	int (*lease_list)(eng *e, struct eng_lease_info **out, size_t *n);
	int (*watch_open)(eng *e, const void *key, size_t key_len,
	                  const void *end, size_t end_len, eng_rev_t start,
	                  eng_watch_notify_fn notify, void *arg,
	                  eng_watch **out);
	int (*stats_get)(eng *e, struct eng_stats *out);
};

/* Every backend's state starts with this. */
struct eng {
	const struct eng_backend_ops *ops;
	struct eng_options opt; /* copied at open, read-only afterwards */
};

/* A watch handle starts with this; the backend owns the rest. */
struct eng_watch_ops {
	int (*read)(eng_watch *w, struct eng_event **evs, size_t max);
	eng_rev_t (*next_rev)(const eng_watch *w);
	void (*close)(eng_watch *w);
};
struct eng_watch {
	const struct eng_watch_ops *ops;
};

/* A snapshot handle starts with this. */
struct eng_snap {
	eng_rev_t rev;
	eng_rev_t compact_rev;
};

/* Logging through opt.log (printf-style; no-op if no sink). */
void eng_logf(const struct eng_options *opt, enum eng_log_level level,
              const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Broken invariant: log and abort.  Never for errors a user can cause. */
#define ENG_BUG(opt, ...)                                                      \
	do {                                                                   \
		eng_logf((opt), ENG_LOG_ERR, "BUG at %s:%d", __FILE__,         \
		         __LINE__);                                            \
		eng_logf((opt), ENG_LOG_ERR, __VA_ARGS__);                     \
		abort();                                                       \
	} while (0)

/*
 * Result memory.  Every backend fills results the same way so that the
 * generic *_release() calls in engine.c can free them: a result's priv_ is
 * a struct eng_arena (or NULL) that owns ALL of its memory — arrays (kvs,
 * res, prev_kvs, keys) and every key and value byte.  Release frees the
 * arena (and, for eng_txn_res, each res[i].range.priv_ first, which may be
 * NULL when the txn's arena holds that range's memory).  Nothing in a
 * result is malloc'd on its own.
 */
struct eng_arena;
struct eng_arena *eng_arena_new(void);
/* n bytes, 8-aligned; NULL on ENOMEM.  Freed with the arena. */
void *eng_arena_alloc(struct eng_arena *a, size_t n);
void *eng_arena_dup(struct eng_arena *a, const void *p, size_t n);
void eng_arena_free(struct eng_arena *a);

/* Copy opt (NULL: the defaults) into *o with every 0 field given its
 * default (engine.h) and the ranges checked: 0 or ENG_E_INVAL.  Every
 * backend's open starts with it. */
int eng_options_resolve(const struct eng_options *opt, struct eng_options *o);

/* Count one operation that started at t0_ns (eng_now_mono_ns) and ended
 * with rc in s; the caller holds whatever lock guards s. */
void eng_op_stats_add(struct eng_op_stats *s, int64_t t0_ns, int rc);

/* Monotonic and wall clocks in ns. */
int64_t eng_now_mono_ns(void);
int64_t eng_now_real_ns(void);

/* =========================================================================
 * The embedded backend's seams.  `struct local` is defined in local_int.h.
 * ========================================================================= */
struct local;
struct watch_hub;
struct lease_mgr;

/* ---- provided by watch.c, called by the local core ---- */

/* Create/free the hub (at open, after the store is readable / at close,
 * after the committer stopped).  watch_hub_shutdown() ends every watch with
 * ENG_E_CLOSED and stops the hub's thread; it is called first at close. */
int watch_hub_new(struct local *l, const struct eng_options *opt,
                  eng_rev_t current_rev, struct watch_hub **out);
void watch_hub_shutdown(struct watch_hub *h);
void watch_hub_free(struct watch_hub *h);

/*
 * Publish one committed revision's events (n >= 1, all with kv.mod_rev ==
 * rev), after they are durable and visible to readers, in revision order,
 * from the committer.  The hub copies what it keeps; it never blocks on a
 * watcher (O(n) work plus a wakeup).  Key/value pointers are only valid
 * during the call.
 */
void watch_hub_publish(struct watch_hub *h, eng_rev_t rev,
                       const struct eng_event *evs, size_t n);

/* The store's current revision moved without events (nothing today; kept
 * for the remote backend's progress notifications). */
void watch_hub_advance(struct watch_hub *h, eng_rev_t rev);

int64_t watch_hub_count(struct watch_hub *h);

/*
 * A hub fed by another backend (the etcd backend publishes the events of its
 * one etcd watch stream).  The hub calls these instead of local_*() (same
 * contracts as local_read_events, local_current_rev, local_compact_rev
 * below); arg is theirs.  read_events may block on the network (a reader's
 * catch-up) but must return within a bound.
 */
struct watch_src {
	void *arg;
	int (*read_events)(void *arg, eng_rev_t from, eng_rev_t to,
	                   const void *key, size_t key_len, const void *end,
	                   size_t end_len,
	                   int (*cb)(void *cbarg, const struct eng_event *ev),
	                   void *cbarg, eng_rev_t *compact_rev);
	eng_rev_t (*current_rev)(void *arg);
	eng_rev_t (*compact_rev)(void *arg);
};
int watch_hub_new_src(const struct watch_src *src,
                      const struct eng_options *opt, eng_rev_t current_rev,
                      struct watch_hub **out);

/* Revisions [from, to] will never be published (a remote stream could not
 * resume there): live watchers replay them through read_events, which
 * reports a compaction as ENG_EV_COMPACTED.  Later publishes start at
 * to + 1. */
void watch_hub_lost(struct watch_hub *h, eng_rev_t from, eng_rev_t to);

/* watch_open for the local backend. */
int watch_hub_open(struct watch_hub *h, const void *key, size_t key_len,
                   const void *end, size_t end_len, eng_rev_t start,
                   eng_watch_notify_fn notify, void *arg, eng_watch **out);

/* ---- provided by the local core, called by watch.c ---- */

/*
 * Replay the revision log: call cb for every event with revision in
 * [from, to] whose key is in [key, end) (end convention of engine.h), in
 * revision order, reading through one LevelDB snapshot.  Stops early when cb
 * returns non-zero and returns that value.  Returns ENG_E_COMPACTED (with
 * *compact_rev set) if from < the compaction revision.  Event pointers are
 * valid only during the callback.
 */
int local_read_events(struct local *l, eng_rev_t from, eng_rev_t to,
                      const void *key, size_t key_len, const void *end,
                      size_t end_len,
                      int (*cb)(void *arg, const struct eng_event *ev),
                      void *arg, eng_rev_t *compact_rev);

eng_rev_t local_current_rev(struct local *l);
eng_rev_t local_compact_rev(struct local *l);

/* ---- provided by the local core, called by engine.c ---- */

/*
 * eng_get's fast path: key (already checked) at the current revision, no
 * snapshot; *kv as eng_get's (mod_rev 0 if missing).  One LevelDB point
 * read, without the snapshot and revision record of a range.
 */
int local_get_latest(struct local *l, const void *key, size_t key_len,
                     struct eng_kv *kv);

/* ---- leases: lease.c keeps deadlines; the core keeps the truth ---- */

/*
 * The core persists leases (`L` id -> ttl, name; `N` name -> id) and the
 * key<->lease index, all through the commit queue, so "does lease X exist"
 * is decided in commit order: a put attaching X and the revoke of X can't
 * race.  lease.c only holds deadlines (in memory, never written on renewal).
 */
struct lease_rec {
	eng_lease_t id;
	int64_t ttl; /* seconds */
	char name[ENG_LEASE_NAME_MAX + 1];
};

/* Load every persisted lease (at open).  cb returning non-zero stops. */
int local_lease_load(struct local *l,
                     int (*cb)(void *arg, const struct lease_rec *rec),
                     void *arg);
/* Persist a new lease (create=true: fails ENG_E_LEASE_EXISTS if the id or
 * name is taken) or a TTL change (create=false: ENG_E_LEASE_NOT_FOUND if
 * missing).  Durable on return; takes no revision. */
int local_lease_put(struct local *l, const struct lease_rec *rec, bool create);
/* Revoke: one commit deleting every attached key (one revision if any, with
 * DELETE events published) and the lease's records.  *rev gets that
 * revision or the current one.  ENG_E_LEASE_NOT_FOUND if missing. */
int local_lease_delete(struct local *l, eng_lease_t id, eng_rev_t *rev);
/* Fill info->keys/nkeys/priv_ with the keys attached to id (released by
 * eng_lease_info_release). */
int local_lease_keys(struct local *l, eng_lease_t id,
                     struct eng_lease_info *info);

/* ---- provided by lease.c, called by the local core ---- */

/* Start the lease manager: loads persisted leases (full TTL each) and
 * starts the expiry thread. */
int lease_mgr_new(struct local *l, const struct eng_options *opt,
                  struct lease_mgr **out);
void lease_mgr_free(struct lease_mgr *m); /* stops the thread first */
int64_t lease_mgr_count(struct lease_mgr *m);

/* The local backend's lease ops (engine.h semantics). */
int lease_mgr_grant(struct lease_mgr *m, eng_lease_t id, int64_t ttl,
                    const char *name, eng_lease_t *out);
int lease_mgr_lookup(struct lease_mgr *m, const char *name, eng_lease_t *out);
int lease_mgr_keepalive(struct lease_mgr *m, eng_lease_t id, int64_t *ttl);
int lease_mgr_set_ttl(struct lease_mgr *m, eng_lease_t id, int64_t ttl);
int lease_mgr_revoke(struct lease_mgr *m, eng_lease_t id, eng_rev_t *rev);
int lease_mgr_ttl(struct lease_mgr *m, eng_lease_t id, unsigned flags,
                  struct eng_lease_info *out);
int lease_mgr_list(struct lease_mgr *m, struct eng_lease_info **out, size_t *n);

#endif /* REVFS_ENG_INT_H */
