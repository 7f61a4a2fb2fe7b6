/*
 * meshcad's own TLS identity, rotated in place.
 *
 * libmicrohttpd asks GnuTLS for the server certificate through a retrieve
 * callback (MHD_OPTION_HTTPS_CERT_CALLBACK), so every new handshake gets
 * whatever credential is current.  A rotation thread renews the server
 * certificate at 2/3 of its lifetime: new key, leaf issued by the
 * intermediate, record committed to the database, key and chain written
 * atomically (key first), then the new credential swapped in.  Handshakes
 * in flight keep the credential they were handed: retired credentials are
 * only freed at shutdown, so no session ever points at freed memory.
 *
 * At start-up a missing, unreadable, mismatched, expired or due
 * certificate is rotated at once; this also heals a crash between the
 * key and the certificate write.
 */
#include "api/api.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/common/fileio.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define TLS_MAX_CHAIN	4
#define TLS_PEM_MAX	(256 * 1024)
#define TLS_SERVER_CN	"meshcad"

struct tls_cred {
	gnutls_pcert_st	 pcerts[TLS_MAX_CHAIN];
	unsigned int	 npcerts;
	gnutls_privkey_t key;
	struct ca_cert	*leaf;
	struct tls_cred	*retired_next;
};

struct api_tls {
	struct api_ctx		*ctx;
	char			 cert_path[PATH_MAX];
	char			 key_path[PATH_MAX];
	int64_t			 ttl;		/* 0: keep the current lifetime */
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;
	bool			 stop;
	bool			 running;
	pthread_t		 thread;
	struct tls_cred		*current;
	struct tls_cred		*retired;
};

/* GnuTLS's retrieve callback carries no closure: one server per process. */
static struct api_tls *tls_active;

static void
cred_free(struct tls_cred *c)
{
	if (c == NULL)
		return;
	for (unsigned int i = 0; i < c->npcerts; i++)
		gnutls_pcert_deinit(&c->pcerts[i]);
	gnutls_privkey_deinit(c->key);
	ca_cert_free(c->leaf);
	free(c);
}

/* The key must be the leaf's: compare their public key IDs. */
static bool
cred_matches(const struct tls_cred *c)
{
	gnutls_pubkey_t pub = NULL;
	unsigned char a[64], b[64];
	size_t na = sizeof(a), nb = sizeof(b);
	bool ok = false;

	if (gnutls_pubkey_init(&pub) >= 0 &&
	    gnutls_pubkey_import_privkey(pub, c->key, 0, 0) >= 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &na) >= 0 &&
	    gnutls_pubkey_get_key_id(c->pcerts[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &nb) >= 0)
		ok = na == nb && memcmp(a, b, na) == 0;
	gnutls_pubkey_deinit(pub);
	return ok;
}

static enum mca_err
cred_load(const struct mca_buf *chain, const struct mca_buf *key, struct tls_cred **out)
{
	gnutls_datum_t c = { chain->data, (unsigned int)chain->len };
	gnutls_datum_t k = { key->data, (unsigned int)key->len };
	struct tls_cred *cred;
	enum mca_err rc = MCA_ERR_CRYPTO;

	*out = NULL;
	if ((cred = calloc(1, sizeof(*cred))) == NULL)
		return MCA_ERR_NOMEM;
	cred->npcerts = TLS_MAX_CHAIN;
	if (gnutls_pcert_list_import_x509_raw(cred->pcerts, &cred->npcerts, &c, GNUTLS_X509_FMT_PEM, 0) < 0) {
		cred->npcerts = 0;
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "server certificate chain cannot be parsed");
		goto out;
	}
	if (gnutls_privkey_init(&cred->key) < 0 ||
	    gnutls_privkey_import_x509_raw(cred->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "server key cannot be parsed");
		goto out;
	}
	if (!cred_matches(cred)) {
		rc = mca_err_set(MCA_ERR_CRYPTO, "server key does not match the server certificate");
		goto out;
	}
	if ((rc = ca_cert_parse(chain->data, chain->len, &cred->leaf)) != MCA_OK)
		goto out;
	*out = cred;
	cred = NULL;
out:
	cred_free(cred);
	return rc;
}

static enum mca_err
cred_read(const struct api_tls *t, struct tls_cred **out)
{
	struct mca_buf chain, key;
	enum mca_err rc;

	mca_buf_init(&chain, TLS_PEM_MAX, false);
	mca_buf_init(&key, TLS_PEM_MAX, true);
	if ((rc = mca_file_read(t->cert_path, TLS_PEM_MAX, &chain)) == MCA_OK &&
	    (rc = mca_file_read(t->key_path, TLS_PEM_MAX, &key)) == MCA_OK)
		rc = cred_load(&chain, &key, out);
	mca_buf_free(&chain);
	mca_buf_free(&key);
	return rc;
}

/* When a certificate is due: 2/3 into its lifetime, as the agent does.
 * The lifetime counts from issuance: meshca backdates notBefore by 60 s,
 * which would otherwise make a short-lived certificate due at once. */
static int64_t
renew_at(const struct ca_cert *leaf)
{
	int64_t nb = ca_cert_not_before(leaf), na = ca_cert_not_after(leaf);

	if (na - nb > 60)
		nb += 60;
	return nb + (na - nb) * 2 / 3;
}

/* The identity of the next certificate: the current one's, or the
 * defaults `meshca init` uses. */
static enum mca_err
next_names(const struct api_tls *t, const struct ca_cert *old, struct ca_sans *sans, char *id, size_t idsz)
{
	enum mca_err rc;

	if (old != NULL && ca_cert_uri(old) != NULL) {
		snprintf(id, idsz, "%s", ca_cert_uri(old));
		return ca_cert_sans(old, sans);
	}
	snprintf(id, idsz, "spiffe://%s/meshca/server", t->ctx->trust_domain);
	if ((rc = ca_sans_add_dns(sans, "localhost", false)) != MCA_OK ||
	    (rc = ca_sans_add_ip(sans, "127.0.0.1", false)) != MCA_OK ||
	    (rc = ca_sans_add_ip(sans, "::1", false)) != MCA_OK)
		return rc;
	return MCA_OK;
}

static int64_t
next_ttl(const struct api_tls *t, const struct ca_cert *old)
{
	if (t->ttl > 0)
		return t->ttl;
	if (old != NULL)	/* the lifetime `meshca init` chose, less the backdating */
		return ca_cert_not_after(old) - ca_cert_not_before(old) - 60;
	return 90 * 86400;
}

/* The record of meshcad's own certificate, audited as "cert.rotate". */
static enum mca_err
tls_record(struct api_tls *t, const struct db_cert *rec)
{
	struct db_audit a = { "meshcad", "cert.rotate", rec->serial, true, NULL };
	char *detail;
	enum mca_err rc;

	if ((detail = api_audit_cert_detail(rec, NULL)) == NULL)
		return MCA_ERR_NOMEM;
	a.detail = detail;
	rc = db_cert_insert(t->ctx->db, rec, mca_now(), &a);
	free(detail);
	return rc;
}

/* Records the new certificate durably, then writes key and chain. */
static enum mca_err
tls_store(struct api_tls *t, const struct ca_cert *old, const struct ca_key *key,
    const struct ca_issued *is, const char *id, struct mca_buf *chain)
{
	const struct mca_buf *inter = ca_signer_chain_pem(t->ctx->signer);
	struct db_cert rec = { 0 }, prev = { 0 };
	char old_serial[CA_SERIAL_HEX_MAX] = "";
	enum mca_err rc;

	if (old != NULL) {
		ca_cert_serial_hex(old, old_serial);
		if (db_cert_get(t->ctx->db, old_serial, mca_now(), &prev) != MCA_OK)
			old_serial[0] = '\0';	/* not ours to link to */
		db_cert_clear(&prev);
	}
	rec.serial = (char *)is->serial;
	rec.kind = DB_CERT_SERVER;
	rec.spiffe_id = (char *)id;
	rec.not_before = is->not_before;
	rec.not_after = is->not_after;
	rec.der = is->der.data;
	rec.der_len = is->der.len;
	rec.status = DB_CERT_ACTIVE;
	rec.renewed_from = old_serial[0] ? old_serial : NULL;
	if ((rc = tls_record(t, &rec)) != MCA_OK)
		return rc;
	if ((rc = mca_buf_set(chain, is->pem.data, is->pem.len)) != MCA_OK ||
	    (rc = mca_buf_append(chain, inter->data, inter->len)) != MCA_OK)
		return rc;
	/* Key first: a crash between the two writes leaves a mismatch that
	 * the next start-up detects and heals by rotating. */
	if ((rc = ca_key_save(key, t->key_path, NULL)) != MCA_OK)
		return rc;
	return mca_file_write_atomic(t->cert_path, chain->data, chain->len, 0644);
}

static void
tls_install(struct api_tls *t, struct tls_cred *cred)
{
	pthread_mutex_lock(&t->lock);
	if (t->current != NULL) {
		t->current->retired_next = t->retired;
		t->retired = t->current;
	}
	t->current = cred;
	pthread_mutex_unlock(&t->lock);
}

static void
log_rotated(const struct ca_issued *is, const char *old_serial, const char *why)
{
	char exp[MCA_TIME_LEN];

	mca_time_format(is->not_after, exp);
	mca_log(MCA_LOG_INFO, "server certificate rotated", "serial", is->serial,
	    "renewed_from", old_serial[0] ? old_serial : NULL, "not_after", exp, "reason", why,
	    (const char *)NULL);
}

/* Issues, records, writes and installs a new server certificate. */
static enum mca_err
tls_rotate(struct api_tls *t, const struct ca_cert *old, const char *why)
{
	char id[CA_MAX_SPIFFE_ID_LEN + 1], old_serial[CA_SERIAL_HEX_MAX] = "";
	struct ca_sans sans = { 0 };
	struct ca_key *key = NULL;
	struct ca_csr *csr = NULL;
	struct ca_issued is = { 0 };
	struct ca_leaf_req req = { 0 };
	struct mca_buf csr_pem = { 0 }, chain = { 0 }, keypem;
	struct tls_cred *cred = NULL;
	enum mca_err rc;

	mca_buf_init(&keypem, TLS_PEM_MAX, true);
	if (old != NULL)
		ca_cert_serial_hex(old, old_serial);
	if ((rc = next_names(t, old, &sans, id, sizeof(id))) != MCA_OK ||
	    (rc = ca_key_generate(CA_KEY_ECDSA_P256, &key)) != MCA_OK ||
	    (rc = ca_csr_create(key, TLS_SERVER_CN, &sans, &csr_pem)) != MCA_OK ||
	    (rc = ca_csr_parse(csr_pem.data, csr_pem.len, &csr)) != MCA_OK)
		goto out;
	req.spiffe_id = id;
	req.common_name = TLS_SERVER_CN;
	req.sans = &sans;
	req.ttl = next_ttl(t, old);
	req.now = mca_now();
	if ((rc = ca_issue_leaf(t->ctx->signer, csr, &req, &is)) != MCA_OK ||
	    (rc = tls_store(t, old, key, &is, id, &chain)) != MCA_OK ||
	    (rc = mca_file_read(t->key_path, TLS_PEM_MAX, &keypem)) != MCA_OK ||
	    (rc = cred_load(&chain, &keypem, &cred)) != MCA_OK)
		goto out;
	tls_install(t, cred);
	log_rotated(&is, old_serial, why);
out:
	ca_sans_clear(&sans);
	ca_key_free(key);
	ca_csr_free(csr);
	ca_issued_clear(&is);
	mca_buf_free(&csr_pem);
	mca_buf_free(&chain);
	mca_buf_free(&keypem);
	return rc;
}

int
api_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
    unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	struct api_tls *t = tls_active;

	(void)session; (void)req_ca_rdn; (void)nreqs; (void)pk_algos; (void)pk_algos_length;
	if (t == NULL)
		return -1;
	pthread_mutex_lock(&t->lock);
	*pcert = t->current->pcerts;
	*pcert_length = t->current->npcerts;
	*pkey = t->current->key;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int64_t
api_tls_not_after(struct api_tls *t)
{
	int64_t na = 0;

	if (t == NULL)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (t->current != NULL)
		na = ca_cert_not_after(t->current->leaf);
	pthread_mutex_unlock(&t->lock);
	return na;
}

/* Seconds until the current certificate is due (<= 0: now). */
static int64_t
seconds_until_due(struct api_tls *t)
{
	int64_t due;

	pthread_mutex_lock(&t->lock);
	due = renew_at(t->current->leaf);
	pthread_mutex_unlock(&t->lock);
	return due - mca_now();
}

/* Sleeps up to secs seconds; false when asked to stop. */
static bool
tls_sleep(struct api_tls *t, int64_t secs)
{
	struct timespec until;
	bool go;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&t->lock);
	while (!t->stop && pthread_cond_timedwait(&t->wake, &t->lock, &until) == 0)
		;
	go = !t->stop;
	pthread_mutex_unlock(&t->lock);
	return go;
}

static void *
tls_thread(void *arg)
{
	struct api_tls *t = arg;
	int64_t wait, retry = 1;

	for (;;) {
		wait = seconds_until_due(t);
		if (wait > 0) {
			if (!tls_sleep(t, wait < 60 ? wait : 60))
				break;
			continue;
		}
		/* Only this thread replaces current, so reading it unlocked here is safe. */
		if (tls_rotate(t, t->current->leaf, "due") == MCA_OK) {
			retry = 1;
			/* Never spin, whatever lifetime the new certificate got. */
			if (!tls_sleep(t, 1))
				break;
			continue;
		}
		mca_log(MCA_LOG_ERROR, "server certificate rotation failed", "detail", mca_err_detail(),
		    (const char *)NULL);
		if (!tls_sleep(t, retry))
			break;
		retry = retry < 30 ? retry * 2 : 60;
	}
	return NULL;
}

void
api_tls_free(struct api_tls *t)
{
	struct tls_cred *c, *next;

	if (t == NULL)
		return;
	if (t->running) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_cond_signal(&t->wake);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
	}
	if (tls_active == t)
		tls_active = NULL;
	for (c = t->retired; c != NULL; c = next) {
		next = c->retired_next;
		cred_free(c);
	}
	cred_free(t->current);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The credential on disk, or a fresh one when it cannot serve. */
static enum mca_err
tls_initial(struct api_tls *t)
{
	struct tls_cred *cred = NULL;
	enum mca_err rc;

	rc = cred_read(t, &cred);
	if (rc == MCA_OK && mca_now() < renew_at(cred->leaf)) {
		tls_install(t, cred);
		return MCA_OK;
	}
	if (rc != MCA_OK)
		mca_log(MCA_LOG_WARN, "server certificate unusable, issuing a new one",
		    "detail", mca_err_detail(), (const char *)NULL);
	rc = tls_rotate(t, cred != NULL ? cred->leaf : NULL, cred != NULL ? "due at start-up" : "unusable");
	cred_free(cred);
	return rc;
}

enum mca_err
api_tls_open(struct api_ctx *ctx, const char *cert_path, const char *key_path, int64_t ttl,
    struct api_tls **out)
{
	struct api_tls *t;
	enum mca_err rc;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return MCA_ERR_NOMEM;
	t->ctx = ctx;
	t->ttl = ttl;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	if (snprintf(t->cert_path, sizeof(t->cert_path), "%s", cert_path) >= (int)sizeof(t->cert_path) ||
	    snprintf(t->key_path, sizeof(t->key_path), "%s", key_path) >= (int)sizeof(t->key_path)) {
		rc = mca_err_set(MCA_ERR_CONFIG, "server certificate path too long");
		goto fail;
	}
	if ((rc = tls_initial(t)) != MCA_OK)
		goto fail;
	if (pthread_create(&t->thread, NULL, tls_thread, t) != 0) {
		rc = mca_err_set(MCA_ERR_NOMEM, "cannot start the rotation thread");
		goto fail;
	}
	t->running = true;
	tls_active = t;
	*out = t;
	return MCA_OK;
fail:
	api_tls_free(t);
	return rc;
}
