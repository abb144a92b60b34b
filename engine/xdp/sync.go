package xdp

import (
	"errors"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
	"gvs/ipvs"
	"gvs/model"
	"gvs/sched"
)

// Mirrors of gvs.h's sizes.
const (
	hashSlots  = 256  // GVS_HASH_SLOTS
	hashTable  = 256  // GVS_HASH_TABLE
	mhSlots    = 64   // GVS_MH_SLOTS
	mhTable    = 4093 // GVS_MH_TABLE
	svcDests   = bpf.SvcDests
	destNone   = 0xffffffff
	noSlot     = 0xffffffff
	availFlag  = 0x1 // GVS_DEST_F_AVAILABLE
	overFlag   = 0x2 // GVS_DEST_F_OVERLOAD
	resolveFor = time.Second
	// Id spaces of gvs.h (GVS_MAX_SERVICES, GVS_MAX_DESTS); ids come back
	// once nothing names them (ids.go).
	maxServices = 131072
	maxDests    = 131072
)

var errNoIDs = &model.Error{Errno: 28 /* ENOSPC */, Msg: "the xdp engine has no free service or server id (131072 of each; those of deleted ones come back when their connections are gone)"}

// slots hands out rows of the dh/sh or mh table maps.
type slots struct {
	of   map[model.ServiceKey]uint32
	free []uint32
}

func newSlots(n int) slots {
	s := slots{of: map[model.ServiceKey]uint32{}}
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, uint32(i))
	}
	return s
}

func (s *slots) get(k model.ServiceKey) (uint32, bool) {
	if i, ok := s.of[k]; ok {
		return i, true
	}
	if len(s.free) == 0 {
		return noSlot, false
	}
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.of[k] = i
	return i, true
}

// reserve records a slot a previous gvsd gave k.
func (s *slots) reserve(k model.ServiceKey, i uint32) {
	for j, f := range s.free {
		if f == i {
			s.free = append(s.free[:j], s.free[j+1:]...)
			s.of[k] = i
			return
		}
	}
}

func (s *slots) release(k model.ServiceKey) {
	if i, ok := s.of[k]; ok {
		delete(s.of, k)
		s.free = append(s.free, i)
	}
}

// changeKind says what changed in a service, for its scheduler state.
type changeKind uint8

const (
	chReplace    changeKind = iota // new, deleted, or rebuilt by a batch
	chAdded                        // a server added at the list head
	chRemoved                      // the server at index removed
	chDestEdited                   // a server's weight or thresholds
	chService                      // the service's settings
)

type change struct {
	kind  changeKind
	index int  // chRemoved
	reset bool // chService: a new scheduler
}

// sync makes the maps hold service k as the model has it, after change ch;
// inside a batch it only notes the service.
func (e *Engine) sync(k model.ServiceKey, ch change) (err error) {
	if e.batching {
		e.dirty[k] = true
		return nil
	}
	e.Do(func(v *ipvs.IPVS) {
		err = e.syncLocked(v, k, ch)
		if k.IsFWMark() {
			err = errors.Join(err, e.steerFwmark(v))
		}
	})
	return err
}

// Batch runs a batch of operations on the model and then writes each
// service it touched once, complete: a restart's replay or a -R never
// shows traffic a service with part of its servers. A batch resets the rr
// and wrr positions of the services it changes.
func (e *Engine) Batch(run func() error) error {
	e.batching = true
	err := run()
	e.batching = false
	dirty := e.dirty
	e.dirty = map[model.ServiceKey]bool{}
	// One lock for the whole batch: the tick would otherwise take the
	// table between every two services. The services' values and
	// scheduler states go to the maps in batches of pendingMax (see
	// pending).
	e.Do(func(v *ipvs.IPVS) {
		fwm := false
		e.pend = &pending{}
		defer func() { e.pend = nil }()
		for k := range dirty {
			if serr := e.syncLocked(v, k, change{kind: chReplace}); serr != nil && err == nil {
				err = serr
			}
			fwm = fwm || k.IsFWMark()
			if len(e.pend.svcKeys) >= pendingMax {
				if serr := e.flushPending(); serr != nil && err == nil {
					err = serr
				}
			}
		}
		if serr := e.flushPending(); serr != nil && err == nil {
			err = serr
		}
		if fwm {
			if ferr := e.steerFwmark(v); ferr != nil && err == nil {
				err = ferr
			}
		}
	})
	return err
}

// pendingMax is how many services a batch writes per map update call.
const pendingMax = 1024

// pending holds what syncLocked leaves for flushPending inside a batch:
// each service's scheduler state and value (written with one batch
// update per map instead of two system calls per service), and the work
// that must follow its value (retiring the servers that left its list,
// pruning its allow entries). Set and read under the table lock.
type pending struct {
	schedIDs []uint32
	scheds   []bpf.SchedState
	svcKeys  []bpf.SvcKey
	svcs     []bpf.Svc
	after    []pendingSvc
}

type pendingSvc struct {
	k    model.ServiceKey
	id   uint32
	s    *ipvs.Service
	live map[uint32]bool
	list uint32   // the value's list id
	ids  []uint32 // its server ids
}

// flushPending writes the pending scheduler states, then the services'
// values, then retires and prunes what they no longer name: per service,
// the order syncLocked keeps outside a batch.
func (e *Engine) flushPending() error {
	p := e.pend
	err := batchPut(e.objs.SchedState, p.schedIDs, p.scheds)
	if err == nil {
		err = batchPut(e.objs.Services, p.svcKeys, p.svcs)
	}
	// On an error, some values may have been written (batchPut's one by
	// one): their new lists stay until a restart's recoverLists.
	if err == nil {
		e.mu.Lock()
		for _, w := range p.after {
			e.commitList(w.id, w.list, w.ids)
			e.retireDests(w.k, w.live)
			if perr := e.pruneAllow(w.id, w.s); perr != nil && err == nil {
				err = perr
			}
		}
		e.mu.Unlock()
	}
	*p = pending{schedIDs: p.schedIDs[:0], scheds: p.scheds[:0], svcKeys: p.svcKeys[:0], svcs: p.svcs[:0], after: p.after[:0]}
	return err
}

// batchPut writes keys[i] = vals[i] with one batch update, or one by
// one where the kernel cannot batch (a failed batch may have written a
// part: writing it again is harmless).
func batchPut[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err == nil {
		return nil
	}
	for i := range keys {
		if err := m.Put(&keys[i], &vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) syncLocked(v *ipvs.IPVS, k model.ServiceKey, ch change) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pullStale = true // ids may change
	s := v.Service(k)
	defer e.syncNATServers(k, s) // nat_servers, once the service is written: natservers.go
	live := map[uint32]bool{}
	if s == nil {
		if err := e.objs.Services.Delete(svcKey(k)); err != nil && !isNotExist(err) {
			return err
		}
		if id, ok := e.svcIDs[k]; ok {
			e.dropSvcList(id)
		}
		e.hashSlots.release(k)
		e.mhSlots.release(k)
		delete(e.seen, k)
		if id, ok := e.svcIDs[k]; ok {
			e.svcPool.retire(id, e.passes)
		}
		e.retireDests(k, live)
		return e.dropAllow(k) // after the service value: allow.go
	}
	cfg := s.Config
	servers := s.Servers()
	if len(servers) > svcDests {
		return &model.Error{Errno: 28 /* ENOSPC */, Msg: "the xdp engine takes at most 1024 servers per service"}
	}
	id, err := e.svcID(k)
	if err != nil {
		return err
	}
	e.svcMeta[id] = metaOf(k, cfg.Netmask)
	if k.IsFWMark() { // others' entries are 0 from cleanSvc on
		if err := e.objs.SvcFwmark.Put(id, k.FWMark); err != nil {
			return err
		}
	}
	sv := bpf.Svc{Id: id, Flags: uint32(cfg.Flags), Sched: schedIndex[cfg.Scheduler], Timeout: cfg.Timeout,
		Netmask: cfg.Netmask, TableSlot: noSlot}
	dids := make([]uint32, len(servers))
	sv.Nladdrs = uint32(copyLocalAddrs(&sv.Laddrs, s))
	if err := e.writeLaddrs4(id, k, s); err != nil { // before the list names its servers
		return err
	}
	if cfg.SloppyTCP() {
		sv.Flags |= sloppyFlag
	}
	ids := map[*model.Server]uint32{}
	for i, d := range servers {
		did, err := e.destID(k, d.AddrPort())
		if err != nil {
			return err
		}
		if err := e.writeDest(did, d); err != nil {
			return err
		}
		dids[i] = did
		ids[d] = did
		live[did] = true
	}
	if err := e.writeSchedState(id, k, servers, ch); err != nil {
		return err
	}
	if table := sched.BucketTable(s.Scheduler()); table != nil {
		sl, size, m := &e.hashSlots, hashTable, e.objs.HashTables
		if cfg.Scheduler == "mh" {
			sl, size, m = &e.mhSlots, mhTable, e.objs.MhTables
		}
		slot, ok := sl.get(k)
		if !ok {
			return &model.Error{Errno: 28, Msg: "the xdp engine has no free " + cfg.Scheduler + " table for another service"}
		}
		keys := make([]uint32, size)
		vals := make([]uint32, size)
		for i := range keys {
			keys[i] = slot*uint32(size) + uint32(i)
			vals[i] = destNone
			if i < len(table) && table[i] != nil {
				vals[i] = ids[table[i]]
			}
		}
		if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
			for i := range keys {
				if err := m.Put(keys[i], vals[i]); err != nil {
					return err
				}
			}
		}
		sv.TableSlot = slot
	}
	if cfg.Scheduler != "dh" && cfg.Scheduler != "sh" {
		e.hashSlots.release(k)
	}
	if cfg.Scheduler != "mh" {
		e.mhSlots.release(k)
	}
	if err := e.addNATSources(dids); err != nil {
		return err
	}
	if err := e.writeAllow(id, s, &sv); err != nil { // entries, then the flag: allow.go
		return err
	}
	fresh, err := e.writeList(id, &sv, dids) // the chunks, before the value
	if err != nil {
		return err
	}
	if e.pend != nil {
		e.pend.svcKeys = append(e.pend.svcKeys, svcKey(k))
		e.pend.svcs = append(e.pend.svcs, sv)
		e.pend.after = append(e.pend.after, pendingSvc{k: k, id: id, s: s, live: live, list: sv.List, ids: dids})
		return nil
	}
	if err := e.objs.Services.Put(svcKey(k), &sv); err != nil {
		if fresh {
			e.dropList(sv.List, len(dids))
		}
		return err
	}
	e.commitList(id, sv.List, dids)
	// Only now is no server that left the list in BPF's copy of it.
	e.retireDests(k, live)
	return e.pruneAllow(id, s)
}

// writeDest writes a server's configuration in place, leaving the counts
// BPF maintains alone, and sets it available; new thresholds clear the
// overload flag as __ip_vs_update_dest does.
func (e *Engine) writeDest(id uint32, d *model.Server) error {
	var ifindex uint32
	var mac []byte
	switch d.Method {
	case model.Route, model.Tunnel, model.Masq, model.FullNAT:
		// The next hop toward the server, resolved by the kernel. DR:
		// the server itself, on the segment. TUN, NAT, FULLNAT: the
		// server or its gateway; BPF uses it instead of a FIB lookup per
		// packet, and asks the FIB while it is unknown.
		h, ok := e.hops[id]
		if !ok {
			var err error
			if h, err = e.hopOf(d.Addr, d.Method != model.Route); err == nil {
				e.hops[id] = h
				ok = true
			}
		}
		if ok && e.ifaceKnown(h.ifindex) {
			ifindex, mac = uint32(h.ifindex), h.mac
		}
	}
	clear := uint32(0)
	if d.UThreshold == 0 || d.UThreshold > e.dmem.uThreshold(id) {
		clear = overFlag
	}
	e.dmem.writeConfig(id, d, ifindex, mac)
	e.dmem.setFlags(id, availFlag, clear)
	return nil
}

// writeSchedState keeps rr's position on the same server across list
// changes and recomputes wrr's parameters as ip_vs_wrr_dest_changed.
func (e *Engine) writeSchedState(id uint32, k model.ServiceKey, servers []*model.Server, ch change) error {
	var st bpf.SchedState
	reset := !e.seen[k] || ch.kind == chReplace || ch.kind == chService && ch.reset
	if !reset { // a reset rewrites every field: no need to read them
		if err := e.objs.SchedState.Lookup(id, &st); err != nil {
			return err
		}
	}
	switch {
	case reset:
		st.RrLast = -1
		st.WrrCw = 0
		e.seen[k] = true
	case ch.kind == chService:
		return nil // same scheduler: ip_vs_edit_service leaves its state
	case ch.kind == chAdded && st.RrLast >= 0:
		st.RrLast++
	case ch.kind == chRemoved && ch.index >= 0:
		if st.RrLast >= int32(ch.index) {
			st.RrLast--
		}
	}
	st.WrrCw, st.WrrMw, st.WrrDi = sched.WRRUpdate(st.WrrCw, servers)
	st.WrrCl = -1
	st.Used = 1
	if e.pend != nil {
		e.pend.schedIDs = append(e.pend.schedIDs, id)
		e.pend.scheds = append(e.pend.scheds, st)
		return nil
	}
	return e.objs.SchedState.Put(id, &st)
}

// Reconcile removes from the maps the services a previous gvsd left pinned
// that the restored rules do not have (rules saved elsewhere, say), so
// nothing forwards that -L does not show.
func (e *Engine) Reconcile() (err error) {
	e.Do(func(v *ipvs.IPVS) {
		var stale []model.ServiceKey
		e.mu.Lock()
		for k, id := range e.svcIDs {
			if v.Service(k) == nil && !e.svcPool.isRetired(id) {
				stale = append(stale, k)
			}
		}
		e.mu.Unlock()
		for _, k := range stale {
			if serr := e.syncLocked(v, k, change{kind: chReplace}); serr != nil && err == nil {
				err = serr
			}
			e.log.Info("removed a service the saved rules do not have", "service", k.String())
		}
	})
	return err
}

// copyLocalAddrs fills a service's FULLNAT local address pool and
// returns its size: IPv4 addresses one word each, IPv6 ones four words
// each (at most maxLocalAddrs6). An IPv6 service's IPv4 addresses (for
// its NAT64 servers) are in laddrs4 instead (writeLaddrs4).
func copyLocalAddrs(dst *[16]uint32, s *ipvs.Service) int {
	n := 0
	v6 := s.Config.Family == model.IPv6
	for _, a := range s.LocalAddrs() {
		switch {
		case a.Is4() && !v6 && n < len(dst):
			dst[n] = addrWords(a)[0]
			n++
		case a.Is6() && n < maxLocalAddrs6:
			w := addrWords(a)
			copy(dst[4*n:4*n+4], w[:])
			n++
		}
	}
	return n
}

// writeLaddrs4 writes an IPv6 service's IPv4 FULLNAT local addresses, the
// source toward its IPv4 servers (NAT64, bpf/nat64.h), in laddrs4 under
// its id; without any, the entry goes (the data path takes the route's
// source toward the server).
func (e *Engine) writeLaddrs4(id uint32, k model.ServiceKey, s *ipvs.Service) error {
	if k.Family != model.IPv6 {
		// Only IPv6 services have an entry (cleanSvc deletes it before
		// an id serves another service): no delete per IPv4 service,
		// which took 0.37 s of CPU in a -R of 100,000.
		return nil
	}
	var pool bpf.Laddrs4
	for _, a := range s.LocalAddrs() {
		if a.Is4() && int(pool.N) < len(pool.Addrs) {
			pool.Addrs[pool.N] = addrWords(a)[0]
			pool.N++
		}
	}
	if pool.N == 0 {
		if err := e.objs.Laddrs4.Delete(id); err != nil && !isNotExist(err) {
			return err
		}
		return nil
	}
	return e.objs.Laddrs4.Put(id, &pool)
}
