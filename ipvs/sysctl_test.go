package ipvs

import (
	"net/netip"
	"testing"
	"time"

	"gvs/conn"
	"gvs/model"
)

// expire_nodest_conn set on a running instance: the next packet of a
// connection whose server was deleted removes the connection.
func TestSetSysctlsExpireNodestConn(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	dst := model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 53, Method: model.Masq, Weight: 1}
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	mustOK(t, v.AddDest(k, dst))
	p := Packet{Protocol: model.ProtoUDP, Src: ap("198.18.0.1:5000"), Dst: ap("198.18.1.1:53"), Len: 40}
	v.In(p, t0)
	mustOK(t, v.DelDest(k, dst.AddrPort()))
	if _, verdict := v.In(p, t0.Add(time.Second)); verdict != Drop || len(v.Conns()) != 1 {
		t.Fatalf("default: %v, %d entries, want Drop and the connection kept", verdict, len(v.Conns()))
	}
	s := model.DefaultSysctls()
	s.ExpireNodestConn = 1
	v.SetSysctls(s)
	if _, verdict := v.In(p, t0.Add(2*time.Second)); verdict != Drop || len(v.Conns()) != 0 {
		t.Fatalf("expire_nodest_conn=1: %v, %d entries, want Drop and the connection gone", verdict, len(v.Conns()))
	}
}

// expire_quiescent_template set on a running instance: a template whose
// server has weight 0 is no longer used.
func TestSetSysctlsExpireQuiescentTemplate(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	a := model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 53, Method: model.Masq, Weight: 1}
	b := model.Dest{Addr: netip.MustParseAddr("198.18.2.2"), Port: 53, Method: model.Masq, Weight: 1}
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 0xffffffff}))
	mustOK(t, v.AddDest(k, a))
	mustOK(t, v.AddDest(k, b))
	first, _ := v.In(Packet{Protocol: model.ProtoUDP, Src: ap("198.18.0.1:5000"), Dst: ap("198.18.1.1:53"), Len: 40}, t0)
	q := model.Dest{Addr: first.Dest.Addr(), Port: 53, Method: model.Masq, Weight: 0}
	mustOK(t, v.EditDest(k, q))
	next := func(port uint16, at time.Duration) netip.AddrPort {
		c, _ := v.In(Packet{Protocol: model.ProtoUDP, Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port), Dst: ap("198.18.1.1:53"), Len: 40}, t0.Add(at))
		return c.Dest
	}
	if d := next(5001, time.Second); d != first.Dest {
		t.Fatalf("default: new connection to %v, want the template's %v", d, first.Dest)
	}
	s := model.DefaultSysctls()
	s.ExpireQuiescentTemplate = 1
	v.SetSysctls(s)
	if d := next(5002, 2*time.Second); d == first.Dest {
		t.Fatalf("expire_quiescent_template=1: new connection still to the quiesced %v", d)
	}
}

func TestSetSysctlsSloppyTCPAndConnReuse(t *testing.T) {
	v := New(Options{})
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4}, Scheduler: "rr"}
	if err := v.AddService(svc); err != nil {
		t.Fatal(err)
	}
	if err := v.AddDest(svc.ServiceKey, model.Dest{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Method: model.Route, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	pkt := func(port uint16, flags conn.TCPFlags) Packet {
		return Packet{Protocol: model.ProtoTCP, Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.5.1"), port),
			Dst: netip.MustParseAddrPort("198.18.0.100:80"), TCPFlags: flags, Len: 40}
	}
	if _, vd := v.In(pkt(1000, conn.ACK), now); vd != Pass {
		t.Fatalf("a bare ACK with sloppy_tcp 0: %v, want Pass", vd)
	}
	v.SetSysctls(model.Sysctls{SloppyTCP: 1, ConnReuseMode: 1})
	if c, vd := v.In(pkt(1001, conn.ACK), now); vd != Forward || c.State != conn.Established {
		t.Fatalf("a bare ACK with sloppy_tcp 1: %v, want a new established connection", vd)
	}
	// conn_reuse_mode 0: a SYN on a closed connection continues it.
	v.SetSysctls(model.Sysctls{ConnReuseMode: 0})
	c, _ := v.In(pkt(1002, conn.SYN), now)
	c.State = conn.Close
	if c2, _ := v.In(pkt(1002, conn.SYN), now); c2 != c {
		t.Fatal("conn_reuse_mode 0 reopened a closed connection")
	}
	c.State = conn.Close // (a RST in SYN_RECV leaves it there, input-only)
	v.SetSysctls(model.Sysctls{ConnReuseMode: 1})
	if c3, _ := v.In(pkt(1002, conn.SYN), now); c3 == c {
		t.Fatal("conn_reuse_mode 1 did not reopen a closed connection")
	}
}
