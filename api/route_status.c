/*
 * GET /v1/status (viewer role and up): what an operator checks first.
 * The CA's health (database, signer, how long the root and intermediate
 * remain valid, the CRL), its trust domain, and counts of services and
 * certificates (live, expiring within 24 h, revoked) from one snapshot.
 */
#include "api/api.h"

#include "ca/common/timefmt.h"

#define STATUS_EXPIRING_WINDOW	(24 * 3600)	/* "expiring soon" */
#define STATUS_CA_WARN		(30 * 86400)	/* warn when a CA certificate ends sooner */

static json_t *
ca_cert_status(const struct ca_cert *c, int64_t now, json_t *warnings, const char *what)
{
	char fp[CA_FINGERPRINT_HEX_LEN];
	int64_t na = ca_cert_not_after(c);

	ca_cert_fingerprint(c, fp);
	if (na <= now)
		json_array_append_new(warnings, json_sprintf("the %s certificate has expired", what));
	else if (na - now < STATUS_CA_WARN)
		json_array_append_new(warnings, json_sprintf("the %s certificate expires within 30 days",
		    what));
	return json_pack("{s:o, s:o, s:I, s:s}", "not_before", api_json_time(ca_cert_not_before(c)),
	    "not_after", api_json_time(na), "expires_in", (json_int_t)(na - now), "sha256", fp);
}

static json_t *
counts_json(const struct db_counts *c)
{
	return json_pack("{s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:I}",
	    "services", (json_int_t)c->services,
	    "services_enabled", (json_int_t)c->services_enabled,
	    "admins", (json_int_t)c->admins,
	    "certificates",
	    "live", (json_int_t)c->certs_live,
	    "expiring_24h", (json_int_t)c->certs_expiring,
	    "revoked", (json_int_t)c->certs_revoked,
	    "revoked_unexpired", (json_int_t)c->certs_revoked_unexpired,
	    "total", (json_int_t)c->certs_total,
	    "expiring_window", (json_int_t)STATUS_EXPIRING_WINDOW);
}

static json_t *
crl_status(struct api_ctx *ctx, json_t *warnings, int64_t now)
{
	const struct api_crl *crl = api_crl_get(ctx);
	json_t *o;

	if (crl == NULL) {
		json_array_append_new(warnings, json_string("no CRL has been built yet"));
		return json_null();
	}
	if (crl->next_update <= now)
		json_array_append_new(warnings, json_string("the CRL is past its nextUpdate"));
	o = json_pack("{s:I, s:o, s:o, s:I}", "number", (json_int_t)crl->number,
	    "this_update", api_json_time(crl->this_update),
	    "next_update", api_json_time(crl->next_update), "entries", (json_int_t)crl->entries);
	api_crl_put(ctx, crl);
	return o;
}

enum MHD_Result
route_status(struct api_request *r, const char *arg)
{
	struct db_counts counts;
	int64_t now = mca_now();
	json_t *warnings, *o;
	enum mca_err rc;

	(void)arg;
	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	/* Off the writer's connection, as the listings (api_db_lister). */
	if ((rc = db_counts(api_db_lister(r->ctx), now, STATUS_EXPIRING_WINDOW, &counts)) != MCA_OK)
		return api_reply_err(r, rc);
	if ((warnings = json_array()) == NULL)
		return api_reply_json(r, 200, NULL);
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:o}",
	    "status", "ok", "version", MESHCA_VERSION, "database", "ok",
	    "schema_version", db_schema_version(r->ctx->db), "signer", "ok",
	    "trust_domain", r->ctx->trust_domain,
	    "root", ca_cert_status(ca_signer_root(r->ctx->signer), now, warnings, "root"),
	    "intermediate", ca_cert_status(ca_signer_cert(r->ctx->signer), now, warnings,
	    "intermediate"),
	    "crl", crl_status(r->ctx, warnings, now),
	    "counts", counts_json(&counts));
	if (o != NULL && json_array_size(warnings) > 0 &&
	    json_object_set_new(o, "status", json_string("degraded")) != 0) {
		json_decref(o);
		o = NULL;
	}
	if (o != NULL && json_object_set_new(o, "warnings", warnings) != 0) {
		json_decref(o);
		o = NULL;
	} else if (o == NULL)
		json_decref(warnings);
	return api_reply_json(r, 200, o);
}
