"""The database cannot record: disk full, read-only, locked (issue 7, crash safety).

Each condition is real, not simulated in meshcad:

* disk full: meshcad runs in a private mount namespace (`unshare -m`) with a
  4 MiB tmpfs over the directory holding its database; the test fills that
  tmpfs with a file (through `nsenter` into the namespace) and removes it;
* read-only: the WAL file gets the immutable attribute (`chattr +i`; root
  ignores file modes, not that), which on ext4 makes every write, even
  through descriptors already open, fail with EPERM (a filesystem remounted
  read-only cannot be made while meshcad holds files open for writing:
  mount says busy);
* locked: another process holds `BEGIN EXCLUSIVE` on the database for longer
  than meshcad's busy timeout (5 s), then lets go.

Each time meshcad must answer the enrollment 503 with error.code
database_unavailable, a Retry-After header and a message naming the
condition; issue nothing (no new certificate row) and spend nothing (the same
token enrolls afterwards); keep serving reads; report not-ready on
/v1/health; count the error in meshca_db_errors_total{kind=...}; and recover
by itself, without a restart, when the condition clears: health back to 200,
the token enrolls, the new certificate renews.  The database passes
PRAGMA integrity_check at the end.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import time

import pytest
import requests

import sysutil
from sysutil import ADMIN, Api, Daemon, assert_error, make_csr, make_key

TMPFS_SIZE = "4m"
LOCK_SCRIPT = ("import sqlite3, sys\n"
               "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n"
               "c.execute('BEGIN EXCLUSIVE')\n"
               "print('locked', flush=True)\n"
               "sys.stdin.read()\n"
               "c.execute('ROLLBACK')\n")


def _need_root_namespaces():
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs in a private mount namespace (CI runs as root)")
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (util-linux)")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs \"$d\" && umount \"$d\"; "
                        "rc=$?; rmdir \"$d\"; exit $rc"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs in a private mount namespace here: " + r.stderr.strip())


class Served:
    """meshcad in its own mount namespace, database on a small tmpfs."""

    def __init__(self, ca, workdir):
        self.ca = ca
        self.dbdir = ca.dir / "dbmnt"
        self.dbdir.mkdir()
        self.db = self.dbdir / "meshca.db"
        self.metrics_port = sysutil.free_port()
        text = re.sub(r"(?m)^database\s*=.*$", f"database = {self.db}", ca.conf.read_text())
        text += f"metrics_listen = 127.0.0.1:{self.metrics_port}\n"
        conf = ca.dir / "dbfail.conf"
        conf.write_text(text)
        self.daemon = Daemon(ca, workdir, config=conf)
        # sh mounts the tmpfs, copies the database made by init (closed, so
        # without a WAL) onto it, then becomes meshcad: Popen's PID is meshcad's.
        script = (f'mount -t tmpfs -o size={TMPFS_SIZE},mode=0700 tmpfs "$0" && '
                  f'cp "$1" "$0/meshca.db" && shift && exec "$@"')
        self.daemon.argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                            str(self.dbdir), str(ca.dir / "meshca.db"), *self.daemon.argv]

    def start(self):
        self.daemon.start()
        self.api = Api(self.ca, self.daemon)
        return self

    def ns(self, *argv, check=True, **kw):
        """Runs argv inside meshcad's mount namespace."""
        r = subprocess.run(["nsenter", "-t", str(self.daemon.proc.pid), "-m", "--", *argv],
                           capture_output=True, text=True, timeout=60, **kw)
        if check:
            assert r.returncode == 0, f"{argv}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def metric(self, name):
        with requests.Session() as s:
            s.trust_env = False
            text = s.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        m = re.search(r"(?m)^" + re.escape(name) + r" (\S+)$", text)
        assert m, f"no {name} in the scrape:\n{text[:3000]}"
        return float(m.group(1))


@pytest.fixture(scope="module")
def served(binaries, tmp_path_factory):
    _need_root_namespaces()
    ca = sysutil.make_ca(tmp_path_factory.mktemp("ca") / "state")
    s = Served(ca, tmp_path_factory.mktemp("meshcad")).start()
    yield s
    s.daemon.stop(check=True)


def _health(api):
    r = api.get("/v1/health")
    return r.status_code, r.json()


def _wait_ready(api, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        status, body = _health(api)
        if status == 200:
            return body
        assert time.monotonic() < deadline, f"health still {status} {body} {timeout}s after the condition cleared"
        time.sleep(0.2)


def _refused_while(served, kind, phrase, token, csr):
    """The enrollment fails 503 database_unavailable, nothing is issued,
    reads still work, health says not ready with this kind."""
    api = served.api
    before = api.cert_count()
    errors_before = served.metric(f'meshca_db_errors_total{{kind="{kind}"}}')
    t0 = time.monotonic()
    r = api.enroll(token, csr)
    took = time.monotonic() - t0
    assert_error(r, 503, "database_unavailable")
    assert r.headers.get("Retry-After", "").isdigit(), f"no Retry-After: {r.headers}"
    assert phrase in r.json()["error"]["message"], r.text
    assert "certificate" not in r.json(), r.text
    # Reads the database can still serve.
    assert api.get("/v1/roots").status_code == 200
    assert api.cert_count() == before, "a certificate row appeared although the enrollment failed"
    status, body = _health(api)
    assert status == 503, body
    assert body["status"] == "unavailable" and body["database_fault"] == kind, body
    assert served.metric(f'meshca_db_errors_total{{kind="{kind}"}}') > errors_before
    return before, took


def _recovered(served, token, before, tmp_path):
    """Without a restart: ready again, the same token enrolls, the certificate renews."""
    api = served.api
    body = _wait_ready(api)
    assert body["database"] == "ok", body
    key = make_key()
    r = api.enroll(token, make_csr(key))
    assert r.status_code == 201, f"the token did not survive the failure: {r.status_code} {r.text}"
    assert api.cert_count() == before + 1
    cred = sysutil.write_workload(tmp_path / "wl", key, r.json())
    r = api.post("/v1/renew", cred, json={"csr": make_csr(key)})
    assert r.status_code == 201, f"renew after recovery: {r.status_code} {r.text}"
    assert api.cert_count() == before + 2


def _service_token(api, name):
    api.create_service(name, dns_names=[f"{name}.svc"])
    return api.mint_token(name)


def test_disk_full(served, tmp_path):
    api = served.api
    token = _service_token(api, "full")
    # Fill the tmpfs: dd stops at ENOSPC, which is the point.
    served.ns("dd", "if=/dev/zero", f"of={served.dbdir}/filler", "bs=64k", check=False)
    df = served.ns("df", "--output=avail", "-B1", str(served.dbdir)).stdout.split()
    assert int(df[-1]) < 64 * 1024, f"tmpfs not full: {df}"
    try:
        before, _ = _refused_while(served, "full", "disk full", token, make_csr())
        # A second refusal on the same connection state: the handle is still usable.
        assert_error(api.enroll(token, make_csr()), 503, "database_unavailable")
    finally:
        served.ns("rm", "-f", f"{served.dbdir}/filler")
    _recovered(served, token, before, tmp_path)


@pytest.fixture(scope="module")
def plain(binaries, tmp_path_factory):
    """meshcad with its database where `meshca init` put it (the test's
    temporary directory, on a disk filesystem), and a metrics listener."""
    ca = sysutil.make_ca(tmp_path_factory.mktemp("ca") / "state")
    port = sysutil.free_port()
    with open(ca.conf, "a") as f:
        f.write(f"metrics_listen = 127.0.0.1:{port}\n")
    d = Daemon(ca, tmp_path_factory.mktemp("meshcad")).start()
    s = Served.__new__(Served)
    s.ca, s.daemon, s.api, s.metrics_port = ca, d, Api(ca, d), port
    s.db = ca.dir / "meshca.db"
    yield s
    d.stop(check=True)


def test_read_only(plain, tmp_path):
    """tmpfs ignores the immutable flag for descriptors already open, so this
    case keeps the database on the disk filesystem of the test's temporary
    directory, which honours it (skipped where it does not)."""
    api = plain.api
    token = _service_token(api, "readonly")
    wal = str(plain.db) + "-wal"
    assert os.path.exists(wal), "meshcad runs without a WAL"
    r = subprocess.run(["chattr", "+i", wal], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"chattr +i unsupported on this filesystem: {r.stderr.strip()}")
    try:
        with open(wal, "ab") as f:
            pass
        subprocess.run(["chattr", "-i", wal], check=True)
        pytest.skip("the immutable flag does not stop writes here")
    except PermissionError:
        pass
    try:
        before, _ = _refused_while(plain, "readonly", "read-only", token, make_csr())
    finally:
        subprocess.run(["chattr", "-i", wal], check=True)
    _recovered(plain, token, before, tmp_path)


def test_locked(served, tmp_path):
    api = served.api
    token = _service_token(api, "locked")
    locker = sysutil.track(subprocess.Popen(
        ["nsenter", "-t", str(served.daemon.proc.pid), "-m", "--", "/usr/bin/python3", "-c",
         LOCK_SCRIPT, str(served.db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        assert locker.stdout.readline().strip() == "locked", locker.stderr.read()
        before, took = _refused_while(served, "locked", "locked", token, make_csr())
        assert took >= 4, f"answered in {took:.1f}s: before the 5 s busy timeout ran out"
    finally:
        locker.stdin.close()     # the locker rolls back and exits
        try:
            rc = locker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc, _ = sysutil.stop_process(locker)
    assert rc == 0, locker.stderr.read()
    _recovered(served, token, before, tmp_path)


def test_integrity_after_all(served):
    r = served.ns("/usr/bin/python3", "-c",
                  "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                  "print(c.execute('PRAGMA integrity_check').fetchone()[0])", str(served.db))
    assert r.stdout.strip() == "ok", r.stdout + r.stderr
    served.api.health()
