package api

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"gvs/model"
)

// The local address travels as "local_addr", and only in the operations
// that have one; a service's pool as "local_addrs", only when it has one.
func TestLocalAddrJSON(t *testing.T) {
	k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}
	op := Op{Op: AddLocalAddr, Service: model.Service{ServiceKey: k}, LocalAddr: netip.MustParseAddr("198.18.3.1")}
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"op":"add-laddr"`) || !strings.Contains(string(b), `"local_addr":"198.18.3.1"`) {
		t.Errorf("add-laddr as %s", b)
	}
	var back Op
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, op) {
		t.Errorf("round trip %+v, %v", back, err)
	}
	for _, v := range []any{Op{Op: Clear}, Service{Service: model.Service{ServiceKey: k}}} {
		b, err := json.Marshal(v)
		if err != nil || strings.Contains(string(b), "local_addr") {
			t.Errorf("%s, %v: want no local address", b, err)
		}
	}
	b, _ = json.Marshal(Service{LocalAddrs: []netip.Addr{netip.MustParseAddr("198.18.3.1")}})
	if !strings.Contains(string(b), `"local_addrs":["198.18.3.1"]`) {
		t.Errorf("pool as %s", b)
	}
}

// set-allow carries the whole list as "allow", prefixes in CIDR
// notation; a service's list travels the same way, only when it has one.
func TestAllowJSON(t *testing.T) {
	k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}
	op := Op{Op: SetAllow, Service: model.Service{ServiceKey: k},
		Allow: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24"), netip.MustParsePrefix("203.0.113.7/32")}}
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"op":"set-allow"`) || !strings.Contains(string(b), `"allow":["198.18.0.0/24","203.0.113.7/32"]`) {
		t.Errorf("set-allow as %s", b)
	}
	var back Op
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, op) {
		t.Errorf("round trip %+v, %v", back, err)
	}
	if b, _ := json.Marshal(Service{Service: model.Service{ServiceKey: k}}); strings.Contains(string(b), "allow") {
		t.Errorf("a service without a list as %s", b)
	}
	b, _ = json.Marshal(Service{Allow: op.Allow})
	if !strings.Contains(string(b), `"allow":["198.18.0.0/24","203.0.113.7/32"]`) {
		t.Errorf("list as %s", b)
	}
}
