/*
 * Structured logging to stderr, one line per event, logfmt by default
 * (`ts=... level=info msg="..." key=value`) or JSON.  Callers pass
 * pre-formatted key/value fields; values are quoted and escaped here.
 * Never log secrets: tokens, passphrases, key material, request bodies.
 */
#ifndef MCA_LOG_H
#define MCA_LOG_H

#include <stdbool.h>

#include "ca/common/err.h"

enum mca_log_level { MCA_LOG_DEBUG, MCA_LOG_INFO, MCA_LOG_WARN, MCA_LOG_ERROR, MCA_LOG_LEVEL_MAX };

void mca_log_setup(enum mca_log_level min, bool json);
enum mca_err mca_log_level_parse(const char *s, enum mca_log_level *out) MCA_WUR;

/* mca_log(MCA_LOG_INFO, "request", "method", "GET", "status", "200", NULL):
 * a message followed by key, value pairs of strings, NULL-terminated.
 * A NULL value is skipped with its key. */
void mca_log(enum mca_log_level lvl, const char *msg, ...) __attribute__((sentinel));
/* printf-style message with no fields. */
void mca_logf(enum mca_log_level lvl, const char *fmt, ...) MCA_PRINTF(2, 3);

#endif
