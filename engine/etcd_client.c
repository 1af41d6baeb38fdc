/*
 * etcd_client.c — a typed client of etcd v3's JSON gateway (see
 * etcd_client.h for the contract).
 *
 * Unary calls build a JSON body with jansson, POST it with a curl easy
 * handle taken from the client's pool, parse the answer and copy it into
 * results laid out by eng_int.h's result-memory rule (the struct eng_arena
 * of priv_ owns everything), so engine.c's releases free them.
 * etcd's gateway sends int64 fields as strings and omits zero/false/empty
 * fields; the json_* helpers below read a missing field as 0.
 *
 * A watch is one long POST to /v3/watch: etcd answers with a stream of
 * newline-separated JSON objects ({"result": WatchResponse}), which a
 * thread per watch parses in curl's write callback and queues.  The
 * reader takes batches from the queue.  Closing sets `stop` and shuts the
 * socket down so the thread's curl_easy_perform() returns at once.
 *
 * Invariants: a curl easy handle is used by one thread at a time (the
 * pool hands it out); the endpoint index and the auth token are read and
 * written under c->lock; a watch's queue and state under w->lock.
 */
#include "etcd_client.h"
#include "eng_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 8

struct etcd_client {
	char **endpoints;
	size_t nendpoints;
	long timeout_ms;
	long connect_timeout_ms;
	char *ca_file, *cert_file, *key_file;
	char *user, *password;
	struct eng_options logopt; /* only .log/.log_arg, for eng_logf */

	pthread_mutex_t lock;
	size_t cur;           /* protected by lock: endpoint to try first */
	char *token;          /* protected by lock: auth token or NULL */
	CURL *pool[POOL_MAX]; /* protected by lock: idle handles */
	size_t npool;         /* protected by lock */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	/* Never cleaned up: curl_global_cleanup is not thread-safe and the
	 * process may hold other clients. */
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------ base64 */

static const char b64_tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t etcd_b64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *s = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v =
		    (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		out[o++] = b64_tab[v >> 18];
		out[o++] = b64_tab[(v >> 12) & 63];
		out[o++] = b64_tab[(v >> 6) & 63];
		out[o++] = b64_tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		out[o++] = b64_tab[v >> 18];
		out[o++] = b64_tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

long etcd_b64_decode(const char *in, size_t len, void *out)
{
	unsigned char *d = out;
	uint32_t acc = 0;
	int bits = 0;
	size_t i;
	long o = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	for (i = 0; i < len; i++) {
		int v = b64_val(in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits >= 6)
		return -1; /* one dangling sextet: not valid base64 */
	return o;
}

/* ------------------------------------------------------------ errors */

int etcd_map_error(const char *m, int code)
{
	static const struct {
		const char *needle;
		int err;
	} tab[] = {
	    {"required revision has been compacted", ENG_E_COMPACTED},
	    {"required revision is a future revision", ENG_E_FUTURE_REV},
	    {"request is too large", ENG_E_TOO_LARGE},
	    {"larger than max", ENG_E_TOO_LARGE},
	    {"requested lease not found", ENG_E_LEASE_NOT_FOUND},
	    {"lease not found", ENG_E_LEASE_NOT_FOUND},
	    {"lease already exists", ENG_E_LEASE_EXISTS},
	    {"duplicate key given in txn request", ENG_E_DUP_KEY},
	    {"too many operations in txn request", ENG_E_TOO_MANY_OPS},
	    {"database space exceeded", ENG_E_NOSPACE},
	    {"too large lease TTL", ENG_E_TTL},
	    {"request timed out", ENG_E_TIMEOUT},
	    {"no leader", ENG_E_UNAVAILABLE},
	    {"leader changed", ENG_E_UNAVAILABLE},
	    {"not capable", ENG_E_UNAVAILABLE},
	    {"key is not provided", ENG_E_INVAL},
	    {"key not found", ENG_E_KEY_NOT_FOUND},
	};
	size_t i;

	for (i = 0; m && i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strstr(m, tab[i].needle))
			return tab[i].err;
	switch (code) {
	case 4: /* DEADLINE_EXCEEDED */
		return ENG_E_TIMEOUT;
	case 5: /* NOT_FOUND: the only one etcd's kv/lease API has */
		return ENG_E_LEASE_NOT_FOUND;
	case 6: /* ALREADY_EXISTS */
		return ENG_E_LEASE_EXISTS;
	case 8: /* RESOURCE_EXHAUSTED */
		return ENG_E_NOSPACE;
	case 11: /* OUT_OF_RANGE */
		return ENG_E_FUTURE_REV;
	case 14: /* UNAVAILABLE */
		return ENG_E_UNAVAILABLE;
	case 3:  /* INVALID_ARGUMENT */
	case 7:  /* PERMISSION_DENIED */
	case 9:  /* FAILED_PRECONDITION */
	case 16: /* UNAUTHENTICATED */
		return ENG_E_INVAL;
	default:
		return ENG_E_INTERNAL;
	}
}

/* ------------------------------------------------------- JSON helpers */

/* int64 fields come as strings (or numbers); missing means 0. */
static int64_t json_i64(const json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static uint64_t json_u64(const json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoull(json_string_value(v), NULL, 10);
	return 0;
}

static bool json_flag(const json_t *o, const char *name)
{
	return json_is_true(json_object_get(o, name));
}

/* Decode base64 field `name` into the arena (NUL-terminated for
 * convenience); a missing field is the empty string. */
static int json_bytes(struct eng_arena *a, const json_t *o, const char *name,
                      const char **p, size_t *len)
{
	json_t *v = json_object_get(o, name);
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	size_t sl = strlen(s);
	char *d = eng_arena_alloc(a, sl / 4 * 3 + 4);
	long n;

	if (!d)
		return ENG_E_NOMEM;
	n = etcd_b64_decode(s, sl, d);
	if (n < 0)
		return ENG_E_CORRUPT;
	d[n] = '\0';
	*p = d;
	*len = (size_t)n;
	return 0;
}

static int json_set_bytes(json_t *o, const char *name, const void *p,
                          size_t len)
{
	char *buf = malloc(len / 3 * 4 + 5);
	json_t *s;

	if (!buf)
		return ENG_E_NOMEM;
	etcd_b64_encode(p, len, buf);
	s = json_string(buf);
	free(buf);
	if (!s || json_object_set_new(o, name, s))
		return ENG_E_NOMEM;
	return 0;
}

static int json_set_i64(json_t *o, const char *name, int64_t v)
{
	if (json_object_set_new(o, name, json_integer(v)))
		return ENG_E_NOMEM;
	return 0;
}

static int json_set_bool(json_t *o, const char *name, bool v)
{
	if (json_object_set_new(o, name, json_boolean(v)))
		return ENG_E_NOMEM;
	return 0;
}

/* Zeroed arena memory (eng_arena_alloc does not clear). */
static void *arena_zalloc(struct eng_arena *a, size_t n)
{
	void *p = eng_arena_alloc(a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

static int kv_from_json(struct eng_arena *a, const json_t *j, bool keys_only,
                        struct eng_kv *kv)
{
	int rc;

	memset(kv, 0, sizeof(*kv));
	rc = json_bytes(a, j, "key", &kv->key, &kv->key_len);
	if (rc)
		return rc;
	if (!keys_only) {
		rc = json_bytes(a, j, "value", &kv->value, &kv->value_len);
		if (rc)
			return rc;
	}
	kv->create_rev = json_i64(j, "create_revision");
	kv->mod_rev = json_i64(j, "mod_revision");
	kv->version = json_i64(j, "version");
	kv->lease = json_i64(j, "lease");
	return 0;
}

/* Decode a JSON array of kvs (may be NULL: none). */
static int kvs_from_json(struct eng_arena *a, const json_t *arr, bool keys_only,
                         struct eng_kv **out, size_t *n)
{
	size_t i, cnt = json_is_array(arr) ? json_array_size(arr) : 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (cnt == 0)
		return 0;
	*out = arena_zalloc(a, cnt * sizeof(**out));
	if (!*out)
		return ENG_E_NOMEM;
	*n = cnt;
	for (i = 0; i < cnt; i++) {
		rc = kv_from_json(a, json_array_get(arr, i), keys_only,
		                  &(*out)[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static eng_rev_t header_rev(const json_t *resp)
{
	return json_i64(json_object_get(resp, "header"), "revision");
}

/* ------------------------------------------------------------ requests */

struct buf {
	char *p;
	size_t len, cap;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return 0; /* makes curl fail with a write error */
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static CURL *pool_get(struct etcd_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	return h ? h : curl_easy_init();
}

static void pool_put(struct etcd_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* Options common to unary calls and watch streams. */
static void setup_handle(struct etcd_client *c, CURL *h, const char *url,
                         struct curl_slist *hdrs, const char *body)
{
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
}

static struct curl_slist *make_headers(struct etcd_client *c)
{
	struct curl_slist *hdrs, *t;
	char *auth = NULL;

	hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!hdrs)
		return NULL;
	pthread_mutex_lock(&c->lock);
	if (c->token && asprintf(&auth, "Authorization: %s", c->token) < 0)
		auth = NULL;
	pthread_mutex_unlock(&c->lock);
	if (auth) {
		t = curl_slist_append(hdrs, auth);
		free(auth);
		if (!t) {
			curl_slist_free_all(hdrs);
			return NULL;
		}
		hdrs = t;
	}
	return hdrs;
}

/* Nothing was sent: another endpoint may be tried.  A refused or
 * unresolvable connection, or a connect that timed out (a stopped or
 * partitioned member): curl then reports no connect time. */
static bool curl_not_sent(CURL *h, CURLcode cc)
{
	curl_off_t connected = 0;

	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	    cc == CURLE_COULDNT_RESOLVE_PROXY)
		return true;
	return cc == CURLE_OPERATION_TIMEDOUT &&
	       curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected) ==
	           CURLE_OK &&
	       connected == 0;
}

static int curl_to_err(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return ENG_E_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
	case CURLE_WRITE_ERROR:
		return ENG_E_NOMEM;
	default:
		return ENG_E_UNAVAILABLE;
	}
}

static int authenticate(struct etcd_client *c);

/*
 * POST `body` to `path` and parse the answer into *out (the caller
 * json_decref's it).  An etcd error answer is mapped and logged.
 */
static int request_once(struct etcd_client *c, const char *path,
                        const char *body, json_t **out, bool *bad_token)
{
	struct curl_slist *hdrs = make_headers(c);
	struct buf b = {0};
	CURL *h = pool_get(c);
	CURLcode cc = CURLE_COULDNT_CONNECT;
	json_error_t jerr;
	json_t *j = NULL, *e;
	size_t i, idx, n = c->nendpoints;
	char url[1024];
	long status = 0;
	int rc;

	*out = NULL;
	*bad_token = false;
	if (!h || !hdrs) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	idx = c->cur;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++, idx = (idx + 1) % n) {
		snprintf(url, sizeof(url), "%s%s", c->endpoints[idx], path);
		setup_handle(c, h, url, hdrs, body);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
		b.len = 0;
		cc = curl_easy_perform(h);
		if (!curl_not_sent(h, cc))
			break;
		eng_logf(&c->logopt, ENG_LOG_WARN, "etcd %s: %s",
		         c->endpoints[idx], curl_easy_strerror(cc));
	}
	if (cc != CURLE_OK) {
		eng_logf(&c->logopt, ENG_LOG_ERR, "etcd %s: %s", path,
		         curl_easy_strerror(cc));
		rc = curl_to_err(cc);
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	c->cur = idx;
	pthread_mutex_unlock(&c->lock);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	j = b.p ? json_loadb(b.p, b.len, 0, &jerr) : NULL;
	if (!j) {
		eng_logf(&c->logopt, ENG_LOG_ERR,
		         "etcd %s: HTTP %ld, answer is not JSON", path, status);
		rc = status == 200 ? ENG_E_CORRUPT : ENG_E_UNAVAILABLE;
		goto out;
	}
	e = json_object_get(j, "error");
	if (e || status != 200) {
		/* unary answers: {"error": "...", "code": N}; streaming
		 * ones: {"error": {"message": "...", "grpc_code": N}} */
		const char *msg =
		    json_is_string(e) ? json_string_value(e)
		    : json_is_string(json_object_get(e, "message"))
		        ? json_string_value(json_object_get(e, "message"))
		        : "(no message)";
		int code = json_is_object(e) ? (int)json_i64(e, "grpc_code")
		                             : (int)json_i64(j, "code");

		rc = etcd_map_error(msg, code);
		*bad_token = strstr(msg, "invalid auth token") != NULL;
		eng_logf(&c->logopt, ENG_LOG_DEBUG, "etcd %s: %s (HTTP %ld)",
		         path, msg, status);
		goto out;
	}
	*out = j;
	j = NULL;
	rc = 0;
out:
	json_decref(j);
	free(b.p);
	curl_slist_free_all(hdrs);
	if (h)
		pool_put(c, h);
	return rc;
}

static int request(struct etcd_client *c, const char *path, json_t *req,
                   json_t **out)
{
	char *body = json_dumps(req, JSON_COMPACT);
	bool bad_token;
	int rc;

	if (!body)
		return ENG_E_NOMEM;
	rc = request_once(c, path, body, out, &bad_token);
	if (rc && bad_token && c->user) {
		rc = authenticate(c);
		if (!rc)
			rc = request_once(c, path, body, out, &bad_token);
	}
	free(body);
	return rc;
}

static int authenticate(struct etcd_client *c)
{
	json_t *req = json_pack("{s:s, s:s}", "name", c->user, "password",
	                        c->password ? c->password : "");
	json_t *resp = NULL;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	const char *tok;
	bool bad_token;
	int rc;

	if (!body) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	free(c->token);
	c->token = NULL;
	pthread_mutex_unlock(&c->lock);
	rc = request_once(c, "/v3/auth/authenticate", body, &resp, &bad_token);
	if (rc)
		goto out;
	tok = json_string_value(json_object_get(resp, "token"));
	if (!tok) {
		rc = ENG_E_CORRUPT;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	c->token = strdup(tok);
	rc = c->token ? 0 : ENG_E_NOMEM;
	pthread_mutex_unlock(&c->lock);
out:
	free(body);
	json_decref(req);
	json_decref(resp);
	return rc;
}

/* -------------------------------------------------------- open / close */

void etcd_client_options_init(struct etcd_client_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->timeout_ms = 5000;
	opt->connect_timeout_ms = 1000;
}

static char *strdup_or_null(const char *s, bool *fail)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

int etcd_client_open(const struct etcd_client_options *opt,
                     struct etcd_client **out)
{
	struct etcd_client *c;
	bool fail = false;
	size_t i;
	int rc;

	*out = NULL;
	if (!opt || opt->nendpoints == 0 || !opt->endpoints)
		return ENG_E_INVAL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return ENG_E_INTERNAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENG_E_NOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->logopt.log = opt->log;
	c->logopt.log_arg = opt->log_arg;
	c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 5000;
	c->connect_timeout_ms =
	    opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 1000;
	c->endpoints = calloc(opt->nendpoints, sizeof(char *));
	if (!c->endpoints) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	c->nendpoints = opt->nendpoints;
	for (i = 0; i < opt->nendpoints; i++) {
		size_t l;

		if (!opt->endpoints[i]) {
			rc = ENG_E_INVAL;
			goto out;
		}
		c->endpoints[i] = strdup(opt->endpoints[i]);
		if (!c->endpoints[i]) {
			rc = ENG_E_NOMEM;
			goto out;
		}
		l = strlen(c->endpoints[i]);
		while (l > 0 && c->endpoints[i][l - 1] == '/')
			c->endpoints[i][--l] = '\0'; /* we append "/v3/..." */
	}
	c->ca_file = strdup_or_null(opt->ca_file, &fail);
	c->cert_file = strdup_or_null(opt->cert_file, &fail);
	c->key_file = strdup_or_null(opt->key_file, &fail);
	c->user = strdup_or_null(opt->user, &fail);
	c->password = strdup_or_null(opt->password, &fail);
	if (fail) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	rc = c->user ? authenticate(c) : 0;
out:
	if (rc)
		etcd_client_close(c);
	else
		*out = c;
	return rc;
}

void etcd_client_close(struct etcd_client *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	for (i = 0; c->endpoints && i < c->nendpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->user);
	free(c->password);
	free(c->token);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ------------------------------------------------------------------ kv */

static int range_json(const void *key, size_t key_len, const void *end,
                      size_t end_len, eng_rev_t rev, int64_t limit,
                      unsigned flags, json_t **out)
{
	json_t *r = json_object();
	int rc;

	*out = NULL;
	if (!r)
		return ENG_E_NOMEM;
	rc = json_set_bytes(r, "key", key, key_len);
	if (!rc && end_len > 0)
		rc = json_set_bytes(r, "range_end", end, end_len);
	if (!rc && rev)
		rc = json_set_i64(r, "revision", rev);
	if (!rc && limit)
		rc = json_set_i64(r, "limit", limit);
	if (!rc && (flags & ENG_RANGE_KEYS_ONLY) &&
	    !(flags & ENG_RANGE_VALUE_LEN))
		rc = json_set_bool(r, "keys_only", true);
	if (!rc && (flags & ENG_RANGE_COUNT_ONLY))
		rc = json_set_bool(r, "count_only", true);
	if (rc)
		json_decref(r);
	else
		*out = r;
	return rc;
}

static int range_from_json(struct eng_arena *a, const json_t *j, unsigned flags,
                           struct eng_range_res *res)
{
	int rc;

	res->header_rev = header_rev(j);
	res->count = json_i64(j, "count");
	res->more = json_flag(j, "more");
	rc = kvs_from_json(a, json_object_get(j, "kvs"),
	                   (flags & ENG_RANGE_KEYS_ONLY) &&
	                       !(flags & ENG_RANGE_VALUE_LEN),
	                   &res->kvs, &res->n);
	/* Lengths only: etcd has no such mode, so the values were read;
	 * drop them as keys-only asks (they live in the arena). */
	if (!rc && (flags & ENG_RANGE_KEYS_ONLY))
		for (size_t i = 0; i < res->n; i++)
			res->kvs[i].value = NULL;
	return rc;
}

int etcd_range(struct etcd_client *c, const struct eng_range_req *req,
               struct eng_range_res *res)
{
	json_t *body = NULL, *resp = NULL;
	struct eng_arena *a = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	if (req->delim || req->snap)
		return ENG_E_INVAL;
	rc = range_json(req->key, req->key_len, req->end, req->end_len,
	                req->rev, req->limit, req->flags, &body);
	if (rc)
		goto out;
	rc = request(c, "/v3/kv/range", body, &resp);
	if (rc)
		goto out;
	a = eng_arena_new();
	if (!a) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	res->priv_ = a;
	rc = range_from_json(a, resp, req->flags, res);
out:
	json_decref(body);
	json_decref(resp);
	if (rc)
		eng_range_res_release(res);
	return rc;
}

void etcd_range_res_release(struct eng_range_res *res)
{
	eng_range_res_release(res);
}

int etcd_current_rev(struct etcd_client *c, eng_rev_t *rev)
{
	struct eng_range_req req = {
	    .key = "\0", .key_len = 1, .flags = ENG_RANGE_COUNT_ONLY};
	struct eng_range_res res;
	int rc = etcd_range(c, &req, &res);

	if (!rc)
		*rev = res.header_rev;
	etcd_range_res_release(&res);
	return rc;
}

static int op_json(const struct eng_op *op, json_t **out)
{
	json_t *r = NULL, *w = json_object();
	const char *kind;
	int rc = 0;

	*out = NULL;
	if (!w)
		return ENG_E_NOMEM;
	switch (op->type) {
	case ENG_OP_RANGE:
		kind = "request_range";
		rc = range_json(op->key, op->key_len, op->end, op->end_len,
		                op->rev, op->limit, op->flags, &r);
		break;
	case ENG_OP_PUT:
		kind = "request_put";
		r = json_object();
		if (!r) {
			rc = ENG_E_NOMEM;
			break;
		}
		rc = json_set_bytes(r, "key", op->key, op->key_len);
		if (!rc && !(op->flags & ENG_PUT_IGNORE_VALUE))
			rc = json_set_bytes(r, "value", op->value,
			                    op->value_len);
		if (!rc && op->lease)
			rc = json_set_i64(r, "lease", op->lease);
		if (!rc && (op->flags & ENG_PUT_PREV_KV))
			rc = json_set_bool(r, "prev_kv", true);
		if (!rc && (op->flags & ENG_PUT_IGNORE_VALUE))
			rc = json_set_bool(r, "ignore_value", true);
		if (!rc && (op->flags & ENG_PUT_IGNORE_LEASE))
			rc = json_set_bool(r, "ignore_lease", true);
		break;
	case ENG_OP_DELETE:
		kind = "request_delete_range";
		r = json_object();
		if (!r) {
			rc = ENG_E_NOMEM;
			break;
		}
		rc = json_set_bytes(r, "key", op->key, op->key_len);
		if (!rc && op->end_len > 0)
			rc = json_set_bytes(r, "range_end", op->end,
			                    op->end_len);
		if (!rc && (op->flags & ENG_DEL_PREV_KV))
			rc = json_set_bool(r, "prev_kv", true);
		break;
	default:
		rc = ENG_E_INVAL;
		break;
	}
	if (!rc && json_object_set_new(w, kind, r))
		rc = ENG_E_NOMEM;
	r = NULL;
	if (rc)
		json_decref(w);
	else
		*out = w;
	json_decref(r);
	return rc;
}

static const char *const cmp_targets[] = {
    [ENG_CMP_VERSION] = "VERSION", [ENG_CMP_CREATE] = "CREATE",
    [ENG_CMP_MOD] = "MOD",         [ENG_CMP_VALUE] = "VALUE",
    [ENG_CMP_LEASE] = "LEASE",
};
static const char *const cmp_fields[] = {
    [ENG_CMP_VERSION] = "version",  [ENG_CMP_CREATE] = "create_revision",
    [ENG_CMP_MOD] = "mod_revision", [ENG_CMP_VALUE] = "value",
    [ENG_CMP_LEASE] = "lease",
};
static const char *const cmp_results[] = {
    [ENG_CMP_EQ] = "EQUAL",
    [ENG_CMP_NE] = "NOT_EQUAL",
    [ENG_CMP_LT] = "LESS",
    [ENG_CMP_GT] = "GREATER",
};

static int cmp_json(const struct eng_cmp *cmp, json_t **out)
{
	json_t *r = json_object();
	int rc;

	*out = NULL;
	if (!r)
		return ENG_E_NOMEM;
	if ((unsigned)cmp->target > ENG_CMP_LEASE ||
	    (unsigned)cmp->result > ENG_CMP_GT) {
		json_decref(r);
		return ENG_E_INVAL;
	}
	rc = json_set_bytes(r, "key", cmp->key, cmp->key_len);
	if (!rc && cmp->end_len > 0)
		rc = json_set_bytes(r, "range_end", cmp->end, cmp->end_len);
	if (!rc && json_object_set_new(r, "target",
	                               json_string(cmp_targets[cmp->target])))
		rc = ENG_E_NOMEM;
	if (!rc && json_object_set_new(r, "result",
	                               json_string(cmp_results[cmp->result])))
		rc = ENG_E_NOMEM;
	if (!rc && cmp->target == ENG_CMP_VALUE)
		rc = json_set_bytes(r, "value", cmp->value, cmp->value_len);
	else if (!rc)
		rc = json_set_i64(r, cmp_fields[cmp->target], cmp->number);
	if (rc)
		json_decref(r);
	else
		*out = r;
	return rc;
}

static int ops_json(json_t *txn, const char *name, const struct eng_op *ops,
                    size_t n)
{
	json_t *arr = json_array(), *o;
	size_t i;
	int rc;

	if (!arr || json_object_set_new(txn, name, arr))
		return ENG_E_NOMEM;
	for (i = 0; i < n; i++) {
		rc = op_json(&ops[i], &o);
		if (rc)
			return rc;
		if (json_array_append_new(arr, o))
			return ENG_E_NOMEM;
	}
	return 0;
}

/* Decode one op's answer; `op` is the request (for the keys_only flag). */
static int op_res_from_json(struct eng_arena *a, const json_t *j,
                            const struct eng_op *op, struct eng_op_res *r)
{
	const json_t *v;
	int rc;

	memset(r, 0, sizeof(*r));
	r->type = op->type;
	switch (op->type) {
	case ENG_OP_RANGE:
		v = json_object_get(j, "response_range");
		if (!v)
			return ENG_E_CORRUPT;
		return range_from_json(a, v, op->flags, &r->range);
	case ENG_OP_PUT:
		v = json_object_get(j, "response_put");
		if (!v)
			v = j; /* the put endpoint's own answer */
		if (json_object_get(v, "prev_kv")) {
			r->prev_kvs = arena_zalloc(a, sizeof(*r->prev_kvs));
			if (!r->prev_kvs)
				return ENG_E_NOMEM;
			rc = kv_from_json(a, json_object_get(v, "prev_kv"),
			                  false, r->prev_kvs);
			if (rc)
				return rc;
			r->nprev = 1;
		}
		return 0;
	case ENG_OP_DELETE:
		v = json_object_get(j, "response_delete_range");
		if (!v)
			v = j;
		r->deleted = json_i64(v, "deleted");
		return kvs_from_json(a, json_object_get(v, "prev_kvs"), false,
		                     &r->prev_kvs, &r->nprev);
	}
	return ENG_E_CORRUPT;
}

int etcd_txn(struct etcd_client *c, const struct eng_txn *txn,
             struct eng_txn_res *res)
{
	json_t *body = json_object(), *resp = NULL, *arr, *o;
	const struct eng_op *ops;
	struct eng_arena *a = NULL;
	size_t i, nops;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	arr = json_array();
	if (!body || !arr || json_object_set_new(body, "compare", arr)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	for (i = 0; i < txn->ncmps; i++) {
		rc = cmp_json(&txn->cmps[i], &o);
		if (rc)
			goto out;
		if (json_array_append_new(arr, o)) {
			rc = ENG_E_NOMEM;
			goto out;
		}
	}
	rc = ops_json(body, "success", txn->success, txn->nsuccess);
	if (!rc)
		rc = ops_json(body, "failure", txn->failure, txn->nfailure);
	if (rc)
		goto out;
	rc = request(c, "/v3/kv/txn", body, &resp);
	if (rc)
		goto out;
	a = eng_arena_new();
	if (!a) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	res->priv_ = a;
	res->succeeded = json_flag(resp, "succeeded");
	res->header_rev = header_rev(resp);
	ops = res->succeeded ? txn->success : txn->failure;
	nops = res->succeeded ? txn->nsuccess : txn->nfailure;
	arr = json_object_get(resp, "responses");
	if ((json_is_array(arr) ? json_array_size(arr) : 0) != nops) {
		eng_logf(&c->logopt, ENG_LOG_ERR,
		         "etcd txn: %zu answers for %zu ops",
		         json_is_array(arr) ? json_array_size(arr) : 0, nops);
		rc = ENG_E_CORRUPT;
		goto out;
	}
	if (nops) {
		res->res = arena_zalloc(a, nops * sizeof(*res->res));
		if (!res->res) {
			rc = ENG_E_NOMEM;
			goto out;
		}
		res->nres = nops; /* zeroed: a partial result releases fine */
	}
	for (i = 0; i < nops; i++) {
		rc = op_res_from_json(a, json_array_get(arr, i), &ops[i],
		                      &res->res[i]);
		if (rc)
			goto out;
	}
out:
	json_decref(body);
	json_decref(resp);
	if (rc)
		eng_txn_res_release(res);
	return rc;
}

void etcd_txn_res_release(struct eng_txn_res *res)
{
	eng_txn_res_release(res);
}

/* The put and deleterange endpoints: the op's own JSON, not wrapped. */
static int single_op(struct etcd_client *c, const struct eng_op *op,
                     const char *path, const char *kind,
                     struct eng_txn_res *res)
{
	json_t *w = NULL, *resp = NULL;
	struct eng_arena *a = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = op_json(op, &w);
	if (rc)
		goto out;
	rc = request(c, path, json_object_get(w, kind), &resp);
	if (rc)
		goto out;
	a = eng_arena_new();
	res->priv_ = a;
	res->res = a ? arena_zalloc(a, sizeof(*res->res)) : NULL;
	if (!res->res) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	res->nres = 1;
	rc = op_res_from_json(a, resp, op, &res->res[0]);
	res->succeeded = true;
	res->header_rev = header_rev(resp);
out:
	json_decref(w);
	json_decref(resp);
	if (rc)
		eng_txn_res_release(res);
	return rc;
}

int etcd_put(struct etcd_client *c, const struct eng_op *op,
             struct eng_txn_res *res)
{
	if (op->type != ENG_OP_PUT) {
		memset(res, 0, sizeof(*res));
		return ENG_E_INVAL;
	}
	return single_op(c, op, "/v3/kv/put", "request_put", res);
}

int etcd_delete(struct etcd_client *c, const struct eng_op *op,
                struct eng_txn_res *res)
{
	if (op->type != ENG_OP_DELETE) {
		memset(res, 0, sizeof(*res));
		return ENG_E_INVAL;
	}
	return single_op(c, op, "/v3/kv/deleterange", "request_delete_range",
	                 res);
}

int etcd_compact(struct etcd_client *c, eng_rev_t rev, bool physical,
                 eng_rev_t *hrev)
{
	json_t *body = json_pack("{s:I, s:b}", "revision", (json_int_t)rev,
	                         "physical", physical);
	json_t *resp = NULL;
	int rc;

	if (!body)
		return ENG_E_NOMEM;
	rc = request(c, "/v3/kv/compaction", body, &resp);
	if (!rc && hrev)
		*hrev = header_rev(resp);
	json_decref(body);
	json_decref(resp);
	return rc;
}

int etcd_status(struct etcd_client *c, struct etcd_status *st)
{
	json_t *body = json_object(), *resp = NULL, *h;
	const char *v;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!body)
		return ENG_E_NOMEM;
	rc = request(c, "/v3/maintenance/status", body, &resp);
	if (rc)
		goto out;
	h = json_object_get(resp, "header");
	st->rev = json_i64(h, "revision");
	st->member_id = json_u64(h, "member_id");
	st->raft_term = json_i64(resp, "raftTerm");
	st->leader = json_u64(resp, "leader");
	st->db_size = json_i64(resp, "dbSize");
	st->db_size_in_use = json_i64(resp, "dbSizeInUse");
	v = json_string_value(json_object_get(resp, "version"));
	snprintf(st->version, sizeof(st->version), "%s", v ? v : "");
	/* errors lists the raised alarms, e.g. "memberID:9009370488483034218
	 * alarm:NOSPACE " (seen on 3.4.23) */
	h = json_object_get(resp, "errors");
	if (json_is_array(h)) {
		size_t i;

		for (i = 0; i < json_array_size(h); i++) {
			v = json_string_value(json_array_get(h, i));
			if (v && strstr(v, "alarm:NOSPACE"))
				st->alarm_nospace = true;
		}
	}
out:
	json_decref(body);
	json_decref(resp);
	return rc;
}

/* -------------------------------------------------------------- leases */

int etcd_lease_grant(struct etcd_client *c, eng_lease_t id, int64_t ttl,
                     eng_lease_t *out_id, int64_t *out_ttl)
{
	json_t *body = json_pack("{s:I, s:I}", "TTL", (json_int_t)ttl, "ID",
	                         (json_int_t)id);
	json_t *resp = NULL;
	const char *err;
	int rc;

	if (!body)
		return ENG_E_NOMEM;
	rc = request(c, "/v3/lease/grant", body, &resp);
	if (rc)
		goto out;
	/* LeaseGrantResponse carries its own error string */
	err = json_string_value(json_object_get(resp, "error"));
	if (err && *err) {
		rc = etcd_map_error(err, 0);
		goto out;
	}
	*out_id = json_i64(resp, "ID");
	if (out_ttl)
		*out_ttl = json_i64(resp, "TTL");
out:
	json_decref(body);
	json_decref(resp);
	return rc;
}

int etcd_lease_revoke(struct etcd_client *c, eng_lease_t id, eng_rev_t *rev)
{
	json_t *body = json_pack("{s:I}", "ID", (json_int_t)id);
	json_t *resp = NULL;
	int rc;

	if (!body)
		return ENG_E_NOMEM;
	rc = request(c, "/v3/lease/revoke", body, &resp);
	if (!rc && rev)
		*rev = header_rev(resp);
	json_decref(body);
	json_decref(resp);
	return rc;
}

int etcd_lease_keepalive(struct etcd_client *c, eng_lease_t id, int64_t *ttl)
{
	json_t *body = json_pack("{s:I}", "ID", (json_int_t)id);
	json_t *resp = NULL;
	int64_t t;
	int rc;

	if (!body)
		return ENG_E_NOMEM;
	/* A bidirectional stream: with one request in the body the gateway
	 * answers one {"result": ...} and ends. */
	rc = request(c, "/v3/lease/keepalive", body, &resp);
	if (rc)
		goto out;
	t = json_i64(json_object_get(resp, "result"), "TTL");
	if (t <= 0) {
		rc = ENG_E_LEASE_NOT_FOUND;
		goto out;
	}
	if (ttl)
		*ttl = t;
out:
	json_decref(body);
	json_decref(resp);
	return rc;
}

int etcd_lease_ttl(struct etcd_client *c, eng_lease_t id, unsigned flags,
                   struct eng_lease_info *info)
{
	json_t *body = json_pack("{s:I, s:b}", "ID", (json_int_t)id, "keys",
	                         (flags & ENG_LEASE_KEYS) != 0);
	json_t *resp = NULL, *keys;
	size_t i, n, total = 0;
	char *d;
	int64_t t;
	int rc;

	memset(info, 0, sizeof(*info));
	if (!body)
		return ENG_E_NOMEM;
	rc = request(c, "/v3/lease/timetolive", body, &resp);
	if (rc)
		goto out;
	t = json_i64(resp, "TTL");
	if (t < 0) {
		rc = ENG_E_LEASE_NOT_FOUND;
		goto out;
	}
	info->id = json_i64(resp, "ID");
	info->granted_ttl = json_i64(resp, "grantedTTL");
	info->remaining_ms = t * 1000;
	keys = json_object_get(resp, "keys");
	n = json_is_array(keys) ? json_array_size(keys) : 0;
	if (n == 0)
		goto out;
	/* the keys array, then the key bytes */
	for (i = 0; i < n; i++) {
		json_t *k = json_array_get(keys, i);

		total +=
		    (json_is_string(k) ? strlen(json_string_value(k)) : 0) / 4 *
		        3 +
		    4;
	}
	info->priv_ = eng_arena_new();
	info->keys = info->priv_ ? arena_zalloc(info->priv_,
	                                        n * sizeof(*info->keys) + total)
	                         : NULL;
	if (!info->keys) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	d = (char *)(info->keys + n);
	for (i = 0; i < n; i++) {
		json_t *k = json_array_get(keys, i);
		const char *s = json_is_string(k) ? json_string_value(k) : "";
		size_t sl = strlen(s);
		long dl = etcd_b64_decode(s, sl, d);

		if (dl < 0) {
			rc = ENG_E_CORRUPT;
			goto out;
		}
		info->keys[i].key = d;
		info->keys[i].key_len = (size_t)dl;
		d += dl;
	}
	info->nkeys = n;
out:
	json_decref(body);
	json_decref(resp);
	if (rc)
		etcd_lease_info_release(info);
	return rc;
}

void etcd_lease_info_release(struct eng_lease_info *info)
{
	eng_lease_info_release(info);
}

static int cmp_lease(const void *x, const void *y)
{
	eng_lease_t a = *(const eng_lease_t *)x, b = *(const eng_lease_t *)y;

	return a < b ? -1 : a > b;
}

int etcd_lease_list(struct etcd_client *c, eng_lease_t **ids, size_t *n)
{
	json_t *body = json_object(), *resp = NULL, *arr;
	size_t i, cnt;
	int rc;

	*ids = NULL;
	*n = 0;
	if (!body)
		return ENG_E_NOMEM;
	rc = request(c, "/v3/lease/leases", body, &resp);
	if (rc)
		goto out;
	arr = json_object_get(resp, "leases");
	cnt = json_is_array(arr) ? json_array_size(arr) : 0;
	if (cnt == 0)
		goto out;
	*ids = malloc(cnt * sizeof(**ids));
	if (!*ids) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	for (i = 0; i < cnt; i++)
		(*ids)[i] = json_i64(json_array_get(arr, i), "ID");
	qsort(*ids, cnt, sizeof(**ids), cmp_lease);
	*n = cnt;
out:
	json_decref(body);
	json_decref(resp);
	return rc;
}

/* ------------------------------------------------------------- watches */

struct qev {
	struct eng_event ev;
	void *mem; /* key and value bytes, or NULL */
};

struct etcd_watch {
	struct etcd_client *c;
	pthread_t thread;
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	char url[1024];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct qev *q;            /* protected by lock: queued events */
	size_t qhead, qlen, qcap; /* protected by lock */
	bool created; /* protected by lock: etcd confirmed the watch */
	bool ended;   /* protected by lock: no more events will come */
	int end_err;  /* protected by lock: error to report once drained */
	curl_socket_t sock; /* protected by lock: the stream's socket */
	bool stop;          /* protected by lock: close requested */
	bool not_sent;      /* protected by lock: the stream never connected */

	/* thread-only: bytes of an incomplete line */
	struct buf line;

	/* reader-only: the batch returned by the last read */
	struct eng_event *out;
	void **outmem;
	size_t nout, outcap;
};

static void watch_end(struct etcd_watch *w, int err)
{
	if (!w->ended) {
		w->ended = true;
		w->end_err = err;
	}
	pthread_cond_broadcast(&w->cond);
}

/* Queue one event; called with w->lock held. */
static int watch_push(struct etcd_watch *w, enum eng_event_type type,
                      const json_t *kvj, eng_rev_t rev)
{
	struct qev *e;

	if (w->qhead + w->qlen == w->qcap) {
		if (w->qhead > 0) {
			memmove(w->q, w->q + w->qhead, w->qlen * sizeof(*w->q));
			w->qhead = 0;
		} else {
			size_t cap = w->qcap ? w->qcap * 2 : 64;
			struct qev *q;

			if (w->qlen >= ETCD_WATCH_MAX_QUEUED)
				return ENG_E_NOMEM;
			q = realloc(w->q, cap * sizeof(*q));
			if (!q)
				return ENG_E_NOMEM;
			w->q = q;
			w->qcap = cap;
		}
	}
	e = &w->q[w->qhead + w->qlen];
	memset(e, 0, sizeof(*e));
	e->ev.type = type;
	e->ev.kv.mod_rev = rev;
	if (kvj) {
		struct eng_arena *a = eng_arena_new();
		int rc;

		if (!a)
			return ENG_E_NOMEM;
		rc = kv_from_json(a, kvj, false, &e->ev.kv);
		if (rc) {
			eng_arena_free(a);
			return rc;
		}
		e->ev.kv.deleted = type == ENG_EV_DELETE;
		e->mem = a;
	}
	w->qlen++;
	return 0;
}

/* Drop what was queued past qlen0: a response's events go in whole or
 * not at all, so that a reader never takes part of a revision for all of
 * it (the stream then ends with the error and is resumed from the last
 * whole revision).  With w->lock held. */
static void watch_unpush(struct etcd_watch *w, size_t qlen0)
{
	while (w->qlen > qlen0) {
		struct qev *e = &w->q[w->qhead + --w->qlen];

		eng_arena_free(e->mem);
		e->mem = NULL;
	}
}

/* One WatchResponse (the "result" object), with w->lock held. */
static int watch_handle(struct etcd_watch *w, const json_t *r)
{
	json_t *evs = json_object_get(r, "events");
	size_t i, n = json_is_array(evs) ? json_array_size(evs) : 0;
	eng_rev_t crev = json_i64(r, "compact_revision");
	size_t qlen0 = w->qlen;
	int rc;

	if (json_flag(r, "created")) {
		w->created = true;
		pthread_cond_broadcast(&w->cond);
		if (n == 0 && !json_flag(r, "canceled"))
			return 0;
	}
	for (i = 0; i < n; i++) {
		json_t *ev = json_array_get(evs, i);
		const char *t = json_string_value(json_object_get(ev, "type"));
		bool del = t && strcmp(t, "DELETE") == 0;

		rc = watch_push(w, del ? ENG_EV_DELETE : ENG_EV_PUT,
		                json_object_get(ev, "kv"), 0);
		if (rc) {
			watch_unpush(w, qlen0);
			return rc;
		}
	}
	if (json_flag(r, "canceled") || crev) {
		const char *why =
		    json_string_value(json_object_get(r, "cancel_reason"));

		if (crev) {
			rc = watch_push(w, ENG_EV_COMPACTED, NULL, crev);
			if (rc)
				return rc;
			watch_end(w, 0);
		} else {
			eng_logf(&w->c->logopt, ENG_LOG_WARN,
			         "etcd watch canceled: %s", why ? why : "");
			watch_end(w, ENG_E_CLOSED);
		}
		return 0;
	}
	if (n == 0) {
		rc = watch_push(w, ENG_EV_PROGRESS, NULL, header_rev(r));
		if (rc)
			return rc;
	}
	pthread_cond_broadcast(&w->cond);
	return 0;
}

static int watch_line(struct etcd_watch *w, const char *p, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(p, len, 0, &jerr), *r, *e;
	int rc = 0;

	if (!j)
		return ENG_E_CORRUPT;
	r = json_object_get(j, "result");
	e = json_object_get(j, "error");
	pthread_mutex_lock(&w->lock);
	if (r) {
		rc = watch_handle(w, r);
	} else if (e) {
		const char *m =
		    json_string_value(json_object_get(e, "message"));

		eng_logf(&w->c->logopt, ENG_LOG_WARN, "etcd watch: %s",
		         m ? m : "error");
		watch_end(w, etcd_map_error(m, (int)json_i64(e, "grpc_code")));
	}
	if (rc)
		watch_end(w, rc);
	pthread_mutex_unlock(&w->lock);
	json_decref(j);
	return rc;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct etcd_watch *w = arg;
	size_t n = size * nmemb, start = 0, i;

	if (buf_write(ptr, 1, n, &w->line) != n)
		return 0;
	for (i = 0; i < w->line.len; i++) {
		if (w->line.p[i] != '\n')
			continue;
		if (i > start && watch_line(w, w->line.p + start, i - start))
			return 0; /* ends the transfer; the error is recorded */
		start = i + 1;
	}
	memmove(w->line.p, w->line.p + start, w->line.len - start);
	w->line.len -= start;
	return n;
}

static int watch_xferinfo(void *arg, curl_off_t dt, curl_off_t dn,
                          curl_off_t ut, curl_off_t un)
{
	struct etcd_watch *w = arg;
	bool stop;

	pthread_mutex_lock(&w->lock);
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

static int watch_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct etcd_watch *w = arg;

	pthread_mutex_lock(&w->lock);
	w->sock = fd;
	if (w->stop)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&w->lock);
	return CURL_SOCKOPT_OK;
}

static int watch_closesock(void *arg, curl_socket_t fd)
{
	struct etcd_watch *w = arg;

	/* Forget it first: close() must never shut down a reused fd. */
	pthread_mutex_lock(&w->lock);
	if (w->sock == fd)
		w->sock = CURL_SOCKET_BAD;
	pthread_mutex_unlock(&w->lock);
	return close(fd);
}

static void *watch_thread(void *arg)
{
	struct etcd_watch *w = arg;
	CURLcode cc = curl_easy_perform(w->h);

	pthread_mutex_lock(&w->lock);
	w->sock = CURL_SOCKET_BAD;
	w->not_sent = curl_not_sent(w->h, cc);
	if (!w->ended) {
		if (cc != CURLE_OK && !w->stop)
			eng_logf(&w->c->logopt, ENG_LOG_WARN,
			         "etcd watch stream: %s",
			         curl_easy_strerror(cc));
		watch_end(w, ENG_E_UNAVAILABLE);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void watch_free(struct etcd_watch *w)
{
	size_t i;

	for (i = 0; i < w->qlen; i++)
		eng_arena_free(w->q[w->qhead + i].mem);
	for (i = 0; i < w->nout; i++)
		eng_arena_free(w->outmem[i]);
	free(w->q);
	free(w->out);
	free(w->outmem);
	free(w->line.p);
	free(w->body);
	curl_slist_free_all(w->hdrs);
	if (w->h)
		curl_easy_cleanup(w->h);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void deadline_in(long ms, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* One attempt on endpoint `idx`: start the stream's thread and wait for
 * etcd's "created".  On failure the watch is freed; *not_sent tells that
 * the endpoint could not be connected to (another may be tried). */
static int watch_try(struct etcd_client *c, const char *body, size_t idx,
                     struct etcd_watch **out, bool *not_sent)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));
	struct timespec dl;
	int rc;

	*out = NULL;
	*not_sent = false;
	if (!w)
		return ENG_E_NOMEM;
	w->c = c;
	w->sock = CURL_SOCKET_BAD;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->body = strdup(body);
	w->hdrs = make_headers(c);
	w->h = curl_easy_init();
	if (!w->body || !w->hdrs || !w->h) {
		watch_free(w);
		return ENG_E_NOMEM;
	}
	snprintf(w->url, sizeof(w->url), "%s/v3/watch", c->endpoints[idx]);
	setup_handle(c, w->h, w->url, w->hdrs, w->body);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(w->h, CURLOPT_XFERINFOFUNCTION, watch_xferinfo);
	curl_easy_setopt(w->h, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(w->h, CURLOPT_SOCKOPTFUNCTION, watch_sockopt);
	curl_easy_setopt(w->h, CURLOPT_SOCKOPTDATA, w);
	curl_easy_setopt(w->h, CURLOPT_CLOSESOCKETFUNCTION, watch_closesock);
	curl_easy_setopt(w->h, CURLOPT_CLOSESOCKETDATA, w);
	if (pthread_create(&w->thread, NULL, watch_thread, w)) {
		watch_free(w);
		return ENG_E_NOMEM;
	}
	deadline_in(c->timeout_ms, &dl);
	pthread_mutex_lock(&w->lock);
	while (!w->created && !w->ended)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &dl) ==
		    ETIMEDOUT)
			break;
	if (w->created)
		rc = 0;
	else if (w->ended)
		rc = w->end_err ? w->end_err : ENG_E_UNAVAILABLE;
	else
		rc = ENG_E_TIMEOUT;
	*not_sent = !w->created && w->ended && w->not_sent;
	pthread_mutex_unlock(&w->lock);
	if (rc) {
		etcd_watch_close(w);
		return rc;
	}
	*out = w;
	return 0;
}

int etcd_watch_open(struct etcd_client *c, const void *key, size_t key_len,
                    const void *end, size_t end_len, eng_rev_t start,
                    unsigned flags, struct etcd_watch **out)
{
	json_t *cr = json_object(), *body = json_object();
	char *text = NULL;
	size_t i, idx, n = c->nendpoints;
	bool not_sent = false;
	int rc;

	*out = NULL;
	if (!key_len || start < 0) {
		rc = ENG_E_INVAL;
		goto out;
	}
	if (!cr || !body || json_object_set(body, "create_request", cr)) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	rc = json_set_bytes(cr, "key", key, key_len);
	if (!rc && end_len)
		rc = json_set_bytes(cr, "range_end", end, end_len);
	if (!rc && start)
		rc = json_set_i64(cr, "start_revision", start);
	if (!rc && (flags & ETCD_WATCH_PROGRESS))
		rc = json_set_bool(cr, "progress_notify", true);
	if (rc)
		goto out;
	text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		rc = ENG_E_NOMEM;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	idx = c->cur;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++, idx = (idx + 1) % n) {
		rc = watch_try(c, text, idx, out, &not_sent);
		if (!not_sent)
			break;
		eng_logf(&c->logopt, ENG_LOG_WARN,
		         "etcd %s: watch: cannot connect", c->endpoints[idx]);
	}
	if (!rc) {
		pthread_mutex_lock(&c->lock);
		c->cur = idx;
		pthread_mutex_unlock(&c->lock);
	}
out:
	free(text);
	json_decref(cr);
	json_decref(body);
	return rc;
}

int etcd_watch_read(struct etcd_watch *w, struct eng_event **evs, size_t max,
                    int timeout_ms)
{
	struct timespec dl;
	size_t i, n;
	int rc;

	for (i = 0; i < w->nout; i++)
		eng_arena_free(w->outmem[i]);
	w->nout = 0;
	*evs = NULL;
	if (max == 0)
		return ENG_E_INVAL;
	deadline_in(timeout_ms, &dl);
	pthread_mutex_lock(&w->lock);
	while (w->qlen == 0 && !w->ended && timeout_ms > 0)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &dl) ==
		    ETIMEDOUT)
			break;
	n = w->qlen < max ? w->qlen : max;
	if (n > w->outcap) {
		struct eng_event *o = realloc(w->out, n * sizeof(*o));
		void **m = o ? realloc(w->outmem, n * sizeof(*m)) : NULL;

		if (o)
			w->out = o;
		if (!m) {
			rc = ENG_E_NOMEM;
			goto out;
		}
		w->outmem = m;
		w->outcap = n;
	}
	for (i = 0; i < n; i++) {
		w->out[i] = w->q[w->qhead + i].ev;
		w->outmem[i] = w->q[w->qhead + i].mem;
	}
	w->qhead += n;
	w->qlen -= n;
	w->nout = n;
	if (n > 0 || !w->ended)
		rc = (int)n;
	else
		rc = w->end_err ? w->end_err : ENG_E_CLOSED;
out:
	pthread_mutex_unlock(&w->lock);
	*evs = w->out;
	return rc;
}

void etcd_watch_close(struct etcd_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	if (w->sock != CURL_SOCKET_BAD)
		shutdown(w->sock, SHUT_RDWR);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	watch_free(w);
}
