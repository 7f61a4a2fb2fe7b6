/*
 * meshcad — the meshca certificate authority daemon.
 *
 * Reads the configuration written by `meshca init`, opens the database
 * and the intermediate CA (never the root key), serves the HTTPS API
 * until SIGTERM or SIGINT, then stops accepting and lets requests in
 * flight finish.
 */
#include "api/api.h"
#include "api/credential.h"
#include "api/metrics.h"
#include "api/notify.h"
#include "api/reload.h"
#include "api/sandbox.h"
#include "api/signer.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/config.h"
#include "ca/common/fileio.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define STOP_GRACE_SECONDS 10

struct options {
	const char	*config;
	const char	*listen;
	const char	*port_file;
	const char	*log_format;
	const char	*log_level;
	const char	*user;
	int		 signer_fd;	/* >= 0: run as the signer process (api/signer.h) */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: meshcad [--config FILE] [--listen ADDR:PORT] [--port-file FILE]\n"
	    "               [--log-format logfmt|json] [--log-level debug|info|warn|error]\n"
	    "\n"
	    "The meshca certificate authority: an HTTPS API that enrolls workloads\n"
	    "and issues short-lived SPIFFE X.509 identities.\n"
	    "\n"
	    "  -c, --config FILE     configuration written by `meshca init`\n"
	    "                        (default: $MESHCA_CONFIG)\n"
	    "  -l, --listen ADDR:PORT  override `listen` (port 0 picks a free port)\n"
	    "      --port-file FILE  write the bound port to FILE once serving\n"
	    "      --log-format F    logfmt (default) or json, on stderr\n"
	    "      --log-level L     debug, info (default), warn, error\n"
	    "  -u, --user NAME       account to run as when started as root\n"
	    "                        (default: `user`, else meshca if it exists)\n"
	    "  -h, --help            this text\n"
	    "  -V, --version         print the version\n"
	    "\n"
	    "Signals: SIGTERM and SIGINT stop gracefully.  SIGHUP re-reads the\n"
	    "configuration and applies log_format, log_level, default_ttl, min_ttl,\n"
	    "token_ttl, admin_max_ttl, crl_validity and ocsp_validity (all or none: a bad\n"
	    "value keeps the running settings); other keys need a restart.  Services and\n"
	    "their policy live in the database and apply at once, without a reload.\n");
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "user", required_argument, NULL, 'u' },
		{ "signer-fd", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->signer_fd = -1;
	o->config = getenv("MESHCA_CONFIG");
	while ((ch = getopt_long(argc, argv, "c:l:u:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'p': o->port_file = optarg; break;
		case 'f': o->log_format = optarg; break;
		case 'L': o->log_level = optarg; break;
		case 'u': o->user = optarg; break;
		case 'S': o->signer_fd = strcmp(optarg, "3") == 0 ? API_SIGNER_FD : -2; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("meshcad %s\n", MESHCA_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "meshcad: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->signer_fd == -2) {
		fprintf(stderr, "meshcad: --signer-fd is internal (the signer process)\n");
		return -1;
	}
	if (o->config == NULL) {
		fprintf(stderr, "meshcad: no configuration: pass --config FILE or set MESHCA_CONFIG\n");
		return -1;
	}
	return 0;
}

/* A path setting, relative paths taken from the config file's directory. */
static enum mca_err
config_path(const struct mca_config *cfg, const char *key, char out[PATH_MAX])
{
	const char *v = mca_config_get(cfg, key);

	if (v == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "configuration lacks '%s'", key);
	if (v[0] == '/') {
		if (snprintf(out, PATH_MAX, "%s", v) >= PATH_MAX)
			return mca_err_set(MCA_ERR_CONFIG, "%s: path too long", key);
		return MCA_OK;
	}
	return mca_path_join(out, PATH_MAX, mca_config_dir(cfg), v);
}

/* log_format and log_level, the command line winning over the file. */
static enum mca_err
logging_parse(const struct mca_config *cfg, const struct options *o, enum mca_log_level *level,
    bool *json)
{
	const char *fmt = o->log_format ? o->log_format : mca_config_get(cfg, "log_format");
	const char *lvl = o->log_level ? o->log_level : mca_config_get(cfg, "log_level");

	*level = MCA_LOG_INFO;
	*json = false;
	if (fmt != NULL) {
		if (strcmp(fmt, "json") == 0)
			*json = true;
		else if (strcmp(fmt, "logfmt") != 0)
			return mca_err_set(MCA_ERR_CONFIG, "log_format must be logfmt or json, not '%s'", fmt);
	}
	if (lvl != NULL && mca_log_level_parse(lvl, level) != MCA_OK)
		return MCA_ERR_CONFIG;
	return MCA_OK;
}

static enum mca_err
setup_logging(const struct mca_config *cfg, const struct options *o)
{
	enum mca_log_level level;
	bool json;
	enum mca_err rc;

	if ((rc = logging_parse(cfg, o, &level, &json)) != MCA_OK)
		return rc;
	mca_log_setup(level, json);
	return MCA_OK;
}

/* public_url = https://ca.example:8443 makes issued certificates point
 * at <url>/v1/crl, <url>/v1/ocsp and <url>/v1/intermediate.crt. */
static enum mca_err
setup_urls(const struct mca_config *cfg, struct api_ctx *ctx)
{
	const char *url = mca_config_get(cfg, "public_url");
	size_t n;

	if (url == NULL)
		return MCA_OK;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || n > 500 ||
	    strpbrk(url, " \"<>\\^`{|}") != NULL)
		return mca_err_set(MCA_ERR_CONFIG, "public_url must be an http:// or https:// URL of at most 500 bytes");
	snprintf(ctx->crl_url, sizeof(ctx->crl_url), "%.*s/v1/crl", (int)n, url);
	snprintf(ctx->ocsp_url, sizeof(ctx->ocsp_url), "%.*s/v1/ocsp", (int)n, url);
	snprintf(ctx->ca_issuers_url, sizeof(ctx->ca_issuers_url), "%.*s/v1/intermediate.crt", (int)n, url);
	return MCA_OK;
}

/* The intermediate: its key stays in the signer process (api/signer.h),
 * started here, before the database is open and before any thread. */
static enum mca_err
open_signer(const struct options *o, const char *icert, const char *root, struct api_ctx *ctx)
{
	return api_signer_start(o->config, o->log_format, o->log_level, icert, root, &ctx->signer);
}

static enum mca_err
setup_ctx(const struct mca_config *cfg, const struct options *o, struct api_ctx *ctx)
{
	char db_path[PATH_MAX], icert[PATH_MAX], ikey[PATH_MAX], root[PATH_MAX];
	const char *td = mca_config_get(cfg, "trust_domain");
	struct api_ttls ttls;
	enum mca_err rc;

	if (td == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "configuration lacks 'trust_domain'");
	if ((rc = ca_trust_domain_check(td)) != MCA_OK)
		return rc;
	snprintf(ctx->trust_domain, sizeof(ctx->trust_domain), "%s", td);
	if ((rc = api_ttls_load(cfg, &ttls)) != MCA_OK)
		return rc;
	api_ttls_apply(ctx, &ttls);
	if ((rc = api_limits_load(cfg, &ctx->limits)) != MCA_OK ||
	    (rc = api_ratelimit_new(ctx->limits.bad_token_burst, ctx->limits.bad_token_refill * 1000000,
	    API_RATELIMIT_SLOTS, &ctx->ratelimit)) != MCA_OK)
		return rc;
	if ((rc = setup_urls(cfg, ctx)) != MCA_OK ||
	    (rc = config_path(cfg, "database", db_path)) != MCA_OK ||
	    (rc = config_path(cfg, "intermediate_cert", icert)) != MCA_OK ||
	    (rc = config_path(cfg, "intermediate_key", ikey)) != MCA_OK ||
	    (rc = config_path(cfg, "root_cert", root)) != MCA_OK)
		return rc;
	if ((rc = open_signer(o, icert, root, ctx)) != MCA_OK ||
	    (rc = api_leaf_reply_init(ctx)) != MCA_OK ||
	    (rc = db_open(db_path, &ctx->db)) != MCA_OK ||
	    (rc = api_readers_open(ctx, db_path)) != MCA_OK)
		return rc;
	return api_auth_init(ctx);
}

static enum mca_err
open_tls(const struct mca_config *cfg, struct api_ctx *ctx, struct api_tls **out)
{
	char kpath[PATH_MAX], cpath[PATH_MAX];
	int64_t ttl = 0;
	enum mca_err rc;

	if ((rc = config_path(cfg, "server_key", kpath)) != MCA_OK ||
	    (rc = config_path(cfg, "server_cert", cpath)) != MCA_OK ||
	    (rc = mca_config_duration(cfg, "server_ttl", 0, &ttl)) != MCA_OK)
		return rc;
	if (ttl != 0 && ttl < 2)
		return mca_err_set(MCA_ERR_CONFIG, "server_ttl must be at least 2s");
	return api_tls_open(ctx, cpath, kpath, ttl, out);
}

static enum mca_err
write_port_file(const char *path, uint16_t port)
{
	char text[16];
	int n = snprintf(text, sizeof(text), "%u\n", port);

	return mca_file_write_atomic(path, text, (size_t)n, 0644);
}

static void
log_ready(const struct api_ctx *ctx, const struct api_listen *l, uint16_t port)
{
	char fp[CA_FINGERPRINT_HEX_LEN], portstr[8], exp[MCA_TIME_LEN];

	ca_cert_fingerprint(ca_signer_root(ctx->signer), fp);
	mca_time_format(ca_cert_not_after(ca_signer_cert(ctx->signer)), exp);
	snprintf(portstr, sizeof(portstr), "%u", port);
	mca_log(MCA_LOG_INFO, "meshcad serving", "version", MESHCA_VERSION, "address", l->host,
	    "port", portstr, "trust_domain", ctx->trust_domain, "root_fingerprint", fp,
	    "intermediate_not_after", exp, (const char *)NULL);
}

/* Blocks SIGINT/SIGTERM/SIGHUP in every thread (MHD's inherit the mask)
 * so that the main thread alone receives them in sigwait(). */
static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * SIGHUP: read the configuration file again and apply what is safe to
 * change under a running server (api/reload.h: logging, TTLs, CRL and
 * OCSP validity; flags given on the command line still win), all or
 * nothing.  A file that does not parse, or one bad value, leaves every
 * running setting alone; keys that need a restart are named in the log.
 */
static void
reload(const struct options *o, const struct mca_config *started, struct api_ctx *ctx)
{
	struct mca_config *cfg = NULL;
	enum mca_log_level level;
	const char *fmt, *lvl;
	bool json;
	enum mca_err rc;

	api_notify_reloading();
	if ((rc = mca_config_load(o->config, &cfg)) != MCA_OK ||
	    (rc = logging_parse(cfg, o, &level, &json)) != MCA_OK ||
	    (rc = api_reload(ctx, started, cfg)) != MCA_OK) {
		mca_log(MCA_LOG_ERROR, "reload failed, running settings kept", "error", mca_errname(rc),
		    "detail", mca_err_detail(), (const char *)NULL);
	} else {
		mca_log_setup(level, json);
		fmt = o->log_format ? o->log_format : mca_config_get(cfg, "log_format");
		lvl = o->log_level ? o->log_level : mca_config_get(cfg, "log_level");
		mca_log(MCA_LOG_INFO, "meshcad reloaded", "log_format", fmt ? fmt : "logfmt",
		    "log_level", lvl ? lvl : "info", (const char *)NULL);
	}
	mca_config_free(cfg);
	api_notify_ready();
}

static const char *
signal_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
}

static int
serve(const struct mca_config *cfg, const struct options *o, struct api_ctx *ctx)
{
	struct api_listen l;
	struct api_server *srv = NULL;
	struct api_tls *tls = NULL;
	struct api_watchdog *wd = NULL;
	struct api_metrics *metrics = NULL;
	const char *listen = o->listen ? o->listen : mca_config_get(cfg, "listen");
	sigset_t set;
	enum mca_err rc;
	int sig = 0;

	block_signals(&set);
	if ((rc = api_listen_parse(listen ? listen : "127.0.0.1:8443", &l)) != MCA_OK ||
	    (rc = open_tls(cfg, ctx, &tls)) != MCA_OK ||
	    (rc = api_server_start(ctx, &l, &srv)) != MCA_OK ||
	    (rc = api_metrics_start(ctx, cfg, tls, &metrics)) != MCA_OK)
		goto out;
	if (o->port_file != NULL && (rc = write_port_file(o->port_file, api_server_port(srv))) != MCA_OK)
		goto out;
	log_ready(ctx, &l, api_server_port(srv));
	api_notify_ready();
	if ((rc = api_watchdog_start(ctx, &wd)) != MCA_OK)
		goto out;
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		reload(o, cfg, ctx);
	api_notify_stopping();
	mca_log(MCA_LOG_INFO, "meshcad stopping", "signal", signal_name(sig), (const char *)NULL);
	api_server_stop(srv, STOP_GRACE_SECONDS);
	srv = NULL;
out:
	if (srv != NULL)
		api_server_stop(srv, 0);
	api_metrics_stop(metrics);
	api_watchdog_stop(wd);
	api_tls_free(tls);
	if (rc != MCA_OK)
		fprintf(stderr, "meshcad: %s: %s\n", mca_strerror(rc), mca_err_detail());
	return rc == MCA_OK ? 0 : 1;
}

/* `meshcad --signer-fd 3`: this process is the signer child; it exits
 * here with the child's status. */
static enum mca_err
signer_mode(struct mca_config *cfg, const struct options *o)
{
	int status;

	if (o->signer_fd < 0)
		return MCA_OK;
	status = api_signer_main(cfg, o->signer_fd);
	mca_config_free(cfg);
	exit(status);
}

/* Before any thread (api/sandbox.h): the user switch, no_new_privs and
 * Landlock; read-write only where meshcad writes after start-up. */
static enum mca_err
sandbox(const struct mca_config *cfg, const struct options *o)
{
	static char db[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	struct api_sandbox_paths p = { 0 };
	const char *user = NULL;
	enum mca_err rc;

	if ((rc = config_path(cfg, "database", db)) != MCA_OK ||
	    (rc = config_path(cfg, "server_cert", cert)) != MCA_OK ||
	    (rc = config_path(cfg, "server_key", key)) != MCA_OK ||
	    (rc = api_sandbox_user(cfg, o->user, &user)) != MCA_OK)
		return rc;
	p.config = o->config;
	p.rw[0] = db;
	p.rw[1] = cert;
	p.rw[2] = key;
	p.rw[3] = o->port_file;
	return api_sandbox_network(user, &p);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct mca_config *cfg = NULL;
	struct api_ctx ctx;
	sigset_t sigs;
	enum mca_err rc;
	int status = 1;

	memset(&ctx, 0, sizeof(ctx));
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	/* Before any thread starts (revocation, audit): a thread that did not
	 * block them would take a second SIGTERM, or an early SIGHUP, and die. */
	block_signals(&sigs);
	if ((rc = ca_global_init()) != MCA_OK ||
	    (rc = mca_config_load(o.config, &cfg)) != MCA_OK ||
	    (rc = setup_logging(cfg, &o)) != MCA_OK ||
	    (rc = signer_mode(cfg, &o)) != MCA_OK ||
	    (rc = setup_ctx(cfg, &o, &ctx)) != MCA_OK ||
	    (rc = sandbox(cfg, &o)) != MCA_OK ||
	    (rc = api_revocation_start(&ctx, cfg)) != MCA_OK ||
	    (rc = api_audit_start(&ctx, cfg)) != MCA_OK) {
		fprintf(stderr, "meshcad: %s: %s\n", mca_strerror(rc), mca_err_detail());
		goto out;
	}
	status = serve(cfg, &o, &ctx);
	if (status == 0)
		mca_log(MCA_LOG_INFO, "meshcad stopped", (const char *)NULL);
out:
	api_audit_stop(&ctx);		/* after the server: its last checkpoint seals the run */
	api_revocation_stop(&ctx);	/* after the server: handlers use it */
	api_auth_free(&ctx);
	api_ratelimit_free(ctx.ratelimit);
	api_leaf_reply_free(&ctx);
	ca_signer_free(ctx.signer);	/* closes the socket: the signer process exits */
	api_signer_wait();
	api_readers_close(&ctx);
	db_close(ctx.db);
	mca_config_free(cfg);
	return status;
}
