/*
 * Read-only database connections for the hot reads of a request: the
 * client certificate's record (every authenticated request), the service
 * and the token of an enrollment or renewal.
 *
 * The writing connection (ctx->db) is shared under one lock, and its
 * group commit holds that lock through the commit's fsync (db/batch.c):
 * a read queued there waited for the disk.  SQLite in WAL mode lets
 * other connections read the last committed state while a commit runs,
 * so each thread reads through a connection of its own slot (a few per
 * CPU; threads beyond that share them), each with its own lock and
 * statement cache.  A read sees every commit that returned before it
 * started: a certificate revoked by a finished request is seen revoked.
 *
 * Listings, and the counts of GET /v1/status and of /metrics, get a
 * connection of their own (api_db_lister): with 10 million stored
 * certificates a filter that matches little walks an index for seconds,
 * and so do the counts; on a shared connection every request behind its
 * lock waited as long (tests/bench/README.md, "Scale").
 */
#include "api/api.h"

#include <stdatomic.h>

#define READERS_PER_CPU	2

enum mca_err
api_readers_open(struct api_ctx *ctx, const char *path)
{
	unsigned n = api_per_cpu(READERS_PER_CPU, API_DB_READERS_MAX);
	enum mca_err rc;

	if ((rc = db_open_readonly(path, &ctx->lister)) != MCA_OK)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		if ((rc = db_open_readonly(path, &ctx->readers[i])) != MCA_OK) {
			api_readers_close(ctx);
			return rc;
		}
		ctx->nreaders = i + 1;
	}
	return MCA_OK;
}

void
api_readers_close(struct api_ctx *ctx)
{
	for (unsigned i = 0; i < ctx->nreaders; i++) {
		db_close(ctx->readers[i]);
		ctx->readers[i] = NULL;
	}
	ctx->nreaders = 0;
	db_close(ctx->lister);
	ctx->lister = NULL;
}

struct db *
api_db_lister(struct api_ctx *ctx)
{
	return ctx->lister != NULL ? ctx->lister : ctx->db;
}

struct db *
api_db_reader(struct api_ctx *ctx)
{
	static _Thread_local unsigned slot;	/* 0: none yet; else index + 1 */

	if (ctx->nreaders == 0)
		return ctx->db;
	if (slot == 0)
		slot = atomic_fetch_add(&ctx->reader_next, 1) % API_DB_READERS_MAX + 1;
	return ctx->readers[(slot - 1) % ctx->nreaders];
}
