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

#include <stdint.h>

#include "ca/common/err.h"

struct api_ctx;
struct api_tls;
struct api_metrics;
struct mca_config;

/* A completed API request: its route pattern (as in server.c's table, a
 * star for a segment; "other" for no route), method and HTTP status.  Enroll and renew answered 201
 * also count as certificates issued; duration_us feeds the route's latency
 * histogram.  Thread-safe, never fails (series beyond the tables' bounds
 * are dropped). */
void api_metrics_request(const char *method, const char *route, unsigned status,
    int64_t duration_us);
/* A refusal answered with a public error code ("token_used"...). */
void api_metrics_refusal(const char *code);

/* Starts the listener of config metrics_listen (host:port; port 0 picks
 * one, logged as "metrics serving").  *out is NULL when the key is unset.
 * tls (may be NULL) gives the server certificate's expiry. */
enum mca_err api_metrics_start(struct api_ctx *ctx, const struct mca_config *cfg,
    struct api_tls *tls, struct api_metrics **out) MCA_WUR;
/* NULL is a no-op. */
void api_metrics_stop(struct api_metrics *m);

#endif
