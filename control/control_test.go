package control

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrList(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, addr(s))
	}
	return out
}

func laddrOp(kind api.OpKind, svc model.Service, a string) api.Op {
	return api.Op{Op: kind, Service: model.Service{ServiceKey: svc.ServiceKey}, LocalAddr: addr(a)}
}

// A service's pool is saved with the rules and comes back, in its order,
// after a restart.
func TestLocalAddrsSavedAndRestored(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(newEngine(), store, quiet())
	svc := key("198.18.0.1:80")
	ops := []api.Op{
		{Op: api.AddService, Service: svc},
		{Op: api.AddDest, Service: svc, Dest: model.Dest{Addr: addr("198.18.1.1"), Port: 8080, Method: model.FullNAT, Weight: 1}},
		laddrOp(api.AddLocalAddr, svc, "198.18.3.9"),
		laddrOp(api.AddLocalAddr, svc, "198.18.3.1"),
		laddrOp(api.AddLocalAddr, svc, "198.18.3.5"),
		laddrOp(api.DelLocalAddr, svc, "198.18.3.1"),
	}
	if err := c.Do(ops); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(store.Path())
	if err != nil || !strings.Contains(string(b), `"local_addrs"`) {
		t.Fatalf("rules.json has no pool (%v):\n%s", err, b)
	}
	c2 := New(newEngine(), store, quiet())
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	got := c2.Engine().Services()
	if want := addrList("198.18.3.9", "198.18.3.5"); len(got) != 1 || !slices.Equal(got[0].LocalAddrs, want) {
		t.Fatalf("restored %+v, want the pool %v", got, want)
	}
}

// A refused pool operation anywhere in a batch changes nothing.
func TestLocalAddrBatchAllOrNothing(t *testing.T) {
	c := New(newEngine(), nil, quiet())
	svc := key("198.18.0.1:80")
	if err := c.Do([]api.Op{{Op: api.AddService, Service: svc}, laddrOp(api.AddLocalAddr, svc, "198.18.3.1")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ops   []api.Op
		index int
		want  error
	}{
		{[]api.Op{laddrOp(api.AddLocalAddr, svc, "198.18.3.2"), laddrOp(api.AddLocalAddr, svc, "198.18.3.1")}, 1, model.ErrLocalAddrExists},
		{[]api.Op{laddrOp(api.DelLocalAddr, svc, "198.18.3.1"), laddrOp(api.DelLocalAddr, svc, "198.18.3.1")}, 1, model.ErrNoSuchLocalAddr},
		{[]api.Op{laddrOp(api.AddLocalAddr, svc, "2001:db8::1")}, 0, model.ErrInvalid},
		{[]api.Op{laddrOp(api.AddLocalAddr, key("198.18.0.2:80"), "198.18.3.2")}, 0, model.ErrServiceNotDefined},
	} {
		err := c.Do(tc.ops)
		var be *BatchError
		if !errors.As(err, &be) || be.Index != tc.index || !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v at %d", tc.ops, err, tc.want, tc.index)
		}
		if got := c.Engine().Services()[0].LocalAddrs; !slices.Equal(got, addrList("198.18.3.1")) {
			t.Fatalf("refused batch changed the pool to %v", got)
		}
	}
}

// failingEngine refuses, at apply time, what the model accepts: a
// destination on port 9999 (a listener that cannot bind, say).
type failingEngine struct{ tableEngine }

func (e failingEngine) AddDest(k model.ServiceKey, d model.Dest) error {
	if d.Port == 9999 {
		return &model.Error{Errno: 99, Msg: "cannot bind"}
	}
	return e.tableEngine.AddDest(k, d)
}

// When the engine refuses half-way, the rollback restores the pool as it
// was, order included.
func TestLocalAddrRollback(t *testing.T) {
	c := New(failingEngine{tableEngine{engine.NewTable(ipvs.Options{})}}, nil, quiet())
	svc, other := key("198.18.0.1:80"), key("198.18.0.2:80")
	setup := []api.Op{{Op: api.AddService, Service: svc}}
	for _, a := range []string{"198.18.3.1", "198.18.3.2", "198.18.3.3"} {
		setup = append(setup, laddrOp(api.AddLocalAddr, svc, a))
	}
	if err := c.Do(setup); err != nil {
		t.Fatal(err)
	}
	err := c.Do([]api.Op{
		laddrOp(api.DelLocalAddr, svc, "198.18.3.1"),
		laddrOp(api.AddLocalAddr, svc, "198.18.3.1"),
		laddrOp(api.AddLocalAddr, svc, "198.18.3.4"),
		{Op: api.AddService, Service: other},
		laddrOp(api.AddLocalAddr, other, "198.18.3.1"),
		{Op: api.AddDest, Service: svc, Dest: dest("198.18.1.1:9999", 1)},
	})
	if err == nil {
		t.Fatal("the engine's refusal was lost")
	}
	got := c.Engine().Services()
	if len(got) != 1 || !slices.Equal(got[0].LocalAddrs, addrList("198.18.3.1", "198.18.3.2", "198.18.3.3")) {
		t.Fatalf("after rollback %+v", got)
	}
}

func TestPlanLocalAddrs(t *testing.T) {
	svc := key("198.18.0.1:80")
	for _, tc := range []struct {
		name      string
		cur, want []string
		ops       []string // "+a" adds, "-a" deletes
	}{
		{"same", []string{"a", "b"}, []string{"a", "b"}, nil},
		{"new", nil, []string{"a", "b"}, []string{"+a", "+b"}},
		{"gone", []string{"a", "b"}, nil, []string{"-a", "-b"}},
		{"append", []string{"a"}, []string{"a", "b"}, []string{"+b"}},
		{"drop middle", []string{"a", "b", "c"}, []string{"a", "c"}, []string{"-b"}},
		{"drop first", []string{"a", "b", "c"}, []string{"b", "c"}, []string{"-a"}},
		{"swap", []string{"a", "b"}, []string{"b", "a"}, []string{"-a", "+a"}},
		{"rotate", []string{"a", "b", "c"}, []string{"b", "c", "a"}, []string{"-a", "+a"}},
		{"replace", []string{"a", "b"}, []string{"c"}, []string{"-a", "-b", "+c"}},
		{"insert front", []string{"b", "c"}, []string{"a", "b", "c"}, []string{"-b", "-c", "+a", "+b", "+c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := map[string]string{"a": "198.18.3.1", "b": "198.18.3.2", "c": "198.18.3.3"}
			name := map[netip.Addr]string{}
			conv := func(ss []string) []netip.Addr {
				var out []netip.Addr
				for _, s := range ss {
					out = append(out, addr(ip[s]))
					name[addr(ip[s])] = s
				}
				return out
			}
			cur, want := conv(tc.cur), conv(tc.want)
			var got []string
			for _, op := range planLocalAddrs(svc, cur, want) {
				sign := "+"
				if op.Op == api.DelLocalAddr {
					sign = "-"
				}
				got = append(got, sign+name[op.LocalAddr])
			}
			if !slices.Equal(got, tc.ops) {
				t.Errorf("plan %v, want %v", got, tc.ops)
			}
			// The plan gives exactly the wanted pool.
			pool := slices.Clone(cur)
			for _, op := range planLocalAddrs(svc, cur, want) {
				if op.Op == api.DelLocalAddr {
					pool = slices.DeleteFunc(pool, func(a netip.Addr) bool { return a == op.LocalAddr })
				} else {
					pool = append(pool, op.LocalAddr)
				}
			}
			if !slices.Equal(pool, want) {
				t.Errorf("plan gives %v, want %v", pool, want)
			}
		})
	}
}

// A config file's pools converge with the rest: the service keeps its
// place, only the pool changes.
func TestConvergeLocalAddrs(t *testing.T) {
	c := New(newEngine(), nil, quiet())
	svc := key("198.18.0.1:80").Normalize()
	rules := func(pool ...string) *Rules {
		return &Rules{Services: []ServiceRules{{Service: svc, LocalAddrs: addrList(pool...)}}}
	}
	for _, pool := range [][]string{
		{"198.18.3.1", "198.18.3.2"},
		{"198.18.3.2", "198.18.3.3"},
		{},
		{"198.18.3.3"},
	} {
		if err := c.Converge(rules(pool...)); err != nil {
			t.Fatal(err)
		}
		if got := c.Engine().Services()[0].LocalAddrs; !slices.Equal(got, addrList(pool...)) {
			t.Fatalf("converged to %v, want %v", got, pool)
		}
		if p := Plan(c.rules(), rules(pool...)); len(p) != 0 {
			t.Fatalf("not converged, still to do: %+v", p)
		}
	}
}
