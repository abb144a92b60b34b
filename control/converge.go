package control

import (
	"slices"

	"gvs/api"
	"gvs/model"
)

// Converge makes the running rules equal to desired with the fewest
// changes (so unchanged services keep their listeners, connections and
// scheduler state), all or nothing.
func (c *Core) Converge(desired *Rules) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := Plan(c.rules(), desired)
	if len(ops) == 0 {
		return nil
	}
	return c.doLocked(ops)
}

// Plan returns the operations that turn the rules cur into want.
func Plan(cur, want *Rules) []api.Op {
	var ops []api.Op
	if cur.Timeouts != want.Timeouts && want.Timeouts != (model.Timeouts{}) {
		ops = append(ops, api.Op{Op: api.SetTimeouts, Timeouts: want.Timeouts})
	}
	wanted := map[model.ServiceKey]ServiceRules{}
	for _, s := range want.Services {
		wanted[s.Service.ServiceKey] = s
	}
	have := map[model.ServiceKey]ServiceRules{}
	for _, s := range cur.Services {
		have[s.Service.ServiceKey] = s
		if _, ok := wanted[s.Service.ServiceKey]; !ok {
			ops = append(ops, api.Op{Op: api.DelService, Service: model.Service{ServiceKey: s.Service.ServiceKey}})
		}
	}
	for _, w := range want.Services {
		k := w.Service.ServiceKey
		key := model.Service{ServiceKey: k}
		h, exists := have[k]
		if !exists {
			ops = append(ops, api.Op{Op: api.AddService, Service: w.Service})
		} else if h.Service != w.Service {
			ops = append(ops, api.Op{Op: api.EditService, Service: w.Service})
		}
		for _, d := range h.Dests {
			if !slices.ContainsFunc(w.Dests, func(x model.Dest) bool { return x.AddrPort() == d.AddrPort() }) {
				ops = append(ops, api.Op{Op: api.DelDest, Service: key, Dest: d})
			}
		}
		// Oldest first, so the new ones end up in the wanted order.
		for _, d := range slices.Backward(w.Dests) {
			i := slices.IndexFunc(h.Dests, func(x model.Dest) bool { return x.AddrPort() == d.AddrPort() })
			switch {
			case i < 0:
				ops = append(ops, api.Op{Op: api.AddDest, Service: key, Dest: d})
			case h.Dests[i] != d:
				ops = append(ops, api.Op{Op: api.EditDest, Service: key, Dest: d})
			}
		}
	}
	return ops
}
