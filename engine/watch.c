/*
 * watch.c — the watch hub: one fan-out shared by every watcher of a store
 * (the local one, or the etcd backend's one watch stream: watch_hub_new_src).
 *
 * The committer (or the etcd backend's stream reader) publishes each durable
 * revision's events (watch_hub_publish) into the window, a ring of recent
 * events bounded by count and bytes, and wakes the dispatcher thread.  The
 * dispatcher fans events out to the LIVE watchers whose range matches (exact
 * keys and prefixes are found by hash probes of each prefix length in use,
 * other ranges by a list) by putting a reference into the watcher's bounded
 * queue.  A watcher whose queue is full when a new revision arrives is switched
 * to CATCHUP at that revision: it stops receiving, and its reader, once the
 * queue is drained, refills it from the window if the window still holds its
 * position, else from the store (local_read_events, or a watch_src's
 * read_events when another backend feeds the hub), and finally goes LIVE again
 * at exactly the dispatcher's position.  History replay for an old start
 * revision is the same catch-up.  Writers therefore never wait for a watcher,
 * and a watcher that stops reading costs at most its queue.
 *
 * Pacing: a dispatcher that just fanned events out naps WATCH_PACE_NS (1 ms)
 * before it waits for the next publish, so under a stream of commits it
 * wakes once per nap for all the revisions published meanwhile, and the
 * committer's signal finds no waiter to wake.  A revision published after a
 * quiet spell is fanned out at once; none waits more than one nap.
 *
 * Invariants:
 *  - Every event with revision >= win_start is in the window (or not yet
 *    published); the window drops whole revisions, only dispatched ones.
 *  - The dispatcher handles whole revisions and makes a batch visible to a
 *    reader (q_vis) only once the batch is complete, so a reader never sees
 *    part of a revision; disp_seq/disp_rev (everything up to them has been
 *    fanned out) move at the end of a batch, under reg_lock.
 *  - A LIVE watcher has been given every matching event <= disp_rev; a
 *    CATCHUP watcher every matching event < fill_rev, and fill_rev <=
 *    disp_rev + 1 whenever reg_lock is free.  Going LIVE happens under
 *    reg_lock with the queue filled up to disp_seq: no gap, no duplicate.
 *  - A watcher's state is written only with reg_lock and its lock held, so
 *    either lock is enough to read it.
 *  - Lock order: reg_lock, then a watcher's lock, then the hub's lock.
 *    notify is called with reg_lock and the watcher's lock held.
 */
#include "eng_int.h"
#include "watch_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Events the dispatcher fans out per batch, copied per lock hold. */
#define WATCH_BATCH 4096
#define WATCH_CHUNK 512
/* Window events a catching-up reader scans per hold of the hub's lock, and
 * at most under the registry lock to go live. */
#define WATCH_SCAN 1024
#define LIVE_SCAN  (4 * WATCH_BATCH)
/* After fanning events out the dispatcher naps this long before it waits
 * again (see hub_thread): the most a revision waits for a busy hub. */
#define WATCH_PACE_NS       1000000
#define PROGRESS_MIN_MS     100
#define PROGRESS_DEFAULT_MS 5000
/* An empty queue keeps an array of at most this many slots. */
#define QUEUE_KEEP 16

static const struct watch_limits watch_default_limits = {
    .window_events = 65536,
    .window_bytes = 32u << 20,
    .queue_events = 1024,
    .queue_bytes = 4u << 20,
};
static struct watch_limits watch_limits_now = {
    .window_events = 65536,
    .window_bytes = 32u << 20,
    .queue_events = 1024,
    .queue_bytes = 4u << 20,
};

void watch_set_test_limits(const struct watch_limits *lim)
{
	watch_limits_now = lim ? *lim : watch_default_limits;
}

static atomic_int watch_fail_publishes;

void watch_test_fail_publishes(int n)
{
	atomic_store(&watch_fail_publishes, n);
}

/* Fault injection for tests: should this publish fail? */
static bool publish_fails(void)
{
	int n = atomic_load(&watch_fail_publishes);

	while (n > 0)
		if (atomic_compare_exchange_weak(&watch_fail_publishes, &n,
		                                 n - 1))
			return true;
	return false;
}

/* ------------------------------------------------------------ shared events */

/* One event with its key and value, shared by the window and the queues. */
struct hev {
	atomic_long ref;
	size_t bytes;        /* accounted size, header included */
	struct eng_event ev; /* kv.key / kv.value point into data */
	char data[];
};

static struct hev *hev_new(const struct eng_event *src)
{
	size_t kl = src->kv.key_len;
	size_t vl = src->kv.value ? src->kv.value_len : 0;
	struct hev *e = malloc(sizeof(*e) + kl + vl);

	if (!e)
		return NULL;
	atomic_init(&e->ref, 1);
	e->bytes = sizeof(*e) + kl + vl;
	e->ev = *src;
	if (kl)
		memcpy(e->data, src->kv.key, kl);
	e->ev.kv.key = e->data;
	if (src->kv.value) {
		if (vl)
			memcpy(e->data + kl, src->kv.value, vl);
		e->ev.kv.value = e->data + kl;
	}
	return e;
}

static inline eng_rev_t hev_rev(const struct hev *e)
{
	return e->ev.kv.mod_rev;
}

static void hev_get(struct hev *e)
{
	atomic_fetch_add_explicit(&e->ref, 1, memory_order_relaxed);
}

static void hev_put(struct hev *e)
{
	if (e &&
	    atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel) == 1)
		free(e);
}

/* ------------------------------------------------------------ the watchers */

enum wstate { W_CATCHUP, W_LIVE, W_COMPACTED, W_CLOSED };
enum wkind { WK_KEY, WK_PREFIX, WK_RANGE };

struct widx_node;

struct watcher {
	struct eng_watch pub; /* first: eng_watch * <-> struct watcher * */
	struct watch_hub *h;

	/* immutable after open */
	char *key;
	size_t key_len;
	char *end;
	size_t end_len;
	enum wkind kind;
	eng_rev_t start;
	eng_watch_notify_fn notify;
	void *arg;

	/* protected by h->reg_lock */
	struct widx_node *node; /* WK_KEY / WK_PREFIX: its index entry */
	struct watcher *idx_prev, *idx_next; /* node's list or h->ranges */
	struct watcher *all_prev, *all_next; /* h->all */
	struct watcher *touched_next;        /* dispatcher's current batch */
	bool touched;
	size_t tidx;  /* position in h->theap */
	int64_t tkey; /* its key there: <= the next time to look at it */

	pthread_mutex_t lock;
	/* protected by lock (state: written with h->reg_lock held too) */
	enum wstate state;
	struct hev *
	    *q; /* ring: q_len events from q_head, first q_vis visible */
	size_t q_cap, q_head, q_len, q_vis, q_bytes;
	eng_rev_t q_last_rev;  /* revision of the newest queued event */
	eng_rev_t fill_rev;    /* CATCHUP: next revision to fetch */
	eng_rev_t compact_rev; /* COMPACTED: the compaction revision */
	bool compact_told;
	/* Opened at exactly the compaction revision R: a deletion at R was
	 * compacted away (compacted_away) and must not reach it live either,
	 * when the dispatcher had not yet fanned R out at open. */
	eng_rev_t skip_del_rev;
	bool readable;      /* notified and not yet read dry */
	bool want_progress; /* caught up: a marker goes out at once */
	bool progress_due;  /* idle for an interval: a marker goes out */
	int64_t due_ns;     /* when an idle LIVE watcher gets its next marker */

	_Atomic eng_rev_t next_rev; /* written by the reader */

	/* reader-owned: the last batch returned by read */
	struct eng_event *out;
	struct hev **out_hev; /* a reference per out[i], or NULL */
	size_t out_n, out_cap;
};

/* ------------------------------------------------- key/prefix hash indexes */

struct widx_node {
	struct widx_node *next; /* hash chain */
	uint64_t hash;
	struct watcher *watchers; /* through idx_next */
	size_t len;
	char key[];
};

struct widx_len {
	size_t len;
	size_t nodes;
};

struct widx {
	struct widx_node **b;
	size_t nb; /* buckets: 0 or a power of two */
	size_t n;
	struct widx_len *lens; /* distinct key lengths, ascending */
	size_t nlens, caplens;
};

#define FNV_BASIS 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static inline uint64_t fnv_step(uint64_t hs, unsigned char c)
{
	return (hs ^ c) * FNV_PRIME;
}

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t hs = FNV_BASIS;

	for (size_t i = 0; i < n; i++)
		hs = fnv_step(hs, s[i]);
	return hs;
}

static struct widx_node *widx_find(const struct widx *ix, const void *key,
                                   size_t len, uint64_t hs)
{
	struct widx_node *nd;

	if (!ix->nb)
		return NULL;
	for (nd = ix->b[hs & (ix->nb - 1)]; nd; nd = nd->next)
		if (nd->hash == hs && nd->len == len &&
		    !memcmp(nd->key, key, len))
			return nd;
	return NULL;
}

static int widx_len_add(struct widx *ix, size_t len)
{
	size_t i;

	for (i = 0; i < ix->nlens && ix->lens[i].len < len; i++)
		;
	if (i < ix->nlens && ix->lens[i].len == len) {
		ix->lens[i].nodes++;
		return 0;
	}
	if (ix->nlens == ix->caplens) {
		size_t cap = ix->caplens ? 2 * ix->caplens : 8;
		struct widx_len *nl = realloc(ix->lens, cap * sizeof(*nl));

		if (!nl)
			return ENG_E_NOMEM;
		ix->lens = nl;
		ix->caplens = cap;
	}
	memmove(&ix->lens[i + 1], &ix->lens[i],
	        (ix->nlens - i) * sizeof(ix->lens[0]));
	ix->lens[i].len = len;
	ix->lens[i].nodes = 1;
	ix->nlens++;
	return 0;
}

static void widx_len_del(struct widx *ix, size_t len)
{
	for (size_t i = 0; i < ix->nlens; i++) {
		if (ix->lens[i].len != len)
			continue;
		if (--ix->lens[i].nodes == 0) {
			memmove(&ix->lens[i], &ix->lens[i + 1],
			        (ix->nlens - i - 1) * sizeof(ix->lens[0]));
			ix->nlens--;
		}
		return;
	}
}

static int widx_grow(struct widx *ix)
{
	size_t nb = ix->nb ? 2 * ix->nb : 64;
	struct widx_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return ENG_E_NOMEM;
	for (size_t i = 0; i < ix->nb; i++) {
		struct widx_node *nd = ix->b[i], *next;

		for (; nd; nd = next) {
			next = nd->next;
			nd->next = b[nd->hash & (nb - 1)];
			b[nd->hash & (nb - 1)] = nd;
		}
	}
	free(ix->b);
	ix->b = b;
	ix->nb = nb;
	return 0;
}

/* The node for key (created if missing), or NULL on ENOMEM. */
static struct widx_node *widx_get(struct widx *ix, const void *key, size_t len)
{
	uint64_t hs = fnv(key, len);
	struct widx_node *nd = widx_find(ix, key, len, hs);

	if (nd)
		return nd;
	if (ix->n >= ix->nb && widx_grow(ix) < 0)
		return NULL;
	nd = malloc(sizeof(*nd) + len);
	if (!nd)
		return NULL;
	if (widx_len_add(ix, len) < 0) {
		free(nd);
		return NULL;
	}
	nd->hash = hs;
	nd->len = len;
	nd->watchers = NULL;
	memcpy(nd->key, key, len);
	nd->next = ix->b[hs & (ix->nb - 1)];
	ix->b[hs & (ix->nb - 1)] = nd;
	ix->n++;
	return nd;
}

static void widx_drop(struct widx *ix, struct widx_node *nd)
{
	struct widx_node **pp = &ix->b[nd->hash & (ix->nb - 1)];

	while (*pp != nd)
		pp = &(*pp)->next;
	*pp = nd->next;
	ix->n--;
	widx_len_del(ix, nd->len);
	free(nd);
}

static void widx_free(struct widx *ix)
{
	for (size_t i = 0; i < ix->nb; i++) {
		struct widx_node *nd = ix->b[i], *next;

		for (; nd; nd = next) {
			next = nd->next;
			free(nd);
		}
	}
	free(ix->b);
	free(ix->lens);
	memset(ix, 0, sizeof(*ix));
}

/* -------------------------------------------------------------- the hub */

struct watch_hub {
	struct local *l;      /* the local store, or NULL with src */
	struct watch_src src; /* another backend's store (src.arg != NULL) */
	struct eng_options opt;
	struct watch_limits lim;
	int64_t progress_ns;
	atomic_long refs; /* the store's plus one per open watcher */
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* wakes the dispatcher */
	pthread_cond_t idle; /* store readers gone (shutdown waits) */
	/* the window, protected by lock: events of seq [win_lo, win_hi) at
	 * win[seq & (win_cap - 1)] */
	struct hev **win;
	size_t win_cap;
	uint64_t win_lo, win_hi;
	uint64_t disp_seq; /* events below were fanned out */
	size_t win_bytes;
	eng_rev_t win_start; /* see the invariants */
	eng_rev_t head_rev;  /* the last revision published or advanced */
	eng_rev_t adv_rev;   /* the last revision advanced without events */
	/* a publish that could not be kept (ENOMEM) leaves a hole of lost
	 * revisions [hole_from, hole_to] at seq hole_seq; live watchers are
	 * sent to the store for them */
	bool hole;
	uint64_t hole_seq;
	eng_rev_t hole_from, hole_to;
	bool closed, stop;
	int store_readers;          /* readers in a catch-up section */
	int64_t next_timer_ns;      /* when the dispatcher must look at theap */
	_Atomic eng_rev_t disp_rev; /* written with reg_lock and lock held */

	pthread_mutex_t reg_lock;
	/* the registry, protected by reg_lock */
	struct widx keys, prefixes;
	struct watcher *ranges; /* WK_RANGE watchers */
	struct watcher *all;
	struct watcher **theap; /* min-heap on tkey: progress timers */
	size_t theap_n, theap_cap;
	struct watcher *touched;
	struct hev **chunk; /* dispatcher-owned, WATCH_CHUNK entries */

	atomic_long count;
};

static void hub_destroy(struct watch_hub *h)
{
	for (uint64_t s = h->win_lo; s < h->win_hi; s++)
		hev_put(h->win[s & (h->win_cap - 1)]);
	free(h->win);
	free(h->chunk);
	free(h->theap);
	widx_free(&h->keys);
	widx_free(&h->prefixes);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->reg_lock);
	pthread_cond_destroy(&h->cond);
	pthread_cond_destroy(&h->idle);
	free(h);
}

static void hub_put(struct watch_hub *h)
{
	if (atomic_fetch_sub(&h->refs, 1) == 1)
		hub_destroy(h);
}

/* The store behind the hub: the local backend's, or a watch_src's. */
static int hub_read_events(struct watch_hub *h, eng_rev_t from, eng_rev_t to,
                           const void *key, size_t key_len, const void *end,
                           size_t end_len,
                           int (*cb)(void *arg, const struct eng_event *ev),
                           void *arg, eng_rev_t *compact_rev)
{
	if (h->src.read_events)
		return h->src.read_events(h->src.arg, from, to, key, key_len,
		                          end, end_len, cb, arg, compact_rev);
	return local_read_events(h->l, from, to, key, key_len, end, end_len, cb,
	                         arg, compact_rev);
}

static eng_rev_t hub_current_rev(struct watch_hub *h)
{
	if (h->src.current_rev)
		return h->src.current_rev(h->src.arg);
	return local_current_rev(h->l);
}

static eng_rev_t hub_compact_rev(struct watch_hub *h)
{
	if (h->src.compact_rev)
		return h->src.compact_rev(h->src.arg);
	return local_compact_rev(h->l);
}

static inline struct hev *win_at(const struct watch_hub *h, uint64_t seq)
{
	return h->win[seq & (h->win_cap - 1)];
}

/* The first seq in the window with revision >= rev (win_hi if none). */
static uint64_t win_seek(const struct watch_hub *h, eng_rev_t rev)
{
	uint64_t lo = h->win_lo, hi = h->win_hi;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (hev_rev(win_at(h, mid)) < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int win_reserve(struct watch_hub *h, size_t n)
{
	size_t used = h->win_hi - h->win_lo, cap = h->win_cap;
	struct hev **nw;

	if (used + n <= cap)
		return 0;
	if (!cap)
		cap = 1024;
	while (cap < used + n)
		cap *= 2;
	nw = malloc(cap * sizeof(*nw));
	if (!nw)
		return ENG_E_NOMEM;
	for (uint64_t s = h->win_lo; s < h->win_hi; s++)
		nw[s & (cap - 1)] = win_at(h, s);
	free(h->win);
	h->win = nw;
	h->win_cap = cap;
	return 0;
}

/* Drop the oldest dispatched revisions while the window is over its bounds.
 * Called with lock held. */
static void win_evict(struct watch_hub *h)
{
	while (h->win_lo < h->disp_seq &&
	       (h->win_hi - h->win_lo > h->lim.window_events ||
	        h->win_bytes > h->lim.window_bytes)) {
		eng_rev_t r = hev_rev(win_at(h, h->win_lo));

		while (h->win_lo < h->disp_seq &&
		       hev_rev(win_at(h, h->win_lo)) == r) {
			struct hev *e = win_at(h, h->win_lo);

			h->win_bytes -= e->bytes;
			hev_put(e);
			h->win_lo++;
		}
		h->win_start = r + 1;
	}
}

/* -------------------------------------------------------- progress timers */

static void theap_swap(struct watch_hub *h, size_t a, size_t b)
{
	struct watcher *t = h->theap[a];

	h->theap[a] = h->theap[b];
	h->theap[b] = t;
	h->theap[a]->tidx = a;
	h->theap[b]->tidx = b;
}

static void theap_fix(struct watch_hub *h, size_t i)
{
	while (i > 0 && h->theap[(i - 1) / 2]->tkey > h->theap[i]->tkey) {
		theap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->theap_n && h->theap[l]->tkey < h->theap[m]->tkey)
			m = l;
		if (r < h->theap_n && h->theap[r]->tkey < h->theap[m]->tkey)
			m = r;
		if (m == i)
			return;
		theap_swap(h, i, m);
		i = m;
	}
}

static int theap_add(struct watch_hub *h, struct watcher *w)
{
	if (h->theap_n == h->theap_cap) {
		size_t cap = h->theap_cap ? 2 * h->theap_cap : 64;
		struct watcher **nh = realloc(h->theap, cap * sizeof(*nh));

		if (!nh)
			return ENG_E_NOMEM;
		h->theap = nh;
		h->theap_cap = cap;
	}
	w->tidx = h->theap_n;
	h->theap[h->theap_n++] = w;
	theap_fix(h, w->tidx);
	return 0;
}

static void theap_del(struct watch_hub *h, struct watcher *w)
{
	size_t i = w->tidx;

	h->theap_n--;
	if (i == h->theap_n)
		return;
	h->theap[i] = h->theap[h->theap_n];
	h->theap[i]->tidx = i;
	theap_fix(h, i);
}

/* ------------------------------------------------------------- matching */

static int bytes_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static bool watcher_match(const struct watcher *w, const char *k, size_t len)
{
	switch (w->kind) {
	case WK_KEY:
		return len == w->key_len && !memcmp(k, w->key, len);
	case WK_PREFIX:
		return len >= w->key_len && !memcmp(k, w->key, w->key_len);
	case WK_RANGE:
		break;
	}
	if (bytes_cmp(k, len, w->key, w->key_len) < 0)
		return false;
	if (w->end_len == 1 && w->end[0] == '\0')
		return true;
	return bytes_cmp(k, len, w->end, w->end_len) < 0;
}

/* ------------------------------------------------------- a watcher's queue */

static int queue_reserve(struct watcher *w, size_t n)
{
	size_t cap = w->q_cap;
	struct hev **nq;

	if (w->q_len + n <= cap)
		return 0;
	if (!cap)
		cap = 8;
	while (cap < w->q_len + n)
		cap *= 2;
	nq = malloc(cap * sizeof(*nq));
	if (!nq)
		return ENG_E_NOMEM;
	for (size_t i = 0; i < w->q_len; i++)
		nq[i] = w->q[(w->q_head + i) % w->q_cap];
	free(w->q);
	w->q = nq;
	w->q_cap = cap;
	w->q_head = 0;
	return 0;
}

/* Append e (taking over one reference); room must be reserved. */
static void queue_push(struct watcher *w, struct hev *e)
{
	w->q[(w->q_head + w->q_len) % w->q_cap] = e;
	w->q_len++;
	w->q_bytes += e->bytes;
	w->q_last_rev = hev_rev(e);
}

static struct hev *queue_at(const struct watcher *w, size_t i)
{
	return w->q[(w->q_head + i) % w->q_cap];
}

static void queue_clear(struct watcher *w)
{
	for (size_t i = 0; i < w->q_len; i++)
		hev_put(queue_at(w, i));
	w->q_len = w->q_vis = w->q_head = w->q_bytes = 0;
	free(w->q);
	w->q = NULL;
	w->q_cap = 0;
}

static bool queue_full(const struct watcher *w)
{
	const struct watch_limits *lim = &w->h->lim;

	return w->q_len >= lim->queue_events || w->q_bytes >= lim->queue_bytes;
}

/* ------------------------------------------------------------- notifying */

/* Something a read would return now (or work it would do). Under w->lock. */
static bool watcher_has_data(const struct watcher *w)
{
	switch (w->state) {
	case W_CLOSED:
	case W_CATCHUP:
		return true;
	case W_COMPACTED:
		return !w->compact_told || w->q_vis;
	case W_LIVE:
		break;
	}
	return w->q_vis || w->want_progress || w->progress_due;
}

/* Notify on the edge "nothing to read" -> "something to read".  Called with
 * h->reg_lock and w->lock held. */
static void watcher_kick(struct watcher *w)
{
	if (w->readable || !watcher_has_data(w))
		return;
	w->readable = true;
	if (w->notify)
		w->notify(w->arg);
}

/* ------------------------------------------------------------ dispatching */

static void touch(struct watch_hub *h, struct watcher *w)
{
	if (w->touched)
		return;
	w->touched = true;
	w->touched_next = h->touched;
	h->touched = w;
}

static bool compacted_away(const struct eng_event *ev, eng_rev_t crev);

/* Give e to w if w is live and wants it.  Dispatcher, reg_lock held. */
static void deliver(struct watch_hub *h, struct watcher *w, struct hev *e)
{
	eng_rev_t rev = hev_rev(e);

	if (w->state != W_LIVE || rev < w->start)
		return;
	if (rev == w->skip_del_rev && compacted_away(&e->ev, rev))
		return;
	pthread_mutex_lock(&w->lock);
	if (rev != w->q_last_rev && queue_full(w))
		goto catchup;
	if (queue_reserve(w, 1) < 0) {
		/* take back the part of this revision already queued */
		while (w->q_len > w->q_vis &&
		       hev_rev(queue_at(w, w->q_len - 1)) == rev) {
			struct hev *t = queue_at(w, w->q_len - 1);

			w->q_len--;
			w->q_bytes -= t->bytes;
			hev_put(t);
		}
		goto catchup;
	}
	hev_get(e);
	queue_push(w, e);
	pthread_mutex_unlock(&w->lock);
	touch(h, w);
	return;
catchup:
	/* the queue is not grown: the reader fetches rev on later */
	w->state = W_CATCHUP;
	w->fill_rev = rev;
	pthread_mutex_unlock(&w->lock);
	touch(h, w);
}

static void fan_out(struct watch_hub *h, struct hev *e)
{
	const unsigned char *k = (const unsigned char *)e->ev.kv.key;
	size_t len = e->ev.kv.key_len, pos = 0;
	uint64_t hs = FNV_BASIS;
	struct widx_node *nd;
	struct watcher *w, *next;

	for (size_t i = 0; i < h->prefixes.nlens; i++) {
		size_t plen = h->prefixes.lens[i].len;

		if (plen > len)
			break;
		for (; pos < plen; pos++)
			hs = fnv_step(hs, k[pos]);
		nd = widx_find(&h->prefixes, k, plen, hs);
		for (w = nd ? nd->watchers : NULL; w; w = next) {
			next = w->idx_next;
			deliver(h, w, e);
		}
	}
	if (h->keys.n) {
		for (; pos < len; pos++)
			hs = fnv_step(hs, k[pos]);
		nd = widx_find(&h->keys, k, len, hs);
		for (w = nd ? nd->watchers : NULL; w; w = next) {
			next = w->idx_next;
			deliver(h, w, e);
		}
	}
	for (w = h->ranges; w; w = next) {
		next = w->idx_next;
		if (watcher_match(w, (const char *)k, len))
			deliver(h, w, e);
	}
}

/* Fan out the window's [from, to) (whole revisions), then make it visible
 * to the readers and move disp_seq.  reg_lock held, lock not held. */
static void dispatch(struct watch_hub *h, uint64_t from, uint64_t to)
{
	eng_rev_t last = 0;
	struct watcher *w, *next;

	while (from < to) {
		size_t n = to - from < WATCH_CHUNK ? to - from : WATCH_CHUNK;

		/* the window may be reallocated meanwhile, but these
		 * entries are not evicted before disp_seq passes them */
		pthread_mutex_lock(&h->lock);
		for (size_t i = 0; i < n; i++)
			h->chunk[i] = win_at(h, from + i);
		pthread_mutex_unlock(&h->lock);
		for (size_t i = 0; i < n; i++)
			fan_out(h, h->chunk[i]);
		last = hev_rev(h->chunk[n - 1]);
		from += n;
	}
	for (w = h->touched; w; w = next) {
		next = w->touched_next;
		w->touched = false;
		pthread_mutex_lock(&w->lock);
		w->q_vis = w->q_len;
		watcher_kick(w);
		pthread_mutex_unlock(&w->lock);
	}
	h->touched = NULL;
	pthread_mutex_lock(&h->lock);
	h->disp_seq = to;
	atomic_store(&h->disp_rev, last);
	win_evict(h);
	pthread_mutex_unlock(&h->lock);
}

/* The window lost revisions [hole_from, hole_to]: send every live watcher
 * to the store for them and restart the window after them.  reg_lock held,
 * disp_seq == hole_seq. */
static void handle_hole(struct watch_hub *h)
{
	struct watcher *w;
	eng_rev_t from, to;

	pthread_mutex_lock(&h->lock);
	from = h->hole_from;
	to = h->hole_to;
	pthread_mutex_unlock(&h->lock);
	eng_logf(&h->opt, ENG_LOG_WARN,
	         "watch: revisions %lld..%lld were not kept (out of memory "
	         "or a lost stream), they are replayed from the store",
	         (long long)from, (long long)to);
	for (w = h->all; w; w = w->all_next) {
		pthread_mutex_lock(&w->lock);
		/* a future start after the hole lost nothing */
		if (w->state == W_LIVE && w->start <= to) {
			w->state = W_CATCHUP;
			w->fill_rev = from > w->start ? from : w->start;
			watcher_kick(w);
		}
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_lock(&h->lock);
	while (h->win_lo < h->hole_seq) {
		struct hev *e = win_at(h, h->win_lo++);

		h->win_bytes -= e->bytes;
		hev_put(e);
	}
	h->win_start = to + 1;
	atomic_store(&h->disp_rev, to);
	h->hole = false;
	pthread_mutex_unlock(&h->lock);
}

/* Look at the watchers whose timer is due: the first notify after open and
 * idle progress markers.  Returns when to look again.  reg_lock held. */
static int64_t run_timers(struct watch_hub *h, int64_t now)
{
	while (h->theap_n && h->theap[0]->tkey <= now) {
		struct watcher *w = h->theap[0];

		pthread_mutex_lock(&w->lock);
		if (w->due_ns <= now) {
			/* idle = live with nothing queued: R is then exact */
			if (w->state == W_LIVE && !w->q_len &&
			    !w->want_progress)
				w->progress_due = true;
			w->due_ns = now + h->progress_ns;
		}
		watcher_kick(w);
		w->tkey = w->due_ns;
		pthread_mutex_unlock(&w->lock);
		theap_fix(h, 0);
	}
	return h->theap_n ? h->theap[0]->tkey : INT64_MAX;
}

/* Where the next dispatch batch ends (a revision boundary). Lock held. */
static uint64_t batch_end(const struct watch_hub *h)
{
	uint64_t lim = h->hole ? h->hole_seq : h->win_hi;
	uint64_t end = h->disp_seq + WATCH_BATCH;

	if (end >= lim)
		return lim;
	while (end < lim &&
	       hev_rev(win_at(h, end)) == hev_rev(win_at(h, end - 1)))
		end++;
	return end;
}

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m,
                            int64_t when_ns)
{
	struct timespec ts;

	if (when_ns == INT64_MAX) {
		pthread_cond_wait(c, m);
		return;
	}
	ts.tv_sec = when_ns / 1000000000;
	ts.tv_nsec = when_ns % 1000000000;
	pthread_cond_timedwait(c, m, &ts);
}

/* Sleep without being a waiter on h->cond: publishes meanwhile cost no
 * wake-up (signalling a condition nobody waits on is no system call). */
static void pace(void)
{
	struct timespec ts = {0, WATCH_PACE_NS};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void *hub_thread(void *arg)
{
	struct watch_hub *h = arg;
	bool busy = false; /* the last round fanned events out */

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		uint64_t from = h->disp_seq, to = batch_end(h);
		bool hole_now = h->hole && from == h->hole_seq;
		bool adv = from == h->win_hi && !h->hole &&
		           h->adv_rev > atomic_load(&h->disp_rev);
		int64_t next;

		if (from == to && !hole_now && !adv &&
		    eng_now_mono_ns() < h->next_timer_ns) {
			if (busy) {
				/* Under load, one wake-up per pace for a
				 * burst of revisions, not one per revision;
				 * a revision after a quiet spell is fanned
				 * out at once. */
				busy = false;
				pthread_mutex_unlock(&h->lock);
				pace();
				pthread_mutex_lock(&h->lock);
				continue;
			}
			cond_wait_until(&h->cond, &h->lock, h->next_timer_ns);
			continue;
		}
		busy = from < to;
		pthread_mutex_unlock(&h->lock);

		pthread_mutex_lock(&h->reg_lock);
		if (from < to)
			dispatch(h, from, to);
		if (hole_now)
			handle_hole(h);
		pthread_mutex_lock(&h->lock);
		if (adv && h->disp_seq == h->win_hi &&
		    h->adv_rev > atomic_load(&h->disp_rev))
			atomic_store(&h->disp_rev, h->adv_rev);
		pthread_mutex_unlock(&h->lock);
		next = run_timers(h, eng_now_mono_ns());
		pthread_mutex_lock(&h->lock);
		h->next_timer_ns = next;
		pthread_mutex_unlock(&h->reg_lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* ---------------------------------------------------------- hub lifecycle */

static int hub_new(struct local *l, const struct watch_src *src,
                   const struct eng_options *opt, eng_rev_t current_rev,
                   struct watch_hub **out)
{
	struct watch_hub *h;
	pthread_condattr_t ca;
	int ms = opt->progress_interval_ms;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return ENG_E_NOMEM;
	h->l = l;
	if (src)
		h->src = *src;
	h->opt = *opt;
	h->lim = watch_limits_now;
	if (ms <= 0)
		ms = PROGRESS_DEFAULT_MS;
	if (ms < PROGRESS_MIN_MS)
		ms = PROGRESS_MIN_MS;
	h->progress_ns = (int64_t)ms * 1000000;
	atomic_init(&h->refs, 1);
	atomic_init(&h->count, 0);
	h->win_start = current_rev + 1;
	h->head_rev = current_rev;
	atomic_init(&h->disp_rev, current_rev);
	h->next_timer_ns = INT64_MAX;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->reg_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_cond_init(&h->idle, &ca);
	pthread_condattr_destroy(&ca);
	h->chunk = malloc(WATCH_CHUNK * sizeof(*h->chunk));
	if (!h->chunk) {
		hub_destroy(h);
		return ENG_E_NOMEM;
	}
	if (pthread_create(&h->thread, NULL, hub_thread, h)) {
		hub_destroy(h);
		return ENG_E_NOMEM;
	}
	h->thread_started = true;
	*out = h;
	return 0;
}

int watch_hub_new(struct local *l, const struct eng_options *opt,
                  eng_rev_t current_rev, struct watch_hub **out)
{
	return hub_new(l, NULL, opt, current_rev, out);
}

int watch_hub_new_src(const struct watch_src *src,
                      const struct eng_options *opt, eng_rev_t current_rev,
                      struct watch_hub **out)
{
	if (!src || !src->read_events || !src->current_rev || !src->compact_rev)
		return ENG_E_INVAL;
	return hub_new(NULL, src, opt, current_rev, out);
}

void watch_hub_shutdown(struct watch_hub *h)
{
	struct watcher *w;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->closed) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	h->closed = true;
	h->stop = true;
	pthread_cond_signal(&h->cond);
	while (h->store_readers)
		pthread_cond_wait(&h->idle, &h->lock);
	pthread_mutex_unlock(&h->lock);
	if (h->thread_started)
		pthread_join(h->thread, NULL);
	h->thread_started = false;

	pthread_mutex_lock(&h->reg_lock);
	for (w = h->all; w; w = w->all_next) {
		pthread_mutex_lock(&w->lock);
		w->state = W_CLOSED;
		watcher_kick(w);
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_unlock(&h->reg_lock);
}

void watch_hub_free(struct watch_hub *h)
{
	if (!h)
		return;
	watch_hub_shutdown(h);
	hub_put(h);
}

void watch_hub_publish(struct watch_hub *h, eng_rev_t rev,
                       const struct eng_event *evs, size_t n)
{
	struct hev *stack[16], **tmp = stack;
	size_t made = 0, bytes = 0;
	bool ok = true;

	if (publish_fails()) {
		ok = false;
	} else if (n > 16) {
		tmp = malloc(n * sizeof(*tmp));
		ok = tmp != NULL;
	}
	for (; ok && made < n; made++) {
		tmp[made] = hev_new(&evs[made]);
		if (!tmp[made])
			ok = false;
		else
			bytes += tmp[made]->bytes;
	}

	pthread_mutex_lock(&h->lock);
	if (rev > h->head_rev)
		h->head_rev = rev;
	if (h->closed) {
		ok = false;
	} else if (!ok || h->hole || win_reserve(h, n) < 0) {
		if (!h->hole) {
			h->hole = true;
			h->hole_seq = h->win_hi;
			h->hole_from = rev;
		}
		h->hole_to = rev;
		ok = false;
	} else {
		for (size_t i = 0; i < n; i++)
			h->win[(h->win_hi + i) & (h->win_cap - 1)] = tmp[i];
		h->win_hi += n;
		h->win_bytes += bytes;
	}
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);

	if (!ok)
		for (size_t i = 0; i < made; i++)
			hev_put(tmp[i]);
	if (tmp != stack)
		free(tmp);
}

void watch_hub_lost(struct watch_hub *h, eng_rev_t from, eng_rev_t to)
{
	pthread_mutex_lock(&h->lock);
	if (to > h->head_rev)
		h->head_rev = to;
	if (!h->closed && from <= to) {
		if (!h->hole) {
			h->hole = true;
			h->hole_seq = h->win_hi;
			h->hole_from = from;
		}
		h->hole_to = to;
	}
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void watch_hub_advance(struct watch_hub *h, eng_rev_t rev)
{
	pthread_mutex_lock(&h->lock);
	if (rev > h->head_rev) {
		h->head_rev = rev;
		h->adv_rev = rev;
		pthread_cond_signal(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
}

int64_t watch_hub_count(struct watch_hub *h)
{
	return h ? atomic_load(&h->count) : 0;
}

/* ------------------------------------------------------------- catch-up */

/* Events gathered outside the watcher's lock, then queued at once. */
struct gather {
	const struct watcher *w;
	struct hev **evs;
	size_t n, cap, bytes;
	eng_rev_t cur;     /* revision of the last gathered event */
	eng_rev_t stop_at; /* full: the first revision not gathered */
	eng_rev_t crev;    /* the compaction revision when the step began */
	int err;
};

static int gather_push(struct gather *g, struct hev *e)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 64;
		struct hev **ne = realloc(g->evs, cap * sizeof(*ne));

		if (!ne)
			return ENG_E_NOMEM;
		g->evs = ne;
		g->cap = cap;
	}
	g->evs[g->n++] = e;
	g->bytes += e->bytes;
	return 0;
}

/*
 * Compaction at R drops a deletion at R (per key it keeps the newest version
 * <= R unless that is a tombstone), so a replay starting at R does not see
 * it, as in etcd; puts at R are kept.  Live watchers got it before.
 */
static bool compacted_away(const struct eng_event *ev, eng_rev_t crev)
{
	return ev->type == ENG_EV_DELETE && ev->kv.mod_rev == crev;
}

/* At a revision boundary: is the batch full? */
static bool gather_full(const struct gather *g)
{
	const struct watch_limits *lim = &g->w->h->lim;

	return g->n >= lim->queue_events || g->bytes >= lim->queue_bytes;
}

static void gather_free(struct gather *g)
{
	for (size_t i = 0; i < g->n; i++)
		hev_put(g->evs[i]);
	free(g->evs);
}

/* Queue what was gathered and move fill_rev to next (if still catching
 * up; else drop it).  Takes w->lock. */
static int gather_commit(struct watcher *w, struct gather *g, eng_rev_t next)
{
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	if (w->state != W_CATCHUP)
		goto out;
	rc = queue_reserve(w, g->n);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < g->n; i++)
		queue_push(w, g->evs[i]);
	g->n = 0;
	w->q_vis = w->q_len;
	w->fill_rev = next;
out:
	pthread_mutex_unlock(&w->lock);
	gather_free(g);
	return rc;
}

static int set_compacted(struct watcher *w, eng_rev_t crev)
{
	struct watch_hub *h = w->h;

	pthread_mutex_lock(&h->reg_lock);
	pthread_mutex_lock(&w->lock);
	if (w->state == W_CATCHUP) {
		w->state = W_COMPACTED;
		w->compact_rev = crev;
	}
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_unlock(&h->reg_lock);
	return 0;
}

static int store_cb(void *arg, const struct eng_event *ev)
{
	struct gather *g = arg;
	struct hev *e;

	if (ev->kv.mod_rev != g->cur) {
		if (gather_full(g)) {
			g->stop_at = ev->kv.mod_rev;
			return 1;
		}
		g->cur = ev->kv.mod_rev;
	}
	if (compacted_away(ev, g->crev))
		return 0;
	e = hev_new(ev);
	if (!e || gather_push(g, e) < 0) {
		hev_put(e);
		g->err = ENG_E_NOMEM;
		return 1;
	}
	return 0;
}

/* Fetch [from, to] from the store (up to a queue's worth). */
static int store_fill(struct watcher *w, eng_rev_t from, eng_rev_t to,
                      eng_rev_t crev)
{
	struct gather g = {.w = w, .crev = crev};
	eng_rev_t now_crev = 0;
	int rc;

	rc = hub_read_events(w->h, from, to, w->key, w->key_len, w->end,
	                     w->end_len, store_cb, &g, &now_crev);
	if (rc == ENG_E_COMPACTED) {
		gather_free(&g);
		return set_compacted(w, now_crev);
	}
	if (rc < 0 || g.err) {
		gather_free(&g);
		return rc < 0 ? rc : g.err;
	}
	return gather_commit(w, &g, rc ? g.stop_at : to + 1);
}

/*
 * Fill the queue from the window up to the dispatcher's position and go
 * live.  Under reg_lock no batch is in flight, so win_start, disp_seq and
 * the window below disp_seq are stable; only the ring may be reallocated
 * by a publish, so it is read in chunks under the hub's lock.  Returns 1 if
 * the position is too far behind (the caller scans more first).
 */
static int go_live(struct watcher *w, eng_rev_t fill, eng_rev_t crev)
{
	struct watch_hub *h = w->h;
	uint64_t seq, end;
	int rc = 0;

	pthread_mutex_lock(&h->reg_lock);
	pthread_mutex_lock(&w->lock);
	if (w->state != W_CATCHUP || w->fill_rev != fill)
		goto out;
	pthread_mutex_lock(&h->lock);
	if (fill < h->win_start) {
		pthread_mutex_unlock(&h->lock);
		goto out; /* evicted meanwhile: the store has it */
	}
	seq = win_seek(h, fill);
	end = h->disp_seq;
	pthread_mutex_unlock(&h->lock);
	if (seq > end)
		ENG_BUG(&h->opt, "watch: fill %lld beyond dispatch %lld",
		        (long long)fill, (long long)atomic_load(&h->disp_rev));
	if (end - seq > LIVE_SCAN) {
		rc = 1;
		goto out;
	}
	while (seq < end) {
		struct gather g = {.w = w, .crev = crev};
		uint64_t stop =
		    seq + WATCH_CHUNK < end ? seq + WATCH_CHUNK : end;
		eng_rev_t first;

		pthread_mutex_lock(&h->lock);
		first = hev_rev(win_at(h, seq));
		while (stop < end &&
		       hev_rev(win_at(h, stop)) == hev_rev(win_at(h, stop - 1)))
			stop++;
		for (; seq < stop && !g.err; seq++) {
			struct hev *e = win_at(h, seq);

			if (!watcher_match(w, e->ev.kv.key, e->ev.kv.key_len) ||
			    compacted_away(&e->ev, g.crev))
				continue;
			if (gather_push(&g, e) < 0)
				g.err = ENG_E_NOMEM;
			else
				hev_get(e);
		}
		pthread_mutex_unlock(&h->lock);
		if (!g.err)
			g.err = queue_reserve(w, g.n);
		if (g.err) {
			/* the whole revisions before `first` are queued */
			rc = g.err;
			gather_free(&g);
			w->q_vis = w->q_len;
			w->fill_rev = first;
			goto out;
		}
		for (size_t i = 0; i < g.n; i++)
			queue_push(w, g.evs[i]);
		g.n = 0;
		gather_free(&g);
	}
	w->q_vis = w->q_len;
	w->fill_rev = atomic_load(&h->disp_rev) + 1;
	w->state = W_LIVE;
	w->want_progress = true;
out:
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_unlock(&h->reg_lock);
	return rc;
}

/* Scan the window from fill for a queue's worth of matching events, in
 * steps of WATCH_SCAN events under the hub's lock; go live at the end. */
static int window_fill(struct watcher *w, eng_rev_t fill, eng_rev_t crev)
{
	struct watch_hub *h = w->h;

	for (;;) {
		struct gather g = {.w = w, .crev = crev};
		uint64_t seq, end, s;
		eng_rev_t next;
		int rc;

		pthread_mutex_lock(&h->lock);
		if (fill < h->win_start) { /* evicted: the store has it */
			pthread_mutex_unlock(&h->lock);
			return 0;
		}
		seq = win_seek(h, fill);
		if (seq >= h->disp_seq) {
			pthread_mutex_unlock(&h->lock);
			rc = go_live(w, fill, crev);
			if (rc <= 0)
				return rc;
			continue;
		}
		end = seq + WATCH_SCAN < h->disp_seq ? seq + WATCH_SCAN
		                                     : h->disp_seq;
		while (end < h->disp_seq &&
		       hev_rev(win_at(h, end)) == hev_rev(win_at(h, end - 1)))
			end++;
		for (s = seq; s < end; s++) {
			struct hev *e = win_at(h, s);

			if (hev_rev(e) != g.cur) {
				if (gather_full(&g)) {
					g.stop_at = hev_rev(e);
					break;
				}
				g.cur = hev_rev(e);
			}
			if (!watcher_match(w, e->ev.kv.key, e->ev.kv.key_len) ||
			    compacted_away(&e->ev, g.crev))
				continue;
			if (gather_push(&g, e) < 0) {
				g.err = ENG_E_NOMEM;
				break;
			}
			hev_get(e);
		}
		next = s < end ? g.stop_at : hev_rev(win_at(h, end - 1)) + 1;
		pthread_mutex_unlock(&h->lock);
		if (g.err) {
			gather_free(&g);
			return g.err;
		}
		if (g.n)
			return gather_commit(w, &g, next);
		rc = gather_commit(w, &g, next);
		if (rc < 0)
			return rc;
		fill = next;
	}
}

/*
 * One step of catch-up for a watcher whose queue is empty, positioned at
 * fill: queue some events, go live or become compacted.  The reader's
 * thread, no lock held.  The whole step counts as a store reader, so
 * shutdown waits for it before the store goes away.
 */
static int watcher_catchup(struct watcher *w, eng_rev_t fill)
{
	struct watch_hub *h = w->h;
	eng_rev_t crev, wstart;
	int rc;

	pthread_mutex_lock(&h->lock);
	if (h->closed) {
		pthread_mutex_unlock(&h->lock);
		return ENG_E_CLOSED;
	}
	h->store_readers++;
	wstart = h->win_start;
	pthread_mutex_unlock(&h->lock);

	crev = hub_compact_rev(h);
	if (fill < crev)
		rc = set_compacted(w, crev);
	else if (fill < wstart)
		rc = store_fill(w, fill, wstart - 1, crev);
	else
		rc = window_fill(w, fill, crev);

	pthread_mutex_lock(&h->lock);
	if (--h->store_readers == 0)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* ----------------------------------------------------------- reading */

static int out_reserve(struct watcher *w, size_t n)
{
	size_t cap = w->out_cap ? w->out_cap : 16;
	struct eng_event *no;
	struct hev **nh;

	if (w->out_n + n <= w->out_cap)
		return 0;
	while (cap < w->out_n + n)
		cap *= 2;
	no = realloc(w->out, cap * sizeof(*no));
	if (!no)
		return ENG_E_NOMEM;
	w->out = no;
	nh = realloc(w->out_hev, cap * sizeof(*nh));
	if (!nh)
		return ENG_E_NOMEM;
	w->out_hev = nh;
	w->out_cap = cap;
	return 0;
}

static int out_push(struct watcher *w, const struct eng_event *ev,
                    struct hev *ref)
{
	if (out_reserve(w, 1) < 0)
		return ENG_E_NOMEM;
	w->out[w->out_n] = *ev;
	w->out_hev[w->out_n] = ref;
	w->out_n++;
	return 0;
}

static void out_release(struct watcher *w)
{
	for (size_t i = 0; i < w->out_n; i++)
		hev_put(w->out_hev[i]);
	w->out_n = 0;
}

static int out_marker(struct watcher *w, enum eng_event_type type,
                      eng_rev_t rev)
{
	struct eng_event ev = {.type = type};

	ev.kv.mod_rev = rev;
	return out_push(w, &ev, NULL);
}

/* The progress marker: everything <= disp_rev was queued, and the queue is
 * empty; revisions below the start are not the watch's business, so a
 * watch opened at the next revision gets start - 1 even if the dispatcher
 * is a little behind.  The dispatcher queues a revision to its watchers
 * before it publishes disp_rev, so a reader may already have taken whole
 * revisions above disp_rev: the marker is never below them (next_rev - 1),
 * or it would go back behind an event already delivered.  Under w->lock,
 * live. */
static int out_progress(struct watcher *w)
{
	eng_rev_t r = atomic_load(&w->h->disp_rev);
	eng_rev_t given = atomic_load(&w->next_rev) - 1;
	int rc;

	if (r < given)
		r = given;
	if (r < w->start - 1)
		r = w->start - 1;
	rc = out_marker(w, ENG_EV_PROGRESS, r);
	if (rc < 0)
		return rc;
	if (r + 1 > atomic_load(&w->next_rev))
		atomic_store(&w->next_rev, r + 1);
	w->want_progress = false;
	w->progress_due = false;
	w->due_ns = eng_now_mono_ns() + w->h->progress_ns;
	return 0;
}

/* Move whole visible revisions (or the first max events of one that alone
 * is larger) from the queue to out.  Under w->lock. */
static int take_events(struct watcher *w, size_t max)
{
	while (w->out_n < max && w->q_vis) {
		eng_rev_t r = hev_rev(queue_at(w, 0));
		size_t j = 1;
		bool split = false;

		while (j < w->q_vis && hev_rev(queue_at(w, j)) == r)
			j++;
		if (w->out_n + j > max) {
			if (w->out_n)
				break;
			j = max;
			split = true;
		}
		if (out_reserve(w, j) < 0)
			return ENG_E_NOMEM;
		for (size_t i = 0; i < j; i++) {
			struct hev *e = queue_at(w, 0);

			out_push(w, &e->ev, e); /* reserved: cannot fail */
			w->q_head = (w->q_head + 1) % w->q_cap;
			w->q_len--;
			w->q_vis--;
			w->q_bytes -= e->bytes;
		}
		if (!split)
			atomic_store(&w->next_rev, r + 1);
		else
			break;
	}
	if (!w->q_len && w->q_cap > QUEUE_KEEP)
		queue_clear(w);
	w->progress_due = false;
	w->due_ns = eng_now_mono_ns() + w->h->progress_ns;
	if (!w->q_vis && w->state == W_LIVE && w->want_progress &&
	    w->out_n < max)
		return out_progress(w);
	return 0;
}

static int watcher_read(eng_watch *pw, struct eng_event **evs, size_t max)
{
	struct watcher *w = (struct watcher *)pw;
	int rc = 0;

	out_release(w);
	*evs = NULL;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (w->state == W_CLOSED) {
			rc = ENG_E_CLOSED;
			break;
		}
		if (w->q_vis) {
			rc = take_events(w, max);
			break;
		}
		if (w->state == W_COMPACTED) {
			if (!w->compact_told) {
				rc = out_marker(w, ENG_EV_COMPACTED,
				                w->compact_rev);
				w->compact_told = rc == 0;
			}
			break;
		}
		if (w->state == W_CATCHUP) {
			eng_rev_t fill = w->fill_rev;

			pthread_mutex_unlock(&w->lock);
			rc = watcher_catchup(w, fill);
			pthread_mutex_lock(&w->lock);
			if (rc < 0)
				break;
			continue;
		}
		if (w->want_progress || w->progress_due)
			rc = out_progress(w);
		break;
	}
	if (!watcher_has_data(w))
		w->readable = false;
	pthread_mutex_unlock(&w->lock);
	if (rc < 0)
		out_release(w);
	if (!w->out_n) {
		/* an idle watcher keeps no batch memory */
		free(w->out);
		free(w->out_hev);
		w->out = NULL;
		w->out_hev = NULL;
		w->out_cap = 0;
	}
	if (rc < 0)
		return rc;
	*evs = w->out;
	return (int)w->out_n;
}

static eng_rev_t watcher_next_rev(const eng_watch *pw)
{
	const struct watcher *w = (const struct watcher *)pw;

	return atomic_load(&w->next_rev);
}

void watch_test_queued(eng_watch *pw, size_t *events, size_t *bytes)
{
	struct watcher *w = (struct watcher *)pw;

	pthread_mutex_lock(&w->lock);
	*events = w->q_len;
	*bytes = w->q_bytes;
	pthread_mutex_unlock(&w->lock);
}

/* ------------------------------------------------------- open and close */

static void watcher_free(struct watcher *w)
{
	queue_clear(w);
	out_release(w);
	free(w->out);
	free(w->out_hev);
	free(w->key);
	free(w->end);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Link w into the index for its kind.  reg_lock held. */
static int watcher_link(struct watch_hub *h, struct watcher *w)
{
	struct watcher **head;

	if (w->kind == WK_RANGE) {
		head = &h->ranges;
	} else {
		struct widx *ix = w->kind == WK_KEY ? &h->keys : &h->prefixes;

		w->node = widx_get(ix, w->key, w->key_len);
		if (!w->node)
			return ENG_E_NOMEM;
		head = &w->node->watchers;
	}
	w->idx_prev = NULL;
	w->idx_next = *head;
	if (*head)
		(*head)->idx_prev = w;
	*head = w;

	w->all_prev = NULL;
	w->all_next = h->all;
	if (h->all)
		h->all->all_prev = w;
	h->all = w;
	return 0;
}

static void watcher_unlink(struct watch_hub *h, struct watcher *w)
{
	if (w->idx_prev)
		w->idx_prev->idx_next = w->idx_next;
	else if (w->kind == WK_RANGE)
		h->ranges = w->idx_next;
	else
		w->node->watchers = w->idx_next;
	if (w->idx_next)
		w->idx_next->idx_prev = w->idx_prev;
	if (w->node && !w->node->watchers)
		widx_drop(w->kind == WK_KEY ? &h->keys : &h->prefixes, w->node);
	w->node = NULL;

	if (w->all_prev)
		w->all_prev->all_next = w->all_next;
	else
		h->all = w->all_next;
	if (w->all_next)
		w->all_next->all_prev = w->all_prev;
}

static void watcher_close(eng_watch *pw)
{
	struct watcher *w = (struct watcher *)pw;
	struct watch_hub *h = w->h;

	pthread_mutex_lock(&h->reg_lock);
	watcher_unlink(h, w);
	theap_del(h, w);
	pthread_mutex_lock(&w->lock); /* waits for a notify in flight */
	w->state = W_CLOSED;
	pthread_mutex_unlock(&w->lock);
	atomic_fetch_sub(&h->count, 1);
	pthread_mutex_unlock(&h->reg_lock);
	watcher_free(w);
	hub_put(h);
}

static const struct eng_watch_ops watcher_ops = {
    .read = watcher_read,
    .next_rev = watcher_next_rev,
    .close = watcher_close,
};

static void *memdup(const void *p, size_t n)
{
	void *d = malloc(n ? n : 1);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

static enum wkind classify(const char *key, size_t key_len, const char *end,
                           size_t end_len)
{
	char *pe;
	size_t pl;
	bool prefix;

	if (!end_len)
		return WK_KEY;
	pe = malloc(key_len);
	if (!pe)
		return WK_RANGE; /* correct, only slower */
	pl = eng_prefix_end(key, key_len, pe);
	prefix = !(pl == 1 && pe[0] == '\0') && pl == end_len &&
	         !memcmp(pe, end, pl);
	free(pe);
	return prefix ? WK_PREFIX : WK_RANGE;
}

int watch_hub_open(struct watch_hub *h, const void *key, size_t key_len,
                   const void *end, size_t end_len, eng_rev_t start,
                   eng_watch_notify_fn notify, void *arg, eng_watch **out)
{
	struct watcher *w;
	eng_rev_t cur, crev, disp;
	int64_t now;
	int rc;

	*out = NULL;
	if (!key_len || (end_len && !end) || start < 0)
		return ENG_E_INVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return ENG_E_NOMEM;
	w->pub.ops = &watcher_ops;
	w->h = h;
	w->key = memdup(key, key_len);
	w->end = memdup(end, end_len);
	pthread_mutex_init(&w->lock, NULL);
	if (!w->key || !w->end) {
		watcher_free(w);
		return ENG_E_NOMEM;
	}
	w->key_len = key_len;
	w->end_len = end_len;
	w->kind = classify(key, key_len, end, end_len);
	w->notify = notify;
	w->arg = arg;

	cur = hub_current_rev(h);
	crev = hub_compact_rev(h);
	w->start = start ? start : cur + 1;
	atomic_init(&w->next_rev, w->start);

	pthread_mutex_lock(&h->reg_lock);
	pthread_mutex_lock(&h->lock);
	if (h->closed) {
		pthread_mutex_unlock(&h->lock);
		pthread_mutex_unlock(&h->reg_lock);
		watcher_free(w);
		return ENG_E_CLOSED;
	}
	pthread_mutex_unlock(&h->lock);
	/* reg_lock: no batch in flight, disp_rev is stable */
	disp = atomic_load(&h->disp_rev);
	if (w->start == crev)
		w->skip_del_rev = crev;
	if (w->start < crev) {
		w->state = W_COMPACTED;
		w->compact_rev = crev;
	} else if (w->start > disp) {
		w->state = W_LIVE;
		w->want_progress = true;
	} else {
		w->state = W_CATCHUP;
		w->fill_rev = w->start;
	}
	now = eng_now_mono_ns();
	w->tkey = now; /* the dispatcher notifies at once */
	w->due_ns = now + h->progress_ns;
	rc = watcher_link(h, w);
	if (rc == 0) {
		rc = theap_add(h, w);
		if (rc < 0)
			watcher_unlink(h, w);
	}
	if (rc < 0) {
		pthread_mutex_unlock(&h->reg_lock);
		watcher_free(w);
		return rc;
	}
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->refs, 1);
	pthread_mutex_lock(&h->lock);
	h->next_timer_ns = now;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_unlock(&h->reg_lock);
	*out = &w->pub;
	return 0;
}
