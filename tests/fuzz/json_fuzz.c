/*
 * The JSON request bodies of every meshcad endpoint that takes one, through
 * api/parse.c exactly as the handlers read them, then the checks a handler
 * makes on each typed field before it needs the service record: TTLs as
 * durations, names and addresses into a SAN set, the CSR, key types,
 * revocation reasons and serials.  The first byte picks the endpoint; the
 * rest is the body.
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
key_types(const json_t *v)
{
	enum ca_key_type t;
	size_t i;
	json_t *k;

	if (json_is_array(v))
		json_array_foreach(v, i, k)
			if (json_is_string(k))
				(void)ca_key_type_parse(json_string_value(k), &t);
}

static void
reason(const char *name)
{
	int code = -1;

	if (api_parse_reason(name, &code) == MCA_OK && (code < 0 || code > 10 || code == 6 ||
	    code == 7 || code == 8))	/* 7 is unused in RFC 5280; 6, 8 refused */
		abort();
}

/* PATCH /v1/services/{name}: the lists as route_service_update.c reads them. */
static void
service_update(json_t *obj)
{
	struct api_service_update_in u;

	if (api_parse_service_update(obj, &u) != MCA_OK)
		return;
	if (u.allow_wildcards < -1 || u.allow_wildcards > 1 ||
	    (u.dns != NULL && (u.add_dns != NULL || u.remove_dns != NULL)) ||
	    (u.ips != NULL && (u.add_ips != NULL || u.remove_ips != NULL)))
		abort();
	names(u.dns, false);
	names(u.add_dns, false);
	names(u.remove_dns, false);
	names(u.ips, true);
	names(u.add_ips, true);
	names(u.remove_ips, true);
	ttl(u.default_ttl);
	ttl(u.max_ttl);
	key_types(u.key_types);
}

/* The small bodies: revoke, disable, admins, tokens, admin removal. */
static void
small_bodies(unsigned which, json_t *obj)
{
	struct api_revoke_in rv;
	struct api_disable_in d;
	struct api_admin_in a;
	char serial[CA_SERIAL_HEX_MAX];
	const char *why;
	json_t *v;

	switch (which % 5) {
	case 0:
		if (api_parse_revoke(obj, &rv) != MCA_OK)
			return;
		if (rv.serial == NULL)
			abort();
		if (api_parse_serial(rv.serial, serial) == MCA_OK &&
		    strspn(serial, "0123456789abcdef") != strlen(serial))
			abort();	/* normalized: lowercase hex only */
		reason(rv.reason);
		return;
	case 1:
		if (api_parse_disable(obj, &d) == MCA_OK)
			reason(d.reason);
		return;
	case 2:
		if (api_parse_admin(obj, &a) != MCA_OK)
			return;
		if (a.name == NULL)
			abort();
		ttl(a.ttl);
		return;
	case 3:
		if (api_parse_ttl_only(obj, &v) == MCA_OK)
			ttl(v);
		return;
	default:
		if (api_parse_reason_only(obj, &why) == MCA_OK)
			reason(why);
		return;
	}
}

static void
request(unsigned which, json_t *obj)
{
	struct api_enroll_in e;
	struct api_renew_in r;
	struct api_service_in s;

	switch (which % 9) {
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
	case 2:
		if (api_parse_service(obj, &s) != MCA_OK)
			return;
		if (s.name == NULL)
			abort();
		ttl(s.default_ttl);
		ttl(s.max_ttl);
		names(s.dns, false);
		names(s.ips, true);
		key_types(s.key_types);
		return;
	case 3:
		service_update(obj);
		return;
	default:
		small_bodies(which % 9 - 4, obj);
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
