"""What meshca issues: the chain verifies with OpenSSL and GnuTLS, and the leaf
carries exactly the SPIFFE X509-SVID profile of DESIGN.md, field by field."""

import ipaddress
import json
import re
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

import sysutil
from sysutil import describe, load_certs, make_csr, make_key, not_after, not_before

SVC = "profile"
ALLOWED_DNS = ["profile.svc", "*.profile.svc"]
ALLOWED_IP = ["10.1.2.0/24", "127.0.0.1"]

PROFILE_EXTS = {ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.BASIC_CONSTRAINTS,
                ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
                ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
# Pointers a later version may add without changing the identity profile.
OPTIONAL_EXTS = {ExtensionOID.CRL_DISTRIBUTION_POINTS, ExtensionOID.AUTHORITY_INFORMATION_ACCESS}


@pytest.fixture(scope="module")
def service(api):
    return api.create_service(SVC, dns_names=ALLOWED_DNS, ip_addresses=ALLOWED_IP,
                              default_ttl="2h", max_ttl="3h")


REPLY_MEMBERS = {"certificate", "chain", "roots", "serial", "spiffe_id", "not_before",
                 "not_after", "ttl", "dns_names", "ip_addresses"}


def unique_members(pairs):
    """json.loads hook: a member named twice is an error, not a silent overwrite."""
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), f"a member appears twice: {names}"
    return dict(pairs)


def enroll(api, service_name, key=None, csr=None, **fields):
    """Enroll via the API with a fresh token; returns (response json, leaf, t0, t1)."""
    tok = api.mint_token(service_name)
    key = key or make_key()
    csr = csr or make_csr(key)
    t0 = time.time()
    r = api.enroll(tok, csr, **fields)
    t1 = time.time()
    assert r.status_code == 201, f"enroll: {r.status_code} {r.text}"
    assert r.headers["Content-Type"] == "application/json"
    body = json.loads(r.text, object_pairs_hook=unique_members)
    assert set(body) == REPLY_MEMBERS, f"reply members: {sorted(body)}"
    leaf = load_certs(body["certificate"])
    assert len(leaf) == 1, "certificate must be exactly the leaf"
    return body, leaf[0], t0, t1


def verify_signed_by(cert, issuer):
    pub = issuer.public_key()
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            raise AssertionError(f"unexpected issuer key {type(pub)}")
    except InvalidSignature:
        raise AssertionError(f"{cert.subject} is not signed by {issuer.subject}")
    assert cert.issuer == issuer.subject


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def sans(cert):
    v = ext(cert, x509.SubjectAlternativeName).value
    return (v.get_values_for_type(x509.UniformResourceIdentifier),
            sorted(v.get_values_for_type(x509.DNSName)),
            sorted(str(i) for i in v.get_values_for_type(x509.IPAddress)))


def spki(key_or_cert):
    pub = key_or_cert.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def assert_leaf_profile(ca, leaf, spiffe_id):
    """The X509-SVID profile of DESIGN.md, minus SANs and validity (checked by callers)."""
    assert leaf.version == x509.Version.v3
    oids = {e.oid for e in leaf.extensions}
    assert PROFILE_EXTS <= oids, f"missing extensions: {PROFILE_EXTS - oids}"
    assert oids <= PROFILE_EXTS | OPTIONAL_EXTS, f"extra extensions: {oids - PROFILE_EXTS - OPTIONAL_EXTS}"
    assert len(leaf.extensions) == len(oids), "an extension appears twice (RFC 5280 4.2)"

    uris = ext(leaf, x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [spiffe_id], f"X509-SVID 2: exactly one URI SAN {spiffe_id}, got {uris}"
    if len(leaf.subject) == 0:
        assert ext(leaf, x509.SubjectAlternativeName).critical, \
            "RFC 5280 4.2.1.6: SAN must be critical when the subject is empty"

    bc = ext(leaf, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False and bc.value.path_length is None

    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical, "keyUsage must be critical"
    k = ku.value
    assert k.digital_signature
    assert not (k.content_commitment or k.key_encipherment or k.data_encipherment
                or k.key_agreement or k.key_cert_sign or k.crl_sign), f"keyUsage beyond digitalSignature: {k}"

    eku = list(ext(leaf, x509.ExtendedKeyUsage).value)
    assert sorted(eku, key=lambda o: o.dotted_string) == sorted(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], key=lambda o: o.dotted_string), \
        f"EKU must be exactly serverAuth+clientAuth, got {eku}"

    ski = ext(leaf, x509.SubjectKeyIdentifier).value.digest
    assert ski, "empty SKI"
    aki = ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ext(ca.intermediate, x509.SubjectKeyIdentifier).value.digest, "AKI != intermediate SKI"

    assert 0 < leaf.serial_number < 2 ** 128, f"serial {leaf.serial_number:x} not positive or over 128 bits"
    verify_signed_by(leaf, ca.intermediate)


# ---------------------------------------------------------------- chain verification

@pytest.fixture(scope="module")
def cli_enrolled(ca, meshcad, cli, service, tmp_path_factory):
    tok = cli("token", "create", SVC).stdout.strip()
    out = tmp_path_factory.mktemp("profile-enroll") / "out"
    tf = out.parent / "token"
    tf.write_text(tok)
    res = sysutil.run([sysutil.MESHCA, "enroll", "--url", meshcad.url, "--fingerprint", ca.fingerprint,
                       "--token-file", tf, "--out", out], env=sysutil.base_env())
    assert res.returncode == 0, describe(res)
    return out


def test_openssl_verify_x509_strict(tools, cli_enrolled):
    d = cli_enrolled
    for purpose in ("sslclient", "sslserver"):
        res = sysutil.run(["openssl", "verify", "-x509_strict", "-purpose", purpose,
                           "-CAfile", d / "roots.pem", "-untrusted", d / "chain.pem", d / "cert.pem"])
        assert res.returncode == 0 and res.stdout.strip().endswith(": OK"), describe(res)


def test_openssl_verify_refuses_foreign_root(tools, cli_enrolled, tmp_path):
    # Control: the same command must be able to fail.
    f = sysutil.ForeignCA()
    (tmp_path / "foreign.pem").write_text(sysutil.cert_pem(f.cert))
    d = cli_enrolled
    res = sysutil.run(["openssl", "verify", "-x509_strict", "-CAfile", tmp_path / "foreign.pem",
                       "-untrusted", d / "chain.pem", d / "cert.pem"])
    assert res.returncode != 0, describe(res)


def test_certtool_verify_chain(tools, cli_enrolled, tmp_path):
    d = cli_enrolled
    everything = tmp_path / "chain-all.pem"
    everything.write_text((d / "cert.pem").read_text() + (d / "chain.pem").read_text()
                          + (d / "roots.pem").read_text())
    res = sysutil.run(["certtool", "--verify-chain", "--infile", everything])
    assert res.returncode == 0, describe(res)
    assert "Chain verification output: Verified" in res.stdout, describe(res)
    res = sysutil.run(["certtool", "--verify", "--load-ca-certificate", d / "roots.pem",
                       "--infile", d / "fullchain.pem"])
    assert res.returncode == 0, describe(res)
    assert "Chain verification output: Verified" in res.stdout, describe(res)
    assert "Not verified" not in res.stdout, describe(res)


def test_certtool_refuses_foreign_root(tools, cli_enrolled, tmp_path):
    f = sysutil.ForeignCA()
    (tmp_path / "foreign.pem").write_text(sysutil.cert_pem(f.cert))
    res = sysutil.run(["certtool", "--verify", "--load-ca-certificate", tmp_path / "foreign.pem",
                       "--infile", cli_enrolled / "fullchain.pem"])
    assert res.returncode != 0, describe(res)


def test_cli_enrolled_leaf_profile(ca, cli_enrolled):
    leaf = load_certs((cli_enrolled / "cert.pem").read_text())[0]
    assert_leaf_profile(ca, leaf, ca.spiffe(SVC))


# ---------------------------------------------------------------- the leaf, field by field

def test_leaf_profile_ignores_csr_identity(ca, api, service):
    key = make_key("ecdsa-p256")
    csr = make_csr(key, cn="evil", uris=["spiffe://evil/x", "spiffe://mesh.internal/meshca/admin/evil"])
    body, leaf, t0, t1 = enroll(api, SVC, key=key, csr=csr, ttl="1h")
    assert_leaf_profile(ca, leaf, ca.spiffe(SVC))
    assert "evil" not in leaf.subject.rfc4514_string(), f"CSR subject copied: {leaf.subject}"
    uris, dns, ips = sans(leaf)
    assert uris == [ca.spiffe(SVC)]
    # No SANs requested: every exact name and single address the service allows.
    assert dns == ["profile.svc"] and ips == ["127.0.0.1"], (dns, ips)
    assert spki(leaf) == spki(key), "leaf does not certify the CSR's key"
    # Validity: notBefore = issuance - 60 s; notAfter = notBefore + 60 + ttl.
    nb, na = not_before(leaf).timestamp(), not_after(leaf).timestamp()
    assert int(t0) - 60 - 3 <= nb <= t1 - 60 + 3, f"notBefore {nb} not issuance-60s ({t0}..{t1})"
    assert na - nb == 60 + 3600, f"notAfter - notBefore = {na - nb}, want 60 + 3600"
    # The response describes the certificate it returns.
    assert body["spiffe_id"] == ca.spiffe(SVC)
    assert int(body["serial"], 16) == leaf.serial_number
    assert body["serial"] == body["serial"].lower()
    assert body["not_before"] == not_before(leaf).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["not_after"] == not_after(leaf).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert load_certs(body["chain"]) == [ca.intermediate]
    assert load_certs(body["roots"]) == [ca.root]
    assert sorted(body["dns_names"]) == dns and sorted(body["ip_addresses"]) == ips


def test_requested_sans_exactly(ca, api, service):
    body, leaf, _, _ = enroll(api, SVC, dns_names=["a.profile.svc", "profile.svc"],
                              ip_addresses=["10.1.2.7"])
    assert_leaf_profile(ca, leaf, ca.spiffe(SVC))
    assert sans(leaf) == ([ca.spiffe(SVC)], ["a.profile.svc", "profile.svc"], ["10.1.2.7"])


def test_csr_sans_used_when_request_names_none(ca, api, service):
    key = make_key()
    csr = make_csr(key, dns=["b.profile.svc"], ips=["10.1.2.9"], uris=["spiffe://evil/x"])
    body, leaf, _, _ = enroll(api, SVC, key=key, csr=csr)
    assert sans(leaf) == ([ca.spiffe(SVC)], ["b.profile.svc"], ["10.1.2.9"])


def test_default_ttl_from_service(api, service):
    _, leaf, _, _ = enroll(api, SVC)
    assert (not_after(leaf) - not_before(leaf)).total_seconds() == 60 + 2 * 3600


def test_ttl_capped_by_service_max(api, service):
    _, leaf, _, _ = enroll(api, SVC, ttl="10h")
    assert (not_after(leaf) - not_before(leaf)).total_seconds() == 60 + 3 * 3600


def test_ttl_as_seconds_number(api, service):
    _, leaf, _, _ = enroll(api, SVC, ttl=900)
    assert (not_after(leaf) - not_before(leaf)).total_seconds() == 60 + 900


SERIALS = []


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072"])
def test_key_type_accepted(ca, api, service, kind):
    key = make_key(kind)
    _, leaf, _, _ = enroll(api, SVC, key=key, csr=make_csr(key))
    assert_leaf_profile(ca, leaf, ca.spiffe(SVC))
    assert spki(leaf) == spki(key)
    SERIALS.append(leaf.serial_number)


def test_serials_distinct(api, service):
    serials = SERIALS + [enroll(api, SVC)[1].serial_number for _ in range(4)]
    assert len(set(serials)) == len(serials), "serial reused"
    # 128 random bits: of several serials at least one uses more than 64 bits.
    assert max(s.bit_length() for s in serials) > 64, [hex(s) for s in serials]


def test_issued_certificate_recorded(ca, api, service):
    body, leaf, _, _ = enroll(api, SVC)
    r = api.get(f"/v1/certificates/{body['serial']}", sysutil.ADMIN)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["serial"] == body["serial"] and rec["service"] == SVC and rec["kind"] == "workload"
    assert rec["spiffe_id"] == ca.spiffe(SVC) and rec["status"] == "active"
    assert load_certs(rec["certificate"]) == [leaf]


# ---------------------------------------------------------------- the CA certificates

def test_intermediate_profile(ca):
    inter, root = ca.intermediate, ca.root
    assert inter.version == x509.Version.v3
    bc = ext(inter, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == 0
    ku = ext(inter, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not (ku.value.key_encipherment or ku.value.data_encipherment or ku.value.key_agreement
                or ku.value.content_commitment), ku.value
    assert ext(inter, x509.SubjectKeyIdentifier).value.digest
    assert ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier == \
        ext(root, x509.SubjectKeyIdentifier).value.digest
    verify_signed_by(inter, root)
    assert not_after(inter) <= not_after(root), "intermediate outlives the root"


def test_root_profile(ca):
    root = ca.root
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    verify_signed_by(root, root)


def test_roots_endpoint_matches_state(ca, api):
    r = api.get("/v1/roots")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [load_certs(p)[0] for p in body["roots"]] == [ca.root]
    assert body["fingerprints"] == [ca.fingerprint]
    r = api.get("/v1/roots.pem")
    assert r.status_code == 200 and load_certs(r.text) == [ca.root]


def test_health_document(api):
    r = api.get("/v1/health")
    assert r.status_code == 200 and "application/json" in r.headers.get("Content-Type", "")
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok", body
    version = re.search(r"version\s*:\s*'([^']+)'", (sysutil.REPO / "meson.build").read_text()).group(1)
    schema = int(re.search(r"#define DB_SCHEMA_VERSION (\d+)", (sysutil.REPO / "db" / "db.h").read_text()).group(1))
    assert body["schema_version"] == schema and body["version"] == version, body


def test_admin_and_server_certificates(ca, meshcad):
    admin = load_certs((ca.dir / "admin.crt").read_text())
    assert admin[1:] == [ca.intermediate], "admin.crt must be leaf + intermediate"
    uris = ext(admin[0], x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert len(uris) == 1 and uris[0].startswith(f"spiffe://{ca.trust_domain}/meshca/admin/"), uris
    server = load_certs((ca.dir / "server.crt").read_text())
    assert server[1:] == [ca.intermediate], "server.crt must be leaf + intermediate"
    ips = ext(server[0], x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("127.0.0.1") in ips, "meshcad's certificate must name 127.0.0.1"
