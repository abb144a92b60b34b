package engine

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"gvs/api"
	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
)

// Table is an IPVS model instance behind a mutex, with the conversions to
// API documents. Engines embed it and add what their data path needs.
type Table struct {
	mu sync.Mutex
	v  *ipvs.IPVS
	// Now is the clock (tests replace it).
	Now func() time.Time
}

// NewTable returns an empty table.
func NewTable(o ipvs.Options) *Table {
	return &Table{v: ipvs.New(o), Now: time.Now}
}

// Do runs f with the table locked.
func (t *Table) Do(f func(v *ipvs.IPVS)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t.v)
}

func (t *Table) do(f func(v *ipvs.IPVS) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return f(t.v)
}

// AddService is ipvsadm -A.
func (t *Table) AddService(s model.Service) error {
	return t.do(func(v *ipvs.IPVS) error { return v.AddService(s) })
}

// EditService is ipvsadm -E.
func (t *Table) EditService(s model.Service) error {
	return t.do(func(v *ipvs.IPVS) error { return v.EditService(s) })
}

// DelService is ipvsadm -D.
func (t *Table) DelService(k model.ServiceKey) error {
	return t.do(func(v *ipvs.IPVS) error { return v.DelService(k) })
}

// AddDest is ipvsadm -a.
func (t *Table) AddDest(k model.ServiceKey, d model.Dest) error {
	return t.do(func(v *ipvs.IPVS) error { return v.AddDest(k, d) })
}

// EditDest is ipvsadm -e.
func (t *Table) EditDest(k model.ServiceKey, d model.Dest) error {
	return t.do(func(v *ipvs.IPVS) error { return v.EditDest(k, d) })
}

// DelDest is ipvsadm -d.
func (t *Table) DelDest(k model.ServiceKey, a netip.AddrPort) error {
	return t.do(func(v *ipvs.IPVS) error { return v.DelDest(k, a) })
}

// Flush is ipvsadm -C.
func (t *Table) Flush() error {
	return t.do(func(v *ipvs.IPVS) error { v.Flush(); return nil })
}

// SetTimeouts is ipvsadm --set.
func (t *Table) SetTimeouts(to model.Timeouts) error {
	return t.do(func(v *ipvs.IPVS) error { v.SetTimeouts(to); return nil })
}

// Zero is ipvsadm -Z.
func (t *Table) Zero(k *model.ServiceKey) error {
	return t.do(func(v *ipvs.IPVS) error { return v.Zero(k) })
}

// AddLocalAddr is DPVS ipvsadm -P.
func (t *Table) AddLocalAddr(k model.ServiceKey, a netip.Addr) error {
	return t.do(func(v *ipvs.IPVS) error { return v.AddLocalAddr(k, a) })
}

// DelLocalAddr is DPVS ipvsadm -Q.
func (t *Table) DelLocalAddr(k model.ServiceKey, a netip.Addr) error {
	return t.do(func(v *ipvs.IPVS) error { return v.DelLocalAddr(k, a) })
}

// SetAllow replaces a service's source allow list.
func (t *Table) SetAllow(k model.ServiceKey, l []netip.Prefix) error {
	return t.do(func(v *ipvs.IPVS) error { return v.SetAllow(k, l) })
}

// Timeouts returns the --set values.
func (t *Table) Timeouts() (to model.Timeouts) {
	t.Do(func(v *ipvs.IPVS) { to = v.Timeouts() })
	return to
}

// Services converts the table to API documents.
func (t *Table) Services() []api.Service { return t.services(false) }

// RawServices is Services with the running counters, which -Z does not
// reset (engine.RawStats).
func (t *Table) RawServices() []api.Service { return t.services(true) }

func (t *Table) services(raw bool) []api.Service {
	var out []api.Service
	counters := (*stats.Stats).Counters
	if raw {
		counters = (*stats.Stats).Raw
	}
	t.Do(func(v *ipvs.IPVS) {
		for _, s := range v.Services() {
			as := api.Service{Service: s.Config, Stats: counters(&s.Stats), Rates: s.Stats.Rates(), Dests: make([]api.Dest, 0, len(s.Servers())),
				LocalAddrs: slices.Clone(s.LocalAddrs()), Allow: slices.Clone(s.Allow())}
			for _, d := range s.Servers() {
				as.Dests = append(as.Dests, api.Dest{
					Dest: d.Dest, ActiveConns: d.ActiveConns, InactConns: d.InactConns, PersistConns: d.PersistConns,
					Stats: counters(&d.Stats), Rates: d.Stats.Rates(),
				})
			}
			out = append(out, as)
		}
	})
	return out
}

// Totals returns the instance-wide counters and rates.
func (t *Table) Totals() (c stats.Counters, r stats.Rates) {
	t.Do(func(v *ipvs.IPVS) { c, r = v.Total().Counters(), v.Total().Rates() })
	return c, r
}

// RawTotals returns the instance-wide running counters, which -Z does
// not reset.
func (t *Table) RawTotals() (c stats.Counters) {
	t.Do(func(v *ipvs.IPVS) { c = v.Total().Raw() })
	return c
}

// ConnStates counts the model's connection table by state (engine.ConnStater).
// The table is unbounded: Capacity is 0.
func (t *Table) ConnStates() ConnStates {
	cs := ConnStates{ByState: map[string]uint64{}}
	t.Do(func(v *ipvs.IPVS) {
		v.EachConn(func(c *ipvs.Conn) {
			if c.Template {
				cs.Templates++
			} else {
				cs.ByState[c.State.String()]++
			}
		})
	})
	return cs
}

// connBatch is how many entries Conns converts per hold of the lock.
const connBatch = 1024

// Conns lists the connection table, templates included, in the model's
// order. Under the lock it takes only the entries' pointers, then
// converts them a batch at a time, yielding with the lock released;
// entries gone meanwhile are skipped.
func (t *Table) Conns(yield func(api.Conn) bool) error {
	var all []*ipvs.Conn
	t.Do(func(v *ipvs.IPVS) { all = v.Conns() })
	batch := make([]api.Conn, 0, min(len(all), connBatch))
	for len(all) > 0 {
		n := min(len(all), connBatch)
		batch = batch[:0]
		t.Do(func(v *ipvs.IPVS) {
			now := t.Now()
			for _, c := range all[:n] {
				if !v.Has(c) {
					continue
				}
				batch = append(batch, api.Conn{
					Protocol: c.Protocol, Client: c.Client, Virtual: c.Virtual, Dest: c.Dest,
					State: c.State.String(), ExpireMS: c.Remaining(now).Milliseconds(), Template: c.Template,
				})
			}
		})
		clear(all[:n]) // listed entries may be collected
		all = all[n:]
		for _, c := range batch {
			if !yield(c) {
				return nil
			}
		}
	}
	return nil
}

// RunTimers runs the kernel's periodic work until stop is closed: expiry
// every second, the rate estimator every 2 seconds, lblc/lblcr collection
// every minute. expired is called (with the table locked) after each
// expiry run so the engine can release what belonged to gone connections.
func (t *Table) RunTimers(stop <-chan struct{}, expired func(v *ipvs.IPVS)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		n++
		t.Do(func(v *ipvs.IPVS) {
			now := t.Now()
			v.Expire(now)
			if expired != nil {
				expired(v)
			}
			if n%int(stats.EstimatorPeriod/time.Second) == 0 {
				v.Estimate()
			}
			if n%60 == 0 {
				v.Collect(now)
			}
		})
	}
}
