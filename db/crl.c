/*
 * The CRLs meshcad has signed.  The table exists for the cRLNumber: RFC
 * 5280 5.2.3 wants it to increase monotonically for a given issuer, so
 * it must survive restarts (and, later, be shared by every meshcad on
 * one database: the primary key makes two builders of one number
 * collide instead of both publishing it).  Only the newest few are kept.
 */
#include "db/db_internal.h"

#include <stdlib.h>
#include <string.h>

void
db_crl_clear(struct db_crl *crl)
{
	if (crl == NULL)
		return;
	free(crl->der);
	memset(crl, 0, sizeof(*crl));
}

static enum mca_err
crl_check(const struct db_crl *crl)
{
	if (crl->number < 1 || crl->number > (uint64_t)INT64_MAX)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.2.3: CRL number %llu out of range",
		    (unsigned long long)crl->number);
	if (crl->next_update <= crl->this_update)
		return mca_err_set(MCA_ERR_INVALID, "CRL nextUpdate must be after thisUpdate");
	if (crl->der == NULL || crl->der_len == 0 || crl->der_len > INT32_MAX)
		return mca_err_set(MCA_ERR_INVALID, "CRL without DER");
	return MCA_OK;
}

/* Highest recorded number, 0 when none. */
static enum mca_err
crl_max_locked(struct db *db, int64_t *max)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, "SELECT coalesce(max(number), 0) FROM crls", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_step(st)) != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read CRL number");
	else
		*max = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

static enum mca_err
crl_insert_locked(struct db *db, const struct db_crl *crl)
{
	sqlite3_stmt *st = NULL;
	int64_t max = 0;
	enum mca_err rc;
	int src;

	if ((rc = crl_max_locked(db, &max)) != MCA_OK)
		return rc;
	if ((int64_t)crl->number == max)
		return mca_err_set(MCA_ERR_EXISTS, "CRL number %lld already recorded", (long long)max);
	if ((int64_t)crl->number < max)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.2.3: CRL number %llu is below %lld",
		    (unsigned long long)crl->number, (long long)max);
	if ((rc = db_stmt_prepare(db,
	    "INSERT INTO crls (number, this_update, next_update, der, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, (int64_t)crl->number)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, crl->this_update)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, crl->next_update)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob64(st, 4, crl->der, crl->der_len, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 5, crl->created_at)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind CRL");
	else
		rc = db_stmt_done(db, st, "insert CRL");
	sqlite3_finalize(st);
	if (rc != MCA_OK)
		return rc;
	if ((rc = db_stmt_prepare(db, "DELETE FROM crls WHERE number <= ?1", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, (int64_t)crl->number - DB_CRL_KEEP)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind CRL number");
	else
		rc = db_stmt_done(db, st, "prune CRLs");
	sqlite3_finalize(st);
	return rc;
}

enum mca_err
db_crl_insert(struct db *db, const struct db_crl *crl)
{
	enum mca_err rc;

	if (db == NULL || crl == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_crl_insert: NULL argument");
	if ((rc = crl_check(crl)) != MCA_OK)
		return rc;
	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK)
		goto out;
	if ((rc = crl_insert_locked(db, crl)) != MCA_OK) {
		db_tx_rollback(db);
		goto out;
	}
	rc = db_tx_commit(db);
out:
	db_unlock(db);
	return rc;
}

static enum mca_err
crl_from_row(sqlite3_stmt *st, bool with_der, struct db_crl *out)
{
	const void *p;
	int n;

	out->number = (uint64_t)sqlite3_column_int64(st, 0);
	out->this_update = sqlite3_column_int64(st, 1);
	out->next_update = sqlite3_column_int64(st, 2);
	out->created_at = sqlite3_column_int64(st, 3);
	if (!with_der)
		return MCA_OK;
	p = sqlite3_column_blob(st, 4);
	if ((n = sqlite3_column_bytes(st, 4)) <= 0 || p == NULL)
		return mca_err_set(MCA_ERR_DB, "CRL %llu has no DER", (unsigned long long)out->number);
	if ((out->der = malloc((size_t)n)) == NULL)
		return MCA_ERR_NOMEM;
	memcpy(out->der, p, (size_t)n);
	out->der_len = (size_t)n;
	return MCA_OK;
}

enum mca_err
db_crl_latest(struct db *db, bool with_der, struct db_crl *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (db == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_crl_latest: NULL argument");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, with_der ?
	    "SELECT number, this_update, next_update, created_at, der FROM crls ORDER BY number DESC LIMIT 1" :
	    "SELECT number, this_update, next_update, created_at FROM crls ORDER BY number DESC LIMIT 1",
	    &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_NOT_FOUND, "no CRL recorded yet");
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read CRL");
	else if ((rc = crl_from_row(st, with_der, out)) != MCA_OK)
		db_crl_clear(out);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}
