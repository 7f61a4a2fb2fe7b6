#!/usr/bin/python3
"""End-to-end revocation benchmark against a real meshcad on 127.0.0.1.

    tests/bench/ocsp_bench.py BUILD_DIR [--seconds S] [--count N] [--threads T] [--revoked R]

1. `meshca init` in a temporary directory, meshcad on a free loopback port.
2. OCSP: POST /v1/ocsp over keep-alive HTTPS connections from T threads, for
   at most S seconds or N responses per mode: nonce-less requests (one
   request, answered from meshcad's response cache) and requests with a
   fresh nonce each (a new signature each).  Reports responses per second.
3. CRL: R revoked, unexpired rows inserted straight into the SQLite database
   (as `meshcad` would have recorded them), then one revocation through the
   API; the rebuild that follows goes through the real path (db_revoked_live,
   ca_crl_build, db_crl_insert, PEM, swap) and its `CRL rebuilt ... duration_ms`
   log line is reported, with the time until GET /v1/crl serves it and its size.

Everything it starts is stopped by PID; the temporary directory is removed.
Python 3 with Debian's python3-requests and python3-cryptography only.
"""

import argparse
import http.client
import os
import re
import secrets
import shutil
import signal
import ssl
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

PASSPHRASE = "bench root passphrase, not a secret"


def env():
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("MESHCA_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    e["NO_PROXY"] = "127.0.0.1"
    return e


def session(root, cert=None):
    s = requests.Session()
    s.trust_env = False
    s.verify = str(root)
    if cert:
        s.cert = cert
    return s


class Meshcad:
    def __init__(self, build, state, work):
        self.port_file = work / "port"
        self.log = work / "meshcad.stderr"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([str(build / "api" / "meshcad"), "--config", str(state / "meshca.conf"),
                                          "--listen", "127.0.0.1:0", "--port-file", str(self.port_file)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         env=env())
        deadline = time.monotonic() + 15
        while not (self.port_file.exists() and self.port_file.read_text().strip().isdigit()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                sys.exit("meshcad did not start:\n" + self.log.read_text())
            time.sleep(0.05)
        self.url = f"https://127.0.0.1:{int(self.port_file.read_text())}"

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def enroll(url, state):
    admin = (str(state / "admin.crt"), str(state / "admin.key"))
    with session(state / "root.crt", admin) as s:
        r = s.post(url + "/v1/services", json={"name": "bench"}, timeout=20)
        assert r.status_code == 201, r.text
        tok = s.post(url + "/v1/services/bench/tokens", json={}, timeout=20).json()["token"]
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    with session(state / "root.crt") as s:
        r = s.post(url + "/v1/enroll", json={"token": tok, "csr": csr}, timeout=20)
    assert r.status_code == 201, r.text
    return r.json()


def ocsp_request(cert, issuer, nonce):
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce:
        b = b.add_extension(x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def ocsp_run(url, pid, root, cert, issuer, nonce, threads, count, seconds):
    """Responses per second over `threads` keep-alive connections."""
    done = [0] * threads
    errors = []
    per = count // threads
    deadline = time.monotonic() + seconds
    plain = ocsp_request(cert, issuer, False)
    # Requests with nonces are made up front: the client's cost stays out.
    bodies = [[ocsp_request(cert, issuer, True) for _ in range(per)] for _ in range(threads)] if nonce else None
    hdr = {"Content-Type": "application/ocsp-request"}

    host, port = url[len("https://"):].split(":")
    ctx = ssl.create_default_context(cafile=str(root))

    def worker(i):
        # http.client over one keep-alive connection: much lighter than
        # requests, so the client steals less CPU from meshcad.
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
        try:
            for k in range(per):
                if time.monotonic() > deadline:
                    break
                c.request("POST", "/v1/ocsp", body=bodies[i][k] if nonce else plain, headers=hdr)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
                    return
                done[i] += 1
        finally:
            c.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    if errors:
        sys.exit(f"OCSP errors: {errors[:5]}")
    # Sanity: the answer is a signed "good".
    with session(root) as s:
        resp = ocsp.load_der_ocsp_response(s.post(url + "/v1/ocsp", data=plain, headers=hdr, timeout=20).content)
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    return sum(done), took, cpu


def cpu_seconds(pid):
    """User + system CPU time meshcad has used (all its threads)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def insert_revoked(db, n):
    """n revoked, unexpired certificate rows, as meshcad records them."""
    now = int(time.time())
    con = sqlite3.connect(str(db), timeout=30)
    with con:
        con.executemany(
            "INSERT INTO certificates (serial, service_id, kind, spiffe_id, not_before, not_after, der,"
            " status, revoked_at, revocation_reason, created_at)"
            " VALUES (?, NULL, 'workload', 'spiffe://bench.internal/svc/x', ?, ?, x'3000', 'revoked', ?, ?, ?)",
            ((secrets.token_hex(16), now - 60, now + 86400, now - i % 3600, (0, 1, 4, 5)[i % 4], now)
             for i in range(n)))
    con.close()


def crl_run(d, state, serial, n):
    insert_revoked(state / "meshca.db", n)
    before = d.log.read_text().count('msg="CRL rebuilt"')
    admin = (str(state / "admin.crt"), str(state / "admin.key"))
    t0 = time.monotonic()
    with session(state / "root.crt", admin) as s:
        r = s.post(d.url + "/v1/revoke", json={"serial": serial, "reason": "keyCompromise"}, timeout=20)
        assert r.status_code == 200, r.text
    deadline = time.monotonic() + 120
    while d.log.read_text().count('msg="CRL rebuilt"') == before:
        if time.monotonic() > deadline:
            sys.exit("no CRL rebuild within 120 s")
        time.sleep(0.02)
    served = time.monotonic() - t0
    line = [l for l in d.log.read_text().splitlines() if 'msg="CRL rebuilt"' in l][-1]
    fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    with session(state / "root.crt") as s:
        t1 = time.monotonic()
        r = s.get(d.url + "/v1/crl", timeout=60)
        fetch = time.monotonic() - t1
    crl = x509.load_der_x509_crl(r.content)
    return fields, served, fetch, len(r.content), len(list(crl))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--seconds", type=float, default=10, help="per OCSP mode, at most (default 10)")
    ap.add_argument("--count", type=int, default=4000, help="OCSP responses per mode, at most (default 4000)")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--revoked", type=int, default=100000)
    a = ap.parse_args()
    build = a.build.resolve()
    work = Path(tempfile.mkdtemp(prefix="meshca-bench."))
    d = None
    try:
        state = work / "state"
        e = env()
        e["MESHCA_ROOT_PASSPHRASE"] = PASSPHRASE
        r = subprocess.run([str(build / "cli" / "meshca"), "init", "--state-dir", str(state),
                            "--trust-domain", "bench.internal"], env=e, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            sys.exit("meshca init failed:\n" + r.stderr)
        d = Meshcad(build, state, work)
        leaf = enroll(d.url, state)
        cert = x509.load_pem_x509_certificate(leaf["certificate"].encode())
        issuer = x509.load_pem_x509_certificate(leaf["chain"].encode())
        print(f"meshcad {d.url}, {os.cpu_count()} CPUs, {a.threads} client threads (same machine)")
        for nonce in (False, True):
            n, took, cpu = ocsp_run(d.url, d.proc.pid, state / "root.crt", cert, issuer, nonce,
                                    a.threads, a.count, a.seconds)
            print(f"OCSP {'with nonce (signed each)' if nonce else 'no nonce (cached)       '}: "
                  f"{n} responses in {took:.2f} s = {n / took:,.0f}/s; meshcad CPU "
                  f"{cpu * 1e6 / n:,.0f} us/response = {n / cpu if cpu else 0:,.0f} per CPU-second")
        fields, served, fetch, size, entries = crl_run(d, state, leaf["serial"], a.revoked)
        print(f"CRL rebuild with {entries:,} entries: {fields.get('duration_ms')} ms in meshcad "
              f"(read + build + sign + record + PEM), {served * 1000:.0f} ms from POST /v1/revoke "
              f"to the log line (200 ms coalescing included); GET /v1/crl {size / 1e6:.1f} MB in "
              f"{fetch * 1000:.0f} ms")
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
