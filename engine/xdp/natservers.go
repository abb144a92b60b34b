package xdp

import (
	"gvs/bpf"
	"gvs/ipvs"
	"gvs/model"
)

// nat_servers answers ip_vs_has_real_service for the data path's
// nat_icmp_send: is a packet's source address and port a NAT (masq)
// server of a service of its protocol. It holds a key {server address,
// port, the service's protocol} for every masq server in the model, the
// value counting the services that list it. FULLNAT servers are left
// out, as the kernel leaves out all but masq: their replies go to the
// director's own addresses, which the data path never answers.
type natServers struct {
	loaded bool                              // the pinned map was emptied once
	of     map[model.ServiceKey][]bpf.SvcKey // each service's keys
	refs   map[bpf.SvcKey]uint32
}

func natServerKey(proto model.Protocol, d *model.Server) (bpf.SvcKey, bool) {
	if d.Method != model.Masq {
		return bpf.SvcKey{}, false
	}
	return bpf.SvcKey{Addr: addrWords(d.Addr), Port: htons(d.Port), Proto: uint8(proto), Af: uint8(model.FamilyOf(d.Addr))}, true
}

// syncNATServers makes nat_servers hold service k's masq servers as s
// (nil: deleted) has them. It runs when the service's maps are written
// (syncLocked); a failure is logged, not returned: the map serves an
// off-by-default sysctl only. e.mu is held.
func (e *Engine) syncNATServers(k model.ServiceKey, s *ipvs.Service) {
	if err := e.writeNATServers(k, s); err != nil {
		e.log.Warn("writing nat_servers (nat_icmp_send)", "service", k, "err", err)
	}
}

func (e *Engine) writeNATServers(k model.ServiceKey, s *ipvs.Service) error {
	n := &e.natServers
	if !n.loaded {
		// A restarted gvsd rebuilds the map from the services it
		// writes: what an earlier one left goes first.
		var key bpf.SvcKey
		var v uint32
		var stale []bpf.SvcKey
		for it := e.objs.NatServers.Iterate(); it.Next(&key, &v); {
			stale = append(stale, key)
		}
		for i := range stale {
			if err := e.objs.NatServers.Delete(&stale[i]); err != nil && !isNotExist(err) {
				return err
			}
		}
		n.of = map[model.ServiceKey][]bpf.SvcKey{}
		n.refs = map[bpf.SvcKey]uint32{}
		n.loaded = true
	}
	var keys []bpf.SvcKey
	if s != nil {
		seen := map[bpf.SvcKey]bool{}
		for _, d := range s.Servers() {
			if key, ok := natServerKey(k.Protocol, d); ok && !seen[key] {
				seen[key] = true
				keys = append(keys, key)
			}
		}
	}
	// The counts first, then the map: each key touched is written as
	// its count now says (a failed write is put right by the next sync
	// that touches the key).
	old := n.of[k]
	for _, key := range keys {
		n.refs[key]++
	}
	for _, key := range old {
		if n.refs[key]--; n.refs[key] == 0 {
			delete(n.refs, key)
		}
	}
	if len(keys) == 0 {
		delete(n.of, k)
	} else {
		n.of[k] = keys
	}
	var first error
	for _, key := range append(keys, old...) {
		var err error
		if c, ok := n.refs[key]; ok {
			err = e.objs.NatServers.Put(&key, c)
		} else if err = e.objs.NatServers.Delete(&key); isNotExist(err) {
			err = nil
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}
