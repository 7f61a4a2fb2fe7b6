#!/usr/bin/env bash
# Install meshca's build and test dependencies from Debian 12 packages.
# Idempotent: only packages that are missing are installed. Needs root (or sudo).
#   deploy/install-deps.sh          build + run dependencies
#   deploy/install-deps.sh --test   also the tools the test suite drives
set -euo pipefail

build_pkgs=(
	build-essential pkg-config meson ninja-build
	libgnutls28-dev libsqlite3-dev libmicrohttpd-dev libjansson-dev
	libcurl4-gnutls-dev libtasn1-6-dev libtasn1-bin
	libsystemd-dev
	gnutls-bin openssl ca-certificates curl
)
test_pkgs=(
	libcmocka-dev valgrind
	clang libclang-rt-14-dev
	python3 python3-pytest python3-cryptography python3-requests
	iproute2 util-linux procps
	e2fsprogs
	mandoc groff-base
	prometheus python3-yaml shellcheck
	softhsm2 p11-kit
)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
	want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#want[@]} packages present"
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

# The tests start their own Prometheus on loopback (test_monitoring.py): a
# server the package just enabled would listen on *:9090 for nothing.
for p in "${missing[@]}"; do
	if [ "$p" = prometheus ] && [ -d /run/systemd/system ]; then
		$sudo systemctl disable --now prometheus.service || true
		echo "install-deps: stopped and disabled prometheus.service (the tests run their own)"
	fi
done
