package sched

import (
	"time"

	"gvs/model"
)

// roundRobin is ip_vs_rr.c: walk the list from the last server chosen,
// taking the next one with weight > 0 that is not overloaded.
type roundRobin struct {
	last *model.Server // nil: the list head (nothing chosen yet)
}

func (*roundRobin) Name() string { return "rr" }

func (r *roundRobin) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	n := len(svc.Servers)
	start := indexOf(svc.Servers, r.last) + 1 // 0 when last is the head
	for k := 0; k < n; k++ {
		d := svc.Servers[(start+k)%n]
		if d.Usable() {
			r.last = d
			return d
		}
	}
	return nil
}

func (r *roundRobin) Update(svc *Service, c Change) {
	// Deleting the server the position is on moves the position back to
	// the previous entry (or the head), so the walk resumes after it.
	if c.Kind == Removed && c.Server == r.last {
		if c.Index > 0 {
			r.last = svc.Servers[c.Index-1]
		} else {
			r.last = nil
		}
	}
}

func indexOf(list []*model.Server, s *model.Server) int {
	if s == nil {
		return -1
	}
	for i, d := range list {
		if d == s {
			return i
		}
	}
	return -1
}

// weightedRoundRobin is ip_vs_wrr.c: passes over the list with a falling
// required weight cw, from mw = max weight - (gcd - 1) down by gcd steps,
// each pass taking every server whose weight is at least cw.
type weightedRoundRobin struct {
	cl int // index of the current server, -1 for the list head
	cw int32
	mw int32
	di int32
}

func (*weightedRoundRobin) Name() string { return "wrr" }

func (w *weightedRoundRobin) init(svc *Service) {
	w.cl = -1
	w.di = gcdWeight(svc.Servers, func(s *model.Server) int32 { return s.Weight })
	if w.di == 0 {
		w.di = 1
	}
	w.mw = maxWeight(svc.Servers) - (w.di - 1)
	w.cw = w.mw
}

func (w *weightedRoundRobin) Update(svc *Service, _ Change) {
	w.cl = -1
	w.di = gcdWeight(svc.Servers, func(s *model.Server) int32 { return s.Weight })
	if w.di == 0 {
		w.di = 1
	}
	w.mw = maxWeight(svc.Servers) - (w.di - 1)
	if w.cw > w.mw || w.cw == 0 {
		w.cw = w.mw
	} else if w.di > 1 {
		w.cw = (w.cw/w.di)*w.di + 1
	}
}

func (w *weightedRoundRobin) Schedule(svc *Service, _ Packet, _ time.Time) *model.Server {
	if w.mw == 0 {
		return nil
	}
	list := svc.Servers
	last := w.cl
	stop := -2 // none
	lastPass, restarted := false, false
	from := w.cl
	for {
		for i := from + 1; i < len(list); i++ {
			d := list[i]
			if !d.Overloaded && d.Weight >= w.cw {
				w.cl = i
				return d
			}
			if i == stop {
				w.cl = i
				return nil
			}
		}
		from = -1
		w.cw -= w.di
		if w.cw <= 0 {
			w.cw = w.mw
			// Stop when the pass that just ended already took weight >= 1
			// from the first server.
			if lastPass || last == -1 {
				w.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = w.cw <= w.di
		if lastPass && restarted && last != -1 {
			// The first weight->=1 pass covered only the servers after
			// last; this one must stop at last.
			stop = last
		}
	}
}

func gcdWeight(list []*model.Server, weight func(*model.Server) int32) int32 {
	var g int32
	for _, s := range list {
		if w := weight(s); w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
	}
	return g
}

func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func maxWeight(list []*model.Server) int32 {
	var m int32
	for _, s := range list {
		if s.Weight > m {
			m = s.Weight
		}
	}
	return m
}
