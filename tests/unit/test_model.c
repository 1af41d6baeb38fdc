/*
 * test_model.c — a seeded random sequence of puts, deletes, delete-ranges,
 * txns and compactions on the engine and on a trivial in-memory model
 * (every version of every key in an array), with ranges at random
 * revisions, limits, keys-only, counts and delimiters compared after every
 * step.  Keys come from a tiny alphabet with NUL, '/' and 0xff so prefixes,
 * escapes and rolled-up prefixes are common.  The delimiter listing has no
 * etcd equivalent, so this is where it is checked against a model.
 * TEST_MODEL_SEED=N replays another sequence (the seed is printed).
 */
#include "engine_helpers.h"

#define MAXV  4000
#define STEPS 1500
/* Values over the engine's inline limit (256 bytes) are stored once and
 * read through a reference: a third of the puts write one. */
#define MAXVAL 600

struct mver {
	char key[8];
	size_t klen;
	int64_t rev;
	bool del;
	char val[MAXVAL];
	size_t vlen;
	int64_t create, version;
};

static struct mver vers[MAXV];
static int nvers;
static int64_t mrev = 1, mcompact;

static void rand_key(unsigned *seed, char *k, size_t *n)
{
	static const char alpha[] = {'a', 'b', '/', 0, (char)0xff};

	*n = (size_t)(rand_r(seed) % 4) + 1;
	for (size_t i = 0; i < *n; i++)
		k[i] = alpha[rand_r(seed) % 5];
}

/* The version of key live at rev, or NULL. */
static struct mver *m_at(const char *k, size_t n, int64_t rev)
{
	struct mver *best = NULL;

	for (int i = 0; i < nvers; i++)
		if (vers[i].klen == n && !memcmp(vers[i].key, k, n) &&
		    vers[i].rev <= rev && (!best || vers[i].rev > best->rev))
			best = &vers[i];
	return best && !best->del ? best : NULL;
}

static void m_write(const char *k, size_t n, const char *v, size_t vn, bool del,
                    int64_t rev)
{
	struct mver *prev = m_at(k, n, rev - 1), *x = &vers[nvers++];

	assert_true(nvers < MAXV);
	memset(x, 0, sizeof(*x));
	memcpy(x->key, k, n);
	x->klen = n;
	x->rev = rev;
	x->del = del;
	if (!del) {
		memcpy(x->val, v, vn);
		x->vlen = vn;
		x->create = prev ? prev->create : rev;
		x->version = prev ? prev->version + 1 : 1;
	}
}

static int key_cmp(const void *a, const void *b)
{
	const struct mver *x = *(struct mver *const *)a;
	const struct mver *y = *(struct mver *const *)b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;

	return c ? c : (an > bn) - (an < bn);
}

static bool in_range(const struct mver *v, const char *k, size_t kn,
                     const char *e, size_t en)
{
	if (bytes_cmp(v->key, v->klen, k, kn) < 0)
		return false;
	if (en == 0)
		return bytes_cmp(v->key, v->klen, k, kn) == 0;
	if (en == 1 && e[0] == 0)
		return true;
	return bytes_cmp(v->key, v->klen, e, en) < 0;
}

/* Live keys at rev in range, sorted. */
static int m_live(struct mver **out, const char *k, size_t kn, const char *e,
                  size_t en, int64_t rev)
{
	int n = 0;

	for (int i = 0; i < nvers; i++) {
		struct mver *v = &vers[i], *live;
		bool dup = false;

		if (!in_range(v, k, kn, e, en))
			continue;
		live = m_at(v->key, v->klen, rev);
		if (!live)
			continue;
		for (int j = 0; j < n; j++)
			dup |= out[j] == live;
		if (!dup)
			out[n++] = live;
	}
	qsort(out, (size_t)n, sizeof(*out), key_cmp);
	return n;
}

/* A snapshot kept open across some steps (compactions included). */
static eng_snap *snap;
static int snap_below_compact; /* snapshot reads below mcompact */

static void check_range(eng *e, unsigned *seed)
{
	static struct mver *live[MAXV];
	char k[8], en[8];
	size_t kn, enn;
	struct eng_range_req req = {0};
	struct eng_range_res res;
	int64_t rev = mrev - rand_r(seed) % 20, limit = rand_r(seed) % 5;
	int64_t floor = mcompact;
	bool use_snap = false;
	int n, rc, ents = 0;
	char delim = rand_r(seed) % 3 == 0 ? '/' : 0;
	size_t plen = delim ? (size_t)(rand_r(seed) % 2) : 0;
	struct {
		const char *k;
		size_t n;
		bool prefix;
		struct mver *v;
	} want[MAXV];

	rand_key(seed, k, &kn);
	switch (rand_r(seed) % 3) {
	case 0:
		enn = 0;
		break;
	case 1:
		en[0] = 0;
		enn = 1;
		break;
	default:
		rand_key(seed, en, &enn);
	}
	/* Half the reads go through the open snapshot, if any: at or below
	 * its revision, compacted only below its compaction revision. */
	if (snap && rand_r(seed) % 2) {
		rev = eng_snap_rev(snap) - rand_r(seed) % 20;
		if (rev < eng_snap_compact_rev(snap))
			rev = eng_snap_compact_rev(snap);
		floor = eng_snap_compact_rev(snap);
		use_snap = true;
	}
	if (rev < 1)
		rev = 1;
	req = (struct eng_range_req){.key = k,
	                             .key_len = kn,
	                             .end = en,
	                             .end_len = enn,
	                             .rev = rev,
	                             .limit = limit,
	                             .delim = delim,
	                             .prefix_len = plen};
	req.flags = rand_r(seed) % 2 ? ENG_RANGE_COUNT : 0;
	if (rand_r(seed) % 4 == 0)
		req.flags |= ENG_RANGE_KEYS_ONLY;
	if (use_snap) {
		req.snap = snap;
		snap_below_compact += rev < mcompact;
	}
	rc = eng_range(e, &req, &res);
	if (rev < floor) {
		assert_int_equal(rc, ENG_E_COMPACTED);
		eng_range_res_release(&res);
		return;
	}
	assert_int_equal(rc, 0);
	n = m_live(live, k, kn, en, enn, rev);
	for (int i = 0; i < n; i++) {
		const char *d = NULL;

		if (delim && live[i]->klen > plen)
			d = memchr(live[i]->key + plen, delim,
			           live[i]->klen - plen);
		if (d) {
			size_t pn = (size_t)(d - live[i]->key) + 1;

			if (ents && want[ents - 1].prefix &&
			    want[ents - 1].n == pn &&
			    !memcmp(want[ents - 1].k, live[i]->key, pn))
				continue;
			want[ents].k = live[i]->key;
			want[ents].n = pn;
			want[ents].prefix = true;
			want[ents].v = NULL;
		} else {
			want[ents].k = live[i]->key;
			want[ents].n = live[i]->klen;
			want[ents].prefix = false;
			want[ents].v = live[i];
		}
		ents++;
	}
	{
		int64_t wn = limit && ents > limit ? limit : ents;
		bool more = limit && ents > limit;

		assert_int_equal(res.n, wn);
		assert_int_equal(res.more, more);
		if (!more)
			assert_int_equal(res.count, ents);
		else if (!delim && (req.flags & ENG_RANGE_COUNT))
			assert_int_equal(res.count, ents);
		else if (delim)
			assert_int_equal(res.count, -1);
		for (int64_t i = 0; i < wn; i++) {
			struct eng_kv *kv = &res.kvs[i];

			assert_int_equal(kv->key_len, want[i].n);
			assert_memory_equal(kv->key, want[i].k, want[i].n);
			assert_int_equal(kv->is_prefix, want[i].prefix);
			if (want[i].prefix)
				continue;
			assert_int_equal(kv->mod_rev, want[i].v->rev);
			assert_int_equal(kv->create_rev, want[i].v->create);
			assert_int_equal(kv->version, want[i].v->version);
			if (req.flags & ENG_RANGE_KEYS_ONLY) {
				assert_null(kv->value);
			} else {
				assert_int_equal(kv->value_len,
				                 want[i].v->vlen);
				assert_memory_equal(kv->value, want[i].v->val,
				                    want[i].v->vlen);
			}
		}
	}
	eng_range_res_release(&res);
}

static int ver_cmp(const void *a, const void *b)
{
	const struct mver *x = *(struct mver *const *)a;
	const struct mver *y = *(struct mver *const *)b;

	return (x->rev > y->rev) - (x->rev < y->rev);
}

/* eng_history: the versions after the compaction revision, plus the newest
 * at or below it unless that is a deletion. */
static void check_history(eng *e, unsigned *seed)
{
	static struct mver *want[MAXV];
	struct mver *base = NULL;
	struct eng_range_res res;
	char k[8];
	size_t kn;
	int n = 0;

	rand_key(seed, k, &kn);
	for (int i = 0; i < nvers; i++) {
		struct mver *v = &vers[i];

		if (v->klen != kn || memcmp(v->key, k, kn))
			continue;
		if (v->rev > mcompact)
			want[n++] = v;
		else if (!base || v->rev > base->rev)
			base = v;
	}
	if (base && !base->del)
		want[n++] = base;
	qsort(want, (size_t)n, sizeof(*want), ver_cmp);
	assert_int_equal(eng_history(e, k, kn, 0, 0, &res), 0);
	assert_int_equal(res.n, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(res.kvs[i].mod_rev, want[i]->rev);
		assert_int_equal(res.kvs[i].deleted, want[i]->del);
		if (!want[i]->del) {
			assert_int_equal(res.kvs[i].version, want[i]->version);
			assert_int_equal(res.kvs[i].value_len, want[i]->vlen);
		}
	}
	eng_range_res_release(&res);
}

static void step(eng *e, unsigned *seed)
{
	static struct mver *live[MAXV];
	char k[8], en[8], v[MAXVAL];
	size_t kn, enn, vn;
	eng_rev_t rev;
	int64_t deleted;
	int n;

	rand_key(seed, k, &kn);
	switch (rand_r(seed) % 10) {
	case 0:
	case 1:
	case 2:
	case 3:
		vn = (size_t)snprintf(v, 8, "%d", rand_r(seed) % 1000);
		if (rand_r(seed) % 3 == 0) {
			size_t big = 250 + (size_t)(rand_r(seed) % 300);

			for (size_t i = vn; i < big; i++)
				v[i] = (char)('a' + (i * 7 + vn) % 26);
			vn = big;
		}
		assert_int_equal(eng_put(e, k, kn, v, vn, 0, &rev, NULL), 0);
		m_write(k, kn, v, vn, false, ++mrev);
		assert_int_equal(rev, mrev);
		break;
	case 4:
	case 5:
		if (rand_r(seed) % 2) {
			enn = 0;
		} else {
			rand_key(seed, en, &enn);
		}
		n = m_live(live, k, kn, en, enn, mrev);
		assert_int_equal(eng_delete(e, k, kn, en, enn, &deleted, &rev),
		                 0);
		assert_int_equal(deleted, n);
		if (n)
			mrev++;
		for (int i = 0; i < n; i++) {
			char key[8];
			size_t kl = live[i]->klen;

			memcpy(key, live[i]->key, kl);
			m_write(key, kl, NULL, 0, true, mrev);
		}
		assert_int_equal(rev, mrev);
		break;
	case 6:
		/* A txn: if k's version is what the model says, put two
		 * keys, else delete k. */
		{
			struct mver *cur = m_at(k, kn, mrev);
			int64_t ver = cur ? cur->version : 0;
			struct eng_cmp c = {
			    .key = k,
			    .key_len = kn,
			    .target = ENG_CMP_VERSION,
			    .result = ENG_CMP_EQ,
			    .number = rand_r(seed) % 2 ? ver : ver + 1};
			char k2[8];
			size_t k2n;
			struct eng_op ok[2], ko = {.type = ENG_OP_DELETE,
			                           .key = k,
			                           .key_len = kn};
			struct eng_txn t = {.cmps = &c,
			                    .ncmps = 1,
			                    .success = ok,
			                    .nsuccess = 2,
			                    .failure = &ko,
			                    .nfailure = 1};
			struct eng_txn_res res;
			bool same;

			rand_key(seed, k2, &k2n);
			same = k2n == kn && !memcmp(k, k2, kn);
			ok[0] = (struct eng_op){.type = ENG_OP_PUT,
			                        .key = k,
			                        .key_len = kn,
			                        .value = "t1",
			                        .value_len = 2};
			ok[1] = (struct eng_op){.type = ENG_OP_PUT,
			                        .key = k2,
			                        .key_len = k2n,
			                        .value = "t2",
			                        .value_len = 2};
			if (same) {
				assert_int_equal(eng_txn(e, &t, &res),
				                 ENG_E_DUP_KEY);
				break;
			}
			assert_int_equal(eng_txn(e, &t, &res), 0);
			assert_int_equal(res.succeeded, c.number == ver);
			if (res.succeeded) {
				mrev++;
				m_write(k, kn, "t1", 2, false, mrev);
				m_write(k2, k2n, "t2", 2, false, mrev);
			} else if (cur) {
				mrev++;
				m_write(k, kn, NULL, 0, true, mrev);
			}
			assert_int_equal(res.header_rev, mrev);
			eng_txn_res_release(&res);
		}
		break;
	case 7:
		if (rand_r(seed) % 8 == 0 && mrev - 10 > mcompact) {
			int64_t c = mrev - 10;

			assert_int_equal(eng_compact(e, c, rand_r(seed) % 2),
			                 0);
			mcompact = c;
		}
		break;
	case 8:
		check_history(e, seed);
		/* Open or drop the snapshot now and then. */
		if (rand_r(seed) % 8 == 0) {
			if (snap) {
				eng_snap_release(e, snap);
				snap = NULL;
			} else {
				assert_int_equal(eng_snap_open(e, &snap), 0);
				assert_int_equal(eng_snap_rev(snap), mrev);
			}
		}
		break;
	default:
		check_range(e, seed);
	}
	assert_int_equal(eng_current_rev(e), mrev);
}

static void test_model(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	const char *env = getenv("TEST_MODEL_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 0) : 20261127;
	struct eng_options o;

	(void)state;
	eng_options_init(&o);
	o.sync = ENG_SYNC_NONE;
	eng_close(e);
	e = th_open(dir, &o);
	fprintf(stderr, "test_model: seed %u\n", seed);
	for (int i = 0; i < STEPS && nvers < MAXV - 10; i++)
		step(e, &seed);
	for (int i = 0; i < 300; i++)
		check_range(e, &seed);
	if (snap)
		eng_snap_release(e, snap);
	snap = NULL;
	fprintf(stderr,
	        "test_model: %d snapshot reads below the compaction "
	        "revision\n",
	        snap_below_compact);
	eng_close(e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
