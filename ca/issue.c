/*
 * Issuance of workload certificates: the SPIFFE X509-SVID profile on top
 * of RFC 5280, and the pieces every certificate profile of meshca shares.
 */
#include "ca/ca_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/x509-ext.h>

#define CN_MAX_LEN	64		/* RFC 5280 A.1: ub-common-name */
#define TIME_MAX	253402300799	/* 9999-12-31T23:59:59Z, RFC 5280 4.1.2.5 */
#define URL_MAX_LEN	2048		/* CRL, OCSP and caIssuers URLs */
#define OID_BC		"2.5.29.19"	/* RFC 5280 4.2.1.9 */
#define OID_KU		"2.5.29.15"	/* RFC 5280 4.2.1.3 */
#define OID_EKU		"2.5.29.37"	/* RFC 5280 4.2.1.12 */
#define OID_AKI		"2.5.29.35"	/* RFC 5280 4.2.1.1 */
#define OID_CDP		"2.5.29.31"	/* RFC 5280 4.2.1.13 */

enum mca_err
ca_serial_new(unsigned char raw[16], char out[CA_SERIAL_HEX_MAX])
{
	if (gnutls_rnd(GNUTLS_RND_NONCE, raw, 16) < 0)
		return mca_err_set(MCA_ERR_CRYPTO, "random generator failed");
	/* RFC 5280 4.1.2.2: positive; a non-zero first byte keeps the DER
	 * INTEGER 16 bytes long, so the hex is always 32 characters. */
	raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
	mca_hex_encode(raw, 16, out);
	return MCA_OK;
}

enum mca_err
ca_validity(int64_t now, int64_t ttl, int64_t cap, int64_t *nb, int64_t *na)
{
	if (ttl <= 0)
		return mca_err_set(MCA_ERR_TTL, "lifetime must be positive, not %lld s",
		    (long long)ttl);
	if (now < CA_BACKDATE || now >= TIME_MAX)
		return mca_err_set(MCA_ERR_INVALID, "current time %lld out of range",
		    (long long)now);
	*nb = now - CA_BACKDATE;
	*na = ttl > TIME_MAX - now ? TIME_MAX : now + ttl;
	if (*na > cap)
		*na = cap;	/* never outlive the issuer (RFC 5280 6.1.3 (a)(2)) */
	if (*na <= now)
		return mca_err_set(MCA_ERR_TTL, "RFC 5280 4.1.2.5: the issuer's notAfter "
		    "(%lld) has passed", (long long)cap);
	return MCA_OK;
}

enum mca_err
ca_crt_base_apply(gnutls_x509_crt_t crt, struct ca_crt_base *b)
{
	unsigned char id[CA_KEY_ID_LEN];
	size_t idlen = sizeof(id);
	enum mca_err rc;

	if ((rc = ca_serial_new(b->serial, b->serial_hex)) != MCA_OK)
		return rc;
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, b->serial, sizeof(b->serial)) < 0 ||
	    gnutls_x509_crt_set_pubkey(crt, b->pub) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, (time_t)b->not_before) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, (time_t)b->not_after) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the certificate's base fields");
	/* RFC 5280 4.2.1.2: SHA-1 of the public key. */
	if (gnutls_pubkey_get_key_id(b->pub, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(crt, id, idlen) < 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.2: cannot set the SKI");
	return MCA_OK;
}

enum mca_err
ca_crt_set_aki(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer)
{
	unsigned char id[64];
	size_t idlen = sizeof(id);

	if (gnutls_x509_crt_get_subject_key_id(issuer, id, &idlen, NULL) < 0) {
		idlen = sizeof(id);	/* an issuer without SKI: same method as ours */
		if (gnutls_x509_crt_get_key_id(issuer, GNUTLS_KEYID_USE_SHA1, id, &idlen) < 0)
			return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.1: no issuer key id");
	}
	if (gnutls_x509_crt_set_authority_key_id(crt, id, idlen) < 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.1: cannot set the AKI");
	return MCA_OK;
}

enum mca_err
ca_crt_sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer, const struct ca_key *key,
    gnutls_datum_t *der)
{
	int r;

	if (key->remote != NULL)	/* the key is in the signer process */
		return ca_remote_crt_sign(crt, issuer, key, der);
	if ((r = gnutls_x509_crt_privkey_sign(crt, issuer, key->priv, ca_key_digest(key), 0)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "signing the certificate: %s",
		    gnutls_strerror(r));
	if ((r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "encoding the certificate: %s",
		    gnutls_strerror(r));
	return MCA_OK;
}

/* RFC 5280 A.1: 1..64 characters; no control characters in a name we print. */
static enum mca_err
cn_check(const char *cn)
{
	size_t n;

	if (cn == NULL || *cn == '\0')
		return mca_err_set(MCA_ERR_INVALID, "empty subject common name");
	if ((n = strnlen(cn, CN_MAX_LEN + 1)) > CN_MAX_LEN)
		return mca_err_set(MCA_ERR_NAME, "RFC 5280 A.1: common name longer than %d "
		    "bytes", CN_MAX_LEN);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f)
			return mca_err_set(MCA_ERR_NAME, "control character in common name");
	return MCA_OK;
}

static enum mca_err
leaf_req_check(const struct ca_leaf_req *req)
{
	const struct ca_sans *s = req->sans;
	enum mca_err rc;

	if ((rc = ca_spiffe_id_check(req->spiffe_id, NULL)) != MCA_OK ||
	    (rc = cn_check(req->common_name)) != MCA_OK)
		return rc;
	if (s == NULL)
		return MCA_OK;
	if (s->ndns + s->nips > CA_MAX_SANS)
		return mca_err_set(MCA_ERR_TOOBIG, "more than %d subject alternative names",
		    CA_MAX_SANS);
	for (size_t i = 0; i < s->ndns; i++)
		if ((rc = ca_dns_check(s->dns[i], true)) != MCA_OK)
			return rc;
	for (size_t i = 0; i < s->nips; i++)
		if ((s->ips[i].len != 4 && s->ips[i].len != 16) ||
		    s->ips[i].prefix != s->ips[i].len * 8)
			return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.2.1.6: an iPAddress SAN "
			    "is one address, not a range");
	return MCA_OK;
}

/* Adds one name to the SAN list being built. */
static int
san_add(gnutls_subject_alt_names_t names, unsigned int type, const void *data, size_t len)
{
	gnutls_datum_t d = { (unsigned char *)data, (unsigned int)len };

	return gnutls_subject_alt_names_set(names, type, &d, NULL);
}

/*
 * RFC 5280 4.2.1.6; X509-SVID spec 2: exactly one URI SAN.  The extension
 * is encoded once from the whole list: gnutls_x509_crt_set_subject_alt_name
 * with GNUTLS_FSAN_APPEND decodes and re-encodes the extension for every
 * name it adds (tests/bench/README.md, issue_bench).
 */
static enum mca_err
leaf_set_sans(gnutls_x509_crt_t crt, const struct ca_leaf_req *req)
{
	const struct ca_sans *s = req->sans;
	gnutls_subject_alt_names_t names = NULL;
	gnutls_datum_t ext = { NULL, 0 };
	enum mca_err rc = MCA_ERR_SIGN;

	if (gnutls_subject_alt_names_init(&names) < 0)
		return MCA_ERR_NOMEM;
	if (san_add(names, GNUTLS_SAN_URI, req->spiffe_id, strlen(req->spiffe_id)) < 0) {
		rc = mca_err_set(MCA_ERR_SIGN, "cannot set the URI SAN");
		goto out;
	}
	for (size_t i = 0; s != NULL && i < s->ndns; i++)
		if (san_add(names, GNUTLS_SAN_DNSNAME, s->dns[i], strlen(s->dns[i])) < 0) {
			rc = mca_err_set(MCA_ERR_SIGN, "cannot set DNS SAN %s", s->dns[i]);
			goto out;
		}
	for (size_t i = 0; s != NULL && i < s->nips; i++)
		if (san_add(names, GNUTLS_SAN_IPADDRESS, s->ips[i].addr, s->ips[i].len) < 0) {
			rc = mca_err_set(MCA_ERR_SIGN, "cannot set an IP SAN");
			goto out;
		}
	/* Not critical: the subject is never empty (RFC 5280 4.2.1.6). */
	if (gnutls_x509_ext_export_subject_alt_names(names, &ext) < 0 ||
	    gnutls_x509_crt_set_extension_by_oid(crt, GNUTLS_X509EXT_OID_SAN, ext.data, ext.size, 0) < 0) {
		rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.6: cannot encode the SANs");
		goto out;
	}
	rc = MCA_OK;
out:
	gnutls_free(ext.data);
	gnutls_subject_alt_names_deinit(names);
	return rc;
}

/*
 * Subject "CN=<name>".  Under an intermediate with dNSName constraints, a
 * leaf without dNSName SANs carries "OU=<name>" instead: GnuTLS checks
 * the CN of such a certificate as a host name against the constraints
 * (RFC 6125 6.4.4 legacy), and "payments" is no name under the permitted
 * suffixes.  The X509-SVID spec sets no requirement on the subject.
 */
static enum mca_err
leaf_set_subject(gnutls_x509_crt_t crt, const struct ca_signer *s, const struct ca_leaf_req *req)
{
	bool no_cn = ca_nc_has_dns(ca_signer_nc(s)) && (req->sans == NULL || req->sans->ndns == 0);

	if (gnutls_x509_crt_set_dn_by_oid(crt, no_cn ? GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME :
	    GNUTLS_OID_X520_COMMON_NAME, 0, req->common_name,
	    (unsigned int)strlen(req->common_name)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the subject");
	return MCA_OK;
}

/* X509-SVID spec 4.1-4.4: the leaf's constraints and usages.  Applied
 * once per signer, to a scratch certificate (leaf_exts_new). */
static enum mca_err
leaf_set_usages(gnutls_x509_crt_t crt)
{
	if (gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set the leaf extensions");
	return MCA_OK;
}

/* A revocation pointer: an absolute http(s) URI of printable ASCII. */
static enum mca_err
url_check(const char *what, const char *url)
{
	size_t n = strnlen(url, URL_MAX_LEN + 1);

	if (n > URL_MAX_LEN)
		return mca_err_set(MCA_ERR_INVALID, "%s longer than %d bytes", what, URL_MAX_LEN);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.2.1.13, 4.2.2.1: %s must be an "
		    "http or https URI", what);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return mca_err_set(MCA_ERR_INVALID, "RFC 3986: %s has a space or a "
			    "non-ASCII byte", what);
	return MCA_OK;
}

/* RFC 5280 4.2.2.1 authorityInfoAccess: id-ad-ocsp, then id-ad-caIssuers,
 * each when set, encoded once (appending re-encodes, as for SANs). */
static enum mca_err
leaf_set_aia(gnutls_x509_crt_t crt, const struct ca_leaf_req *req)
{
	const char *oid[2] = { GNUTLS_OID_AD_OCSP, GNUTLS_OID_AD_CAISSUERS };
	const char *url[2] = { req->ocsp_url, req->ca_issuers_url };
	const char *what[2] = { "OCSP URL", "caIssuers URL" };
	gnutls_x509_aia_t aia = NULL;
	gnutls_datum_t d, ext = { NULL, 0 };
	enum mca_err rc = MCA_OK;

	if (url[0] == NULL && url[1] == NULL)
		return MCA_OK;
	if (gnutls_x509_aia_init(&aia) < 0)
		return MCA_ERR_NOMEM;
	for (int i = 0; i < 2 && rc == MCA_OK; i++) {
		if (url[i] == NULL)
			continue;
		if ((rc = url_check(what[i], url[i])) != MCA_OK)
			break;
		d.data = (unsigned char *)url[i];
		d.size = (unsigned int)strlen(url[i]);
		if (gnutls_x509_aia_set(aia, oid[i], GNUTLS_SAN_URI, &d) < 0)
			rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.2.1: cannot set the %s", what[i]);
	}
	if (rc == MCA_OK && (gnutls_x509_ext_export_aia(aia, &ext) < 0 ||
	    gnutls_x509_crt_set_extension_by_oid(crt, GNUTLS_OID_AIA, ext.data, ext.size, 0) < 0))
		rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.2.1: cannot encode the "
		    "authorityInfoAccess extension");
	gnutls_free(ext.data);
	gnutls_x509_aia_deinit(aia);
	return rc;
}

/* RFC 5280 4.2.1.13 cRLDistributionPoints (one fullName URI) and 4.2.2.1
 * authorityInfoAccess (id-ad-ocsp, id-ad-caIssuers), each when set. */
static enum mca_err
leaf_set_revocation(gnutls_x509_crt_t crt, const struct ca_leaf_req *req)
{
	enum mca_err rc;

	if (req->crl_url != NULL) {
		if ((rc = url_check("CRL URL", req->crl_url)) != MCA_OK)
			return rc;
		if (gnutls_x509_crt_set_crl_dist_points2(crt, GNUTLS_SAN_URI, req->crl_url,
		    (unsigned int)strlen(req->crl_url), 0) < 0)
			return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.13: cannot set the "
			    "CRL distribution point");
	}
	return leaf_set_aia(crt, req);
}

/* ---- extensions every leaf shares, encoded once --------------------------
 *
 * Encoding an extension through GnuTLS runs libtasn1 (create the
 * structure, write, DER-encode): for the constant ones that was ~40 % of
 * ca_issue_leaf (tests/bench/README.md).  Each is made once on a scratch
 * certificate by the very setters above and read back as DER, so the bytes
 * are the ones those setters write; a leaf then gets copies, in the same
 * order as before.
 */

struct leaf_ext {
	const char	*oid;
	gnutls_datum_t	 der;		/* data NULL: absent */
	unsigned int	 critical;
};

#define LEAF_USAGES	3	/* basicConstraints, keyUsage, extendedKeyUsage */

struct ca_leaf_exts {
	struct leaf_ext	 usage[LEAF_USAGES];
	struct leaf_ext	 aki;
	pthread_mutex_t	 lock;		/* over what follows */
	bool		 have_urls;
	char		*url[3];	/* CRL, OCSP, caIssuers of cdp and aia */
	struct leaf_ext	 cdp, aia;
};

static void
ext_clear(struct leaf_ext *e)
{
	gnutls_free(e->der.data);
	e->der.data = NULL;
	e->der.size = 0;
}

/* The extension oid of scratch as DER (absent: left NULL). */
static enum mca_err
ext_read(gnutls_x509_crt_t scratch, const char *oid, struct leaf_ext *e)
{
	int r;

	e->oid = oid;
	r = gnutls_x509_crt_get_extension_by_oid2(scratch, oid, 0, &e->der, &e->critical);
	if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return MCA_OK;
	if (r < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot read back extension %s: %s", oid,
		    gnutls_strerror(r));
	return MCA_OK;
}

static enum mca_err
ext_put(gnutls_x509_crt_t crt, const struct leaf_ext *e)
{
	if (e->der.data == NULL)
		return MCA_OK;
	if (gnutls_x509_crt_set_extension_by_oid(crt, e->oid, e->der.data, e->der.size,
	    e->critical) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot set extension %s", e->oid);
	return MCA_OK;
}

enum mca_err
ca_leaf_exts_new(gnutls_x509_crt_t issuer, struct ca_leaf_exts **out)
{
	static const char *const oids[LEAF_USAGES] = { OID_BC, OID_KU, OID_EKU };
	struct ca_leaf_exts *e;
	gnutls_x509_crt_t scratch = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	*out = NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return MCA_ERR_NOMEM;
	pthread_mutex_init(&e->lock, NULL);
	if (gnutls_x509_crt_init(&scratch) < 0)
		goto out;
	if ((rc = leaf_set_usages(scratch)) != MCA_OK ||
	    (rc = ca_crt_set_aki(scratch, issuer)) != MCA_OK)
		goto out;
	for (int i = 0; i < LEAF_USAGES; i++)
		if ((rc = ext_read(scratch, oids[i], &e->usage[i])) != MCA_OK)
			goto out;
	if ((rc = ext_read(scratch, OID_AKI, &e->aki)) != MCA_OK)
		goto out;
	*out = e;
	e = NULL;
out:
	gnutls_x509_crt_deinit(scratch);
	ca_leaf_exts_free(e);
	return rc;
}

void
ca_leaf_exts_free(struct ca_leaf_exts *e)
{
	if (e == NULL)
		return;
	for (int i = 0; i < LEAF_USAGES; i++)
		ext_clear(&e->usage[i]);
	ext_clear(&e->aki);
	ext_clear(&e->cdp);
	ext_clear(&e->aia);
	for (int i = 0; i < 3; i++)
		free(e->url[i]);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static bool
url_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
urls_match(const struct ca_leaf_exts *e, const struct ca_leaf_req *req)
{
	return e->have_urls && url_same(e->url[0], req->crl_url) &&
	    url_same(e->url[1], req->ocsp_url) && url_same(e->url[2], req->ca_issuers_url);
}

/* cRLDistributionPoints and AIA for req's URLs, made on a scratch
 * certificate (URLs checked there), and kept for the next leaf. */
static enum mca_err
leaf_exts_remake_urls(struct ca_leaf_exts *e, const struct ca_leaf_req *req)
{
	const char *u[3] = { req->crl_url, req->ocsp_url, req->ca_issuers_url };
	struct leaf_ext cdp = { 0 }, aia = { 0 };
	char *copy[3] = { NULL, NULL, NULL };
	gnutls_x509_crt_t scratch = NULL;
	enum mca_err rc = MCA_ERR_NOMEM;

	if (gnutls_x509_crt_init(&scratch) < 0)
		goto out;
	if ((rc = leaf_set_revocation(scratch, req)) != MCA_OK ||
	    (rc = ext_read(scratch, OID_CDP, &cdp)) != MCA_OK ||
	    (rc = ext_read(scratch, GNUTLS_OID_AIA, &aia)) != MCA_OK)
		goto out;
	rc = MCA_ERR_NOMEM;
	for (int i = 0; i < 3; i++)
		if (u[i] != NULL && (copy[i] = strdup(u[i])) == NULL)
			goto out;
	pthread_mutex_lock(&e->lock);
	ext_clear(&e->cdp);
	ext_clear(&e->aia);
	e->cdp = cdp;
	e->aia = aia;
	cdp.der.data = aia.der.data = NULL;
	for (int i = 0; i < 3; i++) {
		free(e->url[i]);
		e->url[i] = copy[i];
		copy[i] = NULL;
	}
	e->have_urls = true;
	pthread_mutex_unlock(&e->lock);
	rc = MCA_OK;
out:
	for (int i = 0; i < 3; i++)
		free(copy[i]);
	ext_clear(&cdp);
	ext_clear(&aia);
	gnutls_x509_crt_deinit(scratch);
	return rc;
}

/* The leaf's usages, its SANs, then cRLDistributionPoints, AIA and AKI:
 * the order the per-leaf setters used. */
static enum mca_err
leaf_set_extensions(gnutls_x509_crt_t crt, struct ca_leaf_exts *e, const struct ca_leaf_req *req)
{
	enum mca_err rc = MCA_OK;
	bool again;

	for (int i = 0; i < LEAF_USAGES && rc == MCA_OK; i++)
		rc = ext_put(crt, &e->usage[i]);
	if (rc != MCA_OK || (rc = leaf_set_sans(crt, req)) != MCA_OK)
		return rc;
	for (int tries = 0; tries < 2; tries++) {
		pthread_mutex_lock(&e->lock);
		again = !urls_match(e, req);
		if (!again && (rc = ext_put(crt, &e->cdp)) == MCA_OK)
			rc = ext_put(crt, &e->aia);
		pthread_mutex_unlock(&e->lock);
		if (!again)
			return rc != MCA_OK ? rc : ext_put(crt, &e->aki);
		if ((rc = leaf_exts_remake_urls(e, req)) != MCA_OK)
			return rc;
	}
	/* Another thread keeps asking for other URLs: encode for this leaf alone. */
	if ((rc = leaf_set_revocation(crt, req)) != MCA_OK)
		return rc;
	return ext_put(crt, &e->aki);
}

static enum mca_err
issued_fill(struct ca_issued *out, const gnutls_datum_t *der, const struct ca_crt_base *b)
{
	gnutls_datum_t pem = { NULL, 0 };
	enum mca_err rc;

	if (gnutls_pem_base64_encode2("CERTIFICATE", der, &pem) < 0)
		return mca_err_set(MCA_ERR_SIGN, "cannot encode PEM");
	if ((rc = mca_buf_set(&out->der, der->data, der->size)) == MCA_OK &&
	    (rc = mca_buf_set(&out->pem, pem.data, pem.size)) == MCA_OK) {
		memcpy(out->serial, b->serial_hex, sizeof(out->serial));
		out->not_before = b->not_before;
		out->not_after = b->not_after;
	}
	gnutls_free(pem.data);
	return rc;
}

/*
 * *out is overwritten as if uninitialised: clear an earlier result with
 * ca_issued_clear() before reusing it.  On failure *out is empty.
 */
enum mca_err
ca_issue_leaf(const struct ca_signer *s, const struct ca_csr *csr,
    const struct ca_leaf_req *req, struct ca_issued *out)
{
	const struct ca_cert *issuer;
	struct ca_crt_base b;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t der = { NULL, 0 };
	enum mca_err rc = MCA_ERR_NOMEM;

	if (out == NULL)
		return mca_err_set(MCA_ERR_INVALID, "no output");
	memset(out, 0, sizeof(*out));
	if (s == NULL || csr == NULL || req == NULL)
		return mca_err_set(MCA_ERR_INVALID, "signer, request and CSR are required");
	if ((rc = leaf_req_check(req)) != MCA_OK ||
	    (rc = ca_signer_names_check(s, req->spiffe_id, req->sans)) != MCA_OK)
		return rc;
	issuer = ca_signer_cert(s);
	memset(&b, 0, sizeof(b));
	b.pub = csr->pub;	/* verified once by ca_csr_parse */
	if ((rc = ca_validity(req->now, req->ttl, issuer->not_after, &b.not_before,
	    &b.not_after)) != MCA_OK)
		return rc;
	rc = MCA_ERR_NOMEM;
	if (gnutls_x509_crt_init(&crt) < 0)
		goto out;
	if ((rc = ca_crt_base_apply(crt, &b)) != MCA_OK ||
	    (rc = leaf_set_subject(crt, s, req)) != MCA_OK ||
	    (rc = leaf_set_extensions(crt, ca_signer_leaf_exts(s), req)) != MCA_OK ||
	    (rc = ca_crt_sign(crt, issuer->crt, ca_signer_key(s), &der)) != MCA_OK ||
	    (rc = issued_fill(out, &der, &b)) != MCA_OK)
		goto out;
out:
	if (rc != MCA_OK)
		ca_issued_clear(out);
	gnutls_free(der.data);
	gnutls_x509_crt_deinit(crt);
	return rc;
}

void
ca_issued_clear(struct ca_issued *i)
{
	if (i == NULL)
		return;
	mca_buf_free(&i->der);
	mca_buf_free(&i->pem);
	memset(i, 0, sizeof(*i));
}
