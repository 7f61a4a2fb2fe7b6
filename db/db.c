/*
 * Opening the database: file creation (0600), connection settings,
 * forward-only migrations, and the helpers the other db/ files share.
 */
#include "db/db_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DB_BUSY_TIMEOUT_MS	5000

/*
 * Schema version 1.  Times are Unix seconds (INTEGER).  Lists of names
 * are newline-joined text ("" for none).  CHECK constraints repeat the
 * invariants the C code enforces, so a bug or a hand edit cannot store
 * what the code would never read back.
 */
static const char schema_v1[] =
	"CREATE TABLE services ("
	" id          INTEGER PRIMARY KEY,"
	" name        TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
	" spiffe_id   TEXT NOT NULL UNIQUE CHECK (length(spiffe_id) > 0),"
	" dns_names   TEXT NOT NULL DEFAULT '',"
	" ip_ranges   TEXT NOT NULL DEFAULT '',"
	" default_ttl INTEGER NOT NULL CHECK (default_ttl >= 0),"
	" max_ttl     INTEGER NOT NULL CHECK (max_ttl >= 0),"
	" key_types   INTEGER NOT NULL CHECK (key_types BETWEEN 0 AND 4294967295),"
	" enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),"
	" created_at  INTEGER NOT NULL,"
	" updated_at  INTEGER NOT NULL"
	");"
	/* Tokens are kept by their SHA-256 only; the token itself is never stored. */
	"CREATE TABLE tokens ("
	" id          INTEGER PRIMARY KEY,"
	" service_id  INTEGER NOT NULL REFERENCES services(id),"
	" hash        BLOB NOT NULL UNIQUE"
	"             CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
	" created_at  INTEGER NOT NULL,"
	" expires_at  INTEGER NOT NULL,"
	" used_at     INTEGER"
	");"
	"CREATE INDEX tokens_service ON tokens(service_id);"
	"CREATE TABLE certificates ("
	" serial       TEXT PRIMARY KEY"
	"              CHECK (length(serial) BETWEEN 1 AND 64 AND serial NOT GLOB '*[^0-9a-f]*'),"
	" service_id   INTEGER REFERENCES services(id),"
	" kind         TEXT NOT NULL CHECK (kind IN ('workload', 'admin', 'server')),"
	" spiffe_id    TEXT,"
	" dns_names    TEXT NOT NULL DEFAULT '',"
	" ip_addresses TEXT NOT NULL DEFAULT '',"
	" not_before   INTEGER NOT NULL,"
	" not_after    INTEGER NOT NULL CHECK (not_after >= not_before),"
	" der          BLOB NOT NULL CHECK (typeof(der) = 'blob' AND length(der) > 0),"
	" status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),"
	" revoked_at   INTEGER,"
	/* RFC 5280 5.3.1 CRLReason code. */
	" revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 10),"
	" renewed_from TEXT REFERENCES certificates(serial),"
	" created_at   INTEGER NOT NULL,"
	" CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))"
	");"
	"CREATE INDEX certificates_service ON certificates(service_id);"
	"CREATE INDEX certificates_status ON certificates(status, not_after);"
	"CREATE INDEX certificates_spiffe ON certificates(spiffe_id);"
	"CREATE INDEX certificates_created ON certificates(created_at, serial);"
	/* Append-only by trigger; written by a later issue (hash chain then). */
	"CREATE TABLE audit ("
	" id      INTEGER PRIMARY KEY,"
	" at      INTEGER NOT NULL,"
	" actor   TEXT NOT NULL,"
	" action  TEXT NOT NULL,"
	" subject TEXT,"
	" outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),"
	/* JSON text.  No json_valid() CHECK: SQLite 3.40 does not mark it
	 * innocuous, so it cannot run with trusted_schema off. */
	" detail  TEXT"
	");"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;";

/*
 * Version 2: the CRLs meshcad signs, so the cRLNumber keeps increasing
 * across restarts (RFC 5280 5.2.3) and the last one can be served again.
 */
static const char schema_v2[] =
	"CREATE TABLE crls ("
	" number      INTEGER PRIMARY KEY CHECK (number >= 1),"
	" this_update INTEGER NOT NULL,"
	" next_update INTEGER NOT NULL CHECK (next_update > this_update),"
	" der         BLOB NOT NULL CHECK (typeof(der) = 'blob' AND length(der) > 0),"
	" created_at  INTEGER NOT NULL"
	");";

/* Identity policy and operators (issue 5).  A service may allow wildcard
 * certificates; administrators get a table of their own with a role,
 * seeded from the admin certificates issued so far; an enrollment token
 * is bound to a service or to an administrator (the tokens table is
 * rebuilt: SQLite cannot drop a NOT NULL, and no table references it). */
static const char schema_v3[] =
	"ALTER TABLE services ADD COLUMN allow_wildcards INTEGER NOT NULL DEFAULT 0"
	" CHECK (allow_wildcards IN (0, 1));"
	"CREATE TABLE admins ("
	" id          INTEGER PRIMARY KEY,"
	" name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),"
	" role        TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),"
	" created_at  INTEGER NOT NULL,"
	" removed_at  INTEGER"
	");"
	"INSERT INTO admins (name, role, created_at)"
	" SELECT substr(spiffe_id, instr(spiffe_id, '/meshca/admin/') + 14), 'admin', MIN(created_at)"
	" FROM certificates WHERE kind = 'admin' AND instr(spiffe_id, '/meshca/admin/') > 0"
	" GROUP BY 1;"
	"CREATE TABLE tokens_v3 ("
	" id          INTEGER PRIMARY KEY,"
	" service_id  INTEGER REFERENCES services(id),"
	" admin_id    INTEGER REFERENCES admins(id),"
	" hash        BLOB NOT NULL UNIQUE"
	"             CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
	" created_at  INTEGER NOT NULL,"
	" expires_at  INTEGER NOT NULL,"
	" used_at     INTEGER,"
	" CHECK ((service_id IS NULL) <> (admin_id IS NULL))"
	");"
	"INSERT INTO tokens_v3 (id, service_id, hash, created_at, expires_at, used_at)"
	" SELECT id, service_id, hash, created_at, expires_at, used_at FROM tokens;"
	"DROP TABLE tokens;"
	"ALTER TABLE tokens_v3 RENAME TO tokens;"
	"CREATE INDEX tokens_service ON tokens(service_id);"
	"CREATE INDEX tokens_admin ON tokens(admin_id);";

/* The tamper-evident audit log (issue 5).  v1's audit table was never
 * written, so it is replaced: each entry stores the hash of the previous
 * entry and its own hash over its content and that link (hash =
 * SHA-256(prev_hash || canonical(entry)), see db/audit.c).  Checkpoints
 * sign (seq, head hash, time) with the CA key so that cutting off the
 * newest entries is detectable against a checkpoint kept elsewhere. */
static const char schema_v4[] =
	"DROP TRIGGER audit_no_update;"
	"DROP TRIGGER audit_no_delete;"
	"DROP TABLE audit;"
	"CREATE TABLE audit ("
	" seq       INTEGER PRIMARY KEY CHECK (seq >= 1),"
	" at        INTEGER NOT NULL,"
	" actor     TEXT NOT NULL,"
	" action    TEXT NOT NULL,"
	" subject   TEXT,"
	" outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),"
	" detail    TEXT,"
	" prev_hash BLOB NOT NULL CHECK (typeof(prev_hash) = 'blob' AND length(prev_hash) = 32),"
	" hash      BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32)"
	");"
	"CREATE INDEX audit_at ON audit(at);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
	"CREATE TABLE audit_checkpoints ("
	" seq       INTEGER PRIMARY KEY,"		/* last audit entry covered */
	" head_hash BLOB NOT NULL CHECK (typeof(head_hash) = 'blob' AND length(head_hash) = 32),"
	" at        INTEGER NOT NULL,"
	" signature BLOB NOT NULL,"
	" signer    BLOB NOT NULL"			/* DER of the certificate that signed */
	");";

/* v5: indexes for GET /v1/certificates filters at scale (tests/bench/README.md,
 * 10 million rows): each filter walks its own index newest first instead of
 * scanning the whole table.  certificates_service is the prefix of the new
 * service index and goes. */
static const char schema_v5[] =
	"CREATE INDEX certificates_service_created ON certificates(service_id, created_at, serial);"
	"DROP INDEX certificates_service;"
	"CREATE INDEX certificates_kind_created ON certificates(kind, created_at, serial);"
	"CREATE INDEX certificates_status_created ON certificates(status, created_at, serial);";

/*
 * v6: fewer index pages written per issued certificate.  Every index on
 * certificates or audit is one more B-tree leaf dirtied, checksummed,
 * written to the WAL and later checkpointed by every commit: 10 leaves
 * for one certificate and its audit entry at v5, 6 now (25 pwrite calls
 * for a commit of one certificate before, 15 after).  Kept: the serial key,
 * certificates_status (status, not_after: CRL, counts, revocation by
 * service), certificates_created (the unfiltered list) and
 * certificates_service_created.  Dropped: certificates_spiffe and audit_at,
 * which no statement uses (audit reads go by seq).  The kind and status
 * list indexes only ever served the rare values, so they now hold only
 * those rows: admin and server certificates, revoked certificates.  A
 * listing of workload, active or expired certificates walks
 * certificates_created newest first instead, where those rows are nearly
 * all there is (db/certs.c, cert_list_sql).
 */
static const char schema_v6[] =
	"DROP INDEX certificates_spiffe;"
	"DROP INDEX audit_at;"
	"DROP INDEX certificates_kind_created;"
	"CREATE INDEX certificates_nonworkload_created ON certificates(kind, created_at, serial)"
	" WHERE kind <> 'workload';"
	"DROP INDEX certificates_status_created;"
	"CREATE INDEX certificates_revoked_created ON certificates(status, created_at, serial)"
	" WHERE status = 'revoked';";

/*
 * v7: the two counts of GET /v1/status and /metrics that do not depend on
 * the time, every certificate recorded and every one revoked, kept by
 * triggers in a one-row table instead of counted: with no pruning they
 * grow with the whole history (100,000 workloads on one-hour certificates
 * record 2.4 million a day), and count(*) walks an index of all of it on
 * every scrape (GET /v1/status took 83 ms at 3 million rows against 14 ms
 * with these counts, tests/bench/README.md).  The triggers run in the
 * writer's transaction, so a rolled-back insert or revocation is rolled
 * back in the counts too; the migration counts once.
 */
static const char schema_v7[] =
	"CREATE TABLE certificate_counts ("
	" one     INTEGER PRIMARY KEY CHECK (one = 1),"
	" total   INTEGER NOT NULL CHECK (total >= 0),"
	" revoked INTEGER NOT NULL CHECK (revoked >= 0 AND revoked <= total)"
	");"
	"INSERT INTO certificate_counts (one, total, revoked) VALUES (1,"
	" (SELECT count(*) FROM certificates),"
	" (SELECT count(*) FROM certificates WHERE status = 'revoked'));"
	"CREATE TRIGGER certificate_counts_insert AFTER INSERT ON certificates"
	" BEGIN UPDATE certificate_counts SET total = total + 1,"
	"  revoked = revoked + (NEW.status = 'revoked'); END;"
	"CREATE TRIGGER certificate_counts_status AFTER UPDATE OF status ON certificates"
	" WHEN OLD.status <> NEW.status"
	" BEGIN UPDATE certificate_counts"
	"  SET revoked = revoked + (NEW.status = 'revoked') - (OLD.status = 'revoked'); END;"
	"CREATE TRIGGER certificate_counts_delete AFTER DELETE ON certificates"
	" BEGIN UPDATE certificate_counts SET total = total - 1,"
	"  revoked = revoked - (OLD.status = 'revoked'); END;"
	"CREATE TRIGGER certificate_counts_no_delete BEFORE DELETE ON certificate_counts"
	" BEGIN SELECT RAISE(ABORT, 'certificate_counts keeps its row'); END;";

/* migrations[i] brings user_version from i to i + 1. */
static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
	schema_v7,
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DB_SCHEMA_VERSION,
    "one migration per schema version");

/* ---- lock and error helpers ------------------------------------------ */

void
db_lock(struct db *db)
{
	/* Fails only on a programming error (EDEADLK, EINVAL): stop there. */
	if (pthread_mutex_lock(&db->lock) != 0)
		abort();
}

void
db_unlock(struct db *db)
{
	if (pthread_mutex_unlock(&db->lock) != 0)
		abort();
}

/* ---- database faults: disk full, read-only, locked ------------------- */

static _Thread_local enum db_fault fault_last;
static _Atomic uint64_t fault_counts[DB_FAULT_MAX];

static const char *const fault_names[DB_FAULT_MAX] = {
	[DB_FAULT_NONE] = "none",
	[DB_FAULT_FULL] = "full",
	[DB_FAULT_READONLY] = "readonly",
	[DB_FAULT_LOCKED] = "locked",
	[DB_FAULT_OTHER] = "other",
};

static const char *const fault_texts[DB_FAULT_MAX] = {
	[DB_FAULT_NONE] = "unavailable",	/* no fault recorded on this thread */
	[DB_FAULT_FULL] = "disk full",
	[DB_FAULT_READONLY] = "read-only",
	[DB_FAULT_LOCKED] = "locked by another process",
	[DB_FAULT_OTHER] = "I/O error",
};

const char *
db_fault_name(enum db_fault f)
{
	return f < DB_FAULT_MAX ? fault_names[f] : "other";
}

const char *
db_fault_text(enum db_fault f)
{
	return f < DB_FAULT_MAX ? fault_texts[f] : "I/O error";
}

enum db_fault
db_fault_last(void)
{
	return fault_last;
}

uint64_t
db_fault_count(enum db_fault f)
{
	return f > DB_FAULT_NONE && f < DB_FAULT_MAX ? fault_counts[f] : 0;
}

/* An I/O error's errno is not reliably kept by SQLite (sqlite3_system_errno
 * is errno at the time the error was reported, after its cleanup calls),
 * so ask the files themselves: can they be written (EROFS, or EPERM for an
 * immutable file, EACCES), and is there space left? */
static enum db_fault
db_fault_of_files(struct db *db)
{
	const char *path = db->h != NULL ? sqlite3_db_filename(db->h, "main") : NULL;
	char wal[4096];
	struct statvfs vfs;

	if (path == NULL || path[0] == '\0')
		return DB_FAULT_OTHER;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) < sizeof(wal) &&
	    faccessat(AT_FDCWD, wal, W_OK, AT_EACCESS) != 0 && errno != ENOENT)
		return errno == EROFS || errno == EPERM || errno == EACCES ? DB_FAULT_READONLY : DB_FAULT_OTHER;
	if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0)
		return errno == EROFS || errno == EPERM || errno == EACCES ? DB_FAULT_READONLY : DB_FAULT_OTHER;
	if (statvfs(path, &vfs) == 0 && vfs.f_bavail == 0)
		return DB_FAULT_FULL;
	return DB_FAULT_OTHER;
}

/* The condition behind a SQLite result code.  An I/O or open error says
 * what happened through errno: the one SQLite saw if it is telling,
 * else what the files show now. */
static enum db_fault
db_fault_of(struct db *db, int src, int sys)
{
	switch (src & 0xff) {
	case SQLITE_FULL:
		return DB_FAULT_FULL;
	case SQLITE_READONLY:
		return DB_FAULT_READONLY;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_FAULT_LOCKED;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		if (sys == ENOSPC || sys == EDQUOT)
			return DB_FAULT_FULL;
		if (sys == EROFS || sys == EPERM || sys == EACCES)
			return DB_FAULT_READONLY;
		return db_fault_of_files(db);
	default:
		return DB_FAULT_NONE;
	}
}

enum mca_err
db_sqlite_err(struct db *db, int src, const char *what)
{
	const char *msg = db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(src);
	enum db_fault f = db_fault_of(db, src, db->h != NULL ? sqlite3_system_errno(db->h) : 0);

	fault_last = f;
	if (f != DB_FAULT_NONE) {
		fault_counts[f]++;
		db->fault = (int)f;
		return mca_err_set(MCA_ERR_DB_UNAVAILABLE, "%s: database %s: %s", what,
		    db_fault_text(f), msg);
	}
	switch (src) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return mca_err_set(MCA_ERR_EXISTS, "%s: %s", what, msg);
	default:
		break;
	}
	switch (src & 0xff) {
	case SQLITE_NOMEM:
		return mca_err_set(MCA_ERR_NOMEM, "%s: %s", what, msg);
	default:
		return mca_err_set(MCA_ERR_DB, "%s: %s", what, msg);
	}
}

enum mca_err
db_stmt_prepare(struct db *db, const char *sql, sqlite3_stmt **st)
{
	int src;

	*st = NULL;
	if ((src = sqlite3_prepare_v3(db->h, sql, -1, 0, st, NULL)) != SQLITE_OK)
		return db_sqlite_err(db, src, "prepare");
	return MCA_OK;
}

enum mca_err
db_stmt_done(struct db *db, sqlite3_stmt *st, const char *what)
{
	int src;

	if ((src = sqlite3_step(st)) != SQLITE_DONE)
		return db_sqlite_err(db, src, what);
	return MCA_OK;
}

static enum mca_err
db_exec(struct db *db, const char *sql, const char *what)
{
	int src;

	if ((src = sqlite3_exec(db->h, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return db_sqlite_err(db, src, what);
	return MCA_OK;
}

enum mca_err
db_tx_begin(struct db *db)
{
	/* Cached (stmt.c): parsed once, not on every write. */
	return db_stmt_exec_cached(db, "BEGIN IMMEDIATE", "begin transaction");
}

void
db_tx_rollback(struct db *db)
{
	/* A failed statement may already have ended the transaction. */
	if (!sqlite3_get_autocommit(db->h))
		(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

enum mca_err
db_tx_commit(struct db *db)
{
	enum mca_err rc;

	if ((rc = db_stmt_exec_cached(db, "COMMIT", "commit")) != MCA_OK)
		db_tx_rollback(db);
	else
		db->fault = DB_FAULT_NONE;
	return rc;
}

/* ---- lists of names --------------------------------------------------- */

void
db_strv_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

enum mca_err
db_strv_join(char *const *v, size_t n, const char *what, char **out)
{
	size_t len = 1, off = 0;
	char *s;

	*out = NULL;
	if (n > 0 && v == NULL)
		return mca_err_set(MCA_ERR_INVALID, "%s: list is NULL", what);
	for (size_t i = 0; i < n; i++) {
		if (v[i] == NULL || v[i][0] == '\0')
			return mca_err_set(MCA_ERR_INVALID, "%s: empty entry", what);
		if (strchr(v[i], '\n') != NULL)
			return mca_err_set(MCA_ERR_INVALID, "%s: entry contains a newline", what);
		len += strlen(v[i]) + 1;
	}
	if ((s = malloc(len)) == NULL)
		return MCA_ERR_NOMEM;
	s[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);

		if (i > 0)
			s[off++] = '\n';
		memcpy(s + off, v[i], l);
		off += l;
	}
	s[off] = '\0';
	*out = s;
	return MCA_OK;
}

enum mca_err
db_strv_split(const char *text, char ***out, size_t *n)
{
	const char *p, *nl;
	char **v;
	size_t count = 1, i = 0;

	*out = NULL;
	*n = 0;
	if (text == NULL || *text == '\0')
		return MCA_OK;
	for (p = text; (p = strchr(p, '\n')) != NULL; p++)
		count++;
	if ((v = calloc(count, sizeof(*v))) == NULL)
		return MCA_ERR_NOMEM;
	for (p = text; i < count; i++, p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		if ((v[i] = strndup(p, (size_t)(nl - p))) == NULL) {
			db_strv_free(v, i);
			return MCA_ERR_NOMEM;
		}
	}
	*out = v;
	*n = count;
	return MCA_OK;
}

enum mca_err
db_col_strdup(sqlite3_stmt *st, int col, char **out)
{
	const unsigned char *p;

	*out = NULL;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return MCA_OK;
	if ((p = sqlite3_column_text(st, col)) == NULL ||
	    (*out = strdup((const char *)p)) == NULL)
		return MCA_ERR_NOMEM;
	return MCA_OK;
}

enum mca_err
db_col_strv(sqlite3_stmt *st, int col, char ***out, size_t *n)
{
	const unsigned char *p;

	*out = NULL;
	*n = 0;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return MCA_OK;
	if ((p = sqlite3_column_text(st, col)) == NULL)
		return MCA_ERR_NOMEM;
	return db_strv_split((const char *)p, out, n);
}

bool
db_serial_valid(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 64)
		return false;
	return strspn(s, "0123456789abcdef") == n;
}

/* ---- open and migrate ------------------------------------------------- */

/*
 * Creates the file 0600 whatever the umask, so SQLite (which gives its
 * -wal and -shm files the database file's mode) never exposes the CA's
 * records to other users.  An existing file is left as the operator set it.
 */
static enum mca_err
db_file_create(const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0) {
		if (fchmod(fd, 0600) != 0) {
			(void)close(fd);
			return mca_err_set(MCA_ERR_IO, "%s: chmod: %s", path, strerror(errno));
		}
		(void)close(fd);
		return MCA_OK;
	}
	if (errno != EEXIST)
		return mca_err_set(MCA_ERR_IO, "%s: %s", path, strerror(errno));
	if (stat(path, &st) != 0)
		return mca_err_set(MCA_ERR_IO, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return mca_err_set(MCA_ERR_IO, "%s: not a regular file", path);
	return MCA_OK;
}

static enum mca_err
db_user_version(struct db *db, int *version)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, "PRAGMA user_version", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_step(st)) != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read schema version");
	else
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

static enum mca_err
db_version_check(int version)
{
	if (version < 0 || version > DB_SCHEMA_VERSION)
		return mca_err_set(MCA_ERR_DB_SCHEMA,
		    "database schema version %d, this program knows up to %d: "
		    "upgrade meshca or restore a matching backup", version, DB_SCHEMA_VERSION);
	return MCA_OK;
}

/* Applies migration i unless another connection did it first. */
static enum mca_err
db_migrate_step(struct db *db, int i)
{
	char bump[64], why[512];
	enum mca_err rc;
	int version = 0;

	if ((rc = db_tx_begin(db)) != MCA_OK)
		return rc;
	if ((rc = db_user_version(db, &version)) != MCA_OK ||
	    (rc = db_version_check(version)) != MCA_OK || version > i)
		goto out;
	/* PRAGMA takes no bound parameter; the value is our own loop index. */
	(void)snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", i + 1);
	if ((rc = db_exec(db, migrations[i], "migration")) != MCA_OK ||
	    (rc = db_exec(db, bump, "migration")) != MCA_OK)
		goto out;
	return db_tx_commit(db);
out:
	db_tx_rollback(db);
	if (rc != MCA_OK && rc != MCA_ERR_DB_SCHEMA) {
		/* Copied first: the detail buffer cannot be both source and target. */
		(void)snprintf(why, sizeof(why), "%s", mca_err_detail());
		rc = mca_err_set(rc, "migration to schema version %d failed: %s", i + 1, why);
	}
	return rc;
}

static enum mca_err
db_migrate(struct db *db)
{
	enum mca_err rc;
	int version = 0;

	if ((rc = db_user_version(db, &version)) != MCA_OK ||
	    (rc = db_version_check(version)) != MCA_OK)
		return rc;
	for (int i = version; i < DB_SCHEMA_VERSION; i++)
		if ((rc = db_migrate_step(db, i)) != MCA_OK)
			return rc;
	return MCA_OK;
}

static enum mca_err
db_wal_try(struct db *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, "PRAGMA journal_mode = WAL", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_step(st)) != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "enable WAL");
	else if ((mode = sqlite3_column_text(st, 0)) == NULL ||
	    strcasecmp((const char *)mode, "wal") != 0)
		rc = mca_err_set(MCA_ERR_DB, "enable WAL: journal mode stays '%s'",
		    mode != NULL ? (const char *)mode : "?");
	sqlite3_finalize(st);
	return rc;
}

/*
 * Switching a new file to WAL needs an exclusive lock and SQLite does not
 * call the busy handler for it, so processes starting together on a fresh
 * database would fail at random: retry within the busy timeout.
 */
static enum mca_err
db_wal_enable(struct db *db)
{
	enum mca_err rc;

	for (int waited = 0; ; waited += 10) {
		if ((rc = db_wal_try(db)) != MCA_ERR_DB_UNAVAILABLE || db_fault_last() != DB_FAULT_LOCKED ||
		    waited >= DB_BUSY_TIMEOUT_MS)
			return rc;
		(void)usleep(10 * 1000);
	}
}

static enum mca_err
db_configure(struct db *db)
{
	int src, on = 0, version = 0;
	enum mca_err rc;

	/* Schema objects run no application-defined SQL functions, and the
	 * schema cannot be edited through the back door (writable_schema). */
	if ((src = sqlite3_extended_result_codes(db->h, 1)) != SQLITE_OK ||
	    (src = sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS)) != SQLITE_OK ||
	    (src = sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, &on)) != SQLITE_OK ||
	    (src = sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on)) != SQLITE_OK)
		return db_sqlite_err(db, src, "configure");
	/* Outside any transaction, where foreign_keys takes effect. */
	if ((rc = db_exec(db, "PRAGMA foreign_keys = ON", "enable foreign keys")) != MCA_OK)
		return rc;
	/* Refuse a newer schema before touching anything (even the journal mode). */
	if ((rc = db_user_version(db, &version)) != MCA_OK ||
	    (rc = db_version_check(version)) != MCA_OK)
		return rc;
	if ((rc = db_wal_enable(db)) != MCA_OK)
		return rc;
	/* Savepoint journals (group commit, batch.c) stay in memory: a temp
	 * file would be created outside the paths the sandbox allows. */
	if ((rc = db_exec(db, "PRAGMA temp_store = MEMORY", "set temp_store")) != MCA_OK)
		return rc;
	/* FULL: a COMMIT that returned survives power loss (WAL fsync'ed). */
	return db_exec(db, "PRAGMA synchronous = FULL", "set synchronous");
}

enum mca_err
db_open(const char *path, struct db **out)
{
	struct db *db = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || *path == '\0' || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_open: no database path");
	if (strcmp(path, ":memory:") == 0)
		return mca_err_set(MCA_ERR_INVALID, "db_open: an in-memory database is not durable");
	if ((rc = db_file_create(path)) != MCA_OK)
		return rc;
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return MCA_ERR_NOMEM;
	if (pthread_mutex_init(&db->lock, NULL) != 0 || db_batch_init(db) != MCA_OK) {
		free(db);
		return MCA_ERR_NOMEM;
	}
	src = sqlite3_open_v2(path, &db->h,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = db_sqlite_err(db, src, path);
		goto out;
	}
	if ((rc = db_configure(db)) != MCA_OK || (rc = db_migrate(db)) != MCA_OK)
		goto out;
	db->fault = DB_FAULT_NONE;	/* a lock waited out while opening is no fault now */
	*out = db;
	db = NULL;
out:
	db_close(db);
	return rc;
}

/* Read-only: no file creation, no journal-mode change, no migration. */
static enum mca_err
db_configure_readonly(struct db *db)
{
	int src, on = 0, version = 0;
	enum mca_err rc;

	if ((src = sqlite3_extended_result_codes(db->h, 1)) != SQLITE_OK ||
	    (src = sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS)) != SQLITE_OK ||
	    (src = sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, &on)) != SQLITE_OK ||
	    (src = sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on)) != SQLITE_OK)
		return db_sqlite_err(db, src, "configure");
	if ((rc = db_exec(db, "PRAGMA query_only = ON", "set query_only")) != MCA_OK ||
	    (rc = db_user_version(db, &version)) != MCA_OK)
		return rc;
	if (version != DB_SCHEMA_VERSION)
		return mca_err_set(MCA_ERR_DB_SCHEMA, "database schema version %d, this "
		    "program reads version %d only", version, DB_SCHEMA_VERSION);
	return MCA_OK;
}

enum mca_err
db_open_readonly(const char *path, struct db **out)
{
	struct db *db = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || *path == '\0' || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_open_readonly: no database path");
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return MCA_ERR_NOMEM;
	if (pthread_mutex_init(&db->lock, NULL) != 0 || db_batch_init(db) != MCA_OK) {
		free(db);
		return MCA_ERR_NOMEM;
	}
	src = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = db_sqlite_err(db, src, path);
		goto out;
	}
	if ((rc = db_configure_readonly(db)) != MCA_OK)
		goto out;
	*out = db;
	db = NULL;
out:
	db_close(db);
	return rc;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	/* Every other statement is finalized by the function that prepared it. */
	db_stmt_cache_free(db);
	(void)sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	db_batch_free(db);
	free(db);
}

int
db_schema_version(struct db *db)
{
	int version = -1;

	if (db == NULL)
		return -1;
	db_lock(db);
	if (db_user_version(db, &version) != MCA_OK)
		version = -1;
	db_unlock(db);
	return version;
}

enum mca_err
db_ping(struct db *db)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (db == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_ping: no database");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, "SELECT count(*) FROM services", &st)) == MCA_OK &&
	    (src = sqlite3_step(st)) != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "ping");
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

/* A write transaction that changes nothing visible: it rewrites the
 * schema version with its own value, which dirties page 1, so the commit
 * appends to the WAL and syncs like any other write would.  The busy
 * timeout is short here: a health check must not wait 5 s on a lock. */
static enum mca_err
db_write_probe_locked(struct db *db)
{
	char sql[64];
	int version = 0;
	enum mca_err rc;

	if ((rc = db_user_version(db, &version)) != MCA_OK)
		return rc;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	(void)sqlite3_busy_timeout(db->h, 100);
	if ((rc = db_tx_begin(db)) == MCA_OK &&
	    (rc = db_exec(db, sql, "write probe")) == MCA_OK)
		rc = db_tx_commit(db);
	else
		db_tx_rollback(db);
	(void)sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	return rc;
}

enum mca_err
db_ping_write(struct db *db)
{
	enum mca_err rc;

	if (db == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_ping_write: no database");
	db_lock(db);
	rc = db_write_probe_locked(db);
	db_unlock(db);
	return rc;
}

bool
db_writable(struct db *db, enum db_fault *fault)
{
	int64_t now_us;
	struct timespec ts;

	*fault = DB_FAULT_NONE;
	if (db == NULL)
		return false;
	if (db->fault == DB_FAULT_NONE)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (now_us - db->probe_us >= 1000000) {
		db->probe_us = now_us;
		db_lock(db);
		if (db_write_probe_locked(db) != MCA_OK)
			mca_err_clear();	/* the probe's failure is counted, not reported */
		db_unlock(db);
	}
	*fault = (enum db_fault)db->fault;
	return *fault == DB_FAULT_NONE;
}

enum mca_err
db_rows_collect(struct db *db, sqlite3_stmt *st, const struct db_rows *spec, void **out, size_t *n)
{
	unsigned char *list = NULL, *grown;
	size_t len = 0, cap = 0;
	enum mca_err rc = MCA_OK;
	int src = SQLITE_DONE;

	*out = NULL;
	*n = 0;
	while ((spec->max == 0 || spec->max_is_error || len < spec->max) &&
	    (src = sqlite3_step(st)) == SQLITE_ROW) {
		if (spec->max != 0 && len == spec->max) {
			rc = mca_err_set(MCA_ERR_TOOBIG, "%s: more than %zu rows", spec->what, spec->max);
			goto out;
		}
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			if ((grown = reallocarray(list, cap, spec->elem)) == NULL) {
				rc = MCA_ERR_NOMEM;
				goto out;
			}
			list = grown;
		}
		memset(list + len * spec->elem, 0, spec->elem);
		len++;		/* counted first, so a half-filled element is cleared too */
		if ((rc = spec->row(st, spec->ctx, list + (len - 1) * spec->elem)) != MCA_OK)
			goto out;
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE) {
		rc = db_sqlite_err(db, src, spec->what);
		goto out;
	}
	*out = list;
	*n = len;
	list = NULL;
out:
	for (size_t i = 0; list != NULL && spec->clear != NULL && i < len; i++)
		spec->clear(list + i * spec->elem);
	free(list);
	return rc;
}
