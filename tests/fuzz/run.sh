#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on its seed corpus (copied: the
# committed seeds are never modified) and fails on any crash, leak, timeout
# or sanitizer report.  Build first:
#   CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled && ninja -C build-fuzz
#   tests/fuzz/run.sh build-fuzz [SECONDS_PER_TARGET]
# Prints executions and executions per second per target; the last line is
# `fuzz: N passed, N failed`.
set -uo pipefail

build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0

for t in csr cert ocsp config names json; do
	bin="$build/tests/fuzz/${t}_fuzz"
	log="$work/$t.log"
	mkdir -p "$work/$t"
	if [ ! -x "$bin" ]; then
		echo "not ok - $t: $bin not built"
		fail=$((fail + 1))
		continue
	fi
	if "$bin" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/$t" "$here/corpus/$t" \
	    >"$log" 2>&1; then
		execs=$(grep -oE 'number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
		rate=$(grep -oE 'average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
		echo "ok - $t: ${execs:-?} executions in ${secs}s (${rate:-?}/s)"
		pass=$((pass + 1))
	else
		echo "not ok - $t: the fuzzer found a failure"
		tail -60 "$log"
		mkdir -p "$build/fuzz-artifacts"
		cp "$work/$t"-* "$build/fuzz-artifacts/" 2>/dev/null &&
			echo "# reproducer saved under $build/fuzz-artifacts/"
		fail=$((fail + 1))
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
