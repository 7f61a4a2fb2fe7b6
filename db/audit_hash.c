/*
 * The audit chain's arithmetic: the canonical encoding of an entry, its
 * hash, the walk that checks a chain entry by entry, and the bytes a
 * checkpoint signature covers.  No SQL here: the CLI runs the same walk
 * over entries fetched through the API.  The encoding is specified in
 * db.h; change it only with a new checkpoint/entry version.
 */
#include "db/db.h"

#include <gnutls/crypto.h>
#include <string.h>

#define CHECKPOINT_LABEL	"meshca-audit-checkpoint-v1"

_Static_assert(sizeof(CHECKPOINT_LABEL) - 1 == 26, "DB_AUDIT_TBS_LEN counts a 26-byte label");

static void
put_u64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)(v & 0xff);
}

static void
put_u32(unsigned char out[4], uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)(v & 0xff);
}

static int
hash_u64(gnutls_hash_hd_t h, int64_t v)
{
	unsigned char b[8];

	put_u64(b, (uint64_t)v);
	return gnutls_hash(h, b, sizeof(b));
}

/* str(s) = u32(len) || s.  Fields are bounded far below 4 GiB by db/. */
static int
hash_str(gnutls_hash_hd_t h, const char *s)
{
	size_t len = strlen(s);
	unsigned char b[4];

	if (len > UINT32_MAX)
		return -1;
	put_u32(b, (uint32_t)len);
	if (gnutls_hash(h, b, sizeof(b)) < 0)
		return -1;
	return len > 0 ? gnutls_hash(h, s, len) : 0;
}

/* opt(s) = 0x00, or 0x01 || str(s). */
static int
hash_opt(gnutls_hash_hd_t h, const char *s)
{
	unsigned char tag = s != NULL ? 1 : 0;

	if (gnutls_hash(h, &tag, 1) < 0)
		return -1;
	return s != NULL ? hash_str(h, s) : 0;
}

enum mca_err
db_audit_entry_hash(const struct db_audit_entry *e, unsigned char out[DB_AUDIT_HASH_LEN])
{
	gnutls_hash_hd_t h = NULL;
	unsigned char outcome;

	if (e == NULL || e->actor == NULL || e->action == NULL)
		return mca_err_set(MCA_ERR_INVALID, "audit entry without actor or action");
	outcome = e->ok ? 1 : 0;
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "SHA-256 unavailable");
	if (gnutls_hash(h, e->prev_hash, DB_AUDIT_HASH_LEN) < 0 ||
	    hash_u64(h, e->seq) < 0 || hash_u64(h, e->at) < 0 ||
	    hash_str(h, e->actor) < 0 || hash_str(h, e->action) < 0 ||
	    hash_opt(h, e->subject) < 0 || gnutls_hash(h, &outcome, 1) < 0 ||
	    hash_opt(h, e->detail) < 0) {
		gnutls_hash_deinit(h, NULL);
		return mca_err_set(MCA_ERR_CRYPTO, "hashing audit entry %lld failed",
		    (long long)e->seq);
	}
	gnutls_hash_deinit(h, out);
	return MCA_OK;
}

/* ---- walking a chain ------------------------------------------------- */

const char *
db_audit_break_name(enum db_audit_break b)
{
	switch (b) {
	case DB_AUDIT_INTACT:		return "intact";
	case DB_AUDIT_HASH_MISMATCH:	return "hash mismatch";
	case DB_AUDIT_BROKEN_LINK:	return "broken link";
	case DB_AUDIT_SEQ_GAP:		return "gap in seq";
	case DB_AUDIT_BREAK_MAX:	break;
	}
	return "?";
}

void
db_audit_walk_init(struct db_audit_walk *w)
{
	memset(w, 0, sizeof(*w));
	w->why = DB_AUDIT_INTACT;
}

static enum mca_err
walk_break(struct db_audit_walk *w, enum db_audit_break why, int64_t seq)
{
	w->why = why;
	w->broken_seq = seq;
	return MCA_ERR_PARSE;
}

/*
 * The order of the checks names the most specific cause: a missing seq
 * first (rows deleted), then the row's own hash (the row was edited),
 * then its link (the row is intact but does not follow its predecessor:
 * rows swapped or replaced wholesale).
 */
enum mca_err
db_audit_walk_step(struct db_audit_walk *w, const struct db_audit_entry *e)
{
	unsigned char h[DB_AUDIT_HASH_LEN];
	enum mca_err rc;

	if (w->why != DB_AUDIT_INTACT)
		return MCA_ERR_PARSE;
	if (e->seq != w->seq + 1) {
		w->expected_seq = w->seq + 1;
		return walk_break(w, DB_AUDIT_SEQ_GAP, e->seq);
	}
	if ((rc = db_audit_entry_hash(e, h)) != MCA_OK)
		return rc;
	if (memcmp(h, e->hash, sizeof(h)) != 0)
		return walk_break(w, DB_AUDIT_HASH_MISMATCH, e->seq);
	if (memcmp(e->prev_hash, w->hash, sizeof(w->hash)) != 0)
		return walk_break(w, DB_AUDIT_BROKEN_LINK, e->seq);
	w->seq = e->seq;
	memcpy(w->hash, h, sizeof(h));
	w->count++;
	if (w->mark_seq != 0 && e->seq == w->mark_seq) {
		w->mark_found = true;
		memcpy(w->mark_hash, h, sizeof(h));
	}
	return MCA_OK;
}

/* ---- checkpoints ------------------------------------------------------ */

void
db_audit_checkpoint_tbs(const struct db_audit_checkpoint *cp, unsigned char out[DB_AUDIT_TBS_LEN])
{
	size_t off = sizeof(CHECKPOINT_LABEL) - 1;

	memcpy(out, CHECKPOINT_LABEL, off);
	put_u64(out + off, (uint64_t)cp->seq);
	off += 8;
	memcpy(out + off, cp->head_hash, DB_AUDIT_HASH_LEN);
	off += DB_AUDIT_HASH_LEN;
	put_u64(out + off, (uint64_t)cp->at);
}
