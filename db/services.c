/*
 * Services: the identities an operator registers and tokens enroll into.
 */
#include "db/db_internal.h"

#include <stdlib.h>
#include <string.h>

#define SERVICE_COLUMNS \
	"SELECT id, name, spiffe_id, dns_names, ip_ranges, default_ttl, max_ttl," \
	" key_types, enabled, created_at, updated_at FROM services"

void
db_service_clear(struct db_service *svc)
{
	if (svc == NULL)
		return;
	free(svc->name);
	free(svc->spiffe_id);
	db_strv_free(svc->dns_names, svc->ndns);
	db_strv_free(svc->ip_ranges, svc->nips);
	memset(svc, 0, sizeof(*svc));
}

void
db_service_list_free(struct db_service *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_service_clear(&list[i]);
	free(list);
}

static enum mca_err
service_check(const struct db_service *svc)
{
	if (svc->name == NULL || svc->name[0] == '\0')
		return mca_err_set(MCA_ERR_INVALID, "service: empty name");
	if (svc->spiffe_id == NULL || svc->spiffe_id[0] == '\0')
		return mca_err_set(MCA_ERR_INVALID, "service %s: empty SPIFFE ID", svc->name);
	if (svc->default_ttl < 0 || svc->max_ttl < 0)
		return mca_err_set(MCA_ERR_INVALID, "service %s: negative TTL", svc->name);
	return MCA_OK;
}

static enum mca_err
service_bind(struct db *db, sqlite3_stmt *st, const struct db_service *svc,
    const char *dns, const char *ips, int64_t now)
{
	int src;

	if ((src = sqlite3_bind_text(st, 1, svc->name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 2, svc->spiffe_id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 3, dns, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 4, ips, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 5, svc->default_ttl)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 6, svc->max_ttl)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 7, svc->key_types)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 8, svc->enabled ? 1 : 0)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 9, now)) != SQLITE_OK)
		return db_sqlite_err(db, src, "bind service");
	return MCA_OK;
}

static enum mca_err
service_insert_locked(struct db *db, const struct db_service *svc,
    const char *dns, const char *ips, int64_t now, int64_t *id)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = db_tx_begin(db)) != MCA_OK)
		return rc;
	if ((rc = db_stmt_prepare(db,
	    "INSERT INTO services (name, spiffe_id, dns_names, ip_ranges, default_ttl,"
	    " max_ttl, key_types, enabled, created_at, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)", &st)) != MCA_OK ||
	    (rc = service_bind(db, st, svc, dns, ips, now)) != MCA_OK ||
	    (rc = db_stmt_done(db, st, "insert service")) != MCA_OK)
		goto out;
	*id = sqlite3_last_insert_rowid(db->h);
	sqlite3_finalize(st);
	st = NULL;
	rc = db_tx_commit(db);
out:
	sqlite3_finalize(st);
	if (rc != MCA_OK)
		db_tx_rollback(db);
	return rc;
}

enum mca_err
db_service_insert(struct db *db, struct db_service *svc, int64_t now)
{
	char *dns = NULL, *ips = NULL;
	enum mca_err rc = MCA_ERR_INVALID;
	int64_t id = 0;

	if (db == NULL || svc == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_service_insert: NULL argument");
	if ((rc = service_check(svc)) != MCA_OK ||
	    (rc = db_strv_join(svc->dns_names, svc->ndns, "service DNS names", &dns)) != MCA_OK ||
	    (rc = db_strv_join(svc->ip_ranges, svc->nips, "service IP ranges", &ips)) != MCA_OK)
		goto out;
	db_lock(db);
	rc = service_insert_locked(db, svc, dns, ips, now, &id);
	db_unlock(db);
	if (rc == MCA_ERR_EXISTS)
		rc = mca_err_set(rc, "a service named '%s' or with SPIFFE ID '%s' exists",
		    svc->name, svc->spiffe_id);
	if (rc != MCA_OK)
		goto out;
	svc->id = id;
	svc->created_at = svc->updated_at = now;
out:
	free(dns);
	free(ips);
	return rc;
}

/* Fills out from the current row of a SERVICE_COLUMNS statement. */
static enum mca_err
service_from_row(sqlite3_stmt *st, struct db_service *out)
{
	enum mca_err rc;

	out->id = sqlite3_column_int64(st, 0);
	out->default_ttl = sqlite3_column_int64(st, 5);
	out->max_ttl = sqlite3_column_int64(st, 6);
	out->key_types = (uint32_t)sqlite3_column_int64(st, 7);
	out->enabled = sqlite3_column_int(st, 8) != 0;
	out->created_at = sqlite3_column_int64(st, 9);
	out->updated_at = sqlite3_column_int64(st, 10);
	if ((rc = db_col_strdup(st, 1, &out->name)) != MCA_OK ||
	    (rc = db_col_strdup(st, 2, &out->spiffe_id)) != MCA_OK ||
	    (rc = db_col_strv(st, 3, &out->dns_names, &out->ndns)) != MCA_OK ||
	    (rc = db_col_strv(st, 4, &out->ip_ranges, &out->nips)) != MCA_OK)
		db_service_clear(out);
	return rc;
}

/* Runs a one-row query whose parameter 1 is bound by the caller. */
static enum mca_err
service_get_locked(struct db *db, sqlite3_stmt *st, struct db_service *out)
{
	int src;

	if ((src = sqlite3_step(st)) == SQLITE_DONE)
		return mca_err_set(MCA_ERR_NOT_FOUND, "no such service");
	if (src != SQLITE_ROW)
		return db_sqlite_err(db, src, "read service");
	return service_from_row(st, out);
}

enum mca_err
db_service_get(struct db *db, const char *name, struct db_service *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (db == NULL || name == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_service_get: NULL argument");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, SERVICE_COLUMNS " WHERE name = ?1", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind service name");
	else
		rc = service_get_locked(db, st, out);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

enum mca_err
db_service_get_by_id(struct db *db, int64_t id, struct db_service *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (db == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_service_get_by_id: NULL argument");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, SERVICE_COLUMNS " WHERE id = ?1", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind service id");
	else
		rc = service_get_locked(db, st, out);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

static enum mca_err
service_list_locked(struct db *db, struct db_service **out, size_t *n)
{
	struct db_service *list = NULL, *grown;
	sqlite3_stmt *st = NULL;
	size_t len = 0, cap = 0;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, SERVICE_COLUMNS " ORDER BY name", &st)) != MCA_OK)
		return rc;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			if ((grown = reallocarray(list, cap, sizeof(*list))) == NULL) {
				rc = MCA_ERR_NOMEM;
				goto out;
			}
			list = grown;
		}
		memset(&list[len], 0, sizeof(list[len]));
		if ((rc = service_from_row(st, &list[len])) != MCA_OK)
			goto out;
		len++;
	}
	if (src != SQLITE_DONE) {
		rc = db_sqlite_err(db, src, "list services");
		goto out;
	}
	*out = list;
	*n = len;
	list = NULL;
out:
	sqlite3_finalize(st);
	db_service_list_free(list, len);
	return rc;
}

enum mca_err
db_service_list(struct db *db, struct db_service **out, size_t *n)
{
	enum mca_err rc;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (db == NULL || out == NULL || n == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_service_list: NULL argument");
	db_lock(db);
	rc = service_list_locked(db, out, n);
	db_unlock(db);
	return rc;
}
