/*
 * The audit log, meshcad's side:
 *   - refusals: one helper records a refused request (the public error
 *     code and, for 4xx, the rule that refused it; never the token or CSR);
 *   - checkpoints: a thread signs (seq, head hash, time) of the chain
 *     with the intermediate key every audit_checkpoint_interval (default
 *     5 min) when the head moved, and once more at a clean shutdown,
 *     stores it and logs it as one line, so a copy outside the database
 *     proves what the chain held;
 *   - GET /v1/audit and GET /v1/audit/checkpoints/latest.
 */
#include "api/api.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/common/config.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define CHECKPOINT_INTERVAL_DEFAULT	300
#define CHECKPOINT_INTERVAL_MIN		1	/* seconds: tests go this low */
#define CHECKPOINT_INTERVAL_MAX		(7 * 86400)
#define REFUSAL_REASON_MAX		512

struct api_audit {
	struct api_ctx	*ctx;
	int64_t		 interval;	/* seconds */
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;		/* CLOCK_MONOTONIC */
	pthread_t	 thread;
	bool		 running;
	bool		 stop;
};

/* ---- entries made by handlers ----------------------------------------- */

const char *
api_audit_actor(const struct api_request *r)
{
	return r->peer.verified && r->peer.spiffe_id[0] != '\0' ? r->peer.spiffe_id :
	    "unauthenticated";
}

char *
api_audit_detail(json_t *obj)
{
	char *text;

	if (obj == NULL)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(obj);
	return text;
}

char *
api_audit_cert_detail(const struct db_cert *rec, const char *service)
{
	json_t *o = json_pack("{s:s?, s:s?, s:o, s:o, s:o}",
	    "service", service,
	    "spiffe_id", rec->spiffe_id,
	    "not_after", api_json_time(rec->not_after),
	    "dns_names", api_json_strings(rec->dns_names, rec->ndns),
	    "ip_addresses", api_json_strings(rec->ip_addresses, rec->nips));

	if (o != NULL && rec->renewed_from != NULL &&
	    json_object_set_new(o, "renewed_from", json_string(rec->renewed_from)) != 0) {
		json_decref(o);
		o = NULL;
	}
	return api_audit_detail(o);
}

char *
api_audit_service_detail(const struct db_service *svc)
{
	json_t *o = api_service_json(svc);

	if (o != NULL) {
		(void)json_object_del(o, "name");
		(void)json_object_del(o, "created_at");
		(void)json_object_del(o, "updated_at");
	}
	return api_audit_detail(o);
}

void
api_audit_refusal(struct api_request *r, const char *actor, const char *action,
    const char *subject, enum mca_err rc)
{
	struct db_audit a = { actor != NULL ? actor : api_audit_actor(r), action, subject, false,
	    NULL };
	const char *code;
	unsigned status;
	char reason[REFUSAL_REASON_MAX];
	char *detail;

	api_err_public(rc, &status, &code);
	/* The rule and value that refused (4xx details never carry secrets:
	 * ca/common/err.h); 5xx details are internal and stay in the log. */
	(void)snprintf(reason, sizeof(reason), "%s", status < 500 ? mca_err_detail() : "");
	detail = api_audit_detail(reason[0] != '\0' ?
	    json_pack("{s:s, s:s}", "error", code, "reason", reason) :
	    json_pack("{s:s}", "error", code));
	a.detail = detail;
	if (detail == NULL || db_audit_append(r->ctx->db, &a, mca_now()) != MCA_OK)
		mca_log(MCA_LOG_ERROR, "cannot audit a refusal", "id", r->id, "action", action,
		    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
	free(detail);
}

/* ---- checkpoints ---------------------------------------------------------- */

static void
checkpoint_log(const struct db_audit_checkpoint *cp)
{
	gnutls_datum_t sig = { cp->signature, (unsigned)cp->signature_len }, b64 = { NULL, 0 };
	char head[2 * DB_AUDIT_HASH_LEN + 1], at[MCA_TIME_LEN], seq[24];

	mca_hex_encode(cp->head_hash, DB_AUDIT_HASH_LEN, head);
	mca_time_format(cp->at, at);
	(void)snprintf(seq, sizeof(seq), "%lld", (long long)cp->seq);
	if (gnutls_base64_encode2(&sig, &b64) < 0) {
		mca_log(MCA_LOG_ERROR, "audit checkpoint: cannot encode the signature", (const char *)NULL);
		return;
	}
	/* One line that `meshca audit verify --checkpoint FILE` reads back. */
	mca_logf(MCA_LOG_INFO, "audit checkpoint seq=%s head=%s at=%s signature=%.*s",
	    seq, head, at, (int)b64.size, (const char *)b64.data);
	gnutls_free(b64.data);
}

/* Signs and stores a checkpoint of the head when it moved since the last
 * one (this process's, or any recorded one). */
enum mca_err
api_audit_checkpoint(struct api_ctx *ctx)
{
	struct db_audit_checkpoint cp = { 0 }, last = { 0 };
	struct mca_buf sig = { 0 };
	const struct mca_buf *signer = ca_cert_der(ca_signer_cert(ctx->signer));
	unsigned char tbs[DB_AUDIT_TBS_LEN];
	enum mca_err rc;

	if ((rc = db_audit_head(ctx->db, &cp.seq, cp.head_hash)) != MCA_OK || cp.seq == 0)
		return rc;
	if ((rc = db_audit_checkpoint_latest(ctx->db, &last)) == MCA_OK && last.seq >= cp.seq) {
		db_audit_checkpoint_clear(&last);
		return MCA_OK;		/* the head did not move */
	}
	db_audit_checkpoint_clear(&last);
	if (rc != MCA_OK && rc != MCA_ERR_NOT_FOUND)
		return rc;
	cp.at = mca_now();
	db_audit_checkpoint_tbs(&cp, tbs);
	if ((rc = ca_signer_sign(ctx->signer, tbs, sizeof(tbs), &sig)) != MCA_OK)
		return rc;
	cp.signature = sig.data;
	cp.signature_len = sig.len;
	cp.signer = signer->data;
	cp.signer_len = signer->len;
	rc = db_audit_checkpoint_insert(ctx->db, &cp);
	if (rc == MCA_ERR_EXISTS)	/* another meshcad on this database got there */
		rc = MCA_OK;
	else if (rc == MCA_OK)
		checkpoint_log(&cp);
	mca_buf_free(&sig);
	return rc;
}

static void
checkpoint_try(struct api_audit *au, const char *why)
{
	enum mca_err rc;

	if ((rc = api_audit_checkpoint(au->ctx)) != MCA_OK)
		mca_log(MCA_LOG_ERROR, "audit checkpoint failed", "when", why,
		    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
}

static void *
audit_thread(void *arg)
{
	struct api_audit *au = arg;
	struct timespec ts;
	int64_t until;

	if (pthread_mutex_lock(&au->lock) != 0)
		abort();
	while (!au->stop) {
		until = mca_monotonic_us() + au->interval * 1000000;
		ts.tv_sec = (time_t)(until / 1000000);
		ts.tv_nsec = (long)(until % 1000000) * 1000;
		while (!au->stop && pthread_cond_timedwait(&au->wake, &au->lock, &ts) != ETIMEDOUT)
			;
		if (au->stop)
			break;
		(void)pthread_mutex_unlock(&au->lock);
		checkpoint_try(au, "schedule");
		if (pthread_mutex_lock(&au->lock) != 0)
			abort();
	}
	(void)pthread_mutex_unlock(&au->lock);
	return NULL;
}

static enum mca_err
audit_sync_init(struct api_audit *au)
{
	pthread_condattr_t attr;
	int err;

	if (pthread_condattr_init(&attr) != 0)
		return MCA_ERR_NOMEM;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(&au->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (err != 0 || pthread_mutex_init(&au->lock, NULL) != 0)
		return mca_err_set(MCA_ERR_NOMEM, "audit: cannot create the checkpoint thread's lock");
	return MCA_OK;
}

enum mca_err
api_audit_start(struct api_ctx *ctx, const struct mca_config *cfg)
{
	struct api_audit *au;
	enum mca_err rc;
	int err;

	if ((au = calloc(1, sizeof(*au))) == NULL)
		return MCA_ERR_NOMEM;
	au->ctx = ctx;
	if ((rc = mca_config_duration(cfg, "audit_checkpoint_interval", CHECKPOINT_INTERVAL_DEFAULT,
	    &au->interval)) != MCA_OK ||
	    au->interval < CHECKPOINT_INTERVAL_MIN || au->interval > CHECKPOINT_INTERVAL_MAX) {
		free(au);
		return rc != MCA_OK ? rc : mca_err_set(MCA_ERR_CONFIG,
		    "audit_checkpoint_interval must be between 1s and 7d");
	}
	if ((rc = audit_sync_init(au)) != MCA_OK) {
		free(au);
		return rc;
	}
	ctx->audit = au;
	if ((err = pthread_create(&au->thread, NULL, audit_thread, au)) != 0) {
		api_audit_stop(ctx);
		return mca_err_set(MCA_ERR_NOMEM, "audit: cannot start the checkpoint thread: %s",
		    strerror(err));
	}
	au->running = true;
	return MCA_OK;
}

void
api_audit_stop(struct api_ctx *ctx)
{
	struct api_audit *au = ctx->audit;

	if (au == NULL)
		return;
	if (au->running) {
		if (pthread_mutex_lock(&au->lock) != 0)
			abort();
		au->stop = true;
		pthread_cond_signal(&au->wake);
		(void)pthread_mutex_unlock(&au->lock);
		pthread_join(au->thread, NULL);
		/* A clean shutdown seals what this run recorded. */
		checkpoint_try(au, "shutdown");
	}
	pthread_cond_destroy(&au->wake);
	pthread_mutex_destroy(&au->lock);
	free(au);
	ctx->audit = NULL;
}

/* ---- GET /v1/audit ---------------------------------------------------- */

static json_t *
hash_json(const unsigned char h[DB_AUDIT_HASH_LEN])
{
	char hex[2 * DB_AUDIT_HASH_LEN + 1];

	mca_hex_encode(h, DB_AUDIT_HASH_LEN, hex);
	return json_string(hex);
}

/* detail: the parsed object, and detail_text: the exact stored text the
 * hash covers (db.h), so that clients can recompute the chain. */
static json_t *
entry_json(const struct db_audit_entry *e)
{
	json_t *detail = NULL;

	if (e->detail != NULL)
		detail = json_loads(e->detail, JSON_REJECT_DUPLICATES, NULL);
	return json_pack("{s:I, s:o, s:s, s:s, s:s?, s:s, s:o, s:s?, s:o, s:o}",
	    "seq", (json_int_t)e->seq,
	    "at", api_json_time(e->at),
	    "actor", e->actor,
	    "action", e->action,
	    "subject", e->subject,
	    "outcome", e->ok ? "success" : "failure",
	    "detail", detail != NULL ? detail : json_null(),
	    "detail_text", e->detail,
	    "prev_hash", hash_json(e->prev_hash),
	    "hash", hash_json(e->hash));
}

static enum mca_err
query_int(struct api_request *r, const char *key, long long min, long long max, long long *out)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
	char *end;

	if (v == NULL)
		return MCA_OK;
	errno = 0;
	*out = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || *out < min || *out > max)
		return mca_err_set(MCA_ERR_INVALID, "%s must be an integer from %lld to %lld",
		    key, min, max);
	return MCA_OK;
}

static enum mca_err
audit_filter(struct api_request *r, struct db_audit_filter *f)
{
	const char *since = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "since");
	long long after = 0, limit = DB_AUDIT_LIST_DEFAULT;
	enum mca_err rc;

	if (since != NULL && mca_time_parse(since, &f->since) != MCA_OK)
		return mca_err_set(MCA_ERR_INVALID, "since must be an RFC 3339 time "
		    "(2026-01-02T15:04:05Z)");
	if ((rc = query_int(r, "after", 0, INT64_MAX, &after)) != MCA_OK ||
	    (rc = query_int(r, "limit", 1, DB_AUDIT_LIST_MAX, &limit)) != MCA_OK)
		return rc;
	f->after = (int64_t)after;
	f->limit = (size_t)limit;
	return MCA_OK;
}

enum MHD_Result
route_audit_list(struct api_request *r, const char *arg)
{
	struct db_audit_filter f = { 0 };
	struct db_audit_entry *list = NULL;
	size_t n = 0;
	json_t *arr;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = audit_filter(r, &f)) != MCA_OK ||
	    (rc = db_audit_list(api_db_lister(r->ctx), &f, &list, &n)) != MCA_OK)
		return api_reply_err(r, rc);
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		api_json_push(&arr, entry_json(&list[i]));
	/* more: a full page; ask again with after = the last seq. */
	ret = api_reply_json(r, 200, arr ? json_pack("{s:o, s:b}", "entries", arr,
	    "more", n == f.limit) : NULL);
	db_audit_list_free(list, n);
	return ret;
}

static json_t *
checkpoint_json(const struct db_audit_checkpoint *cp)
{
	gnutls_datum_t der = { cp->signer, (unsigned)cp->signer_len }, pem = { NULL, 0 };
	gnutls_datum_t sig = { cp->signature, (unsigned)cp->signature_len }, b64 = { NULL, 0 };
	json_t *o = NULL;

	if (gnutls_pem_base64_encode2("CERTIFICATE", &der, &pem) >= 0 &&
	    gnutls_base64_encode2(&sig, &b64) >= 0)
		o = json_pack("{s:I, s:o, s:o, s:s%, s:s%}",
		    "seq", (json_int_t)cp->seq,
		    "head", hash_json(cp->head_hash),
		    "at", api_json_time(cp->at),
		    "signature", (const char *)b64.data, (size_t)b64.size,
		    "signer", (const char *)pem.data, (size_t)pem.size);
	gnutls_free(pem.data);
	gnutls_free(b64.data);
	return o;
}

enum MHD_Result
route_audit_checkpoint_latest(struct api_request *r, const char *arg)
{
	struct db_audit_checkpoint cp = { 0 };
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = db_audit_checkpoint_latest(r->ctx->db, &cp)) != MCA_OK) {
		if (rc == MCA_ERR_NOT_FOUND)
			return api_reply_error(r, 404, "not_found", "no audit checkpoint yet");
		return api_reply_err(r, rc);
	}
	ret = api_reply_json(r, 200, checkpoint_json(&cp));
	db_audit_checkpoint_clear(&cp);
	return ret;
}
