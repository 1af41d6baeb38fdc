/*
 * etcd_backend_mtime.c — commit times for the etcd backend.
 *
 * etcd keeps no time per revision, so a kv's mtime_ns is the time THIS
 * engine first saw its mod_revision: in the reply of its own txn, in an
 * event of its watch stream, or, for a revision newer than any seen, in the
 * first read that returned it.  Revisions at or below the one current at
 * open (never seen) get the open time.  Two mounts may disagree by their
 * clocks' skew plus their latency (docs/etcd-backend.md).
 *
 * Memory is bounded: an exact table of the last ETCDB_MT_EXACT revisions
 * (direct-mapped on rev, so contiguous revisions never collide), and a ring
 * of checkpoints, one per second in which revisions were seen, appended in
 * revision order by the stream: a revision that fell out of the table gets
 * the time of the newest checkpoint at or below it (at most a second
 * early).  A full ring drops every other checkpoint (coarser, never wrong
 * by more than the gap it leaves).  No lookup costs a request.
 *
 * Invariants: a revision's time never changes once given (first seen wins,
 * and a table slot is only reused for a newer revision whose checkpoint
 * already covers the older one); everything is protected by mt->lock.
 */
#include "etcd_backend.h"

#include <stdlib.h>
#include <string.h>

#define ETCDB_MT_EXACT 16384 /* a power of two */
#define ETCDB_MT_CKPTS 4096
#define ETCDB_MT_STEP  1000000000LL /* one checkpoint per second */

struct mt_slot {
	eng_rev_t rev;
	int64_t ns;
};

struct etcdb_mtime {
	pthread_mutex_t lock;
	eng_rev_t open_rev; /* revisions <= it were never seen: open_ns */
	int64_t open_ns;
	struct mt_slot exact[ETCDB_MT_EXACT]; /* protected by lock */
	struct mt_slot ck[ETCDB_MT_CKPTS];    /* protected by lock: ascending */
	size_t nck;                           /* protected by lock */
};

int etcdb_mtime_new(eng_rev_t open_rev, struct etcdb_mtime **out)
{
	struct etcdb_mtime *mt = calloc(1, sizeof(*mt));

	*out = NULL;
	if (!mt)
		return ENG_E_NOMEM;
	pthread_mutex_init(&mt->lock, NULL);
	mt->open_rev = open_rev;
	mt->open_ns = eng_now_real_ns();
	*out = mt;
	return 0;
}

void etcdb_mtime_free(struct etcdb_mtime *mt)
{
	if (!mt)
		return;
	pthread_mutex_destroy(&mt->lock);
	free(mt);
}

/* With mt->lock held: the exact time of rev, or 0. */
static int64_t exact_get(const struct etcdb_mtime *mt, eng_rev_t rev)
{
	const struct mt_slot *s = &mt->exact[rev & (ETCDB_MT_EXACT - 1)];

	return s->rev == rev ? s->ns : 0;
}

/* With mt->lock held: remember rev first seen at ns (first wins). */
static int64_t exact_put(struct etcdb_mtime *mt, eng_rev_t rev, int64_t ns)
{
	struct mt_slot *s = &mt->exact[rev & (ETCDB_MT_EXACT - 1)];

	if (s->rev == rev)
		return s->ns;
	if (s->rev > rev)
		return 0; /* an older revision than the slot's: not kept */
	s->rev = rev;
	s->ns = ns;
	return ns;
}

/* With mt->lock held: append a checkpoint (rev ascending), halving the ring
 * when full. */
static void ck_add(struct etcdb_mtime *mt, eng_rev_t rev, int64_t ns)
{
	if (mt->nck && (mt->ck[mt->nck - 1].rev >= rev ||
	                ns - mt->ck[mt->nck - 1].ns < ETCDB_MT_STEP))
		return;
	if (mt->nck == ETCDB_MT_CKPTS) {
		size_t j = 0;

		for (size_t i = 0; i < mt->nck; i += 2)
			mt->ck[j++] = mt->ck[i];
		mt->nck = j;
	}
	mt->ck[mt->nck].rev = rev;
	mt->ck[mt->nck].ns = ns;
	mt->nck++;
}

/* With mt->lock held: the newest checkpoint at or below rev, or 0. */
static int64_t ck_get(const struct etcdb_mtime *mt, eng_rev_t rev)
{
	size_t lo = 0, hi = mt->nck;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mt->ck[mid].rev <= rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? mt->ck[lo - 1].ns : 0;
}

void etcdb_mtime_seen(struct etcdb_mtime *mt, eng_rev_t rev, bool in_order)
{
	int64_t now, ns;

	if (!mt || rev <= mt->open_rev)
		return;
	now = eng_now_real_ns();
	pthread_mutex_lock(&mt->lock);
	ns = exact_put(mt, rev, now);
	if (in_order)
		ck_add(mt, rev, ns ? ns : now);
	pthread_mutex_unlock(&mt->lock);
}

int64_t etcdb_mtime_of(struct etcdb_mtime *mt, eng_rev_t rev)
{
	int64_t ns;

	if (!mt || rev <= 0)
		return 0;
	if (rev <= mt->open_rev)
		return mt->open_ns;
	pthread_mutex_lock(&mt->lock);
	ns = exact_get(mt, rev);
	if (!ns && (!mt->nck || rev > mt->ck[mt->nck - 1].rev))
		/* newer than the stream's last checkpoint: first seen now
		 * (exact_put refuses it only if the table moved past it) */
		ns = exact_put(mt, rev, eng_now_real_ns());
	if (!ns)
		ns = ck_get(mt, rev);
	pthread_mutex_unlock(&mt->lock);
	return ns ? ns : mt->open_ns;
}

void etcdb_mtime_fill(struct etcdb_mtime *mt, struct eng_kv *kvs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!kvs[i].is_prefix && kvs[i].mod_rev > 0)
			kvs[i].mtime_ns = etcdb_mtime_of(mt, kvs[i].mod_rev);
}
