"""The intermediate key in a PKCS#11 token (issue 7), with SoftHSM2.

A token in a temporary directory (SOFTHSM2_CONF names a temporary
softhsm2.conf); `meshca init --intermediate-key pkcs11:... --pin-file F`
generates the key inside it; meshcad's signer process signs there.  Then:
enroll, renew, revoke, the CRL and an OCSP answer verify with openssl; the
key is sensitive and never extractable (p11tool) and no intermediate key
file exists in the state directory.
"""

import os
import shutil
import time

import pytest

import sysutil
from sysutil import CA, Api, Daemon, make_csr, make_key, meshca_init, run, describe

TOKEN = "meshca-test"
PIN = "246810"
URI = f"pkcs11:token={TOKEN};object=meshca-intermediate"

pytestmark = pytest.mark.skipif(
    shutil.which("softhsm2-util") is None or shutil.which("p11tool") is None,
    reason="softhsm2 and p11tool (gnutls-bin) are needed: deploy/install-deps.sh --test")


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)      # base_env() passes it to meshca and meshcad
    res = run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN,
               "--so-pin", "13579135"])
    assert res.returncode == 0, describe(res)
    pin = d / "pin"
    pin.write_text(PIN + "\n")
    pin.chmod(0o600)
    yield pin
    if old is None:
        del os.environ["SOFTHSM2_CONF"]
    else:
        os.environ["SOFTHSM2_CONF"] = old


@pytest.fixture(scope="module")
def hsm_ca(binaries, token, tmp_path_factory):
    state = tmp_path_factory.mktemp("hsm") / "state"
    res = meshca_init(state, extra=("--intermediate-key", URI, "--pin-file", str(token)))
    assert res.returncode == 0, describe(res)
    return CA(state, sysutil.TRUST_DOMAIN, res)


@pytest.fixture(scope="module")
def hsm_d(hsm_ca, tmp_path_factory):
    d = Daemon(hsm_ca, tmp_path_factory.mktemp("hsm-d")).start()
    yield d
    d.stop(check=True)


def test_init_puts_the_key_in_the_token_only(hsm_ca, token):
    conf = hsm_ca.conf.read_text()
    assert f"intermediate_key = {URI}" in conf
    assert f"intermediate_key_passphrase_file = {token}" in conf
    assert not (hsm_ca.dir / "intermediate.key").exists()
    for p in hsm_ca.dir.iterdir():
        if p.name in ("root.key", "server.key", "admin.key"):
            continue
        assert b"PRIVATE KEY" not in p.read_bytes(), f"{p} holds a private key"
    res = run(["p11tool", "--list-all-privkeys", "--login", f"--set-pin={PIN}",
               f"pkcs11:token={TOKEN}"])
    assert res.returncode == 0, describe(res)
    assert "meshca-intermediate" in res.stdout
    flags = [l for l in res.stdout.splitlines() if "Flags:" in l]
    assert flags and "CKA_SENSITIVE" in flags[0] and "CKA_NEVER_EXTRACTABLE" in flags[0], res.stdout
    assert "CKA_EXTRACTABLE" not in flags[0], res.stdout


def test_init_refuses_an_existing_token_key(binaries, token, tmp_path, hsm_ca):
    res = meshca_init(tmp_path / "again", extra=("--intermediate-key", URI, "--pin-file", str(token)))
    assert res.returncode != 0 and "already holds this key" in res.stderr, describe(res)


def test_init_refuses_a_pin_in_the_uri(binaries, token, tmp_path):
    res = meshca_init(tmp_path / "s", extra=("--intermediate-key", URI + "?pin-value=1234",
                                             "--pin-file", str(token)))
    assert res.returncode != 0 and "RFC 7512" in res.stderr, describe(res)


def test_wrong_pin_stops_meshcad(hsm_ca, tmp_path):
    bad = tmp_path / "bad.pin"
    bad.write_text("000000\n")
    conf = tmp_path / "meshca.conf"
    conf.write_text(hsm_ca.conf.read_text().replace(
        f"intermediate_key_passphrase_file = ", f"intermediate_key_passphrase_file = {bad}\n#"))
    res = run([sysutil.MESHCAD, "--config", conf, "--listen", "127.0.0.1:0"])
    assert res.returncode == 1 and "PKCS#11" in res.stderr, describe(res)


def openssl(*args):
    res = run(["openssl", *map(str, args)], timeout=30)
    assert res.returncode == 0, describe(res)
    return res


def test_issue_renew_revoke_crl_ocsp_through_the_token(hsm_ca, hsm_d, tmp_path):
    api = Api(hsm_ca, hsm_d)
    api.create_service("hsm", dns_names=["hsm.svc"])
    key = make_key()
    r = api.enroll(api.mint_token("hsm"), make_csr(key))
    assert r.status_code == 201, r.text
    chain = tmp_path / "chain.pem"
    chain.write_bytes(hsm_ca.intermediate_crt.read_bytes() + hsm_ca.root_crt.read_bytes())
    fullchain, keyfile = sysutil.write_workload(tmp_path / "wl", key, r.json())
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(r.json()["certificate"])
    openssl("verify", "-CAfile", hsm_ca.root_crt, "-untrusted", hsm_ca.intermediate_crt, leaf)

    r2 = api.post("/v1/renew", client=(str(fullchain), str(keyfile)),
                  json={"csr": make_csr(make_key())})
    assert r2.status_code in (200, 201), r2.text
    serial = r.json()["serial"]
    rv = api.post("/v1/revoke", sysutil.ADMIN, json={"serial": serial, "reason": "keyCompromise"})
    assert rv.status_code == 200, rv.text

    crl = tmp_path / "crl.der"
    deadline = time.monotonic() + 15       # the CRL is rebuilt after the revocation
    while True:
        crl.write_bytes(api.get("/v1/crl").content)
        res = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", chain, "-noout", "-text")
        assert "verify OK" in res.stderr + res.stdout
        if serial.upper() in res.stdout.replace(":", "").upper() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert serial.upper() in res.stdout.replace(":", "").upper(), res.stdout

    res = run(["openssl", "ocsp", "-issuer", hsm_ca.intermediate_crt, "-cert", leaf,
               "-url", hsm_d.url + "/v1/ocsp", "-CAfile", hsm_ca.root_crt], timeout=30)
    assert res.returncode == 0, describe(res)
    assert "Response verify OK" in res.stderr + res.stdout, describe(res)
    assert "revoked" in res.stdout, describe(res)
