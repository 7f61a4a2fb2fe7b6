/*
 * The project's one error enum.  Every fallible function returns an
 * enum mca_err; MCA_OK is zero.  The list lives once, in MCA_ERRORS, with
 * the internal message for each code.  What a client sees (HTTP status and
 * public code) is decided by api/, not here.
 *
 * Detail: a function that fails may record a human sentence about *this*
 * failure with mca_err_set(); it is kept per thread and read with
 * mca_err_detail() until the next mca_err_set() or mca_err_clear() on that
 * thread.  Details never contain secrets (tokens, passphrases, keys).
 */
#ifndef MCA_ERR_H
#define MCA_ERR_H

#define MCA_WUR __attribute__((warn_unused_result))
#define MCA_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define MCA_ERRORS(X) \
	X(MCA_OK,                 "success") \
	X(MCA_ERR_NOMEM,          "out of memory") \
	X(MCA_ERR_INVALID,        "invalid argument") \
	X(MCA_ERR_IO,             "input/output error") \
	X(MCA_ERR_TOOBIG,         "input exceeds its size limit") \
	X(MCA_ERR_PARSE,          "malformed input") \
	X(MCA_ERR_CONFIG,         "invalid configuration") \
	X(MCA_ERR_CRYPTO,         "cryptographic operation failed") \
	X(MCA_ERR_SIGN,           "signing failed") \
	X(MCA_ERR_PASSPHRASE,     "missing or wrong passphrase") \
	X(MCA_ERR_KEY_TYPE,       "key type not allowed") \
	X(MCA_ERR_WEAK_KEY,       "key too weak") \
	X(MCA_ERR_CSR_PARSE,      "certificate request cannot be parsed") \
	X(MCA_ERR_CSR_SIGNATURE,  "certificate request signature is invalid") \
	X(MCA_ERR_CERT_PARSE,     "certificate cannot be parsed") \
	X(MCA_ERR_NAME,           "invalid name") \
	X(MCA_ERR_SPIFFE_ID,      "invalid SPIFFE ID") \
	X(MCA_ERR_SAN_NOT_ALLOWED,"subject alternative name not allowed") \
	X(MCA_ERR_TTL,            "lifetime out of range") \
	X(MCA_ERR_NOT_FOUND,      "not found") \
	X(MCA_ERR_EXISTS,         "already exists") \
	X(MCA_ERR_CONFLICT,       "conflicts with the current state") \
	X(MCA_ERR_TOKEN_INVALID,  "enrollment token unknown") \
	X(MCA_ERR_TOKEN_USED,     "enrollment token already used") \
	X(MCA_ERR_TOKEN_EXPIRED,  "enrollment token expired") \
	X(MCA_ERR_DISABLED,       "service disabled") \
	X(MCA_ERR_DB,             "database error") \
	X(MCA_ERR_DB_SCHEMA,      "database schema is newer than this program") \
	X(MCA_ERR_DB_UNAVAILABLE, "database cannot record now (disk full, read-only or locked)") \
	X(MCA_ERR_RATE_LIMITED,   "too many failed attempts from this address") \
	X(MCA_ERR_AUTH,           "no valid credential") \
	X(MCA_ERR_CERT_EXPIRED,   "certificate expired or not yet valid") \
	X(MCA_ERR_CERT_REVOKED,   "certificate revoked") \
	X(MCA_ERR_UNKNOWN_ISSUER, "certificate not issued by this CA") \
	X(MCA_ERR_FORBIDDEN,      "credential not allowed") \
	X(MCA_ERR_HTTP,           "HTTP transport error") \
	X(MCA_ERR_SERVER,         "server refused the request") \
	X(MCA_ERR_FINGERPRINT,    "root fingerprint mismatch") \
	X(MCA_ERR_STATE_EXISTS,   "a CA already exists here") \
	X(MCA_ERR_SIGNER_UNAVAILABLE, "the signer process is not available")

enum mca_err {
#define MCA_ERR_ENUM(name, msg) name,
	MCA_ERRORS(MCA_ERR_ENUM)
#undef MCA_ERR_ENUM
	MCA_ERR_MAX
};

/* Static message for the code; never NULL. */
const char *mca_strerror(enum mca_err e);
/* Stable identifier of the code ("MCA_ERR_WEAK_KEY"), for logs and tests. */
const char *mca_errname(enum mca_err e);

/* Record a detail for e on this thread and return e, so callers can write
 * `return mca_err_set(MCA_ERR_NAME, "RFC 1035: label too long: %s", n);` */
enum mca_err mca_err_set(enum mca_err e, const char *fmt, ...) MCA_PRINTF(2, 3);
/* The last detail recorded on this thread ("" if none since the last
 * mca_err_clear()).  Callers print it next to mca_strerror(). */
const char *mca_err_detail(void);
void mca_err_clear(void);

#endif
