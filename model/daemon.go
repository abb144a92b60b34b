package model

import (
	"net/netip"
	"syscall"
)

// SyncDaemon is a connection synchronisation daemon, as ipvsadm
// --start-daemon configures it and -L --daemon lists it.
type SyncDaemon struct {
	State    string `json:"state"` // "master" or "backup"
	McastIfn string `json:"mcast_interface"`
	SyncID   uint8  `json:"syncid"`
	// The rest are filled in by Normalize with the kernel's defaults.
	SyncMaxLen uint16     `json:"sync_maxlen,omitempty"`
	McastGroup netip.Addr `json:"mcast_group,omitzero"`
	McastPort  uint16     `json:"mcast_port,omitempty"`
	McastTTL   uint8      `json:"mcast_ttl,omitempty"`
}

// The kernel's sync defaults (ip_vs_sync.c start_sync_thread).
var (
	DefaultSyncGroup  = netip.MustParseAddr("224.0.0.81")
	DefaultSyncPort   = uint16(8848)
	DefaultSyncTTL    = uint8(1)
	defaultSyncMaxLen = uint16(1500 - 20 - 8) // an Ethernet MTU less IPv4 and UDP headers
)

// Normalize fills in what start_sync_thread does: group 224.0.0.81, port
// 8848, TTL 1, and a message size of 1500 bytes less the IP and UDP
// headers (the kernel's master uses 1500, its backup the interface's MTU
// if larger; gvs's backup reads any size up to 64 KiB).
func (d SyncDaemon) Normalize() SyncDaemon {
	if !d.McastGroup.IsValid() {
		d.McastGroup = DefaultSyncGroup
	}
	if d.McastPort == 0 {
		d.McastPort = DefaultSyncPort
	}
	if d.McastTTL == 0 {
		d.McastTTL = DefaultSyncTTL
	}
	if d.SyncMaxLen == 0 {
		d.SyncMaxLen = defaultSyncMaxLen
		if d.McastGroup.Is6() {
			d.SyncMaxLen -= 20
		}
	}
	return d
}

// The refusals of --start-daemon and --stop-daemon, in libipvs's words.
var (
	ErrDaemonRunning = &Error{syscall.EEXIST, "Daemon has already run"}
	ErrNoDaemon      = &Error{syscall.ESRCH, "No daemon is running"}
	ErrNoSuchDevice  = &Error{syscall.ENODEV, "No such device"}
)
