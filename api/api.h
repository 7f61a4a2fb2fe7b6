/*
 * api/ — meshcad, the HTTPS API.  Internal header shared by the files of
 * this folder: the server context, the per-request state, the reply and
 * JSON helpers, authentication, and the route handlers.
 *
 * The rest of meshca is reached only through ca/ca.h and db/db.h.
 */
#ifndef MCA_API_H
#define MCA_API_H

#include <stdbool.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <microhttpd.h>

#include "api/conn_limits.h"
#include "api/ratelimit.h"
#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/err.h"
#include "db/db.h"

#define API_MAX_BODY		(64 * 1024)	/* 413 beyond */
#define API_MAX_DISCARD		(1024 * 1024)	/* past this an oversize upload is cut off */
#define API_MAX_PEER_CERTS	4		/* leaf + intermediates a client may send */
#define API_MAX_TOKEN_TTL	(7 * 86400)
#define API_DEFAULT_MAX_TTL	(72 * 3600)	/* a service's max_ttl when unset */
#define API_TOKEN_PREFIX	"mca_"

/* What meshcad serves with; read-only once the server runs. */
/* A setting of api_ctx that SIGHUP may change, read atomically. */
#define API_SETTING(ctx, name) __atomic_load_n(&(ctx)->name, __ATOMIC_RELAXED)

#define API_DB_READERS_MAX	8	/* read-only connections (readers.c) */

struct api_ctx {
	struct db		*db;		/* the writing connection */
	struct db		*readers[API_DB_READERS_MAX];	/* api_db_reader */
	unsigned		 nreaders;
	struct db		*lister;	/* api_db_lister */
	_Atomic unsigned	 reader_next;
	struct ca_signer	*signer;
	/* `"chain":…,"roots":…` of every certificate reply, encoded once
	 * (api_leaf_reply_init): the signer's PEM never changes while it runs. */
	char			*leaf_reply_tail;
	char			 trust_domain[256];
	/* Changed by SIGHUP (api/reload.h) while handlers run: read them with
	 * API_SETTING(ctx, name). */
	int64_t			 default_ttl;
	int64_t			 min_ttl;
	int64_t			 token_ttl;
	int64_t			 admin_max_ttl;	/* cap (and default) of renewed admin certificates */
	gnutls_x509_trust_list_t client_trust;	/* root + intermediate */
	struct api_auth_cache	*auth_cache;	/* verified chains (auth.c) */
	char			 admin_prefix[320];	/* spiffe://<td>/meshca/admin/ */
	/* From public_url: where relying parties find the CRL, the OCSP
	 * responder and the issuing CA ("" when public_url is unset). */
	char			 crl_url[600];
	char			 ocsp_url[600];
	char			 ca_issuers_url[600];
	struct api_revocation	*revocation;	/* CRL and OCSP state (revocation.c) */
	struct api_audit	*audit;		/* the checkpoint thread (audit.c) */
	struct api_workers	*workers;	/* issuing requests' pool (workers.c), or NULL */
	_Atomic int		 inflight;	/* requests begun and not completed */
	struct api_limits	 limits;	/* connection and resource limits (conn_limits.h) */
	struct api_ratelimit	*ratelimit;	/* failed token presentations per address */
	struct api_conns	*conns;		/* the request-time watchdog (conn_limits.c) */
};

/* k per online CPU, at most max (k >= 1). */
unsigned api_per_cpu(unsigned k, unsigned max);

/* Read-only connections to the database at path, a few per CPU; closed
 * (all of them) by api_readers_close. */
enum mca_err api_readers_open(struct api_ctx *ctx, const char *path) MCA_WUR;
void api_readers_close(struct api_ctx *ctx);
/* The connection this thread reads through: never waits for a commit of
 * the writing connection (ctx->db when no reader is open).  Only for
 * reads; whatever must be atomic with a write goes through ctx->db. */
struct db *api_db_reader(struct api_ctx *ctx);
/* The read-only connection of listings, which may walk millions of rows:
 * one of their own, so that a long one delays no issuance (ctx->db when
 * none is open). */
struct db *api_db_lister(struct api_ctx *ctx);

/* Sets the revocation pointers of a leaf request from the context. */
void api_leaf_urls(const struct api_ctx *ctx, struct ca_leaf_req *req);

/* The client certificate of a request, once verified: it chains to this
 * CA, is within its validity, and its record is active (not revoked). */
struct api_peer {
	bool			verified;
	char			serial[CA_SERIAL_HEX_MAX];
	char			spiffe_id[CA_MAX_SPIFFE_ID_LEN + 1];
	enum db_cert_kind	kind;
	int64_t			service_id;	/* 0 for admin and server */
	bool			admin;		/* an admin identity */
	enum db_admin_role	role;		/* when admin: from the admins table */
};

struct api_request {
	struct api_ctx		*ctx;
	struct MHD_Connection	*conn;
	const char		*method;
	char			 path[256];
	struct mca_buf		 body;
	bool			 too_big;
	size_t			 discarded;	/* bytes of an oversize body dropped */
	char			 allow[64];	/* Allow header of a 405, or "" */
	bool			 replied;
	unsigned		 status;
	unsigned		 retry_after;	/* seconds for a Retry-After header, or 0 */
	int64_t			 start_us;
	char			 id[17];		/* request id, hex */
	struct api_peer		 peer;
	bool			 peer_checked;
	enum mca_err		 peer_err;	/* why the peer did not verify */
	/* For metrics (api_metrics_request): the service a certificate request
	 * concerned ("" unknown) and the public code of an error reply. */
	char			 service[CA_MAX_SERVICE_NAME + 2];
	const char		*error_code;	/* static string, NULL unless an error */
	/* Run on the worker pool (workers.c): the connection is suspended
	 * meanwhile, and the reply waits in pending until MHD resumes it. */
	bool			 offloaded;
	bool			 deferred;	/* replies go to pending, not to MHD */
	struct MHD_Response	*pending;
	struct api_request	*next_job;	/* the pool's queue */
	enum MHD_Result		(*job)(struct api_request *, const char *);
};

/* ---- replies (reply.c) ---------------------------------------------- */

/* Each queues exactly one response and returns MHD's verdict.  obj is
 * consumed (its reference is stolen). */
enum MHD_Result api_reply_json(struct api_request *r, unsigned status, json_t *obj);
enum MHD_Result api_reply_bytes(struct api_request *r, unsigned status, const char *content_type,
    const void *data, size_t len);
/* A JSON error with a public code and message. */
enum MHD_Result api_reply_error(struct api_request *r, unsigned status, const char *code,
    const char *fmt, ...) MCA_PRINTF(4, 5);
/* Seconds a client is told to wait (Retry-After) after a 503
 * database_unavailable: about the database's busy timeout. */
#define API_DB_RETRY_AFTER	5
/* The client address of the request's connection, or NULL. */
const struct sockaddr *api_peer_addr(const struct api_request *r);
/* Refuses (429 rate_limited, Retry-After) a credential presentation from
 * an address that has spent its allowance of failures (ratelimit.h);
 * true when it has replied.  Every failure api_reply_err answers with
 * token_invalid, token_used or token_expired spends one allowance. */
bool api_ratelimit_refuse(struct api_request *r, enum MHD_Result *ret);
/* Maps an internal error to its HTTP status and public code; the message
 * carries mca_err_detail() for 4xx, and only a generic sentence for 5xx
 * (the detail goes to the log). */
enum MHD_Result api_reply_err(struct api_request *r, enum mca_err e);
/* The HTTP status and public code api_reply_err uses for e. */
void api_err_public(enum mca_err e, unsigned *status, const char **code);

/* ---- JSON (jsonio.c) ------------------------------------------------ */

/* The request body as a JSON object: checks Content-Type (415) and
 * syntax (400 malformed_json, duplicate keys refused).  On failure it has
 * already replied and returns NULL. */
json_t *api_json_body(struct api_request *r);
/* A TTL given as integer seconds or a duration string. */
enum mca_err api_json_duration(const json_t *v, const char *field, int64_t *out) MCA_WUR;
/* Appends every string of a JSON array to a SAN set (NULL v: nothing). */
enum mca_err api_json_dns(const json_t *v, const char *field, bool allow_wildcard, struct ca_sans *out) MCA_WUR;
enum mca_err api_json_ips(const json_t *v, const char *field, bool allow_cidr, struct ca_sans *out) MCA_WUR;
json_t *api_json_strings(char *const *list, size_t n);
/* Appends item (stolen, may be NULL) to *arr; on failure releases *arr and
 * sets it to NULL, so a list loop stops and the reply becomes one 500. */
void api_json_push(json_t **arr, json_t *item);
json_t *api_json_time(int64_t t);
json_t *api_service_json(const struct db_service *svc);
json_t *api_cert_json(const struct db_cert *c, bool with_pem);

/* ---- authentication (auth.c) ---------------------------------------- */

enum mca_err api_auth_init(struct api_ctx *ctx) MCA_WUR;
void api_auth_free(struct api_ctx *ctx);
/* Verifies the client certificate of the connection (once per request):
 * MCA_OK with r->peer filled; MCA_ERR_AUTH when none is presented or it
 * cannot be used, MCA_ERR_UNKNOWN_ISSUER when it does not chain to this
 * CA, MCA_ERR_CERT_EXPIRED outside its validity, MCA_ERR_CERT_REVOKED
 * when its record is revoked (passive revocation: a revoked certificate
 * authenticates nowhere). */
enum mca_err api_auth_peer(struct api_request *r) MCA_WUR;
/* The same, handing the caller the presented certificate's record (read
 * once per request: the handler needs no second read).  rec is cleared
 * and then filled whenever the record was found, even if it is refused
 * (revoked, expired); the caller clears it. */
enum mca_err api_auth_peer_record(struct api_request *r, struct db_cert *rec) MCA_WUR;
/* Roles of the admin endpoints, ordered: each includes the ones below. */
enum api_role { API_ROLE_VIEWER, API_ROLE_ADMIN };
/* true when the request carries an active admin certificate whose name
 * is an active admin (admins table) of at least role need; r->peer.admin
 * and .role are set.  Otherwise it has replied: 401 (api_auth_peer's
 * codes) or 403 forbidden (not an admin, removed, or a role too low: the
 * message names the role needed). */
bool api_require_role(struct api_request *r, enum api_role need);
/* api_require_role(r, API_ROLE_ADMIN): every write endpoint. */
bool api_require_admin(struct api_request *r);
/* The admin name of an admin certificate's SPIFFE ID (after
 * ctx->admin_prefix), or NULL when it is not one. */
const char *api_admin_name(const struct api_ctx *ctx, const char *spiffe_id);
/* For an authenticated admin certificate (api_auth_peer done): its
 * admin record must be active; sets r->peer.role.  MCA_ERR_FORBIDDEN
 * otherwise. */
enum mca_err api_peer_role(struct api_request *r) MCA_WUR;

/* ---- routes --------------------------------------------------------- */

/* arg: the path segment matched by '*' in the route, or NULL. */
typedef enum MHD_Result (*api_handler)(struct api_request *r, const char *arg);

/* ---- worker pool (workers.c) ------------------------------------------ */

/* n threads (0: two per online CPU) that run the issuing handlers, so a
 * burst is served first come, first served whatever thread of
 * libmicrohttpd read it.  The daemon needs MHD_ALLOW_SUSPEND_RESUME. */
enum mca_err api_workers_start(unsigned n, struct api_workers **out) MCA_WUR;
/* From the access handler: suspends r's connection and queues h(r, NULL);
 * false (nothing done) when the pool is stopping: run it inline. */
bool api_workers_submit(struct api_workers *w, struct api_request *r, api_handler h);
/* From the access handler, once MHD resumed an offloaded request: queues
 * the reply the worker left (MHD_NO, closing the connection, if none). */
enum MHD_Result api_workers_deliver(struct api_request *r);
/* Runs what is queued to the end, then joins the threads.  NULL: no-op. */
void api_workers_stop(struct api_workers *w);

/* ---- TLS session resumption (resume.c) -------------------------------- */

/* The process's session-ticket master key; idempotent. */
enum mca_err api_resume_init(void) MCA_WUR;
void api_resume_free(void);
/* At connection start (before the handshake): tickets on for its session. */
void api_resume_enable(struct MHD_Connection *conn);

enum MHD_Result route_health(struct api_request *r, const char *arg);
enum MHD_Result route_roots(struct api_request *r, const char *arg);
enum MHD_Result route_roots_pem(struct api_request *r, const char *arg);
enum MHD_Result route_enroll(struct api_request *r, const char *arg);
enum MHD_Result route_renew(struct api_request *r, const char *arg);
enum MHD_Result route_service_create(struct api_request *r, const char *arg);
enum MHD_Result route_service_list(struct api_request *r, const char *arg);
enum MHD_Result route_service_get(struct api_request *r, const char *arg);
enum MHD_Result route_token_create(struct api_request *r, const char *arg);
enum MHD_Result route_cert_list(struct api_request *r, const char *arg);
enum MHD_Result route_cert_get(struct api_request *r, const char *arg);
enum MHD_Result route_revoke(struct api_request *r, const char *arg);
enum MHD_Result route_service_disable(struct api_request *r, const char *arg);
enum MHD_Result route_service_enable(struct api_request *r, const char *arg);
enum MHD_Result route_crl(struct api_request *r, const char *arg);
enum MHD_Result route_crl_pem(struct api_request *r, const char *arg);
enum MHD_Result route_intermediate(struct api_request *r, const char *arg);
enum MHD_Result route_ocsp_post(struct api_request *r, const char *arg);
enum MHD_Result route_ocsp_get(struct api_request *r, const char *arg);
enum MHD_Result route_admin_create(struct api_request *r, const char *arg);
enum MHD_Result route_admin_list(struct api_request *r, const char *arg);
enum MHD_Result route_admin_get(struct api_request *r, const char *arg);
enum MHD_Result route_admin_token(struct api_request *r, const char *arg);
enum MHD_Result route_admin_remove(struct api_request *r, const char *arg);
enum MHD_Result route_status(struct api_request *r, const char *arg);
enum MHD_Result route_audit_list(struct api_request *r, const char *arg);
enum MHD_Result route_audit_checkpoint_latest(struct api_request *r, const char *arg);

/* ---- audit (audit.c) ------------------------------------------------ */

struct api_audit;
struct mca_config;

/* The actor of a request: the verified client certificate's SPIFFE ID,
 * else "unauthenticated".  Token requests name "token:<service>" (or
 * "token:unknown" when the token resolves to no service) themselves. */
const char *api_audit_actor(const struct api_request *r);
/* obj (consumed; may be NULL) as compact JSON text with sorted keys, for
 * struct db_audit's detail; free() it.  NULL when obj is NULL or out of
 * memory. */
char *api_audit_detail(json_t *obj);
/* The detail of a certificate entry (cert.issue, cert.renew,
 * cert.rotate): service (may be NULL), spiffe_id, not_after, dns_names,
 * ip_addresses, renewed_from (when set).  free() it; NULL: no memory. */
char *api_audit_cert_detail(const struct db_cert *rec, const char *service);
/* The detail of a service entry (service.add, service.update): its
 * policy as GET /v1/services/{name} shows it, less name and times. */
char *api_audit_service_detail(const struct db_service *svc);
/* Records a refused request (outcome failure) in its own transaction:
 * actor (NULL: api_audit_actor), action ("cert.issue", "token.consume",
 * "cert.renew", ...), subject (may be NULL), and detail {"error": the
 * public code, "reason": the refusal's detail for 4xx}.  Never the token
 * or the CSR.  A failure to record is logged, not returned: the client
 * gets its refusal either way. */
void api_audit_refusal(struct api_request *r, const char *actor, const char *action,
    const char *subject, enum mca_err rc);
/* Signs and stores a checkpoint of the audit chain's head with the
 * intermediate key when the head moved past the latest checkpoint, and
 * logs it as one line ("audit checkpoint seq=N head=HEX at=RFC3339
 * signature=BASE64").  Checkpoints are not audit entries. */
enum mca_err api_audit_checkpoint(struct api_ctx *ctx) MCA_WUR;
/* Reads audit_checkpoint_interval (default 5m) and starts the thread
 * that checkpoints at that pace.  api_audit_stop joins it and writes a
 * last checkpoint (clean shutdown); a no-op when never started. */
enum mca_err api_audit_start(struct api_ctx *ctx, const struct mca_config *cfg) MCA_WUR;
void api_audit_stop(struct api_ctx *ctx);

/* ---- enrollment tokens (token.c) ------------------------------------- */

#define API_TOKEN_MAX	128	/* buffer for a token: "mca_" + 43 base64url + NUL */

/* A new one-time token, "mca_" + base64url(256 random bits) without
 * padding, into out (at least API_TOKEN_MAX), and its SHA-256, the only
 * form stored.  The caller wipes out after use. */
enum mca_err api_token_new(char *out, size_t outsz, unsigned char hash[DB_TOKEN_HASH_LEN]) MCA_WUR;
/* A token's lifetime from v (seconds or a duration; NULL: token_ttl
 * from config), at most API_MAX_TOKEN_TTL. */
enum mca_err api_token_ttl(const struct api_request *r, const json_t *v, int64_t *ttl) MCA_WUR;

/* ---- revocation: the CRL and the OCSP cache (revocation.c) ----------- */

struct api_revocation;
struct mca_config;

/* Reads crl_validity (default 24 h) and ocsp_validity (default 1 h) from
 * cfg, builds a first CRL (numbered after the last one recorded) and
 * starts the thread that rebuilds it after revocations and at half its
 * validity.  Call before serving; api_revocation_stop after the server
 * has stopped (it joins the thread; a no-op when never started). */
enum mca_err api_revocation_start(struct api_ctx *ctx, const struct mca_config *cfg) MCA_WUR;
void api_revocation_stop(struct api_ctx *ctx);
/* A certificate was revoked (serial), or several (NULL): drops cached
 * OCSP responses for it (all of them for NULL) and asks for a CRL
 * rebuild, which follows within ~200 ms, coalescing bursts. */
void api_revocation_changed(struct api_ctx *ctx, const char *serial);
/* crl_validity and ocsp_validity, checked (SIGHUP, api/reload.h); apply
 * takes effect with the next CRL built (rescheduled at once) and the next
 * OCSP response signed. */
struct api_revocation_settings {
	int64_t	crl_validity;
	int64_t	ocsp_validity;
};
enum mca_err api_revocation_settings_load(const struct mca_config *cfg,
    struct api_revocation_settings *s) MCA_WUR;
void api_revocation_settings_apply(struct api_ctx *ctx, const struct api_revocation_settings *s);

/* The current CRL, shared read-only; release with api_crl_put. */
struct api_crl {
	struct mca_buf	der;
	struct mca_buf	pem;
	uint64_t	number;
	int64_t		this_update;
	int64_t		next_update;
	size_t		entries;
};

const struct api_crl *api_crl_get(struct api_ctx *ctx);	/* NULL before the first build */
void api_crl_put(struct api_ctx *ctx, const struct api_crl *crl);

/* OCSP responses to nonce-less requests, keyed by the SHA-256 of the
 * request, reused until refresh_at.  api_ocsp_cache_gen is read before
 * looking the status up: api_ocsp_cache_put drops the response when a
 * revocation came in between (the generation moved). */
#define API_OCSP_KEY_LEN 32
uint64_t api_ocsp_cache_gen(struct api_ctx *ctx);
/* status: an enum api_ocsp_served (metrics.h), kept with the response so
 * that a cached answer is counted by its certStatus too. */
bool api_ocsp_cache_get(struct api_ctx *ctx, const unsigned char key[API_OCSP_KEY_LEN],
    int64_t now, struct mca_buf *out, int *status);
void api_ocsp_cache_put(struct api_ctx *ctx, const unsigned char key[API_OCSP_KEY_LEN],
    const char *serial, uint64_t gen, int64_t refresh_at, const struct mca_buf *der, int status);
/* Lifetime of an OCSP response (ocsp_validity). */
int64_t api_ocsp_validity(struct api_ctx *ctx);

/* ---- meshcad's own TLS identity (tls.c) ----------------------------- */

struct api_tls;

/* Loads the server credential, rotating it at once when it is missing,
 * mismatched or due, and starts the thread that rotates it at 2/3 of its
 * lifetime.  ttl: lifetime of new server certificates, 0 = as now. */
enum mca_err api_tls_open(struct api_ctx *ctx, const char *cert_path, const char *key_path,
    int64_t ttl, struct api_tls **out) MCA_WUR;
void api_tls_free(struct api_tls *t);
/* notAfter of the certificate being served (0 for NULL); thread-safe. */
int64_t api_tls_not_after(struct api_tls *t);
/* GnuTLS certificate retrieve function (MHD_OPTION_HTTPS_CERT_CALLBACK). */
int api_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
    unsigned int *pcert_length, gnutls_privkey_t *pkey);

/* ---- issuing a leaf (route_enroll.c, shared with route_renew.c) ------ */

/* A leaf certificate on its way out: the verified CSR, the names granted,
 * the request (identity, TTL, now) and, once signed, the result. */
struct api_leaf {
	struct ca_csr		*csr;
	struct ca_sans		 granted;
	struct ca_leaf_req	 req;	/* .sans and the URLs are set when issuing */
	struct ca_issued	 issued;
};

void api_leaf_clear(struct api_leaf *leaf);
/* Parses text as a CSR (signature verified once) whose key type is in
 * mask (MCA_ERR_CSR_PARSE, MCA_ERR_CSR_SIGNATURE, MCA_ERR_WEAK_KEY,
 * MCA_ERR_KEY_TYPE). */
enum mca_err api_leaf_csr(struct api_leaf *leaf, const char *text, uint32_t mask) MCA_WUR;
/* Service policy helpers shared by create and update (route_services.c):
 * a SAN set to the text lists db/ stores (appended to svc's, which must
 * be empty), and a key_types array (NULL: every type) to a mask. */
enum mca_err api_service_sans_to_text(const struct ca_sans *s, struct db_service *svc) MCA_WUR;
enum mca_err api_key_types_from_json(const json_t *v, uint32_t *mask) MCA_WUR;
enum MHD_Result route_service_update(struct api_request *r, const char *arg);
/* The DNS names and IP ranges a service may hold, as a SAN set. */
enum mca_err api_service_sans(const struct db_service *svc, struct ca_sans *allowed) MCA_WUR;
/* TTL: v (seconds or a duration string; NULL: def), at least min_ttl
 * (MCA_ERR_TTL), capped at max. */
enum mca_err api_ttl(const struct api_request *r, const json_t *v, int64_t def, int64_t max,
    int64_t *ttl) MCA_WUR;
/* Signs the leaf, fills rec's certificate fields (the caller sets
 * service_id, kind, spiffe_id, renewed_from) and hands it to commit,
 * which must return only once the record is durable. */
enum mca_err api_issue_record(struct api_request *r, struct api_leaf *leaf, struct db_cert *rec,
    enum mca_err (*commit)(struct api_request *, void *, const struct db_cert *), void *arg) MCA_WUR;
/* 201 with certificate, chain, roots, serial, spiffe_id, validity, names. */
enum MHD_Result api_leaf_reply(struct api_request *r, const struct api_leaf *leaf);
/* Encodes ctx->leaf_reply_tail from ctx->signer; api_leaf_reply_free frees it. */
enum mca_err api_leaf_reply_init(struct api_ctx *ctx) MCA_WUR;
void api_leaf_reply_free(struct api_ctx *ctx);
/* POST /v1/enroll with an admin's token (route_admins.c), and its reply:
 * issues spiffe://<td>/meshca/admin/<name>, kind admin, any key type, no
 * DNS/IP names (asking for some is 403 san_not_allowed), TTL ttl (NULL:
 * admin_max_ttl) capped at admin_max_ttl, recorded with the token
 * consumed in one transaction (db_admin_enroll_commit). */
enum MHD_Result api_admin_enroll(struct api_request *r, int64_t admin_id,
    const unsigned char hash[DB_TOKEN_HASH_LEN], const char *csr, const json_t *ttl,
    bool names_requested, int64_t now);

/* ---- server (server.c) ---------------------------------------------- */

struct api_server;

struct api_listen {
	char		host[128];	/* IPv4 or IPv6 literal */
	uint16_t	port;		/* 0: any free port */
};

enum mca_err api_listen_parse(const char *text, struct api_listen *out) MCA_WUR;
/* Starts serving; the server certificate comes from api_tls_retrieve. */
enum mca_err api_server_start(struct api_ctx *ctx, const struct api_listen *l,
    struct api_server **out) MCA_WUR;
uint16_t api_server_port(const struct api_server *s);
/* Stops accepting, lets requests in flight finish (up to grace seconds),
 * then closes every connection, idle keep-alive ones included. */
void api_server_stop(struct api_server *s, int grace);

#endif
