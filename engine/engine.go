// Package engine defines the data-plane interface gvsd drives, and Table,
// the IPVS model instance that engines share for rules, scheduling,
// connections and counters.
package engine

import (
	"errors"
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

	AddService(model.Service) error
	EditService(model.Service) error
	DelService(model.ServiceKey) error
	AddDest(model.ServiceKey, model.Dest) error
	EditDest(model.ServiceKey, model.Dest) error
	DelDest(model.ServiceKey, netip.AddrPort) error
	Flush() error
	SetTimeouts(model.Timeouts) error
	Zero(*model.ServiceKey) error

	// Services returns the services in creation order, each with its
	// destinations in kernel list order (newest first), with counters.
	Services() []api.Service
	Totals() (stats.Counters, stats.Rates)
	Conns() []api.Conn
	Timeouts() model.Timeouts

	// Close stops forwarding and releases what the engine holds.
	Close() error
}

// ErrNotSupported marks a feature an engine does not have; the message
// says which engine has it.
var ErrNotSupported = errors.New("not supported by this engine")

// NotSupported returns a model.Error (exit status 1 in gvsadm) whose
// message explains what is missing and where to find it.
func NotSupported(msg string) error {
	return &model.Error{Errno: 95 /* EOPNOTSUPP */, Msg: msg}
}
