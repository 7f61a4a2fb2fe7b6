/*
 * Group commit.  Concurrent writers of certificates (enrollment, renewal)
 * share one durable transaction: the first to arrive while no commit is
 * running becomes the leader, takes every member queued so far, runs them
 * (a member that fails is rolled back alone: see batch_run), and commits
 * once with synchronous=FULL.  Members queue while the leader's fsync
 * runs and form the next batch.  Every member returns only after the
 * commit that holds its rows has returned: nothing is answered before it
 * is durable.
 *
 * The hash-chained audit log stays a chain: each member reads the head
 * inside the transaction, after the members before it.
 */
#include "db/db_internal.h"

#include <stdio.h>
#include <string.h>

struct db_batch_member {
	db_batch_fn		 fn;
	void			*arg;
	int64_t			 now;
	enum mca_err		 rc;
	bool			 done;
	char			 detail[512];	/* mca_err_detail of a failure, for the member's thread */
	struct db_batch_member	*next;
};

enum mca_err
db_batch_init(struct db *db)
{
	if (pthread_mutex_init(&db->batch_lock, NULL) != 0)
		return MCA_ERR_NOMEM;
	if (pthread_cond_init(&db->batch_cond, NULL) != 0) {
		pthread_mutex_destroy(&db->batch_lock);
		return MCA_ERR_NOMEM;
	}
	return MCA_OK;
}

void
db_batch_free(struct db *db)
{
	pthread_cond_destroy(&db->batch_cond);
	pthread_mutex_destroy(&db->batch_lock);
}

static void
member_fail(struct db_batch_member *m, enum mca_err rc)
{
	m->rc = rc;
	(void)snprintf(m->detail, sizeof(m->detail), "%s", mca_err_detail());
}

/* One member inside the open transaction, under its own savepoint.
 * false: the transaction itself is gone (SQLite rolled it back). */
static bool
member_run(struct db *db, struct db_batch_member *m)
{
	enum mca_err rc;

	if ((rc = db_stmt_exec_cached(db, "SAVEPOINT member", "savepoint")) != MCA_OK) {
		member_fail(m, rc);
		return !sqlite3_get_autocommit(db->h);
	}
	if ((rc = m->fn(db, m->arg, m->now)) != MCA_OK) {
		member_fail(m, rc);
		if (sqlite3_get_autocommit(db->h))
			return false;
		if (db_stmt_exec_cached(db, "ROLLBACK TO member", "rollback member") != MCA_OK)
			return false;
	}
	if (db_stmt_exec_cached(db, "RELEASE member", "release member") != MCA_OK) {
		if (m->rc == MCA_OK)
			member_fail(m, MCA_ERR_DB);
		return !sqlite3_get_autocommit(db->h);
	}
	return true;
}

/* Every member straight into the open transaction, no savepoint: true
 * if all succeeded.  A savepoint costs each member a copy of every page
 * it touches (SQLite's statement journal: 6 pages of 4 KiB for a
 * certificate and its audit entry) and members almost never fail, so
 * the batch first runs without; batch_run runs it again with savepoints
 * when one does (a serial collision, a token spent twice in one batch). */
static bool
batch_run_plain(struct db *db, struct db_batch_member *first)
{
	for (struct db_batch_member *m = first; m != NULL; m = m->next)
		if (m->fn(db, m->arg, m->now) != MCA_OK)
			return false;
	return true;
}

/* Each member under its own savepoint, so that one failing undoes only
 * its own changes.  false: the transaction itself is gone. */
static bool
batch_run_savepoints(struct db *db, struct db_batch_member *first)
{
	struct db_batch_member *m;
	bool alive = true;

	for (m = first; m != NULL && alive; m = m->next)
		alive = member_run(db, m);
	return alive;
}

static void
batch_fail(struct db_batch_member *first, enum mca_err rc)
{
	for (struct db_batch_member *m = first; m != NULL; m = m->next)
		if (m->rc == MCA_OK)
			member_fail(m, rc);
}

/*
 * Runs the batch from first to the end of the list as one transaction.
 * When a member fails in the plain run, everything is rolled back (no
 * one has been answered) and the whole batch runs again, each member
 * under a savepoint, in a new transaction: the outcome is the one the
 * savepoint run alone gives on the database as it is then.
 */
static void
batch_run(struct db *db, struct db_batch_member *first)
{
	enum mca_err rc;

	db_lock(db);
	if ((rc = db_tx_begin(db)) != MCA_OK) {
		batch_fail(first, rc);
		goto out;
	}
	if (!batch_run_plain(db, first)) {
		db_tx_rollback(db);
		mca_err_clear();
		if ((rc = db_tx_begin(db)) != MCA_OK) {
			batch_fail(first, rc);
			goto out;
		}
		if (!batch_run_savepoints(db, first)) {
			/* An error that ended the transaction undid every member. */
			rc = mca_err_set(MCA_ERR_DB, "group commit: the transaction was rolled back");
			db_tx_rollback(db);
			batch_fail(first, rc);
			goto out;
		}
	}
	if ((rc = db_tx_commit(db)) != MCA_OK)
		batch_fail(first, rc);
out:
	db_unlock(db);
}

enum mca_err
db_batch_write(struct db *db, db_batch_fn fn, void *arg, int64_t now)
{
	struct db_batch_member me = { .fn = fn, .arg = arg, .now = now, .rc = MCA_OK };
	struct db_batch_member *batch, *m, *next;

	pthread_mutex_lock(&db->batch_lock);
	if (db->batch_tail != NULL)
		db->batch_tail->next = &me;
	else
		db->batch_head = &me;
	db->batch_tail = &me;
	while (!me.done) {
		if (db->batch_leader) {
			pthread_cond_wait(&db->batch_cond, &db->batch_lock);
			continue;
		}
		/* Lead: take everything queued, commit it, hand out results. */
		db->batch_leader = true;
		batch = db->batch_head;
		db->batch_head = db->batch_tail = NULL;
		pthread_mutex_unlock(&db->batch_lock);
		batch_run(db, batch);
		pthread_mutex_lock(&db->batch_lock);
		for (m = batch; m != NULL; m = next) {
			next = m->next;
			m->next = NULL;
			m->done = true;		/* m may be gone once the lock drops */
		}
		db->batch_leader = false;
		pthread_cond_broadcast(&db->batch_cond);
	}
	pthread_mutex_unlock(&db->batch_lock);
	if (me.rc != MCA_OK)
		return mca_err_set(me.rc, "%s", me.detail);
	return MCA_OK;
}
