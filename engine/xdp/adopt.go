package xdp

import (
	"cmp"
	"net/netip"
	"slices"

	"gvs/api"
	"gvs/bpf"
	"gvs/model"
)

// Pinned: the rules the pinned maps forward, as
// operations that recreate them (services with their settings, allow
// lists, servers in list order, FULLNAT local addresses). When the saved
// rules cannot be restored, gvsd adopts these, so that -L shows what the
// data path that outlived the last gvsd still does and -D or -C can stop
// it. A server's weight is the one the data path serves (health checks may
// have changed it); what the maps do not hold (health checks, sync
// daemons, sysctls) is not recovered.
func (e *Engine) Pinned() ([]api.Op, error) {
	type pinned struct {
		key model.ServiceKey
		sv  bpf.Svc
	}
	var list []pinned
	var k bpf.SvcKey
	var sv bpf.Svc
	it := e.objs.Services.Iterate()
	for it.Next(&k, &sv) {
		list = append(list, pinned{modelKey(k), sv})
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	// Oldest first, as ids are given out: the listing keeps its order
	// across the adoption as far as the ids tell it.
	slices.SortFunc(list, func(a, b pinned) int { return cmp.Compare(a.sv.Id, b.sv.Id) })

	e.mu.Lock()
	defer e.mu.Unlock()
	var ops []api.Op
	for _, p := range list {
		sv := &p.sv
		if int(sv.Sched) >= len(model.Schedulers) {
			continue // not from this gvs
		}
		s := model.Service{ServiceKey: p.key, Scheduler: model.Schedulers[sv.Sched],
			Flags:   model.ServiceFlags(sv.Flags) & (model.FlagPersistent | model.FlagOnePacket | model.FlagSched1 | model.FlagSched2 | model.FlagSched3),
			Timeout: sv.Timeout, Netmask: sv.Netmask}
		sloppy := sv.Flags&sloppyFlag != 0
		switch {
		case sloppy && s.Scheduler != "mh":
			s.Sloppy = model.SloppyOn
		case !sloppy && s.Scheduler == "mh":
			s.Sloppy = model.SloppyOff
		}
		key := model.Service{ServiceKey: p.key}
		ops = append(ops, api.Op{Op: api.AddService, Service: s})
		if sv.Flags&allowFlag != 0 {
			var allow []netip.Prefix
			for ak := range e.allowed[sv.Id] {
				allow = append(allow, netip.PrefixFrom(wordsAddr(ak.Addr, uint8(p.key.Family)), int(ak.Prefixlen)-32))
			}
			slices.SortFunc(allow, func(a, b netip.Prefix) int {
				return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
			})
			ops = append(ops, api.Op{Op: api.SetAllow, Service: key, Allow: allow})
		}
		// The list is newest first: add from its end.
		ids, err := sv.DestIDs(e.objs.SvcChunks)
		if err != nil {
			return nil, err
		}
		for i := len(ids) - 1; i >= 0; i-- {
			var d bpf.Dest
			if ids[i] >= maxDests {
				continue // a chunk missing
			}
			if err := e.objs.Dests.Lookup(ids[i], &d); err != nil {
				return nil, err
			}
			if d.Af == 0 {
				continue
			}
			ops = append(ops, api.Op{Op: api.AddDest, Service: key, Dest: model.Dest{
				Addr: wordsAddr(d.Addr, d.Af), Port: htons(d.Port), Method: model.Method(d.Method),
				Weight: d.Weight, UThreshold: d.U_threshold, LThreshold: d.L_threshold}})
		}
		if p.key.Family == model.IPv6 {
			// Four words an address (copyLocalAddrs), then the IPv4
			// ones of laddrs4 (NAT64).
			for i := range min(sv.Nladdrs, maxLocalAddrs6) {
				ops = append(ops, api.Op{Op: api.AddLocalAddr, Service: key,
					LocalAddr: wordsAddr([4]uint32(sv.Laddrs[4*i:4*i+4]), 6)})
			}
			var pool bpf.Laddrs4
			if e.objs.Laddrs4.Lookup(sv.Id, &pool) == nil {
				for i := range min(pool.N, uint32(len(pool.Addrs))) {
					ops = append(ops, api.Op{Op: api.AddLocalAddr, Service: key,
						LocalAddr: wordsAddr([4]uint32{pool.Addrs[i]}, 4)})
				}
			}
			continue
		}
		for i := range min(sv.Nladdrs, uint32(len(sv.Laddrs))) {
			ops = append(ops, api.Op{Op: api.AddLocalAddr, Service: key,
				LocalAddr: wordsAddr([4]uint32{sv.Laddrs[i]}, 4)})
		}
	}
	return ops, nil
}
