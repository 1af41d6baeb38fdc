/*
 * lease.c — the lease manager of the local backend: lease deadlines in
 * memory and the threads that expire them.
 *
 * The store (local_*) holds the truth about which leases exist, their TTL
 * and name, and which keys are attached; this file only knows when each live
 * lease is due.  A renewal moves a deadline in memory: it takes no revision
 * and writes nothing.  Deadlines are not persisted, so at open every lease
 * loaded from the store gets its full TTL again (etcd's rule: a restart
 * extends every lease by at most one TTL).
 *
 * Deadlines sit in a binary min-heap (each lease knows its heap slot), so a
 * grant, keepalive or revoke is O(log n) and the expiry threads look only at
 * the heap's top: 100,000 live leases cost nothing while none is due.
 * LEASE_EXPIRERS threads expire due leases; each expiry is one
 * local_lease_delete() (one commit: the attached keys and the lease, one
 * revision, DELETE events to watchers), made without the manager's lock, and
 * several run at once so that a burst of expiries shares fsyncs through the
 * store's group commit.  Only one of them (the timer owner) sleeps until the
 * top deadline; the others sleep untimed until a burst needs them, so a
 * deadline wakes one thread, not all.
 *
 * Invariants:
 *  - A lease is in the id table iff it is in the heap; a named one is also
 *    in the name table.  All three are protected by m->lock.
 *  - The manager decides races under m->lock: the first of revoke, expiry
 *    (taking the lease out of the tables) or keepalive wins; after a lease
 *    left the tables, keepalive and ttl answer ENG_E_LEASE_NOT_FOUND.
 */
#include "eng_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Concurrent expiries: a burst shares fsyncs through group commit. */
#define LEASE_EXPIRERS 16
#define LEASE_TTL_MAX  9000000000LL
#define LEASE_RETRY_NS 1000000000LL /* after a failed expiry */
#define NS_PER_S       1000000000LL

struct lease {
	eng_lease_t id;
	int64_t ttl;         /* seconds */
	int64_t deadline_ns; /* monotonic */
	size_t hidx;         /* slot in m->heap */
	struct lease *id_next, *name_next;
	uint64_t name_hash;
	char name[]; /* "" if unnamed */
};

struct lease_mgr {
	struct local *l;
	struct eng_options opt;
	pthread_mutex_t put_lock; /* serializes TTL changes (store + memory) */
	pthread_mutex_t lock;
	pthread_cond_t timer_cv; /* the timer owner: the top moved earlier */
	pthread_cond_t work_cv;  /* the helpers: more leases are due */
	/* protected by lock */
	struct lease **ids, **names; /* hash tables, nb buckets each */
	size_t nb, n;
	struct lease **heap;
	size_t heap_n, heap_cap;
	bool stop;
	bool timer_owned; /* an expirer sleeps until the top deadline */
	/* set at start, read-only afterwards */
	int nthreads;
	pthread_t threads[LEASE_EXPIRERS];
};

/* ---------------------------------------------------------------- tables */

static uint64_t id_hash(eng_lease_t id)
{
	uint64_t x = (uint64_t)id + 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t name_hash(const char *s)
{
	uint64_t hs = 1469598103934665603ULL;

	for (; *s; s++)
		hs = (hs ^ (unsigned char)*s) * 1099511628211ULL;
	return hs;
}

static struct lease *find_id(const struct lease_mgr *m, eng_lease_t id)
{
	struct lease *ls;

	if (!m->nb)
		return NULL;
	for (ls = m->ids[id_hash(id) & (m->nb - 1)]; ls; ls = ls->id_next)
		if (ls->id == id)
			return ls;
	return NULL;
}

static struct lease *find_name(const struct lease_mgr *m, const char *name)
{
	uint64_t hs = name_hash(name);
	struct lease *ls;

	if (!m->nb)
		return NULL;
	for (ls = m->names[hs & (m->nb - 1)]; ls; ls = ls->name_next)
		if (ls->name_hash == hs && !strcmp(ls->name, name))
			return ls;
	return NULL;
}

static int tables_grow(struct lease_mgr *m)
{
	size_t nb = m->nb ? 2 * m->nb : 256;
	struct lease **ids = calloc(nb, sizeof(*ids));
	struct lease **names = calloc(nb, sizeof(*names));

	if (!ids || !names) {
		free(ids);
		free(names);
		return ENG_E_NOMEM;
	}
	for (size_t i = 0; i < m->nb; i++) {
		struct lease *ls, *next;

		for (ls = m->ids[i]; ls; ls = next) {
			size_t b = id_hash(ls->id) & (nb - 1);

			next = ls->id_next;
			ls->id_next = ids[b];
			ids[b] = ls;
		}
		for (ls = m->names[i]; ls; ls = next) {
			size_t b = ls->name_hash & (nb - 1);

			next = ls->name_next;
			ls->name_next = names[b];
			names[b] = ls;
		}
	}
	free(m->ids);
	free(m->names);
	m->ids = ids;
	m->names = names;
	m->nb = nb;
	return 0;
}

/* ------------------------------------------------------------------ heap */

static void heap_swap(struct lease_mgr *m, size_t a, size_t b)
{
	struct lease *t = m->heap[a];

	m->heap[a] = m->heap[b];
	m->heap[b] = t;
	m->heap[a]->hidx = a;
	m->heap[b]->hidx = b;
}

static void heap_fix(struct lease_mgr *m, size_t i)
{
	while (i > 0 &&
	       m->heap[(i - 1) / 2]->deadline_ns > m->heap[i]->deadline_ns) {
		heap_swap(m, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;

		if (l < m->heap_n &&
		    m->heap[l]->deadline_ns < m->heap[s]->deadline_ns)
			s = l;
		if (r < m->heap_n &&
		    m->heap[r]->deadline_ns < m->heap[s]->deadline_ns)
			s = r;
		if (s == i)
			return;
		heap_swap(m, i, s);
		i = s;
	}
}

/* ------------------------------------------------------ insert and remove */

static int64_t deadline_after(int64_t now, int64_t ttl)
{
	if (ttl > (INT64_MAX - now) / NS_PER_S)
		return INT64_MAX;
	return now + ttl * NS_PER_S;
}

/* Add ls to the tables and the heap.  Lock held; ls->id and name unique. */
static int lease_insert(struct lease_mgr *m, struct lease *ls)
{
	size_t b;

	if (m->n >= m->nb && tables_grow(m) < 0)
		return ENG_E_NOMEM;
	if (m->heap_n == m->heap_cap) {
		size_t cap = m->heap_cap ? 2 * m->heap_cap : 256;
		struct lease **nh = realloc(m->heap, cap * sizeof(*nh));

		if (!nh)
			return ENG_E_NOMEM;
		m->heap = nh;
		m->heap_cap = cap;
	}
	b = id_hash(ls->id) & (m->nb - 1);
	ls->id_next = m->ids[b];
	m->ids[b] = ls;
	if (ls->name[0]) {
		b = ls->name_hash & (m->nb - 1);
		ls->name_next = m->names[b];
		m->names[b] = ls;
	}
	m->n++;
	ls->hidx = m->heap_n;
	m->heap[m->heap_n++] = ls;
	heap_fix(m, ls->hidx);
	if (ls->hidx == 0)
		pthread_cond_signal(&m->timer_cv);
	return 0;
}

static void lease_remove(struct lease_mgr *m, struct lease *ls)
{
	struct lease **pp = &m->ids[id_hash(ls->id) & (m->nb - 1)];
	size_t i = ls->hidx;

	while (*pp != ls)
		pp = &(*pp)->id_next;
	*pp = ls->id_next;
	if (ls->name[0]) {
		pp = &m->names[ls->name_hash & (m->nb - 1)];
		while (*pp != ls)
			pp = &(*pp)->name_next;
		*pp = ls->name_next;
	}
	m->n--;
	m->heap_n--;
	if (i != m->heap_n) {
		m->heap[i] = m->heap[m->heap_n];
		m->heap[i]->hidx = i;
		heap_fix(m, i);
	}
}

static struct lease *lease_alloc(eng_lease_t id, int64_t ttl, const char *name)
{
	size_t nl = name ? strlen(name) : 0;
	struct lease *ls = calloc(1, sizeof(*ls) + nl + 1);

	if (!ls)
		return NULL;
	ls->id = id;
	ls->ttl = ttl;
	if (nl)
		memcpy(ls->name, name, nl);
	ls->name_hash = name_hash(ls->name);
	return ls;
}

/* --------------------------------------------------------------- expiry */

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu,
                            int64_t when_ns)
{
	struct timespec ts;

	if (when_ns == INT64_MAX) {
		pthread_cond_wait(c, mu);
		return;
	}
	ts.tv_sec = when_ns / NS_PER_S;
	ts.tv_nsec = when_ns % NS_PER_S;
	pthread_cond_timedwait(c, mu, &ts);
}

static void *expirer(void *arg)
{
	struct lease_mgr *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		struct lease *ls;
		int64_t now = eng_now_mono_ns();
		eng_rev_t rev = 0;
		int rc;

		if (!m->heap_n || m->heap[0]->deadline_ns > now) {
			if (m->timer_owned) {
				pthread_cond_wait(&m->work_cv, &m->lock);
				continue;
			}
			m->timer_owned = true;
			cond_wait_until(&m->timer_cv, &m->lock,
			                m->heap_n ? m->heap[0]->deadline_ns
			                          : INT64_MAX);
			m->timer_owned = false;
			continue;
		}
		ls = m->heap[0];
		lease_remove(m, ls); /* from here on the lease is gone */
		/* a helper takes the next due lease (a burst: share it) or
		 * the timer, while this one is busy */
		if (m->heap_n)
			pthread_cond_signal(&m->work_cv);
		pthread_mutex_unlock(&m->lock);

		rc = local_lease_delete(m->l, ls->id, &rev);
		if (rc < 0 && rc != ENG_E_LEASE_NOT_FOUND)
			eng_logf(&m->opt, ENG_LOG_WARN,
			         "lease %lld: expiry failed: %s",
			         (long long)ls->id, eng_strerror(rc));
		pthread_mutex_lock(&m->lock);
		if (rc < 0 && rc != ENG_E_LEASE_NOT_FOUND &&
		    rc != ENG_E_CLOSED && !m->stop && !find_id(m, ls->id)) {
			ls->deadline_ns = eng_now_mono_ns() + LEASE_RETRY_NS;
			if (lease_insert(m, ls) == 0)
				continue;
		}
		free(ls);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ------------------------------------------------------------- lifecycle */

struct load_ctx {
	struct lease_mgr *m;
	int64_t now;
	int rc;
};

static int load_cb(void *arg, const struct lease_rec *rec)
{
	struct load_ctx *c = arg;
	struct lease *ls = lease_alloc(rec->id, rec->ttl, rec->name);

	if (!ls) {
		c->rc = ENG_E_NOMEM;
		return 1;
	}
	/* etcd's rule: a restart gives every lease its full TTL */
	ls->deadline_ns = deadline_after(c->now, rec->ttl);
	if (find_id(c->m, rec->id) || lease_insert(c->m, ls) < 0) {
		free(ls);
		c->rc = find_id(c->m, rec->id) ? ENG_E_CORRUPT : ENG_E_NOMEM;
		return 1;
	}
	return 0;
}

static void mgr_destroy(struct lease_mgr *m)
{
	for (size_t i = 0; i < m->heap_n; i++)
		free(m->heap[i]);
	free(m->heap);
	free(m->ids);
	free(m->names);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->put_lock);
	pthread_cond_destroy(&m->timer_cv);
	pthread_cond_destroy(&m->work_cv);
	free(m);
}

int lease_mgr_new(struct local *l, const struct eng_options *opt,
                  struct lease_mgr **out)
{
	struct lease_mgr *m;
	struct load_ctx c;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return ENG_E_NOMEM;
	m->l = l;
	m->opt = *opt;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->put_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->timer_cv, &ca);
	pthread_cond_init(&m->work_cv, &ca);
	pthread_condattr_destroy(&ca);

	c.m = m;
	c.now = eng_now_mono_ns();
	c.rc = 0;
	pthread_mutex_lock(&m->lock);
	rc = local_lease_load(l, load_cb, &c);
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		rc = c.rc;
	if (rc < 0)
		goto fail;

	/* a read-only store cannot delete anything: its leases never expire */
	if (!opt->read_only) {
		for (int i = 0; i < LEASE_EXPIRERS; i++) {
			if (pthread_create(&m->threads[i], NULL, expirer, m)) {
				rc = ENG_E_NOMEM;
				goto fail;
			}
			m->nthreads++;
		}
	}
	*out = m;
	return 0;
fail:
	lease_mgr_free(m);
	return rc;
}

void lease_mgr_free(struct lease_mgr *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->timer_cv);
	pthread_cond_broadcast(&m->work_cv);
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < m->nthreads; i++)
		pthread_join(m->threads[i], NULL);
	mgr_destroy(m);
}

int64_t lease_mgr_count(struct lease_mgr *m)
{
	int64_t n;

	pthread_mutex_lock(&m->lock);
	n = (int64_t)m->n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ------------------------------------------------------------ operations */

static eng_lease_t random_id(void)
{
	uint64_t x = 0;

	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		x = (uint64_t)eng_now_real_ns() * 0x9e3779b97f4a7c15ULL ^
		    (uint64_t)eng_now_mono_ns();
	x &= INT64_MAX;
	return x ? (eng_lease_t)x : 1;
}

int lease_mgr_grant(struct lease_mgr *m, eng_lease_t id, int64_t ttl,
                    const char *name, eng_lease_t *out)
{
	struct lease_rec rec;
	struct lease *ls;
	bool pick = id == 0;
	int rc, tries = 0;

	if (ttl < 1 || ttl > LEASE_TTL_MAX)
		return ENG_E_TTL;
	if (id < 0 || (name && strlen(name) > ENG_LEASE_NAME_MAX))
		return ENG_E_INVAL;
	if (!name)
		name = "";
again:
	pthread_mutex_lock(&m->lock);
	if (pick)
		do
			id = random_id();
		while (find_id(m, id));
	rc = find_id(m, id) || (name[0] && find_name(m, name))
	         ? ENG_E_LEASE_EXISTS
	         : 0;
	pthread_mutex_unlock(&m->lock);
	if (rc < 0)
		return rc;

	memset(&rec, 0, sizeof(rec));
	rec.id = id;
	rec.ttl = ttl;
	strcpy(rec.name, name);
	ls = lease_alloc(id, ttl, name);
	if (!ls)
		return ENG_E_NOMEM;
	/* the store decides uniqueness in commit order */
	rc = local_lease_put(m->l, &rec, true);
	if (rc == ENG_E_LEASE_EXISTS && pick && !name[0] && ++tries < 3) {
		free(ls);
		goto again; /* a random id collided with a concurrent grant */
	}
	if (rc < 0) {
		free(ls);
		return rc;
	}
	pthread_mutex_lock(&m->lock);
	ls->deadline_ns = deadline_after(eng_now_mono_ns(), ttl);
	rc = lease_insert(m, ls);
	pthread_mutex_unlock(&m->lock);
	if (rc < 0) {
		/* cannot track it: take it back rather than never expire it */
		local_lease_delete(m->l, id, NULL);
		free(ls);
		return rc;
	}
	if (out)
		*out = id;
	return 0;
}

int lease_mgr_lookup(struct lease_mgr *m, const char *name, eng_lease_t *out)
{
	struct lease *ls;
	int rc = ENG_E_LEASE_NOT_FOUND;

	if (!name || !name[0])
		return ENG_E_INVAL;
	pthread_mutex_lock(&m->lock);
	ls = find_name(m, name);
	if (ls) {
		*out = ls->id;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int lease_mgr_keepalive(struct lease_mgr *m, eng_lease_t id, int64_t *ttl)
{
	struct lease *ls;
	int rc = ENG_E_LEASE_NOT_FOUND;

	pthread_mutex_lock(&m->lock);
	ls = find_id(m, id);
	if (ls) {
		ls->deadline_ns = deadline_after(eng_now_mono_ns(), ls->ttl);
		heap_fix(m, ls->hidx);
		if (ttl)
			*ttl = ls->ttl;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int lease_mgr_set_ttl(struct lease_mgr *m, eng_lease_t id, int64_t ttl)
{
	struct lease_rec rec;
	struct lease *ls;
	int rc = ENG_E_LEASE_NOT_FOUND;

	if (ttl < 1 || ttl > LEASE_TTL_MAX)
		return ENG_E_TTL;
	memset(&rec, 0, sizeof(rec));
	pthread_mutex_lock(&m->put_lock);
	pthread_mutex_lock(&m->lock);
	ls = find_id(m, id);
	if (ls) {
		rec.id = id;
		rec.ttl = ttl;
		strcpy(rec.name, ls->name);
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		rc = local_lease_put(m->l, &rec, false);
	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		ls = find_id(m, id); /* it may have expired meanwhile */
		if (ls) {
			ls->ttl = ttl;
			ls->deadline_ns =
			    deadline_after(eng_now_mono_ns(), ttl);
			heap_fix(m, ls->hidx);
			if (ls->hidx == 0)
				pthread_cond_signal(&m->timer_cv);
		} else {
			rc = ENG_E_LEASE_NOT_FOUND;
		}
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&m->put_lock);
	return rc;
}

int lease_mgr_revoke(struct lease_mgr *m, eng_lease_t id, eng_rev_t *rev)
{
	struct lease *ls;
	int rc;

	pthread_mutex_lock(&m->lock);
	ls = find_id(m, id);
	if (ls)
		lease_remove(m, ls);
	pthread_mutex_unlock(&m->lock);
	if (!ls)
		return ENG_E_LEASE_NOT_FOUND;
	rc = local_lease_delete(m->l, id, rev);
	if (rc < 0 && rc != ENG_E_LEASE_NOT_FOUND) {
		/* nothing was deleted: the lease lives on */
		pthread_mutex_lock(&m->lock);
		if (!find_id(m, id) && lease_insert(m, ls) == 0)
			ls = NULL;
		pthread_mutex_unlock(&m->lock);
	}
	free(ls);
	return rc;
}

int lease_mgr_ttl(struct lease_mgr *m, eng_lease_t id, unsigned flags,
                  struct eng_lease_info *out)
{
	struct lease *ls;
	int rc = ENG_E_LEASE_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&m->lock);
	ls = find_id(m, id);
	if (ls) {
		out->id = id;
		strcpy(out->name, ls->name);
		out->granted_ttl = ls->ttl;
		out->remaining_ms =
		    ls->deadline_ns == INT64_MAX
		        ? ls->ttl * 1000
		        : (ls->deadline_ns - eng_now_mono_ns()) / 1000000;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	if (rc == 0 && (flags & ENG_LEASE_KEYS))
		rc = local_lease_keys(m->l, id, out);
	return rc;
}

static int info_cmp(const void *a, const void *b)
{
	const struct eng_lease_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int lease_mgr_list(struct lease_mgr *m, struct eng_lease_info **out, size_t *n)
{
	struct eng_lease_info *v;
	int64_t now = eng_now_mono_ns();
	size_t k = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&m->lock);
	v = calloc(m->n ? m->n : 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&m->lock);
		return ENG_E_NOMEM;
	}
	for (size_t i = 0; i < m->heap_n; i++) {
		const struct lease *ls = m->heap[i];

		v[k].id = ls->id;
		strcpy(v[k].name, ls->name);
		v[k].granted_ttl = ls->ttl;
		v[k].remaining_ms = ls->deadline_ns == INT64_MAX
		                        ? ls->ttl * 1000
		                        : (ls->deadline_ns - now) / 1000000;
		k++;
	}
	pthread_mutex_unlock(&m->lock);
	qsort(v, k, sizeof(*v), info_cmp);
	*out = v;
	*n = k;
	return 0;
}
