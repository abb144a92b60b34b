package xdp

import "gvs/bpf"

// refs is what one sweep pass saw in the connection and template tables:
// the service and server ids their entries name, and the services with
// controlled connections. An id the pass did not see is free of entries
// only if the pass went over every entry (complete).
type refs struct {
	svc, dest, controlled bitset
	complete              bool
}

func newRefs() *refs {
	return &refs{svc: newBitset(maxServices), dest: newBitset(maxDests), controlled: newBitset(maxServices)}
}

// reset starts a pass.
func (r *refs) reset() {
	clear(r.svc)
	clear(r.dest)
	clear(r.controlled)
	r.complete = false
}

// conn notes a connection's ids; live says it is not expired: only a
// live one still holds its service's templates (an expired one is
// removed by this very pass).
func (r *refs) conn(c *bpf.Conn, live bool) {
	r.svc.set(c.Svc)
	r.dest.set(c.Dest)
	if live && c.Flags&connControlled != 0 {
		r.controlled.set(c.Svc)
	}
}

func (r *refs) template(t *bpf.Template) {
	r.svc.set(t.Svc)
	r.dest.set(t.Dest)
}

// bitset is a set of ids.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(id uint32) {
	if int(id/64) < len(b) {
		b[id/64] |= 1 << (id % 64)
	}
}

func (b bitset) has(id uint32) bool {
	return int(id/64) < len(b) && b[id/64]&(1<<(id%64)) != 0
}
