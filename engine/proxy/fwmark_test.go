package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvs/ipvs"
	"gvs/model"
)

func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestOrigDst(t *testing.T) {
	v4 := []byte{unix.AF_INET, 0, 0x01, 0xbb, 198, 18, 1, 100, 0, 0, 0, 0, 0, 0, 0, 0}
	v6 := make([]byte, 28)
	v6[0], v6[2], v6[3] = unix.AF_INET6, 0, 53
	a16 := netip.MustParseAddr("2001:db8:1::100").As16()
	copy(v6[8:], a16[:])
	for _, c := range []struct {
		oob  []byte
		want string
	}{
		{cmsg(unix.SOL_IP, unix.IP_ORIGDSTADDR, v4), "198.18.1.100:443"},
		{cmsg(unix.SOL_IPV6, unix.IPV6_ORIGDSTADDR, v6), "[2001:db8:1::100]:53"},
		{append(cmsg(unix.SOL_IP, unix.IP_TTL, []byte{64, 0, 0, 0}), cmsg(unix.SOL_IP, unix.IP_ORIGDSTADDR, v4)...), "198.18.1.100:443"},
		{cmsg(unix.SOL_IP, unix.IP_ORIGDSTADDR, v4[:6]), ""},
		{nil, ""},
	} {
		got, ok := origDst(c.oob)
		if !ok && c.want != "" || ok && got.String() != c.want {
			t.Errorf("origDst = %v %v, want %q", got, ok, c.want)
		}
	}
}

func fwmSvc(mark uint32, f model.Family) model.Service {
	return model.Service{ServiceKey: model.ServiceKey{FWMark: mark, Family: f}, Scheduler: "rr",
		Flags: model.FlagPersistent, Timeout: 300, Netmask: model.DefaultNetmask(f)}
}

// A fwmark service whose steering cannot be set up is refused and leaves
// nothing: here the nftables table name is refused before anything is
// touched (without privileges, the transparent sockets fail first).
func TestFWMarkRefusedLeavesNothing(t *testing.T) {
	e := New(slog.New(slog.DiscardHandler), WithFWMark(strings.Repeat("x", 300), 0, 0))
	defer e.Close()
	s := fwmSvc(1, model.IPv4)
	err := e.AddService(s)
	var me *model.Error
	if !errors.As(err, &me) {
		t.Fatalf("AddService: %v, want a model.Error", err)
	}
	e.Do(func(v *ipvs.IPVS) {
		if v.Service(s.ServiceKey) != nil {
			t.Error("the model kept the refused service")
		}
	})
	if len(e.fwmKeys()) != 0 {
		t.Error("sockets kept for the refused service")
	}
}

// TestFWMarkRules runs in a network namespace of its own (the test
// binary runs itself there with nsenter): fwmark services create the
// nftables rules, ip rules and local routes, share them by mark and
// family, and take them away; what a killed gvsd left is removed first.
func TestFWMarkRules(t *testing.T) {
	if os.Getenv("GVS_PROXY_NETNS_TEST") == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: builds a network namespace")
		}
		for _, b := range []string{"ip", "nft", "nsenter"} {
			if _, err := exec.LookPath(b); err != nil {
				t.Skipf("needs %s", b)
			}
		}
		rb := make([]byte, 3)
		rand.Read(rb)
		ns := "gvsproxy" + hex.EncodeToString(rb)
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v: %s", err, out)
		}
		defer exec.Command("ip", "netns", "del", ns).Run()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+ns, os.Args[0], "-test.run=^TestFWMarkRules$", "-test.v")
		cmd.Env = append(os.Environ(), "GVS_PROXY_NETNS_TEST=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFWMarkRules") {
			t.Fatalf("in namespace %s: %v\n%s", ns, err, out)
		}
		return
	}
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	sh("ip", "link", "set", "lo", "up")
	// What a killed gvsd left.
	sh("ip", "rule", "add", "fwmark", "9", "lookup", "4747", "priority", "4747")
	sh("nft", "add", "table", "inet", "gvs")
	sh("nft", "add", "chain", "inet", "gvs", "stale")

	e := New(slog.New(slog.DiscardHandler))
	defer e.Close()
	for _, s := range []model.Service{fwmSvc(1, model.IPv4), fwmSvc(1, model.IPv6), fwmSvc(3, model.IPv4)} {
		if err := e.AddService(s); err != nil {
			t.Fatal(err)
		}
	}
	nft := sh("nft", "list", "table", "inet", "gvs")
	if strings.Contains(nft, "stale") || strings.Count(nft, "tproxy ip to 127.0.0.1:") != 4 || strings.Count(nft, "tproxy ip6 to [::1]:") != 2 {
		t.Errorf("nft:\n%s", nft)
	}
	rules4, rules6 := sh("ip", "rule", "list"), sh("ip", "-6", "rule", "list")
	if strings.Contains(rules4, "fwmark 0x9") || !strings.Contains(rules4, "fwmark 0x1 lookup 4747") || !strings.Contains(rules4, "fwmark 0x3 lookup 4747") ||
		!strings.Contains(rules6, "fwmark 0x1 lookup 4747") || strings.Contains(rules6, "fwmark 0x3") {
		t.Errorf("ip rules:\n%s\n%s", rules4, rules6)
	}
	if r := sh("ip", "-6", "route", "list", "table", "4747"); !strings.Contains(r, "local default dev lo") {
		t.Errorf("ip -6 routes: %s", r)
	}

	// A second -A of the same mark changes nothing.
	if err := e.AddService(fwmSvc(1, model.IPv4)); err == nil {
		t.Error("a second fwmark 1 service was added")
	}
	if again := sh("nft", "list", "table", "inet", "gvs"); again != nft {
		t.Errorf("nft after a refused -A:\n%s\nwas:\n%s", again, nft)
	}

	// The IPv6 service goes: its rule and route go, the others stay.
	if err := e.DelService(fwmSvc(1, model.IPv6).ServiceKey); err != nil {
		t.Fatal(err)
	}
	if r := sh("ip", "-6", "rule", "list"); strings.Contains(r, "4747") {
		t.Errorf("ip -6 rules: %s", r)
	}
	if r := sh("ip", "-6", "route", "list", "table", "4747"); strings.TrimSpace(r) != "" {
		t.Errorf("ip -6 routes: %s", r)
	}
	if nft := sh("nft", "list", "table", "inet", "gvs"); strings.Contains(nft, "ip6") || strings.Count(nft, "tproxy ip to") != 4 {
		t.Errorf("nft:\n%s", nft)
	}

	// -C: everything goes.
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if r := sh("nft", "list", "ruleset"); strings.TrimSpace(r) != "" {
		t.Errorf("ruleset after -C:\n%s", r)
	}
	if r := sh("ip", "rule", "list"); strings.Contains(r, "4747") {
		t.Errorf("ip rules after -C: %s", r)
	}
	if r := sh("ip", "route", "list", "table", "4747"); strings.TrimSpace(r) != "" {
		t.Errorf("routes after -C: %s", r)
	}
}
