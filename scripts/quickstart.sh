#!/usr/bin/env bash
# Quick start, no root needed: build gvs, start two demo real servers and
# gvsd with the proxy engine, balance real TCP and UDP traffic through it
# and show it with gvsadm. gvsd keeps running until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

make -s build
go build -o bin/ ./examples/backend

work=$(mktemp -d /tmp/gvs-quickstart.XXXXXX)
export GVS_SOCKET=$work/gvsd.sock
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

bin/backend -listen 127.0.0.1:8081 -name rs1 & pids+=($!)
bin/backend -listen 127.0.0.1:8082 -name rs2 & pids+=($!)
bin/gvsd --engine proxy --state-dir "$work/state" 2>"$work/gvsd.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$GVS_SOCKET" ] && break; sleep 0.1; done

set -x
bin/gvsadm -A -t 127.0.0.1:8080 -s wrr
bin/gvsadm -a -t 127.0.0.1:8080 -r 127.0.0.1:8081 -m -w 1
bin/gvsadm -a -t 127.0.0.1:8080 -r 127.0.0.1:8082 -m -w 2
bin/gvsadm -A -u 127.0.0.1:8053 -s rr
bin/gvsadm -a -u 127.0.0.1:8053 -r 127.0.0.1:8081 -m
bin/gvsadm -a -u 127.0.0.1:8053 -r 127.0.0.1:8082 -m
{ set +x; } 2>/dev/null

echo "--- 6 TCP connections to 127.0.0.1:8080:"
for _ in 1 2 3 4 5 6; do
	exec 3<>/dev/tcp/127.0.0.1/8080
	head -n1 <&3
	exec 3<&-
done
echo "--- 4 UDP datagrams to 127.0.0.1:8053:"
for i in 1 2 3 4; do
	exec 3<>/dev/udp/127.0.0.1/8053
	echo "ping $i" >&3
	timeout 1 head -n1 <&3 || true
	exec 3<&-
done
sleep 0.3
set -x
bin/gvsadm -L -n
bin/gvsadm -L -n --stats
bin/gvsadm -L -n -c
{ set +x; } 2>/dev/null
echo "gvsd is running (socket $GVS_SOCKET, log $work/gvsd.log); try: GVS_SOCKET=$GVS_SOCKET bin/gvsadm -Ln --rate"
echo "Ctrl-C to stop."
wait
