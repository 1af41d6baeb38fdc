/*
 * codec.h — the byte layout of the local backend's LevelDB records.
 *
 * Every LevelDB key starts with a one-byte space; integers are big-endian so
 * that LevelDB's bytewise order is numeric order.  docs/engine.md describes
 * the layout; this header is its only implementation.
 *
 *   M<name>                 meta records (magic, state, compaction revs)
 *   k esc(key) 00 01 inv(rev) -> struct rec   every version, newest first
 *   l key                   -> struct rec   the live latest version (a
 *                              value over REC_INLINE_MAX bytes stays in
 *                              `k` only: `l` then holds a reference)
 *   r rev sub               -> type key     the revision log
 *   L id                    -> ttl name     a lease
 *   N name                  -> id           lease by name
 *   A id key                -> ""           keys attached to a lease
 *
 * esc() maps 0x00 to 0x00 0xff and ends with 0x00 0x01, which keeps key
 * order and makes one key's versions contiguous; 0x00 0x02 after esc(key)
 * sorts after every version of key and before any longer key.
 */
#ifndef REVFS_CODEC_H
#define REVFS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2: `l` may hold value references (REC_PUT_REF).  A store of format 1 is
 * read as it is and marked 2 when opened for writing. */
#define CODEC_FORMAT_VERSION 2

#define SP_META   'M'
#define SP_HIST   'k'
#define SP_LATEST 'l'
#define SP_LOG    'r'
#define SP_LEASE  'L'
#define SP_LNAME  'N'
#define SP_ATTACH 'A'

#define META_MAGIC   "Mmagic"
#define META_STATE   "Mstate"
#define META_COMPACT "Mcompact"
#define META_PHYS    "Mphys"

#define REC_PUT 1
#define REC_DEL 2
/* In `l` only: a put whose value is only in its version record. */
#define REC_PUT_REF 3

/*
 * The longest value `l` holds a copy of.  A longer one is written once (in
 * `k`): at 1 KiB the second copy halved the durable put rate at 16 threads
 * (docs/engine.md), while a read of it at the current revision costs one
 * more point read.
 */
#define REC_INLINE_MAX 256

/* A growable byte buffer.  All appends return 0 or ENG_E_NOMEM. */
struct cbuf {
	char *p;
	size_t len;
	size_t cap;
};

void cbuf_free(struct cbuf *b);
int cbuf_reserve(struct cbuf *b, size_t extra);
int cbuf_add(struct cbuf *b, const void *p, size_t n);
int cbuf_add_u8(struct cbuf *b, uint8_t v);
int cbuf_add_be64(struct cbuf *b, uint64_t v);
int cbuf_add_be32(struct cbuf *b, uint32_t v);
/* Append esc(key) without the terminator. */
int cbuf_add_esc(struct cbuf *b, const void *key, size_t len);

void codec_put_be64(char *p, uint64_t v);
uint64_t codec_get_be64(const char *p);
uint32_t codec_get_be32(const char *p);

/* A version of a key, as stored in `k` and `l` values. */
struct rec {
	uint8_t type; /* REC_PUT or REC_DEL */
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
	int64_t lease;
	int64_t mtime_ns;
	const char *val; /* points into the decoded buffer; NULL if val_ref */
	size_t val_len;
	/* Decoded from a REC_PUT_REF: the value (val_len bytes) is in the
	 * version record at mod_rev (local_view.c's view_rec_value reads it).
	 */
	bool val_ref;
};

#define REC_HDR_LEN 41

/* The record of a version, with its value: what `k` holds. */
int codec_rec_encode(struct cbuf *b, const struct rec *r);
/* What `l` holds for the live version r: the record itself, or for a put
 * whose value is over REC_INLINE_MAX bytes, its header with type
 * REC_PUT_REF and the value's length (be64) instead of the value. */
int codec_latest_encode(struct cbuf *b, const struct rec *r);
/* Decode a version record (`k`): a reference there is corrupt, so r->val
 * always points at the value. */
int codec_rec_decode(const char *p, size_t n, struct rec *r);
/* Decode an `l` record, either form: a REC_PUT_REF gives type REC_PUT with
 * val_ref set (the value is then read with view_rec_value). */
int codec_latest_decode(const char *p, size_t n, struct rec *r);

/* k esc(key) 00 01 — the prefix shared by every version of key. */
int codec_hist_prefix(struct cbuf *b, const void *key, size_t len);
/* k esc(key) 00 01 inv(rev). */
int codec_hist_key(struct cbuf *b, const void *key, size_t len, int64_t rev);
/* k esc(key) 00 02 — just past every version of key. */
int codec_hist_skip(struct cbuf *b, const void *key, size_t len);
/*
 * Decode a `k` key: the user key into *key (reset first), the revision into
 * *rev and the length of the prefix (through the terminator) into *plen.
 */
int codec_hist_parse(const char *p, size_t n, struct cbuf *key, int64_t *rev,
                     size_t *plen);

int codec_latest_key(struct cbuf *b, const void *key, size_t len);
int codec_log_key(struct cbuf *b, int64_t rev, uint32_t sub);
int codec_lease_key(struct cbuf *b, int64_t id);
int codec_lname_key(struct cbuf *b, const char *name);
int codec_attach_key(struct cbuf *b, int64_t id, const void *key, size_t len);

/* The first key after every key starting with p[0..n) into b: returns 1,
 * or 0 if there is none (p is all 0xff), or ENG_E_NOMEM. */
int codec_prefix_end(struct cbuf *b, const char *p, size_t n);

/* Bytewise compare like memcmp then length (LevelDB's order). */
int codec_cmp(const void *a, size_t alen, const void *b, size_t blen);

#endif /* REVFS_CODEC_H */
