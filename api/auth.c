/*
 * Client-certificate authentication.  The TLS layer only *requests* a
 * certificate (MHD_OPTION_HTTPS_MEM_TRUST); here we verify the chain the
 * client sent against our root and intermediate (RFC 5280 6.1 path
 * validation by GnuTLS, including validity periods), then look the
 * leaf's record up in the database: a certificate meshca did not record
 * as active does not authenticate, which is what makes revocation
 * passive as well as active.
 *
 * Path validation is the costly part (the root's signature over the
 * intermediate, every request: ~24 % of a renewal's CPU), and its verdict
 * depends only on the chain's bytes, the fixed trust list and the time.
 * A verdict is therefore kept, keyed by the SHA-256 of the chain as the
 * client presented it, until the earliest notAfter on the path: a
 * keep-alive connection (or a reconnecting agent) verifies its chain
 * once.  The record lookup (revoked? expired? still ours?) is not cached:
 * it runs on every request, so a revocation takes effect at once, on
 * connections already open too.  Keyed by content rather than by
 * connection, a verdict cannot leak to another chain, and needs no hook
 * in libmicrohttpd's connection life cycle.  Refusals are not kept.
 */
#include "api/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define AUTH_CACHE_SLOTS	256	/* direct-mapped by the chain's hash */

/* One chain that passed path validation. */
struct auth_verdict {
	unsigned char	key[32];	/* SHA-256 over the chain as presented */
	int64_t		valid_until;	/* earliest notAfter on the path; 0: empty */
	char		serial[CA_SERIAL_HEX_MAX];
	char		spiffe_id[CA_MAX_SPIFFE_ID_LEN + 1];
};

struct api_auth_cache {
	pthread_mutex_t		lock;
	int64_t			anchors_until;	/* earliest notAfter of root and intermediate */
	struct auth_verdict	slot[AUTH_CACHE_SLOTS];
};

static enum mca_err
auth_cache_new(struct api_ctx *ctx)
{
	struct api_auth_cache *c;
	int64_t root = ca_cert_not_after(ca_signer_root(ctx->signer));
	int64_t inter = ca_cert_not_after(ca_signer_cert(ctx->signer));

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return MCA_ERR_NOMEM;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return MCA_ERR_NOMEM;
	}
	c->anchors_until = root < inter ? root : inter;
	ctx->auth_cache = c;
	return MCA_OK;
}

enum mca_err
api_auth_init(struct api_ctx *ctx)
{
	const struct mca_buf *der[2] = {
		ca_cert_der(ca_signer_root(ctx->signer)),
		ca_cert_der(ca_signer_cert(ctx->signer)),
	};
	gnutls_x509_crt_t crts[2] = { NULL, NULL };
	enum mca_err rc = MCA_ERR_CRYPTO;
	int added;

	if (gnutls_x509_trust_list_init(&ctx->client_trust, 0) < 0)
		return MCA_ERR_CRYPTO;
	for (int i = 0; i < 2; i++) {
		gnutls_datum_t d = { der[i]->data, (unsigned)der[i]->len };

		if (gnutls_x509_crt_init(&crts[i]) < 0 ||
		    gnutls_x509_crt_import(crts[i], &d, GNUTLS_X509_FMT_DER) < 0)
			goto out;
	}
	/* The list takes ownership of the certificates it adds. */
	added = gnutls_x509_trust_list_add_cas(ctx->client_trust, crts, 2, 0);
	if (added != 2)
		goto out;
	crts[0] = crts[1] = NULL;
	snprintf(ctx->admin_prefix, sizeof(ctx->admin_prefix), "spiffe://%s/meshca/admin/", ctx->trust_domain);
	rc = auth_cache_new(ctx);
out:
	for (int i = 0; i < 2; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return rc;
}

void
api_auth_free(struct api_ctx *ctx)
{
	if (ctx->client_trust != NULL)
		gnutls_x509_trust_list_deinit(ctx->client_trust, 1);
	ctx->client_trust = NULL;
	if (ctx->auth_cache != NULL) {
		pthread_mutex_destroy(&ctx->auth_cache->lock);
		free(ctx->auth_cache);
	}
	ctx->auth_cache = NULL;
}

/* The cache key: SHA-256 over each presented certificate's length and
 * bytes, so that no two different chains share a key. */
static enum mca_err
chain_key(const gnutls_datum_t *peers, unsigned int npeers, unsigned char key[32])
{
	gnutls_hash_hd_t h;

	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return MCA_ERR_CRYPTO;
	for (unsigned int i = 0; i < npeers; i++) {
		unsigned char len[4] = {
			(unsigned char)(peers[i].size >> 24), (unsigned char)(peers[i].size >> 16),
			(unsigned char)(peers[i].size >> 8), (unsigned char)peers[i].size,
		};

		if (gnutls_hash(h, len, sizeof(len)) < 0 ||
		    gnutls_hash(h, peers[i].data, peers[i].size) < 0) {
			gnutls_hash_deinit(h, NULL);
			return MCA_ERR_CRYPTO;
		}
	}
	gnutls_hash_deinit(h, key);
	return MCA_OK;
}

static struct auth_verdict *
cache_slot(struct api_auth_cache *c, const unsigned char key[32])
{
	return &c->slot[(key[0] | (unsigned)key[1] << 8) % AUTH_CACHE_SLOTS];
}

/* A kept verdict for this chain, still within its validity: fills peer. */
static bool
cache_lookup(struct api_auth_cache *c, const unsigned char key[32], int64_t now,
    struct api_peer *peer)
{
	struct auth_verdict *v;
	bool hit;

	pthread_mutex_lock(&c->lock);
	v = cache_slot(c, key);
	hit = v->valid_until != 0 && now < v->valid_until && memcmp(v->key, key, 32) == 0;
	if (hit) {
		memcpy(peer->serial, v->serial, sizeof(peer->serial));
		memcpy(peer->spiffe_id, v->spiffe_id, sizeof(peer->spiffe_id));
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void
cache_store(struct api_auth_cache *c, const unsigned char key[32], int64_t until,
    const struct api_peer *peer)
{
	struct auth_verdict *v;

	pthread_mutex_lock(&c->lock);
	v = cache_slot(c, key);
	memcpy(v->key, key, 32);
	v->valid_until = until < c->anchors_until ? until : c->anchors_until;
	memcpy(v->serial, peer->serial, sizeof(v->serial));
	memcpy(v->spiffe_id, peer->spiffe_id, sizeof(v->spiffe_id));
	pthread_mutex_unlock(&c->lock);
}

/* The error for a failed path validation, with GnuTLS's explanation. */
static enum mca_err
chain_error(unsigned int status)
{
	gnutls_datum_t why = { NULL, 0 };
	char text[256] = "invalid";
	enum mca_err e = MCA_ERR_AUTH;

	if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		e = MCA_ERR_CERT_EXPIRED;
	else if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		e = MCA_ERR_UNKNOWN_ISSUER;
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) == 0) {
		snprintf(text, sizeof(text), "%s", (const char *)why.data);
		gnutls_free(why.data);
	}
	return mca_err_set(e, "RFC 5280 6.1: client certificate rejected: %s", text);
}

/* Path validation of the peer's chain; on success *until is the earliest
 * notAfter of the certificates presented. */
static enum mca_err
verify_chain(struct api_ctx *ctx, const gnutls_datum_t *peers, unsigned int npeers, int64_t *until)
{
	gnutls_x509_crt_t chain[API_MAX_PEER_CERTS] = { NULL };
	unsigned int n = 0, status = 0;
	enum mca_err rc = MCA_ERR_AUTH;

	*until = INT64_MAX;
	for (n = 0; n < npeers; n++) {
		time_t t;

		if (gnutls_x509_crt_init(&chain[n]) < 0)
			goto out;
		if (gnutls_x509_crt_import(chain[n], &peers[n], GNUTLS_X509_FMT_DER) < 0) {
			mca_err_set(MCA_ERR_AUTH, "client certificate %u cannot be parsed", n);
			n++;
			goto out;
		}
		if ((t = gnutls_x509_crt_get_expiration_time(chain[n])) == (time_t)-1)
			goto out;
		if ((int64_t)t < *until)
			*until = (int64_t)t;
	}
	if (gnutls_x509_trust_list_verify_crt2(ctx->client_trust, chain, n, NULL, 0,
	    GNUTLS_VERIFY_DISABLE_CRL_CHECKS, &status, NULL) < 0 || status != 0) {
		rc = chain_error(status);
		goto out;
	}
	rc = MCA_OK;
out:
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
	return rc;
}

/* The certificate must be one meshca recorded, and still active there:
 * a chain that verifies is not enough once a certificate is revoked. */
static enum mca_err
check_record(struct api_request *r, const gnutls_datum_t *der, struct db_cert *rec)
{
	enum mca_err rc;

	rc = db_cert_get(api_db_reader(r->ctx), r->peer.serial, mca_now(), rec);
	if (rc == MCA_ERR_NOT_FOUND)
		return mca_err_set(MCA_ERR_UNKNOWN_ISSUER, "certificate %s was not issued by this CA", r->peer.serial);
	if (rc != MCA_OK)
		return rc;
	if (rec->der_len != der->size || memcmp(rec->der, der->data, der->size) != 0)
		rc = mca_err_set(MCA_ERR_UNKNOWN_ISSUER, "certificate %s does not match this CA's record", rec->serial);
	else if (rec->status == DB_CERT_REVOKED)
		rc = mca_err_set(MCA_ERR_CERT_REVOKED, "certificate %s is revoked", rec->serial);
	else if (rec->status == DB_CERT_EXPIRED)
		rc = mca_err_set(MCA_ERR_CERT_EXPIRED, "certificate %s has expired", rec->serial);
	r->peer.kind = rec->kind;
	r->peer.service_id = rec->service_id;
	return rc;
}

/* The leaf's identity, from a chain that just passed path validation. */
static enum mca_err
leaf_identity(const gnutls_datum_t *der, struct api_peer *peer)
{
	struct ca_cert *leaf = NULL;
	const char *uri;

	if (ca_cert_parse(der->data, der->size, &leaf) != MCA_OK)
		return mca_err_set(MCA_ERR_AUTH, "client certificate cannot be parsed");
	/* SPIFFE X509-SVID 2: an SVID has exactly one URI SAN. */
	if ((uri = ca_cert_uri(leaf)) == NULL) {
		ca_cert_free(leaf);
		return mca_err_set(MCA_ERR_AUTH, "SPIFFE X509-SVID 2: client certificate must carry exactly one URI SAN");
	}
	snprintf(peer->spiffe_id, sizeof(peer->spiffe_id), "%s", uri);
	ca_cert_serial_hex(leaf, peer->serial);
	ca_cert_free(leaf);
	return MCA_OK;
}

static enum mca_err
auth_peer(struct api_request *r, struct db_cert *rec)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *peers;
	unsigned int npeers = 0;
	unsigned char key[32];
	int64_t until;
	enum mca_err rc;

	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return mca_err_set(MCA_ERR_AUTH, "not a TLS connection");
	peers = gnutls_certificate_get_peers(ci->tls_session, &npeers);
	if (peers == NULL || npeers == 0)
		return mca_err_set(MCA_ERR_AUTH, "no client certificate presented");
	if (npeers > API_MAX_PEER_CERTS)
		return mca_err_set(MCA_ERR_AUTH, "client sent %u certificates, at most %d accepted",
		    npeers, API_MAX_PEER_CERTS);
	if ((rc = chain_key(peers, npeers, key)) != MCA_OK)
		return rc;
	if (!cache_lookup(r->ctx->auth_cache, key, mca_now(), &r->peer)) {
		if ((rc = verify_chain(r->ctx, peers, npeers, &until)) != MCA_OK ||
		    (rc = leaf_identity(&peers[0], &r->peer)) != MCA_OK)
			return rc;
		cache_store(r->ctx->auth_cache, key, until, &r->peer);
	}
	return check_record(r, &peers[0], rec);
}

enum mca_err
api_auth_peer_record(struct api_request *r, struct db_cert *rec)
{
	memset(rec, 0, sizeof(*rec));
	r->peer_checked = true;
	r->peer_err = auth_peer(r, rec);
	r->peer.verified = r->peer_err == MCA_OK;
	return r->peer_err;
}

enum mca_err
api_auth_peer(struct api_request *r)
{
	struct db_cert rec;

	enum mca_err rc = r->peer_err;

	if (!r->peer_checked) {
		rc = api_auth_peer_record(r, &rec);
		db_cert_clear(&rec);
	}
	return rc;
}

const char *
api_admin_name(const struct api_ctx *ctx, const char *spiffe_id)
{
	size_t plen = strlen(ctx->admin_prefix);

	if (strncmp(spiffe_id, ctx->admin_prefix, plen) != 0 || spiffe_id[plen] == '\0')
		return NULL;
	return spiffe_id + plen;
}

enum mca_err
api_peer_role(struct api_request *r)
{
	const char *name = api_admin_name(r->ctx, r->peer.spiffe_id);
	struct db_admin a = { 0 };
	enum mca_err rc;

	if (r->peer.kind != DB_CERT_ADMIN || name == NULL)
		return mca_err_set(MCA_ERR_FORBIDDEN, "%s is not an administrator", r->peer.spiffe_id);
	rc = db_admin_get(api_db_reader(r->ctx), name, &a);
	if (rc == MCA_ERR_NOT_FOUND || (rc == MCA_OK && a.removed_at != 0))
		rc = mca_err_set(MCA_ERR_FORBIDDEN, "%s is not an administrator (%s)", r->peer.spiffe_id,
		    rc == MCA_OK ? "removed" : "no such admin");
	if (rc == MCA_OK) {
		r->peer.admin = true;
		r->peer.role = a.role;
	}
	db_admin_clear(&a);
	return rc;
}

bool
api_require_role(struct api_request *r, enum api_role need)
{
	/* enum api_role and enum db_admin_role order the roles alike. */
	enum db_admin_role want = need == API_ROLE_ADMIN ? DB_ROLE_ADMIN : DB_ROLE_VIEWER;
	enum mca_err rc;

	if ((rc = api_auth_peer(r)) != MCA_OK || (rc = api_peer_role(r)) != MCA_OK) {
		api_reply_err(r, rc);
		return false;
	}
	if (r->peer.role < want) {
		api_reply_err(r, mca_err_set(MCA_ERR_FORBIDDEN, "%s %s needs the %s role; %s has role %s",
		    r->method, r->path, db_admin_role_name(want), r->peer.spiffe_id,
		    db_admin_role_name(r->peer.role)));
		return false;
	}
	return true;
}

bool
api_require_admin(struct api_request *r)
{
	return api_require_role(r, API_ROLE_ADMIN);
}
