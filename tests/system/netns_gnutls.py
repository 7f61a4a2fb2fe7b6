"""Runs gnutls-serv and gnutls-cli inside a private network namespace.

gnutls-serv listens on every address and has no option to bind 127.0.0.1
only, so test_walkthrough.py runs this script as
`unshare -n /usr/bin/python3 netns_gnutls.py SPEC.json`: the namespace holds
nothing but its own loopback device, so nothing outside can connect.

SPEC.json: {"server": {"certfile", "keyfile", "cafile"},
            "clients": [{"name", "certfile", "keyfile", "cafile", "hostname"}]}
Prints one JSON object: {"clients": {name: {"rc", "stdout", "stderr"}},
"server_stdout", "server_stderr", "server_rc"}.  Every process it starts is
stopped here by its PID.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

PORT = 5556            # the namespace is private: no other listener exists
REQUEST = b"GET / HTTP/1.0\r\n\r\n"


def main():
    spec = json.load(open(sys.argv[1]))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, stdin=subprocess.DEVNULL)
    srv = spec["server"]
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    server = subprocess.Popen(
        ["gnutls-serv", "--http", "--port", str(PORT), "--x509certfile", srv["certfile"],
         "--x509keyfile", srv["keyfile"], "--x509cafile", srv["cafile"],
         "--require-client-cert", "--verify-client-cert"],
        stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    result = {"clients": {}}
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gnutls-serv did not start listening")
                time.sleep(0.05)
        for c in spec["clients"]:
            try:
                r = subprocess.run(
                    ["gnutls-cli", "--port", str(PORT), "--x509cafile", c["cafile"],
                     "--x509certfile", c["certfile"], "--x509keyfile", c["keyfile"],
                     "--verify-hostname", c["hostname"], "127.0.0.1"],
                    input=REQUEST, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
                result["clients"][c["name"]] = {"rc": r.returncode,
                                                "stdout": r.stdout.decode(errors="replace"),
                                                "stderr": r.stderr.decode(errors="replace")}
            except subprocess.TimeoutExpired:
                result["clients"][c["name"]] = {"rc": None, "stdout": "", "stderr": "timed out"}
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait()
        result["server_rc"] = server.returncode
        for name, f in (("server_stdout", out), ("server_stderr", err)):
            f.seek(0)
            result[name] = f.read().decode(errors="replace")[-20000:]
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
