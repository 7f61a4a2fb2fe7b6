/*
 * The network side of the signer process: a struct ca_key whose private
 * half lives in another process (see ca.h, "the signer process").
 *
 * GnuTLS hashes before it calls an external key, so the child would see
 * a digest it cannot check.  Instead, a certificate is first encoded by
 * GnuTLS with a placeholder signature, its tbsCertificate is cut out and
 * sent to the child, and the certificate is put together again with the
 * child's signature (RFC 5280 4.1.1).  CRLs, OCSP responses and audit
 * checkpoints are already built as TBS bytes by this module.
 *
 * One socket, one request at a time (a mutex): the child signs serially
 * anyway.  A child that closes the socket, or does not answer within
 * CA_SIGNER_TIMEOUT_S, is gone for good: every later signature fails at
 * once with MCA_ERR_SIGNER_UNAVAILABLE instead of waiting.
 */
#include "ca/ca_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ca/common/log.h"

struct ca_remote {
	int			 fd;
	pthread_mutex_t		 mu;
	atomic_bool		 dead;
	gnutls_pk_algorithm_t	 pk;
	unsigned int		 bits;
	gnutls_sign_algorithm_t	 alg;
};

/* GnuTLS's view of the key, used only to lay out a certificate: the
 * signature it produces is a placeholder replaced by the child's. */
static int
placeholder_sign(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata,
    unsigned int flags, const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	(void)key, (void)algo, (void)userdata, (void)flags, (void)data;
	if ((sig->data = gnutls_calloc(1, 1)) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	sig->size = 1;
	return 0;
}

static int
placeholder_info(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
	const struct ca_remote *r = userdata;

	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return GNUTLS_FLAGS_TO_SIGN_ALGO(flags) == r->alg;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)r->pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)r->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return (int)r->alg;
	return -1;
}

void
ca_remote_free(struct ca_remote *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);	/* the child sees end of file and exits */
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static enum mca_err
remote_gone(struct ca_remote *r, const char *why)
{
	if (!atomic_exchange(&r->dead, true))
		mca_log(MCA_LOG_ERROR, "signer process gone: nothing can be signed until meshcad "
		    "restarts", "detail", why, (const char *)NULL);
	return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone (%s)", why);
}

/* One round trip under the lock; *status and body from the reply. */
static enum mca_err
remote_call_locked(struct ca_remote *r, enum ca_signreq_type t, gnutls_sign_algorithm_t alg,
    const unsigned char *tbs, size_t len, int *status, gnutls_datum_t *body)
{
	unsigned char h[CA_SIGNREQ_HDR];
	uint32_t n;
	enum mca_err rc;

	ca_put_u32(h, (uint32_t)len);
	h[4] = CA_SIGNREQ_VERSION;
	h[5] = (unsigned char)t;
	h[6] = (unsigned char)((unsigned)alg >> 8);
	h[7] = (unsigned char)alg;
	if ((rc = ca_fd_write_all(r->fd, h, sizeof(h))) != MCA_OK ||
	    (rc = ca_fd_write_all(r->fd, tbs, len)) != MCA_OK ||
	    (rc = ca_fd_read_all(r->fd, h, sizeof(h), NULL)) != MCA_OK)
		return remote_gone(r, mca_err_detail());
	if ((n = ca_get_u32(h)) > CA_SIGNREP_MAX || h[4] > 1)
		return remote_gone(r, "malformed reply");
	if ((body->data = gnutls_malloc(n + 1)) == NULL)
		return MCA_ERR_NOMEM;
	body->size = n;
	body->data[n] = '\0';
	if (n > 0 && (rc = ca_fd_read_all(r->fd, body->data, n, NULL)) != MCA_OK)
		return remote_gone(r, mca_err_detail());
	*status = h[4];
	return MCA_OK;
}

enum mca_err
ca_remote_sign(const struct ca_key *key, enum ca_signreq_type t, gnutls_sign_algorithm_t alg,
    const unsigned char *tbs, size_t len, gnutls_datum_t *sig)
{
	struct ca_remote *r = key->remote;
	gnutls_datum_t body = { NULL, 0 };
	int status = 1;
	enum mca_err rc;

	sig->data = NULL;
	sig->size = 0;
	if (len == 0 || len > CA_SIGNREQ_MAX_BYTES)
		return mca_err_set(MCA_ERR_TOOBIG, "%zu bytes to sign (at most %u)", len,
		    (unsigned)CA_SIGNREQ_MAX_BYTES);
	if (atomic_load(&r->dead))
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone");
	pthread_mutex_lock(&r->mu);
	if (atomic_load(&r->dead))
		rc = mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is gone");
	else
		rc = remote_call_locked(r, t, alg, tbs, len, &status, &body);
	pthread_mutex_unlock(&r->mu);
	if (rc != MCA_OK) {
		gnutls_free(body.data);
		return rc;
	}
	if (status != 0) {
		rc = mca_err_set(MCA_ERR_SIGN, "the signer process refused: %s", (char *)body.data);
		gnutls_free(body.data);
		return rc;
	}
	*sig = body;
	return MCA_OK;
}

static enum mca_err
raw_part(asn1_node n, const gnutls_datum_t *der, const char *name, const unsigned char **p,
    size_t *len)
{
	int start = 0, end = 0;

	if (asn1_der_decoding_startEnd(n, der->data, (int)der->size, name, &start, &end) !=
	    ASN1_SUCCESS || start < 0 || end < start || (unsigned)end >= der->size)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.1: no %s in the encoded certificate",
		    name);
	*p = der->data + start;
	*len = (size_t)(end - start + 1);
	return MCA_OK;
}

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue BIT STRING } (RFC 5280 4.1.1), DER into out. */
static enum mca_err
crt_assemble(const unsigned char *tbs, size_t tlen, const unsigned char *alg, size_t alen,
    const gnutls_datum_t *sig, struct mca_buf *out)
{
	struct mca_buf body = { 0 };
	static const unsigned char unused_bits = 0;
	enum mca_err rc;

	if ((rc = mca_buf_append(&body, tbs, tlen)) != MCA_OK ||
	    (rc = mca_buf_append(&body, alg, alen)) != MCA_OK ||
	    (rc = ca_der_header(0x03, (size_t)sig->size + 1, &body)) != MCA_OK ||
	    (rc = mca_buf_append(&body, &unused_bits, 1)) != MCA_OK ||
	    (rc = mca_buf_append(&body, sig->data, sig->size)) != MCA_OK ||
	    (rc = ca_der_header(0x30, body.len, out)) != MCA_OK ||
	    (rc = mca_buf_append(out, body.data, body.len)) != MCA_OK)
		goto out;
out:
	mca_buf_free(&body);
	return rc;
}

enum mca_err
ca_remote_crt_sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer, const struct ca_key *key,
    gnutls_datum_t *der)
{
	gnutls_datum_t draft = { NULL, 0 }, sig = { NULL, 0 };
	struct mca_buf out = { 0 };
	const unsigned char *tbs = NULL, *alg = NULL;
	size_t tlen = 0, alen = 0;
	asn1_node n = NULL;
	enum mca_err rc = MCA_ERR_SIGN;
	int r;

	if ((r = gnutls_x509_crt_privkey_sign(crt, issuer, key->priv, ca_key_digest(key), 0)) < 0 ||
	    (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &draft)) < 0) {
		rc = mca_err_set(MCA_ERR_SIGN, "encoding the certificate: %s", gnutls_strerror(r));
		goto out;
	}
	if ((rc = ca_asn1_decode("SignedCertificate", draft.data, draft.size, &n)) != MCA_OK ||
	    (rc = raw_part(n, &draft, "tbsCertificate", &tbs, &tlen)) != MCA_OK ||
	    (rc = raw_part(n, &draft, "signatureAlgorithm", &alg, &alen)) != MCA_OK ||
	    (rc = ca_remote_sign(key, CA_SIGNREQ_CERT, key->remote->alg, tbs, tlen,
	    &sig)) != MCA_OK ||
	    (rc = crt_assemble(tbs, tlen, alg, alen, &sig, &out)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	if ((der->data = gnutls_malloc(out.len)) == NULL)
		goto out;
	memcpy(der->data, out.data, out.len);
	der->size = (unsigned int)out.len;
	rc = MCA_OK;
out:
	ca_asn1_free(&n);
	gnutls_free(draft.data);
	gnutls_free(sig.data);
	mca_buf_free(&out);
	return rc;
}

/* The child's first message: its key is loaded, or why not
 * ("MCA_ERR_PASSPHRASE wrong passphrase ..."). */
static enum mca_err
remote_hello(int fd)
{
	unsigned char h[CA_SIGNREQ_HDR];
	char text[CA_SIGNREP_MAX + 1];
	uint32_t n;
	enum mca_err rc;

	if ((rc = ca_fd_read_all(fd, h, sizeof(h), NULL)) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process did not "
		    "start: %s", mca_err_detail());
	if ((n = ca_get_u32(h)) > CA_SIGNREP_MAX || h[4] > 1)
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process said nonsense");
	if (h[4] == 0 && n == 0)
		return MCA_OK;
	if ((rc = ca_fd_read_all(fd, text, n, NULL)) != MCA_OK)
		return mca_err_set(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process did not "
		    "start: %s", mca_err_detail());
	text[n] = '\0';
	rc = MCA_ERR_SIGNER_UNAVAILABLE;
	for (int e = 1; e < MCA_ERR_MAX; e++) {
		size_t l = strlen(mca_errname((enum mca_err)e));

		if (strncmp(text, mca_errname((enum mca_err)e), l) == 0 && text[l] == ' ')
			rc = (enum mca_err)e;
	}
	return mca_err_set(rc, "signer process: %s", strchr(text, ' ') != NULL ?
	    strchr(text, ' ') + 1 : text);
}

enum mca_err
ca_remote_key_new(int fd, gnutls_x509_crt_t crt, struct ca_key **out)
{
	struct timeval tv = { .tv_sec = CA_SIGNER_TIMEOUT_S };
	struct ca_key *k = NULL;
	gnutls_pubkey_t pub = NULL;
	struct ca_remote *r;
	enum mca_err rc = MCA_ERR_NOMEM;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		close(fd);
		return MCA_ERR_NOMEM;
	}
	r->fd = fd;
	pthread_mutex_init(&r->mu, NULL);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((rc = remote_hello(fd)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	if ((k = calloc(1, sizeof(*k))) == NULL || gnutls_pubkey_init(&pub) < 0)
		goto out;
	k->remote = r;
	r = NULL;
	rc = mca_err_set(MCA_ERR_CRYPTO, "the intermediate certificate's public key");
	if (gnutls_pubkey_import_x509(pub, crt, 0) < 0 ||
	    (rc = ca_pubkey_classify(pub, &k->type)) != MCA_OK)
		goto out;
	k->remote->alg = ca_key_type_sign_algo(k->type);
	k->remote->pk = (gnutls_pk_algorithm_t)gnutls_pubkey_get_pk_algorithm(pub, &k->remote->bits);
	rc = mca_err_set(MCA_ERR_CRYPTO, "cannot set up the remote key");
	if (gnutls_privkey_init(&k->priv) < 0 ||
	    gnutls_privkey_import_ext4(k->priv, k->remote, placeholder_sign, placeholder_sign,
	    NULL, NULL, placeholder_info, 0) < 0)
		goto out;
	*out = k;
	k = NULL;
	rc = MCA_OK;
out:
	gnutls_pubkey_deinit(pub);
	ca_remote_free(r);
	ca_key_free(k);
	return rc;
}

bool
ca_remote_available(const struct ca_remote *r)
{
	return r == NULL || !atomic_load(&r->dead);
}
