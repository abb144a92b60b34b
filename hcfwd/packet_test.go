package hcfwd

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// Packet builders and checkers for the tests, with checksums computed
// here from scratch (not by the code under test).

const (
	ethIPv4   = 0x0800
	protoICMP = 1
	protoIPIP = 4
	protoTCP  = 6
	protoUDP  = 17
)

// flowKey and flow are struct hc_flow_key and struct hc_flow of hcfwd.c.
type flowKey struct {
	LAddr [4]byte
	VIP   [4]byte
	LPort [2]byte
	VPort [2]byte
	Proto uint8
	_     [3]byte
}

type flow struct {
	RIP   [4]byte
	RPort [2]byte
	_     uint16
}

var (
	macServer = []byte{0x02, 0, 0, 0, 0, 0x0b}
	macDir    = []byte{0x02, 0, 0, 0, 0, 0x0a}
)

func eth(payload []byte) []byte {
	b := append(append([]byte{}, macServer...), macDir...)
	b = binary.BigEndian.AppendUint16(b, ethIPv4)
	return append(b, payload...)
}

func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipv4 builds an IPv4 header (no options, DF set) with a valid checksum.
func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	h[1] = 0x10
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], 0x4000)
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], csumFold(csumAdd(0, h)))
	return append(h, payload...)
}

func pseudo(src, dst netip.Addr, proto byte, n int) uint32 {
	sum := csumAdd(0, src.AsSlice())
	sum = csumAdd(sum, dst.AsSlice())
	return sum + uint32(proto) + uint32(n)
}

// tcp builds a TCP segment (20-byte header, flags as given) with its
// checksum.
func tcp(src, dst netip.Addr, sport, dport uint16, flags byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], 0x01020304)
	h[12] = 5 << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 64240)
	h = append(h, payload...)
	binary.BigEndian.PutUint16(h[16:], csumFold(csumAdd(pseudo(src, dst, protoTCP, len(h)), h)))
	return h
}

// udp builds a UDP datagram; nocsum leaves its checksum 0 ("none").
func udp(src, dst netip.Addr, sport, dport uint16, payload []byte, nocsum bool) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	u = append(u, payload...)
	if !nocsum {
		c := csumFold(csumAdd(pseudo(src, dst, protoUDP, len(u)), u))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(u[6:], c)
	}
	return u
}

// icmpUnreach builds an ICMP port unreachable quoting the IPv4 header and
// 8 bytes of quoted.
func icmpUnreach(quoted []byte) []byte {
	m := []byte{3, 3, 0, 0, 0, 0, 0, 0}
	m = append(m, quoted[:28]...)
	binary.BigEndian.PutUint16(m[2:], csumFold(csumAdd(0, m)))
	return m
}

// ip is a parsed IPv4 packet: header fields and payload.
type ip struct {
	src, dst netip.Addr
	proto    byte
	tos      byte
	df       bool
	payload  []byte
}

// parseIPv4 reads the IPv4 packet at b, failing t unless its header
// checksum and length are right.
func parseIPv4(t *testing.T, what string, b []byte) ip {
	t.Helper()
	if len(b) < 20 || b[0] != 0x45 {
		t.Fatalf("%s: not an option-less IPv4 header: % x", what, b[:min(len(b), 20)])
	}
	if csumFold(csumAdd(0, b[:20])) != 0 {
		t.Errorf("%s: IP header checksum wrong: % x", what, b[:20])
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n > len(b) || n < 20 {
		t.Fatalf("%s: total length %d, have %d bytes", what, n, len(b))
	}
	return ip{src: netip.AddrFrom4([4]byte(b[12:16])), dst: netip.AddrFrom4([4]byte(b[16:20])), proto: b[9],
		tos: b[1], df: b[6]&0x40 != 0, payload: b[20:n]}
}

// l4OK says whether a TCP or UDP checksum over p is right (UDP: or 0).
func l4OK(p ip) bool {
	if p.proto == protoUDP && binary.BigEndian.Uint16(p.payload[6:]) == 0 {
		return true
	}
	return csumFold(csumAdd(pseudo(p.src, p.dst, p.proto, len(p.payload)), p.payload)) == 0
}

func ports(b []byte) (uint16, uint16) {
	return binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
}

func netip4(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
