package bpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// natServerKey puts (proto, addr:port) in nat_servers, as gvsd does for
// every masq server of a service of that protocol.
func natServerKey(t *testing.T, o *Objects, proto uint8, a netip.AddrPort) {
	t.Helper()
	k := SvcKey{Port: htons(a.Port()), Proto: proto, Af: 4}
	k.Addr[0] = ip4(a.Addr())
	must(t, o.NatServers.Put(&k, uint32(1)))
}

// portUnreach is the ICMP port unreachable the director sends back for
// the frame in, from src, built here byte by byte: L2 turned around, an
// IPv4 header with TOS (in's & 0x1e) | 0xc0, id 0, TTL 64, then type 3
// code 3 quoting in's IPv4 header and 8 bytes.
func portUnreach(in []byte, src netip.Addr) []byte {
	var b []byte
	b = append(b, in[6:12]...)
	b = append(b, in[0:6]...)
	b = append(b, 0x08, 0x00)
	ip := []byte{0x45, 0xc0 | in[15]&0x1e, 0, 56, 0, 0, 0, 0, 64, unix.IPPROTO_ICMP, 0, 0}
	s4 := src.As4()
	ip = append(ip, s4[:]...)
	ip = append(ip, in[14+12:14+16]...) // to the packet's source
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	ic := []byte{3, 3, 0, 0, 0, 0, 0, 0}
	ic = append(ic, in[14:14+28]...)
	binary.BigEndian.PutUint16(ic[2:], checksum(ic))
	return append(append(b, ip...), ic...)
}

// TestNATICMPSend: with nat_icmp_send, a TCP (not RST) or UDP packet from
// a NAT server's address and port that matches no connection is dropped
// and answered with ICMP port unreachable from the director's address
// toward the server (ip_vs_out); without it, it passes as before. A
// packet of a connection is still translated; a RST, a packet from
// another port, address or protocol, and one sent to the director itself
// are never answered.
func TestNATICMPSend(t *testing.T) {
	o := loadObjects(t)
	udpRIP := netip.AddrPortFrom(natRIP.Addr(), 5353)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	putDest(t, o, 2, natDest(udpRIP, fwdMasq))
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip, port: 53, sched: schedRR, dests: []uint32{2}})
	natServer(t, o, natRIP.Addr())
	natServerKey(t, o, unix.IPPROTO_TCP, natRIP)
	natServerKey(t, o, unix.IPPROTO_UDP, udpRIP)
	vport := netip.AddrPortFrom(vip, 80)
	from := func(src, dst netip.AddrPort, proto, flags uint8) pkt {
		return pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: src, dst: dst, proto: proto, flags: flags,
			df: true, tos: 0x10, payload: 40}
	}
	other := ap("198.18.64.51:1") // a client without a connection
	stray := from(natRIP, other, unix.IPPROTO_TCP, tcpACK)
	strayUDP := from(udpRIP, other, unix.IPPROTO_UDP, 0)
	passes := []struct {
		name string
		p    pkt
	}{
		{"rst", from(natRIP, other, unix.IPPROTO_TCP, tcpRST|tcpACK)},
		{"another port", from(ap("198.18.64.20:9090"), other, unix.IPPROTO_TCP, tcpACK)},
		{"another address", from(ap("198.18.64.21:8080"), other, unix.IPPROTO_TCP, tcpACK)},
		{"udp from the tcp server's port", from(natRIP, other, unix.IPPROTO_UDP, 0)},
		{"tcp from the udp server's port", from(udpRIP, other, unix.IPPROTO_TCP, tcpSYN)},
		{"to the director itself", from(natRIP, netip.AddrPortFrom(natLIP, 45678), unix.IPPROTO_TCP, tcpSYN|tcpACK)},
	}

	inNetNS(t, func(int) error {
		// nat_icmp_send 0 (the default): passed untouched, as before.
		for _, p := range []pkt{stray, strayUDP} {
			if _, err := expect(o, "sysctl off", p.build(), xdpPass, p.build()); err != nil {
				return err
			}
		}
		if err := o.Config.Put(uint32(0), conf(Config{NatIcmpSend: 1})); err != nil {
			return err
		}
		// A connection's replies are translated as ever.
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpSYN}
		if _, err := expect(o, "syn", in.build(), xdpRedirect, nil); err != nil {
			return err
		}
		r := from(natRIP, natClient, unix.IPPROTO_TCP, tcpSYN|tcpACK)
		want := r
		want.src, want.ttl = vport, 63
		if _, err := expect(o, "reply of a connection", r.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		// Without a connection: port unreachable to the server.
		for _, p := range []pkt{stray, strayUDP} {
			if _, err := expect(o, fmt.Sprintf("no connection, proto %d", p.proto), p.build(), xdpTX,
				portUnreach(p.build(), natLIP)); err != nil {
				return err
			}
		}
		for _, c := range passes {
			if _, err := expect(o, c.name, c.p.build(), xdpPass, c.p.build()); err != nil {
				return err
			}
		}
		return nil
	})
	if ev := events(t, o); ev[evNATICMPSend] != 2 || ev[evReply] != 1 {
		t.Fatalf("events %v", ev)
	}
}
