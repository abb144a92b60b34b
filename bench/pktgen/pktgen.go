// Package pktgen sends test traffic into a network namespace's interface
// as fast as this machine allows: spoofed TCP SYN floods and UDP flow
// floods from sources drawn in a prefix, for bench/xdpbench and the e2e
// tests. It also builds single frames (Frame), checks frames (Parse) and
// captures what arrives on an interface (Capture).
//
// Two methods, as shared/BENCHMARKING.md found on veth:
//
//   - LiveFrames: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES running
//     bpf/benchprog's flood program, which writes every frame (new
//     source address and port, checksums right) and sends it with
//     XDP_TX out of the interface to its veth peer: millions of frames
//     per second, arriving at the peer as from a NIC driver. Only for a
//     peer that handles them with XDP (a director's XDP program): frames
//     the peer hands to the kernel stack are almost all lost, and the
//     peer needs NAPI (an XDP program, or GRO on) to take them at all.
//     Linux 5.18 or later.
//   - AFPacket (the default): an AF_PACKET socket (sendmmsg, qdisc
//     bypassed) writing the same frames from Go: hundreds of thousands of
//     frames per second, as kernel-built packets that every receiver
//     takes, the kernel stack included (nftables, a bridge).
//
// Both need root (CAP_NET_RAW; CAP_BPF and CAP_NET_ADMIN for live
// frames). The frames are 64 bytes on the wire: a TCP SYN with an MSS
// option (58 bytes and 2 of padding) or a UDP datagram of 18 bytes.
package pktgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Proto is the flood's transport protocol (its IP protocol number).
type Proto uint8

const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto %d", uint8(p))
}

// Method is how frames are sent.
type Method uint8

const (
	// AFPacket sends with an AF_PACKET socket: every receiver takes the
	// frames. The zero Method.
	AFPacket Method = iota
	// LiveFrames sends with BPF_PROG_RUN live frames and XDP_TX: for
	// receivers that run XDP only (see the package documentation).
	LiveFrames
)

func (m Method) String() string {
	if m == LiveFrames {
		return "live frames"
	}
	return "AF_PACKET"
}

// Flood says what to send and where.
type Flood struct {
	// NetNS is the path of the network namespace Iface is in (e.g.
	// /run/netns/NAME); empty: the caller's.
	NetNS string
	// Iface is the interface the frames leave by: for LiveFrames one end
	// of a veth pair (the frames arrive at its peer).
	Iface string
	// SrcMAC is the frames' source MAC (nil: Iface's own); DstMAC their
	// destination (the receiver's MAC, e.g. the director's interface).
	SrcMAC, DstMAC net.HardwareAddr
	// SrcPrefix is where source addresses are drawn from (IPv4): at
	// random, or every address in turn when Sequential. Source ports are
	// 1024-65535, at random or, when Sequential, the next port once
	// every address had the current one (so every frame is a new flow
	// until the prefix's addresses times 64,512 ports are used up).
	SrcPrefix  netip.Prefix
	Sequential bool
	// Dst is the frames' destination address and port (IPv4).
	Dst netip.AddrPort
	// Proto is TCP (SYNs) or UDP; SYNFlood and UDPFlood set it.
	Proto  Proto
	Method Method
	// Duration bounds the flood (0: until the context ends); Count, if
	// not 0, stops it after that many frames.
	Duration time.Duration
	Count    uint64
}

// SYNFlood sends spoofed TCP SYNs as f says until f.Duration has passed,
// f.Count frames are sent or ctx ends, and returns the number of frames
// sent (handed to the interface: what arrives is the receiver's to
// count). A context that ends is not an error.
func SYNFlood(ctx context.Context, f Flood) (sent uint64, err error) {
	f.Proto = TCP
	return Send(ctx, f)
}

// UDPFlood is SYNFlood with UDP datagrams of 18 bytes: every frame a new
// flow.
func UDPFlood(ctx context.Context, f Flood) (sent uint64, err error) {
	f.Proto = UDP
	return Send(ctx, f)
}

// Send sends f's flood (f.Proto must be set) and returns the number of
// frames sent.
func Send(ctx context.Context, f Flood) (sent uint64, err error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	err = InNetNS(f.NetNS, func() error {
		ifi, err := net.InterfaceByName(f.Iface)
		if err != nil {
			return fmt.Errorf("pktgen: %w", err)
		}
		if f.SrcMAC == nil {
			f.SrcMAC = ifi.HardwareAddr
		}
		if len(f.SrcMAC) != 6 {
			return fmt.Errorf("pktgen: %s has no Ethernet address: set SrcMAC", f.Iface)
		}
		if f.Duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, f.Duration)
			defer cancel()
		}
		g := newGen(f)
		if f.Method == LiveFrames {
			sent, err = sendLive(ctx, ifi.Index, g)
		} else {
			sent, err = sendPacket(ctx, ifi.Index, g)
		}
		return err
	})
	return sent, err
}

func (f *Flood) check() error {
	switch {
	case f.Proto != TCP && f.Proto != UDP:
		return fmt.Errorf("pktgen: protocol %v: TCP or UDP only", f.Proto)
	case f.Iface == "":
		return errors.New("pktgen: no interface")
	case len(f.DstMAC) != 6:
		return errors.New("pktgen: DstMAC must be an Ethernet address")
	case !f.SrcPrefix.IsValid() || !f.SrcPrefix.Addr().Is4():
		return fmt.Errorf("pktgen: source prefix %v: IPv4 only", f.SrcPrefix)
	case !f.Dst.IsValid() || !f.Dst.Addr().Is4():
		return fmt.Errorf("pktgen: destination %v: IPv4 only", f.Dst)
	case f.Method != AFPacket && f.Method != LiveFrames:
		return fmt.Errorf("pktgen: unknown method %d", f.Method)
	}
	return nil
}

// gen is a flood's frame template and how its sources vary, as
// bpf/benchprog's flood program reads them (struct flood_cfg): the
// template has every varied field zero and checksums computed so.
type gen struct {
	frame      [FrameLen]byte
	saddr      uint32 // host order
	hostmask   uint32
	proto      Proto
	sequential bool
	count      uint64
}

// FrameLen is the length of every frame pktgen writes (64 bytes on the
// wire without the FCS).
const FrameLen = 60

// Offsets in the flood's frames.
const (
	offIPID    = 14 + 4
	offIPCsum  = 14 + 10
	offSaddr   = 14 + 12
	offL4      = 14 + 20
	offTCPSeq  = offL4 + 4
	offTCPCsum = offL4 + 16
	offUDPCsum = offL4 + 6

	firstPort = 1024
	nPorts    = 65536 - firstPort
)

func newGen(f Flood) *gen {
	p := f.SrcPrefix.Masked()
	a := p.Addr().As4()
	g := &gen{saddr: binary.BigEndian.Uint32(a[:]), hostmask: uint32(uint64(1)<<(32-p.Bits()) - 1),
		proto: f.Proto, sequential: f.Sequential, count: f.Count}
	b := g.frame[:0]
	b = append(b, f.DstMAC...)
	b = append(b, f.SrcMAC...)
	b = append(b, 0x08, 0x00)
	l4len := 8 + 18
	if f.Proto == TCP {
		l4len = 24
	}
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, byte(f.Proto), 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len))
	d4 := f.Dst.Addr().As4()
	ip = append(ip, d4[:]...)
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip))
	b = append(b, ip...)
	l4 := binary.BigEndian.AppendUint16(nil, 0)
	l4 = binary.BigEndian.AppendUint16(l4, f.Dst.Port())
	if f.Proto == TCP {
		// seq 0 (varied), ack 0, 6 words of header, SYN, window 64240,
		// checksum, urgent 0, MSS 1460.
		l4 = append(l4, 0, 0, 0, 0, 0, 0, 0, 0, 6<<4, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4, 0x05, 0xb4)
	} else {
		l4 = binary.BigEndian.AppendUint16(l4, uint16(l4len))
		l4 = append(l4, 0, 0)
		l4 = append(l4, make([]byte, 18)...)
	}
	binary.BigEndian.PutUint16(l4[l4CsumOff(f.Proto):], l4Checksum(ip[12:16], d4[:], byte(f.Proto), l4))
	b = append(b, l4...)
	_ = b // the rest, to FrameLen, is Ethernet padding (zero)
	return g
}

func l4CsumOff(p Proto) int {
	if p == TCP {
		return 16
	}
	return 6
}

// l4Checksum is the TCP or UDP checksum of l4 (its checksum field zero)
// with the IPv4 pseudo-header.
func l4Checksum(src, dst []byte, proto byte, l4 []byte) uint16 {
	ph := append(append(append([]byte{}, src...), dst...), 0, proto)
	ph = binary.BigEndian.AppendUint16(ph, uint16(len(l4)))
	return Checksum(append(ph, l4...))
}

// Checksum is the Internet checksum of b (RFC 1071).
func Checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// fill writes frame n of the flood into b (FrameLen bytes), as the BPF
// program does: r is a random source.
func (g *gen) fill(b []byte, n uint64, r *rng) {
	copy(b, g.frame[:])
	var addr, port uint32
	if g.sequential {
		hosts := uint64(g.hostmask) + 1
		addr = g.saddr + uint32(n%hosts)
		port = firstPort + uint32(n/hosts%nPorts)
	} else {
		x := r.next()
		addr = g.saddr | uint32(x)&g.hostmask
		port = firstPort + uint32(x>>32)%nPorts
	}
	x := r.next()
	id := uint16(x)
	binary.BigEndian.PutUint32(b[offSaddr:], addr)
	binary.BigEndian.PutUint16(b[offIPID:], id)
	binary.BigEndian.PutUint16(b[offL4:], uint16(port))
	sa := addr>>16 + addr&0xffff
	binary.BigEndian.PutUint16(b[offIPCsum:], ^fold(uint32(^binary.BigEndian.Uint16(b[offIPCsum:]))+sa+uint32(id)))
	if g.proto == TCP {
		isn := uint32(x >> 32)
		binary.BigEndian.PutUint32(b[offTCPSeq:], isn)
		c := uint32(^binary.BigEndian.Uint16(b[offTCPCsum:]))
		binary.BigEndian.PutUint16(b[offTCPCsum:], ^fold(c+sa+port+isn>>16+isn&0xffff))
	} else {
		c := ^fold(uint32(^binary.BigEndian.Uint16(b[offUDPCsum:])) + sa + port)
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(b[offUDPCsum:], c)
	}
}

func fold(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// rng is xorshift64*: fast, and random enough for spoofed sources.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s ^= r.s >> 12
	r.s ^= r.s << 25
	r.s ^= r.s >> 27
	return r.s * 2685821657736338717
}

func newRNG() *rng { return &rng{s: uint64(time.Now().UnixNano()) | 1} }
