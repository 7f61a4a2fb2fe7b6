/*
 * Revoking, actively:
 *   POST /v1/revoke {serial, reason?}            admin (any serial), or the
 *                                                certificate's own holder
 *   POST /v1/services/{name}/disable {revoke?, reason?}   admin
 *   POST /v1/services/{name}/enable                       admin
 *
 * Revocation is permanent and idempotent (the first time and reason
 * stand).  A committed revocation takes effect at once for meshcad
 * itself (api_auth_peer reads the record), and reaches relying parties
 * through the OCSP responder at once and the CRL within moments
 * (api_revocation_changed).
 */
#include "api/api.h"
#include "api/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

static void
log_revoked(struct api_request *r, const char *serial, int reason, const char *what)
{
	mca_log(MCA_LOG_INFO, what, "id", r->id, "serial", serial,
	    "reason", ca_crl_reason_name(reason), "actor", r->peer.spiffe_id, (const char *)NULL);
}

/* The holder may revoke its own certificate; anything else needs an admin. */
static bool
revoke_allowed(struct api_request *r, const char *serial)
{
	enum mca_err rc;

	if ((rc = api_auth_peer(r)) != MCA_OK) {
		api_reply_err(r, rc);
		return false;
	}
	if (strcmp(r->peer.serial, serial) == 0)
		return true;
	if (api_require_admin(r))
		return true;
	/* It replied 403 forbidden (or 401): a refusal worth recording. */
	api_audit_refusal(r, NULL, "cert.revoke", serial, MCA_ERR_FORBIDDEN);
	return false;
}

static enum MHD_Result
revoke_reply(struct api_request *r, const char *serial, bool newly)
{
	struct db_cert c = { 0 };
	enum MHD_Result ret;
	json_t *o;
	enum mca_err rc;

	if ((rc = db_cert_get(r->ctx->db, serial, mca_now(), &c)) != MCA_OK)
		return api_reply_err(r, rc);
	snprintf(r->service, sizeof(r->service), "%s", c.service != NULL ? c.service :
	    c.kind == DB_CERT_ADMIN ? "_admin" : c.kind == DB_CERT_SERVER ? "_server" : "");	/* for metrics */
	if ((o = api_cert_json(&c, false)) != NULL &&
	    json_object_set_new(o, "already_revoked", json_boolean(!newly)) != 0) {
		json_decref(o);
		o = NULL;
	}
	ret = api_reply_json(r, 200, o);
	db_cert_clear(&c);
	return ret;
}

static enum mca_err
revoke_cert(struct api_request *r, const char *serial, int reason, bool *newly)
{
	struct db_audit a = { api_audit_actor(r), "cert.revoke", serial, true, NULL };
	char *detail;
	enum mca_err rc;

	if ((detail = api_audit_detail(json_pack("{s:s, s:b}", "reason", ca_crl_reason_name(reason),
	    "by_holder", strcmp(r->peer.serial, serial) == 0))) == NULL)
		return MCA_ERR_NOMEM;
	a.detail = detail;
	rc = db_cert_revoke(r->ctx->db, serial, reason, mca_now(), newly, &a);
	free(detail);
	return rc;
}

enum MHD_Result
route_revoke(struct api_request *r, const char *arg)
{
	char serial[CA_SERIAL_HEX_MAX];
	struct api_revoke_in in;
	json_t *body;
	bool newly = false;
	int reason;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if ((body = api_json_body(r)) == NULL)
		return MHD_YES;
	if (api_parse_revoke(body, &in) != MCA_OK) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		goto out;
	}
	if ((rc = api_parse_serial(in.serial, serial)) != MCA_OK ||
	    (rc = api_parse_reason(in.reason, &reason)) != MCA_OK) {
		ret = api_reply_err(r, rc);
		goto out;
	}
	if (!revoke_allowed(r, serial)) {
		ret = MHD_YES;
		goto out;
	}
	if ((rc = revoke_cert(r, serial, reason, &newly)) != MCA_OK) {
		ret = rc == MCA_ERR_NOT_FOUND ?
		    api_reply_error(r, 404, "not_found", "no certificate with serial %s", serial) :
		    api_reply_err(r, rc);
		goto out;
	}
	if (newly) {
		log_revoked(r, serial, reason, "certificate revoked");
		api_revocation_changed(r->ctx, serial);
	}
	ret = revoke_reply(r, serial, newly);
out:
	json_decref(body);
	return ret;
}

/* ---- services ------------------------------------------------------------ */

/* The optional body of .../disable: {revoke: bool, reason: name}. */
static enum mca_err
disable_input(json_t *body, bool *revoke, int *reason)
{
	struct api_disable_in in;
	enum mca_err rc;

	*reason = DB_REASON_CESSATION;
	if ((rc = api_parse_disable(body, &in)) != MCA_OK)
		return rc;
	*revoke = in.revoke;
	return in.reason != NULL ? api_parse_reason(in.reason, reason) : MCA_OK;
}

static enum MHD_Result
service_reply(struct api_request *r, const char *name, const size_t *revoked)
{
	struct db_service svc = { 0 };
	enum MHD_Result ret;
	json_t *o;
	enum mca_err rc;

	if ((rc = db_service_get(r->ctx->db, name, &svc)) != MCA_OK)
		return api_reply_err(r, rc);
	o = api_service_json(&svc);
	if (o != NULL && revoked != NULL &&
	    json_object_set_new(o, "revoked", json_integer((json_int_t)*revoked)) != 0) {
		json_decref(o);
		o = NULL;
	}
	ret = api_reply_json(r, 200, o);
	db_service_clear(&svc);
	return ret;
}

static enum MHD_Result
service_not_found(struct api_request *r, const char *name, enum mca_err rc)
{
	if (rc == MCA_ERR_NOT_FOUND)
		return api_reply_error(r, 404, "not_found", "no service named '%.64s'", name);
	return api_reply_err(r, rc);
}

enum MHD_Result
route_service_disable(struct api_request *r, const char *name)
{
	struct db_audit a = { NULL, "service.disable", NULL, true, NULL };
	json_t *body = NULL;
	bool revoke;
	int reason;
	size_t n = 0;
	char count[24];
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_admin(r))
		return MHD_YES;
	if (r->body.len > 0 && (body = api_json_body(r)) == NULL)
		return MHD_YES;
	if ((rc = disable_input(body, &revoke, &reason)) != MCA_OK) {
		ret = rc == MCA_ERR_PARSE ? api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail()) :
		    api_reply_err(r, rc);
		goto out;
	}
	a.actor = api_audit_actor(r);
	a.subject = name;	/* db/ adds "revoked" and "reason" when revoking */
	rc = revoke ? db_service_disable_revoke(r->ctx->db, name, reason, mca_now(), &n, &a) :
	    db_service_set_enabled(r->ctx->db, name, false, mca_now(), &a);
	if (rc != MCA_OK) {
		ret = service_not_found(r, name, rc);
		goto out;
	}
	snprintf(count, sizeof(count), "%zu", n);
	mca_log(MCA_LOG_INFO, "service disabled", "id", r->id, "service", name,
	    "revoked", revoke ? count : NULL, "reason", revoke ? ca_crl_reason_name(reason) : NULL,
	    "actor", r->peer.spiffe_id, (const char *)NULL);
	if (n > 0)
		api_revocation_changed(r->ctx, NULL);
	ret = service_reply(r, name, revoke ? &n : NULL);
out:
	json_decref(body);
	return ret;
}

enum MHD_Result
route_service_enable(struct api_request *r, const char *name)
{
	struct db_audit a = { NULL, "service.enable", name, true, NULL };
	enum mca_err rc;

	if (!api_require_admin(r))
		return MHD_YES;
	a.actor = api_audit_actor(r);	/* known once authenticated */
	if ((rc = db_service_set_enabled(r->ctx->db, name, true, mca_now(), &a)) != MCA_OK)
		return service_not_found(r, name, rc);
	mca_log(MCA_LOG_INFO, "service enabled", "id", r->id, "service", name,
	    "actor", r->peer.spiffe_id, (const char *)NULL);
	return service_reply(r, name, NULL);
}
