package control

import (
	"slices"

	"gvs/api"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// DaemonRunner runs connection synchronisation daemons (package
// ipvssync over an engine that can export and install connections).
type DaemonRunner interface {
	// StartDaemon starts d (normalised); model.ErrNoSuchDevice for an
	// unknown interface.
	StartDaemon(d model.SyncDaemon) error
	// StopDaemon stops the daemon of state ("master" or "backup"),
	// flushing what it has pending.
	StopDaemon(state string) error
}

// SetDaemonRunner gives the core what runs sync daemons; without one
// (the proxy engine) --start-daemon is refused.
func (c *Core) SetDaemonRunner(r DaemonRunner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.daemons = r
}

// Daemons returns the running sync daemons, master first.
func (c *Core) Daemons() []model.SyncDaemon {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.cfg.Daemons)
}

// configuredFrom returns the configured rules of the model v (after a
// batch), with the daemons kept.
func (c *Core) configuredFrom(v *ipvs.IPVS) *Rules {
	r := rulesOfModel(v)
	r.Daemons = c.cfg.Daemons
	return r
}

func isDaemonOp(o api.Op) bool { return o.Op == api.StartDaemon || o.Op == api.StopDaemon }

// doDaemon applies a daemon operation, alone in its batch: daemons are
// not rules of the engine and cannot be undone with them.
func (c *Core) doDaemon(ops []api.Op) error {
	if len(ops) != 1 {
		return &BatchError{0, model.Usage("--start-daemon and --stop-daemon cannot be batched with other commands")}
	}
	op := ops[0]
	running := slices.IndexFunc(c.cfg.Daemons, func(d model.SyncDaemon) bool { return d.State == op.Daemon.State })
	if op.Daemon.State != "master" && op.Daemon.State != "backup" {
		return &BatchError{0, model.Usage("illegal start-daemon parameter specified")}
	}
	if c.daemons == nil {
		return &BatchError{0, engine.NotSupported("connection synchronisation needs the xdp engine: the " + c.eng.Name() + " engine cannot hand live connections to another director")}
	}
	cfg := *c.cfg
	switch op.Op {
	case api.StartDaemon:
		if running >= 0 {
			return &BatchError{0, model.ErrDaemonRunning}
		}
		d := op.Daemon.Normalize()
		if err := c.daemons.StartDaemon(d); err != nil {
			return &BatchError{0, err}
		}
		cfg.Daemons = append(slices.Clone(cfg.Daemons), d)
		slices.SortFunc(cfg.Daemons, func(a, b model.SyncDaemon) int { return cmpState(a.State, b.State) })
	case api.StopDaemon:
		if running < 0 {
			return &BatchError{0, model.ErrNoDaemon}
		}
		if err := c.daemons.StopDaemon(op.Daemon.State); err != nil {
			return &BatchError{0, err}
		}
		cfg.Daemons = slices.Delete(slices.Clone(cfg.Daemons), running, running+1)
	}
	c.cfg = &cfg
	return c.save()
}

// cmpState orders master before backup, as ipvsadm lists them.
func cmpState(a, b string) int {
	rank := func(s string) int {
		if s == "master" {
			return 0
		}
		return 1
	}
	return rank(a) - rank(b)
}

// restoreDaemons starts the saved daemons; one that cannot start is
// logged and dropped (it can be started again by hand).
func (c *Core) restoreDaemons(saved []model.SyncDaemon) {
	var running []model.SyncDaemon
	for _, d := range saved {
		if c.daemons == nil {
			c.log.Error("saved sync daemon NOT started: the engine cannot run one", "state", d.State, "engine", c.eng.Name())
			continue
		}
		if err := c.daemons.StartDaemon(d.Normalize()); err != nil {
			c.log.Error("saved sync daemon NOT started", "state", d.State, "mcast_interface", d.McastIfn, "err", err)
			continue
		}
		c.log.Info("sync daemon restored", "state", d.State, "mcast_interface", d.McastIfn, "syncid", d.SyncID)
		running = append(running, d.Normalize())
	}
	cfg := *c.cfg
	cfg.Daemons = running
	c.cfg = &cfg
}

// SyncFollow is keepalived's lvs_sync_daemon: sync daemons the config
// file runs. Without an instance both daemons run; with one, the master
// daemon while that VRRP instance is MASTER and the backup daemon
// otherwise.
type SyncFollow struct {
	// Daemon is the daemons' settings (State unset; the rest as
	// --start-daemon's).
	Daemon model.SyncDaemon `json:"daemon"`
	// Instance is the VRRP instance followed ("" for none).
	Instance string `json:"instance,omitempty"`
	// SyncIDSet says the config gave the sync id; otherwise it is the
	// instance's virtual_router_id (0 without an instance), as keepalived
	// does.
	SyncIDSet bool `json:"syncid_set,omitempty"`
}
