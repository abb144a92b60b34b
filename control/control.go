// Package control is gvsd's core: it owns the rule set, applies operations
// to the engine one batch at a time, and keeps the rules on disk so they
// survive a restart or a crash. The HTTP API, the config file and any later
// client all go through it.
package control

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"gvs/api"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// Core serialises every change of the rules.
type Core struct {
	mu    sync.Mutex
	eng   engine.Engine
	store *Store
	log   *slog.Logger
	// sysctls are set under mu; read without it, so a listing does not
	// wait for a long batch.
	sysctls atomic.Pointer[model.Sysctls]
	// cfg is the configured rules (services and timeouts), what is saved;
	// the engine serves their effective form under health (health.go).
	// Replaced, never changed in place.
	cfg    *Rules
	health map[model.ServiceKey]ServiceHealth
	// daemons runs the sync daemons of cfg.Daemons (nil: none can run).
	daemons DaemonRunner
}

// New returns a core over eng that persists to store (nil: no persistence).
func New(eng engine.Engine, store *Store, log *slog.Logger) *Core {
	c := &Core{eng: eng, store: store, log: log, health: map[model.ServiceKey]ServiceHealth{}}
	c.cfg = c.engineRules()
	d := model.DefaultSysctls()
	c.sysctls.Store(&d)
	return c
}

// SysctlSetter is implemented by engines that honour the IPVS sysctls.
type SysctlSetter interface {
	SetSysctls(model.Sysctls) error
}

// Engine returns the engine, for reads (listings, counters).
func (c *Core) Engine() engine.Engine { return c.eng }

// BatchError is a failed batch: the index of the operation that failed
// and why. Nothing of the batch was applied.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// Restore applies the saved rules at start. An engine that kept state of
// its own across the restart (the XDP engine's pinned maps) is then told
// to drop whatever the saved rules no longer have.
//
// Saved rules that cannot be read, or that the model or the engine
// refuses, are not a reason to stop: nothing of them is left applied, the
// file is moved aside (see Store.SetAside) with an error logged, and a
// data path that outlived the last gvsd keeps forwarding what it had: an
// engine that can say what that is (Pinned) has it adopted as the rules,
// so that -L shows it and the operator can change or remove it.
func (c *Core) Restore() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store != nil {
		r, err := c.store.Load()
		if err == nil && r != nil {
			if err = c.restoreLocked(r); err == nil {
				c.log.Info("rules restored", "services", len(r.Services), "file", c.store.Path())
			}
		}
		if err != nil {
			c.setAside(err)
			c.adoptPinned()
			return nil
		}
	}
	if rc, ok := c.eng.(interface{ Reconcile() error }); ok {
		return rc.Reconcile()
	}
	return nil
}

// restoreLocked applies saved rules, all or nothing.
func (c *Core) restoreLocked(r *Rules) error {
	old := c.Sysctls()
	want, err := model.DefaultSysctls().With(r.Sysctls)
	if err != nil {
		return fmt.Errorf("%s: %w", c.store.Path(), err)
	}
	ops := r.Ops()
	v, err := c.dryRun(ops)
	if err != nil {
		return fmt.Errorf("restoring saved rules: %w", err)
	}
	if err := c.setSysctlsLocked(want); err != nil {
		return fmt.Errorf("restoring saved rules: %w", err)
	}
	if err := c.applyOrUndo(ops, rulesOfModel(v)); err != nil {
		c.undoSysctls(old)
		return fmt.Errorf("restoring saved rules: %w", err)
	}
	c.cfg = c.configuredFrom(v)
	c.restoreDaemons(r.Daemons)
	return nil
}

// adoptPinned takes what the engine's data path forwards as the rules
// (after saved rules could not be restored), and saves them.
func (c *Core) adoptPinned() {
	p, ok := c.eng.(interface{ Pinned() ([]api.Op, error) })
	if !ok {
		return
	}
	ops, err := p.Pinned()
	if err == nil && len(ops) == 0 {
		return
	}
	if err == nil {
		err = c.doLocked(ops)
	}
	if err != nil {
		c.log.Error("the data path's rules could not be adopted either: -L shows none of what it forwards; restart gvsd with repaired rules, or run gvsd --cleanup, to change it", "err", err)
		return
	}
	n := 0
	for _, o := range ops {
		if o.Op == api.AddService {
			n++
		}
	}
	c.log.Warn("adopted the rules the data path still forwards (from its pinned maps): -L shows them; check them against the set-aside file", "services", n)
}

// setAside moves unrestorable rules out of the way, keeping them for the
// operator; when that fails nothing is saved from now on, so that they
// are not overwritten either.
func (c *Core) setAside(why error) {
	path := c.store.Path()
	dst, err := c.store.SetAside()
	if err != nil {
		c.log.Error("saved rules NOT restored and could not be moved aside: rule changes will not be saved, so as not to overwrite them",
			"err", why, "file", path, "move_err", err)
		c.store = nil
		return
	}
	c.log.Error("saved rules NOT restored: serving without them, data path left as it is; repair the file and load it with gvsadm -R",
		"err", why, "file", path, "moved_to", dst)
}

// Do applies a batch of operations, all or nothing, and saves the rules.
func (c *Core) Do(ops []api.Op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doLocked(ops)
}

func (c *Core) doLocked(ops []api.Op) error {
	if slices.ContainsFunc(ops, isDaemonOp) {
		return c.doDaemon(ops)
	}
	// Check the whole batch on a copy of the model first, so a bad
	// operation anywhere changes nothing.
	v, err := c.dryRun(ops)
	if err != nil {
		return err
	}
	if err := c.applyOrUndo(ops, rulesOfModel(v)); err != nil {
		return err
	}
	if mutates(ops) {
		c.cfg = c.configuredFrom(v)
		if err := c.save(); err != nil {
			return err
		}
	}
	return nil
}

// applyOrUndo applies ops to the engine: operations on the configured
// rules when after (the configured rules they make) is given, translated
// by toEngine and reconciled; the engine's own otherwise. When the engine
// refuses what the model accepted (a listener could not bind, say), it
// undoes what the batch changed, and only that.
func (c *Core) applyOrUndo(ops []api.Op, after *Rules) error {
	before := c.engineRules()
	if err := c.apply(ops, after); err != nil {
		if rerr := c.apply(Plan(c.engineRules(), before), nil); rerr != nil {
			c.log.Error("rollback failed", "err", rerr)
		}
		return err
	}
	return nil
}

// Sysctls returns the IPVS sysctls in force.
func (c *Core) Sysctls() model.Sysctls { return *c.sysctls.Load() }

// SetSysctls sets the sysctls named in m (the others keep their values),
// and saves them with the rules.
func (c *Core) SetSysctls(m map[string]int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.Sysctls()
	want, err := old.With(m)
	if err != nil || want == old {
		return err
	}
	if err := c.setSysctlsLocked(want); err != nil {
		return err
	}
	return c.save()
}

func (c *Core) setSysctlsLocked(s model.Sysctls) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s == c.Sysctls() {
		return nil
	}
	if e, ok := c.eng.(SysctlSetter); ok {
		if err := e.SetSysctls(s); err != nil {
			return fmt.Errorf("setting the sysctls: %w", err)
		}
	} else {
		c.log.Warn("the engine does not honour the IPVS sysctls: they are kept and saved only", "engine", c.eng.Name())
	}
	c.sysctls.Store(&s)
	return nil
}

// undoSysctls puts back the sysctls of before a refused change.
func (c *Core) undoSysctls(old model.Sysctls) {
	if err := c.setSysctlsLocked(old); err != nil {
		c.log.Error("rollback of the sysctls failed", "err", err)
	}
}

// Batcher is implemented by engines that apply a batch more cheaply (or
// more safely) as one change: the XDP engine updates its maps once per
// service at the end, so a restart's replay never shows traffic a service
// with half its servers.
type Batcher interface {
	Batch(func() error) error
}

func mutates(ops []api.Op) bool {
	return slices.ContainsFunc(ops, func(o api.Op) bool { return o.Op != api.Zero })
}

// dryRun applies ops to a copy of the configured rules in the model and
// returns it, or the first refusal.
func (c *Core) dryRun(ops []api.Op) (*ipvs.IPVS, error) {
	v := ipvs.New(ipvs.Options{})
	for _, op := range c.rules().Ops() {
		if err := applyTo(modelTarget{v}, op); err != nil {
			return nil, fmt.Errorf("current rules do not replay: %w", err)
		}
	}
	for i, op := range ops {
		if ch, ok := c.eng.(interface{ Check(api.Op) error }); ok {
			if err := ch.Check(op); err != nil {
				return nil, &BatchError{i, err}
			}
		}
		if err := applyTo(modelTarget{v}, op); err != nil {
			return nil, &BatchError{i, err}
		}
	}
	return v, nil
}

func (c *Core) apply(ops []api.Op, after *Rules) error {
	run := func() error {
		for i, op := range ops {
			eops := []api.Op{op}
			if after != nil {
				eops = toEngine(op, c.health)
			}
			for _, eop := range eops {
				if err := applyTo(c.eng, eop); err != nil {
					return &BatchError{i, err}
				}
			}
		}
		if after != nil && len(c.health) > 0 {
			if err := c.reconcile(after, touched(ops, c.health)); err != nil {
				return &BatchError{len(ops) - 1, err}
			}
		}
		return nil
	}
	if b, ok := c.eng.(Batcher); ok {
		return b.Batch(run)
	}
	return run()
}

// Close stops the engine once no operation is running.
func (c *Core) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eng.Close()
}

// rules returns the configured rule set, sysctls included.
func (c *Core) rules() *Rules {
	r := *c.cfg
	r.Sysctls = c.Sysctls().Map()
	return &r
}

// Rules returns the configured rule set: what gvsadm -S shows and what
// is saved (the engine serves its effective form, see health.go).
func (c *Core) Rules() *Rules {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rules()
}

// engineRules reads the rule set the engine serves.
func (c *Core) engineRules() *Rules {
	r := &Rules{Version: rulesVersion, Timeouts: c.eng.Timeouts()}
	for _, s := range c.eng.Services() {
		sr := ServiceRules{Service: s.Service, LocalAddrs: s.LocalAddrs, Allow: s.Allow}
		for _, d := range s.Dests {
			sr.Dests = append(sr.Dests, d.Dest)
		}
		r.Services = append(r.Services, sr)
	}
	return r
}

func (c *Core) save() error {
	if c.store == nil {
		return nil
	}
	if err := c.store.Save(c.rules()); err != nil {
		return fmt.Errorf("rules applied but not saved: %w", err)
	}
	return nil
}

// modelTarget makes the model an engine.Rules, for dry runs.
type modelTarget struct{ *ipvs.IPVS }

func (m modelTarget) Flush() error                       { m.IPVS.Flush(); return nil }
func (m modelTarget) SetTimeouts(t model.Timeouts) error { m.IPVS.SetTimeouts(t); return nil }

func applyTo(t engine.Rules, op api.Op) error {
	k := op.Service.ServiceKey
	switch op.Op {
	case api.AddService:
		return t.AddService(op.Service)
	case api.EditService:
		return t.EditService(op.Service)
	case api.DelService:
		return t.DelService(k)
	case api.AddDest:
		return t.AddDest(k, op.Dest)
	case api.EditDest:
		return t.EditDest(k, op.Dest)
	case api.DelDest:
		return t.DelDest(k, op.Dest.AddrPort())
	case api.Clear:
		return t.Flush()
	case api.SetTimeouts:
		return t.SetTimeouts(op.Timeouts)
	case api.AddLocalAddr:
		return t.AddLocalAddr(k, op.LocalAddr)
	case api.DelLocalAddr:
		return t.DelLocalAddr(k, op.LocalAddr)
	case api.SetAllow:
		return t.SetAllow(k, op.Allow)
	case api.Zero:
		if op.AllServices {
			return t.Zero(nil)
		}
		return t.Zero(&k)
	}
	return errors.New("unknown operation " + string(op.Op))
}
