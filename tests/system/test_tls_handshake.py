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
