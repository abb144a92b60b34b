package xdp

import (
	"gvs/bpf"
	"gvs/model"
)

// The reply filter (nat_srcs) holds a bit for every NAT/FULLNAT server
// address the data path may hear a reply from. Bits are only ever set
// while gvsd runs (a stray bit costs a reply-table lookup, a missing one
// loses replies); a restart rebuilds the filter from the servers then in
// the dests array, retired ones included.

// initNATSources rebuilds the filter from every id in use in the dests
// array (after recoverIDs).
func (e *Engine) initNATSources() error {
	f := &bpf.NATSrc{}
	for id := range uint32(maxDests) {
		if e.dmem.family(id) != 0 && isNAT(e.dmem.method(id)) {
			f.Set(e.dmem.natSrcWord(id))
		}
	}
	e.natSrcs = f
	return e.objs.NatSrcs.Put(uint32(0), f)
}

func isNAT(m model.Method) bool { return m == model.Masq || m == model.FullNAT }

// addNATSources sets the bits of a service's NAT servers, writing the
// filter only if one was missing. It runs before the service's new list
// is published, so a new server's replies find their bit. e.mu is held.
func (e *Engine) addNATSources(ids []uint32) error {
	if e.natSrcs == nil {
		e.natSrcs = &bpf.NATSrc{}
	}
	changed := false
	for _, id := range ids {
		if isNAT(e.dmem.method(id)) && e.natSrcs.Set(e.dmem.natSrcWord(id)) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return e.objs.NatSrcs.Put(uint32(0), e.natSrcs)
}
