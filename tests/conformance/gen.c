/*
 * gen.c — the seeded random operation generator.
 *
 * A small key space (16 keys, some binary, some at the 0xff edge, plus a
 * few fresh ones) gives keys many versions and generations.  Every choice
 * comes from the seed and from what side 0 answered (the current and
 * compaction revisions), so a seed replays the same sequence as long as
 * the sides agree.  Ops are described with logical lease numbers; each
 * side maps them to its own ids (cop_op_to_eng).
 */
#include "conf.h"

#include <stdlib.h>
#include <string.h>

uint64_t rng_next(struct rng *r)
{
	/* splitmix64: good enough, and one word of state */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

bool rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

static const struct {
	const char *p;
	size_t n;
} keys[] = {
    {"a", 1},        {"a/1", 3},   {"a/2", 3}, {"a/b/c", 5}, {"ab", 2},
    {"b", 1},        {"b/x", 3},   {"b/y", 3}, {"c", 1},     {"c\0d", 3},
    {"c\x01", 2},    {"d\xff", 2}, {"k", 1},   {"zz", 2},    {"\xff", 1},
    {"\xff\xff", 2}, {"a0", 2}, /* the prefix end of "a/": outside [a/, a0) */
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct {
	const char *p;
	size_t n;
} prefixes[] = {
    {"a", 1}, {"a/", 2}, {"b/", 2}, {"c", 1}, {"\xff", 1},
    {"k", 1}, {"q", 1},  {"r/", 2}, {"z", 1},
};
#define NPREFIXES (sizeof(prefixes) / sizeof(prefixes[0]))

static struct cbytes bdup(const void *p, size_t n)
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

static void bfree(struct cbytes *b)
{
	free(b->p);
	b->p = NULL;
	b->n = 0;
}

/* etcd's GetPrefixRangeEnd. */
static struct cbytes prefix_end(const char *p, size_t n)
{
	struct cbytes e = bdup(p, n);

	while (e.n > 0) {
		if ((unsigned char)e.p[e.n - 1] < 0xff) {
			e.p[e.n - 1]++;
			return e;
		}
		e.n--;
	}
	bfree(&e);
	return bdup("\0", 1);
}

static struct cbytes rand_key(struct rng *r)
{
	char buf[16];

	if (rng_pct(r, 6)) { /* a few keys outside the fixed set */
		int n = snprintf(buf, sizeof(buf), "r/%u",
		                 (unsigned)rng_below(r, 40));
		return bdup(buf, (size_t)n);
	}
	if (rng_below(r, 1000) < 4) { /* a long key: 1000-3999 bytes */
		struct cbytes k = bdup("", 0);
		size_t n = 1000 + rng_below(r, 3000);

		free(k.p);
		k.p = malloc(n + 1);
		if (!k.p)
			abort();
		memset(k.p, 'L', n);
		k.p[0] = 'r';
		k.p[1] = '/';
		k.p[n - 1] = (char)('0' + rng_below(r, 3));
		k.p[n] = '\0';
		k.n = n;
		return k;
	}
	unsigned i = (unsigned)rng_below(r, NKEYS);
	return bdup(keys[i].p, keys[i].n);
}

static int bcmp_bytes(const struct cbytes *a, const struct cbytes *b)
{
	size_t n = a->n < b->n ? a->n : b->n;
	int c = memcmp(a->p, b->p, n);

	if (c)
		return c;
	return a->n < b->n ? -1 : a->n > b->n;
}

/* A key range: single, prefix, [a, b) (sometimes reversed), from-key or
 * everything. */
static void rand_range(struct rng *r, const struct gen_state *g,
                       struct cbytes *key, struct cbytes *end)
{
	unsigned k = (unsigned)rng_below(r, 100), i;

	if (k < 35) {
		*key = rand_key(r);
		*end = bdup("", 0);
	} else if (k < 65) {
		i = (unsigned)rng_below(r, NPREFIXES);
		*key = bdup(prefixes[i].p, prefixes[i].n);
		*end = prefix_end(prefixes[i].p, prefixes[i].n);
	} else if (k < 82) {
		*key = rand_key(r);
		*end = rand_key(r);
		/* mostly ordered; a reversed one must match nothing */
		if (bcmp_bytes(key, end) > 0 && !rng_pct(r, 10)) {
			struct cbytes t = *key;

			*key = *end;
			*end = t;
		}
		if (g->no_empty_ranges && bcmp_bytes(key, end) >= 0) {
			bfree(end); /* from-key instead; no RNG drawn */
			*end = bdup("\0", 1);
		}
	} else if (k < 92) {
		*key = rand_key(r);
		*end = bdup("\0", 1);
	} else {
		*key = bdup("\0", 1);
		*end = bdup("\0", 1);
	}
}

static struct cbytes rand_value(struct rng *r, struct gen_state *g,
                                bool allow_huge)
{
	unsigned k = (unsigned)rng_below(r, 1000);
	struct cbytes v;
	size_t n, i;

	if (allow_huge && k < 3) {
		/* over etcd's 1.5 MiB request limit, under its gRPC limit */
		n = 1600 * 1024;
		v = bdup("", 0);
		free(v.p);
		v.p = malloc(n);
		if (!v.p)
			abort();
		memset(v.p, 'H', n);
		v.n = n;
		return v;
	}
	if (k < 100) {
		v = bdup("", 0);
	} else if (k < 500) {
		char buf[32];
		int l = snprintf(buf, sizeof(buf), "v%u",
		                 (unsigned)rng_below(r, 50));

		v = bdup(buf, (size_t)l);
	} else if (k < 850) {
		n = 1 + rng_below(r, 64);
		v = bdup("", 0);
		free(v.p);
		v.p = malloc(n);
		if (!v.p)
			abort();
		for (i = 0; i < n; i++)
			v.p[i] = (char)rng_below(r, 256);
		v.n = n;
	} else {
		n = 100 + rng_below(r, 4000);
		v = bdup("", 0);
		free(v.p);
		v.p = malloc(n);
		if (!v.p)
			abort();
		for (i = 0; i < n; i++)
			v.p[i] = (char)('a' + rng_below(r, 26));
		v.n = n;
	}
	if (v.n < 64) {
		unsigned slot = g->nrecent++ % 8;

		bfree(&g->recent[slot]);
		g->recent[slot] = bdup(v.p, v.n);
	}
	return v;
}

static int64_t rand_lease(struct rng *r, struct gen_state *g)
{
	if (!g->leases || rng_pct(r, 75))
		return 0;
	if (g->nleases == 0 || rng_pct(r, 8))
		return CONF_BOGUS_LEASE;
	return 1 + (int64_t)rng_below(r, (uint64_t)g->nleases);
}

/* A revision to read at: mostly current, sometimes past, at or below the
 * compaction revision, or in the future. */
static eng_rev_t rand_read_rev(struct rng *r, struct gen_state *g)
{
	unsigned k = (unsigned)rng_below(r, 100);
	eng_rev_t lo = g->compact > 0 ? g->compact : 1;

	if (k < 50)
		return 0;
	if (k < 70)
		return lo +
		       (eng_rev_t)rng_below(r, (uint64_t)(g->cur - lo + 1));
	if (k < 78)
		return g->cur;
	if (k < 86 && g->compact > 0)
		return g->compact;
	if (k < 92 && g->compact > 1) {
		eng_rev_t rev = g->compact - 1 - (eng_rev_t)rng_below(r, 3);

		return rev > 0 ? rev : 1;
	}
	return g->cur + 1 + (eng_rev_t)rng_below(r, 3);
}

static void gen_put(struct rng *r, struct gen_state *g, struct cop_op *o,
                    bool allow_huge)
{
	memset(o, 0, sizeof(*o));
	o->type = ENG_OP_PUT;
	if (rng_pct(r, 1))
		o->key =
		    bdup("", 0); /* invalid: etcd's "key is not provided" */
	else
		o->key = rand_key(r);
	o->end = bdup("", 0);
	o->value = rand_value(r, g, allow_huge);
	o->lease = rand_lease(r, g);
	if (rng_pct(r, 30))
		o->flags |= ENG_PUT_PREV_KV;
	if (rng_pct(r, 3)) {
		o->flags |= ENG_PUT_IGNORE_VALUE;
		bfree(&o->value);
		o->value = bdup("", 0);
	} else if (g->leases && rng_pct(r, 3)) {
		o->flags |= ENG_PUT_IGNORE_LEASE;
		o->lease = 0;
	}
}

static void gen_del(struct rng *r, struct gen_state *g, struct cop_op *o)
{
	memset(o, 0, sizeof(*o));
	o->type = ENG_OP_DELETE;
	o->key = bdup("", 0);
	o->value = bdup("", 0);
	if (rng_pct(r, 50)) {
		bfree(&o->key);
		o->key = rand_key(r);
		o->end = bdup("", 0);
	} else {
		bfree(&o->key);
		rand_range(r, g, &o->key, &o->end);
	}
	if (rng_pct(r, 35))
		o->flags |= ENG_DEL_PREV_KV;
}

static void gen_range(struct rng *r, struct gen_state *g, struct cop_op *o,
                      bool in_txn)
{
	memset(o, 0, sizeof(*o));
	o->type = ENG_OP_RANGE;
	rand_range(r, g, &o->key, &o->end);
	o->value = bdup("", 0);
	o->rev = in_txn && rng_pct(r, 70) ? 0 : rand_read_rev(r, g);
	if (rng_pct(r, 40))
		o->limit = 1 + (int64_t)rng_below(r, 4);
	if (rng_pct(r, 15))
		o->flags |= ENG_RANGE_KEYS_ONLY;
	else if (rng_pct(r, 10))
		o->flags |= ENG_RANGE_COUNT_ONLY;
}

static bool in_range(const struct cbytes *k, const struct cop_op *o)
{
	if (o->end.n == 0)
		return bcmp_bytes(k, &o->key) == 0;
	if (bcmp_bytes(k, &o->key) < 0)
		return false;
	if (o->end.n == 1 && o->end.p[0] == '\0')
		return true;
	return bcmp_bytes(k, &o->end) < 0;
}

/* Would etcd call this branch's writes duplicates (checkIntervals)? */
static bool branch_conflicts(const struct cop_op *ops, size_t n, size_t j)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i == j)
			continue;
		if (ops[j].type == ENG_OP_PUT && ops[i].type == ENG_OP_PUT &&
		    bcmp_bytes(&ops[i].key, &ops[j].key) == 0)
			return true;
		if (ops[j].type == ENG_OP_PUT && ops[i].type == ENG_OP_DELETE &&
		    in_range(&ops[j].key, &ops[i]))
			return true;
		if (ops[j].type == ENG_OP_DELETE && ops[i].type == ENG_OP_PUT &&
		    in_range(&ops[i].key, &ops[j]))
			return true;
	}
	return false;
}

static void cop_op_free(struct cop_op *o)
{
	bfree(&o->key);
	bfree(&o->end);
	bfree(&o->value);
}

static size_t gen_branch(struct rng *r, struct gen_state *g, struct cop_op *ops,
                         bool dup)
{
	size_t n = (size_t)rng_below(r, 5), i, m = 0;

	for (i = 0; i < n; i++) {
		unsigned k = (unsigned)rng_below(r, 100);

		if (k < 45)
			gen_put(r, g, &ops[m], false);
		else if (k < 70)
			gen_del(r, g, &ops[m]);
		else
			gen_range(r, g, &ops[m], true);
		if (ops[m].type == ENG_OP_RANGE && m > 0 &&
		    ops[m - 1].type == ENG_OP_PUT && ops[m - 1].key.n &&
		    rng_pct(r, 50)) {
			/* read back the put before it: the txn sees its own
			 * write */
			bfree(&ops[m].key);
			bfree(&ops[m].end);
			ops[m].key = bdup(ops[m - 1].key.p, ops[m - 1].key.n);
			ops[m].end = bdup("", 0);
		}
		if (ops[m].type != ENG_OP_RANGE && ops[m].key.n == 0) {
			cop_op_free(&ops[m]); /* keep txns valid otherwise */
			continue;
		}
		if (branch_conflicts(ops, m + 1, m)) {
			cop_op_free(&ops[m]);
			continue;
		}
		m++;
	}
	if (dup) {
		/* a second put of a key this branch writes, or of a fresh
		 * key twice */
		size_t src = m;

		for (i = 0; i < m; i++)
			if (ops[i].type == ENG_OP_PUT)
				src = i;
		gen_put(r, g, &ops[m], false);
		if (src < m) {
			bfree(&ops[m].key);
			ops[m].key = bdup(ops[src].key.p, ops[src].key.n);
			m++;
		} else {
			if (ops[m].key.n == 0) {
				bfree(&ops[m].key);
				ops[m].key = bdup("k", 1);
			}
			gen_put(r, g, &ops[m + 1], false);
			bfree(&ops[m + 1].key);
			ops[m + 1].key = bdup(ops[m].key.p, ops[m].key.n);
			m += 2;
		}
	}
	return m;
}

static void gen_cmp(struct rng *r, struct gen_state *g, struct ccmp *c)
{
	memset(c, 0, sizeof(*c));
	if (rng_pct(r, 15)) {
		rand_range(r, g, &c->key, &c->end);
	} else {
		c->key = rand_key(r);
		c->end = bdup("", 0);
	}
	c->target = (enum eng_cmp_target)rng_below(r, 5);
	if (!g->leases && c->target == ENG_CMP_LEASE)
		c->target = ENG_CMP_VERSION;
	c->result = (enum eng_cmp_result)rng_below(r, 4);
	c->value = bdup("", 0);
	switch (c->target) {
	case ENG_CMP_VERSION:
		c->number = (int64_t)rng_below(r, 5);
		break;
	case ENG_CMP_CREATE:
	case ENG_CMP_MOD:
		c->number =
		    rng_pct(r, 15) ? 0 : g->cur - (int64_t)rng_below(r, 20) + 1;
		break;
	case ENG_CMP_VALUE:
		bfree(&c->value);
		if (g->nrecent && rng_pct(r, 80)) {
			unsigned n = g->nrecent < 8 ? g->nrecent : 8;
			struct cbytes *v = &g->recent[rng_below(r, n)];

			c->value = bdup(v->p, v->n);
		} else {
			c->value = bdup("v7", 2);
		}
		break;
	case ENG_CMP_LEASE:
		c->number =
		    g->nleases && rng_pct(r, 60)
		        ? 1 + (int64_t)rng_below(r, (uint64_t)g->nleases)
		        : 0;
		/* The sides' ids for one lease differ (etcd picks its own),
		 * so only = and != against a lease, or any order against 0,
		 * mean the same on both. */
		if (c->number && c->result > ENG_CMP_NE)
			c->result -= 2;
		break;
	}
}

static void gen_txn(struct rng *r, struct gen_state *g, struct cop *op)
{
	size_t i;
	bool dup = rng_pct(r, 6);
	bool dup_in_fail = rng_pct(r, 50);

	op->ncmps = (size_t)rng_below(r, 4);
	for (i = 0; i < op->ncmps; i++)
		gen_cmp(r, g, &op->cmps[i]);
	op->nsucc = gen_branch(r, g, op->succ, dup && !dup_in_fail);
	op->nfail = gen_branch(r, g, op->fail, dup && dup_in_fail);
}

static void gen_compact(struct rng *r, struct gen_state *g, struct cop *op)
{
	unsigned k = (unsigned)rng_below(r, 100);

	op->wait = rng_pct(r, 50);
	if (g->compact > 0 && k < 15) /* already compacted */
		op->rev =
		    g->compact - (eng_rev_t)rng_below(r, (uint64_t)g->compact);
	else if (k < 20)
		op->rev = g->cur + 1 + (eng_rev_t)rng_below(r, 2);
	else if (k < 45 || g->cur <= g->compact)
		op->rev = g->cur;
	else
		op->rev =
		    g->compact + 1 +
		    (eng_rev_t)rng_below(r, (uint64_t)(g->cur - g->compact));
	if (op->rev < 1)
		op->rev = 1;
}

int gen_nwatch_kinds(void)
{
	return 5;
}

void gen_watch_range(int kind, struct cbytes *key, struct cbytes *end)
{
	switch (kind) {
	case 0: /* everything */
		*key = bdup("\0", 1);
		*end = bdup("\0", 1);
		break;
	case 1:
		*key = bdup("a/", 2);
		*end = prefix_end("a/", 2);
		break;
	case 2:
		*key = bdup("b", 1);
		*end = bdup("", 0);
		break;
	case 3:
		*key = bdup("c", 1);
		*end = prefix_end("c", 1);
		break;
	case 4:
		*key = bdup("\xff", 1);
		*end = bdup("\0", 1);
		break;
	default: /* GEN_WATCH_SCENARIO: the scenarios' own prefix */
		*key = bdup("s/", 2);
		*end = prefix_end("s/", 2);
		break;
	}
}

static void gen_watch(struct rng *r, struct gen_state *g, struct cop *op)
{
	unsigned k = (unsigned)rng_below(r, 100);
	eng_rev_t lo = g->compact > 0 ? g->compact : 1;

	op->watch_kind = (int)rng_below(r, (uint64_t)gen_nwatch_kinds());
	if (k < 20)
		op->rev = 0;
	else if (k < 30)
		op->rev = g->cur + 1;
	else if (k < 36) /* a future start: events come when it is reached */
		op->rev = g->cur + 3;
	else if (k < 70)
		op->rev =
		    lo + (eng_rev_t)rng_below(r, (uint64_t)(g->cur - lo + 1));
	else if (k < 85 && g->compact > 0)
		op->rev = g->compact;
	else if (g->compact > 1)
		op->rev = g->compact - 1;
	else
		op->rev = 1;
}

void gen_op(struct rng *r, struct gen_state *g, struct cop *op)
{
	unsigned k = (unsigned)rng_below(r, 1000);

	memset(op, 0, sizeof(*op));
	op->via_txn = rng_pct(r, 30);
	if (g->watches && g->nwatches < g->max_watches && k < 8) {
		op->kind = C_WATCH;
		gen_watch(r, g, op);
	} else if (k < 23) {
		op->kind = C_COMPACT;
		gen_compact(r, g, op);
	} else if (g->leases && k < 55) {
		op->kind = C_LEASE_GRANT;
		op->ttl = rng_pct(r, 50) ? 600 : 3600;
		op->lease = g->nleases + 1;
		if (g->nleases > 0 && rng_pct(r, 8)) {
			op->reuse =
			    1 + (int64_t)rng_below(r, (uint64_t)g->nleases);
		} else if (rng_pct(r, 55)) {
			op->explicit_id = true;
			op->id = (eng_lease_t)(((uint64_t)1 << 40) +
			                       rng_below(r, (uint64_t)1 << 40));
		}
	} else if (g->leases && k < 95) {
		static const enum cop_kind kinds[] = {
		    C_LEASE_REVOKE, C_LEASE_TTL, C_LEASE_KEEPALIVE};

		op->kind = kinds[rng_below(r, 3)];
		op->lease =
		    g->nleases && rng_pct(r, 88)
		        ? 1 + (int64_t)rng_below(r, (uint64_t)g->nleases)
		        : CONF_BOGUS_LEASE;
	} else if (k < 450) {
		op->kind = C_PUT;
		gen_put(r, g, &op->op, true);
	} else if (k < 560) {
		op->kind = C_DEL;
		gen_del(r, g, &op->op);
	} else if (k < 820) {
		op->kind = C_RANGE;
		gen_range(r, g, &op->op, false);
	} else {
		op->kind = C_TXN;
		gen_txn(r, g, op);
	}
}

void gen_state_free(struct gen_state *g)
{
	unsigned i;

	for (i = 0; i < 8; i++)
		bfree(&g->recent[i]);
}

void cop_free(struct cop *op)
{
	size_t i;

	cop_op_free(&op->op);
	for (i = 0; i < op->ncmps; i++) {
		bfree(&op->cmps[i].key);
		bfree(&op->cmps[i].end);
		bfree(&op->cmps[i].value);
	}
	for (i = 0; i < op->nsucc; i++)
		cop_op_free(&op->succ[i]);
	for (i = 0; i < op->nfail; i++)
		cop_op_free(&op->fail[i]);
	memset(op, 0, sizeof(*op));
}

void cop_op_to_eng(int side, const struct cop_op *in, struct eng_op *out)
{
	memset(out, 0, sizeof(*out));
	out->type = in->type;
	out->key = in->key.p;
	out->key_len = in->key.n;
	out->end = in->end.n ? in->end.p : NULL;
	out->end_len = in->end.n;
	out->value = in->value.p;
	out->value_len = in->value.n;
	out->lease = conf_lease_id(side, in->lease);
	out->flags = in->flags;
	out->rev = in->rev;
	out->limit = in->limit;
}

static void op_print(FILE *f, const struct cop_op *o)
{
	static const char *const tn[] = {"range", "put", "delete"};

	fprintf(f, "%s key=", tn[o->type]);
	bytes_print(f, o->key.p, o->key.n);
	if (o->end.n) {
		fprintf(f, " end=");
		bytes_print(f, o->end.p, o->end.n);
	}
	if (o->type == ENG_OP_PUT) {
		fprintf(f, " value=");
		bytes_print(f, o->value.p, o->value.n);
		if (o->lease)
			fprintf(f, " lease=L%lld", (long long)o->lease);
	}
	if (o->rev)
		fprintf(f, " rev=%lld", (long long)o->rev);
	if (o->limit)
		fprintf(f, " limit=%lld", (long long)o->limit);
	if (o->flags)
		fprintf(f, " flags=0x%x", o->flags);
}

void cop_print(FILE *f, const struct cop *op)
{
	static const char *const targ[] = {"VERSION", "CREATE", "MOD", "VALUE",
	                                   "LEASE"};
	static const char *const res[] = {"=", "!=", "<", ">"};
	size_t i;

	switch (op->kind) {
	case C_PUT:
	case C_DEL:
	case C_RANGE:
		op_print(f, &op->op);
		if (op->via_txn && op->kind != C_RANGE)
			fprintf(f, " (engine: through eng_txn)");
		break;
	case C_TXN:
		fprintf(f, "txn if");
		for (i = 0; i < op->ncmps; i++) {
			const struct ccmp *c = &op->cmps[i];

			fprintf(f, "%s %s(", i ? " &&" : "", targ[c->target]);
			bytes_print(f, c->key.p, c->key.n);
			if (c->end.n) {
				fputc(',', f);
				bytes_print(f, c->end.p, c->end.n);
			}
			fprintf(f, ") %s ", res[c->result]);
			if (c->target == ENG_CMP_VALUE)
				bytes_print(f, c->value.p, c->value.n);
			else if (c->target == ENG_CMP_LEASE)
				fprintf(f, "L%lld", (long long)c->number);
			else
				fprintf(f, "%lld", (long long)c->number);
		}
		fprintf(f, "\n    then:");
		for (i = 0; i < op->nsucc; i++) {
			fprintf(f, "\n      ");
			op_print(f, &op->succ[i]);
		}
		fprintf(f, "\n    else:");
		for (i = 0; i < op->nfail; i++) {
			fprintf(f, "\n      ");
			op_print(f, &op->fail[i]);
		}
		break;
	case C_COMPACT:
		fprintf(f, "compact rev=%lld%s", (long long)op->rev,
		        op->wait ? " (engine waits)" : "");
		break;
	case C_LEASE_GRANT:
		fprintf(f, "lease grant L%lld ttl=%lld", (long long)op->lease,
		        (long long)op->ttl);
		if (op->explicit_id)
			fprintf(f, " id=%lld", (long long)op->id);
		if (op->reuse)
			fprintf(f, " id=that of L%lld", (long long)op->reuse);
		break;
	case C_LEASE_REVOKE:
		fprintf(f, "lease revoke L%lld", (long long)op->lease);
		break;
	case C_LEASE_TTL:
		fprintf(f, "lease time-to-live L%lld (keys)",
		        (long long)op->lease);
		break;
	case C_LEASE_KEEPALIVE:
		fprintf(f, "lease keepalive L%lld", (long long)op->lease);
		break;
	case C_LEASE_LIST:
		fprintf(f, "lease list");
		break;
	case C_WATCH:
		fprintf(f, "watch kind %d from rev %lld", op->watch_kind,
		        (long long)op->rev);
		break;
	}
}
