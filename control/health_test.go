package control

import (
	"net/netip"
	"testing"

	"gvs/api"
	"gvs/model"
)

// served returns the engine's destinations of svc as address -> weight.
func served(t *testing.T, c *Core, svc model.Service) map[string]int32 {
	t.Helper()
	m := map[string]int32{}
	for _, s := range c.Engine().Services() {
		if s.ServiceKey == svc.ServiceKey {
			for _, d := range s.Dests {
				m[d.AddrPort().String()] = d.Weight
			}
			return m
		}
	}
	t.Fatalf("%s not served", svc.ServiceKey)
	return nil
}

// configured returns the configured destinations of svc.
func configured(c *Core, svc model.Service) map[string]int32 {
	m := map[string]int32{}
	for _, s := range c.Rules().Services {
		if s.Service.ServiceKey == svc.ServiceKey {
			for _, d := range s.Dests {
				m[d.AddrPort().String()] = d.Weight
			}
		}
	}
	return m
}

func eq(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestHealthKeepsConfiguredAndEffectiveApart(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(newEngine(), store, quiet())
	svc := key("198.18.0.1:80")
	a, b := netip.MustParseAddrPort("198.18.1.1:80"), netip.MustParseAddrPort("198.18.1.2:80")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Do([]api.Op{{Op: api.AddService, Service: svc},
		{Op: api.AddDest, Service: svc, Dest: dest(a.String(), 3)},
		{Op: api.AddDest, Service: svc, Dest: dest(b.String(), 2)}}))
	all := map[string]int32{a.String(): 3, b.String(): 2}

	steps := []struct {
		name      string
		health    *ServiceHealth
		ops       []api.Op
		served    map[string]int32
		configure map[string]int32
	}{
		{name: "a fails: removed from the engine, still configured",
			health: &ServiceHealth{Dests: map[netip.AddrPort]DestHealth{a: {Down: true}}},
			served: map[string]int32{b.String(): 2}, configure: all},
		{name: "the operator changes a's weight: configured only",
			ops:    []api.Op{{Op: api.EditDest, Service: svc, Dest: dest(a.String(), 5)}},
			served: map[string]int32{b.String(): 2}, configure: map[string]int32{a.String(): 5, b.String(): 2}},
		{name: "a recovers with its new configured weight",
			health: &ServiceHealth{},
			served: map[string]int32{a.String(): 5, b.String(): 2}, configure: map[string]int32{a.String(): 5, b.String(): 2}},
		{name: "inhibit_on_failure: b kept at weight 0",
			health: &ServiceHealth{Dests: map[netip.AddrPort]DestHealth{b: {Down: true, Inhibit: true}}},
			served: map[string]int32{a.String(): 5, b.String(): 0}, configure: map[string]int32{a.String(): 5, b.String(): 2}},
		{name: "the operator deletes and re-adds b while it is down",
			ops: []api.Op{{Op: api.DelDest, Service: svc, Dest: dest(b.String(), 0)},
				{Op: api.AddDest, Service: svc, Dest: dest(b.String(), 4)}},
			served: map[string]int32{a.String(): 5, b.String(): 0}, configure: map[string]int32{a.String(): 5, b.String(): 4}},
		{name: "dynamic weights: misc asks 10 for a, file adds 3 to b",
			health: &ServiceHealth{Dests: map[netip.AddrPort]DestHealth{a: {Dynamic: []int64{10}}, b: {Add: 3}}},
			served: map[string]int32{a.String(): 10, b.String(): 7}, configure: map[string]int32{a.String(): 5, b.String(): 4}},
		{name: "quorum lost: both out, the sorry server in",
			health: &ServiceHealth{Dests: map[netip.AddrPort]DestHealth{a: {Down: true}, b: {Down: true}},
				Sorry: &SorryHealth{Dest: dest("198.18.2.1:80", 1), Active: true}},
			served: map[string]int32{"198.18.2.1:80": 1}, configure: map[string]int32{a.String(): 5, b.String(): 4}},
		{name: "quorum back, sorry_server_inhibit: the sorry server at weight 0",
			health: &ServiceHealth{Sorry: &SorryHealth{Dest: dest("198.18.2.1:80", 1), Inhibit: true}},
			served: map[string]int32{a.String(): 5, b.String(): 4, "198.18.2.1:80": 0}, configure: map[string]int32{a.String(): 5, b.String(): 4}},
	}
	for _, s := range steps {
		if s.health != nil {
			must(c.SetHealth(svc.ServiceKey, *s.health))
		}
		if s.ops != nil {
			must(c.Do(s.ops))
		}
		if got := served(t, c, svc); !eq(got, s.served) {
			t.Fatalf("%s: served %v, want %v", s.name, got, s.served)
		}
		if got := configured(c, svc); !eq(got, s.configure) {
			t.Fatalf("%s: configured %v, want %v", s.name, got, s.configure)
		}
	}

	// Saved rules are the configured ones: a restart serves them all until
	// the checks say otherwise.
	c2 := New(newEngine(), store, quiet())
	must(c2.Restore())
	if got := served(t, c2, svc); !eq(got, map[string]int32{a.String(): 5, b.String(): 4}) {
		t.Fatalf("restored %v", got)
	}

	// A service deleted and added again by hand gets its sorry server.
	must(c.Do([]api.Op{{Op: api.DelService, Service: svc}, {Op: api.AddService, Service: svc}}))
	if got := served(t, c, svc); !eq(got, map[string]int32{"198.18.2.1:80": 0}) {
		t.Fatalf("re-added service serves %v", got)
	}
}

func TestDestHealthWeight(t *testing.T) {
	for _, c := range []struct {
		h    DestHealth
		cfg  int32
		want int32
	}{
		{DestHealth{}, 3, 3},
		{DestHealth{Down: true, Inhibit: true}, 3, 0},
		{DestHealth{Dynamic: []int64{10}}, 3, 10},
		{DestHealth{Dynamic: []int64{10, 20}}, 3, 27}, // 3 + 7 + 17, as keepalived sums them
		{DestHealth{Add: -5}, 3, 0},
		{DestHealth{Add: 1 << 40}, 3, model.MaxWeight},
	} {
		if got := c.h.Weight(c.cfg); got != c.want {
			t.Errorf("%+v.Weight(%d) = %d, want %d", c.h, c.cfg, got, c.want)
		}
	}
}

// A sorry server with the address of a configured server (keepalived's
// s_svr_duplicates_rs) takes its place while the quorum is lost, and the
// service can be deleted and added again meanwhile.
func TestSorryServerIsAConfiguredServer(t *testing.T) {
	c := New(newEngine(), nil, quiet())
	svc := key("198.18.0.1:80")
	a, b := netip.MustParseAddrPort("198.18.1.1:80"), netip.MustParseAddrPort("198.18.1.2:80")
	add := []api.Op{{Op: api.AddService, Service: svc},
		{Op: api.AddDest, Service: svc, Dest: dest(a.String(), 3)},
		{Op: api.AddDest, Service: svc, Dest: dest(b.String(), 2)}}
	if err := c.Do(add); err != nil {
		t.Fatal(err)
	}
	lost := ServiceHealth{Dests: map[netip.AddrPort]DestHealth{a: {Down: true}, b: {Down: true}},
		Sorry: &SorryHealth{Dest: dest(a.String(), 7), Active: true}}
	if err := c.SetHealth(svc.ServiceKey, lost); err != nil {
		t.Fatal(err)
	}
	if got := served(t, c, svc); !eq(got, map[string]int32{a.String(): 7}) {
		t.Fatalf("quorum lost: %v", got)
	}
	if err := c.Do([]api.Op{{Op: api.DelService, Service: svc}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(add); err != nil {
		t.Fatalf("adding the service again: %v", err)
	}
	if got := served(t, c, svc); !eq(got, map[string]int32{a.String(): 7}) {
		t.Fatalf("re-added while lost: %v", got)
	}
	back := ServiceHealth{Sorry: &SorryHealth{Dest: dest(a.String(), 7), Inhibit: true}}
	if err := c.SetHealth(svc.ServiceKey, back); err != nil {
		t.Fatal(err)
	}
	if got := served(t, c, svc); !eq(got, map[string]int32{a.String(): 3, b.String(): 2}) {
		t.Fatalf("quorum back: %v", got)
	}
	if got := configured(c, svc); !eq(got, map[string]int32{a.String(): 3, b.String(): 2}) {
		t.Fatalf("configured: %v", got)
	}
}
