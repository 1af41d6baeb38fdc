/*
 * local_commit.c — the commit queue: one committer at a time, with group
 * commit (LevelDB's own writer-queue scheme), for synchronous and
 * asynchronous requests.
 *
 * A request is queued in commit order.  Whoever holds the leadership
 * (q_leading) takes the head of the queue and the requests behind it (up
 * to GROUP_MAX requests or GROUP_BYTES), applies them in order into one
 * writebatch — each request that changes something gets its own revision;
 * later requests read earlier ones through the overlay — writes the batch
 * once (one fsync for the whole group in sync mode ALWAYS), publishes the
 * new revision and the events, gives up the leadership and hands it on,
 * then marks the group done.  A request with a range at an explicit
 * revision is a barrier: it leads a group of its own, so every revision it
 * may read is in LevelDB.
 *
 * Who leads: a synchronous caller (eng_txn) sleeps until its request is
 * done or nobody leads, and then leads groups from the head until its own
 * request is done; an asynchronous request (eng_txn_async) has no waiting
 * thread, so when only such requests are queued the committer thread
 * leads.  The leadership is handed to the first synchronous request still
 * queued, else to the committer thread.  A completer thread runs the
 * asynchronous requests' completions, in commit order, holding no lock and
 * never leading: a completion may block on a lock of the caller whose
 * holder waits for a synchronous commit, and that holder can always lead
 * its commit itself; and the next group's fsync runs while the previous
 * group's completions answer their callers.
 *
 * q_lock is held only to queue, dequeue and hand over: never while
 * applying or writing, so queuing writers and readers never wait for an
 * fsync.
 *
 * Invariants: revisions are assigned in queue order without gaps; Mstate
 * (revision, live keys) is written in the same batch as the records of
 * those revisions; l->rev is published only after the write returned; at
 * most one thread leads.
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

/* Called with q_lock held. */
static void enqueue(struct local *l, struct commit_req *r)
{
	r->next = NULL;
	if (l->q_tail)
		l->q_tail->next = r;
	else
		l->q_head = r;
	l->q_tail = r;
}

/*
 * The leadership was just given up (q_lock held): pass it to the first
 * synchronous request still queued, whose thread is waiting; with only
 * asynchronous requests left, to the committer thread.
 */
static void hand_off(struct local *l)
{
	for (struct commit_req *p = l->q_head; p; p = p->next) {
		if (!p->done_fn) {
			pthread_cond_signal(&p->cv);
			return;
		}
	}
	if (l->q_head)
		pthread_cond_signal(&l->q_cond);
}

/*
 * Lead one group from the head of the queue.  Called with q_lock held and
 * q_leading just set by the caller; returns with q_lock held and the
 * leadership given up.  q_lock is dropped while the group is applied and
 * written.
 */
static void lead_next(struct local *l)
{
	struct commit_req *first = l->q_head, *last = first, *p, *next;
	size_t n = 1, bytes = first->bytes;
	bool async = false;

	/* A bounded group; a barrier goes alone. */
	if (!first->barrier) {
		for (p = first->next; p && !p->barrier && n < GROUP_MAX &&
		                      bytes + p->bytes <= GROUP_BYTES;
		     p = p->next) {
			last = p;
			n++;
			bytes += p->bytes;
		}
	}
	pthread_mutex_unlock(&l->q_lock);

	lead_group(l, first, last);

	pthread_mutex_lock(&l->q_lock);
	l->q_head = last->next;
	if (!l->q_head)
		l->q_tail = NULL;
	l->q_leading = false;
	/* The next leader first: the queue waits for it, the group's
	 * followers only have their replies to send. */
	hand_off(l);
	/* Still under q_lock: a woken follower can't free its request
	 * before we are done walking the group. */
	for (p = first;; p = next) {
		bool end = p == last;

		next = p->next;
		if (p->done_fn) {
			p->next = NULL;
			if (l->q_done_tail)
				l->q_done_tail->next = p;
			else
				l->q_done = p;
			l->q_done_tail = p;
			async = true;
		} else {
			p->done = true;
			pthread_cond_signal(&p->cv);
		}
		if (end)
			break;
	}
	if (async)
		pthread_cond_signal(&l->q_done_cond);
}

/*
 * A synchronous request waits until it is done or nobody leads; then it
 * leads groups from the head (which may hold requests queued before it,
 * asynchronous ones included) until its own is done.  So a thread that
 * waits for a commit can always make it progress itself: the committer
 * thread may block in a completion on a lock such a thread holds.
 */
int local_commit(struct local *l, struct commit_req *r)
{
	r->done = false;
	r->rc = 0;
	if (pthread_cond_init(&r->cv, NULL))
		return ENG_E_NOMEM;
	pthread_mutex_lock(&l->q_lock);
	if (l->q_closed) {
		pthread_mutex_unlock(&l->q_lock);
		pthread_cond_destroy(&r->cv);
		return ENG_E_CLOSED;
	}
	enqueue(l, r);
	for (;;) {
		while (!r->done && l->q_leading)
			pthread_cond_wait(&r->cv, &l->q_lock);
		if (r->done)
			break;
		l->q_leading = true;
		lead_next(l);
	}
	pthread_mutex_unlock(&l->q_lock);
	pthread_cond_destroy(&r->cv);
	return r->rc;
}

/* Complete the asynchronous requests of list, in order (no lock held). */
static size_t complete(struct local *l, struct commit_req *list)
{
	size_t n = 0;

	while (list) {
		struct commit_req *r = list;
		int rc = r->rc;

		list = r->next;
		local_stat_record(l, &l->st_txn, r->t0, rc);
		r->done_fn(r->done_arg, rc, rc ? NULL : r->tres);
		eng_txn_res_release(r->tres);
		free(r);
		n++;
	}
	return n;
}

/*
 * The committer thread leads the groups nobody else leads, i.e. when only
 * asynchronous requests are queued.
 */
static void *committer_main(void *arg)
{
	struct local *l = arg;

	pthread_mutex_lock(&l->q_lock);
	for (;;) {
		if (l->q_head && !l->q_leading) {
			l->q_leading = true;
			lead_next(l);
			continue;
		}
		if (l->q_stop)
			break;
		pthread_cond_wait(&l->q_cond, &l->q_lock);
	}
	pthread_mutex_unlock(&l->q_lock);
	return NULL;
}

/*
 * The completer thread runs the asynchronous requests' completions, in
 * commit order.  A completion may block on a caller's lock: this thread
 * holds none and never leads, and the next group's fsync runs meanwhile
 * on the leader's thread.
 */
static void *completer_main(void *arg)
{
	struct local *l = arg;

	pthread_mutex_lock(&l->q_lock);
	for (;;) {
		if (l->q_done) {
			struct commit_req *list = l->q_done;
			size_t n;

			l->q_done = l->q_done_tail = NULL;
			pthread_mutex_unlock(&l->q_lock);
			n = complete(l, list);
			pthread_mutex_lock(&l->q_lock);
			l->q_async -= n;
			continue;
		}
		if (l->q_stop)
			break;
		pthread_cond_wait(&l->q_done_cond, &l->q_lock);
	}
	pthread_mutex_unlock(&l->q_lock);
	return NULL;
}

int local_commit_start(struct local *l)
{
	if (pthread_cond_init(&l->q_cond, NULL))
		return ENG_E_NOMEM;
	if (pthread_cond_init(&l->q_done_cond, NULL)) {
		pthread_cond_destroy(&l->q_cond);
		return ENG_E_NOMEM;
	}
	if (pthread_create(&l->q_thread, NULL, committer_main, l))
		goto fail;
	if (pthread_create(&l->q_done_thread, NULL, completer_main, l)) {
		pthread_mutex_lock(&l->q_lock);
		l->q_stop = true;
		pthread_cond_signal(&l->q_cond);
		pthread_mutex_unlock(&l->q_lock);
		pthread_join(l->q_thread, NULL);
		goto fail;
	}
	l->q_started = true;
	return 0;
fail:
	pthread_cond_destroy(&l->q_cond);
	pthread_cond_destroy(&l->q_done_cond);
	return ENG_E_NOMEM;
}

void local_commit_close(struct local *l)
{
	pthread_mutex_lock(&l->q_lock);
	l->q_closed = true;
	pthread_mutex_unlock(&l->q_lock);
	/* Requests already queued still finish, and asynchronous ones
	 * complete: wait for both. */
	for (;;) {
		struct timespec ts = {0, 1000000};
		bool empty;

		pthread_mutex_lock(&l->q_lock);
		empty = l->q_head == NULL && l->q_async == 0;
		pthread_mutex_unlock(&l->q_lock);
		if (empty)
			break;
		nanosleep(&ts, NULL);
	}
	if (!l->q_started)
		return;
	pthread_mutex_lock(&l->q_lock);
	l->q_stop = true;
	pthread_cond_signal(&l->q_cond);
	pthread_cond_signal(&l->q_done_cond);
	pthread_mutex_unlock(&l->q_lock);
	pthread_join(l->q_thread, NULL);
	pthread_join(l->q_done_thread, NULL);
	pthread_cond_destroy(&l->q_cond);
	pthread_cond_destroy(&l->q_done_cond);
	l->q_started = false;
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

int local_txn_async(eng *e, const struct eng_txn *txn, eng_txn_done_fn done,
                    void *arg)
{
	struct local *l = (struct local *)e;
	struct commit_req *r = calloc(1, sizeof(*r));

	if (!r)
		return ENG_E_NOMEM;
	r->type = CREQ_TXN;
	r->txn = txn;
	r->tres = &r->ares;
	r->barrier = txn_is_barrier(txn);
	r->bytes = txn_bytes(txn);
	r->done_fn = done;
	r->done_arg = arg;
	r->t0 = eng_now_mono_ns();
	pthread_mutex_lock(&l->q_lock);
	if (l->q_closed || !l->q_started) {
		pthread_mutex_unlock(&l->q_lock);
		free(r);
		return ENG_E_CLOSED;
	}
	enqueue(l, r);
	l->q_async++;
	/* Nobody leads: the committer will (a leader hands off to it). */
	if (!l->q_leading)
		pthread_cond_signal(&l->q_cond);
	pthread_mutex_unlock(&l->q_lock);
	return 0;
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
