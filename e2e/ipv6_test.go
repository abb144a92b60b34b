package e2e

import (
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// IPv6 on the xdp engine end to end, on one segment (2001:db8::/64, and
// 2001:db8:1::/64 for the NAT servers, whose default route is the
// director): a DR service [2001:db8::1]:80 on rs1 and rs2 (the VIP on
// their lo, /128), a NAT service [2001:db8::1]:8080 on rs3 and rs4, a TUN
// service [2001:db8::1]:81 on rs5 and rs6 (gvs-realserver). Real
// TCP (byte-checked bulk transfers) and UDP through the real gvsd and
// gvsadm; gvsadm -L -n in ipvsadm's IPv6 format.

const vip6 = "2001:db8::1"

func TestXDPIPv6(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	tp := newTopo(t)
	addr6 := func(ns, cidr, dev string) {
		tp.mustRun(ns, "ip", "-6", "addr", "add", cidr, "dev", dev, "nodad")
	}
	noDAD := func(ns string) {
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.eth0.accept_dad=0")
	}
	client := tp.host("client", "198.18.0.1/24")
	noDAD(client)
	addr6(client, "2001:db8::10/64", "eth0")
	dir := tp.host("director", "198.18.0.2/24")
	noDAD(dir)
	tp.napiPeer("director")
	addr6(dir, "2001:db8::2/64", "eth0")
	addr6(dir, vip6+"/128", "eth0")
	addr6(dir, "2001:db8:1::1/64", "eth0")
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.eth0.forwarding=1")
	for i, name := range []string{"rs1", "rs2"} {
		ns := tp.host(name, "198.18.0.1"+string(rune('1'+i))+"/24")
		noDAD(ns)
		addr6(ns, "2001:db8::1"+string(rune('1'+i))+"/64", "eth0")
		addr6(ns, vip6+"/128", "lo") // DR: lo's addresses are not announced on eth0
		tp.serve(ns, "["+vip6+"]:80", name)
		tp.serve(ns, "["+vip6+"]:443", name) // the fwmark service's (below)
	}
	for i, name := range []string{"rs3", "rs4"} {
		ns := tp.host(name, "198.18.0.2"+string(rune('3'+i))+"/24")
		noDAD(ns)
		addr6(ns, "2001:db8:1::1"+string(rune('3'+i))+"/64", "eth0")
		tp.mustRun(ns, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
		tp.serve(ns, "[::]:8080", name)
	}
	// TUN: rs5 and rs6 take IPv6-in-IPv6 with gvs-realserver (the VIP on
	// lo, its BPF decapsulation on eth0).
	bin := binaries(t)
	for i, name := range []string{"rs5", "rs6"} {
		ns := tp.host(name, "198.18.0.3"+string(rune('5'+i))+"/24")
		noDAD(ns)
		addr6(ns, "2001:db8::3"+string(rune('5'+i))+"/64", "eth0")
		state := t.TempDir()
		pins := "/sys/fs/bpf/gvst-rs-" + filepath.Base(ns)
		t.Cleanup(func() {
			tp.run("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "down", "-q", "--state-dir", state)...) // down takes no --pin-dir: the state file has it
			os.RemoveAll(pins)
		})
		tp.mustRun("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "up", "-q", "--vip", vip6,
			"--state-dir", state, "--tunnel", "--interface", "eth0", "--pin-dir", pins)...)
		tp.serve(ns, "["+vip6+"]:81", name)
	}
	d, _ := tp.startXDPDirector(dir)
	for name := range tp.hosts {
		if name != "director" {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	time.Sleep(300 * time.Millisecond)

	v := "[" + vip6 + "]"
	for _, proto := range []string{"-t", "-u"} {
		d.must("-A", proto, v+":80", "-s", "rr")
		d.must("-a", proto, v+":80", "-r", "[2001:db8::11]:80", "-g")
		d.must("-a", proto, v+":80", "-r", "[2001:db8::12]:80", "-g")
		d.must("-A", proto, v+":8080", "-s", "rr")
		d.must("-a", proto, v+":8080", "-r", "[2001:db8:1::13]:8080", "-m")
		d.must("-a", proto, v+":8080", "-r", "[2001:db8:1::14]:8080", "-m")
		d.must("-A", proto, v+":81", "-s", "rr")
		d.must("-a", proto, v+":81", "-r", "[2001:db8::35]:81", "-i")
		d.must("-a", proto, v+":81", "-r", "[2001:db8::36]:81", "-i")
	}
	// An IPv4 server by DR: refused, as IPVS refuses it (tunnels between
	// the families are tun46_test.go's).
	if _, errOut, code := d.adm("", "-a", "-t", v+":80", "-r", "198.18.0.11", "-g"); code == 0 {
		t.Errorf("IPv4 DR server of an IPv6 service: exit %d %q", code, errOut)
	}

	// DR: rr from the newest server; replies bypass the director.
	if got := strings.Join(tp.hellos(d, client, v+":80", 4), " "); got != "rs2 rs1 rs2 rs1" {
		t.Errorf("DR TCP spread %q", got)
	}
	// NAT: the same, replies translated back through the director.
	if got := strings.Join(tp.hellos(d, client, v+":8080", 4), " "); got != "rs4 rs3 rs4 rs3" {
		t.Errorf("NAT TCP spread %q", got)
	}
	// TUN: encapsulated, replies straight from the servers.
	if got := strings.Join(tp.hellos(d, client, v+":81", 4), " "); got != "rs6 rs5 rs6 rs5" {
		t.Errorf("TUN TCP spread %q", got)
	}
	for i, c := range []struct{ port, want string }{{"80", "rs2:u0"}, {"80", "rs1:u1"}, {"8080", "rs4:u2"}, {"8080", "rs3:u3"},
		{"81", "rs6:u4"}, {"81", "rs5:u5"}} {
		out, err := tp.role(client, "udp", v+":"+c.port, "u"+string(rune('0'+i)))
		if err != nil || strings.TrimSpace(out) != c.want {
			t.Errorf("UDP %d to port %s: %q %v, want %s", i, c.port, out, err, c.want)
		}
	}
	// Byte-exact transfers both ways of the method (4 MB each: many full
	// segments, the NAT replies translated one by one).
	for _, port := range []string{"80", "8080", "81"} {
		if out, err := tp.role(client, "bulk", v+":"+port, "4000000"); err != nil {
			t.Errorf("bulk transfer through port %s: %v %s\n%s", port, err, out, d.log)
		}
	}

	// ipvsadm's IPv6 format, byte for byte: 4 TCP connections and a
	// bulk transfer per service (rr: 2 and 3), 2 datagrams (1 and 1), all
	// finished (inactive) and still in the table.
	want := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  [2001:db8::1]:80 rr
  -> [2001:db8::11]:80            Route   1      0          2         
  -> [2001:db8::12]:80            Route   1      0          3         
TCP  [2001:db8::1]:81 rr
  -> [2001:db8::35]:81            Tunnel  1      0          2         
  -> [2001:db8::36]:81            Tunnel  1      0          3         
TCP  [2001:db8::1]:8080 rr
  -> [2001:db8:1::13]:8080        Masq    1      0          2         
  -> [2001:db8:1::14]:8080        Masq    1      0          3         
UDP  [2001:db8::1]:80 rr
  -> [2001:db8::11]:80            Route   1      0          1         
  -> [2001:db8::12]:80            Route   1      0          1         
UDP  [2001:db8::1]:81 rr
  -> [2001:db8::35]:81            Tunnel  1      0          1         
  -> [2001:db8::36]:81            Tunnel  1      0          1         
UDP  [2001:db8::1]:8080 rr
  -> [2001:db8:1::13]:8080        Masq    1      0          1         
  -> [2001:db8:1::14]:8080        Masq    1      0          1         
`
	if list := d.must("-L", "-n"); list != want {
		t.Errorf("gvsadm -L -n:\n%s\nwant:\n%s", list, want)
	}
	stats := fields(d.must("-L", "-n", "--stats", "--exact"))
	// UDP: 2 datagrams of 2 bytes each way of the NAT service: 2 x 50
	// bytes at the IP level (IPv6 40 + UDP 8 + 2), the answers
	// "rsN:uK" 6 bytes: 2 x 54.
	if !strings.Contains(stats, "UDP [2001:db8::1]:8080 2 2 2 100 108") {
		t.Errorf("NAT UDP stats:\n%s", stats)
	}
	if !strings.Contains(stats, "UDP [2001:db8::1]:80 2 2 0 100 0") {
		t.Errorf("DR UDP stats:\n%s", stats)
	}
	conns := d.must("-L", "-n", "-c")
	if !strings.Contains(conns, "[2001:db8::10]:") || strings.Count(conns, "\nTCP ") < 8 {
		t.Errorf("connection table:\n%s", conns)
	}
	// Datagrams beyond the MTU cross in fragments: each later fragment
	// follows its first (the NAT reply's translated too).
	for _, c := range []struct{ port, want string }{{"8080", "rs4"}, {"80", "rs2"}} {
		if out, err := tp.role(client, "udpbig", v+":"+c.port, "4000"); err != nil || strings.TrimSpace(out) != c.want {
			t.Errorf("fragmented UDP to port %s: %q %v, want %s", c.port, out, err, c.want)
		}
	}
	// TUN: a 1500-byte fragment does not fit with the outer header: the
	// director answers packet too big (MTU 1460) from the VIP, the
	// client's socket reports it, and its next datagram fits.
	if out, err := tp.role(client, "udpbig", v+":81", "4000"); err == nil || !strings.Contains(out, "message too long") {
		t.Errorf("fragmented UDP through the tunnel before packet too big: %q %v", out, err)
	}
	if out, err := tp.role(client, "udpbig", v+":81", "4000"); err != nil || strings.TrimSpace(out) != "rs5" {
		t.Errorf("fragmented UDP through the tunnel after packet too big: %q %v", out, err)
	}
	if mtu := tp.mustRun(client, "ip", "-6", "route", "get", vip6); !strings.Contains(mtu, "mtu 1460") {
		t.Errorf("the client's path MTU to the VIP: %s", mtu)
	}
	ev := d.events()
	if ev["ipv6_ext"] != 0 || ev["malformed"] != 0 || ev["no_route"] != 0 || ev["frag_unknown"] != 0 || ev["frag"] < 6 ||
		ev["frag_needed"] < 1 {
		t.Errorf("events %v", ev)
	}

	// An IPv6 firewall-mark service: the operator's own rule marks TCP to
	// the VIP's port 443; the first packet comes back from netfilter
	// through gvs-fwm0/gvs-fwm1, persistence keeps the client on one
	// server, a mark without a service is dropped and counted.
	if _, err := exec.LookPath("nft"); err == nil {
		tp.mustRun(dir, "nft", "add", "table", "inet", "op")
		tp.mustRun(dir, "nft", "add", "chain", "inet", "op", "pre", "{ type filter hook prerouting priority mangle; }")
		tp.mustRun(dir, "nft", "add", "rule", "inet", "op", "pre", "ip6", "daddr", vip6, "tcp", "dport", "443", "meta", "mark", "set", "6")
		d.must("-A", "-f", "6", "-6", "-s", "rr", "-p", "60")
		d.must("-a", "-f", "6", "-6", "-r", "2001:db8::11", "-g")
		d.must("-a", "-f", "6", "-6", "-r", "2001:db8::12", "-g")
		got := tp.hellos(d, client, v+":443", 3)
		if got[0] != got[1] || got[1] != got[2] {
			t.Errorf("IPv6 fwmark service, persistent: %v", got)
		}
		if list := fields(d.must("-L", "-n")); !strings.Contains(list, "FWM 6 IPv6 rr persistent 60") {
			t.Errorf("listing:\n%s", d.must("-L", "-n"))
		}
		if s := fields(d.must("-L", "-n", "--stats")); !strings.Contains(s, "FWM 6 IPv6 3 ") {
			t.Errorf("stats:\n%s", s)
		}
		d.must("-D", "-f", "6", "-6")
		if out, err := tp.run(dir, "ip", "link", "show", "gvs-fwm0"); err == nil {
			t.Errorf("gvs-fwm0 left after the last fwmark service went:\n%s", out)
		}
	}
}

// IPv6 FULLNAT with a pool of two local addresses: a byte-checked
// transfer across a gvsd restart (the pinned maps, the progs map
// included, carry it), then 1,000 connections at once, reset, whose
// entries and reply entries (their local ports) gvsd's sweep removes,
// leaving the servers' counts at 0.
func TestXDPIPv6FullNATRestart(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	tp := newTopo(t)
	addr6 := func(ns, cidr string) {
		tp.mustRun(ns, "ip", "-6", "addr", "add", cidr, "dev", "eth0", "nodad")
	}
	client := tp.host("client", "198.18.0.1/24")
	addr6(client, "2001:db8::10/64")
	dir := tp.host("director", "198.18.0.2/24")
	tp.napiPeer("director")
	addr6(dir, "2001:db8::2/64")
	addr6(dir, vip6+"/128")
	addr6(dir, "2001:db8:1::1/64")
	addr6(dir, "2001:db8:1::100/128") // the pool: the servers reach it on-link
	addr6(dir, "2001:db8:1::101/128")
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.eth0.forwarding=1")
	for i, name := range []string{"rs3", "rs4"} {
		ns := tp.host(name, "198.18.0.2"+string(rune('3'+i))+"/24")
		addr6(ns, "2001:db8:1::1"+string(rune('3'+i))+"/64") // no route back: FULLNAT
		tp.serve(ns, "[::]:8080", name)
	}
	d, pinDir := tp.startXDPDirector(dir)
	for name := range tp.hosts {
		if name != "director" {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	time.Sleep(300 * time.Millisecond)
	nt := &natTopo{topo: tp, d: d, dir: dir, pinDir: pinDir}

	v := "[" + vip6 + "]"
	for _, port := range []string{"80", "82"} {
		d.must("-A", "-t", v+":"+port, "-s", "rr")
		d.must("-P", "-t", v+":"+port, "-z", "2001:db8:1::100")
		d.must("-P", "-t", v+":"+port, "-z", "2001:db8:1::101")
		d.must("-a", "-t", v+":"+port, "-r", "[2001:db8:1::13]:8080", "--fullnat")
		d.must("-a", "-t", v+":"+port, "-r", "[2001:db8:1::14]:8080", "--fullnat")
	}
	if got := strings.Join(tp.hellos(d, client, v+":80", 4), " "); got != "rs4 rs3 rs4 rs3" {
		t.Errorf("FULLNAT TCP spread %q", got)
	}
	if la := d.must("-G", "-t", v+":80"); !strings.Contains(la, "2001:db8:1::100") || !strings.Contains(la, "2001:db8:1::101") {
		t.Errorf("local addresses:\n%s", la)
	}
	// The servers saw the pool's addresses (FULLNAT): the reply entries
	// of the 4 connections are to them.
	if c, r := nt.serviceEntries(80); c != 4 || r != 4 {
		t.Errorf("%d connections, %d reply entries after 4", c, r)
	}
	rc, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "rconns"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var rk bpf.ConnKey
	var rv bpf.Reply
	for it := rc.Iterate(); it.Next(&rk, &rv); {
		b := make([]byte, 16)
		for i, w := range rk.Vaddr {
			binary.LittleEndian.PutUint32(b[4*i:], w)
		}
		if a, _ := netip.AddrFromSlice(b); rk.Af != 6 || (a.String() != "2001:db8:1::100" && a.String() != "2001:db8:1::101") {
			t.Errorf("reply entry to %v (af %d), not a pool address", a, rk.Af)
		}
	}
	rc.Close()

	const size = "100000000"
	transfer := tp.bulk(client, v+":80", size)
	time.Sleep(300 * time.Millisecond)
	d.stop()
	d.start()
	if out, err := transfer(); err != nil || strings.TrimSpace(out) != size {
		t.Fatalf("bulk transfer across a restart: %q %v\n%s", out, err, d.log)
	}

	out, err := tp.role(client, "many", v+":82", "1000")
	if err != nil {
		t.Fatalf("1,000 connections: %v\n%s", err, out)
	}
	if c, r := nt.serviceEntries(82); c != 1000 || r != 1000 {
		t.Errorf("%d connections, %d reply entries with 1,000 just closed", c, r)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		c, r := nt.serviceEntries(82)
		if c == 0 && r == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections and %d reply entries left after expiry\n%s", c, r, d.must("-L", "-n"))
		}
		time.Sleep(time.Second)
	}
	list := fields(d.must("-L", "-n", "-t", v+":82"))
	for _, rs := range []string{"[2001:db8:1::13]:8080", "[2001:db8:1::14]:8080"} {
		if !strings.Contains(list, "-> "+rs+" FullNat 1 0 0") {
			t.Errorf("server %s not back to 0 active, 0 inactive:\n%s", rs, list)
		}
	}
	if ev := d.events(); ev["no_lport"] != 0 || ev["no_route"] != 0 || ev["ipv6_ext"] != 0 {
		t.Errorf("events %v", ev)
	}
}
