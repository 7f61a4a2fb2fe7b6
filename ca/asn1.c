/*
 * libtasn1 glue: the project's ASN.1 module (ca/pkix.asn, compiled into
 * pkix_asn1_tab.c at build time), loaded once, and the encoding helpers
 * crl.c and ocsp.c share: times, integers, signatures, DER headers.
 */
#include "ca/ca_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODULE		"MeshcaPKIX."
#define TYPE_MAX	64
/* Largest single node we encode with asn1_der_coding (an OCSP response). */
#define ENCODE_MAX	(1024 * 1024)
/* Room for any int a struct tm field can print, though we print 15 bytes. */
#define TIME_TEXT	80

extern const asn1_static_node pkix_asn1_tab[];	/* pkix_asn1_tab.c */

static pthread_once_t defs_once = PTHREAD_ONCE_INIT;
static asn1_node defs;
static char defs_error[ASN1_MAX_ERROR_DESCRIPTION_SIZE];

static void
defs_load(void)
{
	if (asn1_array2tree(pkix_asn1_tab, &defs, defs_error) != ASN1_SUCCESS)
		defs = NULL;
}

enum mca_err
ca_asn1_create(const char *type, asn1_node *out)
{
	char name[TYPE_MAX];
	int r;

	*out = NULL;
	if (pthread_once(&defs_once, defs_load) != 0 || defs == NULL)
		return mca_err_set(MCA_ERR_CRYPTO, "ca/pkix.asn does not load: %s", defs_error);
	if ((size_t)snprintf(name, sizeof(name), MODULE "%s", type) >= sizeof(name))
		return mca_err_set(MCA_ERR_INVALID, "ASN.1 type name too long");
	if ((r = asn1_create_element(defs, name, out)) != ASN1_SUCCESS)
		return mca_err_set(MCA_ERR_CRYPTO, "ASN.1 type %s: %s", type, asn1_strerror(r));
	return MCA_OK;
}

void
ca_asn1_free(asn1_node *n)
{
	if (*n != NULL)
		asn1_delete_structure(n);
}

enum mca_err
ca_asn1_write(asn1_node n, const char *name, const void *value, size_t len)
{
	int r;

	if (len > INT32_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "ASN.1 value %s too long", name);
	if ((r = asn1_write_value(n, name, value, (int)len)) != ASN1_SUCCESS)
		return mca_err_set(MCA_ERR_CRYPTO, "ASN.1: writing %s: %s", name,
		    asn1_strerror(r));
	return MCA_OK;
}

enum mca_err
ca_asn1_write_str(asn1_node n, const char *name, const char *value)
{
	/* len 0: libtasn1 reads numbers, OIDs, times and names as C strings. */
	return ca_asn1_write(n, name, value, 0);
}

enum mca_err
ca_asn1_encode(asn1_node n, const char *name, struct mca_buf *out)
{
	char why[ASN1_MAX_ERROR_DESCRIPTION_SIZE] = "";
	const char *what = name == NULL ? "" : name;
	unsigned char *p = NULL;
	enum mca_err rc;
	int len = 0, r;

	r = asn1_der_coding(n, what, NULL, &len, why);
	if (r != ASN1_MEM_ERROR || len <= 0 || len > ENCODE_MAX)
		return mca_err_set(MCA_ERR_CRYPTO, "ASN.1: encoding %s: %s %s", what,
		    asn1_strerror(r), why);
	if ((p = malloc((size_t)len)) == NULL)
		return MCA_ERR_NOMEM;
	if ((r = asn1_der_coding(n, what, p, &len, why)) != ASN1_SUCCESS)
		rc = mca_err_set(MCA_ERR_CRYPTO, "ASN.1: encoding %s: %s %s", what,
		    asn1_strerror(r), why);
	else
		rc = mca_buf_set(out, p, (size_t)len);
	free(p);
	return rc;
}

enum mca_err
ca_asn1_decode(const char *type, const unsigned char *der, size_t len, asn1_node *out)
{
	char why[ASN1_MAX_ERROR_DESCRIPTION_SIZE] = "";
	int r, max;
	enum mca_err rc;

	if (len == 0 || len > INT32_MAX)
		return mca_err_set(MCA_ERR_PARSE, "ASN.1 %s: bad length", type);
	if ((rc = ca_asn1_create(type, out)) != MCA_OK)
		return rc;
	max = (int)len;
	r = asn1_der_decoding2(out, der, &max, ASN1_DECODE_FLAG_STRICT_DER, why);
	if (r == ASN1_SUCCESS && (size_t)max != len)
		r = ASN1_DER_OVERFLOW;	/* trailing bytes after the value */
	if (r != ASN1_SUCCESS) {
		ca_asn1_free(out);
		return mca_err_set(MCA_ERR_PARSE, "X.690: malformed %s: %s %s", type,
		    asn1_strerror(r), why);
	}
	return MCA_OK;
}

/* RFC 5280 4.1.2.5.1 / 4.1.2.5.2: "YYMMDDHHMMSSZ" or "YYYYMMDDHHMMSSZ". */
static enum mca_err
time_text(int64_t t, bool generalized, char out[TIME_TEXT])
{
	struct tm tm;
	time_t tt = (time_t)t;

	/* The epoch .. 9999-12-31T23:59:59Z (RFC 5280 4.1.2.5). */
	if (t < 0 || t > 253402300799 || gmtime_r(&tt, &tm) == NULL)
		return mca_err_set(MCA_ERR_INVALID, "time %lld out of range", (long long)t);
	if (generalized)
		snprintf(out, TIME_TEXT, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		snprintf(out, TIME_TEXT, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return MCA_OK;
}

enum mca_err
ca_asn1_write_time(asn1_node n, const char *name, int64_t t)
{
	char text[TIME_TEXT], sub[TYPE_MAX * 2];
	/* RFC 5280 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050. */
	bool gen = t >= CA_GENTIME_FROM;
	enum mca_err rc;

	if ((rc = time_text(t, gen, text)) != MCA_OK)
		return rc;
	if ((size_t)snprintf(sub, sizeof(sub), "%s.%s", name, gen ? "generalTime" : "utcTime")
	    >= sizeof(sub))
		return mca_err_set(MCA_ERR_INVALID, "ASN.1 name too long");
	if ((rc = ca_asn1_write_str(n, name, gen ? "generalTime" : "utcTime")) != MCA_OK)
		return rc;
	return ca_asn1_write_str(n, sub, text);
}

enum mca_err
ca_asn1_write_gentime(asn1_node n, const char *name, int64_t t)
{
	char text[TIME_TEXT];
	enum mca_err rc;

	if ((rc = time_text(t, true, text)) != MCA_OK)
		return rc;
	return ca_asn1_write_str(n, name, text);
}

enum mca_err
ca_asn1_write_uint(asn1_node n, const char *name, uint64_t v)
{
	unsigned char be[9];

	be[0] = 0;	/* X.690 8.3: a leading 0x00 keeps it positive */
	for (int i = 8; i >= 1; i--, v >>= 8)
		be[i] = (unsigned char)v;
	return ca_asn1_write(n, name, be, sizeof(be));
}

enum mca_err
ca_serial_from_hex(const char *hex, unsigned char out[CA_SERIAL_MAX + 1], size_t *len)
{
	size_t n, odd, i;
	unsigned char *p = out + 1;

	if (hex == NULL || (n = strnlen(hex, CA_SERIAL_HEX_MAX)) == 0 ||
	    n >= CA_SERIAL_HEX_MAX)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.1.2.2: a serial is 1 to 20 "
		    "bytes of hex");
	odd = n % 2;
	memset(out, 0, CA_SERIAL_MAX + 1);
	for (i = 0; i < n; i++) {
		int c = hex[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return mca_err_set(MCA_ERR_INVALID, "serial is not hex: %.41s", hex);
		p[(i + odd) / 2] |= (unsigned char)(((i + odd) % 2) ? v : v << 4);
	}
	*len = (n + odd) / 2;
	if (p[0] & 0x80)	/* X.690 8.3.2: out[0] = 0x00 keeps the INTEGER positive */
		*len += 1;
	else
		memmove(out, p, *len);
	return MCA_OK;
}

enum mca_err
ca_sign_alg(const struct ca_key *k, gnutls_sign_algorithm_t *alg)
{
	switch (ca_key_get_type(k)) {
	case CA_KEY_ECDSA_P256:
		*alg = GNUTLS_SIGN_ECDSA_SHA256;	/* RFC 5758 3.2 */
		return MCA_OK;
	case CA_KEY_ECDSA_P384:
		*alg = GNUTLS_SIGN_ECDSA_SHA384;
		return MCA_OK;
	case CA_KEY_ED25519:
		*alg = GNUTLS_SIGN_EDDSA_ED25519;	/* RFC 8410 3 */
		return MCA_OK;
	case CA_KEY_RSA_2048:
	case CA_KEY_RSA_3072:
	case CA_KEY_RSA_4096:
		*alg = GNUTLS_SIGN_RSA_SHA256;		/* RFC 4055 5 */
		return MCA_OK;
	case CA_KEY_TYPE_MAX:
		break;
	}
	return mca_err_set(MCA_ERR_KEY_TYPE, "no signature algorithm for this key");
}

enum mca_err
ca_asn1_write_sigalg(asn1_node n, const char *name, gnutls_sign_algorithm_t alg)
{
	static const unsigned char null_der[] = { 0x05, 0x00 };
	char sub[TYPE_MAX * 2];
	const char *oid = gnutls_sign_get_oid(alg);
	bool rsa = gnutls_sign_get_pk_algorithm(alg) == GNUTLS_PK_RSA;
	enum mca_err rc;

	if (oid == NULL)
		return mca_err_set(MCA_ERR_CRYPTO, "no OID for signature algorithm %d", (int)alg);
	if ((size_t)snprintf(sub, sizeof(sub), "%s%salgorithm", name,
	    *name != '\0' ? "." : "") >= sizeof(sub))
		return mca_err_set(MCA_ERR_INVALID, "ASN.1 name too long");
	if ((rc = ca_asn1_write_str(n, sub, oid)) != MCA_OK)
		return rc;
	snprintf(sub, sizeof(sub), "%s%sparameters", name, *name != '\0' ? "." : "");
	/* RFC 4055 5: NULL parameters for RSA; RFC 5758 3.2, RFC 8410 3: absent. */
	return rsa ? ca_asn1_write(n, sub, null_der, sizeof(null_der)) :
	    ca_asn1_write(n, sub, NULL, 0);
}

/* What ca_sign is given: a TBSCertList's first element is its version
 * INTEGER (RFC 5280 5.1), a ResponseData's its [0] version or [1]/[2]
 * responderID (RFC 6960 4.2.1).  The signer process checks the whole
 * structure; this only names the request. */
static enum ca_signreq_type
tbs_type(const unsigned char *tbs, size_t len)
{
	size_t off = 2;

	if (len > 2 && (tbs[1] & 0x80))
		off += tbs[1] & 0x7f;	/* long-form length octets */
	return off < len && tbs[off] == 0x02 ? CA_SIGNREQ_CRL : CA_SIGNREQ_OCSP;
}

enum mca_err
ca_sign(const struct ca_key *k, gnutls_sign_algorithm_t alg, const unsigned char *tbs,
    size_t len, gnutls_datum_t *sig)
{
	gnutls_datum_t d = { (unsigned char *)tbs, (unsigned int)len };
	int r;

	if (len > UINT32_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "data to sign too large");
	if (k->remote != NULL)
		return ca_remote_sign(k, tbs_type(tbs, len), alg, tbs, len, sig);
	/* sign_data2 with an explicit algorithm: Ed25519 has no separate hash. */
	if ((r = gnutls_privkey_sign_data2(k->priv, alg, 0, &d, sig)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "signing: %s", gnutls_strerror(r));
	return MCA_OK;
}

enum mca_err
ca_der_header(unsigned char tag, size_t len, struct mca_buf *out)
{
	unsigned char h[1 + 1 + sizeof(unsigned long)];
	int n = sizeof(h) - 1;

	if (len > UINT32_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "DER value too long");
	h[0] = tag;
	asn1_length_der((unsigned long)len, h + 1, &n);
	return mca_buf_append(out, h, (size_t)n + 1);
}

enum mca_err
ca_crt_key_bits(gnutls_x509_crt_t crt, struct mca_buf *out)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t spki = { NULL, 0 };
	asn1_node n = NULL;
	unsigned char *bits = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;
	int len = 0, r;

	if (gnutls_pubkey_init(&pub) < 0)
		goto out;
	if (gnutls_pubkey_import_x509(pub, crt, 0) < 0 ||
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) < 0) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.1.2.7: unreadable public key");
		goto out;
	}
	if ((rc = ca_asn1_decode("SubjectPublicKeyInfo", spki.data, spki.size, &n)) != MCA_OK)
		goto out;
	/* For a BIT STRING, libtasn1 counts the length in bits. */
	if ((r = asn1_read_value(n, "subjectPublicKey", NULL, &len)) != ASN1_MEM_ERROR ||
	    len <= 0) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.1.2.7: empty public key");
		goto out;
	}
	rc = MCA_ERR_NOMEM;
	if ((bits = malloc((size_t)len / 8 + 1)) == NULL)
		goto out;
	if ((r = asn1_read_value(n, "subjectPublicKey", bits, &len)) != ASN1_SUCCESS ||
	    len % 8 != 0) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.1.2.7: unreadable public key");
		goto out;
	}
	rc = mca_buf_set(out, bits, (size_t)len / 8);
out:
	free(bits);
	ca_asn1_free(&n);
	gnutls_free(spki.data);
	gnutls_pubkey_deinit(pub);
	return rc;
}
