package engine

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

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
