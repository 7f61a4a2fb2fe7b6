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
 * MCA_ERR_EXISTS (unique name/serial), MCA_ERR_DB_UNAVAILABLE (the
 * database cannot record now: disk full, read-only, or still locked after
 * the busy timeout; see enum db_fault), MCA_ERR_DB (anything else, detail
 * recorded, never with secrets).
 */
#ifndef MCA_DB_H
#define MCA_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/common/err.h"

#define DB_SCHEMA_VERSION 7
#define DB_TOKEN_HASH_LEN 32	/* SHA-256 of the token */

struct db;

/* Opens (creating if missing, mode 0600) and migrates to DB_SCHEMA_VERSION. */
enum mca_err db_open(const char *path, struct db **out) MCA_WUR;
/* Opens an existing database read-only (for `meshca audit verify --db`):
 * never creates, migrates or writes it; every write function fails.
 * MCA_ERR_DB_SCHEMA unless its version is DB_SCHEMA_VERSION. */
enum mca_err db_open_readonly(const char *path, struct db **out) MCA_WUR;
void db_close(struct db *db);
/* PRAGMA user_version of the open database. */
int db_schema_version(struct db *db);
/* A trivial read, for health checks. */
enum mca_err db_ping(struct db *db) MCA_WUR;
/* A tiny write transaction that changes nothing (the write probe below),
 * waiting at most 100 ms for the lock: for the service watchdog, since in
 * WAL mode reads go on while another process holds the write lock and
 * db_ping would not notice that nothing can be recorded. */
enum mca_err db_ping_write(struct db *db) MCA_WUR;

/* Why the database could not record (MCA_ERR_DB_UNAVAILABLE), by kind.
 * SQLITE_FULL and I/O errors with ENOSPC/EDQUOT are "full"; SQLITE_READONLY
 * and I/O or open errors with EROFS/EPERM/EACCES are "readonly";
 * SQLITE_BUSY/LOCKED after the busy timeout are "locked"; other I/O and
 * open errors are "other". */
enum db_fault {
	DB_FAULT_NONE,
	DB_FAULT_FULL,
	DB_FAULT_READONLY,
	DB_FAULT_LOCKED,
	DB_FAULT_OTHER,
	DB_FAULT_MAX
};
/* "none", "full", "readonly", "locked", "other". */
const char *db_fault_name(enum db_fault f);
/* A phrase for clients and logs: "disk full", "read-only", ... */
const char *db_fault_text(enum db_fault f);
/* The kind of the last MCA_ERR_DB_UNAVAILABLE on this thread (DB_FAULT_NONE
 * when the last database error on this thread was of another kind). */
enum db_fault db_fault_last(void);
/* Database errors seen by this process since it started, by kind
 * (process-wide, for metrics; DB_FAULT_NONE counts nothing). */
uint64_t db_fault_count(enum db_fault f);
/* Whether the database takes writes.  false after a write failed with
 * MCA_ERR_DB_UNAVAILABLE until a write succeeds again; while false each
 * call (at most once a second) tries a tiny write transaction, so that
 * readiness comes back by itself when the condition clears even if no
 * client writes.  *fault gets the current kind (DB_FAULT_NONE when
 * writable).  For health checks. */
bool db_writable(struct db *db, enum db_fault *fault);

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

/*
 * Every write function below takes `audit` as its last parameter; it must
 * not be NULL (MCA_ERR_INVALID): no state change goes unrecorded.  The
 * entry gets the function's `now` as its time.  Where the change itself
 * adds facts the caller cannot know, the write function adds them to the
 * detail object (named at each function).  db_crl_insert is the one write
 * without an entry: a CRL is derived from revocations that are each
 * audited, and it is rebuilt within a second of each of them.
 *
 * Limits: actor, action and subject at most DB_AUDIT_FIELD_MAX bytes,
 * detail at most DB_AUDIT_DETAIL_MAX and, when given, a JSON object text
 * ("{...}"; db/ checks the braces only: callers build it with a JSON
 * library).  Beyond them: MCA_ERR_INVALID.
 *
 * The chain (db/audit_hash.c; SHA-256 through GnuTLS's <gnutls/crypto.h>,
 * the only GnuTLS use in db/).  Entry seq (1, 2, 3... without gaps)
 * stores prev_hash, the hash of entry seq-1 (32 zero bytes for seq 1),
 * and
 *
 *   hash = SHA-256(prev_hash || canonical(entry))
 *   canonical(entry) = u64(seq) || u64(at) || str(actor) || str(action)
 *                      || opt(subject) || u8(outcome) || opt(detail)
 *   u64(x)  = 8 bytes, big-endian, two's complement (at is Unix seconds)
 *   u32(x)  = 4 bytes, big-endian
 *   str(s)  = u32(byte length of s) || the bytes of s (UTF-8, no NUL)
 *   opt(s)  = 0x00 when s is NULL (absent), else 0x01 || str(s)
 *   outcome = 0x01 success, 0x00 failure
 *
 * Every field is length-prefixed, so no two different entries encode to
 * the same bytes.  detail is hashed as the exact stored text (GET
 * /v1/audit serves it as `detail_text` beside the parsed `detail`), so
 * anyone holding the entries can recompute the chain.
 */
#define DB_AUDIT_HASH_LEN	32
#define DB_AUDIT_FIELD_MAX	2048
#define DB_AUDIT_DETAIL_MAX	8192

/* One stored entry.  Strings are owned (db_audit_entry_clear). */
struct db_audit_entry {
	int64_t		 seq;
	int64_t		 at;
	char		*actor;
	char		*action;
	char		*subject;	/* NULL: none */
	bool		 ok;
	char		*detail;	/* JSON object text, NULL: none */
	unsigned char	 prev_hash[DB_AUDIT_HASH_LEN];
	unsigned char	 hash[DB_AUDIT_HASH_LEN];
};

/* hash = SHA-256(e->prev_hash || canonical(e)); e->hash is not read. */
enum mca_err db_audit_entry_hash(const struct db_audit_entry *e,
    unsigned char out[DB_AUDIT_HASH_LEN]) MCA_WUR;
void db_audit_entry_clear(struct db_audit_entry *e);
void db_audit_list_free(struct db_audit_entry *list, size_t n);

/* Records a refusal or any other event that changes nothing else, in a
 * transaction of its own.  at = now. */
enum mca_err db_audit_append(struct db *db, const struct db_audit *audit, int64_t now) MCA_WUR;

struct db_audit_filter {
	int64_t		 since;		/* at >= since; 0: any */
	int64_t		 after;		/* seq > after; 0: from the first */
	size_t		 limit;		/* 0: DB_AUDIT_LIST_DEFAULT; capped at DB_AUDIT_LIST_MAX */
};
#define DB_AUDIT_LIST_DEFAULT	1000
#define DB_AUDIT_LIST_MAX	10000

/* Entries in seq order (oldest first).  f may be NULL (all, default limit). */
enum mca_err db_audit_list(struct db *db, const struct db_audit_filter *f,
    struct db_audit_entry **out, size_t *n) MCA_WUR;
/* The newest entry's seq and hash; seq 0 and zero hash when empty. */
enum mca_err db_audit_head(struct db *db, int64_t *seq,
    unsigned char hash[DB_AUDIT_HASH_LEN]) MCA_WUR;

/* Walking a chain: feed entries in seq order to db_audit_walk_step; it
 * stops at the first break and says where and why.  Pure (no SQL), so
 * the CLI checks entries fetched over the API with the same code. */
enum db_audit_break {
	DB_AUDIT_INTACT,
	DB_AUDIT_HASH_MISMATCH,	/* stored hash is not the hash of the entry: edited */
	DB_AUDIT_BROKEN_LINK,	/* prev_hash is not the previous entry's hash: reordered, replaced */
	DB_AUDIT_SEQ_GAP,	/* seq is not the previous + 1 (or 1 first): deleted */
	DB_AUDIT_BREAK_MAX
};
/* "intact", "hash mismatch", "broken link", "gap in seq". */
const char *db_audit_break_name(enum db_audit_break b);

struct db_audit_walk {
	int64_t		 seq;		/* last entry accepted; 0 before the first */
	unsigned char	 hash[DB_AUDIT_HASH_LEN];	/* its hash */
	uint64_t	 count;		/* entries accepted */
	enum db_audit_break why;	/* DB_AUDIT_INTACT until a break */
	int64_t		 broken_seq;	/* the seq of the first entry that broke it */
	int64_t		 expected_seq;	/* for DB_AUDIT_SEQ_GAP: the seq that was due */
	/* Optional: set mark_seq before walking to capture the hash at it. */
	int64_t		 mark_seq;
	bool		 mark_found;
	unsigned char	 mark_hash[DB_AUDIT_HASH_LEN];
};

/* Starts a walk at the beginning of the chain (before seq 1). */
void db_audit_walk_init(struct db_audit_walk *w);
/* MCA_OK while intact; MCA_ERR_PARSE once broken (w says how; later
 * calls change nothing); MCA_ERR_CRYPTO if hashing failed. */
enum mca_err db_audit_walk_step(struct db_audit_walk *w, const struct db_audit_entry *e) MCA_WUR;

/* Walks the whole stored chain.  Returns MCA_OK when it could be read
 * (intact or not: see w->why), with w->mark_seq honoured if the caller
 * set it after db_audit_walk_init. */
enum mca_err db_audit_verify(struct db *db, struct db_audit_walk *w) MCA_WUR;

/*
 * Checkpoints: meshcad signs (seq, head hash, time) of the chain with
 * the intermediate key, so cutting off the newest entries is detectable
 * against a checkpoint kept elsewhere.  The signature covers exactly
 *
 *   tbs = "meshca-audit-checkpoint-v1" (26 bytes) || u64(seq) || head_hash || u64(at)
 *
 * Checkpoints are not themselves audited (that would move the head).
 */
#define DB_AUDIT_TBS_LEN	(26 + 8 + DB_AUDIT_HASH_LEN + 8)

struct db_audit_checkpoint {
	int64_t		 seq;		/* last entry covered */
	unsigned char	 head_hash[DB_AUDIT_HASH_LEN];	/* its hash */
	int64_t		 at;
	unsigned char	*signature;
	size_t		 signature_len;
	unsigned char	*signer;	/* DER of the signing certificate */
	size_t		 signer_len;
};

void db_audit_checkpoint_tbs(const struct db_audit_checkpoint *cp,
    unsigned char out[DB_AUDIT_TBS_LEN]);
/* Stores a checkpoint.  MCA_ERR_INVALID unless entry cp->seq exists with
 * hash cp->head_hash; MCA_ERR_EXISTS when seq already has one. */
enum mca_err db_audit_checkpoint_insert(struct db *db, const struct db_audit_checkpoint *cp) MCA_WUR;
/* The checkpoint with the highest seq; MCA_ERR_NOT_FOUND when none. */
enum mca_err db_audit_checkpoint_latest(struct db *db, struct db_audit_checkpoint *out) MCA_WUR;
enum mca_err db_audit_checkpoint_get(struct db *db, int64_t seq,
    struct db_audit_checkpoint *out) MCA_WUR;
void db_audit_checkpoint_clear(struct db_audit_checkpoint *cp);

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
	bool		  allow_wildcards;	/* literal "*.suffix" names may be issued */
	bool		  enabled;
	int64_t		  created_at;
	int64_t		  updated_at;
};

/* Inserts svc (id and timestamps are set from the database on success;
 * created_at = updated_at = now).  MCA_ERR_EXISTS if the name or SPIFFE
 * ID is taken. */
enum mca_err db_service_insert(struct db *db, struct db_service *svc, int64_t now,
    const struct db_audit *audit) MCA_WUR;
/* Replaces the policy of the service old->id (dns_names, ip_ranges,
 * default_ttl, max_ttl, key_types, allow_wildcards) with svc's, in one
 * transaction with its audit entry, if the stored policy still equals
 * old's: compare-and-set, so that two concurrent read-modify-write
 * updates cannot lose one another (MCA_ERR_CONFLICT: re-read, retry).
 * Name, SPIFFE ID, enabled and created_at never change here.  Sets
 * updated_at = now (also in svc).  MCA_ERR_NOT_FOUND when the service is
 * gone. */
enum mca_err db_service_update(struct db *db, const struct db_service *old,
    struct db_service *svc, int64_t now, const struct db_audit *audit) MCA_WUR;
enum mca_err db_service_get(struct db *db, const char *name, struct db_service *out) MCA_WUR;
enum mca_err db_service_get_by_id(struct db *db, int64_t id, struct db_service *out) MCA_WUR;
/* All services ordered by name. */
enum mca_err db_service_list(struct db *db, struct db_service **out, size_t *n) MCA_WUR;
void db_service_clear(struct db_service *svc);
void db_service_list_free(struct db_service *list, size_t n);

/* ---- enrollment tokens ---------------------------------------------- */

/* Stores a token by its hash only.  Audit: the caller's entry (action
 * "token.mint") with "token_id" (the row id, which names the token in
 * the log without revealing it) and "expires_at" added to its detail. */
enum mca_err db_token_insert(struct db *db, int64_t service_id,
    const unsigned char hash[DB_TOKEN_HASH_LEN], int64_t now, int64_t expires_at,
    const struct db_audit *audit) MCA_WUR;
/* Read-only check of a token: its service if unused and unexpired at
 * now; else MCA_ERR_TOKEN_INVALID (unknown), MCA_ERR_TOKEN_USED or
 * MCA_ERR_TOKEN_EXPIRED.  It does not consume: see db_enroll_commit. */
enum mca_err db_token_lookup(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t *service_id) MCA_WUR;

/* ---- administrators (admins.c) --------------------------------------
 *
 * Operators of the CA.  Each has a name (the last segment of its admin
 * SPIFFE ID spiffe://<td>/meshca/admin/<name>) and a role: viewers read
 * (listings, status, audit), admins also change things.  A removed
 * admin keeps its row (removed_at set) for the record; adding the name
 * again reinstates it with a new role and no certificate.
 */

enum db_admin_role { DB_ROLE_VIEWER, DB_ROLE_ADMIN, DB_ROLE_MAX };	/* ordered: viewer < admin */

const char *db_admin_role_name(enum db_admin_role r);		/* "viewer", "admin" */
enum mca_err db_admin_role_parse(const char *s, enum db_admin_role *out) MCA_WUR;

struct db_admin {
	int64_t		   id;
	char		  *name;
	enum db_admin_role role;
	int64_t		   created_at;
	int64_t		   removed_at;	/* 0 while active */
};

/* Adds an admin (created_at = now), or reinstates a removed one of that
 * name.  *id (may be NULL) gets its id.  MCA_ERR_EXISTS when an active
 * admin has the name; MCA_ERR_INVALID for a name that is not 1 to 63 of
 * A-Z a-z 0-9 . _ - (what `meshca init --admin-name` accepts). */
enum mca_err db_admin_insert(struct db *db, const char *name, enum db_admin_role role,
    int64_t now, int64_t *id, const struct db_audit *audit) MCA_WUR;
/* One admin by name, removed or not (check removed_at). */
enum mca_err db_admin_get(struct db *db, const char *name, struct db_admin *out) MCA_WUR;
enum mca_err db_admin_get_by_id(struct db *db, int64_t id, struct db_admin *out) MCA_WUR;
/* Every admin, removed ones included, ordered by name. */
enum mca_err db_admin_list(struct db *db, struct db_admin **out, size_t *n) MCA_WUR;
void db_admin_clear(struct db_admin *a);
void db_admin_list_free(struct db_admin *list, size_t n);
/* One transaction: marks the admin removed at now, revokes with reason
 * (RFC 5280 5.3.1 code) every active, unexpired admin certificate of
 * that name, and ends its unused enrollment tokens.  *nrevoked (may be
 * NULL) gets how many certificates were revoked.  MCA_ERR_NOT_FOUND for
 * a name with no active admin; MCA_ERR_CONFLICT when it is the last
 * active admin of role admin (nobody could administer the CA any more).
 * Nothing changes on failure.  The audit detail gets "revoked": N. */
enum mca_err db_admin_remove(struct db *db, const char *name, int reason, int64_t now,
    size_t *nrevoked, const struct db_audit *audit) MCA_WUR;

/* Stores an admin enrollment token by its hash (the admin must be
 * active: MCA_ERR_NOT_FOUND otherwise).  Audit: as db_token_insert
 * ("token_id" and "expires_at" added to the caller's detail). */
enum mca_err db_token_insert_admin(struct db *db, int64_t admin_id,
    const unsigned char hash[DB_TOKEN_HASH_LEN], int64_t now, int64_t expires_at,
    const struct db_audit *audit) MCA_WUR;
/* Read-only check of any token (service or admin), as db_token_lookup:
 * on success exactly one of *service_id and *admin_id is non-zero; on
 * MCA_ERR_TOKEN_USED and MCA_ERR_TOKEN_EXPIRED too (who the refused
 * token was for, to audit the attempt). */
enum mca_err db_token_lookup_owner(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t *service_id, int64_t *admin_id) MCA_WUR;

struct db_cert;
/* One transaction, as db_enroll_commit for an admin: consumes the token
 * (unused, unexpired at now, of admin_id), checks the admin is still
 * active (MCA_ERR_TOKEN_INVALID otherwise) and inserts c, which must be
 * of kind DB_CERT_ADMIN without a service.  Durable on return.  Audit:
 * as db_enroll_commit, "token.consume" (subject the admin's name, detail
 * {"token_id":N,"kind":"admin"}) and then the caller's entry. */
enum mca_err db_admin_enroll_commit(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, int64_t admin_id, const struct db_cert *c, const struct db_audit *audit) MCA_WUR;

/* ---- status (status.c) ---------------------------------------------- */

/* What `meshca status` shows.  Certificates of every kind are counted;
 * "live" = active and not expired at now. */
struct db_counts {
	uint64_t	services;		/* registered */
	uint64_t	services_enabled;
	uint64_t	admins;			/* active (not removed) */
	uint64_t	certs_live;
	uint64_t	certs_expiring;		/* live, notAfter within soon of now */
	uint64_t	certs_revoked;		/* ever revoked */
	uint64_t	certs_revoked_unexpired;	/* revoked, notAfter still ahead: what the CRL lists */
	uint64_t	certs_total;
};

/* One consistent snapshot (a single read transaction). */
enum mca_err db_counts(struct db *db, int64_t now, int64_t soon, struct db_counts *out) MCA_WUR;

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
 * serial collision.  Audit: the caller's entry as is ("cert.issue",
 * "cert.renew", "cert.rotate" for meshcad's own server certificate). */
enum mca_err db_cert_insert(struct db *db, const struct db_cert *c, int64_t now,
    const struct db_audit *audit) MCA_WUR;
/* One transaction: consume the token (it must be unused, unexpired at
 * now and belong to c->service_id) and insert c.  If the token was
 * consumed by someone else first, nothing is written and the token error
 * is returned; two concurrent calls with one token insert exactly one
 * certificate.  Returns only once the commit is durable. */
/* Audit: two entries, in this order: "token.consume" (the caller's
 * actor, subject the token's service, detail {"token_id":N}) and then
 * the caller's own entry (action "cert.issue", subject the serial). */
enum mca_err db_enroll_commit(struct db *db, const unsigned char hash[DB_TOKEN_HASH_LEN],
    int64_t now, const struct db_cert *c, const struct db_audit *audit) MCA_WUR;
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
/* How SQLite runs db_cert_list for f: EXPLAIN QUERY PLAN's lines ("SCAN c
 * USING INDEX certificates_created", ...) into out, one a line, NUL-ended.
 * For tests and for investigating a slow listing: every filter must walk
 * an index newest first, never scan or sort the table (db/certs.c).
 * MCA_ERR_TOOBIG if len is too small. */
enum mca_err db_cert_list_plan(struct db *db, const struct db_cert_filter *f, char *out,
    size_t len) MCA_WUR;
void db_cert_clear(struct db_cert *c);
void db_cert_list_free(struct db_cert *list, size_t n);

/* ---- revocation (revoke.c) ------------------------------------------ */
/* How SQLite runs the bulk revocations, "service: <plan>admin: <plan>"
 * (plans as db_cert_list_plan gives them): disabling a service walks the
 * live certificates of the CA, never the service's whole history;
 * removing an admin walks the admin and server certificates, never every
 * live workload certificate.  MCA_ERR_TOOBIG if len is too small. */
enum mca_err db_revoke_plans(struct db *db, char *out, size_t len) MCA_WUR;

/* RFC 5280 5.3.1 CRLReason codes meshca records: 0..10 except 7 (unused). */
#define DB_REASON_UNSPECIFIED		0
#define DB_REASON_CESSATION		5	/* cessationOfOperation */

/* Revokes one certificate at now with an RFC 5280 reason code.  Idempotent:
 * a certificate already revoked keeps its first time and reason and the
 * call returns MCA_OK with *newly = false (newly may be NULL).  Unknown
 * serial: MCA_ERR_NOT_FOUND; a bad reason: MCA_ERR_INVALID.  Audit: the
 * caller's entry ("cert.revoke") when newly revoked; a repeated
 * revocation changes nothing and records nothing. */
enum mca_err db_cert_revoke(struct db *db, const char *serial, int reason, int64_t now,
    bool *newly, const struct db_audit *audit) MCA_WUR;

/* Enables or disables a service (updated_at = now).  MCA_ERR_NOT_FOUND
 * for an unknown name. */
enum mca_err db_service_set_enabled(struct db *db, const char *name, bool enabled,
    int64_t now, const struct db_audit *audit) MCA_WUR;
/* One transaction: disables the service and revokes, with reason, every
 * certificate of it that is active and unexpired at now.  *nrevoked gets
 * how many were revoked (may be NULL).  Nothing changes on failure.
 * Audit (both): the caller's entry ("service.disable"/"service.enable");
 * disable_revoke adds "revoked" (the count) and "reason" to its detail. */
enum mca_err db_service_disable_revoke(struct db *db, const char *name, int reason,
    int64_t now, size_t *nrevoked, const struct db_audit *audit) MCA_WUR;

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
