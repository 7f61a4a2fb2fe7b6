/*
 * What meshcad answers, read by the CLI and the agent: the HTTP body as a
 * JSON object or an error, the roots of GET /v1/roots, and the certificate
 * of an enrollment or renewal.  Pure functions over jansson and ca/ (no
 * libcurl), so that tests/fuzz/answer_fuzz.c drives exactly this code
 * with hostile answers: a compromised or impostor server must not crash
 * the agent nor get a certificate past it that does not verify.
 */
#include "cli/cli.h"

#include <string.h>

#include <gnutls/x509.h>

const char *
cli_json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* The error object of a refusal, as "message (code, HTTP status)". */
static enum mca_err
answer_error(const unsigned char *body, size_t len, long status, const char *url)
{
	json_t *root, *err;
	const char *msg, *code;
	enum mca_err rc;

	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	err = json_object_get(root, "error");
	msg = cli_json_str(err, "message");
	code = cli_json_str(err, "code");
	if (msg != NULL && code != NULL)
		rc = mca_err_set(MCA_ERR_SERVER, "%.300s (%.64s, HTTP %ld)", msg, code, status);
	else
		rc = mca_err_set(MCA_ERR_SERVER, "%s: server answered HTTP %ld without an error "
		    "object", url, status);
	json_decref(root);
	return rc;
}

enum mca_err
cli_answer_parse(const unsigned char *body, size_t len, long status, const char *url,
    json_t **resp)
{
	json_error_t jerr;
	json_t *v;

	*resp = NULL;
	if (status < 200 || status > 299)
		return answer_error(body, len, status, url);
	v = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return mca_err_set(MCA_ERR_PARSE, "%s: answer (HTTP %ld) is not JSON: %s", url,
		    status, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return mca_err_set(MCA_ERR_PARSE, "%s: answer (HTTP %ld) is not a JSON object", url,
		    status);
	}
	*resp = v;
	return MCA_OK;
}

/* ---- GET /v1/roots ------------------------------------------------------ */

static enum mca_err
roots_array(const json_t *resp, const json_t **roots)
{
	*roots = json_object_get(resp, "roots");
	if (!json_is_array(*roots) || json_array_size(*roots) == 0)
		return mca_err_set(MCA_ERR_PARSE, "the /v1/roots answer has no 'roots' array");
	if (json_array_size(*roots) > CLI_ROOTS_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "the /v1/roots answer lists %zu roots (at most "
		    "%d)", json_array_size(*roots), CLI_ROOTS_MAX);
	return MCA_OK;
}

enum mca_err
cli_roots_pick(const json_t *resp, const char *fp, struct mca_buf *out)
{
	char have[CA_FINGERPRINT_HEX_LEN];
	const json_t *roots, *v;
	struct ca_cert *c;
	size_t i;
	enum mca_err rc;

	if ((rc = roots_array(resp, &roots)) != MCA_OK)
		return rc;
	json_array_foreach(roots, i, v) {
		if (!json_is_string(v) || ca_cert_parse((const unsigned char *)json_string_value(v),
		    json_string_length(v), &c) != MCA_OK)
			continue;
		ca_cert_fingerprint(c, have);	/* computed here, never the server's claim */
		if (ca_fingerprint_equal(fp, have)) {
			rc = mca_buf_set(out, ca_cert_pem(c)->data, ca_cert_pem(c)->len);
			ca_cert_free(c);
			return rc;
		}
		ca_cert_free(c);
	}
	return mca_err_set(MCA_ERR_FINGERPRINT, "none of the %zu root certificate(s) the server "
	    "offers has SHA-256 fingerprint %.100s; refusing to trust it", json_array_size(roots), fp);
}

enum mca_err
cli_roots_all(const json_t *resp, struct mca_buf *out)
{
	const json_t *roots, *v;
	struct ca_cert *c;
	size_t i;
	enum mca_err rc;

	mca_buf_reset(out);
	if ((rc = roots_array(resp, &roots)) != MCA_OK)
		return rc;
	json_array_foreach(roots, i, v) {
		if (!json_is_string(v) || ca_cert_parse((const unsigned char *)json_string_value(v),
		    json_string_length(v), &c) != MCA_OK)
			return mca_err_set(MCA_ERR_CERT_PARSE, "/v1/roots: root %zu is not a "
			    "certificate", i);
		rc = mca_buf_append(out, ca_cert_pem(c)->data, ca_cert_pem(c)->len);
		ca_cert_free(c);
		if (rc != MCA_OK)
			return rc;
	}
	return MCA_OK;
}

/* ---- POST /v1/enroll, /v1/renew ------------------------------------------ */

void
cli_issued_clear(struct cli_issued *r)
{
	ca_cert_free(r->leaf);
	ca_cert_free(r->chain);
	json_decref(r->resp);
	memset(r, 0, sizeof(*r));
}

/* RFC 5280 6.1 path validation of leaf and chain up to one of roots. */
static enum mca_err
issued_verify(const struct cli_issued *r, const struct mca_buf *roots_pem)
{
	const struct mca_buf *der[2] = { ca_cert_der(r->leaf), ca_cert_der(r->chain) };
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_x509_crt_t crts[2] = { NULL, NULL };
	gnutls_datum_t roots = { roots_pem->data, (unsigned)roots_pem->len };
	unsigned int status = 0;
	enum mca_err rc = mca_err_set(MCA_ERR_CRYPTO, "cannot set up certificate verification");

	if (gnutls_x509_trust_list_init(&tl, 0) < 0 ||
	    gnutls_x509_trust_list_add_trust_mem(tl, &roots, NULL, GNUTLS_X509_FMT_PEM, 0, 0) <= 0)
		goto out;
	for (int i = 0; i < 2; i++) {
		gnutls_datum_t d = { der[i]->data, (unsigned)der[i]->len };

		if (gnutls_x509_crt_init(&crts[i]) < 0 ||
		    gnutls_x509_crt_import(crts[i], &d, GNUTLS_X509_FMT_DER) < 0)
			goto out;
	}
	if (gnutls_x509_trust_list_verify_crt2(tl, crts, 2, NULL, 0,
	    GNUTLS_VERIFY_DISABLE_CRL_CHECKS, &status, NULL) < 0 || status != 0) {
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 6.1: the issued certificate does not "
		    "verify up to the trusted roots (status 0x%x)", status);
		goto out;
	}
	rc = MCA_OK;
out:
	for (int i = 0; i < 2; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	return rc;
}

enum mca_err
cli_issued_parse(struct cli_issued *r, const struct mca_buf *roots_pem)
{
	const char *leaf = cli_json_str(r->resp, "certificate");
	const char *chain = cli_json_str(r->resp, "chain");
	const char *id = cli_json_str(r->resp, "spiffe_id");

	if (leaf == NULL || chain == NULL || id == NULL || cli_json_str(r->resp, "serial") == NULL)
		return mca_err_set(MCA_ERR_PARSE, "the answer lacks certificate, chain, serial "
		    "or spiffe_id");
	if (ca_cert_parse((const unsigned char *)leaf, strlen(leaf), &r->leaf) != MCA_OK ||
	    ca_cert_parse((const unsigned char *)chain, strlen(chain), &r->chain) != MCA_OK)
		return mca_err_set(MCA_ERR_CERT_PARSE, "the issued certificate or its chain "
		    "cannot be parsed: %s", mca_err_detail());
	if (ca_cert_uri(r->leaf) == NULL || strcmp(ca_cert_uri(r->leaf), id) != 0)
		return mca_err_set(MCA_ERR_CERT_PARSE, "the issued certificate's URI SAN is not "
		    "the SPIFFE ID %.200s the server announced", id);
	return issued_verify(r, roots_pem);
}
