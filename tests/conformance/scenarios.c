/*
 * scenarios.c — fixed operation sequences that pin down etcd behaviours a
 * random sequence meets only by chance (docs/conformance.md lists them):
 * revisions of changes that change nothing, the header of past reads,
 * compaction at the current and at the compaction revision, a watch from
 * the compaction revision after a delete at it, the order of a txn's checks,
 * duplicate keys in the branch that does not run, count/limit/more, and
 * compares on missing keys.
 *
 * They run before the random sequence, on keys under "s/" (which the
 * generator never writes), through main.c's conf_exec(): every answer and
 * the revisions after every op are compared like the random ones.
 */
#include "conf.h"

#include <stdlib.h>
#include <string.h>

static struct cbytes cb(const void *p, size_t n)
{
	struct cbytes b;

	b.p = malloc(n + 1);
	if (!b.p)
		abort();
	if (n)
		memcpy(b.p, p, n);
	b.p[n] = '\0';
	b.n = n;
	return b;
}

static struct cbytes cs(const char *s)
{
	return cb(s, s ? strlen(s) : 0);
}

#define FROM_KEY ((const char *)1) /* range end "\0": every key >= key */

static struct cbytes cend(const char *end)
{
	return end == FROM_KEY ? cb("\0", 1) : cs(end);
}

static void mk_put(struct cop_op *o, const char *k, const char *v,
                   int64_t lease, unsigned flags)
{
	memset(o, 0, sizeof(*o));
	o->type = ENG_OP_PUT;
	o->key = cs(k);
	o->end = cs("");
	o->value = cs(v);
	o->lease = lease;
	o->flags = flags;
}

static void mk_del(struct cop_op *o, const char *k, const char *end,
                   unsigned flags)
{
	memset(o, 0, sizeof(*o));
	o->type = ENG_OP_DELETE;
	o->key = cs(k);
	o->end = cend(end);
	o->value = cs("");
	o->flags = flags;
}

static void mk_range(struct cop_op *o, const char *k, const char *end,
                     eng_rev_t rev, int64_t limit, unsigned flags)
{
	memset(o, 0, sizeof(*o));
	o->type = ENG_OP_RANGE;
	o->key = cs(k);
	o->end = cend(end);
	o->value = cs("");
	o->rev = rev;
	o->limit = limit;
	o->flags = flags;
}

static void mk_cmp(struct ccmp *c, const char *k, enum eng_cmp_target t,
                   enum eng_cmp_result r, int64_t number, const char *value)
{
	memset(c, 0, sizeof(*c));
	c->key = cs(k);
	c->end = cs("");
	c->target = t;
	c->result = r;
	c->number = number;
	c->value = cs(value ? value : "");
}

static bool put(struct conf_run *R, const char *k, const char *v, int64_t lease)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_PUT;
	mk_put(&op.op, k, v, lease, ENG_PUT_PREV_KV);
	return conf_exec(R, &op);
}

static bool del(struct conf_run *R, const char *k, const char *end)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_DEL;
	mk_del(&op.op, k, end, 0);
	return conf_exec(R, &op);
}

static bool get(struct conf_run *R, const char *k, const char *end,
                eng_rev_t rev, int64_t limit, unsigned flags)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_RANGE;
	mk_range(&op.op, k, end, rev, limit, flags);
	return conf_exec(R, &op);
}

static bool compact(struct conf_run *R, eng_rev_t rev)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_COMPACT;
	op.rev = rev;
	op.wait = true;
	return conf_exec(R, &op);
}

/* Grant a lease with an explicit id (the same on both sides). */
static bool grant(struct conf_run *R, eng_lease_t id, int64_t *logical)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_LEASE_GRANT;
	op.explicit_id = true;
	op.id = id;
	op.ttl = 600;
	op.lease = conf_nleases(R) + 1;
	if (!conf_exec(R, &op))
		return false;
	*logical = conf_nleases(R);
	return true;
}

static bool revoke(struct conf_run *R, int64_t logical)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_LEASE_REVOKE;
	op.lease = logical;
	return conf_exec(R, &op);
}

static bool watch(struct conf_run *R, eng_rev_t start)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_WATCH;
	op.watch_kind = GEN_WATCH_SCENARIO;
	op.rev = start;
	return conf_exec(R, &op);
}

/* ---------------------------------------------------------- scenarios */

/* A delete of nothing, a read-only txn, a txn deleting nothing and a
 * revoke without keys take no revision; a put of the same value does. */
static bool sc_noop_revisions(struct conf_run *R)
{
	const struct gen_state *g = conf_gen(R);
	struct cop op;
	int64_t l;

	if (!put(R, "s/a", "1", 0) || !put(R, "s/a", "1", 0) ||
	    !del(R, "s/none", NULL) || !del(R, "s/none/", FROM_KEY))
		return false;
	memset(&op, 0, sizeof(op));
	op.kind = C_TXN;
	mk_range(&op.succ[0], "s/a", NULL, 0, 0, 0);
	mk_del(&op.succ[1], "s/none", NULL, ENG_DEL_PREV_KV);
	op.nsucc = 2;
	if (!conf_exec(R, &op))
		return false;
	if (!g->leases)
		return true;
	return grant(R, 0x5ce0001, &l) && revoke(R, l);
}

/* A range at a past revision answers with the current revision. */
static bool sc_past_header(struct conf_run *R)
{
	eng_rev_t before;

	if (!put(R, "s/p", "old", 0))
		return false;
	before = conf_cur(R);
	return put(R, "s/p", "new", 0) && put(R, "s/q", "x", 0) &&
	       get(R, "s/p", NULL, before, 0, 0) &&
	       get(R, "s/", "s0", before, 0, ENG_RANGE_KEYS_ONLY);
}

/* Compaction at the current revision; reads at, below and above it; a
 * second compaction at it; one in the future. */
static bool sc_compaction_edges(struct conf_run *R)
{
	eng_rev_t r;

	if (!put(R, "s/c", "1", 0) || !del(R, "s/a", NULL))
		return false;
	r = conf_cur(R);
	return compact(R, r) && get(R, "s/", "s0", r, 0, 0) &&
	       get(R, "s/", "s0", r - 1, 0, 0) &&
	       get(R, "s/", "s0", r + 1, 0, 0) && compact(R, r) &&
	       compact(R, r - 1) && compact(R, r + 1) &&
	       get(R, "s/", FROM_KEY, 0, 0, ENG_RANGE_COUNT_ONLY);
}

/* A watch from the compaction revision R, where R is a delete: etcd's
 * history at R has no tombstone.  One from R-1 is compacted. */
static bool sc_watch_at_compaction(struct conf_run *R)
{
	const struct gen_state *g = conf_gen(R);
	eng_rev_t r;

	if (!g->watches)
		return true;
	if (!put(R, "s/w", "1", 0) || !put(R, "s/w2", "2", 0) ||
	    !del(R, "s/w", NULL))
		return false;
	r = conf_cur(R);
	return compact(R, r) && watch(R, r) && watch(R, r - 1) &&
	       put(R, "s/w", "again", 0) && del(R, "s/w2", NULL);
}

/* A txn checks every put of the branch that runs (lease, key exists for
 * ignore_value) before any range (compacted / future). */
static bool sc_txn_check_order(struct conf_run *R)
{
	const struct gen_state *g = conf_gen(R);
	struct cop op;
	int64_t l = 0;

	if (g->leases && (!grant(R, 0x5ce0002, &l) || !revoke(R, l)))
		return false;
	memset(&op, 0, sizeof(op));
	op.kind = C_TXN;
	mk_range(&op.succ[0], "s/", "s0", conf_compact(R) - 1, 0, 0);
	if (g->leases)
		mk_put(&op.succ[1], "s/t", "x", l, 0);
	else
		mk_put(&op.succ[1], "s/t", "", 0, ENG_PUT_IGNORE_VALUE);
	op.nsucc = 2;
	if (!conf_exec(R, &op))
		return false;
	memset(&op, 0, sizeof(op));
	op.kind = C_TXN;
	mk_range(&op.succ[0], "s/", "s0", conf_cur(R) + 5, 0, 0);
	mk_put(&op.succ[1], "s/missing", "", 0, ENG_PUT_IGNORE_VALUE);
	op.nsucc = 2;
	return conf_exec(R, &op);
}

/* A duplicate key fails the txn even in the branch that does not run; a
 * delete range covering a put of the same branch is a duplicate too; two
 * deletes are not. */
static bool sc_dup_keys(struct conf_run *R)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_TXN;
	mk_cmp(&op.cmps[0], "s/none", ENG_CMP_VERSION, ENG_CMP_EQ, 0, NULL);
	op.ncmps = 1;
	mk_put(&op.succ[0], "s/d", "ok", 0, 0);
	op.nsucc = 1;
	mk_put(&op.fail[0], "s/e", "1", 0, 0);
	mk_put(&op.fail[1], "s/e", "2", 0, 0);
	op.nfail = 2;
	if (!conf_exec(R, &op))
		return false;
	memset(&op, 0, sizeof(op));
	op.kind = C_TXN;
	mk_del(&op.succ[0], "s/", "s0", 0);
	mk_put(&op.succ[1], "s/d", "x", 0, 0);
	op.nsucc = 2;
	if (!conf_exec(R, &op))
		return false;
	memset(&op, 0, sizeof(op));
	op.kind = C_TXN;
	mk_del(&op.succ[0], "s/", "s0", ENG_DEL_PREV_KV);
	mk_del(&op.succ[1], "s/d", NULL, 0);
	mk_range(&op.succ[2], "s/", "s0", 0, 0, 0);
	op.nsucc = 3;
	return conf_exec(R, &op);
}

/* count ignores limit; count_only has no kvs and no more; a reversed range
 * is empty. */
static bool sc_count_limit(struct conf_run *R)
{
	return put(R, "s/l1", "1", 0) && put(R, "s/l2", "2", 0) &&
	       put(R, "s/l3", "3", 0) && get(R, "s/l", "s/m", 0, 2, 0) &&
	       get(R, "s/l", "s/m", 0, 3, 0) &&
	       get(R, "s/l", "s/m", 0, 1, ENG_RANGE_COUNT_ONLY) &&
	       get(R, "s/l", "s/m", 0, 1, ENG_RANGE_KEYS_ONLY) &&
	       get(R, "s/m", "s/l", 0, 0, 0) && get(R, "s/l2", NULL, 0, 5, 0);
}

/* Compares on a missing key: VALUE is false whatever the operator; the
 * numbers compare with 0.  A txn reads its own writes. */
static bool sc_missing_compares(struct conf_run *R)
{
	static const struct {
		enum eng_cmp_target t;
		enum eng_cmp_result r;
		int64_t n;
		const char *v;
	} c[] = {
	    {ENG_CMP_VALUE, ENG_CMP_EQ, 0, ""},
	    {ENG_CMP_VALUE, ENG_CMP_NE, 0, "x"},
	    {ENG_CMP_VERSION, ENG_CMP_EQ, 0, NULL},
	    {ENG_CMP_CREATE, ENG_CMP_LT, 1, NULL},
	    {ENG_CMP_MOD, ENG_CMP_GT, 0, NULL},
	    {ENG_CMP_LEASE, ENG_CMP_EQ, 0, NULL},
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct cop op;

		memset(&op, 0, sizeof(op));
		op.kind = C_TXN;
		mk_cmp(&op.cmps[0], "s/absent", c[i].t, c[i].r, c[i].n, c[i].v);
		op.ncmps = 1;
		mk_put(&op.succ[0], "s/own", "mine", 0, ENG_PUT_PREV_KV);
		mk_range(&op.succ[1], "s/own", NULL, 0, 0, 0);
		op.nsucc = 2;
		mk_range(&op.fail[0], "s/own", NULL, 0, 0, 0);
		op.nfail = 1;
		if (!conf_exec(R, &op))
			return false;
	}
	return true;
}

int scenarios_run(struct conf_run *R, int *passed)
{
	static const struct {
		const char *name;
		bool (*fn)(struct conf_run *R);
	} sc[] = {
	    {"changes that change nothing take no revision", sc_noop_revisions},
	    {"a past read answers with the current revision", sc_past_header},
	    {"compaction at the current and at the compaction revision",
	     sc_compaction_edges},
	    {"a watch from the compaction revision", sc_watch_at_compaction},
	    {"a txn checks its puts before its ranges", sc_txn_check_order},
	    {"duplicate keys, also in the branch that does not run",
	     sc_dup_keys},
	    {"count, limit, more, count_only, reversed ranges", sc_count_limit},
	    {"compares on a missing key; a txn reads its own writes",
	     sc_missing_compares},
	};
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		conf_scenario = sc[i].name;
		if (sc[i].fn(R)) {
			printf("ok - scenario: %s\n", sc[i].name);
			(*passed)++;
		} else {
			printf("not ok - scenario: %s\n", sc[i].name);
			failed++;
			break; /* the sides differ now: later answers would too
			        */
		}
	}
	conf_scenario = NULL;
	return failed;
}
