package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const vip = "198.18.0.100"

// drTopo is the kernel IPVS self-test's shape on one segment: a client, a
// director running gvsd's xdp engine on eth0, and two real servers with the
// VIP on lo, answering the client directly.
type drTopo struct {
	*topo
	d      *daemon
	pinDir string
}

func nsenter(ns string) []string { return []string{"nsenter", "--net=/run/netns/" + ns} }

func newDRTopo(t *testing.T, tunnel bool) *drTopo { return newDRTopoArgs(t, tunnel) }

// newDRTopoArgs is newDRTopo with more gvsd arguments (they win over the
// harness's own: --max-conns, say).
func newDRTopoArgs(t *testing.T, tunnel bool, gvsdArgs ...string) *drTopo {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter (util-linux)")
	}
	bin := binaries(t)
	tp := newTopo(t)
	client := tp.host("client", "198.18.0.1/24")
	dir := tp.host("director", "198.18.0.2/24")
	tp.napiPeer("director")
	tp.mustRun(dir, "ip", "addr", "add", vip+"/32", "dev", "eth0")
	tp.mustRun(dir, "sysctl", "-qw", "net.ipv4.conf.eth0.forwarding=1", "net.ipv4.conf.all.forwarding=1")
	for i, name := range []string{"rs1", "rs2"} {
		ns := tp.host(name, "198.18.0.1"+string(rune('1'+i))+"/24")
		state := t.TempDir()
		args := []string{filepath.Join(bin, "gvs-realserver"), "up", "-q", "--vip", vip, "--state-dir", state}
		if tunnel {
			pins := "/sys/fs/bpf/gvst-rs-" + filepath.Base(ns)
			args = append(args, "--tunnel", "--interface", "eth0", "--pin-dir", pins)
			t.Cleanup(func() {
				tp.run("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "down", "-q", "--state-dir", state)...) // down takes no --pin-dir: the state file has it
				os.RemoveAll(pins)
			})
		}
		tp.mustRun("", append(nsenter(ns), args...)...)
		tp.serve(ns, vip+":80", name)
	}
	_ = client
	d, pinDir := tp.startXDPDirector(dir, gvsdArgs...)
	time.Sleep(200 * time.Millisecond)
	return &drTopo{topo: tp, d: d, pinDir: pinDir}
}

// startXDPDirector runs gvsd's xdp engine on eth0 of namespace dir, with
// its pins under a directory of the test's own, and at cleanup stops it,
// removes program and pins, and fails the test if any pin is left.
func (tp *topo) startXDPDirector(dir string, extra ...string) (*daemon, string) {
	t := tp.t
	bin := binaries(t)
	pinDir := "/sys/fs/bpf/" + tp.prefix
	args := append([]string{"--engine", "xdp", "--interface", "eth0", "--bpf-pin-dir", pinDir, "--max-conns", "131072"}, extra...)
	d := startWrapped(t, t.TempDir(), nsenter(dir), args...)
	t.Cleanup(func() {
		d.stop()
		tp.run("", append(nsenter(dir), filepath.Join(bin, "gvsd"), "--cleanup", "--bpf-pin-dir", pinDir)...)
		if _, err := os.Stat(pinDir); err == nil {
			t.Errorf("pins left in %s", pinDir)
		}
	})
	return d, pinDir
}

// hellos opens n TCP connections from namespace ns to addr and returns
// the servers' greetings in order.
func (tp *topo) hellos(d *daemon, ns, addr string, n int) []string {
	tp.t.Helper()
	var got []string
	for range n {
		out, err := tp.role(ns, "hello", addr)
		if err != nil {
			tp.t.Fatalf("TCP through the director: %v %s\n%s", err, out, d.log)
		}
		got = append(got, strings.TrimSpace(out))
	}
	return got
}

func fields(s string) string { return strings.Join(strings.Fields(s), " ") }

func testForwarding(t *testing.T, tunnel bool) {
	tp := newDRTopo(t, tunnel)
	method := "-g"
	if tunnel {
		method = "-i"
	}
	d := tp.d
	d.must("-A", "-t", vip+":80", "-s", "rr")
	d.must("-a", "-t", vip+":80", "-r", "198.18.0.11", method)
	d.must("-a", "-t", vip+":80", "-r", "198.18.0.12", method)
	d.must("-A", "-u", vip+":80", "-s", "rr")
	d.must("-a", "-u", vip+":80", "-r", "198.18.0.11", method)
	d.must("-a", "-u", vip+":80", "-r", "198.18.0.12", method)

	client := tp.ns("client")
	got := tp.hellos(d, client, vip+":80", 4)
	if strings.Join(got, " ") != "rs2 rs1 rs2 rs1" {
		t.Errorf("TCP spread %v, want rr from the newest server", got)
	}
	got = got[:0]
	for i := range 2 {
		out, err := tp.role(client, "udp", vip+":80", "m"+string(rune('0'+i)))
		if err != nil {
			t.Fatalf("UDP: %v %s", err, out)
		}
		got = append(got, strings.TrimSpace(out))
	}
	if strings.Join(got, " ") != "rs2:m0 rs1:m1" {
		t.Errorf("UDP spread %v", got)
	}

	stats := fields(d.must("-L", "-n", "--stats", "--exact"))
	// Replies bypass the director: OutPkts and OutBytes stay 0; 2 UDP
	// datagrams of 2 bytes are 2 x 30 bytes at the IP level.
	if !strings.Contains(stats, "UDP "+vip+":80 2 2 0 60 0") {
		t.Errorf("UDP stats:\n%s", stats)
	}
	// TCP: 4 connections; replies bypass the director, so OutPkts and
	// OutBytes are 0 (fields: Prot, address, Conns, InPkts, OutPkts,
	// InBytes, OutBytes).
	tcp := strings.Fields(stats[strings.Index(stats, "TCP "):])
	if tcp[2] != "4" || tcp[4] != "0" || tcp[6] != "0" || tcp[3] == "0" {
		t.Errorf("TCP stats:\n%s", stats)
	}
	conns := d.must("-L", "-n", "-c")
	if strings.Count(conns, "\nTCP ") != 4 || strings.Count(conns, "\nUDP ") != 2 || !strings.Contains(conns, "FIN_WAIT") {
		t.Errorf("connection table:\n%s", conns)
	}
	list := fields(d.must("-L", "-n"))
	fwd := "Route"
	if tunnel {
		fwd = "Tunnel"
	}
	if !strings.Contains(list, "-> 198.18.0.12:80 "+fwd+" 1 0 2") {
		t.Errorf("listing:\n%s", list)
	}

	// Expiry: a timeout change applies to entries that reach a state
	// afterwards (as in IPVS); two new connections with 1 s FIN and UDP
	// timeouts leave the table again, and the counts come back.
	d.must("--set", "0", "1", "1")
	if _, err := tp.role(client, "hello", vip+":80"); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.role(client, "udp", vip+":80", "late"); err != nil {
		t.Fatal(err)
	}
	if grown := d.must("-L", "-n", "-c"); strings.Count(grown, "\n") != strings.Count(conns, "\n")+2 {
		t.Fatalf("the two new connections are not listed:\n%s", grown)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		now := d.must("-L", "-n", "-c")
		if strings.Count(now, "\n") == strings.Count(conns, "\n") && fields(d.must("-L", "-n")) == list {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries did not expire:\n%s\nwas:\n%s", now, conns)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// -Z zeroes the counters; a quiesced server gets no new connection.
	d.must("-Z")
	if s := fields(d.must("-L", "-n", "--stats")); !strings.Contains(s, "TCP "+vip+":80 0 0 0 0 0") {
		t.Errorf("after -Z:\n%s", s)
	}
	d.must("-e", "-t", vip+":80", "-r", "198.18.0.12", method, "-w", "0")
	for range 3 {
		if out, err := tp.role(client, "hello", vip+":80"); err != nil || strings.TrimSpace(out) != "rs1" {
			t.Fatalf("with rs2 quiesced: %q %v", out, err)
		}
	}
}

// DR end to end: the spread follows rr, replies bypass the director, the
// counters and the connection table are right.
func TestXDPDirectRouting(t *testing.T) { testForwarding(t, false) }

// TUN end to end: the real servers decapsulate with gvs-realserver's BPF
// program (this kernel has no ipip module).
func TestXDPTunnel(t *testing.T) { testForwarding(t, true) }

// A gvsd restart in the middle of a long transfer loses no byte: the
// program stays attached and the connection stays in the pinned table.
func TestXDPRestartKeepsConnections(t *testing.T) {
	tp := newDRTopo(t, false)
	d := tp.d
	d.must("-A", "-t", vip+":80", "-s", "wlc")
	d.must("-a", "-t", vip+":80", "-r", "198.18.0.11", "-g")
	d.must("-a", "-t", vip+":80", "-r", "198.18.0.12", "-g", "-w", "0")
	rules := d.must("-S", "-n")
	// Paced (30 MB at 2 MB/s, 15 s): the transfer must outlast the
	// restart, which takes as long as loading the programs (5-6 s on a
	// loaded 2-core VM; a bulk transfer could end before it did).
	const size = "30000000"
	transfer := make(chan [2]string, 1)
	go func() {
		out, err := tp.role(tp.ns("client"), "paced", vip+":80", size, "2000000")
		transfer <- [2]string{out, fmt.Sprint(err)}
	}()
	bulk := func() (string, error) {
		r := <-transfer
		if r[1] != "<nil>" {
			return r[0], fmt.Errorf("%s", r[1])
		}
		return r[0], nil
	}
	time.Sleep(500 * time.Millisecond)
	before := d.must("-L", "-n", "-c")
	d.stop()
	time.Sleep(300 * time.Millisecond)
	d.start()
	after := d.must("-L", "-n", "-c")
	out, err := bulk()
	if err != nil || strings.TrimSpace(out) != size {
		t.Fatalf("transfer across the restart: %q %v\nbefore:\n%s\nafter:\n%s\n%s", out, err, before, after, d.log)
	}
	if got := d.must("-S", "-n"); got != rules {
		t.Errorf("rules after the restart:\n%s\nwant:\n%s", got, rules)
	}
	// New connections still go where the rules say (rs2 is quiesced).
	if out, err := tp.role(tp.ns("client"), "hello", vip+":80"); err != nil || strings.TrimSpace(out) != "rs1" {
		t.Errorf("new connection after the restart: %q %v", out, err)
	}
	if !strings.Contains(before, "ESTABLISHED") || !strings.Contains(after, "ESTABLISHED") {
		t.Errorf("connection not listed across the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Persistence on the xdp engine: the template is listed with its
// connection, keeps the client on one server, and once the connection has
// expired (its hold on the template released) the template goes too.
func TestXDPPersistenceExpires(t *testing.T) {
	tp := newDRTopo(t, false)
	d := tp.d
	d.must("--set", "0", "0", "1")
	d.must("-A", "-u", vip+":53", "-s", "rr", "-p", "2")
	d.must("-a", "-u", vip+":53", "-r", "198.18.0.11", "-g")
	d.must("-a", "-u", vip+":53", "-r", "198.18.0.12", "-g")
	tp.serve(tp.ns("rs1"), vip+":53", "rs1")
	tp.serve(tp.ns("rs2"), vip+":53", "rs2")
	time.Sleep(300 * time.Millisecond)
	var first string
	for i := range 3 {
		out, err := tp.role(tp.ns("client"), "udp", vip+":53", "p")
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if i == 0 {
			first = out
		} else if out != first {
			t.Fatalf("persistence broken: %q then %q", first, out)
		}
	}
	conns := d.must("-L", "-n", "-c")
	if !strings.Contains(conns, "198.18.0.1:0 ") {
		t.Fatalf("no template listed:\n%s", conns)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		conns = d.must("-L", "-n", "-c")
		if strings.Count(conns, "\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("template or connections did not expire:\n%s", conns)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if l := fields(d.must("-L", "-n", "--persistent-conn")); strings.Count(l, " 0 0 0") < 2 {
		t.Errorf("persistent counts not back to zero:\n%s", l)
	}
}

// A persistence template whose service was deleted before a gvsd restart
// expires once its connection has: the restarted gvsd cannot find the
// template from the connection (the service's netmask is gone with it),
// and a count no connection is left to release does not keep the
// template armed.
func TestXDPDeletedServiceTemplateExpires(t *testing.T) {
	tp := newDRTopo(t, false)
	d := tp.d
	d.must("--set", "0", "0", "1")
	d.must("-A", "-u", vip+":53", "-s", "rr", "-p", "2")
	d.must("-a", "-u", vip+":53", "-r", "198.18.0.11", "-g")
	tp.serve(tp.ns("rs1"), vip+":53", "rs1")
	time.Sleep(300 * time.Millisecond)
	if out, err := tp.role(tp.ns("client"), "udp", vip+":53", "p"); err != nil || out != "rs1:p\n" {
		t.Fatalf("datagram: %q %v", out, err)
	}
	if conns := d.must("-L", "-n", "-c"); !strings.Contains(conns, "198.18.0.1:0 ") {
		t.Fatalf("no template listed:\n%s", conns)
	}
	d.must("-D", "-u", vip+":53")
	d.stop()
	d.start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		conns := d.must("-L", "-n", "-c")
		if strings.Count(conns, "\n") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted service's entries did not expire:\n%s", conns)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
