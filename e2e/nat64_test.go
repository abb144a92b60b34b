package e2e

import (
	"encoding/binary"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// TestXDPNAT64 runs NAT64 FULLNAT through the real gvsd and gvsadm: an
// IPv6 client reaches IPv4-only servers through an IPv6 VIP. The servers
// see the pool's IPv4 local address (no route to the client's network,
// none needed); the director translates both ways (bpf/nat64.h): rr
// spread, UDP, a 4 MB byte-checked transfer, the IPv4 reply entries,
// gvsadm -L -n byte for byte, --stats and -L -n -c.
func TestXDPNAT64(t *testing.T) {
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
	addr6(dir, "2001:db8:1::100/128") // an IPv6 pool address: unused by IPv4 servers
	tp.mustRun(dir, "ip", "addr", "add", "198.18.0.100/32", "dev", "eth0")
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.eth0.forwarding=1",
		"net.ipv4.ip_forward=1", "net.ipv4.conf.eth0.forwarding=1")
	for i, name := range []string{"rs3", "rs4"} {
		// IPv4 only, no route beyond the /24: FULLNAT.
		ns := tp.host(name, "198.18.0.2"+string(rune('3'+i))+"/24")
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
		tp.serve(ns, "0.0.0.0:8080", name)
	}
	d, pinDir := tp.startXDPDirector(dir)
	for name := range tp.hosts {
		if name != "director" {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	time.Sleep(300 * time.Millisecond)

	v := "[" + vip6 + "]"
	for _, svc := range []string{"-t " + v + ":80", "-u " + v + ":53"} {
		s := strings.Fields(svc)
		d.must("-A", s[0], s[1], "-s", "rr")
		d.must("-P", s[0], s[1], "-z", "2001:db8:1::100")
		d.must("-P", s[0], s[1], "-z", "198.18.0.100")
		d.must("-a", s[0], s[1], "-r", "198.18.0.23:8080", "--fullnat")
		d.must("-a", s[0], s[1], "-r", "198.18.0.24:8080", "--fullnat")
	}
	// NAT and DR keep the service's family, as IPVS has it (ipvsadm's
	// message).
	for _, m := range []string{"-m", "-g"} {
		if _, stderr, code := d.adm("", "-a", "-t", v+":80", "-r", "198.18.0.25:8080", m); code != 2 ||
			!strings.Contains(stderr, "Different address family is allowed only for tunneling servers") {
			t.Errorf("an IPv4 %s server of an IPv6 service: exit %d, %q", m, code, stderr)
		}
	}
	if la := d.must("-G", "-t", v+":80"); !strings.Contains(la, "2001:db8:1::100") || !strings.Contains(la, "198.18.0.100") {
		t.Errorf("local addresses:\n%s", la)
	}

	if got := strings.Join(tp.hellos(d, client, v+":80", 4), " "); got != "rs4 rs3 rs4 rs3" {
		t.Errorf("NAT64 TCP spread %q", got)
	}
	for i, want := range []string{"rs4:u0", "rs3:u1"} {
		out, err := tp.role(client, "udp", v+":53", "u"+string(rune('0'+i)))
		if err != nil || strings.TrimSpace(out) != want {
			t.Errorf("UDP %d: %q %v, want %s", i, out, err, want)
		}
	}
	// The reply entries are IPv4, to the pool's IPv4 address.
	rc, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "rconns"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var rk bpf.ConnKey
	var rv bpf.Reply
	for it := rc.Iterate(); it.Next(&rk, &rv); n++ {
		fk := rv.Fk
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], rk.Vaddr[0])
		if a := netip.AddrFrom4(b); rk.Af != 4 || fk.Af != 6 || a.String() != "198.18.0.100" {
			t.Errorf("reply entry to %v (af %d, connection af %d)", a, rk.Af, fk.Af)
		}
	}
	rc.Close()
	if n != 6 {
		t.Errorf("%d reply entries, want 6 (4 TCP, 2 UDP)", n)
	}

	// 4 MB byte-checked (full-sized segments both ways).
	if out, err := tp.role(client, "bulk", v+":80", "4000000"); err != nil {
		t.Errorf("bulk transfer: %v %s\n%s", err, out, d.log)
	}

	want := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  [2001:db8::1]:80 rr
  -> 198.18.0.23:8080             FullNat 1      0          2         
  -> 198.18.0.24:8080             FullNat 1      0          3         
UDP  [2001:db8::1]:53 rr
  -> 198.18.0.23:8080             FullNat 1      0          1         
  -> 198.18.0.24:8080             FullNat 1      0          1         
`
	if list := d.must("-L", "-n"); list != want {
		t.Errorf("gvsadm -L -n:\n%s\nwant:\n%s", list, want)
	}
	// Counted as they arrive: the client's datagrams as IPv6 (40 + 8 +
	// 2 bytes), the servers' answers as IPv4 (20 + 8 + 6).
	stats := fields(d.must("-L", "-n", "--stats", "--exact"))
	if !strings.Contains(stats, "UDP [2001:db8::1]:53 2 2 2 100 68") {
		t.Errorf("UDP stats:\n%s", stats)
	}
	conns := d.must("-L", "-n", "-c")
	t.Logf("gvsadm -L -n -c:\n%s\ngvsadm -L -n --stats --exact: %s", conns, stats)
	for _, w := range []string{"TCP", "UDP", "[2001:db8::10]:", "[2001:db8::1]:80", "[2001:db8::1]:53", "198.18.0.23:8080", "198.18.0.24:8080"} {
		if !strings.Contains(conns, w) {
			t.Errorf("gvsadm -L -n -c has no %q:\n%s", w, conns)
		}
	}
	if ev := d.events(); ev["nat64_unsupported"] != 0 || ev["nat64_icmp"] != 0 || ev["no_lport"] != 0 || ev["no_route"] != 0 ||
		ev["family"] != 0 {
		t.Errorf("events %v", ev)
	}
}
