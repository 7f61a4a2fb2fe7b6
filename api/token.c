/*
 * One-time enrollment tokens, for services (route_services.c) and for
 * admins (route_admins.c): 256 random bits (DESIGN: identity model),
 * shown once, stored only as their SHA-256.
 */
#include "api/api.h"

#include <stdio.h>

#define TOKEN_BYTES 32

_Static_assert(sizeof(API_TOKEN_PREFIX) - 1 + (TOKEN_BYTES * 4 + 2) / 3 < API_TOKEN_MAX,
    "API_TOKEN_MAX holds a token");

/* "mca_" + base64url(32 random bytes) without padding: 47 characters. */
enum mca_err
api_token_new(char *out, size_t outsz, unsigned char hash[DB_TOKEN_HASH_LEN])
{
	unsigned char raw[TOKEN_BYTES];
	gnutls_datum_t in = { raw, sizeof(raw) }, b64 = { NULL, 0 };
	size_t n = 0;
	enum mca_err rc = MCA_ERR_CRYPTO;

	if (outsz < API_TOKEN_MAX)
		return mca_err_set(MCA_ERR_INVALID, "api_token_new: buffer too small");
	if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) < 0 ||
	    gnutls_base64_encode2(&in, &b64) < 0)
		goto out;
	n = (size_t)snprintf(out, outsz, "%s", API_TOKEN_PREFIX);
	for (unsigned i = 0; i < b64.size && b64.data[i] != '=' && n + 1 < outsz; i++) {
		char c = (char)b64.data[i];

		out[n++] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	out[n] = '\0';
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, out, n, hash) < 0)
		goto out;
	rc = MCA_OK;
out:
	mca_wipe(raw, sizeof(raw));
	if (b64.data != NULL) {
		mca_wipe(b64.data, b64.size);
		gnutls_free(b64.data);
	}
	return rc;
}

enum mca_err
api_token_ttl(const struct api_request *r, const json_t *v, int64_t *ttl)
{
	enum mca_err rc;

	*ttl = API_SETTING(r->ctx, token_ttl);
	if (v != NULL && (rc = api_json_duration(v, "ttl", ttl)) != MCA_OK)
		return rc;
	if (*ttl > API_MAX_TOKEN_TTL)
		return mca_err_set(MCA_ERR_TTL, "token ttl is at most 7 days");
	return MCA_OK;
}
