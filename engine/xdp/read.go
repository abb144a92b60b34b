package xdp

import (
	"net/netip"
	"time"

	"gvs/api"
	"gvs/bpf"
	"gvs/conn"
	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
)

// recoverIDs reads the ids a previous gvsd gave services and servers from
// the pinned maps, so the rules it restores land on the same ids and the
// connections in the table keep pointing at the right servers.
func (e *Engine) recoverIDs() error {
	var k bpf.SvcKey
	var sv bpf.Svc
	it := e.objs.Services.Iterate()
	for it.Next(&k, &sv) {
		mk := model.ServiceKey{Protocol: model.Protocol(k.Proto), Addr: wordsAddr(k.Addr, k.Af), Port: htons(k.Port), Family: model.Family(k.Af)}
		e.svcIDs[mk] = sv.Id
		e.svcMeta[sv.Id] = svcMeta{netmask: sv.Netmask, portZero: mk.Port == 0}
		if sv.TableSlot != noSlot {
			if sv.Sched == schedIndex["mh"] {
				e.mhSlots.reserve(mk, sv.TableSlot)
			} else {
				e.hashSlots.reserve(mk, sv.TableSlot)
			}
		}
		e.nextSvc = max(e.nextSvc, sv.Id+1)
		for i := range min(sv.Ndests, svcDests) {
			id := sv.Dests[i]
			var d bpf.Dest
			if err := e.objs.Dests.Lookup(id, &d); err != nil {
				continue
			}
			if e.destIDs[mk] == nil {
				e.destIDs[mk] = map[netip.AddrPort]uint32{}
			}
			e.destIDs[mk][netip.AddrPortFrom(wordsAddr(d.Addr, d.Af), htons(d.Port))] = id
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	// Servers of deleted services may still carry connections: never
	// reuse an id that is in use.
	var id uint32
	var d bpf.Dest
	dit := e.objs.Dests.Iterate()
	for dit.Next(&id, &d) {
		if d.Af != 0 {
			e.nextDest = max(e.nextDest, id+1)
		}
	}
	return dit.Err()
}

// tick is the engine's share of the periodic work (every second, with the
// table locked): expire connections, then bring the model's counters and
// connection counts up to date for listings and the rate estimator.
func (e *Engine) tick(v *ipvs.IPVS) {
	if err := e.sweep(); err != nil {
		e.log.Warn("expiry sweep", "err", err)
	}
	e.pullLocked(v)
	if e.ticks++; e.ticks%30 == 0 {
		e.refreshHops(v)
		if err := e.writeIfaces(); err != nil {
			e.log.Warn("interfaces", "err", err)
		}
		e.nextHopGen()
	}
	if e.ticks%60 == 0 {
		e.collectLBLC()
	}
	if e.ticks%10 == 0 {
		e.sweepReplies()
	}
}

// refreshHops re-reads the real servers' MAC addresses (a server replaced
// behind the same address keeps its traffic) and keeps the tunnel next
// hops' neighbour entries alive.
func (e *Engine) refreshHops(v *ipvs.IPVS) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range v.Services() {
		for _, d := range s.Servers() {
			id, ok := e.destIDs[s.Config.ServiceKey][d.AddrPort()]
			if !ok || d.Method == model.Local {
				continue
			}
			var h nextHop
			var err error
			if d.Method == model.Route {
				h, err = resolve(d.Addr, 0)
			} else {
				h, err = resolveTunnel(d.Addr)
			}
			if err != nil {
				probe(d.Addr)
				continue
			}
			if old, ok := e.hops[id]; !ok || old.ifindex != h.ifindex || string(old.mac) != string(h.mac) {
				e.hops[id] = h
				e.writeDest(id, d)
			}
		}
	}
}

// nextHopGen ages the next hops connections have cached for their
// replies: each asks the FIB again at its next reply, so a route or
// neighbour change reaches them within 30 s.
func (e *Engine) nextHopGen() {
	var cfg bpf.Config
	if err := e.objs.Config.Lookup(uint32(0), &cfg); err != nil {
		return
	}
	if cfg.HopGen++; cfg.HopGen == 0 {
		cfg.HopGen = 1
	}
	if err := e.objs.Config.Put(uint32(0), &cfg); err != nil {
		e.log.Warn("config", "err", err)
	}
}

// pullStats is tick's counter half, taking the table lock itself.
func (e *Engine) pullStats() { e.Do(e.pullLocked) }

func sum(per []bpf.Stats) stats.Counters {
	var c stats.Counters
	for _, s := range per {
		c.Conns += s.Conns
		c.InPkts += s.Inpkts
		c.OutPkts += s.Outpkts
		c.InBytes += s.Inbytes
		c.OutBytes += s.Outbytes
	}
	return c
}

func (e *Engine) pullLocked(v *ipvs.IPVS) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var total stats.Counters
	per := make([]bpf.Stats, ebpfCPUs())
	for _, id := range e.svcIDs {
		if e.objs.SvcStats.Lookup(id, &per) == nil {
			total = total.Add(sum(per))
		}
	}
	v.Total().Set(total)
	for _, s := range v.Services() {
		k := s.Config.ServiceKey
		if e.objs.SvcStats.Lookup(e.svcIDs[k], &per) == nil {
			s.Stats.Set(sum(per))
		}
		for _, d := range s.Servers() {
			id, ok := e.destIDs[k][d.AddrPort()]
			if !ok {
				continue
			}
			if e.objs.DestStats.Lookup(id, &per) == nil {
				d.Stats.Set(sum(per))
			}
			var bd bpf.Dest
			if e.objs.Dests.Lookup(id, &bd) == nil {
				d.ActiveConns, d.InactConns, d.PersistConns = int(bd.Activeconns), int(bd.Inactconns), int(bd.Persistconns)
				d.Overloaded = bd.Flags&overFlag != 0
			}
		}
	}
}

// Services implements engine.Engine with fresh counters.
func (e *Engine) Services() []api.Service {
	e.pullStats()
	return e.Table.Services()
}

// Totals implements engine.Engine with fresh counters.
func (e *Engine) Totals() (stats.Counters, stats.Rates) {
	e.pullStats()
	return e.Table.Totals()
}

// Conns lists the BPF connection and template tables.
func (e *Engine) Conns() []api.Conn {
	t := now()
	var out []api.Conn
	e.mu.Lock()
	defer e.mu.Unlock()
	destAddr := func(id uint32, port uint16) netip.AddrPort {
		var d bpf.Dest
		if e.objs.Dests.Lookup(id, &d) != nil {
			return netip.AddrPort{}
		}
		if port == 0 {
			port = htons(d.Port)
		}
		return netip.AddrPortFrom(wordsAddr(d.Addr, d.Af), port)
	}
	remaining := func(exp uint64) int64 {
		if exp <= t {
			return 0
		}
		return int64(time.Duration(exp - t).Milliseconds())
	}
	var k bpf.ConnKey
	var c bpf.Conn
	it := e.objs.Conns.Iterate()
	for it.Next(&k, &c) {
		ac := api.Conn{
			Protocol: model.Protocol(k.Proto),
			Client:   netip.AddrPortFrom(wordsAddr(k.Caddr, k.Af), htons(k.Cport)),
			Virtual:  netip.AddrPortFrom(wordsAddr(k.Vaddr, k.Af), htons(k.Vport)),
			Dest:     destAddr(c.Dest, htons(c.Rport)),
			State:    conn.State(c.State).String(),
			ExpireMS: remaining(c.Expires),
		}
		if c.Flags&connNAT != 0 && e.dmem.method(c.Dest) == model.FullNAT {
			ac.Local = netip.AddrPortFrom(wordsAddr(c.Laddr, k.Af), htons(c.Lport))
		}
		out = append(out, ac)
	}
	var tv bpf.Template
	tit := e.objs.Templates.Iterate()
	for tit.Next(&k, &tv) {
		st := conn.None
		if k.Proto == uint8(model.ProtoUDP) {
			st = conn.StateUDP
		}
		dport := uint16(0)
		if k.Vport != 0 {
			dport = destAddr(tv.Dest, 0).Port()
		}
		out = append(out, api.Conn{
			Protocol: model.Protocol(k.Proto),
			Client:   netip.AddrPortFrom(wordsAddr(k.Caddr, k.Af), 0),
			Virtual:  netip.AddrPortFrom(wordsAddr(k.Vaddr, k.Af), htons(k.Vport)),
			Dest:     netip.AddrPortFrom(destAddr(tv.Dest, 0).Addr(), dport),
			State:    st.String(),
			ExpireMS: remaining(tv.Expires),
			Template: true,
		})
	}
	return out
}
