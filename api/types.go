// Package api defines what gvsd's control API carries: the JSON documents
// of /v1/..., shared by gvsd, gvsadm and any other client.
package api

import (
	"net/netip"
	"time"

	"gvs/model"
	"gvs/stats"
)

// Version is the IPVS version gvs reports, as the kernel's
// "IP Virtual Server version 1.2.1" banner.
const Version = "1.2.1"

// Info is GET /v1/info.
type Info struct {
	Version       string `json:"version"`         // IPVS version, "1.2.1"
	ConnTableSize int    `json:"conn_table_size"` // the banner's (size=...)
	Engine        string `json:"engine"`          // "proxy" or "xdp"
	GVSVersion    string `json:"gvs_version"`
}

// Service is a virtual service with its live counters and destinations.
type Service struct {
	model.Service
	Stats stats.Counters `json:"stats"`
	Rates stats.Rates    `json:"rates"`
	Dests []Dest         `json:"dests"`
	// LocalAddrs is the FULLNAT local address pool, in the order the
	// addresses were added (empty: the director's own address).
	LocalAddrs []netip.Addr `json:"local_addrs,omitempty"`
	// Allow is the source allow list: new connections only from these
	// prefixes, masked and sorted (absent: from anywhere).
	Allow []netip.Prefix `json:"allow,omitempty"`
}

// Dest is a destination with its live counts.
type Dest struct {
	model.Dest
	ActiveConns  int            `json:"active_conns"`
	InactConns   int            `json:"inact_conns"`
	PersistConns int            `json:"persist_conns"`
	Stats        stats.Counters `json:"stats"`
	Rates        stats.Rates    `json:"rates"`
}

// Conn is one entry of the connection table (ipvsadm -Lc), a persistence
// template included.
type Conn struct {
	Protocol model.Protocol `json:"protocol"` // ProtoNone for a fwmark template ("IP")
	Client   netip.AddrPort `json:"client"`
	Virtual  netip.AddrPort `json:"virtual"` // for a fwmark template the mark as an IPv4 address
	Dest     netip.AddrPort `json:"dest"`
	State    string         `json:"state"`     // "ESTABLISHED", "UDP", "NONE", ...
	ExpireMS int64          `json:"expire_ms"` // time left before expiry
	Template bool           `json:"template"`
	// Local is the director's address and port toward the real server
	// for FULLNAT connections (zero otherwise).
	Local netip.AddrPort `json:"local,omitzero"`
	// Synced: learnt from a sync master (ipvsadm -Lc does not show it).
	Synced bool `json:"synced,omitempty"`
}

// Snapshot is GET /v1/services: everything -L prints, plus the totals.
type Snapshot struct {
	Info     Info           `json:"info"`
	Services []Service      `json:"services"`
	Total    stats.Counters `json:"total"`
	Rates    stats.Rates    `json:"total_rates"`
}

// Events is GET /v1/events: the engine's data-path event counters by
// name (drops and their reasons), since the engine started. An engine
// that keeps none has an empty map.
type Events struct {
	Engine   string            `json:"engine"`
	Counters map[string]uint64 `json:"counters"`
}

// DestRequest names a destination of a service in API requests.
type DestRequest struct {
	Service model.ServiceKey `json:"service"`
	Dest    model.Dest       `json:"dest"`
}

// Health is GET /v1/checks: every health-checked service (gvs's
// extension; ipvsadm has no such listing).
type Health struct {
	Services []ServiceHealth `json:"services"`
}

// ServiceHealth is one checked service: its quorum and its servers.
type ServiceHealth struct {
	Service    model.ServiceKey `json:"service"`
	QuorumUp   bool             `json:"quorum_up"`
	LiveWeight int64            `json:"live_weight"` // effective weights of the live servers
	Quorum     uint32           `json:"quorum"`
	Hysteresis uint32           `json:"hysteresis"`
	// Sorry is the sorry server (absent: none); SorryActive while it
	// replaces the real servers.
	Sorry       *netip.AddrPort `json:"sorry_server,omitempty"`
	SorryActive bool            `json:"sorry_active"`
	Servers     []ServerHealth  `json:"servers"`
}

// ServerHealth is one checked real server.
type ServerHealth struct {
	Server  netip.AddrPort `json:"server"`
	Up      bool           `json:"up"`
	Inhibit bool           `json:"inhibit_on_failure"`
	Checks  []CheckStatus  `json:"checks"`
}

// CheckStatus is one checker of a server.
type CheckStatus struct {
	Kind string `json:"kind"` // TCP_CHECK, HTTP_GET, ...
	// Target is what it checks: ADDR:PORT, the MISC_CHECK command or the
	// FILE_CHECK file.
	Target string `json:"target"`
	Up     bool   `json:"up"`
	// LastResult is "ok", "failed", or "" before the first check;
	// LastReason says why (or what passed).
	LastResult          string    `json:"last_result"`
	LastReason          string    `json:"last_reason,omitempty"`
	LastCheck           time.Time `json:"last_check,omitzero"`
	LastTransition      time.Time `json:"last_transition,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	// Weight is a dynamic checker's last answer (MISC_CHECK's weight,
	// FILE_CHECK's addition).
	Weight *int64 `json:"weight,omitempty"`
}

// BGP is the BGP speaker's state (GET /v1/bgp).
type BGP struct {
	// Running is false when the config has no bgp section.
	Running  bool   `json:"running"`
	ASN      uint32 `json:"asn,omitempty"`
	RouterID string `json:"router_id,omitempty"`
	// Maintenance is on after gvsadm --maintenance on; Draining while its
	// drain period runs (VIPs announced with GRACEFUL_SHUTDOWN), until
	// DrainUntil.
	Maintenance bool       `json:"maintenance"`
	Draining    bool       `json:"draining"`
	DrainUntil  *time.Time `json:"drain_until,omitempty"`
	Peers       []BGPPeer  `json:"peers"`
	// VIPs are the service addresses: announced or why not.
	VIPs []BGPVIP `json:"vips"`
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	// State is the session's FSM state: idle, connect, active, opensent,
	// openconfirm, established.
	State string `json:"state"`
	// Uptime is since when the session is established.
	Uptime *time.Time `json:"uptime,omitempty"`
	// HoldTime is the negotiated hold time in seconds.
	HoldTime uint64 `json:"hold_time,omitempty"`
	// Flops counts the times the session went down.
	Flops uint32 `json:"flops"`
	// Received and Sent count the UPDATE messages.
	ReceivedUpdates uint64 `json:"received_updates"`
	SentUpdates     uint64 `json:"sent_updates"`
}

// BGPVIP is a service address and what the speaker does with it.
type BGPVIP struct {
	Prefix    netip.Prefix `json:"prefix"`
	Announced bool         `json:"announced"`
	// Reason says why: "up" (a service of the VIP has its servers), "down"
	// (none has), "maintenance", "draining".
	Reason      string   `json:"reason"`
	Communities []string `json:"communities,omitempty"`
	MED         *uint32  `json:"med,omitempty"`
	LocalPref   *uint32  `json:"local_pref,omitempty"`
}

// Maintenance is POST /v1/bgp/maintenance: on with a drain period in
// seconds (VIPs announced with GRACEFUL_SHUTDOWN, then withdrawn), or off.
type Maintenance struct {
	On    bool   `json:"on"`
	Drain uint32 `json:"drain"`
}
