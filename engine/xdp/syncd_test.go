package xdp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gvs/api"
	"gvs/bpf"
	"gvs/conn"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// syncEngine is an engine with its maps loaded (unpinned, unattached).
func syncEngine(t *testing.T) *Engine {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF maps")
	}
	e := newEngine(slog.New(slog.DiscardHandler), Options{})
	if err := bpf.LoadObjectsSized(&e.objs, 1<<14); err != nil {
		// A program the verifier refuses is a failure; a machine
		// without BPF is a skip.
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) || !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, unix.EPERM) {
			t.Fatalf("BPF: %v", err)
		}
		t.Skipf("BPF: %v", err)
	}
	var err error
	if e.dmem, err = mapDests(e.objs.Dests); err != nil {
		t.Fatal(err)
	}
	e.cfg = bpf.DefaultConfig()
	e.cfg.SetRing(e.objs.ConnRing.MaxEntries(), 2)
	if err := e.writeConfig(); err != nil {
		t.Fatal(err)
	}
	if err := e.writeTimeouts(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.dmem.close(); e.objs.Close() })
	return e
}

// Entries learnt from a master land in the tables as the data path would
// have made them: listed with their state, the template holding its
// connection, the server's counts, the synced flag; unknown services
// are skipped.
func TestInstallSynced(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 0xffffff00}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	dest := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 8080, Method: model.Masq, Weight: 1}
	if err := e.AddDest(svc.ServiceKey, dest); err != nil {
		t.Fatal(err)
	}
	tmpl := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("198.19.0.0:0"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
		Dest: netip.MustParseAddrPort("198.18.1.1:8080"), Method: model.Masq, Template: true, Timeout: 300}
	c := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("198.19.0.7:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
		Dest: netip.MustParseAddrPort("198.18.1.1:8080"), Method: model.Masq, State: conn.Established, Timeout: 900}
	unknown := c
	unknown.Virtual = netip.MustParseAddrPort("198.18.0.101:80")
	n, err := e.InstallSynced([]engine.SyncConn{c, unknown, tmpl}) // the template goes in first all the same
	if err != nil || n != 2 {
		t.Fatalf("installed %d, %v", n, err)
	}
	var got []api.Conn
	if err := e.Conns(func(c api.Conn) bool { got = append(got, c); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].State != "ESTABLISHED" || got[0].Client != c.Client || got[0].Dest != c.Dest ||
		!got[1].Template || got[1].Client.Addr() != tmpl.Client.Addr() || got[0].ExpireMS < 899000 {
		t.Fatalf("listed %+v", got)
	}
	id := e.destIDs[svc.ServiceKey][dest.AddrPort()]
	if a, i, p := e.dmem.counts(id); a != 1 || i != 0 || p != 1 {
		t.Fatalf("counts active %d inactive %d persistent %d", a, i, p)
	}
	key := bpf.ConnKey{Caddr: addrWords(c.Client.Addr()), Vaddr: addrWords(c.Virtual.Addr()), Cport: htons(c.Client.Port()), Vport: htons(80), Proto: 6, Af: 4}
	var bc bpf.Conn
	if err := e.objs.Conns.Lookup(&key, &bc); err != nil || bc.Flags&(connSynced|connControlled|connNAT) != connSynced|connControlled|connNAT {
		t.Fatalf("conn flags %#x, %v", bc.Flags, err)
	}
	tk := key
	tk.Caddr[0] = addrWords(tmpl.Client.Addr())[0]
	tk.Cport = 0
	var tv bpf.Template
	if err := e.objs.Templates.Lookup(&tk, &tv); err != nil || tv.N_control != 1 || tv.Timeout != 300 {
		t.Fatalf("template %+v, %v", tv, err)
	}
	var owner bpf.Reply
	if err := e.objs.Rconns.Lookup(e.replyKey(key, &bc), &owner); err != nil || owner.Fk != key {
		t.Fatalf("reply entry %+v, %v", owner, err)
	}
	// An update: inactive now (FIN_WAIT), the count moves.
	c.State, c.Inactive, c.Timeout = conn.FinWait, true, 120
	if n, err := e.InstallSynced([]engine.SyncConn{c}); n != 1 || err != nil {
		t.Fatalf("update: %d %v", n, err)
	}
	if a, i, _ := e.dmem.counts(id); a != 0 || i != 1 {
		t.Fatalf("after the update: active %d inactive %d", a, i)
	}
	// The master's side of the same entry.
	if err := e.objs.Conns.Lookup(&key, &bc); err != nil {
		t.Fatal(err)
	}
	out := e.syncRecord(&key, &bc, true)
	if len(out) != 2 || !out[0].Template || out[1].State != conn.FinWait || out[1].Dest != c.Dest || !out[1].Inactive {
		t.Fatalf("exported %+v", out)
	}
}

// A fwmark service's entries: the backup finds the service by the mark
// (a connection to any port of the mark, its template keyed IPPROTO_IP
// and the mark), and the master sends the mark with them.
func TestInstallSyncedFwmark(t *testing.T) {
	e := syncEngine(t)
	e.steerFwmark = func(*ipvs.IPVS) error { return nil } // no veth or nftables in a unit test
	svc := model.Service{ServiceKey: model.ServiceKey{FWMark: 5, Family: model.IPv4},
		Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 0xffffffff}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	dest := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Method: model.Route, Weight: 1}
	if err := e.AddDest(svc.ServiceKey, dest); err != nil {
		t.Fatal(err)
	}
	tmpl := engine.SyncConn{Client: netip.MustParseAddrPort("198.19.0.7:0"), Virtual: netip.MustParseAddrPort("0.0.0.5:0"),
		Dest: netip.MustParseAddrPort("198.18.1.1:0"), Method: model.Route, Template: true, Timeout: 300, FWMark: 5}
	c := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("198.19.0.7:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:443"),
		Dest: netip.MustParseAddrPort("198.18.1.1:0"), Method: model.Route, State: conn.Established, Timeout: 900, FWMark: 5}
	other := c
	other.FWMark = 6 // no such service, and no address service either
	if n, err := e.InstallSynced([]engine.SyncConn{tmpl, c, other}); err != nil || n != 2 {
		t.Fatalf("installed %d, %v", n, err)
	}
	key := bpf.ConnKey{Caddr: addrWords(c.Client.Addr()), Vaddr: addrWords(c.Virtual.Addr()), Cport: htons(40000), Vport: htons(443), Proto: 6, Af: 4}
	var bc bpf.Conn
	if err := e.objs.Conns.Lookup(&key, &bc); err != nil || bc.Svc != e.svcIDs[svc.ServiceKey] || bc.Flags&connControlled == 0 {
		t.Fatalf("connection %+v, %v", bc, err)
	}
	tk := bpf.ConnKey{Caddr: addrWords(tmpl.Client.Addr()), Vaddr: [4]uint32{fwmTemplateAddr(5)}, Af: 4}
	var tv bpf.Template
	if err := e.objs.Templates.Lookup(&tk, &tv); err != nil || tv.N_control != 1 {
		t.Fatalf("template %+v, %v", tv, err)
	}
	out := e.syncRecord(&key, &bc, true)
	if len(out) != 2 || !out[0].Template || out[0].FWMark != 5 || out[0].Virtual != tmpl.Virtual || out[0].Protocol != 0 ||
		out[1].FWMark != 5 || out[1].Virtual != c.Virtual {
		t.Fatalf("exported %+v", out)
	}
}

// SyncChanges turns the data path's export on, and off when done; one
// exporter at a time.
func TestSyncChanges(t *testing.T) {
	e := syncEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := e.SyncChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SyncChanges(ctx); err == nil {
		t.Fatal("a second exporter")
	}
	var cfg bpf.Config
	if e.objs.Config.Lookup(uint32(0), &cfg); cfg.SyncMaster != 1 || cfg.SyncThreshold != 3 || cfg.SyncPeriod != 50 {
		t.Fatalf("config %+v", cfg)
	}
	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the export did not stop")
	}
	if e.objs.Config.Lookup(uint32(0), &cfg); cfg.SyncMaster != 0 {
		t.Fatal("sync_master still set")
	}
}

// ConnStates reports what the expiry sweep counted: live entries by
// state, templates, and the table's capacity.
func TestConnStates(t *testing.T) {
	e := syncEngine(t)
	if cs := e.ConnStates(); len(cs.ByState) != 0 || cs.Capacity != uint64(e.objs.Conns.MaxEntries()) {
		t.Fatalf("before a sweep: %+v", cs)
	}
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 0xffffffff}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	if err := e.AddDest(svc.ServiceKey, model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 8080, Method: model.Masq, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	var batch []engine.SyncConn
	for i, st := range []conn.State{conn.Established, conn.Established, conn.FinWait} {
		c := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), 40000),
			Virtual: netip.MustParseAddrPort("198.18.0.100:80"), Dest: netip.MustParseAddrPort("198.18.1.1:8080"), Method: model.Masq,
			State: st, Inactive: !st.Active(), Timeout: 900}
		tmpl := c
		tmpl.Client, tmpl.Template, tmpl.State, tmpl.Timeout = netip.AddrPortFrom(c.Client.Addr(), 0), true, 0, 300
		batch = append(batch, tmpl, c)
	}
	if n, err := e.InstallSynced(batch); n != 6 || err != nil {
		t.Fatalf("installed %d, %v", n, err)
	}
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	cs := e.ConnStates()
	if len(cs.ByState) != 2 || cs.ByState["ESTABLISHED"] != 2 || cs.ByState["FIN_WAIT"] != 1 || cs.Templates != 3 || cs.Capacity != 1<<14 {
		t.Fatalf("after a sweep: %+v", cs)
	}
}

// IPv6 entries from a master: a FULLNAT connection (its IPv6 local
// address and port in the reply entry) under a /64 template; the master's
// side exports them back.
func TestInstallSyncedIPv6(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Family: model.IPv6},
		Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 64}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	dest := model.Dest{Addr: netip.MustParseAddr("2001:db8:1::1"), Port: 8080, Method: model.FullNAT, Weight: 1}
	if err := e.AddDest(svc.ServiceKey, dest); err != nil {
		t.Fatal(err)
	}
	tmpl := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("[2001:db8:5::]:0"), Virtual: netip.MustParseAddrPort("[2001:db8::1]:80"),
		Dest: netip.MustParseAddrPort("[2001:db8:1::1]:8080"), Method: model.FullNAT, Template: true, Timeout: 300}
	c := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("[2001:db8:5::7]:40000"), Virtual: netip.MustParseAddrPort("[2001:db8::1]:80"),
		Dest: netip.MustParseAddrPort("[2001:db8:1::1]:8080"), Local: netip.MustParseAddrPort("[2001:db8:ff::1]:5000"),
		Method: model.FullNAT, State: conn.Established, Timeout: 900}
	mixed := c
	mixed.Client = netip.MustParseAddrPort("198.19.0.7:40000")
	if n, err := e.InstallSynced([]engine.SyncConn{tmpl, c, mixed}); err != nil || n != 2 {
		t.Fatalf("installed %d, %v", n, err)
	}
	key := bpf.ConnKey{Caddr: addrWords(c.Client.Addr()), Vaddr: addrWords(c.Virtual.Addr()), Cport: htons(40000), Vport: htons(80), Proto: 6, Af: 6}
	var bc bpf.Conn
	if err := e.objs.Conns.Lookup(&key, &bc); err != nil || bc.Flags&(connSynced|connControlled|connNAT) != connSynced|connControlled|connNAT ||
		bc.Laddr != addrWords(c.Local.Addr()) || bc.Lport != htons(5000) {
		t.Fatalf("conn %+v, %v", bc, err)
	}
	tk := key
	tk.Caddr, tk.Cport = addrWords(tmpl.Client.Addr()), 0
	var tv bpf.Template
	if err := e.objs.Templates.Lookup(&tk, &tv); err != nil || tv.N_control != 1 {
		t.Fatalf("template %+v, %v", tv, err)
	}
	rk := bpf.ConnKey{Caddr: addrWords(dest.Addr), Vaddr: addrWords(c.Local.Addr()), Cport: htons(8080), Vport: htons(5000), Proto: 6, Af: 6}
	if rk != e.replyKey(key, &bc) {
		t.Fatalf("replyKey %+v, want %+v", e.replyKey(key, &bc), rk)
	}
	var owner bpf.Reply
	if err := e.objs.Rconns.Lookup(&rk, &owner); err != nil || owner.Fk != key {
		t.Fatalf("reply entry %+v, %v", owner, err)
	}
	out := e.syncRecord(&key, &bc, true)
	if len(out) != 2 || !out[0].Template || out[0].Client.Addr() != tmpl.Client.Addr() || out[1].Client != c.Client ||
		out[1].Local != c.Local || out[1].Dest != c.Dest {
		t.Fatalf("exported %+v", out)
	}
}

// A connection tunnelled to a server of the other family is not sent to
// the backups (nor its template): the sync message has one family (see
// mixedFamily). The same service's same-family server's are.
func TestSyncMixedFamily(t *testing.T) {
	e := syncEngine(t)
	e.tunSrc, e.tunSrc6 = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4},
		Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 0xffffffff}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	same := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 80, Method: model.Tunnel, Weight: 1}
	other := model.Dest{Addr: netip.MustParseAddr("2001:db8:1::1"), Port: 80, Method: model.Tunnel, Weight: 1}
	for _, d := range []model.Dest{same, other} {
		if err := e.AddDest(svc.ServiceKey, d); err != nil {
			t.Fatalf("%s: %v", d.Addr, err)
		}
	}
	for i, d := range []model.Dest{same, other} {
		id := e.destIDs[svc.ServiceKey][d.AddrPort()]
		client := netip.AddrFrom4([4]byte{198, 19, 0, byte(1 + i)})
		key := bpf.ConnKey{Caddr: addrWords(client), Vaddr: addrWords(svc.Addr), Cport: htons(40000), Vport: htons(80), Proto: 6, Af: 4}
		c := bpf.Conn{Dest: id, Svc: e.svcIDs[svc.ServiceKey], Method: uint8(model.Tunnel), State: uint8(conn.Established),
			Timeout: 900, Flags: connControlled}
		tk := key
		tk.Cport = 0
		tv := bpf.Template{Dest: id, Svc: c.Svc, Timeout: 300, N_control: 1}
		if err := e.objs.Templates.Put(&tk, &tv); err != nil {
			t.Fatal(err)
		}
		out := e.syncRecord(&key, &c, true)
		if d == same && (len(out) != 2 || !out[0].Template || out[1].Dest != d.AddrPort()) {
			t.Fatalf("same family: exported %+v", out)
		}
		if d == other && len(out) != 0 {
			t.Fatalf("other family: exported %+v", out)
		}
		if _, ok := e.syncTemplate(&tk, &tv); ok != (d == same) {
			t.Fatalf("%s: template exported %v", d.Addr, ok)
		}
	}
}

// A NAT64 connection (an IPv6 service's IPv4 FULLNAT server) goes to the
// backups with its IPv4 server and local address mapped into the IPv6
// message (::ffff:a.b.c.d); installed, its reply entry is IPv4, as the
// replies arrive, and the sweep's replyKey is that one.
func TestInstallSyncedNAT64(t *testing.T) {
	e := syncEngine(t)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Family: model.IPv6},
		Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 300, Netmask: 64}
	if err := e.AddService(svc); err != nil {
		t.Fatal(err)
	}
	dest := model.Dest{Addr: netip.MustParseAddr("198.18.1.1"), Port: 8080, Method: model.FullNAT, Weight: 1}
	if err := e.AddDest(svc.ServiceKey, dest); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"2001:db8:ff::1", "198.18.0.100", "198.18.0.101"} {
		if err := e.AddLocalAddr(svc.ServiceKey, netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	// The IPv4 pool is in laddrs4, the IPv6 one in the service.
	id := e.svcIDs[svc.ServiceKey]
	var pool bpf.Laddrs4
	if err := e.objs.Laddrs4.Lookup(id, &pool); err != nil || pool.N != 2 ||
		pool.Addrs[0] != addrWords(netip.MustParseAddr("198.18.0.100"))[0] || pool.Addrs[1] != addrWords(netip.MustParseAddr("198.18.0.101"))[0] {
		t.Fatalf("laddrs4 %+v, %v", pool, err)
	}
	var sv bpf.Svc
	if err := e.objs.Services.Lookup(svcKey(svc.ServiceKey), &sv); err != nil || sv.Nladdrs != 1 {
		t.Fatalf("service pool %d, %v", sv.Nladdrs, err)
	}

	mapped := func(s string) netip.AddrPort {
		a := netip.MustParseAddrPort(s)
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	tmpl := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("[2001:db8:5::]:0"), Virtual: netip.MustParseAddrPort("[2001:db8::1]:80"),
		Dest: mapped("198.18.1.1:8080"), Method: model.FullNAT, Template: true, Timeout: 300}
	c := engine.SyncConn{Protocol: model.ProtoTCP, Client: netip.MustParseAddrPort("[2001:db8:5::7]:40000"), Virtual: netip.MustParseAddrPort("[2001:db8::1]:80"),
		Dest: mapped("198.18.1.1:8080"), Local: mapped("198.18.0.100:5000"),
		Method: model.FullNAT, State: conn.Established, Timeout: 900}
	if n, err := e.InstallSynced([]engine.SyncConn{tmpl, c}); err != nil || n != 2 {
		t.Fatalf("installed %d, %v", n, err)
	}
	key := bpf.ConnKey{Caddr: addrWords(c.Client.Addr()), Vaddr: addrWords(c.Virtual.Addr()), Cport: htons(40000), Vport: htons(80), Proto: 6, Af: 6}
	var bc bpf.Conn
	local := netip.MustParseAddr("198.18.0.100")
	if err := e.objs.Conns.Lookup(&key, &bc); err != nil || bc.Flags&(connSynced|connControlled|connNAT) != connSynced|connControlled|connNAT ||
		bc.Laddr != addrWords(local) || bc.Lport != htons(5000) {
		t.Fatalf("conn %+v, %v", bc, err)
	}
	rk := bpf.ConnKey{Caddr: addrWords(dest.Addr), Vaddr: addrWords(local), Cport: htons(8080), Vport: htons(5000), Proto: 6, Af: 4}
	if rk != e.replyKey(key, &bc) {
		t.Fatalf("replyKey %+v, want %+v", e.replyKey(key, &bc), rk)
	}
	var owner bpf.Reply
	if err := e.objs.Rconns.Lookup(&rk, &owner); err != nil || owner.Fk != key {
		t.Fatalf("reply entry %+v, %v", owner, err)
	}
	out := e.syncRecord(&key, &bc, true)
	if len(out) != 2 || !out[0].Template || out[0].Dest.Addr() != c.Dest.Addr() || out[1].Client != c.Client ||
		out[1].Local != c.Local || out[1].Dest != c.Dest {
		t.Fatalf("exported %+v", out)
	}
	// One family per message (ipvssync's rule): all IPv6.
	for _, sc := range out {
		for _, a := range []netip.AddrPort{sc.Client, sc.Virtual, sc.Dest} {
			if !a.Addr().Is6() {
				t.Fatalf("exported %+v: %v is not IPv6", sc, a)
			}
		}
	}
	// The listing shows the IPv4 server and local address.
	var got []api.Conn
	if err := e.Conns(func(ac api.Conn) bool { got = append(got, ac); return true }); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ac := range got {
		if ac.Client == c.Client {
			found = true
			if ac.Dest != netip.MustParseAddrPort("198.18.1.1:8080") || ac.Local != netip.MustParseAddrPort("198.18.0.100:5000") {
				t.Fatalf("listed %+v", ac)
			}
		}
	}
	if !found {
		t.Fatalf("not listed: %+v", got)
	}
}
