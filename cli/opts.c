/*
 * Global options and where their values come from: the command-line flag
 * wins over the environment, which wins over the configuration file.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

const char cli_global_usage[] =
    "Global options (before or after the command words):\n"
    "  --config FILE      configuration file (env MESHCA_CONFIG; default\n"
    "                     $MESHCA_STATE_DIR/meshca.conf or\n"
    "                     ~/.local/state/meshca/meshca.conf when present)\n"
    "  --url URL          meshcad base URL, https:// only (env MESHCA_URL, config url)\n"
    "  --admin-cert FILE  admin client certificate (env MESHCA_ADMIN_CERT, config admin_cert)\n"
    "  --admin-key FILE   admin client key (env MESHCA_ADMIN_KEY, config admin_key)\n"
    "  --root-cert FILE   trusted root certificate (env MESHCA_ROOT_CERT, config root_cert)\n"
    "  --json             machine-readable output (config output = json)\n"
    "  --version          print the version and exit\n"
    "  -h, --help         print help and exit\n";

void
cli_getopt_reset(void)
{
	/* glibc: 0 also resets its internal state (permutation, nextchar). */
	optind = 0;
	opterr = 1;
}

int
cli_opt_common(struct cli_ctx *ctx, int c, const char *arg, void (*usage)(FILE *))
{
	switch (c) {
	case CLI_GOPT_CONFIG:
		ctx->config_flag = arg;
		break;
	case CLI_GOPT_URL:
		ctx->url_flag = arg;
		break;
	case CLI_GOPT_ADMIN_CERT:
		ctx->admin_cert_flag = arg;
		break;
	case CLI_GOPT_ADMIN_KEY:
		ctx->admin_key_flag = arg;
		break;
	case CLI_GOPT_ROOT_CERT:
		ctx->root_cert_flag = arg;
		break;
	case CLI_GOPT_JSON:
		ctx->json = true;
		break;
	case CLI_GOPT_VERSION:
		printf("%s %s\n", CLI_PROG, MESHCA_VERSION);
		return CLI_EXIT_OK;
	case 'h':
		usage(stdout);
		return CLI_EXIT_OK;
	default:	/* getopt has printed what was wrong */
		fprintf(stderr, "Try '%s --help'.\n", ctx->cmd_name[0] != '\0' ?
		    ctx->cmd_name : CLI_PROG);
		return CLI_EXIT_USAGE;
	}
	return CLI_CONTINUE;
}

void
cli_ctx_free(struct cli_ctx *ctx)
{
	mca_config_free(ctx->cfg);
	free(ctx->config_path);
	free(ctx->url);
	free(ctx->admin_cert);
	free(ctx->admin_key);
	free(ctx->root_cert);
	memset(ctx, 0, sizeof(*ctx));
}

enum mca_err
cli_state_dir_default(char *out, size_t n)
{
	const char *v = getenv("MESHCA_STATE_DIR");
	int w;

	if (v != NULL && *v != '\0')
		w = snprintf(out, n, "%s", v);
	else if ((v = getenv("HOME")) != NULL && *v != '\0')
		w = snprintf(out, n, "%s/.local/state/meshca", v);
	else
		return mca_err_set(MCA_ERR_CONFIG, "neither MESHCA_STATE_DIR nor HOME is set");
	if (w < 0 || (size_t)w >= n)
		return mca_err_set(MCA_ERR_TOOBIG, "state directory path too long");
	return MCA_OK;
}

/* The configuration file to read: NULL (with MCA_OK) when none applies. */
static enum mca_err
config_path_find(const struct cli_ctx *ctx, char *out, size_t n, bool *found)
{
	const char *v;
	char dir[PATH_MAX];

	*found = false;
	v = ctx->config_flag;
	if (v == NULL && (v = getenv("MESHCA_CONFIG")) != NULL && *v == '\0')
		v = NULL;
	if (v != NULL) {		/* named explicitly: it must exist */
		if (snprintf(out, n, "%s", v) >= (int)n)
			return mca_err_set(MCA_ERR_TOOBIG, "configuration path too long");
		*found = true;
		return MCA_OK;
	}
	if (cli_state_dir_default(dir, sizeof(dir)) != MCA_OK)
		return MCA_OK;
	if (mca_path_join(out, n, dir, MCA_CONFIG_FILE) != MCA_OK)
		return MCA_OK;
	*found = mca_file_exists(out);
	return MCA_OK;
}

/* value from the flag, else the environment, else the config key.  Paths
 * in the configuration file are relative to its directory. */
static enum mca_err
resolve_one(const struct cli_ctx *ctx, const char *flag, const char *env, const char *key,
    bool is_path, char **out)
{
	const char *v = flag;
	char buf[PATH_MAX];

	if (v == NULL && (v = getenv(env)) != NULL && *v == '\0')
		v = NULL;
	if (v == NULL && ctx->cfg != NULL && (v = mca_config_get(ctx->cfg, key)) != NULL &&
	    is_path && v[0] != '/') {
		if (mca_path_join(buf, sizeof(buf), mca_config_dir(ctx->cfg), v) != MCA_OK)
			return MCA_ERR_TOOBIG;
		v = buf;
	}
	if (v == NULL)
		return MCA_OK;
	if ((*out = strdup(v)) == NULL)
		return MCA_ERR_NOMEM;
	return MCA_OK;
}

static enum mca_err
resolve_output(struct cli_ctx *ctx)
{
	const char *v;

	if (ctx->cfg == NULL || (v = mca_config_get(ctx->cfg, "output")) == NULL)
		return MCA_OK;
	if (strcmp(v, "json") == 0)
		ctx->json = true;
	else if (strcmp(v, "text") != 0)
		return mca_err_set(MCA_ERR_CONFIG, "%s: output must be 'text' or 'json'",
		    ctx->config_path);
	return MCA_OK;
}

enum mca_err
cli_ctx_resolve(struct cli_ctx *ctx)
{
	char path[PATH_MAX];
	enum mca_err rc;
	bool found;

	if ((rc = config_path_find(ctx, path, sizeof(path), &found)) != MCA_OK)
		return rc;
	if (found) {
		if ((rc = mca_config_load(path, &ctx->cfg)) != MCA_OK)
			return rc;
		if ((ctx->config_path = strdup(path)) == NULL)
			return MCA_ERR_NOMEM;
	}
	if ((rc = resolve_output(ctx)) != MCA_OK ||
	    (rc = resolve_one(ctx, ctx->url_flag, "MESHCA_URL", "url", false, &ctx->url)) != MCA_OK ||
	    (rc = resolve_one(ctx, ctx->admin_cert_flag, "MESHCA_ADMIN_CERT", "admin_cert", true,
	    &ctx->admin_cert)) != MCA_OK ||
	    (rc = resolve_one(ctx, ctx->admin_key_flag, "MESHCA_ADMIN_KEY", "admin_key", true,
	    &ctx->admin_key)) != MCA_OK ||
	    (rc = resolve_one(ctx, ctx->root_cert_flag, "MESHCA_ROOT_CERT", "root_cert", true,
	    &ctx->root_cert)) != MCA_OK)
		return rc;
	return MCA_OK;
}

static int
missing(const char *what, const char *flag, const char *env, const char *key)
{
	return cli_usage_error(NULL, "no %s: use %s, %s or '%s' in the configuration file",
	    what, flag, env, key);
}

int
cli_ctx_require(const struct cli_ctx *ctx, bool admin)
{
	if (ctx->url == NULL)
		return missing("server URL", "--url", "MESHCA_URL", "url");
	if (ctx->root_cert == NULL)
		return missing("root certificate", "--root-cert", "MESHCA_ROOT_CERT", "root_cert");
	if (admin && ctx->admin_cert == NULL)
		return missing("admin certificate", "--admin-cert", "MESHCA_ADMIN_CERT", "admin_cert");
	if (admin && ctx->admin_key == NULL)
		return missing("admin key", "--admin-key", "MESHCA_ADMIN_KEY", "admin_key");
	return CLI_CONTINUE;
}

enum mca_err
cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || end == NULL || *end != '\0' || errno != 0 || v < min || v > max)
		return mca_err_set(MCA_ERR_INVALID, "'%s' is not a number from %ld to %ld",
		    s, min, max);
	*out = v;
	return MCA_OK;
}

/* Parses the common options of a command taking no options of its own
 * and exactly nargs arguments. */
int
cli_parse_plain(struct cli_ctx *ctx, int argc, char **argv, int nargs, void (*usage)(FILE *),
    const char *cmd)
{
	static const struct option lo[] = { CLI_GLOBAL_LONGOPTS, { NULL, 0, NULL, 0 } };
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if ((ret = cli_opt_common(ctx, c, optarg, usage)) != CLI_CONTINUE)
			return ret;
	if (argc - optind != nargs)
		return cli_usage_error(cmd, nargs == 0 ? "no arguments expected" :
		    "expected %d argument%s", nargs, nargs == 1 ? "" : "s");
	return CLI_CONTINUE;
}

int
cli_opt_duration(const char *cmd, const char *flag, const char *arg, int64_t *out)
{
	if (mca_duration_parse(arg, out) != MCA_OK || *out <= 0)
		return cli_usage_error(cmd, "--%s: '%.64s' is not a positive duration", flag, arg);
	return CLI_CONTINUE;
}
