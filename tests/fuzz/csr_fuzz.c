/* CSRs as POST /v1/enroll and /v1/renew receive them (PEM or DER). */
#include <stdint.h>
#include <stdlib.h>

#include "ca/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ca_csr *csr = NULL;
	struct ca_sans sans = { 0 };

	if (!ready && ca_global_init() == MCA_OK)
		ready = 1;
	if (ca_csr_parse(data, size, &csr) == MCA_OK) {
		(void)ca_csr_key_type(csr);
		if (ca_csr_check_key(csr, CA_KEY_MASK_ALL) != MCA_OK)
			abort();	/* a parsed CSR always has a supported key type */
		if (ca_csr_sans(csr, &sans) == MCA_OK)
			ca_sans_clear(&sans);
	}
	ca_csr_free(csr);
	return 0;
}
