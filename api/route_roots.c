/* GET /v1/roots and /v1/roots.pem: the trust bundle, for anyone. */
#include "api/api.h"

enum MHD_Result
route_roots(struct api_request *r, const char *arg)
{
	const struct ca_cert *root = ca_signer_root(r->ctx->signer);
	const struct mca_buf *pem = ca_cert_pem(root);
	char fp[CA_FINGERPRINT_HEX_LEN];

	(void)arg;
	ca_cert_fingerprint(root, fp);
	return api_reply_json(r, 200, json_pack("{s:[s%], s:[s]}",
	    "roots", (const char *)pem->data, pem->len,
	    "fingerprints", fp));
}

enum MHD_Result
route_roots_pem(struct api_request *r, const char *arg)
{
	const struct mca_buf *pem = ca_signer_roots_pem(r->ctx->signer);

	(void)arg;
	return api_reply_bytes(r, 200, "application/x-pem-file", pem->data, pem->len);
}
