/*
 * Files.  Reads are bounded; writes that others consume are atomic: the
 * data goes to a temporary file in the same directory, is fsync'ed, gets
 * its final mode, and is renamed over the target, then the directory is
 * fsync'ed.  A reader sees the old file or the new one, never a mix.
 */
#ifndef MCA_FILEIO_H
#define MCA_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ca/common/buf.h"
#include "ca/common/err.h"

/* Reads at most max bytes (MCA_ERR_TOOBIG beyond), NUL-terminated. */
enum mca_err mca_file_read(const char *path, size_t max, struct mca_buf *out) MCA_WUR;
enum mca_err mca_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode) MCA_WUR;
/* Creates a new file exclusively (MCA_ERR_EXISTS if present), fsync'ed. */
enum mca_err mca_file_create_excl(const char *path, const void *data, size_t len, mode_t mode) MCA_WUR;
bool mca_file_exists(const char *path);
/* mkdir -p with mode for the directories it creates. */
enum mca_err mca_mkdir_p(const char *path, mode_t mode) MCA_WUR;
/* out = dir "/" name; MCA_ERR_TOOBIG if it does not fit. */
enum mca_err mca_path_join(char *out, size_t n, const char *dir, const char *name) MCA_WUR;

#endif
