/*
 * Enrollment tokens: stored by hash, single use.  Consumption and the
 * certificate it pays for are one transaction (db_enroll_commit), so a
 * token can never yield two certificates, nor be spent on a certificate
 * that was not recorded.
 */
#include "db/db_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum mca_err
db_token_insert(struct db *db, int64_t service_id,
    const unsigned char hash[DB_TOKEN_HASH_LEN], int64_t now, int64_t expires_at,
    const struct db_audit *audit)
{
	sqlite3_stmt *st = NULL;
	char extra[96];
	enum mca_err rc;
	int src;

	if (db == NULL || hash == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_token_insert: NULL argument");
	if (expires_at <= now)
		return mca_err_set(MCA_ERR_INVALID, "token would be born expired");
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	if ((rc = db_stmt_prepare(db,
	    "INSERT INTO tokens (service_id, hash, created_at, expires_at)"
	    " VALUES (?1, ?2, ?3, ?4)", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_int64(st, 1, service_id)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 2, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 4, expires_at)) != SQLITE_OK) {
		rc = db_sqlite_err(db, src, "bind token");
		goto out;
	}
	if ((rc = db_stmt_done(db, st, "insert token")) != MCA_OK)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	/* The row id names the token in the log without revealing it;
	 * token.consume names the same id. */
	(void)snprintf(extra, sizeof(extra), "\"token_id\":%" PRId64 ",\"expires_at\":%" PRId64,
	    (int64_t)sqlite3_last_insert_rowid(db->h), expires_at);
	if ((rc = db_audit_append_extra_locked(db, audit, extra, now)) != MCA_OK)
		goto out;
	rc = db_tx_commit(db);
out:
	sqlite3_finalize(st);
	if (rc != MCA_OK)
		db_tx_rollback(db);
	db_unlock(db);
	return rc;
}

/*
 * Why a token cannot be used by want_service (0: any) at now.  A token of
 * another service reads as unknown: its state is none of the caller's
 * business.
 */
static enum mca_err
token_state(sqlite3_stmt *st, int64_t now, int64_t want_service, int64_t *service_id)
{
	int64_t sid = sqlite3_column_int64(st, 0);

	/* An admin's enrollment token is no service's (db_token_lookup_owner). */
	if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		return mca_err_set(MCA_ERR_TOKEN_INVALID, "token is not for a service");
	if (want_service != 0 && sid != want_service)
		return mca_err_set(MCA_ERR_TOKEN_INVALID, "token belongs to another service");
	if (sqlite3_column_type(st, 2) != SQLITE_NULL)
		return mca_err_set(MCA_ERR_TOKEN_USED, "token was used");
	if (sqlite3_column_int64(st, 1) <= now)
		return mca_err_set(MCA_ERR_TOKEN_EXPIRED, "token expired");
	*service_id = sid;
	return MCA_OK;
}

static enum mca_err
token_check_locked(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t want_service, int64_t *service_id)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_cached(db,
	    "SELECT service_id, expires_at, used_at FROM tokens WHERE hash = ?1", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_blob(st, 1, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind token");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_TOKEN_INVALID, "unknown token");
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read token");
	else
		rc = token_state(st, now, want_service, service_id);
	db_stmt_release(db, st);
	return rc;
}

enum mca_err
db_token_lookup(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t *service_id)
{
	enum mca_err rc;
	int64_t sid = 0;

	if (service_id != NULL)
		*service_id = 0;
	if (db == NULL || hash == NULL || service_id == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_token_lookup: NULL argument");
	db_lock(db);
	rc = token_check_locked(db, hash, now, 0, &sid);
	db_unlock(db);
	if (rc == MCA_OK)
		*service_id = sid;
	return rc;
}

/* Marks the token used if it still may be; else the reason it may not. */
static enum mca_err
token_consume_locked(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t service_id)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int64_t sid = 0;
	int src;

	if ((rc = db_stmt_cached(db,
	    "UPDATE tokens SET used_at = ?1 WHERE hash = ?2 AND used_at IS NULL"
	    " AND expires_at > ?1 AND service_id = ?3", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 2, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, service_id)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind token");
	else
		rc = db_stmt_done(db, st, "consume token");
	db_stmt_release(db, st);
	if (rc != MCA_OK || sqlite3_changes(db->h) == 1)
		return rc;
	/* Nothing changed: say why, from the row as this transaction sees it. */
	if ((rc = token_check_locked(db, hash, now, service_id, &sid)) == MCA_OK)
		rc = mca_err_set(MCA_ERR_DB, "token could not be consumed");
	return rc;
}

/*
 * The token.consume entry of a service or an admin enrollment: the
 * caller's actor, the token's owner (service or admin name) as subject,
 * and the token's row id (db_token_insert logged it at mint), marked
 * "kind":"admin" for an admin's token.
 */
enum mca_err
db_token_consume_audit_locked(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    const struct db_audit *issue, int64_t now)
{
	struct db_audit a = { NULL, "token.consume", NULL, true, NULL };
	sqlite3_stmt *st = NULL;
	char detail[96];
	enum mca_err rc;
	int src;

	if (issue == NULL)
		return mca_err_set(MCA_ERR_INVALID, "a state change needs its audit entry");
	a.actor = issue->actor;
	if ((rc = db_stmt_cached(db, "SELECT t.id, coalesce(s.name, a.name), t.admin_id IS NOT NULL"
	    " FROM tokens t LEFT JOIN services s ON s.id = t.service_id"
	    " LEFT JOIN admins a ON a.id = t.admin_id WHERE t.hash = ?1", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_blob(st, 1, hash, DB_TOKEN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind token");
	else if ((src = sqlite3_step(st)) != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read consumed token");
	else {
		(void)snprintf(detail, sizeof(detail), "{\"token_id\":%" PRId64 "%s}",
		    (int64_t)sqlite3_column_int64(st, 0),
		    sqlite3_column_int(st, 2) ? ",\"kind\":\"admin\"" : "");
		a.subject = (const char *)sqlite3_column_text(st, 1);
		a.detail = detail;
		rc = db_audit_append_locked(db, &a, now);
	}
	db_stmt_release(db, st);
	return rc;
}

struct enroll_write {
	const unsigned char	*hash;
	const struct db_cert	*c;
	const struct db_audit	*audit;
};

/* One member of a group commit: token, its audit entry, row, audit entry. */
static enum mca_err
enroll_member(struct db *db, void *arg, int64_t now)
{
	const struct enroll_write *w = arg;
	enum mca_err rc;

	if ((rc = token_consume_locked(db, w->hash, now, w->c->service_id)) != MCA_OK ||
	    (rc = db_token_consume_audit_locked(db, w->hash, w->audit, now)) != MCA_OK ||
	    (rc = db_cert_insert_locked(db, w->c, now)) != MCA_OK)
		return rc;
	return db_audit_append_locked(db, w->audit, now);
}

enum mca_err
db_enroll_commit(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, const struct db_cert *c, const struct db_audit *audit)
{
	struct enroll_write w = { hash, c, audit };

	if (db == NULL || hash == NULL || c == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_enroll_commit: NULL argument");
	if (c->service_id <= 0)
		return mca_err_set(MCA_ERR_INVALID, "enrollment certificate has no service");
	if (audit == NULL)
		return mca_err_set(MCA_ERR_INVALID, "a state change needs its audit entry");
	/* Shares a durable commit with concurrent issuances (batch.c); a
	 * token presented twice in one batch is consumed by the first. */
	return db_batch_write(db, enroll_member, &w, now);
}
