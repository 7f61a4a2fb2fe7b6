/* Every name and value a request carries as text: SPIFFE IDs, trust
 * domains, service names, DNS names, IP addresses and CIDRs, durations,
 * RFC 3339 times; and the SAN policy check between two sets of them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/common/timefmt.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines of the input, as the names of a policy and of a request. */
static void
sans_from_lines(char *text, struct ca_sans *allowed, struct ca_sans *requested)
{
	char *save = NULL;
	int i = 0;

	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save), i++) {
		struct ca_sans *s = i % 2 ? requested : allowed;

		if (ca_sans_add_dns(s, line, i % 2 == 0) != MCA_OK)
			(void)ca_sans_add_ip(s, line, i % 2 == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	struct ca_sans allowed = { 0 }, requested = { 0 }, granted = { 0 };
	struct ca_ip ip;
	char text[64];
	int64_t v;

	(void)ca_spiffe_id_check(s, NULL);
	(void)ca_spiffe_id_check(s, "mesh.internal");
	(void)ca_trust_domain_check(s);
	(void)ca_service_name_check(s);
	(void)ca_dns_check(s, true);
	if (ca_ip_parse(s, true, &ip) == MCA_OK)
		ca_ip_format(&ip, text);
	(void)mca_duration_parse(s, &v);
	if (mca_time_parse(s, &v) == MCA_OK) {
		mca_time_format(v, text);
		if (strcmp(text, s) != 0)
			abort();	/* only the canonical spelling is accepted */
	}
	sans_from_lines(s, &allowed, &requested);
	if (ca_sans_authorize(&allowed, &requested, true, &granted) == MCA_OK)
		ca_sans_clear(&granted);
	ca_sans_clear(&allowed);
	ca_sans_clear(&requested);
	free(s);
	return 0;
}
