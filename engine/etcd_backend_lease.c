/*
 * etcd_backend_lease.c — the etcd backend's leases: etcd's own leases
 * (grant, keepalive, revoke, time-to-live, list), plus the engine's lease
 * names, which etcd does not have.
 *
 * A name is two records in the reserved key space (etcd_backend.h), both
 * attached to the lease they name, so they vanish with it (revoke or
 * expiry) in the same revision as its keys:
 *
 *   ETCDB_NAME_PFX NAME        -> the lease id (decimal)   (lookup by name)
 *   ETCDB_ID_PFX   %016llx id  -> NAME                     (name of an id)
 *
 * A named grant is etcd's grant followed by one txn that creates both
 * records only if the name record does not exist (else the new lease is
 * revoked and the grant fails ENG_E_LEASE_EXISTS): uniqueness is decided by
 * etcd, across every client of the cluster.  Unlike the local backend a
 * named grant therefore takes one revision (no event shows: the records
 * are outside every user range).
 *
 * etcd cannot change a lease's TTL.  eng_lease_set_ttl with the granted TTL
 * is a keepalive; with another TTL the attached keys are moved to a
 * temporary lease, the lease is granted again with the same id and the new
 * TTL, and the keys moved back (two txns guarded by lease compares): the
 * id is kept, each attached key gets two new versions (two PUT events).
 */
#include "etcd_backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_key(const char *name, char **out, size_t *len)
{
	size_t n = strlen(name);
	char *k = malloc(ETCDB_NAME_PFX_LEN + n);

	if (!k)
		return ENG_E_NOMEM;
	memcpy(k, ETCDB_NAME_PFX, ETCDB_NAME_PFX_LEN);
	memcpy(k + ETCDB_NAME_PFX_LEN, name, n);
	*out = k;
	*len = ETCDB_NAME_PFX_LEN + n;
	return 0;
}

/* buf: at least ETCDB_ID_PFX_LEN + 17 bytes. */
static size_t id_key(eng_lease_t id, char *buf)
{
	memcpy(buf, ETCDB_ID_PFX, ETCDB_ID_PFX_LEN);
	snprintf(buf + ETCDB_ID_PFX_LEN, 17, "%016" PRIx64, (uint64_t)id);
	return ETCDB_ID_PFX_LEN + 16;
}

int etcdb_lease_grant(eng *e, eng_lease_t id, int64_t ttl, const char *name,
                      eng_lease_t *out)
{
	struct etcdb *ee = (struct etcdb *)e;
	char idk[ETCDB_ID_PFX_LEN + 17], idval[24];
	struct eng_txn_res res = {0};
	eng_lease_t got = 0;
	char *nk = NULL;
	size_t nkl = 0;
	int rc;

	rc = ETCDB_RETRY(ee, etcd_lease_grant(ee->c, id, ttl, &got, NULL));
	if (rc)
		return rc;
	if (name && *name) {
		struct eng_cmp cmp = {0};
		struct eng_op ops[2] = {{0}};
		struct eng_txn txn = {
		    .cmps = &cmp, .ncmps = 1, .success = ops, .nsuccess = 2};

		rc = name_key(name, &nk, &nkl);
		if (rc)
			goto out;
		snprintf(idval, sizeof(idval), "%lld", (long long)got);
		cmp.key = nk;
		cmp.key_len = nkl;
		cmp.target = ENG_CMP_VERSION;
		cmp.result = ENG_CMP_EQ;
		ops[0].type = ENG_OP_PUT;
		ops[0].key = nk;
		ops[0].key_len = nkl;
		ops[0].value = idval;
		ops[0].value_len = strlen(idval);
		ops[0].lease = got;
		ops[1].type = ENG_OP_PUT;
		ops[1].key = idk;
		ops[1].key_len = id_key(got, idk);
		ops[1].value = name;
		ops[1].value_len = strlen(name);
		ops[1].lease = got;
		rc = ETCDB_RETRY(ee, etcd_txn(ee->c, &txn, &res));
		if (!rc && !res.succeeded)
			rc = ENG_E_LEASE_EXISTS;
		if (!rc)
			etcdb_seen_rev(ee, res.header_rev);
	}
out:
	if (rc) {
		/* Best effort: an unnamed lease left behind would only
		 * expire after its TTL. */
		if (etcd_lease_revoke(ee->c, got, NULL))
			eng_logf(&e->opt, ENG_LOG_WARN,
			         "etcd: could not revoke lease %lld after a "
			         "failed grant",
			         (long long)got);
	} else if (out) {
		*out = got;
	}
	eng_txn_res_release(&res);
	free(nk);
	return rc;
}

int etcdb_lease_lookup(eng *e, const char *name, eng_lease_t *out)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct eng_range_req req = {0};
	struct eng_range_res res;
	char *nk;
	size_t nkl;
	int rc;

	rc = name_key(name, &nk, &nkl);
	if (rc)
		return rc;
	req.key = nk;
	req.key_len = nkl;
	rc = ETCDB_RETRY(ee, etcd_range(ee->c, &req, &res));
	if (!rc && (res.n != 1 || res.kvs[0].lease == 0))
		rc = ENG_E_LEASE_NOT_FOUND;
	if (!rc)
		*out = res.kvs[0].lease;
	eng_range_res_release(&res);
	free(nk);
	return rc;
}

int etcdb_lease_keepalive(eng *e, eng_lease_t id, int64_t *ttl)
{
	struct etcdb *ee = (struct etcdb *)e;

	return ETCDB_RETRY(ee, etcd_lease_keepalive(ee->c, id, ttl));
}

/* The name of lease id into name[ENG_LEASE_NAME_MAX + 1] ("" if none). */
static int lease_name(struct etcdb *ee, eng_lease_t id, char *name)
{
	char idk[ETCDB_ID_PFX_LEN + 17];
	struct eng_range_req req = {.key = idk};
	struct eng_range_res res;
	int rc;

	req.key_len = id_key(id, idk);
	name[0] = '\0';
	rc = ETCDB_RETRY(ee, etcd_range(ee->c, &req, &res));
	if (!rc && res.n == 1) {
		size_t n = res.kvs[0].value_len;

		if (n > ENG_LEASE_NAME_MAX)
			n = ENG_LEASE_NAME_MAX;
		memcpy(name, res.kvs[0].value, n);
		name[n] = '\0';
	}
	eng_range_res_release(&res);
	return rc;
}

/* Drop the reserved keys from a key list (in place). */
static void filter_keys(struct eng_lease_info *info)
{
	size_t j = 0;

	for (size_t i = 0; i < info->nkeys; i++)
		if (!etcdb_reserved(info->keys[i].key, info->keys[i].key_len))
			info->keys[j++] = info->keys[i];
	info->nkeys = j;
}

int etcdb_lease_ttl(eng *e, eng_lease_t id, unsigned flags,
                    struct eng_lease_info *out)
{
	struct etcdb *ee = (struct etcdb *)e;
	int rc;

	rc = ETCDB_RETRY(ee, etcd_lease_ttl(ee->c, id, flags, out));
	if (rc)
		return rc;
	filter_keys(out);
	rc = lease_name(ee, id, out->name);
	if (rc)
		eng_lease_info_release(out);
	return rc;
}

int etcdb_lease_revoke(eng *e, eng_lease_t id, eng_rev_t *rev)
{
	struct etcdb *ee = (struct etcdb *)e;
	eng_rev_t r = 0;
	int rc;

	rc = ETCDB_RETRY(ee, etcd_lease_revoke(ee->c, id, &r));
	if (!rc) {
		etcdb_seen_rev(ee, r);
		if (rev)
			*rev = r;
	}
	return rc;
}

/*
 * Move every key of `from` (info->keys, including the name records) to
 * lease `to` in one txn, provided each is still attached to `from`.
 */
static int move_keys(struct etcdb *ee, const struct eng_lease_info *info,
                     eng_lease_t from, eng_lease_t to)
{
	struct eng_txn_res res = {0};
	struct eng_cmp *cmps;
	struct eng_op *ops;
	struct eng_txn txn = {0};
	size_t n = info->nkeys;
	int rc;

	if (n == 0)
		return 0;
	if (n > 1024)
		return ENG_E_TOO_MANY_OPS;
	cmps = calloc(n, sizeof(*cmps));
	ops = calloc(n, sizeof(*ops));
	if (!cmps || !ops) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		cmps[i].key = info->keys[i].key;
		cmps[i].key_len = info->keys[i].key_len;
		cmps[i].target = ENG_CMP_LEASE;
		cmps[i].result = ENG_CMP_EQ;
		cmps[i].number = from;
		ops[i].type = ENG_OP_PUT;
		ops[i].key = info->keys[i].key;
		ops[i].key_len = info->keys[i].key_len;
		ops[i].value = "";
		ops[i].flags = ENG_PUT_IGNORE_VALUE;
		ops[i].lease = to;
	}
	txn.cmps = cmps;
	txn.ncmps = n;
	txn.success = ops;
	txn.nsuccess = n;
	rc = etcd_txn(ee->c, &txn, &res);
	if (!rc && !res.succeeded)
		rc = ENG_E_AGAIN; /* a key changed meanwhile */
	if (!rc)
		etcdb_seen_rev(ee, res.header_rev);
out:
	eng_txn_res_release(&res);
	free(cmps);
	free(ops);
	return rc;
}

int etcdb_lease_set_ttl(eng *e, eng_lease_t id, int64_t ttl)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct eng_lease_info info = {0}, moved = {0};
	eng_lease_t tmp = 0, again = 0;
	int rc, try;

	for (try = 0; try < 3; try++) {
		rc = etcd_lease_ttl(ee->c, id, ENG_LEASE_KEYS, &info);
		if (rc)
			return rc;
		if (info.granted_ttl == ttl) {
			eng_lease_info_release(&info);
			return etcd_lease_keepalive(ee->c, id, NULL);
		}
		if (!tmp) {
			rc = etcd_lease_grant(ee->c, 0, ttl, &tmp, NULL);
			if (rc)
				goto out;
		}
		rc = move_keys(ee, &info, id, tmp);
		if (rc != ENG_E_AGAIN)
			break;
		eng_lease_info_release(&info);
	}
	if (rc)
		goto out;
	rc = etcd_lease_revoke(ee->c, id, NULL);
	if (!rc)
		rc = etcd_lease_grant(ee->c, id, ttl, &again, NULL);
	if (rc) {
		eng_logf(&e->opt, ENG_LOG_ERR,
		         "etcd: lease %lld lost while changing its TTL; its "
		         "keys are on lease %lld",
		         (long long)id, (long long)tmp);
		tmp = 0; /* keep the keys alive on it */
		goto out;
	}
	/* The keys now on tmp: the same list (they cannot leave tmp, nobody
	 * else knows it, except by a delete). */
	rc = etcd_lease_ttl(ee->c, tmp, ENG_LEASE_KEYS, &moved);
	if (!rc)
		rc = move_keys(ee, &moved, tmp, id);
out:
	if (tmp && etcd_lease_revoke(ee->c, tmp, NULL) == 0)
		tmp = 0;
	eng_lease_info_release(&info);
	eng_lease_info_release(&moved);
	return rc == ENG_E_AGAIN ? ENG_E_LEASE_NOT_FOUND : rc;
}

int etcdb_lease_list(eng *e, struct eng_lease_info **out, size_t *n)
{
	struct etcdb *ee = (struct etcdb *)e;
	struct eng_lease_info *v = NULL;
	eng_lease_t *ids = NULL;
	size_t nids = 0, j = 0;
	int rc;

	rc = etcd_lease_list(ee->c, &ids, &nids);
	if (rc || nids == 0)
		goto out;
	v = calloc(nids, sizeof(*v));
	if (!v) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		struct eng_lease_info li;

		rc = etcdb_lease_ttl(e, ids[i], 0, &li);
		if (rc == ENG_E_LEASE_NOT_FOUND)
			continue; /* expired meanwhile */
		if (rc)
			goto out;
		eng_lease_info_release(&li);
		v[j++] = li;
	}
	rc = 0;
out:
	free(ids);
	if (rc) {
		free(v);
		return rc;
	}
	if (j == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = j;
	return 0;
}
