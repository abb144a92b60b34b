package xdp

import (
	"fmt"
	"net/netip"

	"gvs/bpf"
	"gvs/ipvs"
	"gvs/model"
)

// Source allow lists. A service with a list has GVS_SVC_F_ALLOWLIST in
// its services value, and its prefixes in the allow LPM trie under its
// id; BPF drops a new connection from a source the trie does not cover
// for the service (event "denied"). The trie holds only what the rules
// have: entries go in before the flag is set, and come out after it is
// cleared or the service is gone, so no moment refuses an allowed client
// (while a list is replaced, the old and the new one both admit).

const (
	allowFlag = 0x1000 // GVS_SVC_F_ALLOWLIST
	// sloppyFlag: any TCP packet but a RST may start a connection
	// (model.Service.SloppyTCP).
	sloppyFlag = 0x2000 // GVS_SVC_F_SLOPPY
	// allowMax is the allow map's max_entries (bpf/maps.h): every
	// service's entries together.
	allowMax = 65536
)

// allowKey is prefix p's key in the allow map for service id: the id,
// then the address (network byte order), prefixlen counting both.
func allowKey(id uint32, p netip.Prefix) bpf.AllowKey {
	return bpf.AllowKey{Prefixlen: 32 + uint32(p.Bits()), Svc: id, Addr: addrWords(p.Masked().Addr())}
}

// SetAllow implements engine.Rules: the model takes the list, then the
// service's maps are brought up to date (its scheduler keeps its state,
// as for -E).
func (e *Engine) SetAllow(k model.ServiceKey, l []netip.Prefix) error {
	if err := e.Table.SetAllow(k, l); err != nil {
		return err
	}
	return e.sync(k, change{kind: chService})
}

// allowKeys is service s's list as allow map keys for id.
func allowKeys(id uint32, s *ipvs.Service) map[bpf.AllowKey]bool {
	want := make(map[bpf.AllowKey]bool, len(s.Allow()))
	for _, p := range s.Allow() {
		want[allowKey(id, p)] = true
	}
	return want
}

// writeAllow puts the entries of service s's list (id id) that the map
// lacks, and sets the flag in sv, the service value about to be written,
// when s has a list. Entries the list no longer has stay until
// pruneAllow, after sv is written. e.mu is held.
func (e *Engine) writeAllow(id uint32, s *ipvs.Service, sv *bpf.Svc) error {
	want := allowKeys(id, s)
	have := e.allowed[id]
	total := len(want)
	for sid, m := range e.allowed {
		if sid != id {
			total += len(m)
		}
	}
	if total > allowMax {
		return &model.Error{Errno: 28 /* ENOSPC */, Msg: fmt.Sprintf("the xdp engine holds at most %d allow list entries, all services together", allowMax)}
	}
	for k := range want {
		if have[k] {
			continue
		}
		if err := e.objs.Allow.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("allow list of %s: %w", s.Config.ServiceKey, err)
		}
		if e.allowed == nil {
			e.allowed = map[uint32]map[bpf.AllowKey]bool{}
		}
		if e.allowed[id] == nil {
			e.allowed[id] = map[bpf.AllowKey]bool{}
		}
		e.allowed[id][k] = true
	}
	if len(want) > 0 {
		sv.Flags |= allowFlag
	}
	return nil
}

// pruneAllow deletes the entries of id that service s's list no longer
// has (all of them without a list), once the service value without them
// (or without the flag) is written. e.mu is held.
func (e *Engine) pruneAllow(id uint32, s *ipvs.Service) error {
	if len(e.allowed[id]) == 0 {
		return nil
	}
	return e.deleteAllow(id, allowKeys(id, s))
}

// dropAllow deletes the entries of service k, once its service value is
// gone. e.mu is held.
func (e *Engine) dropAllow(k model.ServiceKey) error {
	id, ok := e.svcIDs[k]
	if !ok {
		return nil
	}
	return e.deleteAllow(id, nil)
}

// deleteAllow deletes the entries of id not in keep.
func (e *Engine) deleteAllow(id uint32, keep map[bpf.AllowKey]bool) error {
	for k := range e.allowed[id] {
		if keep[k] {
			continue
		}
		if err := e.objs.Allow.Delete(&k); err != nil && !isNotExist(err) {
			return fmt.Errorf("allow list of service id %d: %w", id, err)
		}
		delete(e.allowed[id], k)
	}
	if len(e.allowed[id]) == 0 {
		delete(e.allowed, id)
	}
	return nil
}

// recoverAllow reads the allow map a previous gvsd left (after
// recoverIDs). The entries of a service in the maps are kept: the
// restored rules' sync replaces them with the service's list, or
// Reconcile deletes them with the service, and until then the service
// admits whom it did. Those of any other id (a deleted service, which
// takes no new connection, or a gvsd stopped half-way) are deleted now.
func (e *Engine) recoverAllow() error {
	e.allowed = map[uint32]map[bpf.AllowKey]bool{}
	var k bpf.AllowKey
	var v uint8
	it := e.objs.Allow.Iterate()
	for it.Next(&k, &v) {
		if e.allowed[k.Svc] == nil {
			e.allowed[k.Svc] = map[bpf.AllowKey]bool{}
		}
		e.allowed[k.Svc][k] = true
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading the allow map: %w", err)
	}
	for id := range e.allowed {
		if _, live := e.svcKeys[id]; live && !e.svcPool.isRetired(id) {
			continue
		}
		if err := e.deleteAllow(id, nil); err != nil {
			return err
		}
	}
	return nil
}
