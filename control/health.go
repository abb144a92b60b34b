package control

import (
	"fmt"
	"net/netip"
	"slices"

	"gvs/api"
	"gvs/model"
)

// The control core keeps two views of every destination apart, as
// keepalived and the kernel's IPVS appear to operators: the configured
// one (what the operator asked for: saved, shown by gvsadm -S, changed by
// -a/-e/-d and the config file) and the effective one the engine serves
// (shown by -L), which the health checks change. A failed server is
// removed from the engine (or kept at weight 0 with inhibit_on_failure)
// and comes back with its configured weight; a sorry server is served
// while a service's quorum is lost. What the health checks decide never
// changes the configured rules, and what an operator changes by hand is
// served through the health state: a server added by hand while its
// checks say it is down is configured but not served until they say up.

// DestHealth is what the health checks make of one configured
// destination. The zero value is "up, as configured".
type DestHealth struct {
	// Down takes the destination out of service: removed from the
	// engine, or with Inhibit (inhibit_on_failure) kept at weight 0.
	Down    bool `json:"down,omitempty"`
	Inhibit bool `json:"inhibit,omitempty"`
	// Dynamic are the weights MISC_CHECK misc_dynamic checkers ask for,
	// and Add what FILE_CHECK dynamic checkers add: keepalived's
	// effective weight is configured + sum(dynamic - configured) + add.
	Dynamic []int64 `json:"dynamic,omitempty"`
	Add     int64   `json:"add,omitempty"`
}

// Weight returns the weight the destination is served with, given its
// configured weight, within IPVS's range.
func (h DestHealth) Weight(configured int32) int32 {
	if h.Down {
		return 0
	}
	w := int64(configured) + h.Add
	for _, d := range h.Dynamic {
		w += d - int64(configured)
	}
	return int32(min(max(w, 0), model.MaxWeight))
}

// served says whether the destination is in the engine at all.
func (h DestHealth) served() bool { return !h.Down || h.Inhibit }

// SorryHealth is a service's sorry server as the health checks have it.
type SorryHealth struct {
	Dest model.Dest `json:"dest"`
	// Active: the quorum is lost and the sorry server is served with its
	// weight; otherwise it is absent, or with Inhibit
	// (sorry_server_inhibit) kept at weight 0.
	Active  bool `json:"active,omitempty"`
	Inhibit bool `json:"inhibit,omitempty"`
}

// ServiceHealth is what the health checks make of a service.
type ServiceHealth struct {
	// Dests by address; a configured destination not in the map is
	// served as configured.
	Dests map[netip.AddrPort]DestHealth `json:"dests,omitempty"`
	Sorry *SorryHealth                  `json:"sorry,omitempty"`
}

// effective returns what the engine serves of the configured
// destinations cfg (kernel order) under h: the destinations served, with
// their effective weights, and the sorry server when it is served. A
// sorry server with the address of a configured destination
// (keepalived's s_svr_duplicates_rs) takes that destination's place
// while active, and is otherwise that destination as it is.
func (h ServiceHealth) effective(cfg []model.Dest) []model.Dest {
	var out []model.Dest
	s := h.Sorry
	dup := s != nil && slices.ContainsFunc(cfg, func(d model.Dest) bool { return d.AddrPort() == s.Dest.AddrPort() })
	switch {
	case s != nil && s.Active:
		out = append(out, s.Dest)
	case s != nil && s.Inhibit && !dup:
		d := s.Dest
		d.Weight = 0
		out = append(out, d)
	}
	for _, d := range cfg {
		if s != nil && s.Active && dup && d.AddrPort() == s.Dest.AddrPort() {
			continue
		}
		if e, ok := h.dest(d); ok {
			out = append(out, e)
		}
	}
	return out
}

// dest returns the effective form of the configured destination d, and
// whether it is served.
func (h ServiceHealth) dest(d model.Dest) (model.Dest, bool) {
	dh := h.Dests[d.AddrPort()]
	if !dh.served() {
		return d, false
	}
	d.Weight = dh.Weight(d.Weight)
	return d, true
}

// toEngine translates an operation on the configured rules into the
// operations that keep the engine serving their effective form; a
// service with health state is reconciled after the batch (reconcile),
// which brings in its sorry server.
func toEngine(op api.Op, health map[model.ServiceKey]ServiceHealth) []api.Op {
	h := health[op.Service.ServiceKey]
	switch op.Op {
	case api.AddDest, api.EditDest:
		e, ok := h.dest(op.Dest)
		if !ok {
			return nil
		}
		op.Dest = e
		return []api.Op{op}
	case api.DelDest:
		if _, ok := h.dest(op.Dest); !ok {
			return nil
		}
		return []api.Op{op}
	}
	return []api.Op{op}
}

// reconcile brings the engine's destinations of each service of keys
// that has health state to what the configured rules cfg make of it:
// what a batch's translated operations leave out (a sorry server, a
// configured destination at a sorry server's address), and any drift.
// It diffs against what the engine serves, not against what it should.
func (c *Core) reconcile(cfg *Rules, keys []model.ServiceKey) error {
	var ops []api.Op
	for _, k := range keys {
		h, ok := c.health[k]
		if !ok {
			continue
		}
		i := slices.IndexFunc(cfg.Services, func(s ServiceRules) bool { return s.Service.ServiceKey == k })
		if i < 0 {
			continue
		}
		ops = append(ops, planDests(model.Service{ServiceKey: k}, c.engineDests(k), h.effective(cfg.Services[i].Dests))...)
	}
	for _, op := range ops {
		if err := applyTo(c.eng, op); err != nil {
			return err
		}
	}
	return nil
}

// touched returns the services of ops that have health state (all of
// them for a clear).
func touched(ops []api.Op, health map[model.ServiceKey]ServiceHealth) []model.ServiceKey {
	var keys []model.ServiceKey
	for _, op := range ops {
		if op.Op == api.Clear {
			keys = keys[:0]
			for k := range health {
				keys = append(keys, k)
			}
			continue
		}
		if _, ok := health[op.Service.ServiceKey]; ok && !slices.Contains(keys, op.Service.ServiceKey) {
			keys = append(keys, op.Service.ServiceKey)
		}
	}
	return keys
}

// engineDests returns the destinations the engine serves for k.
func (c *Core) engineDests(k model.ServiceKey) []model.Dest {
	for _, s := range c.eng.Services() {
		if s.ServiceKey == k {
			var out []model.Dest
			for _, d := range s.Dests {
				out = append(out, d.Dest)
			}
			return out
		}
	}
	return nil
}

// SetHealth records what the health checks make of service k and
// brings the engine to it. A service that is not configured (deleted by
// hand, say) only has its health recorded, for when it comes back.
func (c *Core) SetHealth(k model.ServiceKey, h ServiceHealth) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.cfg.Services, func(s ServiceRules) bool { return s.Service.ServiceKey == k })
	if i < 0 {
		c.setHealthLocked(k, h)
		return nil
	}
	cfg := c.cfg.Services[i].Dests
	ops := planDests(model.Service{ServiceKey: k}, c.engineDests(k), h.effective(cfg))
	if len(ops) > 0 {
		if err := c.applyOrUndo(ops, nil); err != nil {
			return fmt.Errorf("%s: applying the health checks' verdict: %w", k, err)
		}
	}
	c.setHealthLocked(k, h)
	return nil
}

func (c *Core) setHealthLocked(k model.ServiceKey, h ServiceHealth) {
	if len(h.Dests) == 0 && h.Sorry == nil {
		delete(c.health, k)
		return
	}
	c.health[k] = h
}

// ClearHealth forgets the health of every service not in keep and serves
// their configured destinations again (the config file no longer checks
// them).
func (c *Core) ClearHealth(keep map[model.ServiceKey]bool) error {
	c.mu.Lock()
	var drop []model.ServiceKey
	for k := range c.health {
		if !keep[k] {
			drop = append(drop, k)
		}
	}
	c.mu.Unlock()
	for _, k := range drop {
		if err := c.SetHealth(k, ServiceHealth{}); err != nil {
			return err
		}
	}
	return nil
}

// Health returns the health state of service k.
func (c *Core) Health(k model.ServiceKey) ServiceHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.health[k]
}

// ConfiguredDests returns service k's configured destinations (kernel
// order), and whether it is configured.
func (c *Core) ConfiguredDests(k model.ServiceKey) ([]model.Dest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.cfg.Services {
		if s.Service.ServiceKey == k {
			return slices.Clone(s.Dests), true
		}
	}
	return nil, false
}

// planDests returns the operations that turn one service's destinations
// from cur into want (kernel order): removals first, then additions
// (oldest first, so the new ones end up in the wanted order) and edits.
// Plan uses it for the configured rules, SetHealth and reconcile for
// what the engine serves.
func planDests(key model.Service, cur, want []model.Dest) []api.Op {
	var ops []api.Op
	for _, d := range cur {
		if !slices.ContainsFunc(want, func(x model.Dest) bool { return x.AddrPort() == d.AddrPort() }) {
			ops = append(ops, api.Op{Op: api.DelDest, Service: key, Dest: d})
		}
	}
	for _, d := range slices.Backward(want) {
		i := slices.IndexFunc(cur, func(x model.Dest) bool { return x.AddrPort() == d.AddrPort() })
		switch {
		case i < 0:
			ops = append(ops, api.Op{Op: api.AddDest, Service: key, Dest: d})
		case cur[i] != d:
			ops = append(ops, api.Op{Op: api.EditDest, Service: key, Dest: d})
		}
	}
	return ops
}
