"""Hostile and wrong requests: each gets the documented 4xx JSON error (status
AND error.code from api/API.md), nothing is issued (the certificate count seen
by an admin is unchanged), an enrollment token survives a refused request
("A refused request changes nothing"), and meshcad still answers /v1/health."""

import json
import time

import pytest

import sysutil
from sysutil import ADMIN, assert_error, broken_signature_csr, make_csr, make_key

SVC = "hostile"
NARROW = "narrow"


@pytest.fixture(scope="module")
def services(api):
    api.create_service(SVC, dns_names=["hostile.svc", "*.hostile.svc"], ip_addresses=["10.9.0.0/16"])
    api.create_service(NARROW, dns_names=["narrow.svc"], key_types=["ecdsa-p256"])


MINTED = []


@pytest.fixture
def token(api, services):
    t = api.mint_token(SVC)
    MINTED.append(t)
    return t


def refused(api, send, status, code, token=None):
    """send() must be refused with status/code and change nothing."""
    before = api.cert_count()
    r = send()
    assert_error(r, status, code)
    if token is not None:
        assert token not in r.text, "the error response echoes the token"
    assert api.cert_count() == before, "a refused request issued a certificate"
    api.health()
    if token is not None:
        ok = api.enroll(token, make_csr())
        assert ok.status_code == 201, \
            f"token no longer usable after a refused request: {ok.status_code} {ok.text}"
        assert api.cert_count() == before + 1
    return r


def post_raw(api, body, content_type="application/json", client=None):
    headers = {} if content_type is None else {"Content-Type": content_type}
    return api.post("/v1/enroll", client, data=body, headers=headers)


# ---------------------------------------------------------------- CSRs

@pytest.mark.parametrize("csr", [
    "not a csr",
    "-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n",
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END CERTIFICATE REQUEST-----\n",
], ids=["text", "zeros", "truncated-der"])
def test_garbage_csr(api, token, csr):
    refused(api, lambda: api.enroll(token, csr), 400, "csr_invalid", token)


def test_certificate_instead_of_csr(ca, api, token):
    refused(api, lambda: api.enroll(token, ca.root_crt.read_text()), 400, "csr_invalid", token)


def test_csr_broken_signature(api, token):
    csr = broken_signature_csr()
    refused(api, lambda: api.enroll(token, csr), 400, "csr_signature_invalid", token)


def test_csr_broken_signature_rsa(api, token):
    csr = broken_signature_csr(make_key("rsa-2048"))
    refused(api, lambda: api.enroll(token, csr), 400, "csr_signature_invalid", token)


def test_rsa_1024_is_weak(api, token):
    csr = make_csr(make_key("rsa-1024"))
    refused(api, lambda: api.enroll(token, csr), 400, "weak_key", token)


def test_key_type_not_allowed_for_service(api, services):
    tok = api.mint_token(NARROW)
    MINTED.append(tok)
    csr = make_csr(make_key("ed25519"))
    refused(api, lambda: api.enroll(tok, csr), 400, "key_type_not_allowed", tok)


def test_ttl_below_minimum(api, token):
    csr = make_csr()
    refused(api, lambda: api.enroll(token, csr, ttl="1m"), 400, "invalid_ttl", token)


# ---------------------------------------------------------------- tokens

@pytest.mark.parametrize("bad", ["mca_" + "A" * 43, "mca_short", "not-a-token"])
def test_unknown_token(api, services, bad):
    csr = make_csr()
    r = refused(api, lambda: api.enroll(bad, csr), 401, "token_invalid")
    assert bad not in r.text


def test_used_token(api, token):
    first = api.enroll(token, make_csr())
    assert first.status_code == 201, first.text
    csr = make_csr()
    refused(api, lambda: api.enroll(token, csr), 401, "token_used")


def test_expired_token(api, cli, services):
    tok = cli("token", "create", SVC, "--ttl", "1s").stdout.strip()
    MINTED.append(tok)
    assert sysutil.TOKEN_RE.match(tok), tok
    time.sleep(2.5)   # expires_at has whole seconds: now is past it whichever way it rounds
    csr = make_csr()
    refused(api, lambda: api.enroll(tok, csr), 401, "token_expired")


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("fields", [
    {"dns_names": ["evil.example"]},
    {"dns_names": ["hostile.svc", "evil.example"]},
    {"dns_names": ["a.b.hostile.svc"]},          # *.suffix is exactly one more label
    {"dns_names": ["*.a.hostile.svc"]},           # a wildcard only if listed as is
    {"ip_addresses": ["10.10.0.1"]},
    {"ip_addresses": ["::1"]},
], ids=["foreign", "one-of-two", "two-labels", "wildcard", "ipv4-outside", "ipv6"])
def test_san_not_allowed(api, token, fields):
    csr = make_csr()
    refused(api, lambda: api.enroll(token, csr, **fields), 403, "san_not_allowed", token)


def test_san_not_allowed_from_csr(api, token):
    csr = make_csr(dns=["evil.example"])
    refused(api, lambda: api.enroll(token, csr), 403, "san_not_allowed", token)


# ---------------------------------------------------------------- bodies

def test_malformed_json_syntax(api, token):
    refused(api, lambda: post_raw(api, '{"token": "' + token + '", "csr": '), 400, "malformed_json", token)


@pytest.mark.parametrize("body", ['[]', '"csr"', '42', 'null', '', '{"token": 5, "csr": "x"}',
                                  '{"token": "x", "csr": ["a"]}', '\xff\xfe{}'],
                         ids=["array", "string", "number", "null", "empty", "token-number",
                              "csr-array", "not-utf8"])
def test_malformed_json_shapes(api, services, body):
    refused(api, lambda: post_raw(api, body.encode("latin-1")), 400, "malformed_json")


def test_unknown_field_refused(api, token):
    body = json.dumps({"token": token, "csr": make_csr(), "is_ca": True})
    refused(api, lambda: post_raw(api, body), 400, "malformed_json", token)


def test_duplicate_key_refused(api, token):
    csr = json.dumps(make_csr())
    body = '{"token": %s, "csr": %s, "csr": %s}' % (json.dumps(token), csr, csr)
    refused(api, lambda: post_raw(api, body), 400, "malformed_json", token)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None],
                         ids=["text-plain", "form", "none"])
def test_wrong_content_type(api, token, ctype):
    body = json.dumps({"token": token, "csr": make_csr()})
    refused(api, lambda: post_raw(api, body, ctype), 415, "unsupported_media_type", token)


def test_json_content_type_with_charset_accepted(api, token):
    r = post_raw(api, json.dumps({"token": token, "csr": make_csr()}), "application/json; charset=utf-8")
    assert r.status_code == 201, r.text


def padded(token, size):
    """A valid enrollment body, whitespace-padded to exactly size bytes."""
    body = json.dumps({"token": token, "csr": make_csr()})
    assert len(body) < size
    return (body[:-1] + " " * (size - len(body)) + "}").encode()


def retry_reset(send, attempts=3):
    """meshcad answers 413 and closes before reading the rest of the body; now
    and then (about 1 in 100 here) the client then sees a TCP reset instead of
    the answer (no lingering close, RFC 9112 9.6).  Retry that, and only that."""
    def wrapped():
        for i in range(attempts):
            try:
                return send()
            except sysutil.requests.exceptions.ConnectionError:
                if i == attempts - 1:
                    raise
    return wrapped


def test_body_over_64k(api, token):
    body = padded(token, 64 * 1024 + 1)
    refused(api, retry_reset(lambda: post_raw(api, body)), 413, "body_too_large", token)


def test_body_over_64k_chunked(api, token):
    body = padded(token, 70 * 1024)
    gen = lambda: (body[i:i + 8192] for i in range(0, len(body), 8192))  # noqa: E731
    refused(api, lambda: post_raw(api, gen()), 413, "body_too_large", token)


def test_body_of_exactly_64k_accepted(api, token):
    # "request bodies are at most 64 KiB": the limit itself is allowed.
    r = post_raw(api, padded(token, 64 * 1024))
    assert r.status_code == 201, f"{r.status_code} {r.text}"


# ---------------------------------------------------------------- authentication

ADMIN_REQUESTS = [
    ("GET", "/v1/services", None),
    ("GET", "/v1/services/" + SVC, None),
    ("POST", "/v1/services", {"name": "intruder"}),
    ("POST", f"/v1/services/{SVC}/tokens", {}),
    ("GET", "/v1/certificates", None),
]
ADMIN_IDS = ["list-services", "show-service", "add-service", "mint-token", "list-certs"]


@pytest.mark.parametrize("method,path,body", ADMIN_REQUESTS, ids=ADMIN_IDS)
def test_admin_endpoint_without_client_cert(api, services, method, path, body):
    refused(api, lambda: api.request(method, path, None, json=body), 401, "unauthenticated")
    assert api.get("/v1/services/intruder", ADMIN).status_code == 404


@pytest.mark.parametrize("method,path,body", ADMIN_REQUESTS, ids=ADMIN_IDS)
def test_admin_endpoint_with_workload_cert(api, services, workload, method, path, body):
    refused(api, lambda: api.request(method, path, workload, json=body), 403, "forbidden")
    assert api.get("/v1/services/intruder", ADMIN).status_code == 404


def test_admin_endpoint_with_forged_admin_cert(ca, api, services, tmp_path):
    """A certificate naming this CA's admin SPIFFE ID but issued by another CA:
    API.md, meshcad verifies a client certificate against its own CA, so this
    is refused as "unknown_issuer" (401), and nothing is created."""
    forged = sysutil.ForeignCA(name="meshca intermediate CA").issue(
        tmp_path / "forged", f"spiffe://{ca.trust_domain}/meshca/admin/admin")
    refused(api, lambda: api.post("/v1/services", forged, json={"name": "intruder"}),
            401, "unknown_issuer")
    refused(api, lambda: api.get("/v1/certificates", forged), 401, "unknown_issuer")
    assert api.get("/v1/services/intruder", ADMIN).status_code == 404


def test_admin_cert_is_accepted(api, services):
    # Control for the two tests above.
    r = api.get("/v1/services", ADMIN)
    assert r.status_code == 200 and SVC in [s["name"] for s in r.json()["services"]], r.text


# ---------------------------------------------------------------- routing

@pytest.mark.parametrize("path", ["/v1/nope", "/", "/v2/health", "/v1/health/x"])
def test_unknown_path(api, path):
    refused(api, lambda: api.get(path), 404, "not_found")


def test_unknown_service_and_serial(api, services):
    refused(api, lambda: api.get("/v1/services/no-such-service", ADMIN), 404, "not_found")
    refused(api, lambda: api.get("/v1/certificates/0123456789abcdef", ADMIN), 404, "not_found")
    refused(api, lambda: api.post("/v1/services/no-such-service/tokens", ADMIN, json={}),
            404, "not_found")


@pytest.mark.parametrize("method,path", [("DELETE", "/v1/health"), ("GET", "/v1/enroll"),
                                         ("PUT", "/v1/roots"), ("POST", "/v1/health"),
                                         ("DELETE", "/v1/services")])
def test_wrong_method(api, method, path):
    refused(api, lambda: api.request(method, path, ADMIN, json={}), 405, "method_not_allowed")


def test_wrong_method_names_allowed_methods(api):
    # "HTTP status codes mean what they say" (DESIGN.md); RFC 9110 15.5.6: the
    # origin server MUST send Allow with a 405.
    r = api.request("DELETE", "/v1/health")
    assert r.status_code == 405
    assert "GET" in r.headers.get("Allow", ""), f"405 without an Allow header naming GET: {dict(r.headers)}"


# ---------------------------------------------------------------- admin input

def test_service_conflicts_and_bad_values(ca, api, services):
    refused(api, lambda: api.post("/v1/services", ADMIN, json={"name": SVC}), 409, "already_exists")
    refused(api, lambda: api.post("/v1/services", ADMIN, json={"name": "other-name",
                                                               "spiffe_id": ca.spiffe(SVC)}),
            409, "already_exists")
    for bad in ("Bad_Name", "", "-lead", "a" * 64, "x/y"):
        refused(api, lambda: api.post("/v1/services", ADMIN, json={"name": bad}), 400, "invalid_argument")
    refused(api, lambda: api.post("/v1/services", ADMIN, json={
        "name": "elsewhere", "spiffe_id": "spiffe://other.domain/svc/elsewhere"}), 400, "invalid_spiffe_id")
    refused(api, lambda: api.post("/v1/services", ADMIN, json={"name": "baddns", "dns_names": ["Not..Valid"]}),
            400, "invalid_argument")
    refused(api, lambda: api.post("/v1/services", ADMIN, json={"name": "baddur", "default_ttl": "soon"}),
            400, "invalid_argument")
    assert api.get("/v1/services/elsewhere", ADMIN).status_code == 404


def test_token_ttl_over_seven_days(api, services):
    r = api.post(f"/v1/services/{SVC}/tokens", ADMIN, json={"ttl": "8d"})
    assert r.status_code == 400, r.text
    assert sysutil.error_code(r) in ("invalid_argument", "invalid_ttl"), r.text


# ---------------------------------------------------------------- aftermath

def test_server_log_holds_no_token(meshcad, api, services):
    # Tokens of this test (used, then replayed) plus every one minted above.
    tok = api.mint_token(SVC)
    MINTED.append(tok)
    assert api.enroll(tok, make_csr()).status_code == 201
    assert api.enroll(tok, make_csr()).status_code == 401
    api.health()
    time.sleep(0.3)
    log = meshcad.stderr()
    assert "/v1/enroll" in log, "meshcad did not log the enrollments"
    leaked = [t for t in MINTED if t in log or t[4:] in log]
    assert not leaked, f"{len(leaked)} enrollment token(s) appear in meshcad's log"
