/*
 * Shared by the files of db/ only: the handle, its lock, and the small
 * SQLite helpers every statement uses.  Functions named *_locked expect
 * the caller to hold db->lock; the public functions take it exactly once
 * so that each of them is atomic with respect to other threads sharing
 * the handle (the connection is opened SQLITE_OPEN_NOMUTEX: this lock
 * serialises whole transactions, which SQLite's own mutex cannot).
 */
#ifndef MCA_DB_INTERNAL_H
#define MCA_DB_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "db/db.h"

#define DB_STMT_CACHE	24	/* statements kept prepared per connection (stmt.c) */

struct db_stmt_slot {
	const char	*sql;	/* static SQL text; its address is the key */
	sqlite3_stmt	*st;	/* NULL: free slot */
	bool		 busy;	/* handed out and not yet released */
};

struct db {
	sqlite3		*h;
	pthread_mutex_t	 lock;
	struct db_stmt_slot stmts[DB_STMT_CACHE];
	/* Group commit (batch.c): writers queued for the next transaction. */
	pthread_mutex_t		 batch_lock;
	pthread_cond_t		 batch_cond;
	struct db_batch_member	*batch_head, *batch_tail;
	bool			 batch_leader;	/* a commit is running */
	_Atomic int	 fault;		/* enum db_fault of the last failed write; NONE once one succeeds */
	_Atomic int64_t	 probe_us;	/* when db_writable last tried a write */
};

void db_lock(struct db *db);
void db_unlock(struct db *db);

/* Maps a SQLite result code to enum mca_err and records what failed with
 * sqlite3_errmsg as detail. */
enum mca_err db_sqlite_err(struct db *db, int src, const char *what);
enum mca_err db_stmt_prepare(struct db *db, const char *sql, sqlite3_stmt **st) MCA_WUR;
/* Prepared-statement cache (stmt.c).  sql must have static storage (a
 * literal or a static array): its address identifies the statement.
 * The statement comes back ready to bind; hand it back with
 * db_stmt_release (never sqlite3_finalize), which resets it and clears
 * its bindings, or finalizes a statement that was not cached. */
enum mca_err db_stmt_cached(struct db *db, const char *sql, sqlite3_stmt **st) MCA_WUR;
void db_stmt_release(struct db *db, sqlite3_stmt *st);
/* Steps a cached statement that returns no row (BEGIN, COMMIT). */
enum mca_err db_stmt_exec_cached(struct db *db, const char *sql, const char *what) MCA_WUR;
/* EXPLAIN QUERY PLAN of sql: its lines ("SEARCH certificates USING
 * INDEX ..."), one a line, NUL-ended, into out (len > 0).  MCA_ERR_TOOBIG
 * if they do not fit. */
enum mca_err db_explain_locked(struct db *db, const char *sql, char *out, size_t len) MCA_WUR;
/* The bulk revocations (revoke.c, admins.c): db_revoke_plans shows their
 * plans. */
extern const char db_sql_revoke_service[];
extern const char db_sql_revoke_admin[];
/* Finalizes every cached statement (before sqlite3_close). */
void db_stmt_cache_free(struct db *db);

/* Group commit (batch.c).  fn makes one writer's changes (and its audit
 * entry) inside the shared transaction, with db->lock held; on failure
 * only its own changes are undone.  db_batch_write returns fn's result,
 * or the commit's error, once the transaction holding the changes has
 * committed durably (or failed).  Not for callers holding db->lock. */
typedef enum mca_err (*db_batch_fn)(struct db *db, void *arg, int64_t now);
enum mca_err db_batch_write(struct db *db, db_batch_fn fn, void *arg, int64_t now) MCA_WUR;
enum mca_err db_batch_init(struct db *db) MCA_WUR;
void db_batch_free(struct db *db);

/* Appends the token.consume audit entry for the token with this hash
 * (service or admin token), inside the caller's transaction. */
enum mca_err db_token_consume_audit_locked(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    const struct db_audit *issue, int64_t now) MCA_WUR;

/* How db_rows_collect turns the rows of a statement into an array. */
struct db_rows {
	size_t		  elem;		/* size of one element */
	size_t		  max;		/* 0: no cap */
	bool		  max_is_error;	/* past max: MCA_ERR_TOOBIG; else stop there quietly */
	/* Fills one zeroed element from the current row. */
	enum mca_err	(*row)(sqlite3_stmt *st, void *ctx, void *elem);
	void		(*clear)(void *elem);	/* releases one element's contents, or NULL */
	void		 *ctx;
	const char	 *what;		/* names the list in errors: "list services" */
};

/* Steps st to its end (or spec->max rows) into a new array of elements
 * grown by doubling; on failure every element filled so far is cleared
 * and nothing is returned.  The caller holds the lock and finalizes st. */
enum mca_err db_rows_collect(struct db *db, sqlite3_stmt *st, const struct db_rows *spec,
    void **out, size_t *n) MCA_WUR;
/* Steps a statement that returns no row (INSERT, UPDATE). */
enum mca_err db_stmt_done(struct db *db, sqlite3_stmt *st, const char *what) MCA_WUR;

/* Write transactions take the write lock up front (BEGIN IMMEDIATE), so
 * a busy database shows at BEGIN, where the busy timeout applies, and
 * never as a deadlock when a read is upgraded. */
enum mca_err db_tx_begin(struct db *db) MCA_WUR;
/* Commits; on failure the transaction is rolled back. */
enum mca_err db_tx_commit(struct db *db) MCA_WUR;
/* Rolls back if a transaction is open; safe to call at any time. */
void db_tx_rollback(struct db *db);

/* Lists of names are stored newline-joined.  Items must be non-empty and
 * free of '\n' (MCA_ERR_INVALID otherwise); an empty list is "". */
enum mca_err db_strv_join(char *const *v, size_t n, const char *what, char **out) MCA_WUR;
/* NULL or "" gives an empty list (*out NULL, *n 0). */
enum mca_err db_strv_split(const char *text, char ***out, size_t *n) MCA_WUR;
void db_strv_free(char **v, size_t n);

/* Copies a text column (NULL column: *out = NULL). */
enum mca_err db_col_strdup(sqlite3_stmt *st, int col, char **out) MCA_WUR;
enum mca_err db_col_strv(sqlite3_stmt *st, int col, char ***out, size_t *n) MCA_WUR;

/* Serial numbers: 1 to 64 lowercase hex digits. */
bool db_serial_valid(const char *s);

/* Appends one audit entry (db.h, struct db_audit) inside the caller's
 * open transaction, with the caller holding db->lock: every write
 * function calls it after its change and before commit, so the change
 * and its entry commit or roll back together.  audit must not be NULL
 * (MCA_ERR_INVALID).  db/audit.c. */
enum mca_err db_audit_append_locked(struct db *db, const struct db_audit *audit,
    int64_t now) MCA_WUR;
/* The same, with facts only the write function knows added to the
 * caller's detail object: extra is JSON object members ("\"revoked\":3",
 * without braces), or NULL. */
enum mca_err db_audit_append_extra_locked(struct db *db, const struct db_audit *audit,
    const char *extra, int64_t now) MCA_WUR;

/* Inserts c (status active, created_at now) inside the caller's
 * transaction. */
enum mca_err db_cert_insert_locked(struct db *db, const struct db_cert *c, int64_t now) MCA_WUR;

#endif
