/*
 * OCSP (RFC 6960): requests are parsed by GnuTLS (and, for the exact bytes
 * of the CertID, by libtasn1); responses are encoded with libtasn1 from
 * ca/pkix.asn and signed by the intermediate itself (RFC 6960 4.2.2.2).
 */
#include "ca/ca_internal.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/ocsp.h>

#define OID_NONCE	"1.3.6.1.5.5.7.48.1.2"	/* RFC 8954 */
#define OID_BASIC	"1.3.6.1.5.5.7.48.1.1"	/* RFC 6960 4.2.1 id-pkix-ocsp-basic */
#define NONCE_MAX	32			/* RFC 8954 2.1 */
#define HASH_MAX	64
#define CERTID_MAX	1024
#define RESPONSE_MAX	(64 * 1024)

struct ca_ocsp_req {
	struct mca_buf			certid;		/* DER of reqCert, as sent */
	gnutls_digest_algorithm_t	dig;		/* UNKNOWN: not one we hash */
	unsigned char			name_hash[HASH_MAX];
	unsigned char			key_hash[HASH_MAX];
	size_t				name_len;
	size_t				key_len;
	char				serial[CA_SERIAL_HEX_MAX];
	struct mca_buf			nonce;		/* extnValue of the nonce, or empty */
};

/* RFC 8954 2.1: Nonce ::= OCTET STRING (SIZE(1..32)), inside extnValue. */
static enum mca_err
nonce_check(const gnutls_datum_t *v)
{
	long len;
	int hlen = 0;

	if (v->size < 3 || v->data[0] != 0x04 ||
	    (len = asn1_get_length_der(v->data + 1, (int)v->size - 1, &hlen)) < 1 ||
	    (size_t)len + 1 + (size_t)hlen != v->size)
		return mca_err_set(MCA_ERR_PARSE, "RFC 8954 2.1: malformed nonce");
	if (len > NONCE_MAX)
		return mca_err_set(MCA_ERR_PARSE, "RFC 8954 2.1: nonce longer than %d octets",
		    NONCE_MAX);
	return MCA_OK;
}

/* requestExtensions: keep the nonce; refuse a critical one we don't know. */
static enum mca_err
req_extensions(gnutls_ocsp_req_const_t g, struct ca_ocsp_req *req)
{
	gnutls_datum_t oid, val;
	unsigned int crit;
	enum mca_err rc = MCA_OK;
	int r;

	for (unsigned i = 0; rc == MCA_OK; i++) {
		oid.data = val.data = NULL;
		r = gnutls_ocsp_req_get_extension(g, i, &oid, &crit, &val);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r < 0)
			return mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.1.1: bad request "
			    "extension: %s", gnutls_strerror(r));
		if (oid.size == sizeof(OID_NONCE) - 1 && memcmp(oid.data, OID_NONCE,
		    oid.size) == 0) {
			if (req->nonce.len > 0)
				rc = mca_err_set(MCA_ERR_PARSE, "RFC 5280 4.2: two nonces");
			else if ((rc = nonce_check(&val)) == MCA_OK)
				rc = mca_buf_set(&req->nonce, val.data, val.size);
		} else if (crit) {
			rc = mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.4: unknown critical "
			    "request extension %.64s", (const char *)oid.data);
		}
		gnutls_free(oid.data);
		gnutls_free(val.data);
	}
	return rc;
}

/* The one Request's CertID (RFC 6960 4.1.1): hashes and serial. */
static enum mca_err
req_cert_id(gnutls_ocsp_req_const_t g, struct ca_ocsp_req *req)
{
	gnutls_datum_t nh = { NULL, 0 }, kh = { NULL, 0 }, sn = { NULL, 0 };
	/* GnuTLS leaves the digest alone when it does not know the OID. */
	gnutls_digest_algorithm_t dig = GNUTLS_DIG_UNKNOWN;
	const unsigned char *p;
	size_t n;
	enum mca_err rc = MCA_ERR_PARSE;
	int r;

	if ((r = gnutls_ocsp_req_get_cert_id(g, 0, &dig, &nh, &kh, &sn)) < 0) {
		rc = mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.1.1: malformed CertID: %s",
		    gnutls_strerror(r));
		goto out;
	}
	r = gnutls_ocsp_req_get_cert_id(g, 1, NULL, NULL, NULL, NULL);
	if (r != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		rc = mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.1.1: more than one certificate "
		    "in the request (meshca answers one per request)");
		goto out;
	}
	if (nh.size == 0 || nh.size > HASH_MAX || kh.size == 0 || kh.size > HASH_MAX ||
	    sn.size == 0) {
		rc = mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.1.1: malformed CertID");
		goto out;
	}
	p = sn.data;
	n = sn.size;
	if (n > 1 && p[0] == 0x00 && (p[1] & 0x80) != 0) {	/* X.690 8.3.2 pad */
		p++;
		n--;
	}
	if (n > CA_SERIAL_MAX) {
		rc = mca_err_set(MCA_ERR_PARSE, "RFC 5280 4.1.2.2: serial longer than 20 "
		    "octets");
		goto out;
	}
	req->dig = dig;
	memcpy(req->name_hash, nh.data, nh.size);
	memcpy(req->key_hash, kh.data, kh.size);
	req->name_len = nh.size;
	req->key_len = kh.size;
	mca_hex_encode(p, n, req->serial);
	rc = MCA_OK;
out:
	gnutls_free(nh.data);
	gnutls_free(kh.data);
	gnutls_free(sn.data);
	return rc;
}

/* The CertID's exact DER, to copy into the response (RFC 6960 4.2.1). */
static enum mca_err
req_cert_id_der(const unsigned char *der, size_t len, struct ca_ocsp_req *req)
{
	asn1_node n = NULL;
	int start = 0, end = 0, r;
	enum mca_err rc;

	if ((rc = ca_asn1_decode("OCSPRequest", der, len, &n)) != MCA_OK)
		return rc;
	r = asn1_der_decoding_startEnd(n, der, (int)len, "tbsRequest.requestList.?1.reqCert",
	    &start, &end);
	if (r != ASN1_SUCCESS || start < 0 || end < start || (size_t)end >= len ||
	    end - start + 1 > CERTID_MAX)
		rc = mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.1.1: no CertID");
	else
		rc = mca_buf_set(&req->certid, der + start, (size_t)(end - start + 1));
	ca_asn1_free(&n);
	return rc;
}

enum mca_err
ca_ocsp_req_parse(const unsigned char *der, size_t len, struct ca_ocsp_req **out)
{
	struct ca_ocsp_req *req = NULL;
	gnutls_ocsp_req_t g = NULL;
	gnutls_datum_t d;
	enum mca_err rc = MCA_ERR_NOMEM;
	int r;

	if (out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no output");
	*out = NULL;
	if (der == NULL || len == 0)
		return mca_err_set(MCA_ERR_PARSE, "empty OCSP request");
	if (len > CA_OCSP_MAX_REQUEST)
		return mca_err_set(MCA_ERR_TOOBIG, "OCSP request larger than %d bytes",
		    CA_OCSP_MAX_REQUEST);
	if ((req = calloc(1, sizeof(*req))) == NULL || gnutls_ocsp_req_init(&g) < 0)
		goto out;
	mca_buf_init(&req->certid, CERTID_MAX, false);
	mca_buf_init(&req->nonce, NONCE_MAX + 8, false);
	d.data = (unsigned char *)der;
	d.size = (unsigned int)len;
	if ((r = gnutls_ocsp_req_import(g, &d)) < 0) {
		rc = mca_err_set(MCA_ERR_PARSE, "RFC 6960 4.1.1: not an OCSP request: %s",
		    gnutls_strerror(r));
		goto out;
	}
	if ((rc = req_cert_id(g, req)) != MCA_OK ||
	    (rc = req_extensions(g, req)) != MCA_OK ||
	    (rc = req_cert_id_der(der, len, req)) != MCA_OK)
		goto out;
	*out = req;
	req = NULL;
out:
	gnutls_ocsp_req_deinit(g);
	ca_ocsp_req_free(req);
	return rc;
}

void
ca_ocsp_req_free(struct ca_ocsp_req *req)
{
	if (req == NULL)
		return;
	mca_buf_free(&req->certid);
	mca_buf_free(&req->nonce);
	free(req);
}

bool
ca_ocsp_req_has_nonce(const struct ca_ocsp_req *req)
{
	return req != NULL && req->nonce.len > 0;
}

/* Whether h is dig(data) (public values: no constant time needed). */
static bool
hash_is(gnutls_digest_algorithm_t dig, const void *data, size_t len,
    const unsigned char *h, size_t hlen)
{
	unsigned char md[HASH_MAX];

	if (gnutls_hash_get_len(dig) != hlen || hlen > sizeof(md) ||
	    gnutls_hash_fast(dig, data, len, md) < 0)
		return false;
	return memcmp(md, h, hlen) == 0;
}

enum mca_err
ca_ocsp_req_serial(const struct ca_ocsp_req *req, const struct ca_signer *s,
    char serial[CA_SERIAL_HEX_MAX], bool *ours)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { NULL, 0 };
	struct mca_buf key = { 0 };
	enum mca_err rc;

	if (req == NULL || s == NULL || serial == NULL || ours == NULL)
		return mca_err_set(MCA_ERR_INVALID, "OCSP: request and signer are required");
	memcpy(serial, req->serial, CA_SERIAL_HEX_MAX);
	*ours = false;
	switch (req->dig) {
	case GNUTLS_DIG_SHA1:
	case GNUTLS_DIG_SHA256:
	case GNUTLS_DIG_SHA384:
	case GNUTLS_DIG_SHA512:
		break;
	default:
		return MCA_OK;	/* a CertID we cannot match: "unknown" */
	}
	crt = ca_signer_cert(s)->crt;
	if (gnutls_x509_crt_get_raw_dn(crt, &dn) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "unreadable issuer name");
	if ((rc = ca_crt_key_bits(crt, &key)) == MCA_OK)
		*ours = hash_is(req->dig, dn.data, dn.size, req->name_hash, req->name_len) &&
		    hash_is(req->dig, key.data, key.len, req->key_hash, req->key_len);
	mca_buf_free(&key);
	gnutls_free(dn.data);
	return rc;
}

static enum mca_err
reason_check(int reason)
{
	/* RFC 5280 5.3.1: 7 is unused; removeFromCRL (8) is for delta CRLs. */
	if (reason < -1 || reason > 10 || reason == 7 || reason == 8)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: %d is not a revocation "
		    "reason", reason);
	return MCA_OK;
}

/* RFC 6960 4.2.1 CertStatus. */
static enum mca_err
resp_status(asn1_node b, const struct ca_ocsp_answer *a)
{
	static const char st[] = "tbsResponseData.responses.?1.certStatus";
	char num[8];
	enum mca_err rc;

	switch (a->status) {
	case CA_OCSP_GOOD:
		return ca_asn1_write_str(b, st, "good");
	case CA_OCSP_UNKNOWN:
		return ca_asn1_write_str(b, st, "unknown");
	case CA_OCSP_REVOKED:
		break;
	default:
		return mca_err_set(MCA_ERR_INVALID, "OCSP: bad status %d", (int)a->status);
	}
	if ((rc = reason_check(a->reason)) != MCA_OK ||
	    (rc = ca_asn1_write_str(b, st, "revoked")) != MCA_OK ||
	    (rc = ca_asn1_write_gentime(b, "tbsResponseData.responses.?1.certStatus.revoked."
	    "revocationTime", a->revoked_at)) != MCA_OK)
		return rc;
	snprintf(num, sizeof(num), "%d", a->reason);
	return ca_asn1_write_str(b, "tbsResponseData.responses.?1.certStatus.revoked."
	    "revocationReason", a->reason >= 0 ? num : NULL);
}

/* The one SingleResponse: the request's CertID, status, validity. */
static enum mca_err
resp_single(asn1_node b, const struct ca_ocsp_req *req, const struct ca_ocsp_answer *a)
{
	asn1_node cid = NULL;
	enum mca_err rc;
	int r;

	if ((rc = ca_asn1_write_str(b, "tbsResponseData.responses", "NEW")) != MCA_OK ||
	    (rc = ca_asn1_decode("CertID", req->certid.data, req->certid.len, &cid)) != MCA_OK)
		goto out;
	if ((r = asn1_copy_node(b, "tbsResponseData.responses.?1.certID", cid, "")) !=
	    ASN1_SUCCESS) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "ASN.1: copying the CertID: %s",
		    asn1_strerror(r));
		goto out;
	}
	if ((rc = resp_status(b, a)) != MCA_OK ||
	    (rc = ca_asn1_write_gentime(b, "tbsResponseData.responses.?1.thisUpdate",
	    a->this_update)) != MCA_OK ||
	    (rc = ca_asn1_write_str(b, "tbsResponseData.responses.?1.singleExtensions",
	    NULL)) != MCA_OK)
		goto out;
	if (a->next_update == 0)	/* RFC 6960 2.4: newer information any time */
		rc = ca_asn1_write_str(b, "tbsResponseData.responses.?1.nextUpdate", NULL);
	else
		rc = ca_asn1_write_gentime(b, "tbsResponseData.responses.?1.nextUpdate",
		    a->next_update);
out:
	ca_asn1_free(&cid);
	return rc;
}

/* ResponseData: version v1 (DEFAULT, omitted), responderID byKey, producedAt,
 * the response, the nonce echoed (RFC 8954 2.1). */
static enum mca_err
resp_data(asn1_node b, const struct ca_signer *s, const struct ca_ocsp_req *req,
    const struct ca_ocsp_answer *a, int64_t produced_at)
{
	unsigned char id[20];
	struct mca_buf key = { 0 };
	enum mca_err rc;

	/* RFC 6960 4.2.2.3: KeyHash is SHA-1 of the subjectPublicKey bits. */
	if ((rc = ca_crt_key_bits(ca_signer_cert(s)->crt, &key)) != MCA_OK)
		return rc;
	rc = gnutls_hash_fast(GNUTLS_DIG_SHA1, key.data, key.len, id) < 0 ?
	    mca_err_set(MCA_ERR_CRYPTO, "SHA-1 failed") : MCA_OK;
	mca_buf_free(&key);
	if (rc != MCA_OK ||
	    (rc = ca_asn1_write_str(b, "tbsResponseData.version", "v1")) != MCA_OK ||
	    (rc = ca_asn1_write_str(b, "tbsResponseData.responderID", "byKey")) != MCA_OK ||
	    (rc = ca_asn1_write(b, "tbsResponseData.responderID.byKey", id, sizeof(id))) !=
	    MCA_OK ||
	    (rc = ca_asn1_write_gentime(b, "tbsResponseData.producedAt", produced_at)) !=
	    MCA_OK ||
	    (rc = resp_single(b, req, a)) != MCA_OK)
		return rc;
	if (req->nonce.len == 0)
		return ca_asn1_write_str(b, "tbsResponseData.responseExtensions", NULL);
	if ((rc = ca_asn1_write_str(b, "tbsResponseData.responseExtensions", "NEW")) !=
	    MCA_OK ||
	    (rc = ca_asn1_write_str(b, "tbsResponseData.responseExtensions.?1.extnID",
	    OID_NONCE)) != MCA_OK ||
	    (rc = ca_asn1_write_str(b, "tbsResponseData.responseExtensions.?1.critical",
	    "FALSE")) != MCA_OK)
		return rc;
	return ca_asn1_write(b, "tbsResponseData.responseExtensions.?1.extnValue",
	    req->nonce.data, req->nonce.len);
}

/* Signs tbsResponseData; adds the intermediate in certs for clients that
 * only hold the root (RFC 6960 4.2.1 certs). */
static enum mca_err
resp_sign(asn1_node b, const struct ca_signer *s)
{
	const struct mca_buf *crt = ca_cert_der(ca_signer_cert(s));
	struct mca_buf tbs = { 0 };
	gnutls_datum_t sig = { NULL, 0 };
	gnutls_sign_algorithm_t alg;
	enum mca_err rc;

	if ((rc = ca_sign_alg(ca_signer_key(s), &alg)) != MCA_OK ||
	    (rc = ca_asn1_encode(b, "tbsResponseData", &tbs)) != MCA_OK ||
	    (rc = ca_sign(ca_signer_key(s), alg, tbs.data, tbs.len, &sig)) != MCA_OK)
		goto out;
	if (sig.size > INT32_MAX / 8) {
		rc = mca_err_set(MCA_ERR_SIGN, "signature too long");
		goto out;
	}
	if ((rc = ca_asn1_write_sigalg(b, "signatureAlgorithm", alg)) != MCA_OK ||
	    (rc = ca_asn1_write(b, "signature", sig.data, (size_t)sig.size * 8)) != MCA_OK ||
	    (rc = ca_asn1_write_str(b, "certs", "NEW")) != MCA_OK ||
	    (rc = ca_asn1_write(b, "certs.?1", crt->data, crt->len)) != MCA_OK)
		goto out;
out:
	gnutls_free(sig.data);
	mca_buf_free(&tbs);
	return rc;
}

/* OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] OPTIONAL } */
static enum mca_err
resp_wrap(int status, const struct mca_buf *basic, struct mca_buf *out)
{
	asn1_node r = NULL;
	char num[8];
	enum mca_err rc;

	snprintf(num, sizeof(num), "%d", status);
	if ((rc = ca_asn1_create("OCSPResponse", &r)) != MCA_OK ||
	    (rc = ca_asn1_write_str(r, "responseStatus", num)) != MCA_OK)
		goto out;
	if (basic == NULL)
		rc = ca_asn1_write_str(r, "responseBytes", NULL);
	else if ((rc = ca_asn1_write_str(r, "responseBytes.responseType", OID_BASIC)) ==
	    MCA_OK)
		rc = ca_asn1_write(r, "responseBytes.response", basic->data, basic->len);
	if (rc == MCA_OK)
		rc = ca_asn1_encode(r, NULL, out);
out:
	ca_asn1_free(&r);
	return rc;
}

enum mca_err
ca_ocsp_respond(const struct ca_signer *s, const struct ca_ocsp_req *req,
    const struct ca_ocsp_answer *a, int64_t produced_at, struct mca_buf *out)
{
	struct mca_buf basic;
	asn1_node b = NULL;
	enum mca_err rc;

	if (s == NULL || req == NULL || a == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "OCSP: signer, request and answer are "
		    "required");
	if (a->next_update != 0 && a->next_update < a->this_update)
		return mca_err_set(MCA_ERR_INVALID, "RFC 6960 4.2.2.1: nextUpdate before "
		    "thisUpdate");
	mca_buf_init(&basic, RESPONSE_MAX, false);
	if ((rc = ca_asn1_create("BasicOCSPResponse", &b)) != MCA_OK ||
	    (rc = resp_data(b, s, req, a, produced_at)) != MCA_OK ||
	    (rc = resp_sign(b, s)) != MCA_OK ||
	    (rc = ca_asn1_encode(b, NULL, &basic)) != MCA_OK ||
	    (rc = resp_wrap(0, &basic, out)) != MCA_OK)	/* successful */
		goto out;
out:
	ca_asn1_free(&b);
	mca_buf_free(&basic);
	return rc;
}

enum mca_err
ca_ocsp_error_response(enum ca_ocsp_error status, struct mca_buf *out)
{
	if (out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no output");
	switch (status) {
	case CA_OCSP_MALFORMED_REQUEST:
	case CA_OCSP_INTERNAL_ERROR:
	case CA_OCSP_TRY_LATER:
	case CA_OCSP_UNAUTHORIZED:
		return resp_wrap((int)status, NULL, out);
	}
	return mca_err_set(MCA_ERR_INVALID, "RFC 6960 4.2.1: %d is not an error status",
	    (int)status);
}
