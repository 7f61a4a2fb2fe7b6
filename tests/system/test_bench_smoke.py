"""The load generator (tests/bench/loadgen) still builds and drives a real
meshcad: short renewal runs over keep-alive HTTPS with a client
certificate and with a new TLS connection per request, enrollments with
pre-minted tokens, each request with a CSR for a key loadgen generated
before the run (or one fixed CSR with --csr).  A smoke test, not a
benchmark: it asserts that requests succeed, none fail, and what meshcad
recorded (one certificate per success, carrying the keys loadgen sent),
never a speed (tests/bench/README.md has the figures)."""

import os
import re
import sqlite3
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import sysutil

LOADGEN = sysutil.BUILD / "tests" / "bench" / "loadgen"
SECONDS = 2
LINE = re.compile(r"ok=(\d+) failed=(\d+) rate=(\d+)/s p50=.* csrs=(\d+) (distinct|cycled|fixed)\n")
TLS_LINE = re.compile(r"tls=(\S+) handshakes=(\d+) resumed=(\d+)")


@pytest.fixture(scope="module", autouse=True)
def built():
    if not os.access(LOADGEN, os.X_OK):
        pytest.fail(f"{LOADGEN} not built", pytrace=False)


def run_loadgen(ca, meshcad, *extra, seconds=SECONDS, concurrency=4):
    argv = [str(LOADGEN), "--url", meshcad.url, "--cacert", str(ca.root_crt),
            "--concurrency", str(concurrency), "--seconds", str(seconds),
            "--server-pid", str(meshcad.proc.pid), *extra]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"loadgen: {res.returncode}\n{res.stdout}\n{res.stderr}"
    m, t = LINE.search(res.stdout), TLS_LINE.search(res.stdout)
    assert m and t, f"no result lines from loadgen:\n{res.stdout}\n{res.stderr}"
    assert "per-request=" in res.stdout, res.stdout       # server CPU per request
    ok, failed, ncsrs = int(m.group(1)), int(m.group(2)), int(m.group(4))
    assert ok > 0 and failed == 0, res.stdout
    # Request i carries CSR i modulo their number, and says whether it cycled.
    want = "fixed" if "--csr" in extra else "cycled" if ok > ncsrs else "distinct"
    assert m.group(5) == want, res.stdout
    handshakes, resumed = int(t.group(2)), int(t.group(3))
    assert 1 <= handshakes <= ok and resumed <= handshakes, res.stdout
    return {"ok": ok, "csrs": ncsrs, "tls": t.group(1), "handshakes": handshakes,
            "stdout": res.stdout}


def last_rowid(ca):
    db = sqlite3.connect(f"file:{ca.dir / 'meshca.db'}?mode=ro", uri=True, timeout=15)
    try:
        return db.execute("SELECT coalesce(max(rowid), 0) FROM certificates").fetchone()[0]
    finally:
        db.close()


def recorded_keys(ca, after):
    """The public keys of the certificates meshcad recorded after rowid `after`,
    parsed from the DER in its database."""
    db = sqlite3.connect(f"file:{ca.dir / 'meshca.db'}?mode=ro", uri=True, timeout=15)
    try:
        rows = db.execute("SELECT der FROM certificates WHERE rowid > ?", (after,)).fetchall()
    finally:
        db.close()
    return [x509.load_der_x509_certificate(der).public_key() for (der,) in rows]


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def workload_spki(workload):
    key = serialization.load_pem_private_key(workload[1].read_bytes(), None)
    return spki(key.public_key())


def test_loadgen_renews_with_fresh_keys(ca, meshcad, api, workload):
    fullchain, key = workload
    creds = ("--cert", str(fullchain), "--key", str(key), "--fresh", "256")
    before, row = api.cert_count(limit=10000), last_rowid(ca)
    kept = run_loadgen(ca, meshcad, *creds)
    new = run_loadgen(ca, meshcad, *creds, "--new-connections")
    assert new["handshakes"] == new["ok"], new["stdout"]     # one TLS connection each
    assert new["tls"] == "TLS1.3", new["stdout"]
    # Every renewal it counted is a certificate meshcad recorded, and each
    # carries the key of its CSR: as many distinct keys as CSRs were sent
    # (each run generated its own), none the key of the presented certificate.
    assert api.cert_count(limit=10000) == before + kept["ok"] + new["ok"]
    keys = {spki(k) for k in recorded_keys(ca, row)}
    assert len(keys) == min(kept["ok"], 256) + min(new["ok"], 256)
    assert workload_spki(workload) not in keys
    api.health()


def test_loadgen_tls12_new_connections(ca, meshcad, workload):
    fullchain, key = workload
    r = run_loadgen(ca, meshcad, "--cert", str(fullchain), "--key", str(key), "--fresh", "64",
                    "--new-connections", "--tls-max", "1.2", seconds=1, concurrency=2)
    assert r["tls"] == "TLS1.2" and r["handshakes"] == r["ok"], r["stdout"]


def test_loadgen_fixed_csr(ca, meshcad, workload, tmp_path):
    fullchain, key = workload
    csr_key = sysutil.make_key("ecdsa-p256")
    csr = tmp_path / "csr.pem"
    csr.write_text(sysutil.make_csr(csr_key))
    row = last_rowid(ca)
    r = run_loadgen(ca, meshcad, "--cert", str(fullchain), "--key", str(key), "--csr", str(csr),
                    seconds=1, concurrency=2)
    keys = recorded_keys(ca, row)
    assert len(keys) == r["ok"]
    assert {spki(k) for k in keys} == {spki(csr_key.public_key())}


@pytest.mark.parametrize("key_type, check", [
    ("p384", lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp384r1"),
    ("ed25519", lambda k: isinstance(k, ed25519.Ed25519PublicKey)),
    ("rsa2048", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 2048),
])
def test_loadgen_key_types(ca, meshcad, workload, key_type, check):
    fullchain, key = workload
    row = last_rowid(ca)
    r = run_loadgen(ca, meshcad, "--cert", str(fullchain), "--key", str(key),
                    "--key-type", key_type, "--fresh", "8", seconds=1, concurrency=2)
    keys = recorded_keys(ca, row)
    assert len(keys) == r["ok"] and all(check(k) for k in keys), r["stdout"]
    assert len({spki(k) for k in keys}) == min(r["ok"], 8)


def test_loadgen_enrolls_with_tokens(ca, meshcad, api, unique, tmp_path):
    service = unique("bench")
    api.create_service(service, dns_names=[f"{service}.svc"])
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(api.mint_token(service) + "\n" for _ in range(12)))
    row = last_rowid(ca)
    # No client certificate: each request presents the next token; the
    # run ends when they run out, one fresh CSR per token by default.
    r = run_loadgen(ca, meshcad, "--path", "/v1/enroll", "--tokens", str(tokens),
                    seconds=10, concurrency=3)
    assert r["ok"] == 12 and r["csrs"] == 12, r["stdout"]
    keys = recorded_keys(ca, row)
    assert len(keys) == 12 and len({spki(k) for k in keys}) == 12
