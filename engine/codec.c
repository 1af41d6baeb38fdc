/*
 * codec.c — encoding and decoding of the local backend's LevelDB records
 * (layout in codec.h and docs/engine.md).
 *
 * Invariants: every encoder preserves order (bytewise order of encoded keys
 * equals the order of what they encode), decoders never read past the given
 * length and report ENG_E_CORRUPT instead.  Nothing here touches LevelDB.
 */
#include "codec.h"
#include "engine.h"

#include <stdlib.h>
#include <string.h>

void cbuf_free(struct cbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int cbuf_reserve(struct cbuf *b, size_t extra)
{
	size_t need = b->len + extra;
	size_t cap;
	char *p;

	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return ENG_E_NOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int cbuf_add(struct cbuf *b, const void *p, size_t n)
{
	if (cbuf_reserve(b, n))
		return ENG_E_NOMEM;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

int cbuf_add_u8(struct cbuf *b, uint8_t v)
{
	return cbuf_add(b, &v, 1);
}

void codec_put_be64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t codec_get_be64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (uint8_t)p[i];
	return v;
}

uint32_t codec_get_be32(const char *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = (v << 8) | (uint8_t)p[i];
	return v;
}

int cbuf_add_be64(struct cbuf *b, uint64_t v)
{
	char t[8];

	codec_put_be64(t, v);
	return cbuf_add(b, t, 8);
}

int cbuf_add_be32(struct cbuf *b, uint32_t v)
{
	char t[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};

	return cbuf_add(b, t, 4);
}

int cbuf_add_esc(struct cbuf *b, const void *key, size_t len)
{
	const unsigned char *k = key;

	/* Worst case every byte doubles. */
	if (cbuf_reserve(b, 2 * len))
		return ENG_E_NOMEM;
	for (size_t i = 0; i < len; i++) {
		b->p[b->len++] = (char)k[i];
		if (k[i] == 0)
			b->p[b->len++] = (char)0xff;
	}
	return 0;
}

static void rec_add_hdr(struct cbuf *b, uint8_t type, const struct rec *r)
{
	cbuf_add_u8(b, type);
	cbuf_add_be64(b, (uint64_t)r->create_rev);
	cbuf_add_be64(b, (uint64_t)r->mod_rev);
	cbuf_add_be64(b, (uint64_t)r->version);
	cbuf_add_be64(b, (uint64_t)r->lease);
	cbuf_add_be64(b, (uint64_t)r->mtime_ns);
}

int codec_rec_encode(struct cbuf *b, const struct rec *r)
{
	if (cbuf_reserve(b, REC_HDR_LEN + r->val_len))
		return ENG_E_NOMEM;
	rec_add_hdr(b, r->type, r);
	return cbuf_add(b, r->val, r->val_len);
}

int codec_latest_encode(struct cbuf *b, const struct rec *r)
{
	if (r->type != REC_PUT || r->val_len <= REC_INLINE_MAX)
		return codec_rec_encode(b, r);
	if (cbuf_reserve(b, REC_HDR_LEN + 8))
		return ENG_E_NOMEM;
	rec_add_hdr(b, REC_PUT_REF, r);
	return cbuf_add_be64(b, (uint64_t)r->val_len);
}

/* latest: an `l` record, which may be a reference; else a version record. */
static int rec_decode(const char *p, size_t n, struct rec *r, bool latest)
{
	if (n < REC_HDR_LEN)
		return ENG_E_CORRUPT;
	r->type = (uint8_t)p[0];
	if (r->type != REC_PUT && r->type != REC_DEL &&
	    (!latest || r->type != REC_PUT_REF))
		return ENG_E_CORRUPT;
	r->create_rev = (int64_t)codec_get_be64(p + 1);
	r->mod_rev = (int64_t)codec_get_be64(p + 9);
	r->version = (int64_t)codec_get_be64(p + 17);
	r->lease = (int64_t)codec_get_be64(p + 25);
	r->mtime_ns = (int64_t)codec_get_be64(p + 33);
	r->val_ref = r->type == REC_PUT_REF;
	if (r->val_ref) {
		if (n != REC_HDR_LEN + 8)
			return ENG_E_CORRUPT;
		r->type = REC_PUT;
		r->val = NULL;
		r->val_len = (size_t)codec_get_be64(p + REC_HDR_LEN);
		return 0;
	}
	r->val = p + REC_HDR_LEN;
	r->val_len = n - REC_HDR_LEN;
	return 0;
}

int codec_rec_decode(const char *p, size_t n, struct rec *r)
{
	return rec_decode(p, n, r, false);
}

int codec_latest_decode(const char *p, size_t n, struct rec *r)
{
	return rec_decode(p, n, r, true);
}

int codec_hist_prefix(struct cbuf *b, const void *key, size_t len)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_HIST) || cbuf_add_esc(b, key, len) ||
	    cbuf_add(b, "\x00\x01", 2))
		return ENG_E_NOMEM;
	return 0;
}

int codec_hist_key(struct cbuf *b, const void *key, size_t len, int64_t rev)
{
	if (codec_hist_prefix(b, key, len))
		return ENG_E_NOMEM;
	return cbuf_add_be64(b, ~(uint64_t)rev);
}

int codec_hist_skip(struct cbuf *b, const void *key, size_t len)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_HIST) || cbuf_add_esc(b, key, len) ||
	    cbuf_add(b, "\x00\x02", 2))
		return ENG_E_NOMEM;
	return 0;
}

int codec_hist_parse(const char *p, size_t n, struct cbuf *key, int64_t *rev,
                     size_t *plen)
{
	size_t i = 1;

	key->len = 0;
	if (n < 1 || p[0] != SP_HIST)
		return ENG_E_CORRUPT;
	for (;;) {
		size_t start = i;

		while (i < n && p[i] != 0)
			i++;
		if (cbuf_add(key, p + start, i - start))
			return ENG_E_NOMEM;
		if (i + 1 >= n)
			return ENG_E_CORRUPT;
		if ((uint8_t)p[i + 1] == 0xff) {
			if (cbuf_add_u8(key, 0))
				return ENG_E_NOMEM;
			i += 2;
			continue;
		}
		if (p[i + 1] != 1)
			return ENG_E_CORRUPT;
		i += 2;
		break;
	}
	if (n - i != 8)
		return ENG_E_CORRUPT;
	*rev = (int64_t)~codec_get_be64(p + i);
	*plen = i;
	return 0;
}

int codec_latest_key(struct cbuf *b, const void *key, size_t len)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_LATEST) || cbuf_add(b, key, len))
		return ENG_E_NOMEM;
	return 0;
}

int codec_log_key(struct cbuf *b, int64_t rev, uint32_t sub)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_LOG) || cbuf_add_be64(b, (uint64_t)rev) ||
	    cbuf_add_be32(b, sub))
		return ENG_E_NOMEM;
	return 0;
}

int codec_lease_key(struct cbuf *b, int64_t id)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_LEASE) || cbuf_add_be64(b, (uint64_t)id))
		return ENG_E_NOMEM;
	return 0;
}

int codec_lname_key(struct cbuf *b, const char *name)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_LNAME) || cbuf_add(b, name, strlen(name)))
		return ENG_E_NOMEM;
	return 0;
}

int codec_attach_key(struct cbuf *b, int64_t id, const void *key, size_t len)
{
	b->len = 0;
	if (cbuf_add_u8(b, SP_ATTACH) || cbuf_add_be64(b, (uint64_t)id) ||
	    cbuf_add(b, key, len))
		return ENG_E_NOMEM;
	return 0;
}

int codec_prefix_end(struct cbuf *b, const char *p, size_t n)
{
	while (n > 0 && (uint8_t)p[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	b->len = 0;
	if (cbuf_add(b, p, n))
		return ENG_E_NOMEM;
	b->p[n - 1] = (char)((uint8_t)b->p[n - 1] + 1);
	return 1;
}

int codec_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}
