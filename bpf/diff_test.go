package bpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvs/conn"
	"gvs/ipvs"
	"gvs/model"
	"gvs/sched"
)

// schedIndex is enum gvs_sched: the position in model.Schedulers.
func schedIndex(name string) uint32 { return uint32(slices.Index(model.Schedulers, name)) }

// The servers of every differential service, in the order they are added
// (the kernel's list is the reverse): weights mixed, one quiesced, one
// overloaded from the start, one that overloads at 40 connections.
type diffDest struct {
	addr       string
	weight     int32
	uthr, lthr uint32
	overloaded bool
}

var diffDests = []diffDest{
	{"198.18.1.1", 3, 0, 0, false},
	{"198.18.1.2", 1, 0, 0, false},
	{"198.18.1.3", 0, 0, 0, false},
	{"198.18.1.4", 2, 0, 0, true},
	{"198.18.1.5", 5, 40, 30, false},
	{"198.18.1.6", 2, 0, 0, false},
	{"198.18.1.7", 4, 0, 0, false},
}

// wrr with a huge weight on an overloaded server (the passes BPF skips)
// and a common divisor above 1.
var wrrSkipDests = []diffDest{
	{"198.18.1.1", 6, 0, 0, false},
	{"198.18.1.2", 2, 0, 0, false},
	{"198.18.1.3", 0, 0, 0, false},
	{"198.18.1.4", 4000, 0, 0, true},
	{"198.18.1.5", 10, 40, 0, false},
	{"198.18.1.6", 4, 0, 0, false},
	{"198.18.1.7", 8, 0, 0, false},
}

// bigList is a list long enough to go past the ids a service value holds
// (SvcInline) into three svc_chunks values: the lists the walks cross
// chunk boundaries in.
const bigList = SvcInline + 2*ChunkIDs + 40

// bigDests: weights 0 to 6, some overloaded, some with thresholds.
func bigDests() []diffDest {
	var l []diffDest
	for j := range bigList {
		d := diffDest{addr: fmt.Sprintf("198.18.%d.%d", 1+j/200, j%200+1), weight: int32(j % 7)}
		if j%53 == 13 {
			d.overloaded = true
		}
		if j%41 == 5 {
			d.uthr, d.lthr = 3, 2
		}
		l = append(l, d)
	}
	return l
}

func vipOf(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}) }

type diffCase struct {
	name    string
	sched   string
	flags   model.ServiceFlags
	proto   model.Protocol
	netmask uint32
	vips    int        // services (virtual addresses); 3 when 0
	port0   bool       // a port-zero (persistent) service
	dests   []diffDest // diffDests when nil
	v6      bool       // IPv6 services, servers and clients (xdp_gvs6)
}

// v6Of maps an IPv4 test address into 2001:db8::/32 (its last two bytes
// kept, its third a /64 of its own), for the IPv6 cases.
func v6Of(a netip.Addr) netip.Addr {
	b := a.As4()
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, b[1], 0, b[2], 0, 0, 0, 0, 0, 0, b[2], b[3]})
}

func (c diffCase) nvips() int {
	if c.vips == 0 {
		return 3
	}
	return c.vips
}

func (c diffCase) destList() []diffDest {
	if c.dests == nil {
		return diffDests
	}
	return c.dests
}

func diffDestID(svc, j int) uint32 { return uint32(svc*bigList + j + 1) }

// setupDiff configures the same services in the model and in the maps.
func setupDiff(t *testing.T, o *Objects, v *ipvs.IPVS, c diffCase) map[*model.Server]uint32 {
	t.Helper()
	ids := map[*model.Server]uint32{}
	proto := uint8(c.proto)
	port := uint16(80)
	if c.port0 {
		port = 0
	}
	for s := range c.nvips() {
		vip := vipOf(s)
		fam := model.IPv4
		if c.v6 {
			vip, fam = v6Of(vip), model.IPv6
		}
		cfg := model.Service{
			ServiceKey: model.ServiceKey{Protocol: c.proto, Addr: vip, Port: port, Family: fam},
			Scheduler:  c.sched, Flags: c.flags,
		}
		if c.flags&model.FlagPersistent != 0 {
			cfg.Timeout, cfg.Netmask = 300, c.netmask
		}
		must(t, v.AddService(cfg))
		var cw, mw, di int32
		for j, d := range c.destList() {
			addr := netip.MustParseAddr(d.addr)
			if c.v6 {
				addr = v6Of(addr)
			}
			must(t, v.AddDest(cfg.ServiceKey, model.Dest{Addr: addr, Port: port,
				Method: model.Route, Weight: d.weight, UThreshold: d.uthr, LThreshold: d.lthr}))
			svc := v.Service(cfg.ServiceKey)
			srv := svc.Servers()[0]
			srv.Overloaded = d.overloaded
			ids[srv] = diffDestID(s, j)
			// What ip_vs_wrr_dest_changed did to the model's state.
			cw, mw, di = sched.WRRUpdate(cw, svc.Servers())
		}
		svc := v.Service(cfg.ServiceKey)
		spec := svcSpec{id: uint32(s + 1), proto: proto, addr: vip, port: port, sched: schedIndex(c.sched),
			flags: uint32(c.flags), timeout: cfg.Timeout, netmask: svc.Config.Netmask, slot: uint32(s)}
		for _, srv := range svc.Servers() {
			id := ids[srv]
			var d Dest
			if c.v6 {
				d = Dest{Addr: words6(srv.Addr), Port: htons(srv.Port), Method: fwdRoute, Af: 6, Weight: srv.Weight,
					Flags: destAvailable, Ifindex: 1, Mac: destMAC(id)}
			} else {
				d = drDest(srv.Addr, srv.Port, srv.Weight, 1, id)
			}
			d.U_threshold, d.L_threshold = srv.UThreshold, srv.LThreshold
			if srv.Overloaded {
				d.Flags |= destOverload
			}
			putDest(t, o, id, d)
			spec.dests = append(spec.dests, id)
		}
		if c.v6 {
			putService6(t, o, spec)
		} else {
			putService(t, o, spec)
		}
		st := SchedState{RrLast: -1, WrrCl: -1, WrrCw: cw, WrrMw: mw, WrrDi: di}
		must(t, o.SchedState.Put(spec.id, &st))
		if table := sched.BucketTable(svc.Scheduler()); table != nil {
			m, width := o.HashTables, 256
			if c.sched == "mh" {
				m, width = o.MhTables, 4093
			}
			if len(table) != width {
				t.Fatalf("%s table of %d buckets, the maps hold %d", c.sched, len(table), width)
			}
			keys := make([]uint32, width)
			vals := make([]uint32, width)
			for i, srv := range table {
				keys[i] = uint32(s*width + i)
				vals[i] = destNone
				if srv != nil {
					vals[i] = ids[srv]
				}
			}
			if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
				for i := range keys {
					must(t, m.Put(keys[i], vals[i]))
				}
			}
		}
	}
	must(t, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	return ids
}

func diffFlow(i int, c diffCase) pkt {
	dport := uint16(80)
	if c.port0 {
		dport += uint16(i % 3)
	}
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(8 + i/200), byte(i%200 + 1)}), uint16(1024+i*7%60000))
	p := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: src, dst: netip.AddrPortFrom(vipOf(i%c.nvips()), dport),
		proto: uint8(c.proto), flags: tcpSYN, df: true}
	return p
}

// bpfVerdict reads what the program did: the destination id (by MAC), or
// a reject (ICMP sent or dropped), or a pass.
func bpfVerdict(act uint32, out []byte) (uint32, ipvs.Verdict, error) {
	switch act {
	case xdpTX:
		if binary.BigEndian.Uint16(out[12:]) == 0x0800 && out[14+9] == 1 {
			return 0, ipvs.Reject, nil
		}
		if binary.BigEndian.Uint16(out[12:]) == 0x86dd && out[14+6] == 58 {
			return 0, ipvs.Reject, nil // ICMPv6 port unreachable
		}
		if out[0] != 0x02 || out[1] != 0xd0 {
			return 0, 0, fmt.Errorf("TX to unknown MAC %x", out[:6])
		}
		return uint32(out[4])<<8 | uint32(out[5]), ipvs.Forward, nil
	case xdpDrop:
		return 0, ipvs.Reject, nil
	case xdpPass:
		return 0, ipvs.Pass, nil
	}
	return 0, 0, fmt.Errorf("action %s", actionNames[act])
}

func TestDifferential(t *testing.T) {
	o := loadObjects(t)
	cases := []diffCase{}
	for _, name := range model.Schedulers {
		c := diffCase{name: name, sched: name, proto: model.ProtoTCP}
		switch name {
		case "dh", "lblc", "lblcr":
			c.vips = 32 // they choose by destination address
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		diffCase{name: "sh-fallback-port", sched: "sh", flags: model.FlagSHFallback | model.FlagSHPort, proto: model.ProtoTCP},
		diffCase{name: "mh-fallback-port", sched: "mh", flags: model.FlagMHFallback | model.FlagMHPort, proto: model.ProtoTCP},
		diffCase{name: "wlc-persistent", sched: "wlc", flags: model.FlagPersistent, proto: model.ProtoTCP, netmask: 0xffffff00},
		diffCase{name: "wrr-persistent-udp", sched: "wrr", flags: model.FlagPersistent, proto: model.ProtoUDP, netmask: 0xfffffff0},
		diffCase{name: "rr-udp-onepacket", sched: "rr", flags: model.FlagOnePacket, proto: model.ProtoUDP},
		diffCase{name: "rr-persistent-port0", sched: "rr", flags: model.FlagPersistent, proto: model.ProtoTCP, netmask: 0xffffffff, port0: true},
		diffCase{name: "lblcr-persistent", sched: "lblcr", flags: model.FlagPersistent, proto: model.ProtoTCP, netmask: 0xffffff00, vips: 32},
		diffCase{name: "wrr-skip", sched: "wrr", proto: model.ProtoTCP, dests: wrrSkipDests},
		diffCase{name: "twos-skip", sched: "twos", proto: model.ProtoTCP, dests: wrrSkipDests},
	)
	// Lists that go on in svc_chunks.
	for _, name := range []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "lblc", "lblcr"} {
		c := diffCase{name: name + "-big", sched: name, proto: model.ProtoTCP, dests: bigDests()}
		if name == "lblc" || name == "lblcr" {
			c.vips = 8
		}
		cases = append(cases, c)
	}
	// IPv6: the hashing schedulers fold the addresses as the kernel does;
	// persistence masks to a prefix length.
	for _, c := range []diffCase{
		{name: "v6-rr", sched: "rr", proto: model.ProtoTCP},
		{name: "v6-wlc", sched: "wlc", proto: model.ProtoTCP},
		{name: "v6-sh", sched: "sh", proto: model.ProtoTCP},
		{name: "v6-sh-fallback-port", sched: "sh", flags: model.FlagSHFallback | model.FlagSHPort, proto: model.ProtoTCP},
		{name: "v6-dh", sched: "dh", proto: model.ProtoTCP, vips: 32},
		{name: "v6-mh", sched: "mh", proto: model.ProtoTCP},
		{name: "v6-lblc", sched: "lblc", proto: model.ProtoTCP, vips: 32},
		{name: "v6-lblcr", sched: "lblcr", proto: model.ProtoTCP, vips: 32},
		{name: "v6-wlc-persistent-64", sched: "wlc", flags: model.FlagPersistent, proto: model.ProtoTCP, netmask: 64},
		{name: "v6-wrr-persistent-udp-120", sched: "wrr", flags: model.FlagPersistent, proto: model.ProtoUDP, netmask: 120},
		{name: "v6-rr-persistent-port0", sched: "rr", flags: model.FlagPersistent, proto: model.ProtoTCP, netmask: 128, port0: true},
	} {
		c.v6 = true
		cases = append(cases, c)
	}
	const flows = 1500
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearMaps(t, o)
			v := ipvs.New(ipvs.Options{})
			ids := setupDiff(t, o, v, c)
			byID := map[uint32]*model.Server{}
			for s, id := range ids {
				byID[id] = s
			}
			counts := map[uint32]int{}
			for i := range flows {
				p := diffFlow(i, c)
				in := p.build()
				if c.v6 {
					p.src = netip.AddrPortFrom(v6Of(p.src.Addr()), p.src.Port())
					p.dst = netip.AddrPortFrom(v6Of(p.dst.Addr()), p.dst.Port())
					in = (pkt6{srcMAC: p.srcMAC, dstMAC: p.dstMAC, src: p.src, dst: p.dst, proto: p.proto, flags: p.flags}).build()
				}
				var usable map[uint32]bool
				if c.sched == "twos" {
					usable = map[uint32]bool{}
					for id := range byID {
						d := getDest(t, o, id)
						usable[id] = d.Weight > 0 && d.Flags&destOverload == 0
					}
				}
				act, out := run(t, o, in)
				id, verdict, err := bpfVerdict(act, out)
				if err != nil {
					t.Fatalf("flow %d: %v", i, err)
				}
				counts[id]++
				if c.sched == "twos" {
					if verdict != ipvs.Forward || !usable[id] {
						t.Fatalf("flow %d: twos chose %d (verdict %d), not a usable server", i, id, verdict)
					}
					continue
				}
				mp := ipvs.Packet{Protocol: c.proto, Src: p.src, Dst: p.dst}
				if c.v6 {
					mp.Len = 40 + int(binary.BigEndian.Uint16(in[18:]))
				} else {
					mp.Len = int(ipTotLen(in))
				}
				if c.proto == model.ProtoTCP {
					mp.TCPFlags = conn.SYN
				}
				mc, mv := v.In(mp, time.Now())
				if mv != verdict {
					t.Fatalf("flow %d (%v): model verdict %d, BPF %d (act %s)", i, p.src, mv, verdict, actionNames[act])
				}
				if mv == ipvs.Forward && ids[mc.Server] != id {
					t.Fatalf("flow %d (%v -> %v): model chose %v (id %d), BPF id %d", i, p.src, p.dst, mc.Server.Addr, ids[mc.Server], id)
				}
			}
			if c.sched == "twos" {
				checkTwos(t, c, counts)
				return
			}
			// The servers' counts evolved the same way.
			for srv, id := range ids {
				d := getDest(t, o, id)
				if int(d.Activeconns) != srv.ActiveConns || int(d.Inactconns) != srv.InactConns ||
					int(d.Persistconns) != srv.PersistConns || (d.Flags&destOverload != 0) != srv.Overloaded {
					t.Fatalf("server %v: BPF active %d inactive %d persistent %d flags %#x; model %d %d %d overloaded %v",
						srv.Addr, d.Activeconns, d.Inactconns, d.Persistconns, d.Flags,
						srv.ActiveConns, srv.InactConns, srv.PersistConns, srv.Overloaded)
				}
			}
			t.Logf("%d flows, choices by dest id: %v", flows, counts)
		})
	}
}

// checkTwos: twos is random. Every choice was usable (checked per flow);
// here, the servers that were usable throughout got connections roughly in
// proportion to their weights.
func checkTwos(t *testing.T, c diffCase, counts map[uint32]int) {
	t.Helper()
	for s := range c.nvips() {
		var total, wsum int
		for j, d := range c.destList() {
			if d.weight > 0 && !d.overloaded && d.uthr == 0 {
				total += counts[diffDestID(s, j)]
				wsum += int(d.weight)
			}
		}
		for j, d := range c.destList() {
			n := counts[diffDestID(s, j)]
			switch {
			case d.weight == 0 || d.overloaded:
				if n != 0 {
					t.Fatalf("twos gave %d connections to %s (weight %d, overloaded %v)", n, d.addr, d.weight, d.overloaded)
				}
			case d.uthr == 0:
				want := float64(total) * float64(d.weight) / float64(wsum)
				if want < 50 {
					continue // too few to judge (the long lists)
				}
				if f := float64(n) / want; f < 0.6 || f > 1.4 {
					t.Fatalf("twos: %s (weight %d) got %d of %d, expected about %.0f", d.addr, d.weight, n, total, want)
				}
			}
		}
	}
}

// clearMaps empties the maps a differential case fills.
func clearMaps(t *testing.T, o *Objects) {
	t.Helper()
	clearHash(t, o.Conns, new(ConnKey), new(Conn))
	clearHash(t, o.Templates, new(ConnKey), new(Template))
	clearHash(t, o.Services, new(SvcKey), new(Svc))
	clearHash(t, o.SvcChunks, new(ChunkKey), new(Chunk))
	clearHash(t, o.Lblc, new(LBLCKey), new(LBLC))
	clearHash(t, o.Lblcr, new(LBLCKey), new(LBLCR))
}

// A list whose chunks are missing (gvsd freed them: a reader that had the
// old value) reads as no server there: rr and wlc choose among the ids in
// the value only.
func TestListChunkMissing(t *testing.T) {
	o := loadObjects(t)
	for _, name := range []string{"rr", "wlc"} {
		clearMaps(t, o)
		c := diffCase{name: name, sched: name, proto: model.ProtoTCP, dests: bigDests(), vips: 1}
		setupDiff(t, o, ipvs.New(ipvs.Options{}), c)
		k := SvcKey{Port: htons(80), Proto: uint8(model.ProtoTCP), Af: 4}
		k.Addr[0] = ip4(vipOf(0))
		var sv Svc
		must(t, o.Services.Lookup(&k, &sv))
		for n := range Chunks(int(sv.Ndests)) {
			must(t, o.SvcChunks.Delete(&ChunkKey{List: sv.List, Chunk: uint32(n)}))
		}
		inline := map[uint32]bool{}
		for _, id := range sv.Dests {
			inline[id] = true
		}
		for i := range 200 {
			act, out := run(t, o, diffFlow(i, c).build())
			id, verdict, err := bpfVerdict(act, out)
			if err != nil || verdict != ipvs.Forward || !inline[id] {
				t.Fatalf("%s flow %d: id %d verdict %d (%v), want one of the value's %v", name, i, id, verdict, err, sv.Dests)
			}
		}
	}
}
