#!/usr/bin/env bash
# meshca quickstart: install dependencies, build, bootstrap a local CA if
# there is none yet, and run meshcad on https://127.0.0.1:8443.
#
#   ./deploy/quickstart.sh            state in ./meshca-state
#   MESHCA_STATE_DIR=/srv/ca ./deploy/quickstart.sh
#
# The root key passphrase comes from $MESHCA_ROOT_PASSPHRASE, else a prompt
# when run on a terminal, else a random one written to
# $MESHCA_STATE_DIR/root-passphrase (mode 0600; move it offline).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=${MESHCA_BUILD_DIR:-build}
state=${MESHCA_STATE_DIR:-$repo/meshca-state}

bash deploy/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" -Dtests=disabled >/dev/null
fi
ninja -C "$build" >/dev/null
meshca="$build/cli/meshca"
meshcad="$build/api/meshcad"

if [ ! -f "$state/meshca.conf" ]; then
	mkdir -p "$state"
	chmod 0700 "$state"
	set -- --state-dir "$state" --trust-domain "${MESHCA_TRUST_DOMAIN:-mesh.internal}"
	if [ -z "${MESHCA_ROOT_PASSPHRASE:-}" ] && ! [ -t 0 ]; then
		umask 077
		head -c 32 /dev/urandom | base64 | tr -d '\n=' > "$state/root-passphrase"
		echo "quickstart: generated the root key passphrase into $state/root-passphrase; move it offline"
		set -- "$@" --passphrase-file "$state/root-passphrase"
	fi
	"$meshca" init "$@"
fi

fp=$(openssl x509 -in "$state/root.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
cat <<MSG

meshca is ready.  Root fingerprint (SHA-256): $fp

In another terminal, try:
  export MESHCA_CONFIG=$state/meshca.conf PATH=$repo/$build/cli:\$PATH
  meshca service add web --dns web.mesh.internal
  meshca token create web > web.token
  meshca enroll --url https://127.0.0.1:8443 --fingerprint $fp --token-file web.token --out ./web
  meshca certs list

Starting meshcad (Ctrl-C stops it)...
MSG
exec "$meshcad" --config "$state/meshca.conf"
