/*
 * etcd_client.h — a small typed client of etcd v3's JSON gateway (/v3/...).
 *
 * It speaks HTTP/1.1 through libcurl and JSON through jansson to the
 * grpc-gateway that every etcd 3.4+ member serves on its client URL, and
 * returns results in engine.h's types (struct eng_kv, eng_range_res,
 * eng_txn_res, eng_event) so that a remote backend (issue 7) and the
 * conformance test can use it without another layer of translation.
 *
 * Conventions (as engine.h):
 *  - Every call that can fail returns 0 or a negative ENG_E_* code.  etcd's
 *    errors are mapped by etcd_map_error(): compacted -> ENG_E_COMPACTED,
 *    future revision -> ENG_E_FUTURE_REV, request too large ->
 *    ENG_E_TOO_LARGE, lease not found -> ENG_E_LEASE_NOT_FOUND, lease
 *    exists -> ENG_E_LEASE_EXISTS, duplicate key in txn -> ENG_E_DUP_KEY,
 *    too many ops -> ENG_E_TOO_MANY_OPS, NOSPACE alarm -> ENG_E_NOSPACE,
 *    TTL too large -> ENG_E_TTL, ignore_value/ignore_lease on a missing
 *    key -> ENG_E_KEY_NOT_FOUND, timeouts -> ENG_E_TIMEOUT, no leader or no
 *    reachable endpoint -> ENG_E_UNAVAILABLE, other invalid arguments
 *    (empty key, bad auth) -> ENG_E_INVAL.  etcd's message goes to the log
 *    sink (debug level: an error answer is not a client failure).
 *  - Results live in caller-provided structs owned by the client until the
 *    matching etcd_*_release().  They follow eng_int.h's result-memory rule
 *    (priv_ is a struct eng_arena owning everything), so a backend may hand
 *    them to its callers unchanged and eng_*_release() frees them too.
 *  - Keys and values are any bytes (base64 on the wire).
 *  - An etcd_client is thread-safe: concurrent calls each take their own
 *    curl handle from a small pool (connections are reused).  An
 *    etcd_watch is read by one thread at a time.
 *  - Endpoints: calls go to the last endpoint that answered; when it
 *    cannot be connected to, the next one is tried (a request that may
 *    have reached a member is never resent, so a write is never doubled).
 *  - TLS (CA, client cert and key) and username/password auth are passed
 *    to curl / etcd's Authenticate; an expired auth token is renewed once
 *    per call.
 *
 * Limits: a keepalive is one request (no long-lived keepalive stream); a
 * watch is one stream per etcd_watch (no multiplexing, no RequestProgress:
 * the gateway's request body is sent whole); a watch stream that stalls
 * without closing is not detected unless progress notifications are asked
 * for and the caller times them.
 */
#ifndef REVFS_ETCD_CLIENT_H
#define REVFS_ETCD_CLIENT_H

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

struct etcd_client;
struct etcd_watch;

struct etcd_client_options {
	const char *const *endpoints; /* "http://127.0.0.1:2379", ... (>= 1);
	                                 copied at open */
	size_t nendpoints;
	long timeout_ms;         /* whole unary request; default 5000 */
	long connect_timeout_ms; /* per endpoint; default 1000 */
	const char *ca_file;     /* TLS: CA bundle (NULL: curl's default) */
	const char *cert_file;   /* TLS client certificate (PEM) or NULL */
	const char *key_file;    /* its key (PEM) or NULL */
	const char *user;        /* etcd auth (NULL: none) */
	const char *password;
	/* Log sink, as struct eng_options' (may be called from any thread,
	 * including watch threads).  NULL: no logging. */
	void (*log)(void *arg, enum eng_log_level level, const char *msg);
	void *log_arg;
};

/* Fill `opt` with the defaults above (no endpoints). */
void etcd_client_options_init(struct etcd_client_options *opt);

/*
 * Create a client.  No request is made except, with a user, the
 * authentication.  Errors: ENG_E_INVAL (no endpoint), ENG_E_NOMEM, and
 * with auth the errors of a request.
 */
int etcd_client_open(const struct etcd_client_options *opt,
                     struct etcd_client **out);
/* Free the client.  Watches must be closed first.  NULL is a no-op. */
void etcd_client_close(struct etcd_client *c);

/* ---------------------------------------------------------------- kv */

/*
 * etcd's Range.  Flags: ENG_RANGE_KEYS_ONLY (value NULL), ENG_RANGE_COUNT_ONLY
 * (no kvs).  count is always set (etcd always computes it).  req->delim and
 * req->snap are not supported (ENG_E_INVAL).  res->header_rev is etcd's
 * header revision (the current revision, also for a past `rev`).
 * Errors: ENG_E_INVAL, ENG_E_COMPACTED, ENG_E_FUTURE_REV, the transport's.
 */
int etcd_range(struct etcd_client *c, const struct eng_range_req *req,
               struct eng_range_res *res);
void etcd_range_res_release(struct eng_range_res *res);

/*
 * etcd's Txn with engine.h's compares and ops (RANGE ops honour rev, limit
 * and ENG_RANGE_* flags; PUT honours ENG_PUT_*; DELETE ENG_DEL_PREV_KV).
 * Release with etcd_txn_res_release().  Errors: as eng_txn (ENG_E_DUP_KEY is
 * checked by etcd in both branches, whichever runs).
 */
int etcd_txn(struct etcd_client *c, const struct eng_txn *txn,
             struct eng_txn_res *res);
void etcd_txn_res_release(struct eng_txn_res *res);

/*
 * etcd's Put and DeleteRange endpoints (not a txn): `op` is an ENG_OP_PUT /
 * ENG_OP_DELETE.  The answer comes as a one-op transaction result (succeeded
 * true, res->res[0] the op's result), released by etcd_txn_res_release().
 */
int etcd_put(struct etcd_client *c, const struct eng_op *op,
             struct eng_txn_res *res);
int etcd_delete(struct etcd_client *c, const struct eng_op *op,
                struct eng_txn_res *res);

/*
 * etcd's Compact at `rev`.  With `physical` the call returns after the old
 * versions are removed (a later read of a removed tombstone cannot
 * differ).  *header_rev (if not NULL) gets the revision.  Errors:
 * ENG_E_COMPACTED (rev <= the compaction revision), ENG_E_FUTURE_REV.
 */
int etcd_compact(struct etcd_client *c, eng_rev_t rev, bool physical,
                 eng_rev_t *header_rev);

struct etcd_status {
	eng_rev_t rev;          /* header revision */
	int64_t db_size;        /* bytes */
	int64_t db_size_in_use; /* bytes */
	uint64_t member_id;
	uint64_t leader; /* member id of the leader, 0 if none */
	int64_t raft_term;
	char version[32];   /* "3.4.23" */
	bool alarm_nospace; /* a NOSPACE alarm is raised */
};
/* The answering member's status (maintenance/status). */
int etcd_status(struct etcd_client *c, struct etcd_status *st);

/* The current revision (a count-only range of one key). */
int etcd_current_rev(struct etcd_client *c, eng_rev_t *rev);

/* ------------------------------------------------------------- leases */

/*
 * Grant a lease of `ttl` seconds with `id` (0: etcd picks one).  *out_id
 * gets the id, *out_ttl (if not NULL) the TTL etcd granted (it raises a TTL
 * below its minimum).  Errors: ENG_E_LEASE_EXISTS, ENG_E_TTL, transport.
 */
int etcd_lease_grant(struct etcd_client *c, eng_lease_t id, int64_t ttl,
                     eng_lease_t *out_id, int64_t *out_ttl);
/* Revoke: deletes the attached keys in one revision (none if no key).
 * *rev (if not NULL) gets the header revision afterwards.
 * Errors: ENG_E_LEASE_NOT_FOUND, transport. */
int etcd_lease_revoke(struct etcd_client *c, eng_lease_t id, eng_rev_t *rev);
/* One keepalive (a one-message keepalive stream).  *ttl gets the TTL.
 * Errors: ENG_E_LEASE_NOT_FOUND (etcd answers TTL 0), transport. */
int etcd_lease_keepalive(struct etcd_client *c, eng_lease_t id, int64_t *ttl);
/*
 * Time to live; with ENG_LEASE_KEYS the attached keys.  info->name is ""
 * (etcd leases have no names); remaining_ms has a 1 s resolution.  Release
 * with etcd_lease_info_release().  Errors: ENG_E_LEASE_NOT_FOUND (etcd's
 * TTL -1), transport.
 */
int etcd_lease_ttl(struct etcd_client *c, eng_lease_t id, unsigned flags,
                   struct eng_lease_info *info);
void etcd_lease_info_release(struct eng_lease_info *info);
/* Every live lease id, ascending.  *ids is malloc'd; free() it. */
int etcd_lease_list(struct etcd_client *c, eng_lease_t **ids, size_t *n);

/* ------------------------------------------------------------ watches */

#define ETCD_WATCH_PROGRESS                                                    \
	0x1 /* ask for progress notifications (their                           \
	       period is etcd's                                                \
	       --experimental-watch-progress-notify-interval)                  \
	     */

/*
 * Open one watch stream (a POST to /v3/watch whose answer streams JSON
 * objects) on [key, end) from revision `start` (0: the next revision), read
 * by a thread of the client.  Returns once etcd confirmed the watch, so
 * every change committed after the return is delivered.
 * Errors: ENG_E_INVAL, ENG_E_NOMEM, ENG_E_TIMEOUT, ENG_E_UNAVAILABLE.
 */
int etcd_watch_open(struct etcd_client *c, const void *key, size_t key_len,
                    const void *end, size_t end_len, eng_rev_t start,
                    unsigned flags, struct etcd_watch **out);

/*
 * Take up to `max` events, waiting at most timeout_ms (0: do not wait) for
 * the first.  Events are ENG_EV_PUT, ENG_EV_DELETE (kv.deleted set),
 * ENG_EV_PROGRESS (kv.mod_rev = etcd's header revision: every event up to
 * it was sent) and ENG_EV_COMPACTED (kv.mod_rev = etcd's compact_revision;
 * nothing follows).  *evs is owned by the watch until the next read or the
 * close.  Returns the count (0: nothing in time) or ENG_E_UNAVAILABLE (the
 * stream broke: reopen from eng_watch's last revision + 1), ENG_E_CLOSED
 * (etcd cancelled the watch), ENG_E_NOMEM (more than ETCD_WATCH_MAX_QUEUED
 * events were waiting: the reader is too slow and the watch was ended).
 */
#define ETCD_WATCH_MAX_QUEUED 1000000
int etcd_watch_read(struct etcd_watch *w, struct eng_event **evs, size_t max,
                    int timeout_ms);

/* Stop the stream and free the watch.  NULL is a no-op. */
void etcd_watch_close(struct etcd_watch *w);

/* ------------------------------------------------- helpers (also tested) */

/* Map an etcd error (gateway `error` message and gRPC `code`) to ENG_E_*. */
int etcd_map_error(const char *message, int grpc_code);

/* Standard base64 (RFC 4648, padded).  etcd_b64_encode writes
 * 4*ceil(n/3)+1 bytes (NUL-terminated) to out; etcd_b64_decode writes at most
 * 3*len/4 bytes and returns the length, or -1 on bad input. */
size_t etcd_b64_encode(const void *in, size_t n, char *out);
long etcd_b64_decode(const char *in, size_t len, void *out);

#ifdef __cplusplus
}
#endif
#endif /* REVFS_ETCD_CLIENT_H */
