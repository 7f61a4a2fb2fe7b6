/*
 * ca/ — the signing core of meshca.
 *
 * Keys, CSRs, names and certificate profiles; GnuTLS does the X.509
 * parsing, the signing and the CA certificates, and workload
 * certificates are written as DER directly (leaf_der.c).  This module
 * does no network or SQL I/O: only key and certificate files.  Every
 * object is opaque with a create/free pair; *_free(NULL) is a no-op.
 * Functions return enum mca_err and record a detail with mca_err_set()
 * that cites the rule broken (RFC 5280, the SPIFFE ID and X509-SVID
 * specs) when they refuse input.
 *
 * Call ca_global_init() once before anything else (it checks the GnuTLS
 * version and initialises it).
 */
#ifndef MCA_CA_H
#define MCA_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/common/buf.h"
#include "ca/common/err.h"

enum mca_err ca_global_init(void) MCA_WUR;

/* ---- key types ------------------------------------------------------ */

enum ca_key_type {
	CA_KEY_ECDSA_P256,
	CA_KEY_ECDSA_P384,
	CA_KEY_ED25519,
	CA_KEY_RSA_2048,
	CA_KEY_RSA_3072,
	CA_KEY_RSA_4096,
	CA_KEY_TYPE_MAX
};

#define CA_KEY_MASK(t)		(1u << (t))
#define CA_KEY_MASK_ALL		((1u << CA_KEY_TYPE_MAX) - 1)

/* "ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096" */
const char *ca_key_type_name(enum ca_key_type t);
enum mca_err ca_key_type_parse(const char *s, enum ca_key_type *out) MCA_WUR;
/* Comma-separated list ("ecdsa-p256,ed25519") to a mask; "all" = every type. */
enum mca_err ca_key_mask_parse(const char *s, uint32_t *mask) MCA_WUR;

/* ---- private keys (keys.c) ------------------------------------------ */

struct ca_key;

enum mca_err ca_key_generate(enum ca_key_type t, struct ca_key **out) MCA_WUR;
/* Loads a PEM private key (PKCS#8, encrypted when passphrase != NULL;
 * also unencrypted PKCS#8/PKCS#1/SEC1 when passphrase is NULL).  A wrong
 * or missing passphrase is MCA_ERR_PASSPHRASE. */
enum mca_err ca_key_load(const char *path, const char *passphrase, struct ca_key **out) MCA_WUR;
/* Writes PKCS#8 PEM, encrypted (PBES2, AES-256) when passphrase != NULL,
 * atomically with mode 0600. */
enum mca_err ca_key_save(const struct ca_key *k, const char *path, const char *passphrase) MCA_WUR;
/*
 * PKCS#11 (RFC 7512 URIs; GnuTLS through p11-kit's configured modules).
 * ca_key_load also takes a "pkcs11:" URI naming a private key object, the
 * passphrase then being the token's user PIN (kept with the key for the
 * module's re-logins, wiped by ca_key_free).  Such a key signs inside
 * the token and cannot be saved.
 */
#define CA_PKCS11_PREFIX	"pkcs11:"
bool ca_key_is_pkcs11_uri(const char *path);
/* Generates a key of type t inside the token of uri (which must name the
 * object: "pkcs11:token=T;object=LABEL"), private, sensitive and not
 * extractable (PKCS#11 CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE false),
 * logging in with pin, and loads it.  MCA_ERR_EXISTS when the token
 * already holds an object with that label. */
enum mca_err ca_key_generate_pkcs11(enum ca_key_type t, const char *uri, const char *pin,
    struct ca_key **out) MCA_WUR;
enum ca_key_type ca_key_get_type(const struct ca_key *k);
void ca_key_free(struct ca_key *k);

/* ---- certificates (cert.c) ------------------------------------------ */

struct ca_cert;
struct ca_sans;

/* First certificate of a PEM text, or DER. */
enum mca_err ca_cert_parse(const unsigned char *data, size_t len, struct ca_cert **out) MCA_WUR;
enum mca_err ca_cert_load(const char *path, struct ca_cert **out) MCA_WUR;
void ca_cert_free(struct ca_cert *c);
/* Borrowed views, valid while c lives. */
const struct mca_buf *ca_cert_der(const struct ca_cert *c);
const struct mca_buf *ca_cert_pem(const struct ca_cert *c);
int64_t ca_cert_not_before(const struct ca_cert *c);
int64_t ca_cert_not_after(const struct ca_cert *c);
/* Serial as lowercase hex of the DER INTEGER's bytes, less the 0x00 pad
 * byte DER puts before a value whose top bit is set. */
#define CA_SERIAL_HEX_MAX 41	/* 20 bytes (RFC 5280 4.1.2.2) + NUL */
void ca_cert_serial_hex(const struct ca_cert *c, char out[CA_SERIAL_HEX_MAX]);
/* SHA-256 of the DER, lowercase hex (64 chars + NUL). */
#define CA_FINGERPRINT_HEX_LEN 65
void ca_cert_fingerprint(const struct ca_cert *c, char out[CA_FINGERPRINT_HEX_LEN]);
/* The single URI SAN, or NULL when there is none or more than one. */
const char *ca_cert_uri(const struct ca_cert *c);
/* MCA_OK when k is the private key of c's subject public key (SHA-256
 * key identifiers compared), else MCA_ERR_CRYPTO. */
enum mca_err ca_key_matches(const struct ca_key *k, const struct ca_cert *c) MCA_WUR;
/* The certificate's DNS and IP subjectAltNames (out is cleared first). */
enum mca_err ca_cert_sans(const struct ca_cert *c, struct ca_sans *out) MCA_WUR;
/* Whether two SHA-256 fingerprints are equal: hex, any case, colons
 * allowed ("AB:CD:..." equals "abcd..."). */
bool ca_fingerprint_equal(const char *a, const char *b);
/* Verifies a signature made by ca_signer_sign with c's key (the
 * algorithm follows from c's key type).  MCA_ERR_CRYPTO when it does not
 * verify. */
enum mca_err ca_cert_verify_data(const struct ca_cert *c, const unsigned char *data, size_t len,
    const unsigned char *sig, size_t siglen) MCA_WUR;
/* RFC 5280 6.1: c is a CA certificate (basicConstraints cA) whose
 * signature verifies under root.  Validity periods are not checked: a
 * signature made while c was valid stays checkable after it expires.
 * MCA_ERR_UNKNOWN_ISSUER otherwise. */
enum mca_err ca_cert_issued_by(const struct ca_cert *c, const struct ca_cert *root) MCA_WUR;

/* ---- names and policy (names.c) ------------------------------------- */

#define CA_MAX_SANS		100	/* per service and per certificate */
#define CA_MAX_DNS_LEN		253	/* RFC 1035 2.3.4 */
#define CA_MAX_SPIFFE_ID_LEN	2048	/* SPIFFE ID spec 2.3 */
#define CA_MAX_SERVICE_NAME	63

struct ca_ip {
	unsigned char	addr[16];
	unsigned char	len;		/* 4 or 16 */
	unsigned char	prefix;		/* CIDR prefix length; len*8 for one address */
};

/* A set of DNS names (exact or "*.suffix") and IP addresses/ranges. */
struct ca_sans {
	char		**dns;
	size_t		  ndns;
	struct ca_ip	 *ips;
	size_t		  nips;
};

void ca_sans_clear(struct ca_sans *s);	/* frees contents, leaves it empty */
/* Validates and appends; duplicates are ignored; CA_MAX_SANS bounds it. */
enum mca_err ca_sans_add_dns(struct ca_sans *s, const char *name, bool allow_wildcard) MCA_WUR;
enum mca_err ca_sans_add_ip(struct ca_sans *s, const char *text, bool allow_cidr) MCA_WUR;

/* RFC 1035/1123 host name, lowercase letters, digits, hyphens, dots; a
 * leading "*." only if allow_wildcard.  Rejects empty labels, >63-byte
 * labels, >253 bytes, trailing dot, uppercase. */
enum mca_err ca_dns_check(const char *name, bool allow_wildcard) MCA_WUR;
/* IPv4 dotted quad or IPv6 text, optionally "/prefix" when allow_cidr. */
enum mca_err ca_ip_parse(const char *text, bool allow_cidr, struct ca_ip *out) MCA_WUR;
/* Text of an address, with "/prefix" for a range; out holds 64 bytes. */
void ca_ip_format(const struct ca_ip *ip, char out[64]);
/* SPIFFE ID spec 2.1: lowercase a-z 0-9 . - _, at most 255 bytes. */
enum mca_err ca_trust_domain_check(const char *td) MCA_WUR;
/* SPIFFE ID spec 2: "spiffe://" trust-domain path; path segments of
 * [A-Za-z0-9._-], no empty, "." or ".." segment, no query or fragment,
 * no trailing slash.  When td != NULL the ID must be in that domain. */
enum mca_err ca_spiffe_id_check(const char *id, const char *td) MCA_WUR;
/* Service names: 1..63 of [a-z0-9-], starting with a letter or digit. */
enum mca_err ca_service_name_check(const char *name) MCA_WUR;

/* Which of `requested` the `allowed` set permits.  An exact allowed name
 * permits itself; a pattern "*.suffix" always permits any name with
 * exactly one more label before ".suffix" (RFC 6125 6.4.3).  A literal
 * wildcard name ("*.suffix") is granted only when it is listed as is in
 * allowed AND allow_wildcards is true (the service's allow_wildcards):
 * a wildcard certificate is a policy decision of its own.  An IP is
 * permitted when inside an allowed address or range.  When requested is
 * empty, granted = every exact name and every single address of allowed
 * (ranges and wildcard patterns are not names to issue).  Refusal:
 * MCA_ERR_SAN_NOT_ALLOWED, the detail citing the rule and naming the
 * first offending value ("policy: ..."). */
enum mca_err ca_sans_authorize(const struct ca_sans *allowed, const struct ca_sans *requested,
    bool allow_wildcards, struct ca_sans *granted) MCA_WUR;

/* ---- certificate requests (csr.c) ----------------------------------- */

#define CA_CSR_MAX_BYTES (16 * 1024)

struct ca_csr;

/* Parses PEM or DER (at most CA_CSR_MAX_BYTES) and verifies the CSR's
 * self-signature exactly once.  MCA_ERR_CSR_PARSE for anything that is
 * not a PKCS#10 request, MCA_ERR_CSR_SIGNATURE for a bad signature,
 * MCA_ERR_WEAK_KEY for RSA < 2048 bits, MCA_ERR_KEY_TYPE for any key not
 * in enum ca_key_type (DSA, other curves). */
enum mca_err ca_csr_parse(const unsigned char *data, size_t len, struct ca_csr **out) MCA_WUR;
void ca_csr_free(struct ca_csr *csr);
/* RSA sizes map down to the nearest listed size (3500 bits -> rsa-3072). */
enum ca_key_type ca_csr_key_type(const struct ca_csr *csr);
/* Whether the request's key is one mask allows.  ECDSA curves and
 * Ed25519 match exactly.  The RSA types are minimum sizes: an RSA key of
 * N bits (N >= 2048, ca_csr_parse refuses less) is allowed when mask holds
 * an RSA type of at most N bits, so rsa-2048 admits any RSA key of 2048
 * bits or more, and rsa-3072 alone admits 3072 bits or more.  Refusal:
 * MCA_ERR_KEY_TYPE naming the key (type, bits) and the allowed list. */
enum mca_err ca_csr_check_key(const struct ca_csr *csr, uint32_t mask) MCA_WUR;
/* The DNS and IP SANs the CSR asks for (URI SANs are ignored: identity
 * comes from the service record). */
enum mca_err ca_csr_sans(const struct ca_csr *csr, struct ca_sans *out) MCA_WUR;
/* Builds a PEM CSR signed by k, subject CN=cn, carrying sans (may be NULL). */
enum mca_err ca_csr_create(const struct ca_key *k, const char *cn, const struct ca_sans *sans,
    struct mca_buf *pem) MCA_WUR;

/* ---- the issuing CA (signer.c) -------------------------------------- */

struct ca_signer;

/* Loads the intermediate certificate and key and the root certificate
 * (never the root key).  Checks that the key matches the certificate and
 * that the intermediate chains to the root. */
enum mca_err ca_signer_open(const char *intermediate_cert, const char *intermediate_key,
    const char *key_passphrase, const char *root_cert, struct ca_signer **out) MCA_WUR;
void ca_signer_free(struct ca_signer *s);
const struct ca_cert *ca_signer_cert(const struct ca_signer *s);	/* intermediate */
const struct ca_cert *ca_signer_root(const struct ca_signer *s);
/* Intermediate PEM (the chain a leaf presents) and root PEM (trust bundle). */
const struct mca_buf *ca_signer_chain_pem(const struct ca_signer *s);
const struct mca_buf *ca_signer_roots_pem(const struct ca_signer *s);
/* Signs arbitrary bytes (meshcad's audit checkpoints) with the
 * intermediate key: ECDSA with SHA-256 (P-256) or SHA-384 (P-384), RSA
 * PKCS#1 v1.5 with SHA-256, PureEdDSA for Ed25519 (RFC 8032; the data
 * is not pre-hashed).  sig is replaced with the signature. */
enum mca_err ca_signer_sign(const struct ca_signer *s, const unsigned char *data, size_t len,
    struct mca_buf *sig) MCA_WUR;
/* Whether the intermediate carries a nameConstraints extension. */
bool ca_signer_constrained(const struct ca_signer *s);
/* RFC 5280 4.2.1.10 against the intermediate's name constraints, as
 * read by ca_signer_open: the URI (a SPIFFE ID, may be NULL) and every
 * DNS name, wildcard pattern and IP address or range of sans (may be
 * NULL) must lie inside the permitted subtrees of its type, when there
 * are any, and outside the excluded ones.  DNS: the name itself or a
 * subdomain of the constraint; URI: the host part, equal to the
 * constraint (or a subdomain when it starts with '.'); IP: inside the
 * range.  MCA_OK when unconstrained; else MCA_ERR_SAN_NOT_ALLOWED naming
 * the name and the permitted subtrees.  ca_issue_leaf calls it before
 * signing, so meshcad refuses what relying parties would. */
enum mca_err ca_signer_names_check(const struct ca_signer *s, const char *uri,
    const struct ca_sans *sans) MCA_WUR;

/* ---- the signer process (signer_serve.c, signer_remote.c) -----------
 *
 * meshcad keeps the intermediate key out of the process that parses
 * network input.  A child process opens the key with ca_signer_open (a
 * file or a PKCS#11 token) and runs ca_signer_serve on one end of a
 * socketpair; meshcad opens the other end with ca_signer_open_remote and
 * uses the signer as any other: ca_issue_leaf, ca_crl_build,
 * ca_ocsp_respond and ca_signer_sign send the to-be-signed bytes to the
 * child, which signs only what ca_signer_check admits.
 */
enum ca_signreq_type {
	CA_SIGNREQ_CERT = 1,	/* RFC 5280 4.1 TBSCertificate */
	CA_SIGNREQ_CRL,		/* RFC 5280 5.1 TBSCertList */
	CA_SIGNREQ_OCSP,	/* RFC 6960 4.2.1 ResponseData */
	CA_SIGNREQ_AUDIT,	/* meshcad's audit checkpoint (db/audit_hash.c) */
	CA_SIGNREQ_MAX
};

/* Largest to-be-signed structure the child reads (a CRL can be large). */
#define CA_SIGNREQ_MAX_BYTES	(64u * 1024 * 1024)
/* How long meshcad waits for the signer to make progress (write a request
 * or answer one) before declaring it gone. */
#define CA_SIGNER_TIMEOUT_S	30
/* The audit checkpoint the child signs: this label, then seq (u64),
 * head hash (32 bytes), time (u64): DB_AUDIT_TBS_LEN in db/db.h. */
#define CA_AUDIT_LABEL		"meshca-audit-checkpoint-v1"
#define CA_AUDIT_TBS_LEN	(26 + 8 + 32 + 8)

/* Whether the child would sign tbs as a request of type t for s: a
 * well-formed (strict DER) structure of that type, issued by s's
 * certificate (issuer or responderID), with s's signature algorithm,
 * and, for a certificate, basicConstraints cA FALSE and no keyCertSign
 * or cRLSign key usage.  MCA_ERR_SIGN with the reason otherwise. */
enum mca_err ca_signer_check(const struct ca_signer *s, enum ca_signreq_type t,
    const unsigned char *tbs, size_t len) MCA_WUR;
/* Child: tells the parent the key is loaded (rc MCA_OK) or why not. */
enum mca_err ca_signer_hello(int fd, enum mca_err rc, const char *detail) MCA_WUR;
/* Child: answers requests on fd until the parent closes it (MCA_OK) or
 * breaks the framing (MCA_ERR_PARSE, after a refusal).  Refused
 * requests get a reason and the loop goes on. */
enum mca_err ca_signer_serve(const struct ca_signer *s, int fd) MCA_WUR;
/* Parent: the intermediate and root certificates, and the child on fd
 * (taken: closed by ca_signer_free).  Waits for the child's hello and
 * fails with the child's reason (MCA_ERR_PASSPHRASE, ...) when it could
 * not load the key.  A child that dies later makes every signature fail
 * with MCA_ERR_SIGNER_UNAVAILABLE; nothing restarts it. */
enum mca_err ca_signer_open_remote(const char *intermediate_cert, const char *root_cert,
    int fd, struct ca_signer **out) MCA_WUR;
/* False once a remote signer's child has gone (in-process: always true). */
bool ca_signer_available(const struct ca_signer *s);

/* ---- issuance (issue.c) --------------------------------------------- */

struct ca_leaf_req {
	const char		*spiffe_id;	/* the one URI SAN */
	const char		*common_name;	/* subject CN */
	const struct ca_sans	*sans;		/* DNS/IP SANs, already authorized */
	int64_t			 ttl;		/* seconds, > 0 */
	int64_t			 now;
	/* Revocation pointers (NULL: extension omitted).  RFC 5280 4.2.1.13
	 * cRLDistributionPoints; 4.2.2.1 authorityInfoAccess with id-ad-ocsp
	 * and id-ad-caIssuers. */
	const char		*crl_url;
	const char		*ocsp_url;
	const char		*ca_issuers_url;
};

struct ca_issued {
	struct mca_buf	der;
	struct mca_buf	pem;
	char		serial[CA_SERIAL_HEX_MAX];
	int64_t		not_before;	/* now - 60 s */
	int64_t		not_after;	/* min(now + ttl, issuer notAfter) */
};

/* Random 128-bit positive serial (top bit clear), hex in out. */
enum mca_err ca_serial_new(unsigned char raw[16], char out[CA_SERIAL_HEX_MAX]) MCA_WUR;

/* Issues a workload-profile certificate for the CSR's public key
 * (SPIFFE X509-SVID: one URI SAN, basicConstraints CA:FALSE critical,
 * keyUsage digitalSignature critical, EKU serverAuth+clientAuth, SKI, AKI,
 * random serial, notBefore backdated 60 s, notAfter capped by the
 * issuer).  The CSR subject and extensions are never copied. */
enum mca_err ca_issue_leaf(const struct ca_signer *s, const struct ca_csr *csr,
    const struct ca_leaf_req *req, struct ca_issued *out) MCA_WUR;
void ca_issued_clear(struct ca_issued *i);

/* ---- revocation: CRLs (crl.c) and OCSP (ocsp.c) ----------------------
 *
 * GnuTLS cannot put reason codes on CRL entries nor build OCSP responses,
 * so both are encoded with libtasn1 from the project's ASN.1 module
 * (ca/pkix.asn) and signed with the signer's key through GnuTLS.
 */

struct ca_revoked {
	const char	*serial;	/* lowercase hex, as ca_cert_serial_hex */
	int64_t		 revoked_at;
	int		 reason;	/* RFC 5280 5.3.1 CRLReason, -1: none */
};

/* RFC 5280 5.3.1 reason names ("keyCompromise", ...) <-> codes. */
enum mca_err ca_crl_reason_parse(const char *name, int *code) MCA_WUR;
const char *ca_crl_reason_name(int code);

/* A v2 CRL (RFC 5280 5) signed by the intermediate: issuer, thisUpdate,
 * nextUpdate, the entries with their revocation dates and reasonCode
 * entry extensions, and the cRLNumber and authorityKeyIdentifier
 * extensions.  DER in out. */
enum mca_err ca_crl_build(const struct ca_signer *s, const struct ca_revoked *list, size_t n,
    uint64_t number, int64_t this_update, int64_t next_update, struct mca_buf *out) MCA_WUR;

#define CA_OCSP_MAX_REQUEST 8192

enum ca_ocsp_status { CA_OCSP_GOOD, CA_OCSP_REVOKED, CA_OCSP_UNKNOWN };

/* RFC 6960 4.2.1 responseStatus values for unsigned error responses. */
enum ca_ocsp_error {
	CA_OCSP_MALFORMED_REQUEST = 1,
	CA_OCSP_INTERNAL_ERROR = 2,
	CA_OCSP_TRY_LATER = 3,
	CA_OCSP_UNAUTHORIZED = 6,
};

struct ca_ocsp_req;

/* Parses a DER OCSPRequest (RFC 6960 4.1.1) with exactly one Request
 * (more are MCA_ERR_PARSE: meshca answers one certificate per request).
 * Bounded by CA_OCSP_MAX_REQUEST. */
enum mca_err ca_ocsp_req_parse(const unsigned char *der, size_t len, struct ca_ocsp_req **out) MCA_WUR;
void ca_ocsp_req_free(struct ca_ocsp_req *req);
/* The serial asked about, and whether the CertID's issuerNameHash and
 * issuerKeyHash name this signer (else the answer is "unknown"). */
enum mca_err ca_ocsp_req_serial(const struct ca_ocsp_req *req, const struct ca_signer *s,
    char serial[CA_SERIAL_HEX_MAX], bool *ours) MCA_WUR;
bool ca_ocsp_req_has_nonce(const struct ca_ocsp_req *req);

struct ca_ocsp_answer {
	enum ca_ocsp_status	status;
	int64_t			revoked_at;	/* CA_OCSP_REVOKED only */
	int			reason;		/* CA_OCSP_REVOKED only; -1 none */
	int64_t			this_update;
	int64_t			next_update;
};

/* A successful BasicOCSPResponse for the request's CertID, signed by the
 * intermediate (RFC 6960 4.2.2.2: the CA itself), responderID byKey,
 * echoing the request's nonce extension when it has one (RFC 8954). */
enum mca_err ca_ocsp_respond(const struct ca_signer *s, const struct ca_ocsp_req *req,
    const struct ca_ocsp_answer *a, int64_t produced_at, struct mca_buf *out) MCA_WUR;
/* An OCSPResponse carrying only an error status (no responseBytes). */
enum mca_err ca_ocsp_error_response(enum ca_ocsp_error status, struct mca_buf *out) MCA_WUR;

/* ---- bootstrap (bootstrap.c), used by `meshca init` only ------------ */

/* Self-signed root: CA:TRUE, keyUsage keyCertSign|cRLSign (critical),
 * SKI, subject "CN=meshca root CA,O=<td>". */
enum mca_err ca_root_create(const struct ca_key *key, const char *trust_domain,
    int64_t now, int64_t ttl, struct ca_cert **out) MCA_WUR;
/* Name constraints for the intermediate (RFC 5280 4.2.1.10), written as
 * a critical extension with permitted subtrees only. */
struct ca_name_constraints {
	/* Permitted uniformResourceIdentifier host: the trust domain, so
	 * that only spiffe://<td>/... URIs verify below the intermediate.
	 * NULL: no URI subtree.  OpenSSL (and Go) enforce it; GnuTLS 3.7
	 * ignores URI constraints (neither enforces nor rejects them). */
	const char		*uri_domain;
	/* Permitted dNSName subtrees (host names, no wildcard: each admits
	 * itself and its subdomains) and iPAddress ranges.  NULL or empty:
	 * no DNS, no IP subtree (names of that type are unconstrained). */
	const struct ca_sans	*permitted;
};

/* Intermediate signed by the root: CA:TRUE pathLen 0, keyCertSign|cRLSign
 * (critical), SKI, AKI, notAfter capped by the root, and, when nc is not
 * NULL, a critical nameConstraints extension. */
enum mca_err ca_intermediate_create(const struct ca_cert *root, const struct ca_key *root_key,
    const struct ca_key *key, const char *trust_domain, int64_t now, int64_t ttl,
    const struct ca_name_constraints *nc, struct ca_cert **out) MCA_WUR;

#endif
