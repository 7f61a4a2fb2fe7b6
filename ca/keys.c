/*
 * Private keys: generation, PKCS#8 files (RFC 5958, encrypted with PBES2
 * of RFC 8018), key types and their masks.
 */
#include "ca/ca_internal.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/pkcs11.h>

#include "ca/common/fileio.h"

#define KEY_MIN_RSA_BITS	2048	/* NIST SP 800-131A */
#define KEY_MAX_RSA_BITS	8192	/* bounds the cost of a verification */
#define KEY_MAX_RSA_EXP_BYTES	8	/* e = 65537 in practice; a huge e is a DoS */

static const char *const key_type_names[CA_KEY_TYPE_MAX] = {
	[CA_KEY_ECDSA_P256] = "ecdsa-p256",
	[CA_KEY_ECDSA_P384] = "ecdsa-p384",
	[CA_KEY_ED25519] = "ed25519",
	[CA_KEY_RSA_2048] = "rsa-2048",
	[CA_KEY_RSA_3072] = "rsa-3072",
	[CA_KEY_RSA_4096] = "rsa-4096",
};

enum mca_err
ca_global_init(void)
{
	if (gnutls_check_version("3.7.0") == NULL)
		return mca_err_set(MCA_ERR_CRYPTO, "GnuTLS %s is older than 3.7.0",
		    gnutls_check_version(NULL));
	if (gnutls_global_init() < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "gnutls_global_init failed");
	return MCA_OK;
}

const char *
ca_key_type_name(enum ca_key_type t)
{
	if ((unsigned)t >= CA_KEY_TYPE_MAX)
		return "unknown";
	return key_type_names[t];
}

enum mca_err
ca_key_type_parse(const char *s, enum ca_key_type *out)
{
	if (s != NULL) {
		for (int t = 0; t < CA_KEY_TYPE_MAX; t++) {
			if (strcmp(s, key_type_names[t]) == 0) {
				*out = (enum ca_key_type)t;
				return MCA_OK;
			}
		}
	}
	return mca_err_set(MCA_ERR_KEY_TYPE, "unknown key type '%s' (expected one of "
	    "ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096)",
	    s != NULL ? s : "");
}

enum mca_err
ca_key_mask_parse(const char *s, uint32_t *mask)
{
	enum ca_key_type t;
	enum mca_err rc;
	uint32_t m = 0;
	char word[32];

	if (s == NULL || *s == '\0')
		return mca_err_set(MCA_ERR_KEY_TYPE, "empty key type list");
	while (*s != '\0') {
		size_t n = strcspn(s, ",");

		while (n > 0 && *s == ' ')
			s++, n--;
		while (n > 0 && s[n - 1] == ' ')
			n--;
		if (n == 0 || n >= sizeof(word))
			return mca_err_set(MCA_ERR_KEY_TYPE, "empty or overlong item in key type list");
		memcpy(word, s, n);
		word[n] = '\0';
		if (strcmp(word, "all") == 0)
			m |= CA_KEY_MASK_ALL;
		else if ((rc = ca_key_type_parse(word, &t)) != MCA_OK)
			return rc;
		else
			m |= CA_KEY_MASK(t);
		s += strcspn(s, ",");
		if (*s == ',' && *++s == '\0')
			return mca_err_set(MCA_ERR_KEY_TYPE, "trailing comma in key type list");
	}
	*mask = m;
	return MCA_OK;
}

static enum mca_err key_pkcs11_load(const char *uri, const char *pin, struct ca_key **out) MCA_WUR;

static enum mca_err
rsa_classify(gnutls_pubkey_t pub, enum ca_key_type *out)
{
	gnutls_datum_t m = { NULL, 0 }, e = { NULL, 0 };
	enum mca_err rc = MCA_ERR_KEY_TYPE;
	unsigned int bits = 0;

	if (gnutls_pubkey_get_pk_algorithm(pub, &bits) < 0 ||
	    gnutls_pubkey_export_rsa_raw2(pub, &m, &e, 0) < 0) {
		rc = mca_err_set(MCA_ERR_KEY_TYPE, "unreadable RSA public key");
		goto out;
	}
	if (bits < KEY_MIN_RSA_BITS)
		rc = mca_err_set(MCA_ERR_WEAK_KEY, "RSA key of %u bits; at least %u are "
		    "required (NIST SP 800-131A)", bits, KEY_MIN_RSA_BITS);
	else if (bits > KEY_MAX_RSA_BITS)
		rc = mca_err_set(MCA_ERR_KEY_TYPE, "RSA key of %u bits; at most %u are accepted",
		    bits, KEY_MAX_RSA_BITS);
	else if (e.size > KEY_MAX_RSA_EXP_BYTES)
		rc = mca_err_set(MCA_ERR_KEY_TYPE, "RSA public exponent of %u bytes; at most "
		    "%u are accepted", e.size, KEY_MAX_RSA_EXP_BYTES);
	else {
		*out = bits >= 4096 ? CA_KEY_RSA_4096 :
		    bits >= 3072 ? CA_KEY_RSA_3072 : CA_KEY_RSA_2048;
		rc = MCA_OK;
	}
out:
	gnutls_free(m.data);
	gnutls_free(e.data);
	return rc;
}

static enum mca_err
ecc_classify(gnutls_pubkey_t pub, enum ca_key_type *out)
{
	gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;

	if (gnutls_pubkey_export_ecc_raw2(pub, &curve, NULL, NULL, 0) < 0)
		return mca_err_set(MCA_ERR_KEY_TYPE, "unreadable EC public key");
	switch (curve) {
	case GNUTLS_ECC_CURVE_SECP256R1:
		*out = CA_KEY_ECDSA_P256;
		return MCA_OK;
	case GNUTLS_ECC_CURVE_SECP384R1:
		*out = CA_KEY_ECDSA_P384;
		return MCA_OK;
	default:
		return mca_err_set(MCA_ERR_KEY_TYPE, "EC curve %s is not accepted (only "
		    "P-256 and P-384, RFC 5480)", gnutls_ecc_curve_get_name(curve) ?
		    gnutls_ecc_curve_get_name(curve) : "unknown");
	}
}

enum mca_err
ca_pubkey_classify(gnutls_pubkey_t pub, enum ca_key_type *out)
{
	int alg = gnutls_pubkey_get_pk_algorithm(pub, NULL);

	switch (alg) {
	case GNUTLS_PK_RSA:
		return rsa_classify(pub, out);
	case GNUTLS_PK_ECDSA:
		return ecc_classify(pub, out);
	case GNUTLS_PK_EDDSA_ED25519:
		*out = CA_KEY_ED25519;
		return MCA_OK;
	default:
		return mca_err_set(MCA_ERR_KEY_TYPE, "public key algorithm %s is not accepted",
		    alg >= 0 && gnutls_pk_get_name(alg) != NULL ? gnutls_pk_get_name(alg) :
		    "unknown");
	}
}

enum mca_err
ca_key_pubkey(const struct ca_key *k, gnutls_pubkey_t *out)
{
	gnutls_pubkey_t pub = NULL;

	if (gnutls_pubkey_init(&pub) < 0)
		return MCA_ERR_NOMEM;
	if (gnutls_pubkey_import_privkey(pub, k->priv, 0, 0) < 0) {
		gnutls_pubkey_deinit(pub);
		return mca_err_set(MCA_ERR_CRYPTO, "cannot derive the public key");
	}
	*out = pub;
	return MCA_OK;
}

gnutls_sign_algorithm_t
ca_key_type_sign_algo(enum ca_key_type t)
{
	switch (t) {
	case CA_KEY_ECDSA_P256:
		return GNUTLS_SIGN_ECDSA_SHA256;
	case CA_KEY_ECDSA_P384:
		return GNUTLS_SIGN_ECDSA_SHA384;
	case CA_KEY_ED25519:
		return GNUTLS_SIGN_EDDSA_ED25519;
	case CA_KEY_RSA_2048:
	case CA_KEY_RSA_3072:
	case CA_KEY_RSA_4096:
		return GNUTLS_SIGN_RSA_SHA256;
	case CA_KEY_TYPE_MAX:
		break;
	}
	return GNUTLS_SIGN_UNKNOWN;
}

gnutls_digest_algorithm_t
ca_key_digest(const struct ca_key *k)
{
	switch (k->type) {
	case CA_KEY_ECDSA_P384:
		return GNUTLS_DIG_SHA384;	/* RFC 5480 4 */
	case CA_KEY_ED25519:
		return GNUTLS_DIG_UNKNOWN;	/* RFC 8410 6: PureEdDSA */
	case CA_KEY_ECDSA_P256:
	case CA_KEY_RSA_2048:
	case CA_KEY_RSA_3072:
	case CA_KEY_RSA_4096:
	case CA_KEY_TYPE_MAX:
		break;
	}
	return GNUTLS_DIG_SHA256;
}

enum mca_err
ca_key_matches_crt(const struct ca_key *k, gnutls_x509_crt_t crt)
{
	unsigned char a[32], b[32];
	size_t alen = sizeof(a), blen = sizeof(b);
	gnutls_pubkey_t pub = NULL;
	enum mca_err rc;

	if ((rc = ca_key_pubkey(k, &pub)) != MCA_OK)
		return rc;
	rc = mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 4.1.2.7: the private key does not "
	    "match the certificate's subject public key");
	if (gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &alen) < 0 ||
	    gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, b, &blen) < 0)
		goto out;
	if (alen == blen && memcmp(a, b, alen) == 0)
		rc = MCA_OK;
out:
	gnutls_pubkey_deinit(pub);
	return rc;
}

enum mca_err
ca_key_matches(const struct ca_key *k, const struct ca_cert *c)
{
	return ca_key_matches_crt(k, c->crt);
}

static enum mca_err
key_wrap(gnutls_x509_privkey_t x, struct ca_key **out)
{
	struct ca_key *k;
	gnutls_pubkey_t pub = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto out;
	k->x509 = x;
	x = NULL;
	if (gnutls_privkey_init(&k->priv) < 0)
		goto out;
	rc = mca_err_set(MCA_ERR_CRYPTO, "cannot use the private key");
	if (gnutls_privkey_import_x509(k->priv, k->x509, GNUTLS_PRIVKEY_IMPORT_COPY) < 0)
		goto out;
	if ((rc = ca_key_pubkey(k, &pub)) != MCA_OK ||
	    (rc = ca_pubkey_classify(pub, &k->type)) != MCA_OK)
		goto out;
	*out = k;
	k = NULL;
	rc = MCA_OK;
out:
	gnutls_pubkey_deinit(pub);
	gnutls_x509_privkey_deinit(x);
	ca_key_free(k);
	return rc;
}

enum mca_err
ca_key_generate(enum ca_key_type t, struct ca_key **out)
{
	static const struct { gnutls_pk_algorithm_t alg; unsigned int bits; } p[] = {
		[CA_KEY_ECDSA_P256] = { GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1) },
		[CA_KEY_ECDSA_P384] = { GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1) },
		[CA_KEY_ED25519] = { GNUTLS_PK_EDDSA_ED25519, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519) },
		[CA_KEY_RSA_2048] = { GNUTLS_PK_RSA, 2048 },
		[CA_KEY_RSA_3072] = { GNUTLS_PK_RSA, 3072 },
		[CA_KEY_RSA_4096] = { GNUTLS_PK_RSA, 4096 },
	};
	gnutls_x509_privkey_t x = NULL;
	int r;

	if ((unsigned)t >= CA_KEY_TYPE_MAX)
		return mca_err_set(MCA_ERR_INVALID, "unknown key type %d", (int)t);
	if (gnutls_x509_privkey_init(&x) < 0)
		return MCA_ERR_NOMEM;
	if ((r = gnutls_x509_privkey_generate2(x, p[t].alg, p[t].bits, 0, NULL, 0)) < 0) {
		gnutls_x509_privkey_deinit(x);
		return mca_err_set(MCA_ERR_CRYPTO, "generating a %s key: %s",
		    key_type_names[t], gnutls_strerror(r));
	}
	return key_wrap(x, out);	/* takes x */
}

enum mca_err
ca_key_load(const char *path, const char *passphrase, struct ca_key **out)
{
	struct mca_buf file;
	gnutls_x509_privkey_t x = NULL;
	gnutls_datum_t d;
	enum mca_err rc;
	int r;

	mca_buf_init(&file, CA_FILE_MAX, true);
	if (path == NULL || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no key path");
	if (ca_key_is_pkcs11_uri(path))
		return key_pkcs11_load(path, passphrase, out);
	if ((rc = mca_file_read(path, CA_FILE_MAX, &file)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	if (gnutls_x509_privkey_init(&x) < 0)
		goto out;
	d.data = file.data;
	d.size = (unsigned int)file.len;
	/* Tries PKCS#8 (encrypted or not), then PKCS#1 and SEC1 (RFC 5915). */
	r = gnutls_x509_privkey_import2(x, &d, GNUTLS_X509_FMT_PEM, passphrase, 0);
	if (r == GNUTLS_E_DECRYPTION_FAILED || r == GNUTLS_E_INVALID_PASSWORD) {
		rc = mca_err_set(MCA_ERR_PASSPHRASE, passphrase == NULL ?
		    "%s: the key is encrypted (RFC 8018 PBES2) and no passphrase was given" :
		    "%s: wrong passphrase for the encrypted key", path);
		goto out;
	}
	if (r < 0) {
		rc = mca_err_set(MCA_ERR_PARSE, "%s: not a PEM private key: %s", path,
		    gnutls_strerror(r));
		goto out;
	}
	rc = key_wrap(x, out);	/* takes x */
	x = NULL;
out:
	gnutls_x509_privkey_deinit(x);
	mca_buf_free(&file);
	return rc;
}

enum mca_err
ca_key_save(const struct ca_key *k, const char *path, const char *passphrase)
{
	gnutls_datum_t pem = { NULL, 0 };
	enum mca_err rc;
	int r;

	if (k == NULL || path == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no key or path");
	if (k->x509 == NULL)
		return mca_err_set(MCA_ERR_INVALID, "a key held in a token or by the signer "
		    "process cannot be saved to a file");
	if (passphrase != NULL && *passphrase == '\0')
		return mca_err_set(MCA_ERR_PASSPHRASE, "empty passphrase: give none to "
		    "write an unencrypted key");
	r = gnutls_x509_privkey_export2_pkcs8(k->x509, GNUTLS_X509_FMT_PEM, passphrase,
	    passphrase != NULL ? GNUTLS_PKCS_PBES2_AES_256 : GNUTLS_PKCS_PLAIN, &pem);
	if (r < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "exporting the key: %s", gnutls_strerror(r));
	rc = mca_file_write_atomic(path, pem.data, pem.size, 0600);
	gnutls_memset(pem.data, 0, pem.size);
	gnutls_free(pem.data);
	return rc;
}

/* ---- PKCS#11 --------------------------------------------------------- */

#define PKCS11_URI_MAX		1024
#define PKCS11_LABEL_MAX	64

bool
ca_key_is_pkcs11_uri(const char *path)
{
	return path != NULL && strncmp(path, CA_PKCS11_PREFIX, sizeof(CA_PKCS11_PREFIX) - 1) == 0;
}

/* The PIN, once: a wrong PIN is not retried, each try counts towards
 * the token's lockout. */
static int
key_pin_cb(void *userdata, int attempt, const char *token_url, const char *token_label,
    unsigned int flags, char *pin, size_t pin_max)
{
	const char *p = userdata;
	size_t n;

	(void)token_url, (void)token_label, (void)flags;
	if (p == NULL || attempt > 0 || (n = strlen(p)) >= pin_max)
		return -1;
	memcpy(pin, p, n + 1);
	return 0;
}

/* RFC 7512: meshca takes the PIN from a file or credential only, never
 * from the URI (which lands in configuration files and logs). */
static enum mca_err
pkcs11_uri_check(const char *uri)
{
	if (strlen(uri) > PKCS11_URI_MAX)
		return mca_err_set(MCA_ERR_CONFIG, "PKCS#11 URI longer than %d bytes", PKCS11_URI_MAX);
	if (strstr(uri, "pin-value") != NULL || strstr(uri, "pin-source") != NULL)
		return mca_err_set(MCA_ERR_CONFIG, "RFC 7512 2.3: meshca does not take a PIN in "
		    "the URI (pin-value, pin-source); give it in a file");
	return MCA_OK;
}

static enum mca_err
key_pkcs11_load(const char *uri, const char *pin, struct ca_key **out)
{
	struct ca_key *k = NULL;
	gnutls_pubkey_t pub = NULL;
	enum mca_err rc;
	int r;

	if ((rc = pkcs11_uri_check(uri)) != MCA_OK)
		return rc;
	rc = MCA_ERR_NOMEM;
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (pin != NULL && (k->pin = strdup(pin)) == NULL) ||
	    gnutls_privkey_init(&k->priv) < 0)
		goto out;
	gnutls_privkey_set_pin_function(k->priv, key_pin_cb, k->pin);
	if ((r = gnutls_privkey_import_url(k->priv, uri, 0)) < 0) {
		rc = mca_err_set(r == GNUTLS_E_PKCS11_PIN_ERROR ? MCA_ERR_PASSPHRASE :
		    MCA_ERR_CRYPTO, "%s: cannot use the PKCS#11 private key: %s%s", uri,
		    gnutls_strerror(r), pin == NULL ? " (no PIN was given)" : "");
		goto out;
	}
	if ((rc = ca_key_pubkey(k, &pub)) != MCA_OK ||
	    (rc = ca_pubkey_classify(pub, &k->type)) != MCA_OK)
		goto out;
	*out = k;
	k = NULL;
	rc = MCA_OK;
out:
	gnutls_pubkey_deinit(pub);
	ca_key_free(k);
	return rc;
}

/* The object label of uri ("object=LABEL"), plain characters only. */
static enum mca_err
pkcs11_label(const char *uri, char out[PKCS11_LABEL_MAX])
{
	const char *p = uri + sizeof(CA_PKCS11_PREFIX) - 1;
	size_t n;

	for (;;) {
		if (strncmp(p, "object=", 7) == 0)
			break;
		if ((p = strpbrk(p, ";?")) == NULL)
			return mca_err_set(MCA_ERR_CONFIG, "RFC 7512 2.3: the URI must name the "
			    "key with object=LABEL");
		p++;
	}
	p += 7;
	n = strcspn(p, ";?");
	if (n == 0 || n >= PKCS11_LABEL_MAX || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-") < n)
		return mca_err_set(MCA_ERR_CONFIG, "PKCS#11 object label: 1 to %d of "
		    "[A-Za-z0-9._-]", PKCS11_LABEL_MAX - 1);
	memcpy(out, p, n);
	out[n] = '\0';
	return MCA_OK;
}

enum mca_err
ca_key_generate_pkcs11(enum ca_key_type t, const char *uri, const char *pin, struct ca_key **out)
{
	static const struct { gnutls_pk_algorithm_t alg; unsigned int bits; } p[] = {
		[CA_KEY_ECDSA_P256] = { GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1) },
		[CA_KEY_ECDSA_P384] = { GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1) },
		[CA_KEY_ED25519] = { GNUTLS_PK_EDDSA_ED25519, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519) },
		[CA_KEY_RSA_2048] = { GNUTLS_PK_RSA, 2048 },
		[CA_KEY_RSA_3072] = { GNUTLS_PK_RSA, 3072 },
		[CA_KEY_RSA_4096] = { GNUTLS_PK_RSA, 4096 },
	};
	char label[PKCS11_LABEL_MAX];
	struct ca_key *old = NULL;
	enum mca_err rc;
	int r;

	if ((unsigned)t >= CA_KEY_TYPE_MAX || !ca_key_is_pkcs11_uri(uri) || out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "PKCS#11: a key type and a pkcs11: URI are needed");
	if ((rc = pkcs11_uri_check(uri)) != MCA_OK || (rc = pkcs11_label(uri, label)) != MCA_OK)
		return rc;
	gnutls_pkcs11_set_pin_function(key_pin_cb, (void *)(uintptr_t)pin);
	if (key_pkcs11_load(uri, pin, &old) == MCA_OK) {
		ca_key_free(old);
		return mca_err_set(MCA_ERR_EXISTS, "%s: the token already holds this key; "
		    "meshca init never reuses or overwrites one", uri);
	}
	mca_err_clear();
	r = gnutls_pkcs11_privkey_generate3(uri, p[t].alg, p[t].bits, label, NULL,
	    GNUTLS_X509_FMT_DER, NULL, 0, GNUTLS_PKCS11_OBJ_FLAG_LOGIN |
	    GNUTLS_PKCS11_OBJ_FLAG_MARK_SENSITIVE | GNUTLS_PKCS11_OBJ_FLAG_MARK_PRIVATE);
	gnutls_pkcs11_set_pin_function(NULL, NULL);
	if (r < 0)
		return mca_err_set(r == GNUTLS_E_PKCS11_PIN_ERROR ? MCA_ERR_PASSPHRASE :
		    MCA_ERR_CRYPTO, "%s: generating a %s key in the token: %s", uri,
		    key_type_names[t], gnutls_strerror(r));
	return key_pkcs11_load(uri, pin, out);
}

enum ca_key_type
ca_key_get_type(const struct ca_key *k)
{
	return k->type;
}

void
ca_key_free(struct ca_key *k)
{
	if (k == NULL)
		return;
	gnutls_privkey_deinit(k->priv);
	gnutls_x509_privkey_deinit(k->x509);
	ca_remote_free(k->remote);
	if (k->pin != NULL) {
		mca_wipe(k->pin, strlen(k->pin));
		free(k->pin);
	}
	free(k);
}
