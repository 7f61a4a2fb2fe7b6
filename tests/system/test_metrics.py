"""Prometheus metrics on meshcad's separate listener (config metrics_listen).

A CA whose meshca.conf sets metrics_listen = 127.0.0.1:0; the port comes
from meshcad's "metrics serving" log line.  Plain HTTP, scraped with
requests and parsed as the text exposition format; series must move as
enrollments, refusals and revocations happen (by service and outcome), OCSP
answers are counted by status and by cache or fresh signature, and the CRL
size is that of /v1/crl.  Without the key there is no listener.
"""

import datetime
import re
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

import sysutil
from sysutil import ADMIN, Api, Daemon

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+]+)$')


def parse(text):
    """{'name{labels}': value}; checks every line is a comment or a sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


@pytest.fixture(scope="module")
def served(binaries, tmp_path_factory):
    """(Api, metrics URL) of a meshcad with metrics_listen on loopback."""
    ca = sysutil.make_ca(tmp_path_factory.mktemp("ca") / "state")
    with open(ca.conf, "a") as f:
        f.write("metrics_listen = 127.0.0.1:0\n")
    d = Daemon(ca, tmp_path_factory.mktemp("meshcad")).start()
    try:
        m = None
        deadline = time.monotonic() + 10
        while m is None and time.monotonic() < deadline:
            m = re.search(r'msg="metrics serving" address=127\.0\.0\.1 port=(\d+)', d.stderr())
            time.sleep(0.05)
        assert m, "no 'metrics serving' line:\n" + d.stderr()
        yield Api(ca, d), f"http://127.0.0.1:{m.group(1)}/metrics"
    finally:
        d.stop(check=True)


def scrape(url):
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse(r.text)


def test_gauges_of_the_ca(served):
    api, url = served
    m = scrape(url)
    assert m['meshca_build_info{version="0.1.0"}'] == 1
    assert m["meshca_database_up"] == 1
    day = 86400
    assert m['meshca_certificate_expiry_seconds{certificate="root"}'] > 9 * 365 * day
    assert 4 * 365 * day < m['meshca_certificate_expiry_seconds{certificate="intermediate"}'] \
        < m['meshca_certificate_expiry_seconds{certificate="root"}']
    assert 0 < m['meshca_certificate_expiry_seconds{certificate="server"}'] <= 91 * day
    assert 0 <= m["meshca_crl_age_seconds"] < 3600
    assert m["meshca_crl_next_update_seconds"] > 0
    assert m["meshca_certificates_live"] >= 2          # server and admin
    # The CRL's size is that of the DER /v1/crl serves.
    crl = api.get("/v1/crl")
    assert crl.status_code == 200
    assert m["meshca_crl_size_bytes"] == len(crl.content)
    # Issuance series exist from the start (rate() needs a first sample).
    assert m['meshca_certificates_issued_total{how="enroll",service="_none"}'] == 0
    for st in ("good", "revoked", "unknown", "error"):
        for src in ("cached", "fresh"):
            assert f'meshca_ocsp_responses_total{{status="{st}",source="{src}"}}' in m


def test_series_move_with_enroll_refusal_and_revoke(served, unique):
    api, url = served
    before = scrape(url)
    name = unique()
    api.create_service(name, dns_names=[f"{name}.svc"])
    tok = api.mint_token(name)
    r = api.enroll(tok, sysutil.make_csr(sysutil.make_key()))
    assert r.status_code == 201, r.text
    serial = r.json()["serial"]
    r = api.enroll(tok, sysutil.make_csr(sysutil.make_key()))
    assert r.status_code == 401 and sysutil.error_code(r) == "token_used", r.text
    r = api.post("/v1/revoke", ADMIN, json={"serial": serial, "reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    # Requests are counted when MHD completes them, which may be just after
    # the client has read the reply: wait for the last one (the revoke).
    revoked = f'meshca_certificate_requests_total{{action="revoke",service="{name}",outcome="ok"}}'
    deadline = time.monotonic() + 5
    while (after := scrape(url)).get(revoked, 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)

    def delta(series):
        return after.get(series, 0) - before.get(series, 0)

    assert delta(f'meshca_certificates_issued_total{{how="enroll",service="{name}"}}') == 1
    assert delta(f'meshca_certificates_issued_total{{how="renew",service="{name}"}}') == 0
    assert sum(v for k, v in after.items()
               if k.startswith("meshca_certificates_issued_total{")) - \
        sum(v for k, v in before.items() if k.startswith("meshca_certificates_issued_total{")) == 1
    ops = 'meshca_certificate_requests_total{action="%s",service="%s",outcome="%s"}'
    assert delta(ops % ("enroll", name, "ok")) == 1
    assert delta(ops % ("enroll", name, "token_used")) == 1
    assert delta(ops % ("revoke", name, "ok")) == 1
    assert delta('meshca_http_requests_total{method="POST",route="/v1/enroll",status="201"}') == 1
    assert delta('meshca_http_requests_total{method="POST",route="/v1/enroll",status="401"}') == 1
    assert delta('meshca_http_requests_total{method="POST",route="/v1/services/*/tokens",'
                 'status="201"}') == 1
    assert delta('meshca_refusals_total{code="token_used"}') == 1
    assert delta("meshca_certificates_revoked_total") == 1
    assert delta("meshca_certificates_recorded_total") == 1
    assert delta("meshca_certificates_live") == 0       # one issued, one revoked
    # The latency histogram of /v1/enroll: two more requests, cumulative buckets.
    h = 'meshca_http_request_duration_seconds_%s{route="/v1/enroll"%s}'
    assert delta(h % ("count", "")) == 2
    assert delta(h % ("bucket", ',le="+Inf"')) == 2
    assert after[h % ("sum", "")] > before.get(h % ("sum", ""), 0)
    buckets = sorted((float(k.split('le="')[1].rstrip('"}')), v) for k, v in after.items()
                     if k.startswith('meshca_http_request_duration_seconds_bucket{route="/v1/enroll"'))
    assert len(buckets) >= 10 and buckets[-1][0] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets


def test_only_get_metrics(served):
    _, url = served
    with requests.Session() as s:
        s.trust_env = False
        assert s.get(url.replace("/metrics", "/v1/health"), timeout=10).status_code == 404
        assert s.post(url, data=b"x", timeout=10).status_code == 404


def test_off_unless_configured(ca, meshcad):
    assert "metrics_listen" not in ca.conf.read_text()
    assert "metrics serving" not in meshcad.stderr()



def ocsp_post(api, der):
    r = api.post("/v1/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200, r.text
    return ocsp.load_der_ocsp_response(r.content)


def test_ocsp_served_by_status_and_source(served, unique):
    """Nonce-less requests: the first is signed (fresh), the next comes from
    the cache; a revocation makes the answer fresh again; a serial never
    issued is unknown; garbage gets an unsigned malformedRequest (error)."""
    api, url = served
    name = unique()
    api.create_service(name, dns_names=[f"{name}.svc"])
    r = api.enroll(api.mint_token(name), sysutil.make_csr(sysutil.make_key()))
    assert r.status_code == 201, r.text
    cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    issuer = api.ca.intermediate
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    der = req.public_bytes(serialization.Encoding.DER)
    # A certificate this CA never issued: only its serial goes into the CertID.
    k = sysutil.make_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    fake = (x509.CertificateBuilder().subject_name(issuer.subject).issuer_name(issuer.subject)
            .public_key(k.public_key()).serial_number(0x7e57_0000_0000_0000_0000_0000_0000_0001)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(k, hashes.SHA256()))
    never = ocsp.OCSPRequestBuilder().add_certificate(fake, issuer, hashes.SHA1()).build()

    before = scrape(url)
    assert ocsp_post(api, der).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert ocsp_post(api, der).certificate_status == ocsp.OCSPCertStatus.GOOD
    rv = api.post("/v1/revoke", ADMIN, json={"serial": r.json()["serial"], "reason": "superseded"})
    assert rv.status_code == 200, rv.text
    assert ocsp_post(api, der).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert ocsp_post(api, der).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert ocsp_post(api, never.public_bytes(serialization.Encoding.DER)).certificate_status \
        == ocsp.OCSPCertStatus.UNKNOWN
    bad = api.post("/v1/ocsp", data=b"\x30\x03\x02\x01\x00",
                   headers={"Content-Type": "application/ocsp-request"})
    assert bad.status_code == 200
    assert ocsp.load_der_ocsp_response(bad.content).response_status == \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    after = scrape(url)

    def delta(status, source):
        k = f'meshca_ocsp_responses_total{{status="{status}",source="{source}"}}'
        return after[k] - before.get(k, 0)

    assert (delta("good", "fresh"), delta("good", "cached")) == (1, 1)
    assert (delta("revoked", "fresh"), delta("revoked", "cached")) == (1, 1)
    assert (delta("unknown", "fresh"), delta("error", "fresh")) == (1, 1)
    assert delta("error", "cached") == 0
