/*
 * db/ — meshca's storage.  Every SQL statement of the project lives under
 * db/; the rest of the code sees these typed functions only.
 *
 * SQLite in WAL mode with synchronous=FULL (a commit that returned is on
 * disk), foreign keys on, busy timeout.  The schema is versioned with
 * PRAGMA user_version and migrated forward on open; a database newer than
 * this program is refused (MCA_ERR_DB_SCHEMA).
 *
 * Threads: one struct db may be shared by threads; each public function
 * is atomic (it holds the handle's lock and, for writes, runs in one
 * transaction).  Structures returned to the caller are owned by the
 * caller and released with the matching *_clear / *_list_free.
 *
 * Times are int64_t Unix seconds.  Errors: MCA_ERR_NOT_FOUND,
 * MCA_ERR_EXISTS (unique name/serial), MCA_ERR_DB_BUSY (lock timeout),
 * MCA_ERR_DB (anything else, detail recorded, never with secrets).
 */
#ifndef MCA_DB_H
#define MCA_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/common/err.h"

#define DB_SCHEMA_VERSION 4
#define DB_TOKEN_HASH_LEN 32	/* SHA-256 of the token */

struct db;

/* Opens (creating if missing, mode 0600) and migrates to DB_SCHEMA_VERSION. */
enum mca_err db_open(const char *path, struct db **out) MCA_WUR;
void db_close(struct db *db);
/* PRAGMA user_version of the open database. */
int db_schema_version(struct db *db);
/* A trivial read, for health checks. */
enum mca_err db_ping(struct db *db) MCA_WUR;

/* ---- audit ------------------------------------------------------------
 *
 * Every state change is audited in the same transaction as the change
 * (issue 5): each write function of this interface takes a
 * `const struct db_audit *audit` describing who did what, and appends it
 * to the hash-chained audit table inside its own transaction, so the
 * change and its entry commit or roll back together.  A refusal, which
 * changes nothing else, is recorded with db_audit_append() on its own.
 * Entries never carry secrets: no tokens, keys or passphrases in any field.
 */
struct db_audit {
	const char	*actor;		/* SPIFFE ID of the admin or workload, "token:<service>", or "meshcad" */
	const char	*action;	/* dotted verb: "service.add", "token.mint", "cert.issue", ... */
	const char	*subject;	/* what was acted on (service, serial, admin name), or NULL */
	bool		 ok;		/* outcome: success, or failure for refusals */
	const char	*detail;	/* a JSON object as text, or NULL */
};

/* ---- services ------------------------------------------------------- */

struct db_service {
	int64_t		  id;
	char		 *name;
	char		 *spiffe_id;
	char		**dns_names;	/* exact names and "*.suffix" patterns */
	size_t		  ndns;
	char		**ip_ranges;	/* addresses and CIDRs, as text */
	size_t		  nips;
	int64_t		  default_ttl;	/* seconds */
	int64_t		  max_ttl;	/* seconds */
	uint32_t	  key_types;	/* mask of CA_KEY_MASK(enum ca_key_type) */
	bool		  enabled;
	int64_t		  created_at;
	int64_t		  updated_at;
};

/* Inserts svc (id and timestamps are set from the database on success;
 * created_at = updated_at = now).  MCA_ERR_EXISTS if the name or SPIFFE
 * ID is taken. */
enum mca_err db_service_insert(struct db *db, struct db_service *svc, int64_t now) MCA_WUR;
enum mca_err db_service_get(struct db *db, const char *name, struct db_service *out) MCA_WUR;
enum mca_err db_service_get_by_id(struct db *db, int64_t id, struct db_service *out) MCA_WUR;
/* All services ordered by name. */
enum mca_err db_service_list(struct db *db, struct db_service **out, size_t *n) MCA_WUR;
void db_service_clear(struct db_service *svc);
void db_service_list_free(struct db_service *list, size_t n);

/* ---- enrollment tokens ---------------------------------------------- */

/* Stores a token by its hash only. */
enum mca_err db_token_insert(struct db *db, int64_t service_id,
    const unsigned char hash[DB_TOKEN_HASH_LEN], int64_t now, int64_t expires_at) MCA_WUR;
/* Read-only check of a token: its service if unused and unexpired at
 * now; else MCA_ERR_TOKEN_INVALID (unknown), MCA_ERR_TOKEN_USED or
 * MCA_ERR_TOKEN_EXPIRED.  It does not consume: see db_enroll_commit. */
enum mca_err db_token_lookup(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t *service_id) MCA_WUR;

/* ---- certificates --------------------------------------------------- */

enum db_cert_kind { DB_CERT_WORKLOAD, DB_CERT_ADMIN, DB_CERT_SERVER, DB_CERT_KIND_MAX };
/* Stored status; "expired" is derived at read time from not_after. */
enum db_cert_status { DB_CERT_ACTIVE, DB_CERT_REVOKED, DB_CERT_EXPIRED, DB_CERT_STATUS_MAX };

const char *db_cert_kind_name(enum db_cert_kind k);		/* "workload" ... */
const char *db_cert_status_name(enum db_cert_status s);	/* "active" ... */
enum mca_err db_cert_status_parse(const char *s, enum db_cert_status *out) MCA_WUR;

struct db_cert {
	char		 *serial;	/* lowercase hex, unique */
	int64_t		  service_id;	/* 0: none (admin, server) */
	char		 *service;	/* service name, filled on read; NULL if none */
	enum db_cert_kind kind;
	char		 *spiffe_id;
	char		**dns_names;
	size_t		  ndns;
	char		**ip_addresses;
	size_t		  nips;
	int64_t		  not_before;
	int64_t		  not_after;
	unsigned char	 *der;
	size_t		  der_len;
	enum db_cert_status status;	/* on read: EXPIRED if active and past not_after */
	char		 *renewed_from;	/* serial, or NULL */
	int64_t		  created_at;
	int64_t		  revoked_at;	/* 0 unless revoked */
	int		  revocation_reason;	/* RFC 5280 5.3.1 CRLReason; -1 unless revoked */
};

/* Inserts a certificate record (status active).  MCA_ERR_EXISTS on a
 * serial collision. */
enum mca_err db_cert_insert(struct db *db, const struct db_cert *c, int64_t now) MCA_WUR;
/* One transaction: consume the token (it must be unused, unexpired at
 * now and belong to c->service_id) and insert c.  If the token was
 * consumed by someone else first, nothing is written and the token error
 * is returned; two concurrent calls with one token insert exactly one
 * certificate.  Returns only once the commit is durable. */
enum mca_err db_enroll_commit(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, const struct db_cert *c) MCA_WUR;
/* Reads one certificate, status derived at now. */
enum mca_err db_cert_get(struct db *db, const char *serial, int64_t now, struct db_cert *out) MCA_WUR;

struct db_cert_filter {
	const char	*service;	/* NULL: any */
	int		 status;	/* -1: any, else enum db_cert_status at now */
	int		 kind;		/* -1: any, else enum db_cert_kind */
	size_t		 limit;		/* 0: default 1000 */
};

/* Newest first; DER is not loaded in lists (der = NULL). */
enum mca_err db_cert_list(struct db *db, const struct db_cert_filter *f, int64_t now,
    struct db_cert **out, size_t *n) MCA_WUR;
void db_cert_clear(struct db_cert *c);
void db_cert_list_free(struct db_cert *list, size_t n);

/* ---- revocation (revoke.c) ------------------------------------------ */

/* RFC 5280 5.3.1 CRLReason codes meshca records: 0..10 except 7 (unused). */
#define DB_REASON_UNSPECIFIED		0
#define DB_REASON_CESSATION		5	/* cessationOfOperation */

/* Revokes one certificate at now with an RFC 5280 reason code.  Idempotent:
 * a certificate already revoked keeps its first time and reason and the
 * call returns MCA_OK with *newly = false (newly may be NULL).  Unknown
 * serial: MCA_ERR_NOT_FOUND; a bad reason: MCA_ERR_INVALID. */
enum mca_err db_cert_revoke(struct db *db, const char *serial, int reason, int64_t now,
    bool *newly) MCA_WUR;

/* Enables or disables a service (updated_at = now).  MCA_ERR_NOT_FOUND
 * for an unknown name. */
enum mca_err db_service_set_enabled(struct db *db, const char *name, bool enabled,
    int64_t now) MCA_WUR;
/* One transaction: disables the service and revokes, with reason, every
 * certificate of it that is active and unexpired at now.  *nrevoked gets
 * how many were revoked (may be NULL).  Nothing changes on failure. */
enum mca_err db_service_disable_revoke(struct db *db, const char *name, int reason,
    int64_t now, size_t *nrevoked) MCA_WUR;

/* A revoked certificate, as a CRL lists it. */
struct db_revoked {
	char		serial[65];
	int64_t		revoked_at;
	int		reason;		/* RFC 5280 CRLReason */
};

/* Every revoked certificate whose notAfter is after now (what a CRL
 * lists: RFC 5280 3.3 lets an expired certificate leave it), ordered by
 * serial.  Free with free(). */
enum mca_err db_revoked_live(struct db *db, int64_t now, struct db_revoked **out,
    size_t *n) MCA_WUR;

/* ---- CRLs (crl.c) --------------------------------------------------- */

#define DB_CRL_KEEP	16	/* CRLs kept; older ones are pruned on insert */

struct db_crl {
	uint64_t	 number;	/* cRLNumber, >= 1, strictly increasing */
	int64_t		 this_update;
	int64_t		 next_update;
	int64_t		 created_at;
	unsigned char	*der;
	size_t		 der_len;
};

/* Records a signed CRL.  MCA_ERR_EXISTS when number is already taken
 * (another meshcad got there first: build again with a new number);
 * MCA_ERR_INVALID when number is not above every recorded one.  Keeps
 * the DB_CRL_KEEP newest. */
enum mca_err db_crl_insert(struct db *db, const struct db_crl *crl) MCA_WUR;
/* The CRL with the highest number; MCA_ERR_NOT_FOUND when none yet.
 * with_der false leaves der NULL (for the number alone). */
enum mca_err db_crl_latest(struct db *db, bool with_der, struct db_crl *out) MCA_WUR;
void db_crl_clear(struct db_crl *crl);

#endif
