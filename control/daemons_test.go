package control

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gvs/api"
	"gvs/model"
)

type fakeRunner struct {
	running []string
	fail    error
}

func (f *fakeRunner) StartDaemon(d model.SyncDaemon) error {
	if f.fail != nil {
		return f.fail
	}
	f.running = append(f.running, d.State+"@"+d.McastIfn)
	return nil
}

func (f *fakeRunner) StopDaemon(state string) error {
	f.running = slices.DeleteFunc(f.running, func(s string) bool { return len(s) > len(state) && s[:len(state)] == state })
	return nil
}

func TestDaemons(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(newEngine(), store, quiet())
	start := func(state string) error {
		return c.Do([]api.Op{{Op: api.StartDaemon, Daemon: model.SyncDaemon{State: state, McastIfn: "eth0"}}})
	}
	if err := start("master"); err == nil || !strings.Contains(err.Error(), "needs the xdp engine") {
		t.Fatalf("no runner: %v", err)
	}
	r := &fakeRunner{}
	c.SetDaemonRunner(r)
	if err := start("backup"); err != nil {
		t.Fatal(err)
	}
	if err := start("master"); err != nil {
		t.Fatal(err)
	}
	if err := start("master"); !errors.Is(err, model.ErrDaemonRunning) {
		t.Fatalf("second master: %v", err)
	}
	if err := c.Do([]api.Op{{Op: api.StartDaemon, Daemon: model.SyncDaemon{State: "master"}}, {Op: api.Clear}}); err == nil {
		t.Fatal("a daemon op batched with a rule op")
	}
	got := c.Daemons()
	if len(got) != 2 || got[0].State != "master" || got[1].State != "backup" || got[0].McastPort != 8848 || got[0].SyncMaxLen != 1472 {
		t.Fatalf("daemons %+v", got)
	}
	// Rule changes keep the daemons; a restart starts them again.
	if err := c.Do([]api.Op{{Op: api.AddService, Service: key("198.18.0.1:80")}}); err != nil {
		t.Fatal(err)
	}
	r2 := &fakeRunner{}
	c2 := New(newEngine(), store, quiet())
	c2.SetDaemonRunner(r2)
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r2.running, []string{"master@eth0", "backup@eth0"}) || len(c2.Daemons()) != 2 {
		t.Fatalf("restored %v %+v", r2.running, c2.Daemons())
	}
	if err := c.Do([]api.Op{{Op: api.StopDaemon, Daemon: model.SyncDaemon{State: "master"}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do([]api.Op{{Op: api.StopDaemon, Daemon: model.SyncDaemon{State: "master"}}}); !errors.Is(err, model.ErrNoDaemon) {
		t.Fatalf("stop twice: %v", err)
	}
	// A daemon that cannot start is refused and not recorded.
	r.fail = model.ErrNoSuchDevice
	if err := start("master"); !errors.Is(err, model.ErrNoSuchDevice) {
		t.Fatalf("bad interface: %v", err)
	}
	if d := c.Daemons(); len(d) != 1 || d[0].State != "backup" {
		t.Fatalf("after refusals %+v", d)
	}
}
