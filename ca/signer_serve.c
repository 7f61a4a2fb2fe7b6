/*
 * The signer process: holds the intermediate key and signs only
 * to-be-signed structures of this CA (OpenBSD acme-client keyproc.c).
 *
 * What it admits is narrow on purpose.  Whoever takes over the network
 * process can ask for signatures, but only over a TBSCertificate issued
 * by our intermediate that is not a CA certificate, a TBSCertList with
 * our issuer, an OCSP ResponseData with our responderID, or an audit
 * checkpoint of the fixed format: never a subordinate CA, never a
 * signature over arbitrary bytes (a TLS handshake, another CA's data).
 */
#include "ca/ca_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OID_BASIC_CONSTRAINTS	"2.5.29.19"	/* RFC 5280 4.2.1.9 */
#define OID_KEY_USAGE		"2.5.29.15"	/* RFC 5280 4.2.1.3 */
#define KU_KEY_CERT_SIGN	0x04		/* bit 5 of the first byte */
#define KU_CRL_SIGN		0x02		/* bit 6 */
#define SIG_ALG_OID_MAX		128
#define MAX_EXTENSIONS		64

void
ca_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

uint32_t
ca_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

enum mca_err
ca_fd_write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mca_err_set(MCA_ERR_IO, "signer socket: %s",
			    w < 0 ? strerror(errno) : "closed");
		b += w;
		n -= (size_t)w;
	}
	return MCA_OK;
}

enum mca_err
ca_fd_read_all(int fd, void *p, size_t n, bool *eof)
{
	unsigned char *b = p;
	size_t got = 0;

	if (eof != NULL)
		*eof = false;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && got == 0 && eof != NULL)
			*eof = true;
		if (r <= 0)
			return mca_err_set(MCA_ERR_IO, "signer socket: %s", r < 0 ?
			    (errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" :
			    strerror(errno)) : "closed by the other end");
		got += (size_t)r;
	}
	return MCA_OK;
}

/* The raw DER of element `name` of n, decoded from der. */
static enum mca_err
raw_element(asn1_node n, const unsigned char *der, size_t len, const char *name,
    const unsigned char **p, size_t *plen)
{
	int start = 0, end = 0;

	if (asn1_der_decoding_startEnd(n, der, (int)len, name, &start, &end) != ASN1_SUCCESS ||
	    start < 0 || end < start || (size_t)end >= len)
		return mca_err_set(MCA_ERR_SIGN, "signer: no %s element", name);
	*p = der + start;
	*plen = (size_t)(end - start + 1);
	return MCA_OK;
}

/* RFC 5280 4.1.2.4 / 5.1.2.3: the issuer is our intermediate's subject,
 * byte for byte (the encoding GnuTLS and crl.c copy from it). */
static enum mca_err
check_issuer(const struct ca_signer *s, asn1_node n, const unsigned char *der, size_t len,
    const char *name, const char *rule)
{
	gnutls_datum_t dn = { NULL, 0 };
	const unsigned char *p = NULL;
	size_t plen = 0;
	enum mca_err rc;

	if ((rc = raw_element(n, der, len, name, &p, &plen)) != MCA_OK)
		return rc;
	if (gnutls_x509_crt_get_raw_dn(ca_signer_cert(s)->crt, &dn) < 0)
		return mca_err_set(MCA_ERR_SIGN, "signer: cannot read our subject");
	rc = MCA_OK;
	if (dn.size != plen || memcmp(dn.data, p, plen) != 0)
		rc = mca_err_set(MCA_ERR_SIGN, "%s: the issuer is not this CA's intermediate", rule);
	gnutls_free(dn.data);
	return rc;
}

/* The AlgorithmIdentifier `name` is the one this key signs with. */
static enum mca_err
check_sigalg(const struct ca_signer *s, asn1_node n, const char *name, const char *rule)
{
	char path[64], oid[SIG_ALG_OID_MAX];
	int len = sizeof(oid);
	const char *want = gnutls_sign_get_oid(ca_key_type_sign_algo(ca_signer_key(s)->type));

	snprintf(path, sizeof(path), "%s.algorithm", name);
	if (asn1_read_value(n, path, oid, &len) != ASN1_SUCCESS || want == NULL ||
	    strcmp(oid, want) != 0)
		return mca_err_set(MCA_ERR_SIGN, "%s: signature algorithm is not %s", rule,
		    want != NULL ? want : "ours");
	return MCA_OK;
}

/* RFC 5280 4.2.1.9: cA must be FALSE (absent means FALSE). */
static enum mca_err
check_basic_constraints(const unsigned char *v, size_t vlen)
{
	asn1_node bc = NULL;
	char ca[8] = "";
	int len = sizeof(ca), r;
	enum mca_err rc;

	if ((rc = ca_asn1_decode("BasicConstraints", v, vlen, &bc)) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.9: malformed basicConstraints");
	r = asn1_read_value(bc, "cA", ca, &len);
	ca_asn1_free(&bc);
	if (r == ASN1_SUCCESS && strcmp(ca, "TRUE") == 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.9: the signer process never "
		    "signs a CA certificate (basicConstraints cA TRUE)");
	if (r != ASN1_SUCCESS && r != ASN1_ELEMENT_NOT_FOUND && r != ASN1_VALUE_NOT_FOUND)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.9: unreadable basicConstraints");
	return MCA_OK;
}

/* RFC 5280 4.2.1.3: keyCertSign and cRLSign are for CA keys only. */
static enum mca_err
check_key_usage(const unsigned char *v, size_t vlen)
{
	asn1_node ku = NULL;
	unsigned char bits[4] = { 0 };
	int len = (int)sizeof(bits), r;	/* in bytes going in, bits coming out */
	enum mca_err rc;

	if ((rc = ca_asn1_decode("KeyUsage", v, vlen, &ku)) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.3: malformed keyUsage");
	r = asn1_read_value(ku, "", bits, &len);
	ca_asn1_free(&ku);
	if (r != ASN1_SUCCESS)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.3: unreadable keyUsage");
	if (bits[0] & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.3: the signer process never "
		    "signs a certificate with keyCertSign or cRLSign");
	return MCA_OK;
}

/* Every extension: basicConstraints present with cA FALSE, keyUsage
 * without the CA bits. */
static enum mca_err
check_cert_extensions(asn1_node n)
{
	char path[64], oid[SIG_ALG_OID_MAX];
	unsigned char *val = NULL;
	bool have_bc = false;
	enum mca_err rc = MCA_OK;

	for (int i = 1; i <= MAX_EXTENSIONS && rc == MCA_OK; i++) {
		int len = sizeof(oid), vlen = 0;

		snprintf(path, sizeof(path), "extensions.?%d.extnID", i);
		if (asn1_read_value(n, path, oid, &len) != ASN1_SUCCESS)
			break;
		if (strcmp(oid, OID_BASIC_CONSTRAINTS) != 0 && strcmp(oid, OID_KEY_USAGE) != 0)
			continue;
		snprintf(path, sizeof(path), "extensions.?%d.extnValue", i);
		if (asn1_read_value(n, path, NULL, &vlen) != ASN1_MEM_ERROR || vlen <= 0 ||
		    (val = malloc((size_t)vlen)) == NULL ||
		    asn1_read_value(n, path, val, &vlen) != ASN1_SUCCESS) {
			rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2: unreadable extension %s", oid);
			break;
		}
		if (strcmp(oid, OID_BASIC_CONSTRAINTS) == 0) {
			have_bc = true;
			rc = check_basic_constraints(val, (size_t)vlen);
		} else
			rc = check_key_usage(val, (size_t)vlen);
		free(val);
		val = NULL;
	}
	free(val);
	if (rc == MCA_OK && !have_bc)
		rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.9: the signer process signs only "
		    "certificates that state basicConstraints cA FALSE");
	return rc;
}

static enum mca_err
check_cert(const struct ca_signer *s, const unsigned char *tbs, size_t len)
{
	static const char rule[] = "RFC 5280 4.1";
	asn1_node n = NULL;
	enum mca_err rc;

	if ((rc = ca_asn1_decode("TBSCertificate", tbs, len, &n)) != MCA_OK) {
		rc = mca_err_set(MCA_ERR_SIGN, "%s: not a DER TBSCertificate: %s", rule,
		    mca_err_detail());
		goto out;
	}
	if ((rc = check_sigalg(s, n, "signature", "RFC 5280 4.1.2.3")) != MCA_OK ||
	    (rc = check_issuer(s, n, tbs, len, "issuer", "RFC 5280 4.1.2.4")) != MCA_OK ||
	    (rc = check_cert_extensions(n)) != MCA_OK)
		goto out;
out:
	ca_asn1_free(&n);
	return rc;
}

static enum mca_err
check_crl(const struct ca_signer *s, const unsigned char *tbs, size_t len)
{
	asn1_node n = NULL;
	enum mca_err rc;

	if ((rc = ca_asn1_decode("TBSCertList", tbs, len, &n)) != MCA_OK) {
		rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 5.1: not a DER TBSCertList: %s",
		    mca_err_detail());
		goto out;
	}
	if ((rc = check_sigalg(s, n, "signature", "RFC 5280 5.1.2.2")) != MCA_OK ||
	    (rc = check_issuer(s, n, tbs, len, "issuer", "RFC 5280 5.1.2.3")) != MCA_OK)
		goto out;
out:
	ca_asn1_free(&n);
	return rc;
}

/* RFC 6960 4.2.2.3: responderID byKey is the SHA-1 of our key's BIT
 * STRING (what ocsp.c writes); byName our subject. */
static enum mca_err
check_responder(const struct ca_signer *s, asn1_node n, const unsigned char *der, size_t len)
{
	static const char rule[] = "RFC 6960 4.2.2.3";
	unsigned char want[20], got[32];
	struct mca_buf bits = { 0 };
	char which[16] = "";
	int wl = sizeof(which), gl = sizeof(got);
	enum mca_err rc;

	if (asn1_read_value(n, "responderID", which, &wl) != ASN1_SUCCESS)
		return mca_err_set(MCA_ERR_SIGN, "%s: no responderID", rule);
	if (strcmp(which, "byName") == 0)
		return check_issuer(s, n, der, len, "responderID.byName", rule);
	if (strcmp(which, "byKey") != 0)
		return mca_err_set(MCA_ERR_SIGN, "%s: unknown responderID", rule);
	if ((rc = ca_crt_key_bits(ca_signer_cert(s)->crt, &bits)) != MCA_OK)
		return rc;
	rc = MCA_OK;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA1, bits.data, bits.len, want) < 0 ||
	    asn1_read_value(n, "responderID.byKey", got, &gl) != ASN1_SUCCESS ||
	    gl != (int)sizeof(want) || memcmp(got, want, sizeof(want)) != 0)
		rc = mca_err_set(MCA_ERR_SIGN, "%s: the responderID is not this CA's key", rule);
	mca_buf_free(&bits);
	return rc;
}

static enum mca_err
check_ocsp(const struct ca_signer *s, const unsigned char *tbs, size_t len)
{
	asn1_node n = NULL;
	enum mca_err rc;

	if ((rc = ca_asn1_decode("ResponseData", tbs, len, &n)) != MCA_OK) {
		rc = mca_err_set(MCA_ERR_SIGN, "RFC 6960 4.2.1: not a DER ResponseData: %s",
		    mca_err_detail());
		goto out;
	}
	rc = check_responder(s, n, tbs, len);
out:
	ca_asn1_free(&n);
	return rc;
}

static enum mca_err
check_audit(const unsigned char *tbs, size_t len)
{
	if (len != CA_AUDIT_TBS_LEN ||
	    memcmp(tbs, CA_AUDIT_LABEL, sizeof(CA_AUDIT_LABEL) - 1) != 0)
		return mca_err_set(MCA_ERR_SIGN, "audit checkpoint: not the %u-byte %s format",
		    (unsigned)CA_AUDIT_TBS_LEN, CA_AUDIT_LABEL);
	return MCA_OK;
}

enum mca_err
ca_signer_check(const struct ca_signer *s, enum ca_signreq_type t, const unsigned char *tbs,
    size_t len)
{
	if (s == NULL || (tbs == NULL && len > 0))
		return mca_err_set(MCA_ERR_INVALID, "ca_signer_check: bad argument");
	if (len == 0 || len > CA_SIGNREQ_MAX_BYTES)
		return mca_err_set(MCA_ERR_SIGN, "signer: %zu bytes to sign (1 to %u accepted)",
		    len, (unsigned)CA_SIGNREQ_MAX_BYTES);
	switch (t) {
	case CA_SIGNREQ_CERT:
		return check_cert(s, tbs, len);
	case CA_SIGNREQ_CRL:
		return check_crl(s, tbs, len);
	case CA_SIGNREQ_OCSP:
		return check_ocsp(s, tbs, len);
	case CA_SIGNREQ_AUDIT:
		return check_audit(tbs, len);
	case CA_SIGNREQ_MAX:
		break;
	}
	return mca_err_set(MCA_ERR_SIGN, "signer: unknown request type %d", (int)t);
}

static enum mca_err
reply(int fd, int status, const void *body, size_t len)
{
	unsigned char h[CA_SIGNREQ_HDR] = { 0 };
	enum mca_err rc;

	if (len > CA_SIGNREP_MAX)
		len = CA_SIGNREP_MAX;	/* a reason cut short; signatures are smaller */
	ca_put_u32(h, (uint32_t)len);
	h[4] = (unsigned char)status;
	if ((rc = ca_fd_write_all(fd, h, sizeof(h))) != MCA_OK)
		return rc;
	return len > 0 ? ca_fd_write_all(fd, body, len) : MCA_OK;
}

enum mca_err
ca_signer_hello(int fd, enum mca_err rc, const char *detail)
{
	char text[CA_SIGNREP_MAX];
	int n;

	if (rc == MCA_OK)
		return reply(fd, 0, NULL, 0);
	/* "MCA_ERR_PASSPHRASE detail": the parent maps the name back. */
	n = snprintf(text, sizeof(text), "%s %s", mca_errname(rc), detail != NULL ? detail : "");
	return reply(fd, 1, text, n < 0 ? 0 : (size_t)n >= sizeof(text) ? sizeof(text) - 1 : (size_t)n);
}

/* One request whose header h has been read; the TBS follows. */
static enum mca_err
serve_one(const struct ca_signer *s, int fd, const unsigned char h[CA_SIGNREQ_HDR])
{
	uint32_t len = ca_get_u32(h);
	int type = h[5];
	gnutls_sign_algorithm_t alg = (gnutls_sign_algorithm_t)(h[6] << 8 | h[7]);
	gnutls_sign_algorithm_t ours = ca_key_type_sign_algo(ca_signer_key(s)->type);
	unsigned char *tbs = NULL;
	gnutls_datum_t d, sig = { NULL, 0 };
	enum mca_err rc;
	int r;

	if (h[4] != CA_SIGNREQ_VERSION || len == 0 || len > CA_SIGNREQ_MAX_BYTES) {
		rc = mca_err_set(MCA_ERR_PARSE, "signer: request header refused (version %u, "
		    "%u bytes; 1 to %u accepted); closing", h[4], len,
		    (unsigned)CA_SIGNREQ_MAX_BYTES);
		(void)reply(fd, 1, mca_err_detail(), strlen(mca_err_detail()));
		return rc;	/* the stream cannot be trusted any more */
	}
	if ((tbs = malloc(len)) == NULL)
		return MCA_ERR_NOMEM;
	if ((rc = ca_fd_read_all(fd, tbs, len, NULL)) != MCA_OK)
		goto out;
	if (alg != ours)
		rc = mca_err_set(MCA_ERR_SIGN, "signer: signature algorithm %d refused (this "
		    "key signs with %s)", (int)alg, gnutls_sign_get_name(ours));
	else
		rc = ca_signer_check(s, (enum ca_signreq_type)type, tbs, len);
	if (rc != MCA_OK) {
		rc = reply(fd, 1, mca_err_detail(), strlen(mca_err_detail()));
		goto out;
	}
	d.data = tbs;
	d.size = len;
	if ((r = gnutls_privkey_sign_data2(ca_signer_key(s)->priv, ours, 0, &d, &sig)) < 0) {
		mca_err_set(MCA_ERR_SIGN, "signer: signing failed: %s", gnutls_strerror(r));
		rc = reply(fd, 1, mca_err_detail(), strlen(mca_err_detail()));
		goto out;
	}
	rc = reply(fd, 0, sig.data, sig.size);
out:
	gnutls_free(sig.data);
	free(tbs);
	return rc;
}

enum mca_err
ca_signer_serve(const struct ca_signer *s, int fd)
{
	unsigned char h[CA_SIGNREQ_HDR];
	enum mca_err rc;
	bool eof;

	if (s == NULL || ca_signer_key(s)->remote != NULL)
		return mca_err_set(MCA_ERR_INVALID, "ca_signer_serve: needs an in-process signer");
	for (;;) {
		if ((rc = ca_fd_read_all(fd, h, sizeof(h), &eof)) != MCA_OK)
			return eof ? MCA_OK : rc;
		if ((rc = serve_one(s, fd, h)) != MCA_OK)
			return rc;
	}
}
