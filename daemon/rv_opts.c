/*
 * rv_opts.c — parsing the daemon's command line.
 *
 * libfuse's fuse_opt_parse walks argv; revfs's own -o options (data=,
 * prefix=, progress=, auto_compact=, quota=, max_value=, sync=, loglevel=,
 * attr_timeout=, and backend=, endpoints=, etcd_*= for the etcd backend)
 * are taken out and validated here, everything else (ro,
 * allow_other, default_permissions, fsname=, ...) stays in fargs for
 * fuse_session_new(), which rejects what it does not know.  `ro` is both: a
 * mount flag and the store's read-only mode.  Up to two non-option
 * arguments: [SOURCE] MOUNTPOINT, as mount.fuse3 passes them.
 */
#include "rv_opts.h"
#include "rv_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_SINGLE,
	KEY_HELP,
	KEY_VERSION,
	KEY_RO,
};

static const struct fuse_opt templates[] = {
    FUSE_OPT_KEY("-f", KEY_FOREGROUND), FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),   FUSE_OPT_KEY("-s", KEY_SINGLE),
    FUSE_OPT_KEY("-h", KEY_HELP),       FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("ro", KEY_RO),         FUSE_OPT_END,
};

int rv_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'K':
	case 'k':
		mul = 1ULL << 10;
		break;
	case 'M':
	case 'm':
		mul = 1ULL << 20;
		break;
	case 'G':
	case 'g':
		mul = 1ULL << 30;
		break;
	case 'T':
	case 't':
		mul = 1ULL << 40;
		break;
	}
	/* Accept K, KB, KiB (all powers of 1024), B or nothing. */
	if (mul > 1) {
		end++;
		if (*end == 'i')
			end++;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

int rv_parse_duration_ms(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t mul;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mul = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		mul = 86400 * 1000;
	else
		return -1;
	if (v > INT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int rv_parse_auto_compact(const char *s, enum eng_auto_compact *mode,
                          int64_t *value)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0)
		return -1;
	if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
		*mode = ENG_AUTO_COMPACT_OFF;
		*value = 0;
		return 0;
	}
	if (s[n - 1] == 'r') {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno || end != s + n - 1 || v <= 0 || *s == '-')
			return -1;
		*mode = ENG_AUTO_COMPACT_REVISION;
		*value = v;
		return 0;
	}
	if (rv_parse_duration_ms(s, value) < 0 || *value <= 0)
		return -1;
	*mode = ENG_AUTO_COMPACT_PERIODIC;
	return 0;
}

int rv_parse_sync(const char *s, enum eng_sync *mode, int *interval_ms)
{
	if (strcmp(s, "always") == 0) {
		*mode = ENG_SYNC_ALWAYS;
		return 0;
	}
	if (strcmp(s, "none") == 0) {
		*mode = ENG_SYNC_NONE;
		return 0;
	}
	if (strncmp(s, "interval", 8) == 0) {
		*mode = ENG_SYNC_INTERVAL;
		if (s[8] == '\0')
			return 0;
		if (s[8] != ':')
			return -1;
		int64_t ms;

		if (rv_parse_duration_ms(s + 9, &ms) < 0)
			return -1;
		/* A bare number after "interval:" means milliseconds. */
		if (strspn(s + 9, "0123456789") == strlen(s + 9))
			ms /= 1000;
		if (ms <= 0 || ms > 3600 * 1000)
			return -1;
		*interval_ms = (int)ms;
		return 0;
	}
	return -1;
}

char *rv_default_data_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char *p = NULL;

	if (xdg && *xdg == '/') {
		if (asprintf(&p, "%s/revfs/default", xdg) < 0)
			return NULL;
	} else if (home && *home) {
		if (asprintf(&p, "%s/.local/share/revfs/default", home) < 0)
			return NULL;
	}
	return p;
}

struct parse_ctx {
	struct rv_opts *o;
	char *err;
	size_t errlen;
	int failed;
};

static int set_str(char **dst, const char *v)
{
	char *c = strdup(v);

	if (!c)
		return -1;
	free(*dst);
	*dst = c;
	return 0;
}

/* One of revfs's own "name=value" options: 1 taken, 0 not ours, -1 bad. */
static int own_option(struct parse_ctx *c, const char *arg)
{
	struct rv_opts *o = c->o;
	const char *eq = strchr(arg, '=');
	size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
	const char *v = eq ? eq + 1 : NULL;
	uint64_t u;
	int64_t ms;

#define IS(name) (nl == strlen(name) && strncmp(arg, name, nl) == 0)
	if (!(IS("data") || IS("prefix") || IS("progress") ||
	      IS("auto_compact") || IS("quota") || IS("max_value") ||
	      IS("sync") || IS("loglevel") || IS("attr_timeout") ||
	      IS("backend") || IS("endpoints") || IS("etcd_cacert") ||
	      IS("etcd_cert") || IS("etcd_key") || IS("etcd_user") ||
	      IS("etcd_password") || IS("etcd_timeout")))
		return 0;
	if (!v) {
		snprintf(c->err, c->errlen, "option '%s' needs a value", arg);
		return -1;
	}
	if (IS("data")) {
		if (!*v || set_str(&o->data_dir, v) < 0)
			goto bad;
	} else if (IS("prefix")) {
		if (set_str(&o->prefix, v) < 0)
			goto bad;
	} else if (IS("progress")) {
		if (rv_parse_duration_ms(v, &ms) < 0 || ms < 100 ||
		    ms > INT32_MAX)
			goto bad;
		o->progress_ms = ms;
	} else if (IS("auto_compact")) {
		if (rv_parse_auto_compact(v, &o->auto_compact,
		                          &o->auto_compact_value) < 0)
			goto bad;
	} else if (IS("quota")) {
		if (rv_parse_size(v, &u) < 0 || u == 0)
			goto bad;
		o->quota = u;
	} else if (IS("max_value")) {
		if (rv_parse_size(v, &u) < 0 || u == 0 || u > (1ULL << 30))
			goto bad;
		o->max_value = u;
	} else if (IS("sync")) {
		if (rv_parse_sync(v, &o->sync, &o->sync_interval_ms) < 0)
			goto bad;
	} else if (IS("loglevel")) {
		if (rv_log_parse_level(v, &o->loglevel) < 0)
			goto bad;
	} else if (IS("attr_timeout")) {
		char *end;
		double d = strtod(v, &end);

		if (end == v || *end || d < 0 || d > 86400)
			goto bad;
		o->attr_timeout = d;
	} else if (IS("backend")) {
		if ((strcmp(v, "local") != 0 && strcmp(v, "etcd") != 0) ||
		    set_str(&o->backend, v) < 0)
			goto bad;
	} else if (IS("endpoints")) {
		if (!*v || set_str(&o->endpoints, v) < 0)
			goto bad;
	} else if (IS("etcd_cacert")) {
		if (set_str(&o->etcd_cacert, v) < 0)
			goto bad;
	} else if (IS("etcd_cert")) {
		if (set_str(&o->etcd_cert, v) < 0)
			goto bad;
	} else if (IS("etcd_key")) {
		if (set_str(&o->etcd_key, v) < 0)
			goto bad;
	} else if (IS("etcd_user")) {
		if (set_str(&o->etcd_user, v) < 0)
			goto bad;
	} else if (IS("etcd_password")) {
		if (set_str(&o->etcd_password, v) < 0)
			goto bad;
	} else if (IS("etcd_timeout")) {
		if (rv_parse_duration_ms(v, &ms) < 0 || ms < 100 ||
		    ms > 3600000)
			goto bad;
		o->etcd_timeout_ms = ms;
	}
#undef IS
	return 1;
bad:
	snprintf(c->err, c->errlen, "bad value in option '%s'", arg);
	return -1;
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_ctx *c = data;
	struct rv_opts *o = c->o;
	int r;

	switch (key) {
	case KEY_FOREGROUND:
		o->foreground = true;
		return 0;
	case KEY_DEBUG:
		o->debug = o->foreground = true;
		o->loglevel = ENG_LOG_DEBUG;
		return 1; /* libfuse prints every request too */
	case KEY_SINGLE:
		o->single_thread = true;
		return 0;
	case KEY_HELP:
		o->help = true;
		return 0;
	case KEY_VERSION:
		o->version = true;
		return 0;
	case KEY_RO:
		o->ro = true;
		return 1;
	case FUSE_OPT_KEY_OPT:
		r = own_option(c, arg);
		if (r < 0) {
			c->failed = 1;
			return -1;
		}
		return r ? 0 : 1;
	case FUSE_OPT_KEY_NONOPT:
		if (!o->mountpoint) {
			if (set_str(&o->mountpoint, arg) < 0)
				return -1;
		} else if (!o->source) {
			/* mount.fuse3 passes SOURCE MOUNTPOINT. */
			o->source = o->mountpoint;
			o->mountpoint = NULL;
			if (set_str(&o->mountpoint, arg) < 0)
				return -1;
		} else {
			snprintf(c->err, c->errlen, "unexpected argument '%s'",
			         arg);
			c->failed = 1;
			return -1;
		}
		return 0;
	default:
		return 1;
	}
}

int rv_opts_parse(int argc, char **argv, struct rv_opts *o, char *err,
                  size_t errlen)
{
	struct parse_ctx c = {o, err, errlen, 0};
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);

	memset(o, 0, sizeof(*o));
	o->sync = ENG_SYNC_ALWAYS;
	o->loglevel = ENG_LOG_INFO;
	o->attr_timeout = 60.0;
	o->fargs = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
	if (errlen)
		err[0] = '\0';
	if (fuse_opt_parse(&args, &c, templates, proc) == -1) {
		if (!err[0])
			snprintf(err, errlen, "cannot parse the options");
		o->fargs = args;
		return -1;
	}
	o->fargs = args;
	if (o->help || o->version)
		return 0;
	if (!o->mountpoint) {
		snprintf(err, errlen, "no mountpoint given");
		return -1;
	}
	if (o->backend && strcmp(o->backend, "etcd") == 0) {
		if (!o->endpoints) {
			snprintf(err, errlen,
			         "backend=etcd needs endpoints=URL[|URL...]");
			return -1;
		}
		return 0; /* no data directory */
	}
	if (o->endpoints) {
		snprintf(err, errlen, "endpoints= needs backend=etcd");
		return -1;
	}
	if (!o->data_dir && o->source && strcmp(o->source, "revfs") != 0 &&
	    strcmp(o->source, "none") != 0 && set_str(&o->data_dir, o->source))
		return -1;
	if (!o->data_dir) {
		o->data_dir = rv_default_data_dir();
		if (!o->data_dir) {
			snprintf(err, errlen,
			         "no data directory: give -o data=DIR "
			         "(neither XDG_DATA_HOME nor HOME is set)");
			return -1;
		}
	}
	return 0;
}

void rv_opts_free(struct rv_opts *o)
{
	fuse_opt_free_args(&o->fargs);
	free(o->data_dir);
	free(o->prefix);
	free(o->source);
	free(o->mountpoint);
	free(o->backend);
	free(o->endpoints);
	free(o->etcd_cacert);
	free(o->etcd_cert);
	free(o->etcd_key);
	free(o->etcd_user);
	free(o->etcd_password);
	o->data_dir = o->prefix = o->source = o->mountpoint = NULL;
	o->backend = o->endpoints = o->etcd_cacert = o->etcd_cert = NULL;
	o->etcd_key = o->etcd_user = o->etcd_password = NULL;
}
