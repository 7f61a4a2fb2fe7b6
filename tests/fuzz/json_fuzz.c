/*
 * The JSON request bodies of POST /v1/enroll, /v1/renew and /v1/services,
 * through api/parse.c exactly as the handlers read them, then the checks
 * a handler makes on each typed field before it needs the service record:
 * TTLs as durations, names and addresses into a SAN set, the CSR, the key
 * types.  The first byte picks the endpoint; the rest is the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/parse.h"
#include "ca/ca.h"
#include "ca/common/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
ttl(const json_t *v)
{
	int64_t d;

	if (json_is_string(v))
		(void)mca_duration_parse(json_string_value(v), &d);
}

static void
names(const json_t *v, bool ip)
{
	struct ca_sans s = { 0 };
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) > CA_MAX_SANS)
		return;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			break;
		if ((ip ? ca_sans_add_ip(&s, json_string_value(e), true) :
		    ca_sans_add_dns(&s, json_string_value(e), true)) != MCA_OK)
			break;
	}
	ca_sans_clear(&s);
}

static void
csr(const char *text)
{
	struct ca_csr *c = NULL;

	if (ca_csr_parse((const unsigned char *)text, strlen(text), &c) == MCA_OK)
		(void)ca_csr_check_key(c, CA_KEY_MASK_ALL);
	ca_csr_free(c);
}

static void
request(unsigned which, json_t *obj)
{
	struct api_enroll_in e;
	struct api_renew_in r;
	struct api_service_in s;
	enum ca_key_type t;
	size_t i;
	json_t *k;

	switch (which % 3) {
	case 0:
		if (api_parse_enroll(obj, &e) != MCA_OK)
			return;
		if (e.token == NULL || e.csr == NULL)	/* required: never absent */
			abort();
		csr(e.csr);
		ttl(e.ttl);
		names(e.dns, false);
		names(e.ips, true);
		return;
	case 1:
		if (api_parse_renew(obj, &r) != MCA_OK)
			return;
		if (r.csr == NULL)
			abort();
		csr(r.csr);
		ttl(r.ttl);
		names(r.dns, false);
		names(r.ips, true);
		return;
	default:
		if (api_parse_service(obj, &s) != MCA_OK)
			return;
		if (s.name == NULL)
			abort();
		ttl(s.default_ttl);
		ttl(s.max_ttl);
		names(s.dns, false);
		names(s.ips, true);
		if (json_is_array(s.key_types))
			json_array_foreach(s.key_types, i, k)
				if (json_is_string(k))
					(void)ca_key_type_parse(json_string_value(k), &t);
		return;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj = NULL;

	if (size < 1)
		return 0;
	if (api_parse_object((const char *)data + 1, size - 1, &obj) == MCA_OK) {
		if (!json_is_object(obj))	/* promised by api_parse_object */
			abort();
		request(data[0], obj);
	}
	json_decref(obj);
	return 0;
}
