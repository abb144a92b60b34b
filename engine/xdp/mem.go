package xdp

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gvs/model"
)

// Offsets in struct gvs_dest (bpf/gvs.h); an array map element takes the
// value size rounded up to 8 bytes.
const (
	destOffFlags   = 32
	destOffActive  = 36
	destOffInact   = 40
	destOffPersist = 44
)

// destMem is the `dests` array mapped into gvsd, so counts and flags are
// changed with the same atomic instructions BPF uses, never by rewriting a
// whole value under a running program.
type destMem struct {
	b      []byte
	stride int
}

func mapDests(m *ebpf.Map) (*destMem, error) {
	stride := (int(m.ValueSize()) + 7) &^ 7
	size := stride * int(m.MaxEntries())
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the dests array: %w", err)
	}
	return &destMem{b: b, stride: stride}, nil
}

func (m *destMem) close() { unix.Munmap(m.b) }

func (m *destMem) word(id uint32, off int) *int32 {
	return (*int32)(unsafe.Pointer(&m.b[int(id)*m.stride+off]))
}

// unbind is model.Server.Unbind on a BPF destination.
func (m *destMem) unbind(id uint32, template, inactive bool) {
	if int(id) >= len(m.b)/m.stride {
		return // GVS_DEST_NONE: an entry reserved, never bound
	}
	switch {
	case template:
		atomic.AddInt32(m.word(id, destOffPersist), -1)
	case inactive:
		atomic.AddInt32(m.word(id, destOffInact), -1)
	default:
		atomic.AddInt32(m.word(id, destOffActive), -1)
	}
	base := int(id) * m.stride
	total := int64(atomic.LoadInt32(m.word(id, destOffActive))) + int64(atomic.LoadInt32(m.word(id, destOffInact)))
	u := int64(binary.LittleEndian.Uint32(m.b[base+24:]))
	l := int64(binary.LittleEndian.Uint32(m.b[base+28:]))
	var clear bool
	switch {
	case l != 0:
		clear = total < l
	case u != 0:
		clear = total*4 < u*3
	default:
		clear = true
	}
	if clear {
		m.setFlags(id, 0, overFlag)
	}
}

// setFlags sets and clears flag bits atomically.
func (m *destMem) setFlags(id uint32, set, clr uint32) {
	p := (*uint32)(unsafe.Pointer(m.word(id, destOffFlags)))
	for {
		old := atomic.LoadUint32(p)
		nv := old&^clr | set
		if nv == old || atomic.CompareAndSwapUint32(p, old, nv) {
			return
		}
	}
}

// writeConfig writes a server's configuration fields (not its counts or
// flags) in place.
func (m *destMem) writeConfig(id uint32, d *model.Server, ifindex uint32, mac []byte) {
	base := int(id) * m.stride
	b := m.b[base : base+m.stride]
	w := addrWords(d.Addr)
	for i := range w {
		binary.LittleEndian.PutUint32(b[4*i:], w[i])
	}
	binary.LittleEndian.PutUint16(b[16:], htons(d.Port))
	b[18] = uint8(d.Method)
	b[19] = uint8(model.FamilyOf(d.Addr))
	binary.LittleEndian.PutUint32(b[20:], uint32(d.Weight))
	binary.LittleEndian.PutUint32(b[24:], d.UThreshold)
	binary.LittleEndian.PutUint32(b[28:], d.LThreshold)
	binary.LittleEndian.PutUint32(b[48:], ifindex)
	copy(b[52:58], mac)
}

// method reads a server's forwarding method.
func (m *destMem) method(id uint32) model.Method {
	if int(id) >= len(m.b)/m.stride {
		return model.Local
	}
	return model.Method(m.b[int(id)*m.stride+18])
}

// addr reads a server's IPv4 address word, as gvs.h stores it.
func (m *destMem) addr4(id uint32) uint32 {
	if int(id) >= len(m.b)/m.stride {
		return 0
	}
	return binary.LittleEndian.Uint32(m.b[int(id)*m.stride:])
}

// addrWords reads a server's address, four words as gvs.h stores it.
func (m *destMem) addrWords(id uint32) [4]uint32 {
	var w [4]uint32
	if int(id) >= len(m.b)/m.stride {
		return w
	}
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(m.b[int(id)*m.stride+4*i:])
	}
	return w
}

// natSrcWord is the word the reply filter hashes for a server: its IPv4
// address, or an IPv6 address folded (fold6 of bpf/v6.h).
func (m *destMem) natSrcWord(id uint32) uint32 {
	w := m.addrWords(id)
	if m.family(id) == 6 {
		return w[0] ^ w[1] ^ w[2] ^ w[3]
	}
	return w[0]
}

// uThreshold reads a server's current upper threshold.
func (m *destMem) uThreshold(id uint32) uint32 {
	return binary.LittleEndian.Uint32(m.b[int(id)*m.stride+24:])
}

// counts reads a server's active, inactive and persistent counts.
func (m *destMem) counts(id uint32) (active, inact, persist int) {
	return int(atomic.LoadInt32(m.word(id, destOffActive))), int(atomic.LoadInt32(m.word(id, destOffInact))),
		int(atomic.LoadInt32(m.word(id, destOffPersist)))
}

// flags reads a server's flags.
func (m *destMem) flags(id uint32) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(m.word(id, destOffFlags))))
}

// busy says whether connections or templates still count on a server.
func (m *destMem) busy(id uint32) bool {
	a, i, p := m.counts(id)
	return a != 0 || i != 0 || p != 0
}

// family reads a server's address family: 0 for an id not in use (never
// written, or cleaned when it was released).
func (m *destMem) family(id uint32) uint8 { return m.b[int(id)*m.stride+19] }

// clear zeroes a released server's entry, its family last.
func (m *destMem) clear(id uint32) {
	for _, off := range []int{destOffActive, destOffInact, destOffPersist, destOffFlags} {
		atomic.StoreInt32(m.word(id, off), 0)
	}
	b := m.b[int(id)*m.stride : (int(id)+1)*m.stride]
	for i := range b {
		if i != 19 {
			b[i] = 0
		}
	}
	b[19] = 0
}
