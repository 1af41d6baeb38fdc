/*
 * rvt.c — the integration suite's syscall helper.
 *
 * Shell tools hide errno (bash does not even look at close()'s return), and
 * the contract is about errnos at precise calls: EFBIG at write(), not at
 * close(); EROFS at open(); a commit whose close() returned 0 must survive a
 * crash.  This program performs one syscall-level action and prints exactly
 * what happened, so a test can compare it with what the docs promise:
 *
 *   rvt try OP ARGS...   do OP, print "OK" or the errno's name (EFBIG, ...);
 *                        for the multi-step writes "STEP:ERRNO" (write:EFBIG)
 *                        (ifrace IFPATH KEY: a conditional write that a
 *                        write to KEY overtakes before its close)
 *   rvt listrev DIR REV OUT [HOOK [END_HOOK]]
 *                        read the revision (REV: MNT/@revision, or a probe
 *                        key to put and read the mod_revision of), opendir
 *                        and first readdir of DIR, read it again, run HOOK
 *                        (sh -c, with $R1 and $R2 set), list the rest:
 *                        prints "R1 R2" (the listing's revision lies in
 *                        [R1, R2]), names (not . and ..) to OUT;
 *                        then END_HOOK before closedir;
 *                        $RVT_SLOW_US: sleep that long every 1000 names
 *                        (tmpfiles DIR N: create two files, close and
 *                        unlink them, N times, as vim does with swap files;
 *                        rename2 A B noreplace|exchange: renameat2;
 *                        closerename DIR N: create, write and close
 *                        DIR/c<i>, renamed to DIR/r<i> during the close;
 *                        closefsync PREFIX N: close one descriptor of
 *                        PREFIX<i> while fsync()ing another;
 *                        closeclose PREFIX N: ... while closing another
 *                        that wrote too;
 *                        seekcheck DIR: telldir/seekdir/rewinddir give the
 *                        same entries again)
 *   rvt readpin PATH NEW open PATH, commit NEW through another open, read
 *                        the first descriptor: prints what it read
 *   rvt mkmany DIR PREFIX START COUNT THREADS
 *                        create DIR/PREFIX<n> = "v<n>" for n in
 *                        [START, START+COUNT) with THREADS threads
 *   rvt writer DIR ID RECFILE
 *                        write DIR/w<ID>-<n> = "c<ID>-<n>" for n = 1, 2, ...
 *                        and append n to RECFILE only after close() returned
 *                        0; ends at the first failure (printed on stderr)
 *   rvt churn DIR PREFIX N SEED
 *                        until killed: delete, rewrite and create keys in
 *                        DIR (PREFIX<i>, i < N, and new-SEED-<n>)
 *
 * It is compiled by lib.sh into each test's temporary directory.  Exit
 * status: 0 when the action succeeded, 1 when it failed, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *rvt_errname(int err)
{
	const char *n;

	if (err == ENOTSUP) /* == EOPNOTSUPP on Linux; the docs say ENOTSUP */
		return "ENOTSUP";
	n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

static int rvt_usage(void)
{
	fprintf(stderr, "usage: rvt try OP ARGS... | listrev DIR REVFILE OUT |"
	                " mkmany DIR PREFIX START COUNT THREADS |"
	                " writer DIR ID RECFILE | churn DIR PREFIX N SEED\n");
	return 2;
}

/* Write all of buf; returns 0 or an errno. */
static int rvt_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * open(flags) + write + [fsync] + close, reporting the failing step.  The
 * close() result is the commit's result in revfs, so it is always checked.
 */
static int rvt_put(const char *path, int flags, const char *buf, size_t len,
                   int do_fsync, char *step, size_t step_len)
{
	int fd, err = 0;

	fd = open(path, flags, 0644);
	if (fd < 0) {
		snprintf(step, step_len, "open");
		return errno;
	}
	err = rvt_write_all(fd, buf, len);
	if (err) {
		snprintf(step, step_len, "write");
		close(fd);
		return err;
	}
	if (do_fsync && fsync(fd) < 0) {
		err = errno;
		snprintf(step, step_len, "fsync");
		close(fd);
		return err;
	}
	if (close(fd) < 0) {
		snprintf(step, step_len, "close");
		return errno;
	}
	return 0;
}

static int rvt_open_flags(const char *s)
{
	if (!strcmp(s, "r"))
		return O_RDONLY;
	if (!strcmp(s, "w"))
		return O_WRONLY;
	if (!strcmp(s, "rw"))
		return O_RDWR;
	if (!strcmp(s, "wc"))
		return O_WRONLY | O_CREAT;
	if (!strcmp(s, "wt"))
		return O_WRONLY | O_TRUNC;
	if (!strcmp(s, "excl"))
		return O_WRONLY | O_CREAT | O_EXCL;
	if (!strcmp(s, "dir"))
		return O_RDONLY | O_DIRECTORY;
	return -1;
}

/* Read a whole file and discard it; returns 0 or an errno. */
static int rvt_read_all(const char *path, char *step, size_t step_len)
{
	char buf[65536];
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		snprintf(step, step_len, "open");
		return errno;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0) {
			int err = errno;

			snprintf(step, step_len, "read");
			close(fd);
			return err;
		}
	}
	close(fd);
	return 0;
}

static int rvt_list_all(const char *path, char *step, size_t step_len)
{
	DIR *d = opendir(path);

	if (!d) {
		snprintf(step, step_len, "opendir");
		return errno;
	}
	errno = 0;
	while (readdir(d))
		;
	if (errno) {
		int err = errno;

		snprintf(step, step_len, "readdir");
		closedir(d);
		return err;
	}
	closedir(d);
	return 0;
}

/*
 * telldir/seekdir/rewinddir on a directory: list it once remembering each
 * entry's position, then seek back to a few of them and to the start; each
 * must give the same entry again.  Prints OK or what differed.
 */
static int rvt_seekcheck(const char *path)
{
	size_t n = 0, cap = 1024, probes[4];
	struct dirent *de;
	char **names;
	long *pos;
	int rc = 1;
	DIR *d;

	names = malloc(cap * sizeof(*names));
	pos = malloc(cap * sizeof(*pos));
	d = opendir(path);
	if (!names || !pos || !d) {
		printf("opendir:%s\n", rvt_errname(errno));
		goto out;
	}
	for (;;) {
		long p = telldir(d);

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (n == cap) {
			cap *= 2;
			names = realloc(names, cap * sizeof(*names));
			pos = realloc(pos, cap * sizeof(*pos));
			if (!names || !pos)
				goto out;
		}
		names[n] = strdup(de->d_name);
		pos[n++] = p;
	}
	if (errno || n < 4) {
		printf("readdir:%s (%zu entries)\n", rvt_errname(errno), n);
		goto out;
	}
	probes[0] = n / 3;
	probes[1] = n - 1;
	probes[2] = n / 2;
	probes[3] = 2;
	for (int i = 0; i < 4; i++) {
		size_t k = probes[i];

		seekdir(d, pos[k]);
		de = readdir(d);
		if (!de || strcmp(de->d_name, names[k]) != 0) {
			printf("seekdir to entry %zu gave %s, not %s\n", k,
			       de ? de->d_name : "(end)", names[k]);
			goto out;
		}
	}
	rewinddir(d);
	de = readdir(d);
	if (!de || strcmp(de->d_name, names[0]) != 0) {
		printf("rewinddir gave %s, not %s\n", de ? de->d_name : "(end)",
		       names[0]);
		goto out;
	}
	printf("OK\n");
	rc = 0;
out:
	if (d)
		closedir(d);
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(pos);
	return rc;
}

/*
 * rvt readpin PATH NEW: open PATH, commit NEW to it through another open,
 * then read the first descriptor: prints what it read (docs: a descriptor
 * reads the version current at its open).
 */
static int rvt_readpin(int argc, char **argv)
{
	char buf[4096], step[32];
	ssize_t n;
	int fd, err;

	if (argc != 2)
		return rvt_usage();
	fd = open(argv[0], O_RDONLY);
	if (fd < 0) {
		printf("open:%s\n", rvt_errname(errno));
		return 1;
	}
	err = rvt_put(argv[0], O_WRONLY | O_TRUNC, argv[1], strlen(argv[1]), 0,
	              step, sizeof(step));
	if (err) {
		printf("%s:%s\n", step, rvt_errname(err));
		close(fd);
		return 1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		printf("read:%s\n", rvt_errname(errno));
		return 1;
	}
	fwrite(buf, 1, (size_t)n, stdout);
	return 0;
}

/* closerename: one descriptor's close, run while the file is renamed. */
static void *rvt_close_thread(void *arg)
{
	int *fd = arg;

	if (close(*fd) < 0)
		*fd = -errno;
	else
		*fd = 0;
	return NULL;
}

/*
 * rvt try closerename DIR N: N times, create DIR/c<i> (never committed),
 * write it, close it in a second thread and rename it to DIR/r<i> while
 * the close's commit is on its way (a few hundred microseconds later).
 */
static int rvt_closerename(const char *dir, long n, char *step,
                           size_t step_size)
{
	char a[4096], b[4096];

	for (long i = 0; i < n; i++) {
		pthread_t t;
		int fd;

		snprintf(a, sizeof(a), "%s/c%ld", dir, i);
		snprintf(b, sizeof(b), "%s/r%ld", dir, i);
		fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			snprintf(step, step_size, "open");
			return errno;
		}
		if (write(fd, b, strlen(b)) != (ssize_t)strlen(b)) {
			snprintf(step, step_size, "write");
			return errno;
		}
		if (pthread_create(&t, NULL, rvt_close_thread, &fd)) {
			snprintf(step, step_size, "thread");
			return EAGAIN;
		}
		usleep((useconds_t)(i % 8) * 100);
		if (rename(a, b) < 0) {
			int err = errno;

			pthread_join(t, NULL);
			snprintf(step, step_size, "rename");
			return err;
		}
		pthread_join(t, NULL);
		if (fd < 0) {
			snprintf(step, step_size, "close");
			return -fd;
		}
	}
	return 0;
}

/*
 * rvt try closefsync PREFIX N: N times, write 512 KiB to PREFIX<i> through
 * one descriptor, close it in a second thread and fsync another descriptor
 * of the file meanwhile.  Past the quota every fsync must fail (ENOSPC):
 * prints fsync:ERRNO, or OK for an fsync that returned 0.
 * rvt try closeclose PREFIX N: the same, but the other descriptor writes
 * a byte first (so the first close commits it too) and is closed instead:
 * every second close must fail, close:ERRNO.
 */
static int rvt_closefsync(const char *prefix, long n, bool use_close,
                          char *step, size_t step_size)
{
	static char buf[512 * 1024];
	char path[4096];
	int err = 0;

	memset(buf, 'x', sizeof(buf));
	for (long i = 0; i < n; i++) {
		pthread_t t;
		int fd, fd2, rc;

		snprintf(path, sizeof(path), "%s%ld", prefix, i);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		fd2 = fd < 0 ? -1 : open(path, O_WRONLY);
		if (fd2 < 0) {
			snprintf(step, step_size, "open");
			return errno;
		}
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    (use_close && pwrite(fd2, "y", 1, 0) != 1)) {
			snprintf(step, step_size, "write");
			return errno;
		}
		if (pthread_create(&t, NULL, rvt_close_thread, &fd)) {
			snprintf(step, step_size, "thread");
			return EAGAIN;
		}
		usleep((useconds_t)(i % 5) * 100);
		rc = use_close ? close(fd2) : fsync(fd2);
		err = rc < 0 ? errno : 0;
		pthread_join(t, NULL);
		if (!use_close)
			close(fd2);
		snprintf(step, step_size, use_close ? "close" : "fsync");
		if (err != ENOSPC)
			return err;
	}
	return err;
}

/* rvt try OP ARGS...: one action, its errno printed. */
static int rvt_try(int argc, char **argv)
{
	const char *op;
	char step[32] = "";
	int err = 0;

	if (argc < 2)
		return rvt_usage();
	op = argv[0];
	if (!strcmp(op, "put") && argc == 3) {
		err = rvt_put(argv[1], O_WRONLY | O_CREAT | O_TRUNC, argv[2],
		              strlen(argv[2]), 0, step, sizeof(step));
	} else if (!strcmp(op, "fsyncput") && argc == 3) {
		err = rvt_put(argv[1], O_WRONLY | O_CREAT | O_TRUNC, argv[2],
		              strlen(argv[2]), 1, step, sizeof(step));
	} else if (!strcmp(op, "append") && argc == 3) {
		err = rvt_put(argv[1], O_WRONLY | O_CREAT | O_APPEND, argv[2],
		              strlen(argv[2]), 0, step, sizeof(step));
	} else if (!strcmp(op, "putn") && argc == 3) {
		/* N bytes of 'x', written in one write() call. */
		size_t n = strtoull(argv[2], NULL, 10);
		char *buf = malloc(n ? n : 1);

		if (!buf)
			return 2;
		memset(buf, 'x', n);
		err = rvt_put(argv[1], O_WRONLY | O_CREAT | O_TRUNC, buf, n, 0,
		              step, sizeof(step));
		free(buf);
	} else if (!strcmp(op, "ifrace") && argc == 3) {
		/* A conditional write that another write overtakes: open and
		 * write argv[1] (a KEY@ifrev=REV), put argv[2] (KEY), close. */
		int fd = open(argv[1], O_WRONLY | O_TRUNC);

		if (fd < 0) {
			err = errno;
			snprintf(step, sizeof(step), "open");
		} else if ((err = rvt_write_all(fd, "mine\n", 5))) {
			snprintf(step, sizeof(step), "write");
			close(fd);
		} else if ((err =
		                rvt_put(argv[2], O_WRONLY | O_TRUNC, "theirs\n",
		                        7, 0, step, sizeof(step)))) {
			close(fd);
		} else if (close(fd) < 0) {
			err = errno;
			snprintf(step, sizeof(step), "close");
		}
	} else if (!strcmp(op, "putfile") && argc == 3) {
		/* The content of a local file, in one write() call. */
		struct stat st;
		char *buf = NULL;
		int fd = open(argv[2], O_RDONLY);

		if (fd < 0 || fstat(fd, &st) < 0)
			return 2;
		buf = malloc(st.st_size ? (size_t)st.st_size : 1);
		if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size)
			return 2;
		close(fd);
		err = rvt_put(argv[1], O_WRONLY | O_CREAT | O_TRUNC, buf,
		              (size_t)st.st_size, 0, step, sizeof(step));
		free(buf);
	} else if (!strcmp(op, "closerename") && argc == 3) {
		err =
		    rvt_closerename(argv[1], atol(argv[2]), step, sizeof(step));
	} else if (!strcmp(op, "closefsync") && argc == 3) {
		err = rvt_closefsync(argv[1], atol(argv[2]), false, step,
		                     sizeof(step));
	} else if (!strcmp(op, "closeclose") && argc == 3) {
		err = rvt_closefsync(argv[1], atol(argv[2]), true, step,
		                     sizeof(step));
	} else if (!strcmp(op, "rename2") && argc == 4) {
		unsigned int fl =
		    !strcmp(argv[3], "noreplace")  ? RENAME_NOREPLACE
		    : !strcmp(argv[3], "exchange") ? RENAME_EXCHANGE
		                                   : 0;

		err = renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], fl) < 0
		          ? errno
		          : 0;
	} else if (!strcmp(op, "tmpfiles") && argc == 3) {
		/* vim's swap-file dance, N times: create two files O_EXCL,
		 * close and unlink the second, then the first. */
		long n = atol(argv[2]);
		char a[4096], b[4096];

		for (long i = 0; i < n && !err; i++) {
			int fa, fb;

			snprintf(a, sizeof(a), "%s/s%ld", argv[1], i);
			snprintf(b, sizeof(b), "%s/x%ld", argv[1], i);
			fa = open(a, O_RDWR | O_CREAT | O_EXCL, 0600);
			if (fa < 0) {
				err = errno;
				snprintf(step, sizeof(step), "open");
				break;
			}
			fb = open(b, O_RDWR | O_CREAT | O_EXCL, 0600);
			if (fb < 0) {
				err = errno;
				snprintf(step, sizeof(step), "open");
				close(fa);
				break;
			}
			close(fb);
			if (unlink(b) < 0) {
				err = errno;
				snprintf(step, sizeof(step), "unlink");
			}
			close(fa);
			if (!err && unlink(a) < 0) {
				err = errno;
				snprintf(step, sizeof(step), "unlink");
			}
		}
	} else if (!strcmp(op, "seekcheck") && argc == 2) {
		return rvt_seekcheck(argv[1]);
	} else if (!strcmp(op, "open") && argc == 3) {
		int flags = rvt_open_flags(argv[2]);
		int fd;

		if (flags < 0)
			return rvt_usage();
		fd = open(argv[1], flags, 0644);
		if (fd < 0)
			err = errno;
		else if (close(fd) < 0)
			err = errno, snprintf(step, sizeof(step), "close");
	} else if (!strcmp(op, "read") && argc == 2) {
		err = rvt_read_all(argv[1], step, sizeof(step));
	} else if (!strcmp(op, "list") && argc == 2) {
		err = rvt_list_all(argv[1], step, sizeof(step));
	} else if (!strcmp(op, "mkdir") && argc == 2) {
		err = mkdir(argv[1], 0755) < 0 ? errno : 0;
	} else if (!strcmp(op, "rmdir") && argc == 2) {
		err = rmdir(argv[1]) < 0 ? errno : 0;
	} else if (!strcmp(op, "unlink") && argc == 2) {
		err = unlink(argv[1]) < 0 ? errno : 0;
	} else if (!strcmp(op, "rename") && argc == 3) {
		err = rename(argv[1], argv[2]) < 0 ? errno : 0;
	} else if (!strcmp(op, "stat") && argc == 2) {
		struct stat st;

		err = stat(argv[1], &st) < 0 ? errno : 0;
	} else if (!strcmp(op, "truncate") && argc == 3) {
		err = truncate(argv[1], strtoll(argv[2], NULL, 10)) < 0 ? errno
		                                                        : 0;
	} else if (!strcmp(op, "getxattr") && argc == 3) {
		char buf[4096];

		err = getxattr(argv[1], argv[2], buf, sizeof(buf)) < 0 ? errno
		                                                       : 0;
	} else if (!strcmp(op, "setxattr") && argc == 4) {
		err =
		    setxattr(argv[1], argv[2], argv[3], strlen(argv[3]), 0) < 0
		        ? errno
		        : 0;
	} else if (!strcmp(op, "removexattr") && argc == 3) {
		err = removexattr(argv[1], argv[2]) < 0 ? errno : 0;
	} else if (!strcmp(op, "symlink") && argc == 3) {
		err = symlink(argv[1], argv[2]) < 0 ? errno : 0;
	} else if (!strcmp(op, "link") && argc == 3) {
		err = link(argv[1], argv[2]) < 0 ? errno : 0;
	} else {
		return rvt_usage();
	}
	if (!err) {
		printf("OK\n");
		return 0;
	}
	if (step[0])
		printf("%s:%s\n", step, rvt_errname(err));
	else
		printf("%s\n", rvt_errname(err));
	return 1;
}

/*
 * The store's current revision, or -1: from a control file (a name ending in
 * "@revision"), else by committing a put to the probe key PATH and reading
 * its mod_revision (this program is the only writer of PATH).
 */
static long long rvt_read_rev(const char *path)
{
	char buf[64], step[32];
	ssize_t n;
	size_t len = strlen(path);
	int fd;

	if (len < 9 || strcmp(path + len - 9, "@revision") != 0) {
		if (rvt_put(path, O_WRONLY | O_CREAT | O_TRUNC, "p", 1, 0, step,
		            sizeof(step)))
			return -1;
		n = getxattr(path, "user.revfs.mod_revision", buf,
		             sizeof(buf) - 1);
	} else {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -1;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static int rvt_skip_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

/*
 * The listing's revision is fixed somewhere between opendir and the first
 * entry (SPEC: one revision from opendir to the last entry), so reading
 * the current revision before opendir and after the first readdir brackets
 * it.
 */
static int rvt_listrev(int argc, char **argv)
{
	long long r1, r2;
	long slow_us, count = 0;
	struct dirent *de;
	FILE *out;
	DIR *d;
	int rc = 1;

	if (argc < 3 || argc > 5)
		return rvt_usage();
	out = fopen(argv[2], "w");
	if (!out) {
		perror(argv[2]);
		return 1;
	}
	r1 = rvt_read_rev(argv[1]);
	d = opendir(argv[0]);
	if (!d) {
		fprintf(stderr, "opendir %s: %s\n", argv[0],
		        rvt_errname(errno));
		goto out;
	}
	errno = 0;
	de = readdir(d);
	r2 = rvt_read_rev(argv[1]);
	if (argc >= 4) {
		/* The hook runs while this listing is open (R1, R2 set). */
		char num[32];

		snprintf(num, sizeof(num), "%lld", r1);
		setenv("R1", num, 1);
		snprintf(num, sizeof(num), "%lld", r2);
		setenv("R2", num, 1);
		if (system(argv[3]) != 0)
			fprintf(stderr, "listrev: hook failed\n");
	}
	slow_us = getenv("RVT_SLOW_US") ? atol(getenv("RVT_SLOW_US")) : 0;
	while (de) {
		if (!rvt_skip_dot(de->d_name))
			fprintf(out, "%s\n", de->d_name);
		/* a slow reader keeps the listing open while writers run */
		if (slow_us > 0 && ++count % 1000 == 0)
			usleep((useconds_t)slow_us);
		errno = 0;
		de = readdir(d);
	}
	if (errno) {
		fprintf(stderr, "readdir %s: %s\n", argv[0],
		        rvt_errname(errno));
		closedir(d);
		goto out;
	}
	/* The end hook runs with the listing still open. */
	if (argc == 5 && system(argv[4]) != 0)
		fprintf(stderr, "listrev: end hook failed\n");
	closedir(d);
	if (r1 < 0 || r2 < 0) {
		fprintf(stderr, "cannot read %s\n", argv[1]);
		goto out;
	}
	printf("%lld %lld\n", r1, r2);
	rc = 0;
out:
	if (fclose(out) != 0)
		rc = 1;
	return rc;
}

struct rvt_mk {
	const char *dir;
	const char *prefix;
	long start, end, stride;
	int err;
	char what[4200];
};

static void *rvt_mk_thread(void *arg)
{
	struct rvt_mk *m = arg;
	char path[4096], val[64], step[32];

	for (long i = m->start; i < m->end; i += m->stride) {
		int n = snprintf(val, sizeof(val), "v%ld", i);

		snprintf(path, sizeof(path), "%s/%s%ld", m->dir, m->prefix, i);
		m->err = rvt_put(path, O_WRONLY | O_CREAT | O_TRUNC, val,
		                 (size_t)n, 0, step, sizeof(step));
		if (m->err) {
			snprintf(m->what, sizeof(m->what), "%s %s: %s", step,
			         path, rvt_errname(m->err));
			break;
		}
	}
	return NULL;
}

static int rvt_mkmany(int argc, char **argv)
{
	long start, count;
	int threads, rc = 0;
	struct rvt_mk *m;
	pthread_t *tid;

	if (argc != 5)
		return rvt_usage();
	start = atol(argv[2]);
	count = atol(argv[3]);
	threads = atoi(argv[4]);
	if (threads < 1 || threads > 64 || count < 0)
		return rvt_usage();
	m = calloc((size_t)threads, sizeof(*m));
	tid = calloc((size_t)threads, sizeof(*tid));
	if (!m || !tid)
		return 1;
	for (int t = 0; t < threads; t++) {
		m[t] = (struct rvt_mk){.dir = argv[0],
		                       .prefix = argv[1],
		                       .start = start + t,
		                       .end = start + count,
		                       .stride = threads};
		pthread_create(&tid[t], NULL, rvt_mk_thread, &m[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		if (m[t].err) {
			fprintf(stderr, "mkmany: %s\n", m[t].what);
			rc = 1;
		}
	}
	free(m);
	free(tid);
	return rc;
}

static int rvt_writer(int argc, char **argv)
{
	char path[4096], val[128], step[32];
	FILE *rec;

	if (argc != 3)
		return rvt_usage();
	rec = fopen(argv[2], "a");
	if (!rec) {
		perror(argv[2]);
		return 1;
	}
	setvbuf(rec, NULL, _IOLBF, 0);
	for (long n = 1;; n++) {
		int len = snprintf(val, sizeof(val), "c%s-%ld", argv[1], n);
		int err;

		snprintf(path, sizeof(path), "%s/w%s-%ld", argv[0], argv[1], n);
		err = rvt_put(path, O_WRONLY | O_CREAT | O_TRUNC, val,
		              (size_t)len, 0, step, sizeof(step));
		if (err) {
			fprintf(stderr, "writer %s: %s %s: %s\n", argv[1], step,
			        path, rvt_errname(err));
			break;
		}
		/* Recorded only now: the commit was acknowledged. */
		fprintf(rec, "%ld\n", n);
	}
	fclose(rec);
	return 0;
}

static int rvt_churn(int argc, char **argv)
{
	char path[4096], val[64], step[32];
	unsigned int seed;
	long n, created = 0;

	if (argc != 4)
		return rvt_usage();
	n = atol(argv[2]);
	seed = (unsigned int)atoi(argv[3]);
	if (n <= 0)
		return rvt_usage();
	for (;;) {
		long i = (long)(rand_r(&seed) % (unsigned long)n);
		int what = rand_r(&seed) % 3;
		int len;

		if (what == 0) {
			snprintf(path, sizeof(path), "%s/%s%ld", argv[0],
			         argv[1], i);
			if (unlink(path) < 0 && errno != ENOENT)
				goto fail;
			continue;
		}
		if (what == 1)
			snprintf(path, sizeof(path), "%s/%s%ld", argv[0],
			         argv[1], i);
		else
			snprintf(path, sizeof(path), "%s/new-%s-%ld", argv[0],
			         argv[3], created++);
		len = snprintf(val, sizeof(val), "churn%ld", i);
		errno = rvt_put(path, O_WRONLY | O_CREAT | O_TRUNC, val,
		                (size_t)len, 0, step, sizeof(step));
		if (errno)
			goto fail;
	}
fail:
	fprintf(stderr, "churn %s: %s: %s\n", argv[3], path,
	        rvt_errname(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return rvt_usage();
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[1], "try"))
		return rvt_try(argc - 2, argv + 2);
	if (!strcmp(argv[1], "readpin"))
		return rvt_readpin(argc - 2, argv + 2);
	if (!strcmp(argv[1], "listrev"))
		return rvt_listrev(argc - 2, argv + 2);
	if (!strcmp(argv[1], "mkmany"))
		return rvt_mkmany(argc - 2, argv + 2);
	if (!strcmp(argv[1], "writer"))
		return rvt_writer(argc - 2, argv + 2);
	if (!strcmp(argv[1], "churn"))
		return rvt_churn(argc - 2, argv + 2);
	return rvt_usage();
}
