/*
 * meshcad's signer process (OpenBSD-style privilege separation).
 *
 * At start, before any thread or listener exists, meshcad forks and the
 * child executes meshcad again as `meshcad --signer-fd 3 --config FILE`:
 * a fresh address space that reads the intermediate key (file and
 * passphrase, or PKCS#11 token and PIN), answers the parent's signing
 * requests over a socketpair (ca_signer_serve) and nothing else.  The
 * network process never opens the key file.  The child ignores SIGINT,
 * SIGTERM and SIGHUP and exits when the parent closes the socket, so the
 * parent's last audit checkpoint is still signed at shutdown; it dies
 * with the parent (PR_SET_PDEATHSIG).  It is not restarted: if it dies,
 * signing answers 503 signer_unavailable and /v1/health is not ready
 * until meshcad is restarted (systemd's Restart= does that).
 */
#ifndef MESHCA_API_SIGNER_H
#define MESHCA_API_SIGNER_H

#include "ca/ca.h"
#include "ca/common/err.h"

struct mca_config;

#define API_SIGNER_FD	3	/* the child's end of the socketpair */

/* Parent: starts the child and opens the remote signer in *out.
 * config is the configuration file's path; log_format and log_level the
 * command-line overrides (NULL: none); icert and root resolved paths. */
enum mca_err api_signer_start(const char *config, const char *log_format, const char *log_level,
    const char *icert, const char *root, struct ca_signer **out) MCA_WUR;
/* Parent: reaps the child after ca_signer_free closed the socket. */
void api_signer_wait(void);
/* The child's process id, or 0. */
long api_signer_pid(void);

/* Child: `meshcad --signer-fd N`; cfg is loaded, logging set up.
 * Returns the exit status. */
int api_signer_main(const struct mca_config *cfg, int fd);

#endif
