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
	// Conns calls yield for each entry of the connection table,
	// templates included, until yield returns false. It reads the table
	// in batches and holds no lock while yield runs, so a slow consumer
	// (a client reading a listing) blocks neither the data path's
	// bookkeeping nor rule changes; entries added or removed meanwhile
	// may be listed or not. The error is what cut the listing short.
	Conns(yield func(api.Conn) bool) error
	Timeouts() model.Timeouts

	// Close stops forwarding and releases what the engine holds.
	Close() error
}

// Eventer is implemented by engines that count data-path events (drops
// and their reasons): GET /v1/events lists them.
type Eventer interface {
	// Events returns each counter by name (lower_snake_case, e.g.
	// "udp_flow_limit", or bpf.EventNames for the xdp engine), counted
	// since the engine started (the xdp engine's since its maps were
	// created); every counter the engine has, zero ones included.
	Events() map[string]uint64
}

// RawStats is implemented by the engines: Services and Totals with the
// running counters, which ipvsadm -Z does not reset (it moves the zero
// point that Services and Totals subtract). They count from the
// service's or server's creation (the xdp engine's: since its maps were
// created) and never go back: what metrics export.
type RawStats interface {
	RawServices() []api.Service
	RawTotals() stats.Counters
}

// ConnStates is the connection table counted by state.
type ConnStates struct {
	// ByState counts connections (templates excluded) by state as
	// ipvsadm -Lc names it: "ESTABLISHED", "SYN_RECV", "UDP", ...
	// (shared: callers must not change it).
	ByState map[string]uint64
	// Templates counts persistence templates.
	Templates uint64
	// Capacity is the most connections the table holds (0: no fixed
	// bound, as the proxy engine's).
	Capacity uint64
}

// ConnStater is implemented by engines that count their connection table
// by state without listing it (Conns converts every entry).
type ConnStater interface {
	ConnStates() ConnStates
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
	// SetAllow replaces a service's source allow list (empty: none):
	// new connections from sources it does not cover are refused (the
	// proxy closes or drops them, the xdp engine drops their packets),
	// counted as the event "denied"; established ones go on.
	SetAllow(model.ServiceKey, []netip.Prefix) error
}

// NotSupported returns a model.Error (exit status 1 in gvsadm) whose
// message explains what is missing and where to find it.
func NotSupported(msg string) error {
	return &model.Error{Errno: 95 /* EOPNOTSUPP */, Msg: msg}
}
