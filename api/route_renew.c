/*
 * POST /v1/renew {csr, ttl?, dns_names?, ip_addresses?}
 *
 * Authenticated by the client certificate alone (api_auth_peer): it
 * chains to this CA, is within its validity and its record is active.
 * The new certificate keeps the identity under the *current* policy: a
 * workload gets its service's SPIFFE ID as it is now and those of the old
 * certificate's DNS/IP names the service still allows (names removed
 * since are dropped, not refused: renewal must not fail because policy
 * narrowed).  Names asked for explicitly (dns_names, ip_addresses) are
 * authorized as at enrollment instead: one the service no longer allows
 * is refused (403 san_not_allowed), not dropped.  An admin keeps its
 * admin SPIFFE ID.  Server certificates are
 * refused: meshcad rotates its own.  The CSR may carry a new key (rekey)
 * or the old one.  The record links to the certificate it renews
 * (renewed_from) and is durable before the answer leaves.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/parse.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

struct renew {
	const char		*csr_text;
	json_t			*ttl, *dns, *ips;	/* dns/ips: names asked for, or NULL */
	struct db_cert		 old;		/* the record of the presented certificate */
	struct db_service	 svc;		/* workloads only */
	struct api_leaf		 leaf;
	const char		*subject;	/* service name or admin name, for CN and logs */
	int64_t			 now;
};

static void
renew_clear(struct renew *w)
{
	db_cert_clear(&w->old);
	db_service_clear(&w->svc);
	api_leaf_clear(&w->leaf);
}

/* Who is asking, and whether that kind of certificate renews here. */
static enum mca_err
renew_peer(struct api_request *r, struct renew *w)
{
	size_t plen = strlen(r->ctx->admin_prefix);
	enum mca_err rc;

	/* One read of the presented certificate's record serves both. */
	if ((rc = api_auth_peer_record(r, &w->old)) != MCA_OK)
		return rc;
	switch (r->peer.kind) {
	case DB_CERT_WORKLOAD:
		rc = db_service_get_by_id(api_db_reader(r->ctx), r->peer.service_id, &w->svc);
		if (rc == MCA_ERR_NOT_FOUND)
			return mca_err_set(MCA_ERR_DISABLED, "the service of certificate %s no "
			    "longer exists", r->peer.serial);
		if (rc != MCA_OK)
			return rc;
		if (!w->svc.enabled)
			return mca_err_set(MCA_ERR_DISABLED, "service %s is disabled", w->svc.name);
		w->subject = w->svc.name;
		return MCA_OK;
	case DB_CERT_ADMIN:
		if (strncmp(r->peer.spiffe_id, r->ctx->admin_prefix, plen) != 0 ||
		    r->peer.spiffe_id[plen] == '\0')
			return mca_err_set(MCA_ERR_FORBIDDEN, "%s is not an administrator identity",
			    r->peer.spiffe_id);
		/* Any role renews, but only an admin still in the admins table. */
		if ((rc = api_peer_role(r)) != MCA_OK)
			return rc;
		w->subject = r->peer.spiffe_id + plen;
		return MCA_OK;
	case DB_CERT_SERVER:
	case DB_CERT_KIND_MAX:
		break;
	}
	return mca_err_set(MCA_ERR_FORBIDDEN, "certificate %s is a %s certificate: meshcad "
	    "rotates its own server certificates", r->peer.serial, db_cert_kind_name(r->peer.kind));
}

/* Adds to granted each name of the old certificate that allowed still
 * permits, one at a time so that a removed name is dropped, not fatal. */
static enum mca_err
keep_name(const struct ca_sans *allowed, bool wild, const char *name, bool ip,
    struct ca_sans *granted, const char *serial)
{
	struct ca_sans one = { 0 }, ok = { 0 };
	enum mca_err rc;

	rc = ip ? ca_sans_add_ip(&one, name, false) : ca_sans_add_dns(&one, name, true);
	if (rc == MCA_OK)
		rc = ca_sans_authorize(allowed, &one, wild, &ok);
	if (rc == MCA_OK)
		rc = ip ? ca_sans_add_ip(granted, name, false) : ca_sans_add_dns(granted, name, true);
	else if (rc == MCA_ERR_SAN_NOT_ALLOWED || rc == MCA_ERR_NAME) {
		mca_log(MCA_LOG_INFO, "renewal drops a name the service no longer allows",
		    "serial", serial, "name", name, (const char *)NULL);
		rc = MCA_OK;
	}
	ca_sans_clear(&one);
	ca_sans_clear(&ok);
	return rc;
}

/* Names asked for explicitly: each must be allowed now, as at enrollment. */
static enum mca_err
renew_names_asked(struct renew *w, const struct ca_sans *allowed)
{
	struct ca_sans requested = { 0 };
	enum mca_err rc;

	if ((rc = api_json_dns(w->dns, "dns_names", true, &requested)) == MCA_OK &&
	    (rc = api_json_ips(w->ips, "ip_addresses", false, &requested)) == MCA_OK &&
	    requested.ndns + requested.nips == 0)
		rc = mca_err_set(MCA_ERR_INVALID, "dns_names and ip_addresses ask for no name: "
		    "leave them out to keep the current certificate's names");
	if (rc == MCA_OK && (rc = ca_sans_authorize(allowed, &requested, w->svc.allow_wildcards,
	    &w->leaf.granted)) == MCA_ERR_SAN_NOT_ALLOWED)
		rc = mca_err_set(rc, "service %s: %s", w->svc.name, mca_err_detail());
	ca_sans_clear(&requested);
	return rc;
}

static enum mca_err
renew_names(struct renew *w)
{
	struct ca_sans allowed = { 0 };
	enum mca_err rc;

	if (w->old.kind != DB_CERT_WORKLOAD) {
		if (w->dns != NULL || w->ips != NULL)
			return mca_err_set(MCA_ERR_SAN_NOT_ALLOWED, "policy: admin certificates "
			    "carry no DNS names or IP addresses");
		return MCA_OK;
	}
	if ((rc = api_service_sans(&w->svc, &allowed)) != MCA_OK)
		goto out;
	if (w->dns != NULL || w->ips != NULL) {
		rc = renew_names_asked(w, &allowed);
		goto out;
	}
	for (size_t i = 0; i < w->old.ndns && rc == MCA_OK; i++)
		rc = keep_name(&allowed, w->svc.allow_wildcards, w->old.dns_names[i], false,
		    &w->leaf.granted, w->old.serial);
	for (size_t i = 0; i < w->old.nips && rc == MCA_OK; i++)
		rc = keep_name(&allowed, w->svc.allow_wildcards, w->old.ip_addresses[i], true,
		    &w->leaf.granted, w->old.serial);
out:
	ca_sans_clear(&allowed);
	return rc;
}

/* Key types, identity and lifetime under today's policy. */
static enum mca_err
renew_request(struct api_request *r, struct renew *w)
{
	bool admin = w->old.kind == DB_CERT_ADMIN;
	uint32_t mask = admin ? CA_KEY_MASK_ALL : w->svc.key_types;
	int64_t ttl, max = admin ? API_SETTING(r->ctx, admin_max_ttl) : w->svc.max_ttl;
	enum mca_err rc;

	if ((rc = api_leaf_csr(&w->leaf, w->csr_text, mask)) != MCA_OK ||
	    (rc = renew_names(w)) != MCA_OK ||
	    (rc = api_ttl(r, w->ttl, admin ? max : w->svc.default_ttl, max, &ttl)) != MCA_OK)
		return rc;
	w->leaf.req = (struct ca_leaf_req){
		.spiffe_id = admin ? r->peer.spiffe_id : w->svc.spiffe_id,
		.common_name = w->subject, .ttl = ttl, .now = w->now,
	};
	return MCA_OK;
}

static enum mca_err
renew_commit(struct api_request *r, void *arg, const struct db_cert *rec)
{
	struct renew *w = arg;
	struct db_audit a = { r->peer.spiffe_id, "cert.renew", rec->serial, true, NULL };
	char *detail;
	enum mca_err rc;

	if ((detail = api_audit_cert_detail(rec, w->old.kind == DB_CERT_WORKLOAD ?
	    w->svc.name : NULL)) == NULL)
		return MCA_ERR_NOMEM;
	a.detail = detail;
	rc = db_cert_insert(r->ctx->db, rec, w->now, &a);
	free(detail);
	return rc;
}

static enum mca_err
renew_issue(struct api_request *r, struct renew *w)
{
	struct db_cert rec = {
		.service_id = w->old.kind == DB_CERT_WORKLOAD ? w->svc.id : 0,
		.kind = w->old.kind,
		.spiffe_id = w->old.kind == DB_CERT_ADMIN ? r->peer.spiffe_id : w->svc.spiffe_id,
		.renewed_from = w->old.serial,
	};

	return api_issue_record(r, &w->leaf, &rec, renew_commit, w);
}

enum MHD_Result
route_renew(struct api_request *r, const char *arg)
{
	struct renew w;
	struct api_renew_in in;
	json_t *body = NULL;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	memset(&w, 0, sizeof(w));
	w.now = mca_now();
	/* Who asks comes first: without a usable certificate the body is moot. */
	rc = renew_peer(r, &w);
	snprintf(r->service, sizeof(r->service), "%s", w.svc.name != NULL ? w.svc.name :
	    r->peer.verified && r->peer.admin ? "_admin" : "");	/* for metrics */
	if (rc != MCA_OK)
		goto refused;
	if ((body = api_json_body(r)) == NULL) {
		ret = MHD_YES;
		goto out;
	}
	if (api_parse_renew(body, &in) != MCA_OK) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		goto out;
	}
	w.csr_text = in.csr;
	w.ttl = in.ttl;
	w.dns = in.dns;
	w.ips = in.ips;
	if ((rc = renew_request(r, &w)) != MCA_OK || (rc = renew_issue(r, &w)) != MCA_OK)
		goto refused;
	mca_log(MCA_LOG_INFO, "certificate renewed", "id", r->id, "subject", w.subject,
	    "serial", w.leaf.issued.serial, "renewed_from", w.old.serial,
	    "spiffe_id", w.leaf.req.spiffe_id, (const char *)NULL);
	ret = api_leaf_reply(r, &w.leaf);
	goto out;
refused:
	mca_log(MCA_LOG_INFO, "renewal refused", "id", r->id,
	    "serial", r->peer.serial[0] != '\0' ? r->peer.serial : NULL,
	    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
	/* Audited once a certificate of this CA was presented (revoked,
	 * expired, disabled service, policy...); a request with none names
	 * nobody and is only logged. */
	if (r->peer.serial[0] != '\0')
		api_audit_refusal(r, r->peer.spiffe_id[0] != '\0' ? r->peer.spiffe_id : NULL,
		    "cert.renew", r->peer.serial, rc);
	ret = api_reply_err(r, rc);
out:
	renew_clear(&w);
	json_decref(body);
	return ret;
}
