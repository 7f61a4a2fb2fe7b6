#!/usr/bin/env bash
# meshcad's resident memory (tests/bench/README.md):
#
#   tests/bench/memory.sh BUILD_DIR [IDLE_CONNECTIONS]
#
# Makes a throw-away CA, starts meshcad on a free loopback port and prints
# VmRSS (and threads) from /proc/PID/status: idle after start-up; the peak
# while loadgen renews at c=64 for 5 s; then with IDLE_CONNECTIONS
# (default 1000) TLS connections open and idle (handshake done, no
# request).  Stops meshcad by its PID and removes everything at the end.
set -euo pipefail

build=$(cd "${1:?usage: memory.sh BUILD_DIR [IDLE_CONNECTIONS]}" && pwd)
nconn=${2:-1000}
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_work
bench_ca "$build/cli/meshca" "$work" $((nconn + 64))	# all connections come from 127.0.0.1
bench_start "$build/api/meshcad" "$work"
port=$(cat "$work/port")
bench_workload "$build/cli/meshca" "$work"

rss() { awk '/^VmRSS/ {r = $2} /^Threads/ {t = $2} END {printf "%.1f MB, %d threads", r / 1024, t}' "/proc/$pid/status"; }

sleep 1
echo "idle: $(rss)"

peak=0
# A fresh P-256 key per renewal, generated before loadgen's timer starts
# (meshcad is idle meanwhile: the peak is still the load's).
"$build/tests/bench/loadgen" --url "$url" --cacert "$work/state/root.crt" --cert "$work/w/fullchain.pem" \
	--key "$work/w/key.pem" --concurrency 64 --seconds 5 >"$work/load" &
lpid=$!
while kill -0 "$lpid" 2>/dev/null; do
	r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
	[ "$r" -gt "$peak" ] && peak=$r
	sleep 0.2
done
wait "$lpid"
echo "under load (c=64 renewals, $(grep -o 'rate=[0-9]*/s' "$work/load")): peak $(awk -v r="$peak" 'BEGIN {printf "%.1f MB", r / 1024}'); after: $(rss)"

/usr/bin/python3 - "$port" "$nconn" "$pid" "$work/state/root.crt" <<'EOF'
import socket, ssl, sys, time
port, n, pid, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=root)
ctx.check_hostname = False
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    socks.append(ctx.wrap_socket(s))
time.sleep(1)
with open(f"/proc/{pid}/status") as f:
    st = dict(l.split(":", 1) for l in f)
print(f"{n} idle TLS connections: {int(st['VmRSS'].split()[0]) / 1024:.1f} MB, "
      f"{int(st['Threads'])} threads (peak RSS so far {int(st['VmHWM'].split()[0]) / 1024:.1f} MB)")
for s in socks:
    s.close()
EOF
