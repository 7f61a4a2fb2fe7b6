"""The load generator (tests/bench/loadgen) still builds and drives a real
meshcad: a short renewal run over keep-alive HTTPS with a client
certificate, then one with a new TLS connection per request.  A smoke
test, not a benchmark: it asserts that renewals succeed and none fail,
never a speed (tests/bench/README.md has the figures)."""

import os
import re
import subprocess

import pytest

import sysutil

LOADGEN = sysutil.BUILD / "tests" / "bench" / "loadgen"
SECONDS = 2
LINE = re.compile(r"ok=(\d+) failed=(\d+) rate=(\d+)/s p50=")


def run_loadgen(ca, meshcad, workload, csr, *extra):
    fullchain, key = workload
    argv = [str(LOADGEN), "--url", meshcad.url, "--cacert", str(ca.root_crt),
            "--cert", str(fullchain), "--key", str(key), "--csr", str(csr),
            "--concurrency", "4", "--seconds", str(SECONDS),
            "--server-pid", str(meshcad.proc.pid), *extra]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=SECONDS + 30,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"loadgen: {res.returncode}\n{res.stdout}\n{res.stderr}"
    m = LINE.search(res.stdout)
    assert m, f"no result line from loadgen:\n{res.stdout}\n{res.stderr}"
    assert "per-request=" in res.stdout, res.stdout       # server CPU per renewal
    return int(m.group(1)), int(m.group(2))


def test_loadgen_renews(ca, meshcad, api, workload, tmp_path):
    if not os.access(LOADGEN, os.X_OK):
        pytest.fail(f"{LOADGEN} not built", pytrace=False)
    csr = tmp_path / "csr.pem"
    csr.write_text(sysutil.make_csr())          # a rekey: any P-256 key renews
    before = api.cert_count(limit=10000)
    ok, failed = run_loadgen(ca, meshcad, workload, csr)
    assert ok > 0 and failed == 0, (ok, failed)
    ok2, failed2 = run_loadgen(ca, meshcad, workload, csr, "--new-connections")
    assert ok2 > 0 and failed2 == 0, (ok2, failed2)
    # Every renewal it counted is a certificate meshcad recorded.
    assert api.cert_count(limit=10000) == before + ok + ok2
    api.health()
