/* GET /v1/health: liveness and readiness (database answers, signer loaded). */
#include "api/api.h"

enum MHD_Result
route_health(struct api_request *r, const char *arg)
{
	bool db_ok = db_ping(r->ctx->db) == MCA_OK;

	(void)arg;
	return api_reply_json(r, db_ok ? 200 : 503, json_pack("{s:s, s:s, s:s, s:i, s:s}",
	    "status", db_ok ? "ok" : "unavailable",
	    "version", MESHCA_VERSION,
	    "database", db_ok ? "ok" : "unavailable",
	    "schema_version", db_ok ? db_schema_version(r->ctx->db) : 0,
	    "signer", "ok"));
}
