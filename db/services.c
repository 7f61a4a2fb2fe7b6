/*
 * Services: the identities an operator registers and tokens enroll into.
 */
#include "db/db_internal.h"

#include <stdlib.h>
#include <string.h>

#define SERVICE_COLUMNS \
	"SELECT id, name, spiffe_id, dns_names, ip_ranges, default_ttl, max_ttl," \
	" key_types, enabled, created_at, updated_at, allow_wildcards FROM services"

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
	    (src = sqlite3_bind_int64(st, 9, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int(st, 10, svc->allow_wildcards ? 1 : 0)) != SQLITE_OK)
		return db_sqlite_err(db, src, "bind service");
	return MCA_OK;
}

static enum mca_err
service_insert_locked(struct db *db, const struct db_service *svc,
    const char *dns, const char *ips, int64_t now, int64_t *id, const struct db_audit *audit)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = db_tx_begin(db)) != MCA_OK)
		return rc;
	if ((rc = db_stmt_prepare(db,
	    "INSERT INTO services (name, spiffe_id, dns_names, ip_ranges, default_ttl,"
	    " max_ttl, key_types, enabled, created_at, updated_at, allow_wildcards)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)", &st)) != MCA_OK ||
	    (rc = service_bind(db, st, svc, dns, ips, now)) != MCA_OK ||
	    (rc = db_stmt_done(db, st, "insert service")) != MCA_OK)
		goto out;
	*id = sqlite3_last_insert_rowid(db->h);
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = db_audit_append_locked(db, audit, now)) != MCA_OK)
		goto out;
	rc = db_tx_commit(db);
out:
	sqlite3_finalize(st);
	if (rc != MCA_OK)
		db_tx_rollback(db);
	return rc;
}

enum mca_err
db_service_insert(struct db *db, struct db_service *svc, int64_t now,
    const struct db_audit *audit)
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
	rc = service_insert_locked(db, svc, dns, ips, now, &id, audit);
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
	out->allow_wildcards = sqlite3_column_int(st, 11) != 0;
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
	if ((rc = db_stmt_cached(db, SERVICE_COLUMNS " WHERE name = ?1", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind service name");
	else
		rc = service_get_locked(db, st, out);
out:
	db_stmt_release(db, st);
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
	if ((rc = db_stmt_cached(db, SERVICE_COLUMNS " WHERE id = ?1", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind service id");
	else
		rc = service_get_locked(db, st, out);
out:
	db_stmt_release(db, st);
	db_unlock(db);
	return rc;
}

static enum mca_err
service_row(sqlite3_stmt *st, void *ctx, void *elem)
{
	(void)ctx;
	return service_from_row(st, elem);
}

static void
service_clear_elem(void *elem)
{
	db_service_clear(elem);
}

static enum mca_err
service_list_locked(struct db *db, struct db_service **out, size_t *n)
{
	static const struct db_rows spec = {
		.elem = sizeof(struct db_service), .row = service_row,
		.clear = service_clear_elem, .what = "list services",
	};
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = db_stmt_prepare(db, SERVICE_COLUMNS " ORDER BY name", &st)) != MCA_OK)
		return rc;
	rc = db_rows_collect(db, st, &spec, (void **)out, n);
	sqlite3_finalize(st);
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

/* ---- policy update ---------------------------------------------------- */

struct service_policy_text {
	char	*dns;
	char	*ips;
};

static void
policy_text_free(struct service_policy_text *t)
{
	free(t->dns);
	free(t->ips);
}

static enum mca_err
policy_text(const struct db_service *svc, struct service_policy_text *t)
{
	enum mca_err rc;

	if ((rc = db_strv_join(svc->dns_names, svc->ndns, "service DNS names", &t->dns)) != MCA_OK)
		return rc;
	return db_strv_join(svc->ip_ranges, svc->nips, "service IP ranges", &t->ips);
}

/* Binds a policy at parameters first..first+5. */
static int
policy_bind(sqlite3_stmt *st, int first, const struct db_service *svc,
    const struct service_policy_text *t)
{
	int src;

	if ((src = sqlite3_bind_text(st, first, t->dns, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, first + 1, t->ips, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, first + 2, svc->default_ttl)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, first + 3, svc->max_ttl)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, first + 4, svc->key_types)) != SQLITE_OK)
		return src;
	return sqlite3_bind_int(st, first + 5, svc->allow_wildcards ? 1 : 0);
}

/* After an UPDATE that changed nothing: gone, or changed meanwhile. */
static enum mca_err
service_update_miss(struct db *db, const struct db_service *old)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, "SELECT 1 FROM services WHERE id = ?1", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, old->id)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind service id");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_NOT_FOUND, "no service named '%s'", old->name);
	else if (src == SQLITE_ROW)
		rc = mca_err_set(MCA_ERR_CONFLICT, "service %s was changed by someone else "
		    "meanwhile; read it again", old->name);
	else
		rc = db_sqlite_err(db, src, "read service");
	sqlite3_finalize(st);
	return rc;
}

static enum mca_err
service_update_locked(struct db *db, const struct db_service *old, const struct db_service *svc,
    const struct service_policy_text *was, const struct service_policy_text *now_text,
    int64_t now, const struct db_audit *audit)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_tx_begin(db)) != MCA_OK)
		return rc;
	if ((rc = db_stmt_prepare(db,
	    "UPDATE services SET dns_names = ?1, ip_ranges = ?2, default_ttl = ?3, max_ttl = ?4,"
	    " key_types = ?5, allow_wildcards = ?6, updated_at = ?7"
	    " WHERE id = ?8 AND dns_names IS ?9 AND ip_ranges IS ?10 AND default_ttl = ?11"
	    " AND max_ttl = ?12 AND key_types = ?13 AND allow_wildcards = ?14", &st)) != MCA_OK)
		goto out;
	if ((src = policy_bind(st, 1, svc, now_text)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 7, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 8, old->id)) != SQLITE_OK ||
	    (src = policy_bind(st, 9, old, was)) != SQLITE_OK) {
		rc = db_sqlite_err(db, src, "bind service update");
		goto out;
	}
	if ((rc = db_stmt_done(db, st, "update service")) != MCA_OK)
		goto out;
	if (sqlite3_changes(db->h) == 0) {
		rc = service_update_miss(db, old);
		goto out;
	}
	if ((rc = db_audit_append_locked(db, audit, now)) != MCA_OK)
		goto out;
	rc = db_tx_commit(db);
out:
	sqlite3_finalize(st);
	if (rc != MCA_OK)
		db_tx_rollback(db);
	return rc;
}

enum mca_err
db_service_update(struct db *db, const struct db_service *old, struct db_service *svc,
    int64_t now, const struct db_audit *audit)
{
	struct service_policy_text was = { NULL, NULL }, want = { NULL, NULL };
	enum mca_err rc;

	if (db == NULL || old == NULL || svc == NULL || audit == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_service_update: NULL argument");
	if ((rc = service_check(old)) != MCA_OK ||
	    (rc = policy_text(old, &was)) != MCA_OK ||
	    (rc = policy_text(svc, &want)) != MCA_OK)
		goto out;
	if (svc->default_ttl < 0 || svc->max_ttl < 0) {
		rc = mca_err_set(MCA_ERR_INVALID, "service %s: negative TTL", old->name);
		goto out;
	}
	db_lock(db);
	rc = service_update_locked(db, old, svc, &was, &want, now, audit);
	db_unlock(db);
	if (rc == MCA_OK)
		svc->updated_at = now;
out:
	policy_text_free(&was);
	policy_text_free(&want);
	return rc;
}
