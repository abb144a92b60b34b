package bpf

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"gvs/conn"
)

// TestEvictedHandshakeRevived: a DR handshake evicted by a flood while
// its client's ACK is on the way is remembered (the evicted map), and
// the ACK makes its connection again, to the server that had its SYN,
// ESTABLISHED and active, counted as a packet but not as a second
// connection; before, the ACK passed to the director's stack, which
// holds the VIP and resets it. An RST, or a handshake of a persistent
// service, is not made again.
func TestEvictedHandshakeRevived(t *testing.T) {
	const n = 256
	o := loadSmall(t, n, 0)
	drService(t, o)
	onOneCPU(t)

	legit := ap("198.18.7.7:5555")
	act, out := run(t, o, syn(legit, 80).build())
	if act != xdpTX {
		t.Fatalf("legitimate SYN: %s", actionNames[act])
	}
	server := append([]byte{}, out[0:6]...)
	// Two tables' worth of flood: the legitimate entry is evicted.
	for i := range 2 * n {
		if act, _ := run(t, o, syn(floodSrc(i), 80).build()); act != xdpTX {
			t.Fatalf("flood SYN %d: %s", i, actionNames[act])
		}
	}
	if _, ok := connState(t, o, legit); ok {
		t.Fatal("the legitimate handshake was not evicted: the test proves nothing")
	}
	before := sumStats(t, o.SvcStats, 7)
	ack := syn(legit, 80)
	ack.flags = tcpACK
	act, out = run(t, o, ack.build())
	if act != xdpTX || !bytes.Equal(out[0:6], server) {
		t.Fatalf("ACK after eviction: %s to %x, want TX to %x (its SYN's server)", actionNames[act], out[0:6], server)
	}
	c, ok := connState(t, o, legit)
	if !ok || c.State != 1 || c.Flags&connInactive != 0 {
		t.Fatalf("revived connection present %v state %d flags %#x: want ESTABLISHED, active", ok, c.State, c.Flags)
	}
	after := sumStats(t, o.SvcStats, 7)
	if after.Conns != before.Conns || after.Inpkts != before.Inpkts+1 {
		t.Fatalf("stats before %+v after %+v: want one more packet, no more connections", before, after)
	}
	if ev := events(t, o); ev[evRevived] != 1 {
		t.Fatalf("revived %d, want 1", ev[evRevived])
	}
	recount(t, o, 1, 2)
	var k = connKey(unix.IPPROTO_TCP, legit, netip.AddrPortFrom(vip, 80))
	var e Evicted
	if o.Evicted.Lookup(&k, &e) == nil {
		t.Fatal("the record outlived its revival")
	}

	// An RST of an evicted handshake passes (the stack's, as before).
	rst := ap("198.18.7.8:5555")
	if act, _ := run(t, o, syn(rst, 80).build()); act != xdpTX {
		t.Fatal("second SYN")
	}
	for i := range 2 * n {
		run(t, o, syn(floodSrc(10000+i), 80).build())
	}
	r := syn(rst, 80)
	r.flags = tcpRST
	if act, _ := run(t, o, r.build()); act != xdpPass {
		t.Fatalf("RST after eviction: %s, want PASS", actionNames[act])
	}
}

// TestEvictedHandshakePersistentNotRevived: a persistent service's
// handshake holds a template; it is not remembered, and its ACK passes.
func TestEvictedHandshakePersistentNotRevived(t *testing.T) {
	const n = 256
	o := loadSmall(t, n, 4*n)
	drService(t, o)
	persistTCP80(t, o)
	onOneCPU(t)
	legit := ap("198.18.7.7:5555")
	if act, _ := run(t, o, syn(legit, 80).build()); act != xdpTX {
		t.Fatal("SYN")
	}
	for i := range 2 * n {
		run(t, o, syn(floodSrc(i), 80).build())
	}
	ack := syn(legit, 80)
	ack.flags = tcpACK
	if act, _ := run(t, o, ack.build()); act != xdpPass {
		t.Fatalf("ACK of a persistent service's evicted handshake: %s, want PASS", actionNames[act])
	}
}

// TestTemplateBeingRemovedNotHeld: a connection scheduled by a template
// another CPU is removing (n_control marked dead by tmpl_kill) does not
// take a hold on it: it is made uncontrolled, so its removal later
// releases nothing it never held.
func TestTemplateBeingRemovedNotHeld(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	persistTCP80(t, o)
	legit := ap("198.18.7.7:5555")
	// The first connection makes and holds the template.
	if act, _ := run(t, o, syn(legit, 80).build()); act != xdpTX {
		t.Fatal("first SYN")
	}
	tk := connKey(unix.IPPROTO_TCP, netip.AddrPortFrom(legit.Addr(), 0), netip.AddrPortFrom(vip, 80))
	var tv Template
	must(t, o.Templates.Lookup(&tk, &tv))
	if tv.N_control != 1 {
		t.Fatalf("n_control %d after one connection, want 1", tv.N_control)
	}
	c, _ := connState(t, o, legit)
	if c.Flags&connControlled == 0 {
		t.Fatal("the first connection is not controlled")
	}
	// Another CPU is removing it: n_control marked dead.
	const dead = -(1 << 30)
	tv.N_control = dead
	must(t, o.Templates.Put(&tk, &tv))
	second := ap("198.18.7.7:5556")
	if act, _ := run(t, o, syn(second, 80).build()); act != xdpTX {
		t.Fatal("second SYN")
	}
	c, ok := connState(t, o, second)
	if !ok || c.Flags&connControlled != 0 {
		t.Fatalf("second connection present %v flags %#x: want made, not controlled", ok, c.Flags)
	}
	must(t, o.Templates.Lookup(&tk, &tv))
	if tv.N_control != dead {
		t.Fatalf("n_control %d, want the dead mark %d untouched", tv.N_control, dead)
	}
}

// TestDyingEntryMovesNoCount: an entry its remover has claimed (DYING,
// conn_remove_ex) moves no server count when a packet of the flow comes
// in meanwhile: the remover undoes the counts as they were at the claim.
// Before, a handshake evicted on one CPU while its ACK moved it to active
// on another left the server one active connection too many and one
// inactive too few.
func TestDyingEntryMovesNoCount(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	legit := ap("198.18.7.7:5555")
	act, out := run(t, o, syn(legit, 80).build())
	if act != xdpTX {
		t.Fatal("SYN")
	}
	id := uint32(2)
	if m1 := destMAC(1); bytes.Equal(out[0:6], m1[:]) {
		id = 1
	}
	if d := getDest(t, o, id); d.Activeconns != 1 || d.Inactconns != 0 {
		t.Fatalf("after the SYN: active %d inactive %d, want 1 and 0 (SYN_RECV is active)", d.Activeconns, d.Inactconns)
	}
	// Another CPU's remover has claimed it: DYING.
	k := connKey(unix.IPPROTO_TCP, legit, netip.AddrPortFrom(vip, 80))
	var c Conn
	must(t, o.Conns.Lookup(&k, &c))
	const dying = 0x40
	c.Flags |= dying
	must(t, o.Conns.Put(&k, &c))
	// A FIN moves SYN_RECV to CLOSE (inactive) in the input-only table:
	// not on a dying entry.
	fin := syn(legit, 80)
	fin.flags = tcpFIN | tcpACK
	if act, _ := run(t, o, fin.build()); act != xdpTX {
		t.Fatalf("FIN: %s", actionNames[act])
	}
	if d := getDest(t, o, id); d.Activeconns != 1 || d.Inactconns != 0 {
		t.Fatalf("after a packet of the dying entry: active %d inactive %d, want 1 and 0 unchanged", d.Activeconns, d.Inactconns)
	}
	must(t, o.Conns.Lookup(&k, &c))
	if c.State != uint8(conn.SynRecv) {
		t.Fatalf("state %d: a dying entry's state moved", c.State)
	}
}

// TestTemplateTableReclaimedWithoutDaemon: with gvsd not sweeping, a
// template table full of expired templates nothing holds makes room for
// a new client (the data path walks it and removes them), where before
// every new client of a persistent service was refused (template_full)
// until gvsd returned or the same clients came back.
func TestTemplateTableReclaimedWithoutDaemon(t *testing.T) {
	o := loadSmall(t, 64, 2)
	putDest(t, o, 1, drDest(rs1, 80, 1, 1, 1))
	putDest(t, o, 2, drDest(rs2, 80, 1, 1, 2))
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR,
		flags: 1, timeout: 300, netmask: 0xffffffff, dests: []uint32{2, 1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	// Two clients came and went: their connections are gone, their
	// templates nothing holds have expired (as gvsd's sweep would leave
	// them were it running).
	for i := range 2 {
		src := floodSrc(i)
		tk := connKey(unix.IPPROTO_TCP, netip.AddrPortFrom(src.Addr(), 0), netip.AddrPortFrom(vip, 80))
		must(t, o.Templates.Put(&tk, &Template{Expires: 1, Dest: 1, Svc: 7, Timeout: 300}))
		d := getDest(t, o, 1)
		d.Persistconns++
		putDest(t, o, 1, d)
	}
	if act, _ := run(t, o, syn(floodSrc(2), 80).build()); act != xdpTX {
		t.Fatalf("new client with the table full of expired templates: %s (events %v)", actionNames[act], events(t, o))
	}
	ev := events(t, o)
	if ev[evTmplReclaimed] == 0 || ev[evTemplateFull] != 0 {
		t.Fatalf("tmpl_reclaimed %d template_full %d: want reclaimed, not full", ev[evTmplReclaimed], ev[evTemplateFull])
	}
	// The reclaimed templates' server counts went with them.
	if d := getDest(t, o, 1); d.Persistconns+getDest(t, o, 2).Persistconns != 1 {
		t.Fatalf("persistent counts %d + %d, want the new client's template only", d.Persistconns, getDest(t, o, 2).Persistconns)
	}
	// A live template that still holds a connection is not taken.
	tk := connKey(unix.IPPROTO_TCP, netip.AddrPortFrom(floodSrc(2).Addr(), 0), netip.AddrPortFrom(vip, 80))
	var tv Template
	must(t, o.Templates.Lookup(&tk, &tv))
	if tv.N_control != 1 {
		t.Fatalf("new template n_control %d", tv.N_control)
	}
}

// TestNATEvictedHandshakeRevived: a NAT handshake evicted before its
// server answered (every entry unanswered, so the oldest goes) is
// remembered with its reply tuple. The server's late SYN-ACK leaves
// translated, from the VIP (late_reply), without the connection being
// made again: before, it matched nothing and passed to the stack with
// the server's address. The client's ACK then makes the connection again
// (revived), ESTABLISHED, with its reply entry.
func TestNATEvictedHandshakeRevived(t *testing.T) {
	const n = 64
	o, vport := smallNATService(t, n)
	inNetNS(t, func(int) error {
		if err := toCPU0(); err != nil {
			return err
		}
		legit := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpSYN}
		if _, err := expect(o, "legitimate SYN", legit.build(), xdpRedirect, nil); err != nil {
			return err
		}
		// A flood nobody answers: the oldest unanswered go.
		for i := range 2 * n {
			syn := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: floodSrc(i), dst: vport, flags: tcpSYN}
			if act, _, err := runNS(o, syn.build()); err != nil || act != xdpRedirect {
				return fmt.Errorf("flood SYN %d: %s %v", i, actionNames[act], err)
			}
		}
		if _, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport); err == nil {
			return fmt.Errorf("the legitimate handshake was not evicted: the test proves nothing")
		}
		before := sumStats(t, o.SvcStats, 1)
		sa := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: tcpSYN | tcpACK, df: true, ttl: 64}
		want := sa
		want.src, want.ttl = vport, 63
		if _, err := expect(o, "late SYN-ACK", sa.build(), xdpRedirect, toGW(want)); err != nil {
			return fmt.Errorf("%w (events %v)", err, events(t, o))
		}
		if _, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport); err == nil {
			return fmt.Errorf("the late SYN-ACK made the connection: a flood's would take room")
		}
		ack := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: tcpACK, payload: 10}
		wantAck := ack
		wantAck.dst = natRIP
		if _, err := expect(o, "client ACK", ack.build(), xdpRedirect, toGW(wantAck)); err != nil {
			return err
		}
		c, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport)
		if err != nil || c.State != uint8(conn.Established) {
			return fmt.Errorf("revived connection state %d, %v: want ESTABLISHED", c.State, err)
		}
		after := sumStats(t, o.SvcStats, 1)
		if after.Conns != before.Conns || after.Outpkts != before.Outpkts+1 || after.Inpkts != before.Inpkts+1 {
			return fmt.Errorf("stats before %+v after %+v: want one more packet each way, no more connections", before, after)
		}
		if ev := events(t, o); ev[evRevived] != 1 || ev[evLateReply] != 1 {
			return fmt.Errorf("revived %d, late_reply %d: want 1 and 1", ev[evRevived], ev[evLateReply])
		}
		// The connection's reply entry is back: the server's next
		// packet is an ordinary reply.
		data := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: tcpACK, ttl: 64, payload: 5}
		wantData := data
		wantData.src, wantData.ttl = vport, 63
		if _, err := expect(o, "server data", data.build(), xdpRedirect, toGW(wantData)); err != nil {
			return err
		}
		return nil
	})
	recount(t, o, 1)
}

// persistTCP80 makes drService's TCP vip:80 persistent (300 s, /32).
func persistTCP80(t *testing.T, o *Objects) {
	t.Helper()
	k := SvcKey{Proto: unix.IPPROTO_TCP, Port: htons(80), Af: 4}
	k.Addr[0] = ip4(vip)
	var s Svc
	must(t, o.Services.Lookup(&k, &s))
	s.Flags |= svcPersistent
	s.Timeout = 300
	s.Netmask = 0xffffffff
	must(t, o.Services.Put(&k, &s))
}
