/*
 * fs_name.c — the name encoding of docs/reference.md §2: a key segment
 * (any bytes) <-> a file name, and the parsing of `@` names.
 *
 * Invariants: encoding is injective and canonical.  Bytes < 0x20, 0x7f, `%`
 * and `@` are written %XX with uppercase hex; the whole segments "." and
 * ".." are written %2E and %2E%2E; the empty segment is %2F (a segment never
 * holds '/', so that name is free).  Decoding accepts only what encoding
 * produces (it re-encodes and compares), so one key has exactly one name and
 * one name one key.  Two forms are never produced for an ordinary segment
 * and so cannot collide with one: a trailing lone `%` (the directory twin of
 * a file of the same name) and `%%` followed by 16 lowercase hex digits (the
 * hashed name of a segment whose encoding is over 255 bytes).  A raw `@`
 * never appears in an encoded name, so every name with `@` is revfs's own.
 */
#include "fs_name.h"
#include "fs_special.h"

#include <errno.h>
#include <string.h>

static const char hexu[] = "0123456789ABCDEF";

uint64_t fs_hash64(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%' || c == '@' || c == '/';
}

/* Encode without a length limit into out (room for 3 * len + 7 bytes). */
static size_t encode_raw(const char *seg, size_t len, char *out)
{
	size_t o = 0;

	if (len == 0) {
		memcpy(out, "%2F", 3);
		return 3;
	}
	if ((len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.')) {
		for (size_t i = 0; i < len; i++) {
			memcpy(out + o, "%2E", 3);
			o += 3;
		}
		return o;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)seg[i];

		if (needs_escape(c)) {
			out[o++] = '%';
			out[o++] = hexu[c >> 4];
			out[o++] = hexu[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

int fs_name_encode(const char *seg, size_t len, bool hashed_ok, char *out)
{
	size_t n, keep = 0, o = 0;
	uint64_t h;

	/* Segments short enough cannot overflow: encode straight into out. */
	if (len <= FS_NAME_MAX / 3) {
		n = encode_raw(seg, len, out);
		out[n] = '\0';
		return (int)n;
	}
	/* Count first so that a long segment costs no big buffer. */
	n = 0;
	for (size_t i = 0; i < len; i++)
		n += needs_escape((unsigned char)seg[i]) ? 3 : 1;
	if (n <= FS_NAME_MAX) {
		n = encode_raw(seg, len, out);
		out[n] = '\0';
		return (int)n;
	}
	if (!hashed_ok)
		return -ENAMETOOLONG;
	/* Keep whole escapes of the first raw bytes up to FS_NAME_HASH_KEEP. */
	for (size_t i = 0; i < len; i++) {
		size_t w = needs_escape((unsigned char)seg[i]) ? 3 : 1;

		if (o + w > FS_NAME_HASH_KEEP)
			break;
		o += w;
		keep = i + 1;
	}
	o = encode_raw(seg, keep, out);
	h = fs_hash64(seg, len, 0);
	out[o++] = '%';
	out[o++] = '%';
	for (int s = 60; s >= 0; s -= 4)
		out[o++] = "0123456789abcdef"[(h >> s) & 15];
	out[o] = '\0';
	return (int)o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Permissive decode of [name, name+len) into seg, then canonical check. */
static int decode_canonical(const char *name, size_t len, char *seg,
                            size_t *seg_len)
{
	char re[3 * FS_NAME_MAX + 8];
	size_t o = 0, n;

	for (size_t i = 0; i < len; i++) {
		if (name[i] == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = hexval(name[i + 1]);
			lo = hexval(name[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			seg[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (name[i] == '/' || name[i] == '\0') {
			return -EINVAL;
		} else {
			seg[o++] = name[i];
		}
	}
	/* "%2F" alone is the empty segment; elsewhere '/' would alias a
	 * deeper key. */
	if (o == 1 && seg[0] == '/' && len == 3)
		o = 0;
	else if (memchr(seg, '/', o))
		return -EINVAL;
	n = encode_raw(seg, o, re);
	if (n != len || memcmp(re, name, len) != 0)
		return -EINVAL;
	*seg_len = o;
	return 0;
}

int fs_name_decode(const char *name, size_t len, struct fs_dname *out)
{
	const char *pp;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return -EINVAL;
	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (name[len - 1] == '%') {
		out->twin = true;
		len--;
		if (len == 0)
			return -EINVAL;
	}
	pp = memmem(name, len, "%%", 2);
	if (pp) {
		size_t plen = (size_t)(pp - name);
		const char *hx = pp + 2;

		if (len - plen - 2 != 16)
			return -EINVAL;
		for (int i = 0; i < 16; i++) {
			char c = hx[i];
			int v;

			if (c >= '0' && c <= '9')
				v = c - '0';
			else if (c >= 'a' && c <= 'f')
				v = c - 'a' + 10;
			else
				return -EINVAL;
			out->hash = out->hash << 4 | (uint64_t)v;
		}
		out->hashed = true;
		/* The prefix is a canonical encoding of raw bytes; empty, "."
		 * and ".." prefixes cannot occur (the segment is long). */
		if (plen == 0)
			return -EINVAL;
		return decode_canonical(name, plen, out->seg, &out->len);
	}
	return decode_canonical(name, len, out->seg, &out->len);
}

int fs_parse_rev(const char *s, size_t len, eng_rev_t *out)
{
	eng_rev_t v = 0;

	if (len == 0 || len > 19)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int fs_parse_written_number(const char *buf, size_t len, int64_t *out)
{
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' ||
	                   buf[len - 1] == '\t'))
		len--;
	while (len > 0 && (*buf == ' ' || *buf == '\t')) {
		buf++;
		len--;
	}
	if (fs_parse_rev(buf, len, out) < 0 || *out <= 0)
		return -EINVAL;
	return 0;
}

int fs_parse_name(const char *name, struct fs_pname *out)
{
	const char *at = strchr(name, '@');
	size_t len = strlen(name);
	const char *suf;
	size_t slen;
	int idx;

	memset(out, 0, sizeof(*out));
	out->base = name;
	out->base_len = len;
	if (!at) {
		out->kind = FS_P_PLAIN;
		return 0;
	}
	if (at == name) {
		if (fs_parse_rev(name + 1, len - 1, &out->rev) == 0) {
			if (out->rev <= 0)
				return -ENOENT;
			out->kind = FS_P_DIR_REV;
			out->base_len = 0;
			return 0;
		}
		idx = fs_special_find(name, &out->rev);
		if (idx < 0)
			return -ENOENT;
		out->kind = FS_P_SPECIAL;
		out->special = idx;
		out->base_len = 0;
		return 0;
	}
	out->base_len = (size_t)(at - name);
	suf = at + 1;
	slen = len - out->base_len - 1;
	if (slen == 7 && memcmp(suf, "history", 7) == 0) {
		out->kind = FS_P_HISTORY;
		return 0;
	}
	if (slen > 6 && memcmp(suf, "ifrev=", 6) == 0) {
		if (fs_parse_rev(suf + 6, slen - 6, &out->rev) < 0)
			return -ENOENT;
		out->kind = FS_P_IFREV;
		return 0;
	}
	if (fs_parse_rev(suf, slen, &out->rev) == 0 && out->rev > 0) {
		out->kind = FS_P_AT_REV;
		return 0;
	}
	return -ENOENT;
}
