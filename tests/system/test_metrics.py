"""Prometheus metrics on meshcad's separate listener (config metrics_listen).

A CA whose meshca.conf sets metrics_listen = 127.0.0.1:0; the port comes
from meshcad's "metrics serving" log line.  Plain HTTP, scraped with
requests and parsed as the text exposition format; series must move as
enrollments, refusals and revocations happen.  Without the key there is
no listener.
"""

import re
import time

import pytest
import requests

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
    after = scrape(url)

    def delta(series):
        return after.get(series, 0) - before.get(series, 0)

    assert delta('meshca_certificates_issued_total{how="enroll"}') == 1
    assert delta('meshca_certificates_issued_total{how="renew"}') == 0
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
