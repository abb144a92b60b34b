package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strings"

	"gvs/bench/pktgen"
)

// The benchmark's network, three namespaces:
//
//	gen: g0 198.18.0.1/24  <->  dir: d0 198.18.0.2/24 (+ the VIP)
//	                            dir: d1 198.19.0.1/16  <->  sink: s0 198.19.0.2/16
//	gen: g1 198.18.2.1/24  <->  sink: s1 198.18.2.2/24   (no director: the baseline)
//
// Real servers are 198.19.0.2 (the sink itself) and 198.19.1.0 and up,
// permanent neighbours of the director at s0's MAC, so a thousand servers
// cost no ARP. Every frame that reaches s0, s1 or g0 is counted there by
// the sink program and dropped.
//
// IPv6 on the same links (the IPv6 rows): g0 2001:db8::1/64, d0
// 2001:db8::2/64 + VIP 2001:db8::100, d1 2001:db8:1::1/64, s0
// 2001:db8:1::2/64 (the server), g1 2001:db8:2::1/64, s1 2001:db8:2::2/64;
// client and server permanent neighbours of the director, no DAD.
const (
	vip       = "198.18.0.100"
	clientIP  = "198.18.0.1"
	sinkIP    = "198.19.0.2"
	dirSrvIP  = "198.19.0.1" // the director's address toward the servers
	serverNet = "198.19.1.0" // first of the extra servers' addresses

	vip6      = "2001:db8::100"
	client6   = "2001:db8::1"
	sink6     = "2001:db8:1::2"
	base6Src  = "2001:db8:2::1" // g1 and s1: the IPv6 baseline
	base6Sink = "2001:db8:2::2"
)

type topo struct {
	prefix         string
	gen, dir, sink string // namespace names
	macs           map[string]net.HardwareAddr
	ifindex        map[string]int
	destroyed      bool
}

func run(args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func must(args ...string) string {
	out, err := run(args...)
	if err != nil {
		fatal(err)
	}
	return out
}

func in(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

func newTopo(servers int) *topo {
	b := make([]byte, 3)
	rand.Read(b)
	p := "gvsb" + hex.EncodeToString(b)
	t := &topo{prefix: p, gen: p + "-gen", dir: p + "-dir", sink: p + "-sink",
		macs: map[string]net.HardwareAddr{}, ifindex: map[string]int{}}
	cleanups = append(cleanups, t.destroy)
	for _, ns := range []string{t.gen, t.dir, t.sink} {
		must("ip", "netns", "add", ns)
		must(in(ns, "ip", "link", "set", "lo", "up")...)
		// IPv6 addresses are usable at once (no duplicate detection).
		must(in(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")...)
	}
	pair := func(a, nsA, b, nsB string) {
		must("ip", "link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB)
		for _, x := range [][2]string{{a, nsA}, {b, nsB}} {
			must(in(x[1], "ip", "link", "set", x[0], "up")...)
			// Checksums are in the frames already; a real NIC needs no
			// offload settings.
			must(in(x[1], "ethtool", "-K", x[0], "tx", "off")...)
		}
	}
	pair("g0", t.gen, "d0", t.dir)
	pair("d1", t.dir, "s0", t.sink)
	pair("g1", t.gen, "s1", t.sink)
	addr := func(ns, dev, cidr string) { must(in(ns, "ip", "addr", "add", cidr, "dev", dev)...) }
	addr(t.gen, "g0", clientIP+"/24")
	addr(t.dir, "d0", "198.18.0.2/24")
	addr(t.dir, "d0", vip+"/32")
	addr(t.dir, "d1", dirSrvIP+"/16")
	addr(t.sink, "s0", sinkIP+"/16")
	addr(t.gen, "g1", "198.18.2.1/24")
	addr(t.sink, "s1", "198.18.2.2/24")
	addr6 := func(ns, dev, cidr string) { must(in(ns, "ip", "-6", "addr", "add", cidr, "dev", dev, "nodad")...) }
	addr6(t.gen, "g0", client6+"/64")
	addr6(t.dir, "d0", "2001:db8::2/64")
	addr6(t.dir, "d0", vip6+"/128")
	addr6(t.dir, "d1", "2001:db8:1::1/64")
	addr6(t.sink, "s0", sink6+"/64")
	addr6(t.gen, "g1", base6Src+"/64")
	addr6(t.sink, "s1", base6Sink+"/64")
	must(in(t.dir, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.d0.forwarding=1",
		"net.ipv6.conf.d1.forwarding=1")...)
	must(in(t.dir, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.forwarding=1",
		"net.ipv4.conf.d0.forwarding=1", "net.ipv4.conf.d1.forwarding=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.d0.rp_filter=0", "net.ipv4.conf.d1.rp_filter=0")...)
	for _, x := range [][2]string{{"g0", t.gen}, {"g1", t.gen}, {"d0", t.dir}, {"d1", t.dir}, {"s0", t.sink}, {"s1", t.sink}} {
		l := must(in(x[1], "cat", "/sys/class/net/"+x[0]+"/address")...)
		mac, err := net.ParseMAC(strings.TrimSpace(l))
		if err != nil {
			fatal(err)
		}
		t.macs[x[0]] = mac
		var idx int
		fmt.Sscan(must(in(x[1], "cat", "/sys/class/net/"+x[0]+"/ifindex")...), &idx)
		t.ifindex[x[0]] = idx
	}
	// Permanent neighbours: the director never waits for ARP, whoever
	// forwards (gvs, the kernel, nftables).
	var batch strings.Builder
	fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev d0 nud permanent\n", clientIP, t.macs["g0"])
	fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev d1 nud permanent\n", sinkIP, t.macs["s0"])
	fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev d0 nud permanent\n", client6, t.macs["g0"])
	fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev d1 nud permanent\n", sink6, t.macs["s0"])
	for i := range servers {
		fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev d1 nud permanent\n", serverAddr(i), t.macs["s0"])
	}
	cmd := exec.Command("ip", "netns", "exec", t.dir, "ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		fatal(fmt.Errorf("neighbours: %v: %s", err, out))
	}
	must(in(t.gen, "ip", "neigh", "replace", "198.18.2.2", "lladdr", t.macs["s1"].String(), "dev", "g1", "nud", "permanent")...)
	return t
}

// serverAddr is the i-th extra real server (198.19.1.0 + i).
func serverAddr(i int) string {
	base := net.ParseIP(serverNet).To4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	n += uint32(i)
	return fmt.Sprintf("%d.%d.%d.%d", n>>24, byte(n>>16), byte(n>>8), byte(n))
}

func (t *topo) destroy() {
	if t.destroyed {
		return
	}
	t.destroyed = true
	for _, ns := range []string{t.gen, t.dir, t.sink} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// inNS runs f on an OS thread inside namespace name: BPF_PROG_RUN's
// ingress device and XDP attachment resolve interfaces there.
func inNS(name string, f func() error) error { return pktgen.InNetNS("/run/netns/"+name, f) }
