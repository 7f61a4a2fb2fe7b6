/*
 * Responses.  Internal errors become a public (status, code) pair here
 * and nowhere else; 5xx details stay in the log (smallstep errs/ idea).
 */
#include "api/api.h"
#include "api/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

/* RFC 9110 10.2.3: how long a 429 or 503 client should wait. */
static bool
reply_retry_after(const struct api_request *r, struct MHD_Response *resp)
{
	char secs[16];

	if (r->retry_after == 0)
		return true;
	snprintf(secs, sizeof(secs), "%u", r->retry_after);
	return MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs) == MHD_YES;
}

enum MHD_Result
api_reply_bytes(struct api_request *r, unsigned status, const char *content_type,
    const void *data, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->replied)
		return MHD_YES;
	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_NO ||
	    MHD_add_response_header(resp, "Cache-Control", "no-store") == MHD_NO ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_NO ||
	    MHD_add_response_header(resp, "X-Request-Id", r->id) == MHD_NO ||
	    (r->allow[0] != '\0' && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) == MHD_NO) ||
	    !reply_retry_after(r, resp)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (r->deferred) {
		/* On a worker (workers.c): queued once MHD resumes the connection. */
		r->pending = resp;
		ret = MHD_YES;
	} else {
		ret = MHD_queue_response(r->conn, status, resp);
		MHD_destroy_response(resp);
	}
	r->replied = true;
	r->status = status;
	return ret;
}

enum MHD_Result
api_reply_json(struct api_request *r, unsigned status, json_t *obj)
{
	char *text;
	enum MHD_Result ret;

	if (obj == NULL) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}";

		mca_log(MCA_LOG_ERROR, "cannot build JSON reply", "id", r->id, (const char *)NULL);
		return api_reply_bytes(r, 500, "application/json", oom, sizeof(oom) - 1);
	}
	text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (text == NULL)
		return api_reply_json(r, status, NULL);
	ret = api_reply_bytes(r, status, "application/json", text, strlen(text));
	/* Replies may carry a token once: do not leave it in freed memory. */
	mca_wipe(text, strlen(text));
	free(text);
	return ret;
}

enum MHD_Result
api_reply_error(struct api_request *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_metrics_refusal(code);
	r->error_code = code;
	return api_reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* Public face of each internal error.  No default: a new code must be
 * placed here deliberately. */
static void
err_public(enum mca_err e, unsigned *status, const char **code)
{
	*status = 500;
	*code = "internal";
	switch (e) {
	case MCA_ERR_INVALID:
	case MCA_ERR_TOOBIG:
	case MCA_ERR_PARSE:
	case MCA_ERR_NAME:
	case MCA_ERR_CERT_PARSE:
		*status = 400; *code = "invalid_argument"; break;
	case MCA_ERR_KEY_TYPE:
		*status = 400; *code = "key_type_not_allowed"; break;
	case MCA_ERR_WEAK_KEY:
		*status = 400; *code = "weak_key"; break;
	case MCA_ERR_CSR_PARSE:
		*status = 400; *code = "csr_invalid"; break;
	case MCA_ERR_CSR_SIGNATURE:
		*status = 400; *code = "csr_signature_invalid"; break;
	case MCA_ERR_SPIFFE_ID:
		*status = 400; *code = "invalid_spiffe_id"; break;
	case MCA_ERR_TTL:
		*status = 400; *code = "invalid_ttl"; break;
	case MCA_ERR_AUTH:
		*status = 401; *code = "unauthenticated"; break;
	case MCA_ERR_CERT_EXPIRED:
		*status = 401; *code = "certificate_expired"; break;
	case MCA_ERR_CERT_REVOKED:
		*status = 401; *code = "certificate_revoked"; break;
	case MCA_ERR_UNKNOWN_ISSUER:
		*status = 401; *code = "unknown_issuer"; break;
	case MCA_ERR_TOKEN_INVALID:
		*status = 401; *code = "token_invalid"; break;
	case MCA_ERR_TOKEN_USED:
		*status = 401; *code = "token_used"; break;
	case MCA_ERR_TOKEN_EXPIRED:
		*status = 401; *code = "token_expired"; break;
	case MCA_ERR_FORBIDDEN:
		*status = 403; *code = "forbidden"; break;
	case MCA_ERR_SAN_NOT_ALLOWED:
		*status = 403; *code = "san_not_allowed"; break;
	case MCA_ERR_DISABLED:
		*status = 403; *code = "service_disabled"; break;
	case MCA_ERR_NOT_FOUND:
		*status = 404; *code = "not_found"; break;
	case MCA_ERR_EXISTS:
		*status = 409; *code = "already_exists"; break;
	case MCA_ERR_CONFLICT:
		*status = 409; *code = "conflict"; break;
	case MCA_ERR_DB_UNAVAILABLE:
		*status = 503; *code = "database_unavailable"; break;
	case MCA_ERR_RATE_LIMITED:
		*status = 429; *code = "rate_limited"; break;
	case MCA_ERR_DB:
	case MCA_ERR_DB_SCHEMA:
		*status = 503; *code = "unavailable"; break;
	case MCA_ERR_SIGNER_UNAVAILABLE:
		*status = 503; *code = "signer_unavailable"; break;
	case MCA_OK:
	case MCA_ERR_NOMEM:
	case MCA_ERR_IO:
	case MCA_ERR_CONFIG:
	case MCA_ERR_CRYPTO:
	case MCA_ERR_SIGN:
	case MCA_ERR_PASSPHRASE:
	case MCA_ERR_HTTP:
	case MCA_ERR_SERVER:
	case MCA_ERR_FINGERPRINT:
	case MCA_ERR_STATE_EXISTS:
	case MCA_ERR_MAX:
		break;
	}
}

void
api_err_public(enum mca_err e, unsigned *status, const char **code)
{
	err_public(e, status, code);
}

enum MHD_Result
api_reply_err(struct api_request *r, enum mca_err e)
{
	const char *code, *detail = mca_err_detail();
	unsigned status;

	err_public(e, &status, &code);
	if (e == MCA_ERR_TOKEN_INVALID || e == MCA_ERR_TOKEN_USED || e == MCA_ERR_TOKEN_EXPIRED)
		api_ratelimit_charge(r->ctx->ratelimit, api_peer_addr(r), mca_monotonic_us());
	if (e == MCA_ERR_DB_UNAVAILABLE) {
		/* Not the generic 5xx sentence: the operator's dashboard and the
		 * client both need to know it is the database, and which way. */
		mca_log(MCA_LOG_ERROR, "request failed", "id", r->id, "error", mca_errname(e),
		    "detail", detail, (const char *)NULL);
		r->retry_after = API_DB_RETRY_AFTER;
		return api_reply_error(r, status, code, "the database cannot record now (%s); "
		    "nothing was issued or changed, retry later (request %s)",
		    db_fault_text(db_fault_last()), r->id);
	}
	if (status >= 500) {
		mca_log(MCA_LOG_ERROR, "request failed", "id", r->id, "error", mca_errname(e),
		    "detail", detail, (const char *)NULL);
		if (e == MCA_ERR_SIGNER_UNAVAILABLE)
			return api_reply_error(r, status, code, "the CA's signer process is not "
			    "running; nothing was issued (request %s)", r->id);
		if (status == 503)
			return api_reply_error(r, status, code,
			    "the CA cannot record certificates right now; nothing was issued (request %s)", r->id);
		return api_reply_error(r, status, code, "internal error (request %s)", r->id);
	}
	if (detail[0] == '\0')
		return api_reply_error(r, status, code, "%s", mca_strerror(e));
	return api_reply_error(r, status, code, "%s: %s", mca_strerror(e), detail);
}

const struct sockaddr *
api_peer_addr(const struct api_request *r)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci != NULL ? ci->client_addr : NULL;
}

bool
api_ratelimit_refuse(struct api_request *r, enum MHD_Result *ret)
{
	unsigned retry;

	if (api_ratelimit_allow(r->ctx->ratelimit, api_peer_addr(r), mca_monotonic_us(), &retry))
		return false;
	api_metrics_rate_limited();
	r->retry_after = retry;
	mca_log(MCA_LOG_WARN, "token presentation rate-limited", "id", r->id, (const char *)NULL);
	*ret = api_reply_err(r, mca_err_set(MCA_ERR_RATE_LIMITED, "RFC 6585 4: failed "
	    "token presentations; retry in %u s", retry));
	return true;
}
