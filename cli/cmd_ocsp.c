/*
 * `meshca ocsp check CERT [--issuer FILE] [--url URL]`: asks an OCSP
 * responder (RFC 6960) about one certificate, as a relying party would,
 * and prints good / revoked (time, reason) / unknown.
 *
 * The request carries a fresh nonce (RFC 8954) that the answer must echo;
 * the answer must be signed for the issuer (directly, or by a delegated
 * responder certificate it issued: gnutls_ocsp_resp_verify_direct), be
 * about this certificate, and be current.  Exit 0 only for a verified
 * "good".
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define OCSP_CERT_MAX		(256 * 1024)
#define OCSP_RESP_MAX		(64 * 1024)
#define OCSP_URL_MAX		2048
#define OCSP_SKEW		300	/* seconds of clock skew tolerated */

enum { O_ISSUER = 1, O_RESPONDER };

struct ocsp_check {
	const char		*cert_path;
	const char		*issuer_path;
	const char		*url_flag;
	char			 url[OCSP_URL_MAX];
	gnutls_x509_crt_t	 cert;
	gnutls_x509_crt_t	 issuer;
	gnutls_ocsp_req_t	 req;
	gnutls_ocsp_resp_t	 resp;
	unsigned		 status;	/* GNUTLS_OCSP_CERT_* */
	time_t			 this_update, next_update, revoked_at;
	unsigned		 reason;
	char			 serial[CA_SERIAL_HEX_MAX];
};

static void
check_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s ocsp check CERT [--issuer FILE] [--url URL] [--json]\n\n"
	    "Asks an OCSP responder about the certificate in CERT (PEM; the first\n"
	    "certificate of the file) and prints good, revoked (time and reason) or\n"
	    "unknown.  The request carries a nonce; the answer must echo it, be\n"
	    "signed for the issuer, name this certificate and be current.\n\n"
	    "Options:\n"
	    "  --issuer FILE  the issuing CA certificate (PEM); default: the second\n"
	    "                 certificate of CERT (a fullchain.pem)\n"
	    "  --url URL      the responder, e.g. https://ca:8443/v1/ocsp; default: the\n"
	    "                 certificate's authorityInfoAccess OCSP URL, else the\n"
	    "                 configured meshcad URL + /v1/ocsp\n\n"
	    "HTTPS responders are verified against the configured root certificate\n"
	    "(--root-cert) when there is one.  No admin credential needed.\n\n"
	    "Exit status: 0 good; 1 revoked, unknown, or no verified answer; 2 usage.\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
check_parse(struct cli_ctx *ctx, struct ocsp_check *o, int argc, char **argv)
{
	/* --url here is the responder, not the global meshcad URL: getopt
	 * takes the first of two equal names. */
	static const struct option lo[] = {
		{ "issuer", required_argument, NULL, O_ISSUER },
		{ "url",    required_argument, NULL, O_RESPONDER },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_ISSUER)
			o->issuer_path = optarg;
		else if (c == O_RESPONDER)
			o->url_flag = optarg;
		else if ((ret = cli_opt_common(ctx, c, optarg, check_usage)) != CLI_CONTINUE)
			return ret;
	}
	if (argc - optind != 1)
		return cli_usage_error("ocsp check", "expected one CERT file");
	o->cert_path = argv[optind];
	return CLI_CONTINUE;
}

/* ---- inputs ------------------------------------------------------------- */

/* Certificate number idx (0-based) of a PEM file. */
static enum mca_err
cert_load(const char *path, unsigned idx, gnutls_x509_crt_t *out)
{
	struct mca_buf b;
	gnutls_x509_crt_t *list = NULL;
	gnutls_datum_t d;
	unsigned n = 0;
	enum mca_err rc;

	mca_buf_init(&b, OCSP_CERT_MAX, false);
	if ((rc = mca_file_read(path, OCSP_CERT_MAX, &b)) != MCA_OK)
		return rc;
	d = (gnutls_datum_t){ b.data, (unsigned)b.len };
	if (gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM, 0) < 0 &&
	    gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_DER, 0) < 0)
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "%s: no certificate", path);
	else if (idx >= n)
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "%s holds no issuer certificate after the leaf: "
		    "give --issuer", path);
	else {
		*out = list[idx];
		list[idx] = NULL;
	}
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(list[i]);
	gnutls_free(list);
	mca_buf_free(&b);
	return rc;
}

/* The certificate's own AIA OCSP URL (RFC 5280 4.2.2.1), if any. */
static bool
aia_ocsp_url(gnutls_x509_crt_t crt, char *out, size_t n)
{
	gnutls_datum_t d = { NULL, 0 };

	for (unsigned seq = 0; seq < 16; seq++) {
		int ret = gnutls_x509_crt_get_authority_info_access(crt, seq, GNUTLS_IA_OCSP_URI, &d, NULL);

		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			continue;
		if (ret < 0)
			return false;
		snprintf(out, n, "%.*s", (int)d.size, (const char *)d.data);
		gnutls_free(d.data);
		return true;
	}
	return false;
}

static enum mca_err
responder_url(struct cli_ctx *ctx, struct ocsp_check *o)
{
	size_t blen;

	if (o->url_flag != NULL) {
		snprintf(o->url, sizeof(o->url), "%s", o->url_flag);
		return MCA_OK;
	}
	if (aia_ocsp_url(o->cert, o->url, sizeof(o->url)))
		return MCA_OK;
	if (ctx->url == NULL)
		return mca_err_set(MCA_ERR_INVALID, "the certificate names no OCSP responder: give --url");
	blen = strlen(ctx->url);
	while (blen > 0 && ctx->url[blen - 1] == '/')
		blen--;
	snprintf(o->url, sizeof(o->url), "%.*s/v1/ocsp", (int)blen, ctx->url);
	return MCA_OK;
}

static enum mca_err
inputs_load(struct cli_ctx *ctx, struct ocsp_check *o)
{
	unsigned char serial[64];
	size_t slen = sizeof(serial);
	enum mca_err rc;

	if ((rc = cli_ctx_resolve(ctx)) != MCA_OK ||
	    (rc = cert_load(o->cert_path, 0, &o->cert)) != MCA_OK ||
	    (rc = cert_load(o->issuer_path ? o->issuer_path : o->cert_path, o->issuer_path ? 0 : 1,
	    &o->issuer)) != MCA_OK)
		return rc;
	if (gnutls_x509_crt_check_issuer(o->cert, o->issuer) != 1)
		return mca_err_set(MCA_ERR_CERT_PARSE, "the issuer certificate did not issue %s", o->cert_path);
	if (gnutls_x509_crt_get_serial(o->cert, serial, &slen) >= 0 && slen > 0 && slen <= 21) {
		size_t skip = slen > 1 && serial[0] == 0 && (serial[1] & 0x80) != 0;	/* X.690 pad */

		if (slen - skip <= 20)
			mca_hex_encode(serial + skip, slen - skip, o->serial);
	}
	return responder_url(ctx, o);
}

/* ---- the exchange ---------------------------------------------------------- */

static enum mca_err
request_build(struct ocsp_check *o, gnutls_datum_t *der)
{
	if (gnutls_ocsp_req_init(&o->req) < 0 ||
	    gnutls_ocsp_req_add_cert(o->req, GNUTLS_DIG_SHA1, o->issuer, o->cert) < 0 ||
	    gnutls_ocsp_req_randomize_nonce(o->req) < 0 ||
	    gnutls_ocsp_req_export(o->req, der) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "cannot build the OCSP request");
	return MCA_OK;
}

static enum mca_err
exchange(struct cli_ctx *ctx, struct ocsp_check *o)
{
	gnutls_datum_t req = { NULL, 0 }, d;
	struct mca_buf resp;
	struct cli_fetch f = { o->url, ctx->root_cert, "application/ocsp-request", NULL, 0 };
	long status;
	int ret;
	enum mca_err rc;

	mca_buf_init(&resp, OCSP_RESP_MAX, false);
	if ((rc = request_build(o, &req)) != MCA_OK)
		goto out;
	f.body = req.data;
	f.body_len = req.size;
	if ((rc = cli_fetch(&f, &status, &resp)) != MCA_OK)
		goto out;
	d = (gnutls_datum_t){ resp.data, (unsigned)resp.len };
	if (gnutls_ocsp_resp_init(&o->resp) < 0 || gnutls_ocsp_resp_import(o->resp, &d) < 0) {
		rc = mca_err_set(MCA_ERR_PARSE, "%s: the answer is not an OCSP response", o->url);
		goto out;
	}
	if ((ret = gnutls_ocsp_resp_get_status(o->resp)) != GNUTLS_OCSP_RESP_SUCCESSFUL) {
		rc = mca_err_set(MCA_ERR_SERVER, "%s: responder refused: %s (RFC 6960 4.2.1 status %d)", o->url,
		    ret == 1 ? "malformedRequest" : ret == 2 ? "internalError" : ret == 3 ? "tryLater" :
		    ret == 5 ? "sigRequired" : ret == 6 ? "unauthorized" : "?", ret);
		goto out;
	}
out:
	gnutls_free(req.data);
	mca_buf_free(&resp);
	return rc;
}

/* Signature, nonce, certificate and freshness of the answer. */
static enum mca_err
answer_verify(struct ocsp_check *o)
{
	gnutls_datum_t n1 = { NULL, 0 }, n2 = { NULL, 0 };
	unsigned verify = 0;
	time_t now = time(NULL);
	bool same;
	int ret;

	if (gnutls_ocsp_resp_verify_direct(o->resp, o->issuer, &verify, 0) < 0 || verify != 0)
		return mca_err_set(MCA_ERR_CRYPTO, "RFC 6960 3.2: the response's signature does not verify "
		    "against the issuer (status 0x%x)", verify);
	if (gnutls_ocsp_req_get_nonce(o->req, NULL, &n1) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "cannot read the request's nonce");
	ret = gnutls_ocsp_resp_get_nonce(o->resp, NULL, &n2);
	same = ret >= 0 && n1.size == n2.size && memcmp(n1.data, n2.data, n1.size) == 0;
	gnutls_free(n1.data);
	gnutls_free(n2.data);
	if (!same)
		return mca_err_set(MCA_ERR_CRYPTO, "RFC 8954: the response does not echo the request's nonce "
		    "(a replayed or cached answer)");
	if (gnutls_ocsp_resp_check_crt(o->resp, 0, o->cert) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "the response is about another certificate");
	if (gnutls_ocsp_resp_get_single(o->resp, 0, NULL, NULL, NULL, NULL, &o->status,
	    &o->this_update, &o->next_update, &o->revoked_at, &o->reason) < 0)
		return mca_err_set(MCA_ERR_PARSE, "cannot read the response's status");
	if (o->this_update > now + OCSP_SKEW)
		return mca_err_set(MCA_ERR_CRYPTO, "RFC 6960 3.2: thisUpdate is in the future");
	if (o->next_update != (time_t)-1 && o->next_update + OCSP_SKEW < now)
		return mca_err_set(MCA_ERR_CRYPTO, "RFC 6960 3.2: the response is stale (nextUpdate passed)");
	return MCA_OK;
}

/* ---- output ---------------------------------------------------------------- */

static int
answer_print(const struct cli_ctx *ctx, const struct ocsp_check *o)
{
	char tu[MCA_TIME_LEN], nu[MCA_TIME_LEN], ra[MCA_TIME_LEN];
	const char *status = o->status == GNUTLS_OCSP_CERT_GOOD ? "good" :
	    o->status == GNUTLS_OCSP_CERT_REVOKED ? "revoked" : "unknown";
	const char *reason = ca_crl_reason_name((int)o->reason);
	bool revoked = o->status == GNUTLS_OCSP_CERT_REVOKED;
	json_t *j;
	enum mca_err rc = MCA_OK;

	mca_time_format((int64_t)o->this_update, tu);
	mca_time_format((int64_t)o->next_update, nu);
	mca_time_format((int64_t)o->revoked_at, ra);
	if (ctx->json) {
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?}", "serial", o->serial, "status", status,
		    "responder", o->url, "this_update", tu, "next_update", nu,
		    "revoked_at", revoked ? ra : NULL, "reason", revoked ? reason : NULL);
		rc = j != NULL ? cli_print_json(j) : MCA_ERR_NOMEM;
		json_decref(j);
	} else if (revoked) {
		printf("%s: revoked at %s, reason %s\n", o->serial, ra, reason ? reason : "unspecified");
	} else {
		printf("%s: %s\n", o->serial, status);
	}
	if (rc != MCA_OK)
		return cli_fail("output", rc);
	return o->status == GNUTLS_OCSP_CERT_GOOD ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int
cli_cmd_ocsp_check(struct cli_ctx *ctx, int argc, char **argv)
{
	struct ocsp_check o;
	enum mca_err rc;
	int ret;

	memset(&o, 0, sizeof(o));
	if ((ret = check_parse(ctx, &o, argc, argv)) != CLI_CONTINUE)
		return ret;
	if ((rc = inputs_load(ctx, &o)) != MCA_OK || (rc = exchange(ctx, &o)) != MCA_OK ||
	    (rc = answer_verify(&o)) != MCA_OK)
		ret = cli_fail("ocsp check", rc);
	else
		ret = answer_print(ctx, &o);
	gnutls_ocsp_req_deinit(o.req);
	gnutls_ocsp_resp_deinit(o.resp);
	gnutls_x509_crt_deinit(o.cert);
	gnutls_x509_crt_deinit(o.issuer);
	return ret;
}
