/*
 * main.c — the conformance driver: replay one seeded random sequence of
 * operations on two sides (a real etcd, and the revfs engine or a second
 * etcd with --endpoint2) and compare every answer.
 *
 *   conformance --endpoint URL [--endpoint2 URL] [--seed S] [--ops N]
 *               [--expiries K] [--no-leases] [--no-watches] [--verbose]
 *   conformance --nospace URL    (the NOSPACE probes of nospace.c only)
 *
 * After every operation both sides' current revisions must agree too.
 * Watches opened during the sequence are compared at the end, event by
 * event.  Lease expiry runs in a few pauses of the sequence (a TTL of 2 s
 * with keys attached; both sides must drop the lease and its keys in one
 * revision).  The first difference prints the seed, the op index, the op
 * and both answers, and the exit code is 1.  The last line is
 * "N passed, N failed" over the checks (sequence, each watch, each
 * expiry), the form tests/run.sh sums.
 */
#include "conf.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

bool conf_verbose;
const char *conf_scenario;

/* ------------------------------------------------------------- leases */

#define BOGUS_ID ((eng_lease_t)0x7eadbeef12345LL)

static struct {
	eng_lease_t id[2];
} * leases; /* index = logical number - 1 */
static int64_t nleases, capleases;

eng_lease_t conf_lease_id(int side, int64_t logical)
{
	if (logical == 0)
		return 0;
	if (logical == CONF_BOGUS_LEASE || logical > nleases)
		return BOGUS_ID;
	return leases[logical - 1].id[side];
}

int64_t conf_lease_logical(int side, eng_lease_t id)
{
	int64_t i;

	if (id == 0)
		return 0;
	for (i = nleases; i > 0; i--) /* newest first: ids can be reused */
		if (leases[i - 1].id[side] == id)
			return i;
	return -1;
}

static void lease_add(eng_lease_t id0, eng_lease_t id1)
{
	if (nleases == capleases) {
		capleases = capleases ? 2 * capleases : 16;
		leases = realloc(leases, (size_t)capleases * sizeof(*leases));
		if (!leases)
			abort();
	}
	leases[nleases].id[0] = id0;
	leases[nleases].id[1] = id1;
	nleases++;
}

/* ------------------------------------------------------------ watches */

/* ------------------------------------------------------------ driver */

/* What the sequence exercised (side A's answers), printed at the end so a
 * generator change that stops covering something shows. */
static struct {
	long n, err;
} tally[C_WATCH + 1];
static long tally_err[32];
static long tally_failed_txn;

static void tally_add(const struct cop *op, const struct cres *r)
{
	tally[op->kind].n++;
	if (r->err) {
		tally[op->kind].err++;
		if (-r->err > 0 && -r->err < 32)
			tally_err[-r->err]++;
	} else if (op->kind == C_TXN && !r->succeeded) {
		tally_failed_txn++;
	}
}

static void tally_print(void)
{
	static const char *const names[] = {
	    "put",       "delete",      "range",        "txn",
	    "compact",   "lease-grant", "lease-revoke", "lease-ttl",
	    "keepalive", "lease-list",  "watch"};
	int i;

	printf("# ops:");
	for (i = 0; i <= C_WATCH; i++)
		printf(" %s %ld (%ld errors)%s", names[i], tally[i].n,
		       tally[i].err, i < C_WATCH ? "," : "");
	printf("; txns taking the failure branch: %ld\n# errors:",
	       tally_failed_txn);
	for (i = 1; i < 32; i++)
		if (tally_err[i])
			printf(" %s %ld", eng_strerror(-i), tally_err[i]);
	printf("\n");
}

int64_t conf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void conf_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

void conf_diff_header(struct conf_run *R, long idx, const char *why)
{
	if (conf_scenario)
		printf("DIFFERENCE in scenario \"%s\": %s\n", conf_scenario,
		       why);
	else
		printf("DIFFERENCE at op #%ld (seed %llu): %s\n", idx,
		       (unsigned long long)R->seed, why);
}

void conf_diff_footer(struct conf_run *R)
{
	printf("  sides: A = %s, B = %s\n", R->side[0].name, R->side[1].name);
	printf("  replay: %s --seed %llu --ops %ld\n", R->replay,
	       (unsigned long long)R->seed, R->nops);
	fflush(stdout);
}

/* Run a logical op on one side. */
static void exec_on(struct side *s, const struct cop *op, struct cres *r)
{
	struct eng_op succ[CONF_MAX_BRANCH], fail[CONF_MAX_BRANCH], one;
	struct eng_cmp cmps[4];
	struct eng_txn txn;
	size_t i;

	memset(r, 0, sizeof(*r));
	switch (op->kind) {
	case C_PUT:
	case C_DEL:
		cop_op_to_eng(s->idx, &op->op, &one);
		if (op->via_txn ||
		    (op->op.flags & ~(unsigned)ENG_PUT_PREV_KV) ||
		    (op->kind == C_DEL && op->op.flags)) {
			memset(&txn, 0, sizeof(txn));
			txn.success = &one;
			txn.nsuccess = 1;
			s->ops->txn(s, &txn, r);
		} else if (op->kind == C_PUT) {
			s->ops->put(s, &one, r);
		} else {
			s->ops->del(s, &one, r);
		}
		break;
	case C_RANGE: {
		struct eng_range_req q;

		memset(&q, 0, sizeof(q));
		q.key = op->op.key.p;
		q.key_len = op->op.key.n;
		q.end = op->op.end.n ? op->op.end.p : NULL;
		q.end_len = op->op.end.n;
		q.rev = op->op.rev;
		q.limit = op->op.limit;
		q.flags = op->op.flags;
		s->ops->range(s, &q, r);
		break;
	}
	case C_TXN:
		for (i = 0; i < op->ncmps; i++) {
			const struct ccmp *c = &op->cmps[i];

			memset(&cmps[i], 0, sizeof(cmps[i]));
			cmps[i].key = c->key.p;
			cmps[i].key_len = c->key.n;
			cmps[i].end = c->end.n ? c->end.p : NULL;
			cmps[i].end_len = c->end.n;
			cmps[i].target = c->target;
			cmps[i].result = c->result;
			cmps[i].number = c->target == ENG_CMP_LEASE
			                     ? conf_lease_id(s->idx, c->number)
			                     : c->number;
			cmps[i].value = c->value.p;
			cmps[i].value_len = c->value.n;
		}
		for (i = 0; i < op->nsucc; i++)
			cop_op_to_eng(s->idx, &op->succ[i], &succ[i]);
		for (i = 0; i < op->nfail; i++)
			cop_op_to_eng(s->idx, &op->fail[i], &fail[i]);
		txn.cmps = cmps;
		txn.ncmps = op->ncmps;
		txn.success = succ;
		txn.nsuccess = op->nsucc;
		txn.failure = fail;
		txn.nfailure = op->nfail;
		s->ops->txn(s, &txn, r);
		break;
	case C_COMPACT:
		s->ops->compact(s, op->rev, op->wait, r);
		break;
	case C_LEASE_REVOKE:
		s->ops->lease_revoke(s, conf_lease_id(s->idx, op->lease), r);
		break;
	case C_LEASE_TTL:
		s->ops->lease_ttl(s, conf_lease_id(s->idx, op->lease), r);
		break;
	case C_LEASE_KEEPALIVE:
		s->ops->lease_keepalive(s, conf_lease_id(s->idx, op->lease), r);
		break;
	case C_LEASE_LIST:
		s->ops->lease_list(s, r);
		break;
	case C_LEASE_GRANT:
	case C_WATCH:
		break; /* handled by the caller: they record per-side state */
	}
}

/* Both sides' current revisions must agree; g.cur follows them. */
bool conf_check_revs(struct conf_run *R, long idx, const struct cop *op)
{
	eng_rev_t rev[2] = {0, 0};
	int rc[2], s;

	for (s = 0; s < 2; s++)
		rc[s] = R->side[s].ops->current_rev(&R->side[s], &rev[s]);
	if (rc[0] || rc[1] || rev[0] != rev[1]) {
		conf_diff_header(R, idx,
		                 "current revision differs after the op");
		if (op) {
			printf("  op: ");
			cop_print(stdout, op);
			printf("\n");
		}
		printf("  A: rev %lld (rc %d)\n  B: rev %lld (rc %d)\n",
		       (long long)rev[0], rc[0], (long long)rev[1], rc[1]);
		conf_diff_footer(R);
		return false;
	}
	R->g.cur = rev[0];
	return true;
}

static bool compare_res(struct conf_run *R, long idx, const struct cop *op,
                        struct cres *r)
{
	char why[160];

	if (cres_equal(&r[0], &r[1], why, sizeof(why)))
		return true;
	conf_diff_header(R, idx, why);
	printf("  op: ");
	cop_print(stdout, op);
	printf("\n");
	cres_print(stdout, "A", &r[0]);
	cres_print(stdout, "B", &r[1]);
	conf_diff_footer(R);
	return false;
}

/* Run one generated op on both sides and compare; false on a difference. */
bool conf_step(struct conf_run *R, long idx, struct cop *op)
{
	struct cres r[2];
	eng_lease_t ids[2] = {0, 0};
	bool ok = true;
	int s;

	if (op->kind == C_WATCH) {
		tally[C_WATCH].n++;
		return watches_open(R, op, idx);
	}
	if (op->kind == C_COMPACT && watches_count() &&
	    !watches_wait(R, R->g.cur, idx))
		return false;
	for (s = 0; s < 2; s++) {
		if (op->kind == C_LEASE_GRANT) {
			eng_lease_t id = op->explicit_id ? op->id : 0;

			if (op->reuse)
				id = conf_lease_id(s, op->reuse);
			memset(&r[s], 0, sizeof(r[s]));
			R->side[s].ops->lease_grant(&R->side[s], id, op->ttl,
			                            &ids[s], &r[s]);
			if (!r[s].err && op->explicit_id && ids[s] != op->id) {
				printf("%s granted id %lld, asked for %lld\n",
				       R->side[s].name, (long long)ids[s],
				       (long long)op->id);
				r[s].err = ENG_E_INTERNAL;
			}
		} else {
			exec_on(&R->side[s], op, &r[s]);
		}
	}
	if (conf_verbose) {
		printf("#%ld ", idx);
		cop_print(stdout, op);
		printf("\n");
		cres_print(stdout, "A", &r[0]);
	}
	if (R->corrupt >= 0 && idx >= R->corrupt) {
		/* prove the checker fails: B's answer is made wrong */
		R->corrupt = -1;
		if (r[1].err)
			r[1].err = ENG_E_INTERNAL;
		else
			r[1].rev++;
	}
	ok = compare_res(R, idx, op, r);
	tally_add(op, &r[0]);
	if (ok && op->kind == C_LEASE_GRANT && !r[0].err) {
		lease_add(ids[0], ids[1]);
		R->g.nleases = nleases;
	}
	if (ok && op->kind == C_COMPACT && !r[0].err)
		R->g.compact = op->rev;
	cres_free(&r[0]);
	cres_free(&r[1]);
	return ok && conf_check_revs(R, idx, op);
}

bool conf_exec(struct conf_run *R, struct cop *op)
{
	bool ok = conf_step(R, -1, op);

	cop_free(op);
	watches_poll(R, 0);
	return ok;
}

eng_rev_t conf_cur(struct conf_run *R)
{
	return R->g.cur;
}

eng_rev_t conf_compact(struct conf_run *R)
{
	return R->g.compact;
}

int64_t conf_nleases(struct conf_run *R)
{
	return nleases;
}

const struct gen_state *conf_gen(struct conf_run *R)
{
	return &R->g;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: conformance --endpoint URL [--endpoint2 URL | "
	        "--engine-etcd URL] [--seed S] "
	        "[--ops N]\n"
	        "                   [--expiries K] [--no-leases] "
	        "[--no-watches] [--max-watches N]\n"
	        "                   [--dir DIR] [--progress-ms MS] "
	        "[--verbose] [--corrupt OP]\n"
	        "                   [--no-scenarios] [--no-restart] "
	        "[--no-empty-ranges]\n"
	        "       conformance --nospace URL [--dir DIR]\n"
	        "Side A is the etcd at --endpoint; side B is the revfs engine "
	        "in a fresh\n"
	        "directory (under --dir, default $TMPDIR), or the etcd at "
	        "--endpoint2, or the\n"
	        "engine's etcd backend (eng_open_etcd) on the etcd at "
	        "--engine-etcd.  --corrupt\n"
	        "falsifies B's answer at op OP (a check of the checker: the "
	        "run must then fail).\n"
	        "--no-empty-ranges replaces the random [k, e) with e <= k by "
	        "[k, \\0): it looks\n"
	        "past that known difference of the etcd backend "
	        "(docs/conformance.md).\n"
	        "--nospace: the NOSPACE alarm against the etcd at URL, which "
	        "must run with\n"
	        "--quota-backend-bytes 1048576 (an engine gets the same "
	        "quota).\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"endpoint", required_argument, NULL, 'e'},
	    {"endpoint2", required_argument, NULL, 'E'},
	    {"engine-etcd", required_argument, NULL, 'B'},
	    {"seed", required_argument, NULL, 's'},
	    {"ops", required_argument, NULL, 'n'},
	    {"expiries", required_argument, NULL, 'x'},
	    {"no-leases", no_argument, NULL, 'L'},
	    {"no-watches", no_argument, NULL, 'W'},
	    {"max-watches", required_argument, NULL, 'w'},
	    {"dir", required_argument, NULL, 'd'},
	    {"progress-ms", required_argument, NULL, 'p'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"corrupt", required_argument, NULL, 'C'},
	    {"no-scenarios", no_argument, NULL, 'S'},
	    {"no-restart", no_argument, NULL, 'R'},
	    {"no-empty-ranges", no_argument, NULL, 'Z'},
	    {"nospace", required_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *ep = NULL, *ep2 = NULL, *epb = NULL, *dirbase = NULL;
	const char *nospace = NULL;
	char dir[4096] = "", replay[8192];
	struct conf_run R;
	struct timeval tv;
	bool seq_ok = true, scen = true, skip_seq_count = false, restart = true;
	int c, rc, i, progress_ms = 100;
	long idx, next_expiry = -1, expiries_done = 0;
	int64_t t0;

	setvbuf(stdout, NULL, _IOLBF, 0); /* a crash keeps what was said */
	memset(&R, 0, sizeof(R));
	gettimeofday(&tv, NULL);
	R.seed = (uint64_t)tv.tv_sec * 1000003u ^ (uint64_t)tv.tv_usec ^
	         (uint64_t)getpid();
	R.seed %= 1000000000;
	R.nops = 2000;
	R.corrupt = -1;
	R.expiries = 2;
	R.g.leases = true;
	R.g.watches = true;
	R.g.max_watches = 10;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			ep = optarg;
			break;
		case 'E':
			ep2 = optarg;
			break;
		case 'B':
			epb = optarg;
			break;
		case 's':
			R.seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			R.nops = strtol(optarg, NULL, 0);
			break;
		case 'x':
			R.expiries = atoi(optarg);
			break;
		case 'L':
			R.g.leases = false;
			break;
		case 'W':
			R.g.watches = false;
			break;
		case 'w':
			R.g.max_watches = atoi(optarg);
			if (R.g.max_watches > CONF_MAX_WATCHES)
				R.g.max_watches = CONF_MAX_WATCHES;
			break;
		case 'd':
			dirbase = optarg;
			break;
		case 'p':
			progress_ms = atoi(optarg);
			break;
		case 'v':
			conf_verbose = true;
			break;
		case 'C':
			R.corrupt = strtol(optarg, NULL, 0);
			break;
		case 'S':
			scen = false;
			break;
		case 'R':
			restart = false;
			break;
		case 'Z':
			R.g.no_empty_ranges = true;
			break;
		case 'N':
			nospace = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (nospace) {
		phase_nospace(nospace, dirbase, &R.passed, &R.failed);
		printf("conformance: %d passed, %d failed (NOSPACE)\n",
		       R.passed, R.failed);
		return R.failed ? 1 : 0;
	}
	if (!ep || R.nops < 1) {
		usage(stderr);
		return 2;
	}
	if (!R.g.leases)
		R.expiries = 0;
	R.rng.s = R.seed;
	snprintf(replay, sizeof(replay), "%s --endpoint URL%s%s%s%s%s", argv[0],
	         ep2   ? " --endpoint2 URL2"
	         : epb ? " --engine-etcd URL2"
	               : "",
	         R.g.leases ? "" : " --no-leases",
	         R.g.watches ? "" : " --no-watches",
	         R.expiries != 2 && R.g.leases ? " --expiries K" : "",
	         R.g.no_empty_ranges ? " --no-empty-ranges" : "");
	R.replay = replay;
	printf("conformance: seed %llu, %ld ops, A = etcd, B = %s\n",
	       (unsigned long long)R.seed, R.nops,
	       ep2   ? "etcd"
	       : epb ? "the engine's etcd backend"
	             : "engine");
	fflush(stdout);

	rc = side_etcd_open(&R.side[0], 0, ep);
	if (rc) {
		fprintf(stderr, "etcd %s: %s\n", ep, eng_strerror(rc));
		return 2;
	}
	if (ep2) {
		rc = side_etcd_open(&R.side[1], 1, ep2);
	} else if (epb) {
		rc = side_engine_open_etcd(&R.side[1], 1, epb, progress_ms);
	} else {
		snprintf(dir, sizeof(dir), "%s/revfs-conf.XXXXXX",
		         dirbase            ? dirbase
		         : getenv("TMPDIR") ? getenv("TMPDIR")
		                            : "/tmp");
		if (!mkdtemp(dir)) {
			fprintf(stderr, "mkdtemp %s: %s\n", dir,
			        strerror(errno));
			R.side[0].ops->close(&R.side[0]);
			return 2;
		}
		strcat(dir, "/store"); /* the engine creates it (0700) */
		rc = side_engine_open(&R.side[1], 1, dir, progress_ms);
	}
	if (rc) {
		fprintf(stderr, "side B: open failed: %s\n", eng_strerror(rc));
		R.side[0].ops->close(&R.side[0]);
		return 2;
	}
	t0 = conf_now_ms();
	if (!conf_check_revs(&R, -1, NULL))
		seq_ok = false;
	if (seq_ok && scen) {
		int f = scenarios_run(&R, &R.passed);

		R.failed += f;
		if (f) {
			printf("not ok - the random sequence is skipped: the "
			       "sides differ already\n");
			seq_ok = false;
			skip_seq_count = true;
		}
	}
	if (R.expiries > 0)
		next_expiry = R.nops / (R.expiries + 1);
	for (idx = 0; seq_ok && idx < R.nops; idx++) {
		struct cop op;

		if (idx == next_expiry) {
			if (!phase_expiry(&R, idx, (int)expiries_done + 1)) {
				R.failed++;
				seq_ok = false;
				break;
			}
			R.passed++;
			expiries_done++;
			next_expiry = expiries_done < R.expiries
			                  ? R.nops * (expiries_done + 1) /
			                        (R.expiries + 1)
			                  : -1;
		}
		gen_op(&R.rng, &R.g, &op);
		if (!conf_step(&R, idx, &op))
			seq_ok = false;
		cop_free(&op);
		watches_poll(&R, 0);
	}
	if (seq_ok) {
		seq_ok = conf_compare_all(&R, R.nops, 0) &&
		         (R.g.compact == 0 ||
		          conf_compare_all(&R, R.nops, R.g.compact));
		if (seq_ok && R.g.leases) {
			struct cop op;

			memset(&op, 0, sizeof(op));
			op.kind = C_LEASE_LIST;
			seq_ok = conf_step(&R, R.nops, &op);
		}
		for (i = 1; seq_ok && i <= nleases; i++) {
			int a = R.side[0].ops->lease_alive(&R.side[0],
			                                   conf_lease_id(0, i));
			int b = R.side[1].ops->lease_alive(&R.side[1],
			                                   conf_lease_id(1, i));

			if (a != b) {
				printf("lease L%d: alive A %d, B %d\n", i, a,
				       b);
				conf_diff_header(&R, R.nops,
				                 "lease liveness differs");
				conf_diff_footer(&R);
				seq_ok = false;
			}
		}
	}
	tally_print();
	if (seq_ok) {
		R.passed++;
		printf("ok - %ld ops: every answer and revision agrees (%lld "
		       "revisions, compacted at %lld, %lld leases, %.1f s)\n",
		       R.nops, (long long)R.g.cur, (long long)R.g.compact,
		       (long long)nleases, (double)(conf_now_ms() - t0) / 1000);
	} else if (!skip_seq_count) {
		R.failed++;
		printf("not ok - op sequence (seed %llu)\n",
		       (unsigned long long)R.seed);
	}
	if (seq_ok && watches_count() && !watches_wait(&R, R.g.cur, R.nops)) {
		R.failed++;
		seq_ok = false;
	} else if (seq_ok) {
		watches_compare_all(&R);
	}
	watches_close_all(&R); /* before a reopen: eng_close needs it */
	R.g.watches = false;
	if (seq_ok && restart && R.side[1].ops->reopen) {
		long more = R.nops / 5 > 0 ? R.nops / 5 : 1;

		if (phase_restart(&R, more)) {
			R.passed++;
			printf("ok - %s reopened: keyspace, compaction, leases "
			       "and %ld more ops agree\n",
			       R.side[1].ops->kind, more);
		} else {
			R.failed++;
			printf("not ok - after reopening %s\n",
			       R.side[1].ops->kind);
		}
	}
	R.side[0].ops->close(&R.side[0]);
	R.side[1].ops->close(&R.side[1]);
	if (dir[0]) {
		char cmd[8300];

		/* our own mkdtemp directory, removed with its store */
		dir[strlen(dir) - strlen("/store")] = '\0';
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	free(leases);
	gen_state_free(&R.g);
	printf("conformance: %d passed, %d failed (seed %llu)\n", R.passed,
	       R.failed, (unsigned long long)R.seed);
	return R.failed ? 1 : 0;
}
