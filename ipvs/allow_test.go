package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"gvs/conn"
	"gvs/model"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// SetAllow keeps one form of a list (masked, sorted) and refuses, naming
// the entry, what does not fit the service; a refusal changes nothing.
func TestSetAllow(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoTCP, "198.18.0.1:80")
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	mustOK(t, v.SetAllow(k, prefixes("203.0.113.7/32", "198.18.0.7/24", "10.0.0.0/8")))
	want := prefixes("10.0.0.0/8", "198.18.0.0/24", "203.0.113.7/32")
	if got := v.Service(k).Allow(); !slices.Equal(got, want) {
		t.Fatalf("allow %v, want %v", got, want)
	}
	tooMany := make([]netip.Prefix, model.MaxAllow+1)
	for i := range tooMany {
		tooMany[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32)
	}
	for _, tc := range []struct {
		name string
		k    model.ServiceKey
		list []netip.Prefix
		want error
		msg  string
	}{
		{"no such service", svcKey(model.ProtoTCP, "198.18.0.2:80"), prefixes("10.0.0.0/8"), model.ErrServiceNotDefined, ""},
		{"other family", k, prefixes("10.0.0.0/8", "2001:db8::/32"), model.ErrAllowInvalid, "2001:db8::/32"},
		{"mapped", k, []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("::ffff:10.0.0.1"), 128)}, model.ErrAllowInvalid, "::ffff:10.0.0.1"},
		{"zero value", k, []netip.Prefix{{}}, model.ErrAllowInvalid, ""},
		{"twice once masked", k, prefixes("198.18.0.0/24", "198.18.0.9/24"), model.ErrAllowExists, "198.18.0.9/24"},
		{"too many", k, tooMany, model.ErrTooManyAllows, fmt.Sprint(model.MaxAllow + 1)},
	} {
		err := v.SetAllow(tc.k, tc.list)
		if !errors.Is(err, tc.want) || !contains(err, tc.msg) {
			t.Errorf("%s: %v, want %v naming %q", tc.name, err, tc.want, tc.msg)
		}
		if got := v.Service(k).Allow(); !slices.Equal(got, want) {
			t.Fatalf("%s: a refused list changed it to %v", tc.name, got)
		}
	}
	// Exactly MaxAllow is fine.
	mustOK(t, v.SetAllow(k, tooMany[:model.MaxAllow]))
	// -E keeps the list; an empty one removes it; -D and -C drop it.
	mustOK(t, v.SetAllow(k, want))
	mustOK(t, v.EditService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	if !slices.Equal(v.Service(k).Allow(), want) {
		t.Fatal("-E dropped the allow list")
	}
	mustOK(t, v.SetAllow(k, []netip.Prefix{}))
	if v.Service(k).Allow() != nil {
		t.Fatalf("an empty list left %v", v.Service(k).Allow())
	}
	mustOK(t, v.SetAllow(k, want))
	mustOK(t, v.DelService(k))
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	if v.Service(k).Allow() != nil {
		t.Fatal("-D kept the allow list")
	}
	mustOK(t, v.SetAllow(k, want))
	v.Flush()
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	if v.Service(k).Allow() != nil {
		t.Fatal("-C kept the allow list")
	}
	// IPv6 services take IPv6 lists.
	k6 := svcKey(model.ProtoUDP, "[2001:db8::1]:53")
	mustOK(t, v.AddService(model.Service{ServiceKey: k6}))
	mustOK(t, v.SetAllow(k6, prefixes("2001:db8:1::/48")))
	if err := v.SetAllow(k6, prefixes("10.0.0.0/8")); !errors.Is(err, model.ErrAllowInvalid) {
		t.Fatalf("IPv4 entry on an IPv6 service: %v", err)
	}
}

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

// New connections (a TCP SYN, a UDP datagram) from a source the list does
// not cover are denied, before any scheduling or persistence; connections
// made before the list came keep flowing.
func TestAllowDeniesNewConnections(t *testing.T) {
	v := New(Options{})
	tk := svcKey(model.ProtoTCP, "198.18.0.1:80")
	uk := svcKey(model.ProtoUDP, "198.18.0.1:53")
	mustOK(t, v.AddService(model.Service{ServiceKey: tk, Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 60, Netmask: 0xffffffff}))
	mustOK(t, v.AddService(model.Service{ServiceKey: uk, Scheduler: "rr"}))
	for _, k := range []model.ServiceKey{tk, uk} {
		mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: k.Port, Method: model.Masq, Weight: 1}))
	}
	syn := func(src string) Packet {
		return Packet{Protocol: model.ProtoTCP, Src: ap(src), Dst: ap("198.18.0.1:80"), TCPFlags: conn.SYN, Len: 60}
	}
	udp := func(src string) Packet {
		return Packet{Protocol: model.ProtoUDP, Src: ap(src), Dst: ap("198.18.0.1:53"), Len: 40}
	}
	// Before any list: everyone.
	if _, vd := v.In(syn("198.19.9.9:1000"), t0); vd != Forward {
		t.Fatalf("no list: %v", vd)
	}
	est := Packet{Protocol: model.ProtoTCP, Src: ap("198.19.9.9:1000"), Dst: ap("198.18.0.1:80"), TCPFlags: conn.ACK, Len: 52}
	v.In(est, t0)
	mustOK(t, v.SetAllow(tk, prefixes("198.18.5.0/24")))
	mustOK(t, v.SetAllow(uk, prefixes("198.18.5.7/32")))
	conns, templates := len(v.conns), len(v.templates)
	for _, tc := range []struct {
		p    Packet
		want Verdict
	}{
		{syn("198.18.5.1:1000"), Forward},
		{syn("198.18.6.1:1000"), Deny},
		{syn("198.19.9.8:1000"), Deny},
		{est, Forward}, // made before the list
		// Not a SYN: not a new connection, not the list's business.
		{Packet{Protocol: model.ProtoTCP, Src: ap("198.18.6.1:1001"), Dst: ap("198.18.0.1:80"), TCPFlags: conn.ACK}, Pass},
		{udp("198.18.5.7:1000"), Forward},
		{udp("198.18.5.8:1000"), Deny},
	} {
		if _, got := v.In(tc.p, t0); got != tc.want {
			t.Errorf("%s -> %s flags %v: %v, want %v", tc.p.Protocol, tc.p.Src, tc.p.TCPFlags, got, tc.want)
		}
	}
	// The denied made nothing: two new connections (and one template)
	// for the two allowed ones.
	if len(v.conns) != conns+2 || len(v.templates) != templates+1 {
		t.Errorf("%d connections, %d templates; want %d, %d", len(v.conns), len(v.templates), conns+2, templates+1)
	}
	if s := v.Service(tk).Stats.Counters(); s.Conns != 2 {
		t.Errorf("TCP service counted %d connections, want 2 (denied ones are not)", s.Conns)
	}
	// The list removed, everyone again.
	mustOK(t, v.SetAllow(tk, nil))
	if _, vd := v.In(syn("198.18.6.1:1002"), t0); vd != Forward {
		t.Fatalf("list removed: %v", vd)
	}
}
