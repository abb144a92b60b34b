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
	// gone sums the counters of the daemons stopped, by state, so that
	// SyncStats never goes back.
	gone map[string]ipvssync.Stats
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
	r.keep(state, dm.Stats())
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
		r.keep(state, dm.Stats())
	}
}

// keep adds a stopped daemon's counters to gone. r.mu is held.
func (r *syncRunner) keep(state string, st ipvssync.Stats) {
	if r.gone == nil {
		r.gone = map[string]ipvssync.Stats{}
	}
	r.gone[state] = r.gone[state].Add(st)
}

// SyncStats implements metrics.SyncStats: for each state that has run,
// the counters of its daemons since gvsd started.
func (r *syncRunner) SyncStats() []ipvssync.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ipvssync.Stats
	for _, state := range []string{"master", "backup"} {
		st, ok := r.gone[state]
		if dm := r.run[state]; dm != nil {
			st, ok = st.Add(dm.Stats()), true
		}
		if ok {
			st.State = state
			out = append(out, st)
		}
	}
	return out
}
