package ipvsadm

import (
	"fmt"

	"gvs/api"
	"gvs/model"
)

// Op returns the control API operation a rule-changing command stands for;
// ok is false for commands that only read (list, save, get-laddr, help,
// version) or that are not operations (restore: its lines are).
func (c *Command) Op() (op api.Op, ok bool, err error) {
	key := model.Service{ServiceKey: c.Service.ServiceKey}
	switch c.Kind {
	case KindAddService:
		return api.Op{Op: api.AddService, Service: c.Service}, true, nil
	case KindEditService:
		return api.Op{Op: api.EditService, Service: c.Service}, true, nil
	case KindDelService:
		return api.Op{Op: api.DelService, Service: key}, true, nil
	case KindAddDest:
		return api.Op{Op: api.AddDest, Service: key, Dest: c.Dest}, true, nil
	case KindEditDest:
		return api.Op{Op: api.EditDest, Service: key, Dest: c.Dest}, true, nil
	case KindDelDest:
		return api.Op{Op: api.DelDest, Service: key, Dest: c.Dest}, true, nil
	case KindFlush:
		return api.Op{Op: api.Clear}, true, nil
	case KindSetTimeout:
		return api.Op{Op: api.SetTimeouts, Timeouts: c.Timeouts}, true, nil
	case KindZero:
		return api.Op{Op: api.Zero, Service: key, AllServices: !c.HasService()}, true, nil
	case KindAddLaddr:
		return api.Op{Op: api.AddLocalAddr, Service: key, LocalAddr: c.LocalAddr}, true, nil
	case KindDelLaddr:
		return api.Op{Op: api.DelLocalAddr, Service: key, LocalAddr: c.LocalAddr}, true, nil
	case KindStartDaemon, KindStopDaemon:
		return op, false, fmt.Errorf("connection synchronisation daemons are not supported by gvs")
	}
	return op, false, nil
}
