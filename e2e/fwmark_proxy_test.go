package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// fwmTopo: two clients, the director and two real servers on one
// segment; the VIP is off the segment, routed by the clients to the
// director. The director's operator marks TCP to the VIP's ports 80 and
// 443 (and UDP to 53) with mark 1 in an nftables table of their own; gvsd
// runs the proxy engine with a persistent fwmark service for mark 1.
const (
	fwmVIP  = "198.18.1.100"
	fwmDir  = "198.18.0.10"
	fwmRS1  = "198.18.0.21"
	fwmRS2  = "198.18.0.22"
	fwmCli1 = "198.18.0.1"
	fwmCli2 = "198.18.0.2"

	fwmV6VIP  = "2001:db8:1::100"
	fwmV6Dir  = "2001:db8::10"
	fwmV6RS1  = "2001:db8::21"
	fwmV6RS2  = "2001:db8::22"
	fwmV6Cli1 = "2001:db8::1"
	fwmV6Cli2 = "2001:db8::2"
)

// nsRun runs a command in namespace ns with nsenter, bounded in time.
func nsRun(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"--net=/run/netns/" + ns}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
	return string(out), err
}

func nsMust(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := nsRun(t, ns, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// nsRole runs this test binary in a traffic role (roles_test.go) in ns.
func nsRole(t *testing.T, ns, role string) (string, error) {
	t.Helper()
	exe, _ := os.Executable()
	out, err := nsRun(t, ns, "env", "GVS_E2E_ROLE="+role, exe)
	return strings.TrimSpace(out), err
}

// nsServe starts a serve role in ns, stopped at cleanup.
func nsServe(t *testing.T, ns, addr, name string) {
	t.Helper()
	exe, _ := os.Executable()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+ns, "env", "GVS_E2E_ROLE=serve "+addr+" "+name, exe)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// boundTest fails the test (with a stack dump) if it runs past d.
func boundTest(t *testing.T, d time.Duration) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() { // a hang fails the test instead of the suite's timeout
		select {
		case <-done:
		case <-time.After(d):
			panic(t.Name() + ": over " + d.String())
		}
	}()
}

// newFwmTopo builds the topology; with v6, the hosts get IPv6 addresses
// too (fwmV6*) and the operator marks the IPv6 VIP's traffic with mark 2.
func newFwmTopo(t *testing.T, v6 bool) (c1, c2, dir string) {
	t.Helper()
	needRoot(t)
	for _, b := range []string{"nsenter", "nft"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
	boundTest(t, 4*time.Minute)
	tp := newTopo(t)
	c1 = tp.host("c1", fwmCli1+"/24")
	c2 = tp.host("c2", fwmCli2+"/24")
	dir = tp.host("director", fwmDir+"/24")
	v6addr := map[string]string{c1: fwmV6Cli1, c2: fwmV6Cli2, dir: fwmV6Dir}
	wild := "0.0.0.0"
	if v6 {
		wild = "[::]"
	}
	for i, addr := range []string{fwmRS1, fwmRS2} {
		name := []string{"rs1", "rs2"}[i]
		ns := tp.host(name, addr+"/24")
		v6addr[ns] = []string{fwmV6RS1, fwmV6RS2}[i]
		if v6 {
			nsMust(t, ns, "ip", "-6", "addr", "add", v6addr[ns]+"/64", "dev", "eth0", "nodad")
		}
		for _, port := range []string{"80", "443", "53"} {
			nsServe(t, ns, wild+":"+port, name)
		}
	}
	for _, ns := range []string{c1, c2, dir} {
		if v6 {
			nsMust(t, ns, "ip", "-6", "addr", "add", v6addr[ns]+"/64", "dev", "eth0", "nodad")
		}
	}
	for _, c := range []string{c1, c2} {
		nsMust(t, c, "ip", "route", "add", fwmVIP+"/32", "via", fwmDir)
		if v6 {
			nsMust(t, c, "ip", "-6", "route", "add", fwmV6VIP+"/128", "via", fwmV6Dir)
		}
	}
	// The operator's own marking, before gvs's chain (mangle + 1).
	nsMust(t, dir, "nft", "add", "table", "inet", "op")
	nsMust(t, dir, "nft", "add", "chain", "inet", "op", "pre", "{ type filter hook prerouting priority mangle; }")
	nsMust(t, dir, "nft", "add", "rule", "inet", "op", "pre", "ip", "daddr", fwmVIP, "tcp", "dport", "{ 80, 443 }", "meta", "mark", "set", "1")
	nsMust(t, dir, "nft", "add", "rule", "inet", "op", "pre", "ip", "daddr", fwmVIP, "udp", "dport", "53", "meta", "mark", "set", "1")
	if v6 {
		nsMust(t, dir, "nft", "add", "rule", "inet", "op", "pre", "ip6", "daddr", fwmV6VIP, "meta", "l4proto", "{ tcp, udp }", "th", "dport", "{ 80, 443, 53 }", "meta", "mark", "set", "2")
	}
	return c1, c2, dir
}

func TestFwmarkProxy(t *testing.T) {
	c1, c2, dir := newFwmTopo(t, false)

	stateDir := t.TempDir()
	d := startWrapped(t, stateDir, []string{"nsenter", "--net=/run/netns/" + dir}, "--engine", "proxy")
	d.must("-A", "-f", "1", "-s", "rr", "-p", "300")
	d.must("-a", "-f", "1", "-r", fwmRS1, "-m")
	d.must("-a", "-f", "1", "-r", fwmRS2, "-m")

	steered := func() {
		t.Helper()
		out := nsMust(t, dir, "nft", "list", "table", "inet", "gvs")
		for _, want := range []string{"priority mangle + 1", "meta mark 0x00000001", "tproxy ip to 127.0.0.1:"} {
			if !strings.Contains(out, want) {
				t.Errorf("gvs table lacks %q:\n%s", want, out)
			}
		}
		if out := nsMust(t, dir, "ip", "rule", "list"); !strings.Contains(out, "fwmark 0x1 lookup 4747") {
			t.Errorf("ip rules:\n%s", out)
		}
		if out := nsMust(t, dir, "ip", "route", "list", "table", "4747"); !strings.Contains(out, "local default dev lo") {
			t.Errorf("table 4747:\n%s", out)
		}
	}
	gone := func() {
		t.Helper()
		if out := nsMust(t, dir, "nft", "list", "ruleset"); strings.Contains(out, "table inet gvs") || !strings.Contains(out, "table inet op") {
			t.Errorf("ruleset after the service went:\n%s", out)
		}
		if out := nsMust(t, dir, "ip", "rule", "list"); strings.Contains(out, "4747") {
			t.Errorf("ip rules after the service went:\n%s", out)
		}
		if out, _ := nsRun(t, dir, "ip", "route", "list", "table", "4747"); strings.TrimSpace(out) != "" {
			t.Errorf("table 4747 after the service went:\n%s", out)
		}
	}
	steered()

	hello := func(ns, port string) string {
		t.Helper()
		out, err := nsRole(t, ns, "hello "+fwmVIP+":"+port)
		if err != nil {
			t.Fatalf("hello %s:%s from %s: %v: %s\n%s", fwmVIP, port, ns, err, out, d.log)
		}
		return out
	}
	// One client's connections to both ports land on one server; the
	// next client's template takes the other (rr).
	first := hello(c1, "80")
	if first != "rs1" && first != "rs2" {
		t.Fatalf("greeting %q", first)
	}
	if got := hello(c1, "443"); got != first {
		t.Errorf("client 1: port 80 on %s, port 443 on %s: persistence across the mark's ports broken", first, got)
	}
	// Real bytes, checked one by one.
	if out, err := nsRole(t, c1, "bulk "+fwmVIP+":443 1000000"); err != nil || out != "1000000" {
		t.Fatalf("bulk: %v: %s", err, out)
	}
	if out, err := nsRole(t, c1, "udp "+fwmVIP+":53 ping"); err != nil || out != first+":ping" {
		t.Errorf("udp from client 1: %v: %q, want %q", err, out, first+":ping")
	}
	second := hello(c2, "443")
	if second == first {
		t.Errorf("client 2 on %s as client 1: rr over two templates should alternate", second)
	}
	if got := hello(c2, "80"); got != second {
		t.Errorf("client 2: port 443 on %s, port 80 on %s", second, got)
	}

	t.Logf("gvsadm -L -n\n%s", d.must("-L", "-n"))
	t.Logf("gvsadm -L -n -c\n%s", d.must("-L", "-n", "-c"))
	list := fields(d.must("-L", "-n"))
	for _, want := range []string{"FWM 1 rr persistent 300", "-> " + fwmRS1 + ":0 Masq 1", "-> " + fwmRS2 + ":0 Masq 1"} {
		if !strings.Contains(list, want) {
			t.Errorf("-L -n lacks %q:\n%s", want, d.must("-L", "-n"))
		}
	}
	// 6 connections: client 1's 80, 443, the bulk 443 and the UDP flow,
	// client 2's two.
	time.Sleep(2500 * time.Millisecond) // a TCP counter pass of the engine
	stats := d.must("-L", "-n", "--stats", "--exact")
	var conns, outBytes int
	for _, line := range strings.Split(stats, "\n") {
		f := strings.Fields(line)
		if len(f) >= 7 && f[0] == "FWM" && f[1] == "1" {
			conns, outBytes = atoi(f[2]), atoi(f[6])
		}
	}
	if conns != 6 || outBytes < 1000000 {
		t.Errorf("--stats: conns %d, out bytes %d; want 6 and at least 1000000:\n%s", conns, outBytes, stats)
	}
	t.Logf("gvsadm -L -n --stats --exact\n%s", stats)
	save := d.must("-S", "-n")
	for _, want := range []string{"-A -f 1 -s rr -p 300", "-a -f 1 -r " + fwmRS1 + ":0 -m -w 1"} {
		if !strings.Contains(save, want) {
			t.Errorf("-S -n lacks %q:\n%s", want, save)
		}
	}

	// A restart: gvsd takes its rules down with it and puts them back from
	// its saved state.
	d.stop()
	gone()
	d.start()
	steered()
	if got := hello(c1, "80"); got != "rs1" && got != "rs2" {
		t.Errorf("after a restart: %q", got)
	}

	// A crash: the rules stay behind; the next gvsd replaces them.
	d.kill()
	steered()
	d.start()
	steered()
	if got := hello(c2, "80"); got != "rs1" && got != "rs2" {
		t.Errorf("after a crash and a start: %q", got)
	}
	if out := nsMust(t, dir, "ip", "rule", "list"); strings.Count(out, "lookup 4747") != 1 {
		t.Errorf("ip rules after a crash and a start:\n%s", out)
	}

	// -C then -R of the saved rules.
	d.must("-C")
	gone()
	if _, errs, code := d.adm(save, "-R"); code != 0 {
		t.Fatalf("-R: %s", errs)
	}
	steered()
	if got := hello(c2, "443"); got != "rs1" && got != "rs2" {
		t.Errorf("after -R: %q", got)
	}

	// Bad input changes nothing.
	if _, _, code := d.adm("", "-A", "-f", "1", "-s", "rr"); code == 0 {
		t.Error("a second -A -f 1 succeeded")
	}
	steered()

	d.must("-D", "-f", "1")
	gone()
	if out, err := nsRole(t, c1, "hello "+fwmVIP+":80"); err == nil {
		t.Errorf("after -D, a connection was served: %s", out)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return n
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// The same over IPv6: a persistent fwmark service of family IPv6 (-6)
// for the operator's mark 2 on the IPv6 VIP's ports 80, 443 and 53.
func TestFwmarkProxyIPv6(t *testing.T) {
	c1, c2, dir := newFwmTopo(t, true)
	d := startWrapped(t, t.TempDir(), []string{"nsenter", "--net=/run/netns/" + dir}, "--engine", "proxy")
	d.must("-A", "-f", "2", "-6", "-s", "rr", "-p", "300")
	d.must("-a", "-f", "2", "-6", "-r", fwmV6RS1, "-m")
	d.must("-a", "-f", "2", "-6", "-r", fwmV6RS2, "-m")
	if out := nsMust(t, dir, "nft", "list", "table", "inet", "gvs"); !strings.Contains(out, "tproxy ip6 to [::1]:") {
		t.Errorf("gvs table:\n%s", out)
	}
	vip := "[" + fwmV6VIP + "]"
	hello := func(ns, port string) string {
		t.Helper()
		out, err := nsRole(t, ns, "hello "+vip+":"+port)
		if err != nil {
			t.Fatalf("hello %s:%s from %s: %v: %s\n%s", vip, port, ns, err, out, d.log)
		}
		return out
	}
	first := hello(c1, "80")
	if got := hello(c1, "443"); got != first || first != "rs1" && first != "rs2" {
		t.Errorf("client 1: port 80 on %q, port 443 on %q", first, got)
	}
	if out, err := nsRole(t, c1, "bulk "+vip+":443 1000000"); err != nil || out != "1000000" {
		t.Fatalf("bulk: %v: %s", err, out)
	}
	if out, err := nsRole(t, c1, "udp "+vip+":53 ping"); err != nil || out != first+":ping" {
		t.Errorf("udp from client 1: %v: %q, want %q", err, out, first+":ping")
	}
	if second := hello(c2, "443"); second == first {
		t.Errorf("client 2 on %s as client 1", second)
	}
	if list := fields(d.must("-L", "-n")); !strings.Contains(list, "FWM 2 IPv6 rr persistent 300") {
		t.Errorf("-L -n:\n%s", d.must("-L", "-n"))
	}
	d.must("-D", "-f", "2", "-6")
	if out := nsMust(t, dir, "nft", "list", "ruleset"); strings.Contains(out, "table inet gvs") {
		t.Errorf("ruleset after -D:\n%s", out)
	}
	if out := nsMust(t, dir, "ip", "-6", "rule", "list"); strings.Contains(out, "4747") {
		t.Errorf("ip -6 rules after -D:\n%s", out)
	}
}
