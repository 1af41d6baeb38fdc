/*
 * main.c — the revfs daemon: parse the command line, detach, open the
 * store, mount, serve, and on SIGTERM/SIGINT/SIGHUP or `fusermount3 -u`
 * unmount and close the store so that every acknowledged write is durable.
 *
 * Detaching: without -f the process forks before opening anything (the
 * engine's threads would not survive a fork); the parent waits on a pipe
 * until the child has opened the store and mounted, prints the child's
 * error if it failed, and exits with its status.  So `revfs MNT && ls MNT`
 * works, and a locked store or a bad option is reported on the terminal.
 *
 * Threads: libfuse's multi-threaded session loop serves requests; the fs's
 * notifier thread invalidates kernel caches; the engine has its own
 * (committer, leases, watches, compaction); a signal thread waits for
 * SIGTERM/SIGINT/SIGHUP (blocked in every other thread).
 *
 * Shutdown order matters: the notifier may be inside the kernel waiting
 * for a directory lock held by a request that only a worker thread can
 * answer.  So on a signal the notifier is stopped first, while the workers
 * still serve, and only then is the session loop ended (fuse_session_exit
 * and SIGUSR1 to the main thread, whose wait in the loop it interrupts).
 * When the loop ends by `fusermount3 -u`, the kernel has already ended
 * every request, so stopping the notifier afterwards cannot block.
 */
#include "fs/fs.h"
#include "rv_log.h"
#include "rv_opts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REVFS_VERSION "0.1.0"

/*
 * Worker threads: every FLUSH of a writer holds its thread for the group
 * commit (an fsync), so the pool must exceed the writers in flight or the
 * CREATE and LOOKUP requests of the others queue behind the commits.  No
 * thread ever exits for being idle: starting one costs a clone, and
 * libfuse does it in the thread that just read a request, before serving
 * it.
 */
#define RV_MAX_THREADS 64

/*
 * libfuse >= 3.12's loop.  FUSE_USE_VERSION 35 (fs/fs.h) maps
 * fuse_session_loop_mt() to the 3.2 entry point, which reads its argument
 * as the old two-field struct {clone_fd, max_idle_threads}: given the
 * struct of fuse_loop_cfg_create() it took the version tag for clone_fd
 * and 0 for max_idle_threads, i.e. a new thread and a new /dev/fuse clone
 * for every request, at most 10 threads.  So call the 3.12 symbol, whose
 * argument is what fuse_loop_cfg_create() returns.
 */
int fuse_session_loop_mt_312(struct fuse_session *se,
                             struct fuse_loop_config *config);

static int serve_mt(struct fuse_session *se)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	int rc;

	if (!lc) {
		rv_log(ENG_LOG_ERR, "out of memory");
		return 1;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, RV_MAX_THREADS);
	fuse_loop_cfg_set_idle_threads(lc, RV_MAX_THREADS);
	rc = fuse_session_loop_mt_312(se, lc);
	fuse_loop_cfg_destroy(lc);
	return rc;
}

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-d] [-s] [-o opt,...] [SOURCE] MOUNTPOINT\n"
	       "       %s --help | --version\n"
	       "\n"
	       "Mount a revisioned key-value store (etcd v3 semantics, kept "
	       "in LevelDB)\nas a filesystem.  See docs/reference.md.\n"
	       "\n"
	       "  -f                 stay in the foreground, log to stderr\n"
	       "  -d                 debug: -f and every request logged\n"
	       "  -s                 single-threaded\n"
	       "  SOURCE             the data directory (as mount(8) passes "
	       "it);\n"
	       "                     'revfs' or 'none' mean the default\n"
	       "\n"
	       "revfs options (-o):\n"
	       "  data=DIR           the store (default $XDG_DATA_HOME/revfs/"
	       "default or\n"
	       "                     ~/.local/share/revfs/default), created "
	       "0700\n"
	       "  prefix=P           key prefix shown as the root (default: "
	       "all keys)\n"
	       "  progress=DUR       watch progress interval (default 5s, "
	       "min 100ms)\n"
	       "  auto_compact=X     DUR (keep a window, e.g. 1h) or Nr "
	       "(keep N revisions);\n"
	       "                     default off\n"
	       "  quota=SIZE         database quota (default 2G)\n"
	       "  max_value=SIZE     largest value (default 1536K)\n"
	       "  sync=MODE          always (default) | interval[:MS] | "
	       "none\n"
	       "  ro                 read-only\n"
	       "  loglevel=L         err | warn | info (default) | debug\n"
	       "  attr_timeout=SEC   kernel cache timeout (default 60)\n"
	       "  backend=etcd       use an etcd cluster instead of data=\n"
	       "  endpoints=URLS     its client URLs, separated by |\n"
	       "  etcd_cacert=, etcd_cert=, etcd_key=  TLS files (PEM)\n"
	       "  etcd_user=, etcd_password=          etcd auth\n"
	       "  etcd_timeout=DUR   one etcd request (default 5s)\n"
	       "\n"
	       "FUSE options (-o): allow_other, allow_root, "
	       "default_permissions,\n"
	       "  auto_unmount, fsname=, subtype=, max_read=, ... (see "
	       "below)\n\n",
	       prog, prog);
	fuse_lowlevel_help();
}

/* mkdir -p of the data directory's parents, mode 0700. */
static int make_parents(const char *dir)
{
	char *p = strdup(dir);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

/* Tell the waiting parent how it went: "" for success, else a message. */
static void report(int fd, const char *msg)
{
	size_t n = strlen(msg) + 1;

	if (fd < 0)
		return;
	if (write(fd, msg, n) < 0) {
		/* the parent died: nothing to tell */
	}
	close(fd);
}

/* Fork; the parent waits for the child's report and exits with it. */
static int detach(int *report_fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		char msg[1024];
		ssize_t n, got = 0;

		close(p[1]);
		while (got < (ssize_t)sizeof(msg) - 1 &&
		       (n = read(p[0], msg + got,
		                 sizeof(msg) - 1 - (size_t)got)) > 0)
			got += n;
		msg[got] = '\0';
		if (got == 0) {
			fprintf(stderr, "revfs: the daemon died while "
			                "starting (see syslog)\n");
			_exit(1);
		}
		if (msg[0]) {
			fprintf(stderr, "revfs: %s\n", msg);
			_exit(1);
		}
		_exit(0);
	}
	close(p[0]);
	*report_fd = p[1];
	if (setsid() < 0)
		return -errno;
	return 0;
}

static bool is_etcd(const struct rv_opts *o)
{
	return o->backend && strcmp(o->backend, "etcd") == 0;
}

/* backend=etcd: endpoints=URL1|URL2|... (docs/etcd-backend.md). */
static int open_etcd(const struct rv_opts *o, const struct eng_options *eo,
                     eng **e)
{
	struct eng_etcd_options xo;
	const char *eps[16];
	char *list = strdup(o->endpoints), *save = NULL, *tok;
	size_t n = 0;
	int rc;

	if (!list)
		return ENG_E_NOMEM;
	for (tok = strtok_r(list, "|", &save); tok && n < 16;
	     tok = strtok_r(NULL, "|", &save))
		eps[n++] = tok;
	eng_etcd_options_init(&xo);
	xo.endpoints = eps;
	xo.nendpoints = n;
	xo.ca_file = o->etcd_cacert;
	xo.cert_file = o->etcd_cert;
	xo.key_file = o->etcd_key;
	xo.user = o->etcd_user;
	xo.password = o->etcd_password;
	if (o->etcd_timeout_ms)
		xo.timeout_ms = (long)o->etcd_timeout_ms;
	rc = eng_open_etcd(&xo, eo, e);
	free(list);
	return rc;
}

/* The signal thread (see the top of the file). */
struct rv_sig {
	pthread_t main_thread;
	pthread_t thread;
	struct fs *fs;
	struct fuse_session *se;
	volatile int done; /* the loop ended by itself: just return */
};

static void on_usr1(int sig)
{
	(void)sig; /* only interrupts the main thread's wait */
}

static void *sig_main(void *arg)
{
	struct rv_sig *s = arg;
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	while (sigwait(&set, &sig) != 0)
		;
	if (s->done)
		return NULL;
	rv_log(ENG_LOG_INFO, "signal %d (%s): unmounting", sig, strsignal(sig));
	fs_stop_notifier(s->fs);
	fuse_session_exit(s->se);
	pthread_kill(s->main_thread, SIGUSR1);
	return NULL;
}

/* Block the shutdown signals in this thread and every thread it starts. */
static void block_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART: the wait returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void quiet_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

int main(int argc, char **argv)
{
	struct rv_opts o;
	struct eng_options eo;
	struct fs_config fc;
	struct fuse_session *se = NULL;
	struct fs *fs = NULL;
	eng *e = NULL;
	char err[512], msg[PATH_MAX + 512], mnt[PATH_MAX];
	int report_fd = -1, rc, ret = 1;
	bool mounted = false, sig_started = false;
	struct rv_sig sig = {0};
	struct stat st;
	const char *src = "";

	if (rv_opts_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "revfs: %s\n(try --help)\n", err);
		rv_opts_free(&o);
		return 1;
	}
	if (o.help) {
		usage(argv[0]);
		rv_opts_free(&o);
		return 0;
	}
	if (o.version) {
		printf("revfs %s (libfuse %s)\n", REVFS_VERSION,
		       fuse_pkgversion());
		rv_opts_free(&o);
		return 0;
	}
	if (!realpath(o.mountpoint, mnt) || stat(mnt, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "revfs: bad mountpoint '%s': %s\n",
		        o.mountpoint,
		        errno ? strerror(errno) : "not a directory");
		rv_opts_free(&o);
		return 1;
	}
	rv_log_init(false, o.loglevel);
	if (!o.foreground) {
		rc = detach(&report_fd);
		if (rc < 0) {
			fprintf(stderr, "revfs: cannot detach: %s\n",
			        strerror(-rc));
			goto out;
		}
		rv_log_set_syslog(true);
	}
	/* Before any thread exists (the engine's, libfuse's). */
	block_signals();

	src = is_etcd(&o) ? o.endpoints : o.data_dir;
	rc = is_etcd(&o) ? 0 : make_parents(o.data_dir);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot create '%s': %s", o.data_dir,
		         strerror(-rc));
		goto fail;
	}
	eng_options_init(&eo);
	eo.read_only = o.ro;
	if (o.max_value)
		eo.max_value = (size_t)o.max_value;
	if (o.quota)
		eo.quota_bytes = o.quota;
	eo.sync = o.sync;
	if (o.sync_interval_ms)
		eo.sync_interval_ms = o.sync_interval_ms;
	eo.auto_compact = o.auto_compact;
	eo.auto_compact_value = o.auto_compact_value;
	if (o.progress_ms)
		eo.progress_interval_ms = (int)o.progress_ms;
	eo.log = rv_log_eng_sink;
	rc = is_etcd(&o) ? open_etcd(&o, &eo, &e)
	                 : eng_open(o.data_dir, &eo, &e);
	/* A daemon just unmounted may still be closing the store (`umount X
	 * && mount X`): give it up to 3 s before refusing. */
	for (int i = 0; rc == ENG_E_LOCKED && i < 30; i++) {
		if (i == 0)
			rv_log(
			    ENG_LOG_INFO,
			    "store '%s' is locked; waiting up to 3 s for its "
			    "owner to exit",
			    o.data_dir);
		usleep(100 * 1000);
		rc = eng_open(o.data_dir, &eo, &e);
	}
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot open the store '%s': %s",
		         src, eng_strerror(rc));
		goto fail;
	}

	memset(&fc, 0, sizeof(fc));
	fc.prefix = o.prefix ? o.prefix : "";
	fc.attr_timeout = o.attr_timeout;
	fc.max_value = eo.max_value;
	fc.read_only = o.ro;
	fc.uid = getuid();
	fc.gid = getgid();
	fc.mountpoint = mnt;
	fs_set_log_sink(rv_log_fs_sink, o.loglevel);
	rc = fs_new(e, &fc, &fs);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot start: %s", strerror(-rc));
		goto fail;
	}
	/* No default_permissions unless asked: a write to a history file
	 * must fail EROFS (from revfs), not EACCES (from the kernel). */
	if (fuse_opt_add_arg(&o.fargs, "-osubtype=revfs") < 0) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto fail;
	}
	if (!strstr(src, ",")) {
		char fsname[PATH_MAX + 16];

		snprintf(fsname, sizeof(fsname), "-ofsname=%s", src);
		fuse_opt_add_arg(&o.fargs, fsname);
	}
	se = fuse_session_new(&o.fargs, fs_lowlevel_ops(),
	                      sizeof(struct fuse_lowlevel_ops), fs);
	if (!se) {
		snprintf(msg, sizeof(msg), "bad FUSE options (see the log)");
		goto fail;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		snprintf(msg, sizeof(msg), "cannot mount on '%s'", mnt);
		goto fail;
	}
	mounted = true;
	sig.main_thread = pthread_self();
	sig.fs = fs;
	sig.se = se;
	if (pthread_create(&sig.thread, NULL, sig_main, &sig) != 0) {
		snprintf(msg, sizeof(msg), "cannot start the signal thread");
		goto fail;
	}
	sig_started = true;
	rc = fs_start_notifier(fs, se);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "cannot watch the store: %s",
		         strerror(-rc));
		goto fail;
	}
	rv_log(ENG_LOG_INFO,
	       "mounted '%s' on '%s' (prefix '%s', revision %lld)", src, mnt,
	       fc.prefix, (long long)eng_current_rev(e));
	report(report_fd, "");
	report_fd = -1;
	if (!o.foreground) {
		quiet_stdio();
		if (chdir("/") < 0) {
			/* harmless: only keeps the cwd busy */
		}
	}

	rc = o.single_thread ? fuse_session_loop(se) : serve_mt(se);
	/* libfuse returns the signal that ended the loop: a clean stop. */
	if (rc == SIGTERM || rc == SIGINT || rc == SIGHUP)
		rc = 0;
	ret = rc == 0 ? 0 : 1;
	rv_log(ENG_LOG_INFO, "session ended (%s); unmounting",
	       rc == 0 ? "unmounted or signal" : strerror(rc < 0 ? -rc : rc));
	goto out;
fail:
	rv_log(ENG_LOG_ERR, "%s", msg);
	if (report_fd >= 0) {
		report(report_fd, msg);
		report_fd = -1;
	} else if (!o.foreground) {
		/* already reported */
	} else {
		fprintf(stderr, "revfs: %s\n", msg);
	}
	ret = 1;
out:
	if (sig_started) {
		/* Wake the signal thread if the loop ended by itself. */
		sig.done = 1;
		pthread_kill(sig.thread, SIGUSR2);
		pthread_join(sig.thread, NULL);
	}
	if (fs)
		fs_stop_notifier(fs);
	if (se) {
		if (mounted)
			fuse_session_unmount(se);
		fuse_session_destroy(se);
	}
	fs_free(fs); /* commits buffers of files still open */
	if (e) {
		eng_close(e);
		rv_log(ENG_LOG_INFO, "store closed");
	}
	rv_opts_free(&o);
	return ret;
}
