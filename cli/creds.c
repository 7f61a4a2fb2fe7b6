/*
 * The credential directory a workload reads its identity from:
 *
 *     DIR/key.pem        -> live/key.pem          (symbolic links, made once)
 *     DIR/cert.pem       -> live/cert.pem
 *     DIR/chain.pem      -> live/chain.pem
 *     DIR/fullchain.pem  -> live/fullchain.pem
 *     DIR/roots.pem      -> live/roots.pem
 *     DIR/live           -> gen-<serial>           (switched by rename(2))
 *     DIR/gen-<serial>/  key.pem (0600) cert.pem chain.pem fullchain.pem roots.pem
 *
 * Why not five files replaced one by one: two renames can never be one
 * atomic step, so between replacing key.pem and cert.pem a reader would
 * find a new key beside the old certificate (or the reverse), whatever
 * the order.  Here a rotation writes a complete new generation, checks
 * that the key on disk matches the certificate on disk, and only then
 * switches "live" with one rename(2) of a symbolic link: every path
 * resolved before the switch reaches the old pair, every path resolved
 * after it the new pair, and there is no instant at which DIR/key.pem and
 * DIR/cert.pem resolve to different generations.  (Kubernetes projects
 * Secrets into pods the same way, with its "..data" link.)
 *
 * A reader that opens key.pem and cert.pem at different moments may
 * still straddle one switch; a reader that must never do so resolves
 * DIR/live once (realpath) and reads both files from there.  The current
 * and the previous generation are kept, so files resolved just before a
 * switch stay readable until the next rotation.
 */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/common/fileio.h"

#define CREDS_LIVE		"live"
#define CREDS_GEN_PREFIX	"gen-"
#define CREDS_PEM_MAX		(1024 * 1024)

enum { F_KEY, F_CERT, F_CHAIN, F_FULLCHAIN, F_ROOTS };

const char *const cli_creds_files[CLI_CREDS_NFILES] = {
	[F_KEY] = "key.pem", [F_CERT] = "cert.pem", [F_CHAIN] = "chain.pem",
	[F_FULLCHAIN] = "fullchain.pem", [F_ROOTS] = "roots.pem",
};

/* dir "/" a "/" b (b may be NULL). */
static enum mca_err
path3(char out[PATH_MAX], const char *dir, const char *a, const char *b)
{
	char mid[PATH_MAX];
	enum mca_err rc;

	if (b == NULL)
		return mca_path_join(out, PATH_MAX, dir, a);
	if ((rc = mca_path_join(mid, sizeof(mid), dir, a)) != MCA_OK)
		return rc;
	return mca_path_join(out, PATH_MAX, mid, b);
}

static void
dir_sync(const char *dir)
{
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Makes DIR/name a symbolic link to target, atomically replacing what
 * was there (a link, or a plain file of an older layout). */
static enum mca_err
link_set(const char *dir, const char *name, const char *target)
{
	char path[PATH_MAX], tmp[PATH_MAX], have[PATH_MAX], tname[NAME_MAX + 1];
	ssize_t n;
	enum mca_err rc;

	if ((rc = mca_path_join(path, sizeof(path), dir, name)) != MCA_OK)
		return rc;
	n = readlink(path, have, sizeof(have) - 1);
	if (n >= 0 && (have[n] = '\0', strcmp(have, target) == 0))
		return MCA_OK;
	if (snprintf(tname, sizeof(tname), ".%s.tmp", name) >= (int)sizeof(tname) ||
	    (rc = mca_path_join(tmp, sizeof(tmp), dir, tname)) != MCA_OK)
		return mca_err_set(MCA_ERR_TOOBIG, "%s: name too long", name);
	(void)unlink(tmp);		/* left by an interrupted run */
	if (symlink(target, tmp) != 0)
		return mca_err_set(MCA_ERR_IO, "%s: symlink: %s", tmp, strerror(errno));
	if (rename(tmp, path) != 0) {
		rc = mca_err_set(MCA_ERR_IO, "rename to %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return rc;
	}
	return MCA_OK;
}

/* Removes the plain files of DIR/gen and the directory itself. */
static void
gen_remove(const char *dir, const char *gen)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int fd;

	if (mca_path_join(path, sizeof(path), dir, gen) != MCA_OK)
		return;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_type == DT_REG)
			(void)unlinkat(fd, e->d_name, 0);
	closedir(d);
	(void)rmdir(path);
}

/* Keeps the current and the previous generation, removes the others. */
static void
gen_prune(const char *dir, const char *cur, const char *prev)
{
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, CREDS_GEN_PREFIX, strlen(CREDS_GEN_PREFIX)) != 0 ||
		    strcmp(e->d_name, cur) == 0 || strcmp(e->d_name, prev) == 0 ||
		    e->d_type != DT_DIR)
			continue;
		gen_remove(dir, e->d_name);
	}
	closedir(d);
}

static enum mca_err
gen_mkdir(const char *dir, const char *gen, mode_t mode)
{
	char path[PATH_MAX];
	enum mca_err rc;

	if ((rc = mca_path_join(path, sizeof(path), dir, gen)) != MCA_OK)
		return rc;
	gen_remove(dir, gen);		/* a half-written one from an interrupted run */
	if (mkdir(path, mode) != 0)
		return mca_err_set(MCA_ERR_IO, "%s: mkdir: %s", path, strerror(errno));
	return MCA_OK;
}

static enum mca_err
gen_put(const char *dir, const char *gen, int f, const struct mca_buf *a, const struct mca_buf *b)
{
	char path[PATH_MAX];
	struct mca_buf all;
	enum mca_err rc;

	mca_buf_init(&all, 0, f == F_KEY);
	if ((rc = path3(path, dir, gen, cli_creds_files[f])) != MCA_OK ||
	    (rc = mca_buf_append(&all, a->data, a->len)) != MCA_OK ||
	    (b != NULL && (rc = mca_buf_append(&all, b->data, b->len)) != MCA_OK))
		goto out;
	rc = mca_file_write_atomic(path, all.data, all.len, f == F_KEY ? 0600 : 0644);
out:
	mca_buf_free(&all);
	return rc;
}

/* The combined check: the key and certificate as they are on disk. */
static enum mca_err
gen_check(const char *dir, const char *gen)
{
	char kpath[PATH_MAX], cpath[PATH_MAX];
	struct ca_key *k = NULL;
	struct ca_cert *c = NULL;
	enum mca_err rc;

	if ((rc = path3(kpath, dir, gen, cli_creds_files[F_KEY])) != MCA_OK ||
	    (rc = path3(cpath, dir, gen, cli_creds_files[F_CERT])) != MCA_OK ||
	    (rc = ca_key_load(kpath, NULL, &k)) != MCA_OK ||
	    (rc = ca_cert_load(cpath, &c)) != MCA_OK)
		goto out;
	if ((rc = ca_key_matches(k, c)) != MCA_OK)
		rc = mca_err_set(rc, "%s: %s", cpath, mca_err_detail());
out:
	ca_key_free(k);
	ca_cert_free(c);
	return rc;
}

/* Points DIR/live at gen, and every file name at live/<name>. */
static enum mca_err
gen_switch(const char *dir, const char *gen, bool only_existing)
{
	char target[PATH_MAX], path[PATH_MAX];
	struct stat st;
	enum mca_err rc;

	if ((rc = link_set(dir, CREDS_LIVE, gen)) != MCA_OK)
		return rc;
	for (size_t i = 0; i < CLI_CREDS_NFILES; i++) {
		if (only_existing && (mca_path_join(path, sizeof(path), dir, cli_creds_files[i]) !=
		    MCA_OK || lstat(path, &st) != 0))
			continue;
		snprintf(target, sizeof(target), CREDS_LIVE "/%s", cli_creds_files[i]);
		if ((rc = link_set(dir, cli_creds_files[i], target)) != MCA_OK)
			return rc;
	}
	dir_sync(dir);
	return MCA_OK;
}

/* A directory of plain files (meshca 0.1, or copied by hand) becomes a
 * generation of its own first: each name is then replaced by a link to
 * the very same content, so the switch to links shows no reader a change,
 * and the real rotation that follows is one rename like any other. */
static enum mca_err
creds_adopt(const char *dir, mode_t mode)
{
	static const char gen[] = CREDS_GEN_PREFIX "adopted";
	char path[PATH_MAX], dst[PATH_MAX];
	struct mca_buf data;
	struct stat st;
	enum mca_err rc;

	if (mca_path_join(path, sizeof(path), dir, CREDS_LIVE) != MCA_OK || lstat(path, &st) == 0)
		return MCA_OK;
	if (mca_path_join(path, sizeof(path), dir, cli_creds_files[F_CERT]) != MCA_OK ||
	    lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return MCA_OK;		/* nothing to adopt */
	if ((rc = gen_mkdir(dir, gen, mode)) != MCA_OK)
		return rc;
	for (size_t i = 0; i < CLI_CREDS_NFILES; i++) {
		if ((rc = mca_path_join(path, sizeof(path), dir, cli_creds_files[i])) != MCA_OK ||
		    (rc = path3(dst, dir, gen, cli_creds_files[i])) != MCA_OK)
			return rc;
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		mca_buf_init(&data, CREDS_PEM_MAX, i == F_KEY);
		if ((rc = mca_file_read(path, CREDS_PEM_MAX, &data)) == MCA_OK)
			rc = mca_file_write_atomic(dst, data.data, data.len, st.st_mode & 0777);
		mca_buf_free(&data);
		if (rc != MCA_OK)
			return rc;
	}
	return gen_switch(dir, gen, true);
}

/* Generations take the mode of DIR (at least rwx for the owner), so a
 * group the operator allowed into DIR may read them too. */
static enum mca_err
creds_dir(const char *dir, mode_t *mode)
{
	struct stat st;
	enum mca_err rc;

	if (!mca_file_exists(dir) && (rc = mca_mkdir_p(dir, 0700)) != MCA_OK)
		return rc;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return mca_err_set(MCA_ERR_IO, "%s: not a directory", dir);
	*mode = (st.st_mode & 0777) | 0700;
	return MCA_OK;
}

enum mca_err
cli_creds_write(const char *dir, const struct ca_key *key, const struct ca_cert *leaf,
    const struct ca_cert *chain, const struct mca_buf *roots_pem)
{
	char gen[NAME_MAX + 1], serial[CA_SERIAL_HEX_MAX], prev[PATH_MAX] = "", path[PATH_MAX];
	mode_t mode = 0700;
	ssize_t n;
	enum mca_err rc;

	ca_cert_serial_hex(leaf, serial);
	snprintf(gen, sizeof(gen), CREDS_GEN_PREFIX "%s", serial);
	if ((rc = creds_dir(dir, &mode)) != MCA_OK || (rc = creds_adopt(dir, mode)) != MCA_OK ||
	    (rc = gen_mkdir(dir, gen, mode)) != MCA_OK ||
	    (rc = path3(path, dir, gen, cli_creds_files[F_KEY])) != MCA_OK ||
	    (rc = ca_key_save(key, path, NULL)) != MCA_OK ||
	    (rc = gen_put(dir, gen, F_CERT, ca_cert_pem(leaf), NULL)) != MCA_OK ||
	    (rc = gen_put(dir, gen, F_CHAIN, ca_cert_pem(chain), NULL)) != MCA_OK ||
	    (rc = gen_put(dir, gen, F_FULLCHAIN, ca_cert_pem(leaf), ca_cert_pem(chain))) != MCA_OK ||
	    (rc = gen_put(dir, gen, F_ROOTS, roots_pem, NULL)) != MCA_OK ||
	    (rc = gen_check(dir, gen)) != MCA_OK ||
	    (rc = mca_path_join(path, sizeof(path), dir, CREDS_LIVE)) != MCA_OK)
		return rc;
	if ((n = readlink(path, prev, sizeof(prev) - 1)) >= 0)
		prev[n] = '\0';
	if ((rc = gen_switch(dir, gen, false)) != MCA_OK)
		return rc;
	gen_prune(dir, gen, prev);
	return MCA_OK;
}
