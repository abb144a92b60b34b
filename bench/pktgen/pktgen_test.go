package pktgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

var (
	srcPrefix = netip.MustParsePrefix("198.19.0.0/16")
	dst       = netip.MustParseAddrPort("198.18.0.100:80")
	srcMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// checkFlood checks frames of a flood: valid, from the prefix, to dst,
// SYNs for TCP, and varied sources.
func checkFlood(t *testing.T, frames [][]byte, proto Proto, wantDst net.HardwareAddr) {
	t.Helper()
	srcs := map[netip.AddrPort]bool{}
	addrs := map[netip.Addr]bool{}
	for i, f := range frames {
		p, err := Parse(f)
		if err != nil {
			t.Fatalf("frame %d: %v\n%s", i, err, hex.Dump(f))
		}
		if p.Proto != proto || p.Dst != dst || !srcPrefix.Contains(p.Src.Addr()) || p.Src.Port() < 1024 {
			t.Fatalf("frame %d: %v %v -> %v", i, p.Proto, p.Src, p.Dst)
		}
		if proto == TCP && p.TCPFlags != FlagSYN {
			t.Fatalf("frame %d: TCP flags %#x, want SYN", i, p.TCPFlags)
		}
		if p.DstMAC.String() != wantDst.String() {
			t.Fatalf("frame %d: to %v, want %v", i, p.DstMAC, wantDst)
		}
		srcs[p.Src] = true
		addrs[p.Src.Addr()] = true
	}
	if len(frames) >= 16 && (len(srcs) < len(frames)*9/10 || len(addrs) < len(frames)/2) {
		t.Fatalf("%d frames from %d sources (%d addresses): not varied enough", len(frames), len(srcs), len(addrs))
	}
}

// The frames written in Go (AF_PACKET) are valid and varied, in both
// orders of sources; sequential ones walk the prefix, then the ports.
func TestFill(t *testing.T) {
	for _, proto := range []Proto{TCP, UDP} {
		for _, seq := range []bool{false, true} {
			g := newGen(Flood{SrcMAC: srcMAC, DstMAC: dstMAC, SrcPrefix: srcPrefix, Dst: dst, Proto: proto, Sequential: seq})
			r := newRNG()
			var frames [][]byte
			for n := range uint64(64) {
				b := make([]byte, FrameLen)
				g.fill(b, n, r)
				frames = append(frames, b)
			}
			checkFlood(t, frames, proto, dstMAC)
			if seq {
				p0, _ := Parse(frames[0])
				p1, _ := Parse(frames[1])
				if p0.Src != netip.MustParseAddrPort("198.19.0.0:1024") || p1.Src != netip.MustParseAddrPort("198.19.0.1:1024") {
					t.Fatalf("sequential sources %v, %v", p0.Src, p1.Src)
				}
				b := make([]byte, FrameLen)
				g.fill(b, 65536, r)
				if p, _ := Parse(b); p.Src != netip.MustParseAddrPort("198.19.0.0:1025") {
					t.Fatalf("frame 65536 from %v, want 198.19.0.0:1025", p.Src)
				}
			}
		}
	}
}

func TestFrameBytes(t *testing.T) {
	for _, proto := range []Proto{TCP, UDP} {
		b := Frame{SrcMAC: srcMAC, DstMAC: dstMAC, Src: netip.MustParseAddrPort("198.18.0.1:10000"), Dst: dst, Proto: proto, TCPFlags: FlagSYN}.Bytes()
		if len(b) != FrameLen {
			t.Fatalf("%v frame of %d bytes", proto, len(b))
		}
		p, err := Parse(b)
		if err != nil || p.Proto != proto || p.Dst != dst {
			t.Fatalf("%v: %+v %v", proto, p, err)
		}
	}
}

// IPv6 frames: the same segment behind an IPv6 header, the TCP and UDP
// checksums right over the IPv6 pseudo-header (RFC 8200 8.1, summed
// here word by word).
func TestFrameBytesIPv6(t *testing.T) {
	src, dst6 := netip.MustParseAddrPort("[2001:db8::1]:10000"), netip.MustParseAddrPort("[2001:db8::100]:80")
	for _, proto := range []Proto{TCP, UDP} {
		b := Frame{SrcMAC: srcMAC, DstMAC: dstMAC, Src: src, Dst: dst6, Proto: proto, TCPFlags: FlagACK}.Bytes()
		if len(b) != 80 || b[12] != 0x86 || b[13] != 0xdd || b[14] != 0x60 || b[20] != byte(proto) || b[21] != 64 {
			t.Fatalf("%v: frame % x", proto, b)
		}
		l4 := b[54:]
		if plen := int(b[18])<<8 | int(b[19]); plen != len(l4) || len(l4) != 26 {
			t.Fatalf("%v: payload length %d, segment %d bytes", proto, plen, len(l4))
		}
		if got := netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[22:38])), uint16(l4[0])<<8|uint16(l4[1])); got != src {
			t.Fatalf("%v: source %v", proto, got)
		}
		var sum uint32
		words := append(append(append([]byte{}, b[22:54]...), 0, 0, 0, byte(len(l4)), 0, 0, 0, byte(proto)), l4...)
		for i := 0; i < len(words); i += 2 {
			sum += uint32(words[i])<<8 | uint32(words[i+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		if sum != 0xffff {
			t.Errorf("%v: checksum wrong (sum %#x)", proto, sum)
		}
		if proto == UDP && l4[6] == 0 && l4[7] == 0 {
			t.Errorf("UDP over IPv6 without a checksum")
		}
	}
}

// vethNS makes a namespace with a veth pair a0 <-> a1 in it, removed when
// the test ends.
func vethNS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skipf("needs BPF: %v", err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "gvspg" + hex.EncodeToString(b)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip("-n", name, "link", "add", "a0", "type", "veth", "peer", "name", "a1")
	// No IPv6 link-local addresses: nothing but the flood on the wire.
	ip("-n", name, "link", "set", "a0", "addrgenmode", "none")
	ip("-n", name, "link", "set", "a1", "addrgenmode", "none")
	ip("-n", name, "link", "set", "a0", "up")
	ip("-n", name, "link", "set", "a1", "up")
	return "/run/netns/" + name
}

func startCapture(t *testing.T, ns, iface string) *Capture {
	t.Helper()
	c, err := StartCapture(ns, iface)
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("needs XDP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Both methods deliver valid, varied frames to the veth peer: a capture
// on a1 sees them (the capture's XDP program gives a1 the NAPI live
// frames need).
func TestFloodDelivers(t *testing.T) {
	ns := vethNS(t)
	var peerMAC net.HardwareAddr
	InNetNS(ns, func() error {
		ifi, err := net.InterfaceByName("a1")
		if err == nil {
			peerMAC = ifi.HardwareAddr
		}
		return err
	})
	for _, m := range []Method{AFPacket, LiveFrames} {
		for _, proto := range []Proto{TCP, UDP} {
			t.Run(m.String()+"/"+proto.String(), func(t *testing.T) {
				c := startCapture(t, ns, "a1")
				defer c.Close()
				const n = 1000
				sent, err := Send(context.Background(), Flood{NetNS: ns, Iface: "a0", DstMAC: peerMAC, SrcPrefix: srcPrefix,
					Dst: dst, Proto: proto, Method: m, Count: n})
				if errors.Is(err, ebpf.ErrNotSupported) {
					t.Skipf("live frames: %v", err)
				}
				if err != nil {
					t.Fatal(err)
				}
				if sent != n {
					t.Fatalf("sent %d, want %d", sent, n)
				}
				time.Sleep(50 * time.Millisecond)
				got, _ := c.Count()
				if got < n*9/10 || got > n {
					t.Fatalf("%d frames arrived of %d sent", got, n)
				}
				frames, err := c.Frames()
				if err != nil {
					t.Fatal(err)
				}
				checkFlood(t, frames, proto, peerMAC)
			})
		}
	}
}

// A flood with a duration stops by itself, and a context ends it early.
func TestFloodStops(t *testing.T) {
	ns := vethNS(t)
	c := startCapture(t, ns, "a1")
	defer c.Close()
	f := Flood{NetNS: ns, Iface: "a0", DstMAC: dstMAC, SrcPrefix: srcPrefix, Dst: dst, Duration: 200 * time.Millisecond}
	start := time.Now()
	sent, err := SYNFlood(context.Background(), f)
	if err != nil || sent == 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("sent %d in %v: %v", sent, time.Since(start), err)
	}
	f.Duration = 0
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if sent, err := UDPFlood(ctx, f); err != nil || sent == 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("sent %d in %v: %v", sent, time.Since(start), err)
	}
	t.Logf("AF_PACKET: %d SYNs in 200 ms (%.0f/s)", sent, float64(sent)/0.2)
}
