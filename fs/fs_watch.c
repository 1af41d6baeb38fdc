/*
 * fs_watch.c — `DIR/@watch` and `DIR/@watch@REV` (SPEC §2 "Watch streams").
 *
 * Each open of a watch file opens one engine watch on DIR's key prefix and
 * turns its events into lines: `REV PUT PATH`, `REV DELETE PATH`,
 * `REV PROGRESS`, and, when the start was compacted, a last
 * `REV COMPACTED` after which reads fail with ENODATA.  PATH is relative to
 * the mount, each segment encoded as names are (a directory marker key ends
 * in '/').  The file is a stream (direct_io, nonseekable): offsets are
 * ignored, every read takes the next bytes.
 *
 * Waiting readers hold no thread.  A read with nothing ready stores its
 * fuse_req_t in the stream and returns; the engine watch's notify callback
 * (engine thread, engine locks held: it must not block or call FUSE or the
 * engine) only puts the stream on a ready list and writes an eventfd; one
 * dispatcher thread takes the list, reads the engine watch and answers the
 * held request, or wakes a poller (fuse_lowlevel_notify_poll).  So 2,000
 * `cat @watch` cost 2,000 streams (a struct and a small text buffer), not
 * 2,000 threads.  An interrupt (Ctrl-C) answers the held read with EINTR at
 * once; a release answers a read still held.
 *
 * Answers are paced: the dispatcher answers in rounds, and a stream answered
 * less than a round period ago has its next read held (and queued) for the
 * next round, which then carries everything pending for it; a poll is told
 * "not yet" and woken by that round, and the read after it is answered at
 * once.  The period grows with the number of answers per round (see
 * FS_WATCH_RATE), so one reader is answered at once and a thousand busy
 * readers cost a bounded number of answers per second instead of one per
 * event each.  The dispatcher formats each event once per round for every
 * stream (a line cache) and replies from one reused buffer.
 *
 * Invariants and locks:
 *  - one reader of an engine watch at a time: eng_watch_read and
 *    eng_watch_close of a stream run under its s->lock only;
 *  - a held request is answered exactly once: whoever takes it out of
 *    s->req under s->lock (dispatcher, interrupt, release, stop) replies;
 *  - no lock is held across a FUSE reply or a kernel notification;
 *  - lock order: (libfuse's request lock, in the interrupt callback) ->
 *    W->lock -> s->lock; W->ready_lock is a leaf, the only lock the notify
 *    callback takes, and is never held across an engine call;
 *  - a stream is freed when its last reference goes: the open handle's and
 *    one per ready-list entry (taken by enqueue()); a read held for the next
 *    round is queued under s->lock, before its answer can let the handle go.
 */
#include "fs_int.h"
#include "fs_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define FS_WATCH_BATCH 256
/* Stop taking events from the engine past this much unread text: the
 * engine's own queue (and its catch-up from the store) holds the rest, so
 * a slow reader costs a bounded buffer and never slows a writer. */
#define FS_WATCH_HIGH (64 * 1024)
/*
 * Pacing.  Every answer costs a wakeup of the reader and a new FUSE READ,
 * and the writers' requests queue behind those in the kernel: answered one
 * event at a time, 1,000 readers under 1,000 puts/s would need 10^6
 * answers/s.  So answers go out in rounds: a stream answered less than one
 * round period ago has its next read held until the next round, which
 * answers it with everything pending.  The period adapts to the load:
 * answers of the last round / FS_WATCH_RATE, at most FS_WATCH_PERIOD_MAX
 * (1 reader: ~50 us, in effect answered at once; 100 busy readers: 5 ms;
 * 500 and more: 25 ms, so latency stays bounded and the answer rate grows
 * past 20,000/s only beyond 500 readers).  docs/BENCHMARKS.md (watch_fuse)
 * has the measurements.
 */
#define FS_WATCH_RATE       20000
#define FS_WATCH_PERIOD_MAX 25000000LL /* ns */

/*
 * A line depends only on the event (paths are relative to the mount), so
 * the dispatcher formats each event once for all the streams that read it
 * in a round: a direct-mapped cache of recent lines, checked against the
 * event's revision, type and key (a slot may be overwritten at any time).
 * Only the dispatcher thread uses it.
 */
#define FS_WATCH_LC_SLOTS 512
#define FS_WATCH_LC_KEY   128
#define FS_WATCH_LC_TEXT  (48 + 3 * FS_WATCH_LC_KEY)

struct fs_lcslot {
	eng_rev_t rev;
	int type;
	size_t key_len, text_len; /* key_len 0: empty */
	char key[FS_WATCH_LC_KEY];
	char text[FS_WATCH_LC_TEXT];
};

struct fs_wstream {
	struct fs *fs;
	eng_watch *w; /* protected by lock */
	pthread_mutex_t lock;
	char *buf;            /* unread text [pos, len); protected by lock */
	size_t pos, len, cap; /* protected by lock */
	bool ended;           /* no more events; protected by lock */
	int end_err;          /* errno once buf is drained, 0: EOF */
	bool dead;            /* released; protected by lock */
	fuse_req_t req;       /* a held read; protected by lock */
	size_t req_size;      /* protected by lock */
	struct fuse_pollhandle *ph; /* protected by lock */
	int64_t answered_ns;        /* last answer; protected by lock */
	/* poll said readable since the last answer: the read that follows
	 * is answered at once; protected by lock */
	bool poll_ready;
	int refs;                       /* atomic */
	bool queued;                    /* protected by W->ready_lock */
	struct fs_wstream *next_ready;  /* protected by W->ready_lock */
	struct fs_wstream *prev, *next; /* protected by W->lock */
};

/* A reply buffer the dispatcher reuses (a malloc per answer, and the
 * arena growing and shrinking, showed in its profile). */
struct fs_scratch {
	char *buf;
	size_t cap;
};

struct fs_watchers {
	struct fs *fs;
	pthread_mutex_t lock;
	struct fs_wstream head; /* every open stream; protected by lock */
	/* set (before the held reads are ended) by fs_watch_stop; read
	 * under a stream's lock, so a read either sees it or is ended */
	bool stopping; /* atomic */
	pthread_mutex_t ready_lock;
	struct fs_wstream *ready;      /* protected by ready_lock */
	struct fs_wstream *ready_tail; /* its last; protected by ready_lock */
	int64_t period_ns;             /* the round period; atomic */
	struct fs_lcslot *lines;       /* the dispatcher's line cache */
	struct fs_scratch out;         /* the dispatcher's reply buffer */
	long answers; /* answers since the last round; atomic */
	int efd;
	pthread_t thread;
	bool running;
	volatile int stop;
};

static void unref(struct fs_wstream *s)
{
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->buf);
	free(s);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Put s at the end of the ready list (once) and wake the dispatcher if the
 * list was empty: one wakeup per round, not one per stream.  In order, so
 * that every busy stream waits about one round between answers (a stack
 * answered the earliest re-reads last: up to two rounds). */
static void enqueue(struct fs_watchers *W, struct fs_wstream *s)
{
	uint64_t one = 1;
	bool wake = false;

	pthread_mutex_lock(&W->ready_lock);
	if (!s->queued) {
		s->queued = true;
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
		wake = W->ready == NULL;
		s->next_ready = NULL;
		if (W->ready)
			W->ready_tail->next_ready = s;
		else
			W->ready = s;
		W->ready_tail = s;
	}
	pthread_mutex_unlock(&W->ready_lock);
	if (wake && write(W->efd, &one, sizeof(one)) < 0) {
		/* a full counter: the dispatcher is awake anyway */
	}
}

/* The engine's notify: engine locks are held; queue and wake, nothing else.
 */
static void on_notify(void *arg)
{
	struct fs_wstream *s = arg;

	enqueue(s->fs->watchers, s);
}

static int reserve(struct fs_wstream *s, size_t more)
{
	size_t cap = s->cap ? s->cap : 4096;
	char *b;

	if (s->pos == s->len)
		s->pos = s->len = 0;
	if (s->len + more <= s->cap)
		return 0;
	if (s->pos > 0) {
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
		s->len -= s->pos;
		s->pos = 0;
		if (s->len + more <= s->cap)
			return 0;
	}
	while (cap < s->len + more)
		cap *= 2;
	b = realloc(s->buf, cap);
	if (!b)
		return -ENOMEM;
	s->buf = b;
	s->cap = cap;
	return 0;
}

/* Write v in decimal at p; returns the end. */
static char *put_rev(char *p, eng_rev_t v)
{
	char tmp[24];
	unsigned long long u = v < 0 ? 0 : (unsigned long long)v;
	int n = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Append "REV TYPE[ PATH]\n"; PATH's segments encoded as names are. */
static int append_line(struct fs_wstream *s, eng_rev_t rev, const char *type,
                       const char *key, size_t key_len)
{
	size_t pl = s->fs->prefix_len, tl = strlen(type);
	/* each raw byte encodes to at most 3 (%XX), each name is bounded */
	size_t need = 48 + (key ? 3 * key_len + FS_NAME_MAX : 0);
	char name[FS_NAME_MAX + 1];
	char *p;
	int rc = reserve(s, need);

	if (rc < 0)
		return rc;
	p = put_rev(s->buf + s->len, rev);
	*p++ = ' ';
	memcpy(p, type, tl);
	p += tl;
	if (key) {
		const char *k = key + pl, *end = key + key_len;

		*p++ = ' ';
		while (k < end) {
			const char *slash = memchr(k, '/', (size_t)(end - k));
			size_t sl =
			    slash ? (size_t)(slash - k) : (size_t)(end - k);
			int n = fs_name_encode(k, sl, true, name);

			if (n > 0) {
				memcpy(p, name, (size_t)n);
				p += n;
			}
			if (!slash)
				break;
			*p++ = '/';
			k = slash + 1;
		}
	}
	*p++ = '\n';
	s->len = (size_t)(p - s->buf);
	return 0;
}

static const char *const ev_names[] = {
    [ENG_EV_PUT] = "PUT",
    [ENG_EV_DELETE] = "DELETE",
};

/* Append a PUT or DELETE line, from the line cache lc if it has it. */
static int append_event(struct fs_wstream *s, const struct eng_event *ev,
                        struct fs_lcslot *lc)
{
	const struct eng_kv *kv = &ev->kv;
	struct fs_lcslot *sl = NULL;
	size_t unread = s->len - s->pos, start;
	uint64_t h = (uint64_t)kv->mod_rev * 0x9e3779b97f4a7c15ULL;
	int rc;

	if (lc && kv->key_len > 0 && kv->key_len <= FS_WATCH_LC_KEY) {
		for (size_t i = 0; i < kv->key_len; i++)
			h = (h ^ (unsigned char)kv->key[i]) * 1099511628211ULL;
		sl = &lc[(h ^ ev->type) & (FS_WATCH_LC_SLOTS - 1)];
		if (sl->key_len == kv->key_len && sl->rev == kv->mod_rev &&
		    sl->type == (int)ev->type &&
		    !memcmp(sl->key, kv->key, kv->key_len)) {
			rc = reserve(s, sl->text_len);
			if (rc < 0)
				return rc;
			memcpy(s->buf + s->len, sl->text, sl->text_len);
			s->len += sl->text_len;
			return 0;
		}
	}
	rc = append_line(s, kv->mod_rev, ev_names[ev->type], kv->key,
	                 kv->key_len);
	if (rc < 0 || !sl)
		return rc;
	/* reserve() may have moved the unread text to the front */
	start = s->pos + unread;
	if (s->len - start > FS_WATCH_LC_TEXT) {
		sl->key_len = 0;
		return 0;
	}
	sl->rev = kv->mod_rev;
	sl->type = (int)ev->type;
	sl->key_len = kv->key_len;
	memcpy(sl->key, kv->key, kv->key_len);
	sl->text_len = s->len - start;
	memcpy(sl->text, s->buf + start, sl->text_len);
	return 0;
}

/* Take events from the engine into the text buffer (lc: the dispatcher's
 * line cache, or NULL).  s->lock held. */
static void fill_locked(struct fs_wstream *s, struct fs_lcslot *lc)
{
	while (!s->ended && !s->dead && s->len - s->pos < FS_WATCH_HIGH) {
		struct eng_event *evs;
		int n = eng_watch_read(s->w, &evs, FS_WATCH_BATCH), rc = 0;

		if (n == 0)
			break;
		if (n < 0) {
			/* Closing engine: end of file; else an I/O error. */
			s->ended = true;
			s->end_err = n == ENG_E_CLOSED ? 0 : EIO;
			if (n != ENG_E_CLOSED)
				fs_logf(ENG_LOG_ERR, "@watch: %s",
				        eng_strerror(n));
			break;
		}
		for (int i = 0; i < n && rc == 0; i++) {
			const struct eng_kv *kv = &evs[i].kv;

			switch (evs[i].type) {
			case ENG_EV_PUT:
			case ENG_EV_DELETE:
				rc = append_event(s, &evs[i], lc);
				break;
			case ENG_EV_PROGRESS:
				rc = append_line(s, kv->mod_rev, "PROGRESS",
				                 NULL, 0);
				break;
			case ENG_EV_COMPACTED:
				rc = append_line(s, kv->mod_rev, "COMPACTED",
				                 NULL, 0);
				s->ended = true;
				s->end_err = ENODATA;
				fs_logf(ENG_LOG_INFO,
				        "@watch refused: its start revision is "
				        "below the compaction revision %lld",
				        (long long)kv->mod_rev);
				break;
			}
		}
		if (rc < 0) {
			/* Lines would be lost: end the stream loudly. */
			s->ended = true;
			s->end_err = -rc;
			fs_logf(ENG_LOG_ERR, "@watch: out of memory, ended");
		}
	}
}

/* Copy up to size unread bytes out (the reply is sent after unlocking):
 * into sc's buffer if given, else into a new one. */
static char *take_locked(struct fs_wstream *s, size_t size, size_t *n,
                         struct fs_scratch *sc)
{
	size_t avail = s->len - s->pos;
	char *out;

	*n = avail < size ? avail : size;
	if (sc && sc->cap < *n) {
		size_t cap = sc->cap ? sc->cap : 64 * 1024;

		while (cap < *n)
			cap *= 2;
		out = realloc(sc->buf, cap);
		if (out) {
			sc->buf = out;
			sc->cap = cap;
		}
	}
	if (sc && sc->cap >= *n)
		out = sc->buf;
	else
		out = malloc(*n ? *n : 1);
	if (!out) {
		*n = 0;
		return NULL;
	}
	memcpy(out, s->buf + s->pos, *n);
	s->pos += *n;
	return out;
}

/*
 * What answers a read, decided under s->lock: the bytes to send (*out, in
 * sc's buffer or malloc'd), or an errno (ENOMEM, the end error), or 0
 * bytes for EOF.  Returns false if nothing is ready yet.
 */
static bool answer_locked(struct fs_wstream *s, size_t size, char **out,
                          size_t *n, int *err, struct fs_scratch *sc)
{
	*out = NULL;
	*n = 0;
	*err = 0;
	if (s->len > s->pos) {
		*out = take_locked(s, size, n, sc);
		if (!*out)
			*err = ENOMEM;
		s->answered_ns = now_ns();
		s->poll_ready = false;
		__atomic_add_fetch(&s->fs->watchers->answers, 1,
		                   __ATOMIC_RELAXED);
		return true;
	}
	if (s->ended) {
		*err = s->end_err;
		return true;
	}
	return false;
}

static void send_answer(fuse_req_t req, char *out, size_t n, int err,
                        const struct fs_scratch *sc)
{
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, out, n);
	if (!sc || out != sc->buf)
		free(out);
}

/* Ctrl-C on a reader: find the held request and end it with EINTR. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct fs_watchers *W = data;
	bool found = false;

	pthread_mutex_lock(&W->lock);
	for (struct fs_wstream *s = W->head.next; s != &W->head && !found;
	     s = s->next) {
		pthread_mutex_lock(&s->lock);
		if (s->req == req) {
			s->req = NULL;
			found = true;
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&W->lock);
	if (found)
		fuse_reply_err(req, EINTR);
}

int fs_watch_open(struct fs *fs, const char *dir, size_t dir_len,
                  eng_rev_t start, struct fs_wstream **out)
{
	struct fs_watchers *W = fs->watchers;
	struct fs_wstream *s;
	const char *key = dir;
	size_t key_len = dir_len, end_len;
	char *end = NULL;
	int rc;

	if (!W)
		return -EIO;
	s = calloc(1, sizeof(*s));
	end = malloc(dir_len + 1);
	if (!s || !end) {
		rc = -ENOMEM;
		goto fail;
	}
	s->fs = fs;
	s->refs = 1;
	pthread_mutex_init(&s->lock, NULL);
	if (dir_len == 0) {
		/* The whole keyspace. */
		key = "\0";
		key_len = 1;
		end[0] = '\0';
		end_len = 1;
	} else {
		end_len = eng_prefix_end(dir, dir_len, end);
	}
	rc = eng_watch_open(fs->e, key, key_len, end, end_len, start, on_notify,
	                    s, &s->w);
	if (rc < 0) {
		rc = -fs_errno(rc);
		pthread_mutex_destroy(&s->lock);
		goto fail;
	}
	free(end);
	pthread_mutex_lock(&W->lock);
	s->next = W->head.next;
	s->prev = &W->head;
	W->head.next->prev = s;
	W->head.next = s;
	pthread_mutex_unlock(&W->lock);
	*out = s;
	return 0;
fail:
	free(end);
	free(s);
	return rc;
}

/* Answered less than a round period ago (and not just told readable by
 * poll): the next read or poll waits for the next round.  s->lock held. */
static bool paced_locked(struct fs_watchers *W, struct fs_wstream *s)
{
	return !s->ended && !s->poll_ready &&
	       now_ns() - s->answered_ns <
	           __atomic_load_n(&W->period_ns, __ATOMIC_RELAXED);
}

void fs_watch_read(fuse_req_t req, struct fs_wstream *s, size_t size)
{
	struct fs_watchers *W = s->fs->watchers;
	char *out;
	size_t n;
	int err;
	bool stopping;

	/* Before any lock: libfuse calls on_interrupt at once (under its
	 * request lock) if the request was interrupted already. */
	fuse_req_interrupt_func(req, on_interrupt, W);
	pthread_mutex_lock(&s->lock);
	stopping = __atomic_load_n(&W->stopping, __ATOMIC_ACQUIRE);
	if (!stopping && !s->req && !fuse_req_interrupted(req) &&
	    paced_locked(W, s)) {
		/* Answered within this round: the next round answers it
		 * with everything pending then.  Queued under s->lock: once
		 * it is unlocked the answer may come and the handle go. */
		s->req = req;
		s->req_size = size;
		enqueue(W, s);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	fill_locked(s, NULL);
	if (answer_locked(s, size, &out, &n, &err, NULL)) {
		pthread_mutex_unlock(&s->lock);
		send_answer(req, out, n, err, NULL);
		return;
	}
	if (stopping || s->req || fuse_req_interrupted(req)) {
		/* Unmounting: end of file.  Two reads of one descriptor at
		 * once: the second is refused.  Interrupted: EINTR. */
		pthread_mutex_unlock(&s->lock);
		fuse_reply_err(req, stopping ? 0 : s->req ? EBUSY : EINTR);
		return;
	}
	/* Nothing now: the last eng_watch_read returned 0, so the watch
	 * will notify, and the dispatcher finds the request here. */
	s->req = req;
	s->req_size = size;
	pthread_mutex_unlock(&s->lock);
}

void fs_watch_poll(fuse_req_t req, struct fs_wstream *s,
                   struct fuse_pollhandle *ph)
{
	struct fs_watchers *W = s->fs->watchers;
	struct fuse_pollhandle *old = NULL;
	unsigned revents = 0;
	bool paced;

	pthread_mutex_lock(&s->lock);
	/* Paced like a read: not readable before the next round, which
	 * then wakes the poller (a poll-driven reader gets rounds too).
	 * Not once stopping: no round comes. */
	paced = !__atomic_load_n(&W->stopping, __ATOMIC_ACQUIRE) &&
	        paced_locked(W, s);
	if (!paced) {
		fill_locked(s, NULL);
		if (s->len > s->pos || s->ended) {
			revents = POLLIN | POLLRDNORM;
			s->poll_ready = true;
		}
	}
	if (ph) {
		old = s->ph;
		s->ph = ph;
	}
	if (paced && s->ph)
		enqueue(W, s);
	pthread_mutex_unlock(&s->lock);
	if (old)
		fuse_pollhandle_destroy(old);
	fuse_reply_poll(req, revents);
}

void fs_watch_release(struct fs_wstream *s)
{
	struct fs_watchers *W = s->fs->watchers;
	struct fuse_pollhandle *ph;
	fuse_req_t req;

	pthread_mutex_lock(&W->lock);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	pthread_mutex_unlock(&W->lock);
	pthread_mutex_lock(&s->lock);
	s->dead = true;
	req = s->req;
	s->req = NULL;
	ph = s->ph;
	s->ph = NULL;
	/* After this no notify comes, and a ready-list entry holds its own
	 * reference. */
	eng_watch_close(s->w);
	s->w = NULL;
	pthread_mutex_unlock(&s->lock);
	if (req)
		fuse_reply_err(req, EINTR);
	if (ph)
		fuse_pollhandle_destroy(ph);
	unref(s);
}

/* Answer the stream's held read or poller if something is ready. */
static void dispatch(struct fs_watchers *W, struct fs_wstream *s)
{
	struct fuse_pollhandle *ph = NULL;
	fuse_req_t req = NULL;
	char *out = NULL;
	size_t n = 0;
	int err = 0;

	pthread_mutex_lock(&s->lock);
	if (!s->dead && (s->req || s->ph)) {
		fill_locked(s, W->lines);
		if (s->req &&
		    answer_locked(s, s->req_size, &out, &n, &err, &W->out)) {
			req = s->req;
			s->req = NULL;
		}
		if (s->ph && (s->len > s->pos || s->ended)) {
			ph = s->ph;
			s->ph = NULL;
			s->poll_ready = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (req)
		send_answer(req, out, n, err, &W->out);
	if (ph) {
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
}

/*
 * Take the first stream of a list detached from W->ready.  A stream stays
 * marked queued until it is taken, so that a notify meanwhile does not
 * push it again and overwrite the next_ready link being followed.
 */
static struct fs_wstream *take_next(struct fs_watchers *W,
                                    struct fs_wstream **list)
{
	struct fs_wstream *s = *list;

	if (!s)
		return NULL;
	pthread_mutex_lock(&W->ready_lock);
	*list = s->next_ready;
	s->queued = false;
	pthread_mutex_unlock(&W->ready_lock);
	return s;
}

/* Sleep until the next round is due (at most FS_WATCH_PERIOD_MAX). */
static void pace(struct fs_watchers *W, int64_t last)
{
	int64_t wait =
	    last + __atomic_load_n(&W->period_ns, __ATOMIC_RELAXED) - now_ns();
	struct timespec ts;

	if (wait <= 0)
		return;
	ts.tv_sec = wait / 1000000000;
	ts.tv_nsec = wait % 1000000000;
	nanosleep(&ts, NULL);
}

static void *dispatcher_main(void *arg)
{
	struct fs_watchers *W = arg;
	int64_t last = 0;

	while (!W->stop) {
		struct pollfd pfd = {.fd = W->efd, .events = POLLIN};
		struct fs_wstream *list, *s;
		uint64_t cnt;
		int64_t a;

		if (poll(&pfd, 1, 1000) > 0 &&
		    read(W->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			break;
		pace(W, last);
		last = now_ns();
		pthread_mutex_lock(&W->ready_lock);
		list = W->ready;
		W->ready = NULL;
		pthread_mutex_unlock(&W->ready_lock);
		while ((s = take_next(W, &list))) {
			dispatch(W, s);
			unref(s);
		}
		/* The answers of this round (and the direct ones since the
		 * last) set the next period: a bounded answer rate. */
		a = __atomic_exchange_n(&W->answers, 0, __ATOMIC_RELAXED) *
		    (1000000000LL / FS_WATCH_RATE);
		__atomic_store_n(&W->period_ns,
		                 a < FS_WATCH_PERIOD_MAX ? a
		                                         : FS_WATCH_PERIOD_MAX,
		                 __ATOMIC_RELAXED);
	}
	return NULL;
}

int fs_watch_start(struct fs *fs)
{
	struct fs_watchers *W = calloc(1, sizeof(*W));
	int rc;

	if (!W)
		return -ENOMEM;
	W->fs = fs;
	W->head.prev = W->head.next = &W->head;
	pthread_mutex_init(&W->lock, NULL);
	pthread_mutex_init(&W->ready_lock, NULL);
	W->lines = calloc(FS_WATCH_LC_SLOTS, sizeof(*W->lines));
	W->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!W->lines) {
		rc = -ENOMEM;
		goto fail;
	}
	if (W->efd < 0) {
		rc = -errno;
		goto fail;
	}
	fs->watchers = W;
	rc = -pthread_create(&W->thread, NULL, dispatcher_main, W);
	if (rc < 0)
		goto fail;
	/* named for top -H and perf (tests/bench/watch_fuse.sh reads it) */
	pthread_setname_np(W->thread, "rv-watch");
	W->running = true;
	return 0;
fail:
	fs->watchers = NULL;
	if (W->efd >= 0)
		close(W->efd);
	pthread_mutex_destroy(&W->lock);
	pthread_mutex_destroy(&W->ready_lock);
	free(W->lines);
	free(W);
	return rc;
}

/* Entries on the ready list hold references: drop them. */
static void drop_ready(struct fs_watchers *W)
{
	struct fs_wstream *list, *s;

	pthread_mutex_lock(&W->ready_lock);
	list = W->ready;
	W->ready = NULL;
	pthread_mutex_unlock(&W->ready_lock);
	while ((s = take_next(W, &list)))
		unref(s);
}

/*
 * Stop answering: the dispatcher ends, held reads get end-of-file and new
 * ones end at once.  The registry itself stays until the streams still open
 * are released (fs_free), so it is freed only when the list is empty.
 */
void fs_watch_stop(struct fs *fs)
{
	struct fs_watchers *W = fs->watchers;
	struct fs_wstream *s;
	uint64_t one = 1;

	if (!W || !W->running)
		return;
	W->stop = 1;
	if (write(W->efd, &one, sizeof(one)) < 0) {
		/* the dispatcher also wakes every second */
	}
	pthread_join(W->thread, NULL);
	W->running = false;
	for (;;) {
		fuse_req_t req = NULL;
		struct fuse_pollhandle *ph = NULL;

		pthread_mutex_lock(&W->lock);
		__atomic_store_n(&W->stopping, true, __ATOMIC_RELEASE);
		for (s = W->head.next; s != &W->head; s = s->next) {
			pthread_mutex_lock(&s->lock);
			req = s->req;
			ph = s->ph;
			s->req = NULL;
			s->ph = NULL;
			pthread_mutex_unlock(&s->lock);
			if (req || ph)
				break;
		}
		pthread_mutex_unlock(&W->lock);
		if (!req && !ph)
			break;
		if (req)
			fuse_reply_buf(req, NULL, 0);
		if (ph)
			fuse_pollhandle_destroy(ph);
	}
	drop_ready(W);
}

/* At fs_free, after every stream was released. */
void fs_watch_free(struct fs *fs)
{
	struct fs_watchers *W = fs->watchers;

	if (!W)
		return;
	fs_watch_stop(fs);
	/* A notify after stop (a stream still open) queued it again. */
	drop_ready(W);
	close(W->efd);
	pthread_mutex_destroy(&W->lock);
	pthread_mutex_destroy(&W->ready_lock);
	free(W->lines);
	free(W->out.buf);
	free(W);
	fs->watchers = NULL;
}
