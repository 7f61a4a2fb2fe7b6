/*
 * The intermediate key's passphrase (see credential.h).  systemd puts
 * LoadCredential= files under $CREDENTIALS_DIRECTORY, readable by the
 * service alone and never on disk outside /run (systemd.exec(5),
 * "Credentials").
 */
#include "api/credential.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/common/fileio.h"

/* $CREDENTIALS_DIRECTORY/<name> when it exists, else "" in out. */
static void
credential_path(const char *name, char out[PATH_MAX])
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	out[0] = '\0';
	if (dir == NULL || dir[0] != '/' || mca_path_join(out, PATH_MAX, dir, name) != MCA_OK ||
	    !mca_file_exists(out))
		out[0] = '\0';
}

void
api_key_passphrase_env_wipe(void)
{
	char *v = getenv(API_ENV_KEY_PASSPHRASE);

	/* The string lives in the block /proc/PID/environ shows: overwrite it
	 * there, not only drop the pointer. */
	if (v != NULL)
		mca_wipe(v, strlen(v));
	(void)unsetenv(API_ENV_KEY_PASSPHRASE);
}

/* The passphrase from the environment, if set; wiped there either way. */
static enum mca_err
passphrase_from_env(struct mca_buf *out, bool *found)
{
	const char *v = getenv(API_ENV_KEY_PASSPHRASE);
	size_t n;
	enum mca_err rc = MCA_OK;

	if (v == NULL)
		return MCA_OK;
	n = strcspn(v, "\r\n");
	if (n == 0)
		rc = mca_err_set(MCA_ERR_CONFIG, "%s: empty passphrase", API_ENV_KEY_PASSPHRASE);
	else if (n >= API_PASSPHRASE_MAX)
		rc = mca_err_set(MCA_ERR_TOOBIG, "%s: longer than %d bytes", API_ENV_KEY_PASSPHRASE,
		    API_PASSPHRASE_MAX - 1);
	else if ((rc = mca_buf_set(out, v, n)) == MCA_OK)
		*found = true;
	api_key_passphrase_env_wipe();
	return rc;
}

enum mca_err
api_key_passphrase_load(const char *file, struct mca_buf *out, bool *found)
{
	char path[PATH_MAX];
	size_t n;
	enum mca_err rc;

	*found = false;
	mca_buf_reset(out);
	if (file != NULL) {
		if (snprintf(path, sizeof(path), "%s", file) >= (int)sizeof(path))
			return mca_err_set(MCA_ERR_CONFIG, "intermediate_key_passphrase_file: path too long");
	} else {
		credential_path(API_CRED_KEY_PASSPHRASE, path);
		if (path[0] == '\0')
			return passphrase_from_env(out, found);
	}
	api_key_passphrase_env_wipe();	/* a file wins: the variable is not kept either */
	if ((rc = mca_file_read(path, API_PASSPHRASE_MAX, out)) != MCA_OK)
		return rc;
	/* The first line: a trailing newline (or CRLF) is not part of it. */
	if (out->data == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "%s: empty passphrase", path);
	n = strcspn((const char *)out->data, "\r\n");
	mca_wipe(out->data + n, out->len - n);
	out->len = n;
	if (n == 0)
		return mca_err_set(MCA_ERR_CONFIG, "%s: empty passphrase", path);
	*found = true;
	return MCA_OK;
}
