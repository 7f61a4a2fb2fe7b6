#!/bin/sh
# Entrypoint of the meshca container image (deploy/container/Containerfile).
#
#   meshcad [ARGS...]   (default) on first start with an empty state
#                       directory, create the CA with `meshca init`, then
#                       exec meshcad on it
#   meshca ARGS...      the CLI (agent, enroll, admin commands)
#   anything else       exec'd as is
#
# Environment:
#   MESHCA_STATE_DIR               state directory (default /var/lib/meshca)
#   MESHCA_ROOT_PASSPHRASE_FILE    root key passphrase for `meshca init`, first
#                                  line (default /run/secrets/meshca-root-passphrase)
#   MESHCA_TRUST_DOMAIN            trust domain (default mesh.internal)
#   MESHCA_LISTEN                  meshcad address (default 0.0.0.0:8443)
#   MESHCA_SERVER_NAMES            DNS names of meshcad's certificate besides
#                                  localhost, blank-separated (e.g. the service name)
#   MESHCA_METRICS_LISTEN          sets metrics_listen at init (default: unset, off)
#   MESHCA_MESHCA, MESHCA_MESHCAD  the binaries (default: meshca, meshcad on PATH)
set -eu

state=${MESHCA_STATE_DIR:-/var/lib/meshca}
conf=$state/meshca.conf
meshca=${MESHCA_MESHCA:-meshca}
meshcad=${MESHCA_MESHCAD:-meshcad}

die() {
	echo "meshca-entrypoint: $*" >&2
	exit 1
}

# Creates the CA in the empty state directory.
init_ca() {
	pass=${MESHCA_ROOT_PASSPHRASE_FILE:-/run/secrets/meshca-root-passphrase}
	[ -d "$state" ] || die "state directory $state does not exist (mount a volume there)"
	if [ -n "$(ls -A "$state")" ]; then
		die "$state holds files but no meshca.conf: refusing to initialise over them"
	fi
	[ -r "$pass" ] || die "no meshca.conf in $state and no readable root key passphrase" \
		"at $pass: provide it as a secret (or MESHCA_ROOT_PASSPHRASE_FILE) for the first start"
	set -- --state-dir "$state" --trust-domain "${MESHCA_TRUST_DOMAIN:-mesh.internal}" \
		--listen "${MESHCA_LISTEN:-0.0.0.0:8443}" --passphrase-file "$pass"
	for name in ${MESHCA_SERVER_NAMES:-}; do
		set -- "$@" --server-name "$name"
	done
	echo "meshca-entrypoint: first start, creating the CA in $state" >&2
	"$meshca" init "$@"
	if [ -n "${MESHCA_METRICS_LISTEN:-}" ]; then
		printf 'metrics_listen = %s\n' "$MESHCA_METRICS_LISTEN" >>"$conf"
	fi
}

if [ "$#" -eq 0 ]; then
	set -- meshcad
fi
case $1 in
meshcad)
	shift
	[ -e "$conf" ] || init_ca
	exec "$meshcad" --config "$conf" "$@"
	;;
meshca)
	shift
	exec "$meshca" "$@"
	;;
*)
	exec "$@"
	;;
esac
