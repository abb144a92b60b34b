package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"gvs/conn"
)

// NAT64 FULLNAT (nat64.h): an IPv6 service's IPv4 FULLNAT server. The
// frames are built and checksummed here: the IPv6 side by pkt6, the IPv4
// side by pkt (whose identification, 0x1234, is set to the translator's
// 0 with the header checksum recomputed here).

var (
	rs4NAT64 = ap("198.18.1.20:8080")
	laddr64  = netip.MustParseAddr("198.18.0.100")
)

// xlated4 is p as nat64_xmit sends it: DF, id 0, toward hopMAC.
func xlated4(p pkt) []byte {
	p.srcMAC, p.dstMAC, p.vlan, p.df = [6]byte(dirMAC), hopMAC, 0, true
	b := p.build()
	binary.BigEndian.PutUint16(b[18:], 0)
	binary.BigEndian.PutUint16(b[24:], 0)
	binary.BigEndian.PutUint16(b[24:], checksum(b[14:34]))
	return b
}

// setupNAT64 has service 1 (TCP [vip6]:80) and 2 (UDP [vip6]:53), each
// with one IPv4 FULLNAT server, the IPv4 pool {laddr64}, ports 5000-5000.
func setupNAT64(t *testing.T, mtu uint32) *Objects {
	o := setup6(t, mtu)
	must(t, o.Config.Put(uint32(0), conf(Config{HopGen: 1, LportMin: 5000, LportMax: 5000})))
	for i, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		id := uint32(i + 1)
		d := Dest{Port: htons(rs4NAT64.Port()), Method: fwdFullNAT, Af: 4, Weight: 1,
			Flags: destAvailable, Ifindex: outIface, Mac: hopMAC}
		d.Addr[0] = ip4(rs4NAT64.Addr())
		putDest(t, o, id, d)
		putService6(t, o, svcSpec{id: id, proto: proto, addr: vip6, port: []uint16{80, 53}[i], sched: schedRR, dests: []uint32{id}})
		pool := Laddrs4{N: 1}
		pool.Addrs[0] = ip4(laddr64)
		must(t, o.Laddrs4.Put(id, &pool))
	}
	var f NATSrc
	f.Set(ip4(rs4NAT64.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))
	return o
}

func TestNAT64(t *testing.T) {
	o := setupNAT64(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	lp := netip.AddrPortFrom(laddr64, 5000)

	// The SYN, with a VLAN tag, traffic class 0x28 and hop limit 50:
	// IPv4 from the local address, TOS 0x28, TTL 50, DF.
	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, vlan: 9, src: client6, dst: vp, flags: tcpSYN, payload: 3, tclass: 0x28, hlim: 50}
	expect6(t, o, "syn", in.build(), xdpRedirect,
		xlated4(pkt{src: lp, dst: rs4NAT64, flags: tcpSYN, payload: 3, tos: 0x28, ttl: 50}))
	ck := connKey6(unix.IPPROTO_TCP, client6, vp)
	var c Conn
	must(t, o.Conns.Lookup(&ck, &c))
	if c.Laddr != [4]uint32{ip4(laddr64)} || c.Lport != htons(5000) || c.Rport != htons(8080) ||
		c.Flags&connNAT == 0 || c.Method != fwdFullNAT || c.State != uint8(conn.SynRecv) {
		t.Fatalf("conn %+v", c)
	}
	// Its reply entry is IPv4 (as the reply arrives) and names the IPv6
	// connection.
	rk := connKey(unix.IPPROTO_TCP, rs4NAT64, lp)
	var owner Reply
	must(t, o.Rconns.Lookup(&rk, &owner))
	if owner.Fk != ck {
		t.Fatalf("reply entry %+v, want %+v", owner, ck)
	}

	// The SYN-ACK: IPv6 from the VIP to the client, traffic class from
	// the TOS, hop limit TTL - 1.
	natConnHop(t, o, ck)
	r := pkt{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs4NAT64, dst: lp, flags: tcpSYN | tcpACK, tos: 0xb8, ttl: 64, df: true}
	want := pkt6{srcMAC: [6]byte(dirMAC), dstMAC: clientMAC, src: vp, dst: client6, flags: tcpSYN | tcpACK, tclass: 0xb8, hlim: 63}
	expect6(t, o, "syn-ack", r.build(), xdpRedirect, want.build())
	in = pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpACK, payload: 1000}
	expect6(t, o, "ack", in.build(), xdpRedirect, xlated4(pkt{src: lp, dst: rs4NAT64, flags: tcpACK, payload: 1000, ttl: 64}))
	must(t, o.Conns.Lookup(&ck, &c))
	if c.State != uint8(conn.Established) || c.Flags&0x10 == 0 /* GVS_CONN_F_REPLIED */ {
		t.Fatalf("after the ACK: %+v", c)
	}
	r = pkt{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs4NAT64, dst: lp, flags: tcpACK, payload: 700, ttl: 64}
	want = pkt6{srcMAC: [6]byte(dirMAC), dstMAC: clientMAC, src: vp, dst: client6, flags: tcpACK, payload: 700, hlim: 63}
	expect6(t, o, "data reply", r.build(), xdpRedirect, want.build())
	// A reply with TTL 1 is the stack's, as for other replies.
	r.ttl = 1
	expect6(t, o, "ttl 1", r.build(), xdpPass, r.build())

	s := sumStats(t, o.SvcStats, 1)
	if s.Conns != 1 || s.Inpkts != 2 || s.Outpkts != 2 || s.Inbytes != 40+20+3+40+20+1000 || s.Outbytes != 40+20+20+700 {
		t.Fatalf("stats %+v", s)
	}

	// UDP both ways; a server's datagram without a checksum is dropped.
	uv := netip.AddrPortFrom(vip6, 53)
	u := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: uv, proto: unix.IPPROTO_UDP, payload: 11}
	expect6(t, o, "udp", u.build(), xdpRedirect, xlated4(pkt{src: lp, dst: rs4NAT64, proto: unix.IPPROTO_UDP, payload: 11, ttl: 64}))
	natConnHop(t, o, connKey6(unix.IPPROTO_UDP, client6, uv))
	ur := pkt{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs4NAT64, dst: lp, proto: unix.IPPROTO_UDP, payload: 33, ttl: 64}
	want = pkt6{srcMAC: [6]byte(dirMAC), dstMAC: clientMAC, src: uv, dst: client6, proto: unix.IPPROTO_UDP, payload: 33, hlim: 63}
	expect6(t, o, "udp reply", ur.build(), xdpRedirect, want.build())
	nocsum := ur.build()
	binary.BigEndian.PutUint16(nocsum[14+20+6:], 0)
	before := events(t, o)
	expect6(t, o, "udp reply without checksum", nocsum, xdpDrop, nil)
	// An extension header (destination options) is not carried.
	u.ext = []ext6{{typ: 60, body: make([]byte, 6)}}
	expect6(t, o, "extension header", u.build(), xdpDrop, nil)
	if ev := events(t, o); ev[evNAT64Unsupported] != before[evNAT64Unsupported]+2 {
		t.Fatalf("nat64_unsupported %d, want %d", ev[evNAT64Unsupported], before[evNAT64Unsupported]+2)
	}

	// ICMP errors about the connection, either way: dropped, counted.
	before = events(t, o)
	sent := xlated4(pkt{src: lp, dst: rs4NAT64, flags: tcpACK, payload: 1000, ttl: 64})[14:][:28]
	expect6(t, o, "icmp from the server", icmpPkt(rs4NAT64.Addr(), laddr64, 4, 1000, sent, 64, hopMAC, [6]byte(dirMAC)), xdpDrop, nil)
	replied := (pkt6{src: vp, dst: client6, flags: tcpACK, payload: 700}).build()[14:][:48]
	expect6(t, o, "icmpv6 from the client", icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 1, 4, 0, replied, 64), xdpDrop, nil)
	if ev := events(t, o); ev[evNAT64ICMP] != before[evNAT64ICMP]+2 {
		t.Fatalf("nat64_icmp %d, want %d", ev[evNAT64ICMP], before[evNAT64ICMP]+2)
	}

	// A connection removed by the data path releases its IPv4 reply
	// entry: expired, its client's next SYN gets the only port again.
	must(t, o.Conns.Lookup(&ck, &c))
	c.Expires = 1
	must(t, o.Conns.Put(&ck, &c))
	in = pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN}
	expect6(t, o, "syn after expiry", in.build(), xdpRedirect, xlated4(pkt{src: lp, dst: rs4NAT64, flags: tcpSYN, ttl: 64}))
	// And a second client finds no port.
	in.src = ap("[2001:db8:5::2]:40000")
	before = events(t, o)
	expect6(t, o, "no port", in.build(), xdpDrop, nil)
	if ev := events(t, o); ev[evNoLport] != before[evNoLport]+1 {
		t.Fatal("no_lport not counted")
	}
}

// The MTU both ways: the way to the server is IPv4 (20 bytes less), the
// way to the client IPv6 (20 bytes more).
func TestNAT64TooBig(t *testing.T) {
	o := setupNAT64(t, 1400)
	vp := netip.AddrPortFrom(vip6, 80)
	lp := netip.AddrPortFrom(laddr64, 5000)

	// 40 + 20 + 1360 = 1420 bytes of IPv6 are 1400 of IPv4: they fit.
	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN, payload: 1360}
	expect6(t, o, "fits", in.build(), xdpRedirect, xlated4(pkt{src: lp, dst: rs4NAT64, flags: tcpSYN, payload: 1360, ttl: 64}))
	// One more byte: packet too big from the VIP, MTU 1400 + 20.
	in.flags, in.payload = tcpACK, 1361
	b := in.build()
	expect6(t, o, "too big", b, xdpTX, icmp6Frame(vipMAC, clientMAC, vip6, client6.Addr(), 2, 0, 1420, b[14:][:1232], 64))

	// A reply that would not fit once 20 bytes longer: fragmentation
	// needed to the server, from the local address, MTU 1400 - 20.
	ck := connKey6(unix.IPPROTO_TCP, client6, vp)
	natConnHop(t, o, ck)
	r := pkt{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs4NAT64, dst: lp, flags: tcpACK, payload: 1340, ttl: 64, df: true}
	want := pkt6{srcMAC: [6]byte(dirMAC), dstMAC: clientMAC, src: vp, dst: client6, flags: tcpACK, payload: 1340, hlim: 63}
	expect6(t, o, "reply fits", r.build(), xdpRedirect, want.build())
	r.payload = 1341
	rb := r.build()
	_, out := run(t, o, rb)
	checkICMP(t, rb, out, 14, 4, 1380)
	// Without DF: dropped (XDP cannot fragment), counted too_big.
	r.df = false
	before := events(t, o)
	expect6(t, o, "reply too big without DF", r.build(), xdpDrop, nil)
	if ev := events(t, o); ev[evTooBig] != before[evTooBig]+1 {
		t.Fatal("too_big not counted")
	}
}
