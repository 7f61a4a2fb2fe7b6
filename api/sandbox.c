/*
 * Privileges meshcad drops after start-up (see sandbox.h).  Landlock:
 * Documentation/userspace-api/landlock.rst; no_new_privs: prctl(2).
 */
#include "api/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ca/common/config.h"
#include "ca/common/log.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset	444
#define SYS_landlock_add_rule		445
#define SYS_landlock_restrict_self	446
#endif

/* The kernel's landlock.h, by value: the build host's header may be
 * older than the kernel meshcad runs on. */
#define LL_CREATE_RULESET_VERSION	(1u << 0)
#define LL_RULE_PATH_BENEATH		1
#define LL_EXECUTE			(1ull << 0)
#define LL_WRITE_FILE			(1ull << 1)
#define LL_READ_FILE			(1ull << 2)
#define LL_READ_DIR			(1ull << 3)
#define LL_ABI1_ALL			((1ull << 13) - 1)
#define LL_REFER			(1ull << 13)	/* ABI 2 */
#define LL_TRUNCATE			(1ull << 14)	/* ABI 3 */
#define LL_IOCTL_DEV			(1ull << 15)	/* ABI 5 */
#define LL_FILE_RIGHTS			(LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | \
					 LL_TRUNCATE | LL_IOCTL_DEV)

struct ll_ruleset_attr {
	uint64_t	handled_access_fs;
};

struct ll_path_beneath {
	uint64_t	allowed_access;
	int32_t		parent_fd;
} __attribute__((packed));

#define DEFAULT_USER	"meshca"

int
api_sandbox_landlock_abi(void)
{
	long r = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

	return r < 0 ? 0 : (int)r;
}

static uint64_t
ll_handled(int abi)
{
	uint64_t h = LL_ABI1_ALL;

	if (abi >= 2)
		h |= LL_REFER;
	if (abi >= 3)
		h |= LL_TRUNCATE;
	if (abi >= 5)
		h |= LL_IOCTL_DEV;
	return h;
}

/* Allows `access` beneath path (a directory, or one file when file). */
static enum mca_err
ll_allow(int ruleset, const char *path, uint64_t access, bool file)
{
	struct ll_path_beneath pb;
	int fd;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return MCA_OK;	/* nothing there to allow */
		return mca_err_set(MCA_ERR_IO, "landlock: %s: %s", path, strerror(errno));
	}
	pb.allowed_access = file ? access & LL_FILE_RIGHTS : access;
	pb.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
		close(fd);
		return mca_err_set(MCA_ERR_IO, "landlock: rule for %s: %s", path, strerror(errno));
	}
	close(fd);
	return MCA_OK;
}

/* The directory of a file path ("." when it has none). */
static void
dir_of(const char *path, char out[PATH_MAX])
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, PATH_MAX, ".");
	else if (slash == path)
		snprintf(out, PATH_MAX, "/");
	else
		snprintf(out, PATH_MAX, "%.*s", (int)(slash - path), path);
}

/* A sanitizer build writes its reports to ASAN_OPTIONS log_path=DIR/x
 * (tests/hardening/sanitize.sh), and LeakSanitizer's tracer task reads
 * /proc/<pid>/task: with log_path set, both stay allowed. */
static enum mca_err
sanitizer_logs(int rs, uint64_t all)
{
	const char *o = getenv("ASAN_OPTIONS"), *lp;
	char path[PATH_MAX], dir[PATH_MAX];
	enum mca_err rc;

	if (o == NULL || (lp = strstr(o, "log_path=")) == NULL)
		return MCA_OK;
	lp += 9;
	snprintf(path, sizeof(path), "%.*s", (int)strcspn(lp, ":"), lp);
	dir_of(path, dir);
	if ((rc = ll_allow(rs, dir, all, false)) != MCA_OK)
		return rc;
	return ll_allow(rs, "/proc", LL_READ_FILE | LL_READ_DIR, false);
}

static enum mca_err
ll_rules(int rs, uint64_t all, const struct api_sandbox_paths *p)
{
	/* /proc/self: the process's own maps, status and tasks, which libc and
	 * sanitizer runtimes read. */
	static const char *const ro_dirs[] = { "/etc", "/proc/self" };
	static const char *const ro_files[] = { "/dev/null", "/dev/urandom" };
	char dir[PATH_MAX];
	enum mca_err rc;

	for (size_t i = 0; i < sizeof(p->rw) / sizeof(p->rw[0]); i++) {
		if (p->rw[i] == NULL)
			continue;
		dir_of(p->rw[i], dir);
		if ((rc = ll_allow(rs, dir, all, false)) != MCA_OK)
			return rc;
	}
	for (size_t i = 0; i < sizeof(ro_dirs) / sizeof(ro_dirs[0]); i++)
		if ((rc = ll_allow(rs, ro_dirs[i], LL_READ_FILE | LL_READ_DIR, false)) != MCA_OK)
			return rc;
	for (size_t i = 0; i < sizeof(ro_files) / sizeof(ro_files[0]); i++)
		if ((rc = ll_allow(rs, ro_files[i], LL_READ_FILE | LL_WRITE_FILE, true)) != MCA_OK)
			return rc;
	if (p->config != NULL && (rc = ll_allow(rs, p->config, LL_READ_FILE, true)) != MCA_OK)
		return rc;
	return sanitizer_logs(rs, all);
}

/* Restricts this thread (and threads and children it creates later) to
 * the rules; p NULL: no file access at all. */
static enum mca_err
ll_apply(const struct api_sandbox_paths *p, int *abi_out)
{
	struct ll_ruleset_attr attr;
	int abi = api_sandbox_landlock_abi(), rs;
	enum mca_err rc = MCA_OK;

	*abi_out = abi;
	if (abi <= 0)
		return MCA_OK;
	attr.handled_access_fs = ll_handled(abi);
	if ((rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0)) < 0)
		return mca_err_set(MCA_ERR_IO, "landlock: create ruleset: %s", strerror(errno));
	if ((rc = p != NULL ? ll_rules(rs, attr.handled_access_fs, p) :
	    sanitizer_logs(rs, attr.handled_access_fs)) != MCA_OK)
		goto out;
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		rc = mca_err_set(MCA_ERR_IO, "landlock: restrict_self: %s", strerror(errno));
out:
	close(rs);
	return rc;
}

enum mca_err
api_sandbox_user(const struct mca_config *cfg, const char *flag, const char **user)
{
	const char *u = flag != NULL ? flag : mca_config_get(cfg, "user");

	*user = NULL;
	if (u != NULL) {
		if (*u == '\0' || strlen(u) > 32)
			return mca_err_set(MCA_ERR_CONFIG, "user: an account name of 1 to 32 bytes");
		if (getpwnam(u) == NULL)
			return mca_err_set(MCA_ERR_CONFIG, "user: no account '%s'", u);
		*user = u;
		return MCA_OK;
	}
	if (geteuid() == 0 && getpwnam(DEFAULT_USER) != NULL)
		*user = DEFAULT_USER;
	return MCA_OK;
}

/* Keeps CAP_NET_BIND_SERVICE alone across the switch (capabilities(7)). */
static enum mca_err
keep_bind_cap(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	if (syscall(SYS_capset, &h, d) < 0)
		return mca_err_set(MCA_ERR_IO, "capset: %s", strerror(errno));
	return MCA_OK;
}

static enum mca_err
switch_user(const char *name)
{
	struct passwd *pw;

	if (name == NULL || strcmp(name, "root") == 0) {
		if (geteuid() == 0)
			mca_log(MCA_LOG_WARN, "meshcad keeps running as root", "hint",
			    "create the meshca account or set user", (const char *)NULL);
		return MCA_OK;
	}
	if ((pw = getpwnam(name)) == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "user: no account '%s'", name);
	if (geteuid() != 0) {
		if (geteuid() != pw->pw_uid)
			return mca_err_set(MCA_ERR_CONFIG, "user: only root can switch to '%s'", name);
		return MCA_OK;
	}
	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return mca_err_set(MCA_ERR_IO, "switching to user %s: %s", name, strerror(errno));
	(void)prctl(PR_SET_KEEPCAPS, 0);
	return keep_bind_cap();
}

enum mca_err
api_sandbox_network(const char *user, const struct api_sandbox_paths *p)
{
	char dir[PATH_MAX], abitext[8];
	enum mca_err rc;
	int abi = 0;

	if ((rc = switch_user(user)) != MCA_OK)
		return rc;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return mca_err_set(MCA_ERR_IO, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	/* SQLite's temporary files go beside the database, inside the rules. */
	if (p->rw[0] != NULL) {
		dir_of(p->rw[0], dir);
		(void)setenv("SQLITE_TMPDIR", dir, 0);
	}
	if ((rc = ll_apply(p, &abi)) != MCA_OK)
		return rc;
	snprintf(abitext, sizeof(abitext), "%d", abi);
	if (abi <= 0)
		mca_log(MCA_LOG_WARN, "landlock unavailable: file access is not restricted "
		    "(no_new_privs and the user switch still apply)", (const char *)NULL);
	else
		mca_log(MCA_LOG_INFO, "sandbox applied", "landlock_abi", abitext, "user",
		    user != NULL ? user : "unchanged", "no_new_privs", "1", (const char *)NULL);
	return MCA_OK;
}

enum mca_err
api_sandbox_signer(bool pkcs11)
{
	int abi = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return mca_err_set(MCA_ERR_IO, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	return pkcs11 ? MCA_OK : ll_apply(NULL, &abi);
}
