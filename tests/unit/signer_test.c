/*
 * The signer process's request checks (ca_signer_check) and the remote
 * signer end to end: a forked child runs ca_signer_serve, the parent
 * issues, builds a CRL and an OCSP answer and signs a checkpoint through
 * ca_signer_open_remote; the results verify under the intermediate.
 * Prints the cost of a signature in process and through the child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"

#define TD	"mesh.internal"
#define DAY	86400L
#define assert_rc(expr, want) assert_int_equal((int)(expr), (int)(want))

static struct {
	char			 dir[64];
	char			 root[PATH_MAX], inter[PATH_MAX], key[PATH_MAX];
	struct ca_signer	*s;
	struct ca_cert		*inter_cert;	/* as a CA:TRUE TBS issued by the root */
	int64_t			 now;
} F;

static void
write_buf(const char *path, const struct mca_buf *b)
{
	assert_rc(mca_file_write_atomic(path, b->data, b->len, 0600), MCA_OK);
}

static int
setup(void **state)
{
	struct ca_key *rk = NULL, *ik = NULL;
	struct ca_cert *root = NULL;

	(void)state;
	snprintf(F.dir, sizeof(F.dir), "/tmp/meshca-signer-test-XXXXXX");
	if (mkdtemp(F.dir) == NULL || ca_global_init() != MCA_OK)
		return -1;
	F.now = (int64_t)time(NULL);
	snprintf(F.root, sizeof(F.root), "%s/root.pem", F.dir);
	snprintf(F.inter, sizeof(F.inter), "%s/int.pem", F.dir);
	snprintf(F.key, sizeof(F.key), "%s/int.key", F.dir);
	if (ca_key_generate(CA_KEY_ECDSA_P256, &rk) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &ik) != MCA_OK ||
	    ca_root_create(rk, TD, F.now, 3650L * DAY, &root) != MCA_OK ||
	    ca_intermediate_create(root, rk, ik, TD, F.now, 365L * DAY, NULL, &F.inter_cert) != MCA_OK)
		return -1;
	write_buf(F.root, ca_cert_pem(root));
	write_buf(F.inter, ca_cert_pem(F.inter_cert));
	if (ca_key_save(ik, F.key, NULL) != MCA_OK ||
	    ca_signer_open(F.inter, F.key, NULL, F.root, &F.s) != MCA_OK)
		return -1;
	ca_cert_free(root);
	ca_key_free(rk);
	ca_key_free(ik);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	ca_signer_free(F.s);
	ca_cert_free(F.inter_cert);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The first element inside the outer SEQUENCE of der: the TBS (X.690 8.1.3). */
static void
first_inner(const unsigned char *der, size_t len, const unsigned char **p, size_t *n)
{
	size_t off = 2, l;

	assert_true(len > 4 && der[0] == 0x30);
	if (der[1] & 0x80)
		off += der[1] & 0x7f;
	assert_true(off + 2 <= len && der[off] == 0x30);
	l = der[off + 1];
	*p = der + off;
	if (l & 0x80) {
		size_t k = l & 0x7f;

		l = 0;
		for (size_t i = 0; i < k; i++)
			l = l << 8 | der[off + 2 + i];
		*n = 2 + k + l;
	} else
		*n = 2 + l;
	assert_true(off + *n <= len);
}

static void
leaf(const struct ca_signer *s, struct ca_issued *out)
{
	struct ca_key *k = NULL;
	struct ca_csr *csr = NULL;
	struct mca_buf pem = { 0 };
	struct ca_leaf_req req = { .spiffe_id = "spiffe://" TD "/svc/a", .common_name = "a",
	    .ttl = 3600, .now = F.now };

	assert_rc(ca_key_generate(CA_KEY_ECDSA_P256, &k), MCA_OK);
	assert_rc(ca_csr_create(k, "a", NULL, &pem), MCA_OK);
	assert_rc(ca_csr_parse(pem.data, pem.len, &csr), MCA_OK);
	assert_rc(ca_issue_leaf(s, csr, &req, out), MCA_OK);
	ca_csr_free(csr);
	mca_buf_free(&pem);
	ca_key_free(k);
}

static void
test_check(void **state)
{
	struct ca_issued is = { 0 };
	struct mca_buf crl = { 0 };
	const struct mca_buf *ider = ca_cert_der(F.inter_cert);
	const unsigned char *tbs, *ctbs, *itbs;
	size_t n, cn, in;
	unsigned char audit[CA_AUDIT_TBS_LEN] = CA_AUDIT_LABEL, junk[400];

	(void)state;
	leaf(F.s, &is);
	first_inner(is.der.data, is.der.len, &tbs, &n);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CERT, tbs, n), MCA_OK);
	assert_rc(ca_crl_build(F.s, NULL, 0, 1, F.now, F.now + DAY, &crl), MCA_OK);
	first_inner(crl.data, crl.len, &ctbs, &cn);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CRL, ctbs, cn), MCA_OK);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_AUDIT, audit, sizeof(audit)), MCA_OK);

	/* Hostile: wrong type, truncated, trailing byte, random, empty, CA. */
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CRL, tbs, n), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_OCSP, tbs, n), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CERT, ctbs, cn), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CERT, tbs, n - 1), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CERT, tbs, n + 1), MCA_ERR_SIGN);
	gnutls_rnd(GNUTLS_RND_NONCE, junk, sizeof(junk));
	for (int t = CA_SIGNREQ_CERT; t < CA_SIGNREQ_MAX; t++)
		assert_rc(ca_signer_check(F.s, (enum ca_signreq_type)t, junk, sizeof(junk)),
		    MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CERT, tbs, 0), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, (enum ca_signreq_type)0, tbs, n), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_MAX, tbs, n), MCA_ERR_SIGN);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_AUDIT, audit, sizeof(audit) - 1), MCA_ERR_SIGN);
	audit[0] = 'X';
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_AUDIT, audit, sizeof(audit)), MCA_ERR_SIGN);
	/* The intermediate's own TBS: a CA certificate, issued by the root. */
	first_inner(ider->data, ider->len, &itbs, &in);
	assert_rc(ca_signer_check(F.s, CA_SIGNREQ_CERT, itbs, in), MCA_ERR_SIGN);
	ca_issued_clear(&is);
	mca_buf_free(&crl);
}

static double
elapsed_us(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

/* Average microseconds of one audit signature through s. */
static double
sign_cost(const struct ca_signer *s, int n)
{
	unsigned char audit[CA_AUDIT_TBS_LEN] = CA_AUDIT_LABEL;
	struct mca_buf sig = { 0 };
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		assert_rc(ca_signer_sign(s, audit, sizeof(audit), &sig), MCA_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_rc(ca_cert_verify_data(ca_signer_cert(s), audit, sizeof(audit), sig.data, sig.len),
	    MCA_OK);
	mca_buf_free(&sig);
	return elapsed_us(&a, &b) / n;
}

static void
test_remote(void **state)
{
	struct ca_signer *r = NULL;
	struct ca_issued is = { 0 };
	struct ca_cert *c = NULL;
	struct mca_buf crl = { 0 }, sig = { 0 };
	gnutls_x509_crl_t gcrl = NULL;
	gnutls_x509_crt_t issuer = NULL;
	gnutls_datum_t d;
	unsigned char bad[10] = "not audit";
	int sv[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		if (ca_signer_hello(sv[1], MCA_OK, NULL) != MCA_OK)
			_exit(2);
		_exit(ca_signer_serve(F.s, sv[1]) == MCA_OK ? 0 : 1);
	}
	close(sv[1]);
	assert_rc(ca_signer_open_remote(F.inter, F.root, sv[0], &r), MCA_OK);
	assert_true(ca_signer_available(r));

	leaf(r, &is);	/* the certificate verifies under the intermediate */
	assert_rc(ca_cert_parse(is.der.data, is.der.len, &c), MCA_OK);
	assert_rc(gnutls_x509_crt_init(&issuer), 0);
	d.data = ca_cert_der(F.inter_cert)->data;
	d.size = (unsigned int)ca_cert_der(F.inter_cert)->len;
	assert_rc(gnutls_x509_crt_import(issuer, &d, GNUTLS_X509_FMT_DER), 0);
	{
		gnutls_x509_crt_t leafc;
		unsigned int v = 1;

		assert_rc(gnutls_x509_crt_init(&leafc), 0);
		d.data = is.der.data;
		d.size = (unsigned int)is.der.len;
		assert_rc(gnutls_x509_crt_import(leafc, &d, GNUTLS_X509_FMT_DER), 0);
		assert_rc(gnutls_x509_crt_verify(leafc, &issuer, 1,
		    GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &v), 0);
		assert_int_equal(v, 0);
		gnutls_x509_crt_deinit(leafc);
	}
	assert_rc(ca_crl_build(r, NULL, 0, 2, F.now, F.now + DAY, &crl), MCA_OK);
	assert_rc(gnutls_x509_crl_init(&gcrl), 0);
	d.data = crl.data;
	d.size = (unsigned int)crl.len;
	assert_rc(gnutls_x509_crl_import(gcrl, &d, GNUTLS_X509_FMT_DER), 0);
	assert_int_equal(gnutls_x509_crl_check_issuer(gcrl, issuer), 1);
	{
		unsigned int v = 1;

		assert_rc(gnutls_x509_crl_verify(gcrl, &issuer, 1, 0, &v), 0);
		assert_int_equal(v, 0);
	}
	/* A refusal travels back as MCA_ERR_SIGN, and the child goes on. */
	assert_rc(ca_signer_sign(r, bad, sizeof(bad), &sig), MCA_ERR_SIGN);
	printf("# signature (ECDSA P-256 audit checkpoint): in process %.1f us, "
	    "through the signer process %.1f us\n", sign_cost(F.s, 500), sign_cost(r, 500));

	/* The child gone: fast failure, not a hang. */
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	assert_rc(ca_signer_sign(r, bad, sizeof(bad), &sig), MCA_ERR_SIGNER_UNAVAILABLE);
	assert_false(ca_signer_available(r));
	assert_true(ca_signer_available(F.s));

	gnutls_x509_crl_deinit(gcrl);
	gnutls_x509_crt_deinit(issuer);
	ca_cert_free(c);
	ca_issued_clear(&is);
	mca_buf_free(&crl);
	mca_buf_free(&sig);
	ca_signer_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_remote),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
