/*
 * Benchmark (not a test: it asserts nothing about time).  Signatures
 * through the signer process (ca/signer_remote.c, ca/signer_serve.c), as
 * meshcad's issuing workers make them: T threads sign at once through
 * one forked child running ca_signer_serve.
 *
 *   audit  ca_signer_sign over an audit checkpoint: the round trip and
 *          the P-256 signature, with the cheapest admission check;
 *   leaf   ca_issue_leaf with the remote signer: the certificate built
 *          here, its TBSCertificate checked (libtasn1) and signed there.
 *
 * For each, per signature: wall-clock rate, context switches of this
 * process (getrusage, all threads) and of the child (wait4), and CPU
 * time of both.  A new child serves each run, so wait4 counts that run
 * alone.
 *
 *     build/tests/bench/signer_bench [SECONDS] [THREADS...]   # 2; 1 4 16
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/timefmt.h"
#include "tests/bench/bench_ca.h"

#define DAY 86400
#define TD "mesh.internal"
#define SPIFFE "spiffe://" TD "/svc/bench"
#define THREADS_MAX 64

static struct bench_ca ca;

static void
die(const char *what)
{
	fprintf(stderr, "signer_bench: %s: %s\n", what, mca_err_detail());
	exit(1);
}

struct run {
	struct ca_signer	*remote;
	bool			 leaf;
	double			 end_us;
	long			 n;	/* signatures made by this thread */
};

static void *
worker(void *arg)
{
	struct run *w = arg;
	unsigned char audit[CA_AUDIT_TBS_LEN] = CA_AUDIT_LABEL;
	struct ca_leaf_req req = { SPIFFE, "bench", NULL, DAY, 0, NULL, NULL, NULL };
	struct mca_buf sig = { 0 }, pem = { 0 };
	struct ca_key *k = NULL;
	struct ca_csr *csr = NULL;

	if (w->leaf && (ca_key_generate(CA_KEY_ECDSA_P256, &k) != MCA_OK ||
	    ca_csr_create(k, "bench", NULL, &pem) != MCA_OK ||
	    ca_csr_parse(pem.data, pem.len, &csr) != MCA_OK))
		die("making a CSR");
	while ((double)mca_monotonic_us() < w->end_us) {
		if (w->leaf) {
			struct ca_issued is = { 0 };

			req.now = mca_now();
			if (ca_issue_leaf(w->remote, csr, &req, &is) != MCA_OK)
				die("ca_issue_leaf");
			ca_issued_clear(&is);
		} else if (ca_signer_sign(w->remote, audit, sizeof(audit), &sig) != MCA_OK)
			die("ca_signer_sign");
		w->n++;
	}
	ca_csr_free(csr);
	ca_key_free(k);
	mca_buf_free(&pem);
	mca_buf_free(&sig);
	return NULL;
}

static double
tv_us(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e6 + (double)tv->tv_usec;
}

static void
bench(bool leaf, int threads, double secs)
{
	struct run w[THREADS_MAX];
	pthread_t th[THREADS_MAX];
	struct rusage a, b, child;
	struct ca_signer *remote = NULL;
	double t0, t1, n = 0;
	int status;
	pid_t pid;

	pid = bench_signer_child("signer_bench", &ca, &remote);
	getrusage(RUSAGE_SELF, &a);
	t0 = (double)mca_monotonic_us();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct run){ remote, leaf, t0 + secs * 1e6, 0 };
		if (pthread_create(&th[i], NULL, worker, &w[i]) != 0)
			die("pthread_create");
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		n += (double)w[i].n;
	}
	t1 = (double)mca_monotonic_us();
	getrusage(RUSAGE_SELF, &b);
	ca_signer_free(remote);	/* closes the socket: the child exits */
	if (wait4(pid, &status, 0, &child) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		die("the child did not exit cleanly");
	printf("%-5s threads %2d: %7.0f signatures/s | context switches per signature "
	    "(voluntary + involuntary): here %4.2f + %4.2f, child %4.2f + %4.2f | "
	    "CPU us per signature: here %6.1f, child %6.1f\n",
	    leaf ? "leaf" : "audit", threads, n * 1e6 / (t1 - t0),
	    (double)(b.ru_nvcsw - a.ru_nvcsw) / n, (double)(b.ru_nivcsw - a.ru_nivcsw) / n,
	    (double)child.ru_nvcsw / n, (double)child.ru_nivcsw / n,
	    (tv_us(&b.ru_utime) + tv_us(&b.ru_stime) - tv_us(&a.ru_utime) - tv_us(&a.ru_stime)) / n,
	    (tv_us(&child.ru_utime) + tv_us(&child.ru_stime)) / n);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	static const int deflt[] = { 1, 4, 16 };
	double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;
	int threads[16], nt = 0;

	for (int i = 2; i < argc && nt < 16; i++)
		threads[nt++] = (int)strtol(argv[i], NULL, 10);
	if (nt == 0)
		for (size_t i = 0; i < sizeof(deflt) / sizeof(deflt[0]); i++)
			threads[nt++] = deflt[i];
	for (int i = 0; i < nt; i++)
		if (threads[i] < 1 || threads[i] > THREADS_MAX)
			secs = -1;
	if (secs <= 0 || secs > 600) {
		fprintf(stderr, "usage: signer_bench [SECONDS per run, 0-600] [THREADS 1-%d ...]\n",
		    THREADS_MAX);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (ca_global_init() != MCA_OK)
		die("ca_global_init");
	bench_ca_make("signer-bench", &ca);
	printf("# signer_bench: %.1f s per run, P-256 intermediate, one forked signer child\n", secs);
	for (int leaf = 0; leaf <= 1; leaf++)
		for (int i = 0; i < nt; i++)
			bench(leaf, threads[i], secs);
	bench_ca_remove(&ca);
	return 0;
}
