/*
 * The OCSP responder (RFC 6960, HTTP binding of appendix A), for anyone:
 *   POST /v1/ocsp            body: DER OCSPRequest, application/ocsp-request
 *   GET  /v1/ocsp/{base64}   the DER request, base64 then URL-encoded
 * Answer: application/ocsp-response.  good for a certificate this CA
 * issued and has not revoked, revoked with time and reason, unknown for a
 * serial this CA never issued or a CertID naming another issuer.  A
 * request that cannot be parsed gets an unsigned malformedRequest
 * response (RFC 6960 4.2.1), a failure here an internalError one.
 *
 * Requests without a nonce get a cached response while it is fresh (see
 * revocation.c); with a nonce (RFC 8954), a fresh signature each time.
 */
#include "api/api.h"
#include "api/metrics.h"

#include <string.h>
#include <strings.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define CT_OCSP_REQ	"application/ocsp-request"
#define CT_OCSP_RESP	"application/ocsp-response"

static enum MHD_Result
ocsp_reply(struct api_request *r, const struct mca_buf *der)
{
	return api_reply_bytes(r, 200, CT_OCSP_RESP, der->data, der->len);
}

/* An unsigned error response; 500 JSON if even that cannot be made. */
static enum MHD_Result
ocsp_error(struct api_request *r, enum ca_ocsp_error status, const char *why)
{
	struct mca_buf out;
	enum MHD_Result ret;

	mca_log(status == CA_OCSP_MALFORMED_REQUEST ? MCA_LOG_INFO : MCA_LOG_ERROR, "OCSP request refused",
	    "id", r->id, "why", why, "detail", mca_err_detail(), (const char *)NULL);
	mca_buf_init(&out, 0, false);
	api_metrics_ocsp(API_OCSP_ERROR, false);
	if (ca_ocsp_error_response(status, &out) != MCA_OK)
		ret = api_reply_error(r, 500, "internal", "internal error");
	else
		ret = ocsp_reply(r, &out);
	mca_buf_free(&out);
	return ret;
}

/* The certificate's status as this CA recorded it. */
static enum mca_err
ocsp_status(struct api_request *r, const char *serial, bool ours, struct ca_ocsp_answer *a)
{
	struct db_cert c = { 0 };
	enum mca_err rc;

	a->status = CA_OCSP_UNKNOWN;
	a->reason = -1;
	if (!ours)
		return MCA_OK;
	if ((rc = db_cert_get(r->ctx->db, serial, mca_now(), &c)) == MCA_ERR_NOT_FOUND)
		return MCA_OK;
	if (rc != MCA_OK)
		return rc;
	if (c.status == DB_CERT_REVOKED) {
		a->status = CA_OCSP_REVOKED;
		a->revoked_at = c.revoked_at;
		/* As in the CRL: unspecified is said by leaving the reason out. */
		a->reason = c.revocation_reason > 0 ? c.revocation_reason : -1;
	} else {
		a->status = CA_OCSP_GOOD;	/* expired or not: RFC 6960 2.2 */
	}
	db_cert_clear(&c);
	return MCA_OK;
}

static enum MHD_Result
ocsp_answer(struct api_request *r, const unsigned char *der, size_t len)
{
	struct ca_ocsp_req *req = NULL;
	struct ca_ocsp_answer a = { 0 };
	struct mca_buf out;
	unsigned char key[API_OCSP_KEY_LEN];
	char serial[CA_SERIAL_HEX_MAX];
	int64_t now = mca_now(), validity = api_ocsp_validity(r->ctx);
	bool ours = false, cacheable;
	uint64_t gen;
	int served = API_OCSP_UNKNOWN;
	enum MHD_Result ret;

	mca_buf_init(&out, 0, false);
	if (ca_ocsp_req_parse(der, len, &req) != MCA_OK ||
	    ca_ocsp_req_serial(req, r->ctx->signer, serial, &ours) != MCA_OK) {
		ret = ocsp_error(r, CA_OCSP_MALFORMED_REQUEST, "malformed request");
		goto out;
	}
	cacheable = !ca_ocsp_req_has_nonce(req) &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, key) == 0;
	if (cacheable && api_ocsp_cache_get(r->ctx, key, now, &out, &served)) {
		api_metrics_ocsp((enum api_ocsp_served)served, true);
		ret = ocsp_reply(r, &out);
		goto out;
	}
	gen = api_ocsp_cache_gen(r->ctx);
	if (ocsp_status(r, serial, ours, &a) != MCA_OK) {
		ret = ocsp_error(r, CA_OCSP_TRY_LATER, "database");
		goto out;
	}
	a.this_update = now;
	a.next_update = now + validity;
	if (ca_ocsp_respond(r->ctx->signer, req, &a, now, &out) != MCA_OK) {
		ret = ocsp_error(r, CA_OCSP_INTERNAL_ERROR, "signing");
		goto out;
	}
	served = a.status == CA_OCSP_GOOD ? API_OCSP_GOOD :
	    a.status == CA_OCSP_REVOKED ? API_OCSP_REVOKED : API_OCSP_UNKNOWN;
	if (cacheable)
		api_ocsp_cache_put(r->ctx, key, serial, gen, now + validity / 2, &out, served);
	api_metrics_ocsp((enum api_ocsp_served)served, false);
	ret = ocsp_reply(r, &out);
out:
	mca_buf_free(&out);
	ca_ocsp_req_free(req);
	return ret;
}

static bool
content_type_is(struct api_request *r, const char *want)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n = strlen(want);

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

enum MHD_Result
route_ocsp_post(struct api_request *r, const char *arg)
{
	(void)arg;
	if (!content_type_is(r, CT_OCSP_REQ))
		return api_reply_error(r, 415, "unsupported_media_type",
		    "RFC 6960 A.1: POST an OCSP request as Content-Type: " CT_OCSP_REQ);
	if (r->body.len > CA_OCSP_MAX_REQUEST)
		return api_reply_error(r, 413, "body_too_large", "an OCSP request is at most %d bytes",
		    CA_OCSP_MAX_REQUEST);
	return ocsp_answer(r, r->body.data, r->body.len);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * RFC 6960 A.1: url-encoding(base64(DER)).  The server may already have
 * decoded %XX (base64 holds no '%', so decoding twice is harmless); the
 * URL-safe alphabet and missing padding are accepted too, as clients in
 * the wild send them.
 */
static enum mca_err
get_decode(const char *text, gnutls_datum_t *der)
{
	char b64[CA_OCSP_MAX_REQUEST];
	size_t n = 0;
	gnutls_datum_t in;

	for (const char *p = text; *p != '\0'; p++) {
		char c = *p;
		int hi, lo;

		if (c == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
			c = (char)(hi << 4 | lo);
			p += 2;
		}
		c = c == '-' ? '+' : c == '_' ? '/' : c;
		if (n + 4 >= sizeof(b64))
			return mca_err_set(MCA_ERR_TOOBIG, "OCSP GET request too long");
		b64[n++] = c;
	}
	while (n % 4 != 0)
		b64[n++] = '=';
	in.data = (unsigned char *)b64;
	in.size = (unsigned)n;
	if (n == 0 || gnutls_base64_decode2(&in, der) < 0)
		return mca_err_set(MCA_ERR_PARSE, "RFC 6960 A.1: the path is not base64");
	return MCA_OK;
}

enum MHD_Result
route_ocsp_get(struct api_request *r, const char *arg)
{
	gnutls_datum_t der = { NULL, 0 };
	enum MHD_Result ret;

	/* A path that filled the request's buffer may have been cut. */
	if (strlen(r->path) + 1 >= sizeof(r->path) || get_decode(arg, &der) != MCA_OK)
		return ocsp_error(r, CA_OCSP_MALFORMED_REQUEST, "GET path");
	ret = ocsp_answer(r, der.data, der.size);
	gnutls_free(der.data);
	return ret;
}
