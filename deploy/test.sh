#!/usr/bin/env bash
# Install dependencies, build with warnings as errors, run every unit and
# system test.  The last line is `meshca: N passed, N failed`.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=${MESHCA_BUILD_DIR:-build-test}

fail() {
	echo "test.sh: $*" >&2
	echo "meshca: 0 passed, 1 failed"
	exit 1
}

bash deploy/install-deps.sh --test || fail "dependency installation failed"
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dtests=enabled --werror || fail "meson setup failed"
else
	meson configure "$build" -Dtests=enabled -Dwerror=true || fail "meson configure failed"
fi
ninja -C "$build" || fail "build failed"

# The libFuzzer targets (clang, ASan+UBSan), run briefly by run-all.sh.
fuzz="$build-fuzz"
if [ ! -f "$fuzz/build.ninja" ]; then
	CC=clang meson setup "$fuzz" -Dfuzz=true -Dtests=disabled --werror >/dev/null || fail "fuzz meson setup failed"
fi
ninja -C "$fuzz" $(for t in csr cert ocsp config names json answer signer signer_stream; do echo "tests/fuzz/${t}_fuzz"; done) ||
	fail "fuzz build failed"
export MESHCA_FUZZ_BUILD="$fuzz"

# The whole project under ASan+UBSan (gcc), whose unit and system tests
# run-all.sh runs again (tests/hardening/sanitize.sh); valgrind memcheck
# runs the plain build's unit tests.
san="$build-san"
if [ ! -f "$san/build.ninja" ]; then
	meson setup "$san" -Dtests=enabled --werror -Db_sanitize=address,undefined \
	    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all >/dev/null ||
		fail "sanitizer meson setup failed"
fi
ninja -C "$san" || fail "sanitizer build failed"
export MESHCA_SAN_BUILD="$san" MESHCA_VALGRIND=1
exec bash tests/run-all.sh "$build"
