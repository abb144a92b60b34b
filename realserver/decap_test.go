package realserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// tcUnspec is TC_ACT_UNSPEC (-1), the program's verdict for every packet
// it does not drop.
const tcUnspec = ^uint32(0)

// loadForTest loads the program with an unpinned VIP map holding vips.
func loadForTest(t *testing.T, vips ...netip.Addr) *decapObjects {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads a BPF program")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("cannot lift the memlock limit: %v", err)
	}
	spec, err := loadDecap()
	if err != nil {
		t.Fatal(err)
	}
	spec.Maps[decapMapGvsRsVips].Pinning = ebpf.PinNone
	var objs decapObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			t.Skipf("BPF not supported here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	for _, v := range vips {
		if err := objs.GvsRsVips.Put(keyOf(v), uint8(1)); err != nil {
			t.Fatal(err)
		}
	}
	return &objs
}

func run(t *testing.T, prog *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	ret, out, err := tryRun(prog, in)
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	return ret, out
}

func tryRun(prog *ebpf.Program, in []byte) (uint32, []byte, error) {
	opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256)}
	ret, err := prog.Run(opts)
	return ret, opts.DataOut, err
}

func TestDecap(t *testing.T) {
	var (
		director  = netip.MustParseAddr("198.18.0.1")
		rs        = netip.MustParseAddr("198.18.0.2")
		client    = netip.MustParseAddr("198.18.60.1")
		vip       = netip.MustParseAddr("198.18.50.1")
		other     = netip.MustParseAddr("198.18.50.2")
		director6 = netip.MustParseAddr("2001:db8::1")
		rs6       = netip.MustParseAddr("2001:db8::2")
		client6   = netip.MustParseAddr("2001:db8:60::1")
		vip6      = netip.MustParseAddr("2001:db8:50::1")
	)
	objs := loadForTest(t, vip, vip6)
	payload := []byte("hello word\n")

	inner4 := udp4(client, vip, 9999, payload)
	inner6 := udp6(client6, vip6, 9999, payload)

	mangle := func(p []byte, f func([]byte)) []byte {
		p = append([]byte{}, p...)
		f(p)
		return p
	}
	// refresh recomputes the outer IPv4 checksum after a change.
	refresh := func(ip []byte) {
		ip[10], ip[11] = 0, 0
		ihl := int(ip[0]&0xf) * 4
		binary.BigEndian.PutUint16(ip[10:], csumFold(csumAdd(0, ip[:ihl])))
	}

	tests := []struct {
		name string
		in   []byte
		want []byte // nil: unchanged
	}{
		{"ipip to the VIP", eth(ethIPv4, ipv4(director, rs, protoIPIP, inner4)), eth(ethIPv4, inner4)},
		{"ip6ip6 to the VIP", eth(ethIPv6, ipv6(director6, rs6, protoIPv6, inner6)), eth(ethIPv6, inner6)},
		{"IPv4 in IPv6 to the VIP", eth(ethIPv6, ipv6(director6, rs6, protoIPIP, inner4)), eth(ethIPv4, inner4)},
		{"IPv6 in IPv4 to the VIP", eth(ethIPv4, ipv4(director, rs, protoIPv6, inner6)), eth(ethIPv6, inner6)},
		{"ipip to another address", eth(ethIPv4, ipv4(director, rs, protoIPIP, udp4(client, other, 9999, payload))), nil},
		{"plain UDP to the VIP", eth(ethIPv4, inner4), nil},
		{"plain UDP6 to the VIP", eth(ethIPv6, inner6), nil},
		{"ARP", eth(ethARP, make([]byte, 28)), nil},
		{"Ethernet header only", eth(ethARP, nil), nil},
		{"Ethernet header only, IPv4 ethertype", eth(ethIPv4, nil), nil},
		{"outer IPv4 truncated", eth(ethIPv4, ipv4(director, rs, protoIPIP, inner4)[:12]), nil},
		{"inner header truncated", eth(ethIPv4, ipv4(director, rs, protoIPIP, inner4[:12])), nil},
		{"outer IPv6 truncated", eth(ethIPv6, ipv6(director6, rs6, protoIPv6, inner6)[:30]), nil},
		{"inner IPv6 truncated", eth(ethIPv6, ipv6(director6, rs6, protoIPv6, inner6[:30])), nil},
		{"outer fragment", eth(ethIPv4, mangle(ipv4(director, rs, protoIPIP, inner4), func(ip []byte) {
			ip[6] |= 0x20 // MF
			refresh(ip)
		})), nil},
		{"outer options", eth(ethIPv4, mangle(ipv4(director, rs, protoIPIP, append(make([]byte, 4), inner4...)), func(ip []byte) {
			ip[0] = 0x46 // 4 bytes of options (zero: end of list)
			refresh(ip)
		})), nil},
		{"outer bad checksum", eth(ethIPv4, mangle(ipv4(director, rs, protoIPIP, inner4), func(ip []byte) { ip[10] ^= 0xff })), nil},
		{"outer length beyond the packet", eth(ethIPv4, mangle(ipv4(director, rs, protoIPIP, inner4), func(ip []byte) {
			binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+1))
			refresh(ip)
		})), nil},
		{"protocol 4 carrying IPv6", eth(ethIPv4, ipv4(director, rs, protoIPIP, inner6)), nil},
		{"protocol 41 carrying IPv4", eth(ethIPv4, ipv4(director, rs, protoIPv6, inner4)), nil},
		{"IPv4 ethertype, IPv6 header", eth(ethIPv4, ipv6(director6, rs6, protoIPv6, inner6)), nil},
	}
	// The kernel's test run refuses an IP ethertype with less than an IP
	// header after it (EINVAL); a real interface can still hand such a
	// frame to tc, and the verifier has checked that the program never
	// reads beyond the packet.
	mayRefuse := map[string]bool{
		"Ethernet header only, IPv4 ethertype": true,
		"outer IPv4 truncated":                 true,
		"outer IPv6 truncated":                 true,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ret, out, err := tryRun(objs.GvsRsDecap, tt.in)
			if err != nil && mayRefuse[tt.name] && errors.Is(err, unix.EINVAL) {
				t.Skipf("the kernel's test run refuses this input: %v", err)
			}
			if err != nil {
				t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
			}
			if ret != tcUnspec {
				t.Errorf("verdict %d, want TC_ACT_UNSPEC", int32(ret))
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			if !bytes.Equal(out, want) {
				t.Errorf("packet out:\n got % x\nwant % x", out, want)
			}
		})
	}
}

// TestDecapVIPRemoved: a VIP taken out of the map is no longer decapsulated.
func TestDecapVIPRemoved(t *testing.T) {
	vip := netip.MustParseAddr("198.18.50.1")
	objs := loadForTest(t, vip)
	in := eth(ethIPv4, ipv4(netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), protoIPIP,
		udp4(netip.MustParseAddr("198.18.60.1"), vip, 9999, []byte("x"))))
	if _, out := run(t, objs.GvsRsDecap, in); len(out) != len(in)-20 {
		t.Fatalf("not decapsulated: %d bytes out of %d", len(out), len(in))
	}
	if err := objs.GvsRsVips.Delete(keyOf(vip)); err != nil {
		t.Fatal(err)
	}
	if _, out := run(t, objs.GvsRsDecap, in); !bytes.Equal(out, in) {
		t.Fatal("decapsulated after the VIP was removed")
	}
}
