/*
 * db/ unit tests: schema and migrations, services, tokens, the
 * single-use guarantee of db_enroll_commit under concurrency, and
 * certificate records.  Each test gets its own temporary directory;
 * some checks look at the file with a raw SQLite connection, as an
 * operator with the sqlite3 shell would.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <sqlite3.h>

#include "db/db.h"

#define NOW		1700000000LL
#define NTHREADS	20

struct fx {
	char		 dir[PATH_MAX / 2];
	char		 path[PATH_MAX];
	struct db	*db;
};

static const unsigned char der_bytes[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
/* The audit entry of writes whose entry a test does not look at. */
static const struct db_audit TA = { "spiffe://mesh.internal/meshca/admin/test", "test.write",
    NULL, true, NULL };

/* ---- fixture ------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/meshca-db-test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/meshca.db", fx->dir);
	*state = fx;
	return 0;
}

static void
rm_dir(const char *dir)
{
	char p[PATH_MAX * 2];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (unlink(p) != 0)
			rm_dir(p);
	}
	closedir(d);
	(void)rmdir(dir);
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	db_close(fx->db);
	rm_dir(fx->dir);
	free(fx);
	return 0;
}

static int
setup_open(void **state)
{
	struct fx *fx;

	if (setup(state) != 0)
		return -1;
	fx = *state;
	if (db_open(fx->path, &fx->db) != MCA_OK) {
		(void)teardown(state);	/* cmocka skips teardown when setup fails */
		return -1;
	}
	return 0;
}

/* ---- raw access, as with the sqlite3 shell ------------------------------ */

static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    NULL), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	return h;
}

static int
raw_exec(const char *path, const char *sql)
{
	sqlite3 *h = raw_open(path);
	int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);

	sqlite3_close(h);
	return rc;
}

/* First column of the first row as an integer (-1 when no row). */
static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *h = raw_open(path);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void
raw_text(const char *path, const char *sql, char *out, size_t n)
{
	sqlite3 *h = raw_open(path);
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* ---- builders ------------------------------------------------------------ */

static int64_t
add_service(struct db *db, const char *name)
{
	char spiffe[256];
	struct db_service s;

	memset(&s, 0, sizeof(s));
	snprintf(spiffe, sizeof(spiffe), "spiffe://mesh.internal/svc/%s", name);
	s.name = (char *)name;
	s.spiffe_id = spiffe;
	s.default_ttl = 86400;
	s.max_ttl = 7 * 86400;
	s.key_types = 3;
	s.enabled = true;
	assert_int_equal(db_service_insert(db, &s, NOW, &TA), MCA_OK);
	assert_true(s.id > 0);
	return s.id;
}

static void
hash_fill(unsigned char h[DB_TOKEN_HASH_LEN], unsigned char v)
{
	memset(h, v, DB_TOKEN_HASH_LEN);
}

static struct db_cert
cert_make(const char *serial, int64_t service_id, enum db_cert_kind kind,
    int64_t not_before, int64_t not_after)
{
	struct db_cert c;

	memset(&c, 0, sizeof(c));
	c.serial = (char *)serial;
	c.service_id = service_id;
	c.kind = kind;
	c.spiffe_id = (char *)"spiffe://mesh.internal/svc/x";
	c.not_before = not_before;
	c.not_after = not_after;
	c.der = (unsigned char *)der_bytes;
	c.der_len = sizeof(der_bytes);
	return c;
}

static void
insert_cert(struct db *db, const char *serial, int64_t sid, enum db_cert_kind kind,
    int64_t na, int64_t created)
{
	struct db_cert c = cert_make(serial, sid, kind, NOW - 60, na);

	assert_int_equal(db_cert_insert(db, &c, created, &TA), MCA_OK);
}

static int64_t
cert_rows(const char *path)
{
	return raw_int(path, "SELECT count(*) FROM certificates");
}

/* ---- open, schema, migrations ------------------------------------------- */

/* The indexes on certificates and audit, by name (schema v6, db/db.c):
 * each one is a page more written by every issuance. */
static void
assert_cert_audit_indexes(const char *path)
{
	char names[512];

	raw_text(path, "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema"
	    " WHERE type = 'index' AND tbl_name IN ('certificates', 'audit') ORDER BY name)",
	    names, sizeof(names));
	assert_string_equal(names, "certificates_created certificates_nonworkload_created"
	    " certificates_revoked_created certificates_service_created certificates_status"
	    " sqlite_autoindex_certificates_1");
}

static void
test_open_creates_schema(void **state)
{
	struct fx *fx = *state;
	char mode[32], wal[PATH_MAX + 8];
	struct stat st;
	mode_t old = umask(0);	/* the mode must not depend on the umask */
	enum mca_err rc = db_open(fx->path, &fx->db);

	umask(old);
	assert_int_equal(rc, MCA_OK);
	assert_non_null(fx->db);
	assert_int_equal(db_schema_version(fx->db), DB_SCHEMA_VERSION);
	assert_int_equal(db_ping(fx->db), MCA_OK);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A write creates the WAL; SQLite gives it the database's mode. */
	(void)add_service(fx->db, "payments");
	snprintf(wal, sizeof(wal), "%s-wal", fx->path);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	raw_text(fx->path, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
	    " AND name IN ('services', 'tokens', 'certificates', 'audit')"), 4);
	assert_cert_audit_indexes(fx->path);
}

/* Foreign keys are per connection: observe them through db/ itself. */
static void
test_open_foreign_keys_on(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN];
	struct db_cert c = cert_make("ab", 4242, DB_CERT_WORKLOAD, NOW, NOW + 3600);

	hash_fill(h, 1);
	assert_int_equal(db_token_insert(fx->db, 4242, h, NOW, NOW + 600, &TA), MCA_ERR_DB);
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_DB);
	c = cert_make("ac", 0, DB_CERT_ADMIN, NOW, NOW + 3600);
	c.renewed_from = (char *)"ffff";	/* no such certificate */
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_DB);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens"), 0);
	assert_int_equal(cert_rows(fx->path), 0);
}

static void
test_open_reopen_idempotent(void **state)
{
	struct fx *fx = *state;
	struct db *second = NULL;
	struct db_service s;

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	(void)add_service(fx->db, "payments");
	db_close(fx->db);
	fx->db = NULL;
	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(db_open(fx->path, &second), MCA_OK);	/* two at once */
	assert_int_equal(db_schema_version(fx->db), DB_SCHEMA_VERSION);
	assert_int_equal(db_schema_version(second), DB_SCHEMA_VERSION);
	assert_int_equal(db_service_get(second, "payments", &s), MCA_OK);
	assert_string_equal(s.name, "payments");
	db_service_clear(&s);
	db_close(second);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM services"), 1);
}

static void
test_open_newer_schema_refused(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(raw_exec(fx->path, "PRAGMA user_version = 99"), SQLITE_OK);
	mca_err_clear();
	assert_int_equal(db_open(fx->path, &fx->db), MCA_ERR_DB_SCHEMA);
	assert_null(fx->db);
	assert_non_null(strstr(mca_err_detail(), "99"));
	/* Untouched: still 99, no table created. */
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 99);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema"), 0);
}

static void
test_open_one_past_current_refused(void **state)
{
	struct fx *fx = *state;
	char sql[64];

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	db_close(fx->db);
	fx->db = NULL;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", DB_SCHEMA_VERSION + 1);
	assert_int_equal(raw_exec(fx->path, sql), SQLITE_OK);
	assert_int_equal(db_open(fx->path, &fx->db), MCA_ERR_DB_SCHEMA);
	assert_null(fx->db);
	assert_int_equal(raw_exec(fx->path, "PRAGMA user_version = -1"), SQLITE_OK);
	assert_int_equal(db_open(fx->path, &fx->db), MCA_ERR_DB_SCHEMA);
}

static void
test_open_version0_migrates(void **state)
{
	struct fx *fx = *state;

	/* A real SQLite file at version 0 with no tables left in it. */
	assert_int_equal(raw_exec(fx->path, "CREATE TABLE t (x); DROP TABLE t;"), SQLITE_OK);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 0);
	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(db_schema_version(fx->db), DB_SCHEMA_VERSION);
	(void)add_service(fx->db, "payments");
}

/* A migration is one transaction: when it fails, nothing of it remains. */
static void
test_open_failed_migration_rolls_back(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(raw_exec(fx->path, "CREATE TABLE certificates (x)"), SQLITE_OK);
	assert_int_equal(db_open(fx->path, &fx->db), MCA_ERR_DB);
	assert_null(fx->db);
	assert_non_null(strstr(mca_err_detail(), "migration"));
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name IN ('services', 'tokens', 'audit')"), 0);
}

static void
test_open_hostile(void **state)
{
	struct fx *fx = *state;
	char p[PATH_MAX + 32];
	int fd;

	assert_int_equal(db_open(NULL, &fx->db), MCA_ERR_INVALID);
	assert_int_equal(db_open("", &fx->db), MCA_ERR_INVALID);
	assert_int_equal(db_open(":memory:", &fx->db), MCA_ERR_INVALID);
	assert_int_equal(db_open(fx->path, NULL), MCA_ERR_INVALID);
	snprintf(p, sizeof(p), "%s/no/such/dir/x.db", fx->dir);
	assert_int_equal(db_open(p, &fx->db), MCA_ERR_IO);
	assert_int_equal(db_open(fx->dir, &fx->db), MCA_ERR_IO);	/* a directory */
	/* Not a database: refused, not overwritten. */
	snprintf(p, sizeof(p), "%s/garbage.db", fx->dir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, "this is not sqlite!!", 20), 20);
	close(fd);
	assert_int_equal(db_open(p, &fx->db), MCA_ERR_DB);
	assert_null(fx->db);
	db_close(NULL);
	assert_int_equal(db_schema_version(NULL), -1);
	assert_int_equal(db_ping(NULL), MCA_ERR_INVALID);
}

static void
test_audit_append_only(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(raw_exec(fx->path, "INSERT INTO audit (at, actor, action, outcome, detail, prev_hash, hash)"
	    " VALUES (1, 'admin', 'service.create', 'success', '{\"name\":\"x\"}', zeroblob(32), zeroblob(32))"),
	    SQLITE_OK);
	assert_int_not_equal(raw_exec(fx->path, "UPDATE audit SET actor = 'mallory'"), SQLITE_OK);
	assert_int_not_equal(raw_exec(fx->path, "DELETE FROM audit"), SQLITE_OK);
	assert_int_not_equal(raw_exec(fx->path, "INSERT INTO audit (at, actor, action, outcome, prev_hash, hash)"
	    " VALUES (1, 'a', 'b', 'maybe', zeroblob(32), zeroblob(32))"), SQLITE_OK);
	assert_int_not_equal(raw_exec(fx->path, "INSERT INTO audit (at, actor, action, outcome, prev_hash, hash)"
	    " VALUES (1, 'a', 'b', 'success', zeroblob(31), zeroblob(32))"), SQLITE_OK);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE actor = 'admin'"), 1);
}

/* ---- services ------------------------------------------------------------ */

static void
test_service_roundtrip(void **state)
{
	struct fx *fx = *state;
	char *dns[] = { "payments.mesh.internal", "*.payments.svc" };
	char *ips[] = { "10.0.0.0/8", "fd00::1" };
	struct db_service s, got, byid;

	memset(&s, 0, sizeof(s));
	s.name = "payments";
	s.spiffe_id = "spiffe://mesh.internal/svc/payments";
	s.dns_names = dns;
	s.ndns = 2;
	s.ip_ranges = ips;
	s.nips = 2;
	s.default_ttl = 3600;
	s.max_ttl = 86400;
	s.key_types = 0x5;
	s.enabled = true;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_OK);
	assert_true(s.id > 0);
	assert_int_equal(s.created_at, NOW);
	assert_int_equal(s.updated_at, NOW);
	assert_int_equal(db_service_get(fx->db, "payments", &got), MCA_OK);
	assert_int_equal(got.id, s.id);
	assert_string_equal(got.spiffe_id, s.spiffe_id);
	assert_int_equal(got.ndns, 2);
	assert_string_equal(got.dns_names[0], dns[0]);
	assert_string_equal(got.dns_names[1], dns[1]);
	assert_int_equal(got.nips, 2);
	assert_string_equal(got.ip_ranges[1], ips[1]);
	assert_int_equal(got.default_ttl, 3600);
	assert_int_equal(got.max_ttl, 86400);
	assert_int_equal(got.key_types, 0x5);
	assert_true(got.enabled);
	assert_int_equal(got.created_at, NOW);
	assert_int_equal(db_service_get_by_id(fx->db, s.id, &byid), MCA_OK);
	assert_string_equal(byid.name, "payments");
	db_service_clear(&got);
	assert_null(got.name);
	assert_null(got.dns_names);
	assert_int_equal(got.ndns, 0);
	db_service_clear(&byid);
}

/* Policy update: compare-and-set on the whole policy, allow_wildcards
 * stored, identity untouched, updated_at moved. */
static void
test_service_update(void **state)
{
	struct fx *fx = *state;
	char *dns2[] = { "b.svc", "*.pods.svc" };
	char *ips2[] = { "10.1.0.0/16" };
	struct db_service old, upd, got, stale;
	int64_t id = add_service(fx->db, "upd");

	memset(&upd, 0, sizeof(upd));
	assert_int_equal(db_service_get(fx->db, "upd", &old), MCA_OK);
	assert_false(old.allow_wildcards);
	upd.dns_names = dns2;
	upd.ndns = 2;
	upd.ip_ranges = ips2;
	upd.nips = 1;
	upd.default_ttl = 600;
	upd.max_ttl = 1200;
	upd.key_types = 0x8;
	upd.allow_wildcards = true;
	assert_int_equal(db_service_update(fx->db, &old, &upd, NOW + 5, &TA), MCA_OK);
	assert_int_equal(upd.updated_at, NOW + 5);
	assert_int_equal(db_service_get(fx->db, "upd", &got), MCA_OK);
	assert_int_equal(got.id, id);
	assert_string_equal(got.spiffe_id, "spiffe://mesh.internal/svc/upd");
	assert_int_equal(got.ndns, 2);
	assert_string_equal(got.dns_names[1], "*.pods.svc");
	assert_int_equal(got.nips, 1);
	assert_int_equal(got.default_ttl, 600);
	assert_int_equal(got.max_ttl, 1200);
	assert_int_equal(got.key_types, 0x8);
	assert_true(got.allow_wildcards);
	assert_true(got.enabled);
	assert_int_equal(got.created_at, NOW);
	assert_int_equal(got.updated_at, NOW + 5);
	/* A second writer still holding the old policy loses: nothing changes. */
	memset(&stale, 0, sizeof(stale));
	stale.default_ttl = stale.max_ttl = 60;
	assert_int_equal(db_service_update(fx->db, &old, &stale, NOW + 6, &TA), MCA_ERR_CONFLICT);
	db_service_clear(&old);
	assert_int_equal(db_service_get(fx->db, "upd", &old), MCA_OK);
	assert_int_equal(old.default_ttl, 600);
	assert_int_equal(old.updated_at, NOW + 5);
	/* With the current policy it applies; empty lists are fine. */
	assert_int_equal(db_service_update(fx->db, &old, &stale, NOW + 7, &TA), MCA_OK);
	db_service_clear(&got);
	assert_int_equal(db_service_get(fx->db, "upd", &got), MCA_OK);
	assert_int_equal(got.ndns + got.nips, 0);
	assert_false(got.allow_wildcards);
	/* Gone, hostile, NULL. */
	got.id = 999999;
	assert_int_equal(db_service_update(fx->db, &got, &stale, NOW, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_update(fx->db, &old, &stale, NOW, NULL), MCA_ERR_INVALID);
	assert_int_equal(db_service_update(NULL, &old, &stale, NOW, &TA), MCA_ERR_INVALID);
	stale.default_ttl = -1;
	db_service_clear(&old);
	assert_int_equal(db_service_get(fx->db, "upd", &old), MCA_OK);
	assert_int_equal(db_service_update(fx->db, &old, &stale, NOW, &TA), MCA_ERR_INVALID);
	db_service_clear(&old);
	db_service_clear(&got);
}

static void
test_service_empty_lists_and_disabled(void **state)
{
	struct fx *fx = *state;
	struct db_service s, got;

	memset(&s, 0, sizeof(s));
	s.name = "bare";
	s.spiffe_id = "spiffe://mesh.internal/svc/bare";
	s.key_types = UINT32_MAX;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_OK);
	assert_int_equal(db_service_get(fx->db, "bare", &got), MCA_OK);
	assert_int_equal(got.ndns, 0);
	assert_null(got.dns_names);
	assert_int_equal(got.nips, 0);
	assert_false(got.enabled);
	assert_int_equal(got.key_types, UINT32_MAX);
	db_service_clear(&got);
}

static void
test_service_list_ordered(void **state)
{
	struct fx *fx = *state;
	struct db_service *list = NULL;
	size_t n = 99;

	assert_int_equal(db_service_list(fx->db, &list, &n), MCA_OK);
	assert_int_equal(n, 0);
	assert_null(list);
	(void)add_service(fx->db, "zeta");
	(void)add_service(fx->db, "alpha");
	(void)add_service(fx->db, "mid");
	assert_int_equal(db_service_list(fx->db, &list, &n), MCA_OK);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].name, "alpha");
	assert_string_equal(list[1].name, "mid");
	assert_string_equal(list[2].name, "zeta");
	assert_string_equal(list[2].spiffe_id, "spiffe://mesh.internal/svc/zeta");
	db_service_list_free(list, n);
	db_service_list_free(NULL, 0);
}

static void
test_service_duplicate_and_missing(void **state)
{
	struct fx *fx = *state;
	struct db_service s, got;

	(void)add_service(fx->db, "payments");
	memset(&s, 0, sizeof(s));
	s.name = "payments";
	s.spiffe_id = "spiffe://mesh.internal/svc/other";
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_EXISTS);
	assert_int_equal(s.id, 0);
	s.name = "other";
	s.spiffe_id = "spiffe://mesh.internal/svc/payments";	/* SPIFFE ID taken */
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_EXISTS);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM services"), 1);
	memset(&got, 0x5a, sizeof(got));
	assert_int_equal(db_service_get(fx->db, "nope", &got), MCA_ERR_NOT_FOUND);
	assert_null(got.name);	/* cleared on failure */
	assert_int_equal(db_service_get(fx->db, "", &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_get_by_id(fx->db, 999, &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_get_by_id(fx->db, -1, &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_get(fx->db, NULL, &got), MCA_ERR_INVALID);
	assert_int_equal(db_service_get(fx->db, "payments", NULL), MCA_ERR_INVALID);
}

static void
test_service_sql_metacharacters(void **state)
{
	struct fx *fx = *state;
	static const char *names[] = {
		"pay'ments", "x\"; DROP TABLE services; --", "' OR '1'='1", "%_*?[]\\",
		"Robert'); DELETE FROM tokens;--", "\xe2\x9c\x93 utf-8",
	};
	struct db_service got;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)add_service(fx->db, names[i]);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(db_service_get(fx->db, names[i], &got), MCA_OK);
		assert_string_equal(got.name, names[i]);
		db_service_clear(&got);
	}
	/* LIKE/GLOB wildcards are not patterns here. */
	assert_int_equal(db_service_get(fx->db, "%", &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_get(fx->db, "' OR '1'='1' --", &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM services"), 6);
}

static void
test_service_hostile_fields(void **state)
{
	struct fx *fx = *state;
	char *nl[] = { "a.example", "evil\nb.example" };
	char *empty[] = { "" };
	char *null_item[] = { NULL };
	struct db_service s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);	/* no name */
	s.name = "";
	s.spiffe_id = "spiffe://x/y";
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	s.name = "svc";
	s.spiffe_id = NULL;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	s.spiffe_id = "spiffe://x/y";
	s.dns_names = nl;	/* a newline would split one name into two */
	s.ndns = 2;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	s.dns_names = empty;
	s.ndns = 1;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	s.dns_names = NULL;
	s.ndns = 0;
	s.ip_ranges = null_item;
	s.nips = 1;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	s.ip_ranges = NULL;
	s.nips = 3;	/* count without array */
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	s.nips = 0;
	s.max_ttl = -1;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_service_insert(NULL, &s, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_service_insert(fx->db, NULL, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM services"), 0);
}

static void
test_service_clear_partial(void **state)
{
	struct db_service s;

	(void)state;
	db_service_clear(NULL);
	memset(&s, 0, sizeof(s));
	s.name = strdup("only-a-name");
	s.ndns = 5;	/* count with no array: tolerated */
	db_service_clear(&s);
	assert_null(s.name);
	assert_int_equal(s.ndns, 0);
}

/* ---- tokens ---------------------------------------------------------------- */

static void
test_token_lifecycle(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN];
	int64_t sid = add_service(fx->db, "payments"), got = -1;
	struct db_cert c = cert_make("01", sid, DB_CERT_WORKLOAD, NOW, NOW + 3600);

	hash_fill(h, 0xa1);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_lookup(fx->db, h, NOW, &got), MCA_OK);
	assert_int_equal(got, sid);
	/* A lookup does not consume. */
	assert_int_equal(db_token_lookup(fx->db, h, NOW + 1, &got), MCA_OK);
	assert_int_equal(db_enroll_commit(fx->db, h, NOW + 10, &c, &TA), MCA_OK);
	assert_int_equal(raw_int(fx->path, "SELECT used_at FROM tokens"), NOW + 10);
	got = -1;
	assert_int_equal(db_token_lookup(fx->db, h, NOW + 11, &got), MCA_ERR_TOKEN_USED);
	assert_int_equal(got, 0);
	/* Used beats expired: the more useful answer after expiry. */
	assert_int_equal(db_token_lookup(fx->db, h, NOW + 9999, &got), MCA_ERR_TOKEN_USED);
	c.serial = "02";
	assert_int_equal(db_enroll_commit(fx->db, h, NOW + 12, &c, &TA), MCA_ERR_TOKEN_USED);
	assert_int_equal(cert_rows(fx->path), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates WHERE serial = '01'"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT used_at FROM tokens"), NOW + 10);
}

static void
test_token_expired(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN];
	int64_t sid = add_service(fx->db, "payments"), got;
	struct db_cert c = cert_make("0e", sid, DB_CERT_WORKLOAD, NOW, NOW + 3600);

	hash_fill(h, 0xe0);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_lookup(fx->db, h, NOW + 599, &got), MCA_OK);
	assert_int_equal(db_token_lookup(fx->db, h, NOW + 600, &got), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(db_enroll_commit(fx->db, h, NOW + 600, &c, &TA), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(db_enroll_commit(fx->db, h, NOW + 100000, &c, &TA), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(cert_rows(fx->path), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens WHERE used_at IS NULL"), 1);
}

static void
test_token_unknown(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN], other[DB_TOKEN_HASH_LEN];
	int64_t sid = add_service(fx->db, "payments"), got;
	struct db_cert c = cert_make("0f", sid, DB_CERT_WORKLOAD, NOW, NOW + 3600);

	hash_fill(h, 0x11);
	hash_fill(other, 0x11);
	other[31] ^= 1;		/* one bit off */
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_lookup(fx->db, other, NOW, &got), MCA_ERR_TOKEN_INVALID);
	assert_int_equal(db_enroll_commit(fx->db, other, NOW, &c, &TA), MCA_ERR_TOKEN_INVALID);
	assert_int_equal(cert_rows(fx->path), 0);
	assert_int_equal(db_token_lookup(fx->db, h, NOW, &got), MCA_OK);	/* untouched */
	assert_int_equal(db_token_lookup(NULL, h, NOW, &got), MCA_ERR_INVALID);
	assert_int_equal(db_token_lookup(fx->db, NULL, NOW, &got), MCA_ERR_INVALID);
	assert_int_equal(db_token_lookup(fx->db, h, NOW, NULL), MCA_ERR_INVALID);
}

static void
test_token_other_service_refused(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN];
	int64_t pay = add_service(fx->db, "payments"), web = add_service(fx->db, "web"), got;
	struct db_cert c = cert_make("0a", web, DB_CERT_WORKLOAD, NOW, NOW + 3600);

	hash_fill(h, 0x22);
	assert_int_equal(db_token_insert(fx->db, pay, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, &TA), MCA_ERR_TOKEN_INVALID);
	assert_int_equal(cert_rows(fx->path), 0);
	/* Still good for its own service. */
	assert_int_equal(db_token_lookup(fx->db, h, NOW, &got), MCA_OK);
	assert_int_equal(got, pay);
	c.service_id = 0;
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, &TA), MCA_ERR_INVALID);
	c.service_id = pay;
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, &TA), MCA_OK);
}

static void
test_token_insert_hostile(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN];
	int64_t sid = add_service(fx->db, "payments");

	hash_fill(h, 0x33);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_ERR_EXISTS);
	hash_fill(h, 0x34);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW - 1, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_token_insert(fx->db, sid, NULL, NOW, NOW + 1, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_token_insert(NULL, sid, h, NOW, NOW + 1, &TA), MCA_ERR_INVALID);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens"), 1);
	/* The token itself is never stored: only a 32-byte hash column. */
	assert_int_equal(raw_int(fx->path, "SELECT length(hash) FROM tokens"), DB_TOKEN_HASH_LEN);
}

/* A failed certificate insert must not burn the token. */
static void
test_enroll_rolls_back_on_cert_error(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN];
	int64_t sid = add_service(fx->db, "payments"), got;
	struct db_cert c = cert_make("beef", sid, DB_CERT_WORKLOAD, NOW, NOW + 3600);

	insert_cert(fx->db, "beef", sid, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	hash_fill(h, 0x44);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, &TA), MCA_ERR_EXISTS);
	assert_int_equal(db_token_lookup(fx->db, h, NOW, &got), MCA_OK);
	c.serial = "NOT-HEX";
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_token_lookup(fx->db, h, NOW, &got), MCA_OK);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens WHERE used_at IS NULL"), 1);
	assert_int_equal(cert_rows(fx->path), 1);
}

/* ---- concurrency ------------------------------------------------------------- */

struct racer {
	const char		*path;
	struct db		*shared;	/* NULL: open a connection of one's own */
	const unsigned char	*hash;
	int64_t			 sid;
	int			 idx;
	pthread_barrier_t	*start;
	enum mca_err		 open_rc;
	enum mca_err		 rc;
};

static void *
racer_run(void *arg)
{
	struct racer *r = arg;
	struct db *db = r->shared;
	char serial[16];
	struct db_cert c;

	r->open_rc = MCA_OK;
	if (db == NULL)
		r->open_rc = db_open(r->path, &db);
	(void)pthread_barrier_wait(r->start);
	if (r->open_rc != MCA_OK)
		return NULL;
	snprintf(serial, sizeof(serial), "c0%02x", r->idx);
	c = cert_make(serial, r->sid, DB_CERT_WORKLOAD, NOW, NOW + 3600);
	r->rc = db_enroll_commit(db, r->hash, NOW + 1, &c, &TA);
	if (r->shared == NULL)
		db_close(db);
	return NULL;
}

static void
race_one_token(struct fx *fx, bool shared)
{
	unsigned char h[DB_TOKEN_HASH_LEN];
	struct racer r[NTHREADS];
	pthread_t t[NTHREADS];
	pthread_barrier_t start;
	int64_t sid = add_service(fx->db, "payments");
	int ok = 0, used = 0;

	hash_fill(h, 0x77);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(pthread_barrier_init(&start, NULL, NTHREADS), 0);
	for (int i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){ fx->path, shared ? fx->db : NULL, h, sid, i, &start,
		    MCA_ERR_MAX, MCA_ERR_MAX };
		assert_int_equal(pthread_create(&t[i], NULL, racer_run, &r[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(r[i].open_rc, MCA_OK);
		ok += r[i].rc == MCA_OK;
		used += r[i].rc == MCA_ERR_TOKEN_USED;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(used, NTHREADS - 1);	/* no BUSY, no other error */
	assert_int_equal(cert_rows(fx->path), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens WHERE used_at IS NOT NULL"), 1);
}

static void
test_race_separate_connections(void **state)
{
	race_one_token(*state, false);
}

static void
test_race_shared_handle(void **state)
{
	race_one_token(*state, true);
}

struct opener {
	const char		*path;
	pthread_barrier_t	*start;
	enum mca_err		 rc;
	int			 version;
};

static void *
opener_run(void *arg)
{
	struct opener *o = arg;
	struct db *db = NULL;

	(void)pthread_barrier_wait(o->start);
	if ((o->rc = db_open(o->path, &db)) == MCA_OK)
		o->version = db_schema_version(db);
	db_close(db);
	return NULL;
}

/* Many processes starting at once on a fresh file migrate it once. */
static void
test_race_first_open(void **state)
{
	struct fx *fx = *state;
	struct opener o[NTHREADS];
	pthread_t t[NTHREADS];
	pthread_barrier_t start;

	assert_int_equal(pthread_barrier_init(&start, NULL, NTHREADS), 0);
	for (int i = 0; i < NTHREADS; i++) {
		o[i] = (struct opener){ fx->path, &start, MCA_ERR_MAX, -1 };
		assert_int_equal(pthread_create(&t[i], NULL, opener_run, &o[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(o[i].rc, MCA_OK);
		assert_int_equal(o[i].version, DB_SCHEMA_VERSION);
	}
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name = 'certificates'"), 1);
}

/* ---- certificates -------------------------------------------------------------- */

static void
test_cert_roundtrip(void **state)
{
	struct fx *fx = *state;
	char *dns[] = { "payments.mesh.internal" };
	char *ips[] = { "10.1.2.3", "::1" };
	int64_t sid = add_service(fx->db, "payments");
	struct db_cert c = cert_make("0123456789abcdef0123456789abcdef", sid, DB_CERT_WORKLOAD,
	    NOW - 60, NOW + 3600), got;

	c.dns_names = dns;
	c.ndns = 1;
	c.ip_addresses = ips;
	c.nips = 2;
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_OK);
	assert_int_equal(db_cert_get(fx->db, c.serial, NOW, &got), MCA_OK);
	assert_string_equal(got.serial, c.serial);
	assert_int_equal(got.service_id, sid);
	assert_string_equal(got.service, "payments");
	assert_int_equal(got.kind, DB_CERT_WORKLOAD);
	assert_string_equal(got.spiffe_id, c.spiffe_id);
	assert_int_equal(got.ndns, 1);
	assert_string_equal(got.dns_names[0], dns[0]);
	assert_int_equal(got.nips, 2);
	assert_string_equal(got.ip_addresses[1], "::1");
	assert_int_equal(got.not_before, NOW - 60);
	assert_int_equal(got.not_after, NOW + 3600);
	assert_int_equal(got.der_len, sizeof(der_bytes));
	assert_memory_equal(got.der, der_bytes, sizeof(der_bytes));
	assert_int_equal(got.status, DB_CERT_ACTIVE);
	assert_null(got.renewed_from);
	assert_int_equal(got.created_at, NOW);
	db_cert_clear(&got);
	assert_null(got.serial);
	assert_null(got.der);
	assert_int_equal(got.der_len, 0);
	/* A renewal pointing back, and an admin certificate with no service. */
	c = cert_make("02", sid, DB_CERT_WORKLOAD, NOW, NOW + 3600);
	c.renewed_from = "0123456789abcdef0123456789abcdef";
	assert_int_equal(db_cert_insert(fx->db, &c, NOW + 1, &TA), MCA_OK);
	c = cert_make("03", 0, DB_CERT_ADMIN, NOW, NOW + 3600);
	c.spiffe_id = NULL;
	assert_int_equal(db_cert_insert(fx->db, &c, NOW + 2, &TA), MCA_OK);
	assert_int_equal(db_cert_get(fx->db, "02", NOW, &got), MCA_OK);
	assert_string_equal(got.renewed_from, "0123456789abcdef0123456789abcdef");
	db_cert_clear(&got);
	assert_int_equal(db_cert_get(fx->db, "03", NOW, &got), MCA_OK);
	assert_int_equal(got.service_id, 0);
	assert_null(got.service);
	assert_null(got.spiffe_id);
	assert_int_equal(got.kind, DB_CERT_ADMIN);
	db_cert_clear(&got);
}

static void
test_cert_derived_expired(void **state)
{
	struct fx *fx = *state;
	struct db_cert got;

	insert_cert(fx->db, "aa", 0, DB_CERT_SERVER, NOW + 100, NOW);
	assert_int_equal(db_cert_get(fx->db, "aa", NOW + 99, &got), MCA_OK);
	assert_int_equal(got.status, DB_CERT_ACTIVE);
	db_cert_clear(&got);
	assert_int_equal(db_cert_get(fx->db, "aa", NOW + 100, &got), MCA_OK);
	assert_int_equal(got.status, DB_CERT_EXPIRED);
	db_cert_clear(&got);
	/* Stored status is untouched: expiry is only derived. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates"
	    " WHERE status = 'active'"), 1);
	/* Revoked stays revoked after expiry. */
	assert_int_equal(raw_exec(fx->path, "UPDATE certificates SET status = 'revoked',"
	    " revoked_at = 1, revocation_reason = 1 WHERE serial = 'aa'"), SQLITE_OK);
	assert_int_equal(db_cert_get(fx->db, "aa", NOW + 1000, &got), MCA_OK);
	assert_int_equal(got.status, DB_CERT_REVOKED);
	db_cert_clear(&got);
}

static void
test_cert_serial_collision(void **state)
{
	struct fx *fx = *state;
	struct db_cert c = cert_make("dd", 0, DB_CERT_SERVER, NOW, NOW + 10), got;
	unsigned char other[] = { 1, 2, 3 };

	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_OK);
	c.der = other;
	c.der_len = sizeof(other);
	assert_int_equal(db_cert_insert(fx->db, &c, NOW + 5, &TA), MCA_ERR_EXISTS);
	assert_int_equal(cert_rows(fx->path), 1);
	assert_int_equal(db_cert_get(fx->db, "dd", NOW, &got), MCA_OK);
	assert_memory_equal(got.der, der_bytes, sizeof(der_bytes));	/* first one kept */
	db_cert_clear(&got);
}

static void
test_cert_hostile(void **state)
{
	struct fx *fx = *state;
	static const char *bad_serials[] = {
		"", "DD", "0x12", "12 34", "zz", "'; DROP TABLE certificates; --",
		"00000000000000000000000000000000000000000000000000000000000000001",	/* 65 */
	};
	struct db_cert c, got;
	char *nl[] = { "a\nb" };

	for (size_t i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
		c = cert_make(bad_serials[i], 0, DB_CERT_SERVER, NOW, NOW + 10);
		assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	}
	c = cert_make(NULL, 0, DB_CERT_SERVER, NOW, NOW + 10);
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	c = cert_make("01", 0, (enum db_cert_kind)7, NOW, NOW + 10);
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	c = cert_make("01", 0, DB_CERT_SERVER, NOW, NOW - 10);
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	c = cert_make("01", 0, DB_CERT_SERVER, NOW, NOW + 10);
	c.der_len = 0;
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	c = cert_make("01", -3, DB_CERT_SERVER, NOW, NOW + 10);
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	c = cert_make("01", 0, DB_CERT_SERVER, NOW, NOW + 10);
	c.renewed_from = "X";
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	c.renewed_from = NULL;
	c.dns_names = nl;
	c.ndns = 1;
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_insert(fx->db, NULL, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(cert_rows(fx->path), 0);
	assert_int_equal(db_cert_get(fx->db, "' OR 1=1 --", NOW, &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_cert_get(fx->db, "01", NOW, &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_cert_get(fx->db, NULL, NOW, &got), MCA_ERR_INVALID);
	db_cert_clear(NULL);
	db_cert_list_free(NULL, 0);
	memset(&got, 0, sizeof(got));
	got.serial = strdup("01");
	got.nips = 4;	/* count without array: tolerated */
	db_cert_clear(&got);
	assert_null(got.serial);
}

static void
test_cert_names(void **state)
{
	enum db_cert_status s;

	(void)state;
	assert_string_equal(db_cert_kind_name(DB_CERT_WORKLOAD), "workload");
	assert_string_equal(db_cert_kind_name(DB_CERT_ADMIN), "admin");
	assert_string_equal(db_cert_kind_name(DB_CERT_SERVER), "server");
	assert_non_null(db_cert_kind_name(DB_CERT_KIND_MAX));
	for (int i = 0; i < DB_CERT_STATUS_MAX; i++) {
		assert_int_equal(db_cert_status_parse(db_cert_status_name((enum db_cert_status)i),
		    &s), MCA_OK);
		assert_int_equal(s, i);
	}
	assert_string_equal(db_cert_status_name(DB_CERT_EXPIRED), "expired");
	assert_non_null(db_cert_status_name((enum db_cert_status)42));
	assert_int_equal(db_cert_status_parse("Active", &s), MCA_ERR_INVALID);
	assert_int_equal(db_cert_status_parse("", &s), MCA_ERR_INVALID);
	assert_int_equal(db_cert_status_parse(NULL, &s), MCA_ERR_INVALID);
}

/* Five certificates over two services and three kinds; see the table. */
static void
cert_fixture(struct db *db, int64_t pay, int64_t web)
{
	/* serial  service  kind      not_after    created */
	insert_cert(db, "a1", pay, DB_CERT_WORKLOAD, NOW + 1000, NOW + 1);
	insert_cert(db, "a2", pay, DB_CERT_WORKLOAD, NOW + 10, NOW + 2);	/* expires */
	insert_cert(db, "b1", web, DB_CERT_WORKLOAD, NOW + 1000, NOW + 3);
	insert_cert(db, "c1", 0, DB_CERT_ADMIN, NOW + 1000, NOW + 3);
	insert_cert(db, "d1", 0, DB_CERT_SERVER, NOW + 1000, NOW + 4);
}

static size_t
list_serials(struct db *db, const struct db_cert_filter *f, int64_t now, char *out, size_t n)
{
	struct db_cert *list = NULL;
	size_t count = 0, off = 0;

	assert_int_equal(db_cert_list(db, f, now, &list, &count), MCA_OK);
	out[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		assert_null(list[i].der);		/* lists do not load DER */
		assert_int_equal(list[i].der_len, 0);
		off += (size_t)snprintf(out + off, n - off, "%s%s", i ? "," : "", list[i].serial);
	}
	db_cert_list_free(list, count);
	return count;
}

static void
test_cert_list_filters(void **state)
{
	struct fx *fx = *state;
	int64_t pay = add_service(fx->db, "payments"), web = add_service(fx->db, "web");
	struct db_cert_filter f = { NULL, -1, -1, 0 };
	char s[256];

	cert_fixture(fx->db, pay, web);
	assert_int_equal(raw_exec(fx->path, "UPDATE certificates SET status = 'revoked',"
	    " revoked_at = 5, revocation_reason = 4 WHERE serial = 'b1'"), SQLITE_OK);
	/* Newest first; equal times by serial. */
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 5);
	assert_string_equal(s, "d1,b1,c1,a2,a1");
	assert_int_equal(list_serials(fx->db, NULL, NOW + 100, s, sizeof(s)), 5);
	f.service = "payments";
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 2);
	assert_string_equal(s, "a2,a1");
	f.service = "nope";
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 0);
	f.service = "' OR 1=1 --";
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 0);
	f.service = NULL;
	f.status = DB_CERT_ACTIVE;
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 3);
	assert_string_equal(s, "d1,c1,a1");
	f.status = DB_CERT_EXPIRED;
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 1);
	assert_string_equal(s, "a2");
	assert_int_equal(list_serials(fx->db, &f, NOW + 10, s, sizeof(s)), 1);	/* boundary */
	assert_int_equal(list_serials(fx->db, &f, NOW + 9, s, sizeof(s)), 0);
	f.status = DB_CERT_REVOKED;
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 1);
	assert_string_equal(s, "b1");
	assert_int_equal(list_serials(fx->db, &f, NOW + 5000, s, sizeof(s)), 1);
	f.status = -1;
	f.kind = DB_CERT_ADMIN;
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 1);
	assert_string_equal(s, "c1");
	f.kind = DB_CERT_WORKLOAD;
	f.status = DB_CERT_ACTIVE;
	f.service = "payments";
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 1);
	assert_string_equal(s, "a1");
	f = (struct db_cert_filter){ NULL, -1, -1, 2 };
	assert_int_equal(list_serials(fx->db, &f, NOW + 100, s, sizeof(s)), 2);
	assert_string_equal(s, "d1,b1");
}

/*
 * Every filter shape of GET /v1/certificates walks an index newest first
 * and stops at the limit (db/certs.c, cert_list_sql): never a scan of the
 * table, never a sort of everything that matches, never the 'active'
 * range of certificates_status read whole.  With 10 million rows stored
 * any of those takes seconds to minutes while holding the database
 * (tests/bench/README.md, "Scale").  SQLite plans without statistics
 * here as it does at scale (meshca never runs ANALYZE).
 */
static void
test_cert_list_plans(void **state)
{
	struct fx *fx = *state;
	static const char *const services[] = { NULL, "payments" };
	char plan[1024], want[64];
	size_t shapes = 0;

	for (size_t s = 0; s < 2; s++)
	for (int kind = -1; kind < DB_CERT_KIND_MAX; kind++)
	for (int status = -1; status < DB_CERT_STATUS_MAX; status++) {
		struct db_cert_filter f = { services[s], status, kind, 0 };

		assert_int_equal(db_cert_list_plan(fx->db, &f, plan, sizeof(plan)), MCA_OK);
		assert_non_null(strstr(plan, " c USING INDEX certificates_"));
		assert_null(strstr(plan, "SCAN c\n"));
		/* "FOR RIGHT PART OF ORDER BY" sorts equal times by serial only. */
		assert_null(strstr(plan, "FOR ORDER BY"));
		assert_null(strstr(plan, "certificates_status "));
		/* The rare values walk the partial index that holds only them. */
		if (kind == DB_CERT_ADMIN || kind == DB_CERT_SERVER)
			snprintf(want, sizeof(want), "%s", status == DB_CERT_REVOKED ?
			    "certificates_revoked_created" : "certificates_nonworkload_created");
		else if (status == DB_CERT_REVOKED)
			snprintf(want, sizeof(want), "certificates_revoked_created");
		else
			snprintf(want, sizeof(want), "%s", services[s] != NULL ?
			    "certificates_service_created" : "certificates_created");
		if (strstr(plan, want) == NULL)
			fail_msg("service %s kind %d status %d: want %s, plan:\n%s",
			    services[s] != NULL ? services[s] : "-", kind, status, want, plan);
		shapes++;
	}
	assert_int_equal(shapes, 2 * (DB_CERT_KIND_MAX + 1) * (DB_CERT_STATUS_MAX + 1));
}

/* Removing an admin revokes through the partial index of admin and
 * server certificates: certificates_status would walk every live
 * workload certificate of the CA while holding the writer.  Disabling a
 * service walks the live certificates (certificates_status), not the
 * service's history, where expired certificates pile up. */
static void
test_revoke_plans(void **state)
{
	struct fx *fx = *state;
	char plan[1024];

	assert_int_equal(db_revoke_plans(fx->db, plan, sizeof(plan)), MCA_OK);
	if (strstr(plan, "service: SEARCH certificates USING INDEX certificates_status"
	    " (status=? AND not_after>?)\n") == NULL ||
	    strstr(plan, "admin: SEARCH certificates USING INDEX certificates_nonworkload_created"
	    " (kind=?)\n") == NULL)
		fail_msg("revocation plans:\n%s", plan);
	assert_int_equal(db_revoke_plans(NULL, plan, sizeof(plan)), MCA_ERR_INVALID);
	assert_int_equal(db_revoke_plans(fx->db, NULL, sizeof(plan)), MCA_ERR_INVALID);
	assert_int_equal(db_revoke_plans(fx->db, plan, 0), MCA_ERR_INVALID);
	assert_int_equal(db_revoke_plans(fx->db, plan, 12), MCA_ERR_TOOBIG);
	assert_int_equal(db_revoke_plans(fx->db, plan, 40), MCA_ERR_TOOBIG);
}

static void
test_cert_list_plan_hostile(void **state)
{
	struct fx *fx = *state;
	struct db_cert_filter f = { NULL, -1, -1, 0 }, bad = { NULL, DB_CERT_STATUS_MAX, -1, 0 };
	char plan[1024];

	assert_int_equal(db_cert_list_plan(NULL, &f, plan, sizeof(plan)), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list_plan(fx->db, NULL, plan, sizeof(plan)), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list_plan(fx->db, &f, NULL, sizeof(plan)), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list_plan(fx->db, &f, plan, 0), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list_plan(fx->db, &bad, plan, sizeof(plan)), MCA_ERR_INVALID);
	bad = (struct db_cert_filter){ NULL, -1, -2, 0 };
	assert_int_equal(db_cert_list_plan(fx->db, &bad, plan, sizeof(plan)), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list_plan(fx->db, &f, plan, 8), MCA_ERR_TOOBIG);
	f.service = "' OR 1=1 --";	/* bound, never part of the statement */
	assert_int_equal(db_cert_list_plan(fx->db, &f, plan, sizeof(plan)), MCA_OK);
	assert_null(strstr(plan, "OR 1=1"));
}

static void
test_cert_list_status_in_rows(void **state)
{
	struct fx *fx = *state;
	int64_t pay = add_service(fx->db, "payments"), web = add_service(fx->db, "web");
	struct db_cert *list = NULL;
	size_t n = 0;

	cert_fixture(fx->db, pay, web);
	assert_int_equal(db_cert_list(fx->db, NULL, NOW + 100, &list, &n), MCA_OK);
	assert_int_equal(n, 5);
	assert_string_equal(list[3].serial, "a2");
	assert_int_equal(list[3].status, DB_CERT_EXPIRED);
	assert_string_equal(list[3].service, "payments");
	assert_int_equal(list[4].status, DB_CERT_ACTIVE);
	assert_null(list[2].service);	/* admin: no service */
	db_cert_list_free(list, n);
}

static void
test_cert_list_hostile_filter(void **state)
{
	struct fx *fx = *state;
	struct db_cert_filter f = { NULL, DB_CERT_STATUS_MAX, -1, 0 };
	struct db_cert *list = (struct db_cert *)1;
	size_t n = 7;

	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_ERR_INVALID);
	assert_null(list);
	assert_int_equal(n, 0);
	f = (struct db_cert_filter){ NULL, -2, -1, 0 };
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_ERR_INVALID);
	f = (struct db_cert_filter){ NULL, -1, DB_CERT_KIND_MAX, 0 };
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_ERR_INVALID);
	f = (struct db_cert_filter){ NULL, -1, -100, 0 };
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list(fx->db, NULL, NOW, NULL, &n), MCA_ERR_INVALID);
	assert_int_equal(db_cert_list(fx->db, NULL, NOW, &list, NULL), MCA_ERR_INVALID);
}

static void
test_cert_list_limits(void **state)
{
	struct fx *fx = *state;
	struct db_cert_filter f = { NULL, -1, -1, 0 };
	struct db_cert *list = NULL;
	size_t n = 0;

	/* 10005 rows in one raw transaction; lists must cap them. */
	assert_int_equal(raw_exec(fx->path,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10005)"
	    " INSERT INTO certificates (serial, kind, not_before, not_after, der, created_at)"
	    " SELECT printf('%x', i), 'server', 0, 1, x'00', i FROM n"), SQLITE_OK);
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_OK);
	assert_int_equal(n, 1000);
	assert_string_equal(list[0].serial, "2715");	/* 10005: newest first */
	db_cert_list_free(list, n);
	f.limit = 20000;
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_OK);
	assert_int_equal(n, 10000);
	db_cert_list_free(list, n);
	f.limit = SIZE_MAX;
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_OK);
	assert_int_equal(n, 10000);
	db_cert_list_free(list, n);
	f.limit = 1;
	assert_int_equal(db_cert_list(fx->db, &f, NOW, &list, &n), MCA_OK);
	assert_int_equal(n, 1);
	db_cert_list_free(list, n);
}

/* ---- revocation (schema v2) ---------------------------------------------- */

static void
test_revoke_idempotent(void **state)
{
	struct fx *fx = *state;
	int64_t sid = add_service(fx->db, "payments");
	struct db_cert c;
	bool newly = false;

	insert_cert(fx->db, "0a1b", sid, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	assert_int_equal(db_cert_revoke(fx->db, "0a1b", 1, NOW + 10, &newly, &TA), MCA_OK);
	assert_true(newly);
	assert_int_equal(db_cert_get(fx->db, "0a1b", NOW + 20, &c), MCA_OK);
	assert_int_equal(c.status, DB_CERT_REVOKED);
	assert_int_equal(c.revoked_at, NOW + 10);
	assert_int_equal(c.revocation_reason, 1);
	db_cert_clear(&c);
	/* Again, later, with another reason: nothing moves. */
	assert_int_equal(db_cert_revoke(fx->db, "0a1b", 4, NOW + 500, &newly, &TA), MCA_OK);
	assert_false(newly);
	assert_int_equal(db_cert_revoke(fx->db, "0a1b", 0, NOW + 600, NULL, &TA), MCA_OK);
	assert_int_equal(db_cert_get(fx->db, "0a1b", NOW + 700, &c), MCA_OK);
	assert_int_equal(c.status, DB_CERT_REVOKED);
	assert_int_equal(c.revoked_at, NOW + 10);
	assert_int_equal(c.revocation_reason, 1);
	db_cert_clear(&c);
	/* An expired certificate can still be revoked (OCSP then says so). */
	insert_cert(fx->db, "0a1c", sid, DB_CERT_WORKLOAD, NOW + 5, NOW);
	assert_int_equal(db_cert_revoke(fx->db, "0a1c", 0, NOW + 100, &newly, &TA), MCA_OK);
	assert_true(newly);
}

static void
test_revoke_not_found_and_hostile(void **state)
{
	struct fx *fx = *state;
	bool newly = true;

	assert_int_equal(db_cert_revoke(fx->db, "abcdef", 0, NOW, &newly, &TA), MCA_ERR_NOT_FOUND);
	assert_false(newly);
	insert_cert(fx->db, "ab", 0, DB_CERT_ADMIN, NOW + 3600, NOW);
	assert_int_equal(db_cert_revoke(fx->db, "ab", 7, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, "ab", 11, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, "ab", -1, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, "AB", 0, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, "ab' OR '1'='1", 0, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, "", 0, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, NULL, 0, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_cert_revoke(NULL, "ab", 0, NOW, &newly, &TA), MCA_ERR_INVALID);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), 0);
}

static void
test_service_enable_disable(void **state)
{
	struct fx *fx = *state;
	struct db_service s;

	(void)add_service(fx->db, "payments");
	assert_int_equal(db_service_set_enabled(fx->db, "payments", false, NOW + 5, &TA), MCA_OK);
	assert_int_equal(db_service_get(fx->db, "payments", &s), MCA_OK);
	assert_false(s.enabled);
	assert_int_equal(s.updated_at, NOW + 5);
	assert_int_equal(s.created_at, NOW);
	db_service_clear(&s);
	assert_int_equal(db_service_set_enabled(fx->db, "payments", true, NOW + 6, &TA), MCA_OK);
	assert_int_equal(db_service_get(fx->db, "payments", &s), MCA_OK);
	assert_true(s.enabled);
	db_service_clear(&s);
	assert_int_equal(db_service_set_enabled(fx->db, "nope", false, NOW, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_set_enabled(fx->db, "' OR 1=1 --", false, NOW, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_set_enabled(fx->db, NULL, false, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(db_service_disable_revoke(fx->db, "nope", 5, NOW, NULL, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM services WHERE enabled = 1"), 1);
}

static void
test_service_disable_revoke(void **state)
{
	struct fx *fx = *state;
	int64_t a = add_service(fx->db, "payments"), b = add_service(fx->db, "web");
	struct db_cert c;
	struct db_service s;
	size_t n = 99;

	insert_cert(fx->db, "a1", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "a2", a, DB_CERT_WORKLOAD, NOW + 7200, NOW);
	insert_cert(fx->db, "a3", a, DB_CERT_WORKLOAD, NOW + 50, NOW);		/* expired by then */
	insert_cert(fx->db, "a4", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "b1", b, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	assert_int_equal(db_cert_revoke(fx->db, "a4", 1, NOW + 10, NULL, &TA), MCA_OK);
	assert_int_equal(db_service_disable_revoke(fx->db, "payments", 7, NOW + 100, &n, &TA), MCA_ERR_INVALID);
	assert_int_equal(n, 0);
	assert_int_equal(db_service_disable_revoke(fx->db, "payments", DB_REASON_CESSATION, NOW + 100, &n, &TA),
	    MCA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(db_service_get(fx->db, "payments", &s), MCA_OK);
	assert_false(s.enabled);
	db_service_clear(&s);
	assert_int_equal(db_cert_get(fx->db, "a1", NOW + 100, &c), MCA_OK);
	assert_int_equal(c.status, DB_CERT_REVOKED);
	assert_int_equal(c.revocation_reason, DB_REASON_CESSATION);
	assert_int_equal(c.revoked_at, NOW + 100);
	db_cert_clear(&c);
	assert_int_equal(db_cert_get(fx->db, "a4", NOW + 100, &c), MCA_OK);	/* first revocation stands */
	assert_int_equal(c.revocation_reason, 1);
	assert_int_equal(c.revoked_at, NOW + 10);
	db_cert_clear(&c);
	assert_int_equal(db_cert_get(fx->db, "a3", NOW + 100, &c), MCA_OK);
	assert_int_equal(c.status, DB_CERT_EXPIRED);
	db_cert_clear(&c);
	assert_int_equal(db_cert_get(fx->db, "b1", NOW + 100, &c), MCA_OK);	/* other service */
	assert_int_equal(c.status, DB_CERT_ACTIVE);
	db_cert_clear(&c);
	/* Once more: nothing left to revoke, still disabled. */
	assert_int_equal(db_service_disable_revoke(fx->db, "payments", 0, NOW + 200, &n, &TA), MCA_OK);
	assert_int_equal(n, 0);
}

/* When any revocation fails, the service stays enabled and nothing is revoked. */
static void
test_service_disable_revoke_atomic(void **state)
{
	struct fx *fx = *state;
	int64_t a = add_service(fx->db, "payments");
	struct db_service s;
	size_t n = 99;

	insert_cert(fx->db, "a1", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "a2", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "a3", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	assert_int_equal(raw_exec(fx->path, "CREATE TRIGGER boom BEFORE UPDATE ON certificates"
	    " WHEN NEW.serial = 'a2' BEGIN SELECT RAISE(ABORT, 'boom'); END;"), SQLITE_OK);
	assert_int_not_equal(db_service_disable_revoke(fx->db, "payments", 5, NOW + 10, &n, &TA), MCA_OK);
	assert_int_equal(n, 0);
	assert_int_equal(db_service_get(fx->db, "payments", &s), MCA_OK);
	assert_true(s.enabled);
	assert_int_equal(s.updated_at, NOW);
	db_service_clear(&s);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), 0);
	/* The handle is still usable, and works once the obstacle is gone. */
	assert_int_equal(raw_exec(fx->path, "DROP TRIGGER boom"), SQLITE_OK);
	assert_int_equal(db_service_disable_revoke(fx->db, "payments", 5, NOW + 10, &n, &TA), MCA_OK);
	assert_int_equal(n, 3);
}

static void
test_revoked_live_excludes_expired(void **state)
{
	struct fx *fx = *state;
	int64_t a = add_service(fx->db, "payments");
	struct db_revoked *list = NULL;
	size_t n = 0;

	insert_cert(fx->db, "c3", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "c1", a, DB_CERT_WORKLOAD, NOW + 100, NOW);
	insert_cert(fx->db, "c2", 0, DB_CERT_ADMIN, NOW + 3600, NOW);
	insert_cert(fx->db, "c4", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);	/* never revoked */
	assert_int_equal(db_revoked_live(fx->db, NOW, &list, &n), MCA_OK);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(db_cert_revoke(fx->db, "c3", 1, NOW + 1, NULL, &TA), MCA_OK);
	assert_int_equal(db_cert_revoke(fx->db, "c1", 4, NOW + 2, NULL, &TA), MCA_OK);
	assert_int_equal(db_cert_revoke(fx->db, "c2", 0, NOW + 3, NULL, &TA), MCA_OK);
	assert_int_equal(db_revoked_live(fx->db, NOW + 10, &list, &n), MCA_OK);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].serial, "c1");	/* by serial */
	assert_int_equal(list[0].revoked_at, NOW + 2);
	assert_int_equal(list[0].reason, 4);
	assert_string_equal(list[1].serial, "c2");
	assert_int_equal(list[1].reason, 0);
	assert_string_equal(list[2].serial, "c3");
	free(list);
	/* c1 expires at NOW + 100: at that second it has left the list. */
	assert_int_equal(db_revoked_live(fx->db, NOW + 100, &list, &n), MCA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].serial, "c2");
	free(list);
	assert_int_equal(db_revoked_live(fx->db, NOW + 4000, &list, &n), MCA_OK);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(db_revoked_live(fx->db, NOW, NULL, &n), MCA_ERR_INVALID);
	assert_int_equal(db_revoked_live(NULL, NOW, &list, &n), MCA_ERR_INVALID);
}

static void
test_crl_insert_latest(void **state)
{
	struct fx *fx = *state;
	unsigned char der[] = { 0x30, 0x00 };
	struct db_crl c = { 1, NOW, NOW + 86400, NOW, der, sizeof(der) }, got;

	assert_int_equal(db_crl_latest(fx->db, true, &got), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_OK);
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_ERR_EXISTS);		/* same number */
	c.number = 2;
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_OK);
	c.number = 1;
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_ERR_INVALID);	/* going back */
	assert_int_equal(db_crl_latest(fx->db, true, &got), MCA_OK);
	assert_int_equal(got.number, 2);
	assert_int_equal(got.this_update, NOW);
	assert_int_equal(got.next_update, NOW + 86400);
	assert_int_equal(got.der_len, sizeof(der));
	assert_memory_equal(got.der, der, sizeof(der));
	db_crl_clear(&got);
	assert_int_equal(db_crl_latest(fx->db, false, &got), MCA_OK);
	assert_int_equal(got.number, 2);
	assert_null(got.der);
	db_crl_clear(&got);
	db_crl_clear(NULL);
	/* Hostile: numbers out of range, times backwards, no DER. */
	c.number = 0;
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_ERR_INVALID);
	c.number = (uint64_t)INT64_MAX + 1;
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_ERR_INVALID);
	c.number = 3;
	c.next_update = c.this_update;
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_ERR_INVALID);
	c.next_update = NOW + 1;
	c.der = NULL;
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_ERR_INVALID);
	c.der = der;
	/* Only the newest DB_CRL_KEEP are kept; gaps are allowed. */
	for (uint64_t i = 10; i < 10 + 3 * DB_CRL_KEEP; i++) {
		c.number = i;
		assert_int_equal(db_crl_insert(fx->db, &c), MCA_OK);
	}
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM crls"), DB_CRL_KEEP);
	assert_int_equal(raw_int(fx->path, "SELECT max(number) FROM crls"), 10 + 3 * DB_CRL_KEEP - 1);
}

/* The v1 schema as it shipped, created by hand as an old meshcad left it. */
static const char v1_schema[] =
	"CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
	" spiffe_id TEXT NOT NULL UNIQUE CHECK (length(spiffe_id) > 0), dns_names TEXT NOT NULL DEFAULT '',"
	" ip_ranges TEXT NOT NULL DEFAULT '', default_ttl INTEGER NOT NULL CHECK (default_ttl >= 0),"
	" max_ttl INTEGER NOT NULL CHECK (max_ttl >= 0),"
	" key_types INTEGER NOT NULL CHECK (key_types BETWEEN 0 AND 4294967295),"
	" enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)), created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL);"
	"CREATE TABLE tokens (id INTEGER PRIMARY KEY, service_id INTEGER NOT NULL REFERENCES services(id),"
	" hash BLOB NOT NULL UNIQUE CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
	" created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER);"
	"CREATE INDEX tokens_service ON tokens(service_id);"
	"CREATE TABLE certificates (serial TEXT PRIMARY KEY"
	" CHECK (length(serial) BETWEEN 1 AND 64 AND serial NOT GLOB '*[^0-9a-f]*'),"
	" service_id INTEGER REFERENCES services(id),"
	" kind TEXT NOT NULL CHECK (kind IN ('workload', 'admin', 'server')), spiffe_id TEXT,"
	" dns_names TEXT NOT NULL DEFAULT '', ip_addresses TEXT NOT NULL DEFAULT '',"
	" not_before INTEGER NOT NULL, not_after INTEGER NOT NULL CHECK (not_after >= not_before),"
	" der BLOB NOT NULL CHECK (typeof(der) = 'blob' AND length(der) > 0),"
	" status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),"
	" revoked_at INTEGER, revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 10),"
	" renewed_from TEXT REFERENCES certificates(serial), created_at INTEGER NOT NULL,"
	" CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)));"
	"CREATE INDEX certificates_service ON certificates(service_id);"
	"CREATE INDEX certificates_status ON certificates(status, not_after);"
	"CREATE INDEX certificates_spiffe ON certificates(spiffe_id);"
	"CREATE INDEX certificates_created ON certificates(created_at, serial);"
	"CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,"
	" action TEXT NOT NULL, subject TEXT, outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),"
	" detail TEXT);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
	"INSERT INTO services VALUES (1, 'payments', 'spiffe://mesh.internal/svc/payments', 'p.svc', '',"
	" 86400, 259200, 63, 1, 1700000000, 1700000000);"
	"INSERT INTO certificates (serial, service_id, kind, spiffe_id, not_before, not_after, der, created_at)"
	" VALUES ('00ff', 1, 'workload', 'spiffe://mesh.internal/svc/payments', 1700000000, 1800000000,"
	" x'300100', 1700000000);"
	"INSERT INTO certificates (serial, kind, spiffe_id, not_before, not_after, der, created_at)"
	" VALUES ('0a0a', 'admin', 'spiffe://mesh.internal/meshca/admin/root-admin', 1700000000, 1800000000,"
	" x'300100', 1700000000);"
	"INSERT INTO tokens (service_id, hash, created_at, expires_at)"
	" VALUES (1, x'0101010101010101010101010101010101010101010101010101010101010101', 1700000000, 1700003600);"
	"PRAGMA user_version = 1;";

static void
test_migrate_v1_to_latest(void **state)
{
	struct fx *fx = *state;
	unsigned char der[] = { 0x30, 0x00 };
	struct db_crl c = { 1, NOW, NOW + 60, NOW, der, sizeof(der) };
	struct db_service s;
	struct db_cert cert;

	assert_int_equal(raw_exec(fx->path, "PRAGMA journal_mode = WAL"), SQLITE_OK);
	assert_int_equal(raw_exec(fx->path, v1_schema), SQLITE_OK);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 1);
	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(db_schema_version(fx->db), DB_SCHEMA_VERSION);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'crls'"), 1);
	/* v3: the admin of the v1 file became an admins row; its token survived
	 * the tokens rebuild, still bound to its service. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM admins WHERE name = 'root-admin' AND role = 'admin'"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens WHERE service_id = 1 AND admin_id IS NULL"), 1);
	assert_int_not_equal(raw_exec(fx->path, "INSERT INTO tokens (hash, created_at, expires_at)"
	    " VALUES (randomblob(32), 1, 2)"), SQLITE_OK);
	/* v4: the audit log is the hash-chained one. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'hash'"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_checkpoints'"), 1);
	/* The old rows are intact and usable with the new code. */
	assert_int_equal(db_service_get(fx->db, "payments", &s), MCA_OK);
	assert_string_equal(s.spiffe_id, "spiffe://mesh.internal/svc/payments");
	db_service_clear(&s);
	assert_int_equal(db_cert_get(fx->db, "00ff", NOW, &cert), MCA_OK);
	assert_int_equal(cert.status, DB_CERT_ACTIVE);
	db_cert_clear(&cert);
	assert_int_equal(db_cert_revoke(fx->db, "00ff", 1, NOW, NULL, &TA), MCA_OK);
	assert_int_equal(db_crl_insert(fx->db, &c), MCA_OK);
	/* Reopening does not migrate again. */
	db_close(fx->db);
	fx->db = NULL;
	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM crls"), 1);
}

/* A v1 file whose crls name is taken: migration 2 fails and leaves v1 as it was. */
static void
test_migrate_v2_failure_keeps_v1(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(raw_exec(fx->path, v1_schema), SQLITE_OK);
	assert_int_equal(raw_exec(fx->path, "CREATE TABLE crls (x)"), SQLITE_OK);
	assert_int_equal(db_open(fx->path, &fx->db), MCA_ERR_DB);
	assert_null(fx->db);
	assert_non_null(strstr(mca_err_detail(), "schema version 2"));
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates"), 2);
}

/* A file this program made, as meshcad at schema v6 left it: no counts
 * table, no triggers keeping it. */
static const char v7_to_v6[] =
	"DROP TRIGGER certificate_counts_insert;"
	"DROP TRIGGER certificate_counts_status;"
	"DROP TRIGGER certificate_counts_delete;"
	"DROP TABLE certificate_counts;"
	"PRAGMA user_version = 6;";

/* The v5 indexes put back on a file this program made (v5 in db/db.c),
 * as an older meshcad left it. */
static const char v6_to_v5[] =
	"DROP INDEX certificates_nonworkload_created;"
	"DROP INDEX certificates_revoked_created;"
	"CREATE INDEX certificates_spiffe ON certificates(spiffe_id);"
	"CREATE INDEX audit_at ON audit(at);"
	"CREATE INDEX certificates_kind_created ON certificates(kind, created_at, serial);"
	"CREATE INDEX certificates_status_created ON certificates(status, created_at, serial);"
	"PRAGMA user_version = 5;";

/* Every filter shape at two times, one line each, into out. */
static void
list_every_shape(struct db *db, char *out, size_t n)
{
	static const char *const services[] = { NULL, "payments", "web" };
	size_t off = 0;
	char s[256];

	out[0] = '\0';
	for (size_t sv = 0; sv < 3; sv++)
	for (int kind = -1; kind < DB_CERT_KIND_MAX; kind++)
	for (int status = -1; status < DB_CERT_STATUS_MAX; status++)
	for (int64_t at = NOW + 100; at <= NOW + 5000; at += 4900) {
		struct db_cert_filter f = { services[sv], status, kind, 0 };

		(void)list_serials(db, &f, at, s, sizeof(s));
		off += (size_t)snprintf(out + off, n - off, "%s\n", s);
		assert_true(off < n);
	}
}

static void
test_migrate_v5_to_v6(void **state)
{
	struct fx *fx = *state;
	static char before[8192], after[8192];
	struct db_audit_walk w;
	char check[64];
	int64_t pay, web, entries;

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	pay = add_service(fx->db, "payments");
	web = add_service(fx->db, "web");
	cert_fixture(fx->db, pay, web);
	assert_int_equal(db_cert_revoke(fx->db, "b1", 4, NOW + 5, NULL, &TA), MCA_OK);
	assert_int_equal(db_cert_revoke(fx->db, "c1", 1, NOW + 5, NULL, &TA), MCA_OK);
	list_every_shape(fx->db, before, sizeof(before));
	db_close(fx->db);
	fx->db = NULL;
	assert_int_equal(raw_exec(fx->path, v7_to_v6), SQLITE_OK);
	assert_int_equal(raw_exec(fx->path, v6_to_v5), SQLITE_OK);
	entries = raw_int(fx->path, "SELECT count(*) FROM audit");

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	assert_cert_audit_indexes(fx->path);
	raw_text(fx->path, "PRAGMA integrity_check", check, sizeof(check));
	assert_string_equal(check, "ok");
	/* Rows and chain as they were; the partial indexes hold their rows only. */
	assert_int_equal(cert_rows(fx->path), 5);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit"), entries);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates"
	    " INDEXED BY certificates_revoked_created WHERE status = 'revoked'"), 2);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM certificates"
	    " INDEXED BY certificates_nonworkload_created WHERE kind <> 'workload'"), 2);
	db_audit_walk_init(&w);
	assert_int_equal(db_audit_verify(fx->db, &w), MCA_OK);
	assert_int_equal(w.why, DB_AUDIT_INTACT);
	assert_int_equal(w.count, (uint64_t)entries);
	/* Every listing answers as before the migration. */
	list_every_shape(fx->db, after, sizeof(after));
	assert_string_equal(after, before);
	/* New rows go where they belong: a revoked workload, an admin. */
	insert_cert(fx->db, "e1", web, DB_CERT_WORKLOAD, NOW + 1000, NOW + 6);
	insert_cert(fx->db, "f1", 0, DB_CERT_ADMIN, NOW + 1000, NOW + 6);
	assert_int_equal(db_cert_revoke(fx->db, "e1", 1, NOW + 7, NULL, &TA), MCA_OK);
	raw_text(fx->path, "PRAGMA integrity_check", check, sizeof(check));
	assert_string_equal(check, "ok");
	assert_int_equal(list_serials(fx->db, &(struct db_cert_filter){ NULL, DB_CERT_REVOKED, -1, 0 },
	    NOW + 100, before, sizeof(before)), 3);
	assert_string_equal(before, "e1,b1,c1");	/* equal times by serial */
	assert_int_equal(list_serials(fx->db, &(struct db_cert_filter){ NULL, -1, DB_CERT_ADMIN, 0 },
	    NOW + 100, before, sizeof(before)), 2);
	assert_string_equal(before, "f1,c1");
}

/* ---- administrators (db/admins.c) and status counts (db/status.c) ------- */

static const struct db_audit TA_ADMIN_ADD = { "meshca init", "admin.add", "x", true, NULL };
static const struct db_audit TA_ADMIN_REMOVE = { "spiffe://mesh.internal/meshca/admin/root",
    "admin.remove", "x", true, "{\"reason\":\"cessationOfOperation\"}" };

static int64_t
add_admin(struct db *db, const char *name, enum db_admin_role role)
{
	int64_t id = 0;

	assert_int_equal(db_admin_insert(db, name, role, NOW, &id, &TA_ADMIN_ADD), MCA_OK);
	assert_true(id > 0);
	return id;
}

static void
insert_admin_cert(struct db *db, const char *serial, const char *spiffe, enum db_cert_kind kind,
    int64_t na)
{
	struct db_cert c = cert_make(serial, 0, kind, NOW - 60, na);

	c.spiffe_id = (char *)spiffe;
	assert_int_equal(db_cert_insert(db, &c, NOW, &TA), MCA_OK);
}

static int64_t
status_of(const char *path, const char *serial)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT status = 'revoked' FROM certificates WHERE serial = '%s'",
	    serial);
	return raw_int(path, sql);
}

static void
test_admin_insert_get_list(void **state)
{
	struct fx *fx = *state;
	static const char *const bad[] = { "", ".", "..", "a/b", "a b", "x'--", "\xc3\xa9",
	    "0123456789012345678901234567890123456789012345678901234567890123" };
	struct db_admin a, *list = NULL;
	enum db_admin_role r;
	size_t n = 0;
	int64_t id;

	id = add_admin(fx->db, "zed", DB_ROLE_VIEWER);
	(void)add_admin(fx->db, "alice", DB_ROLE_ADMIN);
	assert_int_equal(db_admin_get(fx->db, "zed", &a), MCA_OK);
	assert_int_equal(a.id, id);
	assert_string_equal(a.name, "zed");
	assert_int_equal(a.role, DB_ROLE_VIEWER);
	assert_int_equal(a.created_at, NOW);
	assert_int_equal(a.removed_at, 0);
	db_admin_clear(&a);
	assert_int_equal(db_admin_get_by_id(fx->db, id, &a), MCA_OK);
	assert_string_equal(a.name, "zed");
	db_admin_clear(&a);
	db_admin_clear(NULL);
	assert_int_equal(db_admin_get(fx->db, "nobody", &a), MCA_ERR_NOT_FOUND);
	assert_null(a.name);
	assert_int_equal(db_admin_insert(fx->db, "alice", DB_ROLE_VIEWER, NOW, NULL, &TA_ADMIN_ADD),
	    MCA_ERR_EXISTS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(db_admin_insert(fx->db, bad[i], DB_ROLE_ADMIN, NOW, NULL,
		    &TA_ADMIN_ADD), MCA_ERR_INVALID);
	assert_int_equal(db_admin_insert(fx->db, NULL, DB_ROLE_ADMIN, NOW, NULL, &TA_ADMIN_ADD),
	    MCA_ERR_INVALID);
	assert_int_equal(db_admin_insert(fx->db, "ok", DB_ROLE_MAX, NOW, NULL, &TA_ADMIN_ADD),
	    MCA_ERR_INVALID);
	/* No state change without its audit entry. */
	assert_int_equal(db_admin_insert(fx->db, "ok", DB_ROLE_ADMIN, NOW, NULL, NULL), MCA_ERR_INVALID);
	assert_int_equal(db_admin_get(fx->db, "ok", &a), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_admin_list(fx->db, &list, &n), MCA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alice");
	assert_int_equal(list[0].role, DB_ROLE_ADMIN);
	assert_string_equal(list[1].name, "zed");
	db_admin_list_free(list, n);
	db_admin_list_free(NULL, 0);
	assert_int_equal(db_admin_role_parse("viewer", &r), MCA_OK);
	assert_int_equal(r, DB_ROLE_VIEWER);
	assert_int_equal(db_admin_role_parse("Admin", &r), MCA_ERR_INVALID);
	assert_int_equal(db_admin_role_parse(NULL, &r), MCA_ERR_INVALID);
	assert_string_equal(db_admin_role_name(DB_ROLE_ADMIN), "admin");
	assert_true(DB_ROLE_VIEWER < DB_ROLE_ADMIN);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE action = 'admin.add'"), 2);
}

static void
test_admin_remove_revokes(void **state)
{
	struct fx *fx = *state;
	struct db_admin a;
	size_t n = 99;
	int64_t sid;

	(void)add_admin(fx->db, "root", DB_ROLE_ADMIN);
	(void)add_admin(fx->db, "alice", DB_ROLE_ADMIN);
	(void)add_admin(fx->db, "alice2", DB_ROLE_VIEWER);
	sid = add_service(fx->db, "lookalike");
	insert_admin_cert(fx->db, "a1", "spiffe://mesh.internal/meshca/admin/alice", DB_CERT_ADMIN,
	    NOW + 3600);
	insert_admin_cert(fx->db, "a2", "spiffe://mesh.internal/meshca/admin/alice", DB_CERT_ADMIN,
	    NOW + 7200);
	insert_admin_cert(fx->db, "a3", "spiffe://mesh.internal/meshca/admin/alice", DB_CERT_ADMIN,
	    NOW - 1);			/* expired: left alone */
	insert_admin_cert(fx->db, "b1", "spiffe://mesh.internal/meshca/admin/alice2", DB_CERT_ADMIN,
	    NOW + 3600);
	insert_admin_cert(fx->db, "c1", "spiffe://mesh.internal/meshca/admin/root", DB_CERT_ADMIN,
	    NOW + 3600);
	{	/* a workload whose SPIFFE ID merely ends like an admin's */
		struct db_cert c = cert_make("d1", sid, DB_CERT_WORKLOAD, NOW - 60, NOW + 3600);

		c.spiffe_id = (char *)"spiffe://mesh.internal/x/meshca/admin/alice";
		assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_OK);
	}
	assert_int_equal(db_cert_revoke(fx->db, "a2", 1, NOW, NULL, &TA), MCA_OK);	/* already */
	assert_int_equal(db_admin_remove(fx->db, "alice", DB_REASON_CESSATION, NOW + 10, &n,
	    &TA_ADMIN_REMOVE), MCA_OK);
	assert_int_equal(n, 1);		/* a1 only */
	assert_int_equal(status_of(fx->path, "a1"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT revocation_reason FROM certificates WHERE serial = 'a1'"), 5);
	assert_int_equal(raw_int(fx->path, "SELECT revoked_at FROM certificates WHERE serial = 'a1'"), NOW + 10);
	assert_int_equal(raw_int(fx->path, "SELECT revocation_reason FROM certificates WHERE serial = 'a2'"), 1);
	assert_int_equal(status_of(fx->path, "a3"), 0);
	assert_int_equal(status_of(fx->path, "b1"), 0);
	assert_int_equal(status_of(fx->path, "c1"), 0);
	assert_int_equal(status_of(fx->path, "d1"), 0);
	assert_int_equal(db_admin_get(fx->db, "alice", &a), MCA_OK);
	assert_int_equal(a.removed_at, NOW + 10);
	db_admin_clear(&a);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE action = 'admin.remove'"
	    " AND detail LIKE '%\"revoked\":1%'"), 1);
	/* Removed already, unknown, hostile: nothing to remove. */
	assert_int_equal(db_admin_remove(fx->db, "alice", 5, NOW + 20, &n, &TA_ADMIN_REMOVE),
	    MCA_ERR_NOT_FOUND);
	assert_int_equal(n, 0);
	assert_int_equal(db_admin_remove(fx->db, "x' OR 1=1 --", 5, NOW, NULL, &TA_ADMIN_REMOVE),
	    MCA_ERR_NOT_FOUND);
	assert_int_equal(db_admin_remove(fx->db, "root", 7, NOW, NULL, &TA_ADMIN_REMOVE),
	    MCA_ERR_INVALID);	/* RFC 5280 5.3.1: 7 is unused */
	assert_int_equal(db_admin_remove(fx->db, "alice2", 5, NOW, NULL, NULL), MCA_ERR_INVALID);
	assert_int_equal(status_of(fx->path, "b1"), 0);	/* rolled back with the missing entry */
	/* Reinstated under the same name: a new role, no removal, no certificate back. */
	assert_int_equal(db_admin_insert(fx->db, "alice", DB_ROLE_VIEWER, NOW + 30, NULL,
	    &TA_ADMIN_ADD), MCA_OK);
	assert_int_equal(db_admin_get(fx->db, "alice", &a), MCA_OK);
	assert_int_equal(a.removed_at, 0);
	assert_int_equal(a.role, DB_ROLE_VIEWER);
	assert_int_equal(a.created_at, NOW + 30);
	db_admin_clear(&a);
	assert_int_equal(status_of(fx->path, "a1"), 1);
}

static void
test_admin_last_admin_kept(void **state)
{
	struct fx *fx = *state;
	size_t n = 0;

	(void)add_admin(fx->db, "alice", DB_ROLE_ADMIN);
	(void)add_admin(fx->db, "carol", DB_ROLE_VIEWER);
	insert_admin_cert(fx->db, "a1", "spiffe://mesh.internal/meshca/admin/alice", DB_CERT_ADMIN,
	    NOW + 3600);
	mca_err_clear();
	assert_int_equal(db_admin_remove(fx->db, "alice", 5, NOW, &n, &TA_ADMIN_REMOVE),
	    MCA_ERR_CONFLICT);
	assert_non_null(strstr(mca_err_detail(), "last"));
	assert_int_equal(status_of(fx->path, "a1"), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM admins WHERE removed_at IS NOT NULL"), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE action = 'admin.remove'"), 0);
	/* A viewer is never the last admin. */
	assert_int_equal(db_admin_remove(fx->db, "carol", 5, NOW, &n, &TA_ADMIN_REMOVE), MCA_OK);
	(void)add_admin(fx->db, "bob", DB_ROLE_ADMIN);
	assert_int_equal(db_admin_remove(fx->db, "alice", 5, NOW, &n, &TA_ADMIN_REMOVE), MCA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(db_admin_remove(fx->db, "bob", 5, NOW, &n, &TA_ADMIN_REMOVE), MCA_ERR_CONFLICT);
	/* A removed admin does not count as the other one. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM admins WHERE removed_at IS NULL"), 1);
}

static void
test_admin_token_enroll(void **state)
{
	struct fx *fx = *state;
	struct db_audit issue = { "token:admin:alice", "cert.issue", "e1", true, NULL };
	unsigned char h[DB_TOKEN_HASH_LEN], hs[DB_TOKEN_HASH_LEN], hb[DB_TOKEN_HASH_LEN];
	struct db_cert c = cert_make("e1", 0, DB_CERT_ADMIN, NOW - 60, NOW + 3600);
	struct db_cert w = cert_make("e2", 0, DB_CERT_WORKLOAD, NOW - 60, NOW + 3600);
	int64_t alice, bob, svc, sid = -1, aid = -1;

	c.spiffe_id = (char *)"spiffe://mesh.internal/meshca/admin/alice";
	alice = add_admin(fx->db, "alice", DB_ROLE_VIEWER);
	bob = add_admin(fx->db, "bob", DB_ROLE_ADMIN);
	svc = add_service(fx->db, "payments");
	hash_fill(h, 0xa1);
	hash_fill(hs, 0x5e);
	hash_fill(hb, 0xb0);
	assert_int_equal(db_token_insert_admin(fx->db, alice, h, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_insert_admin(fx->db, bob, hb, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_insert(fx->db, svc, hs, NOW, NOW + 600, &TA), MCA_OK);
	assert_int_equal(db_token_insert_admin(fx->db, alice, h, NOW, NOW + 600, &TA), MCA_ERR_EXISTS);
	assert_int_equal(db_token_insert_admin(fx->db, 4242, hs, NOW, NOW + 600, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_token_insert_admin(fx->db, alice, hs, NOW, NOW, &TA), MCA_ERR_INVALID);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE detail LIKE '%token_id%'"), 3);
	/* Who a token is for. */
	assert_int_equal(db_token_lookup_owner(fx->db, h, NOW, &sid, &aid), MCA_OK);
	assert_int_equal(sid, 0);
	assert_int_equal(aid, alice);
	assert_int_equal(db_token_lookup_owner(fx->db, hs, NOW, &sid, &aid), MCA_OK);
	assert_int_equal(sid, svc);
	assert_int_equal(aid, 0);
	assert_int_equal(db_token_lookup_owner(fx->db, h, NOW + 600, &sid, &aid), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(aid, alice);	/* still named, to audit the attempt */
	assert_int_equal(db_token_lookup_owner(fx->db, hs, NOW + 600, &sid, &aid), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(aid, 0);
	/* A service-only lookup or enrollment never takes an admin's token. */
	assert_int_equal(db_token_lookup(fx->db, h, NOW, &sid), MCA_ERR_TOKEN_INVALID);
	/* Wrong kind, wrong admin, a service's token: refused, nothing written. */
	assert_int_equal(db_admin_enroll_commit(fx->db, h, NOW, alice, &w, &issue), MCA_ERR_INVALID);
	assert_int_equal(db_admin_enroll_commit(fx->db, h, NOW, bob, &c, &issue), MCA_ERR_TOKEN_INVALID);
	assert_int_equal(db_admin_enroll_commit(fx->db, hs, NOW, alice, &c, &issue), MCA_ERR_TOKEN_INVALID);
	assert_int_equal(cert_rows(fx->path), 0);
	/* The real thing: token consumed and certificate recorded together. */
	assert_int_equal(db_admin_enroll_commit(fx->db, h, NOW + 1, alice, &c, &issue), MCA_OK);
	assert_int_equal(raw_int(fx->path, "SELECT kind = 'admin' FROM certificates WHERE serial = 'e1'"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT used_at FROM tokens WHERE admin_id IS NOT NULL"
	    " AND used_at IS NOT NULL"), NOW + 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE action = 'token.consume'"
	    " AND subject = 'alice'"), 1);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM audit WHERE action = 'cert.issue'"
	    " AND subject = 'e1'"), 1);
	c.serial = (char *)"e3";
	assert_int_equal(db_admin_enroll_commit(fx->db, h, NOW + 2, alice, &c, &issue), MCA_ERR_TOKEN_USED);
	assert_int_equal(cert_rows(fx->path), 1);
	/* Removing bob ends his unused token: reinstating him must not revive it. */
	(void)add_admin(fx->db, "carol", DB_ROLE_ADMIN);
	assert_int_equal(db_admin_remove(fx->db, "bob", 5, NOW + 5, NULL, &TA_ADMIN_REMOVE), MCA_OK);
	assert_int_equal(db_token_lookup_owner(fx->db, hb, NOW + 6, &sid, &aid), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(db_token_insert_admin(fx->db, bob, hs, NOW, NOW + 600, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_admin_insert(fx->db, "bob", DB_ROLE_ADMIN, NOW + 7, NULL, &TA_ADMIN_ADD), MCA_OK);
	assert_int_equal(db_token_lookup_owner(fx->db, hb, NOW + 8, &sid, &aid), MCA_ERR_TOKEN_EXPIRED);
	c.serial = (char *)"e4";
	c.spiffe_id = (char *)"spiffe://mesh.internal/meshca/admin/bob";
	assert_int_equal(db_admin_enroll_commit(fx->db, hb, NOW + 8, bob, &c, &issue), MCA_ERR_TOKEN_EXPIRED);
	assert_int_equal(db_token_lookup_owner(fx->db, NULL, NOW, &sid, &aid), MCA_ERR_INVALID);
}

static void
test_counts(void **state)
{
	struct fx *fx = *state;
	struct db_counts k;
	int64_t a, b;

	assert_int_equal(db_counts(fx->db, NOW, 86400, &k), MCA_OK);
	assert_int_equal(k.services + k.certs_total + k.admins, 0);
	a = add_service(fx->db, "a");
	b = add_service(fx->db, "b");
	(void)add_admin(fx->db, "root", DB_ROLE_ADMIN);
	(void)add_admin(fx->db, "gone", DB_ROLE_VIEWER);
	assert_int_equal(db_admin_remove(fx->db, "gone", 5, NOW, NULL, &TA_ADMIN_REMOVE), MCA_OK);
	assert_int_equal(db_service_set_enabled(fx->db, "b", false, NOW, &TA), MCA_OK);
	insert_cert(fx->db, "01", a, DB_CERT_WORKLOAD, NOW + 2 * 86400, NOW);	/* live */
	insert_cert(fx->db, "02", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);	/* live, expiring */
	insert_cert(fx->db, "03", b, DB_CERT_WORKLOAD, NOW + 86400, NOW);	/* expiring (edge) */
	insert_cert(fx->db, "04", b, DB_CERT_WORKLOAD, NOW, NOW);		/* expired */
	insert_cert(fx->db, "05", 0, DB_CERT_SERVER, NOW + 90 * 86400, NOW);	/* live */
	insert_cert(fx->db, "06", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);	/* revoked, unexpired */
	insert_cert(fx->db, "07", a, DB_CERT_WORKLOAD, NOW + 10, NOW);	/* revoked, then expired */
	assert_int_equal(db_cert_revoke(fx->db, "06", 1, NOW - 5, NULL, &TA), MCA_OK);
	assert_int_equal(db_cert_revoke(fx->db, "07", 1, NOW - 5, NULL, &TA), MCA_OK);
	assert_int_equal(db_counts(fx->db, NOW + 60, 86400, &k), MCA_OK);
	assert_int_equal(k.services, 2);
	assert_int_equal(k.services_enabled, 1);
	assert_int_equal(k.admins, 1);
	assert_int_equal(k.certs_live, 4);		/* 01 02 03 05 */
	assert_int_equal(k.certs_expiring, 2);		/* 02 03 */
	assert_int_equal(k.certs_revoked, 2);
	assert_int_equal(k.certs_revoked_unexpired, 1);
	assert_int_equal(k.certs_total, 7);
	assert_int_equal(db_counts(fx->db, NOW, -1, &k), MCA_ERR_INVALID);
	assert_int_equal(db_counts(fx->db, INT64_MAX, 1, &k), MCA_ERR_INVALID);
	assert_int_equal(db_counts(NULL, NOW, 1, &k), MCA_ERR_INVALID);
	assert_int_equal(db_counts(fx->db, NOW, 1, NULL), MCA_ERR_INVALID);
}

/* db_counts' totals against count(*) over the table itself. */
static void
assert_totals_exact(struct fx *fx)
{
	struct db_counts k;

	assert_int_equal(db_counts(fx->db, NOW, 86400, &k), MCA_OK);
	assert_int_equal(k.certs_total, cert_rows(fx->path));
	assert_int_equal(k.certs_revoked, raw_int(fx->path,
	    "SELECT count(*) FROM certificates WHERE status = 'revoked'"));
}

/* The totals are kept by triggers (schema v7): every way a certificate
 * is written, revoked or refused leaves them equal to a count. */
static void
test_counts_follow_every_write(void **state)
{
	struct fx *fx = *state;
	struct db_cert c;
	int64_t a, b;
	size_t n;

	a = add_service(fx->db, "a");
	b = add_service(fx->db, "b");
	(void)add_admin(fx->db, "root", DB_ROLE_ADMIN);
	(void)add_admin(fx->db, "bob", DB_ROLE_ADMIN);
	assert_totals_exact(fx);
	insert_cert(fx->db, "01", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "02", a, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "03", b, DB_CERT_WORKLOAD, NOW + 3600, NOW);
	insert_cert(fx->db, "04", b, DB_CERT_WORKLOAD, NOW - 10, NOW);	/* expired */
	c = cert_make("05", 0, DB_CERT_ADMIN, NOW - 60, NOW + 3600);
	c.spiffe_id = (char *)"spiffe://mesh.internal/meshca/admin/bob";
	assert_int_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_OK);
	assert_totals_exact(fx);
	/* A serial taken: the insert is refused and counts nothing. */
	c = cert_make("01", a, DB_CERT_WORKLOAD, NOW - 60, NOW + 3600);
	assert_int_not_equal(db_cert_insert(fx->db, &c, NOW, &TA), MCA_OK);
	assert_int_equal(cert_rows(fx->path), 5);
	assert_totals_exact(fx);
	/* One serial, revoked twice: counted once. */
	assert_int_equal(db_cert_revoke(fx->db, "01", 1, NOW, NULL, &TA), MCA_OK);
	assert_int_equal(db_cert_revoke(fx->db, "01", 4, NOW + 1, NULL, &TA), MCA_OK);
	assert_totals_exact(fx);
	/* Disabling b revokes 03, not the expired 04; removing bob revokes 05. */
	assert_int_equal(db_service_disable_revoke(fx->db, "b", 5, NOW + 2, &n, &TA), MCA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(db_admin_remove(fx->db, "bob", 5, NOW + 3, &n, &TA_ADMIN_REMOVE), MCA_OK);
	assert_int_equal(n, 1);
	assert_totals_exact(fx);
	assert_int_equal(raw_int(fx->path, "SELECT revoked FROM certificate_counts"), 3);
	/* Written around meshcad (sqlite3 by hand): the triggers count it too. */
	assert_int_equal(raw_exec(fx->path, "UPDATE certificates SET status = 'active',"
	    " revoked_at = NULL, revocation_reason = NULL WHERE serial = '03';"
	    "DELETE FROM certificates WHERE serial = '04'"), SQLITE_OK);
	assert_totals_exact(fx);
	assert_int_equal(raw_int(fx->path, "SELECT total FROM certificate_counts"), 4);
	/* The row itself cannot go, nor a count go below zero. */
	assert_int_not_equal(raw_exec(fx->path, "DELETE FROM certificate_counts"), SQLITE_OK);
	assert_int_not_equal(raw_exec(fx->path, "UPDATE certificate_counts SET total = -1"),
	    SQLITE_OK);
	assert_totals_exact(fx);
}

/* v6 -> v7 counts what is there once, then the triggers take over. */
static void
test_migrate_v6_to_v7(void **state)
{
	struct fx *fx = *state;
	char check[64];
	int64_t pay, web;

	pay = add_service(fx->db, "payments");
	web = add_service(fx->db, "web");
	cert_fixture(fx->db, pay, web);
	assert_int_equal(db_cert_revoke(fx->db, "b1", 4, NOW + 5, NULL, &TA), MCA_OK);
	db_close(fx->db);
	fx->db = NULL;
	assert_int_equal(raw_exec(fx->path, v7_to_v6), SQLITE_OK);
	/* Rows a v6 meshcad wrote after the file left this program. */
	assert_int_equal(raw_exec(fx->path, "INSERT INTO certificates (serial, kind, not_before,"
	    " not_after, der, status, revoked_at, revocation_reason, created_at) VALUES"
	    " ('e1', 'server', 0, 1, x'30', 'revoked', 1, 1, 1),"
	    " ('e2', 'server', 0, 1, x'30', 'active', NULL, NULL, 1)"), SQLITE_OK);

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), DB_SCHEMA_VERSION);
	raw_text(fx->path, "PRAGMA integrity_check", check, sizeof(check));
	assert_string_equal(check, "ok");
	assert_int_equal(raw_int(fx->path, "SELECT total FROM certificate_counts"), 7);
	assert_int_equal(raw_int(fx->path, "SELECT revoked FROM certificate_counts"), 2);
	assert_totals_exact(fx);
	insert_cert(fx->db, "f1", web, DB_CERT_WORKLOAD, NOW + 1000, NOW + 6);
	assert_int_equal(db_cert_revoke(fx->db, "a1", 1, NOW + 7, NULL, &TA), MCA_OK);
	assert_totals_exact(fx);
	assert_int_equal(raw_int(fx->path, "SELECT total FROM certificate_counts"), 8);
	assert_int_equal(raw_int(fx->path, "SELECT revoked FROM certificate_counts"), 3);
}

/* ---- audit (issue 5) ------------------------------------------------------ */

static int64_t
audit_rows(const char *path)
{
	return raw_int(path, "SELECT count(*) FROM audit");
}

/* The action of entry seq, from the file. */
static void
audit_action(const char *path, int64_t seq, char *out, size_t n)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT action || '/' || outcome FROM audit WHERE seq = %lld",
	    (long long)seq);
	raw_text(path, sql, out, n);
}

static void
audit_detail(const char *path, int64_t seq, char *out, size_t n)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT detail FROM audit WHERE seq = %lld", (long long)seq);
	raw_text(path, sql, out, n);
}

static void
put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

/* The encoding documented in db.h, written out by hand: a known answer
 * that pins the format the CLI and third parties recompute. */
static void
test_audit_hash_encoding(void **state)
{
	unsigned char buf[256], want[32], got[32];
	struct db_audit_entry e;
	size_t n = 0;

	(void)state;
	memset(&e, 0, sizeof(e));
	memset(e.prev_hash, 0xab, sizeof(e.prev_hash));
	e.seq = 7;
	e.at = NOW;
	e.actor = (char *)"ad";
	e.action = (char *)"x.y";
	e.subject = NULL;
	e.ok = false;
	e.detail = (char *)"{}";
	memcpy(buf, e.prev_hash, 32);
	n = 32;
	put_be(buf + n, 7, 8);
	n += 8;
	put_be(buf + n, (uint64_t)NOW, 8);
	n += 8;
	put_be(buf + n, 2, 4);
	memcpy(buf + n + 4, "ad", 2);
	n += 6;
	put_be(buf + n, 3, 4);
	memcpy(buf + n + 4, "x.y", 3);
	n += 7;
	buf[n++] = 0x00;			/* subject absent */
	buf[n++] = 0x00;			/* failure */
	buf[n++] = 0x01;			/* detail present */
	put_be(buf + n, 2, 4);
	memcpy(buf + n + 4, "{}", 2);
	n += 6;
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, n, want), 0);
	assert_int_equal(db_audit_entry_hash(&e, got), MCA_OK);
	assert_memory_equal(got, want, 32);
	/* An empty subject is not an absent one. */
	e.subject = (char *)"";
	assert_int_equal(db_audit_entry_hash(&e, got), MCA_OK);
	assert_memory_not_equal(got, want, 32);
}

/* Entries in order, linked, each hash recomputable from its content. */
static void
test_audit_chain(void **state)
{
	struct fx *fx = *state;
	struct db_audit_entry *list = NULL;
	struct db_audit a = { "spiffe://mesh.internal/meshca/admin/ann", "service.add", "p", true,
	    "{\"k\":1}" };
	unsigned char zero[32] = { 0 }, h[32], head[32];
	struct db_audit_walk w;
	int64_t head_seq;
	size_t n = 0;

	assert_int_equal(db_audit_head(fx->db, &head_seq, head), MCA_OK);
	assert_int_equal(head_seq, 0);
	assert_memory_equal(head, zero, 32);
	for (int i = 0; i < 5; i++)
		assert_int_equal(db_audit_append(fx->db, &a, NOW + i), MCA_OK);
	assert_int_equal(db_audit_list(fx->db, NULL, &list, &n), MCA_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(list[0].prev_hash, zero, 32);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(list[i].seq, (int64_t)i + 1);
		assert_int_equal(list[i].at, NOW + (int64_t)i);
		assert_string_equal(list[i].actor, a.actor);
		assert_string_equal(list[i].detail, "{\"k\":1}");
		assert_true(list[i].ok);
		assert_int_equal(db_audit_entry_hash(&list[i], h), MCA_OK);
		assert_memory_equal(h, list[i].hash, 32);
		if (i > 0)
			assert_memory_equal(list[i].prev_hash, list[i - 1].hash, 32);
	}
	assert_int_equal(db_audit_head(fx->db, &head_seq, head), MCA_OK);
	assert_int_equal(head_seq, 5);
	assert_memory_equal(head, list[4].hash, 32);
	db_audit_list_free(list, n);
	/* Filters: after, since, limit. */
	assert_int_equal(db_audit_list(fx->db, &(struct db_audit_filter){ .after = 3 }, &list, &n), MCA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].seq, 4);
	db_audit_list_free(list, n);
	assert_int_equal(db_audit_list(fx->db, &(struct db_audit_filter){ .since = NOW + 1, .limit = 2 },
	    &list, &n), MCA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].seq, 2);
	db_audit_list_free(list, n);
	db_audit_walk_init(&w);
	assert_int_equal(db_audit_verify(fx->db, &w), MCA_OK);
	assert_int_equal(w.why, DB_AUDIT_INTACT);
	assert_int_equal(w.count, 5);
	assert_int_equal(w.seq, 5);
}

/* Every write function leaves exactly its entries, with what db/ adds. */
static void
test_audit_every_write(void **state)
{
	struct fx *fx = *state;
	struct db_audit a = { "actor", "act", "subj", true, NULL };
	unsigned char h[DB_TOKEN_HASH_LEN];
	struct db_cert c;
	char text[512];
	int64_t sid, before;
	size_t nrev = 0;
	bool newly;

	a.action = "service.add";
	sid = add_service(fx->db, "payments");	/* TA: one entry */
	assert_int_equal(audit_rows(fx->path), 1);
	audit_action(fx->path, 1, text, sizeof(text));
	assert_string_equal(text, "test.write/success");
	hash_fill(h, 9);
	a.action = "token.mint";
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &a), MCA_OK);
	assert_int_equal(audit_rows(fx->path), 2);
	audit_detail(fx->path, 2, text, sizeof(text));
	assert_non_null(strstr(text, "\"token_id\":"));
	assert_non_null(strstr(text, "\"expires_at\":1700000600"));
	/* Enrollment: token.consume then the caller's cert.issue. */
	c = cert_make("e1", sid, DB_CERT_WORKLOAD, NOW - 60, NOW + 3600);
	a.action = "cert.issue";
	a.subject = "e1";
	a.detail = "{\"service\":\"payments\"}";
	assert_int_equal(db_enroll_commit(fx->db, h, NOW + 1, &c, &a), MCA_OK);
	assert_int_equal(audit_rows(fx->path), 4);
	audit_action(fx->path, 3, text, sizeof(text));
	assert_string_equal(text, "token.consume/success");
	raw_text(fx->path, "SELECT subject FROM audit WHERE seq = 3", text, sizeof(text));
	assert_string_equal(text, "payments");
	audit_action(fx->path, 4, text, sizeof(text));
	assert_string_equal(text, "cert.issue/success");
	/* Renewal. */
	c = cert_make("e2", sid, DB_CERT_WORKLOAD, NOW - 60, NOW + 3600);
	c.renewed_from = (char *)"e1";
	a.action = "cert.renew";
	a.subject = "e2";
	assert_int_equal(db_cert_insert(fx->db, &c, NOW + 2, &a), MCA_OK);
	assert_int_equal(audit_rows(fx->path), 5);
	/* Revocation: once; a repeat records nothing. */
	a.action = "cert.revoke";
	a.subject = "e1";
	a.detail = NULL;
	assert_int_equal(db_cert_revoke(fx->db, "e1", 1, NOW + 3, &newly, &a), MCA_OK);
	assert_true(newly);
	assert_int_equal(audit_rows(fx->path), 6);
	assert_int_equal(db_cert_revoke(fx->db, "e1", 1, NOW + 4, &newly, &a), MCA_OK);
	assert_false(newly);
	assert_int_equal(audit_rows(fx->path), 6);
	/* Disable with revocation: the count and reason are added. */
	a.action = "service.disable";
	a.subject = "payments";
	a.detail = "{\"by\":\"test\"}";
	assert_int_equal(db_service_disable_revoke(fx->db, "payments", 5, NOW + 5, &nrev, &a), MCA_OK);
	assert_int_equal(nrev, 1);
	assert_int_equal(audit_rows(fx->path), 7);
	audit_detail(fx->path, 7, text, sizeof(text));
	assert_string_equal(text, "{\"by\":\"test\",\"revoked\":1,\"reason\":5}");
	a.action = "service.enable";
	a.detail = NULL;
	assert_int_equal(db_service_set_enabled(fx->db, "payments", true, NOW + 6, &a), MCA_OK);
	assert_int_equal(audit_rows(fx->path), 8);
	a.action = "service.disable";
	assert_int_equal(db_service_disable_revoke(fx->db, "payments", 5, NOW + 7, &nrev, &a), MCA_OK);
	audit_detail(fx->path, 9, text, sizeof(text));
	assert_string_equal(text, "{\"revoked\":0,\"reason\":5}");
	/* A refusal, in its own transaction. */
	before = audit_rows(fx->path);
	a.ok = false;
	a.action = "cert.issue";
	a.detail = "{\"error\":\"san_not_allowed\"}";
	assert_int_equal(db_audit_append(fx->db, &a, NOW + 8), MCA_OK);
	assert_int_equal(audit_rows(fx->path), before + 1);
	audit_action(fx->path, before + 1, text, sizeof(text));
	assert_string_equal(text, "cert.issue/failure");
}

/* A write that fails leaves no entry; an entry that cannot be written
 * undoes the write. */
static void
test_audit_rollback(void **state)
{
	struct fx *fx = *state;
	unsigned char h[DB_TOKEN_HASH_LEN], other[DB_TOKEN_HASH_LEN];
	struct db_audit bad = { "actor", "x", NULL, true, "not json" };
	struct db_cert c;
	struct db_service s;
	int64_t sid, before;
	char big[DB_AUDIT_DETAIL_MAX + 8];

	sid = add_service(fx->db, "payments");
	before = audit_rows(fx->path);
	memset(&s, 0, sizeof(s));
	s.name = (char *)"payments";
	s.spiffe_id = (char *)"spiffe://mesh.internal/svc/other";
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &TA), MCA_ERR_EXISTS);
	hash_fill(h, 3);
	hash_fill(other, 4);
	assert_int_equal(db_token_insert(fx->db, sid, h, NOW, NOW + 600, &TA), MCA_OK);
	before++;
	c = cert_make("f1", sid, DB_CERT_WORKLOAD, NOW - 60, NOW + 3600);
	assert_int_equal(db_enroll_commit(fx->db, other, NOW, &c, &TA), MCA_ERR_TOKEN_INVALID);
	assert_int_equal(db_cert_revoke(fx->db, "abcd", 1, NOW, NULL, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(db_service_set_enabled(fx->db, "nope", false, NOW, &TA), MCA_ERR_NOT_FOUND);
	assert_int_equal(audit_rows(fx->path), before);
	/* No audit, or an audit db/ refuses: the change does not happen. */
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, NULL), MCA_ERR_INVALID);
	assert_int_equal(db_enroll_commit(fx->db, h, NOW, &c, &bad), MCA_ERR_INVALID);
	assert_int_equal(cert_rows(fx->path), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM tokens WHERE used_at IS NOT NULL"), 0);
	s.spiffe_id = (char *)"spiffe://mesh.internal/svc/new";
	s.name = (char *)"new";
	assert_int_equal(db_service_insert(fx->db, &s, NOW, NULL), MCA_ERR_INVALID);
	memset(big, 'a', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	bad.detail = big;
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &bad), MCA_ERR_INVALID);
	bad.detail = NULL;
	bad.actor = "";
	assert_int_equal(db_service_insert(fx->db, &s, NOW, &bad), MCA_ERR_INVALID);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM services WHERE name = 'new'"), 0);
	assert_int_equal(db_audit_append(fx->db, NULL, NOW), MCA_ERR_INVALID);
	assert_int_equal(audit_rows(fx->path), before);
	/* The table itself refuses changes while its triggers stand. */
	assert_int_not_equal(raw_exec(fx->path, "UPDATE audit SET actor = 'x'"), SQLITE_OK);
	assert_int_not_equal(raw_exec(fx->path, "DELETE FROM audit"), SQLITE_OK);
	assert_int_equal(audit_rows(fx->path), before);
}

/* Ten entries, then the attacker's edit (triggers dropped, as anyone
 * with the file can), then the walk's verdict. */
static void
tamper_check(struct fx *fx, const char *sql, enum db_audit_break why, int64_t seq)
{
	struct db_audit a = { "actor", "act", "s", true, NULL };
	struct db_audit_walk w;
	char script[512];

	for (int i = 0; i < 10; i++)
		assert_int_equal(db_audit_append(fx->db, &a, NOW + i), MCA_OK);
	db_close(fx->db);
	fx->db = NULL;
	snprintf(script, sizeof(script), "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; %s",
	    sql);
	assert_int_equal(raw_exec(fx->path, script), SQLITE_OK);
	assert_int_equal(db_open_readonly(fx->path, &fx->db), MCA_OK);
	db_audit_walk_init(&w);
	assert_int_equal(db_audit_verify(fx->db, &w), MCA_OK);
	assert_int_equal(w.why, why);
	assert_int_equal(w.broken_seq, seq);
}

static void
test_audit_tamper_edit(void **state)
{
	tamper_check(*state, "UPDATE audit SET actor = 'someone else' WHERE seq = 4",
	    DB_AUDIT_HASH_MISMATCH, 4);
}

static void
test_audit_tamper_outcome(void **state)
{
	tamper_check(*state, "UPDATE audit SET outcome = 'failure' WHERE seq = 9",
	    DB_AUDIT_HASH_MISMATCH, 9);
}

static void
test_audit_tamper_delete(void **state)
{
	struct fx *fx = *state;

	tamper_check(fx, "DELETE FROM audit WHERE seq = 6", DB_AUDIT_SEQ_GAP, 7);
	{
		struct db_audit_walk w;

		db_audit_walk_init(&w);
		assert_int_equal(db_audit_verify(fx->db, &w), MCA_OK);
		assert_int_equal(w.expected_seq, 6);
	}
}

static void
test_audit_tamper_delete_first(void **state)
{
	tamper_check(*state, "DELETE FROM audit WHERE seq = 1", DB_AUDIT_SEQ_GAP, 2);
}

/* Rows renumbered to close the gap of a deletion: the link breaks. */
static void
test_audit_tamper_delete_renumber(void **state)
{
	tamper_check(*state, "DELETE FROM audit WHERE seq = 6;"
	    " UPDATE audit SET seq = seq - 1 WHERE seq > 6", DB_AUDIT_HASH_MISMATCH, 6);
}

/* Two rows swap places (their seq exchanged). */
static void
test_audit_tamper_reorder(void **state)
{
	tamper_check(*state, "UPDATE audit SET seq = 1000 WHERE seq = 3;"
	    " UPDATE audit SET seq = 3 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 1000",
	    DB_AUDIT_HASH_MISMATCH, 3);
}

/* A row replaced by a copy of another (content, hashes and all): the
 * hash covers seq, so the copy does not fit its place.  (A rewritten row
 * whose hash was recomputed breaks the next link: test_audit_walk_entries.) */
static void
test_audit_tamper_relink(void **state)
{
	tamper_check(*state, "UPDATE audit SET prev_hash = (SELECT prev_hash FROM audit WHERE seq = 2),"
	    " hash = (SELECT hash FROM audit WHERE seq = 2), at = (SELECT at FROM audit WHERE seq = 2)"
	    " WHERE seq = 5", DB_AUDIT_HASH_MISMATCH, 5);
}

static void
checkpoint_fill(struct db_audit_checkpoint *cp, int64_t seq, const unsigned char h[32])
{
	static unsigned char sig[] = { 1, 2, 3 }, signer[] = { 0x30, 0x00 };

	memset(cp, 0, sizeof(*cp));
	cp->seq = seq;
	memcpy(cp->head_hash, h, 32);
	cp->at = NOW + 100;
	cp->signature = sig;
	cp->signature_len = sizeof(sig);
	cp->signer = signer;
	cp->signer_len = sizeof(signer);
}

static void
test_audit_checkpoints(void **state)
{
	struct fx *fx = *state;
	struct db_audit a = { "actor", "act", NULL, true, NULL };
	struct db_audit_checkpoint cp, got;
	unsigned char head[32], wrong[32], tbs[DB_AUDIT_TBS_LEN];
	int64_t seq;

	assert_int_equal(db_audit_checkpoint_latest(fx->db, &got), MCA_ERR_NOT_FOUND);
	for (int i = 0; i < 3; i++)
		assert_int_equal(db_audit_append(fx->db, &a, NOW), MCA_OK);
	assert_int_equal(db_audit_head(fx->db, &seq, head), MCA_OK);
	checkpoint_fill(&cp, seq, head);
	assert_int_equal(db_audit_checkpoint_insert(fx->db, &cp), MCA_OK);
	assert_int_equal(db_audit_checkpoint_insert(fx->db, &cp), MCA_ERR_EXISTS);
	memset(wrong, 7, sizeof(wrong));
	checkpoint_fill(&cp, 2, wrong);		/* not the hash of entry 2 */
	assert_int_equal(db_audit_checkpoint_insert(fx->db, &cp), MCA_ERR_INVALID);
	checkpoint_fill(&cp, 9, head);		/* no entry 9 */
	assert_int_equal(db_audit_checkpoint_insert(fx->db, &cp), MCA_ERR_INVALID);
	assert_int_equal(db_audit_checkpoint_latest(fx->db, &got), MCA_OK);
	assert_int_equal(got.seq, 3);
	assert_memory_equal(got.head_hash, head, 32);
	assert_int_equal(got.at, NOW + 100);
	assert_int_equal(got.signature_len, 3);
	assert_int_equal(got.signer_len, 2);
	/* The signed bytes: label, seq, head, time. */
	db_audit_checkpoint_tbs(&got, tbs);
	assert_memory_equal(tbs, "meshca-audit-checkpoint-v1", 26);
	assert_int_equal(tbs[26 + 7], 3);
	assert_memory_equal(tbs + 34, head, 32);
	db_audit_checkpoint_clear(&got);
	assert_int_equal(db_audit_checkpoint_get(fx->db, 3, &got), MCA_OK);
	db_audit_checkpoint_clear(&got);
	assert_int_equal(db_audit_checkpoint_get(fx->db, 2, &got), MCA_ERR_NOT_FOUND);
}

/* Cutting off the newest rows leaves a consistent chain: only the
 * checkpoint tells. */
static void
test_audit_truncation_after_checkpoint(void **state)
{
	struct fx *fx = *state;
	struct db_audit a = { "actor", "act", NULL, true, NULL };
	struct db_audit_checkpoint cp;
	struct db_audit_walk w;
	unsigned char head[32];
	int64_t seq;

	for (int i = 0; i < 6; i++)
		assert_int_equal(db_audit_append(fx->db, &a, NOW), MCA_OK);
	assert_int_equal(db_audit_head(fx->db, &seq, head), MCA_OK);
	checkpoint_fill(&cp, seq, head);
	assert_int_equal(db_audit_checkpoint_insert(fx->db, &cp), MCA_OK);
	db_audit_walk_init(&w);
	w.mark_seq = 6;
	assert_int_equal(db_audit_verify(fx->db, &w), MCA_OK);
	assert_true(w.mark_found);
	assert_memory_equal(w.mark_hash, head, 32);
	db_close(fx->db);
	fx->db = NULL;
	assert_int_equal(raw_exec(fx->path, "DROP TRIGGER audit_no_delete;"
	    " DELETE FROM audit WHERE seq >= 5"), SQLITE_OK);
	assert_int_equal(db_open_readonly(fx->path, &fx->db), MCA_OK);
	db_audit_walk_init(&w);
	w.mark_seq = 6;
	assert_int_equal(db_audit_verify(fx->db, &w), MCA_OK);
	assert_int_equal(w.why, DB_AUDIT_INTACT);	/* the chain alone looks fine */
	assert_int_equal(w.seq, 4);
	assert_false(w.mark_found);			/* but the checkpoint's seq is gone */
}

/* The walk over entries given one by one, as the CLI feeds it from the API. */
static void
test_audit_walk_entries(void **state)
{
	struct db_audit_entry e[3];
	struct db_audit_walk w;
	unsigned char zero[32] = { 0 };

	(void)state;
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 3; i++) {
		e[i].seq = i + 1;
		e[i].at = NOW;
		e[i].actor = (char *)"a";
		e[i].action = (char *)"b";
		e[i].ok = true;
		memcpy(e[i].prev_hash, i == 0 ? zero : e[i - 1].hash, 32);
		assert_int_equal(db_audit_entry_hash(&e[i], e[i].hash), MCA_OK);
	}
	db_audit_walk_init(&w);
	for (int i = 0; i < 3; i++)
		assert_int_equal(db_audit_walk_step(&w, &e[i]), MCA_OK);
	assert_int_equal(w.count, 3);
	/* A wrong link with a correct own hash: broken link. */
	memset(e[1].prev_hash, 1, 32);
	assert_int_equal(db_audit_entry_hash(&e[1], e[1].hash), MCA_OK);
	db_audit_walk_init(&w);
	assert_int_equal(db_audit_walk_step(&w, &e[0]), MCA_OK);
	assert_int_equal(db_audit_walk_step(&w, &e[1]), MCA_ERR_PARSE);
	assert_int_equal(w.why, DB_AUDIT_BROKEN_LINK);
	assert_int_equal(w.broken_seq, 2);
	assert_int_equal(db_audit_walk_step(&w, &e[2]), MCA_ERR_PARSE);	/* stays broken */
	assert_int_equal(w.broken_seq, 2);
	assert_string_equal(db_audit_break_name(DB_AUDIT_SEQ_GAP), "gap in seq");
}

/* Read-only: no writes, no file creation, no migration. */
static void
test_audit_open_readonly(void **state)
{
	struct fx *fx = *state;
	struct db_audit a = { "actor", "act", NULL, true, NULL };
	struct db *ro = NULL;
	char missing[PATH_MAX + 16];

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_int_equal(db_audit_append(fx->db, &a, NOW), MCA_OK);
	assert_int_equal(db_open_readonly(fx->path, &ro), MCA_OK);
	assert_int_not_equal(db_audit_append(ro, &a, NOW), MCA_OK);
	assert_int_equal(audit_rows(fx->path), 1);
	db_close(ro);
	snprintf(missing, sizeof(missing), "%s/none.db", fx->dir);
	assert_int_not_equal(db_open_readonly(missing, &ro), MCA_OK);
	assert_null(ro);
	assert_int_equal(access(missing, F_OK), -1);
	assert_int_equal(raw_exec(fx->path, "PRAGMA user_version = 3"), SQLITE_OK);
	assert_int_equal(db_open_readonly(fx->path, &ro), MCA_ERR_DB_SCHEMA);
}

/* Issue 7: a database that cannot record gives MCA_ERR_DB_UNAVAILABLE
 * with its kind; db_writable reports it and probes its way back. */
static void
test_fault_readonly_and_locked(void **state)
{
	struct fx *fx = *state;
	struct db_audit a = { "actor", "act", NULL, true, NULL };
	struct db *ro = NULL;
	sqlite3 *other = NULL;
	enum db_fault f;
	uint64_t ro_before = db_fault_count(DB_FAULT_READONLY);
	uint64_t lk_before = db_fault_count(DB_FAULT_LOCKED);

	assert_int_equal(db_open(fx->path, &fx->db), MCA_OK);
	assert_true(db_writable(fx->db, &f));
	assert_int_equal(f, DB_FAULT_NONE);
	/* A read-only handle: SQLITE_READONLY. */
	assert_int_equal(db_open_readonly(fx->path, &ro), MCA_OK);
	assert_int_equal(db_audit_append(ro, &a, NOW), MCA_ERR_DB_UNAVAILABLE);
	assert_int_equal(db_fault_last(), DB_FAULT_READONLY);
	assert_non_null(strstr(mca_err_detail(), "read-only"));
	assert_false(db_writable(ro, &f));
	assert_int_equal(f, DB_FAULT_READONLY);
	assert_true(db_fault_count(DB_FAULT_READONLY) > ro_before);
	db_close(ro);
	/* Another connection holds the write lock past the busy timeout. */
	assert_int_equal(sqlite3_open(fx->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(db_audit_append(fx->db, &a, NOW), MCA_ERR_DB_UNAVAILABLE);
	assert_int_equal(db_fault_last(), DB_FAULT_LOCKED);
	assert_int_equal(db_fault_count(DB_FAULT_LOCKED), lk_before + 1);
	assert_false(db_writable(fx->db, &f));
	assert_int_equal(f, DB_FAULT_LOCKED);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	/* Within the probe interval the answer stays; after it, the probe
	 * writes and readiness is back without any client write. */
	sleep(1);
	assert_true(db_writable(fx->db, &f));
	assert_int_equal(f, DB_FAULT_NONE);
	assert_int_equal(db_audit_append(fx->db, &a, NOW), MCA_OK);
	assert_string_equal(db_fault_name(DB_FAULT_FULL), "full");
	assert_string_equal(db_fault_text(DB_FAULT_FULL), "disk full");
	assert_string_equal(db_fault_name(DB_FAULT_MAX), "other");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fault_readonly_and_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_foreign_keys_on, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_open_reopen_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_one_past_current_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_version0_migrates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_failed_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_append_only, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_roundtrip, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_update, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_empty_lists_and_disabled, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_list_ordered, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_duplicate_and_missing, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_sql_metacharacters, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_hostile_fields, setup_open, teardown),
		cmocka_unit_test(test_service_clear_partial),
		cmocka_unit_test_setup_teardown(test_token_lifecycle, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_token_expired, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_token_unknown, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_token_other_service_refused, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_token_insert_hostile, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_rolls_back_on_cert_error, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_race_separate_connections, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_race_shared_handle, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_race_first_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_roundtrip, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_derived_expired, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_serial_collision, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_hostile, setup_open, teardown),
		cmocka_unit_test(test_cert_names),
		cmocka_unit_test_setup_teardown(test_cert_list_filters, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_list_status_in_rows, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_list_hostile_filter, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_list_limits, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_list_plans, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cert_list_plan_hostile, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_plans, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_idempotent, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_not_found_and_hostile, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_enable_disable, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_disable_revoke, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_service_disable_revoke_atomic, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_revoked_live_excludes_expired, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_crl_insert_latest, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1_to_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v2_failure_keeps_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v5_to_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v6_to_v7, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_admin_insert_get_list, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_admin_remove_revokes, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_admin_last_admin_kept, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_admin_token_enroll, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_counts, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_counts_follow_every_write, setup_open, teardown),
		cmocka_unit_test(test_audit_hash_encoding),
		cmocka_unit_test_setup_teardown(test_audit_chain, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_every_write, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_rollback, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_edit, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_outcome, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_delete, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_delete_first, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_delete_renumber, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_reorder, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_relink, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_checkpoints, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_audit_truncation_after_checkpoint, setup_open, teardown),
		cmocka_unit_test(test_audit_walk_entries),
		cmocka_unit_test_setup_teardown(test_audit_open_readonly, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
