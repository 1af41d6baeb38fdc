/*
 * conf.h — the conformance test's shared types: the two "sides" an
 * operation runs on (the revfs engine, an etcd through its JSON gateway),
 * the normalized answers they are compared in, the seeded operation
 * generator and the watch bookkeeping.
 *
 * Every answer is deep-copied into a `struct cres` right away, so a side's
 * own result memory never outlives the call, and lease ids are mapped to
 * the test's logical lease numbers (1, 2, ...) so the two sides' ids can
 * differ.
 */
#ifndef REVFS_CONF_H
#define REVFS_CONF_H

#include "engine/engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------- normalized answers */

struct ckv {
	char *key;
	size_t klen;
	char *val; /* NULL: no value (keys_only) */
	size_t vlen;
	int64_t create, mod, version;
	int64_t lease; /* logical lease number, 0 none, < 0 unknown id */
	eng_lease_t lease_raw;
};

struct csub {
	enum eng_op_type type;
	struct ckv *kvs;
	size_t n;
	int64_t count;
	bool count_unknown; /* the engine was not asked and answered -1 */
	bool more;
	int64_t deleted;
	struct ckv *prev;
	size_t nprev;
};

struct cres {
	int err;       /* 0 or ENG_E_* */
	eng_rev_t rev; /* header revision */
	bool succeeded;
	struct csub *subs;
	size_t nsubs;
	int64_t ttl; /* lease ops: granted TTL (time-to-live, keepalive) */
};

void cres_free(struct cres *r);
/* Fill r from a side's native result (deep copy; leases mapped). */
int cres_from_range(int side, const struct eng_range_res *in, struct cres *r);
int cres_from_txn(int side, const struct eng_txn_res *in, struct cres *r);
/* A lease's granted TTL and attached keys (sorted: etcd's order is a map's). */
int cres_from_lease(const struct eng_lease_info *in, struct cres *r);
/* A lease list (ids of one side) as logical numbers, sorted. */
int cres_from_lease_ids(int side, const eng_lease_t *ids, size_t n,
                        struct cres *r);
/* Compare; on a difference write a one-line reason to why[] and return
 * false.  keys_only: values are not compared. */
bool cres_equal(const struct cres *a, const struct cres *b, char *why,
                size_t whylen);
void cres_print(FILE *f, const char *label, const struct cres *r);
void ckv_print(FILE *f, const struct ckv *kv);
void bytes_print(FILE *f, const void *p, size_t n);

/* ------------------------------------------------------------ watch events */

struct cev {
	enum eng_event_type type; /* PUT, DELETE or COMPACTED */
	char *key;
	size_t klen;
	char *val; /* PUT: the value */
	size_t vlen;
	int64_t create, mod, version;
	int64_t lease; /* PUT: logical lease number */
};

struct cevlist {
	struct cev *v;
	size_t n, cap;
	eng_rev_t progress; /* highest progress marker or event revision */
	int end_err;        /* the watch ended (ENG_E_* or 1 for compacted) */
	/* the stream's own invariants: revision order, no event at or below
	 * a progress marker already given, no revision split across reads */
	eng_rev_t marker, last_ev;
	size_t batch_n;    /* events of the current read batch */
	char problem[200]; /* the first violation, or "" */
};

int cevlist_push(int side, struct cevlist *l, const struct eng_event *ev);
bool cev_equal(const struct cev *a, const struct cev *b);
void cevlist_free(struct cevlist *l);
void cev_print(FILE *f, const struct cev *e);

/* ------------------------------------------------------------------ sides */

struct side;

struct side_ops {
	const char *kind; /* "engine" or "etcd" */
	int (*range)(struct side *s, const struct eng_range_req *req,
	             struct cres *r);
	int (*txn)(struct side *s, const struct eng_txn *txn, struct cres *r);
	/* A lone put/delete through the side's own single-op call. */
	int (*put)(struct side *s, const struct eng_op *op, struct cres *r);
	int (*del)(struct side *s, const struct eng_op *op, struct cres *r);
	int (*compact)(struct side *s, eng_rev_t rev, bool wait,
	               struct cres *r);
	int (*lease_grant)(struct side *s, eng_lease_t id, int64_t ttl,
	                   eng_lease_t *out, struct cres *r);
	int (*lease_revoke)(struct side *s, eng_lease_t id, struct cres *r);
	int (*lease_ttl)(struct side *s, eng_lease_t id, struct cres *r);
	int (*lease_keepalive)(struct side *s, eng_lease_t id, struct cres *r);
	/* Every live lease's logical number, ascending, in r->subs[0].kvs
	 * (key = the number as text) */
	int (*lease_list)(struct side *s, struct cres *r);
	/* 1 alive, 0 gone, < 0 error */
	int (*lease_alive)(struct side *s, eng_lease_t id);
	int (*current_rev)(struct side *s, eng_rev_t *rev);
	int (*watch_open)(struct side *s, const void *key, size_t key_len,
	                  const void *end, size_t end_len, eng_rev_t start,
	                  void **w);
	/* Append what is ready (waiting up to timeout_ms for something). */
	int (*watch_poll)(struct side *s, void *w, struct cevlist *l,
	                  int timeout_ms);
	void (*watch_close)(struct side *s, void *w);
	/* Close and reopen (NULL: the side cannot; etcd is not restarted). */
	int (*reopen)(struct side *s);
	void (*close)(struct side *s);
};

struct side {
	const struct side_ops *ops;
	int idx;        /* 0 or 1: which column of the lease table */
	char name[400]; /* for messages */
	long nranges;   /* lone ranges so far */
	void *impl;
};

/* side_engine.c: open the engine in `dir` (created by the caller). */
int side_engine_open(struct side *s, int idx, const char *dir, int progress_ms);
/* ... with a quota of quota_bytes (the NOSPACE phase). */
int side_engine_open_quota(struct side *s, int idx, const char *dir,
                           uint64_t quota_bytes);
/* ... or the engine API's etcd backend (eng_open_etcd) on an etcd. */
int side_engine_open_etcd(struct side *s, int idx, const char *endpoint,
                          int progress_ms);
/* side_etcd.c */
int side_etcd_open(struct side *s, int idx, const char *endpoint);

/* main.c: lease id of side `side` -> logical number (0 for 0, < 0 unknown) */
int64_t conf_lease_logical(int side, eng_lease_t id);
extern bool conf_verbose;

/* ------------------------------------------------------------- generator */

struct rng {
	uint64_t s;
};
uint64_t rng_next(struct rng *r);
/* uniform in [0, n) (n > 0) */
uint64_t rng_below(struct rng *r, uint64_t n);
/* true with probability pct/100 */
bool rng_pct(struct rng *r, unsigned pct);

struct cbytes {
	char *p;
	size_t n;
};

struct cop_op {
	enum eng_op_type type;
	struct cbytes key, end, value;
	int64_t lease; /* logical lease, 0 none, CONF_BOGUS_LEASE */
	unsigned flags;
	eng_rev_t rev;
	int64_t limit;
};

#define CONF_BOGUS_LEASE (-1)
#define CONF_MAX_BRANCH  8

struct ccmp {
	struct cbytes key, end, value;
	enum eng_cmp_target target;
	enum eng_cmp_result result;
	int64_t number; /* for LEASE: a logical lease number */
};

enum cop_kind {
	C_PUT,
	C_DEL,
	C_RANGE,
	C_TXN,
	C_COMPACT,
	C_LEASE_GRANT,
	C_LEASE_REVOKE,
	C_LEASE_TTL,
	C_LEASE_KEEPALIVE,
	C_LEASE_LIST,
	C_WATCH,
};

struct cop {
	enum cop_kind kind;
	struct cop_op op; /* PUT, DEL, RANGE */
	bool via_txn;     /* engine side: run a lone op through eng_txn */
	struct ccmp cmps[4];
	size_t ncmps;
	struct cop_op succ[CONF_MAX_BRANCH], fail[CONF_MAX_BRANCH];
	size_t nsucc, nfail;
	eng_rev_t rev;    /* COMPACT: target; WATCH: start */
	bool wait;        /* COMPACT: engine waits for physical removal */
	int64_t lease;    /* LEASE_*: logical lease (grant: the new one) */
	bool explicit_id; /* LEASE_GRANT: both sides get `id` */
	eng_lease_t id;
	int64_t reuse; /* LEASE_GRANT: logical lease whose id to reuse */
	int64_t ttl;
	int watch_kind; /* WATCH: which key range */
};

/* What the generator knows (from side 0's answers). */
struct gen_state {
	eng_rev_t cur;     /* current revision */
	eng_rev_t compact; /* compaction revision (0: none) */
	int64_t nleases;   /* logical leases granted so far */
	int nwatches;
	int max_watches;
	bool leases, watches;    /* generate these kinds */
	bool no_empty_ranges;    /* never [k, e) with e <= k (see --help) */
	struct cbytes recent[8]; /* recent values, for VALUE compares */
	unsigned nrecent;
};

void gen_op(struct rng *r, struct gen_state *g, struct cop *op);
void cop_free(struct cop *op);
void gen_state_free(struct gen_state *g);
void cop_print(FILE *f, const struct cop *op);
/* Key ranges of watches (index = cop.watch_kind; the generator uses
 * 0 .. gen_nwatch_kinds()-1, the scenarios GEN_WATCH_SCENARIO). */
#define GEN_WATCH_SCENARIO 5
void gen_watch_range(int kind, struct cbytes *key, struct cbytes *end);
int gen_nwatch_kinds(void);
/* Build a side's eng_op from a logical op; lease ids through the map. */
void cop_op_to_eng(int side, const struct cop_op *in, struct eng_op *out);
eng_lease_t conf_lease_id(int side, int64_t logical);

/* ------------------------------------------------------------- the run */

/* One run: the two sides and the generator's state (main.c). */
struct conf_run {
	struct side side[2];
	struct rng rng;
	struct gen_state g;
	uint64_t seed;
	long nops;
	int expiries;
	int passed, failed;
	long corrupt; /* self-check: falsify B's answer at this op (-1 none) */
	const char *replay; /* how to replay, for messages */
};

/* main.c: run one op on both sides, compare the answers and then the
 * current revisions; false (after printing the difference) if they differ.
 * idx is the op's index in the sequence, for messages. */
bool conf_step(struct conf_run *R, long idx, struct cop *op);
bool conf_check_revs(struct conf_run *R, long idx, const struct cop *op);
void conf_diff_header(struct conf_run *R, long idx, const char *why);
void conf_diff_footer(struct conf_run *R);
int64_t conf_now_ms(void);
void conf_sleep_ms(int ms);

/* watches.c */
#define CONF_MAX_WATCHES 32 /* >= --max-watches plus the scenarios' two */
bool watches_open(struct conf_run *R, const struct cop *op, long idx);
void watches_poll(struct conf_run *R, int timeout_ms);
/* Wait until every watch reported progress up to rev (15 s at most). */
bool watches_wait(struct conf_run *R, eng_rev_t rev, long idx);
int watches_count(void);
/* Compare every watch's events (counted in R->passed/failed). */
void watches_compare_all(struct conf_run *R);
void watches_close_all(struct conf_run *R);

/* phases.c */
/* The whole keyspace at rev on both sides, compared. */
bool conf_compare_all(struct conf_run *R, long idx, eng_rev_t rev);
/* Two leases of 2 s and 3 s with keys, expired on both sides. */
bool phase_expiry(struct conf_run *R, long idx, int n);
/* Reopen side B and compare everything again, then nops more ops. */
bool phase_restart(struct conf_run *R, long nops);

/* nospace.c: the NOSPACE alarm on an etcd started with a 1 MiB quota
 * against an engine with the same quota; adds to *passed / *failed. */
#define CONF_NOSPACE_QUOTA (1024 * 1024)
void phase_nospace(const char *endpoint, const char *dirbase, int *passed,
                   int *failed);

/* ------------------------------------------------------------- scenarios */

/*
 * main.c runs ops for the scenarios: conf_exec() runs `op` on both sides
 * and compares (a difference is printed, naming the scenario); it frees
 * op's bytes.  The conf_* getters read side A's state.
 */
struct conf_run;
bool conf_exec(struct conf_run *R, struct cop *op);
eng_rev_t conf_cur(struct conf_run *R);
eng_rev_t conf_compact(struct conf_run *R);
int64_t conf_nleases(struct conf_run *R);
const struct gen_state *conf_gen(struct conf_run *R);
extern const char *conf_scenario; /* the running scenario's name, or NULL */

/* scenarios.c: run every scenario; returns the number that failed and
 * adds the passed ones to *passed. */
int scenarios_run(struct conf_run *R, int *passed);

#endif /* REVFS_CONF_H */
