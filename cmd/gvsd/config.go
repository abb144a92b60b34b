package main

import (
	"bytes"

	"gvs/api"
	"gvs/config"
	"gvs/control"
	"gvs/ipvsadm"
)

// applyConfig converges the running rules to the config file's.
func applyConfig(core *control.Core, path string) error {
	c, err := config.Load(path, saveLinesToRules)
	if err != nil {
		return err
	}
	return core.Converge(c.Rules)
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
