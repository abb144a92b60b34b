package xdp

import (
	"errors"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"gvs/api"
	"gvs/bpf"
	"gvs/conn"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
)

// recoverIDs reads the ids a previous gvsd gave services and servers from
// the pinned maps, so the rules it restores land on the same ids and the
// connections in the table keep pointing at the right servers. Ids that
// are marked taken but belong to no service in the maps (sched_state's
// used, a server's family) are those of deleted services and servers
// that connections may still name: they stay retired until the sweep
// finds none. Every other id is free and clean.
func (e *Engine) recoverIDs() error {
	var k bpf.SvcKey
	var sv bpf.Svc
	var liveSvcs, liveDests []uint32
	liveSvc, liveDest := map[uint32]bool{}, map[uint32]bool{}
	it := e.objs.Services.Iterate()
	for it.Next(&k, &sv) {
		mk := modelKey(k)
		e.svcIDs[mk] = sv.Id
		e.svcKeys[sv.Id] = mk
		liveSvcs = append(liveSvcs, sv.Id)
		liveSvc[sv.Id] = true
		e.svcMeta[sv.Id] = metaOf(mk, sv.Netmask)
		if sv.TableSlot != noSlot {
			if sv.Sched == schedIndex["mh"] {
				e.mhSlots.reserve(mk, sv.TableSlot)
			} else {
				e.hashSlots.reserve(mk, sv.TableSlot)
			}
		}
		ids, err := sv.DestIDs(e.objs.SvcChunks)
		if err != nil {
			return err
		}
		if sv.List != 0 && len(ids) > bpf.SvcInline {
			e.lists.of[sv.Id] = svcList{id: sv.List, tail: ids[bpf.SvcInline:]}
			e.lists.inUse[sv.List] = true
		}
		for _, id := range ids {
			if id >= maxDests || e.dmem.family(id) == 0 {
				continue
			}
			if e.destIDs[mk] == nil {
				e.destIDs[mk] = map[netip.AddrPort]uint32{}
			}
			var d bpf.Dest
			if err := e.objs.Dests.Lookup(id, &d); err != nil {
				return err
			}
			a := netip.AddrPortFrom(wordsAddr(d.Addr, d.Af), htons(d.Port))
			e.destIDs[mk][a] = id
			e.destKeys[id] = destRef{mk, a}
			liveDests = append(liveDests, id)
			liveDest[id] = true
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if err := e.recoverLists(); err != nil {
		return err
	}
	used, err := readUsed(e.objs.SchedState)
	if err != nil {
		return err
	}
	var retiredSvcs, retiredDests []uint32
	for _, id := range used {
		if !liveSvc[id] {
			retiredSvcs = append(retiredSvcs, id)
		}
	}
	for id := range uint32(maxDests) {
		if e.dmem.family(id) != 0 && !liveDest[id] {
			retiredDests = append(retiredDests, id)
		}
	}
	e.svcPool.recover(liveSvcs, retiredSvcs, e.passes)
	e.destPool.recover(liveDests, retiredDests, e.passes)
	return nil
}

// readUsed lists the service ids whose sched_state is marked used.
func readUsed(m *ebpf.Map) ([]uint32, error) {
	var ids []uint32
	keys := make([]uint32, countersChunk)
	vals := make([]bpf.SchedState, countersChunk)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			if vals[i].Used != 0 {
				ids = append(ids, keys[i])
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) || err == nil && n == 0 {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// tick is the engine's share of the periodic work (every second, with the
// table locked): expire connections, then bring the model's counters and
// connection counts up to date for listings and the rate estimator.
func (e *Engine) tick(v *ipvs.IPVS) {
	if e.sweepEvery == 0 {
		e.sweepEvery = sweepPeriod(e.objs.Conns.MaxEntries())
	}
	if e.ticks%e.sweepEvery == 0 {
		if err := e.sweep(); err != nil {
			e.log.Warn("expiry sweep", "err", err)
		}
	}
	e.pullLocked(v)
	e.freeLists()
	e.warnOnEvents()
	e.resolveMisses()
	if e.ticks++; e.ticks%30 == 0 {
		e.refreshHops(v, false)
		if err := e.writeIfaces(); err != nil {
			e.log.Warn("interfaces", "err", err)
		}
		e.nextHopGen()
	} else if e.missingHops() {
		// A server without a next hop (no route yet: a VRRP backup
		// before it holds the servers' gateway address) is tried every
		// second, so it forwards as soon as the route is there.
		e.refreshHops(v, true)
	}
	if e.ticks%60 == 0 {
		e.collectLBLC()
	}
	if e.ticks%60 == 0 {
		e.sweepReplies()
	}
}

// missingHops says whether a server has no next hop yet.
func (e *Engine) missingHops() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hopsMissing
}

// refreshHops re-reads the real servers' MAC addresses (a server replaced
// behind the same address keeps its traffic) and keeps the tunnel next
// hops' neighbour entries alive; with onlyMissing, only for the servers
// that have none yet. Each address is asked once, however many services
// share the server; what was found seeds hopOf until the next refresh.
func (e *Engine) refreshHops(v *ipvs.IPVS, onlyMissing bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	found := map[hopKey]hopResult{}
	missing := false
	for _, s := range v.Services() {
		for _, d := range s.Servers() {
			id, ok := e.destIDs[s.Config.ServiceKey][d.AddrPort()]
			if !ok || d.Method == model.Local {
				continue
			}
			if _, has := e.hops[id]; onlyMissing && has {
				continue
			}
			key := hopKey{d.Addr, d.Method != model.Route}
			r, ok := found[key]
			if !ok {
				// No wait under the table lock: a probe, and the next
				// refresh sees the answer.
				r.hop, r.err = key.resolve(0)
				if r.err != nil {
					probe(d.Addr)
				}
				found[key] = r
			}
			if r.err != nil {
				missing = true
				continue
			}
			h := r.hop
			if old, ok := e.hops[id]; !ok || old.ifindex != h.ifindex || string(old.mac) != string(h.mac) {
				e.hops[id] = h
				e.writeDest(id, d)
			}
		}
	}
	e.hopsMissing = missing
	// Failures are not kept: a server added now gets a full wait.
	e.addrHops = map[hopKey]hopResult{}
	for a, r := range found {
		if r.err == nil {
			e.addrHops[a] = r
		}
	}
}

// nextHopGen ages the next hops connections have cached for their
// replies: each asks the FIB again at its next reply, so a route or
// neighbour change reaches them within 30 s.
func (e *Engine) nextHopGen() {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	if e.cfg.HopGen++; e.cfg.HopGen == 0 {
		e.cfg.HopGen = 1
	}
	if err := e.writeConfig(); err != nil {
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
	svcs, err := readCounters(e.objs.SvcStats, int(e.svcPool.high()))
	var dests []stats.Counters
	if err == nil {
		dests, err = readCounters(e.objs.DestStats, int(e.destPool.high()))
	}
	if err != nil {
		e.log.Warn("reading the counters", "err", err)
		return
	}
	// Free ids are zeroed: the sum over all ids is that of the services
	// in the maps and of the deleted ones not yet freed.
	total := e.gone
	for _, c := range svcs {
		total = total.Add(c)
	}
	v.Total().Set(total)
	if e.pullStale || e.pullGen != v.Gen() {
		e.indexPull(v)
	}
	for _, p := range e.pullSvcs {
		p.svc.Stats.Set(svcs[p.id])
	}
	for _, p := range e.pullDests {
		d := p.dest
		d.Stats.Set(dests[p.id])
		d.ActiveConns, d.InactConns, d.PersistConns = e.dmem.counts(p.id)
		d.Overloaded = e.dmem.flags(p.id)&overFlag != 0
	}
}

// svcPull and destPull pair a service or server of the model with its id
// in the maps, for pullLocked.
type svcPull struct {
	svc *ipvs.Service
	id  uint32
}

type destPull struct {
	dest *model.Server
	id   uint32
}

// indexPull lists the model's services and servers with their ids (under
// e.mu): a pull then reads no map keyed by address, which at 100,000
// services cost 0.15 s of CPU a second. Made again when the model or the
// ids change (pullGen, pullStale).
func (e *Engine) indexPull(v *ipvs.IPVS) {
	e.pullSvcs, e.pullDests = e.pullSvcs[:0], e.pullDests[:0]
	for _, s := range v.Services() {
		k := s.Config.ServiceKey
		if id, ok := e.svcIDs[k]; ok {
			e.pullSvcs = append(e.pullSvcs, svcPull{s, id})
		}
		ids := e.destIDs[k]
		for _, d := range s.Servers() {
			if id, ok := ids[d.AddrPort()]; ok {
				e.pullDests = append(e.pullDests, destPull{d, id})
			}
		}
	}
	e.pullGen, e.pullStale = v.Gen(), false
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

// RawServices implements engine.RawStats with fresh counters.
func (e *Engine) RawServices() []api.Service {
	e.pullStats()
	return e.Table.RawServices()
}

// RawTotals implements engine.RawStats with fresh counters.
func (e *Engine) RawTotals() stats.Counters {
	e.pullStats()
	return e.Table.RawTotals()
}

// ConnStates implements engine.ConnStater: the live entries by state as
// the last complete expiry sweep (every second) counted them, so a scrape
// reads no map; before the first sweep, an empty table.
func (e *Engine) ConnStates() engine.ConnStates {
	if cs := e.connStates.Load(); cs != nil {
		return *cs
	}
	return engine.ConnStates{ByState: map[string]uint64{}, Capacity: uint64(e.objs.Conns.MaxEntries())}
}

// Conns lists the BPF connection and template tables a batch at a time
// (countersChunk entries per lookup), converting each batch under e.mu so
// no server id it names is freed and reused meanwhile, and yielding it
// with no lock held: a slow reader holds up neither the sweep nor rule
// changes.
func (e *Engine) Conns(yield func(api.Conn) bool) error {
	t := now()
	remaining := func(exp uint64) int64 {
		if exp <= t {
			return 0
		}
		return int64(time.Duration(exp - t).Milliseconds())
	}
	out := make([]api.Conn, 0, countersChunk)
	more, err := listBatches(e, e.objs.Conns, &out, yield, func(destAddr func(uint32, uint16) netip.AddrPort, k *bpf.ConnKey, c *bpf.Conn) {
		if c.Dest == destNone {
			return // being created this instant
		}
		ac := api.Conn{
			Protocol: model.Protocol(k.Proto),
			Client:   netip.AddrPortFrom(wordsAddr(k.Caddr, k.Af), htons(k.Cport)),
			Virtual:  netip.AddrPortFrom(wordsAddr(k.Vaddr, k.Af), htons(k.Vport)),
			Dest:     destAddr(c.Dest, htons(c.Rport)),
			State:    conn.State(c.State).String(),
			ExpireMS: remaining(max(c.Expires, e.replyDeadline(*k, c))),
			Synced:   c.Flags&connSynced != 0,
		}
		if c.Flags&connNAT != 0 && model.Method(c.Method) == model.FullNAT { // the method it was made with
			// The server's family: NAT64's local address is IPv4.
			ac.Local = netip.AddrPortFrom(wordsAddr(c.Laddr, uint8(model.FamilyOf(ac.Dest.Addr()))), htons(c.Lport))
		}
		out = append(out, ac)
	})
	if err != nil || !more {
		return err
	}
	_, err = listBatches(e, e.objs.Templates, &out, yield, func(destAddr func(uint32, uint16) netip.AddrPort, k *bpf.ConnKey, tv *bpf.Template) {
		if tv.Dest == destNone {
			return // being created, or an abandoned reservation
		}
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
	})
	return err
}

// listBatches reads m a batch at a time; for each, under e.mu, it calls
// conv per entry (with destAddr, a server's address and port, looked up
// once per batch and server), then yields what conv appended to out with
// e.mu released. more is false once yield has asked to stop.
func listBatches[K, V any](e *Engine, m *ebpf.Map, out *[]api.Conn, yield func(api.Conn) bool,
	conv func(destAddr func(uint32, uint16) netip.AddrPort, k *K, v *V)) (more bool, err error) {
	keys := make([]K, countersChunk)
	vals := make([]V, countersChunk)
	dests := map[uint32]netip.AddrPort{}
	destAddr := func(id uint32, port uint16) netip.AddrPort {
		a, ok := dests[id]
		if !ok {
			var d bpf.Dest
			if e.objs.Dests.Lookup(id, &d) == nil {
				a = netip.AddrPortFrom(wordsAddr(d.Addr, d.Af), htons(d.Port))
			}
			dests[id] = a
		}
		if port == 0 || !a.IsValid() {
			return a
		}
		return netip.AddrPortFrom(a.Addr(), port)
	}
	var cursor ebpf.MapBatchCursor
	for {
		e.mu.Lock()
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		clear(dests)
		*out = (*out)[:0]
		for i := range n {
			conv(destAddr, &keys[i], &vals[i])
		}
		e.mu.Unlock()
		for _, c := range *out {
			if !yield(c) {
				return false, nil
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) || err == nil && n == 0 {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}
