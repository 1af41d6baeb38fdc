/*
 * test_lease_index.c — the local core's side of leases: grants persisted
 * without a revision, the key<->lease attach index kept through puts that
 * move a key to another lease, deletes and revokes (one revision for all
 * of a lease's keys, none if it has none), duplicate ids and names, leases
 * surviving a reopen, and local_check() agreeing throughout.
 */
#include "engine_helpers.h"
#include "engine/local_int.h"

static void report(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "check: %s\n", msg);
}

static void check(eng *e)
{
	assert_int_equal(local_check(local_from_eng(e), report, NULL), 0);
}

static void test_attach_index(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_lease_info info;
	eng_lease_t l1, l2, other;
	eng_rev_t rev, rrev;
	struct eng_kv kv;

	(void)state;
	rev = eng_current_rev(e);
	assert_int_equal(eng_lease_grant(e, 0, 60, "one", &l1), 0);
	assert_int_equal(eng_lease_grant(e, 0, 60, NULL, &l2), 0);
	/* Leases take no revision. */
	assert_int_equal(eng_current_rev(e), rev);
	assert_int_equal(eng_lease_grant(e, l1, 60, NULL, &other),
	                 ENG_E_LEASE_EXISTS);
	assert_int_equal(eng_lease_grant(e, 0, 60, "one", &other),
	                 ENG_E_LEASE_EXISTS);

	assert_int_equal(eng_put(e, "a", 1, "1", 1, l1, NULL, NULL), 0);
	assert_int_equal(eng_put(e, "b", 1, "1", 1, l1, NULL, NULL), 0);
	assert_int_equal(eng_put(e, "c", 1, "1", 1, l1, NULL, NULL), 0);
	/* b moves to l2, c drops its lease, a stays. */
	assert_int_equal(eng_put(e, "b", 1, "2", 1, l2, NULL, NULL), 0);
	assert_int_equal(eng_put(e, "c", 1, "2", 1, 0, NULL, NULL), 0);
	check(e);
	assert_int_equal(eng_lease_ttl(e, l1, ENG_LEASE_KEYS, &info), 0);
	assert_int_equal(info.nkeys, 1);
	assert_memory_equal(info.keys[0].key, "a", 1);
	eng_lease_info_release(&info);

	/* Survives a reopen. */
	eng_close(e);
	e = th_open(dir, NULL);
	assert_int_equal(eng_lease_lookup(e, "one", &other), 0);
	assert_int_equal(other, l1);

	rev = eng_current_rev(e);
	assert_int_equal(eng_lease_revoke(e, l1, &rrev), 0);
	assert_int_equal(rrev, rev + 1);
	assert_null(th_get(e, "a", 0));
	assert_string_equal(th_get(e, "b", 0), "2");
	assert_string_equal(th_get(e, "c", 0), "2");
	assert_int_equal(eng_lease_revoke(e, l1, &rrev), ENG_E_LEASE_NOT_FOUND);
	/* The name is free again. */
	assert_int_equal(eng_lease_grant(e, 0, 60, "one", &other), 0);
	check(e);

	/* A deleted key leaves no attachment: revoking deletes nothing and
	 * takes no revision. */
	assert_int_equal(eng_delete(e, "b", 1, NULL, 0, NULL, NULL), 0);
	rev = eng_current_rev(e);
	assert_int_equal(eng_lease_revoke(e, l2, &rrev), 0);
	assert_int_equal(rrev, rev);
	assert_int_equal(eng_current_rev(e), rev);
	assert_int_equal(eng_get(e, "c", 1, 0, NULL, &kv), 0);
	assert_int_equal(kv.lease, 0);
	eng_kv_release(&kv);
	check(e);
	eng_close(e);
	th_cleanup(dir);
}

static void test_revoke_many_one_revision(void **state)
{
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	struct eng_range_res res;
	eng_lease_t id;
	eng_rev_t rev, rrev;
	char k[16];

	(void)state;
	assert_int_equal(eng_lease_grant(e, 0, 60, NULL, &id), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "m/%02d", i);
		assert_int_equal(
		    eng_put(e, k, strlen(k), "v", 1, id, NULL, NULL), 0);
	}
	th_put(e, "m/zz", "no lease");
	rev = eng_current_rev(e);
	assert_int_equal(eng_lease_revoke(e, id, &rrev), 0);
	assert_int_equal(rrev, rev + 1);
	assert_int_equal(th_range(e, "m/", "m0", 0, 0, 0, &res), 0);
	assert_int_equal(res.n, 1);
	eng_range_res_release(&res);
	/* Every deletion carries the same revision. */
	assert_int_equal(eng_history(e, "m/07", 4, 0, 0, &res), 0);
	assert_int_equal(res.n, 2);
	assert_true(res.kvs[1].deleted);
	assert_int_equal(res.kvs[1].mod_rev, rrev);
	eng_range_res_release(&res);
	/* A put with the revoked lease fails. */
	assert_int_equal(eng_put(e, "m/x", 3, "v", 1, id, NULL, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	check(e);
	eng_close(e);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_attach_index),
	    cmocka_unit_test(test_revoke_many_one_revision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
