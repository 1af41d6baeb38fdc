/*
 * local_read.c — every read of the local backend: ranges (at the current
 * revision through the latest index `l`, at older ones through the history
 * index `k`), key history, snapshots and the revision-log replay for watches.
 *
 * Invariants: one read is one LevelDB snapshot, so it sees one revision; the
 * revision, live-key count and compaction revision a read checks against are
 * taken from (or after) that snapshot, never before it, so a read can never
 * see a revision it did not check nor data a physical compaction already
 * removed.  Costs: O(log n + returned) at the current revision; at an older
 * revision one seek per key visited; `count` walks the rest of the range
 * only when asked for.
 */
#include "local_int.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- read context */

int local_meta_get(struct local *l, leveldb_readoptions_t *ro, const char *name,
                   int64_t *v1, int64_t *v2)
{
	char *err = NULL, *p;
	size_t n;

	*v1 = 0;
	if (v2)
		*v2 = 0;
	p = leveldb_get(l->db, ro, name, strlen(name), &n, &err);
	if (err)
		return local_ldb_err(l, err, "meta get");
	if (!p)
		return 0;
	if (n < 8 || (v2 && n < 16)) {
		leveldb_free(p);
		return ENG_E_CORRUPT;
	}
	*v1 = (int64_t)codec_get_be64(p);
	if (v2)
		*v2 = (int64_t)codec_get_be64(p + 8);
	leveldb_free(p);
	return 0;
}

int lread_open(struct local *l, struct local_snap *s, struct lread *rd)
{
	int rc;

	memset(rd, 0, sizeof(*rd));
	rd->l = l;
	rd->ro = leveldb_readoptions_create();
	if (!rd->ro)
		return ENG_E_NOMEM;
	if (s) {
		rd->ls = s->ls;
		rd->rev = s->base.rev;
		rd->compact_rev = s->base.compact_rev;
		rd->keys = s->keys;
		leveldb_readoptions_set_snapshot(rd->ro, rd->ls);
		return 0;
	}
	rd->ls = leveldb_create_snapshot(l->db);
	rd->own_snap = true;
	leveldb_readoptions_set_snapshot(rd->ro, rd->ls);
	rc = local_meta_get(l, rd->ro, META_STATE, &rd->rev, &rd->keys);
	/* After the snapshot: a physical compaction only starts after the
	 * compaction revision it works for is published. */
	rd->compact_rev = atomic_load(&l->compact_rev);
	if (rc)
		lread_close(rd);
	return rc;
}

void lread_close(struct lread *rd)
{
	if (rd->own_snap && rd->ls)
		leveldb_release_snapshot(rd->l->db, rd->ls);
	if (rd->ro)
		leveldb_readoptions_destroy(rd->ro);
	memset(rd, 0, sizeof(*rd));
}

/* ---------------------------------------------------------------- results */

static int res_grow(struct eng_range_res *res, size_t *cap)
{
	struct eng_kv *kvs;
	size_t ncap;

	if (!res->priv_) {
		res->priv_ = eng_arena_new();
		if (!res->priv_)
			return ENG_E_NOMEM;
	}
	if (res->n < *cap)
		return 0;
	/* Grow inside the arena: the old array is left there, which costs
	 * at most as much again (geometric growth). */
	ncap = *cap ? *cap * 2 : 16;
	kvs = eng_arena_alloc(res->priv_, ncap * sizeof(*kvs));
	if (!kvs)
		return ENG_E_NOMEM;
	if (res->n)
		memcpy(kvs, res->kvs, res->n * sizeof(*kvs));
	res->kvs = kvs;
	*cap = ncap;
	return 0;
}

int res_add_kv(struct eng_range_res *res, size_t *cap, const char *key,
               size_t key_len, const struct rec *r, unsigned flags)
{
	struct eng_kv *kv;

	if (res_grow(res, cap))
		return ENG_E_NOMEM;
	kv = &res->kvs[res->n];
	memset(kv, 0, sizeof(*kv));
	kv->key = eng_arena_dup(res->priv_, key, key_len);
	if (!kv->key)
		return ENG_E_NOMEM;
	kv->key_len = key_len;
	if (!(flags & ENG_RANGE_KEYS_ONLY) && r->type == REC_PUT) {
		kv->value = eng_arena_dup(res->priv_, r->val, r->val_len);
		if (!kv->value)
			return ENG_E_NOMEM;
		kv->value_len = r->val_len;
	} else if ((flags & ENG_RANGE_VALUE_LEN) && r->type == REC_PUT) {
		kv->value_len = r->val_len;
	}
	kv->create_rev = r->create_rev;
	kv->mod_rev = r->mod_rev;
	kv->version = r->version;
	kv->lease = r->lease;
	kv->mtime_ns = r->mtime_ns;
	kv->deleted = r->type == REC_DEL;
	res->n++;
	return 0;
}

int res_add_prefix(struct eng_range_res *res, size_t *cap, const char *key,
                   size_t key_len)
{
	struct eng_kv *kv;

	if (res_grow(res, cap))
		return ENG_E_NOMEM;
	kv = &res->kvs[res->n];
	memset(kv, 0, sizeof(*kv));
	kv->key = eng_arena_dup(res->priv_, key, key_len);
	if (!kv->key)
		return ENG_E_NOMEM;
	kv->key_len = key_len;
	kv->is_prefix = true;
	res->n++;
	return 0;
}

/* ------------------------------------------------------------ range logic */

static bool end_is_all(const struct rparams *p)
{
	return p->end_len == 1 && p->end[0] == 0;
}

/* Is user key k (from the range) before the range end? */
static bool before_end(const struct rparams *p, const char *k, size_t n)
{
	if (p->end_len == 0)
		return codec_cmp(k, n, p->key, p->key_len) == 0;
	if (end_is_all(p))
		return true;
	return codec_cmp(k, n, p->end, p->end_len) < 0;
}

/* Where the delimiter rolls k up: the prefix length, or 0 if it doesn't. */
static size_t delim_at(const struct rparams *p, const char *k, size_t n)
{
	const char *d;

	if (!p->delim || p->prefix_len >= n)
		return 0;
	d = memchr(k + p->prefix_len, p->delim, n - p->prefix_len);
	return d ? (size_t)(d - k) + 1 : 0;
}

/*
 * The shared tail of both range walks: `emit` returns 1 if the entry fits,
 * 0 once the limit is reached (more is then set).
 */
struct walk {
	const struct rparams *p;
	struct eng_range_res *res;
	size_t cap;
	int64_t seen;  /* entries matched (returned or counted) */
	bool counting; /* past the limit: only count */
	bool count_only;
};

static int walk_emit(struct walk *w, const char *k, size_t n,
                     const struct rec *r, bool prefix)
{
	int rc;

	if (w->count_only) {
		w->seen++;
		return 1;
	}
	if (w->counting) {
		w->seen++;
		return 1;
	}
	if (w->p->limit && w->seen == w->p->limit) {
		w->res->more = true;
		if (!(w->p->flags & ENG_RANGE_COUNT) || w->p->delim ||
		    w->p->keys_total >= 0)
			return 0;
		w->counting = true;
		w->seen++;
		return 1;
	}
	if (prefix)
		rc = res_add_prefix(w->res, &w->cap, k, n);
	else
		rc = res_add_kv(w->res, &w->cap, k, n, r, w->p->flags);
	if (rc)
		return rc;
	w->seen++;
	return 1;
}

/* Will the next walk_emit of a key keep its value?  Only then is a value
 * stored by reference worth its read. */
static bool walk_wants_value(const struct walk *w)
{
	return !w->count_only && !w->counting &&
	       !(w->p->limit && w->seen == w->p->limit) &&
	       !(w->p->flags & ENG_RANGE_KEYS_ONLY);
}

static void walk_finish(struct walk *w)
{
	const struct rparams *p = w->p;

	if (w->count_only || !w->res->more || w->counting)
		w->res->count = w->seen;
	else if (!p->delim && p->keys_total >= 0)
		w->res->count = p->keys_total;
	else
		w->res->count = -1;
	if (w->count_only)
		w->res->more = false;
}

static void walk_init(struct walk *w, const struct rparams *p,
                      struct eng_range_res *res)
{
	memset(w, 0, sizeof(*w));
	w->p = p;
	w->res = res;
	w->count_only = p->flags & ENG_RANGE_COUNT_ONLY;
}

int local_range_latest(struct view *v, const struct rparams *p,
                       struct eng_range_res *res)
{
	struct cbuf lo = {0}, hi = {0}, val = {0}, vbuf = {0}, skip = {0};
	struct vit it = {0};
	struct walk w;
	struct rec r;
	int rc;

	walk_init(&w, p, res);
	if (w.count_only && !p->delim && p->keys_total >= 0) {
		res->count = p->keys_total;
		return 0;
	}
	if (codec_latest_key(&lo, p->key, p->key_len)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	if (p->end_len == 0) {
		/* One key: a point read. */
		rc = view_get(v, lo.p, lo.len, &val);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			size_t d = delim_at(p, p->key, p->key_len);

			rc = codec_latest_decode(val.p, val.len, &r);
			if (!rc && !d && walk_wants_value(&w))
				rc = view_rec_value(v, p->key, p->key_len, &r,
				                    &vbuf);
			if (rc)
				goto out;
			if (d)
				rc = walk_emit(&w, p->key, d, NULL, true);
			else
				rc = walk_emit(&w, p->key, p->key_len, &r,
				               false);
			if (rc < 0)
				goto out;
		}
		rc = 0;
		walk_finish(&w);
		goto out;
	}
	if (end_is_all(p))
		rc = cbuf_add_u8(&hi, SP_LATEST + 1);
	else
		rc = codec_latest_key(&hi, p->end, p->end_len);
	if (rc)
		goto out;
	if (codec_cmp(lo.p, lo.len, hi.p, hi.len) >= 0) {
		walk_finish(&w);
		goto out;
	}
	rc = vit_open(&it, v, lo.p, lo.len, hi.p, hi.len);
	if (rc)
		goto out;
	vit_seek(&it, lo.p, lo.len);
	while (it.valid) {
		const char *k = it.k + 1;
		size_t n = it.klen - 1;
		size_t d = delim_at(p, k, n);

		if (d) {
			rc = walk_emit(&w, k, d, NULL, true);
			if (rc <= 0)
				break;
			/* Skip the rolled-up prefix with one seek. */
			rc = codec_prefix_end(&skip, it.k, d + 1);
			if (rc < 0)
				break;
			if (rc == 0) {
				it.valid = false;
				break;
			}
			vit_seek(&it, skip.p, skip.len);
			continue;
		}
		if (w.counting || w.count_only) {
			w.seen++;
			vit_next(&it);
			continue;
		}
		rc = codec_latest_decode(it.v, it.vlen, &r);
		if (!rc && walk_wants_value(&w))
			rc = view_rec_value(v, k, n, &r, &vbuf);
		if (rc)
			break;
		rc = walk_emit(&w, k, n, &r, false);
		if (rc <= 0)
			break;
		vit_next(&it);
	}
	if (rc >= 0)
		rc = vit_error(&it, v->l);
	if (rc == 0)
		walk_finish(&w);
out:
	vit_close(&it);
	cbuf_free(&lo);
	cbuf_free(&hi);
	cbuf_free(&val);
	cbuf_free(&vbuf);
	cbuf_free(&skip);
	return rc;
}

/*
 * At an older revision: per key, one seek to its newest version <= rev
 * (none if its first version is already <= rev), then skip its older
 * versions with a few Next() or one seek.
 */
int local_range_hist(struct local *l, leveldb_readoptions_t *ro,
                     const struct rparams *p, eng_rev_t rev,
                     struct eng_range_res *res)
{
	struct cbuf start = {0}, key = {0}, pfx = {0}, tmp = {0}, pend = {0};
	leveldb_iterator_t *it = NULL;
	bool have_pend = false;
	struct walk w;
	int rc = 0;

	walk_init(&w, p, res);
	if (p->end_len && !end_is_all(p) &&
	    codec_cmp(p->key, p->key_len, p->end, p->end_len) >= 0) {
		walk_finish(&w);
		return 0;
	}
	if (codec_hist_prefix(&start, p->key, p->key_len)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	start.len -= 2; /* no terminator: the key and every longer key */
	it = leveldb_create_iterator(l->db, ro);
	leveldb_iter_seek(it, start.p, start.len);
	while (leveldb_iter_valid(it)) {
		size_t klen, vlen, plen, d;
		const char *k = leveldb_iter_key(it, &klen), *v;
		int64_t r;
		struct rec rc_rec;
		bool live;

		if (klen == 0 || k[0] != SP_HIST)
			break;
		rc = codec_hist_parse(k, klen, &key, &r, &plen);
		if (rc)
			break;
		if (!before_end(p, key.p, key.len))
			break;
		pfx.len = 0;
		if (cbuf_add(&pfx, k, plen)) {
			rc = ENG_E_NOMEM;
			break;
		}
		if (r > rev) {
			if (codec_hist_key(&tmp, key.p, key.len, rev)) {
				rc = ENG_E_NOMEM;
				break;
			}
			leveldb_iter_seek(it, tmp.p, tmp.len);
			if (!leveldb_iter_valid(it))
				break;
			k = leveldb_iter_key(it, &klen);
			if (klen != plen + 8 || memcmp(k, pfx.p, plen) != 0)
				continue; /* no version <= rev: next key */
		}
		v = leveldb_iter_value(it, &vlen);
		rc = codec_rec_decode(v, vlen, &rc_rec);
		if (rc)
			break;
		rc_rec.mod_rev = (int64_t)~codec_get_be64(k + plen);
		live = rc_rec.type == REC_PUT;
		d = delim_at(p, key.p, key.len);
		if (have_pend && key.len >= pend.len &&
		    memcmp(key.p, pend.p, pend.len) == 0) {
			d = pend.len; /* still under a prefix not yet shown */
		} else {
			have_pend = false;
		}
		if (d && live) {
			rc = walk_emit(&w, key.p, d, NULL, true);
			if (rc <= 0)
				break;
			have_pend = false;
			/* Past every key under the prefix, in escaped form. */
			if (codec_hist_prefix(&tmp, key.p, d)) {
				rc = ENG_E_NOMEM;
				break;
			}
			tmp.len -= 2;
			rc = codec_prefix_end(&pend, tmp.p, tmp.len);
			if (rc <= 0)
				break;
			leveldb_iter_seek(it, pend.p, pend.len);
			pend.len = 0;
			continue;
		}
		if (d) {
			if (!have_pend) {
				pend.len = 0;
				if (cbuf_add(&pend, key.p, d)) {
					rc = ENG_E_NOMEM;
					break;
				}
				have_pend = true;
			}
		} else if (live) {
			rc = walk_emit(&w, key.p, key.len, &rc_rec, false);
			if (rc <= 0)
				break;
		}
		/* Skip the key's older versions. */
		for (int i = 0;; i++) {
			leveldb_iter_next(it);
			if (!leveldb_iter_valid(it))
				break;
			k = leveldb_iter_key(it, &klen);
			if (klen < plen || memcmp(k, pfx.p, plen) != 0)
				break;
			if (i == 2) {
				pfx.p[plen - 1] = 2; /* 00 02: past the key */
				leveldb_iter_seek(it, pfx.p, plen);
				break;
			}
		}
	}
	if (rc >= 0) {
		char *err = NULL;

		rc = 0;
		leveldb_iter_get_error(it, &err);
		if (err)
			rc = local_ldb_err(l, err, "iterate");
	}
	if (rc == 0)
		walk_finish(&w);
out:
	if (it)
		leveldb_iter_destroy(it);
	cbuf_free(&start);
	cbuf_free(&key);
	cbuf_free(&pfx);
	cbuf_free(&tmp);
	cbuf_free(&pend);
	return rc;
}

int local_range(eng *e, const struct eng_range_req *req,
                struct eng_range_res *res)
{
	struct local *l = (struct local *)e;
	int64_t t0 = eng_now_mono_ns();
	struct rparams p = {
	    .key = req->key,
	    .key_len = req->key_len,
	    .end = req->end,
	    .end_len = req->end_len,
	    .limit = req->limit,
	    .flags = req->flags,
	    .delim = req->delim,
	    .prefix_len = req->prefix_len,
	    .keys_total = -1,
	};
	struct lread rd;
	eng_rev_t rev;
	int rc;

	if (p.flags & ENG_RANGE_COUNT_ONLY)
		p.flags |= ENG_RANGE_COUNT;
	rc = lread_open(l, (struct local_snap *)req->snap, &rd);
	if (rc)
		goto out;
	/* A scan (a listing's page) reads its blocks once: caching them
	 * would only evict the point reads' working set and grow the
	 * daemon by the block cache's size for one `ls` of a big directory.
	 * A range of a few keys (a lookup's "is it a directory" probe) is a
	 * point read and keeps its blocks. */
	if (p.end_len > 0 && (p.limit <= 0 || p.limit > 8))
		leveldb_readoptions_set_fill_cache(rd.ro, 0);
	rev = req->rev ? req->rev : rd.rev;
	if (rev > rd.rev) {
		rc = ENG_E_FUTURE_REV;
	} else if (rev < rd.compact_rev) {
		rc = ENG_E_COMPACTED;
	} else if (rev == rd.rev) {
		struct view v = {.l = l, .ro = rd.ro};

		/* The whole keyspace: the live-key counter is the count. */
		if (p.key_len == 1 && p.key[0] == 0 && end_is_all(&p))
			p.keys_total = rd.keys;
		rc = local_range_latest(&v, &p, res);
	} else {
		rc = local_range_hist(l, rd.ro, &p, rev, res);
	}
	res->header_rev = rd.rev;
	lread_close(&rd);
out:
	if (rc) {
		eng_range_res_release(res);
		res->count = -1;
	}
	local_stat_record(l, &l->st_range, t0, rc);
	return rc;
}

/*
 * eng_get of one key at the current revision without a snapshot: one
 * LevelDB Get.  A Get is atomic (it sees every write batch up to one
 * sequence number), a key's latest record is never removed by compaction,
 * and eng_get reports no revision, so neither a snapshot nor the revision
 * record (lread_open's) is needed.  Like any current read it may see a
 * group that is written but whose writers were not yet answered.  A
 * reference is the exception: the version it names stops being the newest
 * once a put lands after the Get, and compaction may then remove it, so
 * `l` and that version are read again under one snapshot (two Gets more).
 */
int local_get_latest(struct local *l, const void *key, size_t key_len,
                     struct eng_kv *kv)
{
	int64_t t0 = eng_now_mono_ns();
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	const leveldb_snapshot_t *ls = NULL;
	struct cbuf lk = {0}, vbuf = {0};
	char *err = NULL, *p = NULL, *buf;
	struct rec r;
	size_t n;
	int rc;

	memset(kv, 0, sizeof(*kv));
	if (!ro || codec_latest_key(&lk, key, key_len)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
again:
	p = leveldb_get(l->db, ro, lk.p, lk.len, &n, &err);
	if (err) {
		rc = local_ldb_err(l, err, "get");
		goto out;
	}
	rc = 0;
	if (!p)
		goto out; /* missing: mod_rev 0 */
	rc = codec_latest_decode(p, n, &r);
	if (rc)
		goto out;
	if (r.val_ref && !ls) {
		/* The version it names must be read in the same state as
		 * `l` (compaction removes it once a newer one exists): read
		 * both again under a snapshot. */
		ls = leveldb_create_snapshot(l->db);
		leveldb_readoptions_set_snapshot(ro, ls);
		leveldb_free(p);
		p = NULL;
		goto again;
	}
	if (r.val_ref) {
		struct view v = {.l = l, .ro = ro};

		rc = view_rec_value(&v, key, key_len, &r, &vbuf);
		if (rc)
			goto out;
	}
	/* One block for key and value, as eng_kv_release expects. */
	buf = malloc(key_len + r.val_len + 1);
	if (!buf) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	memcpy(buf, key, key_len);
	kv->key = buf;
	kv->key_len = key_len;
	if (r.type == REC_PUT) {
		if (r.val_len)
			memcpy(buf + key_len, r.val, r.val_len);
		kv->value = buf + key_len;
		kv->value_len = r.val_len;
	}
	kv->create_rev = r.create_rev;
	kv->mod_rev = r.mod_rev;
	kv->version = r.version;
	kv->lease = r.lease;
	kv->mtime_ns = r.mtime_ns;
out:
	leveldb_free(p);
	if (ro)
		leveldb_readoptions_destroy(ro);
	if (ls)
		leveldb_release_snapshot(l->db, ls);
	cbuf_free(&lk);
	cbuf_free(&vbuf);
	local_stat_record(l, &l->st_range, t0, rc);
	return rc;
}

/* -------------------------------------------------------------- history */

int local_history(eng *e, const void *key, size_t key_len, eng_rev_t from,
                  int64_t limit, struct eng_range_res *res)
{
	struct local *l = (struct local *)e;
	struct cbuf pfx = {0}, tmp = {0};
	leveldb_iterator_t *it = NULL;
	struct rec cand = {0};
	bool have_cand = false;
	size_t cap = 0, plen;
	struct lread rd;
	char *cand_buf = NULL;
	int rc;

	rc = lread_open(l, NULL, &rd);
	if (rc)
		return rc;
	res->header_rev = rd.rev;
	if (from && from < rd.compact_rev) {
		rc = ENG_E_COMPACTED;
		goto out;
	}
	if (codec_hist_prefix(&pfx, key, key_len) ||
	    codec_hist_key(&tmp, key, key_len, from)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	plen = pfx.len;
	it = leveldb_create_iterator(l->db, rd.ro);
	/* Oldest first: start at the oldest version >= from and walk back
	 * (newer) with Prev(). */
	leveldb_iter_seek(it, tmp.p, tmp.len);
	if (leveldb_iter_valid(it)) {
		size_t klen;
		const char *k = leveldb_iter_key(it, &klen);

		if (!(klen == plen + 8 && memcmp(k, pfx.p, plen) == 0 &&
		      (int64_t)~codec_get_be64(k + plen) == from))
			leveldb_iter_prev(it);
	} else {
		leveldb_iter_seek_to_last(it);
	}
	for (; leveldb_iter_valid(it); leveldb_iter_prev(it)) {
		size_t klen, vlen;
		const char *k = leveldb_iter_key(it, &klen);
		const char *v = leveldb_iter_value(it, &vlen);
		struct rec r;

		if (klen != plen + 8 || memcmp(k, pfx.p, plen) != 0)
			break;
		rc = codec_rec_decode(v, vlen, &r);
		if (rc)
			goto out;
		r.mod_rev = (int64_t)~codec_get_be64(k + plen);
		/* Before physical compaction finishes, hide what it will
		 * remove: only the newest version <= compact_rev is kept,
		 * and not if it is a deletion. */
		if (r.mod_rev <= rd.compact_rev) {
			free(cand_buf);
			cand_buf = malloc(vlen ? vlen : 1);
			if (!cand_buf) {
				rc = ENG_E_NOMEM;
				goto out;
			}
			memcpy(cand_buf, v, vlen);
			codec_rec_decode(cand_buf, vlen, &cand);
			cand.mod_rev = r.mod_rev;
			have_cand = true;
			continue;
		}
		if (have_cand) {
			have_cand = false;
			if (cand.type == REC_PUT) {
				if (limit && (int64_t)res->n == limit) {
					res->more = true;
					break;
				}
				rc = res_add_kv(res, &cap, key, key_len, &cand,
				                0);
				if (rc)
					goto out;
			}
		}
		if (limit && (int64_t)res->n == limit) {
			res->more = true;
			break;
		}
		rc = res_add_kv(res, &cap, key, key_len, &r, 0);
		if (rc)
			goto out;
	}
	if (have_cand && cand.type == REC_PUT) {
		if (limit && (int64_t)res->n == limit)
			res->more = true;
		else
			rc = res_add_kv(res, &cap, key, key_len, &cand, 0);
	}
	res->count = (int64_t)res->n;
	if (res->more)
		res->count = -1;
out:
	if (it)
		leveldb_iter_destroy(it);
	lread_close(&rd);
	free(cand_buf);
	cbuf_free(&pfx);
	cbuf_free(&tmp);
	if (rc) {
		eng_range_res_release(res);
		res->count = -1;
	}
	return rc;
}

/* -------------------------------------------------------------- snapshots */

int local_snap_open(eng *e, eng_snap **out)
{
	struct local *l = (struct local *)e;
	struct local_snap *s = calloc(1, sizeof(*s));
	leveldb_readoptions_t *ro;
	int rc;

	if (!s)
		return ENG_E_NOMEM;
	ro = leveldb_readoptions_create();
	s->ls = leveldb_create_snapshot(l->db);
	leveldb_readoptions_set_snapshot(ro, s->ls);
	rc = local_meta_get(l, ro, META_STATE, &s->base.rev, &s->keys);
	s->base.compact_rev = atomic_load(&l->compact_rev);
	leveldb_readoptions_destroy(ro);
	if (rc) {
		leveldb_release_snapshot(l->db, s->ls);
		free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}

void local_snap_release(eng *e, eng_snap *snap)
{
	struct local *l = (struct local *)e;
	struct local_snap *s = (struct local_snap *)snap;

	leveldb_release_snapshot(l->db, s->ls);
	free(s);
}

/* ------------------------------------------------------- revision replay */

static bool in_range(const char *k, size_t n, const void *key, size_t key_len,
                     const void *end, size_t end_len)
{
	if (end_len == 0)
		return codec_cmp(k, n, key, key_len) == 0;
	if (codec_cmp(k, n, key, key_len) < 0)
		return false;
	if (end_len == 1 && ((const char *)end)[0] == 0)
		return true;
	return codec_cmp(k, n, end, end_len) < 0;
}

int local_read_events(struct local *l, eng_rev_t from, eng_rev_t to,
                      const void *key, size_t key_len, const void *end,
                      size_t end_len,
                      int (*cb)(void *arg, const struct eng_event *ev),
                      void *arg, eng_rev_t *compact_rev)
{
	struct cbuf lo = {0}, hk = {0};
	leveldb_iterator_t *it = NULL;
	struct lread rd;
	int rc;

	rc = lread_open(l, NULL, &rd);
	if (rc)
		return rc;
	leveldb_readoptions_set_fill_cache(rd.ro, 0); /* a scan, as above */
	if (from < rd.compact_rev) {
		if (compact_rev)
			*compact_rev = rd.compact_rev;
		rc = ENG_E_COMPACTED;
		goto out;
	}
	if (to > rd.rev)
		to = rd.rev;
	if (from > to)
		goto out;
	if (codec_log_key(&lo, from, 0)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	it = leveldb_create_iterator(l->db, rd.ro);
	for (leveldb_iter_seek(it, lo.p, lo.len); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = leveldb_iter_key(it, &klen);
		const char *v = leveldb_iter_value(it, &vlen);
		struct eng_event ev = {0};
		char *p = NULL;
		int64_t rev;

		if (klen != 13 || k[0] != SP_LOG)
			break;
		rev = (int64_t)codec_get_be64(k + 1);
		if (rev > to)
			break;
		if (vlen < 1) {
			rc = ENG_E_CORRUPT;
			break;
		}
		if (!in_range(v + 1, vlen - 1, key, key_len, end, end_len))
			continue;
		/* etcd's compaction drops a deletion at exactly the
		 * compaction revision, so its watches never replay it. */
		if (v[0] == REC_DEL && rev <= rd.compact_rev)
			continue;
		ev.kv.key = v + 1;
		ev.kv.key_len = vlen - 1;
		ev.kv.mod_rev = rev;
		if (v[0] == REC_DEL) {
			ev.type = ENG_EV_DELETE;
			ev.kv.deleted = true;
		} else {
			char *err = NULL;
			size_t n;
			struct rec r;

			ev.type = ENG_EV_PUT;
			if (codec_hist_key(&hk, v + 1, vlen - 1, rev)) {
				rc = ENG_E_NOMEM;
				break;
			}
			p = leveldb_get(l->db, rd.ro, hk.p, hk.len, &n, &err);
			if (err) {
				rc = local_ldb_err(l, err, "replay get");
				break;
			}
			if (!p || codec_rec_decode(p, n, &r)) {
				leveldb_free(p);
				rc = ENG_E_CORRUPT;
				break;
			}
			ev.kv.value = r.val;
			ev.kv.value_len = r.val_len;
			ev.kv.create_rev = r.create_rev;
			ev.kv.version = r.version;
			ev.kv.lease = r.lease;
			ev.kv.mtime_ns = r.mtime_ns;
		}
		rc = cb(arg, &ev);
		leveldb_free(p);
		if (rc)
			break;
	}
out:
	if (it)
		leveldb_iter_destroy(it);
	lread_close(&rd);
	cbuf_free(&lo);
	cbuf_free(&hk);
	return rc;
}
