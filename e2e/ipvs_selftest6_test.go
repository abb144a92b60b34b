package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The Linux kernel's IPVS selftest (tools/testing/selftests/net/
// netfilter/ipvs.sh) replayed with gvs: its topology, its three cases
// (DR, NAT, TUN) and its pass criterion, data sent through the virtual
// service equal to the data the real server received (here compared by
// SHA-256, with the script's tool, socat). The script's topology:
//
//	ns0 (client): br0 = veth01 + veth02, cip
//	ns1 (director): veth10 gip (to ns0), veth12 dip (to ns2); the VIP on lo
//	ns2 (server): veth21 rip (to ns1), veth20 sip (to ns0, the DR/TUN
//	    replies' way back; deleted for NAT, whose server routes through
//	    the director)
//
// The client routes the VIP via gip. Where the script runs ipvsadm in
// ns1, gvsd (xdp engine on veth10 and veth12) takes the same rules from
// gvsadm; where it prepares the server with a VIP on lo, ARP sysctls and
// the ipip module's tunl0, gvs-realserver does it (this kernel has no
// IPVS and no ipip: it decapsulates with its BPF program).
//
// Differences: the script rebuilds the namespaces for each case; here one
// set serves the three in turn (the rules cleared between them), NAT last
// because it deletes veth20. Besides the script's 32 random bytes, each
// case sends 1 MiB (many segments; NAT's acknowledgements translated), and
// checks the service's counters (replies through the director only for
// NAT) and the data path's events.

type selftestAddrs struct {
	family        string // "-4" or "-6", socat's and ip's flag
	cip, gip, sip string // client, director and server on the client's segment
	dip, rip, vip string // director and server on theirs; the virtual address
	plen, host    string // the segments' prefix length; the VIP's (on lo)
	vipPort       string // the virtual service, VIP:8080
	forward       string // the director's forwarding sysctl
}

// ipvs.sh's addresses (10.0.0.0/24, 172.16.0.0/24, VIP 207.175.44.110)
// moved into 2001:db8::/32, and for the IPv4 replay into 198.18.0.0/15.
var (
	selftest6 = selftestAddrs{family: "-6", cip: "2001:db8::2", gip: "2001:db8::1", sip: "2001:db8::3",
		dip: "2001:db8:1::1", rip: "2001:db8:1::2", vip: "2001:db8:2::110", plen: "64", host: "128",
		vipPort: "[2001:db8:2::110]:8080", forward: "net.ipv6.conf.all.forwarding"}
	selftest4 = selftestAddrs{family: "-4", cip: "198.18.0.2", gip: "198.18.0.1", sip: "198.18.0.3",
		dip: "198.18.1.1", rip: "198.18.1.2", vip: "198.19.44.110", plen: "24", host: "32",
		vipPort: "198.19.44.110:8080", forward: "net.ipv4.ip_forward"}
)

func (a selftestAddrs) hostPort(addr string) string {
	if a.family == "-6" {
		return "[" + addr + "]:8080"
	}
	return addr + ":8080"
}

func TestIPVSSelftestIPv6(t *testing.T) { testIPVSSelftest(t, selftest6) }

// The same replay over IPv4, on the same code (the script's own family).
func TestIPVSSelftestIPv4(t *testing.T) { testIPVSSelftest(t, selftest4) }

func testIPVSSelftest(t *testing.T, a selftestAddrs) {
	needRoot(t)
	for _, tool := range []string{"nsenter", "socat", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/install-deps.sh)", tool)
		}
	}
	bin := binaries(t)
	tp := newTopo(t) // its switch namespace is unused: the script's topology has none
	in := func(ns string, args ...string) string { return tp.mustRun("", append(nsenter(ns), args...)...) }
	ns := func(name string) string {
		n := tp.prefix + "-" + name
		tp.hosts[name] = n // removed with the topology
		tp.mustRun("", "ip", "netns", "add", n)
		in(n, "ip", "link", "set", "lo", "up")
		// IPv6 addresses usable at once: no duplicate detection.
		in(n, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
		return n
	}
	ns0, ns1, ns2 := ns("ns0"), ns("ns1"), ns("ns2")
	veth := func(a, nsA, b, nsB string) {
		tp.mustRun("", "ip", "link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB)
	}
	veth("veth01", ns0, "veth10", ns1)
	veth("veth02", ns0, "veth20", ns2)
	veth("veth12", ns1, "veth21", ns2)
	addr := func(n, cidr, dev string) { in(n, "ip", a.family, "addr", "add", cidr, "dev", dev, "nodad") }
	in(ns0, "ip", "link", "add", "br0", "type", "bridge")
	for _, dev := range []string{"veth01", "veth02"} {
		in(ns0, "ip", "link", "set", dev, "master", "br0", "up")
	}
	in(ns0, "ip", "link", "set", "br0", "up")
	addr(ns0, a.cip+"/"+a.plen, "br0")
	for _, x := range [][3]string{{ns1, "veth10", a.gip}, {ns1, "veth12", a.dip}, {ns2, "veth21", a.rip}, {ns2, "veth20", a.sip}} {
		in(x[0], "ip", "link", "set", x[1], "up")
		addr(x[0], x[2]+"/"+a.plen, x[1])
	}
	// Local sockets' packets carry partial checksums on veth; a real NIC
	// fills them in.
	for _, x := range [][2]string{{ns0, "br0"}, {ns0, "veth01"}, {ns0, "veth02"}, {ns1, "veth10"}, {ns1, "veth12"},
		{ns2, "veth21"}, {ns2, "veth20"}} {
		in(x[0], "ethtool", "-K", x[1], "tx", "off")
	}
	// The director's redirected frames reach veth01 and veth21 only if
	// they have NAPI (an XDP program).
	tp.xdpPass(ns0, "veth01")
	tp.xdpPass(ns2, "veth21")

	// The director: the VIP on lo (the script's lo:1), gvsd on both links
	// (NAT replies come back on veth12). TUN's outer source is the route's
	// toward the server, as ip_vs_tunnel_xmit takes it.
	addr(ns1, a.vip+"/"+a.host, "lo")
	pinDir := "/sys/fs/bpf/" + tp.prefix
	d := startWrapped(t, t.TempDir(), nsenter(ns1), "--engine", "xdp", "--interface", "veth10", "--interface", "veth12",
		"--bpf-pin-dir", pinDir, "--tun-src", a.dip)
	t.Cleanup(func() {
		d.stop()
		tp.run("", append(nsenter(ns1), filepath.Join(bin, "gvsd"), "--cleanup", "--bpf-pin-dir", pinDir)...)
		if _, err := os.Stat(pinDir); err == nil {
			t.Errorf("pins left in %s", pinDir)
		}
	})
	// The client: the VIP via the director (test_dr, test_nat, test_tun).
	in(ns0, "ip", a.family, "route", "add", a.vip, "via", a.gip, "dev", "br0")

	// gvs-realserver on ns2 for DR and TUN: the VIP on lo, ARP kept quiet
	// (IPv4), and for TUN the decapsulation on veth21.
	rsState, rsPins := t.TempDir(), "/sys/fs/bpf/"+tp.prefix+"-rs"
	realserver := func(args ...string) {
		t.Helper()
		if args[0] == "up" {
			args = append(args, "--pin-dir", rsPins)
		}
		in(ns2, append([]string{filepath.Join(bin, "gvs-realserver")}, append(args, "-q", "--state-dir", rsState)...)...)
	}
	t.Cleanup(func() {
		// down finds the pins in its state file.
		tp.run("", append(nsenter(ns2), filepath.Join(bin, "gvs-realserver"), "down", "-q", "--state-dir", rsState)...)
		os.RemoveAll(rsPins)
	})
	// The script's own rp_filter settings on the server (IPv4's; IPv6 has
	// none).
	if a.family == "-4" {
		in(ns2, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.veth21.rp_filter=0")
	}

	service := func(method string) {
		t.Helper()
		d.must("-C")
		d.must("-A", "-t", a.vipPort, "-s", "rr")
		d.must("-a", "-t", a.vipPort, "-r", a.hostPort(a.rip), method)
	}
	// counters are the service's Conns, InPkts, OutPkts, InBytes and
	// OutBytes. gvs keeps a service's counters when it is deleted and added
	// again before its id is reused, so each case looks at what it added.
	counters := func() [5]int {
		t.Helper()
		stats := fields(d.must("-L", "-n", "--stats", "--exact"))
		var c [5]int
		m := regexp.MustCompile(`TCP ` + regexp.QuoteMeta(a.vipPort) + ` (\d+) (\d+) (\d+) (\d+) (\d+)`).FindStringSubmatch(stats)
		if m == nil {
			t.Fatalf("no service in the stats:\n%s", stats)
		}
		for i := range c {
			c[i] = atoi(m[i+1])
		}
		return c
	}
	// check is test_service, with 32 bytes (the script's datalen) and 1 MiB,
	// then the service's counters: 2 connections, replies counted only
	// when they come through the director (NAT).
	check := func(method string, repliesThrough bool) {
		t.Helper()
		start, before := time.Now(), counters()
		for _, size := range []int{32, 1 << 20} {
			if err := selftestTransfer(tp, a, ns0, ns2, size); err != nil {
				t.Errorf("%s, %d bytes: %v\ngvsd log:\n%s", method, size, err, d.log)
			}
		}
		after := counters()
		conns, outPkts := after[0]-before[0], after[2]-before[2]
		if conns != 2 || (outPkts > 0) != repliesThrough || after[1]-before[1] < (1<<20)/1500 {
			t.Errorf("%s: service counters from %v to %v (want 2 connections and at least a packet per 1,500 bytes more, replies through the director: %v)",
				method, before, after, repliesThrough)
		}
		if ev := d.events(); ev["no_route"] != 0 || ev["malformed"] != 0 {
			t.Errorf("%s: events %v", method, ev)
		}
		t.Logf("%s: 32 bytes and 1 MiB through the VIP in %v", method, time.Since(start).Round(time.Millisecond))
	}

	// test_dr
	in(ns1, "sysctl", "-qw", a.forward+"=1")
	realserver("up", "--vip", a.vip)
	service("-g")
	check("DR", false)

	// test_tun: the script turns forwarding off on the director; IPVS
	// sends the encapsulated packet itself, as gvs does.
	in(ns1, "sysctl", "-qw", a.forward+"=0")
	if a.family == "-4" {
		in(ns1, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0")
	}
	realserver("up", "--vip", a.vip, "--tunnel", "--interface", "veth21")
	service("-i")
	check("TUN", false)

	// test_nat: the server's way back is the director only.
	in(ns1, "sysctl", "-qw", a.forward+"=1")
	realserver("down")
	in(ns2, "ip", "link", "del", "veth20")
	in(ns2, "ip", a.family, "route", "add", "default", "via", a.dip, "dev", "veth21")
	service("-m")
	check("NAT", true)
}

// selftestTransfer is the script's server_listen, client_connect and
// verify_data: socat in ns2 writes what it receives on port 8080 to its
// output, socat in ns0 sends size random bytes to the VIP, and the two
// must be the same bytes.
func selftestTransfer(tp *topo, a selftestAddrs, client, server string, size int) error {
	data := make([]byte, size)
	rand.Read(data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the script: 2 s for the client, 5 for the server
	defer cancel()
	srv := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+server, "socat", "-u", a.family, "TCP-LISTEN:8080,reuseaddr", "STDOUT")
	var got, srvErr bytes.Buffer
	srv.Stdout, srv.Stderr = &got, &srvErr
	if err := srv.Start(); err != nil {
		return err
	}
	waited := false
	defer func() {
		if !waited {
			srv.Process.Kill()
			srv.Wait()
		}
	}()
	// The script sleeps 0.2 s; here the listener is waited for.
	for i := 0; ; i++ {
		out, _ := tp.run("", "nsenter", "--net=/run/netns/"+server, "ss", "-Hltn", "sport", "=", ":8080")
		if strings.Contains(out, "LISTEN") {
			break
		}
		if i == 100 {
			return fmt.Errorf("socat did not listen: %s", srvErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+client, "socat", "-u", a.family, "STDIN", "TCP:"+a.vipPort)
	cl.Stdin = bytes.NewReader(data)
	if out, err := cl.CombinedOutput(); err != nil {
		return fmt.Errorf("client socat: %v: %s", err, out)
	}
	waited = true
	if err := srv.Wait(); err != nil {
		return fmt.Errorf("server socat: %v: %s", err, srvErr.String())
	}
	if sha256.Sum256(got.Bytes()) != sha256.Sum256(data) {
		return fmt.Errorf("received %d bytes, SHA-256 %x; sent %d, %x", got.Len(), sha256.Sum256(got.Bytes()), size, sha256.Sum256(data))
	}
	return nil
}
