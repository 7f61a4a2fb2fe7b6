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
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_work
bench_ca "$build/cli/meshca" "$work" 1024
bench_start "$build/api/meshcad" "$work"
bench_workload "$build/cli/meshca" "$work"
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
