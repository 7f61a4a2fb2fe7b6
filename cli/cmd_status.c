/*
 * `meshca status`: the CA at a glance (GET /v1/status, role viewer):
 * health, trust domain, how long root and intermediate remain valid, the
 * CRL, and counts of services and certificates.
 */
#include "cli/cli.h"

#include <string.h>

#include "ca/common/timefmt.h"

static void
status_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s status [--json]\n\n"
	    "Shows the CA's health (GET /v1/status; role viewer is enough): database,\n"
	    "signer, root and intermediate expiry, the current CRL, and how many\n"
	    "services and certificates there are (live, expiring within 24 h, revoked).\n"
	    "\"status\" is ok, or degraded with warnings (a CA certificate expiring\n"
	    "within 30 days, a CRL past its nextUpdate...).\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static json_int_t
num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void
print_ca_cert(const char *label, const json_t *c)
{
	char left[MCA_TIME_LEN];

	mca_duration_format(num(c, "expires_in") > 0 ? num(c, "expires_in") : 0, left);
	printf("%-14s expires %s (in %s), SHA-256 %s\n", label,
	    cli_json_str(c, "not_after") ? cli_json_str(c, "not_after") : "?", left,
	    cli_json_str(c, "sha256") ? cli_json_str(c, "sha256") : "?");
}

static void
print_status(const json_t *s)
{
	const json_t *counts = json_object_get(s, "counts");
	const json_t *certs = json_object_get(counts, "certificates");
	const json_t *crl = json_object_get(s, "crl"), *w;
	size_t i;

	printf("%-14s %s\n", "status:", cli_json_str(s, "status") ? cli_json_str(s, "status") : "?");
	printf("%-14s %s\n", "trust domain:", cli_json_str(s, "trust_domain") ?
	    cli_json_str(s, "trust_domain") : "?");
	printf("%-14s %s (schema %lld), signer %s, meshcad %s\n", "database:",
	    cli_json_str(s, "database") ? cli_json_str(s, "database") : "?",
	    (long long)num(s, "schema_version"),
	    cli_json_str(s, "signer") ? cli_json_str(s, "signer") : "?",
	    cli_json_str(s, "version") ? cli_json_str(s, "version") : "?");
	print_ca_cert("root:", json_object_get(s, "root"));
	print_ca_cert("intermediate:", json_object_get(s, "intermediate"));
	if (json_is_object(crl))
		printf("%-14s number %lld, %lld entries, next update %s\n", "crl:",
		    (long long)num(crl, "number"), (long long)num(crl, "entries"),
		    cli_json_str(crl, "next_update") ? cli_json_str(crl, "next_update") : "?");
	else
		printf("%-14s none yet\n", "crl:");
	printf("%-14s %lld (%lld enabled)\n", "services:", (long long)num(counts, "services"),
	    (long long)num(counts, "services_enabled"));
	printf("%-14s %lld\n", "admins:", (long long)num(counts, "admins"));
	printf("%-14s %lld live, %lld expiring within 24h, %lld revoked (%lld not yet expired), "
	    "%lld issued in all\n", "certificates:", (long long)num(certs, "live"),
	    (long long)num(certs, "expiring_24h"), (long long)num(certs, "revoked"),
	    (long long)num(certs, "revoked_unexpired"), (long long)num(certs, "total"));
	json_array_foreach(json_object_get(s, "warnings"), i, w)
		printf("%-14s %s\n", i == 0 ? "warnings:" : "", json_string_value(w) ?
		    json_string_value(w) : "?");
}

int
cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	int ret;

	if ((ret = cli_parse_plain(ctx, argc, argv, 0, status_usage, "status")) != CLI_CONTINUE ||
	    (ret = cli_admin_call(ctx, "status", "GET", "/v1/status", NULL, &resp)) != CLI_CONTINUE)
		return ret;
	if (ctx->json)
		ret = cli_print_json(resp) == MCA_OK ? CLI_EXIT_OK : cli_fail("output", MCA_ERR_IO);
	else {
		print_status(resp);
		ret = CLI_EXIT_OK;
	}
	json_decref(resp);
	return ret;
}
