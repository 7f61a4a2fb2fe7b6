/*
 * `meshca service add|list|show|update|disable|enable`: services over the admin API, and the
 * connection set-up every admin command shares.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/common/timefmt.h"

#define SERVICE_PATH_MAX	512

static const char *const service_keys[] = {
	"name", "spiffe_id", "dns_names", "ip_addresses", "default_ttl", "max_ttl",
	"key_types", "allow_wildcards", "enabled", "created_at", "updated_at", NULL
};

int
cli_admin_conn(struct cli_ctx *ctx, struct cli_conn *conn)
{
	enum mca_err rc;
	int ret;

	if ((rc = cli_ctx_resolve(ctx)) != MCA_OK)
		return cli_fail("configuration", rc);
	if ((ret = cli_ctx_require(ctx, true)) != CLI_CONTINUE)
		return ret;
	memset(conn, 0, sizeof(*conn));
	conn->url = ctx->url;
	conn->cainfo = ctx->root_cert;
	conn->cert = ctx->admin_cert;
	conn->key = ctx->admin_key;
	return CLI_CONTINUE;
}

int
cli_admin_call(struct cli_ctx *ctx, const char *cmd, const char *method, const char *path,
    const json_t *body, json_t **resp)
{
	struct cli_conn conn;
	enum mca_err rc;
	long status;
	int ret;

	*resp = NULL;
	if ((ret = cli_admin_conn(ctx, &conn)) != CLI_CONTINUE)
		return ret;
	if ((rc = cli_http_call(&conn, method, path, body, &status, resp)) != MCA_OK)
		return cli_fail(cmd, rc);
	return CLI_CONTINUE;
}

static int
print_service(const struct cli_ctx *ctx, const json_t *svc)
{
	enum mca_err rc;

	rc = ctx->json ? cli_print_json(svc) : cli_print_fields(svc, service_keys);
	return rc == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
}

/* ---- service add ---------------------------------------------------- */

enum { O_SPIFFE_ID = 1, O_DNS, O_IP, O_DEFAULT_TTL, O_MAX_TTL, O_KEY_TYPES, O_WILDCARDS,
	O_ADD_DNS, O_REMOVE_DNS, O_ADD_IP, O_REMOVE_IP, O_NO_DNS, O_NO_IP };

static void
add_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s service add NAME [options]\n\n"
	    "Registers a service (POST /v1/services) and prints it.\n\n"
	    "Options:\n"
	    "  --spiffe-id ID      its SPIFFE ID (default spiffe://<trust-domain>/svc/NAME)\n"
	    "  --dns NAME          a DNS name it may hold, exact or *.suffix (repeatable)\n"
	    "  --ip ADDR|CIDR      an address or range it may hold (repeatable)\n"
	    "  --default-ttl D     certificate lifetime when none is asked (default: server's)\n"
	    "  --max-ttl D         longest lifetime (default: max(default-ttl, 72h))\n"
	    "  --key-types LIST    comma-separated key types allowed (default all); rsa-N\n"
	    "                      admits RSA keys of N bits or more\n"
	    "  --allow-wildcards true|false\n"
	    "                      whether certificates may carry a literal *.suffix name\n"
	    "                      (default false; *.suffix patterns always admit the\n"
	    "                      names one label under them)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

/* --allow-wildcards true|false */
static int
add_bool(json_t *body, const char *cmd, const char *key, const char *flag, const char *value)
{
	bool v;

	if (strcmp(value, "true") == 0)
		v = true;
	else if (strcmp(value, "false") == 0)
		v = false;
	else
		return cli_usage_error(cmd, "--%s: '%.32s' is neither true nor false", flag, value);
	if (json_object_set_new(body, key, json_boolean(v)) != 0)
		return cli_fail(cmd, MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

static int
add_to_array(json_t *body, const char *cmd, const char *key, const char *flag,
    const char *value)
{
	json_t *a = json_object_get(body, key);

	if (a == NULL) {
		if ((a = json_array()) == NULL || json_object_set_new(body, key, a) != 0)
			return cli_fail(cmd, MCA_ERR_NOMEM);
	}
	if (json_array_size(a) >= CA_MAX_SANS)
		return cli_usage_error(cmd, "--%s: at most %d values", flag, CA_MAX_SANS);
	if (json_array_append_new(a, json_string(value)) != 0)
		return cli_usage_error(cmd, "bad value '%.64s'", value);
	return CLI_CONTINUE;
}

static int
add_duration(json_t *body, const char *cmd, const char *key, const char *flag,
    const char *value)
{
	int64_t secs;

	if (mca_duration_parse(value, &secs) != MCA_OK || secs <= 0)
		return cli_usage_error(cmd, "--%s: '%.64s' is not a positive duration "
		    "(e.g. 1h, 24h, 30d)", flag, value);
	if (json_object_set_new(body, key, json_string(value)) != 0)
		return cli_fail(cmd, MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

static int
add_key_types(json_t *body, const char *cmd, const char *list)
{
	char *copy, *tok, *save = NULL;
	enum ca_key_type t;
	uint32_t mask;
	json_t *a;
	int ret = CLI_CONTINUE;

	if (ca_key_mask_parse(list, &mask) != MCA_OK || mask == 0)
		return cli_usage_error(cmd, "--key-types: %s", mca_err_detail());
	if (strcmp(list, "all") == 0)		/* the server's default */
		return CLI_CONTINUE;
	if ((copy = strdup(list)) == NULL || (a = json_array()) == NULL ||
	    json_object_set_new(body, "key_types", a) != 0) {
		free(copy);
		return cli_fail(cmd, MCA_ERR_NOMEM);
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (ca_key_type_parse(tok, &t) != MCA_OK) {
			ret = cli_usage_error(cmd, "--key-types: unknown '%.32s'", tok);
			break;
		}
		if (json_array_append_new(a, json_string(ca_key_type_name(t))) != 0) {
			ret = cli_fail(cmd, MCA_ERR_NOMEM);
			break;
		}
	}
	free(copy);
	return ret;
}

static int
add_opt(struct cli_ctx *ctx, json_t *body, int c, const char *arg)
{
	switch (c) {
	case O_SPIFFE_ID:
		if (json_object_set_new(body, "spiffe_id", json_string(arg)) != 0)
			return cli_usage_error("service add", "--spiffe-id: not UTF-8");
		return CLI_CONTINUE;
	case O_DNS:		return add_to_array(body, "service add", "dns_names", "dns", arg);
	case O_IP:		return add_to_array(body, "service add", "ip_addresses", "ip", arg);
	case O_DEFAULT_TTL:
		return add_duration(body, "service add", "default_ttl", "default-ttl", arg);
	case O_MAX_TTL:		return add_duration(body, "service add", "max_ttl", "max-ttl", arg);
	case O_KEY_TYPES:	return add_key_types(body, "service add", arg);
	case O_WILDCARDS:
		return add_bool(body, "service add", "allow_wildcards", "allow-wildcards", arg);
	default:		return cli_opt_common(ctx, c, arg, add_usage);
	}
}

static int
add_parse(struct cli_ctx *ctx, json_t *body, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "spiffe-id",	 required_argument, NULL, O_SPIFFE_ID },
		{ "dns",	 required_argument, NULL, O_DNS },
		{ "ip",		 required_argument, NULL, O_IP },
		{ "default-ttl", required_argument, NULL, O_DEFAULT_TTL },
		{ "max-ttl",	 required_argument, NULL, O_MAX_TTL },
		{ "key-types",	 required_argument, NULL, O_KEY_TYPES },
		{ "allow-wildcards", required_argument, NULL, O_WILDCARDS },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if ((ret = add_opt(ctx, body, c, optarg)) != CLI_CONTINUE)
			return ret;
	if (argc - optind != 1)
		return cli_usage_error("service add", "expected one service NAME");
	if (ca_service_name_check(argv[optind]) != MCA_OK)
		return cli_usage_error("service add", "%s", mca_err_detail());
	if (json_object_set_new(body, "name", json_string(argv[optind])) != 0)
		return cli_fail("service add", MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

int
cli_cmd_service_add(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *body, *resp = NULL;
	int ret;

	if ((body = json_object()) == NULL)
		return cli_fail("service add", MCA_ERR_NOMEM);
	if ((ret = add_parse(ctx, body, argc, argv)) != CLI_CONTINUE ||
	    (ret = cli_admin_call(ctx, "service add", "POST", "/v1/services", body, &resp)) !=
	    CLI_CONTINUE)
		goto out;
	ret = print_service(ctx, resp);
out:
	json_decref(resp);
	json_decref(body);
	return ret;
}

/* ---- service list --------------------------------------------------- */

static void
list_usage(FILE *fp)
{
	fprintf(fp, "usage: %s service list [--json]\n\n"
	    "Lists the services (GET /v1/services).\n\n%s", CLI_PROG, cli_global_usage);
}

int
cli_cmd_service_list(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *resp = NULL;
	int ret;

	if ((ret = cli_parse_plain(ctx, argc, argv, 0, list_usage, "service list")) != CLI_CONTINUE ||
	    (ret = cli_admin_call(ctx, "service list", "GET", "/v1/services", NULL, &resp)) !=
	    CLI_CONTINUE)
		return ret;
	ret = cli_print_list(ctx, resp, "service list", "services", 7, (const char *const[]){
	    "NAME", "SPIFFE ID", "DNS", "IPS", "DEFAULT TTL", "MAX TTL", "ENABLED" }, (const char *const[]){
	    "name", "spiffe_id", "dns_names", "ip_addresses", "default_ttl", "max_ttl", "enabled" });
	json_decref(resp);
	return ret;
}

/* ---- service show --------------------------------------------------- */

static void
show_usage(FILE *fp)
{
	fprintf(fp, "usage: %s service show NAME [--json]\n\n"
	    "Shows one service (GET /v1/services/NAME).\n\n%s", CLI_PROG, cli_global_usage);
}

int
cli_cmd_service_show(struct cli_ctx *ctx, int argc, char **argv)
{
	char path[SERVICE_PATH_MAX];
	json_t *resp = NULL;
	char *name = NULL;
	int ret;

	if ((ret = cli_parse_plain(ctx, argc, argv, 1, show_usage, "service show")) != CLI_CONTINUE)
		return ret;
	if (strlen(argv[optind]) > CA_MAX_SERVICE_NAME || (name = cli_http_escape(argv[optind])) == NULL)
		return cli_usage_error("service show", "bad service name");
	snprintf(path, sizeof(path), "/v1/services/%s", name);
	free(name);
	if ((ret = cli_admin_call(ctx, "service show", "GET", path, NULL, &resp)) != CLI_CONTINUE)
		return ret;
	ret = print_service(ctx, resp);
	json_decref(resp);
	return ret;
}

/* ---- service update ------------------------------------------------- */

static void
update_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s service update NAME [options]\n\n"
	    "Changes a service's policy (PATCH /v1/services/NAME) and prints it.  What is\n"
	    "not given keeps its value.  Certificates already issued are untouched; the\n"
	    "next renewal follows the new policy (names removed are dropped).  The SPIFFE\n"
	    "ID cannot change.\n\n"
	    "Options:\n"
	    "  --dns NAME          replace the DNS names with these (repeatable)\n"
	    "  --no-dns            remove every DNS name\n"
	    "  --add-dns NAME      add a DNS name, exact or *.suffix (repeatable)\n"
	    "  --remove-dns NAME   remove a DNS name (repeatable; it must be listed)\n"
	    "  --ip ADDR|CIDR      replace the addresses and ranges with these (repeatable)\n"
	    "  --no-ip             remove every address and range\n"
	    "  --add-ip ADDR|CIDR  add one (repeatable)\n"
	    "  --remove-ip ADDR|CIDR  remove one (repeatable; it must be listed)\n"
	    "  --default-ttl D     certificate lifetime when none is asked\n"
	    "  --max-ttl D         longest lifetime (longer requests are capped)\n"
	    "  --key-types LIST    comma-separated key types allowed, or all\n"
	    "  --allow-wildcards true|false\n"
	    "                      whether certificates may carry a literal *.suffix name\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
update_key_types(json_t *body, const char *list)
{
	json_t *a;

	if (strcmp(list, "all") != 0)
		return add_key_types(body, "service update", list);
	if ((a = json_array()) == NULL || json_object_set_new(body, "key_types", a) != 0)
		return cli_fail("service update", MCA_ERR_NOMEM);
	for (int t = 0; t < CA_KEY_TYPE_MAX; t++)
		if (json_array_append_new(a, json_string(ca_key_type_name((enum ca_key_type)t))) != 0)
			return cli_fail("service update", MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

static int
update_empty(json_t *body, const char *key)
{
	if (json_object_set_new(body, key, json_array()) != 0)
		return cli_fail("service update", MCA_ERR_NOMEM);
	return CLI_CONTINUE;
}

static int
update_opt(struct cli_ctx *ctx, json_t *body, int c, const char *arg)
{
	static const char cmd[] = "service update";

	switch (c) {
	case O_DNS:		return add_to_array(body, cmd, "dns_names", "dns", arg);
	case O_NO_DNS:		return update_empty(body, "dns_names");
	case O_ADD_DNS:		return add_to_array(body, cmd, "add_dns_names", "add-dns", arg);
	case O_REMOVE_DNS:	return add_to_array(body, cmd, "remove_dns_names", "remove-dns", arg);
	case O_IP:		return add_to_array(body, cmd, "ip_addresses", "ip", arg);
	case O_NO_IP:		return update_empty(body, "ip_addresses");
	case O_ADD_IP:		return add_to_array(body, cmd, "add_ip_addresses", "add-ip", arg);
	case O_REMOVE_IP:	return add_to_array(body, cmd, "remove_ip_addresses", "remove-ip", arg);
	case O_DEFAULT_TTL:	return add_duration(body, cmd, "default_ttl", "default-ttl", arg);
	case O_MAX_TTL:		return add_duration(body, cmd, "max_ttl", "max-ttl", arg);
	case O_KEY_TYPES:	return update_key_types(body, arg);
	case O_WILDCARDS:
		return add_bool(body, cmd, "allow_wildcards", "allow-wildcards", arg);
	default:		return cli_opt_common(ctx, c, arg, update_usage);
	}
}

static int
update_parse(struct cli_ctx *ctx, json_t *body, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dns",	 required_argument, NULL, O_DNS },
		{ "no-dns",	 no_argument,	    NULL, O_NO_DNS },
		{ "add-dns",	 required_argument, NULL, O_ADD_DNS },
		{ "remove-dns",	 required_argument, NULL, O_REMOVE_DNS },
		{ "ip",		 required_argument, NULL, O_IP },
		{ "no-ip",	 no_argument,	    NULL, O_NO_IP },
		{ "add-ip",	 required_argument, NULL, O_ADD_IP },
		{ "remove-ip",	 required_argument, NULL, O_REMOVE_IP },
		{ "default-ttl", required_argument, NULL, O_DEFAULT_TTL },
		{ "max-ttl",	 required_argument, NULL, O_MAX_TTL },
		{ "key-types",	 required_argument, NULL, O_KEY_TYPES },
		{ "allow-wildcards", required_argument, NULL, O_WILDCARDS },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if ((ret = update_opt(ctx, body, c, optarg)) != CLI_CONTINUE)
			return ret;
	if (argc - optind != 1)
		return cli_usage_error("service update", "expected one service NAME");
	if (ca_service_name_check(argv[optind]) != MCA_OK)
		return cli_usage_error("service update", "%s", mca_err_detail());
	if (json_object_size(body) == 0)
		return cli_usage_error("service update", "nothing to change: give at least one "
		    "option");
	return CLI_CONTINUE;
}

int
cli_cmd_service_update(struct cli_ctx *ctx, int argc, char **argv)
{
	char path[SERVICE_PATH_MAX];
	json_t *body, *resp = NULL;
	char *esc = NULL;
	int ret;

	if ((body = json_object()) == NULL)
		return cli_fail("service update", MCA_ERR_NOMEM);
	if ((ret = update_parse(ctx, body, argc, argv)) != CLI_CONTINUE)
		goto out;
	if ((esc = cli_http_escape(argv[optind])) == NULL) {
		ret = cli_fail("service update", MCA_ERR_NOMEM);
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/services/%s", esc);
	if ((ret = cli_admin_call(ctx, "service update", "PATCH", path, body, &resp)) !=
	    CLI_CONTINUE)
		goto out;
	ret = print_service(ctx, resp);
out:
	free(esc);
	json_decref(resp);
	json_decref(body);
	return ret;
}

/* ---- service disable / enable --------------------------------------- */

enum { O_REVOKE = 0x80, O_REASON };

static void
disable_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s service disable NAME [--revoke [--reason R]] [--json]\n\n"
	    "Disables a service (POST /v1/services/NAME/disable): no new tokens,\n"
	    "enrollments or renewals for it.  Its certificates stay valid unless\n"
	    "--revoke is given.\n\n"
	    "Options:\n"
	    "  --revoke     also revoke every active certificate of the service, in the\n"
	    "               same transaction\n"
	    "  --reason R   their RFC 5280 reason (default cessationOfOperation)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
disable_parse(struct cli_ctx *ctx, json_t *body, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "revoke", no_argument,       NULL, O_REVOKE },
		{ "reason", required_argument, NULL, O_REASON },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	const char *reason = NULL;
	int c, ret, code;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_REVOKE) {
			if (json_object_set_new(body, "revoke", json_true()) != 0)
				return cli_fail("service disable", MCA_ERR_NOMEM);
		} else if (c == O_REASON) {
			reason = optarg;
		} else if ((ret = cli_opt_common(ctx, c, optarg, disable_usage)) != CLI_CONTINUE) {
			return ret;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("service disable", "expected one service NAME");
	if (reason != NULL && json_object_get(body, "revoke") == NULL)
		return cli_usage_error("service disable", "--reason goes with --revoke");
	if (reason != NULL && (ca_crl_reason_parse(reason, &code) != MCA_OK ||
	    json_object_set_new(body, "reason", json_string(reason)) != 0))
		return cli_usage_error("service disable", "--reason: '%.40s' is not an RFC 5280 reason "
		    "(keyCompromise, cessationOfOperation, ...)", reason);
	return CLI_CONTINUE;
}

/* POST /v1/services/NAME/ACTION with body; prints the service. */
static int
service_action(struct cli_ctx *ctx, const char *cmd, const char *name, const char *action,
    const json_t *body)
{
	struct cli_conn conn;
	char path[SERVICE_PATH_MAX];
	json_t *resp = NULL;
	char *esc;
	enum mca_err rc;
	long status;
	int ret;

	if ((ret = cli_admin_conn(ctx, &conn)) != CLI_CONTINUE)
		return ret;
	if (strlen(name) > CA_MAX_SERVICE_NAME || (esc = cli_http_escape(name)) == NULL)
		return cli_usage_error(cmd, "bad service name");
	snprintf(path, sizeof(path), "/v1/services/%s/%s", esc, action);
	free(esc);
	if ((rc = cli_http_call(&conn, "POST", path, body, &status, &resp)) != MCA_OK)
		return cli_fail(cmd, rc);
	if (!ctx->json && json_integer_value(json_object_get(resp, "revoked")) > 0)
		printf("revoked %lld certificate(s)\n",
		    (long long)json_integer_value(json_object_get(resp, "revoked")));
	ret = print_service(ctx, resp);
	json_decref(resp);
	return ret;
}

int
cli_cmd_service_disable(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *body;
	int ret;

	if ((body = json_object()) == NULL)
		return cli_fail("service disable", MCA_ERR_NOMEM);
	if ((ret = disable_parse(ctx, body, argc, argv)) == CLI_CONTINUE)
		ret = service_action(ctx, "service disable", argv[optind], "disable", body);
	json_decref(body);
	return ret;
}

static void
enable_usage(FILE *fp)
{
	fprintf(fp, "usage: %s service enable NAME [--json]\n\n"
	    "Enables a disabled service again (POST /v1/services/NAME/enable).\n"
	    "Certificates revoked meanwhile stay revoked.\n\n%s", CLI_PROG, cli_global_usage);
}

int
cli_cmd_service_enable(struct cli_ctx *ctx, int argc, char **argv)
{
	int ret;

	if ((ret = cli_parse_plain(ctx, argc, argv, 1, enable_usage, "service enable")) != CLI_CONTINUE)
		return ret;
	return service_action(ctx, "service enable", argv[optind], "enable", NULL);
}
