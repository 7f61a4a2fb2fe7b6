/*
 * Secrets given to meshca: the root key passphrase and enrollment tokens.
 * They come from files, the environment or the terminal, never from the
 * command line (where `ps` would show them), and live only in secret
 * buffers that are wiped when released.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Keeps the first line, without its line ending and trailing blanks. */
static void
first_line(struct mca_buf *b)
{
	unsigned char *nl = memchr(b->data, '\n', b->len);

	if (nl != NULL) {
		mca_wipe(nl, b->len - (size_t)(nl - b->data));
		b->len = (size_t)(nl - b->data);
	}
	while (b->len > 0 && (b->data[b->len - 1] == '\r' || b->data[b->len - 1] == ' ' ||
	    b->data[b->len - 1] == '\t'))
		b->data[--b->len] = '\0';
}

static enum mca_err
read_fd(int fd, const char *what, struct mca_buf *out)
{
	unsigned char chunk[512];
	enum mca_err rc = MCA_OK;
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mca_err_set(MCA_ERR_IO, "%s: %s", what, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (mca_buf_append(out, chunk, (size_t)n) != MCA_OK) {
			rc = mca_err_set(MCA_ERR_TOOBIG, "%s: longer than %d bytes", what,
			    CLI_SECRET_MAX);
			break;
		}
		/* Only the first line counts: stop at it (stdin may stay open). */
		if (memchr(chunk, '\n', (size_t)n) != NULL)
			break;
	}
	mca_wipe(chunk, sizeof(chunk));
	return rc;
}

enum mca_err
cli_secret_read_file(const char *path, const char *what, struct mca_buf *out)
{
	enum mca_err rc;
	int fd;

	mca_buf_init(out, CLI_SECRET_MAX + 2, true);	/* room for "\r\n" */
	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return mca_err_set(MCA_ERR_IO, "%s %s: %s", what, path, strerror(errno));
	rc = read_fd(fd, what, out);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc != MCA_OK)
		return rc;
	if (out->len > 0)
		first_line(out);
	if (out->len == 0)
		return mca_err_set(MCA_ERR_INVALID, "%s %s is empty", what, path);
	if (out->len > CLI_SECRET_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "%s: longer than %d bytes", what, CLI_SECRET_MAX);
	return mca_buf_terminate(out);
}

/* Reads one line from the terminal with echo off. */
static enum mca_err
tty_read_line(int fd, const char *prompt, struct mca_buf *out)
{
	struct termios saved, quiet;
	enum mca_err rc;

	mca_buf_reset(out);
	if (tcgetattr(fd, &saved) != 0)
		return mca_err_set(MCA_ERR_PASSPHRASE, "cannot read the terminal: %s", strerror(errno));
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		return mca_err_set(MCA_ERR_PASSPHRASE, "cannot use the terminal: %s", strerror(errno));
	rc = read_fd(fd, "passphrase", out);
	(void)tcsetattr(fd, TCSAFLUSH, &saved);
	if (write(fd, "\n", 1) < 0)
		rc = rc == MCA_OK ? MCA_ERR_IO : rc;
	if (rc == MCA_OK && out->len > 0)
		first_line(out);
	return rc == MCA_OK ? mca_buf_terminate(out) : rc;
}

static enum mca_err
passphrase_prompt(struct mca_buf *out)
{
	struct mca_buf again;
	enum mca_err rc;
	int fd;

	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		return mca_err_set(MCA_ERR_PASSPHRASE,
		    "no root key passphrase: use --passphrase-file or MESHCA_ROOT_PASSPHRASE "
		    "(no terminal to ask on: %s)", strerror(errno));
	mca_buf_init(&again, CLI_SECRET_MAX + 2, true);
	if ((rc = tty_read_line(fd, "Root key passphrase: ", out)) != MCA_OK)
		goto out;
	if (out->len < CLI_PASSPHRASE_MIN)	/* say so before asking again */
		goto out;
	if ((rc = tty_read_line(fd, "Repeat the passphrase: ", &again)) != MCA_OK)
		goto out;
	if (again.len != out->len || mca_memeq_ct(again.data, out->data, out->len) != 0)
		rc = mca_err_set(MCA_ERR_PASSPHRASE, "the two passphrases differ");
out:
	mca_buf_free(&again);
	close(fd);
	return rc;
}

enum mca_err
cli_passphrase_get(const char *file, struct mca_buf *out)
{
	const char *env;
	enum mca_err rc;

	mca_buf_init(out, CLI_SECRET_MAX + 2, true);
	if (file != NULL)
		rc = cli_secret_read_file(file, "passphrase file", out);
	else if ((env = getenv("MESHCA_ROOT_PASSPHRASE")) != NULL && *env != '\0')
		rc = mca_buf_set(out, env, strlen(env)) == MCA_OK ? MCA_OK :
		    mca_err_set(MCA_ERR_TOOBIG, "MESHCA_ROOT_PASSPHRASE: longer than %d bytes",
		    CLI_SECRET_MAX);
	else
		rc = passphrase_prompt(out);
	if (rc != MCA_OK)
		return rc;
	if (out->len < CLI_PASSPHRASE_MIN)
		return mca_err_set(MCA_ERR_PASSPHRASE, "the root key passphrase must be at least %d bytes",
		    CLI_PASSPHRASE_MIN);
	if (out->len > CLI_SECRET_MAX)
		return mca_err_set(MCA_ERR_TOOBIG, "the root key passphrase is longer than %d bytes",
		    CLI_SECRET_MAX);
	if (memchr(out->data, '\0', out->len) != NULL)
		return mca_err_set(MCA_ERR_PASSPHRASE, "the passphrase contains a NUL byte");
	return mca_buf_terminate(out);
}
