#!/usr/bin/env bash
# Renewal throughput of meshcad through its real HTTPS API (tests/bench/README.md).
#   tests/bench/renew_bench.sh BUILD_DIR [SECONDS]
# Makes a throw-away CA in a temporary directory, starts meshcad on a free
# loopback port, enrolls one workload, then runs loadgen at several
# concurrencies, with keep-alive and with a new TLS connection per request,
# each renewal with a CSR for a fresh key (generated before each run's
# timer starts; KEY_TYPE: p256, the default, p384, ed25519, rsa2048), or
# with CSR=fixed one fixed CSR.  Stops meshcad by its PID and removes
# everything at the end.
set -euo pipefail

build=$(cd "${1:?usage: renew_bench.sh BUILD_DIR [SECONDS]}" && pwd)
secs=${2:-10}
work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

export MESHCA_ROOT_PASSPHRASE="bench-passphrase-$$"
"$build/cli/meshca" init --state-dir "$work/state" >/dev/null
# Every loadgen connection comes from 127.0.0.1: lift the per-address cap.
echo "max_connections_per_ip = 1024" >>"$work/state/meshca.conf"
"$build/api/meshcad" --config "$work/state/meshca.conf" --listen 127.0.0.1:0 \
	--port-file "$work/port" --log-level warn 2>"$work/meshcad.log" &
pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
url="https://127.0.0.1:$(cat "$work/port")"
export MESHCA_CONFIG="$work/state/meshca.conf" MESHCA_URL="$url"
"$build/cli/meshca" service add bench --dns bench.svc >/dev/null
"$build/cli/meshca" token create bench >"$work/token" 2>/dev/null
"$build/cli/meshca" enroll --url "$url" --root-cert "$work/state/root.crt" \
	--token-file "$work/token" --out "$work/w" >/dev/null
openssl req -new -key "$work/w/key.pem" -subj /CN=bench -out "$work/csr.pem" 2>/dev/null

if [ "${CSR:-fresh}" = fixed ]; then
	csr_args=(--csr "$work/csr.pem")
	keys="one fixed P-256 CSR"
else
	csr_args=(--key-type "${KEY_TYPE:-p256}")
	keys="a fresh ${KEY_TYPE:-p256} key per request"
fi

echo "# meshcad renewals, $(nproc) cores, $secs s per row, ECDSA P-256 CA, $keys"
for mode in keep-alive new; do
	for c in 1 8 64; do
		flag=""
		[ "$mode" = new ] && flag="--new-connections"
		"$build/tests/bench/loadgen" --url "$url" --cacert "$work/state/root.crt" \
			--cert "$work/w/fullchain.pem" --key "$work/w/key.pem" "${csr_args[@]}" \
			--concurrency "$c" --seconds "$secs" --server-pid "$pid" $flag
	done
done
