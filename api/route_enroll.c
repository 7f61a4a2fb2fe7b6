/*
 * POST /v1/enroll {token, csr, ttl?, dns_names?, ip_addresses?}
 *
 * Order matters: everything that can be refused is checked before
 * signing, and the certificate leaves only after the token is consumed
 * and the record committed in one durable transaction (db_enroll_commit).
 * Identity comes from the service record, never from the CSR.
 */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define TOKEN_MAX_LEN 128

struct enroll {
	const char		*token;
	const char		*csr_text;
	json_t			*ttl, *dns, *ips;
	unsigned char		 hash[DB_TOKEN_HASH_LEN];
	struct db_service	 svc;
	struct ca_csr		*csr;
	struct ca_sans		 granted;
	struct ca_issued	 issued;
	int64_t			 now;
};

static void
enroll_clear(struct enroll *e)
{
	db_service_clear(&e->svc);
	ca_csr_free(e->csr);
	ca_sans_clear(&e->granted);
	ca_issued_clear(&e->issued);
	mca_wipe(e->hash, sizeof(e->hash));
}

/* The token's service, without consuming the token. */
static enum mca_err
enroll_token(struct api_request *r, struct enroll *e)
{
	int64_t service_id;
	size_t len = strlen(e->token);
	enum mca_err rc;

	if (len == 0 || len > TOKEN_MAX_LEN)
		return mca_err_set(MCA_ERR_TOKEN_INVALID, "token has an impossible length");
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, e->token, len, e->hash) < 0)
		return MCA_ERR_CRYPTO;
	if ((rc = db_token_lookup(r->ctx->db, e->hash, e->now, &service_id)) != MCA_OK)
		return rc;
	if ((rc = db_service_get_by_id(r->ctx->db, service_id, &e->svc)) != MCA_OK)
		return rc;
	if (!e->svc.enabled)
		return mca_err_set(MCA_ERR_DISABLED, "service %s is disabled", e->svc.name);
	return MCA_OK;
}

static enum mca_err
service_allowed(const struct db_service *svc, struct ca_sans *allowed)
{
	enum mca_err rc;

	for (size_t i = 0; i < svc->ndns; i++)
		if ((rc = ca_sans_add_dns(allowed, svc->dns_names[i], true)) != MCA_OK)
			return rc;
	for (size_t i = 0; i < svc->nips; i++)
		if ((rc = ca_sans_add_ip(allowed, svc->ip_ranges[i], true)) != MCA_OK)
			return rc;
	return MCA_OK;
}

/* The names to issue: those asked for in JSON, else in the CSR, else all
 * the service's exact names; each must be allowed. */
static enum mca_err
enroll_names(struct enroll *e)
{
	struct ca_sans allowed = { 0 }, requested = { 0 };
	enum mca_err rc;

	if ((rc = service_allowed(&e->svc, &allowed)) != MCA_OK)
		goto out;
	if (e->dns != NULL || e->ips != NULL) {
		if ((rc = api_json_dns(e->dns, "dns_names", true, &requested)) != MCA_OK ||
		    (rc = api_json_ips(e->ips, "ip_addresses", false, &requested)) != MCA_OK)
			goto out;
	} else if ((rc = ca_csr_sans(e->csr, &requested)) != MCA_OK) {
		goto out;
	}
	if ((rc = ca_sans_authorize(&allowed, &requested, &e->granted)) != MCA_OK)
		rc = mca_err_set(rc, "service %s: %s", e->svc.name, mca_err_detail());
out:
	ca_sans_clear(&allowed);
	ca_sans_clear(&requested);
	return rc;
}

static enum mca_err
enroll_ttl(struct api_request *r, struct enroll *e, int64_t *ttl)
{
	enum mca_err rc;

	*ttl = e->svc.default_ttl;
	if (e->ttl != NULL && (rc = api_json_duration(e->ttl, "ttl", ttl)) != MCA_OK)
		return rc;
	if (*ttl < r->ctx->min_ttl)
		return mca_err_set(MCA_ERR_TTL, "ttl %llds is below the minimum of %llds",
		    (long long)*ttl, (long long)r->ctx->min_ttl);
	if (*ttl > e->svc.max_ttl)	/* capped, as step-ca and Vault do */
		*ttl = e->svc.max_ttl;
	return MCA_OK;
}

static char **
ip_texts(const struct ca_sans *s)
{
	char **list = calloc(s->nips + 1, sizeof(char *));
	char text[64];

	for (size_t i = 0; list != NULL && i < s->nips; i++) {
		ca_ip_format(&s->ips[i], text);
		if ((list[i] = strdup(text)) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(list[j]);
			free(list);
			return NULL;
		}
	}
	return list;
}

void
api_leaf_urls(const struct api_ctx *ctx, struct ca_leaf_req *req)
{
	req->crl_url = ctx->crl_url[0] ? ctx->crl_url : NULL;
	req->ocsp_url = ctx->ocsp_url[0] ? ctx->ocsp_url : NULL;
	req->ca_issuers_url = ctx->ca_issuers_url[0] ? ctx->ca_issuers_url : NULL;
}

/* Sign, then record durably together with consuming the token. */
static enum mca_err
enroll_issue(struct api_request *r, struct enroll *e, int64_t ttl)
{
	struct ca_leaf_req req = {
		.spiffe_id = e->svc.spiffe_id, .common_name = e->svc.name,
		.sans = &e->granted, .ttl = ttl, .now = e->now,
	};
	struct db_cert rec = { 0 };
	char **ips = NULL;
	enum mca_err rc;

	api_leaf_urls(r->ctx, &req);
	if ((rc = ca_issue_leaf(r->ctx->signer, e->csr, &req, &e->issued)) != MCA_OK)
		return rc;
	if ((ips = ip_texts(&e->granted)) == NULL)
		return MCA_ERR_NOMEM;
	rec.serial = e->issued.serial;
	rec.service_id = e->svc.id;
	rec.kind = DB_CERT_WORKLOAD;
	rec.spiffe_id = e->svc.spiffe_id;
	rec.dns_names = e->granted.dns;
	rec.ndns = e->granted.ndns;
	rec.ip_addresses = ips;
	rec.nips = e->granted.nips;
	rec.not_before = e->issued.not_before;
	rec.not_after = e->issued.not_after;
	rec.der = e->issued.der.data;
	rec.der_len = e->issued.der.len;
	rec.status = DB_CERT_ACTIVE;
	rc = db_enroll_commit(r->ctx->db, e->hash, e->now, &rec);
	for (size_t i = 0; i < e->granted.nips; i++)
		free(ips[i]);
	free(ips);
	return rc;
}

static enum MHD_Result
enroll_reply(struct api_request *r, struct enroll *e)
{
	const struct mca_buf *chain = ca_signer_chain_pem(r->ctx->signer);
	const struct mca_buf *roots = ca_signer_roots_pem(r->ctx->signer);
	char **ips = ip_texts(&e->granted);
	json_t *o;

	o = json_pack("{s:s%, s:s%, s:s%, s:s, s:s, s:o, s:o, s:o, s:o}",
	    "certificate", (const char *)e->issued.pem.data, e->issued.pem.len,
	    "chain", (const char *)chain->data, chain->len,
	    "roots", (const char *)roots->data, roots->len,
	    "serial", e->issued.serial,
	    "spiffe_id", e->svc.spiffe_id,
	    "not_before", api_json_time(e->issued.not_before),
	    "not_after", api_json_time(e->issued.not_after),
	    "dns_names", api_json_strings(e->granted.dns, e->granted.ndns),
	    "ip_addresses", ips ? api_json_strings(ips, e->granted.nips) : NULL);
	for (size_t i = 0; ips != NULL && i < e->granted.nips; i++)
		free(ips[i]);
	free(ips);
	return api_reply_json(r, 201, o);
}

enum MHD_Result
route_enroll(struct api_request *r, const char *arg)
{
	struct enroll e = { 0 };
	json_error_t jerr;
	json_t *body;
	int64_t ttl;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if ((body = api_json_body(r)) == NULL)
		return MHD_YES;
	e.now = mca_now();
	if (json_unpack_ex(body, &jerr, JSON_STRICT, "{s:s, s:s, s?o, s?o, s?o}",
	    "token", &e.token, "csr", &e.csr_text, "ttl", &e.ttl,
	    "dns_names", &e.dns, "ip_addresses", &e.ips) != 0) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", jerr.text);
		goto out;
	}
	if ((rc = enroll_token(r, &e)) != MCA_OK ||
	    (rc = ca_csr_parse((const unsigned char *)e.csr_text, strlen(e.csr_text), &e.csr)) != MCA_OK ||
	    (rc = ca_csr_check_key(e.csr, e.svc.key_types)) != MCA_OK ||
	    (rc = enroll_names(&e)) != MCA_OK ||
	    (rc = enroll_ttl(r, &e, &ttl)) != MCA_OK ||
	    (rc = enroll_issue(r, &e, ttl)) != MCA_OK) {
		mca_log(MCA_LOG_INFO, "enrollment refused", "id", r->id,
		    "service", e.svc.name, "error", mca_errname(rc), "detail", mca_err_detail(),
		    (const char *)NULL);
		ret = api_reply_err(r, rc);
		goto out;
	}
	mca_log(MCA_LOG_INFO, "certificate issued", "id", r->id, "service", e.svc.name,
	    "serial", e.issued.serial, "spiffe_id", e.svc.spiffe_id, (const char *)NULL);
	ret = enroll_reply(r, &e);
out:
	enroll_clear(&e);
	json_decref(body);
	return ret;
}
