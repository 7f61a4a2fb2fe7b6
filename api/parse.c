/*
 * Request bodies from bytes to typed input (see parse.h).  JSON_STRICT:
 * an unknown or misspelt key is refused rather than ignored.
 */
#include "api/parse.h"

#include <ctype.h>
#include <string.h>

#include "db/db.h"

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

enum mca_err
api_parse_service_update(json_t *obj, struct api_service_update_in *in)
{
	json_error_t jerr;
	json_t *aw = NULL;

	memset(in, 0, sizeof(*in));
	in->allow_wildcards = -1;
	if (json_unpack_ex(obj, &jerr, JSON_STRICT,
	    "{s?s, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o, s?o}",
	    "spiffe_id", &in->spiffe_id, "dns_names", &in->dns, "add_dns_names", &in->add_dns,
	    "remove_dns_names", &in->remove_dns, "ip_addresses", &in->ips,
	    "add_ip_addresses", &in->add_ips, "remove_ip_addresses", &in->remove_ips,
	    "default_ttl", &in->default_ttl, "max_ttl", &in->max_ttl,
	    "key_types", &in->key_types, "allow_wildcards", &aw) != 0)
		return mca_err_set(MCA_ERR_PARSE, "%s", jerr.text);
	if (aw != NULL && !json_is_boolean(aw))
		return mca_err_set(MCA_ERR_PARSE, "allow_wildcards must be true or false");
	if (aw != NULL)
		in->allow_wildcards = json_is_true(aw);
	if (in->dns != NULL && (in->add_dns != NULL || in->remove_dns != NULL))
		return mca_err_set(MCA_ERR_INVALID, "dns_names replaces the list: do not combine "
		    "it with add_dns_names or remove_dns_names");
	if (in->ips != NULL && (in->add_ips != NULL || in->remove_ips != NULL))
		return mca_err_set(MCA_ERR_INVALID, "ip_addresses replaces the list: do not "
		    "combine it with add_ip_addresses or remove_ip_addresses");
	return MCA_OK;
}

enum mca_err
api_parse_revoke(json_t *obj, struct api_revoke_in *in)
{
	json_error_t jerr;

	memset(in, 0, sizeof(*in));
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT, "{s:s, s?s}",
	    "serial", &in->serial, "reason", &in->reason), &jerr);
}

enum mca_err
api_parse_disable(json_t *obj, struct api_disable_in *in)
{
	json_error_t jerr;
	int flag = 0;

	memset(in, 0, sizeof(*in));
	if (obj == NULL)
		return MCA_OK;
	if (json_unpack_ex(obj, &jerr, JSON_STRICT, "{s?b, s?s}",
	    "revoke", &flag, "reason", &in->reason) != 0)
		return mca_err_set(MCA_ERR_PARSE, "%s", jerr.text);
	in->revoke = flag != 0;
	return MCA_OK;
}

enum mca_err
api_parse_admin(json_t *obj, struct api_admin_in *in)
{
	json_error_t jerr;

	memset(in, 0, sizeof(*in));
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT, "{s:s, s?s, s?o}",
	    "name", &in->name, "role", &in->role, "ttl", &in->ttl), &jerr);
}

enum mca_err
api_parse_ttl_only(json_t *obj, json_t **ttl)
{
	json_error_t jerr;

	*ttl = NULL;
	if (obj == NULL)
		return MCA_OK;
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT, "{s?o}",
	    "ttl", ttl), &jerr);
}

enum mca_err
api_parse_reason_only(json_t *obj, const char **reason)
{
	json_error_t jerr;

	*reason = NULL;
	if (obj == NULL)
		return MCA_OK;
	return parse_done(json_unpack_ex(obj, &jerr, JSON_STRICT, "{s?s}",
	    "reason", reason), &jerr);
}

enum mca_err
api_parse_reason(const char *name, int *code)
{
	*code = DB_REASON_UNSPECIFIED;
	if (name == NULL)
		return MCA_OK;
	if (ca_crl_reason_parse(name, code) != MCA_OK)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: unknown reason '%.40s' (use "
		    "unspecified, keyCompromise, affiliationChanged, superseded, "
		    "cessationOfOperation, privilegeWithdrawn, ...)", name);
	if (*code == 6 || *code == 8)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 5.3.1: %s is not accepted: meshca "
		    "revocations are permanent", name);
	return MCA_OK;
}

enum mca_err
api_parse_serial(const char *in, char out[CA_SERIAL_HEX_MAX])
{
	size_t n = strlen(in);

	if (n == 0 || n > CA_SERIAL_HEX_MAX - 1)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.1.2.2: a serial is 1 to 20 bytes "
		    "in hex");
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)in[i]))
			return mca_err_set(MCA_ERR_INVALID, "serial must be hexadecimal");
		out[i] = (char)tolower((unsigned char)in[i]);
	}
	out[n] = '\0';
	return MCA_OK;
}
