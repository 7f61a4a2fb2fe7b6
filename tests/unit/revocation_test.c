/*
 * Unit tests for ca/crl.c, ca/ocsp.c and the revocation pointers of
 * ca/issue.c.  What meshca encodes is read back by others: GnuTLS (CRL and
 * OCSP parsers and verifiers), OpenSSL (`openssl crl`, `openssl ocsp`,
 * `openssl x509`), certtool, and a small DER walker of this file for the
 * CRL entry reason codes that GnuTLS does not expose.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/fileio.h"

#define TD		"mesh.internal"
#define SPIFFE		"spiffe://mesh.internal/svc/payments"
#define DAY		86400
#define NKEYS		4

#define assert_rc(expr, want) do {						\
	enum mca_err r_ = (expr);						\
	if (r_ != (want))							\
		fail_msg("%s: got %s (%s), want %s", #expr, mca_errname(r_),	\
		    mca_err_detail(), mca_errname(want));			\
} while (0)

/* A CA hierarchy per signing key type, with a leaf of each. */
struct hier {
	enum ca_key_type	 type;
	const char		*tag;
	struct ca_signer	*signer;
	struct ca_issued	 leaf;
	gnutls_x509_crt_t	 int_crt, leaf_crt;
	char			 root_path[PATH_MAX], int_path[PATH_MAX], leaf_path[PATH_MAX];
};

static struct {
	char		dir[64];
	int64_t		now;
	struct hier	h[NKEYS];
	struct hier	other;		/* a foreign CA */
	struct ca_key	*leaf_key;
} F;

static const char *
tmp_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", F.dir, name);
	return buf[i];
}

static void
write_bytes(const char *path, const unsigned char *p, size_t n)
{
	assert_rc(mca_file_write_atomic(path, p, n, 0644), MCA_OK);
}

/* Runs a shell command, returns its exit status and output (stdout+stderr). */
static int
vrun(struct mca_buf *out, const char *fmt, va_list ap)
{
	char cmd[4 * PATH_MAX], chunk[4096];
	size_t n;
	FILE *f;
	int st;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	mca_buf_init(out, 4 * 1024 * 1024, false);
	if ((f = popen(cmd, "r")) == NULL)
		fail_msg("popen %s", cmd);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_rc(mca_buf_append(out, chunk, n), MCA_OK);
	st = pclose(f);
	assert_rc(mca_buf_terminate(out), MCA_OK);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
run(struct mca_buf *out, const char *fmt, ...)
{
	va_list ap;
	int st;

	va_start(ap, fmt);
	st = vrun(out, fmt, ap);
	va_end(ap);
	return st;
}

/* Like run(), failing the test with the command's output unless it exits 0. */
static void
run_ok(struct mca_buf *out, const char *fmt, ...)
{
	va_list ap;
	int st;

	va_start(ap, fmt);
	st = vrun(out, fmt, ap);
	va_end(ap);
	if (st != 0)
		fail_msg("exit %d: %s", st, out->data != NULL ? (char *)out->data : "");
}

static bool
have_tool(const char *name)
{
	struct mca_buf o;
	int st = run(&o, "command -v %s >/dev/null 2>&1", name);

	mca_buf_free(&o);
	return st == 0;
}

static gnutls_x509_crt_t
crt_of(const struct mca_buf *der)
{
	gnutls_x509_crt_t c;
	gnutls_datum_t d = { der->data, (unsigned int)der->len };

	assert_int_equal(gnutls_x509_crt_init(&c), 0);
	assert_int_equal(gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_DER), 0);
	return c;
}

static void
leaf_issue(struct hier *h, const struct ca_leaf_req *req, struct ca_issued *out)
{
	struct mca_buf pem = { 0 };
	struct ca_csr *csr = NULL;

	assert_rc(ca_csr_create(F.leaf_key, "payments", NULL, &pem), MCA_OK);
	assert_rc(ca_csr_parse(pem.data, pem.len, &csr), MCA_OK);
	assert_rc(ca_issue_leaf(h->signer, csr, req, out), MCA_OK);
	ca_csr_free(csr);
	mca_buf_free(&pem);
}

static void
hier_make(struct hier *h, enum ca_key_type t, const char *tag)
{
	struct ca_key *rk = NULL, *ik = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	struct ca_leaf_req req = { SPIFFE, "payments", NULL, DAY, F.now, NULL, NULL, NULL };
	char kp[PATH_MAX];

	h->type = t;
	h->tag = tag;
	snprintf(h->root_path, sizeof(h->root_path), "%s/%s-root.pem", F.dir, tag);
	snprintf(h->int_path, sizeof(h->int_path), "%s/%s-int.pem", F.dir, tag);
	snprintf(h->leaf_path, sizeof(h->leaf_path), "%s/%s-leaf.pem", F.dir, tag);
	snprintf(kp, sizeof(kp), "%s/%s-int.key", F.dir, tag);
	assert_rc(ca_key_generate(t, &rk), MCA_OK);
	assert_rc(ca_key_generate(t, &ik), MCA_OK);
	assert_rc(ca_root_create(rk, TD, F.now, 3650L * DAY, &root), MCA_OK);
	assert_rc(ca_intermediate_create(root, rk, ik, TD, F.now, 365L * DAY, NULL, &inter), MCA_OK);
	write_bytes(h->root_path, ca_cert_pem(root)->data, ca_cert_pem(root)->len);
	write_bytes(h->int_path, ca_cert_pem(inter)->data, ca_cert_pem(inter)->len);
	assert_rc(ca_key_save(ik, kp, NULL), MCA_OK);
	assert_rc(ca_signer_open(h->int_path, kp, NULL, h->root_path, &h->signer), MCA_OK);
	h->int_crt = crt_of(ca_cert_der(inter));
	leaf_issue(h, &req, &h->leaf);
	write_bytes(h->leaf_path, h->leaf.pem.data, h->leaf.pem.len);
	h->leaf_crt = crt_of(&h->leaf.der);
	ca_cert_free(root);
	ca_cert_free(inter);
	ca_key_free(rk);
	ca_key_free(ik);
}

static void
hier_free(struct hier *h)
{
	ca_signer_free(h->signer);
	ca_issued_clear(&h->leaf);
	if (h->int_crt != NULL)
		gnutls_x509_crt_deinit(h->int_crt);
	if (h->leaf_crt != NULL)
		gnutls_x509_crt_deinit(h->leaf_crt);
}

static int
group_setup(void **state)
{
	(void)state;
	if (ca_global_init() != MCA_OK)
		return -1;
	snprintf(F.dir, sizeof(F.dir), "/tmp/revocation_test.XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	F.now = (int64_t)time(NULL);
	if (ca_key_generate(CA_KEY_ECDSA_P256, &F.leaf_key) != MCA_OK)
		return -1;
	return 0;
}

/* Hierarchies are built lazily inside a test, where cmocka's asserts work. */
static struct hier *
hier(int i)
{
	static const enum ca_key_type types[NKEYS] = {
		CA_KEY_ECDSA_P256, CA_KEY_ECDSA_P384, CA_KEY_ED25519, CA_KEY_RSA_2048 };
	static const char *const tags[NKEYS] = { "p256", "p384", "ed25519", "rsa" };

	if (i < 0) {
		if (F.other.signer == NULL)
			hier_make(&F.other, CA_KEY_ECDSA_P256, "other");
		return &F.other;
	}
	if (F.h[i].signer == NULL)
		hier_make(&F.h[i], types[i], tags[i]);
	return &F.h[i];
}

static int
group_teardown(void **state)
{
	struct mca_buf o;

	(void)state;
	for (int i = 0; i < NKEYS; i++)
		hier_free(&F.h[i]);
	hier_free(&F.other);
	ca_key_free(F.leaf_key);
	if (F.dir[0] != '\0' && run(&o, "rm -rf '%s'", F.dir) != 0)
		fprintf(stderr, "cannot remove %s\n", F.dir);
	mca_buf_free(&o);
	return 0;
}

/* ---- a minimal DER walker, independent of ca/ ------------------------ */

struct tlv {
	unsigned char		 tag;
	const unsigned char	*val;
	size_t			 len;
	const unsigned char	*next;
};

static bool
tlv_read(const unsigned char *p, const unsigned char *end, struct tlv *t)
{
	size_t len = 0, n;

	if (end - p < 2)
		return false;
	t->tag = *p++;
	if (*p < 0x80) {
		len = *p++;
	} else {
		n = *p++ & 0x7f;
		if (n == 0 || n > 4 || (size_t)(end - p) < n)
			return false;
		while (n-- > 0)
			len = (len << 8) | *p++;
	}
	if ((size_t)(end - p) < len)
		return false;
	t->val = p;
	t->len = len;
	t->next = p + len;
	return true;
}

/* Reason code per entry of a DER CRL, in order (-1: no reasonCode); count. */
static size_t
crl_reasons(const struct mca_buf *crl, int *reasons, size_t max)
{
	static const unsigned char oid_reason[] = { 0x06, 0x03, 0x55, 0x1d, 0x15 };
	struct tlv cl = { 0 }, tbs = { 0 }, f = { 0 }, e = { 0 }, x = { 0 };
	const unsigned char *p;
	size_t n = 0;

	assert_true(tlv_read(crl->data, crl->data + crl->len, &cl) && cl.tag == 0x30);
	assert_true(tlv_read(cl.val, cl.val + cl.len, &tbs) && tbs.tag == 0x30);
	p = tbs.val;
	for (int i = 0; i < 5; i++) {	/* version signature issuer thisUpdate nextUpdate */
		assert_true(tlv_read(p, tbs.val + tbs.len, &f));
		p = f.next;
	}
	if (!tlv_read(p, tbs.val + tbs.len, &f) || f.tag != 0x30)
		return 0;	/* no revokedCertificates */
	for (p = f.val; p < f.val + f.len && n < max; p = e.next, n++) {
		assert_true(tlv_read(p, f.val + f.len, &e) && e.tag == 0x30);
		reasons[n] = -1;
		assert_true(tlv_read(e.val, e.val + e.len, &x) && x.tag == 0x02);
		assert_true(tlv_read(x.next, e.val + e.len, &x));	/* revocationDate */
		if (!tlv_read(x.next, e.val + e.len, &x))
			continue;
		/* crlEntryExtensions: SEQUENCE { SEQUENCE { OID, OCTET STRING { ENUM } } } */
		assert_int_equal(x.tag, 0x30);
		assert_true(tlv_read(x.val, x.val + x.len, &x) && x.tag == 0x30);
		assert_memory_equal(x.val, oid_reason, sizeof(oid_reason));
		assert_true(tlv_read(x.val + sizeof(oid_reason), x.val + x.len, &x));
		assert_int_equal(x.tag, 0x04);
		assert_int_equal(x.len, 3);
		assert_int_equal(x.val[0], 0x0a);
		assert_int_equal(x.val[1], 0x01);
		reasons[n] = x.val[2];
	}
	return n;
}

/* ---- CRL reasons ----------------------------------------------------- */

static void
test_reason_names(void **state)
{
	static const char *const names[] = { "unspecified", "keyCompromise", "cACompromise",
		"affiliationChanged", "superseded", "cessationOfOperation", "certificateHold",
		NULL, "removeFromCRL", "privilegeWithdrawn", "aACompromise" };
	int code;

	(void)state;
	for (int i = 0; i <= 10; i++) {
		if (names[i] == NULL) {
			assert_null(ca_crl_reason_name(i));
			continue;
		}
		assert_rc(ca_crl_reason_parse(names[i], &code), MCA_OK);
		assert_int_equal(code, i);
		assert_string_equal(ca_crl_reason_name(i), names[i]);
	}
	assert_null(ca_crl_reason_name(-1));
	assert_null(ca_crl_reason_name(11));
	assert_null(ca_crl_reason_name(INT_MAX));
	assert_rc(ca_crl_reason_parse("KeyCompromise", &code), MCA_ERR_INVALID);
	assert_rc(ca_crl_reason_parse("", &code), MCA_ERR_INVALID);
	assert_rc(ca_crl_reason_parse("7", &code), MCA_ERR_INVALID);
	assert_rc(ca_crl_reason_parse("keyCompromise ", &code), MCA_ERR_INVALID);
	assert_rc(ca_crl_reason_parse(NULL, &code), MCA_ERR_INVALID);
}

/* ---- CRLs ------------------------------------------------------------ */

static const struct ca_revoked sample[] = {
	{ "4a3b2c1d0e0f10111213141516171819", 1700000000, 1 },	/* keyCompromise */
	{ "ff", 1700000100, -1 },				/* pad byte needed */
	{ "01", 1700000200, 0 },				/* unspecified: no ext */
	{ "7fffffffffffffffffffffffffffffffffffffff", 1700000300, 4 },	/* 20 bytes */
	{ "00ab", 1700000400, 6 },				/* certificateHold */
	{ "123", 1700000500, 10 },				/* odd length hex */
};
#define NSAMPLE (sizeof(sample) / sizeof(sample[0]))

/* The DER INTEGER bytes GnuTLS reports for a hex serial. */
static size_t
serial_bytes(const char *hex, unsigned char out[32])
{
	char tmp[64];
	size_t n = strlen(hex), k = 0;
	unsigned v;

	snprintf(tmp, sizeof(tmp), "%s%s", n % 2 ? "0" : "", hex);
	for (size_t i = 0; tmp[i] != '\0'; i += 2) {
		sscanf(tmp + i, "%2x", &v);
		out[k++] = (unsigned char)v;
	}
	if (out[0] & 0x80) {
		memmove(out + 1, out, k);
		out[0] = 0;
		k++;
	}
	return k;
}

static gnutls_x509_crl_t
crl_import(const struct mca_buf *der)
{
	gnutls_x509_crl_t crl;
	gnutls_datum_t d = { der->data, (unsigned int)der->len };

	assert_int_equal(gnutls_x509_crl_init(&crl), 0);
	assert_int_equal(gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_DER), 0);
	return crl;
}

static void
crl_check_gnutls(struct hier *h, const struct mca_buf *der, const struct ca_revoked *list,
    size_t n, uint64_t number, int64_t tu, int64_t nu)
{
	gnutls_x509_crl_t crl = crl_import(der);
	gnutls_x509_crl_iter_t iter = NULL;
	gnutls_datum_t dn1 = { NULL, 0 }, dn2 = { NULL, 0 };
	unsigned char buf[64], want[32], ski[64];
	size_t len = sizeof(buf), skilen = sizeof(ski), wlen;
	unsigned int status = 99, crit = 1;
	time_t t;
	uint64_t num = 0;

	assert_int_equal(gnutls_x509_crl_verify(crl, &h->int_crt, 1, 0, &status), 0);
	if (tu > F.now + DAY && status == (GNUTLS_CERT_INVALID |
	    GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE))
		status = 0;	/* dated in the future, but well signed */
	assert_int_equal(status, 0);
	assert_int_equal(gnutls_x509_crl_get_version(crl), 2);
	assert_int_equal(gnutls_x509_crl_get_this_update(crl), tu);
	assert_int_equal(gnutls_x509_crl_get_next_update(crl), nu);
	assert_int_equal(gnutls_x509_crl_get_raw_issuer_dn(crl, &dn1), 0);
	assert_int_equal(gnutls_x509_crt_get_raw_dn(h->int_crt, &dn2), 0);
	assert_int_equal(dn1.size, dn2.size);
	assert_memory_equal(dn1.data, dn2.data, dn1.size);
	/* RFC 5280 5.2.3: cRLNumber, non-critical. */
	assert_int_equal(gnutls_x509_crl_get_number(crl, buf, &len, &crit), 0);
	assert_int_equal(crit, 0);
	for (size_t i = 0; i < len; i++)
		num = (num << 8) | buf[i];
	assert_true(num == number);
	if (number >> 63)
		assert_int_equal(buf[0], 0);	/* positive: padded */
	/* RFC 5280 5.2.1: AKI = the issuer's SKI. */
	len = sizeof(buf);
	crit = 1;
	assert_int_equal(gnutls_x509_crl_get_authority_key_id(crl, buf, &len, &crit), 0);
	assert_int_equal(crit, 0);
	assert_int_equal(gnutls_x509_crt_get_subject_key_id(h->int_crt, ski, &skilen, NULL), 0);
	assert_int_equal(len, skilen);
	assert_memory_equal(buf, ski, len);
	assert_int_equal(gnutls_x509_crl_get_crt_count(crl), (int)n);
	for (size_t i = 0; i < n; i++) {
		len = sizeof(buf);
		assert_int_equal(gnutls_x509_crl_iter_crt_serial(crl, &iter, buf, &len, &t), 0);
		wlen = serial_bytes(list[i].serial, want);
		assert_int_equal(len, wlen);
		assert_memory_equal(buf, want, len);
		assert_int_equal(t, list[i].revoked_at);
	}
	len = sizeof(buf);
	assert_int_equal(gnutls_x509_crl_iter_crt_serial(crl, &iter, buf, &len, &t),
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	gnutls_x509_crl_iter_deinit(iter);
	gnutls_free(dn1.data);
	gnutls_free(dn2.data);
	gnutls_x509_crl_deinit(crl);
}

static void
test_crl_gnutls(void **state)
{
	int64_t tu = F.now, nu = F.now + 7 * DAY;
	int reasons[NSAMPLE];

	(void)state;
	for (int k = 0; k < NKEYS; k++) {
		struct hier *h = hier(k);
		struct mca_buf crl = { 0 };

		assert_rc(ca_crl_build(h->signer, sample, NSAMPLE, 42, tu, nu, &crl), MCA_OK);
		crl_check_gnutls(h, &crl, sample, NSAMPLE, 42, tu, nu);
		assert_int_equal(crl_reasons(&crl, reasons, NSAMPLE), NSAMPLE);
		for (size_t i = 0; i < NSAMPLE; i++)	/* RFC 5280 5.3.1: 0 -> absent */
			assert_int_equal(reasons[i], sample[i].reason > 0 ? sample[i].reason : -1);
		/* A CRL number near 2^64 stays a positive INTEGER. */
		assert_rc(ca_crl_build(h->signer, sample, 1, UINT64_MAX - 1, tu, nu, &crl),
		    MCA_OK);
		crl_check_gnutls(h, &crl, sample, 1, UINT64_MAX - 1, tu, nu);
		mca_buf_free(&crl);
	}
}

static void
test_crl_empty_and_times(void **state)
{
	struct hier *h = hier(0);
	struct mca_buf crl = { 0 };
	int reasons[1];
	/* RFC 5280 5.1.2.4: GeneralizedTime from 2050 on; UTCTime up to 2049. */
	int64_t y2049 = 2524607999, y2050 = 2524608000;
	const unsigned char gt2050[] = "20500101000000Z";
	const unsigned char utc2049[] = "491231235959Z";

	(void)state;
	assert_rc(ca_crl_build(h->signer, NULL, 0, 0, F.now, F.now + DAY, &crl), MCA_OK);
	crl_check_gnutls(h, &crl, NULL, 0, 0, F.now, F.now + DAY);
	assert_int_equal(crl_reasons(&crl, reasons, 1), 0);	/* list absent (5.1.2.6) */

	struct ca_revoked r = { "0a", y2050, 9 };
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, y2049, y2050, &crl), MCA_OK);
	crl_check_gnutls(h, &crl, &r, 1, 1, y2049, y2050);
	assert_non_null(memmem(crl.data, crl.len, gt2050, sizeof(gt2050) - 1));
	assert_non_null(memmem(crl.data, crl.len, utc2049, sizeof(utc2049) - 1));

	/* Entries alternate between the two encodings, with and without reason. */
	struct ca_revoked mixed[] = { { "01", y2049, 1 }, { "02", y2050, 1 },
		{ "03", y2049, 1 }, { "04", y2050, -1 }, { "05", y2049, -1 },
		{ "06", y2050, 3 }, { "07", y2049, -1 } };
	int mr[7];
	assert_rc(ca_crl_build(h->signer, mixed, 7, 2, y2050, y2050 + DAY, &crl), MCA_OK);
	crl_check_gnutls(h, &crl, mixed, 7, 2, y2050, y2050 + DAY);
	assert_int_equal(crl_reasons(&crl, mr, 7), 7);
	for (int i = 0; i < 7; i++)
		assert_int_equal(mr[i], mixed[i].reason);
	mca_buf_free(&crl);
}

static void
test_crl_refuses(void **state)
{
	struct hier *h = hier(0);
	struct mca_buf crl = { 0 };
	struct ca_revoked r = { "01", F.now, 1 };
	static const char *const bad_serials[] = { "", "xyz", "0x01", "12 34", "-1",
		"000102030405060708090a0b0c0d0e0f1011121314" /* 21 bytes */ };
	static const int bad_reasons[] = { -2, 7, 8, 11, 1000, INT_MIN };

	(void)state;
	assert_rc(ca_crl_build(NULL, &r, 1, 1, F.now, F.now + DAY, &crl), MCA_ERR_INVALID);
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now + DAY, NULL), MCA_ERR_INVALID);
	assert_rc(ca_crl_build(h->signer, NULL, 1, 1, F.now, F.now + DAY, &crl), MCA_ERR_INVALID);
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now, &crl), MCA_ERR_INVALID);
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now - 1, &crl), MCA_ERR_INVALID);
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, -1, F.now, &crl), MCA_ERR_INVALID);
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, INT64_MAX, &crl), MCA_ERR_INVALID);
	for (size_t i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
		r.serial = bad_serials[i];
		assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now + DAY, &crl),
		    MCA_ERR_INVALID);
	}
	r.serial = NULL;
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now + DAY, &crl), MCA_ERR_INVALID);
	r.serial = "01";
	for (size_t i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++) {
		r.reason = bad_reasons[i];
		assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now + DAY, &crl),
		    MCA_ERR_INVALID);
	}
	r.reason = 1;
	r.revoked_at = -5;
	assert_rc(ca_crl_build(h->signer, &r, 1, 1, F.now, F.now + DAY, &crl), MCA_ERR_INVALID);
	assert_int_equal(crl.len, 0);
	mca_buf_free(&crl);
}

static void
test_crl_openssl_certtool(void **state)
{
	static const char *const want[] = { "Key Compromise", "Superseded",
		"Certificate Hold", "AA Compromise" };
	const char *path = tmp_path("sample.crl");
	struct mca_buf crl = { 0 }, o;

	(void)state;
	if (!have_tool("openssl") || !have_tool("certtool"))
		skip();
	for (int k = 0; k < NKEYS; k++) {
		struct hier *h = hier(k);

		assert_rc(ca_crl_build(h->signer, sample, NSAMPLE, 7, F.now, F.now + DAY, &crl),
		    MCA_OK);
		write_bytes(path, crl.data, crl.len);
		run_ok(&o, "openssl crl -inform DER -in '%s' -CAfile '%s' -verify "
		    "-noout -text 2>&1", path, h->int_path);
		if (strstr((char *)o.data, "verify OK") == NULL)
			fail_msg("%s: openssl crl: %s", h->tag, (char *)o.data);
		assert_non_null(strstr((char *)o.data, "Version 2"));
		assert_non_null(strstr((char *)o.data, "X509v3 CRL Number"));
		assert_non_null(strstr((char *)o.data, "X509v3 Authority Key Identifier"));
		assert_non_null(strstr((char *)o.data, "Serial Number: 4A3B2C1D0E0F10111213141516171819"));
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strstr((char *)o.data, want[i]) == NULL)
				fail_msg("%s: no '%s' in %s", h->tag, want[i], (char *)o.data);
		mca_buf_free(&o);
		run_ok(&o, "certtool --crl-info --inder --infile '%s' 2>&1",
		    path);
		assert_non_null(strstr((char *)o.data, "Revoked certificates (6)"));
		mca_buf_free(&o);
		/* A CRL verified against another CA must fail (openssl 3.0 exits 0). */
		(void)run(&o, "openssl crl -inform DER -in '%s' -CAfile '%s' -verify -noout "
		    "2>&1", path, hier(k == 0 ? 1 : 0)->int_path);
		assert_null(strstr((char *)o.data, "verify OK"));
		mca_buf_free(&o);
	}
	mca_buf_free(&crl);
}

/* ---- OCSP ------------------------------------------------------------ */

/* A DER OCSP request for h's leaf (or for `cert` when not NULL). */
static void
ocsp_req_make(struct hier *h, gnutls_digest_algorithm_t dig, bool nonce, int ncerts,
    struct mca_buf *out)
{
	gnutls_ocsp_req_t req;
	gnutls_datum_t der = { NULL, 0 };

	assert_int_equal(gnutls_ocsp_req_init(&req), 0);
	for (int i = 0; i < ncerts; i++)
		assert_int_equal(gnutls_ocsp_req_add_cert(req, dig, h->int_crt, h->leaf_crt), 0);
	if (nonce)
		assert_int_equal(gnutls_ocsp_req_randomize_nonce(req), 0);
	assert_int_equal(gnutls_ocsp_req_export(req, &der), 0);
	mca_buf_init(out, 0, false);
	assert_rc(mca_buf_set(out, der.data, der.size), MCA_OK);
	gnutls_free(der.data);
	gnutls_ocsp_req_deinit(req);
}

static gnutls_ocsp_resp_t
ocsp_resp_import(const struct mca_buf *der)
{
	gnutls_ocsp_resp_t resp;
	gnutls_datum_t d = { der->data, (unsigned int)der->len };

	assert_int_equal(gnutls_ocsp_resp_init(&resp), 0);
	assert_int_equal(gnutls_ocsp_resp_import(resp, &d), 0);
	return resp;
}

static void
ocsp_check(struct hier *h, const struct mca_buf *reqder, const struct mca_buf *respder,
    const struct ca_ocsp_answer *a, int64_t produced)
{
	gnutls_ocsp_resp_t resp = ocsp_resp_import(respder);
	gnutls_ocsp_req_t req;
	gnutls_datum_t d = { reqder->data, (unsigned int)reqder->len };
	gnutls_datum_t n1 = { NULL, 0 }, n2 = { NULL, 0 };
	unsigned int verify = 99, crit = 1, st, reason;
	time_t tu, nu, rt;
	static const unsigned int gst[] = {
		[CA_OCSP_GOOD] = GNUTLS_OCSP_CERT_GOOD,
		[CA_OCSP_REVOKED] = GNUTLS_OCSP_CERT_REVOKED,
		[CA_OCSP_UNKNOWN] = GNUTLS_OCSP_CERT_UNKNOWN };

	assert_int_equal(gnutls_ocsp_resp_get_status(resp), GNUTLS_OCSP_RESP_SUCCESSFUL);
	assert_int_equal(gnutls_ocsp_resp_verify_direct(resp, h->int_crt, &verify, 0), 0);
	assert_int_equal(verify, 0);
	assert_int_equal(gnutls_ocsp_resp_get_version(resp), 1);
	assert_int_equal(gnutls_ocsp_resp_get_produced(resp), produced);
	assert_int_equal(gnutls_ocsp_resp_check_crt(resp, 0, h->leaf_crt), 0);
	assert_int_equal(gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL, &st,
	    &tu, &nu, &rt, &reason), 0);
	assert_int_equal(st, gst[a->status]);
	assert_int_equal(tu, a->this_update);
	assert_int_equal(nu, a->next_update == 0 ? (time_t)-1 : a->next_update);
	if (a->status == CA_OCSP_REVOKED) {
		assert_int_equal(rt, a->revoked_at);
		assert_int_equal(reason, a->reason < 0 ? GNUTLS_X509_CRLREASON_UNSPECIFIED :
		    (unsigned)a->reason);
	}
	assert_int_equal(gnutls_ocsp_resp_get_single(resp, 1, NULL, NULL, NULL, NULL, &st,
	    NULL, NULL, NULL, NULL), GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	/* RFC 8954: the nonce comes back as sent. */
	assert_int_equal(gnutls_ocsp_req_init(&req), 0);
	assert_int_equal(gnutls_ocsp_req_import(req, &d), 0);
	if (gnutls_ocsp_req_get_nonce(req, NULL, &n1) == 0) {
		assert_int_equal(gnutls_ocsp_resp_get_nonce(resp, &crit, &n2), 0);
		assert_int_equal(crit, 0);
		assert_int_equal(n1.size, n2.size);
		assert_memory_equal(n1.data, n2.data, n1.size);
	} else {
		assert_int_equal(gnutls_ocsp_resp_get_nonce(resp, &crit, &n2),
		    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	}
	gnutls_free(n1.data);
	gnutls_free(n2.data);
	gnutls_ocsp_req_deinit(req);
	gnutls_ocsp_resp_deinit(resp);
}

static void
test_ocsp_gnutls(void **state)
{
	static const gnutls_digest_algorithm_t digs[] = { GNUTLS_DIG_SHA1, GNUTLS_DIG_SHA256,
		GNUTLS_DIG_SHA384, GNUTLS_DIG_SHA512 };
	int64_t p = F.now;

	(void)state;
	for (int k = 0; k < NKEYS; k++) {
		struct hier *h = hier(k);
		struct ca_ocsp_answer ans[] = {
			{ CA_OCSP_GOOD, 0, -1, p, p + 3600 },
			{ CA_OCSP_REVOKED, p - 100, 1, p, p + 3600 },
			{ CA_OCSP_REVOKED, p - 100, -1, p, p + 3600 },
			{ CA_OCSP_REVOKED, p - 100, 0, p, 0 },
			{ CA_OCSP_UNKNOWN, 0, -1, p, p + 60 },
		};

		for (size_t d = 0; d < sizeof(digs) / sizeof(digs[0]); d++) {
			for (int nonce = 0; nonce < 2; nonce++) {
				struct mca_buf rq, rs = { 0 };
				struct ca_ocsp_req *req = NULL;
				char serial[CA_SERIAL_HEX_MAX];
				bool ours = false;

				ocsp_req_make(h, digs[d], nonce, 1, &rq);
				assert_rc(ca_ocsp_req_parse(rq.data, rq.len, &req), MCA_OK);
				assert_int_equal(ca_ocsp_req_has_nonce(req), nonce);
				assert_rc(ca_ocsp_req_serial(req, h->signer, serial, &ours), MCA_OK);
				assert_true(ours);
				assert_string_equal(serial, h->leaf.serial);
				/* Not ours for another CA. */
				assert_rc(ca_ocsp_req_serial(req, hier(-1)->signer, serial, &ours),
				    MCA_OK);
				assert_false(ours);
				for (size_t i = 0; i < sizeof(ans) / sizeof(ans[0]); i++) {
					assert_rc(ca_ocsp_respond(h->signer, req, &ans[i], p, &rs),
					    MCA_OK);
					ocsp_check(h, &rq, &rs, &ans[i], p);
				}
				ca_ocsp_req_free(req);
				mca_buf_free(&rq);
				mca_buf_free(&rs);
			}
		}
	}
}

/* A response for someone else's CertID is signed by us, fine for GnuTLS, and
 * does not verify against the other CA. */
static void
test_ocsp_foreign(void **state)
{
	struct hier *h = hier(0), *o = hier(-1);
	struct ca_ocsp_answer a = { CA_OCSP_UNKNOWN, 0, -1, F.now, F.now + 60 };
	struct ca_ocsp_req *req = NULL;
	struct mca_buf rq, rs = { 0 };
	char serial[CA_SERIAL_HEX_MAX];
	bool ours = true;
	gnutls_ocsp_resp_t resp;
	unsigned int verify = 0;

	(void)state;
	ocsp_req_make(o, GNUTLS_DIG_SHA1, true, 1, &rq);
	assert_rc(ca_ocsp_req_parse(rq.data, rq.len, &req), MCA_OK);
	assert_rc(ca_ocsp_req_serial(req, h->signer, serial, &ours), MCA_OK);
	assert_false(ours);
	assert_string_equal(serial, o->leaf.serial);
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_OK);
	resp = ocsp_resp_import(&rs);
	assert_int_equal(gnutls_ocsp_resp_verify_direct(resp, h->int_crt, &verify, 0), 0);
	assert_int_equal(verify, 0);
	assert_int_equal(gnutls_ocsp_resp_check_crt(resp, 0, o->leaf_crt), 0);
	verify = 0;
	assert_int_equal(gnutls_ocsp_resp_verify_direct(resp, o->int_crt, &verify, 0), 0);
	assert_int_not_equal(verify, 0);
	gnutls_ocsp_resp_deinit(resp);
	ca_ocsp_req_free(req);
	mca_buf_free(&rq);
	mca_buf_free(&rs);
}

static void
test_ocsp_openssl(void **state)
{
	const char *reqp = tmp_path("ocsp.req"), *respp = tmp_path("ocsp.resp");
	struct ca_ocsp_answer good = { CA_OCSP_GOOD, 0, -1, F.now, F.now + 3600 };
	struct ca_ocsp_answer rev = { CA_OCSP_REVOKED, F.now - 10, 1, F.now, F.now + 3600 };

	(void)state;
	if (!have_tool("openssl"))
		skip();
	for (int k = 0; k < NKEYS; k++) {
		struct hier *h = hier(k);
		struct mca_buf rq, rs = { 0 }, o;
		struct ca_ocsp_req *req = NULL;

		/* OpenSSL builds the request itself, with its nonce. */
		run_ok(&o, "openssl ocsp -issuer '%s' -cert '%s' -reqout '%s' "
		    "2>&1", h->int_path, h->leaf_path, reqp);
		mca_buf_free(&o);
		mca_buf_init(&rq, CA_OCSP_MAX_REQUEST * 2, false);
		assert_rc(mca_file_read(reqp, CA_OCSP_MAX_REQUEST * 2, &rq), MCA_OK);
		assert_rc(ca_ocsp_req_parse(rq.data, rq.len, &req), MCA_OK);
		assert_true(ca_ocsp_req_has_nonce(req));
		for (int i = 0; i < 2; i++) {
			assert_rc(ca_ocsp_respond(h->signer, req, i ? &rev : &good, F.now, &rs),
			    MCA_OK);
			write_bytes(respp, rs.data, rs.len);
			/* The request it sent: nonce checked, signature verified. */
			run_ok(&o, "openssl ocsp -reqin '%s' -respin '%s' -CAfile '%s' "
			    "-resp_text 2>&1", reqp, respp, h->root_path);
			if (strstr((char *)o.data, "Response verify OK") == NULL)
				fail_msg("%s: %s", h->tag, (char *)o.data);
			assert_null(strstr((char *)o.data, "Nonce"" Verify error"));
			assert_null(strstr((char *)o.data, "WARNING"));
			if (i == 0) {
				assert_non_null(strstr((char *)o.data, "Cert Status: good"));
			} else {
				assert_non_null(strstr((char *)o.data, "Cert Status: revoked"));
				assert_non_null(strstr((char *)o.data,
				    "Revocation Reason: keyCompromise (0x1)"));
			}
			mca_buf_free(&o);
			/* Matched to the certificate by its CertID. */
			run_ok(&o, "openssl ocsp -respin '%s' -issuer '%s' -cert '%s' -CAfile '%s' "
			    "-no_nonce 2>&1", respp, h->int_path, h->leaf_path, h->root_path);
			assert_non_null(strstr((char *)o.data, i == 0 ? "-leaf.pem: good" :
			    "-leaf.pem: revoked"));
			mca_buf_free(&o);
		}
		ca_ocsp_req_free(req);
		mca_buf_free(&rq);
		mca_buf_free(&rs);
	}
}

static void
test_ocsp_error_responses(void **state)
{
	static const enum ca_ocsp_error st[] = { CA_OCSP_MALFORMED_REQUEST,
		CA_OCSP_INTERNAL_ERROR, CA_OCSP_TRY_LATER, CA_OCSP_UNAUTHORIZED };
	struct mca_buf out = { 0 };
	gnutls_ocsp_resp_t resp;
	gnutls_datum_t d;

	(void)state;
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		assert_rc(ca_ocsp_error_response(st[i], &out), MCA_OK);
		/* OCSPResponse ::= SEQUENCE { ENUMERATED status } and nothing else. */
		assert_int_equal(out.len, 5);
		assert_int_equal(out.data[0], 0x30);
		assert_int_equal(out.data[2], 0x0a);
		assert_int_equal(out.data[4], st[i]);
		assert_int_equal(gnutls_ocsp_resp_init(&resp), 0);
		d.data = out.data;
		d.size = (unsigned int)out.len;
		assert_int_equal(gnutls_ocsp_resp_import(resp, &d), 0);
		assert_int_equal(gnutls_ocsp_resp_get_status(resp), (int)st[i]);
		gnutls_ocsp_resp_deinit(resp);
	}
	assert_rc(ca_ocsp_error_response((enum ca_ocsp_error)0, &out), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_error_response((enum ca_ocsp_error)4, &out), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_error_response((enum ca_ocsp_error)5, &out), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_error_response(CA_OCSP_TRY_LATER, NULL), MCA_ERR_INVALID);
	mca_buf_free(&out);
}

static void
test_ocsp_respond_refuses(void **state)
{
	struct hier *h = hier(0);
	struct ca_ocsp_req *req = NULL;
	struct mca_buf rq, rs = { 0 };
	struct ca_ocsp_answer a = { CA_OCSP_REVOKED, F.now, 7, F.now, F.now + 60 };

	(void)state;
	ocsp_req_make(h, GNUTLS_DIG_SHA1, false, 1, &rq);
	assert_rc(ca_ocsp_req_parse(rq.data, rq.len, &req), MCA_OK);
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_ERR_INVALID);
	a.reason = 11;
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_ERR_INVALID);
	a.reason = -2;
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_ERR_INVALID);
	a.reason = 1;
	a.next_update = F.now - 1;
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_ERR_INVALID);
	a.next_update = F.now + 60;
	a.status = (enum ca_ocsp_status)3;
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_ERR_INVALID);
	a.status = CA_OCSP_GOOD;
	assert_rc(ca_ocsp_respond(NULL, req, &a, F.now, &rs), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_respond(h->signer, NULL, &a, F.now, &rs), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_respond(h->signer, req, NULL, F.now, &rs), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, NULL), MCA_ERR_INVALID);
	assert_rc(ca_ocsp_respond(h->signer, req, &a, -1, &rs), MCA_ERR_INVALID);
	assert_int_equal(rs.len, 0);
	ca_ocsp_req_free(req);
	mca_buf_free(&rq);
}

/* ---- hostile OCSP requests -------------------------------------------- */

static void
parse_fails(const unsigned char *p, size_t n, enum mca_err want)
{
	struct ca_ocsp_req *req = (struct ca_ocsp_req *)&req;	/* must be reset */

	assert_rc(ca_ocsp_req_parse(p, n, &req), want);
	assert_null(req);
}

static void
test_ocsp_hostile(void **state)
{
	struct hier *h = hier(0);
	struct mca_buf rq, big = { 0 };
	unsigned char rnd[512];

	(void)state;
	parse_fails(NULL, 0, MCA_ERR_PARSE);
	parse_fails((const unsigned char *)"", 0, MCA_ERR_PARSE);
	parse_fails((const unsigned char *)"\x30\x00", 2, MCA_ERR_PARSE);
	assert_rc(ca_ocsp_req_parse((const unsigned char *)"x", 1, NULL), MCA_ERR_INVALID);
	/* Truncated at every length, and with trailing garbage. */
	ocsp_req_make(h, GNUTLS_DIG_SHA1, true, 1, &rq);
	for (size_t n = 1; n < rq.len; n++)
		parse_fails(rq.data, n, MCA_ERR_PARSE);
	assert_rc(mca_buf_append(&rq, "\x00", 1), MCA_OK);
	parse_fails(rq.data, rq.len, MCA_ERR_PARSE);
	/* Every single-byte corruption parses or fails cleanly. */
	rq.len--;
	for (size_t i = 0; i < rq.len; i++) {
		struct ca_ocsp_req *req = NULL;
		unsigned char saved = rq.data[i];

		rq.data[i] ^= 0xff;
		if (ca_ocsp_req_parse(rq.data, rq.len, &req) == MCA_OK) {
			char serial[CA_SERIAL_HEX_MAX];
			bool ours;

			assert_rc(ca_ocsp_req_serial(req, h->signer, serial, &ours), MCA_OK);
		}
		ca_ocsp_req_free(req);
		rq.data[i] = saved;
	}
	mca_buf_free(&rq);
	/* Random bytes, with and without a plausible SEQUENCE header. */
	for (int i = 0; i < 2000; i++) {
		size_t n = 1 + (size_t)(i % (int)sizeof(rnd));
		struct ca_ocsp_req *req = NULL;

		assert_int_equal(gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)), 0);
		if (i % 2) {
			rnd[0] = 0x30;
			rnd[1] = (unsigned char)(n > 2 ? (n - 2 < 128 ? n - 2 : 0x81) : 0);
		}
		assert_int_not_equal(ca_ocsp_req_parse(rnd, n, &req), MCA_OK);
		assert_null(req);
	}
	/* Two requests in one. */
	ocsp_req_make(h, GNUTLS_DIG_SHA1, false, 2, &rq);
	parse_fails(rq.data, rq.len, MCA_ERR_PARSE);
	mca_buf_free(&rq);
	/* No request at all. */
	ocsp_req_make(h, GNUTLS_DIG_SHA1, true, 0, &rq);
	parse_fails(rq.data, rq.len, MCA_ERR_PARSE);
	mca_buf_free(&rq);
	/* Oversize. */
	mca_buf_init(&big, 0, false);
	for (int i = 0; i <= CA_OCSP_MAX_REQUEST; i++)
		assert_rc(mca_buf_append(&big, "\x30", 1), MCA_OK);
	parse_fails(big.data, big.len, MCA_ERR_TOOBIG);
	parse_fails(big.data, SIZE_MAX, MCA_ERR_TOOBIG);
	mca_buf_free(&big);
}

/* Requests with unusual but well-formed contents. */
static void
test_ocsp_odd_requests(void **state)
{
	static const unsigned char sha1_oid[] = { 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a };
	struct hier *h = hier(0);
	struct ca_ocsp_req *req = NULL;
	gnutls_ocsp_req_t g;
	gnutls_datum_t der = { NULL, 0 }, v;
	struct mca_buf rq, rs = { 0 };
	struct ca_ocsp_answer a = { CA_OCSP_UNKNOWN, 0, -1, F.now, F.now + 60 };
	unsigned char *p, nonce[40];
	char serial[CA_SERIAL_HEX_MAX];
	bool ours = true;
	enum mca_err rc;

	(void)state;
	/* An unknown hash algorithm (SHA-1's OID, last arc changed): not ours. */
	ocsp_req_make(h, GNUTLS_DIG_SHA1, false, 1, &rq);
	assert_non_null(p = memmem(rq.data, rq.len, sha1_oid, sizeof(sha1_oid)));
	p[sizeof(sha1_oid) - 1] = 0x7f;
	rc = ca_ocsp_req_parse(rq.data, rq.len, &req);
	if (rc == MCA_OK) {
		assert_rc(ca_ocsp_req_serial(req, h->signer, serial, &ours), MCA_OK);
		assert_false(ours);
		assert_rc(ca_ocsp_respond(h->signer, req, &a, F.now, &rs), MCA_OK);
		/* The CertID comes back byte for byte, unknown OID included. */
		assert_non_null(memmem(rs.data, rs.len, p, sizeof(sha1_oid)));
	} else {
		assert_rc(rc, MCA_ERR_PARSE);
	}
	ca_ocsp_req_free(req);
	req = NULL;
	mca_buf_free(&rq);
	/* MD5 CertID: well-formed, but not a hash meshca matches. */
	ocsp_req_make(h, GNUTLS_DIG_MD5, false, 1, &rq);
	assert_rc(ca_ocsp_req_parse(rq.data, rq.len, &req), MCA_OK);
	assert_rc(ca_ocsp_req_serial(req, h->signer, serial, &ours), MCA_OK);
	assert_false(ours);
	assert_string_equal(serial, h->leaf.serial);
	ca_ocsp_req_free(req);
	req = NULL;
	mca_buf_free(&rq);
	/* RFC 8954: nonces of 1 and 32 octets are fine, 33 is malformed. */
	for (unsigned n = 1; n <= 33; n += 16) {
		unsigned len = n == 33 ? 33 : (n == 17 ? 32 : n);

		assert_int_equal(gnutls_ocsp_req_init(&g), 0);
		assert_int_equal(gnutls_ocsp_req_add_cert(g, GNUTLS_DIG_SHA1, h->int_crt,
		    h->leaf_crt), 0);
		memset(nonce, 0xa5, sizeof(nonce));
		v.data = nonce;
		v.size = len;
		assert_int_equal(gnutls_ocsp_req_set_nonce(g, 0, &v), 0);
		assert_int_equal(gnutls_ocsp_req_export(g, &der), 0);
		rc = ca_ocsp_req_parse(der.data, der.size, &req);
		assert_rc(rc, len <= 32 ? MCA_OK : MCA_ERR_PARSE);
		ca_ocsp_req_free(req);
		req = NULL;
		gnutls_free(der.data);
		der.data = NULL;
		gnutls_ocsp_req_deinit(g);
	}
	/* An unknown critical extension is refused, a non-critical one ignored. */
	for (unsigned crit = 0; crit < 2; crit++) {
		assert_int_equal(gnutls_ocsp_req_init(&g), 0);
		assert_int_equal(gnutls_ocsp_req_add_cert(g, GNUTLS_DIG_SHA1, h->int_crt,
		    h->leaf_crt), 0);
		v.data = (unsigned char *)"\x05\x00";
		v.size = 2;
		assert_int_equal(gnutls_ocsp_req_set_extension(g, "1.3.6.1.4.1.11129.99", crit,
		    &v), 0);
		assert_int_equal(gnutls_ocsp_req_export(g, &der), 0);
		rc = ca_ocsp_req_parse(der.data, der.size, &req);
		assert_rc(rc, crit ? MCA_ERR_PARSE : MCA_OK);
		if (rc == MCA_OK)
			assert_false(ca_ocsp_req_has_nonce(req));
		ca_ocsp_req_free(req);
		req = NULL;
		gnutls_free(der.data);
		der.data = NULL;
		gnutls_ocsp_req_deinit(g);
	}
	assert_false(ca_ocsp_req_has_nonce(NULL));
	ca_ocsp_req_free(NULL);
	mca_buf_free(&rs);
}

/* ---- AIA and CDP on leaves -------------------------------------------- */

static void
test_leaf_revocation_pointers(void **state)
{
	struct hier *h = hier(0);
	const char *crl = "https://ca.mesh.internal:8443/v1/crl";
	const char *ocsp = "https://ca.mesh.internal:8443/v1/ocsp";
	const char *iss = "https://ca.mesh.internal:8443/v1/roots.pem";
	struct ca_leaf_req req = { SPIFFE, "payments", NULL, DAY, F.now, crl, ocsp, iss };
	struct ca_issued leaf = { 0 };
	gnutls_x509_crt_t c;
	gnutls_datum_t d;
	char buf[256];
	size_t len = sizeof(buf);
	unsigned int type = 0, flags = 0, what = 0;
	const char *path = tmp_path("leaf-aia.pem");
	struct mca_buf o;

	(void)state;
	leaf_issue(h, &req, &leaf);
	c = crt_of(&leaf.der);
	assert_int_equal(gnutls_x509_crt_get_crl_dist_points(c, 0, buf, &len, &flags, NULL), 
	    GNUTLS_SAN_URI);
	assert_string_equal(buf, crl);
	len = sizeof(buf);
	assert_int_equal(gnutls_x509_crt_get_crl_dist_points(c, 1, buf, &len, &flags, NULL),
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	assert_int_equal(gnutls_x509_crt_get_authority_info_access(c, 0,
	    GNUTLS_IA_ACCESSMETHOD_OID, &d, NULL), 0);
	assert_string_equal((char *)d.data, GNUTLS_OID_AD_OCSP);
	gnutls_free(d.data);
	assert_int_equal(gnutls_x509_crt_get_authority_info_access(c, 0, GNUTLS_IA_URI, &d,
	    NULL), 0);
	assert_int_equal(d.size, strlen(ocsp));
	assert_memory_equal(d.data, ocsp, d.size);
	gnutls_free(d.data);
	assert_int_equal(gnutls_x509_crt_get_authority_info_access(c, 1,
	    GNUTLS_IA_ACCESSMETHOD_OID, &d, NULL), 0);
	assert_string_equal((char *)d.data, GNUTLS_OID_AD_CAISSUERS);
	gnutls_free(d.data);
	assert_int_equal(gnutls_x509_crt_get_authority_info_access(c, 1, GNUTLS_IA_URI, &d,
	    NULL), 0);
	assert_memory_equal(d.data, iss, d.size);
	gnutls_free(d.data);
	(void)type;
	(void)what;
	gnutls_x509_crt_deinit(c);
	if (have_tool("openssl")) {
		write_bytes(path, leaf.pem.data, leaf.pem.len);
		run_ok(&o, "openssl x509 -in '%s' -noout -text 2>&1", path);
		assert_non_null(strstr((char *)o.data, "X509v3 CRL Distribution Points"));
		assert_non_null(strstr((char *)o.data, "URI:https://ca.mesh.internal:8443/v1/crl"));
		assert_non_null(strstr((char *)o.data, "Authority Information Access"));
		assert_non_null(strstr((char *)o.data,
		    "OCSP - URI:https://ca.mesh.internal:8443/v1/ocsp"));
		assert_non_null(strstr((char *)o.data,
		    "CA Issuers - URI:https://ca.mesh.internal:8443/v1/roots.pem"));
		mca_buf_free(&o);
	}
	ca_issued_clear(&leaf);

	/* Only the OCSP URL: AIA with one access description, no CDP. */
	req.crl_url = NULL;
	req.ca_issuers_url = NULL;
	leaf_issue(h, &req, &leaf);
	c = crt_of(&leaf.der);
	len = sizeof(buf);
	assert_int_equal(gnutls_x509_crt_get_crl_dist_points(c, 0, buf, &len, &flags, NULL),
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	assert_int_equal(gnutls_x509_crt_get_authority_info_access(c, 1, GNUTLS_IA_URI, &d,
	    NULL), GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	gnutls_x509_crt_deinit(c);
	ca_issued_clear(&leaf);

	/* Neither: both extensions absent (the default leaf of the fixture). */
	len = sizeof(buf);
	assert_int_equal(gnutls_x509_crt_get_crl_dist_points(h->leaf_crt, 0, buf, &len, &flags,
	    NULL), GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	assert_int_equal(gnutls_x509_crt_get_authority_info_access(h->leaf_crt, 0,
	    GNUTLS_IA_URI, &d, NULL), GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	if (have_tool("openssl")) {
		assert_int_equal(run(&o, "openssl x509 -in '%s' -noout -text 2>&1", h->leaf_path),
		    0);
		assert_null(strstr((char *)o.data, "CRL Distribution Points"));
		assert_null(strstr((char *)o.data, "Authority Information Access"));
		mca_buf_free(&o);
	}
}

static void
test_leaf_bad_urls(void **state)
{
	static const char *const bad[] = { "", "ftp://x/crl", "ca.mesh.internal/crl",
		"https://ca/ crl", "https://ca/\ncrl", "https://ca/\xc3\xa9", "javascript:x" };
	struct hier *h = hier(0);
	struct ca_leaf_req req = { SPIFFE, "payments", NULL, DAY, F.now, NULL, NULL, NULL };
	struct ca_issued leaf = { 0 };
	struct mca_buf pem = { 0 };
	struct ca_csr *csr = NULL;
	char longurl[2100];

	(void)state;
	assert_rc(ca_csr_create(F.leaf_key, "payments", NULL, &pem), MCA_OK);
	assert_rc(ca_csr_parse(pem.data, pem.len, &csr), MCA_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int which = 0; which < 3; which++) {
			req.crl_url = which == 0 ? bad[i] : NULL;
			req.ocsp_url = which == 1 ? bad[i] : NULL;
			req.ca_issuers_url = which == 2 ? bad[i] : NULL;
			assert_rc(ca_issue_leaf(h->signer, csr, &req, &leaf), MCA_ERR_INVALID);
		}
	}
	memset(longurl, 'a', sizeof(longurl) - 1);
	memcpy(longurl, "https://", 8);
	longurl[sizeof(longurl) - 1] = '\0';
	req.crl_url = longurl;
	req.ocsp_url = req.ca_issuers_url = NULL;
	assert_rc(ca_issue_leaf(h->signer, csr, &req, &leaf), MCA_ERR_INVALID);
	req.crl_url = "http://ca.mesh.internal/crl";	/* plain http is allowed */
	assert_rc(ca_issue_leaf(h->signer, csr, &req, &leaf), MCA_OK);
	ca_issued_clear(&leaf);
	ca_csr_free(csr);
	mca_buf_free(&pem);
}

/* ---- concurrency: the ASN.1 definitions load once --------------------- */

static void *
error_response_thread(void *arg)
{
	struct mca_buf out = { 0 };
	intptr_t ok = 1;

	(void)arg;
	for (int i = 0; i < 50; i++)
		if (ca_ocsp_error_response(CA_OCSP_TRY_LATER, &out) != MCA_OK || out.len != 5)
			ok = 0;
	mca_buf_free(&out);
	return (void *)ok;
}

static void
test_asn1_threads(void **state)
{
	pthread_t t[8];
	void *ok;

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, error_response_thread, NULL), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], &ok), 0);
		assert_true((intptr_t)ok == 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_asn1_threads),	/* first: races the one-time load */
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_crl_gnutls),
		cmocka_unit_test(test_crl_empty_and_times),
		cmocka_unit_test(test_crl_refuses),
		cmocka_unit_test(test_crl_openssl_certtool),
		cmocka_unit_test(test_ocsp_gnutls),
		cmocka_unit_test(test_ocsp_foreign),
		cmocka_unit_test(test_ocsp_openssl),
		cmocka_unit_test(test_ocsp_error_responses),
		cmocka_unit_test(test_ocsp_respond_refuses),
		cmocka_unit_test(test_ocsp_hostile),
		cmocka_unit_test(test_ocsp_odd_requests),
		cmocka_unit_test(test_leaf_revocation_pointers),
		cmocka_unit_test(test_leaf_bad_urls),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
