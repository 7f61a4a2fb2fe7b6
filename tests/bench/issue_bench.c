/*
 * Benchmark (not a test: it asserts nothing about time).  The issuance
 * path of POST /v1/enroll and /v1/renew, step by step, on one core:
 *
 *   parse    ca_csr_parse: PEM -> PKCS#10, SPKI import, key-type check
 *            and the one verification of the CSR's signature;
 *   issue    ca_issue_leaf: the leaf's TBSCertificate written as DER
 *            from the request (subject, SPKI of the CSR, URI/DNS/IP SANs,
 *            X509-SVID extensions, CRL/OCSP/caIssuers pointers), signed
 *            once, assembled into the Certificate and base64-encoded to
 *            PEM;
 *   commit   db_cert_insert with its audit entry into a fresh SQLite file
 *            opened by db_open (WAL, synchronous=FULL, foreign keys):
 *            one durable commit per certificate, as meshcad does today.
 *
 * Then the split of issue: the intermediate's signature over this very
 * TBSCertificate (ca_signer_sign over the bytes cut out of the issued
 * certificate), the PEM encoding, and the rest (building the TBS and
 * assembling the Certificate) by difference.  The CSR signature
 * verification alone splits parse.  The intermediate is ECDSA P-256
 * under an ECDSA P-384 root, as `meshca init` makes them; the CSR key
 * varies (P-256, Ed25519, RSA-2048).  The last row issues through a
 * forked signer process (ca_signer_serve on a socketpair), as meshcad
 * does: its "signature" is a round trip with an audit checkpoint, the
 * only raw bytes the child signs.
 *
 *     build/tests/bench/issue_bench [SECONDS [ROW]]
 *
 * SECONDS per row, default 2; ROW runs one row only ("ecdsa-p256",
 * "ed25519", "rsa-2048", "remote"), e.g. under
 * `valgrind --tool=callgrind --toggle-collect=ca_issue_leaf`.
 * The SQLite file lives in a new directory under $TMPDIR (default /tmp),
 * removed at the end.  tests/bench/README.md records a run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/timefmt.h"
#include "db/db.h"
#include "tests/bench/bench_ca.h"

#define DAY 86400
#define TD "mesh.internal"
#define SPIFFE "spiffe://" TD "/svc/bench"

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
	double	parse, issue, issue_cpu, commit, commit_cpu;
	long	n;
};

/* Per call: wall clock and this thread's CPU time, microseconds. */
struct cost {
	double	wall, cpu;
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

/* Full cycles for secs seconds: parse, issue, commit; per-step sums.  The
 * last certificate is left in *last (the URLs of meshcad's public_url). */
static void
cycles(const struct ca_signer *s, struct db *db, int64_t svc_id, const struct mca_buf *csr_pem,
    const struct ca_sans *sans, double secs, struct totals *t, struct ca_issued *last)
{
	struct ca_leaf_req req = { SPIFFE, "bench", sans, DAY, 0,
		"https://ca.mesh.internal/v1/crl", "https://ca.mesh.internal/v1/ocsp",
		"https://ca.mesh.internal/v1/intermediate.crt" };
	double end = wall_us() + secs * 1e6;

	memset(t, 0, sizeof(*t));
	while (wall_us() < end) {
		struct ca_csr *csr = NULL;
		struct ca_issued is = { 0 };
		double t0, t1, c1, t2, c2, t3, c3;

		t0 = wall_us();
		if (ca_csr_parse(csr_pem->data, csr_pem->len, &csr) != MCA_OK ||
		    ca_csr_check_key(csr, CA_KEY_MASK_ALL) != MCA_OK)
			die("ca_csr_parse");
		t1 = wall_us();
		c1 = cpu_us();
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
		t->issue_cpu += c2 - c1;
		t->commit += t3 - t2;
		t->commit_cpu += c3 - c2;
		t->n++;
		ca_issued_clear(last);
		*last = is;		/* the split measures the last one */
		ca_csr_free(csr);
	}
}

/* The CSR's signature verification alone. */
static struct cost
verify_only(const struct mca_buf *csr_pem, double secs)
{
	gnutls_x509_crq_t crq = NULL;
	gnutls_datum_t d = { csr_pem->data, (unsigned int)csr_pem->len };
	double t0 = wall_us(), c0 = cpu_us(), end = t0 + secs * 1e6;
	long n = 0;

	if (gnutls_x509_crq_init(&crq) < 0 || gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM) < 0)
		die("gnutls_x509_crq_import");
	while (wall_us() < end) {
		if (gnutls_x509_crq_verify(crq, 0) < 0)
			die("gnutls_x509_crq_verify");
		n++;
	}
	gnutls_x509_crq_deinit(crq);
	return (struct cost){ (wall_us() - t0) / (double)n, (cpu_us() - c0) / (double)n };
}

/* The TBSCertificate inside a DER Certificate (X.690 8.1.3 lengths). */
static void
tbs_of(const struct mca_buf *der, const unsigned char **tbs, size_t *len)
{
	const unsigned char *p = der->data;
	size_t at = 0, n = 0, hl;

	for (int depth = 0; depth < 2; depth++) {
		hl = 2;
		n = p[at + 1];
		if (n & 0x80) {
			hl += n & 0x7f;
			n = 0;
			for (size_t i = 2; i < hl; i++)
				n = n << 8 | p[at + i];
		}
		if (depth == 0)
			at += hl;
	}
	if (at + hl + n > der->len)
		die("malformed certificate");
	*tbs = p + at;
	*len = hl + n;
}

/* The intermediate's signature alone: over the leaf's TBSCertificate
 * in-process; remote, a round trip with an audit checkpoint (the only
 * raw bytes the child signs). */
static struct cost
sign_only(const struct ca_signer *s, bool remote, const struct mca_buf *der, double secs)
{
	unsigned char audit[CA_AUDIT_TBS_LEN] = CA_AUDIT_LABEL;
	const unsigned char *tbs = audit;
	size_t len = sizeof(audit);
	struct mca_buf sig = { 0 };
	double t0 = wall_us(), c0 = cpu_us(), end = t0 + secs * 1e6;
	long n = 0;

	if (!remote)
		tbs_of(der, &tbs, &len);
	while (wall_us() < end) {
		if (ca_signer_sign(s, tbs, len, &sig) != MCA_OK)
			die("ca_signer_sign");
		n++;
	}
	mca_buf_free(&sig);
	return (struct cost){ (wall_us() - t0) / (double)n, (cpu_us() - c0) / (double)n };
}

/* DER -> PEM alone (what ca_issue_leaf does once the DER is signed). */
static struct cost
pem_only(const struct mca_buf *der, double secs)
{
	gnutls_datum_t d = { der->data, (unsigned int)der->len }, pem;
	double t0 = wall_us(), c0 = cpu_us(), end = t0 + secs * 1e6;
	long n = 0;

	while (wall_us() < end) {
		if (gnutls_pem_base64_encode2("CERTIFICATE", &d, &pem) < 0)
			die("gnutls_pem_base64_encode2");
		gnutls_free(pem.data);
		n++;
	}
	return (struct cost){ (wall_us() - t0) / (double)n, (cpu_us() - c0) / (double)n };
}

static void
bench_type(const struct ca_signer *s, bool remote, struct db *db, int64_t svc_id,
    enum ca_key_type kt, double secs)
{
	struct ca_key *k = NULL;
	struct ca_sans sans = { 0 };
	struct mca_buf pem = { 0 };
	struct ca_leaf_req req = { SPIFFE, "bench", NULL, DAY, 0, NULL, NULL, NULL };
	struct ca_csr *csr = NULL;
	struct ca_issued is = { 0 };
	struct totals t;
	struct cost verify, sign, pemenc;
	double cycle, crypto, issue_cpu;
	char row[32];

	snprintf(row, sizeof(row), "%s%s", ca_key_type_name(kt), remote ? "/signer" : "");
	if (ca_key_generate(kt, &k) != MCA_OK ||
	    ca_sans_add_dns(&sans, "bench.svc", false) != MCA_OK ||
	    ca_sans_add_ip(&sans, "10.1.2.3", false) != MCA_OK ||
	    ca_csr_create(k, "bench", &sans, &pem) != MCA_OK)
		die("making a CSR");
	req.now = mca_now();
	req.sans = &sans;
	if (ca_csr_parse(pem.data, pem.len, &csr) != MCA_OK || ca_issue_leaf(s, csr, &req, &is) != MCA_OK)
		die("warm-up issuance");
	ca_issued_clear(&is);
	cycles(s, db, svc_id, &pem, &sans, secs, &t, &is);
	cycle = (t.parse + t.issue + t.commit) / (double)t.n;
	crypto = (t.parse + t.issue) / (double)t.n;
	issue_cpu = t.issue_cpu / (double)t.n;
	printf("%-17s n=%-6ld parse+verify %6.1f us | issue %6.1f us (cpu %6.1f us) | commit "
	    "%6.1f us (cpu %5.1f us) | cycle %6.1f us = %5.0f/s | without commit %5.0f/s\n",
	    row, t.n, t.parse / (double)t.n, t.issue / (double)t.n, issue_cpu,
	    t.commit / (double)t.n, t.commit_cpu / (double)t.n, cycle, 1e6 / cycle, 1e6 / crypto);
	verify = verify_only(&pem, secs / 4);
	sign = sign_only(s, remote, &is.der, secs / 4);
	pemenc = pem_only(&is.der, secs / 8);
	/* Split by CPU time: a busy machine inflates wall clock unevenly. */
	if (!remote)
		printf("%-17s   cpu of which: CSR signature verify %6.1f us | intermediate signature "
		    "%6.1f us | PEM encode %4.1f us | TBS + assembly (the rest) %5.1f us | DER %zu "
		    "bytes\n", row, verify.cpu, sign.cpu, pemenc.cpu, issue_cpu - sign.cpu - pemenc.cpu,
		    is.der.len);
	else
		printf("%-17s   CSR signature verify %6.1f us cpu | signer round trip (audit "
		    "checkpoint) %6.1f us wall | PEM encode %4.1f us cpu | DER %zu bytes\n", row,
		    verify.cpu, sign.wall, pemenc.cpu, is.der.len);
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
	const char *only = argc > 2 ? argv[2] : NULL;
	double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;
	struct bench_ca ca;
	struct ca_signer *remote = NULL;
	struct db *db = NULL;
	char path[600];
	int64_t svc_id;
	pid_t child;
	int status;

	if (secs <= 0 || secs > 600) {
		fprintf(stderr, "usage: issue_bench [SECONDS per row, 0-600 [ROW]]\n");
		return 2;
	}
	bench_ca_make("issue-bench", &ca);
	snprintf(path, sizeof(path), "%s/meshca.db", ca.dir);
	child = bench_signer_child("issue_bench", &ca, &remote);
	if (db_open(path, &db) != MCA_OK)
		die("db_open");
	svc_id = service_make(db);
	printf("# issue_bench: %.1f s per row, one thread, P-256 intermediate under a P-384 root;"
	    " SQLite in %s\n", secs, ca.dir);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (only == NULL || strcmp(only, ca_key_type_name(types[i])) == 0)
			bench_type(ca.local, false, db, svc_id, types[i], secs);
	if (only == NULL || strcmp(only, "remote") == 0)
		bench_type(remote, true, db, svc_id, CA_KEY_ECDSA_P256, secs);
	db_close(db);
	ca_signer_free(remote);		/* closes the socket: the child exits */
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "issue_bench: the signer child did not exit cleanly\n");
	for (const char *const *sfx = (const char *const[]){ "", "-wal", "-shm", NULL }; *sfx; sfx++) {
		snprintf(path, sizeof(path), "%s/meshca.db%s", ca.dir, *sfx);
		unlink(path);
	}
	bench_ca_remove(&ca);
	return 0;
}
