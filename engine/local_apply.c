/*
 * local_apply.c — what the commit leader does with each request: evaluate a
 * txn (compares, then the chosen branch), a compaction or a lease change,
 * and append its records to the group's writebatch.
 *
 * Every request is first validated against the state it starts from
 * (etcd's order: NOSPACE if either branch puts, before the compares; then,
 * for the branch that runs, every put — missing key for IGNORE_*, missing
 * lease — before every range — future, compacted), so a rejected request
 * writes nothing.  Then it executes; each version goes to `k`, `l` and `r`
 * (and the lease attach index `A`) in the same batch, so the indexes always
 * agree.  A txn that changes something takes exactly one revision
 * (b->rev + 1); one that changes nothing takes none.  Reads inside a txn
 * go through the overlay, so they see the group's and the txn's own
 * earlier writes.
 */
#include "local_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- events */

static int batch_add_ev(struct batch *b, enum eng_event_type type,
                        const char *key, size_t klen, const struct rec *r)
{
	struct eng_event *ev;

	if (b->nevs == b->capevs) {
		size_t cap = b->capevs ? b->capevs * 2 : 16;
		struct eng_event *n = realloc(b->evs, cap * sizeof(*n));

		if (!n)
			return ENG_E_NOMEM;
		b->evs = n;
		b->capevs = cap;
	}
	ev = &b->evs[b->nevs];
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->kv.key = eng_arena_dup(b->arena, key, klen);
	if (!ev->kv.key)
		return ENG_E_NOMEM;
	ev->kv.key_len = klen;
	ev->kv.mod_rev = r->mod_rev;
	if (type == ENG_EV_PUT) {
		ev->kv.value = eng_arena_dup(b->arena, r->val, r->val_len);
		if (!ev->kv.value)
			return ENG_E_NOMEM;
		ev->kv.value_len = r->val_len;
		ev->kv.create_rev = r->create_rev;
		ev->kv.version = r->version;
		ev->kv.lease = r->lease;
		ev->kv.mtime_ns = r->mtime_ns;
	} else {
		ev->kv.deleted = true;
	}
	b->nevs++;
	return 0;
}

void batch_free_events(struct batch *b)
{
	free(b->evs);
	b->evs = NULL;
	b->nevs = b->capevs = 0;
}

void batch_publish(struct local *l, struct batch *b)
{
	size_t i = 0;

	if (!l->hub)
		return;
	while (i < b->nevs) {
		size_t j = i + 1;

		while (j < b->nevs &&
		       b->evs[j].kv.mod_rev == b->evs[i].kv.mod_rev)
			j++;
		watch_hub_publish(l->hub, b->evs[i].kv.mod_rev, &b->evs[i],
		                  j - i);
		i = j;
	}
}

/* ----------------------------------------------------------- batch writes */

static int b_put(struct local *l, struct batch *b, const struct cbuf *k,
                 const struct cbuf *v, bool ov)
{
	leveldb_writebatch_put(l->wb, k->p, k->len, v->p, v->len);
	b->bytes += k->len + v->len;
	b->dirty = true;
	return ov ? overlay_set(l->ov, k->p, k->len, v->p, v->len) : 0;
}

/*
 * The `l` record of the live version r (encoded whole in v): LevelDB gets
 * codec_latest_encode's form, the overlay the whole record, so the
 * leader's own reads never meet a reference to a version still in the
 * batch.
 */
static int b_put_latest(struct local *l, struct batch *b, const struct cbuf *k,
                        const struct cbuf *v, const struct rec *r)
{
	struct cbuf ref = {0};
	int rc;

	if (r->val_len <= REC_INLINE_MAX)
		return b_put(l, b, k, v, true);
	if (codec_latest_encode(&ref, r))
		return ENG_E_NOMEM;
	rc = b_put(l, b, k, &ref, false);
	if (!rc)
		rc = overlay_set(l->ov, k->p, k->len, v->p, v->len);
	cbuf_free(&ref);
	return rc;
}

static int b_del(struct local *l, struct batch *b, const struct cbuf *k,
                 bool ov)
{
	leveldb_writebatch_delete(l->wb, k->p, k->len);
	b->bytes += k->len;
	b->dirty = true;
	return ov ? overlay_set(l->ov, k->p, k->len, NULL, 0) : 0;
}

/* The live latest version of key: 1 (r points into buf), 0, or an error. */
static int get_latest(struct view *v, const void *key, size_t klen,
                      struct cbuf *kbuf, struct cbuf *buf, struct rec *r)
{
	int rc;

	if (codec_latest_key(kbuf, key, klen))
		return ENG_E_NOMEM;
	rc = view_get(v, kbuf->p, kbuf->len, buf);
	if (rc == 1 && codec_latest_decode(buf->p, buf->len, r))
		return ENG_E_CORRUPT;
	return rc;
}

/*
 * Write version r of key (a put or a deletion) to `k`, `l`, `r` and `A`;
 * prev is the live version it replaces (NULL if none).
 */
static int write_version(struct local *l, struct batch *b, const char *key,
                         size_t klen, const struct rec *r,
                         const struct rec *prev, uint32_t *sub)
{
	struct cbuf k = {0}, v = {0};
	int rc = ENG_E_NOMEM;

	if (codec_hist_key(&k, key, klen, r->mod_rev) ||
	    codec_rec_encode(&v, r))
		goto out;
	if ((rc = b_put(l, b, &k, &v, false)))
		goto out;
	rc = ENG_E_NOMEM;
	if (codec_latest_key(&k, key, klen))
		goto out;
	if (r->type == REC_PUT)
		rc = b_put_latest(l, b, &k, &v, r);
	else
		rc = b_del(l, b, &k, true);
	if (rc)
		goto out;
	rc = ENG_E_NOMEM;
	v.len = 0;
	if (codec_log_key(&k, r->mod_rev, (*sub)++) ||
	    cbuf_add_u8(&v, r->type) || cbuf_add(&v, key, klen))
		goto out;
	if ((rc = b_put(l, b, &k, &v, false)))
		goto out;
	v.len = 0;
	if (prev && prev->lease && prev->lease != r->lease) {
		rc = ENG_E_NOMEM;
		if (codec_attach_key(&k, prev->lease, key, klen))
			goto out;
		if ((rc = b_del(l, b, &k, true)))
			goto out;
	}
	if (r->type == REC_PUT && r->lease &&
	    (!prev || prev->lease != r->lease)) {
		rc = ENG_E_NOMEM;
		if (codec_attach_key(&k, r->lease, key, klen))
			goto out;
		if ((rc = b_put(l, b, &k, &v, true)))
			goto out;
	}
	if (r->type == REC_PUT && !prev)
		b->keys++;
	else if (r->type == REC_DEL && prev)
		b->keys--;
	rc = batch_add_ev(b, r->type == REC_PUT ? ENG_EV_PUT : ENG_EV_DELETE,
	                  key, klen, r);
out:
	cbuf_free(&k);
	cbuf_free(&v);
	return rc;
}

/* Copy a live version into a txn result's prev_kvs (bytes in the arena). */
static int add_prev(struct eng_op_res *o, struct eng_arena *a, const char *key,
                    size_t klen, const struct rec *r)
{
	struct eng_kv *kvs, *kv;

	/* In the arena, doubling at powers of two so the copies of a big
	 * delete-range stay linear in total. */
	if ((o->nprev & (o->nprev - 1)) == 0) {
		size_t cap = o->nprev ? o->nprev * 2 : 1;

		kvs = eng_arena_alloc(a, cap * sizeof(*kvs));
		if (!kvs)
			return ENG_E_NOMEM;
		if (o->nprev)
			memcpy(kvs, o->prev_kvs, o->nprev * sizeof(*kvs));
		o->prev_kvs = kvs;
	}
	kvs = o->prev_kvs;
	kv = &kvs[o->nprev];
	memset(kv, 0, sizeof(*kv));
	kv->key = eng_arena_dup(a, key, klen);
	kv->value = eng_arena_dup(a, r->val, r->val_len);
	if (!kv->key || !kv->value)
		return ENG_E_NOMEM;
	kv->key_len = klen;
	kv->value_len = r->val_len;
	kv->create_rev = r->create_rev;
	kv->mod_rev = r->mod_rev;
	kv->version = r->version;
	kv->lease = r->lease;
	kv->mtime_ns = r->mtime_ns;
	o->nprev++;
	return 0;
}

/* --------------------------------------------------------------- compares */

static bool cmp_one(const struct eng_cmp *c, const struct rec *r)
{
	int res;

	if (c->target == ENG_CMP_VALUE) {
		res = codec_cmp(r->val, r->val_len, c->value, c->value_len);
	} else {
		int64_t v = 0;

		switch (c->target) {
		case ENG_CMP_VERSION:
			v = r->version;
			break;
		case ENG_CMP_CREATE:
			v = r->create_rev;
			break;
		case ENG_CMP_MOD:
			v = r->mod_rev;
			break;
		default:
			v = r->lease;
			break;
		}
		res = v < c->number ? -1 : v > c->number;
	}
	switch (c->result) {
	case ENG_CMP_EQ:
		return res == 0;
	case ENG_CMP_NE:
		return res != 0;
	case ENG_CMP_LT:
		return res < 0;
	default:
		return res > 0;
	}
}

/* etcd's applyCompare: no key: VALUE is false, the rest compare with 0. */
static int eval_cmp(struct view *v, const struct eng_cmp *c, bool *ok)
{
	static const struct rec zero = {.type = REC_PUT, .val = ""};
	struct cbuf k = {0}, buf = {0}, hi = {0}, vbuf = {0};
	bool value = c->target == ENG_CMP_VALUE;
	struct vit it = {0};
	bool any = false;
	struct rec r;
	int rc;

	*ok = true;
	if (c->end_len == 0) {
		rc = get_latest(v, c->key, c->key_len, &k, &buf, &r);
		if (rc < 0)
			goto out;
		any = rc == 1;
		rc = 0;
		if (any && value)
			rc = view_rec_value(v, c->key, c->key_len, &r, &vbuf);
		if (any && !rc)
			*ok = cmp_one(c, &r);
		goto out;
	}
	rc = ENG_E_NOMEM;
	if (codec_latest_key(&k, c->key, c->key_len))
		goto out;
	if (c->end_len == 1 && ((const char *)c->end)[0] == 0) {
		if (cbuf_add_u8(&hi, SP_LATEST + 1))
			goto out;
	} else if (codec_latest_key(&hi, c->end, c->end_len)) {
		goto out;
	}
	rc = 0;
	if (codec_cmp(k.p, k.len, hi.p, hi.len) >= 0)
		goto out;
	rc = vit_open(&it, v, k.p, k.len, hi.p, hi.len);
	if (rc)
		goto out;
	for (vit_seek(&it, k.p, k.len); it.valid && *ok; vit_next(&it)) {
		rc = codec_latest_decode(it.v, it.vlen, &r);
		if (!rc && value)
			rc =
			    view_rec_value(v, it.k + 1, it.klen - 1, &r, &vbuf);
		if (rc)
			goto out;
		any = true;
		*ok = cmp_one(c, &r);
	}
	rc = vit_error(&it, v->l);
out:
	if (rc == 0 && !any)
		*ok = c->target != ENG_CMP_VALUE && cmp_one(c, &zero);
	vit_close(&it);
	cbuf_free(&k);
	cbuf_free(&buf);
	cbuf_free(&hi);
	cbuf_free(&vbuf);
	return rc;
}

/* ------------------------------------------------------------------- txn */

static int lease_exists(struct view *v, eng_lease_t id)
{
	struct cbuf k = {0}, val = {0};
	int rc = ENG_E_NOMEM;

	if (!codec_lease_key(&k, id))
		rc = view_get(v, k.p, k.len, &val);
	cbuf_free(&k);
	cbuf_free(&val);
	return rc;
}

/* What a branch's puts add to the store (two records and a log entry
 * each); 0 if it puts nothing. */
static size_t put_bytes(const struct eng_op *ops, size_t n)
{
	size_t s = 0;

	for (size_t i = 0; i < n; i++)
		if (ops[i].type == ENG_OP_PUT)
			s += ops[i].key_len + ops[i].value_len +
			     2 * REC_HDR_LEN + 32;
	return s;
}

/* etcd's costTxn: the larger branch's puts, whichever branch will run. */
static size_t txn_put_bytes(const struct eng_txn *t)
{
	size_t s = put_bytes(t->success, t->nsuccess);
	size_t f = put_bytes(t->failure, t->nfailure);

	return s > f ? s : f;
}

static int quota_check(struct local *l, struct batch *b, size_t bytes)
{
	uint64_t est;

	if (atomic_load(&l->alarm))
		return ENG_E_NOSPACE;
	est = atomic_load(&l->db_bytes) + atomic_load(&l->pending_bytes) +
	      b->bytes + bytes;
	if (est < l->base.opt.quota_bytes) /* etcd: size + cost < quota */
		return 0;
	atomic_store(&l->alarm, true);
	eng_logf(&l->base.opt, ENG_LOG_WARN,
	         "NOSPACE alarm raised: database size %llu would pass the "
	         "quota of %llu bytes; puts are rejected until compaction "
	         "brings it back under",
	         (unsigned long long)est,
	         (unsigned long long)l->base.opt.quota_bytes);
	return ENG_E_NOSPACE;
}

/* etcd's checkRequests for the branch that runs, against the state
 * before the txn: the puts first, then the ranges (NOSPACE came before
 * the compares, in apply_txn). */
static int validate_ops(struct local *l, struct batch *b, struct view *v,
                        const struct eng_op *ops, size_t n)
{
	struct cbuf k = {0}, buf = {0};
	bool writes = false;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		writes |= ops[i].type != ENG_OP_RANGE;
	if (writes && l->base.opt.read_only)
		return ENG_E_READ_ONLY;
	/* etcd checks every put first, then every range. */
	for (size_t i = 0; i < n && !rc; i++) {
		const struct eng_op *o = &ops[i];
		struct rec r;

		if (o->type != ENG_OP_PUT)
			continue;
		if (o->flags & (ENG_PUT_IGNORE_VALUE | ENG_PUT_IGNORE_LEASE)) {
			rc = get_latest(v, o->key, o->key_len, &k, &buf, &r);
			if (rc < 0)
				break;
			rc = rc == 1 ? 0 : ENG_E_KEY_NOT_FOUND;
			if (rc)
				break;
		}
		if (o->lease) {
			rc = lease_exists(v, o->lease);
			if (rc < 0)
				break;
			rc = rc == 1 ? 0 : ENG_E_LEASE_NOT_FOUND;
		}
	}
	for (size_t i = 0; i < n && !rc; i++) {
		const struct eng_op *o = &ops[i];

		if (o->type != ENG_OP_RANGE || o->rev == 0)
			continue;
		if (o->rev > b->rev)
			rc = ENG_E_FUTURE_REV;
		else if (o->rev < b->compact_rev)
			rc = ENG_E_COMPACTED;
	}
	cbuf_free(&k);
	cbuf_free(&buf);
	return rc;
}

static int exec_range(struct local *l, struct batch *b, struct view *v,
                      const struct eng_op *o, eng_rev_t cur,
                      struct eng_range_res *res)
{
	struct rparams p = {
	    .key = o->key,
	    .key_len = o->key_len,
	    .end = o->end,
	    .end_len = o->end_len,
	    .limit = o->limit,
	    .flags = o->flags,
	    .keys_total = -1,
	};
	eng_rev_t rev = o->rev ? o->rev : cur;
	int rc;

	if (p.flags & ENG_RANGE_COUNT_ONLY)
		p.flags |= ENG_RANGE_COUNT;
	res->count = -1;
	res->header_rev = cur;
	if (rev == cur) {
		if (p.key_len == 1 && p.key[0] == 0 && p.end_len == 1 &&
		    p.end[0] == 0)
			p.keys_total = b->keys;
		rc = local_range_latest(v, &p, res);
	} else {
		/* A barrier request: every revision < cur is in LevelDB. */
		rc = local_range_hist(l, l->ro_plain, &p, rev, res);
	}
	return rc;
}

struct dvictim {
	char *key;
	size_t klen;
	struct rec r;
	char *buf;
};

static void victims_free(struct dvictim *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].key);
		free(d[i].buf);
	}
	free(d);
}

static int victim_add(struct dvictim **d, size_t *n, const char *key,
                      size_t klen, const char *val, size_t vlen)
{
	struct dvictim *nd = realloc(*d, (*n + 1) * sizeof(*nd));
	struct dvictim *x;

	if (!nd)
		return ENG_E_NOMEM;
	*d = nd;
	x = &nd[*n];
	x->key = malloc(klen ? klen : 1);
	x->buf = malloc(vlen ? vlen : 1);
	if (!x->key || !x->buf) {
		free(x->key);
		free(x->buf);
		return ENG_E_NOMEM;
	}
	memcpy(x->key, key, klen);
	x->klen = klen;
	(*n)++;
	if (!val)
		return 0; /* only the key is wanted */
	memcpy(x->buf, val, vlen);
	return codec_latest_decode(x->buf, vlen, &x->r);
}

/* The live keys of a delete-range, collected before any is deleted (the
 * overlay must not change under an open iterator). */
static int collect_live(struct view *v, const struct eng_op *o,
                        struct dvictim **d, size_t *n)
{
	struct cbuf lo = {0}, hi = {0}, buf = {0};
	struct vit it = {0};
	int rc = ENG_E_NOMEM;

	if (codec_latest_key(&lo, o->key, o->key_len))
		goto out;
	if (o->end_len == 0) {
		rc = view_get(v, lo.p, lo.len, &buf);
		if (rc == 1)
			rc = victim_add(d, n, o->key, o->key_len, buf.p,
			                buf.len);
		goto out;
	}
	if (o->end_len == 1 && ((const char *)o->end)[0] == 0) {
		if (cbuf_add_u8(&hi, SP_LATEST + 1))
			goto out;
	} else if (codec_latest_key(&hi, o->end, o->end_len)) {
		goto out;
	}
	rc = 0;
	if (codec_cmp(lo.p, lo.len, hi.p, hi.len) >= 0)
		goto out;
	rc = vit_open(&it, v, lo.p, lo.len, hi.p, hi.len);
	if (rc)
		goto out;
	for (vit_seek(&it, lo.p, lo.len); it.valid; vit_next(&it)) {
		rc = victim_add(d, n, it.k + 1, it.klen - 1, it.v, it.vlen);
		if (rc)
			goto out;
	}
	rc = vit_error(&it, v->l);
out:
	vit_close(&it);
	cbuf_free(&lo);
	cbuf_free(&hi);
	cbuf_free(&buf);
	return rc;
}

static int delete_one(struct local *l, struct batch *b, const char *key,
                      size_t klen, const struct rec *prev, int64_t rev,
                      uint32_t *sub)
{
	struct rec t = {
	    .type = REC_DEL,
	    .mod_rev = rev,
	    .mtime_ns = b->mtime_ns,
	    .val = "",
	};

	return write_version(l, b, key, klen, &t, prev, sub);
}

static int exec_put(struct local *l, struct batch *b, struct view *v,
                    const struct eng_op *o, int64_t rev, uint32_t *sub,
                    struct eng_op_res *res, struct eng_arena *a)
{
	struct cbuf k = {0}, buf = {0}, vbuf = {0};
	struct rec prev, r = {
	                     .type = REC_PUT,
	                     .mod_rev = rev,
	                     .create_rev = rev,
	                     .version = 1,
	                     .lease = o->lease,
	                     .mtime_ns = b->mtime_ns,
	                     .val = o->value ? o->value : "",
	                     .val_len = o->value_len,
	                 };
	int rc, have;

	have = get_latest(v, o->key, o->key_len, &k, &buf, &prev);
	if (have < 0) {
		rc = have;
		goto out;
	}
	if (have && (o->flags & (ENG_PUT_IGNORE_VALUE | ENG_PUT_PREV_KV))) {
		rc = view_rec_value(v, o->key, o->key_len, &prev, &vbuf);
		if (rc)
			goto out;
	}
	if (have) {
		r.create_rev = prev.create_rev;
		r.version = prev.version + 1;
		if (o->flags & ENG_PUT_IGNORE_VALUE) {
			r.val = prev.val;
			r.val_len = prev.val_len;
		}
		if (o->flags & ENG_PUT_IGNORE_LEASE)
			r.lease = prev.lease;
		if (o->flags & ENG_PUT_PREV_KV) {
			rc = add_prev(res, a, o->key, o->key_len, &prev);
			if (rc)
				goto out;
		}
	}
	rc = write_version(l, b, o->key, o->key_len, &r, have ? &prev : NULL,
	                   sub);
out:
	cbuf_free(&k);
	cbuf_free(&buf);
	cbuf_free(&vbuf);
	return rc;
}

static int exec_delete(struct local *l, struct batch *b, struct view *v,
                       const struct eng_op *o, int64_t rev, uint32_t *sub,
                       struct eng_op_res *res, struct eng_arena *a)
{
	struct dvictim *d = NULL;
	struct cbuf vbuf = {0};
	size_t n = 0;
	int rc;

	rc = collect_live(v, o, &d, &n);
	for (size_t i = 0; i < n && !rc; i++) {
		if (o->flags & ENG_DEL_PREV_KV) {
			rc = view_rec_value(v, d[i].key, d[i].klen, &d[i].r,
			                    &vbuf);
			if (!rc)
				rc = add_prev(res, a, d[i].key, d[i].klen,
				              &d[i].r);
		}
		if (!rc)
			rc = delete_one(l, b, d[i].key, d[i].klen, &d[i].r, rev,
			                sub);
	}
	res->deleted = (int64_t)n;
	victims_free(d, n);
	cbuf_free(&vbuf);
	return rc;
}

static int apply_txn(struct local *l, struct batch *b, struct commit_req *cr)
{
	const struct eng_txn *t = cr->txn;
	struct eng_txn_res *res = cr->tres;
	struct view v = {.l = l, .ro = l->ro_plain, .ov = l->ov};
	const struct eng_op *ops;
	int64_t newrev = b->rev + 1;
	bool wrote = false;
	uint32_t sub = 0;
	size_t n, cost;
	int rc;

	/*
	 * etcd's capped applier (and its quota check) refuse a txn that puts
	 * in either branch, before its compares run: under the NOSPACE alarm
	 * a txn whose put is in the branch that would not run fails too.  A
	 * read-only store answers ENG_E_READ_ONLY below instead.
	 */
	cost = l->base.opt.read_only ? 0 : txn_put_bytes(t);
	if (cost && (cr->rc = quota_check(l, b, cost)))
		return 0;
	res->succeeded = true;
	for (size_t i = 0; i < t->ncmps && res->succeeded; i++) {
		rc = eval_cmp(&v, &t->cmps[i], &res->succeeded);
		if (rc)
			return rc;
	}
	ops = res->succeeded ? t->success : t->failure;
	n = res->succeeded ? t->nsuccess : t->nfailure;
	cr->rc = validate_ops(l, b, &v, ops, n);
	if (cr->rc < 0 && cr->rc != ENG_E_NOMEM && cr->rc != ENG_E_IO &&
	    cr->rc != ENG_E_CORRUPT) {
		res->succeeded = false;
		return 0;
	}
	if (cr->rc)
		return cr->rc;
	res->priv_ = eng_arena_new();
	if (!res->priv_)
		return ENG_E_NOMEM;
	if (n) {
		res->res = eng_arena_alloc(res->priv_, n * sizeof(*res->res));
		if (!res->res)
			return ENG_E_NOMEM;
		memset(res->res, 0, n * sizeof(*res->res));
	}
	res->nres = n;
	for (size_t i = 0; i < n; i++) {
		const struct eng_op *o = &ops[i];
		struct eng_op_res *r = &res->res[i];
		size_t before = b->nevs;

		r->type = o->type;
		switch (o->type) {
		case ENG_OP_RANGE:
			rc = exec_range(l, b, &v, o, wrote ? newrev : b->rev,
			                &r->range);
			break;
		case ENG_OP_PUT:
			rc = exec_put(l, b, &v, o, newrev, &sub, r, res->priv_);
			break;
		default:
			rc = exec_delete(l, b, &v, o, newrev, &sub, r,
			                 res->priv_);
			break;
		}
		if (rc)
			return rc;
		wrote |= b->nevs > before;
	}
	if (wrote)
		b->rev = newrev;
	res->header_rev = b->rev;
	return 0;
}

/* ---------------------------------------------------------------- leases */

/* The name a grant may take: 0 if free, 1 if taken, or an error. */
static int lease_name_taken(struct view *v, const struct cbuf *nk)
{
	struct cbuf val = {0};
	int rc = view_get(v, nk->p, nk->len, &val);

	cbuf_free(&val);
	return rc;
}

static int apply_lease_put(struct local *l, struct batch *b,
                           struct commit_req *cr)
{
	struct view v = {.l = l, .ro = l->ro_plain, .ov = l->ov};
	const struct lease_rec *lr = cr->lrec;
	struct cbuf k = {0}, old = {0}, nk = {0}, rec = {0}, id = {0};
	const char *name = lr->name;
	size_t name_len = strnlen(lr->name, ENG_LEASE_NAME_MAX);
	int rc;

	if (l->base.opt.read_only) {
		cr->rc = ENG_E_READ_ONLY;
		return 0;
	}
	/* etcd's capped applier rejects grants under NOSPACE too. */
	if (cr->lcreate && atomic_load(&l->alarm)) {
		cr->rc = ENG_E_NOSPACE;
		return 0;
	}
	rc = ENG_E_NOMEM;
	if (codec_lease_key(&k, lr->id) || codec_lname_key(&nk, lr->name))
		goto out;
	rc = view_get(&v, k.p, k.len, &old);
	if (rc < 0)
		goto out;
	if (cr->lcreate) {
		if (rc == 0 && name_len)
			rc = lease_name_taken(&v, &nk);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			cr->rc = ENG_E_LEASE_EXISTS;
			rc = 0;
			goto out;
		}
	} else {
		if (rc == 0) {
			cr->rc = ENG_E_LEASE_NOT_FOUND;
			goto out;
		}
		if (old.len < 8) {
			rc = ENG_E_CORRUPT;
			goto out;
		}
		/* A TTL change keeps the persisted name. */
		name = old.p + 8;
		name_len = old.len - 8;
	}
	rc = ENG_E_NOMEM;
	if (cbuf_add_be64(&rec, (uint64_t)lr->ttl) ||
	    cbuf_add(&rec, name, name_len) ||
	    cbuf_add_be64(&id, (uint64_t)lr->id))
		goto out;
	rc = b_put(l, b, &k, &rec, true);
	if (!rc && cr->lcreate && name_len)
		rc = b_put(l, b, &nk, &id, true);
out:
	cbuf_free(&k);
	cbuf_free(&old);
	cbuf_free(&nk);
	cbuf_free(&rec);
	cbuf_free(&id);
	return rc;
}

static int apply_lease_del(struct local *l, struct batch *b,
                           struct commit_req *cr)
{
	struct view v = {.l = l, .ro = l->ro_plain, .ov = l->ov};
	struct cbuf k = {0}, val = {0}, hi = {0}, lk = {0}, lv = {0};
	struct dvictim *d = NULL;
	struct vit it = {0};
	int64_t newrev = b->rev + 1;
	uint32_t sub = 0;
	size_t n = 0;
	bool wrote = false;
	int rc;

	rc = ENG_E_NOMEM;
	if (codec_lease_key(&k, cr->lid))
		goto out;
	rc = view_get(&v, k.p, k.len, &val);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		cr->rc = ENG_E_LEASE_NOT_FOUND;
		goto out;
	}
	if (val.len < 8) {
		rc = ENG_E_CORRUPT;
		goto out;
	}
	/* The attached keys: A id key. */
	rc = ENG_E_NOMEM;
	if (codec_attach_key(&lk, cr->lid, "", 0) ||
	    codec_attach_key(&hi, cr->lid + 1, "", 0))
		goto out;
	rc = vit_open(&it, &v, lk.p, lk.len, hi.p, hi.len);
	if (rc)
		goto out;
	for (vit_seek(&it, lk.p, lk.len); it.valid; vit_next(&it)) {
		rc = victim_add(&d, &n, it.k + 9, it.klen - 9, NULL, 0);
		if (rc)
			goto out;
	}
	rc = vit_error(&it, l);
	vit_close(&it);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct rec prev;
		struct cbuf ak = {0};

		rc = get_latest(&v, d[i].key, d[i].klen, &lk, &lv, &prev);
		if (rc < 0)
			goto out;
		if (rc == 1 && prev.lease == cr->lid) {
			rc = delete_one(l, b, d[i].key, d[i].klen, &prev,
			                newrev, &sub);
			wrote = true;
		} else {
			/* A stale attachment: just drop it. */
			rc = ENG_E_NOMEM;
			if (!codec_attach_key(&ak, cr->lid, d[i].key,
			                      d[i].klen))
				rc = b_del(l, b, &ak, true);
			cbuf_free(&ak);
		}
		if (rc)
			goto out;
	}
	if ((rc = b_del(l, b, &k, true)))
		goto out;
	if (val.len > 8) {
		struct cbuf nk = {0};

		rc = ENG_E_NOMEM;
		if (!cbuf_add_u8(&nk, SP_LNAME) &&
		    !cbuf_add(&nk, val.p + 8, val.len - 8))
			rc = b_del(l, b, &nk, true);
		cbuf_free(&nk);
		if (rc)
			goto out;
	}
	if (wrote)
		b->rev = newrev;
	cr->out_rev = b->rev;
out:
	vit_close(&it);
	victims_free(d, n);
	cbuf_free(&k);
	cbuf_free(&val);
	cbuf_free(&hi);
	cbuf_free(&lk);
	cbuf_free(&lv);
	return rc;
}

/* ------------------------------------------------------------ compaction */

static int apply_compact(struct local *l, struct batch *b,
                         struct commit_req *cr)
{
	struct cbuf k = {0}, v = {0};
	int rc = ENG_E_NOMEM;

	if (cr->crev <= b->compact_rev) {
		cr->rc = ENG_E_COMPACTED;
		return 0;
	}
	if (cr->crev > b->rev) {
		cr->rc = ENG_E_FUTURE_REV;
		return 0;
	}
	if (cbuf_add(&k, META_COMPACT, strlen(META_COMPACT)) ||
	    cbuf_add_be64(&v, (uint64_t)cr->crev))
		goto out;
	rc = b_put(l, b, &k, &v, false);
	if (rc == 0)
		b->compact_rev = cr->crev;
out:
	cbuf_free(&k);
	cbuf_free(&v);
	return rc;
}

int apply_req(struct local *l, struct batch *b, struct commit_req *r)
{
	r->rc = 0;
	switch (r->type) {
	case CREQ_TXN:
		return apply_txn(l, b, r);
	case CREQ_COMPACT:
		return apply_compact(l, b, r);
	case CREQ_LEASE_PUT:
		return apply_lease_put(l, b, r);
	case CREQ_LEASE_DEL:
		return apply_lease_del(l, b, r);
	}
	ENG_BUG(&l->base.opt, "unknown commit request %d", (int)r->type);
}
