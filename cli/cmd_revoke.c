/*
 * `meshca revoke SERIAL [--reason R]`: revokes one certificate
 * (POST /v1/revoke).  With the admin credential any certificate; with a
 * workload's own credential (--admin-cert/--admin-key naming it), only
 * that certificate.
 */
#include "cli/cli.h"

#include <string.h>

#include "ca/ca.h"

#define REVOKE_REASONS \
	"unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,\n" \
	"                cessationOfOperation, privilegeWithdrawn, aACompromise"

enum { O_REASON = 1 };

static void
revoke_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s revoke SERIAL [--reason R] [--json]\n\n"
	    "Revokes a certificate (POST /v1/revoke).  Revocation is permanent and\n"
	    "idempotent: revoking again keeps the first time and reason.  It takes\n"
	    "effect at once for meshcad and its OCSP responder, and in the CRL within\n"
	    "a second.\n\n"
	    "Options:\n"
	    "  --reason R    RFC 5280 reason (default unspecified), one of\n"
	    "                " REVOKE_REASONS "\n\n"
	    "The admin credential may revoke any certificate; a workload credential\n"
	    "given as --admin-cert/--admin-key only itself.\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
revoke_parse(struct cli_ctx *ctx, const char **reason, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "reason", required_argument, NULL, O_REASON },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	size_t len;
	int c, ret, code;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_REASON)
			*reason = optarg;
		else if ((ret = cli_opt_common(ctx, c, optarg, revoke_usage)) != CLI_CONTINUE)
			return ret;
	}
	if (argc - optind != 1)
		return cli_usage_error("revoke", "expected one SERIAL");
	len = strlen(argv[optind]);
	if (len == 0 || len >= CA_SERIAL_HEX_MAX || strspn(argv[optind], "0123456789abcdefABCDEF") != len)
		return cli_usage_error("revoke", "'%.64s' is not a hexadecimal serial", argv[optind]);
	if (*reason != NULL && ca_crl_reason_parse(*reason, &code) != MCA_OK)
		return cli_usage_error("revoke", "--reason: '%.40s' is not an RFC 5280 reason name "
		    "(keyCompromise, superseded, ...: see --help)", *reason);
	return CLI_CONTINUE;
}

static int
revoke_print(const struct cli_ctx *ctx, const json_t *resp)
{
	static const char *const keys[] = {
		"serial", "service", "spiffe_id", "status", "revoked_at", "revocation_reason", NULL
	};
	enum mca_err rc;

	if (ctx->json)
		rc = cli_print_json(resp);
	else {
		if (json_is_true(json_object_get(resp, "already_revoked")))
			printf("already revoked: the first revocation stands\n");
		rc = cli_print_fields(resp, keys);
	}
	return rc == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
}

int
cli_cmd_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *reason = NULL;
	json_t *body = NULL, *resp = NULL;
	int ret;

	if ((ret = revoke_parse(ctx, &reason, argc, argv)) != CLI_CONTINUE)
		return ret;
	if ((body = json_pack("{s:s}", "serial", argv[optind])) == NULL ||
	    (reason != NULL && json_object_set_new(body, "reason", json_string(reason)) != 0)) {
		json_decref(body);
		return cli_fail("revoke", MCA_ERR_NOMEM);
	}
	if ((ret = cli_admin_call(ctx, "revoke", "POST", "/v1/revoke", body, &resp)) ==
	    CLI_CONTINUE)
		ret = revoke_print(ctx, resp);
	json_decref(resp);
	json_decref(body);
	return ret;
}
