/*
 * The lean X509-SVID writer: a workload certificate's TBSCertificate
 * (RFC 5280 4.1) written as DER directly, once, then signed and wrapped
 * into the Certificate in the same buffer.
 *
 * Through GnuTLS's setters every leaf cost libtasn1 structure creation,
 * writes and DER coding, and, with the key in the signer process, a
 * second encoding with a placeholder signature and a decoding to cut the
 * TBS out again (signer_remote.c).  The template is fixed, so it is
 * written here: what depends on the leaf (serial, validity, subject,
 * subjectPublicKeyInfo, SKI, SANs, revocation pointers) per leaf, what
 * depends on the signer only (issuer name, signature algorithm,
 * basicConstraints, keyUsage, extendedKeyUsage, AKI) once, in struct
 * ca_leaf_exts, from GnuTLS's own encodings.  Every byte is the one the
 * setters wrote: tests/unit/ca_test.c builds each leaf again through them
 * and compares.
 *
 * ca_issue_leaf (issue.c) has checked every input before (leaf_req_check,
 * ca_signer_names_check, ca_validity); the writer still bounds the whole
 * certificate (LEAF_DER_MAX) and refuses what it cannot encode.
 */
#include "ca/ca_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Far above the largest leaf the checks admit: 100 SANs of 253 bytes, a
 * 2048-byte SPIFFE ID, three 2048-byte URLs, an 8192-bit RSA key and an
 * issuer name from a certificate file of at most CA_FILE_MAX bytes. */
#define LEAF_DER_MAX	(256 * 1024)
#define LEAF_TIME_MAX	253402300799	/* 9999-12-31T23:59:59Z, RFC 5280 4.1.2.5 */

/* Tags (X.690 8.1.2): universal, then context-specific constructed. */
#define TAG_BOOLEAN	0x01
#define TAG_INTEGER	0x02
#define TAG_BIT_STRING	0x03
#define TAG_OCTET	0x04
#define TAG_PRINTABLE	0x13
#define TAG_UTF8	0x0c
#define TAG_UTCTIME	0x17
#define TAG_GENTIME	0x18
#define TAG_SEQUENCE	0x30
#define TAG_SET		0x31
#define TAG_CTX(n)	(0xa0 | (n))	/* [n] constructed */
#define TAG_GN_DNS	0x82		/* GeneralName [2] IMPLICIT IA5String */
#define TAG_GN_URI	0x86		/* [6] IMPLICIT IA5String */
#define TAG_GN_IP	0x87		/* [7] IMPLICIT OCTET STRING */

/* Object identifiers as DER (tag, length, value). */
static const unsigned char oid_cn[] = { 0x06, 0x03, 0x55, 0x04, 0x03 };	/* 2.5.4.3 */
static const unsigned char oid_ou[] = { 0x06, 0x03, 0x55, 0x04, 0x0b };	/* 2.5.4.11 */
static const unsigned char oid_ski[] = { 0x06, 0x03, 0x55, 0x1d, 0x0e };
static const unsigned char oid_san[] = { 0x06, 0x03, 0x55, 0x1d, 0x11 };
static const unsigned char oid_cdp[] = { 0x06, 0x03, 0x55, 0x1d, 0x1f };
static const unsigned char oid_aia[] = { 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01 };
static const unsigned char oid_ad_ocsp[] = { 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01 };
static const unsigned char oid_ad_ca[] = { 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02 };

/* SubjectPublicKeyInfo algorithms, as GnuTLS writes them: RFC 5480 2.1.1
 * id-ecPublicKey with the namedCurve, RFC 8410 3 id-Ed25519 without
 * parameters, RFC 3279 2.3.1 rsaEncryption with NULL parameters. */
static const unsigned char spki_p256[] = { 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
	0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char spki_p384[] = { 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
	0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char spki_ed25519[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const unsigned char spki_rsa[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
	0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00 };

/* ---- the DER writer ------------------------------------------------------
 *
 * One growing buffer, capped at LEAF_DER_MAX.  The first failure is kept
 * in rc and makes every later write a no-op, so a builder checks once at
 * the end.  A constructed value is opened with der_begin, which writes
 * its tag and one length byte, and closed with der_end, which fills the
 * length in and, when it needs the long form (X.690 8.1.3.5), moves the
 * contents up to make room: the common short values move nothing.
 */

struct der {
	struct mca_buf	 b;
	enum mca_err	 rc;
};

_Static_assert(LEAF_DER_MAX < (1 << 24), "der_end writes at most 3 length octets");

/* Room for n more bytes. */
static bool
der_grow(struct der *w, size_t n)
{
	if (w->rc != MCA_OK)
		return false;
	if (n < w->b.cap - w->b.len)	/* room, and for mca_buf's NUL: the common case */
		return true;
	if (n > LEAF_DER_MAX - w->b.len) {
		w->rc = mca_err_set(MCA_ERR_TOOBIG, "certificate larger than %d bytes",
		    LEAF_DER_MAX);
		return false;
	}
	w->rc = mca_buf_reserve(&w->b, n);
	return w->rc == MCA_OK;
}

static void
der_put(struct der *w, const void *p, size_t n)
{
	if (n > 0 && der_grow(w, n)) {
		memcpy(w->b.data + w->b.len, p, n);
		w->b.len += n;
	}
}

static void
der_byte(struct der *w, unsigned char c)
{
	der_put(w, &c, 1);
}

/* Tag and definite length (X.690 8.1.2, 8.1.3) of a value of n bytes. */
static void
der_header(struct der *w, unsigned char tag, size_t n)
{
	unsigned char h[5] = { tag };
	size_t hl = 2;

	if (n > LEAF_DER_MAX) {
		if (w->rc == MCA_OK)
			w->rc = mca_err_set(MCA_ERR_TOOBIG, "DER value of %zu bytes", n);
		return;
	}
	if (n < 0x80)
		h[1] = (unsigned char)n;
	else {
		hl = n <= 0xff ? 3 : n <= 0xffff ? 4 : 5;
		h[1] = (unsigned char)(0x80 | (hl - 2));
		for (size_t i = hl - 1, v = n; i >= 2; i--, v >>= 8)
			h[i] = (unsigned char)v;
	}
	der_put(w, h, hl);
}

static void
der_tlv(struct der *w, unsigned char tag, const void *p, size_t n)
{
	der_header(w, tag, n);
	der_put(w, p, n);
}

/* Opens a constructed value; returns where its contents start. */
static size_t
der_begin(struct der *w, unsigned char tag)
{
	unsigned char h[2] = { tag, 0 };

	der_put(w, h, sizeof(h));
	return w->b.len;
}

static void
der_end(struct der *w, size_t mark)
{
	size_t n, hl;

	if (w->rc != MCA_OK)
		return;
	n = w->b.len - mark;
	if (n < 0x80) {
		w->b.data[mark - 1] = (unsigned char)n;
		return;
	}
	hl = n <= 0xff ? 1 : n <= 0xffff ? 2 : 3;
	if (!der_grow(w, hl))
		return;
	memmove(w->b.data + mark + hl, w->b.data + mark, n);
	w->b.data[mark - 1] = (unsigned char)(0x80 | hl);
	for (size_t i = hl, v = n; i > 0; i--, v >>= 8)
		w->b.data[mark + i - 1] = (unsigned char)v;
	w->b.len += hl;
}

/* A non-negative INTEGER from big-endian magnitude bytes (X.690 8.3:
 * minimal, with a 0x00 first when the top bit is set). */
static void
der_uint(struct der *w, const unsigned char *p, size_t n)
{
	bool pad;

	while (n > 1 && p[0] == 0) {
		p++;
		n--;
	}
	pad = n == 0 || (p[0] & 0x80) != 0;
	der_header(w, TAG_INTEGER, n + pad);
	if (pad)
		der_byte(w, 0);
	der_put(w, p, n);
}

static void
two_digits(char *s, int v)
{
	s[0] = (char)('0' + v / 10 % 10);
	s[1] = (char)('0' + v % 10);
}

/* RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime
 * YYYYMMDDHHMMSSZ from 2050, always in UTC with seconds. */
static void
der_time(struct der *w, int64_t t)
{
	bool gen = t >= CA_GENTIME_FROM;
	time_t tt = (time_t)t;
	struct tm tm;
	char s[15];
	size_t n = 0;

	if (t < 0 || t > LEAF_TIME_MAX || gmtime_r(&tt, &tm) == NULL) {
		if (w->rc == MCA_OK)
			w->rc = mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.1.2.5: time %lld out "
			    "of range", (long long)t);
		return;
	}
	if (gen) {
		two_digits(s, (tm.tm_year + 1900) / 100);
		n = 2;
	}
	two_digits(s + n, (tm.tm_year + 1900) % 100);
	two_digits(s + n + 2, tm.tm_mon + 1);
	two_digits(s + n + 4, tm.tm_mday);
	two_digits(s + n + 6, tm.tm_hour);
	two_digits(s + n + 8, tm.tm_min);
	two_digits(s + n + 10, tm.tm_sec);
	s[n + 12] = 'Z';
	der_tlv(w, gen ? TAG_GENTIME : TAG_UTCTIME, s, n + 13);
}

/* Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }
 * (RFC 5280 4.1): DER leaves a FALSE critical out (X.690 11.5).  The
 * value's OCTET STRING is left open for the caller to fill and close. */
static void
der_ext_begin(struct der *w, const unsigned char *oid, size_t oidlen, bool critical,
    size_t marks[2])
{
	static const unsigned char crit_true[] = { TAG_BOOLEAN, 0x01, 0xff };

	marks[0] = der_begin(w, TAG_SEQUENCE);
	der_put(w, oid, oidlen);
	if (critical)
		der_put(w, crit_true, sizeof(crit_true));
	marks[1] = der_begin(w, TAG_OCTET);
}

static void
der_ext_end(struct der *w, const size_t marks[2])
{
	der_end(w, marks[1]);
	der_end(w, marks[0]);
}

/* Hands the bytes over to out (which is replaced). */
static enum mca_err
der_take(struct der *w, struct mca_buf *out)
{
	if (w->rc == MCA_OK)
		w->rc = mca_buf_terminate(&w->b);
	if (w->rc != MCA_OK)
		return w->rc;
	mca_buf_free(out);
	*out = w->b;
	w->b = (struct mca_buf){ 0 };
	return MCA_OK;
}

/* ---- what every leaf of a signer shares, encoded once ------------------ */

struct ca_leaf_exts {
	gnutls_sign_algorithm_t	 alg;		/* the intermediate key's */
	struct mca_buf		 sigalg;	/* its AlgorithmIdentifier */
	struct mca_buf		 issuer;	/* the intermediate's subject, raw */
	struct mca_buf		 usages;	/* Extensions: BC, KU, EKU */
	struct mca_buf		 aki;		/* Extension: AKI */
};

#define OID_BC		"2.5.29.19"	/* RFC 5280 4.2.1.9 */
#define OID_KU		"2.5.29.15"	/* RFC 5280 4.2.1.3 */
#define OID_EKU		"2.5.29.37"	/* RFC 5280 4.2.1.12 */
#define OID_AKI		"2.5.29.35"	/* RFC 5280 4.2.1.1 */

static const struct {
	const char		*oid;
	unsigned char		 der[5];
} shared_exts[] = {
	{ OID_BC, { 0x06, 0x03, 0x55, 0x1d, 0x13 } },
	{ OID_KU, { 0x06, 0x03, 0x55, 0x1d, 0x0f } },
	{ OID_EKU, { 0x06, 0x03, 0x55, 0x1d, 0x25 } },
	{ OID_AKI, { 0x06, 0x03, 0x55, 0x1d, 0x23 } },
};
#define SHARED_AKI	3

/* X509-SVID spec 4.1-4.4: the leaf's constraints and usages, set on a
 * scratch certificate by GnuTLS's setters. */
static enum mca_err
leaf_set_usages(gnutls_x509_crt_t crt)
{
	if (gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the leaf extensions");
	return MCA_OK;
}

/* Extension i of shared_exts as scratch holds it, appended to out whole. */
static enum mca_err
shared_ext_read(gnutls_x509_crt_t scratch, size_t i, struct mca_buf *out)
{
	gnutls_datum_t v = { NULL, 0 };
	unsigned int critical = 0;
	struct der w = { 0 };
	size_t marks[2];
	enum mca_err rc;
	int r;

	r = gnutls_x509_crt_get_extension_by_oid2(scratch, shared_exts[i].oid, 0, &v, &critical);
	if (r < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot read back extension %s: %s",
		    shared_exts[i].oid, gnutls_strerror(r));
	der_ext_begin(&w, shared_exts[i].der, sizeof(shared_exts[i].der), critical != 0, marks);
	der_put(&w, v.data, v.size);
	der_ext_end(&w, marks);
	rc = w.rc != MCA_OK ? w.rc : mca_buf_append(out, w.b.data, w.b.len);
	mca_buf_free(&w.b);
	gnutls_free(v.data);
	return rc;
}

/* The intermediate's signature algorithm, from its key type as the
 * signer (keys.c) and the signer process see it. */
static enum mca_err
issuer_sigalg(gnutls_x509_crt_t issuer, struct ca_leaf_exts *e)
{
	gnutls_pubkey_t pub = NULL;
	enum ca_key_type type;
	asn1_node n = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if (gnutls_pubkey_init(&pub) < 0)
		return rc;
	rc = mca_err_set(MCA_ERR_CRYPTO, "the intermediate certificate's public key");
	if (gnutls_pubkey_import_x509(pub, issuer, 0) < 0 ||
	    (rc = ca_pubkey_classify(pub, &type)) != MCA_OK)
		goto out;
	e->alg = ca_key_type_sign_algo(type);
	if ((rc = ca_asn1_create("AlgorithmIdentifier", &n)) != MCA_OK ||
	    (rc = ca_asn1_write_sigalg(n, "", e->alg)) != MCA_OK ||
	    (rc = ca_asn1_encode(n, "", &e->sigalg)) != MCA_OK)
		goto out;
out:
	ca_asn1_free(&n);
	gnutls_pubkey_deinit(pub);
	return rc;
}

enum mca_err
ca_leaf_exts_new(gnutls_x509_crt_t issuer, struct ca_leaf_exts **out)
{
	struct ca_leaf_exts *e;
	gnutls_x509_crt_t scratch = NULL;
	gnutls_datum_t dn = { NULL, 0 };
	enum mca_err rc = MCA_ERR_NOMEM;

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return MCA_ERR_NOMEM;
	if (gnutls_x509_crt_init(&scratch) < 0)
		goto out;
	if ((rc = leaf_set_usages(scratch)) != MCA_OK ||
	    (rc = ca_crt_set_aki(scratch, issuer)) != MCA_OK)
		goto out;
	for (size_t i = 0; i < SHARED_AKI; i++)
		if ((rc = shared_ext_read(scratch, i, &e->usages)) != MCA_OK)
			goto out;
	if ((rc = shared_ext_read(scratch, SHARED_AKI, &e->aki)) != MCA_OK ||
	    (rc = issuer_sigalg(issuer, e)) != MCA_OK)
		goto out;
	/* RFC 5280 4.1.2.4: the issuer is the intermediate's subject, byte for
	 * byte (what the signer process compares, signer_serve.c). */
	if (gnutls_x509_crt_get_raw_dn(issuer, &dn) < 0) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.1.2.6: unreadable intermediate subject");
		goto out;
	}
	if ((rc = mca_buf_set(&e->issuer, dn.data, dn.size)) != MCA_OK)
		goto out;
	*out = e;
	e = NULL;
out:
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(scratch);
	ca_leaf_exts_free(e);
	return rc;
}

void
ca_leaf_exts_free(struct ca_leaf_exts *e)
{
	if (e == NULL)
		return;
	mca_buf_free(&e->sigalg);
	mca_buf_free(&e->issuer);
	mca_buf_free(&e->usages);
	mca_buf_free(&e->aki);
	free(e);
}

/* ---- the per-leaf parts -------------------------------------------------- */

/* GnuTLS writes a name attribute as PrintableString when every byte is in
 * this set, as UTF8String otherwise.  It is X.680's PrintableString
 * alphabet less the apostrophe. */
static bool
name_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(" ()+,-./:=?", c) != NULL))
			return false;
	}
	return true;
}

/* Subject (RFC 5280 4.1.2.6): one RDN, CN=<name> or OU=<name>. */
static void
der_subject(struct der *w, const char *name, bool ou)
{
	size_t n = strlen(name), seq, rdn, atv;

	seq = der_begin(w, TAG_SEQUENCE);
	rdn = der_begin(w, TAG_SET);
	atv = der_begin(w, TAG_SEQUENCE);
	der_put(w, ou ? oid_ou : oid_cn, sizeof(oid_cn));
	der_tlv(w, name_printable(name, n) ? TAG_PRINTABLE : TAG_UTF8, name, n);
	der_end(w, atv);
	der_end(w, rdn);
	der_end(w, seq);
}

/* The subject key as exported from GnuTLS: an EC point's coordinates or
 * an Ed25519 key (a), or an RSA modulus (a) and exponent (b). */
struct pubkey_parts {
	const unsigned char	*alg;		/* SPKI AlgorithmIdentifier */
	size_t			 alglen;
	size_t			 coord;		/* ECDSA field size; 0: not ECDSA */
	bool			 rsa;
	gnutls_datum_t		 a, b;
};

static enum mca_err
pubkey_parts_ec(gnutls_pubkey_t pub, struct pubkey_parts *k)
{
	gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;

	if (gnutls_pubkey_export_ecc_raw2(pub, &curve, &k->a, &k->b, GNUTLS_EXPORT_FLAG_NO_LZ) < 0)
		return mca_err_set(MCA_ERR_KEY_TYPE, "unreadable EC public key");
	switch (curve) {
	case GNUTLS_ECC_CURVE_SECP256R1:
		k->alg = spki_p256;
		k->alglen = sizeof(spki_p256);
		k->coord = 32;
		break;
	case GNUTLS_ECC_CURVE_SECP384R1:
		k->alg = spki_p384;
		k->alglen = sizeof(spki_p384);
		k->coord = 48;
		break;
	case GNUTLS_ECC_CURVE_ED25519:
		k->alg = spki_ed25519;
		k->alglen = sizeof(spki_ed25519);
		if (k->a.size != 32)
			return mca_err_set(MCA_ERR_KEY_TYPE, "RFC 8410 4: an Ed25519 key is "
			    "32 bytes");
		return MCA_OK;
	default:
		return mca_err_set(MCA_ERR_KEY_TYPE, "EC curve not accepted (P-256, P-384, "
		    "Ed25519)");
	}
	if (k->a.size > k->coord || k->b.size > k->coord)
		return mca_err_set(MCA_ERR_KEY_TYPE, "RFC 5480 2.2: EC point out of range");
	return MCA_OK;
}

static enum mca_err
pubkey_parts_get(gnutls_pubkey_t pub, struct pubkey_parts *k)
{
	switch (gnutls_pubkey_get_pk_algorithm(pub, NULL)) {
	case GNUTLS_PK_ECDSA:
	case GNUTLS_PK_EDDSA_ED25519:
		return pubkey_parts_ec(pub, k);
	case GNUTLS_PK_RSA:
		k->alg = spki_rsa;
		k->alglen = sizeof(spki_rsa);
		k->rsa = true;
		if (gnutls_pubkey_export_rsa_raw2(pub, &k->a, &k->b, GNUTLS_EXPORT_FLAG_NO_LZ) < 0)
			return mca_err_set(MCA_ERR_KEY_TYPE, "unreadable RSA public key");
		return MCA_OK;
	default:
		return mca_err_set(MCA_ERR_KEY_TYPE, "public key algorithm not accepted");
	}
}

/* Left-pads an EC coordinate to the field size (SEC 1 2.3.5). */
static void
der_coord(struct der *w, const gnutls_datum_t *c, size_t size)
{
	static const unsigned char zeros[48];

	der_put(w, zeros, size - c->size);
	der_put(w, c->data, c->size);
}

/* subjectPublicKey's bits: ECDSA 04 || X || Y (RFC 5480 2.2), Ed25519
 * the key (RFC 8410 4), RSA RSAPublicKey (RFC 3279 2.3.1). */
static void
der_key_bits(struct der *w, const struct pubkey_parts *k)
{
	size_t seq;

	if (k->rsa) {
		seq = der_begin(w, TAG_SEQUENCE);
		der_uint(w, k->a.data, k->a.size);
		der_uint(w, k->b.data, k->b.size);
		der_end(w, seq);
	} else if (k->coord > 0) {
		der_byte(w, 0x04);	/* uncompressed */
		der_coord(w, &k->a, k->coord);
		der_coord(w, &k->b, k->coord);
	} else
		der_put(w, k->a.data, k->a.size);
}

/*
 * subjectPublicKeyInfo (RFC 5280 4.1.2.7), canonical as
 * gnutls_x509_crt_set_pubkey writes it whatever the CSR's encoding was,
 * and the SKI as gnutls_pubkey_get_key_id (SHA-1) computes it: over the
 * whole DER SubjectPublicKeyInfo, not method (1)'s BIT STRING alone
 * (RFC 5280 4.2.1.2 admits other methods).
 */
static enum mca_err
der_spki(struct der *w, gnutls_pubkey_t pub, unsigned char ski[CA_KEY_ID_LEN])
{
	struct pubkey_parts k = { 0 };
	size_t at = w->b.len, seq, bits;
	enum mca_err rc;

	if ((rc = pubkey_parts_get(pub, &k)) != MCA_OK)
		goto out;
	seq = der_begin(w, TAG_SEQUENCE);
	der_put(w, k.alg, k.alglen);
	bits = der_begin(w, TAG_BIT_STRING);
	der_byte(w, 0);		/* no unused bits */
	der_key_bits(w, &k);
	der_end(w, bits);
	der_end(w, seq);
	if ((rc = w->rc) != MCA_OK)
		goto out;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA1, w->b.data + at, w->b.len - at, ski) < 0)
		rc = mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.2.1.2: cannot hash the key");
out:
	gnutls_free(k.a.data);
	gnutls_free(k.b.data);
	return rc;
}

/* RFC 5280 4.2.1.2: KeyIdentifier ::= OCTET STRING, not critical. */
static void
der_ski_ext(struct der *w, const unsigned char ski[CA_KEY_ID_LEN])
{
	size_t ext[2];

	der_ext_begin(w, oid_ski, sizeof(oid_ski), false, ext);
	der_tlv(w, TAG_OCTET, ski, CA_KEY_ID_LEN);
	der_ext_end(w, ext);
}

/* RFC 5280 4.2.1.6; X509-SVID spec 2: the SPIFFE ID as the one URI, then
 * the DNS names and the addresses, in the order asked.  Not critical:
 * the subject is never empty. */
static void
der_san_ext(struct der *w, const char *uri, const struct ca_sans *s)
{
	size_t ext[2], names;

	der_ext_begin(w, oid_san, sizeof(oid_san), false, ext);
	names = der_begin(w, TAG_SEQUENCE);
	der_tlv(w, TAG_GN_URI, uri, strlen(uri));
	for (size_t i = 0; s != NULL && i < s->ndns; i++)
		der_tlv(w, TAG_GN_DNS, s->dns[i], strlen(s->dns[i]));
	for (size_t i = 0; s != NULL && i < s->nips; i++)
		der_tlv(w, TAG_GN_IP, s->ips[i].addr, s->ips[i].len);
	der_end(w, names);
	der_ext_end(w, ext);
}

/* RFC 5280 4.2.1.13 cRLDistributionPoints: one DistributionPoint whose
 * distributionPoint [0] is a fullName [0] of one URI, no reasons, no
 * cRLIssuer. */
static void
der_cdp_ext(struct der *w, const char *url)
{
	size_t ext[2], points, point, dpname, full;

	der_ext_begin(w, oid_cdp, sizeof(oid_cdp), false, ext);
	points = der_begin(w, TAG_SEQUENCE);
	point = der_begin(w, TAG_SEQUENCE);
	dpname = der_begin(w, TAG_CTX(0));
	full = der_begin(w, TAG_CTX(0));
	der_tlv(w, TAG_GN_URI, url, strlen(url));
	der_end(w, full);
	der_end(w, dpname);
	der_end(w, point);
	der_end(w, points);
	der_ext_end(w, ext);
}

static void
der_access(struct der *w, const unsigned char oid[10], const char *url)
{
	size_t ad = der_begin(w, TAG_SEQUENCE);

	der_put(w, oid, 10);
	der_tlv(w, TAG_GN_URI, url, strlen(url));
	der_end(w, ad);
}

/* RFC 5280 4.2.2.1 authorityInfoAccess: id-ad-ocsp, then id-ad-caIssuers,
 * each when set. */
static void
der_aia_ext(struct der *w, const char *ocsp, const char *ca_issuers)
{
	size_t ext[2], list;

	der_ext_begin(w, oid_aia, sizeof(oid_aia), false, ext);
	list = der_begin(w, TAG_SEQUENCE);
	if (ocsp != NULL)
		der_access(w, oid_ad_ocsp, ocsp);
	if (ca_issuers != NULL)
		der_access(w, oid_ad_ca, ca_issuers);
	der_end(w, list);
	der_ext_end(w, ext);
}

/* extensions [3] in the order the GnuTLS setters produced: SKI (set with
 * the base fields), BC, KU, EKU, SAN, CDP, AIA, AKI. */
static void
der_extensions(struct der *w, const struct ca_leaf_exts *e, const struct ca_leaf_req *req,
    const unsigned char ski[CA_KEY_ID_LEN])
{
	size_t tagged = der_begin(w, TAG_CTX(3)), list = der_begin(w, TAG_SEQUENCE);

	der_ski_ext(w, ski);
	der_put(w, e->usages.data, e->usages.len);
	der_san_ext(w, req->spiffe_id, req->sans);
	if (req->crl_url != NULL)
		der_cdp_ext(w, req->crl_url);
	if (req->ocsp_url != NULL || req->ca_issuers_url != NULL)
		der_aia_ext(w, req->ocsp_url, req->ca_issuers_url);
	der_put(w, e->aki.data, e->aki.len);
	der_end(w, list);
	der_end(w, tagged);
}

/* TBSCertificate (RFC 5280 4.1). */
static enum mca_err
der_tbs(struct der *w, const struct ca_leaf_exts *e, const struct ca_crt_base *b,
    const struct ca_leaf_req *req, bool subject_ou)
{
	static const unsigned char v3[] = { TAG_CTX(0), 0x03, TAG_INTEGER, 0x01, 0x02 };
	unsigned char ski[CA_KEY_ID_LEN];
	size_t tbs, validity;
	enum mca_err rc;

	tbs = der_begin(w, TAG_SEQUENCE);
	der_put(w, v3, sizeof(v3));
	der_uint(w, b->serial, sizeof(b->serial));
	der_put(w, e->sigalg.data, e->sigalg.len);
	der_put(w, e->issuer.data, e->issuer.len);
	validity = der_begin(w, TAG_SEQUENCE);
	der_time(w, b->not_before);
	der_time(w, b->not_after);
	der_end(w, validity);
	der_subject(w, req->common_name, subject_ou);
	if ((rc = der_spki(w, b->pub, ski)) != MCA_OK)
		return rc;
	der_extensions(w, e, req, ski);
	der_end(w, tbs);
	return w->rc;
}

/* The TBS signed once, by the key here or in the signer process (which
 * checks it first, ca_signer_check). */
static enum mca_err
tbs_sign(const struct ca_key *key, gnutls_sign_algorithm_t alg, const unsigned char *tbs,
    size_t len, gnutls_datum_t *sig)
{
	gnutls_datum_t d = { (unsigned char *)tbs, (unsigned int)len };
	int r;

	if (key->remote != NULL)
		return ca_remote_sign(key, CA_SIGNREQ_CERT, alg, tbs, len, sig);
	if ((r = gnutls_privkey_sign_data2(key->priv, alg, 0, &d, sig)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "signing the certificate: %s", gnutls_strerror(r));
	return MCA_OK;
}

/* A first size for the buffer, so that it is not grown on the way. */
static size_t
leaf_size_hint(const struct ca_leaf_exts *e, const struct ca_leaf_req *req)
{
	const char *url[3] = { req->crl_url, req->ocsp_url, req->ca_issuers_url };
	size_t n = 1024 + e->issuer.len + e->usages.len + e->aki.len + strlen(req->spiffe_id);

	for (size_t i = 0; req->sans != NULL && i < req->sans->ndns; i++)
		n += strlen(req->sans->dns[i]) + 4;
	if (req->sans != NULL)
		n += req->sans->nips * 18;
	for (int i = 0; i < 3; i++)
		n += url[i] != NULL ? strlen(url[i]) + 16 : 0;
	return n < LEAF_DER_MAX ? n : LEAF_DER_MAX;
}

enum mca_err
ca_leaf_der_build(const struct ca_signer *s, const struct ca_crt_base *b,
    const struct ca_leaf_req *req, bool subject_ou, struct mca_buf *out)
{
	const struct ca_leaf_exts *e = ca_signer_leaf_exts(s);
	const struct ca_key *key = ca_signer_key(s);
	gnutls_sign_algorithm_t alg;
	gnutls_datum_t sig = { NULL, 0 };
	struct der w = { 0 };
	size_t crt, tbs;
	enum mca_err rc;

	if ((rc = ca_sign_alg(key, &alg)) != MCA_OK)
		return rc;
	if (alg != e->alg)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.1.1.2: the key does not sign with "
		    "the intermediate's algorithm");
	(void)der_grow(&w, leaf_size_hint(e, req));
	crt = der_begin(&w, TAG_SEQUENCE);	/* Certificate, RFC 5280 4.1.1 */
	tbs = w.b.len;
	if ((rc = der_tbs(&w, e, b, req, subject_ou)) != MCA_OK ||
	    (rc = tbs_sign(key, alg, w.b.data + tbs, w.b.len - tbs, &sig)) != MCA_OK)
		goto out;
	der_put(&w, e->sigalg.data, e->sigalg.len);
	der_header(&w, TAG_BIT_STRING, (size_t)sig.size + 1);
	der_byte(&w, 0);	/* no unused bits */
	der_put(&w, sig.data, sig.size);
	der_end(&w, crt);
	rc = w.rc != MCA_OK ? w.rc : der_take(&w, out);
out:
	gnutls_free(sig.data);
	mca_buf_free(&w.b);
	return rc;
}
