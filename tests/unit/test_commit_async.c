/*
 * test_commit_async.c — eng_txn_async: completion once, in commit order,
 * durable and ordered with synchronous commits, refusals reported through
 * the completion, eng_close() waiting for every completion, and no
 * deadlock when a completion blocks on a lock held by a thread that
 * commits synchronously (the fs's FLUSH path does exactly that).
 */
#include "engine_helpers.h"

#include <pthread.h>
#include <string.h>

struct done_log {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;               /* completions seen; protected by lock */
	int rc[4096];        /* protected by lock */
	eng_rev_t rev[4096]; /* protected by lock */
	int tag[4096];       /* protected by lock */
	bool succeeded[4096];
	pthread_t thread[4096];
};

struct job {
	struct done_log *log;
	int tag;
	struct eng_op op;
	struct eng_txn txn;
	char key[32];
	char val[32];
	eng *e;                /* for the completion that reads */
	char seen[32];         /* what that completion read */
	pthread_mutex_t *hold; /* a lock the completion takes */
};

static void log_init(struct done_log *log)
{
	memset(log, 0, sizeof(*log));
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->cond, NULL);
}

static void log_release(struct done_log *log)
{
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->cond);
}

static void on_done(void *arg, int rc, const struct eng_txn_res *res)
{
	struct job *j = arg;
	struct done_log *log = j->log;

	if (j->hold) {
		pthread_mutex_lock(j->hold);
		pthread_mutex_unlock(j->hold);
	}
	if (j->e && rc == 0) {
		struct eng_kv kv;

		/* Engine calls are allowed in a completion, and see the
		 * committed value. */
		if (eng_get(j->e, j->key, strlen(j->key), 0, NULL, &kv) == 0 &&
		    kv.mod_rev > 0 && kv.value_len < sizeof(j->seen))
			memcpy(j->seen, kv.value, kv.value_len);
		eng_kv_release(&kv);
	}
	pthread_mutex_lock(&log->lock);
	log->rc[log->n] = rc;
	log->rev[log->n] = rc == 0 ? res->header_rev : 0;
	log->succeeded[log->n] = rc == 0 && res->succeeded;
	log->tag[log->n] = j->tag;
	log->thread[log->n] = pthread_self();
	log->n++;
	pthread_cond_broadcast(&log->cond);
	pthread_mutex_unlock(&log->lock);
}

static void job_put(struct job *j, struct done_log *log, int tag,
                    const char *key, const char *val)
{
	memset(j, 0, sizeof(*j));
	j->log = log;
	j->tag = tag;
	snprintf(j->key, sizeof(j->key), "%s", key);
	snprintf(j->val, sizeof(j->val), "%s", val);
	j->op.type = ENG_OP_PUT;
	j->op.key = j->key;
	j->op.key_len = strlen(j->key);
	j->op.value = j->val;
	j->op.value_len = strlen(j->val);
	j->txn.success = &j->op;
	j->txn.nsuccess = 1;
}

static void wait_for(struct done_log *log, int n)
{
	pthread_mutex_lock(&log->lock);
	while (log->n < n)
		pthread_cond_wait(&log->cond, &log->lock);
	pthread_mutex_unlock(&log->lock);
}

/* One completion per txn, on another thread, in commit order; durable. */
static void test_order_and_durability(void **state)
{
	enum { N = 500 };
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	static struct done_log log;
	static struct job jobs[N];
	char v[16];

	(void)state;
	log_init(&log);
	for (int i = 0; i < N; i++) {
		snprintf(v, sizeof(v), "%d", i);
		job_put(&jobs[i], &log, i, i % 2 ? "odd" : "even", v);
		assert_int_equal(
		    eng_txn_async(e, &jobs[i].txn, on_done, &jobs[i]), 0);
	}
	/* A synchronous commit after them is ordered after them. */
	assert_int_equal(th_put(e, "last", "x"), N + 2);
	wait_for(&log, N);
	assert_int_equal(log.n, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(log.rc[i], 0);
		assert_int_equal(log.tag[i], i);
		assert_int_equal(log.rev[i], i + 2);
		assert_true(log.succeeded[i]);
		assert_false(pthread_equal(log.thread[i], pthread_self()));
	}
	eng_close(e);
	/* Everything completed was on disk. */
	e = th_open(dir, NULL);
	assert_string_equal(th_get(e, "odd", 0), "499");
	assert_string_equal(th_get(e, "even", 0), "498");
	assert_string_equal(th_get(e, "last", 0), "x");
	assert_int_equal(eng_current_rev(e), N + 2);
	eng_close(e);
	log_release(&log);
	th_cleanup(dir);
}

/* Refusals come through the completion; argument errors are returned. */
static void test_refusals(void **state)
{
	char *dir = th_tmpdir();
	struct eng_options opt;
	eng *e;
	static struct done_log log;
	static struct job j[3];
	struct eng_cmp cmp = {.key = "k",
	                      .key_len = 1,
	                      .target = ENG_CMP_VERSION,
	                      .result = ENG_CMP_EQ,
	                      .number = 7};
	char big[64];

	(void)state;
	eng_options_init(&opt);
	opt.create = true;
	opt.max_value = 16;
	e = th_open(dir, &opt);
	log_init(&log);
	/* Caught before queuing: done is not called. */
	memset(big, 'x', sizeof(big));
	job_put(&j[0], &log, 0, "k", "");
	j[0].op.value = big;
	j[0].op.value_len = sizeof(big);
	assert_int_equal(eng_txn_async(e, &j[0].txn, on_done, &j[0]),
	                 ENG_E_TOO_LARGE);
	assert_int_equal(eng_txn_async(e, &j[0].txn, NULL, NULL),
	                 ENG_E_TOO_LARGE);
	job_put(&j[0], &log, 0, "k", "v");
	assert_int_equal(eng_txn_async(e, &j[0].txn, NULL, NULL), ENG_E_INVAL);
	{
		/* Two puts of one key: etcd's duplicate key, also found
		 * before queuing (done is not called: see wait_for below). */
		struct eng_op two[2] = {j[0].op, j[0].op};
		struct eng_txn t = {.success = two, .nsuccess = 2};

		assert_int_equal(eng_txn_async(e, &t, on_done, &j[0]),
		                 ENG_E_DUP_KEY);
	}
	/* A failed compare is a result, not an error. */
	job_put(&j[1], &log, 1, "k", "v");
	j[1].txn.cmps = &cmp;
	j[1].txn.ncmps = 1;
	assert_int_equal(eng_txn_async(e, &j[1].txn, on_done, &j[1]), 0);
	/* A put to a lease that does not exist fails in the commit. */
	job_put(&j[2], &log, 2, "k", "v");
	j[2].op.lease = 12345;
	assert_int_equal(eng_txn_async(e, &j[2].txn, on_done, &j[2]), 0);
	wait_for(&log, 2);
	assert_int_equal(log.rc[0], 0);
	assert_false(log.succeeded[0]);
	assert_int_equal(log.rev[0], 1);
	assert_int_equal(log.rc[1], ENG_E_LEASE_NOT_FOUND);
	assert_null(th_get(e, "k", 0));
	eng_close(e);
	/* Every completion has run: none for the refusals before queuing. */
	assert_int_equal(log.n, 2);
	log_release(&log);
	th_cleanup(dir);
}

/* eng_close() runs every queued completion before it returns. */
static void test_close_completes(void **state)
{
	enum { N = 300 };
	char *dir = th_tmpdir();
	eng *e = th_open(dir, NULL);
	static struct done_log log;
	static struct job jobs[N];
	char k[16];

	(void)state;
	log_init(&log);
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		job_put(&jobs[i], &log, i, k, "v");
		jobs[i].e = e;
		assert_int_equal(
		    eng_txn_async(e, &jobs[i].txn, on_done, &jobs[i]), 0);
	}
	eng_close(e);
	assert_int_equal(log.n, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(log.rc[i], 0);
		assert_string_equal(jobs[log.tag[i]].seen, "v");
	}
	log_release(&log);
	th_cleanup(dir);
}

/*
 * The FLUSH path's pattern: threads hold a lock while they queue an
 * asynchronous commit or run a synchronous one, and completions take the
 * same lock.  A completion blocked on the lock must not keep the lock's
 * holder from committing.
 */
struct mixer {
	eng *e;
	pthread_mutex_t *lock;
	struct done_log *log;
	struct job *jobs;
	int id, n;
	int failed; /* checked by the main thread: no cmocka in threads */
};

static void *mixer_main(void *arg)
{
	struct mixer *m = arg;
	char k[32], v[32];

	for (int i = 0; i < m->n; i++) {
		struct job *j = &m->jobs[i];

		snprintf(k, sizeof(k), "m%d", m->id);
		snprintf(v, sizeof(v), "%d", i);
		pthread_mutex_lock(m->lock);
		if (i % 3 == 2) {
			if (eng_put(m->e, k, strlen(k), v, strlen(v), 0, NULL,
			            NULL))
				m->failed++;
		} else {
			job_put(j, m->log, m->id * 1000 + i, k, v);
			j->hold = m->lock;
			if (eng_txn_async(m->e, &j->txn, on_done, j))
				m->failed++;
		}
		pthread_mutex_unlock(m->lock);
	}
	return NULL;
}

static void test_completion_blocks_on_committers_lock(void **state)
{
	enum { T = 4, N = 300 };
	char *dir = th_tmpdir();
	struct eng_options opt;
	eng *e;
	static struct done_log log;
	static struct job jobs[T][N];
	struct mixer m[T];
	pthread_t th[T];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int async = 0;

	(void)state;
	eng_options_init(&opt);
	opt.create = true;
	opt.sync = ENG_SYNC_NONE; /* many rounds, quickly */
	e = th_open(dir, &opt);
	log_init(&log);
	for (int t = 0; t < T; t++) {
		m[t] = (struct mixer){e, &lock, &log, jobs[t], t, N, 0};
		assert_int_equal(
		    pthread_create(&th[t], NULL, mixer_main, &m[t]), 0);
	}
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(m[t].failed, 0);
	}
	for (int i = 0; i < N; i++)
		async += i % 3 != 2;
	wait_for(&log, T * async);
	for (int i = 0; i < log.n; i++)
		assert_int_equal(log.rc[i], 0);
	/* Each writer's last value won: its commits stayed in its order. */
	for (int t = 0; t < T; t++) {
		char k[16], v[16];

		snprintf(k, sizeof(k), "m%d", t);
		snprintf(v, sizeof(v), "%d", N - 1);
		assert_string_equal(th_get(e, k, 0), v);
	}
	eng_close(e);
	log_release(&log);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_durability),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_close_completes),
	    cmocka_unit_test(test_completion_blocks_on_committers_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
