/*
 * Certificate revocation lists (RFC 5280 5), encoded with libtasn1 from
 * ca/pkix.asn and signed by the intermediate through GnuTLS.
 *
 * libtasn1 appends to a SEQUENCE OF by walking the list, so writing 100,000
 * entries into one TBSCertList element is quadratic.  Each entry is instead
 * encoded on its own (two reusable RevokedCertificate elements: with and
 * without a reasonCode) and the DER of the list is spliced into the
 * encoded TBSCertList between nextUpdate and crlExtensions, where RFC 5280
 * 5.1 puts it.  Building is linear in the number of entries.
 */
#include "ca/ca_internal.h"

#include <string.h>

#define CRL_MAX		(256u * 1024 * 1024)	/* DER of a whole CRL */
#define ENTRY_MAX	256			/* DER of one entry */
#define REASON_MAX	10
#define OID_AKI		"2.5.29.35"	/* RFC 5280 4.2.1.1 */
#define OID_CRL_NUMBER	"2.5.29.20"	/* RFC 5280 5.2.3 */
#define OID_REASON	"2.5.29.21"	/* RFC 5280 5.3.1 */

/* RFC 5280 5.3.1; 7 is not used. */
static const char *const reason_names[REASON_MAX + 1] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", NULL,
	"removeFromCRL", "privilegeWithdrawn", "aACompromise",
};

enum mca_err
ca_crl_reason_parse(const char *name, int *code)
{
	if (name == NULL || code == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no reason");
	for (int i = 0; i <= REASON_MAX; i++)
		if (reason_names[i] != NULL && strcmp(name, reason_names[i]) == 0) {
			*code = i;
			return MCA_OK;
		}
	return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: unknown CRL reason \"%.40s\"",
	    name);
}

const char *
ca_crl_reason_name(int code)
{
	if (code < 0 || code > REASON_MAX)
		return NULL;
	return reason_names[code];
}

/*
 * The state of one build: reusable RevokedCertificate elements, one per
 * shape (with or without reasonCode, revocationDate as UTCTime or
 * GeneralizedTime: libtasn1 drops a CHOICE's other alternatives once one
 * is written, so each element keeps its own), and the encoded reasons.
 */
struct crl_enc {
	asn1_node	entry[2][2];	/* [has reason][generalTime] */
	struct mca_buf	reason_der[REASON_MAX + 1];
};

static void
crl_enc_free(struct crl_enc *e)
{
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			ca_asn1_free(&e->entry[i][j]);
	for (int i = 0; i <= REASON_MAX; i++)
		mca_buf_free(&e->reason_der[i]);
}

static enum mca_err
crl_enc_init(struct crl_enc *e)
{
	asn1_node r = NULL;
	char num[8];
	enum mca_err rc;

	memset(e, 0, sizeof(*e));
	if ((rc = ca_asn1_create("CRLReason", &r)) != MCA_OK)
		return rc;
	for (int i = 0; i <= REASON_MAX; i++) {
		if (reason_names[i] == NULL)
			continue;
		snprintf(num, sizeof(num), "%d", i);
		if ((rc = ca_asn1_write_str(r, "", num)) != MCA_OK ||
		    (rc = ca_asn1_encode(r, NULL, &e->reason_der[i])) != MCA_OK)
			break;
	}
	ca_asn1_free(&r);
	return rc;
}

/* The element for an entry's shape, made on first use. */
static enum mca_err
crl_enc_entry(struct crl_enc *e, bool reason, bool gen, asn1_node *out)
{
	asn1_node *n = &e->entry[reason][gen];
	enum mca_err rc;

	*out = *n;
	if (*n != NULL)
		return MCA_OK;
	if ((rc = ca_asn1_create("RevokedCertificate", n)) != MCA_OK)
		return rc;
	if (!reason)
		rc = ca_asn1_write_str(*n, "crlEntryExtensions", NULL);
	else if ((rc = ca_asn1_write_str(*n, "crlEntryExtensions", "NEW")) == MCA_OK &&
	    (rc = ca_asn1_write_str(*n, "crlEntryExtensions.?LAST.extnID", OID_REASON)) ==
	    MCA_OK)
		rc = ca_asn1_write_str(*n, "crlEntryExtensions.?LAST.critical", "FALSE");
	if (rc != MCA_OK)
		ca_asn1_free(n);
	*out = *n;
	return rc;
}

static enum mca_err
reason_check(int reason)
{
	if (reason < -1 || reason > REASON_MAX || (reason >= 0 && reason_names[reason] == NULL))
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: %d is not a CRL reason",
		    reason);
	if (reason == 8)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: removeFromCRL belongs "
		    "to delta CRLs only");
	return MCA_OK;
}

/* One RevokedCertificate appended to out. */
static enum mca_err
crl_entry(struct crl_enc *e, const struct ca_revoked *r, struct mca_buf *out)
{
	unsigned char serial[CA_SERIAL_MAX + 1], der[ENTRY_MAX];
	char why[ASN1_MAX_ERROR_DESCRIPTION_SIZE];
	size_t slen;
	asn1_node n;
	enum mca_err rc;
	int len = sizeof(der), ar;

	if ((rc = reason_check(r->reason)) != MCA_OK ||
	    (rc = ca_serial_from_hex(r->serial, serial, &slen)) != MCA_OK)
		return rc;
	/* RFC 5280 5.3.1: reasonCode SHOULD be absent rather than unspecified. */
	if ((rc = crl_enc_entry(e, r->reason > 0, r->revoked_at >= CA_GENTIME_FROM, &n)) !=
	    MCA_OK ||
	    (rc = ca_asn1_write(n, "userCertificate", serial, slen)) != MCA_OK ||
	    (rc = ca_asn1_write_time(n, "revocationDate", r->revoked_at)) != MCA_OK)
		return rc;
	if (r->reason > 0 && (rc = ca_asn1_write(n, "crlEntryExtensions.?1.extnValue",
	    e->reason_der[r->reason].data, e->reason_der[r->reason].len)) != MCA_OK)
		return rc;
	if ((ar = asn1_der_coding(n, "", der, &len, why)) != ASN1_SUCCESS)
		return mca_err_set(MCA_ERR_CRYPTO, "ASN.1: encoding a CRL entry: %s %s",
		    asn1_strerror(ar), why);
	return mca_buf_append(out, der, (size_t)len);
}

/* The content of revokedCertificates: every entry's DER, in list order. */
static enum mca_err
crl_entries(const struct ca_revoked *list, size_t n, struct mca_buf *out)
{
	struct crl_enc e;
	enum mca_err rc;

	if ((rc = crl_enc_init(&e)) != MCA_OK)
		goto out;
	for (size_t i = 0; i < n; i++)
		if ((rc = crl_entry(&e, &list[i], out)) != MCA_OK)
			goto out;
out:
	crl_enc_free(&e);
	return rc;
}

static enum mca_err
ext_add(asn1_node tbs, const char *oid, asn1_node value)
{
	struct mca_buf der = { 0 };
	enum mca_err rc;

	if ((rc = ca_asn1_encode(value, NULL, &der)) == MCA_OK &&
	    (rc = ca_asn1_write_str(tbs, "crlExtensions", "NEW")) == MCA_OK &&
	    (rc = ca_asn1_write_str(tbs, "crlExtensions.?LAST.extnID", oid)) == MCA_OK &&
	    (rc = ca_asn1_write_str(tbs, "crlExtensions.?LAST.critical", "FALSE")) == MCA_OK)
		rc = ca_asn1_write(tbs, "crlExtensions.?LAST.extnValue", der.data, der.len);
	mca_buf_free(&der);
	return rc;
}

/* RFC 5280 5.2.1 authorityKeyIdentifier (= the issuer's SKI), 5.2.3 cRLNumber. */
static enum mca_err
crl_extensions(asn1_node tbs, gnutls_x509_crt_t issuer, uint64_t number)
{
	unsigned char id[64];
	size_t idlen = sizeof(id);
	asn1_node aki = NULL, num = NULL;
	enum mca_err rc;

	if (gnutls_x509_crt_get_subject_key_id(issuer, id, &idlen, NULL) < 0) {
		idlen = sizeof(id);
		if (gnutls_x509_crt_get_key_id(issuer, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0)
			return mca_err_set(MCA_ERR_SIGN, "RFC 5280 5.2.1: no issuer key id");
	}
	if ((rc = ca_asn1_create("AuthorityKeyIdentifier", &aki)) != MCA_OK ||
	    (rc = ca_asn1_write(aki, "keyIdentifier", id, idlen)) != MCA_OK ||
	    (rc = ca_asn1_write_str(aki, "authorityCertIssuer", NULL)) != MCA_OK ||
	    (rc = ca_asn1_write_str(aki, "authorityCertSerialNumber", NULL)) != MCA_OK ||
	    (rc = ca_asn1_create("CRLNumber", &num)) != MCA_OK ||
	    (rc = ca_asn1_write_uint(num, "", number)) != MCA_OK ||
	    (rc = ext_add(tbs, OID_AKI, aki)) != MCA_OK ||
	    (rc = ext_add(tbs, OID_CRL_NUMBER, num)) != MCA_OK)
		goto out;
out:
	ca_asn1_free(&aki);
	ca_asn1_free(&num);
	return rc;
}

/* Issuer = the intermediate's subject, byte for byte (RFC 5280 5.1.2.3). */
static enum mca_err
crl_issuer(asn1_node tbs, gnutls_x509_crt_t issuer)
{
	gnutls_datum_t dn = { NULL, 0 };
	asn1_node name = NULL;
	enum mca_err rc;
	int r;

	if (gnutls_x509_crt_get_raw_dn(issuer, &dn) < 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 5.1.2.3: unreadable issuer name");
	if ((rc = ca_asn1_decode("Name", dn.data, dn.size, &name)) == MCA_OK &&
	    (r = asn1_copy_node(tbs, "issuer", name, "")) != ASN1_SUCCESS)
		rc = mca_err_set(MCA_ERR_CRYPTO, "ASN.1: copying the issuer: %s",
		    asn1_strerror(r));
	ca_asn1_free(&name);
	gnutls_free(dn.data);
	return rc;
}

/* TBSCertList without revokedCertificates (spliced in later). */
static enum mca_err
crl_tbs_base(const struct ca_signer *s, gnutls_sign_algorithm_t alg, uint64_t number,
    int64_t this_update, int64_t next_update, struct mca_buf *tbs, size_t *ext_len)
{
	gnutls_x509_crt_t issuer = ca_signer_cert(s)->crt;
	struct mca_buf ext = { 0 };
	asn1_node n = NULL;
	enum mca_err rc;

	if ((rc = ca_asn1_create("TBSCertList", &n)) != MCA_OK ||
	    (rc = ca_asn1_write_str(n, "version", "1")) != MCA_OK ||	/* v2 */
	    (rc = ca_asn1_write_sigalg(n, "signature", alg)) != MCA_OK ||
	    (rc = crl_issuer(n, issuer)) != MCA_OK ||
	    (rc = ca_asn1_write_time(n, "thisUpdate", this_update)) != MCA_OK ||
	    (rc = ca_asn1_write_time(n, "nextUpdate", next_update)) != MCA_OK ||
	    (rc = ca_asn1_write_str(n, "revokedCertificates", NULL)) != MCA_OK ||
	    (rc = crl_extensions(n, issuer, number)) != MCA_OK ||
	    (rc = ca_asn1_encode(n, NULL, tbs)) != MCA_OK ||
	    (rc = ca_asn1_encode(n, "crlExtensions", &ext)) != MCA_OK)
		goto out;
	*ext_len = ext.len;
out:
	mca_buf_free(&ext);
	ca_asn1_free(&n);
	return rc;
}

/*
 * base is SEQUENCE { ... nextUpdate, [0] crlExtensions }; out gets the
 * same with SEQUENCE OF { entries } before the [0] (RFC 5280 5.1: the list
 * is absent, not empty, when nothing is revoked).
 */
static enum mca_err
crl_splice(const struct mca_buf *base, size_t ext_len, const struct mca_buf *entries,
    struct mca_buf *out)
{
	long clen;
	int hlen = 0;
	size_t split, list_len, hdr_len;
	enum mca_err rc;

	if (base->len < 2 || base->data[0] != 0x30 ||
	    (clen = asn1_get_length_der(base->data + 1, (int)base->len - 1, &hlen)) < 0 ||
	    (size_t)clen + 1 + (size_t)hlen != base->len || ext_len > (size_t)clen)
		return mca_err_set(MCA_ERR_CRYPTO, "unexpected TBSCertList encoding");
	hdr_len = 1 + (size_t)hlen;
	split = base->len - ext_len;
	if (base->data[split] != 0xa0)
		return mca_err_set(MCA_ERR_CRYPTO, "unexpected TBSCertList encoding");
	if (entries->len == 0)
		return mca_buf_set(out, base->data, base->len);
	{
		struct mca_buf list_hdr = { 0 };

		if ((rc = ca_der_header(0x30, entries->len, &list_hdr)) != MCA_OK)
			return rc;
		list_len = list_hdr.len + entries->len;
		mca_buf_reset(out);
		if ((rc = ca_der_header(0x30, (size_t)clen + list_len, out)) == MCA_OK &&
		    (rc = mca_buf_append(out, base->data + hdr_len, split - hdr_len)) == MCA_OK &&
		    (rc = mca_buf_append(out, list_hdr.data, list_hdr.len)) == MCA_OK &&
		    (rc = mca_buf_append(out, entries->data, entries->len)) == MCA_OK)
			rc = mca_buf_append(out, base->data + split, ext_len);
		mca_buf_free(&list_hdr);
	}
	return rc;
}

/* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue } */
static enum mca_err
crl_wrap(const struct mca_buf *tbs, gnutls_sign_algorithm_t alg, const gnutls_datum_t *sig,
    struct mca_buf *out)
{
	struct mca_buf algid = { 0 }, bits = { 0 };
	asn1_node a = NULL;
	enum mca_err rc;

	if ((rc = ca_asn1_create("AlgorithmIdentifier", &a)) != MCA_OK ||
	    (rc = ca_asn1_write_sigalg(a, "", alg)) != MCA_OK ||
	    (rc = ca_asn1_encode(a, NULL, &algid)) != MCA_OK ||
	    (rc = ca_der_header(0x03, (size_t)sig->size + 1, &bits)) != MCA_OK ||
	    (rc = mca_buf_append(&bits, "", 1)) != MCA_OK ||	/* no unused bits */
	    (rc = mca_buf_append(&bits, sig->data, sig->size)) != MCA_OK)
		goto out;
	mca_buf_reset(out);
	if ((rc = ca_der_header(0x30, tbs->len + algid.len + bits.len, out)) == MCA_OK &&
	    (rc = mca_buf_append(out, tbs->data, tbs->len)) == MCA_OK &&
	    (rc = mca_buf_append(out, algid.data, algid.len)) == MCA_OK)
		rc = mca_buf_append(out, bits.data, bits.len);
out:
	mca_buf_free(&algid);
	mca_buf_free(&bits);
	ca_asn1_free(&a);
	return rc;
}

enum mca_err
ca_crl_build(const struct ca_signer *s, const struct ca_revoked *list, size_t n,
    uint64_t number, int64_t this_update, int64_t next_update, struct mca_buf *out)
{
	struct mca_buf base = { 0 }, entries, tbs, crl;
	gnutls_datum_t sig = { NULL, 0 };
	gnutls_sign_algorithm_t alg;
	size_t ext_len = 0;
	enum mca_err rc;

	if (s == NULL || out == NULL || (list == NULL && n > 0))
		return mca_err_set(MCA_ERR_INVALID, "CRL: signer and output are required");
	if (next_update <= this_update)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.1.2.5: nextUpdate must be "
		    "after thisUpdate");
	mca_buf_init(&entries, CRL_MAX, false);
	mca_buf_init(&tbs, CRL_MAX, false);
	mca_buf_init(&crl, CRL_MAX, false);
	if ((rc = ca_sign_alg(ca_signer_key(s), &alg)) != MCA_OK ||
	    (rc = crl_tbs_base(s, alg, number, this_update, next_update, &base,
	    &ext_len)) != MCA_OK ||
	    (rc = crl_entries(list, n, &entries)) != MCA_OK ||
	    (rc = crl_splice(&base, ext_len, &entries, &tbs)) != MCA_OK ||
	    (rc = ca_sign(ca_signer_key(s), alg, tbs.data, tbs.len, &sig)) != MCA_OK ||
	    (rc = crl_wrap(&tbs, alg, &sig, &crl)) != MCA_OK)
		goto out;
	rc = mca_buf_set(out, crl.data, crl.len);	/* honours the caller's cap */
out:
	gnutls_free(sig.data);
	mca_buf_free(&base);
	mca_buf_free(&entries);
	mca_buf_free(&tbs);
	mca_buf_free(&crl);
	return rc;
}
