package sched

import (
	"net/netip"
	"time"

	"gvs/model"
)

// sourceHash is ip_vs_sh.c: a 256-bucket table where each server in list
// order takes as many consecutive buckets as its weight (at least one, so a
// weight-0 server still holds a bucket), cycling until the table is full;
// indexed by the hash of the source address (and source port with sh-port).
type sourceHash struct {
	table [tableSize256]*model.Server
}

func (*sourceHash) Name() string { return "sh" }

func (h *sourceHash) init(svc *Service) { h.Update(svc, Change{}) }

func (h *sourceHash) Update(svc *Service, _ Change) {
	list := svc.Servers
	if len(list) == 0 {
		h.table = [tableSize256]*model.Server{}
		return
	}
	j, count := 0, int32(0)
	for i := range h.table {
		d := list[j]
		h.table[i] = d
		count++
		if count >= d.Weight {
			j = (j + 1) % len(list)
			count = 0
		}
	}
}

// SHBucket is ip_vs_sh_hashkey with offset 0.
func SHBucket(src netip.Addr, port uint16) uint32 { return shKey(src, port, 0) }

func shKey(src netip.Addr, port uint16, offset uint32) uint32 {
	return (offset + hash32(uint32(port)+foldAddr(src), 8)) % tableSize256
}

func (h *sourceHash) Schedule(svc *Service, p Packet, _ time.Time) *model.Server {
	var port uint16
	if svc.Flags&model.FlagSHPort != 0 {
		switch p.Protocol {
		case model.ProtoTCP, model.ProtoUDP, model.ProtoSCTP:
			port = p.SrcPort
		}
	}
	ihash := shKey(p.Src, port, 0)
	d := h.table[ihash]
	if svc.Flags&model.FlagSHFallback == 0 {
		if d == nil || !d.Usable() {
			return nil
		}
		return d
	}
	if d == nil {
		return nil
	}
	if d.Usable() {
		return d
	}
	// The kernel walks the table from the original bucket, hashing again
	// with the walk position as offset (so the offset counts twice).
	for offset := uint32(0); offset < tableSize256; offset++ {
		roffset := (offset + ihash) % tableSize256
		d = h.table[shKey(p.Src, port, roffset)]
		if d == nil {
			break
		}
		if d.Usable() {
			return d
		}
	}
	return nil
}
