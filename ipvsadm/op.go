package ipvsadm

import (
	"fmt"
	"net/netip"

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
	case KindStartDaemon:
		d := model.SyncDaemon{State: c.Daemon.State, McastIfn: c.Daemon.McastIfn, SyncID: uint8(c.Daemon.SyncID),
			SyncMaxLen: uint16(c.Daemon.SyncMaxLen), McastPort: uint16(c.Daemon.McastPort), McastTTL: uint8(c.Daemon.McastTTL)}
		if c.Daemon.McastGroup != "" {
			a, err := netip.ParseAddr(c.Daemon.McastGroup)
			if err != nil {
				return op, false, fmt.Errorf("invalid mcast-group `%s'", c.Daemon.McastGroup)
			}
			d.McastGroup = a
		}
		return api.Op{Op: api.StartDaemon, Daemon: d}, true, nil
	case KindStopDaemon:
		return api.Op{Op: api.StopDaemon, Daemon: model.SyncDaemon{State: c.Daemon.State}}, true, nil
	}
	return op, false, nil
}
