/*
 * Byte buffers: binary data is always (pointer, length).  A buffer grows
 * on append up to a hard cap fixed at init (MCA_ERR_TOOBIG past it), so no
 * input can make it grow without bound.  A buffer marked secret is wiped
 * before its memory is released (on growth and on free).
 *
 * The zero value { 0 } is an empty buffer with no cap (use mca_buf_init to
 * set one).  mca_buf_free() leaves the buffer empty and reusable; freeing
 * an empty buffer is a no-op.
 */
#ifndef MCA_BUF_H
#define MCA_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "ca/common/err.h"

struct mca_buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
	size_t		 max;		/* 0: no cap */
	bool		 secret;	/* wipe on release */
};

void mca_buf_init(struct mca_buf *b, size_t max, bool secret);
void mca_buf_free(struct mca_buf *b);
/* Empties without releasing memory (wipes it when secret). */
void mca_buf_reset(struct mca_buf *b);

/* Room for n more bytes (and the NUL after them), within max. */
enum mca_err mca_buf_reserve(struct mca_buf *b, size_t n) MCA_WUR;
enum mca_err mca_buf_append(struct mca_buf *b, const void *p, size_t n) MCA_WUR;
enum mca_err mca_buf_append_str(struct mca_buf *b, const char *s) MCA_WUR;
/* Replaces the contents with a copy of p[0..n). */
enum mca_err mca_buf_set(struct mca_buf *b, const void *p, size_t n) MCA_WUR;
/* Ensures data[len] == '\0' (not counted in len), for text contents. */
enum mca_err mca_buf_terminate(struct mca_buf *b) MCA_WUR;

/* Hex (lowercase) of p[0..n) into out, which must hold 2n+1 bytes. */
void mca_hex_encode(const unsigned char *p, size_t n, char *out);
/* Constant-time comparison of two equal-length secrets: 0 when equal. */
int mca_memeq_ct(const void *a, const void *b, size_t n);
/* Wipe memory in a way the compiler keeps. */
void mca_wipe(void *p, size_t n);

#endif
