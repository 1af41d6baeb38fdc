/*
 * etcd_backend_watch.c — eng_watch over etcd: ONE etcd watch stream per
 * engine feeds the engine's watch hub (watch.c), which fans it out to every
 * watcher (the fs's notifier and every `@watch` reader), so a thousand
 * watchers cost one stream and one thread, not a thousand.
 *
 * The pump.  The first eng_watch_open makes the hub (its position: the
 * current revision R0) and starts the pump thread, which watches the whole
 * user key space ["\0", ETCDB_RSV) from R0 + 1 with etcd's progress
 * notifications and publishes each revision's events into the hub
 * (watch_hub_publish; etcd sends a revision's events in one response and
 * the pump reads every queued response whole).  A progress notification R
 * means every event <= R was sent on the stream: it becomes
 * watch_hub_advance(R), so the hub's PROGRESS markers keep their meaning.
 * The pump only moves forward: `next` is the first revision not yet
 * published or advanced.
 *
 * Cuts.  A broken stream (a member died, the network went away) is reopened
 * from `next` on the next endpoint that answers, with a backoff up to 2 s:
 * nothing is lost or repeated.  If `next` was compacted meanwhile, etcd
 * cancels the new stream with the compaction revision: the pump declares
 * [next, current] lost (watch_hub_lost) and streams on from current + 1.
 * The hub sends its live watchers to the store for the lost revisions, the
 * store (read_events below) reports the compaction, and each watcher reads
 * ENG_EV_COMPACTED (the fs relists): never a silent gap.
 *
 * The store.  A watcher that starts before the hub's window, or fell behind
 * it, catches up through read_events(from, to): a second, short-lived etcd
 * stream on the whole user key space from `from`, read until an event past
 * `to` or a progress notification at or past `to` arrives (the hub's window
 * holds the events after `to`, so on a busy store the first comes at once;
 * on an idle one etcd's progress notification ends it, hence the
 * recommended --experimental-watch-progress-notify-interval).  A start
 * below the compaction revision is reported by etcd with that revision.
 *
 * Times.  Every event gets mtime_ns from etcd_backend_mtime.c; the pump
 * records each revision it publishes there first.
 *
 * Locks: ee->hub_lock serializes the hub's creation; ee->lock guards
 * hub_closing; the hub has its own.  The pump calls into the hub without
 * holding any backend lock.
 */
#include "etcd_backend.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUMP_BACKOFF_MS 2000
#define READ_POLL_MS    100

/* The whole user key space, as one watch range. */
static const char user_key[1] = {0};

/* Stop waiting?  (The engine is closing.) */
static bool closing(struct etcdb *ee)
{
	bool c;

	pthread_mutex_lock(&ee->lock);
	c = ee->hub_closing;
	pthread_mutex_unlock(&ee->lock);
	return c;
}

/* Sleep up to ms unless the engine closes. */
static void nap(struct etcdb *ee, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ee->lock);
	if (!ee->hub_closing)
		pthread_cond_timedwait(&ee->cond, &ee->lock, &ts);
	pthread_mutex_unlock(&ee->lock);
}

static bool is_change(const struct eng_event *ev)
{
	return ev->type == ENG_EV_PUT || ev->type == ENG_EV_DELETE;
}

/*
 * Publish one read of the stream (whole responses, in revision order).
 * Returns 0, or the compaction revision (> 0) if etcd cancelled the stream
 * because *next was compacted.
 */
static eng_rev_t pump_take(struct etcdb *ee, struct eng_event *evs, int n,
                           eng_rev_t *next)
{
	int i = 0;

	while (i < n) {
		struct eng_event *ev = &evs[i];
		eng_rev_t rev = ev->kv.mod_rev;
		int j = i + 1;

		if (ev->type == ENG_EV_COMPACTED)
			return rev > 0 ? rev : 1;
		if (ev->type == ENG_EV_PROGRESS) {
			if (rev >= *next) {
				etcdb_seen_rev(ee, rev);
				watch_hub_advance(ee->hub, rev);
				*next = rev + 1;
			}
			i++;
			continue;
		}
		while (j < n && is_change(&evs[j]) && evs[j].kv.mod_rev == rev)
			j++;
		if (rev >= *next) {
			int64_t ns;

			etcdb_mtime_seen(ee->mt, rev, true);
			ns = etcdb_mtime_of(ee->mt, rev);
			for (int k = i; k < j; k++)
				evs[k].kv.mtime_ns = ns;
			etcdb_seen_rev(ee, rev);
			watch_hub_publish(ee->hub, rev, &evs[i],
			                  (size_t)(j - i));
			*next = rev + 1;
		}
		i = j;
	}
	return 0;
}

/* The stream could not resume at next (compacted at crev): declare
 * [next, current] lost and go on after it. */
static void pump_lost(struct etcdb *ee, eng_rev_t crev, eng_rev_t *next)
{
	eng_rev_t cur = 0;
	long backoff = 100;

	etcdb_seen_compact(ee, crev);
	while (etcd_current_rev(ee->c, &cur) != 0) {
		if (closing(ee))
			return;
		nap(ee, backoff);
		backoff = backoff * 2 > PUMP_BACKOFF_MS ? PUMP_BACKOFF_MS
		                                        : backoff * 2;
	}
	if (cur < *next)
		cur = *next; /* cannot happen: crev > next was compacted */
	eng_logf(&ee->base.opt, ENG_LOG_WARN,
	         "etcd watch: revision %lld was compacted (at %lld) while "
	         "the stream was down; its watchers get COMPACTED for "
	         "%lld..%lld",
	         (long long)*next, (long long)crev, (long long)*next,
	         (long long)cur);
	etcdb_seen_rev(ee, cur);
	watch_hub_lost(ee->hub, *next, cur);
	*next = cur + 1;
}

static void *pump_main(void *arg)
{
	struct etcdb *ee = arg;
	struct etcd_watch *sw = NULL;
	eng_rev_t next = ee->pump_from;
	long backoff = 100;
	bool warned = false;

	while (!closing(ee)) {
		struct eng_event *evs;
		eng_rev_t crev;
		bool cut, hold;
		int n, rc;

		pthread_mutex_lock(&ee->lock);
		cut = ee->pump_cut;
		hold = ee->pump_hold;
		pthread_mutex_unlock(&ee->lock);
		if (cut) {
			etcd_watch_close(sw);
			sw = NULL;
			pthread_mutex_lock(&ee->lock);
			ee->pump_cut = false;
			pthread_cond_broadcast(&ee->cond);
			pthread_mutex_unlock(&ee->lock);
		}
		if (hold && !sw) {
			nap(ee, 20);
			continue;
		}
		if (!sw) {
			rc = etcd_watch_open(ee->c, user_key, 1, ETCDB_RSV,
			                     ETCDB_RSV_LEN, next,
			                     ETCD_WATCH_PROGRESS, &sw);
			if (rc) {
				if (!warned)
					eng_logf(&ee->base.opt, ENG_LOG_WARN,
					         "etcd watch: cannot resume "
					         "at %lld: %s; retrying",
					         (long long)next,
					         eng_strerror(rc));
				warned = true;
				nap(ee, backoff);
				backoff = backoff * 2 > PUMP_BACKOFF_MS
				              ? PUMP_BACKOFF_MS
				              : backoff * 2;
				continue;
			}
			if (warned)
				eng_logf(&ee->base.opt, ENG_LOG_INFO,
				         "etcd watch: resumed at %lld",
				         (long long)next);
			warned = false;
			backoff = 100;
		}
		/* Everything queued at once: no revision is cut in two. */
		n = etcd_watch_read(sw, &evs, ETCD_WATCH_MAX_QUEUED,
		                    READ_POLL_MS);
		if (n < 0) {
			if (!closing(ee))
				eng_logf(&ee->base.opt, ENG_LOG_WARN,
				         "etcd watch: stream ended at %lld: %s",
				         (long long)next - 1, eng_strerror(n));
			etcd_watch_close(sw);
			sw = NULL;
			nap(ee,
			    backoff); /* a stream that ends at once: no spin */
			continue;
		}
		crev = pump_take(ee, evs, n, &next);
		if (crev) {
			etcd_watch_close(sw);
			sw = NULL;
			pump_lost(ee, crev, &next);
		}
	}
	etcd_watch_close(sw);
	return NULL;
}

/* ------------------------------------------------------------ the store */

struct replay {
	struct etcdb *ee;
	const char *key, *end;
	size_t key_len, end_len;
	eng_rev_t to;
	int (*cb)(void *cbarg, const struct eng_event *ev);
	void *cbarg;
};

static bool in_range(const struct replay *r, const struct eng_kv *kv)
{
	size_t n;
	int c;

	n = kv->key_len < r->key_len ? kv->key_len : r->key_len;
	c = memcmp(kv->key, r->key, n);
	if (c < 0 || (c == 0 && kv->key_len < r->key_len))
		return false;
	if (!r->end_len)
		return kv->key_len == r->key_len && c == 0;
	if (r->end_len == 1 && r->end[0] == '\0')
		return true;
	n = kv->key_len < r->end_len ? kv->key_len : r->end_len;
	c = memcmp(kv->key, r->end, n);
	return c < 0 || (c == 0 && kv->key_len < r->end_len);
}

/* One read of the replay stream.  1: done (past `to`), 0: go on, < 0 an
 * error, or the callback's non-zero value in *cbrc. */
static int replay_take(struct replay *r, struct eng_event *evs, int n,
                       int *cbrc, eng_rev_t *compact_rev)
{
	for (int i = 0; i < n; i++) {
		struct eng_event *ev = &evs[i];

		switch (ev->type) {
		case ENG_EV_COMPACTED:
			*compact_rev = ev->kv.mod_rev;
			etcdb_seen_compact(r->ee, ev->kv.mod_rev);
			return ENG_E_COMPACTED;
		case ENG_EV_PROGRESS:
			if (ev->kv.mod_rev >= r->to)
				return 1;
			break;
		case ENG_EV_PUT:
		case ENG_EV_DELETE:
			if (ev->kv.mod_rev > r->to)
				return 1;
			if (!in_range(r, &ev->kv))
				break;
			ev->kv.mtime_ns =
			    etcdb_mtime_of(r->ee->mt, ev->kv.mod_rev);
			*cbrc = r->cb(r->cbarg, ev);
			if (*cbrc)
				return 1;
			break;
		}
	}
	return 0;
}

/* watch_src.read_events: replay [from, to] of [key, end) from etcd. */
static int src_read_events(void *arg, eng_rev_t from, eng_rev_t to,
                           const void *key, size_t key_len, const void *end,
                           size_t end_len,
                           int (*cb)(void *cbarg, const struct eng_event *ev),
                           void *cbarg, eng_rev_t *compact_rev)
{
	struct etcdb *ee = arg;
	struct replay r = {
	    .ee = ee,
	    .key = key,
	    .key_len = key_len,
	    .end = end,
	    .end_len = end_len,
	    .to = to,
	    .cb = cb,
	    .cbarg = cbarg,
	};
	struct etcd_watch *sw = NULL;
	int64_t deadline;
	int rc, cbrc = 0;

	if (from > to)
		return 0;
	rc = ETCDB_RETRY(ee, etcd_watch_open(ee->c, user_key, 1, ETCDB_RSV,
	                                     ETCDB_RSV_LEN, from,
	                                     ETCD_WATCH_PROGRESS, &sw));
	if (rc)
		goto out;
	/* Quiet for this long: etcd sends no progress notifications. */
	deadline = eng_now_mono_ns() + (ee->timeout_ms + 5000) * 1000000LL;
	for (;;) {
		struct eng_event *evs;
		int n = etcd_watch_read(sw, &evs, ETCD_WATCH_MAX_QUEUED,
		                        READ_POLL_MS);

		if (n < 0) {
			rc = n == ENG_E_CLOSED ? ENG_E_UNAVAILABLE : n;
			break;
		}
		if (n > 0)
			deadline = eng_now_mono_ns() +
			           (ee->timeout_ms + 5000) * 1000000LL;
		rc = replay_take(&r, evs, n, &cbrc, compact_rev);
		if (rc)
			break;
		if (closing(ee)) {
			rc = ENG_E_CLOSED;
			break;
		}
		if (eng_now_mono_ns() > deadline) {
			eng_logf(&ee->base.opt, ENG_LOG_WARN,
			         "etcd watch: replay of %lld..%lld got no "
			         "progress notification; is etcd run with "
			         "--experimental-watch-progress-notify-"
			         "interval?",
			         (long long)from, (long long)to);
			rc = ENG_E_TIMEOUT;
			break;
		}
	}
	if (rc == 1)
		rc = cbrc;
out:
	etcd_watch_close(sw);
	return rc;
}

static eng_rev_t src_current_rev(void *arg)
{
	struct etcdb *ee = arg;

	return ee->base.ops->current_rev(&ee->base);
}

/* The compaction revision: one request when it did not move (see
 * etcdb_probe_compact), the last known one if etcd cannot be reached (a
 * start below a newer one is then found by read_events). */
static eng_rev_t src_compact_rev(void *arg)
{
	struct etcdb *ee = arg;

	return ee->base.ops->compact_rev(&ee->base);
}

/* ------------------------------------------------------- open and close */

/* Make the hub and start its stream (first watch).  ee->hub_lock held. */
static int hub_start(struct etcdb *ee)
{
	struct watch_src src = {
	    .arg = ee,
	    .read_events = src_read_events,
	    .current_rev = src_current_rev,
	    .compact_rev = src_compact_rev,
	};
	eng_rev_t cur = 0;
	int rc;

	rc = ETCDB_RETRY(ee, etcd_current_rev(ee->c, &cur));
	if (rc)
		return rc;
	etcdb_seen_rev(ee, cur);
	rc = watch_hub_new_src(&src, &ee->base.opt, cur, &ee->hub);
	if (rc)
		return rc;
	ee->pump_from = cur + 1;
	if (pthread_create(&ee->pump, NULL, pump_main, ee)) {
		watch_hub_free(ee->hub);
		ee->hub = NULL;
		return ENG_E_NOMEM;
	}
	ee->pump_running = true;
	return 0;
}

void etcdb_watch_shutdown(struct etcdb *ee)
{
	pthread_mutex_lock(&ee->lock);
	ee->hub_closing = true;
	pthread_cond_broadcast(&ee->cond);
	pthread_mutex_unlock(&ee->lock);
	pthread_mutex_lock(&ee->hub_lock);
	if (ee->pump_running) {
		pthread_join(ee->pump, NULL);
		ee->pump_running = false;
	}
	if (ee->hub) {
		watch_hub_free(ee->hub); /* ends the watchers: CLOSED */
		ee->hub = NULL;
	}
	pthread_mutex_unlock(&ee->hub_lock);
}

void etcdb_test_cut_stream(eng *e, bool hold)
{
	struct etcdb *ee = (struct etcdb *)e;
	bool running;

	pthread_mutex_lock(&ee->hub_lock);
	running = ee->pump_running;
	pthread_mutex_unlock(&ee->hub_lock);
	pthread_mutex_lock(&ee->lock);
	ee->pump_cut = true;
	ee->pump_hold = hold;
	pthread_cond_broadcast(&ee->cond);
	/* wait until the pump dropped its stream (if there is a pump) */
	for (int i = 0; i < 500 && ee->pump_cut && running; i++) {
		pthread_mutex_unlock(&ee->lock);
		nap(ee, 10);
		pthread_mutex_lock(&ee->lock);
	}
	pthread_mutex_unlock(&ee->lock);
}

int64_t etcdb_watch_count(struct etcdb *ee)
{
	int64_t n;

	pthread_mutex_lock(&ee->hub_lock);
	n = ee->hub ? watch_hub_count(ee->hub) : 0;
	pthread_mutex_unlock(&ee->hub_lock);
	return n;
}

int etcdb_watch_open(eng *e, const void *key, size_t key_len, const void *end,
                     size_t end_len, eng_rev_t start,
                     eng_watch_notify_fn notify, void *arg, eng_watch **out)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct watch_hub *h;
	int rc = 0;

	if (!etcdb_clip(key, key_len, &end, &end_len))
		return ENG_E_INVAL;
	pthread_mutex_lock(&ee->hub_lock);
	if (closing(ee))
		rc = ENG_E_CLOSED;
	else if (!ee->hub)
		rc = hub_start(ee);
	h = ee->hub;
	pthread_mutex_unlock(&ee->hub_lock);
	if (rc)
		return rc;
	return watch_hub_open(h, key, key_len, end, end_len, start, notify, arg,
	                      out);
}
