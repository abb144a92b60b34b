// Package lbaas serves the OpenStack Octavia v2 load-balancer API
// (/v2 and /v2.0): load balancers, listeners, pools, members and health
// monitors, with Octavia's validation, status codes and status
// derivation, kept in a store. It never touches a network namespace:
// what a load balancer should be is handed, as a Spec, to an Agent
// (package lbagent), which runs it as a gvsd in namespace lvs-<id>.
package lbaas

import (
	"context"
	"net/netip"
	"time"
)

// Spec is a whole load balancer as the agent must realise it: everything
// the API holds for it, the ids included, resolved (the VIP's network and
// subnet as the config names them).
type Spec struct {
	ID      string     `json:"id"`
	VIP     netip.Addr `json:"vip_address"`
	AdminUp bool       `json:"admin_state_up"`
	// Network is where the VIP's port is plugged.
	Network   NetworkRef     `json:"network"`
	Listeners []ListenerSpec `json:"listeners"`
	Pools     []PoolSpec     `json:"pools"`
}

// NetworkRef is the VIP's network and subnet, from the config.
type NetworkRef struct {
	NetworkID string       `json:"network_id"`
	SubnetID  string       `json:"subnet_id"`
	Bridge    string       `json:"bridge"`
	CIDR      netip.Prefix `json:"cidr"`
	Gateway   netip.Addr   `json:"gateway,omitzero"`
}

// ListenerSpec is a listener: a virtual service on VIP:ProtocolPort.
type ListenerSpec struct {
	ID              string `json:"id"`
	Protocol        string `json:"protocol"` // TCP, UDP, SCTP
	ProtocolPort    uint16 `json:"protocol_port"`
	AdminUp         bool   `json:"admin_state_up"`
	ConnectionLimit int    `json:"connection_limit"` // -1: none
	DefaultPoolID   string `json:"default_pool_id,omitempty"`
}

// PoolSpec is a pool with its members and health monitor.
type PoolSpec struct {
	ID          string `json:"id"`
	Protocol    string `json:"protocol"`
	LBAlgorithm string `json:"lb_algorithm"` // ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT
	AdminUp     bool   `json:"admin_state_up"`
	// SessionPersistence is nil without one; Type SOURCE_IP is what LVS
	// does (persistence); others are refused by the API for these
	// protocols.
	SessionPersistence *SessionPersistence `json:"session_persistence,omitempty"`
	Members            []MemberSpec        `json:"members"`
	HealthMonitor      *HealthMonitorSpec  `json:"healthmonitor,omitempty"`
}

// SessionPersistence is a pool's session_persistence.
type SessionPersistence struct {
	Type                   string `json:"type"`
	PersistenceTimeout     int    `json:"persistence_timeout,omitempty"`     // seconds; 0: the default (360)
	PersistenceGranularity string `json:"persistence_granularity,omitempty"` // a netmask; "": 255.255.255.255
}

// MemberSpec is a pool member: a real server.
type MemberSpec struct {
	ID           string     `json:"id"`
	Address      netip.Addr `json:"address"`
	ProtocolPort uint16     `json:"protocol_port"`
	Weight       int        `json:"weight"` // 0..256; 0: drain
	AdminUp      bool       `json:"admin_state_up"`
	Backup       bool       `json:"backup"` // a sorry server
	SubnetID     string     `json:"subnet_id,omitempty"`
	// MonitorAddress and MonitorPort override where its health
	// monitor checks (zero: the member's own).
	MonitorAddress netip.Addr `json:"monitor_address,omitzero"`
	MonitorPort    uint16     `json:"monitor_port,omitempty"`
}

// HealthMonitorSpec is a pool's health monitor.
type HealthMonitorSpec struct {
	ID             string `json:"id"`
	Type           string `json:"type"`    // TCP, HTTP, HTTPS, PING, TLS-HELLO, UDP-CONNECT, SCTP
	Delay          int    `json:"delay"`   // seconds
	Timeout        int    `json:"timeout"` // seconds
	MaxRetries     int    `json:"max_retries"`
	MaxRetriesDown int    `json:"max_retries_down"`
	HTTPMethod     string `json:"http_method,omitempty"`
	URLPath        string `json:"url_path,omitempty"`
	ExpectedCodes  string `json:"expected_codes,omitempty"` // "200", "200-204", "200,202"
	HTTPVersion    string `json:"http_version,omitempty"`
	DomainName     string `json:"domain_name,omitempty"`
	AdminUp        bool   `json:"admin_state_up"`
}

// Agent realises load balancers. The API calls it from its worker
// (never from a request), one load balancer at a time per id.
type Agent interface {
	// Apply makes the load balancer run as spec says, creating its
	// namespace and director the first time and converging them after;
	// it returns once the director serves spec.
	Apply(ctx context.Context, spec *Spec) error
	// Delete removes the load balancer's director, namespace and port,
	// leaving nothing behind; deleting one that does not exist is not an
	// error.
	Delete(ctx context.Context, id string) error
	// Observe reports what the director sees: counters and the health of
	// members, for stats and operating_status.
	Observe(ctx context.Context, id string) (*Observed, error)
}

// Observed is what an agent reports of a running load balancer.
type Observed struct {
	// Listeners by listener id.
	Listeners map[string]ListenerStats `json:"listeners"`
	// Members by member id: up (its checks pass), or not; absent: no
	// health monitor or not known yet.
	Members map[string]MemberHealth `json:"members"`
	At      time.Time               `json:"at"`
}

// ListenerStats are Octavia's stats of a listener, from the director's
// counters.
type ListenerStats struct {
	BytesIn           uint64 `json:"bytes_in"`
	BytesOut          uint64 `json:"bytes_out"`
	ActiveConnections uint64 `json:"active_connections"`
	TotalConnections  uint64 `json:"total_connections"`
	RequestErrors     uint64 `json:"request_errors"`
}

// MemberHealth is a member's state as its health monitor sees it.
type MemberHealth struct {
	Up     bool   `json:"up"`
	Reason string `json:"reason,omitempty"`
}
