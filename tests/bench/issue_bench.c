/*
 * Benchmark (not a test: it asserts nothing about time).  The issuance
 * path of POST /v1/enroll and /v1/renew, step by step, on one core:
 *
 *   parse    ca_csr_parse: PEM -> PKCS#10, SPKI import, key-type check
 *            and the one verification of the CSR's signature;
 *   issue    ca_issue_leaf: the certificate assembled from the request
 *            (subject, SPKI of the CSR, URI/DNS/IP SANs, X509-SVID
 *            extensions, CRL/OCSP/caIssuers pointers), signed, exported
 *            to DER once and base64-encoded to PEM from that DER;
 *   commit   db_cert_insert with its audit entry into a fresh SQLite file
 *            opened by db_open (WAL, synchronous=FULL, foreign keys):
 *            one durable commit per certificate, as meshcad does today.
 *
 * Then, for the split of the first two: the CSR signature verification
 * alone (gnutls_x509_crq_verify on an imported request), the
 * intermediate's signature alone (ca_signer_sign over 512 bytes, about a
 * TBSCertificate) and the PEM encoding alone.  The intermediate is ECDSA
 * P-256 under an ECDSA P-384 root, as `meshca init` makes them; the CSR
 * key varies (P-256, Ed25519, RSA-2048).
 *
 *     build/tests/bench/issue_bench [SECONDS]     # per key type, default 2
 *
 * The SQLite file lives in a new directory under $TMPDIR (default /tmp),
 * removed at the end.  tests/bench/README.md records a run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"
#include "db/db.h"

#define DAY 86400
#define TD "mesh.internal"
#define SPIFFE "spiffe://" TD "/svc/bench"

static char dir[512];

static void
die(const char *what)
{
	fprintf(stderr, "issue_bench: %s: %s\n", what, mca_err_detail());
	exit(1);
}

static double
wall_us(void)
{
	return (double)mca_monotonic_us();
}

static double
cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Root (P-384) and intermediate (P-256) as `meshca init` makes them. */
static struct ca_signer *
signer_make(void)
{
	struct ca_key *rk = NULL, *ik = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	struct ca_signer *s = NULL;
	char rp[600], ip[600], kp[600];
	int64_t now = mca_now();

	snprintf(rp, sizeof(rp), "%s/root.pem", dir);
	snprintf(ip, sizeof(ip), "%s/int.pem", dir);
	snprintf(kp, sizeof(kp), "%s/int.key", dir);
	if (ca_key_generate(CA_KEY_ECDSA_P384, &rk) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &ik) != MCA_OK ||
	    ca_root_create(rk, TD, now, 3650L * DAY, &root) != MCA_OK ||
	    ca_intermediate_create(root, rk, ik, TD, now, 365L * DAY, NULL, &inter) != MCA_OK ||
	    mca_file_write_atomic(rp, ca_cert_pem(root)->data, ca_cert_pem(root)->len, 0644) != MCA_OK ||
	    mca_file_write_atomic(ip, ca_cert_pem(inter)->data, ca_cert_pem(inter)->len, 0644) != MCA_OK ||
	    ca_key_save(ik, kp, NULL) != MCA_OK ||
	    ca_signer_open(ip, kp, NULL, rp, &s) != MCA_OK)
		die("setting up a CA");
	unlink(rp);
	unlink(ip);
	unlink(kp);
	ca_cert_free(root);
	ca_cert_free(inter);
	ca_key_free(rk);
	ca_key_free(ik);
	return s;
}

static int64_t
service_make(struct db *db)
{
	struct db_service svc = { 0 };
	struct db_audit a = { "bench", "service.add", "bench", true, NULL };
	char *dns[] = { "bench.svc" };
	char *ips[] = { "10.0.0.0/8" };

	svc.name = "bench";
	svc.spiffe_id = SPIFFE;
	svc.dns_names = dns;
	svc.ndns = 1;
	svc.ip_ranges = ips;
	svc.nips = 1;
	svc.default_ttl = DAY;
	svc.max_ttl = 30 * DAY;
	svc.key_types = CA_KEY_MASK_ALL;
	svc.enabled = true;
	if (db_service_insert(db, &svc, mca_now(), &a) != MCA_OK)
		die("db_service_insert");
	return svc.id;
}

struct totals {
	double	parse, issue, commit, commit_cpu;
	long	n;
};

/* What renew_commit hands db_cert_insert (api_audit_cert_detail's shape). */
static enum mca_err
commit(struct db *db, int64_t svc_id, const struct ca_issued *is)
{
	char *dns[] = { "bench.svc" };
	char *ips[] = { "10.1.2.3" };
	char detail[256];
	struct db_audit a = { SPIFFE, "cert.renew", is->serial, true, detail };
	struct db_cert rec = { 0 };

	snprintf(detail, sizeof(detail), "{\"dns_names\":[\"bench.svc\"],\"ip_addresses\":"
	    "[\"10.1.2.3\"],\"not_after\":\"%lld\",\"service\":\"bench\",\"spiffe_id\":\"%s\"}",
	    (long long)is->not_after, SPIFFE);
	rec.serial = (char *)is->serial;
	rec.service_id = svc_id;
	rec.kind = DB_CERT_WORKLOAD;
	rec.spiffe_id = SPIFFE;
	rec.dns_names = dns;
	rec.ndns = 1;
	rec.ip_addresses = ips;
	rec.nips = 1;
	rec.not_before = is->not_before;
	rec.not_after = is->not_after;
	rec.der = is->der.data;
	rec.der_len = is->der.len;
	rec.status = DB_CERT_ACTIVE;
	return db_cert_insert(db, &rec, mca_now(), &a);
}

/* Full cycles for secs seconds: parse, issue, commit; per-step sums. */
static void
cycles(const struct ca_signer *s, struct db *db, int64_t svc_id, const struct mca_buf *csr_pem,
    const struct ca_sans *sans, double secs, struct totals *t)
{
	struct ca_leaf_req req = { SPIFFE, "bench", sans, DAY, 0,
		"https://ca.mesh.internal/v1/crl", "https://ca.mesh.internal/v1/ocsp",
		"https://ca.mesh.internal/v1/intermediate.crt" };
	double end = wall_us() + secs * 1e6;

	memset(t, 0, sizeof(*t));
	while (wall_us() < end) {
		struct ca_csr *csr = NULL;
		struct ca_issued is = { 0 };
		double t0, t1, t2, c2, t3, c3;

		t0 = wall_us();
		if (ca_csr_parse(csr_pem->data, csr_pem->len, &csr) != MCA_OK ||
		    ca_csr_check_key(csr, CA_KEY_MASK_ALL) != MCA_OK)
			die("ca_csr_parse");
		t1 = wall_us();
		req.now = mca_now();
		if (ca_issue_leaf(s, csr, &req, &is) != MCA_OK)
			die("ca_issue_leaf");
		t2 = wall_us();
		c2 = cpu_us();
		if (commit(db, svc_id, &is) != MCA_OK)
			die("db_cert_insert");
		t3 = wall_us();
		c3 = cpu_us();
		t->parse += t1 - t0;
		t->issue += t2 - t1;
		t->commit += t3 - t2;
		t->commit_cpu += c3 - c2;
		t->n++;
		ca_issued_clear(&is);
		ca_csr_free(csr);
	}
}

/* The CSR's signature verification alone, microseconds per call. */
static double
verify_only(const struct mca_buf *csr_pem, double secs)
{
	gnutls_x509_crq_t crq = NULL;
	gnutls_datum_t d = { csr_pem->data, (unsigned int)csr_pem->len };
	double t0 = wall_us(), end = t0 + secs * 1e6;
	long n = 0;

	if (gnutls_x509_crq_init(&crq) < 0 || gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM) < 0)
		die("gnutls_x509_crq_import");
	while (wall_us() < end) {
		if (gnutls_x509_crq_verify(crq, 0) < 0)
			die("gnutls_x509_crq_verify");
		n++;
	}
	gnutls_x509_crq_deinit(crq);
	return (wall_us() - t0) / (double)n;
}

/* The intermediate's signature alone, over about a TBSCertificate. */
static double
sign_only(const struct ca_signer *s, double secs)
{
	unsigned char tbs[512];
	struct mca_buf sig = { 0 };
	double t0 = wall_us(), end = t0 + secs * 1e6;
	long n = 0;

	memset(tbs, 0x5a, sizeof(tbs));
	while (wall_us() < end) {
		if (ca_signer_sign(s, tbs, sizeof(tbs), &sig) != MCA_OK)
			die("ca_signer_sign");
		n++;
	}
	mca_buf_free(&sig);
	return (wall_us() - t0) / (double)n;
}

/* DER -> PEM alone (what ca_issue_leaf does after the one DER export). */
static double
pem_only(const struct mca_buf *der, double secs)
{
	gnutls_datum_t d = { der->data, (unsigned int)der->len }, pem;
	double t0 = wall_us(), end = t0 + secs * 1e6;
	long n = 0;

	while (wall_us() < end) {
		if (gnutls_pem_base64_encode2("CERTIFICATE", &d, &pem) < 0)
			die("gnutls_pem_base64_encode2");
		gnutls_free(pem.data);
		n++;
	}
	return (wall_us() - t0) / (double)n;
}

static void
bench_type(const struct ca_signer *s, struct db *db, int64_t svc_id, enum ca_key_type kt,
    double secs)
{
	struct ca_key *k = NULL;
	struct ca_sans sans = { 0 };
	struct mca_buf pem = { 0 };
	struct ca_leaf_req req = { SPIFFE, "bench", NULL, DAY, 0, NULL, NULL, NULL };
	struct ca_csr *csr = NULL;
	struct ca_issued is = { 0 };
	struct totals t;
	double cycle, crypto;

	if (ca_key_generate(kt, &k) != MCA_OK ||
	    ca_sans_add_dns(&sans, "bench.svc", false) != MCA_OK ||
	    ca_sans_add_ip(&sans, "10.1.2.3", false) != MCA_OK ||
	    ca_csr_create(k, "bench", &sans, &pem) != MCA_OK)
		die("making a CSR");
	req.now = mca_now();
	req.sans = &sans;
	if (ca_csr_parse(pem.data, pem.len, &csr) != MCA_OK || ca_issue_leaf(s, csr, &req, &is) != MCA_OK)
		die("warm-up issuance");
	cycles(s, db, svc_id, &pem, &sans, secs, &t);
	cycle = (t.parse + t.issue + t.commit) / (double)t.n;
	crypto = (t.parse + t.issue) / (double)t.n;
	printf("%-9s n=%-6ld parse+verify %7.1f us | issue %7.1f us | commit %7.1f us "
	    "(cpu %5.1f us) | cycle %7.1f us = %5.0f/s | without commit %5.0f/s\n",
	    ca_key_type_name(kt), t.n, t.parse / (double)t.n, t.issue / (double)t.n,
	    t.commit / (double)t.n, t.commit_cpu / (double)t.n, cycle, 1e6 / cycle, 1e6 / crypto);
	printf("%-9s   of which: CSR signature verify %7.1f us | intermediate signature %7.1f us "
	    "| PEM encode %5.1f us | DER %zu bytes\n", ca_key_type_name(kt),
	    verify_only(&pem, secs / 4), sign_only(s, secs / 4), pem_only(&is.der, secs / 8), is.der.len);
	ca_issued_clear(&is);
	ca_csr_free(csr);
	mca_buf_free(&pem);
	ca_sans_clear(&sans);
	ca_key_free(k);
}

int
main(int argc, char **argv)
{
	static const enum ca_key_type types[] = { CA_KEY_ECDSA_P256, CA_KEY_ED25519, CA_KEY_RSA_2048 };
	const char *tmp = getenv("TMPDIR");
	double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;
	struct ca_signer *s;
	struct db *db = NULL;
	char path[600];
	int64_t svc_id;

	if (secs <= 0 || secs > 600) {
		fprintf(stderr, "usage: issue_bench [SECONDS per key type, 0-600]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/meshca-issue-bench.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("issue_bench: mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/meshca.db", dir);
	s = signer_make();
	if (db_open(path, &db) != MCA_OK)
		die("db_open");
	svc_id = service_make(db);
	printf("# issue_bench: %.1f s per key type, one thread, P-256 intermediate under a P-384 root;"
	    " SQLite in %s\n", secs, dir);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		bench_type(s, db, svc_id, types[i], secs);
	db_close(db);
	ca_signer_free(s);
	for (const char *const *sfx = (const char *const[]){ "", "-wal", "-shm", NULL }; *sfx; sfx++) {
		snprintf(path, sizeof(path), "%s/meshca.db%s", dir, *sfx);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}
