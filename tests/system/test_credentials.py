"""The intermediate key's passphrase, as systemd's LoadCredential= hands it.

The CA's intermediate key is re-encrypted (PKCS#8, PBES2 AES-256) with
openssl; meshcad then refuses to start without the passphrase (exit 1,
saying why), and serves and issues with it, read from
$CREDENTIALS_DIRECTORY/intermediate-key-passphrase or from the file named
by intermediate_key_passphrase_file.  A wrong one is refused.
"""

import os

import pytest

import sysutil
from sysutil import MESHCAD, base_env, describe, run

PASS = "intermediate passphrase, test only"


@pytest.fixture(scope="module")
def enc_ca(binaries, tmp_path_factory):
    ca = sysutil.make_ca(tmp_path_factory.mktemp("ca") / "state")
    key = ca.dir / "intermediate.key"
    enc = ca.dir / "intermediate.key.enc"
    res = run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key, "-out", enc,
               "-passout", "pass:" + PASS])
    assert res.returncode == 0, describe(res)
    os.chmod(enc, 0o600)
    os.replace(enc, key)
    assert "ENCRYPTED PRIVATE KEY" in key.read_text()
    return ca


def start_fails(ca, env, tmp_path):
    res = run([MESHCAD, "--config", ca.conf, "--listen", "127.0.0.1:0",
               "--port-file", tmp_path / "never.port"], env=env, timeout=30)
    assert res.returncode == 1, describe(res)
    assert not (tmp_path / "never.port").exists()
    return res.stderr


def issue_one(ca, d):
    api = sysutil.Api(ca, d)
    name = "svc-" + os.urandom(3).hex()
    api.create_service(name, dns_names=[f"{name}.svc"])
    r = api.enroll(api.mint_token(name), sysutil.make_csr(sysutil.make_key()))
    assert r.status_code == 201, r.text


def test_without_passphrase_refuses_to_start(enc_ca, tmp_path):
    err = start_fails(enc_ca, base_env(), tmp_path)
    assert "passphrase" in err, err
    assert PASS not in err


def test_wrong_passphrase_refused(enc_ca, tmp_path):
    cred = tmp_path / "cred"
    cred.mkdir()
    (cred / "intermediate-key-passphrase").write_text("not it\n")
    env = base_env()
    env["CREDENTIALS_DIRECTORY"] = str(cred)
    err = start_fails(enc_ca, env, tmp_path)
    assert "passphrase" in err and "not it" not in err, err


def test_systemd_credential(enc_ca, tmp_path, monkeypatch):
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    (cred / "intermediate-key-passphrase").write_text(PASS + "\n")
    env = base_env()
    env["CREDENTIALS_DIRECTORY"] = str(cred)
    monkeypatch.setattr(sysutil, "base_env", lambda: env)   # Daemon.start reads it
    d = sysutil.Daemon(enc_ca, tmp_path).start()
    try:
        issue_one(enc_ca, d)
    finally:
        d.stop(check=True)
    assert PASS not in d.stderr()


def test_passphrase_file_setting(enc_ca, tmp_path):
    pf = tmp_path / "pass"
    pf.write_text(PASS + "\r\n")
    pf.chmod(0o600)
    conf = tmp_path / "meshca.conf"      # init writes absolute paths: a copy elsewhere works
    conf.write_text(enc_ca.conf.read_text() + f"intermediate_key_passphrase_file = {pf}\n")
    d = sysutil.Daemon(enc_ca, tmp_path, config=conf).start()
    try:
        issue_one(enc_ca, d)
    finally:
        d.stop(check=True)


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read()


def test_passphrase_from_environment_is_wiped(enc_ca, tmp_path, monkeypatch):
    """MESHCA_INTERMEDIATE_KEY_PASSPHRASE (containers, secret injectors) works,
    and neither meshcad nor its signer keeps it in /proc/PID/environ: each
    overwrites it in place once it has no more use for it."""
    env = base_env()
    env["MESHCA_INTERMEDIATE_KEY_PASSPHRASE"] = PASS
    monkeypatch.setattr(sysutil, "base_env", lambda: env)
    d = sysutil.Daemon(enc_ca, tmp_path).start()
    try:
        issue_one(enc_ca, d)
        kids = open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read().split()
        assert len(kids) == 1, kids                     # the signer
        for pid in (d.proc.pid, int(kids[0])):
            e = environ_of(pid)
            assert PASS.encode() not in e, f"pid {pid} still shows the passphrase"
            assert b"MESHCA_INTERMEDIATE_KEY_PASSPHRASE=" + PASS.encode() not in e
    finally:
        d.stop(check=True)
    assert PASS not in d.stderr()


def test_empty_environment_passphrase_refused(enc_ca, tmp_path):
    env = base_env()
    env["MESHCA_INTERMEDIATE_KEY_PASSPHRASE"] = ""
    err = start_fails(enc_ca, env, tmp_path)
    assert "MESHCA_INTERMEDIATE_KEY_PASSPHRASE" in err and "empty" in err, err
