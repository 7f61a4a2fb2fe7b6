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
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <microhttpd.h>

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
struct api_ctx {
	struct db		*db;
	struct ca_signer	*signer;
	char			 trust_domain[256];
	int64_t			 default_ttl;
	int64_t			 min_ttl;
	int64_t			 token_ttl;
	gnutls_x509_trust_list_t client_trust;	/* root + intermediate */
	char			 admin_prefix[320];	/* spiffe://<td>/meshca/admin/ */
	/* From public_url: where relying parties find the CRL, the OCSP
	 * responder and the issuing CA ("" when public_url is unset). */
	char			 crl_url[600];
	char			 ocsp_url[600];
	char			 ca_issuers_url[600];
};

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
	int64_t			 start_us;
	char			 id[17];		/* request id, hex */
	struct api_peer		 peer;
	bool			 peer_checked;
	enum mca_err		 peer_err;	/* why the peer did not verify */
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
/* Maps an internal error to its HTTP status and public code; the message
 * carries mca_err_detail() for 4xx, and only a generic sentence for 5xx
 * (the detail goes to the log). */
enum MHD_Result api_reply_err(struct api_request *r, enum mca_err e);

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
/* true when the request carries an active admin certificate; otherwise
 * it has replied 401 or 403. */
bool api_require_admin(struct api_request *r);

/* ---- routes --------------------------------------------------------- */

/* arg: the path segment matched by '*' in the route, or NULL. */
typedef enum MHD_Result (*api_handler)(struct api_request *r, const char *arg);

enum MHD_Result route_health(struct api_request *r, const char *arg);
enum MHD_Result route_roots(struct api_request *r, const char *arg);
enum MHD_Result route_roots_pem(struct api_request *r, const char *arg);
enum MHD_Result route_enroll(struct api_request *r, const char *arg);
enum MHD_Result route_service_create(struct api_request *r, const char *arg);
enum MHD_Result route_service_list(struct api_request *r, const char *arg);
enum MHD_Result route_service_get(struct api_request *r, const char *arg);
enum MHD_Result route_token_create(struct api_request *r, const char *arg);
enum MHD_Result route_cert_list(struct api_request *r, const char *arg);
enum MHD_Result route_cert_get(struct api_request *r, const char *arg);

/* ---- server (server.c) ---------------------------------------------- */

struct api_server;

struct api_listen {
	char		host[128];	/* IPv4 or IPv6 literal */
	uint16_t	port;		/* 0: any free port */
};

enum mca_err api_listen_parse(const char *text, struct api_listen *out) MCA_WUR;
/* Starts serving with the TLS key and certificate chain (PEM). */
enum mca_err api_server_start(struct api_ctx *ctx, const struct api_listen *l,
    const struct mca_buf *key_pem, const struct mca_buf *cert_pem, struct api_server **out) MCA_WUR;
uint16_t api_server_port(const struct api_server *s);
/* Stops accepting, lets requests in flight finish (up to grace seconds),
 * then stops. */
void api_server_stop(struct api_server *s, int grace);

#endif
