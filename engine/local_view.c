/*
 * local_view.c — what the commit leader reads: LevelDB plus the overlay of
 * records written earlier in the same group commit (not yet in LevelDB).
 *
 * The overlay maps a raw LevelDB key to its new value or to a deletion.  It
 * holds only the spaces the leader reads back (`l`, `L`, `N`, `A`); `k`, `r`
 * and meta records go to the writebatch only.  Point reads look in the
 * overlay first.  A merged iterator walks LevelDB and the overlay entries in
 * [lo, hi) together (the overlay's entries are collected and sorted when the
 * iterator opens, so the overlay must not change while one is open); an
 * overlay entry hides the LevelDB record with the same key.
 */
#include "local_int.h"

#include <stdlib.h>
#include <string.h>

struct ov_ent {
	char *k;
	size_t klen;
	char *v; /* NULL: deleted */
	size_t vlen;
};

struct overlay {
	struct ov_ent **slots; /* open addressing, linear probing */
	size_t cap;            /* power of two */
	size_t n;
};

static uint64_t ov_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)k[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int overlay_new(struct overlay **out)
{
	struct overlay *ov = calloc(1, sizeof(*ov));

	if (!ov)
		return ENG_E_NOMEM;
	ov->cap = 64;
	ov->slots = calloc(ov->cap, sizeof(*ov->slots));
	if (!ov->slots) {
		free(ov);
		return ENG_E_NOMEM;
	}
	*out = ov;
	return 0;
}

static void ent_free(struct ov_ent *e)
{
	free(e->k);
	free(e->v);
	free(e);
}

void overlay_clear(struct overlay *ov)
{
	for (size_t i = 0; i < ov->cap; i++) {
		if (ov->slots[i]) {
			ent_free(ov->slots[i]);
			ov->slots[i] = NULL;
		}
	}
	ov->n = 0;
	/* Don't keep a huge table around after one huge batch. */
	if (ov->cap > 4096) {
		struct ov_ent **s = calloc(64, sizeof(*s));

		if (s) {
			free(ov->slots);
			ov->slots = s;
			ov->cap = 64;
		}
	}
}

void overlay_free(struct overlay *ov)
{
	if (!ov)
		return;
	overlay_clear(ov);
	free(ov->slots);
	free(ov);
}

size_t overlay_count(const struct overlay *ov)
{
	return ov->n;
}

static struct ov_ent **ov_find(struct overlay *ov, const char *k, size_t n)
{
	size_t i = ov_hash(k, n) & (ov->cap - 1);

	for (;;) {
		struct ov_ent *e = ov->slots[i];

		if (!e || (e->klen == n && memcmp(e->k, k, n) == 0))
			return &ov->slots[i];
		i = (i + 1) & (ov->cap - 1);
	}
}

static int ov_grow(struct overlay *ov)
{
	struct overlay big = {.cap = ov->cap * 2, .n = ov->n};

	big.slots = calloc(big.cap, sizeof(*big.slots));
	if (!big.slots)
		return ENG_E_NOMEM;
	for (size_t i = 0; i < ov->cap; i++) {
		struct ov_ent *e = ov->slots[i];

		if (e)
			*ov_find(&big, e->k, e->klen) = e;
	}
	free(ov->slots);
	ov->slots = big.slots;
	ov->cap = big.cap;
	return 0;
}

int overlay_set(struct overlay *ov, const char *k, size_t klen, const char *val,
                size_t vlen)
{
	struct ov_ent **slot, *e;
	char *v = NULL;

	if ((ov->n + 1) * 2 > ov->cap && ov_grow(ov))
		return ENG_E_NOMEM;
	if (val) {
		v = malloc(vlen ? vlen : 1);
		if (!v)
			return ENG_E_NOMEM;
		memcpy(v, val, vlen);
	}
	slot = ov_find(ov, k, klen);
	e = *slot;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->k = malloc(klen ? klen : 1))) {
			free(e);
			free(v);
			return ENG_E_NOMEM;
		}
		memcpy(e->k, k, klen);
		e->klen = klen;
		*slot = e;
		ov->n++;
	}
	free(e->v);
	e->v = v;
	e->vlen = vlen;
	return 0;
}

int view_get(struct view *v, const char *k, size_t klen, struct cbuf *val)
{
	char *err = NULL, *p;
	size_t n;
	int rc;

	if (v->ov) {
		struct ov_ent *e = *ov_find(v->ov, k, klen);

		if (e) {
			if (!e->v)
				return 0;
			val->len = 0;
			return cbuf_add(val, e->v, e->vlen) ? ENG_E_NOMEM : 1;
		}
	}
	p = leveldb_get(v->l->db, v->ro, k, klen, &n, &err);
	if (err)
		return local_ldb_err(v->l, err, "get");
	if (!p)
		return 0;
	val->len = 0;
	rc = cbuf_add(val, p, n) ? ENG_E_NOMEM : 1;
	leveldb_free(p);
	return rc;
}

int view_rec_value(struct view *v, const char *key, size_t klen, struct rec *r,
                   struct cbuf *buf)
{
	struct cbuf k = {0};
	struct rec h;
	int rc;

	if (!r->val_ref)
		return 0;
	/* The overlay holds full `l` records, so a reference came from
	 * LevelDB, where the same batch wrote the version it names. */
	if (codec_hist_key(&k, key, klen, r->mod_rev)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	rc = view_get(v, k.p, k.len, buf);
	if (rc < 0)
		goto out;
	if (rc == 0 || codec_rec_decode(buf->p, buf->len, &h) ||
	    h.type != REC_PUT || h.mod_rev != r->mod_rev ||
	    h.val_len != r->val_len) {
		eng_logf(&v->l->base.opt, ENG_LOG_ERR,
		         "latest record of %.*s names version %lld, which "
		         "is %s",
		         (int)klen, key, (long long)r->mod_rev,
		         rc == 0 ? "missing" : "not it");
		rc = ENG_E_CORRUPT;
		goto out;
	}
	r->val = h.val;
	r->val_ref = false;
	rc = 0;
out:
	cbuf_free(&k);
	return rc;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct ov_ent *x = *(struct ov_ent *const *)a;
	const struct ov_ent *y = *(struct ov_ent *const *)b;

	return codec_cmp(x->k, x->klen, y->k, y->klen);
}

static bool below_hi(const struct vit *it, const char *k, size_t n)
{
	return !it->has_hi || codec_cmp(k, n, it->hi.p, it->hi.len) < 0;
}

/* Position on the smaller of the two sources, skipping deletions. */
static void vit_settle(struct vit *it)
{
	for (;;) {
		const char *lk = NULL;
		size_t llen = 0;
		bool l_ok = leveldb_iter_valid(it->it);
		bool o_ok = it->pos < it->nents;
		int c = 0;

		if (l_ok) {
			lk = leveldb_iter_key(it->it, &llen);
			l_ok = below_hi(it, lk, llen);
		}
		if (!l_ok && !o_ok) {
			it->valid = false;
			return;
		}
		if (o_ok && l_ok) {
			struct ov_ent *e = it->ents[it->pos];

			c = codec_cmp(e->k, e->klen, lk, llen);
		}
		if (o_ok && (!l_ok || c <= 0)) {
			struct ov_ent *e = it->ents[it->pos];

			if (!e->v) {
				it->pos++;
				if (l_ok && c == 0)
					leveldb_iter_next(it->it);
				continue;
			}
			it->from_ov = true;
			it->ov_same = l_ok && c == 0;
			it->k = e->k;
			it->klen = e->klen;
			it->v = e->v;
			it->vlen = e->vlen;
		} else {
			it->from_ov = false;
			it->ov_same = false;
			it->k = lk;
			it->klen = llen;
			it->v = leveldb_iter_value(it->it, &it->vlen);
		}
		it->valid = true;
		return;
	}
}

int vit_open(struct vit *it, struct view *v, const char *lo, size_t lolen,
             const char *hi, size_t hilen)
{
	memset(it, 0, sizeof(*it));
	if (cbuf_add(&it->lo, lo, lolen))
		return ENG_E_NOMEM;
	if (hi) {
		it->has_hi = true;
		if (cbuf_add(&it->hi, hi, hilen))
			goto nomem;
	}
	if (v->ov && v->ov->n) {
		struct overlay *ov = v->ov;

		it->ents = malloc(ov->n * sizeof(*it->ents));
		if (!it->ents)
			goto nomem;
		for (size_t i = 0; i < ov->cap; i++) {
			struct ov_ent *e = ov->slots[i];

			if (e && codec_cmp(e->k, e->klen, lo, lolen) >= 0 &&
			    below_hi(it, e->k, e->klen))
				it->ents[it->nents++] = e;
		}
		qsort(it->ents, it->nents, sizeof(*it->ents), ent_cmp);
	}
	it->it = leveldb_create_iterator(v->l->db, v->ro);
	return 0;
nomem:
	vit_close(it);
	return ENG_E_NOMEM;
}

void vit_seek(struct vit *it, const char *k, size_t klen)
{
	size_t lo = 0, hi = it->nents;

	if (codec_cmp(k, klen, it->lo.p, it->lo.len) < 0) {
		k = it->lo.p;
		klen = it->lo.len;
	}
	leveldb_iter_seek(it->it, k, klen);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct ov_ent *e = it->ents[mid];

		if (codec_cmp(e->k, e->klen, k, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	it->pos = lo;
	vit_settle(it);
}

void vit_next(struct vit *it)
{
	if (!it->valid)
		return;
	if (it->from_ov) {
		it->pos++;
		if (it->ov_same)
			leveldb_iter_next(it->it);
	} else {
		leveldb_iter_next(it->it);
	}
	vit_settle(it);
}

int vit_error(struct vit *it, struct local *l)
{
	char *err = NULL;

	if (!it->it)
		return 0;
	leveldb_iter_get_error(it->it, &err);
	return err ? local_ldb_err(l, err, "iterate") : 0;
}

void vit_close(struct vit *it)
{
	if (it->it)
		leveldb_iter_destroy(it->it);
	free(it->ents);
	cbuf_free(&it->lo);
	cbuf_free(&it->hi);
	memset(it, 0, sizeof(*it));
}
