/*
 * PATCH /v1/services/{name}: changes a service's policy (admin role).
 *
 *   {"dns_names": [...] | "add_dns_names": [...], "remove_dns_names": [...],
 *    "ip_addresses": [...] | "add_ip_addresses": [...], "remove_ip_addresses": [...],
 *    "default_ttl": D, "max_ttl": D, "key_types": [...], "allow_wildcards": B,
 *    "spiffe_id": <the current one; any other is refused>}
 *
 * Every field is optional; what is absent keeps its value.  The new
 * policy is validated as at creation (names, name constraints, TTLs, key
 * types) and written with db_service_update's compare-and-set, retried
 * when another update got in between, so concurrent add/remove requests
 * all take effect.  Certificates already issued are untouched: the next
 * renewal follows the new policy (route_renew.c drops names no longer
 * allowed).
 */
#include "api/api.h"
#include "api/parse.h"

#include <stdlib.h>
#include <string.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define UPDATE_TRIES	5

/* The stored list (text) as a SAN set, less what `remove` names. */
static enum mca_err
list_keep(char *const *list, size_t n, const struct ca_sans *remove, bool ip,
    struct ca_sans *out)
{
	char text[64];
	bool drop;
	enum mca_err rc;

	for (size_t i = 0; i < n; i++) {
		drop = false;
		for (size_t j = 0; !ip && j < remove->ndns && !drop; j++)
			drop = strcmp(list[i], remove->dns[j]) == 0;
		for (size_t j = 0; ip && j < remove->nips && !drop; j++) {
			ca_ip_format(&remove->ips[j], text);
			drop = strcmp(list[i], text) == 0;
		}
		if (drop)
			continue;
		rc = ip ? ca_sans_add_ip(out, list[i], true) : ca_sans_add_dns(out, list[i], true);
		if (rc != MCA_OK)
			return rc;
	}
	return MCA_OK;
}

/* Every name of `remove` must be in the stored list: a typo must not
 * pass for a removal. */
static enum mca_err
removals_present(char *const *list, size_t n, const struct ca_sans *remove, const char *field)
{
	char text[64];
	bool found;

	for (size_t j = 0; j < remove->ndns + remove->nips; j++) {
		if (j < remove->ndns)
			snprintf(text, sizeof(text), "%.63s", remove->dns[j]);
		else
			ca_ip_format(&remove->ips[j - remove->ndns], text);
		found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(list[i], j < remove->ndns ? remove->dns[j] : text) == 0;
		if (!found)
			return mca_err_set(MCA_ERR_INVALID, "%s: '%s' is not in the service's list",
			    field, j < remove->ndns ? remove->dns[j] : text);
	}
	return MCA_OK;
}

/* The new DNS and IP lists as one SAN set. */
static enum mca_err
update_sans(const struct api_service_update_in *in, const struct db_service *old, struct ca_sans *out)
{
	struct ca_sans rm = { 0 };
	enum mca_err rc;

	if (in->dns != NULL)
		rc = api_json_dns(in->dns, "dns_names", true, out);
	else if ((rc = api_json_dns(in->remove_dns, "remove_dns_names", true, &rm)) == MCA_OK &&
	    (rc = removals_present(old->dns_names, old->ndns, &rm, "remove_dns_names")) == MCA_OK &&
	    (rc = list_keep(old->dns_names, old->ndns, &rm, false, out)) == MCA_OK)
		rc = api_json_dns(in->add_dns, "add_dns_names", true, out);
	ca_sans_clear(&rm);
	if (rc != MCA_OK)
		return rc;
	if (in->ips != NULL)
		rc = api_json_ips(in->ips, "ip_addresses", true, out);
	else if ((rc = api_json_ips(in->remove_ips, "remove_ip_addresses", true, &rm)) == MCA_OK &&
	    (rc = removals_present(old->ip_ranges, old->nips, &rm, "remove_ip_addresses")) ==
	    MCA_OK && (rc = list_keep(old->ip_ranges, old->nips, &rm, true, out)) == MCA_OK)
		rc = api_json_ips(in->add_ips, "add_ip_addresses", true, out);
	ca_sans_clear(&rm);
	return rc;
}

static enum mca_err
update_ttls(const struct api_request *r, const struct api_service_update_in *in, struct db_service *svc)
{
	enum mca_err rc;

	if (in->default_ttl != NULL &&
	    (rc = api_json_duration(in->default_ttl, "default_ttl", &svc->default_ttl)) != MCA_OK)
		return rc;
	if (in->max_ttl != NULL &&
	    (rc = api_json_duration(in->max_ttl, "max_ttl", &svc->max_ttl)) != MCA_OK)
		return rc;
	if (svc->default_ttl < API_SETTING(r->ctx, min_ttl))
		return mca_err_set(MCA_ERR_TTL, "default_ttl %llds is below the minimum of %llds",
		    (long long)svc->default_ttl, (long long)API_SETTING(r->ctx, min_ttl));
	if (svc->max_ttl < svc->default_ttl)
		return mca_err_set(MCA_ERR_TTL, "max_ttl %llds is below default_ttl %llds",
		    (long long)svc->max_ttl, (long long)svc->default_ttl);
	return MCA_OK;
}

/* svc = old with the changes of in, validated as at creation. */
static enum mca_err
update_apply(const struct api_request *r, const struct api_service_update_in *in,
    const struct db_service *old, struct db_service *svc)
{
	struct ca_sans sans = { 0 };
	enum mca_err rc;

	if (in->spiffe_id != NULL && strcmp(in->spiffe_id, old->spiffe_id) != 0)
		return mca_err_set(MCA_ERR_SPIFFE_ID, "the SPIFFE ID of service %s cannot change "
		    "(it is the identity its certificates carry): register a new service",
		    old->name);
	svc->id = old->id;
	svc->default_ttl = old->default_ttl;
	svc->max_ttl = old->max_ttl;
	svc->key_types = old->key_types;
	svc->allow_wildcards = in->allow_wildcards < 0 ? old->allow_wildcards :
	    in->allow_wildcards != 0;
	svc->enabled = old->enabled;
	svc->created_at = old->created_at;
	if ((svc->name = strdup(old->name)) == NULL ||
	    (svc->spiffe_id = strdup(old->spiffe_id)) == NULL)
		return MCA_ERR_NOMEM;
	if ((rc = update_sans(in, old, &sans)) == MCA_OK &&
	    (rc = ca_signer_names_check(r->ctx->signer, NULL, &sans)) == MCA_OK &&
	    (rc = api_service_sans_to_text(&sans, svc)) == MCA_OK &&
	    (rc = update_ttls(r, in, svc)) == MCA_OK && in->key_types != NULL)
		rc = api_key_types_from_json(in->key_types, &svc->key_types);
	ca_sans_clear(&sans);
	return rc;
}

/* Names in a but not in b, as a JSON array. */
static json_t *
list_minus(char *const *a, size_t na, char *const *b, size_t nb)
{
	json_t *out = json_array();
	bool found;

	for (size_t i = 0; out != NULL && i < na; i++) {
		found = false;
		for (size_t j = 0; j < nb && !found; j++)
			found = strcmp(a[i], b[j]) == 0;
		if (!found && json_array_append_new(out, json_string(a[i])) != 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

/* The audit detail: what changed, from what to what (names as deltas). */
static char *
update_detail(const struct db_service *o, const struct db_service *n)
{
	json_t *d = json_object();

	if (d == NULL)
		return NULL;
	json_object_set_new(d, "dns_names_added", list_minus(n->dns_names, n->ndns,
	    o->dns_names, o->ndns));
	json_object_set_new(d, "dns_names_removed", list_minus(o->dns_names, o->ndns,
	    n->dns_names, n->ndns));
	json_object_set_new(d, "ip_addresses_added", list_minus(n->ip_ranges, n->nips,
	    o->ip_ranges, o->nips));
	json_object_set_new(d, "ip_addresses_removed", list_minus(o->ip_ranges, o->nips,
	    n->ip_ranges, n->nips));
	json_object_set_new(d, "default_ttl", json_pack("[I, I]", (json_int_t)o->default_ttl,
	    (json_int_t)n->default_ttl));
	json_object_set_new(d, "max_ttl", json_pack("[I, I]", (json_int_t)o->max_ttl,
	    (json_int_t)n->max_ttl));
	json_object_set_new(d, "key_types", json_pack("[I, I]", (json_int_t)o->key_types,
	    (json_int_t)n->key_types));
	json_object_set_new(d, "allow_wildcards", json_pack("[b, b]", o->allow_wildcards,
	    n->allow_wildcards));
	return api_audit_detail(d);
}

/* One read-modify-write attempt; MCA_ERR_CONFLICT asks for another. */
static enum mca_err
update_once(struct api_request *r, const char *name, const struct api_service_update_in *in,
    struct db_service *svc)
{
	struct db_service old = { 0 };
	struct db_audit a = { api_audit_actor(r), "service.update", name, true, NULL };
	char *detail = NULL;
	enum mca_err rc;

	if ((rc = db_service_get(r->ctx->db, name, &old)) != MCA_OK) {
		if (rc == MCA_ERR_NOT_FOUND)
			rc = mca_err_set(rc, "no service named '%.64s'", name);
		return rc;
	}
	if ((rc = update_apply(r, in, &old, svc)) != MCA_OK)
		goto out;
	if ((a.detail = detail = update_detail(&old, svc)) == NULL) {
		rc = MCA_ERR_NOMEM;
		goto out;
	}
	rc = db_service_update(r->ctx->db, &old, svc, mca_now(), &a);
out:
	free(detail);
	db_service_clear(&old);
	return rc;
}

enum MHD_Result
route_service_update(struct api_request *r, const char *name)
{
	struct api_service_update_in in;
	struct db_service svc = { 0 };
	json_t *body;
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_admin(r) || (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if ((rc = api_parse_service_update(body, &in)) == MCA_ERR_PARSE) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		goto out;
	}
	for (int i = 0; rc == MCA_OK && i < UPDATE_TRIES; i++) {
		db_service_clear(&svc);
		if ((rc = update_once(r, name, &in, &svc)) == MCA_ERR_CONFLICT &&
		    i + 1 < UPDATE_TRIES)
			rc = MCA_OK;
		else if (rc == MCA_OK)
			break;
	}
	if (rc != MCA_OK) {
		if (rc != MCA_ERR_NOT_FOUND)
			api_audit_refusal(r, NULL, "service.update", name, rc);
		ret = api_reply_err(r, rc);
		goto out;
	}
	mca_log(MCA_LOG_INFO, "service updated", "id", r->id, "service", svc.name,
	    "actor", r->peer.spiffe_id, (const char *)NULL);
	ret = api_reply_json(r, 200, api_service_json(&svc));
out:
	db_service_clear(&svc);
	json_decref(body);
	return ret;
}
