/*
 * What meshcad gives up once started (see meshcad(8), SECURITY).
 *
 * Network process, before any thread starts (Landlock and no_new_privs
 * bind the calling thread and the threads it creates later):
 *  - when started as root, switch to the unprivileged `user` (config key
 *    or --user; default "meshca" when that account exists), keeping only
 *    CAP_NET_BIND_SERVICE for a listener on a port below 1024; root is
 *    kept only with `user = root`, and logged;
 *  - PR_SET_NO_NEW_PRIVS: no exec can gain privileges;
 *  - Landlock (ABI 1 or later): read-write beneath the state directories
 *    (database, server certificate and key, port file), read-only the
 *    configuration file, /etc, /proc/self, /dev/null and /dev/urandom
 *    (and a sanitizer build's ASAN_OPTIONS log_path directory); nothing
 *    else of the file system.  Where the kernel has no Landlock, meshcad
 *    logs "landlock unavailable" and runs with the rest.
 * Signer process: non-dumpable (no ptrace, no /proc/<pid>/mem for other
 * processes of the same user), no_new_privs, and, for a key file,
 * Landlock with no file access at all once the key is read.
 */
#ifndef MESHCA_API_SANDBOX_H
#define MESHCA_API_SANDBOX_H

#include <stdbool.h>

#include "ca/common/err.h"

struct mca_config;

/* Paths the network process keeps; NULL entries are skipped. */
struct api_sandbox_paths {
	const char	*config;	/* read-only file */
	const char	*rw[6];		/* files or directories: their directory is read-write */
};

/* The account to run as: --user, else `user` in the configuration, else
 * "meshca" when it exists; NULL: stay (not root, or no such account). */
enum mca_err api_sandbox_user(const struct mca_config *cfg, const char *flag,
    const char **user) MCA_WUR;
/* Switches to user (when not NULL and running as root), sets no_new_privs
 * and applies the Landlock rules. */
enum mca_err api_sandbox_network(const char *user, const struct api_sandbox_paths *p) MCA_WUR;
/* The signer child, after its key is loaded: no_new_privs and, unless
 * pkcs11 (a module may open its token files later), no file access. */
enum mca_err api_sandbox_signer(bool pkcs11) MCA_WUR;
/* The Landlock ABI version of the running kernel, 0 when it has none. */
int api_sandbox_landlock_abi(void);

#endif
