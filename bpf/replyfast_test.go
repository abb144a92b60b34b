package bpf

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"gvs/conn"
)

// natReplyEntry reads the reply entry of a NAT connection to natClient.
func natReplyEntry(o *Objects, proto uint8, client netip.AddrPort) (Reply, error) {
	var r Reply
	rk := connKey(proto, natRIP, client)
	err := o.Rconns.Lookup(&rk, &r)
	return r, err
}

// natReplyService loads the program with service id (proto, VIP:port)
// masquerading to natRIP, its server id too.
func natReplyService(t *testing.T, id uint32, proto uint8, port uint16) *Objects {
	o := loadObjects(t)
	putDest(t, o, id, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: id, proto: proto, addr: vip, port: port, sched: schedRR, dests: []uint32{id}})
	return o
}

// TestNATReplyFastPath: a UDP reply arms its reply entry, and the next
// ones go out from the entry alone (translated, counted, the entry's
// deadline refreshed, the connection's untouched); a connection past its
// own deadline lives while its replies keep the entry's; with both past,
// the replies are an unknown flow's.
func TestNATReplyFastPath(t *testing.T) {
	o := natReplyService(t, 2, unix.IPPROTO_UDP, 53)
	vport := netip.AddrPortFrom(vip, 53)
	key := connKey(unix.IPPROTO_UDP, natClient, vport)

	inNetNS(t, func(int) error {
		u := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, proto: unix.IPPROTO_UDP, payload: 11}
		fwd := u
		fwd.dst = natRIP
		if _, err := expect(o, "datagram", u.build(), xdpRedirect, toGW(fwd)); err != nil {
			return err
		}
		if r, err := natReplyEntry(o, unix.IPPROTO_UDP, natClient); err != nil || r.Fast != 0 || r.Fk != key {
			return fmt.Errorf("new reply entry %+v, %v: want the key, not armed", r, err)
		}
		reply := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, proto: unix.IPPROTO_UDP, payload: 30}
		back := reply
		back.src, back.ttl = vport, 63
		if _, err := expect(o, "first reply", reply.build(), xdpRedirect, toGW(back)); err != nil {
			return err
		}
		c, err := lookupConn(o, unix.IPPROTO_UDP, natClient, vport)
		if err != nil {
			return err
		}
		r, err := natReplyEntry(o, unix.IPPROTO_UDP, natClient)
		if err != nil || r.Fast != 1 || r.Svc != 2 || r.Dest != 2 || r.Timeout != c.Timeout ||
			r.Expires != c.Expires || r.Laddr != c.Laddr[0] || r.Lport != c.Lport || r.Rport != c.Rport {
			return fmt.Errorf("armed entry %+v, %v; connection %+v", r, err, c)
		}

		// Without the connection's entry the reply still goes out: the
		// fast path reads nothing of it.
		must(t, o.Conns.Delete(&key))
		before, beforeDest := sumStats(t, o.SvcStats, 2), sumStats(t, o.DestStats, 2)
		r.Expires = monotonicNow() + 5e9 // an older deadline, to see it refreshed
		must(t, o.Rconns.Put(connKey(unix.IPPROTO_UDP, natRIP, natClient), &r))
		if _, err := expect(o, "fast reply", reply.build(), xdpRedirect, toGW(back)); err != nil {
			return err
		}
		after, afterDest := sumStats(t, o.SvcStats, 2), sumStats(t, o.DestStats, 2)
		if after.Outpkts != before.Outpkts+1 || afterDest.Outpkts != beforeDest.Outpkts+1 ||
			after.Outbytes-before.Outbytes != ipTotLen(reply.build()) {
			return fmt.Errorf("counters %+v -> %+v (server %+v -> %+v)", before, after, beforeDest, afterDest)
		}
		r2, _ := natReplyEntry(o, unix.IPPROTO_UDP, natClient)
		if r2.Expires < monotonicNow()+uint64(c.Timeout-2)*1e9 {
			return fmt.Errorf("entry deadline not refreshed: %d s ahead", (int64(r2.Expires)-int64(monotonicNow()))/1e9)
		}

		// The connection, past its own deadline, lives by the entry's:
		// the client's next datagram is forwarded, not a new
		// connection, and its deadline catches up.
		c.Expires = monotonicNow() - 1e9
		must(t, o.Conns.Put(&key, &c))
		conns := sumStats(t, o.SvcStats, 2).Conns
		if _, err := expect(o, "client after the deadline", u.build(), xdpRedirect, toGW(fwd)); err != nil {
			return err
		}
		if got := sumStats(t, o.SvcStats, 2).Conns; got != conns {
			return fmt.Errorf("a new connection was made (%d -> %d)", conns, got)
		}
		c2, err := lookupConn(o, unix.IPPROTO_UDP, natClient, vport)
		if err != nil || c2.Expires <= monotonicNow() {
			return fmt.Errorf("connection after the client's datagram %+v, %v", c2, err)
		}

		// Both deadlines past: the reply is an unknown flow's.
		c2.Expires = monotonicNow() - 1e9
		must(t, o.Conns.Put(&key, &c2))
		r2, _ = natReplyEntry(o, unix.IPPROTO_UDP, natClient)
		r2.Expires = monotonicNow() - 1e9
		must(t, o.Rconns.Put(connKey(unix.IPPROTO_UDP, natRIP, natClient), &r2))
		if _, err := expect(o, "reply after both deadlines", reply.build(), xdpPass, reply.build()); err != nil {
			return err
		}
		return nil
	})
}

// TestNATReplyFastPathTCP: a TCP connection's replies are armed once it
// is ESTABLISHED; plain ACKs then take the fast path, SYN, FIN and RST
// never do, and a state change by either side disarms the entry.
func TestNATReplyFastPathTCP(t *testing.T) {
	o := natReplyService(t, 1, unix.IPPROTO_TCP, 80)
	vport := netip.AddrPortFrom(vip, 80)
	key := connKey(unix.IPPROTO_TCP, natClient, vport)

	inNetNS(t, func(int) error {
		client := func(name string, flags uint8) error {
			in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, flags: flags, payload: 10}
			want := in
			want.dst = natRIP
			_, err := expect(o, name, in.build(), xdpRedirect, toGW(want))
			return err
		}
		server := func(name string, flags uint8) error {
			in := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, flags: flags, ttl: 64, payload: 100}
			want := in
			want.src, want.ttl = vport, 63
			_, err := expect(o, name, in.build(), xdpRedirect, toGW(want))
			return err
		}
		state := func(name string, st conn.State, fast uint8) error {
			c, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			r, err := natReplyEntry(o, unix.IPPROTO_TCP, natClient)
			if err != nil || r.Fk != key {
				return fmt.Errorf("%s: reply entry %+v, %v", name, r, err)
			}
			if c.State != uint8(st) || r.Fast != fast {
				return fmt.Errorf("%s: state %v fast %d, want %v fast %d", name, conn.State(c.State), r.Fast, st, fast)
			}
			return nil
		}
		steps := []struct {
			name   string
			client bool
			flags  uint8
			st     conn.State
			fast   uint8
		}{
			{"syn", true, tcpSYN, conn.SynRecv, 0},
			{"syn-ack", false, tcpSYN | tcpACK, conn.SynRecv, 0},
			{"ack", true, tcpACK, conn.Established, 0},
			{"first data", false, tcpACK, conn.Established, 1}, // armed by the slow path
			{"fast data", false, tcpACK, conn.Established, 1},
			{"client ack", true, tcpACK, conn.Established, 1}, // no state change: stays armed
			{"server fin", false, tcpFIN | tcpACK, conn.FinWait, 0},
			{"server ack in FIN_WAIT", false, tcpACK, conn.FinWait, 0}, // not armed outside ESTABLISHED
		}
		for _, s := range steps {
			var err error
			if s.client {
				err = client(s.name, s.flags)
			} else {
				err = server(s.name, s.flags)
			}
			if err != nil {
				return err
			}
			if err := state(s.name, s.st, s.fast); err != nil {
				return err
			}
		}

		// A second connection: the client's FIN disarms it, and the
		// server's RST goes by the slow path.
		c2 := netip.AddrPortFrom(natClient.Addr(), natClient.Port()+1)
		k2 := connKey(unix.IPPROTO_TCP, c2, vport)
		for _, s := range []struct {
			client bool
			flags  uint8
		}{{true, tcpSYN}, {false, tcpSYN | tcpACK}, {true, tcpACK}, {false, tcpACK}} {
			src, dst := c2, vport
			var want pkt
			in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: src, dst: dst, flags: s.flags}
			want = in
			want.dst = natRIP
			if !s.client {
				in = pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: c2, flags: s.flags, ttl: 64}
				want = in
				want.src, want.ttl = vport, 63
			}
			if _, err := expect(o, "second", in.build(), xdpRedirect, toGW(want)); err != nil {
				return err
			}
		}
		if r, err := natReplyEntry(o, unix.IPPROTO_TCP, c2); err != nil || r.Fast != 1 || r.Fk != k2 {
			return fmt.Errorf("second connection's entry %+v, %v: want armed", r, err)
		}
		fin := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: c2, dst: vport, flags: tcpFIN | tcpACK}
		want := fin
		want.dst = natRIP
		if _, err := expect(o, "client fin", fin.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		if r, _ := natReplyEntry(o, unix.IPPROTO_TCP, c2); r.Fast != 0 {
			return fmt.Errorf("client's FIN left the entry armed")
		}
		c, _ := lookupConn(o, unix.IPPROTO_TCP, c2, vport)
		if c.State != uint8(conn.CloseWait) {
			return fmt.Errorf("after the client's FIN: %v", conn.State(c.State))
		}
		rst := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: c2, flags: tcpRST, ttl: 64}
		want = rst
		want.src, want.ttl = vport, 63
		if _, err := expect(o, "server rst", rst.build(), xdpRedirect, toGW(want)); err != nil {
			return err
		}
		if c, _ = lookupConn(o, unix.IPPROTO_TCP, c2, vport); c.State != uint8(conn.Close) {
			return fmt.Errorf("after the server's RST: %v", conn.State(c.State))
		}
		return nil
	})
}
