"""Key custody (issue 7): the process that parses network input never holds
the intermediate private key.

- meshcad runs a signer child (`meshcad --signer-fd 3`); the network
  process has no key file open and its memory does not contain the key's
  private scalar, which the signer child's memory does (so the search
  works); read through /proc/<pid>/mem, which needs root (skipped else).
- The signer child, driven directly over a socketpair, signs well-formed
  to-be-signed structures of this CA (certificate, CRL, OCSP response,
  audit checkpoint; the signatures verify) and refuses random bytes, a
  truncated TBS, a TBS with a foreign issuer, a CA:TRUE certificate, the
  wrong request type or algorithm, an audit checkpoint of another format
  and an oversized request.
- Killing the signer child makes issuance answer 503 signer_unavailable
  at once and /v1/health not ready, instead of hanging.
"""

import os
import signal
import socket
import struct
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import sysutil
from sysutil import Api, Daemon, make_ca, make_csr, make_key

AUDIT_LABEL = b"meshca-audit-checkpoint-v1"
TYPE_CERT, TYPE_CRL, TYPE_OCSP, TYPE_AUDIT = 1, 2, 3, 4
GNUTLS_SIGN_ECDSA_SHA256 = 14   # gnutls_sign_algorithm_t (gnutls.h)


def children(pid):
    try:
        text = open(f"/proc/{pid}/task/{pid}/children").read()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def signer_pid(d):
    kids = [k for k in children(d.proc.pid)
            if open(f"/proc/{k}/comm").read().strip() == "meshcad-signer"]
    assert len(kids) == 1, f"expected one signer child of {d.proc.pid}, got {kids}"
    return kids[0]


def open_files(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


CHUNK = 16 << 20
HUGE = 1 << 32      # sanitizer shadow and reserved spaces: never the heap we look for


def memory_contains(pid, needles):
    """Whether any readable mapping of pid holds one of needles."""
    overlap = max(len(n) for n in needles)
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo > HUGE:
                continue
            tail = b""
            for at in range(lo, hi, CHUNK):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(CHUNK, hi - at))
                except (OSError, ValueError, OverflowError):
                    tail = b""
                    continue
                if any(n in data for n in needles):
                    return True
                tail = data[-overlap:]
    return False


def key_scalar_needles(ca):
    key = serialization.load_pem_private_key((ca.dir / "intermediate.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey), "the test expects an ECDSA intermediate"
    n = (key.curve.key_size + 7) // 8
    be = key.private_numbers().private_value.to_bytes(n, "big")
    # GnuTLS keeps the scalar as a big number (little-endian limbs) and as DER.
    return [be, be[::-1]]


@pytest.fixture(scope="module")
def served(binaries, tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("custody") / "state")
    d = Daemon(ca, tmp_path_factory.mktemp("custody-d")).start()
    yield ca, d, Api(ca, d)
    d.stop(check=True)


def enroll(ca, api, name):
    api.create_service(name, dns_names=[f"{name}.svc"])
    r = api.enroll(api.mint_token(name), make_csr(make_key("ecdsa-p256")))
    return r


def test_signer_child_exists_and_network_process_has_no_key_file(served):
    ca, d, api = served
    child = signer_pid(d)
    key = str(ca.dir / "intermediate.key")
    assert key not in open_files(d.proc.pid), "meshcad's network process has the key file open"
    status = open(f"/proc/{child}/status").read()
    assert "NoNewPrivs:\t1" in status, status
    assert enroll(ca, api, "custody-a").status_code == 201


@pytest.mark.skipif(os.geteuid() != 0, reason="reading /proc/<pid>/mem of another process needs root")
def test_network_process_memory_holds_no_private_key(served):
    ca, d, api = served
    assert enroll(ca, api, "custody-m").status_code == 201   # keys in use, not just loaded
    needles = key_scalar_needles(ca)
    assert memory_contains(signer_pid(d), needles), \
        "the private scalar is not found even in the signer: the search is broken"
    assert not memory_contains(d.proc.pid, needles), \
        "the network process's memory holds the intermediate's private scalar"


# ---------------------------------------------------------------- the signer, driven directly

class Signer:
    """`meshcad --signer-fd 3` on one end of a socketpair."""

    def __init__(self, ca):
        self.sock, theirs = socket.socketpair()
        # fd 3 in the child: the shell moves it there from stdin.
        self.proc = sysutil.track(subprocess.Popen(
            ["sh", "-c", 'exec 3<&0 0</dev/null; exec "$0" --signer-fd 3 --config "$1"',
             str(sysutil.MESHCAD), str(ca.conf)],
            stdin=theirs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        theirs.close()
        self.sock.settimeout(20)
        status, body = self.reply()
        assert status == 0 and body == b"", f"signer hello: {status} {body!r}"

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("signer closed the socket")
            buf += chunk
        return buf

    def reply(self):
        h = self.recv(8)
        n, status = struct.unpack(">IB", h[:5])
        return status, self.recv(n)

    def sign(self, kind, tbs, alg=GNUTLS_SIGN_ECDSA_SHA256, length=None):
        hdr = struct.pack(">IBBH", len(tbs) if length is None else length, 1, kind, alg)
        self.sock.sendall(hdr + tbs)
        return self.reply()

    def close(self):
        self.sock.close()
        sysutil.stop_process(self.proc)


@pytest.fixture(scope="module")
def material(served):
    """Real TBS structures of this CA: a leaf, the CRL, an OCSP response."""
    ca, d, api = served
    r = enroll(ca, api, "custody-t")
    assert r.status_code == 201, r.text
    leaf = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    crl = x509.load_der_x509_crl(api.get("/v1/crl").content)
    from cryptography.x509 import ocsp
    req = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca.intermediate, hashes.SHA1()).build()
    resp = api.post("/v1/ocsp", data=req.public_bytes(serialization.Encoding.DER),
                    headers={"Content-Type": "application/ocsp-request"})
    assert resp.status_code == 200
    o = ocsp.load_der_ocsp_response(resp.content)
    return {"cert": leaf.tbs_certificate_bytes, "crl": crl.tbs_certlist_bytes,
            "ocsp": o.tbs_response_bytes}


@pytest.fixture
def signer(served):
    s = Signer(served[0])
    yield s
    s.close()


def verify(ca, data, sig):
    ca.intermediate.public_key().verify(sig, data, ec.ECDSA(hashes.SHA256()))


def test_signer_signs_this_cas_structures(served, material, signer):
    ca = served[0]
    audit = AUDIT_LABEL + bytes(8) + os.urandom(32) + bytes(8)
    for kind, tbs in ((TYPE_CERT, material["cert"]), (TYPE_CRL, material["crl"]),
                      (TYPE_OCSP, material["ocsp"]), (TYPE_AUDIT, audit)):
        status, body = signer.sign(kind, tbs)
        assert status == 0, f"type {kind} refused: {body!r}"
        verify(ca, tbs, body)


def foreign_tbs(issuer_name, ca_flag):
    k = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
         .issuer_name(issuer_name).public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True))
    return b.sign(k, hashes.SHA256()).tbs_certificate_bytes


def test_signer_refuses_hostile_requests(served, material, signer):
    ca = served[0]
    ours = ca.intermediate.subject
    # The structure built by cryptography with our issuer and CA:FALSE is
    # accepted: the refusals below are for what they change, nothing else.
    assert signer.sign(TYPE_CERT, foreign_tbs(ours, False))[0] == 0
    cases = {
        "random bytes": (TYPE_CERT, os.urandom(300), b"TBSCertificate"),
        "truncated": (TYPE_CERT, material["cert"][:-10], b"TBSCertificate"),
        "trailing bytes": (TYPE_CERT, material["cert"] + b"\x00", b"TBSCertificate"),
        "foreign issuer": (TYPE_CERT, foreign_tbs(x509.Name([x509.NameAttribute(
            NameOID.COMMON_NAME, "evil CA")]), False), b"4.1.2.4"),
        "CA:TRUE": (TYPE_CERT, foreign_tbs(ours, True), b"4.2.1.9"),
        "CRL as certificate": (TYPE_CERT, material["crl"], b"TBSCertificate"),
        "certificate as CRL": (TYPE_CRL, material["cert"], b"TBSCertList"),
        "certificate as OCSP": (TYPE_OCSP, material["cert"], b"ResponseData"),
        "audit, wrong length": (TYPE_AUDIT, AUDIT_LABEL + bytes(10), b"audit"),
        "audit, wrong label": (TYPE_AUDIT, b"x" * 74, b"audit"),
        "unknown type": (9, material["cert"], b"unknown request type"),
    }
    for what, (kind, tbs, why) in cases.items():
        status, body = signer.sign(kind, tbs)
        assert status == 1, f"{what}: signed"
        assert why in body, f"{what}: reason {body!r}"
    status, body = signer.sign(TYPE_CERT, material["cert"], alg=1)
    assert status == 1 and b"algorithm" in body
    # Still serving after all the refusals.
    assert signer.sign(TYPE_CERT, material["cert"])[0] == 0
    # An oversized request is refused from its header; the signer then
    # closes the stream (it cannot skip 4 GiB to find the next header).
    status, body = signer.sign(TYPE_CERT, b"", length=0xFFFFFFF0)
    assert status == 1 and b"header refused" in body
    with pytest.raises((EOFError, ConnectionError)):
        signer.sign(TYPE_CERT, material["cert"])


def test_signer_rejects_a_key_it_cannot_read(binaries, tmp_path):
    ca = make_ca(tmp_path / "state")
    (ca.dir / "intermediate.key").write_text("not a key\n")
    res = sysutil.run([sysutil.MESHCAD, "--config", ca.conf, "--listen", "127.0.0.1:0"])
    assert res.returncode != 0
    assert "signer process" in res.stderr and "not a PEM private key" in res.stderr, res.stderr


def test_killed_signer_makes_issuance_fail_fast(binaries, tmp_path):
    ca = make_ca(tmp_path / "state")
    d = Daemon(ca, tmp_path).start()
    try:
        api = Api(ca, d)
        assert enroll(ca, api, "before").status_code == 201
        os.kill(signer_pid(d), signal.SIGKILL)
        time.sleep(0.2)
        t0 = time.monotonic()
        r = enroll(ca, api, "after")
        assert time.monotonic() - t0 < 10, "issuance hung on a dead signer"
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "signer_unavailable"
        h = api.get("/v1/health")
        assert h.status_code == 503 and h.json()["signer"] == "unavailable"
        assert "signer process gone" in d.stderr()
    finally:
        d.stop(check=False)
