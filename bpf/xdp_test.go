package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const (
	schedRR  = 0
	schedWRR = 1
	schedWLC = 3
)

var (
	vip    = netip.MustParseAddr("198.18.0.100")
	rs1    = netip.MustParseAddr("198.18.0.11")
	rs2    = netip.MustParseAddr("198.18.0.12")
	client = ap("198.18.5.1:40000")
)

// drService sets up TCP and UDP vip:80 (rr) with rs1 (id 1) and rs2
// (id 2), both DR on ifindex 1 (the test run's ingress: loopback).
func drService(t *testing.T, o *Objects) {
	t.Helper()
	putDest(t, o, 1, drDest(rs1, 80, 1, 1, 1))
	putDest(t, o, 2, drDest(rs2, 80, 1, 1, 2))
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{2, 1}})
	putService(t, o, svcSpec{id: 8, proto: unix.IPPROTO_UDP, addr: vip, port: 80, sched: schedRR, dests: []uint32{2, 1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	must(t, o.Ifmacs.Put(uint32(2), &IfMAC{Mac: ifMAC}))
}

func syn(src netip.AddrPort, dport uint16) pkt {
	return pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: src, dst: netip.AddrPortFrom(vip, dport),
		proto: unix.IPPROTO_TCP, flags: tcpSYN, df: true}
}

func TestDRForward(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)

	for _, vlan := range []uint16{0, 42} {
		p := syn(client, 80)
		p.vlan = vlan
		p.src = netip.AddrPortFrom(client.Addr(), client.Port()+vlan)
		in := p.build()
		act, out := run(t, o, in)
		if act != xdpTX {
			t.Fatalf("vlan %d: action %s, want TX", vlan, actionNames[act])
		}
		// rr from the head: rs2 (id 2) first, then rs1.
		want := append([]byte{}, in...)
		id := uint32(2)
		if vlan != 0 {
			id = 1
		}
		m := destMAC(id)
		copy(want[0:6], m[:])
		copy(want[6:12], ifMAC[:])
		if !bytes.Equal(out, want) {
			t.Fatalf("vlan %d: output\n%x\nwant\n%x", vlan, out, want)
		}
	}

	// Another interface: redirect.
	d := getDest(t, o, 2)
	d.Ifindex = 2
	putDest(t, o, 2, d)
	act, out := run(t, o, syn(ap("198.18.5.9:1000"), 80).build())
	if act != xdpRedirect {
		t.Fatalf("action %s, want REDIRECT", actionNames[act])
	}
	if m := destMAC(2); !bytes.Equal(out[0:6], m[:]) {
		t.Fatalf("dst MAC %x", out[0:6])
	}
	if ev := events(t, o); ev[evForward] != 3 {
		t.Fatalf("forward events %d, want 3", ev[evForward])
	}
}

func TestConnStatesAndCounters(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	k := connKey(unix.IPPROTO_TCP, client, netip.AddrPortFrom(vip, 80))

	type step struct {
		flags      uint8
		state      uint8
		timeout    uint32
		inactive   bool
		act, inact int32
	}
	steps := []step{
		{tcpSYN, 3 /* SYN_RECV */, 60, false, 1, 0},
		{tcpACK, 1 /* ESTABLISHED */, 900, false, 1, 0},
		{tcpACK, 1, 900, false, 1, 0},
		{tcpFIN | tcpACK, 4 /* FIN_WAIT */, 120, true, 0, 1},
		{tcpACK, 4, 120, true, 0, 1},
		{tcpRST, 6 /* CLOSE */, 10, true, 0, 1},
	}
	var bytesIn, dest uint64
	for i, s := range steps {
		p := syn(client, 80)
		p.flags = s.flags
		p.payload = i * 10
		in := p.build()
		before := monotonicNow()
		act, out := run(t, o, in)
		if act != xdpTX {
			t.Fatalf("step %d: action %s", i, actionNames[act])
		}
		bytesIn += ipTotLen(in)
		var c Conn
		must(t, o.Conns.Lookup(&k, &c))
		if i == 0 {
			dest = uint64(c.Dest)
		} else if uint64(c.Dest) != dest {
			t.Fatalf("step %d: connection moved from dest %d to %d", i, dest, c.Dest)
		}
		if m := destMAC(c.Dest); !bytes.Equal(out[0:6], m[:]) {
			t.Fatalf("step %d: sent to %x, conn says dest %d", i, out[0:6], c.Dest)
		}
		if c.State != s.state || c.Timeout != s.timeout || (c.Flags&connInactive != 0) != s.inactive ||
			c.Flags&connNoOutput == 0 || c.Svc != 7 {
			t.Fatalf("step %d: conn %+v, want state %d timeout %d inactive %v", i, c, s.state, s.timeout, s.inactive)
		}
		if lo, hi := before+uint64(s.timeout)*1e9, monotonicNow()+uint64(s.timeout)*1e9; c.Expires < lo || c.Expires > hi {
			t.Fatalf("step %d: expires %d not in [%d, %d]", i, c.Expires, lo, hi)
		}
		d := getDest(t, o, c.Dest)
		if d.Activeconns != s.act || d.Inactconns != s.inact {
			t.Fatalf("step %d: dest active %d inactive %d, want %d %d", i, d.Activeconns, d.Inactconns, s.act, s.inact)
		}
	}
	for _, m := range []struct {
		name string
		st   Stats
	}{{"service", sumStats(t, o.SvcStats, 7)}, {"dest", sumStats(t, o.DestStats, uint32(dest))}} {
		if m.st.Conns != 1 || m.st.Inpkts != uint64(len(steps)) || m.st.Inbytes != bytesIn || m.st.Outpkts != 0 {
			t.Fatalf("%s stats %+v, want 1 conn, %d packets, %d bytes", m.name, m.st, len(steps), bytesIn)
		}
	}

	// A bare SYN on the CLOSE connection reopens it (conn_reuse_mode 1):
	// the old one is unbound, a new one scheduled (rr: the other server).
	act, out := run(t, o, syn(client, 80).build())
	if act != xdpTX {
		t.Fatalf("reopen: action %s", actionNames[act])
	}
	var c Conn
	must(t, o.Conns.Lookup(&k, &c))
	if uint64(c.Dest) == dest || c.State != 3 {
		t.Fatalf("reopened conn %+v: want a new SYN_RECV conn on the other server", c)
	}
	if m := destMAC(c.Dest); !bytes.Equal(out[0:6], m[:]) {
		t.Fatalf("reopen sent to %x", out[0:6])
	}
	if d := getDest(t, o, uint32(dest)); d.Activeconns != 0 || d.Inactconns != 0 {
		t.Fatalf("old dest still counts %d/%d", d.Activeconns, d.Inactconns)
	}
	if d := getDest(t, o, c.Dest); d.Activeconns != 1 || d.Inactconns != 0 {
		t.Fatalf("new dest counts %d/%d", d.Activeconns, d.Inactconns)
	}

	// UDP: any datagram opens a connection; the state is UDP (100).
	u := syn(ap("198.18.5.2:5353"), 80)
	u.proto = unix.IPPROTO_UDP
	u.payload = 11
	in := u.build()
	if act, _ := run(t, o, in); act != xdpTX {
		t.Fatalf("udp: action %s", actionNames[act])
	}
	uk := connKey(unix.IPPROTO_UDP, u.src, u.dst)
	must(t, o.Conns.Lookup(&uk, &c))
	if c.State != 100 || c.Timeout != 300 || c.Flags&connInactive == 0 || c.Svc != 8 {
		t.Fatalf("udp conn %+v", c)
	}
	if st := sumStats(t, o.SvcStats, 8); st.Inbytes != 39 || st.Conns != 1 {
		t.Fatalf("udp stats %+v: want 39 bytes (11 of payload at the IP level)", st)
	}

	// A server that lost AVAILABLE: packets of its connections drop.
	d := getDest(t, o, c.Dest)
	d.Flags &^= destAvailable
	putDest(t, o, c.Dest, d)
	if act, _ := run(t, o, in); act != xdpDrop {
		t.Fatalf("conn to a deleted server: action %s, want DROP", actionNames[act])
	}
	if ev := events(t, o); ev[evDropNodest] != 1 {
		t.Fatalf("drop_nodest events %d", ev[evDropNodest])
	}
}

func TestPassThrough(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	other := netip.MustParseAddr("198.18.0.200")
	var cases = map[string][]byte{
		"tcp other port":   syn(client, 81).build(),
		"tcp ack, no conn": func() []byte { p := syn(client, 80); p.flags = tcpACK; return p.build() }(),
		"tcp syn+rst":      func() []byte { p := syn(client, 80); p.flags = tcpSYN | tcpRST; return p.build() }(),
		"udp other addr": func() []byte {
			p := syn(client, 80)
			p.proto, p.dst = unix.IPPROTO_UDP, netip.AddrPortFrom(other, 80)
			return p.build()
		}(),
		"icmp": func() []byte {
			b := syn(client, 80).build()
			b[23] = 1 // protocol ICMP
			binary.BigEndian.PutUint16(b[24:], 0)
			binary.BigEndian.PutUint16(b[24:], checksum(b[14:34]))
			return b
		}(),
		"arp":  append(append(append([]byte{}, bytes.Repeat([]byte{0xff}, 6)...), clientMAC[:]...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1),
		"ipv6": append(append(append([]byte{}, vipMAC[:]...), clientMAC[:]...), append([]byte{0x86, 0xdd, 0x60}, make([]byte, 60)...)...),
		"later fragment, first unseen": func() []byte {
			b := syn(client, 80).build()
			binary.BigEndian.PutUint16(b[20:], 0x0003) // offset 24 bytes
			binary.BigEndian.PutUint16(b[24:], 0)
			binary.BigEndian.PutUint16(b[24:], checksum(b[14:34]))
			return b
		}(),
		"qinq": func() []byte { p := syn(client, 80); p.vlan = 5; b := p.build(); b[16], b[17] = 0x81, 0x00; return b }(),
	}
	for name, in := range cases {
		act, out := run(t, o, in)
		if act != xdpPass || !bytes.Equal(out, in) {
			t.Errorf("%s: action %s, output changed %v", name, actionNames[act], !bytes.Equal(out, in))
		}
	}
	var n int
	it := o.Conns.Iterate()
	var k ConnKey
	var c Conn
	for it.Next(&k, &c) {
		n++
	}
	if n != 0 {
		t.Fatalf("%d connections created by pass-through traffic", n)
	}
	// IP options are fine: DR does not touch the IP header.
	p := syn(client, 80)
	p.ipOptions = []byte{1, 1, 1, 0} // NOP NOP NOP EOL
	if act, _ := run(t, o, p.build()); act != xdpTX {
		t.Fatalf("ip options: action %s, want TX", actionNames[act])
	}
}

func TestMalformed(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	var valid [][]byte
	for i, p := range []pkt{syn(client, 80), syn(ap("198.18.5.3:1"), 80)} {
		if i == 1 {
			p.proto, p.payload, p.vlan = unix.IPPROTO_UDP, 5, 7
		}
		valid = append(valid, p.build())
	}
	opt := syn(ap("198.18.5.4:2"), 80)
	opt.ipOptions = []byte{1, 1, 1, 0}
	valid = append(valid, opt.build())

	check := func(name string, in []byte) {
		t.Helper()
		act, out := run(t, o, in)
		switch act {
		case xdpPass:
			if !bytes.Equal(out, in) {
				t.Fatalf("%s: passed but changed", name)
			}
		case xdpDrop:
		default:
			t.Fatalf("%s: action %s", name, actionNames[act])
		}
	}
	before := events(t, o)[evMalformed]
	n := 0
	for _, v := range valid {
		// Every truncation (the kernel wants at least an Ethernet header).
		for l := 14; l < len(v); l++ {
			check("prefix", v[:l])
			n++
		}
	}
	if got := events(t, o)[evMalformed] - before; got == 0 || got > uint64(n) {
		t.Fatalf("malformed events %d for %d truncated packets", got, n)
	}
	// Corrupted headers.
	v := valid[0]
	for name, f := range map[string]func(b []byte){
		"bad ip checksum": func(b []byte) { b[24] ^= 0xff },
		"version 6":       func(b []byte) { b[14] = 0x65 },
		"ihl 4":           func(b []byte) { b[14] = 0x44 },
		"ihl 15":          func(b []byte) { b[14] = 0x4f },
		"tot_len short":   func(b []byte) { binary.BigEndian.PutUint16(b[16:], 30) },
		"tot_len long":    func(b []byte) { binary.BigEndian.PutUint16(b[16:], 1000) },
		"tcp doff 2":      func(b []byte) { b[46] = 2 << 4 },
		"tcp doff 15":     func(b []byte) { b[46] = 15 << 4 },
	} {
		b := append([]byte{}, v...)
		f(b)
		if name != "bad ip checksum" {
			binary.BigEndian.PutUint16(b[24:], 0)
			hl := int(b[14]&0xf) * 4
			if 14+hl <= len(b) {
				binary.BigEndian.PutUint16(b[24:], checksum(b[14:14+hl]))
			}
		}
		act, out := run(t, o, b)
		if act != xdpPass || !bytes.Equal(out, b) {
			t.Errorf("%s: action %s", name, actionNames[act])
		}
	}
}

func TestPersistence(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	// TCP vip:443, persistent 300 s, netmask /24, wlc.
	putService(t, o, svcSpec{id: 9, proto: unix.IPPROTO_TCP, addr: vip, port: 443, sched: schedWLC,
		flags: 1, timeout: 300, netmask: 0xffffff00, dests: []uint32{2, 1}})
	a, b := ap("198.18.5.77:1111"), ap("198.18.5.78:2222")
	var dests []uint32
	before := monotonicNow()
	for _, c := range []netip.AddrPort{a, b} {
		act, out := run(t, o, syn(c, 443).build())
		if act != xdpTX {
			t.Fatalf("action %s", actionNames[act])
		}
		dests = append(dests, uint32(out[5]))
		var cn Conn
		k := connKey(unix.IPPROTO_TCP, c, netip.AddrPortFrom(vip, 443))
		must(t, o.Conns.Lookup(&k, &cn))
		if cn.Flags&connControlled == 0 {
			t.Fatalf("conn %+v not controlled", cn)
		}
	}
	if dests[0] != dests[1] {
		t.Fatalf("clients of one /24 went to %d and %d", dests[0], dests[1])
	}
	tk := ConnKey{Vport: htons(443), Proto: unix.IPPROTO_TCP, Af: 4}
	tk.Caddr[0] = ip4(netip.MustParseAddr("198.18.5.0"))
	tk.Vaddr[0] = ip4(vip)
	var tm Template
	must(t, o.Templates.Lookup(&tk, &tm))
	if tm.Dest != dests[0] || tm.Svc != 9 || tm.N_control != 2 || tm.Timeout != 300 ||
		tm.Expires < before+300e9 || tm.Expires > monotonicNow()+300e9 {
		t.Fatalf("template %+v", tm)
	}
	d := getDest(t, o, dests[0])
	if d.Persistconns != 1 || d.Activeconns != 2 {
		t.Fatalf("dest counts %+v", d)
	}
	// Another /24: a new template (wlc: the other, idle server).
	act, out := run(t, o, syn(ap("198.18.6.1:1"), 443).build())
	if act != xdpTX || uint32(out[5]) == dests[0] {
		t.Fatalf("other network: action %s dest %d", actionNames[act], out[5])
	}
	// The template's server quiesced with expire_quiescent_template: the
	// template is replaced, in place, by one to the other server.
	d.Weight = 0
	putDest(t, o, dests[0], d)
	must(t, o.Config.Put(uint32(0), conf(Config{ExpireQuiescentTemplate: 1})))
	act, out = run(t, o, syn(ap("198.18.5.79:3"), 443).build())
	if act != xdpTX || uint32(out[5]) == dests[0] {
		t.Fatalf("quiesced: action %s dest %d", actionNames[act], out[5])
	}
	must(t, o.Templates.Lookup(&tk, &tm))
	if tm.Dest == dests[0] || tm.N_control != 3 {
		t.Fatalf("replaced template %+v", tm)
	}
	if d := getDest(t, o, dests[0]); d.Persistconns != 0 {
		t.Fatalf("quiesced dest still holds %d templates", d.Persistconns)
	}
}

func TestNoDestICMP(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, drDest(rs1, 80, 0, 1, 1)) // weight 0: quiesced
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedWLC, dests: []uint32{1}})
	for _, vlan := range []uint16{0, 9} {
		p := syn(client, 80)
		p.vlan = vlan
		p.payload = 100
		in := p.build()
		act, out := run(t, o, in)
		if act != xdpTX {
			t.Fatalf("vlan %d: action %s, want TX of ICMP port unreachable", vlan, actionNames[act])
		}
		l3 := 14
		if vlan != 0 {
			l3 = 18
		}
		checkICMP(t, in, out, l3, 3, 0)
	}
	if ev := events(t, o); ev[evNoDest] != 2 {
		t.Fatalf("no_dest events %d", ev[evNoDest])
	}
}

// checkICMP checks an ICMP destination unreachable reply to in, byte by byte.
func checkICMP(t *testing.T, in, out []byte, l3 int, code byte, mtu uint16) {
	t.Helper()
	if err := icmpCheck(in, out, l3, code, mtu); err != nil {
		t.Fatal(err)
	}
}

func icmpCheck(in, out []byte, l3 int, code byte, mtu uint16) error {
	if len(out) != l3+56 {
		return fmt.Errorf("reply of %d bytes, want %d", len(out), l3+56)
	}
	if !bytes.Equal(out[0:6], in[6:12]) || !bytes.Equal(out[6:12], in[0:6]) || !bytes.Equal(out[12:l3], in[12:l3]) {
		return fmt.Errorf("reply L2 header %x, request %x", out[:l3], in[:l3])
	}
	ip := out[l3:]
	want := []byte{0x45, 0xc0 | in[l3+1]&0x1e, 0, 56, 0, 0, 0, 0, 64, 1}
	if !bytes.Equal(ip[:10], want) {
		return fmt.Errorf("reply IP header %x, want %x...", ip[:10], want)
	}
	if checksum(ip[:20]) != 0 {
		return fmt.Errorf("reply IP checksum wrong: %x", ip[:20])
	}
	if !bytes.Equal(ip[12:16], in[l3+16:l3+20]) || !bytes.Equal(ip[16:20], in[l3+12:l3+16]) {
		return fmt.Errorf("reply addresses %x, request %x", ip[12:20], in[l3+12:l3+20])
	}
	ic := ip[20:]
	if ic[0] != 3 || ic[1] != code || binary.BigEndian.Uint16(ic[4:]) != 0 || binary.BigEndian.Uint16(ic[6:]) != mtu {
		return fmt.Errorf("ICMP header %x, want type 3 code %d mtu %d", ic[:8], code, mtu)
	}
	if checksum(ic) != 0 {
		return fmt.Errorf("ICMP checksum wrong")
	}
	if !bytes.Equal(ic[8:], in[l3:l3+28]) {
		return fmt.Errorf("quote %x, want %x", ic[8:], in[l3:l3+28])
	}
	return nil
}

// TestProgramSize logs what the verifier saw (run with -v): instructions
// processed, stack, and the size of the loaded program.
func TestProgramSize(t *testing.T) {
	spec, err := LoadSpec()
	must(t, err)
	loadObjects(t) // skips without root
	var o Objects
	must(t, LoadObjects(&o, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}}))
	defer o.Close()
	info, err := o.XdpGvs.Info()
	must(t, err)
	insns, err := info.Instructions()
	must(t, err)
	jited, _ := info.JitedSize()
	t.Logf("ELF: %d instructions; loaded: %d xlated instructions, %d bytes JITed",
		len(spec.Programs["xdp_gvs"].Instructions), len(insns), jited)
	for _, l := range strings.Split(strings.TrimSpace(o.XdpGvs.VerifierLog), "\n") {
		t.Log(l)
	}
}

// TestExpiry: entries whose time is up are treated as the kernel's timer
// would have left them (ipvs/packet.go lookup and expire).
func TestExpiry(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	k := connKey(unix.IPPROTO_TCP, client, netip.AddrPortFrom(vip, 80))
	expire := func() {
		t.Helper()
		var c Conn
		must(t, o.Conns.Lookup(&k, &c))
		c.Expires = 1
		must(t, o.Conns.Put(&k, &c))
	}
	counts := func(id uint32) [2]int32 {
		d := getDest(t, o, id)
		return [2]int32{d.Activeconns, d.Inactconns}
	}
	if act, _ := run(t, o, syn(client, 80).build()); act != xdpTX {
		t.Fatal(actionNames[act])
	}
	// An expired connection is gone: an ACK finds nothing and passes.
	expire()
	ack := syn(client, 80)
	ack.flags = tcpACK
	if act, _ := run(t, o, ack.build()); act != xdpPass {
		t.Fatalf("ack on an expired conn: %s", actionNames[act])
	}
	var c Conn
	if err := o.Conns.Lookup(&k, &c); err == nil {
		t.Fatalf("expired conn still there: %+v", c)
	}
	if counts(2) != [2]int32{0, 0} {
		t.Fatalf("expired conn still counted: %v", counts(2))
	}
	// A SYN over an expired connection makes a new one (rr: server 1).
	run(t, o, syn(client, 80).build())
	expire()
	if act, out := run(t, o, syn(client, 80).build()); act != xdpTX || out[5] != 2 {
		t.Fatalf("syn over an expired conn: %s to %d", actionNames[act], out[5])
	}
	if counts(1) != [2]int32{0, 0} || counts(2) != [2]int32{1, 0} {
		t.Fatalf("counts %v %v", counts(1), counts(2))
	}

	// expire_nodest_conn: a packet for a deleted server drops its conn.
	must(t, o.Config.Put(uint32(0), conf(Config{ExpireNodestConn: 1})))
	d := getDest(t, o, 2)
	d.Flags &^= destAvailable
	putDest(t, o, 2, d)
	if act, _ := run(t, o, ack.build()); act != xdpDrop {
		t.Fatalf("nodest: %s", actionNames[act])
	}
	if err := o.Conns.Lookup(&k, &c); err == nil || counts(2) != [2]int32{0, 0} {
		t.Fatalf("conn to a deleted server kept (%v), counts %v", err, counts(2))
	}
	d.Flags |= destAvailable
	putDest(t, o, 2, d)
	must(t, o.Config.Put(uint32(0), conf(Config{})))

	// Templates: expired while controlling connections, 60 more seconds;
	// expired and idle, replaced.
	putService(t, o, svcSpec{id: 9, proto: unix.IPPROTO_TCP, addr: vip, port: 443, sched: schedWLC,
		flags: 1, timeout: 300, netmask: 0xffffff00, dests: []uint32{2, 1}})
	tk := ConnKey{Vport: htons(443), Proto: unix.IPPROTO_TCP, Af: 4}
	tk.Caddr[0] = ip4(netip.MustParseAddr("198.18.5.0"))
	tk.Vaddr[0] = ip4(vip)
	_, out := run(t, o, syn(ap("198.18.5.1:1"), 443).build())
	first := uint32(out[5])
	var tm Template
	must(t, o.Templates.Lookup(&tk, &tm))
	tm.Expires = 1
	must(t, o.Templates.Put(&tk, &tm))
	before := monotonicNow()
	if _, out := run(t, o, syn(ap("198.18.5.2:2"), 443).build()); uint32(out[5]) != first {
		t.Fatalf("expired template controlling a conn not used")
	}
	must(t, o.Templates.Lookup(&tk, &tm))
	if tm.Timeout != 60 || tm.Expires < before+60e9 || tm.N_control != 2 {
		t.Fatalf("extended template %+v", tm)
	}
	tm.Expires, tm.N_control = 1, 0
	must(t, o.Templates.Put(&tk, &tm))
	persist := getDest(t, o, first).Persistconns
	if _, out := run(t, o, syn(ap("198.18.5.3:3"), 443).build()); uint32(out[5]) == first {
		t.Fatalf("expired idle template reused (wlc should pick the other server)")
	}
	if p := getDest(t, o, first).Persistconns; p != persist-1 {
		t.Fatalf("old template still counted: %d", p)
	}
	must(t, o.Templates.Lookup(&tk, &tm))
	if tm.Dest == first || tm.Timeout != 300 || tm.N_control != 1 {
		t.Fatalf("new template %+v", tm)
	}
}
