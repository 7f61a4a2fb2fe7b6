/*
 * cli/answer.c: what the CLI and the agent read from meshcad, hostile
 * answers first.  The server may be an impostor while trust is still being
 * bootstrapped by fingerprint, so nothing it says is believed: roots are
 * picked by a fingerprint computed here, and an issued certificate must name
 * the announced SPIFFE ID and verify up to a trusted root (RFC 5280 6.1).
 * Fixtures in tests/data/answer/: a test root, its intermediate and a leaf
 * for spiffe://fuzz.internal/svc/web; an impostor CA with the same names
 * and its leaf for the same ID (valid until 2121).
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ca/common/fileio.h"
#include "cli/cli.h"

#define ID	"spiffe://fuzz.internal/svc/web"

static char *
fixture(const char *name)
{
	char path[PATH_MAX];
	const char *d = getenv("MESHCA_TEST_DATA");
	struct mca_buf b;
	char *s;

	snprintf(path, sizeof(path), "%s/answer/%s", d != NULL ? d : "tests/data", name);
	mca_buf_init(&b, 64 * 1024, false);
	assert_int_equal(mca_file_read(path, 64 * 1024, &b), MCA_OK);
	s = strndup((const char *)b.data, b.len);
	assert_non_null(s);
	mca_buf_free(&b);
	return s;
}

static void
fingerprint_of(const char *pem, char fp[CA_FINGERPRINT_HEX_LEN])
{
	struct ca_cert *c = NULL;

	assert_int_equal(ca_cert_parse((const unsigned char *)pem, strlen(pem), &c), MCA_OK);
	ca_cert_fingerprint(c, fp);
	ca_cert_free(c);
}

static enum mca_err
answer(long status, const char *body, json_t **resp)
{
	return cli_answer_parse((const unsigned char *)body, strlen(body), status,
	    "https://127.0.0.1/test", resp);
}

static void
test_answer_status_and_shape(void **state)
{
	static const char *const not_objects[] = { "", "[]", "\"x\"", "1", "null", "{", "{}x",
		"{\"a\":1,\"a\":2}" };
	json_t *r = (json_t *)1;

	(void)state;
	assert_int_equal(answer(200, "{\"ok\":true}", &r), MCA_OK);
	assert_true(json_is_object(r));
	json_decref(r);
	for (size_t i = 0; i < sizeof(not_objects) / sizeof(*not_objects); i++) {
		r = (json_t *)1;
		assert_int_equal(answer(200, not_objects[i], &r), MCA_ERR_PARSE);
		assert_null(r);
	}
	/* A refusal is an error with the server's message and code, never a result. */
	assert_int_equal(answer(429, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"slow down\"}}",
	    &r), MCA_ERR_SERVER);
	assert_null(r);
	assert_non_null(strstr(mca_err_detail(), "slow down (rate_limited, HTTP 429)"));
	assert_int_equal(answer(503, "Service Unavailable", &r), MCA_ERR_SERVER);
	assert_non_null(strstr(mca_err_detail(), "without an error object"));
	assert_int_equal(answer(302, "{\"certificate\":\"x\"}", &r), MCA_ERR_SERVER);
	assert_null(r);
}

static void
test_roots(void **state)
{
	char *root = fixture("root.pem"), *evil = fixture("evil-root.pem");
	char fp[CA_FINGERPRINT_HEX_LEN], evil_fp[CA_FINGERPRINT_HEX_LEN];
	struct mca_buf out;
	json_t *resp;

	(void)state;
	fingerprint_of(root, fp);
	fingerprint_of(evil, evil_fp);
	mca_buf_init(&out, 1024 * 1024, false);

	/* The impostor's root has the same names: only the fingerprint tells. */
	resp = json_pack("{s:[s,s,i]}", "roots", evil, root, 7);
	assert_int_equal(cli_roots_pick(resp, fp, &out), MCA_OK);
	assert_int_equal(out.len, strlen(root));
	assert_memory_equal(out.data, root, out.len);
	json_decref(resp);

	resp = json_pack("{s:[s]}", "roots", evil);
	assert_int_equal(cli_roots_pick(resp, fp, &out), MCA_ERR_FINGERPRINT);
	json_decref(resp);

	/* Every listed root must be a certificate for the refresh. */
	resp = json_pack("{s:[s,s]}", "roots", root, evil);
	assert_int_equal(cli_roots_all(resp, &out), MCA_OK);
	assert_int_equal(out.len, strlen(root) + strlen(evil));
	json_decref(resp);
	resp = json_pack("{s:[s,s]}", "roots", root, "-----BEGIN CERTIFICATE-----\nAAAA\n");
	assert_int_equal(cli_roots_all(resp, &out), MCA_ERR_CERT_PARSE);
	json_decref(resp);

	static const char *const bad[] = { "{}", "{\"roots\":[]}", "{\"roots\":\"x\"}",
		"{\"roots\":{}}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		resp = json_loads(bad[i], 0, NULL);
		assert_int_equal(cli_roots_pick(resp, fp, &out), MCA_ERR_PARSE);
		assert_int_equal(cli_roots_all(resp, &out), MCA_ERR_PARSE);
		json_decref(resp);
	}
	/* Bounded: an answer listing more roots than CLI_ROOTS_MAX is refused. */
	resp = json_pack("{s:[]}", "roots");
	for (int i = 0; i <= CLI_ROOTS_MAX; i++)
		assert_int_equal(json_array_append_new(json_object_get(resp, "roots"),
		    json_string(root)), 0);
	assert_int_equal(cli_roots_pick(resp, fp, &out), MCA_ERR_TOOBIG);
	json_decref(resp);

	mca_buf_free(&out);
	free(root);
	free(evil);
}

/* cli_issued_parse over {certificate, chain, serial, spiffe_id}. */
static enum mca_err
issued(const char *leaf, const char *chain, const char *id, const char *roots_pem)
{
	struct cli_issued r = { 0 };
	struct mca_buf roots;
	enum mca_err rc;

	mca_buf_init(&roots, 64 * 1024, false);
	assert_int_equal(mca_buf_set(&roots, roots_pem, strlen(roots_pem)), MCA_OK);
	r.resp = json_pack("{s:s?, s:s?, s:s, s:s?}", "certificate", leaf, "chain", chain,
	    "serial", "0a", "spiffe_id", id);
	assert_non_null(r.resp);
	rc = cli_issued_parse(&r, &roots);
	if (rc == MCA_OK)
		assert_string_equal(ca_cert_uri(r.leaf), id);
	cli_issued_clear(&r);
	mca_buf_free(&roots);
	return rc;
}

static void
test_issued(void **state)
{
	char *root = fixture("root.pem"), *inter = fixture("int.pem"), *leaf = fixture("leaf.pem");
	char *eroot = fixture("evil-root.pem"), *einter = fixture("evil-int.pem");
	char *eleaf = fixture("evil-leaf.pem");

	(void)state;
	assert_int_equal(issued(leaf, inter, ID, root), MCA_OK);
	/* Missing members. */
	assert_int_equal(issued(NULL, inter, ID, root), MCA_ERR_PARSE);
	assert_int_equal(issued(leaf, NULL, ID, root), MCA_ERR_PARSE);
	assert_int_equal(issued(leaf, inter, NULL, root), MCA_ERR_PARSE);
	/* The certificate names another identity than the one announced. */
	assert_int_equal(issued(leaf, inter, "spiffe://fuzz.internal/svc/db", root),
	    MCA_ERR_CERT_PARSE);
	/* The impostor's certificate, its chain, or a mix, against our root. */
	assert_int_equal(issued(eleaf, einter, ID, root), MCA_ERR_CERT_PARSE);
	assert_int_equal(issued(eleaf, inter, ID, root), MCA_ERR_CERT_PARSE);
	assert_int_equal(issued(leaf, einter, ID, root), MCA_ERR_CERT_PARSE);
	/* Swapped: the intermediate as the leaf has no URI SAN. */
	assert_int_equal(issued(inter, leaf, ID, root), MCA_ERR_CERT_PARSE);
	/* Not certificates at all. */
	assert_int_equal(issued("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	    inter, ID, root), MCA_ERR_CERT_PARSE);
	assert_int_equal(issued(leaf, "", ID, root), MCA_ERR_CERT_PARSE);
	/* Trusting the impostor's root makes only its chain verify. */
	assert_int_equal(issued(eleaf, einter, ID, eroot), MCA_OK);
	assert_int_equal(issued(leaf, inter, ID, eroot), MCA_ERR_CERT_PARSE);
	free(root);
	free(inter);
	free(leaf);
	free(eroot);
	free(einter);
	free(eleaf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_status_and_shape),
		cmocka_unit_test(test_roots),
		cmocka_unit_test(test_issued),
	};

	if (ca_global_init() != MCA_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
