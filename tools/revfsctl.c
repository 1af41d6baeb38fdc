/*
 * revfsctl.c — the offline tool for a revfs data directory, like etcdutl:
 *
 *   revfsctl [-w table|json] [-q] [-v] status DIR
 *   revfsctl [-q] [-v] check DIR [--repair]
 *   revfsctl [-q] [-v] defrag DIR
 *   revfsctl [-q] [-v] snapshot save DIR FILE
 *   revfsctl [-q] [-v] snapshot restore FILE DIR
 *   revfsctl [-w table|json] [-q] snapshot status FILE
 *
 * Every command that opens a store needs it unmounted (LevelDB's lock says
 * who has it); a live backup is `cp MOUNT/@snapshot FILE`.  Long commands
 * draw a progress line on stderr when it is a terminal.  Exit codes
 * (docs/revfsctl.1): 0 success, 1 failure, 2 usage, 3 the data is damaged
 * (check found problems, a snapshot file is corrupt, truncated or newer),
 * 4 the store is in use.
 */
#include "engine/engine.h"
#include "engine/snapshot.h"
#include "tools/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REVFSCTL_VERSION "0.1.0"

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_DAMAGED = 3, EX_INUSE = 4 };

static struct {
	bool json;
	bool quiet;
	bool verbose;
} g;

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: revfsctl [-w table|json] [-q] [-v] COMMAND ...\n"
	        "\n"
	        "  status DIR                  revision, compaction revision, "
	        "keys, size, leases\n"
	        "  check DIR [--repair]        verify the indexes against the "
	        "data; --repair\n"
	        "                              rebuilds the derived indexes\n"
	        "  defrag DIR                  compact LevelDB's files; sizes "
	        "before/after\n"
	        "  snapshot save DIR FILE      back up a stopped store\n"
	        "  snapshot restore FILE DIR   restore into a new directory\n"
	        "  snapshot status FILE        verify a snapshot file, show "
	        "its header\n"
	        "\n"
	        "  -w, --write-out=FMT  table (default) or json\n"
	        "  -q, --quiet          no progress line\n"
	        "  -v, --verbose        show the engine's log\n"
	        "  -h, --help, --version\n"
	        "\n"
	        "Exit status: 0 ok, 1 failure, 2 usage, 3 damaged data, 4 "
	        "store in use.\n"
	        "The store must not be mounted; for a live backup use\n"
	        "  cp MOUNTPOINT/@snapshot FILE\n");
}

static void engine_log(void *arg, enum eng_log_level level, const char *msg)
{
	/* The tool says what failed itself; the details on request. */
	(void)arg;
	(void)level;
	if (g.verbose)
		fprintf(stderr, "revfsctl: engine: %s\n", msg);
}

/* The exit status and message for an engine error about DIR. */
static int fail(int rc, const char *what, const char *dir)
{
	switch (rc) {
	case ENG_E_LOCKED:
		fprintf(stderr,
		        "revfsctl: %s: %s is in use by another process "
		        "(mounted?); unmount it first, or back up a live "
		        "store with cp MOUNTPOINT/@snapshot FILE\n",
		        what, dir);
		return EX_INUSE;
	case ENG_E_NOT_STORE:
		fprintf(stderr, "revfsctl: %s: %s is not a revfs store\n", what,
		        dir);
		return EX_FAIL;
	case ENG_E_VERSION:
		fprintf(stderr,
		        "revfsctl: %s: %s was written by a newer revfs\n", what,
		        dir);
		return EX_DAMAGED;
	case ENG_E_CORRUPT:
		fprintf(stderr, "revfsctl: %s: %s: %s\n", what, dir,
		        eng_strerror(rc));
		return EX_DAMAGED;
	default:
		fprintf(stderr, "revfsctl: %s: %s: %s\n", what, dir,
		        eng_strerror(rc));
		return EX_FAIL;
	}
}

static int open_store(const char *dir, bool read_only, eng **e)
{
	struct eng_options opt;

	eng_options_init(&opt);
	opt.create = false;
	opt.read_only = read_only;
	opt.log = engine_log;
	return eng_open(dir, &opt, e);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void human_size(uint64_t n, char *out, size_t len)
{
	if (n >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", (double)n / (1ull << 30));
	else if (n >= (1ull << 20))
		snprintf(out, len, "%.1f MiB", (double)n / (1ull << 20));
	else if (n >= 1024)
		snprintf(out, len, "%.1f KiB", (double)n / 1024);
	else
		snprintf(out, len, "%llu B", (unsigned long long)n);
}

/* ---------------------------------------------------------------- status */

static int cmd_status(const char *dir)
{
	struct eng_lease_info *ls = NULL;
	struct eng_stats st;
	size_t nl = 0;
	char sz[32];
	eng *e;
	int rc;

	rc = open_store(dir, true, &e);
	if (rc)
		return fail(rc, "status", dir);
	rc = eng_stats_get(e, &st);
	if (!rc)
		rc = eng_lease_list(e, &ls, &nl);
	if (rc) {
		eng_close(e);
		return fail(rc, "status", dir);
	}
	if (g.json) {
		printf("{\"revision\":%lld,\"compact_revision\":%lld,"
		       "\"keys\":%lld,\"db_bytes\":%llu,\"quota_bytes\":%llu,"
		       "\"leases\":[",
		       (long long)st.rev, (long long)st.compact_rev,
		       (long long)st.keys, (unsigned long long)st.db_bytes,
		       (unsigned long long)st.quota_bytes);
		for (size_t i = 0; i < nl; i++) {
			printf("%s{\"id\":%lld,\"name\":", i ? "," : "",
			       (long long)ls[i].id);
			json_str(ls[i].name);
			printf(",\"ttl\":%lld}", (long long)ls[i].granted_ttl);
		}
		printf("]}\n");
	} else {
		human_size(st.db_bytes, sz, sizeof(sz));
		printf("revision:            %lld\n"
		       "compaction revision: %lld\n"
		       "keys:                %lld\n"
		       "size:                %s (%llu bytes)\n"
		       "leases:              %zu\n",
		       (long long)st.rev, (long long)st.compact_rev,
		       (long long)st.keys, sz, (unsigned long long)st.db_bytes,
		       nl);
		for (size_t i = 0; i < nl; i++)
			printf("  lease %lld%s%s ttl %llds\n",
			       (long long)ls[i].id, ls[i].name[0] ? " " : "",
			       ls[i].name, (long long)ls[i].granted_ttl);
	}
	free(ls);
	eng_close(e);
	return EX_OK;
}

/* ----------------------------------------------------------------- check */

/* The problems a check or repair reports, and its progress line (erased
 * before each problem is printed, when both go to one terminal). */
struct problems {
	int n;
	struct progress *p;
};

static void print_problem(void *arg, const char *msg)
{
	struct problems *pr = arg;

	pr->n++;
	progress_clear(pr->p);
	printf("problem: %s\n", msg);
	fflush(stdout);
}

/* One check pass; its progress counts records read (label: "check"). */
static int check_once(const char *dir, const char *label, int *problems)
{
	struct problems pr = {0};
	struct progress p;
	eng *e;
	int rc;

	*problems = 0;
	rc = open_store(dir, true, &e);
	if (rc)
		return rc;
	progress_init(&p, label, "records", g.quiet);
	pr.p = &p;
	rc = eng_check_progress(e, print_problem, &pr, progress_cb, &p);
	progress_done(&p, p.done, p.total);
	eng_close(e);
	*problems = pr.n;
	return rc;
}

static int do_repair(const char *dir)
{
	struct eng_repair_stats st;
	struct problems pr = {0};
	struct progress p;
	int rc;

	progress_init(&p, "repair", "records", g.quiet);
	pr.p = &p;
	rc = eng_repair(dir, print_problem, &pr, progress_cb, &p, &st);
	progress_done(&p, p.done, p.total);
	if (rc && rc != ENG_E_CORRUPT)
		return fail(rc, "repair", dir);
	printf("repair: revision %lld -> %lld, live keys %lld -> %lld; "
	       "rebuilt %lld latest, %lld attach, %lld name records\n",
	       (long long)st.rev_before, (long long)st.rev_after,
	       (long long)st.keys_before, (long long)st.keys_after,
	       (long long)st.latest_written, (long long)st.attach_written,
	       (long long)st.names_written);
	if (st.orphan_leases)
		printf("repair: %lld live keys name a lease that does not "
		       "exist (not repairable: they never expire)\n",
		       (long long)st.orphan_leases);
	if (st.undecodable)
		printf("repair: %lld history records do not decode (not "
		       "repairable)\n",
		       (long long)st.undecodable);
	return rc ? EX_DAMAGED : EX_OK;
}

static int cmd_check(const char *dir, bool repair)
{
	int problems, rc;

	rc = check_once(dir, "check", &problems);
	if (!rc) {
		printf("ok: %s is consistent\n", dir);
		return EX_OK;
	}
	if (rc != ENG_E_CORRUPT || (problems == 0 && !repair))
		return fail(rc, "check", dir);
	if (problems)
		printf("%d problem%s found\n", problems,
		       problems == 1 ? "" : "s");
	if (!repair) {
		printf("run `revfsctl check %s --repair` to rebuild the "
		       "derived indexes\n",
		       dir);
		return EX_DAMAGED;
	}
	rc = do_repair(dir);
	if (rc == EX_INUSE || rc == EX_FAIL)
		return rc;
	rc = check_once(dir, "recheck", &problems);
	if (rc) {
		printf("still damaged after repair\n");
		return rc == ENG_E_CORRUPT ? EX_DAMAGED
		                           : fail(rc, "check", dir);
	}
	printf("ok: %s is consistent after repair\n", dir);
	return EX_OK;
}

/* ---------------------------------------------------------------- defrag */

static int cmd_defrag(const char *dir)
{
	uint64_t before = 0, after = 0;
	struct progress p;
	char b[32], a[32];
	eng *e;
	int rc;

	rc = open_store(dir, false, &e);
	if (rc)
		return fail(rc, "defrag", dir);
	progress_init(&p, "defrag", "spaces", g.quiet);
	rc = eng_defrag(e, progress_cb, &p, &before, &after);
	progress_done(&p, p.done, p.total);
	eng_close(e);
	if (rc)
		return fail(rc, "defrag", dir);
	human_size(before, b, sizeof(b));
	human_size(after, a, sizeof(a));
	if (g.json)
		printf("{\"before_bytes\":%llu,\"after_bytes\":%llu}\n",
		       (unsigned long long)before, (unsigned long long)after);
	else
		printf("defrag: %s -> %s (%llu -> %llu bytes)\n", b, a,
		       (unsigned long long)before, (unsigned long long)after);
	return EX_OK;
}

/* -------------------------------------------------------------- snapshot */

static void print_info(const struct eng_snapshot_info *i, const char *what)
{
	char when[64] = "?";
	time_t t = (time_t)(i->created_ns / 1000000000);
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (g.json) {
		printf("{\"format_version\":%u,\"store_version\":%u,"
		       "\"revision\":%lld,\"compact_revision\":%lld,"
		       "\"keys\":%lld,\"created\":\"%s\",\"records\":%llu,"
		       "\"bytes\":%llu,\"crc32c\":\"%08x\"}\n",
		       i->format_version, i->store_version, (long long)i->rev,
		       (long long)i->compact_rev, (long long)i->keys, when,
		       (unsigned long long)i->records,
		       (unsigned long long)i->bytes, i->crc);
		return;
	}
	printf("%s\n"
	       "format version:      %u (store format %u)\n"
	       "revision:            %lld\n"
	       "compaction revision: %lld\n"
	       "keys:                %lld\n"
	       "created:             %s\n"
	       "records:             %llu\n"
	       "bytes:               %llu\n"
	       "crc32c:              %08x\n",
	       what, i->format_version, i->store_version, (long long)i->rev,
	       (long long)i->compact_rev, (long long)i->keys, when,
	       (unsigned long long)i->records, (unsigned long long)i->bytes,
	       i->crc);
}

struct out_file {
	int fd;
	int err; /* errno of a failed write */
	uint64_t done;
	struct progress *p;
};

static int write_all(void *arg, const void *buf, size_t n)
{
	struct out_file *o = arg;
	const char *c = buf;

	while (n) {
		ssize_t w = write(o->fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			o->err = errno;
			return ENG_E_IO;
		}
		c += w;
		n -= (size_t)w;
		o->done += (uint64_t)w;
	}
	progress_draw(o->p, o->done, 0, false);
	return 0;
}

static int cmd_snap_save(const char *dir, const char *file)
{
	struct eng_snapshot_info info;
	struct out_file o = {.fd = -1};
	struct progress p;
	char *tmp = NULL;
	eng *e = NULL;
	int rc, ex = EX_FAIL;

	rc = open_store(dir, true, &e);
	if (rc)
		return fail(rc, "snapshot save", dir);
	/* Written beside FILE and renamed: FILE is whole or absent. */
	if (asprintf(&tmp, "%s.part", file) < 0) {
		tmp = NULL;
		goto out;
	}
	o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		fprintf(stderr, "revfsctl: snapshot save: %s: %s\n", tmp,
		        strerror(errno));
		goto out;
	}
	progress_init(&p, "save", "bytes", g.quiet);
	o.p = &p;
	rc = eng_snapshot_save(e, write_all, &o, &info);
	progress_done(&p, o.done, 0);
	if (rc && o.err) {
		fprintf(stderr, "revfsctl: snapshot save: %s: %s\n", tmp,
		        strerror(o.err));
		goto out;
	}
	if (rc) {
		ex = fail(rc, "snapshot save", dir);
		goto out;
	}
	if (fsync(o.fd) || close(o.fd)) {
		o.fd = -1;
		fprintf(stderr, "revfsctl: snapshot save: %s: %s\n", tmp,
		        strerror(errno));
		goto out;
	}
	o.fd = -1;
	if (rename(tmp, file)) {
		fprintf(stderr, "revfsctl: snapshot save: %s: %s\n", file,
		        strerror(errno));
		goto out;
	}
	if (!g.quiet || g.json)
		print_info(&info, g.json ? "" : "saved");
	ex = EX_OK;
out:
	if (o.fd >= 0)
		close(o.fd);
	if (ex != EX_OK && tmp)
		unlink(tmp);
	free(tmp);
	eng_close(e);
	return ex;
}

static int snap_fail(int rc, const char *err)
{
	fprintf(stderr, "revfsctl: %s\n", err);
	return rc == ENG_E_CORRUPT || rc == ENG_E_VERSION ? EX_DAMAGED
	                                                  : EX_FAIL;
}

static int cmd_snap_restore(const char *file, const char *dir)
{
	struct eng_snapshot_info info;
	struct progress p;
	char err[512];
	int rc;

	progress_init(&p, "restore", "bytes", g.quiet);
	rc = eng_snapshot_restore(file, dir, progress_cb, &p, &info, err,
	                          sizeof(err));
	progress_done(&p, rc ? 0 : info.bytes, rc ? 0 : info.bytes);
	if (rc)
		return snap_fail(rc, err);
	if (!g.quiet || g.json)
		print_info(&info, g.json ? "" : "restored");
	return EX_OK;
}

static int cmd_snap_status(const char *file)
{
	struct eng_snapshot_info info;
	struct progress p;
	char err[512];
	int rc;

	progress_init(&p, "verify", "bytes", g.quiet);
	rc = eng_snapshot_file_status(file, &info, progress_cb, &p, err,
	                              sizeof(err));
	progress_done(&p, rc ? 0 : info.bytes, rc ? 0 : info.bytes);
	if (rc)
		return snap_fail(rc, err);
	print_info(&info, "ok: the snapshot is complete and its checksum "
	                  "matches");
	return EX_OK;
}

/* ------------------------------------------------------------------ main */

static int need(int argc, int n, const char *what)
{
	if (argc != n) {
		fprintf(stderr, "revfsctl: usage: revfsctl %s\n", what);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"write-out", required_argument, NULL, 'w'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"repair", no_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	bool repair = false;
	const char *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "w:qvh", lopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			if (!strcmp(optarg, "json"))
				g.json = true;
			else if (strcmp(optarg, "table")) {
				fprintf(stderr,
				        "revfsctl: -w takes table or json\n");
				return EX_USAGE;
			}
			break;
		case 'q':
			g.quiet = true;
			break;
		case 'v':
			g.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("revfsctl %s (snapshot format %d)\n",
			       REVFSCTL_VERSION, ENG_SNAPSHOT_VERSION);
			return EX_OK;
		case 'r':
			repair = true;
			break;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	cmd = argv[0];
	if (!strcmp(cmd, "status")) {
		if (need(argc, 2, "status DIR"))
			return EX_USAGE;
		return cmd_status(argv[1]);
	}
	if (!strcmp(cmd, "check")) {
		if (argc == 3 && !strcmp(argv[2], "--repair")) {
			repair = true;
			argc--;
		}
		if (need(argc, 2, "check DIR [--repair]"))
			return EX_USAGE;
		return cmd_check(argv[1], repair);
	}
	if (repair) {
		fprintf(stderr, "revfsctl: --repair goes with check\n");
		return EX_USAGE;
	}
	if (!strcmp(cmd, "defrag")) {
		if (need(argc, 2, "defrag DIR"))
			return EX_USAGE;
		return cmd_defrag(argv[1]);
	}
	if (!strcmp(cmd, "snapshot") && argc >= 2) {
		const char *sub = argv[1];

		if (!strcmp(sub, "save")) {
			if (need(argc, 4, "snapshot save DIR FILE"))
				return EX_USAGE;
			return cmd_snap_save(argv[2], argv[3]);
		}
		if (!strcmp(sub, "restore")) {
			if (need(argc, 4, "snapshot restore FILE DIR"))
				return EX_USAGE;
			return cmd_snap_restore(argv[2], argv[3]);
		}
		if (!strcmp(sub, "status")) {
			if (need(argc, 3, "snapshot status FILE"))
				return EX_USAGE;
			return cmd_snap_status(argv[2]);
		}
	}
	fprintf(stderr, "revfsctl: unknown command '%s' (try --help)\n", cmd);
	return EX_USAGE;
}
