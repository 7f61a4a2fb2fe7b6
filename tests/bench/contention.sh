#!/usr/bin/env bash
# Renewals while an admin read runs back to back, on a database holding
# many certificates: does the read hold issuance up? (tests/bench/README.md)
#
#   tests/bench/contention.sh BUILD_DIR ROWS [MESHCAD...]
#
# Makes a CA, enrolls one workload, stops meshcad and stores ROWS
# synthetic certificates (bulkload.sh).  Then, for each meshcad binary
# given (default BUILD_DIR's), renewals at C (default 16) for SECS
# (default 10) seconds: once alone, then once per read in READS (default
# "/v1/status" and "/v1/certificates?status=expired&limit=100"), that read
# repeated by curl with the admin certificate from the 3rd second to the
# end.  Prints renewals per second, p99 and max, and the reads' count and
# median time.  BUILD_DIR gives meshca and loadgen.  Loopback only; stops
# every meshcad by its PID and removes everything at the end.
set -euo pipefail
build=$(cd "${1:?usage: contention.sh BUILD_DIR ROWS [MESHCAD...]}" && pwd)
rows=${2:?usage: contention.sh BUILD_DIR ROWS [MESHCAD...]}
shift 2
[ $# -gt 0 ] || set -- "$build/api/meshcad"
secs=${SECS:-10}
c=${C:-16}
reads=${READS:-"/v1/status /v1/certificates?status=expired&limit=100"}
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_work
bench_setup "$build/cli/meshca" "$1" "$work"
"$(dirname "$0")/bulkload.sh" "$work/state/meshca.db" "$rows" 2>/dev/null
s="$work/state"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, $rows stored rows, renewals at c=$c for ${secs}s"
for bin in "$@"; do
	for read in "" $reads; do
		bench_start "$bin" "$work"
		"$build/tests/bench/loadgen" --url "$url" --cacert "$s/root.crt" \
			--cert "$work/w/fullchain.pem" --key "$work/w/key.pem" --concurrency "$c" \
			--seconds "$secs" --server-pid "$pid" >"$work/lg.out" 2>&1 &
		lg=$!
		: >"$work/reads"
		if [ -n "$read" ]; then
			sleep 3
			while kill -0 "$lg" 2>/dev/null; do
				curl -s -o /dev/null -w "%{time_total}\n" --cacert "$s/root.crt" \
					--cert "$s/admin.crt" --key "$s/admin.key" "$url$read" >>"$work/reads" || true
			done
		fi
		wait "$lg" || true
		printf '%s %-45s %s' "$bin" "${read:-(renewals alone)}" \
			"$(grep -oE "rate=[0-9]+/s|p99=[0-9.]+ms|max=[0-9.]+ms" "$work/lg.out" | tr '\n' ' ')"
		if [ -s "$work/reads" ]; then
			printf ' reads=%s median=%ss' "$(wc -l <"$work/reads")" \
				"$(sort -n "$work/reads" | awk '{ t[NR] = $1 } END { print t[int(NR / 2) + 1] }')"
		fi
		echo
		bench_stop
	done
done
