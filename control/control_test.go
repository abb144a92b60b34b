package control

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"gvs/api"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

type tableEngine struct{ *engine.Table }

func (tableEngine) Name() string { return "table" }
func (tableEngine) Close() error { return nil }
func newEngine() engine.Engine   { return tableEngine{engine.NewTable(ipvs.Options{})} }
func quiet() *slog.Logger        { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func key(s string) model.Service {
	a := netip.MustParseAddrPort(s)
	return model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: a.Addr(), Port: a.Port(), Family: model.IPv4}}
}
func dest(s string, w int32) model.Dest {
	a := netip.MustParseAddrPort(s)
	return model.Dest{Addr: a.Addr(), Port: a.Port(), Method: model.Masq, Weight: w}
}

func TestBatchAllOrNothingAndRestart(t *testing.T) {
	dir := t.TempDir()
	store, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := New(newEngine(), store, quiet())
	svc := key("198.18.0.1:80")
	svc.Scheduler = "rr"
	ok := []api.Op{
		{Op: api.AddService, Service: svc},
		{Op: api.AddDest, Service: svc, Dest: dest("198.18.1.1:8080", 1)},
		{Op: api.AddDest, Service: svc, Dest: dest("198.18.1.2:8080", 3)},
		{Op: api.SetTimeouts, Timeouts: model.Timeouts{TCP: 60}},
	}
	if err := c.Do(ok); err != nil {
		t.Fatal(err)
	}
	// A batch whose third operation fails changes nothing.
	bad := []api.Op{
		{Op: api.DelDest, Service: svc, Dest: dest("198.18.1.1:8080", 0)},
		{Op: api.AddService, Service: key("198.18.0.2:80")},
		{Op: api.AddService, Service: key("198.18.0.2:80")},
	}
	err = c.Do(bad)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 2 || !errors.Is(err, model.ErrServiceExists) {
		t.Fatalf("bad batch: %v", err)
	}
	if n := len(c.Engine().Services()); n != 1 || len(c.Engine().Services()[0].Dests) != 2 {
		t.Fatalf("a refused batch changed the rules: %d services", n)
	}

	// A new daemon on the same state directory has the same rules, in the
	// same order.
	c2 := New(newEngine(), store, quiet())
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	got, want := c2.rules(), c.rules()
	if len(got.Services) != 1 || got.Timeouts != want.Timeouts ||
		got.Services[0].Dests[0] != want.Services[0].Dests[0] || got.Services[0].Dests[1] != want.Services[0].Dests[1] {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != filepath.Base(store.Path()) {
		t.Fatalf("state dir holds %v", ents)
	}
}

func TestPlanConverges(t *testing.T) {
	a, b := key("198.18.0.1:80"), key("198.18.0.2:80")
	a.Scheduler, b.Scheduler = "rr", "wlc"
	a, b = a.Normalize(), b.Normalize()
	cur := &Rules{Services: []ServiceRules{
		{Service: a, Dests: []model.Dest{dest("198.18.1.2:80", 1), dest("198.18.1.1:80", 1)}},
		{Service: b},
	}}
	a2 := a
	a2.Scheduler = "wrr"
	want := &Rules{Services: []ServiceRules{
		{Service: a2, Dests: []model.Dest{dest("198.18.1.3:80", 1), dest("198.18.1.2:80", 5)}},
	}}
	ops := Plan(cur, want)
	kinds := []api.OpKind{}
	for _, o := range ops {
		kinds = append(kinds, o.Op)
	}
	wantKinds := []api.OpKind{api.DelService, api.EditService, api.DelDest, api.EditDest, api.AddDest}
	if len(kinds) != len(wantKinds) {
		t.Fatalf("plan %v, want %v", kinds, wantKinds)
	}
	for i := range kinds {
		if kinds[i] != wantKinds[i] {
			t.Fatalf("plan %v, want %v", kinds, wantKinds)
		}
	}
	// Applying the plan gives exactly the wanted rules.
	c := New(newEngine(), nil, quiet())
	if err := c.Do(cur.Ops()); err != nil {
		t.Fatal(err)
	}
	if err := c.Converge(want); err != nil {
		t.Fatal(err)
	}
	if p := Plan(c.rules(), want); len(p) != 0 {
		t.Fatalf("not converged, still to do: %+v", p)
	}
}
