/*
 * Shared set-up of the fuzz targets: a throw-away CA (root and
 * intermediate) made once per process in a temporary directory, for the
 * targets that need a signer.  Fuzz targets are built with
 * `meson setup -Dfuzz=true` by clang (libFuzzer + ASan + UBSan).
 */
#ifndef MCA_FUZZ_UTIL_H
#define MCA_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"

/* The signer of the throw-away CA; aborts if it cannot be made. */
const struct ca_signer *fuzz_signer(void);
/* A NUL-terminated copy of the input (the caller frees it). */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
