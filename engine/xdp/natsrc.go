package xdp

import (
	"gvs/bpf"
	"gvs/model"
)

// natSrcBit is bpf/gvs.h's gvs_natsrc_bit: the filter bit of an IPv4
// address word as the maps store it.
func natSrcBit(addr uint32) uint32 { return (addr * 2654435761) >> 16 }

// writeNATSources sets the reply filter (nat_srcs) to the addresses of
// every NAT/FULLNAT server the engine holds an id for, retired ones too
// (their connections' replies still come). It runs before a service's
// new list is published, so a new server's replies find their bit. e.mu
// is held.
func (e *Engine) writeNATSources() error {
	var f bpf.NATSrc
	for _, ids := range e.destIDs {
		for _, id := range ids {
			if m := e.dmem.method(id); m == model.Masq || m == model.FullNAT {
				bit := natSrcBit(e.dmem.addr4(id))
				f.Bits[bit>>6] |= 1 << (bit & 63)
			}
		}
	}
	if e.natSrcs != nil && *e.natSrcs == f {
		return nil
	}
	if err := e.objs.NatSrcs.Put(uint32(0), &f); err != nil {
		return err
	}
	e.natSrcs = &f
	return nil
}
