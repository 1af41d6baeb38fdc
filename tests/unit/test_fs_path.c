/*
 * test_fs_path.c — parsing of looked-up names (fs_parse_name): plain names,
 * KEY@REV, @REV, KEY@history, KEY@ifrev=REV, control names, and the `@`
 * forms that mean nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "fs/fs_name.h"
#include "fs/fs_special.h"

static void test_plain(void **state)
{
	struct fs_pname pn;

	(void)state;
	assert_int_equal(fs_parse_name("key", &pn), 0);
	assert_int_equal(pn.kind, FS_P_PLAIN);
	assert_int_equal(pn.base_len, 3);
	assert_int_equal(fs_parse_name("user%40host", &pn), 0);
	assert_int_equal(pn.kind, FS_P_PLAIN);
}

static void test_at_rev(void **state)
{
	struct fs_pname pn;

	(void)state;
	assert_int_equal(fs_parse_name("key@1200", &pn), 0);
	assert_int_equal(pn.kind, FS_P_AT_REV);
	assert_int_equal(pn.rev, 1200);
	assert_int_equal(pn.base_len, 3);
	assert_memory_equal(pn.base, "key", 3);
	assert_int_equal(fs_parse_name("@77", &pn), 0);
	assert_int_equal(pn.kind, FS_P_DIR_REV);
	assert_int_equal(pn.rev, 77);
	assert_int_equal(pn.base_len, 0);
	/* Revision 0, signs, overflow and junk mean nothing. */
	assert_int_equal(fs_parse_name("key@0", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("@0", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("key@-1", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("key@+1", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("key@12a", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("key@", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("key@99999999999999999999", &pn),
	                 -ENOENT);
	assert_int_equal(fs_parse_name("key@9223372036854775807", &pn), 0);
	assert_int_equal(pn.rev, INT64_MAX);
}

static void test_history_and_ifrev(void **state)
{
	struct fs_pname pn;

	(void)state;
	assert_int_equal(fs_parse_name("a%25b@history", &pn), 0);
	assert_int_equal(pn.kind, FS_P_HISTORY);
	assert_int_equal(pn.base_len, 5);
	assert_int_equal(fs_parse_name("k@ifrev=42", &pn), 0);
	assert_int_equal(pn.kind, FS_P_IFREV);
	assert_int_equal(pn.rev, 42);
	/* ifrev=0: "create only if absent". */
	assert_int_equal(fs_parse_name("k@ifrev=0", &pn), 0);
	assert_int_equal(pn.kind, FS_P_IFREV);
	assert_int_equal(pn.rev, 0);
	assert_int_equal(fs_parse_name("k@ifrev=", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("k@ifrev=x", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("k@History", &pn), -ENOENT);
	assert_int_equal(fs_parse_name("k@history@1", &pn), -ENOENT);
}

static void test_special(void **state)
{
	struct fs_pname pn;
	eng_rev_t rev;
	int idx;

	(void)state;
	idx = fs_special_find("@revision", &rev);
	assert_true(idx >= 0);
	assert_string_equal(fs_special_get(idx)->name, "@revision");
	assert_int_equal(fs_parse_name("@revision", &pn), 0);
	assert_int_equal(pn.kind, FS_P_SPECIAL);
	assert_int_equal(pn.special, idx);
	assert_int_equal(fs_parse_name("@nosuchthing", &pn), -ENOENT);
	assert_int_equal(fs_special_find("@revisionx", &rev), -1);
	assert_null(fs_special_get(-1));
}

static void test_parse_rev(void **state)
{
	eng_rev_t r;

	(void)state;
	assert_int_equal(fs_parse_rev("0", 1, &r), 0);
	assert_int_equal(r, 0);
	assert_int_equal(fs_parse_rev("123", 3, &r), 0);
	assert_int_equal(r, 123);
	assert_int_equal(fs_parse_rev("12", 1, &r), 0); /* length counts */
	assert_int_equal(r, 1);
	assert_int_equal(fs_parse_rev("", 0, &r), -EINVAL);
	assert_int_equal(fs_parse_rev(" 1", 2, &r), -EINVAL);
	assert_int_equal(fs_parse_rev("9223372036854775808", 19, &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_at_rev),
	    cmocka_unit_test(test_history_and_ifrev),
	    cmocka_unit_test(test_special),
	    cmocka_unit_test(test_parse_rev),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
