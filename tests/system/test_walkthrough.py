"""The README walkthrough, end to end, with real peers.

init -> meshcad -> two services -> a token each -> `meshca enroll --fingerprint`
into separate directories -> mutual TLS between the two workloads with
OpenSSL (s_server/s_client) and GnuTLS (gnutls-serv/gnutls-cli), and the
same handshakes refused for a client whose certificate comes from another
meshca CA of the *same* trust domain, with the *same* service name.
"""

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

import sysutil
from sysutil import Cli, Daemon, describe, load_certs, make_ca

SERVICES = {
    "web": ["--dns", "web.svc", "--dns", "*.web.svc", "--ip", "127.0.0.1"],
    "payments": ["--dns", "payments.svc"],
}
HTTP_GET = "GET / HTTP/1.0\r\n\r\n"


def enroll_cli(url, fingerprint, token, out_dir, *extra):
    """`meshca enroll` as a workload runs it: no MESHCA_CONFIG, no admin credentials."""
    token_file = Path(str(out_dir) + ".token")
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    return sysutil.run([sysutil.MESHCA, "enroll", "--url", url, "--fingerprint", fingerprint,
                        "--token-file", token_file, "--out", out_dir, *extra],
                       env=sysutil.base_env())


def add_and_enroll(cli, ca, daemon, name, flags, out_dir):
    cli("service", "add", name, *flags)
    tok = cli("token", "create", name).stdout
    assert sysutil.TOKEN_RE.match(tok.strip()) and tok.strip() == tok.rstrip("\n"), \
        f"`meshca token create` must print only the token, got {tok!r}"
    res = enroll_cli(daemon.url, ca.printed_fingerprint, tok.strip(), out_dir)
    assert res.returncode == 0, "meshca enroll failed\n" + describe(res)
    return Path(out_dir)


@pytest.fixture(scope="module")
def mesh(ca, meshcad, cli, tmp_path_factory):
    """Both services enrolled with the main CA: {"web": dir, "payments": dir}."""
    assert ca.printed_fingerprint, "meshca init printed no 64-hex fingerprint:\n" + ca.init_result.stdout
    base = tmp_path_factory.mktemp("mesh")
    return {name: add_and_enroll(cli, ca, meshcad, name, flags, base / name)
            for name, flags in SERVICES.items()}


@pytest.fixture(scope="module")
def foreign(ca, tmp_path_factory):
    """A second, unrelated meshca CA with the same trust domain and a `payments`
    service of its own, enrolled the same way: the impostor's directory."""
    other = make_ca(tmp_path_factory.mktemp("other-ca") / "state")
    d = Daemon(other, tmp_path_factory.mktemp("other-meshcad")).start()
    try:
        out = add_and_enroll(Cli(other, d), other, d, "payments", SERVICES["payments"],
                             tmp_path_factory.mktemp("impostor") / "payments")
    finally:
        d.stop(check=True)
    assert other.fingerprint != ca.fingerprint, "two inits made the same root"
    return out


# ---------------------------------------------------------------- what enroll wrote

def test_init_prints_root_fingerprint(ca):
    assert ca.printed_fingerprint == ca.fingerprint, \
        "fingerprint printed by init is not SHA-256 of root.crt's DER"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_enroll_writes_the_workload_files(ca, mesh, name):
    d = mesh[name]
    for f in ("key.pem", "cert.pem", "chain.pem", "fullchain.pem", "roots.pem"):
        assert (d / f).is_file(), f"{d / f} missing"
    assert stat.S_IMODE((d / "key.pem").stat().st_mode) == 0o600
    leaf = load_certs((d / "cert.pem").read_text())
    chain = load_certs((d / "chain.pem").read_text())
    full = load_certs((d / "fullchain.pem").read_text())
    roots = load_certs((d / "roots.pem").read_text())
    assert len(leaf) == 1, "cert.pem must hold the leaf only"
    assert chain == [ca.intermediate], "chain.pem must hold the intermediate"
    assert full == leaf + chain, "fullchain.pem must be leaf then intermediate"
    assert roots == [ca.root], "roots.pem must be this CA's root"
    san = leaf[0].extensions.get_extension_for_class(sysutil.x509.SubjectAlternativeName).value
    assert san.get_values_for_type(sysutil.x509.UniformResourceIdentifier) == [ca.spiffe(name)]


def test_cli_lists_what_was_issued(ca, cli, mesh):
    names = {s["name"] for s in _records(cli.json("service", "list", "--json"), "services")}
    assert set(SERVICES) <= names
    for name, d in mesh.items():
        serial = load_certs((d / "cert.pem").read_text())[0].serial_number
        certs = _records(cli.json("certs", "list", "--service", name, "--json"), "certificates")
        assert [int(c["serial"], 16) for c in certs] == [serial], \
            f"`meshca certs list --service {name}` does not show exactly the enrolled certificate"


def _records(doc, key):
    return doc[key] if isinstance(doc, dict) else doc


# ---------------------------------------------------------------- OpenSSL

class SServer:
    """openssl s_server -www on 127.0.0.1, on a port picked by binding :0 (retried)."""

    def __init__(self, workdir, srv_dir, ca_file):
        self.workdir = Path(workdir)
        self.srv_dir = Path(srv_dir)
        self.ca_file = ca_file
        self.proc = None

    def __enter__(self):
        for attempt in range(5):
            self.port = sysutil.free_port()
            self.out = self.workdir / f"s_server-{self.port}.out"
            with open(self.out, "wb") as f:
                d = self.srv_dir
                self.proc = sysutil.track(subprocess.Popen(
                    ["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}",
                     "-cert", d / "cert.pem", "-cert_chain", d / "chain.pem", "-key", d / "key.pem",
                     "-CAfile", self.ca_file, "-Verify", "1", "-verify_return_error", "-www"],
                    stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if "ACCEPT" in self.output() or self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if self.proc.poll() is None and "ACCEPT" in self.output():
                return self
            sysutil.stop_process(self.proc, timeout=5)
            if "in use" not in self.output():
                raise AssertionError("openssl s_server did not start:\n" + self.output())
        raise AssertionError("no free port for openssl s_server after 5 attempts")

    def output(self):
        return self.out.read_text(errors="replace")

    def __exit__(self, *exc):
        sysutil.stop_process(self.proc, timeout=5)


def s_client(port, cli_dir, ca_file, hostname):
    d = Path(cli_dir)
    return sysutil.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-cert", d / "cert.pem", "-cert_chain", d / "chain.pem", "-key", d / "key.pem",
                        "-CAfile", ca_file, "-verify_return_error", "-verify_hostname", hostname,
                        "-ign_eof"], input=HTTP_GET, timeout=30)


@pytest.mark.parametrize("server,client,host", [("web", "payments", "web.svc"),
                                                ("payments", "web", "payments.svc")])
def test_openssl_mutual_tls(tools, ca, mesh, tmp_path, server, client, host):
    with SServer(tmp_path, mesh[server], mesh[server] / "roots.pem") as srv:
        res = s_client(srv.port, mesh[client], mesh[client] / "roots.pem", host)
    assert res.returncode == 0, "s_client failed\n" + describe(res) + "\ns_server:\n" + srv.output()
    assert "Verify return code: 0 (ok)" in res.stdout, describe(res)
    assert "HTTP/1.0 200 ok" in res.stdout, describe(res)
    # s_server -www prints the client certificate it verified: the server saw the client's ID.
    assert "Client certificate" in res.stdout, describe(res)
    assert f"URI:{ca.spiffe(client)}" in res.stdout, describe(res)


def test_openssl_server_refuses_client_of_another_ca(tools, mesh, foreign, tmp_path):
    with SServer(tmp_path, mesh["web"], mesh["web"] / "roots.pem") as srv:
        res = s_client(srv.port, foreign, mesh["payments"] / "roots.pem", "web.svc")
        time.sleep(0.2)
    assert "HTTP/1.0 200 ok" not in res.stdout, \
        "s_server served a client whose certificate is from another CA\n" + describe(res)
    assert res.returncode != 0, describe(res)
    assert "alert" in res.stderr.lower(), describe(res)
    assert "certificate verify failed" in srv.output(), srv.output()


def test_openssl_client_refuses_server_of_another_ca(tools, mesh, foreign, tmp_path):
    # The impostor serves; the genuine payments workload must not trust it.
    with SServer(tmp_path, foreign, foreign / "roots.pem") as srv:
        res = s_client(srv.port, mesh["web"], mesh["web"] / "roots.pem", "payments.svc")
    assert res.returncode != 0, describe(res)
    assert "HTTP/1.0 200 ok" not in res.stdout, describe(res)
    assert "Verify return code: 0 (ok)" not in res.stdout, describe(res)


def test_openssl_client_checks_the_server_name(tools, mesh, tmp_path):
    # Control for the hostname check used above: web's certificate is not payments.svc.
    with SServer(tmp_path, mesh["web"], mesh["web"] / "roots.pem") as srv:
        res = s_client(srv.port, mesh["payments"], mesh["payments"] / "roots.pem", "payments.svc")
    assert res.returncode != 0 and "HTTP/1.0 200 ok" not in res.stdout, describe(res)


# ---------------------------------------------------------------- GnuTLS

def test_gnutls_mutual_tls_and_foreign_client(tools, netns, ca, mesh, foreign, tmp_path):
    web, pay = mesh["web"], mesh["payments"]
    spec = {
        "server": {"certfile": str(web / "fullchain.pem"), "keyfile": str(web / "key.pem"),
                   "cafile": str(web / "roots.pem")},
        "clients": [
            {"name": "genuine", "certfile": str(pay / "fullchain.pem"),
             "keyfile": str(pay / "key.pem"), "cafile": str(pay / "roots.pem"),
             "hostname": "web.svc"},
            {"name": "impostor", "certfile": str(foreign / "fullchain.pem"),
             "keyfile": str(foreign / "key.pem"), "cafile": str(pay / "roots.pem"),
             "hostname": "web.svc"},
        ],
    }
    spec_file = tmp_path / "gnutls-spec.json"
    spec_file.write_text(json.dumps(spec))
    helper = Path(__file__).with_name("netns_gnutls.py")
    proc = sysutil.track(subprocess.Popen(
        ["unshare", "-n", "--", "/usr/bin/python3", str(helper), str(spec_file)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, text=True))
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        sysutil.stop_group(proc)
        raise AssertionError("gnutls netns helper timed out")
    assert proc.returncode == 0, f"netns helper failed ({proc.returncode}):\n{err}\n{out}"
    result = json.loads(out)
    good, bad = result["clients"]["genuine"], result["clients"]["impostor"]
    ctx = json.dumps(result, indent=1)[-6000:]
    assert good["rc"] == 0, "gnutls-cli with a genuine certificate failed\n" + ctx
    assert "The certificate is trusted" in good["stdout"], ctx
    assert "HTTP/1.0 200 OK" in good["stdout"], ctx
    # gnutls-serv's page describes the client certificate it verified.
    assert f"URI: {ca.spiffe('payments')}" in good["stdout"], ctx
    assert bad["rc"] not in (0, None), "gnutls-serv accepted a client certificate of another CA\n" + ctx
    assert "HTTP/1.0 200 OK" not in bad["stdout"], ctx
    assert "Error in the certificate" in result["server_stderr"] or \
        "Error in handshake" in result["server_stderr"], ctx
