/*
 * `meshca certs list|show`: the certificates the CA has issued, as
 * meshcad recorded them.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

#define CERTS_PATH_MAX	1024
#define CERTS_LIMIT_MAX	100000L

static const char *const cert_keys[] = {
	"serial", "service", "kind", "spiffe_id", "dns_names", "ip_addresses", "not_before",
	"not_after", "status", "renewed_from", "created_at", "revoked_at", "revocation_reason", NULL
};

/* ---- certs list ----------------------------------------------------- */

struct list_opts {
	const char	*service;
	const char	*status;
	const char	*kind;
	const char	*limit;
};

enum { O_SERVICE = 1, O_STATUS, O_KIND, O_LIMIT, O_PEM };

static void
list_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s certs list [options]\n\n"
	    "Lists issued certificates, newest first (GET /v1/certificates).\n\n"
	    "Options:\n"
	    "  --service S                      only those of service S\n"
	    "  --status active|expired|revoked  only those with this status\n"
	    "  --kind workload|admin|server     only those of this kind\n"
	    "  --limit N                        at most N (default: server's, 1000)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static bool
one_of(const char *v, const char *const set[])
{
	for (size_t i = 0; set[i] != NULL; i++)
		if (strcmp(v, set[i]) == 0)
			return true;
	return false;
}

static int
list_check(const struct list_opts *o)
{
	static const char *const statuses[] = { "active", "expired", "revoked", NULL };
	static const char *const kinds[] = { "workload", "admin", "server", NULL };
	long n;

	if (o->status != NULL && !one_of(o->status, statuses))
		return cli_usage_error("certs list", "--status: '%.32s' is not active, expired "
		    "or revoked", o->status);
	if (o->kind != NULL && !one_of(o->kind, kinds))
		return cli_usage_error("certs list", "--kind: '%.32s' is not workload, admin or "
		    "server", o->kind);
	if (o->limit != NULL && cli_parse_long(o->limit, 1, CERTS_LIMIT_MAX, &n) != MCA_OK)
		return cli_usage_error("certs list", "--limit: %s", mca_err_detail());
	if (o->service != NULL && strlen(o->service) > CA_MAX_SERVICE_NAME)
		return cli_usage_error("certs list", "--service: name too long");
	return CLI_CONTINUE;
}

static int
list_parse(struct cli_ctx *ctx, struct list_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "service",	required_argument, NULL, O_SERVICE },
		{ "status",	required_argument, NULL, O_STATUS },
		{ "kind",	required_argument, NULL, O_KIND },
		{ "limit",	required_argument, NULL, O_LIMIT },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_SERVICE:	o->service = optarg; break;
		case O_STATUS:	o->status = optarg; break;
		case O_KIND:	o->kind = optarg; break;
		case O_LIMIT:	o->limit = optarg; break;
		default:
			if ((ret = cli_opt_common(ctx, c, optarg, list_usage)) != CLI_CONTINUE)
				return ret;
		}
	}
	if (optind < argc)
		return cli_usage_error("certs list", "unexpected argument '%.64s'", argv[optind]);
	return list_check(o);
}

/* Appends "&key=escaped(value)" (the first with '?'). */
static enum mca_err
query_add(struct mca_buf *q, const char *key, const char *value)
{
	char *e;
	enum mca_err rc;

	if (value == NULL)
		return MCA_OK;
	if ((e = cli_http_escape(value)) == NULL)
		return MCA_ERR_NOMEM;
	if ((rc = mca_buf_append_str(q, q->len == 0 ? "?" : "&")) == MCA_OK &&
	    (rc = mca_buf_append_str(q, key)) == MCA_OK &&
	    (rc = mca_buf_append_str(q, "=")) == MCA_OK)
		rc = mca_buf_append_str(q, e);
	free(e);
	return rc;
}

static enum mca_err
list_path(const struct list_opts *o, char *path, size_t n)
{
	struct mca_buf q;
	enum mca_err rc;

	mca_buf_init(&q, CERTS_PATH_MAX, false);
	if ((rc = query_add(&q, "service", o->service)) == MCA_OK &&
	    (rc = query_add(&q, "status", o->status)) == MCA_OK &&
	    (rc = query_add(&q, "kind", o->kind)) == MCA_OK &&
	    (rc = query_add(&q, "limit", o->limit)) == MCA_OK &&
	    snprintf(path, n, "/v1/certificates%s", q.len > 0 ? (char *)q.data : "") >= (int)n)
		rc = mca_err_set(MCA_ERR_TOOBIG, "query too long");
	mca_buf_free(&q);
	return rc;
}

int
cli_cmd_certs_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct list_opts o;
	char path[CERTS_PATH_MAX];
	json_t *resp = NULL;
	enum mca_err rc;
	int ret;

	memset(&o, 0, sizeof(o));
	if ((ret = list_parse(ctx, &o, argc, argv)) != CLI_CONTINUE)
		return ret;
	if ((rc = list_path(&o, path, sizeof(path))) != MCA_OK)
		return cli_fail("certs list", rc);
	if ((ret = cli_admin_call(ctx, "certs list", "GET", path, NULL, &resp)) != CLI_CONTINUE)
		return ret;
	ret = cli_print_list(ctx, resp, "certs list", "certificates", 6, (const char *const[]){
	    "SERIAL", "SERVICE", "KIND", "SPIFFE ID", "NOT AFTER", "STATUS" }, (const char *const[]){
	    "serial", "service", "kind", "spiffe_id", "not_after", "status" });
	json_decref(resp);
	return ret;
}

/* ---- certs show ----------------------------------------------------- */

static void
show_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s certs show SERIAL [--json] [--pem]\n\n"
	    "Shows one certificate (GET /v1/certificates/SERIAL).\n\n"
	    "Options:\n"
	    "  --pem       print the certificate in PEM only\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
show_parse(struct cli_ctx *ctx, bool *pem, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pem", no_argument, NULL, O_PEM },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	size_t len;
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_PEM)
			*pem = true;
		else if ((ret = cli_opt_common(ctx, c, optarg, show_usage)) != CLI_CONTINUE)
			return ret;
	}
	if (argc - optind != 1)
		return cli_usage_error("certs show", "expected one SERIAL");
	len = strlen(argv[optind]);
	if (len == 0 || len >= CA_SERIAL_HEX_MAX ||
	    strspn(argv[optind], "0123456789abcdefABCDEF") != len)
		return cli_usage_error("certs show", "'%.64s' is not a hexadecimal serial",
		    argv[optind]);
	return CLI_CONTINUE;
}

static int
show_print(const struct cli_ctx *ctx, const json_t *resp, bool pem)
{
	const char *text = cli_json_str(resp, "certificate");
	enum mca_err rc;

	if (pem) {
		if (text == NULL)
			return cli_fail("certs show", mca_err_set(MCA_ERR_PARSE,
			    "answer has no 'certificate'"));
		fputs(text, stdout);
		return CLI_EXIT_OK;
	}
	rc = ctx->json ? cli_print_json(resp) : cli_print_fields(resp, cert_keys);
	return rc == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
}

int
cli_cmd_certs_show(struct cli_ctx *ctx, int argc, char **argv)
{
	char path[CERTS_PATH_MAX];
	json_t *resp = NULL;
	bool pem = false;
	int ret;

	if ((ret = show_parse(ctx, &pem, argc, argv)) != CLI_CONTINUE)
		return ret;
	/* Hex digits only (checked): nothing to escape.  The server keeps
	 * serials in lowercase. */
	snprintf(path, sizeof(path), "/v1/certificates/");
	for (size_t i = 0, n = strlen(path); argv[optind][i] != '\0' && n + 1 < sizeof(path); i++) {
		path[n++] = (char)(argv[optind][i] >= 'A' && argv[optind][i] <= 'F' ?
		    argv[optind][i] - 'A' + 'a' : argv[optind][i]);
		path[n] = '\0';
	}
	if ((ret = cli_admin_call(ctx, "certs show", "GET", path, NULL, &resp)) != CLI_CONTINUE)
		return ret;
	ret = show_print(ctx, resp, pem);
	json_decref(resp);
	return ret;
}
