package realserver

import (
	"encoding/binary"
	"net/netip"
)

// Packet builders for the tests: enough of Ethernet, IPv4, IPv6 and UDP
// to craft what a director sends in TUN mode.

const (
	ethIPv4 = 0x0800
	ethIPv6 = 0x86dd
	ethARP  = 0x0806

	protoIPIP = 4
	protoIPv6 = 41
	protoUDP  = 17
)

var (
	macB = []byte{0x02, 0, 0, 0, 0, 0x0b}
	macA = []byte{0x02, 0, 0, 0, 0, 0x0a}
)

func eth(etype uint16, payload []byte) []byte {
	b := append(append([]byte{}, macB...), macA...)
	b = binary.BigEndian.AppendUint16(b, etype)
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

// ipv4 builds an IPv4 header (no options, DF clear) with a valid checksum.
func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], csumFold(csumAdd(0, h)))
	return append(h, payload...)
}

func ipv6(src, dst netip.Addr, next byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = 64
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// udp builds a UDP datagram with its checksum over the pseudo header.
func udp(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	u = append(u, payload...)
	sum := csumAdd(0, src.AsSlice())
	sum = csumAdd(sum, dst.AsSlice())
	sum += protoUDP + uint32(len(u))
	c := csumFold(csumAdd(sum, u))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return u
}

// udp4 and udp6 are a whole inner packet: IP header and UDP datagram.
func udp4(src, dst netip.Addr, dport uint16, payload []byte) []byte {
	return ipv4(src, dst, protoUDP, udp(src, dst, 40000, dport, payload))
}

func udp6(src, dst netip.Addr, dport uint16, payload []byte) []byte {
	return ipv6(src, dst, protoUDP, udp(src, dst, 40000, dport, payload))
}
