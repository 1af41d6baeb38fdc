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
static enum eng_log_level log_max;

void fs_set_log_sink(void (*sink)(enum eng_log_level level, const char *msg),
                     enum eng_log_level max)
{
	log_sink = sink;
	log_max = max;
}

static void vlogf(enum eng_log_level level, const char *fmt, va_list ap)
{
	char buf[1024];

	if (!log_sink || level > log_max)
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

/* An errno's message without strerror()'s locale lookup (the daemon runs
 * in the C locale, where the text is the same). */
static const char *err_text(int err)
{
	const char *s = strerrordesc_np(err);

	return s ? s : strerror(err);
}

void fs_reply_err(fuse_req_t req, int err, const char *op, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	enum eng_log_level lvl;
	int n;

	/* A missing name is the normal answer of lookup: keep it quiet.
	 * ENODATA (a compacted revision) is a refusal like the others. */
	if (err == ENOENT)
		lvl = ENG_LOG_DEBUG;
	else if (err == EIO || err == ENOMEM)
		lvl = ENG_LOG_ERR;
	else
		lvl = ENG_LOG_INFO;
	if (log_sink && lvl <= log_max) {
		/* "OP refused: ERROR (WHY)", formatted once: this runs for
		 * every negative lookup, before every create. */
		n = snprintf(msg, sizeof(msg) - 1, "%s refused: %s (", op,
		             err_text(err));
		if (n >= 0 && (size_t)n < sizeof(msg) - 2) {
			va_start(ap, fmt);
			vsnprintf(msg + n, sizeof(msg) - 1 - (size_t)n, fmt,
			          ap);
			va_end(ap);
			strcat(msg, ")");
			log_sink(lvl, msg);
		}
	}
	fuse_reply_err(req, err);
}
