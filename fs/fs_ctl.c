/*
 * fs_ctl.c — the store-wide control files of the mount root
 * (docs/reference.md, "Control files"):
 *
 *   @compact   reads the compaction revision; writing N compacts at N
 *              (N > the current revision or not a number: EINVAL; N at or
 *              below the compaction revision: ENODATA, as any read of a
 *              compacted revision).  The write takes effect at close, as
 *              every control file's.
 *   @stats     the engine's counters in the Prometheus text format (0.0.4):
 *              gauges for the store and counters plus latency histograms
 *              for the operations, all from one eng_stats_get().
 *   @snapshot  a stream: each open starts an engine snapshot stream (one
 *              revision, pinned while writers go on) and reads are served
 *              from it by offset, so parallel direct-I/O reads of one
 *              read(2) may arrive out of order within the engine's window.
 *
 * Nothing here keeps state: a content is made at open, a stream belongs to
 * its file handle (fs_file.c closes it at release).
 */
#include "fs_ctl.h"
#include "fs_int.h"
#include "fs_special.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fs_ctl_compact_read(struct fs *fs, const char *dir, size_t dir_len,
                        eng_rev_t rev, char **buf, size_t *len)
{
	char *b = malloc(32);

	(void)dir;
	(void)dir_len;
	(void)rev;
	if (!b)
		return -ENOMEM;
	*len = (size_t)snprintf(b, 32, "%lld\n",
	                        (long long)eng_compact_rev(fs->e));
	*buf = b;
	return 0;
}

int fs_ctl_compact_write(struct fs *fs, const char *buf, size_t len)
{
	int64_t n;
	int rc;

	if (fs_parse_written_number(buf, len, &n) < 0)
		return -EINVAL;
	rc = eng_compact(fs->e, (eng_rev_t)n, false);
	if (rc == ENG_E_FUTURE_REV)
		return -EINVAL;
	if (rc < 0) {
		fs_logf(ENG_LOG_WARN, "@compact %lld: %s", (long long)n,
		        eng_strerror(rc));
		return -fs_errno(rc);
	}
	fs_logf(ENG_LOG_INFO, "@compact: compacted at %lld", (long long)n);
	return 0;
}

/* A growing text buffer; on ENOMEM it stays failed and the caller says so. */
struct sbuf {
	char *b;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(sb->b + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->failed = true;
			return;
		}
		if ((size_t)n < sb->cap - sb->len) {
			sb->len += (size_t)n;
			return;
		}
		size_t cap = sb->cap ? sb->cap * 2 : 4096;
		while (cap - sb->len <= (size_t)n)
			cap *= 2;
		char *nb = realloc(sb->b, cap);
		if (!nb) {
			sb->failed = true;
			return;
		}
		sb->b = nb;
		sb->cap = cap;
	}
}

static void metric(struct sbuf *sb, const char *name, const char *type,
                   const char *help, double v)
{
	sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help,
	          name, type, name, v);
}

static void histograms(struct sbuf *sb, const struct eng_stats *st)
{
	static const char *const names[] = {"range", "txn", "compact"};
	const struct eng_op_stats *ops[] = {&st->range, &st->txn, &st->compact};
	const char *h = "revfs_op_duration_seconds";
	const char *c = "revfs_op_errors_total";

	sb_printf(sb, "# HELP %s Engine operation latency.\n", h);
	sb_printf(sb, "# TYPE %s histogram\n", h);
	for (size_t i = 0; i < 3; i++) {
		/* bucket b counts latencies < 2^b * 50 us (cumulative) */
		for (int b = 0; b < ENG_LAT_BUCKETS; b++)
			sb_printf(sb, "%s_bucket{op=\"%s\",le=\"%g\"} %llu\n",
			          h, names[i], (double)(1u << b) * 50e-6,
			          (unsigned long long)ops[i]->buckets[b]);
		sb_printf(sb, "%s_bucket{op=\"%s\",le=\"+Inf\"} %llu\n", h,
		          names[i], (unsigned long long)ops[i]->count);
		sb_printf(sb, "%s_sum{op=\"%s\"} %.6f\n", h, names[i],
		          (double)ops[i]->sum_us / 1e6);
		sb_printf(sb, "%s_count{op=\"%s\"} %llu\n", h, names[i],
		          (unsigned long long)ops[i]->count);
	}
	sb_printf(sb, "# HELP %s Engine operations that failed.\n", c);
	sb_printf(sb, "# TYPE %s counter\n", c);
	for (size_t i = 0; i < 3; i++)
		sb_printf(sb, "%s{op=\"%s\"} %llu\n", c, names[i],
		          (unsigned long long)ops[i]->errors);
}

int fs_ctl_stats_read(struct fs *fs, const char *dir, size_t dir_len,
                      eng_rev_t rev, char **buf, size_t *len)
{
	struct eng_stats st;
	struct sbuf sb = {0};
	int rc;

	(void)dir;
	(void)dir_len;
	(void)rev;
	memset(&st, 0, sizeof(st));
	rc = eng_stats_get(fs->e, &st);
	if (rc < 0)
		return -fs_errno(rc);
	metric(&sb, "revfs_revision", "gauge", "The store's revision.",
	       (double)st.rev);
	metric(&sb, "revfs_compact_revision", "gauge",
	       "The compaction revision.", (double)st.compact_rev);
	metric(&sb, "revfs_keys", "gauge", "Live keys.", (double)st.keys);
	metric(&sb, "revfs_db_bytes", "gauge", "Size of the store's files.",
	       (double)st.db_bytes);
	metric(&sb, "revfs_quota_bytes", "gauge",
	       "The store's quota (0: none).", (double)st.quota_bytes);
	sb_printf(&sb,
	          "# HELP revfs_alarm Raised alarms (1: raised).\n"
	          "# TYPE revfs_alarm gauge\n"
	          "revfs_alarm{type=\"NOSPACE\"} %d\n",
	          st.alarm_nospace ? 1 : 0);
	metric(&sb, "revfs_leases", "gauge", "Live leases.", (double)st.leases);
	metric(&sb, "revfs_watchers", "gauge", "Open engine watches.",
	       (double)st.watchers);
	metric(&sb, "revfs_commits_total", "counter",
	       "Group-commit batches written.", (double)st.commits);
	metric(&sb, "revfs_fsyncs_total", "counter", "fsyncs of the log.",
	       (double)st.fsyncs);
	histograms(&sb, &st);
	if (sb.failed) {
		free(sb.b);
		return -ENOMEM;
	}
	*buf = sb.b;
	*len = sb.len;
	return 0;
}

bool fs_ctl_is_snapshot(int idx)
{
	const struct fs_special *sp = fs_special_get(idx);

	return sp && strcmp(sp->name, "@snapshot") == 0;
}

int fs_ctl_snapshot_open(struct fs *fs, eng_snapshot_stream **out)
{
	int rc = eng_snapshot_stream_open(fs->e, out);

	if (rc < 0) {
		fs_logf(ENG_LOG_WARN, "@snapshot: %s", eng_strerror(rc));
		return rc == ENG_E_INVAL ? -EOPNOTSUPP : -fs_errno(rc);
	}
	return 0;
}

ssize_t fs_ctl_snapshot_read(eng_snapshot_stream *s, char *buf, size_t size,
                             off_t off)
{
	int64_t n;

	if (off < 0)
		return -EINVAL;
	n = eng_snapshot_stream_pread(s, buf, size, (uint64_t)off);
	if (n < 0) {
		/* INVAL: a seek back past the window; the reader reopens. */
		fs_logf(ENG_LOG_WARN, "@snapshot read at %lld: %s",
		        (long long)off, eng_strerror((int)n));
		return n == ENG_E_INVAL ? -ESPIPE : -fs_errno((int)n);
	}
	return (ssize_t)n;
}
