/*
 * test_etcd_client.c — unit tests of engine/etcd_client.c without an etcd:
 * base64, the error mapping, and the client against a fake gateway (a
 * thread serving canned HTTP answers on a loopback port) for the decoding
 * of etcd's JSON (int64s as strings, omitted zero fields), error answers,
 * endpoint failover, an unreachable endpoint and a watch stream.  The real
 * etcd is exercised by tests/conformance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine/etcd_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------- base64 */

static void test_b64_vectors(void **state)
{
	static const char *const plain[] = {"",     "f",     "fo",    "foo",
	                                    "foob", "fooba", "foobar"};
	static const char *const enc[] = {
	    "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	char out[32], back[32];
	size_t i;

	for (i = 0; i < 7; i++) {
		size_t n = etcd_b64_encode(plain[i], strlen(plain[i]), out);

		assert_int_equal(n, strlen(enc[i]));
		assert_string_equal(out, enc[i]);
		assert_int_equal(etcd_b64_decode(out, n, back),
		                 (long)strlen(plain[i]));
		assert_memory_equal(back, plain[i], strlen(plain[i]));
	}
}

static void test_b64_roundtrip_binary(void **state)
{
	unsigned char in[300], back[300];
	char enc[4 * 100 + 8];
	size_t len, i;
	unsigned seed = 7;

	for (len = 0; len < sizeof(in); len++) {
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (unsigned char)(seed >> 16);
		}
		size_t n = etcd_b64_encode(in, len, enc);

		assert_int_equal(n, (len + 2) / 3 * 4);
		assert_int_equal(etcd_b64_decode(enc, n, back), (long)len);
		assert_memory_equal(back, in, len);
	}
}

static void test_b64_rejects_garbage(void **state)
{
	char out[16];

	assert_int_equal(etcd_b64_decode("Zm9v!", 5, out), -1);
	assert_int_equal(etcd_b64_decode("Z", 1, out), -1);
	assert_int_equal(etcd_b64_decode("Zm 9", 4, out), -1);
}

/* --------------------------------------------------------- error mapping */

static void test_map_error(void **state)
{
	static const struct {
		const char *msg;
		int code, want;
	} t[] = {
	    {"etcdserver: mvcc: required revision has been compacted", 11,
	     ENG_E_COMPACTED},
	    {"etcdserver: mvcc: required revision is a future revision", 11,
	     ENG_E_FUTURE_REV},
	    {"etcdserver: request is too large", 3, ENG_E_TOO_LARGE},
	    {"etcdserver: requested lease not found", 5, ENG_E_LEASE_NOT_FOUND},
	    {"etcdserver: lease already exists", 9, ENG_E_LEASE_EXISTS},
	    {"etcdserver: duplicate key given in txn request", 3,
	     ENG_E_DUP_KEY},
	    {"etcdserver: too many operations in txn request", 3,
	     ENG_E_TOO_MANY_OPS},
	    {"etcdserver: mvcc: database space exceeded", 8, ENG_E_NOSPACE},
	    {"etcdserver: too large lease TTL", 3, ENG_E_TTL},
	    {"etcdserver: key not found", 3, ENG_E_KEY_NOT_FOUND},
	    {"etcdserver: key is not provided", 3, ENG_E_INVAL},
	    {"etcdserver: request timed out", 14, ENG_E_TIMEOUT},
	    {"etcdserver: no leader", 14, ENG_E_UNAVAILABLE},
	    /* unknown messages fall back on the gRPC code */
	    {"something new", 14, ENG_E_UNAVAILABLE},
	    {"something new", 4, ENG_E_TIMEOUT},
	    {"something new", 3, ENG_E_INVAL},
	    {NULL, 2, ENG_E_INTERNAL},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(etcd_map_error(t[i].msg, t[i].code),
		                 t[i].want);
}

/* ---------------------------------------------------------- fake gateway */

struct canned {
	int status;
	const char *body;
	bool stream; /* no Content-Length; hold the connection open */
};

struct fake {
	int lfd, port;
	pthread_t th;
	const struct canned *answers;
	int n;
#define FAKE_MAX 32
	char paths[FAKE_MAX][64]; /* the request paths, in order */
	char bodies[FAKE_MAX][1024];
	char auth[FAKE_MAX][64]; /* the Authorization header, if any */
};

static void read_request(int fd, struct fake *f, int i)
{
	char buf[8192];
	size_t len = 0;
	char *hdr_end = NULL, *cl;
	long clen = 0;
	ssize_t r;

	while (!hdr_end && len < sizeof(buf) - 1) {
		r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return;
		len += (size_t)r;
		buf[len] = '\0';
		hdr_end = strstr(buf, "\r\n\r\n");
	}
	if (!hdr_end)
		return;
	sscanf(buf, "POST %63s", f->paths[i]);
	cl = strcasestr(buf, "\r\nAuthorization: ");
	if (cl)
		sscanf(cl + 17, "%63s", f->auth[i]);
	cl = strcasestr(buf, "Content-Length:");
	if (cl)
		clen = strtol(cl + 15, NULL, 10);
	while ((long)(len - (size_t)(hdr_end + 4 - buf)) < clen &&
	       len < sizeof(buf) - 1) {
		r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
	}
	snprintf(f->bodies[i], sizeof(f->bodies[i]), "%s", hdr_end + 4);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char head[256], junk[64];
	int i;

	for (i = 0; i < f->n; i++) {
		const struct canned *c = &f->answers[i];
		int fd = accept(f->lfd, NULL, NULL);
		int hl;

		if (fd < 0)
			return NULL;
		read_request(fd, f, i);
		if (c->stream)
			hl = snprintf(head, sizeof(head),
			              "HTTP/1.1 %d X\r\nContent-Type: "
			              "application/json\r\nConnection: "
			              "close\r\n\r\n",
			              c->status);
		else
			hl = snprintf(head, sizeof(head),
			              "HTTP/1.1 %d X\r\nContent-Type: "
			              "application/json\r\nContent-Length: "
			              "%zu\r\nConnection: close\r\n\r\n",
			              c->status, strlen(c->body));
		if (write(fd, head, (size_t)hl) != hl ||
		    write(fd, c->body, strlen(c->body)) !=
		        (ssize_t)strlen(c->body)) {
			close(fd);
			return NULL;
		}
		if (c->stream) /* until the client goes away */
			while (read(fd, junk, sizeof(junk)) > 0)
				;
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, const struct canned *answers, int n)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->answers = answers;
	f->n = n;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
}

/* A loopback port nobody listens on. */
static int dead_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd); /* bound, never listened: connections are refused */
	return port;
}

static struct etcd_client *client(const char *ep1, const char *ep2)
{
	const char *eps[2] = {ep1, ep2};
	struct etcd_client_options opt;
	struct etcd_client *c = NULL;

	etcd_client_options_init(&opt);
	opt.endpoints = eps;
	opt.nendpoints = ep2 ? 2 : 1;
	opt.timeout_ms = 3000;
	assert_int_equal(etcd_client_open(&opt, &c), 0);
	return c;
}

/* A listener whose accept queue is full: connects to it hang (the kernel
 * drops the SYNs), as with a stopped member.  Returns the port; *fds gets
 * the sockets to close. */
static int hanging_port(int fds[3])
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int i;

	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fds[0], 0), 0);
	assert_int_equal(getsockname(fds[0], (struct sockaddr *)&sa, &sl), 0);
	for (i = 1; i < 3; i++) { /* fill the queue */
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fds[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	usleep(50000);
	return ntohs(sa.sin_port);
}

/* A connect that times out also moves on to the next endpoint. */
static void test_failover_connect_timeout(void **state)
{
	static const struct canned ans[] = {
	    {200, "{\"header\":{\"revision\":\"9\"}}", false},
	};
	const char *eps[2];
	char hang[64], good[64];
	struct etcd_client_options opt;
	struct etcd_client *c = NULL;
	struct fake f;
	eng_rev_t rev = 0;
	int fds[3], i;

	snprintf(hang, sizeof(hang), "http://127.0.0.1:%d", hanging_port(fds));
	fake_start(&f, ans, 1);
	snprintf(good, sizeof(good), "http://127.0.0.1:%d", f.port);
	eps[0] = hang;
	eps[1] = good;
	etcd_client_options_init(&opt);
	opt.endpoints = eps;
	opt.nendpoints = 2;
	opt.connect_timeout_ms = 200;
	assert_int_equal(etcd_client_open(&opt, &c), 0);
	assert_int_equal(etcd_current_rev(c, &rev), 0);
	assert_int_equal(rev, 9);
	etcd_client_close(c);
	fake_stop(&f);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

static void test_open_needs_endpoint(void **state)
{
	struct etcd_client_options opt;
	struct etcd_client *c = (struct etcd_client *)1;

	etcd_client_options_init(&opt);
	assert_int_equal(etcd_client_open(&opt, &c), ENG_E_INVAL);
	assert_null(c);
	etcd_client_close(NULL);
}

static void test_unreachable(void **state)
{
	char ep[64];
	struct etcd_client *c;
	struct eng_range_req req = {.key = "a", .key_len = 1};
	struct eng_range_res res;
	struct etcd_watch *w = NULL;

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", dead_port());
	c = client(ep, NULL);
	assert_int_equal(etcd_range(c, &req, &res), ENG_E_UNAVAILABLE);
	assert_int_equal(res.n, 0);
	etcd_range_res_release(&res);
	assert_int_equal(etcd_watch_open(c, "a", 1, NULL, 0, 0, 0, &w),
	                 ENG_E_UNAVAILABLE);
	assert_null(w);
	etcd_client_close(c);
}

/* The gateway's JSON: int64s as strings, zero fields omitted, base64. */
static void test_range_decoding_and_failover(void **state)
{
	static const struct canned ans[] = {
	    {200,
	     "{\"header\":{\"revision\":\"42\"},\"kvs\":["
	     "{\"key\":\"YQ==\",\"create_revision\":\"3\","
	     "\"mod_revision\":\"40\",\"version\":\"7\",\"value\":"
	     "\"AP8B\",\"lease\":\"1234567890123\"},"
	     "{\"key\":\"Yg==\",\"create_revision\":\"5\","
	     "\"mod_revision\":\"5\",\"version\":\"1\"}],"
	     "\"more\":true,\"count\":\"9\"}",
	     false},
	    {200, "{\"header\":{\"revision\":\"42\"}}", false},
	};
	struct fake f;
	char good[64], dead[64];
	struct etcd_client *c;
	struct eng_range_req req = {.key = "a",
	                            .key_len = 1,
	                            .end = "c",
	                            .end_len = 1,
	                            .rev = 41,
	                            .limit = 2};
	struct eng_range_res res;

	fake_start(&f, ans, 2);
	snprintf(good, sizeof(good), "http://127.0.0.1:%d/", f.port);
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", dead_port());
	c = client(dead, good); /* the first is refused: failover */
	assert_int_equal(etcd_range(c, &req, &res), 0);
	assert_int_equal(res.header_rev, 42);
	assert_int_equal(res.count, 9);
	assert_true(res.more);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.kvs[0].key_len, 1);
	assert_memory_equal(res.kvs[0].key, "a", 1);
	assert_int_equal(res.kvs[0].value_len, 3);
	assert_memory_equal(res.kvs[0].value, "\x00\xff\x01", 3);
	assert_int_equal(res.kvs[0].create_rev, 3);
	assert_int_equal(res.kvs[0].mod_rev, 40);
	assert_int_equal(res.kvs[0].version, 7);
	assert_int_equal(res.kvs[0].lease, 1234567890123LL);
	assert_int_equal(res.kvs[1].value_len, 0); /* omitted: empty */
	assert_int_equal(res.kvs[1].lease, 0);
	etcd_range_res_release(&res);
	/* the request carried base64 key/end, revision and limit */
	assert_string_equal(f.paths[0], "/v3/kv/range");
	assert_non_null(strstr(f.bodies[0], "\"key\":\"YQ==\""));
	assert_non_null(strstr(f.bodies[0], "\"range_end\":\"Yw==\""));
	assert_non_null(strstr(f.bodies[0], "\"revision\":41"));
	assert_non_null(strstr(f.bodies[0], "\"limit\":2"));

	/* an empty answer: count and more omitted mean 0 and false; the
	 * client stays on the endpoint that answered */
	assert_int_equal(etcd_range(c, &req, &res), 0);
	assert_int_equal(res.n, 0);
	assert_int_equal(res.count, 0);
	assert_false(res.more);
	etcd_range_res_release(&res);
	etcd_client_close(c);
	fake_stop(&f);
}

static void test_error_answers(void **state)
{
	static const struct canned ans[] = {
	    {400,
	     "{\"error\":\"etcdserver: mvcc: required revision has been "
	     "compacted\",\"message\":\"etcdserver: mvcc: required revision "
	     "has been compacted\",\"code\":11}",
	     false},
	    {400,
	     "{\"error\":\"etcdserver: duplicate key given in txn "
	     "request\",\"code\":3}",
	     false},
	    {500, "not json at all", false},
	    {200,
	     "{\"error\":{\"grpc_code\":5,\"http_code\":404,"
	     "\"message\":\"etcdserver: requested lease not found\"}}",
	     false},
	};
	struct fake f;
	char ep[64];
	struct etcd_client *c;
	struct eng_range_req req = {.key = "a", .key_len = 1, .rev = 2};
	struct eng_range_res res;
	struct eng_op ops[2] = {
	    {.type = ENG_OP_PUT,
	     .key = "k",
	     .key_len = 1,
	     .value = "1",
	     .value_len = 1},
	    {.type = ENG_OP_PUT,
	     .key = "k",
	     .key_len = 1,
	     .value = "2",
	     .value_len = 1},
	};
	struct eng_txn txn = {.success = ops, .nsuccess = 2};
	struct eng_txn_res tres;

	fake_start(&f, ans, 4);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c = client(ep, NULL);
	assert_int_equal(etcd_range(c, &req, &res), ENG_E_COMPACTED);
	etcd_range_res_release(&res);
	assert_int_equal(etcd_txn(c, &txn, &tres), ENG_E_DUP_KEY);
	etcd_txn_res_release(&tres);
	assert_string_equal(f.paths[1], "/v3/kv/txn");
	assert_non_null(strstr(f.bodies[1], "\"request_put\""));
	assert_int_equal(etcd_range(c, &req, &res), ENG_E_UNAVAILABLE);
	etcd_range_res_release(&res);
	/* a streaming endpoint's error object */
	assert_int_equal(etcd_lease_keepalive(c, 7, NULL),
	                 ENG_E_LEASE_NOT_FOUND);
	assert_string_equal(f.paths[3], "/v3/lease/keepalive");
	etcd_client_close(c);
	fake_stop(&f);
}

static void test_txn_decoding(void **state)
{
	static const struct canned ans[] = {
	    {200,
	     "{\"header\":{\"revision\":\"8\"},\"succeeded\":true,"
	     "\"responses\":[{\"response_put\":{\"header\":{},"
	     "\"prev_kv\":{\"key\":\"aw==\",\"create_revision\":\"2\","
	     "\"mod_revision\":\"6\",\"version\":\"3\",\"value\":"
	     "\"b2xk\"}}},"
	     "{\"response_delete_range\":{\"header\":{},\"deleted\":\"2\"}},"
	     "{\"response_range\":{\"header\":{},\"kvs\":[{\"key\":\"aw==\","
	     "\"create_revision\":\"2\",\"mod_revision\":\"8\","
	     "\"version\":\"4\"}],\"count\":\"1\"}}]}",
	     false},
	};
	struct fake f;
	char ep[64];
	struct etcd_client *c;
	struct eng_cmp cmp = {.key = "k",
	                      .key_len = 1,
	                      .target = ENG_CMP_MOD,
	                      .result = ENG_CMP_LT,
	                      .number = 7};
	struct eng_op ops[3] = {
	    {.type = ENG_OP_PUT,
	     .key = "k",
	     .key_len = 1,
	     .value = "new",
	     .value_len = 3,
	     .flags = ENG_PUT_PREV_KV},
	    {.type = ENG_OP_DELETE,
	     .key = "x",
	     .key_len = 1,
	     .end = "\0",
	     .end_len = 1},
	    {.type = ENG_OP_RANGE,
	     .key = "k",
	     .key_len = 1,
	     .flags = ENG_RANGE_KEYS_ONLY},
	};
	struct eng_txn txn = {
	    .cmps = &cmp, .ncmps = 1, .success = ops, .nsuccess = 3};
	struct eng_txn_res res;

	fake_start(&f, ans, 1);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c = client(ep, NULL);
	assert_int_equal(etcd_txn(c, &txn, &res), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.header_rev, 8);
	assert_int_equal(res.nres, 3);
	assert_int_equal(res.res[0].type, ENG_OP_PUT);
	assert_int_equal(res.res[0].nprev, 1);
	assert_memory_equal(res.res[0].prev_kvs[0].value, "old", 3);
	assert_int_equal(res.res[0].prev_kvs[0].version, 3);
	assert_int_equal(res.res[1].deleted, 2);
	assert_int_equal(res.res[2].range.n, 1);
	assert_int_equal(res.res[2].range.count, 1);
	assert_null(res.res[2].range.kvs[0].value); /* keys_only */
	assert_int_equal(res.res[2].range.kvs[0].version, 4);
	/* eng_int.h's result-memory rule: the engine's release frees it */
	eng_txn_res_release(&res);
	assert_non_null(strstr(f.bodies[0], "\"target\":\"MOD\""));
	assert_non_null(strstr(f.bodies[0], "\"result\":\"LESS\""));
	assert_non_null(strstr(f.bodies[0], "\"mod_revision\":7"));
	assert_non_null(strstr(f.bodies[0], "\"range_end\":\"AA==\""));
	assert_non_null(strstr(f.bodies[0], "\"prev_kv\":true"));
	etcd_client_close(c);
	fake_stop(&f);
}

/* Username/password: a token first; an expired token is renewed once. */
static void test_auth_token_renewal(void **state)
{
	static const struct canned ans[] = {
	    {200, "{\"header\":{},\"token\":\"tok1\"}", false},
	    {401, "{\"error\":\"etcdserver: invalid auth token\",\"code\":3}",
	     false},
	    {200, "{\"header\":{},\"token\":\"tok2\"}", false},
	    {200, "{\"header\":{\"revision\":\"3\"}}", false},
	};
	const char *eps[1];
	struct fake f;
	char ep[64];
	struct etcd_client_options opt;
	struct etcd_client *c = NULL;
	eng_rev_t rev = 0;

	fake_start(&f, ans, 4);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	eps[0] = ep;
	etcd_client_options_init(&opt);
	opt.endpoints = eps;
	opt.nendpoints = 1;
	opt.user = "root";
	opt.password = "secret";
	assert_int_equal(etcd_client_open(&opt, &c), 0);
	assert_int_equal(etcd_current_rev(c, &rev), 0);
	assert_int_equal(rev, 3);
	assert_string_equal(f.paths[0], "/v3/auth/authenticate");
	assert_non_null(strstr(f.bodies[0], "\"name\":\"root\""));
	assert_non_null(strstr(f.bodies[0], "\"password\":\"secret\""));
	assert_string_equal(f.paths[1], "/v3/kv/range");
	assert_string_equal(f.auth[1], "tok1");
	assert_string_equal(f.paths[2], "/v3/auth/authenticate");
	assert_string_equal(f.paths[3], "/v3/kv/range");
	assert_string_equal(f.auth[3], "tok2");
	etcd_client_close(c);
	fake_stop(&f);
}

/* maintenance/status, with a NOSPACE alarm as etcd 3.4.23 reports it. */
static void test_status(void **state)
{
	static const struct canned ans[] = {
	    {200,
	     "{\"header\":{\"member_id\":\"9009370488483034218\","
	     "\"revision\":\"2\"},\"version\":\"3.4.23\",\"dbSize\":"
	     "\"720896\",\"leader\":\"9009370488483034218\","
	     "\"raftTerm\":\"2\",\"errors\":[\"memberID:"
	     "9009370488483034218 alarm:NOSPACE \"],\"dbSizeInUse\":"
	     "\"716800\"}",
	     false},
	};
	struct fake f;
	char ep[64];
	struct etcd_client *c;
	struct etcd_status st;

	fake_start(&f, ans, 1);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	c = client(ep, NULL);
	assert_int_equal(etcd_status(c, &st), 0);
	assert_int_equal(st.rev, 2);
	assert_string_equal(st.version, "3.4.23");
	assert_int_equal(st.db_size, 720896);
	assert_int_equal(st.db_size_in_use, 716800);
	assert_true(st.member_id == 9009370488483034218ULL);
	assert_true(st.leader == st.member_id);
	assert_int_equal(st.raft_term, 2);
	assert_true(st.alarm_nospace);
	assert_string_equal(f.paths[0], "/v3/maintenance/status");
	etcd_client_close(c);
	fake_stop(&f);
}

struct conc_arg {
	struct etcd_client *c;
	int ok;
};

static void *conc_thread(void *p)
{
	struct conc_arg *a = p;
	struct eng_range_req req = {.key = "a", .key_len = 1};
	struct eng_range_res res;
	int i;

	for (i = 0; i < 5; i++) {
		if (etcd_range(a->c, &req, &res) == 0 && res.header_rev == 42 &&
		    res.n == 1 && res.kvs[0].version == 2)
			a->ok++;
		etcd_range_res_release(&res);
	}
	return NULL;
}

/* One client, four threads: each call gets its own curl handle. */
static void test_concurrent_calls(void **state)
{
	static struct canned ans[20];
	struct conc_arg args[4];
	pthread_t th[4];
	struct fake f;
	char ep[64];
	int i;

	for (i = 0; i < 20; i++) {
		ans[i].status = 200;
		ans[i].body = "{\"header\":{\"revision\":\"42\"},\"kvs\":[{"
		              "\"key\":\"YQ==\",\"version\":\"2\"}],"
		              "\"count\":\"1\"}";
	}
	fake_start(&f, ans, 20);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	args[0].c = client(ep, NULL);
	for (i = 0; i < 4; i++) {
		args[i].c = args[0].c;
		args[i].ok = 0;
		assert_int_equal(
		    pthread_create(&th[i], NULL, conc_thread, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].ok, 5);
	}
	etcd_client_close(args[0].c);
	fake_stop(&f);
}

static void test_watch_stream(void **state)
{
	static const struct canned ans[] = {
	    {200,
	     "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":"
	     "true}}\n"
	     "{\"result\":{\"header\":{\"revision\":\"6\"},\"events\":["
	     "{\"kv\":{\"key\":\"YQ==\",\"create_revision\":\"6\","
	     "\"mod_revision\":\"6\",\"version\":\"1\",\"value\":\"eA==\"}},"
	     "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Yg==\","
	     "\"mod_revision\":\"6\"}}]}}\n"
	     "{\"result\":{\"header\":{\"revision\":\"6\"}}}\n"
	     "{\"result\":{\"header\":{},\"canceled\":true,"
	     "\"compact_revision\":\"4\"}}\n",
	     true},
	};
	struct fake f;
	char ep[64], dead[64];
	struct etcd_client *c;
	struct etcd_watch *w;
	struct eng_event *evs;
	struct eng_event got[8];
	int n, total = 0, tries;

	fake_start(&f, ans, 1);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", dead_port());
	c = client(dead, ep); /* the watch fails over too */
	assert_int_equal(
	    etcd_watch_open(c, "a", 1, "\0", 1, 3, ETCD_WATCH_PROGRESS, &w), 0);
	for (tries = 0; tries < 100 && total < 4; tries++) {
		n = etcd_watch_read(w, &evs, 8, 50);
		assert_true(n >= 0);
		for (int i = 0; i < n && total < 8; i++)
			got[total++] = evs[i]; /* only fields, not pointers */
	}
	assert_int_equal(total, 4);
	assert_int_equal(got[0].type, ENG_EV_PUT);
	assert_int_equal(got[0].kv.create_rev, 6);
	assert_int_equal(got[1].type, ENG_EV_DELETE);
	assert_true(got[1].kv.deleted);
	assert_int_equal(got[1].kv.mod_rev, 6);
	assert_int_equal(got[2].type, ENG_EV_PROGRESS);
	assert_int_equal(got[2].kv.mod_rev, 6);
	assert_int_equal(got[3].type, ENG_EV_COMPACTED);
	assert_int_equal(got[3].kv.mod_rev, 4);
	/* after the cancel nothing more comes */
	assert_int_equal(etcd_watch_read(w, &evs, 8, 0), ENG_E_CLOSED);
	assert_non_null(strstr(f.bodies[0], "\"create_request\""));
	assert_non_null(strstr(f.bodies[0], "\"start_revision\":3"));
	assert_non_null(strstr(f.bodies[0], "\"progress_notify\":true"));
	etcd_watch_close(w);
	etcd_client_close(c);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_vectors),
	    cmocka_unit_test(test_b64_roundtrip_binary),
	    cmocka_unit_test(test_b64_rejects_garbage),
	    cmocka_unit_test(test_map_error),
	    cmocka_unit_test(test_open_needs_endpoint),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_failover_connect_timeout),
	    cmocka_unit_test(test_range_decoding_and_failover),
	    cmocka_unit_test(test_error_answers),
	    cmocka_unit_test(test_txn_decoding),
	    cmocka_unit_test(test_auth_token_renewal),
	    cmocka_unit_test(test_status),
	    cmocka_unit_test(test_concurrent_calls),
	    cmocka_unit_test(test_watch_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
