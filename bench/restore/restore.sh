#!/bin/bash
# Times one `gvsadm -R` of N services (one DR server each, the input of
# e2e TestXDPRestore100kServices) into a fresh gvsd, RUNS times.
# Usage: bench/restore/restore.sh [xdp|proxy] [N] [RUNS] [BIN] (root for xdp; the
# rules use -g, which the proxy engine refuses: xdp only for now)
# GVSD_ARGS adds gvsd flags, e.g. GVSD_ARGS=--cpuprofile=/tmp/gvsd.prof.
# SLAB=1 also prints the services map's and svc_chunks' memlock (bpftool)
# and what the -R added to the kmalloc-cg slab caches (the BPF hash maps'
# elements; other activity on the machine counts too).
set -euo pipefail
eng=${1:-xdp} n=${2:-100000} runs=${3:-3} bin=${4:-bin}
bin=$(cd "$bin" && pwd)
tmp=$(mktemp -d)
ns=gvsrestore$$
cleanup() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	if [ "$eng" = xdp ]; then
		"${run[@]}" "$bin/gvsd" --cleanup --bpf-pin-dir "/sys/fs/bpf/$ns" >/dev/null 2>&1 || true
		ip netns del "$ns" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) { a = sprintf("198.19.0.%d:%d", 1 + int(i / 50000), 1000 + i % 50000);
	printf "-A -t %s -s rr\n-a -t %s -r 198.18.0.11:80 -g -w 1\n", a, a } }' >"$tmp/rules"
ulimit -n $((n + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
run=()
export GVS_SOCKET="$tmp/sock"
args=(--socket "$tmp/sock" --state-dir "$tmp/state")
if [ "$eng" = xdp ]; then
	ip netns add "$ns"
	ip -n "$ns" link add d0 type veth peer name p0
	ip -n "$ns" link set d0 up; ip -n "$ns" link set p0 up; ip -n "$ns" link set lo up
	ip -n "$ns" addr add 198.18.0.2/24 dev d0
	ip -n "$ns" neigh add 198.18.0.11 lladdr 02:00:00:00:00:11 dev d0 nud permanent
	run=(nsenter --net=/run/netns/"$ns")
	args+=(--engine xdp --interface d0 --bpf-pin-dir "/sys/fs/bpf/$ns" --max-conns 65536)
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
else
	args+=(--engine proxy)
fi
# slab: name, objects in use, object size of the kmalloc-cg caches.
slab() { awk '/^kmalloc-cg-/ { print $1, $2, $4 }' /proc/slabinfo | sort; }
for r in $(seq "$runs"); do
	rm -rf "$tmp/state"
	"${run[@]}" "$bin/gvsd" "${args[@]}" ${GVSD_ARGS:-} 2>"$tmp/log" &
	pid=$!
	for _ in $(seq 100); do [ -S "$tmp/sock" ] && break; sleep 0.1; done
	[ -n "${SLAB:-}" ] && slab0=$(slab)
	s=$(date +%s.%N)
	"${run[@]}" "$bin/gvsadm" -R <"$tmp/rules" || { tail "$tmp/log"; exit 1; }
	e=$(date +%s.%N)
	if [ -n "${SLAB:-}" ]; then
		for m in services svc_chunks; do
			[ -e "/sys/fs/bpf/$ns/$m" ] && echo "$m memlock: $(bpftool map show pinned "/sys/fs/bpf/$ns/$m" | grep -o 'memlock [0-9]*B')"
		done
	fi
	[ -n "${SLAB:-}" ] && echo "slab added: $(join <(echo "$slab0") <(slab) | awk '{ d = ($3 - $2) * $4; t += d; printf "%s %+.1f MiB, ", $1, d / 1048576 } END { printf "total %+.1f MiB\n", t / 1048576 }')"
	got=$("${run[@]}" "$bin/gvsadm" -S -n | grep -c '^-A' || true)
	echo "$eng run $r: $n services applied in $(echo "$e - $s" | bc) s (listed $got)"
	kill -INT "$pid"; wait "$pid" || true; pid=
	[ "$eng" = xdp ] && "${run[@]}" "$bin/gvsd" --cleanup --bpf-pin-dir "/sys/fs/bpf/$ns" >/dev/null 2>&1
	rm -f "$tmp/sock"
done
