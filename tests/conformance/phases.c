/*
 * phases.c — the parts of a run outside the op-by-op sequence: full
 * keyspace comparisons, the lease expiry pauses and the engine's reopen.
 * Each goes through conf_step(), so every answer is compared the same way.
 */
#include "conf.h"

#include <stdlib.h>
#include <string.h>

/* A full read of the keyspace at `rev` on both sides, compared. */
bool conf_compare_all(struct conf_run *R, long idx, eng_rev_t rev)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_RANGE;
	op.op.type = ENG_OP_RANGE;
	op.op.key.p = (char *)"\0";
	op.op.key.n = 1;
	op.op.end.p = (char *)"\0";
	op.op.end.n = 1;
	op.op.rev = rev;
	op.op.flags = 0;
	return conf_step(R, idx, &op); /* op's bytes are static: not freed */
}

/* Attach `key` to logical lease `lease` with a put; compared. */
static bool expiry_put(struct conf_run *R, long idx, const char *key,
                       int64_t lease)
{
	struct cop op;

	memset(&op, 0, sizeof(op));
	op.kind = C_PUT;
	op.op.type = ENG_OP_PUT;
	op.op.key.p = (char *)key;
	op.op.key.n = strlen(key);
	op.op.value.p = "expiring";
	op.op.value.n = 8;
	op.op.lease = lease;
	op.op.flags = ENG_PUT_PREV_KV;
	return conf_step(R, idx, &op);
}

/*
 * Two leases, of 2 s and 3 s, with keys: e/N/0 and b/x on the first,
 * e/N/1 on the first and then moved to the second by a put, e/N/2 on the
 * second.  Wait until both sides dropped both; then the revisions (one per
 * lease) and the keyspace must agree, e/N/1 surviving the first expiry.
 */
bool phase_expiry(struct conf_run *R, long idx, int n)
{
	eng_lease_t id = (eng_lease_t)(((uint64_t)1 << 41) +
	                               rng_below(&R->rng, (uint64_t)1 << 40));
	int64_t logical[2], t0 = conf_now_ms(), deadline = t0 + 20000;
	bool gone[2][2] = {{false, false}, {false, false}};
	char key[4][32];
	struct cop op;
	int s, k, l;

	printf("lease expiry %d at op #%ld: lease ids %lld (ttl 2 s) and %lld "
	       "(ttl 3 s)\n",
	       n, idx, (long long)id, (long long)id + 1);
	/* a watch of every key from here on, so the expiries' DELETE events
	 * are compared with etcd's whatever the random watches cover */
	if (R->g.watches && watches_count() < CONF_MAX_WATCHES) {
		memset(&op, 0, sizeof(op));
		op.kind = C_WATCH;
		op.watch_kind = 0;
		op.rev = R->g.cur + 1;
		if (!watches_open(R, &op, idx))
			return false;
	}
	for (l = 0; l < 2; l++) {
		memset(&op, 0, sizeof(op));
		op.kind = C_LEASE_GRANT;
		op.explicit_id = true;
		op.id = id + l;
		op.ttl = 2 + l;
		op.lease = R->g.nleases + 1;
		if (!conf_step(R, idx, &op))
			return false;
		logical[l] = conf_nleases(R);
	}
	for (k = 0; k < 3; k++)
		snprintf(key[k], sizeof(key[k]), "e/%d/%d", n, k);
	snprintf(key[3], sizeof(key[3]), "b/x");
	if (!expiry_put(R, idx, key[0], logical[0]) ||
	    !expiry_put(R, idx, key[3], logical[0]) ||
	    !expiry_put(R, idx, key[1], logical[0]) ||
	    !expiry_put(R, idx, key[1], logical[1]) ||
	    !expiry_put(R, idx, key[2], logical[1]))
		return false;
	while (!gone[0][0] || !gone[0][1] || !gone[1][0] || !gone[1][1]) {
		for (s = 0; s < 2; s++) {
			for (l = 0; l < 2; l++) {
				int a;

				if (gone[s][l])
					continue;
				a = R->side[s].ops->lease_alive(
				    &R->side[s], conf_lease_id(s, logical[l]));
				if (a < 0) {
					printf("%s: lease lookup failed: %s\n",
					       R->side[s].name,
					       eng_strerror(a));
					conf_diff_header(R, idx,
					                 "lease expiry");
					conf_diff_footer(R);
					return false;
				}
				if (a == 0) {
					gone[s][l] = true;
					printf("  %s: lease %d expired after "
					       "%lld ms\n",
					       R->side[s].ops->kind, l + 1,
					       (long long)(conf_now_ms() - t0));
				}
			}
		}
		if (conf_now_ms() > deadline) {
			conf_diff_header(
			    R, idx, "a side did not expire a lease in 20 s");
			conf_diff_footer(R);
			return false;
		}
		conf_sleep_ms(50);
	}
	/* the lease can vanish from a lookup just before its deletions
	 * commit: give both a moment to agree */
	for (k = 0; k < 40; k++) {
		eng_rev_t r0 = 0, r1 = 0;

		R->side[0].ops->current_rev(&R->side[0], &r0);
		R->side[1].ops->current_rev(&R->side[1], &r1);
		if (r0 == r1)
			break;
		conf_sleep_ms(50);
	}
	if (!conf_check_revs(R, idx, NULL))
		return false;
	return conf_compare_all(R, idx, 0);
}

/*
 * Reopen side B (the engine) and check that everything persisted — the
 * keyspace at the current and at the compaction revision, the compaction
 * revision itself, every lease with its keys — then go on with `nops` more
 * random ops (no watches: they were closed for the reopen).
 */
bool phase_restart(struct conf_run *R, long nops)
{
	long base = R->nops, idx;
	int64_t i;
	int rc = R->side[1].ops->reopen(&R->side[1]);

	if (rc) {
		printf("%s: reopen failed: %s\n", R->side[1].name,
		       eng_strerror(rc));
		return false;
	}
	if (!conf_check_revs(R, base, NULL) || !conf_compare_all(R, base, 0))
		return false;
	if (R->g.compact > 0 && (!conf_compare_all(R, base, R->g.compact) ||
	                         !conf_compare_all(R, base, R->g.compact - 1)))
		return false;
	for (i = 1; i <= conf_nleases(R); i++) {
		struct cop op;

		memset(&op, 0, sizeof(op));
		op.kind = C_LEASE_TTL;
		op.lease = i;
		if (!conf_step(R, base, &op))
			return false;
	}
	if (R->g.leases) {
		struct cop op;

		memset(&op, 0, sizeof(op));
		op.kind = C_LEASE_LIST;
		if (!conf_step(R, base, &op))
			return false;
	}
	for (idx = 0; idx < nops; idx++) {
		struct cop op;
		bool ok;

		gen_op(&R->rng, &R->g, &op);
		ok = conf_step(R, base + idx, &op);
		cop_free(&op);
		if (!ok)
			return false;
	}
	return true;
}
