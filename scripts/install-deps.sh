#!/usr/bin/env bash
# Install what gvs's tests need on a fresh Debian machine. Idempotent: run it
# as often as you like. Go itself is expected at /usr/local/go or on PATH.
set -euo pipefail

# Debian packages the tests use. Later work adds e.g. socat, ethtool,
# clang-19, libbpf-dev, netsniff-ng.
PACKAGES=(
	iproute2
)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:${PATH}"

missing=()
for pkg in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: system packages present: ${PACKAGES[*]}"
elif [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root, skipping apt; missing: ${missing[*]}" >&2
elif ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: no apt-get, install by hand: ${missing[*]}" >&2
else
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
	echo "install-deps: go not found (expected /usr/local/go/bin/go)" >&2
	exit 1
fi
go mod download
echo "install-deps: done"
