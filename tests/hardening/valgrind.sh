#!/usr/bin/env bash
# Runs every cmocka unit test executable of BUILD_DIR under valgrind
# memcheck; each binary is one test, failed on any memcheck error (invalid
# access, uninitialised value used, definite or possible leak), on a test
# failure or on a crash:
#
#     tests/hardening/valgrind.sh BUILD_DIR
#
# Use a build without sanitizers (valgrind and ASan do not mix).
# Last line: `valgrind: N passed, N failed`.
set -u

build=$(cd "${1:?usage: tests/hardening/valgrind.sh BUILD_DIR}" 2>/dev/null && pwd) ||
	{ echo "valgrind: no build directory '$1'"; echo "valgrind: 0 passed, 1 failed"; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/meshca-vg.XXXXXX")
trap 'rm -rf "$work"' EXIT
pass=0
fail=0

if ! command -v valgrind >/dev/null; then
	echo "not ok - valgrind is not installed (deploy/install-deps.sh --test)"
	echo "valgrind: 0 passed, 1 failed"
	exit 1
fi
for bin in "$build"/tests/unit/*_test; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	start=$(date +%s)
	# --errors-for-leak-kinds: definite and possible leaks are errors;
	# "still reachable" (GnuTLS's and p11-kit's global state) is not.
	( cd "$repo" && CMOCKA_MESSAGE_OUTPUT=TAP MESHCA_TEST_DATA="$repo/tests/data" MESHCA_TEST_NO_BIG_RSA=1 MESHCA_TEST_UNDER_VALGRIND=1 \
		timeout -k 10 900 valgrind -q --tool=memcheck --leak-check=full \
		--show-leak-kinds=definite,possible --errors-for-leak-kinds=definite,possible \
		--error-exitcode=99 --suppressions="$repo/tests/hardening/valgrind.supp" \
		"$bin" </dev/null >"$work/$name.out" 2>&1 )
	rc=$?
	nok=$(grep -cE '^not ok( |$)' "$work/$name.out")
	secs=$(($(date +%s) - start))
	if [ "$rc" -eq 0 ] && [ "$nok" -eq 0 ]; then
		echo "ok - $name clean under memcheck (${secs}s)"
		pass=$((pass + 1))
	else
		case $rc in
		99) why="memcheck errors" ;;
		124|137) why="timed out" ;;
		*) why="exit $rc, $nok tests failed" ;;
		esac
		echo "not ok - $name under memcheck: $why"
		grep -E '^==[0-9]+==|^not ok' "$work/$name.out" | head -80
		fail=$((fail + 1))
	fi
done
echo "valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
