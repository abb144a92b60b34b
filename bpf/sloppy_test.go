package bpf

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

const svcSloppy = 0x2000 // GVS_SVC_F_SLOPPY

// A service with GVS_SVC_F_SLOPPY schedules a TCP packet of a flow it
// has no entry for (ECMP moved the flow from another director, or this
// one restarted without its maps) and tracks it as established; without
// the flag (and with sloppy_tcp 0) the packet passes to the stack; a RST
// never starts a connection.
func TestSloppyService(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	putService(t, o, svcSpec{id: 9, proto: unix.IPPROTO_TCP, addr: vip, port: 443, sched: schedRR,
		flags: svcSloppy, dests: []uint32{2, 1}})
	ack := func(src netip.AddrPort, port uint16, flags uint8) pkt {
		p := syn(src, port)
		p.flags = flags
		p.payload = 100
		return p
	}
	a := ap("198.18.5.1:50000")
	// No flag: an ACK without an entry passes, nothing is tracked.
	if act, _ := run(t, o, ack(a, 80, tcpACK).build()); act != xdpPass {
		t.Fatalf("ACK to a service without the flag: action %s, want PASS", actionNames[act])
	}
	var cn Conn
	k80 := connKey(unix.IPPROTO_TCP, a, netip.AddrPortFrom(vip, 80))
	if err := o.Conns.Lookup(&k80, &cn); err == nil {
		t.Fatalf("entry %+v made without the flag", cn)
	}
	// A RST never starts one, flag or not.
	if act, _ := run(t, o, ack(a, 443, tcpRST|tcpACK).build()); act != xdpPass {
		t.Fatalf("RST to a sloppy service: action %s, want PASS", actionNames[act])
	}
	// The flag: the ACK is forwarded and its flow tracked as established.
	act, out := run(t, o, ack(a, 443, tcpACK).build())
	if act != xdpTX {
		t.Fatalf("ACK to a sloppy service: action %s, want TX", actionNames[act])
	}
	d := uint32(out[5])
	k := connKey(unix.IPPROTO_TCP, a, netip.AddrPortFrom(vip, 443))
	must(t, o.Conns.Lookup(&k, &cn))
	if cn.Dest != d || cn.State != 1 /* ESTABLISHED */ {
		t.Fatalf("sloppy entry %+v, want dest %d ESTABLISHED", cn, d)
	}
	// The next packets of the flow follow the entry.
	for range 3 {
		if act, out := run(t, o, ack(a, 443, tcpACK).build()); act != xdpTX || uint32(out[5]) != d {
			t.Fatalf("next packet: action %s dest %d, want TX to %d", actionNames[act], out[5], d)
		}
	}
}
