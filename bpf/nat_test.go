package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"gvs/conn"
)

const (
	fwdMasq    = 0
	fwdFullNAT = 5
	connNAT    = 0x8
)

// In inNetNS's namespace 198.18.64.0/24 is behind the gateway on gvs0:
// clients and servers both live there, so every translated packet leaves
// by gvs0 to the gateway's MAC, from gvs0's (dirMAC).
var (
	natRIP    = ap("198.18.64.20:8080")
	natClient = ap("198.18.64.50:40000")
	natLIP    = netip.MustParseAddr("198.18.0.1") // gvs0's address: the route's source
)

func natDest(addr netip.AddrPort, method uint8) Dest {
	d := Dest{Port: htons(addr.Port()), Method: method, Af: 4, Weight: 1, Flags: destAvailable}
	d.Addr[0] = ip4(addr.Addr())
	return d
}

// natServer marks addr as a NAT server in the reply filter, as gvsd
// does for every NAT/FULLNAT destination.
func natServer(t *testing.T, o *Objects, addr netip.Addr) {
	t.Helper()
	var f NATSrc
	must(t, o.NatSrcs.Lookup(uint32(0), &f))
	f.Set(ip4(addr))
	must(t, o.NatSrcs.Put(uint32(0), &f))
}

// toGW is a packet as it leaves for the gateway.
func toGW(p pkt) []byte {
	p.srcMAC, p.dstMAC = [6]byte(dirMAC), [6]byte(gwMAC)
	return p.build()
}

// icmpPkt builds an ICMP error from src to dst quoting the first 28 bytes
// of the IP packet ip, with its checksum computed here.
func icmpPkt(src, dst netip.Addr, code byte, mtu uint16, quote []byte, ttl uint8, srcMAC, dstMAC [6]byte) []byte {
	var b []byte
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	b = append(b, 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 0, 0x43, 0x21, 0, 0, ttl, unix.IPPROTO_ICMP, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(quote)))
	s4, d4 := src.As4(), dst.As4()
	ip = append(append(ip, s4[:]...), d4[:]...)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	ic := []byte{3, code, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(ic[6:], mtu)
	ic = append(ic, quote...)
	binary.BigEndian.PutUint16(ic[2:], checksum(ic))
	return append(append(b, ip...), ic...)
}

func quote(p pkt) []byte { return p.build()[14 : 14+28] }

// translatedQuote is quote(p) with the quoted transport checksum of
// orig: translation leaves that one alone, as the kernel does.
func translatedQuote(p, orig pkt) []byte {
	q := quote(p)
	copy(q[26:28], quote(orig)[26:28])
	return q
}

// expect runs in and compares action and bytes; the checksums of the
// output are also verified on their own.
func expect(o *Objects, name string, in []byte, act uint32, want []byte) ([]byte, error) {
	got, out, err := runNS(o, in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if got != act {
		return out, fmt.Errorf("%s: action %s, want %s", name, actionNames[got], actionNames[act])
	}
	if want != nil && !bytes.Equal(out, want) {
		return out, fmt.Errorf("%s: output\n%x\nwant\n%x", name, out, want)
	}
	if act == xdpRedirect || act == xdpTX {
		if err := verifyChecksums(out); err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, nil
}

// verifyChecksums checks the IPv4 header checksum and the TCP/UDP (with
// pseudo-header) or ICMP checksum of an untagged frame.
func verifyChecksums(f []byte) error {
	ip := f[14:]
	hl := int(ip[0]&0xf) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if checksum(ip[:hl]) != 0 {
		return fmt.Errorf("IPv4 header checksum wrong")
	}
	l4 := ip[hl:tot]
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return nil // a fragment: its transport checksum covers the whole datagram
	}
	switch ip[9] {
	case unix.IPPROTO_ICMP:
		if checksum(l4) != 0 {
			return fmt.Errorf("ICMP checksum wrong")
		}
		if checksum(l4[8:28]) != 0 {
			return fmt.Errorf("quoted IPv4 header checksum wrong")
		}
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP:
		if ip[9] == unix.IPPROTO_UDP && binary.BigEndian.Uint16(l4[6:]) == 0 {
			return nil
		}
		ph := append(append([]byte{}, ip[12:20]...), 0, ip[9])
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(l4)))
		if checksum(append(ph, l4...)) != 0 {
			return fmt.Errorf("L4 checksum wrong")
		}
	}
	return nil
}

func lookupConn(o *Objects, proto uint8, src, dst netip.AddrPort) (Conn, error) {
	var c Conn
	k := connKey(proto, src, dst)
	err := o.Conns.Lookup(&k, &c)
	return c, err
}

func countEntries(o *Objects) (conns, replies int) {
	var k ConnKey
	var c Conn
	var r Reply
	for it := o.Conns.Iterate(); it.Next(&k, &c); {
		conns++
	}
	for it := o.Rconns.Iterate(); it.Next(&k, &r); {
		replies++
	}
	return
}

// TestNAT: masquerading, both directions, TCP state on the full table,
// port mapping, UDP with and without a checksum, counters.
func TestNAT(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	putDest(t, o, 2, natDest(natRIP, fwdMasq))
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip, port: 53, sched: schedRR, dests: []uint32{2}})
	vport := netip.AddrPortFrom(vip, 80)

	inNetNS(t, func(int) error {
		// Client SYN: to the server's address and port, nothing else changed.
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpSYN, df: true, payload: 10}
		want := in
		want.dst = natRIP
		if _, err := expect(o, "syn", in.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		c, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport)
		if err != nil {
			return fmt.Errorf("no connection: %w", err)
		}
		if c.State != uint8(conn.SynRecv) || c.Flags&connNoOutput != 0 || c.Flags&connNAT == 0 {
			return fmt.Errorf("after SYN: state %d flags %#x", c.State, c.Flags)
		}
		// The server's SYN-ACK: from the virtual service, TTL one less.
		in = pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: tcpSYN | tcpACK, df: true, ttl: 64}
		want = in
		want.src, want.ttl = vport, 63
		if _, err := expect(o, "syn-ack", in.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		// The client's ACK and data establish it (INPUT table).
		in = pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpACK, payload: 1000}
		want = in
		want.dst = natRIP
		if _, err := expect(o, "ack", in.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		if c, _ = lookupConn(o, unix.IPPROTO_TCP, natClient, vport); c.State != uint8(conn.Established) {
			return fmt.Errorf("after ACK: state %d", c.State)
		}
		// FIN from the server: OUTPUT table, ES -> FIN_WAIT.
		in = pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: tcpFIN | tcpACK, ttl: 30}
		want = in
		want.src, want.ttl = vport, 29
		if _, err := expect(o, "server fin", in.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		if c, _ = lookupConn(o, unix.IPPROTO_TCP, natClient, vport); c.State != uint8(conn.FinWait) {
			return fmt.Errorf("after the server's FIN: state %d, want FIN_WAIT", c.State)
		}
		// A reply with TTL 1 is the stack's (time exceeded).
		in.ttl = 1
		if _, err := expect(o, "ttl 1", in.build(), xdpPass, in.build()); err != nil {
			return err
		}
		// A packet from the server that matches nothing passes untouched.
		stray := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: ap("198.18.64.51:1"), flags: tcpACK}
		if _, err := expect(o, "stray", stray.build(), xdpPass, stray.build()); err != nil {
			return err
		}

		// UDP, with a checksum and without one.
		u := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: netip.AddrPortFrom(vip, 53), proto: unix.IPPROTO_UDP, payload: 11}
		want = u
		want.dst = natRIP
		if _, err := expect(o, "udp", u.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		b := u.build()
		b[14+20+6], b[14+20+7] = 0, 0
		w := toGW(want)
		w[14+20+6], w[14+20+7] = 0, 0
		if _, err := expect(o, "udp without checksum", b, xdpRedirect, w); err != nil {
			return err
		}
		r := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, proto: unix.IPPROTO_UDP, payload: 30}
		want = r
		want.src, want.ttl = netip.AddrPortFrom(vip, 53), 63
		if _, err := expect(o, "udp reply", r.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		return nil
	})
	s := sumStats(t, o.SvcStats, 1)
	if s.Conns != 1 || s.Inpkts != 2 || s.Outpkts != 2 || s.Inbytes != 20+20+10+20+20+1000 || s.Outbytes != 80 {
		t.Fatalf("TCP service stats %+v", s)
	}
	if s := sumStats(t, o.DestStats, 2); s.Conns != 1 || s.Inpkts != 2 || s.Outpkts != 1 || s.Outbytes != 20+8+30 {
		t.Fatalf("UDP server stats %+v", s)
	}
	if ev := events(t, o); ev[evReply] != 3 || ev[evForward] != 4 || ev[evTTL] != 1 {
		t.Fatalf("events %v", ev)
	}
	d := getDest(t, o, 1)
	if d.Activeconns != 0 || d.Inactconns != 1 {
		t.Fatalf("server counts active %d inactive %d, want 0 and 1 (FIN_WAIT)", d.Activeconns, d.Inactconns)
	}
}

// TestFullNAT: the source becomes a local address and port, the reply
// is matched by them; a pool is used when given.
func TestFullNAT(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, natDest(natRIP, fwdFullNAT))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	putDest(t, o, 2, natDest(natRIP, fwdFullNAT))
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip, port: 53, sched: schedRR, dests: []uint32{2}})
	pool := []netip.Addr{netip.MustParseAddr("198.18.0.5"), netip.MustParseAddr("198.18.0.6")}
	setPool(t, o, unix.IPPROTO_UDP, 53, pool)
	vport := netip.AddrPortFrom(vip, 80)

	inNetNS(t, func(int) error {
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpSYN, df: true}
		out, err := expect(o, "syn", in.build(), xdpRedirect, nil)
		if err != nil {
			return err
		}
		c, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport)
		if err != nil {
			return err
		}
		lport := htons(c.Lport)
		if c.Laddr[0] != ip4(natLIP) || lport < 1024 || lport > 32767 || htons(c.Rport) != natRIP.Port() {
			return fmt.Errorf("local %v:%d, server port %d", c.Laddr, lport, htons(c.Rport))
		}
		local := netip.AddrPortFrom(natLIP, lport)
		want := in
		want.src, want.dst = local, natRIP
		if !bytes.Equal(out, toGW(want)) {
			return fmt.Errorf("syn output\n%x\nwant\n%x", out, toGW(want))
		}
		var rv Reply
		rk := connKey(unix.IPPROTO_TCP, natRIP, local)
		if err := o.Rconns.Lookup(&rk, &rv); err != nil || rv.Fk != connKey(unix.IPPROTO_TCP, natClient, vport) {
			return fmt.Errorf("reply entry %+v: %v", rv.Fk, err)
		}
		// The reply goes to the local address and port: back to the client.
		r := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: local, flags: tcpSYN | tcpACK, df: true}
		want = r
		want.src, want.dst, want.ttl = vport, natClient, 63
		if _, err := expect(o, "syn-ack", r.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		// The ICMP port unreachable of a server about a translated
		// datagram: to the client, from the VIP, quote translated.
		u := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: netip.AddrPortFrom(vip, 53), proto: unix.IPPROTO_UDP, payload: 5}
		if _, err := expect(o, "udp", u.build(), xdpRedirect, nil); err != nil {
			return err
		}
		uc, err := lookupConn(o, unix.IPPROTO_UDP, natClient, netip.AddrPortFrom(vip, 53))
		if err != nil {
			return err
		}
		ul := netip.AddrPortFrom(wordAddr(uc.Laddr[0]), htons(uc.Lport))
		if ul.Addr() != pool[0] && ul.Addr() != pool[1] {
			return fmt.Errorf("local address %v not from the pool", ul.Addr())
		}
		sent := u
		sent.src, sent.dst = ul, natRIP
		ic := icmpPkt(natRIP.Addr(), ul.Addr(), 3, 0, quote(sent), 64, [6]byte(gwMAC), [6]byte(dirMAC))
		wantIC := icmpPkt(vip, natClient.Addr(), 3, 0, translatedQuote(u, sent), 63, [6]byte(dirMAC), [6]byte(gwMAC))
		if _, err := expect(o, "icmp from the server", ic, xdpRedirect, wantIC); err != nil {
			return err
		}
		// Fragmentation needed from the client's side about a reply: to
		// the server, from the local address, quote translated.
		reply := pkt{src: netip.AddrPortFrom(vip, 53), dst: natClient, proto: unix.IPPROTO_UDP, payload: 5}
		ic = icmpPkt(netip.MustParseAddr("198.18.64.1"), vip, 4, 1300, quote(reply), 64, clientMAC, vipMAC)
		seen := pkt{src: natRIP, dst: ul, proto: unix.IPPROTO_UDP, payload: 5}
		wantIC = icmpPkt(ul.Addr(), natRIP.Addr(), 4, 1300, translatedQuote(seen, reply), 64, [6]byte(dirMAC), [6]byte(gwMAC))
		if _, err := expect(o, "icmp from the client side", ic, xdpRedirect, wantIC); err != nil {
			return err
		}
		return nil
	})
	if ev := events(t, o); ev[evICMP] != 2 || ev[evReply] != 2 {
		t.Fatalf("events %v", ev)
	}
}

func wordAddr(w uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], w)
	return netip.AddrFrom4(b)
}

func setPool(t *testing.T, o *Objects, proto uint8, port uint16, pool []netip.Addr) {
	t.Helper()
	k := SvcKey{Port: htons(port), Proto: proto, Af: 4}
	k.Addr[0] = ip4(vip)
	var s Svc
	must(t, o.Services.Lookup(&k, &s))
	s.Nladdrs = uint32(len(pool))
	for i, a := range pool {
		s.Laddrs[i] = ip4(a)
	}
	must(t, o.Services.Put(&k, &s))
}

// TestLocalPorts: every port of the range is used before a connection is
// refused; removing a connection frees its port; nothing leaks.
func TestLocalPorts(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, natDest(natRIP, fwdFullNAT))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	must(t, o.Config.Put(uint32(0), conf(Config{LportMin: 5000, LportMax: 5003})))
	vport := netip.AddrPortFrom(vip, 80)
	client := func(i int) netip.AddrPort { return netip.AddrPortFrom(natClient.Addr(), uint16(30000+i)) }

	inNetNS(t, func(int) error {
		ports := map[uint16]bool{}
		for i := range 4 {
			in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: client(i), dst: vport, flags: tcpSYN}
			if _, err := expect(o, fmt.Sprint("syn ", i), in.build(), xdpRedirect, nil); err != nil {
				return err
			}
			c, err := lookupConn(o, unix.IPPROTO_TCP, client(i), vport)
			if err != nil {
				return err
			}
			ports[htons(c.Lport)] = true
		}
		if len(ports) != 4 || !ports[5000] || !ports[5003] {
			return fmt.Errorf("ports %v, want 5000-5003 each once", ports)
		}
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: client(4), dst: vport, flags: tcpSYN}
		if _, err := expect(o, "exhausted", in.build(), xdpDrop, nil); err != nil {
			return err
		}
		if n, r := countEntries(o); n != 4 || r != 4 {
			return fmt.Errorf("%d connections, %d reply entries after a refusal", n, r)
		}
		// Connection 0 expires; a new SYN meets it, removes it (its port
		// freed) and takes a port.
		k := connKey(unix.IPPROTO_TCP, client(0), vport)
		var c Conn
		if err := o.Conns.Lookup(&k, &c); err != nil {
			return err
		}
		c.Expires = 1
		if err := o.Conns.Put(&k, &c); err != nil {
			return err
		}
		again := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: client(0), dst: vport, flags: tcpSYN}
		if _, err := expect(o, "reuse", again.build(), xdpRedirect, nil); err != nil {
			return err
		}
		if n, r := countEntries(o); n != 4 || r != 4 {
			return fmt.Errorf("%d connections, %d reply entries after reuse", n, r)
		}
		_, err := expect(o, "still exhausted", in.build(), xdpDrop, nil)
		return err
	})
	if ev := events(t, o); ev[evNoLport] != 2 {
		t.Fatalf("events %v: want 2 refusals for lack of a port", ev)
	}
}

// TestNATTooBig: a translated packet too big for the way out, with DF,
// is answered with fragmentation needed from a director address; without
// DF it is dropped (XDP cannot fragment, and the stack would not
// translate it).
func TestNATTooBig(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	vport := netip.AddrPortFrom(vip, 80)
	inNetNS(t, func(int) error {
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpSYN, df: true, payload: 1400}
		out, err := expect(o, "syn too big", in.build(), xdpTX, nil)
		if err != nil {
			return err
		}
		if err := icmpErr(in.build(), out, 14, 4, 1400); err != nil {
			return err
		}
		in.payload = 10
		if _, err := expect(o, "syn", in.build(), xdpRedirect, nil); err != nil {
			return err
		}
		r := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: tcpACK, df: true, payload: 1400}
		out, err = expect(o, "reply too big", r.build(), xdpTX, nil)
		if err != nil {
			return err
		}
		// From the VIP (a director address) to the server.
		if got := netip.AddrFrom4([4]byte(out[14+12 : 14+16])); got != vip {
			return fmt.Errorf("frag needed from %v, want %v", got, vip)
		}
		r.df = false
		_, err = expect(o, "reply too big without DF", r.build(), xdpDrop, nil)
		return err
	})
	if ev := events(t, o); ev[evFragNeeded] != 2 || ev[evTooBig] != 1 {
		t.Fatalf("events %v", ev)
	}
}

// TestICMPFollowsDR: an ICMP error about a reply of a DR connection (the
// client's router telling the VIP the path is too small) goes to the
// connection's server unchanged above L2, as ip_vs_in_icmp sends it, so
// the server's path-MTU discovery works.
func TestICMPFollowsDR(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	in := syn(client, 80).build()
	act, out := run(t, o, in)
	if act != xdpTX {
		t.Fatalf("syn: %s", actionNames[act])
	}
	server := out[0:6]
	reply := pkt{src: netip.AddrPortFrom(vip, 80), dst: client, flags: tcpACK, payload: 1400}
	ic := icmpPkt(netip.MustParseAddr("198.18.5.254"), vip, 4, 1280, quote(reply), 60, clientMAC, vipMAC)
	act, out = run(t, o, ic)
	if act != xdpTX {
		t.Fatalf("icmp: %s", actionNames[act])
	}
	if !bytes.Equal(out[0:6], server) || !bytes.Equal(out[6:12], ifMAC[:]) || !bytes.Equal(out[12:], ic[12:]) {
		t.Fatalf("icmp forwarded as\n%x\nwant to %x from %x, unchanged above L2:\n%x", out, server, ifMAC, ic)
	}
	// An error about nothing we forward is the stack's.
	other := pkt{src: netip.AddrPortFrom(vip, 80), dst: ap("198.18.5.9:1"), flags: tcpACK}
	ic = icmpPkt(netip.MustParseAddr("198.18.5.254"), vip, 4, 1280, quote(other), 60, clientMAC, vipMAC)
	if act, _ := run(t, o, ic); act != xdpPass {
		t.Fatalf("unrelated icmp: %s", actionNames[act])
	}
	if ev := events(t, o); ev[evICMP] != 1 {
		t.Fatalf("events %v", ev)
	}
}

// TestNextHopCaches: with a next hop in the server's entry, NAT forwards
// by it without asking the FIB (here the FIB would answer with another
// MAC); a connection keeps the FIB's answer for its replies while the
// configuration's generation is the one it learnt under, and asks again
// after gvsd moves the generation on.
func TestNextHopCaches(t *testing.T) {
	o := loadObjects(t)
	cached := [6]byte{0x02, 0xca, 0xc4, 0xed, 0, 1}
	vport := netip.AddrPortFrom(vip, 80)
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	natServer(t, o, natRIP.Addr())
	inNetNS(t, func(gvs0 int) error {
		// The next hop is on gvs0, known only in the namespace.
		d := natDest(natRIP, fwdMasq)
		d.Ifindex, d.Mac = uint32(gvs0), cached
		if err := o.Dests.Put(uint32(1), &d); err != nil {
			return err
		}
		if err := o.Ifmacs.Put(uint32(gvs0), &IfMAC{Mac: [6]byte(dirMAC), Mtu: 1400}); err != nil {
			return err
		}
		if err := o.Config.Put(uint32(0), conf(Config{HopGen: 7})); err != nil {
			return err
		}
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpSYN}
		out, err := expect(o, "syn", in.build(), xdpRedirect, nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(out[0:6], cached[:]) {
			return fmt.Errorf("forwarded to %x, want the cached next hop %x", out[0:6], cached)
		}
		r := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: tcpSYN | tcpACK}
		want := r
		want.src, want.ttl = vport, 63
		if _, err := expect(o, "first reply", r.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		c, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport)
		if err != nil {
			return err
		}
		if c.HopGen != 7 || c.HopIfindex != uint32(gvs0) || c.HopMac != [6]byte(gwMAC) {
			return fmt.Errorf("cached reply hop gen %d ifindex %d mac %x", c.HopGen, c.HopIfindex, c.HopMac)
		}
		// A stale cache is used while the generation holds...
		c.HopMac = cached
		k2 := connKey(unix.IPPROTO_TCP, natClient, vport)
		if err := o.Conns.Put(&k2, &c); err != nil {
			return err
		}
		if out, err = expect(o, "cached reply", r.build(), xdpRedirect, nil); err != nil {
			return err
		}
		if !bytes.Equal(out[0:6], cached[:]) {
			return fmt.Errorf("reply to %x, want the connection's cached hop", out[0:6])
		}
		// ...and replaced once it moves on.
		if err := o.Config.Put(uint32(0), conf(Config{HopGen: 8})); err != nil {
			return err
		}
		_, err = expect(o, "reply after a new generation", r.build(), xdpRedirect, toGW(want))
		return err
	})
}

// TestLocalPortRefusalUndoesRR: a FULLNAT connection refused for want of
// a local port leaves the rr position as it found it, so the refusal
// shifts no later client's server.
func TestLocalPortRefusalUndoesRR(t *testing.T) {
	o := loadObjects(t)
	rip2 := ap("198.18.64.21:8080")
	putDest(t, o, 1, natDest(natRIP, fwdFullNAT))
	putDest(t, o, 2, natDest(rip2, fwdFullNAT))
	natServer(t, o, natRIP.Addr())
	natServer(t, o, rip2.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{2, 1}})
	must(t, o.Config.Put(uint32(0), conf(Config{LportMin: 5000, LportMax: 5000})))
	vport := netip.AddrPortFrom(vip, 80)
	client := func(i int) netip.AddrPort { return netip.AddrPortFrom(natClient.Addr(), uint16(30000+i)) }

	inNetNS(t, func(int) error {
		for i := range 2 { // one port per server: both taken
			in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: client(i), dst: vport, flags: tcpSYN}
			if _, err := expect(o, fmt.Sprint("syn ", i), in.build(), xdpRedirect, nil); err != nil {
				return err
			}
		}
		var before, after SchedState
		if err := o.SchedState.Lookup(uint32(1), &before); err != nil {
			return err
		}
		in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: client(2), dst: vport, flags: tcpSYN}
		if _, err := expect(o, "refused", in.build(), xdpDrop, nil); err != nil {
			return err
		}
		if err := o.SchedState.Lookup(uint32(1), &after); err != nil {
			return err
		}
		if before != after {
			return fmt.Errorf("refused connection moved rr: %+v -> %+v", before, after)
		}
		if n, r := countEntries(o); n != 2 || r != 2 {
			return fmt.Errorf("%d connections, %d reply entries after a refusal", n, r)
		}
		return nil
	})
}
