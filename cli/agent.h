/*
 * `meshca agent`: the state of one agent and the steps of its loop
 * (agent.c); the command, its options and the loop are in cmd_agent.c.
 */
#ifndef MCA_CLI_AGENT_H
#define MCA_CLI_AGENT_H

#include "cli/cli.h"

#define AGENT_STATE_FILE "agent-state.json"

struct agent {
	const struct cli_ctx	*ctx;
	struct cli_workload_opts w;
	struct cli_hook		 hook;
	double			 fraction;	/* of the lifetime before renewing */
	double			 jitter;
	int64_t			 backoff_min;	/* seconds */
	int64_t			 backoff_max;
	bool			 once;
	bool			 reuse_key;
	const char		*metrics_file;	/* --metrics-file, or NULL */

	/* The certificate in the directory now (have == false: none). */
	bool			 have;
	char			 serial[CA_SERIAL_HEX_MAX];
	char			 spiffe_id[CA_MAX_SPIFFE_ID_LEN + 1];
	int64_t			 not_before;
	int64_t			 not_after;
	int64_t			 due;		/* when to renew it */

	/* History, kept in DIR/agent-state.json across runs. */
	int64_t			 next_attempt;
	int64_t			 last_attempt;
	int64_t			 last_success;
	char			 last_error[512];	/* "" after a success */
	unsigned		 failures;	/* in a row */
	unsigned long		 rotations;	/* certificates written */
};

/* Reads the certificate of the directory (DIR/cert.pem); when its serial
 * changed, sets the renewal time anew with a fresh random jitter.  No
 * certificate is not an error: a->have is false. */
enum mca_err cli_agent_load(struct agent *a) MCA_WUR;
/* First certificate, with the token. */
enum mca_err cli_agent_enroll(struct agent *a) MCA_WUR;
/* POST /v1/renew over mTLS with the current credential, the roots
 * refreshed, the new generation written. */
enum mca_err cli_agent_renew(struct agent *a) MCA_WUR;
/* After new credentials: history, log line, hooks. */
void cli_agent_rotated(struct agent *a, const char *event, const char *old_serial);
/* After a failed attempt: history and log line (the detail of rc). */
void cli_agent_failed(struct agent *a, const char *what, enum mca_err rc);

/* DIR/agent-state.json: loaded at start (missing or unreadable: a fresh
 * history), rewritten atomically after every attempt. */
void cli_agent_state_load(struct agent *a);
void cli_agent_state_save(const struct agent *a);
/* The state file as JSON, or NULL. */
json_t *cli_agent_state_read(const char *dir);

/* --metrics-file (agent_metrics.c): the state above as a node-exporter
 * textfile, written atomically (0644) by cli_agent_state_save.  Failures
 * are logged, never fatal: metrics must not stop renewals. */
void cli_agent_metrics_write(const struct agent *a);

#endif
