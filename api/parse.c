/*
 * Request bodies from bytes to typed input (see parse.h).  JSON_STRICT:
 * an unknown or misspelt key is refused rather than ignored.
 */
#include "api/parse.h"

#include <string.h>

enum mca_err
api_parse_object(const char *body, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *obj;

	*out = NULL;
	obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL)
		return mca_err_set(MCA_ERR_PARSE, "line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return mca_err_set(MCA_ERR_PARSE, "the body must be a JSON object");
	}
	*out = obj;
	return MCA_OK;
}

/* The end of every api_parse_*: jansson's explanation as the detail. */
static enum mca_err
parse_done(int unpacked, const json_error_t *jerr)
{
	if (unpacked != 0)
		return mca_err_set(MCA_ERR_PARSE, "%s", jerr->text);
	return MCA_OK;
}

enum mca_err
api_parse_enroll(json_t *obj, struct api_enroll_in *in)
{
	json_error_t jerr;

	memset(in, 0, sizeof(*in));
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT, "{s:s, s:s, s?o, s?o, s?o}",
	    "token", &in->token, "csr", &in->csr, "ttl", &in->ttl,
	    "dns_names", &in->dns, "ip_addresses", &in->ips), &jerr);
}

enum mca_err
api_parse_renew(json_t *obj, struct api_renew_in *in)
{
	json_error_t jerr;

	memset(in, 0, sizeof(*in));
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT, "{s:s, s?o, s?o, s?o}",
	    "csr", &in->csr, "ttl", &in->ttl, "dns_names", &in->dns, "ip_addresses", &in->ips),
	    &jerr);
}

enum mca_err
api_parse_service(json_t *obj, struct api_service_in *in)
{
	json_error_t jerr;

	memset(in, 0, sizeof(*in));
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT,
	    "{s:s, s?s, s?o, s?o, s?o, s?o, s?o, s?b}",
	    "name", &in->name, "spiffe_id", &in->spiffe_id, "dns_names", &in->dns,
	    "ip_addresses", &in->ips, "default_ttl", &in->default_ttl, "max_ttl", &in->max_ttl,
	    "key_types", &in->key_types, "allow_wildcards", &in->allow_wildcards),
	    &jerr);
}
