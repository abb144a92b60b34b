// Package engine defines the data-plane interface gvsd drives, and Table,
// the IPVS model instance that engines share for rules, scheduling,
// connections and counters.
package engine

import (
	"net/netip"

	"gvs/api"
	"gvs/model"
	"gvs/stats"
)

// Engine is a data plane: it carries the traffic of the virtual services
// it is given. Rule operations have ipvsadm's semantics and return
// *model.Error values for what ipvsadm would refuse, so clients can print
// ipvsadm's message.
type Engine interface {
	// Name is "proxy" or "xdp".
	Name() string
	Rules

	// Services returns the services in creation order, each with its
	// destinations in kernel list order (newest first), with counters.
	Services() []api.Service
	Totals() (stats.Counters, stats.Rates)
	Conns() []api.Conn
	Timeouts() model.Timeouts

	// Close stops forwarding and releases what the engine holds.
	Close() error
}

// Rules are the rule operations, one per ipvsadm command. The model
// (ipvs.IPVS) has them too, which is how the control core dry-runs a batch.
type Rules interface {
	AddService(model.Service) error
	EditService(model.Service) error
	DelService(model.ServiceKey) error
	AddDest(model.ServiceKey, model.Dest) error
	EditDest(model.ServiceKey, model.Dest) error
	DelDest(model.ServiceKey, netip.AddrPort) error
	Flush() error
	SetTimeouts(model.Timeouts) error
	Zero(*model.ServiceKey) error
	// AddLocalAddr and DelLocalAddr change a service's FULLNAT local
	// address pool (DPVS ipvsadm -P and -Q).
	AddLocalAddr(model.ServiceKey, netip.Addr) error
	DelLocalAddr(model.ServiceKey, netip.Addr) error
}

// NotSupported returns a model.Error (exit status 1 in gvsadm) whose
// message explains what is missing and where to find it.
func NotSupported(msg string) error {
	return &model.Error{Errno: 95 /* EOPNOTSUPP */, Msg: msg}
}
