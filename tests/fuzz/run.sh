#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on its seed corpus (copied: the
# committed seeds are never modified) and fails on any crash, leak, timeout
# or sanitizer report.  Build first:
#   CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled && ninja -C build-fuzz
#   tests/fuzz/run.sh build-fuzz [SECONDS_PER_TARGET]
# Targets run MESHCA_FUZZ_JOBS at a time (default: the number of cores, at
# most 2), each on one core.  Prints executions and executions per second
# per target; the last line is `fuzz: N passed, N failed`.
set -uo pipefail

build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
targets=(csr cert ocsp config names json answer signer signer_stream)
jobs=${MESHCA_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && jobs=2
[ "$jobs" -lt 1 ] && jobs=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One target: its verdict line goes to $work/<t>.result, its log beside it.
fuzz_one() {
	local t=$1 bin="$build/tests/fuzz/${1}_fuzz" log="$work/$1.log" execs rate
	mkdir -p "$work/$t"
	if [ ! -x "$bin" ]; then
		echo "not ok - $t: $bin not built" >"$work/$t.result"
		return
	fi
	if "$bin" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/$t" "$here/corpus/$t" \
	    >"$log" 2>&1; then
		execs=$(grep -oE 'number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
		rate=$(grep -oE 'average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
		echo "ok - $t: ${execs:-?} executions in ${secs}s (${rate:-?}/s)" >"$work/$t.result"
	else
		echo "not ok - $t: the fuzzer found a failure" >"$work/$t.result"
	fi
}

running=0
for t in "${targets[@]}"; do
	fuzz_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

pass=0
fail=0
for t in "${targets[@]}"; do
	cat "$work/$t.result"
	if grep -q '^ok ' "$work/$t.result"; then
		pass=$((pass + 1))
		continue
	fi
	fail=$((fail + 1))
	[ -f "$work/$t.log" ] && tail -60 "$work/$t.log"
	if compgen -G "$work/$t-*" >/dev/null; then
		mkdir -p "$build/fuzz-artifacts"
		cp "$work/$t"-* "$build/fuzz-artifacts/" && echo "# reproducer saved under $build/fuzz-artifacts/"
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
