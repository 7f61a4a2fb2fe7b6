/*
 * api/parse.h — request bodies of meshcad, from bytes to typed input.
 *
 * Pure functions over jansson and ca/: no libmicrohttpd type, no database,
 * no server state, so that tests/fuzz/json_fuzz.c can drive exactly what
 * the handlers run.  What needs the service record or the server's
 * configuration (allowed names, TTL bounds) stays in the handlers.
 *
 * Ownership: the caller keeps the object; an input struct's string and
 * json_t pointers borrow from it and live as long as it does.  On failure
 * mca_err_detail() tells why (the text a 400 malformed_json shows).
 */
#ifndef MCA_API_PARSE_H
#define MCA_API_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ca/ca.h"
#include "ca/common/err.h"

/* A JSON object from len bytes (no NUL needed): duplicate keys refused,
 * anything else than an object refused.  MCA_ERR_PARSE on failure. */
enum mca_err api_parse_object(const char *body, size_t len, json_t **out) MCA_WUR;

/* POST /v1/enroll {token, csr, ttl?, dns_names?, ip_addresses?} */
struct api_enroll_in {
	const char	*token;
	const char	*csr;
	json_t		*ttl, *dns, *ips;	/* NULL when absent */
};
enum mca_err api_parse_enroll(json_t *obj, struct api_enroll_in *in) MCA_WUR;

/* POST /v1/renew {csr, ttl?, dns_names?, ip_addresses?} */
struct api_renew_in {
	const char	*csr;
	json_t		*ttl, *dns, *ips;
};
enum mca_err api_parse_renew(json_t *obj, struct api_renew_in *in) MCA_WUR;

/* POST /v1/services {name, spiffe_id?, dns_names?, ip_addresses?,
 * default_ttl?, max_ttl?, key_types?, allow_wildcards?} */
struct api_service_in {
	const char	*name;
	const char	*spiffe_id;
	json_t		*dns, *ips, *default_ttl, *max_ttl, *key_types;
	int		 allow_wildcards;
};
enum mca_err api_parse_service(json_t *obj, struct api_service_in *in) MCA_WUR;

/* PATCH /v1/services/{name}: every field optional; a replacing list
 * (dns_names, ip_addresses) cannot be combined with its add_/remove_
 * edits (MCA_ERR_INVALID); allow_wildcards is -1 when absent. */
struct api_service_update_in {
	const char	*spiffe_id;
	json_t		*dns, *add_dns, *remove_dns;
	json_t		*ips, *add_ips, *remove_ips;
	json_t		*default_ttl, *max_ttl, *key_types;
	int		 allow_wildcards;
};
enum mca_err api_parse_service_update(json_t *obj, struct api_service_update_in *in) MCA_WUR;

/* POST /v1/revoke {serial, reason?} */
struct api_revoke_in {
	const char	*serial;
	const char	*reason;	/* NULL when absent */
};
enum mca_err api_parse_revoke(json_t *obj, struct api_revoke_in *in) MCA_WUR;

/* POST /v1/services/{name}/disable {revoke?, reason?}; obj may be NULL
 * (no body): no revocation. */
struct api_disable_in {
	bool		 revoke;
	const char	*reason;
};
enum mca_err api_parse_disable(json_t *obj, struct api_disable_in *in) MCA_WUR;

/* POST /v1/admins {name, role?, ttl?} */
struct api_admin_in {
	const char	*name;
	const char	*role;		/* NULL: the least privilege (viewer) */
	json_t		*ttl;
};
enum mca_err api_parse_admin(json_t *obj, struct api_admin_in *in) MCA_WUR;

/* The optional bodies {ttl?} (POST /v1/services/{name}/tokens,
 * /v1/admins/{name}/token) and {reason?} (.../remove); obj may be NULL. */
enum mca_err api_parse_ttl_only(json_t *obj, json_t **ttl) MCA_WUR;
enum mca_err api_parse_reason_only(json_t *obj, const char **reason) MCA_WUR;

/* An RFC 5280 5.3.1 reason name to its code (NULL: unspecified);
 * certificateHold (a suspension) and removeFromCRL (delta CRLs only) are
 * refused: meshca revocations are final.  MCA_ERR_INVALID. */
enum mca_err api_parse_reason(const char *name, int *code) MCA_WUR;

/* A serial as clients write it, to lowercase hex of 1 to 20 bytes (RFC
 * 5280 4.1.2.2) in out.  MCA_ERR_INVALID. */
enum mca_err api_parse_serial(const char *in, char out[CA_SERIAL_HEX_MAX]) MCA_WUR;

#endif
