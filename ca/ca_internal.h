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
#include <libtasn1.h>

#include "ca/ca.h"

/* Largest PEM/DER certificate or key file we read. */
#define CA_FILE_MAX		(64 * 1024)
/* SHA-1 key identifier (RFC 5280 4.2.1.2, method (1)-like). */
#define CA_KEY_ID_LEN		20
/* Leaf and CA certificates are backdated to absorb clock skew. */
#define CA_BACKDATE		60

struct ca_remote;

struct ca_key {
	gnutls_x509_privkey_t	 x509;	/* for export (PKCS#8); NULL for a token or remote key */
	gnutls_privkey_t	 priv;	/* for signing; for a remote key, one that refuses to */
	enum ca_key_type	 type;
	struct ca_remote	*remote;	/* set: the key lives in the signer process */
	char			*pin;	/* a PKCS#11 key's PIN, for re-logins (wiped on free) */
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
/* The signature algorithm of a key type, as ca_signer_sign uses it. */
gnutls_sign_algorithm_t ca_key_type_sign_algo(enum ca_key_type t);
/* Whether k is the private half of the key in crt (RFC 5280 4.1.2.7 SPKI). */
enum mca_err ca_key_matches_crt(const struct ca_key *k, gnutls_x509_crt_t crt) MCA_WUR;

/* signer_remote.c: the network side of the signer process.  For a
 * remote key, ca_sign, ca_signer_sign and the leaf writer send the
 * to-be-signed bytes over the socket instead of using priv. */
enum mca_err ca_remote_sign(const struct ca_key *key, enum ca_signreq_type t,
    gnutls_sign_algorithm_t alg, const unsigned char *tbs, size_t len,
    gnutls_datum_t *sig) MCA_WUR;
void ca_remote_free(struct ca_remote *r);
/* A key that signs through the child on fd (taken), of the type of
 * crt's public key, once the child's hello says its key is loaded. */
enum mca_err ca_remote_key_new(int fd, gnutls_x509_crt_t crt, struct ca_key **out) MCA_WUR;
bool ca_remote_available(const struct ca_remote *r);	/* NULL: true */

/* signer_serve.c: the framing both sides share.  A request is an 8-byte
 * header (length of the TBS bytes, big-endian u32; version; type;
 * signature algorithm, big-endian u16) and the TBS bytes.  A reply is an
 * 8-byte header (length, u32; status: 0 signed, 1 refused; 3 zero
 * bytes) and the signature or, when refused, a reason in text. */
#define CA_SIGNREQ_VERSION	1
#define CA_SIGNREQ_HDR		8
#define CA_SIGNREP_MAX		4096	/* a signature or a reason */
enum mca_err ca_fd_write_all(int fd, const void *p, size_t n) MCA_WUR;
/* Reads exactly n bytes; MCA_ERR_IO on error, timeout or end of file
 * (*eof true when the peer closed before the first byte). */
enum mca_err ca_fd_read_all(int fd, void *p, size_t n, bool *eof) MCA_WUR;
void ca_put_u32(unsigned char *p, uint32_t v);
uint32_t ca_get_u32(const unsigned char *p);

/* names.c */
/* Appends a binary address (len 4 or 16); duplicates ignored, CA_MAX_SANS. */
enum mca_err ca_sans_add_ip_raw(struct ca_sans *s, const unsigned char *addr, size_t len) MCA_WUR;
/* Adds a subjectAltName entry as GnuTLS's SAN getters return it (type,
 * bytes): DNS names and IP addresses are kept, other types ignored. */
enum mca_err ca_sans_add_gnutls(struct ca_sans *s, unsigned int type, const char *buf, size_t size) MCA_WUR;
/* Reads every subjectAltName through a GnuTLS-style getter (certificate
 * or request) into out; rule names the structure in parse errors. */
typedef int (*ca_san_getter)(const void *obj, unsigned int seq, void *buf, size_t *size, unsigned int *type);
enum mca_err ca_sans_collect(ca_san_getter get, const void *obj, const char *rule, struct ca_sans *out) MCA_WUR;

/* signer.c */
const struct ca_key *ca_signer_key(const struct ca_signer *s);

/* constraints.c: RFC 5280 4.2.1.10 name constraints. */
struct ca_nc;
/* Adds a critical nameConstraints extension with permitted subtrees. */
enum mca_err ca_nc_apply(gnutls_x509_crt_t crt, const struct ca_name_constraints *nc) MCA_WUR;
/* The DNS, URI and IP subtrees of crt; *out NULL when it has none. */
enum mca_err ca_nc_load(gnutls_x509_crt_t crt, struct ca_nc **out) MCA_WUR;
void ca_nc_free(struct ca_nc *nc);
/* Whether there are dNSName subtrees (GnuTLS then checks a CN). */
bool ca_nc_has_dns(const struct ca_nc *nc);
/* ca_signer_names_check for nc (NULL: MCA_OK). */
enum mca_err ca_nc_check(const struct ca_nc *nc, const char *uri, const struct ca_sans *sans) MCA_WUR;
/* The signer's constraints, NULL when unconstrained. */
const struct ca_nc *ca_signer_nc(const struct ca_signer *s);

/* What every leaf of a signer shares, encoded once when the signer is
 * opened (leaf_der.c): the issuer name (the intermediate's subject, raw),
 * the signature AlgorithmIdentifier of its key, and the basicConstraints,
 * keyUsage, extendedKeyUsage and AKI extensions as GnuTLS's setters
 * encode them.  Read-only afterwards; ca_signer_free frees it. */
struct ca_leaf_exts;
enum mca_err ca_leaf_exts_new(gnutls_x509_crt_t issuer, struct ca_leaf_exts **out) MCA_WUR;
void ca_leaf_exts_free(struct ca_leaf_exts *e);
struct ca_leaf_exts *ca_signer_leaf_exts(const struct ca_signer *s);

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

/* leaf_der.c: the X509-SVID leaf written as DER directly.  The
 * Certificate (RFC 5280 4.1) for b (serial, validity, the CSR's key) and
 * req (names, URLs), subject CN=, or OU= when subject_ou, issued and
 * signed once by s: in-process, or by the signer process for a remote
 * key.  req has passed ca_issue_leaf's checks.  *out is replaced. */
enum mca_err ca_leaf_der_build(const struct ca_signer *s, const struct ca_crt_base *b,
    const struct ca_leaf_req *req, bool subject_ou, struct mca_buf *out) MCA_WUR;

/* asn1.c: the project's ASN.1 module (ca/pkix.asn) through libtasn1.
 * Type names are those of the module ("TBSCertList"); element names are
 * libtasn1 paths ("tbsResponseData.producedAt").  The definitions load
 * once, on first use, thread-safely. */
#define CA_SERIAL_MAX		20	/* RFC 5280 4.1.2.2 */
/* A new empty element of the module's type; ca_asn1_free() releases it. */
enum mca_err ca_asn1_create(const char *type, asn1_node *out) MCA_WUR;
void ca_asn1_free(asn1_node *n);	/* sets *n to NULL; NULL is a no-op */
enum mca_err ca_asn1_write(asn1_node n, const char *name, const void *value, size_t len) MCA_WUR;
/* len 0: a NUL-terminated text value (OIDs, numbers, CHOICE names); NULL
 * removes an OPTIONAL element. */
enum mca_err ca_asn1_write_str(asn1_node n, const char *name, const char *value) MCA_WUR;
/* DER of n (or of its element `name` when not NULL/"") into out, replacing it. */
enum mca_err ca_asn1_encode(asn1_node n, const char *name, struct mca_buf *out) MCA_WUR;
/* Strict DER of exactly len bytes into a new element of `type`; MCA_ERR_PARSE. */
enum mca_err ca_asn1_decode(const char *type, const unsigned char *der, size_t len,
    asn1_node *out) MCA_WUR;
/* RFC 5280 Time: UTCTime before 2050, GeneralizedTime from 2050 (5.1.2.4). */
#define CA_GENTIME_FROM		2524608000	/* 2050-01-01T00:00:00Z */
enum mca_err ca_asn1_write_time(asn1_node n, const char *name, int64_t t) MCA_WUR;
/* A GeneralizedTime element (RFC 6960 timestamps). */
enum mca_err ca_asn1_write_gentime(asn1_node n, const char *name, int64_t t) MCA_WUR;
enum mca_err ca_asn1_write_uint(asn1_node n, const char *name, uint64_t v) MCA_WUR;
/* Hex serial (as ca_cert_serial_hex) to the content of a positive DER
 * INTEGER, with the 0x00 pad when the top bit is set (up to 21 bytes). */
enum mca_err ca_serial_from_hex(const char *hex, unsigned char out[CA_SERIAL_MAX + 1],
    size_t *len) MCA_WUR;
/* The signature algorithm for k: ECDSA-SHA256/384, Ed25519, RSA-SHA256. */
enum mca_err ca_sign_alg(const struct ca_key *k, gnutls_sign_algorithm_t *alg) MCA_WUR;
/* The AlgorithmIdentifier `name` for alg (NULL parameters for RSA only). */
enum mca_err ca_asn1_write_sigalg(asn1_node n, const char *name,
    gnutls_sign_algorithm_t alg) MCA_WUR;
/* Signature over tbs; *sig is gnutls_free'd by the caller. */
enum mca_err ca_sign(const struct ca_key *k, gnutls_sign_algorithm_t alg,
    const unsigned char *tbs, size_t len, gnutls_datum_t *sig) MCA_WUR;
/* Appends a DER tag and definite length (X.690 8.1.2-8.1.3) to out. */
enum mca_err ca_der_header(unsigned char tag, size_t len, struct mca_buf *out) MCA_WUR;
/* The subjectPublicKey BIT STRING's bytes of crt (RFC 6960 4.1.1 key hash). */
enum mca_err ca_crt_key_bits(gnutls_x509_crt_t crt, struct mca_buf *out) MCA_WUR;

#endif
