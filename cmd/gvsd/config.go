package main

import (
	"bytes"
	"fmt"
	"log/slog"

	"gvs/api"
	"gvs/config"
	"gvs/control"
	"gvs/health"
	"gvs/ipvsadm"
)

// applyConfig converges the running rules to the config file's, then
// runs its health checks. A file whose rules or checks are refused
// changes neither.
func applyConfig(log *slog.Logger, core *control.Core, checks *health.Manager, path string) error {
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
	if err := core.Converge(c.Rules); err != nil {
		return err
	}
	return checks.Update(c.Health)
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
