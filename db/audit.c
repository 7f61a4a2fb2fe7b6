/*
 * The audit table: appending (inside a write function's transaction, or
 * alone for refusals), reading, verifying the stored chain, and the
 * signed checkpoints.  The chain arithmetic is in audit_hash.c.
 *
 * Appends are serialised by the write transaction (BEGIN IMMEDIATE): the
 * head read and the insert of seq + 1 happen under the database's write
 * lock, so two meshcad processes sharing the file still build one chain.
 */
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_COLUMNS \
	"SELECT seq, at, actor, action, subject, outcome, detail, prev_hash, hash FROM audit"

/* ---- append ----------------------------------------------------------- */

static bool
field_ok(const char *s, bool required)
{
	if (s == NULL)
		return !required;
	return (!required || s[0] != '\0') && strlen(s) <= DB_AUDIT_FIELD_MAX;
}

/* A JSON object by its braces: db/ has no JSON parser, callers build it
 * with one. */
static bool
detail_ok(const char *d)
{
	size_t n;

	if (d == NULL)
		return true;
	n = strlen(d);
	return n >= 2 && n <= DB_AUDIT_DETAIL_MAX && d[0] == '{' && d[n - 1] == '}';
}

static enum mca_err
audit_check(const struct db_audit *a)
{
	if (a == NULL)
		return mca_err_set(MCA_ERR_INVALID, "a state change needs its audit entry");
	if (!field_ok(a->actor, true) || !field_ok(a->action, true) || !field_ok(a->subject, false))
		return mca_err_set(MCA_ERR_INVALID, "audit entry: actor and action are required, "
		    "fields at most %d bytes", DB_AUDIT_FIELD_MAX);
	if (!detail_ok(a->detail))
		return mca_err_set(MCA_ERR_INVALID, "audit entry: detail must be a JSON object "
		    "of at most %d bytes", DB_AUDIT_DETAIL_MAX);
	return MCA_OK;
}

static enum mca_err
col_hash(sqlite3_stmt *st, int col, unsigned char out[DB_AUDIT_HASH_LEN])
{
	const void *p = sqlite3_column_blob(st, col);

	if (p == NULL || sqlite3_column_bytes(st, col) != DB_AUDIT_HASH_LEN)
		return mca_err_set(MCA_ERR_DB, "audit: stored hash is not %d bytes", DB_AUDIT_HASH_LEN);
	memcpy(out, p, DB_AUDIT_HASH_LEN);
	return MCA_OK;
}

static enum mca_err
head_locked(struct db *db, int64_t *seq, unsigned char hash[DB_AUDIT_HASH_LEN])
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	*seq = 0;
	memset(hash, 0, DB_AUDIT_HASH_LEN);
	if ((rc = db_stmt_cached(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	    &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_step(st)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		rc = col_hash(st, 1, hash);
	} else if (src != SQLITE_DONE)
		rc = db_sqlite_err(db, src, "read audit head");
	db_stmt_release(db, st);
	return rc;
}

static enum mca_err
entry_bind(struct db *db, sqlite3_stmt *st, const struct db_audit_entry *e)
{
	int src;

	if ((src = sqlite3_bind_int64(st, 1, e->seq)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, e->at)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 3, e->actor, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 4, e->action, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 5, e->subject, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 6, e->ok ? "success" : "failure", -1,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_text(st, 7, e->detail, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 8, e->prev_hash, DB_AUDIT_HASH_LEN,
	    SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 9, e->hash, DB_AUDIT_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK)
		return db_sqlite_err(db, src, "bind audit entry");
	return MCA_OK;
}

enum mca_err
db_audit_append_locked(struct db *db, const struct db_audit *audit, int64_t now)
{
	struct db_audit_entry e;
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = audit_check(audit)) != MCA_OK)
		return rc;
	memset(&e, 0, sizeof(e));
	/* Borrowed strings (hashed and bound, never freed or written). */
	e.at = now;
	e.actor = (char *)audit->actor;
	e.action = (char *)audit->action;
	e.subject = (char *)audit->subject;
	e.ok = audit->ok;
	e.detail = (char *)audit->detail;
	if ((rc = head_locked(db, &e.seq, e.prev_hash)) != MCA_OK)
		return rc;
	e.seq++;
	if ((rc = db_audit_entry_hash(&e, e.hash)) != MCA_OK)
		return rc;
	if ((rc = db_stmt_cached(db,
	    "INSERT INTO audit (seq, at, actor, action, subject, outcome, detail, prev_hash, hash)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &st)) == MCA_OK &&
	    (rc = entry_bind(db, st, &e)) == MCA_OK)
		rc = db_stmt_done(db, st, "append audit entry");
	db_stmt_release(db, st);
	return rc;
}

enum mca_err
db_audit_append_extra_locked(struct db *db, const struct db_audit *audit, const char *extra,
    int64_t now)
{
	struct db_audit merged;
	char *detail = NULL;
	size_t n, len;
	enum mca_err rc;

	if ((rc = audit_check(audit)) != MCA_OK)
		return rc;
	if (extra == NULL || extra[0] == '\0')
		return db_audit_append_locked(db, audit, now);
	/* "{a}" + "b" -> "{a,b}"; "{}" or none + "b" -> "{b}". */
	n = audit->detail != NULL ? strlen(audit->detail) - 1 : 1;	/* without '}' */
	len = n + 1 + strlen(extra) + 2;
	if ((detail = malloc(len)) == NULL)
		return MCA_ERR_NOMEM;
	(void)snprintf(detail, len, "%.*s%s%s}", (int)n,
	    audit->detail != NULL ? audit->detail : "{", n > 1 ? "," : "", extra);
	merged = *audit;
	merged.detail = detail;
	rc = db_audit_append_locked(db, &merged, now);
	free(detail);
	return rc;
}

enum mca_err
db_audit_append(struct db *db, const struct db_audit *audit, int64_t now)
{
	enum mca_err rc;

	if (db == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_audit_append: NULL argument");
	if ((rc = audit_check(audit)) != MCA_OK)
		return rc;
	db_lock(db);
	if ((rc = db_tx_begin(db)) == MCA_OK) {
		if ((rc = db_audit_append_locked(db, audit, now)) == MCA_OK)
			rc = db_tx_commit(db);
		else
			db_tx_rollback(db);
	}
	db_unlock(db);
	return rc;
}

/* ---- read ------------------------------------------------------------- */

void
db_audit_entry_clear(struct db_audit_entry *e)
{
	if (e == NULL)
		return;
	free(e->actor);
	free(e->action);
	free(e->subject);
	free(e->detail);
	memset(e, 0, sizeof(*e));
}

void
db_audit_list_free(struct db_audit_entry *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_audit_entry_clear(&list[i]);
	free(list);
}

/* Fills e from an AUDIT_COLUMNS row.  A hand-edited row still reads
 * (an odd outcome reads as failure): the walk then reports it. */
static enum mca_err
entry_from_row(sqlite3_stmt *st, struct db_audit_entry *e)
{
	const unsigned char *outcome;
	enum mca_err rc;

	memset(e, 0, sizeof(*e));
	e->seq = sqlite3_column_int64(st, 0);
	e->at = sqlite3_column_int64(st, 1);
	outcome = sqlite3_column_text(st, 5);
	e->ok = outcome != NULL && strcmp((const char *)outcome, "success") == 0;
	if ((rc = db_col_strdup(st, 2, &e->actor)) != MCA_OK ||
	    (rc = db_col_strdup(st, 3, &e->action)) != MCA_OK ||
	    (rc = db_col_strdup(st, 4, &e->subject)) != MCA_OK ||
	    (rc = db_col_strdup(st, 6, &e->detail)) != MCA_OK ||
	    (rc = col_hash(st, 7, e->prev_hash)) != MCA_OK ||
	    (rc = col_hash(st, 8, e->hash)) != MCA_OK)
		goto out;
	/* NOT NULL in the schema; a rebuilt table might still hold NULL,
	 * read as "" whose hash then differs. */
	if ((e->actor == NULL && (e->actor = strdup("")) == NULL) ||
	    (e->action == NULL && (e->action = strdup("")) == NULL))
		rc = MCA_ERR_NOMEM;
out:
	if (rc != MCA_OK)
		db_audit_entry_clear(e);
	return rc;
}

static enum mca_err
entry_row(sqlite3_stmt *st, void *ctx, void *elem)
{
	(void)ctx;
	return entry_from_row(st, elem);
}

static void
entry_clear_elem(void *elem)
{
	db_audit_entry_clear(elem);
}

static enum mca_err
list_locked(struct db *db, sqlite3_stmt *st, size_t limit, struct db_audit_entry **out, size_t *n)
{
	const struct db_rows spec = {
		.elem = sizeof(struct db_audit_entry), .max = limit, .row = entry_row,
		.clear = entry_clear_elem, .what = "list audit entries",
	};

	return db_rows_collect(db, st, &spec, (void **)out, n);
}

enum mca_err
db_audit_list(struct db *db, const struct db_audit_filter *f, struct db_audit_entry **out,
    size_t *n)
{
	struct db_audit_filter all = { 0, 0, 0 };
	sqlite3_stmt *st = NULL;
	size_t limit;
	enum mca_err rc;
	int src;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (db == NULL || out == NULL || n == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_audit_list: NULL argument");
	if (f == NULL)
		f = &all;
	limit = f->limit == 0 ? DB_AUDIT_LIST_DEFAULT :
	    f->limit > DB_AUDIT_LIST_MAX ? DB_AUDIT_LIST_MAX : f->limit;
	db_lock(db);
	if ((rc = db_stmt_prepare(db, AUDIT_COLUMNS " WHERE seq > ?1 AND at >= ?2"
	    " ORDER BY seq LIMIT ?3", &st)) != MCA_OK)
		goto out;
	if ((src = sqlite3_bind_int64(st, 1, f->after)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 2, f->since)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, (int64_t)limit)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind audit filter");
	else
		rc = list_locked(db, st, limit, out, n);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

enum mca_err
db_audit_head(struct db *db, int64_t *seq, unsigned char hash[DB_AUDIT_HASH_LEN])
{
	enum mca_err rc;

	if (db == NULL || seq == NULL || hash == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_audit_head: NULL argument");
	db_lock(db);
	rc = head_locked(db, seq, hash);
	db_unlock(db);
	return rc;
}

/* ---- verify ----------------------------------------------------------- */

/* Steps through every row in seq order inside one read transaction, so
 * concurrent appends cannot make the walk see half a chain. */
static enum mca_err
verify_locked(struct db *db, struct db_audit_walk *w)
{
	struct db_audit_entry e;
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, AUDIT_COLUMNS " ORDER BY seq", &st)) != MCA_OK)
		return rc;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = entry_from_row(st, &e)) != MCA_OK)
			goto out;
		rc = db_audit_walk_step(w, &e);
		db_audit_entry_clear(&e);
		if (rc == MCA_ERR_PARSE) {	/* broken: w says where */
			rc = MCA_OK;
			goto out;
		}
		if (rc != MCA_OK)
			goto out;
	}
	if (src != SQLITE_DONE)
		rc = db_sqlite_err(db, src, "read audit entries");
out:
	sqlite3_finalize(st);
	return rc;
}

enum mca_err
db_audit_verify(struct db *db, struct db_audit_walk *w)
{
	enum mca_err rc;

	if (db == NULL || w == NULL)
		return mca_err_set(MCA_ERR_INVALID, "db_audit_verify: NULL argument");
	db_lock(db);
	if (sqlite3_exec(db->h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_sqlite_err(db, sqlite3_errcode(db->h), "begin read");
		goto out;
	}
	rc = verify_locked(db, w);
	db_tx_rollback(db);
out:
	db_unlock(db);
	return rc;
}

/* ---- checkpoints ------------------------------------------------------ */

void
db_audit_checkpoint_clear(struct db_audit_checkpoint *cp)
{
	if (cp == NULL)
		return;
	free(cp->signature);
	free(cp->signer);
	memset(cp, 0, sizeof(*cp));
}

/* Entry seq must exist with hash h: a checkpoint never vouches for
 * something the chain does not hold. */
static enum mca_err
checkpoint_matches_locked(struct db *db, const struct db_audit_checkpoint *cp)
{
	unsigned char h[DB_AUDIT_HASH_LEN];
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = db_stmt_prepare(db, "SELECT hash FROM audit WHERE seq = ?1", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, cp->seq)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind seq");
	else if ((src = sqlite3_step(st)) == SQLITE_DONE)
		rc = mca_err_set(MCA_ERR_INVALID, "checkpoint: no audit entry %lld", (long long)cp->seq);
	else if (src != SQLITE_ROW)
		rc = db_sqlite_err(db, src, "read audit entry");
	else if ((rc = col_hash(st, 0, h)) == MCA_OK && memcmp(h, cp->head_hash, sizeof(h)) != 0)
		rc = mca_err_set(MCA_ERR_INVALID, "checkpoint: hash differs from audit entry %lld",
		    (long long)cp->seq);
	sqlite3_finalize(st);
	return rc;
}

static enum mca_err
checkpoint_insert_locked(struct db *db, const struct db_audit_checkpoint *cp)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if ((rc = checkpoint_matches_locked(db, cp)) != MCA_OK ||
	    (rc = db_stmt_prepare(db, "INSERT INTO audit_checkpoints"
	    " (seq, head_hash, at, signature, signer) VALUES (?1, ?2, ?3, ?4, ?5)", &st)) != MCA_OK)
		return rc;
	if ((src = sqlite3_bind_int64(st, 1, cp->seq)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 2, cp->head_hash, DB_AUDIT_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(st, 3, cp->at)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 4, cp->signature, (int)cp->signature_len, SQLITE_STATIC)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(st, 5, cp->signer, (int)cp->signer_len, SQLITE_STATIC)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind checkpoint");
	else
		rc = db_stmt_done(db, st, "insert checkpoint");
	sqlite3_finalize(st);
	return rc;
}

enum mca_err
db_audit_checkpoint_insert(struct db *db, const struct db_audit_checkpoint *cp)
{
	enum mca_err rc;

	if (db == NULL || cp == NULL || cp->signature == NULL || cp->signer == NULL ||
	    cp->signature_len == 0 || cp->signer_len == 0 || cp->signature_len > 4096 ||
	    cp->signer_len > 64 * 1024 || cp->seq < 1)
		return mca_err_set(MCA_ERR_INVALID, "db_audit_checkpoint_insert: bad argument");
	db_lock(db);
	if ((rc = db_tx_begin(db)) == MCA_OK) {
		if ((rc = checkpoint_insert_locked(db, cp)) == MCA_OK)
			rc = db_tx_commit(db);
		else
			db_tx_rollback(db);
	}
	db_unlock(db);
	return rc;
}

static enum mca_err
col_blobdup(sqlite3_stmt *st, int col, unsigned char **out, size_t *len)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (p == NULL || n <= 0)
		return mca_err_set(MCA_ERR_DB, "checkpoint: empty signature or signer");
	if ((*out = malloc((size_t)n)) == NULL)
		return MCA_ERR_NOMEM;
	memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	return MCA_OK;
}

static enum mca_err
checkpoint_read_locked(struct db *db, sqlite3_stmt *st, struct db_audit_checkpoint *out)
{
	enum mca_err rc;
	int src;

	if ((src = sqlite3_step(st)) == SQLITE_DONE)
		return mca_err_set(MCA_ERR_NOT_FOUND, "no audit checkpoint");
	if (src != SQLITE_ROW)
		return db_sqlite_err(db, src, "read checkpoint");
	out->seq = sqlite3_column_int64(st, 0);
	out->at = sqlite3_column_int64(st, 2);
	if ((rc = col_hash(st, 1, out->head_hash)) != MCA_OK ||
	    (rc = col_blobdup(st, 3, &out->signature, &out->signature_len)) != MCA_OK ||
	    (rc = col_blobdup(st, 4, &out->signer, &out->signer_len)) != MCA_OK)
		db_audit_checkpoint_clear(out);
	return rc;
}

/* seq < 0: the latest. */
static enum mca_err
checkpoint_get(struct db *db, int64_t seq, struct db_audit_checkpoint *out)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;
	int src;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (db == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "audit checkpoint: NULL argument");
	db_lock(db);
	if ((rc = db_stmt_prepare(db, seq < 0 ?
	    "SELECT seq, head_hash, at, signature, signer FROM audit_checkpoints"
	    " ORDER BY seq DESC LIMIT 1" :
	    "SELECT seq, head_hash, at, signature, signer FROM audit_checkpoints WHERE seq = ?1",
	    &st)) != MCA_OK)
		goto out;
	if (seq >= 0 && (src = sqlite3_bind_int64(st, 1, seq)) != SQLITE_OK)
		rc = db_sqlite_err(db, src, "bind seq");
	else
		rc = checkpoint_read_locked(db, st, out);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

enum mca_err
db_audit_checkpoint_latest(struct db *db, struct db_audit_checkpoint *out)
{
	return checkpoint_get(db, -1, out);
}

enum mca_err
db_audit_checkpoint_get(struct db *db, int64_t seq, struct db_audit_checkpoint *out)
{
	if (seq < 0)
		return mca_err_set(MCA_ERR_INVALID, "checkpoint seq must not be negative");
	return checkpoint_get(db, seq, out);
}
