// Package health runs the health checks of the config file and applies
// keepalived's ipwrapper semantics to the rules: a failed server is
// removed (or, with inhibit_on_failure, kept at weight 0) and added back
// when it recovers; quorum with hysteresis, the sorry server, alpha and
// omega, notify scripts. It drives the rules only through the control
// core, which keeps the operator's configured weights apart from the
// effective ones the engine serves.
package health

import (
	"fmt"
	"net/netip"
	"time"

	"gvs/check"
	"gvs/model"
)

// Config is the health checking the config file asks for.
type Config struct {
	Services []Service `json:"services"`
}

// Service is one virtual server's checking.
type Service struct {
	Key model.ServiceKey `json:"service"`
	// Quorum is the least sum of the weights of live servers with which
	// the service is up (default 1); Hysteresis the dead band around it.
	Quorum     uint32  `json:"quorum"`
	Hysteresis uint32  `json:"hysteresis,omitempty"`
	QuorumUp   *Script `json:"quorum_up,omitempty"`
	QuorumDown *Script `json:"quorum_down,omitempty"`
	// Sorry is served instead of the real servers while the quorum is
	// lost.
	Sorry *Sorry `json:"sorry_server,omitempty"`
	// Omega runs the down notifiers when gvsd stops.
	Omega bool `json:"omega,omitempty"`
	// HASuspend suspends the checks while the VIP is not on this host.
	HASuspend bool     `json:"ha_suspend,omitempty"`
	Servers   []Server `json:"servers"`
}

// Sorry is a sorry server: a destination of the service (model.Dest:
// address, port, method, weight) and sorry_server_inhibit.
type Sorry struct {
	Dest    model.Dest `json:"dest"`
	Inhibit bool       `json:"inhibit,omitempty"`
}

// Server is one real server's checking.
type Server struct {
	Addr netip.AddrPort `json:"addr"`
	// Inhibit (inhibit_on_failure) keeps a failed server with weight 0
	// instead of removing it.
	Inhibit    bool         `json:"inhibit_on_failure,omitempty"`
	NotifyUp   *Script      `json:"notify_up,omitempty"`
	NotifyDown *Script      `json:"notify_down,omitempty"`
	Checks     []check.Spec `json:"checks"`
}

// Script is a notify or quorum script: a command line run without a
// shell (keepalived's quoting rules), as User:Group when given.
type Script struct {
	Command string        `json:"command"`
	User    string        `json:"user,omitempty"`
	Group   string        `json:"group,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Validate checks that every checker can be built (its kind is known and
// its options make sense), so that a config with a bad checker changes
// nothing. A nil config is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	for _, s := range c.Services {
		for _, srv := range s.Servers {
			for _, spec := range srv.Checks {
				if spec.ViaVIP && spec.FWMark != 0 {
					return fmt.Errorf("%s: real server %s: %s: via_vip with fwmark: via_vip marks the check itself", s.Key, srv.Addr, spec.Kind)
				}
				if _, err := check.New(spec, check.Target{Server: srv.Addr}); err != nil {
					return fmt.Errorf("%s: real server %s: %w", s.Key, srv.Addr, err)
				}
			}
		}
	}
	return nil
}
