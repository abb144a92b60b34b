package xdp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"gvs/bpf"
	"gvs/model"
)

// natServerEntries lists nat_servers as "proto addr:port=count".
func natServerEntries(t *testing.T, e *Engine) []string {
	t.Helper()
	var out []string
	var k bpf.SvcKey
	var v uint32
	it := e.objs.NatServers.Iterate()
	for it.Next(&k, &v) {
		a := netip.AddrFrom4([4]byte{byte(k.Addr[0]), byte(k.Addr[0] >> 8), byte(k.Addr[0] >> 16), byte(k.Addr[0] >> 24)})
		out = append(out, fmt.Sprintf("%d %v=%d", k.Proto, netip.AddrPortFrom(a, htons(k.Port)), v))
	}
	must(t, it.Err())
	slices.Sort(out)
	return out
}

// TestNATServers: nat_servers holds every masq server by the protocol of
// the services listing it (not DR or FULLNAT ones), counted, and what an
// earlier gvsd left there goes at the first write.
func TestNATServers(t *testing.T) {
	e := mapEngine(t)
	stale := bpf.SvcKey{Addr: addrWords(netip.MustParseAddr("203.0.113.9")), Port: htons(1), Proto: 6, Af: 4}
	must(t, e.objs.NatServers.Put(&stale, uint32(1)))
	check := func(step string, want ...string) {
		t.Helper()
		if got := natServerEntries(t, e); !slices.Equal(got, want) {
			t.Fatalf("%s: nat_servers %q, want %q", step, got, want)
		}
	}
	dest := func(a string, m model.Method) model.Dest {
		p := netip.MustParseAddrPort(a)
		return model.Dest{Addr: p.Addr(), Port: p.Port(), Method: m, Weight: 1}
	}
	a, b := tcpSvc("198.18.0.100:80"), tcpSvc("198.18.0.100:443")
	u := a
	u.Protocol = model.ProtoUDP
	for _, k := range []model.ServiceKey{a, b, u} {
		must(t, e.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	}
	check("no servers")
	must(t, e.AddDest(a, dest("198.18.64.20:8080", model.Masq)))
	must(t, e.AddDest(a, dest("198.18.64.21:8080", model.Route)))
	must(t, e.AddDest(a, dest("198.18.64.22:8080", model.FullNAT)))
	must(t, e.AddDest(b, dest("198.18.64.20:8080", model.Masq)))
	must(t, e.AddDest(u, dest("198.18.64.20:53", model.Masq)))
	check("added", "17 198.18.64.20:53=1", "6 198.18.64.20:8080=2")
	must(t, e.DelDest(a, netip.MustParseAddrPort("198.18.64.20:8080")))
	check("removed from one service", "17 198.18.64.20:53=1", "6 198.18.64.20:8080=1")
	must(t, e.EditDest(b, dest("198.18.64.20:8080", model.FullNAT)))
	check("made FULLNAT", "17 198.18.64.20:53=1")
	must(t, e.DelService(u))
	check("service deleted")
}
