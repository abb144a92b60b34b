package main

import (
	"log/slog"
	"sync"

	"gvs/api"
	"gvs/control"
	"gvs/model"
	"gvs/vrrp"
)

// syncFollower runs the sync daemons a config file's lvs_sync_daemon asks
// for, through the core (so they are listed by -L --daemon like those of
// --start-daemon): both daemons without an instance; with one, the
// master daemon while the VRRP instance is MASTER and the backup daemon
// otherwise, as keepalived does. With lvs_sync_daemon in the file, gvsd
// owns the daemons: one started by hand is replaced.
type syncFollower struct {
	log  *slog.Logger
	core *control.Core
	vm   *vrrp.Manager

	mu         sync.Mutex
	cfg        *control.SyncFollow
	state      map[string]vrrp.State // last state of each instance followed
	subscribed map[string]bool
	ran        map[string]bool // the daemons it wanted last
	kick       chan struct{}
	quit       chan struct{}
	done       chan struct{}
}

func newSyncFollower(log *slog.Logger, core *control.Core, vm *vrrp.Manager) *syncFollower {
	f := &syncFollower{log: log, core: core, vm: vm, state: map[string]vrrp.State{}, subscribed: map[string]bool{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

// Update follows cfg from now on (nil: the file runs no daemons; those
// it ran are stopped).
func (f *syncFollower) Update(cfg *control.SyncFollow) {
	f.mu.Lock()
	old := f.cfg
	f.cfg = cfg
	subscribe := cfg != nil && cfg.Instance != "" && !f.subscribed[cfg.Instance]
	if subscribe {
		f.subscribed[cfg.Instance] = true
	}
	f.mu.Unlock()
	if subscribe {
		// Not under f.mu: Subscribe may call f at once.
		name := cfg.Instance
		f.vm.Subscribe(name, func(st vrrp.State) {
			f.mu.Lock()
			f.state[name] = st
			f.mu.Unlock()
			f.poke()
		})
	}
	if cfg != nil || old != nil {
		f.poke()
	}
}

func (f *syncFollower) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *syncFollower) run() {
	defer close(f.done)
	for {
		select {
		case <-f.quit:
			return
		case <-f.kick:
			f.converge()
		}
	}
}

// converge starts and stops daemons until the running ones are those
// wanted.
func (f *syncFollower) converge() {
	f.mu.Lock()
	cfg := f.cfg
	var st vrrp.State
	if cfg != nil {
		st = f.state[cfg.Instance]
	}
	f.mu.Unlock()
	want := map[string]bool{}
	if cfg != nil {
		switch {
		case cfg.Instance == "":
			want["master"], want["backup"] = true, true
		case st == vrrp.StateMaster:
			want["master"] = true
		default:
			want["backup"] = true
		}
	}
	running := map[string]model.SyncDaemon{}
	for _, d := range f.core.Daemons() {
		running[d.State] = d
	}
	for _, state := range []string{"master", "backup"} {
		d, on := running[state]
		var wantD model.SyncDaemon
		if cfg != nil {
			wantD = cfg.Daemon
			wantD.State = state
			wantD = wantD.Normalize()
		}
		// Stop what is not wanted, or runs with other settings.
		if on && (!want[state] || d != wantD) {
			if cfg == nil && !f.owned(state) {
				continue
			}
			if err := f.core.Do([]api.Op{{Op: api.StopDaemon, Daemon: model.SyncDaemon{State: state}}}); err != nil {
				f.log.Error("lvs_sync_daemon: stopping the "+state+" daemon", "err", err)
				continue
			}
			on = false
		}
		if want[state] && !on {
			if err := f.core.Do([]api.Op{{Op: api.StartDaemon, Daemon: wantD}}); err != nil {
				f.log.Error("lvs_sync_daemon: starting the "+state+" daemon", "err", err)
			}
		}
	}
	f.mu.Lock()
	f.ran = want
	f.mu.Unlock()
}

// owned says whether the follower started the daemon of state (a file
// that drops lvs_sync_daemon stops those, not ones started by hand).
func (f *syncFollower) owned(state string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ran[state]
}

// Close stops following; the daemons stay for the core's shutdown.
func (f *syncFollower) Close() {
	close(f.quit)
	<-f.done
}
