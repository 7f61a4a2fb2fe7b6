/*
 * Issuance of workload certificates: the SPIFFE X509-SVID profile on top
 * of RFC 5280, and the pieces every certificate profile of meshca shares.
 */
#include "ca/ca_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CN_MAX_LEN	64		/* RFC 5280 A.1: ub-common-name */
#define TIME_MAX	253402300799	/* 9999-12-31T23:59:59Z, RFC 5280 4.1.2.5 */
#define URL_MAX_LEN	2048		/* CRL, OCSP and caIssuers URLs */

enum mca_err
ca_serial_new(unsigned char raw[16], char out[CA_SERIAL_HEX_MAX])
{
	if (gnutls_rnd(GNUTLS_RND_NONCE, raw, 16) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "random generator failed");
	/* RFC 5280 4.1.2.2: positive; a non-zero first byte keeps the DER
	 * INTEGER 16 bytes long, so the hex is always 32 characters. */
	raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
	mca_hex_encode(raw, 16, out);
	return MCA_OK;
}

enum mca_err
ca_validity(int64_t now, int64_t ttl, int64_t cap, int64_t *nb, int64_t *na)
{
	if (ttl <= 0)
		return mca_err_set(MCA_ERR_TTL, "lifetime must be positive, not %lld s",
		    (long long)ttl);
	if (now < CA_BACKDATE || now >= TIME_MAX)
		return mca_err_set(MCA_ERR_INVALID, "current time %lld out of range",
		    (long long)now);
	*nb = now - CA_BACKDATE;
	*na = ttl > TIME_MAX - now ? TIME_MAX : now + ttl;
	if (*na > cap)
		*na = cap;	/* never outlive the issuer (RFC 5280 6.1.3 (a)(2)) */
	if (*na <= now)
		return mca_err_set(MCA_ERR_TTL, "RFC 5280 4.1.2.5: the issuer's notAfter "
		    "(%lld) has passed", (long long)cap);
	return MCA_OK;
}

enum mca_err
ca_crt_base_apply(gnutls_x509_crt_t crt, struct ca_crt_base *b)
{
	unsigned char id[CA_KEY_ID_LEN];
	size_t idlen = sizeof(id);
	enum mca_err rc;

	if ((rc = ca_serial_new(b->serial, b->serial_hex)) != MCA_OK)
		return rc;
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, b->serial, sizeof(b->serial)) < 0 ||
	    gnutls_x509_crt_set_pubkey(crt, b->pub) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, (time_t)b->not_before) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, (time_t)b->not_after) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the certificate's base fields");
	/* RFC 5280 4.2.1.2: SHA-1 of the public key. */
	if (gnutls_pubkey_get_key_id(b->pub, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(crt, id, idlen) < 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.2: cannot set the SKI");
	return MCA_OK;
}

enum mca_err
ca_crt_set_aki(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer)
{
	unsigned char id[64];
	size_t idlen = sizeof(id);

	if (gnutls_x509_crt_get_subject_key_id(issuer, id, &idlen, NULL) < 0) {
		idlen = sizeof(id);	/* an issuer without SKI: same method as ours */
		if (gnutls_x509_crt_get_key_id(issuer, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0)
			return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.1: no issuer key id");
	}
	if (gnutls_x509_crt_set_authority_key_id(crt, id, idlen) < 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.1: cannot set the AKI");
	return MCA_OK;
}

enum mca_err
ca_crt_sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer, const struct ca_key *key,
    gnutls_datum_t *der)
{
	int r;

	if (key->remote != NULL)	/* the signer process signs no CA certificate */
		return mca_err_set(MCA_ERR_SIGN, "a CA certificate is signed with its issuer's "
		    "key at hand (meshca init), not through the signer process");
	if ((r = gnutls_x509_crt_privkey_sign(crt, issuer, key->priv, ca_key_digest(key), 0)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "signing the certificate: %s",
		    gnutls_strerror(r));
	if ((r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "encoding the certificate: %s",
		    gnutls_strerror(r));
	return MCA_OK;
}

/* RFC 5280 A.1: 1..64 characters; no control characters in a name we print. */
static enum mca_err
cn_check(const char *cn)
{
	size_t n;

	if (cn == NULL || *cn == '\0')
		return mca_err_set(MCA_ERR_INVALID, "empty subject common name");
	if ((n = strnlen(cn, CN_MAX_LEN + 1)) > CN_MAX_LEN)
		return mca_err_set(MCA_ERR_NAME, "RFC 5280 A.1: common name longer than %d "
		    "bytes", CN_MAX_LEN);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f)
			return mca_err_set(MCA_ERR_NAME, "control character in common name");
	return MCA_OK;
}

/* A revocation pointer: an absolute http(s) URI of printable ASCII. */
static enum mca_err
url_check(const char *what, const char *url)
{
	size_t n;

	if (url == NULL)
		return MCA_OK;		/* the extension is left out */
	if ((n = strnlen(url, URL_MAX_LEN + 1)) > URL_MAX_LEN)
		return mca_err_set(MCA_ERR_INVALID, "%s longer than %d bytes", what, URL_MAX_LEN);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.2.1.13, 4.2.2.1: %s must be an "
		    "http or https URI", what);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return mca_err_set(MCA_ERR_INVALID, "RFC 3986: %s has a space or a "
			    "non-ASCII byte", what);
	return MCA_OK;
}

/* Everything the leaf writer (leaf_der.c) takes from the request. */
static enum mca_err
leaf_req_check(const struct ca_leaf_req *req)
{
	const struct ca_sans *s = req->sans;
	enum mca_err rc;

	if ((rc = ca_spiffe_id_check(req->spiffe_id, NULL)) != MCA_OK ||
	    (rc = cn_check(req->common_name)) != MCA_OK ||
	    (rc = url_check("CRL URL", req->crl_url)) != MCA_OK ||
	    (rc = url_check("OCSP URL", req->ocsp_url)) != MCA_OK ||
	    (rc = url_check("caIssuers URL", req->ca_issuers_url)) != MCA_OK)
		return rc;
	if (s == NULL)
		return MCA_OK;
	if (s->ndns + s->nips > CA_MAX_SANS)
		return mca_err_set(MCA_ERR_TOOBIG, "more than %d subject alternative names",
		    CA_MAX_SANS);
	for (size_t i = 0; i < s->ndns; i++)
		if ((rc = ca_dns_check(s->dns[i], true)) != MCA_OK)
			return rc;
	for (size_t i = 0; i < s->nips; i++)
		if ((s->ips[i].len != 4 && s->ips[i].len != 16) ||
		    s->ips[i].prefix != s->ips[i].len * 8)
			return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.2.1.6: an iPAddress SAN "
			    "is one address, not a range");
	return MCA_OK;
}

/*
 * Subject "CN=<name>".  Under an intermediate with dNSName constraints, a
 * leaf without dNSName SANs carries "OU=<name>" instead: GnuTLS checks
 * the CN of such a certificate as a host name against the constraints
 * (RFC 6125 6.4.4 legacy), and "payments" is no name under the permitted
 * suffixes.  The X509-SVID spec sets no requirement on the subject.
 */
static bool
leaf_subject_ou(const struct ca_signer *s, const struct ca_leaf_req *req)
{
	return ca_nc_has_dns(ca_signer_nc(s)) && (req->sans == NULL || req->sans->ndns == 0);
}

/* The PEM of der; der itself is handed over to out (left empty). */
static enum mca_err
issued_fill(struct ca_issued *out, struct mca_buf *der, const struct ca_crt_base *b)
{
	gnutls_datum_t d = { der->data, (unsigned int)der->len }, pem = { NULL, 0 };
	enum mca_err rc;

	if (gnutls_pem_base64_encode2("CERTIFICATE", &d, &pem) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot encode PEM");
	if ((rc = mca_buf_set(&out->pem, pem.data, pem.size)) == MCA_OK) {
		out->der = *der;
		memset(der, 0, sizeof(*der));
		memcpy(out->serial, b->serial_hex, sizeof(out->serial));
		out->not_before = b->not_before;
		out->not_after = b->not_after;
	}
	gnutls_free(pem.data);
	return rc;
}

/*
 * *out is overwritten as if uninitialised: clear an earlier result with
 * ca_issued_clear() before reusing it.  On failure *out is empty.
 */
enum mca_err
ca_issue_leaf(const struct ca_signer *s, const struct ca_csr *csr,
    const struct ca_leaf_req *req, struct ca_issued *out)
{
	struct ca_crt_base b;
	struct mca_buf der = { 0 };
	enum mca_err rc;

	if (out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no output");
	memset(out, 0, sizeof(*out));
	if (s == NULL || csr == NULL || req == NULL)
		return mca_err_set(MCA_ERR_INVALID, "signer, request and CSR are required");
	if ((rc = leaf_req_check(req)) != MCA_OK ||
	    (rc = ca_signer_names_check(s, req->spiffe_id, req->sans)) != MCA_OK)
		return rc;
	memset(&b, 0, sizeof(b));
	b.pub = csr->pub;	/* verified once by ca_csr_parse */
	if ((rc = ca_validity(req->now, req->ttl, ca_signer_cert(s)->not_after, &b.not_before,
	    &b.not_after)) != MCA_OK ||
	    (rc = ca_serial_new(b.serial, b.serial_hex)) != MCA_OK)
		return rc;
	/* The certificate's DER, written once and signed (leaf_der.c). */
	if ((rc = ca_leaf_der_build(s, &b, req, leaf_subject_ou(s, req), &der)) != MCA_OK ||
	    (rc = issued_fill(out, &der, &b)) != MCA_OK)
		ca_issued_clear(out);
	mca_buf_free(&der);
	return rc;
}

void
ca_issued_clear(struct ca_issued *i)
{
	if (i == NULL)
		return;
	mca_buf_free(&i->der);
	mca_buf_free(&i->pem);
	memset(i, 0, sizeof(*i));
}
