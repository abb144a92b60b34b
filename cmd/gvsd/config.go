package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gvs/api"
	"gvs/bgp"
	"gvs/config"
	"gvs/control"
	"gvs/health"
	"gvs/ipvsadm"
	"gvs/model"
	"gvs/vrrp"
)

// applyConfig converges the running rules to the config file's, then
// runs its health checks. A file whose rules or checks are refused
// changes neither.
func applyConfig(log *slog.Logger, core *control.Core, checks *health.Manager, ha *haParts, path string) error {
	c, err := config.Load(path, saveLinesToRules)
	if err != nil {
		return err
	}
	for _, n := range c.Notices {
		log.Info("config notice", "notice", n)
	}
	if err := checks.Validate(c.Health); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if c.VRRP != nil {
		if err := c.VRRP.Validate(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	// New alpha servers are down before the rules bring them in.
	if err := checks.Prepare(c.Health); err != nil {
		return &checksError{err}
	}
	if err := core.Converge(c.Rules); err != nil {
		return err
	}
	// VRRP and the sync daemons do not depend on the checks: a check
	// that cannot start must not keep the director out of its pair.
	var errs []error
	if err := checks.Update(c.Health); err != nil {
		errs = append(errs, err)
	}
	if err := ha.vm.Update(c.VRRP); err != nil {
		errs = append(errs, fmt.Errorf("vrrp: %w", err))
	}
	ha.sync.Update(c.Sync)
	if ha.bgp != nil {
		if err := ha.bgp.Update(c.BGP); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &checksError{errors.Join(errs...)}
	}
	return nil
}

// haParts are the director-pair parts a config file drives: VRRP and
// the sync daemons that follow it.
type haParts struct {
	vm   *vrrp.Manager
	sync *syncFollower
	// bgp announces the VIPs (the config's bgp: section).
	bgp *bgp.Speaker
}

// newBGP returns the BGP speaker of core's services, up while checks
// says so; stop withdraws its announcements (waiting for them to leave)
// and stops it: the first thing gvsd does at SIGTERM.
func newBGP(log *slog.Logger, core *control.Core, checks *health.Manager) (sp *bgp.Speaker, stop func()) {
	sp = bgp.New(log, bgp.Options{ServiceUp: checks.ServiceUp, Services: func() []model.ServiceKey {
		r := core.Rules()
		l := make([]model.ServiceKey, 0, len(r.Services))
		for _, s := range r.Services {
			l = append(l, s.Service.ServiceKey)
		}
		return l
	}})
	return sp, func() {
		sp.Shutdown(2 * time.Second)
		sp.Close()
	}
}

// checksError is a config whose rules were applied but whose health
// checks or VRRP instances did not all take (a verdict the engine
// refused, an instance that cannot run).
type checksError struct{ err error }

func (e *checksError) Error() string { return e.err.Error() }
func (e *checksError) Unwrap() error { return e.err }

// logConfigError logs why a config was not (fully) applied.
func logConfigError(log *slog.Logger, path string, start bool, err error) {
	var ce *checksError
	switch {
	case errors.As(err, &ce):
		log.Error("config rules applied, but not all of its health checks, VRRP instances or BGP peers: see the error", "file", path, "err", err)
	case start:
		log.Error("config NOT applied: serving the rules as they are; fix it and send SIGHUP", "file", path, "err", err)
	default:
		log.Error("config reload refused; rules unchanged", "file", path, "err", err)
	}
}

// saveLinesToRules reads ipvsadm-save lines (gvsadm -S output) as rules.
func saveLinesToRules(b []byte) (*control.Rules, error) {
	cmds, err := ipvsadm.ParseRestore(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var ops []api.Op
	for _, c := range cmds {
		op, ok, err := c.Op()
		if err != nil {
			return nil, err
		}
		if ok {
			ops = append(ops, op)
		}
	}
	return control.RulesFromOps(ops)
}
