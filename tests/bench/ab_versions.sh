#!/usr/bin/env bash
# A/B renewals through meshcad builds of different commits, each on a CA
# and database of its own made by its own `meshca init` (builds across a
# schema change cannot share one database; tests/bench/README.md):
#
#   tests/bench/ab_versions.sh BUILD_DIR VERSION_DIR [VERSION_DIR…]
#
# Each VERSION_DIR holds `meshcad` and `meshca` built from one commit, e.g.
#   git worktree add /tmp/wt COMMIT && meson setup /tmp/wt/b --buildtype=release &&
#   ninja -C /tmp/wt/b api/meshcad cli/meshca && cp /tmp/wt/b/{api/meshcad,cli/meshca} DIR/
# BUILD_DIR gives loadgen.  Environment as ab.sh: SECS (default 4), LEVELS
# (default "16 64"), ROUNDS (default "1 2"), KEY_TYPE, EXTRA.  Within a
# round every version serves in turn (fresh CSRs made by loadgen before
# each run), so machine drift hits all alike.  Stops every meshcad by its
# PID and removes everything at the end.
set -euo pipefail
build=$(cd "${1:?usage: ab_versions.sh BUILD_DIR VERSION_DIR [VERSION_DIR...]}" && pwd)
shift
[ $# -ge 1 ] || { echo "usage: ab_versions.sh BUILD_DIR VERSION_DIR [VERSION_DIR...]" >&2; exit 2; }
secs=${SECS:-4}
levels=${LEVELS:-"16 64"}
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_work
n=0
for v in "$@"; do	# a CA, a service and an enrolled workload per version
	n=$((n + 1))
	d="$work/v$n"
	mkdir -p "$d"
	bench_setup "$v/meshca" "$v/meshcad" "$d"
done
for round in ${ROUNDS:-1 2}; do
	n=0
	for v in "$@"; do
		n=$((n + 1))
		d="$work/v$n"
		bench_start "$v/meshcad" "$d"
		for c in $levels; do
			printf '%s r%s ' "$(basename "$v")" "$round"
			# shellcheck disable=SC2086
			"$build/tests/bench/loadgen" --url "$url" --cacert "$d/state/root.crt" \
				--cert "$d/w/fullchain.pem" --key "$d/w/key.pem" --key-type "${KEY_TYPE:-p256}" \
				--concurrency "$c" --seconds "$secs" --server-pid "$pid" ${EXTRA:-} | tr '\n' ' '
			echo
		done
		bench_stop
	done
done
