package engine

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvs/api"
	"gvs/ipvs"
	"gvs/model"
)

// The pool reaches the API documents, in the order of addition, as a
// copy the model does not share.
func TestTableLocalAddrs(t *testing.T) {
	tb := NewTable(ipvs.Options{})
	k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}
	if err := tb.AddService(model.Service{ServiceKey: k}); err != nil {
		t.Fatal(err)
	}
	if got := tb.Services()[0].LocalAddrs; got != nil {
		t.Fatalf("no pool listed as %v", got)
	}
	a, b := netip.MustParseAddr("198.18.3.2"), netip.MustParseAddr("198.18.3.1")
	for _, x := range []netip.Addr{a, b} {
		if err := tb.AddLocalAddr(k, x); err != nil {
			t.Fatal(err)
		}
	}
	got := tb.Services()[0].LocalAddrs
	if !slices.Equal(got, []netip.Addr{a, b}) {
		t.Fatalf("pool %v", got)
	}
	got[0] = netip.Addr{}
	if err := tb.DelLocalAddr(k, a); err != nil {
		t.Fatalf("the listing shares the model's pool: %v", err)
	}
	if err := tb.DelLocalAddr(k, a); !errors.Is(err, model.ErrNoSuchLocalAddr) {
		t.Fatalf("second delete: %v", err)
	}
}

// fillUDP adds a UDP service with one server and n client flows.
func fillUDP(t *testing.T, tb *Table, n int) {
	t.Helper()
	k := model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 53, Family: model.IPv4}
	if err := tb.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	d := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 53, Method: model.Masq, Weight: 1}
	if err := tb.AddDest(k, d); err != nil {
		t.Fatal(err)
	}
	tb.Do(func(v *ipvs.IPVS) {
		for i := range n {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 1000)
			if _, verdict := v.In(ipvs.Packet{Protocol: model.ProtoUDP, Src: src, Dst: netip.AddrPortFrom(k.Addr, k.Port), Len: 40}, tb.Now()); verdict != ipvs.Forward {
				t.Fatalf("datagram %d: verdict %v", i, verdict)
			}
		}
	})
}

// Conns lists every entry, in the model's order, and runs its consumer
// without the table lock: a rule change from inside the listing (what a
// slow API client amounts to) completes.
func TestTableConnsUnlocked(t *testing.T) {
	tb := NewTable(ipvs.Options{})
	const n = 3*connBatch + 7
	fillUDP(t, tb, n)
	var want []netip.AddrPort
	tb.Do(func(v *ipvs.IPVS) {
		for _, c := range v.Conns() {
			want = append(want, c.Client)
		}
	})
	var got []netip.AddrPort
	err := tb.Conns(func(c api.Conn) bool {
		got = append(got, c.Client)
		if len(got) == connBatch+1 {
			done := make(chan error)
			go func() { done <- tb.SetTimeouts(model.Timeouts{TCP: 60}) }()
			select {
			case err := <-done:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a rule change waits for the listing's consumer: the table is locked while it runs")
			}
		}
		return true
	})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("listed %d entries (err %v), want %d in the model's order", len(got), err, len(want))
	}
	// Stopping early stops.
	m := 0
	tb.Conns(func(api.Conn) bool { m++; return m < 10 })
	if m != 10 {
		t.Fatalf("yield called %d times after returning false at 10", m)
	}
}
