/*
 * fuzz_snapshot.c — libFuzzer target for the snapshot reader
 * (engine/snapshot_fmt.c).  The first byte picks a chunk size; the rest is
 * fed as a snapshot file in chunks of that size.  Properties: no crash, no
 * leak, no read past the input; the callback only sees records whose
 * lengths fit the input; a file the reader accepts has exactly as many
 * records and bytes as it reports, and parses the same in one chunk.
 */
#include "engine/snapshot.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

struct seen {
	uint64_t records;
	uint64_t bytes;
};

static int on_rec(void *arg, const void *key, size_t key_len, const void *val,
                  size_t val_len)
{
	struct seen *s = arg;
	volatile char sink = 0;

	/* Touch every byte: ASan checks they are inside the buffer. */
	for (size_t i = 0; i < key_len; i++)
		sink ^= ((const char *)key)[i];
	for (size_t i = 0; i < val_len; i++)
		sink ^= ((const char *)val)[i];
	(void)sink;
	FUZZ_CHECK(key_len > 0);
	s->records++;
	s->bytes += key_len + val_len;
	return 0;
}

static int parse(const uint8_t *p, size_t n, size_t chunk, struct seen *s,
                 struct eng_snapshot_info *info)
{
	eng_snapshot_reader *r;
	int rc = 0;

	if (eng_snapshot_reader_new(&r))
		return ENG_E_NOMEM;
	for (size_t off = 0; off < n && !rc; off += chunk)
		rc = eng_snapshot_reader_feed(
		    r, p + off, n - off < chunk ? n - off : chunk, on_rec, s);
	if (!rc)
		rc = eng_snapshot_reader_finish(r, info);
	FUZZ_CHECK(eng_snapshot_reader_error(r) != NULL);
	eng_snapshot_reader_free(r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eng_snapshot_info a, b;
	struct seen sa = {0}, sb = {0};
	size_t chunk;
	int rc;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	rc = parse(data + 1, size - 1, chunk, &sa, &a);
	if (rc == 0) {
		FUZZ_CHECK(a.records == sa.records);
		FUZZ_CHECK(a.bytes == size - 1);
		FUZZ_CHECK(parse(data + 1, size - 1, size, &sb, &b) == 0);
		FUZZ_CHECK(b.records == a.records && b.crc == a.crc);
		FUZZ_CHECK(sb.bytes == sa.bytes);
	}
	return 0;
}
