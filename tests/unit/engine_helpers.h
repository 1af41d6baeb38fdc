/*
 * engine_helpers.h — shared by the engine's unit tests: a temporary store
 * directory per test, opening with test options, and short put/get/range
 * helpers that assert success.  Header-only (static functions), included by
 * every engine test (and the fs tests that open a store).
 */
#ifndef REVFS_ENGINE_HELPERS_H
#define REVFS_ENGINE_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"

static int th_rm_one(const char *p, const struct stat *st, int flag,
                     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void th_rmrf(const char *dir)
{
	nftw(dir, th_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory; the store goes in DIR/store (not created yet). */
static inline char *th_tmpdir(void)
{
	char tmpl[] = "/tmp/revfs-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	char *store;

	assert_non_null(d);
	assert_true(asprintf(&store, "%s/store", d) > 0);
	return store;
}

static inline void th_cleanup(char *store)
{
	char *parent = strdup(store);

	*strrchr(parent, '/') = 0;
	th_rmrf(parent);
	free(parent);
	free(store);
}

static inline eng *th_open(const char *dir, const struct eng_options *opt)
{
	struct eng_options o;
	eng *e = NULL;
	int rc;

	if (opt)
		o = *opt;
	else
		eng_options_init(&o);
	rc = eng_open(dir, &o, &e);
	if (rc)
		fprintf(stderr, "eng_open(%s): %s\n", dir, eng_strerror(rc));
	assert_int_equal(rc, 0);
	return e;
}

static inline eng_rev_t th_put(eng *e, const char *k, const char *v)
{
	eng_rev_t rev = 0;

	assert_int_equal(eng_put(e, k, strlen(k), v, strlen(v), 0, &rev, NULL),
	                 0);
	return rev;
}

static inline eng_rev_t th_del(eng *e, const char *k, const char *end,
                               int64_t want_deleted)
{
	int64_t n = -1;
	eng_rev_t rev = 0;

	assert_int_equal(
	    eng_delete(e, k, strlen(k), end, end ? strlen(end) : 0, &n, &rev),
	    0);
	assert_int_equal(n, want_deleted);
	return rev;
}

/* The value of k at rev as a NUL-terminated string (static buffer), or NULL
 * if missing. */
static inline const char *th_get(eng *e, const char *k, eng_rev_t rev)
{
	static char buf[4096];
	struct eng_kv kv;

	assert_int_equal(eng_get(e, k, strlen(k), rev, NULL, &kv), 0);
	if (kv.mod_rev == 0)
		return NULL;
	assert_true(kv.value_len < sizeof(buf));
	memcpy(buf, kv.value, kv.value_len);
	buf[kv.value_len] = 0;
	eng_kv_release(&kv);
	return buf;
}

static inline int th_range(eng *e, const char *k, const char *end,
                           eng_rev_t rev, int64_t limit, unsigned flags,
                           struct eng_range_res *res)
{
	struct eng_range_req req = {
	    .key = k,
	    .key_len = strlen(k),
	    .end = end,
	    .end_len = end ? (end[0] ? strlen(end) : 1) : 0,
	    .rev = rev,
	    .limit = limit,
	    .flags = flags,
	};

	return eng_range(e, &req, res);
}

#endif /* REVFS_ENGINE_HELPERS_H */
