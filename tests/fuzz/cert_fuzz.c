/* Certificates as clients present them (client-certificate checks) and as
 * the CLI reads them from the server's answers. */
#include <stdint.h>
#include <string.h>

#include "ca/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ca_cert *c = NULL;
	struct ca_sans sans = { 0 };
	char serial[CA_SERIAL_HEX_MAX], fp[CA_FINGERPRINT_HEX_LEN];

	if (!ready && ca_global_init() == MCA_OK)
		ready = 1;
	if (ca_cert_parse(data, size, &c) == MCA_OK) {
		ca_cert_serial_hex(c, serial);
		ca_cert_fingerprint(c, fp);
		(void)ca_cert_uri(c);
		(void)ca_cert_not_before(c);
		(void)ca_cert_not_after(c);
		if (ca_cert_sans(c, &sans) == MCA_OK)
			ca_sans_clear(&sans);
		(void)ca_fingerprint_equal(fp, fp);
	}
	ca_cert_free(c);
	return 0;
}
