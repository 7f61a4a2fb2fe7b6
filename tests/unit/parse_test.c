/* api/parse.c: request bodies from bytes to typed input, hostile ones first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "api/parse.h"

static json_t *
object(const char *text)
{
	json_t *o = NULL;

	assert_int_equal(api_parse_object(text, strlen(text), &o), MCA_OK);
	assert_non_null(o);
	return o;
}

static void
test_object_refusals(void **state)
{
	static const char *const bad[] = {
		"", " ", "[]", "\"s\"", "1", "null", "{", "{\"a\":1,\"a\":2}",
		"{\"a\":1} {\"b\":2}", "{\"a\":\"\\ud800\"}", "{\"a\":1,}",
	};
	json_t *o;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = (json_t *)1;
		assert_int_equal(api_parse_object(bad[i], strlen(bad[i]), &o), MCA_ERR_PARSE);
		assert_null(o);
	}
	/* Bytes after the length are not read: no NUL needed. */
	assert_int_equal(api_parse_object("{}garbage", 2, &o), MCA_OK);
	json_decref(o);
	/* An embedded NUL is refused by jansson. */
	assert_int_equal(api_parse_object("{\"a\":\"b\0c\"}", 11, &o), MCA_ERR_PARSE);
}

static void
test_enroll(void **state)
{
	struct api_enroll_in in;
	json_t *o;

	(void)state;
	o = object("{\"token\":\"t\",\"csr\":\"c\",\"ttl\":\"1h\",\"dns_names\":[\"a\"]}");
	assert_int_equal(api_parse_enroll(o, &in), MCA_OK);
	assert_string_equal(in.token, "t");
	assert_string_equal(in.csr, "c");
	assert_true(json_is_string(in.ttl));
	assert_true(json_is_array(in.dns));
	assert_null(in.ips);
	json_decref(o);
	static const char *const bad[] = {
		"{}", "{\"token\":\"t\"}", "{\"csr\":\"c\"}", "{\"token\":1,\"csr\":\"c\"}",
		"{\"token\":\"t\",\"csr\":null}", "{\"token\":\"t\",\"csr\":\"c\",\"Token\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = object(bad[i]);
		assert_int_equal(api_parse_enroll(o, &in), MCA_ERR_PARSE);
		assert_true(mca_err_detail()[0] != '\0');
		json_decref(o);
	}
}

static void
test_renew_and_service(void **state)
{
	struct api_renew_in r;
	struct api_service_in s;
	json_t *o;

	(void)state;
	o = object("{\"csr\":\"c\"}");
	assert_int_equal(api_parse_renew(o, &r), MCA_OK);
	assert_string_equal(r.csr, "c");
	assert_null(r.ttl);
	json_decref(o);
	o = object("{\"csr\":\"c\",\"token\":\"t\"}");	/* a token has no place here */
	assert_int_equal(api_parse_renew(o, &r), MCA_ERR_PARSE);
	json_decref(o);
	o = object("{\"name\":\"n\",\"allow_wildcards\":true,\"key_types\":[\"ed25519\"]}");
	assert_int_equal(api_parse_service(o, &s), MCA_OK);
	assert_string_equal(s.name, "n");
	assert_null(s.spiffe_id);
	assert_int_equal(s.allow_wildcards, 1);
	json_decref(o);
	o = object("{\"name\":\"n\",\"allow_wildcards\":\"yes\"}");
	assert_int_equal(api_parse_service(o, &s), MCA_ERR_PARSE);
	json_decref(o);
}

/* Every body in bad is refused with code want, whichever parser. */
typedef enum mca_err (*parse_fn)(json_t *, void *);

static void
refuse_all(parse_fn fn, void *out, const char *const *bad, size_t n, enum mca_err want)
{
	json_t *o;

	for (size_t i = 0; i < n; i++) {
		o = object(bad[i]);
		if (fn(o, out) != want)
			fail_msg("body %s: expected %d", bad[i], (int)want);
		json_decref(o);
	}
}

static enum mca_err
update_fn(json_t *o, void *out) { return api_parse_service_update(o, out); }
static enum mca_err
revoke_fn(json_t *o, void *out) { return api_parse_revoke(o, out); }
static enum mca_err
disable_fn(json_t *o, void *out) { return api_parse_disable(o, out); }
static enum mca_err
admin_fn(json_t *o, void *out) { return api_parse_admin(o, out); }
static enum mca_err
ttl_fn(json_t *o, void *out) { return api_parse_ttl_only(o, out); }
static enum mca_err
reason_fn(json_t *o, void *out) { return api_parse_reason_only(o, out); }

static void
test_service_update(void **state)
{
	struct api_service_update_in in;
	static const char *const malformed[] = {
		"{\"spiffe_id\":1}", "{\"dns\":[]}", "{\"allow_wildcards\":\"yes\"}",
		"{\"allow_wildcards\":1}", "{\"name\":\"x\"}",
	};
	static const char *const contradictory[] = {
		"{\"dns_names\":[],\"add_dns_names\":[\"a\"]}",
		"{\"dns_names\":[],\"remove_dns_names\":[\"a\"]}",
		"{\"ip_addresses\":[],\"add_ip_addresses\":[\"10.0.0.1\"]}",
		"{\"ip_addresses\":[],\"remove_ip_addresses\":[\"10.0.0.1\"]}",
	};
	json_t *o;

	(void)state;
	o = object("{}");
	assert_int_equal(api_parse_service_update(o, &in), MCA_OK);
	assert_int_equal(in.allow_wildcards, -1);	/* absent: unchanged */
	assert_null(in.dns);
	json_decref(o);
	o = object("{\"add_dns_names\":[\"a\"],\"remove_ip_addresses\":[],\"allow_wildcards\":false,"
	    "\"max_ttl\":\"1h\"}");
	assert_int_equal(api_parse_service_update(o, &in), MCA_OK);
	assert_int_equal(in.allow_wildcards, 0);
	assert_true(json_is_array(in.add_dns));
	assert_true(json_is_string(in.max_ttl));
	json_decref(o);
	refuse_all(update_fn, &in, malformed, sizeof(malformed) / sizeof(*malformed), MCA_ERR_PARSE);
	refuse_all(update_fn, &in, contradictory, sizeof(contradictory) / sizeof(*contradictory),
	    MCA_ERR_INVALID);
}

static void
test_revoke_and_disable(void **state)
{
	struct api_revoke_in rv;
	struct api_disable_in d;
	static const char *const bad_revoke[] = {
		"{}", "{\"reason\":\"keyCompromise\"}", "{\"serial\":1}", "{\"serial\":\"ab\",\"reason\":5}",
		"{\"serial\":\"ab\",\"why\":\"x\"}", "{\"serial\":null}",
	};
	static const char *const bad_disable[] = {
		"{\"revoke\":\"true\"}", "{\"revoke\":1}", "{\"reason\":true}", "{\"x\":1}",
	};
	json_t *o;

	(void)state;
	o = object("{\"serial\":\"AB01\",\"reason\":\"superseded\"}");
	assert_int_equal(api_parse_revoke(o, &rv), MCA_OK);
	assert_string_equal(rv.serial, "AB01");
	assert_string_equal(rv.reason, "superseded");
	json_decref(o);
	refuse_all(revoke_fn, &rv, bad_revoke, sizeof(bad_revoke) / sizeof(*bad_revoke), MCA_ERR_PARSE);

	assert_int_equal(api_parse_disable(NULL, &d), MCA_OK);	/* no body */
	assert_false(d.revoke);
	assert_null(d.reason);
	o = object("{\"revoke\":true,\"reason\":\"keyCompromise\"}");
	assert_int_equal(api_parse_disable(o, &d), MCA_OK);
	assert_true(d.revoke);
	assert_string_equal(d.reason, "keyCompromise");
	json_decref(o);
	refuse_all(disable_fn, &d, bad_disable, sizeof(bad_disable) / sizeof(*bad_disable),
	    MCA_ERR_PARSE);
}

static void
test_admin_and_optional_bodies(void **state)
{
	struct api_admin_in a;
	json_t *v = (json_t *)1;
	const char *reason = "x";
	static const char *const bad_admin[] = {
		"{}", "{\"role\":\"admin\"}", "{\"name\":1}", "{\"name\":\"a\",\"role\":[]}",
		"{\"name\":\"a\",\"spiffe_id\":\"x\"}",
	};
	static const char *const bad_ttl[] = { "{\"ttl\":1,\"x\":2}", "{\"reason\":\"x\"}" };
	static const char *const bad_reason[] = { "{\"reason\":1}", "{\"ttl\":\"1h\"}" };
	json_t *o;

	(void)state;
	o = object("{\"name\":\"alice\",\"role\":\"admin\",\"ttl\":\"10m\"}");
	assert_int_equal(api_parse_admin(o, &a), MCA_OK);
	assert_string_equal(a.name, "alice");
	assert_string_equal(a.role, "admin");
	assert_true(json_is_string(a.ttl));
	json_decref(o);
	refuse_all(admin_fn, &a, bad_admin, sizeof(bad_admin) / sizeof(*bad_admin), MCA_ERR_PARSE);

	assert_int_equal(api_parse_ttl_only(NULL, &v), MCA_OK);
	assert_null(v);
	assert_int_equal(api_parse_reason_only(NULL, &reason), MCA_OK);
	assert_null(reason);
	o = object("{\"ttl\":\"5m\"}");
	assert_int_equal(api_parse_ttl_only(o, &v), MCA_OK);
	assert_string_equal(json_string_value(v), "5m");
	json_decref(o);
	refuse_all(ttl_fn, &v, bad_ttl, sizeof(bad_ttl) / sizeof(*bad_ttl), MCA_ERR_PARSE);
	refuse_all(reason_fn, &reason, bad_reason, sizeof(bad_reason) / sizeof(*bad_reason),
	    MCA_ERR_PARSE);
}

static void
test_reason_and_serial(void **state)
{
	char serial[CA_SERIAL_HEX_MAX];
	char big[CA_SERIAL_HEX_MAX + 1];
	int code = -1;

	(void)state;
	assert_int_equal(api_parse_reason(NULL, &code), MCA_OK);
	assert_int_equal(code, 0);
	assert_int_equal(api_parse_reason("keyCompromise", &code), MCA_OK);
	assert_int_equal(code, 1);
	assert_int_equal(api_parse_reason("cessationOfOperation", &code), MCA_OK);
	assert_int_equal(code, 5);
	/* RFC 5280 5.3.1: suspensions and delta-CRL removals are not revocations. */
	assert_int_equal(api_parse_reason("certificateHold", &code), MCA_ERR_INVALID);
	assert_int_equal(api_parse_reason("removeFromCRL", &code), MCA_ERR_INVALID);
	assert_int_equal(api_parse_reason("", &code), MCA_ERR_INVALID);
	assert_int_equal(api_parse_reason("KEYCOMPROMISE ", &code), MCA_ERR_INVALID);

	assert_int_equal(api_parse_serial("0aBcDeF9", serial), MCA_OK);
	assert_string_equal(serial, "0abcdef9");
	assert_int_equal(api_parse_serial("", serial), MCA_ERR_INVALID);
	assert_int_equal(api_parse_serial("0x12", serial), MCA_ERR_INVALID);
	assert_int_equal(api_parse_serial("12 34", serial), MCA_ERR_INVALID);
	assert_int_equal(api_parse_serial("-1", serial), MCA_ERR_INVALID);
	memset(big, 'a', sizeof(big) - 1);	/* 41 hex digits: over 20 bytes */
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(api_parse_serial(big, serial), MCA_ERR_INVALID);
	big[CA_SERIAL_HEX_MAX - 1] = '\0';	/* 40: the most RFC 5280 allows */
	assert_int_equal(api_parse_serial(big, serial), MCA_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_refusals),
		cmocka_unit_test(test_enroll),
		cmocka_unit_test(test_renew_and_service),
		cmocka_unit_test(test_service_update),
		cmocka_unit_test(test_revoke_and_disable),
		cmocka_unit_test(test_admin_and_optional_bodies),
		cmocka_unit_test(test_reason_and_serial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
