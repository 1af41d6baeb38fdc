/*
 * snapshot_fmt.c — the snapshot file format (snapshot.h, docs/operations.md):
 * CRC32C, the header encoder and the push parser that reads a file in
 * chunks of any size.  Touches no store, so the fuzzer drives it alone.
 *
 * Invariants: the parser never reads past what it was fed; it buffers at
 * most one record (each field bounded by ENG_SNAPSHOT_FIELD_MAX) and grows
 * that buffer only as bytes arrive, so a lying length costs no memory; the
 * first error is sticky; a record reaches the callback only after its
 * lengths were checked, and the file is good only if finish() says so.
 */
#include "snapshot_int.h"
#include "codec.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ CRC */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	/* The reflected Castagnoli polynomial. */
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t eng_crc32c(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* --------------------------------------------------------------- parser */

enum rd_state { RD_HDR, RD_LENS, RD_DATA, RD_TRAILER, RD_DONE, RD_ERR };

struct eng_snapshot_reader {
	enum rd_state st;
	size_t need;     /* bytes the current unit still lacks */
	struct cbuf buf; /* the current unit */
	uint32_t klen, vlen;
	uint32_t crc; /* over everything before the trailer */
	uint64_t offset;
	uint64_t records;
	bool have_hdr;
	struct eng_snapshot_info info;
	int err;
	char msg[160];
};

static int rd_fail(struct eng_snapshot_reader *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rd_fail(struct eng_snapshot_reader *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->err = err;
	r->st = RD_ERR;
	return err;
}

int eng_snapshot_reader_new(eng_snapshot_reader **out)
{
	struct eng_snapshot_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return ENG_E_NOMEM;
	r->st = RD_HDR;
	r->need = ENG_SNAPSHOT_HDR_LEN;
	*out = r;
	return 0;
}

void eng_snapshot_reader_free(eng_snapshot_reader *r)
{
	if (!r)
		return;
	cbuf_free(&r->buf);
	free(r);
}

const char *eng_snapshot_reader_error(const eng_snapshot_reader *r)
{
	return r->err ? r->msg : "no error";
}

const struct eng_snapshot_info *
eng_snapshot_reader_header(const eng_snapshot_reader *r)
{
	return r->have_hdr ? &r->info : NULL;
}

static int rd_header(struct eng_snapshot_reader *r)
{
	const char *p = r->buf.p;
	struct eng_snapshot_info *h = &r->info;
	uint32_t want;

	if (memcmp(p, ENG_SNAPSHOT_MAGIC, 8) != 0)
		return rd_fail(r, ENG_E_CORRUPT,
		               "not a revfs snapshot (bad magic)");
	h->format_version = codec_get_be32(p + 8);
	if (h->format_version > ENG_SNAPSHOT_VERSION || !h->format_version)
		return rd_fail(r, ENG_E_VERSION,
		               "snapshot format version %u, this program "
		               "reads version %u",
		               h->format_version, ENG_SNAPSHOT_VERSION);
	want = codec_get_be32(p + ENG_SNAPSHOT_HDR_LEN - 4);
	if (eng_crc32c(0, p, ENG_SNAPSHOT_HDR_LEN - 4) != want)
		return rd_fail(r, ENG_E_CORRUPT, "header checksum mismatch");
	h->store_version = codec_get_be32(p + 12);
	h->rev = (int64_t)codec_get_be64(p + 16);
	h->compact_rev = (int64_t)codec_get_be64(p + 24);
	h->keys = (int64_t)codec_get_be64(p + 32);
	h->created_ns = (int64_t)codec_get_be64(p + 40);
	if (h->store_version > CODEC_FORMAT_VERSION || !h->store_version)
		return rd_fail(r, ENG_E_VERSION,
		               "store format version %u, this program "
		               "knows version %u",
		               h->store_version, CODEC_FORMAT_VERSION);
	if (h->rev < 1 || h->compact_rev < 0 || h->compact_rev > h->rev ||
	    h->keys < 0)
		return rd_fail(r, ENG_E_CORRUPT,
		               "header holds impossible revisions");
	r->have_hdr = true;
	return 0;
}

static int rd_trailer(struct eng_snapshot_reader *r)
{
	const char *p = r->buf.p;
	uint64_t n;
	uint32_t crc;

	if (memcmp(p, ENG_SNAPSHOT_END_MAGIC, 8) != 0)
		return rd_fail(r, ENG_E_CORRUPT, "bad trailer magic");
	n = codec_get_be64(p + 8);
	crc = codec_get_be32(p + 16);
	if (n != r->records)
		return rd_fail(r, ENG_E_CORRUPT,
		               "trailer counts %llu records, the body has "
		               "%llu",
		               (unsigned long long)n,
		               (unsigned long long)r->records);
	if (crc != r->crc)
		return rd_fail(r, ENG_E_CORRUPT,
		               "checksum mismatch: trailer %08x, data %08x",
		               crc, r->crc);
	r->info.records = n;
	r->info.crc = crc;
	return 0;
}

/* A unit (header, lengths, record data, trailer) is complete. */
static int rd_unit(struct eng_snapshot_reader *r, eng_snapshot_rec_fn rec,
                   void *arg)
{
	int rc;

	if (r->st != RD_TRAILER)
		r->crc = eng_crc32c(r->crc, r->buf.p, r->buf.len);
	switch (r->st) {
	case RD_HDR:
		rc = rd_header(r);
		if (rc)
			return rc;
		r->st = RD_LENS;
		r->need = 8;
		break;
	case RD_LENS:
		r->klen = codec_get_be32(r->buf.p);
		r->vlen = codec_get_be32(r->buf.p + 4);
		if (r->klen == 0) {
			if (r->vlen != 0)
				return rd_fail(r, ENG_E_CORRUPT,
				               "record %llu has an empty "
				               "key",
				               (unsigned long long)r->records);
			r->st = RD_TRAILER;
			r->need = ENG_SNAPSHOT_TRL_LEN;
			break;
		}
		if (r->klen > ENG_SNAPSHOT_FIELD_MAX ||
		    r->vlen > ENG_SNAPSHOT_FIELD_MAX)
			return rd_fail(r, ENG_E_CORRUPT,
			               "record %llu is too long (%u+%u "
			               "bytes)",
			               (unsigned long long)r->records, r->klen,
			               r->vlen);
		r->st = RD_DATA;
		r->need = (size_t)r->klen + r->vlen;
		break;
	case RD_DATA:
		r->records++;
		if (rec) {
			rc = rec(arg, r->buf.p, r->klen, r->buf.p + r->klen,
			         r->vlen);
			if (rc)
				return rd_fail(r, rc,
				               "stopped at record %llu: %s",
				               (unsigned long long)r->records,
				               eng_strerror(rc));
		}
		r->st = RD_LENS;
		r->need = 8;
		break;
	case RD_TRAILER:
		rc = rd_trailer(r);
		if (rc)
			return rc;
		r->st = RD_DONE;
		r->need = 0;
		break;
	default:
		return rd_fail(r, ENG_E_INTERNAL, "parser in a bad state");
	}
	r->buf.len = 0;
	return 0;
}

int eng_snapshot_reader_feed(eng_snapshot_reader *r, const void *p, size_t n,
                             eng_snapshot_rec_fn rec, void *arg)
{
	const char *c = p;

	if (r->st == RD_ERR)
		return r->err;
	while (n) {
		size_t take;
		int rc;

		if (r->st == RD_DONE)
			return rd_fail(r, ENG_E_CORRUPT,
			               "%zu bytes after the trailer", n);
		take = n < r->need ? n : r->need;
		if (cbuf_add(&r->buf, c, take))
			return rd_fail(r, ENG_E_NOMEM, "out of memory");
		c += take;
		n -= take;
		r->need -= take;
		r->offset += take;
		if (r->need == 0) {
			rc = rd_unit(r, rec, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int eng_snapshot_reader_finish(eng_snapshot_reader *r,
                               struct eng_snapshot_info *info)
{
	if (r->st == RD_ERR)
		return r->err;
	if (r->st != RD_DONE) {
		if (r->st == RD_HDR && r->offset < 8)
			return rd_fail(r, ENG_E_CORRUPT,
			               "not a revfs snapshot (%llu bytes)",
			               (unsigned long long)r->offset);
		return rd_fail(r, ENG_E_CORRUPT,
		               "truncated: the file ends at byte %llu, "
		               "inside %s",
		               (unsigned long long)r->offset,
		               r->st == RD_HDR       ? "the header"
		               : r->st == RD_TRAILER ? "the trailer"
		                                     : "the records");
	}
	r->info.bytes = r->offset;
	if (info)
		*info = r->info;
	return 0;
}

/* ---------------------------------------------------------------- header */

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

void snapshot_encode_header(const struct eng_snapshot_info *h, char *out)
{
	memcpy(out, ENG_SNAPSHOT_MAGIC, 8);
	put_be32(out + 8, h->format_version);
	put_be32(out + 12, h->store_version);
	codec_put_be64(out + 16, (uint64_t)h->rev);
	codec_put_be64(out + 24, (uint64_t)h->compact_rev);
	codec_put_be64(out + 32, (uint64_t)h->keys);
	codec_put_be64(out + 40, (uint64_t)h->created_ns);
	put_be32(out + 48, eng_crc32c(0, out, ENG_SNAPSHOT_HDR_LEN - 4));
}

void snapshot_encode_trailer(uint64_t records, uint32_t crc, char *out)
{
	memcpy(out, ENG_SNAPSHOT_END_MAGIC, 8);
	codec_put_be64(out + 8, records);
	put_be32(out + 16, crc);
}

void snapshot_encode_lens(uint32_t klen, uint32_t vlen, char *out)
{
	put_be32(out, klen);
	put_be32(out + 4, vlen);
}
