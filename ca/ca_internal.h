/*
 * Internal to ca/: the layout of the opaque objects of ca.h and the few
 * helpers the .c files of this module share.  Nothing outside ca/ may
 * include this header.
 */
#ifndef MCA_CA_INTERNAL_H
#define MCA_CA_INTERNAL_H

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "ca/ca.h"

/* Largest PEM/DER certificate or key file we read. */
#define CA_FILE_MAX		(64 * 1024)
/* SHA-1 key identifier (RFC 5280 4.2.1.2, method (1)-like). */
#define CA_KEY_ID_LEN		20
/* Leaf and CA certificates are backdated to absorb clock skew. */
#define CA_BACKDATE		60

struct ca_key {
	gnutls_x509_privkey_t	 x509;	/* for export (PKCS#8) */
	gnutls_privkey_t	 priv;	/* for signing */
	enum ca_key_type	 type;
};

struct ca_cert {
	gnutls_x509_crt_t	 crt;
	struct mca_buf		 der;
	struct mca_buf		 pem;
	int64_t			 not_before;
	int64_t			 not_after;
	char			*uri;	/* the single URI SAN, or NULL */
};

struct ca_csr {
	gnutls_x509_crq_t	 crq;
	gnutls_pubkey_t		 pub;	/* verified key, reused by ca_issue_leaf */
	enum ca_key_type	 type;
};

/* keys.c */
/* The key type of a public key; MCA_ERR_WEAK_KEY / MCA_ERR_KEY_TYPE. */
enum mca_err ca_pubkey_classify(gnutls_pubkey_t pub, enum ca_key_type *out) MCA_WUR;
/* A new public key object for k's public half. */
enum mca_err ca_key_pubkey(const struct ca_key *k, gnutls_pubkey_t *out) MCA_WUR;
/* Digest to sign with: SHA-256 (P-256, RSA), SHA-384 (P-384), none (Ed25519). */
gnutls_digest_algorithm_t ca_key_digest(const struct ca_key *k);
/* Whether k is the private half of the key in crt (RFC 5280 4.1.2.7 SPKI). */
enum mca_err ca_key_matches_crt(const struct ca_key *k, gnutls_x509_crt_t crt) MCA_WUR;

/* names.c */
/* Appends a binary address (len 4 or 16); duplicates ignored, CA_MAX_SANS. */
enum mca_err ca_sans_add_ip_raw(struct ca_sans *s, const unsigned char *addr, size_t len) MCA_WUR;

/* signer.c */
const struct ca_key *ca_signer_key(const struct ca_signer *s);

/* issue.c: the parts of a certificate every profile shares. */
struct ca_crt_base {
	gnutls_pubkey_t		 pub;		/* subject public key */
	int64_t			 not_before;
	int64_t			 not_after;
	unsigned char		 serial[16];
	char			 serial_hex[CA_SERIAL_HEX_MAX];
};
/* Version 3, serial, SPKI, validity, SKI. */
enum mca_err ca_crt_base_apply(gnutls_x509_crt_t crt, struct ca_crt_base *b) MCA_WUR;
/* AKI = issuer's SKI (RFC 5280 4.2.1.1). */
enum mca_err ca_crt_set_aki(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer) MCA_WUR;
/* Signs crt as issuer with key and exports DER into *der (gnutls_free). */
enum mca_err ca_crt_sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer,
    const struct ca_key *key, gnutls_datum_t *der) MCA_WUR;
/* notAfter = min(now + ttl, cap), refusing ttl <= 0, overflow and an
 * issuer that has already expired. */
enum mca_err ca_validity(int64_t now, int64_t ttl, int64_t cap, int64_t *nb, int64_t *na) MCA_WUR;

#endif
