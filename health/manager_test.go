package health

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gvs/api"
	"gvs/check"
	"gvs/control"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

type tableEngine struct{ *engine.Table }

func (tableEngine) Name() string { return "table" }
func (tableEngine) Close() error { return nil }

// idle is a checker the tests drive through Manager.handle: its own loop
// never fires within a test.
type idle struct{}

func (idle) Check(ctx context.Context) check.Result { <-ctx.Done(); return check.Result{} }

type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) run(s *Script) {
	if s != nil {
		r.mu.Lock()
		r.ran = append(r.ran, s.Command)
		r.mu.Unlock()
	}
}
func (r *recorder) wait() {}
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ran
	r.ran = nil
	return out
}

var hour = time.Hour

func spec(kind check.Kind, retry int) check.Spec {
	return check.Spec{Kind: kind, Retry: &retry, DelayLoop: hour, Warmup: &hour}
}

type fixture struct {
	t       *testing.T
	core    *control.Core
	m       *Manager
	scripts *recorder
	svc     model.Service
}

// newFixture configures a NAT service with servers 198.18.1.N:80 of the
// given weights and a manager over it with cfg (Key filled in).
func newFixture(t *testing.T, weights []int32, cfg Service) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := control.New(tableEngine{engine.NewTable(ipvs.Options{})}, nil, log)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}, Scheduler: "wrr"}
	ops := []api.Op{{Op: api.AddService, Service: svc}}
	for i, w := range weights {
		ops = append(ops, api.Op{Op: api.AddDest, Service: svc, Dest: model.Dest{Addr: srvAddr(i).Addr(), Port: 80, Method: model.Masq, Weight: w}})
	}
	if err := core.Do(ops); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m := NewManager(core, log)
	m.newChecker = func(check.Spec, check.Target) (check.Checker, error) { return idle{}, nil }
	m.isLocal = func(netip.Addr) bool { return true }
	m.scripts = rec
	t.Cleanup(m.Close)
	cfg.Key = svc.ServiceKey
	if err := m.Update(&Config{Services: []Service{cfg}}); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, core: core, m: m, scripts: rec, svc: svc}
}

func srvAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}), 80)
}

// result feeds checker j of server i one result.
func (f *fixture) result(i, j int, up bool) {
	f.t.Helper()
	f.m.mu.Lock()
	ck := f.m.services[f.svc.ServiceKey].servers[i].checkers[j]
	f.m.mu.Unlock()
	f.m.handle(ck, check.Result{Up: up, Reason: map[bool]string{true: "ok", false: "connection refused"}[up]})
}

// served returns the engine's destinations as "ADDR:PORT=W", sorted.
func (f *fixture) served() string {
	var out []string
	for _, s := range f.core.Engine().Services() {
		for _, d := range s.Dests {
			out = append(out, d.AddrPort().String()+"="+strconv.Itoa(int(d.Weight)))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (f *fixture) want(step, served string) {
	f.t.Helper()
	if got := f.served(); got != served {
		f.t.Fatalf("%s: served %q, want %q", step, got, served)
	}
}

func servers(n int, mk func(i int) Server) []Server {
	var out []Server
	for i := range n {
		s := mk(i)
		s.Addr = srvAddr(i)
		out = append(out, s)
	}
	return out
}

func TestRetryThenDownThenUp(t *testing.T) {
	f := newFixture(t, []int32{1, 2}, Service{Servers: servers(2, func(int) Server {
		return Server{Checks: []check.Spec{spec(check.TCP, 2)}, NotifyUp: &Script{Command: "up"}, NotifyDown: &Script{Command: "down"}}
	})})
	all := "198.18.1.1:80=1 198.18.1.2:80=2"
	f.want("start", all)
	// The first check of a checker is not retried: a dead server found
	// at start goes at once (keepalived starts with the retries used).
	f.result(1, 0, false)
	f.want("first check failed", "198.18.1.1:80=1")
	f.result(1, 0, true)
	f.result(0, 0, true)
	f.scripts.take()
	f.result(0, 0, false)
	f.result(0, 0, false)
	f.want("two failures with retry 2", all)
	f.result(0, 0, true)
	f.result(0, 0, false)
	f.result(0, 0, false)
	f.want("a success starts the count again", all)
	f.result(0, 0, false)
	f.want("third failure in a row", "198.18.1.2:80=2")
	if got := f.scripts.take(); !slices.Equal(got, []string{"down"}) {
		t.Fatalf("scripts %v", got)
	}
	f.result(0, 0, false)
	f.want("still down", "198.18.1.2:80=2")
	f.result(0, 0, true)
	f.want("back at the first success", all)
	if got := f.scripts.take(); !slices.Equal(got, []string{"up"}) {
		t.Fatalf("scripts %v", got)
	}
	// The configured rules never changed.
	if d, _ := f.core.ConfiguredDests(f.svc.ServiceKey); len(d) != 2 {
		t.Fatalf("configured %v", d)
	}
}

func TestInhibitAndSeveralCheckers(t *testing.T) {
	f := newFixture(t, []int32{1, 2}, Service{Servers: servers(2, func(int) Server {
		return Server{Inhibit: true, Checks: []check.Spec{spec(check.TCP, 0), spec(check.HTTP, 0)}}
	})})
	f.result(1, 0, false)
	f.want("first checker down: weight 0", "198.18.1.1:80=1 198.18.1.2:80=0")
	f.result(1, 1, false)
	f.result(1, 0, true)
	f.want("one of two recovered: still 0", "198.18.1.1:80=1 198.18.1.2:80=0")
	f.result(1, 1, true)
	f.want("both recovered", "198.18.1.1:80=1 198.18.1.2:80=2")
}

func TestAlpha(t *testing.T) {
	alpha := spec(check.TCP, 1)
	alpha.Alpha = true
	f := newFixture(t, []int32{1, 1}, Service{Servers: servers(2, func(int) Server {
		return Server{Checks: []check.Spec{alpha}, NotifyDown: &Script{Command: "down"}}
	})})
	f.want("alpha: nothing served before a check", "")
	f.result(0, 0, true)
	f.want("first success", "198.18.1.1:80=1")
	f.result(1, 0, false)
	f.want("a failure keeps it out", "198.18.1.1:80=1")
	if got := f.scripts.take(); !slices.Equal(got, []string{"down"}) {
		t.Fatalf("alpha's first failure runs the down notifier: %v", got)
	}
}

func TestQuorumHysteresisSorry(t *testing.T) {
	f := newFixture(t, []int32{1, 1, 1}, Service{Quorum: 2, Hysteresis: 1,
		QuorumUp: &Script{Command: "qup"}, QuorumDown: &Script{Command: "qdown"},
		Sorry:   &Sorry{Dest: model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 80, Method: model.Masq, Weight: 1}},
		Servers: servers(3, func(int) Server { return Server{Checks: []check.Spec{spec(check.TCP, 0)}} })})
	f.want("start with quorum (3 >= 2+1)", "198.18.1.1:80=1 198.18.1.2:80=1 198.18.1.3:80=1")
	f.result(0, 0, false)
	f.result(1, 0, false)
	f.want("live weight 1 is not below 2-1", "198.18.1.3:80=1")
	if got := f.scripts.take(); len(got) != 0 {
		t.Fatalf("scripts %v", got)
	}
	f.result(2, 0, false)
	f.want("quorum lost: the sorry server", "198.18.2.1:80=1")
	if got := f.scripts.take(); !slices.Equal(got, []string{"qdown"}) {
		t.Fatalf("scripts %v", got)
	}
	f.result(0, 0, true)
	f.result(1, 0, true)
	f.want("live weight 2 is below 2+1: still sorry", "198.18.2.1:80=1")
	f.result(2, 0, true)
	f.want("quorum gained", "198.18.1.1:80=1 198.18.1.2:80=1 198.18.1.3:80=1")
	if got := f.scripts.take(); !slices.Equal(got, []string{"qup"}) {
		t.Fatalf("scripts %v", got)
	}
	st := f.m.Status().Services[0]
	if !st.QuorumUp || st.LiveWeight != 3 || st.SorryActive {
		t.Fatalf("status %+v", st)
	}
}

func TestSorryInhibitAndStartWithoutQuorum(t *testing.T) {
	alpha := spec(check.TCP, 0)
	alpha.Alpha = true
	f := newFixture(t, []int32{1}, Service{
		Sorry:   &Sorry{Inhibit: true, Dest: model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 80, Method: model.Masq, Weight: 5}},
		Servers: servers(1, func(int) Server { return Server{Checks: []check.Spec{alpha}} })})
	f.want("starting with quorum down: sorry server in", "198.18.2.1:80=5")
	f.result(0, 0, true)
	f.want("quorum: sorry_server_inhibit keeps it at 0", "198.18.1.1:80=1 198.18.2.1:80=0")
}

func TestDynamicWeights(t *testing.T) {
	misc := spec(check.Misc, 0)
	misc.Misc.Dynamic = true
	f := newFixture(t, []int32{3}, Service{Servers: servers(1, func(int) Server {
		return Server{Checks: []check.Spec{misc}}
	})})
	w := int64(7)
	f.m.mu.Lock()
	ck := f.m.services[f.svc.ServiceKey].servers[0].checkers[0]
	f.m.mu.Unlock()
	f.m.handle(ck, check.Result{Up: true, Weight: &w})
	f.want("misc_dynamic 9 -> weight 7", "198.18.1.1:80=7")
	f.m.handle(ck, check.Result{Up: true})
	f.want("plain success: configured weight", "198.18.1.1:80=3")
}

func TestReloadKeepsState(t *testing.T) {
	cfg := Service{Servers: servers(2, func(int) Server { return Server{Checks: []check.Spec{spec(check.TCP, 0)}} })}
	f := newFixture(t, []int32{1, 1}, cfg)
	f.result(0, 0, false)
	f.want("down", "198.18.1.2:80=1")
	cfg.Key = f.svc.ServiceKey
	if err := f.m.Update(&Config{Services: []Service{cfg}}); err != nil {
		t.Fatal(err)
	}
	f.want("same config reloaded: still down", "198.18.1.2:80=1")
	resched := cfg
	resched.Servers = servers(2, func(int) Server { return Server{Checks: []check.Spec{spec(check.TCP, 3)}} })
	if err := f.m.Update(&Config{Services: []Service{resched}}); err != nil {
		t.Fatal(err)
	}
	f.want("another retry count: the same check, still down", "198.18.1.2:80=1")
	changed := cfg
	other := spec(check.TCP, 3)
	other.ConnectPort = 8080
	changed.Servers = servers(2, func(int) Server { return Server{Checks: []check.Spec{other}} })
	if err := f.m.Update(&Config{Services: []Service{changed}}); err != nil {
		t.Fatal(err)
	}
	f.want("a check of another port starts afresh (up, not alpha)", "198.18.1.1:80=1 198.18.1.2:80=1")
	f.result(0, 0, false)
	if err := f.m.Update(&Config{}); err != nil {
		t.Fatal(err)
	}
	f.want("no checks any more: served as configured", "198.18.1.1:80=1 198.18.1.2:80=1")
}

// Reloads and the sorry server: one the new config drops while it serves
// gives the service back its live servers; one a reload adds while the
// quorum is lost comes in at once. An impossible quorum or hysteresis is
// lowered as keepalived's config check does.
func TestReloadSorryServerAndQuorumClamp(t *testing.T) {
	sorry := &Sorry{Dest: model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 80, Method: model.Masq, Weight: 1}}
	cfg := Service{Quorum: 2, Sorry: sorry, Servers: servers(2, func(int) Server { return Server{Checks: []check.Spec{spec(check.TCP, 0)}} })}
	f := newFixture(t, []int32{1, 1}, cfg)
	f.result(0, 0, false)
	f.want("live weight 1 < quorum 2: sorry", "198.18.2.1:80=1")
	cfg.Key = f.svc.ServiceKey
	noSorry := cfg
	noSorry.Sorry = nil
	if err := f.m.Update(&Config{Services: []Service{noSorry}}); err != nil {
		t.Fatal(err)
	}
	f.want("sorry server dropped by the reload: the live server serves", "198.18.1.2:80=1")
	if err := f.m.Update(&Config{Services: []Service{cfg}}); err != nil {
		t.Fatal(err)
	}
	f.want("sorry server added by a reload while the quorum is lost", "198.18.2.1:80=1")

	// quorum 8 on servers of total weight 6 is lowered to 6, so the
	// service starts with its quorum.
	g := newFixture(t, []int32{3, 3}, Service{Quorum: 8, Sorry: sorry,
		Servers: servers(2, func(int) Server { return Server{Checks: []check.Spec{spec(check.TCP, 0)}} })})
	g.want("starts with quorum", "198.18.1.1:80=3 198.18.1.2:80=3")
	if st := g.m.Status().Services[0]; st.Quorum != 6 || !st.QuorumUp {
		t.Fatalf("clamped status %+v", st)
	}
	// hysteresis 3 with quorum 2 is lowered to 1: with one server down
	// (live weight 3, not below 2-1) the quorum holds.
	h := newFixture(t, []int32{3, 3}, Service{Quorum: 2, Hysteresis: 3, Sorry: sorry,
		Servers: servers(2, func(int) Server { return Server{Checks: []check.Spec{spec(check.TCP, 0)}} })})
	h.result(0, 0, false)
	h.want("one down, within the hysteresis", "198.18.1.2:80=3")
	if st := h.m.Status().Services[0]; st.Hysteresis != 1 || !st.QuorumUp {
		t.Fatalf("clamped status %+v", st)
	}
}

// Prepare holds a new alpha server back before the rules bring it in, so
// it is never served before its first check.
func TestPrepareHoldsAlphaBack(t *testing.T) {
	plain := Server{Checks: []check.Spec{spec(check.TCP, 0)}}
	f := newFixture(t, []int32{1}, Service{Servers: []Server{{Addr: srvAddr(0), Checks: plain.Checks}}})
	alpha := spec(check.TCP, 0)
	alpha.Alpha = true
	cfg := Service{Key: f.svc.ServiceKey, Servers: []Server{{Addr: srvAddr(0), Checks: plain.Checks}, {Addr: srvAddr(1), Checks: []check.Spec{alpha}}}}
	if err := f.m.Prepare(&Config{Services: []Service{cfg}}); err != nil {
		t.Fatal(err)
	}
	if err := f.core.Do([]api.Op{{Op: api.AddDest, Service: f.svc, Dest: model.Dest{Addr: srvAddr(1).Addr(), Port: 80, Method: model.Masq, Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	f.want("the alpha server added by the rules", "198.18.1.1:80=1")
	if err := f.m.Update(&Config{Services: []Service{cfg}}); err != nil {
		t.Fatal(err)
	}
	f.want("after Update", "198.18.1.1:80=1")
	f.result(1, 0, true)
	f.want("first success", "198.18.1.1:80=1 198.18.1.2:80=1")
}
