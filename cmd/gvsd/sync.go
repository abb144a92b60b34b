package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"gvs/engine"
	"gvs/ipvssync"
	"gvs/model"
)

// syncRunner runs the connection synchronisation daemons the core asks
// for (--start-daemon, or a VRRP instance lvs_sync_daemon follows), over
// the engine's export and install of connections.
type syncRunner struct {
	log *slog.Logger
	eng engine.Syncer
	mu  sync.Mutex
	run map[string]*ipvssync.Daemon // by state
}

func newSyncRunner(log *slog.Logger, eng engine.Engine) *syncRunner {
	s, ok := eng.(engine.Syncer)
	if !ok {
		return nil
	}
	return &syncRunner{log: log, eng: s, run: map[string]*ipvssync.Daemon{}}
}

func (r *syncRunner) StartDaemon(d model.SyncDaemon) error {
	if _, err := net.InterfaceByName(d.McastIfn); err != nil {
		return model.ErrNoSuchDevice
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.run[d.State] != nil {
		return model.ErrDaemonRunning
	}
	dm, err := ipvssync.Start(context.Background(), ipvssync.DaemonConfig{State: d.State, Iface: d.McastIfn, SyncID: d.SyncID,
		MaxLen: int(d.SyncMaxLen), Group: d.McastGroup, Port: d.McastPort, TTL: d.McastTTL}, r.eng, r.log)
	if err != nil {
		return err
	}
	r.run[d.State] = dm
	r.log.Info("sync daemon started", "state", d.State, "mcast_interface", d.McastIfn, "syncid", d.SyncID,
		"group", d.McastGroup.String(), "port", d.McastPort)
	return nil
}

func (r *syncRunner) StopDaemon(state string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	dm := r.run[state]
	if dm == nil {
		return model.ErrNoDaemon
	}
	dm.Stop()
	delete(r.run, state)
	r.log.Info("sync daemon stopped", "state", state, "stats", fmt.Sprintf("%+v", dm.Stats()))
	return nil
}

// Close stops every daemon, a master sending what it holds first.
func (r *syncRunner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for state, dm := range r.run {
		dm.Stop()
		delete(r.run, state)
	}
}
