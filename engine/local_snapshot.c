/*
 * local_snapshot.c — backups of a local store: the snapshot stream (every
 * LevelDB record read through one LevelDB snapshot, framed as snapshot.h
 * describes) and the offline restore into a new directory.
 *
 * Why every record and not a logical dump: the copy is then exact — the
 * same revisions, history (from the compaction revision), log, leases and
 * counters — with no code that could rebuild them differently from the
 * commit path, and it costs one sequential scan.  The price is that the
 * file is tied to the store format, which its header records (a newer one
 * is rejected).
 *
 * Invariants: one stream reads one LevelDB snapshot, and Mstate is read
 * through it, so the header's revision is exactly that of the records (a
 * commit writes its records and Mstate in one batch).  A restore writes
 * only into a directory it found empty or created, and removes what it
 * wrote on any failure; the restored store is checked before success.
 */
#include "local_int.h"
#include "snapshot_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESTORE_BATCH_BYTES (4u << 20)
#define RESTORE_CHUNK       (1u << 20)

enum st_phase { PH_HDR, PH_BODY, PH_END, PH_DONE };

struct eng_snapshot_stream {
	struct local *l;
	const leveldb_snapshot_t *ls;
	leveldb_readoptions_t *ro;
	leveldb_iterator_t *it;
	enum st_phase phase;
	struct cbuf pend; /* bytes produced but not yet read */
	size_t pos;       /* read position in pend */
	uint32_t crc;     /* of everything before the trailer */
	uint64_t offset;
	/* pread: the last bytes read, [win_off, offset), for requests that
	 * arrive out of order. */
	struct cbuf win;
	uint64_t win_off;
	struct eng_snapshot_info info;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- stream */

void eng_snapshot_stream_close(eng_snapshot_stream *s)
{
	if (!s)
		return;
	if (s->it)
		leveldb_iter_destroy(s->it);
	if (s->ro)
		leveldb_readoptions_destroy(s->ro);
	if (s->ls)
		leveldb_release_snapshot(s->l->db, s->ls);
	cbuf_free(&s->pend);
	cbuf_free(&s->win);
	free(s);
}

static int read_store_version(struct local *l, leveldb_readoptions_t *ro,
                              uint32_t *out)
{
	char *err = NULL, *p;
	size_t n;

	p = leveldb_get(l->db, ro, META_MAGIC, strlen(META_MAGIC), &n, &err);
	if (err)
		return local_ldb_err(l, err, "snapshot");
	if (!p)
		return ENG_E_CORRUPT;
	*out = n >= 4 ? codec_get_be32(p + n - 4) : 0;
	leveldb_free(p);
	return *out ? 0 : ENG_E_CORRUPT;
}

int eng_snapshot_stream_open(eng *e, eng_snapshot_stream **out)
{
	struct local *l = local_from_eng(e);
	struct eng_snapshot_stream *s;
	char hdr[ENG_SNAPSHOT_HDR_LEN];
	int rc;

	if (!l)
		return ENG_E_INVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return ENG_E_NOMEM;
	s->l = l;
	s->ls = leveldb_create_snapshot(l->db);
	s->ro = leveldb_readoptions_create();
	if (!s->ls || !s->ro) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	leveldb_readoptions_set_snapshot(s->ro, s->ls);
	/* A backup reads everything once: don't evict the hot blocks. */
	leveldb_readoptions_set_fill_cache(s->ro, 0);
	s->info.format_version = ENG_SNAPSHOT_VERSION;
	rc = read_store_version(l, s->ro, &s->info.store_version);
	if (!rc)
		rc = local_meta_get(l, s->ro, META_STATE, &s->info.rev,
		                    &s->info.keys);
	if (!rc)
		rc = local_meta_get(l, s->ro, META_COMPACT,
		                    &s->info.compact_rev, NULL);
	if (rc)
		goto out;
	s->info.created_ns = eng_now_real_ns();
	s->it = leveldb_create_iterator(l->db, s->ro);
	if (!s->it) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	leveldb_iter_seek_to_first(s->it);
	snapshot_encode_header(&s->info, hdr);
	rc = cbuf_add(&s->pend, hdr, sizeof(hdr));
	if (rc)
		goto out;
	s->crc = eng_crc32c(0, hdr, sizeof(hdr));
	s->phase = PH_BODY;
	*out = s;
	return 0;
out:
	eng_snapshot_stream_close(s);
	return rc;
}

const struct eng_snapshot_info *
eng_snapshot_stream_info(const eng_snapshot_stream *s)
{
	return &s->info;
}

uint64_t eng_snapshot_stream_offset(const eng_snapshot_stream *s)
{
	return s->offset;
}

/* Produce the next unit (a record, or the end) into s->pend. */
static int stream_fill(struct eng_snapshot_stream *s)
{
	char lens[8];
	char *err = NULL;
	int rc;

	s->pend.len = 0;
	s->pos = 0;
	if (s->phase == PH_END) {
		char trl[ENG_SNAPSHOT_TRL_LEN];

		snapshot_encode_trailer(s->info.records, s->crc, trl);
		s->info.crc = s->crc;
		s->phase = PH_DONE;
		return cbuf_add(&s->pend, trl, sizeof(trl));
	}
	if (!leveldb_iter_valid(s->it)) {
		leveldb_iter_get_error(s->it, &err);
		if (err)
			return local_ldb_err(s->l, err, "snapshot scan");
		snapshot_encode_lens(0, 0, lens);
		s->phase = PH_END;
	} else {
		size_t kn, vn;
		const char *k = leveldb_iter_key(s->it, &kn);
		const char *v = leveldb_iter_value(s->it, &vn);

		if (kn == 0 || kn > ENG_SNAPSHOT_FIELD_MAX ||
		    vn > ENG_SNAPSHOT_FIELD_MAX) {
			eng_logf(&s->l->base.opt, ENG_LOG_ERR,
			         "snapshot: a record of %zu+%zu bytes cannot "
			         "be written",
			         kn, vn);
			return ENG_E_CORRUPT;
		}
		snapshot_encode_lens((uint32_t)kn, (uint32_t)vn, lens);
		rc = cbuf_add(&s->pend, lens, 8);
		if (!rc)
			rc = cbuf_add(&s->pend, k, kn);
		if (!rc)
			rc = cbuf_add(&s->pend, v, vn);
		if (rc)
			return rc;
		s->info.records++;
		s->crc = eng_crc32c(s->crc, s->pend.p, s->pend.len);
		leveldb_iter_next(s->it);
		return 0;
	}
	s->crc = eng_crc32c(s->crc, lens, 8);
	return cbuf_add(&s->pend, lens, 8);
}

int64_t eng_snapshot_stream_read(eng_snapshot_stream *s, void *buf, size_t len)
{
	char *out = buf;
	size_t done = 0;

	while (done < len) {
		size_t avail = s->pend.len - s->pos;
		int rc;

		if (!avail) {
			if (s->phase == PH_DONE)
				break;
			rc = stream_fill(s);
			if (rc)
				return rc;
			continue;
		}
		if (avail > len - done)
			avail = len - done;
		memcpy(out + done, s->pend.p + s->pos, avail);
		s->pos += avail;
		done += avail;
	}
	s->offset += done;
	if (s->phase == PH_DONE && s->pos == s->pend.len)
		s->info.bytes = s->offset;
	return (int64_t)done;
}

int64_t eng_snapshot_stream_pread(eng_snapshot_stream *s, void *buf, size_t len,
                                  uint64_t off)
{
	char chunk[64 << 10];
	size_t have;

	if (off < s->win_off)
		return ENG_E_INVAL;
	/* Produce up to the end of the request, keeping it in the window. */
	while (s->offset < off + len && s->phase != PH_DONE) {
		int64_t n = eng_snapshot_stream_read(s, chunk, sizeof(chunk));

		if (n < 0)
			return n;
		if (cbuf_add(&s->win, chunk, (size_t)n))
			return ENG_E_NOMEM;
		if (n == 0)
			break;
	}
	if (s->phase == PH_DONE && s->pos == s->pend.len)
		s->info.bytes = s->offset;
	have = off >= s->offset ? 0 : (size_t)(s->offset - off);
	if (have > len)
		have = len;
	if (have)
		memcpy(buf, s->win.p + (off - s->win_off), have);
	/* Forget what is older than the window, in large steps. */
	if (s->win.len > 2 * ENG_SNAPSHOT_WINDOW) {
		size_t drop = s->win.len - ENG_SNAPSHOT_WINDOW;

		memmove(s->win.p, s->win.p + drop, ENG_SNAPSHOT_WINDOW);
		s->win.len = ENG_SNAPSHOT_WINDOW;
		s->win_off += drop;
	}
	return (int64_t)have;
}

int eng_snapshot_save(eng *e, int (*write)(void *arg, const void *p, size_t n),
                      void *arg, struct eng_snapshot_info *info)
{
	eng_snapshot_stream *s = NULL;
	char *buf = malloc(RESTORE_CHUNK);
	int64_t n;
	int rc;

	if (!buf)
		return ENG_E_NOMEM;
	rc = eng_snapshot_stream_open(e, &s);
	if (rc)
		goto out;
	while ((n = eng_snapshot_stream_read(s, buf, RESTORE_CHUNK)) > 0) {
		rc = write(arg, buf, (size_t)n);
		if (rc)
			goto out;
	}
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	if (info)
		*info = s->info;
out:
	eng_snapshot_stream_close(s);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------ file status */

/* Feed a whole file to r; progress in bytes. */
static int feed_file(eng_snapshot_reader *r, const char *path,
                     eng_snapshot_rec_fn rec, void *arg,
                     eng_progress_fn progress, void *parg, char *err,
                     size_t errlen)
{
	char *buf = malloc(RESTORE_CHUNK);
	uint64_t total = 0, done = 0;
	struct stat st;
	int fd = -1, rc = 0;
	ssize_t n;

	if (!buf)
		return ENG_E_NOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		rc = ENG_E_IO;
		goto out;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		total = (uint64_t)st.st_size;
	while ((n = read(fd, buf, RESTORE_CHUNK)) > 0) {
		rc = eng_snapshot_reader_feed(r, buf, (size_t)n, rec, arg);
		if (rc) {
			set_err(err, errlen, "%s: %s", path,
			        eng_snapshot_reader_error(r));
			goto out;
		}
		done += (uint64_t)n;
		if (progress)
			progress(parg, done, total);
	}
	if (n < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		rc = ENG_E_IO;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int eng_snapshot_file_status(const char *path, struct eng_snapshot_info *info,
                             eng_progress_fn progress, void *parg, char *err,
                             size_t errlen)
{
	eng_snapshot_reader *r;
	int rc = eng_snapshot_reader_new(&r);

	if (rc)
		return rc;
	rc = feed_file(r, path, NULL, NULL, progress, parg, err, errlen);
	if (!rc) {
		rc = eng_snapshot_reader_finish(r, info);
		if (rc)
			set_err(err, errlen, "%s: %s", path,
			        eng_snapshot_reader_error(r));
	}
	eng_snapshot_reader_free(r);
	return rc;
}

/* --------------------------------------------------------------- restore */

struct restore {
	leveldb_t *db;
	leveldb_writeoptions_t *wo;
	leveldb_writebatch_t *wb;
	size_t batch_bytes;
	bool seen_magic, seen_state;
	int64_t state_rev;
	char *err;
	size_t errlen;
};

static int restore_flush(struct restore *rs, bool sync)
{
	char *err = NULL;

	leveldb_writeoptions_set_sync(rs->wo, sync);
	leveldb_write(rs->db, rs->wo, rs->wb, &err);
	leveldb_writebatch_clear(rs->wb);
	rs->batch_bytes = 0;
	if (err) {
		set_err(rs->err, rs->errlen, "writing the store: %s", err);
		leveldb_free(err);
		return ENG_E_IO;
	}
	return 0;
}

static int restore_rec(void *arg, const void *key, size_t key_len,
                       const void *val, size_t val_len)
{
	struct restore *rs = arg;

	if (key_len == strlen(META_MAGIC) && !memcmp(key, META_MAGIC, key_len))
		rs->seen_magic = true;
	if (key_len == strlen(META_STATE) &&
	    !memcmp(key, META_STATE, key_len) && val_len >= 8) {
		rs->seen_state = true;
		rs->state_rev = (int64_t)codec_get_be64(val);
	}
	leveldb_writebatch_put(rs->wb, key, key_len, val, val_len);
	rs->batch_bytes += key_len + val_len;
	if (rs->batch_bytes >= RESTORE_BATCH_BYTES)
		return restore_flush(rs, false);
	return 0;
}

/* 1 if dir has entries, 0 if empty, -1 (errno set) on error. */
static int dir_nonempty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n = 1;
	closedir(d);
	return n;
}

/* Remove what a failed restore wrote (LevelDB's files only). */
static void restore_undo(const char *dir, bool created)
{
	leveldb_options_t *o = leveldb_options_create();
	char *err = NULL;

	leveldb_destroy_db(o, dir, &err);
	leveldb_free(err);
	leveldb_options_destroy(o);
	/* DestroyDB removes the directory too: give back an empty one. */
	if (created)
		rmdir(dir);
	else
		(void)mkdir(dir, 0700);
}

static void check_report(void *arg, const char *msg)
{
	struct restore *rs = arg;

	if (rs->err && rs->errlen && !rs->err[0])
		set_err(rs->err, rs->errlen,
		        "restored store fails its check: %s", msg);
}

/* Open the restored store as the daemon would and check its indexes. */
static int restore_verify(const char *dir, struct restore *rs)
{
	struct eng_options opt;
	eng *e = NULL;
	int rc;

	eng_options_init(&opt);
	opt.create = false;
	opt.read_only = true;
	rc = eng_open(dir, &opt, &e);
	if (rc) {
		set_err(rs->err, rs->errlen, "restored store does not open: %s",
		        eng_strerror(rc));
		return rc;
	}
	if (rs->err && rs->errlen)
		rs->err[0] = 0;
	rc = eng_check(e, check_report, rs);
	eng_close(e);
	return rc;
}

int eng_snapshot_restore(const char *path, const char *dir,
                         eng_progress_fn progress, void *parg,
                         struct eng_snapshot_info *info, char *err,
                         size_t errlen)
{
	struct restore rs = {.err = err, .errlen = errlen};
	eng_snapshot_reader *r = NULL;
	leveldb_options_t *o = NULL;
	leveldb_filterpolicy_t *bloom = NULL;
	struct eng_snapshot_info got;
	bool created = false, wrote = false;
	char *lerr = NULL;
	int rc;

	set_err(err, errlen, "no error");
	rc = dir_nonempty(dir);
	if (rc > 0) {
		set_err(err, errlen,
		        "%s exists and is not empty: restore only into a new "
		        "directory",
		        dir);
		return ENG_E_INVAL;
	}
	if (rc < 0) {
		if (errno != ENOENT || mkdir(dir, 0700) != 0) {
			set_err(err, errlen, "%s: %s", dir, strerror(errno));
			return ENG_E_IO;
		}
		created = true;
	}
	rc = eng_snapshot_reader_new(&r);
	if (rc)
		goto out;
	o = leveldb_options_create();
	bloom = leveldb_filterpolicy_create_bloom(10);
	leveldb_options_set_create_if_missing(o, 1);
	leveldb_options_set_error_if_exists(o, 1);
	leveldb_options_set_filter_policy(o, bloom);
	leveldb_options_set_write_buffer_size(o, 8u << 20);
	rs.db = leveldb_open(o, dir, &lerr);
	if (lerr) {
		set_err(err, errlen, "%s: %s", dir, lerr);
		leveldb_free(lerr);
		rs.db = NULL;
		rc = ENG_E_IO;
		goto out;
	}
	wrote = true;
	rs.wo = leveldb_writeoptions_create();
	rs.wb = leveldb_writebatch_create();
	rc = feed_file(r, path, restore_rec, &rs, progress, parg, err, errlen);
	if (!rc) {
		rc = eng_snapshot_reader_finish(r, &got);
		if (rc)
			set_err(err, errlen, "%s: %s", path,
			        eng_snapshot_reader_error(r));
	}
	if (!rc &&
	    (!rs.seen_magic || !rs.seen_state || rs.state_rev != got.rev)) {
		set_err(err, errlen,
		        "%s: the records do not form a store (magic %s, "
		        "state %s, revision %lld for %lld)",
		        path, rs.seen_magic ? "present" : "missing",
		        rs.seen_state ? "present" : "missing",
		        (long long)rs.state_rev, (long long)got.rev);
		rc = ENG_E_CORRUPT;
	}
	if (!rc)
		rc = restore_flush(&rs, true);
	/* Push everything to the deepest level, as a new store's meta
	 * records are (local_open.c), so compaction can shrink it later. */
	if (!rc)
		leveldb_compact_range(rs.db, NULL, 0, NULL, 0);
	if (rs.wb)
		leveldb_writebatch_destroy(rs.wb);
	if (rs.wo)
		leveldb_writeoptions_destroy(rs.wo);
	leveldb_close(rs.db);
	rs.db = NULL;
	if (!rc)
		rc = restore_verify(dir, &rs);
	if (!rc && info)
		*info = got;
out:
	if (rc && wrote)
		restore_undo(dir, created);
	else if (rc && created)
		rmdir(dir);
	if (o)
		leveldb_options_destroy(o);
	if (bloom)
		leveldb_filterpolicy_destroy(bloom);
	eng_snapshot_reader_free(r);
	return rc;
}
