/*
 * Certificates (RFC 5280): parsing, cached encodings, and the few fields
 * the rest of meshca reads.
 */
#include "ca/ca_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/fileio.h"

#define CERT_MAX_BYTES	CA_FILE_MAX
#define CERT_MAX_URI	(CA_MAX_SPIFFE_ID_LEN + 1)

static bool
cert_is_pem(const unsigned char *data, size_t len)
{
	static const char tag[] = "-----BEGIN CERTIFICATE-----";

	return memmem(data, len, tag, sizeof(tag) - 1) != NULL;
}

/* The single URI SAN (X509-SVID spec 2), or none. */
static enum mca_err
cert_find_uri(struct ca_cert *c)
{
	char buf[CERT_MAX_URI + 1];
	char *uri = NULL;
	unsigned int type;
	size_t size;
	int nuri = 0, r;

	for (unsigned seq = 0; ; seq++) {
		size = sizeof(buf);
		r = gnutls_x509_crt_get_subject_alt_name2(c->crt, seq, buf, &size, &type, NULL);

		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			nuri += 2;	/* an overlong URI is no SPIFFE ID */
			continue;
		}
		if (r < 0)
			return mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.2.1.6: bad "
			    "subjectAltName: %s", gnutls_strerror(r));
		if (type != GNUTLS_SAN_URI)
			continue;
		if (++nuri == 1 && size == strlen(buf) && (uri = strdup(buf)) == NULL)
			return MCA_ERR_NOMEM;
	}
	if (nuri == 1)
		c->uri = uri;
	else
		free(uri);
	return MCA_OK;
}

static enum mca_err
cert_fill(struct ca_cert *c)
{
	gnutls_datum_t der = { NULL, 0 }, pem = { NULL, 0 };
	enum mca_err rc = MCA_ERR_CERT_PARSE;

	if (gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_DER, &der) < 0 ||
	    gnutls_pem_base64_encode2("CERTIFICATE", &der, &pem) < 0)
		goto out;
	if ((rc = mca_buf_set(&c->der, der.data, der.size)) != MCA_OK ||
	    (rc = mca_buf_set(&c->pem, pem.data, pem.size)) != MCA_OK)
		goto out;
	rc = MCA_ERR_CERT_PARSE;
	c->not_before = (int64_t)gnutls_x509_crt_get_activation_time(c->crt);
	c->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(c->crt);
	if (c->not_before == -1 || c->not_after == -1) {
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.1.2.5: unreadable validity");
		goto out;
	}
	rc = cert_find_uri(c);
out:
	gnutls_free(der.data);
	gnutls_free(pem.data);
	return rc;
}

enum mca_err
ca_cert_parse(const unsigned char *data, size_t len, struct ca_cert **out)
{
	struct ca_cert *c = NULL;
	gnutls_datum_t d;
	enum mca_err rc = MCA_ERR_NOMEM;
	int r;

	if (data == NULL || len == 0)
		return mca_err_set(MCA_ERR_CERT_PARSE, "empty certificate");
	if (len > CERT_MAX_BYTES)
		return mca_err_set(MCA_ERR_TOOBIG, "certificate larger than %d bytes",
		    CERT_MAX_BYTES);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	if (gnutls_x509_crt_init(&c->crt) < 0)
		goto out;
	d.data = (unsigned char *)data;
	d.size = (unsigned int)len;
	r = gnutls_x509_crt_import(c->crt, &d, cert_is_pem(data, len) ?
	    GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER);
	if (r < 0) {
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "not an X.509 certificate: %s",
		    gnutls_strerror(r));
		goto out;
	}
	if ((rc = cert_fill(c)) != MCA_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	ca_cert_free(c);
	return rc;
}

enum mca_err
ca_cert_load(const char *path, struct ca_cert **out)
{
	struct mca_buf file;
	char why[256];
	enum mca_err rc;

	mca_buf_init(&file, CERT_MAX_BYTES, false);
	if ((rc = mca_file_read(path, CERT_MAX_BYTES, &file)) == MCA_OK &&
	    (rc = ca_cert_parse(file.data, file.len, out)) != MCA_OK) {
		snprintf(why, sizeof(why), "%s", mca_err_detail());
		mca_err_set(rc, "%s: %s", path, why);
	}
	mca_buf_free(&file);
	return rc;
}

void
ca_cert_free(struct ca_cert *c)
{
	if (c == NULL)
		return;
	gnutls_x509_crt_deinit(c->crt);
	mca_buf_free(&c->der);
	mca_buf_free(&c->pem);
	free(c->uri);
	free(c);
}

const struct mca_buf *
ca_cert_der(const struct ca_cert *c)
{
	return &c->der;
}

const struct mca_buf *
ca_cert_pem(const struct ca_cert *c)
{
	return &c->pem;
}

int64_t
ca_cert_not_before(const struct ca_cert *c)
{
	return c->not_before;
}

int64_t
ca_cert_not_after(const struct ca_cert *c)
{
	return c->not_after;
}

void
ca_cert_serial_hex(const struct ca_cert *c, char out[CA_SERIAL_HEX_MAX])
{
	unsigned char serial[64];
	size_t n = sizeof(serial);
	unsigned char *p = serial;

	out[0] = '\0';
	if (gnutls_x509_crt_get_serial(c->crt, serial, &n) < 0 || n == 0)
		return;
	if (n > 1 && p[0] == 0x00 && (p[1] & 0x80) != 0) {	/* X.690 8.3.2 pad */
		p++;
		n--;
	}
	if (n > (CA_SERIAL_HEX_MAX - 1) / 2)	/* RFC 5280 4.1.2.2: 20 bytes at most */
		return;
	mca_hex_encode(p, n, out);
}

void
ca_cert_fingerprint(const struct ca_cert *c, char out[CA_FINGERPRINT_HEX_LEN])
{
	unsigned char md[32];

	out[0] = '\0';
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, c->der.data, c->der.len, md) < 0)
		return;
	mca_hex_encode(md, sizeof(md), out);
}

const char *
ca_cert_uri(const struct ca_cert *c)
{
	return c->uri;
}

static int
crt_san(const void *obj, unsigned int seq, void *buf, size_t *size, unsigned int *type)
{
	return gnutls_x509_crt_get_subject_alt_name2(((const struct ca_cert *)obj)->crt, seq, buf, size, type, NULL);
}

enum mca_err
ca_cert_sans(const struct ca_cert *c, struct ca_sans *out)
{
	enum mca_err rc = ca_sans_collect(crt_san, c, "RFC 5280 4.2.1.6: bad subjectAltName", out);

	return rc == MCA_ERR_PARSE ? MCA_ERR_CERT_PARSE : rc;
}

/* Hex digits of a fingerprint, lowercased, colons dropped; false if malformed. */
static bool
fingerprint_norm(const char *s, char out[CA_FINGERPRINT_HEX_LEN])
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s) || n == CA_FINGERPRINT_HEX_LEN - 1)
			return false;
		out[n++] = (char)tolower((unsigned char)*s);
	}
	out[n] = '\0';
	return n == CA_FINGERPRINT_HEX_LEN - 1;
}

bool
ca_fingerprint_equal(const char *a, const char *b)
{
	char na[CA_FINGERPRINT_HEX_LEN], nb[CA_FINGERPRINT_HEX_LEN];

	if (!fingerprint_norm(a, na) || !fingerprint_norm(b, nb))
		return false;
	return mca_memeq_ct(na, nb, CA_FINGERPRINT_HEX_LEN - 1) == 0;
}

enum mca_err
ca_cert_verify_data(const struct ca_cert *c, const unsigned char *data, size_t len,
    const unsigned char *sig, size_t siglen)
{
	gnutls_datum_t d = { (unsigned char *)(uintptr_t)data, (unsigned int)len };
	gnutls_datum_t s = { (unsigned char *)(uintptr_t)sig, (unsigned int)siglen };
	gnutls_pubkey_t pub = NULL;
	enum ca_key_type type;
	enum mca_err rc = MCA_ERR_CRYPTO;
	int r;

	if (c == NULL || (data == NULL && len > 0) || sig == NULL || len > UINT32_MAX ||
	    siglen > UINT32_MAX)
		return mca_err_set(MCA_ERR_INVALID, "ca_cert_verify_data: bad argument");
	if (gnutls_pubkey_init(&pub) < 0)
		return MCA_ERR_NOMEM;
	if (gnutls_pubkey_import_x509(pub, c->crt, 0) < 0) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "cannot read the certificate's public key");
		goto out;
	}
	if ((rc = ca_pubkey_classify(pub, &type)) != MCA_OK)
		goto out;
	r = gnutls_pubkey_verify_data2(pub, ca_key_type_sign_algo(type), 0, &d, &s);
	rc = r >= 0 ? MCA_OK : mca_err_set(MCA_ERR_CRYPTO, "signature does not verify: %s",
	    gnutls_strerror(r));
out:
	gnutls_pubkey_deinit(pub);
	return rc;
}

enum mca_err
ca_cert_issued_by(const struct ca_cert *c, const struct ca_cert *root)
{
	unsigned int status = 0, ca = 0;
	int r;

	if (c == NULL || root == NULL)
		return mca_err_set(MCA_ERR_INVALID, "ca_cert_issued_by: NULL argument");
	if (gnutls_x509_crt_get_basic_constraints(c->crt, NULL, &ca, NULL) < 0 || !ca)
		return mca_err_set(MCA_ERR_UNKNOWN_ISSUER, "RFC 5280 4.2.1.9: not a CA certificate");
	r = gnutls_x509_crt_verify(c->crt, &root->crt, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
	    GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS, &status);
	if (r < 0 || status != 0)
		return mca_err_set(MCA_ERR_UNKNOWN_ISSUER, "RFC 5280 6.1: the certificate does not "
		    "chain to the root (status 0x%x)", status);
	return MCA_OK;
}
