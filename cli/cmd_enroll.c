/*
 * `meshca enroll`: the workload side of enrollment.  The key is made
 * here and never leaves the machine; a one-time token proves which
 * service this is.  Trust in the CA comes from a root certificate file,
 * or is bootstrapped from the root's SHA-256 fingerprint (as
 * `step ca bootstrap` does): the public roots are fetched once without
 * verification, only a root with that fingerprint is accepted, and the
 * enrollment itself then verifies the server against it.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define ENROLL_CN		"meshca-workload"
#define ENROLL_ROOTS_MAX	(1024 * 1024)

struct enroll_opts {
	const char		*fingerprint;
	const char		*token_file;
	const char		*out_dir;
	const char		*ttl;
	enum ca_key_type	 key_type;
	struct ca_sans		 sans;		/* for the CSR */
	json_t			*dns;		/* the same, for the request */
	json_t			*ips;
};

/* The root the server is verified against, and what roots.pem gets. */
struct enroll_trust {
	char			 tmp[PATH_MAX];	/* pinned root as a file, for curl */
	bool			 tmp_made;
	const char		*cainfo;
	struct mca_buf		 roots_pem;
};

/* What the server issued. */
struct enroll_result {
	struct ca_cert		*leaf;
	struct ca_cert		*chain;
	json_t			*resp;
};

enum { O_FINGERPRINT = 1, O_TOKEN_FILE, O_OUT, O_KEY_TYPE, O_DNS, O_IP, O_TTL };

static const char *const out_files[] = { "key.pem", "cert.pem", "chain.pem", "fullchain.pem",
    "roots.pem" };

static void
enroll_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s enroll --url URL (--fingerprint SHA256 | --root-cert FILE)\n"
	    "                 [--token-file FILE] [options]\n\n"
	    "Gets a first certificate for this workload with a one-time token (POST /v1/enroll).\n"
	    "The private key is generated here and never leaves this machine.\n\n"
	    "Options:\n"
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
	    "  --ttl D               lifetime to ask for (default: the service's)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

/* ---- options -------------------------------------------------------- */

static int
opt_san(struct enroll_opts *o, int c, const char *arg)
{
	enum mca_err rc;
	json_t **a = c == O_DNS ? &o->dns : &o->ips;

	rc = c == O_DNS ? ca_sans_add_dns(&o->sans, arg, true) : ca_sans_add_ip(&o->sans, arg, false);
	if (rc != MCA_OK)
		return cli_usage_error("enroll", "--%s: %s", c == O_DNS ? "dns" : "ip",
		    mca_err_detail());
	if (*a == NULL && (*a = json_array()) == NULL)
		return cli_fail("enroll", MCA_ERR_NOMEM);
	if (json_array_append_new(*a, json_string(arg)) != 0)
		return cli_fail("enroll", MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

static int
enroll_opt(struct cli_ctx *ctx, struct enroll_opts *o, int c, const char *arg)
{
	int64_t secs;

	switch (c) {
	case O_FINGERPRINT:	o->fingerprint = arg; break;
	case O_TOKEN_FILE:	o->token_file = arg; break;
	case O_OUT:		o->out_dir = arg; break;
	case O_DNS:
	case O_IP:
		return opt_san(o, c, arg);
	case O_KEY_TYPE:
		if (ca_key_type_parse(arg, &o->key_type) != MCA_OK)
			return cli_usage_error("enroll", "--key-type: unknown key type '%.32s'", arg);
		break;
	case O_TTL:
		if (mca_duration_parse(arg, &secs) != MCA_OK || secs <= 0)
			return cli_usage_error("enroll", "--ttl: '%.64s' is not a positive duration",
			    arg);
		o->ttl = arg;
		break;
	default:
		return cli_opt_common(ctx, c, arg, enroll_usage);
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

static int
enroll_parse(struct cli_ctx *ctx, struct enroll_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "fingerprint", required_argument, NULL, O_FINGERPRINT },
		{ "token-file",	 required_argument, NULL, O_TOKEN_FILE },
		{ "out",	 required_argument, NULL, O_OUT },
		{ "key-type",	 required_argument, NULL, O_KEY_TYPE },
		{ "dns",	 required_argument, NULL, O_DNS },
		{ "ip",		 required_argument, NULL, O_IP },
		{ "ttl",	 required_argument, NULL, O_TTL },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	o->out_dir = ".";
	o->key_type = CA_KEY_ECDSA_P256;
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if ((ret = enroll_opt(ctx, o, c, optarg)) != CLI_CONTINUE)
			return ret;
	if (optind < argc)
		return cli_usage_error("enroll", "unexpected argument '%.64s' (the token is read "
		    "from --token-file or MESHCA_TOKEN, never from the command line)", argv[optind]);
	if (o->fingerprint != NULL && ctx->root_cert_flag != NULL)
		return cli_usage_error("enroll", "--fingerprint and --root-cert exclude each other");
	if (o->fingerprint != NULL && !fingerprint_ok(o->fingerprint))
		return cli_usage_error("enroll", "--fingerprint: expected 64 hexadecimal digits "
		    "(SHA-256), colons allowed");
	return CLI_CONTINUE;
}

/* ---- the token ------------------------------------------------------ */

static bool
token_in_env(void)
{
	const char *env = getenv("MESHCA_TOKEN");

	return env != NULL && *env != '\0';
}

static enum mca_err
token_get(const struct enroll_opts *o, struct mca_buf *tok)
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

static void
trust_clear(struct enroll_trust *t)
{
	if (t->tmp_made)
		(void)unlink(t->tmp);
	mca_buf_free(&t->roots_pem);
}

/* curl reads CA certificates from a file: a private temporary one. */
static enum mca_err
trust_write_tmp(struct enroll_trust *t)
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

/* Finds, among the roots the server offers, the one with fingerprint fp
 * computed here, never the server's own claim. */
static enum mca_err
trust_pick_root(struct enroll_trust *t, const json_t *roots, const char *fp)
{
	char have[CA_FINGERPRINT_HEX_LEN];
	struct ca_cert *c;
	const json_t *v;
	size_t i;
	enum mca_err rc;

	json_array_foreach(roots, i, v) {
		if (!json_is_string(v) || ca_cert_parse((const unsigned char *)json_string_value(v),
		    json_string_length(v), &c) != MCA_OK)
			continue;
		ca_cert_fingerprint(c, have);
		if (ca_fingerprint_equal(fp, have)) {
			rc = mca_buf_set(&t->roots_pem, ca_cert_pem(c)->data, ca_cert_pem(c)->len);
			ca_cert_free(c);
			return rc;
		}
		ca_cert_free(c);
	}
	return mca_err_set(MCA_ERR_FINGERPRINT, "none of the %zu root certificate(s) the server "
	    "offers has SHA-256 fingerprint %.100s; refusing to trust it", json_array_size(roots), fp);
}

static enum mca_err
trust_by_fingerprint(struct enroll_trust *t, const char *url, const char *fp)
{
	struct cli_conn conn;
	json_t *resp = NULL, *roots;
	enum mca_err rc;
	long status;

	memset(&conn, 0, sizeof(conn));
	conn.url = url;
	conn.insecure = true;	/* the answer is checked against fp below */
	if ((rc = cli_http_call(&conn, "GET", "/v1/roots", NULL, &status, &resp)) != MCA_OK)
		return rc;
	if (!json_is_array(roots = json_object_get(resp, "roots")))
		rc = mca_err_set(MCA_ERR_PARSE, "the /v1/roots answer has no 'roots' array");
	else if ((rc = trust_pick_root(t, roots, fp)) == MCA_OK)
		rc = trust_write_tmp(t);
	json_decref(resp);
	return rc;
}

static enum mca_err
trust_by_file(struct enroll_trust *t, const char *path)
{
	struct ca_cert *c = NULL;
	enum mca_err rc;

	if ((rc = mca_file_read(path, ENROLL_ROOTS_MAX, &t->roots_pem)) != MCA_OK)
		return rc;
	if ((rc = ca_cert_parse(t->roots_pem.data, t->roots_pem.len, &c)) != MCA_OK)
		return mca_err_set(rc, "%s: not a certificate: %s", path, mca_err_detail());
	ca_cert_free(c);
	t->cainfo = path;
	return MCA_OK;
}

/* ---- the request ---------------------------------------------------- */

static enum mca_err
request_build(const struct enroll_opts *o, const struct mca_buf *tok, const struct mca_buf *csr,
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
result_parse(struct enroll_result *r)
{
	const char *leaf = cli_json_str(r->resp, "certificate");
	const char *chain = cli_json_str(r->resp, "chain");
	const char *id = cli_json_str(r->resp, "spiffe_id");

	if (leaf == NULL || chain == NULL || id == NULL || cli_json_str(r->resp, "serial") == NULL)
		return mca_err_set(MCA_ERR_PARSE, "the answer lacks certificate, chain, serial "
		    "or spiffe_id");
	if (ca_cert_parse((const unsigned char *)leaf, strlen(leaf), &r->leaf) != MCA_OK ||
	    ca_cert_parse((const unsigned char *)chain, strlen(chain), &r->chain) != MCA_OK)
		return mca_err_set(MCA_ERR_CERT_PARSE, "the issued certificate or its chain "
		    "cannot be parsed: %s", mca_err_detail());
	if (ca_cert_uri(r->leaf) == NULL || strcmp(ca_cert_uri(r->leaf), id) != 0)
		return mca_err_set(MCA_ERR_CERT_PARSE, "the issued certificate's URI SAN is not "
		    "the SPIFFE ID %.200s the server announced", id);
	return MCA_OK;
}

static void
result_clear(struct enroll_result *r)
{
	ca_cert_free(r->leaf);
	ca_cert_free(r->chain);
	json_decref(r->resp);
}

/* ---- the files ------------------------------------------------------ */

static enum mca_err
write_pem(const char *dir, const char *name, const struct mca_buf *a, const struct mca_buf *b)
{
	char path[PATH_MAX];
	struct mca_buf all = { 0 };
	enum mca_err rc;

	if ((rc = mca_path_join(path, sizeof(path), dir, name)) != MCA_OK ||
	    (rc = mca_buf_append(&all, a->data, a->len)) != MCA_OK ||
	    (b != NULL && (rc = mca_buf_append(&all, b->data, b->len)) != MCA_OK))
		goto out;
	rc = mca_file_write_atomic(path, all.data, all.len, 0644);
out:
	mca_buf_free(&all);
	return rc;
}

/* The key first, then its certificates: each file is replaced atomically. */
static enum mca_err
files_write(const char *dir, const struct ca_key *key, const struct enroll_result *r,
    const struct enroll_trust *t)
{
	char path[PATH_MAX];
	enum mca_err rc;

	if (!mca_file_exists(dir) && (rc = mca_mkdir_p(dir, 0700)) != MCA_OK)
		return rc;
	if ((rc = mca_path_join(path, sizeof(path), dir, "key.pem")) != MCA_OK ||
	    (rc = ca_key_save(key, path, NULL)) != MCA_OK ||
	    (rc = write_pem(dir, "cert.pem", ca_cert_pem(r->leaf), NULL)) != MCA_OK ||
	    (rc = write_pem(dir, "chain.pem", ca_cert_pem(r->chain), NULL)) != MCA_OK ||
	    (rc = write_pem(dir, "fullchain.pem", ca_cert_pem(r->leaf), ca_cert_pem(r->chain))) != MCA_OK)
		return rc;
	return write_pem(dir, "roots.pem", &t->roots_pem, NULL);
}

static enum mca_err
print_result(const struct cli_ctx *ctx, const char *dir, const struct enroll_result *r)
{
	static const char *const keys[] = { "spiffe_id", "serial", "not_before", "not_after",
	    "dns_names", "ip_addresses", NULL };
	json_t *out, *files;
	enum mca_err rc = MCA_ERR_NOMEM;
	char path[PATH_MAX];

	if (!ctx->json) {
		printf("Enrolled as %s\n", cli_json_str(r->resp, "spiffe_id"));
		if ((rc = cli_print_fields(r->resp, keys + 1)) != MCA_OK)
			return rc;
		printf("files:\n");
		for (size_t i = 0; i < sizeof(out_files) / sizeof(out_files[0]); i++)
			if (mca_path_join(path, sizeof(path), dir, out_files[i]) == MCA_OK)
				printf("  %s\n", path);
		return MCA_OK;
	}
	if ((out = json_object()) == NULL || (files = json_object()) == NULL ||
	    json_object_set_new(out, "files", files) != 0)
		goto out;
	for (size_t i = 0; keys[i] != NULL; i++)
		if (json_object_get(r->resp, keys[i]) != NULL &&
		    json_object_set(out, keys[i], json_object_get(r->resp, keys[i])) != 0)
			goto out;
	for (size_t i = 0; i < sizeof(out_files) / sizeof(out_files[0]); i++)
		if (mca_path_join(path, sizeof(path), dir, out_files[i]) != MCA_OK ||
		    json_object_set_new(files, out_files[i], json_string(path)) != 0)
			goto out;
	rc = cli_print_json(out);
out:
	json_decref(out);
	return rc;
}

/* ---- the command ---------------------------------------------------- */

static enum mca_err
enroll_trust_setup(const struct cli_ctx *ctx, const struct enroll_opts *o,
    struct enroll_trust *t)
{
	if (o->fingerprint != NULL)
		return trust_by_fingerprint(t, ctx->url, o->fingerprint);
	return trust_by_file(t, ctx->root_cert);
}

static enum mca_err
enroll_run(const struct cli_ctx *ctx, const struct enroll_opts *o, const struct mca_buf *tok)
{
	struct enroll_trust trust;
	struct enroll_result res;
	struct cli_conn conn;
	struct ca_key *key = NULL;
	struct mca_buf csr = { 0 };
	json_t *body = NULL;
	enum mca_err rc;
	long status;

	memset(&trust, 0, sizeof(trust));
	memset(&res, 0, sizeof(res));
	mca_buf_init(&trust.roots_pem, ENROLL_ROOTS_MAX, false);
	if ((rc = ca_key_generate(o->key_type, &key)) != MCA_OK ||
	    (rc = ca_csr_create(key, ENROLL_CN, &o->sans, &csr)) != MCA_OK ||
	    (rc = enroll_trust_setup(ctx, o, &trust)) != MCA_OK ||
	    (rc = request_build(o, tok, &csr, &body)) != MCA_OK)
		goto out;
	memset(&conn, 0, sizeof(conn));
	conn.url = ctx->url;
	conn.cainfo = trust.cainfo;
	if ((rc = cli_http_call(&conn, "POST", "/v1/enroll", body, &status, &res.resp)) != MCA_OK ||
	    (rc = result_parse(&res)) != MCA_OK ||
	    (rc = files_write(o->out_dir, key, &res, &trust)) != MCA_OK)
		goto out;
	rc = print_result(ctx, o->out_dir, &res);
out:
	json_decref(body);
	result_clear(&res);
	trust_clear(&trust);
	mca_buf_free(&csr);
	ca_key_free(key);
	return rc;
}

int
cli_cmd_enroll(struct cli_ctx *ctx, int argc, char **argv)
{
	struct enroll_opts o;
	struct mca_buf tok = { 0 };
	enum mca_err rc;
	int ret;

	memset(&o, 0, sizeof(o));
	if ((ret = enroll_parse(ctx, &o, argc, argv)) != CLI_CONTINUE)
		goto out;
	if ((rc = cli_ctx_resolve(ctx)) != MCA_OK) {
		ret = cli_fail("configuration", rc);
		goto out;
	}
	if (ctx->url == NULL || (o.fingerprint == NULL && ctx->root_cert == NULL)) {
		ret = cli_usage_error("enroll", "enroll needs --url and one of --fingerprint or "
		    "--root-cert");
		goto out;
	}
	if (o.token_file == NULL && !token_in_env()) {
		ret = cli_usage_error("enroll", "no enrollment token: use --token-file FILE (\"-\" "
		    "for stdin) or MESHCA_TOKEN");
		goto out;
	}
	if ((rc = token_get(&o, &tok)) != MCA_OK ||
	    (rc = enroll_run(ctx, &o, &tok)) != MCA_OK) {
		ret = cli_fail("enroll", rc);
		goto out;
	}
	ret = CLI_EXIT_OK;
out:
	mca_buf_free(&tok);
	ca_sans_clear(&o.sans);
	json_decref(o.dns);
	json_decref(o.ips);
	return ret;
}
