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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_refusals),
		cmocka_unit_test(test_enroll),
		cmocka_unit_test(test_renew_and_service),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
