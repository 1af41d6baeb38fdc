/*
 * lease.c — the lease manager (temporary placeholder so the local core
 * links; the real manager replaces it).  Every call fails or does nothing.
 */
#include "eng_int.h"

#include <stdlib.h>

int lease_mgr_new(struct local *l, const struct eng_options *opt,
                  struct lease_mgr **out)
{
	*out = NULL;
	return 0;
}

void lease_mgr_free(struct lease_mgr *m)
{
}

int64_t lease_mgr_count(struct lease_mgr *m)
{
	return 0;
}

int lease_mgr_grant(struct lease_mgr *m, eng_lease_t id, int64_t ttl,
                    const char *name, eng_lease_t *out)
{
	return ENG_E_INTERNAL;
}

int lease_mgr_lookup(struct lease_mgr *m, const char *name, eng_lease_t *out)
{
	return ENG_E_INTERNAL;
}

int lease_mgr_keepalive(struct lease_mgr *m, eng_lease_t id, int64_t *ttl)
{
	return ENG_E_INTERNAL;
}

int lease_mgr_set_ttl(struct lease_mgr *m, eng_lease_t id, int64_t ttl)
{
	return ENG_E_INTERNAL;
}

int lease_mgr_revoke(struct lease_mgr *m, eng_lease_t id, eng_rev_t *rev)
{
	return ENG_E_INTERNAL;
}

int lease_mgr_ttl(struct lease_mgr *m, eng_lease_t id, unsigned flags,
                  struct eng_lease_info *out)
{
	return ENG_E_INTERNAL;
}

int lease_mgr_list(struct lease_mgr *m, struct eng_lease_info **out,
                   size_t *n)
{
	return ENG_E_INTERNAL;
}
