package nftsteer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestValidate(t *testing.T) {
	v4 := netip.MustParseAddr("198.18.2.2")
	for _, r := range []Rule{
		{Mark: 0, TProxy: &TProxy{Port: 1}},
		{Mark: 1},
		{Mark: 1, TProxy: &TProxy{Port: 1}, Dup: &Dup{To: v4, Device: "x"}},
		{Mark: 1, TProxy: &TProxy{Port: 0}},
		{Mark: 1, Family: 5, TProxy: &TProxy{Port: 1}},
		{Mark: 1, Proto: 132, TProxy: &TProxy{Port: 1}},
		{Mark: 1, TProxy: &TProxy{Port: 1, Addr: v4}}, // address needs a family
		{Mark: 1, Family: IPv6, TProxy: &TProxy{Port: 1, Addr: v4}},
		{Mark: 1, Dup: &Dup{Device: "x"}},
		{Mark: 1, Dup: &Dup{To: v4}},
		{Mark: 1, Family: IPv6, Dup: &Dup{To: v4, Device: "x"}},
		{Mark: 1, Dup: &Dup{To: v4, Device: strings.Repeat("x", 16)}},
		{Mark: 1, Dup: &Dup{To: v4, ToIfDF: v4, Device: "x"}},
		{Mark: 1, Dup: &Dup{To: netip.MustParseAddr("2001:db8::1"), ToIfDF: netip.MustParseAddr("2001:db8::2"), Device: "x"}},
	} {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", r, err)
		}
	}
	for _, r := range []Rule{
		{Mark: 1, TProxy: &TProxy{Port: 1}},
		{Mark: 1, Family: IPv4, Proto: TCP, TProxy: &TProxy{Port: 1, Addr: v4}},
		{Mark: 0xffffffff, Dup: &Dup{To: v4, Device: "eth0"}},
		{Mark: 1, Family: IPv6, Proto: UDP, Dup: &Dup{To: netip.MustParseAddr("2001:db8::1"), Device: "eth0"}},
		{Mark: 1, Family: IPv4, Dup: &Dup{To: v4, ToIfDF: netip.MustParseAddr("198.18.2.3"), Device: "eth0"}},
	} {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

// Namespaces for the tests below: each test makes its own and removes it.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	for _, b := range []string{"ip", "nft", "nsenter"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
}

type nsSet struct {
	t      *testing.T
	prefix string
	names  []string
}

func newNS(t *testing.T, names ...string) *nsSet {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	s := &nsSet{t: t, prefix: "gvsnft" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		for _, n := range s.names {
			exec.Command("ip", "netns", "del", n).Run()
		}
	})
	for _, n := range names {
		full := s.prefix + "-" + n
		s.names = append(s.names, full)
		s.run("", "ip", "netns", "add", full)
		s.run(n, "ip", "link", "set", "lo", "up")
	}
	return s
}

func (s *nsSet) path(n string) string { return "/run/netns/" + s.prefix + "-" + n }

// run runs a command in namespace n ("": the test's own), bounded in time.
func (s *nsSet) run(n string, args ...string) string {
	s.t.Helper()
	if n != "" {
		args = append([]string{"nsenter", "--net=" + s.path(n)}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fd opens namespace n; closed at cleanup.
func (s *nsSet) fd(n string) int {
	s.t.Helper()
	f, err := os.Open(s.path(n))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// in runs f on a thread in namespace n; the thread is thrown away after
// (never back in the pool inside a test namespace). Sockets f opens stay
// in n.
func (s *nsSet) in(n string, f func() error) error {
	s.t.Helper()
	h, err := netns.GetFromPath(s.path(n))
	if err != nil {
		s.t.Fatal(err)
	}
	defer h.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(h); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// veth links a (in namespace na, address ca) and b (nb, cb).
func (s *nsSet) veth(na, a, ca, nb, b, cb string) {
	s.t.Helper()
	s.run("", "ip", "link", "add", a, "netns", s.prefix+"-"+na, "type", "veth", "peer", "name", b, "netns", s.prefix+"-"+nb)
	s.run(na, "ip", "addr", "add", ca, "dev", a)
	s.run(na, "ip", "link", "set", a, "up")
	s.run(nb, "ip", "addr", "add", cb, "dev", b)
	s.run(nb, "ip", "link", "set", b, "up")
}

// listRules returns the expressions of each rule of table fam name in n,
// as nft -j prints them.
func (s *nsSet) listRules(n, fam, name string) ([]string, bool) {
	s.t.Helper()
	out, err := exec.Command("nsenter", "--net="+s.path(n), "nft", "-j", "list", "table", fam, name).CombinedOutput()
	if err != nil {
		return nil, false
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		s.t.Fatalf("nft -j: %v\n%s", err, out)
	}
	var rules []string
	for _, o := range doc.Nftables {
		if raw, ok := o["chain"]; ok {
			var c struct {
				Name, Type, Hook string
				Prio             int
			}
			json.Unmarshal(raw, &c)
			if c.Name != ChainName || c.Type != "filter" || c.Hook != "prerouting" || c.Prio != Priority {
				s.t.Errorf("%s %s: chain %+v", fam, name, c)
			}
		}
		if raw, ok := o["rule"]; ok {
			var r struct{ Expr json.RawMessage }
			json.Unmarshal(raw, &r)
			var b bytes.Buffer
			json.Compact(&b, r.Expr)
			rules = append(rules, b.String())
		}
	}
	return rules, true
}

func TestSyncListing(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "a")
	ns.veth("a", "x0", "198.18.5.1/24", "a", "x1", "198.18.5.2/24")
	tb, err := New("gvstest", WithNetNS(ns.fd("a")))
	if err != nil {
		t.Fatal(err)
	}
	rules := []Rule{
		{Mark: 1, TProxy: &TProxy{Port: 4000}},
		{Mark: 2, Family: IPv4, Proto: TCP, TProxy: &TProxy{Port: 4001, Addr: netip.MustParseAddr("127.0.0.1")}},
		{Mark: 3, Proto: UDP, Dup: &Dup{To: netip.MustParseAddr("198.18.5.9"), Device: "x0"}},
		{Mark: 4, Dup: &Dup{To: netip.MustParseAddr("198.18.5.9"), ToIfDF: netip.MustParseAddr("198.18.5.10"), Device: "x0", NotFrom: "x1"}},
	}
	for range 2 { // idempotent
		if err := tb.Sync(rules); err != nil {
			t.Fatal(err)
		}
	}
	inet, _ := ns.listRules("a", "inet", "gvstest")
	want := []string{
		`"meta":{"key":"nfproto"}},"right":"ipv4"`, // mark 1: ipv4 tcp, ipv4 udp, ipv6 tcp, ipv6 udp
		`"meta":{"key":"nfproto"}},"right":"ipv4"`,
		`"meta":{"key":"nfproto"}},"right":"ipv6"`,
		`"meta":{"key":"nfproto"}},"right":"ipv6"`,
		`"tproxy":{"family":"ip","addr":"127.0.0.1","port":4001}`,
	}
	if len(inet) != len(want) {
		t.Fatalf("inet rules:\n%s", strings.Join(inet, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(inet[i], w) {
			t.Errorf("inet rule %d: %s\nwant %s", i, inet[i], w)
		}
	}
	for i, r := range inet[:4] {
		proto := []string{"tcp", "udp"}[i%2]
		fam := []string{"ip", "ip6"}[i/2]
		for _, w := range []string{`"right":"` + proto + `"`, `"key":"mark"}},"right":1}`, `"counter"`, `"tproxy":{"family":"` + fam + `","port":4000}`} {
			if !strings.Contains(r, w) {
				t.Errorf("inet rule %d: %s\nwant %s", i, r, w)
			}
		}
	}
	ip, _ := ns.listRules("a", "ip", "gvstest")
	if len(ip) != 3 || !strings.Contains(ip[0], `"dup":{"addr":"198.18.5.9","dev":"x0"}`) || !strings.Contains(ip[0], `{"drop":null}`) ||
		!strings.Contains(ip[0], `"right":"udp"`) || !strings.Contains(ip[0], `"right":3}`) {
		t.Errorf("ip rules:\n%s", strings.Join(ip, "\n"))
	}
	// ToIfDF: packets with DF first, to the other address; then the rest.
	if len(ip) == 3 && (!strings.Contains(ip[1], `"frag-off"`) || !strings.Contains(ip[1], `"dup":{"addr":"198.18.5.10","dev":"x0"}`) ||
		!strings.Contains(ip[1], `"right":4}`) || strings.Contains(ip[2], `"frag-off"`) || !strings.Contains(ip[2], `"dup":{"addr":"198.18.5.9","dev":"x0"}`) ||
		!strings.Contains(ip[1], `"iifname"}},"right":"x1"`) || !strings.Contains(ip[2], `"iifname"}},"right":"x1"`)) {
		t.Errorf("ip rules with a DF next hop:\n%s", strings.Join(ip[1:], "\n"))
	}
	if _, ok := ns.listRules("a", "ip6", "gvstest"); ok {
		t.Error("ip6 table without rules exists")
	}

	// Bad input changes nothing.
	before := ns.run("a", "nft", "list", "ruleset")
	for _, bad := range [][]Rule{
		{{Mark: 5, Dup: &Dup{To: netip.MustParseAddr("198.18.5.9"), Device: "nosuch0"}}},
		{{Mark: 0, TProxy: &TProxy{Port: 1}}},
	} {
		if err := tb.Sync(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Sync(%v): %v, want ErrInvalid", bad, err)
		}
	}
	if after := ns.run("a", "nft", "list", "ruleset"); after != before {
		t.Errorf("ruleset changed by bad input:\n%s\nwas:\n%s", after, before)
	}

	// Fewer rules: the ip table goes.
	if err := tb.Sync(rules[:1]); err != nil {
		t.Fatal(err)
	}
	if inet, _ := ns.listRules("a", "inet", "gvstest"); len(inet) != 4 {
		t.Errorf("after resync, inet rules:\n%s", strings.Join(inet, "\n"))
	}
	if _, ok := ns.listRules("a", "ip", "gvstest"); ok {
		t.Error("ip table without rules still exists")
	}
	if err := tb.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Remove(); err != nil { // nothing to remove
		t.Fatal(err)
	}
	if out := ns.run("a", "nft", "list", "ruleset"); strings.Contains(out, "gvstest") {
		t.Errorf("after Remove:\n%s", out)
	}
}

// operatorMark installs the operator's own marking rule in namespace n,
// before gvs's chain: meta mark set mark for proto dport port.
func operatorMark(ns *nsSet, n, proto string, port int, mark int) {
	ns.run(n, "nft", "add", "table", "inet", "op")
	ns.run(n, "nft", "add", "chain", "inet", "op", "pre", "{ type filter hook prerouting priority mangle; }")
	ns.run(n, "nft", "add", "rule", "inet", "op", "pre", proto, "dport", strconv.Itoa(port), "meta", "mark", "set", strconv.Itoa(mark))
}

// txPackets reads dev's transmitted packets from /proc/net/dev, which
// shows the reader's namespace (/sys would show the test's own).
func txPackets(ns *nsSet, n, dev string) int {
	ns.t.Helper()
	for _, line := range strings.Split(ns.run(n, "cat", "/proc/net/dev"), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(rest)
		v, _ := strconv.Atoi(f[9]) // receive: 8 fields, then transmit bytes, packets
		return v
	}
	ns.t.Fatalf("no device %s in %s", dev, n)
	return 0
}

// TestDupTraffic: a marked datagram arriving on the steering host is
// duplicated out of another device and the original is dropped.
//
//	s (198.18.6.1) --- a (198.18.6.2 | 198.18.7.1) --- c (198.18.7.2)
func TestDupTraffic(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "s", "a", "c")
	ns.veth("s", "vs", "198.18.6.1/24", "a", "va", "198.18.6.2/24")
	ns.veth("a", "va2", "198.18.7.1/24", "c", "vc", "198.18.7.2/24")
	operatorMark(ns, "a", "udp", 9999, 7)
	// c counts what arrives for port 9999.
	ns.run("c", "nft", "add", "table", "inet", "cnt")
	ns.run("c", "nft", "add", "chain", "inet", "cnt", "pre", "{ type filter hook prerouting priority 0; }")
	ns.run("c", "nft", "add", "rule", "inet", "cnt", "pre", "udp", "dport", "9999", "counter")
	// Resolve c's address first so the copies are not held for ARP.
	ns.run("a", "ping", "-c1", "-W2", "198.18.7.2")

	tb, _ := New("gvsdup", WithNetNS(ns.fd("a")))
	if err := tb.Sync([]Rule{{Mark: 7, Family: IPv4, Proto: UDP, Dup: &Dup{To: netip.MustParseAddr("198.18.7.2"), Device: "va2"}}}); err != nil {
		t.Fatal(err)
	}
	// The original would reach this socket if it were not dropped.
	var sink *net.UDPConn
	if err := ns.in("a", func() (err error) {
		sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 6, 2), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	tx0 := txPackets(ns, "a", "va2")
	const n = 5
	if err := ns.in("s", func() error {
		c, err := net.Dial("udp4", "198.18.6.2:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range n {
			if _, err := fmt.Fprintf(c, "datagram %d", i); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if tx := txPackets(ns, "a", "va2") - tx0; tx < n {
		t.Errorf("va2 sent %d packets, want at least %d", tx, n)
	}
	out := ns.run("c", "nft", "list", "chain", "inet", "cnt", "pre")
	if !strings.Contains(out, fmt.Sprintf("counter packets %d ", n)) {
		t.Errorf("c received:\n%s", out)
	}
	sink.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 100)
	if k, _, err := sink.ReadFrom(buf); err == nil {
		t.Errorf("the original was delivered: %q", buf[:k])
	}
	// gvs's own counter saw them too.
	if out := ns.run("a", "nft", "list", "table", "ip", "gvsdup"); !strings.Contains(out, fmt.Sprintf("counter packets %d ", n)) {
		t.Errorf("gvs table:\n%s", out)
	}
	if err := tb.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestTProxyTraffic: a marked TCP connection to an address the host does
// not have reaches a transparent listener on another port, with the
// original destination as its local address, given the policy route for
// the mark (which the caller owns; here set with ip).
func TestTProxyTraffic(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "s", "a")
	ns.veth("s", "vs", "198.18.8.1/24", "a", "va", "198.18.8.2/24")
	ns.run("s", "ip", "route", "add", "198.18.9.0/24", "via", "198.18.8.2")
	operatorMark(ns, "a", "tcp", 8080, 9)
	ns.run("a", "ip", "rule", "add", "fwmark", "9", "lookup", "100")
	ns.run("a", "ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")

	var ln net.Listener
	if err := ns.in("a", func() (err error) {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1) })
			return errors.Join(err, serr)
		}}
		ln, err = lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tb, _ := New("gvstp", WithNetNS(ns.fd("a")))
	if err := tb.Sync([]Rule{{Mark: 9, Family: IPv4, Proto: TCP, TProxy: &TProxy{Port: uint16(port), Addr: netip.MustParseAddr("127.0.0.1")}}}); err != nil {
		t.Fatal(err)
	}
	defer tb.Remove()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(b)
		c.Write(bytes.ToUpper(b[:n]))
		got <- c.LocalAddr().String()
	}()
	var reply string
	if err := ns.in("s", func() error {
		c, err := net.DialTimeout("tcp4", "198.18.9.7:8080", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte("hello"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 5)
		n, err := c.Read(b)
		reply = string(b[:n])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if local := <-got; local != "198.18.9.7:8080" || reply != "HELLO" {
		t.Errorf("accepted with local address %s, reply %q", local, reply)
	}
}
