package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// fragment splits an untagged IPv4 frame after first bytes of its IP
// payload (a multiple of 8): two frames, MF on the first, each with its
// own header checksum, as a sender's IP layer would.
func fragment(frame []byte, first int) (a, b []byte) {
	ip := frame[14:]
	hl := int(ip[0]&0xf) * 4
	payload := ip[hl:]
	mk := func(part []byte, off int, more bool) []byte {
		f := append([]byte{}, frame[:14+hl]...)
		h := f[14:]
		binary.BigEndian.PutUint16(h[2:], uint16(hl+len(part)))
		fo := uint16(off / 8)
		if more {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		binary.BigEndian.PutUint16(h[10:], 0)
		binary.BigEndian.PutUint16(h[10:], checksum(h[:hl]))
		return append(f, part...)
	}
	return mk(payload[:first], 0, true), mk(payload[first:], first, false)
}

// TestFragmentsFollowFirst: a fragmented UDP datagram to a DR service is
// balanced by its first fragment, and its later fragment goes to the
// same server, unchanged above L2.
func TestFragmentsFollowFirst(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	for i := range 4 {
		p := syn(netip.AddrPortFrom(client.Addr(), uint16(7000+i)), 80)
		p.proto, p.payload, p.df = unix.IPPROTO_UDP, 1200, false
		a, b := fragment(p.build(), 600)
		actA, outA := run(t, o, a)
		actB, outB := run(t, o, b)
		if actA != xdpTX || actB != xdpTX {
			t.Fatalf("datagram %d: fragments %s, %s; want both sent", i, actionNames[actA], actionNames[actB])
		}
		if !bytes.Equal(outA[:6], outB[:6]) || !bytes.Equal(outA[14:], a[14:]) || !bytes.Equal(outB[14:], b[14:]) {
			t.Fatalf("datagram %d: fragments to %x and %x", i, outA[:6], outB[:6])
		}
	}
	if ev := events(t, o); ev[evFrag] != 4 {
		t.Fatalf("frag events %d, want 4", ev[evFrag])
	}
}

// TestNATFragmentedReply: a NAT server's fragmented UDP reply leaves
// translated, every fragment: the first with its ports and checksum, the
// later one's addresses; a later fragment of a reply whose first was
// never seen is dropped, never sent on with the server's address.
func TestNATFragmentedReply(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_UDP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	vport := netip.AddrPortFrom(vip, 80)

	inNetNS(t, func(int) error {
		req := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: natClient, dst: vport, proto: unix.IPPROTO_UDP, payload: 10}
		if _, err := expect(o, "request", req.build(), xdpRedirect, nil); err != nil {
			return err
		}
		reply := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: natClient, proto: unix.IPPROTO_UDP, payload: 1400}
		a, b := fragment(reply.build(), 800)
		// What the client must get: the reply from the VIP, fragmented
		// the same way, TTL one less.
		want := reply
		want.src, want.ttl = vport, 63
		wa, wb := fragment(toGW(want), 800)
		outA, err := expect(o, "first fragment", a, xdpRedirect, wa)
		if err != nil {
			return err
		}
		outB, err := expect(o, "later fragment", b, xdpRedirect, wb)
		if err != nil {
			return err
		}
		// Reassembled, the datagram's checksums hold.
		whole := append(append([]byte{}, outA...), outB[34:]...)
		binary.BigEndian.PutUint16(whole[16:], uint16(len(whole)-14))
		binary.BigEndian.PutUint16(whole[20:], 0)
		binary.BigEndian.PutUint16(whole[24:], 0)
		binary.BigEndian.PutUint16(whole[24:], checksum(whole[14:34]))
		if err := verifyChecksums(whole); err != nil {
			return fmt.Errorf("reassembled reply: %w", err)
		}
		// The same datagram's tail again, with another IP id: its first
		// was never seen, so it cannot be translated.
		binary.BigEndian.PutUint16(b[18:], 0x4321)
		binary.BigEndian.PutUint16(b[24:], 0)
		binary.BigEndian.PutUint16(b[24:], checksum(b[14:34]))
		if _, err := expect(o, "orphan fragment", b, xdpDrop, nil); err != nil {
			return err
		}
		if ev := events(t, o); ev[evFragUnknown] != 1 || ev[evFrag] != 1 {
			return fmt.Errorf("frag %d frag_unknown %d", ev[evFrag], ev[evFragUnknown])
		}
		return nil
	})
}

// TestOnePacketFragments: a one-packet (-o) UDP service schedules each
// datagram on its own; one that comes in fragments keeps a short entry
// (ONEPKT) so its later fragment goes where its first went, and the
// flow's next datagram is scheduled again (rr moves on) and removes it.
// Before, the later fragment found nothing and passed to the stack.
func TestOnePacketFragments(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, drDest(rs1, 80, 1, 1, 1))
	putDest(t, o, 2, drDest(rs2, 80, 1, 1, 2))
	const onePacket = 0x4
	putService(t, o, svcSpec{id: 8, proto: unix.IPPROTO_UDP, addr: vip, port: 80, sched: schedRR, flags: onePacket, dests: []uint32{2, 1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	src := netip.AddrPortFrom(client.Addr(), 7000)
	p := syn(src, 80)
	p.proto, p.payload, p.df = unix.IPPROTO_UDP, 1200, false
	a, b := fragment(p.build(), 600)
	actA, outA := run(t, o, a)
	actB, outB := run(t, o, b)
	if actA != xdpTX || actB != xdpTX || !bytes.Equal(outA[:6], outB[:6]) {
		t.Fatalf("fragments %s to %x, %s to %x: want both to one server", actionNames[actA], outA[:6], actionNames[actB], outB[:6])
	}
	k := connKey(unix.IPPROTO_UDP, src, netip.AddrPortFrom(vip, 80))
	var c Conn
	must(t, o.Conns.Lookup(&k, &c))
	if c.Flags&0x80 == 0 || c.Timeout != 2 {
		t.Fatalf("entry %+v: want ONEPKT, 2 s", c)
	}
	// The flow's next datagram, whole: scheduled again (the other server).
	p.payload = 100
	act, out := run(t, o, p.build())
	if act != xdpTX || bytes.Equal(out[:6], outA[:6]) {
		t.Fatalf("next datagram %s to %x: want rr's next server, not %x", actionNames[act], out[:6], outA[:6])
	}
	if o.Conns.Lookup(&k, &c) == nil {
		t.Fatalf("entry %+v left after the next datagram", c)
	}
	if s := sumStats(t, o.SvcStats, 8); s.Conns != 2 || s.Inpkts != 3 {
		t.Fatalf("stats %+v: want 2 connections (datagrams), 3 packets", s)
	}
	recount(t, o, 1, 2)
}
