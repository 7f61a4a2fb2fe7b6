/*
 * What SIGHUP changes under a running meshcad (reload.c).
 *
 * Reloadable, applied together or not at all: log_format and log_level
 * (unless given on the command line), default_ttl, min_ttl, token_ttl,
 * admin_max_ttl, crl_validity and ocsp_validity.  Everything else (listen,
 * metrics_listen, paths, keys, trust_domain, public_url, server_ttl,
 * audit_checkpoint_interval, limits) is read once at start; a changed value
 * is logged as "needs a restart" and the running value kept.  Identity
 * policy (services, their names, TTL caps and key types) lives in the
 * database and applies to the next request without any reload.
 */
#ifndef MESHCA_API_RELOAD_H
#define MESHCA_API_RELOAD_H

#include <stdint.h>

#include "ca/common/err.h"

struct api_ctx;
struct mca_config;

/* The TTL settings of api_ctx, checked together (1s <= min_ttl <=
 * default_ttl, token_ttl at most 7 days). */
struct api_ttls {
	int64_t	default_ttl;
	int64_t	min_ttl;
	int64_t	token_ttl;
	int64_t	admin_max_ttl;
};

enum mca_err api_ttls_load(const struct mca_config *cfg, struct api_ttls *t) MCA_WUR;
/* Stores each value atomically (handlers read them with API_SETTING). */
void api_ttls_apply(struct api_ctx *ctx, const struct api_ttls *t);

/* Applies the reloadable settings of cfg (read by the caller from the same
 * file as at start) after checking all of them; on error nothing changed
 * and mca_err_detail() names the key.  started is the configuration
 * meshcad started with, to name the keys whose change needs a restart. */
enum mca_err api_reload(struct api_ctx *ctx, const struct mca_config *started,
    const struct mca_config *cfg) MCA_WUR;

#endif
