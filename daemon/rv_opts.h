/*
 * rv_opts.h — the daemon's command line: revfs [-f] [-d] [-o opt,...]
 * [SOURCE] MOUNTPOINT (docs/reference.md §1).
 */
#ifndef REVFS_RV_OPTS_H
#define REVFS_RV_OPTS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

struct rv_opts {
	char *data_dir;      /* malloc'd; the default if not given */
	char *prefix;        /* malloc'd or NULL */
	int64_t progress_ms; /* 0: the engine's default */
	enum eng_auto_compact auto_compact;
	int64_t auto_compact_value; /* ms or revisions */
	uint64_t quota;             /* 0: default */
	uint64_t max_value;         /* 0: default */
	enum eng_sync sync;
	int sync_interval_ms; /* 0: default */
	bool ro;
	enum eng_log_level loglevel;
	double attr_timeout;
	bool foreground;
	bool debug;
	bool single_thread;
	bool help;
	bool version;
	/* backend=etcd (docs/etcd-backend.md); all malloc'd or NULL */
	char *backend;     /* NULL or "local": LevelDB in data_dir */
	char *endpoints;   /* "URL1|URL2|..." */
	char *etcd_cacert; /* TLS CA bundle */
	char *etcd_cert;   /* TLS client certificate */
	char *etcd_key;    /* its key */
	char *etcd_user;
	char *etcd_password;
	int64_t etcd_timeout_ms; /* one request; 0: the default */
	char *source;            /* malloc'd or NULL */
	char *mountpoint;        /* malloc'd or NULL */
	struct fuse_args fargs;  /* the options libfuse gets */
};

/* "1536K", "2G", "100" -> bytes.  0 or -1. */
int rv_parse_size(const char *s, uint64_t *out);
/* "100ms", "5s", "1h", "2d", "30" (seconds) -> ms.  0 or -1. */
int rv_parse_duration_ms(const char *s, int64_t *out);
/* "off", "0", "1h" (PERIODIC, ms), "10000r" (REVISION). 0 or -1. */
int rv_parse_auto_compact(const char *s, enum eng_auto_compact *mode,
                          int64_t *value);
/* "always", "none", "interval", "interval:MS".  0 or -1. */
int rv_parse_sync(const char *s, enum eng_sync *mode, int *interval_ms);
/* The default data directory (malloc'd), or NULL without HOME. */
char *rv_default_data_dir(void);

/*
 * Parse argv.  Returns 0, or -1 with a message in err.  o->fargs must be
 * freed with rv_opts_free() in both cases.
 */
int rv_opts_parse(int argc, char **argv, struct rv_opts *o, char *err,
                  size_t errlen);
void rv_opts_free(struct rv_opts *o);

#endif /* REVFS_RV_OPTS_H */
