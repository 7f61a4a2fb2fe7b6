/*
 * meshcad's signer process: started here, run here (see signer.h).
 */
#include "api/signer.h"
#include "api/credential.h"
#include "api/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca/common/config.h"
#include "ca/common/fileio.h"
#include "ca/common/log.h"


static pid_t signer_pid;

long
api_signer_pid(void)
{
	return (long)signer_pid;
}

/* Child, between fork and exec: only async-signal-safe calls. */
static void __attribute__((noreturn))
child_exec(int fd, char *const argv[])
{
	if (fd == API_SIGNER_FD) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			_exit(127);
	} else if (dup2(fd, API_SIGNER_FD) < 0)	/* dup2 clears FD_CLOEXEC */
		_exit(127);
	execv("/proc/self/exe", argv);
	_exit(127);
}

enum mca_err
api_signer_start(const char *config, const char *log_format, const char *log_level,
    const char *icert, const char *root, struct ca_signer **out)
{
	char fdtext[8];
	char *argv[12];
	int sv[2], n = 0, status;
	pid_t pid;
	enum mca_err rc;

	snprintf(fdtext, sizeof(fdtext), "%d", API_SIGNER_FD);
	argv[n++] = (char *)"meshcad";
	argv[n++] = (char *)"--signer-fd";
	argv[n++] = fdtext;
	argv[n++] = (char *)"--config";
	argv[n++] = (char *)config;
	if (log_format != NULL) {
		argv[n++] = (char *)"--log-format";
		argv[n++] = (char *)log_format;
	}
	if (log_level != NULL) {
		argv[n++] = (char *)"--log-level";
		argv[n++] = (char *)log_level;
	}
	argv[n] = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return mca_err_set(MCA_ERR_IO, "signer: socketpair: %s", strerror(errno));
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		return mca_err_set(MCA_ERR_IO, "signer: fork: %s", strerror(errno));
	}
	if (pid == 0)
		child_exec(sv[1], argv);
	close(sv[1]);
	signer_pid = pid;
	api_key_passphrase_env_wipe();	/* the child has its copy; this process needs none */
	if ((rc = ca_signer_open_remote(icert, root, sv[0], out)) != MCA_OK) {	/* takes sv[0] */
		(void)waitpid(pid, &status, 0);
		signer_pid = 0;
		return rc;
	}
	mca_logf(MCA_LOG_INFO, "signer process started (pid %ld); this process holds no "
	    "private CA key", (long)pid);
	return MCA_OK;
}

void
api_signer_wait(void)
{
	int status;

	if (signer_pid > 0)
		(void)waitpid(signer_pid, &status, 0);
	signer_pid = 0;
}

/* A path setting, relative to the configuration file's directory. */
static enum mca_err
signer_path(const struct mca_config *cfg, const char *key, char out[PATH_MAX])
{
	const char *v = mca_config_get(cfg, key);

	if (v == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "configuration lacks '%s'", key);
	if (v[0] == '/' || strncmp(v, "pkcs11:", 7) == 0) {
		if (snprintf(out, PATH_MAX, "%s", v) >= PATH_MAX)
			return mca_err_set(MCA_ERR_CONFIG, "%s: too long", key);
		return MCA_OK;
	}
	return mca_path_join(out, PATH_MAX, mca_config_dir(cfg), v);
}

/* The key, decrypted with (or the token opened with) the secret of
 * credential.h, wiped right after. */
static enum mca_err
signer_load(const struct mca_config *cfg, struct ca_signer **out)
{
	char icert[PATH_MAX], ikey[PATH_MAX], root[PATH_MAX], ppath[PATH_MAX];
	const char *file = mca_config_get(cfg, "intermediate_key_passphrase_file");
	struct mca_buf pass;
	bool found = false;
	enum mca_err rc;

	mca_buf_init(&pass, API_PASSPHRASE_MAX, true);
	if ((rc = signer_path(cfg, "intermediate_cert", icert)) != MCA_OK ||
	    (rc = signer_path(cfg, "intermediate_key", ikey)) != MCA_OK ||
	    (rc = signer_path(cfg, "root_cert", root)) != MCA_OK)
		goto out;
	if (file != NULL &&
	    (rc = signer_path(cfg, "intermediate_key_passphrase_file", ppath)) != MCA_OK)
		goto out;
	if ((rc = api_key_passphrase_load(file != NULL ? ppath : NULL, &pass, &found)) != MCA_OK)
		goto out;
	rc = ca_signer_open(icert, ikey, found ? (const char *)pass.data : NULL, root, out);
out:
	mca_buf_free(&pass);
	return rc;
}

/* The parent stops us by closing the socket (after its last audit
 * checkpoint); signals sent to the whole process group are not for us. */
static void
signer_signals(void)
{
	sigset_t none;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int
api_signer_main(const struct mca_config *cfg, int fd)
{
	struct ca_signer *s = NULL;
	const char *key = mca_config_get(cfg, "intermediate_key");
	enum mca_err rc;
	int status = 1;

	signer_signals();
	(void)prctl(PR_SET_DUMPABLE, 0);	/* no ptrace, no /proc/<pid>/mem for the same user */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	(void)prctl(PR_SET_NAME, "meshcad-signer");
	/* A parent that died before PDEATHSIG was set closed its end of the
	 * socket: the hello below fails and we stop.  (getppid() == 1 would
	 * also be true of a meshcad that is PID 1 in a container.) */
	rc = signer_load(cfg, &s);
	if (ca_signer_hello(fd, rc, mca_err_detail()) != MCA_OK || rc != MCA_OK)
		goto out;
	/* A key file has been read: no file access is needed any more.  A
	 * PKCS#11 module may open its token files at any time. */
	if ((rc = api_sandbox_signer(key != NULL && strncmp(key, "pkcs11:", 7) == 0)) != MCA_OK) {
		mca_log(MCA_LOG_ERROR, "signer sandbox failed", "error", mca_errname(rc),
		    "detail", mca_err_detail(), (const char *)NULL);
		goto out;
	}
	if ((rc = ca_signer_serve(s, fd)) != MCA_OK) {
		mca_log(MCA_LOG_ERROR, "signer process stops", "error", mca_errname(rc),
		    "detail", mca_err_detail(), (const char *)NULL);
		goto out;
	}
	status = 0;
out:
	ca_signer_free(s);
	close(fd);
	return status;
}
