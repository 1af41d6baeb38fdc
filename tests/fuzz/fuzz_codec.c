/*
 * fuzz_codec.c — libFuzzer target for the on-disk record decoding
 * (engine/codec.c).  Properties: codec_rec_decode never reads past its
 * input and what it accepts re-encodes to the same bytes; so does
 * codec_latest_decode, which accepts those records and also a reference
 * (which codec_rec_decode refuses: a version record holds its value) that
 * re-encodes with codec_latest_encode when it is over the inline limit;
 * codec_hist_parse
 * likewise (the history key it accepts is exactly codec_hist_key of what
 * it returned), and the escaped key keeps its order against a second key.
 */
#include "engine/codec.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	struct cbuf b = {0}, key = {0}, k1 = {0}, k2 = {0};
	struct rec r;
	int64_t rev;
	size_t plen;

	if (codec_rec_decode(d, size, &r) == 0) {
		FUZZ_CHECK(!r.val_ref && r.val == d + REC_HDR_LEN);
		FUZZ_CHECK(codec_rec_encode(&b, &r) == 0);
		FUZZ_CHECK(b.len == size && memcmp(b.p, d, size) == 0);
	}
	if (codec_latest_decode(d, size, &r) == 0) {
		b.len = 0;
		if (!r.val_ref) {
			FUZZ_CHECK(r.val == d + REC_HDR_LEN);
			FUZZ_CHECK(codec_rec_encode(&b, &r) == 0);
			FUZZ_CHECK(b.len == size && memcmp(b.p, d, size) == 0);
		} else {
			FUZZ_CHECK(r.type == REC_PUT && !r.val);
			FUZZ_CHECK(size == REC_HDR_LEN + 8);
			if (r.val_len > REC_INLINE_MAX) {
				FUZZ_CHECK(codec_latest_encode(&b, &r) == 0);
				FUZZ_CHECK(b.len == size &&
				           memcmp(b.p, d, size) == 0);
			}
		}
	}
	if (codec_hist_parse(d, size, &key, &rev, &plen) == 0) {
		FUZZ_CHECK(plen + 8 == size);
		FUZZ_CHECK(codec_hist_key(&b, key.p, key.len, rev) == 0);
		FUZZ_CHECK(b.len == size && memcmp(b.p, d, size) == 0);
	}
	/* Order: split the input into two keys; escaped order = raw order. */
	if (size >= 1) {
		size_t half = data[0] % size;
		const char *a = d + 1, *c = d + 1 + half;
		size_t alen = half ? half - 1 : 0;
		size_t clen = size - 1 - half;
		int raw, enc;

		FUZZ_CHECK(codec_hist_key(&k1, a, alen, 7) == 0);
		FUZZ_CHECK(codec_hist_key(&k2, c, clen, 7) == 0);
		raw = codec_cmp(a, alen, c, clen);
		enc = codec_cmp(k1.p, k1.len, k2.p, k2.len);
		FUZZ_CHECK((raw < 0) == (enc < 0) && (raw > 0) == (enc > 0));
	}
	cbuf_free(&b);
	cbuf_free(&key);
	cbuf_free(&k1);
	cbuf_free(&k2);
	return 0;
}
