/* GET /v1/health: liveness and readiness (database answers and takes
 * writes, signer loaded).  Not ready (503) while the database cannot
 * record (disk full, read-only, locked): a load balancer then sends
 * enrollments elsewhere, and readiness returns by itself when the
 * condition clears (db_writable probes it). */
#include "api/api.h"

enum MHD_Result
route_health(struct api_request *r, const char *arg)
{
	enum db_fault fault = DB_FAULT_NONE;
	bool db_ok = db_ping(r->ctx->db) == MCA_OK;
	bool writable = db_ok && db_writable(r->ctx->db, &fault);
	bool signer_ok = ca_signer_available(r->ctx->signer);	/* the signer process lives */
	bool ready = db_ok && writable && signer_ok;

	(void)arg;
	if (!ready)
		r->retry_after = API_DB_RETRY_AFTER;
	return api_reply_json(r, ready ? 200 : 503, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}",
	    "status", ready ? "ok" : "unavailable",
	    "version", MESHCA_VERSION,
	    "database", db_ok && writable ? "ok" : !db_ok ? "unavailable" : db_fault_text(fault),
	    "database_fault", db_ok && writable ? "none" : !db_ok ? "other" : db_fault_name(fault),
	    "schema_version", db_ok ? db_schema_version(r->ctx->db) : 0,
	    "signer", signer_ok ? "ok" : "unavailable"));
}
