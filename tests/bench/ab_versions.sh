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
work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
export MESHCA_ROOT_PASSPHRASE="bench-passphrase-$$"
start() {	# VERSION_DIR STATE_DIR
	rm -f "$2/port"
	"$1/meshcad" --config "$2/state/meshca.conf" --listen 127.0.0.1:0 --port-file "$2/port" \
		--log-level warn 2>>"$2/meshcad.log" &
	pid=$!
	for _ in $(seq 100); do [ -s "$2/port" ] && break; sleep 0.1; done
	url="https://127.0.0.1:$(cat "$2/port")"
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }
n=0
for v in "$@"; do	# a CA, a service and an enrolled workload per version
	n=$((n + 1))
	d="$work/v$n"
	mkdir -p "$d"
	"$v/meshca" init --state-dir "$d/state" >/dev/null
	echo "max_connections_per_ip = 1024" >>"$d/state/meshca.conf"
	start "$v" "$d"
	MESHCA_CONFIG="$d/state/meshca.conf" MESHCA_URL="$url" "$v/meshca" service add bench \
		--dns bench.svc >/dev/null
	MESHCA_CONFIG="$d/state/meshca.conf" MESHCA_URL="$url" "$v/meshca" token create bench \
		>"$d/token" 2>/dev/null
	"$v/meshca" enroll --url "$url" --root-cert "$d/state/root.crt" --token-file "$d/token" \
		--out "$d/w" >/dev/null
	stop
done
for round in ${ROUNDS:-1 2}; do
	n=0
	for v in "$@"; do
		n=$((n + 1))
		d="$work/v$n"
		start "$v" "$d"
		for c in $levels; do
			printf '%s r%s ' "$(basename "$v")" "$round"
			# shellcheck disable=SC2086
			"$build/tests/bench/loadgen" --url "$url" --cacert "$d/state/root.crt" \
				--cert "$d/w/fullchain.pem" --key "$d/w/key.pem" --key-type "${KEY_TYPE:-p256}" \
				--concurrency "$c" --seconds "$secs" --server-pid "$pid" ${EXTRA:-} | tr '\n' ' '
			echo
		done
		stop
	done
done
