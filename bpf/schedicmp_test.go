package bpf

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"gvs/conn"
)

// TestScheduleICMPDR: schedule_icmp (ip_vs_in_icmp). An ICMP error about
// a reply no connection knows (a DR server's reply whose connection this
// director never saw: another director made it, or it expired) passes to
// the stack by default; with schedule_icmp 1 the quote turned around is
// scheduled like a client's packet to the service: a connection in state
// NONE, inactive, for 3 s, and the error goes to its server unchanged
// above L2. The client's next packets follow that connection.
func TestScheduleICMPDR(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	router := netip.MustParseAddr("198.18.5.254")
	reply := pkt{src: netip.AddrPortFrom(vip, 80), dst: client, flags: tcpACK, payload: 1400}
	ic := icmpPkt(router, vip, 4, 1280, quote(reply), 60, clientMAC, vipMAC)
	rs2MAC := destMAC(2)

	if act, out := run(t, o, ic); act != xdpPass || !bytes.Equal(out, ic) {
		t.Fatalf("schedule_icmp 0: %s, want PASS untouched", actionNames[act])
	}
	if n := countConns(t, o); n != 0 {
		t.Fatalf("schedule_icmp 0 made %d connections", n)
	}

	must(t, o.Config.Put(uint32(0), conf(Config{ScheduleIcmp: 1})))
	act, out := run(t, o, ic)
	if act != xdpTX {
		t.Fatalf("schedule_icmp 1: %s, want TX", actionNames[act])
	}
	// rr from the head of [2, 1]: rs2.
	if !bytes.Equal(out[0:6], rs2MAC[:]) || !bytes.Equal(out[6:12], ifMAC[:]) || !bytes.Equal(out[12:], ic[12:]) {
		t.Fatalf("icmp forwarded as\n%x\nwant to %x from %x, unchanged above L2:\n%x", out, destMAC(2), ifMAC, ic)
	}
	c, err := lookupConn(o, unix.IPPROTO_TCP, client, netip.AddrPortFrom(vip, 80))
	if err != nil {
		t.Fatalf("no connection: %v", err)
	}
	if c.Dest != 2 || c.State != uint8(conn.None) || c.Flags&connInactive == 0 || c.Timeout != 3 {
		t.Fatalf("connection %+v: want dest 2, state NONE, inactive, timeout 3", c)
	}
	if d := getDest(t, o, 2); d.Activeconns != 0 || d.Inactconns != 1 {
		t.Fatalf("rs2 counts active %d inactive %d, want 0 and 1", d.Activeconns, d.Inactconns)
	}
	// The same error again, and then a client's segment: the connection
	// made, not a second choice (rr would say rs1).
	if act, out := run(t, o, ic); act != xdpTX || !bytes.Equal(out[0:6], rs2MAC[:]) {
		t.Fatalf("second icmp: %s to %x", actionNames[act], out[0:6])
	}
	seg := syn(client, 80)
	seg.flags = tcpACK
	if act, out := run(t, o, seg.build()); act != xdpTX || !bytes.Equal(out[0:6], rs2MAC[:]) {
		t.Fatalf("client segment: %s to %x, want rs2", actionNames[act], out[0:6])
	}
	s := sumStats(t, o.SvcStats, 7)
	if s.Conns != 1 || s.Inpkts != 3 {
		t.Fatalf("service stats %+v: want 1 connection, 3 packets in", s)
	}
	if ev := events(t, o); ev[evICMP] != 2 {
		t.Fatalf("events %v", ev)
	}
}

// TestScheduleICMPNoServer: with no server to schedule, the error is
// dropped and nothing answers it (never an error about an error), and no
// connection is left.
func TestScheduleICMPNoServer(t *testing.T) {
	o := loadObjects(t)
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR})
	must(t, o.Config.Put(uint32(0), conf(Config{ScheduleIcmp: 1})))
	reply := pkt{src: netip.AddrPortFrom(vip, 80), dst: client, flags: tcpACK}
	ic := icmpPkt(netip.MustParseAddr("198.18.5.254"), vip, 3, 0, quote(reply), 60, clientMAC, vipMAC)
	if act, _ := run(t, o, ic); act != xdpDrop {
		t.Fatalf("icmp with no server: %s, want DROP", actionNames[act])
	}
	if n := countConns(t, o); n != 0 {
		t.Fatalf("%d connections left", n)
	}
	if ev := events(t, o); ev[evNoDest] != 1 {
		t.Fatalf("events %v", ev)
	}
}

// TestScheduleICMPNAT: for a NAT server the scheduled error is translated
// as the connection's packets are: to the server, quote from its address
// and port.
func TestScheduleICMPNAT(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 2, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip, port: 53, sched: schedRR, dests: []uint32{2}})
	must(t, o.Config.Put(uint32(0), conf(Config{ScheduleIcmp: 1})))
	inNetNS(t, func(int) error {
		reply := pkt{src: netip.AddrPortFrom(vip, 53), dst: natClient, proto: unix.IPPROTO_UDP, payload: 5}
		ic := icmpPkt(netip.MustParseAddr("198.18.64.1"), vip, 4, 1300, quote(reply), 64, clientMAC, vipMAC)
		seen := pkt{src: natRIP, dst: natClient, proto: unix.IPPROTO_UDP, payload: 5}
		want := icmpPkt(netip.MustParseAddr("198.18.64.1"), natRIP.Addr(), 4, 1300, translatedQuote(seen, reply), 64, [6]byte(dirMAC), [6]byte(gwMAC))
		if _, err := expect(o, "icmp from the client side", ic, xdpRedirect, want); err != nil {
			return err
		}
		c, err := lookupConn(o, unix.IPPROTO_UDP, natClient, netip.AddrPortFrom(vip, 53))
		if err != nil {
			return fmt.Errorf("no connection: %w", err)
		}
		if c.Dest != 2 || c.Timeout != 3 || c.Flags&connNAT == 0 {
			return fmt.Errorf("connection %+v", c)
		}
		return nil
	})
	if s := sumStats(t, o.DestStats, 2); s.Conns != 1 || s.Inpkts != 1 {
		t.Fatalf("server stats %+v", s)
	}
}

func countConns(t *testing.T, o *Objects) int {
	t.Helper()
	var k ConnKey
	var v Conn
	n := 0
	it := o.Conns.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	must(t, it.Err())
	return n
}

// TestScheduleICMPv6: schedule_icmp for IPv6 (ip_vs_in_icmp_v6): a
// destination unreachable about a DR reply no connection knows goes to
// the server the scheduler picks, untouched above L2, and leaves a
// connection of 3 s in state NONE; by default it passes.
func TestScheduleICMPv6(t *testing.T) {
	o := setup6(t, 1500)
	vp := netip.AddrPortFrom(vip6, 80)
	putDest(t, o, 2, dest6(netip.AddrPortFrom(rs6, 80), fwdRoute))
	putService6(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{2}})
	du := icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 1, 4, 0,
		(pkt6{src: vp, dst: client6, flags: tcpACK}).build()[14:][:48], 64)
	expect6(t, o, "schedule_icmp 0", du, xdpPass, du)

	must(t, o.Config.Put(uint32(0), conf(Config{ScheduleIcmp: 1})))
	fw := append([]byte{}, du...)
	copy(fw[0:6], hopMAC[:])
	copy(fw[6:12], dirMAC)
	expect6(t, o, "schedule_icmp 1", du, xdpRedirect, fw)
	var c Conn
	k := connKey6(unix.IPPROTO_TCP, client6, vp)
	must(t, o.Conns.Lookup(&k, &c))
	if c.Dest != 2 || c.State != uint8(conn.None) || c.Flags&connInactive == 0 || c.Timeout != 3 {
		t.Fatalf("connection %+v: want dest 2, state NONE, inactive, timeout 3", c)
	}
	if s := sumStats(t, o.SvcStats, 2); s.Conns != 1 || s.Inpkts != 1 {
		t.Fatalf("service stats %+v", s)
	}
	// A second error follows the connection: counted once more, no new
	// connection.
	expect6(t, o, "again", du, xdpRedirect, fw)
	if s := sumStats(t, o.SvcStats, 2); s.Conns != 1 || s.Inpkts != 2 {
		t.Fatalf("service stats after the second error %+v", s)
	}
}
