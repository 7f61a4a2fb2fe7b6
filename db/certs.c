/*
 * Certificate records: every certificate meshca issues, kept before it is
 * handed out.  "expired" is never stored: it is derived from not_after at
 * read time, so records need no sweeper to stay truthful.
 */
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CERT_LIMIT_DEFAULT	1000
#define CERT_LIMIT_MAX		10000

static const char *const kind_names[DB_CERT_KIND_MAX] = {
	[DB_CERT_WORKLOAD] = "workload",
	[DB_CERT_ADMIN] = "admin",
	[DB_CERT_SERVER] = "server",
};

static const char *const status_names[DB_CERT_STATUS_MAX] = {
	[DB_CERT_ACTIVE] = "active",
	[DB_CERT_REVOKED] = "revoked",
	[DB_CERT_EXPIRED] = "expired",
};

const char *
db_cert_kind_name(enum db_cert_kind k)
{
	if ((unsigned)k >= DB_CERT_KIND_MAX)
		return "unknown";
	return kind_names[k];
}

const char *
db_cert_status_name(enum db_cert_status s)
{
	if ((unsigned)s >= DB_CERT_STATUS_MAX)
		return "unknown";
	return status_names[s];
}

enum mca_err
db_cert_status_parse(const char *s, enum db_cert_status *out)
{
	for (int i = 0; s != NULL && i < DB_CERT_STATUS_MAX; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum db_cert_status)i;
			return MCA_OK;
		}
	}
	return mca_err_set(MCA_ERR_INVALID, "certificate status must be active, revoked or expired");
}

static int
kind_parse(const char *s)
{
	for (int i = 0; s != NULL && i < DB_CERT_KIND_MAX; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

void
db_cert_clear(struct db_cert *c)
{
	if (c == NULL)
		return;
	free(c->serial);
	free(c->service);
	free(c->spiffe_id);
	db_strv_free(c->dns_names, c->ndns);
	db_strv_free(c->ip_addresses, c->nips);
	free(c->der);
	free(c->renewed_from);
	memset(c, 0, sizeof(*c));
}

void
db_cert_list_free(struct db_cert *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_cert_clear(&list[i]);
	free(list);
}

/* ---- insert ----------------------------------------------------------- */

static enum mca_err
cert_check(const struct db_cert *c)
{
	if (!db_serial_valid(c->serial))
		return mca_err_set(MCA_ERR_INVALID, "certificate serial must be 1-64 lowercase hex digits");
	if ((unsigned)c->kind >= DB_CERT_KIND_MAX)
		return mca_err_set(MCA_ERR_INVALID, "certificate %s: unknown kind", c->serial);
	if (c->service_id < 0)
		return mca_err_set(MCA_ERR_INVALID, "certificate %s: negative service id", c->serial);
	if (c->der == NULL || c->der_len == 0)
		return mca_err_set(MCA_ERR_INVALID, "certificate %s: no DER", c->serial);
	if (c->not_after < c->not_before)
		return mca_err_set(MCA_ERR_INVALID, "certificate %s: notAfter before notBefore", c->serial);
	if (c->renewed_from != NULL && !db_serial_valid(c->renewed_from))
		return mca_err_set(MCA_ERR_INVALID, "certificate %s: bad renewed-from serial", c->serial);
	return MCA_OK;
}

static enum mca_err
cert_bind(struct db *db, sqlite3_stmt *st, const struct db_cert *c,
    const char *dns, const char *ips, int64_t now)
{
	int src;

	if ((src = sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = c->service_id > 0 ? sqlite3_bind_int64(st, 2, c->service_id) :
	    sqlite3_bind_null(st, 2)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 3, kind_names[c->kind], -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 4, c->spiffe_id, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 5, dns, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 6, ips, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 7, c->not_before)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 8, c->not_after)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob64(st, 9, c->der, c->der_len, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 10, c->renewed_from, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 11, now)) != SQLITE_OK)
		return db_sqlite_err(db, src, "bind certificate");
	return MCA_OK;
}

enum mca_err
db_cert_insert_locked(struct db *db, const struct db_cert *c, int64_t now)
{
	char *dns = NULL, *ips = NULL;
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = cert_check(c)) != MCA_OK ||
	    (rc = db_strv_join(c->dns_names, c->ndns, "certificate DNS names", &dns)) != MCA_OK ||
	    (rc = db_strv_join(c->ip_addresses, c->nips, "certificate IP addresses", &ips)) != MCA_OK)
		goto out;
	if ((rc = db_stmt_cached(db,
	    "INSERT INTO certificates (serial, service_id, kind, spiffe_id, dns_names,"
	    " ip_addresses, not_before, not_after, der, status, renewed_from, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'active', ?10, ?11)", &st)) != MCA_OK ||
	    (rc = cert_bind(db, st, c, dns, ips, now)) != MCA_OK ||
	    (rc = db_stmt_done(db, st, "insert certificate")) != MCA_OK)
		goto out;
out:
	if (rc == MCA_ERR_EXISTS)
		rc = mca_err_set(rc, "certificate serial %s already recorded", c->serial);
	db_stmt_release(db, st);
	free(dns);
	free(ips);
	return rc;
}

struct cert_write {
	const struct db_cert	*c;
	const struct db_audit	*audit;
};

/* One member of a group commit (batch.c): the row and its audit entry. */
static enum mca_err
cert_insert_member(struct db *db, void *arg, int64_t now)
{
	const struct cert_write *w = arg;
	enum mca_err rc;

	if ((rc = db_cert_insert_locked(db, w->c, now)) != MCA_OK)
		return rc;
	return db_audit_append_locked(db, w->audit, now);
}

enum mca_err
db_cert_insert(struct db *db, const struct db_cert *c, int64_t now,
    const struct db_audit *audit)
{
	struct cert_write w = { c, audit };

	if (db == NULL || c == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_cert_insert: NULL argument");
	/* Shares a durable commit with concurrent issuances. */
	return db_batch_write(db, cert_insert_member, &w, now);
}

/* ---- read ------------------------------------------------------------- */

/* Column 9 is the DER: NULL in lists. */
#define CERT_SELECT(der) \
	"SELECT c.serial, c.service_id, s.name, c.kind, c.spiffe_id, c.dns_names," \
	" c.ip_addresses, c.not_before, c.not_after, " der ", c.status," \
	" c.renewed_from, c.created_at, c.revoked_at, c.revocation_reason" \
	" FROM certificates c LEFT JOIN services s ON s.id = c.service_id"

static enum mca_err
cert_der_from_row(sqlite3_stmt *st, struct db_cert *out)
{
	const void *p;
	int n;

	if (sqlite3_column_type(st, 9) == SQLITE_NULL)
		return MCA_OK;
	p = sqlite3_column_blob(st, 9);
	if ((n = sqlite3_column_bytes(st, 9)) <= 0 || p == NULL)
		return MCA_OK;
	if ((out->der = malloc((size_t)n)) == NULL)
		return MCA_ERR_NOMEM;
	memcpy(out->der, p, (size_t)n);
	out->der_len = (size_t)n;
	return MCA_OK;
}

static enum mca_err
cert_enums_from_row(sqlite3_stmt *st, int64_t now, struct db_cert *out)
{
	const char *kind = (const char *)sqlite3_column_text(st, 3);
	const char *status = (const char *)sqlite3_column_text(st, 10);
	int k = kind_parse(kind);

	if (k < 0 || status == NULL)
		return mca_err_set(MCA_ERR_DB, "certificate %s: corrupt kind or status", out->serial);
	out->kind = (enum db_cert_kind)k;
	if (strcmp(status, "revoked") == 0)
		out->status = DB_CERT_REVOKED;
	else if (strcmp(status, "active") == 0)
		out->status = out->not_after <= now ? DB_CERT_EXPIRED : DB_CERT_ACTIVE;
	else
		return mca_err_set(MCA_ERR_DB, "certificate %s: corrupt status", out->serial);
	return MCA_OK;
}

static enum mca_err
cert_from_row(sqlite3_stmt *st, int64_t now, struct db_cert *out)
{
	enum mca_err rc;

	out->service_id = sqlite3_column_int64(st, 1);
	out->not_before = sqlite3_column_int64(st, 7);
	out->not_after = sqlite3_column_int64(st, 8);
	out->created_at = sqlite3_column_int64(st, 12);
	out->revoked_at = sqlite3_column_int64(st, 13);	/* NULL reads as 0 */
	out->revocation_reason = sqlite3_column_type(st, 14) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 14);
	if ((rc = db_col_strdup(st, 0, &out->serial)) != MCA_OK ||
	    (rc = db_col_strdup(st, 2, &out->service)) != MCA_OK ||
	    (rc = db_col_strdup(st, 4, &out->spiffe_id)) != MCA_OK ||
	    (rc = db_col_strv(st, 5, &out->dns_names, &out->ndns)) != MCA_OK ||
	    (rc = db_col_strv(st, 6, &out->ip_addresses, &out->nips)) != MCA_OK ||
	    (rc = db_col_strdup(st, 11, &out->renewed_from)) != MCA_OK ||
	    (rc = cert_enums_from_row(st, now, out)) != MCA_OK ||
	    (rc = cert_der_from_row(st, out)) != MCA_OK)
		db_cert_clear(out);
	return rc;
}

enum mca_err
db_cert_get(struct db *db, const char *serial, int64_t now, struct db_cert *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (db == NULL || serial == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_cert_get: NULL argument");
	db_lock(db);
	if ((rc = db_stmt_cached(db, CERT_SELECT("c.der") " WHERE c.serial = ?1", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind serial");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_NOT_FOUND, "no certificate with that serial");
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read certificate");
	else
		rc = cert_from_row(st, now, out);
out:
	db_stmt_release(db, st);
	db_unlock(db);
	return rc;
}

/* ---- list ------------------------------------------------------------- */

/*
 * The statement names only the filters that are set, so that SQLite can
 * walk an index newest first and stop at the limit: with "?1 IS NULL OR"
 * in a fixed statement it scanned every row, which with 10 million
 * stored took over a minute while holding the database (README in
 * tests/bench).  Schema v6 (db/db.c): a service walks its
 * certificates_service_created range; kind admin or server, and status
 * revoked, walk partial indexes that hold only those rows, so their
 * conditions are spelt as the indexes' own WHERE (a literal, not a
 * parameter: SQLite proves a partial index usable when the statement is
 * prepared).  Workload, active and expired are most rows: they walk
 * certificates_created and filter.  The unary + keeps SQLite off
 * certificates_status (status, not_after), whose 'active' range it would
 * otherwise read whole and sort.  Parameters keep their numbers whichever
 * are present.  ?4 is the derived part of the status: 1 not yet expired,
 * 0 expired.  tests/unit/db_test.c checks the plan of every shape.
 */
static const char *
cert_status_sql(int status)
{
	switch (status) {
	case DB_CERT_ACTIVE:
	case DB_CERT_EXPIRED:
		return " AND +c.status = 'active' AND (c.not_after > ?5) = ?4";
	case DB_CERT_REVOKED:
		return " AND c.status = 'revoked'";
	default:
		return "";
	}
}

static enum mca_err
cert_list_sql(const struct db_cert_filter *f, char *sql, size_t len)
{
	int n = snprintf(sql, len, "%s WHERE 1%s%s%s ORDER BY c.created_at DESC, c.serial LIMIT ?6",
	    CERT_SELECT("NULL"),
	    f->service != NULL ? " AND c.service_id = (SELECT id FROM services WHERE name = ?1)" : "",
	    f->kind == DB_CERT_WORKLOAD ? " AND c.kind = ?2" :
	    f->kind >= 0 ? " AND c.kind = ?2 AND c.kind <> 'workload'" : "",
	    cert_status_sql(f->status));

	if (n < 0 || (size_t)n >= len)
		return mca_err_set(MCA_ERR_INVALID, "certificate filter: query too long");
	return MCA_OK;
}

static enum mca_err
cert_filter_bind(struct db *db, sqlite3_stmt *st, const struct db_cert_filter *f, int64_t now)
{
	int src, live = f->status == DB_CERT_ACTIVE ? 1 : f->status == DB_CERT_EXPIRED ? 0 : -1;
	size_t limit = f->limit == 0 ? CERT_LIMIT_DEFAULT : f->limit;

	if (limit > CERT_LIMIT_MAX)
		limit = CERT_LIMIT_MAX;
	if ((src = sqlite3_bind_text(st, 1, f->service, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 2, f->kind >= 0 ? kind_names[f->kind] : NULL,
	    -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = live >= 0 ? sqlite3_bind_int(st, 4, live) : sqlite3_bind_null(st, 4)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 5, now)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 6, (int64_t)limit)) != SQLITE_OK)
		return db_sqlite_err(db, src, "bind certificate filter");
	return MCA_OK;
}

static enum mca_err
cert_row(sqlite3_stmt *st, void *ctx, void *elem)
{
	return cert_from_row(st, *(const int64_t *)ctx, elem);
}

static void
cert_clear_elem(void *elem)
{
	db_cert_clear(elem);
}

static enum mca_err
cert_list_locked(struct db *db, sqlite3_stmt *st, int64_t now, struct db_cert **out, size_t *n)
{
	const struct db_rows spec = {
		.elem = sizeof(struct db_cert), .row = cert_row, .clear = cert_clear_elem,
		.ctx = &now, .what = "list certificates",
	};

	return db_rows_collect(db, st, &spec, (void **)out, n);
}

/* The filter's validity, and its SQL in sql. */
static enum mca_err
cert_filter_sql(const struct db_cert_filter *f, char *sql, size_t len)
{
	if (f->status < -1 || f->status >= DB_CERT_STATUS_MAX ||
	    f->kind < -1 || f->kind >= DB_CERT_KIND_MAX)
		return mca_err_set(MCA_ERR_INVALID, "certificate filter: unknown status or kind");
	return cert_list_sql(f, sql, len);
}

enum mca_err
db_cert_list(struct db *db, const struct db_cert_filter *f, int64_t now,
    struct db_cert **out, size_t *n)
{
	static const struct db_cert_filter any = { NULL, -1, -1, 0 };
	sqlite3_stmt *st = NULL;
	char sql[1024];
	enum mca_err rc;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (db == NULL || out == NULL || n == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_cert_list: NULL argument");
	if ((rc = cert_filter_sql(f != NULL ? f : &any, sql, sizeof(sql))) != MCA_OK)
		return rc;
	db_lock(db);
	/* Not cached: a dozen shapes, and an admin listing is rare. */
	if ((rc = db_stmt_prepare(db, sql, &st)) == MCA_OK &&
	    (rc = cert_filter_bind(db, st, f != NULL ? f : &any, now)) == MCA_OK)
		rc = cert_list_locked(db, st, now, out, n);
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

enum mca_err
db_cert_list_plan(struct db *db, const struct db_cert_filter *f, char *out, size_t len)
{
	char sql[1024];
	enum mca_err rc;

	if (db == NULL || f == NULL || out == NULL || len == 0)
		return mca_err_set(MCA_ERR_INVALID, "db_cert_list_plan: NULL argument");
	if ((rc = cert_filter_sql(f, sql, sizeof(sql))) != MCA_OK)
		return rc;
	db_lock(db);
	rc = db_explain_locked(db, sql, out, len);
	db_unlock(db);
	return rc;
}
