"""The authorization matrix (issue 5, Operators): who may call what.

Every case asserts the HTTP status AND the stable error.code, and for a
refused write that nothing changed.  Credentials tried: none, a workload
certificate, a viewer, an admin, an admin of another CA, a certificate of a
foreign CA carrying this mesh's admin SPIFFE ID, a removed admin.  Also:
enrollment tokens cannot reach another service's names, renewal drops a
name the service lost, the last admin cannot be removed, admins are added,
enrolled and used through the CLI, and `meshca status` counts what exists.
"""

import datetime
import json
import os
import secrets
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

import sysutil
from sysutil import (ADMIN, TOKEN_RE, Api, Cli, Daemon, ForeignCA, assert_error, make_ca,
                     make_csr, make_key)

TD = sysutil.TRUST_DOMAIN


# ---------------------------------------------------------------- helpers

def admin_id(name, td=TD):
    return f"spiffe://{td}/meshca/admin/{name}"


def add_admin(api, role, client=ADMIN, name=None, **fields):
    """POST /v1/admins; returns (name, token)."""
    name = name or f"op-{secrets.token_hex(3)}"
    r = api.post("/v1/admins", client, json={"name": name, "role": role, **fields})
    assert r.status_code == 201, f"add admin {name}: {r.status_code} {r.text}"
    body = r.json()
    assert body["name"] == name and body["role"] == role and body["status"] == "active", body
    assert body["spiffe_id"] == admin_id(name, api.ca.trust_domain), body
    assert TOKEN_RE.match(body["token"]), body
    return name, body["token"]


def enroll_admin(api, token, out_dir, **fields):
    """POST /v1/enroll with an admin's token; the credential as (fullchain, key)."""
    key = make_key("ecdsa-p256")
    r = api.enroll(token, make_csr(key), **fields)
    assert r.status_code == 201, f"admin enroll: {r.status_code} {r.text}"
    return sysutil.write_workload(out_dir, key, r.json()), r.json()


def new_admin(api, tmp_path_factory, role, client=ADMIN):
    name, token = add_admin(api, role, client)
    cred, _ = enroll_admin(api, token, tmp_path_factory.mktemp(name))
    return name, cred


def service(api, prefix="az", **fields):
    name = f"{prefix}-{secrets.token_hex(3)}"
    api.create_service(name, **fields)
    return name


def enroll_workload(api, name, out_dir, **fields):
    key = make_key("ecdsa-p256")
    r = api.enroll(api.mint_token(name), make_csr(key), **fields)
    assert r.status_code == 201, r.text
    return sysutil.write_workload(out_dir, key, r.json()), r.json()


def leaf(resp_json):
    return x509.load_pem_x509_certificate(resp_json["certificate"].encode())


def sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (ext.get_values_for_type(x509.UniformResourceIdentifier),
            ext.get_values_for_type(x509.DNSName),
            [str(i) for i in ext.get_values_for_type(x509.IPAddress)])


def cert_status(api, serial):
    r = api.get(f"/v1/certificates/{serial}", ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["status"]


# ---------------------------------------------------------------- the matrix

@pytest.fixture(scope="module")
def target(api, tmp_path_factory):
    """Things for the endpoints to act on: a service with an enrolled workload
    (whose serial a write may try to revoke) and a spare admin."""
    name = service(api, dns_names=["t.authz.svc"])
    cred, resp = enroll_workload(api, name, tmp_path_factory.mktemp("target"))
    spare, _ = add_admin(api, "viewer")
    return {"service": name, "serial": resp["serial"], "cred": cred, "admin": spare}


def reads(t):
    """Read-only endpoints: role viewer is enough."""
    return [
        ("GET", "/v1/services", None),
        ("GET", f"/v1/services/{t['service']}", None),
        ("GET", "/v1/certificates", None),
        ("GET", f"/v1/certificates/{t['serial']}", None),
        ("GET", "/v1/admins", None),
        ("GET", f"/v1/admins/{t['admin']}", None),
        ("GET", "/v1/status", None),
        ("GET", "/v1/audit", None),
    ]


def writes(t):
    """Endpoints that change state: role admin.  Bodies are valid, so that
    only the credential can be the reason for a refusal."""
    return [
        ("POST", "/v1/services", {"name": f"never-{secrets.token_hex(3)}"}),
        ("PATCH", f"/v1/services/{t['service']}", {"add_dns_names": ["never.authz.svc"]}),
        ("POST", f"/v1/services/{t['service']}/tokens", {}),
        ("POST", f"/v1/services/{t['service']}/disable", {"revoke": True}),
        ("POST", f"/v1/services/{t['service']}/enable", None),
        ("POST", "/v1/revoke", {"serial": t["serial"], "reason": "keyCompromise"}),
        ("POST", "/v1/admins", {"name": f"never-{secrets.token_hex(3)}", "role": "admin"}),
        ("POST", f"/v1/admins/{t['admin']}/tokens", {}),
        ("POST", f"/v1/admins/{t['admin']}/remove", None),
    ]


def call(api, client, method, path, body):
    kw = {"json": body} if body is not None else {}
    return api.request(method, path, client, **kw)


def snapshot(api, t):
    """What a refused write must not have changed."""
    svc = api.get(f"/v1/services/{t['service']}", ADMIN).json()
    adm = api.get(f"/v1/admins/{t['admin']}", ADMIN).json()
    return (sorted(s["name"] for s in api.get("/v1/services", ADMIN).json()["services"]),
            svc["enabled"], svc["dns_names"], cert_status(api, t["serial"]),
            sorted(a["name"] for a in api.get("/v1/admins", ADMIN).json()["admins"]),
            adm["status"])


def assert_refused_everywhere(api, t, client, endpoints, status, code):
    before = snapshot(api, t)
    for method, path, body in endpoints:
        r = call(api, client, method, path, body)
        assert r.status_code == status and sysutil.error_code(r) == code, \
            f"{method} {path}: want {status} {code}, got {r.status_code}: {r.text[:300]}"
    assert snapshot(api, t) == before, "a refused request changed something"


def test_no_credential_is_401_everywhere(api, target):
    assert_refused_everywhere(api, target, None, reads(target) + writes(target),
                              401, "unauthenticated")


def test_workload_certificate_is_403_everywhere(api, target, tmp_path):
    assert_refused_everywhere(api, target, target["cred"], reads(target) + writes(target)[:-4],
                              403, "forbidden")
    # A holder may revoke its own certificate (not tried here: it would end
    # the fixture); any other serial is an admin's business.
    other = service(api)
    _, resp = enroll_workload(api, other, tmp_path / "other")
    assert_error(api.post("/v1/revoke", target["cred"], json={"serial": resp["serial"]}),
                 403, "forbidden")
    assert cert_status(api, resp["serial"]) == "active"
    for method, path, body in writes(target)[-3:]:
        assert_error(call(api, target["cred"], method, path, body), 403, "forbidden")


def test_viewer_reads_but_never_writes(api, target, tmp_path_factory):
    _, viewer = new_admin(api, tmp_path_factory, "viewer")
    for method, path, body in reads(target):
        r = call(api, viewer, method, path, body)
        assert r.status_code == 200, f"viewer {method} {path}: {r.status_code} {r.text[:300]}"
    assert_refused_everywhere(api, target, viewer, writes(target), 403, "forbidden")
    r = call(api, viewer, "POST", "/v1/services", {"name": "viewer-made"})
    assert "needs the admin role" in r.json()["error"]["message"], r.text
    assert "role viewer" in r.json()["error"]["message"], r.text


def test_viewer_cannot_mint_tokens_or_revoke(api, target, tmp_path_factory):
    _, viewer = new_admin(api, tmp_path_factory, "viewer")
    before = api.cert_count(service=target["service"])
    assert_error(api.post(f"/v1/services/{target['service']}/tokens", viewer, json={"ttl": "1h"}),
                 403, "forbidden")
    name, _ = add_admin(api, "viewer")
    assert_error(api.post(f"/v1/admins/{name}/tokens", viewer, json={}), 403, "forbidden")
    assert_error(api.post("/v1/revoke", viewer, json={"serial": target["serial"]}), 403, "forbidden")
    assert cert_status(api, target["serial"]) == "active"
    assert api.cert_count(service=target["service"]) == before
    # Its own certificate, like any holder's, it may revoke.
    me = x509.load_pem_x509_certificate(viewer[0].read_bytes())
    serial = format(me.serial_number, "x")
    r = api.post("/v1/revoke", viewer, json={"serial": serial})
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    assert_error(api.get("/v1/status", viewer), 401, "certificate_revoked")


def test_admin_of_another_ca_is_unknown_issuer(api, target, tmp_path):
    other = make_ca(tmp_path / "other")
    theirs = (other.admin_crt, other.admin_key)
    assert_refused_everywhere(api, target, theirs, reads(target) + writes(target),
                              401, "unknown_issuer")
    # A foreign CA issuing this mesh's very admin SPIFFE ID gets no further.
    forged = ForeignCA().issue(tmp_path / "forged", admin_id("admin"))
    assert_refused_everywhere(api, target, forged, reads(target)[:2] + writes(target)[:2],
                              401, "unknown_issuer")


def test_removed_admin_is_revoked_everywhere(api, target, tmp_path_factory):
    name, cred = new_admin(api, tmp_path_factory, "admin")
    # While active it administers: it can even add a service.
    made = f"by-{name}"
    r = api.post("/v1/services", cred, json={"name": made})
    assert r.status_code == 201, r.text
    serials = [c["serial"] for c in api.certificates(kind="admin")
               if c["spiffe_id"] == admin_id(name) and c["status"] == "active"]
    assert len(serials) == 1
    r = api.post(f"/v1/admins/{name}/remove", ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "removed" and r.json()["revoked"] == 1, r.json()
    assert r.json()["removed_at"], r.json()
    c = api.get(f"/v1/certificates/{serials[0]}", ADMIN).json()
    assert c["status"] == "revoked" and c["revocation_reason"] == "cessationOfOperation", c
    assert_refused_everywhere(api, target, cred, reads(target) + writes(target),
                              401, "certificate_revoked")
    assert_error(api.post("/v1/renew", cred, json={"csr": make_csr()}), 401, "certificate_revoked")
    # Removing again: no active admin of that name.
    assert_error(api.post(f"/v1/admins/{name}/remove", ADMIN), 404, "not_found")
    listed = {a["name"]: a for a in api.get("/v1/admins", ADMIN).json()["admins"]}
    assert listed[name]["status"] == "removed"


def test_removed_admin_token_is_dead(api):
    name, token = add_admin(api, "admin")
    assert api.post(f"/v1/admins/{name}/remove", ADMIN).status_code == 200
    r = api.enroll(token, make_csr())
    assert r.status_code == 401 and sysutil.error_code(r) in ("token_expired", "token_invalid"), r.text
    assert_error(api.post(f"/v1/admins/{name}/tokens", ADMIN, json={}), 404, "not_found")


# ---------------------------------------------------------------- tokens and names

def test_token_of_service_a_cannot_get_names_of_b(api):
    a = service(api, dns_names=["a.authz.svc"], ip_addresses=["10.1.0.1"])
    b = service(api, dns_names=["b.authz.svc", "*.b.authz.svc"], ip_addresses=["10.2.0.0/24"])
    tok = api.mint_token(a)
    for fields, csr in (({"dns_names": ["b.authz.svc"]}, make_csr()),
                        ({"dns_names": ["x.b.authz.svc"]}, make_csr()),
                        ({"ip_addresses": ["10.2.0.7"]}, make_csr()),
                        ({"dns_names": ["a.authz.svc", "b.authz.svc"]}, make_csr()),
                        ({}, make_csr(dns=["b.authz.svc"])),
                        ({}, make_csr(ips=["10.2.0.7"]))):
        r = api.enroll(tok, csr, **fields)
        assert_error(r, 403, "san_not_allowed")
        assert "b.authz.svc" in r.json()["error"]["message"] or "10.2.0.7" in r.json()["error"]["message"]
    assert api.cert_count(service=b) == 0 and api.cert_count(service=a) == 0
    # Asking for B's SPIFFE ID in the CSR changes nothing: identity is A's record.
    r = api.enroll(tok, make_csr(uris=[f"spiffe://{TD}/svc/{b}"]))
    assert r.status_code == 201, "the refusals must not have spent the token: " + r.text
    uris, dns, ips = sans(leaf(r.json()))
    assert uris == [f"spiffe://{TD}/svc/{a}"] and dns == ["a.authz.svc"] and ips == ["10.1.0.1"]
    assert_error(api.enroll(tok, make_csr()), 401, "token_used")


def test_admin_token_issues_only_an_admin_identity(api):
    name, token = add_admin(api, "viewer")
    assert_error(api.enroll(token, make_csr(), dns_names=["admin.authz.svc"]), 403, "san_not_allowed")
    r = api.enroll(token, make_csr(dns=["evil.svc"], uris=[f"spiffe://{TD}/svc/payments"]),
                   ttl="9999d")
    assert r.status_code == 201, "the refusal must not have spent the token: " + r.text
    cert = leaf(r.json())
    uris, dns, ips = sans(cert)
    assert uris == [admin_id(name)] and dns == [] and ips == []
    assert r.json()["spiffe_id"] == admin_id(name)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    life = cert.not_valid_after - cert.not_valid_before
    assert life <= datetime.timedelta(days=90, minutes=2), "capped by admin_max_ttl (90 d)"
    rec = api.get(f"/v1/certificates/{r.json()['serial']}", ADMIN).json()
    assert rec["kind"] == "admin" and rec["service"] is None, rec
    assert_error(api.enroll(token, make_csr()), 401, "token_used")


def test_renewal_drops_a_name_the_service_lost(api, tmp_path):
    name = service(api, dns_names=["keep.authz.svc", "lose.authz.svc"])
    cred, resp = enroll_workload(api, name, tmp_path / "wl")
    assert sorted(resp["dns_names"]) == ["keep.authz.svc", "lose.authz.svc"]
    r = api.request("PATCH", f"/v1/services/{name}", ADMIN,
                    json={"dns_names": ["keep.authz.svc"]})
    assert r.status_code == 200, f"service update: {r.status_code} {r.text}"
    # Even a CSR that asks for the lost name: renewal takes names from the
    # presented certificate under today's policy, never from the CSR.
    r = api.post("/v1/renew", cred, json={"csr": make_csr(dns=["lose.authz.svc"])})
    assert r.status_code == 201, r.text
    uris, dns, _ = sans(leaf(r.json()))
    assert dns == ["keep.authz.svc"] and uris == [f"spiffe://{TD}/svc/{name}"]
    assert r.json()["dns_names"] == ["keep.authz.svc"]
    # Asking for it explicitly in the request is refused, naming the name.
    r = api.post("/v1/renew", cred, json={"csr": make_csr(), "dns_names": ["lose.authz.svc"]})
    assert_error(r, 403, "san_not_allowed")
    assert "lose.authz.svc" in r.json()["error"]["message"]


def test_admin_and_viewer_renew_keeping_their_role(api, tmp_path_factory):
    _, viewer = new_admin(api, tmp_path_factory, "viewer")
    key = make_key("ed25519")
    r = api.post("/v1/renew", viewer, json={"csr": make_csr(key), "ttl": "2h"})
    assert r.status_code == 201, r.text
    renewed = sysutil.write_workload(tmp_path_factory.mktemp("renewed"), key, r.json())
    assert api.get("/v1/services", renewed).status_code == 200
    assert_error(api.post("/v1/services", renewed, json={"name": "viewer-renewed"}), 403, "forbidden")
    rec = api.get(f"/v1/certificates/{r.json()['serial']}", ADMIN).json()
    assert rec["kind"] == "admin" and rec["renewed_from"], rec


# ---------------------------------------------------------------- the last admin

def test_last_admin_cannot_be_removed(tmp_path):
    ca = make_ca(tmp_path / "lone")
    d = Daemon(ca, tmp_path).start()
    try:
        api = Api(ca, d)
        r = api.post("/v1/admins/admin/remove", ADMIN)
        assert_error(r, 409, "conflict")
        assert "last" in r.json()["error"]["message"]
        add_admin(api, "viewer", name="watcher")
        assert_error(api.post("/v1/admins/admin/remove", ADMIN), 409, "conflict")
        assert api.get("/v1/status", ADMIN).status_code == 200, "the refusal revoked nothing"
        name, token = add_admin(api, "admin", name="second")
        second, _ = enroll_admin(api, token, tmp_path / "second")
        r = api.post("/v1/admins/admin/remove", second, json={"reason": "superseded"})
        assert r.status_code == 200 and r.json()["revoked"] == 1, r.text
        assert_error(api.get("/v1/status", ADMIN), 401, "certificate_revoked")
        assert_error(api.post(f"/v1/admins/{name}/remove", second), 409, "conflict")
        assert api.get("/v1/status", second).status_code == 200
        assert_error(api.post("/v1/admins/watcher/remove", second, json={"reason": "certificateHold"}),
                     400, "invalid_argument")
    finally:
        d.stop(check=True)


# ---------------------------------------------------------------- the CLI

def test_cli_admin_add_enroll_use_remove(ca, cli, api, meshcad, tmp_path):
    name = f"ops-{secrets.token_hex(3)}"
    res = cli("admin", "add", name, "--role", "admin", "--ttl", "10m")
    token = res.stdout.strip()
    assert TOKEN_RE.match(token) and res.stdout == token + "\n", "the token alone on stdout"
    assert name in res.stderr and "admin enroll" in res.stderr
    tok_file = tmp_path / "tok"
    tok_file.write_text(token + "\n")
    out = tmp_path / "cred"
    env = sysutil.base_env()
    res = cli("admin", "enroll", "--url", meshcad.url, "--fingerprint", ca.fingerprint,
              "--token-file", tok_file, "--out", out, env=env)
    assert admin_id(name) in res.stdout and "MESHCA_ADMIN_CERT=" in res.stdout, res.stdout
    assert stat.S_IMODE(os.stat(out / "key.pem").st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert sans(cert)[0] == [admin_id(name)] and sans(cert)[1] == []
    # That credential alone, through the environment, runs admin commands.
    env.update(MESHCA_URL=meshcad.url, MESHCA_ROOT_CERT=str(out / "roots.pem"),
               MESHCA_ADMIN_CERT=str(out / "fullchain.pem"), MESHCA_ADMIN_KEY=str(out / "key.pem"))
    made = f"cli-{secrets.token_hex(3)}"
    cli("service", "add", made, env=env)
    listed = json.loads(cli("admin", "list", "--json", env=env).stdout)["admins"]
    entry = next(a for a in listed if a["name"] == name)
    assert entry["role"] == "admin" and entry["status"] == "active", entry
    assert json.loads(cli("status", "--json", env=env).stdout)["trust_domain"] == TD
    # The token was single use.
    res = cli("admin", "enroll", "--url", meshcad.url, "--fingerprint", ca.fingerprint,
              "--token-file", tok_file, "--out", tmp_path / "again", expect=1,
              env=sysutil.base_env())
    assert "token_used" in res.stderr
    # --dns makes no sense for an admin.
    cli("admin", "enroll", "--url", meshcad.url, "--fingerprint", ca.fingerprint,
        "--token-file", tok_file, "--out", tmp_path / "x", "--dns", "a.svc", expect=2)
    # A viewer added by the CLI is refused writes by the CLI.
    vname = f"view-{secrets.token_hex(3)}"
    vtok = cli("admin", "add", vname).stdout.strip()
    (tmp_path / "vtok").write_text(vtok)
    cli("admin", "enroll", "--url", meshcad.url, "--root-cert", ca.root_crt,
        "--token-file", tmp_path / "vtok", "--out", tmp_path / "viewer", env=sysutil.base_env())
    venv = dict(env, MESHCA_ADMIN_CERT=str(tmp_path / "viewer" / "fullchain.pem"),
                MESHCA_ADMIN_KEY=str(tmp_path / "viewer" / "key.pem"))
    cli("service", "list", env=venv)
    res = cli("service", "add", f"no-{secrets.token_hex(3)}", env=venv, expect=1)
    assert "forbidden" in res.stderr and "admin role" in res.stderr
    res = cli("admin", "remove", name, env=venv, expect=1)
    assert "forbidden" in res.stderr
    # Removal through the CLI revokes that credential.
    res = cli("admin", "remove", name)
    assert "revoked 1 certificate" in res.stdout
    res = cli("service", "list", env=env, expect=1)
    assert "certificate_revoked" in res.stderr
    text = cli("admin", "list").stdout
    assert name in text and "removed" in text


def test_cli_help_and_usage(cli):
    for words in (("admin", "add"), ("admin", "list"), ("admin", "remove"), ("admin", "token"),
                  ("admin", "enroll"), ("status",)):
        res = cli(*words, "--help")
        assert res.stdout.startswith("usage: meshca " + " ".join(words)), res.stdout
    cli("admin", "add", expect=2)
    cli("admin", "add", "bad/name", expect=2)
    cli("admin", "add", "x", "--role", "root", expect=2)
    cli("admin", "remove", expect=2)
    cli("status", "extra", expect=2)


# ---------------------------------------------------------------- status

def test_status_counts_match_reality(api, cli, ca, tmp_path):
    def counts():
        return api.get("/v1/status", ADMIN).json()["counts"]

    def from_list():
        now = sysutil.utcnow()
        certs = api.certificates(limit=10000)
        live = [c for c in certs if c["status"] == "active"]
        soon = [c for c in live if datetime.datetime.fromisoformat(
            c["not_after"].replace("Z", "+00:00")) - now <= datetime.timedelta(hours=24)]
        return len(live), len(soon), len([c for c in certs if c["status"] == "revoked"])

    before = counts()
    long_svc = service(api, "st", default_ttl="48h")
    short_svc = service(api, "st", default_ttl="1h")
    serials = [enroll_workload(api, long_svc, tmp_path / f"l{i}")[1]["serial"] for i in range(3)]
    enroll_workload(api, short_svc, tmp_path / "s")
    assert api.post("/v1/revoke", ADMIN, json={"serial": serials[0]}).status_code == 200
    after = counts()
    assert after["services"] == before["services"] + 2
    c0, c1 = before["certificates"], after["certificates"]
    assert c1["live"] == c0["live"] + 3
    assert c1["expiring_24h"] == c0["expiring_24h"] + 1
    assert c1["revoked"] == c0["revoked"] + 1
    assert c1["revoked_unexpired"] == c0["revoked_unexpired"] + 1
    assert c1["total"] == c0["total"] + 4
    assert after["expiring_window"] == 86400
    # ... and in absolute terms, against the certificate list.
    assert (c1["live"], c1["expiring_24h"], c1["revoked"]) == from_list()
    assert after["admins"] == len([a for a in api.get("/v1/admins", ADMIN).json()["admins"]
                                   if a["status"] == "active"])
    # The CLI shows the same numbers, and the CA's own dates.
    js = json.loads(cli("status", "--json").stdout)
    assert js["counts"]["certificates"] == c1 and js["trust_domain"] == TD
    assert js["status"] == "ok" and js["database"] == "ok" and js["warnings"] == []
    for key, cert in (("root", ca.root), ("intermediate", ca.intermediate)):
        assert js[key]["not_after"] == sysutil.not_after(cert).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = cli("status").stdout
    assert f"{c1['live']} live, {c1['expiring_24h']} expiring within 24h, {c1['revoked']} revoked" in text
    assert TD in text


# ---------------------------------------------------------------- the audit of operators

def test_operator_changes_are_audited(api, tmp_path):
    def entries_after(seq):
        r = api.get("/v1/audit", ADMIN, params={"after": seq, "limit": 10000})
        assert r.status_code == 200, r.text
        return r.json()["entries"]

    start = entries_after(0)
    last = start[-1]["seq"] if start else 0
    me = admin_id("admin")
    name, token = add_admin(api, "admin")
    _, resp = enroll_admin(api, token, tmp_path / "cred")
    assert_error(api.post("/v1/admins", ADMIN, json={"name": name, "role": "viewer"}),
                 409, "already_exists")
    r = api.post(f"/v1/admins/{name}/remove", ADMIN, json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    got = [(e["actor"], e["action"], e["subject"], e["outcome"]) for e in entries_after(last)]
    assert got == [
        (me, "admin.add", name, "success"),
        (me, "token.mint", name, "success"),
        (f"token:admin:{name}", "token.consume", name, "success"),
        (f"token:admin:{name}", "cert.issue", resp["serial"], "success"),
        (me, "admin.add", name, "failure"),
        (me, "admin.remove", name, "success"),
    ], got
    es = entries_after(last)
    assert es[0]["detail"] == {"role": "admin"}
    assert es[5]["detail"] == {"reason": "keyCompromise", "revoked": 1}
    assert es[4]["detail"]["error"] == "already_exists"
    assert token not in json.dumps(es), "a token never reaches the audit log"
