"""A TLS handshake that waits for the client costs meshcad nothing.

libmicrohttpd 0.9.75 in epoll mode busy-loops while a handshake waits for
the client's next flight (epoll_wait with a zero timeout, then recv ->
EAGAIN, again and again), so a client that sent a ClientHello and stalled
held a core until the connection timeout (30 s), and every normal
handshake burnt CPU for as long as the client took.  meshcad polls instead
(api/server.c); tests/bench/README.md has the figures.

This asserts a resource bound with a wide margin, not a speed: two stalled
handshakes held for HOLD seconds must cost meshcad well under a second of
CPU (the busy loop cost about HOLD seconds per stalled connection)."""

import os
import socket
import ssl
import time

HOLD = 2.0
CPU_BOUND = 0.5  # seconds of meshcad CPU over the whole hold


def cpu_seconds(pid):
    """utime + stime of pid (proc(5), fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stalled_handshake(port):
    """Sends a ClientHello, reads the server's first flight, then stalls."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(out.read())
    # The ServerHello arriving means meshcad now waits for us.
    assert s.recv(5)[:1] == b"\x16", "no TLS handshake record from meshcad"
    return s


def test_stalled_handshakes_do_not_spin(meshcad, api):
    socks = [stalled_handshake(meshcad.port) for _ in range(2)]
    try:
        time.sleep(0.2)
        before = cpu_seconds(meshcad.proc.pid)
        time.sleep(HOLD)
        used = cpu_seconds(meshcad.proc.pid) - before
    finally:
        for s in socks:
            s.close()
    assert used < CPU_BOUND, \
        f"meshcad used {used:.2f} s of CPU in {HOLD} s while two handshakes waited for the client"
    api.health()


def https_get(ctx, port, path, session=None):
    """One HTTP/1.1 GET on a new TLS connection; returns (status line,
    whether the session was resumed, the session to resume next time)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            # TLS 1.3 tickets arrive after the handshake: read before asking.
            return data.split(b"\r\n", 1)[0].decode(), s.session_reused, s.session


def test_session_resumption_keeps_client_identity(meshcad, api, ca, workload):
    """meshcad issues session tickets (api/resume.c): a client that
    reconnects resumes its TLS session, TLS 1.3 and 1.2 alike, and the
    resumed session still carries its client certificate, so the request
    authenticates as before (a workload is not an admin: 403, not 401)."""
    fullchain, key = workload
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = ssl.create_default_context(cafile=str(ca.root_crt))
        ctx.check_hostname = False
        ctx.minimum_version = ctx.maximum_version = version
        ctx.load_cert_chain(str(fullchain), str(key))
        first, reused, session = https_get(ctx, meshcad.port, "/v1/services")
        assert not reused and " 403 " in first, (version, first)
        again, reused, _ = https_get(ctx, meshcad.port, "/v1/services", session)
        assert reused, f"{version.name}: the session was not resumed"
        assert " 403 " in again, (version, again)
