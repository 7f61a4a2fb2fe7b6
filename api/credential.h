/*
 * Secrets meshcad is handed at start: the intermediate key's passphrase,
 * from the file named by config intermediate_key_passphrase_file, else
 * from the systemd credential "intermediate-key-passphrase"
 * ($CREDENTIALS_DIRECTORY, LoadCredential= in meshcad.service), else none.
 * Never from the environment or the command line, which other processes
 * can read.
 */
#ifndef MESHCA_API_CREDENTIAL_H
#define MESHCA_API_CREDENTIAL_H

#include "ca/common/buf.h"
#include "ca/common/err.h"

struct mca_config;

#define API_CRED_KEY_PASSPHRASE	"intermediate-key-passphrase"
#define API_PASSPHRASE_MAX	1024

/* Loads the passphrase as above into out (a secret buffer, NUL-terminated,
 * its first line only; wiped by mca_buf_free).  *found is false and out
 * empty when none is configured.  file is the resolved path of
 * intermediate_key_passphrase_file, or NULL when the key is unset. */
enum mca_err api_key_passphrase_load(const char *file, struct mca_buf *out, bool *found) MCA_WUR;

#endif
