/*
 * Counts for `meshca status` / GET /v1/status: one read of every number,
 * so that they describe the same moment.
 */
#include "db/db_internal.h"

#include <string.h>

/* One statement, so SQLite answers from a single snapshot without an
 * explicit transaction.  certificates_status (status, not_after) serves
 * the certificate ranges, which hold the live certificates only; the
 * totals over the whole history are kept by triggers (schema v7). */
static const char counts_sql[] =
	"SELECT"
	" (SELECT count(*) FROM services),"
	" (SELECT count(*) FROM services WHERE enabled = 1),"
	" (SELECT count(*) FROM admins WHERE removed_at IS NULL),"
	" (SELECT count(*) FROM certificates WHERE status = 'active' AND not_after > ?1),"
	" (SELECT count(*) FROM certificates WHERE status = 'active' AND not_after > ?1"
	"   AND not_after <= ?2),"
	" (SELECT revoked FROM certificate_counts),"
	" (SELECT count(*) FROM certificates WHERE status = 'revoked' AND not_after > ?1),"
	" (SELECT total FROM certificate_counts)";

enum mca_err
db_counts(struct db *db, int64_t now, int64_t soon, struct db_counts *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	/* Checked before any &out->field: taking a member's address through
	 * NULL is undefined (UBSan: "member access within null pointer"). */
	if (out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_counts: NULL argument");
	uint64_t *fields[] = {
		&out->services, &out->services_enabled, &out->admins, &out->certs_live,
		&out->certs_expiring, &out->certs_revoked, &out->certs_revoked_unexpired,
		&out->certs_total,
	};
	memset(out, 0, sizeof(*out));
	if (db == NULL || soon < 0 || now > INT64_MAX - soon)
		return mca_err_set(MCA_ERR_INVALID, "db_counts: bad argument");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, counts_sql, &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_int64(st, 1, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, now + soon)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind time");
	else if ((src = sqlite3_step(st)) != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "count");
	else {
		for (int i = 0; i < (int)(sizeof(fields) / sizeof(fields[0])); i++)
			*fields[i] = (uint64_t)sqlite3_column_int64(st, i);
	}
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}
