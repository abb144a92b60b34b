package control

import (
	"fmt"
	"net/netip"
	"slices"

	"gvs/api"
	"gvs/model"
)

// Converge makes the running rules equal to desired with the fewest
// changes (so unchanged services keep their listeners, connections and
// scheduler state), all or nothing. desired.Sysctls set the names they
// give; the others keep their values.
//
// Rules without services delete every running one only when they say so
// (desired.ExplicitEmpty): an empty or truncated config file must not
// take a director down.
func (c *Core) Converge(desired *Rules) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.rules()
	if len(desired.Services) == 0 && !desired.ExplicitEmpty && len(cur.Services) > 0 {
		return &DeletesAllError{Running: len(cur.Services)}
	}
	old := c.Sysctls()
	want, err := old.With(desired.Sysctls)
	if err != nil {
		return err
	}
	ops := Plan(cur, desired)
	if len(ops) == 0 && want == old {
		return nil
	}
	v, err := c.dryRun(ops)
	if err != nil {
		return err
	}
	if err := c.setSysctlsLocked(want); err != nil {
		return err
	}
	if err := c.applyOrUndo(ops, rulesOfModel(v)); err != nil {
		c.undoSysctls(old)
		return err
	}
	c.cfg = c.configuredFrom(v)
	return c.save()
}

// DeletesAllError refuses rules that have no services, would delete every
// running one, and do not say that this is meant.
type DeletesAllError struct{ Running int }

func (e *DeletesAllError) Error() string {
	return fmt.Sprintf("no services given: that would delete all %d running services; a config file that means it says so explicitly (services: [] in YAML, a -C line in ipvsadm-save form)", e.Running)
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
		// Before the servers: a new service is never served without it.
		if op, ok := planAllow(key, w.Service, h.Allow, w.Allow); ok {
			ops = append(ops, op)
		}
		ops = append(ops, planDests(key, h.Dests, w.Dests)...)
		ops = append(ops, planLocalAddrs(key, h.LocalAddrs, w.LocalAddrs)...)
	}
	return ops
}

// planLocalAddrs turns the pool cur into want, order included (it is the
// round robin's order, and what rollbacks must restore). Additions
// append, so the addresses kept are the longest start of want found in
// cur in that order; the others are deleted and want's rest added.
func planLocalAddrs(key model.Service, cur, want []netip.Addr) []api.Op {
	keep := 0
	for _, a := range cur {
		if keep < len(want) && a == want[keep] {
			keep++
		}
	}
	var ops []api.Op
	kept := 0
	for _, a := range cur {
		if kept < keep && a == want[kept] {
			kept++
			continue
		}
		ops = append(ops, api.Op{Op: api.DelLocalAddr, Service: key, LocalAddr: a})
	}
	for _, a := range want[keep:] {
		ops = append(ops, api.Op{Op: api.AddLocalAddr, Service: key, LocalAddr: a})
	}
	return ops
}

// planAllow is the set-allow that turns the allow list cur (the running
// one, in model.NormalizeAllow's form) into want, if they differ; want is
// compared in that form too, so a list given in another order or
// unmasked changes nothing. One operation carries the whole list: the
// engines replace a list as one change.
func planAllow(key, svc model.Service, cur, want []netip.Prefix) (api.Op, bool) {
	norm, err := model.NormalizeAllow(svc, want)
	if err == nil && slices.Equal(cur, norm) {
		return api.Op{}, false
	}
	// A list the model refuses goes as given, for the dry run to refuse
	// it with the reason.
	if err == nil {
		want = norm
	}
	return api.Op{Op: api.SetAllow, Service: key, Allow: want}, true
}
