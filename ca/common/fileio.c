#include "ca/common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum mca_err
mca_file_read(const char *path, size_t max, struct mca_buf *out)
{
	unsigned char chunk[4096];
	enum mca_err rc = MCA_ERR_IO;
	ssize_t n;
	int fd;

	mca_buf_reset(out);
	out->max = max;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return mca_err_set(errno == ENOENT ? MCA_ERR_NOT_FOUND : MCA_ERR_IO,
		    "%s: %s", path, strerror(errno));
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			mca_err_set(MCA_ERR_IO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (mca_buf_append(out, chunk, (size_t)n) != MCA_OK) {
			rc = mca_err_set(MCA_ERR_TOOBIG, "%s: larger than %zu bytes", path, max);
			goto out;
		}
	}
	rc = mca_buf_terminate(out);
out:
	mca_wipe(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

static enum mca_err
write_all(int fd, const void *data, size_t len, const char *path)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return mca_err_set(MCA_ERR_IO, "%s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0)
		return mca_err_set(MCA_ERR_IO, "%s: fsync: %s", path, strerror(errno));
	return MCA_OK;
}

static void
fsync_parent(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

enum mca_err
mca_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	enum mca_err rc;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return mca_err_set(MCA_ERR_TOOBIG, "path too long: %s", path);
	/* mkstemp creates the file 0600, so a key is never readable by others. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return mca_err_set(MCA_ERR_IO, "%s: %s", tmp, strerror(errno));
	if ((rc = write_all(fd, data, len, tmp)) != MCA_OK)
		goto fail;
	if (fchmod(fd, mode) != 0) {
		rc = mca_err_set(MCA_ERR_IO, "%s: chmod: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = mca_err_set(MCA_ERR_IO, "%s: close: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = mca_err_set(MCA_ERR_IO, "rename to %s: %s", path, strerror(errno));
		goto fail;
	}
	fsync_parent(path);
	return MCA_OK;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

enum mca_err
mca_file_create_excl(const char *path, const void *data, size_t len, mode_t mode)
{
	enum mca_err rc;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)
		return mca_err_set(errno == EEXIST ? MCA_ERR_EXISTS : MCA_ERR_IO,
		    "%s: %s", path, strerror(errno));
	rc = write_all(fd, data, len, path);
	if (rc == MCA_OK && fchmod(fd, mode) != 0)
		rc = mca_err_set(MCA_ERR_IO, "%s: chmod: %s", path, strerror(errno));
	close(fd);
	if (rc != MCA_OK)
		unlink(path);
	else
		fsync_parent(path);
	return rc;
}

bool
mca_file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

enum mca_err
mca_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n;

	if ((n = (size_t)snprintf(buf, sizeof(buf), "%s", path)) >= sizeof(buf) || n == 0)
		return mca_err_set(MCA_ERR_INVALID, "bad directory path");
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return mca_err_set(MCA_ERR_IO, "mkdir %s: %s", buf, strerror(errno));
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return MCA_OK;
}

enum mca_err
mca_path_join(char *out, size_t n, const char *dir, const char *name)
{
	int w = snprintf(out, n, "%s/%s", dir, name);

	if (w < 0 || (size_t)w >= n)
		return mca_err_set(MCA_ERR_TOOBIG, "path too long: %s/%s", dir, name);
	return MCA_OK;
}
