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

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

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
