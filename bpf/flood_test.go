package bpf

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// loadSmall loads the data path with a connection table of n entries and
// a template table of tmpls, its conn_ring configured as gvsd does.
func loadSmall(t *testing.T, n, tmpls uint32) *Objects {
	t.Helper()
	o := loadObjects(t) // skips without root; its timeouts are reused
	var to Timeouts
	must(t, o.Timeouts.Lookup(uint32(0), &to))
	o.Close()
	spec, err := LoadSpec()
	must(t, err)
	SizeConns(spec, n)
	if tmpls != 0 {
		spec.Maps["templates"].MaxEntries = tmpls
	}
	var s Objects
	must(t, spec.LoadAndAssign(&s, nil))
	t.Cleanup(func() { s.Close() })
	must(t, s.Timeouts.Put(uint32(0), &to))
	cpus, err := ebpf.PossibleCPU()
	must(t, err)
	cfg := conf(Config{})
	cfg.SetRing(s.ConnRing.MaxEntries(), uint32(cpus))
	must(t, s.Config.Put(uint32(0), cfg))
	return &s
}

// onOneCPU keeps the test's packets on one CPU (BPF_PROG_RUN runs on the
// caller's), so they share one part of conn_ring and its order.
func onOneCPU(t *testing.T) { onCPU(t, 0) }

// onCPU moves the test's thread to CPU cpu (and back to all at the end).
func onCPU(t *testing.T, cpu int) {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	var set unix.CPUSet
	set.Set(cpu)
	must(t, unix.SchedSetaffinity(0, &set))
	t.Cleanup(func() {
		var all unix.CPUSet
		for i := range runtime.NumCPU() {
			all.Set(i)
		}
		unix.SchedSetaffinity(0, &all)
	})
}

// floodSrc is the i-th spoofed source.
func floodSrc(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(1024+i%50000))
}

// recount checks each server's active and inactive counts against the
// entries of the table, as gvsd's sweep would leave them.
func recount(t *testing.T, o *Objects, ids ...uint32) (active, inactive map[uint32]int32) {
	t.Helper()
	active, inactive = map[uint32]int32{}, map[uint32]int32{}
	var k ConnKey
	var c Conn
	it := o.Conns.Iterate()
	for it.Next(&k, &c) {
		if c.Flags&connInactive != 0 {
			inactive[c.Dest]++
		} else {
			active[c.Dest]++
		}
	}
	must(t, it.Err())
	for _, id := range ids {
		d := getDest(t, o, id)
		if d.Activeconns != active[id] || d.Inactconns != inactive[id] {
			t.Fatalf("dest %d counts active %d inactive %d, the table has %d and %d",
				id, d.Activeconns, d.Inactconns, active[id], inactive[id])
		}
	}
	return active, inactive
}

func establish(t *testing.T, o *Objects, src netip.AddrPort) {
	t.Helper()
	p := syn(src, 80)
	if act, _ := run(t, o, p.build()); act != xdpTX {
		t.Fatalf("SYN from %v: %s", src, actionNames[act])
	}
	p.flags = tcpACK
	if act, _ := run(t, o, p.build()); act != xdpTX {
		t.Fatalf("ACK from %v: %s", src, actionNames[act])
	}
}

func connState(t *testing.T, o *Objects, src netip.AddrPort) (Conn, bool) {
	t.Helper()
	var c Conn
	k := connKey(unix.IPPROTO_TCP, src, netip.AddrPortFrom(vip, 80))
	return c, o.Conns.Lookup(&k, &c) == nil
}

// TestSYNFloodEvictsHalfOpen: a table full of half-open entries makes
// room for new connections by evicting its oldest half-open ones, never
// an established one; a handshake that completes soon after its SYN
// survives the flood; the servers' counts stay equal to the table's.
func TestSYNFloodEvictsHalfOpen(t *testing.T) {
	const n = 256
	o := loadSmall(t, n, 0)
	drService(t, o)
	onOneCPU(t)

	var est []netip.AddrPort
	for i := range 20 {
		src := netip.AddrPortFrom(netip.MustParseAddr("198.18.6.1"), uint16(2000+i))
		establish(t, o, src)
		est = append(est, src)
	}
	// A flood of 8 tables' worth of spoofed SYNs: every one forwarded.
	legit := ap("198.18.7.7:5555")
	for i := range 8 * n {
		if i == 6*n {
			if act, _ := run(t, o, syn(legit, 80).build()); act != xdpTX {
				t.Fatalf("legitimate SYN under flood: %s", actionNames[act])
			}
		}
		if i == 6*n+n/4 { // its ACK, a quarter of a table later
			p := syn(legit, 80)
			p.flags = tcpACK
			if act, _ := run(t, o, p.build()); act != xdpTX {
				t.Fatalf("legitimate ACK under flood: %s", actionNames[act])
			}
		}
		if act, _ := run(t, o, syn(floodSrc(i), 80).build()); act != xdpTX {
			t.Fatalf("flood SYN %d: %s (events %v)", i, actionNames[act], events(t, o))
		}
	}
	ev := events(t, o)
	if ev[evEvicted] == 0 || ev[evConnTableFull] != 0 {
		t.Fatalf("evicted %d, table full %d: want evictions and no refusal", ev[evEvicted], ev[evConnTableFull])
	}
	for _, src := range append(est, legit) {
		c, ok := connState(t, o, src)
		if !ok || c.State != 1 {
			t.Fatalf("established connection from %v: present %v, state %d", src, ok, c.State)
		}
	}
	active, _ := recount(t, o, 1, 2)
	// Under pressure a SYN_RECV counts as inactive (secure_tcp): only the
	// 21 established connections are active.
	if active[1]+active[2] != 21 {
		t.Fatalf("active %v, want the 21 established connections only", active)
	}
}

// TestFullOfEstablished: when every entry is an established connection
// a new one is refused before the scheduler runs: dropped and counted,
// with no change to the rr position, the counters or the templates.
func TestFullOfEstablished(t *testing.T) {
	const n = 64
	o := loadSmall(t, n, 0)
	drService(t, o)
	for i := 0; ; i++ {
		src := netip.AddrPortFrom(netip.MustParseAddr("198.18.6.1"), uint16(2000+i))
		p := syn(src, 80)
		act, _ := run(t, o, p.build())
		if act == xdpDrop {
			break
		}
		if act != xdpTX || i > 2*n {
			t.Fatalf("SYN %d: %s", i, actionNames[act])
		}
		p.flags = tcpACK
		run(t, o, p.build())
	}
	var st SchedState
	must(t, o.SchedState.Lookup(uint32(7), &st))
	before := [2]Stats{sumStats(t, o.DestStats, 1), sumStats(t, o.DestStats, 2)}
	ev0 := events(t, o)
	for i := range 10 {
		if act, _ := run(t, o, syn(floodSrc(i), 80).build()); act != xdpDrop {
			t.Fatalf("SYN into a table of established connections: %s", actionNames[act])
		}
	}
	ev := events(t, o)
	if ev[evConnTableFull]-ev0[evConnTableFull] != 10 || ev[evEvicted] != 0 {
		t.Fatalf("table full %d, evicted %d: want 10 refusals, no eviction", ev[evConnTableFull]-ev0[evConnTableFull], ev[evEvicted])
	}
	var st2 SchedState
	must(t, o.SchedState.Lookup(uint32(7), &st2))
	if st2 != st {
		t.Fatalf("refused SYNs moved rr: %+v -> %+v", st, st2)
	}
	if after := [2]Stats{sumStats(t, o.DestStats, 1), sumStats(t, o.DestStats, 2)}; after != before {
		t.Fatalf("refused SYNs changed the counters: %+v -> %+v", before, after)
	}
	recount(t, o, 1, 2)
}

// TestReclaimWithoutDaemon: with nobody sweeping (gvsd dead), a table of
// expired entries gives them up to new connections, and the servers'
// counts come down with them.
func TestReclaimWithoutDaemon(t *testing.T) {
	const n = 128
	o := loadSmall(t, n, 0)
	drService(t, o)
	// The entries come in on one CPU, the new flows on another: the
	// table is shared, its index in parts per CPU.
	onCPU(t, 0)
	for i := range n {
		establish(t, o, netip.AddrPortFrom(netip.MustParseAddr("198.18.6.1"), uint16(2000+i)))
	}
	// Time passes: every entry expires (as if their timers had fired
	// with no sweep).
	var keys []ConnKey
	var k ConnKey
	var c Conn
	for it := o.Conns.Iterate(); it.Next(&k, &c); {
		keys = append(keys, k)
	}
	for _, k := range keys {
		must(t, o.Conns.Lookup(&k, &c))
		c.Expires = 1
		must(t, o.Conns.Put(&k, &c))
	}
	if runtime.NumCPU() > 1 {
		onCPU(t, 1)
	}
	for i := range 2 * n {
		if act, _ := run(t, o, syn(floodSrc(i), 80).build()); act != xdpTX {
			t.Fatalf("new connection %d into a table of expired entries: %s", i, actionNames[act])
		}
	}
	ev := events(t, o)
	if ev[evReclaimed] < n || ev[evConnTableFull] != 0 {
		t.Fatalf("reclaimed %d table full %d: want every expired entry reclaimed", ev[evReclaimed], ev[evConnTableFull])
	}
	active, inactive := recount(t, o, 1, 2)
	if active[1]+active[2]+inactive[1]+inactive[2] > n {
		t.Fatalf("counts %v %v exceed the table", active, inactive)
	}
}

// TestTemplateFullBeforeScheduling: a persistent service whose template
// table is full refuses a new client before scheduling: no rr move, no
// connection left behind.
func TestTemplateFullBeforeScheduling(t *testing.T) {
	o := loadSmall(t, 64, 2)
	putDest(t, o, 1, drDest(rs1, 80, 1, 1, 1))
	putDest(t, o, 2, drDest(rs2, 80, 1, 1, 2))
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR,
		flags: 1, timeout: 300, netmask: 0xffffffff, dests: []uint32{2, 1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	for i := range 2 {
		if act, _ := run(t, o, syn(floodSrc(i), 80).build()); act != xdpTX {
			t.Fatalf("client %d: %s", i, actionNames[act])
		}
	}
	var st SchedState
	must(t, o.SchedState.Lookup(uint32(7), &st))
	if act, _ := run(t, o, syn(floodSrc(2), 80).build()); act != xdpDrop {
		t.Fatalf("third client with the template table full: %s", actionNames[act])
	}
	var st2 SchedState
	must(t, o.SchedState.Lookup(uint32(7), &st2))
	if st != st2 {
		t.Fatalf("refused client moved rr: %+v -> %+v", st, st2)
	}
	if _, ok := connState(t, o, floodSrc(2)); ok {
		t.Fatal("refused client left a connection entry")
	}
	if ev := events(t, o); ev[evTemplateFull] != 1 {
		t.Fatalf("template_full %d, want 1", ev[evTemplateFull])
	}
	recount(t, o, 1, 2)
}

// TestMethodKeptOnEdit: a connection keeps the method it was made with
// (IPVS's cp->flags): a DR connection whose server becomes NAT goes on
// being routed, unchanged, to port 80 (not to the NAT port).
func TestMethodKeptOnEdit(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	p := syn(client, 80)
	in := p.build()
	if act, _ := run(t, o, in); act != xdpTX {
		t.Fatalf("SYN: %s", actionNames[act])
	}
	c, _ := connState(t, o, client)
	d := getDest(t, o, c.Dest)
	d.Method = fwdMasq
	d.Port = htons(8080)
	putDest(t, o, c.Dest, d)
	p.flags = tcpACK
	in = p.build()
	act, out := run(t, o, in)
	if act != xdpTX {
		t.Fatalf("ACK after the edit: %s", actionNames[act])
	}
	if string(out[14:]) != string(in[14:]) {
		t.Fatalf("the DR connection was rewritten after its server became NAT:\n%x\n%x", out[14:], in[14:])
	}
}

// TestOtherFamilyServer: a server whose address is not IPv4 is never
// sent IPv4 packets (gvsd refuses it; the data path checks again).
func TestOtherFamilyServer(t *testing.T) {
	o := loadObjects(t)
	d := drDest(rs1, 80, 1, 1, 1)
	d.Af = 6
	putDest(t, o, 1, d)
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	if act, _ := run(t, o, syn(client, 80).build()); act != xdpPass {
		t.Fatalf("SYN for an IPv6 server: %s, want PASS", actionNames[act])
	}
	ev := events(t, o)
	if ev[evFamily] != 1 || ev[evForward] != 0 {
		t.Fatalf("family %d forward %d", ev[evFamily], ev[evForward])
	}
	if _, ok := connState(t, o, client); ok {
		t.Fatal("a connection was left for the refused server")
	}
}

// TestUnknownInterface: a DR server reached through an interface gvsd
// wrote no MAC for is not sent frames with a zero source MAC: passed,
// not counted as forwarded.
func TestUnknownInterface(t *testing.T) {
	o := loadObjects(t)
	putDest(t, o, 1, drDest(rs1, 80, 1, 5, 1)) // ifindex 5: no ifmacs entry
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	if act, _ := run(t, o, syn(client, 80).build()); act != xdpPass {
		t.Fatalf("SYN via an unknown interface: %s, want PASS", actionNames[act])
	}
	if ev := events(t, o); ev[evForward] != 0 || ev[evNoRoute] != 1 {
		t.Fatalf("forward %d no_route %d", ev[evForward], ev[evNoRoute])
	}
}

func TestEventNames(t *testing.T) {
	if len(EventNames) != evMax {
		t.Fatalf("%d event names for %d events", len(EventNames), evMax)
	}
}

// TestAllowList: a service flagged with an allow list takes new
// connections only from its prefixes; others are dropped and counted.
func TestAllowList(t *testing.T) {
	o := loadObjects(t)
	drService(t, o)
	k := SvcKey{Port: htons(80), Proto: unix.IPPROTO_TCP, Af: 4}
	k.Addr[0] = ip4(vip)
	var s Svc
	must(t, o.Services.Lookup(&k, &s))
	s.Flags |= svcAllowList
	must(t, o.Services.Put(&k, &s))
	ak := AllowKey{Prefixlen: 32 + 24, Svc: 7}
	ak.Addr[0] = ip4(netip.MustParseAddr("198.18.5.0"))
	must(t, o.Allow.Put(&ak, uint8(1)))

	if act, _ := run(t, o, syn(client, 80).build()); act != xdpTX { // 198.18.5.1
		t.Fatalf("SYN from an allowed prefix: %s", actionNames[act])
	}
	if act, _ := run(t, o, syn(ap("198.18.6.1:1000"), 80).build()); act != xdpDrop {
		t.Fatalf("SYN from elsewhere: %s, want DROP", actionNames[act])
	}
	// Other services keep taking everyone.
	p := syn(ap("198.18.6.1:1000"), 80)
	p.proto = unix.IPPROTO_UDP
	if act, _ := run(t, o, p.build()); act != xdpTX {
		t.Fatalf("UDP service without a list: %s", actionNames[act])
	}
	if ev := events(t, o); ev[evDenied] != 1 {
		t.Fatalf("denied %d, want 1", ev[evDenied])
	}
}

// TestSYNFloodPersistent: on a persistent service a flood's templates go
// with its evicted handshakes, so the template table does not fill and
// refuse new clients; an established client keeps its template.
func TestSYNFloodPersistent(t *testing.T) {
	const n = 128
	o := loadSmall(t, n, n)
	putDest(t, o, 1, drDest(rs1, 80, 1, 1, 1))
	putDest(t, o, 2, drDest(rs2, 80, 1, 1, 2))
	putService(t, o, svcSpec{id: 7, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR,
		flags: 1, timeout: 300, netmask: 0xffffffff, dests: []uint32{2, 1}})
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	onOneCPU(t)
	est := ap("198.18.6.1:2000")
	establish(t, o, est)
	for i := range 4 * n {
		if act, _ := run(t, o, syn(floodSrc(i), 80).build()); act != xdpTX {
			t.Fatalf("flood SYN %d: %s (events %v)", i, actionNames[act], events(t, o))
		}
	}
	if ev := events(t, o); ev[evTemplateFull] != 0 || ev[evEvicted] == 0 {
		t.Fatalf("template_full %d evicted %d", ev[evTemplateFull], ev[evEvicted])
	}
	tk := ConnKey{Proto: unix.IPPROTO_TCP, Af: 4, Vport: htons(80)}
	tk.Caddr[0] = ip4(est.Addr())
	tk.Vaddr[0] = ip4(vip)
	var tv Template
	if err := o.Templates.Lookup(&tk, &tv); err != nil || tv.N_control != 1 {
		t.Fatalf("the established client's template: %+v %v", tv, err)
	}
	// Every template left is held by a connection (the counts agree).
	var k ConnKey
	var persist int32
	for it := o.Templates.Iterate(); it.Next(&k, &tv); {
		if tv.N_control < 1 {
			t.Fatalf("template %+v holds nothing", tv)
		}
		persist++
	}
	if d1, d2 := getDest(t, o, 1), getDest(t, o, 2); d1.Persistconns+d2.Persistconns != persist {
		t.Fatalf("persistconns %d+%d, %d templates", d1.Persistconns, d2.Persistconns, persist)
	}
}

// TestNATEvictsAnsweredFirst: making room, a NAT handshake its server
// has not answered yet (its client may be waiting on a slow server) is
// passed over for answered ones, which a real client would have
// completed within a round trip.
func TestNATEvictsAnsweredFirst(t *testing.T) {
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
		for i := range n + n/2 {
			src := floodSrc(i)
			syn := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: src, dst: vport, flags: tcpSYN}
			if act, _, err := runNS(o, syn.build()); err != nil || act != xdpRedirect {
				return fmt.Errorf("flood SYN %d: %s %v (events %v)", i, actionNames[act], err, events(t, o))
			}
			// The server answers it (the answer goes nowhere: no route
			// to the spoofed source here; what counts is that it came).
			ack := pkt{srcMAC: [6]byte(gwMAC), dstMAC: [6]byte(dirMAC), src: natRIP, dst: src, flags: tcpSYN | tcpACK}
			if _, _, err := runNS(o, ack.build()); err != nil {
				return err
			}
		}
		if _, err := lookupConn(o, unix.IPPROTO_TCP, natClient, vport); err != nil {
			return fmt.Errorf("the unanswered handshake, the oldest, was evicted: %v (events %v)", err, events(t, o))
		}
		if ev := events(t, o); ev[evEvicted] < n/2 {
			return fmt.Errorf("evicted %d, want the answered ones to make room", ev[evEvicted])
		}
		return nil
	})
}

// smallNATService loads a table of n entries with TCP vip:80 (rr) to one
// NAT server, natRIP.
func smallNATService(t *testing.T, n uint32) (*Objects, netip.AddrPort) {
	t.Helper()
	o := loadSmall(t, n, 0)
	putDest(t, o, 1, natDest(natRIP, fwdMasq))
	natServer(t, o, natRIP.Addr())
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	return o, netip.AddrPortFrom(vip, 80)
}

// toCPU0 keeps the calling thread (locked, as inNetNS's is) on CPU 0:
// one part of the ring, in order.
func toCPU0() error {
	var set unix.CPUSet
	set.Set(0)
	return unix.SchedSetaffinity(0, &set)
}
