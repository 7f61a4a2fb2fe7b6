"""The `meshca` CLI and `meshcad` as an operator meets them: help, exit statuses
(0 success, 1 failure, 2 usage), init's files and its refusal to run twice,
enroll's fingerprint check, JSON output, meshcad's config errors, logging
and SIGTERM."""

import json
import os
import re
import stat
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization

import sysutil
from sysutil import (ADMIN, MESHCA, MESHCAD, PASSPHRASE, Daemon, base_env, describe, load_certs,
                     make_csr, meshca_init, run, snapshot_dir)

INIT_FILES = ["root.key", "root.crt", "intermediate.key", "intermediate.crt", "server.key",
              "server.crt", "admin.key", "admin.crt", "meshca.db", "meshca.conf"]
KEY_FILES = ["root.key", "intermediate.key", "server.key", "admin.key"]

COMMANDS = [[], ["init"], ["service"], ["service", "add"], ["service", "list"], ["service", "show"],
            ["token"], ["token", "create"], ["enroll"], ["certs"], ["certs", "list"], ["certs", "show"]]


# ---------------------------------------------------------------- usage

@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: "-".join(c) or "meshca")
def test_help(binaries, cmd):
    res = run([MESHCA, *cmd, "--help"], env=base_env())
    assert res.returncode == 0, describe(res)
    assert "usage" in res.stdout.lower(), "--help must print usage on stdout\n" + describe(res)


def test_meshcad_help(binaries):
    res = run([MESHCAD, "--help"], env=base_env(), timeout=10)
    assert res.returncode == 0, describe(res)
    assert "usage" in res.stdout.lower() and "--config" in res.stdout, describe(res)


@pytest.mark.parametrize("argv", [["frobnicate"], ["service", "frobnicate"], ["certs", "frob"],
                                  ["service", "list", "--no-such-option"], ["service", "show"],
                                  ["token", "create"], ["init", "--no-such-option"], []],
                         ids=["unknown-command", "unknown-subcommand", "unknown-certs-sub",
                              "unknown-option", "missing-name", "missing-service",
                              "init-unknown-option", "no-command"])
def test_usage_errors_exit_2(binaries, tmp_path, argv):
    env = base_env()
    env["MESHCA_CONFIG"] = str(tmp_path / "nonexistent.conf")
    res = run([MESHCA, *argv], env=env)
    assert res.returncode == 2, describe(res)
    assert res.stderr.strip(), "a usage error says something on stderr\n" + describe(res)


# ---------------------------------------------------------------- init

def test_init_writes_the_state(ca):
    for f in INIT_FILES:
        assert (ca.dir / f).is_file(), f"{f} missing from {ca.dir}"
    assert ca.printed_fingerprint == ca.fingerprint, ca.init_result.stdout
    assert re.search(r"^.*\b" + ca.fingerprint + r"\b.*$", ca.init_result.stdout, re.M)
    for f in ("server.crt", "admin.crt"):
        chain = load_certs((ca.dir / f).read_text())
        assert len(chain) == 2 and chain[1] == ca.intermediate, f"{f} must be leaf + intermediate"


@pytest.mark.parametrize("name", KEY_FILES)
def test_key_files_are_0600(ca, name):
    mode = stat.S_IMODE((ca.dir / name).stat().st_mode)
    assert mode == 0o600, f"{name} has mode {mode:o}"


def test_root_key_encrypted_with_passphrase(ca):
    pem = (ca.dir / "root.key").read_bytes()
    assert b"ENCRYPTED" in pem, "root.key is not encrypted at rest"
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=b"wrong passphrase")
    key = serialization.load_pem_private_key(pem, password=PASSPHRASE.encode())
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        ca.root.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def test_init_with_passphrase_file(binaries, tmp_path):
    pf = tmp_path / "pass"
    pf.write_text("from a file, not the env\n")
    os.chmod(pf, 0o600)
    state = tmp_path / "state"
    res = meshca_init(state, extra=["--passphrase-file", pf], env=base_env())
    assert res.returncode == 0, describe(res)
    pem = (state / "root.key").read_bytes()
    serialization.load_pem_private_key(pem, password=b"from a file, not the env")


def test_second_init_refused_and_changes_nothing(binaries, tmp_path):
    state = tmp_path / "state"
    first = meshca_init(state)
    assert first.returncode == 0, describe(first)
    before = snapshot_dir(state)
    for td in (sysutil.TRUST_DOMAIN, "other.internal"):
        again = meshca_init(state, trust_domain=td)
        assert again.returncode == 1, "second init must be refused with exit 1\n" + describe(again)
        assert again.stderr.strip(), describe(again)
        assert snapshot_dir(state) == before, "a refused init changed the state directory"


def test_init_bad_trust_domain(binaries, tmp_path):
    state = tmp_path / "state"
    res = meshca_init(state, trust_domain="Not A Domain")
    assert res.returncode in (1, 2), describe(res)
    assert not (state / "root.key").exists()


# ---------------------------------------------------------------- remote commands

def test_service_add_show_list_json(ca, cli, api):
    cli("service", "add", "billing", "--dns", "billing.svc", "--dns", "*.billing.svc",
        "--ip", "10.20.0.0/16", "--default-ttl", "1h", "--max-ttl", "2h",
        "--key-types", "ecdsa-p256,ed25519")
    show = cli.json("service", "show", "billing", "--json")
    assert show["name"] == "billing"
    assert show["spiffe_id"] == ca.spiffe("billing")
    assert sorted(show["dns_names"]) == ["*.billing.svc", "billing.svc"]
    assert show["ip_addresses"] == ["10.20.0.0/16"]
    assert show["default_ttl"] == 3600 and show["max_ttl"] == 7200
    assert sorted(show["key_types"]) == ["ecdsa-p256", "ed25519"]
    assert show == api.get("/v1/services/billing", ADMIN).json(), "CLI and API disagree"
    listed = cli.json("service", "list", "--json")
    services = listed["services"] if isinstance(listed, dict) else listed
    assert "billing" in [s["name"] for s in services]
    text = cli("service", "show", "billing").stdout
    assert "billing" in text and ca.spiffe("billing") in text


def test_service_add_custom_spiffe_id(ca, cli):
    sid = f"spiffe://{ca.trust_domain}/ns/prod/sa/ledger"
    cli("service", "add", "ledger", "--spiffe-id", sid)
    assert cli.json("service", "show", "ledger", "--json")["spiffe_id"] == sid


def test_service_add_twice_fails(cli):
    cli("service", "add", "dupe")
    res = cli("service", "add", "dupe", expect=1)
    assert res.stderr.strip(), describe(res)


def test_service_show_unknown_fails(cli):
    res = cli("service", "show", "no-such-service", expect=1)
    assert res.stderr.strip() and not res.stdout.strip(), describe(res)


def test_token_create_prints_only_the_token(cli):
    cli("service", "add", "tok")
    for args in ([], ["--ttl", "10m"], ["--ttl", "600"]):
        res = cli("token", "create", "tok", *args)
        assert sysutil.TOKEN_RE.match(res.stdout.rstrip("\n")) and res.stdout.count("\n") <= 1, \
            describe(res)


def _enroll(url, fp, token, out, tmp_path, env=None):
    tf = tmp_path / ("token-" + os.path.basename(str(out)))
    tf.write_text(token + "\n")
    return run([MESHCA, "enroll", "--url", url, "--fingerprint", fp, "--token-file", tf,
                "--out", out], env=env or base_env())


def test_enroll_with_wrong_fingerprint(ca, meshcad, cli, tmp_path):
    cli("service", "add", "fp", "--dns", "fp.svc")
    tok = cli("token", "create", "fp").stdout.strip()
    wrong = format(int(ca.fingerprint, 16) ^ 1, "064x")
    out = tmp_path / "out"
    res = _enroll(meshcad.url, wrong, tok, out, tmp_path)
    assert res.returncode == 1, describe(res)
    assert res.stderr.strip(), describe(res)
    assert not out.exists() or not any(out.iterdir()), f"files written: {list(out.iterdir())}"
    # The token was never sent to a server the client could not authenticate,
    # so it still works with the right fingerprint.
    res = _enroll(meshcad.url, ca.fingerprint, tok, out, tmp_path)
    assert res.returncode == 0, describe(res)
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    leaf = load_certs((out / "cert.pem").read_text())[0]
    assert ca.spiffe("fp") in str(leaf.extensions)


def test_enroll_key_type_and_names(ca, meshcad, cli, tmp_path):
    cli("service", "add", "kt", "--dns", "kt.svc", "--dns", "*.kt.svc", "--ip", "10.30.0.0/24")
    tok = cli("token", "create", "kt").stdout.strip()
    tf = tmp_path / "tok"
    tf.write_text(tok)
    out = tmp_path / "kt"
    res = run([MESHCA, "enroll", "--url", meshcad.url, "--fingerprint", ca.fingerprint,
               "--token-file", tf, "--out", out, "--key-type", "ed25519", "--dns", "a.kt.svc",
               "--ip", "10.30.0.9", "--ttl", "30m"], env=base_env())
    assert res.returncode == 0, describe(res)
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ed25519
    leaf = load_certs((out / "cert.pem").read_text())[0]
    assert isinstance(leaf.public_key(), ed25519.Ed25519PublicKey)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.kt.svc"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.30.0.9"]
    assert (sysutil.not_after(leaf) - sysutil.not_before(leaf)).total_seconds() == 60 + 1800


def test_enroll_refused_by_server_fails(ca, meshcad, cli, tmp_path):
    cli("service", "add", "nosan", "--dns", "nosan.svc")
    tok = cli("token", "create", "nosan").stdout.strip()
    tf = tmp_path / "tok"
    tf.write_text(tok)
    out = tmp_path / "o"
    res = run([MESHCA, "enroll", "--url", meshcad.url, "--fingerprint", ca.fingerprint,
               "--token-file", tf, "--out", out, "--dns", "evil.example"], env=base_env())
    assert res.returncode == 1, describe(res)
    assert "san_not_allowed" in res.stderr or "not allowed" in res.stderr, describe(res)
    assert not (out / "cert.pem").exists()


def test_certs_list_and_show_json(ca, cli, api):
    cli("service", "add", "audit-me", "--dns", "audit-me.svc")
    tok = api.mint_token("audit-me")
    r = api.enroll(tok, make_csr())
    assert r.status_code == 201, r.text
    serial = r.json()["serial"]
    listed = cli.json("certs", "list", "--service", "audit-me", "--json")
    certs = listed["certificates"] if isinstance(listed, dict) else listed
    assert [c["serial"] for c in certs] == [serial]
    active = cli.json("certs", "list", "--status", "active", "--json")
    active = active["certificates"] if isinstance(active, dict) else active
    assert serial in [c["serial"] for c in active]
    shown = cli.json("certs", "show", serial, "--json")
    assert shown["serial"] == serial and shown["spiffe_id"] == ca.spiffe("audit-me")
    assert shown["service"] == "audit-me" and shown["status"] == "active"
    text = cli("certs", "list", "--service", "audit-me").stdout
    assert serial in text
    res = cli("certs", "show", "00ff00ff", expect=1)
    assert res.stderr.strip()


def test_url_and_config_overrides(ca, meshcad, cli):
    # MESHCA_CONFIG names the init-written config, whose url is not meshcad's port 0 choice:
    # --url must override it.
    env = base_env()
    env["MESHCA_CONFIG"] = str(ca.conf)
    res = run([MESHCA, "service", "list", "--url", meshcad.url, "--json"], env=env)
    assert res.returncode == 0, describe(res)
    json.loads(res.stdout)
    # --config instead of the environment.
    res = run([MESHCA, "service", "list", "--config", cli.config, "--json"], env=base_env())
    assert res.returncode == 0, describe(res)
    json.loads(res.stdout)


def test_unreachable_server_fails(ca, cli):
    port = sysutil.free_port()   # nothing listens there
    res = cli("service", "list", "--url", f"https://127.0.0.1:{port}", expect=1)
    assert res.stderr.strip(), describe(res)


# ---------------------------------------------------------------- meshcad

def _meshcad_must_fail(argv, tmp_path):
    with open(tmp_path / "bad.stderr", "wb") as err:
        p = sysutil.track(subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=err, env=base_env()))
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sysutil.stop_process(p)
        raise AssertionError("meshcad kept running with a bad configuration")
    return rc, (tmp_path / "bad.stderr").read_text(errors="replace")


def test_meshcad_missing_config(binaries, tmp_path):
    path = tmp_path / "nope.conf"
    rc, err = _meshcad_must_fail([MESHCAD, "--config", path, "--listen", "127.0.0.1:0",
                                  "--port-file", tmp_path / "port"], tmp_path)
    assert rc != 0 and str(path) in err, f"exit {rc}, stderr: {err}"
    assert not (tmp_path / "port").exists()


def test_meshcad_unknown_config_key(ca, tmp_path):
    conf = tmp_path / "meshca.conf"
    conf.write_text(ca.conf.read_text() + "listen_adress = 127.0.0.1:1\n")
    _absolutize(conf, ca.dir)
    rc, err = _meshcad_must_fail([MESHCAD, "--config", conf, "--listen", "127.0.0.1:0",
                                  "--port-file", tmp_path / "port"], tmp_path)
    assert rc != 0 and "listen_adress" in err, f"exit {rc}, stderr: {err}"


def test_meshcad_workers_out_of_range(ca, tmp_path):
    conf = tmp_path / "meshca.conf"
    conf.write_text(ca.conf.read_text() + "workers = 257\n")
    _absolutize(conf, ca.dir)
    rc, err = _meshcad_must_fail([MESHCAD, "--config", conf, "--listen", "127.0.0.1:0",
                                  "--port-file", tmp_path / "port"], tmp_path)
    assert rc != 0 and "workers = '257'" in err and "0 to 256" in err, f"exit {rc}, stderr: {err}"


def _threads(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads line for {pid}")


def test_meshcad_workers_sets_the_pool(ca, tmp_path):
    """`workers = N` starts exactly N issuing threads: the thread count moves by
    the difference, and a pool of one still issues."""
    counts = {}
    for n in (1, 9):
        conf = tmp_path / f"w{n}.conf"
        conf.write_text(ca.conf.read_text() + f"workers = {n}\n")
        _absolutize(conf, ca.dir)
        d = sysutil.Daemon(ca, tmp_path, config=conf).start()
        try:
            counts[n] = _threads(d.proc.pid)
            if n == 1:
                cli = sysutil.Cli(ca, d)
                cli("service", "add", "onewkr")
                token = cli("token", "create", "onewkr").stdout.strip()
                res = _enroll(d.url, ca.fingerprint, token, tmp_path / "onewkr", tmp_path)
                assert res.returncode == 0, describe(res)
                assert (tmp_path / "onewkr" / "cert.pem").exists()
        finally:
            d.stop(check=True)
    assert counts[9] - counts[1] == 8, counts


def test_meshcad_missing_intermediate_key(ca, tmp_path):
    conf = tmp_path / "meshca.conf"
    lines = [l for l in ca.conf.read_text().splitlines() if not l.strip().startswith("intermediate_key")]
    conf.write_text("\n".join(lines) + f"\nintermediate_key = {tmp_path / 'missing.key'}\n")
    _absolutize(conf, ca.dir)
    rc, err = _meshcad_must_fail([MESHCAD, "--config", conf, "--listen", "127.0.0.1:0",
                                  "--port-file", tmp_path / "port"], tmp_path)
    assert rc != 0 and "missing.key" in err, f"exit {rc}, stderr: {err}"


def _absolutize(conf, state_dir):
    """Relative paths in a copied config still name files of the state dir."""
    out = []
    for line in conf.read_text().splitlines():
        m = re.match(r"\s*(\w+)\s*=\s*(.*?)\s*$", line)
        if m and m.group(1) in ("database", "root_cert", "intermediate_cert", "intermediate_key",
                                "server_cert", "server_key", "admin_cert", "admin_key") \
                and not m.group(2).startswith("/"):
            line = f"{m.group(1)} = {state_dir / m.group(2)}"
        out.append(line)
    conf.write_text("\n".join(out) + "\n")


def _count(daemon, pattern):
    return sum(bool(re.search(pattern, l)) for l in daemon.stderr().splitlines())


def _wait_lines(daemon, pattern, want, settle=0.5, timeout=5):
    """Lines of meshcad's log matching pattern, once want are there (or timeout),
    after a short settle so that extra lines would show too."""
    deadline = time.monotonic() + timeout
    while _count(daemon, pattern) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)
    return _count(daemon, pattern)


ROOTS_JSON = r"/v1/roots(?![.\w])"


def test_meshcad_logs_one_line_per_request(meshcad, api):
    before = _count(meshcad, ROOTS_JSON)
    for _ in range(3):
        assert api.get("/v1/roots").status_code == 200
    n = _wait_lines(meshcad, ROOTS_JSON, before + 3)
    assert n == before + 3, f"want {before + 3} log lines for /v1/roots, got {n}:\n" + meshcad.stderr()[-3000:]


def test_meshcad_json_logs_and_sigterm(ca, tmp_path):
    d = Daemon(ca, tmp_path, extra_args=["--log-format", "json"]).start()
    try:
        for _ in range(3):
            with sysutil.new_session(ca.root_crt) as s:
                r = s.get(d.url + "/v1/roots.pem", timeout=10)
            assert r.status_code == 200
        n = _wait_lines(d, r"/v1/roots\.pem", 3)
    finally:
        rc = d.stop(check=False)
    assert rc == 0, f"meshcad exited {rc} on SIGTERM\n{d.stderr()[-2000:]}"
    assert n == 3, f"want 3 request lines for /v1/roots.pem, got {n}\n{d.stderr()[-2000:]}"
    lines = [l for l in d.stderr().splitlines() if l.strip()]
    assert lines
    for l in lines:
        try:
            assert isinstance(json.loads(l), dict)
        except ValueError:
            raise AssertionError(f"--log-format json wrote a non-JSON line: {l!r}")
    # After SIGTERM nothing listens on its port any more.
    with pytest.raises(OSError):
        sysutil.socket.create_connection(("127.0.0.1", d.port), timeout=2).close()


def test_meshcad_sigterm_with_idle_keepalive_connection(ca, tmp_path):
    """SIGTERM stops meshcad gracefully: requests in flight finish, but an idle
    keep-alive connection (an agent's connection pool) has none, so it must
    not hold the exit back for the whole grace period."""
    d = Daemon(ca, tmp_path).start()
    s = sysutil.new_session(ca.root_crt)
    try:
        assert s.get(d.url + "/v1/health", timeout=10).status_code == 200   # stays open, idle
        t0 = time.monotonic()
        os.kill(d.proc.pid, sysutil.signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
    finally:
        s.close()
        d.stop(check=False)
    assert rc is not None, "meshcad still running 5 s after SIGTERM with one idle client connection"
    assert rc == 0, f"exit {rc}"
    assert took < 5, took
