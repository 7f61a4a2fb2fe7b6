/*
 * `meshca admin add|list|remove|token|enroll`: the CA's operators.
 *
 * add, list, remove and token talk to meshcad with an admin credential
 * (add, remove and token need role admin, list role viewer).  enroll is
 * the new operator's side: like `meshca enroll`, a key made here and a
 * one-time token, giving an admin client certificate in a credential
 * directory (creds.c) that `meshca agent` can keep renewed.
 */
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define ADMIN_PATH_MAX		512
#define ADMIN_NAME_MAX		63
#define ADMIN_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

static const char *const admin_keys[] = {
	"name", "role", "spiffe_id", "status", "created_at", "removed_at", NULL
};

enum { O_ROLE = 1, O_TTL, O_REASON };

static bool
admin_name_ok(const char *n)
{
	size_t len = strlen(n);

	return len > 0 && len <= ADMIN_NAME_MAX && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 &&
	    strspn(n, ADMIN_CHARS) == len;
}

static int
admin_name_arg(const char *cmd, int argc, char **argv)
{
	if (argc - optind != 1)
		return cli_usage_error(cmd, "expected one admin NAME");
	if (!admin_name_ok(argv[optind]))
		return cli_usage_error(cmd, "'%.80s' is not an admin name (1 to %d of A-Z a-z 0-9 . _ -)",
		    argv[optind], ADMIN_NAME_MAX);
	return CLI_CONTINUE;
}

/* "/v1/admins/NAME" + suffix. */
static enum mca_err
admin_path(char *out, size_t n, const char *name, const char *suffix)
{
	char *esc = cli_http_escape(name);
	int w;

	if (esc == NULL)
		return MCA_ERR_NOMEM;
	w = snprintf(out, n, "/v1/admins/%s%s", esc, suffix);
	free(esc);
	return w < 0 || (size_t)w >= n ? MCA_ERR_TOOBIG : MCA_OK;
}

/* POST /v1/admins/NAME<suffix> with body: cli_admin_call's result. */
static int
admin_path_call(struct cli_ctx *ctx, const char *cmd, const char *name, const char *suffix,
    const json_t *body, json_t **resp)
{
	char path[ADMIN_PATH_MAX];
	enum mca_err rc;

	*resp = NULL;
	if ((rc = admin_path(path, sizeof(path), name, suffix)) != MCA_OK)
		return cli_fail(cmd, rc);
	return cli_admin_call(ctx, cmd, "POST", path, body, resp);
}

/* The token alone on stdout (for `TOKEN=$(meshca admin add ...)`), the
 * rest on stderr; or everything as JSON. */
static int
token_print(const struct cli_ctx *ctx, const char *cmd, const json_t *resp)
{
	const char *token = cli_json_str(resp, "token");
	const char *exp = cli_json_str(resp, "expires_at");

	if (token == NULL)
		return cli_fail(cmd, mca_err_set(MCA_ERR_PARSE, "answer has no 'token'"));
	if (ctx->json)
		return cli_print_json(resp) == MCA_OK ? CLI_EXIT_OK : cli_fail("output", MCA_ERR_IO);
	printf("%s\n", token);
	fprintf(stderr, "%s: enrollment token for admin %s (role %s), single use, expires at %s\n"
	    "%s: on the new operator's machine:\n"
	    "  %s admin enroll --url URL --fingerprint ROOT_SHA256 --token-file FILE --out DIR\n",
	    CLI_PROG, cli_json_str(resp, "name") ? cli_json_str(resp, "name") : "?",
	    cli_json_str(resp, "role") ? cli_json_str(resp, "role") : "?", exp ? exp : "?",
	    CLI_PROG, CLI_PROG);
	return CLI_EXIT_OK;
}

static int
add_ttl(json_t *body, const char *cmd, const char *arg)
{
	int64_t secs;
	int ret;

	if ((ret = cli_opt_duration(cmd, "ttl", arg, &secs)) != CLI_CONTINUE)
		return ret;
	if (json_object_set_new(body, "ttl", json_string(arg)) != 0)
		return cli_fail(cmd, MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

/* ---- admin add -------------------------------------------------------- */

static void
add_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s admin add NAME [--role admin|viewer] [--ttl D] [--json]\n\n"
	    "Adds an operator (POST /v1/admins; needs role admin) and mints a one-time\n"
	    "enrollment token for it.  The token alone is printed on stdout; the new\n"
	    "operator runs `%s admin enroll` with it to get an admin certificate\n"
	    "(spiffe://<trust-domain>/meshca/admin/NAME).\n\n"
	    "Options:\n"
	    "  --role R    admin (everything) or viewer (read-only: lists, status,\n"
	    "              audit); default viewer\n"
	    "  --ttl D     how long the token stays valid (default: server's, 1h; at most 7d)\n\n"
	    "Adding a removed admin's name again reinstates it with the new role.\n\n%s",
	    CLI_PROG, CLI_PROG, cli_global_usage);
}

static int
add_parse(struct cli_ctx *ctx, json_t *body, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "role", required_argument, NULL, O_ROLE },
		{ "ttl",  required_argument, NULL, O_TTL },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_ROLE) {
			if (strcmp(optarg, "admin") != 0 && strcmp(optarg, "viewer") != 0)
				return cli_usage_error("admin add", "--role: '%.32s' is not admin or viewer",
				    optarg);
			if (json_object_set_new(body, "role", json_string(optarg)) != 0)
				return cli_fail("admin add", MCA_ERR_NOMEM);
		} else if (c == O_TTL) {
			if ((ret = add_ttl(body, "admin add", optarg)) != CLI_CONTINUE)
				return ret;
		} else if ((ret = cli_opt_common(ctx, c, optarg, add_usage)) != CLI_CONTINUE) {
			return ret;
		}
	}
	if ((ret = admin_name_arg("admin add", argc, argv)) != CLI_CONTINUE)
		return ret;
	if (json_object_set_new(body, "name", json_string(argv[optind])) != 0)
		return cli_fail("admin add", MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

int
cli_cmd_admin_add(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *body, *resp = NULL;
	int ret;

	if ((body = json_object()) == NULL)
		return cli_fail("admin add", MCA_ERR_NOMEM);
	if ((ret = add_parse(ctx, body, argc, argv)) != CLI_CONTINUE ||
	    (ret = cli_admin_call(ctx, "admin add", "POST", "/v1/admins", body, &resp)) !=
	    CLI_CONTINUE)
		goto out;
	ret = token_print(ctx, "admin add", resp);
out:
	json_decref(resp);
	json_decref(body);
	return ret;
}

/* ---- admin token ------------------------------------------------------ */

static void
token_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s admin token NAME [--ttl D] [--json]\n\n"
	    "Mints a new one-time enrollment token for an existing admin\n"
	    "(POST /v1/admins/NAME/tokens; needs role admin): for a lost token, or an\n"
	    "admin certificate that expired.  The token alone is printed on stdout.\n\n"
	    "Options:\n"
	    "  --ttl D     how long the token stays valid (default: server's, 1h; at most 7d)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

int
cli_cmd_admin_token(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ttl", required_argument, NULL, O_TTL },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	json_t *body, *resp = NULL;
	int c, ret = CLI_CONTINUE;

	if ((body = json_object()) == NULL)
		return cli_fail("admin token", MCA_ERR_NOMEM);
	cli_getopt_reset();
	while (ret == CLI_CONTINUE && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		ret = c == O_TTL ? add_ttl(body, "admin token", optarg) :
		    cli_opt_common(ctx, c, optarg, token_usage);
	if (ret != CLI_CONTINUE || (ret = admin_name_arg("admin token", argc, argv)) != CLI_CONTINUE ||
	    (ret = admin_path_call(ctx, "admin token", argv[optind], "/tokens", body, &resp)) !=
	    CLI_CONTINUE)
		goto out;
	ret = token_print(ctx, "admin token", resp);
out:
	json_decref(resp);
	json_decref(body);
	return ret;
}

/* ---- admin list ------------------------------------------------------- */

static void
list_usage(FILE *fp)
{
	fprintf(fp, "usage: %s admin list [--json]\n\n"
	    "Lists the operators, removed ones included (GET /v1/admins; role viewer\n"
	    "is enough).\n\n%s", CLI_PROG, cli_global_usage);
}

int
cli_cmd_admin_list(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	int ret;

	if ((ret = cli_parse_plain(ctx, argc, argv, 0, list_usage, "admin list")) != CLI_CONTINUE ||
	    (ret = cli_admin_call(ctx, "admin list", "GET", "/v1/admins", NULL, &resp)) !=
	    CLI_CONTINUE)
		return ret;
	ret = cli_print_list(ctx, resp, "admin list", "admins", 5, (const char *const[]){
	    "NAME", "ROLE", "STATUS", "CREATED", "REMOVED" }, (const char *const[]){
	    "name", "role", "status", "created_at", "removed_at" });
	json_decref(resp);
	return ret;
}

/* ---- admin remove ----------------------------------------------------- */

static void
remove_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s admin remove NAME [--reason R] [--json]\n\n"
	    "Removes an operator (POST /v1/admins/NAME/remove; needs role admin): in one\n"
	    "transaction it is marked removed, every active certificate it holds is\n"
	    "revoked and its unused enrollment tokens end.  From then on its\n"
	    "certificates authenticate nowhere (certificate_revoked).  The last admin\n"
	    "with role admin cannot be removed (409 conflict): add another first.\n\n"
	    "Options:\n"
	    "  --reason R   RFC 5280 reason of the revocations (default\n"
	    "               cessationOfOperation; keyCompromise if its key leaked)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

int
cli_cmd_admin_remove(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "reason", required_argument, NULL, O_REASON },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	json_t *body, *resp = NULL;
	enum mca_err rc;
	int c, code, ret = CLI_CONTINUE;

	if ((body = json_object()) == NULL)
		return cli_fail("admin remove", MCA_ERR_NOMEM);
	cli_getopt_reset();
	while (ret == CLI_CONTINUE && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c != O_REASON)
			ret = cli_opt_common(ctx, c, optarg, remove_usage);
		else if (ca_crl_reason_parse(optarg, &code) != MCA_OK ||
		    json_object_set_new(body, "reason", json_string(optarg)) != 0)
			ret = cli_usage_error("admin remove", "--reason: '%.40s' is not an RFC 5280 "
			    "reason (cessationOfOperation, keyCompromise, ...)", optarg);
	}
	if (ret != CLI_CONTINUE || (ret = admin_name_arg("admin remove", argc, argv)) != CLI_CONTINUE ||
	    (ret = admin_path_call(ctx, "admin remove", argv[optind], "/remove", body, &resp)) !=
	    CLI_CONTINUE)
		goto out;
	if (ctx->json)
		rc = cli_print_json(resp);
	else {
		printf("removed admin %s; revoked %lld certificate(s)\n", argv[optind],
		    (long long)json_integer_value(json_object_get(resp, "revoked")));
		rc = cli_print_fields(resp, admin_keys);
	}
	ret = rc == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
out:
	json_decref(resp);
	json_decref(body);
	return ret;
}

/* ---- admin enroll ----------------------------------------------------- */

static void
enroll_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s admin enroll --url URL (--fingerprint SHA256 | --root-cert FILE)\n"
	    "                       --token-file FILE --out DIR [--key-type T] [--ttl D]\n\n"
	    "Gets an admin client certificate with the one-time token of `%s admin add`\n"
	    "(POST /v1/enroll).  The key is made here, written 0600, and never leaves this\n"
	    "machine.  DIR gets key.pem, cert.pem, chain.pem, fullchain.pem and roots.pem,\n"
	    "the layout `%s agent --out DIR` renews (admin certificates renew like\n"
	    "workload ones, up to the server's admin_max_ttl).\n\n"
	    "Options:\n%s\n"
	    "(--dns and --ip do not apply: an admin certificate names only its SPIFFE ID.)\n\n%s",
	    CLI_PROG, CLI_PROG, CLI_PROG, cli_workload_usage, cli_global_usage);
}

static int
enroll_parse(struct cli_ctx *ctx, struct cli_workload_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		CLI_WORKLOAD_LONGOPTS,
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == CLI_WOPT_DNS || c == CLI_WOPT_IP)
			return cli_usage_error("admin enroll", "--%s: an admin certificate carries no "
			    "DNS names or IP addresses", c == CLI_WOPT_DNS ? "dns" : "ip");
		if ((ret = cli_workload_opt(ctx, o, c, optarg, "admin enroll", enroll_usage)) !=
		    CLI_CONTINUE)
			return ret;
	}
	return cli_workload_check(ctx, o, "admin enroll", argc, argv);
}

/* Where the files are, and how to use them as the admin credential. */
static enum mca_err
enroll_print(const struct cli_ctx *ctx, const char *dir, const struct cli_issued *res)
{
	char abs[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], roots[PATH_MAX];
	json_t *o;
	enum mca_err rc;

	if (realpath(dir, abs) == NULL ||
	    mca_path_join(cert, sizeof(cert), abs, "fullchain.pem") != MCA_OK ||
	    mca_path_join(key, sizeof(key), abs, "key.pem") != MCA_OK ||
	    mca_path_join(roots, sizeof(roots), abs, "roots.pem") != MCA_OK)
		return mca_err_set(MCA_ERR_IO, "%s: cannot resolve the output directory", dir);
	if (ctx->json) {
		o = json_pack("{s:O?, s:O?, s:O?, s:s, s:s, s:s, s:s}",
		    "spiffe_id", json_object_get(res->resp, "spiffe_id"),
		    "serial", json_object_get(res->resp, "serial"),
		    "not_after", json_object_get(res->resp, "not_after"),
		    "url", ctx->url, "admin_cert", cert, "admin_key", key, "root_cert", roots);
		rc = o != NULL ? cli_print_json(o) : MCA_ERR_NOMEM;
		json_decref(o);
		return rc;
	}
	printf("Enrolled as %s\n  serial     %s\n  not after  %s\n  files      %s/\n\n"
	    "Use this credential for the admin commands, with environment variables:\n"
	    "  export MESHCA_URL=%s\n  export MESHCA_ROOT_CERT=%s\n"
	    "  export MESHCA_ADMIN_CERT=%s\n  export MESHCA_ADMIN_KEY=%s\n"
	    "or in a meshca.conf named by --config or MESHCA_CONFIG:\n"
	    "  url = %s\n  root_cert = %s\n  admin_cert = %s\n  admin_key = %s\n"
	    "Keep it renewed with: %s agent --url %s --root-cert %s --out %s\n",
	    cli_json_str(res->resp, "spiffe_id"), cli_json_str(res->resp, "serial"),
	    cli_json_str(res->resp, "not_after"), abs, ctx->url, roots, cert, key,
	    ctx->url, roots, cert, key, CLI_PROG, ctx->url, roots, abs);
	return MCA_OK;
}

int
cli_cmd_admin_enroll(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_workload_opts o;
	struct cli_issued res = { 0 };
	struct mca_buf tok = { 0 };
	const char *id;
	enum mca_err rc;
	int ret;

	cli_workload_opts_init(&o);
	if ((ret = enroll_parse(ctx, &o, argc, argv)) != CLI_CONTINUE)
		goto out;
	if ((rc = cli_ctx_resolve(ctx)) != MCA_OK) {
		ret = cli_fail("configuration", rc);
		goto out;
	}
	if (ctx->url == NULL || (o.fingerprint == NULL && ctx->root_cert == NULL) || !cli_token_given(&o)) {
		ret = cli_usage_error("admin enroll", "admin enroll needs --url, one of --fingerprint "
		    "or --root-cert, and --token-file (or MESHCA_TOKEN)");
		goto out;
	}
	if ((rc = cli_token_get(&o, &tok)) != MCA_OK ||
	    (rc = cli_enroll(ctx->url, ctx->root_cert, &o, &tok, &res)) != MCA_OK) {
		ret = cli_fail("admin enroll", rc);
		goto out;
	}
	/* The token decides what is issued: a service's token made a workload. */
	if ((id = cli_json_str(res.resp, "spiffe_id")) == NULL || strstr(id, "/meshca/admin/") == NULL)
		cli_warn("the token was a service's: %s is a workload certificate, not an admin one",
		    id != NULL ? id : "?");
	ret = (rc = enroll_print(ctx, o.out_dir, &res)) == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
out:
	cli_issued_clear(&res);
	mca_buf_free(&tok);
	cli_workload_opts_clear(&o);
	return ret;
}
