"""Process privileges (issue 7): what meshcad's network process gives up.

- no_new_privs is set (/proc/<pid>/status NoNewPrivs: 1), in the signer
  child too.
- Started as root with --user nobody it runs as nobody (Uid and Gid lines),
  keeps serving (database writes in its state directory), and its signer
  child keeps root (it read the root-only key) but is not dumpable.
- Landlock, where the kernel has it: the configuration file is readable
  only as the file (inode) meshcad started with, so a SIGHUP after the
  file was replaced by rename, outside the state directory, cannot read
  it ("reload failed"); without Landlock the same reload succeeds.
"""

import os
import pwd
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

import sysutil
from sysutil import Api, Daemon, make_ca, make_csr, make_key


def status_field(pid, name):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()
    return None


def signer_child(pid):
    kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
    return int(kids[0])


def landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(444, None, 0, 1)   # landlock_create_ruleset(NULL, 0, VERSION)
    return r if r > 0 else 0


def test_no_new_privs(binaries, tmp_path):
    ca = make_ca(tmp_path / "state")
    d = Daemon(ca, tmp_path).start()
    try:
        assert status_field(d.proc.pid, "NoNewPrivs") == ["1"]
        assert status_field(signer_child(d.proc.pid), "NoNewPrivs") == ["1"]
        want = "sandbox applied" if landlock_abi() else "landlock unavailable"
        assert want in d.stderr()
    finally:
        d.stop(check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_root_switches_to_user(binaries):
    nobody = pwd.getpwnam("nobody")
    # /tmp/pytest-of-root is 0700: the state must lie where nobody can go.
    top = Path(tempfile.mkdtemp(prefix="meshca-sandbox-"))
    try:
        ca = make_ca(top / "state")
        for p in [top, *top.rglob("*")]:
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        os.chown(ca.dir / "intermediate.key", 0, 0)    # readable by the signer (root) only
        os.chmod(ca.dir / "intermediate.key", 0o600)
        d = Daemon(ca, top, extra_args=["--user", "nobody"]).start()
        try:
            pid = d.proc.pid
            assert status_field(pid, "Uid") == [str(nobody.pw_uid)] * 4
            assert status_field(pid, "Gid") == [str(nobody.pw_gid)] * 4
            assert status_field(pid, "NoNewPrivs") == ["1"]
            child = signer_child(pid)
            assert status_field(child, "Uid")[0] == "0"
            api = Api(ca, d)
            api.create_service("sandboxed", dns_names=["sandboxed.svc"])
            r = api.enroll(api.mint_token("sandboxed"), make_csr(make_key()))
            assert r.status_code == 201, r.text
        finally:
            d.stop(check=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_unknown_user_is_refused(binaries, tmp_path):
    ca = make_ca(tmp_path / "state")
    res = sysutil.run([sysutil.MESHCAD, "--config", ca.conf, "--listen", "127.0.0.1:0",
                       "--user", "no-such-account-x"])
    assert res.returncode != 0 and "no account 'no-such-account-x'" in res.stderr


def wait_for(d, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in d.stderr():
            return True
        time.sleep(0.1)
    return False


def test_landlock_confines_file_reads(binaries, tmp_path):
    ca = make_ca(tmp_path / "state")
    etc = tmp_path / "etc"
    etc.mkdir()
    conf = etc / "meshcad.conf"
    shutil.copy(ca.conf, conf)
    run = tmp_path / "run"           # the port file's directory is writable: not etc
    run.mkdir()
    d = Daemon(ca, run, config=conf).start()
    try:
        new = etc / "meshcad.conf.new"
        new.write_text(conf.read_text().replace("log_format = logfmt", "log_format = json"))
        os.rename(new, conf)          # a new inode, outside every allowed directory
        os.kill(d.proc.pid, signal.SIGHUP)
        if landlock_abi():
            assert wait_for(d, "reload failed"), d.stderr()[-2000:]
        else:
            assert wait_for(d, "meshcad reloaded"), d.stderr()[-2000:]
            pytest.skip("the kernel has no Landlock: reload of a replaced file works")
    finally:
        d.stop(check=True)
