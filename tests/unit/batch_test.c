/*
 * Group commit (db/batch.c) under real concurrency: threads issuing
 * through db_cert_insert and db_enroll_commit on one handle, as meshcad's
 * worker pool does.  Each member's result must be its own, a failing
 * member must roll back only itself, a token must still be consumed once,
 * and the audit chain must stay intact with one entry per change.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "db/db.h"

#define NOW		1900000000
#define THREADS		8
#define PER_THREAD	40

static const struct db_audit TA = { "spiffe://mesh.internal/svc/t", "cert.renew", NULL, true, NULL };
static const unsigned char DER[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

struct fx {
	char		 dir[PATH_MAX];
	char		 path[PATH_MAX + 16];
	struct db	*db;
	int64_t		 service_id;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct db_service s;

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/meshca-batch-test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/meshca.db", fx->dir);
	if (db_open(fx->path, &fx->db) != MCA_OK)
		return -1;
	memset(&s, 0, sizeof(s));
	s.name = "batch";
	s.spiffe_id = "spiffe://mesh.internal/svc/batch";
	s.key_types = UINT32_MAX;
	s.enabled = true;
	if (db_service_insert(fx->db, &s, NOW, &TA) != MCA_OK)
		return -1;
	fx->service_id = s.id;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char p[PATH_MAX + 64];
	const char *files[] = { "meshca.db", "meshca.db-wal", "meshca.db-shm" };

	db_close(fx->db);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", fx->dir, files[i]);
		(void)unlink(p);
	}
	(void)rmdir(fx->dir);
	free(fx);
	return 0;
}

static void
cert_init(struct db_cert *c, int64_t service_id, char *serial)
{
	memset(c, 0, sizeof(*c));
	c->serial = serial;
	c->service_id = service_id;
	c->kind = DB_CERT_WORKLOAD;
	c->spiffe_id = "spiffe://mesh.internal/svc/batch";
	c->not_before = NOW - 60;
	c->not_after = NOW + 3600;
	c->der = (unsigned char *)DER;
	c->der_len = sizeof(DER);
}

struct worker {
	struct fx	*fx;
	int		 id;
	int		 ok, exists, other;
	pthread_barrier_t *go;
	const unsigned char *token;	/* enrollment: the one token all present */
};

/* Inserts PER_THREAD certificates; every third one reuses a serial that
 * is already stored (a failing member). */
static void *
insert_worker(void *arg)
{
	struct worker *w = arg;
	char serial[16];
	struct db_cert c;
	enum mca_err rc;

	pthread_barrier_wait(w->go);
	for (int i = 0; i < PER_THREAD; i++) {
		if (i % 3 == 2)
			snprintf(serial, sizeof(serial), "d0");		/* stored before */
		else
			snprintf(serial, sizeof(serial), "%02x%04x", w->id, i);
		cert_init(&c, w->fx->service_id, serial);
		rc = db_cert_insert(w->fx->db, &c, NOW, &TA);
		if (rc == MCA_OK)
			w->ok++;
		else if (rc == MCA_ERR_EXISTS)
			w->exists++;
		else
			w->other++;
	}
	return NULL;
}

static size_t
count_certs(struct db *db)
{
	struct db_cert *list = NULL;
	struct db_cert_filter f = { NULL, -1, -1, 10000 };
	size_t n = 0;

	assert_int_equal(db_cert_list(db, &f, NOW, &list, &n), MCA_OK);
	db_cert_list_free(list, n);
	return n;
}

static void
audit_intact(struct db *db, uint64_t entries)
{
	struct db_audit_walk walk;

	db_audit_walk_init(&walk);
	assert_int_equal(db_audit_verify(db, &walk), MCA_OK);
	assert_int_equal(walk.why, DB_AUDIT_INTACT);
	assert_int_equal(walk.count, entries);
}

static void
test_concurrent_inserts_each_own_result(void **state)
{
	struct fx *fx = *state;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	pthread_barrier_t go;
	struct db_cert c;
	int ok = 0, exists = 0;

	cert_init(&c, fx->service_id, "d0");
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_OK);
	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .fx = fx, .id = i, .go = &go };
		assert_int_equal(pthread_create(&th[i], NULL, insert_worker, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].other, 0);
		/* Exactly this thread's duplicates failed, whatever batch they shared. */
		assert_int_equal(w[i].exists, PER_THREAD / 3);
		ok += w[i].ok;
		exists += w[i].exists;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(ok, THREADS * (PER_THREAD - PER_THREAD / 3));
	/* Failed members left nothing behind: no row, no audit entry. */
	assert_int_equal(count_certs(fx->db), (size_t)ok + 1);
	audit_intact(fx->db, 1 + 1 + (uint64_t)ok);	/* service, "d0", the rest */
}

static void *
enroll_worker(void *arg)
{
	struct worker *w = arg;
	char serial[16];
	struct db_cert c;
	enum mca_err rc;

	snprintf(serial, sizeof(serial), "e%02x", w->id);
	cert_init(&c, w->fx->service_id, serial);
	pthread_barrier_wait(w->go);
	rc = db_enroll_commit(w->fx->db, w->token, NOW, &c, &TA);
	if (rc == MCA_OK)
		w->ok++;
	else if (rc == MCA_ERR_TOKEN_USED)
		w->exists++;
	else
		w->other++;
	return NULL;
}

static void
test_token_single_use_under_concurrency(void **state)
{
	struct fx *fx = *state;
	unsigned char hash[DB_TOKEN_HASH_LEN];
	struct worker w[THREADS];
	pthread_t th[THREADS];
	pthread_barrier_t go;
	int ok = 0, used = 0;

	memset(hash, 0x5a, sizeof(hash));
	assert_int_equal(db_token_insert(fx->db, fx->service_id, hash, NOW, NOW + 600, &TA), MCA_OK);
	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .fx = fx, .id = i, .go = &go, .token = hash };
		assert_int_equal(pthread_create(&th[i], NULL, enroll_worker, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].other, 0);
		ok += w[i].ok;
		used += w[i].exists;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(ok, 1);
	assert_int_equal(used, THREADS - 1);
	assert_int_equal(count_certs(fx->db), 1);
	/* service, token.mint, then token.consume + cert for the one winner. */
	audit_intact(fx->db, 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_inserts_each_own_result, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_single_use_under_concurrency, setup, teardown),
	};

	return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
