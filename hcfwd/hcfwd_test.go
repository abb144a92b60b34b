package hcfwd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// tcUnspec is TC_ACT_UNSPEC (-1), the verdict of every packet the
// programs do not drop; tcShot TC_ACT_SHOT.
const (
	tcUnspec = ^uint32(0)
	tcShot   = 2
)

var (
	dip    = netip.MustParseAddr("198.18.0.2")
	rip    = netip.MustParseAddr("198.18.0.11")
	vip    = netip.MustParseAddr("198.18.50.1")
	client = netip.MustParseAddr("198.18.60.1")
)

// skbCtx is the start of struct __sk_buff: what a test run may set.
type skbCtx struct {
	Len, PktType, Mark uint32
}

func loadForTest(t *testing.T) *hcfwdObjects {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads a BPF program")
	}
	objs, err := load()
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) {
			t.Skipf("BPF not supported here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return objs
}

func run(t *testing.T, prog *ebpf.Program, mark uint32, in []byte) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+256), Context: skbCtx{Mark: mark}}
	ret, err := prog.Run(opts)
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	return ret, opts.DataOut
}

func addTarget(t *testing.T, o *hcfwdObjects, mark uint32, v, r netip.AddrPort, tunnel bool) {
	t.Helper()
	tg, err := targetOf(v, r, tunnel)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.HcTargets.Put(mark, &tg); err != nil {
		t.Fatal(err)
	}
}

func keyOf(laddr netip.Addr, lport uint16, v netip.AddrPort, proto byte) flowKey {
	return flowKey{LAddr: laddr.As4(), VIP: v.Addr().As4(), LPort: port(lport), VPort: port(v.Port()), Proto: proto}
}

const mark1 = MarkBase | 1

func TestEgressDR(t *testing.T) {
	o := loadForTest(t)
	v, r := netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(rip, 8080)
	addTarget(t, o, mark1, v, r, false)

	syn := eth(ipv4(dip, rip, protoTCP, tcp(dip, rip, 40000, 8080, 0x02, nil)))
	ret, out := run(t, o.HcfwdEgress, mark1, syn)
	if ret != tcUnspec {
		t.Fatalf("verdict %d, want TC_ACT_UNSPEC", int32(ret))
	}
	if !bytes.Equal(out[:14], syn[:14]) {
		t.Errorf("Ethernet header changed: % x", out[:14])
	}
	p := parseIPv4(t, "rewritten", out[14:len(syn)])
	if p.src != dip || p.dst != vip || p.proto != protoTCP {
		t.Errorf("rewritten %v -> %v proto %d, want %v -> %v TCP", p.src, p.dst, p.proto, dip, vip)
	}
	if sp, dp := ports(p.payload); sp != 40000 || dp != 80 {
		t.Errorf("ports %d -> %d, want 40000 -> 80", sp, dp)
	}
	if !l4OK(p) {
		t.Errorf("TCP checksum wrong after the rewrite")
	}
	var f flow
	if err := o.HcFlows.Lookup(keyOf(dip, 40000, v, protoTCP), &f); err != nil {
		t.Fatalf("flow not recorded: %v", err)
	}
	if f.RIP != rip.As4() || f.RPort != port(8080) {
		t.Errorf("flow maps back to %v:%d, want %v", f.RIP, binary.BigEndian.Uint16(f.RPort[:]), r)
	}

	// UDP, with and without a checksum; the same port (DR as usual).
	addTarget(t, o, MarkBase|2, netip.AddrPortFrom(vip, 53), netip.AddrPortFrom(rip, 53), false)
	for _, nocsum := range []bool{false, true} {
		in := eth(ipv4(dip, rip, protoUDP, udp(dip, rip, 41000, 53, []byte("query"), nocsum)))
		ret, out := run(t, o.HcfwdEgress, MarkBase|2, in)
		p := parseIPv4(t, "udp", out[14:len(in)])
		if ret != tcUnspec || p.dst != vip || !l4OK(p) {
			t.Errorf("UDP (no checksum %v): verdict %d, dst %v, checksum ok %v", nocsum, int32(ret), p.dst, l4OK(p))
		}
		if c := binary.BigEndian.Uint16(p.payload[6:]); nocsum && c != 0 {
			t.Errorf("UDP without a checksum got one: %#x", c)
		}
	}
}

func TestEgressLeavesOthers(t *testing.T) {
	o := loadForTest(t)
	addTarget(t, o, mark1, netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(rip, 80), false)
	other := netip.MustParseAddr("198.18.0.12")
	for _, c := range []struct {
		name string
		mark uint32
		pkt  []byte
	}{
		{"unmarked", 0, eth(ipv4(dip, rip, protoTCP, tcp(dip, rip, 40000, 80, 0x02, nil)))},
		{"another mark", 0x1234, eth(ipv4(dip, rip, protoTCP, tcp(dip, rip, 40000, 80, 0x02, nil)))},
		{"a reserved mark without a target", MarkBase | 7, eth(ipv4(dip, rip, protoTCP, tcp(dip, rip, 40000, 80, 0x02, nil)))},
		{"to another address", mark1, eth(ipv4(dip, other, protoTCP, tcp(dip, other, 40000, 80, 0x02, nil)))},
		{"to another port", mark1, eth(ipv4(dip, rip, protoTCP, tcp(dip, rip, 40000, 81, 0x02, nil)))},
	} {
		ret, out := run(t, o.HcfwdEgress, c.mark, c.pkt)
		if ret != tcUnspec || !bytes.Equal(out[:len(c.pkt)], c.pkt) {
			t.Errorf("%s: verdict %d, changed %v", c.name, int32(ret), !bytes.Equal(out[:len(c.pkt)], c.pkt))
		}
	}
	// A marked packet of the target that cannot be rewritten: dropped.
	frag := eth(ipv4(dip, rip, protoUDP, udp(dip, rip, 40000, 80, nil, false)))
	binary.BigEndian.PutUint16(frag[14+6:], 0x2000) // MF
	if ret, _ := run(t, o.HcfwdEgress, mark1, frag); ret != tcShot {
		t.Errorf("a fragment: verdict %d, want TC_ACT_SHOT", int32(ret))
	}
}

func TestEgressTUN(t *testing.T) {
	o := loadForTest(t)
	v, r := netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(rip, 80)
	addTarget(t, o, mark1, v, r, true)
	for _, proto := range []byte{protoTCP, protoUDP} {
		var l4 []byte
		if proto == protoTCP {
			l4 = tcp(dip, rip, 40000, 80, 0x18, []byte("GET / HTTP/1.0\r\n\r\n"))
		} else {
			l4 = udp(dip, rip, 40000, 80, []byte("ping"), false)
		}
		in := eth(ipv4(dip, rip, proto, l4))
		ret, out := run(t, o.HcfwdEgress, mark1, in)
		if ret != tcUnspec {
			t.Fatalf("proto %d: verdict %d", proto, int32(ret))
		}
		n := len(in) + 20
		if binary.BigEndian.Uint16(out[12:]) != ethIPv4 || !bytes.Equal(out[:12], in[:12]) {
			t.Errorf("Ethernet header % x", out[:14])
		}
		outer := parseIPv4(t, "outer", out[14:n])
		if outer.src != dip || outer.dst != rip || outer.proto != protoIPIP || outer.tos != 0x10 || !outer.df {
			t.Errorf("outer %v -> %v proto %d tos %#x df %v, want %v -> %v IPIP, TOS and DF copied",
				outer.src, outer.dst, outer.proto, outer.tos, outer.df, dip, rip)
		}
		inner := parseIPv4(t, "inner", outer.payload)
		if inner.src != dip || inner.dst != vip || inner.proto != proto || !l4OK(inner) {
			t.Errorf("inner %v -> %v proto %d checksum ok %v, want %v -> %v", inner.src, inner.dst, inner.proto, l4OK(inner), dip, vip)
		}
		if !bytes.Equal(inner.payload[8:], l4[8:]) && proto == protoUDP {
			t.Errorf("UDP payload changed")
		}
	}
}

func TestIngress(t *testing.T) {
	o := loadForTest(t)
	v, r := netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(rip, 8080)
	addTarget(t, o, mark1, v, r, false)
	addTarget(t, o, MarkBase|2, netip.AddrPortFrom(vip, 53), netip.AddrPortFrom(rip, 5353), false)
	// The checker's packets record the flows.
	run(t, o.HcfwdEgress, mark1, eth(ipv4(dip, rip, protoTCP, tcp(dip, rip, 40000, 8080, 0x02, nil))))
	query := ipv4(dip, rip, protoUDP, udp(dip, rip, 41000, 5353, []byte("query"), false))
	_, qout := run(t, o.HcfwdEgress, MarkBase|2, eth(query))
	sent := qout[14 : 14+len(query)] // as the server got it: to VIP:53

	// The server's SYN-ACK, from the VIP.
	synack := eth(ipv4(vip, dip, protoTCP, tcp(vip, dip, 80, 40000, 0x12, nil)))
	ret, out := run(t, o.HcfwdIngress, 0, synack)
	p := parseIPv4(t, "reply", out[14:len(synack)])
	if ret != tcUnspec || p.src != rip || p.dst != dip || !l4OK(p) {
		t.Errorf("reply: verdict %d, %v -> %v, checksum ok %v; want %v -> %v", int32(ret), p.src, p.dst, l4OK(p), rip, dip)
	}
	if sp, dp := ports(p.payload); sp != 8080 || dp != 40000 {
		t.Errorf("reply ports %d -> %d, want 8080 -> 40000", sp, dp)
	}

	// A UDP answer.
	ans := eth(ipv4(vip, dip, protoUDP, udp(vip, dip, 53, 41000, []byte("answer"), false)))
	_, out = run(t, o.HcfwdIngress, 0, ans)
	p = parseIPv4(t, "udp reply", out[14:len(ans)])
	if sp, _ := ports(p.payload); p.src != rip || sp != 5353 || !l4OK(p) {
		t.Errorf("UDP reply from %v:%d checksum ok %v, want %v:5353", p.src, sp, l4OK(p), rip)
	}

	// Port unreachable from the server about the query.
	unreach := eth(ipv4(vip, dip, protoICMP, icmpUnreach(sent)))
	ret, out = run(t, o.HcfwdIngress, 0, unreach)
	p = parseIPv4(t, "icmp", out[14:len(unreach)])
	if ret != tcUnspec || p.src != rip || p.dst != dip {
		t.Errorf("ICMP: verdict %d, %v -> %v, want %v -> %v", int32(ret), p.src, p.dst, rip, dip)
	}
	if csumFold(csumAdd(0, p.payload)) != 0 {
		t.Errorf("ICMP checksum wrong: % x", p.payload)
	}
	q := p.payload[8:]
	if csumFold(csumAdd(0, q[:20])) != 0 {
		t.Errorf("quoted IP header checksum wrong: % x", q[:20])
	}
	if qs, qd := netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20])); qs != dip || qd != rip {
		t.Errorf("quoted %v -> %v, want %v -> %v", qs, qd, dip, rip)
	}
	if sp, dp := ports(q[20:]); sp != 41000 || dp != 5353 {
		t.Errorf("quoted ports %d -> %d, want 41000 -> 5353", sp, dp)
	}

	// Not a check's: untouched.
	for name, pkt := range map[string][]byte{
		"another local port": eth(ipv4(vip, dip, protoTCP, tcp(vip, dip, 80, 40001, 0x12, nil))),
		"a client's packet":  eth(ipv4(client, vip, protoTCP, tcp(client, vip, 50000, 80, 0x02, nil))),
		"another protocol":   eth(ipv4(vip, dip, 47, []byte("gre....."))),
	} {
		ret, out := run(t, o.HcfwdIngress, 0, pkt)
		if ret != tcUnspec || !bytes.Equal(out[:len(pkt)], pkt) {
			t.Errorf("%s: verdict %d, changed %v", name, int32(ret), !bytes.Equal(out[:len(pkt)], pkt))
		}
	}
}

func TestMarks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads a BPF program")
	}
	objs, err := load()
	if err != nil {
		t.Skipf("BPF not available: %v", err)
	}
	f := &Forwarder{objs: *objs, used: map[uint32]bool{}}
	defer f.Close()
	v, r := netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(rip, 80)
	m1, err := f.Add(v, r, false)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := f.Add(v, r, true)
	if m1 != MarkBase|1 || m2 != MarkBase|2 {
		t.Errorf("marks %#x %#x, want %#x %#x", m1, m2, MarkBase|1, MarkBase|2)
	}
	f.Remove(m1)
	if m3, _ := f.Add(v, r, false); m3 != MarkBase|3 {
		t.Errorf("after a release %#x, want the next id (%#x), not the released one", m3, MarkBase|3)
	}
	var tg target
	if err := f.objs.HcTargets.Lookup(m1, &tg); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("released mark still in the map: %v", err)
	}
	if _, err := f.Add(netip.MustParseAddrPort("[2001:db8::1]:80"), r, false); err == nil {
		t.Errorf("IPv6 accepted")
	}
}
