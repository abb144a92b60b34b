package xdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"gvs/api"
	"gvs/model"
)

// The kernel takes a server of the other family for tunnelling only; this
// data path tunnels IPv4 in IPv4 only, so it refuses that too, saying why.
func TestCheckDestFamily(t *testing.T) {
	e := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1")}
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4}}
	d := func(a string, m model.Method) model.Dest {
		return model.Dest{Addr: netip.MustParseAddr(a), Port: 80, Method: m, Weight: 1}
	}
	for _, c := range []struct {
		name string
		dest model.Dest
		want error  // nil: accepted
		msg  string // in the message
	}{
		{"TUN IPv4", d("198.18.1.1", model.Tunnel), nil, ""},
		{"DR IPv4", d("198.18.1.1", model.Route), nil, ""},
		{"NAT IPv4", d("198.18.1.1", model.Masq), nil, ""},
		{"FULLNAT IPv4", d("198.18.1.1", model.FullNAT), nil, ""},
		{"TUN IPv6 in IPv4", d("2001:db8::1", model.Tunnel), &model.Error{Errno: 95}, "IPv4 in IPv4"},
		// What the kernel itself refuses keeps the kernel's answer.
		{"DR IPv6 in IPv4", d("2001:db8::1", model.Route), model.ErrInvalid, ""},
		{"NAT IPv6 in IPv4", d("2001:db8::1", model.Masq), model.ErrInvalid, ""},
	} {
		for _, kind := range []api.OpKind{api.AddDest, api.EditDest} {
			err := e.Check(api.Op{Op: kind, Service: svc, Dest: c.dest})
			if c.want == nil {
				if err != nil {
					t.Errorf("%s %s: refused: %v", c.name, kind, err)
				}
				continue
			}
			var me *model.Error
			if !errors.As(err, &me) || me.Errno != c.want.(*model.Error).Errno || !strings.Contains(me.Msg, c.msg) {
				t.Errorf("%s %s: %v, want errno %d with %q", c.name, kind, err, c.want.(*model.Error).Errno, c.msg)
			}
		}
	}
}

// SCTP services: IPv4 taken, IPv6 refused; servers of every method taken
// (NAT and FULLNAT update the CRC32c after the port rewrite).
func TestCheckSCTP(t *testing.T) {
	e := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1")}
	k := model.ServiceKey{Protocol: model.ProtoSCTP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 3868, Family: model.IPv4}
	if err := e.Check(api.Op{Op: api.AddService, Service: model.Service{ServiceKey: k, Scheduler: "rr"}}); err != nil {
		t.Fatalf("IPv4 SCTP service refused: %v", err)
	}
	k6 := model.ServiceKey{Protocol: model.ProtoSCTP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 3868, Family: model.IPv6}
	if err := e.Check(api.Op{Op: api.AddService, Service: model.Service{ServiceKey: k6, Scheduler: "rr"}}); err == nil {
		t.Fatal("IPv6 SCTP service taken")
	}
	for _, m := range []model.Method{model.Route, model.Tunnel, model.Masq, model.FullNAT} {
		d := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 3868, Method: m, Weight: 1}
		for _, kind := range []api.OpKind{api.AddDest, api.EditDest} {
			if err := e.Check(api.Op{Op: kind, Service: model.Service{ServiceKey: k}, Dest: d}); err != nil {
				t.Errorf("%s %s: %v", m, kind, err)
			}
		}
	}
}
