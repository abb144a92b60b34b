package api

import (
	"net/netip"

	"gvs/model"
)

// OpKind names a rule operation; each is an ipvsadm command.
type OpKind string

// Operations.
const (
	AddService  OpKind = "add-service"  // -A
	EditService OpKind = "edit-service" // -E
	DelService  OpKind = "del-service"  // -D
	AddDest     OpKind = "add-dest"     // -a
	EditDest    OpKind = "edit-dest"    // -e
	DelDest     OpKind = "del-dest"     // -d
	Clear       OpKind = "clear"        // -C
	Zero        OpKind = "zero"         // -Z (Service.Key zero: all)
	SetTimeouts OpKind = "set-timeouts" // --set

	// FULLNAT local address pools (DPVS ipvsadm's -P and -Q).
	AddLocalAddr OpKind = "add-laddr" // -P
	DelLocalAddr OpKind = "del-laddr" // -Q

	// SetAllow replaces a service's source allow list with Allow (empty:
	// no list); gvs's own, no ipvsadm command has it.
	SetAllow OpKind = "set-allow"

	// Connection synchronisation daemons (--start-daemon, --stop-daemon):
	// Daemon carries the daemon (its State alone for stop-daemon).
	StartDaemon OpKind = "start-daemon"
	StopDaemon  OpKind = "stop-daemon"
)

// Op is one rule operation. Service carries the service (its key alone
// for del-service, del-dest, add-dest, edit-dest, zero, add-laddr,
// del-laddr and set-allow), Dest the destination for the dest operations,
// LocalAddr the address for the local address operations, Allow the list
// of set-allow.
type Op struct {
	Op       OpKind         `json:"op"`
	Service  model.Service  `json:"service,omitzero"`
	Dest     model.Dest     `json:"dest,omitzero"`
	Timeouts model.Timeouts `json:"timeouts,omitzero"`
	// LocalAddr is the FULLNAT local address of add-laddr and del-laddr.
	LocalAddr netip.Addr `json:"local_addr,omitzero"`
	// Allow is set-allow's list: the whole list, prefixes in CIDR
	// notation (an address is ADDR/32 or ADDR/128).
	Allow []netip.Prefix `json:"allow,omitempty"`
	// AllServices with zero: every counter (ipvsadm -Z without a service).
	AllServices bool `json:"all_services,omitempty"`
	// Daemon is start-daemon's daemon, or stop-daemon's state.
	Daemon model.SyncDaemon `json:"daemon,omitzero"`
}

// Ops is the body of POST /v1/ops: applied in order, all or nothing.
type Ops struct {
	Ops []Op `json:"ops"`
}

// Error is the body of a failed request.
type Error struct {
	Message string `json:"message"`
	// Errno is the kernel errno of the refusal (0 for a usage error).
	Errno int `json:"errno"`
	// Index is the position of the failing operation in a batch.
	Index int `json:"index"`
	// Command is, for POST /v1/restore, the refused operation's command
	// (from 1; blank and comment lines are not commands); 0 otherwise.
	Command int `json:"command,omitempty"`
	// Exit is, for POST /v1/restore input refused before anything was
	// tried (a bad line), the status ipvsadm exits with; 0 otherwise.
	Exit int `json:"exit,omitempty"`
}
