/*
 * X.509 name constraints (RFC 5280 4.2.1.10): writing them on the
 * intermediate at `meshca init`, reading them back when the signer
 * opens, and checking names against them before anything is signed, so
 * that meshcad refuses what a relying party's path validation would.
 *
 * Who enforces what (tests/system/test_policy.py checks each):
 *   dNSName, iPAddress  OpenSSL, GnuTLS, Go, and meshcad before signing.
 *   URI (the trust domain as host)  OpenSSL and Go; GnuTLS 3.7 ignores
 *                       URI subtrees (it neither enforces nor rejects
 *                       them); meshcad before signing.
 * GnuTLS, when a certificate has no dNSName, checks its subject CN as a
 * DNS name against dNSName subtrees (the legacy RFC 6125 6.4.4 host
 * name), so issue.c leaves the CN out of such leaves under a
 * DNS-constrained intermediate.
 */
#include "ca/ca_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NC_MAX_ENTRIES	256	/* subtrees read per list */
#define NC_TEXT_MAX	256	/* the permitted list quoted in a refusal */

struct nc_list {
	char		**dns;
	size_t		  ndns;
	char		**uri;
	size_t		  nuri;
	struct ca_ip	 *ips;
	size_t		  nips;
};

struct ca_nc {
	struct nc_list	permitted;
	struct nc_list	excluded;
};

/* ---- writing (meshca init) ----------------------------------------- */

static enum mca_err
nc_add(gnutls_x509_name_constraints_t nc, unsigned type, const void *data, size_t len,
    const char *what)
{
	gnutls_datum_t d = { (unsigned char *)data, (unsigned int)len };
	int r;

	if ((r = gnutls_x509_name_constraints_add_permitted(nc, type, &d)) < 0)
		return mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.10: cannot add the permitted "
		    "subtree %s: %s", what, gnutls_strerror(r));
	return MCA_OK;
}

/* RFC 5280 4.2.1.10: an iPAddress subtree is the address followed by
 * its mask (8 bytes for IPv4, 32 for IPv6). */
static enum mca_err
nc_add_ip(gnutls_x509_name_constraints_t nc, const struct ca_ip *ip)
{
	unsigned char buf[32];
	char text[64];

	memset(buf, 0, sizeof(buf));
	memcpy(buf, ip->addr, ip->len);
	for (unsigned i = 0; i < ip->prefix; i++)
		buf[ip->len + i / 8] |= (unsigned char)(0x80u >> (i % 8));
	ca_ip_format(ip, text);
	return nc_add(nc, GNUTLS_SAN_IPADDRESS, buf, (size_t)ip->len * 2, text);
}

static enum mca_err
nc_fill(gnutls_x509_name_constraints_t nc, const struct ca_name_constraints *in)
{
	const struct ca_sans *p = in->permitted;
	enum mca_err rc;

	if (in->uri_domain != NULL &&
	    ((rc = ca_trust_domain_check(in->uri_domain)) != MCA_OK ||
	    (rc = nc_add(nc, GNUTLS_SAN_URI, in->uri_domain, strlen(in->uri_domain),
	    in->uri_domain)) != MCA_OK))
		return rc;
	for (size_t i = 0; p != NULL && i < p->ndns; i++) {
		if ((rc = ca_dns_check(p->dns[i], false)) != MCA_OK)
			return mca_err_set(rc, "RFC 5280 4.2.1.10: a dNSName subtree is a host "
			    "name without wildcard: %s", mca_err_detail());
		if ((rc = nc_add(nc, GNUTLS_SAN_DNSNAME, p->dns[i], strlen(p->dns[i]),
		    p->dns[i])) != MCA_OK)
			return rc;
	}
	for (size_t i = 0; p != NULL && i < p->nips; i++)
		if ((rc = nc_add_ip(nc, &p->ips[i])) != MCA_OK)
			return rc;
	return MCA_OK;
}

enum mca_err
ca_nc_apply(gnutls_x509_crt_t crt, const struct ca_name_constraints *in)
{
	gnutls_x509_name_constraints_t nc = NULL;
	enum mca_err rc;

	if (in->uri_domain == NULL && (in->permitted == NULL ||
	    in->permitted->ndns + in->permitted->nips == 0))
		return mca_err_set(MCA_ERR_INVALID, "RFC 5280 4.2.1.10: name constraints "
		    "with no subtree");
	if (gnutls_x509_name_constraints_init(&nc) < 0)
		return MCA_ERR_NOMEM;
	if ((rc = nc_fill(nc, in)) == MCA_OK &&
	    gnutls_x509_crt_set_name_constraints(crt, nc, 1) < 0)	/* critical */
		rc = mca_err_set(MCA_ERR_SIGN, "RFC 5280 4.2.1.10: cannot set the "
		    "nameConstraints extension");
	gnutls_x509_name_constraints_deinit(nc);
	return rc;
}

/* ---- reading (ca_signer_open) --------------------------------------- */

static void
nc_list_clear(struct nc_list *l)
{
	for (size_t i = 0; i < l->ndns; i++)
		free(l->dns[i]);
	for (size_t i = 0; i < l->nuri; i++)
		free(l->uri[i]);
	free(l->dns);
	free(l->uri);
	free(l->ips);
	memset(l, 0, sizeof(*l));
}

void
ca_nc_free(struct ca_nc *nc)
{
	if (nc == NULL)
		return;
	nc_list_clear(&nc->permitted);
	nc_list_clear(&nc->excluded);
	free(nc);
}

static enum mca_err
strv_push(char ***v, size_t *n, const gnutls_datum_t *d)
{
	char **grown, *copy;

	if (memchr(d->data, '\0', d->size) != NULL)
		return mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.2.1.10: NUL byte in a "
		    "name constraint");
	if ((copy = strndup((const char *)d->data, d->size)) == NULL)
		return MCA_ERR_NOMEM;
	if ((grown = reallocarray(*v, *n + 1, sizeof(**v))) == NULL) {
		free(copy);
		return MCA_ERR_NOMEM;
	}
	*v = grown;
	(*v)[(*n)++] = copy;
	return MCA_OK;
}

/* Address and mask to a range; the mask must be contiguous ones. */
static enum mca_err
ip_push(struct nc_list *l, const gnutls_datum_t *d)
{
	struct ca_ip ip, *grown;
	size_t len = d->size / 2;
	bool zeros = false;

	if (d->size != 8 && d->size != 32)
		return mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.2.1.10: iPAddress subtree "
		    "of %u bytes (8 or 32 expected)", d->size);
	memset(&ip, 0, sizeof(ip));
	ip.len = (unsigned char)len;
	for (size_t i = 0; i < len * 8; i++) {
		bool one = (d->data[len + i / 8] & (0x80u >> (i % 8))) != 0;

		if (one && zeros)
			return mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.2.1.10: iPAddress "
			    "subtree with a non-contiguous mask");
		if (one)
			ip.prefix++;
		else
			zeros = true;
	}
	for (size_t i = 0; i < len; i++)
		ip.addr[i] = d->data[i] & d->data[len + i];
	if ((grown = reallocarray(l->ips, l->nips + 1, sizeof(*grown))) == NULL)
		return MCA_ERR_NOMEM;
	l->ips = grown;
	l->ips[l->nips++] = ip;
	return MCA_OK;
}

typedef int (*nc_getter)(gnutls_x509_name_constraints_t, unsigned, unsigned *, gnutls_datum_t *);

/* Other GeneralName types (rfc822Name, directoryName...) never occur in
 * what meshca issues and are left to relying parties. */
static enum mca_err
nc_list_read(gnutls_x509_name_constraints_t nc, nc_getter get, struct nc_list *l)
{
	gnutls_datum_t d;
	unsigned type;
	enum mca_err rc = MCA_OK;
	int r;

	for (unsigned i = 0; rc == MCA_OK; i++) {
		if ((r = get(nc, i, &type, &d)) == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r < 0)
			return mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.2.1.10: %s",
			    gnutls_strerror(r));
		if (i >= NC_MAX_ENTRIES)
			return mca_err_set(MCA_ERR_TOOBIG, "more than %d name constraints",
			    NC_MAX_ENTRIES);
		if (type == GNUTLS_SAN_DNSNAME)
			rc = strv_push(&l->dns, &l->ndns, &d);
		else if (type == GNUTLS_SAN_URI)
			rc = strv_push(&l->uri, &l->nuri, &d);
		else if (type == GNUTLS_SAN_IPADDRESS)
			rc = ip_push(l, &d);
	}
	return rc;
}

enum mca_err
ca_nc_load(gnutls_x509_crt_t crt, struct ca_nc **out)
{
	gnutls_x509_name_constraints_t nc = NULL;
	struct ca_nc *c = NULL;
	unsigned int critical = 0;
	enum mca_err rc = MCA_ERR_NOMEM;
	int r;

	*out = NULL;
	if (gnutls_x509_name_constraints_init(&nc) < 0)
		return MCA_ERR_NOMEM;
	r = gnutls_x509_crt_get_name_constraints(crt, nc, 0, &critical);
	if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		rc = MCA_OK;		/* unconstrained */
		goto out;
	}
	if (r < 0) {
		rc = mca_err_set(MCA_ERR_CERT_PARSE, "RFC 5280 4.2.1.10: unreadable "
		    "nameConstraints: %s", gnutls_strerror(r));
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	if ((rc = nc_list_read(nc, gnutls_x509_name_constraints_get_permitted,
	    &c->permitted)) != MCA_OK ||
	    (rc = nc_list_read(nc, gnutls_x509_name_constraints_get_excluded,
	    &c->excluded)) != MCA_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	ca_nc_free(c);
	gnutls_x509_name_constraints_deinit(nc);
	return rc;
}

bool
ca_nc_has_dns(const struct ca_nc *nc)
{
	return nc != NULL && nc->permitted.ndns + nc->excluded.ndns > 0;
}

/* ---- checking -------------------------------------------------------- */

/* RFC 5280 4.2.1.10: a dNSName constraint admits the name and any name
 * made by adding labels to its left; a leading '.' (a common extension,
 * as for URIs) admits subdomains only. */
static bool
dns_match(const char *name, const char *c)
{
	size_t n = strlen(name), m = strlen(c);

	if (m == 0)
		return true;
	if (c[0] == '.')
		return n > m && strcasecmp(name + n - m, c) == 0;
	if (n == m)
		return strcasecmp(name, c) == 0;
	return n > m && name[n - m - 1] == '.' && strcasecmp(name + n - m, c) == 0;
}

/* RFC 5280 4.2.1.10: a URI constraint is matched against the host part. */
static bool
uri_match(const char *uri, const char *c)
{
	const char *h = strstr(uri, "://");
	size_t n, m = strlen(c);

	if (h == NULL)
		return false;
	h += 3;
	n = strcspn(h, "/?#:@");
	if (c[0] == '.')
		return n > m && strncasecmp(h + n - m, c, m) == 0;
	return n == m && strncasecmp(h, c, m) == 0;
}

/* ip (an address or a range) lies inside range r. */
static bool
ip_match(const struct ca_ip *ip, const struct ca_ip *r)
{
	if (ip->len != r->len || ip->prefix < r->prefix)
		return false;
	for (unsigned i = 0; i < r->prefix; i++) {
		unsigned char bit = (unsigned char)(0x80u >> (i % 8));

		if ((ip->addr[i / 8] & bit) != (r->addr[i / 8] & bit))
			return false;
	}
	return true;
}

/* The permitted subtrees of one type as text, for a refusal. */
static void
list_text(char *const *v, size_t n, char *out, size_t size)
{
	size_t used = 0;
	int w;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", v[i]);
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

static enum mca_err
refuse(const char *type, const char *name, const char *permitted)
{
	return mca_err_set(MCA_ERR_SAN_NOT_ALLOWED, "RFC 5280 4.2.1.10: %s '%s' is outside the "
	    "intermediate CA's name constraints (permitted %s subtrees: %s)", type, name, type,
	    permitted[0] != '\0' ? permitted : "none");
}

static enum mca_err
check_strings(char *const *perm, size_t nperm, char *const *excl, size_t nexcl,
    const char *type, const char *name, bool (*match)(const char *, const char *))
{
	char text[NC_TEXT_MAX];
	bool ok = nperm == 0;

	for (size_t i = 0; i < nperm && !ok; i++)
		ok = match(name, perm[i]);
	for (size_t i = 0; i < nexcl && ok; i++)
		ok = !match(name, excl[i]);
	if (ok)
		return MCA_OK;
	list_text(perm, nperm, text, sizeof(text));
	return refuse(type, name, text);
}

static enum mca_err
check_ip(const struct ca_nc *nc, const struct ca_ip *ip)
{
	char text[NC_TEXT_MAX], one[64], name[64];
	size_t used = 0;
	bool ok = nc->permitted.nips == 0;

	/* One type for both families, as OpenSSL and GnuTLS read it: with
	 * only IPv4 subtrees permitted, no IPv6 address is. */
	for (size_t i = 0; i < nc->permitted.nips && !ok; i++)
		ok = ip_match(ip, &nc->permitted.ips[i]);
	for (size_t i = 0; i < nc->excluded.nips && ok; i++)
		ok = !ip_match(ip, &nc->excluded.ips[i]);
	if (ok)
		return MCA_OK;
	text[0] = '\0';
	for (size_t i = 0; i < nc->permitted.nips && used < sizeof(text); i++) {
		int w;

		ca_ip_format(&nc->permitted.ips[i], one);
		if ((w = snprintf(text + used, sizeof(text) - used, "%s%s", i ? ", " : "", one)) < 0)
			break;
		used += (size_t)w;
	}
	ca_ip_format(ip, name);
	return refuse("iPAddress", name, text);
}

enum mca_err
ca_nc_check(const struct ca_nc *nc, const char *uri, const struct ca_sans *sans)
{
	enum mca_err rc;

	if (nc == NULL)
		return MCA_OK;
	if (uri != NULL && (rc = check_strings(nc->permitted.uri, nc->permitted.nuri,
	    nc->excluded.uri, nc->excluded.nuri, "URI", uri, uri_match)) != MCA_OK)
		return rc;
	for (size_t i = 0; sans != NULL && i < sans->ndns; i++)
		if ((rc = check_strings(nc->permitted.dns, nc->permitted.ndns, nc->excluded.dns,
		    nc->excluded.ndns, "dNSName", sans->dns[i], dns_match)) != MCA_OK)
			return rc;
	for (size_t i = 0; sans != NULL && i < sans->nips; i++)
		if ((rc = check_ip(nc, &sans->ips[i])) != MCA_OK)
			return rc;
	return MCA_OK;
}
