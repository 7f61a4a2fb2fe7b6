/*
 * The steps of `meshca agent`: read the certificate held, enroll once with
 * a token, renew over mTLS with the certificate itself, refresh the trust
 * bundle, record what happened, run the hooks.
 *
 * Renewal authenticates with DIR/fullchain.pem and DIR/key.pem and
 * verifies meshcad against DIR/roots.pem: after the first enrollment the
 * token is never needed again.  The trust bundle is refreshed from
 * GET /v1/roots over a connection verified against the bundle held, and
 * the new certificate must verify up to the refreshed bundle before it
 * is written.  Nothing in the directory changes unless the whole new
 * generation is written and checked (creds.c).
 */
#include "cli/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "ca/common/fileio.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"
#include "cli/schedule.h"

#define AGENT_STATE_MAX (64 * 1024)

static enum mca_err
dir_path(const struct agent *a, const char *name, char out[PATH_MAX])
{
	return mca_path_join(out, PATH_MAX, a->w.out_dir, name);
}

/* A uniform draw in [0, 1) for the jitter. */
static double
random_unit(void)
{
	uint64_t x = 0;

	if (gnutls_rnd(GNUTLS_RND_NONCE, &x, sizeof(x)) < 0)
		return 0.5;
	return (double)(x >> 11) / (double)(UINT64_C(1) << 53);
}

enum mca_err
cli_agent_load(struct agent *a)
{
	char path[PATH_MAX], serial[CA_SERIAL_HEX_MAX];
	struct ca_cert *c = NULL;
	struct stat st;
	int64_t start;
	enum mca_err rc;

	if ((rc = dir_path(a, "cert.pem", path)) != MCA_OK)
		return rc;
	if (stat(path, &st) != 0) {
		a->have = false;
		return MCA_OK;
	}
	if ((rc = ca_cert_load(path, &c)) != MCA_OK)
		return rc;
	ca_cert_serial_hex(c, serial);
	if (!a->have || strcmp(serial, a->serial) != 0) {
		snprintf(a->serial, sizeof(a->serial), "%s", serial);
		snprintf(a->spiffe_id, sizeof(a->spiffe_id), "%s",
		    ca_cert_uri(c) != NULL ? ca_cert_uri(c) : "");
		a->not_before = ca_cert_not_before(c);
		a->not_after = ca_cert_not_after(c);
		start = a->not_before > (int64_t)st.st_mtime ? a->not_before : (int64_t)st.st_mtime;
		if (start > a->not_after)
			start = a->not_before;
		a->due = sched_renew_time(start, a->not_after, a->fraction, a->jitter, random_unit());
	}
	a->have = true;
	ca_cert_free(c);
	return MCA_OK;
}

enum mca_err
cli_agent_enroll(struct agent *a)
{
	struct cli_issued res = { 0 };
	struct mca_buf tok = { 0 };
	enum mca_err rc;

	a->last_attempt = mca_now();
	if ((rc = cli_token_get(&a->w, &tok)) == MCA_OK)
		rc = cli_enroll(a->ctx->url, a->ctx->root_cert, &a->w, &tok, &res);
	mca_buf_free(&tok);
	cli_issued_clear(&res);
	return rc;
}

/* The bundle the agent trusts now: DIR/roots.pem, else the bootstrap
 * options (a directory filled by hand without roots.pem). */
static enum mca_err
agent_trust(const struct agent *a, struct cli_trust *t)
{
	char path[PATH_MAX];
	enum mca_err rc;

	if ((rc = dir_path(a, "roots.pem", path)) != MCA_OK)
		return rc;
	if (mca_file_exists(path))
		return cli_trust_setup(t, a->ctx->url, NULL, path);
	return cli_trust_setup(t, a->ctx->url, a->w.fingerprint, a->ctx->root_cert);
}

/* The key of the next certificate: a new one of the same type (or
 * --key-type) unless --reuse-key. */
static enum mca_err
agent_key(const struct agent *a, struct ca_key **out)
{
	char path[PATH_MAX];
	struct ca_key *cur = NULL;
	enum mca_err rc;

	if ((rc = dir_path(a, "key.pem", path)) != MCA_OK ||
	    (rc = ca_key_load(path, NULL, &cur)) != MCA_OK)
		return rc;
	if (a->reuse_key) {
		*out = cur;
		return MCA_OK;
	}
	rc = ca_key_generate(a->w.key_type >= 0 ? (enum ca_key_type)a->w.key_type :
	    ca_key_get_type(cur), out);
	ca_key_free(cur);
	return rc;
}

static enum mca_err
renew_call(const struct agent *a, const struct cli_trust *t, const struct ca_key *key,
    struct cli_issued *res)
{
	char cert[PATH_MAX], keyp[PATH_MAX];
	struct cli_conn conn = { .url = a->ctx->url, .cainfo = t->cainfo, .cert = cert, .key = keyp };
	struct mca_buf csr = { 0 };
	json_t *body = NULL;
	enum mca_err rc;
	long status;

	if ((rc = dir_path(a, "fullchain.pem", cert)) != MCA_OK ||
	    (rc = dir_path(a, "key.pem", keyp)) != MCA_OK ||
	    (rc = ca_csr_create(key, CLI_WORKLOAD_CN, NULL, &csr)) != MCA_OK)
		goto out;
	body = json_pack("{s:s%}", "csr", (const char *)csr.data, csr.len);
	if (body == NULL || (a->w.ttl != NULL &&
	    json_object_set_new(body, "ttl", json_string(a->w.ttl)) != 0)) {
		rc = MCA_ERR_NOMEM;
		goto out;
	}
	rc = cli_http_call(&conn, "POST", "/v1/renew", body, &status, &res->resp);
out:
	json_decref(body);
	mca_buf_free(&csr);
	return rc;
}

enum mca_err
cli_agent_renew(struct agent *a)
{
	struct cli_trust trust;
	struct cli_issued res = { 0 };
	struct mca_buf roots;
	struct ca_key *key = NULL;
	const struct mca_buf *use;
	enum mca_err rc;

	a->last_attempt = mca_now();
	cli_trust_init(&trust);
	mca_buf_init(&roots, 1024 * 1024, false);
	if ((rc = agent_trust(a, &trust)) != MCA_OK ||
	    (rc = agent_key(a, &key)) != MCA_OK ||
	    (rc = renew_call(a, &trust, key, &res)) != MCA_OK)
		goto out;
	use = &roots;
	if (cli_trust_refresh(a->ctx->url, trust.cainfo, &roots) != MCA_OK) {
		mca_log(MCA_LOG_WARN, "trust bundle not refreshed, keeping the current one",
		    "detail", mca_err_detail(), (const char *)NULL);
		use = &trust.roots_pem;
	}
	if ((rc = cli_issued_parse(&res, use)) != MCA_OK)
		goto out;
	rc = cli_creds_write(a->w.out_dir, key, res.leaf, res.chain, use);
out:
	cli_issued_clear(&res);
	cli_trust_clear(&trust);
	mca_buf_free(&roots);
	ca_key_free(key);
	return rc;
}

void
cli_agent_rotated(struct agent *a, const char *event, const char *old_serial)
{
	char exp[MCA_TIME_LEN], due[MCA_TIME_LEN];
	enum mca_err rc;

	a->last_success = a->last_attempt;
	a->last_error[0] = '\0';
	a->failures = 0;
	a->rotations++;
	if (cli_agent_load(a) != MCA_OK) {
		cli_agent_failed(a, "reading the new certificate", MCA_ERR_IO);
		return;
	}
	a->next_attempt = a->due;
	mca_time_format(a->not_after, exp);
	mca_time_format(a->due, due);
	mca_log(MCA_LOG_INFO, event, "spiffe_id", a->spiffe_id, "serial", a->serial,
	    "renewed_from", old_serial, "not_after", exp, "next_renewal", due,
	    "dir", a->w.out_dir, (const char *)NULL);
	cli_agent_state_save(a);
	if ((rc = cli_hook_run(&a->hook, a->w.out_dir, a->serial)) != MCA_OK)
		mca_log(MCA_LOG_ERROR, "rotation hook failed", "serial", a->serial,
		    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
	else if (a->hook.exec != NULL || a->hook.sig != 0)
		mca_log(MCA_LOG_INFO, "rotation hook ran", "serial", a->serial, (const char *)NULL);
}

void
cli_agent_failed(struct agent *a, const char *what, enum mca_err rc)
{
	a->failures++;
	snprintf(a->last_error, sizeof(a->last_error), "%s: %s", what,
	    *mca_err_detail() != '\0' ? mca_err_detail() : mca_strerror(rc));
	mca_log(MCA_LOG_WARN, "renewal failed", "what", what, "serial", a->have ? a->serial : NULL,
	    "error", mca_errname(rc), "detail", mca_err_detail(), (const char *)NULL);
	mca_err_clear();
}

/* ---- the state file ------------------------------------------------- */

static json_t *
time_or_null(int64_t t)
{
	char buf[MCA_TIME_LEN];

	if (t == 0)
		return json_null();
	mca_time_format(t, buf);
	return json_string(buf);
}

void
cli_agent_state_save(const struct agent *a)
{
	char path[PATH_MAX];
	char *text = NULL;
	json_t *o;

	o = json_pack("{s:i, s:s?, s:s?, s:o, s:o, s:o, s:o, s:o, s:s?, s:I, s:I, s:I, s:o}",
	    "version", 1,
	    "spiffe_id", a->have ? a->spiffe_id : NULL,
	    "serial", a->have ? a->serial : NULL,
	    "not_before", time_or_null(a->have ? a->not_before : 0),
	    "not_after", time_or_null(a->have ? a->not_after : 0),
	    "next_attempt", time_or_null(a->next_attempt),
	    "last_attempt", time_or_null(a->last_attempt),
	    "last_success", time_or_null(a->last_success),
	    "last_error", a->last_error[0] != '\0' ? a->last_error : NULL,
	    "failures", (json_int_t)a->failures,
	    "rotations", (json_int_t)a->rotations,
	    "pid", (json_int_t)getpid(),
	    "updated_at", time_or_null(mca_now()));
	if (o == NULL || (text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL ||
	    dir_path(a, AGENT_STATE_FILE, path) != MCA_OK ||
	    mca_file_write_atomic(path, text, strlen(text), 0644) != MCA_OK)
		mca_log(MCA_LOG_WARN, "cannot write the agent state file", "dir", a->w.out_dir,
		    "detail", mca_err_detail(), (const char *)NULL);
	free(text);
	json_decref(o);
	cli_agent_metrics_write(a);
}

json_t *
cli_agent_state_read(const char *dir)
{
	char path[PATH_MAX];
	struct mca_buf b;
	json_t *v = NULL;

	mca_buf_init(&b, AGENT_STATE_MAX, false);
	if (mca_path_join(path, sizeof(path), dir, AGENT_STATE_FILE) == MCA_OK &&
	    mca_file_read(path, AGENT_STATE_MAX, &b) == MCA_OK)
		v = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
	mca_buf_free(&b);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static int64_t
state_time(const json_t *o, const char *key)
{
	int64_t t = 0;
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL || mca_time_parse(s, &t) != MCA_OK)
		return 0;
	return t;
}

void
cli_agent_state_load(struct agent *a)
{
	json_t *o = cli_agent_state_read(a->w.out_dir);
	const char *err;

	if (o == NULL)
		return;
	a->last_attempt = state_time(o, "last_attempt");
	a->last_success = state_time(o, "last_success");
	if ((err = json_string_value(json_object_get(o, "last_error"))) != NULL)
		snprintf(a->last_error, sizeof(a->last_error), "%s", err);
	a->failures = (unsigned)json_integer_value(json_object_get(o, "failures"));
	a->rotations = (unsigned long)json_integer_value(json_object_get(o, "rotations"));
	json_decref(o);
}
