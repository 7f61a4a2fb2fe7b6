/*
 * The signer process's request checks (ca_signer_check) and the remote
 * signer end to end: a forked child runs ca_signer_serve, the parent
 * issues, builds a CRL and an OCSP answer and signs a checkpoint through
 * ca_signer_open_remote; the results verify under the intermediate.
 * Many threads at once through one child: every reply reaches its own
 * caller, the child answers a round's requests with one write, and a
 * child killed mid-round fails every caller at once.
 * Prints the cost of a signature in process and through the child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <poll.h>
#include <pthread.h>
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

/* ---- many threads through one child (signer_remote.c's rounds) ---- */

#define THREADS		8
#define PER_THREAD	24
#define BIG_CRL_ENTRIES	4000	/* a TBSCertList larger than the child's 64 KiB reads */

/* A child serving F.s; *r signs through it. */
static pid_t
child_start(struct ca_signer **r)
{
	int sv[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		if (ca_signer_hello(sv[1], MCA_OK, NULL) != MCA_OK)
			_exit(2);
		_exit(ca_signer_serve(F.s, sv[1]) == MCA_OK ? 0 : 1);
	}
	assert_true(pid > 0);
	close(sv[1]);
	assert_rc(ca_signer_open_remote(F.inter, F.root, sv[0], r), MCA_OK);
	return pid;
}

/* The read and write system calls pid has made (proc(5), /proc/PID/io). */
/* Under valgrind, /proc/PID/io counts valgrind's own reads and writes
 * (its thread lock is a pipe): the counts say nothing of our rounds. */
static bool
io_counts_mean_rounds(void)
{
	return getenv("MESHCA_TEST_UNDER_VALGRIND") == NULL;
}

static void
child_io(pid_t pid, long *reads, long *writes)
{
	char path[64], line[128];
	FILE *f;

	*reads = *writes = -1;
	snprintf(path, sizeof(path), "/proc/%ld/io", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		skip();	/* a kernel without task I/O accounting */
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "syscr: ", 7) == 0)
			*reads = strtol(line + 7, NULL, 10);
		if (strncmp(line, "syscw: ", 7) == 0)
			*writes = strtol(line + 7, NULL, 10);
	}
	fclose(f);
	assert_true(*reads >= 0 && *writes >= 0);
}

/* An audit checkpoint of its own: seq, a random head hash, the time. */
static void
audit_tbs(unsigned char tbs[CA_AUDIT_TBS_LEN], uint64_t seq)
{
	size_t l = sizeof(CA_AUDIT_LABEL) - 1;

	memcpy(tbs, CA_AUDIT_LABEL, l);
	for (int i = 0; i < 8; i++) {
		tbs[l + (size_t)i] = (unsigned char)(seq >> (56 - 8 * i));
		tbs[l + 40 + (size_t)i] = (unsigned char)((uint64_t)F.now >> (56 - 8 * i));
	}
	gnutls_rnd(GNUTLS_RND_NONCE, tbs + l + 8, 32);
}

static gnutls_x509_crt_t
issuer_crt(void)
{
	gnutls_x509_crt_t c = NULL;
	gnutls_datum_t d = { ca_cert_der(F.inter_cert)->data,
	    (unsigned int)ca_cert_der(F.inter_cert)->len };

	if (gnutls_x509_crt_init(&c) < 0 || gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_DER) < 0)
		abort();
	return c;
}

/* Whether der is a certificate whose signature verifies under issuer. */
static bool
leaf_verifies(const struct mca_buf *der, gnutls_x509_crt_t issuer)
{
	gnutls_x509_crt_t c = NULL;
	gnutls_datum_t d = { der->data, (unsigned int)der->len };
	unsigned int v = 1;
	bool ok;

	ok = gnutls_x509_crt_init(&c) == 0 &&
	    gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_verify(c, &issuer, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &v) == 0 &&
	    v == 0;
	gnutls_x509_crt_deinit(c);
	return ok;
}

/* A CRL whose TBSCertList is larger than the child's read buffer. */
static bool
big_crl_verifies(const struct ca_signer *r, gnutls_x509_crt_t issuer, size_t *len)
{
	static char serials[BIG_CRL_ENTRIES][16];
	struct ca_revoked *list = calloc(BIG_CRL_ENTRIES, sizeof(*list));
	struct mca_buf crl = { 0 };
	gnutls_x509_crl_t g = NULL;
	gnutls_datum_t d;
	unsigned int v = 1;
	bool ok;

	if (list == NULL)
		return false;
	for (int i = 0; i < BIG_CRL_ENTRIES; i++) {
		snprintf(serials[i], sizeof(serials[i]), "7a%08x", (unsigned)i);
		list[i] = (struct ca_revoked){ serials[i], F.now, 1 };
	}
	ok = ca_crl_build(r, list, BIG_CRL_ENTRIES, 3, F.now, F.now + DAY, &crl) == MCA_OK;
	d.data = crl.data;
	d.size = (unsigned int)crl.len;
	ok = ok && gnutls_x509_crl_init(&g) == 0 &&
	    gnutls_x509_crl_import(g, &d, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crl_verify(g, &issuer, 1, 0, &v) == 0 && v == 0;
	*len = crl.len;
	gnutls_x509_crl_deinit(g);
	mca_buf_free(&crl);
	free(list);
	return ok;
}

struct worker {
	struct ca_signer	*r;
	int			 id;
	int			 signed_ok;	/* signatures that verify over their own TBS */
	size_t			 crl_len;	/* worker 0: the big CRL's size, 0 if it failed */
};

/* Alternately an audit checkpoint and a leaf certificate, each checked
 * against what this thread sent: a reply handed to the wrong caller
 * would not verify. */
static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	gnutls_x509_crt_t issuer = issuer_crt();
	unsigned char tbs[CA_AUDIT_TBS_LEN];
	struct mca_buf sig = { 0 }, pem = { 0 };
	struct ca_key *k = NULL;
	struct ca_csr *csr = NULL;
	struct ca_leaf_req req = { .spiffe_id = "spiffe://" TD "/svc/a", .common_name = "a",
	    .ttl = 3600, .now = F.now };

	if (ca_key_generate(CA_KEY_ECDSA_P256, &k) != MCA_OK ||
	    ca_csr_create(k, "a", NULL, &pem) != MCA_OK ||
	    ca_csr_parse(pem.data, pem.len, &csr) != MCA_OK)
		abort();
	for (int i = 0; i < PER_THREAD; i++) {
		struct ca_issued is = { 0 };

		if (w->id == 0 && i == PER_THREAD / 2 && big_crl_verifies(w->r, issuer, &w->crl_len))
			w->signed_ok++;
		if (i % 2 == 0) {
			audit_tbs(tbs, (uint64_t)w->id << 32 | (uint64_t)i);
			if (ca_signer_sign(w->r, tbs, sizeof(tbs), &sig) == MCA_OK &&
			    ca_cert_verify_data(ca_signer_cert(F.s), tbs, sizeof(tbs), sig.data,
			    sig.len) == MCA_OK)
				w->signed_ok++;
		} else if (ca_issue_leaf(w->r, csr, &req, &is) == MCA_OK &&
		    leaf_verifies(&is.der, issuer))
			w->signed_ok++;
		ca_issued_clear(&is);
	}
	ca_csr_free(csr);
	ca_key_free(k);
	mca_buf_free(&pem);
	mca_buf_free(&sig);
	gnutls_x509_crt_deinit(issuer);
	return NULL;
}

/* THREADS × PER_THREAD signatures (and one big CRL) at once: each
 * verifies over its own TBS, and the child answers them in batches:
 * fewer write(2) calls than signatures (one per request's header and
 * one per body when it answered one at a time). */
static void
test_remote_concurrent(void **state)
{
	struct ca_signer *r = NULL;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	long reads0, writes0, reads1, writes1;
	int total = 0, status;
	pid_t pid;

	(void)state;
	pid = child_start(&r);
	child_io(pid, &reads0, &writes0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .r = r, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		total += w[i].signed_ok;
	}
	child_io(pid, &reads1, &writes1);
	assert_int_equal(total, THREADS * PER_THREAD + 1);
	assert_true(w[0].crl_len > 64 * 1024);
	printf("# %d signatures from %d threads: the child made %ld reads and %ld writes\n",
	    total, THREADS, reads1 - reads0, writes1 - writes0);
	if (io_counts_mean_rounds())
		assert_true(writes1 - writes0 <= total);
	assert_true(ca_signer_available(r));
	ca_signer_free(r);	/* the child sees end of file and exits 0 */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct one {
	struct ca_signer	*r;
	unsigned char		 tbs[CA_AUDIT_TBS_LEN];
	struct mca_buf		 sig;
	enum mca_err		 rc;
	char			 detail[512];
};

static void *
one_sign(void *arg)
{
	struct one *o = arg;

	o->rc = ca_signer_sign(o->r, o->tbs, sizeof(o->tbs), &o->sig);
	snprintf(o->detail, sizeof(o->detail), "%s", mca_err_detail());
	return NULL;
}

/* THREADS callers of r, each with an audit checkpoint of its own. */
static void
ones_init(struct one *o, struct ca_signer *r)
{
	memset(o, 0, THREADS * sizeof(*o));
	for (int i = 0; i < THREADS; i++) {
		o[i].r = r;
		audit_tbs(o[i].tbs, (uint64_t)i);
	}
}

/* THREADS callers queued behind a stopped child (the first one's
 * request written, the others waiting for the next round). */
static void
queue_behind_stopped(pid_t pid, struct one *o, pthread_t *th)
{
	struct timespec settle = { 0, 300 * 1000 * 1000 };
	int status;

	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, one_sign, &o[i]), 0);
	nanosleep(&settle, NULL);	/* they are all queued by now */
}

/* A round of THREADS requests, one of them refused: the refusal goes to
 * its caller alone, every other reply to its own.  The seven queued
 * behind the first go out in one write and come back in one. */
static void
test_remote_batch_refusal(void **state)
{
	struct ca_signer *r = NULL;
	struct one o[THREADS];
	pthread_t th[THREADS];
	long reads0, writes0, reads1, writes1;
	int status;
	pid_t pid;

	(void)state;
	pid = child_start(&r);
	ones_init(o, r);
	o[3].tbs[0] = 'X';	/* not an audit checkpoint: refused */
	child_io(pid, &reads0, &writes0);
	queue_behind_stopped(pid, o, th);
	assert_int_equal(kill(pid, SIGCONT), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	child_io(pid, &reads1, &writes1);
	for (int i = 0; i < THREADS; i++) {
		if (i == 3) {
			assert_rc(o[i].rc, MCA_ERR_SIGN);
			assert_non_null(strstr(o[i].detail, "audit checkpoint"));
			continue;
		}
		assert_rc(o[i].rc, MCA_OK);
		assert_rc(ca_cert_verify_data(ca_signer_cert(F.s), o[i].tbs, sizeof(o[i].tbs),
		    o[i].sig.data, o[i].sig.len), MCA_OK);
	}
	printf("# %d queued requests: the child made %ld reads and %ld writes\n", THREADS,
	    reads1 - reads0, writes1 - writes0);
	if (io_counts_mean_rounds())
		assert_true(reads1 - reads0 <= 4 && writes1 - writes0 <= 4);	/* 2 rounds */
	assert_true(ca_signer_available(r));
	for (int i = 0; i < THREADS; i++)
		mca_buf_free(&o[i].sig);
	ca_signer_free(r);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The child killed with a request in flight and more queued: every
 * caller gets MCA_ERR_SIGNER_UNAVAILABLE at once (not after
 * CA_SIGNER_TIMEOUT_S), and so does every later one. */
static void
test_remote_killed_batch(void **state)
{
	struct ca_signer *r = NULL;
	struct one o[THREADS], late;
	pthread_t th[THREADS];
	struct timespec a, b;
	int status;
	pid_t pid;

	(void)state;
	pid = child_start(&r);
	ones_init(o, r);
	queue_behind_stopped(pid, o, th);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(kill(pid, SIGKILL), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (int i = 0; i < THREADS; i++) {
		assert_rc(o[i].rc, MCA_ERR_SIGNER_UNAVAILABLE);
		assert_null(o[i].sig.data);
	}
	assert_true(elapsed_us(&a, &b) < 5e6);
	memset(&late, 0, sizeof(late));
	late.r = r;
	audit_tbs(late.tbs, 99);
	one_sign(&late);
	assert_rc(late.rc, MCA_ERR_SIGNER_UNAVAILABLE);
	assert_false(ca_signer_available(r));
	ca_signer_free(r);
}

/* The test plays the child below: the framing of ca/ca_internal.h. */
#define FRAME_HDR	8

/* n bytes from fd within 5 seconds. */
static void
fake_read(int fd, unsigned char *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (size_t got = 0; got < n; ) {
		ssize_t r;

		assert_int_equal(poll(&pfd, 1, 5000), 1);
		assert_true((r = read(fd, p + got, n - got)) > 0);
		got += (size_t)r;
	}
}

/* One audit request from the parent: the index of its sender in o. */
static int
fake_request(int fd, const struct one *o)
{
	unsigned char h[FRAME_HDR], tbs[CA_AUDIT_TBS_LEN];

	fake_read(fd, h, sizeof(h));
	assert_int_equal((uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3], sizeof(tbs));
	assert_int_equal(h[5], CA_SIGNREQ_AUDIT);
	fake_read(fd, tbs, sizeof(tbs));
	for (int i = 0; i < THREADS; i++)
		if (memcmp(tbs, o[i].tbs, sizeof(tbs)) == 0)
			return i;
	fail_msg("a request nobody sent");
	return -1;
}

static void
fake_reply(int fd, int status, const char *text)
{
	unsigned char h[FRAME_HDR] = { 0 };
	size_t n = strlen(text);

	h[3] = (unsigned char)n;
	h[4] = (unsigned char)status;
	assert_int_equal(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
	assert_int_equal(write(fd, text, n), (ssize_t)n);
}

/* The child dies with a whole round written and part of it answered:
 * the answered keep their replies (a refusal among them goes to its
 * caller alone), the others and every later caller get
 * MCA_ERR_SIGNER_UNAVAILABLE at once. */
static void
test_remote_dies_mid_round(void **state)
{
	struct ca_signer *r = NULL;
	struct one o[THREADS], late;
	pthread_t th[THREADS];
	struct timespec settle = { 0, 300 * 1000 * 1000 }, a, b;
	int sv[2], order[THREADS];
	char text[32];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_rc(ca_signer_hello(sv[1], MCA_OK, NULL), MCA_OK);
	assert_rc(ca_signer_open_remote(F.inter, F.root, sv[0], &r), MCA_OK);
	ones_init(o, r);
	/* Round 1: caller 0 alone; the others queue behind it. */
	assert_int_equal(pthread_create(&th[0], NULL, one_sign, &o[0]), 0);
	assert_int_equal(fake_request(sv[1], o), 0);
	for (int i = 1; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, one_sign, &o[i]), 0);
	nanosleep(&settle, NULL);
	fake_reply(sv[1], 0, "signature 0");
	assert_int_equal(pthread_join(th[0], NULL), 0);
	assert_rc(o[0].rc, MCA_OK);
	assert_memory_equal(o[0].sig.data, "signature 0", o[0].sig.len);
	/* Round 2: all seven written before any reply. */
	for (int k = 0; k < THREADS - 1; k++)
		order[k] = fake_request(sv[1], o);
	snprintf(text, sizeof(text), "signature %d", order[0]);
	fake_reply(sv[1], 0, text);
	snprintf(text, sizeof(text), "refused %d", order[1]);
	fake_reply(sv[1], 1, text);
	clock_gettime(CLOCK_MONOTONIC, &a);
	close(sv[1]);
	for (int i = 1; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(elapsed_us(&a, &b) < 5e6);
	snprintf(text, sizeof(text), "signature %d", order[0]);
	assert_rc(o[order[0]].rc, MCA_OK);
	assert_int_equal(o[order[0]].sig.len, strlen(text));
	assert_memory_equal(o[order[0]].sig.data, text, strlen(text));
	snprintf(text, sizeof(text), "refused %d", order[1]);
	assert_rc(o[order[1]].rc, MCA_ERR_SIGN);
	assert_non_null(strstr(o[order[1]].detail, text));
	for (int k = 2; k < THREADS - 1; k++)
		assert_rc(o[order[k]].rc, MCA_ERR_SIGNER_UNAVAILABLE);
	memset(&late, 0, sizeof(late));
	late.r = r;
	audit_tbs(late.tbs, 99);
	one_sign(&late);
	assert_rc(late.rc, MCA_ERR_SIGNER_UNAVAILABLE);
	assert_false(ca_signer_available(r));
	for (int i = 0; i < THREADS; i++)
		mca_buf_free(&o[i].sig);
	ca_signer_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_remote),
		cmocka_unit_test(test_remote_concurrent),
		cmocka_unit_test(test_remote_batch_refusal),
		cmocka_unit_test(test_remote_killed_batch),
		cmocka_unit_test(test_remote_dies_mid_round),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
