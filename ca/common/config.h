/*
 * The configuration file shared by meshcad and the meshca CLI, written by
 * `meshca init` as <state>/meshca.conf:
 *
 *     # comment
 *     key = value
 *
 * One setting per line, keys from the fixed list in config.c (an unknown
 * key is an error, so a typo never silently falls back to a default),
 * each key at most once.  Values run to the end of the line with
 * surrounding blanks removed.  The file is at most 64 KiB.
 */
#ifndef MCA_CONFIG_H
#define MCA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ca/common/err.h"

#define MCA_CONFIG_MAX_BYTES	(64 * 1024)
#define MCA_CONFIG_FILE		"meshca.conf"

struct mca_config;

enum mca_err mca_config_load(const char *path, struct mca_config **out) MCA_WUR;
/* Parses text (for tests and fuzzing); origin names it in messages. */
enum mca_err mca_config_parse(const char *text, size_t len, const char *origin, struct mca_config **out) MCA_WUR;
void mca_config_free(struct mca_config *cfg);

/* The value of key, or NULL when unset.  key must be a known key. */
const char *mca_config_get(const struct mca_config *cfg, const char *key);
/* The directory holding the file ("." for parsed text), to resolve
 * relative paths in values. */
const char *mca_config_dir(const struct mca_config *cfg);
/* Duration value of key, or def when unset. */
enum mca_err mca_config_duration(const struct mca_config *cfg, const char *key, int64_t def, int64_t *out) MCA_WUR;
/* True when key is one of the known keys. */
int mca_config_key_known(const char *key);

#endif
