#!/usr/bin/env bash
# Runs every meshca test and prints one summary line last:
#
#     tests/run-all.sh BUILD_DIR
#
# 1. each cmocka unit test executable BUILD_DIR/tests/unit/*_test, with
#    CMOCKA_MESSAGE_OUTPUT=TAP: `ok` and `not ok` lines are counted (those
#    with a `# SKIP` directive are reported as skipped instead); a binary
#    that exits non-zero (a crash, an abort) without reporting a failure, or
#    that reports fewer tests than its plan, counts as failed.
# 2. the system tests: /usr/bin/python3 -m pytest tests/system, with
#    MESHCA_BUILD_DIR=BUILD_DIR; passed and failed (failures + errors) are
#    read from the JUnit XML; skipped ones are reported apart.
# 3. with MESHCA_SAN_BUILD (an ASan+UBSan build), the unit and system tests
#    again against it; with MESHCA_VALGRIND=1, each unit test executable
#    under valgrind memcheck; with MESHCA_FUZZ_BUILD, each fuzz target.
#    deploy/test.sh sets all three; see tests/hardening/.
#
# Last line, exactly: `meshca: N passed, N failed`.  Exit status is non-zero
# when anything failed or when no test ran at all.  Needs no stdin, no TTY.
set -u

if [ $# -ne 1 ]; then
	echo "usage: tests/run-all.sh BUILD_DIR" >&2
	exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || { echo "run-all: no build directory '$1'" >&2; exit 2; }
python=/usr/bin/python3
unit_timeout=${MESHCA_UNIT_TIMEOUT:-300}
system_timeout=${MESHCA_SYSTEM_TIMEOUT:-900}

work=$(mktemp -d "${TMPDIR:-/tmp}/meshca-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# ---------------------------------------------------------------- unit tests
unit_pass=0
unit_fail=0
unit_skip=0
unit_bins=0
if [ -d "$build/tests/unit" ]; then
	for bin in "$build"/tests/unit/*_test; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		unit_bins=$((unit_bins + 1))
		name=$(basename "$bin")
		echo "=== unit: $name"
		out="$work/$name.tap"
		( cd "$repo" && CMOCKA_MESSAGE_OUTPUT=TAP MESHCA_TEST_DATA="$repo/tests/data" \
			timeout -k 10 "$unit_timeout" "$bin" </dev/null >"$out" 2>&1 )
		rc=$?
		cat "$out"
		# cmocka writes a skipped test as "not ok N # SKIP name": a TAP
		# SKIP directive, counted apart, neither passed nor failed.
		skip=$(grep -cE '^(not )?ok( [0-9]+)?( -)? *#[[:space:]]*[Ss][Kk][Ii][Pp]' "$out")
		ok=$(grep -E '^ok( |$)' "$out" | grep -cvE '#[[:space:]]*[Ss][Kk][Ii][Pp]')
		nok=$(grep -E '^not ok( |$)' "$out" | grep -cvE '#[[:space:]]*[Ss][Kk][Ii][Pp]')
		# Plans ("1..N"), summed over the binary's groups.
		plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out" | awk '{s += $1} END {print s + 0}')
		missing=0
		if [ "$plan" -gt $((ok + nok + skip)) ]; then
			missing=$((plan - ok - nok - skip))
		fi
		bad=$((nok + missing))
		if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
			bad=1
		fi
		if [ "$rc" -ne 0 ]; then
			case $rc in
			124|137) echo "run-all: $name timed out after ${unit_timeout}s" ;;
			*) echo "run-all: $name exited with status $rc" ;;
			esac
		fi
		[ "$missing" -gt 0 ] && echo "run-all: $name planned $plan tests but reported $((ok + nok + skip))"
		echo "--- unit: $name: $ok passed, $bad failed, $skip skipped"
		unit_pass=$((unit_pass + ok))
		unit_fail=$((unit_fail + bad))
		unit_skip=$((unit_skip + skip))
	done
fi
if [ "$unit_bins" -eq 0 ]; then
	echo "run-all: no unit test executables in $build/tests/unit (configure with -Dtests=enabled)"
fi
echo "=== unit tests: $unit_pass passed, $unit_fail failed, $unit_skip skipped ($unit_bins executables)"
passed=$((passed + unit_pass))
failed=$((failed + unit_fail))

# valgrind memcheck over the unit tests (MESHCA_VALGRIND=1; deploy/test.sh
# sets it): mostly one busy core for a few minutes, so it runs beside the
# system tests, which mostly wait; each binary counts as one test.
vg_pid=
if [ "${MESHCA_VALGRIND:-0}" = 1 ]; then
	bash "$repo/tests/hardening/valgrind.sh" "$build" >"$work/valgrind.out" 2>&1 &
	vg_pid=$!
fi

# ---------------------------------------------------------------- system tests
echo "=== system tests (pytest tests/system)"
junit="$work/system.xml"
( cd "$repo" && MESHCA_BUILD_DIR="$build" PYTHONDONTWRITEBYTECODE=1 \
	timeout -k 10 "$system_timeout" "$python" -m pytest tests/system -q -p no:cacheprovider \
	-rfEs --junitxml="$junit" </dev/null 2>&1 )
prc=$?
counts=$("$python" - "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("none")
    sys.exit(0)
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for su in suites:
    t += int(su.get("tests", 0))
    f += int(su.get("failures", 0))
    e += int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - e - s, f + e, s)
EOF
)
if [ "$counts" = "none" ]; then
	echo "run-all: pytest wrote no JUnit report (exit $prc)"
	sys_pass=0
	sys_fail=1
	sys_skip=0
else
	read -r sys_pass sys_fail sys_skip <<<"$counts"
	# Exit 1 = failures (counted above); 5 = nothing collected; others = pytest broke.
	if [ "$prc" -ne 0 ] && [ "$prc" -ne 1 ] && [ "$prc" -ne 5 ] && [ "$sys_fail" -eq 0 ]; then
		echo "run-all: pytest exited with status $prc"
		sys_fail=1
	fi
fi
echo "=== system tests: $sys_pass passed, $sys_fail failed, $sys_skip skipped"
passed=$((passed + sys_pass))
failed=$((failed + sys_fail))

# Hardening runs, each counted by its own last line `NAME: N passed, N failed`:
# the unit and system tests again against the ASan+UBSan build in
# MESHCA_SAN_BUILD (tests/hardening/sanitize.sh), then valgrind's verdicts.
add_counts() {	# NAME OUTPUT
	echo "$2"
	if [[ $(tail -n 1 <<<"$2") =~ ^$1:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
	fi
}
if [ -n "${MESHCA_SAN_BUILD:-}" ]; then
	echo "=== unit and system tests under ASan+UBSan ($MESHCA_SAN_BUILD)"
	add_counts sanitize "$(bash "$repo/tests/hardening/sanitize.sh" "$MESHCA_SAN_BUILD" 2>&1)"
fi
if [ -n "$vg_pid" ]; then
	wait "$vg_pid"
	echo "=== unit tests under valgrind memcheck"
	add_counts valgrind "$(cat "$work/valgrind.out")"
fi

# Fuzz targets, when a fuzz build is given (deploy/test.sh makes one): each
# target runs MESHCA_FUZZ_SECONDS and counts as one test.
if [ -n "${MESHCA_FUZZ_BUILD:-}" ]; then
	echo "=== fuzz targets (${MESHCA_FUZZ_SECONDS:-30}s each)"
	fuzz_out=$(bash "$repo/tests/fuzz/run.sh" "$MESHCA_FUZZ_BUILD" "${MESHCA_FUZZ_SECONDS:-30}" 2>&1)
	echo "$fuzz_out"
	if [[ $(tail -n 1 <<<"$fuzz_out") =~ ^fuzz:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		failed=$((failed + 1))
	fi
fi

status=0
if [ "$failed" -ne 0 ]; then
	status=1
elif [ $((passed + failed)) -eq 0 ]; then
	echo "run-all: no tests ran"
	status=1
fi
echo "meshca: $passed passed, $failed failed"
exit "$status"
