package xdp

import (
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"testing"

	"gvs/bpf"
	"gvs/model"
)

// mapEngine is an engine over freshly loaded maps, not attached anywhere,
// as New sets it up.
func mapEngine(t *testing.T) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF maps")
	}
	e := newEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err := bpf.LoadObjectsSized(&e.objs, 1<<12); err != nil {
		t.Skipf("BPF: %v", err)
	}
	t.Cleanup(func() { e.objs.Close() })
	restartEngine(t, e)
	return e
}

// restartEngine sets e up over the maps it has, as a restarted gvsd
// does over the pinned ones.
func restartEngine(t *testing.T, e *Engine) {
	t.Helper()
	dm, err := mapDests(e.objs.Dests)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dm.close)
	e.dmem = dm
	if err := e.recoverIDs(); err != nil {
		t.Fatal(err)
	}
	if err := e.recoverAllow(); err != nil {
		t.Fatal(err)
	}
}

func tcpSvc(s string) model.ServiceKey {
	a := netip.MustParseAddrPort(s)
	return model.ServiceKey{Protocol: model.ProtoTCP, Addr: a.Addr(), Port: a.Port(), Family: model.IPv4}
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// allowEntries reads the whole allow map, as "id prefix" strings.
func allowEntries(t *testing.T, e *Engine) []string {
	t.Helper()
	var out []string
	var k bpf.AllowKey
	var v uint8
	it := e.objs.Allow.Iterate()
	for it.Next(&k, &v) {
		p := netip.PrefixFrom(wordsAddr(k.Addr, 4), int(k.Prefixlen)-32)
		out = append(out, idPrefix(k.Svc, p))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func idPrefix(id uint32, p netip.Prefix) string {
	return string(rune('0'+id)) + " " + p.String()
}

// want lists the entries the services' lists should make, by the ids the
// engine gave them.
func want(t *testing.T, e *Engine, lists map[model.ServiceKey][]string) []string {
	t.Helper()
	var out []string
	for k, l := range lists {
		id, ok := e.svcIDs[k]
		if !ok {
			t.Fatalf("%s has no id", k)
		}
		for _, s := range l {
			out = append(out, idPrefix(id, netip.MustParsePrefix(s)))
		}
	}
	slices.Sort(out)
	return out
}

// flagged says whether service k's value has the allow list flag; it
// fails the test when the service is not in the map.
func flagged(t *testing.T, e *Engine, k model.ServiceKey) bool {
	t.Helper()
	var sv bpf.Svc
	if err := e.objs.Services.Lookup(svcKey(k), &sv); err != nil {
		t.Fatalf("%s: %v", k, err)
	}
	return sv.Flags&allowFlag != 0
}

// admits asks the trie, as BPF does, whether service id admits a.
func admits(e *Engine, id uint32, a string) bool {
	k := allowKey(id, netip.PrefixFrom(netip.MustParseAddr(a), 32))
	var v uint8
	return e.objs.Allow.Lookup(&k, &v) == nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// SetAllow writes a service's list into the allow map under its id with
// the flag on its value; a new list replaces the old entries, an empty
// one clears the flag and the entries, and a deleted service's entries
// go with it. Other services' entries are left alone.
func TestAllowMaps(t *testing.T) {
	e := mapEngine(t)
	a, b := tcpSvc("198.18.0.100:80"), tcpSvc("198.18.0.100:443")
	must(t, e.AddService(model.Service{ServiceKey: a, Scheduler: "rr"}))
	must(t, e.AddService(model.Service{ServiceKey: b, Scheduler: "wlc"}))
	if flagged(t, e, a) || len(allowEntries(t, e)) != 0 {
		t.Fatal("a service without a list is flagged or has entries")
	}
	check := func(step string, lists map[model.ServiceKey][]string) {
		t.Helper()
		if got, w := allowEntries(t, e), want(t, e, lists); !slices.Equal(got, w) {
			t.Fatalf("%s: allow map %q, want %q", step, got, w)
		}
		for _, k := range []model.ServiceKey{a, b} {
			if _, ok := lists[k]; !ok {
				continue
			}
			if f := flagged(t, e, k); f != (len(lists[k]) > 0) {
				t.Fatalf("%s: %s flagged %v with the list %v", step, k, f, lists[k])
			}
		}
	}

	must(t, e.SetAllow(a, pfx("203.0.113.7/32", "198.18.5.9/24")))
	check("set", map[model.ServiceKey][]string{a: {"198.18.5.0/24", "203.0.113.7/32"}, b: nil})
	ida := e.svcIDs[a]
	if !admits(e, ida, "198.18.5.77") || !admits(e, ida, "203.0.113.7") || admits(e, ida, "198.18.6.1") || admits(e, e.svcIDs[b], "198.18.5.77") {
		t.Fatal("the trie does not answer as the list says")
	}
	must(t, e.SetAllow(b, pfx("198.18.5.0/24")))
	check("another service", map[model.ServiceKey][]string{a: {"198.18.5.0/24", "203.0.113.7/32"}, b: {"198.18.5.0/24"}})

	must(t, e.SetAllow(a, pfx("198.18.5.0/24", "198.18.6.0/23")))
	check("replaced", map[model.ServiceKey][]string{a: {"198.18.5.0/24", "198.18.6.0/23"}, b: {"198.18.5.0/24"}})

	// -E keeps the list and the flag.
	must(t, e.EditService(model.Service{ServiceKey: a, Scheduler: "wrr"}))
	check("edited", map[model.ServiceKey][]string{a: {"198.18.5.0/24", "198.18.6.0/23"}, b: {"198.18.5.0/24"}})

	must(t, e.SetAllow(a, nil))
	check("cleared", map[model.ServiceKey][]string{a: nil, b: {"198.18.5.0/24"}})

	must(t, e.SetAllow(a, pfx("10.0.0.0/8")))
	must(t, e.DelService(a))
	check("deleted", map[model.ServiceKey][]string{b: {"198.18.5.0/24"}})
	// Added again, the service has no list (and its id, revived, none).
	must(t, e.AddService(model.Service{ServiceKey: a}))
	check("added again", map[model.ServiceKey][]string{a: nil, b: {"198.18.5.0/24"}})

	must(t, e.Flush())
	check("flushed", map[model.ServiceKey][]string{})

	// A batch (a restore, a -R, a converge) writes the list with the
	// service.
	must(t, e.Batch(func() error {
		if err := e.AddService(model.Service{ServiceKey: a}); err != nil {
			return err
		}
		return e.SetAllow(a, pfx("198.18.7.0/24"))
	}))
	check("batch", map[model.ServiceKey][]string{a: {"198.18.7.0/24"}})
	if got := e.Services()[0].Allow; !slices.Equal(got, pfx("198.18.7.0/24")) {
		t.Fatalf("listed %v", got)
	}
}

// A restarted gvsd ends with the allow map equal to the rules it
// restores: entries of ids that are no live service's go at once, a
// restored service's list replaces what it had, and services the rules
// do not have go with their entries (Reconcile).
func TestAllowRestart(t *testing.T) {
	e := mapEngine(t)
	a, b, c := tcpSvc("198.18.0.100:80"), tcpSvc("198.18.0.100:443"), tcpSvc("198.18.0.101:80")
	for _, k := range []model.ServiceKey{a, b, c} {
		must(t, e.AddService(model.Service{ServiceKey: k}))
		must(t, e.SetAllow(k, pfx("198.18.1.0/24", "198.18.2.0/24")))
	}
	// What a gvsd stopped half-way may leave: entries of an id that is
	// no service's.
	stale := allowKey(77, netip.MustParsePrefix("198.18.9.0/24"))
	must(t, e.objs.Allow.Put(&stale, uint8(1)))
	ids := map[model.ServiceKey]uint32{a: e.svcIDs[a], b: e.svcIDs[b], c: e.svcIDs[c]}

	e2 := newEngine(e.log, Options{})
	e2.objs = e.objs
	restartEngine(t, e2)
	for k, id := range ids {
		if e2.svcIDs[k] != id {
			t.Fatalf("%s recovered id %d, had %d", k, e2.svcIDs[k], id)
		}
	}
	if got, w := allowEntries(t, e2), want(t, e2, map[model.ServiceKey][]string{
		a: {"198.18.1.0/24", "198.18.2.0/24"}, b: {"198.18.1.0/24", "198.18.2.0/24"}, c: {"198.18.1.0/24", "198.18.2.0/24"},
	}); !slices.Equal(got, w) {
		t.Fatalf("after recovery %q, want the live services' only: %q", got, w)
	}
	// The saved rules: a with another list, b with none, c gone.
	must(t, e2.Batch(func() error {
		for _, k := range []model.ServiceKey{a, b} {
			if err := e2.AddService(model.Service{ServiceKey: k}); err != nil {
				return err
			}
		}
		return e2.SetAllow(a, pfx("198.18.2.0/24", "198.18.3.0/24"))
	}))
	must(t, e2.Reconcile())
	if got, w := allowEntries(t, e2), want(t, e2, map[model.ServiceKey][]string{a: {"198.18.2.0/24", "198.18.3.0/24"}}); !slices.Equal(got, w) {
		t.Fatalf("after restore %q, want %q", got, w)
	}
	if !flagged(t, e2, a) || flagged(t, e2, b) {
		t.Fatal("flags not as the restored rules say")
	}
	if got := slices.Collect(maps.Keys(e2.allowed)); !slices.Equal(got, []uint32{ids[a]}) {
		t.Fatalf("the engine believes ids %v have entries", got)
	}
}

// An id cleaned for reuse loses any entry left under it.
func TestAllowCleanSvc(t *testing.T) {
	e := mapEngine(t)
	a := tcpSvc("198.18.0.100:80")
	must(t, e.AddService(model.Service{ServiceKey: a}))
	id := e.svcIDs[a]
	must(t, e.DelService(a))
	// As if the delete of an entry had failed.
	k := allowKey(id, netip.MustParsePrefix("198.18.1.0/24"))
	must(t, e.objs.Allow.Put(&k, uint8(1)))
	e.allowed[id] = map[bpf.AllowKey]bool{k: true}
	e.mu.Lock()
	err := e.cleanSvc(id)
	e.mu.Unlock()
	must(t, err)
	if got := allowEntries(t, e); len(got) != 0 || len(e.allowed) != 0 {
		t.Fatalf("after cleaning %q (%v)", got, e.allowed)
	}
}
