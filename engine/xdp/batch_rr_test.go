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
