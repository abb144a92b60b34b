#!/usr/bin/env bash
# Install what gvs's tests need on a fresh Debian machine. Idempotent: run it
# as often as you like. Go itself is expected at /usr/local/go or on PATH.
#
#   scripts/install-deps.sh          what `make test` needs
#   scripts/install-deps.sh --bench  also the peers `make bench` measures
#                                    gvsd against (HAProxy, nginx stream,
#                                    trafgen, nftables)
set -euo pipefail

# Debian packages the tests use: iproute2, ethtool and socat for the
# network-namespace tests, keepalived for the VRRP interop tests (run as
# the tests' own processes, never as a service), the openstack CLI with
# its load-balancer plugin for the LBaaS test, clang-19 and libbpf-dev to
# rebuild the BPF objects (make generate), bpftool to inspect them;
# prometheus for promtool (the metrics tests check the scrape, the alerting
# rules and their unit test; the server is never started) and chromium
# (headless, the status page test); for the packaging tests: systemd for
# systemd-analyze verify (the units; systemd is not started), man-db and
# groff-base to render the man pages, debootstrap for the Debian 12 root
# the package test installs into (made once, about a minute, and cached in
# /var/cache/gvs-test); frr for the BGP scale-out tests (zebra and bgpd
# run as the tests' own processes with their own configs, never as a
# service).
PACKAGES=(
	iproute2
	ethtool
	socat
	netcat-openbsd
	iputils-ping
	keepalived
	python3-openstackclient
	python3-octaviaclient
	clang-19
	llvm-19
	libbpf-dev
	bpftool
	prometheus
	chromium
	systemd
	man-db
	groff-base
	frr
	debootstrap
)

# Debian packages only the benchmarks use: the proxy peers
# (bench/proxybench; they run as the benchmark's own processes with its own
# configs, never as services), trafgen (netsniff-ng) and nftables for the
# kernel-path peers of bench/xdpbench.
BENCH_PACKAGES=(
	haproxy
	nginx
	libnginx-mod-stream
	netsniff-ng
	nftables
)

bench=0
for arg in "$@"; do
	case "$arg" in
	--bench) bench=1 ;;
	-h | --help)
		sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "install-deps: unknown argument: $arg (try --bench)" >&2
		exit 2
		;;
	esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:${PATH}"

wanted=("${PACKAGES[@]}")
if [ "$bench" -eq 1 ]; then
	wanted+=("${BENCH_PACKAGES[@]}")
fi

missing=()
for pkg in "${wanted[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done

# stop_services stops and disables the named system services that packages
# install: the benchmark's peers (no nginx or HAProxy left holding ports: the
# benchmark starts its own instances) and prometheus (the tests only use
# promtool; no server scraping at boot).
stop_services() {
	local svc
	for svc in "$@"; do
		if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$svc" ]; then
			"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1 && [ -e "/etc/init.d/$svc" ]; then
			update-rc.d "$svc" disable >/dev/null 2>&1 || true
		fi
	done
}

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: system packages present: ${wanted[*]}"
elif [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root, skipping apt; missing: ${missing[*]}" >&2
elif ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: no apt-get, install by hand: ${missing[*]}" >&2
else
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# policy-rc.d exit 101 tells the packages' maintainer scripts not to
	# start their services (nginx and haproxy otherwise start on install).
	policy=/usr/sbin/policy-rc.d
	own_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	trap '[ "$own_policy" -eq 1 ] && rm -f "$policy"' EXIT
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$(id -u)" -eq 0 ]; then
	stop_services prometheus frr
fi
if [ "$bench" -eq 1 ] && [ "$(id -u)" -eq 0 ]; then
	stop_services haproxy nginx
fi

if ! command -v go >/dev/null 2>&1; then
	echo "install-deps: go not found (expected /usr/local/go/bin/go)" >&2
	exit 1
fi
go mod download
echo "install-deps: done"
