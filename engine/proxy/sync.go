package proxy

import (
	"context"

	"gvs/engine"
)

var errNoSync = engine.NotSupported("connection synchronization needs the xdp engine: the proxy engine's connections are its own TCP sockets and UDP flows, which another director cannot take over")

// SyncChanges implements engine.Syncer: refused.
func (e *Engine) SyncChanges(context.Context) (<-chan []engine.SyncConn, error) {
	return nil, errNoSync
}

// InstallSynced implements engine.Syncer: refused.
func (e *Engine) InstallSynced([]engine.SyncConn) (int, error) { return 0, errNoSync }
