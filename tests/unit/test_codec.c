/*
 * test_codec.c — the record layout of the local backend (engine/codec.h):
 * the escaped history keys keep key order and keep one key's versions
 * contiguous and newest first, parse back to the key and revision, the
 * "skip" key lands between a key and the next, records round-trip, and
 * prefix ends are etcd's.
 */
#include "engine_helpers.h"
#include "engine/codec.h"

#define NKEYS 300

struct hk {
	char key[8];
	size_t len;
	int64_t rev;
	struct cbuf enc;
};

static int raw_cmp(const struct hk *a, const struct hk *b)
{
	int c = codec_cmp(a->key, a->len, b->key, b->len);

	if (c)
		return c;
	return a->rev > b->rev ? -1 : a->rev < b->rev; /* newest first */
}

static void test_hist_order(void **state)
{
	static struct hk k[NKEYS];
	unsigned seed = 1;

	(void)state;
	for (int i = 0; i < NKEYS; i++) {
		/* Short keys over a tiny alphabet with NULs and 0xff, so
		 * prefixes and escapes are common. */
		static const char alpha[] = {0, 1, 'a', (char)0xff};

		k[i].len = (size_t)(rand_r(&seed) % 4) + 1;
		for (size_t j = 0; j < k[i].len; j++)
			k[i].key[j] = alpha[rand_r(&seed) % 4];
		k[i].rev = rand_r(&seed) % 5 + 1;
		assert_int_equal(
		    codec_hist_key(&k[i].enc, k[i].key, k[i].len, k[i].rev), 0);
	}
	for (int i = 0; i < NKEYS; i++) {
		struct cbuf key = {0};
		int64_t rev;
		size_t plen;

		for (int j = 0; j < NKEYS; j++) {
			int want = raw_cmp(&k[i], &k[j]);
			int got = codec_cmp(k[i].enc.p, k[i].enc.len,
			                    k[j].enc.p, k[j].enc.len);

			assert_int_equal(want < 0, got < 0);
			assert_int_equal(want > 0, got > 0);
		}
		assert_int_equal(codec_hist_parse(k[i].enc.p, k[i].enc.len,
		                                  &key, &rev, &plen),
		                 0);
		assert_int_equal(key.len, k[i].len);
		assert_memory_equal(key.p, k[i].key, k[i].len);
		assert_int_equal(rev, k[i].rev);
		cbuf_free(&key);
	}
	for (int i = 0; i < NKEYS; i++)
		cbuf_free(&k[i].enc);
}

static void test_skip_key(void **state)
{
	struct cbuf a = {0}, skip = {0}, longer = {0}, next = {0};

	(void)state;
	/* "ab" rev 1 (its oldest) < skip("ab") < "ab\0" < "ab\x01" */
	assert_int_equal(codec_hist_key(&a, "ab", 2, 1), 0);
	assert_int_equal(codec_hist_skip(&skip, "ab", 2), 0);
	assert_int_equal(codec_hist_key(&longer, "ab\0", 3, 9), 0);
	assert_int_equal(codec_hist_key(&next, "ab\x01", 3, 9), 0);
	assert_true(codec_cmp(a.p, a.len, skip.p, skip.len) < 0);
	assert_true(codec_cmp(skip.p, skip.len, longer.p, longer.len) < 0);
	assert_true(codec_cmp(longer.p, longer.len, next.p, next.len) < 0);
	cbuf_free(&a);
	cbuf_free(&skip);
	cbuf_free(&longer);
	cbuf_free(&next);
}

static void test_rec_roundtrip(void **state)
{
	struct rec in = {.type = REC_PUT,
	                 .create_rev = 5,
	                 .mod_rev = 9,
	                 .version = 3,
	                 .lease = 0x123456789,
	                 .mtime_ns = -1,
	                 .val = "va\0lue",
	                 .val_len = 6};
	struct rec out;
	struct cbuf b = {0};

	(void)state;
	assert_int_equal(codec_rec_encode(&b, &in), 0);
	assert_int_equal(b.len, REC_HDR_LEN + 6);
	assert_int_equal(codec_rec_decode(b.p, b.len, &out), 0);
	assert_int_equal(out.type, REC_PUT);
	assert_int_equal(out.create_rev, 5);
	assert_int_equal(out.mod_rev, 9);
	assert_int_equal(out.version, 3);
	assert_int_equal(out.lease, 0x123456789);
	assert_int_equal(out.mtime_ns, -1);
	assert_int_equal(out.val_len, 6);
	assert_memory_equal(out.val, "va\0lue", 6);
	/* Truncated or unknown type: corrupt, never a read past the end. */
	assert_int_equal(codec_rec_decode(b.p, REC_HDR_LEN - 1, &out),
	                 ENG_E_CORRUPT);
	b.p[0] = 9;
	assert_int_equal(codec_rec_decode(b.p, b.len, &out), ENG_E_CORRUPT);
	cbuf_free(&b);
}

/* A put over the inline limit: its `l` form is a reference (header and
 * length), which only codec_latest_decode accepts; a version record never
 * holds one. */
static void test_latest_ref(void **state)
{
	char val[REC_INLINE_MAX + 1];
	struct rec in = {.type = REC_PUT,
	                 .create_rev = 5,
	                 .mod_rev = 9,
	                 .version = 3,
	                 .val = val,
	                 .val_len = sizeof(val)};
	struct rec out;
	struct cbuf b = {0};

	(void)state;
	memset(val, 'v', sizeof(val));
	assert_int_equal(codec_latest_encode(&b, &in), 0);
	assert_int_equal(b.len, REC_HDR_LEN + 8);
	assert_int_equal(b.p[0], REC_PUT_REF);
	assert_int_equal(codec_rec_decode(b.p, b.len, &out), ENG_E_CORRUPT);
	assert_int_equal(codec_latest_decode(b.p, b.len, &out), 0);
	assert_true(out.val_ref);
	assert_int_equal(out.type, REC_PUT);
	assert_null(out.val);
	assert_int_equal(out.val_len, sizeof(val));
	assert_int_equal(out.mod_rev, 9);
	/* A reference is exactly header and length. */
	assert_int_equal(codec_latest_decode(b.p, b.len - 1, &out),
	                 ENG_E_CORRUPT);
	/* At the limit the value stays inline, and either decoder reads it. */
	in.val_len = REC_INLINE_MAX;
	b.len = 0;
	assert_int_equal(codec_latest_encode(&b, &in), 0);
	assert_int_equal(b.len, REC_HDR_LEN + REC_INLINE_MAX);
	assert_int_equal(codec_rec_decode(b.p, b.len, &out), 0);
	assert_int_equal(codec_latest_decode(b.p, b.len, &out), 0);
	assert_false(out.val_ref);
	assert_memory_equal(out.val, val, REC_INLINE_MAX);
	cbuf_free(&b);
}

static void test_prefix_end(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(eng_prefix_end("abc", 3, out), 3);
	assert_memory_equal(out, "abd", 3);
	assert_int_equal(eng_prefix_end("a\xff\xff", 3, out), 1);
	assert_memory_equal(out, "b", 1);
	assert_int_equal(eng_prefix_end("\xff", 1, out), 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(eng_prefix_end("", 0, out), 1);
	assert_int_equal(out[0], 0);
}

static void test_log_order(void **state)
{
	struct cbuf a = {0}, b = {0}, c = {0};

	(void)state;
	assert_int_equal(codec_log_key(&a, 255, 7), 0);
	assert_int_equal(codec_log_key(&b, 256, 0), 0);
	assert_int_equal(codec_log_key(&c, 256, 1), 0);
	assert_true(codec_cmp(a.p, a.len, b.p, b.len) < 0);
	assert_true(codec_cmp(b.p, b.len, c.p, c.len) < 0);
	cbuf_free(&a);
	cbuf_free(&b);
	cbuf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hist_order),
	    cmocka_unit_test(test_skip_key),
	    cmocka_unit_test(test_rec_roundtrip),
	    cmocka_unit_test(test_latest_ref),
	    cmocka_unit_test(test_prefix_end),
	    cmocka_unit_test(test_log_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
