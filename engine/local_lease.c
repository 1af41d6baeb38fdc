/*
 * local_lease.c — the lease seams of eng_int.h that the local core
 * provides: loading persisted leases, persisting grants and TTL changes,
 * revoking (through the commit queue, so "does lease X exist" is decided in
 * commit order) and listing a lease's keys from the attach index.
 *
 * Records: `L` id -> be64 ttl + name, `N` name -> be64 id, `A` id key -> "".
 * None of them takes a revision (etcd's leases are not revisioned); a
 * revoke that deletes keys takes one, for the deletions.
 */
#include "local_int.h"

#include <stdlib.h>
#include <string.h>

int local_lease_load(struct local *l,
                     int (*cb)(void *arg, const struct lease_rec *rec),
                     void *arg)
{
	leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->ro_plain);
	char lo = SP_LEASE;
	int rc = 0;

	for (leveldb_iter_seek(it, &lo, 1); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t kn, vn;
		const char *k = leveldb_iter_key(it, &kn);
		const char *v = leveldb_iter_value(it, &vn);
		struct lease_rec rec;

		if (kn < 1 || k[0] != SP_LEASE)
			break;
		if (kn != 9 || vn < 8 || vn - 8 > ENG_LEASE_NAME_MAX) {
			rc = ENG_E_CORRUPT;
			break;
		}
		memset(&rec, 0, sizeof(rec));
		rec.id = (int64_t)codec_get_be64(k + 1);
		rec.ttl = (int64_t)codec_get_be64(v);
		memcpy(rec.name, v + 8, vn - 8);
		rc = cb(arg, &rec);
		if (rc)
			break;
	}
	if (rc == 0) {
		char *err = NULL;

		leveldb_iter_get_error(it, &err);
		if (err)
			rc = local_ldb_err(l, err, "lease load");
	}
	leveldb_iter_destroy(it);
	return rc;
}

int local_lease_put(struct local *l, const struct lease_rec *rec, bool create)
{
	struct commit_req r = {
	    .type = CREQ_LEASE_PUT,
	    .lrec = rec,
	    .lcreate = create,
	    .bytes = 300,
	};

	if (!rec || rec->id <= 0)
		return ENG_E_INVAL;
	return local_commit(l, &r);
}

int local_lease_delete(struct local *l, eng_lease_t id, eng_rev_t *rev)
{
	struct commit_req r = {
	    .type = CREQ_LEASE_DEL,
	    .lid = id,
	    .bytes = 300,
	};
	int rc;

	if (l->base.opt.read_only)
		return ENG_E_READ_ONLY;
	rc = local_commit(l, &r);
	if (rc == 0 && rev)
		*rev = r.out_rev;
	return rc;
}

int local_lease_keys(struct local *l, eng_lease_t id,
                     struct eng_lease_info *info)
{
	struct cbuf lo = {0}, hi = {0}, keys = {0};
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	const leveldb_snapshot_t *snap = leveldb_create_snapshot(l->db);
	leveldb_iterator_t *it = NULL;
	size_t n = 0, off;
	char *block;
	int rc = ENG_E_NOMEM;

	info->keys = NULL;
	info->nkeys = 0;
	info->priv_ = NULL;
	leveldb_readoptions_set_snapshot(ro, snap);
	if (codec_attach_key(&lo, id, "", 0) ||
	    codec_attach_key(&hi, id + 1, "", 0))
		goto out;
	/* First the key bytes (length-prefixed) into one buffer, then one
	 * block in the result's arena: the kv array, then the bytes. */
	it = leveldb_create_iterator(l->db, ro);
	for (leveldb_iter_seek(it, lo.p, lo.len); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t kn;
		const char *k = leveldb_iter_key(it, &kn);

		if (codec_cmp(k, kn, hi.p, hi.len) >= 0)
			break;
		if (cbuf_add_be64(&keys, kn - 9) ||
		    cbuf_add(&keys, k + 9, kn - 9))
			goto out;
		n++;
	}
	rc = 0;
	if (n == 0)
		goto out;
	rc = ENG_E_NOMEM;
	info->priv_ = eng_arena_new();
	if (!info->priv_)
		goto out;
	block =
	    eng_arena_alloc(info->priv_, n * sizeof(struct eng_kv) + keys.len);
	if (!block)
		goto out;
	info->keys = (struct eng_kv *)block;
	info->nkeys = n;
	memcpy(block + n * sizeof(struct eng_kv), keys.p, keys.len);
	off = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = block + n * sizeof(struct eng_kv) + off;
		size_t kn = (size_t)codec_get_be64(p);

		memset(&info->keys[i], 0, sizeof(struct eng_kv));
		info->keys[i].key = p + 8;
		info->keys[i].key_len = kn;
		off += 8 + kn;
	}
	rc = 0;
out:
	if (rc) {
		eng_arena_free(info->priv_);
		info->priv_ = NULL;
		info->keys = NULL;
		info->nkeys = 0;
	}
	if (it)
		leveldb_iter_destroy(it);
	leveldb_release_snapshot(l->db, snap);
	leveldb_readoptions_destroy(ro);
	cbuf_free(&lo);
	cbuf_free(&hi);
	cbuf_free(&keys);
	return rc;
}
