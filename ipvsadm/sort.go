package ipvsadm

import (
	"net/netip"
	"slices"

	"gvs/api"
	"gvs/model"
)

// Sorting as ipvsadm does it: libipvs's ipvs_cmp_services and
// ipvs_cmp_dests, applied with glibc's qsort (a merge sort).
//
// The comparators subtract unsigned 32-bit values and read the result as
// an int, so two addresses (or marks) more than 2^31 apart compare the
// wrong way round: 200.0.0.1 sorts before 10.0.0.1. The comparison is then
// not a total order; sorting with glibc's own merge sort gives the order
// ipvsadm prints all the same.

const (
	afINET  = 2  // AF_INET
	afINET6 = 10 // AF_INET6
)

func afOf(f model.Family) int {
	switch f {
	case model.IPv4:
		return afINET
	case model.IPv6:
		return afINET6
	}
	return 0
}

// words is a union nf_inet_addr as four host-order 32-bit words: an IPv4
// address in the first, zeros after it.
func words(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return w
	}
	if !a.IsValid() {
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
	}
	return w
}

// diff is "int r = (u32)a - (u32)b".
func diff(a, b uint32) int { return int(int32(a - b)) }

func cmpAddr(af int, a, b netip.Addr) int {
	wa, wb := words(a), words(b)
	if af == afINET6 {
		r := 0
		for i := 0; r == 0 && i < 4; i++ {
			r = diff(wa[i], wb[i])
		}
		return r
	}
	return diff(wa[0], wb[0])
}

// cmpServices is ipvs_cmp_services. Firewall-mark services have protocol
// 0 and no address, as the kernel reports them.
func cmpServices(s1, s2 *api.Service) int {
	if r := diff(s1.FWMark, s2.FWMark); r != 0 {
		return r
	}
	af1, af2 := afOf(s1.Family), afOf(s2.Family)
	if r := af1 - af2; r != 0 {
		return r
	}
	p1, p2, a1, a2 := int(s1.Protocol), int(s2.Protocol), s1.Addr, s2.Addr
	if s1.IsFWMark() {
		p1, a1 = 0, netip.Addr{}
	}
	if s2.IsFWMark() {
		p2, a2 = 0, netip.Addr{}
	}
	if r := p1 - p2; r != 0 {
		return r
	}
	if r := cmpAddr(af1, a1, a2); r != 0 {
		return r
	}
	return int(s1.Port) - int(s2.Port)
}

// cmpDests is ipvs_cmp_dests: the family of the first decides how many
// words are compared.
func cmpDests(d1, d2 *api.Dest) int {
	af := afINET6
	if d1.Addr.Is4() {
		af = afINET
	}
	if r := cmpAddr(af, d1.Addr, d2.Addr); r != 0 {
		return r
	}
	return int(d1.Port) - int(d2.Port)
}

// msort is glibc's msort_with_tmp: a top-down merge sort that splits n
// into n/2 and n-n/2 and takes from the left run while cmp <= 0.
func msort[T any](b []T, cmp func(a, b *T) int) {
	if len(b) <= 1 {
		return
	}
	tmp := make([]T, len(b))
	var rec func(b []T)
	rec = func(b []T) {
		n := len(b)
		if n <= 1 {
			return
		}
		n1 := n / 2
		b1, b2 := b[:n1], b[n1:]
		rec(b1)
		rec(b2)
		t := tmp[:0]
		i, j := 0, 0
		for i < len(b1) && j < len(b2) {
			if cmp(&b1[i], &b2[j]) <= 0 {
				t = append(t, b1[i])
				i++
			} else {
				t = append(t, b2[j])
				j++
			}
		}
		t = append(t, b1[i:]...)
		t = append(t, b2[j:]...)
		copy(b, t)
	}
	rec(b)
}

func sortedServices(s []api.Service) []api.Service {
	s = slices.Clone(s)
	msort(s, cmpServices)
	return s
}

func sortedDests(d []api.Dest) []api.Dest {
	d = slices.Clone(d)
	msort(d, cmpDests)
	return d
}
