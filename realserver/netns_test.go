package realserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// End-to-end tests: the real gvs-realserver binary in network namespaces
// the test creates (gvsrs-test-*), addresses from 198.18.0.0/15 only. A
// "director" namespace and a "real server" namespace share a veth pair.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func rsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gvsrs-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gvs-realserver")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "gvs/cmd/gvs-realserver").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	for _, tool := range []string{"ip", "ethtool", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/install-deps.sh)", tool)
		}
	}
}

// pair is two namespaces, "a" (the director) and "b" (the real server),
// joined by vethA (198.18.0.1/24) and vethB (198.18.0.2/24).
type pair struct {
	t      *testing.T
	a, b   string
	dir    string // state and pins of the binary
	pinDir string
}

const (
	addrA = "198.18.0.1"
	addrB = "198.18.0.2"
)

func newPair(t *testing.T) *pair {
	t.Helper()
	needNetns(t)
	r := make([]byte, 3)
	rand.Read(r)
	prefix := "gvsrs-test-" + hex.EncodeToString(r)
	p := &pair{t: t, a: prefix + "-a", b: prefix + "-b", dir: t.TempDir()}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", p.a).Run()
		exec.Command("ip", "netns", "del", p.b).Run()
	})
	p.must("", "ip", "netns", "add", p.a)
	p.must("", "ip", "netns", "add", p.b)
	p.must("", "ip", "link", "add", "vethA", "netns", p.a, "type", "veth", "peer", "name", "vethB", "netns", p.b)
	p.must(p.a, "ip", "addr", "add", addrA+"/24", "dev", "vethA")
	p.must(p.b, "ip", "addr", "add", addrB+"/24", "dev", "vethB")
	p.must(p.a, "ip", "link", "set", "vethA", "up")
	p.must(p.b, "ip", "link", "set", "vethB", "up")
	// Locally sent packets carry partial checksums otherwise.
	p.must(p.a, "ethtool", "-K", "vethA", "tx", "off")
	p.must(p.b, "ethtool", "-K", "vethB", "tx", "off")
	// The real server answers clients through its gateway, the director
	// here; strict reverse-path filtering, as many distributions ship.
	p.must(p.b, "ip", "route", "add", "default", "via", addrA)
	p.must(p.b, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
	return p
}

// withPins gives the binary a BPF file system of the test's own, mounted
// outside /sys so that `ip netns exec` (which remounts /sys) sees it.
func (p *pair) withPins() {
	p.t.Helper()
	mnt := filepath.Join(p.dir, "bpffs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		p.t.Fatal(err)
	}
	if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
		p.t.Skipf("cannot mount a BPF file system: %v", err)
	}
	p.t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	p.pinDir = filepath.Join(mnt, "gvs-realserver")
}

func (p *pair) run(ns string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: timed out", strings.Join(args, " "))
	}
	return out.String(), err
}

func (p *pair) must(ns string, args ...string) string {
	p.t.Helper()
	out, err := p.run(ns, args...)
	if err != nil {
		p.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// rs runs gvs-realserver in the real server's namespace.
func (p *pair) rs(args ...string) (string, error) {
	args = append([]string{rsBinary(p.t)}, args...)
	args = append(args, "--state-dir", filepath.Join(p.dir, "state"))
	if p.pinDir != "" && args[1] == "up" {
		args = append(args, "--pin-dir", p.pinDir)
	}
	return p.run(p.b, args...)
}

func (p *pair) mustRS(args ...string) string {
	p.t.Helper()
	out, err := p.rs(args...)
	if err != nil {
		p.t.Fatalf("gvs-realserver %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *pair) sysctl(key string) string {
	p.t.Helper()
	return strings.TrimSpace(p.must(p.b, "cat", "/proc/sys/"+key))
}

// sysctls reads every setting gvs-realserver may touch in b.
func (p *pair) sysctls() map[string]string {
	p.t.Helper()
	m := map[string]string{}
	for _, dev := range []string{"all", "lo", "vethB"} {
		for _, name := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
			k := confKey(dev, name)
			m[k] = p.sysctl(k)
		}
	}
	return m
}

// inNS runs f on a fresh OS thread in namespace ns; the thread is never
// returned to the runtime's pool (it exits with the locked goroutine).
func inNS[T any](t *testing.T, ns string, f func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with this goroutine
		h, err := netns.GetFromName(ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- result{err: err}
			return
		}
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("in %s: %v", ns, r.err)
		}
		return r.v
	case <-time.After(30 * time.Second):
		t.Fatalf("in %s: timed out", ns)
	}
	panic("unreachable")
}

// listen opens a UDP socket in namespace ns; it stays there, read from
// any thread.
func listen(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	c := inNS(t, ns, func() (*net.UDPConn, error) {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		return pc.(*net.UDPConn), nil
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// ipipSocket is a raw IPPROTO_IPIP socket in namespace ns: what it is
// given goes out as the payload of an IPv4 header with protocol 4 (no
// ipip module needed). The fd is closed at cleanup.
func ipipSocket(t *testing.T, ns string) int {
	t.Helper()
	fd := inNS(t, ns, func() (int, error) {
		return unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func sendIPIP(t *testing.T, fd int, to netip.Addr, inner []byte) {
	t.Helper()
	if err := unix.Sendto(fd, inner, 0, &unix.SockaddrInet4{Addr: to.As4()}); err != nil {
		t.Fatalf("sending IP-in-IP: %v", err)
	}
}

// expectDatagram waits for one datagram, from host from; want nil:
// expects none within a short while.
func expectDatagram(t *testing.T, c *net.UDPConn, want []byte, from string) {
	t.Helper()
	wait := 5 * time.Second
	if want == nil {
		wait = 500 * time.Millisecond
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, src, err := c.ReadFromUDP(buf)
	if want == nil {
		if err == nil {
			t.Fatalf("received %q from %s, expected nothing", buf[:n], src)
		}
		return
	}
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	if !bytes.Equal(buf[:n], want) || src.IP.String() != from {
		t.Fatalf("received %q from %s, want %q from %s", buf[:n], src, want, from)
	}
}

func (p *pair) loAddrs() string {
	return p.must(p.b, "ip", "-o", "addr", "show", "dev", "lo")
}

func (p *pair) loUp() bool {
	return strings.Contains(strings.SplitN(p.must(p.b, "ip", "-o", "link", "show", "dev", "lo"), ">", 2)[0], ",UP")
}

// attachments counts the decapsulation programs attached to vethB in b:
// on the TCX ingress hook and as tc ingress filters.
func (p *pair) attachments() int {
	p.t.Helper()
	n := inNS(p.t, p.b, func() (int, error) {
		ifc, err := net.InterfaceByName("vethB")
		if err != nil {
			return 0, err
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifc.Index, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, ap := range res.Programs {
			prog, err := ebpf.NewProgramFromID(ap.ID)
			if err != nil {
				return 0, err
			}
			info, err := prog.Info()
			prog.Close()
			if err != nil {
				return 0, err
			}
			if info.Name == "gvs_rs_decap" {
				n++
			}
		}
		return n, nil
	})
	for _, line := range strings.Split(p.must(p.b, "tc", "filter", "show", "dev", "vethB", "ingress"), "\n") {
		if strings.Contains(line, "gvs_rs_decap") {
			n++
		}
	}
	return n
}

func TestTunnel(t *testing.T) {
	for _, mode := range []string{AttachTCX, AttachTC} {
		t.Run(mode, func(t *testing.T) { testTunnel(t, mode) })
	}
}

func testTunnel(t *testing.T, mode string) {
	p := newPair(t)
	p.withPins()
	before := p.sysctls()
	if p.loUp() {
		t.Fatal("lo is up in a fresh namespace?")
	}

	up := []string{"up", "--vip", "198.18.50.1", "--tunnel", "--interface", "vethB", "--attach", mode}
	p.mustRS(up...)

	after := p.sysctls()
	for k, want := range map[string]string{
		"net/ipv4/conf/all/arp_ignore":     "1",
		"net/ipv4/conf/all/arp_announce":   "2",
		"net/ipv4/conf/lo/arp_ignore":      "1",
		"net/ipv4/conf/lo/arp_announce":    "2",
		"net/ipv4/conf/vethB/arp_ignore":   "1",
		"net/ipv4/conf/vethB/arp_announce": "2",
		"net/ipv4/conf/vethB/rp_filter":    "2",
		"net/ipv4/conf/all/rp_filter":      "1", // left alone: 2 on vethB wins
	} {
		if after[k] != want {
			t.Errorf("after up: %s = %s, want %s", displayKey(k), after[k], want)
		}
	}
	if !strings.Contains(p.loAddrs(), "198.18.50.1/32") {
		t.Errorf("VIP not on lo:\n%s", p.loAddrs())
	}
	if !p.loUp() {
		t.Error("lo not brought up")
	}
	if n := p.attachments(); n != 1 {
		t.Errorf("%d decapsulation programs attached, want 1", n)
	}
	state, err := os.ReadFile(filepath.Join(p.dir, "state", StateFile))
	if err != nil {
		t.Fatal(err)
	}

	// Idempotent: a second up changes nothing.
	if out := p.mustRS(up...); out != "" {
		t.Errorf("second up made changes:\n%s", out)
	}
	state2, _ := os.ReadFile(filepath.Join(p.dir, "state", StateFile))
	if !bytes.Equal(state, state2) {
		t.Errorf("second up changed the state file:\n%s\n----\n%s", state, state2)
	}
	if got := p.sysctls(); fmt.Sprint(got) != fmt.Sprint(after) {
		t.Errorf("second up changed sysctls: %v, then %v", after, got)
	}
	if n := p.attachments(); n != 1 {
		t.Errorf("after a second up: %d decapsulation programs attached, want 1", n)
	}
	if n := strings.Count(p.loAddrs(), "198.18.50.1/32"); n != 1 {
		t.Errorf("VIP on lo %d times", n)
	}

	// A VIP added later, without --tunnel, is decapsulated too; one taken
	// away no longer is.
	vipMap := func() []string {
		m, err := ebpf.LoadPinnedMap(filepath.Join(p.pinDir, pinMap), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var k vipKey
		var v uint8
		var got []string
		for it := m.Iterate(); it.Next(&k, &v); {
			got = append(got, netip.AddrFrom16(k).Unmap().String())
		}
		slices.Sort(got)
		return got
	}
	if got := vipMap(); fmt.Sprint(got) != "[198.18.50.1]" {
		t.Errorf("VIP map: %v", got)
	}
	p.mustRS("up", "--vip", "198.18.50.3")
	if got := vipMap(); fmt.Sprint(got) != "[198.18.50.1 198.18.50.3]" {
		t.Errorf("VIP map after adding a VIP: %v", got)
	}
	p.mustRS("down", "--vip", "198.18.50.3")
	if got := vipMap(); fmt.Sprint(got) != "[198.18.50.1]" {
		t.Errorf("VIP map after removing a VIP: %v", got)
	}

	// The director's tunnel packet reaches the service on the VIP; `up`
	// has exited, its pins keep the decapsulation in place.
	l := listen(t, p.b, "198.18.50.1:9999")
	fd := ipipSocket(t, p.a)
	client, vip := netip.MustParseAddr("198.18.60.1"), netip.MustParseAddr("198.18.50.1")
	msg := []byte("hello word\n")
	sendIPIP(t, fd, netip.MustParseAddr(addrB), udp4(client, vip, 9999, msg))
	expectDatagram(t, l, msg, "198.18.60.1")

	// To another address it is not decapsulated.
	sendIPIP(t, fd, netip.MustParseAddr(addrB), udp4(client, netip.MustParseAddr("198.18.50.2"), 9999, msg))
	expectDatagram(t, l, nil, "")

	p.mustRS("down")
	if got := p.sysctls(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("down did not restore the sysctls:\n got %v\nwant %v", got, before)
	}
	if strings.Contains(p.loAddrs(), "198.18.50.1") {
		t.Errorf("VIP still on lo after down:\n%s", p.loAddrs())
	}
	if p.loUp() {
		t.Error("lo still up after down")
	}
	if n := p.attachments(); n != 0 {
		t.Errorf("%d decapsulation programs still attached after down", n)
	}
	if _, err := os.Stat(p.pinDir); !os.IsNotExist(err) {
		t.Errorf("pin directory still there after down: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "state", StateFile)); !os.IsNotExist(err) {
		t.Errorf("state file still there after down: %v", err)
	}
	if mode == AttachTC {
		if out := p.must(p.b, "tc", "qdisc", "show", "dev", "vethB"); strings.Contains(out, "clsact") {
			t.Errorf("clsact qdisc left behind:\n%s", out)
		}
	}
	if out := p.mustRS("down"); !strings.Contains(out, "nothing to undo") {
		t.Errorf("second down: %q", out)
	}
}

// TestDirectRouting: DR mode, no tunnel. The real server does not answer
// ARP for the VIP, yet accepts the director's packets for it; IPv4 and
// IPv6 VIPs; down of one VIP, then of the last, restores everything.
func TestDirectRouting(t *testing.T) {
	p := newPair(t)
	before := p.sysctls()
	p.must(p.b, "ip", "link", "set", "lo", "up")

	p.mustRS("up", "--vip", "198.18.50.1,2001:db8:50::1", "--interface", "vethB")
	lo := p.loAddrs()
	if !strings.Contains(lo, "198.18.50.1/32") || !strings.Contains(lo, "2001:db8:50::1/128") {
		t.Fatalf("VIPs not on lo:\n%s", lo)
	}

	// The director's own ARP for the VIP goes unanswered...
	p.must(p.a, "ip", "route", "add", "198.18.50.1/32", "dev", "vethA")
	p.run(p.a, "ping", "-c", "1", "-W", "1", "198.18.50.1")
	if out := p.must(p.a, "ip", "neigh", "show", "198.18.50.1", "dev", "vethA"); strings.Contains(out, "lladdr") {
		t.Errorf("the real server answered ARP for the VIP: %s", out)
	}
	// ...and its packets routed to the real server's own address arrive.
	p.must(p.a, "ip", "route", "replace", "198.18.50.1/32", "via", addrB)
	l := listen(t, p.b, "198.18.50.1:9999")
	inNS(t, p.a, func() (int, error) {
		c, err := net.Dial("udp", "198.18.50.1:9999")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.Write([]byte("dr"))
	})
	expectDatagram(t, l, []byte("dr"), addrA)

	p.mustRS("down", "--vip", "198.18.50.1")
	lo = p.loAddrs()
	if strings.Contains(lo, "198.18.50.1") || !strings.Contains(lo, "2001:db8:50::1/128") {
		t.Errorf("after down of one VIP:\n%s", lo)
	}
	if p.sysctl("net/ipv4/conf/all/arp_ignore") != "1" {
		t.Error("ARP settings undone while a VIP remains")
	}
	p.mustRS("down", "--vip", "2001:db8:50::1")
	if lo := p.loAddrs(); strings.Contains(lo, "2001:db8:50::1") {
		t.Errorf("after down of the last VIP:\n%s", lo)
	}
	if got := p.sysctls(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("down did not restore the sysctls:\n got %v\nwant %v", got, before)
	}
	if !p.loUp() {
		t.Error("lo was up before gvs-realserver; it must stay up")
	}
}

// TestRefusals: what up refuses, before changing anything.
func TestRefusals(t *testing.T) {
	p := newPair(t)
	before := p.sysctls()

	exit1 := func(err error) bool {
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.ExitCode() == 1
	}
	// Under `ip netns exec`, /sys is the command's own: pins in the
	// default /sys/fs/bpf/gvs-realserver would vanish when it exits.
	out, err := p.rs("up", "--vip", "198.18.50.1", "--tunnel", "--interface", "vethB")
	if !exit1(err) || !strings.Contains(out, "nsenter --net=/run/netns/"+p.b) {
		t.Errorf("tunnel with pins under ip netns exec: %v\n%s", err, out)
	}
	// A VIP that is the address of an interface would be answered by ARP.
	out, err = p.rs("up", "--vip", addrB)
	if !exit1(err) || !strings.Contains(out, "configured on vethB") {
		t.Errorf("VIP on vethB: %v\n%s", err, out)
	}
	if got := p.sysctls(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("a refused up changed sysctls:\n got %v\nwant %v", got, before)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "state", StateFile)); !os.IsNotExist(err) {
		t.Errorf("a refused up left a state file: %v", err)
	}
}
