/*
 * local_commit.c — the commit queue: one committer at a time, with group
 * commit (LevelDB's own writer-queue scheme).
 *
 * A writer queues its request and sleeps.  The writer at the head of the
 * queue is the leader: it takes the head and the requests behind it (up to
 * GROUP_MAX requests or GROUP_BYTES), applies them in order into one
 * writebatch — each request that changes something gets its own revision;
 * later requests read earlier ones through the overlay — writes the batch
 * once (one fsync for the whole group in sync mode ALWAYS), publishes the
 * new revision and the events, then wakes the group and hands leadership to
 * the next head.  q_lock is held only to queue and dequeue: never while
 * applying or writing, so queuing writers and readers never wait for an
 * fsync.  A request with a range at an explicit revision is a barrier: it
 * leads a group of its own, so every revision it may read is in LevelDB.
 *
 * Invariants: revisions are assigned in queue order without gaps; Mstate
 * (revision, live keys) is written in the same batch as the records of
 * those revisions; l->rev is published only after the write returned.
 */
#include "local_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUP_MAX   1000
#define GROUP_BYTES (4u << 20)

static bool txn_is_barrier(const struct eng_txn *t)
{
	for (size_t i = 0; i < t->nsuccess; i++)
		if (t->success[i].type == ENG_OP_RANGE && t->success[i].rev)
			return true;
	for (size_t i = 0; i < t->nfailure; i++)
		if (t->failure[i].type == ENG_OP_RANGE && t->failure[i].rev)
			return true;
	return false;
}

static size_t txn_bytes(const struct eng_txn *t)
{
	size_t n = 64;

	for (size_t i = 0; i < t->nsuccess; i++)
		n += t->success[i].key_len + t->success[i].value_len;
	for (size_t i = 0; i < t->nfailure; i++)
		n += t->failure[i].key_len + t->failure[i].value_len;
	return n;
}

/* Write the batch: returns 0 or ENG_E_IO. */
static int batch_write(struct local *l, struct batch *b)
{
	leveldb_writeoptions_t *wo = l->wo_sync;
	struct cbuf st = {0};
	char *err = NULL;
	bool sync = true;
	int64_t now;

	if (cbuf_add_be64(&st, (uint64_t)b->rev) ||
	    cbuf_add_be64(&st, (uint64_t)b->keys))
		return ENG_E_NOMEM;
	leveldb_writebatch_put(l->wb, META_STATE, strlen(META_STATE), st.p,
	                       st.len);
	cbuf_free(&st);
	now = eng_now_mono_ns();
	if (l->base.opt.sync == ENG_SYNC_NONE) {
		sync = false;
	} else if (l->base.opt.sync == ENG_SYNC_INTERVAL) {
		sync = now - l->last_sync_ns >=
		       (int64_t)l->base.opt.sync_interval_ms * 1000000;
	}
	if (!sync)
		wo = l->wo_nosync;
	leveldb_write(l->db, wo, l->wb, &err);
	if (err)
		return local_ldb_err(l, err, "commit");
	atomic_fetch_add(&l->commits, 1);
	if (sync) {
		atomic_fetch_add(&l->fsyncs, 1);
		l->last_sync_ns = now;
		atomic_store(&l->unsynced, false);
	} else {
		atomic_store(&l->unsynced, true);
	}
	atomic_fetch_add(&l->pending_bytes, b->bytes);
	return 0;
}

/* The leader's work for one group [first, last]. */
static void lead_group(struct local *l, struct commit_req *first,
                       struct commit_req *last)
{
	struct batch b = {0};
	int64_t old_compact;
	int rc = 0;

	b.base_rev = b.rev = atomic_load(&l->rev);
	b.keys = atomic_load(&l->keys);
	b.compact_rev = old_compact = atomic_load(&l->compact_rev);
	b.mtime_ns = eng_now_real_ns();
	b.arena = eng_arena_new();
	if (!b.arena)
		rc = ENG_E_NOMEM;
	for (struct commit_req *r = first; !rc; r = r->next) {
		rc = apply_req(l, &b, r);
		if (r == last)
			break;
	}
	if (!rc && b.dirty)
		rc = batch_write(l, &b);
	if (rc) {
		/* Nothing of the group is written; every request fails. */
		for (struct commit_req *r = first;; r = r->next) {
			r->rc = rc;
			if (r->type == CREQ_TXN && r->tres)
				eng_txn_res_release(r->tres);
			if (r == last)
				break;
		}
	} else if (b.dirty) {
		atomic_store(&l->keys, b.keys);
		atomic_store(&l->rev, b.rev);
		if (b.compact_rev != old_compact) {
			atomic_store(&l->compact_rev, b.compact_rev);
			local_compactor_kick(l);
		}
		batch_publish(l, &b);
	}
	leveldb_writebatch_clear(l->wb);
	overlay_clear(l->ov);
	batch_free_events(&b);
	eng_arena_free(b.arena);
}

int local_commit(struct local *l, struct commit_req *r)
{
	struct commit_req *last, *p;
	size_t n, bytes;

	r->done = false;
	r->rc = 0;
	r->next = NULL;
	if (pthread_cond_init(&r->cv, NULL))
		return ENG_E_NOMEM;
	pthread_mutex_lock(&l->q_lock);
	if (l->q_closed) {
		pthread_mutex_unlock(&l->q_lock);
		pthread_cond_destroy(&r->cv);
		return ENG_E_CLOSED;
	}
	if (l->q_tail)
		l->q_tail->next = r;
	else
		l->q_head = r;
	l->q_tail = r;
	while (!r->done && l->q_head != r)
		pthread_cond_wait(&r->cv, &l->q_lock);
	if (r->done)
		goto out;
	/* Leader: take a bounded group; a barrier goes alone. */
	last = r;
	n = 1;
	bytes = r->bytes;
	if (!r->barrier) {
		for (p = r->next; p && !p->barrier && n < GROUP_MAX &&
		                  bytes + p->bytes <= GROUP_BYTES;
		     p = p->next) {
			last = p;
			n++;
			bytes += p->bytes;
		}
	}
	pthread_mutex_unlock(&l->q_lock);

	lead_group(l, r, last);

	pthread_mutex_lock(&l->q_lock);
	l->q_head = last->next;
	if (!l->q_head)
		l->q_tail = NULL;
	/* Still under q_lock: a woken follower can't free its request
	 * before we are done walking the group. */
	/* The next leader first: the queue waits for it, the group's
	 * followers only have their replies to send. */
	if (l->q_head)
		pthread_cond_signal(&l->q_head->cv);
	for (p = r;; p = p->next) {
		p->done = true;
		if (p != r)
			pthread_cond_signal(&p->cv);
		if (p == last)
			break;
	}
out:
	pthread_mutex_unlock(&l->q_lock);
	pthread_cond_destroy(&r->cv);
	return r->rc;
}

void local_commit_close(struct local *l)
{
	pthread_mutex_lock(&l->q_lock);
	l->q_closed = true;
	pthread_mutex_unlock(&l->q_lock);
	/* Requests already queued still finish: wait for the queue. */
	for (;;) {
		struct timespec ts = {0, 1000000};
		bool empty;

		pthread_mutex_lock(&l->q_lock);
		empty = l->q_head == NULL;
		pthread_mutex_unlock(&l->q_lock);
		if (empty)
			break;
		nanosleep(&ts, NULL);
	}
}

int local_txn(eng *e, const struct eng_txn *txn, struct eng_txn_res *res)
{
	struct local *l = (struct local *)e;
	int64_t t0 = eng_now_mono_ns();
	struct commit_req r = {
	    .type = CREQ_TXN,
	    .txn = txn,
	    .tres = res,
	    .barrier = txn_is_barrier(txn),
	    .bytes = txn_bytes(txn),
	};
	int rc = local_commit(l, &r);

	if (rc)
		eng_txn_res_release(res);
	local_stat_record(l, &l->st_txn, t0, rc);
	return rc;
}

int local_compact(eng *e, eng_rev_t rev, bool wait)
{
	struct local *l = (struct local *)e;
	int64_t t0 = eng_now_mono_ns();
	struct commit_req r = {
	    .type = CREQ_COMPACT,
	    .crev = rev,
	    .bytes = 64,
	};
	int rc = local_commit(l, &r);

	if (rc == 0 && wait)
		local_compactor_wait(l, rev);
	local_stat_record(l, &l->st_compact, t0, rc);
	return rc;
}
