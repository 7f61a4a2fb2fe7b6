"""deploy/monitoring/ against a real Prometheus (Debian package prometheus).

- `promtool check rules` and `promtool check config` pass on the shipped files;
- a meshca agent writes its --metrics-file, which `promtool check metrics`
  accepts and whose values match the certificate it manages;
- a Prometheus server started here (web listener on 127.0.0.1:<free port>,
  nothing else bound, a temporary TSDB, 1 s scrape interval) scrapes meshcad's
  metrics listener and the agent's textfile (served over loopback HTTP as
  node-exporter's textfile collector would), loads meshca.rules.yml, and after
  N enrollments answers sum(meshca_certificates_issued_total{how="enroll"}) = N;
- every expression of the rules and of the Grafana dashboard parses in the
  query API and names only metrics that meshcad or the agent export (checked
  against the real scrape and the real textfile), and Prometheus sees data
  for every one of them.

Prometheus is stopped by its PID.  About 5 s here (Prometheus is ready in
~0.2 s; the rest is the agent, enrollments and two scrape intervals).
"""

import datetime
import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509

import sysutil
from sysutil import Api, Cli, Daemon, REPO, base_env, stop_process, track

MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "meshca.rules.yml"
DASHBOARD = MONITORING / "meshca.json"
N_ENROLL = 3                        # through the API, plus the agent's own
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$')
# Metrics Prometheus itself makes up for every target.
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason="prometheus/promtool not installed (deploy/install-deps.sh --test)")


def names_in(text):
    """Metric names of an exposition text, checking every line."""
    out = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        out.add(m.group(1))
    return out


def expressions():
    """(where, expr) of every rule and every dashboard target."""
    out = []
    for g in yaml.safe_load(RULES.read_text())["groups"]:
        for r in g["rules"]:
            out.append((f"rule {r.get('alert') or r.get('record')}", r["expr"]))
    for p in json.loads(DASHBOARD.read_text())["panels"]:
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r}", t["expr"]))
    return out


def metric_names(expr):
    """The metric names an expression selects (our naming: meshca_*, or up)."""
    found = set(re.findall(r"\b(meshca_[a-zA-Z0-9_]+)", expr))
    found |= {w for w in re.findall(r"\b([a-z_]+)\{", expr) if w in PROMETHEUS_SYNTHETIC}
    return found


def test_promtool_checks_rules_and_config():
    res = sysutil.run(["promtool", "check", "rules", RULES])
    assert res.returncode == 0 and "SUCCESS" in res.stdout, sysutil.describe(res)
    res = sysutil.run(["promtool", "check", "config", MONITORING / "prometheus.yml"])
    assert res.returncode == 0, sysutil.describe(res)


def test_dashboard_is_grafana_json():
    d = json.loads(DASHBOARD.read_text())
    assert d["title"] and d["uid"] and d["panels"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    targets = [t for p in d["panels"] for t in p.get("targets", [])]
    assert len(targets) >= 15 and all(t["expr"].strip() for t in targets)
    assert "$" not in "".join(t["expr"] for t in targets), "no template variables in queries"


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves the textfile directory as node-exporter would its collector's output."""
    extensions_map = {".prom": "text/plain; version=0.0.4; charset=utf-8"}

    def log_message(self, fmt, *args):
        pass


@pytest.fixture(scope="module")
def stack(binaries, tmp_path_factory):
    """meshcad with metrics_listen, an agent with --metrics-file, a loopback
    HTTP server for the textfile: (Api, metrics URL, textfile, agent dir, http port)."""
    work = tmp_path_factory.mktemp("mon")
    ca = sysutil.make_ca(work / "state")
    with open(ca.conf, "a") as f:
        f.write("metrics_listen = 127.0.0.1:0\n")
    d = Daemon(ca, work).start()
    httpd = None
    try:
        m = None
        deadline = time.monotonic() + 10
        while m is None and time.monotonic() < deadline:
            m = re.search(r'msg="metrics serving" address=127\.0\.0\.1 port=(\d+)', d.stderr())
            time.sleep(0.05)
        assert m, d.stderr()
        api = Api(ca, d)
        api.create_service("web", dns_names=["web.svc"])
        textdir = work / "textfile"
        textdir.mkdir()
        tok = work / "token"
        tok.write_text(api.mint_token("web") + "\n")
        tok.chmod(0o600)
        out = work / "agent"
        prom = textdir / "meshca-agent-web.prom"
        Cli(ca, d)("agent", "--once", "--url", d.url, "--out", out, "--token-file", tok,
                   "--root-cert", ca.root_crt, "--metrics-file", prom)
        # One refusal, so that meshca_refusals_total has a sample to scrape.
        r = api.enroll(tok.read_text().strip(), sysutil.make_csr(sysutil.make_key()))
        assert r.status_code == 401 and sysutil.error_code(r) == "token_used", r.text
        httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Files, directory=str(textdir)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield api, f"http://127.0.0.1:{m.group(1)}/metrics", prom, out, httpd.server_address[1]
    finally:
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        d.stop(check=True)


def test_agent_metrics_file(stack):
    api, _, prom, out, _ = stack
    st = prom.stat()
    assert st.st_mode & 0o777 == 0o644, oct(st.st_mode)
    res = sysutil.run(["promtool", "check", "metrics"], input=prom.read_text())
    assert res.returncode == 0, sysutil.describe(res)
    text = prom.read_text()
    names_in(text)
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    serial = format(cert.serial_number, "x")
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    lbl = f'{{dir="{out}"}}'
    na = int(cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp())
    nb = int(cert.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp())
    assert vals["meshca_agent_certificate_not_after_timestamp_seconds" + lbl] == na
    assert vals["meshca_agent_certificate_not_before_timestamp_seconds" + lbl] == nb
    info = [k for k in vals if k.startswith("meshca_agent_certificate_info{")]
    assert len(info) == 1 and f'serial="{serial}"' in info[0].lower(), (info, serial)
    assert f'spiffe_id="{api.ca.spiffe("web")}"' in info[0]
    assert vals["meshca_agent_renewals_total" + lbl] == 1
    assert vals["meshca_agent_consecutive_failures" + lbl] == 0
    now = time.time()
    assert now - 120 < vals["meshca_agent_last_success_timestamp_seconds" + lbl] <= now
    assert vals["meshca_agent_last_attempt_timestamp_seconds" + lbl] == \
        vals["meshca_agent_last_success_timestamp_seconds" + lbl]


def test_agent_metrics_file_counts_failures(stack, tmp_path):
    """A failed enrollment (meshcad unreachable) shows in the file: one
    failure, no certificate, no renewal; success is never."""
    api, _, _, _, _ = stack
    tok = tmp_path / "token"
    tok.write_text(api.mint_token("web") + "\n")
    tok.chmod(0o600)
    f = tmp_path / "fail.prom"
    res = Cli(api.ca)("agent", "--once", "--url", "https://127.0.0.1:1", "--out", tmp_path / "w",
                      "--token-file", tok, "--fingerprint", api.ca.fingerprint,
                      "--metrics-file", f, expect=None)
    assert res.returncode == 1, sysutil.describe(res)
    text = f.read_text()
    assert sysutil.run(["promtool", "check", "metrics"], input=text).returncode == 0, text
    for name, value in (("consecutive_failures", 1), ("renewals_total", 0),
                        ("last_success_timestamp_seconds", 0),
                        ("certificate_not_after_timestamp_seconds", 0)):
        assert re.search(rf'^meshca_agent_{name}\{{dir="[^"]+"\}} {value}$', text, re.M), text
    assert "meshca_agent_certificate_info{" not in text
    # A path that cannot be written is a warning, not a failure of the agent.
    res = Cli(api.ca)("agent", "--once", "--url", "https://127.0.0.1:1", "--out", tmp_path / "w",
                      "--token-file", tok, "--fingerprint", api.ca.fingerprint,
                      "--metrics-file", tmp_path / "missing" / "x.prom", expect=1)
    assert "cannot write the agent metrics file" in res.stderr, sysutil.describe(res)
    res = Cli(api.ca)("agent", "--once", "--out", tmp_path / "w", "--metrics-file", "", expect=2)
    assert "--metrics-file" in res.stderr, sysutil.describe(res)


class Prometheus:
    def __init__(self, workdir, scrape_targets):
        self.dir = Path(workdir)
        self.port = sysutil.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": scrape_targets,
        }
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = self.dir / "prometheus.log"
        self.proc = None

    def start(self):
        argv = ["prometheus", f"--config.file={self.config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h", "--log.level=warn"]
        with open(self.log, "wb") as log:
            self.proc = track(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, env=base_env(),
                                               cwd=self.dir))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited:\n" + self.log.read_text()
            try:
                if self.session().get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("prometheus not ready in 20 s:\n" + self.log.read_text())

    @staticmethod
    def session():
        s = requests.Session()
        s.trust_env = False
        return s

    def query(self, expr):
        r = self.session().get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        return r.status_code, r.json()

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    _, metrics_url, prom, _, http_port = stack
    mport = int(metrics_url.split(":")[2].split("/")[0])
    p = Prometheus(tmp_path_factory.mktemp("prometheus"), [
        {"job_name": "meshcad", "static_configs": [{"targets": [f"127.0.0.1:{mport}"]}]},
        {"job_name": "node", "metrics_path": "/" + prom.name,
         "static_configs": [{"targets": [f"127.0.0.1:{http_port}"]}]},
    ])
    t0 = time.monotonic()
    p.start()
    p.startup = time.monotonic() - t0
    try:
        yield p
    finally:
        p.stop()


def listening_sockets(pid):
    """(proto, local address) of every listening TCP socket and bound UDP
    socket of pid, from ss (run as root here; as a user ss sees own sockets)."""
    res = sysutil.run(["ss", "-H", "-lntup"])
    assert res.returncode == 0, sysutil.describe(res)
    return [(l.split()[0], l.split()[4]) for l in res.stdout.splitlines() if f"pid={pid}," in l]


def test_prometheus_listens_on_loopback_only(prometheus):
    socks = listening_sockets(prometheus.proc.pid)
    assert socks == [("tcp", f"127.0.0.1:{prometheus.port}")], socks
    assert prometheus.startup < 10, prometheus.startup


def wait_value(p, expr, want, timeout=15):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        status, body = p.query(expr)
        assert status == 200 and body["status"] == "success", body
        res = body["data"]["result"]
        got = float(res[0]["value"][1]) if res else None
        if got == want:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{expr} = {got}, want {want}")


def test_issued_counter_through_prometheus(stack, prometheus):
    api = stack[0]
    # Both targets scraped, healthy.
    wait_value(prometheus, 'sum(up{job=~"meshcad|node"})', 2)
    for i in range(N_ENROLL):
        r = api.enroll(api.mint_token("web"), sysutil.make_csr(sysutil.make_key()))
        assert r.status_code == 201, r.text
    want = N_ENROLL + 1                     # and the agent's enrollment
    expr = 'sum(meshca_certificates_issued_total{job="meshcad",how="enroll"})'
    wait_value(prometheus, expr, want)
    time.sleep(1.5)                         # another scrape: still exactly N
    wait_value(prometheus, expr, want, timeout=1)
    wait_value(prometheus, 'sum(meshca_certificates_issued_total{service="web"})', want)
    wait_value(prometheus, 'meshca_agent_renewals_total', 1)


def test_every_expression_parses_and_names_exported_metrics(stack, prometheus):
    _, metrics_url, prom, _, _ = stack
    s = Prometheus.session()
    exported = names_in(s.get(metrics_url, timeout=10).text) | names_in(prom.read_text())
    exported |= PROMETHEUS_SYNTHETIC
    exprs = expressions()
    assert len(exprs) >= 25
    unseen = set()
    for where, expr in exprs:
        status, body = prometheus.query(expr)
        assert status == 200 and body["status"] == "success", f"{where}: {expr}\n{body}"
        names = metric_names(expr)
        assert names, f"{where}: names no metric: {expr}"
        missing = names - exported
        assert not missing, f"{where}: {sorted(missing)} not exported by meshcad or the agent"
        unseen |= names
    # Prometheus has samples for every metric the rules and dashboard use.
    for name in sorted(unseen):
        status, body = prometheus.query(f"count({{__name__=\"{name}\"}})")
        assert body["data"]["result"], f"Prometheus has no series named {name}"


def test_rules_load_and_evaluate(prometheus):
    deadline = time.monotonic() + 10
    while True:
        r = Prometheus.session().get(prometheus.url + "/api/v1/rules", timeout=10).json()
        rules = [x for g in r["data"]["groups"] for x in g["rules"]]
        names = {x["name"] for x in rules}
        if rules and all(x.get("lastEvaluation", "").startswith("20") for x in rules):
            break
        assert time.monotonic() < deadline, r
        time.sleep(0.2)
    assert {"MeshcaDown", "MeshcaCACertificateExpiringSoon", "MeshcaAgentRenewalFailing",
            "MeshcaCRLStale", "MeshcaNoSuccessfulIssuance", "MeshcaIssuanceErrorRateHigh"} <= names
    assert all(x["health"] == "ok" for x in rules), [(x["name"], x.get("lastError")) for x in rules]
    # A healthy CA with a fresh CRL and a working agent fires nothing.
    alerts = Prometheus.session().get(prometheus.url + "/api/v1/alerts", timeout=10).json()
    assert [a for a in alerts["data"]["alerts"] if a["state"] == "firing"] == []
