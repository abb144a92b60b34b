package engine

import (
	"context"
	"net/netip"

	"gvs/conn"
	"gvs/model"
)

// SyncConn is a connection or persistence template as connection
// synchronization (gvs/ipvssync, the kernel's IPVS sync protocol)
// carries it between directors.
type SyncConn struct {
	Protocol model.Protocol
	// Client, Virtual and Dest: a template's Client is the masked
	// client address with port 0; its Virtual port is 0 for a port-zero
	// service, and so is its Dest port.
	Client, Virtual, Dest netip.AddrPort
	// Local is a FULLNAT connection's local address and port.
	Local    netip.AddrPort
	Method   model.Method
	Template bool
	// Inactive: counted in the server's inactive connections;
	// NoOutput: DR/TUN, the input-only TCP state table.
	Inactive, NoOutput bool
	// State is conn.None for templates, conn.StateUDP for UDP.
	State conn.State
	// Timeout is the entry's current timeout in seconds (0: the
	// receiver's default for the state, as version 0 messages have it).
	Timeout uint32
	FWMark  uint32
}

// Syncer is implemented by engines whose connections another director
// can take over (the xdp engine; the proxy engine's connections are its
// own sockets, and it returns a NotSupported error).
type Syncer interface {
	// SyncChanges starts exporting connection changes for a sync
	// master: batches of entries due to be sent (a controlled
	// connection's template before it), until ctx is done, when the
	// channel is closed. One exporter at a time.
	SyncChanges(ctx context.Context) (<-chan []SyncConn, error)
	// InstallSynced installs or updates entries learnt from a sync
	// master (templates first). Entries of services or servers the
	// engine does not have are skipped, as the kernel skips them.
	// InstallSynced(nil) reports whether the engine can install at all.
	InstallSynced([]SyncConn) (installed int, err error)
}
