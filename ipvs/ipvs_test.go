package ipvs

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvs/conn"
	"gvs/model"
	"gvs/stats"
)

var t0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func svcKey(p model.Protocol, s string) model.ServiceKey {
	a := ap(s)
	return model.ServiceKey{Protocol: p, Addr: a.Addr(), Port: a.Port(), Family: model.FamilyOf(a.Addr())}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The worked example of the source notes: UDP, NAT, sh, persistence 120 s.
// One "hello word" datagram (11 bytes of payload) is one connection, one
// packet, 39 bytes at the IP level, on the service and on the server, and
// the connection table holds the connection and its template.
func TestNotesExample(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.64:9999")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "sh", Flags: model.FlagPersistent, Timeout: 120, Netmask: 0xffffffff}))
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.68"), Port: 9999, Method: model.Masq, Weight: 1}))

	c, verdict := v.In(Packet{Protocol: model.ProtoUDP, Src: ap("198.18.0.10:40000"), Dst: ap("198.18.1.64:9999"), Len: 20 + 8 + 11}, t0)
	if verdict != Forward || c.Dest != ap("198.18.2.68:9999") {
		t.Fatalf("verdict %v conn %+v", verdict, c)
	}
	want := stats.Counters{Conns: 1, InPkts: 1, InBytes: 39}
	svc := v.Service(k)
	if got := svc.Stats.Counters(); got != want {
		t.Errorf("service counters %+v, want %+v", got, want)
	}
	if got := svc.Servers()[0].Stats.Counters(); got != want {
		t.Errorf("server counters %+v, want %+v", got, want)
	}
	conns := v.Conns()
	if len(conns) != 2 {
		t.Fatalf("%d entries, want the connection and its template", len(conns))
	}
	tmpl, cn := conns[0], conns[1]
	if !tmpl.Template || tmpl.Client != ap("198.18.0.10:0") || tmpl.Virtual != ap("198.18.1.64:9999") ||
		tmpl.Dest != ap("198.18.2.68:9999") || tmpl.State.String() != "UDP" || tmpl.Remaining(t0) != 120*time.Second {
		t.Errorf("template %+v", tmpl)
	}
	if cn.State.String() != "UDP" || cn.Remaining(t0) != 300*time.Second {
		t.Errorf("connection %+v", cn)
	}
	if d := svc.Servers()[0]; d.ActiveConns != 0 || d.InactConns != 1 || d.PersistConns != 1 {
		t.Errorf("counts active %d inactive %d persistent %d", d.ActiveConns, d.InactConns, d.PersistConns)
	}
	mustOK(t, v.Zero(nil))
	if got := svc.Stats.Counters(); got != (stats.Counters{}) {
		t.Errorf("after -Z: %+v", got)
	}
}

func TestTCPLifecycleCounts(t *testing.T) {
	for _, tc := range []struct {
		method   model.Method
		replies  bool
		states   []string
		inactive []int
	}{
		// NAT sees both directions: full table.
		// A SYN+ACK reply keeps SYN_RECV (SYN outranks ACK); the client's FIN
		// moves ESTABLISHED to CLOSE_WAIT, the server's FIN to TIME_WAIT.
		{model.Masq, true, []string{"SYN_RECV", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT"}, []int{0, 0, 0, 1, 1}},
		// DR sees only the client: input-only table.
		{model.Route, false, []string{"SYN_RECV", "ESTABLISHED", "FIN_WAIT"}, []int{0, 0, 1}},
	} {
		t.Run(tc.method.String(), func(t *testing.T) {
			v := New(Options{})
			k := svcKey(model.ProtoTCP, "198.18.1.1:80")
			mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
			mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 80, Method: tc.method, Weight: 1}))
			d := v.Service(k).Servers()[0]
			cl, vip, rs := ap("198.18.0.1:1234"), ap("198.18.1.1:80"), ap("198.18.2.1:80")
			steps := []struct {
				out   bool
				flags conn.TCPFlags
			}{
				{false, conn.SYN}, {true, conn.SYN | conn.ACK}, {false, conn.ACK}, {false, conn.FIN | conn.ACK}, {true, conn.FIN | conn.ACK},
			}
			var c *Conn
			n := 0
			for _, s := range steps {
				if s.out && !tc.replies {
					continue
				}
				if s.out {
					c, _ = v.Out(Packet{Protocol: model.ProtoTCP, Src: rs, Dst: cl, TCPFlags: s.flags, Len: 52}, t0)
				} else {
					c, _ = v.In(Packet{Protocol: model.ProtoTCP, Src: cl, Dst: vip, TCPFlags: s.flags, Len: 52}, t0)
				}
				if c.State.String() != tc.states[n] || d.InactConns != tc.inactive[n] || d.ActiveConns != 1-tc.inactive[n] {
					t.Fatalf("step %d: state %s active %d inactive %d, want %s inactive %d", n, c.State, d.ActiveConns, d.InactConns, tc.states[n], tc.inactive[n])
				}
				n++
			}
			v.Expire(t0.Add(c.Timeout))
			if d.ActiveConns+d.InactConns != 0 || len(v.Conns()) != 0 {
				t.Fatalf("after expiry: %d+%d conns, %d entries", d.ActiveConns, d.InactConns, len(v.Conns()))
			}
		})
	}
}

func TestTCPNonSYNPasses(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoTCP, "198.18.1.1:80")
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Method: model.Route, Weight: 1}))
	if _, verdict := v.In(Packet{Protocol: model.ProtoTCP, Src: ap("198.18.0.1:1"), Dst: ap("198.18.1.1:80"), TCPFlags: conn.ACK}, t0); verdict != Pass {
		t.Errorf("lone ACK: %v, want Pass", verdict)
	}
	if _, verdict := v.In(Packet{Protocol: model.ProtoTCP, Src: ap("198.18.0.1:1"), Dst: ap("198.18.1.1:81"), TCPFlags: conn.SYN}, t0); verdict != Pass {
		t.Errorf("other port: %v, want Pass", verdict)
	}
	mustOK(t, v.EditDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Method: model.Route, Weight: 0}))
	if _, verdict := v.In(Packet{Protocol: model.ProtoTCP, Src: ap("198.18.0.1:1"), Dst: ap("198.18.1.1:80"), TCPFlags: conn.SYN}, t0); verdict != Reject {
		t.Errorf("only a quiesced server: %v, want Reject", verdict)
	}
}

// A deleted server's connections are dropped until they expire, unless the
// server comes back (even after -C), when they flow again.
func TestDeletedServerAndTrash(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	dst := model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 53, Method: model.Masq, Weight: 1}
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	mustOK(t, v.AddDest(k, dst))
	p := Packet{Protocol: model.ProtoUDP, Src: ap("198.18.0.1:5000"), Dst: ap("198.18.1.1:53"), Len: 40}
	c, _ := v.In(p, t0)
	srv := c.Server
	mustOK(t, v.DelDest(k, dst.AddrPort()))
	if _, verdict := v.In(p, t0.Add(time.Second)); verdict != Drop {
		t.Fatalf("packet to deleted server: %v, want Drop", verdict)
	}
	v.Flush()
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	mustOK(t, v.AddDest(k, dst))
	if got := v.Service(k).Servers()[0]; got != srv || got.InactConns != 1 {
		t.Fatalf("re-added server not revived: %p vs %p, inactive %d", got, srv, got.InactConns)
	}
	if c2, verdict := v.In(p, t0.Add(2*time.Second)); verdict != Forward || c2 != c {
		t.Fatalf("revived connection: %v", verdict)
	}
	// Gone for good once its connections expire.
	mustOK(t, v.DelDest(k, dst.AddrPort()))
	v.Expire(t0.Add(10 * time.Minute))
	if len(v.trash) != 0 || len(v.Conns()) != 0 {
		t.Fatalf("trash %d entries %d", len(v.trash), len(v.Conns()))
	}
}

// The kernel's overload hysteresis with an upper threshold of 4 and no
// lower one: overloaded at 4 connections, usable again below 3.
func TestThresholds(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 53, Method: model.Masq, Weight: 1, UThreshold: 4}))
	var conns []*Conn
	for i := range 5 {
		c, verdict := v.In(Packet{Protocol: model.ProtoUDP, Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(1000+i)), Dst: ap("198.18.1.1:53")}, t0.Add(time.Duration(i)*time.Second))
		if i < 4 && verdict != Forward || i == 4 && verdict != Reject {
			t.Fatalf("connection %d: %v", i, verdict)
		}
		if c != nil {
			conns = append(conns, c)
		}
	}
	srv := v.Service(k).Servers()[0]
	v.Expire(conns[0].Expires) // 3 left: 3*4 < 4*3 is false, still overloaded
	if !srv.Overloaded {
		t.Fatal("usable again at 3 of 4")
	}
	v.Expire(conns[1].Expires) // 2 left
	if srv.Overloaded {
		t.Fatal("still overloaded at 2 of 4")
	}
}

func TestOnePacketScheduling(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr", Flags: model.FlagOnePacket}))
	for _, a := range []string{"198.18.2.1", "198.18.2.2"} {
		mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr(a), Port: 53, Method: model.Masq, Weight: 1}))
	}
	var got []netip.AddrPort
	for range 4 {
		c, _ := v.In(Packet{Protocol: model.ProtoUDP, Src: ap("198.18.0.1:5000"), Dst: ap("198.18.1.1:53")}, t0)
		got = append(got, c.Dest)
	}
	// Every datagram is scheduled on its own; the list head is the newest server.
	want := []netip.AddrPort{ap("198.18.2.2:53"), ap("198.18.2.1:53"), ap("198.18.2.2:53"), ap("198.18.2.1:53")}
	if len(v.Conns()) != 0 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("got %v, want %v; %d entries", got, want, len(v.Conns()))
	}
	if n := v.Service(k).Stats.Counters().Conns; n != 4 {
		t.Fatalf("conns %d", n)
	}
}

// A template outlives its timeout while it controls connections: the
// kernel re-arms it for 60 s each time.
func TestTemplateExpiry(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoTCP, "198.18.1.1:443")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr", Flags: model.FlagPersistent, Timeout: 30, Netmask: 0xffffffff}))
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Method: model.Route, Weight: 1}))
	c, _ := v.In(Packet{Protocol: model.ProtoTCP, Src: ap("198.18.0.1:1000"), Dst: ap("198.18.1.1:443"), TCPFlags: conn.SYN}, t0)
	v.In(Packet{Protocol: model.ProtoTCP, Src: ap("198.18.0.1:1000"), Dst: ap("198.18.1.1:443"), TCPFlags: conn.ACK}, t0)
	tmpl := c.control
	v.Expire(t0.Add(30 * time.Second))
	if _, ok := v.all[tmpl]; !ok || tmpl.Remaining(t0.Add(30*time.Second)) != 60*time.Second {
		t.Fatalf("template gone or not re-armed: %v", tmpl.Remaining(t0.Add(30*time.Second)))
	}
	v.Expire(t0.Add(15 * time.Minute)) // the connection ends
	v.Expire(t0.Add(16 * time.Minute)) // and then the template
	if len(v.Conns()) != 0 || tmpl.Server.PersistConns != 0 {
		t.Fatalf("%d entries left", len(v.Conns()))
	}
}

// Persistence: every client of one masked network reaches the same server
// until the template expires; whatever the scheduler, the network count and
// the weights.
func TestPersistenceProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, name := range model.Schedulers {
		for round := range 20 {
			v := New(Options{})
			k := svcKey(model.ProtoTCP, "198.18.1.1:80")
			mask := uint32(0xffffff00) << r.IntN(8)
			mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: name, Flags: model.FlagPersistent, Timeout: 300, Netmask: mask}))
			for i := range 2 + r.IntN(6) {
				a := netip.AddrFrom4([4]byte{198, 18, 2, byte(i + 1)})
				mustOK(t, v.AddDest(k, model.Dest{Addr: a, Method: model.Route, Weight: int32(1 + r.IntN(5))}))
			}
			chosen := map[netip.Addr]netip.AddrPort{}
			now := t0
			for i := range 300 {
				now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
				src := netip.AddrFrom4([4]byte{198, 19, byte(r.IntN(4)), byte(r.IntN(256))})
				c, verdict := v.In(Packet{Protocol: model.ProtoTCP, Src: netip.AddrPortFrom(src, uint16(1024+i)), Dst: ap("198.18.1.1:80"), TCPFlags: conn.SYN}, now)
				if verdict != Forward {
					t.Fatalf("%s round %d: %v", name, round, verdict)
				}
				net := maskAddr(src, mask)
				if prev, ok := chosen[net]; ok && prev != c.Dest {
					t.Fatalf("%s round %d: network %s moved from %s to %s", name, round, net, prev, c.Dest)
				}
				chosen[net] = c.Dest
			}
		}
	}
}

func TestServiceErrors(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoTCP, "198.18.1.1:80")
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"duplicate", v.AddService(model.Service{ServiceKey: k}), model.ErrServiceExists},
		{"scheduler", v.AddService(model.Service{ServiceKey: svcKey(model.ProtoTCP, "198.18.1.2:80"), Scheduler: "xx"}), model.ErrSchedulerNotFound},
		{"edit missing", v.EditService(model.Service{ServiceKey: svcKey(model.ProtoTCP, "198.18.1.2:80")}), model.ErrNoSuchService},
		{"del missing", v.DelService(svcKey(model.ProtoUDP, "198.18.1.1:80")), model.ErrNoSuchService},
		{"dest no service", v.AddDest(svcKey(model.ProtoUDP, "198.18.1.1:80"), model.Dest{Addr: netip.MustParseAddr("198.18.2.1")}), model.ErrServiceNotDefined},
		{"edit missing dest", v.EditDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.9")}), model.ErrNoSuchDest},
		{"del missing dest", v.DelDest(k, ap("198.18.2.9:80")), model.ErrNoSuchDest},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Method: model.Route, Weight: 1}))
	if err := v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 8080, Method: model.Route, Weight: 1}); !errors.Is(err, model.ErrDestExists) {
		t.Errorf("DR ignores the port, so this is a duplicate: %v", err)
	}
	if len(v.Services()) != 1 || len(v.Service(k).Servers()) != 1 {
		t.Errorf("failed operations changed the table")
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// The FULLNAT local address pool: checks and errors in DPVS's order
// (service, address, duplicate, room), and a refused command changes
// nothing.
func TestLocalAddrErrors(t *testing.T) {
	k := svcKey(model.ProtoTCP, "198.18.1.1:80")
	k6 := svcKey(model.ProtoTCP, "[2001:db8::1]:80")
	mark := model.ServiceKey{FWMark: 7, Family: model.IPv4}
	full := func(v *IPVS) {
		for i := range model.MaxLocalAddrs {
			mustOK(t, v.AddLocalAddr(k, netip.AddrFrom4([4]byte{198, 18, 3, byte(i + 1)})))
		}
	}
	a := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	missing := svcKey(model.ProtoUDP, "198.18.1.1:80")
	one := func(v *IPVS) { mustOK(t, v.AddLocalAddr(k, a("198.18.3.1"))) }
	for _, tc := range []struct {
		name  string
		setup func(v *IPVS)
		del   bool
		key   model.ServiceKey
		addr  string
		want  error
	}{
		{"add", nil, false, k, "198.18.3.1", nil},
		{"add IPv6", nil, false, k6, "2001:db8::3:1", nil},
		{"add fwmark", nil, false, mark, "198.18.3.1", nil},
		{"no service", nil, false, missing, "198.18.3.1", model.ErrServiceNotDefined},
		{"del no service", nil, true, missing, "198.18.3.1", model.ErrServiceNotDefined},
		{"other family", nil, false, k, "2001:db8::3:1", model.ErrInvalid},
		{"IPv4 in an IPv6 pool (NAT64)", nil, false, k6, "198.18.3.1", nil},
		{"unspecified", nil, false, k, "0.0.0.0", model.ErrInvalid},
		{"multicast", nil, false, k, "239.1.1.1", model.ErrInvalid},
		{"zero address", nil, false, k, "", model.ErrInvalid},
		{"duplicate", one, false, k, "198.18.3.1", model.ErrLocalAddrExists},
		{"full", full, false, k, "198.18.4.1", model.ErrTooManyLocalAddrs},
		{"full duplicate", full, false, k, "198.18.3.1", model.ErrLocalAddrExists},
		{"del absent", one, true, k, "198.18.3.2", model.ErrNoSuchLocalAddr},
		{"del from empty", nil, true, k, "198.18.3.2", model.ErrNoSuchLocalAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := New(Options{})
			for _, key := range []model.ServiceKey{k, k6, mark} {
				mustOK(t, v.AddService(model.Service{ServiceKey: key}))
			}
			if tc.setup != nil {
				tc.setup(v)
			}
			before := slices.Clone(v.Service(k).LocalAddrs())
			op := v.AddLocalAddr
			if tc.del {
				op = v.DelLocalAddr
			}
			err := op(tc.key, a(tc.addr))
			if tc.want == nil {
				mustOK(t, err)
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if !slices.Equal(v.Service(k).LocalAddrs(), before) {
				t.Errorf("refused command changed the pool: %v, was %v", v.Service(k).LocalAddrs(), before)
			}
		})
	}
}

// The pool keeps the order of addition; -E keeps it, -D and -C drop it.
func TestLocalAddrLifecycle(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	for _, a := range addrs("198.18.3.9", "198.18.3.1", "198.18.3.5") {
		mustOK(t, v.AddLocalAddr(k, a))
	}
	held := v.Service(k).LocalAddrs()
	if want := addrs("198.18.3.9", "198.18.3.1", "198.18.3.5"); !slices.Equal(held, want) {
		t.Fatalf("pool %v, want %v", held, want)
	}
	mustOK(t, v.DelLocalAddr(k, addrs("198.18.3.1")[0]))
	if want := addrs("198.18.3.9", "198.18.3.5"); !slices.Equal(v.Service(k).LocalAddrs(), want) {
		t.Fatalf("after delete %v, want %v", v.Service(k).LocalAddrs(), want)
	}
	if want := addrs("198.18.3.9", "198.18.3.1", "198.18.3.5"); !slices.Equal(held, want) {
		t.Errorf("a delete changed a slice the caller held: %v", held)
	}
	mustOK(t, v.EditService(model.Service{ServiceKey: k, Scheduler: "wrr"}))
	if len(v.Service(k).LocalAddrs()) != 2 {
		t.Fatalf("-E dropped the pool")
	}
	mustOK(t, v.DelService(k))
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	if len(v.Service(k).LocalAddrs()) != 0 {
		t.Fatalf("-D kept the pool")
	}
	mustOK(t, v.AddLocalAddr(k, addrs("198.18.3.1")[0]))
	v.Flush()
	mustOK(t, v.AddService(model.Service{ServiceKey: k}))
	if len(v.Service(k).LocalAddrs()) != 0 {
		t.Fatalf("-C kept the pool")
	}
}

// New FULLNAT connections take the pool's addresses in round robin, per
// service; NAT connections and services without a pool use none. After a
// delete the round robin goes on with the address that followed.
func TestNextLocalAddr(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoUDP, "198.18.1.1:53")
	other := svcKey(model.ProtoUDP, "198.18.1.2:53")
	for _, key := range []model.ServiceKey{k, other} {
		mustOK(t, v.AddService(model.Service{ServiceKey: key, Scheduler: "rr"}))
	}
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 53, Method: model.FullNAT, Weight: 1}))
	mustOK(t, v.AddDest(other, model.Dest{Addr: netip.MustParseAddr("198.18.2.2"), Port: 53, Method: model.Masq, Weight: 1}))
	for _, a := range addrs("198.18.3.1", "198.18.3.2", "198.18.3.3") {
		mustOK(t, v.AddLocalAddr(k, a))
		mustOK(t, v.AddLocalAddr(other, a))
	}
	port := uint16(1000)
	next := func(key model.ServiceKey) string {
		port++
		vip := netip.AddrPortFrom(key.Addr, key.Port)
		c, verdict := v.In(Packet{Protocol: model.ProtoUDP, Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port), Dst: vip}, t0)
		if verdict != Forward {
			t.Fatalf("verdict %v", verdict)
		}
		a, ok := v.NextLocalAddr(c)
		if !ok {
			return "-"
		}
		return a.String()
	}
	var got []string
	for range 4 {
		got = append(got, next(k))
	}
	got = append(got, next(other))
	mustOK(t, v.DelLocalAddr(k, addrs("198.18.3.2")[0])) // next was .2: .3 follows
	got = append(got, next(k), next(k))
	mustOK(t, v.DelLocalAddr(k, addrs("198.18.3.1")[0])) // next was .3, now at index 0
	got = append(got, next(k), next(k))
	mustOK(t, v.DelLocalAddr(k, addrs("198.18.3.3")[0]))
	got = append(got, next(k))
	want := []string{"198.18.3.1", "198.18.3.2", "198.18.3.3", "198.18.3.1", "-",
		"198.18.3.3", "198.18.3.1", "198.18.3.3", "198.18.3.3", "-"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// An IPv6 service's pool may hold IPv4 addresses for its IPv4 FULLNAT
// servers (NAT64): a server takes the pool's addresses of its family in
// round robin, none when the pool has none of them.
func TestNextLocalAddrNAT64(t *testing.T) {
	v := New(Options{})
	k := svcKey(model.ProtoTCP, "[2001:db8::1]:80")
	mustOK(t, v.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}))
	mustOK(t, v.AddDest(k, model.Dest{Addr: netip.MustParseAddr("198.18.2.1"), Port: 8080, Method: model.FullNAT, Weight: 1}))
	for _, a := range addrs("2001:db8:ff::1", "198.18.3.1", "2001:db8:ff::2", "198.18.3.2") {
		mustOK(t, v.AddLocalAddr(k, a))
	}
	var got []string
	for port := range uint16(3) {
		c, verdict := v.In(Packet{Protocol: model.ProtoTCP, Src: netip.AddrPortFrom(netip.MustParseAddr("2001:db8:5::1"), 1000+port),
			Dst: netip.AddrPortFrom(k.Addr, 80), TCPFlags: conn.SYN}, t0)
		if verdict != Forward {
			t.Fatalf("verdict %v", verdict)
		}
		a, ok := v.NextLocalAddr(c)
		if !ok {
			t.Fatal("no local address")
		}
		got = append(got, a.String())
	}
	if want := []string{"198.18.3.1", "198.18.3.2", "198.18.3.1"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, a := range addrs("198.18.3.1", "198.18.3.2") {
		mustOK(t, v.DelLocalAddr(k, a))
	}
	c, _ := v.In(Packet{Protocol: model.ProtoTCP, Src: netip.MustParseAddrPort("[2001:db8:5::1]:2000"), Dst: netip.AddrPortFrom(k.Addr, 80), TCPFlags: conn.SYN}, t0)
	if a, ok := v.NextLocalAddr(c); ok {
		t.Errorf("an IPv6 pool gave the IPv4 server %v", a)
	}
}
