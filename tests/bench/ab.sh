#!/usr/bin/env bash
# A/B renewals through several meshcad binaries on one CA and database
# (tests/bench/README.md, "Step by step"):
#
#   tests/bench/ab.sh BUILD_DIR MESHCAD [MESHCAD…]
#
# Environment: SECS (default 4), LEVELS (default "1 16 64"), ROUNDS
# (default "1 2"), EXTRA (more loadgen flags, e.g. --new-connections),
# KEY_TYPE (p256, the default, p384, ed25519, rsa2048), CSR=fixed to
# renew with one fixed CSR instead of a fresh key per request.
# BUILD_DIR gives meshca and loadgen; each MESHCAD is a copy of api/meshcad
# built from the code under test.  Within a round every binary serves in
# turn, so machine drift hits all alike.  Every run generates its own
# CSRs before its timer starts (loadgen), the same way for each binary.
# Stops meshcad by its PID and removes everything at the end.
set -euo pipefail
build=$(cd "${1:?usage: ab.sh BUILD_DIR MESHCAD [MESHCAD...]}" && pwd)
shift
[ $# -ge 1 ] || { echo "usage: ab.sh BUILD_DIR MESHCAD [MESHCAD...]" >&2; exit 2; }
secs=${SECS:-4}
levels=${LEVELS:-"1 16 64"}
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_work
bench_setup "$build/cli/meshca" "$1" "$work"
openssl req -new -key "$work/w/key.pem" -subj /CN=bench -out "$work/csr.pem" 2>/dev/null
if [ "${CSR:-fresh}" = fixed ]; then
	csr_args=(--csr "$work/csr.pem")
else
	csr_args=(--key-type "${KEY_TYPE:-p256}")
fi
for round in ${ROUNDS:-1 2}; do
	for bin in "$@"; do
		bench_start "$bin" "$work"
		for c in $levels; do
			printf '%s r%s ' "$(basename "$bin")" "$round"
			# shellcheck disable=SC2086
			"$build/tests/bench/loadgen" --url "$url" --cacert "$work/state/root.crt" \
				--cert "$work/w/fullchain.pem" --key "$work/w/key.pem" "${csr_args[@]}" \
				--concurrency "$c" --seconds "$secs" --server-pid "$pid" ${EXTRA:-} | tr '\n' ' '
			echo
		done
		bench_stop
	done
done
