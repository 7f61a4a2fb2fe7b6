/*
 * The CA hierarchy `meshca init` creates: a self-signed root and the
 * intermediate that signs workload certificates (RFC 5280 profile).
 */
#include "ca/ca_internal.h"

#include <string.h>

#define ROOT_CN		"meshca root CA"
#define INTER_CN	"meshca intermediate CA"
#define ROOT_PATHLEN	1	/* root -> intermediate -> leaf */
#define INTER_PATHLEN	0

/* Subject "CN=<cn>,O=<td>" (RFC 4514 order: O is the first RDN). */
static enum mca_err
ca_subject_set(gnutls_x509_crt_t crt, const char *cn, const char *td)
{
	if (gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, td,
	    (unsigned int)strlen(td)) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	    (unsigned int)strlen(cn)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the subject");
	return MCA_OK;
}

/* RFC 5280 4.2.1.9 and 4.2.1.3: a CA that signs certificates and CRLs. */
static enum mca_err
ca_constraints_set(gnutls_x509_crt_t crt, int pathlen)
{
	if (gnutls_x509_crt_set_basic_constraints(crt, 1, pathlen) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the CA extensions");
	return MCA_OK;
}

/* Builds, signs (issuer == NULL: self-signed by key) and wraps a CA certificate. */
static enum mca_err
ca_cert_build(const struct ca_key *subject_key, const char *cn, const char *td,
    int pathlen, const struct ca_cert *issuer, const struct ca_key *issuer_key,
    int64_t now, int64_t ttl, const struct ca_name_constraints *nc, struct ca_cert **out)
{
	struct ca_crt_base b;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t der = { NULL, 0 };
	enum mca_err rc;

	memset(&b, 0, sizeof(b));
	if ((rc = ca_trust_domain_check(td)) != MCA_OK ||
	    (rc = ca_validity(now, ttl, issuer != NULL ? issuer->not_after : INT64_MAX,
	    &b.not_before, &b.not_after)) != MCA_OK ||
	    (rc = ca_key_pubkey(subject_key, &b.pub)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	if (gnutls_x509_crt_init(&crt) < 0)
		goto out;
	if ((rc = ca_crt_base_apply(crt, &b)) != MCA_OK ||
	    (rc = ca_subject_set(crt, cn, td)) != MCA_OK ||
	    (rc = ca_constraints_set(crt, pathlen)) != MCA_OK ||
	    (nc != NULL && (rc = ca_nc_apply(crt, nc)) != MCA_OK) ||
	    (issuer != NULL && (rc = ca_crt_set_aki(crt, issuer->crt)) != MCA_OK) ||
	    (rc = ca_crt_sign(crt, issuer != NULL ? issuer->crt : crt, issuer_key, &der)) != MCA_OK)
		goto out;
	rc = ca_cert_parse(der.data, der.size, out);
out:
	gnutls_free(der.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_pubkey_deinit(b.pub);
	return rc;
}

enum mca_err
ca_root_create(const struct ca_key *key, const char *trust_domain, int64_t now, int64_t ttl,
    struct ca_cert **out)
{
	if (key == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "root: a key is required");
	return ca_cert_build(key, ROOT_CN, trust_domain, ROOT_PATHLEN, NULL, key, now, ttl, NULL,
	    out);
}

enum mca_err
ca_intermediate_create(const struct ca_cert *root, const struct ca_key *root_key,
    const struct ca_key *key, const char *trust_domain, int64_t now, int64_t ttl,
    const struct ca_name_constraints *nc, struct ca_cert **out)
{
	enum mca_err rc;

	if (root == NULL || root_key == NULL || key == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "intermediate: root, root key and key "
		    "are required");
	if ((rc = ca_key_matches_crt(root_key, root->crt)) != MCA_OK)
		return rc;
	return ca_cert_build(key, INTER_CN, trust_domain, INTER_PATHLEN, root, root_key, now,
	    ttl, nc, out);
}
