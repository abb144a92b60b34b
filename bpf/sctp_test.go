package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/conn"
)

// SCTP chunk types.
const (
	chData             = 0
	chInit             = 1
	chInitAck          = 2
	chSack             = 3
	chHeartbeat        = 4
	chAbort            = 6
	chShutdown         = 7
	chShutdownAck      = 8
	chError            = 9
	chCookieEcho       = 10
	chCookieAck        = 11
	chShutdownComplete = 14
)

// A chunk of each kind the state table has a row for, the first chunk of
// the packets that make each event (conn.SCTPEvent order).
var eventChunk = [conn.NumSCTPEvents]uint8{chData, chInit, chInitAck, chCookieEcho, chCookieAck,
	chShutdown, chShutdownAck, chShutdownComplete, chError, chAbort}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunk builds an SCTP chunk of type typ with body (padded to 4 bytes).
func chunk(typ uint8, body []byte) []byte {
	b := []byte{typ, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// initChunk is an INIT (RFC 9260 3.3.2): initiate tag, a_rwnd, streams,
// initial TSN.
func initChunk(typ uint8, tag uint32) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, tag)
	b = binary.BigEndian.AppendUint32(b, 106496)
	b = binary.BigEndian.AppendUint16(b, 10)
	b = binary.BigEndian.AppendUint16(b, 65535)
	b = binary.BigEndian.AppendUint32(b, 0x1000)
	return chunk(typ, b)
}

// eventChunks is a packet's chunks for event ev.
func eventChunks(ev conn.SCTPEvent) []byte {
	switch c := eventChunk[ev]; c {
	case chInit, chInitAck:
		return initChunk(c, 0x01020304)
	case chData:
		return chunk(chData, append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 51}, []byte("hello sctp")...))
	case chCookieEcho:
		return chunk(c, bytes.Repeat([]byte{0xc0}, 33))
	default:
		return chunk(c, nil)
	}
}

// sctpPacket is an Ethernet frame with an IPv4 SCTP packet: common
// header (ports, verification tag, CRC32c computed here with hash/crc32,
// independently of anything the data path does) and chunks.
func sctpPacket(srcMAC, dstMAC [6]byte, src, dst netip.AddrPort, vtag uint32, chunks ...[]byte) []byte {
	return sctpPacketTTL(srcMAC, dstMAC, src, dst, 64, vtag, chunks...)
}

// sctpPacketTTL is sctpPacket with the IP TTL given.
func sctpPacketTTL(srcMAC, dstMAC [6]byte, src, dst netip.AddrPort, ttl uint8, vtag uint32, chunks ...[]byte) []byte {
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
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, unix.IPPROTO_SCTP, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	ip = append(append(ip, s4[:]...), d4[:]...)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(append(b, ip...), l4...)
}

// sctpCRCOK reports whether an IPv4 SCTP frame's CRC32c verifies.
func sctpCRCOK(f []byte, l3 int) bool {
	l4 := append([]byte{}, f[l3+int(f[l3]&0xf)*4:]...)
	want := binary.LittleEndian.Uint32(l4[8:])
	binary.LittleEndian.PutUint32(l4[8:], 0)
	return crc32.Checksum(l4, castagnoli) == want
}

const sctpPort = 3868

// sctpService is SCTP vip:3868 (rr) with rs1 (id 1) and rs2 (id 2), DR on
// ifindex 1; rr takes rs2 first.
func sctpService(t *testing.T, o *Objects) {
	t.Helper()
	putDest(t, o, 1, drDest(rs1, sctpPort, 1, 1, 1))
	putDest(t, o, 2, drDest(rs2, sctpPort, 1, 1, 2))
	putService(t, o, svcSpec{id: 9, proto: unix.IPPROTO_SCTP, addr: vip, port: sctpPort, sched: schedRR, dests: []uint32{2, 1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	putSCTPTimeouts(t, o)
}

// putSCTPTimeouts writes the kernel's SCTP timeouts as gvsd does.
func putSCTPTimeouts(t *testing.T, o *Objects) {
	t.Helper()
	var to SCTPTimeouts
	for i, d := range conn.SCTPTimeouts() {
		to.S[i] = uint32(d / time.Second)
	}
	must(t, o.SctpTimeouts.Put(uint32(0), &to))
}

func sctpFromClient(src netip.AddrPort, ev conn.SCTPEvent) []byte {
	return sctpPacket(clientMAC, vipMAC, src, netip.AddrPortFrom(vip, sctpPort), 0x0a0b0c0d, eventChunks(ev))
}

// drOut is what DR makes of a frame: the server's MAC, the interface's,
// nothing else changed.
func drOut(in []byte, id uint32) []byte {
	want := append([]byte{}, in...)
	m := destMAC(id)
	copy(want[0:6], m[:])
	copy(want[6:12], ifMAC[:])
	return want
}

func sctpConn(t *testing.T, o *Objects, src netip.AddrPort) (Conn, bool) {
	t.Helper()
	var c Conn
	err := o.Conns.Lookup(connKey(unix.IPPROTO_SCTP, src, netip.AddrPortFrom(vip, sctpPort)), &c)
	return c, err == nil
}

// An INIT is scheduled (rr: two associations on two servers) and sent on
// by DR byte for byte, CRC32c intact; the association is INIT1, inactive,
// input-only, 4 s.
func TestSCTPInitDR(t *testing.T) {
	o := loadObjects(t)
	sctpService(t, o)
	for i, id := range []uint32{2, 1} {
		src := netip.AddrPortFrom(client.Addr(), uint16(5000+i))
		in := sctpFromClient(src, conn.EvInit)
		if !sctpCRCOK(in, 14) {
			t.Fatal("test packet's CRC32c")
		}
		act, out := run(t, o, in)
		if act != xdpTX {
			t.Fatalf("INIT %d: action %s, want TX", i, actionNames[act])
		}
		if want := drOut(in, id); !bytes.Equal(out, want) {
			t.Fatalf("INIT %d: output\n%x\nwant\n%x", i, out, want)
		}
		if !sctpCRCOK(out, 14) {
			t.Fatalf("INIT %d: CRC32c broken", i)
		}
		c, ok := sctpConn(t, o, src)
		if !ok || c.Dest != id || c.State != uint8(conn.SCTPInit1) || c.Flags&(connInactive|connNoOutput) != connInactive|connNoOutput || c.Timeout != 4 {
			t.Fatalf("INIT %d: entry %v %+v", i, ok, c)
		}
		if d := getDest(t, o, id); d.Activeconns != 0 || d.Inactconns != 1 {
			t.Fatalf("server %d: %d active %d inactive", id, d.Activeconns, d.Inactconns)
		}
	}
	if s := sumStats(t, o.SvcStats, 9); s.Conns != 2 || s.Inpkts != 2 {
		t.Fatalf("service stats %+v", s)
	}
}

// Nothing but an INIT opens an association (sctp_conn_schedule): DATA,
// ABORT, COOKIE ECHO, SHUTDOWN without one pass to the stack untouched;
// a truncated common header is malformed and passes.
func TestSCTPNoConnPasses(t *testing.T) {
	o := loadObjects(t)
	sctpService(t, o)
	for i, ev := range []conn.SCTPEvent{conn.EvData, conn.EvAbort, conn.EvCookieEcho, conn.EvShutdown} {
		src := netip.AddrPortFrom(client.Addr(), uint16(6000+i))
		in := sctpFromClient(src, ev)
		act, out := run(t, o, in)
		if act != xdpPass || !bytes.Equal(out, in) {
			t.Fatalf("event %d: action %s", ev, actionNames[act])
		}
		if _, ok := sctpConn(t, o, src); ok {
			t.Fatalf("event %d made an entry", ev)
		}
	}
	short := sctpPacket(clientMAC, vipMAC, client, netip.AddrPortFrom(vip, sctpPort), 0)
	if act, _ := run(t, o, short); act != xdpPass {
		t.Fatalf("no chunk: %s", actionNames[act])
	}
	ev := events(t, o)
	if ev[evPass] != 4 || ev[evMalformed] != 1 || ev[evForward] != 0 {
		t.Fatalf("events pass %d malformed %d forward %d", ev[evPass], ev[evMalformed], ev[evForward])
	}
	if s := sumStats(t, o.SvcStats, 9); s.Conns != 0 {
		t.Fatalf("conns %d", s.Conns)
	}
}

// An association over DR, as the director sees it (input only), through
// the kernel's INPUT-ONLY table: INIT, a retransmitted INIT, COOKIE ECHO
// (ESTABLISHED: active), DATA and HEARTBEAT, SHUTDOWN, SHUTDOWN COMPLETE
// (CLOSED), then an INIT on the closed association opens a new one on
// the next server; and an ABORT ends another.
func TestSCTPStateWalkDR(t *testing.T) {
	o := loadObjects(t)
	sctpService(t, o)
	src := netip.AddrPortFrom(client.Addr(), 7000)
	steps := []struct {
		ev      conn.SCTPEvent
		chunks  [][]byte // instead of ev's
		state   conn.State
		timeout uint32
		active  int32
	}{
		{conn.EvInit, nil, conn.SCTPInit1, 4, 0},
		{conn.EvInit, nil, conn.SCTPInit, 61, 0},
		{conn.EvCookieEcho, [][]byte{eventChunks(conn.EvCookieEcho), eventChunks(conn.EvData)}, conn.SCTPEstablished, 900, 1},
		{conn.EvData, nil, conn.SCTPEstablished, 900, 1},
		{conn.EvData, [][]byte{chunk(chHeartbeat, []byte{0, 1, 0, 8, 1, 2, 3, 4})}, conn.SCTPEstablished, 900, 1},
		{conn.EvData, [][]byte{chunk(chSack, make([]byte, 12))}, conn.SCTPEstablished, 900, 1},
		{conn.EvShutdown, nil, conn.SCTPShutdownReceived, 61, 0},
		{conn.EvShutdownComplete, nil, conn.SCTPClosed, 61, 0},
	}
	var bytesIn uint64
	for i, s := range steps {
		ch := s.chunks
		if ch == nil {
			ch = [][]byte{eventChunks(s.ev)}
		}
		in := sctpPacket(clientMAC, vipMAC, src, netip.AddrPortFrom(vip, sctpPort), 0x0a0b0c0d, ch...)
		act, out := run(t, o, in)
		if act != xdpTX || !bytes.Equal(out, drOut(in, 2)) {
			t.Fatalf("step %d: action %s, output\n%x", i, actionNames[act], out)
		}
		bytesIn += ipTotLen(in)
		c, ok := sctpConn(t, o, src)
		if !ok || conn.State(c.State) != s.state || c.Timeout != s.timeout {
			t.Fatalf("step %d: state %s timeout %d, want %s %d", i, conn.State(c.State), c.Timeout, s.state, s.timeout)
		}
		if d := getDest(t, o, 2); d.Activeconns != s.active || d.Inactconns != 1-s.active {
			t.Fatalf("step %d: %d active %d inactive", i, d.Activeconns, d.Inactconns)
		}
	}
	if s := sumStats(t, o.DestStats, 2); s.Conns != 1 || s.Inpkts != uint64(len(steps)) || s.Inbytes != bytesIn {
		t.Fatalf("server stats %+v, want 1 conn %d packets %d bytes", s, len(steps), bytesIn)
	}
	// A new INIT on the CLOSED association (conn_reuse_mode): a new one,
	// scheduled anew (rr: rs1).
	in := sctpFromClient(src, conn.EvInit)
	if act, out := run(t, o, in); act != xdpTX || !bytes.Equal(out, drOut(in, 1)) {
		t.Fatalf("reopening INIT: %s", actionNames[act])
	}
	if c, _ := sctpConn(t, o, src); c.Dest != 1 || conn.State(c.State) != conn.SCTPInit1 {
		t.Fatalf("reopened: dest %d state %s", c.Dest, conn.State(c.State))
	}
	if d := getDest(t, o, 2); d.Activeconns+d.Inactconns != 0 {
		t.Fatalf("old server still counts %d+%d", d.Activeconns, d.Inactconns)
	}
	// ABORT (after a COOKIE ECHO: the kernel looks past it) closes it.
	in = sctpPacket(clientMAC, vipMAC, src, netip.AddrPortFrom(vip, sctpPort), 0x0a0b0c0d,
		eventChunks(conn.EvCookieEcho), chunk(chAbort, nil))
	if act, _ := run(t, o, in); act != xdpTX {
		t.Fatalf("abort: %s", actionNames[act])
	}
	if c, _ := sctpConn(t, o, src); conn.State(c.State) != conn.SCTPClosed {
		t.Fatalf("after COOKIE ECHO+ABORT: %s", conn.State(c.State))
	}
}

// The data path's SCTP state machine against conn.NextSCTP (itself tested
// against the kernel's table) over every (state, event, direction): an
// entry is put in each state and a packet of each event sent, from the
// client (INPUT, or INPUT-ONLY while no reply was seen) or, for OUTPUT,
// from a server through a reply entry.
func TestSCTPStatesDifferential(t *testing.T) {
	o := loadObjects(t)
	sctpService(t, o)
	rs := netip.AddrPortFrom(rs1, sctpPort)
	natServer(t, o, rs1)
	n := 0
	for dir := range 3 {
		for ev := range conn.NumSCTPEvents {
			for k := range conn.NumSCTPStates {
				cur, _ := conn.FromKernelSCTP(uint16(k))
				src := netip.AddrPortFrom(client.Addr(), uint16(10000+n))
				key := connKey(unix.IPPROTO_SCTP, src, netip.AddrPortFrom(vip, sctpPort))
				c := Conn{Expires: monotonicNow() + uint64(time.Hour), Dest: 1, Svc: 9, State: uint8(cur),
					Flags: connInactive, Method: fwdRoute, Timeout: 1}
				if cur.Active() {
					c.Flags = 0
				}
				var in []byte
				switch dir {
				case 0: // INPUT: a reply was seen
				case 1: // OUTPUT: as a NAT entry would have it
					c.Flags |= connNAT
					c.Method = fwdMasq
					c.Laddr[0] = ip4(src.Addr())
					c.Lport = htons(src.Port())
					c.Rport = htons(sctpPort)
					rk := connKey(unix.IPPROTO_SCTP, rs, src)
					must(t, o.Rconns.Put(&rk, &Reply{Fk: key}))
					in = sctpPacket(destMAC(1), ifMAC, rs, src, 1, eventChunks(ev))
				case 2:
					c.Flags |= connNoOutput
				}
				if in == nil {
					in = sctpFromClient(src, ev)
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
					want = conn.SCTPInit1 // reopened: a new association (conn_reuse_mode)
				}
				wantTO := uint32(conn.SCTPTimeouts()[want.KernelSCTP()] / time.Second)
				if conn.State(got.State) != want || got.Timeout != wantTO || (got.Flags&connInactive != 0) == want.Active() {
					t.Errorf("dir %d event %d state %s: %s (timeout %d, flags %#x), want %s (%d)",
						dir, ev, cur, conn.State(got.State), got.Timeout, got.Flags, want, wantTO)
				}
				if dir == 1 && got.Flags&connNoOutput != 0 {
					t.Errorf("output left NOOUTPUT")
				}
				n++
			}
		}
	}
	if n != 420 {
		t.Fatalf("%d cases", n)
	}
}

// An INIT to a tunnelled server goes out IP-in-IP, the SCTP packet inside
// unchanged (CRC32c intact), and the association's DATA after it.
func TestSCTPInitTUN(t *testing.T) {
	o := loadObjects(t)
	putSCTPTimeouts(t, o)
	d := tunDest(netip.MustParseAddr("198.18.64.10"), 1)
	d.Port = htons(sctpPort)
	putDest(t, o, 1, d)
	putService(t, o, svcSpec{id: 4, proto: unix.IPPROTO_SCTP, addr: vip, port: sctpPort, sched: schedRR, dests: []uint32{1}})
	must(t, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))
	src := netip.AddrPortFrom(client.Addr(), 5100)
	inNetNS(t, func(int) error {
		for _, ev := range []conn.SCTPEvent{conn.EvInit, conn.EvCookieEcho, conn.EvData} {
			in := sctpFromClient(src, ev)
			act, out, err := runNS(o, in)
			if err != nil {
				return err
			}
			if act != xdpRedirect {
				return fmt.Errorf("event %d: action %s, want REDIRECT", ev, actionNames[act])
			}
			if err := checkTunnel(in, out); err != nil {
				return fmt.Errorf("event %d: %w", ev, err)
			}
			if !sctpCRCOK(out, 34) {
				return fmt.Errorf("event %d: inner CRC32c broken", ev)
			}
		}
		return nil
	})
	if c, ok := sctpConn(t, o, src); !ok || conn.State(c.State) != conn.SCTPEstablished || c.Flags&connInactive != 0 {
		t.Fatalf("entry %v %+v", ok, c)
	}
}

// dataChunk is a DATA chunk with n bytes of user data.
func dataChunk(n int) []byte {
	b := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 51}
	for i := range n {
		b = append(b, byte(i*7+n))
	}
	return chunk(chData, b)
}

// NAT: the destination port rewritten and the CRC32c updated (checked by
// building the expected packet from scratch with hash/crc32), for
// packets of many lengths; the replies translated back from the VIP with
// their CRC32c updated; the association on the full table: INIT ->
// INIT1, INIT ACK (output) -> COOKIE_SENT, COOKIE ECHO -> COOKIE_REPLIED,
// COOKIE ACK (output) -> ESTABLISHED (active), then the server's
// SHUTDOWN -> SHUTDOWN_SENT, the client's SHUTDOWN ACK -> CLOSED. A
// packet whose CRC32c was wrong leaves as wrong as it came; the server's
// ICMP error about an SCTP packet is translated.
func TestSCTPNAT(t *testing.T) {
	o := loadObjects(t)
	putSCTPTimeouts(t, o)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_SCTP, addr: vip, port: sctpPort, sched: schedRR, dests: []uint32{1}})
	vport := netip.AddrPortFrom(vip, sctpPort)
	const vtag = 0x11223344
	inNetNS(t, func(int) error {
		toServer := func(name string, chunks ...[]byte) error {
			in := sctpPacket(clientMAC, vipMAC, natClient, vport, vtag, chunks...)
			want := sctpPacket([6]byte(dirMAC), [6]byte(gwMAC), natClient, natRIP, vtag, chunks...)
			_, err := expect(o, name, in, xdpRedirect, want)
			return err
		}
		toClient := func(name string, chunks ...[]byte) error {
			in := sctpPacketTTL([6]byte(gwMAC), [6]byte(dirMAC), natRIP, natClient, 64, vtag, chunks...)
			want := sctpPacketTTL([6]byte(dirMAC), [6]byte(gwMAC), vport, natClient, 63, vtag, chunks...)
			_, err := expect(o, name, in, xdpRedirect, want)
			return err
		}
		state := func(want conn.State, active bool) error {
			c, err := lookupConn(o, unix.IPPROTO_SCTP, natClient, vport)
			if err != nil {
				return err
			}
			if conn.State(c.State) != want || (c.Flags&connInactive == 0) != active || c.Flags&connNoOutput != 0 {
				return fmt.Errorf("state %s flags %#x, want %s", conn.State(c.State), c.Flags, want)
			}
			return nil
		}
		steps := []struct {
			name  string
			out   bool
			ch    []byte
			state conn.State
		}{
			{"INIT", false, initChunk(chInit, 7), conn.SCTPInit1},
			{"INIT ACK", true, initChunk(chInitAck, 8), conn.SCTPCookieSent},
			{"COOKIE ECHO", false, eventChunks(conn.EvCookieEcho), conn.SCTPCookieReplied},
			{"COOKIE ACK", true, chunk(chCookieAck, nil), conn.SCTPEstablished},
		}
		for _, s := range steps {
			send := toServer
			if s.out {
				send = toClient
			}
			if err := send(s.name, s.ch); err != nil {
				return err
			}
			if err := state(s.state, s.state == conn.SCTPEstablished); err != nil {
				return fmt.Errorf("after %s: %w", s.name, err)
			}
		}
		// Every length, both ways: the update covers the whole packet.
		for _, n := range []int{0, 1, 2, 3, 4, 5, 100, 239, 240, 241, 500, 1000, 1300} {
			if err := toServer(fmt.Sprintf("DATA %d", n), dataChunk(n)); err != nil {
				return err
			}
			if err := toClient(fmt.Sprintf("reply DATA %d", n), dataChunk(n), chunk(chSack, make([]byte, 12))); err != nil {
				return err
			}
		}
		// A corrupted packet stays corrupted by as much.
		in := sctpPacket(clientMAC, vipMAC, natClient, vport, vtag, dataChunk(10))
		in[len(in)-1] ^= 0x40
		want := sctpPacket([6]byte(dirMAC), [6]byte(gwMAC), natClient, natRIP, vtag, dataChunk(10))
		want[len(want)-1] ^= 0x40
		if _, err := expect(o, "corrupted", in, xdpRedirect, want); err != nil {
			return err
		}
		if sctpCRCOK(want, 14) {
			return fmt.Errorf("the corruption went unnoticed")
		}
		// The server's ICMP error about a packet it got: to the client
		// from the VIP, the quoted header and ports translated.
		sent := sctpPacket([6]byte(dirMAC), [6]byte(gwMAC), natClient, natRIP, vtag, dataChunk(10))
		ic := icmpPkt(natRIP.Addr(), natClient.Addr(), 4, 1200, sent[14:42], 64, [6]byte(gwMAC), [6]byte(dirMAC))
		orig := sctpPacket(clientMAC, vipMAC, natClient, vport, vtag, dataChunk(10))
		wantIC := icmpPkt(vip, natClient.Addr(), 4, 1200, orig[14:42], 63, [6]byte(dirMAC), [6]byte(gwMAC))
		if _, err := expect(o, "icmp", ic, xdpRedirect, wantIC); err != nil {
			return err
		}
		if err := toClient("SHUTDOWN", chunk(chShutdown, []byte{0, 0, 0, 1})); err != nil {
			return err
		}
		if err := state(conn.SCTPShutdownSent, false); err != nil {
			return err
		}
		if err := toServer("SHUTDOWN ACK", chunk(chShutdownAck, nil)); err != nil {
			return err
		}
		return state(conn.SCTPClosed, false)
	})
	if d := getDest(t, o, 1); d.Activeconns != 0 || d.Inactconns != 1 {
		t.Fatalf("server counts %d active %d inactive", d.Activeconns, d.Inactconns)
	}
	if s := sumStats(t, o.SvcStats, 1); s.Conns != 1 || s.Inpkts != 2+13+1+1 || s.Outpkts != 2+13+1+1 {
		t.Fatalf("stats %+v", s)
	}
}

// FULLNAT: both ports rewritten (a local port from the range), the
// CRC32c right, the reply matched by the local address and port.
func TestSCTPFullNAT(t *testing.T) {
	o := loadObjects(t)
	putSCTPTimeouts(t, o)
	putDest(t, o, 1, natDest(natRIP, fwdFullNAT))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_SCTP, addr: vip, port: sctpPort, sched: schedRR, dests: []uint32{1}})
	vport := netip.AddrPortFrom(vip, sctpPort)
	inNetNS(t, func(int) error {
		for i, n := range []int{0, 77, 1000} {
			cl := netip.AddrPortFrom(natClient.Addr(), uint16(41000+i))
			in := sctpPacket(clientMAC, vipMAC, cl, vport, 0, initChunk(chInit, 9))
			if _, err := expect(o, "INIT", in, xdpRedirect, nil); err != nil {
				return err
			}
			c, err := lookupConn(o, unix.IPPROTO_SCTP, cl, vport)
			if err != nil {
				return err
			}
			local := netip.AddrPortFrom(natLIP, htons(c.Lport))
			if c.Laddr[0] != ip4(natLIP) || local.Port() < 1024 || local.Port() > 32767 || conn.State(c.State) != conn.SCTPInit1 {
				return fmt.Errorf("local %v, state %s", local, conn.State(c.State))
			}
			in = sctpPacket(clientMAC, vipMAC, cl, vport, 5, dataChunk(n))
			want := sctpPacket([6]byte(dirMAC), [6]byte(gwMAC), local, natRIP, 5, dataChunk(n))
			if _, err := expect(o, "DATA", in, xdpRedirect, want); err != nil {
				return err
			}
			r := sctpPacketTTL([6]byte(gwMAC), [6]byte(dirMAC), natRIP, local, 64, 6, dataChunk(n))
			want = sctpPacketTTL([6]byte(dirMAC), [6]byte(gwMAC), vport, cl, 63, 6, dataChunk(n))
			if _, err := expect(o, "reply", r, xdpRedirect, want); err != nil {
				return err
			}
		}
		return nil
	})
}

// The price of the CRC32c update: the data path's own time (BPF_PROG_RUN's
// duration) for a NAT client packet of an established association against
// a TCP segment of the same size on an established NAT connection. A
// measurement, not a check: GVS_MEASURE=1 go test ./bpf -run SCTPNATCost -v.
func TestSCTPNATCost(t *testing.T) {
	if os.Getenv("GVS_MEASURE") == "" {
		t.Skip("a measurement: set GVS_MEASURE=1")
	}
	o := loadObjects(t)
	putSCTPTimeouts(t, o)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_SCTP, addr: vip, port: sctpPort, sched: schedRR, dests: []uint32{1}})
	putDest(t, o, 2, natDest(natRIP, fwdMasq))
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{2}})
	inNetNS(t, func(int) error {
		const size = 1300
		sctpIn := sctpPacket(clientMAC, vipMAC, natClient, netip.AddrPortFrom(vip, sctpPort), 1, dataChunk(size-16-12))
		tcpIn := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: netip.AddrPortFrom(vip, 80), flags: tcpACK, payload: size - 20}.build()
		// Open both (SCTP: INIT; TCP: SYN).
		if _, _, err := runNS(o, sctpPacket(clientMAC, vipMAC, natClient, netip.AddrPortFrom(vip, sctpPort), 0, initChunk(chInit, 1))); err != nil {
			return err
		}
		if _, _, err := runNS(o, pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: netip.AddrPortFrom(vip, 80), flags: tcpSYN}.build()); err != nil {
			return err
		}
		measure := func(in []byte) (time.Duration, error) {
			const n = 20000
			var total time.Duration
			for range n {
				// One run per call: repeated runs would see the packet
				// as the first left it.
				_, d, err := o.XdpGvs.Benchmark(in, 1, nil)
				if err != nil {
					return 0, err
				}
				total += d
			}
			return total / n, nil
		}
		for range 2 {
			ds, err := measure(sctpIn)
			if err != nil {
				return err
			}
			dt, err := measure(tcpIn)
			if err != nil {
				return err
			}
			t.Logf("NAT, %d-byte packets of an established flow: SCTP %v, TCP %v per packet", size, ds, dt)
		}
		return nil
	})
}
