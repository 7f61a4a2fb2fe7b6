/*
 * What relying parties fetch to check revocation, for anyone:
 *   GET /v1/crl              the current CRL, DER (RFC 5280 5; the
 *                            cRLDistributionPoints URL, 4.2.1.13)
 *   GET /v1/crl.pem          the same, PEM
 *   GET /v1/intermediate.crt the issuing CA, DER (the caIssuers URL of
 *                            authorityInfoAccess, 4.2.2.1)
 * The CRL is served from memory (revocation.c), never built per request.
 */
#include "api/api.h"

/* RFC 5280 4.2.1.13 and RFC 2585 4: the media types of the two files. */
#define CT_CRL	"application/pkix-crl"
#define CT_CERT	"application/pkix-cert"

static enum MHD_Result
crl_reply(struct api_request *r, bool pem)
{
	const struct api_crl *crl = api_crl_get(r->ctx);
	enum MHD_Result ret;

	if (crl == NULL)
		return api_reply_error(r, 503, "unavailable", "no CRL has been built yet");
	ret = pem ? api_reply_bytes(r, 200, "application/x-pem-file", crl->pem.data, crl->pem.len) :
	    api_reply_bytes(r, 200, CT_CRL, crl->der.data, crl->der.len);
	api_crl_put(r->ctx, crl);
	return ret;
}

enum MHD_Result
route_crl(struct api_request *r, const char *arg)
{
	(void)arg;
	return crl_reply(r, false);
}

enum MHD_Result
route_crl_pem(struct api_request *r, const char *arg)
{
	(void)arg;
	return crl_reply(r, true);
}

enum MHD_Result
route_intermediate(struct api_request *r, const char *arg)
{
	const struct mca_buf *der = ca_cert_der(ca_signer_cert(r->ctx->signer));

	(void)arg;
	return api_reply_bytes(r, 200, CT_CERT, der->data, der->len);
}
