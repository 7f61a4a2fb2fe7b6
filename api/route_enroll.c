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

#include "api/parse.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define TOKEN_MAX_LEN 128

struct enroll {
	const char		*token;
	const char		*csr_text;
	json_t			*ttl, *dns, *ips;
	unsigned char		 hash[DB_TOKEN_HASH_LEN];
	struct db_service	 svc;
	struct api_leaf		 leaf;
	int64_t			 now;
	int64_t			 admin_id;	/* an admin's token (route_admins.c) */
};

static void
enroll_clear(struct enroll *e)
{
	db_service_clear(&e->svc);
	api_leaf_clear(&e->leaf);
	mca_wipe(e->hash, sizeof(e->hash));
}

/* Names the service of a used or expired token in the audit of the
 * refused attempt; keeps the token error's detail. */
static void
enroll_token_service(struct api_request *r, struct enroll *e, int64_t service_id, enum mca_err rc)
{
	char why[256];

	(void)snprintf(why, sizeof(why), "%s", mca_err_detail());
	if (db_service_get_by_id(api_db_reader(r->ctx), service_id, &e->svc) != MCA_OK)
		db_service_clear(&e->svc);
	(void)mca_err_set(rc, "%s", why);
}

/* The audit of a refused enrollment: a token that could not be used is
 * a failed "token.consume", anything refused after it a failed
 * "cert.issue".  Never the token or the CSR. */
static void
enroll_refusal(struct api_request *r, const struct enroll *e, enum mca_err rc)
{
	char actor[CA_MAX_SERVICE_NAME + 16];
	bool token = rc == MCA_ERR_TOKEN_INVALID || rc == MCA_ERR_TOKEN_USED ||
	    rc == MCA_ERR_TOKEN_EXPIRED;

	(void)snprintf(actor, sizeof(actor), "token:%s", e->svc.name != NULL ? e->svc.name : "unknown");
	api_audit_refusal(r, actor, token ? "token.consume" : "cert.issue", e->svc.name, rc);
}

/* The token's service (or admin), without consuming the token. */
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
	rc = db_token_lookup_owner(api_db_reader(r->ctx), e->hash, e->now, &service_id, &e->admin_id);
	if ((rc == MCA_ERR_TOKEN_USED || rc == MCA_ERR_TOKEN_EXPIRED) && service_id != 0)
		enroll_token_service(r, e, service_id, rc);	/* for the audit */
	if (rc != MCA_OK || e->admin_id != 0)
		return rc;
	if ((rc = db_service_get_by_id(api_db_reader(r->ctx), service_id, &e->svc)) != MCA_OK)
		return rc;
	if (!e->svc.enabled)
		return mca_err_set(MCA_ERR_DISABLED, "service %s is disabled", e->svc.name);
	return MCA_OK;
}

enum mca_err
api_service_sans(const struct db_service *svc, struct ca_sans *allowed)
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

	if ((rc = api_service_sans(&e->svc, &allowed)) != MCA_OK)
		goto out;
	if (e->dns != NULL || e->ips != NULL) {
		if ((rc = api_json_dns(e->dns, "dns_names", true, &requested)) != MCA_OK ||
		    (rc = api_json_ips(e->ips, "ip_addresses", false, &requested)) != MCA_OK)
			goto out;
	} else if ((rc = ca_csr_sans(e->leaf.csr, &requested)) != MCA_OK) {
		goto out;
	}
	if ((rc = ca_sans_authorize(&allowed, &requested, e->svc.allow_wildcards,
	    &e->leaf.granted)) != MCA_OK)
		rc = mca_err_set(rc, "service %s: %s", e->svc.name, mca_err_detail());
out:
	ca_sans_clear(&allowed);
	ca_sans_clear(&requested);
	return rc;
}

enum mca_err
api_ttl(const struct api_request *r, const json_t *v, int64_t def, int64_t max, int64_t *ttl)
{
	enum mca_err rc;

	*ttl = def;
	if (v != NULL && (rc = api_json_duration(v, "ttl", ttl)) != MCA_OK)
		return rc;
	if (*ttl < API_SETTING(r->ctx, min_ttl))
		return mca_err_set(MCA_ERR_TTL, "ttl %llds is below the minimum of %llds",
		    (long long)*ttl, (long long)API_SETTING(r->ctx, min_ttl));
	if (*ttl > max)	/* capped, as step-ca and Vault do */
		*ttl = max;
	return MCA_OK;
}

static enum mca_err
enroll_ttl(struct api_request *r, struct enroll *e, int64_t *ttl)
{
	return api_ttl(r, e->ttl, e->svc.default_ttl, e->svc.max_ttl, ttl);
}

static void
ip_texts_free(char **list, size_t n)
{
	for (size_t i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
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

void
api_leaf_clear(struct api_leaf *leaf)
{
	ca_csr_free(leaf->csr);
	leaf->csr = NULL;
	ca_sans_clear(&leaf->granted);
	ca_issued_clear(&leaf->issued);
}

/* The CSR, its signature verified once, with a key type in mask. */
enum mca_err
api_leaf_csr(struct api_leaf *leaf, const char *text, uint32_t mask)
{
	enum mca_err rc;

	if ((rc = ca_csr_parse((const unsigned char *)text, strlen(text), &leaf->csr)) != MCA_OK)
		return rc;
	return ca_csr_check_key(leaf->csr, mask);
}

/* Signs leaf->req for leaf->csr, then records it with commit (which
 * must be durable before it returns): nothing leaves unrecorded. */
enum mca_err
api_issue_record(struct api_request *r, struct api_leaf *leaf, struct db_cert *rec,
    enum mca_err (*commit)(struct api_request *, void *, const struct db_cert *), void *arg)
{
	char **ips = NULL;
	enum mca_err rc;

	api_leaf_urls(r->ctx, &leaf->req);
	leaf->req.sans = &leaf->granted;
	if ((rc = ca_issue_leaf(r->ctx->signer, leaf->csr, &leaf->req, &leaf->issued)) != MCA_OK)
		return rc;
	if ((ips = ip_texts(&leaf->granted)) == NULL)
		return MCA_ERR_NOMEM;
	rec->serial = leaf->issued.serial;
	rec->dns_names = leaf->granted.dns;
	rec->ndns = leaf->granted.ndns;
	rec->ip_addresses = ips;
	rec->nips = leaf->granted.nips;
	rec->not_before = leaf->issued.not_before;
	rec->not_after = leaf->issued.not_after;
	rec->der = leaf->issued.der.data;
	rec->der_len = leaf->issued.der.len;
	rec->status = DB_CERT_ACTIVE;
	rc = commit(r, arg, rec);
	ip_texts_free(ips, leaf->granted.nips);
	return rc;
}

static enum mca_err
enroll_commit(struct api_request *r, void *arg, const struct db_cert *rec)
{
	struct enroll *e = arg;
	char actor[CA_MAX_SERVICE_NAME + 16];
	struct db_audit a = { actor, "cert.issue", rec->serial, true, NULL };
	char *detail;
	enum mca_err rc;

	(void)snprintf(actor, sizeof(actor), "token:%s", e->svc.name);
	if ((detail = api_audit_cert_detail(rec, e->svc.name)) == NULL)
		return MCA_ERR_NOMEM;
	a.detail = detail;
	rc = db_enroll_commit(r->ctx->db, e->hash, e->now, rec, &a);
	free(detail);
	return rc;
}

/* Sign, then record durably together with consuming the token. */
static enum mca_err
enroll_issue(struct api_request *r, struct enroll *e, int64_t ttl)
{
	struct db_cert rec = { .service_id = e->svc.id, .kind = DB_CERT_WORKLOAD,
	    .spiffe_id = e->svc.spiffe_id };

	e->leaf.req = (struct ca_leaf_req){ .spiffe_id = e->svc.spiffe_id,
	    .common_name = e->svc.name, .ttl = ttl, .now = e->now };
	return api_issue_record(r, &e->leaf, &rec, enroll_commit, e);
}

enum mca_err
api_leaf_reply_init(struct api_ctx *ctx)
{
	const struct mca_buf *chain = ca_signer_chain_pem(ctx->signer);
	const struct mca_buf *roots = ca_signer_roots_pem(ctx->signer);
	json_t *o = json_pack("{s:s%, s:s%}", "chain", (const char *)chain->data, chain->len,
	    "roots", (const char *)roots->data, roots->len);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	size_t len = text != NULL ? strlen(text) : 0;

	json_decref(o);
	if (len < 2) {
		free(text);
		return mca_err_set(MCA_ERR_NOMEM, "cannot encode the certificate chain as JSON");
	}
	/* The members without the braces around them. */
	memmove(text, text + 1, len - 2);
	text[len - 2] = '\0';
	ctx->leaf_reply_tail = text;
	return MCA_OK;
}

void
api_leaf_reply_free(struct api_ctx *ctx)
{
	free(ctx->leaf_reply_tail);
	ctx->leaf_reply_tail = NULL;
}

/*
 * The reply to an enrollment or renewal.  jansson encodes the members of
 * this certificate; the chain and roots, the same in every reply, were
 * encoded by jansson once (api_leaf_reply_init) and are appended as they
 * are: both halves are JSON object members, so joining them with a comma
 * inside one pair of braces is the object with all of them.  Encoding the
 * chain and roots each time was half of the reply's JSON cost (13 of
 * 23 µs).
 */
enum MHD_Result
api_leaf_reply(struct api_request *r, const struct api_leaf *leaf)
{
	const char *tail = r->ctx->leaf_reply_tail;
	char **ips = ip_texts(&leaf->granted);
	char *head, *text = NULL;
	size_t hl = 0, tl = strlen(tail);
	json_t *o;
	enum MHD_Result ret;

	/* ttl: the lifetime granted, after the caps of max_ttl and of the
	 * intermediate's notAfter (a longer request is capped, not refused). */
	o = json_pack("{s:s%, s:s, s:s, s:o, s:o, s:I, s:o, s:o}",
	    "certificate", (const char *)leaf->issued.pem.data, leaf->issued.pem.len,
	    "serial", leaf->issued.serial,
	    "spiffe_id", leaf->req.spiffe_id,
	    "not_before", api_json_time(leaf->issued.not_before),
	    "not_after", api_json_time(leaf->issued.not_after),
	    "ttl", (json_int_t)(leaf->issued.not_after - leaf->req.now),
	    "dns_names", api_json_strings(leaf->granted.dns, leaf->granted.ndns),
	    "ip_addresses", ips ? api_json_strings(ips, leaf->granted.nips) : NULL);
	ip_texts_free(ips, leaf->granted.nips);
	head = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	/* head is "{…}": replace its closing brace with ",tail}". */
	if (head != NULL && (hl = strlen(head)) >= 2 && head[hl - 1] == '}' &&
	    (text = malloc(hl + 1 + tl + 1)) != NULL) {
		memcpy(text, head, hl - 1);
		text[hl - 1] = ',';
		memcpy(text + hl, tail, tl);
		memcpy(text + hl + tl, "}", 2);
	}
	free(head);
	if (text == NULL)
		return api_reply_json(r, 201, NULL);
	ret = api_reply_bytes(r, 201, "application/json", text, hl + tl + 1);
	free(text);
	return ret;
}

enum MHD_Result
route_enroll(struct api_request *r, const char *arg)
{
	struct enroll e = { 0 };
	struct api_enroll_in in;
	json_t *body;
	int64_t ttl;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	/* Before the token is even looked up: guessing costs the guesser. */
	if (api_ratelimit_refuse(r, &ret))
		return ret;
	if ((body = api_json_body(r)) == NULL)
		return MHD_YES;
	e.now = mca_now();
	if (api_parse_enroll(body, &in) != MCA_OK) {
		ret = api_reply_error(r, 400, "malformed_json", "%s", mca_err_detail());
		goto out;
	}
	e.token = in.token;
	e.csr_text = in.csr;
	e.ttl = in.ttl;
	e.dns = in.dns;
	e.ips = in.ips;
	rc = enroll_token(r, &e);
	snprintf(r->service, sizeof(r->service), "%s", e.admin_id != 0 ? "_admin" :
	    e.svc.name != NULL ? e.svc.name : "");	/* for metrics */
	if (rc == MCA_OK && e.admin_id != 0) {
		ret = api_admin_enroll(r, e.admin_id, e.hash, e.csr_text, e.ttl,
		    e.dns != NULL || e.ips != NULL, e.now);
		goto out;
	}
	if (rc != MCA_OK ||
	    (rc = api_leaf_csr(&e.leaf, e.csr_text, e.svc.key_types)) != MCA_OK ||
	    (rc = enroll_names(&e)) != MCA_OK ||
	    (rc = enroll_ttl(r, &e, &ttl)) != MCA_OK ||
	    (rc = enroll_issue(r, &e, ttl)) != MCA_OK) {
		mca_log(MCA_LOG_INFO, "enrollment refused", "id", r->id,
		    "service", e.svc.name, "error", mca_errname(rc), "detail", mca_err_detail(),
		    (const char *)NULL);
		enroll_refusal(r, &e, rc);
		ret = api_reply_err(r, rc);
		goto out;
	}
	mca_log(MCA_LOG_INFO, "certificate issued", "id", r->id, "service", e.svc.name,
	    "serial", e.leaf.issued.serial, "spiffe_id", e.svc.spiffe_id, (const char *)NULL);
	ret = api_leaf_reply(r, &e.leaf);
out:
	enroll_clear(&e);
	json_decref(body);
	return ret;
}
