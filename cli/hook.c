/*
 * What the agent does after it wrote new credentials, so that the
 * workload picks them up: run a command (`--exec CMD`, through /bin/sh -c)
 * and/or send a signal to the process named by a PID file (`--signal HUP
 * --pid-file /run/nginx.pid`).
 *
 * The command runs in a process group of its own, with the signals the
 * agent blocks unblocked and the defaults of SIGTERM, SIGINT, SIGHUP and
 * SIGPIPE restored, and with MESHCA_AGENT_DIR and MESHCA_AGENT_SERIAL in
 * its environment.  The agent waits for it at most CLI_HOOK_TIMEOUT
 * seconds, then kills its process group: a stuck hook must not stop
 * renewals.  A hook that starts a long-running process must detach it
 * (`cmd &`), which is what a reload script does anyway.
 */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca/common/fileio.h"

#define HOOK_PIDFILE_MAX	64

extern char **environ;

static const struct {
	const char	*name;
	int		 sig;
} sig_names[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "ALRM", SIGALRM }, { "WINCH", SIGWINCH },
	{ "CONT", SIGCONT },
};

enum mca_err
cli_signal_parse(const char *s, int *sig)
{
	const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	long v;

	for (size_t i = 0; i < sizeof(sig_names) / sizeof(sig_names[0]); i++) {
		if (strcasecmp(n, sig_names[i].name) == 0) {
			*sig = sig_names[i].sig;
			return MCA_OK;
		}
	}
	if (cli_parse_long(s, 1, SIGRTMAX, &v) == MCA_OK) {
		*sig = (int)v;
		return MCA_OK;
	}
	return mca_err_set(MCA_ERR_INVALID, "'%.32s' is not a signal (HUP, USR1, TERM... or a "
	    "number)", s);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Waits for pid; after timeout seconds kills its process group. */
static enum mca_err
hook_wait(pid_t pid, const char *cmd)
{
	int st = 0;
	pid_t w;

	for (long waited = 0; waited < CLI_HOOK_TIMEOUT * 1000L; waited += 50) {
		if ((w = waitpid(pid, &st, WNOHANG)) == pid)
			goto done;
		if (w < 0 && errno != EINTR)
			return mca_err_set(MCA_ERR_IO, "hook: waitpid: %s", strerror(errno));
		sleep_ms(50);
	}
	(void)kill(-pid, SIGKILL);
	(void)waitpid(pid, &st, 0);
	return mca_err_set(MCA_ERR_IO, "hook '%.100s' still ran after %ds: killed", cmd,
	    CLI_HOOK_TIMEOUT);
done:
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return MCA_OK;
	if (WIFEXITED(st))
		return mca_err_set(MCA_ERR_IO, "hook '%.100s' exited with status %d", cmd,
		    WEXITSTATUS(st));
	return mca_err_set(MCA_ERR_IO, "hook '%.100s' killed by signal %d", cmd,
	    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static enum mca_err
hook_exec(const char *cmd)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)cmd, NULL };
	posix_spawnattr_t at;
	sigset_t none, dfl;
	pid_t pid;
	int err;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	if ((err = posix_spawnattr_init(&at)) != 0)
		return mca_err_set(MCA_ERR_IO, "hook: %s", strerror(err));
	if ((err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETPGROUP)) == 0 &&
	    (err = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
	    (err = posix_spawnattr_setsigdefault(&at, &dfl)) == 0 &&
	    (err = posix_spawnattr_setpgroup(&at, 0)) == 0)
		err = posix_spawn(&pid, "/bin/sh", NULL, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	if (err != 0)
		return mca_err_set(MCA_ERR_IO, "hook: cannot run /bin/sh: %s", strerror(err));
	return hook_wait(pid, cmd);
}

static enum mca_err
hook_signal(int sig, const char *pid_file)
{
	struct mca_buf text;
	char *p;
	long pid;
	enum mca_err rc;

	mca_buf_init(&text, HOOK_PIDFILE_MAX, false);
	if ((rc = mca_file_read(pid_file, HOOK_PIDFILE_MAX, &text)) != MCA_OK)
		goto out;
	p = (char *)text.data;
	p[strcspn(p, " \t\r\n")] = '\0';
	if (cli_parse_long(p, 2, 0x7fffffffL, &pid) != MCA_OK) {
		rc = mca_err_set(MCA_ERR_PARSE, "%s: not a process id", pid_file);
		goto out;
	}
	if (kill((pid_t)pid, sig) != 0)
		rc = mca_err_set(MCA_ERR_IO, "signal %d to process %ld (from %s): %s", sig, pid,
		    pid_file, strerror(errno));
out:
	mca_buf_free(&text);
	return rc;
}

enum mca_err
cli_hook_run(const struct cli_hook *h, const char *dir, const char *serial)
{
	enum mca_err rc = MCA_OK, rc2 = MCA_OK;

	if (h->exec != NULL) {
		if (setenv("MESHCA_AGENT_DIR", dir, 1) != 0 ||
		    setenv("MESHCA_AGENT_SERIAL", serial, 1) != 0)
			return MCA_ERR_NOMEM;
		rc = hook_exec(h->exec);
	}
	if (h->sig != 0 && h->pid_file != NULL)
		rc2 = hook_signal(h->sig, h->pid_file);
	return rc != MCA_OK ? rc : rc2;
}
