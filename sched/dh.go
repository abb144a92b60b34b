package sched

import (
	"net/netip"
	"time"

	"gvs/model"
)

// tableSize256 is IP_VS_DH_TAB_SIZE and IP_VS_SH_TAB_SIZE (8 bits).
const tableSize256 = 256

// destHash is ip_vs_dh.c: a 256-bucket table filled round-robin from the
// list (every server one bucket per turn, whatever its weight), indexed by
// hash_32 of the packet's destination address.
type destHash struct {
	table [tableSize256]*model.Server
}

func (*destHash) Name() string { return "dh" }

func (h *destHash) init(svc *Service) { h.Update(svc, Change{}) }

func (h *destHash) Update(svc *Service, _ Change) {
	list := svc.Servers
	for i := range h.table {
		if len(list) == 0 {
			h.table[i] = nil
		} else {
			h.table[i] = list[i%len(list)]
		}
	}
}

func (h *destHash) Schedule(_ *Service, p Packet, _ time.Time) *model.Server {
	d := h.table[DHBucket(p.Dst)]
	if d == nil || !d.Available || !d.Usable() {
		return nil
	}
	return d
}

// DHBucket is the dh table bucket of a destination address
// (ip_vs_dh_hashkey). The XDP engine uses it to check its own hashing.
func DHBucket(dst netip.Addr) uint32 {
	return hash32(foldAddr(dst), 8)
}
