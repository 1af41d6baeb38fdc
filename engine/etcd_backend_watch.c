/*
 * etcd_backend_watch.c — eng_watch over etcd watch streams.
 *
 * Each eng_watch has one etcd watch stream (etcd_client's etcd_watch, asked
 * for etcd's progress notifications) and one thread that reads it, copies
 * the events into the watch's queue and calls notify, so the engine's
 * non-blocking eng_watch_read and notify contract hold as with the local
 * backend.
 *
 * Positions.  `complete` is the revision up to which every event of the
 * watch is in the queue.  It moves to R when an event of revision R is
 * queued (etcd sends a revision's events in one response, and a stream is
 * in revision order) or when etcd's progress notification says R.  The
 * reader only takes events at or below `complete`, whole revisions at a
 * time.  A watch opened at "now" (start 0) first reads the current
 * revision R and streams from R + 1, so `complete` = R at once.
 *
 * Progress markers carry `complete`.  Caught up means complete >= the
 * revision that was current at open: a marker is due at once then, and
 * again every progress interval while the reader has nothing else to take.
 * How soon a replaying watch catches up without events depends on etcd's
 * --experimental-watch-progress-notify-interval (docs/etcd-backend.md).
 *
 * Cuts.  A broken stream (a member died, the network went away) is reopened
 * from complete + 1, on the next endpoint that answers, retrying with a
 * backoff up to 2 s: nothing is lost or repeated.  If that position was
 * compacted meanwhile, etcd cancels the new stream with the compaction
 * revision and the reader gets ENG_EV_COMPACTED: never a silent gap.
 *
 * Locks: w->lock guards the queue and positions; notify is called with it
 * held (so after eng_watch_close returns it is never called again).
 * ee->lock guards the list of open watches.
 */
#include "etcd_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EW_READ_MAX   4096
#define EW_BACKOFF_MS 2000

struct ew_ev {
	struct eng_event ev;
	void *mem; /* key and value bytes */
};

struct ewatch {
	struct eng_watch base;
	struct etcdb *ee;           /* NULL once the engine closed */
	struct ewatch *next, *prev; /* protected by ee->lock */
	char *key, *end;
	size_t key_len, end_len;
	eng_watch_notify_fn notify;
	void *arg;
	int64_t interval_ns;
	pthread_t thread;
	bool thread_running;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ew_ev *q;          /* protected by lock */
	size_t qhead, qlen, qcap; /* protected by lock */
	eng_rev_t complete;       /* protected by lock */
	eng_rev_t target;         /* protected by lock: current rev at open */
	bool caught_up;           /* protected by lock */
	bool marker_pending;      /* protected by lock */
	int64_t marker_due;       /* protected by lock: mono ns */
	bool armed;               /* protected by lock: notify on next data */
	bool ended;  /* protected by lock: COMPACTED queued, or closed */
	int end_err; /* protected by lock: after the queue, 0 or CLOSED */
	bool stop;   /* protected by lock */

	/* reader only: the batch of the last read */
	struct eng_event *out;
	void **outmem;
	size_t nout, outcap;
};

static void ew_free(struct ewatch *w)
{
	for (size_t i = 0; i < w->qlen; i++)
		free(w->q[w->qhead + i].mem);
	for (size_t i = 0; i < w->nout; i++)
		free(w->outmem[i]);
	free(w->q);
	free(w->out);
	free(w->outmem);
	free(w->key);
	free(w->end);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Anything for the reader?  With w->lock held. */
static bool readable(const struct ewatch *w)
{
	if (w->qlen > 0) {
		const struct eng_event *ev = &w->q[w->qhead].ev;

		if (ev->type == ENG_EV_COMPACTED ||
		    ev->kv.mod_rev <= w->complete)
			return true;
	}
	return w->marker_pending || (w->ended && w->qlen == 0);
}

static void maybe_notify(struct ewatch *w)
{
	if (w->armed && readable(w)) {
		w->armed = false;
		if (w->notify)
			w->notify(w->arg);
	}
}

/* Queue a copy of one event.  With w->lock held. */
static int push(struct ewatch *w, const struct eng_event *ev)
{
	struct ew_ev *e;
	char *m = NULL;

	if (w->qhead + w->qlen == w->qcap) {
		if (w->qhead > 0) {
			memmove(w->q, w->q + w->qhead, w->qlen * sizeof(*w->q));
			w->qhead = 0;
		} else {
			size_t cap = w->qcap ? w->qcap * 2 : 64;
			struct ew_ev *q = realloc(w->q, cap * sizeof(*q));

			if (!q)
				return ENG_E_NOMEM;
			w->q = q;
			w->qcap = cap;
		}
	}
	if (ev->kv.key_len || ev->kv.value_len) {
		m = malloc(ev->kv.key_len + ev->kv.value_len + 1);
		if (!m)
			return ENG_E_NOMEM;
		memcpy(m, ev->kv.key, ev->kv.key_len);
		if (ev->kv.value_len)
			memcpy(m + ev->kv.key_len, ev->kv.value,
			       ev->kv.value_len);
	}
	e = &w->q[w->qhead + w->qlen];
	e->ev = *ev;
	e->mem = m;
	e->ev.kv.key = m;
	e->ev.kv.value = ev->kv.value && m ? m + ev->kv.key_len : NULL;
	w->qlen++;
	return 0;
}

/* Sleep up to ms unless stopped.  With w->lock held. */
static void nap(struct ewatch *w, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (!w->stop)
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

/* Take one batch from the stream into the queue.  With w->lock held. */
static int take(struct ewatch *w, const struct eng_event *evs, int n)
{
	eng_rev_t last = 0, prog = 0;
	int rc;

	for (int i = 0; i < n; i++) {
		const struct eng_event *ev = &evs[i];

		switch (ev->type) {
		case ENG_EV_PUT:
		case ENG_EV_DELETE:
			if (ev->kv.mod_rev <= w->complete)
				continue; /* already queued (cannot happen) */
			rc = push(w, ev);
			if (rc)
				return rc;
			last = ev->kv.mod_rev;
			break;
		case ENG_EV_PROGRESS:
			if (ev->kv.mod_rev > prog)
				prog = ev->kv.mod_rev;
			break;
		case ENG_EV_COMPACTED:
			rc = push(w, ev);
			if (rc)
				return rc;
			w->ended = true;
			w->end_err = 0;
			return 0;
		}
	}
	/* A full read may have cut the last revision: it is complete only
	 * when something after it arrives. */
	if (last && n == EW_READ_MAX)
		last--;
	if (last > w->complete)
		w->complete = last;
	if (prog > w->complete)
		w->complete = prog;
	return 0;
}

static void *ew_main(void *arg)
{
	struct ewatch *w = arg;
	struct etcdb *ee = w->ee;
	struct etcd_watch *sw = NULL;
	long backoff = 100;
	bool warned = false;

	pthread_mutex_lock(&w->lock);
	while (!w->stop && !w->ended) {
		struct eng_event *evs;
		eng_rev_t from = w->complete + 1;
		int64_t now;
		int n, rc;

		pthread_mutex_unlock(&w->lock);
		if (!sw) {
			rc = etcd_watch_open(ee->c, w->key, w->key_len, w->end,
			                     w->end_len, from,
			                     ETCD_WATCH_PROGRESS, &sw);
			pthread_mutex_lock(&w->lock);
			if (rc) {
				if (!warned)
					eng_logf(&ee->base.opt, ENG_LOG_WARN,
					         "etcd watch: cannot resume "
					         "at %lld: %s; retrying",
					         (long long)from,
					         eng_strerror(rc));
				warned = true;
				nap(w, backoff);
				backoff = backoff * 2 > EW_BACKOFF_MS
				              ? EW_BACKOFF_MS
				              : backoff * 2;
				continue;
			}
			if (warned)
				eng_logf(&ee->base.opt, ENG_LOG_INFO,
				         "etcd watch: resumed at %lld",
				         (long long)from);
			warned = false;
			backoff = 100;
			pthread_mutex_unlock(&w->lock);
		}
		n = etcd_watch_read(sw, &evs, EW_READ_MAX, 100);
		pthread_mutex_lock(&w->lock);
		if (n < 0) {
			/* The stream ended: resume from complete + 1. */
			eng_logf(&ee->base.opt, ENG_LOG_WARN,
			         "etcd watch: stream ended at %lld: %s",
			         (long long)w->complete, eng_strerror(n));
			pthread_mutex_unlock(&w->lock);
			etcd_watch_close(sw);
			sw = NULL;
			pthread_mutex_lock(&w->lock);
			continue;
		}
		rc = take(w, evs, n);
		if (rc) {
			/* Out of memory: drop the stream and refetch. */
			pthread_mutex_unlock(&w->lock);
			etcd_watch_close(sw);
			sw = NULL;
			pthread_mutex_lock(&w->lock);
			nap(w, backoff);
			continue;
		}
		now = eng_now_mono_ns();
		if (!w->caught_up && w->complete >= w->target) {
			w->caught_up = true;
			w->marker_pending = true;
		}
		if (w->caught_up && !w->marker_pending && now >= w->marker_due)
			w->marker_pending = true;
		maybe_notify(w);
	}
	pthread_mutex_unlock(&w->lock);
	etcd_watch_close(sw);
	return NULL;
}

/* With w->lock held: the end of the revision group starting at i. */
static size_t group_end(const struct ewatch *w, size_t i)
{
	eng_rev_t rev = w->q[w->qhead + i].ev.kv.mod_rev;

	while (i < w->qlen && w->q[w->qhead + i].ev.type != ENG_EV_COMPACTED &&
	       w->q[w->qhead + i].ev.kv.mod_rev == rev)
		i++;
	return i;
}

static int out_room(struct ewatch *w, size_t n)
{
	if (n <= w->outcap)
		return 0;
	struct eng_event *o = realloc(w->out, n * sizeof(*o));

	if (!o)
		return ENG_E_NOMEM;
	w->out = o;
	void **m = realloc(w->outmem, n * sizeof(*m));

	if (!m)
		return ENG_E_NOMEM;
	w->outmem = m;
	w->outcap = n;
	return 0;
}

static int ew_read(eng_watch *base, struct eng_event **evs, size_t max)
{
	struct ewatch *w = (struct ewatch *)base;
	size_t n = 0, i = 0;
	int rc;

	for (size_t k = 0; k < w->nout; k++)
		free(w->outmem[k]);
	w->nout = 0;
	*evs = NULL;
	pthread_mutex_lock(&w->lock);
	rc = out_room(w, max < 256 ? max + 1 : 257);
	if (rc)
		goto out;
	/* Whole revisions at or below `complete`, then COMPACTED. */
	while (i < w->qlen) {
		const struct eng_event *ev = &w->q[w->qhead + i].ev;
		size_t j;

		if (ev->type == ENG_EV_COMPACTED) {
			if (n < max)
				i++;
			break;
		}
		if (ev->kv.mod_rev > w->complete)
			break;
		j = group_end(w, i);
		if (n + (j - i) > max) {
			if (n == 0)
				i += max; /* one revision alone exceeds max */
			break;
		}
		n += j - i;
		i = j;
	}
	n = i;
	rc = out_room(w, n + 1);
	if (rc)
		goto out;
	for (size_t k = 0; k < n; k++) {
		w->out[k] = w->q[w->qhead + k].ev;
		w->outmem[k] = w->q[w->qhead + k].mem;
	}
	w->qhead += n;
	w->qlen -= n;
	w->nout = n;
	if (n > 0) {
		w->marker_due = eng_now_mono_ns() + w->interval_ns;
		/* Caught up and drained: the marker ends this batch. */
		if (w->marker_pending && n < max && w->qlen == 0 &&
		    w->out[n - 1].type != ENG_EV_COMPACTED) {
			memset(&w->out[n], 0, sizeof(w->out[n]));
			w->out[n].type = ENG_EV_PROGRESS;
			w->out[n].kv.mod_rev = w->complete;
			w->outmem[n] = NULL;
			w->nout = ++n;
			w->marker_pending = false;
		}
		rc = (int)n;
	} else if (w->marker_pending) {
		memset(&w->out[0], 0, sizeof(w->out[0]));
		w->out[0].type = ENG_EV_PROGRESS;
		w->out[0].kv.mod_rev = w->complete;
		w->outmem[0] = NULL;
		w->nout = 1;
		w->marker_pending = false;
		w->marker_due = eng_now_mono_ns() + w->interval_ns;
		rc = 1;
	} else if (w->ended && w->qlen == 0 && w->end_err) {
		rc = w->end_err;
	} else {
		w->armed = true;
		rc = 0;
	}
out:
	pthread_mutex_unlock(&w->lock);
	*evs = w->out;
	return rc;
}

static eng_rev_t ew_next_rev(const eng_watch *base)
{
	struct ewatch *w = (struct ewatch *)base;
	eng_rev_t r;

	pthread_mutex_lock(&w->lock);
	if (w->qlen > 0 && w->q[w->qhead].ev.type != ENG_EV_COMPACTED)
		r = w->q[w->qhead].ev.kv.mod_rev;
	else
		r = w->complete + 1;
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Stop the thread (it closes its stream).  No lock held. */
static void ew_stop(struct ewatch *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->thread_running) {
		pthread_join(w->thread, NULL);
		w->thread_running = false;
	}
}

static void ew_close(eng_watch *base)
{
	struct ewatch *w = (struct ewatch *)base;
	struct etcdb *ee;

	ew_stop(w);
	ee = w->ee;
	if (ee) {
		pthread_mutex_lock(&ee->lock);
		if (w->prev)
			w->prev->next = w->next;
		else
			ee->watches = w->next;
		if (w->next)
			w->next->prev = w->prev;
		ee->watchers--;
		pthread_mutex_unlock(&ee->lock);
	}
	ew_free(w);
}

static const struct eng_watch_ops ew_ops = {
    .read = ew_read,
    .next_rev = ew_next_rev,
    .close = ew_close,
};

void etcdb_watch_shutdown(struct etcdb *ee)
{
	struct ewatch *w, *list;

	pthread_mutex_lock(&ee->lock);
	list = ee->watches;
	ee->watches = NULL;
	for (w = list; w; w = w->next)
		w->ee = NULL;
	pthread_mutex_unlock(&ee->lock);
	for (w = list; w; w = w->next) {
		ew_stop(w);
		pthread_mutex_lock(&w->lock);
		w->ended = true;
		w->end_err = ENG_E_CLOSED;
		maybe_notify(w);
		pthread_mutex_unlock(&w->lock);
	}
}

int etcdb_watch_open(eng *e, const void *key, size_t key_len, const void *end,
                     size_t end_len, eng_rev_t start,
                     eng_watch_notify_fn notify, void *arg, eng_watch **out)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct ewatch *w;
	eng_rev_t cur = 0;
	int rc;

	if (!etcdb_clip(key, key_len, &end, &end_len))
		return ENG_E_INVAL;
	rc = etcd_current_rev(ee->c, &cur);
	if (rc)
		return rc;
	etcdb_seen_rev(ee, cur);
	w = calloc(1, sizeof(*w));
	if (!w)
		return ENG_E_NOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->base.ops = &ew_ops;
	w->ee = ee;
	w->notify = notify;
	w->arg = arg;
	w->interval_ns = (int64_t)e->opt.progress_interval_ms * 1000000;
	w->key = malloc(key_len);
	w->end = malloc(end_len ? end_len : 1);
	if (!w->key || !w->end) {
		ew_free(w);
		return ENG_E_NOMEM;
	}
	memcpy(w->key, key, key_len);
	w->key_len = key_len;
	if (end_len)
		memcpy(w->end, end, end_len);
	w->end_len = end_len;
	/* Revisions below the start are not the watch's business. */
	w->complete = start ? start - 1 : cur;
	w->target = cur;
	w->armed = true;
	w->marker_due = eng_now_mono_ns() + w->interval_ns;
	if (w->complete >= w->target) {
		w->caught_up = true;
		w->marker_pending = true;
	}
	pthread_mutex_lock(&ee->lock);
	w->next = ee->watches;
	if (w->next)
		w->next->prev = w;
	ee->watches = w;
	ee->watchers++;
	pthread_mutex_unlock(&ee->lock);
	if (pthread_create(&w->thread, NULL, ew_main, w)) {
		ew_close(&w->base);
		return ENG_E_NOMEM;
	}
	w->thread_running = true;
	*out = &w->base;
	return 0;
}
