/*
 * GET /v1/certificates?service=&status=&kind=&limit= and
 * GET /v1/certificates/{serial} (viewer role and up).
 */
#include "api/api.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/timefmt.h"

static const char *
query(struct api_request *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum mca_err
cert_filter(struct api_request *r, struct db_cert_filter *f)
{
	const char *status = query(r, "status"), *kind = query(r, "kind"), *limit = query(r, "limit");
	enum db_cert_status st;

	f->service = query(r, "service");
	f->status = -1;
	f->kind = -1;
	if (status != NULL) {
		if (db_cert_status_parse(status, &st) != MCA_OK)
			return mca_err_set(MCA_ERR_INVALID, "status must be active, expired or revoked");
		f->status = (int)st;
	}
	if (kind != NULL) {
		for (int k = 0; k < DB_CERT_KIND_MAX; k++)
			if (strcmp(kind, db_cert_kind_name((enum db_cert_kind)k)) == 0)
				f->kind = k;
		if (f->kind < 0)
			return mca_err_set(MCA_ERR_INVALID, "kind must be workload, admin or server");
	}
	if (limit != NULL) {
		char *end;
		long n = strtol(limit, &end, 10);

		if (*limit == '\0' || *end != '\0' || n < 1 || n > 10000)
			return mca_err_set(MCA_ERR_INVALID, "limit must be an integer from 1 to 10000");
		f->limit = (size_t)n;
	}
	return MCA_OK;
}

enum MHD_Result
route_cert_list(struct api_request *r, const char *arg)
{
	struct db_cert_filter f = { 0 };
	struct db_cert *list = NULL;
	size_t n = 0;
	json_t *arr;
	enum MHD_Result ret;
	enum mca_err rc;

	(void)arg;
	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if ((rc = cert_filter(r, &f)) != MCA_OK ||
	    (rc = db_cert_list(api_db_lister(r->ctx), &f, mca_now(), &list, &n)) != MCA_OK)
		return api_reply_err(r, rc);
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		api_json_push(&arr, api_cert_json(&list[i], false));
	ret = api_reply_json(r, 200, arr ? json_pack("{s:o}", "certificates", arr) : NULL);
	db_cert_list_free(list, n);
	return ret;
}

static bool
serial_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CA_SERIAL_HEX_MAX - 1)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return false;
	return true;
}

enum MHD_Result
route_cert_get(struct api_request *r, const char *serial)
{
	struct db_cert c = { 0 };
	enum MHD_Result ret;
	enum mca_err rc;

	if (!api_require_role(r, API_ROLE_VIEWER))
		return MHD_YES;
	if (!serial_ok(serial))
		return api_reply_error(r, 400, "invalid_argument",
		    "RFC 5280 4.1.2.2: a serial is at most 20 bytes, given as lowercase hex");
	if ((rc = db_cert_get(api_db_reader(r->ctx), serial, mca_now(), &c)) != MCA_OK) {
		if (rc == MCA_ERR_NOT_FOUND)
			return api_reply_error(r, 404, "not_found", "no certificate with serial %s", serial);
		return api_reply_err(r, rc);
	}
	ret = api_reply_json(r, 200, api_cert_json(&c, true));
	db_cert_clear(&c);
	return ret;
}
