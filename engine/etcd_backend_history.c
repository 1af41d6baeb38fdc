/*
 * etcd_backend_history.c — eng_history over etcd: a key's retained
 * versions, oldest first, including deletions.
 *
 * etcd keeps every version since its compaction revision C but has no call
 * that lists one key's versions; its watch does, from any retained
 * revision.  So: (1) read the key now (revision R0 and, if it is live, its
 * mod revision M); (2) the version live at C, if any (a range at C), is the
 * oldest retained one; (3) a watch on the single key from max(from, C + 1)
 * delivers every later version and deletion in order, and is closed as
 * soon as the version M arrived (it is the last one <= R0), or on an event
 * or progress notification past R0.  If the key is not live at R0, no event
 * marks the last one <= R0 (a deletion at an unknown revision): then etcd's
 * progress notification at or past R0 does (etcd sends one only to a watch
 * that has caught up), or, if none comes first (etcd's notification
 * interval is long by default), no event for HIST_QUIET_MS: under an etcd
 * so loaded that it catches the watch up later than that, such a history
 * may miss its newest versions (docs/etcd-backend.md).
 *
 * Cost: two or three requests plus one watch stream that carries only the
 * key's versions; etcd scans its revisions since `from` to find them.
 */
#include "etcd_backend.h"

#include <stdlib.h>
#include <string.h>

#define HIST_QUIET_MS 300

struct hist {
	struct eng_arena *a;
	struct eng_kv *kvs; /* malloc'd while building */
	size_t n, cap;
};

static int hist_add(struct hist *h, const struct eng_kv *kv, bool deleted)
{
	struct eng_kv *d;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct eng_kv *p = realloc(h->kvs, cap * sizeof(*p));

		if (!p)
			return ENG_E_NOMEM;
		h->kvs = p;
		h->cap = cap;
	}
	d = &h->kvs[h->n];
	memset(d, 0, sizeof(*d));
	d->key = eng_arena_dup(h->a, kv->key, kv->key_len);
	d->key_len = kv->key_len;
	d->mod_rev = kv->mod_rev;
	if (!d->key)
		return ENG_E_NOMEM;
	if (deleted) {
		d->deleted = true;
	} else {
		d->create_rev = kv->create_rev;
		d->version = kv->version;
		d->lease = kv->lease;
		d->value = eng_arena_dup(h->a, kv->value ? kv->value : "",
		                         kv->value_len);
		d->value_len = kv->value_len;
		if (!d->value)
			return ENG_E_NOMEM;
	}
	h->n++;
	return 0;
}

/* The key at revision rev (0: now): *live and a copy in *kv (h's arena). */
static int get_at(struct etcdb *ee, const void *key, size_t key_len,
                  eng_rev_t rev, struct hist *h, bool *live, eng_rev_t *hdr)
{
	struct eng_range_req req = {.key = key, .key_len = key_len, .rev = rev};
	struct eng_range_res res;
	int rc = ETCDB_RETRY(ee, etcd_range(ee->c, &req, &res));

	*live = false;
	if (!rc) {
		if (hdr)
			*hdr = res.header_rev;
		if (res.n == 1 && h) {
			*live = true;
			rc = hist_add(h, &res.kvs[0], false);
		} else if (res.n == 1) {
			*live = true;
		}
	}
	eng_range_res_release(&res);
	return rc;
}

int etcdb_history(eng *e, const void *key, size_t key_len, eng_rev_t from,
                  int64_t limit, struct eng_range_res *res)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct hist h = {0}, now = {0};
	struct etcd_watch *sw = NULL;
	eng_rev_t r0 = 0, c = 0, start, last_m = 0;
	bool live_now = false, live = false, more = false;
	int64_t quiet_until, deadline;
	int rc;

	if (etcdb_reserved(key, key_len))
		return ENG_E_INVAL;
	h.a = eng_arena_new();
	now.a = eng_arena_new();
	if (!h.a || !now.a) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	rc = get_at(ee, key, key_len, 0, &now, &live_now, &r0);
	if (rc)
		goto out;
	etcdb_seen_rev(ee, r0);
	if (live_now)
		last_m = now.kvs[0].mod_rev;
	rc = etcdb_probe_compact(ee, &c);
	if (rc)
		goto out;
	if (from && from < c) {
		rc = ENG_E_COMPACTED;
		goto out;
	}
	res->header_rev = r0;
	if (from > r0)
		goto done;
	start = from > 1 ? from : 1;
	if (c > 0 && start <= c) {
		struct hist one = {.a = h.a};

		/* The version live at C is retained even if older. */
		rc = get_at(ee, key, key_len, c, &one, &live, NULL);
		if (rc)
			goto out;
		if (live && one.kvs[0].mod_rev >= from)
			rc = hist_add(&h, &one.kvs[0], false);
		free(one.kvs);
		if (rc)
			goto out;
		start = c + 1;
	}
	if (start > r0 || (live_now && last_m < start))
		goto done;
	rc = etcd_watch_open(ee->c, key, key_len, NULL, 0, start,
	                     ETCD_WATCH_PROGRESS, &sw);
	if (rc)
		goto out;
	deadline = eng_now_mono_ns() + (int64_t)ee->timeout_ms * 1000000 * 4;
	quiet_until = eng_now_mono_ns() + (int64_t)HIST_QUIET_MS * 1000000;
	for (;;) {
		struct eng_event *evs;
		int64_t t = eng_now_mono_ns();
		bool stop = false;
		int n;

		if (t > deadline) {
			rc = ENG_E_TIMEOUT;
			goto out;
		}
		if (!live_now && t > quiet_until)
			break;
		n = etcd_watch_read(sw, &evs, 1024, 50);
		if (n < 0) {
			rc = n;
			goto out;
		}
		for (int i = 0; i < n && !stop; i++) {
			const struct eng_event *ev = &evs[i];

			if (ev->type == ENG_EV_COMPACTED) {
				etcdb_seen_compact(ee, ev->kv.mod_rev);
				rc = ENG_E_COMPACTED;
				goto out;
			}
			if (ev->kv.mod_rev > r0) {
				stop = true;
				break;
			}
			if (ev->type == ENG_EV_PROGRESS) {
				if (ev->kv.mod_rev >= r0)
					stop = true;
				continue;
			}
			if (limit && (int64_t)h.n == limit) {
				more = true;
				stop = true;
				break;
			}
			rc = hist_add(&h, &ev->kv, ev->type == ENG_EV_DELETE);
			if (rc)
				goto out;
			if (live_now && ev->kv.mod_rev == last_m)
				stop = true;
		}
		if (stop)
			break;
		if (n > 0)
			quiet_until = eng_now_mono_ns() +
			              (int64_t)HIST_QUIET_MS * 1000000;
	}
done:
	/* Limit reached before the known last version: more follow. */
	if (limit && (int64_t)h.n >= limit && live_now && !more && h.n > 0 &&
	    h.kvs[h.n - 1].mod_rev < last_m)
		more = true;
	if (limit && (int64_t)h.n > limit) {
		h.n = (size_t)limit;
		more = true;
	}
	res->kvs = h.n ? eng_arena_dup(h.a, h.kvs, h.n * sizeof(*h.kvs)) : NULL;
	if (h.n && !res->kvs) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	res->n = h.n;
	etcdb_mtime_fill(ee->mt, res->kvs, res->n);
	res->more = more;
	res->count = -1;
	res->priv_ = h.a;
	h.a = NULL;
out:
	etcd_watch_close(sw);
	free(h.kvs);
	free(now.kvs);
	eng_arena_free(h.a);
	eng_arena_free(now.a);
	if (rc) {
		memset(res, 0, sizeof(*res));
		res->count = -1;
	}
	return rc;
}
