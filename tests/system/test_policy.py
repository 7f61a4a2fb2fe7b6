"""Identity policy (issue 5, "Policy"): service update through the CLI and the
API, renewals under the new policy, the wildcard flag, TTL capping, key types
and minimum RSA sizes, exactly one URI SAN, and X.509 name constraints on the
intermediate checked by OpenSSL and GnuTLS path validation.

Most tests use conftest's CA and meshcad; the name-constraint tests make a CA
of their own (`meshca init --name-constraints`) and a meshcad serving it.
"""

import datetime
import ipaddress
import json
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

import sysutil
from sysutil import ADMIN, Cli, Daemon, assert_error, make_csr, make_key


# ---------------------------------------------------------------- helpers

def patch(api, service, client=ADMIN, **body):
    return api.request("PATCH", f"/v1/services/{service}", client, json=body)


def enroll(api, name, key=None, **fields):
    key = key or make_key()
    return key, api.enroll(api.mint_token(name), make_csr(key), **fields)


def enrolled(api, tmp_path, name, **fields):
    key, r = enroll(api, name, **fields)
    assert r.status_code == 201, r.text
    d = tmp_path / ("wl-" + secrets.token_hex(3))
    return sysutil.write_workload(d, key, r.json()), r.json()


def renew(api, creds, **fields):
    return api.post("/v1/renew", creds, json={"csr": make_csr(make_key()), **fields})


def leaf(resp_json):
    return x509.load_pem_x509_certificate(resp_json["certificate"].encode())


def san(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return x509.SubjectAlternativeName([])


def dns_of(cert):
    return sorted(san(cert).get_values_for_type(x509.DNSName))


def assert_one_uri(cert, spiffe_id):
    """X509-SVID spec 2: exactly one URI SAN, the SPIFFE ID."""
    uris = san(cert).get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [spiffe_id], f"URI SANs {uris}, want exactly [{spiffe_id}]"


def message(resp):
    return resp.json()["error"]["message"]


# ---------------------------------------------------------------- service update

def test_update_through_cli(cli, api, ca, unique):
    name = unique("upd")
    cli("service", "add", name, "--dns", f"a.{name}.svc", "--dns", f"b.{name}.svc",
        "--ip", "10.1.0.0/16", "--default-ttl", "1h")
    before = api.get(f"/v1/services/{name}", ADMIN).json()
    assert before["allow_wildcards"] is False
    out = cli.json("service", "update", name, "--add-dns", f"*.{name}.svc",
                   "--remove-dns", f"a.{name}.svc", "--add-ip", "10.2.3.4",
                   "--remove-ip", "10.1.0.0/16", "--max-ttl", "2h",
                   "--key-types", "ecdsa-p256,rsa-3072", "--allow-wildcards", "true", "--json")
    assert out["name"] == name and out["spiffe_id"] == ca.spiffe(name)
    assert sorted(out["dns_names"]) == sorted([f"b.{name}.svc", f"*.{name}.svc"])
    assert out["ip_addresses"] == ["10.2.3.4"]
    assert out["max_ttl"] == 7200 and out["default_ttl"] == 3600
    assert sorted(out["key_types"]) == ["ecdsa-p256", "rsa-3072"]
    assert out["allow_wildcards"] is True
    assert out["updated_at"] >= before["updated_at"] and out["created_at"] == before["created_at"]
    # What GET shows is what the update returned.
    shown = cli.json("service", "show", name, "--json")
    for k in ("dns_names", "ip_addresses", "max_ttl", "key_types", "allow_wildcards"):
        assert shown[k] == out[k], k
    # Text output names the new field too.
    assert "allow_wildcards" in cli("service", "show", name).stdout
    # Replacing and clearing lists, and the way back.
    out = cli.json("service", "update", name, "--dns", f"c.{name}.svc", "--no-ip",
                   "--allow-wildcards", "false", "--key-types", "all", "--json")
    assert out["dns_names"] == [f"c.{name}.svc"] and out["ip_addresses"] == []
    assert out["allow_wildcards"] is False and len(out["key_types"]) == 6


def test_update_is_audited(api, ca, unique):
    name = unique("upaud")
    api.create_service(name, dns_names=[f"a.{name}.svc"], default_ttl="1h")
    assert patch(api, name, add_dns_names=[f"b.{name}.svc"], max_ttl="5h").status_code == 200
    assert_error(patch(api, name, max_ttl="1m"), 400, "invalid_ttl")
    r = api.get("/v1/audit", ADMIN, params={"limit": 10000})
    assert r.status_code == 200, r.text
    mine = [e for e in r.json()["entries"]
            if e["action"] == "service.update" and e["subject"] == name]
    assert [e["outcome"] for e in mine] == ["success", "failure"], mine
    ok, refused = mine
    assert ok["actor"] == f"spiffe://{ca.trust_domain}/meshca/admin/admin"
    assert ok["detail"]["dns_names_added"] == [f"b.{name}.svc"]
    assert ok["detail"]["dns_names_removed"] == []
    assert ok["detail"]["max_ttl"] == [72 * 3600, 5 * 3600]
    assert refused["detail"]["error"] == "invalid_ttl"


def test_update_cli_refusals(cli, unique):
    name = unique("updr")
    cli("service", "add", name, "--dns", f"a.{name}.svc")
    r = cli("service", "update", name, expect=2)
    assert "nothing to change" in r.stderr
    r = cli("service", "update", name, "--allow-wildcards", "maybe", expect=2)
    assert "true nor false" in r.stderr
    r = cli("service", "update", name, "--remove-dns", f"zz.{name}.svc", expect=1)
    assert "not in the service's list" in r.stderr
    r = cli("service", "update", "no-such-service-" + secrets.token_hex(2), "--max-ttl", "2h",
            expect=1)
    assert "no service named" in r.stderr


def test_update_through_api(api, ca, unique, workload):
    name = unique("upda")
    api.create_service(name, dns_names=[f"a.{name}.svc"], default_ttl="1h")
    r = patch(api, name, dns_names=[f"x.{name}.svc", f"y.{name}.svc"], max_ttl="3h",
              allow_wildcards=True)
    assert r.status_code == 200, r.text
    assert r.json()["dns_names"] == [f"x.{name}.svc", f"y.{name}.svc"]
    assert r.json()["max_ttl"] == 3 * 3600 and r.json()["allow_wildcards"] is True
    # The SPIFFE ID is the identity: unchanged is accepted, any other refused.
    assert patch(api, name, spiffe_id=ca.spiffe(name)).status_code == 200
    r = patch(api, name, spiffe_id=f"spiffe://{ca.trust_domain}/svc/other")
    assert_error(r, 400, "invalid_spiffe_id")
    assert "cannot change" in message(r)
    # Same validation as at creation.
    assert_error(patch(api, name, dns_names=["Bad..name"]), 400, "invalid_argument")
    assert_error(patch(api, name, ip_addresses=["10.0.0.300"]), 400, "invalid_argument")
    assert_error(patch(api, name, max_ttl="10m"), 400, "invalid_ttl")      # below default 1h
    assert_error(patch(api, name, default_ttl="1s"), 400, "invalid_ttl")   # below min_ttl
    assert_error(patch(api, name, key_types=["dsa"]), 400, "invalid_argument")
    assert_error(patch(api, name, key_types=[]), 400, "invalid_argument")
    assert_error(patch(api, name, dns_names=["a.svc"], add_dns_names=["b.svc"]),
                 400, "invalid_argument")
    assert_error(patch(api, name, remove_dns_names=[f"nope.{name}.svc"]), 400, "invalid_argument")
    assert_error(patch(api, name, allow_wildcards="yes"), 400, "malformed_json")
    assert_error(patch(api, name, name="renamed"), 400, "malformed_json")
    assert_error(patch(api, name + "-missing", max_ttl="3h"), 404, "not_found")
    # Nothing of the refusals took effect.
    svc = api.get(f"/v1/services/{name}", ADMIN).json()
    assert svc["dns_names"] == [f"x.{name}.svc", f"y.{name}.svc"] and svc["max_ttl"] == 3 * 3600
    # Admin only.
    assert_error(patch(api, name, client=None, max_ttl="4h"), 401, "unauthenticated")
    assert_error(patch(api, name, client=workload, max_ttl="4h"), 403, "forbidden")
    # Other methods on the resource are named in a 405.
    r = api.request("PUT", f"/v1/services/{name}", ADMIN, json={})
    assert r.status_code == 405 and "PATCH" in r.text


def test_concurrent_updates_all_apply(api, unique):
    """add/remove are read-modify-write on the server; concurrent ones must
    not lose each other (compare-and-set with retries)."""
    import concurrent.futures
    name = unique("updc")
    api.create_service(name)
    names = [f"n{i}.{name}.svc" for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: patch(api, name, add_dns_names=[n]), names))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sorted(api.get(f"/v1/services/{name}", ADMIN).json()["dns_names"]) == sorted(names)


# ---------------------------------------------------------------- renewal follows policy

def test_renewal_follows_update(api, ca, unique, tmp_path):
    name = unique("ren")
    a, b = f"a.{name}.svc", f"b.{name}.svc"
    api.create_service(name, dns_names=[a, b], ip_addresses=["10.9.0.0/16"])
    creds, first = enrolled(api, tmp_path, name, dns_names=[a, b], ip_addresses=["10.9.1.1"])
    assert first["dns_names"] == [a, b]
    r = patch(api, name, remove_dns_names=[b], remove_ip_addresses=["10.9.0.0/16"])
    assert r.status_code == 200, r.text
    # The next renewal drops what the service lost, and keeps the rest.
    r = renew(api, creds)
    assert r.status_code == 201, r.text
    assert r.json()["dns_names"] == [a] and r.json()["ip_addresses"] == []
    assert dns_of(leaf(r.json())) == [a]
    assert_one_uri(leaf(r.json()), ca.spiffe(name))
    # Asking for the lost name explicitly is refused, naming the rule and the value.
    r = renew(api, creds, dns_names=[b])
    assert_error(r, 403, "san_not_allowed")
    assert b in message(r) and name in message(r) and "policy" in message(r)
    r = renew(api, creds, ip_addresses=["10.9.1.1"])
    assert_error(r, 403, "san_not_allowed")
    assert "10.9.1.1" in message(r)
    # Explicitly asking for a name still allowed works, and narrows the set.
    r = renew(api, creds, dns_names=[a])
    assert r.status_code == 201 and r.json()["dns_names"] == [a]
    assert_error(renew(api, creds, dns_names=[], ip_addresses=[]), 400, "invalid_argument")
    # Admin certificates hold no DNS/IP names, asked or not.
    r = renew(api, (ca.admin_crt, ca.admin_key), dns_names=[a])
    assert_error(r, 403, "san_not_allowed")
    # Key types and TTL follow too.
    assert patch(api, name, key_types=["ecdsa-p384"], max_ttl="1h", default_ttl="30m").status_code == 200
    r = renew(api, creds)
    assert_error(r, 400, "key_type_not_allowed")
    assert "ecdsa-p256" in message(r) and "ecdsa-p384" in message(r)
    r = api.post("/v1/renew", creds, json={"csr": make_csr(make_key("ecdsa-p384")), "ttl": "5h"})
    assert r.status_code == 201, r.text
    assert r.json()["ttl"] == 3600


# ---------------------------------------------------------------- wildcards

def test_wildcard_flag(api, ca, unique, tmp_path):
    name = unique("wc")
    pattern = f"*.{name}.svc"
    api.create_service(name, dns_names=[pattern, f"api.{name}.svc"])
    # A pattern always admits single-label names under it ...
    _, r = enroll(api, name, dns_names=[f"pod-1.{name}.svc"])
    assert r.status_code == 201, r.text
    # ... but not two labels, nor the bare suffix.
    _, r = enroll(api, name, dns_names=[f"a.b.{name}.svc"])
    assert_error(r, 403, "san_not_allowed")
    # A literal wildcard certificate needs allow_wildcards.
    _, r = enroll(api, name, dns_names=[pattern])
    assert_error(r, 403, "san_not_allowed")
    assert "allow_wildcards=false" in message(r) and pattern in message(r)
    # The same through the CSR's own SAN extension.
    r = api.enroll(api.mint_token(name), make_csr(make_key(), dns=[pattern]))
    assert_error(r, 403, "san_not_allowed")
    # No names asked: the exact names only, never the pattern.
    _, r = enroll(api, name)
    assert r.status_code == 201 and r.json()["dns_names"] == [f"api.{name}.svc"]

    assert patch(api, name, allow_wildcards=True).json()["allow_wildcards"] is True
    key, r = enroll(api, name, dns_names=[pattern])
    assert r.status_code == 201, r.text
    assert dns_of(leaf(r.json())) == [pattern]
    creds = sysutil.write_workload(tmp_path / "wild", key, r.json())
    # A wildcard not listed as is stays refused even with the flag.
    _, r = enroll(api, name, dns_names=[f"*.x.{name}.svc"])
    assert_error(r, 403, "san_not_allowed")

    # Flag off again: the wildcard certificate's renewal drops the name.
    assert patch(api, name, allow_wildcards=False).status_code == 200
    r = renew(api, creds)
    assert r.status_code == 201, r.text
    assert r.json()["dns_names"] == [] and dns_of(leaf(r.json())) == []
    r = renew(api, creds, dns_names=[pattern])
    assert_error(r, 403, "san_not_allowed")
    assert "allow_wildcards=false" in message(r)


def test_wildcard_flag_at_creation(cli, api, unique):
    name = unique("wcc")
    out = cli.json("service", "add", name, "--dns", f"*.{name}.svc", "--allow-wildcards", "true",
                   "--json")
    assert out["allow_wildcards"] is True
    _, r = enroll(api, name, dns_names=[f"*.{name}.svc"])
    assert r.status_code == 201, r.text
    assert api.create_service(unique("wcd"))["allow_wildcards"] is False


# ---------------------------------------------------------------- TTL and key types

def test_ttl_capped_and_reported(api, unique):
    name = unique("ttl")
    api.create_service(name, default_ttl="1h", max_ttl="2h")
    _, r = enroll(api, name, ttl="10h")
    assert r.status_code == 201, r.text
    assert r.json()["ttl"] == 7200
    c = leaf(r.json())
    assert (sysutil.not_after(c) - sysutil.not_before(c)).total_seconds() == 7200 + 60
    _, r = enroll(api, name)
    assert r.json()["ttl"] == 3600
    _, r = enroll(api, name, ttl="90m")
    assert r.json()["ttl"] == 5400
    _, r = enroll(api, name, ttl="1s")
    assert_error(r, 400, "invalid_ttl")
    assert "minimum" in message(r)


@pytest.mark.parametrize("allowed,key,ok", [
    (["rsa-2048"], "rsa-2048", True),
    (["rsa-2048"], "rsa-3072", True),      # rsa-N is a minimum size
    (["rsa-3072"], "rsa-2048", False),
    (["rsa-3072"], "rsa-3072", True),
    (["rsa-3072"], "rsa-4096", True),
    (["ecdsa-p256", "rsa-3072"], "ecdsa-p384", False),
    (["ecdsa-p256"], "ed25519", False),
    (["ed25519"], "ed25519", True),
    (["ecdsa-p384"], "ecdsa-p384", True),
])
def test_key_type_rules(api, unique, allowed, key, ok):
    name = unique("kt")
    api.create_service(name, key_types=allowed)
    _, r = enroll(api, name, key=make_key(key))
    if ok:
        assert r.status_code == 201, r.text
        return
    assert_error(r, 400, "key_type_not_allowed")
    msg = message(r)
    assert "policy" in msg and all(a in msg for a in allowed), msg
    if key.startswith("rsa-"):
        assert f"{key[4:]} bits" in msg
    else:
        assert key in msg


def test_weak_rsa_refused_whatever_the_policy(api, unique):
    name = unique("weak")
    api.create_service(name)
    _, r = enroll(api, name, key=make_key("rsa-1024"))
    assert_error(r, 400, "weak_key")


def test_exactly_one_uri_san(api, ca, unique):
    name = unique("uri")
    api.create_service(name, dns_names=[f"{name}.svc"], ip_addresses=["192.0.2.10"])
    # URI SANs in the CSR are ignored: identity comes from the service.
    r = api.enroll(api.mint_token(name), make_csr(make_key(), dns=[f"{name}.svc"],
                   uris=["spiffe://evil.example/x", f"spiffe://{ca.trust_domain}/svc/other"]))
    assert r.status_code == 201, r.text
    assert_one_uri(leaf(r.json()), ca.spiffe(name))
    _, r = enroll(api, name)
    assert_one_uri(leaf(r.json()), ca.spiffe(name))


def test_service_spiffe_id_rules(api, ca, unique):
    """SPIFFE ID spec refusals reach the API with the rule cited."""
    td = ca.trust_domain
    for bad, why in [(f"spiffe://{td}/a//b", "empty path segment"),
                     (f"spiffe://{td}/a/../b", "'..'"),
                     (f"spiffe://{td}/a/", "trailing slash"),
                     (f"spiffe://{td}/a?x", "query"),
                     (f"spiffe://{td}/a%41", "percent"),
                     (f"spiffe://{td}:443/a", "port"),
                     ("spiffe://other.example/a", "is not this CA's")]:
        r = api.post("/v1/services", ADMIN, json={"name": unique("sid"), "spiffe_id": bad})
        assert_error(r, 400, "invalid_spiffe_id")
        assert "SPIFFE ID spec" in message(r) and why in message(r), (bad, message(r))


# ---------------------------------------------------------------- name constraints

NC_DNS = "mesh.internal"
NC_IP = "10.0.0.0/8"


@pytest.fixture(scope="module")
def nc_ca(binaries, tmp_path_factory):
    state = tmp_path_factory.mktemp("nc-ca") / "state"
    res = sysutil.meshca_init(state, extra=["--name-constraints", "--permitted-dns", NC_DNS,
                                            "--permitted-ip", NC_IP])
    assert res.returncode == 0, sysutil.describe(res)
    return sysutil.CA(state, sysutil.TRUST_DOMAIN, res)


@pytest.fixture(scope="module")
def nc_daemon(nc_ca, tmp_path_factory):
    d = Daemon(nc_ca, tmp_path_factory.mktemp("nc-meshcad")).start()
    yield d
    d.stop(check=True)


@pytest.fixture(scope="module")
def nc_api(nc_ca, nc_daemon):
    return sysutil.Api(nc_ca, nc_daemon)


def openssl_verify(ca, fullchain, tmp_path):
    certs = sysutil.load_certs(fullchain.read_text())
    leaf_p = tmp_path / ("leaf-" + secrets.token_hex(3) + ".pem")
    leaf_p.write_text(sysutil.cert_pem(certs[0]))
    return sysutil.run(["openssl", "verify", "-x509_strict", "-CAfile", ca.root_crt,
                        "-untrusted", ca.intermediate_crt, leaf_p])


def certtool_verify(ca, fullchain, tmp_path):
    chain = tmp_path / ("chain-" + secrets.token_hex(3) + ".pem")
    chain.write_text(fullchain.read_text() + ca.root_crt.read_text())
    return sysutil.run(["certtool", "--verify-chain", "--infile", chain])


def gnutls_ok(res):
    return res.returncode == 0 and "Chain verification output: Verified" in res.stdout


def forge(ca, tmp_path, uri, dns=(), ips=(), cn=None):
    """A leaf signed with the intermediate's key directly, as a misbehaving
    CA would: everything right except the names."""
    ikey = serialization.load_pem_private_key((ca.dir / "intermediate.key").read_bytes(), None)
    inter = ca.intermediate
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names = ([x509.UniformResourceIdentifier(uri)] + [x509.DNSName(d) for d in dns]
             + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    c = (x509.CertificateBuilder().subject_name(subject).issuer_name(inter.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(now + datetime.timedelta(hours=1))
         .add_extension(x509.SubjectAlternativeName(names), critical=not cn)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                      False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                               ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
             inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value),
             critical=False)
         .sign(ikey, hashes.SHA256()))
    out = tmp_path / ("forged-" + secrets.token_hex(3) + ".pem")
    out.write_text(sysutil.cert_pem(c) + sysutil.cert_pem(inter))
    return out


def test_init_writes_name_constraints(nc_ca):
    ext = nc_ca.intermediate.extensions.get_extension_for_oid(ExtensionOID.NAME_CONSTRAINTS)
    assert ext.critical, "RFC 5280 4.2.1.10: conforming CAs MUST mark it critical"
    nc = ext.value
    assert nc.excluded_subtrees is None
    got = {(type(g).__name__, str(g.value)) for g in nc.permitted_subtrees}
    assert ("UniformResourceIdentifier", nc_ca.trust_domain) in got
    assert ("DNSName", NC_DNS) in got and ("DNSName", "localhost") in got    # meshcad's own
    assert ("IPAddress", NC_IP) in got
    assert ("IPAddress", "127.0.0.1/32") in got and ("IPAddress", "::1/128") in got
    # The root is not constrained; an unconstrained CA has no extension.
    with pytest.raises(x509.ExtensionNotFound):
        nc_ca.root.extensions.get_extension_for_oid(ExtensionOID.NAME_CONSTRAINTS)


def test_init_constraint_options(binaries, tmp_path):
    res = sysutil.meshca_init(tmp_path / "a", extra=["--permitted-dns", "x.internal"])
    assert res.returncode == 2 and "--name-constraints" in res.stderr
    res = sysutil.meshca_init(tmp_path / "b", extra=["--name-constraints", "--permitted-dns",
                                                     "*.x.internal"])
    assert res.returncode == 2 and "RFC 5280 4.2.1.10" in res.stderr
    res = sysutil.meshca_init(tmp_path / "c", extra=["--name-constraints", "--no-uri-constraint",
                                                     "--permitted-dns", "x.internal"])
    assert res.returncode == 0, sysutil.describe(res)
    inter = sysutil.CA(tmp_path / "c", sysutil.TRUST_DOMAIN, res).intermediate
    nc = inter.extensions.get_extension_for_oid(ExtensionOID.NAME_CONSTRAINTS).value
    kinds = {type(g).__name__ for g in nc.permitted_subtrees}
    assert kinds == {"DNSName"}, kinds      # no URI subtree, and IPs unconstrained


def test_constrained_ca_serves_and_admins_work(nc_ca, nc_daemon, nc_api):
    """meshcad (GnuTLS) accepts the admin certificate, the CLI (libcurl-GnuTLS)
    and requests (OpenSSL) accept meshcad's server certificate, under the
    constraints."""
    cli = Cli(nc_ca, nc_daemon)
    cli("service", "list")
    assert nc_api.get("/v1/services", ADMIN).status_code == 200


def test_issued_leaves_pass_openssl_and_gnutls(nc_ca, nc_api, unique, tmp_path, tools):
    name = unique("nc")
    nc_api.create_service(name, dns_names=[f"{name}.{NC_DNS}", f"*.pods.{NC_DNS}"],
                          ip_addresses=["10.1.0.0/16"])
    creds, r = enrolled(nc_api, tmp_path, name, dns_names=[f"{name}.{NC_DNS}", f"p1.pods.{NC_DNS}"],
                        ip_addresses=["10.1.2.3"])
    assert_one_uri(leaf(r), nc_ca.spiffe(name))
    res = openssl_verify(nc_ca, creds[0], tmp_path)
    assert res.returncode == 0, sysutil.describe(res)
    res = certtool_verify(nc_ca, creds[0], tmp_path)
    assert gnutls_ok(res), sysutil.describe(res)
    # A leaf with no DNS name: no CN either (GnuTLS would check it as a host
    # name against the dNSName subtrees); the service name is in OU.
    bare = unique("ncb")
    nc_api.create_service(bare)
    creds, r = enrolled(nc_api, tmp_path, bare)
    c = leaf(r)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == bare
    assert gnutls_ok(certtool_verify(nc_ca, creds[0], tmp_path))
    assert openssl_verify(nc_ca, creds[0], tmp_path).returncode == 0
    # meshcad itself (GnuTLS) accepts it as a client certificate.
    r = renew(nc_api, creds)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("case", ["dns", "ip", "uri", "cn"])
def test_forged_leaf_outside_constraints_fails(nc_ca, tmp_path, tools, case):
    td = nc_ca.trust_domain
    good_uri = f"spiffe://{td}/svc/forged"
    if case == "dns":
        p = forge(nc_ca, tmp_path, good_uri, dns=["www.evil.example"])
    elif case == "ip":
        p = forge(nc_ca, tmp_path, good_uri, dns=[f"x.{NC_DNS}"], ips=["192.168.1.1"])
    elif case == "uri":
        p = forge(nc_ca, tmp_path, "spiffe://evil.example/svc/forged", dns=[f"x.{NC_DNS}"])
    else:   # no DNS SAN, CN a host name outside: GnuTLS and OpenSSL check the CN
        p = forge(nc_ca, tmp_path, good_uri, cn="www.evil.example")
    o = openssl_verify(nc_ca, p, tmp_path)
    assert o.returncode != 0, "OpenSSL accepted a forged leaf\n" + sysutil.describe(o)
    assert "name constraint" in (o.stdout + o.stderr).lower() or "permitted" in (o.stdout + o.stderr)
    g = certtool_verify(nc_ca, p, tmp_path)
    if case == "uri":
        # GnuTLS 3.7 ignores URI subtrees (it neither enforces nor rejects
        # them): the URI constraint is enforced by OpenSSL (and Go) and by
        # meshcad before signing.  Pin the behaviour so a change is noticed.
        assert gnutls_ok(g), "GnuTLS now enforces URI constraints: update README\n" + \
            sysutil.describe(g)
    else:
        assert not gnutls_ok(g), "GnuTLS accepted a forged leaf\n" + sysutil.describe(g)
        assert "constraints" in g.stdout
    # Control: the same forging with names inside passes both.
    ok = forge(nc_ca, tmp_path, good_uri, dns=[f"x.{NC_DNS}"], ips=["10.3.3.3"])
    assert openssl_verify(nc_ca, ok, tmp_path).returncode == 0
    assert gnutls_ok(certtool_verify(nc_ca, ok, tmp_path))


def test_meshcad_refuses_names_outside_constraints(nc_ca, nc_api, unique, tmp_path):
    name = unique("nco")
    # At registration and at update: the rule and the name are cited.
    r = nc_api.post("/v1/services", ADMIN, json={"name": name, "dns_names": ["api.evil.example"]})
    assert_error(r, 403, "san_not_allowed")
    assert "RFC 5280 4.2.1.10" in message(r) and "api.evil.example" in message(r)
    r = nc_api.post("/v1/services", ADMIN, json={"name": name, "ip_addresses": ["192.168.0.0/16"]})
    assert_error(r, 403, "san_not_allowed")
    r = nc_api.post("/v1/services", ADMIN, json={"name": name, "ip_addresses": ["10.0.0.0/7"]})
    assert_error(r, 403, "san_not_allowed")       # wider than 10/8
    nc_api.create_service(name, dns_names=[f"{name}.{NC_DNS}"])
    r = patch(nc_api, name, add_dns_names=["*.evil.example"])
    assert_error(r, 403, "san_not_allowed")
    # Before signing: a policy that somehow holds an outside name (edited
    # behind meshcad's back) still gets nothing signed.
    import sqlite3
    con = sqlite3.connect(str(nc_ca.dir / "meshca.db"), timeout=15)
    with con:
        con.execute("UPDATE services SET dns_names = ? WHERE name = ?",
                    (f"{name}.{NC_DNS}\napi.evil.example", name))
    con.close()
    before = nc_api.cert_count(service=name)
    _, r = enroll(nc_api, name, dns_names=["api.evil.example"])
    assert_error(r, 403, "san_not_allowed")
    assert "RFC 5280 4.2.1.10" in message(r) and "name constraints" in message(r)
    assert nc_api.cert_count(service=name) == before
