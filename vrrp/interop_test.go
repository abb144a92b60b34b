package vrrp

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The interop tests run gvs (this test binary re-executed as a helper,
// see TestMain) and keepalived in network namespaces joined by a
// bridge.

const helperEnv = "GVS_VRRP_HELPER"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelper(cfg))
	}
	code := m.Run()
	if lab != nil {
		lab.destroy()
	}
	os.Exit(code)
}

// runHelper runs a Manager on the JSON config at path until SIGTERM
// (Close: priority 0) or SIGKILL, printing each transition as a JSON
// line {"instance", "state"} on stdout.
func runHelper(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := NewManager(log, Options{})
	var mu sync.Mutex
	for _, in := range cfg.Instances {
		m.Subscribe(in.Name, func(s State) {
			mu.Lock()
			defer mu.Unlock()
			line, _ := json.Marshal(map[string]string{"instance": in.Name, "state": s.String()})
			os.Stdout.Write(append(line, '\n'))
		})
	}
	if err := m.Update(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-sig
	m.Close()
	return 0
}

// netLab is the package's namespaces, made once and removed by TestMain.
type netLab struct {
	prefix string
	nodes  []string
}

var (
	lab     *netLab
	labErr  error
	labOnce sync.Once
)

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// needLab skips without root or keepalived, and builds the lab: a bridge
// in namespace PREFIX-sw and nodes ka, g1 and g2 with eth0 on it
// (198.18.0.1-3/24, 2001:db8::1-3/64).
func needLab(t *testing.T) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	for _, bin := range []string{"ip", "nsenter", "keepalived"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (scripts/install-deps.sh)", bin)
		}
	}
	labOnce.Do(func() {
		b := make([]byte, 3)
		rand.Read(b)
		l := &netLab{prefix: "gvr" + hex.EncodeToString(b)}
		lab = l
		sw := l.prefix + "-sw"
		cmds := [][]string{
			{"ip", "netns", "add", sw},
			{"ip", "-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"},
			{"ip", "-n", sw, "link", "set", "br0", "up"},
		}
		for i, n := range []string{"ka", "g1", "g2"} {
			ns := l.prefix + "-" + n
			l.nodes = append(l.nodes, ns)
			cmds = append(cmds,
				[]string{"ip", "netns", "add", ns},
				[]string{"nsenter", "--net=/run/netns/" + ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
				[]string{"ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "v" + n, "netns", sw},
				[]string{"ip", "-n", sw, "link", "set", "v" + n, "master", "br0", "up"},
				[]string{"ip", "-n", ns, "addr", "add", fmt.Sprintf("198.18.0.%d/24", i+1), "dev", "eth0"},
				[]string{"ip", "-n", ns, "addr", "add", fmt.Sprintf("2001:db8::%d/64", i+1), "dev", "eth0", "nodad"},
				[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
				[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			)
		}
		for _, c := range cmds {
			if labErr = run(c...); labErr != nil {
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // link-local addresses
	})
	if labErr != nil {
		t.Fatal(labErr)
	}
	return lab
}

func (l *netLab) destroy() {
	for _, ns := range l.nodes {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "netns", "del", l.prefix+"-sw").Run()
}

func (l *netLab) ns(node string) string { return l.prefix + "-" + node }

// proc is a process in a namespace whose output lines are watched.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	lines chan line
	done  chan struct{}

	vrrpPid string // keepalived's -r file

	mu  sync.Mutex
	log []string // everything it printed, for a failed test's log
}

func (l *netLab) start(t *testing.T, node, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + l.ns(node)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{t: t, name: name, cmd: cmd, lines: make(chan line, 1000), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			now := time.Now()
			p.mu.Lock()
			p.log = append(p.log, now.Format("15:04:05.000 ")+sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- line{at: now, text: sc.Text()}:
			default:
			}
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		p.wait()
		if t.Failed() || os.Getenv("GVS_VRRP_LOGS") != "" {
			p.mu.Lock()
			t.Logf("%s printed:\n%s", name, strings.Join(p.log, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

func (p *proc) signal(s syscall.Signal) {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(s)
	}
}

func (p *proc) wait() {
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not exit", p.name)
	}
}

// line is an output line and when it was read.
type line struct {
	at   time.Time
	text string
}

// await waits for a line containing all of want, returning when it was
// read; it fails the test after timeout.
func (p *proc) await(timeout time.Duration, want ...string) time.Time {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l.text, w)
			}
			if ok {
				return l.at
			}
		case <-deadline:
			p.t.Fatalf("%s: no line with %q within %v", p.name, want, timeout)
		}
	}
}

// awaitEach waits for a line with each of wants, in any order, and
// returns when each was read.
func (p *proc) awaitEach(timeout time.Duration, wants ...string) map[string]time.Time {
	p.t.Helper()
	got := map[string]time.Time{}
	deadline := time.After(timeout)
	for len(got) < len(wants) {
		select {
		case l := <-p.lines:
			for _, w := range wants {
				if _, ok := got[w]; !ok && strings.Contains(l.text, w) {
					got[w] = l.at
				}
			}
		case <-deadline:
			p.t.Fatalf("%s: lines %q not all seen within %v (saw %v)", p.name, wants, timeout, got)
		}
	}
	return got
}

func state(in, st string) string { return `"instance":"` + in + `","state":"` + st + `"` }

// startGVS runs the helper in node with cfg.
func (l *netLab) startGVS(t *testing.T, node string, cfg *Config) *proc {
	t.Helper()
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "vrrp.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return l.start(t, node, "gvs@"+node, []string{helperEnv + "=" + path}, os.Args[0])
}

// startKeepalived runs keepalived's VRRP process in node with conf.
func (l *netLab) startKeepalived(t *testing.T, node, conf string) *proc {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := l.start(t, node, "keepalived@"+node, nil, "keepalived", "-P", "-n", "-l", "-D", "-f", path,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	p.vrrpPid = filepath.Join(dir, "vrrp.pid")
	return p
}

// killVRRP kills keepalived's VRRP child with SIGKILL: no priority 0.
func (p *proc) killVRRP() {
	b, err := os.ReadFile(p.vrrpPid)
	if err != nil {
		p.t.Fatalf("keepalived's VRRP pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

func (l *netLab) hasAddr(node, addr string) bool {
	out, _ := exec.Command("ip", "-n", l.ns(node), "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	return strings.Contains(string(out), " "+addr+" ")
}

func kaConf(prio int) string {
	return fmt.Sprintf(`global_defs {
    vrrp_garp_master_delay 1
}
vrrp_instance VI_4 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %[1]d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass gvs
    }
    virtual_ipaddress {
        198.18.0.100/32
    }
}
vrrp_instance VI_6 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    version 3
    priority %[1]d
    advert_int 1
    virtual_ipaddress {
        2001:db8::100/128
    }
}
`, prio)
}

func gvsConf(prio uint8) *Config {
	return &Config{GARP: GARP{MasterDelay: time.Second, MasterRepeat: 5, RefreshRepeat: 1}, Instances: []Instance{
		{Name: "VI_4", Interface: "eth0", VRID: 51, Priority: prio, AdvertInterval: time.Second, AuthPass: "gvs",
			VIPs: []VIP{{Prefix: mustPrefix("198.18.0.100/32")}}},
		{Name: "VI_6", Interface: "eth0", VRID: 52, Version: 3, Priority: prio, AdvertInterval: time.Second,
			VIPs: []VIP{{Prefix: mustPrefix("2001:db8::100/128")}}},
	}}
}

// TestInteropKeepalived runs gvs (priority 100) against keepalived
// (priority 150), for VRRPv2 over IPv4 with PASS authentication and
// VRRPv3 over IPv6 at once.
func TestInteropKeepalived(t *testing.T) {
	l := needLab(t)
	const timeout = 15 * time.Second
	tt := t // processes live until the whole test ends

	ka := l.startKeepalived(t, "ka", kaConf(150))
	g := l.startGVS(t, "g1", gvsConf(100))
	ka.awaitEach(timeout, "(VI_4) Entering MASTER STATE", "(VI_6) Entering MASTER STATE")
	time.Sleep(500 * time.Millisecond)
	if !l.hasAddr("ka", "198.18.0.100/32") || l.hasAddr("g1", "198.18.0.100/32") {
		t.Fatal("the VIP is not (only) on keepalived's node")
	}

	t.Run("keepalived killed", func(t *testing.T) {
		ka.t, g.t = t, t
		// keepalived's VRRP child resigns cleanly when its parent dies:
		// kill it first.
		kill := time.Now()
		ka.killVRRP()
		ka.signal(syscall.SIGKILL)
		ka.wait()
		ats := g.awaitEach(timeout, state("VI_4", "MASTER"), state("VI_6", "MASTER"))
		for _, in := range []string{"VI_4", "VI_6"} {
			d := ats[state(in, "MASTER")].Sub(kill)
			t.Logf("%s: gvs master %v after kill -9 (master-down 3.609 s from the last advert)", in, d.Round(time.Millisecond))
			if d < 2500*time.Millisecond || d > 4*time.Second {
				t.Errorf("%s: takeover after %v, want 2.6..3.61 s", in, d)
			}
		}
		if !l.hasAddr("g1", "198.18.0.100/32") || !l.hasAddr("g1", "2001:db8::100/128") {
			t.Error("gvs master lacks the VIPs")
		}
	})

	t.Run("keepalived preempts gvs", func(t *testing.T) {
		ka = l.startKeepalived(tt, "ka", kaConf(150))
		ka.t, g.t = t, t
		start := time.Now()
		ats := g.awaitEach(timeout, state("VI_4", "BACKUP"), state("VI_6", "BACKUP"))
		for _, in := range []string{"VI_4", "VI_6"} {
			t.Logf("%s: gvs yielded %v after keepalived started (its master-down 3.414 s)", in, ats[state(in, "BACKUP")].Sub(start).Round(time.Millisecond))
		}
		ka.awaitEach(timeout, "(VI_4) Entering MASTER STATE", "(VI_6) Entering MASTER STATE")
		if l.hasAddr("g1", "198.18.0.100/32") || l.hasAddr("g1", "2001:db8::100/128") {
			t.Error("gvs backup kept a VIP")
		}
	})

	t.Run("keepalived stops with priority 0", func(t *testing.T) {
		ka.t, g.t = t, t
		stop := time.Now()
		ka.signal(syscall.SIGTERM)
		ats := g.awaitEach(timeout, state("VI_4", "MASTER"), state("VI_6", "MASTER"))
		for _, in := range []string{"VI_4", "VI_6"} {
			d := ats[state(in, "MASTER")].Sub(stop)
			t.Logf("%s: gvs master %v after keepalived's SIGTERM (skew time 0.609 s)", in, d.Round(time.Millisecond))
			if d > 1500*time.Millisecond {
				t.Errorf("%s: takeover after %v, want the skew time (0.609 s), not the master-down interval", in, d)
			}
		}
		ka.wait()
	})

	t.Run("gvs stops with priority 0", func(t *testing.T) {
		ka = l.startKeepalived(tt, "ka", kaConf(50))
		ka.t = t
		ka.awaitEach(timeout, "(VI_4) Entering BACKUP STATE", "(VI_6) Entering BACKUP STATE")
		time.Sleep(time.Second) // it has seen gvs's adverts
		g.t = t
		stop := time.Now()
		g.signal(syscall.SIGTERM)
		g.wait()
		at := ka.await(timeout, "(VI_4) Entering MASTER STATE")
		d := at.Sub(stop)
		t.Logf("keepalived master %v after gvs's Close (skew time for 50: 0.805 s)", d.Round(time.Millisecond))
		if d > 1500*time.Millisecond {
			t.Errorf("keepalived took over after %v, want its skew time", d)
		}
		if l.hasAddr("g1", "198.18.0.100/32") {
			t.Error("gvs left its VIP behind on Close")
		}
	})
}

// TestInteropGVSPair runs two gvs instances (VRRPv3, IPv4, 100 ms).
func TestInteropGVSPair(t *testing.T) {
	l := needLab(t)
	const timeout = 10 * time.Second
	conf := func(prio uint8) *Config {
		return &Config{Version: 3, Instances: []Instance{{Name: "VI", Interface: "eth0", VRID: 61, Priority: prio,
			AdvertInterval: 100 * time.Millisecond, VIPs: []VIP{{Prefix: mustPrefix("198.18.0.200/32")}}}}}
	}
	a := l.startGVS(t, "g1", conf(150))
	a.await(timeout, `"state":"MASTER"`)
	b := l.startGVS(t, "g2", conf(100))
	b.await(timeout, `"state":"BACKUP"`)
	time.Sleep(500 * time.Millisecond)
	if !l.hasAddr("g1", "198.18.0.200/32") || l.hasAddr("g2", "198.18.0.200/32") {
		t.Fatal("VIP not on the master only")
	}
	stop := time.Now()
	a.signal(syscall.SIGTERM)
	d := b.await(timeout, `"state":"MASTER"`).Sub(stop)
	t.Logf("priority 0: backup master after %v (skew 61 ms)", d.Round(time.Millisecond))
	if d > 500*time.Millisecond {
		t.Errorf("takeover after %v, want about the skew time", d)
	}
	a.wait()
	a = l.startGVS(t, "g1", conf(150))
	b.await(timeout, `"state":"BACKUP"`)
	kill := time.Now()
	a.signal(syscall.SIGKILL)
	d = b.await(timeout, `"state":"MASTER"`).Sub(kill)
	t.Logf("kill -9: backup master after %v (master-down 361 ms)", d.Round(time.Millisecond))
	if d < 200*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("takeover after %v, want 0.26..0.36 s", d)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
