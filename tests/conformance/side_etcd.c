/*
 * side_etcd.c — the etcd side of the conformance test: every operation
 * goes through engine/etcd_client.h to a real etcd's JSON gateway.
 *
 * Lone puts and deletes use etcd's Put and DeleteRange endpoints (not a
 * txn), compactions are physical (so a read at the compaction revision
 * cannot depend on etcd's background removal), and watches ask for
 * progress notifications (etcd must run with a short
 * --experimental-watch-progress-notify-interval, as run.sh does).
 */
#include "conf.h"
#include "engine/etcd_client.h"

#include <stdlib.h>
#include <string.h>

static void etcd_log(void *arg, enum eng_log_level level, const char *msg)
{
	if (level <= ENG_LOG_WARN || conf_verbose)
		fprintf(stderr, "  [%s] %s\n", (const char *)arg, msg);
}

static struct etcd_client *cli(struct side *s)
{
	return s->impl;
}

static int e_range(struct side *s, const struct eng_range_req *req,
                   struct cres *r)
{
	struct eng_range_res res;
	int rc = etcd_range(cli(s), req, &res);

	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_range(s->idx, &res, r);
	r->err = rc;
	etcd_range_res_release(&res);
	return 0;
}

static int e_txn(struct side *s, const struct eng_txn *txn, struct cres *r)
{
	struct eng_txn_res res;
	int rc = etcd_txn(cli(s), txn, &res);

	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_txn(s->idx, &res, r);
	r->err = rc;
	etcd_txn_res_release(&res);
	return 0;
}

static int e_put(struct side *s, const struct eng_op *op, struct cres *r)
{
	struct eng_txn_res res;
	int rc = etcd_put(cli(s), op, &res);

	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_txn(s->idx, &res, r);
	r->err = rc;
	etcd_txn_res_release(&res);
	return 0;
}

static int e_del(struct side *s, const struct eng_op *op, struct cres *r)
{
	struct eng_txn_res res;
	int rc = etcd_delete(cli(s), op, &res);

	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_txn(s->idx, &res, r);
	r->err = rc;
	etcd_txn_res_release(&res);
	return 0;
}

static int e_compact(struct side *s, eng_rev_t rev, bool wait, struct cres *r)
{
	/* Always physical (see above).  etcd's header revision is left out:
	 * eng_compact has none; check_revs compares the revisions after. */
	memset(r, 0, sizeof(*r));
	r->err = etcd_compact(cli(s), rev, true, NULL);
	return 0;
}

static int e_lease_grant(struct side *s, eng_lease_t id, int64_t ttl,
                         eng_lease_t *out, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = etcd_lease_grant(cli(s), id, ttl, out, NULL);
	return 0;
}

static int e_lease_revoke(struct side *s, eng_lease_t id, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = etcd_lease_revoke(cli(s), id, &r->rev);
	return 0;
}

static int e_lease_ttl(struct side *s, eng_lease_t id, struct cres *r)
{
	struct eng_lease_info info;
	int rc = etcd_lease_ttl(cli(s), id, ENG_LEASE_KEYS, &info);

	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_lease(&info, r);
	r->err = rc;
	etcd_lease_info_release(&info);
	return 0;
}

static int e_lease_keepalive(struct side *s, eng_lease_t id, struct cres *r)
{
	memset(r, 0, sizeof(*r));
	r->err = etcd_lease_keepalive(cli(s), id, &r->ttl);
	return 0;
}

static int e_lease_list(struct side *s, struct cres *r)
{
	eng_lease_t *ids = NULL;
	size_t n = 0;
	int rc = etcd_lease_list(cli(s), &ids, &n);

	memset(r, 0, sizeof(*r));
	if (!rc)
		cres_from_lease_ids(s->idx, ids, n, r);
	r->err = rc;
	free(ids);
	return 0;
}

static int e_lease_alive(struct side *s, eng_lease_t id)
{
	struct eng_lease_info info;
	int rc = etcd_lease_ttl(cli(s), id, 0, &info);

	etcd_lease_info_release(&info);
	if (rc == ENG_E_LEASE_NOT_FOUND)
		return 0;
	return rc ? rc : 1;
}

static int e_current_rev(struct side *s, eng_rev_t *rev)
{
	return etcd_current_rev(cli(s), rev);
}

static int e_watch_open(struct side *s, const void *key, size_t key_len,
                        const void *end, size_t end_len, eng_rev_t start,
                        void **w)
{
	struct etcd_watch *ew;
	int rc = etcd_watch_open(cli(s), key, key_len, end, end_len, start,
	                         ETCD_WATCH_PROGRESS, &ew);

	*w = rc ? NULL : ew;
	return rc;
}

static int e_watch_poll(struct side *s, void *w, struct cevlist *l,
                        int timeout_ms)
{
	struct eng_event *evs;
	int i, n;

	if (l->end_err)
		return 0;
	for (;;) {
		n = etcd_watch_read(w, &evs, 256, timeout_ms);
		if (n < 0) {
			/* after COMPACTED etcd cancels: that end is expected */
			if (!l->end_err)
				l->end_err = n;
			return 0;
		}
		for (i = 0; i < n; i++)
			cevlist_push(s->idx, l, &evs[i]);
		if (n < 256)
			return 0;
		timeout_ms = 0;
	}
}

static void e_watch_close(struct side *s, void *w)
{
	etcd_watch_close(w);
}

static void e_close(struct side *s)
{
	etcd_client_close(cli(s));
	s->impl = NULL;
}

static const struct side_ops etcd_ops = {
    .kind = "etcd",
    .range = e_range,
    .txn = e_txn,
    .put = e_put,
    .del = e_del,
    .compact = e_compact,
    .lease_grant = e_lease_grant,
    .lease_revoke = e_lease_revoke,
    .lease_ttl = e_lease_ttl,
    .lease_keepalive = e_lease_keepalive,
    .lease_list = e_lease_list,
    .lease_alive = e_lease_alive,
    .current_rev = e_current_rev,
    .watch_open = e_watch_open,
    .watch_poll = e_watch_poll,
    .watch_close = e_watch_close,
    .close = e_close,
};

int side_etcd_open(struct side *s, int idx, const char *endpoint)
{
	struct etcd_client_options opt;
	struct etcd_client *c;
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "etcd %s", endpoint);
	etcd_client_options_init(&opt);
	opt.endpoints = &endpoint;
	opt.nendpoints = 1;
	opt.timeout_ms = 30000; /* a physical compaction can take a while */
	opt.log = etcd_log;
	opt.log_arg = s->name;
	rc = etcd_client_open(&opt, &c);
	if (rc)
		return rc;
	s->ops = &etcd_ops;
	s->idx = idx;
	s->impl = c;
	{
		struct etcd_status st;

		rc = etcd_status(c, &st);
		if (rc) {
			etcd_client_close(c);
			s->impl = NULL;
			return rc;
		}
		snprintf(s->name, sizeof(s->name), "etcd %s at %s", st.version,
		         endpoint);
	}
	return 0;
}
