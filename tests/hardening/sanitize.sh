#!/usr/bin/env bash
# Runs the unit tests and the system tests against a sanitizer build
# (ASan + UBSan, -fno-sanitize-recover=all; deploy/test.sh makes one):
#
#     tests/hardening/sanitize.sh SAN_BUILD_DIR
#
# A sanitizer report anywhere fails the run, also from a process whose exit
# status a test does not look at (a `meshca` expected to fail, a meshcad
# stopped with SIGKILL):
#  - ASan and LeakSanitizer write their reports to files (log_path) that
#    are counted after the run, and exit with 86;
#  - UBSan (gcc's runtime ignores log_path) halts with exit status 87, and
#    its "runtime error:" lines are looked for in every file the system
#    tests left (meshcad's stderr is kept there) and in the unit output.
# Leak detection is on, so meshcad's exit status after SIGTERM, which the
# fixtures assert is 0, also says "no leak".
# Last line: `sanitize: N passed, N failed` (unit + system tests).
set -u

build=$(cd "${1:?usage: tests/hardening/sanitize.sh SAN_BUILD_DIR}" 2>/dev/null && pwd) ||
	{ echo "sanitize: no build directory '$1'"; echo "sanitize: 0 passed, 1 failed"; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/meshca-san.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/reports" "$work/pytest"
# A meshcad that switches to another user (test_sandbox.py: --user nobody)
# must still reach the reports directory: its Landlock rules name it, and
# its reports would otherwise be lost.
chmod 0711 "$work"
chmod 1777 "$work/reports"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:exitcode=86:abort_on_error=0:log_path=$work/reports/asan:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
export LSAN_OPTIONS="suppressions=$repo/tests/hardening/lsan.supp:print_suppressions=0"

# -------------------------------------------------------------- unit tests
# run-all.sh counts TAP lines; here each binary is one verdict on top of
# its own tests, so a clean TAP run that leaked still fails.
pass=0
fail=0
for bin in "$build"/tests/unit/*_test; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	out="$work/$name.tap"
	( cd "$repo" && CMOCKA_MESSAGE_OUTPUT=TAP MESHCA_TEST_DATA="$repo/tests/data" \
		timeout -k 10 600 "$bin" </dev/null >"$out" 2>&1 )
	rc=$?
	ok=$(grep -E '^ok( |$)' "$out" | grep -cvE '#[[:space:]]*[Ss][Kk][Ii][Pp]')
	nok=$(grep -cE '^not ok( |$)' "$out")
	if [ "$rc" -eq 0 ] && [ "$nok" -eq 0 ] && ! grep -q 'runtime error:' "$out"; then
		echo "ok - unit $name under ASan+UBSan ($ok tests)"
		pass=$((pass + ok))
	else
		echo "not ok - unit $name under ASan+UBSan (exit $rc, $nok failed)"
		grep -vE '^ok ' "$out" | tail -40
		pass=$((pass + ok))
		fail=$((fail + (nok > 0 ? nok : 1)))
	fi
done

# ------------------------------------------------------------ system tests
junit="$work/system.xml"
( cd "$repo" && MESHCA_BUILD_DIR="$build" PYTHONDONTWRITEBYTECODE=1 \
	timeout -k 10 "${MESHCA_SYSTEM_TIMEOUT:-900}" "$python" -m pytest tests/system -q \
	-p no:cacheprovider -rfEs --basetemp="$work/pytest" --junitxml="$junit" </dev/null 2>&1 )
prc=$?
counts=$("$python" - "$junit" <<'PY'
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
    t += int(su.get("tests", 0)); f += int(su.get("failures", 0))
    e += int(su.get("errors", 0)); s += int(su.get("skipped", 0))
print(t - f - e - s, f + e, s)
PY
)
if [ "$counts" = "none" ]; then
	echo "not ok - system tests under ASan+UBSan: no JUnit report (pytest exit $prc)"
	fail=$((fail + 1))
else
	read -r sp sf ss <<<"$counts"
	if [ "$prc" -ne 0 ] && [ "$prc" -ne 1 ] && [ "$sf" -eq 0 ]; then
		sf=1
	fi
	echo "--- system tests under ASan+UBSan: $sp passed, $sf failed, $ss skipped"
	pass=$((pass + sp))
	fail=$((fail + sf))
fi

# ------------------------------------------------------- reports anywhere
nrep=0
for f in "$work"/reports/*; do
	[ -f "$f" ] || continue
	nrep=$((nrep + 1))
	echo "not ok - sanitizer report $(basename "$f"):"
	head -60 "$f"
done
while IFS= read -r f; do
	nrep=$((nrep + 1))
	echo "not ok - UBSan report in ${f#"$work"/}:"
	grep -A 12 'runtime error:' "$f" | head -40
done < <(grep -rlE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$work/pytest" 2>/dev/null)
if [ "$nrep" -gt 0 ]; then
	fail=$((fail + nrep))
else
	echo "ok - no sanitizer report from any process"
fi
echo "sanitize: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
