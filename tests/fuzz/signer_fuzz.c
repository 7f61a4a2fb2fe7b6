/*
 * The signer process's admission check (ca_signer_check): what the network
 * process sends across the privilege boundary.  Whoever takes over meshcad's
 * network process controls these bytes completely; the signer must never
 * crash on them nor admit anything but a to-be-signed structure of this CA
 * (a leaf TBSCertificate, a TBSCertList, an OCSP ResponseData, an audit
 * checkpoint).
 *
 * Input: byte 0 picks the request type (low two bits) and the mode (bit 2).
 * Raw mode: the rest is the TBS.  Edit mode: the rest is a list of
 * (offset, byte) edits applied to a genuine TBSCertificate or TBSCertList
 * of the fuzz CA, made at start-up, so the fuzzer works near structures
 * the check admits instead of far from them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/common/timefmt.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *genuine[2];	/* TBSCertificate, TBSCertList */
static size_t genuine_len[2];

/* The first element of the DER SEQUENCE der (a signed structure's TBS). */
static int
first_child(const unsigned char *der, size_t len, const unsigned char **out, size_t *out_len)
{
	size_t i = 2, n, hdr;

	if (len < 4 || der[0] != 0x30 || der[1] < 0x81 || der[1] > 0x83)
		return -1;
	i = 2 + (size_t)(der[1] & 0x7f);
	if (i + 2 > len || der[i] != 0x30)
		return -1;
	if (der[i + 1] < 0x80) {
		n = der[i + 1];
		hdr = 2;
	} else {
		size_t k = der[i + 1] & 0x7f;

		if (k < 1 || k > 3 || i + 2 + k > len)
			return -1;
		n = 0;
		for (size_t j = 0; j < k; j++)
			n = n << 8 | der[i + 2 + j];
		hdr = 2 + k;
	}
	if (i + hdr + n > len)
		return -1;
	*out = der + i;
	*out_len = hdr + n;
	return 0;
}

static void
keep(int which, const unsigned char *p, size_t n)
{
	if ((genuine[which] = malloc(n)) == NULL)
		abort();
	memcpy(genuine[which], p, n);
	genuine_len[which] = n;
}

/* One leaf and one CRL from the fuzz CA; their TBS parts are what a
 * well-behaved meshcad sends, and must be admitted. */
static void
make_genuine(const struct ca_signer *s)
{
	struct ca_key *k = NULL;
	struct ca_csr *csr = NULL;
	struct ca_issued is;
	struct mca_buf pem, crl;
	struct ca_revoked r = { "0a1b2c", 0, 1 };
	struct ca_leaf_req req = { "spiffe://fuzz.internal/svc/web", "web", NULL, 3600, 0,
		NULL, NULL, NULL };
	const unsigned char *tbs;
	size_t n;

	memset(&is, 0, sizeof(is));
	req.now = r.revoked_at = mca_now();
	mca_buf_init(&pem, 64 * 1024, false);
	mca_buf_init(&crl, 1024 * 1024, false);
	if (ca_key_generate(CA_KEY_ECDSA_P256, &k) != MCA_OK ||
	    ca_csr_create(k, "web", NULL, &pem) != MCA_OK ||
	    ca_csr_parse(pem.data, pem.len, &csr) != MCA_OK ||
	    ca_issue_leaf(s, csr, &req, &is) != MCA_OK ||
	    first_child(is.der.data, is.der.len, &tbs, &n) != 0)
		abort();
	keep(0, tbs, n);
	if (ca_crl_build(s, &r, 1, 1, req.now, req.now + 3600, &crl) != MCA_OK ||
	    first_child(crl.data, crl.len, &tbs, &n) != 0)
		abort();
	keep(1, tbs, n);
	if (ca_signer_check(s, CA_SIGNREQ_CERT, genuine[0], genuine_len[0]) != MCA_OK ||
	    ca_signer_check(s, CA_SIGNREQ_CRL, genuine[1], genuine_len[1]) != MCA_OK)
		abort();	/* the check must admit what meshcad really sends */
	ca_issued_clear(&is);
	ca_csr_free(csr);
	ca_key_free(k);
	mca_buf_free(&pem);
	mca_buf_free(&crl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum ca_signreq_type types[4] = { CA_SIGNREQ_CERT, CA_SIGNREQ_CRL,
		CA_SIGNREQ_OCSP, CA_SIGNREQ_AUDIT };
	const struct ca_signer *s = fuzz_signer();
	enum ca_signreq_type t;
	unsigned char *buf;
	size_t len;
	enum mca_err rc;

	if (genuine[0] == NULL)
		make_genuine(s);
	if (size < 1)
		return 0;
	t = types[data[0] & 3];
	if ((data[0] & 4) && t != CA_SIGNREQ_OCSP && t != CA_SIGNREQ_AUDIT) {
		int w = t == CA_SIGNREQ_CERT ? 0 : 1;

		len = genuine_len[w];
		if ((buf = malloc(len)) == NULL)
			return 0;
		memcpy(buf, genuine[w], len);
		for (size_t i = 1; i + 2 < size; i += 3)
			buf[((size_t)data[i] << 8 | data[i + 1]) % len] = data[i + 2];
	} else {
		len = size - 1;
		if ((buf = malloc(len + 1)) == NULL)
			return 0;
		memcpy(buf, data + 1, len);
	}
	rc = ca_signer_check(s, t, buf, len);
	/* Invariants: only well-sized requests pass; an audit checkpoint is
	 * exactly its fixed format. */
	if (rc == MCA_OK && (len == 0 || len > CA_SIGNREQ_MAX_BYTES))
		abort();
	if (rc == MCA_OK && t == CA_SIGNREQ_AUDIT && (len != CA_AUDIT_TBS_LEN ||
	    memcmp(buf, CA_AUDIT_LABEL, sizeof(CA_AUDIT_LABEL) - 1) != 0))
		abort();
	free(buf);
	return 0;
}
