/*
 * rv_log.c — leveled, timestamped logging for the daemon.
 *
 * In the foreground each message is one line on stderr,
 * "2026-11-27T00:15:38.123Z LEVEL message", written with one stdio call
 * under the stream lock so lines of concurrent threads never mix.  Once
 * detached, messages go to syslog (facility daemon, ident "revfs") with the
 * matching priority.  Messages above the configured level are dropped
 * before formatting.  libfuse's own messages are routed here too, a
 * message it writes in pieces joined into one line.
 */
#include "rv_log.h"

#define FUSE_USE_VERSION 35
#include <fuse_log.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static bool log_syslog;
static enum eng_log_level log_level = ENG_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

static void emit(enum eng_log_level level, const char *msg)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (level > log_level)
		return;
	if (log_syslog) {
		syslog(prio[level], "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000,
	        level_names[level], msg);
	funlockfile(stderr);
}

/*
 * libfuse writes some messages in pieces ("fuse: unknown option(s): `",
 * "-o ", "bogus'\n"): a thread's pieces are kept until a newline, so that
 * each message is one log line.
 */
static __thread char fuse_line[1024];
static __thread size_t fuse_line_len;

static void fuse_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char *nl;
	size_t room = sizeof(fuse_line) - fuse_line_len;
	int n;
	enum eng_log_level l = level <= FUSE_LOG_ERR       ? ENG_LOG_ERR
	                       : level == FUSE_LOG_WARNING ? ENG_LOG_WARN
	                       : level <= FUSE_LOG_INFO    ? ENG_LOG_INFO
	                                                   : ENG_LOG_DEBUG;

	n = vsnprintf(fuse_line + fuse_line_len, room, fmt, ap);
	if (n < 0)
		return;
	fuse_line_len += (size_t)n < room ? (size_t)n : room - 1;
	while ((nl = memchr(fuse_line, '\n', fuse_line_len))) {
		size_t used = (size_t)(nl - fuse_line) + 1;

		*nl = '\0';
		if (nl > fuse_line)
			emit(l, fuse_line);
		fuse_line_len -= used;
		memmove(fuse_line, nl + 1, fuse_line_len);
		fuse_line[fuse_line_len] = '\0';
	}
	if (fuse_line_len == sizeof(fuse_line) - 1) {
		emit(l, fuse_line); /* too long for one line: cut it */
		fuse_line_len = 0;
	}
}

void rv_log_init(bool use_syslog, enum eng_log_level level)
{
	log_level = level;
	rv_log_set_syslog(use_syslog);
	fuse_set_log_func(fuse_sink);
}

void rv_log_set_syslog(bool use_syslog)
{
	if (use_syslog && !log_syslog)
		openlog("revfs", LOG_PID, LOG_DAEMON);
	log_syslog = use_syslog;
}

void rv_log(enum eng_log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	emit(level, buf);
}

void rv_log_fs_sink(enum eng_log_level level, const char *msg)
{
	emit(level, msg);
}

void rv_log_eng_sink(void *arg, enum eng_log_level level, const char *msg)
{
	char buf[1024];

	if (level > log_level)
		return;
	snprintf(buf, sizeof(buf), "engine: %s", msg);
	emit(level, buf);
}

int rv_log_parse_level(const char *s, enum eng_log_level *out)
{
	static const char *const names[] = {"err", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum eng_log_level)i;
			return 0;
		}
	}
	return -1;
}
