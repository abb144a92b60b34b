package xdp

import (
	"net/netip"

	"gvs/bpf"
	"gvs/model"
)

// destRef is whose a server id is: a service's server at an address.
type destRef struct {
	svc  model.ServiceKey
	addr netip.AddrPort
}

// svcID is service k's id: the one it has, revived if k was deleted and
// added again before its id went back, else a free one.
func (e *Engine) svcID(k model.ServiceKey) (uint32, error) {
	if id, ok := e.svcIDs[k]; ok {
		if e.svcPool.isRetired(id) {
			// Deleted and added again: a new service to IPVS, whose
			// counters start at zero (ip_vs_add_service); what the
			// old one counted joins the totals of the services gone.
			if err := e.zeroSvcStats(id); err != nil {
				return 0, err
			}
		}
		e.svcPool.revive(id)
		return id, nil
	}
	id, ok := e.svcPool.get()
	if !ok {
		return 0, errNoIDs
	}
	e.svcIDs[k] = id
	e.svcKeys[id] = k
	return id, nil
}

// destID is the id of service k's server a, kept or revived as svcID's.
func (e *Engine) destID(k model.ServiceKey, a netip.AddrPort) (uint32, error) {
	if id, ok := e.destIDs[k][a]; ok {
		e.destPool.revive(id)
		return id, nil
	}
	id, ok := e.destPool.get()
	if !ok {
		return 0, errNoIDs
	}
	if e.destIDs[k] == nil {
		e.destIDs[k] = map[netip.AddrPort]uint32{}
	}
	e.destIDs[k][a] = id
	e.destKeys[id] = destRef{k, a}
	return id, nil
}

// retireDests marks the servers of service k that are no longer in its
// list (all of them for a deleted service) unavailable, their
// connections' packets dropped until they expire as IPVS does, and
// retires their ids. Call it once BPF's copy of the list has them no
// more.
func (e *Engine) retireDests(k model.ServiceKey, live map[uint32]bool) {
	for _, id := range e.destIDs[k] {
		if live[id] {
			continue
		}
		e.dmem.setFlags(id, 0, availFlag)
		e.destPool.retire(id, e.passes)
	}
}

// releaseIDs frees the retired ids that the pass that just ended, having
// gone over every connection and template, found nothing naming. A server
// id needs its counts at zero too: a connection the pass missed (a count
// gone wrong) keeps it. lblc/lblcr entries naming the ids go first, since
// BPF trusts an entry's server once it is available again.
func (e *Engine) releaseIDs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	svcs := e.svcPool.due(e.passes, e.refs.svc.has)
	dests := e.destPool.due(e.passes, func(id uint32) bool { return e.refs.dest.has(id) || e.dmem.busy(id) })
	if len(svcs) == 0 && len(dests) == 0 {
		return
	}
	if err := e.purgeLBLC(svcs, dests); err != nil {
		e.log.Warn("releasing ids: lblc entries", "err", err)
		return
	}
	e.svcPool.release(svcs)
	e.destPool.release(dests)
}

// cleanSvc deletes a service id's allow list entries (if any were left),
// zeroes its counters (adding them to the totals of the services gone)
// and its scheduler state, its used mark last: a gvsd
// stopped half-way leaves the id retired, not free and dirty.
func (e *Engine) cleanSvc(id uint32) error {
	if err := e.deleteAllow(id, nil); err != nil {
		return err
	}
	if err := e.zeroSvcStats(id); err != nil {
		return err
	}
	if err := e.objs.SchedState.Put(id, &bpf.SchedState{}); err != nil {
		return err
	}
	if err := e.objs.SvcFwmark.Put(id, uint32(0)); err != nil {
		return err
	}
	if err := e.objs.Laddrs4.Delete(id); err != nil && !isNotExist(err) {
		return err
	}
	if k, ok := e.svcKeys[id]; ok {
		if e.svcIDs[k] == id {
			delete(e.svcIDs, k)
		}
		delete(e.svcKeys, id)
	}
	delete(e.svcMeta, id)
	return nil
}

// zeroSvcStats zeroes a service id's counters, adding them to the totals
// of the services gone (the machine's totals never go back).
func (e *Engine) zeroSvcStats(id uint32) error {
	per := make([]bpf.Stats, ebpfCPUs())
	if err := e.objs.SvcStats.Lookup(id, &per); err != nil {
		return err
	}
	if err := e.objs.SvcStats.Put(id, make([]bpf.Stats, ebpfCPUs())); err != nil {
		return err
	}
	e.gone = e.gone.Add(sum(per))
	return nil
}

// cleanDest zeroes a server id's counters and its dests entry, the
// family (the mark of an id in use) last.
func (e *Engine) cleanDest(id uint32) error {
	if err := e.objs.DestStats.Put(id, make([]bpf.Stats, ebpfCPUs())); err != nil {
		return err
	}
	e.dmem.clear(id)
	if r, ok := e.destKeys[id]; ok {
		if m := e.destIDs[r.svc]; m[r.addr] == id {
			delete(m, r.addr)
			if len(m) == 0 {
				delete(e.destIDs, r.svc)
			}
		}
		delete(e.destKeys, id)
	}
	delete(e.hops, id)
	return nil
}

// purgeLBLC deletes the lblc and lblcr entries of the given services or
// naming the given servers.
func (e *Engine) purgeLBLC(svcs, dests []uint32) error {
	svc, dest := map[uint32]bool{}, map[uint32]bool{}
	for _, id := range svcs {
		svc[id] = true
	}
	for _, id := range dests {
		dest[id] = true
	}
	var k bpf.LBLCKey
	var v bpf.LBLC
	var gone []bpf.LBLCKey
	it := e.objs.Lblc.Iterate()
	for it.Next(&k, &v) {
		if svc[k.Svc] || dest[v.Dest] {
			gone = append(gone, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range gone {
		e.objs.Lblc.Delete(&k)
	}
	gone = gone[:0]
	var vr bpf.LBLCR
	rit := e.objs.Lblcr.Iterate()
	for rit.Next(&k, &vr) {
		hit := svc[k.Svc]
		for i := range min(int(vr.N), len(vr.Dests)) {
			hit = hit || dest[vr.Dests[i]]
		}
		if hit {
			gone = append(gone, k)
		}
	}
	if err := rit.Err(); err != nil {
		return err
	}
	for _, k := range gone {
		e.objs.Lblcr.Delete(&k)
	}
	return nil
}
