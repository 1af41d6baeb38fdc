/*
 * test_reads.c — readers against writers (SPEC.md §1 "Reads never block
 * writes: a long listing reads a snapshot"; issue 2 "a long range never
 * blocks a writer, and one range sees one revision").
 *
 * A writer thread keeps rewriting nine counter keys spread over a range of
 * 4,001 keys, all nine in one txn, while the main thread ranges over the
 * whole range at the current revision.  Every range must show the nine
 * counters equal (one revision, never half of a txn) and no version newer
 * than its header revision; and writers must have committed while ranges
 * were in progress (the revision moved between a range's snapshot and its
 * return), which a reader holding a lock against writers would prevent.
 */
#include "engine_helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define NKEYS   4001
#define EVERY   500 /* r/00000, r/00500, ... r/04000 are counters */
#define NCTR    (NKEYS / EVERY + 1)
#define NRANGES 40

struct writer {
	eng *e;
	_Atomic int stop;
	_Atomic int64_t commits;
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct eng_op ops[NCTR];
	char keys[NCTR][16], val[24];

	for (int i = 0; i < NCTR; i++)
		snprintf(keys[i], sizeof(keys[i]), "r/%05d", i * EVERY);
	for (int64_t n = 1; !atomic_load(&w->stop); n++) {
		struct eng_txn t = {.success = ops, .nsuccess = NCTR};
		struct eng_txn_res res;

		snprintf(val, sizeof(val), "%lld", (long long)n);
		for (int i = 0; i < NCTR; i++)
			ops[i] = (struct eng_op){.type = ENG_OP_PUT,
			                         .key = keys[i],
			                         .key_len = strlen(keys[i]),
			                         .value = val,
			                         .value_len = strlen(val)};
		w->rc = eng_txn(w->e, &t, &res);
		eng_txn_res_release(&res);
		if (w->rc)
			break;
		atomic_fetch_add(&w->commits, 1);
	}
	return NULL;
}

/* The counters of one range result must all carry one value. */
static void check_range(const struct eng_range_res *res)
{
	const struct eng_kv *first = NULL;
	int seen = 0;

	assert_int_equal(res->n, NKEYS);
	for (size_t i = 0; i < res->n; i++) {
		const struct eng_kv *kv = &res->kvs[i];

		assert_true(kv->mod_rev <= res->header_rev);
		if (i % EVERY)
			continue;
		seen++;
		if (!first) {
			first = kv;
			continue;
		}
		/* (the filler put them in several txns: only the writer's
		 * versions share a revision) */
		if (first->version > 1)
			assert_int_equal(kv->mod_rev, first->mod_rev);
		assert_int_equal(kv->value_len, first->value_len);
		assert_memory_equal(kv->value, first->value, kv->value_len);
	}
	assert_int_equal(seen, NCTR);
}

static void test_long_range_vs_writer(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options o;
	struct writer w = {0};
	pthread_t t;
	int overlapped = 0, nranges = 0;
	time_t deadline;
	eng *e;

	(void)state;
	eng_options_init(&o);
	o.sync = ENG_SYNC_NONE; /* many commits per range, not one fsync */
	e = th_open(dir, &o);
	{
		/* The filler, a thousand keys per txn. */
		static struct eng_op ops[1000];
		static char keys[1000][16];

		for (int base = 0; base < NKEYS; base += 1000) {
			struct eng_txn tx = {.success = ops};
			struct eng_txn_res res;

			for (int i = base; i < NKEYS && i < base + 1000; i++) {
				size_t j = tx.nsuccess++;

				snprintf(keys[j], sizeof(keys[j]), "r/%05d", i);
				ops[j] =
				    (struct eng_op){.type = ENG_OP_PUT,
				                    .key = keys[j],
				                    .key_len = strlen(keys[j]),
				                    .value = "0",
				                    .value_len = 1};
			}
			assert_int_equal(eng_txn(e, &tx, &res), 0);
			eng_txn_res_release(&res);
		}
	}
	w.e = e;
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	/* The writer must be running first: under valgrind threads take
	 * turns, and the ranges alone could run to the end without it. */
	deadline = time(NULL) + 60;
	while (atomic_load(&w.commits) == 0 && time(NULL) < deadline)
		usleep(1000);
	/* NRANGES ranges, and more (up to the minute) until one has seen a
	 * commit land while it ran. */
	for (int i = 0;
	     i < NRANGES || (overlapped == 0 && time(NULL) < deadline); i++) {
		struct eng_range_res res;
		eng_rev_t after;

		assert_int_equal(th_range(e, "r/", "r0", 0, 0, 0, &res), 0);
		after = eng_current_rev(e);
		check_range(&res);
		overlapped += after > res.header_rev;
		eng_range_res_release(&res);
		nranges++;
		sched_yield();
	}
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	fprintf(stderr,
	        "# %d of %d ranges saw commits while they ran; %lld "
	        "commits\n",
	        overlapped, nranges, (long long)atomic_load(&w.commits));
	assert_true(atomic_load(&w.commits) > 0);
	assert_true(overlapped > 0);
	eng_close(e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_long_range_vs_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
