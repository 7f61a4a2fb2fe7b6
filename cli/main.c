/*
 * meshca: command dispatch.  The command words ("service add") select an
 * entry of the table below; the rest of the line is that command's.
 */
#include "cli/cli.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ca/ca.h"

struct cli_cmd {
	const char	*group;		/* first word */
	const char	*name;		/* second word, or NULL */
	cli_cmd_fn	*fn;
	const char	*summary;
};

static const struct cli_cmd cmds[] = {
	{ "init",	NULL,	  cli_cmd_init,		"create a new CA in a state directory (local)" },
	{ "service",	"add",	  cli_cmd_service_add,	"register a service" },
	{ "service",	"list",	  cli_cmd_service_list,	"list the services" },
	{ "service",	"show",	  cli_cmd_service_show,	"show one service" },
	{ "service",	"update", cli_cmd_service_update, "change a service's policy (names, TTLs, key types, wildcards)" },
	{ "service",	"disable", cli_cmd_service_disable, "disable a service (--revoke: and revoke its certificates)" },
	{ "service",	"enable", cli_cmd_service_enable, "enable a disabled service" },
	{ "token",	"create", cli_cmd_token_create,	"mint a one-time enrollment token" },
	{ "enroll",	NULL,	  cli_cmd_enroll,	"get a first certificate with a token (workload)" },
	{ "agent",	NULL,	  cli_cmd_agent,	"keep this workload's certificate renewed (and 'agent status')" },
	{ "certs",	"list",	  cli_cmd_certs_list,	"list issued certificates" },
	{ "certs",	"show",	  cli_cmd_certs_show,	"show one certificate" },
	{ "revoke",	NULL,	  cli_cmd_revoke,	"revoke a certificate by serial" },
	{ "crl",	"show",	  cli_cmd_crl_show,	"fetch, verify and print the current CRL" },
	{ "ocsp",	"check",  cli_cmd_ocsp_check,	"ask the OCSP responder about a certificate" },
	{ "admin",	"add",	  cli_cmd_admin_add,	"add an operator (role admin or viewer) and mint its token" },
	{ "admin",	"list",	  cli_cmd_admin_list,	"list the operators" },
	{ "admin",	"remove", cli_cmd_admin_remove,	"remove an operator and revoke its certificates" },
	{ "admin",	"token",  cli_cmd_admin_token,	"mint a new enrollment token for an operator" },
	{ "admin",	"enroll", cli_cmd_admin_enroll,	"get an admin certificate with a token (new operator)" },
	{ "status",	NULL,	  cli_cmd_status,	"CA health, expiry and certificate counts" },
	{ "audit",	"list",	  cli_cmd_audit_list,	"list audit log entries" },
	{ "audit",	"verify", cli_cmd_audit_verify,	"verify the audit log's hash chain and checkpoint" },
	{ "audit",	"checkpoint", cli_cmd_audit_checkpoint, "print the latest signed audit checkpoint" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct option main_longopts[] = {
	CLI_GLOBAL_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *fp)
{
	char words[40];

	fprintf(fp, "usage: %s [global options] COMMAND [options] [args]\n\n"
	    "meshca administers a meshca private certificate authority.\n\nCommands:\n", CLI_PROG);
	for (size_t i = 0; i < NCMDS; i++) {
		snprintf(words, sizeof(words), "%s%s%s", cmds[i].group,
		    cmds[i].name != NULL ? " " : "", cmds[i].name != NULL ? cmds[i].name : "");
		fprintf(fp, "  %-16s %s\n", words, cmds[i].summary);
	}
	fprintf(fp, "\n%s\nRun '%s COMMAND --help' for a command's options.\n"
	    "Exit status: 0 success, 1 failure, 2 usage error, 3 (agent) certificate expired.\n", cli_global_usage, CLI_PROG);
}

static void
usage_group(FILE *fp, const char *group)
{
	fprintf(fp, "usage: %s %s SUBCOMMAND [options] [args]\n\nSubcommands:\n", CLI_PROG, group);
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].group, group) == 0)
			fprintf(fp, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(fp, "\nRun '%s %s SUBCOMMAND --help' for its options.\n", CLI_PROG, group);
}

static bool
group_exists(const char *group)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].group, group) == 0)
			return true;
	return false;
}

static const struct cli_cmd *
cmd_find(const char *group, const char *name)
{
	for (size_t i = 0; i < NCMDS; i++) {
		if (strcmp(cmds[i].group, group) != 0)
			continue;
		if (cmds[i].name == NULL || (name != NULL && strcmp(cmds[i].name, name) == 0))
			return &cmds[i];
	}
	return NULL;
}

/* Global options before the command words. */
static int
parse_global(struct cli_ctx *ctx, int argc, char **argv)
{
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "+h", main_longopts, NULL)) != -1)
		if ((ret = cli_opt_common(ctx, c, optarg, usage)) != CLI_CONTINUE)
			return ret;
	return CLI_CONTINUE;
}

/* getopt names the command in its messages after argv[0]. */
static int
run(struct cli_ctx *ctx, const struct cli_cmd *cmd, int argc, char **argv)
{
	snprintf(ctx->cmd_name, sizeof(ctx->cmd_name), "%s %s%s%s", CLI_PROG, cmd->group,
	    cmd->name != NULL ? " " : "", cmd->name != NULL ? cmd->name : "");
	argv[0] = ctx->cmd_name;
	return cmd->fn(ctx, argc, argv);
}

/* Selects the command and runs it with argv[0] = its last word. */
static int
dispatch(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct cli_cmd *cmd;
	const char *group = argv[0];
	bool help;

	if (strcmp(group, "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!group_exists(group))
		return cli_usage_error(NULL, "unknown command '%.64s'", group);
	if ((cmd = cmd_find(group, NULL)) != NULL && cmd->name == NULL)
		return run(ctx, cmd, argc, argv);
	help = argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0;
	if (help) {
		usage_group(argc < 2 ? stderr : stdout, group);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if ((cmd = cmd_find(group, argv[1])) == NULL)
		return cli_usage_error(group, "unknown subcommand '%s %.64s'", group, argv[1]);
	return run(ctx, cmd, argc - 1, argv + 1);
}

/* jansson's memory may hold enrollment tokens: wipe every block it
 * releases. */
static void *
json_alloc(size_t n)
{
	return malloc(n);
}

static void
json_release(void *p)
{
	if (p != NULL)
		mca_wipe(p, malloc_usable_size(p));
	free(p);
}

int
main(int argc, char **argv)
{
	struct cli_ctx ctx;
	enum mca_err rc;
	int ret;

	memset(&ctx, 0, sizeof(ctx));
	json_set_alloc_funcs(json_alloc, json_release);
	argv[0] = (char *)CLI_PROG;	/* how getopt names us in its messages */
	if ((ret = parse_global(&ctx, argc, argv)) != CLI_CONTINUE)
		goto out;
	if (optind >= argc) {
		usage(stderr);
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	if ((rc = ca_global_init()) != MCA_OK) {
		ret = cli_fail("initialisation", rc);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ret = cli_fail("initialisation", mca_err_set(MCA_ERR_HTTP, "curl_global_init failed"));
		goto out;
	}
	ret = dispatch(&ctx, argc - optind, argv + optind);
	curl_global_cleanup();
out:
	cli_ctx_free(&ctx);
	if (fflush(stdout) != 0 && ret == CLI_EXIT_OK) {
		cli_warn("cannot write to standard output");
		ret = CLI_EXIT_FAIL;
	}
	return ret;
}
