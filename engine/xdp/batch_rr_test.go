package xdp

import (
	"net/netip"
	"testing"

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
