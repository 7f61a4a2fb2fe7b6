#include "tests/fuzz/fuzz_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

static struct ca_signer *signer;
static char dir[] = "/tmp/meshca-fuzz-XXXXXX";
static char paths[3][PATH_MAX];

static void
cleanup(void)
{
	ca_signer_free(signer);
	for (int i = 0; i < 3; i++)
		unlink(paths[i]);
	rmdir(dir);
}

static void
die(const char *what)
{
	fprintf(stderr, "fuzz set-up: %s: %s: %s\n", what, mca_strerror(MCA_ERR_INVALID), mca_err_detail());
	abort();
}

const struct ca_signer *
fuzz_signer(void)
{
	struct ca_key *rk = NULL, *ik = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	int64_t now = mca_now();

	if (signer != NULL)
		return signer;
	if (ca_global_init() != MCA_OK || mkdtemp(dir) == NULL)
		die("init");
	snprintf(paths[0], PATH_MAX, "%s/root.crt", dir);
	snprintf(paths[1], PATH_MAX, "%s/intermediate.crt", dir);
	snprintf(paths[2], PATH_MAX, "%s/intermediate.key", dir);
	if (ca_key_generate(CA_KEY_ECDSA_P256, &rk) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &ik) != MCA_OK ||
	    ca_root_create(rk, "fuzz.internal", now, 86400, &root) != MCA_OK ||
	    ca_intermediate_create(root, rk, ik, "fuzz.internal", now, 86400, NULL, &inter) != MCA_OK)
		die("make a CA");
	if (mca_file_write_atomic(paths[0], ca_cert_pem(root)->data, ca_cert_pem(root)->len, 0644) != MCA_OK ||
	    mca_file_write_atomic(paths[1], ca_cert_pem(inter)->data, ca_cert_pem(inter)->len, 0644) != MCA_OK ||
	    ca_key_save(ik, paths[2], NULL) != MCA_OK ||
	    ca_signer_open(paths[1], paths[2], NULL, paths[0], &signer) != MCA_OK)
		die("open the signer");
	ca_key_free(rk);
	ca_key_free(ik);
	ca_cert_free(root);
	ca_cert_free(inter);
	atexit(cleanup);
	return signer;
}

char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
