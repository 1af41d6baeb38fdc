/*
 * test_fs_name.c — the name encoding of fs/fs_name.c: every byte string
 * round-trips, names are canonical (one name per segment), the special
 * segments and the twin/hashed forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_name.h"

static void assert_encodes(const char *seg, size_t len, const char *want)
{
	char out[FS_NAME_MAX + 1];
	int n = fs_name_encode(seg, len, false, out);

	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_plain_and_escapes(void **state)
{
	(void)state;
	assert_encodes("abc", 3, "abc");
	assert_encodes("a b", 3, "a b");
	assert_encodes("50%", 3, "50%25");
	assert_encodes("user@host", 9, "user%40host");
	assert_encodes("a\nb", 3, "a%0Ab");
	assert_encodes("\x7f", 1, "%7F");
	assert_encodes("a\0b", 3, "a%00b");
	assert_encodes("caf\xc3\xa9", 5, "caf\xc3\xa9"); /* UTF-8 kept */
}

static void test_special_segments(void **state)
{
	(void)state;
	assert_encodes("", 0, "%2F");
	assert_encodes(".", 1, "%2E");
	assert_encodes("..", 2, "%2E%2E");
	assert_encodes("...", 3, "...");
	assert_encodes(".a", 2, ".a");
}

static void assert_decodes(const char *name, const char *seg, size_t len)
{
	struct fs_dname dn;

	assert_int_equal(fs_name_decode(name, strlen(name), &dn), 0);
	assert_false(dn.twin);
	assert_false(dn.hashed);
	assert_int_equal(dn.len, len);
	assert_memory_equal(dn.seg, seg, len);
}

static void test_decode(void **state)
{
	(void)state;
	assert_decodes("abc", "abc", 3);
	assert_decodes("%2F", "", 0);
	assert_decodes("%2E", ".", 1);
	assert_decodes("%2E%2E", "..", 2);
	assert_decodes("a%00b", "a\0b", 3);
	assert_decodes("50%25", "50%", 3);
}

static void test_non_canonical_refused(void **state)
{
	struct fs_dname dn;
	static const char *const bad[] = {
	    "%41",   /* 'A' needs no escape */
	    "%2e",   /* lowercase hex */
	    "%2",    /* short escape */
	    "a%zzb", /* not hex */
	    "a%2Fb", /* '/' inside a segment would alias a deeper key */
	    "%2E.",  /* ".." is written %2E%2E */
	    "%2Ea",  /* '.' needs no escape here */
	    "%",     /* a lone twin mark of nothing */
	    "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fs_name_decode(bad[i], strlen(bad[i]), &dn),
		                 -EINVAL);
}

static void test_twin(void **state)
{
	struct fs_dname dn;

	(void)state;
	assert_int_equal(fs_name_decode("a%", 2, &dn), 0);
	assert_true(dn.twin);
	assert_int_equal(dn.len, 1);
	assert_memory_equal(dn.seg, "a", 1);
	assert_int_equal(fs_name_decode("50%25%", 6, &dn), 0);
	assert_true(dn.twin);
	assert_int_equal(dn.len, 3);
	assert_memory_equal(dn.seg, "50%", 3);
}

static void test_long_segments(void **state)
{
	char seg[400], out[FS_NAME_MAX + 1];
	struct fs_dname dn;
	int n;

	(void)state;
	/* 255 raw bytes: exactly at the limit, plain. */
	memset(seg, 'x', sizeof(seg));
	assert_int_equal(fs_name_encode(seg, 255, false, out), 255);
	/* 256: too long to create, hashed when listed. */
	assert_int_equal(fs_name_encode(seg, 256, false, out), -ENAMETOOLONG);
	n = fs_name_encode(seg, 256, true, out);
	assert_true(n > 0 && n <= FS_NAME_MAX);
	assert_non_null(strstr(out, "%%"));
	assert_int_equal(fs_name_decode(out, (size_t)n, &dn), 0);
	assert_true(dn.hashed);
	assert_int_equal(dn.len, FS_NAME_HASH_KEEP);
	assert_memory_equal(dn.seg, seg, dn.len);
	assert_true(dn.hash == fs_hash64(seg, 256, 0));
	/* Escapes are never cut in half: 100 NULs = 300 bytes encoded. */
	memset(seg, 0, 100);
	n = fs_name_encode(seg, 100, true, out);
	assert_true(n > 0);
	assert_int_equal(fs_name_decode(out, (size_t)n, &dn), 0);
	assert_true(dn.hashed);
	assert_int_equal(dn.len, FS_NAME_HASH_KEEP / 3);
	/* A hashed name of a different segment differs. */
	char out2[FS_NAME_MAX + 1];

	memset(seg, 'x', 300);
	fs_name_encode(seg, 300, true, out);
	seg[299] = 'y';
	fs_name_encode(seg, 300, true, out2);
	assert_string_not_equal(out, out2);
}

/* Round trip over random byte strings (so the encoding is injective). */
static void test_random_round_trip(void **state)
{
	char seg[90], out[FS_NAME_MAX + 1];
	struct fs_dname dn;
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(rand_r(&seed) % 85);
		int n;

		for (size_t j = 0; j < len; j++) {
			int r = rand_r(&seed);

			/* Bias towards the bytes that need care. */
			seg[j] = (r & 3) == 0 ? "%@./\0\n\x7f"[r % 7]
			                      : (char)(r >> 3);
		}
		if (memchr(seg, '/', len))
			continue; /* keys are split on '/' */
		n = fs_name_encode(seg, len, false, out);
		assert_true(n > 0);
		assert_null(memchr(out, '/', (size_t)n));
		assert_null(memchr(out, '@', (size_t)n));
		assert_null(memchr(out, '\0', (size_t)n));
		assert_int_equal(fs_name_decode(out, (size_t)n, &dn), 0);
		assert_int_equal(dn.len, len);
		assert_memory_equal(dn.seg, seg, len);
		assert_false(dn.twin || dn.hashed);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_and_escapes),
	    cmocka_unit_test(test_special_segments),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_non_canonical_refused),
	    cmocka_unit_test(test_twin),
	    cmocka_unit_test(test_long_segments),
	    cmocka_unit_test(test_random_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
