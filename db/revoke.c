/*
 * Revocation records: revoking one certificate, disabling a service (and
 * revoking what it holds, in the same transaction), and the list a CRL
 * is built from.
 *
 * Revocation is permanent and idempotent: the first time and reason
 * stand (RFC 5280 5.3.2 invalidityDate aside, the revocation date is the
 * date the CA processed it, which must not move).
 */
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REVOKED_LIST_MAX	10000000	/* rows; far above any real CRL */

static bool
reason_valid(int reason)
{
	/* RFC 5280 5.3.1: 0..10, value 7 is not used. */
	return reason >= 0 && reason <= 10 && reason != 7;
}

/* The stored status of serial: 1 revoked, 0 not, or an error. */
static enum mca_err
revoked_state_locked(struct db *db, const char *serial, bool *revoked)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, "SELECT status FROM certificates WHERE serial = ?1", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind serial");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_NOT_FOUND, "no certificate with serial %s", serial);
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read certificate status");
	else
		*revoked = strcmp((const char *)sqlite3_column_text(st, 0), "revoked") == 0;
	sqlite3_finalize(st);
	return rc;
}

static enum mca_err
revoke_locked(struct db *db, const char *serial, int reason, int64_t now, bool *newly)
{
	sqlite3_stmt *st = NULL;
	bool revoked = false;
	enum mca_err rc;
	int src;

	if ((rc = revoked_state_locked(db, serial, &revoked)) != MCA_OK)
		return rc;
	if (revoked) {
		*newly = false;
		return MCA_OK;
	}
	if ((rc = db_stmt_prepare(db,
	    "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3"
	    " WHERE serial = ?1 AND status = 'active'", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 3, reason)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind revocation");
	else
		rc = db_stmt_done(db, st, "revoke certificate");
	sqlite3_finalize(st);
	*newly = rc == MCA_OK;
	return rc;
}

enum mca_err
db_cert_revoke(struct db *db, const char *serial, int reason, int64_t now, bool *newly,
    const struct db_audit *audit)
{
	bool dummy;
	enum mca_err rc;

	if (newly == NULL)
		newly = &dummy;
	*newly = false;
	if (db == NULL || serial == NULL || audit == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_cert_revoke: NULL argument");
	if (!db_serial_valid(serial))
		return mca_err_set(MCA_ERR_INVALID, "serial must be 1-64 lowercase hex digits");
	if (!reason_valid(reason))
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: %d is not a CRLReason code", reason);
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	/* A second revocation changes nothing and records nothing. */
	if ((rc = revoke_locked(db, serial, reason, now, newly)) != MCA_OK ||
	    (*newly && (rc = db_audit_append_locked(db, audit, now)) != MCA_OK)) {
		*newly = false;
		db_tx_rollback(db);
		goto out;
	}
	if ((rc = db_tx_commit(db)) != MCA_OK)
		*newly = false;
out:
	db_unlock(db);
	return rc;
}

/* ---- services ----------------------------------------------------------- */

/* Sets enabled; MCA_ERR_NOT_FOUND when no row has that name. */
static enum mca_err
set_enabled_locked(struct db *db, const char *name, bool enabled, int64_t now, int64_t *id)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db,
	    "UPDATE services SET enabled = ?2, updated_at = ?3 WHERE name = ?1 RETURNING id",
	    &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 2, enabled ? 1 : 0)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind service");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_NOT_FOUND, "no service named '%.64s'", name);
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "update service");
	else {
		*id = sqlite3_column_int64(st, 0);
		rc = db_stmt_done(db, st, "update service");	/* names are unique: one row */
	}
	sqlite3_finalize(st);
	return rc;
}

/* A disabled service's live certificates, found among the live
 * certificates of the CA (certificates_status, status and not_after).
 * Deliberately not through the service's own index: that holds every
 * certificate the service ever had, expired ones included, which with
 * short lifetimes soon outnumber the live certificates of the whole CA
 * (db_revoke_plans). */
const char db_sql_revoke_service[] =
    "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3"
    " WHERE service_id = ?1 AND status = 'active' AND not_after > ?2";

enum mca_err
db_revoke_plans(struct db *db, char *out, size_t len)
{
	static const struct { const char *name, *sql; } stmts[] = {
		{ "service", db_sql_revoke_service },
		{ "admin", db_sql_revoke_admin },
	};
	size_t off = 0;
	enum mca_err rc = MCA_OK;
	int n;

	if (db == NULL || out == NULL || len == 0)
		return mca_err_set(MCA_ERR_INVALID, "db_revoke_plans: NULL argument");
	out[0] = '\0';
	db_lock(db);
	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]) && rc == MCA_OK; i++) {
		n = snprintf(out + off, len - off, "%s: ", stmts[i].name);
		if (n < 0 || (size_t)n >= len - off) {
			rc = mca_err_set(MCA_ERR_TOOBIG, "revocation plans: more than %zu bytes", len);
			break;
		}
		off += (size_t)n;
		if ((rc = db_explain_locked(db, stmts[i].sql, out + off, len - off)) == MCA_OK)
			off += strlen(out + off);
	}
	db_unlock(db);
	return rc;
}

/* Revokes every live active certificate of a service. */
static enum mca_err
revoke_service_locked(struct db *db, int64_t service_id, int reason, int64_t now, size_t *n)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, db_sql_revoke_service, &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, service_id)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 3, reason)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind revocation");
	else if ((rc = db_stmt_done(db, st, "revoke service certificates")) == MCA_OK)
		*n = (size_t)sqlite3_changes64(db->h);
	sqlite3_finalize(st);
	return rc;
}

static enum mca_err
service_update(struct db *db, const char *name, bool enabled, bool revoke, int reason,
    int64_t now, size_t *nrevoked, const struct db_audit *audit)
{
	char extra[64] = "";
	int64_t id = 0;
	size_t n = 0;
	enum mca_err rc;

	if (db == NULL || name == NULL || audit == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_service_set_enabled: NULL argument");
	if (revoke && !reason_valid(reason))
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: %d is not a CRLReason code", reason);
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	if ((rc = set_enabled_locked(db, name, enabled, now, &id)) == MCA_OK && revoke &&
	    (rc = revoke_service_locked(db, id, reason, now, &n)) == MCA_OK)
		(void)snprintf(extra, sizeof(extra), "\"revoked\":%zu,\"reason\":%d", n, reason);
	if (rc != MCA_OK || (rc = db_audit_append_extra_locked(db, audit, extra, now)) != MCA_OK) {
		db_tx_rollback(db);
		goto out;
	}
	if ((rc = db_tx_commit(db)) == MCA_OK && nrevoked != NULL)
		*nrevoked = n;
out:
	db_unlock(db);
	return rc;
}

enum mca_err
db_service_set_enabled(struct db *db, const char *name, bool enabled, int64_t now,
    const struct db_audit *audit)
{
	return service_update(db, name, enabled, false, 0, now, NULL, audit);
}

enum mca_err
db_service_disable_revoke(struct db *db, const char *name, int reason, int64_t now,
    size_t *nrevoked, const struct db_audit *audit)
{
	if (nrevoked != NULL)
		*nrevoked = 0;
	return service_update(db, name, false, true, reason, now, nrevoked, audit);
}

/* ---- the CRL's list ----------------------------------------------------- */

static enum mca_err
revoked_row(sqlite3_stmt *st, struct db_revoked *r)
{
	const unsigned char *serial = sqlite3_column_text(st, 0);
	int len = sqlite3_column_bytes(st, 0);

	if (serial == NULL || len <= 0 || (size_t)len >= sizeof(r->serial))
		return mca_err_set(MCA_ERR_DB, "revoked certificate with a corrupt serial");
	memcpy(r->serial, serial, (size_t)len);
	r->serial[len] = '\0';
	r->revoked_at = sqlite3_column_int64(st, 1);
	r->reason = sqlite3_column_type(st, 2) == SQLITE_NULL ? DB_REASON_UNSPECIFIED :
	    sqlite3_column_int(st, 2);
	return MCA_OK;
}

static enum mca_err
revoked_row_elem(sqlite3_stmt *st, void *ctx, void *elem)
{
	(void)ctx;
	return revoked_row(st, elem);
}

static enum mca_err
revoked_list_locked(struct db *db, sqlite3_stmt *st, struct db_revoked **out, size_t *n)
{
	static const struct db_rows spec = {
		.elem = sizeof(struct db_revoked), .max = REVOKED_LIST_MAX, .max_is_error = true,
		.row = revoked_row_elem, .what = "list revoked certificates",
	};

	return db_rows_collect(db, st, &spec, (void **)out, n);
}

enum mca_err
db_revoked_live(struct db *db, int64_t now, struct db_revoked **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (db == NULL || out == NULL || n == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_revoked_live: NULL argument");
	db_lock(db);
	/* certificates_status (status, not_after) serves this range. */
	if ((rc = db_stmt_prepare(db,
	    "SELECT serial, revoked_at, revocation_reason FROM certificates"
	    " WHERE status = 'revoked' AND not_after > ?1 ORDER BY serial", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_int64(st, 1, now)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind time");
	else
		rc = revoked_list_locked(db, st, out, n);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}
