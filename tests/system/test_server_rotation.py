"""meshcad rotates its own HTTPS server certificate (issue 3): before expiry,
without a restart, while clients keep making requests, none of which fails.
At start-up a missing or mismatched server certificate is replaced."""

import http.client
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import sysutil
from sysutil import Api, Daemon, make_ca

SERVER_TTL = 6          # seconds; rotation at 2/3 of it
RUN_SECONDS = 14        # long enough for at least three rotations


def _with_config(ca, line):
    with open(ca.conf, "a") as f:
        f.write(line + "\n")


def _server_cert_now(ca, port):
    """The certificate meshcad presents to a new connection (verified)."""
    ctx = ssl.create_default_context(cafile=str(ca.root_crt))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def _public_bytes(key_or_cert):
    pub = key_or_cert.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rotating(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("rot") / "state")
    _with_config(ca, f"server_ttl = {SERVER_TTL}s")
    # The certificate `meshca init` made is good for 90 days; a missing one
    # makes meshcad issue its own at start-up, with server_ttl.
    (ca.dir / "server.crt").unlink()
    d = Daemon(ca, tmp_path_factory.mktemp("rotd")).start()
    yield ca, d
    d.stop(check=True)


def test_startup_replaces_a_missing_server_certificate(rotating):
    ca, d = rotating
    cert = _server_cert_now(ca, d.port)
    lifetime = (cert.not_valid_after - cert.not_valid_before).total_seconds()
    assert lifetime == SERVER_TTL + 60, f"server_ttl not applied: lifetime {lifetime}s"
    assert "server certificate unusable" in d.stderr()
    uri = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.UniformResourceIdentifier)
    assert uri == [f"spiffe://{ca.trust_domain}/meshca/server"]


def test_rotation_under_load_drops_no_request(rotating):
    ca, d = rotating
    ctx = ssl.create_default_context(cafile=str(ca.root_crt))
    failures, seen, done = [], {}, threading.Event()

    def keepalive_client():
        # One connection kept open across rotations keeps working.
        conn = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=5)
        try:
            while not done.is_set():
                conn.request("GET", "/v1/health")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    failures.append(f"keep-alive: HTTP {r.status}")
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            failures.append(f"keep-alive: {e!r}")
        finally:
            conn.close()

    t = threading.Thread(target=keepalive_client)
    t.start()
    end = time.monotonic() + RUN_SECONDS
    requests_made = 0
    try:
        while time.monotonic() < end:
            # A new connection each time: each handshake gets the current certificate.
            conn = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=5)
            try:
                conn.request("GET", "/v1/health")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    failures.append(f"new connection: HTTP {r.status}")
                der = conn.sock.getpeercert(binary_form=True)
                cert = x509.load_der_x509_certificate(der)
                seen.setdefault(cert.serial_number, cert)
                requests_made += 1
            except Exception as e:  # noqa: BLE001
                failures.append(f"new connection: {e!r}")
            finally:
                conn.close()
            time.sleep(0.02)
    finally:
        done.set()
        t.join(timeout=10)
    assert not failures, f"{len(failures)} of {requests_made} requests failed: {failures[:5]}"
    assert len(seen) >= 3, f"only {len(seen)} server certificates seen in {RUN_SECONDS}s"
    # Each certificate took over from the previous one before it expired.
    certs = sorted(seen.values(), key=lambda c: c.not_valid_before)
    for old, new in zip(certs, certs[1:]):
        assert new.not_valid_before < old.not_valid_after


def test_rotated_certificates_are_recorded_and_linked(rotating):
    ca, d = rotating
    api = Api(ca, d)
    server = api.certificates(kind="server")
    by_serial = {c["serial"]: c for c in server}
    linked = [c for c in server if c["renewed_from"] in by_serial]
    assert len(server) >= 4, f"expected the start-up certificate and its renewals: {server}"
    assert len(linked) >= 3, "rotated server certificates must name the one they renew"
    live = _server_cert_now(ca, d.port)
    assert format(live.serial_number, "x").zfill(32) in by_serial


def test_files_on_disk_hold_the_current_matching_pair(rotating):
    ca, d = rotating
    chain = sysutil.load_certs((ca.dir / "server.crt").read_text())
    key = serialization.load_pem_private_key((ca.dir / "server.key").read_bytes(), None)
    assert _public_bytes(chain[0]) == _public_bytes(key), "server.key does not match server.crt"
    assert chain[1].subject == ca.intermediate.subject, "server.crt must carry the intermediate"
    assert (ca.dir / "server.key").stat().st_mode & 0o777 == 0o600


def test_startup_replaces_a_mismatched_key(tmp_path_factory):
    ca = make_ca(tmp_path_factory.mktemp("mm") / "state")
    before = x509.load_pem_x509_certificate((ca.dir / "server.crt").read_bytes())
    other = sysutil.make_key("ecdsa-p256")
    (ca.dir / "server.key").write_bytes(sysutil.key_pem(other))
    d = Daemon(ca, tmp_path_factory.mktemp("mmd")).start()
    try:
        now = _server_cert_now(ca, d.port)
        assert now.serial_number != before.serial_number
        key = serialization.load_pem_private_key((ca.dir / "server.key").read_bytes(), None)
        assert _public_bytes(now) == _public_bytes(key)
    finally:
        d.stop(check=True)
