/* meshca.conf, read by meshcad and the CLI. */
#include <stdint.h>

#include "ca/common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "default_ttl", "min_ttl", "token_ttl", "server_ttl" };
	struct mca_config *cfg = NULL;
	int64_t v;

	if (mca_config_parse((const char *)data, size, "fuzz", &cfg) == MCA_OK) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			(void)mca_config_duration(cfg, keys[i], 0, &v);
		(void)mca_config_get(cfg, "trust_domain");
	}
	mca_config_free(cfg);
	return 0;
}
