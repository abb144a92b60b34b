package xdp

import (
	"net/netip"
	"reflect"
	"testing"

	"gvs/api"
	"gvs/bpf"
	"gvs/model"
)

// A service a batch creates with its servers starts rr at the head of
// its list, as one created op by op: the batch's scheduler states reach
// the map.
func TestBatchSchedStateRR(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "rr", Netmask: 0xffffffff}
	if err := e.Batch(func() error {
		if err := e.AddService(svc); err != nil {
			return err
		}
		for _, a := range []string{"198.18.1.1", "198.18.1.2"} {
			if err := e.AddDest(svc.ServiceKey, model.Dest{Addr: netip.MustParseAddr(a), Port: 80, Method: model.Route, Weight: 1}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	id := e.svcIDs[svc.ServiceKey]
	var st bpf.SchedState
	if err := e.objs.SchedState.Lookup(id, &st); err != nil {
		t.Fatal(err)
	}
	if st.RrLast != -1 || st.Used != 1 {
		t.Fatalf("scheduler state after the batch: %+v", st)
	}
}

// The counter pull follows the model through changes: a server removed
// and added again (a new object, maybe a new id) shows its own counters.
func TestPullFollowsChanges(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "rr", Netmask: 0xffffffff}
	d := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 80, Method: model.Route, Weight: 1}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	put := func(conns uint64) {
		id := e.destIDs[svc.ServiceKey][netip.AddrPortFrom(d.Addr, d.Port)]
		per := make([]bpf.Stats, ebpfCPUs())
		per[0].Conns = conns
		if err := e.objs.DestStats.Put(id, per); err != nil {
			t.Fatal(err)
		}
	}
	got := func() uint64 {
		s := e.Services()
		if len(s) != 1 || len(s[0].Dests) != 1 {
			t.Fatalf("services %+v", s)
		}
		return s[0].Dests[0].Stats.Conns
	}
	for i, step := range []func() error{
		func() error { return e.AddDest(svc.ServiceKey, d) },
		func() error { return e.DelDest(svc.ServiceKey, netip.AddrPortFrom(d.Addr, d.Port)) },
		func() error { return e.AddDest(svc.ServiceKey, d) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			continue
		}
		put(uint64(10 + i))
		if c := got(); c != uint64(10+i) {
			t.Fatalf("step %d: conns %d, want %d", i, c, 10+i)
		}
	}
}

// A service deleted and added again before its id went back is a new
// service to IPVS (ip_vs_add_service zeroes its counters): it shows none
// of the old one's, which stay in the machine's totals. A server's do
// stay (the kernel takes it back from its trash with them).
func TestServiceAddedAgainStartsAtZero(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "rr", Netmask: 0xffffffff}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	id := e.svcIDs[svc.ServiceKey]
	per := make([]bpf.Stats, ebpfCPUs())
	per[0].Conns, per[0].Inpkts = 7, 70
	if err := e.objs.SvcStats.Put(id, per); err != nil {
		t.Fatal(err)
	}
	if err := e.DelService(svc.ServiceKey); err != nil {
		t.Fatal(err)
	}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	if got := e.svcIDs[svc.ServiceKey]; got != id {
		t.Fatalf("id %d, want the revived %d: the test proves nothing", got, id)
	}
	s := e.Services()
	if len(s) != 1 || s[0].Stats.Conns != 0 || s[0].Stats.InPkts != 0 {
		t.Fatalf("added again: %+v, want zero counters", s)
	}
	if tot, _ := e.Totals(); tot.Conns != 7 || tot.InPkts != 70 {
		t.Fatalf("totals %+v, want the old service's 7 connections and 70 packets", tot)
	}
}

// Pinned gives back the rules the maps hold: settings, allow list,
// servers in list order with their weights, local addresses.
func TestPinnedRules(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "wlc", Flags: model.FlagPersistent, Timeout: 600, Netmask: 0xffffff00, Sloppy: model.SloppyOn}
	k := model.Service{ServiceKey: svc.ServiceKey}
	want := []api.Op{
		{Op: api.AddService, Service: svc},
		{Op: api.SetAllow, Service: k, Allow: []netip.Prefix{netip.MustParsePrefix("198.18.9.0/24"), netip.MustParsePrefix("203.0.113.7/32")}},
		{Op: api.AddDest, Service: k, Dest: model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 8080, Method: model.FullNAT, Weight: 3, UThreshold: 100, LThreshold: 50}},
		{Op: api.AddDest, Service: k, Dest: model.Dest{Addr: netip.MustParseAddr("198.18.1.2"), Port: 8080, Method: model.FullNAT, Weight: 1}},
		{Op: api.AddLocalAddr, Service: k, LocalAddr: netip.MustParseAddr("198.18.0.201")},
		{Op: api.AddService, Service: model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 53, Family: model.IPv4},
			Scheduler: "mh", Netmask: 0xffffffff, Sloppy: model.SloppyOff}},
	}
	for _, op := range want {
		var err error
		switch op.Op {
		case api.AddService:
			err = e.AddService(op.Service)
		case api.SetAllow:
			err = e.SetAllow(op.Service.ServiceKey, op.Allow)
		case api.AddDest:
			err = e.AddDest(op.Service.ServiceKey, op.Dest)
		case api.AddLocalAddr:
			err = e.AddLocalAddr(op.Service.ServiceKey, op.LocalAddr)
		}
		if err != nil {
			t.Fatalf("%v: %v", op.Op, err)
		}
	}
	got, err := e.Pinned()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pinned rules\n%+v\nwant\n%+v", got, want)
	}
}

// A firewall-mark service's map key comes back as its model key.
func TestFwmarkKeyRoundTrip(t *testing.T) {
	k := model.ServiceKey{FWMark: 0x12345678, Family: model.IPv4}
	if got := modelKey(svcKey(k)); got != k {
		t.Fatalf("%+v -> %+v", k, got)
	}
}
