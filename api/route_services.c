/*
 * Services and their enrollment tokens (reading: viewer role; changes: admin).
 *   POST /v1/services, GET /v1/services, GET /v1/services/{name},
 *   POST /v1/services/{name}/tokens
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/parse.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

/* Lists of a ca_sans in the text form db/ stores. */
enum mca_err
api_service_sans_to_text(const struct ca_sans *s, struct db_service *svc)
{
	svc->dns_names = calloc(s->ndns + 1, sizeof(char *));
	svc->ip_ranges = calloc(s->nips + 1, sizeof(char *));
	if (svc->dns_names == NULL || svc->ip_ranges == NULL)
		return MCA_ERR_NOMEM;
	for (size_t i = 0; i < s->ndns; i++, svc->ndns++)
		if ((svc->dns_names[i] = strdup(s->dns[i])) == NULL)
			return MCA_ERR_NOMEM;
	for (size_t i = 0; i < s->nips; i++, svc->nips++) {
		char text[64];

		ca_ip_format(&s->ips[i], text);
		if ((svc->ip_ranges[i] = strdup(text)) == NULL)
			return MCA_ERR_NOMEM;
	}
	return MCA_OK;
}

enum mca_err
api_key_types_from_json(const json_t *v, uint32_t *mask)
{
	size_t i;
	json_t *e;
	enum ca_key_type t;

	if (v == NULL) {
		*mask = CA_KEY_MASK_ALL;
		return MCA_OK;
	}
	if (!json_is_array(v) || json_array_size(v) == 0)
		return mca_err_set(MCA_ERR_PARSE, "key_types must be a non-empty array of key type names");
	*mask = 0;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || ca_key_type_parse(json_string_value(e), &t) != MCA_OK)
			return mca_err_set(MCA_ERR_INVALID, "key_types[%zu]: not one of ecdsa-p256, ecdsa-p384, "
			    "ed25519, rsa-2048, rsa-3072, rsa-4096", i);
		*mask |= CA_KEY_MASK(t);
	}
	return MCA_OK;
}

static enum mca_err
service_ttls(struct api_ctx *ctx, const struct api_service_in *in, struct db_service *svc)
{
	enum mca_err rc;

	svc->default_ttl = API_SETTING(ctx, default_ttl);
	if (in->default_ttl != NULL &&
	    (rc = api_json_duration(in->default_ttl, "default_ttl", &svc->default_ttl)) != MCA_OK)
		return rc;
	svc->max_ttl = svc->default_ttl > API_DEFAULT_MAX_TTL ? svc->default_ttl : API_DEFAULT_MAX_TTL;
	if (in->max_ttl != NULL && (rc = api_json_duration(in->max_ttl, "max_ttl", &svc->max_ttl)) != MCA_OK)
		return rc;
	if (svc->default_ttl < API_SETTING(ctx, min_ttl))
		return mca_err_set(MCA_ERR_TTL, "default_ttl %llds is below the minimum of %llds",
		    (long long)svc->default_ttl, (long long)API_SETTING(ctx, min_ttl));
	if (svc->max_ttl < svc->default_ttl)
		return mca_err_set(MCA_ERR_TTL, "max_ttl %llds is below default_ttl %llds",
		    (long long)svc->max_ttl, (long long)svc->default_ttl);
	return MCA_OK;
}

static enum mca_err
service_identity(struct api_ctx *ctx, const struct api_service_in *in, struct db_service *svc)
{
	char id[CA_MAX_SPIFFE_ID_LEN + 1], reserved[300];
	size_t rlen;
	enum mca_err rc;

	if ((rc = ca_service_name_check(in->name)) != MCA_OK)
		return rc;
	if (in->spiffe_id != NULL)
		snprintf(id, sizeof(id), "%s", in->spiffe_id);
	else
		snprintf(id, sizeof(id), "spiffe://%s/svc/%s", ctx->trust_domain, in->name);
	if ((rc = ca_spiffe_id_check(id, ctx->trust_domain)) != MCA_OK)
		return rc;
	/* meshca's own identities (admins, the server) live under /meshca. */
	rlen = (size_t)snprintf(reserved, sizeof(reserved), "spiffe://%s/meshca", ctx->trust_domain);
	if (strncmp(id, reserved, rlen) == 0 && (id[rlen] == '\0' || id[rlen] == '/'))
		return mca_err_set(MCA_ERR_SPIFFE_ID, "the path /meshca is reserved for meshca's own identities");
	if ((svc->name = strdup(in->name)) == NULL || (svc->spiffe_id = strdup(id)) == NULL)
		return MCA_ERR_NOMEM;
	return MCA_OK;
}

static enum mca_err
service_from_input(struct api_ctx *ctx, const struct api_service_in *in, struct db_service *svc)
{
	struct ca_sans sans = { 0 };
	enum mca_err rc;

	if ((rc = service_identity(ctx, in, svc)) != MCA_OK ||
	    (rc = api_json_dns(in->dns, "dns_names", true, &sans)) != MCA_OK ||
	    (rc = api_json_ips(in->ips, "ip_addresses", true, &sans)) != MCA_OK ||
	    (rc = ca_signer_names_check(ctx->signer, svc->spiffe_id, &sans)) != MCA_OK ||
	    (rc = api_service_sans_to_text(&sans, svc)) != MCA_OK ||
	    (rc = service_ttls(ctx, in, svc)) != MCA_OK ||
	    (rc = api_key_types_from_json(in->key_types, &svc->key_types)) != MCA_OK)
		goto out;
	svc->allow_wildcards = in->allow_wildcards != 0;
	svc->enabled = true;
out:
	ca_sans_clear(&sans);
	return rc;
}

static enum mca_err
service_insert(struct api_request *r, struct db_service *svc)
{
	struct db_audit a = { api_audit_actor(r), "service.add", svc->name, true, NULL };
	char *detail;
	enum mca_err rc;

	if ((detail = api_audit_service_detail(svc)) == NULL)
		return MCA_ERR_NOMEM;
	a.detail = detail;
	rc = db_service_insert(r->ctx->db, svc, mca_now(), &a);
	free(detail);
	return rc;
}

enum MHD_Result
route_service_create(struct api_request *r, const char *arg)
{
	struct api_service_in in = { 0 };
	struct db_service svc = { 0 };
	json_t *body;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_admin(r) || (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if (api_parse_service(body, &in) != MCA_OK) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		goto out;
	}
	if ((rc = service_from_input(r->ctx, &in, &svc)) != MCA_OK ||
	    (rc = service_insert(r, &svc)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	mca_log(MCA_LOG_INFO, "service added", "id", r->id, "service", svc.name,
	    "spiffe_id", svc.spiffe_id, "actor", r->peer.spiffe_id, (const char *)NULL);
	ret = api_reply_json(r, 201, api_service_json(&svc));
out:
	db_service_clear(&svc);
	json_decref(body);
	return ret;
}

enum MHD_Result
route_service_list(struct api_request *r, const char *arg)
{
	struct db_service *list = NULL;
	size_t n = 0;
	json_t *arr;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = db_service_list(r->ctx->db, &list, &n)) != MCA_OK)
		return api_reply_err(r, rc);
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		api_json_push(&arr, api_service_json(&list[i]));
	ret = api_reply_json(r, 200, arr ? json_pack("{s:o}", "services", arr) : NULL);
	db_service_list_free(list, n);
	return ret;
}

enum MHD_Result
route_service_get(struct api_request *r, const char *name)
{
	struct db_service svc = { 0 };
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = db_service_get(r->ctx->db, name, &svc)) != MCA_OK) {
		if (rc == MCA_ERR_NOT_FOUND)
			return api_reply_error(r, 404, "not_found", "no service named '%.64s'", name);
		return api_reply_err(r, rc);
	}
	ret = api_reply_json(r, 200, api_service_json(&svc));
	db_service_clear(&svc);
	return ret;
}

static enum mca_err
token_ttl(struct api_request *r, json_t *body, int64_t *ttl)
{
	json_t *v;
	enum mca_err rc;

	if ((rc = api_parse_ttl_only(body, &v)) != MCA_OK)
		return rc;
	return api_token_ttl(r, v, ttl);
}

enum MHD_Result
route_token_create(struct api_request *r, const char *name)
{
	struct db_service svc = { 0 };
	struct db_audit a = { NULL, "token.mint", NULL, true, NULL };
	unsigned char hash[DB_TOKEN_HASH_LEN];
	char token[API_TOKEN_MAX], exp[MCA_TIME_LEN];
	json_t *body = NULL;
	int64_t ttl, now = mca_now();
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_admin(r))
		return MHD_YES;
	/* The body is optional: an empty POST takes the default TTL. */
	if (r->body.len > 0 && (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if ((rc = token_ttl(r, body, &ttl)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	if ((rc = db_service_get(r->ctx->db, name, &svc)) != MCA_OK) {
		ret = rc == MCA_ERR_NOT_FOUND ?
		    api_reply_error(r, 404, "not_found", "no service named '%.64s'", name) : api_reply_err(r, rc);
		goto out;
	}
	if (!svc.enabled) {
		ret = api_reply_err(r, mca_err_set(MCA_ERR_DISABLED, "service %s is disabled", svc.name));
		goto out;
	}
	a.actor = api_audit_actor(r);
	a.subject = svc.name;	/* db/ adds token_id and expires_at, never the token */
	if ((rc = api_token_new(token, sizeof(token), hash)) != MCA_OK ||
	    (rc = db_token_insert(r->ctx->db, svc.id, hash, now, now + ttl, &a)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	mca_time_format(now + ttl, exp);
	mca_log(MCA_LOG_INFO, "token minted", "id", r->id, "service", svc.name, "expires_at", exp,
	    "actor", r->peer.spiffe_id, (const char *)NULL);
	ret = api_reply_json(r, 201, json_pack("{s:s, s:s, s:s}", "token", token,
	    "service", svc.name, "expires_at", exp));
out:
	mca_wipe(token, sizeof(token));
	db_service_clear(&svc);
	json_decref(body);
	return ret;
}
