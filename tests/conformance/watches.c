/*
 * watches.c — the watches of the conformance test: each is opened on both
 * sides with the same key range and start revision, drained as the
 * sequence runs, and compared event by event at the end.
 *
 * A compaction must not land while a watch still replays history (etcd
 * would cancel it at a time that depends on scheduling), so before each
 * compaction watches_wait() waits until every watch has reported progress
 * up to the current revision (etcd's progress notifications, the engine's
 * markers).  The watch state is only touched by the driver's thread.
 */
#include "conf.h"

#include <stdlib.h>
#include <string.h>

struct cwatch {
	int kind;
	eng_rev_t start;
	eng_rev_t compact_at_open; /* the compaction revision then */
	long opened_at;            /* op index */
	void *w[2];
	struct cevlist ev[2];
};

static struct cwatch watches[CONF_MAX_WATCHES];
static int nwatches;

int watches_count(void)
{
	return nwatches;
}

void watches_poll(struct conf_run *R, int timeout_ms)
{
	int i, s;

	for (i = 0; i < nwatches; i++)
		for (s = 0; s < 2; s++)
			if (watches[i].w[s])
				R->side[s].ops->watch_poll(
				    &R->side[s], watches[i].w[s],
				    &watches[i].ev[s], timeout_ms);
}

/* Wait until every watch on both sides reported progress up to rev. */
bool watches_wait(struct conf_run *R, eng_rev_t rev, long idx)
{
	int64_t deadline = conf_now_ms() + 15000;
	int i, s;

	for (;;) {
		bool all = true;

		watches_poll(R, 0);
		for (i = 0; i < nwatches; i++)
			for (s = 0; s < 2; s++) {
				struct cevlist *l = &watches[i].ev[s];

				if (watches[i].w[s] && !l->end_err &&
				    l->progress < rev)
					all = false;
			}
		if (all)
			return true;
		if (conf_now_ms() > deadline)
			break;
		conf_sleep_ms(20);
	}
	for (i = 0; i < nwatches; i++)
		for (s = 0; s < 2; s++) {
			struct cevlist *l = &watches[i].ev[s];

			if (watches[i].w[s] && !l->end_err && l->progress < rev)
				printf(
				    "watch #%d (opened at op #%ld from rev "
				    "%lld) on %s: no progress to rev %lld in "
				    "15 s (at %lld, %zu events)\n",
				    i, watches[i].opened_at,
				    (long long)watches[i].start,
				    R->side[s].name, (long long)rev,
				    (long long)l->progress, l->n);
		}
	conf_diff_header(R, idx, "a watch did not catch up");
	conf_diff_footer(R);
	return false;
}

bool watches_open(struct conf_run *R, const struct cop *op, long idx)
{
	struct cwatch *w = &watches[nwatches];
	struct cbytes key, end;
	int rc[2], s;

	if (nwatches == CONF_MAX_WATCHES) {
		conf_diff_header(R, idx, "too many watches for the test");
		return false;
	}
	memset(w, 0, sizeof(*w));
	w->kind = op->watch_kind;
	w->start = op->rev;
	w->compact_at_open = R->g.compact;
	w->opened_at = idx;
	gen_watch_range(op->watch_kind, &key, &end);
	for (s = 0; s < 2; s++)
		rc[s] = R->side[s].ops->watch_open(&R->side[s], key.p, key.n,
		                                   end.n ? end.p : NULL, end.n,
		                                   op->rev, &w->w[s]);
	free(key.p);
	free(end.p);
	nwatches++;
	R->g.nwatches = nwatches;
	if (rc[0] != rc[1]) {
		char why[128];

		snprintf(why, sizeof(why), "watch open: A %d (%s), B %d (%s)",
		         rc[0], eng_strerror(rc[0]), rc[1],
		         eng_strerror(rc[1]));
		conf_diff_header(R, idx, why);
		printf("  op: ");
		cop_print(stdout, op);
		printf("\n");
		conf_diff_footer(R);
		return false;
	}
	return true;
}

static bool compare_watch(struct conf_run *R, int i)
{
	struct cwatch *w = &watches[i];
	struct cevlist *a = &w->ev[0], *b = &w->ev[1];
	size_t j, n = a->n < b->n ? a->n : b->n;
	int s;

	for (s = 0; s < 2; s++) {
		if (!w->ev[s].problem[0])
			continue;
		printf(
		    "WATCH STREAM BROKEN (seed %llu): watch #%d kind %d from "
		    "rev %lld on %s: %s\n",
		    (unsigned long long)R->seed, i, w->kind,
		    (long long)w->start, R->side[s].name, w->ev[s].problem);
		conf_diff_footer(R);
		return false;
	}

	for (j = 0; j < n; j++) {
		struct cev *x = &a->v[j], *y = &b->v[j];

		if (!cev_equal(x, y))
			break;
	}
	if (j == a->n && j == b->n)
		return true;
	printf("WATCH DIFFERENCE (seed %llu): watch #%d kind %d from rev %lld "
	       "opened at op #%ld (compaction revision then %lld): event %zu "
	       "differs (A has %zu events, B %zu)\n",
	       (unsigned long long)R->seed, i, w->kind, (long long)w->start,
	       w->opened_at, (long long)w->compact_at_open, j, a->n, b->n);
	for (size_t k = j > 2 ? j - 2 : 0; k < j + 3; k++) {
		printf("  [%zu] A: ", k);
		if (k < a->n)
			cev_print(stdout, &a->v[k]);
		else
			printf("(none)");
		printf("\n  [%zu] B: ", k);
		if (k < b->n)
			cev_print(stdout, &b->v[k]);
		else
			printf("(none)");
		printf("\n");
	}
	conf_diff_footer(R);
	return false;
}

void watches_compare_all(struct conf_run *R)
{
	int i;

	for (i = 0; i < nwatches; i++) {
		if (compare_watch(R, i)) {
			R->passed++;
			printf(
			    "ok - watch #%d kind %d from rev %lld: %zu events "
			    "agree%s\n",
			    i, watches[i].kind, (long long)watches[i].start,
			    watches[i].ev[0].n,
			    watches[i].ev[0].end_err == 1
			        ? " (the last: compacted)"
			        : "");
		} else {
			R->failed++;
		}
	}
}

void watches_close_all(struct conf_run *R)
{
	int i, s;

	for (i = 0; i < nwatches; i++) {
		for (s = 0; s < 2; s++) {
			if (watches[i].w[s])
				R->side[s].ops->watch_close(&R->side[s],
				                            watches[i].w[s]);
			cevlist_free(&watches[i].ev[s]);
		}
	}
	nwatches = 0;
	R->g.nwatches = 0;
}
