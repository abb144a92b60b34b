package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"gvs/conn"
)

// IPv6 SCTP through xdp_gvs6: frames built here, the CRC32c computed with
// hash/crc32 (sctp_test.go's helpers), compared byte for byte.

// sctp6Packet is an Ethernet frame with an IPv6 SCTP packet (hop limit
// hlim, traffic class 0): common header, CRC32c over the SCTP packet only
// (no pseudo-header), chunks.
func sctp6Packet(srcMAC, dstMAC [6]byte, src, dst netip.AddrPort, hlim uint8, vtag uint32, chunks ...[]byte) []byte {
	var l4 []byte
	l4 = binary.BigEndian.AppendUint16(l4, src.Port())
	l4 = binary.BigEndian.AppendUint16(l4, dst.Port())
	l4 = binary.BigEndian.AppendUint32(l4, vtag)
	l4 = append(l4, 0, 0, 0, 0)
	for _, c := range chunks {
		l4 = append(l4, c...)
	}
	binary.LittleEndian.PutUint32(l4[8:], crc32.Checksum(l4, castagnoli))
	var b []byte
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(l4)))
	b = append(b, unix.IPPROTO_SCTP, hlim)
	s, d := src.Addr().As16(), dst.Addr().As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, l4...)
}

// sctp6CRCOK reports whether the SCTP packet at l4 in f verifies.
func sctp6CRCOK(f []byte, l4 int) bool {
	p := append([]byte{}, f[l4:]...)
	want := binary.LittleEndian.Uint32(p[8:])
	binary.LittleEndian.PutUint32(p[8:], 0)
	return crc32.Checksum(p, castagnoli) == want
}

var vsctp6 = netip.AddrPortFrom(vip6, sctpPort)

// sctp6Service is SCTP [vip6]:3868 (rr) over servers ids, with the out
// interface known.
func sctp6Service(t *testing.T, o *Objects, ids ...uint32) {
	t.Helper()
	putService6(t, o, svcSpec{id: 9, proto: unix.IPPROTO_SCTP, addr: vip6, port: sctpPort, sched: schedRR, dests: ids})
	putSCTPTimeouts(t, o)
}

func sctp6Conn(t *testing.T, o *Objects, src netip.AddrPort) (Conn, bool) {
	t.Helper()
	var c Conn
	k := connKey6(unix.IPPROTO_SCTP, src, vsctp6)
	err := o.Conns.Lookup(&k, &c)
	return c, err == nil
}

// dr6Out is a frame as DR sends it on: the server's MAC, the out
// interface's, nothing else changed.
func dr6Out(in []byte) []byte {
	w := append([]byte{}, in...)
	copy(w[0:6], hopMAC[:])
	copy(w[6:12], dirMAC)
	return w
}

// Over DR, an association's life as the director sees it (INPUT-ONLY):
// INIT -> INIT1 (4 s), retransmitted INIT -> INIT, COOKIE ECHO with DATA
// bundled -> ESTABLISHED (active, 900 s), DATA, HEARTBEAT, SACK, SHUTDOWN
// -> S-RECEIVED, SHUTDOWN COMPLETE -> CLOSED; each frame sent on byte for
// byte, CRC32c intact. Before it, packets other than an INIT with no
// association pass untouched, and a packet without a chunk header is
// malformed. After it, an INIT on the CLOSED association opens a new one
// on the next server, and COOKIE ECHO + ABORT closes it.
func TestSCTP6DR(t *testing.T) {
	o := setup6(t, 1500)
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, sctpPort), fwdRoute))
	putDest(t, o, 2, dest6(netip.AddrPortFrom(netip.MustParseAddr("2001:db8:1::12"), sctpPort), fwdRoute))
	sctp6Service(t, o, 2, 1)
	src := netip.AddrPortFrom(client6.Addr(), 7000)
	from := func(ch ...[]byte) []byte {
		return sctp6Packet(clientMAC, vipMAC, src, vsctp6, 64, 0x0a0b0c0d, ch...)
	}

	for _, ev := range []conn.SCTPEvent{conn.EvData, conn.EvAbort, conn.EvCookieEcho, conn.EvShutdown} {
		in := from(eventChunks(ev))
		expect6(t, o, fmt.Sprint("no association, event ", ev), in, xdpPass, in)
		if _, ok := sctp6Conn(t, o, src); ok {
			t.Fatalf("event %d made an entry", ev)
		}
	}
	short := from()
	expect6(t, o, "no chunk", short, xdpPass, short)
	if ev := events(t, o); ev[evPass] != 4 || ev[evMalformed] != 1 || ev[evForward] != 0 {
		t.Fatalf("events pass %d malformed %d forward %d", ev[evPass], ev[evMalformed], ev[evForward])
	}

	steps := []struct {
		name    string
		chunks  [][]byte
		state   conn.State
		timeout uint32
		active  int32
	}{
		{"INIT", [][]byte{eventChunks(conn.EvInit)}, conn.SCTPInit1, 4, 0},
		{"INIT again", [][]byte{eventChunks(conn.EvInit)}, conn.SCTPInit, 61, 0},
		{"COOKIE ECHO+DATA", [][]byte{eventChunks(conn.EvCookieEcho), eventChunks(conn.EvData)}, conn.SCTPEstablished, 900, 1},
		{"DATA", [][]byte{dataChunk(700)}, conn.SCTPEstablished, 900, 1},
		{"HEARTBEAT", [][]byte{chunk(chHeartbeat, []byte{0, 1, 0, 8, 1, 2, 3, 4})}, conn.SCTPEstablished, 900, 1},
		{"SACK", [][]byte{chunk(chSack, make([]byte, 12))}, conn.SCTPEstablished, 900, 1},
		{"SHUTDOWN", [][]byte{chunk(chShutdown, []byte{0, 0, 0, 1})}, conn.SCTPShutdownReceived, 61, 0},
		{"SHUTDOWN COMPLETE", [][]byte{chunk(chShutdownComplete, nil)}, conn.SCTPClosed, 61, 0},
	}
	var bytesIn uint64
	for _, s := range steps {
		in := from(s.chunks...)
		out := expect6(t, o, s.name, in, xdpRedirect, dr6Out(in))
		if !sctp6CRCOK(out, 54) {
			t.Fatalf("%s: CRC32c broken", s.name)
		}
		bytesIn += uint64(len(in) - 14)
		c, ok := sctp6Conn(t, o, src)
		if !ok || conn.State(c.State) != s.state || c.Timeout != s.timeout || c.Dest != 2 {
			t.Fatalf("%s: entry %v state %s timeout %d dest %d, want %s %d", s.name, ok, conn.State(c.State), c.Timeout, c.Dest, s.state, s.timeout)
		}
		if d := getDest(t, o, 2); d.Activeconns != s.active || d.Inactconns != 1-s.active {
			t.Fatalf("%s: %d active %d inactive", s.name, d.Activeconns, d.Inactconns)
		}
	}
	if s := sumStats(t, o.DestStats, 2); s.Conns != 1 || s.Inpkts != uint64(len(steps)) || s.Inbytes != bytesIn {
		t.Fatalf("server stats %+v, want 1 conn %d packets %d bytes", s, len(steps), bytesIn)
	}
	if s := sumStats(t, o.SvcStats, 9); s.Conns != 1 || s.Inpkts != uint64(len(steps)) {
		t.Fatalf("service stats %+v", s)
	}
	// conn_reuse_mode: a new association, scheduled anew (rr: 1).
	in := from(eventChunks(conn.EvInit))
	expect6(t, o, "reopening INIT", in, xdpRedirect, dr6Out(in))
	if c, _ := sctp6Conn(t, o, src); c.Dest != 1 || conn.State(c.State) != conn.SCTPInit1 {
		t.Fatalf("reopened: dest %d state %s", c.Dest, conn.State(c.State))
	}
	if d := getDest(t, o, 2); d.Activeconns+d.Inactconns != 0 {
		t.Fatalf("old server still counts %d+%d", d.Activeconns, d.Inactconns)
	}
	in = from(eventChunks(conn.EvCookieEcho), chunk(chAbort, nil))
	expect6(t, o, "COOKIE ECHO+ABORT", in, xdpRedirect, dr6Out(in))
	if c, _ := sctp6Conn(t, o, src); conn.State(c.State) != conn.SCTPClosed {
		t.Fatalf("after COOKIE ECHO+ABORT: %s", conn.State(c.State))
	}
}

// TUN: IPv6 in IPv6, the SCTP packet inside unchanged (CRC32c intact).
func TestSCTP6TUN(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.V6Config.Put(uint32(0), &Config6{TunSrc: words6(tunSrc6)}))
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, sctpPort), fwdTunnel))
	sctp6Service(t, o, 1)
	src := netip.AddrPortFrom(client6.Addr(), 5100)
	for _, ev := range []conn.SCTPEvent{conn.EvInit, conn.EvCookieEcho, conn.EvData} {
		in := sctp6Packet(clientMAC, vipMAC, src, vsctp6, 64, 7, eventChunks(ev))
		inner := in[14:]
		var want []byte
		want = append(want, hopMAC[:]...)
		want = append(want, dirMAC...)
		want = append(want, 0x86, 0xdd, 0x60, 0, 0, 0)
		want = binary.BigEndian.AppendUint16(want, uint16(len(inner)))
		want = append(want, 41, 64)
		s, d := tunSrc6.As16(), rs6.As16()
		want = append(want, s[:]...)
		want = append(want, d[:]...)
		want = append(want, inner...)
		out := expect6(t, o, fmt.Sprint("event ", ev), in, xdpRedirect, want)
		if !sctp6CRCOK(out, 14+40+40) {
			t.Fatalf("event %d: inner CRC32c broken", ev)
		}
	}
	if c, ok := sctp6Conn(t, o, src); !ok || conn.State(c.State) != conn.SCTPEstablished || c.Flags&connInactive != 0 {
		t.Fatalf("entry %v %+v", ok, c)
	}
}

// natSCTP6 sets up a NAT or FULLNAT IPv6 SCTP service to rs6NAT with
// replies' next hop cached.
func natSCTP6(t *testing.T, method uint8, cfg Config) *Objects {
	o := setup6(t, 1500)
	cfg.HopGen = 1
	must(t, o.Config.Put(uint32(0), conf(cfg)))
	putDest(t, o, 1, dest6(rs6NAT, method))
	sctp6Service(t, o, 1)
	var f NATSrc
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))
	return o
}

// NAT: the destination port rewritten and the CRC32c updated (the
// expected frames built from scratch with hash/crc32) over lengths
// crossing both tables' steps, both ways; the association on the INPUT
// and OUTPUT tables from INIT to SHUTDOWN COMPLETE; a corrupted packet
// stays as wrong; the server's ICMPv6 error about an SCTP packet is
// translated for the client.
func TestSCTP6NAT(t *testing.T) {
	o := natSCTP6(t, fwdMasq, Config{})
	const vtag = 0x11223344
	toServer := func(name string, ch ...[]byte) {
		t.Helper()
		in := sctp6Packet(clientMAC, vipMAC, client6, vsctp6, 64, vtag, ch...)
		want := sctp6Packet([6]byte(dirMAC), hopMAC, client6, rs6NAT, 64, vtag, ch...)
		expect6(t, o, name, in, xdpRedirect, want)
	}
	toClient := func(name string, ch ...[]byte) {
		t.Helper()
		in := sctp6Packet(hopMAC, [6]byte(dirMAC), rs6NAT, client6, 64, vtag, ch...)
		want := sctp6Packet([6]byte(dirMAC), clientMAC, vsctp6, client6, 63, vtag, ch...)
		expect6(t, o, name, in, xdpRedirect, want)
	}
	k := connKey6(unix.IPPROTO_SCTP, client6, vsctp6)
	state := func(name string, want conn.State) {
		t.Helper()
		var c Conn
		must(t, o.Conns.Lookup(&k, &c))
		active := want == conn.SCTPEstablished
		if conn.State(c.State) != want || (c.Flags&connInactive == 0) != active || c.Flags&(connNAT|connNoOutput) != connNAT {
			t.Fatalf("after %s: state %s flags %#x, want %s", name, conn.State(c.State), c.Flags, want)
		}
		if d := getDest(t, o, 1); (d.Activeconns == 1) != active || d.Activeconns+d.Inactconns != 1 {
			t.Fatalf("after %s: %d active %d inactive", name, d.Activeconns, d.Inactconns)
		}
	}
	toServer("INIT", initChunk(chInit, 7))
	state("INIT", conn.SCTPInit1)
	natConnHop(t, o, k)
	toClient("INIT ACK", initChunk(chInitAck, 8))
	state("INIT ACK", conn.SCTPCookieSent)
	toServer("COOKIE ECHO", eventChunks(conn.EvCookieEcho))
	state("COOKIE ECHO", conn.SCTPCookieReplied)
	toClient("COOKIE ACK", chunk(chCookieAck, nil))
	state("COOKIE ACK", conn.SCTPEstablished)
	lengths := []int{0, 1, 2, 3, 4, 5, 100, 239, 240, 241, 500, 1000, 1300}
	for _, n := range lengths {
		toServer(fmt.Sprint("DATA ", n), dataChunk(n))
		toClient(fmt.Sprint("reply DATA ", n), dataChunk(n), chunk(chSack, make([]byte, 12)))
	}
	in := sctp6Packet(clientMAC, vipMAC, client6, vsctp6, 64, vtag, dataChunk(10))
	in[len(in)-1] ^= 0x40
	want := sctp6Packet([6]byte(dirMAC), hopMAC, client6, rs6NAT, 64, vtag, dataChunk(10))
	want[len(want)-1] ^= 0x40
	expect6(t, o, "corrupted", in, xdpRedirect, want)
	if sctp6CRCOK(want, 54) {
		t.Fatal("the corruption went unnoticed")
	}
	// The server's ICMPv6 error about a packet it got: to the client
	// from the VIP, the quoted addresses and ports translated.
	sent := sctp6Packet([6]byte(dirMAC), hopMAC, client6, rs6NAT, 64, vtag, dataChunk(10))[14:][:48]
	orig := sctp6Packet(clientMAC, vipMAC, client6, vsctp6, 64, vtag, dataChunk(10))[14:][:48]
	icmpIn := icmp6Frame(hopMAC, [6]byte(dirMAC), rs6NAT.Addr(), client6.Addr(), 1, 4, 0, sent, 64)
	icmpWant := icmp6Frame([6]byte(dirMAC), clientMAC, vip6, client6.Addr(), 1, 4, 0, orig, 63)
	expect6(t, o, "icmpv6 from the server", icmpIn, xdpRedirect, icmpWant)

	toClient("SHUTDOWN", chunk(chShutdown, []byte{0, 0, 0, 1}))
	state("SHUTDOWN", conn.SCTPShutdownSent)
	toServer("SHUTDOWN ACK", chunk(chShutdownAck, nil))
	state("SHUTDOWN ACK", conn.SCTPClosed)
	toClient("SHUTDOWN COMPLETE", chunk(chShutdownComplete, nil))
	state("SHUTDOWN COMPLETE", conn.SCTPClosed)
	var c Conn
	must(t, o.Conns.Lookup(&k, &c))
	if c.Timeout != uint32(conn.SCTPTimeouts()[conn.SCTPClosed.KernelSCTP()]/time.Second) {
		t.Fatalf("CLOSED timeout %d", c.Timeout)
	}
	n := uint64(len(lengths))
	if s := sumStats(t, o.SvcStats, 9); s.Conns != 1 || s.Inpkts != 2+n+1+1 || s.Outpkts != 2+n+1+2 {
		t.Fatalf("stats %+v", s)
	}
}

// A NAT server's SCTP packet with no association: port unreachable back
// (nat_icmp_send), except for an ABORT (is_sctp_abort), which is the
// stack's.
func TestSCTP6NATICMPSend(t *testing.T) {
	o := natSCTP6(t, fwdMasq, Config{NatIcmpSend: 1})
	k := SvcKey{Addr: words6(rs6NAT.Addr()), Port: htons(rs6NAT.Port()), Proto: unix.IPPROTO_SCTP, Af: 6}
	must(t, o.NatServers.Put(&k, uint32(1)))
	stray := netip.AddrPortFrom(client6.Addr(), 999)
	abort := sctp6Packet(hopMAC, [6]byte(dirMAC), rs6NAT, stray, 64, 1, chunk(chAbort, nil))
	inNetNS6(t, func(int) error {
		before := events(t, o)[evNATICMPSend]
		if err := expectNS(o, "stray ABORT", abort, xdpPass, abort); err != nil {
			return err
		}
		if got := events(t, o)[evNATICMPSend]; got != before {
			return fmt.Errorf("ABORT answered")
		}
		data := sctp6Packet(hopMAC, [6]byte(dirMAC), rs6NAT, stray, 64, 1, dataChunk(20))
		act, out, err := runNS(o, data)
		if err != nil {
			return err
		}
		if act != xdpTX || events(t, o)[evNATICMPSend] != before+1 {
			return fmt.Errorf("stray DATA: action %s", actionNames[act])
		}
		if len(out) < 62 || out[20] != 58 || out[54] != 1 || out[55] != 4 || !bytes.Equal(out[62:], data[14:]) {
			return fmt.Errorf("stray DATA: not a port unreachable quoting it: %x", out)
		}
		return nil
	})
}

// FULLNAT: both ports rewritten (the one local port of the range), the
// CRC32c right both ways, the reply matched by the local address and
// port.
func TestSCTP6FullNAT(t *testing.T) {
	o := natSCTP6(t, fwdFullNAT, Config{LportMin: 5000, LportMax: 5000})
	sk := SvcKey{Addr: words6(vip6), Port: htons(sctpPort), Proto: unix.IPPROTO_SCTP, Af: 6}
	var sv Svc
	must(t, o.Services.Lookup(&sk, &sv))
	lw := words6(laddr6)
	copy(sv.Laddrs[:4], lw[:])
	sv.Nladdrs = 1
	must(t, o.Services.Put(&sk, &sv))
	lp := netip.AddrPortFrom(laddr6, 5000)
	ck := connKey6(unix.IPPROTO_SCTP, client6, vsctp6)

	in := sctp6Packet(clientMAC, vipMAC, client6, vsctp6, 64, 0, initChunk(chInit, 9))
	want := sctp6Packet([6]byte(dirMAC), hopMAC, lp, rs6NAT, 64, 0, initChunk(chInit, 9))
	expect6(t, o, "INIT", in, xdpRedirect, want)
	var c Conn
	must(t, o.Conns.Lookup(&ck, &c))
	if c.Lport != htons(5000) || c.Laddr != lw || conn.State(c.State) != conn.SCTPInit1 {
		t.Fatalf("conn %+v", c)
	}
	var owner Reply
	rk := connKey6(unix.IPPROTO_SCTP, rs6NAT, lp)
	must(t, o.Rconns.Lookup(&rk, &owner))
	if owner.Fk != ck {
		t.Fatalf("reply entry %+v", owner)
	}
	natConnHop(t, o, ck)
	for _, n := range []int{0, 77, 1000} {
		in = sctp6Packet(clientMAC, vipMAC, client6, vsctp6, 64, 5, dataChunk(n))
		want = sctp6Packet([6]byte(dirMAC), hopMAC, lp, rs6NAT, 64, 5, dataChunk(n))
		expect6(t, o, fmt.Sprint("DATA ", n), in, xdpRedirect, want)
		r := sctp6Packet(hopMAC, [6]byte(dirMAC), rs6NAT, lp, 64, 6, dataChunk(n))
		want = sctp6Packet([6]byte(dirMAC), clientMAC, vsctp6, client6, 63, 6, dataChunk(n))
		expect6(t, o, fmt.Sprint("reply ", n), r, xdpRedirect, want)
	}
	// The only local port is taken: a second client's INIT is refused.
	in = sctp6Packet(clientMAC, vipMAC, ap("[2001:db8:5::2]:40000"), vsctp6, 64, 0, initChunk(chInit, 9))
	before := events(t, o)
	expect6(t, o, "no port", in, xdpDrop, nil)
	if ev := events(t, o); ev[evNoLport] != before[evNoLport]+1 {
		t.Fatal("no_lport not counted")
	}
}

// The IPv6 data path's SCTP state machine against conn.NextSCTP over
// every (state, event, direction), as TestSCTPStatesDifferential for
// IPv4.
func TestSCTP6StatesDifferential(t *testing.T) {
	o := setup6(t, 1500)
	putDest(t, o, 1, dest6(rs6NAT, fwdRoute))
	sctp6Service(t, o, 1)
	var f NATSrc
	f.Set6(words6(rs6NAT.Addr()))
	must(t, o.NatSrcs.Put(uint32(0), &f))
	n := 0
	for dir := range 3 {
		for ev := range conn.NumSCTPEvents {
			for s := range conn.NumSCTPStates {
				cur, _ := conn.FromKernelSCTP(uint16(s))
				src := netip.AddrPortFrom(client6.Addr(), uint16(10000+n))
				key := connKey6(unix.IPPROTO_SCTP, src, vsctp6)
				c := Conn{Expires: monotonicNow() + uint64(time.Hour), Dest: 1, Svc: 9, State: uint8(cur),
					Flags: connInactive, Method: fwdRoute, Timeout: 1}
				if cur.Active() {
					c.Flags = 0
				}
				var in []byte
				switch dir {
				case 1: // OUTPUT: a NAT entry's reply
					c.Flags |= connNAT
					c.Method = fwdMasq
					c.Laddr = words6(src.Addr())
					c.Lport = htons(src.Port())
					c.Rport = htons(rs6NAT.Port())
					rk := connKey6(unix.IPPROTO_SCTP, rs6NAT, src)
					must(t, o.Rconns.Put(&rk, &Reply{Fk: key}))
					in = sctp6Packet(hopMAC, [6]byte(dirMAC), rs6NAT, src, 64, 1, eventChunks(ev))
				case 2:
					c.Flags |= connNoOutput
				}
				if in == nil {
					in = sctp6Packet(clientMAC, vipMAC, src, vsctp6, 64, 1, eventChunks(ev))
				}
				must(t, o.Conns.Put(&key, &c))
				run(t, o, in)
				var got Conn
				must(t, o.Conns.Lookup(&key, &got))
				d, inputOnly := conn.Dir(dir), false
				if dir == 2 {
					d, inputOnly = conn.Input, true
				}
				want := conn.NextSCTP(cur, d, inputOnly, ev)
				if ev == conn.EvInit && cur == conn.SCTPClosed && dir != 1 {
					want = conn.SCTPInit1 // conn_reuse_mode: a new association
				}
				wantTO := uint32(conn.SCTPTimeouts()[want.KernelSCTP()] / time.Second)
				if conn.State(got.State) != want || got.Timeout != wantTO || (got.Flags&connInactive != 0) == want.Active() {
					t.Errorf("dir %d event %d state %s: %s (timeout %d, flags %#x), want %s (%d)",
						dir, ev, cur, conn.State(got.State), got.Timeout, got.Flags, want, wantTO)
				}
				n++
			}
		}
	}
	if n != 420 {
		t.Fatalf("%d cases", n)
	}
}

// IPv6 SCTP associations are not synced, as IPv4's (sync.h,
// docs/sctp.md): an association past the sync threshold sends nothing,
// and the first record is a TCP connection's that came after it.
func TestSCTP6NotSynced(t *testing.T) {
	o := setup6(t, 1500)
	must(t, o.Config.Put(uint32(0), conf(Config{SyncMaster: 1, SyncThreshold: 3, SyncPeriod: 50})))
	putDest(t, o, 1, dest6(netip.AddrPortFrom(rs6, sctpPort), fwdRoute))
	sctp6Service(t, o, 1)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 2, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{2}})
	rd, err := ringbuf.NewReader(o.SyncEvents)
	must(t, err)
	defer rd.Close()
	for i, ev := range []conn.SCTPEvent{conn.EvInit, conn.EvCookieEcho, conn.EvData, conn.EvData, conn.EvData} {
		in := sctp6Packet(clientMAC, vipMAC, client6, vsctp6, 64, 1, eventChunks(ev))
		expect6(t, o, fmt.Sprint("SCTP packet ", i+1), in, xdpRedirect, nil)
	}
	for i, fl := range []uint8{tcpSYN, tcpACK, tcpACK} {
		p := pkt6{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp, flags: fl}
		expect6(t, o, fmt.Sprint("TCP packet ", i+1), p.build(), xdpRedirect, nil)
	}
	rd.SetDeadline(time.Now().Add(time.Second))
	r, err := rd.Read()
	must(t, err)
	var rec SyncRec
	if _, err := binary.Decode(r.RawSample, binary.LittleEndian, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Key != connKey6(unix.IPPROTO_TCP, client6, vp) {
		t.Fatalf("first record %+v, want the TCP connection's", rec.Key)
	}
}
