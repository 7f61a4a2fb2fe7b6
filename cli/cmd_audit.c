/*
 * `meshca audit list|verify|checkpoint`: the tamper-evident audit log.
 *
 * verify walks the hash chain (db.h gives the encoding) entry by entry,
 * from the SQLite file (--db, opened read-only) or from GET /v1/audit,
 * and reports the first entry that breaks it.  It then checks the chain
 * against a signed checkpoint: the one given with --checkpoint (a
 * meshcad log holding "audit checkpoint seq=... signature=..." lines, or
 * the JSON of `meshca audit checkpoint --json`), else the latest one the
 * database or the API holds.  The checkpoint's signature must verify
 * under its signer, an intermediate that chains to the configured root,
 * and the chain must hold the checkpoint's seq with the checkpoint's
 * hash: rows cut off after it, or anything rewritten before it, fail.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"
#include "db/db.h"

#define AUDIT_PATH_MAX		512
#define AUDIT_PAGE		10000
#define CHECKPOINT_FILE_MAX	(256 * 1024 * 1024)	/* a log file may be large */
#define CHECKPOINT_TAG		"audit checkpoint seq="

enum { O_SINCE = 1, O_AFTER, O_LIMIT, O_DB, O_CHECKPOINT };

/* ---- small decoders ------------------------------------------------------ */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static enum mca_err
hash_from_hex(const char *hex, unsigned char out[DB_AUDIT_HASH_LEN])
{
	if (hex == NULL || strlen(hex) != 2 * DB_AUDIT_HASH_LEN)
		return mca_err_set(MCA_ERR_PARSE, "a hash is %d hex digits", 2 * DB_AUDIT_HASH_LEN);
	for (size_t i = 0; i < DB_AUDIT_HASH_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return mca_err_set(MCA_ERR_PARSE, "a hash is %d hex digits", 2 * DB_AUDIT_HASH_LEN);
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return MCA_OK;
}

static enum mca_err
bytes_from_base64(const char *b64, size_t len, unsigned char **out, size_t *outlen)
{
	gnutls_datum_t in = { (unsigned char *)(uintptr_t)b64, (unsigned)len }, d = { NULL, 0 };

	if (len == 0 || len > 64 * 1024 || gnutls_base64_decode2(&in, &d) < 0)
		return mca_err_set(MCA_ERR_PARSE, "the signature is not base64");
	if ((*out = malloc(d.size)) == NULL) {
		gnutls_free(d.data);
		return MCA_ERR_NOMEM;
	}
	memcpy(*out, d.data, d.size);
	*outlen = d.size;
	gnutls_free(d.data);
	return MCA_OK;
}

static enum mca_err
seq_parse(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || errno != 0 || v < 1 || (*end != '\0' && *end != ' '))
		return mca_err_set(MCA_ERR_PARSE, "seq must be a positive integer");
	*out = v;
	return MCA_OK;
}

/* ---- checkpoints from files, the database or the API -------------------- */

/* {seq, head, at, signature, signer?}: the JSON of `audit checkpoint
 * --json` and of GET /v1/audit/checkpoints/latest. */
static enum mca_err
checkpoint_from_json(const json_t *o, struct db_audit_checkpoint *cp)
{
	const char *head = cli_json_str(o, "head"), *at = cli_json_str(o, "at");
	const char *sig = cli_json_str(o, "signature"), *signer = cli_json_str(o, "signer");
	json_t *seq = json_object_get(o, "seq");
	struct ca_cert *c = NULL;
	enum mca_err rc;

	if (!json_is_integer(seq) || json_integer_value(seq) < 1 || at == NULL || sig == NULL)
		return mca_err_set(MCA_ERR_PARSE, "a checkpoint has seq, head, at and signature");
	cp->seq = json_integer_value(seq);
	if ((rc = hash_from_hex(head, cp->head_hash)) != MCA_OK ||
	    (rc = mca_time_parse(at, &cp->at)) != MCA_OK ||
	    (rc = bytes_from_base64(sig, strlen(sig), &cp->signature, &cp->signature_len)) != MCA_OK)
		return rc;
	if (signer == NULL)
		return MCA_OK;
	if ((rc = ca_cert_parse((const unsigned char *)signer, strlen(signer), &c)) != MCA_OK)
		return rc;
	if ((cp->signer = malloc(ca_cert_der(c)->len)) == NULL)
		rc = MCA_ERR_NOMEM;
	else {
		memcpy(cp->signer, ca_cert_der(c)->data, ca_cert_der(c)->len);
		cp->signer_len = ca_cert_der(c)->len;
	}
	ca_cert_free(c);
	return rc;
}

/* One "key=value" of a checkpoint line; value ends at a blank or quote. */
static const char *
line_value(const char *line, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *p = line;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=') {
			p += klen + 1;
			*len = strcspn(p, " \"\r\n");
			return p;
		}
		p += klen;
	}
	return NULL;
}

/* The line meshcad logs: "audit checkpoint seq=N head=HEX at=T signature=B64". */
static enum mca_err
checkpoint_from_line(const char *line, struct db_audit_checkpoint *cp)
{
	const char *v[4];
	size_t len[4];
	char seq[24], head[2 * DB_AUDIT_HASH_LEN + 1], at[MCA_TIME_LEN];
	static const char *const keys[4] = { "seq", "head", "at", "signature" };
	enum mca_err rc;

	for (int i = 0; i < 4; i++)
		if ((v[i] = line_value(line, keys[i], &len[i])) == NULL || len[i] == 0)
			return mca_err_set(MCA_ERR_PARSE, "checkpoint line without %s=", keys[i]);
	if (len[0] >= sizeof(seq) || len[1] >= sizeof(head) || len[2] >= sizeof(at))
		return mca_err_set(MCA_ERR_PARSE, "checkpoint line with an overlong field");
	memcpy(seq, v[0], len[0]);
	seq[len[0]] = '\0';
	memcpy(head, v[1], len[1]);
	head[len[1]] = '\0';
	memcpy(at, v[2], len[2]);
	at[len[2]] = '\0';
	if ((rc = seq_parse(seq, &cp->seq)) != MCA_OK ||
	    (rc = hash_from_hex(head, cp->head_hash)) != MCA_OK ||
	    (rc = mca_time_parse(at, &cp->at)) != MCA_OK)
		return rc;
	return bytes_from_base64(v[3], len[3], &cp->signature, &cp->signature_len);
}

/* A JSON export, or a log: its last checkpoint line counts. */
static enum mca_err
checkpoint_from_file(const char *path, struct db_audit_checkpoint *cp)
{
	struct mca_buf b = { 0 };
	const char *text, *p, *last = NULL;
	json_t *o = NULL;
	enum mca_err rc;

	mca_buf_init(&b, CHECKPOINT_FILE_MAX, false);
	if ((rc = mca_file_read(path, CHECKPOINT_FILE_MAX, &b)) != MCA_OK ||
	    (rc = mca_buf_terminate(&b)) != MCA_OK)
		goto out;
	text = (const char *)b.data;
	if (text[strspn(text, " \t\r\n")] == '{') {
		if ((o = json_loads(text, JSON_REJECT_DUPLICATES, NULL)) == NULL)
			rc = mca_err_set(MCA_ERR_PARSE, "%s: not JSON", path);
		else
			rc = checkpoint_from_json(o, cp);
		goto out;
	}
	for (p = text; (p = strstr(p, CHECKPOINT_TAG)) != NULL; p++)
		last = p;
	if (last == NULL)
		rc = mca_err_set(MCA_ERR_PARSE, "%s: no \"audit checkpoint\" line", path);
	else
		rc = checkpoint_from_line(last + strlen("audit checkpoint "), cp);
out:
	if (rc != MCA_OK && rc != MCA_ERR_NOMEM)
		rc = mca_err_set(rc, "checkpoint file %s: %s", path, mca_err_detail());
	json_decref(o);
	mca_buf_free(&b);
	return rc;
}

/* ---- verifying a checkpoint's signature ---------------------------------- */

/* The certificate that signed: the checkpoint's own, else the configured
 * intermediate, else the one the database stored with that seq. */
static enum mca_err
checkpoint_signer(const struct cli_ctx *ctx, const struct db_audit_checkpoint *cp, struct db *db,
    struct ca_cert **out)
{
	struct db_audit_checkpoint stored = { 0 };
	const char *v;
	char path[PATH_MAX];
	enum mca_err rc;

	if (cp->signer != NULL)
		return ca_cert_parse(cp->signer, cp->signer_len, out);
	if (ctx->cfg != NULL && (v = mca_config_get(ctx->cfg, "intermediate_cert")) != NULL) {
		if (v[0] == '/')
			return ca_cert_load(v, out);
		if ((rc = mca_path_join(path, sizeof(path), mca_config_dir(ctx->cfg), v)) != MCA_OK)
			return rc;
		return ca_cert_load(path, out);
	}
	if (db != NULL && (rc = db_audit_checkpoint_get(db, cp->seq, &stored)) == MCA_OK) {
		rc = ca_cert_parse(stored.signer, stored.signer_len, out);
		db_audit_checkpoint_clear(&stored);
		return rc;
	}
	return mca_err_set(MCA_ERR_CONFIG, "no certificate to verify the checkpoint with: give a "
	    "JSON checkpoint with its signer, or a configuration with intermediate_cert");
}

static enum mca_err
checkpoint_verify(const struct cli_ctx *ctx, const struct db_audit_checkpoint *cp, struct db *db)
{
	unsigned char tbs[DB_AUDIT_TBS_LEN];
	struct ca_cert *signer = NULL, *root = NULL;
	enum mca_err rc;

	if (ctx->root_cert == NULL)
		return mca_err_set(MCA_ERR_CONFIG, "a checkpoint is verified up to the root: set "
		    "--root-cert, MESHCA_ROOT_CERT or root_cert in the configuration");
	if ((rc = ca_cert_load(ctx->root_cert, &root)) != MCA_OK ||
	    (rc = checkpoint_signer(ctx, cp, db, &signer)) != MCA_OK)
		goto out;
	if ((rc = ca_cert_issued_by(signer, root)) != MCA_OK) {
		rc = mca_err_set(rc, "the checkpoint's signer is not this CA's: %s", mca_err_detail());
		goto out;
	}
	db_audit_checkpoint_tbs(cp, tbs);
	if ((rc = ca_cert_verify_data(signer, tbs, sizeof(tbs), cp->signature,
	    cp->signature_len)) != MCA_OK)
		rc = mca_err_set(rc, "the checkpoint's signature does not verify: it was not made "
		    "by this CA, or seq, head or time were changed");
out:
	ca_cert_free(signer);
	ca_cert_free(root);
	return rc;
}

/* ---- walking entries from the API ---------------------------------------- */

/* A JSON entry of GET /v1/audit as the db/ entry the hash covers.  The
 * strings are borrowed from o. */
static enum mca_err
entry_from_json(const json_t *o, struct db_audit_entry *e)
{
	json_t *seq = json_object_get(o, "seq"), *subject = json_object_get(o, "subject");
	json_t *detail = json_object_get(o, "detail_text");
	const char *at = cli_json_str(o, "at"), *outcome = cli_json_str(o, "outcome");
	enum mca_err rc;

	memset(e, 0, sizeof(*e));
	if (!json_is_integer(seq))
		return mca_err_set(MCA_ERR_PARSE, "audit entry without seq");
	e->seq = json_integer_value(seq);
	e->actor = (char *)(uintptr_t)cli_json_str(o, "actor");
	e->action = (char *)(uintptr_t)cli_json_str(o, "action");
	e->subject = json_is_string(subject) ? (char *)(uintptr_t)json_string_value(subject) : NULL;
	e->detail = json_is_string(detail) ? (char *)(uintptr_t)json_string_value(detail) : NULL;
	e->ok = outcome != NULL && strcmp(outcome, "success") == 0;
	if (e->actor == NULL || e->action == NULL || at == NULL || outcome == NULL)
		return mca_err_set(MCA_ERR_PARSE, "audit entry %lld is incomplete", (long long)e->seq);
	if ((rc = mca_time_parse(at, &e->at)) != MCA_OK ||
	    (rc = hash_from_hex(cli_json_str(o, "prev_hash"), e->prev_hash)) != MCA_OK ||
	    (rc = hash_from_hex(cli_json_str(o, "hash"), e->hash)) != MCA_OK)
		return mca_err_set(rc, "audit entry %lld: %s", (long long)e->seq, mca_err_detail());
	return MCA_OK;
}

/* Feeds every entry the API serves, page by page, to the walk. */
static enum mca_err
walk_api(const struct cli_conn *conn, struct db_audit_walk *w)
{
	char path[AUDIT_PATH_MAX];
	struct db_audit_entry e;
	json_t *resp = NULL, *arr, *item;
	int64_t after = 0;
	enum mca_err rc = MCA_OK;
	size_t i;
	long status;
	bool more = true;

	while (more && rc == MCA_OK && w->why == DB_AUDIT_INTACT) {
		(void)snprintf(path, sizeof(path), "/v1/audit?after=%lld&limit=%d", (long long)after,
		    AUDIT_PAGE);
		if ((rc = cli_http_call(conn, "GET", path, NULL, &status, &resp)) != MCA_OK)
			return rc;
		arr = json_object_get(resp, "entries");
		more = json_is_true(json_object_get(resp, "more"));
		if (!json_is_array(arr))
			rc = mca_err_set(MCA_ERR_PARSE, "the answer has no entries");
		json_array_foreach(arr, i, item) {
			if (rc != MCA_OK || w->why != DB_AUDIT_INTACT)
				break;
			if ((rc = entry_from_json(item, &e)) == MCA_OK &&
			    (rc = db_audit_walk_step(w, &e)) == MCA_ERR_PARSE)
				rc = MCA_OK;	/* broken: w says where */
			after = e.seq;
		}
		if (json_array_size(arr) == 0)
			more = false;
		json_decref(resp);
		resp = NULL;
	}
	return rc;
}

/* ---- reporting ----------------------------------------------------------- */

static const char *
break_why(enum db_audit_break b)
{
	switch (b) {
	case DB_AUDIT_HASH_MISMATCH:	return "its content does not match its hash: the entry was edited or moved";
	case DB_AUDIT_BROKEN_LINK:	return "its prev_hash is not the previous entry's hash: entries were reordered, replaced or removed";
	case DB_AUDIT_SEQ_GAP:		return "entries are missing before it: deleted";
	case DB_AUDIT_INTACT:
	case DB_AUDIT_BREAK_MAX:
		break;
	}
	return "";
}

static int
report_break(const struct db_audit_walk *w)
{
	if (w->why == DB_AUDIT_SEQ_GAP)
		printf("audit chain BROKEN at seq %lld: %s (expected seq %lld; %s)\n",
		    (long long)w->broken_seq, db_audit_break_name(w->why),
		    (long long)w->expected_seq, break_why(w->why));
	else
		printf("audit chain BROKEN at seq %lld: %s (%s)\n", (long long)w->broken_seq,
		    db_audit_break_name(w->why), break_why(w->why));
	return CLI_EXIT_FAIL;
}

/* The chain (walked) against a verified checkpoint. */
static int
report_checkpoint(const struct db_audit_walk *w, const struct db_audit_checkpoint *cp,
    const char *origin)
{
	char at[MCA_TIME_LEN], hex[2 * DB_AUDIT_HASH_LEN + 1];

	mca_time_format(cp->at, at);
	mca_hex_encode(cp->head_hash, DB_AUDIT_HASH_LEN, hex);
	if (!w->mark_found) {
		printf("audit chain BROKEN: the checkpoint of %s (from %s) covers seq %lld but the "
		    "chain ends at seq %lld: entries %lld..%lld were removed\n", at, origin,
		    (long long)cp->seq, (long long)w->seq, (long long)w->seq + 1, (long long)cp->seq);
		return CLI_EXIT_FAIL;
	}
	if (memcmp(w->mark_hash, cp->head_hash, DB_AUDIT_HASH_LEN) != 0) {
		printf("audit chain BROKEN at seq %lld: its hash differs from the checkpoint of %s "
		    "(from %s): the chain up to it was rewritten\n", (long long)cp->seq, at, origin);
		return CLI_EXIT_FAIL;
	}
	printf("checkpoint verified: seq %lld, head %s, signed %s (from %s)\n", (long long)cp->seq,
	    hex, at, origin);
	return CLI_EXIT_OK;
}

static void
report_intact(const struct db_audit_walk *w)
{
	char hex[2 * DB_AUDIT_HASH_LEN + 1];

	mca_hex_encode(w->hash, DB_AUDIT_HASH_LEN, hex);
	printf("audit chain intact: %llu entries, head seq %lld, hash %s\n",
	    (unsigned long long)w->count, (long long)w->seq, hex);
}

/* ---- audit verify -------------------------------------------------------- */

struct verify_opts {
	const char	*db;
	const char	*checkpoint;
};

static void
verify_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s audit verify [--db FILE] [--checkpoint FILE]\n\n"
	    "Walks the audit log's hash chain and checks it against a signed checkpoint.\n\n"
	    "Options:\n"
	    "  --db FILE          read the SQLite database itself (read-only), not the API\n"
	    "  --checkpoint FILE  check against this checkpoint: a meshcad log (its last\n"
	    "                     \"audit checkpoint\" line) or `audit checkpoint --json`\n"
	    "                     output; default: the latest the database or the API holds\n\n"
	    "The checkpoint's signer must chain to the root (--root-cert, config root_cert).\n"
	    "Exit status: 0 intact, 1 broken (the first broken seq is printed) or failure,\n"
	    "2 usage error.\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static void checkpoint_usage(FILE *fp);

/* --db and --checkpoint (verify), --db alone (checkpoint). */
static int
db_opts_parse(struct cli_ctx *ctx, struct verify_opts *o, int argc, char **argv,
    const char *cmd, void (*usage)(FILE *))
{
	static const struct option lo[] = {
		{ "db",		required_argument, NULL, O_DB },
		{ "checkpoint",	required_argument, NULL, O_CHECKPOINT },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_DB:		o->db = optarg; break;
		case O_CHECKPOINT:
			if (usage != verify_usage)
				return cli_usage_error(cmd, "--checkpoint belongs to audit verify");
			o->checkpoint = optarg;
			break;
		default:
			if ((ret = cli_opt_common(ctx, c, optarg, usage)) != CLI_CONTINUE)
				return ret;
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%.64s'", argv[optind]);
	return CLI_CONTINUE;
}

/* The checkpoint to check against: --checkpoint, else the latest stored.
 * MCA_ERR_NOT_FOUND when there is none. */
static enum mca_err
verify_checkpoint_get(const struct verify_opts *o, struct db *db, const struct cli_conn *conn,
    struct db_audit_checkpoint *cp, const char **origin)
{
	json_t *resp = NULL;
	enum mca_err rc;
	long status = 0;

	if (o->checkpoint != NULL) {
		*origin = o->checkpoint;
		return checkpoint_from_file(o->checkpoint, cp);
	}
	if (db != NULL) {
		*origin = "the database";
		return db_audit_checkpoint_latest(db, cp);
	}
	*origin = "the API";
	rc = cli_http_call(conn, "GET", "/v1/audit/checkpoints/latest", NULL, &status, &resp);
	if (rc == MCA_ERR_SERVER && status == 404)
		rc = MCA_ERR_NOT_FOUND;
	else if (rc == MCA_OK)
		rc = checkpoint_from_json(resp, cp);
	json_decref(resp);
	return rc;
}

static int
verify_run(struct cli_ctx *ctx, const struct verify_opts *o, struct db *db,
    const struct cli_conn *conn)
{
	struct db_audit_checkpoint cp = { 0 };
	struct db_audit_walk w;
	const char *origin = NULL;
	enum mca_err rc;
	int ret;

	rc = verify_checkpoint_get(o, db, conn, &cp, &origin);
	if (rc != MCA_OK && !(rc == MCA_ERR_NOT_FOUND && o->checkpoint == NULL)) {
		ret = cli_fail("audit verify", rc);
		goto out;
	}
	if (rc == MCA_OK && (rc = checkpoint_verify(ctx, &cp, db)) != MCA_OK) {
		ret = cli_fail("audit verify: checkpoint", rc);
		goto out;
	}
	db_audit_walk_init(&w);
	w.mark_seq = cp.seq;
	if ((rc = db != NULL ? db_audit_verify(db, &w) : walk_api(conn, &w)) != MCA_OK) {
		ret = cli_fail("audit verify", rc);
		goto out;
	}
	if (w.why != DB_AUDIT_INTACT) {
		ret = report_break(&w);
		goto out;
	}
	report_intact(&w);
	if (cp.seq == 0) {
		printf("no checkpoint: the chain is consistent, but removal of its newest "
		    "entries cannot be detected\n");
		ret = CLI_EXIT_OK;
	} else
		ret = report_checkpoint(&w, &cp, origin);
out:
	db_audit_checkpoint_clear(&cp);
	return ret;
}

int
cli_cmd_audit_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	struct verify_opts o = { NULL, NULL };
	struct cli_conn conn;
	struct db *db = NULL;
	enum mca_err rc;
	int ret;

	if ((ret = db_opts_parse(ctx, &o, argc, argv, "audit verify", verify_usage)) != CLI_CONTINUE)
		return ret;
	if (o.db != NULL) {
		/* Local: the configuration is optional (root and intermediate). */
		if ((rc = cli_ctx_resolve(ctx)) != MCA_OK)
			return cli_fail("configuration", rc);
		if ((rc = db_open_readonly(o.db, &db)) != MCA_OK)
			return cli_fail(o.db, rc);
	} else if ((ret = cli_admin_conn(ctx, &conn)) != CLI_CONTINUE)
		return ret;
	ret = verify_run(ctx, &o, db, o.db != NULL ? NULL : &conn);
	db_close(db);
	return ret;
}

/* ---- audit checkpoint ---------------------------------------------------- */

static void
checkpoint_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s audit checkpoint [--db FILE] [--json]\n\n"
	    "Prints the latest signed checkpoint (GET /v1/audit/checkpoints/latest, or from\n"
	    "the database with --db): as meshcad logs it, or with --json as JSON with its\n"
	    "signer certificate, the form `audit verify --checkpoint FILE` reads.\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static json_t *
checkpoint_json(const struct db_audit_checkpoint *cp)
{
	gnutls_datum_t der = { cp->signer, (unsigned)cp->signer_len }, pem = { NULL, 0 };
	gnutls_datum_t sig = { cp->signature, (unsigned)cp->signature_len }, b64 = { NULL, 0 };
	char at[MCA_TIME_LEN], hex[2 * DB_AUDIT_HASH_LEN + 1];
	json_t *o = NULL;

	mca_time_format(cp->at, at);
	mca_hex_encode(cp->head_hash, DB_AUDIT_HASH_LEN, hex);
	if (gnutls_pem_base64_encode2("CERTIFICATE", &der, &pem) >= 0 &&
	    gnutls_base64_encode2(&sig, &b64) >= 0)
		o = json_pack("{s:I, s:s, s:s, s:s%, s:s%}", "seq", (json_int_t)cp->seq,
		    "head", hex, "at", at, "signature", (const char *)b64.data, (size_t)b64.size,
		    "signer", (const char *)pem.data, (size_t)pem.size);
	gnutls_free(pem.data);
	gnutls_free(b64.data);
	return o;
}

static int
checkpoint_print(const struct cli_ctx *ctx, const json_t *o)
{
	enum mca_err rc;

	if (ctx->json)
		rc = cli_print_json(o);
	else {
		printf("audit checkpoint seq=%lld head=%s at=%s signature=%s\n",
		    (long long)json_integer_value(json_object_get(o, "seq")),
		    cli_json_str(o, "head"), cli_json_str(o, "at"), cli_json_str(o, "signature"));
		rc = MCA_OK;
	}
	return rc == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
}

int
cli_cmd_audit_checkpoint(struct cli_ctx *ctx, int argc, char **argv)
{
	struct verify_opts o = { NULL, NULL };
	struct db_audit_checkpoint cp = { 0 };
	struct cli_conn conn;
	struct db *db = NULL;
	json_t *resp = NULL;
	enum mca_err rc;
	long status = 0;
	int ret;

	if ((ret = db_opts_parse(ctx, &o, argc, argv, "audit checkpoint",
	    checkpoint_usage)) != CLI_CONTINUE)
		return ret;
	if (o.db != NULL) {
		if ((rc = db_open_readonly(o.db, &db)) != MCA_OK ||
		    (rc = db_audit_checkpoint_latest(db, &cp)) != MCA_OK ||
		    (resp = checkpoint_json(&cp)) == NULL)
			ret = cli_fail("audit checkpoint", rc != MCA_OK ? rc : MCA_ERR_NOMEM);
	} else if ((ret = cli_admin_conn(ctx, &conn)) == CLI_CONTINUE &&
	    (rc = cli_http_call(&conn, "GET", "/v1/audit/checkpoints/latest", NULL, &status,
	    &resp)) != MCA_OK)
		ret = cli_fail("audit checkpoint", rc);
	if (resp != NULL)
		ret = checkpoint_print(ctx, resp);
	json_decref(resp);
	db_audit_checkpoint_clear(&cp);
	db_close(db);
	return ret;
}

/* ---- audit list ---------------------------------------------------------- */

struct list_opts {
	const char	*since;
	const char	*after;
	const char	*limit;
};

static void
list_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s audit list [--since T] [--after SEQ] [--limit N] [--json]\n\n"
	    "Lists audit entries, oldest first (GET /v1/audit).\n\n"
	    "Options:\n"
	    "  --since T     entries at or after T (RFC 3339, 2026-01-02T15:04:05Z)\n"
	    "  --after SEQ   entries after sequence number SEQ\n"
	    "  --limit N     at most N entries (default 1000, at most 10000)\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
list_parse(struct cli_ctx *ctx, struct list_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "since",	required_argument, NULL, O_SINCE },
		{ "after",	required_argument, NULL, O_AFTER },
		{ "limit",	required_argument, NULL, O_LIMIT },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	int64_t t;
	long n;
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_SINCE:	o->since = optarg; break;
		case O_AFTER:	o->after = optarg; break;
		case O_LIMIT:	o->limit = optarg; break;
		default:
			if ((ret = cli_opt_common(ctx, c, optarg, list_usage)) != CLI_CONTINUE)
				return ret;
		}
	}
	if (optind < argc)
		return cli_usage_error("audit list", "unexpected argument '%.64s'", argv[optind]);
	if (o->since != NULL && mca_time_parse(o->since, &t) != MCA_OK)
		return cli_usage_error("audit list", "--since: '%.64s' is not an RFC 3339 time",
		    o->since);
	if (o->after != NULL && cli_parse_long(o->after, 0, LONG_MAX, &n) != MCA_OK)
		return cli_usage_error("audit list", "--after: %s", mca_err_detail());
	if (o->limit != NULL && cli_parse_long(o->limit, 1, DB_AUDIT_LIST_MAX, &n) != MCA_OK)
		return cli_usage_error("audit list", "--limit: %s", mca_err_detail());
	return CLI_CONTINUE;
}

static enum mca_err
list_path(const struct list_opts *o, char *path, size_t n)
{
	char *since = o->since != NULL ? cli_http_escape(o->since) : NULL;
	int len;

	if (o->since != NULL && since == NULL)
		return MCA_ERR_NOMEM;
	len = snprintf(path, n, "/v1/audit?after=%s&limit=%s%s%s", o->after ? o->after : "0",
	    o->limit ? o->limit : "1000", since ? "&since=" : "", since ? since : "");
	free(since);
	return len < 0 || (size_t)len >= n ? mca_err_set(MCA_ERR_TOOBIG, "query too long") : MCA_OK;
}

int
cli_cmd_audit_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct list_opts o = { NULL, NULL, NULL };
	char path[AUDIT_PATH_MAX];
	json_t *resp = NULL;
	enum mca_err rc;
	int ret;

	if ((ret = list_parse(ctx, &o, argc, argv)) != CLI_CONTINUE)
		return ret;
	if ((rc = list_path(&o, path, sizeof(path))) != MCA_OK)
		return cli_fail("audit list", rc);
	if ((ret = cli_admin_call(ctx, "audit list", "GET", path, NULL, &resp)) != CLI_CONTINUE)
		return ret;
	ret = cli_print_list(ctx, resp, "audit list", "entries", 6, (const char *const[]){
	    "SEQ", "AT", "ACTOR", "ACTION", "SUBJECT", "OUTCOME" }, (const char *const[]){
	    "seq", "at", "actor", "action", "subject", "outcome" });
	json_decref(resp);
	return ret;
}
