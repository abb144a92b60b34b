package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// Tunnels between the families (tun46.h): an IPv4 service's IPv6 server
// gets IPv4 in IPv6, an IPv6 service's IPv4 server IPv6 in IPv4. Frames
// built and checksummed here, the outer headers checked byte for byte.

var rsTun4 = netip.MustParseAddr("198.18.64.10")

// outer6 is the IPv6 header ip_vs_tunnel_xmit_v6 puts before an IPv4
// packet inner (the hop limit 64 here, as for IPv6 in IPv6).
func outer6(inner []byte, dst netip.Addr) []byte { return outer6To(hopMAC, inner, dst) }

func outer6To(mac [6]byte, inner []byte, dst netip.Addr) []byte {
	tos := inner[1]
	var b []byte
	b = append(b, mac[:]...)
	b = append(b, dirMAC...)
	b = append(b, 0x86, 0xdd, 0x60|tos>>4, tos<<4, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(inner)))
	b = append(b, 4, 64)
	s, d := tunSrc6.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, inner...)
}

// outer4 is the IPv4 header ip_vs_tunnel_xmit puts before an IPv6 packet
// inner: DF clear, protocol 41, TTL 64 (as IP-in-IP here), the id given.
func outer4(inner []byte, dst netip.Addr, id uint16) []byte {
	return outer4To(hopMAC, inner, dst, id)
}

func outer4To(mac [6]byte, inner []byte, dst netip.Addr, id uint16) []byte {
	var b []byte
	b = append(b, mac[:]...)
	b = append(b, dirMAC...)
	b = append(b, 0x08, 0x00)
	tclass := inner[0]<<4 | inner[1]>>4
	ip := []byte{0x45, tclass, 0, 0, 0, 0, 0, 0, 64, 41, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(inner)))
	binary.BigEndian.PutUint16(ip[4:], id)
	s, d := tunSrc.As4(), dst.As4()
	ip = append(append(ip, s[:]...), d[:]...)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(append(b, ip...), inner...)
}

func TestTun4in6(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdTunnel))
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip, port: 53, sched: schedRR, dests: []uint32{1}})

	for i, c := range []struct {
		name    string
		proto   uint8
		vlan    uint16
		payload int
		df      bool
		act     uint32
		mtu     uint16 // of the fragmentation needed answered
	}{
		{"encapsulated", unix.IPPROTO_TCP, 0, 100, true, xdpRedirect, 0},
		{"encapsulated, vlan dropped", unix.IPPROTO_TCP, 12, 100, false, xdpRedirect, 0},
		{"UDP", unix.IPPROTO_UDP, 0, 30, false, xdpRedirect, 0},
		{"fits exactly", unix.IPPROTO_TCP, 0, 1500 - 40 - 40, true, xdpRedirect, 0},
		{"too big with DF", unix.IPPROTO_TCP, 0, 1500 - 40 - 40 + 1, true, xdpTX, 1460},
		{"too big with DF, vlan", unix.IPPROTO_TCP, 3, 1500 - 40, true, xdpTX, 1460},
		{"too big without DF", unix.IPPROTO_TCP, 0, 1500 - 40, false, xdpPass, 0},
	} {
		p := syn(netip.AddrPortFrom(client.Addr(), uint16(3000+i)), 80)
		p.proto, p.vlan, p.payload, p.df, p.tos = c.proto, c.vlan, c.payload, c.df, 0xb9
		if c.proto == unix.IPPROTO_UDP {
			p.dst = netip.AddrPortFrom(vip, 53)
		}
		in := p.build()
		act, out := run(t, o, in)
		if act != c.act {
			t.Fatalf("%s: action %s, want %s", c.name, actionNames[act], actionNames[c.act])
		}
		l3 := 14
		if c.vlan != 0 {
			l3 = 18
		}
		switch c.act {
		case xdpRedirect:
			if want := outer6(in[l3:], rs6); !bytes.Equal(out, want) {
				t.Fatalf("%s: output\n%x\nwant\n%x", c.name, out, want)
			}
		case xdpTX:
			if err := icmpErr(in, out, l3, 4, c.mtu); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		default:
			if !bytes.Equal(out, in) {
				t.Fatalf("%s: packet changed", c.name)
			}
		}
	}
	// The connection's next packet: by the same tunnel (in_conn).
	ack := syn(netip.AddrPortFrom(client.Addr(), 3000), 80)
	ack.flags, ack.payload = tcpACK, 10
	in := ack.build()
	if act, out := run(t, o, in); act != xdpRedirect || !bytes.Equal(out, outer6(in[14:], rs6)) {
		t.Fatalf("established: %s\n%x", actionNames[act], out)
	}
	// The client's ICMP error about a reply (from the VIP) goes to the
	// server as it is, in the tunnel.
	reply := pkt{src: netip.AddrPortFrom(vip, 80), dst: netip.AddrPortFrom(client.Addr(), 3000), flags: tcpSYN | tcpACK}
	du := icmpPkt(client.Addr(), vip, 3, 0, quote(reply), 64, clientMAC, vipMAC)
	if act, out := run(t, o, du); act != xdpRedirect || !bytes.Equal(out, outer6(du[14:], rs6)) {
		t.Fatalf("ICMP about a reply: %s\n%x", actionNames[act], out)
	}
	ev := events(t, o)
	if ev[evFragNeeded] != 2 || ev[evTooBig] != 1 || ev[evFamily] != 0 || ev[evICMP] != 1 {
		t.Fatalf("events %v: want 2 frag needed, 1 too big, 1 icmp, no family", ev)
	}

	// Without an IPv6 tunnel source: passed, counted no_route.
	must(t, o.V6Config.Put(uint32(0), &Config6{}))
	in = syn(netip.AddrPortFrom(client.Addr(), 4000), 80).build()
	if act, out := run(t, o, in); act != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("no IPv6 tunnel source: %s", actionNames[act])
	}
	if ev := events(t, o); ev[evNoRoute] != 1 {
		t.Fatalf("no_route %d, want 1", ev[evNoRoute])
	}
}

func TestTun6in4(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))
	d := Dest{Port: htons(80), Method: fwdTunnel, Af: 4, Weight: 1, Flags: destAvailable, Ifindex: outIface, Mac: hopMAC}
	d.Addr[0] = ip4(rsTun4)
	putDest(t, o, 1, d)
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	vp := netip.AddrPortFrom(vip6, 80)

	// check compares the frame with the outer header built here around
	// the inner packet, with the id the program chose.
	check := func(name string, in []byte, l3 int, out []byte) uint16 {
		t.Helper()
		if len(out) < 34 {
			t.Fatalf("%s: %d bytes out", name, len(out))
		}
		id := binary.BigEndian.Uint16(out[18:])
		if want := outer4(in[l3:], rsTun4, id); !bytes.Equal(out, want) {
			t.Fatalf("%s: output\n%x\nwant\n%x", name, out, want)
		}
		if checksum(out[14:34]) != 0 {
			t.Fatalf("%s: outer checksum does not verify", name)
		}
		return id
	}
	ids := map[uint16]bool{}
	for i, c := range []struct {
		name    string
		vlan    uint16
		payload int
		act     uint32
		mtu     uint32
	}{
		{"encapsulated", 0, 100, xdpRedirect, 0},
		{"encapsulated, vlan dropped", 12, 100, xdpRedirect, 0},
		{"fits exactly", 0, 1500 - 20 - 60, xdpRedirect, 0},
		{"too big", 0, 1500 - 20 - 60 + 1, xdpTX, 1480},
		{"too big, vlan", 7, 1500 - 60, xdpTX, 1480},
	} {
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, vlan: c.vlan, src: netip.AddrPortFrom(client6.Addr(), uint16(3000+i)),
			dst: vp, flags: tcpSYN, payload: c.payload, tclass: 0xb9}
		in := p.build()
		l3 := 14
		if c.vlan != 0 {
			l3 = 18
		}
		act, out := run(t, o, in)
		if act != c.act {
			t.Fatalf("%s: action %s, want %s", c.name, actionNames[act], actionNames[c.act])
		}
		if act == xdpRedirect {
			ids[check(c.name, in, l3, out)] = true
			continue
		}
		q := in[l3:]
		q = q[:min(len(q), 1232)&^3]
		want := icmp6Frame(vipMAC, clientMAC, vip6, client6.Addr(), 2, 0, c.mtu, q, 64)
		if c.vlan != 0 {
			want = append(append(append([]byte{}, want[:12]...), 0x81, 0, 0, byte(c.vlan)), want[12:]...)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("%s: output\n%x\nwant\n%x", c.name, out, want)
		}
	}
	// The connection's next packets, and the client's ICMPv6 error about
	// a reply: to the server as they are, in the tunnel.
	for i := range 4 {
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: netip.AddrPortFrom(client6.Addr(), 3000), dst: vp, flags: tcpACK, payload: i}
		in := p.build()
		act, out := run(t, o, in)
		if act != xdpRedirect {
			t.Fatalf("established %d: %s", i, actionNames[act])
		}
		ids[check(fmt.Sprint("established ", i), in, 14, out)] = true
	}
	du := icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 1, 4, 0,
		(pkt6{src: vp, dst: netip.AddrPortFrom(client6.Addr(), 3000), flags: tcpSYN | tcpACK}).build()[14:][:48], 64)
	act, out := run(t, o, du)
	if act != xdpRedirect {
		t.Fatalf("ICMPv6 about a reply: %s", actionNames[act])
	}
	ids[check("ICMPv6 about a reply", du, 14, out)] = true
	// DF is clear: the ids must tell the packets apart.
	if len(ids) < 7 {
		t.Fatalf("outer ids %v: want them to differ", ids)
	}
	ev := events(t, o)
	if ev[evFragNeeded] != 2 || ev[evFamily] != 0 || ev[evICMP] != 1 {
		t.Fatalf("events %v: want 2 frag needed, 1 icmp, no family", ev)
	}

	// Without an IPv4 tunnel source: passed, counted no_route.
	must(t, o.Config.Put(uint32(0), conf(Config{})))
	in := (pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: ap("[2001:db8:5::9]:1"), dst: vp, flags: tcpSYN}).build()
	if act, out := run(t, o, in); act != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("no IPv4 tunnel source: %s", actionNames[act])
	}
	if ev := events(t, o); ev[evNoRoute] != 1 {
		t.Fatalf("no_route %d, want 1", ev[evNoRoute])
	}
}

// Only a tunnel crosses the families: a DR or NAT entry of the other
// family (stale, or written by something else) is not forwarded to.
func TestMixedFamilyNotTunnel(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	must(t, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	d := Dest{Port: htons(80), Method: fwdRoute, Af: 4, Weight: 1, Flags: destAvailable, Ifindex: outIface, Mac: hopMAC}
	d.Addr[0] = ip4(rsTun4)
	putDest(t, o, 2, d)
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{2}})
	in := syn(client, 80).build()
	if act, out := run(t, o, in); act != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("IPv4 to an IPv6 DR server: %s", actionNames[act])
	}
	in = (pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 80), flags: tcpSYN}).build()
	if act, out := run(t, o, in); act != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("IPv6 to an IPv4 DR server: %s", actionNames[act])
	}
	if ev := events(t, o); ev[evFamily] != 2 {
		t.Fatalf("family %d, want 2", ev[evFamily])
	}
}

// Without a next hop from gvsd (dests[].ifindex 0): the outer family's
// FIB finds the gateway and the MTU (gvs0's, 1400), and a packet beyond
// it gets the inner family's answer with the MTU less the outer header.
func TestTun46FIB(t *testing.T) {
	o := loadObjects(t)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	must(t, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))
	d6 := Dest{Addr: words6(rs6), Port: htons(80), Method: fwdTunnel, Af: 6, Weight: 1, Flags: destAvailable}
	putDest(t, o, 1, d6)
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	d4 := Dest{Port: htons(80), Method: fwdTunnel, Af: 4, Weight: 1, Flags: destAvailable}
	d4.Addr[0] = ip4(rsTun4)
	putDest(t, o, 2, d4)
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{2}})

	inNetNS6(t, func(int) error {
		for i, c := range []struct {
			payload int
			act     uint32
		}{{1400 - 40 - 40, xdpRedirect}, {1400 - 40 - 40 + 1, xdpTX}} {
			p := syn(netip.AddrPortFrom(client.Addr(), uint16(5000+i)), 80)
			p.payload, p.tos = c.payload, 0x28
			in := p.build()
			got, out, err := runNS(o, in)
			if err != nil {
				return err
			}
			if got != c.act {
				return fmt.Errorf("IPv4 in IPv6, %d bytes: %s", len(in)-14, actionNames[got])
			}
			if c.act == xdpRedirect && !bytes.Equal(out, outer6To([6]byte(gwMAC), in[14:], rs6)) {
				return fmt.Errorf("IPv4 in IPv6 by the FIB: output\n%x", out)
			}
			if c.act == xdpTX {
				if err := icmpErr(in, out, 14, 4, 1360); err != nil {
					return fmt.Errorf("IPv4 in IPv6, too big: %w", err)
				}
			}
		}
		return nil
	})
	inNetNS(t, func(int) error {
		vp := netip.AddrPortFrom(vip6, 80)
		for i, c := range []struct {
			payload int
			act     uint32
		}{{1400 - 20 - 60, xdpRedirect}, {1400 - 20 - 60 + 1, xdpTX}} {
			p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: netip.AddrPortFrom(client6.Addr(), uint16(5000+i)), dst: vp,
				flags: tcpSYN, payload: c.payload, tclass: 0x28}
			in := p.build()
			got, out, err := runNS(o, in)
			if err != nil {
				return err
			}
			if got != c.act {
				return fmt.Errorf("IPv6 in IPv4, %d bytes: %s", len(in)-14, actionNames[got])
			}
			if c.act == xdpRedirect {
				if len(out) < 34 {
					return fmt.Errorf("IPv6 in IPv4: %d bytes", len(out))
				}
				if want := outer4To([6]byte(gwMAC), in[14:], rsTun4, binary.BigEndian.Uint16(out[18:])); !bytes.Equal(out, want) {
					return fmt.Errorf("IPv6 in IPv4 by the FIB: output\n%x\nwant\n%x", out, want)
				}
			}
			if c.act == xdpTX {
				q := in[14:]
				q = q[:min(len(q), 1232)&^3]
				if want := icmp6Frame(vipMAC, clientMAC, vip6, client6.Addr(), 2, 0, 1380, q, 64); !bytes.Equal(out, want) {
					return fmt.Errorf("IPv6 in IPv4, too big: output\n%x\nwant\n%x", out, want)
				}
			}
		}
		return nil
	})
	if ev := events(t, o); ev[evFragNeeded] != 2 || ev[evNoRoute] != 0 {
		t.Fatalf("events %v: want 2 frag needed, no no_route", ev)
	}
}

// An ICMP error about a tunnel packet (from a router on the way to the
// server, to the tunnel source, quoting the outer header: protocol 4 or
// 41) belongs to no connection: passed to the stack as it is, neither
// translated nor forwarded.
func TestTun46ICMPAboutTunnel(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	must(t, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdTunnel))
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	d := Dest{Port: htons(80), Method: fwdTunnel, Af: 4, Weight: 1, Flags: destAvailable, Ifindex: outIface, Mac: hopMAC}
	d.Addr[0] = ip4(rsTun4)
	putDest(t, o, 2, d)
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{2}})

	in4 := syn(client, 80).build()
	_, sent := run(t, o, in4) // IPv4 in IPv6 toward rs6
	ptb := icmp6Frame(hopMAC, [6]byte(dirMAC), netip.MustParseAddr("2001:db8:ff::9"), tunSrc6, 2, 0, 1280, sent[14:14+68], 64)
	if act, out := run(t, o, ptb); act != xdpPass || !bytes.Equal(out, ptb) {
		t.Fatalf("packet too big about IPv4 in IPv6: %s", actionNames[act])
	}
	in6 := (pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 80), flags: tcpSYN}).build()
	_, sent = run(t, o, in6) // IPv6 in IPv4 toward rsTun4
	fn := icmpPkt(netip.MustParseAddr("198.18.0.9"), tunSrc, 4, 1400, sent[14:14+28], 64, hopMAC, [6]byte(dirMAC))
	if act, out := run(t, o, fn); act != xdpPass || !bytes.Equal(out, fn) {
		t.Fatalf("fragmentation needed about IPv6 in IPv4: %s", actionNames[act])
	}
	if ev := events(t, o); ev[evICMP] != 0 || ev[evForward] != 2 {
		t.Fatalf("events %v: want the 2 forwards only", ev)
	}
}
