/* OCSP requests as POST /v1/ocsp and GET /v1/ocsp/{base64} receive them;
 * a parsed request is answered, as the responder would. */
#include <stdint.h>
#include <stdlib.h>

#include "ca/ca.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ca_signer *s = fuzz_signer();
	struct ca_ocsp_req *req = NULL;
	struct ca_ocsp_answer a = { .status = CA_OCSP_REVOKED, .revoked_at = 1700000000, .reason = 1,
	    .this_update = 1700000000, .next_update = 1700003600 };
	struct mca_buf out = { 0 };
	char serial[CA_SERIAL_HEX_MAX];
	bool ours;

	if (ca_ocsp_req_parse(data, size, &req) == MCA_OK) {
		(void)ca_ocsp_req_has_nonce(req);
		if (ca_ocsp_req_serial(req, s, serial, &ours) == MCA_OK &&
		    ca_ocsp_respond(s, req, &a, 1700000000, &out) != MCA_OK)
			abort();	/* every request we accept gets an answer */
	}
	mca_buf_free(&out);
	ca_ocsp_req_free(req);
	return 0;
}
