package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
)

// natTopo is LVS-NAT's shape on one segment with two subnets: the client
// in 198.18.0.0/24, the real servers in 198.18.1.0/24, the director on
// both (198.18.0.2 with the VIP, and 198.18.1.1, the servers' gateway).
// The client has no route to the servers: everything goes through the
// VIP. With gateway false the servers have no default route at all, as
// FULLNAT allows.
type natTopo struct {
	*topo
	d      *daemon
	dir    string
	pinDir string
}

var natServers = []string{"198.18.1.11", "198.18.1.12", "198.18.1.13"}

func newNATTopo(t *testing.T, gateway bool) *natTopo {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	tp := newTopo(t)
	tp.host("client", "198.18.0.1/24")
	dir := tp.host("director", "198.18.0.2/24")
	tp.napiPeer("director")
	tp.mustRun(dir, "ip", "addr", "add", vip+"/32", "dev", "eth0")
	tp.mustRun(dir, "ip", "addr", "add", "198.18.1.1/24", "dev", "eth0")
	// Forwarding on (the FIB lookups need it, as LVS-NAT does); no ICMP
	// redirects for what the stack forwards between the two subnets.
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv4.conf.eth0.forwarding=1", "net.ipv4.conf.all.forwarding=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
	for i, addr := range natServers {
		name := "rs" + strconv.Itoa(i+1)
		ns := tp.host(name, addr+"/24")
		if gateway {
			tp.mustRun(ns, "ip", "route", "add", "default", "via", "198.18.1.1")
		}
		tp.serve(ns, "0.0.0.0:8080", name)
	}
	d, pinDir := tp.startXDPDirector(dir)
	// Traffic to and from the servers crosses the director's XDP program
	// now: no GRO on the other hosts' switch ports, which would hand it
	// frames merged beyond the MTU (a real NIC runs XDP before GRO).
	for name := range tp.hosts {
		if name != "director" {
			tp.mustRun(tp.prefix+"-sw", "ethtool", "-K", "p-"+name, "gro", "off")
		}
	}
	time.Sleep(200 * time.Millisecond)
	return &natTopo{topo: tp, d: d, dir: dir, pinDir: pinDir}
}

// serviceEntries counts the director's connections of virtual port
// vport and their reply entries, in the pinned maps.
func (tp *natTopo) serviceEntries(vport uint16) (conns, replies int) {
	tp.t.Helper()
	open := func(name string) *ebpf.Map {
		m, err := ebpf.LoadPinnedMap(filepath.Join(tp.pinDir, name), nil)
		if err != nil {
			tp.t.Fatalf("opening %s: %v", name, err)
		}
		return m
	}
	be := vport>>8 | vport<<8 // as the maps hold it
	m := open("conns")
	defer m.Close()
	var k bpf.ConnKey
	var c bpf.Conn
	var rv bpf.Reply
	for it := m.Iterate(); it.Next(&k, &c); {
		if k.Vport == be {
			conns++
		}
	}
	r := open("rconns")
	defer r.Close()
	for it := r.Iterate(); it.Next(&k, &rv); {
		if rv.Fk.Vport == be {
			replies++
		}
	}
	return
}

// The notes' worked example, verbatim but for the addresses: a UDP
// service with sh and persistence, one masqueraded server, "hello word"
// sent with nc -u, and the counters ipvsadm shows for it.
func TestXDPNotesExample(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		t.Skip("needs nc (netcat-openbsd, scripts/install-deps.sh)")
	}
	tp := newNATTopo(t, true)
	d := tp.d
	const rip = "198.18.1.11"
	// A receiver that only receives: nc -u -l, its output in a file.
	got := filepath.Join(t.TempDir(), "received")
	tp.start(tp.ns("rs1"), "sh", "-c", "exec nc -u -l 9999 > "+got)

	d.must("-C")
	d.must("-A", "-u", vip+":9999", "-s", "sh", "-p", "120")
	d.must("-a", "-u", vip+":9999", "-r", rip+":9999", "-m", "-w", "1")
	time.Sleep(200 * time.Millisecond)
	tp.mustRun(tp.ns("client"), "sh", "-c", "echo 'hello word' | nc -u -w 1 "+vip+" 9999")

	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(got)
		if string(b) == "hello word\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server received %q\n%s", b, d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// 39 bytes: "hello word\n" (11) + UDP (8) + IPv4 (20).
	t.Logf("gvsadm -ln --stats\n%s", d.must("-ln", "--stats"))
	t.Logf("gvsadm -Lcn\n%s", d.must("-Lcn"))
	stats := fields(d.must("-ln", "--stats"))
	for _, want := range []string{
		"UDP " + vip + ":9999 1 1 0 39 0",
		"-> " + rip + ":9999 1 1 0 39 0",
	} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats lack %q:\n%s", want, d.must("-ln", "--stats"))
		}
	}
	conns := d.must("-Lcn")
	if !strings.Contains(fields(conns), "UDP 198.18.0.1:0 "+vip+":9999 "+rip+":9999") ||
		strings.Count(conns, rip+":9999") != 2 {
		t.Errorf("-Lcn should show the connection and its template:\n%s", conns)
	}
	d.must("-Z")
	if s := fields(d.must("-ln", "--stats")); !strings.Contains(s, "UDP "+vip+":9999 0 0 0 0 0") {
		t.Errorf("after -Z:\n%s", s)
	}
}

// NAT and FULLNAT end to end with three servers: TCP and UDP spread by
// rr, a long transfer byte for byte, ICMP port unreachable back to the
// client, 10,000 connections open at once with no crossed flow, and
// after they expire no entry left in the connection or reply maps.
func testNAT(t *testing.T, fullnat bool) {
	tp := newNATTopo(t, !fullnat)
	d := tp.d
	method := "-m"
	if fullnat {
		method = "--fullnat"
	}
	for _, proto := range []string{"-t", "-u"} {
		d.must("-A", proto, vip+":80", "-s", "rr")
		for _, rs := range natServers {
			d.must("-a", proto, vip+":80", "-r", rs+":8080", method)
		}
	}
	d.must("-A", "-u", vip+":81", "-s", "rr")
	d.must("-a", "-u", vip+":81", "-r", natServers[0]+":8081", method) // nothing listens there
	client := tp.ns("client")

	spread := tp.hellos(d, client, vip+":80", 3)
	if strings.Join(spread, " ") != "rs3 rs2 rs1" {
		t.Errorf("TCP spread %v, want rr from the newest server", spread)
	}
	for i := range 3 {
		out, err := tp.role(client, "udp", vip+":80", "m"+strconv.Itoa(i))
		if err != nil || strings.TrimSpace(out) != "rs"+strconv.Itoa(3-i)+":m"+strconv.Itoa(i) {
			t.Fatalf("UDP %d: %q %v", i, out, err)
		}
	}
	// Datagrams beyond the MTU cross in fragments both ways: each
	// follows its first fragment, and every fragment of the reply is
	// translated (none leaves with a server's address).
	for i := range 3 {
		out, err := tp.role(client, "udpbig", vip+":80", "4000")
		if err != nil || strings.TrimSpace(out) != "rs"+strconv.Itoa(3-i) {
			t.Fatalf("fragmented UDP %d: %q %v", i, out, err)
		}
	}
	if ev := d.events(); ev["frag"] < 12 || ev["frag_unknown"] != 0 {
		t.Errorf("events %v: want every later fragment sent as its first", ev)
	}
	if out, err := tp.role(client, "refused", vip+":81"); err != nil || strings.TrimSpace(out) != "refused" {
		t.Errorf("ICMP port unreachable through the director: %q %v", out, err)
	}
	// A long transfer, byte for byte, across a gvsd restart: the reply
	// entries and the FULLNAT ports are in the pinned maps too.
	const size = "200000000"
	transfer := tp.bulk(client, vip+":80", size)
	time.Sleep(300 * time.Millisecond)
	d.stop()
	d.start()
	if bulk, err := transfer(); err != nil || strings.TrimSpace(bulk) != size {
		t.Fatalf("bulk transfer across a restart: %q %v\n%s", bulk, err, d.log)
	}
	// Replies go through the director: OutPkts and OutBytes count them.
	stats := fields(d.must("-L", "-n", "--stats", "--exact"))
	tcp := strings.Fields(stats[strings.Index(stats, "TCP "):])
	if tcp[2] != "4" || tcp[4] == "0" || tcp[6] == "0" {
		t.Errorf("TCP stats:\n%s", stats)
	}
	if out, _ := strconv.Atoi(tcp[6]); out < 200000000 {
		t.Errorf("OutBytes %d, less than the transfer:\n%s", out, stats)
	}

	// 10,000 connections at once to a service of their own, then reset
	// (CLOSE lasts 10 s): afterwards no entry of theirs is left in the
	// connection or reply maps, and the servers' counts are back to 0.
	d.must("-A", "-t", vip+":82", "-s", "rr")
	for _, rs := range natServers {
		d.must("-a", "-t", vip+":82", "-r", rs+":8080", method)
	}
	out, err := tp.role(client, "many", vip+":82", "10000")
	if err != nil {
		t.Fatalf("10,000 connections: %v\n%s", err, out)
	}
	per := strings.Fields(out)
	if len(per) != 3 {
		t.Errorf("spread of 10,000 connections: %v", per)
	}
	for _, p := range per {
		_, count, _ := strings.Cut(p, "=")
		if n, _ := strconv.Atoi(count); n < 3333 || n > 3334 {
			t.Errorf("rr spread of 10,000 connections: %v", per)
		}
	}
	if c, r := tp.serviceEntries(82); c != 10000 || r != 10000 {
		t.Errorf("%d connections, %d reply entries with 10,000 connections just closed", c, r)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		c, r := tp.serviceEntries(82)
		if c == 0 && r == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections and %d reply entries left after expiry\n%s", c, r, d.must("-L", "-n"))
		}
		time.Sleep(time.Second)
	}
	fwd := "Masq"
	if fullnat {
		fwd = "FullNat"
	}
	list := fields(d.must("-L", "-n", "-t", vip+":82"))
	for _, rs := range natServers {
		if !strings.Contains(list, "-> "+rs+":8080 "+fwd+" 1 0 0") {
			t.Errorf("server %s not back to 0 active, 0 inactive:\n%s", rs, list)
		}
	}
}

func TestXDPNAT(t *testing.T) { testNAT(t, false) }

func TestXDPFullNAT(t *testing.T) { testNAT(t, true) }
