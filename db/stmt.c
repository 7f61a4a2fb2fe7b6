/*
 * The prepared-statement cache: the hot statements (certificate insert and
 * read, audit append, service and token reads, BEGIN and COMMIT) are
 * prepared once per connection, SQLITE_PREPARE_PERSISTENT, and reset with
 * their bindings cleared when released, instead of being parsed and
 * planned again on every request (~8 % of a renewal's CPU before).
 *
 * Every use happens under db->lock, so a slot is never shared between
 * threads; a statement still in use when the same SQL is asked for again
 * (nesting) is not shared either: the second user gets a fresh statement
 * that db_stmt_release finalizes.
 */
#include "db/db_internal.h"

#include <stdio.h>
#include <string.h>

enum mca_err
db_stmt_cached(struct db *db, const char *sql, sqlite3_stmt **st)
{
	struct db_stmt_slot *free_slot = NULL;
	int src;

	*st = NULL;
	for (size_t i = 0; i < DB_STMT_CACHE; i++) {
		struct db_stmt_slot *s = &db->stmts[i];

		if (s->sql == sql && s->st != NULL) {
			if (s->busy)
				return db_stmt_prepare(db, sql, st);
			s->busy = true;
			*st = s->st;
			return MCA_OK;
		}
		if (s->st == NULL && free_slot == NULL)
			free_slot = s;
	}
	if (free_slot == NULL)		/* full: a plain statement */
		return db_stmt_prepare(db, sql, st);
	if ((src = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL)) != SQLITE_OK)
		return db_sqlite_err(db, src, "prepare");
	free_slot->sql = sql;
	free_slot->st = *st;
	free_slot->busy = true;
	return MCA_OK;
}

void
db_stmt_release(struct db *db, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < DB_STMT_CACHE; i++) {
		struct db_stmt_slot *s = &db->stmts[i];

		if (s->st == st) {
			/* The step's error, if any, was reported already. */
			(void)sqlite3_reset(st);
			(void)sqlite3_clear_bindings(st);
			s->busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

enum mca_err
db_stmt_exec_cached(struct db *db, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	enum mca_err rc;

	if ((rc = db_stmt_cached(db, sql, &st)) == MCA_OK)
		rc = db_stmt_done(db, st, what);
	db_stmt_release(db, st);
	return rc;
}

void
db_stmt_cache_free(struct db *db)
{
	for (size_t i = 0; i < DB_STMT_CACHE; i++) {
		sqlite3_finalize(db->stmts[i].st);
		memset(&db->stmts[i], 0, sizeof(db->stmts[i]));
	}
}

enum mca_err
db_explain_locked(struct db *db, const char *sql, char *out, size_t len)
{
	char explain[2048];
	sqlite3_stmt *st = NULL;
	size_t off = 0;
	enum mca_err rc;
	int src, n;

	out[0] = '\0';
	n = snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
	if (n < 0 || (size_t)n >= sizeof(explain))
		return mca_err_set(MCA_ERR_TOOBIG, "query plan: a statement of more than %zu bytes",
		    sizeof(explain));
	if ((rc = db_stmt_prepare(db, explain, &st)) != MCA_OK)
		return rc;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		n = snprintf(out + off, len - off, "%s\n", (const char *)sqlite3_column_text(st, 3));
		if (n < 0 || (size_t)n >= len - off) {
			sqlite3_finalize(st);
			return mca_err_set(MCA_ERR_TOOBIG, "query plan: more than %zu bytes", len);
		}
		off += (size_t)n;
	}
	rc = src == SQLITE_DONE ? MCA_OK : db_sqlite_err(db, src, "explain");
	sqlite3_finalize(st);
	return rc;
}
