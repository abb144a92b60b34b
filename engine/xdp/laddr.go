package xdp

import (
	"net/netip"

	"gvs/model"
)

// AddLocalAddr implements engine.Engine: the model takes the address into
// the service's FULLNAT pool, then the service's maps are brought up to
// date (the same scheduler keeps its state, as for -E).
func (e *Engine) AddLocalAddr(k model.ServiceKey, a netip.Addr) error {
	if err := e.checkLocalAddr(k, a); err != nil {
		return err
	}
	if err := e.Table.AddLocalAddr(k, a); err != nil {
		return err
	}
	return e.sync(k, change{kind: chService})
}

// DelLocalAddr implements engine.Engine.
func (e *Engine) DelLocalAddr(k model.ServiceKey, a netip.Addr) error {
	if err := e.Table.DelLocalAddr(k, a); err != nil {
		return err
	}
	return e.sync(k, change{kind: chService})
}
