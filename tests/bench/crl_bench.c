/*
 * Benchmark (not a test: it asserts nothing about time).  Measures
 * ca_crl_build for 1,000, 10,000 and 100,000 revoked certificates and
 * ca_ocsp_respond signatures per second, for each intermediate key type.
 *
 *     build/tests/bench/crl_bench [seconds-per-ocsp-run]
 *
 * Prints one line per figure; tests/bench/README.md records a run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define DAY 86400

static char dir[64];

static void
die(const char *what)
{
	fprintf(stderr, "crl_bench: %s: %s\n", what, mca_err_detail());
	exit(1);
}

static double
now_s(void)
{
	return (double)mca_monotonic_us() / 1e6;
}

/* Root, intermediate (of type t) and a leaf, as files; the signer. */
static struct ca_signer *
signer_make(enum ca_key_type t, struct ca_issued *leaf)
{
	struct ca_key *rk = NULL, *ik = NULL, *lk = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	struct ca_signer *s = NULL;
	struct ca_csr *csr = NULL;
	struct mca_buf pem = { 0 };
	char rp[128], ip[128], kp[128];
	int64_t now = mca_now();
	struct ca_leaf_req req = { "spiffe://mesh.internal/svc/bench", "bench", NULL, DAY, now,
		NULL, NULL, NULL };

	snprintf(rp, sizeof(rp), "%s/root.pem", dir);
	snprintf(ip, sizeof(ip), "%s/int.pem", dir);
	snprintf(kp, sizeof(kp), "%s/int.key", dir);
	if (ca_key_generate(t, &rk) != MCA_OK || ca_key_generate(t, &ik) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &lk) != MCA_OK ||
	    ca_root_create(rk, "mesh.internal", now, 3650L * DAY, &root) != MCA_OK ||
	    ca_intermediate_create(root, rk, ik, "mesh.internal", now, 365L * DAY, NULL, &inter) !=
	    MCA_OK ||
	    mca_file_write_atomic(rp, ca_cert_pem(root)->data, ca_cert_pem(root)->len, 0644) !=
	    MCA_OK ||
	    mca_file_write_atomic(ip, ca_cert_pem(inter)->data, ca_cert_pem(inter)->len, 0644) !=
	    MCA_OK ||
	    ca_key_save(ik, kp, NULL) != MCA_OK ||
	    ca_signer_open(ip, kp, NULL, rp, &s) != MCA_OK ||
	    ca_csr_create(lk, "bench", NULL, &pem) != MCA_OK ||
	    ca_csr_parse(pem.data, pem.len, &csr) != MCA_OK ||
	    ca_issue_leaf(s, csr, &req, leaf) != MCA_OK)
		die("setting up a CA");
	unlink(rp);
	unlink(ip);
	unlink(kp);
	ca_csr_free(csr);
	mca_buf_free(&pem);
	ca_cert_free(root);
	ca_cert_free(inter);
	ca_key_free(rk);
	ca_key_free(ik);
	ca_key_free(lk);
	return s;
}

static void
bench_crl(struct ca_signer *s, const char *tag)
{
	static const size_t sizes[] = { 1000, 10000, 100000 };
	size_t max = 100000;
	struct ca_revoked *list;
	char (*serials)[CA_SERIAL_HEX_MAX];
	unsigned char raw[16];
	struct mca_buf crl = { 0 };
	int64_t now = mca_now();

	if ((list = calloc(max, sizeof(*list))) == NULL ||
	    (serials = calloc(max, sizeof(*serials))) == NULL)
		die("out of memory");
	for (size_t i = 0; i < max; i++) {
		if (ca_serial_new(raw, serials[i]) != MCA_OK)
			die("serial");
		list[i].serial = serials[i];
		list[i].revoked_at = now - (int64_t)(i % 86400);
		list[i].reason = (int)(i % 3) == 0 ? -1 : 1 + (int)(i % 6);	/* mix */
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		double best = 1e9;

		for (int rep = 0; rep < 3; rep++) {
			double t0 = now_s(), dt;

			if (ca_crl_build(s, list, sizes[k], 1, now, now + DAY, &crl) != MCA_OK)
				die("ca_crl_build");
			dt = now_s() - t0;
			if (dt < best)
				best = dt;
		}
		printf("crl %-8s %7zu entries: %8.1f ms (best of 3), %9zu bytes DER\n", tag,
		    sizes[k], best * 1000, crl.len);
	}
	mca_buf_free(&crl);
	free(list);
	free(serials);
}

static void
bench_ocsp(struct ca_signer *s, const struct ca_issued *leaf, const char *tag, double secs)
{
	gnutls_x509_crt_t issuer = NULL, cert = NULL;
	gnutls_ocsp_req_t g = NULL;
	gnutls_datum_t d, der = { NULL, 0 };
	struct ca_ocsp_req *req = NULL;
	struct mca_buf out = { 0 };
	struct ca_ocsp_answer a = { CA_OCSP_GOOD, 0, -1, 0, 0 };
	const struct mca_buf *ib = ca_cert_der(ca_signer_cert(s));
	double t0, dt;
	long n = 0;

	d.data = ib->data;
	d.size = (unsigned int)ib->len;
	if (gnutls_x509_crt_init(&issuer) < 0 || gnutls_x509_crt_import(issuer, &d,
	    GNUTLS_X509_FMT_DER) < 0)
		die("issuer");
	d.data = leaf->der.data;
	d.size = (unsigned int)leaf->der.len;
	if (gnutls_x509_crt_init(&cert) < 0 || gnutls_x509_crt_import(cert, &d,
	    GNUTLS_X509_FMT_DER) < 0 || gnutls_ocsp_req_init(&g) < 0 ||
	    gnutls_ocsp_req_add_cert(g, GNUTLS_DIG_SHA1, issuer, cert) < 0 ||
	    gnutls_ocsp_req_randomize_nonce(g) < 0 || gnutls_ocsp_req_export(g, &der) < 0)
		die("request");
	/* What the responder does per query: parse, match, sign. */
	t0 = now_s();
	do {
		char serial[CA_SERIAL_HEX_MAX];
		bool ours;

		a.this_update = mca_now();
		a.next_update = a.this_update + 3600;
		if (ca_ocsp_req_parse(der.data, der.size, &req) != MCA_OK ||
		    ca_ocsp_req_serial(req, s, serial, &ours) != MCA_OK || !ours ||
		    ca_ocsp_respond(s, req, &a, a.this_update, &out) != MCA_OK)
			die("ocsp");
		ca_ocsp_req_free(req);
		n++;
	} while ((dt = now_s() - t0) < secs);
	printf("ocsp %-8s %8.0f responses/s (parse + match + sign, %ld in %.1f s, "
	    "%zu bytes)\n", tag, (double)n / dt, n, dt, out.len);
	mca_buf_free(&out);
	gnutls_free(der.data);
	gnutls_ocsp_req_deinit(g);
	gnutls_x509_crt_deinit(issuer);
	gnutls_x509_crt_deinit(cert);
}

int
main(int argc, char **argv)
{
	static const enum ca_key_type types[] = { CA_KEY_ECDSA_P256, CA_KEY_ECDSA_P384,
		CA_KEY_ED25519, CA_KEY_RSA_2048 };
	double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;

	if (secs <= 0 || secs > 60)
		secs = 2.0;
	if (ca_global_init() != MCA_OK)
		die("init");
	snprintf(dir, sizeof(dir), "/tmp/crl_bench.XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct ca_issued leaf = { 0 };
		struct ca_signer *s = signer_make(types[i], &leaf);
		const char *tag = ca_key_type_name(types[i]);

		bench_crl(s, tag);
		bench_ocsp(s, &leaf, tag, secs);
		ca_issued_clear(&leaf);
		ca_signer_free(s);
	}
	rmdir(dir);
	return 0;
}
