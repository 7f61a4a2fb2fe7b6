/*
 * `meshca agent --metrics-file PATH`: the agent's state as a Prometheus
 * text file (exposition format 0.0.4) for node-exporter's textfile
 * collector (--collector.textfile.directory), rewritten after every
 * attempt.  The file is written to a temporary name and renamed, mode
 * 0644, so the collector never reads half a file (it reads *.prom files
 * only: name it so).
 *
 * Every series carries dir="<--out>", so that several agents on one node
 * (one file each) never collide.  Timestamps are Unix seconds; 0 means
 * "never" (no success yet) or "no certificate yet".
 */
#include "cli/agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ca/common/fileio.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define AGENT_METRICS_MAX	(16 * 1024)

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void
label_escape(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; in != NULL && *in != '\0' && o + 3 < size; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void
put(struct mca_buf *b, bool *ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
put(struct mca_buf *b, bool *ok, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) || mca_buf_append(b, line, (size_t)n) != MCA_OK)
		*ok = false;
}

/* One gauge or counter with the dir label only. */
static void
series(struct mca_buf *b, bool *ok, const char *name, const char *type, const char *help,
    const char *dir, long long value)
{
	put(b, ok, "# HELP %s %s\n# TYPE %s %s\n%s{dir=\"%s\"} %lld\n", name, help, name, type,
	    name, dir, value);
}

static bool
agent_metrics_render(const struct agent *a, struct mca_buf *b)
{
	char dir[2 * PATH_MAX], id[2 * sizeof(a->spiffe_id)];
	bool ok = true;

	label_escape(a->w.out_dir, dir, sizeof(dir));
	label_escape(a->spiffe_id, id, sizeof(id));
	put(b, &ok, "# HELP meshca_agent_certificate_info The certificate the agent manages "
	    "(absent before the first enrollment).\n# TYPE meshca_agent_certificate_info gauge\n");
	if (a->have)
		put(b, &ok, "meshca_agent_certificate_info{dir=\"%s\",spiffe_id=\"%s\",serial=\"%s\"} 1\n",
		    dir, id, a->serial);
	series(b, &ok, "meshca_agent_certificate_not_after_timestamp_seconds", "gauge",
	    "notAfter of the managed certificate (0: none yet).", dir,
	    a->have ? (long long)a->not_after : 0);
	series(b, &ok, "meshca_agent_certificate_not_before_timestamp_seconds", "gauge",
	    "notBefore of the managed certificate (0: none yet).", dir,
	    a->have ? (long long)a->not_before : 0);
	series(b, &ok, "meshca_agent_last_success_timestamp_seconds", "gauge",
	    "When the agent last wrote a new certificate (0: never).", dir,
	    (long long)a->last_success);
	series(b, &ok, "meshca_agent_last_attempt_timestamp_seconds", "gauge",
	    "When the agent last tried to enroll or renew (0: never).", dir,
	    (long long)a->last_attempt);
	series(b, &ok, "meshca_agent_next_attempt_timestamp_seconds", "gauge",
	    "When the agent plans its next attempt (0: none planned).", dir,
	    (long long)a->next_attempt);
	series(b, &ok, "meshca_agent_consecutive_failures", "gauge",
	    "Failed attempts since the last success.", dir, (long long)a->failures);
	series(b, &ok, "meshca_agent_renewals_total", "counter",
	    "Certificates the agent has written (enrollments and renewals).", dir,
	    (long long)a->rotations);
	series(b, &ok, "meshca_agent_metrics_updated_timestamp_seconds", "gauge",
	    "When the agent wrote this file.", dir, (long long)mca_now());
	return ok;
}

void
cli_agent_metrics_write(const struct agent *a)
{
	struct mca_buf b;

	if (a->metrics_file == NULL)
		return;
	mca_buf_init(&b, AGENT_METRICS_MAX, false);
	if (!agent_metrics_render(a, &b))
		mca_log(MCA_LOG_WARN, "agent metrics exceed their size bound, not written",
		    "file", a->metrics_file, (const char *)NULL);
	else if (mca_file_write_atomic(a->metrics_file, b.data, b.len, 0644) != MCA_OK)
		mca_log(MCA_LOG_WARN, "cannot write the agent metrics file", "file", a->metrics_file,
		    "detail", mca_err_detail(), (const char *)NULL);
	mca_buf_free(&b);
}
