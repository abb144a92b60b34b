package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gvs/client"
)

// The scale-out topology (docs/bgp.md): a router running FRR (Debian's
// frr package: zebra and bgpd started by the test, with its config files,
// never as a service) with ECMP over an L4 hash, three directors running
// gvsd's xdp engine that peer with it and announce the VIPs, three DR
// real servers with the VIP on loopback, and clients on another subnet
// behind the router. One L2 segment: the router has an address on both
// subnets; the real servers answer the clients through the router.
const (
	bgpVIP    = "198.18.10.100" // mh (or rr) over rs1..rs3
	bgpVIP2   = "198.18.10.101" // one server, checked on :8081
	routerASN = 65000
	dirASN    = 65001
)

var bgpDirectors = []string{"d1", "d2", "d3"}

type bgpTopo struct {
	*topo
	frrDir string
	d      map[string]*daemon
	pins   map[string]string
	cfgs   map[string]string
}

func needFRR(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"} {
		if _, err := os.Stat(p); err != nil {
			t.Skip("needs FRR (Debian's frr package; scripts/install-deps.sh)")
		}
	}
}

// frrConf is the router's bgpd config: the directors in one peer group,
// ECMP over them (maximum-paths), 1 s keepalives and a 3 s hold time, and
// the graceful-shutdown community honoured (RFC 8326: LOCAL_PREF 0).
func frrConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, `hostname gvs-router
log stdout informational
!
bgp community-list standard GSHUT permit graceful-shutdown
!
route-map DIRECTORS-IN permit 10
 match community GSHUT
 set local-preference 0
route-map DIRECTORS-IN permit 20
!
router bgp %d
 bgp router-id 198.18.0.1
 no bgp ebgp-requires-policy
 neighbor DIRECTORS peer-group
 neighbor DIRECTORS remote-as %d
 neighbor DIRECTORS timers 1 3
 neighbor DIRECTORS timers connect 1
`, routerASN, dirASN)
	for i := range bgpDirectors {
		fmt.Fprintf(&b, " neighbor 198.18.0.%d peer-group DIRECTORS\n", i+2)
	}
	b.WriteString(` address-family ipv4 unicast
  maximum-paths 8
  neighbor DIRECTORS route-map DIRECTORS-IN in
 exit-address-family
!
`)
	return b.String()
}

// dirConf is a director's gvsd config.
func dirConf(sched string, i int) string {
	flags := ""
	if sched == "mh" {
		flags = "    sched-flags: [mh-port]\n"
	}
	return fmt.Sprintf(`services:
  - tcp: %s:80
    scheduler: %s
%s    servers:
      - {address: 198.18.0.11}
      - {address: 198.18.0.12}
      - {address: 198.18.0.13}
  - tcp: %s:80
    scheduler: rr
    delay_loop: 1
    check:
      - {type: TCP_CHECK, connect_port: 8081, connect_timeout: 1, retry: 0}
    servers:
      - {address: 198.18.0.11}
bgp:
  asn: %d
  router_id: 198.18.0.%d
  peers:
    - {address: 198.18.0.1, asn: %d, hold_time: 3, keepalive: 1, connect_retry: 1}
`, bgpVIP, sched, flags, bgpVIP2, dirASN, i+2, routerASN)
}

func newBGPTopo(t *testing.T) *bgpTopo {
	t.Helper()
	needRoot(t)
	needFRR(t)
	bin := binaries(t)
	tp := &bgpTopo{topo: newTopo(t), d: map[string]*daemon{}, pins: map[string]string{}, cfgs: map[string]string{}}
	r := tp.host("router", "198.18.0.1/24")
	tp.mustRun(r, "ip", "addr", "add", "198.18.1.1/24", "dev", "eth0")
	tp.mustRun(r, "sysctl", "-qw", "net.ipv4.conf.all.forwarding=1", "net.ipv4.conf.eth0.forwarding=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0",
		"net.ipv4.fib_multipath_hash_policy=1")
	for i, name := range []string{"c1", "c2"} {
		ns := tp.host(name, fmt.Sprintf("198.18.1.%d/24", 10+i))
		tp.mustRun(ns, "ip", "route", "add", "default", "via", "198.18.1.1")
	}
	for i, name := range []string{"rs1", "rs2", "rs3"} {
		ns := tp.host(name, fmt.Sprintf("198.18.0.%d/24", 11+i))
		tp.mustRun(ns, "ip", "route", "add", "198.18.1.0/24", "via", "198.18.0.1")
		for _, v := range []string{bgpVIP, bgpVIP2} {
			tp.mustRun("", append(nsenter(ns), filepath.Join(bin, "gvs-realserver"), "up", "-q", "--vip", v, "--state-dir", t.TempDir())...)
		}
		tp.serve(ns, "0.0.0.0:80", name)
	}
	for i, name := range bgpDirectors {
		ns := tp.host(name, fmt.Sprintf("198.18.0.%d/24", i+2))
		tp.napiPeer(name)
		tp.mustRun(ns, "sysctl", "-qw", "net.ipv4.conf.eth0.forwarding=1", "net.ipv4.conf.all.forwarding=1")
		tp.pins[name] = "/sys/fs/bpf/" + tp.prefix + "-" + name
		tp.cfgs[name] = filepath.Join(t.TempDir(), "gvs.yaml")
	}
	tp.startFRR()
	return tp
}

// startFRR runs zebra and bgpd in the router's namespace, with sockets,
// pid files and configs in a directory of the test's own.
func (tp *bgpTopo) startFRR() {
	t := tp.t
	dir, err := os.MkdirTemp("", "gvs-frr-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	tp.frrDir = dir
	if err := os.WriteFile(filepath.Join(dir, "zebra.conf"), []byte("hostname gvs-router\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bgpd.conf"), []byte(frrConf()), 0o644); err != nil {
		t.Fatal(err)
	}
	// FRR's own user and group (the package's): its daemons drop to them.
	for _, f := range []string{dir, filepath.Join(dir, "zebra.conf"), filepath.Join(dir, "bgpd.conf")} {
		tp.mustRun("", "chown", "frr:frr", f)
	}
	common := []string{"-u", "frr", "-g", "frr", "-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "--log", "stdout"}
	r := tp.ns("router")
	tp.start(r, append([]string{"/usr/lib/frr/zebra", "-f", filepath.Join(dir, "zebra.conf"), "-i", filepath.Join(dir, "zebra.pid")}, common...)...)
	waitFor(t, 10*time.Second, "zebra's socket", func() (bool, string) {
		_, err := os.Stat(filepath.Join(dir, "zserv.api"))
		return err == nil, fmt.Sprint(err)
	})
	tp.start(r, append([]string{"/usr/lib/frr/bgpd", "-f", filepath.Join(dir, "bgpd.conf"), "-i", filepath.Join(dir, "bgpd.pid")}, common...)...)
	waitFor(t, 10*time.Second, "bgpd's vty", func() (bool, string) {
		out, err := tp.vtysh("show bgp summary")
		return err == nil, out
	})
}

func (tp *bgpTopo) vtysh(cmd string) (string, error) {
	return tp.run(tp.ns("router"), "vtysh", "--vty_socket", tp.frrDir, "-c", cmd)
}

// nexthops returns the router's kernel next hops for prefix (FIB, not
// RIB: what ECMP forwards over).
func (tp *bgpTopo) nexthops(prefix string) []string {
	out, _ := tp.run(tp.ns("router"), "ip", "-j", "route", "show", prefix)
	var rs []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	json.Unmarshal([]byte(out), &rs)
	var l []string
	for _, r := range rs {
		if r.Gateway != "" {
			l = append(l, r.Gateway)
		}
		for _, n := range r.Nexthops {
			l = append(l, n.Gateway)
		}
	}
	return l
}

// ribPaths returns the paths of prefix in the router's BGP table: next
// hop -> communities.
func (tp *bgpTopo) ribPaths(prefix string) (map[string]string, string) {
	out, _ := tp.vtysh("show bgp ipv4 unicast " + prefix + " json")
	var r struct {
		Paths []struct {
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			Community *struct {
				String string `json:"string"`
			} `json:"community"`
		} `json:"paths"`
	}
	json.Unmarshal([]byte(out), &r)
	m := map[string]string{}
	for _, p := range r.Paths {
		c := ""
		if p.Community != nil {
			c = p.Community.String
		}
		if len(p.Nexthops) > 0 {
			m[p.Nexthops[0].IP] = c
		}
	}
	return m, out
}

func (tp *bgpTopo) startDirector(name, sched string) {
	t := tp.t
	i := strings.Index(strings.Join(bgpDirectors, ""), name) / 2
	if err := os.WriteFile(tp.cfgs[name], []byte(dirConf(sched, i)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startWrapped(t, t.TempDir(), nsenter(tp.ns(name)), "--engine", "xdp", "--interface", "eth0",
		"--bpf-pin-dir", tp.pins[name], "--max-conns", "65536", "--config", tp.cfgs[name])
	tp.d[name] = d
}

// stopDirector stops gvsd (if it runs) and removes its program and pins.
func (tp *bgpTopo) stopDirector(name string) {
	if d := tp.d[name]; d != nil {
		d.stop()
	}
	bin := binaries(tp.t)
	tp.run("", append(nsenter(tp.ns(name)), filepath.Join(bin, "gvsd"), "--cleanup", "--bpf-pin-dir", tp.pins[name])...)
	os.RemoveAll(tp.pins[name])
	tp.run(tp.ns(name), "ip", "link", "set", "eth0", "up")
	delete(tp.d, name)
}

// longConns runs role longconns from namespace ns in the background.
func (tp *bgpTopo) longConns(ns string, n int, size, rate int) func() (string, error) {
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "env",
		fmt.Sprintf("GVS_E2E_ROLE=longconns %s:80 %d %d %d", bgpVIP, n, size, rate), exe)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); cancel() }()
	return func() (string, error) { err := <-done; return out.String(), err }
}

// The router's RIB and FIB have the VIP once per director (ECMP); the
// service whose only server stops being healthy is withdrawn by every
// director; a director put in maintenance drains (its path carries
// graceful-shutdown, loses the best-path selection and leaves the FIB)
// and then withdraws; SIGTERM withdraws at once.
func TestBGPAnnounceECMP(t *testing.T) {
	tp := newBGPTopo(t)
	exe, _ := os.Executable()
	check := tp.start(tp.ns("rs1"), "env", "GVS_E2E_ROLE=serve 198.18.0.11:8081 check", exe)
	for _, name := range bgpDirectors {
		tp.startDirector(name, "mh")
	}
	defer func() {
		for _, name := range bgpDirectors {
			tp.stopDirector(name)
		}
	}()
	want3 := func(prefix string) func() (bool, string) {
		return func() (bool, string) {
			nh := tp.nexthops(prefix)
			return len(nh) == 3, fmt.Sprint(nh)
		}
	}
	took := waitFor(t, 30*time.Second, "three ECMP paths to "+bgpVIP, want3(bgpVIP+"/32"))
	t.Logf("ECMP: %s/32 via %v (%v after the directors were up)", bgpVIP, tp.nexthops(bgpVIP+"/32"), took.Round(time.Millisecond))
	paths, _ := tp.ribPaths(bgpVIP + "/32")
	if len(paths) != 3 {
		t.Fatalf("BGP table has %d paths: %v", len(paths), paths)
	}
	waitFor(t, 15*time.Second, "three ECMP paths to "+bgpVIP2, want3(bgpVIP2+"/32"))
	if out, _ := tp.vtysh("show ip route " + bgpVIP + "/32"); true {
		t.Logf("router:\n%s", out)
	}
	// The API says what the router sees.
	st, err := client.New(tp.d["d1"].socket).BGP()
	if err != nil || !st.Running || len(st.Peers) != 1 || st.Peers[0].State != "established" || len(st.VIPs) != 2 {
		t.Fatalf("GET /v1/bgp: %+v %v", st, err)
	}

	// The checked service's only server stops: every director withdraws.
	check.Process.Kill()
	start := time.Now()
	waitFor(t, 15*time.Second, bgpVIP2+" withdrawn", func() (bool, string) {
		nh := tp.nexthops(bgpVIP2 + "/32")
		return len(nh) == 0, fmt.Sprint(nh)
	})
	t.Logf("server down -> route withdrawn at the router: %v", time.Since(start).Round(time.Millisecond))

	// Maintenance with a drain on d1.
	tp.d["d1"].must("--maintenance", "on", "--drain", "4")
	start = time.Now()
	waitFor(t, 5*time.Second, "d1's path with graceful-shutdown, out of the FIB", func() (bool, string) {
		p, out := tp.ribPaths(bgpVIP + "/32")
		nh := tp.nexthops(bgpVIP + "/32")
		gshut := strings.Contains(strings.ToLower(p["198.18.0.2"]), "graceful")
		return gshut && len(nh) == 2 && !slices.Contains(nh, "198.18.0.2"), out + fmt.Sprint(nh)
	})
	t.Logf("maintenance: drained out of the FIB in %v; BGP table %v", time.Since(start).Round(time.Millisecond), func() any { p, _ := tp.ribPaths(bgpVIP + "/32"); return p }())
	waitFor(t, 10*time.Second, "d1's path withdrawn after the drain", func() (bool, string) {
		p, out := tp.ribPaths(bgpVIP + "/32")
		_, ok := p["198.18.0.2"]
		return !ok && len(p) == 2, out
	})
	t.Logf("maintenance: withdrawn %v after the command", time.Since(start).Round(time.Millisecond))
	tp.d["d1"].must("--maintenance", "off")
	waitFor(t, 10*time.Second, "d1 back", want3(bgpVIP+"/32"))

	// SIGTERM: withdrawn before gvsd exits (not after a hold time).
	start = time.Now()
	tp.d["d3"].stop()
	waitFor(t, 2*time.Second, "d3 withdrawn at SIGTERM", func() (bool, string) {
		nh := tp.nexthops(bgpVIP + "/32")
		return len(nh) == 2, fmt.Sprint(nh)
	})
	t.Logf("SIGTERM -> route gone: %v", time.Since(start).Round(time.Millisecond))
}

// Connections survive a director's loss with mh (every director picks
// the same server; a flow ECMP moves is scheduled again, sloppily, to
// the same server) and mostly do not with rr.
func TestBGPDirectorLoss(t *testing.T) {
	tp := newBGPTopo(t)
	results := map[string][2]int{}
	for _, sched := range []string{"mh", "rr"} {
		ok, n := tp.survival(sched)
		results[sched] = [2]int{ok, n}
	}
	for _, sched := range []string{"mh", "rr"} {
		r := results[sched]
		t.Logf("%s: %d of %d connections byte-exact after a director was killed (%.1f%%)", sched, r[0], r[1], 100*float64(r[0])/float64(r[1]))
	}
	if r := results["mh"]; r[0]*100 < r[1]*99 {
		t.Errorf("mh: only %d of %d connections survived", r[0], r[1])
	}
	if r := results["rr"]; r[0] >= results["mh"][0] {
		t.Errorf("rr kept %d connections, no fewer than mh's %d", r[0], results["mh"][0])
	}
}

// survival runs 2 x 120 long connections through the three directors
// with scheduler sched, kills d3 (SIGKILL and its link down) while they
// run, and returns how many completed byte-exact.
func (tp *bgpTopo) survival(sched string) (ok, total int) {
	t := tp.t
	for _, name := range bgpDirectors {
		tp.startDirector(name, sched)
	}
	defer func() {
		for _, name := range bgpDirectors {
			tp.stopDirector(name)
		}
	}()
	waitFor(t, 30*time.Second, "three ECMP paths", func() (bool, string) {
		nh := tp.nexthops(bgpVIP + "/32")
		return len(nh) == 3, fmt.Sprint(nh)
	})
	const perClient, size, rate = 120, 300_000, 20_000 // 15 s each
	var waits []func() (string, error)
	for _, c := range []string{"c1", "c2"} {
		waits = append(waits, tp.longConns(tp.ns(c), perClient, size, rate))
	}
	time.Sleep(4 * time.Second)
	per := map[string]int{}
	for _, name := range bgpDirectors {
		if cs, err := client.New(tp.d[name].socket).Conns(); err == nil {
			per[name] = len(cs)
		}
	}
	t.Logf("%s: connections per director before the kill: %v", sched, per)
	// Link first: the router learns of the loss only when its hold
	// time (3 s) expires, as when a machine dies; a killed process alone
	// would close its BGP session at once.
	tp.mustRun(tp.ns("d3"), "ip", "link", "set", "eth0", "down")
	tp.d["d3"].kill()
	took := waitFor(t, 15*time.Second, "d3 withdrawn", func() (bool, string) {
		nh := tp.nexthops(bgpVIP + "/32")
		return len(nh) == 2, fmt.Sprint(nh)
	})
	t.Logf("%s: d3's link down and gvsd killed; the router withdrew it after %v (hold time 3 s)", sched, took.Round(time.Millisecond))
	for _, w := range waits {
		out, err := w()
		if err != nil {
			t.Fatalf("longconns: %v\n%s", err, out)
		}
		var k, n int
		fmt.Sscanf(out, "ok %d %d", &k, &n)
		ok, total = ok+k, total+n
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) > 8 {
			lines = append(lines[:8], fmt.Sprintf("... %d more lines", len(lines)-8))
		}
		t.Logf("%s: %s", sched, strings.Join(lines, "; "))
	}
	return ok, total
}
