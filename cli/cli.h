/*
 * cli/ — `meshca`, the command-line tool: `init` (local, on the CA host),
 * the admin commands (remote, over HTTPS with an admin client
 * certificate) and `enroll` (workload side, with a one-time token).
 *
 * Internal header of the CLI; nothing here is a public API.
 *
 * Exit status: CLI_EXIT_OK on success, CLI_EXIT_FAIL when the operation
 * failed (the reason printed as "meshca: <what failed>: <detail>"),
 * CLI_EXIT_USAGE for a bad command line, CLI_EXIT_EXPIRED when `meshca
 * agent` holds an expired certificate it cannot renew.
 *
 * Secrets (root passphrase, enrollment tokens, private keys) never reach
 * an error message and are wiped after use.
 */
#ifndef MCA_CLI_H
#define MCA_CLI_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/config.h"
#include "ca/common/err.h"

#define CLI_PROG	"meshca"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_EXPIRED = 3,
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

/* A positive duration option (--flag D): CLI_CONTINUE, or a usage error. */
int cli_opt_duration(const char *cmd, const char *flag, const char *arg, int64_t *out);

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

/* ---- what the server answers (answer.c: no libcurl, fuzzed) ---------- */

#define CLI_ROOTS_MAX	16	/* roots a /v1/roots answer may list */

/* A string member of obj, or NULL when absent or not a string. */
const char *cli_json_str(const json_t *obj, const char *key);
/* An answer body with its HTTP status: a 2xx JSON object into *resp, else
 * MCA_ERR_SERVER with the server's error message and code, or
 * MCA_ERR_PARSE.  url only names the request in messages. */
enum mca_err cli_answer_parse(const unsigned char *body, size_t len, long status,
    const char *url, json_t **resp) MCA_WUR;
/* Of the roots a GET /v1/roots answer lists, the one whose SHA-256
 * fingerprint (computed here) is fp, as PEM into out; MCA_ERR_FINGERPRINT
 * when none is. */
enum mca_err cli_roots_pick(const json_t *resp, const char *fp, struct mca_buf *out) MCA_WUR;
/* Every root a GET /v1/roots answer lists, as PEM into out; any entry
 * that is not a certificate fails the whole answer. */
enum mca_err cli_roots_all(const json_t *resp, struct mca_buf *out) MCA_WUR;

/* ---- the workload side: enroll and the agent (workload.c) ----------- */

/* Subject CN of workload CSRs (the CA ignores it: identity comes from
 * the service). */
#define CLI_WORKLOAD_CN "meshca-workload"

/* getopt_long values of the options `enroll` and `agent` share. */
enum cli_wopt {
	CLI_WOPT_FINGERPRINT = 0x200,
	CLI_WOPT_TOKEN_FILE,
	CLI_WOPT_OUT,
	CLI_WOPT_KEY_TYPE,
	CLI_WOPT_DNS,
	CLI_WOPT_IP,
	CLI_WOPT_TTL,
};

#define CLI_WORKLOAD_LONGOPTS \
	{ "fingerprint", required_argument, NULL, CLI_WOPT_FINGERPRINT }, \
	{ "token-file",	 required_argument, NULL, CLI_WOPT_TOKEN_FILE }, \
	{ "out",	 required_argument, NULL, CLI_WOPT_OUT }, \
	{ "key-type",	 required_argument, NULL, CLI_WOPT_KEY_TYPE }, \
	{ "dns",	 required_argument, NULL, CLI_WOPT_DNS }, \
	{ "ip",		 required_argument, NULL, CLI_WOPT_IP }, \
	{ "ttl",	 required_argument, NULL, CLI_WOPT_TTL }

/* Text of those options for usage messages. */
extern const char cli_workload_usage[];

struct cli_workload_opts {
	const char	*fingerprint;
	const char	*token_file;
	const char	*out_dir;
	const char	*ttl;
	int		 key_type;	/* enum ca_key_type; -1: not given */
	struct ca_sans	 sans;		/* for the CSR */
	json_t		*dns;		/* the same, for the request */
	json_t		*ips;
};

void cli_workload_opts_init(struct cli_workload_opts *o);
void cli_workload_opts_clear(struct cli_workload_opts *o);
/* Handles one of CLI_WORKLOAD_LONGOPTS (else the common options).
 * Returns CLI_CONTINUE or an exit status. */
int cli_workload_opt(struct cli_ctx *ctx, struct cli_workload_opts *o, int c, const char *arg,
    const char *cmd, void (*usage)(FILE *));
/* After getopt: no arguments left (argv[optind...]), --fingerprint's
 * syntax, and that it excludes --root-cert. */
int cli_workload_check(const struct cli_ctx *ctx, const struct cli_workload_opts *o,
    const char *cmd, int argc, char **argv);

/* Whether a token can be had: --token-file given or MESHCA_TOKEN set. */
bool cli_token_given(const struct cli_workload_opts *o);
/* The token from --token-file or MESHCA_TOKEN, into a secret buffer. */
enum mca_err cli_token_get(const struct cli_workload_opts *o, struct mca_buf *tok) MCA_WUR;

/* The roots a server is verified against, and what roots.pem gets. */
struct cli_trust {
	char		 tmp[PATH_MAX];	/* the file curl reads the roots from */
	bool		 tmp_made;	/* tmp is a private copy, removed on clear */
	const char	*cainfo;
	struct mca_buf	 roots_pem;
};

void cli_trust_init(struct cli_trust *t);
void cli_trust_clear(struct cli_trust *t);
/* By fingerprint (fp != NULL: GET /v1/roots unverified once, only the
 * root with that SHA-256 accepted), else from the PEM file root_cert. */
enum mca_err cli_trust_setup(struct cli_trust *t, const char *url, const char *fp,
    const char *root_cert) MCA_WUR;
/* The roots the CA serves now (GET /v1/roots), fetched over a connection
 * verified against cainfo: every root listed, PEM, into out. */
enum mca_err cli_trust_refresh(const char *url, const char *cainfo, struct mca_buf *out) MCA_WUR;

/* A certificate the CA issued (answer of /v1/enroll or /v1/renew). */
struct cli_issued {
	struct ca_cert	*leaf;
	struct ca_cert	*chain;
	json_t		*resp;
};

void cli_issued_clear(struct cli_issued *r);
/* Parses r->resp: leaf and chain, URI SAN equal to the announced SPIFFE
 * ID; then checks that leaf and chain verify up to roots_pem (RFC 5280
 * 6.1). */
enum mca_err cli_issued_parse(struct cli_issued *r, const struct mca_buf *roots_pem) MCA_WUR;

/* Enrolls: a new key of o->key_type (default ECDSA P-256), the CA
 * trusted by o->fingerprint or root_cert, POST /v1/enroll with tok, and
 * the credential directory o->out_dir written (cli_creds_write).  res
 * gets the answer. */
enum mca_err cli_enroll(const char *url, const char *root_cert, const struct cli_workload_opts *o,
    const struct mca_buf *tok, struct cli_issued *res) MCA_WUR;

/* ---- the credential directory (creds.c) ----------------------------- */

/* Files of a credential directory, each a symbolic link "live/<name>";
 * "live" links to the current generation "gen-<serial>/". */
#define CLI_CREDS_NFILES 5
extern const char *const cli_creds_files[CLI_CREDS_NFILES];

/* Writes key, certificate, chain, fullchain and roots as a new generation
 * of dir (made 0700 if missing), checks that the key on disk matches the
 * certificate on disk, then switches "live" to it with one rename(2):
 * every path resolved after the switch sees the new pair, every path
 * resolved before it the old one, and no path ever resolves to a key
 * and certificate that do not match.  A directory of plain files (from
 * meshca 0.1) is first adopted into a generation of its own. */
enum mca_err cli_creds_write(const char *dir, const struct ca_key *key, const struct ca_cert *leaf,
    const struct ca_cert *chain, const struct mca_buf *roots_pem) MCA_WUR;

/* ---- rotation hooks (hook.c) ---------------------------------------- */

#define CLI_HOOK_TIMEOUT 60	/* seconds a --exec command may run */

struct cli_hook {
	const char	*exec;		/* run with /bin/sh -c, or NULL */
	int		 sig;		/* 0: none */
	const char	*pid_file;	/* whom sig goes to */
};

/* "HUP", "SIGHUP", "hup" or a number. */
enum mca_err cli_signal_parse(const char *s, int *sig) MCA_WUR;
/* Runs the exec hook (waiting for it, CLI_HOOK_TIMEOUT at most), then
 * sends the signal; both are tried, the first failure is returned. */
enum mca_err cli_hook_run(const struct cli_hook *h, const char *dir, const char *serial) MCA_WUR;

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
cli_cmd_fn cli_cmd_service_update;
cli_cmd_fn cli_cmd_token_create;
cli_cmd_fn cli_cmd_enroll;
cli_cmd_fn cli_cmd_agent;
cli_cmd_fn cli_cmd_certs_list;
cli_cmd_fn cli_cmd_certs_show;
cli_cmd_fn cli_cmd_revoke;
cli_cmd_fn cli_cmd_service_disable;
cli_cmd_fn cli_cmd_service_enable;
cli_cmd_fn cli_cmd_crl_show;
cli_cmd_fn cli_cmd_ocsp_check;
cli_cmd_fn cli_cmd_admin_add;
cli_cmd_fn cli_cmd_admin_list;
cli_cmd_fn cli_cmd_admin_remove;
cli_cmd_fn cli_cmd_admin_token;
cli_cmd_fn cli_cmd_admin_enroll;
cli_cmd_fn cli_cmd_status;
cli_cmd_fn cli_cmd_audit_list;
cli_cmd_fn cli_cmd_audit_verify;
cli_cmd_fn cli_cmd_audit_checkpoint;

/* ---- binary fetches for relying-party commands (fetch.c) ----------- */

struct cli_fetch {
	const char		*url;		/* full http:// or https:// URL */
	const char		*cainfo;	/* roots for https; NULL: the system's */
	const char		*content_type;	/* of body; NULL for a GET */
	const unsigned char	*body;		/* POST body, NULL for a GET */
	size_t			 body_len;
};

/* Fetches f->url into out, whose cap bounds the answer.  MCA_OK only for
 * HTTP 200; MCA_ERR_SERVER with the status otherwise, MCA_ERR_HTTP for
 * transport errors, MCA_ERR_TOOBIG past the cap. */
enum mca_err cli_fetch(const struct cli_fetch *f, long *status, struct mca_buf *out) MCA_WUR;

/* Helpers shared by the remote commands (cmd_service.c). */
/* Resolves the context and fills conn for an admin call; returns an exit
 * status or CLI_CONTINUE. */
int cli_admin_conn(struct cli_ctx *ctx, struct cli_conn *conn);
/* cli_admin_conn, then method path with body (NULL: none): CLI_CONTINUE
 * with the answer in *resp (the caller's to decref), else the exit code
 * once the failure is reported under cmd's name. */
int cli_admin_call(struct cli_ctx *ctx, const char *cmd, const char *method, const char *path,
    const json_t *body, json_t **resp);

#endif
