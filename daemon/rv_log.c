/*
 * rv_log.c — leveled, timestamped logging for the daemon.
 *
 * In the foreground each message is one line on stderr,
 * "2026-11-27T00:15:38.123Z LEVEL message", written with one stdio call
 * under the stream lock so lines of concurrent threads never mix.  Once
 * detached, messages go to syslog (facility daemon, ident "revfs") with the
 * matching priority.  Messages above the configured level are dropped
 * before formatting.  libfuse's own messages are routed here too.
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

static void fuse_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;
	enum eng_log_level l = level <= FUSE_LOG_ERR       ? ENG_LOG_ERR
	                       : level == FUSE_LOG_WARNING ? ENG_LOG_WARN
	                       : level <= FUSE_LOG_INFO    ? ENG_LOG_INFO
	                                                   : ENG_LOG_DEBUG;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	emit(l, buf);
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
