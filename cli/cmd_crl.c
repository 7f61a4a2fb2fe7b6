/*
 * `meshca crl show [--json] [--out FILE]`: fetches the CA's current CRL
 * (GET /v1/crl), verifies it as a relying party would (its signature by
 * the intermediate, the intermediate chaining to our root, its
 * thisUpdate/nextUpdate window), and prints it.
 *
 * GnuTLS reads CRL entries but not their extensions, so the reasonCode
 * of each entry (RFC 5280 5.3.1) is read here from the DER that GnuTLS
 * has already parsed and verified, with a small bounded TLV walker.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/fileio.h"
#include "ca/common/timefmt.h"

#define CRL_FETCH_MAX	(64u * 1024 * 1024)
#define CERT_FETCH_MAX	(64u * 1024)
#define CRL_PATH_MAX	2300

enum { O_OUT = 1 };

struct crl_entry {
	char	serial[CA_SERIAL_HEX_MAX];
	int64_t	revoked_at;
	int	reason;		/* -1: none given */
};

struct crl_view {
	gnutls_x509_crl_t	 crl;
	uint64_t		 number;
	bool			 has_number;
	struct crl_entry	*entries;
	size_t			 n;
	char			 issuer[512];
};

/* ---- a minimal DER reader ------------------------------------------------ */

struct der {
	const unsigned char	*p;
	size_t			 len;
};

/* Reads one TLV of d (tag, content) and advances d past it. */
static bool
der_next(struct der *d, unsigned char *tag, struct der *content)
{
	size_t len = 0, nlen;

	if (d->len < 2)
		return false;
	*tag = d->p[0];
	if ((*tag & 0x1f) == 0x1f)		/* multi-byte tags: not in a CRL */
		return false;
	if (d->p[1] < 0x80) {
		len = d->p[1];
		nlen = 0;
	} else {
		nlen = d->p[1] & 0x7f;
		if (nlen == 0 || nlen > 4 || d->len < 2 + nlen)
			return false;
		for (size_t i = 0; i < nlen; i++)
			len = len << 8 | d->p[2 + i];
	}
	if (len > d->len - 2 - nlen)
		return false;
	content->p = d->p + 2 + nlen;
	content->len = len;
	d->p += 2 + nlen + len;
	d->len -= 2 + nlen + len;
	return true;
}

/* reasonCode in an entry's crlEntryExtensions, or -1. */
static int
entry_reason(struct der exts)
{
	static const unsigned char oid_reason[] = { 0x06, 0x03, 0x55, 0x1d, 0x15 };	/* 2.5.29.21 */
	struct der ext, val, inner;
	unsigned char tag;

	while (der_next(&exts, &tag, &ext)) {
		if (tag != 0x30 || ext.len < sizeof(oid_reason) ||
		    memcmp(ext.p, oid_reason, sizeof(oid_reason)) != 0)
			continue;
		ext.p += sizeof(oid_reason);
		ext.len -= sizeof(oid_reason);
		while (der_next(&ext, &tag, &val)) {
			if (tag != 0x04)	/* skip the critical BOOLEAN */
				continue;
			if (der_next(&val, &tag, &inner) && tag == 0x0a && inner.len == 1)
				return inner.p[0];
			return -1;
		}
	}
	return -1;
}

/* Reasons of the entries, in order, from the CRL's DER. */
static void
crl_reasons(const unsigned char *p, size_t len, struct crl_entry *e, size_t n)
{
	struct der d = { p, len }, cl, tbs, item, entry, field;
	unsigned char tag;
	size_t i = 0;
	int seqs = 0;

	if (!der_next(&d, &tag, &cl) || tag != 0x30 || !der_next(&cl, &tag, &tbs) || tag != 0x30)
		return;
	/* version?, signature, issuer, thisUpdate, nextUpdate?: the list is
	 * the first SEQUENCE after the issuer's. */
	while (seqs < 3 && der_next(&tbs, &tag, &item)) {
		if (tag == 0xa0)
			return;		/* extensions: no entries */
		if (tag == 0x30)
			seqs++;
	}
	if (seqs != 3)
		return;
	while (i < n && der_next(&item, &tag, &entry)) {
		struct der rest = entry;

		if (tag != 0x30)
			return;
		(void)der_next(&rest, &tag, &field);		/* userCertificate */
		(void)der_next(&rest, &tag, &field);		/* revocationDate */
		e[i++].reason = der_next(&rest, &tag, &field) && tag == 0x30 ? entry_reason(field) : -1;
	}
}

/* ---- fetching and verifying ---------------------------------------------- */

static enum mca_err
fetch(const struct cli_ctx *ctx, const char *path, size_t max, struct mca_buf *out)
{
	char url[CRL_PATH_MAX];
	size_t blen = strlen(ctx->url);
	struct cli_fetch f = { url, ctx->root_cert, NULL, NULL, 0 };
	long status;

	while (blen > 0 && ctx->url[blen - 1] == '/')
		blen--;
	if (strncmp(ctx->url, "https://", 8) != 0)
		return mca_err_set(MCA_ERR_INVALID, "'%.100s' is not an https:// URL", ctx->url);
	if (snprintf(url, sizeof(url), "%.*s%s", (int)blen, ctx->url, path) >= (int)sizeof(url))
		return mca_err_set(MCA_ERR_TOOBIG, "URL too long");
	mca_buf_init(out, max, false);
	return cli_fetch(&f, &status, out);
}

/* The intermediate from the server, accepted only when it chains to our
 * root (the root file is the trust anchor; the server is not trusted). */
static enum mca_err
issuer_load(const struct cli_ctx *ctx, gnutls_x509_crt_t *issuer)
{
	struct mca_buf der = { 0 }, root;
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_datum_t d, r;
	unsigned status = 0;
	enum mca_err rc;

	mca_buf_init(&root, CERT_FETCH_MAX, false);
	if ((rc = fetch(ctx, "/v1/intermediate.crt", CERT_FETCH_MAX, &der)) != MCA_OK ||
	    (rc = mca_file_read(ctx->root_cert, CERT_FETCH_MAX, &root)) != MCA_OK)
		goto out;
	d = (gnutls_datum_t){ der.data, (unsigned)der.len };
	r = (gnutls_datum_t){ root.data, (unsigned)root.len };
	rc = mca_err_set(MCA_ERR_CRYPTO, "the intermediate does not chain to %s", ctx->root_cert);
	if (gnutls_x509_crt_init(issuer) < 0 || gnutls_x509_crt_import(*issuer, &d, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_trust_list_init(&tl, 0) < 0 ||
	    gnutls_x509_trust_list_add_trust_mem(tl, &r, NULL, GNUTLS_X509_FMT_PEM, 0, 0) <= 0 ||
	    gnutls_x509_trust_list_verify_crt(tl, issuer, 1, 0, &status, NULL) < 0 || status != 0)
		goto out;
	rc = MCA_OK;
out:
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	mca_buf_free(&der);
	mca_buf_free(&root);
	return rc;
}

/* RFC 5280 6.3.3: signature by the issuer, now within this/nextUpdate. */
static enum mca_err
crl_verify(struct crl_view *v, gnutls_x509_crt_t issuer)
{
	unsigned status = 0;
	time_t now = time(NULL), next = gnutls_x509_crl_get_next_update(v->crl);

	if (gnutls_x509_crl_verify(v->crl, &issuer, 1, 0, &status) < 0 || status != 0)
		return mca_err_set(MCA_ERR_CRYPTO, "RFC 5280 6.3.3: the CRL's signature does not verify "
		    "against the intermediate");
	if (gnutls_x509_crl_get_this_update(v->crl) > now + 300)
		return mca_err_set(MCA_ERR_CRYPTO, "the CRL's thisUpdate is in the future");
	if (next != (time_t)-1 && next < now)
		return mca_err_set(MCA_ERR_CRYPTO, "the CRL is stale: nextUpdate has passed");
	return MCA_OK;
}

static enum mca_err
crl_entries(struct crl_view *v, const struct mca_buf *der)
{
	gnutls_x509_crl_iter_t it = NULL;
	unsigned char serial[64];
	size_t slen;
	size_t skip;
	time_t t;
	int count = gnutls_x509_crl_get_crt_count(v->crl), ret;

	if (count < 0 || (v->entries = calloc((size_t)count + 1, sizeof(*v->entries))) == NULL)
		return MCA_ERR_NOMEM;
	for (v->n = 0; v->n < (size_t)count; v->n++) {
		slen = sizeof(serial);
		if ((ret = gnutls_x509_crl_iter_crt_serial(v->crl, &it, serial, &slen, &t)) < 0)
			break;
		/* As ca_cert_serial_hex: without DER's 0x00 sign pad. */
		skip = slen > 1 && serial[0] == 0 && (serial[1] & 0x80) != 0 ? 1 : 0;
		if (slen - skip > (CA_SERIAL_HEX_MAX - 1) / 2)
			break;
		mca_hex_encode(serial + skip, slen - skip, v->entries[v->n].serial);
		v->entries[v->n].revoked_at = (int64_t)t;
	}
	gnutls_x509_crl_iter_deinit(it);
	if (v->n != (size_t)count)
		return mca_err_set(MCA_ERR_PARSE, "cannot read CRL entry %zu", v->n);
	crl_reasons(der->data, der->len, v->entries, v->n);
	return MCA_OK;
}

static enum mca_err
crl_load(const struct mca_buf *der, struct crl_view *v)
{
	gnutls_datum_t d = { der->data, (unsigned)der->len }, dn = { NULL, 0 };
	unsigned char num[20];
	size_t nlen = sizeof(num);
	unsigned crit = 0;

	if (gnutls_x509_crl_init(&v->crl) < 0 || gnutls_x509_crl_import(v->crl, &d, GNUTLS_X509_FMT_DER) < 0)
		return mca_err_set(MCA_ERR_PARSE, "the answer is not a DER CRL");
	if (gnutls_x509_crl_get_number(v->crl, num, &nlen, &crit) >= 0 && nlen <= 8) {
		v->has_number = true;
		for (size_t i = 0; i < nlen; i++)
			v->number = v->number << 8 | num[i];
	}
	if (gnutls_x509_crl_get_issuer_dn3(v->crl, &dn, 0) >= 0) {
		snprintf(v->issuer, sizeof(v->issuer), "%s", (const char *)dn.data);
		gnutls_free(dn.data);
	}
	return crl_entries(v, der);
}

/* ---- output -------------------------------------------------------------- */

static json_t *
crl_json(const struct crl_view *v)
{
	char tu[MCA_TIME_LEN], nu[MCA_TIME_LEN], ra[MCA_TIME_LEN];
	json_t *arr = json_array(), *o;

	mca_time_format((int64_t)gnutls_x509_crl_get_this_update(v->crl), tu);
	mca_time_format((int64_t)gnutls_x509_crl_get_next_update(v->crl), nu);
	for (size_t i = 0; arr != NULL && i < v->n; i++) {
		const char *rname = ca_crl_reason_name(v->entries[i].reason);

		mca_time_format(v->entries[i].revoked_at, ra);
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s?}", "serial", v->entries[i].serial,
		    "revoked_at", ra, "reason", v->entries[i].reason >= 0 ? rname : NULL)) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	o = json_pack("{s:o, s:s, s:s, s:s, s:b, s:I, s:o}",
	    "number", v->has_number ? json_integer((json_int_t)v->number) : json_null(),
	    "issuer", v->issuer, "this_update", tu, "next_update", nu, "verified", 1,
	    "count", (json_int_t)v->n, "entries", arr);
	return o;
}

static int
crl_print(const struct cli_ctx *ctx, const struct crl_view *v)
{
	json_t *o = crl_json(v);
	const char *const keys[] = { "number", "issuer", "this_update", "next_update", "verified",
		"count", NULL };
	struct cli_table *t = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if (o == NULL)
		return cli_fail("crl show", MCA_ERR_NOMEM);
	if (ctx->json) {
		rc = cli_print_json(o);
		goto out;
	}
	if ((rc = cli_print_fields(o, keys)) != MCA_OK || v->n == 0)
		goto out;
	rc = MCA_ERR_NOMEM;
	printf("\n");
	if ((t = cli_table_new(3, (const char *const[]){ "SERIAL", "REVOKED AT", "REASON" })) == NULL)
		goto out;
	for (size_t i = 0; i < json_array_size(json_object_get(o, "entries")); i++) {
		json_t *e = json_array_get(json_object_get(o, "entries"), i);

		if ((rc = cli_table_add(t, (const char *const[]){ cli_json_str(e, "serial"),
		    cli_json_str(e, "revoked_at"), cli_json_str(e, "reason") })) != MCA_OK)
			goto out;
	}
	cli_table_print(t, stdout);
	rc = MCA_OK;
out:
	cli_table_free(t);
	json_decref(o);
	return rc == MCA_OK ? CLI_EXIT_OK : cli_fail("output", rc);
}

/* ---- the command ----------------------------------------------------------- */

static void
show_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s crl show [--json] [--out FILE]\n\n"
	    "Fetches the CA's current CRL (GET /v1/crl), verifies its signature by the\n"
	    "intermediate (GET /v1/intermediate.crt, which must chain to the root\n"
	    "certificate) and its validity window, and prints its number, thisUpdate,\n"
	    "nextUpdate and entries with their reasons.  No admin credential needed.\n\n"
	    "Options:\n"
	    "  --out FILE   also write the CRL (DER) to FILE\n\n"
	    "Exit status: 0 when the CRL verifies, 1 otherwise.\n\n%s",
	    CLI_PROG, cli_global_usage);
}

static int
show_parse(struct cli_ctx *ctx, const char **out, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "out", required_argument, NULL, O_OUT },
		CLI_GLOBAL_LONGOPTS,
		{ NULL, 0, NULL, 0 }
	};
	enum mca_err rc;
	int c, ret;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == O_OUT)
			*out = optarg;
		else if ((ret = cli_opt_common(ctx, c, optarg, show_usage)) != CLI_CONTINUE)
			return ret;
	}
	if (optind != argc)
		return cli_usage_error("crl show", "unexpected argument '%.64s'", argv[optind]);
	if ((rc = cli_ctx_resolve(ctx)) != MCA_OK)
		return cli_fail("configuration", rc);
	return cli_ctx_require(ctx, false);
}

int
cli_cmd_crl_show(struct cli_ctx *ctx, int argc, char **argv)
{
	struct crl_view v = { 0 };
	struct mca_buf der = { 0 };
	gnutls_x509_crt_t issuer = NULL;
	const char *out = NULL;
	enum mca_err rc;
	int ret;

	if ((ret = show_parse(ctx, &out, argc, argv)) != CLI_CONTINUE)
		return ret;
	if ((rc = fetch(ctx, "/v1/crl", CRL_FETCH_MAX, &der)) != MCA_OK ||
	    (rc = issuer_load(ctx, &issuer)) != MCA_OK ||
	    (rc = crl_load(&der, &v)) != MCA_OK ||
	    (rc = crl_verify(&v, issuer)) != MCA_OK ||
	    (out != NULL && (rc = mca_file_write_atomic(out, der.data, der.len, 0644)) != MCA_OK)) {
		ret = cli_fail("crl show", rc);
		goto out;
	}
	ret = crl_print(ctx, &v);
out:
	free(v.entries);
	if (v.crl != NULL)
		gnutls_x509_crl_deinit(v.crl);
	if (issuer != NULL)
		gnutls_x509_crt_deinit(issuer);
	mca_buf_free(&der);
	return ret;
}
