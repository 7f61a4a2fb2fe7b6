/*
 * The issuing CA: the intermediate certificate and its key, and the root
 * it chains to (never the root's key).
 */
#include "ca/ca_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ca_signer {
	struct ca_cert	*cert;		/* intermediate */
	struct ca_key	*key;
	struct ca_cert	*root;
	struct ca_nc	*nc;		/* the intermediate's name constraints, or NULL */
	struct ca_leaf_exts *exts;	/* what every leaf shares, encoded once */
};

/* RFC 5280 6.1: the intermediate is a CA certificate signed by the root. */
static enum mca_err
signer_check_chain(const struct ca_signer *s)
{
	gnutls_datum_t why = { NULL, 0 };
	unsigned int status = 0, ca = 0;
	int r;

	if (gnutls_x509_crt_get_basic_constraints(s->cert->crt, NULL, &ca, NULL) < 0 || !ca)
		return mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.2.1.9: the intermediate "
		    "certificate is not a CA certificate");
	r = gnutls_x509_crt_verify(s->cert->crt, &s->root->crt, 1, 0, &status);
	if (r >= 0 && status == 0)
		return MCA_OK;
	if (r >= 0)
		r = gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
	mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 6.1: the intermediate does not chain to the "
	    "root: %s", r >= 0 && why.data != NULL ? (const char *)why.data : gnutls_strerror(r));
	gnutls_free(why.data);
	return MCA_ERR_CRYPTO;
}

/* What both kinds of signer check and keep once their key is in hand:
 * the chain, the intermediate's name constraints, the shared leaf parts. */
static enum mca_err
signer_finish(struct ca_signer *s)
{
	enum mca_err rc;

	if ((rc = signer_check_chain(s)) != MCA_OK ||
	    (rc = ca_nc_load(s->cert->crt, &s->nc)) != MCA_OK)
		return rc;
	return ca_leaf_exts_new(s->cert->crt, &s->exts);
}

enum mca_err
ca_signer_open(const char *intermediate_cert, const char *intermediate_key,
    const char *key_passphrase, const char *root_cert, struct ca_signer **out)
{
	struct ca_signer *s = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if (intermediate_cert == NULL || intermediate_key == NULL || root_cert == NULL ||
	    out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "signer: certificate, key and root paths "
		    "are required");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	if ((rc = ca_cert_load(intermediate_cert, &s->cert)) != MCA_OK ||
	    (rc = ca_key_load(intermediate_key, key_passphrase, &s->key)) != MCA_OK ||
	    (rc = ca_cert_load(root_cert, &s->root)) != MCA_OK)
		goto out;
	if ((rc = ca_key_matches_crt(s->key, s->cert->crt)) != MCA_OK ||
	    (rc = signer_finish(s)) != MCA_OK)
		goto out;
	*out = s;
	s = NULL;
	rc = MCA_OK;
out:
	ca_signer_free(s);
	return rc;
}

enum mca_err
ca_signer_open_remote(const char *intermediate_cert, const char *root_cert, int fd,
    struct ca_signer **out)
{
	struct ca_signer *s = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if (intermediate_cert == NULL || root_cert == NULL || fd < 0 || out == NULL) {
		if (fd >= 0)
			close(fd);
		return mca_err_set(MCA_ERR_INVALID, "signer: certificate and root paths and "
		    "a socket are required");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		goto out;
	}
	if ((rc = ca_cert_load(intermediate_cert, &s->cert)) != MCA_OK) {
		close(fd);
		goto out;
	}
	/* The child checked that its key matches the certificate. */
	if ((rc = ca_remote_key_new(fd, s->cert->crt, &s->key)) != MCA_OK ||	/* takes fd */
	    (rc = ca_cert_load(root_cert, &s->root)) != MCA_OK ||
	    (rc = signer_finish(s)) != MCA_OK)
		goto out;
	*out = s;
	s = NULL;
	rc = MCA_OK;
out:
	ca_signer_free(s);
	return rc;
}

bool
ca_signer_available(const struct ca_signer *s)
{
	return s != NULL && s->key != NULL && ca_remote_available(s->key->remote);
}

void
ca_signer_free(struct ca_signer *s)
{
	if (s == NULL)
		return;
	ca_cert_free(s->cert);
	ca_key_free(s->key);
	ca_cert_free(s->root);
	ca_nc_free(s->nc);
	ca_leaf_exts_free(s->exts);
	free(s);
}

const struct ca_cert *
ca_signer_cert(const struct ca_signer *s)
{
	return s->cert;
}

const struct ca_cert *
ca_signer_root(const struct ca_signer *s)
{
	return s->root;
}

const struct ca_key *
ca_signer_key(const struct ca_signer *s)
{
	return s->key;
}

const struct mca_buf *
ca_signer_chain_pem(const struct ca_signer *s)
{
	return ca_cert_pem(s->cert);
}

const struct mca_buf *
ca_signer_roots_pem(const struct ca_signer *s)
{
	return ca_cert_pem(s->root);
}

const struct ca_nc *
ca_signer_nc(const struct ca_signer *s)
{
	return s->nc;
}

struct ca_leaf_exts *
ca_signer_leaf_exts(const struct ca_signer *s)
{
	return s->exts;
}

bool
ca_signer_constrained(const struct ca_signer *s)
{
	return s != NULL && s->nc != NULL;
}

enum mca_err
ca_signer_names_check(const struct ca_signer *s, const char *uri, const struct ca_sans *sans)
{
	if (s == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no signer");
	return ca_nc_check(s->nc, uri, sans);
}

enum mca_err
ca_signer_sign(const struct ca_signer *s, const unsigned char *data, size_t len,
    struct mca_buf *sig)
{
	gnutls_datum_t in = { (unsigned char *)(uintptr_t)data, (unsigned int)len };
	gnutls_datum_t out = { NULL, 0 };
	enum mca_err rc;
	int r;

	if (s == NULL || (data == NULL && len > 0) || sig == NULL || len > UINT32_MAX)
		return mca_err_set(MCA_ERR_INVALID, "ca_signer_sign: bad argument");
	if (s->key->remote != NULL) {	/* the child signs audit checkpoints only */
		if ((rc = ca_remote_sign(s->key, CA_SIGNREQ_AUDIT, ca_key_type_sign_algo(s->key->type),
		    data, len, &out)) != MCA_OK)
			return rc;
		rc = mca_buf_set(sig, out.data, out.size);
		gnutls_free(out.data);
		return rc;
	}
	r = gnutls_privkey_sign_data2(s->key->priv, ca_key_type_sign_algo(s->key->type), 0,
	    &in, &out);
	if (r < 0)
		return mca_err_set(MCA_ERR_SIGN, "signing with the intermediate key: %s",
		    gnutls_strerror(r));
	rc = mca_buf_set(sig, out.data, out.size);
	gnutls_free(out.data);
	return rc;
}
