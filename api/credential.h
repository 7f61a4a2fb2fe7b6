/*
 * Secrets meshcad is handed at start: the intermediate key's passphrase,
 * from the file named by config intermediate_key_passphrase_file, else
 * from the systemd credential "intermediate-key-passphrase"
 * ($CREDENTIALS_DIRECTORY, LoadCredential= in meshcad.service), else from
 * the environment variable MESHCA_INTERMEDIATE_KEY_PASSPHRASE (for
 * containers and secret injectors), else none.  Never from the command
 * line, which every local user can read.  The environment variable is
 * wiped from the process's environment the moment it is read (and by
 * api_key_passphrase_env_wipe in a process that does not read it), so
 * /proc/PID/environ no longer shows it.
 */
#ifndef MESHCA_API_CREDENTIAL_H
#define MESHCA_API_CREDENTIAL_H

#include "ca/common/buf.h"
#include "ca/common/err.h"

struct mca_config;

#define API_CRED_KEY_PASSPHRASE	"intermediate-key-passphrase"
#define API_PASSPHRASE_MAX	1024
#define API_ENV_KEY_PASSPHRASE	"MESHCA_INTERMEDIATE_KEY_PASSPHRASE"

/* Loads the passphrase as above into out (a secret buffer, NUL-terminated,
 * its first line only; wiped by mca_buf_free).  *found is false and out
 * empty when none is configured.  file is the resolved path of
 * intermediate_key_passphrase_file, or NULL when the key is unset. */
enum mca_err api_key_passphrase_load(const char *file, struct mca_buf *out, bool *found) MCA_WUR;
/* Overwrites MESHCA_INTERMEDIATE_KEY_PASSPHRASE in place with NULs and
 * removes it from the environment. */
void api_key_passphrase_env_wipe(void);

#endif
