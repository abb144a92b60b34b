package ipvs

import (
	"net/netip"
	"testing"
	"time"

	"gvs/conn"
	"gvs/model"
)

// SCTP in the model: only an INIT opens an association (sctp_conn_schedule),
// the state follows set_sctp_state (input-only for DR), only ESTABLISHED is
// active, a CLOSED association reopens on INIT, and timers are SCTP's.
func TestSCTPLifecycle(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoSCTP, "198.18.1.1:3868")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 3868, Method: model.Route, Weight: 1}))
	d := v.Service(k).Servers()[0]
	cl, vip := ap("198.18.0.1:5000"), ap("198.18.1.1:3868")
	in := func(ev conn.SCTPEvent) (*Conn, Verdict) {
		return v.In(Packet{Protocol: model.ProtoSCTP, Src: cl, Dst: vip, SCTPEvent: ev, Len: 100}, t0)
	}
	for _, ev := range []conn.SCTPEvent{conn.EvData, conn.EvAbort, conn.EvCookieEcho, conn.EvShutdown} {
		if _, verdict := in(ev); verdict != Pass {
			t.Fatalf("event %d without association: %v, want Pass", ev, verdict)
		}
	}
	for i, s := range []struct {
		ev     conn.SCTPEvent
		state  string
		active int
		to     time.Duration
	}{
		{conn.EvInit, "INIT1", 0, 4 * time.Second},
		{conn.EvCookieEcho, "ESTABLISHED", 1, 15 * time.Minute},
		{conn.EvData, "ESTABLISHED", 1, 15 * time.Minute},
		{conn.EvShutdown, "S-RECEIVED", 0, 61 * time.Second},
		{conn.EvShutdownComplete, "CLOSED", 0, 61 * time.Second},
	} {
		c, verdict := in(s.ev)
		if verdict != Forward || c.State.String() != s.state || d.ActiveConns != s.active || d.InactConns != 1-s.active || c.Timeout != s.to {
			t.Fatalf("step %d: %v %s active %d inactive %d timeout %v", i, verdict, c.State, d.ActiveConns, d.InactConns, c.Timeout)
		}
	}
	if st := v.Service(k).Stats.Counters(); st.Conns != 1 {
		t.Fatalf("conns %d", st.Conns)
	}
	// An INIT on the CLOSED association: a new one.
	c, _ := in(conn.EvInit)
	if c.State != conn.SCTPInit1 || v.Service(k).Stats.Counters().Conns != 2 {
		t.Fatalf("reopen: %s, %d conns", c.State, v.Service(k).Stats.Counters().Conns)
	}
}
