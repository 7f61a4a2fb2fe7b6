/*
 * Operators of the CA (issue 5).
 *   POST /v1/admins {name, role?, ttl?}          admin   -> the admin + a one-time token
 *   GET  /v1/admins, GET /v1/admins/{name}        viewer
 *   POST /v1/admins/{name}/tokens {ttl?}          admin   -> a new token for an admin
 *   POST /v1/admins/{name}/remove {reason?}       admin   -> removed, certificates revoked
 * and POST /v1/enroll with an admin's token (api_admin_enroll).
 *
 * An admin authenticates with a certificate for
 * spiffe://<td>/meshca/admin/<name>; its role comes from the admins
 * table at every request (api_require_role), so removing an admin or
 * changing the table takes effect at once.
 */
#include "api/api.h"
#include "api/parse.h"

#include <stdio.h>
#include <string.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define ADMIN_DETAIL_MAX 160	/* audit detail of these routes */

static json_t *
admin_json(const struct api_ctx *ctx, const struct db_admin *a)
{
	char id[CA_MAX_SPIFFE_ID_LEN + 1];

	snprintf(id, sizeof(id), "%s%s", ctx->admin_prefix, a->name);
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}",
	    "name", a->name, "role", db_admin_role_name(a->role), "spiffe_id", id,
	    "status", a->removed_at != 0 ? "removed" : "active",
	    "created_at", api_json_time(a->created_at),
	    "removed_at", a->removed_at != 0 ? api_json_time(a->removed_at) : json_null());
}

static enum MHD_Result
admin_not_found(struct api_request *r, const char *name, enum mca_err rc)
{
	if (rc == MCA_ERR_NOT_FOUND)
		return api_reply_error(r, 404, "not_found", "no active admin named '%.64s'", name);
	return api_reply_err(r, rc);
}

/* Mints a token for admin a (active) and replies 201 with it. */
static enum MHD_Result
admin_token_reply(struct api_request *r, const struct db_admin *a, int64_t ttl, int64_t now)
{
	struct db_audit audit = { api_audit_actor(r), "token.mint", a->name, true, NULL };
	unsigned char hash[DB_TOKEN_HASH_LEN];
	char token[API_TOKEN_MAX], exp[MCA_TIME_LEN], detail[ADMIN_DETAIL_MAX];
	enum MHD_Result ret;
	json_t *o;
	enum mca_err rc;

	snprintf(detail, sizeof(detail), "{\"kind\":\"admin\",\"role\":\"%s\"}",
	    db_admin_role_name(a->role));
	audit.detail = detail;
	if ((rc = api_token_new(token, sizeof(token), hash)) != MCA_OK ||
	    (rc = db_token_insert_admin(r->ctx->db, a->id, hash, now, now + ttl, &audit)) != MCA_OK) {
		mca_wipe(token, sizeof(token));
		api_audit_refusal(r, NULL, "token.mint", a->name, rc);
		return admin_not_found(r, a->name, rc);
	}
	mca_time_format(now + ttl, exp);
	mca_log(MCA_LOG_INFO, "admin token minted", "id", r->id, "admin", a->name,
	    "expires_at", exp, "actor", r->peer.spiffe_id, (const char *)NULL);
	if ((o = admin_json(r->ctx, a)) != NULL &&
	    (json_object_set_new(o, "token", json_string(token)) != 0 ||
	    json_object_set_new(o, "expires_at", json_string(exp)) != 0)) {
		json_decref(o);
		o = NULL;
	}
	ret = api_reply_json(r, 201, o);
	mca_wipe(token, sizeof(token));
	return ret;
}

struct admin_input {
	const char		*name;
	const char		*role;
	json_t			*ttl;
	enum db_admin_role	 r;
	int64_t			 token_ttl;
};

static enum mca_err
admin_input(struct api_request *r, json_t *body, struct admin_input *in)
{
	struct api_admin_in a;
	enum mca_err rc;

	if ((rc = api_parse_admin(body, &a)) != MCA_OK)
		return rc;
	in->name = a.name;
	in->role = a.role;
	in->ttl = a.ttl;
	/* Least privilege unless asked: a new operator reads. */
	in->r = DB_ROLE_VIEWER;
	if (in->role != NULL && (rc = db_admin_role_parse(in->role, &in->r)) != MCA_OK)
		return rc;
	return api_token_ttl(r, in->ttl, &in->token_ttl);
}

enum MHD_Result
route_admin_create(struct api_request *r, const char *arg)
{
	struct db_audit audit = { NULL, "admin.add", NULL, true, NULL };
	struct admin_input in = { 0 };
	struct db_admin a = { 0 };
	char detail[ADMIN_DETAIL_MAX];
	int64_t now = mca_now(), id = 0;
	json_t *body;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_admin(r) || (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if ((rc = admin_input(r, body, &in)) != MCA_OK) {
		ret = rc == MCA_ERR_PARSE ? api_reply_error(r, 400, "malformed_json", "%s",
		    mca_err_detail()) : api_reply_err(r, rc);
		goto out;
	}
	audit.actor = api_audit_actor(r);
	audit.subject = in.name;
	snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", db_admin_role_name(in.r));
	audit.detail = detail;
	if ((rc = db_admin_insert(r->ctx->db, in.name, in.r, now, &id, &audit)) != MCA_OK) {
		api_audit_refusal(r, NULL, "admin.add", in.name, rc);
		ret = api_reply_err(r, rc);
		goto out;
	}
	if ((rc = db_admin_get_by_id(r->ctx->db, id, &a)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	mca_log(MCA_LOG_INFO, "admin added", "id", r->id, "admin", a.name,
	    "role", db_admin_role_name(a.role), "actor", r->peer.spiffe_id, (const char *)NULL);
	/* If minting fails now, the admin exists: POST .../tokens gets one. */
	ret = admin_token_reply(r, &a, in.token_ttl, now);
out:
	db_admin_clear(&a);
	json_decref(body);
	return ret;
}

enum MHD_Result
route_admin_list(struct api_request *r, const char *arg)
{
	struct db_admin *list = NULL;
	size_t n = 0;
	json_t *arr;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = db_admin_list(r->ctx->db, &list, &n)) != MCA_OK)
		return api_reply_err(r, rc);
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		api_json_push(&arr, admin_json(r->ctx, &list[i]));
	ret = api_reply_json(r, 200, arr ? json_pack("{s:o}", "admins", arr) : NULL);
	db_admin_list_free(list, n);
	return ret;
}

enum MHD_Result
route_admin_get(struct api_request *r, const char *name)
{
	struct db_admin a = { 0 };
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = db_admin_get(r->ctx->db, name, &a)) != MCA_OK) {
		if (rc == MCA_ERR_NOT_FOUND)
			return api_reply_error(r, 404, "not_found", "no admin named '%.64s'", name);
		return api_reply_err(r, rc);
	}
	ret = api_reply_json(r, 200, admin_json(r->ctx, &a));
	db_admin_clear(&a);
	return ret;
}

enum MHD_Result
route_admin_token(struct api_request *r, const char *name)
{
	struct db_admin a = { 0 };
	json_t *body = NULL, *v = NULL;
	int64_t ttl, now = mca_now();
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_admin(r))
		return MHD_YES;
	if (r->body.len > 0 && (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if (api_parse_ttl_only(body, &v) != MCA_OK) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		goto out;
	}
	if ((rc = api_token_ttl(r, v, &ttl)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	if ((rc = db_admin_get(r->ctx->db, name, &a)) != MCA_OK || a.removed_at != 0) {
		ret = admin_not_found(r, name, rc == MCA_OK ? MCA_ERR_NOT_FOUND : rc);
		goto out;
	}
	ret = admin_token_reply(r, &a, ttl, now);
out:
	db_admin_clear(&a);
	json_decref(body);
	return ret;
}

/* The optional body of .../remove: {reason: name}; default
 * cessationOfOperation, as for a disabled service. */
static enum mca_err
remove_input(json_t *body, int *reason)
{
	const char *name;
	enum mca_err rc;

	*reason = DB_REASON_CESSATION;
	if ((rc = api_parse_reason_only(body, &name)) != MCA_OK)
		return rc;
	return name != NULL ? api_parse_reason(name, reason) : MCA_OK;
}

enum MHD_Result
route_admin_remove(struct api_request *r, const char *name)
{
	struct db_audit audit = { NULL, "admin.remove", name, true, NULL };
	struct db_admin a = { 0 };
	char detail[ADMIN_DETAIL_MAX], count[24];
	json_t *body = NULL, *o;
	int reason;
	size_t n = 0;
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_admin(r))
		return MHD_YES;
	if (r->body.len > 0 && (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if ((rc = remove_input(body, &reason)) != MCA_OK) {
		ret = rc == MCA_ERR_PARSE ? api_reply_error(r, 400, "malformed_json", "%s",
		    mca_err_detail()) : api_reply_err(r, rc);
		goto out;
	}
	audit.actor = api_audit_actor(r);
	snprintf(detail, sizeof(detail), "{\"reason\":\"%s\"}", ca_crl_reason_name(reason));
	audit.detail = detail;
	if ((rc = db_admin_remove(r->ctx->db, name, reason, mca_now(), &n, &audit)) != MCA_OK) {
		api_audit_refusal(r, NULL, "admin.remove", name, rc);
		ret = admin_not_found(r, name, rc);
		goto out;
	}
	snprintf(count, sizeof(count), "%zu", n);
	mca_log(MCA_LOG_INFO, "admin removed", "id", r->id, "admin", name, "revoked", count,
	    "reason", ca_crl_reason_name(reason), "actor", r->peer.spiffe_id, (const char *)NULL);
	if (n > 0)
		api_revocation_changed(r->ctx, NULL);
	if ((rc = db_admin_get(r->ctx->db, name, &a)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	if ((o = admin_json(r->ctx, &a)) != NULL &&
	    json_object_set_new(o, "revoked", json_integer((json_int_t)n)) != 0) {
		json_decref(o);
		o = NULL;
	}
	ret = api_reply_json(r, 200, o);
out:
	db_admin_clear(&a);
	json_decref(body);
	return ret;
}

/* ---- enrollment with an admin's token --------------------------------- */

struct admin_enroll {
	struct db_admin	 admin;
	struct api_leaf	 leaf;
	char		 spiffe_id[CA_MAX_SPIFFE_ID_LEN + 1];
	char		 actor[96];	/* "token:admin:<name>" */
	int64_t		 admin_id;
	const unsigned char *hash;
	int64_t		 now;
};

static enum mca_err
admin_enroll_commit(struct api_request *r, void *arg, const struct db_cert *rec)
{
	struct admin_enroll *e = arg;
	struct db_audit audit = { e->actor, "cert.issue", rec->serial, true, NULL };
	char detail[ADMIN_DETAIL_MAX];

	snprintf(detail, sizeof(detail), "{\"kind\":\"admin\",\"not_after\":%lld}",
	    (long long)rec->not_after);
	audit.detail = detail;
	return db_admin_enroll_commit(r->ctx->db, e->hash, e->now, e->admin_id, rec, &audit);
}

/* Who the token is for (still active), the CSR, the lifetime; then sign
 * and record. */
static enum mca_err
admin_enroll_issue(struct api_request *r, struct admin_enroll *e, const char *csr,
    const json_t *ttl_v, bool names_requested)
{
	int64_t max_ttl = API_SETTING(r->ctx, admin_max_ttl);	/* one read: SIGHUP */
	struct db_cert rec = { .service_id = 0, .kind = DB_CERT_ADMIN };
	int64_t ttl;
	enum mca_err rc;

	if ((rc = db_admin_get_by_id(r->ctx->db, e->admin_id, &e->admin)) != MCA_OK)
		return rc == MCA_ERR_NOT_FOUND ? mca_err_set(MCA_ERR_TOKEN_INVALID, "unknown token") : rc;
	snprintf(e->actor, sizeof(e->actor), "token:admin:%s", e->admin.name);
	if (e->admin.removed_at != 0)
		return mca_err_set(MCA_ERR_TOKEN_INVALID, "the admin this token was minted for was removed");
	if ((size_t)snprintf(e->spiffe_id, sizeof(e->spiffe_id), "%s%s", r->ctx->admin_prefix,
	    e->admin.name) >= sizeof(e->spiffe_id) ||
	    (rc = ca_spiffe_id_check(e->spiffe_id, r->ctx->trust_domain)) != MCA_OK)
		return mca_err_set(MCA_ERR_SPIFFE_ID, "admin name '%s' makes no valid SPIFFE ID",
		    e->admin.name);
	if (names_requested)
		return mca_err_set(MCA_ERR_SAN_NOT_ALLOWED, "an admin certificate carries no DNS "
		    "names or IP addresses, only its SPIFFE ID");
	if ((rc = api_leaf_csr(&e->leaf, csr, CA_KEY_MASK_ALL)) != MCA_OK ||
	    (rc = api_ttl(r, ttl_v, max_ttl, max_ttl, &ttl)) != MCA_OK)
		return rc;
	/* The CSR's subject and SANs are ignored: identity is the record's. */
	e->leaf.req = (struct ca_leaf_req){ .spiffe_id = e->spiffe_id,
	    .common_name = e->admin.name, .ttl = ttl, .now = e->now };
	rec.spiffe_id = e->spiffe_id;
	return api_issue_record(r, &e->leaf, &rec, admin_enroll_commit, e);
}

enum MHD_Result
api_admin_enroll(struct api_request *r, int64_t admin_id, const unsigned char hash[DB_TOKEN_HASH_LEN],
    const char *csr, const json_t *ttl, bool names_requested, int64_t now)
{
	struct admin_enroll e;
	enum MHD_Result ret;
	enum mca_err rc;

	memset(&e, 0, sizeof(e));
	e.admin_id = admin_id;
	e.hash = hash;
	e.now = now;
	if ((rc = admin_enroll_issue(r, &e, csr, ttl, names_requested)) != MCA_OK) {
		api_audit_refusal(r, e.actor[0] != '\0' ? e.actor : "token:unknown", "cert.issue",
		    e.admin.name, rc);
		mca_log(MCA_LOG_INFO, "admin enrollment refused", "id", r->id, "admin", e.admin.name,
		    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
		ret = api_reply_err(r, rc);
	} else {
		mca_log(MCA_LOG_INFO, "admin certificate issued", "id", r->id, "admin", e.admin.name,
		    "serial", e.leaf.issued.serial, "spiffe_id", e.spiffe_id, (const char *)NULL);
		ret = api_leaf_reply(r, &e.leaf);
	}
	db_admin_clear(&e.admin);
	api_leaf_clear(&e.leaf);
	return ret;
}
