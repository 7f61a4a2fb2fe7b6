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

#include <stddef.h>

#include <jansson.h>

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

#endif
