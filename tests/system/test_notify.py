"""meshcad under a service manager (sd_notify, as systemd's Type=notify).

The test binds a Unix datagram socket in a private temporary directory,
starts meshcad with NOTIFY_SOCKET naming it (and WATCHDOG_USEC), and reads
what meshcad tells it:

- READY=1 arrives once, after the port file exists and the API answers;
- WATCHDOG=1 arrives every half WATCHDOG_USEC (and only while the database
  answers: the thread pings it first);
- SIGHUP after an edit of meshca.conf switches the log format from logfmt
  to JSON (RELOADING=1 then READY=1), while the same process keeps serving;
- SIGTERM sends STOPPING=1 before meshcad exits 0.

meshcad built without libsystemd (meson -Dsystemd=disabled) sends nothing:
then this module skips, saying so.
"""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

import sysutil
from sysutil import MESHCAD, base_env, new_session, stop_process, track

WATCHDOG_USEC = 400000      # a ping every 0.2 s


def built_with_libsystemd():
    res = subprocess.run(["ldd", str(MESHCAD)], capture_output=True, text=True, timeout=30)
    return "libsystemd" in res.stdout


class Notifications:
    """The datagram socket meshcad sends to; messages with arrival times."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.path = path
        self.got = []          # (monotonic time, {key: value}, raw text)
        self.proc = None       # meshcad, and its stderr file, for failure messages
        self.stderr_path = None

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        text = data.decode()
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        self.got.append((time.monotonic(), fields, text))
        return fields

    def wait_for(self, key, value="1", timeout=15, on_each=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = self.recv(min(0.5, max(0.01, deadline - time.monotonic())))
            if f is None:
                if self.proc is not None and self.proc.poll() is not None:
                    break
                continue
            if on_each:
                on_each(f)
            if f.get(key) == value:
                return f
        rc = self.proc.poll() if self.proc is not None else None
        err = self.stderr_path.read_text(errors="replace")[-3000:] if self.stderr_path else ""
        raise AssertionError(f"no {key}={value} within {timeout}s (meshcad exit status {rc}); "
                             f"got: {[t for _, _, t in self.got]}\nstderr:\n{err}")

    def close(self):
        self.sock.close()


def set_conf(conf, key, value):
    """Sets key in conf atomically (rename): meshcad never reads half a file."""
    lines = [l for l in conf.read_text().splitlines() if not re.match(rf"\s*{key}\s*=", l)]
    lines.append(f"{key} = {value}")
    tmp = conf.with_name(conf.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, conf)


@pytest.fixture
def notified(ca, tmp_path):
    """(meshcad process, Notifications, port file, stderr path)."""
    if not built_with_libsystemd():
        pytest.skip("meshcad built without libsystemd (-Dsystemd=disabled): no sd_notify")
    # A short private path: sun_path holds 108 bytes, pytest's tmp paths may be longer.
    sockdir = Path(tempfile.mkdtemp(prefix="mca-notify-"))
    n = Notifications(sockdir / "notify.sock")
    port_file = tmp_path / "meshcad.port"
    stderr_path = tmp_path / "meshcad.stderr"
    set_conf(ca.conf, "log_format", "logfmt")      # before meshcad reads it
    env = base_env()
    env["NOTIFY_SOCKET"] = str(n.path)
    env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    argv = [str(MESHCAD), "--config", str(ca.conf), "--listen", "127.0.0.1:0",
            "--port-file", str(port_file)]
    with open(stderr_path, "wb") as err:
        proc = track(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=err, env=env))
    n.proc, n.stderr_path = proc, stderr_path
    try:
        yield proc, n, port_file, stderr_path
    finally:
        stop_process(proc)
        n.close()
        shutil.rmtree(sockdir, ignore_errors=True)


@pytest.fixture(scope="module")
def ca(binaries, tmp_path_factory):
    return sysutil.make_ca(tmp_path_factory.mktemp("ca") / "state")


def health(ca, port):
    with new_session(ca.root_crt) as s:
        return s.get(f"https://127.0.0.1:{port}/v1/health", timeout=10).status_code


def test_ready_watchdog_reload_stopping(ca, notified):
    proc, n, port_file, stderr_path = notified

    port_seen = []
    ready = n.wait_for("READY", on_each=lambda f: port_seen.append(port_file.exists()))
    assert port_seen[-1], "READY=1 arrived before the port file was written"
    assert not any(f.get("READY") for _, f, _ in n.got[:-1]), "READY=1 sent twice"
    port = int(port_file.read_text().strip())
    assert health(ca, port) == 200
    assert ready.get("STATUS"), ready

    # The watchdog: several pings, about half WATCHDOG_USEC apart.
    t0 = time.monotonic()
    pings = []
    while time.monotonic() - t0 < 1.5:
        f = n.recv(1.0)
        if f and f.get("WATCHDOG") == "1":
            pings.append(time.monotonic())
    assert len(pings) >= 4, f"{len(pings)} WATCHDOG=1 in 1.5 s: {[t for _, _, t in n.got]}"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.6, gaps

    # SIGHUP: logfmt -> JSON, same process, still serving.
    before = stderr_path.read_text()
    assert "msg=\"meshcad serving\"" in before or "msg=meshcad" in before, before
    set_conf(ca.conf, "log_format", "json")
    os.kill(proc.pid, signal.SIGHUP)
    n.wait_for("RELOADING")
    n.wait_for("READY")
    assert proc.poll() is None, "meshcad exited on SIGHUP"
    assert health(ca, port) == 200
    new = stderr_path.read_text()[len(before):]
    lines = [l for l in new.splitlines() if l.strip()]
    reloaded = [json.loads(l) for l in lines if "meshcad reloaded" in l]
    assert reloaded and reloaded[0]["log_format"] == "json", new

    # A broken file: logged, settings kept, still serving.
    set_conf(ca.conf, "log_format", "yaml")
    os.kill(proc.pid, signal.SIGHUP)
    n.wait_for("READY")
    assert health(ca, port) == 200
    tail = stderr_path.read_text()[len(before) + len(new):]
    failed = [json.loads(l) for l in tail.splitlines() if "reload failed" in l]
    assert failed and "log_format" in failed[0]["detail"], tail
    set_conf(ca.conf, "log_format", "logfmt")

    # SIGTERM: STOPPING=1, then exit 0.
    os.kill(proc.pid, signal.SIGTERM)
    n.wait_for("STOPPING")
    try:
        rc = proc.wait(timeout=sysutil.STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = None
    assert rc == 0, f"meshcad: rc {rc}\n{stderr_path.read_text()[-2000:]}"


def test_no_notify_socket_no_watchdog(ca, tmp_path):
    """Without NOTIFY_SOCKET (not under systemd) meshcad serves as before."""
    d = sysutil.Daemon(ca, tmp_path).start()
    try:
        assert health(ca, d.port) == 200
        os.kill(d.proc.pid, signal.SIGHUP)
        time.sleep(0.3)
        assert d.proc.poll() is None and health(ca, d.port) == 200
        assert "meshcad reloaded" in d.stderr()
    finally:
        d.stop(check=True)


def test_watchdog_stops_while_the_database_is_locked(ca, notified):
    """Another process takes the database's write lock (BEGIN EXCLUSIVE, as
    a stuck sqlite3 shell or a backup tool would): meshcad can no longer
    record what it issues, so WATCHDOG=1 stops (systemd would restart it)
    and meshcad says why; once the lock goes, the pings come back."""
    proc, n, port_file, stderr_path = notified
    n.wait_for("READY")
    n.wait_for("WATCHDOG")
    db_path = ca.dir / "meshca.db"
    assert db_path.exists(), sorted(p.name for p in ca.dir.iterdir())
    holder = sqlite3.connect(str(db_path), timeout=5, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        # Drain pings already in flight, then none for 3 whole periods.
        time.sleep(0.3)
        while n.recv(0.01) is not None:
            pass
        t0 = time.monotonic()
        late = []
        while time.monotonic() - t0 < 1.2:
            f = n.recv(0.2)
            if f and f.get("WATCHDOG") == "1":
                late.append(round(time.monotonic() - t0, 3))
        assert late == [], f"WATCHDOG=1 while the database was locked, at {late} s"
        assert proc.poll() is None
        log = stderr_path.read_text()
        assert "watchdog: database does not answer" in log, log[-2000:]
        assert log.count("watchdog: database does not answer") == 1, "logged once, not per tick"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    t1 = time.monotonic()
    n.wait_for("WATCHDOG", timeout=5)
    assert time.monotonic() - t1 < 1.5
    n.wait_for("WATCHDOG", timeout=2)
    assert "watchdog: database answers again" in stderr_path.read_text()
    assert health(ca, int(port_file.read_text().strip())) == 200


def _api(ca, port):
    class _D:
        url = f"https://127.0.0.1:{port}"
    return sysutil.Api(ca, _D())


def _token_ttl(api, service):
    r = api.post(f"/v1/services/{service}/tokens", sysutil.ADMIN, json={})
    assert r.status_code == 201, r.text
    exp = datetime.datetime.strptime(r.json()["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    return (exp.replace(tzinfo=datetime.timezone.utc) -
            datetime.datetime.now(datetime.timezone.utc)).total_seconds()


def _ocsp_window(api, cert_pem):
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, api.ca.intermediate, hashes.SHA1()).build()
    r = api.post("/v1/ocsp", data=req.public_bytes(serialization.Encoding.DER),
                 headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200
    o = ocsp.load_der_ocsp_response(r.content)
    return (o.next_update - o.this_update).total_seconds()


def test_sighup_reloads_ttls_and_validity_all_or_nothing(ca, notified):
    """SIGHUP applies token_ttl, min_ttl, default_ttl, ocsp_validity and
    crl_validity to the running process; a file with one bad value changes
    none of them (logged, READY=1 again, still serving); a changed
    restart-only key is named in the log.  Services (the policy) are in the
    database and never need a reload."""
    proc, n, port_file, stderr_path = notified
    saved = ca.conf.read_text()
    try:
        _reload_checks(ca, proc, n, port_file, stderr_path)
    finally:
        ca.conf.write_text(saved)          # the module's CA serves the other tests


def _reload_checks(ca, proc, n, port_file, stderr_path):
    n.wait_for("READY")
    api = _api(ca, int(port_file.read_text().strip()))
    api.create_service("reload", dns_names=["reload.svc"])
    assert 3500 < _token_ttl(api, "reload") <= 3600            # the default 1 h

    def hup():
        os.kill(proc.pid, signal.SIGHUP)
        n.wait_for("RELOADING")
        n.wait_for("READY")
        assert proc.poll() is None

    set_conf(ca.conf, "token_ttl", "2h")
    set_conf(ca.conf, "min_ttl", "10m")
    set_conf(ca.conf, "ocsp_validity", "30m")
    set_conf(ca.conf, "crl_validity", "2h")
    set_conf(ca.conf, "server_ttl", "30d")                      # restart-only
    hup()
    log = stderr_path.read_text()
    assert re.search(r'needs a restart.*key=server_ttl', log), log[-2000:]
    assert 7100 < _token_ttl(api, "reload") <= 7200
    tok = api.mint_token("reload")
    r = api.enroll(tok, sysutil.make_csr(sysutil.make_key()), ttl="6m")
    assert r.status_code == 400 and sysutil.error_code(r) == "invalid_ttl", r.text
    r = api.enroll(tok, sysutil.make_csr(sysutil.make_key()), ttl="11m")
    assert r.status_code == 201, r.text
    assert _ocsp_window(api, r.json()["certificate"]) == 1800
    rv = api.post("/v1/revoke", sysutil.ADMIN, json={"serial": r.json()["serial"]})
    assert rv.status_code == 200, rv.text
    deadline = time.monotonic() + 10                            # the rebuild after a revocation
    while True:
        crl = x509.load_der_x509_crl(api.get("/v1/crl").content)
        if crl.get_revoked_certificate_by_serial_number(int(r.json()["serial"], 16)) is not None:
            break
        assert time.monotonic() < deadline, "revocation not in the CRL"
        time.sleep(0.1)
    assert (crl.next_update - crl.last_update).total_seconds() == 7200

    # One bad value among good ones: nothing changes.
    set_conf(ca.conf, "token_ttl", "3h")
    set_conf(ca.conf, "min_ttl", "banana")
    hup()
    tail = stderr_path.read_text()[len(log):]
    assert re.search(r'reload failed, running settings kept.*min_ttl', tail), tail
    assert 7100 < _token_ttl(api, "reload") <= 7200
    r = api.enroll(api.mint_token("reload"), sysutil.make_csr(sysutil.make_key()), ttl="6m")
    assert r.status_code == 400 and sysutil.error_code(r) == "invalid_ttl", r.text
    # A rule that holds only across keys: min_ttl above default_ttl.
    set_conf(ca.conf, "min_ttl", "2d")
    hup()
    assert "need 1s <= min_ttl <= default_ttl" in stderr_path.read_text()
    assert 7100 < _token_ttl(api, "reload") <= 7200

    # Policy is live without a reload: a service's max_ttl changed over the API.
    r = api.request("PATCH", "/v1/services/reload", sysutil.ADMIN, json={"default_ttl": "12m", "max_ttl": "15m"})
    assert r.status_code == 200, r.text
    r = api.enroll(api.mint_token("reload"), sysutil.make_csr(sysutil.make_key()), ttl="20m")
    assert r.status_code == 201 and r.json()["ttl"] == 900, r.text    # capped at the new max
    r = api.enroll(api.mint_token("reload"), sysutil.make_csr(sysutil.make_key()))
    assert r.status_code == 201 and r.json()["ttl"] == 720, r.text    # the new default
