/*
 * JSON in and out of meshcad (jansson).  Request bodies are objects,
 * duplicate keys are refused, and the body is already bounded by the
 * server (API_MAX_BODY), which bounds nesting too.
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/parse.h"
#include "ca/common/timefmt.h"

static bool
content_type_is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

json_t *
api_json_body(struct api_request *r)
{
	const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	json_t *obj;

	if (!content_type_is_json(ct)) {
		api_reply_error(r, 415, "unsupported_media_type",
		    "expected Content-Type: application/json, got %s", ct ? ct : "none");
		return NULL;
	}
	if (api_parse_object((const char *)r->body.data, r->body.len, &obj) != MCA_OK) {
		api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		return NULL;
	}
	return obj;
}

enum mca_err
api_json_duration(const json_t *v, const char *field, int64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n <= 0 || n > 100LL * 366 * 86400)
			return mca_err_set(MCA_ERR_TTL, "%s: %lld seconds is out of range", field, (long long)n);
		*out = n;
		return MCA_OK;
	}
	if (json_is_string(v)) {
		if (mca_duration_parse(json_string_value(v), out) != MCA_OK)
			return mca_err_set(MCA_ERR_PARSE, "%s: %s", field, mca_err_detail());
		if (*out <= 0)
			return mca_err_set(MCA_ERR_TTL, "%s must be positive", field);
		return MCA_OK;
	}
	return mca_err_set(MCA_ERR_PARSE, "%s must be seconds or a duration string like \"24h\"", field);
}

static enum mca_err
json_each_string(const json_t *v, const char *field, size_t max, const char **items, size_t *n)
{
	size_t i;
	json_t *e;

	*n = 0;
	if (v == NULL)
		return MCA_OK;
	if (!json_is_array(v))
		return mca_err_set(MCA_ERR_PARSE, "%s must be an array of strings", field);
	if (json_array_size(v) > max)
		return mca_err_set(MCA_ERR_TOOBIG, "%s: more than %zu entries", field, max);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return mca_err_set(MCA_ERR_PARSE, "%s[%zu] must be a string", field, i);
		items[(*n)++] = json_string_value(e);
	}
	return MCA_OK;
}

/* Appends every string of the JSON array v (NULL: none) to a SAN set, as
 * DNS names or as IP addresses; `patterns` admits "*.suffix" and CIDRs. */
static enum mca_err
json_sans(const json_t *v, const char *field, bool ip, bool patterns, struct ca_sans *out)
{
	const char *items[CA_MAX_SANS];
	enum mca_err rc;
	size_t n;

	if ((rc = json_each_string(v, field, CA_MAX_SANS, items, &n)) != MCA_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		rc = ip ? ca_sans_add_ip(out, items[i], patterns) : ca_sans_add_dns(out, items[i], patterns);
		if (rc != MCA_OK)
			return mca_err_set(rc, "%s: %s", field, mca_err_detail());
	}
	return MCA_OK;
}

enum mca_err
api_json_dns(const json_t *v, const char *field, bool allow_wildcard, struct ca_sans *out)
{
	return json_sans(v, field, false, allow_wildcard, out);
}

enum mca_err
api_json_ips(const json_t *v, const char *field, bool allow_cidr, struct ca_sans *out)
{
	return json_sans(v, field, true, allow_cidr, out);
}

void
api_json_push(json_t **arr, json_t *item)
{
	/* json_array_append_new releases item when it fails (NULL item included). */
	if (*arr != NULL && json_array_append_new(*arr, item) != 0) {
		json_decref(*arr);
		*arr = NULL;
	}
}

json_t *
api_json_strings(char *const *list, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++) {
		if (json_array_append_new(a, json_string(list[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

json_t *
api_json_time(int64_t t)
{
	char buf[MCA_TIME_LEN];

	mca_time_format(t, buf);
	return json_string(buf);
}

static json_t *
key_types_json(uint32_t mask)
{
	json_t *a = json_array();

	for (int t = 0; a != NULL && t < CA_KEY_TYPE_MAX; t++) {
		if ((mask & CA_KEY_MASK(t)) == 0)
			continue;
		if (json_array_append_new(a, json_string(ca_key_type_name((enum ca_key_type)t))) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

json_t *
api_service_json(const struct db_service *svc)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:o, s:b, s:b, s:o, s:o}",
	    "name", svc->name,
	    "spiffe_id", svc->spiffe_id,
	    "dns_names", api_json_strings(svc->dns_names, svc->ndns),
	    "ip_addresses", api_json_strings(svc->ip_ranges, svc->nips),
	    "default_ttl", (json_int_t)svc->default_ttl,
	    "max_ttl", (json_int_t)svc->max_ttl,
	    "key_types", key_types_json(svc->key_types),
	    "allow_wildcards", svc->allow_wildcards,
	    "enabled", svc->enabled,
	    "created_at", api_json_time(svc->created_at),
	    "updated_at", api_json_time(svc->updated_at));
}

json_t *
api_cert_json(const struct db_cert *c, bool with_pem)
{
	json_t *o;

	o = json_pack("{s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o}",
	    "serial", c->serial,
	    "service", c->service ? json_string(c->service) : json_null(),
	    "kind", db_cert_kind_name(c->kind),
	    "spiffe_id", c->spiffe_id,
	    "dns_names", api_json_strings(c->dns_names, c->ndns),
	    "ip_addresses", api_json_strings(c->ip_addresses, c->nips),
	    "not_before", api_json_time(c->not_before),
	    "not_after", api_json_time(c->not_after),
	    "status", db_cert_status_name(c->status),
	    "renewed_from", c->renewed_from ? json_string(c->renewed_from) : json_null(),
	    "created_at", api_json_time(c->created_at));
	if (o != NULL && (json_object_set_new(o, "revoked_at", c->revoked_at != 0 ?
	    api_json_time(c->revoked_at) : json_null()) != 0 ||
	    json_object_set_new(o, "revocation_reason", c->revocation_reason >= 0 ?
	    json_string(ca_crl_reason_name(c->revocation_reason)) : json_null()) != 0)) {
		json_decref(o);
		return NULL;
	}
	if (o != NULL && with_pem && c->der != NULL) {
		struct ca_cert *cert = NULL;

		if (ca_cert_parse(c->der, c->der_len, &cert) != MCA_OK ||
		    json_object_set_new(o, "certificate",
		    json_stringn((const char *)ca_cert_pem(cert)->data, ca_cert_pem(cert)->len)) != 0) {
			json_decref(o);
			o = NULL;
		}
		ca_cert_free(cert);
	}
	return o;
}
