package control

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"gvs/api"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

func pfx(ss ...string) []netip.Prefix {
	out := []netip.Prefix{}
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func allowOp(svc model.Service, ss ...string) api.Op {
	return api.Op{Op: api.SetAllow, Service: model.Service{ServiceKey: svc.ServiceKey}, Allow: pfx(ss...)}
}

// A service's allow list is saved with the rules and comes back after a
// restart; deleting the service deletes it.
func TestAllowSavedAndRestored(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(newEngine(), store, quiet())
	svc, other := key("198.18.0.1:80"), key("198.18.0.2:80")
	if err := c.Do([]api.Op{
		{Op: api.AddService, Service: svc},
		{Op: api.AddDest, Service: svc, Dest: dest("198.18.1.1:8080", 1)},
		allowOp(svc, "203.0.113.7/32", "198.18.0.9/24"),
		{Op: api.AddService, Service: other},
		allowOp(other, "198.18.9.0/24"),
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(store.Path())
	if err != nil || !strings.Contains(string(b), `"allow":[`) || !strings.Contains(string(b), `"198.18.0.0/24"`) {
		t.Fatalf("rules.json has no allow list (%v):\n%s", err, b)
	}
	if err := c.Do([]api.Op{{Op: api.DelService, Service: other}, {Op: api.AddService, Service: other}}); err != nil {
		t.Fatal(err)
	}
	c2 := New(newEngine(), store, quiet())
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	got := c2.Engine().Services()
	if len(got) != 2 || !slices.Equal(got[0].Allow, pfx("198.18.0.0/24", "203.0.113.7/32")) || got[1].Allow != nil {
		t.Fatalf("restored %+v", got)
	}
	// Restoring puts the list right after its service, before the servers.
	ops := c2.rules().Ops()
	kinds := []api.OpKind{}
	for _, o := range ops {
		kinds = append(kinds, o.Op)
	}
	if want := []api.OpKind{api.SetTimeouts, api.AddService, api.SetAllow, api.AddDest, api.AddService}; !slices.Equal(kinds, want) {
		t.Fatalf("restore ops %v, want %v", kinds, want)
	}
}

// A rules.json written before allow lists existed is read as it was.
func TestRestoreWithoutAllow(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := `{"version": 1, "timeouts": {"tcp": 900, "tcp_fin": 120, "udp": 300},
  "services": [{"service": {"protocol": "tcp", "addr": "198.18.0.1", "port": 80, "family": 4, "scheduler": "wlc", "flags": 0, "timeout": 0, "netmask": 4294967295},
    "dests": [{"addr": "198.18.1.1", "port": 8080, "method": "masq", "weight": 1, "u_threshold": 0, "l_threshold": 0}]}]}`
	if err := os.WriteFile(store.Path(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(newEngine(), store, quiet())
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	got := c.Engine().Services()
	if len(got) != 1 || len(got[0].Dests) != 1 || got[0].Allow != nil {
		t.Fatalf("restored %+v from a file without allow lists", got)
	}
}

// A refused list anywhere in a batch changes nothing, and the reason
// names the entry.
func TestAllowBatchAllOrNothing(t *testing.T) {
	c := New(newEngine(), nil, quiet())
	svc := key("198.18.0.1:80")
	if err := c.Do([]api.Op{{Op: api.AddService, Service: svc}, allowOp(svc, "198.18.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ops   []api.Op
		index int
		want  error
		msg   string
	}{
		{[]api.Op{allowOp(svc, "10.0.0.0/8"), allowOp(svc, "2001:db8::/32")}, 1, model.ErrAllowInvalid, "2001:db8::/32"},
		{[]api.Op{allowOp(svc, "10.0.0.0/8", "10.1.0.0/8")}, 0, model.ErrAllowExists, "10.1.0.0/8"},
		{[]api.Op{allowOp(key("198.18.0.2:80"), "10.0.0.0/8")}, 0, model.ErrServiceNotDefined, ""},
	} {
		err := c.Do(tc.ops)
		var be *BatchError
		if !errors.As(err, &be) || be.Index != tc.index || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want %v at %d naming %q", tc.ops, err, tc.want, tc.index, tc.msg)
		}
		if got := c.Engine().Services()[0].Allow; !slices.Equal(got, pfx("198.18.0.0/24")) {
			t.Fatalf("refused batch changed the list to %v", got)
		}
	}
}

// When the engine refuses half-way, the rollback puts the lists back as
// they were.
func TestAllowRollback(t *testing.T) {
	c := New(failingEngine{tableEngine{engine.NewTable(ipvs.Options{})}}, nil, quiet())
	svc, other := key("198.18.0.1:80"), key("198.18.0.2:80")
	if err := c.Do([]api.Op{{Op: api.AddService, Service: svc}, allowOp(svc, "198.18.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	err := c.Do([]api.Op{
		allowOp(svc, "10.0.0.0/8"),
		{Op: api.AddService, Service: other},
		allowOp(other, "10.0.0.0/8"),
		{Op: api.AddDest, Service: svc, Dest: dest("198.18.1.1:9999", 1)},
	})
	if err == nil {
		t.Fatal("the engine's refusal was lost")
	}
	got := c.Engine().Services()
	if len(got) != 1 || !slices.Equal(got[0].Allow, pfx("198.18.0.0/24")) {
		t.Fatalf("after rollback %+v", got)
	}
}

// Plan sets a list with one operation, only when it differs (in
// NormalizeAllow's form: order and host bits do not count), and for a new
// service before its servers.
func TestPlanAllow(t *testing.T) {
	svc := key("198.18.0.1:80").Normalize()
	k := model.Service{ServiceKey: svc.ServiceKey}
	d := dest("198.18.1.1:8080", 1)
	rules := func(dests []model.Dest, allow []netip.Prefix) *Rules {
		return &Rules{Services: []ServiceRules{{Service: svc, Dests: dests, Allow: allow}}}
	}
	for _, tc := range []struct {
		name      string
		cur, want *Rules
		ops       []api.Op
	}{
		{"same", rules(nil, pfx("10.0.0.0/8", "198.18.0.0/24")), rules(nil, pfx("198.18.0.0/24", "10.0.0.0/8")), nil},
		{"same unmasked", rules(nil, pfx("198.18.0.0/24")), rules(nil, pfx("198.18.0.77/24")), nil},
		{"none either way", rules(nil, nil), rules(nil, pfx()), nil},
		{"new list", rules(nil, nil), rules(nil, pfx("10.9.0.0/16", "10.0.0.0/8")),
			[]api.Op{{Op: api.SetAllow, Service: k, Allow: pfx("10.0.0.0/8", "10.9.0.0/16")}}},
		{"changed", rules(nil, pfx("10.0.0.0/8")), rules(nil, pfx("10.0.0.0/8", "10.9.9.9/32")),
			[]api.Op{{Op: api.SetAllow, Service: k, Allow: pfx("10.0.0.0/8", "10.9.9.9/32")}}},
		{"removed", rules(nil, pfx("10.0.0.0/8")), rules(nil, nil), []api.Op{{Op: api.SetAllow, Service: k}}},
		{"new service", &Rules{}, rules([]model.Dest{d}, pfx("10.0.0.0/8")), []api.Op{
			{Op: api.AddService, Service: svc},
			{Op: api.SetAllow, Service: k, Allow: pfx("10.0.0.0/8")},
			{Op: api.AddDest, Service: k, Dest: d},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.cur, tc.want)
			if len(got) != len(tc.ops) {
				t.Fatalf("plan %+v, want %+v", got, tc.ops)
			}
			for i := range got {
				if got[i].Op != tc.ops[i].Op || got[i].Service != tc.ops[i].Service || got[i].Dest != tc.ops[i].Dest ||
					!slices.Equal(got[i].Allow, tc.ops[i].Allow) {
					t.Fatalf("plan %+v, want %+v", got, tc.ops)
				}
			}
		})
	}
}

// A config file's lists converge with the rest: the service keeps its
// place and servers, only the list changes.
func TestConvergeAllow(t *testing.T) {
	c := New(newEngine(), nil, quiet())
	svc := key("198.18.0.1:80").Normalize()
	d := dest("198.18.1.1:8080", 1)
	rules := func(allow ...string) *Rules {
		return &Rules{Services: []ServiceRules{{Service: svc, Dests: []model.Dest{d}, Allow: pfx(allow...)}}}
	}
	for _, allow := range [][]string{
		{"198.18.0.0/24", "203.0.113.7/32"},
		{"198.18.0.0/24"},
		{},
		{"2001:db8::/32"}, // refused: nothing changes
		{"10.0.0.0/8"},
	} {
		err := c.Converge(rules(allow...))
		want := pfx(allow...)
		if len(allow) == 1 && strings.Contains(allow[0], ":") {
			if !errors.Is(err, model.ErrAllowInvalid) {
				t.Fatalf("converging to %v: %v", allow, err)
			}
			want = nil
		} else if err != nil {
			t.Fatal(err)
		}
		got := c.Engine().Services()
		if len(want) == 0 {
			want = nil
		}
		if len(got) != 1 || len(got[0].Dests) != 1 || !slices.Equal(got[0].Allow, want) {
			t.Fatalf("converged to %+v, want the list %v", got, want)
		}
		if err == nil {
			if p := Plan(c.rules(), rules(allow...)); len(p) != 0 {
				t.Fatalf("not converged, still to do: %+v", p)
			}
		}
	}
}

// Rules read from ipvsadm-save lines keep no list, and RulesFromOps
// carries a list its operations set.
func TestRulesFromOpsAllow(t *testing.T) {
	svc := key("198.18.0.1:80")
	r, err := RulesFromOps([]api.Op{{Op: api.AddService, Service: svc}, allowOp(svc, "198.18.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Services) != 1 || !slices.Equal(r.Services[0].Allow, pfx("198.18.0.0/24")) {
		t.Fatalf("rules %+v", r)
	}
}
