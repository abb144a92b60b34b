package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tunnels between the families end to end: on one segment carrying both
// 198.18.0.0/24 and 2001:db8::/64, an IPv4 service 198.18.0.100:80 and an
// IPv6 service [2001:db8::1]:80, each served by two tunnelled servers:
// rs6, reached over IPv6 (the IPv4 service's packets go to it IPv4 in
// IPv6), and rs4, reached over IPv4 (the IPv6 service's go IPv6 in IPv4).
// The other pairing is the same-family tunnel, so each pool mixes both.
// The servers decapsulate with gvs-realserver and answer the client
// directly. Real gvsd and gvsadm; TCP transfers byte-checked both ways
// (the client's full-size segments get the inner family's too-big answer
// from the VIP first), UDP, gvsadm -L -n as ipvsadm prints it.
func TestXDPTunnelMixedFamilies(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	const vip4, vip6 = "198.18.0.100", "2001:db8::1"
	tp := newTopo(t)
	dual := func(name, cidr4, cidr6 string) string {
		ns := tp.host(name, cidr4)
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.eth0.accept_dad=0")
		tp.mustRun(ns, "ip", "-6", "addr", "add", cidr6, "dev", "eth0", "nodad")
		return ns
	}
	client := dual("client", "198.18.0.1/24", "2001:db8::10/64")
	dir := dual("director", "198.18.0.2/24", "2001:db8::2/64")
	tp.napiPeer("director")
	tp.mustRun(dir, "ip", "addr", "add", vip4+"/32", "dev", "eth0")
	tp.mustRun(dir, "ip", "-6", "addr", "add", vip6+"/128", "dev", "eth0", "nodad")
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.eth0.forwarding=1")

	bin := binaries(t)
	for _, s := range []struct{ name, cidr4, cidr6 string }{
		{"rs6", "198.18.0.21/24", "2001:db8::21/64"},
		{"rs4", "198.18.0.22/24", "2001:db8::22/64"},
	} {
		ns := dual(s.name, s.cidr4, s.cidr6)
		state := t.TempDir()
		pins := "/sys/fs/bpf/gvst-rs-" + filepath.Base(ns)
		t.Cleanup(func() {
			tp.run("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "down", "-q", "--state-dir", state, "--pin-dir", pins)...)
			os.RemoveAll(pins)
		})
		// Both VIPs on lo, both outer families decapsulated on eth0.
		tp.mustRun("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "up", "-q", "--vip", vip4, "--vip", vip6,
			"--state-dir", state, "--tunnel", "--interface", "eth0", "--pin-dir", pins)...)
		tp.serve(ns, vip4+":80", s.name)
		tp.serve(ns, "["+vip6+"]:80", s.name)
	}
	d, _ := tp.startXDPDirector(dir, "--tun-src", "198.18.0.2,2001:db8::2")
	for name := range tp.hosts {
		if name != "director" {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	time.Sleep(300 * time.Millisecond)

	v4, v6 := vip4+":80", "["+vip6+"]:80"
	for _, proto := range []string{"-t", "-u"} {
		d.must("-A", proto, v4, "-s", "rr")
		d.must("-a", proto, v4, "-r", "[2001:db8::21]:80", "-i") // IPv4 in IPv6
		d.must("-a", proto, v4, "-r", "198.18.0.22:80", "-i")
		d.must("-A", proto, v6, "-s", "rr")
		d.must("-a", proto, v6, "-r", "198.18.0.22:80", "-i") // IPv6 in IPv4
		d.must("-a", proto, v6, "-r", "[2001:db8::21]:80", "-i")
	}
	// Another family by any other method is what IPVS itself refuses.
	if _, errOut, code := d.adm("", "-a", "-t", v4, "-r", "[2001:db8::22]:80", "-g"); code == 0 {
		t.Errorf("a DR server of the other family taken: %q", errOut)
	}

	// rr from the newest server: each service alternates between its
	// tunnels, the mixed one included.
	if got := strings.Join(tp.hellos(d, client, v4, 4), " "); got != "rs4 rs6 rs4 rs6" {
		t.Errorf("IPv4 service TCP spread %q", got)
	}
	if got := strings.Join(tp.hellos(d, client, v6, 4), " "); got != "rs6 rs4 rs6 rs4" {
		t.Errorf("IPv6 service TCP spread %q", got)
	}
	for i, c := range []struct{ addr, want string }{{v4, "rs4:u0"}, {v4, "rs6:u1"}, {v6, "rs6:u2"}, {v6, "rs4:u3"}} {
		out, err := tp.role(client, "udp", c.addr, "u"+strconv.Itoa(i))
		if err != nil || strings.TrimSpace(out) != c.want {
			t.Errorf("UDP %d to %s: %q %v, want %s", i, c.addr, out, err, c.want)
		}
	}
	// Each server once per service and direction: 4 MB from the server
	// (straight to the client, the ACKs through the tunnel), then 2 MB
	// from the client in full-size segments, echoed back and checked:
	// the first ones do not fit with the outer header, the director
	// answers from the VIP (fragmentation needed, MTU 1460 for IPv4 in
	// IPv6 and 1480 in IPv4; packet too big, 1480 for IPv6 in IPv4 and
	// 1460 in IPv6), and the client's TCP sends smaller ones.
	for _, addr := range []string{v4, v6} {
		for range 2 {
			if out, err := tp.role(client, "bulk", addr, "4000000"); err != nil {
				t.Errorf("bulk transfer from %s: %v %s\n%s", addr, err, out, d.log)
			}
		}
		for range 2 {
			if out, err := tp.role(client, "upload", addr, "2000000"); err != nil {
				t.Errorf("upload to %s: %v %s\n%s", addr, err, out, d.log)
			}
		}
	}
	// The client learnt the smaller of its VIP's two tunnel MTUs (the
	// path MTU is per destination, and only goes down).
	if out := tp.mustRun(client, "ip", "route", "get", vip4); !strings.Contains(out, "mtu 1460") {
		t.Errorf("the client's path MTU to the IPv4 VIP: %s", out)
	}
	if out := tp.mustRun(client, "ip", "-6", "route", "get", vip6); !strings.Contains(out, "mtu 1460") {
		t.Errorf("the client's path MTU to the IPv6 VIP: %s", out)
	}
	// IPv6 datagrams beyond the MTU: fragmented by the client, the first
	// fragment fits the tunnels now.
	if out, err := tp.role(client, "udpbig", v6, "4000"); err != nil || strings.TrimSpace(out) != "rs6" {
		t.Errorf("fragmented UDP through the tunnel: %q %v", out, err)
	}

	// ipvsadm's listing: servers of both families under each service (4
	// finished TCP connections each, a datagram each and the big one).
	want := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 rr
  -> 198.18.0.22:80               Tunnel  1      0          4         
  -> [2001:db8::21]:80            Tunnel  1      0          4         
UDP  198.18.0.100:80 rr
  -> 198.18.0.22:80               Tunnel  1      0          1         
  -> [2001:db8::21]:80            Tunnel  1      0          1         
TCP  [2001:db8::1]:80 rr
  -> 198.18.0.22:80               Tunnel  1      0          4         
  -> [2001:db8::21]:80            Tunnel  1      0          4         
UDP  [2001:db8::1]:80 rr
  -> 198.18.0.22:80               Tunnel  1      0          1         
  -> [2001:db8::21]:80            Tunnel  1      0          2         
`
	if list := d.must("-L", "-n"); list != want {
		t.Errorf("gvsadm -L -n:\n%s\nwant:\n%s", list, want)
	}
	stats := fields(d.must("-L", "-n", "--stats", "--exact"))
	for _, s := range []string{"-> [2001:db8::21]:80 4 ", "-> 198.18.0.22:80 4 "} {
		if strings.Count(stats, s) != 2 {
			t.Errorf("stats: %q not under both TCP services:\n%s", s, stats)
		}
	}
	conns := fields(d.must("-L", "-n", "-c"))
	for _, s := range []string{" 198.18.0.100:80 [2001:db8::21]:80 ", " [2001:db8::1]:80 198.18.0.22:80 "} {
		if !strings.Contains(conns, s) {
			t.Errorf("connection table without %q:\n%s", s, conns)
		}
	}
	ev := d.events()
	t.Logf("events %v", ev)
	if ev["no_route"] != 0 || ev["family"] != 0 || ev["frag_needed"] < 2 {
		t.Errorf("events %v", ev)
	}
}

// upload sends n bytes of the bulk pattern to a role server (which echoes
// what follows its first line) in full-size segments and checks every
// byte that comes back.
func upload(addr string, n int64) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "ECHO\n"); err != nil {
		return err
	}
	if line, err := r.ReadString('\n'); err != nil || line != "ECHO\n" {
		return fmt.Errorf("echo line %q: %v", line, err)
	}
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 64*1024)
		for off := int64(0); off < n; {
			k := min(int64(len(buf)), n-off)
			for i := int64(0); i < k; i++ {
				buf[i] = pattern(off + i)
			}
			if _, err := c.Write(buf[:k]); err != nil {
				errc <- err
				return
			}
			off += k
		}
		errc <- nil
	}()
	buf := make([]byte, 64*1024)
	for got := int64(0); got < n; {
		k, err := r.Read(buf)
		for i := 0; i < k; i++ {
			if buf[i] != pattern(got+int64(i)) {
				return fmt.Errorf("byte %d differs", got+int64(i))
			}
		}
		got += int64(k)
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
	return <-errc
}
