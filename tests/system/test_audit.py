"""The tamper-evident audit log (issue 5), through the real meshcad and meshca.

Every action leaves exactly the expected entries (GET /v1/audit), with no
secrets in the database or the logs; `meshca audit verify` accepts an intact
chain through the API and from the SQLite file, and, once meshcad is stopped,
names the row an attacker with the file edited, deleted or moved (triggers
dropped with sqlite3 as such an attacker would), and detects the newest rows
cut off after a checkpoint given as the line meshcad logged.

One CA for the module, checkpointing every second.  The tests run in file
order: the live ones first, then those on copies of the stopped daemon's
database.
"""

import json
import re
import secrets
import shutil
import sqlite3
import time

import pytest

import sysutil
from sysutil import ADMIN, Api, Cli, Daemon, make_ca

ADMIN_ID = f"spiffe://{sysutil.TRUST_DOMAIN}/meshca/admin/admin"
CHECKPOINT_RE = re.compile(r"audit checkpoint seq=(\d+) head=([0-9a-f]{64}) at=(\S+) signature=([A-Za-z0-9+/=]+)")


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def aca(binaries, tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("audit") / "state")
    with open(ca.conf, "a") as f:
        f.write("audit_checkpoint_interval = 1s\n")
    return ca


@pytest.fixture(scope="module")
def ad(aca, tmp_path_factory):
    d = Daemon(aca, tmp_path_factory.mktemp("auditd")).start()
    yield d
    d.stop(check=True)


@pytest.fixture(scope="module")
def acli(aca, ad):
    return Cli(aca, ad)


@pytest.fixture(scope="module")
def aapi(aca, ad):
    return Api(aca, ad)


@pytest.fixture(scope="module")
def secrets_seen():
    """Tokens and private keys the tests handled: none may reach the DB or logs."""
    return {"tokens": [], "keys": []}


def entries(api, after=0):
    r = api.get("/v1/audit", ADMIN, params={"after": after, "limit": 10000})
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def head(api):
    e = entries(api)
    return e[-1]["seq"] if e else 0


def brief(es):
    return [(e["action"], e["outcome"]) for e in es]


class Recorder:
    """Entries appended since the last call."""

    def __init__(self, api):
        self.api = api
        self.seq = head(api)

    def new(self):
        es = entries(self.api, self.seq)
        if es:
            self.seq = es[-1]["seq"]
        return es


def key_and_csr(seen, dns=()):
    key = sysutil.make_key("ecdsa-p256")
    seen["keys"].append(key)
    return key, sysutil.make_csr(key, dns=dns)


# ---------------------------------------------------------------- live

def test_every_action_leaves_its_entries(aapi, aca, secrets_seen, tmp_path):
    rec = Recorder(aapi)
    svc = "pay-" + secrets.token_hex(3)
    spiffe = aca.spiffe(svc)

    aapi.create_service(svc, dns_names=[f"{svc}.mesh.internal"])
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("service.add", "success", ADMIN_ID, svc)
    assert e["detail"]["spiffe_id"] == spiffe

    tok = aapi.mint_token(svc)
    secrets_seen["tokens"].append(tok)
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("token.mint", "success", ADMIN_ID, svc)
    token_id = e["detail"]["token_id"]
    assert isinstance(token_id, int) and "expires_at" in e["detail"]

    key, csr = key_and_csr(secrets_seen)
    r = aapi.enroll(tok, csr)
    assert r.status_code == 201, r.text
    serial = r.json()["serial"]
    consume, issue = rec.new()
    assert (consume["action"], consume["outcome"], consume["actor"], consume["subject"]) == \
        ("token.consume", "success", f"token:{svc}", svc)
    assert consume["detail"] == {"token_id": token_id}
    assert (issue["action"], issue["outcome"], issue["actor"], issue["subject"]) == \
        ("cert.issue", "success", f"token:{svc}", serial)
    assert issue["detail"]["spiffe_id"] == spiffe
    assert issue["detail"]["dns_names"] == [f"{svc}.mesh.internal"]
    wl = sysutil.write_workload(tmp_path / "wl", key, r.json())

    # Refused: the same token again.
    r = aapi.enroll(tok, key_and_csr(secrets_seen)[1])
    assert r.status_code == 401
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("token.consume", "failure", f"token:{svc}", svc)
    assert e["detail"]["error"] == "token_used"

    # Refused: a name the service may not hold (the token stays unused).
    tok2 = aapi.mint_token(svc)
    secrets_seen["tokens"].append(tok2)
    rec.new()
    r = aapi.enroll(tok2, key_and_csr(secrets_seen)[1], dns_names=["evil.example.com"])
    assert r.status_code == 403, r.text
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("cert.issue", "failure", f"token:{svc}", svc)
    assert e["detail"]["error"] == "san_not_allowed"
    assert "evil.example.com" in e["detail"]["reason"]

    # Refused: an expired token, and one nobody minted.
    tok3 = aapi.mint_token(svc, ttl="1s")
    secrets_seen["tokens"].append(tok3)
    rec.new()
    time.sleep(2.2)
    r = aapi.enroll(tok3, key_and_csr(secrets_seen)[1])
    assert r.status_code == 401
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"]) == ("token.consume", "failure", f"token:{svc}")
    assert e["detail"]["error"] == "token_expired"
    fake = "mca_" + "A" * 43
    secrets_seen["tokens"].append(fake)
    r = aapi.enroll(fake, key_and_csr(secrets_seen)[1])
    assert r.status_code == 401
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("token.consume", "failure", "token:unknown", None)
    assert e["detail"]["error"] == "token_invalid"

    # Renewal over mTLS.
    r = aapi.post("/v1/renew", wl, json={"csr": key_and_csr(secrets_seen)[1]})
    assert r.status_code == 201, r.text
    renewed = r.json()["serial"]
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("cert.renew", "success", spiffe, renewed)
    assert e["detail"]["renewed_from"] == serial

    # A workload revoking what is not its own: refused and recorded.
    r = aapi.post("/v1/revoke", wl, json={"serial": renewed})
    assert r.status_code in (401, 403)
    if r.status_code == 403:
        (e,) = rec.new()
        assert (e["action"], e["outcome"], e["subject"]) == ("cert.revoke", "failure", renewed)
    else:
        rec.new()   # the old certificate may not authenticate any more

    # Revocation by the admin; a repeat changes nothing and records nothing.
    r = aapi.post("/v1/revoke", ADMIN, json={"serial": serial, "reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("cert.revoke", "success", ADMIN_ID, serial)
    assert e["detail"]["reason"] == "keyCompromise"
    r = aapi.post("/v1/revoke", ADMIN, json={"serial": serial})
    assert r.status_code == 200 and r.json()["already_revoked"] is True
    assert rec.new() == []

    # Disable with revocation: one entry with the count; enable.
    r = aapi.post(f"/v1/services/{svc}/disable", ADMIN, json={"revoke": True})
    assert r.status_code == 200, r.text
    (e,) = rec.new()
    assert (e["action"], e["outcome"], e["actor"], e["subject"]) == \
        ("service.disable", "success", ADMIN_ID, svc)
    assert e["detail"]["revoked"] == 1 and e["detail"]["reason"] == 5
    r = aapi.post(f"/v1/services/{svc}/enable", ADMIN)
    assert r.status_code == 200, r.text
    assert brief(rec.new()) == [("service.enable", "success")]


def test_entries_are_chained(aapi):
    es = entries(aapi)
    assert [e["seq"] for e in es] == list(range(1, len(es) + 1))
    assert es[0]["prev_hash"] == "0" * 64
    for a, b in zip(es, es[1:]):
        assert b["prev_hash"] == a["hash"]
    for e in es:
        if e["detail_text"] is not None:
            assert json.loads(e["detail_text"]) == e["detail"]


def test_list_filters_and_roles(aapi, acli):
    es = entries(aapi)
    r = aapi.get("/v1/audit", ADMIN, params={"after": 2, "limit": 3})
    assert [e["seq"] for e in r.json()["entries"]] == [3, 4, 5]
    assert r.json()["more"] is True
    r = aapi.get("/v1/audit", ADMIN, params={"since": es[-1]["at"]})
    assert r.json()["entries"] and all(e["at"] >= es[-1]["at"] for e in r.json()["entries"])
    sysutil.assert_error(aapi.get("/v1/audit", ADMIN, params={"limit": 0}), 400, "invalid_argument")
    sysutil.assert_error(aapi.get("/v1/audit", ADMIN, params={"since": "yesterday"}), 400,
                         "invalid_argument")
    assert aapi.get("/v1/audit").status_code == 401          # no client certificate
    out = acli("audit", "list", "--after", "1", "--limit", "2").stdout
    assert "SEQ" in out and "ACTION" in out
    j = acli.json("audit", "list", "--json", "--limit", "1")
    assert len(j["entries"]) == 1
    acli("audit", "list", "--since", "not-a-time", expect=2)
    acli("audit", "list", "--limit", "x", expect=2)


def test_checkpoint_logged_and_served(aapi, acli, ad):
    seq = head(aapi)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = aapi.get("/v1/audit/checkpoints/latest", ADMIN)
        if r.status_code == 200 and r.json()["seq"] >= seq:
            break
        time.sleep(0.3)
    assert r.status_code == 200, r.text
    cp = r.json()
    assert cp["seq"] >= seq and len(cp["head"]) == 64 and "BEGIN CERTIFICATE" in cp["signer"]
    lines = CHECKPOINT_RE.findall(ad.stderr())
    assert any(int(s) == cp["seq"] and h == cp["head"] for s, h, _, _ in lines), ad.stderr()[-2000:]
    text = acli("audit", "checkpoint").stdout
    assert CHECKPOINT_RE.search(text)
    assert acli.json("audit", "checkpoint", "--json")["seq"] >= cp["seq"]


def test_verify_intact_via_api_and_db(acli, aca):
    r = acli("audit", "verify")
    assert "audit chain intact" in r.stdout and "checkpoint verified" in r.stdout, r.stdout
    r = acli("audit", "verify", "--db", str(aca.dir / "meshca.db"))
    assert "audit chain intact" in r.stdout and "checkpoint verified" in r.stdout, r.stdout
    acli("audit", "verify", "--bogus", expect=2)


# ---------------------------------------------------------------- meshcad stopped

@pytest.fixture(scope="module")
def stopped(ad, aca, aapi, tmp_path_factory):
    """Stops meshcad (exit 0: it writes a last checkpoint) and keeps its log."""
    final = head(aapi)
    ad.stop(check=True)
    log = ad.stderr()
    keep = tmp_path_factory.mktemp("stopped")
    (keep / "meshcad.log").write_text(log)
    return {"db": aca.dir / "meshca.db", "log": keep / "meshcad.log", "head": final}


def test_no_secrets_in_db_or_logs(stopped, secrets_seen, aca):
    blobs = [p.read_bytes() for p in aca.dir.glob("meshca.db*")]
    blobs.append(stopped["log"].read_bytes())
    assert secrets_seen["tokens"] and secrets_seen["keys"]
    for tok in secrets_seen["tokens"]:
        for b in blobs:
            assert tok.encode() not in b
    for key in secrets_seen["keys"]:
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        pem = sysutil.key_pem(key).decode()
        body = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
        for b in blobs:
            assert scalar not in b and body[-40:].encode() not in b
            assert b"PRIVATE KEY" not in b


def test_last_checkpoint_covers_head(stopped):
    lines = CHECKPOINT_RE.findall(stopped["log"].read_text())
    assert lines
    assert int(lines[-1][0]) == stopped["head"]


def tampered(stopped, tmp_path, sql):
    """A copy of the database, edited as an attacker with the file would."""
    copy = tmp_path / "meshca.db"
    shutil.copy(stopped["db"], copy)
    con = sqlite3.connect(copy)
    con.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;" + sql)
    con.commit()
    con.close()
    return copy


def verify_db(acli, db, *extra, expect):
    return acli("audit", "verify", "--db", str(db), *extra, expect=expect)


def test_intact_copy_verifies(stopped, acli, tmp_path):
    r = verify_db(acli, tampered(stopped, tmp_path, ""), expect=0)
    assert "audit chain intact" in r.stdout


@pytest.mark.parametrize("sql, seq, why", [
    ("UPDATE audit SET actor = 'spiffe://mesh.internal/meshca/admin/mallory' WHERE seq = 5",
     5, "hash mismatch"),
    ("UPDATE audit SET detail = '{}' WHERE seq = 6", 6, "hash mismatch"),
    ("UPDATE audit SET outcome = 'success' WHERE outcome = 'failure'", None, "hash mismatch"),
    ("DELETE FROM audit WHERE seq = 7", 8, "gap in seq"),
    ("UPDATE audit SET seq = 100000 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5;"
     " UPDATE audit SET seq = 5 WHERE seq = 100000", 4, "hash mismatch"),
])
def test_tampering_names_the_row(stopped, acli, tmp_path, sql, seq, why):
    db = tampered(stopped, tmp_path, sql)
    if seq is None:
        con = sqlite3.connect(stopped["db"])
        seq = con.execute("SELECT min(seq) FROM audit WHERE outcome = 'failure'").fetchone()[0]
        con.close()
    r = verify_db(acli, db, expect=1)
    assert f"BROKEN at seq {seq}: {why}" in r.stdout, r.stdout


def test_truncation_detected_against_logged_checkpoint(stopped, acli, tmp_path):
    n = stopped["head"]
    # The attacker cuts the newest three rows and every stored checkpoint.
    db = tampered(stopped, tmp_path, f"DELETE FROM audit WHERE seq > {n - 3};"
                  " DELETE FROM audit_checkpoints;")
    r = verify_db(acli, db, expect=0)       # the chain alone cannot tell
    assert "no checkpoint" in r.stdout
    r = verify_db(acli, db, "--checkpoint", str(stopped["log"]), expect=1)
    assert f"covers seq {n} but the chain ends at seq {n - 3}" in r.stdout, r.stdout
    # The untouched database matches the same checkpoint.
    verify_db(acli, stopped["db"], "--checkpoint", str(stopped["log"]), expect=0)


def test_rewritten_checkpoint_is_refused(stopped, acli, tmp_path):
    line = CHECKPOINT_RE.findall(stopped["log"].read_text())[-1]
    seq, hexh, at, sig = line
    forged = tmp_path / "forged.log"
    forged.write_text(f'msg="audit checkpoint seq={int(seq) - 1} head={hexh} at={at} signature={sig}"\n')
    r = verify_db(acli, stopped["db"], "--checkpoint", str(forged), expect=1)
    assert "signature does not verify" in r.stderr, r.stderr
    junk = tmp_path / "junk.log"
    junk.write_text("nothing here\n")
    verify_db(acli, stopped["db"], "--checkpoint", str(junk), expect=1)


def test_json_checkpoint_file(stopped, acli, tmp_path):
    out = acli("audit", "checkpoint", "--db", str(stopped["db"]), "--json").stdout
    f = tmp_path / "cp.json"
    f.write_text(out)
    assert json.loads(out)["seq"] == stopped["head"]
    verify_db(acli, stopped["db"], "--checkpoint", str(f), expect=0)
    db = tampered(stopped, tmp_path, f"DELETE FROM audit WHERE seq = {stopped['head']};")
    r = verify_db(acli, db, "--checkpoint", str(f), expect=1)
    assert "were removed" in r.stdout
