package health

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"gvs/model"
)

// DurationBuckets are the upper bounds, in seconds, of the check
// duration histogram (Metrics).
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Histogram is the duration of one kind of checker's checks.
type Histogram struct {
	Kind  string // TCP_CHECK, HTTP_GET, ...
	Count uint64
	Sum   float64 // seconds
	// Buckets holds, for each of DurationBuckets, the checks that took
	// at most that long (cumulative, as Prometheus has it).
	Buckets []uint64
}

// Transitions counts a checked server's verdicts changing.
type Transitions struct {
	Service  model.ServiceKey
	Server   netip.AddrPort
	Up, Down uint64 // went up, went down
}

// Metrics are what the manager has counted since it started: every
// check's duration by kind, and every server's transitions (a server's,
// not a checker's: it goes down with its first failing checker and up
// with its last recovering one). Counts never go back; a server the
// config no longer checks keeps its count if it comes back.
type Metrics struct {
	Durations   []Histogram   // by kind
	Transitions []Transitions // of the servers checked now, in check order
}

// counters is the manager's share of Metrics.
type counters struct {
	mu    sync.Mutex
	durs  map[string]*Histogram
	trans map[transKey]*Transitions
}

type transKey struct {
	svc model.ServiceKey
	srv netip.AddrPort
}

func (c *counters) observe(kind string, d time.Duration) {
	sec := d.Seconds()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.durs == nil {
		c.durs = map[string]*Histogram{}
	}
	h := c.durs[kind]
	if h == nil {
		h = &Histogram{Kind: kind, Buckets: make([]uint64, len(DurationBuckets))}
		c.durs[kind] = h
	}
	h.Count++
	h.Sum += sec
	for i, b := range DurationBuckets {
		if sec <= b {
			h.Buckets[i]++
		}
	}
}

func (c *counters) transition(svc model.ServiceKey, srv netip.AddrPort, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trans == nil {
		c.trans = map[transKey]*Transitions{}
	}
	k := transKey{svc, srv}
	t := c.trans[k]
	if t == nil {
		t = &Transitions{Service: svc, Server: srv}
		c.trans[k] = t
	}
	if up {
		t.Up++
	} else {
		t.Down++
	}
}

// Metrics returns the check durations and the transitions of the
// servers checked now (those without any yet with zero counts).
func (m *Manager) Metrics() Metrics {
	var keys []transKey
	m.mu.Lock()
	for _, k := range m.order {
		for _, srv := range m.services[k].servers {
			keys = append(keys, transKey{k, srv.cfg.Addr})
		}
	}
	m.mu.Unlock()
	c := &m.counters
	c.mu.Lock()
	defer c.mu.Unlock()
	var out Metrics
	for _, h := range c.durs {
		hc := *h
		hc.Buckets = append([]uint64(nil), h.Buckets...)
		out.Durations = append(out.Durations, hc)
	}
	sort.Slice(out.Durations, func(i, j int) bool { return out.Durations[i].Kind < out.Durations[j].Kind })
	out.Transitions = make([]Transitions, 0, len(keys))
	for _, k := range keys {
		t := Transitions{Service: k.svc, Server: k.srv}
		if p := c.trans[k]; p != nil {
			t = *p
		}
		out.Transitions = append(out.Transitions, t)
	}
	return out
}
