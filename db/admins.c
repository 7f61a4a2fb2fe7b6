/*
 * Administrators: who may operate the CA, and with which role; their
 * removal (with their certificates, in one transaction); their one-time
 * enrollment tokens and the enrollment those pay for.
 *
 * An admin's certificates are found by SPIFFE ID: every admin
 * certificate is spiffe://<td>/meshca/admin/<name> (kind 'admin'), and
 * a trust domain has no '/', so the name is what follows the first
 * "/meshca/admin/" (the same rule schema v3 seeded the table with).
 */
#include "db/db_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_NAME_MAX	63
#define ADMIN_COLUMNS	"SELECT id, name, role, created_at, removed_at FROM admins"
#define ADMIN_PATH	"/meshca/admin/"

static const char *const role_names[DB_ROLE_MAX] = {
	[DB_ROLE_VIEWER] = "viewer",
	[DB_ROLE_ADMIN] = "admin",
};

const char *
db_admin_role_name(enum db_admin_role r)
{
	return (unsigned)r < DB_ROLE_MAX ? role_names[r] : "?";
}

enum mca_err
db_admin_role_parse(const char *s, enum db_admin_role *out)
{
	for (int i = 0; s != NULL && i < DB_ROLE_MAX; i++) {
		if (strcmp(s, role_names[i]) == 0) {
			*out = (enum db_admin_role)i;
			return MCA_OK;
		}
	}
	return mca_err_set(MCA_ERR_INVALID, "role must be 'admin' or 'viewer'");
}

/* The admin name is a SPIFFE path segment and a file-name-safe word. */
static enum mca_err
admin_name_check(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > ADMIN_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
		return mca_err_set(MCA_ERR_INVALID, "admin name must be 1 to %d of A-Z a-z 0-9 . _ - "
		    "(and not . or ..)", ADMIN_NAME_MAX);
	return MCA_OK;
}

void
db_admin_clear(struct db_admin *a)
{
	if (a == NULL)
		return;
	free(a->name);
	memset(a, 0, sizeof(*a));
}

void
db_admin_list_free(struct db_admin *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_admin_clear(&list[i]);
	free(list);
}

/* ---- adding ----------------------------------------------------------- */

/* Inserts, or reinstates a removed row of that name; an active row is
 * left alone (no row returned: MCA_ERR_EXISTS). */
static enum mca_err
admin_upsert_locked(struct db *db, const char *name, enum db_admin_role role, int64_t now,
    int64_t *id)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db,
	    "INSERT INTO admins (name, role, created_at) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
	    " created_at = excluded.created_at, removed_at = NULL"
	    " WHERE admins.removed_at IS NOT NULL RETURNING id", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 2, db_admin_role_name(role), -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind admin");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_EXISTS, "an admin named '%s' exists", name);
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "insert admin");
	else {
		*id = sqlite3_column_int64(st, 0);
		rc = db_stmt_done(db, st, "insert admin");
	}
	sqlite3_finalize(st);
	return rc;
}

enum mca_err
db_admin_insert(struct db *db, const char *name, enum db_admin_role role, int64_t now,
    int64_t *id, const struct db_audit *audit)
{
	int64_t got = 0;
	enum mca_err rc;

	if (id != NULL)
		*id = 0;
	if (db == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_admin_insert: NULL argument");
	if ((rc = admin_name_check(name)) != MCA_OK)
		return rc;
	if ((unsigned)role >= DB_ROLE_MAX)
		return mca_err_set(MCA_ERR_INVALID, "unknown admin role %d", (int)role);
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	if ((rc = admin_upsert_locked(db, name, role, now, &got)) != MCA_OK ||
	    (rc = db_audit_append_locked(db, audit, now)) != MCA_OK) {
		db_tx_rollback(db);
		goto out;
	}
	if ((rc = db_tx_commit(db)) == MCA_OK && id != NULL)
		*id = got;
out:
	db_unlock(db);
	return rc;
}

/* ---- reading ---------------------------------------------------------- */

static enum mca_err
admin_from_row(sqlite3_stmt *st, struct db_admin *out)
{
	const unsigned char *role = sqlite3_column_text(st, 2);
	enum db_admin_role r;

	out->id = sqlite3_column_int64(st, 0);
	out->created_at = sqlite3_column_int64(st, 3);
	out->removed_at = sqlite3_column_type(st, 4) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 4);
	if (role == NULL || db_admin_role_parse((const char *)role, &r) != MCA_OK)
		return mca_err_set(MCA_ERR_DB, "admin %lld has an unknown role", (long long)out->id);
	out->role = r;
	return db_col_strdup(st, 1, &out->name);
}

/* Runs a one-row ADMIN_COLUMNS query whose parameter 1 the caller bound. */
static enum mca_err
admin_get_locked(struct db *db, sqlite3_stmt *st, struct db_admin *out)
{
	enum mca_err rc;
	int src;

	if ((src = sqlite3_step(st)) == SQLITE_DONE)
		return mca_err_set(MCA_ERR_NOT_FOUND, "no such admin");
	if (src != SQLITE_ROW)
		return db_sqlite_err(db, src, "read admin");
	if ((rc = admin_from_row(st, out)) != MCA_OK)
		db_admin_clear(out);
	return rc;
}

static enum mca_err
admin_get(struct db *db, const char *name, int64_t id, struct db_admin *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (db == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_admin_get: NULL argument");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, name != NULL ? ADMIN_COLUMNS " WHERE name = ?1" :
	    ADMIN_COLUMNS " WHERE id = ?1", &st)) != MCA_OK)
		goto out;
	src = name != NULL ? sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) :
	    sqlite3_bind_int64(st, 1, id);
	if (src != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind admin");
	else
		rc = admin_get_locked(db, st, out);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

enum mca_err
db_admin_get(struct db *db, const char *name, struct db_admin *out)
{
	if (name == NULL) {
		if (out != NULL)
			memset(out, 0, sizeof(*out));
		return mca_err_set(MCA_ERR_INVALID, "db_admin_get: NULL name");
	}
	return admin_get(db, name, 0, out);
}

enum mca_err
db_admin_get_by_id(struct db *db, int64_t id, struct db_admin *out)
{
	return admin_get(db, NULL, id, out);
}

static enum mca_err
admin_row(sqlite3_stmt *st, void *ctx, void *elem)
{
	(void)ctx;
	return admin_from_row(st, elem);
}

static void
admin_clear_elem(void *elem)
{
	db_admin_clear(elem);
}

static enum mca_err
admin_list_locked(struct db *db, struct db_admin **out, size_t *n)
{
	static const struct db_rows spec = {
		.elem = sizeof(struct db_admin), .row = admin_row,
		.clear = admin_clear_elem, .what = "list admins",
	};
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = db_stmt_prepare(db, ADMIN_COLUMNS " ORDER BY name", &st)) != MCA_OK)
		return rc;
	rc = db_rows_collect(db, st, &spec, (void **)out, n);
	sqlite3_finalize(st);
	return rc;
}

enum mca_err
db_admin_list(struct db *db, struct db_admin **out, size_t *n)
{
	enum mca_err rc;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (db == NULL || out == NULL || n == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_admin_list: NULL argument");
	db_lock(db);
	rc = admin_list_locked(db, out, n);
	db_unlock(db);
	return rc;
}

/* ---- removing --------------------------------------------------------- */

/* Runs st (parameters bound by the caller) and reads one integer. */
static enum mca_err
scalar_locked(struct db *db, sqlite3_stmt *st, const char *what, int64_t *v)
{
	int src;

	if ((src = sqlite3_step(st)) != SQLITE_ROW)
		return db_sqlite_err(db, src, what);
	*v = sqlite3_column_int64(st, 0);
	return MCA_OK;
}

/* The active admin of that name, and whether removing it would leave no
 * active admin of role admin. */
static enum mca_err
remove_check_locked(struct db *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int64_t role_admin = 0, others = 0;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db,
	    "SELECT role = 'admin', (SELECT count(*) FROM admins o WHERE o.role = 'admin'"
	    " AND o.removed_at IS NULL AND o.id <> a.id)"
	    " FROM admins a WHERE a.name = ?1 AND a.removed_at IS NULL", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind admin");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_NOT_FOUND, "no active admin named '%.64s'", name);
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read admin");
	else {
		role_admin = sqlite3_column_int64(st, 0);
		others = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc == MCA_OK && role_admin && others == 0)
		rc = mca_err_set(MCA_ERR_CONFLICT, "'%.64s' is the last active admin with role admin: "
		    "add another admin first, or nobody could administer the CA", name);
	return rc;
}

/* Binds ?1 = name, ?2 = now, ?3 = reason (when the statement has it),
 * runs st and counts the rows it changed. */
static enum mca_err
remove_step_locked(struct db *db, const char *sql, const char *name, int64_t now, int reason,
    const char *what, size_t *changed)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, sql, &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, now)) != SQLITE_OK ||
	    (sqlite3_bind_parameter_count(st) >= 3 &&
	    (src = sqlite3_bind_int(st, 3, reason)) != SQLITE_OK))
		rc = db_sqlite_err(db, src, "bind admin removal");
	else if ((rc = db_stmt_done(db, st, what)) == MCA_OK && changed != NULL)
		*changed = (size_t)sqlite3_changes64(db->h);
	sqlite3_finalize(st);
	return rc;
}

/* A removed admin's live certificates, found among the admin and server
 * certificates (a few per admin and per server rotation): "kind <>
 * 'workload'" lets SQLite use their partial index, and "+status" keeps it
 * from walking every live certificate of the CA, workloads included,
 * through certificates_status instead (db_revoke_plans). */
const char db_sql_revoke_admin[] =
    "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3"
    " WHERE kind = 'admin' AND kind <> 'workload' AND +status = 'active' AND not_after > ?2"
    " AND instr(spiffe_id, '" ADMIN_PATH "') > 0"
    " AND substr(spiffe_id, instr(spiffe_id, '" ADMIN_PATH "') + length('" ADMIN_PATH "')) = ?1";

static enum mca_err
remove_locked(struct db *db, const char *name, int reason, int64_t now, size_t *nrevoked)
{
	enum mca_err rc;

	if ((rc = remove_check_locked(db, name)) != MCA_OK ||
	    (rc = remove_step_locked(db,
	    "UPDATE admins SET removed_at = ?2 WHERE name = ?1 AND removed_at IS NULL",
	    name, now, reason, "remove admin", NULL)) != MCA_OK ||
	    (rc = remove_step_locked(db,
	    db_sql_revoke_admin, name, now, reason, "revoke admin certificates", nrevoked)) != MCA_OK)
		return rc;
	/* Unused tokens die with the admin: reinstating the name later must
	 * not bring an old token back to life. */
	return remove_step_locked(db,
	    "UPDATE tokens SET expires_at = ?2 WHERE used_at IS NULL AND expires_at > ?2"
	    " AND admin_id = (SELECT id FROM admins WHERE name = ?1)",
	    name, now, reason, "end admin tokens", NULL);
}

static bool
reason_valid(int reason)
{
	/* RFC 5280 5.3.1: 0..10, value 7 is not used. */
	return reason >= 0 && reason <= 10 && reason != 7;
}

enum mca_err
db_admin_remove(struct db *db, const char *name, int reason, int64_t now, size_t *nrevoked,
    const struct db_audit *audit)
{
	char extra[40];
	size_t n = 0;
	enum mca_err rc;

	if (nrevoked != NULL)
		*nrevoked = 0;
	if (db == NULL || name == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_admin_remove: NULL argument");
	if (!reason_valid(reason))
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: %d is not a CRLReason code", reason);
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	if ((rc = remove_locked(db, name, reason, now, &n)) == MCA_OK) {
		(void)snprintf(extra, sizeof(extra), "\"revoked\":%zu", n);
		rc = db_audit_append_extra_locked(db, audit, extra, now);
	}
	if (rc != MCA_OK) {
		db_tx_rollback(db);
		goto out;
	}
	if ((rc = db_tx_commit(db)) == MCA_OK && nrevoked != NULL)
		*nrevoked = n;
out:
	db_unlock(db);
	return rc;
}

/* ---- enrollment tokens ------------------------------------------------ */

/* Whether admin_id names an active admin. */
static enum mca_err
admin_active_locked(struct db *db, int64_t admin_id, bool *active)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db,
	    "SELECT count(*) FROM admins WHERE id = ?1 AND removed_at IS NULL", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, admin_id)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind admin");
	else
		rc = scalar_locked(db, st, "read admin", &v);
	sqlite3_finalize(st);
	*active = v > 0;
	return rc;
}

static enum mca_err
token_insert_admin_locked(struct db *db, int64_t admin_id, const unsigned char *hash,
    int64_t now, int64_t expires_at, int64_t *token_id)
{
	sqlite3_stmt *st = NULL;
	bool active = false;
	enum mca_err rc;
	int src;

	if ((rc = admin_active_locked(db, admin_id, &active)) != MCA_OK)
		return rc;
	if (!active)
		return mca_err_set(MCA_ERR_NOT_FOUND, "no active admin with id %lld", (long long)admin_id);
	if ((rc = db_stmt_prepare(db,
	    "INSERT INTO tokens (admin_id, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
	    &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, admin_id)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 2, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 4, expires_at)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind token");
	else if ((rc = db_stmt_done(db, st, "insert token")) == MCA_OK)
		*token_id = sqlite3_last_insert_rowid(db->h);
	sqlite3_finalize(st);
	return rc;
}

enum mca_err
db_token_insert_admin(struct db *db, int64_t admin_id, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t expires_at, const struct db_audit *audit)
{
	int64_t token_id = 0;
	char extra[96];
	enum mca_err rc;

	if (db == NULL || hash == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_token_insert_admin: NULL argument");
	if (expires_at <= now)
		return mca_err_set(MCA_ERR_INVALID, "token would be born expired");
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	/* As db_token_insert: the row id names the token in the log. */
	if ((rc = token_insert_admin_locked(db, admin_id, hash, now, expires_at, &token_id)) == MCA_OK) {
		(void)snprintf(extra, sizeof(extra), "\"token_id\":%" PRId64 ",\"expires_at\":%" PRId64,
		    token_id, expires_at);
		rc = db_audit_append_extra_locked(db, audit, extra, now);
	}
	if (rc != MCA_OK) {
		db_tx_rollback(db);
		goto out;
	}
	rc = db_tx_commit(db);
out:
	db_unlock(db);
	return rc;
}

/* Why a token cannot be used at now (columns: service_id, admin_id,
 * expires_at, used_at); want_admin != 0: only that admin's token. */
static enum mca_err
token_row_state(sqlite3_stmt *st, int64_t now, int64_t want_admin, int64_t *sid, int64_t *aid)
{
	*sid = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
	*aid = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 1);
	if (want_admin != 0 && *aid != want_admin)
		return mca_err_set(MCA_ERR_TOKEN_INVALID, "token is not this admin's");
	if (sqlite3_column_type(st, 3) != SQLITE_NULL)
		return mca_err_set(MCA_ERR_TOKEN_USED, "token was used");
	if (sqlite3_column_int64(st, 2) <= now)
		return mca_err_set(MCA_ERR_TOKEN_EXPIRED, "token expired");
	if ((*sid == 0) == (*aid == 0))
		return mca_err_set(MCA_ERR_DB, "token with neither or both of service and admin");
	return MCA_OK;
}

static enum mca_err
token_owner_locked(struct db *db, const unsigned char *hash, int64_t now, int64_t want_admin,
    int64_t *sid, int64_t *aid)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	/* Every enrollment reads this: cached (it was 3 % of an enrollment's
	 * CPU when parsed each time). */
	if ((rc = db_stmt_cached(db,
	    "SELECT service_id, admin_id, expires_at, used_at FROM tokens WHERE hash = ?1",
	    &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_blob(st, 1, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind token");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_TOKEN_INVALID, "unknown token");
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read token");
	else
		rc = token_row_state(st, now, want_admin, sid, aid);
	db_stmt_release(db, st);
	return rc;
}

enum mca_err
db_token_lookup_owner(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN], int64_t now,
    int64_t *service_id, int64_t *admin_id)
{
	int64_t sid = 0, aid = 0;
	enum mca_err rc;

	if (service_id != NULL)
		*service_id = 0;
	if (admin_id != NULL)
		*admin_id = 0;
	if (db == NULL || hash == NULL || service_id == NULL || admin_id == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_token_lookup_owner: NULL argument");
	db_lock(db);
	rc = token_owner_locked(db, hash, now, 0, &sid, &aid);
	db_unlock(db);
	/* A used or expired token still names its owner, for the audit of
	 * the refused use. */
	if (rc == MCA_OK || rc == MCA_ERR_TOKEN_USED || rc == MCA_ERR_TOKEN_EXPIRED) {
		*service_id = sid;
		*admin_id = aid;
	}
	return rc;
}

/* Marks the admin's token used if it still may be; else why not. */
static enum mca_err
token_consume_admin_locked(struct db *db, const unsigned char *hash, int64_t now, int64_t admin_id)
{
	sqlite3_stmt *st = NULL;
	int64_t sid = 0, aid = 0;
	bool active = false;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db,
	    "UPDATE tokens SET used_at = ?1 WHERE hash = ?2 AND used_at IS NULL"
	    " AND expires_at > ?1 AND admin_id = ?3", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 2, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, admin_id)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind token");
	else
		rc = db_stmt_done(db, st, "consume token");
	sqlite3_finalize(st);
	if (rc != MCA_OK)
		return rc;
	if (sqlite3_changes(db->h) != 1) {
		/* Nothing changed: say why, from the row as this transaction sees it. */
		if ((rc = token_owner_locked(db, hash, now, admin_id, &sid, &aid)) == MCA_OK)
			rc = mca_err_set(MCA_ERR_DB, "token could not be consumed");
		return rc;
	}
	if ((rc = admin_active_locked(db, admin_id, &active)) == MCA_OK && !active)
		rc = mca_err_set(MCA_ERR_TOKEN_INVALID, "the admin this token was minted for was removed");
	return rc;
}

enum mca_err
db_admin_enroll_commit(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN], int64_t now,
    int64_t admin_id, const struct db_cert *c, const struct db_audit *audit)
{
	enum mca_err rc;

	if (db == NULL || hash == NULL || c == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_admin_enroll_commit: NULL argument");
	if (c->kind != DB_CERT_ADMIN || c->service_id != 0 || admin_id <= 0)
		return mca_err_set(MCA_ERR_INVALID, "an admin enrollment records an admin certificate");
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	if ((rc = token_consume_admin_locked(db, hash, now, admin_id)) != MCA_OK ||
	    (rc = db_token_consume_audit_locked(db, hash, audit, now)) != MCA_OK ||
	    (rc = db_cert_insert_locked(db, c, now)) != MCA_OK ||
	    (rc = db_audit_append_locked(db, audit, now)) != MCA_OK) {
		db_tx_rollback(db);
		goto out;
	}
	rc = db_tx_commit(db);
out:
	db_unlock(db);
	return rc;
}
