/*
 * `meshca enroll`: the workload side of enrollment.  The key is made
 * here and never leaves the machine; a one-time token proves which
 * service this is.  Trust, the token and the request are shared with
 * `meshca agent` (workload.c); the files are written as a credential
 * directory (creds.c), the same the agent rotates.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"

static void
enroll_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s enroll --url URL (--fingerprint SHA256 | --root-cert FILE)\n"
	    "                 [--token-file FILE] [options]\n\n"
	    "Gets a first certificate for this workload with a one-time token (POST /v1/enroll).\n"
	    "The private key is generated here and never leaves this machine.\n"
	    "`meshca agent` keeps it renewed afterwards.\n\n"
	    "Options:\n%s\n%s",
	    CLI_PROG, cli_workload_usage, cli_global_usage);
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
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if ((ret = cli_workload_opt(ctx, o, c, optarg, "enroll", enroll_usage)) != CLI_CONTINUE)
			return ret;
	return cli_workload_check(ctx, o, "enroll", argc, argv);
}

static enum mca_err
print_result(const struct cli_ctx *ctx, const char *dir, const struct cli_issued *r)
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
		for (size_t i = 0; i < CLI_CREDS_NFILES; i++)
			if (mca_path_join(path, sizeof(path), dir, cli_creds_files[i]) == MCA_OK)
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
	for (size_t i = 0; i < CLI_CREDS_NFILES; i++)
		if (mca_path_join(path, sizeof(path), dir, cli_creds_files[i]) != MCA_OK ||
		    json_object_set_new(files, cli_creds_files[i], json_string(path)) != 0)
			goto out;
	rc = cli_print_json(out);
out:
	json_decref(out);
	return rc;
}

static enum mca_err
enroll_run(const struct cli_ctx *ctx, const struct cli_workload_opts *o, const struct mca_buf *tok)
{
	struct cli_issued res = { 0 };
	enum mca_err rc;

	if ((rc = cli_enroll(ctx->url, ctx->root_cert, o, tok, &res)) == MCA_OK)
		rc = print_result(ctx, o->out_dir, &res);
	cli_issued_clear(&res);
	return rc;
}

int
cli_cmd_enroll(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_workload_opts o;
	struct mca_buf tok = { 0 };
	enum mca_err rc;
	int ret;

	cli_workload_opts_init(&o);
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
	if (!cli_token_given(&o)) {
		ret = cli_usage_error("enroll", "no enrollment token: use --token-file FILE (\"-\" "
		    "for stdin) or MESHCA_TOKEN");
		goto out;
	}
	if ((rc = cli_token_get(&o, &tok)) != MCA_OK ||
	    (rc = enroll_run(ctx, &o, &tok)) != MCA_OK) {
		ret = cli_fail("enroll", rc);
		goto out;
	}
	ret = CLI_EXIT_OK;
out:
	mca_buf_free(&tok);
	cli_workload_opts_clear(&o);
	return ret;
}
