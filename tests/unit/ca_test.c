/*
 * Unit tests for ca/, the signing core.  Certificates are checked with
 * GnuTLS directly, field by field, never through ca/'s own accessors
 * alone.  Fixtures live in $MESHCA_TEST_DATA/ca (see its README).
 */
#include <dirent.h>
#include <limits.h>
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
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <gnutls/x509-ext.h>

#include "ca/ca.h"
#include "ca/common/buf.h"
#include "ca/common/fileio.h"

#define TD		"mesh.internal"
#define SPIFFE		"spiffe://mesh.internal/svc/payments"
#define DAY		86400

#define assert_rc(expr, want) do {						\
	enum mca_err r_ = (expr);						\
	if (r_ != (want))							\
		fail_msg("%s: got %s (%s), want %s", #expr, mca_errname(r_),	\
		    mca_err_detail(), mca_errname(want));			\
} while (0)

#define assert_detail_has(s) do {						\
	if (strstr(mca_err_detail(), (s)) == NULL)				\
		fail_msg("detail '%s' lacks '%s'", mca_err_detail(), (s));	\
} while (0)

/* One CA hierarchy shared by the tests, built by group_setup. */
static struct {
	char			 dir[64];
	int64_t			 now;
	struct ca_key		*root_key, *int_key, *leaf_key;
	struct ca_cert		*root, *inter;
	struct ca_signer	*signer;
	char			 root_path[PATH_MAX], int_path[PATH_MAX], int_key_path[PATH_MAX];
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

static const char *
data_path(const char *name)
{
	static char buf[PATH_MAX];
	const char *d = getenv("MESHCA_TEST_DATA");

	snprintf(buf, sizeof(buf), "%s/ca/%s", d != NULL ? d : "tests/data", name);
	return buf;
}

static void
read_data(const char *name, struct mca_buf *b)
{
	mca_buf_init(b, 1024 * 1024, false);
	assert_rc(mca_file_read(data_path(name), 1024 * 1024, b), MCA_OK);
}

static void
write_file(const char *path, const struct mca_buf *b)
{
	assert_rc(mca_file_write_atomic(path, b->data, b->len, 0644), MCA_OK);
}

/* Under valgrind (tests/hardening/valgrind.sh sets MESHCA_TEST_NO_BIG_RSA)
 * generating RSA-3072 and RSA-4096 keys takes minutes: the same code runs
 * with RSA-2048 there, and with every size in the plain and ASan runs. */
static bool
big_rsa_skipped(enum ca_key_type t)
{
	return (t == CA_KEY_RSA_3072 || t == CA_KEY_RSA_4096) &&
	    getenv("MESHCA_TEST_NO_BIG_RSA") != NULL;
}

/* A CA hierarchy of key type t, written to files (the intermediate's
 * key to kp), opened as a signer. */
static void
hierarchy_make_with(enum ca_key_type t, const char *tag, int64_t root_ttl, int64_t int_ttl,
    const struct ca_name_constraints *nc, char kp[PATH_MAX], struct ca_signer **out)
{
	struct ca_key *rk = NULL, *ik = NULL;
	struct ca_cert *root = NULL, *inter = NULL;
	char rp[PATH_MAX], ip[PATH_MAX];

	snprintf(rp, sizeof(rp), "%s/%s-root.pem", F.dir, tag);
	snprintf(ip, sizeof(ip), "%s/%s-int.pem", F.dir, tag);
	snprintf(kp, PATH_MAX, "%s/%s-int.key", F.dir, tag);
	assert_rc(ca_key_generate(t, &rk), MCA_OK);
	assert_rc(ca_key_generate(t, &ik), MCA_OK);
	assert_rc(ca_root_create(rk, TD, F.now, root_ttl, &root), MCA_OK);
	assert_rc(ca_intermediate_create(root, rk, ik, TD, F.now, int_ttl, nc, &inter), MCA_OK);
	write_file(rp, ca_cert_pem(root));
	write_file(ip, ca_cert_pem(inter));
	assert_rc(ca_key_save(ik, kp, NULL), MCA_OK);
	assert_rc(ca_signer_open(ip, kp, NULL, rp, out), MCA_OK);
	ca_cert_free(root);
	ca_cert_free(inter);
	ca_key_free(rk);
	ca_key_free(ik);
}

static void
hierarchy_make(enum ca_key_type t, const char *tag, struct ca_signer **out)
{
	char kp[PATH_MAX];

	hierarchy_make_with(t, tag, 3650L * DAY, 365L * DAY, NULL, kp, out);
}

static int
group_setup(void **state)
{
	(void)state;
	if (ca_global_init() != MCA_OK)
		return -1;
	snprintf(F.dir, sizeof(F.dir), "/tmp/ca_test.XXXXXX");
	if (mkdtemp(F.dir) == NULL)
		return -1;
	F.now = (int64_t)time(NULL);
	snprintf(F.root_path, sizeof(F.root_path), "%s/root.pem", F.dir);
	snprintf(F.int_path, sizeof(F.int_path), "%s/int.pem", F.dir);
	snprintf(F.int_key_path, sizeof(F.int_key_path), "%s/int.key", F.dir);
	if (ca_key_generate(CA_KEY_ECDSA_P256, &F.root_key) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &F.int_key) != MCA_OK ||
	    ca_key_generate(CA_KEY_ECDSA_P256, &F.leaf_key) != MCA_OK ||
	    ca_root_create(F.root_key, TD, F.now, 3650L * DAY, &F.root) != MCA_OK ||
	    ca_intermediate_create(F.root, F.root_key, F.int_key, TD, F.now, 365L * DAY,
	    NULL, &F.inter) != MCA_OK)
		return -1;
	if (mca_file_write_atomic(F.root_path, ca_cert_pem(F.root)->data,
	    ca_cert_pem(F.root)->len, 0644) != MCA_OK ||
	    mca_file_write_atomic(F.int_path, ca_cert_pem(F.inter)->data,
	    ca_cert_pem(F.inter)->len, 0644) != MCA_OK ||
	    ca_key_save(F.int_key, F.int_key_path, "int-pass") != MCA_OK ||
	    ca_signer_open(F.int_path, F.int_key_path, "int-pass", F.root_path,
	    &F.signer) != MCA_OK) {
		fprintf(stderr, "setup: %s\n", mca_err_detail());
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	struct dirent *e;
	DIR *d;

	(void)state;
	ca_signer_free(F.signer);
	ca_cert_free(F.root);
	ca_cert_free(F.inter);
	ca_key_free(F.root_key);
	ca_key_free(F.int_key);
	ca_key_free(F.leaf_key);
	if ((d = opendir(F.dir)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				unlink(tmp_path(e->d_name));
		closedir(d);
	}
	rmdir(F.dir);
	gnutls_global_deinit();
	return 0;
}

/* ---- GnuTLS-side helpers --------------------------------------------- */

static gnutls_x509_crt_t
crt_import(const struct mca_buf *der)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = { der->data, (unsigned int)der->len };

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER), 0);
	return crt;
}

/* Verifies chain[0..n) up to the trusted root with GnuTLS; returns status. */
static unsigned int
chain_verify(gnutls_x509_crt_t *chain, unsigned n, const struct ca_cert *root)
{
	gnutls_x509_trust_list_t tl;
	gnutls_x509_crt_t r = crt_import(ca_cert_der(root));
	unsigned int status = ~0u;

	assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
	assert_int_equal(gnutls_x509_trust_list_add_cas(tl, &r, 1, 0), 1);
	assert_int_equal(gnutls_x509_trust_list_verify_crt(tl, chain, n, 0, &status, NULL), 0);
	gnutls_x509_trust_list_deinit(tl, 1);	/* frees r */
	return status;
}

static void
key_id_of_crt(gnutls_x509_crt_t crt, unsigned char id[32])
{
	size_t n = 32;

	assert_int_equal(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, id, &n), 0);
}

static void
ski_of(gnutls_x509_crt_t crt, unsigned char *id, size_t *n)
{
	unsigned int crit = 9;

	assert_int_equal(gnutls_x509_crt_get_subject_key_id(crt, id, n, &crit), 0);
	assert_int_equal(crit, 0);	/* RFC 5280 4.2.1.2: MUST NOT be critical */
}

static void
dn_of(gnutls_x509_crt_t crt, char *out, size_t n)
{
	gnutls_datum_t dn = { NULL, 0 };

	assert_int_equal(gnutls_x509_crt_get_dn3(crt, &dn, 0), 0);
	snprintf(out, n, "%s", (const char *)dn.data);
	gnutls_free(dn.data);
}

static struct ca_csr *
csr_make(const struct ca_key *k, const char *cn, const struct ca_sans *sans)
{
	struct mca_buf pem = { 0 };
	struct ca_csr *csr = NULL;

	assert_rc(ca_csr_create(k, cn, sans, &pem), MCA_OK);
	assert_rc(ca_csr_parse(pem.data, pem.len, &csr), MCA_OK);
	mca_buf_free(&pem);
	return csr;
}

static struct ca_csr *
csr_fixture(const char *name)
{
	struct mca_buf b;
	struct ca_csr *csr = NULL;

	read_data(name, &b);
	assert_rc(ca_csr_parse(b.data, b.len, &csr), MCA_OK);
	mca_buf_free(&b);
	return csr;
}

/* ---- key types --------------------------------------------------------- */

static void
test_key_type_names(void **state)
{
	enum ca_key_type t;
	uint32_t m;

	(void)state;
	for (int i = 0; i < CA_KEY_TYPE_MAX; i++) {
		assert_rc(ca_key_type_parse(ca_key_type_name((enum ca_key_type)i), &t), MCA_OK);
		assert_int_equal(t, i);
	}
	assert_string_equal(ca_key_type_name(CA_KEY_ECDSA_P256), "ecdsa-p256");
	assert_string_equal(ca_key_type_name(CA_KEY_RSA_4096), "rsa-4096");
	assert_rc(ca_key_type_parse("ECDSA-P256", &t), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_type_parse("dsa", &t), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_type_parse("", &t), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_type_parse(NULL, &t), MCA_ERR_KEY_TYPE);

	assert_rc(ca_key_mask_parse("ecdsa-p256,ed25519", &m), MCA_OK);
	assert_int_equal(m, CA_KEY_MASK(CA_KEY_ECDSA_P256) | CA_KEY_MASK(CA_KEY_ED25519));
	assert_rc(ca_key_mask_parse(" rsa-2048 , ecdsa-p384 ", &m), MCA_OK);
	assert_int_equal(m, CA_KEY_MASK(CA_KEY_RSA_2048) | CA_KEY_MASK(CA_KEY_ECDSA_P384));
	assert_rc(ca_key_mask_parse("all", &m), MCA_OK);
	assert_int_equal(m, CA_KEY_MASK_ALL);
	m = 12345;
	assert_rc(ca_key_mask_parse("", &m), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_mask_parse("ed25519,", &m), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_mask_parse(",ed25519", &m), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_mask_parse("ed25519,,rsa-2048", &m), MCA_ERR_KEY_TYPE);
	assert_rc(ca_key_mask_parse("ed25519,rsa-1024", &m), MCA_ERR_KEY_TYPE);
	assert_int_equal(m, 12345);	/* untouched on failure */
}

/* ---- private keys ------------------------------------------------------ */

static void
file_mode_is(const char *path, mode_t want)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, want);
}

static bool
file_has(const char *path, const char *needle)
{
	struct mca_buf b;
	bool has;

	mca_buf_init(&b, 65536, false);
	assert_rc(mca_file_read(path, 65536, &b), MCA_OK);
	has = strstr((const char *)b.data, needle) != NULL;
	mca_buf_free(&b);
	return has;
}

/* Same public key: compared through CSRs each key signs. */
static void
keys_same(const struct ca_key *a, const struct ca_key *b)
{
	struct ca_csr *ca = csr_make(a, "a", NULL), *cb = csr_make(b, "b", NULL);
	struct ca_issued ia, ib;
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "x", .sans = NULL, .ttl = 3600, .now = F.now };
	gnutls_x509_crt_t xa, xb;
	unsigned char ida[32], idb[32];

	assert_rc(ca_issue_leaf(F.signer, ca, &req, &ia), MCA_OK);
	assert_rc(ca_issue_leaf(F.signer, cb, &req, &ib), MCA_OK);
	xa = crt_import(&ia.der);
	xb = crt_import(&ib.der);
	key_id_of_crt(xa, ida);
	key_id_of_crt(xb, idb);
	assert_memory_equal(ida, idb, 32);
	gnutls_x509_crt_deinit(xa);
	gnutls_x509_crt_deinit(xb);
	ca_issued_clear(&ia);
	ca_issued_clear(&ib);
	ca_csr_free(ca);
	ca_csr_free(cb);
}

static void
test_key_generate_save_load(void **state)
{
	(void)state;
	for (int i = 0; i < CA_KEY_TYPE_MAX; i++) {
		enum ca_key_type t = (enum ca_key_type)i;
		struct ca_key *k = NULL, *l = NULL;
		const char *plain = tmp_path("plain.key"), *enc = tmp_path("enc.key");

		if (big_rsa_skipped(t))
			continue;
		assert_rc(ca_key_generate(t, &k), MCA_OK);
		assert_int_equal(ca_key_get_type(k), t);

		assert_rc(ca_key_save(k, plain, NULL), MCA_OK);
		file_mode_is(plain, 0600);
		assert_true(file_has(plain, "-----BEGIN PRIVATE KEY-----"));
		assert_rc(ca_key_load(plain, NULL, &l), MCA_OK);
		assert_int_equal(ca_key_get_type(l), t);
		keys_same(k, l);
		ca_key_free(l);
		l = NULL;

		assert_rc(ca_key_save(k, enc, "correct horse"), MCA_OK);
		file_mode_is(enc, 0600);
		assert_true(file_has(enc, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
		assert_rc(ca_key_load(enc, "correct horse", &l), MCA_OK);
		assert_int_equal(ca_key_get_type(l), t);
		keys_same(k, l);
		ca_key_free(l);
		l = NULL;
		assert_rc(ca_key_load(enc, "wrong horse", &l), MCA_ERR_PASSPHRASE);
		assert_null(l);
		assert_rc(ca_key_load(enc, NULL, &l), MCA_ERR_PASSPHRASE);
		assert_null(l);
		assert_int_equal(unlink(plain), 0);
		assert_int_equal(unlink(enc), 0);
		ca_key_free(k);
	}
	assert_rc(ca_key_generate(CA_KEY_TYPE_MAX, &(struct ca_key *){ NULL }), MCA_ERR_INVALID);
}

static void
test_key_save_refusals(void **state)
{
	const char *p = tmp_path("never.key");

	(void)state;
	assert_rc(ca_key_save(F.leaf_key, p, ""), MCA_ERR_PASSPHRASE);
	assert_false(mca_file_exists(p));
	assert_rc(ca_key_save(NULL, p, NULL), MCA_ERR_INVALID);
	assert_rc(ca_key_save(F.leaf_key, "/nonexistent-dir/x.key", NULL), MCA_ERR_IO);
}

static void
test_key_load_fixtures(void **state)
{
	static const struct { const char *file, *pass; enum mca_err rc; enum ca_key_type t; } cases[] = {
		{ "key-rsa2048-pkcs1.pem", NULL, MCA_OK, CA_KEY_RSA_2048 },
		{ "key-p256-sec1.pem", NULL, MCA_OK, CA_KEY_ECDSA_P256 },
		{ "key-ed25519-pkcs8.pem", NULL, MCA_OK, CA_KEY_ED25519 },
		{ "key-p384-pkcs8-enc.pem", "fixture-pass", MCA_OK, CA_KEY_ECDSA_P384 },
		{ "key-p384-pkcs8-enc.pem", "fixture-pas", MCA_ERR_PASSPHRASE, 0 },
		{ "key-p384-pkcs8-enc.pem", NULL, MCA_ERR_PASSPHRASE, 0 },
		{ "key-p521-pkcs8.pem", NULL, MCA_ERR_KEY_TYPE, 0 },
		{ "garbage.bin", NULL, MCA_ERR_PARSE, 0 },
		{ "p256-sans.csr", NULL, MCA_ERR_PARSE, 0 },
		{ "no-such-file.pem", NULL, MCA_ERR_NOT_FOUND, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ca_key *k = NULL;

		assert_rc(ca_key_load(data_path(cases[i].file), cases[i].pass, &k), cases[i].rc);
		if (cases[i].rc == MCA_OK) {
			assert_int_equal(ca_key_get_type(k), cases[i].t);
			ca_key_free(k);
		} else {
			assert_null(k);
		}
	}
	assert_rc(ca_key_load(data_path("key-p384-pkcs8-enc.pem"), NULL, &(struct ca_key *){ NULL }),
	    MCA_ERR_PASSPHRASE);
	assert_detail_has("passphrase");
}

/* ---- bootstrap and signer ---------------------------------------------- */

static void
ca_ext_check(gnutls_x509_crt_t crt, int want_pathlen)
{
	unsigned int crit = 0, ca = 0, ku = 0;
	int pathlen = -2;

	assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
	assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &crit, &ca, &pathlen), 1);
	assert_int_equal(crit, 1);
	assert_int_equal(ca, 1);
	assert_int_equal(pathlen, want_pathlen);
	assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &ku, &crit), 0);
	assert_int_equal(ku, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	assert_int_equal(crit, 1);
}

static void
test_bootstrap_hierarchy(void **state)
{
	gnutls_x509_crt_t root = crt_import(ca_cert_der(F.root));
	gnutls_x509_crt_t inter = crt_import(ca_cert_der(F.inter));
	unsigned char ski[64], aki[64];
	size_t skin = sizeof(ski), akin = sizeof(aki);
	unsigned int status = ~0u, crit = 0;
	char dn[256];

	(void)state;
	ca_ext_check(root, 1);
	ca_ext_check(inter, 0);
	dn_of(root, dn, sizeof(dn));
	assert_string_equal(dn, "CN=meshca root CA,O=" TD);
	dn_of(inter, dn, sizeof(dn));
	assert_string_equal(dn, "CN=meshca intermediate CA,O=" TD);
	assert_true(gnutls_x509_crt_check_issuer(root, root));
	/* The root verifies against itself; the intermediate against the root. */
	assert_int_equal(gnutls_x509_crt_verify(root, &root, 1, 0, &status), 0);
	assert_int_equal(status, 0);
	assert_int_equal(gnutls_x509_crt_verify(inter, &root, 1, 0, &status), 0);
	assert_int_equal(status, 0);
	assert_int_equal(chain_verify(&inter, 1, F.root), 0);
	/* AKI of the intermediate is the root's SKI. */
	ski_of(root, ski, &skin);
	assert_int_equal(gnutls_x509_crt_get_authority_key_id(inter, aki, &akin, &crit), 0);
	assert_int_equal(crit, 0);
	assert_int_equal(akin, skin);
	assert_memory_equal(aki, ski, skin);
	skin = sizeof(ski);
	ski_of(inter, ski, &skin);
	assert_int_equal(skin, 20);
	/* Backdated by 60 s; lifetimes as asked. */
	assert_int_equal(ca_cert_not_before(F.root), F.now - 60);
	assert_int_equal(ca_cert_not_after(F.root), F.now + 3650L * DAY);
	assert_int_equal(gnutls_x509_crt_get_activation_time(inter), F.now - 60);
	assert_int_equal(gnutls_x509_crt_get_expiration_time(inter), F.now + 365L * DAY);
	/* Serials are random 16-byte positive integers, different each time. */
	{
		unsigned char s1[32], s2[32];
		size_t n1 = sizeof(s1), n2 = sizeof(s2);

		assert_int_equal(gnutls_x509_crt_get_serial(root, s1, &n1), 0);
		assert_int_equal(gnutls_x509_crt_get_serial(inter, s2, &n2), 0);
		assert_int_equal(n1, 16);
		assert_int_equal(n2, 16);
		assert_int_equal(s1[0] & 0x80, 0);
		assert_int_equal(s2[0] & 0x80, 0);
		assert_memory_not_equal(s1, s2, 16);
	}
	gnutls_x509_crt_deinit(root);
	gnutls_x509_crt_deinit(inter);
}

static void
test_bootstrap_refusals(void **state)
{
	struct ca_cert *c = NULL;

	(void)state;
	/* notAfter capped at the root's. */
	assert_rc(ca_intermediate_create(F.root, F.root_key, F.int_key, TD, F.now,
	    100L * 365 * DAY, NULL, &c), MCA_OK);
	assert_int_equal(ca_cert_not_after(c), ca_cert_not_after(F.root));
	ca_cert_free(c);
	c = NULL;
	/* The root key must be the root certificate's. */
	assert_rc(ca_intermediate_create(F.root, F.int_key, F.int_key, TD, F.now, DAY, NULL, &c),
	    MCA_ERR_CRYPTO);
	assert_null(c);
	assert_rc(ca_root_create(F.root_key, "Mesh.Internal", F.now, DAY, &c), MCA_ERR_NAME);
	assert_rc(ca_root_create(F.root_key, "", F.now, DAY, &c), MCA_ERR_NAME);
	assert_rc(ca_root_create(F.root_key, "a,CN=evil", F.now, DAY, &c), MCA_ERR_NAME);
	assert_rc(ca_root_create(F.root_key, TD, F.now, 0, &c), MCA_ERR_TTL);
	assert_rc(ca_root_create(F.root_key, TD, F.now, -5, &c), MCA_ERR_TTL);
	assert_rc(ca_root_create(NULL, TD, F.now, DAY, &c), MCA_ERR_INVALID);
	/* A root that already expired cannot issue an intermediate. */
	assert_rc(ca_root_create(F.root_key, TD, F.now - 10 * DAY, DAY, &c), MCA_OK);
	{
		struct ca_cert *i = NULL;

		assert_rc(ca_intermediate_create(c, F.root_key, F.int_key, TD, F.now, DAY, NULL, &i),
		    MCA_ERR_TTL);
		assert_null(i);
	}
	ca_cert_free(c);
}

static void
test_signer_open(void **state)
{
	struct ca_signer *s = NULL;
	struct ca_key *other = NULL;
	struct ca_cert *root2 = NULL;
	const char *ok = tmp_path("other.key"), *r2 = tmp_path("root2.pem");

	(void)state;
	/* Chain and bundle are the intermediate's and the root's PEM. */
	assert_int_equal(ca_signer_chain_pem(F.signer)->len, ca_cert_pem(F.inter)->len);
	assert_memory_equal(ca_signer_chain_pem(F.signer)->data, ca_cert_pem(F.inter)->data,
	    ca_cert_pem(F.inter)->len);
	assert_memory_equal(ca_signer_roots_pem(F.signer)->data, ca_cert_pem(F.root)->data,
	    ca_cert_pem(F.root)->len);
	assert_memory_equal(ca_cert_der(ca_signer_cert(F.signer))->data,
	    ca_cert_der(F.inter)->data, ca_cert_der(F.inter)->len);
	assert_memory_equal(ca_cert_der(ca_signer_root(F.signer))->data,
	    ca_cert_der(F.root)->data, ca_cert_der(F.root)->len);
	assert_true(strncmp((const char *)ca_signer_chain_pem(F.signer)->data,
	    "-----BEGIN CERTIFICATE-----", 27) == 0);

	/* Wrong or missing passphrase for the encrypted key. */
	assert_rc(ca_signer_open(F.int_path, F.int_key_path, "nope", F.root_path, &s),
	    MCA_ERR_PASSPHRASE);
	assert_rc(ca_signer_open(F.int_path, F.int_key_path, NULL, F.root_path, &s),
	    MCA_ERR_PASSPHRASE);
	/* A key that is not the intermediate's. */
	assert_rc(ca_key_generate(CA_KEY_ECDSA_P256, &other), MCA_OK);
	assert_rc(ca_key_save(other, ok, NULL), MCA_OK);
	assert_rc(ca_signer_open(F.int_path, ok, NULL, F.root_path, &s), MCA_ERR_CRYPTO);
	assert_detail_has("RFC 5280");
	/* A root that did not sign the intermediate. */
	assert_rc(ca_root_create(other, TD, F.now, DAY, &root2), MCA_OK);
	write_file(r2, ca_cert_pem(root2));
	assert_rc(ca_signer_open(F.int_path, F.int_key_path, "int-pass", r2, &s), MCA_ERR_CRYPTO);
	assert_detail_has("chain");
	/* The root certificate with the intermediate's key: key mismatch. */
	assert_rc(ca_signer_open(F.root_path, F.int_key_path, "int-pass", F.root_path, &s),
	    MCA_ERR_CRYPTO);
	assert_rc(ca_signer_open(data_path("nope.pem"), ok, NULL, F.root_path, &s),
	    MCA_ERR_NOT_FOUND);
	assert_rc(ca_signer_open(data_path("garbage.bin"), ok, NULL, F.root_path, &s),
	    MCA_ERR_CERT_PARSE);
	assert_null(s);
	ca_cert_free(root2);
	ca_key_free(other);
}

/* ---- issuance ---------------------------------------------------------- */

struct sans_seen {
	int	uri, dns, ip, other;
	char	uri_val[256];
	char	dns_val[4][256];
	unsigned char ip_val[4][16];
	size_t	ip_len[4];
};

static void
sans_collect(gnutls_x509_crt_t crt, struct sans_seen *s)
{
	char buf[256];
	size_t n;
	unsigned int type;
	int r;

	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; ; i++) {
		n = sizeof(buf);
		r = gnutls_x509_crt_get_subject_alt_name2(crt, i, buf, &n, &type, NULL);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		assert_true(r >= 0);
		if (type == GNUTLS_SAN_URI) {
			memcpy(s->uri_val, buf, sizeof(s->uri_val));
			s->uri++;
		} else if (type == GNUTLS_SAN_DNSNAME && s->dns < 4) {
			memcpy(s->dns_val[s->dns++], buf, 256);
		} else if (type == GNUTLS_SAN_IPADDRESS && s->ip < 4) {
			memcpy(s->ip_val[s->ip], buf, n);
			s->ip_len[s->ip++] = n;
		} else {
			s->other++;
		}
	}
}

static void
leaf_ext_check(gnutls_x509_crt_t crt)
{
	unsigned int crit = 9, ca = 9, ku = 0;
	char oid[128];
	size_t n;
	int nexts = 0;

	assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &crit, &ca, NULL), 0);
	assert_int_equal(crit, 1);
	assert_int_equal(ca, 0);
	assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &ku, &crit), 0);
	assert_int_equal(ku, GNUTLS_KEY_DIGITAL_SIGNATURE);
	assert_int_equal(crit, 1);
	n = sizeof(oid);
	assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid, &n, &crit), 0);
	assert_string_equal(oid, GNUTLS_KP_TLS_WWW_SERVER);
	assert_int_equal(crit, 0);
	n = sizeof(oid);
	assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 1, oid, &n, &crit), 0);
	assert_string_equal(oid, GNUTLS_KP_TLS_WWW_CLIENT);
	n = sizeof(oid);
	assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 2, oid, &n, &crit),
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	/* Exactly BC, KU (critical), EKU, SAN, SKI, AKI (not critical: the
	 * subject is not empty, RFC 5280 4.2.1.6): nothing else slips in. */
	for (;; nexts++) {
		n = sizeof(oid);
		if (gnutls_x509_crt_get_extension_info(crt, (unsigned)nexts, oid, &n, &crit) < 0)
			break;
		if (strcmp(oid, "2.5.29.19") == 0 || strcmp(oid, "2.5.29.15") == 0)
			assert_int_equal(crit, 1);
		else if (strcmp(oid, "2.5.29.37") == 0 || strcmp(oid, "2.5.29.17") == 0 ||
		    strcmp(oid, "2.5.29.14") == 0 || strcmp(oid, "2.5.29.35") == 0)
			assert_int_equal(crit, 0);
		else
			fail_msg("unexpected extension %s", oid);
	}
	assert_int_equal(nexts, 6);
}

/* The extension with oid in crt: its DER and criticality (absent: size 0). */
static void
ext_of(gnutls_x509_crt_t crt, const char *oid, gnutls_datum_t *der, unsigned int *crit)
{
	der->data = NULL;
	der->size = 0;
	*crit = 9;
	if (gnutls_x509_crt_get_extension_by_oid2(crt, oid, 0, der, crit) ==
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		der->size = 0;
}

/*
 * The extensions every leaf shares are encoded once per signer
 * (issue.c): each must be byte for byte what GnuTLS's own setters write,
 * in the same order, and follow the URLs each request names, including
 * a change of URLs between two leaves and none at all.
 */
static void
test_leaf_shared_extensions(void **state)
{
	static const char *const oids[] = { "2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.31",
		"1.3.6.1.5.5.7.1.1", "2.5.29.35" };
	static const char *const order[] = { "2.5.29.14", "2.5.29.19", "2.5.29.15", "2.5.29.37",
		"2.5.29.17", "2.5.29.31", "1.3.6.1.5.5.7.1.1", "2.5.29.35" };
	static const char *const urls[][3] = {
		{ "https://ca.example/v1/crl", "https://ca.example/v1/ocsp", "https://ca.example/v1/intermediate.crt" },
		{ "http://other.example/crl", NULL, NULL },
		{ NULL, NULL, NULL },
		{ "https://ca.example/v1/crl", "https://ca.example/v1/ocsp", "https://ca.example/v1/intermediate.crt" },
	};
	gnutls_x509_crt_t inter = crt_import(ca_cert_der(F.inter));
	struct ca_csr *csr = csr_make(F.leaf_key, "ignored", NULL);

	(void)state;
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "payments",
			.ttl = 3600, .now = F.now, .crl_url = urls[u][0], .ocsp_url = urls[u][1],
			.ca_issuers_url = urls[u][2] };
		gnutls_x509_crt_t leaf, ref;
		gnutls_x509_aia_t aia;
		gnutls_datum_t a, b, d;
		unsigned char id[64];
		size_t idn = sizeof(id), n = 0;
		char oid[128];
		size_t oidn;
		unsigned int ca_, cb;
		struct ca_issued out;

		assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
		leaf = crt_import(&out.der);
		/* The reference: GnuTLS's setters, as issue.c used them per leaf. */
		assert_int_equal(gnutls_x509_crt_init(&ref), 0);
		assert_int_equal(gnutls_x509_crt_set_basic_constraints(ref, 0, -1), 0);
		assert_int_equal(gnutls_x509_crt_set_key_usage(ref, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
		assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(ref, GNUTLS_KP_TLS_WWW_SERVER, 0), 0);
		assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(ref, GNUTLS_KP_TLS_WWW_CLIENT, 0), 0);
		if (req.crl_url != NULL)
			assert_int_equal(gnutls_x509_crt_set_crl_dist_points2(ref, GNUTLS_SAN_URI,
			    req.crl_url, (unsigned)strlen(req.crl_url), 0), 0);
		if (req.ocsp_url != NULL) {
			assert_int_equal(gnutls_x509_aia_init(&aia), 0);
			d.data = (unsigned char *)(uintptr_t)req.ocsp_url;
			d.size = (unsigned)strlen(req.ocsp_url);
			assert_int_equal(gnutls_x509_aia_set(aia, GNUTLS_OID_AD_OCSP, GNUTLS_SAN_URI, &d), 0);
			d.data = (unsigned char *)(uintptr_t)req.ca_issuers_url;
			d.size = (unsigned)strlen(req.ca_issuers_url);
			assert_int_equal(gnutls_x509_aia_set(aia, GNUTLS_OID_AD_CAISSUERS, GNUTLS_SAN_URI, &d), 0);
			assert_int_equal(gnutls_x509_ext_export_aia(aia, &d), 0);
			assert_int_equal(gnutls_x509_crt_set_extension_by_oid(ref, GNUTLS_OID_AIA,
			    d.data, d.size, 0), 0);
			gnutls_free(d.data);
			gnutls_x509_aia_deinit(aia);
		}
		assert_int_equal(gnutls_x509_crt_get_subject_key_id(inter, id, &idn, NULL), 0);
		assert_int_equal(gnutls_x509_crt_set_authority_key_id(ref, id, idn), 0);
		for (size_t i = 0; i < sizeof(oids) / sizeof(oids[0]); i++) {
			ext_of(leaf, oids[i], &a, &ca_);
			ext_of(ref, oids[i], &b, &cb);
			if (a.size != b.size || (a.size > 0 && memcmp(a.data, b.data, a.size) != 0) ||
			    ca_ != cb)
				fail_msg("URL set %zu: extension %s differs from GnuTLS's setter", u,
				    oids[i]);
			gnutls_free(a.data);
			gnutls_free(b.data);
		}
		/* Same order as before: SKI, BC, KU, EKU, SAN, then CDP, AIA when set, AKI. */
		for (unsigned idx = 0;; idx++) {
			oidn = sizeof(oid);
			if (gnutls_x509_crt_get_extension_info(leaf, idx, oid, &oidn, NULL) < 0)
				break;
			while (n < sizeof(order) / sizeof(order[0]) && strcmp(order[n], oid) != 0)
				n++;
			if (n == sizeof(order) / sizeof(order[0]))
				fail_msg("URL set %zu: extension %s out of order", u, oid);
		}
		gnutls_x509_crt_deinit(ref);
		gnutls_x509_crt_deinit(leaf);
		ca_issued_clear(&out);
	}
	gnutls_x509_crt_deinit(inter);
	ca_csr_free(csr);
}

static void
test_leaf_profile(void **state)
{
	static const unsigned char v4[4] = { 10, 1, 2, 3 };
	struct ca_sans sans = { 0 };
	struct ca_csr *csr;
	struct ca_issued out;
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "payments", .sans = &sans, .ttl = 3600, .now = F.now };
	gnutls_x509_crt_t leaf, inter = crt_import(ca_cert_der(F.inter));
	gnutls_x509_crt_t chain[2];
	struct sans_seen seen;
	unsigned char serial[32], ski[64], aki[64], id1[32], id2[32];
	size_t n = sizeof(serial), skin = sizeof(ski), akin = sizeof(aki);
	unsigned int crit = 9;
	char dn[256], hex[CA_SERIAL_HEX_MAX];

	(void)state;
	assert_rc(ca_sans_add_dns(&sans, "payments.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&sans, "10.1.2.3", false), MCA_OK);
	csr = csr_make(F.leaf_key, "ignored", NULL);
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
	leaf = crt_import(&out.der);

	assert_int_equal(gnutls_x509_crt_get_version(leaf), 3);
	dn_of(leaf, dn, sizeof(dn));
	assert_string_equal(dn, "CN=payments");
	/* SANs: one URI equal to the SPIFFE ID, the DNS name, the binary IP. */
	sans_collect(leaf, &seen);
	assert_int_equal(seen.uri, 1);
	assert_string_equal(seen.uri_val, SPIFFE);
	assert_int_equal(seen.dns, 1);
	assert_string_equal(seen.dns_val[0], "payments.mesh.internal");
	assert_int_equal(seen.ip, 1);
	assert_int_equal(seen.ip_len[0], 4);
	assert_memory_equal(seen.ip_val[0], v4, 4);
	assert_int_equal(seen.other, 0);
	leaf_ext_check(leaf);
	/* SKI present; AKI is the intermediate's SKI. */
	ski_of(leaf, ski, &skin);
	assert_int_equal(skin, 20);
	skin = sizeof(ski);
	ski_of(inter, ski, &skin);
	assert_int_equal(gnutls_x509_crt_get_authority_key_id(leaf, aki, &akin, &crit), 0);
	assert_int_equal(akin, skin);
	assert_memory_equal(aki, ski, skin);
	/* Serial: 16 bytes, positive, the hex reported. */
	assert_int_equal(gnutls_x509_crt_get_serial(leaf, serial, &n), 0);
	assert_int_equal(n, 16);
	assert_int_equal(serial[0] & 0x80, 0);
	assert_int_not_equal(serial[0], 0);
	mca_hex_encode(serial, n, hex);
	assert_string_equal(hex, out.serial);
	/* Validity. */
	assert_int_equal(gnutls_x509_crt_get_activation_time(leaf), F.now - 60);
	assert_int_equal(gnutls_x509_crt_get_expiration_time(leaf), F.now + 3600);
	assert_int_equal(out.not_before, F.now - 60);
	assert_int_equal(out.not_after, F.now + 3600);
	/* The CSR's key, and a chain GnuTLS accepts. */
	key_id_of_crt(leaf, id1);
	{
		gnutls_x509_crq_t crq;
		struct mca_buf pem = { 0 };
		gnutls_datum_t d;

		assert_rc(ca_csr_create(F.leaf_key, "x", NULL, &pem), MCA_OK);
		d.data = pem.data;
		d.size = (unsigned int)pem.len;
		assert_int_equal(gnutls_x509_crq_init(&crq), 0);
		assert_int_equal(gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM), 0);
		n = sizeof(id2);
		assert_int_equal(gnutls_x509_crq_get_key_id(crq, GNUTLS_KEYID_USE_SHA256, id2, &n), 0);
		gnutls_x509_crq_deinit(crq);
		mca_buf_free(&pem);
	}
	assert_memory_equal(id1, id2, 32);
	chain[0] = leaf;
	chain[1] = inter;
	assert_int_equal(chain_verify(chain, 2, F.root), 0);
	/* PEM is the same certificate. */
	{
		struct ca_cert *c = NULL;

		assert_rc(ca_cert_parse(out.pem.data, out.pem.len, &c), MCA_OK);
		assert_int_equal(ca_cert_der(c)->len, out.der.len);
		assert_memory_equal(ca_cert_der(c)->data, out.der.data, out.der.len);
		assert_string_equal(ca_cert_uri(c), SPIFFE);
		ca_cert_serial_hex(c, hex);
		assert_string_equal(hex, out.serial);
		ca_cert_free(c);
	}
	gnutls_x509_crt_deinit(leaf);
	gnutls_x509_crt_deinit(inter);
	ca_issued_clear(&out);
	assert_null(out.der.data);
	ca_csr_free(csr);
	ca_sans_clear(&sans);
}

static void
test_leaf_ignores_csr_identity(void **state)
{
	struct ca_csr *csr = csr_fixture("p256-sans.csr");
	struct ca_issued out;
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "payments", .sans = NULL, .ttl = 600, .now = F.now };
	struct sans_seen seen;
	gnutls_x509_crt_t leaf;
	char dn[256];

	(void)state;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
	leaf = crt_import(&out.der);
	dn_of(leaf, dn, sizeof(dn));
	assert_string_equal(dn, "CN=payments");	/* not "CN=evil.attacker,O=Evil Corp" */
	sans_collect(leaf, &seen);
	assert_int_equal(seen.uri, 1);
	assert_string_equal(seen.uri_val, SPIFFE);	/* not spiffe://evil.example/admin */
	assert_int_equal(seen.dns, 0);
	assert_int_equal(seen.ip, 0);
	assert_int_equal(seen.other, 0);		/* no e-mail */
	leaf_ext_check(leaf);
	assert_null(memmem(out.der.data, out.der.len, "evil", 4));
	gnutls_x509_crt_deinit(leaf);
	ca_issued_clear(&out);
	ca_csr_free(csr);
}

static void
test_leaf_validity_cap(void **state)
{
	struct ca_csr *csr = csr_make(F.leaf_key, "x", NULL);
	struct ca_issued out;
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "x", .sans = NULL, .ttl = INT64_MAX, .now = F.now };

	(void)state;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
	assert_int_equal(out.not_after, ca_cert_not_after(F.inter));
	{
		gnutls_x509_crt_t leaf = crt_import(&out.der);

		assert_int_equal(gnutls_x509_crt_get_expiration_time(leaf),
		    ca_cert_not_after(F.inter));
		gnutls_x509_crt_deinit(leaf);
	}
	ca_issued_clear(&out);
	req.ttl = 400L * DAY;		/* beyond the intermediate's year */
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
	assert_int_equal(out.not_after, ca_cert_not_after(F.inter));
	ca_issued_clear(&out);
	/* After the intermediate expired nothing is issued. */
	req.now = ca_cert_not_after(F.inter) + 1;
	req.ttl = 3600;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_TTL);
	ca_csr_free(csr);
}

static void
test_leaf_refusals(void **state)
{
	struct ca_csr *csr = csr_make(F.leaf_key, "x", NULL);
	struct ca_sans range = { 0 };
	struct ca_issued out;
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "x", .sans = NULL, .ttl = 3600, .now = F.now };
	char longcn[80];

	(void)state;
	req.ttl = 0;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_TTL);
	req.ttl = -3600;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_TTL);
	req.ttl = 3600;
	req.spiffe_id = NULL;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_SPIFFE_ID);
	req.spiffe_id = "spiffe://mesh.internal/a/../b";
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_SPIFFE_ID);
	req.spiffe_id = SPIFFE;
	req.common_name = NULL;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_INVALID);
	memset(longcn, 'a', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = '\0';
	req.common_name = longcn;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_NAME);
	req.common_name = "a\nb";
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_NAME);
	req.common_name = "x";
	assert_rc(ca_sans_add_ip(&range, "10.0.0.0/8", true), MCA_OK);
	req.sans = &range;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_INVALID);
	assert_null(out.der.data);
	assert_rc(ca_issue_leaf(NULL, csr, &req, &out), MCA_ERR_INVALID);
	assert_rc(ca_issue_leaf(F.signer, NULL, &req, &out), MCA_ERR_INVALID);
	ca_sans_clear(&range);
	ca_csr_free(csr);
}

/* Every CA key type signs, and every accepted CSR key type is certified. */
static void
test_issue_all_key_types(void **state)
{
	static const enum ca_key_type ca_types[] = {
		CA_KEY_ECDSA_P384, CA_KEY_ED25519, CA_KEY_RSA_2048,
	};
	static const char *const csrs[] = {
		"p256-sans.der", "p384.csr", "ed25519.der", "rsa-2048.csr", "rsa-3500.csr",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ca_types) / sizeof(ca_types[0]); i++) {
		struct ca_signer *s = NULL;
		char tag[32];

		snprintf(tag, sizeof(tag), "h%zu", i);
		hierarchy_make(ca_types[i], tag, &s);
		for (size_t j = 0; j < sizeof(csrs) / sizeof(csrs[0]); j++) {
			struct ca_csr *csr = csr_fixture(csrs[j]);
			struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "w", .sans = NULL, .ttl = 3600, .now = F.now };
			struct ca_issued out;
			gnutls_x509_crt_t chain[2];

			assert_rc(ca_issue_leaf(s, csr, &req, &out), MCA_OK);
			chain[0] = crt_import(&out.der);
			chain[1] = crt_import(ca_cert_der(ca_signer_cert(s)));
			assert_int_equal(chain_verify(chain, 2, ca_signer_root(s)), 0);
			gnutls_x509_crt_deinit(chain[0]);
			gnutls_x509_crt_deinit(chain[1]);
			ca_issued_clear(&out);
			ca_csr_free(csr);
		}
		ca_signer_free(s);
	}
}

/* ---- the leaf writer against GnuTLS's setters --------------------------
 *
 * ca_issue_leaf writes a leaf's DER directly (ca/leaf_der.c).  The
 * reference is the builder it replaced: the same leaf (serial, validity,
 * the CSR's key, names, URLs) through GnuTLS's setters, whose
 * TBSCertificate must be the same bytes.  Ed25519 and RSA signatures are
 * deterministic: there the whole certificates must be equal.
 */

#define GENTIME_FROM	2524608000	/* 2050-01-01T00:00:00Z */
#define TIME_LAST	253402300799	/* 9999-12-31T23:59:59Z */

/* A hierarchy valid to 9999-12-31 and the intermediate key for GnuTLS. */
struct ref_ca {
	struct ca_signer	*s;
	gnutls_x509_crt_t	 inter, root;
	gnutls_privkey_t	 key;
	gnutls_digest_algorithm_t dig;
	bool			 deterministic;
};

static gnutls_privkey_t
privkey_from_file(const char *path)
{
	struct mca_buf pem;
	gnutls_x509_privkey_t xk;
	gnutls_privkey_t k;
	gnutls_datum_t d;

	mca_buf_init(&pem, 1024 * 1024, false);
	assert_rc(mca_file_read(path, 1024 * 1024, &pem), MCA_OK);
	d.data = pem.data;
	d.size = (unsigned int)pem.len;
	assert_int_equal(gnutls_x509_privkey_init(&xk), 0);
	assert_int_equal(gnutls_x509_privkey_import2(xk, &d, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
	assert_int_equal(gnutls_privkey_init(&k), 0);
	assert_int_equal(gnutls_privkey_import_x509(k, xk, GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE), 0);
	mca_buf_free(&pem);
	return k;
}

static void
ref_ca_make(enum ca_key_type t, const char *tag, const struct ca_name_constraints *nc,
    struct ref_ca *ca)
{
	char kp[PATH_MAX];

	hierarchy_make_with(t, tag, INT64_MAX, INT64_MAX, nc, kp, &ca->s);
	assert_int_equal(ca_cert_not_after(ca_signer_cert(ca->s)), TIME_LAST);
	ca->inter = crt_import(ca_cert_der(ca_signer_cert(ca->s)));
	ca->root = crt_import(ca_cert_der(ca_signer_root(ca->s)));
	ca->key = privkey_from_file(kp);
	ca->dig = t == CA_KEY_ECDSA_P384 ? GNUTLS_DIG_SHA384 :
	    t == CA_KEY_ED25519 ? GNUTLS_DIG_UNKNOWN : GNUTLS_DIG_SHA256;
	ca->deterministic = t != CA_KEY_ECDSA_P256 && t != CA_KEY_ECDSA_P384;
}

static void
ref_ca_free(struct ref_ca *ca)
{
	ca_signer_free(ca->s);
	gnutls_x509_crt_deinit(ca->inter);
	gnutls_x509_crt_deinit(ca->root);
	gnutls_privkey_deinit(ca->key);
}

/* The SANs as issue.c encoded them before: one list, exported once. */
static void
ref_set_sans(gnutls_x509_crt_t crt, const struct ca_leaf_req *req)
{
	const struct ca_sans *s = req->sans;
	gnutls_subject_alt_names_t names;
	gnutls_datum_t d;

	assert_int_equal(gnutls_subject_alt_names_init(&names), 0);
	d.data = (unsigned char *)(uintptr_t)req->spiffe_id;
	d.size = (unsigned int)strlen(req->spiffe_id);
	assert_int_equal(gnutls_subject_alt_names_set(names, GNUTLS_SAN_URI, &d, NULL), 0);
	for (size_t i = 0; s != NULL && i < s->ndns; i++) {
		d.data = (unsigned char *)s->dns[i];
		d.size = (unsigned int)strlen(s->dns[i]);
		assert_int_equal(gnutls_subject_alt_names_set(names, GNUTLS_SAN_DNSNAME, &d, NULL), 0);
	}
	for (size_t i = 0; s != NULL && i < s->nips; i++) {
		d.data = s->ips[i].addr;
		d.size = s->ips[i].len;
		assert_int_equal(gnutls_subject_alt_names_set(names, GNUTLS_SAN_IPADDRESS, &d, NULL), 0);
	}
	assert_int_equal(gnutls_x509_ext_export_subject_alt_names(names, &d), 0);
	assert_int_equal(gnutls_x509_crt_set_extension_by_oid(crt, GNUTLS_X509EXT_OID_SAN,
	    d.data, d.size, 0), 0);
	gnutls_free(d.data);
	gnutls_subject_alt_names_deinit(names);
}

static void
ref_set_urls(gnutls_x509_crt_t crt, const struct ca_leaf_req *req)
{
	const char *oid[2] = { GNUTLS_OID_AD_OCSP, GNUTLS_OID_AD_CAISSUERS };
	const char *url[2] = { req->ocsp_url, req->ca_issuers_url };
	gnutls_x509_aia_t aia;
	gnutls_datum_t d;

	if (req->crl_url != NULL)
		assert_int_equal(gnutls_x509_crt_set_crl_dist_points2(crt, GNUTLS_SAN_URI,
		    req->crl_url, (unsigned int)strlen(req->crl_url), 0), 0);
	if (url[0] == NULL && url[1] == NULL)
		return;
	assert_int_equal(gnutls_x509_aia_init(&aia), 0);
	for (int i = 0; i < 2; i++) {
		if (url[i] == NULL)
			continue;
		d.data = (unsigned char *)(uintptr_t)url[i];
		d.size = (unsigned int)strlen(url[i]);
		assert_int_equal(gnutls_x509_aia_set(aia, oid[i], GNUTLS_SAN_URI, &d), 0);
	}
	assert_int_equal(gnutls_x509_ext_export_aia(aia, &d), 0);
	assert_int_equal(gnutls_x509_crt_set_extension_by_oid(crt, GNUTLS_OID_AIA, d.data, d.size, 0), 0);
	gnutls_free(d.data);
	gnutls_x509_aia_deinit(aia);
}

/* The leaf through GnuTLS's setters, in the order issue.c called them. */
static void
ref_leaf_build(const struct ref_ca *ca, gnutls_pubkey_t pub, const struct ca_leaf_req *req,
    bool ou, const unsigned char *serial, size_t serial_len, int64_t nb, int64_t na,
    gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	unsigned char id[64];
	size_t idn = sizeof(id);

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, serial_len), 0);
	assert_int_equal(gnutls_x509_crt_set_pubkey(crt, pub), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, (time_t)nb), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, (time_t)na), 0);
	assert_int_equal(gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA1, id, &idn), 0);
	assert_int_equal(gnutls_x509_crt_set_subject_key_id(crt, id, idn), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt, ou ?
	    GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME : GNUTLS_OID_X520_COMMON_NAME, 0,
	    req->common_name, (unsigned int)strlen(req->common_name)), 0);
	assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
	assert_int_equal(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
	assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), 0);
	assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0), 0);
	ref_set_sans(crt, req);
	ref_set_urls(crt, req);
	idn = sizeof(id);
	assert_int_equal(gnutls_x509_crt_get_subject_key_id(ca->inter, id, &idn, NULL), 0);
	assert_int_equal(gnutls_x509_crt_set_authority_key_id(crt, id, idn), 0);
	assert_int_equal(gnutls_x509_crt_privkey_sign(crt, ca->inter, ca->key, ca->dig, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der), 0);
	gnutls_x509_crt_deinit(crt);
}

/* Offset and length of the first element inside the DER SEQUENCE at p
 * (a Certificate's tbsCertificate), or of p itself when inner is false. */
static void
der_span(const unsigned char *p, size_t n, bool inner, size_t *off, size_t *len)
{
	size_t at = 0, l = 0, hl;

	for (int depth = 0; depth < (inner ? 2 : 1); depth++) {
		assert_true(at + 2 <= n);
		hl = 2;
		l = p[at + 1];
		if (l & 0x80) {
			size_t k = l & 0x7f;

			assert_true(k >= 1 && k <= 3 && at + 2 + k <= n);
			l = 0;
			for (size_t i = 0; i < k; i++)
				l = l << 8 | p[at + 2 + i];
			hl += k;
		}
		if (depth == 0 && inner) {
			assert_int_equal(hl + l, n);	/* nothing after the Certificate */
			at += hl;
		}
	}
	assert_true(at + hl + l <= n);
	*off = at;
	*len = hl + l;
}

/* Chain of leaf and intermediate up to the root, whatever the dates. */
static void
ref_chain_verify(const struct ref_ca *ca, gnutls_x509_crt_t leaf)
{
	gnutls_x509_crt_t chain[2] = { leaf, ca->inter };
	unsigned int status = ~0u;

	assert_int_equal(gnutls_x509_crt_list_verify(chain, 2, &ca->root, 1, NULL, 0,
	    GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
	    &status), 0);
	if (status != 0)
		fail_msg("the leaf does not verify: status 0x%x", status);
}

/* Issues req for the CSR csr_data (PEM or DER) and compares the leaf with
 * the reference; nb and na are the dates it must carry. */
static void
ref_compare(const struct ref_ca *ca, const struct mca_buf *csr_data, const struct ca_leaf_req *req,
    bool ou, int64_t nb, int64_t na, const char *what)
{
	struct ca_csr *csr = NULL;
	struct ca_issued out;
	gnutls_x509_crq_t crq;
	gnutls_pubkey_t pub;
	gnutls_x509_crt_t leaf;
	gnutls_datum_t d = { csr_data->data, (unsigned int)csr_data->len }, ref = { NULL, 0 };
	unsigned char serial[32];
	size_t sn = sizeof(serial), ao, al, bo, bl;

	assert_rc(ca_csr_parse(csr_data->data, csr_data->len, &csr), MCA_OK);
	if (ca_issue_leaf(ca->s, csr, req, &out) != MCA_OK)
		fail_msg("%s: ca_issue_leaf: %s", what, mca_err_detail());
	leaf = crt_import(&out.der);
	assert_int_equal(out.not_before, nb);
	assert_int_equal(out.not_after, na);
	assert_int_equal(gnutls_x509_crt_get_activation_time(leaf), nb);
	assert_int_equal(gnutls_x509_crt_get_expiration_time(leaf), na);
	assert_int_equal(gnutls_x509_crt_get_serial(leaf, serial, &sn), 0);
	/* The reference takes the key from the CSR, as GnuTLS reads it. */
	assert_int_equal(gnutls_x509_crq_init(&crq), 0);
	assert_int_equal(gnutls_x509_crq_import(crq, &d, memmem(d.data, d.size, "-----BEGIN", 10) ?
	    GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER), 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_x509_crq(pub, crq, 0), 0);
	ref_leaf_build(ca, pub, req, ou, serial, sn, out.not_before, out.not_after, &ref);
	der_span(out.der.data, out.der.len, true, &ao, &al);
	der_span(ref.data, ref.size, true, &bo, &bl);
	if (al != bl || memcmp(out.der.data + ao, ref.data + bo, al) != 0)
		fail_msg("%s: the TBSCertificate differs from GnuTLS's (%zu vs %zu bytes)", what,
		    al, bl);
	if (ca->deterministic && (out.der.len != ref.size ||
	    memcmp(out.der.data, ref.data, ref.size) != 0))
		fail_msg("%s: the certificate differs from GnuTLS's", what);
	ref_chain_verify(ca, leaf);
	gnutls_free(ref.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crq_deinit(crq);
	gnutls_x509_crt_deinit(leaf);
	ca_issued_clear(&out);
	ca_csr_free(csr);
}

/* Names and URLs of case c; strings live in big (freed by the caller). */
#define REF_NAME_CASES	5
#define REF_URL_LEN	2048

struct ref_strings {
	char	id[CA_MAX_SPIFFE_ID_LEN + 1];
	char	url[3][REF_URL_LEN + 1];
	char	cn[65];
};

static void
long_dns_name(int i, char out[CA_MAX_DNS_LEN + 1])
{
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes (RFC 1035 2.3.4). */
	memset(out, 'a' + i % 26, CA_MAX_DNS_LEN);
	out[0] = (char)('a' + i / 26);
	out[63] = out[127] = out[191] = '.';
	out[CA_MAX_DNS_LEN] = '\0';
}

static void
ref_case(int c, struct ref_strings *b, struct ca_sans *sans, struct ca_leaf_req *req)
{
	char name[CA_MAX_DNS_LEN + 1];

	memset(req, 0, sizeof(*req));
	req->spiffe_id = SPIFFE;
	req->common_name = "payments";
	req->sans = sans;
	switch (c) {
	case 0:		/* no SANs but the URI, no URLs */
		req->sans = NULL;
		req->common_name = "w";
		break;
	case 1:		/* one DNS name, a CRL only; '_' and '@' make a UTF8String */
		assert_rc(ca_sans_add_dns(sans, "payments.mesh.internal", false), MCA_OK);
		req->crl_url = "http://ca.mesh.internal/crl";
		req->common_name = "svc_payments@eu";
		break;
	case 2:		/* everything at its longest */
		for (int i = 0; i < CA_MAX_SANS; i++) {
			long_dns_name(i, name);
			assert_rc(ca_sans_add_dns(sans, name, false), MCA_OK);
		}
		snprintf(b->id, sizeof(b->id), "spiffe://%s/", TD);
		for (size_t n = strlen(b->id); n < CA_MAX_SPIFFE_ID_LEN; n++)
			b->id[n] = n % 64 == 0 ? '/' : 'x';
		b->id[CA_MAX_SPIFFE_ID_LEN] = '\0';
		req->spiffe_id = b->id;
		for (int i = 0; i < 3; i++) {
			snprintf(b->url[i], sizeof(b->url[i]), "https://ca%d.mesh.internal/", i);
			for (size_t n = strlen(b->url[i]); n < REF_URL_LEN; n++)
				b->url[i][n] = 'u';
			b->url[i][REF_URL_LEN] = '\0';
		}
		req->crl_url = b->url[0];
		req->ocsp_url = b->url[1];
		req->ca_issuers_url = b->url[2];
		memset(b->cn, 'c', 64);
		b->cn[64] = '\0';
		req->common_name = b->cn;
		break;
	case 3:		/* a wildcard, IPv4 and IPv6, OCSP only; an apostrophe is
			 * PrintableString for X.680 but UTF8String for GnuTLS */
		assert_rc(ca_sans_add_dns(sans, "a.mesh.internal", false), MCA_OK);
		assert_rc(ca_sans_add_dns(sans, "*.pods.mesh.internal", true), MCA_OK);
		assert_rc(ca_sans_add_ip(sans, "10.1.2.3", false), MCA_OK);
		assert_rc(ca_sans_add_ip(sans, "fd00::1", false), MCA_OK);
		req->ocsp_url = "https://ca.mesh.internal/v1/ocsp";
		req->common_name = "o'brien";
		break;
	default:	/* CA_MAX_SANS with addresses, caIssuers only; PrintableString */
		for (int i = 0; i < CA_MAX_SANS - 2; i++) {
			snprintf(name, sizeof(name), "svc%d.mesh.internal", i);
			assert_rc(ca_sans_add_dns(sans, name, false), MCA_OK);
		}
		assert_rc(ca_sans_add_ip(sans, "192.168.0.1", false), MCA_OK);
		assert_rc(ca_sans_add_ip(sans, "2001:db8::ff", false), MCA_OK);
		req->ca_issuers_url = "https://ca.mesh.internal/v1/intermediate.crt";
		req->common_name = "Payments (eu-west) 2/3: a+b=c?";
		break;
	}
}

/* Validity case t: now and ttl, and the dates the leaf must carry. */
#define REF_TIME_CASES	6

static void
ref_times(int t, struct ca_leaf_req *req, int64_t *nb, int64_t *na)
{
	req->now = F.now;
	req->ttl = 3600;
	switch (t) {
	case 1:		/* the last UTCTime notAfter, RFC 5280 4.1.2.5.1 */
		req->ttl = GENTIME_FROM - 1 - F.now;
		break;
	case 2:		/* the first GeneralizedTime notAfter */
		req->ttl = GENTIME_FROM - F.now;
		break;
	case 3:		/* no well-defined expiration: capped at 9999-12-31T23:59:59Z */
		req->ttl = INT64_MAX;
		break;
	case 4:		/* notBefore the last second of 2049 */
		req->now = GENTIME_FROM - 1 + 60;
		break;
	case 5:		/* notBefore 2050-01-01T00:00:00Z */
		req->now = GENTIME_FROM + 60;
		break;
	}
	*nb = req->now - 60;
	*na = t == 3 ? TIME_LAST : req->now + req->ttl;
}

static void
ref_sweep(const struct ref_ca *ca, const struct mca_buf *csr, int c, int t, const char *tag)
{
	struct ref_strings *b = calloc(1, sizeof(*b));
	struct ca_sans sans = { 0 };
	struct ca_leaf_req req;
	int64_t nb, na;
	char what[128];

	assert_non_null(b);
	ref_case(c, b, &sans, &req);
	ref_times(t, &req, &nb, &na);
	snprintf(what, sizeof(what), "%s, names case %d, time case %d", tag, c, t);
	ref_compare(ca, csr, &req, false, nb, na, what);
	ca_sans_clear(&sans);
	free(b);
}

/* Appends tag, DER length and p[0..n) to b. */
static void
tlv_append(struct mca_buf *b, unsigned char tag, const void *p, size_t n)
{
	unsigned char h[4] = { tag, (unsigned char)n };
	size_t hl = 2;

	assert_true(n <= 0xffff);
	if (n >= 0x80) {
		hl = n <= 0xff ? 3 : 4;
		h[1] = (unsigned char)(0x80 | (hl - 2));
		h[hl - 1] = (unsigned char)n;
		if (hl == 4)
			h[2] = (unsigned char)(n >> 8);
	}
	assert_rc(mca_buf_append(b, h, hl), MCA_OK);
	assert_rc(mca_buf_append(b, p, n), MCA_OK);
}

static const unsigned char rsa_oid[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
	0x01, 0x01, 0x01 };

/* A PKCS#10 request (RFC 2986 4) whose RSA SubjectPublicKeyInfo leaves
 * out the NULL parameters RFC 3279 2.3.1 asks for, signed by its key. */
static void
csr_rsa_no_null(struct mca_buf *out)
{
	static const unsigned char version[] = { 0x02, 0x01, 0x00 };
	static const unsigned char subject[] = { 0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03,
		0x55, 0x04, 0x03, 0x0c, 0x01, 'x' };
	static const unsigned char attrs[] = { 0xa0, 0x00 };
	static const unsigned char sha256_rsa[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
		0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00 };
	gnutls_privkey_t k = privkey_from_file(data_path("key-rsa2048-pkcs1.pem"));
	struct mca_buf alg = { 0 }, spki = { 0 }, cri = { 0 }, body = { 0 }, bits = { 0 };
	gnutls_pubkey_t pub;
	gnutls_datum_t der, sig, d;
	size_t off, len;

	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pub, k, 0, 0), 0);
	assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der), 0);
	der_span(der.data, der.size, true, &off, &len);	/* the AlgorithmIdentifier */
	assert_memory_equal(der.data + off + 2, rsa_oid, sizeof(rsa_oid));
	tlv_append(&alg, 0x30, rsa_oid, sizeof(rsa_oid));
	assert_rc(mca_buf_append(&alg, der.data + off + len, der.size - off - len), MCA_OK);
	tlv_append(&spki, 0x30, alg.data, alg.len);
	assert_rc(mca_buf_append(&body, version, sizeof(version)), MCA_OK);
	assert_rc(mca_buf_append(&body, subject, sizeof(subject)), MCA_OK);
	assert_rc(mca_buf_append(&body, spki.data, spki.len), MCA_OK);
	assert_rc(mca_buf_append(&body, attrs, sizeof(attrs)), MCA_OK);
	tlv_append(&cri, 0x30, body.data, body.len);
	d.data = cri.data;
	d.size = (unsigned int)cri.len;
	assert_int_equal(gnutls_privkey_sign_data2(k, GNUTLS_SIGN_RSA_SHA256, 0, &d, &sig), 0);
	assert_rc(mca_buf_append(&bits, "", 1), MCA_OK);	/* no unused bits */
	assert_rc(mca_buf_append(&bits, sig.data, sig.size), MCA_OK);
	mca_buf_reset(&body);
	assert_rc(mca_buf_append(&body, cri.data, cri.len), MCA_OK);
	assert_rc(mca_buf_append(&body, sha256_rsa, sizeof(sha256_rsa)), MCA_OK);
	tlv_append(&body, 0x03, bits.data, bits.len);
	tlv_append(out, 0x30, body.data, body.len);
	gnutls_free(der.data);
	gnutls_free(sig.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(k);
	mca_buf_free(&alg);
	mca_buf_free(&spki);
	mca_buf_free(&cri);
	mca_buf_free(&body);
	mca_buf_free(&bits);
}

#define REF_CSRS	6

/* The CSR fixtures of every accepted key type, and the RSA one without
 * NULL parameters. */
static void
ref_csrs_load(struct mca_buf csr[REF_CSRS])
{
	static const char *const files[REF_CSRS - 1] = {
		"p256-sans.der", "p384.csr", "ed25519.der", "rsa-2048.csr", "rsa-3500.csr",
	};

	for (int i = 0; i < REF_CSRS - 1; i++)
		read_data(files[i], &csr[i]);
	memset(&csr[REF_CSRS - 1], 0, sizeof(csr[0]));
	csr_rsa_no_null(&csr[REF_CSRS - 1]);
}

/*
 * Intermediates P-256, P-384, Ed25519, RSA-2048 x CSR keys P-256, P-384,
 * Ed25519, RSA-2048, RSA-3500, RSA without NULL parameters x every names
 * case (no SAN, one, CA_MAX_SANS of 253 bytes with 2048-byte URLs and
 * SPIFFE ID, wildcard and IPv4/IPv6, PrintableString and UTF8String
 * CNs), the dates rotating; then every date case for every names case.
 */
static void
test_leaf_der_matches_gnutls(void **state)
{
	static const enum ca_key_type issuers[] = {
		CA_KEY_ECDSA_P256, CA_KEY_ECDSA_P384, CA_KEY_ED25519, CA_KEY_RSA_2048,
	};
	struct mca_buf csr[REF_CSRS];
	struct ref_ca ca;
	char tag[64];

	(void)state;
	ref_csrs_load(csr);
	for (size_t i = 0; i < sizeof(issuers) / sizeof(issuers[0]); i++) {
		snprintf(tag, sizeof(tag), "ref%zu", i);
		ref_ca_make(issuers[i], tag, NULL, &ca);
		for (int j = 0; j < REF_CSRS; j++) {
			snprintf(tag, sizeof(tag), "issuer %s, CSR %d",
			    ca_key_type_name(issuers[i]), j);
			for (int c = 0; c < REF_NAME_CASES; c++)
				ref_sweep(&ca, &csr[j], c, ((int)i + j + c) % REF_TIME_CASES, tag);
		}
		if (issuers[i] == CA_KEY_ED25519)
			for (int c = 0; c < REF_NAME_CASES; c++)
				for (int t = 0; t < REF_TIME_CASES; t++)
					ref_sweep(&ca, &csr[0], c, t, "every date");
		ref_ca_free(&ca);
	}
	for (int j = 0; j < REF_CSRS; j++)
		mca_buf_free(&csr[j]);
}

/* The leaf's SPKI is GnuTLS's canonical encoding, not the CSR's bytes:
 * an RSA key without NULL parameters gets them (RFC 3279 2.3.1). */
static void
test_leaf_der_canonical_spki(void **state)
{
	static const unsigned char oid_null[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
		0x01, 0x01, 0x01, 0x05, 0x00 };
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "w", .ttl = 3600,
		.now = F.now };
	struct mca_buf pem = { 0 };
	struct ca_csr *csr = NULL;
	struct ca_issued out;

	(void)state;
	csr_rsa_no_null(&pem);
	assert_null(memmem(pem.data, pem.len, oid_null, sizeof(oid_null)));
	assert_non_null(memmem(pem.data, pem.len, rsa_oid, sizeof(rsa_oid)));
	assert_rc(ca_csr_parse(pem.data, pem.len, &csr), MCA_OK);
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
	assert_non_null(memmem(out.der.data, out.der.len, oid_null, sizeof(oid_null)));
	ca_issued_clear(&out);
	ca_csr_free(csr);
	mca_buf_free(&pem);
}

/* Revocation pointers are absolute http(s) URIs of printable ASCII of at
 * most 2048 bytes, checked for every leaf before anything is encoded. */
static void
test_leaf_url_refusals(void **state)
{
	static const char *const bad[] = {
		"ftp://ca.mesh.internal/crl", "ca.mesh.internal/crl", "https://ca.mesh.internal/a b",
		"https://ca.mesh.internal/\xc3\xa9", "https://ca.mesh.internal/\x7f", "",
	};
	struct ca_csr *csr = csr_make(F.leaf_key, "x", NULL);
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "x", .ttl = 3600,
		.now = F.now };
	char *longest = malloc(2050);
	struct ca_issued out;

	(void)state;
	assert_non_null(longest);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (int which = 0; which < 3; which++) {
			req.crl_url = which == 0 ? bad[i] : NULL;
			req.ocsp_url = which == 1 ? bad[i] : NULL;
			req.ca_issuers_url = which == 2 ? bad[i] : NULL;
			if (ca_issue_leaf(F.signer, csr, &req, &out) != MCA_ERR_INVALID)
				fail_msg("URL '%s' (%d) accepted", bad[i], which);
			assert_null(out.der.data);
		}
	memcpy(longest, "https://", 8);
	memset(longest + 8, 'a', 2040);
	longest[2048] = '\0';
	req.ocsp_url = req.ca_issuers_url = NULL;
	req.crl_url = longest;
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);	/* 2048 bytes */
	ca_issued_clear(&out);
	longest[2048] = 'a';
	longest[2049] = '\0';
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_ERR_INVALID);
	assert_detail_has("longer than 2048");
	free(longest);
	ca_csr_free(csr);
}

/* Whether the P-256/P-384 key of the request pem has a coordinate shorter
 * than the field (a leading zero byte, about one key in 128). */
static bool
csr_has_short_coordinate(const struct mca_buf *pem)
{
	gnutls_datum_t d = { pem->data, (unsigned int)pem->len }, x, y;
	gnutls_x509_crq_t crq;
	gnutls_pubkey_t pub;
	gnutls_ecc_curve_t curve;
	unsigned int size;
	bool short_;

	assert_int_equal(gnutls_x509_crq_init(&crq), 0);
	assert_int_equal(gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM), 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_pubkey_import_x509_crq(pub, crq, 0), 0);
	assert_int_equal(gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y,
	    GNUTLS_EXPORT_FLAG_NO_LZ), 0);
	size = curve == GNUTLS_ECC_CURVE_SECP256R1 ? 32 : 48;
	short_ = x.size < size || y.size < size;
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crq_deinit(crq);
	return short_;
}

/* SEC 1 2.3.3: each coordinate of the point takes the field's size, with
 * leading zeros; keys with such a coordinate are searched for. */
static void
test_leaf_der_short_coordinates(void **state)
{
	static const enum ca_key_type types[] = { CA_KEY_ECDSA_P256, CA_KEY_ECDSA_P384 };
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "w", .ttl = 3600,
		.now = F.now };
	struct ref_ca ca;

	(void)state;
	ref_ca_make(CA_KEY_ED25519, "refec", NULL, &ca);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct mca_buf pem = { 0 };
		struct ca_key *k = NULL;
		int tries;

		/* P(no hit in 3000) = (254/256)^3000, about 1e-10. */
		for (tries = 0; tries < 3000; tries++) {
			assert_rc(ca_key_generate(types[i], &k), MCA_OK);
			assert_rc(ca_csr_create(k, "x", NULL, &pem), MCA_OK);
			ca_key_free(k);
			if (csr_has_short_coordinate(&pem))
				break;
			mca_buf_free(&pem);
		}
		assert_true(tries < 3000);
		ref_compare(&ca, &pem, &req, false, F.now - 60, F.now + 3600, "short coordinate");
		mca_buf_free(&pem);
	}
	ref_ca_free(&ca);
}

/* Under dNSName constraints a leaf without DNS SANs is OU=<name>, one
 * with them CN=<name> (issue.c, leaf_subject_ou): both as GnuTLS wrote. */
static void
test_leaf_der_ou_subject(void **state)
{
	struct ca_sans perm = { 0 }, sans = { 0 };
	struct ca_name_constraints nc = { TD, &perm };
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "payments", .ttl = 3600,
		.now = F.now };
	struct mca_buf csr;
	struct ref_ca ca;

	(void)state;
	assert_rc(ca_sans_add_dns(&perm, "mesh.internal", false), MCA_OK);
	ref_ca_make(CA_KEY_ED25519, "refnc", &nc, &ca);
	read_data("p256-sans.der", &csr);
	ref_compare(&ca, &csr, &req, true, F.now - 60, F.now + 3600, "OU subject");
	assert_rc(ca_sans_add_dns(&sans, "payments.mesh.internal", false), MCA_OK);
	req.sans = &sans;
	ref_compare(&ca, &csr, &req, false, F.now - 60, F.now + 3600, "CN subject under constraints");
	mca_buf_free(&csr);
	ca_sans_clear(&sans);
	ca_sans_clear(&perm);
	ref_ca_free(&ca);
}

static int
cmp_serial(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_serial_unique(void **state)
{
	enum { N = 1000 };
	static char serials[N][CA_SERIAL_HEX_MAX];
	unsigned char raw[16];
	char hex[CA_SERIAL_HEX_MAX];

	(void)state;
	for (int i = 0; i < N; i++) {
		assert_rc(ca_serial_new(raw, serials[i]), MCA_OK);
		assert_int_equal(strlen(serials[i]), 32);
		assert_int_equal(raw[0] & 0x80, 0);
		assert_true(raw[0] >= 0x40);
		mca_hex_encode(raw, 16, hex);
		assert_string_equal(hex, serials[i]);
	}
	qsort(serials, N, sizeof(serials[0]), cmp_serial);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(serials[i - 1], serials[i]);
}

/* ---- CSRs ---------------------------------------------------------------- */

static void
test_csr_manifest(void **state)
{
	struct mca_buf man;
	char *line, *save = NULL;
	int cases = 0;

	(void)state;
	read_data("csr-manifest.txt", &man);
	for (line = strtok_r((char *)man.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char file[128], want[64], type[32];
		struct ca_csr *csr = NULL;
		struct mca_buf b;
		enum mca_err rc;

		if (line[0] == '#' || sscanf(line, "%127s %63s %31s", file, want, type) != 3)
			continue;
		read_data(file, &b);
		rc = ca_csr_parse(b.data, b.len, &csr);
		mca_buf_free(&b);
		if (strcmp(mca_errname(rc), want) != 0)
			fail_msg("%s: got %s (%s), want %s", file, mca_errname(rc),
			    mca_err_detail(), want);
		if (rc == MCA_OK) {
			assert_string_equal(ca_key_type_name(ca_csr_key_type(csr)), type);
			ca_csr_free(csr);
		} else {
			assert_null(csr);
			assert_true(mca_err_detail()[0] != '\0');
		}
		cases++;
	}
	mca_buf_free(&man);
	assert_true(cases >= 19);
}

static void
test_csr_hostile(void **state)
{
	struct mca_buf good, big = { 0 };
	struct ca_csr *csr = NULL;

	(void)state;
	assert_rc(ca_csr_parse(NULL, 0, &csr), MCA_ERR_CSR_PARSE);
	assert_rc(ca_csr_parse((const unsigned char *)"", 0, &csr), MCA_ERR_CSR_PARSE);
	read_data("p256-sans.csr", &good);
	/* Truncated PEM (armour lost halfway) and a PEM with the END line only. */
	assert_rc(ca_csr_parse(good.data, good.len / 2, &csr), MCA_ERR_CSR_PARSE);
	assert_rc(ca_csr_parse(good.data, 40, &csr), MCA_ERR_CSR_PARSE);
	/* Oversize: refused before any parsing, even if it starts like a CSR. */
	assert_rc(mca_buf_append(&big, good.data, good.len), MCA_OK);
	while (big.len <= CA_CSR_MAX_BYTES)
		assert_rc(mca_buf_append_str(&big, "\n"), MCA_OK);
	assert_rc(ca_csr_parse(big.data, CA_CSR_MAX_BYTES + 1, &csr), MCA_ERR_TOOBIG);
	/* Exactly at the limit is parsed (trailing blank lines after the PEM). */
	assert_rc(ca_csr_parse(big.data, CA_CSR_MAX_BYTES, &csr), MCA_OK);
	ca_csr_free(csr);
	csr = NULL;
	/* Every single-byte truncation of a DER request fails cleanly. */
	{
		struct mca_buf der;

		read_data("p256-sans.der", &der);
		for (size_t n = 1; n < der.len; n++) {
			enum mca_err rc = ca_csr_parse(der.data, n, &csr);

			assert_true(rc == MCA_ERR_CSR_PARSE || rc == MCA_ERR_CSR_SIGNATURE);
			assert_null(csr);
		}
		/* Every bit flip in the signed part is caught. */
		for (size_t i = 4; i < der.len; i += 7) {
			enum mca_err rc;

			der.data[i] ^= 0x04;
			rc = ca_csr_parse(der.data, der.len, &csr);
			der.data[i] ^= 0x04;
			if (rc == MCA_OK)
				fail_msg("flip at %zu accepted", i);
		}
		mca_buf_free(&der);
	}
	ca_csr_free(NULL);
	mca_buf_free(&good);
	mca_buf_free(&big);
}

static void
test_csr_sans(void **state)
{
	static const unsigned char v4[4] = { 10, 0, 0, 5 };
	static const unsigned char v6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	struct ca_csr *csr = csr_fixture("p256-sans.csr");
	struct ca_sans s = { 0 };

	(void)state;
	assert_rc(ca_csr_sans(csr, &s), MCA_OK);
	assert_int_equal(s.ndns, 2);
	assert_string_equal(s.dns[0], "a.mesh.internal");
	assert_string_equal(s.dns[1], "evil.example.com");
	assert_int_equal(s.nips, 2);	/* the URI and e-mail are ignored */
	assert_int_equal(s.ips[0].len, 4);
	assert_int_equal(s.ips[0].prefix, 32);
	assert_memory_equal(s.ips[0].addr, v4, 4);
	assert_int_equal(s.ips[1].len, 16);
	assert_int_equal(s.ips[1].prefix, 128);
	assert_memory_equal(s.ips[1].addr, v6, 16);
	ca_sans_clear(&s);
	ca_csr_free(csr);
	/* No SAN extension at all. */
	csr = csr_fixture("p384.csr");
	assert_rc(ca_csr_sans(csr, &s), MCA_OK);
	assert_int_equal(s.ndns + s.nips, 0);
	ca_csr_free(csr);
}

static void
test_csr_create_roundtrip(void **state)
{
	struct ca_sans in = { 0 }, got = { 0 };
	struct mca_buf pem = { 0 };
	struct ca_csr *csr = NULL;
	char ip[64];

	(void)state;
	assert_rc(ca_sans_add_dns(&in, "x.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&in, "2001:db8::7", false), MCA_OK);
	assert_rc(ca_csr_create(F.leaf_key, "workload", &in, &pem), MCA_OK);
	assert_true(strstr((const char *)pem.data, "BEGIN NEW CERTIFICATE REQUEST") != NULL ||
	    strstr((const char *)pem.data, "BEGIN CERTIFICATE REQUEST") != NULL);
	assert_rc(ca_csr_parse(pem.data, pem.len, &csr), MCA_OK);
	assert_int_equal(ca_csr_key_type(csr), CA_KEY_ECDSA_P256);
	assert_rc(ca_csr_sans(csr, &got), MCA_OK);
	assert_int_equal(got.ndns, 1);
	assert_string_equal(got.dns[0], "x.mesh.internal");
	assert_int_equal(got.nips, 1);
	ca_ip_format(&got.ips[0], ip);
	assert_string_equal(ip, "2001:db8::7");
	assert_rc(ca_csr_check_key(csr, CA_KEY_MASK(CA_KEY_ECDSA_P256)), MCA_OK);
	assert_rc(ca_csr_check_key(csr, CA_KEY_MASK_ALL), MCA_OK);
	assert_rc(ca_csr_check_key(csr, CA_KEY_MASK(CA_KEY_ED25519) | CA_KEY_MASK(CA_KEY_RSA_3072)),
	    MCA_ERR_KEY_TYPE);
	assert_detail_has("ecdsa-p256");
	assert_detail_has("ed25519, rsa-3072");
	ca_csr_free(csr);
	csr = NULL;
	mca_buf_free(&pem);
	/* Ed25519 and RSA keys make requests too. */
	{
		struct ca_key *k = NULL;

		assert_rc(ca_key_generate(CA_KEY_ED25519, &k), MCA_OK);
		csr = csr_make(k, "ed", NULL);
		assert_int_equal(ca_csr_key_type(csr), CA_KEY_ED25519);
		ca_csr_free(csr);
		ca_key_free(k);
	}
	assert_rc(ca_csr_create(F.leaf_key, "", NULL, &pem), MCA_ERR_INVALID);
	assert_rc(ca_csr_create(F.leaf_key, NULL, NULL, &pem), MCA_ERR_INVALID);
	ca_sans_clear(&in);
	ca_sans_clear(&got);
}

/* ---- certificates -------------------------------------------------------- */

static void
test_cert_parse(void **state)
{
	struct mca_buf b;
	struct ca_cert *c = NULL;
	char hex[CA_SERIAL_HEX_MAX], fp[CA_FINGERPRINT_HEX_LEN];

	(void)state;
	assert_rc(ca_cert_load(data_path("cert-one-uri.pem"), &c), MCA_OK);
	ca_cert_serial_hex(c, hex);
	assert_string_equal(hex, "8000000000000000000000000000000001");	/* pad dropped */
	ca_cert_fingerprint(c, fp);
	assert_string_equal(fp, "68125e13cf765337c1bc61f2fafc850d550ab8fc1f02408cb90a97b474d01b84");
	assert_true(ca_fingerprint_equal(fp, "68:12:5E:13:CF:76:53:37:C1:BC:61:F2:FA:FC:85:0D:"
	    "55:0A:B8:FC:1F:02:40:8C:B9:0A:97:B4:74:D0:1B:84"));
	assert_string_equal(ca_cert_uri(c), "spiffe://fixture.test/svc/a");
	assert_int_equal(ca_cert_not_before(c), 1795362153);
	assert_int_equal(ca_cert_not_after(c), 2110722153);
	/* DER cache is the DER of the PEM. */
	assert_true(ca_cert_der(c)->len > 100 && ca_cert_der(c)->data[0] == 0x30);
	assert_true(strncmp((const char *)ca_cert_pem(c)->data, "-----BEGIN CERTIFICATE-----", 27) == 0);
	ca_cert_free(c);
	c = NULL;

	assert_rc(ca_cert_load(data_path("cert-two-uris.der"), &c), MCA_OK);
	assert_null(ca_cert_uri(c));
	ca_cert_serial_hex(c, hex);
	assert_string_equal(hex, "01");
	ca_cert_fingerprint(c, fp);
	assert_true(ca_fingerprint_equal(fp, "76336F419388ADFB4C8E0404246188377F517821AB7F8AD513537BC0B3DABB58"));
	ca_cert_free(c);
	c = NULL;

	/* A root has no URI SAN. */
	assert_null(ca_cert_uri(F.root));
	read_data("garbage.bin", &b);
	assert_rc(ca_cert_parse(b.data, b.len, &c), MCA_ERR_CERT_PARSE);
	assert_rc(ca_cert_parse(b.data, 0, &c), MCA_ERR_CERT_PARSE);
	mca_buf_free(&b);
	read_data("p256-sans.csr", &b);
	assert_rc(ca_cert_parse(b.data, b.len, &c), MCA_ERR_CERT_PARSE);
	mca_buf_free(&b);
	/* Truncated DER of a real certificate. */
	assert_rc(ca_cert_parse(ca_cert_der(F.root)->data, ca_cert_der(F.root)->len - 1, &c),
	    MCA_ERR_CERT_PARSE);
	assert_null(c);
	ca_cert_free(NULL);
}

static void
test_fingerprint_equal(void **state)
{
	const char *a = "68125e13cf765337c1bc61f2fafc850d550ab8fc1f02408cb90a97b474d01b84";

	(void)state;
	assert_true(ca_fingerprint_equal(a, a));
	assert_true(ca_fingerprint_equal(a, "68125E13CF765337C1BC61F2FAFC850D550AB8FC1F02408CB90A97B474D01B84"));
	assert_false(ca_fingerprint_equal(a, "68125e13cf765337c1bc61f2fafc850d550ab8fc1f02408cb90a97b474d01b85"));
	assert_false(ca_fingerprint_equal(a, "68125e13cf765337c1bc61f2fafc850d550ab8fc1f02408cb90a97b474d01b"));
	assert_false(ca_fingerprint_equal(a, "68125e13cf765337c1bc61f2fafc850d550ab8fc1f02408cb90a97b474d01b8400"));
	assert_false(ca_fingerprint_equal(a, "g8125e13cf765337c1bc61f2fafc850d550ab8fc1f02408cb90a97b474d01b84"));
	assert_false(ca_fingerprint_equal(a, ""));
	assert_false(ca_fingerprint_equal(a, NULL));
	assert_false(ca_fingerprint_equal("", ""));
}

/* ---- names ----------------------------------------------------------------- */

static void
test_dns_names(void **state)
{
	static const char *const good[] = {
		"a.mesh.internal", "payments", "x-1.y2.example", "1a.example.com",
		"a", "xn--bcher-kva.example",
		/* 63-byte label */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	};
	static const struct { const char *name, *why; } bad[] = {
		{ "", "empty" },
		{ "A.example.com", "lowercase" },
		{ "a..example", "empty label" },
		{ "example.com.", "trailing dot" },
		{ ".example.com", "empty label" },
		{ "-a.example", "hyphen" },
		{ "a-.example", "hyphen" },
		{ "a_b.example", "0x5f" },
		{ "a b.example", "0x20" },
		{ "a.*.example", "6.4.3" },
		{ "f*.example.com", "6.4.3" },
		{ "**.example.com", "6.4.3" },
		{ "1.2.3.4", "all-numeric" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
		    "RFC 1035 2.3.4: label longer than 63 bytes" },
		{ "*.example.com", "not allowed here" },
		{ "a.example\xc3\xa9", "0xc3" },
	};
	char longname[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_rc(ca_dns_check(good[i], false), MCA_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rc(ca_dns_check(bad[i].name, false), MCA_ERR_NAME);
		assert_detail_has(bad[i].why);
	}
	assert_rc(ca_dns_check(NULL, true), MCA_ERR_NAME);
	/* Wildcards: whole leftmost label, when allowed, with two labels after. */
	assert_rc(ca_dns_check("*.example.com", true), MCA_OK);
	assert_rc(ca_dns_check("*.svc.mesh.internal", true), MCA_OK);
	assert_rc(ca_dns_check("*.com", true), MCA_ERR_NAME);
	assert_rc(ca_dns_check("*", true), MCA_ERR_NAME);
	assert_rc(ca_dns_check("*.*.example.com", true), MCA_ERR_NAME);
	assert_rc(ca_dns_check("a.*.example.com", true), MCA_ERR_NAME);
	/* 253 bytes is the limit (RFC 1035 2.3.4). */
	memset(longname, 'a', sizeof(longname));
	for (size_t i = 63; i < 253; i += 64)
		longname[i] = '.';
	longname[253] = '\0';
	assert_rc(ca_dns_check(longname, false), MCA_OK);
	longname[253] = 'a';
	longname[254] = '\0';
	assert_rc(ca_dns_check(longname, false), MCA_ERR_NAME);
	assert_detail_has("253");
}

static void
test_ip_parse(void **state)
{
	static const struct { const char *in; bool cidr; const char *out; } good[] = {
		{ "10.1.2.3", false, "10.1.2.3" },
		{ "0.0.0.0", false, "0.0.0.0" },
		{ "255.255.255.255", false, "255.255.255.255" },
		{ "::1", false, "::1" },
		{ "2001:DB8::1", false, "2001:db8::1" },
		{ "::ffff:10.0.0.1", false, "::ffff:10.0.0.1" },
		{ "10.1.2.3/8", true, "10.0.0.0/8" },		/* host bits masked */
		{ "10.1.2.3/32", true, "10.1.2.3" },
		{ "192.168.77.200/20", true, "192.168.64.0/20" },
		{ "fd00::1/64", true, "fd00::/64" },
		{ "2001:db8:abcd:12ff::/57", true, "2001:db8:abcd:1280::/57" },
		{ "0.0.0.0/0", true, "0.0.0.0/0" },
	};
	static const struct { const char *in; bool cidr; } bad[] = {
		{ "", true }, { "10.1.2", true }, { "10.1.2.3.4", true }, { "256.1.1.1", true },
		{ "010.1.1.1", true }, { "10.1.2.3/8", false }, { "10.1.2.3/33", true },
		{ "10.1.2.3/", true }, { "10.1.2.3/-1", true }, { "10.1.2.3/+8", true },
		{ "10.1.2.3/08", true }, { "10.1.2.3/8/8", true }, { "::1/129", true },
		{ "fe80::1%eth0", true }, { "1:2:3:4:5:6:7:8:9", true }, { "example.com", true },
		{ " 10.1.2.3", true }, { "10.1.2.3 ", true }, { "0x0a.1.2.3", true },
		{ "1111111111111111111111111111111111111111111111111111111111111111111", true },
	};
	struct ca_ip ip;
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_rc(ca_ip_parse(good[i].in, good[i].cidr, &ip), MCA_OK);
		ca_ip_format(&ip, out);
		assert_string_equal(out, good[i].out);
	}
	assert_rc(ca_ip_parse("10.9.8.7/24", true, &ip), MCA_OK);
	assert_int_equal(ip.len, 4);
	assert_int_equal(ip.prefix, 24);
	assert_int_equal(ip.addr[3], 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ca_ip_parse(bad[i].in, bad[i].cidr, &ip) != MCA_ERR_NAME)
			fail_msg("accepted '%s'", bad[i].in);
	}
	assert_rc(ca_ip_parse(NULL, true, &ip), MCA_ERR_NAME);
}

static void
test_spiffe_ids(void **state)
{
	static const char *const good[] = {
		"spiffe://mesh.internal/svc/payments",
		"spiffe://mesh.internal/a",
		"spiffe://mesh.internal/A-b_c.D/9",
		"spiffe://my_td-1.example/x/..y/z..",
		"spiffe://mesh.internal/meshca/admin/alice",
	};
	static const struct { const char *id, *why; } bad[] = {
		{ "", "empty" },
		{ "spiffe://Mesh.internal/a", "lowercase" },
		{ "spiffe://mesh.internal//a", "empty path segment" },
		{ "spiffe://mesh.internal/a//b", "empty path segment" },
		{ "spiffe://mesh.internal/a/../b", "path segment '..' is not allowed" },
		{ "spiffe://mesh.internal/a/./b", "path segment '.' is not allowed" },
		{ "spiffe://mesh.internal/..", "'..'" },
		{ "spiffe://mesh.internal/a/", "trailing slash" },
		{ "spiffe://mesh.internal/", "trailing slash" },
		{ "spiffe://mesh.internal/a?x=1", "query" },
		{ "spiffe://mesh.internal?x=1", "query" },
		{ "spiffe://mesh.internal/a#f", "fragment" },
		{ "spiffe://mesh.internal#f", "fragment" },
		{ "spiffe://mesh.internal/a%20b", "percent" },
		{ "spiffe://mesh%2einternal/a", "percent" },
		{ "spiffe://mesh.internal:8443/a", "port" },
		{ "spiffe://user@mesh.internal/a", "userinfo" },
		{ "SPIFFE://mesh.internal/a", "scheme" },
		{ "https://mesh.internal/a", "scheme" },
		{ "spiffe:/mesh.internal/a", "scheme" },
		{ "spiffe:///a", "empty trust domain" },
		{ "spiffe://mesh.internal", "path" },
		{ "spiffe://mesh.internal/a b", "0x20" },
		{ "spiffe://mesh.internal/caf\xc3\xa9", "0xc3" },
		/* More from the SPIFFE ID spec: 2.1 trust domain, 2.2 path. */
		{ "spiffe://", "empty trust domain" },
		{ "spiffe://mesh.internal/a/b/", "2.2: trailing slash" },
		{ "spiffe://mesh.internal/a/.", "2.2: path segment '.'" },
		{ "spiffe://mesh.internal/a/b/..", "2.2: path segment '..'" },
		{ "spiffe://mesh.internal/a\tb", "2.2: character 0x09" },
		{ "spiffe://mesh.internal/a:b", "2.2: character 0x3a" },
		{ "spiffe://mesh.internal/a@b", "2.2: character 0x40" },
		{ "spiffe://mesh.internal/a+b", "2.2: character 0x2b" },
		{ "spiffe://mesh.internal/a~b", "2.2: character 0x7e" },
		{ "spiffe://MESH.INTERNAL/a", "2.1: trust domain must be lowercase" },
		{ "spiffe://mesh.int\xc3\xa9rnal/a", "2.1: character 0xc3" },
		{ "spiffe://mesh!internal/a", "2.1: character 0x21" },
		{ "spiffe://user:pw@mesh.internal/a", "2.1" },
		{ "spiffe://[::1]/a", "2.1: character 0x5b" },
		{ "spiffe://mesh.internal:/a", "port" },
		{ "Spiffe://mesh.internal/a", "2: the scheme" },
		{ "spiffe:mesh.internal/a", "2: the scheme" },
	};
	char big[2100];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_rc(ca_spiffe_id_check(good[i], NULL), MCA_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ca_spiffe_id_check(bad[i].id, NULL) != MCA_ERR_SPIFFE_ID)
			fail_msg("accepted '%s'", bad[i].id);
		assert_detail_has("SPIFFE ID spec");
		assert_detail_has(bad[i].why);
	}
	assert_rc(ca_spiffe_id_check(NULL, NULL), MCA_ERR_SPIFFE_ID);
	/* Trust domain must match when given. */
	assert_rc(ca_spiffe_id_check(SPIFFE, TD), MCA_OK);
	assert_rc(ca_spiffe_id_check(SPIFFE, "other.internal"), MCA_ERR_SPIFFE_ID);
	assert_detail_has("other.internal");
	assert_rc(ca_spiffe_id_check(SPIFFE, "mesh.interna"), MCA_ERR_SPIFFE_ID);
	assert_rc(ca_spiffe_id_check("spiffe://mesh.internal.evil/a", TD), MCA_ERR_SPIFFE_ID);
	/* 2048 bytes is the limit. */
	memcpy(big, "spiffe://mesh.internal/", 23);
	memset(big + 23, 'a', sizeof(big) - 23);
	big[2048] = '\0';
	assert_rc(ca_spiffe_id_check(big, TD), MCA_OK);
	big[2048] = 'a';
	big[2049] = '\0';
	assert_rc(ca_spiffe_id_check(big, TD), MCA_ERR_SPIFFE_ID);
	assert_detail_has("2048");
	/* 2.1/2.3: a trust domain of 255 bytes is the limit inside an ID too. */
	memcpy(big, "spiffe://", 9);
	memset(big + 9, 'a', 255);
	memcpy(big + 9 + 255, "/x", 3);
	assert_rc(ca_spiffe_id_check(big, NULL), MCA_OK);
	memset(big + 9, 'a', 256);
	memcpy(big + 9 + 256, "/x", 3);
	assert_rc(ca_spiffe_id_check(big, NULL), MCA_ERR_SPIFFE_ID);
	assert_detail_has("SPIFFE ID spec 2.1: trust domain longer than 255 bytes");
}

static void
test_trust_domain_and_service(void **state)
{
	char td[300];

	(void)state;
	assert_rc(ca_trust_domain_check("mesh.internal"), MCA_OK);
	assert_rc(ca_trust_domain_check("a_b-c.9"), MCA_OK);
	assert_rc(ca_trust_domain_check(""), MCA_ERR_NAME);
	assert_rc(ca_trust_domain_check(NULL), MCA_ERR_NAME);
	assert_rc(ca_trust_domain_check("Mesh"), MCA_ERR_NAME);
	assert_detail_has("SPIFFE ID spec 2.1");
	assert_rc(ca_trust_domain_check("mesh:80"), MCA_ERR_NAME);
	assert_rc(ca_trust_domain_check("mesh/x"), MCA_ERR_NAME);
	assert_rc(ca_trust_domain_check("mesh internal"), MCA_ERR_NAME);
	memset(td, 'a', sizeof(td));
	td[255] = '\0';
	assert_rc(ca_trust_domain_check(td), MCA_OK);
	td[255] = 'a';
	td[256] = '\0';
	assert_rc(ca_trust_domain_check(td), MCA_ERR_NAME);

	assert_rc(ca_service_name_check("payments"), MCA_OK);
	assert_rc(ca_service_name_check("9lives-api"), MCA_OK);
	assert_rc(ca_service_name_check("-x"), MCA_ERR_NAME);
	assert_rc(ca_service_name_check("Payments"), MCA_ERR_NAME);
	assert_rc(ca_service_name_check("pay_ments"), MCA_ERR_NAME);
	assert_rc(ca_service_name_check("pay/ments"), MCA_ERR_NAME);
	assert_rc(ca_service_name_check(""), MCA_ERR_NAME);
	assert_rc(ca_service_name_check(NULL), MCA_ERR_NAME);
	memset(td, 'a', 64);
	td[63] = '\0';
	assert_rc(ca_service_name_check(td), MCA_OK);
	td[63] = 'a';
	td[64] = '\0';
	assert_rc(ca_service_name_check(td), MCA_ERR_NAME);
}

static void
test_sans_add(void **state)
{
	struct ca_sans s = { 0 };
	char name[64];

	(void)state;
	assert_rc(ca_sans_add_dns(&s, "a.example", false), MCA_OK);
	assert_rc(ca_sans_add_dns(&s, "a.example", false), MCA_OK);	/* duplicate */
	assert_rc(ca_sans_add_dns(&s, "*.example.com", false), MCA_ERR_NAME);
	assert_rc(ca_sans_add_dns(&s, "*.example.com", true), MCA_OK);
	assert_rc(ca_sans_add_ip(&s, "10.0.0.1", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&s, "10.0.0.1", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&s, "10.0.0.0/8", false), MCA_ERR_NAME);
	assert_rc(ca_sans_add_ip(&s, "10.9.9.9/8", true), MCA_OK);
	assert_rc(ca_sans_add_ip(&s, "10.0.0.0/8", true), MCA_OK);	/* same range */
	assert_int_equal(s.ndns, 2);
	assert_int_equal(s.nips, 2);
	assert_rc(ca_sans_add_dns(&s, "BAD", false), MCA_ERR_NAME);
	assert_int_equal(s.ndns, 2);
	/* CA_MAX_SANS in total. */
	for (int i = 0; s.ndns + s.nips < CA_MAX_SANS; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		assert_rc(ca_sans_add_dns(&s, name, false), MCA_OK);
	}
	assert_rc(ca_sans_add_dns(&s, "one-more.example", false), MCA_ERR_TOOBIG);
	assert_rc(ca_sans_add_ip(&s, "192.0.2.1", false), MCA_ERR_TOOBIG);
	assert_rc(ca_sans_add_dns(&s, "a.example", false), MCA_OK);	/* dup still fine */
	assert_int_equal(s.ndns + s.nips, CA_MAX_SANS);
	ca_sans_clear(&s);
	assert_null(s.dns);
	assert_int_equal(s.ndns, 0);
	ca_sans_clear(&s);
	ca_sans_clear(NULL);
}

static void
test_sans_authorize(void **state)
{
	struct ca_sans allowed = { 0 }, req = { 0 }, got = { 0 };
	char ip[64];

	(void)state;
	assert_rc(ca_sans_add_dns(&allowed, "api.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_dns(&allowed, "*.svc.mesh.internal", true), MCA_OK);
	assert_rc(ca_sans_add_ip(&allowed, "10.0.0.0/8", true), MCA_OK);
	assert_rc(ca_sans_add_ip(&allowed, "192.0.2.7", true), MCA_OK);
	assert_rc(ca_sans_add_ip(&allowed, "fd00::/16", true), MCA_OK);

	/* Empty request: the exact names and single addresses only. */
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_OK);
	assert_int_equal(got.ndns, 1);
	assert_string_equal(got.dns[0], "api.mesh.internal");
	assert_int_equal(got.nips, 1);
	ca_ip_format(&got.ips[0], ip);
	assert_string_equal(ip, "192.0.2.7");
	assert_rc(ca_sans_authorize(&allowed, NULL, true, &got), MCA_OK);
	assert_int_equal(got.ndns + got.nips, 2);

	/* A subset: exact name, one label under the wildcard, IPs in ranges. */
	assert_rc(ca_sans_add_dns(&req, "api.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_dns(&req, "pod-1.svc.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&req, "10.200.3.4", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&req, "fd00:1::5", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_OK);
	assert_int_equal(got.ndns, 2);
	assert_string_equal(got.dns[1], "pod-1.svc.mesh.internal");
	assert_int_equal(got.nips, 2);
	ca_sans_clear(&req);

	/* Wildcards cover exactly one label. */
	assert_rc(ca_sans_add_dns(&req, "a.b.svc.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("a.b.svc.mesh.internal");
	assert_int_equal(got.ndns + got.nips, 0);
	ca_sans_clear(&req);
	assert_rc(ca_sans_add_dns(&req, "svc.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	ca_sans_clear(&req);
	assert_rc(ca_sans_add_dns(&req, "evilsvc.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	ca_sans_clear(&req);
	/* A literal wildcard only when listed as is, and allow_wildcards. */
	assert_rc(ca_sans_add_dns(&req, "*.svc.mesh.internal", true), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_OK);
	assert_string_equal(got.dns[0], "*.svc.mesh.internal");
	assert_rc(ca_sans_authorize(&allowed, &req, false, &got), MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("policy: the service does not allow wildcard certificates "
	    "(allow_wildcards=false): '*.svc.mesh.internal'");
	assert_int_equal(got.ndns + got.nips, 0);
	ca_sans_clear(&req);
	/* Without the flag the pattern still admits names one label under it,
	 * and the default grant never includes the pattern. */
	assert_rc(ca_sans_add_dns(&req, "pod-9.svc.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, false, &got), MCA_OK);
	assert_string_equal(got.dns[0], "pod-9.svc.mesh.internal");
	ca_sans_clear(&req);
	assert_rc(ca_sans_authorize(&allowed, NULL, false, &got), MCA_OK);
	assert_int_equal(got.ndns, 1);
	assert_string_equal(got.dns[0], "api.mesh.internal");
	/* A wildcard under a wildcard is not one label: refused with the flag. */
	assert_rc(ca_sans_add_dns(&req, "*.x.svc.mesh.internal", true), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("policy: DNS name '*.x.svc.mesh.internal' is not among");
	ca_sans_clear(&req);
	assert_rc(ca_sans_add_dns(&req, "*.mesh.internal", true), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("*.mesh.internal");
	ca_sans_clear(&req);
	/* The refusal names the first offending value, even after good ones. */
	assert_rc(ca_sans_add_dns(&req, "api.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&req, "10.1.1.1", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&req, "11.0.0.1", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("11.0.0.1");
	assert_int_equal(got.ndns + got.nips, 0);
	ca_sans_clear(&req);
	assert_rc(ca_sans_add_ip(&req, "192.0.2.8", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	ca_sans_clear(&req);
	/* IPv4 never matches an IPv6 range. */
	assert_rc(ca_sans_add_ip(&req, "::ffff:10.0.0.1", false), MCA_OK);
	assert_rc(ca_sans_authorize(&allowed, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	ca_sans_clear(&req);
	/* Nothing allowed: nothing granted, any request refused. */
	assert_rc(ca_sans_authorize(NULL, NULL, true, &got), MCA_OK);
	assert_int_equal(got.ndns + got.nips, 0);
	assert_rc(ca_sans_add_dns(&req, "api.mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_authorize(NULL, &req, true, &got), MCA_ERR_SAN_NOT_ALLOWED);
	ca_sans_clear(&req);
	ca_sans_clear(&allowed);
	ca_sans_clear(&got);
}

/* RSA types are minimum sizes; ECDSA curves and Ed25519 match exactly. */
static void
test_key_rules(void **state)
{
	static const struct {
		enum ca_key_type key;
		uint32_t	 mask;
		bool		 ok;
		const char	*why;
	} cases[] = {
		{ CA_KEY_RSA_2048, CA_KEY_MASK(CA_KEY_RSA_2048), true, NULL },
		{ CA_KEY_RSA_3072, CA_KEY_MASK(CA_KEY_RSA_2048), true, NULL },
		{ CA_KEY_RSA_2048, CA_KEY_MASK(CA_KEY_RSA_3072), false, "RSA key of 2048 bits" },
		{ CA_KEY_RSA_3072, CA_KEY_MASK(CA_KEY_RSA_3072), true, NULL },
		{ CA_KEY_RSA_3072, CA_KEY_MASK(CA_KEY_RSA_4096), false, "RSA key of 3072 bits" },
		{ CA_KEY_RSA_2048, CA_KEY_MASK(CA_KEY_RSA_4096) | CA_KEY_MASK(CA_KEY_RSA_2048),
		    true, NULL },
		{ CA_KEY_RSA_2048, CA_KEY_MASK(CA_KEY_ECDSA_P256), false, "allowed: ecdsa-p256" },
		{ CA_KEY_ECDSA_P256, CA_KEY_MASK(CA_KEY_ECDSA_P384), false,
		    "key type ecdsa-p256 is not allowed (allowed: ecdsa-p384)" },
		{ CA_KEY_ECDSA_P384, CA_KEY_MASK(CA_KEY_ECDSA_P256), false, "ecdsa-p384" },
		{ CA_KEY_ED25519, CA_KEY_MASK(CA_KEY_RSA_2048) | CA_KEY_MASK(CA_KEY_ECDSA_P256), false,
		    "allowed: ecdsa-p256, rsa-2048" },
		{ CA_KEY_ED25519, CA_KEY_MASK(CA_KEY_ED25519), true, NULL },
		{ CA_KEY_ECDSA_P256, 0, false, "allowed: none" },
		{ CA_KEY_RSA_3072, CA_KEY_MASK_ALL, true, NULL },
	};
	struct ca_key *keys[CA_KEY_TYPE_MAX] = { NULL };
	struct ca_csr *csr;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum ca_key_type t = cases[i].key;

		if (big_rsa_skipped(t))
			continue;
		if (keys[t] == NULL)
			assert_rc(ca_key_generate(t, &keys[t]), MCA_OK);
		csr = csr_make(keys[t], "k", NULL);
		assert_int_equal(ca_csr_key_type(csr), t);
		if (cases[i].ok) {
			assert_rc(ca_csr_check_key(csr, cases[i].mask), MCA_OK);
		} else {
			assert_rc(ca_csr_check_key(csr, cases[i].mask), MCA_ERR_KEY_TYPE);
			assert_detail_has("policy: ");
			assert_detail_has(cases[i].why);
		}
		ca_csr_free(csr);
	}
	for (int t = 0; t < CA_KEY_TYPE_MAX; t++)
		ca_key_free(keys[t]);
}

/* A hierarchy whose intermediate carries the name constraints nc. */
static void
nc_hierarchy(const struct ca_name_constraints *nc, const char *tag, struct ca_cert **inter,
    struct ca_signer **out)
{
	char ip[PATH_MAX], kp[PATH_MAX];

	snprintf(ip, sizeof(ip), "%s/%s-int.pem", F.dir, tag);
	snprintf(kp, sizeof(kp), "%s/%s-int.key", F.dir, tag);
	assert_rc(ca_intermediate_create(F.root, F.root_key, F.int_key, TD, F.now, 30L * DAY, nc,
	    inter), MCA_OK);
	write_file(ip, ca_cert_pem(*inter));
	assert_rc(ca_key_save(F.int_key, kp, NULL), MCA_OK);
	assert_rc(ca_signer_open(ip, kp, NULL, F.root_path, out), MCA_OK);
}

static void
nc_names_check(const struct ca_signer *s, const char *uri, const char *dns, const char *ip,
    enum mca_err want)
{
	struct ca_sans sans = { 0 };

	if (dns != NULL)
		assert_rc(ca_sans_add_dns(&sans, dns, true), MCA_OK);
	if (ip != NULL)
		assert_rc(ca_sans_add_ip(&sans, ip, true), MCA_OK);
	if (ca_signer_names_check(s, uri, &sans) != want)
		fail_msg("names_check(%s, %s, %s): got %s (%s)", uri ? uri : "-", dns ? dns : "-",
		    ip ? ip : "-", mca_errname(ca_signer_names_check(s, uri, &sans)),
		    mca_err_detail());
	if (want != MCA_OK)
		assert_detail_has("RFC 5280 4.2.1.10");
	ca_sans_clear(&sans);
}

static void
test_name_constraints(void **state)
{
	struct ca_sans perm = { 0 }, sans = { 0 };
	struct ca_name_constraints nc = { TD, &perm };
	struct ca_cert *inter = NULL, *c = NULL;
	struct ca_signer *s = NULL;
	struct ca_csr *csr;
	struct ca_issued out;
	struct ca_leaf_req req = { .spiffe_id = SPIFFE, .common_name = "payments", .sans = &sans,
	    .ttl = 3600, .now = F.now };
	gnutls_x509_crt_t crt, chain[2];
	gnutls_x509_name_constraints_t gnc;
	unsigned int crit = 0;
	char dn[256];

	(void)state;
	assert_rc(ca_sans_add_dns(&perm, "mesh.internal", false), MCA_OK);
	assert_rc(ca_sans_add_ip(&perm, "10.0.0.0/8", true), MCA_OK);
	assert_rc(ca_sans_add_ip(&perm, "fd00::/8", true), MCA_OK);
	nc_hierarchy(&nc, "nc", &inter, &s);
	assert_true(ca_signer_constrained(s));
	assert_false(ca_signer_constrained(F.signer));
	/* RFC 5280 4.2.1.10: critical, as GnuTLS reads it back. */
	crt = crt_import(ca_cert_der(inter));
	assert_int_equal(gnutls_x509_name_constraints_init(&gnc), 0);
	assert_int_equal(gnutls_x509_crt_get_name_constraints(crt, gnc, 0, &crit), 0);
	assert_int_equal(crit, 1);
	gnutls_x509_name_constraints_deinit(gnc);
	gnutls_x509_crt_deinit(crt);

	/* URI: the host is the trust domain, exactly. */
	nc_names_check(s, SPIFFE, NULL, NULL, MCA_OK);
	nc_names_check(s, "spiffe://evil.example/svc/x", NULL, NULL, MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("URI 'spiffe://evil.example/svc/x' is outside");
	nc_names_check(s, "spiffe://mesh.internal.evil/x", NULL, NULL, MCA_ERR_SAN_NOT_ALLOWED);
	nc_names_check(s, "spiffe://x.mesh.internal/x", NULL, NULL, MCA_ERR_SAN_NOT_ALLOWED);
	/* DNS: the name and subdomains, on a label boundary; patterns too. */
	nc_names_check(s, NULL, "mesh.internal", NULL, MCA_OK);
	nc_names_check(s, NULL, "api.payments.mesh.internal", NULL, MCA_OK);
	nc_names_check(s, NULL, "*.pods.mesh.internal", NULL, MCA_OK);
	nc_names_check(s, NULL, "evilmesh.internal", NULL, MCA_ERR_SAN_NOT_ALLOWED);
	nc_names_check(s, NULL, "www.evil.example", NULL, MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("dNSName 'www.evil.example' is outside the intermediate CA's name "
	    "constraints (permitted dNSName subtrees: mesh.internal)");
	nc_names_check(s, NULL, "*.evil.internal", NULL, MCA_ERR_SAN_NOT_ALLOWED);
	/* IP: inside a permitted range; a range must fit inside; one type. */
	nc_names_check(s, NULL, NULL, "10.20.30.40", MCA_OK);
	nc_names_check(s, NULL, NULL, "10.1.0.0/16", MCA_OK);
	nc_names_check(s, NULL, NULL, "fd12::1", MCA_OK);
	nc_names_check(s, NULL, NULL, "11.0.0.1", MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("10.0.0.0/8, fd00::/8");
	nc_names_check(s, NULL, NULL, "10.0.0.0/7", MCA_ERR_SAN_NOT_ALLOWED);
	nc_names_check(s, NULL, NULL, "2001:db8::1", MCA_ERR_SAN_NOT_ALLOWED);
	/* An unconstrained signer permits anything. */
	nc_names_check(F.signer, "spiffe://evil.example/x", "www.evil.example", "11.0.0.1", MCA_OK);

	/* Issuance refuses before signing. */
	csr = csr_make(F.leaf_key, "x", NULL);
	assert_rc(ca_sans_add_dns(&sans, "www.evil.example", false), MCA_OK);
	assert_rc(ca_issue_leaf(s, csr, &req, &out), MCA_ERR_SAN_NOT_ALLOWED);
	assert_detail_has("www.evil.example");
	assert_null(out.der.data);
	ca_sans_clear(&sans);
	req.spiffe_id = "spiffe://other.example/svc/payments";
	assert_rc(ca_issue_leaf(s, csr, &req, &out), MCA_ERR_SAN_NOT_ALLOWED);
	req.spiffe_id = SPIFFE;
	/* Inside: CN with a DNS SAN; without one, OU instead of CN (GnuTLS
	 * would check the CN as a host name against the dNSName subtrees). */
	assert_rc(ca_sans_add_dns(&sans, "payments.mesh.internal", false), MCA_OK);
	assert_rc(ca_issue_leaf(s, csr, &req, &out), MCA_OK);
	crt = crt_import(&out.der);
	dn_of(crt, dn, sizeof(dn));
	assert_string_equal(dn, "CN=payments");
	chain[0] = crt;
	chain[1] = crt_import(ca_cert_der(inter));
	assert_int_equal(chain_verify(chain, 2, F.root), 0);
	gnutls_x509_crt_deinit(chain[1]);
	gnutls_x509_crt_deinit(crt);
	ca_issued_clear(&out);
	ca_sans_clear(&sans);
	assert_rc(ca_issue_leaf(s, csr, &req, &out), MCA_OK);
	crt = crt_import(&out.der);
	dn_of(crt, dn, sizeof(dn));
	assert_string_equal(dn, "OU=payments");
	chain[0] = crt;
	chain[1] = crt_import(ca_cert_der(inter));
	assert_int_equal(chain_verify(chain, 2, F.root), 0);
	gnutls_x509_crt_deinit(chain[1]);
	gnutls_x509_crt_deinit(crt);
	ca_issued_clear(&out);
	/* Unconstrained: CN as always. */
	assert_rc(ca_issue_leaf(F.signer, csr, &req, &out), MCA_OK);
	crt = crt_import(&out.der);
	dn_of(crt, dn, sizeof(dn));
	assert_string_equal(dn, "CN=payments");
	gnutls_x509_crt_deinit(crt);
	ca_issued_clear(&out);
	ca_csr_free(csr);
	ca_signer_free(s);
	ca_cert_free(inter);

	/* Refusals at creation: a wildcard subtree, nothing at all, a bad TD. */
	ca_sans_clear(&perm);
	assert_rc(ca_sans_add_dns(&perm, "*.mesh.internal", true), MCA_OK);
	assert_rc(ca_intermediate_create(F.root, F.root_key, F.int_key, TD, F.now, DAY, &nc, &c),
	    MCA_ERR_NAME);
	assert_detail_has("RFC 5280 4.2.1.10");
	assert_null(c);
	ca_sans_clear(&perm);
	nc.uri_domain = NULL;
	assert_rc(ca_intermediate_create(F.root, F.root_key, F.int_key, TD, F.now, DAY, &nc, &c),
	    MCA_ERR_INVALID);
	nc.uri_domain = "Bad.Domain";
	assert_rc(ca_intermediate_create(F.root, F.root_key, F.int_key, TD, F.now, DAY, &nc, &c),
	    MCA_ERR_NAME);
	/* URI only: DNS and IP stay unconstrained, the CN stays. */
	nc.uri_domain = TD;
	nc_hierarchy(&nc, "nc-uri", &inter, &s);
	nc_names_check(s, SPIFFE, "www.anything.example", "192.0.2.1", MCA_OK);
	nc_names_check(s, "spiffe://evil.example/a", NULL, NULL, MCA_ERR_SAN_NOT_ALLOWED);
	assert_rc(ca_issue_leaf(s, csr = csr_make(F.leaf_key, "x", NULL), &req, &out), MCA_OK);
	crt = crt_import(&out.der);
	dn_of(crt, dn, sizeof(dn));
	assert_string_equal(dn, "CN=payments");
	gnutls_x509_crt_deinit(crt);
	ca_issued_clear(&out);
	ca_csr_free(csr);
	ca_signer_free(s);
	ca_cert_free(inter);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_type_names),
		cmocka_unit_test(test_key_generate_save_load),
		cmocka_unit_test(test_key_save_refusals),
		cmocka_unit_test(test_key_load_fixtures),
		cmocka_unit_test(test_bootstrap_hierarchy),
		cmocka_unit_test(test_bootstrap_refusals),
		cmocka_unit_test(test_signer_open),
		cmocka_unit_test(test_leaf_profile),
		cmocka_unit_test(test_leaf_shared_extensions),
		cmocka_unit_test(test_leaf_ignores_csr_identity),
		cmocka_unit_test(test_leaf_validity_cap),
		cmocka_unit_test(test_leaf_refusals),
		cmocka_unit_test(test_issue_all_key_types),
		cmocka_unit_test(test_leaf_der_matches_gnutls),
		cmocka_unit_test(test_leaf_der_canonical_spki),
		cmocka_unit_test(test_leaf_der_ou_subject),
		cmocka_unit_test(test_leaf_der_short_coordinates),
		cmocka_unit_test(test_leaf_url_refusals),
		cmocka_unit_test(test_serial_unique),
		cmocka_unit_test(test_csr_manifest),
		cmocka_unit_test(test_csr_hostile),
		cmocka_unit_test(test_csr_sans),
		cmocka_unit_test(test_csr_create_roundtrip),
		cmocka_unit_test(test_cert_parse),
		cmocka_unit_test(test_fingerprint_equal),
		cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_spiffe_ids),
		cmocka_unit_test(test_trust_domain_and_service),
		cmocka_unit_test(test_sans_add),
		cmocka_unit_test(test_sans_authorize),
		cmocka_unit_test(test_key_rules),
		cmocka_unit_test(test_name_constraints),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
