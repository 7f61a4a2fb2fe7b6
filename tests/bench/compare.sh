#!/usr/bin/env bash
# meshcad side by side with Debian's cfssl (tests/bench/README.md).
#
#   tests/bench/compare.sh BUILD_DIR [SECONDS]
#
# Environment: LEVELS (default "1 16 64 256"), ROUNDS (default 2),
# PIN=1 to pin the servers to CPU 0 and the load generator to CPU 1
# (taskset), MODES (default "renew enroll"), KEY_TYPE (of the CSRs'
# keys: p256, the default, p384, ed25519 or rsa2048), FRESH (CSRs per
# run, default loadgen's), CSR=fixed to send one fixed CSR instead.
#
# Starts, on 127.0.0.1 ports picked free, three servers that sign CSRs
# (ECDSA P-256 keys unless KEY_TYPE says otherwise) with an ECDSA P-256
# CA over TLS:
#   meshcad          its default durable SQLite (WAL, synchronous=FULL);
#   cfssl (no DB)    `cfssl serve`, /api/v1/cfssl/sign;
#   cfssl (certdb)   the same with -db-config: cfssl 1.2's SQLite certdb
#                    (the schema of its certdb/sqlite goose migration).
# Both cfssl instances require a client certificate from meshca's CA
# (-mutual-tls-ca), as meshcad's renewal does.  The same loadgen drives
# each in turn over keep-alive HTTPS, every request with a CSR for a key
# of its own (loadgen generates them before each run's timer starts,
# for every server alike), alternating servers within each round so
# that machine drift hits all alike:
#   renew   meshcad POST /v1/renew (mTLS) vs cfssl sign;
#   enroll  meshcad POST /v1/enroll with a fresh token per request
#           (minted before the run) vs cfssl sign.
# Prints every run, then the medians and meshca/cfssl ratios per level.
# Installs golang-cfssl with apt-get if it is missing.  Stops every
# server by its PID and removes its files at the end.
set -euo pipefail

build=$(cd "${1:?usage: compare.sh BUILD_DIR [SECONDS]}" && pwd)
secs=${2:-5}
levels=${LEVELS:-"1 16 64 256"}
rounds=${ROUNDS:-2}
modes=${MODES:-"renew enroll"}
here=$(cd "$(dirname "$0")" && pwd)
loadgen="$build/tests/bench/loadgen"
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v cfssl >/dev/null || ! command -v cfssljson >/dev/null; then
	echo "# installing golang-cfssl" >&2
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y golang-cfssl >/dev/null
	else
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y golang-cfssl >/dev/null
	fi
fi
[ -x "$loadgen" ] || { echo "compare: $loadgen not built (ninja -C BUILD_DIR)" >&2; exit 2; }

srv_cpu="" cli_cpu=""
if [ "${PIN:-0}" = 1 ]; then
	srv_cpu="taskset -c 0"
	cli_cpu="taskset -c 1"
fi

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "compare: nothing listens on port $1" >&2
	exit 1
}

# ---------------------------------------------------------------- meshcad
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
export MESHCA_ROOT_PASSPHRASE="bench-passphrase-$$"
bench_ca "$build/cli/meshca" "$work" 1024
# shellcheck disable=SC2086
bench_start "$build/api/meshcad" "$work" $srv_cpu
mpid=$pid murl=$url
pids+=("$mpid")
bench_workload "$build/cli/meshca" "$work"
openssl req -new -key "$work/w/key.pem" -subj /CN=bench -out "$work/csr.pem" 2>/dev/null
cat "$work/state/root.crt" "$work/w/chain.pem" >"$work/meshca-cas.pem" 2>/dev/null ||
	cat "$work/state/root.crt" >"$work/meshca-cas.pem"

# Tokens for one enrollment run, minted through the API (keep-alive).
mint_tokens() {
	/usr/bin/python3 - "$murl" "$work/state" "$1" "$2" <<'EOF'
import sys, threading, requests
url, state, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
THREADS = 8
tokens = []

def mint(count):
    s = requests.Session()
    s.trust_env = False
    s.verify = f"{state}/root.crt"
    s.cert = (f"{state}/admin.crt", f"{state}/admin.key")
    for _ in range(count):
        r = s.post(f"{url}/v1/services/bench/tokens", json={}, timeout=30)
        r.raise_for_status()
        tokens.append(r.json()["token"])

ts = [threading.Thread(target=mint, args=(n // THREADS + 1,)) for _ in range(THREADS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
with open(out, "w") as f:
    f.write("\n".join(tokens) + "\n")
EOF
}

# ---------------------------------------------------------------- cfssl
mkdir -p "$work/cfssl"
(
	cd "$work/cfssl"
	echo '{"CN":"cfssl bench CA","key":{"algo":"ecdsa","size":256}}' |
		cfssl gencert -initca - 2>/dev/null | cfssljson -bare ca
	cat >cfg.json <<'EOF'
{"signing":{"default":{"expiry":"24h","usages":["digital signature","server auth","client auth"]},
 "profiles":{"server":{"expiry":"24h","usages":["digital signature","server auth"]}}}}
EOF
	echo '{"CN":"127.0.0.1","hosts":["127.0.0.1"],"key":{"algo":"ecdsa","size":256}}' |
		cfssl gencert -ca ca.pem -ca-key ca-key.pem -config cfg.json -profile server - 2>/dev/null |
		cfssljson -bare srv
	# cfssl 1.2's certdb/sqlite/migrations/001_CreateCertificates.sql.
	sqlite3 certs.db <<'EOF'
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier) REFERENCES certificates(serial_number, authority_key_identifier)
);
EOF
	echo "{\"driver\":\"sqlite3\",\"data_source\":\"$work/cfssl/certs.db\"}" >db.json
)
start_cfssl() {	# $1: port, rest: extra flags; sets cpid (no subshell: pids must stay)
	local port=$1
	shift
	$srv_cpu cfssl serve -address 127.0.0.1 -port "$port" -ca "$work/cfssl/ca.pem" \
		-ca-key "$work/cfssl/ca-key.pem" -config "$work/cfssl/cfg.json" \
		-tls-cert "$work/cfssl/srv.pem" -tls-key "$work/cfssl/srv-key.pem" \
		-mutual-tls-ca "$work/meshca-cas.pem" "$@" 2>>"$work/cfssl.log" &
	cpid=$!
	pids+=("$cpid")
}
p1=$(free_port)
start_cfssl "$p1"
c1pid=$cpid
p2=$(free_port)
start_cfssl "$p2" -db-config "$work/cfssl/db.json"
c2pid=$cpid
wait_port "$p1"
wait_port "$p2"

# ---------------------------------------------------------------- runs
results="$work/results"
: >"$results"
run() {	# $1 label, $2 mode, $3 c, then loadgen arguments
	local label=$1 mode=$2 c=$3 out
	shift 3
	if ! out=$($cli_cpu "$loadgen" --concurrency "$c" --seconds "$secs" "$@" 2>&1); then
		echo "compare: $label $mode c=$c failed: $out" >&2
	fi
	out=$(echo "$out" | tr '\n' ' ')
	echo "$label $mode c=$c $out"
	echo "$label $mode $c $out" >>"$results"
}
# The CSRs, the same way for every server: fresh keys (loadgen), or one
# fixed CSR with CSR=fixed.
if [ "${CSR:-fresh}" = fixed ]; then
	csr_args=(--csr "$work/csr.pem")
else
	csr_args=(--key-type "${KEY_TYPE:-p256}")
	if [ -n "${FRESH:-}" ]; then csr_args+=(--fresh "$FRESH"); fi
fi
meshca_args=(--url "$murl" --cacert "$work/state/root.crt" "${csr_args[@]}")
cfssl_args=(--cacert "$work/cfssl/ca.pem" --cert "$work/w/fullchain.pem" --key "$work/w/key.pem"
	"${csr_args[@]}" --path /api/v1/cfssl/sign --csr-field certificate_request --ok-status 200)

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, ${secs}s per run, levels: $levels, rounds: $rounds${PIN:+, pinned}," \
	"CSRs: ${CSR:-fresh}${KEY_TYPE:+ $KEY_TYPE}"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$rounds"); do
	for c in $levels; do
		for mode in $modes; do
			if [ "$mode" = enroll ]; then
				# Enough for a run at ~5,000/s (loadgen stops when they run
				# out; its rate is then over the time they lasted).
				mint_tokens "$(( secs * 5000 < 200 * c ? 200 * c : secs * 5000 ))" "$work/tokens"
				run meshca enroll "$c" "${meshca_args[@]}" --path /v1/enroll \
					--tokens "$work/tokens" --server-pid "$mpid"
			else
				run meshca renew "$c" "${meshca_args[@]}" --cert "$work/w/fullchain.pem" \
					--key "$work/w/key.pem" --server-pid "$mpid"
			fi
			run cfssl-nodb "$mode" "$c" --url "https://127.0.0.1:$p1" "${cfssl_args[@]}" --server-pid "$c1pid"
			run cfssl-db "$mode" "$c" --url "https://127.0.0.1:$p2" "${cfssl_args[@]}" --server-pid "$c2pid"
		done
	done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- summary
/usr/bin/python3 "$here/compare_summary.py" "$results"
