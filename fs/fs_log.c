/*
 * fs_log.c — logging for fs/ and the single path by which an operation
 * replies with an error.
 *
 * fs/ does not know where logs go: the daemon installs a sink.  Every
 * refusal goes through fs_reply_err(), which logs the operation, the errno
 * and the reason (user errors at INFO, storage errors at ERR) and replies.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void (*log_sink)(enum eng_log_level level, const char *msg);

void fs_set_log_sink(void (*sink)(enum eng_log_level level, const char *msg))
{
	log_sink = sink;
}

static void vlogf(enum eng_log_level level, const char *fmt, va_list ap)
{
	char buf[1024];

	if (!log_sink)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_sink(level, buf);
}

void fs_logf(enum eng_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogf(level, fmt, ap);
	va_end(ap);
}

void fs_reply_err(fuse_req_t req, int err, const char *op, const char *fmt, ...)
{
	char why[768];
	va_list ap;
	enum eng_log_level lvl;

	/* A missing name is the normal answer of lookup: keep it quiet. */
	if (err == ENOENT || err == ENODATA)
		lvl = ENG_LOG_DEBUG;
	else if (err == EIO || err == ENOMEM)
		lvl = ENG_LOG_ERR;
	else
		lvl = ENG_LOG_INFO;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fs_logf(lvl, "%s refused: %s (%s)", op, strerror(err), why);
	fuse_reply_err(req, err);
}
