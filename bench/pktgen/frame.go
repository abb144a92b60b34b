package pktgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Frame is one 64-byte IPv4 frame (FrameLen bytes without the FCS):
// UDP with 18 bytes of payload and no checksum (a generator may vary
// the ports), or TCP with a 20-byte header and 6 bytes of payload, its
// checksum right (sequence and acknowledgement numbers 1, window 65535).
// With IPv6 addresses, the same transport segment behind a 40-byte IPv6
// header (hop limit 64): an 80-byte frame (84 with the FCS), the UDP
// checksum computed too (IPv6 forbids none).
// bench/xdpbench's established and new-flow scenarios send these.
type Frame struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.AddrPort
	Proto          Proto // TCP or UDP (zero: UDP)
	TCPFlags       uint8 // TCP only: SYN 0x02, ACK 0x10...
}

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagACK = 0x10
)

// Bytes is the frame.
func (f Frame) Bytes() []byte {
	var b []byte
	b = append(b, f.DstMAC...)
	b = append(b, f.SrcMAC...)
	tcp := f.Proto == TCP
	l4len, proto := 8+18, byte(UDP)
	if tcp {
		l4len, proto = 20+6, byte(TCP)
	}
	var sa, da []byte
	if f.Src.Addr().Is6() {
		b = append(b, 0x86, 0xdd)
		ip := []byte{0x60, 0, 0, 0, 0, 0, proto, 64}
		binary.BigEndian.PutUint16(ip[4:], uint16(l4len))
		s16, d16 := f.Src.Addr().As16(), f.Dst.Addr().As16()
		sa, da = s16[:], d16[:]
		b = append(append(append(b, ip...), sa...), da...)
	} else {
		b = append(b, 0x08, 0x00)
		ip := []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len))
		s4, d4 := f.Src.Addr().As4(), f.Dst.Addr().As4()
		sa, da = s4[:], d4[:]
		ip = append(append(ip, sa...), da...)
		binary.BigEndian.PutUint16(ip[10:], Checksum(ip))
		b = append(b, ip...)
	}
	l4 := binary.BigEndian.AppendUint16(nil, f.Src.Port())
	l4 = binary.BigEndian.AppendUint16(l4, f.Dst.Port())
	if tcp {
		l4 = binary.BigEndian.AppendUint32(l4, 1)
		l4 = binary.BigEndian.AppendUint32(l4, 1)
		l4 = append(l4, 5<<4, f.TCPFlags, 0xff, 0xff, 0, 0, 0, 0)
		l4 = append(l4, make([]byte, 6)...)
		binary.BigEndian.PutUint16(l4[16:], l4Checksum(sa, da, proto, l4))
	} else {
		l4 = binary.BigEndian.AppendUint16(l4, uint16(l4len))
		l4 = append(l4, 0, 0)
		l4 = append(l4, make([]byte, 18)...)
		if len(sa) == 16 {
			// The pseudo-header sums alike with 16-byte addresses.
			c := l4Checksum(sa, da, proto, l4)
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:], c)
		}
	}
	return append(b, l4...)
}

// Packet is what Parse found in a frame.
type Packet struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.AddrPort
	Proto          Proto
	TCPFlags       uint8
	IPID           uint16
	TCPSeq         uint32
	Len            int // the IP packet's total length
}

// Parse reads an Ethernet frame with an IPv4 TCP or UDP packet and
// checks it: header lengths, the IP header checksum and the TCP or UDP
// checksum (a UDP checksum of 0 means none).
func Parse(frame []byte) (Packet, error) {
	var p Packet
	if len(frame) < 14+20 {
		return p, errors.New("pktgen: frame too short")
	}
	if binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return p, fmt.Errorf("pktgen: ethertype %#04x, not IPv4", binary.BigEndian.Uint16(frame[12:]))
	}
	p.DstMAC, p.SrcMAC = net.HardwareAddr(frame[0:6]), net.HardwareAddr(frame[6:12])
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl {
		return p, errors.New("pktgen: bad IPv4 header")
	}
	p.Len = int(binary.BigEndian.Uint16(ip[2:]))
	if p.Len < ihl || p.Len > len(ip) {
		return p, fmt.Errorf("pktgen: IP total length %d, frame holds %d", p.Len, len(ip))
	}
	if Checksum(ip[:ihl]) != 0 {
		return p, errors.New("pktgen: bad IP header checksum")
	}
	p.IPID = binary.BigEndian.Uint16(ip[4:])
	p.Proto = Proto(ip[9])
	l4 := ip[ihl:p.Len]
	src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	switch p.Proto {
	case TCP:
		if len(l4) < 20 || int(l4[12]>>4)*4 < 20 || int(l4[12]>>4)*4 > len(l4) {
			return p, errors.New("pktgen: bad TCP header")
		}
		p.TCPFlags = l4[13]
		p.TCPSeq = binary.BigEndian.Uint32(l4[4:])
	case UDP:
		if len(l4) < 8 || int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			return p, errors.New("pktgen: bad UDP header")
		}
	default:
		return p, fmt.Errorf("pktgen: IP protocol %d", ip[9])
	}
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	if p.Proto == UDP && binary.BigEndian.Uint16(l4[6:]) == 0 {
		return p, nil
	}
	// The sum over pseudo-header and segment, checksum included, is
	// zero when right.
	ph := append(append(append([]byte{}, ip[12:20]...), 0, ip[9]), byte(len(l4)>>8), byte(len(l4)))
	if Checksum(append(ph, l4...)) != 0 {
		return p, fmt.Errorf("pktgen: bad %v checksum", p.Proto)
	}
	return p, nil
}
