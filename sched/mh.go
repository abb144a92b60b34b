package sched

import (
	"math/bits"
	"net/netip"
	"time"

	"gvs/model"
)

// mhPrimes are the Maglev table sizes selectable with CONFIG_IP_VS_MH_TAB_INDEX.
var mhPrimes = [...]int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

// The kernel's fixed hash secrets (generate_hash_secret).
var (
	mhKey1 = hsipKey{2654435761, 2654435761}
	mhKey2 = hsipKey{2654446892, 2654446892}
)

// maglev is ip_vs_mh.c: Maglev consistent hashing. Each server with a
// non-zero last weight gets a permutation of the table (offset and skip
// from two hashes of its address and port) and claims, in list order,
// weight/gcd (shifted to fit) consecutive free slots of it per round.
// Servers quiesced to weight 0 keep their slots (their last weight counts)
// so lookups for everyone else do not move.
type maglev struct {
	size  int
	bits  int // IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2
	table []*model.Server
}

func newMaglev(index int) *maglev {
	size := mhPrimes[index-8]
	return &maglev{size: size, bits: index / 2, table: make([]*model.Server, size)}
}

func (*maglev) Name() string { return "mh" }

func (m *maglev) init(svc *Service) { m.Update(svc, Change{}) }

// Size is the table size.
func (m *maglev) Size() int { return m.size }

func mhKey(a netip.Addr, port uint16, k hsipKey, offset uint32) uint32 {
	return hsiphash32(offset+uint32(port)+foldAddr(a), k)
}

func (m *maglev) Update(svc *Service, _ Change) {
	list := svc.Servers
	g := gcdWeight(list, func(s *model.Server) int32 { return s.LastWeight })
	if g < 1 || len(list) > m.size {
		clear(m.table)
		return
	}
	var mw int32
	for _, s := range list {
		mw = max(mw, s.LastWeight)
	}
	shift := bits.Len32(uint32(mw/g)) - m.bits
	shift = max(shift, 0)

	type setup struct{ perm, skip, turns int }
	ds := make([]setup, len(list))
	for i, s := range list {
		off := int(mhKey(s.Addr, s.Port, mhKey1, 0) % uint32(m.size))
		skip := int(mhKey(s.Addr, s.Port, mhKey2, 0)%uint32(m.size-1)) + 1
		turns := int((s.LastWeight / g) >> shift)
		if turns == 0 && s.LastWeight != 0 {
			turns = 1
		}
		ds[i] = setup{perm: off, skip: skip, turns: turns}
	}
	taken := make([]bool, m.size)
	n, count := 0, 0
	for n < m.size {
		for i := 0; i < len(list); {
			if ds[i].turns < 1 {
				i++
				continue
			}
			c := ds[i].perm
			for taken[c] {
				ds[i].perm += ds[i].skip
				if ds[i].perm >= m.size {
					ds[i].perm -= m.size
				}
				c = ds[i].perm
			}
			taken[c] = true
			m.table[c] = list[i]
			if n++; n == m.size {
				return
			}
			if count++; count >= ds[i].turns {
				count = 0
				i++
			}
		}
	}
}

// MHBucket is the Maglev table index of an address and port
// (ip_vs_mh_hashkey with offset 0, modulo the table size).
func MHBucket(a netip.Addr, port uint16, size int) uint32 {
	return mhKey(a, port, mhKey1, 0) % uint32(size)
}

func (m *maglev) Schedule(svc *Service, p Packet, _ time.Time) *model.Server {
	var port uint16
	if svc.Flags&model.FlagMHPort != 0 {
		switch p.Protocol {
		case model.ProtoTCP, model.ProtoUDP, model.ProtoSCTP:
			port = p.SrcPort
		}
	}
	size := uint32(m.size)
	ihash := MHBucket(p.Src, port, m.size)
	d := m.table[ihash]
	if svc.Flags&model.FlagMHFallback == 0 {
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
	for offset := uint32(0); offset < size; offset++ {
		roffset := (offset + ihash) % size
		d = m.table[mhKey(p.Src, port, mhKey1, roffset)%size]
		if d == nil {
			break
		}
		if d.Usable() {
			return d
		}
	}
	return nil
}
