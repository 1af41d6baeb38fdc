/*
 * engine.h — the public interface of the revfs engine.
 *
 * The engine is a revisioned (MVCC) key-value store with etcd v3 semantics:
 * one global revision counter, per-key create/mod revision and version,
 * range reads at any retained revision, transactions, compaction, leases
 * and watches with progress markers.  It is the only thing fs/ talks to.
 *
 * Backends.  `eng_open()` opens the embedded backend (LevelDB in a local
 * directory).  Every call below dispatches through the backend's operations
 * table (engine/eng_int.h), so a second backend (a remote etcd cluster)
 * implements the same calls without any change to fs/.
 *
 * Conventions (the whole header follows them):
 *  - Every call that can fail returns 0 on success or a negative `ENG_E_*`
 *    code; `eng_strerror()` names it.  Nothing here calls exit() or prints.
 *  - Byte strings are (pointer, length) pairs; keys and values may contain
 *    any byte, including NUL.  The empty key is invalid (ENG_E_INVAL), as in
 *    etcd.
 *  - Results are returned in caller-provided structs whose memory is owned by
 *    the engine until the matching `*_release()`; a released struct may be
 *    reused.  Pointers inside a result stay valid until that release, even
 *    if the engine changes meanwhile.
 *  - Range ends follow etcd: `end == NULL` (len 0) means the single key;
 *    `end` = "\0" (len 1) means every key >= key; otherwise [key, end).
 *    `eng_prefix_end()` computes the end for a prefix.
 *  - All calls are thread-safe unless a comment says otherwise.
 */
#ifndef REVFS_ENGINE_H
#define REVFS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t eng_rev_t;   /* a revision; 0 means "current" where allowed */
typedef int64_t eng_lease_t; /* a lease id; 0 means "no lease" */

typedef struct eng eng;           /* an open store */
typedef struct eng_snap eng_snap; /* a pinned consistent view */
typedef struct eng_watch eng_watch;

/* ------------------------------------------------------------------ errors */

enum eng_err {
	ENG_OK = 0,
	ENG_E_INVAL = -1,      /* bad argument (empty key, bad range, ...) */
	ENG_E_NOMEM = -2,      /* out of memory */
	ENG_E_IO = -3,         /* the storage failed; details in the log */
	ENG_E_CORRUPT = -4,    /* a record on disk does not decode */
	ENG_E_NOT_STORE = -5,  /* the directory is not a revfs store */
	ENG_E_LOCKED = -6,     /* another process has the store open */
	ENG_E_COMPACTED = -7,  /* revision < compaction revision */
	ENG_E_FUTURE_REV = -8, /* revision > current revision */
	ENG_E_TOO_LARGE = -9,  /* value longer than max_value */
	ENG_E_NOSPACE = -10,   /* NOSPACE alarm: database over its quota */
	ENG_E_LEASE_NOT_FOUND = -11, /* no such lease (or it expired) */
	ENG_E_LEASE_EXISTS = -12,    /* a lease with that id or name exists */
	ENG_E_DUP_KEY = -13,         /* a txn writes the same key twice */
	ENG_E_TOO_MANY_OPS = -14,    /* a txn has more ops than the limit */
	ENG_E_READ_ONLY = -15,       /* the store was opened read-only */
	ENG_E_CLOSED = -16,          /* the engine or watch is shutting down */
	ENG_E_UNAVAILABLE = -17,     /* a remote backend cannot be reached */
	ENG_E_TIMEOUT = -18,  /* a remote backend did not answer in time */
	ENG_E_AGAIN = -19,    /* nothing to read yet (non-blocking calls) */
	ENG_E_VERSION = -20,  /* store format newer than this program */
	ENG_E_INTERNAL = -21, /* a bug; details in the log */
	ENG_E_TTL = -22,      /* a lease TTL out of range */
	ENG_E_KEY_NOT_FOUND = -23, /* put with IGNORE_VALUE/IGNORE_LEASE on a
	                              missing key (etcd's ErrKeyNotFound) */
	ENG_E_NOT_SUPPORTED = -24, /* the backend does not offer this call */
};

/* A static, human-readable message for an ENG_E_* code (never NULL). */
const char *eng_strerror(int err);

/* ----------------------------------------------------------------- options */

enum eng_sync {
	ENG_SYNC_ALWAYS =
	    0,             /* default: a write is on stable storage when the
	                      call returns; concurrent writers share an fsync */
	ENG_SYNC_INTERVAL, /* fsync at most every sync_interval_ms: a crash
	                      of the machine (not of the process) may lose the
	                      writes of the last interval */
	ENG_SYNC_NONE,     /* never fsync explicitly; the OS decides.  A
	                      process crash loses nothing (LevelDB's log is
	                      written before return), a machine crash may */
};

enum eng_auto_compact {
	ENG_AUTO_COMPACT_OFF = 0,
	ENG_AUTO_COMPACT_PERIODIC, /* keep a window of auto_compact_value ms */
	ENG_AUTO_COMPACT_REVISION, /* keep the last auto_compact_value revs */
};

enum eng_log_level { ENG_LOG_ERR, ENG_LOG_WARN, ENG_LOG_INFO, ENG_LOG_DEBUG };

struct eng_options {
	bool create;          /* create the store if missing (default true) */
	bool read_only;       /* refuse every write (default false) */
	size_t max_value;     /* default 1572864 (1.5 MiB, etcd's) */
	uint64_t quota_bytes; /* default 2 GiB; 0 means the default */
	enum eng_sync sync;   /* default ENG_SYNC_ALWAYS */
	int sync_interval_ms; /* for ENG_SYNC_INTERVAL; default 100 */
	enum eng_auto_compact auto_compact;
	int64_t auto_compact_value; /* ms (PERIODIC) or revisions (REVISION) */
	int progress_interval_ms;   /* watch progress markers; default 5000, min
	                               100 */
	size_t cache_bytes;         /* LevelDB block cache; default 64 MiB */
	/* Log sink: called from any engine thread, must not call the engine.
	 * NULL: no logging. */
	void (*log)(void *arg, enum eng_log_level level, const char *msg);
	void *log_arg;
};

/* Fill `opt` with the defaults above. */
void eng_options_init(struct eng_options *opt);

/* ------------------------------------------------------------ open / close */

/*
 * Open (and with opt->create, create) the store in directory `dir`.  A new
 * directory is created with mode 0700.  Opening reads a few metadata records
 * only; it never scans the keys.  Live leases get their full TTL again
 * (etcd's rule); their deadlines are not persisted.
 * On success *out is the store; close it with eng_close().
 * Errors: ENG_E_NOT_STORE (the directory exists, is not empty and is not a
 * revfs store, or opt->create is false and it does not exist),
 * ENG_E_LOCKED (another process holds it), ENG_E_VERSION, ENG_E_CORRUPT,
 * ENG_E_IO, ENG_E_NOMEM, ENG_E_INVAL.
 */
int eng_open(const char *dir, const struct eng_options *opt, eng **out);

/*
 * The etcd backend (docs/etcd-backend.md): the same calls over a remote
 * etcd v3 cluster, through its /v3/ JSON gateway.  Strings are copied at
 * open.
 */
struct eng_etcd_options {
	const char *const *endpoints; /* "http://127.0.0.1:2379", ... (>= 1) */
	size_t nendpoints;
	const char *ca_file;   /* TLS CA bundle (NULL: the system's) */
	const char *cert_file; /* TLS client certificate (PEM) or NULL */
	const char *key_file;  /* its key (PEM) or NULL */
	const char *user;      /* etcd auth (NULL: none) */
	const char *password;
	long timeout_ms;         /* one request; default 5000 */
	long connect_timeout_ms; /* one endpoint's connect; default 1000 */
};

/* Fill `eo` with the defaults above (no endpoints). */
void eng_etcd_options_init(struct eng_etcd_options *eo);

/*
 * Open the etcd backend: one request (the cluster's status) checks that
 * some endpoint answers.  `opt` as for eng_open (create, cache_bytes and
 * the sync options do not apply; quota_bytes is only reported).
 * Errors: ENG_E_INVAL (no endpoint), ENG_E_UNAVAILABLE, ENG_E_TIMEOUT,
 * ENG_E_NOMEM, and an auth failure's ENG_E_INVAL.
 */
int eng_open_etcd(const struct eng_etcd_options *eo,
                  const struct eng_options *opt, eng **out);

/*
 * Close the store: stop background threads (finishing the current bounded
 * batch of physical compaction), end every watch with ENG_E_CLOSED, make
 * every acknowledged write durable, release the lock.  NULL is a no-op.
 * Open snapshots and watches must be released before eng_close().
 */
void eng_close(eng *e);

/* -------------------------------------------------------------- key-values */

struct eng_kv {
	const char *key; /* not NUL-terminated; owned by the result */
	size_t key_len;
	const char *value; /* NULL with keys-only; owned by the result */
	size_t value_len;
	eng_rev_t create_rev; /* 0 for a deletion (history, events) */
	eng_rev_t mod_rev;    /* the revision of this version */
	int64_t version;      /* 1 on creation, +1 per put; 0 for a deletion */
	eng_lease_t lease;    /* 0 if none */
	int64_t mtime_ns;     /* commit time of mod_rev (CLOCK_REALTIME), or 0
	                         if the backend does not know it */
	bool is_prefix;       /* with a delimiter: a common prefix, not a key */
	bool deleted;         /* history/events: this version is a tombstone */
};

/* Range flags. */
#define ENG_RANGE_COUNT      0x1 /* compute count even when not cheap */
#define ENG_RANGE_KEYS_ONLY  0x2 /* values not returned (value == NULL) */
#define ENG_RANGE_COUNT_ONLY 0x4 /* no kvs, only count (implies COUNT) */
/* With KEYS_ONLY: value_len is still set (value stays NULL).  A listing's
 * sizes without reading the values the local backend stores apart; the
 * etcd backend reads the values and drops them. */
#define ENG_RANGE_VALUE_LEN 0x8

struct eng_range_req {
	const void *key;
	size_t key_len;
	const void *end; /* see the range-end convention above */
	size_t end_len;
	eng_rev_t rev;  /* 0: the current revision (or the snapshot's) */
	int64_t limit;  /* 0: no limit */
	unsigned flags; /* ENG_RANGE_* */
	/*
	 * Delimiter (0: none).  With one, every key that contains `delim` at
	 * or after byte `prefix_len` is rolled up into one entry with
	 * is_prefix set whose key is the key up to and including the first
	 * such delimiter (S3's "common prefixes"); its other fields are 0.
	 * The range skips the rest of a rolled-up prefix with one seek, so
	 * listing a directory costs its direct children, not its subtree.
	 * limit counts entries (keys + prefixes); count is then -1 unless
	 * the whole range was returned (count = n).
	 */
	char delim;
	size_t prefix_len;
	eng_snap *snap; /* NULL, or read through this pinned view */
};

struct eng_range_res {
	struct eng_kv *kvs; /* n entries, in key order */
	size_t n;
	int64_t count;        /* all matches ignoring limit, or -1 if not
	                         computed (neither asked for nor cheap) */
	bool more;            /* entries exist beyond the limit */
	eng_rev_t header_rev; /* the store's revision when the read was made
	                         (the snapshot's, with a snapshot) */
	void *priv_;          /* engine-owned memory */
};

/*
 * Read the live keys in the range at revision req->rev (etcd's Range).
 * Cost: O(log n) to find the start plus O(entries returned) at the current
 * revision; at an older revision O(log n) per key visited (see
 * docs/engine.md).  count is computed only when asked for or cheap.
 * Errors: ENG_E_INVAL, ENG_E_COMPACTED (rev < compaction revision; a
 * snapshot keeps every revision it could read when taken),
 * ENG_E_FUTURE_REV, ENG_E_IO, ENG_E_CORRUPT, ENG_E_NOMEM.
 * On error *res is left empty (release is still allowed).
 */
int eng_range(eng *e, const struct eng_range_req *req,
              struct eng_range_res *res);
void eng_range_res_release(struct eng_range_res *res);

/* Put flags. */
#define ENG_PUT_PREV_KV      0x1 /* return the previous kv */
#define ENG_PUT_IGNORE_VALUE 0x2 /* keep the current value (key must exist) */
#define ENG_PUT_IGNORE_LEASE 0x4 /* keep the current lease (key must exist) */
/* Delete flags. */
#define ENG_DEL_PREV_KV 0x1 /* return the deleted kvs */

enum eng_op_type { ENG_OP_RANGE, ENG_OP_PUT, ENG_OP_DELETE };

struct eng_op {
	enum eng_op_type type;
	const void *key;
	size_t key_len;
	const void *end; /* RANGE, DELETE: range end (convention above) */
	size_t end_len;
	const void *value; /* PUT */
	size_t value_len;
	eng_lease_t lease; /* PUT: attach to this lease (0: none) */
	unsigned flags;    /* ENG_PUT_*, ENG_DEL_* or ENG_RANGE_* */
	eng_rev_t rev;     /* RANGE: revision (0: current, within the txn) */
	int64_t limit;     /* RANGE */
};

enum eng_cmp_target {
	ENG_CMP_VERSION,
	ENG_CMP_CREATE,
	ENG_CMP_MOD,
	ENG_CMP_VALUE,
	ENG_CMP_LEASE,
};
enum eng_cmp_result { ENG_CMP_EQ, ENG_CMP_NE, ENG_CMP_LT, ENG_CMP_GT };

/*
 * A compare, as etcd's: every key in [key, end) (or the single key) must
 * satisfy `target result operand`.  A missing key compares as version,
 * create, mod and lease 0; a VALUE compare on a missing key is false.
 */
struct eng_cmp {
	const void *key;
	size_t key_len;
	const void *end;
	size_t end_len;
	enum eng_cmp_target target;
	enum eng_cmp_result result;
	int64_t number;    /* VERSION, CREATE, MOD, LEASE */
	const void *value; /* VALUE */
	size_t value_len;
};

struct eng_txn {
	const struct eng_cmp *cmps;
	size_t ncmps;
	const struct eng_op *success;
	size_t nsuccess;
	const struct eng_op *failure;
	size_t nfailure;
};

struct eng_op_res {
	enum eng_op_type type;
	struct eng_range_res range; /* RANGE: the result (release is done by
	                               eng_txn_res_release) */
	int64_t deleted;            /* DELETE: number of keys deleted */
	struct eng_kv *prev_kvs;    /* PUT (0 or 1) / DELETE with PREV_KV */
	size_t nprev;
};

struct eng_txn_res {
	bool succeeded;         /* the compares held: success ops ran */
	eng_rev_t header_rev;   /* the txn's revision if it changed something,
	                           else the current revision */
	struct eng_op_res *res; /* one per executed op, in order */
	size_t nres;
	void *priv_;
};

/*
 * Run a transaction atomically (etcd's Txn): evaluate the compares, then run
 * the success or the failure ops in order.  Every write of the txn takes the
 * same single new revision; a txn that changes nothing (only reads, or
 * deletes that match nothing) takes none.  Ranges inside see the txn's own
 * earlier writes.  With the default sync mode the txn is durable on return;
 * concurrent callers share one fsync (group commit).
 * Errors (nothing is written): ENG_E_INVAL, ENG_E_TOO_LARGE, ENG_E_NOSPACE
 * (if either branch puts, whichever would run: etcd's capped applier
 * refuses such a txn before its compares), ENG_E_LEASE_NOT_FOUND,
 * ENG_E_KEY_NOT_FOUND (a put with IGNORE_VALUE/IGNORE_LEASE on a missing
 * key), ENG_E_DUP_KEY, ENG_E_TOO_MANY_OPS (> 1024 ops), ENG_E_READ_ONLY,
 * ENG_E_COMPACTED / ENG_E_FUTURE_REV (a range op), ENG_E_IO, ENG_E_NOMEM,
 * ENG_E_CLOSED.
 */
int eng_txn(eng *e, const struct eng_txn *txn, struct eng_txn_res *res);
void eng_txn_res_release(struct eng_txn_res *res);

/*
 * The completion of an asynchronous transaction: rc is 0 or one of
 * eng_txn's errors (ENG_E_CLOSED if the engine closed before running it);
 * on 0, *res is the result as eng_txn would have returned it.  res is the
 * engine's and valid only during the call.
 */
typedef void (*eng_txn_done_fn)(void *arg, int rc,
                                const struct eng_txn_res *res);

/*
 * Queue a transaction and return without waiting for it: the caller's
 * thread is free while the group commit that carries it (and its fsync)
 * runs.  The transaction takes its place in the commit order when this
 * call returns, so a caller that queues two transactions (or queues one
 * and then calls eng_txn) gets them committed in that order.
 *
 * If 0 is returned, done(arg, rc, res) is called exactly once, when the
 * transaction is durable (as eng_txn's return) or refused.  It runs on an
 * engine thread that holds no engine lock and no caller lock, never in the
 * caller's own thread and never inside this call: it may take the
 * caller's locks (even one held while eng_txn_async was called) and may
 * call any engine function.  Completions run one at a time, in commit
 * order; a slow one delays the next completions, not the commits.
 * eng_close() waits until every queued transaction has completed.
 *
 * txn and everything it points to (keys, values, compares) must stay
 * valid and unchanged until done is called.
 * Errors (done is then not called): those of eng_txn that are found
 * before queuing (ENG_E_INVAL, ENG_E_TOO_LARGE, ENG_E_TOO_MANY_OPS,
 * ENG_E_DUP_KEY), ENG_E_CLOSED, ENG_E_NOMEM, and ENG_E_NOT_SUPPORTED from a
 * backend without asynchronous commits (the etcd backend: use eng_txn).
 */
int eng_txn_async(eng *e, const struct eng_txn *txn, eng_txn_done_fn done,
                  void *arg);

/*
 * Convenience wrappers around eng_txn with no compares.
 * eng_put: *rev (if not NULL) gets the new revision; *prev (if not NULL)
 *   gets the previous version (prev->mod_rev == 0 if none) and must be
 *   released with eng_kv_release().
 * eng_delete: *deleted (if not NULL) is the count; *rev is the new revision,
 *   or the current one if nothing was deleted.
 * Errors: as eng_txn.
 */
int eng_put(eng *e, const void *key, size_t key_len, const void *value,
            size_t value_len, eng_lease_t lease, eng_rev_t *rev,
            struct eng_kv *prev);
int eng_delete(eng *e, const void *key, size_t key_len, const void *end,
               size_t end_len, int64_t *deleted, eng_rev_t *rev);

/*
 * Read one key at `rev` (0: current), through `snap` if not NULL.  *kv
 * must be released with eng_kv_release().  A missing key is not an error:
 * it returns 0 with kv->mod_rev == 0.  Errors as eng_range.
 */
int eng_get(eng *e, const void *key, size_t key_len, eng_rev_t rev,
            eng_snap *snap, struct eng_kv *kv);
void eng_kv_release(struct eng_kv *kv);

/*
 * A key's retained versions, oldest first, including deletions (deleted set,
 * value NULL), from revision `from` (0: the oldest retained) on, at most
 * `limit` (0: all).  res->more tells whether more follow.
 * Errors: ENG_E_INVAL, ENG_E_COMPACTED (from < compaction revision and not
 * 0), ENG_E_IO, ENG_E_NOMEM.
 */
int eng_history(eng *e, const void *key, size_t key_len, eng_rev_t from,
                int64_t limit, struct eng_range_res *res);

/*
 * Compute the range end for a prefix (etcd's GetPrefixRangeEnd): the prefix
 * with its last byte below 0xff incremented and the rest cut.  Writes at most
 * prefix_len bytes to out and returns the length; a prefix of only 0xff
 * bytes (or empty) gives "\0" (every key >= prefix) and returns 1.
 */
size_t eng_prefix_end(const void *prefix, size_t prefix_len, char *out);

/* --------------------------------------------------------------- snapshots */

/*
 * Pin a consistent view at the current revision.  Reads that pass it see the
 * store as of that moment at any revision that was readable then, even if a
 * compaction runs meanwhile (the data stays until eng_snap_release).  Hold it
 * for the length of one listing, not forever: it pins disk space.
 * Errors: ENG_E_NOMEM, ENG_E_CLOSED.
 */
int eng_snap_open(eng *e, eng_snap **out);
/* The revision the snapshot reads at, and the compaction revision when it
 * was taken (0 for a NULL snapshot).  Cannot fail. */
eng_rev_t eng_snap_rev(const eng_snap *s);
eng_rev_t eng_snap_compact_rev(const eng_snap *s);
/* Release a snapshot of e (NULL is a no-op); its memory goes with it. */
void eng_snap_release(eng *e, eng_snap *s);

/* -------------------------------------------------------------- revisions */

/*
 * The current and the compaction revision (0 for a NULL engine).  No error
 * channel: the embedded backend reads atomics; the etcd backend asks the
 * cluster and, if it cannot be reached, answers the last revision it saw.
 */
eng_rev_t eng_current_rev(eng *e);
eng_rev_t eng_compact_rev(eng *e);

/*
 * Compact at `rev`: every read below rev fails ENG_E_COMPACTED from the
 * return on, durably; per key the newest version <= rev and everything after
 * it are kept (a deletion <= rev drops the key).  Old versions are removed
 * in the background in bounded batches, then LevelDB's files are compacted
 * so they shrink; with `wait` the call returns after that (etcd's
 * --physical).  Errors: ENG_E_COMPACTED (rev <= the compaction revision),
 * ENG_E_FUTURE_REV, ENG_E_READ_ONLY, ENG_E_IO.
 */
int eng_compact(eng *e, eng_rev_t rev, bool wait);

/* ------------------------------------------------------------------ leases */

#define ENG_LEASE_NAME_MAX 255

struct eng_lease_info {
	eng_lease_t id;
	char name[ENG_LEASE_NAME_MAX + 1]; /* "" if unnamed */
	int64_t granted_ttl;               /* seconds */
	int64_t remaining_ms; /* until expiry; may be <= 0 just before expiry */
	/* attached keys (with ENG_LEASE_KEYS), owned until release */
	struct eng_kv *keys; /* key/key_len set only */
	size_t nkeys;
	void *priv_;
};

/*
 * Grant a lease of `ttl` seconds (1 .. 9e9).  `id` 0 picks a new id; `name`
 * (NULL or "": none) must be unique among live leases.  Persisted (no
 * revision is taken, as in etcd).  *out gets the id.
 * Errors: ENG_E_TTL, ENG_E_LEASE_EXISTS, ENG_E_INVAL, ENG_E_READ_ONLY,
 * ENG_E_NOSPACE, ENG_E_IO.
 */
int eng_lease_grant(eng *e, eng_lease_t id, int64_t ttl, const char *name,
                    eng_lease_t *out);
/* Look a lease up by name.  Errors: ENG_E_LEASE_NOT_FOUND. */
int eng_lease_lookup(eng *e, const char *name, eng_lease_t *out);
/*
 * Renew: the deadline becomes now + TTL.  Takes no revision and writes
 * nothing to disk.  *ttl (if not NULL) gets the TTL.
 * Errors: ENG_E_LEASE_NOT_FOUND.
 */
int eng_lease_keepalive(eng *e, eng_lease_t id, int64_t *ttl);
/* Change the TTL and renew (SPEC: writing a TTL to a lease file).  Takes
 * no revision.  Errors: ENG_E_INVAL, ENG_E_TTL, ENG_E_LEASE_NOT_FOUND,
 * ENG_E_READ_ONLY, ENG_E_IO, ENG_E_NOMEM. */
int eng_lease_set_ttl(eng *e, eng_lease_t id, int64_t ttl);
/*
 * Revoke: delete every attached key and the lease in one revision (none if
 * no key is attached).  *rev gets the revision (or the current one).
 * Errors: ENG_E_LEASE_NOT_FOUND, ENG_E_READ_ONLY, ENG_E_IO.
 */
int eng_lease_revoke(eng *e, eng_lease_t id, eng_rev_t *rev);

#define ENG_LEASE_KEYS 0x1
/* Time to live (etcd's LeaseTimeToLive).  Release with
 * eng_lease_info_release().  Errors: ENG_E_LEASE_NOT_FOUND. */
int eng_lease_ttl(eng *e, eng_lease_t id, unsigned flags,
                  struct eng_lease_info *out);
void eng_lease_info_release(struct eng_lease_info *info);

/* All live leases, in id order, without keys.  *out is malloc'd; free()
 * it.  Errors: ENG_E_NOMEM. */
int eng_lease_list(eng *e, struct eng_lease_info **out, size_t *n);

/* ----------------------------------------------------------------- watches */

enum eng_event_type {
	ENG_EV_PUT,
	ENG_EV_DELETE,
	ENG_EV_PROGRESS,  /* kv.mod_rev = R: every event <= R was delivered */
	ENG_EV_COMPACTED, /* kv.mod_rev = the compaction revision; the watch
	                     is over (its start or position was compacted) */
};

struct eng_event {
	enum eng_event_type type;
	struct eng_kv kv; /* PUT: the new version; DELETE: key, mod_rev = the
	                     deletion's revision, deleted set */
};

/*
 * Called (from an engine thread, holding engine locks: it must not call the
 * engine or block; typically it wakes a poller) when the watch has events,
 * a progress marker or an end to deliver.
 */
typedef void (*eng_watch_notify_fn)(void *arg);

/*
 * Watch [key, end) from revision `start` on (inclusive; 0: from the next
 * revision).  Events come in revision order, all events of one revision
 * together, none lost or repeated; history is replayed from the store when
 * start is old, then live.  A start below the compaction revision makes the
 * first read return ENG_EV_COMPACTED.  `notify` may be NULL (poll only).
 * Errors: ENG_E_INVAL, ENG_E_NOMEM, ENG_E_CLOSED.
 */
int eng_watch_open(eng *e, const void *key, size_t key_len, const void *end,
                   size_t end_len, eng_rev_t start, eng_watch_notify_fn notify,
                   void *arg, eng_watch **out);

/*
 * Take the events ready now, without blocking: at most `max` (>0) events
 * into *evs (engine-owned until the next read or the close of this watch).
 * A batch never splits a revision unless one revision alone exceeds max.
 * Returns the number of events (>= 0) with 0 meaning "nothing now"
 * (ENG_E_AGAIN is not used), or an error: ENG_E_CLOSED (the engine is
 * closing), ENG_E_IO.  After ENG_EV_COMPACTED nothing more comes.
 * Not thread-safe per watch: one reader at a time.
 */
int eng_watch_read(eng_watch *w, struct eng_event **evs, size_t max);

/* The watch's next revision to deliver (all below were delivered). */
eng_rev_t eng_watch_next_rev(const eng_watch *w);

/* Stop the watch and free it.  Safe with a notify in flight: after it
 * returns notify is never called again.  NULL is a no-op. */
void eng_watch_close(eng_watch *w);

/* ------------------------------------------------------------------- stats */

#define ENG_LAT_BUCKETS 16 /* bucket i counts latencies < 2^i * 50 us */

struct eng_op_stats {
	uint64_t count;
	uint64_t errors;
	uint64_t sum_us;
	uint64_t buckets[ENG_LAT_BUCKETS]; /* cumulative, Prometheus-style */
};

struct eng_stats {
	eng_rev_t rev;
	eng_rev_t compact_rev;
	int64_t keys;      /* live keys */
	uint64_t db_bytes; /* size of the store's files */
	uint64_t quota_bytes;
	bool alarm_nospace;
	int64_t leases;
	int64_t watchers;
	uint64_t commits; /* group-commit batches written */
	uint64_t fsyncs;
	struct eng_op_stats range, txn, compact; /* txn counts puts/deletes */
};

/* A snapshot of the counters into *out (cheap; never scans keys).
 * Errors: ENG_E_INVAL; the etcd backend, which asks the cluster for the
 * key count and size, also ENG_E_UNAVAILABLE, ENG_E_TIMEOUT, ENG_E_NOMEM. */
int eng_stats_get(eng *e, struct eng_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* REVFS_ENGINE_H */
