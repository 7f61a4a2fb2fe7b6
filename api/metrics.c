/*
 * GET /metrics on the metrics listener: Prometheus text format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Counters live in fixed tables under one mutex: a scrape copies them, so
 * a slow scraper never holds up a request.  Label values come from our own
 * route table, a short list of methods and the public error codes, which
 * keeps the number of series bounded whatever clients send.
 */
#include "api/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/api.h"
#include "ca/common/config.h"
#include "ca/common/log.h"
#include "ca/common/timefmt.h"

#define METRICS_MAX_SERIES	256	/* request series (method, route, status) */
#define METRICS_MAX_CODES	64	/* refusal codes */
#define METRICS_MAX_CERT_OPS	1024	/* (action, service, outcome) */
#define METRICS_MAX_BODY	(1024 * 1024)	/* 2 x 1024 certificate series of <200 bytes fit */
#define METRICS_CONN_LIMIT	16
#define METRICS_CONN_TIMEOUT	10	/* seconds */

struct req_series {
	const char	*method;	/* static strings only */
	const char	*route;
	unsigned	 status;
	uint64_t	 n;
};

/* Request latency per route: Prometheus histogram buckets, in seconds. */
static const double latency_bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
#define METRICS_MAX_ROUTES	64

struct latency_series {
	const char	*route;		/* static strings only */
	uint64_t	 bucket[NBOUNDS];	/* non-cumulative here, summed when rendered */
	uint64_t	 count;
	double		 sum;		/* seconds */
};

/* Certificate operations: enroll, renew, revoke by service and outcome.
 * Services are names the admins registered ([a-z0-9-]); "_admin" and
 * "_unknown" cannot clash with them. */
struct cert_op_series {
	const char	*action;	/* static strings only */
	char		 service[CA_MAX_SERVICE_NAME + 2];
	const char	*outcome;	/* static: "ok" or a public error code */
	uint64_t	 n;
};

struct code_series {
	char		 code[48];
	uint64_t	 n;
};

static struct {
	pthread_mutex_t		lock;
	struct req_series	req[METRICS_MAX_SERIES];
	size_t			nreq;
	struct code_series	codes[METRICS_MAX_CODES];
	size_t			ncodes;
	struct latency_series	lat[METRICS_MAX_ROUTES];
	size_t			nlat;
	struct cert_op_series	ops[METRICS_MAX_CERT_OPS];
	size_t			nops;
	uint64_t		ocsp[API_OCSP_SERVED_MAX][2];	/* [status][cached] */
} counters = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The scrape being written; a line that does not fit fails the scrape. */
struct expo {
	struct mca_buf	b;
	bool		overflow;
};

struct api_metrics {
	struct api_ctx		*ctx;
	struct api_tls		*tls;
	struct MHD_Daemon	*daemon;
};

/* Methods outside this list are counted as "other". */
static const char *
method_label(const char *m)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (m != NULL && strcmp(m, known[i]) == 0)
			return known[i];
	return "other";
}

/* Under counters.lock. */
static void
latency_add(const char *route, double seconds)
{
	struct latency_series *l;
	size_t i, b;

	for (i = 0; i < counters.nlat; i++)
		if (strcmp(counters.lat[i].route, route) == 0)
			break;
	if (i == counters.nlat) {
		if (i == METRICS_MAX_ROUTES)
			return;
		counters.lat[i] = (struct latency_series){ .route = route };
		counters.nlat++;
	}
	l = &counters.lat[i];
	for (b = 0; b < NBOUNDS && seconds > latency_bounds[b]; b++)
		;
	if (b < NBOUNDS)
		l->bucket[b]++;
	l->count++;
	l->sum += seconds;
}

/* The action of a certificate route, or NULL. */
static const char *
cert_action(const char *method, const char *route)
{
	if (strcmp(method, "POST") != 0)
		return NULL;
	if (strcmp(route, "/v1/enroll") == 0)
		return "enroll";
	if (strcmp(route, "/v1/renew") == 0)
		return "renew";
	if (strcmp(route, "/v1/revoke") == 0)
		return "revoke";
	return NULL;
}

/* Under counters.lock. */
static void
cert_op_add(const char *action, const char *service, const char *outcome)
{
	size_t i;

	if (service == NULL || service[0] == '\0')
		service = "_unknown";
	for (i = 0; i < counters.nops; i++)
		if (counters.ops[i].action == action && strcmp(counters.ops[i].outcome, outcome) == 0 &&
		    strcmp(counters.ops[i].service, service) == 0)
			break;
	if (i == counters.nops) {
		if (i == METRICS_MAX_CERT_OPS)
			return;
		counters.ops[i] = (struct cert_op_series){ .action = action, .outcome = outcome };
		snprintf(counters.ops[i].service, sizeof(counters.ops[i].service), "%s", service);
		counters.nops++;
	}
	counters.ops[i].n++;
}

void
api_metrics_ocsp(enum api_ocsp_served status, bool cached)
{
	if ((unsigned)status >= API_OCSP_SERVED_MAX)
		return;
	pthread_mutex_lock(&counters.lock);
	counters.ocsp[status][cached ? 1 : 0]++;
	pthread_mutex_unlock(&counters.lock);
}

void
api_metrics_request(const char *method, const char *route, unsigned status, int64_t duration_us,
    const char *service, const char *error_code)
{
	const char *action;
	const char *m = method_label(method);
	size_t i;

	pthread_mutex_lock(&counters.lock);
	latency_add(route, duration_us > 0 ? (double)duration_us / 1e6 : 0.0);
	for (i = 0; i < counters.nreq; i++)
		if (counters.req[i].status == status && counters.req[i].method == m &&
		    strcmp(counters.req[i].route, route) == 0)
			break;
	if (i == counters.nreq && i < METRICS_MAX_SERIES) {
		counters.req[i] = (struct req_series){ m, route, status, 0 };
		counters.nreq++;
	}
	if (i < counters.nreq)
		counters.req[i].n++;
	if ((action = cert_action(m, route)) != NULL)
		cert_op_add(action, service, status >= 200 && status < 300 ? "ok" :
		    error_code != NULL ? error_code : "error");
	pthread_mutex_unlock(&counters.lock);
}

void
api_metrics_refusal(const char *code)
{
	size_t i;

	pthread_mutex_lock(&counters.lock);
	for (i = 0; i < counters.ncodes; i++)
		if (strcmp(counters.codes[i].code, code) == 0)
			break;
	if (i == counters.ncodes && i < METRICS_MAX_CODES) {
		snprintf(counters.codes[i].code, sizeof(counters.codes[i].code), "%s", code);
		counters.ncodes++;
	}
	if (i < counters.ncodes)
		counters.codes[i].n++;
	pthread_mutex_unlock(&counters.lock);
}

/* ---- exposition -------------------------------------------------------- */

static void
out(struct expo *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out(struct expo *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) || mca_buf_append(&b->b, line, (size_t)n) != MCA_OK)
		b->overflow = true;
}

static void
head(struct expo *b, const char *name, const char *type, const char *help)
{
	out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Under counters.lock. */
static void
render_cert_ops(struct expo *b)
{
	head(b, "meshca_certificate_requests_total", "counter",
	    "POST /v1/enroll, /v1/renew and /v1/revoke by service and outcome (ok or the public error code).");
	for (size_t i = 0; i < counters.nops; i++)
		out(b, "meshca_certificate_requests_total{action=\"%s\",service=\"%s\",outcome=\"%s\"} %llu\n",
		    counters.ops[i].action, counters.ops[i].service, counters.ops[i].outcome,
		    (unsigned long long)counters.ops[i].n);
	head(b, "meshca_certificates_issued_total", "counter",
	    "Certificates issued by this process, by service: first enrollments and renewals.");
	/* Both kinds always present, so that rate() has a series from the start. */
	out(b, "meshca_certificates_issued_total{how=\"enroll\",service=\"_none\"} 0\n");
	out(b, "meshca_certificates_issued_total{how=\"renew\",service=\"_none\"} 0\n");
	for (size_t i = 0; i < counters.nops; i++)
		if (strcmp(counters.ops[i].outcome, "ok") == 0 && strcmp(counters.ops[i].action, "revoke") != 0)
			out(b, "meshca_certificates_issued_total{how=\"%s\",service=\"%s\"} %llu\n",
			    counters.ops[i].action, counters.ops[i].service,
			    (unsigned long long)counters.ops[i].n);
}

/* Under counters.lock. */
static void
render_ocsp(struct expo *b)
{
	static const char *const names[API_OCSP_SERVED_MAX] = { "good", "revoked", "unknown", "error" };

	head(b, "meshca_ocsp_responses_total", "counter",
	    "OCSP responses served, by certStatus (error: an unsigned error response) and source.");
	for (int s = 0; s < API_OCSP_SERVED_MAX; s++)
		for (int c = 0; c < 2; c++)
			out(b, "meshca_ocsp_responses_total{status=\"%s\",source=\"%s\"} %llu\n",
			    names[s], c ? "cached" : "fresh", (unsigned long long)counters.ocsp[s][c]);
}

static void
render_counters(struct expo *b)
{
	pthread_mutex_lock(&counters.lock);
	head(b, "meshca_http_requests_total", "counter",
	    "API requests completed, by method, route pattern and HTTP status.");
	for (size_t i = 0; i < counters.nreq; i++)
		out(b, "meshca_http_requests_total{method=\"%s\",route=\"%s\",status=\"%u\"} %llu\n",
		    counters.req[i].method, counters.req[i].route, counters.req[i].status,
		    (unsigned long long)counters.req[i].n);
	head(b, "meshca_http_request_duration_seconds", "histogram",
	    "API request latency, from the first byte read to the response queued, by route pattern.");
	for (size_t i = 0; i < counters.nlat; i++) {
		const struct latency_series *l = &counters.lat[i];
		uint64_t cum = 0;

		for (size_t k = 0; k < NBOUNDS; k++) {
			cum += l->bucket[k];
			out(b, "meshca_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
			    l->route, latency_bounds[k], (unsigned long long)cum);
		}
		out(b, "meshca_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
		    l->route, (unsigned long long)l->count);
		out(b, "meshca_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", l->route, l->sum);
		out(b, "meshca_http_request_duration_seconds_count{route=\"%s\"} %llu\n", l->route,
		    (unsigned long long)l->count);
	}
	head(b, "meshca_refusals_total", "counter",
	    "Requests refused, by public error code (API.md).");
	for (size_t i = 0; i < counters.ncodes; i++)
		out(b, "meshca_refusals_total{code=\"%s\"} %llu\n", counters.codes[i].code,
		    (unsigned long long)counters.codes[i].n);
	render_cert_ops(b);
	render_ocsp(b);
	pthread_mutex_unlock(&counters.lock);
}

static void
render_database(struct expo *b, struct api_ctx *ctx, int64_t now)
{
	struct db_counts c;
	/* The listing connection: at 10 M rows these counts take seconds, and
	 * the writer's connection would hold every issuance that long. */
	bool ok = db_counts(api_db_lister(ctx), now, 24 * 3600, &c) == MCA_OK;

	head(b, "meshca_database_up", "gauge", "1 when the database answered this scrape.");
	out(b, "meshca_database_up %d\n", ok ? 1 : 0);
	if (!ok)
		return;
	head(b, "meshca_certificates_live", "gauge",
	    "Certificates active and not expired (every kind).");
	out(b, "meshca_certificates_live %llu\n", (unsigned long long)c.certs_live);
	head(b, "meshca_certificates_expiring", "gauge", "Live certificates expiring within 24 h.");
	out(b, "meshca_certificates_expiring %llu\n", (unsigned long long)c.certs_expiring);
	head(b, "meshca_certificates_revoked_total", "counter",
	    "Certificates ever revoked (from the database).");
	out(b, "meshca_certificates_revoked_total %llu\n", (unsigned long long)c.certs_revoked);
	head(b, "meshca_certificates_recorded_total", "counter",
	    "Certificates ever recorded (from the database, every kind).");
	out(b, "meshca_certificates_recorded_total %llu\n", (unsigned long long)c.certs_total);
	head(b, "meshca_services", "gauge", "Registered services.");
	out(b, "meshca_services %llu\n", (unsigned long long)c.services);
}

static void
render_expiry(struct expo *b, struct api_metrics *m, int64_t now)
{
	const struct api_crl *crl;
	int64_t server = api_tls_not_after(m->tls);

	head(b, "meshca_certificate_expiry_seconds", "gauge",
	    "Seconds until the CA's own certificates expire (negative: expired).");
	out(b, "meshca_certificate_expiry_seconds{certificate=\"root\"} %lld\n",
	    (long long)(ca_cert_not_after(ca_signer_root(m->ctx->signer)) - now));
	out(b, "meshca_certificate_expiry_seconds{certificate=\"intermediate\"} %lld\n",
	    (long long)(ca_cert_not_after(ca_signer_cert(m->ctx->signer)) - now));
	if (server != 0)
		out(b, "meshca_certificate_expiry_seconds{certificate=\"server\"} %lld\n",
		    (long long)(server - now));
	if ((crl = api_crl_get(m->ctx)) == NULL)
		return;
	head(b, "meshca_crl_age_seconds", "gauge", "Seconds since the current CRL's thisUpdate.");
	out(b, "meshca_crl_age_seconds %lld\n", (long long)(now - crl->this_update));
	head(b, "meshca_crl_next_update_seconds", "gauge", "Seconds until the current CRL's nextUpdate.");
	out(b, "meshca_crl_next_update_seconds %lld\n", (long long)(crl->next_update - now));
	head(b, "meshca_crl_size_bytes", "gauge", "Size of the current CRL, DER.");
	out(b, "meshca_crl_size_bytes %zu\n", crl->der.len);
	head(b, "meshca_crl_entries", "gauge", "Entries of the current CRL.");
	out(b, "meshca_crl_entries %zu\n", crl->entries);
	head(b, "meshca_crl_number", "gauge", "cRLNumber of the current CRL.");
	out(b, "meshca_crl_number %llu\n", (unsigned long long)crl->number);
	api_crl_put(m->ctx, crl);
}

static _Atomic uint64_t rate_limited_total;

void
api_metrics_rate_limited(void)
{
	rate_limited_total++;
}

/* Hostile load and database faults (issue 7). */
static void
render_resilience(struct expo *b)
{
	head(b, "meshca_rate_limited_total", "counter",
	    "Token presentations refused 429 because their address failed too often.");
	out(b, "meshca_rate_limited_total %llu\n", (unsigned long long)rate_limited_total);
	head(b, "meshca_db_errors_total", "counter",
	    "Database errors by kind: failed writes (answered 503 database_unavailable) and "
	    "failed readiness probes (at most one a second while not ready).");
	for (enum db_fault f = DB_FAULT_FULL; f < DB_FAULT_MAX; f++)
		out(b, "meshca_db_errors_total{kind=\"%s\"} %llu\n", db_fault_name(f),
		    (unsigned long long)db_fault_count(f));
	head(b, "meshca_connections_cut_total", "counter",
	    "Connections closed because one request took longer than request_timeout.");
	out(b, "meshca_connections_cut_total %llu\n", (unsigned long long)api_conns_cut_total());
}

static enum mca_err
metrics_render(struct api_metrics *m, struct expo *b)
{
	int64_t now = mca_now();

	head(b, "meshca_build_info", "gauge", "meshcad's version.");
	out(b, "meshca_build_info{version=\"%s\"} 1\n", MESHCA_VERSION);
	render_counters(b);
	render_database(b, m->ctx, now);
	render_resilience(b);
	render_expiry(b, m, now);
	if (b->overflow)
		return mca_err_set(MCA_ERR_TOOBIG, "metrics: exposition exceeds %d bytes", METRICS_MAX_BODY);
	return MCA_OK;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *type, const void *p, size_t n)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(n, (void *)(uintptr_t)p, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_scrape(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	static const char not_found[] = "only GET /metrics here\n";
	struct api_metrics *m = cls;
	struct expo b = { .overflow = false };
	enum MHD_Result ret;

	(void)version; (void)upload;
	if (*con_cls == NULL) {		/* headers only; answer on the next call */
		*con_cls = m;
		return MHD_YES;
	}
	if (*upload_size > 0) {		/* GET carries no body: drop one */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
		return reply(conn, 404, "text/plain; charset=utf-8", not_found, sizeof(not_found) - 1);
	mca_buf_init(&b.b, METRICS_MAX_BODY, false);
	if (metrics_render(m, &b) != MCA_OK) {
		mca_log(MCA_LOG_ERROR, "metrics scrape failed", "detail", mca_err_detail(), (const char *)NULL);
		mca_buf_free(&b.b);
		return reply(conn, 500, "text/plain; charset=utf-8", "error\n", 6);
	}
	ret = reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.b.data, b.b.len);
	mca_buf_free(&b.b);
	return ret;
}

static enum mca_err
listen_addr(const struct api_listen *l, struct sockaddr_storage *ss, bool *v6)
{
	memset(ss, 0, sizeof(*ss));
	*v6 = false;
	if (inet_pton(AF_INET, l->host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons(l->port);
		return MCA_OK;
	}
	if (inet_pton(AF_INET6, l->host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(l->port);
		*v6 = true;
		return MCA_OK;
	}
	return mca_err_set(MCA_ERR_CONFIG, "metrics_listen: bad address %s", l->host);
}

enum mca_err
api_metrics_start(struct api_ctx *ctx, const struct mca_config *cfg, struct api_tls *tls,
    struct api_metrics **out)
{
	const char *text = mca_config_get(cfg, "metrics_listen");
	const union MHD_DaemonInfo *info;
	struct api_metrics *m = NULL;
	struct sockaddr_storage ss;
	struct api_listen l;
	char port[8];
	bool v6;
	enum mca_err rc;

	*out = NULL;
	if (text == NULL || text[0] == '\0')
		return MCA_OK;
	if ((rc = api_listen_parse(text, &l)) != MCA_OK || (rc = listen_addr(&l, &ss, &v6)) != MCA_OK)
		return rc;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return MCA_ERR_NOMEM;
	m->ctx = ctx;
	m->tls = tls;
	m->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    (v6 ? MHD_USE_IPv6 : 0), l.port, NULL, NULL, on_scrape, m,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_CONN_TIMEOUT,
	    MHD_OPTION_END);
	if (m->daemon == NULL) {
		free(m);
		return mca_err_set(MCA_ERR_IO, "metrics_listen: cannot listen on %s port %u", l.host, l.port);
	}
	info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(port, sizeof(port), "%u", info != NULL ? info->port : l.port);
	mca_log(MCA_LOG_INFO, "metrics serving", "address", l.host, "port", port, "path", "/metrics",
	    (const char *)NULL);
	*out = m;
	return MCA_OK;
}

void
api_metrics_stop(struct api_metrics *m)
{
	if (m == NULL)
		return;
	MHD_stop_daemon(m->daemon);
	free(m);
}
