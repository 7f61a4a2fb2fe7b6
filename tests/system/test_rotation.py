"""Rotation: POST /v1/renew and `meshca agent`.

The CA of this module issues down to a 2-second TTL (min_ttl = 2s in its
meshca.conf, as the issue allows for tests) so that the agent rotates within
seconds.  Every process a test starts (agents, meshcad, openssl s_server
started by a hook) is stopped by the test by its PID; everything listens on
127.0.0.1 only.
"""

import datetime
import json
import os
import re
import secrets
import sqlite3
import ssl
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import sysutil
from sysutil import ADMIN, Daemon, assert_error, make_csr, make_key

AGENT_WAIT = 45          # seconds a test waits for rotations before failing


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ca(binaries, tmp_path_factory):
    """This module's CA (it replaces conftest's, so `meshcad` and `api` serve it):
    TTLs down to 2 s, admin renewals capped at 1 h."""
    ca = sysutil.make_ca(tmp_path_factory.mktemp("rot-ca") / "state")
    text = re.sub(r"(?m)^min_ttl\s*=.*$", "min_ttl = 2s", ca.conf.read_text())
    ca.conf.write_text(text + "admin_max_ttl = 1h\n")
    return ca


def db_exec(ca, sql, params=()):
    """Edits the CA's database behind meshcad's back, as an operator would."""
    con = sqlite3.connect(str(ca.dir / "meshca.db"), timeout=15)
    try:
        with con:
            con.execute(sql, params)
    finally:
        con.close()


def service(api, unique, **fields):
    name = unique("rot")
    api.create_service(name, **fields)
    return name


def enrolled(api, tmp_path, name, key=None, **fields):
    """A workload of service `name` enrolled through the API: its directory."""
    key = key or make_key("ecdsa-p256")
    r = api.enroll(api.mint_token(name), make_csr(key), **fields)
    assert r.status_code == 201, r.text
    out = tmp_path / ("wl-" + secrets.token_hex(3))
    sysutil.write_workload(out, key, r.json())
    return out, r.json()


def creds(d):
    return (d / "fullchain.pem", d / "key.pem")


def renew(api, client, csr=None, **fields):
    body = {"csr": csr if csr is not None else make_csr(make_key()), **fields}
    return api.post("/v1/renew", client, json=body)


def leaf_of(resp_json):
    return x509.load_pem_x509_certificate(resp_json["certificate"].encode())


def spki(obj):
    pub = obj.public_key()
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_issued_by(cert, issuer):
    pub = issuer.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(cert.signature, cert.tbs_certificate_bytes,
                   ec.ECDSA(cert.signature_hash_algorithm))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                   cert.signature_hash_algorithm)
    else:
        pub.verify(cert.signature, cert.tbs_certificate_bytes)


def san_values(cert, kind):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return ext.value.get_values_for_type(kind)


# ---------------------------------------------------------------- the agent

class Agent:
    """`meshca agent` as a background process (stopped by PID)."""

    def __init__(self, workdir, url, out, *args, env_extra=None):
        self.log_path = Path(workdir) / f"agent-{secrets.token_hex(3)}.log"
        self.argv = [str(sysutil.MESHCA), "agent", "--url", url, "--out", str(out), *map(str, args)]
        self.env = sysutil.base_env()
        self.env.update(env_extra or {})
        self.proc = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = sysutil.track(subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env))
        return self

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, want=0):
        rc, killed = sysutil.stop_process(self.proc, timeout=20)
        assert not killed, "agent ignored SIGTERM\n" + self.log()
        assert rc == want, f"agent exited {rc}, want {want}\n" + self.log()
        assert "agent stopping" in self.log() or want != 0, self.log()


def token_file(api, tmp_path, name):
    p = tmp_path / f"{name}.token"
    p.write_text(api.mint_token(name) + "\n")
    os.chmod(p, 0o600)
    return p


def wait_for(pred, timeout, what, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()}")


def lines(p):
    try:
        return [l for l in Path(p).read_text().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


class PairWatch(threading.Thread):
    """Polls a credential directory the way a consumer reads it (key.pem, then
    cert.pem) and checks after every change that they match.  A read that
    straddled a switch of `live` is counted apart (it is the documented limit
    of two separate opens); reads through one resolved `live` must always match."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = Path(d)
        self.stop_ev = threading.Event()
        self.checks = 0
        self.straddled = 0
        self.mismatches = []
        self.gens = set()

    def check(self, key_pem, cert_pem, where):
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
        if spki(key) != spki(cert):
            self.mismatches.append(where)
        self.checks += 1

    def run(self):
        while not self.stop_ev.is_set():
            try:
                before = os.readlink(self.d / "live")
                k = (self.d / "key.pem").read_bytes()
                c = (self.d / "cert.pem").read_bytes()
                after = os.readlink(self.d / "live")
                gen = self.d / before          # one resolution, both files from it
                gk, gc = (gen / "key.pem").read_bytes(), (gen / "cert.pem").read_bytes()
            except FileNotFoundError:
                time.sleep(0.002)
                continue
            self.gens.add(before)
            self.check(gk, gc, f"{before} (resolved once)")
            if before == after:
                self.check(k, c, f"{before} via key.pem/cert.pem")
            else:
                self.straddled += 1
            time.sleep(0.002)

    def finish(self):
        self.stop_ev.set()
        self.join(timeout=10)
        assert not self.mismatches, f"key and certificate did not match: {self.mismatches[:5]}"
        assert self.checks > 50, f"only {self.checks} checks made"


# ---------------------------------------------------------------- agent tests

def test_agent_rotates_three_times(api, ca, tmp_path, unique):
    """Enrolls once with the token, then rotates >= 3 times: each certificate
    chains to the CA, keeps the SPIFFE ID, has a new serial and a new key, links
    to its predecessor, and the hook ran exactly once per new certificate."""
    name = service(api, unique, dns_names=["web.rot.svc"], default_ttl="6s")
    out, seen = tmp_path / "out", tmp_path / "seen"
    seen.mkdir()
    hook = f'cp "$MESHCA_AGENT_DIR/cert.pem" "{seen}/$MESHCA_AGENT_SERIAL.pem"; ' \
           f'echo "$MESHCA_AGENT_SERIAL" >> "{tmp_path}/hooks.log"'
    watch = PairWatch(out)
    watch.start()
    agent = Agent(tmp_path, api.url, out, "--fingerprint", ca.fingerprint,
                  "--token-file", token_file(api, tmp_path, name), "--renew-at", "0.5",
                  "--exec", hook).start()
    try:
        wait_for(lambda: len(lines(tmp_path / "hooks.log")) >= 4, AGENT_WAIT,
                 "an enrollment and three rotations", agent.log)
    finally:
        agent.stop()
        watch.finish()
    serials = lines(tmp_path / "hooks.log")
    assert len(serials) == len(set(serials)), f"a hook ran twice for one certificate: {serials}"
    issued = api.certificates(service=name)
    assert sorted(c["serial"] for c in issued) == sorted(serials), \
        "the hook must run once per certificate issued"
    by_serial = {c["serial"]: c for c in issued}
    keys = set()
    for prev, cur in zip(serials, serials[1:]):
        assert by_serial[cur]["renewed_from"] == prev
    for s in serials:
        cert = x509.load_pem_x509_certificate((seen / f"{s}.pem").read_bytes())
        assert cert.serial_number == int(s, 16)
        verify_issued_by(cert, ca.intermediate)
        assert san_values(cert, x509.UniformResourceIdentifier) == [ca.spiffe(name)]
        assert san_values(cert, x509.DNSName) == ["web.rot.svc"]
        keys.add(spki(cert))
    assert len(keys) == len(serials), "every rotation must bring a new key by default"
    assert len(watch.gens) >= 3, f"the watcher saw only generations {watch.gens}"
    # The log names each rotation; the state file is what `agent status` shows.
    assert agent.log().count('msg="certificate rotated"') >= 3
    res = sysutil.run([sysutil.MESHCA, "agent", "status", "--out", out, "--json"])
    assert res.returncode == 0, sysutil.describe(res)
    st = json.loads(res.stdout)
    assert st["serial"] == serials[-1] and st["spiffe_id"] == ca.spiffe(name)
    assert st["status"] == "valid" and st["last_error"] is None and st["rotations"] >= 4
    assert st["last_success"] and st["last_attempt"] and st["next_attempt"]
    # Only the current and the previous generation are kept.
    gens = sorted(p.name for p in out.iterdir() if p.name.startswith("gen-"))
    assert len(gens) == 2 and os.readlink(out / "live") == f"gen-{serials[-1]}"
    assert (out / "live" / "key.pem").stat().st_mode & 0o777 == 0o600


def test_agent_once_reuse_key_and_not_due(api, ca, tmp_path, unique):
    """`--once`: 0 when not yet due (nothing changes), 0 after renewing;
    `--reuse-key` keeps the key.  A directory of plain files written by an
    older `meshca enroll` is adopted."""
    name = service(api, unique, default_ttl="1h")
    out, first = enrolled(api, tmp_path, name)
    old_key = spki(serialization.load_pem_private_key((out / "key.pem").read_bytes(), None))
    base = [sysutil.MESHCA, "agent", "--url", api.url, "--out", out, "--once"]
    res = sysutil.run(base)
    assert res.returncode == 0, sysutil.describe(res)
    assert "not yet due" in res.stderr and (out / "cert.pem").is_file()
    assert not (out / "cert.pem").is_symlink(), "nothing is due: the files stay as they are"
    # Written two minutes ago: 1% of the lifetime (counted from notBefore) has passed.
    old = time.time() - 120
    os.utime(out / "cert.pem", (old, old))
    res = sysutil.run(base + ["--renew-at", "1%", "--jitter", "0", "--reuse-key"])
    assert res.returncode == 0, sysutil.describe(res)
    assert (out / "cert.pem").is_symlink() and (out / "key.pem").is_symlink()
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert cert.serial_number != int(first["serial"], 16)
    assert spki(cert) == old_key, "--reuse-key must keep the key"
    rec = [c for c in api.certificates(service=name) if int(c["serial"], 16) == cert.serial_number]
    assert len(rec) == 1 and rec[0]["renewed_from"] == first["serial"]


def test_tls_server_restarted_by_hook_keeps_accepting(api, ca, tmp_path, unique, tools):
    """openssl s_server (client certificates required) is restarted by the
    --exec hook after every rotation; a client presenting the rotated identity
    is accepted after each one, and the server presents the rotated certificate."""
    name = service(api, unique, dns_names=["tls.rot.svc"], default_ttl="6s")
    out, w = tmp_path / "out", tmp_path
    port = sysutil.free_port()
    hook = tmp_path / "restart.sh"
    hook.write_text(f"""#!/bin/sh
D="$MESHCA_AGENT_DIR"
if [ -f "{w}/srv.pid" ]; then
    old=$(cat "{w}/srv.pid"); kill "$old" 2>/dev/null
    i=0; while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
fi
openssl s_server -accept 127.0.0.1:{port} -cert "$D/cert.pem" -cert_chain "$D/chain.pem" \\
    -key "$D/key.pem" -CAfile "$D/roots.pem" -Verify 1 -verify_return_error -www \\
    </dev/null >>"{w}/srv.out" 2>&1 &
echo $! > "{w}/srv.pid"
echo $! >> "{w}/srv.pids"
echo "$MESHCA_AGENT_SERIAL" >> "{w}/hooks.log"
""")
    agent = Agent(tmp_path, api.url, out, "--root-cert", ca.root_crt,
                  "--token-file", token_file(api, tmp_path, name), "--renew-at", "0.5",
                  "--exec", f"sh {hook}").start()
    accepted = {}

    def probe():
        gen = out / os.readlink(out / "live")     # one resolution for key and cert
        serial = format(x509.load_pem_x509_certificate(
            (gen / "cert.pem").read_bytes()).serial_number, "x")
        # The agent switches "live" before it runs the hook: until the hook has
        # restarted s_server for this certificate, the old server still answers.
        hooked = lines(w / "hooks.log")
        if not hooked or int(hooked[-1], 16) != int(serial, 16):
            raise ConnectionResetError("s_server not yet restarted for this certificate")
        ctx = ssl.create_default_context(cafile=str(gen / "roots.pem"))
        ctx.load_cert_chain(str(gen / "fullchain.pem"), str(gen / "key.pem"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="tls.rot.svc") as s:
                peer = x509.load_der_x509_certificate(s.getpeercert(binary_form=True))
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                first = s.recv(64)
        if first == b"":
            # The hook killed this server between handshake and reply.
            raise ConnectionResetError("s_server restarting")
        assert first.startswith(b"HTTP/1.0 200"), first
        accepted.setdefault(serial, format(peer.serial_number, "x"))

    def progressed():
        try:
            probe()
        except (OSError, ssl.SSLError, FileNotFoundError):
            pass                                   # the server is restarting
        return len(accepted) >= 4

    try:
        wait_for(progressed, AGENT_WAIT, "the server to accept four identities in turn",
                 agent.log)
    finally:
        agent.stop()
        for pid in lines(w / "srv.pids"):
            try:
                os.kill(int(pid), 15)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        for pid in lines(w / "srv.pids"):
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
    for client_serial, server_serial in accepted.items():
        assert client_serial == server_serial, \
            "the restarted server must present the same, rotated certificate"
    assert len(lines(w / "hooks.log")) >= 4


def test_agent_backs_off_while_ca_is_down(ca, api, tmp_path, unique):
    """meshcad stopped: the agent retries with growing delays and keeps the
    certificate it has; meshcad back on the same port: the agent renews."""
    port = sysutil.free_port()
    d = Daemon(ca, tmp_path, extra_args=["--listen", f"127.0.0.1:{port}"]).start()
    name = service(api, unique, default_ttl="30s")
    out = tmp_path / "out"
    agent = Agent(tmp_path, d.url, out, "--root-cert", ca.root_crt,
                  "--token-file", token_file(api, tmp_path, name), "--renew-at", "0.2",
                  "--jitter", "0", "--backoff-min", "1s", "--backoff-max", "4s",
                  "--exec", f'echo "$MESHCA_AGENT_SERIAL" >> "{tmp_path}/hooks.log"').start()
    d2 = None
    try:
        wait_for(lambda: lines(tmp_path / "hooks.log"), 20, "the enrollment", agent.log)
        first = lines(tmp_path / "hooks.log")[0]
        d.stop(check=True)
        # "will retry" is logged after its "renewal failed": wait for the former,
        # or the third delay may not be written yet.
        wait_for(lambda: agent.log().count('msg="will retry"') >= 3, 30,
                 "three failed renewals", agent.log)
        assert agent.log().count('msg="renewal failed"') >= 3, agent.log()
        delays = re.findall(r'msg="will retry" in=(\d+)s', agent.log())
        assert [int(x) for x in delays[:3]] == [1, 2, 4], delays
        assert lines(tmp_path / "hooks.log") == [first], "nothing may be written while down"
        cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
        assert cert.serial_number == int(first, 16)
        assert sysutil.not_after(cert) > sysutil.utcnow(), "the old certificate is still valid"
        st = sysutil.run([sysutil.MESHCA, "agent", "status", "--out", out])
        assert st.returncode == 0 and "last_error:" in st.stdout and "connect" in st.stdout, st.stdout
        for _ in range(20):                         # same port; it may linger a moment
            try:
                d2 = Daemon(ca, tmp_path, extra_args=["--listen", f"127.0.0.1:{port}"]).start()
                break
            except AssertionError:
                time.sleep(0.5)
        assert d2 is not None, "meshcad could not listen again on its port"
        wait_for(lambda: len(lines(tmp_path / "hooks.log")) >= 2, 20,
                 "a renewal once meshcad is back", agent.log)
    finally:
        agent.stop()
        d.stop(check=False)
        if d2 is not None:
            d2.stop(check=True)


def test_agent_exits_3_on_expired_certificate(api, ca, tmp_path, unique):
    """An expired certificate that cannot be renewed: `--once` and the daemon
    both exit 3 loudly; `agent status` says expired (3); the CA refuses the
    renewal as certificate_expired."""
    name = service(api, unique)
    out, _ = enrolled(api, tmp_path, name, ttl="3s")
    time.sleep(4.5)
    res = sysutil.run([sysutil.MESHCA, "agent", "--url", api.url, "--out", out, "--once"])
    assert res.returncode == 3, sysutil.describe(res)
    assert "expired" in res.stderr and "certificate_expired" in res.stderr
    res = sysutil.run([sysutil.MESHCA, "agent", "--url", api.url, "--out", out], timeout=30)
    assert res.returncode == 3, sysutil.describe(res)
    assert 'level=error msg="certificate expired and cannot be renewed"' in res.stderr
    st = sysutil.run([sysutil.MESHCA, "agent", "status", "--out", out])
    assert st.returncode == 3 and "expired" in st.stdout, sysutil.describe(st)
    assert_error(renew(api, creds(out)), 401, "certificate_expired")


def test_agent_usage(api, tmp_path):
    base = [sysutil.MESHCA, "agent", "--url", api.url, "--out", tmp_path / "none"]
    for extra in (["mca_sometoken"], ["--signal", "HUP"], ["--renew-at", "1.5"],
                  ["--backoff-min", "10s", "--backoff-max", "5s"], ["--signal", "NOPE"]):
        res = sysutil.run(base + extra)
        assert res.returncode == 2, sysutil.describe(res)
    res = sysutil.run(base + ["--once"])            # no certificate and no token
    assert res.returncode == 2 and "token" in res.stderr, sysutil.describe(res)


# ---------------------------------------------------------------- the API

def test_renew_keeps_identity_and_links(api, ca, tmp_path, unique):
    name = service(api, unique, dns_names=["a.rot.svc"], ip_addresses=["127.0.0.1"],
                   default_ttl="1h", max_ttl="2h")
    out, first = enrolled(api, tmp_path, name, dns_names=["a.rot.svc"],
                          ip_addresses=["127.0.0.1"])
    key = make_key("ecdsa-p384")
    r = renew(api, creds(out), make_csr(key, cn="ignored", dns=["evil.example"]), ttl="100h")
    assert r.status_code == 201, r.text
    j = r.json()
    assert set(j) >= {"certificate", "chain", "roots", "serial", "spiffe_id", "not_before",
                      "not_after", "dns_names", "ip_addresses"}
    assert j["spiffe_id"] == ca.spiffe(name) and j["serial"] != first["serial"]
    assert j["dns_names"] == ["a.rot.svc"] and j["ip_addresses"] == ["127.0.0.1"]
    leaf = leaf_of(j)
    assert spki(leaf) == spki(key), "the CSR's (new) key is certified"
    verify_issued_by(leaf, ca.intermediate)
    life = sysutil.not_after(leaf) - sysutil.utcnow()
    assert life <= datetime.timedelta(hours=2, minutes=1), "TTL capped by the service's max"
    rec = api.get(f"/v1/certificates/{j['serial']}", ADMIN).json()
    assert rec["renewed_from"] == first["serial"] and rec["kind"] == "workload"
    # The old certificate still authenticates (it is not revoked by renewal).
    assert renew(api, creds(out)).status_code == 201


def test_renew_drops_names_removed_and_follows_spiffe_id(api, ca, tmp_path, unique):
    name = service(api, unique, dns_names=["keep.rot.svc", "drop.rot.svc"],
                   ip_addresses=["10.1.2.0/24"])
    out, first = enrolled(api, tmp_path, name, dns_names=["keep.rot.svc", "drop.rot.svc"],
                          ip_addresses=["10.1.2.3"])
    assert sorted(first["dns_names"]) == ["drop.rot.svc", "keep.rot.svc"]
    new_id = f"spiffe://{ca.trust_domain}/svc/{name}-v2"
    db_exec(ca, "UPDATE services SET dns_names = ?, ip_ranges = '', spiffe_id = ? WHERE name = ?",
            ("keep.rot.svc", new_id, name))
    r = renew(api, creds(out))
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["dns_names"] == ["keep.rot.svc"] and j["ip_addresses"] == []
    assert j["spiffe_id"] == new_id
    leaf = leaf_of(j)
    assert san_values(leaf, x509.DNSName) == ["keep.rot.svc"]
    assert san_values(leaf, x509.IPAddress) == []
    assert san_values(leaf, x509.UniformResourceIdentifier) == [new_id]


def test_renew_refusals(api, ca, tmp_path, unique):
    """Each refusal has its own code, and changes nothing."""
    name = service(api, unique, key_types=["ecdsa-p256"])
    before = api.cert_count(service=name)
    out, _ = enrolled(api, tmp_path, name)
    n = before + 1
    assert_error(renew(api, creds(out), sysutil.broken_signature_csr()), 400,
                 "csr_signature_invalid")
    assert_error(renew(api, creds(out), make_csr(make_key("ed25519"))), 400,
                 "key_type_not_allowed")
    assert_error(renew(api, creds(out), "not a csr"), 400, "csr_invalid")
    assert_error(renew(api, creds(out), ttl="1s"), 400, "invalid_ttl")
    # Names asked for explicitly must name something (issue 5: a request
    # names the SANs it wants); an unknown field is malformed.
    assert_error(api.post("/v1/renew", creds(out), json={"csr": make_csr(), "dns_names": []}),
                 400, "invalid_argument")
    assert_error(api.post("/v1/renew", creds(out), json={"csr": make_csr(), "names": []}),
                 400, "malformed_json")
    assert_error(renew(api, None), 401, "unauthenticated")
    foreign = sysutil.ForeignCA().issue(tmp_path / "foreign", ca.spiffe(name))
    assert_error(renew(api, foreign), 401, "unknown_issuer")
    assert api.cert_count(service=name) == n

    # Disabled service.
    db_exec(ca, "UPDATE services SET enabled = 0 WHERE name = ?", (name,))
    assert_error(renew(api, creds(out)), 403, "service_disabled")
    db_exec(ca, "UPDATE services SET enabled = 1 WHERE name = ?", (name,))

    # Revoked (marked in the database; passive revocation refuses it everywhere).
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    serial = api.certificates(service=name)[0]["serial"]
    assert int(serial, 16) == cert.serial_number
    db_exec(ca, "UPDATE certificates SET status = 'revoked', revoked_at = ?, "
            "revocation_reason = 1 WHERE serial = ?", (int(time.time()), serial))
    assert_error(renew(api, creds(out)), 401, "certificate_revoked")
    assert api.cert_count(service=name) == n


def test_renew_admin_and_server_certificates(api, ca):
    r = renew(api, ADMIN, ttl="100d")
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["spiffe_id"] == f"spiffe://{ca.trust_domain}/meshca/admin/admin"
    assert j["dns_names"] == [] and j["ip_addresses"] == []
    life = sysutil.not_after(leaf_of(j)) - sysutil.utcnow()
    assert life <= datetime.timedelta(hours=1, minutes=1), "capped by admin_max_ttl"
    rec = api.get(f"/v1/certificates/{j['serial']}", ADMIN).json()
    assert rec["kind"] == "admin"
    # meshcad's own certificate: refused, meshcad rotates it itself.
    server = (ca.dir / "server.crt", ca.dir / "server.key")
    assert_error(renew(api, server), 403, "forbidden")


def test_signal_hook_reaches_the_consumer_once_per_rotation(api, ca, tmp_path, unique):
    """--signal HUP --pid-file F: the process named by F gets one SIGHUP per new
    certificate (as nginx or envoy would, to reload)."""
    name = service(api, unique, dns_names=["sig.rot.svc"], default_ttl="6s")
    out, count = tmp_path / "out", tmp_path / "hups"
    pid_file = tmp_path / "consumer.pid"
    consumer = sysutil.track(subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time\n"
         "n = 0\n"
         "def hup(*_):\n"
         "    global n; n += 1\n"
         f"    open({str(count)!r}, 'w').write(str(n))\n"
         "signal.signal(signal.SIGHUP, hup)\n"
         f"open({str(pid_file)!r}, 'w').write(str(__import__('os').getpid()))\n"
         "while True: time.sleep(0.05)\n"],
        stdin=subprocess.DEVNULL))
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the consumer to start")
        agent = Agent(tmp_path, api.url, out, "--root-cert", ca.root_crt,
                      "--token-file", token_file(api, tmp_path, name), "--renew-at", "0.5",
                      "--signal", "HUP", "--pid-file", pid_file).start()
        try:
            wait_for(lambda: agent.log().count('msg="certificate rotated"') >= 2, AGENT_WAIT,
                     "two rotations", agent.log)
        finally:
            agent.stop()
        issued = len(api.certificates(service=name))
        wait_for(lambda: count.exists() and int(count.read_text() or 0) >= issued, 5,
                 f"{issued} SIGHUPs", agent.log)
        assert int(count.read_text()) == issued, "one signal per certificate, no more"
        assert consumer.poll() is None, "the consumer must survive its reload signals"
    finally:
        sysutil.stop_process(consumer)
