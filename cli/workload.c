/*
 * The workload side, shared by `meshca enroll` and `meshca agent`: the
 * options both take, the one-time token, trust in the CA, the enrollment
 * request and the checks on what the CA answers.
 *
 * Trust in the CA comes from a root certificate file, or is bootstrapped
 * from the root's SHA-256 fingerprint (as `step ca bootstrap` does): the
 * public roots are fetched once without verification, only a root with
 * that fingerprint is accepted, and everything after is verified against
 * it.  Later, the agent refreshes the bundle over connections verified
 * against the bundle it already holds.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define WORKLOAD_ROOTS_MAX	(1024 * 1024)

const char cli_workload_usage[] =
    "  --url URL             meshcad base URL (https://)\n"
    "  --fingerprint SHA256  bootstrap trust: accept only the root with this\n"
    "                        SHA-256 fingerprint (hex, colons allowed)\n"
    "  --root-cert FILE      trust this root certificate instead\n"
    "  --token-file FILE     file whose first line is the token; \"-\" is stdin\n"
    "                        (else env MESHCA_TOKEN; never on the command line)\n"
    "  --out DIR             where to write key.pem, cert.pem, chain.pem,\n"
    "                        fullchain.pem, roots.pem (default \".\"; made 0700)\n"
    "  --key-type T          ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048...\n"
    "  --dns NAME            DNS name to ask for (repeatable)\n"
    "  --ip ADDR             IP address to ask for (repeatable)\n"
    "  --ttl D               lifetime to ask for (default: the service's)\n";

/* ---- options -------------------------------------------------------- */

void
cli_workload_opts_init(struct cli_workload_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->out_dir = ".";
	o->key_type = -1;
}

void
cli_workload_opts_clear(struct cli_workload_opts *o)
{
	ca_sans_clear(&o->sans);
	json_decref(o->dns);
	json_decref(o->ips);
	o->dns = o->ips = NULL;
}

static int
opt_san(struct cli_workload_opts *o, int c, const char *arg, const char *cmd)
{
	enum mca_err rc;
	json_t **a = c == CLI_WOPT_DNS ? &o->dns : &o->ips;

	rc = c == CLI_WOPT_DNS ? ca_sans_add_dns(&o->sans, arg, true) :
	    ca_sans_add_ip(&o->sans, arg, false);
	if (rc != MCA_OK)
		return cli_usage_error(cmd, "--%s: %s", c == CLI_WOPT_DNS ? "dns" : "ip",
		    mca_err_detail());
	if (*a == NULL && (*a = json_array()) == NULL)
		return cli_fail(cmd, MCA_ERR_NOMEM);
	if (json_array_append_new(*a, json_string(arg)) != 0)
		return cli_fail(cmd, MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

int
cli_workload_opt(struct cli_ctx *ctx, struct cli_workload_opts *o, int c, const char *arg,
    const char *cmd, void (*usage)(FILE *))
{
	enum ca_key_type t;
	int64_t secs;

	switch (c) {
	case CLI_WOPT_FINGERPRINT:	o->fingerprint = arg; break;
	case CLI_WOPT_TOKEN_FILE:	o->token_file = arg; break;
	case CLI_WOPT_OUT:		o->out_dir = arg; break;
	case CLI_WOPT_DNS:
	case CLI_WOPT_IP:
		return opt_san(o, c, arg, cmd);
	case CLI_WOPT_KEY_TYPE:
		if (ca_key_type_parse(arg, &t) != MCA_OK)
			return cli_usage_error(cmd, "--key-type: unknown key type '%.32s'", arg);
		o->key_type = (int)t;
		break;
	case CLI_WOPT_TTL:
		o->ttl = arg;
		return cli_opt_duration(cmd, "ttl", arg, &secs);
	default:
		return cli_opt_common(ctx, c, arg, usage);
	}
	return CLI_CONTINUE;
}

/* 64 hex digits, optionally separated by colons. */
static bool
fingerprint_ok(const char *fp)
{
	size_t hex = 0;

	for (; *fp != '\0'; fp++) {
		if (isxdigit((unsigned char)*fp))
			hex++;
		else if (*fp != ':')
			return false;
	}
	return hex == 64;
}

int
cli_workload_check(const struct cli_ctx *ctx, const struct cli_workload_opts *o, const char *cmd,
    int argc, char **argv)
{
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%.64s' (the token is read "
		    "from --token-file or MESHCA_TOKEN, never from the command line)", argv[optind]);
	if (o->fingerprint != NULL && ctx->root_cert_flag != NULL)
		return cli_usage_error(cmd, "--fingerprint and --root-cert exclude each other");
	if (o->fingerprint != NULL && !fingerprint_ok(o->fingerprint))
		return cli_usage_error(cmd, "--fingerprint: expected 64 hexadecimal digits "
		    "(SHA-256), colons allowed");
	return CLI_CONTINUE;
}

/* ---- the token ------------------------------------------------------ */

bool
cli_token_given(const struct cli_workload_opts *o)
{
	const char *env = getenv("MESHCA_TOKEN");

	return o->token_file != NULL || (env != NULL && *env != '\0');
}

enum mca_err
cli_token_get(const struct cli_workload_opts *o, struct mca_buf *tok)
{
	const char *env;
	enum mca_err rc;

	mca_buf_init(tok, CLI_SECRET_MAX + 2, true);
	if (o->token_file != NULL) {
		if ((rc = cli_secret_read_file(o->token_file, "token file", tok)) != MCA_OK)
			return rc;
	} else if ((env = getenv("MESHCA_TOKEN")) != NULL && *env != '\0') {
		if (strlen(env) > CLI_SECRET_MAX || mca_buf_set(tok, env, strlen(env)) != MCA_OK)
			return mca_err_set(MCA_ERR_TOOBIG, "MESHCA_TOKEN: longer than %d bytes",
			    CLI_SECRET_MAX);
	} else {
		return mca_err_set(MCA_ERR_INVALID, "no enrollment token: use --token-file FILE "
		    "(\"-\" for stdin) or MESHCA_TOKEN");
	}
	for (size_t i = 0; i < tok->len; i++)
		if (tok->data[i] <= 0x20 || tok->data[i] >= 0x7f)
			return mca_err_set(MCA_ERR_INVALID, "the token has characters a token "
			    "never has (blanks, control or non-ASCII)");
	return MCA_OK;
}

/* ---- trust ---------------------------------------------------------- */

void
cli_trust_init(struct cli_trust *t)
{
	memset(t, 0, sizeof(*t));
	mca_buf_init(&t->roots_pem, WORKLOAD_ROOTS_MAX, false);
}

void
cli_trust_clear(struct cli_trust *t)
{
	if (t->tmp_made)
		(void)unlink(t->tmp);
	t->tmp_made = false;
	mca_buf_free(&t->roots_pem);
}

/* curl reads CA certificates from a file: a private temporary one. */
static enum mca_err
trust_write_tmp(struct cli_trust *t)
{
	const char *dir = getenv("TMPDIR");
	ssize_t n;
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	if (snprintf(t->tmp, sizeof(t->tmp), "%s/meshca-root-XXXXXX", dir) >= (int)sizeof(t->tmp))
		return mca_err_set(MCA_ERR_TOOBIG, "TMPDIR too long");
	if ((fd = mkostemp(t->tmp, O_CLOEXEC)) < 0)
		return mca_err_set(MCA_ERR_IO, "%s: %s", t->tmp, strerror(errno));
	t->tmp_made = true;
	n = write(fd, t->roots_pem.data, t->roots_pem.len);
	if (close(fd) != 0 || n != (ssize_t)t->roots_pem.len)
		return mca_err_set(MCA_ERR_IO, "%s: cannot write", t->tmp);
	t->cainfo = t->tmp;
	return MCA_OK;
}

static enum mca_err
trust_by_fingerprint(struct cli_trust *t, const char *url, const char *fp)
{
	struct cli_conn conn = { .url = url, .insecure = true };	/* checked against fp */
	json_t *resp = NULL;
	enum mca_err rc;
	long status;

	if ((rc = cli_http_call(&conn, "GET", "/v1/roots", NULL, &status, &resp)) == MCA_OK &&
	    (rc = cli_roots_pick(resp, fp, &t->roots_pem)) == MCA_OK)
		rc = trust_write_tmp(t);
	json_decref(resp);
	return rc;
}

static enum mca_err
trust_by_file(struct cli_trust *t, const char *path)
{
	struct ca_cert *c = NULL;
	enum mca_err rc;

	if ((rc = mca_file_read(path, WORKLOAD_ROOTS_MAX, &t->roots_pem)) != MCA_OK)
		return rc;
	if ((rc = ca_cert_parse(t->roots_pem.data, t->roots_pem.len, &c)) != MCA_OK)
		return mca_err_set(rc, "%s: not a certificate: %s", path, mca_err_detail());
	ca_cert_free(c);
	if (snprintf(t->tmp, sizeof(t->tmp), "%s", path) >= (int)sizeof(t->tmp))
		return mca_err_set(MCA_ERR_TOOBIG, "%s: path too long", path);
	t->cainfo = t->tmp;	/* a copy: path may not outlive the call */
	return MCA_OK;
}

enum mca_err
cli_trust_setup(struct cli_trust *t, const char *url, const char *fp, const char *root_cert)
{
	if (fp != NULL)
		return trust_by_fingerprint(t, url, fp);
	if (root_cert == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no trust anchor: use --fingerprint or --root-cert");
	return trust_by_file(t, root_cert);
}

enum mca_err
cli_trust_refresh(const char *url, const char *cainfo, struct mca_buf *out)
{
	struct cli_conn conn = { .url = url, .cainfo = cainfo };
	json_t *resp = NULL;
	enum mca_err rc;
	long status;

	mca_buf_reset(out);
	if ((rc = cli_http_call(&conn, "GET", "/v1/roots", NULL, &status, &resp)) == MCA_OK)
		rc = cli_roots_all(resp, out);
	json_decref(resp);
	return rc;
}

/* ---- enrollment ----------------------------------------------------- */

static enum mca_err
enroll_body(const struct cli_workload_opts *o, const struct mca_buf *tok, const struct mca_buf *csr,
    json_t **out)
{
	json_t *body;

	body = json_pack("{s:s%, s:s%}", "token", (const char *)tok->data, tok->len,
	    "csr", (const char *)csr->data, csr->len);
	if (body == NULL ||
	    (o->ttl != NULL && json_object_set_new(body, "ttl", json_string(o->ttl)) != 0) ||
	    (o->dns != NULL && json_object_set(body, "dns_names", o->dns) != 0) ||
	    (o->ips != NULL && json_object_set(body, "ip_addresses", o->ips) != 0)) {
		json_decref(body);
		return MCA_ERR_NOMEM;
	}
	*out = body;
	return MCA_OK;
}

static enum mca_err
enroll_request(const char *url, const struct cli_workload_opts *o, const struct mca_buf *tok,
    const struct ca_key *key, const struct cli_trust *t, struct cli_issued *res)
{
	struct cli_conn conn = { .url = url, .cainfo = t->cainfo };
	struct mca_buf csr = { 0 };
	json_t *body = NULL;
	enum mca_err rc;
	long status;

	if ((rc = ca_csr_create(key, CLI_WORKLOAD_CN, &o->sans, &csr)) != MCA_OK ||
	    (rc = enroll_body(o, tok, &csr, &body)) != MCA_OK ||
	    (rc = cli_http_call(&conn, "POST", "/v1/enroll", body, &status, &res->resp)) != MCA_OK)
		goto out;
	rc = cli_issued_parse(res, &t->roots_pem);
out:
	json_decref(body);
	mca_buf_free(&csr);
	return rc;
}

enum mca_err
cli_enroll(const char *url, const char *root_cert, const struct cli_workload_opts *o,
    const struct mca_buf *tok, struct cli_issued *res)
{
	struct cli_trust trust;
	struct ca_key *key = NULL;
	enum ca_key_type type = o->key_type >= 0 ? (enum ca_key_type)o->key_type : CA_KEY_ECDSA_P256;
	enum mca_err rc;

	cli_trust_init(&trust);
	if ((rc = ca_key_generate(type, &key)) != MCA_OK ||
	    (rc = cli_trust_setup(&trust, url, o->fingerprint, root_cert)) != MCA_OK ||
	    (rc = enroll_request(url, o, tok, key, &trust, res)) != MCA_OK)
		goto out;
	rc = cli_creds_write(o->out_dir, key, res->leaf, res->chain, &trust.roots_pem);
out:
	cli_trust_clear(&trust);
	ca_key_free(key);
	return rc;
}
