"""Fixtures of the meshca system tests: the real `meshca` and `meshcad` binaries,
a temporary CA state directory per test module, meshcad on 127.0.0.1 with an
ephemeral port, the CLI and an HTTPS client bound to them.

Binaries come from $MESHCA_BUILD_DIR (default <repo>/build): cli/meshca and
api/meshcad.  Helpers live in sysutil.py.
"""

import os
import secrets
import shutil
import subprocess

import pytest

import sysutil
from sysutil import Api, Cli, Daemon, make_ca


def pytest_configure(config):
    config.addinivalue_line("markers", "netns: needs `unshare -n` (a private network namespace)")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # Anything a failed test could not stop: SIGKILL by PID, never by name.
    sysutil.kill_tracked()


@pytest.fixture(scope="session")
def binaries():
    missing = [str(p) for p in (sysutil.MESHCA, sysutil.MESHCAD) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("binaries not built: " + ", ".join(missing) +
                    " (build first, or set MESHCA_BUILD_DIR)", pytrace=False)
    return sysutil.MESHCA, sysutil.MESHCAD


@pytest.fixture(scope="session")
def tools():
    """External clients the interop tests drive."""
    missing = [t for t in ("openssl", "certtool", "gnutls-serv", "gnutls-cli")
               if shutil.which(t) is None]
    if missing:
        pytest.fail("missing tools: " + ", ".join(missing) +
                    " (deploy/install-deps.sh installs openssl and gnutls-bin)", pytrace=False)


@pytest.fixture(scope="module")
def ca(binaries, tmp_path_factory):
    """A fresh CA: `meshca init` in a new state dir (one per test module)."""
    return make_ca(tmp_path_factory.mktemp("ca") / "state")


@pytest.fixture(scope="module")
def meshcad(ca, tmp_path_factory):
    """meshcad serving `ca` on 127.0.0.1:<port 0>; on teardown SIGTERM to its PID
    and an assertion that it exited 0 within the timeout."""
    d = Daemon(ca, tmp_path_factory.mktemp("meshcad")).start()
    yield d
    d.stop(check=True)


@pytest.fixture(scope="module")
def cli(ca, meshcad):
    """Runs `meshca` with MESHCA_CONFIG naming this CA and meshcad's URL."""
    return Cli(ca, meshcad)


@pytest.fixture(scope="module")
def api(ca, meshcad):
    """HTTPS client of meshcad: TLS verified against root.crt; client cert per request."""
    return Api(ca, meshcad)


@pytest.fixture
def unique():
    """A short lowercase name, unique per call, valid as a service name."""
    def make(prefix="svc"):
        return f"{prefix}-{secrets.token_hex(4)}"
    return make


@pytest.fixture(scope="module")
def workload(api, tmp_path_factory):
    """A workload enrolled through the API: (fullchain.pem, key.pem) of a
    non-admin certificate of this CA, for client-certificate tests."""
    name = "wl-" + secrets.token_hex(3)
    api.create_service(name, dns_names=[f"{name}.svc"])
    tok = api.mint_token(name)
    key = sysutil.make_key("ecdsa-p256")
    r = api.enroll(tok, sysutil.make_csr(key))
    assert r.status_code == 201, f"enroll workload: {r.status_code} {r.text}"
    return sysutil.write_workload(tmp_path_factory.mktemp("workload"), key, r.json())


@pytest.fixture(scope="session")
def netns():
    """Skips unless `unshare -n` works here (CI runs as root, where it does)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare or ip not installed: cannot isolate gnutls-serv, which binds every address")
    r = subprocess.run(["unshare", "-n", "true"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip("`unshare -n` not permitted here (" + r.stderr.strip() +
                    "): gnutls-serv binds every address, so it only runs in a private netns")
