/*
 * A throw-away CA for the C benchmarks (issue_bench, signer_bench): an
 * ECDSA P-384 root and a P-256 intermediate as `meshca init` makes them,
 * in files in a new directory under $TMPDIR (default /tmp), opened in
 * this process; and a forked child that serves it as meshcad's signer
 * process does.  Every failure prints "PROG: what: detail" and exits 1.
 */
#ifndef MCA_BENCH_CA_H
#define MCA_BENCH_CA_H

#include <sys/types.h>

#include "ca/ca.h"

struct bench_ca {
	char			 dir[512];
	char			 root[600], inter[600], key[600];
	struct ca_signer	*local;
};

/* The directory is named after prog ("meshca-PROG.XXXXXX"). */
void bench_ca_make(const char *prog, struct bench_ca *ca);
/* Closes the signer, removes the three files and the directory (which
 * must hold nothing else by then). */
void bench_ca_remove(struct bench_ca *ca);
/* A child running ca_signer_serve over ca->local on a socketpair; *remote
 * signs through it.  ca_signer_free(*remote) closes the socket and the
 * child exits 0; the caller reaps it. */
pid_t bench_signer_child(const char *prog, const struct bench_ca *ca, struct ca_signer **remote);

#endif
