/*
 * Prometheus metrics of meshcad (text exposition format 0.0.4), served
 * on their own plain-HTTP listener (config metrics_listen; off when unset)
 * so that scraping needs no client certificate and the HTTPS API stays
 * the only thing exposed to workloads.  Keep metrics_listen on loopback or
 * a management network: it tells anyone who can reach it how busy the CA is.
 *
 * The counters are process-wide (one meshcad per process); the gauges
 * (live certificates, expiries, CRL age) are read at scrape time.
 */
#ifndef MESHCA_API_METRICS_H
#define MESHCA_API_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "ca/common/err.h"

struct api_ctx;
struct api_tls;
struct api_metrics;
struct mca_config;

/* A completed API request: its route pattern (as in server.c's table, a
 * star for a segment; "other" for no route), method and HTTP status;
 * duration_us feeds the route's latency histogram.  On POST /v1/enroll,
 * /v1/renew and /v1/revoke it also counts a certificate operation by
 * service (the request's service, "" unknown) and outcome ("ok" for a
 * 2xx, else error_code, the public code of the error reply); enroll and
 * renew answered 201 count as certificates issued.  Thread-safe, never
 * fails (series beyond the tables' bounds are dropped). */
void api_metrics_request(const char *method, const char *route, unsigned status,
    int64_t duration_us, const char *service, const char *error_code);

/* An OCSP response served (RFC 6960 2.2 certStatus, or an unsigned error
 * response of 2.3), from the response cache or signed for this request. */
enum api_ocsp_served { API_OCSP_GOOD, API_OCSP_REVOKED, API_OCSP_UNKNOWN, API_OCSP_ERROR,
    API_OCSP_SERVED_MAX };
void api_metrics_ocsp(enum api_ocsp_served status, bool cached);
/* A refusal answered with a public error code ("token_used"...). */
void api_metrics_refusal(const char *code);
/* A credential presentation refused 429 by the per-address rate limit. */
void api_metrics_rate_limited(void);

/* Starts the listener of config metrics_listen (host:port; port 0 picks
 * one, logged as "metrics serving").  *out is NULL when the key is unset.
 * tls (may be NULL) gives the server certificate's expiry. */
enum mca_err api_metrics_start(struct api_ctx *ctx, const struct mca_config *cfg,
    struct api_tls *tls, struct api_metrics **out) MCA_WUR;
/* NULL is a no-op. */
void api_metrics_stop(struct api_metrics *m);

#endif
