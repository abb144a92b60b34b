package bpf

import (
	"bytes"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
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
	k := SvcKey{Proto: unix.IPPROTO_TCP, Port: htons(80), Af: 4}
	k.Addr[0] = ip4(vip)
	var s Svc
	must(t, o.Services.Lookup(&k, &s))
	s.Flags |= svcPersistent
	s.Timeout = 300
	s.Netmask = 0xffffffff
	must(t, o.Services.Put(&k, &s))
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
	k := SvcKey{Proto: unix.IPPROTO_TCP, Port: htons(80), Af: 4}
	k.Addr[0] = ip4(vip)
	var s Svc
	must(t, o.Services.Lookup(&k, &s))
	s.Flags |= svcPersistent
	s.Timeout = 300
	s.Netmask = 0xffffffff
	must(t, o.Services.Put(&k, &s))
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
