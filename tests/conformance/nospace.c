/*
 * nospace.c — the NOSPACE alarm against etcd (issue 2: "NOSPACE alarm past
 * the quota ... with etcd's meaning").
 *
 * etcd's quota counts bbolt's file and the engine LevelDB's, so the two
 * sides do not cross one quota at the same operation: each is filled on
 * its own until it refuses a put.  Then both get the same probes — a put,
 * txns with a put in the branch that runs, in the one that does not, or in
 * none, deletes, a range, a lease grant, a compaction — and must agree on
 * every answer's error kind and, for a txn that ran, on which branch ran.
 * Revisions and contents are not compared here (the fills differ; the
 * random sequence compares those).  etcd's alarm stays until `alarm
 * disarm` while the engine's clears by itself once compaction brings the
 * files under the quota (issue 2), so nothing is compared after the
 * compaction.
 */
#include "conf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FILL_VALUE (48 * 1024)
#define FILL_MAX   200

/* Both answers agree on the error kind and on the branch that ran. */
static void check(const char *what, struct cres r[2], int *passed, int *failed)
{
	bool same = r[0].err == r[1].err &&
	            (r[0].err || r[0].succeeded == r[1].succeeded);

	if (same) {
		printf("ok - NOSPACE: %s: both %s%s\n", what,
		       r[0].err ? "fail: " : "succeed",
		       r[0].err ? eng_strerror(r[0].err) : "");
		(*passed)++;
	} else {
		printf("not ok - NOSPACE: %s: the answers differ\n", what);
		cres_print(stdout, "etcd", &r[0]);
		cres_print(stdout, "engine", &r[1]);
		(*failed)++;
	}
	cres_free(&r[0]);
	cres_free(&r[1]);
}

/* Put FILL_VALUE bytes under n/NNN until a put fails; the failing put's
 * number (or FILL_MAX) in *at, its error returned. */
static int fill(struct side *s, char *v, int *at)
{
	struct eng_op op = {
	    .type = ENG_OP_PUT, .value = v, .value_len = FILL_VALUE};
	char key[16];
	int i;

	for (i = 0; i < FILL_MAX; i++) {
		struct cres r;
		int err;

		snprintf(key, sizeof(key), "n/%03d", i);
		op.key = key;
		op.key_len = strlen(key);
		v[0] = (char)i; /* every value differs (and none compresses) */
		s->ops->put(s, &op, &r);
		err = r.err;
		cres_free(&r);
		if (err) {
			*at = i;
			return err;
		}
	}
	*at = i;
	return 0;
}

static void probes(struct side sd[2], int *passed, int *failed)
{
	struct eng_cmp holds = {.key = "n/000",
	                        .key_len = 5,
	                        .target = ENG_CMP_VERSION,
	                        .result = ENG_CMP_GT,
	                        .number = 0};
	struct eng_cmp fails = holds;
	struct eng_op put = {.type = ENG_OP_PUT,
	                     .key = "p/small",
	                     .key_len = 7,
	                     .value = "v",
	                     .value_len = 1};
	struct eng_op rng = {
	    .type = ENG_OP_RANGE, .key = "n/000", .key_len = 5};
	struct eng_op del1 = {
	    .type = ENG_OP_DELETE, .key = "n/001", .key_len = 5};
	struct eng_op del2 = {
	    .type = ENG_OP_DELETE, .key = "n/002", .key_len = 5};
	struct {
		const char *what;
		struct eng_txn t;
	} txns[] = {
	    {"a txn whose compare fails, with a put in the branch that does "
	     "not run",
	     {.cmps = &fails,
	      .ncmps = 1,
	      .success = &put,
	      .nsuccess = 1,
	      .failure = &rng,
	      .nfailure = 1}},
	    {"a txn whose compare holds, with a put in the branch that does "
	     "not run",
	     {.cmps = &holds,
	      .ncmps = 1,
	      .success = &rng,
	      .nsuccess = 1,
	      .failure = &put,
	      .nfailure = 1}},
	    {"a txn with a put in the branch that runs",
	     {.cmps = &holds,
	      .ncmps = 1,
	      .success = &put,
	      .nsuccess = 1,
	      .failure = &rng,
	      .nfailure = 1}},
	    {"a txn that only reads", {.success = &rng, .nsuccess = 1}},
	    {"a txn that only deletes", {.success = &del1, .nsuccess = 1}},
	};
	struct eng_range_req req = {.key = "n/",
	                            .key_len = 2,
	                            .end = "n0",
	                            .end_len = 2,
	                            .flags = ENG_RANGE_KEYS_ONLY};
	struct cres r[2];
	eng_lease_t id;
	int s;

	fails.result = ENG_CMP_LT;
	for (s = 0; s < 2; s++)
		sd[s].ops->put(&sd[s], &put, &r[s]);
	check("a small put", r, passed, failed);
	for (size_t i = 0; i < sizeof(txns) / sizeof(txns[0]); i++) {
		for (s = 0; s < 2; s++)
			sd[s].ops->txn(&sd[s], &txns[i].t, &r[s]);
		check(txns[i].what, r, passed, failed);
	}
	for (s = 0; s < 2; s++)
		sd[s].ops->del(&sd[s], &del2, &r[s]);
	check("a lone delete", r, passed, failed);
	for (s = 0; s < 2; s++)
		sd[s].ops->range(&sd[s], &req, &r[s]);
	check("a range", r, passed, failed);
	for (s = 0; s < 2; s++)
		sd[s].ops->lease_grant(&sd[s], 0, 60, &id, &r[s]);
	check("a lease grant", r, passed, failed);
	for (s = 0; s < 2; s++) {
		eng_rev_t cur = 0;

		sd[s].ops->current_rev(&sd[s], &cur);
		sd[s].ops->compact(&sd[s], cur, false, &r[s]);
	}
	check("a compaction at the current revision", r, passed, failed);
}

void phase_nospace(const char *endpoint, const char *dirbase, int *passed,
                   int *failed)
{
	struct side sd[2];
	char dir[4096], cmd[4200];
	char *v = calloc(1, FILL_VALUE);
	int at[2] = {0, 0}, err[2] = {0, 0}, rc;

	snprintf(dir, sizeof(dir), "%s/revfs-nospace.XXXXXX",
	         dirbase            ? dirbase
	         : getenv("TMPDIR") ? getenv("TMPDIR")
	                            : "/tmp");
	if (v) {
		unsigned seed = 1;

		/* random bytes: LevelDB compresses its blocks, bbolt does not
		 */
		for (size_t i = 0; i < FILL_VALUE; i++)
			v[i] = (char)rand_r(&seed);
	}
	if (!v || !mkdtemp(dir)) {
		printf("not ok - NOSPACE: setup: %s\n", strerror(errno));
		(*failed)++;
		free(v);
		return;
	}
	strcat(dir, "/store");
	rc = side_etcd_open(&sd[0], 0, endpoint);
	if (!rc) {
		rc = side_engine_open_quota(&sd[1], 1, dir, CONF_NOSPACE_QUOTA);
		if (rc)
			sd[0].ops->close(&sd[0]);
	}
	if (rc) {
		printf("not ok - NOSPACE: open: %s\n", eng_strerror(rc));
		(*failed)++;
		goto out;
	}
	for (int s = 0; s < 2; s++)
		err[s] = fill(&sd[s], v, &at[s]);
	if (err[0] == ENG_E_NOSPACE && err[1] == ENG_E_NOSPACE && at[0] > 2 &&
	    at[1] > 2) {
		printf("ok - NOSPACE: filling a %d-byte quota with %d-byte "
		       "values: etcd refused put #%d, the engine put #%d\n",
		       CONF_NOSPACE_QUOTA, FILL_VALUE, at[0], at[1]);
		(*passed)++;
		probes(sd, passed, failed);
	} else {
		printf("not ok - NOSPACE: filling: etcd stopped at put #%d "
		       "(%s), the engine at put #%d (%s)\n",
		       at[0], eng_strerror(err[0]), at[1],
		       eng_strerror(err[1]));
		(*failed)++;
	}
	sd[0].ops->close(&sd[0]);
	sd[1].ops->close(&sd[1]);
out:
	/* our own mkdtemp directory, removed with its store */
	dir[strlen(dir) - strlen("/store")] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(v);
}
