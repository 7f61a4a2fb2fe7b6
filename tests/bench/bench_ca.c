#include "tests/bench/bench_ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca/common/buf.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define DAY	86400
#define TD	"mesh.internal"

static void
die(const char *prog, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, mca_err_detail());
	exit(1);
}

void
bench_ca_make(const char *prog, struct bench_ca *ca)
{
	const char *tmp = getenv("TMPDIR");
	struct ca_key *rk = NULL, *ik = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	int64_t now = mca_now();

	snprintf(ca->dir, sizeof(ca->dir), "%s/meshca-%s.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp", prog);
	if (mkdtemp(ca->dir) == NULL) {
		perror(prog);
		exit(1);
	}
	snprintf(ca->root, sizeof(ca->root), "%s/root.pem", ca->dir);
	snprintf(ca->inter, sizeof(ca->inter), "%s/int.pem", ca->dir);
	snprintf(ca->key, sizeof(ca->key), "%s/int.key", ca->dir);
	ca->local = NULL;
	if (ca_key_generate(CA_KEY_ECDSA_P384, &rk) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &ik) != MCA_OK ||
	    ca_root_create(rk, TD, now, 3650L * DAY, &root) != MCA_OK ||
	    ca_intermediate_create(root, rk, ik, TD, now, 365L * DAY, NULL, &inter) != MCA_OK ||
	    mca_file_write_atomic(ca->root, ca_cert_pem(root)->data, ca_cert_pem(root)->len,
	    0644) != MCA_OK ||
	    mca_file_write_atomic(ca->inter, ca_cert_pem(inter)->data, ca_cert_pem(inter)->len,
	    0644) != MCA_OK ||
	    ca_key_save(ik, ca->key, NULL) != MCA_OK ||
	    ca_signer_open(ca->inter, ca->key, NULL, ca->root, &ca->local) != MCA_OK)
		die(prog, "setting up a CA");
	ca_cert_free(root);
	ca_cert_free(inter);
	ca_key_free(rk);
	ca_key_free(ik);
}

void
bench_ca_remove(struct bench_ca *ca)
{
	ca_signer_free(ca->local);
	ca->local = NULL;
	unlink(ca->root);
	unlink(ca->inter);
	unlink(ca->key);
	rmdir(ca->dir);
}

pid_t
bench_signer_child(const char *prog, const struct bench_ca *ca, struct ca_signer **remote)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || (pid = fork()) < 0) {
		perror(prog);
		exit(1);
	}
	if (pid == 0) {
		close(sv[0]);
		if (ca_signer_hello(sv[1], MCA_OK, NULL) != MCA_OK)
			_exit(2);
		_exit(ca_signer_serve(ca->local, sv[1]) == MCA_OK ? 0 : 1);
	}
	close(sv[1]);
	if (ca_signer_open_remote(ca->inter, ca->root, sv[0], remote) != MCA_OK)
		die(prog, "ca_signer_open_remote");
	return pid;
}
