/*
 * result.c — normalized answers (struct cres, struct cev): deep copies of
 * a side's results, their comparison and their printing.
 *
 * Comparison is strict: every field etcd's API returns is compared,
 * values byte for byte, leases by logical number.  A kv without a value
 * (keys_only) only matches another without one.
 */
#include "conf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "conformance: out of memory\n");
		abort();
	}
	return p;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *d = xmalloc(n + 1);

	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void ckv_from(int side, const struct eng_kv *in, struct ckv *out)
{
	memset(out, 0, sizeof(*out));
	out->key = dup_bytes(in->key, in->key_len);
	out->klen = in->key_len;
	if (in->value) {
		out->val = dup_bytes(in->value, in->value_len);
		out->vlen = in->value_len;
	}
	out->create = in->create_rev;
	out->mod = in->mod_rev;
	out->version = in->version;
	out->lease_raw = in->lease;
	out->lease = conf_lease_logical(side, in->lease);
}

static struct ckv *ckvs_from(int side, const struct eng_kv *in, size_t n)
{
	struct ckv *v = xmalloc(n * sizeof(*v));
	size_t i;

	for (i = 0; i < n; i++)
		ckv_from(side, &in[i], &v[i]);
	return v;
}

static void ckvs_free(struct ckv *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].val);
	}
	free(v);
}

void cres_free(struct cres *r)
{
	size_t i;

	for (i = 0; i < r->nsubs; i++) {
		ckvs_free(r->subs[i].kvs, r->subs[i].n);
		ckvs_free(r->subs[i].prev, r->subs[i].nprev);
	}
	free(r->subs);
	memset(r, 0, sizeof(*r));
}

static void csub_from_range(int side, const struct eng_range_res *in,
                            struct csub *s)
{
	s->type = ENG_OP_RANGE;
	s->kvs = ckvs_from(side, in->kvs, in->n);
	s->n = in->n;
	s->count = in->count;
	s->more = in->more;
}

int cres_from_range(int side, const struct eng_range_res *in, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->rev = in->header_rev;
	r->succeeded = true;
	r->subs = xmalloc(sizeof(*r->subs));
	memset(r->subs, 0, sizeof(*r->subs));
	r->nsubs = 1;
	csub_from_range(side, in, &r->subs[0]);
	return 0;
}

int cres_from_txn(int side, const struct eng_txn_res *in, struct cres *r)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	r->rev = in->header_rev;
	r->succeeded = in->succeeded;
	r->subs = xmalloc(in->nres * sizeof(*r->subs));
	memset(r->subs, 0, in->nres * sizeof(*r->subs));
	r->nsubs = in->nres;
	for (i = 0; i < in->nres; i++) {
		const struct eng_op_res *o = &in->res[i];
		struct csub *s = &r->subs[i];

		if (o->type == ENG_OP_RANGE)
			csub_from_range(side, &o->range, s);
		s->type = o->type;
		s->deleted = o->deleted;
		s->prev = ckvs_from(side, o->prev_kvs, o->nprev);
		s->nprev = o->nprev;
	}
	return 0;
}

static int ckv_key_cmp(const void *x, const void *y)
{
	const struct ckv *a = x, *b = y;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->key, b->key, n);

	if (c)
		return c;
	return a->klen < b->klen ? -1 : a->klen > b->klen;
}

int cres_from_lease(const struct eng_lease_info *in, struct cres *r)
{
	struct csub *s;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->succeeded = true;
	r->ttl = in->granted_ttl;
	r->subs = xmalloc(sizeof(*r->subs));
	memset(r->subs, 0, sizeof(*r->subs));
	r->nsubs = 1;
	s = &r->subs[0];
	s->type = ENG_OP_RANGE;
	s->kvs = xmalloc(in->nkeys * sizeof(*s->kvs));
	memset(s->kvs, 0, in->nkeys * sizeof(*s->kvs));
	for (i = 0; i < in->nkeys; i++) {
		s->kvs[i].key = dup_bytes(in->keys[i].key, in->keys[i].key_len);
		s->kvs[i].klen = in->keys[i].key_len;
	}
	s->n = in->nkeys;
	s->count = (int64_t)in->nkeys;
	qsort(s->kvs, s->n, sizeof(*s->kvs), ckv_key_cmp);
	return 0;
}

int cres_from_lease_ids(int side, const eng_lease_t *ids, size_t n,
                        struct cres *r)
{
	struct eng_lease_info info;
	struct eng_kv *keys = xmalloc(n * sizeof(*keys));
	char(*txt)[24] = xmalloc(n * sizeof(*txt));
	size_t i;

	memset(&info, 0, sizeof(info));
	for (i = 0; i < n; i++) {
		int l = snprintf(txt[i], sizeof(txt[i]), "L%06lld",
		                 (long long)conf_lease_logical(side, ids[i]));

		memset(&keys[i], 0, sizeof(keys[i]));
		keys[i].key = txt[i];
		keys[i].key_len = (size_t)l;
	}
	info.keys = keys;
	info.nkeys = n;
	cres_from_lease(&info, r); /* copies and sorts */
	free(keys);
	free(txt);
	return 0;
}

static bool ckv_equal(const struct ckv *a, const struct ckv *b, char *why,
                      size_t wl, const char *what, size_t i)
{
	const char *f = NULL;

	if (a->klen != b->klen || memcmp(a->key, b->key, a->klen))
		f = "key";
	else if (!a->val != !b->val)
		f = "value presence";
	else if (a->val &&
	         (a->vlen != b->vlen || memcmp(a->val, b->val, a->vlen)))
		f = "value";
	else if (a->create != b->create)
		f = "create_revision";
	else if (a->mod != b->mod)
		f = "mod_revision";
	else if (a->version != b->version)
		f = "version";
	else if (a->lease != b->lease)
		f = "lease";
	if (f)
		snprintf(why, wl, "%s[%zu]: %s differs", what, i, f);
	return f == NULL;
}

bool cres_equal(const struct cres *a, const struct cres *b, char *why,
                size_t wl)
{
	size_t i, j;

	if (a->err != b->err) {
		snprintf(why, wl, "error differs");
		return false;
	}
	if (a->err)
		return true;
	if (a->rev != b->rev) {
		snprintf(why, wl, "header revision differs");
		return false;
	}
	if (a->ttl != b->ttl) {
		snprintf(why, wl, "lease TTL differs");
		return false;
	}
	if (a->succeeded != b->succeeded) {
		snprintf(why, wl, "succeeded differs");
		return false;
	}
	if (a->nsubs != b->nsubs) {
		snprintf(why, wl, "number of op results differs");
		return false;
	}
	for (i = 0; i < a->nsubs; i++) {
		const struct csub *x = &a->subs[i], *y = &b->subs[i];
		char what[48];

		if (x->type != y->type) {
			snprintf(why, wl, "op %zu: type differs", i);
			return false;
		}
		if (x->n != y->n) {
			snprintf(why, wl, "op %zu: number of kvs differs", i);
			return false;
		}
		if (x->count != y->count && !x->count_unknown &&
		    !y->count_unknown) {
			snprintf(why, wl, "op %zu: count differs", i);
			return false;
		}
		if (x->more != y->more) {
			snprintf(why, wl, "op %zu: more differs", i);
			return false;
		}
		if (x->deleted != y->deleted) {
			snprintf(why, wl, "op %zu: deleted differs", i);
			return false;
		}
		if (x->nprev != y->nprev) {
			snprintf(why, wl, "op %zu: number of prev_kvs differs",
			         i);
			return false;
		}
		snprintf(what, sizeof(what), "op %zu kvs", i);
		for (j = 0; j < x->n; j++)
			if (!ckv_equal(&x->kvs[j], &y->kvs[j], why, wl, what,
			               j))
				return false;
		snprintf(what, sizeof(what), "op %zu prev_kvs", i);
		for (j = 0; j < x->nprev; j++)
			if (!ckv_equal(&x->prev[j], &y->prev[j], why, wl, what,
			               j))
				return false;
	}
	return true;
}

void bytes_print(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i, lim = n > 48 ? 48 : n;

	fputc('"', f);
	for (i = 0; i < lim; i++) {
		if (isprint(s[i]) && s[i] != '"' && s[i] != '\\')
			fputc(s[i], f);
		else
			fprintf(f, "\\x%02x", s[i]);
	}
	fputc('"', f);
	if (n > lim)
		fprintf(f, "...(%zu bytes)", n);
}

void ckv_print(FILE *f, const struct ckv *kv)
{
	fprintf(f, "{key=");
	bytes_print(f, kv->key, kv->klen);
	if (kv->val) {
		fprintf(f, " value=");
		bytes_print(f, kv->val, kv->vlen);
	} else {
		fprintf(f, " value=(none)");
	}
	fprintf(f, " create=%lld mod=%lld version=%lld", (long long)kv->create,
	        (long long)kv->mod, (long long)kv->version);
	if (kv->lease_raw)
		fprintf(f, " lease=L%lld(id %lld)", (long long)kv->lease,
		        (long long)kv->lease_raw);
	fputc('}', f);
}

void cres_print(FILE *f, const char *label, const struct cres *r)
{
	size_t i, j;

	if (r->err) {
		fprintf(f, "  %s: error %d (%s)\n", label, r->err,
		        eng_strerror(r->err));
		return;
	}
	fprintf(f, "  %s: rev=%lld succeeded=%d", label, (long long)r->rev,
	        r->succeeded);
	if (r->ttl)
		fprintf(f, " ttl=%lld", (long long)r->ttl);
	fputc('\n', f);
	for (i = 0; i < r->nsubs; i++) {
		const struct csub *s = &r->subs[i];
		static const char *const tn[] = {"range", "put", "delete"};

		fprintf(f, "    [%zu] %s", i, tn[s->type]);
		if (s->type == ENG_OP_RANGE)
			fprintf(f, " count=%lld%s more=%d n=%zu",
			        (long long)s->count,
			        s->count_unknown ? " (not asked)" : "", s->more,
			        s->n);
		if (s->type == ENG_OP_DELETE)
			fprintf(f, " deleted=%lld", (long long)s->deleted);
		fputc('\n', f);
		for (j = 0; j < s->n; j++) {
			fprintf(f, "      kv ");
			ckv_print(f, &s->kvs[j]);
			fputc('\n', f);
		}
		for (j = 0; j < s->nprev; j++) {
			fprintf(f, "      prev ");
			ckv_print(f, &s->prev[j]);
			fputc('\n', f);
		}
	}
}

int cevlist_push(int side, struct cevlist *l, const struct eng_event *ev)
{
	struct cev *e;

	if (ev->type == ENG_EV_PROGRESS) {
		if (ev->kv.mod_rev < l->marker && !l->problem[0])
			snprintf(l->problem, sizeof(l->problem),
			         "progress marker %lld after marker %lld",
			         (long long)ev->kv.mod_rev,
			         (long long)l->marker);
		if (ev->kv.mod_rev > l->marker)
			l->marker = ev->kv.mod_rev;
		if (ev->kv.mod_rev > l->progress)
			l->progress = ev->kv.mod_rev;
		return 0;
	}
	if (ev->type != ENG_EV_COMPACTED && !l->problem[0]) {
		if (ev->kv.mod_rev < l->last_ev)
			snprintf(l->problem, sizeof(l->problem),
			         "event at rev %lld after one at rev %lld",
			         (long long)ev->kv.mod_rev,
			         (long long)l->last_ev);
		else if (ev->kv.mod_rev <= l->marker)
			snprintf(l->problem, sizeof(l->problem),
			         "event at rev %lld after progress marker %lld",
			         (long long)ev->kv.mod_rev,
			         (long long)l->marker);
	}
	if (ev->type != ENG_EV_COMPACTED)
		l->last_ev = ev->kv.mod_rev;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			fprintf(stderr, "conformance: out of memory\n");
			abort();
		}
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->type = ev->type;
	e->key = dup_bytes(ev->kv.key, ev->kv.key_len);
	e->klen = ev->kv.key_len;
	e->mod = ev->kv.mod_rev;
	if (ev->type == ENG_EV_COMPACTED) {
		l->end_err = 1;
	} else {
		e->create = ev->kv.create_rev;
		e->version = ev->kv.version;
		if (ev->type == ENG_EV_PUT) {
			e->val = dup_bytes(ev->kv.value, ev->kv.value_len);
			e->vlen = ev->kv.value_len;
			e->lease = conf_lease_logical(side, ev->kv.lease);
		}
		if (ev->kv.mod_rev > l->progress)
			l->progress = ev->kv.mod_rev;
	}
	return 0;
}

void cevlist_free(struct cevlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].val);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

bool cev_equal(const struct cev *a, const struct cev *b)
{
	return a->type == b->type && a->klen == b->klen &&
	       !memcmp(a->key, b->key, a->klen) && a->create == b->create &&
	       a->mod == b->mod && a->version == b->version &&
	       a->lease == b->lease && a->vlen == b->vlen &&
	       (!a->vlen || !memcmp(a->val, b->val, a->vlen));
}

void cev_print(FILE *f, const struct cev *e)
{
	static const char *const tn[] = {"PUT", "DELETE", "PROGRESS",
	                                 "COMPACTED"};

	fprintf(f, "%s", tn[e->type]);
	if (e->type == ENG_EV_COMPACTED) {
		fprintf(f, " compact_revision=%lld", (long long)e->mod);
		return;
	}
	fputc(' ', f);
	bytes_print(f, e->key, e->klen);
	fprintf(f, " create=%lld mod=%lld version=%lld", (long long)e->create,
	        (long long)e->mod, (long long)e->version);
	if (e->type == ENG_EV_PUT) {
		fprintf(f, " value=");
		bytes_print(f, e->val, e->vlen);
		if (e->lease)
			fprintf(f, " lease=L%lld", (long long)e->lease);
	}
}
