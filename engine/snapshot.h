/*
 * snapshot.h — backups of a whole store, and the offline maintenance calls
 * behind revfsctl(1).  An addition to engine.h's interface, kept apart
 * because only the daemon's `@snapshot` file and the tool need it.
 *
 * A snapshot file is a consistent copy of every record of a local store at
 * one revision, taken through one LevelDB snapshot while writers go on.
 * Its format (docs/operations.md has the byte layout):
 *
 *   header   "REVFSNAP", format version (be32), store format version
 *            (be32), revision, compaction revision, live keys, creation
 *            time in ns (be64 each), CRC32C of the header so far (be32)
 *   body     records: key length (be32), value length (be32), key, value;
 *            in LevelDB key order; a record with both lengths 0 ends it
 *   trailer  "REVFSEND", record count (be64), CRC32C (be32) of the header
 *            and the body (through the end record)
 *
 * A reader rejects a file whose magic, version, lengths, record count or
 * checksums do not match, or that ends early or has bytes after the
 * trailer, with a message that says which.  Same conventions as engine.h:
 * 0 or a negative ENG_E_* code; nothing here prints or exits.
 */
#ifndef REVFS_SNAPSHOT_H
#define REVFS_SNAPSHOT_H

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ENG_SNAPSHOT_MAGIC     "REVFSNAP"
#define ENG_SNAPSHOT_END_MAGIC "REVFSEND"
#define ENG_SNAPSHOT_VERSION   1
#define ENG_SNAPSHOT_HDR_LEN   52
#define ENG_SNAPSHOT_TRL_LEN   20
/* No record key or value is longer (the reader rejects the file). */
#define ENG_SNAPSHOT_FIELD_MAX (64u << 20)

struct eng_snapshot_info {
	uint32_t format_version; /* of the snapshot file */
	uint32_t store_version;  /* of the records inside (codec.h) */
	eng_rev_t rev;           /* the store's revision in the snapshot */
	eng_rev_t compact_rev;
	int64_t keys;       /* live keys at rev */
	int64_t created_ns; /* CLOCK_REALTIME when it was taken */
	/* Known once the whole file was written or read: */
	uint64_t records; /* LevelDB records in the body */
	uint64_t bytes;   /* the file's length */
	uint32_t crc;     /* the trailer's CRC32C */
};

/* CRC32C (Castagnoli) of p[0..n) continuing from crc (0 to start). */
uint32_t eng_crc32c(uint32_t crc, const void *p, size_t n);

/* --------------------------------------------------------------- writing */

typedef struct eng_snapshot_stream eng_snapshot_stream;

/*
 * Start a snapshot of the store: pins one LevelDB snapshot (so the bytes
 * are those of one revision, whatever writers and compaction do meanwhile)
 * and produces the file sequentially.  Made for a FUSE read handler: open
 * it at open(2), call read for each read(2) at the current offset (the
 * bytes of one stream never change, so a reader that needs an earlier
 * offset opens a new stream), close it at release.  Close every stream
 * before eng_close().  Cost: O(1) memory beyond one record; the pinned
 * snapshot keeps compacted data on disk until close.
 * Errors: ENG_E_INVAL (not a local store: a remote backend has no
 * snapshot), ENG_E_NOMEM, ENG_E_IO, ENG_E_CORRUPT.
 */
int eng_snapshot_stream_open(eng *e, eng_snapshot_stream **out);
/* The header's fields (records/bytes/crc filled once the end was read). */
const struct eng_snapshot_info *
eng_snapshot_stream_info(const eng_snapshot_stream *s);
/* Bytes produced so far (the offset of the next read). */
uint64_t eng_snapshot_stream_offset(const eng_snapshot_stream *s);
/*
 * Copy the next (up to) len bytes (len > 0) into buf.  Returns the count
 * (< len only at the end), 0 at the end, or a negative ENG_E_* code
 * (ENG_E_IO).  The length is not known before the end: a FUSE file serving
 * it reports size 0 and is opened with direct_io, so readers read to EOF.
 * Not thread-safe per stream: one reader at a time.
 */
int64_t eng_snapshot_stream_read(eng_snapshot_stream *s, void *buf, size_t len);
/*
 * The same bytes at an offset, for FUSE handlers that may see a file's
 * reads out of order (parallel direct-I/O requests): the stream keeps the
 * last ENG_SNAPSHOT_WINDOW bytes (at least) it produced, so a request may
 * start anywhere from that window on.  Returns the count (0 at or past the
 * end), ENG_E_INVAL for an offset older than the window (open a new
 * stream), or another negative ENG_E_* code.  Do not mix with
 * eng_snapshot_stream_read on one stream.  One caller at a time.
 */
#define ENG_SNAPSHOT_WINDOW (4u << 20)
int64_t eng_snapshot_stream_pread(eng_snapshot_stream *s, void *buf, size_t len,
                                  uint64_t off);
void eng_snapshot_stream_close(eng_snapshot_stream *s); /* NULL: no-op */

/*
 * The whole snapshot through write (which returns 0, or non-zero to stop:
 * that value is returned).  *info (may be NULL) gets the description.
 */
int eng_snapshot_save(eng *e, int (*write)(void *arg, const void *p, size_t n),
                      void *arg, struct eng_snapshot_info *info);

/* --------------------------------------------------------------- reading */

typedef struct eng_snapshot_reader eng_snapshot_reader;

/* A record of the body: the bytes are valid only during the call; return
 * non-zero to stop (that value is returned by feed). */
typedef int (*eng_snapshot_rec_fn)(void *arg, const void *key, size_t key_len,
                                   const void *val, size_t val_len);

/*
 * A push parser of the file format, independent of any store: feed it the
 * file in chunks of any size.  rec (may be NULL) gets each record as soon
 * as it is complete; the checksum is only known at the end, so a caller
 * that writes records must undo them if finish fails.
 * feed/finish errors: ENG_E_CORRUPT (bad magic, checksum, length, count,
 * truncation, trailing bytes), ENG_E_VERSION (a newer format), ENG_E_NOMEM;
 * eng_snapshot_reader_error() then says what exactly.  After an error every
 * later call returns it again.
 */
int eng_snapshot_reader_new(eng_snapshot_reader **out);
int eng_snapshot_reader_feed(eng_snapshot_reader *r, const void *p, size_t n,
                             eng_snapshot_rec_fn rec, void *arg);
/* The header once it was read (NULL before). */
const struct eng_snapshot_info *
eng_snapshot_reader_header(const eng_snapshot_reader *r);
/* Check that the file ended exactly after its trailer; fill *info. */
int eng_snapshot_reader_finish(eng_snapshot_reader *r,
                               struct eng_snapshot_info *info);
const char *eng_snapshot_reader_error(const eng_snapshot_reader *r);
void eng_snapshot_reader_free(eng_snapshot_reader *r);

/* ---------------------------------------------------- offline operations */

/*
 * Progress of a long operation: done and total in the operation's unit
 * (bytes, or records; total 0 if unknown).  Called at most every few
 * thousand records.
 */
typedef void (*eng_progress_fn)(void *arg, uint64_t done, uint64_t total);

/*
 * Verify a snapshot file completely (read it to the end).  On an error
 * err[] (errlen > 0) says why.  Errors: as the reader, ENG_E_IO (cannot
 * read the file; err has errno's text).
 */
int eng_snapshot_file_status(const char *path, struct eng_snapshot_info *info,
                             eng_progress_fn progress, void *parg, char *err,
                             size_t errlen);

/*
 * Restore a snapshot file into a NEW store directory `dir` (it must not
 * exist or be empty; its parent must exist).  Writes every record, then
 * opens the result and runs the consistency check (eng_check).  On any
 * error nothing is left behind (the directory is removed if this call
 * created it, else emptied) and err[] says why.  The restored store has
 * the snapshot's keys, revisions, history from its compaction revision and
 * leases (each gets its full TTL when opened, as on every open).
 * Errors: ENG_E_INVAL (dir exists and is not empty), ENG_E_IO, and the
 * reader's errors.
 */
int eng_snapshot_restore(const char *path, const char *dir,
                         eng_progress_fn progress, void *parg,
                         struct eng_snapshot_info *info, char *err,
                         size_t errlen);

/*
 * Verify a local store's indexes against its data (docs/engine.md,
 * "Checking a store"); each problem goes to report (may be NULL).  Reads
 * through one snapshot, so the store may be in use.  Returns 0,
 * ENG_E_CORRUPT (problems were found), ENG_E_INVAL (not a local store) or
 * another error.
 */
int eng_check(eng *e, void (*report)(void *arg, const char *msg), void *arg);
/* eng_check with progress(parg, records read, 0) every 65,536 records and,
 * at the end of a check that ran through, progress(parg, n, n). */
int eng_check_progress(eng *e, void (*report)(void *arg, const char *msg),
                       void *arg, eng_progress_fn progress, void *parg);

struct eng_repair_stats {
	int64_t rev_before, rev_after;   /* Mstate's revision */
	int64_t keys_before, keys_after; /* Mstate's live-key counter */
	int64_t latest_written;          /* `l` records rebuilt */
	int64_t attach_written;          /* `A` records rebuilt */
	int64_t names_written;           /* `N` records rebuilt */
	int64_t derived_removed;         /* `l`/`A`/`N` records deleted first */
	int64_t undecodable;             /* `k` records that do not decode */
	int64_t orphan_leases;           /* live keys naming a missing lease */
};

/*
 * Offline repair of the derived records of the store in `dir` (which must
 * not be open anywhere): rebuilds the latest index `l`, the lease attach
 * index `A`, the lease-name index `N` and the Mstate counters (live keys;
 * the revision is raised to the newest revision found) from the history
 * `k` and the lease records `L`, which are the truth.  It cannot recreate
 * lost history, log (`r`) or lease records, nor decode a damaged record:
 * those are reported.  Progress counts `k` records (the last call, at the
 * end, gives the count as the total).
 * Errors: ENG_E_LOCKED (in use), ENG_E_NOT_STORE, ENG_E_VERSION, ENG_E_IO,
 * ENG_E_CORRUPT (an undecodable history record remains).
 */
int eng_repair(const char *dir, void (*report)(void *arg, const char *msg),
               void *arg, eng_progress_fn progress, void *parg,
               struct eng_repair_stats *st);

/*
 * Compact LevelDB's files over the whole key space (leveldb_compact_range),
 * one record space at a time; progress counts spaces.  *before and *after get
 * the size of the files.  The store may be in use (it is slow, not
 * blocking).  Errors: ENG_E_INVAL (not a local store).
 */
int eng_defrag(eng *e, eng_progress_fn progress, void *parg, uint64_t *before,
               uint64_t *after);

#ifdef __cplusplus
}
#endif
#endif /* REVFS_SNAPSHOT_H */
