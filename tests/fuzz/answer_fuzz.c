/*
 * What the CLI and the agent read from the server (cli/answer.c): an HTTP
 * answer as a JSON object or an error, the roots of GET /v1/roots picked
 * by fingerprint, and the certificate of an enrollment or renewal checked
 * against its SPIFFE ID and verified up to a trusted root.  The server may
 * be an impostor (trust by fingerprint starts unverified), so every byte
 * of these answers is hostile.
 *
 * Input: byte 0 picks the reader, byte 1 the HTTP status, the rest is the
 * body.  The trusted root is a fixed P-256 test root (valid until 2126)
 * whose intermediate and leaf are in the seed corpus, so the fuzzer
 * starts from answers that verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char root_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBzTCCAXOgAwIBAgIULgWtHIvrxuClY8PpchVUkoQL7KUwCgYIKoZIzj0EAwIw\n"
	"MzEWMBQGA1UECgwNZnV6ei5pbnRlcm5hbDEZMBcGA1UEAwwQbWVzaGNhIGZ1enog\n"
	"cm9vdDAgFw0yNjExMjIxODExNDJaGA8yMTI2MTAyOTE4MTE0MlowMzEWMBQGA1UE\n"
	"CgwNZnV6ei5pbnRlcm5hbDEZMBcGA1UEAwwQbWVzaGNhIGZ1enogcm9vdDBZMBMG\n"
	"ByqGSM49AgEGCCqGSM49AwEHA0IABM4GVO/4460w7HjYDQqtdAePq+2l7yhlnZxy\n"
	"bv5E2NZ+63gWZflCo+JKfYqRboFdVPcqA0IGb/rrECU+696SkCqjYzBhMB0GA1Ud\n"
	"DgQWBBQFjHJok0X9BHyBUcGkNKEVlVCogTAfBgNVHSMEGDAWgBQFjHJok0X9BHyB\n"
	"UcGkNKEVlVCogTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggq\n"
	"hkjOPQQDAgNIADBFAiEA5FgH/ko+MczsUUm+8CLznHeK3CaXV4+1d/7Rb0Ny0gMC\n"
	"IA/S+vgPjJ1P3oKYqlVZgYzn+ySrrVCGaQqH+YVSGvL+\n"
	"-----END CERTIFICATE-----\n";

static const long statuses[] = { 200, 201, 204, 299, 300, 400, 401, 403, 404, 409, 429, 500, 503 };

static void
issued(json_t *resp, const struct mca_buf *roots)
{
	struct cli_issued r = { .resp = resp };

	if (cli_issued_parse(&r, roots) == MCA_OK) {
		/* Accepted: both parsed, and the leaf names what the server announced. */
		if (r.leaf == NULL || r.chain == NULL || ca_cert_uri(r.leaf) == NULL ||
		    strcmp(ca_cert_uri(r.leaf), cli_json_str(resp, "spiffe_id")) != 0)
			abort();
	}
	r.resp = NULL;	/* the caller's */
	cli_issued_clear(&r);
}

static void
roots(json_t *resp, const char *fp)
{
	char have[CA_FINGERPRINT_HEX_LEN];
	struct mca_buf out;
	struct ca_cert *c = NULL;

	mca_buf_init(&out, 1024 * 1024, false);
	if (cli_roots_pick(resp, fp, &out) == MCA_OK) {
		/* What was picked is the root with that fingerprint, nothing else. */
		if (ca_cert_parse(out.data, out.len, &c) != MCA_OK)
			abort();
		ca_cert_fingerprint(c, have);
		if (!ca_fingerprint_equal(fp, have))
			abort();
		ca_cert_free(c);
	}
	(void)cli_roots_all(resp, &out);
	mca_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mca_buf trusted;
	static char fp[CA_FINGERPRINT_HEX_LEN];
	static int ready;
	struct ca_cert *root = NULL;
	json_t *resp = NULL;
	long status;
	enum mca_err rc;

	if (!ready) {
		mca_buf_init(&trusted, sizeof(root_pem), false);
		if (ca_global_init() != MCA_OK ||
		    ca_cert_parse((const unsigned char *)root_pem, sizeof(root_pem) - 1, &root) != MCA_OK ||
		    mca_buf_set(&trusted, root_pem, sizeof(root_pem) - 1) != MCA_OK)
			abort();
		ca_cert_fingerprint(root, fp);
		ca_cert_free(root);
		ready = 1;
	}
	if (size < 2)
		return 0;
	status = statuses[data[1] % (sizeof(statuses) / sizeof(statuses[0]))];
	rc = cli_answer_parse(data + 2, size - 2, status, "https://127.0.0.1/fuzz", &resp);
	if (rc == MCA_OK && (status < 200 || status > 299 || !json_is_object(resp)))
		abort();	/* only a 2xx JSON object is an answer */
	if (rc != MCA_OK && (resp != NULL || (status < 200 || status > 299) != (rc == MCA_ERR_SERVER)))
		abort();	/* a refusal is always MCA_ERR_SERVER, never a result */
	if (rc == MCA_OK) {
		if (data[0] % 2 == 0)
			issued(resp, &trusted);
		else
			roots(resp, fp);
	}
	json_decref(resp);
	return 0;
}
