/*
 * test_snapshot.c — backups and offline maintenance (engine/snapshot.h):
 * the snapshot format (round trip, every corrupted byte, every truncation,
 * a newer version, any chunking), restore equality (every range at every
 * retained revision, each key's history, leases and their keys), a
 * snapshot taken while a writer runs, restore refusing a non-empty
 * directory, check + repair of damaged derived records, and defrag.
 */
#include "engine_helpers.h"
#include "engine/snapshot.h"
#include "engine/codec.h"

#include <leveldb/c.h>
#include <pthread.h>
#include <sys/stat.h>

/* tests/run.sh valgrind sets RV_UNDER_VALGRIND: 10x smaller stores there */
static int scaled(int n)
{
	return getenv("RV_UNDER_VALGRIND") ? n / 10 : n;
}

struct mbuf {
	char *p;
	size_t len, cap;
};

static int mbuf_write(void *arg, const void *p, size_t n)
{
	struct mbuf *b = arg;

	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static char *sibling(const char *store, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s.%s", store, name) > 0);
	return p;
}

/*
 * A store with history worth copying: overwrites, deletes and
 * re-creations, a multi-key revision, a compaction, values with NUL
 * bytes, and two leases (one named) with keys attached.
 */
static void populate(eng *e, eng_lease_t *l1, eng_lease_t *l2)
{
	char key[32], val[64];

	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "ns/k%03d", i % 13);
		snprintf(val, sizeof(val), "value %d", i);
		th_put(e, key, val);
	}
	th_del(e, "ns/k003", NULL, 1);
	th_put(e, "ns/k003", "reborn");
	th_del(e, "ns/k010", "ns/k012", 2);
	assert_int_equal(eng_compact(e, eng_current_rev(e) - 10, true), 0);
	assert_int_equal(eng_put(e, "bin", 3, "a\0b\0", 4, 0, NULL, NULL), 0);
	assert_int_equal(eng_lease_grant(e, 0, 60, "node-1", l1), 0);
	assert_int_equal(eng_lease_grant(e, 0, 120, NULL, l2), 0);
	assert_int_equal(eng_put(e, "lease/a", 7, "x", 1, *l1, NULL, NULL), 0);
	assert_int_equal(eng_put(e, "lease/b", 7, "y", 1, *l1, NULL, NULL), 0);
	assert_int_equal(eng_put(e, "lease/c", 7, "z", 1, *l2, NULL, NULL), 0);
	th_put(e, "zz/last", "end");
}

static void assert_kv_equal(const struct eng_kv *a, const struct eng_kv *b)
{
	assert_int_equal(a->key_len, b->key_len);
	assert_memory_equal(a->key, b->key, a->key_len);
	assert_int_equal(a->value_len, b->value_len);
	if (a->value_len)
		assert_memory_equal(a->value, b->value, a->value_len);
	assert_int_equal(a->create_rev, b->create_rev);
	assert_int_equal(a->mod_rev, b->mod_rev);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->lease, b->lease);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_int_equal(a->deleted, b->deleted);
}

/* Every key at rev (keys >= "\0"). */
static int range_all(eng *e, eng_rev_t rev, unsigned flags,
                     struct eng_range_res *res)
{
	struct eng_range_req req = {.key = "",
	                            .key_len = 1,
	                            .end = "",
	                            .end_len = 1,
	                            .rev = rev,
	                            .flags = flags};

	return eng_range(e, &req, res);
}

static void assert_range_equal(eng *a, eng *b, eng_rev_t rev)
{
	struct eng_range_res ra = {0}, rb = {0};

	assert_int_equal(range_all(a, rev, 0, &ra), 0);
	assert_int_equal(range_all(b, rev, 0, &rb), 0);
	assert_int_equal(ra.n, rb.n);
	for (size_t i = 0; i < ra.n; i++)
		assert_kv_equal(&ra.kvs[i], &rb.kvs[i]);
	eng_range_res_release(&ra);
	eng_range_res_release(&rb);
}

static void assert_history_equal(eng *a, eng *b, const struct eng_kv *k,
                                 eng_rev_t rev)
{
	struct eng_range_res ha = {0}, hb = {0};
	size_t n = 0;

	assert_int_equal(eng_history(a, k->key, k->key_len, 0, 0, &ha), 0);
	assert_int_equal(eng_history(b, k->key, k->key_len, 0, 0, &hb), 0);
	/* a may have moved on after rev. */
	while (n < ha.n && ha.kvs[n].mod_rev <= rev)
		n++;
	assert_int_equal(hb.n, n);
	for (size_t j = 0; j < n; j++)
		assert_kv_equal(&ha.kvs[j], &hb.kvs[j]);
	eng_range_res_release(&ha);
	eng_range_res_release(&hb);
}

/* b equals a as of revision rev: ranges, history, leases. */
static void assert_store_equal(eng *a, eng *b, eng_rev_t rev)
{
	struct eng_range_res keys = {0};
	struct eng_lease_info *la, *lb;
	size_t na, nb;

	assert_int_equal(eng_current_rev(b), rev);
	assert_int_equal(eng_compact_rev(b), eng_compact_rev(a));
	for (eng_rev_t r = eng_compact_rev(b); r <= rev; r++)
		if (r > 0)
			assert_range_equal(a, b, r);
	/* Every key live at the compaction revision or at rev: its
	 * history up to rev. */
	for (int pass = 0; pass < 2; pass++) {
		eng_rev_t at = pass ? rev : eng_compact_rev(a);

		if (at < 1)
			continue;
		assert_int_equal(range_all(a, at, ENG_RANGE_KEYS_ONLY, &keys),
		                 0);
		for (size_t i = 0; i < keys.n; i++)
			assert_history_equal(a, b, &keys.kvs[i], rev);
		eng_range_res_release(&keys);
	}
	/* Leases: same ids, names, TTLs and attached keys. */
	assert_int_equal(eng_lease_list(a, &la, &na), 0);
	assert_int_equal(eng_lease_list(b, &lb, &nb), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		struct eng_lease_info ia, ib;

		assert_int_equal(la[i].id, lb[i].id);
		assert_string_equal(la[i].name, lb[i].name);
		assert_int_equal(la[i].granted_ttl, lb[i].granted_ttl);
		/* Full TTL on open (etcd's rule). */
		assert_true(lb[i].remaining_ms >
		            (lb[i].granted_ttl - 5) * 1000);
		assert_int_equal(
		    eng_lease_ttl(a, la[i].id, ENG_LEASE_KEYS, &ia), 0);
		assert_int_equal(
		    eng_lease_ttl(b, lb[i].id, ENG_LEASE_KEYS, &ib), 0);
		assert_int_equal(ia.nkeys, ib.nkeys);
		for (size_t j = 0; j < ia.nkeys; j++) {
			assert_int_equal(ia.keys[j].key_len,
			                 ib.keys[j].key_len);
			assert_memory_equal(ia.keys[j].key, ib.keys[j].key,
			                    ia.keys[j].key_len);
		}
		eng_lease_info_release(&ia);
		eng_lease_info_release(&ib);
	}
	free(la);
	free(lb);
}

static void save_mem(eng *e, struct mbuf *b, struct eng_snapshot_info *info)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(eng_snapshot_save(e, mbuf_write, b, info), 0);
	assert_int_equal(info->bytes, b->len);
}

/* Parse buf in chunks of `chunk` bytes; return feed/finish's result. */
static int parse_mem(const char *p, size_t n, size_t chunk, uint64_t *records,
                     struct eng_snapshot_info *info)
{
	eng_snapshot_reader *r;
	int rc = 0;

	assert_int_equal(eng_snapshot_reader_new(&r), 0);
	for (size_t off = 0; off < n && !rc; off += chunk)
		rc = eng_snapshot_reader_feed(
		    r, p + off, n - off < chunk ? n - off : chunk, NULL, NULL);
	if (!rc)
		rc = eng_snapshot_reader_finish(r, info);
	else
		assert_int_equal(eng_snapshot_reader_finish(r, info), rc);
	if (records && !rc)
		*records = info->records;
	eng_snapshot_reader_free(r);
	return rc;
}

static void test_round_trip(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *dst = sibling(store, "restored");
	struct eng_snapshot_info info, st, rinfo;
	char err[256];
	eng_lease_t l1, l2;
	struct mbuf b;
	eng *e = th_open(store, NULL), *r;

	(void)state;
	populate(e, &l1, &l2);
	save_mem(e, &b, &info);
	assert_int_equal(info.format_version, ENG_SNAPSHOT_VERSION);
	assert_int_equal(info.rev, eng_current_rev(e));
	assert_int_equal(info.compact_rev, eng_compact_rev(e));
	assert_true(info.records > 40);
	write_file(file, b.p, b.len);

	assert_int_equal(
	    eng_snapshot_file_status(file, &st, NULL, NULL, err, sizeof(err)),
	    0);
	assert_int_equal(st.rev, info.rev);
	assert_int_equal(st.records, info.records);
	assert_int_equal(st.crc, info.crc);
	assert_int_equal(st.bytes, b.len);

	assert_int_equal(eng_snapshot_restore(file, dst, NULL, NULL, &rinfo,
	                                      err, sizeof(err)),
	                 0);
	assert_int_equal(rinfo.rev, info.rev);
	r = th_open(dst, NULL);
	assert_int_equal(eng_check(r, NULL, NULL), 0);
	assert_store_equal(e, r, info.rev);
	/* The restored store is a working store: it takes new writes. */
	assert_int_equal(th_put(r, "after", "restore"), info.rev + 1);
	eng_close(r);
	eng_close(e);

	/* Restoring again into the now non-empty directory is refused. */
	assert_int_equal(
	    eng_snapshot_restore(file, dst, NULL, NULL, NULL, err, sizeof(err)),
	    ENG_E_INVAL);
	assert_non_null(strstr(err, "not empty"));
	r = th_open(dst, NULL);
	assert_string_equal(th_get(r, "after", 0), "restore");
	eng_close(r);

	free(b.p);
	th_rmrf(dst);
	free(dst);
	unlink(file);
	free(file);
	th_cleanup(store);
}

static void test_chunking(void **state)
{
	char *store = th_tmpdir();
	struct eng_snapshot_info info, got;
	eng_lease_t l1, l2;
	uint64_t rec = 0;
	struct mbuf b;
	eng *e = th_open(store, NULL);

	(void)state;
	populate(e, &l1, &l2);
	save_mem(e, &b, &info);
	eng_close(e);
	static const size_t chunks[] = {1, 7, 52, 53, 4096, 1 << 20};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(parse_mem(b.p, b.len, chunks[i], &rec, &got),
		                 0);
		assert_int_equal(rec, info.records);
		assert_int_equal(got.rev, info.rev);
		assert_int_equal(got.crc, info.crc);
	}
	free(b.p);
	th_cleanup(store);
}

/* Every single flipped byte anywhere in the file is refused. */
static void test_corrupt_every_byte(void **state)
{
	char *store = th_tmpdir();
	struct eng_snapshot_info info, got;
	struct mbuf b;
	eng *e = th_open(store, NULL);

	(void)state;
	th_put(e, "a", "1");
	th_put(e, "b", "2");
	th_del(e, "a", NULL, 1);
	save_mem(e, &b, &info);
	eng_close(e);
	for (size_t i = 0; i < b.len; i++) {
		b.p[i] ^= 0x20;
		int rc = parse_mem(b.p, b.len, 4096, NULL, &got);
		assert_true(rc == ENG_E_CORRUPT || rc == ENG_E_VERSION);
		b.p[i] ^= 0x20;
	}
	assert_int_equal(parse_mem(b.p, b.len, 4096, NULL, &got), 0);
	free(b.p);
	th_cleanup(store);
}

/* Every truncation is refused, and so is a byte too many. */
static void test_truncated(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *dst = sibling(store, "restored");
	struct eng_snapshot_info info, got;
	char err[256];
	struct mbuf b;
	eng *e = th_open(store, NULL);
	struct stat sb;

	(void)state;
	th_put(e, "a", "1");
	th_put(e, "b", "2");
	save_mem(e, &b, &info);
	eng_close(e);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(parse_mem(b.p, n, 4096, NULL, &got),
		                 ENG_E_CORRUPT);
	mbuf_write(&b, "x", 1);
	assert_int_equal(parse_mem(b.p, b.len, 4096, NULL, &got),
	                 ENG_E_CORRUPT);

	/* A truncated file: restore refuses it and leaves nothing behind. */
	write_file(file, b.p, info.bytes - 30);
	assert_int_equal(
	    eng_snapshot_restore(file, dst, NULL, NULL, NULL, err, sizeof(err)),
	    ENG_E_CORRUPT);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(stat(dst, &sb), -1);
	assert_int_equal(
	    eng_snapshot_file_status(file, &got, NULL, NULL, err, sizeof(err)),
	    ENG_E_CORRUPT);
	/* A flipped byte in a record: the checksum catches it. */
	b.p[info.bytes - 30] ^= 1;
	write_file(file, b.p, info.bytes);
	assert_int_equal(
	    eng_snapshot_restore(file, dst, NULL, NULL, NULL, err, sizeof(err)),
	    ENG_E_CORRUPT);
	assert_non_null(strstr(err, "checksum"));
	assert_int_equal(stat(dst, &sb), -1);
	/* Into an empty directory given by the user: it stays, empty. */
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_int_equal(
	    eng_snapshot_restore(file, dst, NULL, NULL, NULL, err, sizeof(err)),
	    ENG_E_CORRUPT);
	assert_int_equal(stat(dst, &sb), 0);
	assert_int_equal(rmdir(dst), 0);

	free(b.p);
	unlink(file);
	free(file);
	free(dst);
	th_cleanup(store);
}

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

/* A newer file format or store format is refused with ENG_E_VERSION. */
static void test_newer_version(void **state)
{
	char *store = th_tmpdir();
	struct eng_snapshot_info info, got;
	struct mbuf b;
	eng *e = th_open(store, NULL);

	(void)state;
	th_put(e, "a", "1");
	save_mem(e, &b, &info);
	eng_close(e);
	/* The format version at byte 8, the store's at 12; fix the header's
	 * checksum so only the version is wrong. */
	put_be32(b.p + 8, ENG_SNAPSHOT_VERSION + 1);
	put_be32(b.p + 48, eng_crc32c(0, b.p, 48));
	assert_int_equal(parse_mem(b.p, b.len, 4096, NULL, &got),
	                 ENG_E_VERSION);
	put_be32(b.p + 8, ENG_SNAPSHOT_VERSION);
	put_be32(b.p + 12, CODEC_FORMAT_VERSION + 1);
	put_be32(b.p + 48, eng_crc32c(0, b.p, 48));
	assert_int_equal(parse_mem(b.p, b.len, 4096, NULL, &got),
	                 ENG_E_VERSION);
	free(b.p);
	th_cleanup(store);
}

/* ---------------------------------------------------- writers meanwhile */

struct writer {
	eng *e;
	_Atomic bool stop;
	int n;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char key[32];

	while (!w->stop) {
		snprintf(key, sizeof(key), "w/%04d", w->n % 300);
		assert_int_equal(eng_put(w->e, key, strlen(key), key,
		                         strlen(key), 0, NULL, NULL),
		                 0);
		w->n++;
	}
	return NULL;
}

/*
 * A snapshot read slowly while a writer runs holds exactly the store at
 * its header's revision.
 */
static void test_concurrent_writers(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *dst = sibling(store, "restored");
	struct eng_options opt;
	struct writer w = {0};
	eng_snapshot_stream *s;
	struct mbuf b = {0};
	char buf[997], err[256];
	eng_rev_t rev;
	pthread_t t;
	int64_t n;
	eng *e, *r;

	(void)state;
	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE;
	e = th_open(store, &opt);
	for (int i = 0; i < 200; i++)
		th_put(e, "w/seed", "x");
	w.e = e;
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	while (w.n < 50)
		usleep(1000);
	assert_int_equal(eng_snapshot_stream_open(e, &s), 0);
	rev = eng_snapshot_stream_info(s)->rev;
	while ((n = eng_snapshot_stream_read(s, buf, sizeof(buf))) > 0) {
		mbuf_write(&b, buf, (size_t)n);
		assert_int_equal(eng_snapshot_stream_offset(s), b.len);
		if (b.len % 7 == 0)
			usleep(100);
	}
	assert_int_equal(n, 0);
	assert_int_equal(eng_snapshot_stream_read(s, buf, sizeof(buf)), 0);
	assert_int_equal(eng_snapshot_stream_info(s)->bytes, b.len);
	eng_snapshot_stream_close(s);
	while (w.n < 400)
		usleep(1000);
	w.stop = true;
	pthread_join(t, NULL);
	assert_true(eng_current_rev(e) > rev);

	write_file(file, b.p, b.len);
	assert_int_equal(
	    eng_snapshot_restore(file, dst, NULL, NULL, NULL, err, sizeof(err)),
	    0);
	r = th_open(dst, NULL);
	assert_int_equal(eng_current_rev(r), rev);
	assert_range_equal(e, r, rev);
	assert_range_equal(e, r, rev - 100);
	eng_close(r);
	eng_close(e);
	free(b.p);
	th_rmrf(dst);
	free(dst);
	unlink(file);
	free(file);
	th_cleanup(store);
}

/*
 * A snapshot taken while a physical compaction may still be running: the
 * restored store finishes it and reads the same at and after the
 * compaction revision.
 */
static void test_mid_compaction(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *dst = sibling(store, "restored");
	struct eng_snapshot_info info;
	char err[256], key[16];
	struct eng_options opt;
	struct mbuf b;
	eng *e, *r;

	(void)state;
	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE; /* 3000 fsyncs would be the whole test */
	e = th_open(store, &opt);
	for (int i = 0; i < scaled(3000); i++) {
		snprintf(key, sizeof(key), "c%02d", i % 50);
		th_put(e, key, key);
	}
	assert_int_equal(eng_compact(e, eng_current_rev(e) - 100, false), 0);
	save_mem(e, &b, &info);
	assert_int_equal(info.compact_rev, eng_current_rev(e) - 100);
	write_file(file, b.p, b.len);
	assert_int_equal(
	    eng_snapshot_restore(file, dst, NULL, NULL, NULL, err, sizeof(err)),
	    0);
	r = th_open(dst, NULL);
	assert_store_equal(e, r, info.rev);
	assert_int_equal(eng_compact(r, info.rev, true), 0);
	assert_int_equal(eng_check(r, NULL, NULL), 0);
	assert_range_equal(e, r, info.rev);
	eng_close(r);
	eng_close(e);
	free(b.p);
	th_rmrf(dst);
	free(dst);
	unlink(file);
	free(file);
	th_cleanup(store);
}

/*
 * pread as a FUSE handler would use it with parallel requests: blocks of a
 * group arrive in any order; the bytes assemble into a valid file.  An
 * offset older than the window is refused.
 */
static void test_pread_out_of_order(void **state)
{
	char *store = th_tmpdir(), key[16], *val = malloc(4000);
	struct eng_snapshot_info got;
	struct eng_options opt;
	eng_snapshot_stream *s;
	struct mbuf b = {0};
	enum { BLK = 4096, GRP = 8 };
	static const int perm[GRP] = {3, 0, 7, 1, 6, 2, 5, 4};
	char blk[BLK];
	uint64_t off = 0;
	bool end = false;
	eng *e;

	(void)state;
	eng_options_init(&opt);
	opt.sync = ENG_SYNC_NONE;
	e = th_open(store, &opt);
	memset(val, 'v', 4000);
	for (int i = 0; i < scaled(3000); i++) {
		snprintf(key, sizeof(key), "big%04d", i);
		assert_int_equal(
		    eng_put(e, key, strlen(key), val, 4000, 0, NULL, NULL), 0);
	}
	assert_int_equal(eng_snapshot_stream_open(e, &s), 0);
	while (!end) {
		int64_t n[GRP];

		for (int i = 0; i < GRP; i++) {
			uint64_t o = off + (uint64_t)perm[i] * BLK;

			n[perm[i]] = eng_snapshot_stream_pread(s, blk, BLK, o);
			assert_true(n[perm[i]] >= 0);
			if (n[perm[i]] > 0 &&
			    b.len < o + (uint64_t)n[perm[i]]) {
				/* Doubling: ASan's realloc always copies. */
				if (b.cap < o + BLK) {
					b.cap = 2 * (o + BLK);
					b.p = realloc(b.p, b.cap);
					assert_non_null(b.p);
				}
				b.len = o + (size_t)n[perm[i]];
			}
			memcpy(b.p + o, blk, (size_t)n[perm[i]]);
		}
		for (int i = 0; i < GRP; i++)
			if (n[i] < BLK)
				end = true;
		off += GRP * BLK;
	}
	assert_int_equal(eng_snapshot_stream_info(s)->bytes, b.len);
	assert_int_equal(parse_mem(b.p, b.len, 65536, NULL, &got), 0);
	assert_int_equal(got.records, eng_snapshot_stream_info(s)->records);
	/* Re-reading the last group works; past the window the start is
	 * gone (12 MiB: not under valgrind, whose store is 1.2 MiB). */
	assert_true(eng_snapshot_stream_pread(s, blk, BLK, off - GRP * BLK) >=
	            0);
	if (b.len > 2 * ENG_SNAPSHOT_WINDOW + GRP * BLK)
		assert_int_equal(eng_snapshot_stream_pread(s, blk, BLK, 0),
		                 ENG_E_INVAL);
	else
		assert_true(getenv("RV_UNDER_VALGRIND") != NULL);
	assert_int_equal(eng_snapshot_stream_pread(s, blk, BLK, b.len), 0);
	eng_snapshot_stream_close(s);
	eng_close(e);
	free(b.p);
	free(val);
	th_cleanup(store);
}

/* ----------------------------------------------------------- check/repair */

static void reports(void *arg, const char *msg)
{
	(*(int *)arg)++;
	(void)msg;
}

/* Damage the derived records behind the engine's back: a live key loses
 * its latest record, a leased key its attach record, a stray latest record
 * appears and the live-key counter is wrong. */
static void damage(const char *dir, eng_lease_t lease)
{
	leveldb_options_t *o = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	char *err = NULL, *v;
	leveldb_t *db = leveldb_open(o, dir, &err);
	struct cbuf k = {0};
	size_t n;

	assert_null(err);
	assert_int_equal(codec_latest_key(&k, "ns/k001", 7), 0);
	leveldb_delete(db, wo, k.p, k.len, &err);
	assert_null(err);
	k.len = 0;
	assert_int_equal(codec_attach_key(&k, lease, "lease/a", 7), 0);
	leveldb_delete(db, wo, k.p, k.len, &err);
	assert_null(err);
	k.len = 0;
	assert_int_equal(codec_latest_key(&k, "ghost", 5), 0);
	leveldb_put(db, wo, k.p, k.len, "not a record", 12, &err);
	assert_null(err);
	v = leveldb_get(db, ro, META_STATE, strlen(META_STATE), &n, &err);
	assert_non_null(v);
	assert_int_equal(n, 16);
	codec_put_be64(v + 8, 999);
	leveldb_put(db, wo, META_STATE, strlen(META_STATE), v, 16, &err);
	assert_null(err);
	leveldb_free(v);
	cbuf_free(&k);
	leveldb_close(db);
	leveldb_readoptions_destroy(ro);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(o);
}

static void test_check_repair(void **state)
{
	char *store = th_tmpdir(), *file = sibling(store, "snap"),
	     *ref = sibling(store, "ref");
	struct eng_repair_stats st;
	struct eng_snapshot_info info;
	struct eng_options ro;
	eng_lease_t l1, l2;
	char err[256];
	int n = 0;
	eng *e = th_open(store, NULL), *r;

	(void)state;
	populate(e, &l1, &l2);
	assert_int_equal(eng_check(e, reports, &n), 0);
	assert_int_equal(n, 0);
	{
		struct mbuf b;

		save_mem(e, &b, &info);
		write_file(file, b.p, b.len);
		free(b.p);
	}
	/* Repair refuses a store in use. */
	assert_int_equal(eng_repair(store, NULL, NULL, NULL, NULL, &st),
	                 ENG_E_LOCKED);
	eng_close(e);

	damage(store, l1);
	eng_options_init(&ro);
	ro.read_only = true;
	ro.create = false;
	e = th_open(store, &ro);
	n = 0;
	assert_int_equal(eng_check(e, reports, &n), ENG_E_CORRUPT);
	assert_true(n >= 2);
	eng_close(e);

	assert_int_equal(eng_repair(store, NULL, NULL, NULL, NULL, &st), 0);
	assert_int_equal(st.keys_before, 999);
	assert_int_equal(st.keys_after, info.keys);
	assert_int_equal(st.rev_after, info.rev);
	assert_int_equal(st.attach_written, 3);
	assert_int_equal(st.names_written, 1);
	assert_int_equal(st.undecodable, 0);

	/* Repaired: checks clean and equals the backup taken before. */
	assert_int_equal(
	    eng_snapshot_restore(file, ref, NULL, NULL, NULL, err, sizeof(err)),
	    0);
	e = th_open(store, NULL);
	r = th_open(ref, &ro);
	n = 0;
	assert_int_equal(eng_check(e, reports, &n), 0);
	assert_int_equal(n, 0);
	assert_store_equal(r, e, info.rev);

	/* Defrag keeps everything and reports sizes. */
	uint64_t before = 0, after = 0;
	assert_int_equal(eng_defrag(e, NULL, NULL, &before, &after), 0);
	assert_true(before > 0 && after > 0);
	assert_int_equal(eng_check(e, NULL, NULL), 0);
	assert_store_equal(r, e, info.rev);
	eng_close(r);
	eng_close(e);

	/* Not a store at all. */
	assert_int_equal(eng_repair(file, NULL, NULL, NULL, NULL, &st),
	                 ENG_E_NOT_STORE);
	th_rmrf(ref);
	free(ref);
	unlink(file);
	free(file);
	th_cleanup(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_chunking),
	    cmocka_unit_test(test_corrupt_every_byte),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_newer_version),
	    cmocka_unit_test(test_concurrent_writers),
	    cmocka_unit_test(test_mid_compaction),
	    cmocka_unit_test(test_pread_out_of_order),
	    cmocka_unit_test(test_check_repair),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
