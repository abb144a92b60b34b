package xdp

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"gvs/api"
	"gvs/ipvs"
	"gvs/model"
)

// The kernel takes a server of the other family for tunnelling only; so
// does this data path (IPv4 in IPv6), given an IPv6 tunnel source, and
// refuses it without one, saying why.
func TestCheckDestFamily(t *testing.T) {
	e := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1"), tunSrc6: netip.MustParseAddr("2001:db8::2")}
	no6 := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1")}
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4}}
	d := func(a string, m model.Method) model.Dest {
		return model.Dest{Addr: netip.MustParseAddr(a), Port: 80, Method: m, Weight: 1}
	}
	for _, c := range []struct {
		name string
		e    *Engine
		dest model.Dest
		want error  // nil: accepted
		msg  string // in the message
	}{
		{"TUN IPv4", e, d("198.18.1.1", model.Tunnel), nil, ""},
		{"DR IPv4", e, d("198.18.1.1", model.Route), nil, ""},
		{"NAT IPv4", e, d("198.18.1.1", model.Masq), nil, ""},
		{"FULLNAT IPv4", e, d("198.18.1.1", model.FullNAT), nil, ""},
		{"TUN IPv4 in IPv6", e, d("2001:db8::1", model.Tunnel), nil, ""},
		{"TUN IPv4 in IPv6 without an IPv6 source", no6, d("2001:db8::1", model.Tunnel), &model.Error{Errno: 95}, "IPv6 outer source"},
		// What the kernel itself refuses keeps the kernel's answer.
		{"DR IPv6 server", e, d("2001:db8::1", model.Route), model.ErrInvalid, ""},
		{"NAT IPv6 server", e, d("2001:db8::1", model.Masq), model.ErrInvalid, ""},
		{"FULLNAT IPv6 server", e, d("2001:db8::1", model.FullNAT), model.ErrInvalid, ""},
	} {
		for _, kind := range []api.OpKind{api.AddDest, api.EditDest} {
			err := c.e.Check(api.Op{Op: kind, Service: svc, Dest: c.dest})
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

// IPv6 services take IPv6 servers by every method, and IPv4 ones by
// FULLNAT (NAT64) and by tunnelling, which needs an outer source of the
// server's family; the other family is refused otherwise, as for IPv4.
func TestCheckDestIPv6(t *testing.T) {
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Family: model.IPv6}}
	d := func(a string, m model.Method) model.Dest {
		return model.Dest{Addr: netip.MustParseAddr(a), Port: 80, Method: m, Weight: 1}
	}
	with := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1"), tunSrc6: netip.MustParseAddr("2001:db8::2")}
	without := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1")}
	for _, c := range []struct {
		name  string
		e     *Engine
		dest  model.Dest
		errno int // 0: accepted
		msg   string
	}{
		{"DR", with, d("2001:db8::11", model.Route), 0, ""},
		{"NAT", with, d("2001:db8::11", model.Masq), 0, ""},
		{"FULLNAT", with, d("2001:db8::11", model.FullNAT), 0, ""},
		{"TUN", with, d("2001:db8::11", model.Tunnel), 0, ""},
		{"TUN without an IPv6 source", without, d("2001:db8::11", model.Tunnel), 95, "IPv6 outer source"},
		{"TUN IPv6 in IPv4", with, d("198.18.0.11", model.Tunnel), 0, ""},
		{"TUN IPv6 in IPv4 without an IPv4 source", &Engine{tunSrc6: netip.MustParseAddr("2001:db8::2")},
			d("198.18.0.11", model.Tunnel), 95, "IPv4 outer source"},
		// FULLNAT translates an IPv6 service's packets for IPv4
		// servers (NAT64, bpf/nat64.h); NAT and DR keep the family.
		{"NAT64", with, d("198.18.0.11", model.FullNAT), 0, ""},
		{"NAT64 without an IPv6 tunnel source", without, d("198.18.0.11", model.FullNAT), 0, ""},
		{"NAT IPv4 in IPv6", with, d("198.18.0.11", model.Masq), 22, ""},
		{"DR IPv4 in IPv6", with, d("198.18.0.11", model.Route), 22, ""},
	} {
		err := c.e.Check(api.Op{Op: api.AddDest, Service: svc, Dest: c.dest})
		if c.errno == 0 {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		var me *model.Error
		if !errors.As(err, &me) || int(me.Errno) != c.errno || !strings.Contains(me.Msg, c.msg) {
			t.Errorf("%s: %v, want errno %d with %q", c.name, err, c.errno, c.msg)
		}
	}
}

// The data path's pool holds 4 IPv6 local addresses: a fifth is refused
// with the reason, before anything changes.
func TestLocalAddrsIPv6(t *testing.T) {
	e := newEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Family: model.IPv6}
	if err := e.Table.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		a := netip.MustParseAddr("2001:db8:1::" + string(rune('1'+i)))
		if err := e.Check(api.Op{Op: api.AddLocalAddr, Service: model.Service{ServiceKey: k}, LocalAddr: a}); err != nil {
			t.Fatalf("local address %d refused: %v", i+1, err)
		}
		if err := e.Table.AddLocalAddr(k, a); err != nil {
			t.Fatal(err)
		}
	}
	err := e.Check(api.Op{Op: api.AddLocalAddr, Service: model.Service{ServiceKey: k}, LocalAddr: netip.MustParseAddr("2001:db8:1::9")})
	var me *model.Error
	if !errors.As(err, &me) || me.Errno != 95 || !strings.Contains(me.Msg, "at most 4") {
		t.Fatalf("fifth IPv6 local address: %v", err)
	}
	if err := e.AddLocalAddr(k, netip.MustParseAddr("2001:db8:1::9")); err == nil {
		t.Fatal("AddLocalAddr took a fifth IPv6 local address")
	}
	n := 0
	e.Do(func(v *ipvs.IPVS) { n = len(v.Service(k).LocalAddrs()) })
	if n != 4 {
		t.Fatalf("%d local addresses after the refusal", n)
	}
}

// SCTP services: IPv4 and IPv6 taken; servers of every method taken
// (NAT and FULLNAT update the CRC32c after the port rewrite), but not an
// IPv6 service's IPv4 FULLNAT server (NAT64 is TCP and UDP only).
func TestCheckSCTP(t *testing.T) {
	e := &Engine{tunSrc: netip.MustParseAddr("198.18.0.1"), tunSrc6: netip.MustParseAddr("2001:db8:ffff::1")}
	k := model.ServiceKey{Protocol: model.ProtoSCTP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 3868, Family: model.IPv4}
	k6 := model.ServiceKey{Protocol: model.ProtoSCTP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 3868, Family: model.IPv6}
	for _, sk := range []model.ServiceKey{k, k6} {
		if err := e.Check(api.Op{Op: api.AddService, Service: model.Service{ServiceKey: sk, Scheduler: "rr"}}); err != nil {
			t.Fatalf("%v SCTP service refused: %v", sk.Family, err)
		}
	}
	for _, m := range []model.Method{model.Route, model.Tunnel, model.Masq, model.FullNAT} {
		for _, c := range []struct {
			k    model.ServiceKey
			addr string
		}{{k, "198.18.1.1"}, {k6, "2001:db8:1::1"}} {
			d := model.Dest{Addr: netip.MustParseAddr(c.addr), Port: 3868, Method: m, Weight: 1}
			for _, kind := range []api.OpKind{api.AddDest, api.EditDest} {
				if err := e.Check(api.Op{Op: kind, Service: model.Service{ServiceKey: c.k}, Dest: d}); err != nil {
					t.Errorf("%s %s %s: %v", c.addr, m, kind, err)
				}
			}
		}
	}
	// IPv6 in IPv4 carries SCTP unchanged; NAT64 does not translate it.
	d := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 3868, Method: model.Tunnel, Weight: 1}
	if err := e.Check(api.Op{Op: api.AddDest, Service: model.Service{ServiceKey: k6}, Dest: d}); err != nil {
		t.Errorf("6in4 tunnel server refused: %v", err)
	}
	d.Method = model.FullNAT
	if err := e.Check(api.Op{Op: api.AddDest, Service: model.Service{ServiceKey: k6}, Dest: d}); err == nil {
		t.Error("NAT64 server taken for an IPv6 SCTP service")
	}
	tcp6 := k6
	tcp6.Protocol = model.ProtoTCP
	if err := e.Check(api.Op{Op: api.AddDest, Service: model.Service{ServiceKey: tcp6}, Dest: d}); err != nil {
		t.Errorf("NAT64 server refused for TCP: %v", err)
	}
}
