/*
 * Names: DNS names (RFC 1035 2.3.1/2.3.4, RFC 1123 2.1, wildcards as in
 * RFC 6125 6.4.3), IP addresses and ranges (RFC 4632), SPIFFE IDs (SPIFFE
 * ID spec), service names, and the SAN sets a service may hold.
 */
#include "ca/ca_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_MAX_LABEL		63	/* RFC 1035 2.3.4 */
#define TD_MAX_LEN		255	/* SPIFFE ID spec 2.1 */
#define IP_TEXT_MAX		64

static bool
is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(int c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* One label of a host name: RFC 1035 2.3.1 as relaxed by RFC 1123 2.1. */
static enum mca_err
dns_label_check(const char *name, const char *l, size_t n)
{
	if (n == 0)
		return mca_err_set(MCA_ERR_NAME, "RFC 1035 2.3.1: empty label in '%s'%s",
		    name, l[0] == '\0' ? " (trailing dot)" : "");
	if (n > DNS_MAX_LABEL)
		return mca_err_set(MCA_ERR_NAME, "RFC 1035 2.3.4: label longer than 63 bytes in '%s'",
		    name);
	if (l[0] == '-' || l[n - 1] == '-')
		return mca_err_set(MCA_ERR_NAME, "RFC 1035 2.3.1: label starts or ends with "
		    "a hyphen in '%s'", name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)l[i];

		if (c >= 'A' && c <= 'Z')
			return mca_err_set(MCA_ERR_NAME, "RFC 4343: DNS names compare case-"
			    "insensitively; meshca takes lowercase only: '%s'", name);
		if (c == '*')
			return mca_err_set(MCA_ERR_NAME, "RFC 6125 6.4.3: a wildcard may only be "
			    "the whole leftmost label: '%s'", name);
		if (!is_lower_alnum(c) && c != '-')
			return mca_err_set(MCA_ERR_NAME, "RFC 1035 2.3.1: character 0x%02x not "
			    "allowed in a host name", c);
	}
	return MCA_OK;
}

static bool
all_digits(const char *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] < '0' || l[i] > '9')
			return false;
	return true;
}

enum mca_err
ca_dns_check(const char *name, bool allow_wildcard)
{
	const char *p, *last = NULL;
	size_t len, labels = 0;
	bool wild = false;
	enum mca_err rc;

	if (name == NULL || *name == '\0')
		return mca_err_set(MCA_ERR_NAME, "RFC 1035 2.3.1: empty DNS name");
	len = strnlen(name, CA_MAX_DNS_LEN + 1);
	if (len > CA_MAX_DNS_LEN)
		return mca_err_set(MCA_ERR_NAME, "RFC 1035 2.3.4: DNS name longer than 253 bytes");
	p = name;
	if (p[0] == '*' && p[1] == '.') {
		if (!allow_wildcard)
			return mca_err_set(MCA_ERR_NAME, "RFC 6125 6.4.3: wildcard not allowed "
			    "here: '%s'", name);
		p += 2;
		wild = true;
	}
	for (;;) {
		size_t n = strcspn(p, ".");

		if ((rc = dns_label_check(name, p, n)) != MCA_OK)
			return rc;
		labels++;
		last = p;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (all_digits(last, strlen(last)))
		return mca_err_set(MCA_ERR_NAME, "RFC 1123 2.1: the last label of a host name "
		    "is not all-numeric: '%s'", name);
	if (wild && labels < 2)
		return mca_err_set(MCA_ERR_NAME, "RFC 6125 7.2: a wildcard needs at least two "
		    "labels after it: '%s'", name);
	return MCA_OK;
}

static void
ip_mask(struct ca_ip *ip)
{
	for (unsigned i = 0; i < ip->len; i++) {
		unsigned bit = i * 8;

		if (bit >= ip->prefix)
			ip->addr[i] = 0;
		else if (ip->prefix - bit < 8)
			ip->addr[i] &= (unsigned char)(0xff00u >> (ip->prefix - bit));
	}
}

static enum mca_err
ip_prefix_parse(const char *text, const char *p, unsigned max, unsigned char *out)
{
	unsigned v = 0;
	size_t n = strlen(p);

	if (n == 0 || n > 3 || !all_digits(p, n) || (n > 1 && p[0] == '0'))
		return mca_err_set(MCA_ERR_NAME, "RFC 4632 3.1: bad prefix length in '%s'", text);
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	if (v > max)
		return mca_err_set(MCA_ERR_NAME, "RFC 4632 3.1: prefix length %u exceeds %u in '%s'",
		    v, max, text);
	*out = (unsigned char)v;
	return MCA_OK;
}

enum mca_err
ca_ip_parse(const char *text, bool allow_cidr, struct ca_ip *out)
{
	char buf[IP_TEXT_MAX];
	struct ca_ip ip;
	char *slash;
	enum mca_err rc;

	if (text == NULL || *text == '\0')
		return mca_err_set(MCA_ERR_NAME, "empty IP address");
	if (strnlen(text, sizeof(buf)) >= sizeof(buf))
		return mca_err_set(MCA_ERR_NAME, "IP address text too long");
	memcpy(buf, text, strlen(text) + 1);
	memset(&ip, 0, sizeof(ip));
	if ((slash = strchr(buf, '/')) != NULL) {
		if (!allow_cidr)
			return mca_err_set(MCA_ERR_NAME, "'%s': an address range is not allowed "
			    "here, only one address", text);
		*slash = '\0';
	}
	if (strchr(buf, ':') != NULL) {
		ip.len = 16;
		if (inet_pton(AF_INET6, buf, ip.addr) != 1)
			return mca_err_set(MCA_ERR_NAME, "RFC 4291 2.2: '%s' is not an IPv6 "
			    "address", text);
	} else {
		ip.len = 4;
		if (inet_pton(AF_INET, buf, ip.addr) != 1)
			return mca_err_set(MCA_ERR_NAME, "RFC 791: '%s' is not a dotted-quad IPv4 "
			    "address", text);
	}
	ip.prefix = (unsigned char)(ip.len * 8);
	if (slash != NULL &&
	    (rc = ip_prefix_parse(text, slash + 1, ip.len * 8u, &ip.prefix)) != MCA_OK)
		return rc;
	ip_mask(&ip);		/* 10.1.2.3/8 is 10.0.0.0/8 */
	*out = ip;
	return MCA_OK;
}

void
ca_ip_format(const struct ca_ip *ip, char out[64])
{
	char a[INET6_ADDRSTRLEN];

	out[0] = '\0';
	if (inet_ntop(ip->len == 16 ? AF_INET6 : AF_INET, ip->addr, a, sizeof(a)) == NULL)
		return;
	if (ip->prefix == ip->len * 8)
		snprintf(out, 64, "%s", a);
	else
		snprintf(out, 64, "%s/%u", a, (unsigned)ip->prefix);
}

/* SPIFFE ID spec 2.1 for the n bytes at td. */
static enum mca_err
td_check(const char *td, size_t n, enum mca_err code)
{
	if (n == 0)
		return mca_err_set(code, "SPIFFE ID spec 2.1: empty trust domain");
	if (n > TD_MAX_LEN)
		return mca_err_set(code, "SPIFFE ID spec 2.1: trust domain longer than 255 bytes");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)td[i];

		if (is_lower_alnum(c) || c == '.' || c == '-' || c == '_')
			continue;
		if (c >= 'A' && c <= 'Z')
			return mca_err_set(code, "SPIFFE ID spec 2.1: trust domain must be "
			    "lowercase");
		if (c == ':')
			return mca_err_set(code, "SPIFFE ID spec 2.1: a port is not allowed in "
			    "the trust domain");
		if (c == '@')
			return mca_err_set(code, "SPIFFE ID spec 2.1: userinfo is not allowed in "
			    "the trust domain");
		if (c == '%')
			return mca_err_set(code, "SPIFFE ID spec 2.1: percent-encoding is not "
			    "allowed in the trust domain");
		return mca_err_set(code, "SPIFFE ID spec 2.1: character 0x%02x not allowed in "
		    "the trust domain", c);
	}
	return MCA_OK;
}

enum mca_err
ca_trust_domain_check(const char *td)
{
	if (td == NULL)
		return mca_err_set(MCA_ERR_NAME, "SPIFFE ID spec 2.1: empty trust domain");
	return td_check(td, strnlen(td, TD_MAX_LEN + 1), MCA_ERR_NAME);
}

static enum mca_err
path_segment_check(const char *s, size_t n)
{
	if (n == 0)
		return mca_err_set(MCA_ERR_SPIFFE_ID, s[0] == '\0' ?
		    "SPIFFE ID spec 2.2: trailing slash is not allowed" :
		    "SPIFFE ID spec 2.2: empty path segment is not allowed");
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.2: path segment '%.*s' "
		    "is not allowed", (int)n, s);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_alnum(c) || c == '.' || c == '-' || c == '_')
			continue;
		if (c == '?')
			return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.2: a query is not "
			    "allowed");
		if (c == '#')
			return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.2: a fragment is "
			    "not allowed");
		if (c == '%')
			return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.2: percent-encoding "
			    "is not allowed");
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.2: character 0x%02x not "
		    "allowed in a path segment", c);
	}
	return MCA_OK;
}

enum mca_err
ca_spiffe_id_check(const char *id, const char *td)
{
	static const char scheme[] = "spiffe://";
	const char *p;
	size_t tdlen;
	enum mca_err rc;

	if (id == NULL || *id == '\0')
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2: empty SPIFFE ID");
	if (strnlen(id, CA_MAX_SPIFFE_ID_LEN + 1) > CA_MAX_SPIFFE_ID_LEN)
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.3: longer than 2048 bytes");
	if (strncmp(id, scheme, sizeof(scheme) - 1) != 0)
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2: the scheme must be "
		    "'spiffe://' in lowercase");
	p = id + sizeof(scheme) - 1;
	tdlen = strcspn(p, "/?#");
	if ((rc = td_check(p, tdlen, MCA_ERR_SPIFFE_ID)) != MCA_OK)
		return rc;
	if (td != NULL && (strlen(td) != tdlen || memcmp(td, p, tdlen) != 0))
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.1: trust domain '%.*s' "
		    "is not this CA's '%s'", (int)tdlen, p, td);
	p += tdlen;
	if (*p == '?' || *p == '#')
		return path_segment_check(p, 1);
	if (*p == '\0')
		return mca_err_set(MCA_ERR_SPIFFE_ID, "SPIFFE ID spec 2.2, X509-SVID spec 2: a "
		    "workload SPIFFE ID needs a path");
	while (*p == '/') {
		size_t n = strcspn(++p, "/");

		if ((rc = path_segment_check(p, n)) != MCA_OK)
			return rc;
		p += n;
	}
	return MCA_OK;
}

enum mca_err
ca_service_name_check(const char *name)
{
	size_t n;

	if (name == NULL || *name == '\0')
		return mca_err_set(MCA_ERR_NAME, "empty service name");
	if ((n = strnlen(name, CA_MAX_SERVICE_NAME + 1)) > CA_MAX_SERVICE_NAME)
		return mca_err_set(MCA_ERR_NAME, "service name longer than %d bytes",
		    CA_MAX_SERVICE_NAME);
	if (!is_lower_alnum((unsigned char)name[0]))
		return mca_err_set(MCA_ERR_NAME, "service name must start with a lowercase "
		    "letter or a digit");
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum((unsigned char)name[i]) && name[i] != '-')
			return mca_err_set(MCA_ERR_NAME, "service name: character 0x%02x not "
			    "allowed (only a-z, 0-9 and '-')", (unsigned char)name[i]);
	return MCA_OK;
}

/* ---- SAN sets -------------------------------------------------------- */

void
ca_sans_clear(struct ca_sans *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ndns; i++)
		free(s->dns[i]);
	free(s->dns);
	free(s->ips);
	memset(s, 0, sizeof(*s));
}

static bool
sans_full(const struct ca_sans *s)
{
	return s->ndns + s->nips >= CA_MAX_SANS;
}

static bool
sans_has_dns(const struct ca_sans *s, const char *name)
{
	for (size_t i = 0; i < s->ndns; i++)
		if (strcmp(s->dns[i], name) == 0)
			return true;
	return false;
}

static bool
ip_equal(const struct ca_ip *a, const struct ca_ip *b)
{
	return a->len == b->len && a->prefix == b->prefix && memcmp(a->addr, b->addr, a->len) == 0;
}

static enum mca_err
sans_push_dns(struct ca_sans *s, const char *name)
{
	char **v, *copy;

	if (sans_has_dns(s, name))
		return MCA_OK;
	if (sans_full(s))
		return mca_err_set(MCA_ERR_TOOBIG, "more than %d subject alternative names",
		    CA_MAX_SANS);
	if ((copy = strdup(name)) == NULL)
		return MCA_ERR_NOMEM;
	if ((v = realloc(s->dns, (s->ndns + 1) * sizeof(*v))) == NULL) {
		free(copy);
		return MCA_ERR_NOMEM;
	}
	s->dns = v;
	s->dns[s->ndns++] = copy;
	return MCA_OK;
}

static enum mca_err
sans_push_ip(struct ca_sans *s, const struct ca_ip *ip)
{
	struct ca_ip *v;

	for (size_t i = 0; i < s->nips; i++)
		if (ip_equal(&s->ips[i], ip))
			return MCA_OK;
	if (sans_full(s))
		return mca_err_set(MCA_ERR_TOOBIG, "more than %d subject alternative names",
		    CA_MAX_SANS);
	if ((v = realloc(s->ips, (s->nips + 1) * sizeof(*v))) == NULL)
		return MCA_ERR_NOMEM;
	s->ips = v;
	s->ips[s->nips++] = *ip;
	return MCA_OK;
}

enum mca_err
ca_sans_add_dns(struct ca_sans *s, const char *name, bool allow_wildcard)
{
	enum mca_err rc;

	if ((rc = ca_dns_check(name, allow_wildcard)) != MCA_OK)
		return rc;
	return sans_push_dns(s, name);
}

enum mca_err
ca_sans_add_ip(struct ca_sans *s, const char *text, bool allow_cidr)
{
	struct ca_ip ip;
	enum mca_err rc;

	if ((rc = ca_ip_parse(text, allow_cidr, &ip)) != MCA_OK)
		return rc;
	return sans_push_ip(s, &ip);
}

enum mca_err
ca_sans_add_ip_raw(struct ca_sans *s, const unsigned char *addr, size_t len)
{
	struct ca_ip ip;

	if (len != 4 && len != 16)
		return mca_err_set(MCA_ERR_NAME, "RFC 5280 4.2.1.6: iPAddress of %zu bytes "
		    "(4 or 16 expected)", len);
	memset(&ip, 0, sizeof(ip));
	memcpy(ip.addr, addr, len);
	ip.len = (unsigned char)len;
	ip.prefix = (unsigned char)(len * 8);
	return sans_push_ip(s, &ip);
}

/* "*.suffix" permits exactly one more label before ".suffix". */
static bool
dns_permitted(const struct ca_sans *allowed, const char *name)
{
	const char *dot;

	if (sans_has_dns(allowed, name))
		return true;		/* exact, including a literal wildcard */
	if (name[0] == '*' || (dot = strchr(name, '.')) == NULL)
		return false;
	for (size_t i = 0; i < allowed->ndns; i++) {
		const char *a = allowed->dns[i];

		if (a[0] == '*' && a[1] == '.' && strcmp(a + 2, dot + 1) == 0)
			return true;
	}
	return false;
}

/* Whether ip lies inside range r. */
static bool
ip_within(const struct ca_ip *ip, const struct ca_ip *r)
{
	struct ca_ip m = *ip;

	if (ip->len != r->len || ip->prefix < r->prefix)
		return false;
	m.prefix = r->prefix;
	ip_mask(&m);
	return memcmp(m.addr, r->addr, r->len) == 0;
}

static enum mca_err
sans_grant_exact(const struct ca_sans *allowed, struct ca_sans *granted)
{
	enum mca_err rc;

	for (size_t i = 0; i < allowed->ndns; i++)
		if (allowed->dns[i][0] != '*' &&
		    (rc = sans_push_dns(granted, allowed->dns[i])) != MCA_OK)
			return rc;
	for (size_t i = 0; i < allowed->nips; i++)
		if (allowed->ips[i].prefix == allowed->ips[i].len * 8 &&
		    (rc = sans_push_ip(granted, &allowed->ips[i])) != MCA_OK)
			return rc;
	return MCA_OK;
}

static enum mca_err
sans_grant_requested(const struct ca_sans *allowed, const struct ca_sans *req,
    bool allow_wildcards, struct ca_sans *granted)
{
	char text[64];
	enum mca_err rc;

	for (size_t i = 0; i < req->ndns; i++) {
		if (!dns_permitted(allowed, req->dns[i]))
			return mca_err_set(MCA_ERR_SAN_NOT_ALLOWED, "policy: DNS name '%s' is not "
			    "among the names this service may hold (an exact name, or one label "
			    "under a *.suffix pattern)", req->dns[i]);
		if (req->dns[i][0] == '*' && !allow_wildcards)
			return mca_err_set(MCA_ERR_SAN_NOT_ALLOWED, "policy: the service does not "
			    "allow wildcard certificates (allow_wildcards=false): '%s'", req->dns[i]);
		if ((rc = sans_push_dns(granted, req->dns[i])) != MCA_OK)
			return rc;
	}
	for (size_t i = 0; i < req->nips; i++) {
		bool ok = false;

		for (size_t j = 0; j < allowed->nips && !ok; j++)
			ok = ip_within(&req->ips[i], &allowed->ips[j]);
		if (!ok) {
			ca_ip_format(&req->ips[i], text);
			return mca_err_set(MCA_ERR_SAN_NOT_ALLOWED, "policy: IP address %s is not "
			    "among the addresses this service may hold", text);
		}
		if ((rc = sans_push_ip(granted, &req->ips[i])) != MCA_OK)
			return rc;
	}
	return MCA_OK;
}

enum mca_err
ca_sans_authorize(const struct ca_sans *allowed, const struct ca_sans *requested,
    bool allow_wildcards, struct ca_sans *granted)
{
	static const struct ca_sans none;
	enum mca_err rc;

	ca_sans_clear(granted);
	if (allowed == NULL)
		allowed = &none;
	if (requested == NULL || (requested->ndns == 0 && requested->nips == 0))
		rc = sans_grant_exact(allowed, granted);
	else
		rc = sans_grant_requested(allowed, requested, allow_wildcards, granted);
	if (rc != MCA_OK)
		ca_sans_clear(granted);
	return rc;
}

/* One GeneralName as GnuTLS returns it (SAN getters): DNS and IP kept. */
enum mca_err
ca_sans_add_gnutls(struct ca_sans *out, unsigned int type, const char *buf, size_t size)
{
	switch (type) {
	case GNUTLS_SAN_DNSNAME:
		if (size != strlen(buf))
			return mca_err_set(MCA_ERR_NAME, "RFC 5280 4.2.1.6: NUL byte in a "
			    "dNSName");
		return ca_sans_add_dns(out, buf, true);
	case GNUTLS_SAN_IPADDRESS:
		return ca_sans_add_ip_raw(out, (const unsigned char *)buf, size);
	default:
		return MCA_OK;	/* URI, e-mail...: identity comes from the service record */
	}
}

enum mca_err
ca_sans_collect(ca_san_getter get, const void *obj, const char *rule, struct ca_sans *out)
{
	char buf[CA_MAX_SPIFFE_ID_LEN + 1];	/* the longest SAN we read: a URI */
	unsigned int type;
	enum mca_err rc = MCA_OK;
	size_t size;
	int r;

	ca_sans_clear(out);
	for (unsigned int seq = 0; rc == MCA_OK; seq++) {
		size = sizeof(buf);
		r = get(obj, seq, buf, &size, &type);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r == GNUTLS_E_SHORT_MEMORY_BUFFER)
			rc = mca_err_set(MCA_ERR_NAME, "subjectAltName entry longer than %d bytes",
			    CA_MAX_SPIFFE_ID_LEN);
		else if (r < 0)
			rc = mca_err_set(MCA_ERR_PARSE, "%s: %s", rule, gnutls_strerror(r));
		else
			rc = ca_sans_add_gnutls(out, type, buf, size);
	}
	if (rc != MCA_OK)
		ca_sans_clear(out);
	return rc;
}
