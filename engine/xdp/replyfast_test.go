package xdp

import (
	"net/netip"
	"testing"

	"gvs/api"
	"gvs/bpf"
	"gvs/conn"
	"gvs/engine"
	"gvs/model"
)

// A NAT connection whose replies take the data path's fast path lives by
// its reply entry's deadline: the sweep keeps it past its own and -Lc
// lists the later one; once both are past, the sweep removes it and its
// reply entry and gives its server's count back.
func TestSweepKeepsFastReplies(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 53, Family: model.IPv4},
		Scheduler: "rr"}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	dest := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 5353, Method: model.Masq, Weight: 1}
	if err := e.AddDest(svc.ServiceKey, dest); err != nil {
		t.Fatal(err)
	}
	c := engine.SyncConn{Protocol: model.ProtoUDP, Client: netip.MustParseAddrPort("198.19.0.7:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:53"),
		Dest: netip.MustParseAddrPort("198.18.1.1:5353"), Method: model.Masq, State: conn.StateUDP, Inactive: true, Timeout: 300}
	if n, err := e.InstallSynced([]engine.SyncConn{c}); n != 1 || err != nil {
		t.Fatalf("installed %d, %v", n, err)
	}
	key := bpf.ConnKey{Caddr: addrWords(c.Client.Addr()), Vaddr: addrWords(c.Virtual.Addr()), Cport: htons(40000), Vport: htons(53), Proto: 17, Af: 4}
	var bc bpf.Conn
	if err := e.objs.Conns.Lookup(&key, &bc); err != nil {
		t.Fatal(err)
	}
	rk := e.replyKey(key, &bc)
	var r bpf.Reply
	if err := e.objs.Rconns.Lookup(&rk, &r); err != nil {
		t.Fatal(err)
	}
	// The connection past its deadline, its replies' entry armed with 60 s.
	bc.Expires = now() - 1e9
	if err := e.objs.Conns.Put(&key, &bc); err != nil {
		t.Fatal(err)
	}
	r.Fast, r.Expires = 1, now()+60e9
	if err := e.objs.Rconns.Put(&rk, &r); err != nil {
		t.Fatal(err)
	}
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	var got []api.Conn
	if err := e.Conns(func(c api.Conn) bool { got = append(got, c); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ExpireMS < 58000 || got[0].ExpireMS > 60000 {
		t.Fatalf("after a sweep, listed %+v: want the connection with the reply entry's 60 s", got)
	}
	id := e.destIDs[svc.ServiceKey][dest.AddrPort()]
	if _, i, _ := e.dmem.counts(id); i != 1 {
		t.Fatalf("inactive count %d, want 1", i)
	}
	// Both past: gone, with its reply entry and its count.
	r.Expires = now() - 1e9
	if err := e.objs.Rconns.Put(&rk, &r); err != nil {
		t.Fatal(err)
	}
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if err := e.objs.Conns.Lookup(&key, &bc); err == nil {
		t.Fatal("the connection outlived both deadlines")
	}
	if err := e.objs.Rconns.Lookup(&rk, &r); err == nil {
		t.Fatal("its reply entry stayed")
	}
	if a, i, _ := e.dmem.counts(id); a != 0 || i != 0 {
		t.Fatalf("counts active %d inactive %d after removal", a, i)
	}
}
