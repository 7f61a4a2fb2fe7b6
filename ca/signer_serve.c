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

/* The request as strict DER of type, or MCA_ERR_SIGN citing rule. */
static enum mca_err
tbs_decode(const char *type, const char *rule, const unsigned char *tbs, size_t len,
    asn1_node *n)
{
	if (ca_asn1_decode(type, tbs, len, n) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGN, "%s: not a DER %s: %s", rule, type,
		    mca_err_detail());
	return MCA_OK;
}

static enum mca_err
check_cert(const struct ca_signer *s, const unsigned char *tbs, size_t len)
{
	asn1_node n = NULL;
	enum mca_err rc;

	if ((rc = tbs_decode("TBSCertificate", "RFC 5280 4.1", tbs, len, &n)) == MCA_OK &&
	    (rc = check_sigalg(s, n, "signature", "RFC 5280 4.1.2.3")) == MCA_OK &&
	    (rc = check_issuer(s, n, tbs, len, "issuer", "RFC 5280 4.1.2.4")) == MCA_OK)
		rc = check_cert_extensions(n);
	ca_asn1_free(&n);
	return rc;
}

static enum mca_err
check_crl(const struct ca_signer *s, const unsigned char *tbs, size_t len)
{
	asn1_node n = NULL;
	enum mca_err rc;

	if ((rc = tbs_decode("TBSCertList", "RFC 5280 5.1", tbs, len, &n)) == MCA_OK &&
	    (rc = check_sigalg(s, n, "signature", "RFC 5280 5.1.2.2")) == MCA_OK)
		rc = check_issuer(s, n, tbs, len, "issuer", "RFC 5280 5.1.2.3");
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

	if ((rc = tbs_decode("ResponseData", "RFC 6960 4.2.1", tbs, len, &n)) == MCA_OK)
		rc = check_responder(s, n, tbs, len);
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

/* Appends one reply (header, then the signature or a reason) to out. */
static enum mca_err
reply_append(struct mca_buf *out, int status, const void *body, size_t len)
{
	unsigned char h[CA_SIGNREQ_HDR] = { 0 };
	enum mca_err rc;

	if (len > CA_SIGNREP_MAX)
		len = CA_SIGNREP_MAX;	/* a reason cut short; signatures are smaller */
	ca_put_u32(h, (uint32_t)len);
	h[4] = (unsigned char)status;
	if ((rc = mca_buf_append(out, h, sizeof(h))) != MCA_OK)
		return rc;
	return len > 0 ? mca_buf_append(out, body, len) : MCA_OK;
}

static enum mca_err
reply(int fd, int status, const void *body, size_t len)
{
	struct mca_buf out = { 0 };
	enum mca_err rc;

	if ((rc = reply_append(&out, status, body, len)) == MCA_OK)
		rc = ca_fd_write_all(fd, out.data, out.len);
	mca_buf_free(&out);
	return rc;
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

/*
 * The serving loop reads what the socket has, up to SERVE_IN bytes,
 * answers every complete request in it in order, and sends those
 * replies in one write: the parent writes a round of requests at once
 * (signer_remote.c), so one wakeup here answers all of them.  A request
 * larger than SERVE_IN (a big CRL) is read into its own allocation.
 */
#define SERVE_IN	(64 * 1024)
#define SERVE_OUT	(64 * 1024)	/* replies pending past this are sent first */

struct serve {
	const struct ca_signer	*s;
	int			 fd;
	unsigned char		*in;
	size_t			 have;		/* bytes in in[], from a request's start */
	struct mca_buf		 out;		/* replies not yet written */
};

static enum mca_err
serve_flush(struct serve *sv)
{
	enum mca_err rc = MCA_OK;

	if (sv->out.len > 0)
		rc = ca_fd_write_all(sv->fd, sv->out.data, sv->out.len);
	mca_buf_reset(&sv->out);
	return rc;
}

/* A header the stream cannot go on after: refused, and we stop. */
static enum mca_err
serve_header_check(struct serve *sv, const unsigned char h[CA_SIGNREQ_HDR])
{
	uint32_t len = ca_get_u32(h);
	enum mca_err rc;

	if (h[4] == CA_SIGNREQ_VERSION && len > 0 && len <= CA_SIGNREQ_MAX_BYTES)
		return MCA_OK;
	rc = mca_err_set(MCA_ERR_PARSE, "signer: request header refused (version %u, "
	    "%u bytes; 1 to %u accepted); closing", h[4], len, (unsigned)CA_SIGNREQ_MAX_BYTES);
	if (reply_append(&sv->out, 1, mca_err_detail(), strlen(mca_err_detail())) == MCA_OK)
		(void)serve_flush(sv);
	return rc;	/* the stream cannot be trusted any more */
}

/* One request: checked, signed, its reply queued (a refusal is a reply). */
static enum mca_err
serve_answer(struct serve *sv, const unsigned char h[CA_SIGNREQ_HDR], unsigned char *tbs,
    size_t len)
{
	int type = h[5];
	gnutls_sign_algorithm_t alg = (gnutls_sign_algorithm_t)(h[6] << 8 | h[7]);
	gnutls_sign_algorithm_t ours = ca_key_type_sign_algo(ca_signer_key(sv->s)->type);
	gnutls_datum_t d = { tbs, (unsigned int)len }, sig = { NULL, 0 };
	enum mca_err rc;
	int r;

	if (alg != ours)
		rc = mca_err_set(MCA_ERR_SIGN, "signer: signature algorithm %d refused (this "
		    "key signs with %s)", (int)alg, gnutls_sign_get_name(ours));
	else
		rc = ca_signer_check(sv->s, (enum ca_signreq_type)type, tbs, len);
	if (rc == MCA_OK &&
	    (r = gnutls_privkey_sign_data2(ca_signer_key(sv->s)->priv, ours, 0, &d, &sig)) < 0)
		rc = mca_err_set(MCA_ERR_SIGN, "signer: signing failed: %s", gnutls_strerror(r));
	if (sv->out.len >= SERVE_OUT) {
		enum mca_err wrc = serve_flush(sv);

		if (wrc != MCA_OK) {
			gnutls_free(sig.data);
			return wrc;
		}
	}
	if (rc != MCA_OK)
		rc = reply_append(&sv->out, 1, mca_err_detail(), strlen(mca_err_detail()));
	else
		rc = reply_append(&sv->out, 0, sig.data, sig.size);
	gnutls_free(sig.data);
	return rc;
}

/* The request at in[off] is larger than in[]: its TBS in an allocation
 * of its own, completed from the socket.  Consumes all of in[]. */
static enum mca_err
serve_big(struct serve *sv, size_t off)
{
	unsigned char h[CA_SIGNREQ_HDR], *tbs = NULL;
	size_t len, part = sv->have - off - CA_SIGNREQ_HDR;
	enum mca_err rc;

	memcpy(h, sv->in + off, sizeof(h));
	len = ca_get_u32(h);
	if ((rc = serve_flush(sv)) != MCA_OK)	/* answer what came before first */
		return rc;
	if ((tbs = malloc(len)) == NULL)
		return mca_err_set(MCA_ERR_NOMEM, "signer: %zu bytes to sign", len);
	memcpy(tbs, sv->in + off + CA_SIGNREQ_HDR, part);
	if ((rc = ca_fd_read_all(sv->fd, tbs + part, len - part, NULL)) == MCA_OK)
		rc = serve_answer(sv, h, tbs, len);
	free(tbs);
	return rc;
}

/* Every complete request in in[]; an incomplete one moves to its start. */
static enum mca_err
serve_requests(struct serve *sv)
{
	size_t off = 0;
	enum mca_err rc = MCA_OK;

	while (rc == MCA_OK && sv->have - off >= CA_SIGNREQ_HDR) {
		unsigned char *h = sv->in + off;
		size_t len = ca_get_u32(h);

		if ((rc = serve_header_check(sv, h)) != MCA_OK)
			break;
		if (sv->have - off - CA_SIGNREQ_HDR >= len) {
			rc = serve_answer(sv, h, h + CA_SIGNREQ_HDR, len);
			off += CA_SIGNREQ_HDR + len;
		} else if (CA_SIGNREQ_HDR + len > SERVE_IN) {
			rc = serve_big(sv, off);
			off = sv->have;
		} else
			break;	/* the rest of it is still on its way */
	}
	sv->have -= off;
	memmove(sv->in, sv->in + off, sv->have);
	return rc;
}

/* More bytes into in[] (there is room: what is left is an incomplete
 * request that fits).  *eof: the parent closed between requests. */
static enum mca_err
serve_read(struct serve *sv, bool *eof)
{
	ssize_t r;

	*eof = false;
	do
		r = read(sv->fd, sv->in + sv->have, SERVE_IN - sv->have);
	while (r < 0 && errno == EINTR);
	if (r == 0 && sv->have == 0)
		*eof = true;
	if (r <= 0)
		return mca_err_set(MCA_ERR_IO, "signer socket: %s", r < 0 ? strerror(errno) :
		    "closed by the other end");
	sv->have += (size_t)r;
	return MCA_OK;
}

enum mca_err
ca_signer_serve(const struct ca_signer *s, int fd)
{
	struct serve sv = { .s = s, .fd = fd };
	enum mca_err rc;
	bool eof = false;

	if (s == NULL || ca_signer_key(s)->remote != NULL)
		return mca_err_set(MCA_ERR_INVALID, "ca_signer_serve: needs an in-process signer");
	if ((sv.in = malloc(SERVE_IN)) == NULL)
		return mca_err_set(MCA_ERR_NOMEM, "signer: input buffer");
	mca_buf_init(&sv.out, SERVE_OUT + CA_SIGNREQ_HDR + CA_SIGNREP_MAX, false);
	while ((rc = serve_requests(&sv)) == MCA_OK && (rc = serve_flush(&sv)) == MCA_OK &&
	    (rc = serve_read(&sv, &eof)) == MCA_OK)
		;
	if (eof)
		rc = MCA_OK;
	mca_buf_free(&sv.out);
	free(sv.in);
	return rc;
}
