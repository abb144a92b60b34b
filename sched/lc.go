package sched

import (
	"time"

	"gvs/model"
)

// leastConn is ip_vs_lc.c: the usable server with the lowest overhead
// (active*256 + inactive); the first in list order wins ties.
type leastConn struct{ noUpdate }

func (leastConn) Name() string { return "lc" }

func (leastConn) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	var least *model.Server
	var loh int64
	for _, d := range svc.Servers {
		if !d.Usable() {
			continue
		}
		if doh := d.Overhead(); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}

// weightedLeast is the kernel's weighted-least-connection walk shared by
// wlc, sed, lblc and lblcr: the first usable server, then any later one that
// is not overloaded with overhead/weight strictly lower. A later server with
// weight 0 can never win (0 > x is false).
func weightedLeast(list []*model.Server, overhead func(*model.Server) int64) *model.Server {
	i := 0
	for ; i < len(list); i++ {
		if list[i].Usable() {
			break
		}
	}
	if i == len(list) {
		return nil
	}
	least := list[i]
	loh := overhead(least)
	for _, d := range list[i+1:] {
		if d.Overloaded {
			continue
		}
		doh := overhead(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}

// weightedLeastConn is ip_vs_wlc.c, the default scheduler.
type weightedLeastConn struct{ noUpdate }

func (weightedLeastConn) Name() string { return "wlc" }

func (weightedLeastConn) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	return weightedLeast(svc.Servers, (*model.Server).Overhead)
}

// shortestExpectedDelay is ip_vs_sed.c: like wlc but the overhead is
// active connections + 1, inactive ones ignored.
type shortestExpectedDelay struct{ noUpdate }

func (shortestExpectedDelay) Name() string { return "sed" }

func (shortestExpectedDelay) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	return weightedLeast(svc.Servers, sedOverhead)
}

func sedOverhead(s *model.Server) int64 { return int64(s.ActiveConns) + 1 }

// neverQueue is ip_vs_nq.c: an idle usable server (no active connection)
// is taken at once; otherwise sed's choice.
type neverQueue struct{ noUpdate }

func (neverQueue) Name() string { return "nq" }

func (neverQueue) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	var least *model.Server
	var loh int64
	for _, d := range svc.Servers {
		if !d.Usable() {
			continue
		}
		doh := sedOverhead(d)
		if d.ActiveConns == 0 {
			return d
		}
		if least == nil || loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}

// failover is ip_vs_fo.c: the usable server with the highest weight, the
// first in list order on ties.
type failover struct{ noUpdate }

func (failover) Name() string { return "fo" }

func (failover) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	var best *model.Server
	var hw int32
	for _, d := range svc.Servers {
		if !d.Overloaded && d.Weight > hw {
			best, hw = d, d.Weight
		}
	}
	return best
}

// overflow is ip_vs_ovf.c: the highest-weight usable server whose active
// connections do not exceed its weight.
type overflow struct{ noUpdate }

func (overflow) Name() string { return "ovf" }

func (overflow) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	var h *model.Server
	for _, d := range svc.Servers {
		w := d.Weight
		if d.Overloaded || int64(d.ActiveConns) > int64(w) || w == 0 {
			continue
		}
		if h == nil || w > h.Weight {
			h = d
		}
	}
	return h
}

// twoChoices is ip_vs_twos.c: two servers drawn at random in proportion to
// weight, the one with the lower overhead/weight taken.
type twoChoices struct {
	noUpdate
	rand func() uint32
}

func (*twoChoices) Name() string { return "twos" }

func (t *twoChoices) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	// The kernel computes in int, wrapping (it builds with
	// -fno-strict-overflow); int32 arithmetic wraps the same way.
	var choice1, choice2 *model.Server
	var total int32
	for _, d := range svc.Servers {
		if d.Usable() {
			total += d.Weight
			choice1 = d
		}
	}
	if choice1 == nil {
		return nil
	}
	// +1 so the draws span [0, total] inclusive.
	total++
	r1 := int32(t.rand() % uint32(total))
	r2 := int32(t.rand() % uint32(total))
	var w1, w2 int32 = -1, -1
	var oh1, oh2 int32
	for _, d := range svc.Servers {
		if !d.Usable() {
			continue
		}
		w := d.Weight
		r1 -= w
		r2 -= w
		if r1 <= 0 && w1 == -1 {
			choice1, w1, oh1 = d, w, int32(d.Overhead())
		}
		if r2 <= 0 && w2 == -1 {
			choice2, w2, oh2 = d, w, int32(d.Overhead())
		}
		if w1 != -1 && w2 != -1 {
			break
		}
	}
	if choice2 != nil && w2*oh1 > w1*oh2 {
		return choice2
	}
	return choice1
}
