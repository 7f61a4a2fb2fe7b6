#include "ca/common/buf.h"

#include <stdlib.h>
#include <string.h>

void
mca_buf_init(struct mca_buf *b, size_t max, bool secret)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	b->secret = secret;
}

void
mca_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

int
mca_memeq_ct(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d;
}

void
mca_buf_free(struct mca_buf *b)
{
	if (b == NULL)
		return;
	if (b->secret)
		mca_wipe(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
mca_buf_reset(struct mca_buf *b)
{
	if (b->secret)
		mca_wipe(b->data, b->cap);
	b->len = 0;
}

static enum mca_err
buf_reserve(struct mca_buf *b, size_t need)
{
	unsigned char *p;
	size_t cap;

	if (need < b->len || need == (size_t)-1)	/* overflow, or no room for the NUL */
		return mca_err_set(MCA_ERR_TOOBIG, "buffer size overflow");
	if (b->max != 0 && need > b->max)
		return mca_err_set(MCA_ERR_TOOBIG, "buffer limit of %zu bytes exceeded", b->max);
	if (need + 1 <= b->cap)			/* room for a terminator too */
		return MCA_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need + 1) {
		if (cap > ((size_t)-1) / 2)
			return MCA_ERR_TOOBIG;
		cap *= 2;
	}
	if (b->max != 0 && cap > b->max + 1)
		cap = b->max + 1;
	if (b->secret) {
		/* realloc could leave a copy behind: move by hand and wipe. */
		if ((p = malloc(cap)) == NULL)
			return MCA_ERR_NOMEM;
		if (b->len > 0)
			memcpy(p, b->data, b->len);
		mca_wipe(b->data, b->cap);
		free(b->data);
	} else if ((p = realloc(b->data, cap)) == NULL) {
		return MCA_ERR_NOMEM;
	}
	b->data = p;
	b->cap = cap;
	return MCA_OK;
}

enum mca_err
mca_buf_reserve(struct mca_buf *b, size_t n)
{
	return buf_reserve(b, b->len + n);	/* a sum that wraps is refused there */
}

enum mca_err
mca_buf_append(struct mca_buf *b, const void *p, size_t n)
{
	enum mca_err rc;

	if (n == 0)
		return mca_buf_terminate(b);
	if ((rc = buf_reserve(b, b->len + n)) != MCA_OK)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return MCA_OK;
}

enum mca_err
mca_buf_append_str(struct mca_buf *b, const char *s)
{
	return mca_buf_append(b, s, strlen(s));
}

enum mca_err
mca_buf_set(struct mca_buf *b, const void *p, size_t n)
{
	mca_buf_reset(b);
	return mca_buf_append(b, p, n);
}

enum mca_err
mca_buf_terminate(struct mca_buf *b)
{
	enum mca_err rc;

	if ((rc = buf_reserve(b, b->len)) != MCA_OK)
		return rc;
	b->data[b->len] = '\0';
	return MCA_OK;
}

void
mca_hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}
