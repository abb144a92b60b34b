package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gvs/conn"
)

// IPv6 packets, built and checksummed here (independently of the BPF
// code), run through xdp_gvs (which tail-calls xdp_gvs6).

var (
	vip6     = netip.MustParseAddr("2001:db8::1")
	client6  = ap("[2001:db8:5::1]:40000")
	rs6      = netip.MustParseAddr("2001:db8:1::11")
	rs6NAT   = ap("[2001:db8:1::20]:8080")
	laddr6   = netip.MustParseAddr("2001:db8:ff::1")
	tunSrc6  = netip.MustParseAddr("2001:db8:ffff::1")
	hopMAC   = [6]byte{0x02, 0x9a, 0, 0, 0, 6}
	outIface = uint32(7) // an interface the frames leave by (redirect)
)

// ext6 is an extension header: its type and its bytes after the first two
// (next header, length), padded by build to a multiple of 8.
type ext6 struct {
	typ  uint8
	body []byte
}

type pkt6 struct {
	srcMAC, dstMAC [6]byte
	vlan           uint16
	src, dst       netip.AddrPort
	proto          uint8
	flags          uint8
	payload        int
	hlim           uint8
	tclass         uint8
	ext            []ext6
	udpNoCsum      bool
}

func words6(a netip.Addr) [4]uint32 {
	b := a.As16()
	var w [4]uint32
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

// l4csum6 is the TCP/UDP/ICMPv6 checksum of seg with the IPv6
// pseudo-header (RFC 8200 8.1).
func l4csum6(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	ph := append(append([]byte{}, s[:]...), d[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(seg)))
	ph = append(ph, 0, 0, 0, proto)
	return checksum(append(ph, seg...))
}

func (p pkt6) build() []byte {
	if p.proto == 0 {
		p.proto = unix.IPPROTO_TCP
	}
	if p.hlim == 0 {
		p.hlim = 64
	}
	var b []byte
	b = append(b, p.dstMAC[:]...)
	b = append(b, p.srcMAC[:]...)
	if p.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, p.vlan)
	}
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	// Extension headers.
	var ext []byte
	for i, e := range p.ext {
		next := p.proto
		if i+1 < len(p.ext) {
			next = p.ext[i+1].typ
		}
		h := append([]byte{next, 0}, e.body...)
		if e.typ == 44 {
			h = h[:8]
		} else {
			for len(h)%8 != 0 {
				h = append(h, 0)
			}
			h[1] = byte(len(h)/8 - 1)
		}
		ext = append(ext, h...)
	}
	var seg []byte
	seg = binary.BigEndian.AppendUint16(seg, p.src.Port())
	seg = binary.BigEndian.AppendUint16(seg, p.dst.Port())
	if p.proto == unix.IPPROTO_TCP {
		seg = binary.BigEndian.AppendUint32(seg, 1000)
		seg = binary.BigEndian.AppendUint32(seg, 0)
		seg = append(seg, 5<<4, p.flags)
		seg = binary.BigEndian.AppendUint16(seg, 65535)
		seg = append(seg, 0, 0, 0, 0)
	} else {
		seg = binary.BigEndian.AppendUint16(seg, uint16(8+p.payload))
		seg = append(seg, 0, 0)
	}
	for i := 0; i < p.payload; i++ {
		seg = append(seg, byte(i))
	}
	cs := l4csum6(p.src.Addr(), p.dst.Addr(), p.proto, seg)
	if p.proto == unix.IPPROTO_TCP {
		binary.BigEndian.PutUint16(seg[16:], cs)
	} else if !p.udpNoCsum {
		if cs == 0 {
			cs = 0xffff
		}
		binary.BigEndian.PutUint16(seg[6:], cs)
	}
	first := p.proto
	if len(p.ext) > 0 {
		first = p.ext[0].typ
	}
	b = append(b, 0x60|p.tclass>>4, p.tclass<<4, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ext)+len(seg)))
	b = append(b, first, p.hlim)
	s, d := p.src.Addr().As16(), p.dst.Addr().As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = append(b, ext...)
	return append(b, seg...)
}

func putService6(t testing.TB, o *Objects, s svcSpec) {
	t.Helper()
	k := SvcKey{Addr: words6(s.addr), Port: htons(s.port), Proto: s.proto, Af: 6}
	v := Svc{Id: s.id, Flags: s.flags, Sched: s.sched, Timeout: s.timeout, Netmask: s.netmask,
		TableSlot: s.slot}
	putList(t, o, &v, s.dests, s.id)
	must(t, o.Services.Put(&k, &v))
	st := SchedState{RrLast: -1, WrrCl: -1}
	must(t, o.SchedState.Put(s.id, &st))
}

func dest6(addr netip.AddrPort, method uint8) Dest {
	return Dest{Addr: words6(addr.Addr()), Port: htons(addr.Port()), Method: method, Af: 6, Weight: 1,
		Flags: destAvailable, Ifindex: outIface, Mac: hopMAC}
}

func connKey6(proto uint8, src, dst netip.AddrPort) ConnKey {
	return ConnKey{Caddr: words6(src.Addr()), Vaddr: words6(dst.Addr()), Cport: htons(src.Port()),
		Vport: htons(dst.Port()), Proto: proto, Af: 6}
}

// setup6 loads the program with the out interface's MAC and MTU known.
func setup6(t *testing.T, mtu uint32) *Objects {
	o := loadObjects(t)
	must(t, o.Ifmacs.Put(outIface, &IfMAC{Mac: [6]byte(dirMAC), Mtu: mtu}))
	return o
}

func expect6(t *testing.T, o *Objects, name string, in []byte, act uint32, want []byte) []byte {
	t.Helper()
	got, out := run(t, o, in)
	if got != act {
		t.Fatalf("%s: action %s, want %s", name, actionNames[got], actionNames[act])
	}
	if want != nil && !bytes.Equal(out, want) {
		t.Fatalf("%s: output\n%x\nwant\n%x", name, out, want)
	}
	return out
}

// leaving is p as it leaves toward hopMAC from the out interface.
func leaving(p pkt6) []byte {
	p.srcMAC, p.dstMAC, p.vlan = [6]byte(dirMAC), hopMAC, 0
	return p.build()
}

func TestV6DR(t *testing.T) {
	o := setup6(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip6, port: 53, sched: schedRR, dests: []uint32{1}})

	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN, payload: 10}
	want := in
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), hopMAC
	expect6(t, o, "syn", in.build(), xdpRedirect, want.build())
	var c Conn
	must(t, o.Conns.Lookup(connKey6(unix.IPPROTO_TCP, client6, vp), &c))
	if c.State != uint8(conn.SynRecv) || c.Dest != 1 {
		t.Fatalf("conn %+v", c)
	}
	// A VLAN-tagged ACK keeps its tag (DR rewrites MACs only).
	in = pkt6{srcMAC: clientMAC, dstMAC: vipMAC, vlan: 5, src: client6, dst: vp, flags: tcpACK, payload: 100}
	want = in
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), hopMAC
	expect6(t, o, "ack vlan", in.build(), xdpRedirect, want.build())
	must(t, o.Conns.Lookup(connKey6(unix.IPPROTO_TCP, client6, vp), &c))
	if c.State != uint8(conn.Established) {
		t.Fatalf("after ACK: state %d", c.State)
	}
	u := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 53), proto: unix.IPPROTO_UDP, payload: 11}
	want = u
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), hopMAC
	expect6(t, o, "udp", u.build(), xdpRedirect, want.build())
	// Not a service: passed untouched.
	other := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 81), flags: tcpSYN}
	expect6(t, o, "no service", other.build(), xdpPass, other.build())
	s := sumStats(t, o.SvcStats, 1)
	if s.Conns != 1 || s.Inpkts != 2 || s.Inbytes != 40+20+10+40+20+100 {
		t.Fatalf("stats %+v", s)
	}
	if s := sumStats(t, o.SvcStats, 2); s.Inbytes != 40+8+11 {
		t.Fatalf("udp stats %+v", s)
	}
}

// The IPv6 persistence template masks the client to the prefix length.
func TestV6Persistence(t *testing.T) {
	o := setup6(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putDest(t, o, 2, dest6(netip.AddrPortFrom(netip.MustParseAddr("2001:db8:1::12"), 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR,
		flags: 1, timeout: 300, netmask: 64, dests: []uint32{2, 1}})
	for i, c := range []string{"[2001:db8:5::1]:1000", "[2001:db8:5::2:3]:1001", "[2001:db8:5:0:ffff::1]:1002"} {
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: ap(c), dst: vp, flags: tcpSYN}
		expect6(t, o, fmt.Sprint("syn ", i), p.build(), xdpRedirect, nil)
		var cn Conn
		must(t, o.Conns.Lookup(connKey6(unix.IPPROTO_TCP, ap(c), vp), &cn))
		if cn.Dest != 2 {
			t.Fatalf("client %s went to %d, want 2 (the template's)", c, cn.Dest)
		}
	}
	tk := connKey6(unix.IPPROTO_TCP, ap("[2001:db8:5::]:0"), vp)
	var tmpl Template
	must(t, o.Templates.Lookup(&tk, &tmpl))
	if tmpl.N_control != 3 || tmpl.Dest != 2 {
		t.Fatalf("template %+v", tmpl)
	}
	// Another /64: rr moves on.
	p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: ap("[2001:db8:6::1]:1"), dst: vp, flags: tcpSYN}
	expect6(t, o, "other prefix", p.build(), xdpRedirect, nil)
	var cn Conn
	must(t, o.Conns.Lookup(connKey6(unix.IPPROTO_TCP, ap("[2001:db8:6::1]:1"), vp), &cn))
	if cn.Dest != 1 {
		t.Fatalf("other /64 went to %d, want 1", cn.Dest)
	}
}

func TestV6ExtHeaders(t *testing.T) {
	o := setup6(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	hbh := ext6{0, []byte{1, 4, 0, 0, 0, 0}} // a PadN option
	dst := ext6{60, []byte{1, 4, 0, 0, 0, 0}}
	rt := ext6{43, make([]byte, 6+16)} // type 0... segments left 0
	atomic := ext6{44, []byte{0, 0, 0, 0, 0, 0x42}}
	frag := ext6{44, []byte{0, 1, 0, 0, 0, 0x42}} // M set
	for i, c := range []struct {
		name string
		ext  []ext6
		act  uint32
		ev   int
	}{
		{"hbh, dest, routing, dest", []ext6{hbh, dst, rt, dst}, xdpRedirect, evForward},
		{"atomic fragment", []ext6{atomic}, xdpRedirect, evForward},
		{"six headers", []ext6{hbh, dst, rt, dst, dst, dst}, xdpRedirect, evForward},
		{"seven headers: beyond the bound", []ext6{hbh, dst, rt, dst, dst, dst, dst}, xdpPass, evV6Ext},
		{"first fragment", []ext6{frag}, xdpRedirect, evForward},
		{"two fragment headers", []ext6{frag, frag}, xdpPass, evV6Frag},
		{"AH", []ext6{{51, make([]byte, 14)}}, xdpPass, evV6Ext},
	} {
		before := events(t, o)
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: netip.AddrPortFrom(client6.Addr(), uint16(3000+i)), dst: vp, flags: tcpSYN, ext: c.ext}
		want := p
		want.srcMAC, want.dstMAC = [6]byte(dirMAC), hopMAC
		w := want.build()
		if c.act == xdpPass {
			w = p.build()
		}
		expect6(t, o, c.name, p.build(), c.act, w)
		if after := events(t, o); after[c.ev] != before[c.ev]+1 {
			t.Fatalf("%s: event %d not counted: %v", c.name, c.ev, after)
		}
	}
	// Malformed: a UDP checksum of zero, a payload length past the frame.
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip6, port: 53, sched: schedRR, dests: []uint32{1}})
	u := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 53), proto: unix.IPPROTO_UDP, payload: 4, udpNoCsum: true}
	before := events(t, o)
	expect6(t, o, "udp checksum 0", u.build(), xdpPass, u.build())
	b := (pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN}).build()
	binary.BigEndian.PutUint16(b[18:], 200)
	expect6(t, o, "truncated", b, xdpPass, b)
	if after := events(t, o); after[evMalformed] != before[evMalformed]+2 {
		t.Fatalf("malformed not counted: %v", after)
	}
}

// natConnHop makes the connection's reply next hop known (as a FIB
// answer cached for config.hop_gen), so replies need no FIB.
func natConnHop(t *testing.T, o *Objects, k ConnKey) {
	t.Helper()
	var c Conn
	must(t, o.Conns.Lookup(&k, &c))
	c.HopGen, c.HopIfindex, c.HopMac = 1, outIface, clientMAC
	must(t, o.Conns.Put(&k, &c))
}

func TestV6NAT(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{HopGen: 1})))
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(rs6NAT, fwdMasq))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	putDest(t, o, 2, dest6(rs6NAT, fwdMasq))
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip6, port: 53, sched: schedRR, dests: []uint32{2}})
	var f NATSrc
	must(t, o.NatSrcs.Lookup(uint32(0), &f))
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))

	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, vlan: 9, src: client6, dst: vp, flags: tcpSYN, payload: 10}
	want := in
	want.dst = rs6NAT
	expect6(t, o, "syn", in.build(), xdpRedirect, leaving(want))
	k := connKey6(unix.IPPROTO_TCP, client6, vp)
	var c Conn
	must(t, o.Conns.Lookup(&k, &c))
	if c.Flags&connNAT == 0 || c.State != uint8(conn.SynRecv) {
		t.Fatalf("conn %+v", c)
	}
	natConnHop(t, o, k)
	r := pkt6{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: client6, flags: tcpSYN | tcpACK, hlim: 64}
	want = r
	want.src, want.hlim = vp, 63
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), clientMAC
	expect6(t, o, "syn-ack", r.build(), xdpRedirect, want.build())
	in = pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpACK, payload: 700}
	want = in
	want.dst = rs6NAT
	expect6(t, o, "ack", in.build(), xdpRedirect, leaving(want))
	must(t, o.Conns.Lookup(&k, &c))
	if c.State != uint8(conn.Established) {
		t.Fatalf("after ACK: state %d", c.State)
	}
	// A reply with hop limit 1 is the stack's.
	r.hlim, r.flags = 1, tcpACK
	expect6(t, o, "hlim 1", r.build(), xdpPass, r.build())

	// UDP both ways.
	uv := netip.AddrPortFrom(vip6, 53)
	u := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: uv, proto: unix.IPPROTO_UDP, payload: 11}
	want = u
	want.dst = rs6NAT
	expect6(t, o, "udp", u.build(), xdpRedirect, leaving(want))
	natConnHop(t, o, connKey6(unix.IPPROTO_UDP, client6, uv))
	ur := pkt6{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: client6, proto: unix.IPPROTO_UDP, payload: 33}
	want = ur
	want.src, want.hlim = uv, 63
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), clientMAC
	expect6(t, o, "udp reply", ur.build(), xdpRedirect, want.build())

	s := sumStats(t, o.SvcStats, 1)
	if s.Conns != 1 || s.Inpkts != 2 || s.Outpkts != 1 || s.Inbytes != 60+10+60+700 || s.Outbytes != 60 {
		t.Fatalf("stats %+v", s)
	}

	// An ICMPv6 error from the server about a packet it got (as the
	// director sent it) goes to the client about the packet the client
	// sent, from the virtual address.
	sent := leaving(pkt6{src: client6, dst: rs6NAT, flags: tcpACK, payload: 700})[14:][:48]
	orig := (pkt6{src: client6, dst: vp, flags: tcpACK, payload: 700}).build()[14:][:48]
	icmpIn := icmp6Frame(hopMAC, [6]byte(dirMAC), rs6NAT.Addr(), client6.Addr(), 1, 4, 0, sent, 64)
	icmpWant := icmp6Frame([6]byte(dirMAC), clientMAC, vip6, client6.Addr(), 1, 4, 0, orig, 63)
	expect6(t, o, "icmpv6 from the server", icmpIn, xdpRedirect, icmpWant)
}

// icmp6Frame is an ICMPv6 error (type, code, the 4-byte field) from src to
// dst quoting q, checksummed here.
func icmp6Frame(srcMAC, dstMAC [6]byte, src, dst netip.Addr, typ, code uint8, field uint32, q []byte, hlim uint8) []byte {
	var b []byte
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	msg := []byte{typ, code, 0, 0}
	msg = binary.BigEndian.AppendUint32(msg, field)
	msg = append(msg, q...)
	binary.BigEndian.PutUint16(msg[2:], l4csum6(src, dst, 58, msg))
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, 58, hlim)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, msg...)
}

func TestV6FullNAT(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{HopGen: 1, LportMin: 5000, LportMax: 5000})))
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(rs6NAT, fwdFullNAT))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	// A pool of one IPv6 local address (laddrs words 0-3).
	k := SvcKey{Addr: words6(vip6), Port: htons(80), Proto: unix.IPPROTO_TCP, Af: 6}
	var sv Svc
	must(t, o.Services.Lookup(&k, &sv))
	lw := words6(laddr6)
	copy(sv.Laddrs[:4], lw[:])
	sv.Nladdrs = 1
	must(t, o.Services.Put(&k, &sv))
	var f NATSrc
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))

	lp := netip.AddrPortFrom(laddr6, 5000)
	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN, payload: 3}
	want := in
	want.src, want.dst = lp, rs6NAT
	expect6(t, o, "syn", in.build(), xdpRedirect, leaving(want))
	ck := connKey6(unix.IPPROTO_TCP, client6, vp)
	var c Conn
	must(t, o.Conns.Lookup(&ck, &c))
	if c.Lport != htons(5000) || c.Laddr != lw {
		t.Fatalf("conn %+v", c)
	}
	var owner Reply
	rk := connKey6(unix.IPPROTO_TCP, rs6NAT, lp)
	must(t, o.Rconns.Lookup(&rk, &owner))
	if owner.Fk != ck {
		t.Fatalf("reply entry %+v", owner)
	}
	natConnHop(t, o, ck)
	r := pkt6{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: lp, flags: tcpSYN | tcpACK}
	want = r
	want.src, want.dst, want.hlim = vp, client6, 63
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), clientMAC
	expect6(t, o, "syn-ack", r.build(), xdpRedirect, want.build())
	// The only local port is taken: a second client is refused.
	in.src = ap("[2001:db8:5::2]:40000")
	before := events(t, o)
	expect6(t, o, "no port", in.build(), xdpDrop, nil)
	if ev := events(t, o); ev[evNoLport] != before[evNoLport]+1 {
		t.Fatalf("no_lport not counted")
	}
}

func TestV6Tunnel(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdTunnel))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	for _, vlan := range []uint16{0, 12} {
		in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, vlan: vlan, src: netip.AddrPortFrom(client6.Addr(), 100+vlan), dst: vp, flags: tcpSYN, payload: 20, tclass: 0xb8}
		inner := in.build()[14+4*min(1, int(vlan)):]
		var want []byte
		want = append(want, hopMAC[:]...)
		want = append(want, dirMAC...)
		want = append(want, 0x86, 0xdd, 0x6b, 0x80, 0, 0)
		want = binary.BigEndian.AppendUint16(want, uint16(len(inner)))
		want = append(want, 41, 64)
		s, d := tunSrc6.As16(), rs6.As16()
		want = append(want, s[:]...)
		want = append(want, d[:]...)
		want = append(want, inner...)
		expect6(t, o, fmt.Sprint("tunnel vlan ", vlan), in.build(), xdpRedirect, want)
	}
	// Without an IPv6 tunnel source: passed, counted no_route.
	must(t, o.V6Config.Put(uint32(0), &Config6{}))
	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: ap("[2001:db8:5::9]:1"), dst: vp, flags: tcpSYN}
	expect6(t, o, "no tun src", in.build(), xdpPass, in.build())
}

// Packet too big, from the virtual address, quoting what fits 1280 bytes.
func TestV6PacketTooBig(t *testing.T) {
	o := setup6(t, 1400)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	putDest(t, o, 2, dest6(netip.AddrPortFrom(rs6, 81), fwdTunnel))
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 81, sched: schedRR, dests: []uint32{2}})
	putDest(t, o, 3, dest6(rs6NAT, fwdMasq))
	putService6(t, o, svcSpec{id: 3, proto: unix.IPPROTO_TCP, addr: vip6, port: 82, sched: schedRR, dests: []uint32{3}})
	for i, c := range []struct {
		name    string
		port    uint16
		vlan    uint16
		payload int
		act     uint32
		mtu     uint32
	}{
		{"DR fits", 80, 0, 1400 - 60, xdpRedirect, 0},
		{"DR too big", 80, 0, 1400 - 60 + 1, xdpTX, 1400},
		{"DR too big, vlan", 80, 7, 1500 - 60, xdpTX, 1400},
		{"TUN fits", 81, 0, 1400 - 100, xdpRedirect, 0},
		{"TUN too big", 81, 0, 1400 - 100 + 1, xdpTX, 1360},
		{"NAT too big", 82, 0, 1400, xdpTX, 1400},
	} {
		in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, vlan: c.vlan, src: netip.AddrPortFrom(client6.Addr(), uint16(2000+i)), dst: netip.AddrPortFrom(vip6, c.port), flags: tcpSYN, payload: c.payload}
		b := in.build()
		var want []byte
		if c.act == xdpTX {
			l3 := 14
			if c.vlan != 0 {
				l3 = 18
			}
			q := b[l3:]
			q = q[:min(len(q), 1232)&^3]
			want = icmp6Frame(vipMAC, clientMAC, vip6, client6.Addr(), 2, 0, c.mtu, q, 64)
			if c.vlan != 0 {
				want = append(append(append([]byte{}, want[:12]...), 0x81, 0, 0, byte(c.vlan)), want[12:]...)
			}
		}
		expect6(t, o, c.name, b, c.act, want)
	}
	if ev := events(t, o); ev[evFragNeeded] != 4 {
		t.Fatalf("frag_needed %d, want 4", ev[evFragNeeded])
	}
}

// No server: ICMPv6 port unreachable from the virtual address.
func TestV6NoServer(t *testing.T) {
	o := setup6(t, 1500)
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR})
	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 80), flags: tcpSYN, payload: 1}
	b := in.build()
	want := icmp6Frame(vipMAC, clientMAC, vip6, client6.Addr(), 1, 4, 0, b[14:][:(len(b)-14)&^3], 64)
	expect6(t, o, "no server", b, xdpTX, want)
}

// ICMPv6 errors about connections: about a FULLNAT connection both ways
// (the quoted header translated, the checksum recomputed here), and
// about a DR connection's reply, forwarded to its server as it is.
func TestV6ICMP(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{HopGen: 1, LportMin: 6000, LportMax: 6000})))
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(rs6NAT, fwdFullNAT))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_UDP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	k := SvcKey{Addr: words6(vip6), Port: htons(80), Proto: unix.IPPROTO_UDP, Af: 6}
	var sv Svc
	must(t, o.Services.Lookup(&k, &sv))
	lw := words6(laddr6)
	copy(sv.Laddrs[:4], lw[:])
	sv.Nladdrs = 1
	must(t, o.Services.Put(&k, &sv))
	var f NATSrc
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))
	lp := netip.AddrPortFrom(laddr6, 6000)

	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, proto: unix.IPPROTO_UDP, payload: 20}
	want := in
	want.src, want.dst = lp, rs6NAT
	expect6(t, o, "udp", in.build(), xdpRedirect, leaving(want))
	natConnHop(t, o, connKey6(unix.IPPROTO_UDP, client6, vp))

	// Time exceeded from the server's side about what the director sent
	// it: to the client, from the virtual address, about what the client
	// sent.
	sent := leaving(want)[14:][:48]
	orig := in.build()[14:][:48]
	// The quoted UDP checksum is left as it was, as the kernel does.
	copy(orig[46:], sent[46:])
	te := icmp6Frame(hopMAC, [6]byte(dirMAC), rs6NAT.Addr(), laddr6, 3, 0, 0, sent, 50)
	expect6(t, o, "time exceeded to the client", te, xdpRedirect,
		icmp6Frame([6]byte(dirMAC), clientMAC, vip6, client6.Addr(), 3, 0, 0, orig, 49))

	// Packet too big from the client about a reply: to the server, from
	// the local address, about what the server sent.
	reply := pkt6{src: rs6NAT, dst: lp, proto: unix.IPPROTO_UDP, payload: 20}
	seen := pkt6{src: vp, dst: client6, proto: unix.IPPROTO_UDP, payload: 20, hlim: 63}
	ptb := icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 2, 0, 1280, seen.build()[14:][:48], 64)
	rq := reply.build()[14:][:48]
	rq[7] = 63 // the hop limit the server's packet left the director with
	copy(rq[46:], seen.build()[14+46:][:2])
	expect6(t, o, "packet too big to the server", ptb, xdpRedirect,
		icmp6Frame([6]byte(dirMAC), hopMAC, laddr6, rs6NAT.Addr(), 2, 0, 1280, rq, 64))

	// DR: the client's error about a reply goes to the server untouched.
	putDest(t, o, 2, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{2}})
	syn := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN}
	expect6(t, o, "dr syn", syn.build(), xdpRedirect, nil)
	du := icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 1, 4, 0,
		(pkt6{src: vp, dst: client6, flags: tcpSYN | tcpACK}).build()[14:][:48], 64)
	fw := append([]byte{}, du...)
	copy(fw[0:6], hopMAC[:])
	copy(fw[6:12], dirMAC)
	expect6(t, o, "dr icmp", du, xdpRedirect, fw)
	// An ICMPv6 error about nothing known passes.
	stray := icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 1, 4, 0,
		(pkt6{src: netip.AddrPortFrom(vip6, 99), dst: client6, flags: tcpACK}).build()[14:][:48], 64)
	expect6(t, o, "stray", stray, xdpPass, stray)
	if ev := events(t, o); ev[evICMP] != 3 {
		t.Fatalf("icmp events %d, want 3", ev[evICMP])
	}
}

// A service's allow list holds IPv6 prefixes (gvs_allow_key, 32 + the
// prefix length), looked up with the whole source address.
func TestV6AllowList(t *testing.T) {
	o := setup6(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, flags: svcAllowList, dests: []uint32{1}})
	k := AllowKey{Prefixlen: 32 + 48, Svc: 1, Addr: words6(netip.MustParseAddr("2001:db8:5::"))}
	must(t, o.Allow.Put(&k, uint8(1)))
	ok := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: ap("[2001:db8:5:ffff::1]:1000"), dst: vp, flags: tcpSYN}
	expect6(t, o, "allowed", ok.build(), xdpRedirect, nil)
	no := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: ap("[2001:db8:6::1]:1000"), dst: vp, flags: tcpSYN}
	expect6(t, o, "denied", no.build(), xdpDrop, nil)
	if ev := events(t, o); ev[evDenied] != 1 {
		t.Fatalf("denied %d, want 1", ev[evDenied])
	}
}

// fragment6 cuts p (built without extension headers) into a first
// fragment carrying n bytes of its payload and a later one with the rest.
func fragment6(p pkt6, n int, id uint32) (first, later []byte) {
	b := p.build()
	l3 := 14
	if p.vlan != 0 {
		l3 = 18
	}
	hdr, seg := b[:l3+40], b[l3+40:]
	mk := func(off int, more bool, data []byte) []byte {
		h := append([]byte{}, hdr...)
		binary.BigEndian.PutUint16(h[l3+4:], uint16(8+len(data)))
		h[l3+6] = 44
		fo := uint16(off)
		if more {
			fo |= 1
		}
		h = append(h, p.proto, 0)
		h = binary.BigEndian.AppendUint16(h, fo)
		h = binary.BigEndian.AppendUint32(h, id)
		return append(h, data...)
	}
	return mk(0, true, seg[:n]), mk(n, false, seg[n:])
}

// Fragmented UDP through NAT both ways: a later fragment goes where its
// first went, translated too; one whose first was not seen passes, or is
// dropped when it may be a NAT server's.
func TestV6Fragments(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{HopGen: 1})))
	uv := netip.AddrPortFrom(vip6, 53)
	putDest(t, o, 1, dest6(rs6NAT, fwdMasq))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_UDP, addr: vip6, port: 53, sched: schedRR, dests: []uint32{1}})
	var f NATSrc
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))

	in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: uv, proto: unix.IPPROTO_UDP, payload: 1000}
	want := in
	want.dst = rs6NAT
	want.srcMAC, want.dstMAC = [6]byte(dirMAC), hopMAC
	a, b := fragment6(in, 504, 0x1234)
	wa, wb := fragment6(want, 504, 0x1234)
	expect6(t, o, "first fragment", a, xdpRedirect, wa)
	expect6(t, o, "later fragment", b, xdpRedirect, wb)
	natConnHop(t, o, connKey6(unix.IPPROTO_UDP, client6, uv))

	r := pkt6{srcMAC: hopMAC, dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: client6, proto: unix.IPPROTO_UDP, payload: 1200}
	wr := r
	wr.src, wr.hlim = uv, 63
	wr.srcMAC, wr.dstMAC = [6]byte(dirMAC), clientMAC
	ra, rb := fragment6(r, 1000, 0x99)
	wra, wrb := fragment6(wr, 1000, 0x99)
	expect6(t, o, "reply first", ra, xdpRedirect, wra)
	expect6(t, o, "reply later", rb, xdpRedirect, wrb)

	before := events(t, o)
	_, lone := fragment6(in, 504, 0x5555)
	expect6(t, o, "later fragment, first unseen", lone, xdpPass, lone)
	_, stray := fragment6(r, 1000, 0x5556)
	expect6(t, o, "a NAT server's later fragment, first unseen", stray, xdpDrop, nil)
	ev := events(t, o)
	if ev[evFrag] != 2 || ev[evFragUnknown] != before[evFragUnknown]+2 {
		t.Fatalf("frag %d frag_unknown %d", ev[evFrag], ev[evFragUnknown])
	}
	s := sumStats(t, o.SvcStats, 1)
	if s.Inpkts != 2 || s.Outpkts != 2 || s.Inbytes != uint64(len(a)+len(b)-28) || s.Outbytes != uint64(len(ra)+len(rb)-28) {
		t.Fatalf("stats %+v", s)
	}
}

var (
	dirAddr6 = netip.MustParseAddr("2001:db8:ff::1") // gvs0's: the route's source
	gw6      = netip.MustParseAddr("2001:db8:ff::2")
)

// inNetNS6 is inNetNS for IPv6: gvs0 (2001:db8:ff::1/64, MTU 1400) with
// gateway 2001:db8:ff::2 (a permanent neighbour) for 2001:db8:1::/48
// (servers) and 2001:db8:5::/48 (clients), and 2001:db8:ff::3 (never
// resolved) for 2001:db8:7::/48; forwarding on.
func inNetNS6(t *testing.T, f func(gvs0 int) error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			for _, p := range []string{"all", "default"} {
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/forwarding", []byte("1"), 0); err != nil {
					return err
				}
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/accept_dad", []byte("0"), 0); err != nil {
					return err
				}
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return err
			}
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gvs0", MTU: 1400, HardwareAddr: dirMAC}, PeerName: "gvs1"}
			if err := netlink.LinkAdd(veth); err != nil {
				return fmt.Errorf("veth: %w", err)
			}
			l, err := netlink.LinkByName("gvs0")
			if err != nil {
				return err
			}
			peer, err := netlink.LinkByName("gvs1")
			if err != nil {
				return err
			}
			for _, x := range []netlink.Link{l, peer} {
				if err := netlink.LinkSetUp(x); err != nil {
					return err
				}
			}
			a, _ := netlink.ParseAddr("2001:db8:ff::1/64")
			a.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(l, a); err != nil {
				return err
			}
			if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V6,
				State: netlink.NUD_PERMANENT, IP: gw6.AsSlice(), HardwareAddr: gwMAC}); err != nil {
				return fmt.Errorf("neighbour: %w", err)
			}
			for _, r := range []struct{ dst, gw string }{{"2001:db8:1::/48", "2001:db8:ff::2"}, {"2001:db8:5::/48", "2001:db8:ff::2"}, {"2001:db8:7::/48", "2001:db8:ff::3"}} {
				_, dst, _ := net.ParseCIDR(r.dst)
				if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: net.ParseIP(r.gw)}); err != nil {
					return fmt.Errorf("route %s: %w", r.dst, err)
				}
			}
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/gvs0/forwarding", []byte("1"), 0); err != nil {
				return err
			}
			return f(l.Attrs().Index)
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// expectNS is expect6 for the namespace thread: errors, not t.Fatal.
func expectNS(o *Objects, name string, in []byte, act uint32, want []byte) error {
	got, out, err := runNS(o, in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if got != act {
		return fmt.Errorf("%s: action %s, want %s", name, actionNames[got], actionNames[act])
	}
	if want != nil && !bytes.Equal(out, want) {
		return fmt.Errorf("%s: output\n%x\nwant\n%x", name, out, want)
	}
	return nil
}

// Where the FIB decides: NAT replies routed to the gateway, FULLNAT's
// local address the route's source, a next hop without a neighbour
// (recorded in neigh_miss6), nat_icmp_send's port unreachable.
func TestV6FIB(t *testing.T) {
	o := loadObjects(t)
	must(t, o.Config.Put(uint32(0), conf(Config{NatIcmpSend: 1})))
	vp := netip.AddrPortFrom(vip6, 80)
	nat := Dest{Addr: words6(rs6NAT.Addr()), Port: htons(rs6NAT.Port()), Method: fwdMasq, Af: 6, Weight: 1, Flags: destAvailable}
	putDest(t, o, 1, nat)
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	full := nat
	full.Method = fwdFullNAT
	putDest(t, o, 2, full)
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 81, sched: schedRR, dests: []uint32{2}})
	var f NATSrc
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))
	nk := SvcKey{Addr: words6(rs6NAT.Addr()), Port: htons(rs6NAT.Port()), Proto: unix.IPPROTO_TCP, Af: 6}
	must(t, o.NatServers.Put(&nk, uint32(1)))
	gw := func(p pkt6) []byte {
		p.srcMAC, p.dstMAC, p.vlan = [6]byte(dirMAC), [6]byte(gwMAC), 0
		return p.build()
	}
	far := ap("[2001:db8:7::9]:5000") // behind a gateway with no neighbour entry

	inNetNS6(t, func(int) error {
		in := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN}
		want := in
		want.dst = rs6NAT
		if err := expectNS(o, "nat syn", in.build(), xdpRedirect, gw(want)); err != nil {
			return err
		}
		r := pkt6{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: client6, flags: tcpSYN | tcpACK}
		want = r
		want.src, want.hlim = vp, 63
		if err := expectNS(o, "nat syn-ack by the FIB", r.build(), xdpRedirect, gw(want)); err != nil {
			return err
		}
		// FULLNAT without a pool: the route's source toward the server.
		in = pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 81), flags: tcpSYN}
		_, out, err := runNS(o, in.build())
		if err != nil {
			return err
		}
		if src, _ := netip.AddrFromSlice(out[14+8 : 14+24]); src != dirAddr6 {
			return fmt.Errorf("fullnat source %v, want %v", src, dirAddr6)
		}
		// A client behind an unresolved gateway: dropped, the next hop
		// noted for gvsd.
		in = pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: far, dst: vp, flags: tcpSYN}
		if err := expectNS(o, "far syn", in.build(), xdpRedirect, nil); err != nil {
			return err
		}
		r = pkt6{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: far, flags: tcpSYN | tcpACK}
		if err := expectNS(o, "far syn-ack", r.build(), xdpDrop, nil); err != nil {
			return err
		}
		var at uint64
		if err := o.NeighMiss6.Lookup(words6(netip.MustParseAddr("2001:db8:ff::3")), &at); err != nil {
			return fmt.Errorf("neigh_miss6: %w", err)
		}
		// nat_icmp_send: from the server, no connection, forwarded:
		// port unreachable from the director's address.
		stray := pkt6{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: rs6NAT, dst: ap("[2001:db8:5::77]:1"), flags: tcpACK, payload: 3}
		sb := stray.build()
		want6 := icmp6Frame([6]byte(dirMAC), [6]byte(gwMAC), dirAddr6, rs6NAT.Addr(), 1, 4, 0, sb[14:][:(len(sb)-14)&^3], 64)
		if err := expectNS(o, "nat_icmp_send", sb, xdpTX, want6); err != nil {
			return err
		}
		stray.flags = tcpRST | tcpACK
		return expectNS(o, "nat_icmp_send, a RST", stray.build(), xdpPass, stray.build())
	})
	if ev := events(t, o); ev[evNATICMPSend] != 1 || ev[evNoRoute] != 1 {
		t.Fatalf("nat_icmp_send %d no_route %d", ev[evNATICMPSend], ev[evNoRoute])
	}
}

// lblc keys an IPv6 destination by its whole address (the kernel's), not
// by the fold the other schedulers hash.
func TestV6LBLCKey(t *testing.T) {
	o := setup6(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: uint32(4) /* lblc */, dests: []uint32{1}})
	p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: tcpSYN}
	expect6(t, o, "lblc", p.build(), xdpRedirect, nil)
	k := LBLCKey{Svc: 1, Addr: words6(vip6)}
	var v LBLC
	must(t, o.Lblc.Lookup(&k, &v))
	if v.Dest != 1 {
		t.Fatalf("lblc entry %+v", v)
	}
}

// With a sync master running, IPv6 connections are reported as IPv4's
// (threshold 3: the third client packet of an established connection).
func TestV6SyncEvents(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{SyncMaster: 1, SyncThreshold: 3, SyncPeriod: 50})))
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	rd, err := ringbuf.NewReader(o.SyncEvents)
	must(t, err)
	defer rd.Close()
	for i, fl := range []uint8{tcpSYN, tcpACK, tcpACK} {
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: fl}
		expect6(t, o, fmt.Sprint("packet ", i+1), p.build(), xdpRedirect, nil)
	}
	rd.SetDeadline(time.Now().Add(time.Second))
	r, err := rd.Read()
	must(t, err)
	var rec SyncRec
	if _, err := binary.Decode(r.RawSample, binary.LittleEndian, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Key != connKey6(unix.IPPROTO_TCP, client6, vp) || rec.Conn.SyncPkts != 3 || rec.Conn.State != uint8(conn.Established) {
		t.Fatalf("record %+v", rec)
	}
}

// ICMPv6 errors share IPv4's token bucket (50 at once, 1000/s per CPU):
// past the burst, a too-big packet is dropped without an answer.
func TestV6ICMPRateLimit(t *testing.T) {
	o := setup6(t, 1400)
	onOneCPU(t)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{1}})
	tx, drop := 0, 0
	start := monotonicNow()
	for i := range 80 {
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: netip.AddrPortFrom(client6.Addr(), uint16(1000+i)), dst: vp, flags: tcpSYN, payload: 1400}
		switch act, _ := run(t, o, p.build()); act {
		case xdpTX:
			tx++
		case xdpDrop:
			drop++
		default:
			t.Fatalf("packet %d: %s", i, actionNames[act])
		}
	}
	// The burst, then a token back per millisecond of the run (the
	// coarse clock BPF reads is a tick behind at most: 4 ms of slack).
	elapsed := (monotonicNow() - start) / 1e6
	if most := 50 + int(elapsed) + 4; tx < 50 || tx > most || drop != 80-tx {
		t.Fatalf("%d answered, %d dropped of 80 in %d ms (at most %d answered)", tx, drop, elapsed, most)
	}
}
