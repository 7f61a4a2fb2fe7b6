# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): a work directory
# removed on exit, a throw-away CA, one meshcad on a free loopback port
# (stopped by its PID), and an enrolled workload.

# bench_work: work=$(mktemp -d), removed at exit with the meshcad in $pid
# stopped; the root key passphrase of bench_ca's CAs.
bench_work() {
	work=$(mktemp -d)
	pid=""
	trap bench_cleanup EXIT
	export MESHCA_ROOT_PASSPHRASE="bench-passphrase-$$"
}

bench_cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}

# bench_ca MESHCA DIR PER_IP: `meshca init` into DIR/state, with the
# per-address connection cap at PER_IP (all load comes from 127.0.0.1).
bench_ca() {
	"$1" init --state-dir "$2/state" >/dev/null
	echo "max_connections_per_ip = $3" >>"$2/state/meshca.conf"
}

# bench_start MESHCAD DIR [PREFIX…]: meshcad serving DIR/state on a free
# port (PREFIX, e.g. taskset -c 0, runs it); sets pid and url.
bench_start() {
	local bin=$1 dir=$2
	shift 2
	rm -f "$dir/port"
	"$@" "$bin" --config "$dir/state/meshca.conf" --listen 127.0.0.1:0 --port-file "$dir/port" \
		--log-level warn 2>>"$dir/meshcad.log" &
	pid=$!
	for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
	[ -s "$dir/port" ] || { echo "bench: meshcad wrote no port file (see $dir/meshcad.log)" >&2; exit 1; }
	url="https://127.0.0.1:$(cat "$dir/port")"
}

bench_stop() {
	kill "$pid"
	wait "$pid" || true
	pid=""
}

# bench_workload MESHCA DIR: service "bench", one token, enrolled into
# DIR/w (key.pem, fullchain.pem, chain.pem) through the meshcad at $url.
bench_workload() {
	MESHCA_CONFIG="$2/state/meshca.conf" MESHCA_URL="$url" "$1" service add bench \
		--dns bench.svc >/dev/null
	MESHCA_CONFIG="$2/state/meshca.conf" MESHCA_URL="$url" "$1" token create bench \
		>"$2/token" 2>/dev/null
	"$1" enroll --url "$url" --root-cert "$2/state/root.crt" --token-file "$2/token" \
		--out "$2/w" >/dev/null
}

# bench_setup MESHCA MESHCAD DIR: a CA in DIR/state (1,024 connections per
# IP) with a workload of service "bench" enrolled into DIR/w, through
# MESHCAD started for it and stopped again.
bench_setup() {
	bench_ca "$1" "$3" 1024
	bench_start "$2" "$3"
	bench_workload "$1" "$3"
	bench_stop
}
