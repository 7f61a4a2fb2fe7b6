"""Helpers shared by the meshca system tests (imported by conftest.py and the tests).

Everything here talks only to 127.0.0.1/::1, and every process it starts is
tracked in PROCESSES so that it can be stopped by its own PID.
"""

import datetime
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MESHCA_BUILD_DIR", str(REPO / "build"))).resolve()
MESHCA = BUILD / "cli" / "meshca"
MESHCAD = BUILD / "api" / "meshcad"

TRUST_DOMAIN = "mesh.internal"
PASSPHRASE = "system-test root passphrase, not a secret"

CLI_TIMEOUT = 60          # one CLI command (init generates keys)
START_TIMEOUT = 15        # meshcad: port file must appear within this
STOP_TIMEOUT = 15         # meshcad: SIGTERM to exit (its own grace for requests is 10 s)
HTTP_TIMEOUT = 20

FINGERPRINT_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
TOKEN_RE = re.compile(r"^mca_[A-Za-z0-9_-]{43}$")

# Every process started by the suite; conftest kills leftovers by PID at exit.
PROCESSES = []
_PROC_LOCK = threading.Lock()


def track(proc):
    with _PROC_LOCK:
        PROCESSES.append(proc)
    return proc


def kill_tracked():
    """Last-resort cleanup: SIGKILL, by PID, every tracked process still running."""
    with _PROC_LOCK:
        procs = list(PROCESSES)
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def stop_process(proc, timeout=STOP_TIMEOUT, sig=signal.SIGTERM):
    """Send sig to proc's PID, wait, SIGKILL after timeout.

    Returns (returncode, killed) where killed tells that SIGKILL was needed.
    """
    if proc.poll() is not None:
        return proc.returncode, False
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10), True


def stop_group(proc, timeout=5):
    """For processes started with start_new_session=True: SIGTERM then SIGKILL
    to the process group whose id is proc's PID (the group it leads)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (callers retry on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def new_session(verify):
    """A requests session that ignores the environment: REQUESTS_CA_BUNDLE would
    override session.verify, and a proxy must never see loopback traffic."""
    s = requests.Session()
    s.trust_env = False
    s.verify = str(verify)
    return s


def base_env():
    """The environment for our child processes: no MESHCA_* from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MESHCA_") and k.lower() not in PROXY_VARS}
    env["LC_ALL"] = "C"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,::1,localhost"
    return env


def run(argv, env=None, timeout=CLI_TIMEOUT, input=None, cwd=None):
    """Run a command to completion, capturing text output; never raises on exit status."""
    try:
        return subprocess.run([str(a) for a in argv], env=env, cwd=cwd, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except subprocess.TimeoutExpired as e:  # subprocess.run kills the child it started
        raise AssertionError(f"command timed out after {timeout}s: {argv}\n"
                             f"stdout: {e.stdout}\nstderr: {e.stderr}")


def describe(res):
    return (f"command: {' '.join(str(a) for a in res.args)}\nexit: {res.returncode}\n"
            f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}")


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot_dir(d):
    """{relative path: (mode, sha256)} of every file below d."""
    out = {}
    for p in sorted(Path(d).rglob("*")):
        if p.is_file():
            out[str(p.relative_to(d))] = (p.stat().st_mode & 0o7777, file_sha256(p))
    return out


# ---------------------------------------------------------------- the CA state

class CA:
    """A meshca state directory made by `meshca init`."""

    def __init__(self, state_dir, trust_domain, init_result):
        self.dir = Path(state_dir)
        self.trust_domain = trust_domain
        self.init_result = init_result
        m = FINGERPRINT_RE.search(init_result.stdout)
        self.printed_fingerprint = m.group(0) if m else None
        self.conf = self.dir / "meshca.conf"
        self.root_crt = self.dir / "root.crt"
        self.admin_crt = self.dir / "admin.crt"
        self.admin_key = self.dir / "admin.key"
        self.intermediate_crt = self.dir / "intermediate.crt"

    @property
    def root(self):
        return x509.load_pem_x509_certificate(self.root_crt.read_bytes())

    @property
    def intermediate(self):
        return x509.load_pem_x509_certificate(self.intermediate_crt.read_bytes())

    @property
    def fingerprint(self):
        return self.root.fingerprint(hashes.SHA256()).hex()

    def spiffe(self, service):
        return f"spiffe://{self.trust_domain}/svc/{service}"


def meshca_init(state_dir, trust_domain=TRUST_DOMAIN, extra=(), env=None):
    """Run `meshca init`; returns the CompletedProcess."""
    if env is None:
        env = base_env()
        env["MESHCA_ROOT_PASSPHRASE"] = PASSPHRASE
    return run([MESHCA, "init", "--state-dir", state_dir, "--trust-domain", trust_domain, *extra],
               env=env)


# The suite presents bad, used and expired tokens from 127.0.0.1 by the
# hundred on purpose; meshcad's per-address limit on such failures (10, one
# forgiven every 6 s) would turn later answers into 429.  test_hostile_load.py
# tests that limit with its own settings.
SUITE_LIMITS = "bad_token_burst = 100000\n"


def make_ca(state_dir, trust_domain=TRUST_DOMAIN):
    res = meshca_init(state_dir, trust_domain)
    assert res.returncode == 0, "meshca init failed\n" + describe(res)
    ca = CA(state_dir, trust_domain, res)
    with open(ca.conf, "a") as f:
        f.write(SUITE_LIMITS)
    return ca


# ---------------------------------------------------------------- the daemon

class Daemon:
    _seq = 0

    def __init__(self, ca, workdir, extra_args=(), config=None):
        Daemon._seq += 1
        n = Daemon._seq
        self.ca = ca
        self.port_file = Path(workdir) / f"meshcad-{n}.port"
        self.stderr_path = Path(workdir) / f"meshcad-{n}.stderr"
        self.stdout_path = Path(workdir) / f"meshcad-{n}.stdout"
        self.argv = [str(MESHCAD), "--config", str(config or ca.conf), "--listen", "127.0.0.1:0",
                     "--port-file", str(self.port_file), *extra_args]
        self.proc = None
        self.port = None

    def start(self):
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = track(subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                               stderr=err, env=base_env()))
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"meshcad exited early with {self.proc.returncode}\n"
                                     f"argv: {self.argv}\nstderr:\n{self.stderr()}")
            try:
                text = self.port_file.read_text()
            except FileNotFoundError:
                text = None
            # Read twice, equal and numeric: the file may be caught half written.
            if text and text.strip().isdigit() and text == last:
                self.port = int(text.strip())
                break
            last = text
            time.sleep(0.05)
        else:
            self.stop(check=False)
            raise AssertionError(f"meshcad wrote no port file within {START_TIMEOUT}s\n"
                                 f"stderr:\n{self.stderr()}")
        assert 0 < self.port < 65536, f"port file holds {self.port}"
        self.url = f"https://127.0.0.1:{self.port}"
        # The port file promises readiness; allow a short grace for slow machines.
        deadline = time.monotonic() + 5
        while True:
            try:
                with new_session(self.ca.root_crt) as s:
                    r = s.get(self.url + "/v1/health", timeout=5)
                if r.status_code == 200:
                    break
                err = f"status {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                err = repr(e)
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop(check=False)
                raise AssertionError(f"meshcad on port {self.port} not healthy: {err}\n"
                                     f"stderr:\n{self.stderr()}")
            time.sleep(0.1)
        return self

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, check=True):
        """SIGTERM to meshcad's PID, SIGKILL after STOP_TIMEOUT; check it exited 0."""
        if self.proc is None:
            return None
        rc, killed = stop_process(self.proc)
        if check:
            assert not killed, (f"meshcad did not exit within {STOP_TIMEOUT}s of SIGTERM\n"
                                f"stderr tail:\n{self.stderr()[-3000:]}")
            assert rc == 0, f"meshcad exited {rc} after SIGTERM\nstderr tail:\n{self.stderr()[-3000:]}"
        return rc


# ---------------------------------------------------------------- the CLI

class Cli:
    """Runs `meshca` against one CA and (optionally) one running meshcad.

    meshcad listens on a port chosen at start, so the helper writes
    DIR/cli-PORT.conf: a copy of meshca.conf whose url names that port, and
    passes it through MESHCA_CONFIG.
    """

    def __init__(self, ca, daemon=None):
        self.ca = ca
        self.daemon = daemon
        self.config = ca.conf
        if daemon is not None:
            lines = [l for l in ca.conf.read_text().splitlines()
                     if not re.match(r"\s*url\s*=", l)]
            lines.append(f"url = {daemon.url}")
            self.config = ca.dir / f"cli-{daemon.port}.conf"
            self.config.write_text("\n".join(lines) + "\n")

    def env(self, **extra):
        env = base_env()
        env["MESHCA_CONFIG"] = str(self.config)
        env.update(extra)
        return env

    def __call__(self, *args, expect=0, env=None, timeout=CLI_TIMEOUT, input=None):
        res = run([MESHCA, *args], env=env or self.env(), timeout=timeout, input=input)
        if expect is not None:
            assert res.returncode == expect, f"expected exit {expect}\n" + describe(res)
        return res

    def json(self, *args):
        res = self(*args)
        try:
            return json.loads(res.stdout)
        except ValueError as e:
            raise AssertionError(f"output is not JSON ({e})\n" + describe(res))


# ---------------------------------------------------------------- HTTP

ADMIN = "admin"


class Api:
    """requests against one meshcad, verifying TLS with the CA's root.crt.

    client: None (no client certificate), ADMIN (DIR/admin.crt + admin.key),
    or a (certfile, keyfile) pair such as a workload's fullchain.pem/key.pem.
    """

    def __init__(self, ca, daemon):
        self.ca = ca
        self.daemon = daemon
        self.url = daemon.url

    def session(self, client=None):
        s = new_session(self.ca.root_crt)
        if client == ADMIN:
            s.cert = (str(self.ca.admin_crt), str(self.ca.admin_key))
        elif client is not None:
            s.cert = tuple(str(c) for c in client)
        return s

    def request(self, method, path, client=None, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        with self.session(client) as s:
            return s.request(method, self.url + path, **kw)

    def get(self, path, client=None, **kw):
        return self.request("GET", path, client, **kw)

    def post(self, path, client=None, **kw):
        return self.request("POST", path, client, **kw)

    # -- the admin operations the tests need

    def create_service(self, name, **fields):
        body = {"name": name, **fields}
        r = self.post("/v1/services", ADMIN, json=body)
        assert r.status_code == 201, f"create service {body}: {r.status_code} {r.text}"
        return r.json()

    def mint_token(self, service, ttl=None):
        body = {} if ttl is None else {"ttl": ttl}
        r = self.post(f"/v1/services/{service}/tokens", ADMIN, json=body)
        assert r.status_code == 201, f"mint token for {service}: {r.status_code} {r.text}"
        tok = r.json()["token"]
        assert TOKEN_RE.match(tok), f"token {tok!r} does not look like mca_<43 base64url>"
        return tok

    def certificates(self, **params):
        r = self.get("/v1/certificates", ADMIN, params=params)
        assert r.status_code == 200, f"list certificates: {r.status_code} {r.text}"
        return r.json()["certificates"]

    def cert_count(self, **params):
        return len(self.certificates(**params))

    def enroll(self, token, csr_pem, **fields):
        body = {"token": token, "csr": csr_pem, **fields}
        return self.post("/v1/enroll", json=body)

    def health(self):
        r = self.get("/v1/health")
        assert r.status_code == 200, f"health after the request: {r.status_code} {r.text}"
        assert r.json().get("status") == "ok", r.text
        return r.json()


def error_code(resp):
    """The error.code of a documented JSON error response, asserting its shape."""
    ctype = resp.headers.get("Content-Type", "")
    assert "application/json" in ctype, \
        f"error response has Content-Type {ctype!r}, want application/json: {resp.text[:300]}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:300]!r}")
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"error body lacks the error object: {body}"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], \
        f"error without a message: {body}"
    return body["error"].get("code")


def assert_error(resp, status, code):
    assert resp.status_code == status, \
        f"want {status} {code}, got {resp.status_code}: {resp.text[:500]}"
    got = error_code(resp)
    assert got == code, f"want error.code {code!r}, got {got!r}: {resp.text[:500]}"


# ---------------------------------------------------------------- keys and CSRs

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-1024")


def make_key(kind="ecdsa-p256"):
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    raise ValueError(kind)


def _sign_hash(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def make_csr(key=None, cn="workload", dns=(), ips=(), uris=(), der=False):
    """A PKCS#10 request (PEM text, or DER bytes when der=True)."""
    key = key or make_key()
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    names = ([x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
             + [x509.UniformResourceIdentifier(u) for u in uris])
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = b.sign(key, _sign_hash(key))
    if der:
        return csr.public_bytes(serialization.Encoding.DER)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def der_to_pem(der, label="CERTIFICATE REQUEST"):
    import base64
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def broken_signature_csr(key=None):
    """A well-formed CSR whose signature does not verify: the last byte of the
    DER (inside the signature BIT STRING) is flipped."""
    der = bytearray(make_csr(key or make_key("ecdsa-p256"), der=True))
    der[-1] ^= 0x01
    csr = x509.load_der_x509_csr(bytes(der))          # still parses ...
    assert not csr.is_signature_valid, "flipping a byte left the signature valid"  # ... but lies
    return der_to_pem(bytes(der))


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def load_certs(pem_text):
    """Every certificate of a PEM text, in order (cryptography 38 has no
    load_pem_x509_certificates)."""
    if isinstance(pem_text, bytes):
        pem_text = pem_text.decode()
    return [x509.load_pem_x509_certificate(m.group(0).encode())
            for m in PEM_CERT_RE.finditer(pem_text)]


def write_workload(out_dir, key, resp_json):
    """Store an /v1/enroll answer like `meshca enroll` does; returns (fullchain, key) paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "key.pem").write_bytes(key_pem(key))
    os.chmod(out / "key.pem", 0o600)
    (out / "cert.pem").write_text(resp_json["certificate"])
    (out / "chain.pem").write_text(resp_json["chain"])
    (out / "fullchain.pem").write_text(resp_json["certificate"] + resp_json["chain"])
    if "roots" in resp_json:
        (out / "roots.pem").write_text(resp_json["roots"])
    return out / "fullchain.pem", out / "key.pem"


# ---------------------------------------------------------------- a self-made foreign CA

class ForeignCA:
    """A CA made with python cryptography, unrelated to meshca: issues leaves that
    carry whatever SPIFFE ID the test asks for (including this mesh's)."""

    def __init__(self, name="foreign test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                                    critical=False)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, out_dir, uri, dns=()):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = [x509.UniformResourceIdentifier(uri)] + [x509.DNSName(d) for d in dns]
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=1))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName(names), critical=True)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                             False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "key.pem").write_bytes(key_pem(key))
        os.chmod(out / "key.pem", 0o600)
        (out / "cert.pem").write_text(cert_pem(leaf))
        (out / "chain.pem").write_text(cert_pem(self.cert))
        (out / "fullchain.pem").write_text(cert_pem(leaf) + cert_pem(self.cert))
        (out / "roots.pem").write_text(cert_pem(self.cert))
        return out / "fullchain.pem", out / "key.pem"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def not_before(cert):
    return cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def not_after(cert):
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
