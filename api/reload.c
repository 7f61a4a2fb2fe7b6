/*
 * SIGHUP: the settings meshcad can change while it serves (reload.h).
 *
 * Every reloadable value is parsed and checked before any is applied, so
 * a file with one bad value changes nothing.  Values are single words
 * stored atomically; handlers read them with API_SETTING (api.h), so a
 * request sees either the old or the new value of each, never half.
 */
#include "api/reload.h"

#include <stdbool.h>
#include <string.h>

#include "api/api.h"
#include "ca/common/config.h"
#include "ca/common/log.h"

/* Read once at start: a change is reported, not applied. */
static const char *const restart_keys[] = {
	"trust_domain", "listen", "database", "root_cert", "intermediate_cert", "intermediate_key",
	"intermediate_key_passphrase_file", "server_cert", "server_key", "server_ttl", "public_url",
	"audit_checkpoint_interval", "metrics_listen", "max_connections", "max_connections_per_ip",
	"max_request_body", "max_header_bytes", "idle_timeout", "request_timeout",
	"bad_token_burst", "bad_token_refill", "workers",
};

enum mca_err
api_ttls_load(const struct mca_config *cfg, struct api_ttls *t)
{
	enum mca_err rc;

	if ((rc = mca_config_duration(cfg, "default_ttl", 24 * 3600, &t->default_ttl)) != MCA_OK ||
	    (rc = mca_config_duration(cfg, "min_ttl", 300, &t->min_ttl)) != MCA_OK ||
	    (rc = mca_config_duration(cfg, "token_ttl", 3600, &t->token_ttl)) != MCA_OK ||
	    (rc = mca_config_duration(cfg, "admin_max_ttl", 90 * 86400, &t->admin_max_ttl)) != MCA_OK)
		return rc;
	if (t->min_ttl < 1 || t->default_ttl < t->min_ttl)
		return mca_err_set(MCA_ERR_CONFIG, "need 1s <= min_ttl <= default_ttl");
	if (t->token_ttl < 1 || t->token_ttl > API_MAX_TOKEN_TTL)
		return mca_err_set(MCA_ERR_CONFIG, "token_ttl must be between 1s and 7d");
	if (t->admin_max_ttl < t->min_ttl)
		return mca_err_set(MCA_ERR_CONFIG, "admin_max_ttl must be at least min_ttl");
	return MCA_OK;
}

void
api_ttls_apply(struct api_ctx *ctx, const struct api_ttls *t)
{
	__atomic_store_n(&ctx->default_ttl, t->default_ttl, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->min_ttl, t->min_ttl, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->token_ttl, t->token_ttl, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->admin_max_ttl, t->admin_max_ttl, __ATOMIC_RELAXED);
}

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Logs each restart-only key whose value differs from the running one. */
static void
report_restart_keys(const struct mca_config *started, const struct mca_config *cfg)
{
	for (size_t i = 0; i < sizeof(restart_keys) / sizeof(restart_keys[0]); i++) {
		const char *k = restart_keys[i];

		if (!same(mca_config_get(started, k), mca_config_get(cfg, k)))
			mca_log(MCA_LOG_WARN, "setting changed but needs a restart, running value kept",
			    "key", k, (const char *)NULL);
	}
}

enum mca_err
api_reload(struct api_ctx *ctx, const struct mca_config *started, const struct mca_config *cfg)
{
	struct api_revocation_settings rs;
	struct api_ttls t;
	enum mca_err rc;

	if ((rc = api_ttls_load(cfg, &t)) != MCA_OK ||
	    (rc = api_revocation_settings_load(cfg, &rs)) != MCA_OK)
		return rc;
	api_ttls_apply(ctx, &t);
	api_revocation_settings_apply(ctx, &rs);
	report_restart_keys(started, cfg);
	return MCA_OK;
}
