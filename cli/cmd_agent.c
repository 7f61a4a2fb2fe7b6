/*
 * `meshca agent`: keeps one workload's certificate fresh.
 *
 * First start (no certificate in --out): enroll with the token from
 * --token-file, trusting the CA by --fingerprint or --root-cert.  From
 * then on: renew over mTLS with the certificate itself once --renew-at of
 * its lifetime has passed (less a random jitter), rekeying unless
 * --reuse-key; on failure retry with capped exponential backoff while the
 * current files stay in place; after every new certificate run the hooks.
 * An expired certificate that cannot be renewed ends the agent with
 * CLI_EXIT_EXPIRED (3) and a loud message instead of a silent loop.
 *
 * `--once` does one pass, for cron and systemd timers: 0 renewed or not
 * yet due, 1 failed but the certificate is still valid, 3 expired.
 * `meshca agent status` shows what the agent knows (agent-state.json).
 *
 * SIGTERM and SIGINT are blocked and taken with sigtimedwait() while the
 * agent sleeps: it stops between steps, never halfway through writing.
 */
#include "cli/agent.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/common/fileio.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"
#include "cli/schedule.h"

#define AGENT_MAX_SLEEP 3600	/* wake at least hourly: clocks jump, laptops sleep */

enum {
	O_RENEW_AT = 0x300, O_JITTER, O_BACKOFF_MIN, O_BACKOFF_MAX, O_EXEC, O_SIGNAL,
	O_PID_FILE, O_ONCE, O_REUSE_KEY, O_METRICS_FILE
};

static void
agent_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s agent --url URL --out DIR [--token-file FILE (--fingerprint SHA256 |\n"
	    "                --root-cert FILE)] [options]\n"
	    "       %s agent status [--out DIR] [--json]\n\n"
	    "Keeps this workload's certificate in DIR renewed.  With no certificate in DIR\n"
	    "it enrolls first with the one-time token; afterwards it renews over mTLS\n"
	    "with the certificate itself (POST /v1/renew) and never needs the token again.\n\n"
	    "Agent options:\n"
	    "  --renew-at F          renew when this share of the lifetime has passed\n"
	    "                        (0.75, 75%% or 3/4; default 2/3)\n"
	    "  --jitter F            renew up to this share of the lifetime earlier, at\n"
	    "                        random (default 0.1; 0 for none)\n"
	    "  --backoff-min D       first retry delay after a failure (default 5s)\n"
	    "  --backoff-max D       longest retry delay (default 5m)\n"
	    "  --reuse-key           keep the key (default: a new key every renewal)\n"
	    "  --exec CMD            after every new certificate, run CMD with /bin/sh -c\n"
	    "                        (env MESHCA_AGENT_DIR, MESHCA_AGENT_SERIAL; %ds at most)\n"
	    "  --signal SIG --pid-file FILE\n"
	    "                        after every new certificate, send SIG (HUP, USR1...)\n"
	    "                        to the process whose id FILE holds\n"
	    "  --once                one pass and exit (cron, systemd timers)\n"
	    "  --metrics-file PATH   after every attempt, write the agent's state there\n"
	    "                        as Prometheus text for node-exporter's textfile\n"
	    "                        collector (name it *.prom; replaced atomically, 0644)\n"
	    "  --json                log lines in JSON (status: print JSON)\n\n"
	    "Enrollment options (first start only; --key-type also for rekeying):\n%s\n"
	    "Exit status: 0 stopped by SIGTERM/SIGINT, or (--once) renewed or not yet due;\n"
	    "1 failure (--once: the certificate is still valid); 2 usage error;\n"
	    "3 the certificate expired and cannot be renewed.\n\n%s",
	    CLI_PROG, CLI_PROG, CLI_HOOK_TIMEOUT, cli_workload_usage, cli_global_usage);
}

/* ---- options -------------------------------------------------------- */

static int
agent_opt(struct cli_ctx *ctx, struct agent *a, int c, const char *arg)
{
	switch (c) {
	case O_RENEW_AT:
		if (sched_fraction_parse(arg, &a->fraction) != MCA_OK)
			return cli_usage_error("agent", "--renew-at: %s", mca_err_detail());
		break;
	case O_JITTER:
		if (strcmp(arg, "0") == 0)
			a->jitter = 0.0;
		else if (sched_fraction_parse(arg, &a->jitter) != MCA_OK)
			return cli_usage_error("agent", "--jitter: %s", mca_err_detail());
		break;
	case O_BACKOFF_MIN:	return cli_opt_duration("agent", "backoff-min", arg, &a->backoff_min);
	case O_BACKOFF_MAX:	return cli_opt_duration("agent", "backoff-max", arg, &a->backoff_max);
	case O_EXEC:		a->hook.exec = arg; break;
	case O_PID_FILE:	a->hook.pid_file = arg; break;
	case O_ONCE:		a->once = true; break;
	case O_REUSE_KEY:	a->reuse_key = true; break;
	case O_METRICS_FILE:
		if (arg[0] == '\0' || strlen(arg) >= PATH_MAX)
			return cli_usage_error("agent", "--metrics-file: a path of 1 to %d bytes",
			    PATH_MAX - 1);
		a->metrics_file = arg;
		break;
	case O_SIGNAL:
		if (cli_signal_parse(arg, &a->hook.sig) != MCA_OK)
			return cli_usage_error("agent", "--signal: %s", mca_err_detail());
		break;
	default:
		return cli_workload_opt(ctx, &a->w, c, arg, "agent", agent_usage);
	}
	return CLI_CONTINUE;
}

static int
agent_parse(struct cli_ctx *ctx, struct agent *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "renew-at",	 required_argument, NULL, O_RENEW_AT },
		{ "jitter",	 required_argument, NULL, O_JITTER },
		{ "backoff-min", required_argument, NULL, O_BACKOFF_MIN },
		{ "backoff-max", required_argument, NULL, O_BACKOFF_MAX },
		{ "exec",	 required_argument, NULL, O_EXEC },
		{ "signal",	 required_argument, NULL, O_SIGNAL },
		{ "pid-file",	 required_argument, NULL, O_PID_FILE },
		{ "once",	 no_argument,	    NULL, O_ONCE },
		{ "reuse-key",	 no_argument,	    NULL, O_REUSE_KEY },
		{ "metrics-file", required_argument, NULL, O_METRICS_FILE },
		CLI_WORKLOAD_LONGOPTS,
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if ((ret = agent_opt(ctx, a, c, optarg)) != CLI_CONTINUE)
			return ret;
	if (a->backoff_min > a->backoff_max)
		return cli_usage_error("agent", "--backoff-min exceeds --backoff-max");
	if ((a->hook.sig != 0) != (a->hook.pid_file != NULL))
		return cli_usage_error("agent", "--signal and --pid-file go together");
	return cli_workload_check(ctx, &a->w, "agent", argc, argv);
}

/* ---- the loop ------------------------------------------------------- */

/* Sleeps until `until` (Unix seconds); true when SIGTERM or SIGINT came. */
static bool
agent_sleep(const sigset_t *stop, int64_t until)
{
	struct timespec ts;
	int64_t now, left;
	int sig;

	for (;;) {
		now = mca_now();
		left = until > now ? until - now : 0;
		ts.tv_sec = (time_t)(left < AGENT_MAX_SLEEP ? left : AGENT_MAX_SLEEP);
		ts.tv_nsec = 0;
		if ((sig = sigtimedwait(stop, NULL, &ts)) > 0) {
			mca_log(MCA_LOG_INFO, "agent stopping", "signal",
			    sig == SIGINT ? "SIGINT" : "SIGTERM", (const char *)NULL);
			return true;
		}
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (left == 0)
			return false;
	}
}

/* A failed attempt: log it, schedule the next one.  Returns the exit
 * status for --once, or CLI_CONTINUE with *wake set. */
static int
agent_retry(struct agent *a, const char *what, enum mca_err rc, int64_t *wake)
{
	char in[MCA_TIME_LEN];
	int64_t now = mca_now(), delay;

	cli_agent_failed(a, what, rc);
	delay = sched_backoff(a->failures, a->backoff_min, a->backoff_max);
	a->next_attempt = a->have ? sched_retry_time(now, a->not_after, delay) : now + delay;
	cli_agent_state_save(a);
	mca_duration_format(a->next_attempt - now, in);
	mca_log(MCA_LOG_INFO, "will retry", "in", in, "keeping", a->have ? a->serial : NULL,
	    (const char *)NULL);
	if (a->once)
		return CLI_EXIT_FAIL;
	*wake = a->next_attempt;
	return CLI_CONTINUE;
}

/* The certificate expired: a token, if one is given, is the last chance. */
static int
agent_expired(struct agent *a, int64_t *wake)
{
	char exp[MCA_TIME_LEN], old[CA_SERIAL_HEX_MAX];
	enum mca_err rc;

	snprintf(old, sizeof(old), "%s", a->serial);
	if (cli_token_given(&a->w)) {
		if ((rc = cli_agent_enroll(a)) == MCA_OK) {
			cli_agent_rotated(a, "certificate re-enrolled", old);
			*wake = 0;
			return a->once ? CLI_EXIT_OK : CLI_CONTINUE;
		}
		cli_agent_failed(a, "enroll after expiry", rc);
	}
	mca_time_format(a->not_after, exp);
	snprintf(a->last_error, sizeof(a->last_error), "certificate %s expired at %s and "
	    "cannot be renewed", a->serial, exp);
	a->next_attempt = 0;
	cli_agent_state_save(a);
	mca_log(MCA_LOG_ERROR, "certificate expired and cannot be renewed", "serial", a->serial,
	    "not_after", exp, "dir", a->w.out_dir, (const char *)NULL);
	cli_warn("agent: the certificate in %s expired at %s and cannot be renewed: mint a "
	    "new token (meshca token create) and start the agent with --token-file", a->w.out_dir,
	    exp);
	return CLI_EXIT_EXPIRED;
}

/* No certificate yet: enroll with the token. */
static int
agent_first(struct agent *a, int64_t *wake)
{
	enum mca_err rc;

	if (!cli_token_given(&a->w))
		return cli_usage_error("agent", "no certificate in %s yet: the first start needs "
		    "--token-file FILE (or MESHCA_TOKEN)", a->w.out_dir);
	if (a->w.fingerprint == NULL && a->ctx->root_cert == NULL)
		return cli_usage_error("agent", "the first start needs --fingerprint or --root-cert");
	if ((rc = cli_agent_enroll(a)) != MCA_OK)
		return agent_retry(a, "enroll", rc, wake);
	cli_agent_rotated(a, "certificate enrolled", NULL);
	*wake = 0;
	return a->once ? CLI_EXIT_OK : CLI_CONTINUE;
}

/* One step.  Returns an exit status, or CLI_CONTINUE after setting
 * *wake to when the next step is due (0: at once). */
static int
agent_step(struct agent *a, int64_t *wake)
{
	char old[CA_SERIAL_HEX_MAX], due[MCA_TIME_LEN];
	enum mca_err rc;

	if ((rc = cli_agent_load(a)) != MCA_OK)
		return cli_fail("agent: reading the certificate", rc);
	if (!a->have)
		return agent_first(a, wake);
	if (mca_now() < a->due) {
		a->next_attempt = a->due;
		cli_agent_state_save(a);
		if (a->once) {
			mca_time_format(a->due, due);
			mca_log(MCA_LOG_INFO, "renewal not yet due", "serial", a->serial,
			    "next_renewal", due, (const char *)NULL);
			return CLI_EXIT_OK;
		}
		*wake = a->due;
		return CLI_CONTINUE;
	}
	snprintf(old, sizeof(old), "%s", a->serial);
	if ((rc = cli_agent_renew(a)) == MCA_OK) {
		cli_agent_rotated(a, "certificate rotated", old);
		*wake = 0;
		return a->once ? CLI_EXIT_OK : CLI_CONTINUE;
	}
	if (mca_now() >= a->not_after) {
		cli_agent_failed(a, "renew", rc);
		return agent_expired(a, wake);
	}
	return agent_retry(a, "renew", rc, wake);
}

static int
agent_run(struct agent *a, const sigset_t *stop)
{
	int64_t wake = 0;
	int ret;

	mca_log(MCA_LOG_INFO, "agent started", "dir", a->w.out_dir, "url", a->ctx->url,
	    (const char *)NULL);
	for (;;) {
		if ((ret = agent_step(a, &wake)) != CLI_CONTINUE)
			return ret;
		if (agent_sleep(stop, wake))
			return CLI_EXIT_OK;
	}
}

/* ---- status --------------------------------------------------------- */

static void
status_usage(FILE *fp)
{
	fprintf(fp, "usage: %s agent status [--out DIR] [--json]\n\n"
	    "Shows the agent's certificate (identity, serial, expiry) and its last attempt,\n"
	    "last success and last error, from DIR (default \".\").\n"
	    "Exit status: 0 the certificate is valid, 1 none or unreadable, 3 expired.\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static json_t *
status_build(const char *dir, int *ret)
{
	static const char *const keep[] = { "next_attempt", "last_attempt", "last_success",
	    "last_error", "failures", "rotations", "pid", NULL };
	char path[PATH_MAX], serial[CA_SERIAL_HEX_MAX], nb[MCA_TIME_LEN], na[MCA_TIME_LEN];
	struct ca_cert *c = NULL;
	json_t *o, *st = cli_agent_state_read(dir);
	bool expired;

	if (mca_path_join(path, sizeof(path), dir, "cert.pem") != MCA_OK ||
	    ca_cert_load(path, &c) != MCA_OK) {
		json_decref(st);
		*ret = cli_fail("agent status", mca_err_set(MCA_ERR_IO, "no readable certificate "
		    "in %s: %s", dir, mca_err_detail()));
		return NULL;
	}
	ca_cert_serial_hex(c, serial);
	mca_time_format(ca_cert_not_before(c), nb);
	mca_time_format(ca_cert_not_after(c), na);
	expired = mca_now() >= ca_cert_not_after(c);
	o = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s}", "dir", dir, "spiffe_id", ca_cert_uri(c),
	    "serial", serial, "not_before", nb, "not_after", na,
	    "status", expired ? "expired" : "valid");
	ca_cert_free(c);
	for (size_t i = 0; o != NULL && keep[i] != NULL; i++)
		(void)json_object_set(o, keep[i], st != NULL && json_object_get(st, keep[i]) != NULL ?
		    json_object_get(st, keep[i]) : json_null());
	json_decref(st);
	*ret = expired ? CLI_EXIT_EXPIRED : CLI_EXIT_OK;
	return o;
}

static int
agent_status(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char *const keys[] = { "dir", "spiffe_id", "serial", "not_before",
	    "not_after", "status", "next_attempt", "last_attempt", "last_success", "last_error",
	    "failures", "rotations", "pid", NULL };
	static const struct option lo[] = {
		{ "out", required_argument, NULL, CLI_WOPT_OUT },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	const char *dir = ".";
	json_t *o;
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == CLI_WOPT_OUT)
			dir = optarg;
		else if ((ret = cli_opt_common(ctx, c, optarg, status_usage)) != CLI_CONTINUE)
			return ret;
	}
	if (optind < argc)
		return cli_usage_error("agent status", "unexpected argument '%.64s'", argv[optind]);
	if ((o = status_build(dir, &ret)) == NULL)
		return ret;
	if ((ctx->json ? cli_print_json(o) : cli_print_fields(o, keys)) != MCA_OK)
		ret = cli_fail("agent status", MCA_ERR_IO);
	json_decref(o);
	return ret;
}

/* ---- the command ---------------------------------------------------- */

static int
agent_setup(struct cli_ctx *ctx, struct agent *a)
{
	enum mca_err rc;

	if ((rc = cli_ctx_resolve(ctx)) != MCA_OK)
		return cli_fail("configuration", rc);
	if (ctx->url == NULL)
		return cli_usage_error("agent", "the agent needs --url (or MESHCA_URL)");
	if (!mca_file_exists(a->w.out_dir) && (rc = mca_mkdir_p(a->w.out_dir, 0700)) != MCA_OK)
		return cli_fail("agent", rc);
	mca_log_setup(MCA_LOG_INFO, ctx->json);
	cli_agent_state_load(a);
	return CLI_CONTINUE;
}

int
cli_cmd_agent(struct cli_ctx *ctx, int argc, char **argv)
{
	struct agent a;
	sigset_t stop, old;
	int ret;

	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return agent_status(ctx, argc - 1, argv + 1);
	memset(&a, 0, sizeof(a));
	cli_workload_opts_init(&a.w);
	a.ctx = ctx;
	a.fraction = SCHED_DEFAULT_FRACTION;
	a.jitter = SCHED_DEFAULT_JITTER;
	a.backoff_min = SCHED_DEFAULT_BACKOFF_MIN;
	a.backoff_max = SCHED_DEFAULT_BACKOFF_MAX;
	if ((ret = agent_parse(ctx, &a, argc, argv)) != CLI_CONTINUE ||
	    (ret = agent_setup(ctx, &a)) != CLI_CONTINUE)
		goto out;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, &old);
	ret = agent_run(&a, &stop);
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	cli_workload_opts_clear(&a.w);
	return ret;
}
