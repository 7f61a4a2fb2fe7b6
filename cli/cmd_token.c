/*
 * `meshca token create SERVICE`: mints a one-time enrollment token.  In
 * text mode the token alone goes to stdout, so that
 * `TOKEN=$(meshca token create payments)` works; its expiry goes to
 * stderr.  The token is shown once: meshcad keeps only its hash.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/common/timefmt.h"

#define TOKEN_PATH_MAX	512

enum { O_TTL = 1 };

static void
token_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s token create SERVICE [--ttl D] [--json]\n\n"
	    "Mints a one-time enrollment token for SERVICE (POST /v1/services/SERVICE/tokens).\n"
	    "The token alone is printed on stdout, its expiry on stderr.\n\n"
	    "Options:\n"
	    "  --ttl D     how long the token stays valid (default: server's, 1h; at most 7d)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
token_parse(struct cli_ctx *ctx, json_t *body, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ttl", required_argument, NULL, O_TTL },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int64_t secs;
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c != O_TTL) {
			if ((ret = cli_opt_common(ctx, c, optarg, token_usage)) != CLI_CONTINUE)
				return ret;
			continue;
		}
		if (mca_duration_parse(optarg, &secs) != MCA_OK || secs <= 0)
			return cli_usage_error("token create", "--ttl: '%.64s' is not a positive "
			    "duration (e.g. 15m, 1h)", optarg);
		if (json_object_set_new(body, "ttl", json_string(optarg)) != 0)
			return cli_fail("token create", MCA_ERR_NOMEM);
	}
	if (argc - optind != 1)
		return cli_usage_error("token create", "expected one SERVICE");
	if (ca_service_name_check(argv[optind]) != MCA_OK)
		return cli_usage_error("token create", "%s", mca_err_detail());
	return CLI_CONTINUE;
}

static int
token_print(const struct cli_ctx *ctx, const json_t *resp)
{
	const char *token = cli_json_str(resp, "token");
	const char *exp = cli_json_str(resp, "expires_at");

	if (token == NULL)
		return cli_fail("token create", mca_err_set(MCA_ERR_PARSE,
		    "answer has no 'token'"));
	if (ctx->json)
		return cli_print_json(resp) == MCA_OK ? CLI_EXIT_OK : cli_fail("output", MCA_ERR_IO);
	printf("%s\n", token);
	fprintf(stderr, "%s: token for service %s expires at %s (single use)\n", CLI_PROG,
	    cli_json_str(resp, "service") != NULL ? cli_json_str(resp, "service") : "?",
	    exp != NULL ? exp : "?");
	return CLI_EXIT_OK;
}

int
cli_cmd_token_create(struct cli_ctx *ctx, int argc, char **argv)
{
	char path[TOKEN_PATH_MAX];
	json_t *body, *resp = NULL;
	char *name = NULL;
	int ret;

	if ((body = json_object()) == NULL)
		return cli_fail("token create", MCA_ERR_NOMEM);
	if ((ret = token_parse(ctx, body, argc, argv)) != CLI_CONTINUE)
		goto out;
	if ((name = cli_http_escape(argv[optind])) == NULL) {
		ret = cli_fail("token create", MCA_ERR_NOMEM);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/services/%s/tokens", name);
	if ((ret = cli_admin_call(ctx, "token create", "POST", path, body, &resp)) != CLI_CONTINUE)
		goto out;
	ret = token_print(ctx, resp);
out:
	free(name);
	json_decref(resp);
	json_decref(body);
	return ret;
}
