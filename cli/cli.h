/*
 * cli/ — `meshca`, the command-line tool: `init` (local, on the CA host),
 * the admin commands (remote, over HTTPS with an admin client
 * certificate) and `enroll` (workload side, with a one-time token).
 *
 * Internal header of the CLI; nothing here is a public API.
 *
 * Exit status: CLI_EXIT_OK on success, CLI_EXIT_FAIL when the operation
 * failed (the reason printed as "meshca: <what failed>: <detail>"),
 * CLI_EXIT_USAGE for a bad command line.
 *
 * Secrets (root passphrase, enrollment tokens, private keys) never reach
 * an error message and are wiped after use.
 */
#ifndef MCA_CLI_H
#define MCA_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ca/common/buf.h"
#include "ca/common/config.h"
#include "ca/common/err.h"

#define CLI_PROG	"meshca"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,
	CLI_EXIT_USAGE = 2,
};

/* Returned by cli_opt_common() when option parsing goes on. */
#define CLI_CONTINUE	(-1)

/* ---- global options and their resolution (opts.c) ------------------- */

/* getopt_long values of the global options; above any short option. */
enum cli_gopt {
	CLI_GOPT_CONFIG = 0x100,
	CLI_GOPT_URL,
	CLI_GOPT_ADMIN_CERT,
	CLI_GOPT_ADMIN_KEY,
	CLI_GOPT_ROOT_CERT,
	CLI_GOPT_JSON,
	CLI_GOPT_VERSION,
};

/* The global options, for every command's option table: they may come
 * before or after the command words. */
#define CLI_GLOBAL_LONGOPTS \
	{ "config",	required_argument, NULL, CLI_GOPT_CONFIG }, \
	{ "url",	required_argument, NULL, CLI_GOPT_URL }, \
	{ "admin-cert",	required_argument, NULL, CLI_GOPT_ADMIN_CERT }, \
	{ "admin-key",	required_argument, NULL, CLI_GOPT_ADMIN_KEY }, \
	{ "root-cert",	required_argument, NULL, CLI_GOPT_ROOT_CERT }, \
	{ "json",	no_argument,       NULL, CLI_GOPT_JSON }, \
	{ "version",	no_argument,       NULL, CLI_GOPT_VERSION }, \
	{ "help",	no_argument,       NULL, 'h' }

/* Text of the global options for usage messages. */
extern const char cli_global_usage[];

/*
 * Settings of one run.  The *_flag fields come from the command line;
 * cli_ctx_resolve() fills the effective values: flag, else environment,
 * else configuration file.
 */
struct cli_ctx {
	const char		*config_flag;
	const char		*url_flag;
	const char		*admin_cert_flag;
	const char		*admin_key_flag;
	const char		*root_cert_flag;
	bool			 json;
	char			 cmd_name[64];	/* "meshca service add", for messages */

	struct mca_config	*cfg;		/* NULL when no file was found */
	char			*config_path;	/* the file loaded, or NULL */
	char			*url;		/* effective values, owned */
	char			*admin_cert;
	char			*admin_key;
	char			*root_cert;
};

void cli_ctx_free(struct cli_ctx *ctx);

/* Handles an option every command knows (global options, -h, errors).
 * Returns CLI_CONTINUE, or an exit status when the command must stop
 * (after --help, --version or a bad option). */
int cli_opt_common(struct cli_ctx *ctx, int c, const char *arg, void (*usage)(FILE *));
/* Parses argv of a command with no options of its own beyond the global
 * ones and exactly nargs arguments (from optind).  Returns an exit status
 * or CLI_CONTINUE. */
int cli_parse_plain(struct cli_ctx *ctx, int argc, char **argv, int nargs,
    void (*usage)(FILE *), const char *cmd);
/* Resets getopt for a new argument vector. */
void cli_getopt_reset(void);

/* Loads the configuration file (flag, MESHCA_CONFIG, the state
 * directory's meshca.conf) and fills the effective values. */
enum mca_err cli_ctx_resolve(struct cli_ctx *ctx) MCA_WUR;

/* Checks the values a remote command needs are set; prints which one is
 * missing and returns an exit status, or CLI_CONTINUE. */
int cli_ctx_require(const struct cli_ctx *ctx, bool admin);

/* Default state directory: $MESHCA_STATE_DIR, else
 * $HOME/.local/state/meshca.  Fails only without HOME. */
enum mca_err cli_state_dir_default(char *out, size_t n) MCA_WUR;

/* Strictly parses a decimal integer in [min, max]. */
enum mca_err cli_parse_long(const char *s, long min, long max, long *out) MCA_WUR;

/* ---- diagnostics (output.c) ----------------------------------------- */

/* "meshca: <what>: <detail>" on stderr; returns CLI_EXIT_FAIL.  A server
 * refusal (MCA_ERR_SERVER) is printed as the server's message alone. */
int cli_fail(const char *what, enum mca_err rc);
/* "meshca: <message>" on stderr, then a hint to use --help; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) MCA_PRINTF(2, 3);
/* printf to stderr prefixed with "meshca: ". */
void cli_warn(const char *fmt, ...) MCA_PRINTF(1, 2);

/* ---- output (output.c) ---------------------------------------------- */

/* Pretty JSON on stdout followed by a newline. */
enum mca_err cli_print_json(const json_t *v) MCA_WUR;

/* A JSON value as text for people: strings as is, arrays joined with
 * ", " ("-" when empty), null as "-", integers as durations when
 * duration is set.  Returns malloc'd text or NULL when out of memory. */
char *cli_value_text(const json_t *v, bool duration);

/* "label: value" lines for the named keys of obj, aligned.  keys ends
 * with NULL; a key ending in "_ttl" is shown as a duration. */
enum mca_err cli_print_fields(const json_t *obj, const char *const keys[]) MCA_WUR;

/* A text table with a header row, columns padded to their widest cell. */
struct cli_table;

struct cli_table *cli_table_new(size_t ncols, const char *const headers[]);
/* Appends a row of ncols cells (copied; NULL prints as "-"). */
enum mca_err cli_table_add(struct cli_table *t, const char *const cells[]) MCA_WUR;
void cli_table_print(const struct cli_table *t, FILE *fp);
void cli_table_free(struct cli_table *t);

/* Prints resp[array_key], a JSON array of objects, as a table of the
 * given keys under the given headers (or resp as JSON with --json); a
 * key ending in "_ttl" is shown as a duration.  Returns an exit code. */
int cli_print_list(const struct cli_ctx *ctx, const json_t *resp, const char *what,
    const char *array_key, size_t ncols, const char *const headers[], const char *const keys[]);

/* ---- HTTP client (http.c) ------------------------------------------- */

#define CLI_HTTP_MAX_BODY	(1024 * 1024)

struct cli_conn {
	const char	*url;		/* base URL, https:// only */
	const char	*cainfo;	/* PEM file of trusted roots */
	const char	*cert;		/* client certificate (PEM) or NULL */
	const char	*key;		/* its key (PEM) or NULL */
	bool		 insecure;	/* no peer verification: trust bootstrap only */
};

/* Sends method path (appended to the base URL) with body req (may be
 * NULL) and returns the parsed JSON object of a 2xx answer in *resp.
 * MCA_ERR_HTTP for transport errors (curl's message in the detail),
 * MCA_ERR_SERVER for a non-2xx answer ("<message> (<code>, HTTP <n>)"),
 * MCA_ERR_PARSE for an answer that is not a JSON object. */
enum mca_err cli_http_call(const struct cli_conn *c, const char *method, const char *path,
    const json_t *req, long *status, json_t **resp) MCA_WUR;
/* URL-escapes s for a path segment or query value; free with free(). */
char *cli_http_escape(const char *s);

/* A string member of obj, or NULL when absent or not a string. */
const char *cli_json_str(const json_t *obj, const char *key);

/* ---- secrets (passphrase.c) ----------------------------------------- */

#define CLI_SECRET_MAX		1024
#define CLI_PASSPHRASE_MIN	8

/* The root key passphrase: the first line of file (when not NULL), else
 * $MESHCA_ROOT_PASSPHRASE, else asked twice on /dev/tty with echo off.
 * out is a secret buffer, NUL-terminated. */
enum mca_err cli_passphrase_get(const char *file, struct mca_buf *out) MCA_WUR;
/* The first line of path ("-" is stdin), at most CLI_SECRET_MAX bytes,
 * trailing newline and blanks removed, into a secret buffer. */
enum mca_err cli_secret_read_file(const char *path, const char *what, struct mca_buf *out) MCA_WUR;

/* ---- commands ------------------------------------------------------- */

typedef int cli_cmd_fn(struct cli_ctx *ctx, int argc, char **argv);

cli_cmd_fn cli_cmd_init;
cli_cmd_fn cli_cmd_service_add;
cli_cmd_fn cli_cmd_service_list;
cli_cmd_fn cli_cmd_service_show;
cli_cmd_fn cli_cmd_token_create;
cli_cmd_fn cli_cmd_enroll;
cli_cmd_fn cli_cmd_certs_list;
cli_cmd_fn cli_cmd_certs_show;

/* Helpers shared by the remote commands (cmd_service.c). */
/* Resolves the context and fills conn for an admin call; returns an exit
 * status or CLI_CONTINUE. */
int cli_admin_conn(struct cli_ctx *ctx, struct cli_conn *conn);

#endif
