/*
 * rv_log.h — the daemon's logging: levels, timestamps, stderr in the
 * foreground and syslog once detached.  The engine, fs/ and libfuse all log
 * through it.
 */
#ifndef REVFS_RV_LOG_H
#define REVFS_RV_LOG_H

#include <stdbool.h>

#include "engine/engine.h"

void rv_log_init(bool use_syslog, enum eng_log_level level);
void rv_log_set_syslog(bool use_syslog);
void rv_log(enum eng_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sinks for fs_set_log_sink() and eng_options.log. */
void rv_log_fs_sink(enum eng_log_level level, const char *msg);
void rv_log_eng_sink(void *arg, enum eng_log_level level, const char *msg);
/* Parse "err", "warn", "info", "debug".  0 or -1. */
int rv_log_parse_level(const char *s, enum eng_log_level *out);

#endif /* REVFS_RV_LOG_H */
