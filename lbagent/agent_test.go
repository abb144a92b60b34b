package lbagent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"gvs/bpffs"
	"gvs/client"
	"gvs/lbaas"
)

func TestMain(m *testing.M) {
	// A BPF filesystem on /sys/fs/bpf for the xdp engine's pins, as gvsd
	// would mount it; unmounted again when the tests mounted it.
	undo := func() {}
	if os.Geteuid() == 0 && !bpffs.On("/sys/fs/bpf") {
		if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err == nil {
			undo = func() { unix.Unmount("/sys/fs/bpf", 0) }
		}
	}
	code := m.Run()
	undo()
	os.Exit(code)
}

var (
	buildOnce sync.Once
	gvsdBin   string
	buildErr  error
)

// gvsd builds gvsd once per test run.
func gvsd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gvs-lbagent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		gvsdBin = filepath.Join(dir, "gvsd")
		if out, err := exec.Command("go", "build", "-o", gvsdBin, "gvs/cmd/gvsd").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return gvsdBin
}

// rig is a bridge in the root namespace with a client namespace (the
// VIP subnet's gateway too) and member namespaces on it.
type rig struct {
	t      *testing.T
	prefix string
	bridge string
	ns     map[string]netns.NsHandle
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newRig(t *testing.T) *rig {
	b := make([]byte, 3)
	rand.Read(b)
	r := &rig{t: t, prefix: "gvst" + hex.EncodeToString(b), ns: map[string]netns.NsHandle{}}
	r.bridge = r.prefix + "br"
	t.Cleanup(r.destroy)
	sh(t, "ip", "link", "add", r.bridge, "type", "bridge")
	sh(t, "ip", "link", "set", r.bridge, "up")
	return r
}

func (r *rig) destroy() {
	for name, h := range r.ns {
		h.Close()
		exec.Command("ip", "netns", "del", r.prefix+"-"+name).Run()
	}
	exec.Command("ip", "link", "del", r.bridge).Run()
}

// host adds namespace name on the bridge with eth0 carrying cidr, and
// runs more ip commands in it.
func (r *rig) host(name, cidr string, ipcmds ...[]string) netns.NsHandle {
	t := r.t
	ns := r.prefix + "-" + name
	port := r.prefix + name
	sh(t, "ip", "netns", "add", ns)
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	r.ns[name] = h
	sh(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port)
	sh(t, "ip", "link", "set", port, "master", r.bridge, "up")
	sh(t, "ethtool", "-K", port, "gro", "on")
	for _, c := range append([][]string{{"link", "set", "lo", "up"}, {"addr", "add", cidr, "dev", "eth0"}, {"link", "set", "eth0", "up"}}, ipcmds...) {
		sh(t, append([]string{"ip", "-n", ns}, c...)...)
	}
	sh(t, "nsenter", "--net=/run/netns/"+ns, "ethtool", "-K", "eth0", "tx", "off")
	return h
}

// settle waits until namespace name has no TCP connection closing
// (other than in TIME_WAIT, which holds nothing).
func (r *rig) settle(name string, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		out, _ := exec.Command("nsenter", "--net=/run/netns/"+r.prefix+"-"+name, "ss", "-Htan", "state", "last-ack", "state", "fin-wait-1",
			"state", "fin-wait-2", "state", "closing", "state", "close-wait").CombinedOutput()
		if len(bytes.TrimSpace(out)) == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// server answers each TCP connection with its name.
type server struct {
	name string
	ln   net.Listener
	addr string
	ns   netns.NsHandle
}

func (r *rig) serve(ns netns.NsHandle, addr, name string) *server {
	s := &server{name: name, addr: addr, ns: ns}
	s.start(r.t)
	r.t.Cleanup(func() { s.ln.Close() })
	return s
}

func (s *server) start(t *testing.T) {
	t.Helper()
	err := inNamespace(s.ns, func() error {
		var err error
		s.ln, err = net.Listen("tcp", s.addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				c.Read(buf)
				io.WriteString(c, s.name+"\n")
			}()
		}
	}(s.ln)
}

// hello connects from namespace ns to addr, sends a line and returns the
// answer.
func hello(ns netns.NsHandle, addr string) (string, error) {
	var c net.Conn
	err := inNamespace(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "hello\n")
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	for _, tool := range []string{"ip", "nsenter", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

func TestLifecycleProxy(t *testing.T) { testLifecycle(t, "proxy") }
func TestLifecycleXDP(t *testing.T)   { testLifecycle(t, "xdp") }

// testLifecycle drives one load balancer through the agent: Apply with a
// TCP listener, a ROUND_ROBIN pool of two members and a TCP monitor;
// traffic from a client reaches both members through the VIP; Observe's
// counters match; a member's server stops and Observe reports it down; a
// gvsd killed is restarted; a restarted agent adopts the director; a
// changed spec converges; Delete leaves nothing behind.
func testLifecycle(t *testing.T, engine string) {
	needRoot(t)
	bin := gvsd(t)
	r := newRig(t)
	const vip = "198.18.0.100"
	// The client is 198.19.0.1 (its replies from NAT members must come
	// back through the load balancer) and the VIP subnet's gateway.
	cli := r.host("cli", "198.18.0.1/24", []string{"addr", "add", "198.19.0.1/24", "dev", "eth0"},
		[]string{"route", "add", vip + "/32", "dev", "eth0", "src", "198.19.0.1"})
	m1 := r.host("m1", "198.18.0.11/24", []string{"route", "add", "198.19.0.0/24", "via", vip})
	m2 := r.host("m2", "198.18.0.12/24", []string{"route", "add", "198.19.0.0/24", "via", vip})
	s1 := r.serve(m1, "198.18.0.11:80", "m1")
	s2 := r.serve(m2, "198.18.0.12:80", "m2")

	state, err := os.MkdirTemp("", "gvsl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	pinRoot := "/sys/fs/bpf/" + r.prefix
	t.Cleanup(func() { os.RemoveAll(pinRoot) })
	var logBuf syncBuffer
	opts := Options{Gvsd: bin, Engine: engine, StateDir: state, PinDir: pinRoot, MaxConns: 16384, StopGrace: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
	agent, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	id := fmt.Sprintf("0badc0de-%04x-4%03x-8%03x-%012x", b[0], b[1], b[2], b)
	t.Cleanup(func() {
		agent.Delete(context.Background(), id)
		agent.Close()
		if t.Failed() {
			t.Logf("agent log:\n%s\ngvsd log:\n%s", logBuf.String(), tail(filepath.Join(state, id, "gvsd.log"), 40))
		}
	})

	a := netip.MustParseAddr
	spec := &lbaas.Spec{ID: id, VIP: a(vip), AdminUp: true,
		Network:   lbaas.NetworkRef{Bridge: r.bridge, CIDR: netip.MustParsePrefix("198.18.0.0/24"), Gateway: a("198.18.0.1")},
		Listeners: []lbaas.ListenerSpec{{ID: "l1", Protocol: "TCP", ProtocolPort: 80, AdminUp: true, ConnectionLimit: -1, DefaultPoolID: "p1"}},
		Pools: []lbaas.PoolSpec{{ID: "p1", Protocol: "TCP", LBAlgorithm: "ROUND_ROBIN", AdminUp: true,
			Members: []lbaas.MemberSpec{
				{ID: "mem1", Address: a("198.18.0.11"), ProtocolPort: 80, Weight: 1, AdminUp: true},
				{ID: "mem2", Address: a("198.18.0.12"), ProtocolPort: 80, Weight: 1, AdminUp: true},
			},
			HealthMonitor: &lbaas.HealthMonitorSpec{ID: "hm1", Type: "TCP", Delay: 1, Timeout: 1, MaxRetries: 1, MaxRetriesDown: 1, AdminUp: true}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	if err := agent.Apply(ctx, spec); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Logf("first Apply (%s): %v", engine, time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat("/run/netns/lvs-" + id); err != nil {
		t.Errorf("namespace: %v", err)
	}

	observe := func() *lbaas.Observed {
		t.Helper()
		o, err := agent.Observe(ctx, id)
		if err != nil {
			t.Fatalf("Observe: %v", err)
		}
		return o
	}
	waitMembers := func(want map[string]bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			o := observe()
			ok := true
			for m, up := range want {
				h, known := o.Members[m]
				ok = ok && known && h.Up == up
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("members %+v, want up %v", o.Members, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitMembers(map[string]bool{"mem1": true, "mem2": true})

	seen := map[string]int{}
	for i := range 6 {
		got, err := hello(cli, vip+":80")
		if err != nil {
			t.Fatalf("connection %d through the VIP: %v", i, err)
		}
		seen[got]++
	}
	if seen["m1"] != 3 || seen["m2"] != 3 {
		t.Errorf("round robin spread %v, want 3 each", seen)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := observe().Listeners["l1"]
		if st.TotalConnections == 6 && st.BytesIn > 0 && st.BytesOut > 0 && st.ActiveConnections == 0 {
			t.Logf("stats after 6 connections: %+v", st)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener stats %+v, want 6 connections, bytes both ways, none active", st)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A member's server stops: its check fails and Observe says so;
	// new connections go to the other.
	s2.ln.Close()
	waitMembers(map[string]bool{"mem1": true, "mem2": false})
	if h := observe().Members["mem2"]; h.Reason == "" {
		t.Errorf("mem2 down without a reason: %+v", h)
	}
	for range 3 {
		if got, err := hello(cli, vip+":80"); err != nil || got != "m1" {
			t.Fatalf("with mem2 down: %q %v", got, err)
		}
	}
	s2.start(t)
	waitMembers(map[string]bool{"mem1": true, "mem2": true})

	// A gvsd that dies is restarted, and serves the same rules.
	pid := agent.runningPid(id)
	if pid == 0 {
		t.Fatal("no gvsd pid")
	}
	unix.Kill(pid, unix.SIGKILL)
	deadline = time.Now().Add(60 * time.Second)
	for {
		if p := agent.runningPid(id); p != 0 && p != pid {
			if _, err := client.New(agent.socket(id)).Info(); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gvsd not restarted after it was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := hello(cli, vip+":80"); err != nil || (got != "m1" && got != "m2") {
		t.Fatalf("after the restart: %q %v", got, err)
	}

	// A new agent (gvs-lbaas restarted) adopts the running director.
	pid = agent.runningPid(id)
	agent.Close()
	if agent, err = New(opts); err != nil {
		t.Fatal(err)
	}
	if p := agent.runningPid(id); p != pid {
		t.Errorf("after the agent's restart gvsd is pid %d, was %d", p, pid)
	}

	// A changed spec: mem1 weighs 5, mem2 is removed.
	spec.Pools[0].Members = []lbaas.MemberSpec{{ID: "mem1", Address: a("198.18.0.11"), ProtocolPort: 80, Weight: 5, AdminUp: true}}
	if err := agent.Apply(ctx, spec); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if p := agent.runningPid(id); p != pid {
		t.Errorf("the second Apply restarted gvsd (pid %d, was %d)", p, pid)
	}
	snap, err := client.New(agent.socket(id)).Services()
	if err != nil || len(snap.Services) != 1 || len(snap.Services[0].Dests) != 1 || snap.Services[0].Dests[0].Weight != 5 ||
		snap.Services[0].Dests[0].Addr != a("198.18.0.11") {
		t.Fatalf("after the second Apply: %+v %v", snap, err)
	}
	for range 3 {
		if got, err := hello(cli, vip+":80"); err != nil || got != "m1" {
			t.Fatalf("after mem2's removal: %q %v", got, err)
		}
	}
	_ = s1

	// Delete leaves nothing, and again is not an error. The clients'
	// connections finish first: a socket left in LAST_ACK would hold the
	// test's namespace for minutes. (With the xdp engine a client's FIN
	// sometimes needs its retransmission to get through.)
	r.settle("cli", 10*time.Second)
	if err := agent.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := agent.Delete(ctx, id); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := os.Stat("/run/netns/lvs-" + id); err == nil {
		t.Error("namespace left")
	}
	if _, err := net.InterfaceByName(HostIfName(id)); err == nil {
		t.Error("veth left")
	}
	if _, err := os.Stat(agent.PinDir(id)); err == nil {
		t.Error("pin directory left")
	}
	if _, err := os.Stat(filepath.Join(state, id)); err == nil {
		t.Error("state directory left")
	}
	if isOurs(pid, agent.socket(id)) {
		t.Error("gvsd left running")
	}
	if ids, err := agent.List(); err != nil || len(ids) != 0 && contains(ids, id) {
		t.Errorf("List after Delete: %v %v", ids, err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
