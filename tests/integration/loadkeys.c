/*
 * loadkeys.c — the integration suite's bulk loader: puts N keys into a store
 * directory through the public engine API (engine/engine.h), before any
 * daemon mounts it.
 *
 *   loadkeys DATADIR PREFIX N      keys PREFIX<n> = "v<n>", n in [0, N)
 *   loadkeys DATADIR --put K V ... put each key K (any bytes but NUL) with
 *                                  value V, one revision each: the keys
 *                                  "another client" wrote, which the mount
 *                                  could not create itself
 *
 * Creating 200,000 keys through the mount costs minutes (one create, write
 * and close each); the listing test needs them only as a fixture, so they
 * are written here in transactions of 1000 puts (one revision each).  The
 * store is opened and closed like the daemon does, so the mount sees an
 * ordinary store.  Exit status 0 on success; the engine's error otherwise.
 */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LK_BATCH 1000

int main(int argc, char **argv)
{
	static char keys[LK_BATCH][64], vals[LK_BATCH][32];
	struct eng_op ops[LK_BATCH];
	struct eng_options opt;
	struct eng_txn_res res;
	struct eng_txn txn;
	eng *e = NULL;
	long n, i = 0;
	int rc;

	if (argc < 4 || (strcmp(argv[2], "--put") && argc != 4) ||
	    (!strcmp(argv[2], "--put") && argc % 2 != 1)) {
		fprintf(stderr, "usage: loadkeys DATADIR PREFIX N | "
		                "loadkeys DATADIR --put KEY VALUE...\n");
		return 2;
	}
	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE;
	rc = eng_open(argv[1], &opt, &e);
	if (rc) {
		fprintf(stderr, "loadkeys: open %s: %s\n", argv[1],
		        eng_strerror(rc));
		return 1;
	}
	if (!strcmp(argv[2], "--put")) {
		for (int a = 3; a + 1 < argc && !rc; a += 2) {
			rc = eng_put(e, argv[a], strlen(argv[a]), argv[a + 1],
			             strlen(argv[a + 1]), 0, NULL, NULL);
			if (rc)
				fprintf(stderr, "loadkeys: put %s: %s\n",
				        argv[a], eng_strerror(rc));
		}
		eng_close(e);
		return rc ? 1 : 0;
	}
	n = atol(argv[3]);
	while (i < n) {
		size_t k = 0;

		for (; k < LK_BATCH && i < n; k++, i++) {
			int kl = snprintf(keys[k], sizeof(keys[k]), "%s%ld",
			                  argv[2], i);
			int vl = snprintf(vals[k], sizeof(vals[k]), "v%ld", i);

			ops[k] = (struct eng_op){.type = ENG_OP_PUT,
			                         .key = keys[k],
			                         .key_len = (size_t)kl,
			                         .value = vals[k],
			                         .value_len = (size_t)vl};
		}
		txn = (struct eng_txn){.success = ops, .nsuccess = k};
		memset(&res, 0, sizeof(res));
		rc = eng_txn(e, &txn, &res);
		eng_txn_res_release(&res);
		if (rc) {
			fprintf(stderr, "loadkeys: txn at %ld: %s\n", i,
			        eng_strerror(rc));
			break;
		}
	}
	eng_close(e);
	return rc ? 1 : 0;
}
