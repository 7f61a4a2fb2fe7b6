/*
 * Certificate requests (PKCS#10, RFC 2986).  A request only proves that
 * its sender holds a private key: the CA takes the public key from it and
 * nothing else it asserts about identity.
 */
#include "ca/ca_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static bool
csr_is_pem(const unsigned char *data, size_t len)
{
	static const char tag[] = "-----BEGIN ";

	return memmem(data, len, tag, sizeof(tag) - 1) != NULL;
}

static enum mca_err
csr_import(struct ca_csr *csr, const unsigned char *data, size_t len)
{
	gnutls_datum_t d = { (unsigned char *)data, (unsigned int)len };
	int r;

	if (gnutls_x509_crq_init(&csr->crq) < 0 || gnutls_pubkey_init(&csr->pub) < 0)
		return MCA_ERR_NOMEM;
	r = gnutls_x509_crq_import(csr->crq, &d, csr_is_pem(data, len) ?
	    GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER);
	if (r < 0)
		return mca_err_set(MCA_ERR_CSR_PARSE, "RFC 2986 4: not a PKCS#10 request: %s",
		    gnutls_strerror(r));
	r = gnutls_pubkey_import_x509_crq(csr->pub, csr->crq, 0);
	if (r == GNUTLS_E_ECC_UNSUPPORTED_CURVE || r == GNUTLS_E_UNKNOWN_PK_ALGORITHM)
		return mca_err_set(MCA_ERR_KEY_TYPE, "public key algorithm or curve not "
		    "accepted (only P-256, P-384, Ed25519, RSA): %s", gnutls_strerror(r));
	if (r < 0)
		return mca_err_set(MCA_ERR_CSR_PARSE, "RFC 2986 4.1: unreadable "
		    "subjectPKInfo: %s", gnutls_strerror(r));
	return MCA_OK;
}

enum mca_err
ca_csr_parse(const unsigned char *data, size_t len, struct ca_csr **out)
{
	struct ca_csr *csr = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;
	int r;

	if (data == NULL || len == 0)
		return mca_err_set(MCA_ERR_CSR_PARSE, "empty certificate request");
	if (len > CA_CSR_MAX_BYTES)
		return mca_err_set(MCA_ERR_TOOBIG, "certificate request larger than %d bytes",
		    CA_CSR_MAX_BYTES);
	if ((csr = calloc(1, sizeof(*csr))) == NULL)
		goto out;
	if ((rc = csr_import(csr, data, len)) != MCA_OK)
		goto out;
	/* Classify first: a refused key type is the clearer diagnosis. */
	if ((rc = ca_pubkey_classify(csr->pub, &csr->type)) != MCA_OK)
		goto out;
	/* RFC 2986 3: the signature proves possession of the private key. */
	if ((r = gnutls_x509_crq_verify(csr->crq, 0)) < 0) {
		rc = mca_err_set(MCA_ERR_CSR_SIGNATURE, "RFC 2986 3: the request's signature "
		    "does not verify with its own public key: %s", gnutls_strerror(r));
		goto out;
	}
	*out = csr;
	csr = NULL;
	rc = MCA_OK;
out:
	ca_csr_free(csr);
	return rc;
}

void
ca_csr_free(struct ca_csr *csr)
{
	if (csr == NULL)
		return;
	gnutls_pubkey_deinit(csr->pub);
	gnutls_x509_crq_deinit(csr->crq);
	free(csr);
}

enum ca_key_type
ca_csr_key_type(const struct ca_csr *csr)
{
	return csr->type;
}

static void
mask_format(uint32_t mask, char *out, size_t n)
{
	size_t used = 0;
	int w;

	out[0] = '\0';
	for (int t = 0; t < CA_KEY_TYPE_MAX; t++) {
		if ((mask & CA_KEY_MASK(t)) == 0)
			continue;
		w = snprintf(out + used, n - used, "%s%s", used ? ", " : "",
		    ca_key_type_name((enum ca_key_type)t));
		if (w < 0 || (size_t)w >= n - used)
			return;
		used += (size_t)w;
	}
}

static bool
key_is_rsa(enum ca_key_type t)
{
	return t == CA_KEY_RSA_2048 || t == CA_KEY_RSA_3072 || t == CA_KEY_RSA_4096;
}

/* The RSA types are size classes ordered by size in enum ca_key_type, and
 * an allowed class is a minimum: a key of class t passes when some
 * allowed RSA class is at most t (csr->type already maps a size down to
 * its class, 3500 bits -> rsa-3072). */
static bool
key_allowed(enum ca_key_type t, uint32_t mask)
{
	if (!key_is_rsa(t))
		return (mask & CA_KEY_MASK(t)) != 0;
	for (int c = CA_KEY_RSA_2048; c <= (int)t; c++)
		if ((mask & CA_KEY_MASK(c)) != 0)
			return true;
	return false;
}

enum mca_err
ca_csr_check_key(const struct ca_csr *csr, uint32_t mask)
{
	char list[128];
	unsigned int bits = 0;

	if (key_allowed(csr->type, mask))
		return MCA_OK;
	mask_format(mask, list, sizeof(list));
	if (key_is_rsa(csr->type)) {
		(void)gnutls_pubkey_get_pk_algorithm(csr->pub, &bits);
		return mca_err_set(MCA_ERR_KEY_TYPE, "policy: an RSA key of %u bits is below the "
		    "smallest RSA size this service allows, or RSA is not allowed (allowed: %s; "
		    "an rsa-N type admits RSA keys of N bits or more)", bits,
		    list[0] != '\0' ? list : "none");
	}
	return mca_err_set(MCA_ERR_KEY_TYPE, "policy: key type %s is not allowed (allowed: %s)",
	    ca_key_type_name(csr->type), list[0] != '\0' ? list : "none");
}

static int
crq_san(const void *obj, unsigned int seq, void *buf, size_t *size, unsigned int *type)
{
	return gnutls_x509_crq_get_subject_alt_name(((const struct ca_csr *)obj)->crq, seq, buf, size, type, NULL);
}

enum mca_err
ca_csr_sans(const struct ca_csr *csr, struct ca_sans *out)
{
	enum mca_err rc = ca_sans_collect(crq_san, csr, "RFC 2985 5.4.2: bad extension request", out);

	return rc == MCA_ERR_PARSE ? MCA_ERR_CSR_PARSE : rc;
}

static enum mca_err
crq_fill(gnutls_x509_crq_t crq, const char *cn, const struct ca_sans *sans)
{
	if (gnutls_x509_crq_set_version(crq, 1) < 0 ||
	    gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	    (unsigned int)strlen(cn)) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "cannot set the request's subject");
	if (sans == NULL)
		return MCA_OK;
	for (size_t i = 0; i < sans->ndns; i++)
		if (gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_DNSNAME, sans->dns[i],
		    (unsigned int)strlen(sans->dns[i]), GNUTLS_FSAN_APPEND) < 0)
			return mca_err_set(MCA_ERR_CRYPTO, "cannot add DNS name %s", sans->dns[i]);
	for (size_t i = 0; i < sans->nips; i++) {
		if (sans->ips[i].prefix != sans->ips[i].len * 8)
			return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.2.1.6: a range is not "
			    "an iPAddress");
		if (gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_IPADDRESS,
		    sans->ips[i].addr, sans->ips[i].len, GNUTLS_FSAN_APPEND) < 0)
			return mca_err_set(MCA_ERR_CRYPTO, "cannot add an IP address");
	}
	return MCA_OK;
}

enum mca_err
ca_csr_create(const struct ca_key *k, const char *cn, const struct ca_sans *sans,
    struct mca_buf *pem)
{
	gnutls_x509_crq_t crq = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t out = { NULL, 0 };
	enum mca_err rc = MCA_ERR_NOMEM;
	int r;

	if (k == NULL || cn == NULL || *cn == '\0' || pem == NULL)
		return mca_err_set(MCA_ERR_INVALID, "a key and a common name are required");
	if (gnutls_x509_crq_init(&crq) < 0)
		goto out;
	if ((rc = crq_fill(crq, cn, sans)) != MCA_OK ||
	    (rc = ca_key_pubkey(k, &pub)) != MCA_OK)
		goto out;
	rc = MCA_ERR_SIGN;
	if ((r = gnutls_x509_crq_set_pubkey(crq, pub)) < 0 ||
	    (r = gnutls_x509_crq_privkey_sign(crq, k->priv, ca_key_digest(k), 0)) < 0 ||
	    (r = gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &out)) < 0) {
		rc = mca_err_set(MCA_ERR_SIGN, "signing the request: %s", gnutls_strerror(r));
		goto out;
	}
	rc = mca_buf_set(pem, out.data, out.size);
out:
	gnutls_free(out.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crq_deinit(crq);
	return rc;
}
