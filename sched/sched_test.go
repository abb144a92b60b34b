package sched

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"gvs/model"
)

// Scenario tables for the non-hashing schedulers.
//
// Every table replays a script of operations against one scheduler and
// checks, row by row, the server chosen for each new connection and the
// state of the destination list afterwards. The expected values come from
// the Linux kernel's algorithms (net/netfilter/ipvs/ip_vs_<name>.c), worked
// out by hand and cross-checked with testdata/oracle/ipvs_sched_oracle.py, a
// model written from the kernel sources only, which re-reads this file and
// checks every row:
//
//	python3 sched/testdata/oracle/ipvs_sched_oracle.py
//
// servers lists the destinations in kernel order: the head of
// svc->destinations first, i.e. the most recently added one first
// (__ip_vs_update_dest adds with list_add_rcu). A server is written
// name/weight, optionally /uN for an upper connection threshold.
//
// Operations (first column):
//
//	conn [dst=IP] [inact] [rand=X,Y]  schedule a new connection (to
//	               destination address IP; twos draws X then Y); when a
//	               server is chosen, Bind it: an active connection, or an
//	               inactive one with inact
//	add n/w[/uN]   add a server (index 0, Update Added)
//	del n          remove a server (Available=false, Update Removed)
//	edit n/w[/uN]  ipvsadm -e (Server.Update, Update Edited)
//	over n[,n...], under n[,n...]  set or clear the overload flag directly
//	end n [inact]  a connection of n ends (Unbind)
//	idle n         an active connection of n goes inactive (SetActive)
//	load n A[+I]   set n's connection counts directly
//	advance D      move the clock
//	collect [xN]   N times: advance CollectInterval, then Collect
//	fill N         N connections (not bound) to 10.200.0.0, 10.200.0.1, ...
//	entries        (want) the number of lblc/lblcr table entries
//	set dst=IP     (want) the lblcr server set of IP, newest first
//
// want is the chosen server ("-" for none); state lists, in list order,
// name/weight=active[+inactive][!overloaded].
//
// TestLBLCCollectOverfull, TestLBLCRCollectOverfull and TestTWOSIntOverflow
// show kernel behaviour that this package does not reproduce (see their
// comments); the other tables match the kernel.
type schedTable struct {
	sched   string
	servers string
	opts    string // exp=D: LBLCExpiration / LBLCRExpiration
	steps   []step
}

type step struct{ op, want, state string }

const defaultDst = "10.9.9.9"

type harness struct {
	t      *testing.T
	name   string
	svc    *Service
	sch    Scheduler
	byName map[string]*model.Server
	names  map[*model.Server]string
	now    time.Time
	rand   []uint32
}

func parseDest(t *testing.T, spec string) (string, model.Dest) {
	t.Helper()
	parts := strings.Split(spec, "/")
	if len(parts) < 2 {
		t.Fatalf("bad server %q", spec)
	}
	w, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("bad server %q", spec)
	}
	name := parts[0]
	d := model.Dest{
		Addr:   netip.AddrFrom4([4]byte{192, 0, 2, name[0]}),
		Port:   80,
		Method: model.Masq,
		Weight: int32(w),
	}
	for _, p := range parts[2:] {
		n, err := strconv.Atoi(p[1:])
		if err != nil {
			t.Fatalf("bad server %q", spec)
		}
		switch p[0] {
		case 'u':
			d.UThreshold = uint32(n)
		case 'l':
			d.LThreshold = uint32(n)
		default:
			t.Fatalf("bad server %q", spec)
		}
	}
	return name, d
}

func (h *harness) state() string {
	var b strings.Builder
	for i, s := range h.svc.Servers {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s/%d=%d", h.names[s], s.Weight, s.ActiveConns)
		if s.InactConns != 0 {
			fmt.Fprintf(&b, "+%d", s.InactConns)
		}
		if s.Overloaded {
			b.WriteByte('!')
		}
	}
	return b.String()
}

func (h *harness) server(name string) *model.Server {
	s := h.byName[name]
	if s == nil {
		h.t.Fatalf("no server %q", name)
	}
	return s
}

func (h *harness) nameOf(s *model.Server) string {
	if s == nil {
		return "-"
	}
	if n, ok := h.names[s]; ok {
		return n
	}
	return "?"
}

func (h *harness) lblcEntries() int {
	switch l := h.sch.(type) {
	case *lblc:
		return len(l.entries)
	case *lblcr:
		return len(l.entries)
	}
	h.t.Fatalf("%s keeps no table", h.name)
	return 0
}

func (h *harness) rand32() uint32 {
	if len(h.rand) == 0 {
		h.t.Fatal("twos drew more random numbers than the step gave")
	}
	r := h.rand[0]
	h.rand = h.rand[1:]
	return r
}

// do runs one operation and returns what it produced for the want column.
func (h *harness) do(op string) string {
	t := h.t
	words := strings.Fields(op)
	verb, args := words[0], words[1:]
	switch verb {
	case "conn":
		p := Packet{
			Src: netip.MustParseAddr("198.51.100.7"), SrcPort: 40000,
			Dst: netip.MustParseAddr(defaultDst), DstPort: 80,
			Protocol: model.ProtoTCP,
		}
		inactive := false
		h.rand = nil
		for _, a := range args {
			switch {
			case strings.HasPrefix(a, "dst="):
				p.Dst = netip.MustParseAddr(a[4:])
			case strings.HasPrefix(a, "rand="):
				for _, x := range strings.Split(a[5:], ",") {
					v, err := strconv.ParseUint(x, 10, 32)
					if err != nil {
						t.Fatalf("bad op %q", op)
					}
					h.rand = append(h.rand, uint32(v))
				}
			case a == "inact":
				inactive = true
			default:
				t.Fatalf("bad op %q", op)
			}
		}
		s := h.sch.Schedule(h.svc, p, h.now)
		if len(h.rand) != 0 {
			t.Errorf("%q: twos left random numbers unused: %v", op, h.rand)
		}
		if s != nil {
			s.Bind(false, inactive)
		}
		return h.nameOf(s)
	case "add":
		name, d := parseDest(t, args[0])
		s := h.byName[name]
		if s == nil {
			s = model.NewServer(d)
			h.byName[name] = s
			h.names[s] = name
		} else {
			s.Update(d, true) // back from the trash
		}
		h.svc.Servers = append([]*model.Server{s}, h.svc.Servers...)
		h.sch.Update(h.svc, Change{Kind: Added, Server: s})
	case "del":
		s := h.server(args[0])
		i := indexOf(h.svc.Servers, s)
		if i < 0 {
			t.Fatalf("%q: not in the list", op)
		}
		h.svc.Servers = append(h.svc.Servers[:i:i], h.svc.Servers[i+1:]...)
		s.Available = false // __ip_vs_unlink_dest
		h.sch.Update(h.svc, Change{Kind: Removed, Server: s, Index: i})
	case "edit":
		name, d := parseDest(t, args[0])
		s := h.server(name)
		d.Addr, d.Port = s.Addr, s.Port
		s.Update(d, false)
		h.sch.Update(h.svc, Change{Kind: Edited, Server: s})
	case "over", "under":
		for _, n := range strings.Split(args[0], ",") {
			h.server(n).Overloaded = verb == "over"
		}
	case "end":
		h.server(args[0]).Unbind(false, len(args) > 1 && args[1] == "inact")
	case "idle":
		h.server(args[0]).SetActive(false)
	case "load":
		s := h.server(args[0])
		a, i, _ := strings.Cut(args[1], "+")
		s.ActiveConns, _ = strconv.Atoi(a)
		s.InactConns, _ = strconv.Atoi(i)
	case "advance":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			t.Fatalf("bad op %q", op)
		}
		h.now = h.now.Add(d)
	case "collect":
		n := 1
		if len(args) > 0 {
			var err error
			if n, err = strconv.Atoi(strings.TrimPrefix(args[0], "x")); err != nil {
				t.Fatalf("bad op %q", op)
			}
		}
		for range n {
			h.now = h.now.Add(CollectInterval)
			h.sch.(Collector).Collect(h.now)
		}
	case "entries":
		return strconv.Itoa(h.lblcEntries())
	case "set":
		en := h.sch.(*lblcr).entries[netip.MustParseAddr(strings.TrimPrefix(args[0], "dst="))]
		if en == nil {
			return "-"
		}
		var names []string
		for _, s := range en.set {
			names = append(names, h.nameOf(s))
		}
		return strings.Join(names, ",")
	case "fill":
		n, err := strconv.Atoi(args[0])
		if err != nil {
			t.Fatalf("bad op %q", op)
		}
		for i := range n {
			dst := netip.AddrFrom4([4]byte{10, byte(200 + i>>16), byte(i >> 8), byte(i)})
			h.sch.Schedule(h.svc, Packet{Dst: dst}, h.now)
		}
	default:
		t.Fatalf("unknown op %q", op)
	}
	return ""
}

func runTable(t *testing.T, tb schedTable) {
	t.Helper()
	h := &harness{
		t:      t,
		name:   tb.sched,
		svc:    &Service{},
		byName: map[string]*model.Server{},
		names:  map[*model.Server]string{},
		now:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, spec := range strings.Fields(tb.servers) {
		name, d := parseDest(t, spec)
		s := model.NewServer(d)
		h.byName[name] = s
		h.names[s] = name
		h.svc.Servers = append(h.svc.Servers, s)
	}
	var o Options
	for _, kv := range strings.Fields(tb.opts) {
		k, v, _ := strings.Cut(kv, "=")
		d, err := time.ParseDuration(v)
		if err != nil || k != "exp" {
			t.Fatalf("bad option %q", kv)
		}
		o.LBLCExpiration, o.LBLCRExpiration = d, d
	}
	o.Rand = h.rand32
	sch, err := New(tb.sched, h.svc, o)
	if err != nil {
		t.Fatal(err)
	}
	h.sch = sch
	for i, st := range tb.steps {
		got := h.do(st.op)
		if got != st.want {
			t.Errorf("step %d %q: got %q, want %q", i+1, st.op, got, st.want)
		}
		if s := h.state(); s != st.state {
			t.Errorf("step %d %q: state %q, want %q", i+1, st.op, s, st.state)
		}
		if t.Failed() {
			t.FailNow() // later rows assume this one
		}
	}
}

// rr (ip_vs_rr.c): svc->sched_data points at the last server chosen, the
// list head at first. ip_vs_rr_schedule walks on from there, wrapping round
// once, and takes the first server without IP_VS_DEST_F_OVERLOAD and with
// weight > 0; weights matter no further. There is no add_dest or upd_dest;
// ip_vs_rr_del_dest moves sched_data of a deleted position to the server's
// predecessor (p->next->prev after list_del_rcu), or to the head.
func TestRR(t *testing.T) {
	runTable(t, schedTable{
		sched:   "rr",
		servers: "d/1 c/0 b/2 a/3",
		steps: []step{
			// The walk starts at the list head: d, the newest server.
			{"conn", "d", "d/1=1 c/0=0 b/2=0 a/3=0"},
			// c has weight 0 (quiesced): skipped.
			{"conn", "b", "d/1=1 c/0=0 b/2=1 a/3=0"},
			{"conn", "a", "d/1=1 c/0=0 b/2=1 a/3=1"},
			// Wrapped round to the head.
			{"conn", "d", "d/1=2 c/0=0 b/2=1 a/3=1"},
			{"over b", "", "d/1=2 c/0=0 b/2=1! a/3=1"},
			// After d: c (weight 0) and b (overloaded) skipped.
			{"conn", "a", "d/1=2 c/0=0 b/2=1! a/3=2"},
			// e goes to the head; rr has no add_dest, the position stays on a,
			{"add e/1", "", "e/1=0 d/1=2 c/0=0 b/2=1! a/3=2"},
			// so the walk wraps from a to the new head e.
			{"conn", "e", "e/1=1 d/1=2 c/0=0 b/2=1! a/3=2"},
			{"conn", "d", "e/1=1 d/1=3 c/0=0 b/2=1! a/3=2"},
			// Deleting d, the position, moves the position to d's predecessor e,
			{"del d", "", "e/1=1 c/0=0 b/2=1! a/3=2"},
			// so the walk resumes after e: c (weight 0), b (overloaded), a.
			{"conn", "a", "e/1=1 c/0=0 b/2=1! a/3=3"},
			{"under b", "", "e/1=1 c/0=0 b/2=1 a/3=3"},
			// Wrapped round.
			{"conn", "e", "e/1=2 c/0=0 b/2=1 a/3=3"},
			// c skipped.
			{"conn", "b", "e/1=2 c/0=0 b/2=2 a/3=3"},
			// Deleting a server that is not the position changes nothing.
			{"del e", "", "c/0=0 b/2=2 a/3=3"},
			{"conn", "a", "c/0=0 b/2=2 a/3=4"},
			{"edit a/0", "", "c/0=0 b/2=2 a/0=4"},
			{"edit b/0", "", "c/0=0 b/0=2 a/0=4"},
			// Every weight is 0: no destination.
			{"conn", "-", "c/0=0 b/0=2 a/0=4"},
			{"edit c/2", "", "c/2=0 b/0=2 a/0=4"},
			{"conn", "c", "c/2=1 b/0=2 a/0=4"},
			{"edit b/2", "", "c/2=1 b/2=2 a/0=4"},
			// c, the position, was first in the list: the position goes to the head,
			{"del c", "", "b/2=2 a/0=4"},
			// and the walk starts from the head again.
			{"conn", "b", "b/2=3 a/0=4"},
			// a (weight 0) skipped: b again.
			{"conn", "b", "b/2=4 a/0=4"},
		},
	})
}

// wrr (ip_vs_wrr.c): di is the gcd of the positive weights, mw the largest
// weight - (di - 1), cw the weight of the current pass. ip_vs_wrr_schedule
// walks on from the last server chosen (cl) and takes the first server,
// not overloaded, with weight >= cw; at the end of the list cw drops by di,
// and when it falls to 0 or below it starts again at mw. With a=4 b=3 c=2
// (list order c b a), di=1 and mw=4: the passes cw=4,3,2,1 give
// a | b a | c b a | c b a, each server its weight in 9 connections.
// ip_vs_wrr_dest_changed (add_dest, del_dest and upd_dest alike) puts cl at
// the head, recomputes di and mw, and keeps cw unless cw > mw or cw == 0
// (then cw = mw); when di > 1 it rounds cw to (cw / di) * di + 1.
func TestWRR(t *testing.T) {
	runTable(t, schedTable{
		sched:   "wrr",
		servers: "c/2 b/3 a/4",
		steps: []step{
			// First cycle. cw=4: only a.
			{"conn", "a", "c/2=0 b/3=0 a/4=1"},
			// cw=3: b, a.
			{"conn", "b", "c/2=0 b/3=1 a/4=1"},
			{"conn", "a", "c/2=0 b/3=1 a/4=2"},
			// cw=2: c, b, a.
			{"conn", "c", "c/2=1 b/3=1 a/4=2"},
			{"conn", "b", "c/2=1 b/3=2 a/4=2"},
			{"conn", "a", "c/2=1 b/3=2 a/4=3"},
			// cw=1: c, b, a.
			{"conn", "c", "c/2=2 b/3=2 a/4=3"},
			{"conn", "b", "c/2=2 b/3=3 a/4=3"},
			{"conn", "a", "c/2=2 b/3=3 a/4=4"},
			// Second cycle, the same.
			{"conn", "a", "c/2=2 b/3=3 a/4=5"},
			{"conn", "b", "c/2=2 b/3=4 a/4=5"},
			{"conn", "a", "c/2=2 b/3=4 a/4=6"},
			{"conn", "c", "c/2=3 b/3=4 a/4=6"},
			{"conn", "b", "c/2=3 b/3=5 a/4=6"},
			{"conn", "a", "c/2=3 b/3=5 a/4=7"},
			{"conn", "c", "c/2=4 b/3=5 a/4=7"},
			{"conn", "b", "c/2=4 b/3=6 a/4=7"},
			{"conn", "a", "c/2=4 b/3=6 a/4=8"},
			// A third cycle begins: a (cw=4), b a (cw=3), c (cw=2).
			{"conn", "a", "c/2=4 b/3=6 a/4=9"},
			{"conn", "b", "c/2=4 b/3=7 a/4=9"},
			{"conn", "a", "c/2=4 b/3=7 a/4=10"},
			{"conn", "c", "c/2=5 b/3=7 a/4=10"},
			// b: 3 -> 6 with cw=2: di = gcd(2, 6, 4) = 2, mw = 6 - 1 = 5,
			// cw = (2 / 2) * 2 + 1 = 3, cl = the head.
			{"edit b/6", "", "c/2=5 b/6=7 a/4=10"},
			// cw=3: b, a.
			{"conn", "b", "c/2=5 b/6=8 a/4=10"},
			{"conn", "a", "c/2=5 b/6=8 a/4=11"},
			// cw=1: c, b, a.
			{"conn", "c", "c/2=6 b/6=8 a/4=11"},
			{"conn", "b", "c/2=6 b/6=9 a/4=11"},
			{"conn", "a", "c/2=6 b/6=9 a/4=12"},
			// cw=5: b; cw=3: b, a; cw=1: c, b, a. Per cycle 6:4:2 = 3:2:1 turns.
			{"conn", "b", "c/2=6 b/6=10 a/4=12"},
			{"conn", "b", "c/2=6 b/6=11 a/4=12"},
			{"conn", "a", "c/2=6 b/6=11 a/4=13"},
			{"conn", "c", "c/2=7 b/6=11 a/4=13"},
			{"conn", "b", "c/2=7 b/6=12 a/4=13"},
			{"conn", "a", "c/2=7 b/6=12 a/4=14"},
			// b: 6 -> 1 with cw=1: di = 1, mw = 4, cw stays 1, cl = the head.
			{"edit b/1", "", "c/2=7 b/1=12 a/4=14"},
			// cw=1: c, b, a.
			{"conn", "c", "c/2=8 b/1=12 a/4=14"},
			{"conn", "b", "c/2=8 b/1=13 a/4=14"},
			{"conn", "a", "c/2=8 b/1=13 a/4=15"},
			// A weight-0 server changes neither di nor mw; it never passes weight >= cw.
			{"add d/0", "", "d/0=0 c/2=8 b/1=13 a/4=15"},
			{"over a", "", "d/0=0 c/2=8 b/1=13 a/4=15!"},
			// cw=1 (d skipped): c, b.
			{"conn", "c", "d/0=0 c/2=9 b/1=13 a/4=15!"},
			{"conn", "b", "d/0=0 c/2=9 b/1=14 a/4=15!"},
			// a is overloaded: cw wraps to 4; cw=4 and 3 find nothing, cw=2: c.
			{"conn", "c", "d/0=0 c/2=10 b/1=14 a/4=15!"},
			// From c: b (1 < 2), a (overloaded); cw=1 from the head: c.
			{"conn", "c", "d/0=0 c/2=11 b/1=14 a/4=15!"},
			{"under a", "", "d/0=0 c/2=11 b/1=14 a/4=15"},
			// di = gcd(1, 4) = 1, mw = 4, cw stays 1, cl = the head.
			{"del c", "", "d/0=0 b/1=14 a/4=15"},
			// cw=1: b, a; cw=4, 3, 2: a alone.
			{"conn", "b", "d/0=0 b/1=15 a/4=15"},
			{"conn", "a", "d/0=0 b/1=15 a/4=16"},
			{"conn", "a", "d/0=0 b/1=15 a/4=17"},
			{"conn", "a", "d/0=0 b/1=15 a/4=18"},
			{"conn", "a", "d/0=0 b/1=15 a/4=19"},
			{"over b", "", "d/0=0 b/1=15! a/4=19"},
			// From a at cw=2: nothing; cw=1 from the head: b overloaded, a.
			{"conn", "a", "d/0=0 b/1=15! a/4=20"},
			{"over a", "", "d/0=0 b/1=15! a/4=20!"},
			// All overloaded: from a, cw wraps to mw (restarted), and the last pass
			// (cw=1) stops at 'last' = a: no destination, cl stays at a.
			{"conn", "-", "d/0=0 b/1=15! a/4=20!"},
			{"under b", "", "d/0=0 b/1=15 a/4=20!"},
			// b, the only one usable, on the pass of weight >= 1 up to 'last'.
			{"conn", "b", "d/0=0 b/1=16 a/4=20!"},
			{"conn", "b", "d/0=0 b/1=17 a/4=20!"},
			{"edit a/0", "", "d/0=0 b/1=17 a/0=20"},
			{"edit b/0", "", "d/0=0 b/0=17 a/0=20"},
			// mw = 0: no destination at once.
			{"conn", "-", "d/0=0 b/0=17 a/0=20"},
			// cw was 0 (set from mw = 0): cw = mw = 1.
			{"edit a/1", "", "d/0=0 b/0=17 a/1=20"},
			{"conn", "a", "d/0=0 b/0=17 a/1=21"},
			// di = gcd(2, 1) = 1, mw = 2, cw stays 1, cl = the head.
			{"edit b/2", "", "d/0=0 b/2=17 a/1=21"},
			// cw=1: b, a; cw=2: b; cw=1: b, a.
			{"conn", "b", "d/0=0 b/2=18 a/1=21"},
			{"conn", "a", "d/0=0 b/2=18 a/1=22"},
			{"conn", "b", "d/0=0 b/2=19 a/1=22"},
			{"conn", "b", "d/0=0 b/2=20 a/1=22"},
			{"conn", "a", "d/0=0 b/2=20 a/1=23"},
		},
	})
}

// When wrr finds nothing it leaves cl where the walk gave up (err_over:
// mark->cl = dest): at the list head when the call went down to the last
// pass from the head ("last_pass"), at the starting server 'last' when it
// had to wrap round to mw first ("stop = last"). The next walk continues
// from there, so the two cases pick differently afterwards.
func TestWRRPositionAfterNoDestination(t *testing.T) {
	runTable(t, schedTable{
		sched:   "wrr",
		servers: "c/2 b/2 a/2 z/1",
		steps: []step{
			// di = 1, mw = 2. cw=2: c, b.
			{"conn", "c", "c/2=1 b/2=0 a/2=0 z/1=0"},
			{"conn", "b", "c/2=1 b/2=1 a/2=0 z/1=0"},
			{"over c,b,a,z", "", "c/2=1! b/2=1! a/2=0! z/1=0!"},
			// From b at cw=2: a, z overloaded; cw=1 is the last pass, from the head:
			// nothing; cw <= 0 with last_pass set: no destination, cl = the head.
			{"conn", "-", "c/2=1! b/2=1! a/2=0! z/1=0!"},
			{"under c,b,a,z", "", "c/2=1 b/2=1 a/2=0 z/1=0"},
			// cw=2 from the head: c (not a, as a walk on from b would give).
			{"conn", "c", "c/2=2 b/2=1 a/2=0 z/1=0"},
			// cw=2: b, a.
			{"conn", "b", "c/2=2 b/2=2 a/2=0 z/1=0"},
			{"conn", "a", "c/2=2 b/2=2 a/2=1 z/1=0"},
			// From a: z (1 < 2); cw=1 from the head: c.
			{"conn", "c", "c/2=3 b/2=2 a/2=1 z/1=0"},
			{"over c,b,a,z", "", "c/2=3! b/2=2! a/2=1! z/1=0!"},
			// From c at cw=1: nothing; cw wraps to mw = 2 (restarted), nothing;
			// cw=1 is the last pass with stop = last = c: the walk gives up at c.
			{"conn", "-", "c/2=3! b/2=2! a/2=1! z/1=0!"},
			{"under c,b,a,z", "", "c/2=3 b/2=2 a/2=1 z/1=0"},
			// cw=2 from c: b (not c, as a walk from the head would give).
			{"conn", "b", "c/2=3 b/2=3 a/2=1 z/1=0"},
		},
	})
}

// lc (ip_vs_lc.c): the server, not overloaded and with weight > 0, with the
// least ip_vs_dest_conn_overhead = activeconns * 256 + inactconns; the
// first in list order on ties (doh < loh). Weights matter no further.
func TestLC(t *testing.T) {
	runTable(t, schedTable{
		sched:   "lc",
		servers: "d/1 c/5 b/0 a/1",
		steps: []step{
			// All at 0: d, the first; b (weight 0) never.
			{"conn", "d", "d/1=1 c/5=0 b/0=0 a/1=0"},
			// d 256; c, a 0: c first.
			{"conn", "c", "d/1=1 c/5=1 b/0=0 a/1=0"},
			{"conn", "a", "d/1=1 c/5=1 b/0=0 a/1=1"},
			// All at 256: d first (the new connection is inactive: d 257).
			{"conn inact", "d", "d/1=1+1 c/5=1 b/0=0 a/1=1"},
			// c 256 = a 256 < d 257: c first.
			{"conn inact", "c", "d/1=1+1 c/5=1+1 b/0=0 a/1=1"},
			// a 256 < d 257 = c 257.
			{"conn", "a", "d/1=1+1 c/5=1+1 b/0=0 a/1=2"},
			// A connection of d goes inactive: d = 0*256 + 2 = 2.
			{"idle d", "", "d/1=0+2 c/5=1+1 b/0=0 a/1=2"},
			// d 2.
			{"conn", "d", "d/1=1+2 c/5=1+1 b/0=0 a/1=2"},
			// c = 0*256 + 1 = 1.
			{"end c", "", "d/1=1+2 c/5=0+1 b/0=0 a/1=2"},
			// c 1.
			{"conn", "c", "d/1=1+2 c/5=1+1 b/0=0 a/1=2"},
			{"over a", "", "d/1=1+2 c/5=1+1 b/0=0 a/1=2!"},
			{"add e/1", "", "e/1=0 d/1=1+2 c/5=1+1 b/0=0 a/1=2!"},
			// e 0 (a overloaded).
			{"conn", "e", "e/1=1 d/1=1+2 c/5=1+1 b/0=0 a/1=2!"},
			// e 256 < c 257 < d 258.
			{"conn inact", "e", "e/1=1+1 d/1=1+2 c/5=1+1 b/0=0 a/1=2!"},
			// e 257 = c 257 < d 258: e, first in the list.
			{"conn", "e", "e/1=2+1 d/1=1+2 c/5=1+1 b/0=0 a/1=2!"},
			{"del d", "", "e/1=2+1 c/5=1+1 b/0=0 a/1=2!"},
			// c 257 < e 513.
			{"conn", "c", "e/1=2+1 c/5=2+1 b/0=0 a/1=2!"},
			{"edit e/0", "", "e/0=2+1 c/5=2+1 b/0=0 a/1=2!"},
			{"over c", "", "e/0=2+1 c/5=2+1! b/0=0 a/1=2!"},
			// e and b have weight 0, c and a are overloaded: no destination.
			{"conn", "-", "e/0=2+1 c/5=2+1! b/0=0 a/1=2!"},
			{"under a", "", "e/0=2+1 c/5=2+1! b/0=0 a/1=2"},
			{"conn", "a", "e/0=2+1 c/5=2+1! b/0=0 a/1=3"},
		},
	})
}

// wlc (ip_vs_wlc.c): the least overhead / weight, compared as
// loh * dest->weight > doh * least->weight in 64 bits. The first server that
// is not overloaded and has weight > 0 starts; a later one replaces it only
// when strictly less loaded, so ties go to the first in list order, a later
// weight-0 server never wins (loh * 0 > doh * w is false), and later
// overloaded ones are skipped. Below, load = overhead / weight.
func TestWLC(t *testing.T) {
	runTable(t, schedTable{
		sched:   "wlc",
		servers: "c/3 b/1 a/2",
		steps: []step{
			// All idle: c first.
			{"conn", "c", "c/3=1 b/1=0 a/2=0"},
			// c 256/3 = 85; b, a 0: b first.
			{"conn", "b", "c/3=1 b/1=1 a/2=0"},
			// c 85, b 256, a 0.
			{"conn", "a", "c/3=1 b/1=1 a/2=1"},
			// c 85, b 256, a 256/2 = 128.
			{"conn", "c", "c/3=2 b/1=1 a/2=1"},
			// c 512/3 = 171, b 256, a 128.
			{"conn", "a", "c/3=2 b/1=1 a/2=2"},
			// c 171, b 256, a 256.
			{"conn", "c", "c/3=3 b/1=1 a/2=2"},
			// c 768/3 = b 256 = a 512/2: a three-way tie, c first (then c = 769).
			{"conn inact", "c", "c/3=3+1 b/1=1 a/2=2"},
			// c 769/3 = 256.3, b 256 = a 256: b first (then b = 257).
			{"conn inact", "b", "c/3=3+1 b/1=1+1 a/2=2"},
			// c 256.3, b 257, a 256.
			{"conn", "a", "c/3=3+1 b/1=1+1 a/2=3"},
			{"add d/0", "", "d/0=0 c/3=3+1 b/1=1+1 a/2=3"},
			// d has weight 0: not even a starting candidate. c 256.3, b 257, a 384.
			{"conn", "c", "d/0=0 c/3=4+1 b/1=1+1 a/2=3"},
			{"edit d/6", "", "d/6=0 c/3=4+1 b/1=1+1 a/2=3"},
			// d 0.
			{"conn", "d", "d/6=1 c/3=4+1 b/1=1+1 a/2=3"},
			// d 256/6 = 43, c 1025/3 = 342.
			{"conn", "d", "d/6=2 c/3=4+1 b/1=1+1 a/2=3"},
			{"over d", "", "d/6=2! c/3=4+1 b/1=1+1 a/2=3"},
			// d overloaded: c 342, b 257, a 384.
			{"conn", "b", "d/6=2! c/3=4+1 b/1=2+1 a/2=3"},
			{"del c", "", "d/6=2! b/1=2+1 a/2=3"},
			// b 513, a 384.
			{"conn", "a", "d/6=2! b/1=2+1 a/2=4"},
			{"edit b/0", "", "d/6=2! b/0=2+1 a/2=4"},
			{"over a", "", "d/6=2! b/0=2+1 a/2=4!"},
			// d, a overloaded, b weight 0: no destination.
			{"conn", "-", "d/6=2! b/0=2+1 a/2=4!"},
			{"under d", "", "d/6=2 b/0=2+1 a/2=4!"},
			{"conn", "d", "d/6=3 b/0=2+1 a/2=4!"},
		},
	})
}

// sed (ip_vs_sed.c): wlc's walk with the cost (activeconns + 1) / weight;
// inactive connections do not count. a starts with weight 0.
func TestSED(t *testing.T) {
	runTable(t, schedTable{
		sched:   "sed",
		servers: "c/1 b/3 a/0",
		steps: []step{
			// c 1/1, b 1/3.
			{"conn", "b", "c/1=0 b/3=1 a/0=0"},
			// c 1, b 2/3.
			{"conn", "b", "c/1=0 b/3=2 a/0=0"},
			// c 1 = b 3/3: c first.
			{"conn", "c", "c/1=1 b/3=2 a/0=0"},
			// c 2, b 1.
			{"conn", "b", "c/1=1 b/3=3 a/0=0"},
			// c 2, b 4/3; the inactive connections do not count,
			{"conn inact", "b", "c/1=1 b/3=3+1 a/0=0"},
			// so b stays at 4/3.
			{"conn inact", "b", "c/1=1 b/3=3+2 a/0=0"},
			// c 2, b 4/3.
			{"conn", "b", "c/1=1 b/3=4+2 a/0=0"},
			{"add d/2", "", "d/2=0 c/1=1 b/3=4+2 a/0=0"},
			// d 1/2.
			{"conn", "d", "d/2=1 c/1=1 b/3=4+2 a/0=0"},
			// d 2/2, c 2, b 5/3.
			{"conn", "d", "d/2=2 c/1=1 b/3=4+2 a/0=0"},
			// d 3/2 < b 5/3.
			{"conn", "d", "d/2=3 c/1=1 b/3=4+2 a/0=0"},
			{"over b", "", "d/2=3 c/1=1 b/3=4+2! a/0=0"},
			// b overloaded: d 4/2 = c 2/1: d first.
			{"conn", "d", "d/2=4 c/1=1 b/3=4+2! a/0=0"},
			{"del d", "", "c/1=1 b/3=4+2! a/0=0"},
			// c, the only one usable.
			{"conn", "c", "c/1=2 b/3=4+2! a/0=0"},
			{"edit c/0", "", "c/0=2 b/3=4+2! a/0=0"},
			// c and a have weight 0, b is overloaded: no destination.
			{"conn", "-", "c/0=2 b/3=4+2! a/0=0"},
			{"edit a/2", "", "c/0=2 b/3=4+2! a/2=0"},
			{"conn", "a", "c/0=2 b/3=4+2! a/2=1"},
		},
	})
}

// nq (ip_vs_nq.c): walking the list, the first server (not overloaded,
// weight > 0) with no active connection is taken at once, whatever its
// weight or inactive connections; with none idle, sed's choice
// ((activeconns + 1) / weight, the first on ties).
func TestNQ(t *testing.T) {
	runTable(t, schedTable{
		sched:   "nq",
		servers: "c/1 b/4 a/2",
		steps: []step{
			// c is idle: taken, though sed would prefer b (1/4 < 1/1).
			{"conn", "c", "c/1=1 b/4=0 a/2=0"},
			// b is the first idle one.
			{"conn", "b", "c/1=1 b/4=1 a/2=0"},
			// a is the first idle one.
			{"conn", "a", "c/1=1 b/4=1 a/2=1"},
			// None idle: c 2/1, b 2/4, a 2/2.
			{"conn", "b", "c/1=1 b/4=2 a/2=1"},
			// c 2, b 3/4, a 1.
			{"conn", "b", "c/1=1 b/4=3 a/2=1"},
			// c 2, b 4/4 = a 2/2: b first.
			{"conn", "b", "c/1=1 b/4=4 a/2=1"},
			// c 2, b 5/4, a 1.
			{"conn", "a", "c/1=1 b/4=4 a/2=2"},
			// A connection of a goes inactive: a = 1 active + 1 inactive.
			{"idle a", "", "c/1=1 b/4=4 a/2=1+1"},
			// c 2, b 5/4, a 2/2.
			{"conn", "a", "c/1=1 b/4=4 a/2=2+1"},
			{"add d/1", "", "d/1=0 c/1=1 b/4=4 a/2=2+1"},
			// An idle server with weight 0 is skipped,
			{"edit d/0", "", "d/0=0 c/1=1 b/4=4 a/2=2+1"},
			// c 2, b 5/4, a 3/2 (d weight 0).
			{"conn", "b", "d/0=0 c/1=1 b/4=5 a/2=2+1"},
			{"edit d/1", "", "d/1=0 c/1=1 b/4=5 a/2=2+1"},
			// d is idle: taken at once; its new connection is inactive,
			{"conn inact", "d", "d/1=0+1 c/1=1 b/4=5 a/2=2+1"},
			// so d is still idle (inactive ones do not count): taken again.
			{"conn", "d", "d/1=1+1 c/1=1 b/4=5 a/2=2+1"},
			{"over b", "", "d/1=1+1 c/1=1 b/4=5! a/2=2+1"},
			// b overloaded: d 2/1 = c 2/1 > a 3/2.
			{"conn", "a", "d/1=1+1 c/1=1 b/4=5! a/2=3+1"},
			{"del a", "", "d/1=1+1 c/1=1 b/4=5!"},
			// d 2/1 = c 2/1: d first.
			{"conn", "d", "d/1=2+1 c/1=1 b/4=5!"},
			{"over c", "", "d/1=2+1 c/1=1! b/4=5!"},
			{"over d", "", "d/1=2+1! c/1=1! b/4=5!"},
			// Everyone overloaded: no destination.
			{"conn", "-", "d/1=2+1! c/1=1! b/4=5!"},
		},
	})
}

// fo (ip_vs_fo.c): the server, not overloaded, with the highest weight
// (weight > hw with hw starting at 0, so never weight 0); the first in list
// order on ties. Connection counts do not matter.
func TestFO(t *testing.T) {
	runTable(t, schedTable{
		sched:   "fo",
		servers: "c/2 b/5 a/5",
		steps: []step{
			// b and a both have weight 5: b, first in the list.
			{"conn", "b", "c/2=0 b/5=1 a/5=0"},
			{"conn", "b", "c/2=0 b/5=2 a/5=0"},
			{"over b", "", "c/2=0 b/5=2! a/5=0"},
			// b overloaded: a.
			{"conn", "a", "c/2=0 b/5=2! a/5=1"},
			{"add d/7", "", "d/7=0 c/2=0 b/5=2! a/5=1"},
			// d, the new highest weight.
			{"conn", "d", "d/7=1 c/2=0 b/5=2! a/5=1"},
			{"edit d/0", "", "d/0=1 c/2=0 b/5=2! a/5=1"},
			{"under b", "", "d/0=1 c/2=0 b/5=2 a/5=1"},
			// d quiesced, b back: b first again.
			{"conn", "b", "d/0=1 c/2=0 b/5=3 a/5=1"},
			{"del b", "", "d/0=1 c/2=0 a/5=1"},
			// a.
			{"conn", "a", "d/0=1 c/2=0 a/5=2"},
			{"over a", "", "d/0=1 c/2=0 a/5=2!"},
			// c, the only one left.
			{"conn", "c", "d/0=1 c/2=1 a/5=2!"},
			{"over c", "", "d/0=1 c/2=1! a/5=2!"},
			// d has weight 0, c and a are overloaded: no destination.
			{"conn", "-", "d/0=1 c/2=1! a/5=2!"},
			{"edit d/1", "", "d/1=1 c/2=1! a/5=2!"},
			{"conn", "d", "d/1=2 c/2=1! a/5=2!"},
		},
	})
}

// ovf (ip_vs_ovf.c): the highest-weight server that is not overloaded, has
// weight > 0 and no more active connections than its weight (activeconns >
// weight skips it); the first in list order on ties. a has an upper
// threshold of 3: ip_vs_bind_dest sets its overload flag when active +
// inactive connections reach 3, ip_vs_unbind_dest clears it when they fall
// below 3/4 of it (no lower threshold).
func TestOVF(t *testing.T) {
	runTable(t, schedTable{
		sched:   "ovf",
		servers: "c/1 b/2 a/2/u3",
		steps: []step{
			// b and a both have weight 2: b first; b takes new connections while it
			{"conn", "b", "c/1=0 b/2=1 a/2=0"},
			// has at most 2 active ones (0, 1, 2 before each).
			{"conn", "b", "c/1=0 b/2=2 a/2=0"},
			{"conn", "b", "c/1=0 b/2=3 a/2=0"},
			// b 3 > 2: overflow to a.
			{"conn", "a", "c/1=0 b/2=3 a/2=1"},
			// a 1 <= 2 (a new inactive connection: a = 1 + 1).
			{"conn inact", "a", "c/1=0 b/2=3 a/2=1+1"},
			// a: 2 active + 1 inactive reach the threshold 3: overloaded.
			{"conn", "a", "c/1=0 b/2=3 a/2=2+1!"},
			// c (weight 1) takes connections while it has at most 1 active.
			{"conn", "c", "c/1=1 b/2=3 a/2=2+1!"},
			{"conn", "c", "c/1=2 b/2=3 a/2=2+1!"},
			// c 2 > 1, b 3 > 2, a overloaded: no destination.
			{"conn", "-", "c/1=2 b/2=3 a/2=2+1!"},
			{"add d/3", "", "d/3=0 c/1=2 b/2=3 a/2=2+1!"},
			// d, the new highest weight.
			{"conn", "d", "d/3=1 c/1=2 b/2=3 a/2=2+1!"},
			{"edit d/0", "", "d/0=1 c/1=2 b/2=3 a/2=2+1!"},
			// b back to 2 active, within its weight,
			{"end b", "", "d/0=1 c/1=2 b/2=2 a/2=2+1!"},
			// so b (d has weight 0 now).
			{"conn", "b", "d/0=1 c/1=2 b/2=3 a/2=2+1!"},
			// a: 1 + 1 = 2 connections, 2 * 4 < 3 * 3: the overload flag goes.
			{"end a", "", "d/0=1 c/1=2 b/2=3 a/2=1+1"},
			{"end a", "", "d/0=1 c/1=2 b/2=3 a/2=0+1"},
			// b 3 > 2: a (0 active).
			{"conn", "a", "d/0=1 c/1=2 b/2=3 a/2=1+1"},
			{"del b", "", "d/0=1 c/1=2 a/2=1+1"},
			// a: 1 active <= 2; then 2 + 1 = 3 connections: overloaded again.
			{"conn", "a", "d/0=1 c/1=2 a/2=2+1!"},
			// d weight 0, c 2 > 1, a overloaded: no destination.
			{"conn", "-", "d/0=1 c/1=2 a/2=2+1!"},
		},
	})
}

// twos (ip_vs_twos.c): total_weight sums the weights of the usable servers
// (not overloaded, weight > 0) and adds 1; rweight1 and rweight2 are two
// random numbers modulo total_weight (prandom_u32() % total_weight; recent
// kernels draw with get_random_u32_below, the same range). Walking the
// usable servers, each weight is subtracted from both; choice1 is the
// server where rweight1 first drops to <= 0, choice2 likewise; choice2 wins
// only when strictly less loaded, weight2 * overhead1 > weight1 * overhead2
// (ties keep choice1). rand=X,Y are the two raw random numbers. Weights
// c=1 b=3 a=2: total_weight = 7.
func TestTWOS(t *testing.T) {
	runTable(t, schedTable{
		sched:   "twos",
		servers: "c/1 b/3 a/2",
		steps: []step{
			// r1 = 0: c (0-1 <= 0); r2 = 6: a (6-1-3-2 = 0). Both idle: choice1 c.
			{"conn rand=0,6", "c", "c/1=1 b/3=0 a/2=0"},
			// r1 = 1: c (1-1 = 0); r2 = 2: b (2-1-3 < 0). b 0 < c 256: b.
			{"conn rand=1,2", "b", "c/1=1 b/3=1 a/2=0"},
			// r1 = 4: b (4-1-3 = 0); r2 = 3: b.
			{"conn rand=4,3", "b", "c/1=1 b/3=2 a/2=0"},
			// r1 = 5: a; r2 = 4: b. a 0 < b 512/3: a stays.
			{"conn rand=5,4", "a", "c/1=1 b/3=2 a/2=1"},
			// r1 = 13 % 7 = 6: a; r2 = 4294967295 % 7 = 3: b.
			// a 256/2 = 128 < b 512/3 = 171: a stays.
			{"conn rand=13,4294967295", "a", "c/1=1 b/3=2 a/2=2"},
			// r1 = 6: a; r2 = 0: c. a 512/2 = c 256/1: a tie keeps choice1, a.
			{"conn rand=6,0", "a", "c/1=1 b/3=2 a/2=3"},
			// r1 = 2: b; r2 = 5: a. b 512/3 < a 768/2: b (an inactive connection).
			{"conn inact rand=2,5", "b", "c/1=1 b/3=2+1 a/2=3"},
			{"over b", "", "c/1=1 b/3=2+1! a/2=3"},
			// b overloaded: total_weight = 1 + 2 + 1 = 4. r1 = 1: c; r2 = 2: a
			// (2-1-2 < 0). c 256 < a 768/2 = 384: c.
			{"conn rand=1,2", "c", "c/1=2 b/3=2+1! a/2=3"},
			{"add d/0", "", "d/0=0 c/1=2 b/3=2+1! a/2=3"},
			// Weight 0 does not count: total_weight = 4. r1 = 3: a (3-1-2 = 0);
			// r2 = 1: c. a 768/2 = 384 < c 512: a.
			{"conn rand=3,1", "a", "d/0=0 c/1=2 b/3=2+1! a/2=4"},
			{"edit d/4", "", "d/4=0 c/1=2 b/3=2+1! a/2=4"},
			// total_weight = 4+1+2+1 = 8. r1 = 7: a (7-4-1-2 = 0); r2 = 2: d. d 0: d.
			{"conn rand=7,2", "d", "d/4=1 c/1=2 b/3=2+1! a/2=4"},
			{"del c", "", "d/4=1 b/3=2+1! a/2=4"},
			// total_weight = 4+2+1 = 7. r1 = 0 and r2 = 7 % 7 = 0: d twice.
			{"conn rand=0,7", "d", "d/4=2 b/3=2+1! a/2=4"},
			{"over a", "", "d/4=2 b/3=2+1! a/2=4!"},
			{"over d", "", "d/4=2! b/3=2+1! a/2=4!"},
			// Nothing usable: no destination, and no random number is drawn.
			{"conn", "-", "d/4=2! b/3=2+1! a/2=4!"},
		},
	})
}

// lblc (ip_vs_lblc.c): a table maps the packet's destination address to a
// server. The cached server is kept while it is IP_VS_DEST_F_AVAILABLE (not
// deleted), has weight > 0 and is not is_overloaded(): more active
// connections than its weight while some server of the service has
// activeconns * 2 < weight. Its overload flag is not looked at. Otherwise
// wlc's choice (__ip_vs_lblc_schedule) replaces the entry. A lookup
// refreshes the entry's lastuse. ip_vs_lblc_check_expire runs every 60 s
// (tbl->counter starts at 1): when counter % 30 == 0 it drops every entry
// unused for lblc_expiration (10 minutes here) and sets counter = 1;
// otherwise, with at most 16384 entries, it only increments counter.
func TestLBLC(t *testing.T) {
	runTable(t, schedTable{
		sched:   "lblc",
		servers: "c/2 b/1 a/4",
		opts:    "exp=10m",
		steps: []step{
			// No entry: wlc, all idle: c first. 10.0.0.1 -> c.
			{"conn dst=10.0.0.1", "c", "c/2=1 b/1=0 a/4=0"},
			// Cached c: 1 active <= weight 2.
			{"conn dst=10.0.0.1", "c", "c/2=2 b/1=0 a/4=0"},
			// No entry: wlc: c 512/2, b 0, a 0: b first. 10.0.0.2 -> b.
			{"conn dst=10.0.0.2", "b", "c/2=2 b/1=1 a/4=0"},
			// c: 2 <= 2, kept though b and a are less loaded.
			{"conn dst=10.0.0.1", "c", "c/2=3 b/1=1 a/4=0"},
			// c: 3 > 2, and a has 0 * 2 < 4: is_overloaded. wlc: c 768/2 = 384,
			// b 256, a 0: a. 10.0.0.1 -> a.
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=1 a/4=1"},
			// b: 1 <= 1.
			{"conn dst=10.0.0.2", "b", "c/2=3 b/1=2 a/4=1"},
			// b: 2 > 1, a has 1 * 2 < 4: wlc: c 384, b 512, a 64: a. 10.0.0.2 -> a.
			{"conn dst=10.0.0.2", "a", "c/2=3 b/1=2 a/4=2"},
			// a: 2, 3, 4 <= 4.
			{"conn dst=10.0.0.2", "a", "c/2=3 b/1=2 a/4=3"},
			{"conn dst=10.0.0.2", "a", "c/2=3 b/1=2 a/4=4"},
			{"conn dst=10.0.0.2", "a", "c/2=3 b/1=2 a/4=5"},
			// a: 5 > 4, but no server has active * 2 < weight (c 6 >= 2,
			// b 4 >= 1, a 10 >= 4): a is kept.
			{"conn dst=10.0.0.2", "a", "c/2=3 b/1=2 a/4=6"},
			// b: 2 * 2 = 4 is not < 4 (the rule is strict),
			{"edit b/4", "", "c/2=3 b/4=2 a/4=6"},
			// so a (6 > 4) is still kept.
			{"conn dst=10.0.0.2", "a", "c/2=3 b/4=2 a/4=7"},
			{"edit b/1", "", "c/2=3 b/1=2 a/4=7"},
			// Weight 0 invalidates the entries on a:
			{"edit a/0", "", "c/2=3 b/1=2 a/0=7"},
			// wlc: c 768/2 = 384, b 512/1 (a weight 0): c. 10.0.0.1 -> c.
			{"conn dst=10.0.0.1", "c", "c/2=4 b/1=2 a/0=7"},
			// wlc: c 1024/2 = 512 = b 512: c first. 10.0.0.2 -> c.
			{"conn dst=10.0.0.2", "c", "c/2=5 b/1=2 a/0=7"},
			// d has an upper threshold of 2 connections.
			{"add d/3/u2", "", "d/3=0 c/2=5 b/1=2 a/0=7"},
			// wlc: d 0. 10.0.0.3 -> d.
			{"conn dst=10.0.0.3", "d", "d/3=1 c/2=5 b/1=2 a/0=7"},
			// Cached d: 1 <= 3. The new connection makes 2: d overloaded.
			{"conn dst=10.0.0.3", "d", "d/3=2! c/2=5 b/1=2 a/0=7"},
			// Cached d: the overload flag is not checked (and 2 <= 3): d again.
			{"conn dst=10.0.0.3", "d", "d/3=3! c/2=5 b/1=2 a/0=7"},
			// A new address: wlc skips the overloaded d: c 1280/2 = 640, b 512/1: b.
			{"conn dst=10.0.0.4", "b", "d/3=3! c/2=5 b/1=3 a/0=7"},
			// __ip_vs_unlink_dest clears IP_VS_DEST_F_AVAILABLE:
			{"del d", "", "c/2=5 b/1=3 a/0=7"},
			// the entry 10.0.0.3 -> d is invalid: wlc: c 640, b 768: c.
			{"conn dst=10.0.0.3", "c", "c/2=6 b/1=3 a/0=7"},
			{"over c", "", "c/2=6! b/1=3 a/0=7"},
			{"over b", "", "c/2=6! b/1=3! a/0=7"},
			// No usable server (a weight 0) and no entry: no destination.
			{"conn dst=10.0.0.5", "-", "c/2=6! b/1=3! a/0=7"},
			// 10.0.0.1 -> c is still valid: available, weight 2, not is_overloaded
			// (c 6 > 2, but nobody has active * 2 < weight); the overload flag does not
			// count: c.
			{"conn dst=10.0.0.1", "c", "c/2=7! b/1=3! a/0=7"},
			{"under c", "", "c/2=7 b/1=3! a/0=7"},
			{"under b", "", "c/2=7 b/1=3 a/0=7"},
			// Entries for 10.0.0.1 to .4 (none for .5).
			{"entries", "4", "c/2=7 b/1=3 a/0=7"},
			// Timer runs 1-20 (minutes 1-20): counter 1 -> 21.
			{"collect x20", "", "c/2=7 b/1=3 a/0=7"},
			// Minute 20. 10.0.0.6 -> b (wlc).
			{"conn dst=10.0.0.6", "b", "c/2=7 b/1=4 a/0=7"},
			// Run 21.
			{"collect", "", "c/2=7 b/1=4 a/0=7"},
			// Minute 21. 10.0.0.7 -> c (wlc).
			{"conn dst=10.0.0.7", "c", "c/2=8 b/1=4 a/0=7"},
			// Runs 22-29.
			{"collect x8", "", "c/2=8 b/1=4 a/0=7"},
			// Minute 29: 10.0.0.2 used again.
			{"conn dst=10.0.0.2", "c", "c/2=9 b/1=4 a/0=7"},
			{"entries", "6", "c/2=9 b/1=4 a/0=7"},
			// Run 30, minute 30: counter % 30 == 0, the full check drops entries
			// unused for >= 10 minutes (time_before(now, lastuse + expiration) is
			// false): .1, .3, .4 (minute 0) and .6 (exactly 10 minutes); .7 (9 minutes)
			// and .2 stay.
			{"collect", "", "c/2=9 b/1=4 a/0=7"},
			{"entries", "2", "c/2=9 b/1=4 a/0=7"},
			// A new entry: wlc: c 2304/2 = 1152, b 1024/1: b.
			{"conn dst=10.0.0.1", "b", "c/2=9 b/1=5 a/0=7"},
			// Runs 31-59: counter 1 -> 30.
			{"collect x29", "", "c/2=9 b/1=5 a/0=7"},
			{"entries", "3", "c/2=9 b/1=5 a/0=7"},
			// Run 60, minute 60: the next full check drops the rest.
			{"collect", "", "c/2=9 b/1=5 a/0=7"},
			{"entries", "0", "c/2=9 b/1=5 a/0=7"},
		},
	})
}

// lblcr (ip_vs_lblcr.c): each destination address maps to a set of
// servers, the newest first. ip_vs_dest_set_min picks the member, not
// overloaded, with weight > 0 and IP_VS_DEST_F_AVAILABLE, of least
// overhead / weight (first on ties). If there is none, or it
// is_overloaded() (the lblc rule), wlc's choice is used and added to the
// set (lastmod = now). Before that, if the set has more than one member and
// time_after(now, lastmod + lblcr_expiration) (2 minutes here),
// ip_vs_dest_set_max, the most loaded member with weight > 0 (first on
// ties), is removed from the set (lastmod = now); the server set_min picked
// is still the answer. Expiry of whole entries is as for lblc.
func TestLBLCR(t *testing.T) {
	runTable(t, schedTable{
		sched:   "lblcr",
		servers: "c/2 b/1 a/4",
		opts:    "exp=2m",
		steps: []step{
			// No entry: wlc: c. The set of 10.0.0.1 is {c}.
			{"conn dst=10.0.0.1", "c", "c/2=1 b/1=0 a/4=0"},
			{"set dst=10.0.0.1", "c", "c/2=1 b/1=0 a/4=0"},
			// set_min c: 1, 2 <= 2.
			{"conn dst=10.0.0.1", "c", "c/2=2 b/1=0 a/4=0"},
			{"conn dst=10.0.0.1", "c", "c/2=3 b/1=0 a/4=0"},
			// c: 3 > 2 and a has 0 * 2 < 4: is_overloaded. wlc: c 384, b 0, a 0:
			// b, added.
			{"conn dst=10.0.0.1", "b", "c/2=3 b/1=1 a/4=0"},
			{"set dst=10.0.0.1", "b,c", "c/2=3 b/1=1 a/4=0"},
			// set_min: b 256/1 < c 768/2 = 384: b (1 <= 1).
			{"conn dst=10.0.0.1", "b", "c/2=3 b/1=2 a/4=0"},
			// set_min: c 384 < b 512: c, is_overloaded (a idle). wlc: c 384,
			// b 512, a 0: a, added.
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=1"},
			{"set dst=10.0.0.1", "a,b,c", "c/2=3 b/1=2 a/4=1"},
			// set_min: a.
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=2"},
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=3"},
			{"advance 1m", "", "c/2=3 b/1=2 a/4=3"},
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=4"},
			{"set dst=10.0.0.1", "a,b,c", "c/2=3 b/1=2 a/4=4"},
			// Exactly lblcr_expiration since a was added:
			{"advance 1m", "", "c/2=3 b/1=2 a/4=4"},
			// time_after is false: nothing shed.
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=5"},
			{"set dst=10.0.0.1", "a,b,c", "c/2=3 b/1=2 a/4=5"},
			// One second more:
			{"advance 1s", "", "c/2=3 b/1=2 a/4=5"},
			// set_min a (5*256/4 = 320) is the answer; the most loaded member,
			// b 512/1 (c 384, a 320), is shed.
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=6"},
			{"set dst=10.0.0.1", "a,c", "c/2=3 b/1=2 a/4=6"},
			// Three minutes since b was shed:
			{"advance 3m", "", "c/2=3 b/1=2 a/4=6"},
			// set_min: a 6*256/4 = 384 = c 768/2: a. set_max: a = c: a, the first,
			// too: the kernel sheds the very server it returns.
			{"conn dst=10.0.0.1", "a", "c/2=3 b/1=2 a/4=7"},
			{"set dst=10.0.0.1", "c", "c/2=3 b/1=2 a/4=7"},
			{"advance 3m", "", "c/2=3 b/1=2 a/4=7"},
			// A single member is never shed. c: 3 > 2 but nobody is below half.
			{"conn dst=10.0.0.1", "c", "c/2=4 b/1=2 a/4=7"},
			{"set dst=10.0.0.1", "c", "c/2=4 b/1=2 a/4=7"},
			// No entry: wlc: c 1024/2 = 512, b 512/1, a 1792/4 = 448: a.
			{"conn dst=10.0.0.2", "a", "c/2=4 b/1=2 a/4=8"},
			{"add e/8", "", "e/8=0 c/2=4 b/1=2 a/4=8"},
			// a: 8 > 4, and e is idle: is_overloaded. wlc: e. {e, a}.
			{"conn dst=10.0.0.2", "e", "e/8=1 c/2=4 b/1=2 a/4=8"},
			{"set dst=10.0.0.2", "e,a", "e/8=1 c/2=4 b/1=2 a/4=8"},
			// set_min: e 256/8.
			{"conn dst=10.0.0.2", "e", "e/8=2 c/2=4 b/1=2 a/4=8"},
			// e 512/1 = a 2048/4.
			{"edit e/1", "", "e/1=2 c/2=4 b/1=2 a/4=8"},
			{"advance 3m", "", "e/1=2 c/2=4 b/1=2 a/4=8"},
			// set_min e (tie, first); set_max e (tie, first): e returned and shed.
			{"conn dst=10.0.0.2", "e", "e/1=3 c/2=4 b/1=2 a/4=8"},
			{"set dst=10.0.0.2", "a", "e/1=3 c/2=4 b/1=2 a/4=8"},
			{"over a", "", "e/1=3 c/2=4 b/1=2 a/4=8!"},
			// c: 4 > 2 but nobody is below half its weight: c.
			{"conn dst=10.0.0.1", "c", "e/1=3 c/2=5 b/1=2 a/4=8!"},
			{"set dst=10.0.0.1", "c", "e/1=3 c/2=5 b/1=2 a/4=8!"},
			{"del c", "", "e/1=3 b/1=2 a/4=8!"},
			// {a}: a is overloaded, set_min has none. wlc: e 768/1, b 512/1: b, added.
			{"conn dst=10.0.0.2", "b", "e/1=3 b/1=3 a/4=8!"},
			{"set dst=10.0.0.2", "b,a", "e/1=3 b/1=3 a/4=8!"},
			// set_min skips the overloaded a though it is lighter (2048/4 = 512 < 768).
			{"conn dst=10.0.0.2", "b", "e/1=3 b/1=4 a/4=8!"},
			// {c}: c was deleted (not available): set_min has none. wlc: e 768 <
			// b 1024: e, added.
			{"conn dst=10.0.0.1", "e", "e/1=4 b/1=4 a/4=8!"},
			{"set dst=10.0.0.1", "e,c", "e/1=4 b/1=4 a/4=8!"},
			// Weight 0 (the new u_threshold 0 also clears a's overload flag).
			{"edit a/0", "", "e/1=4 b/1=4 a/0=8"},
			{"advance 3m", "", "e/1=4 b/1=4 a/0=8"},
			// set_min: b (a has weight 0). Shed: set_max skips a (weight 0) even
			// though it is more loaded: b is shed, {a} stays.
			{"conn dst=10.0.0.2", "b", "e/1=4 b/1=5 a/0=8"},
			{"set dst=10.0.0.2", "a", "e/1=4 b/1=5 a/0=8"},
			{"edit e/0", "", "e/0=4 b/1=5 a/0=8"},
			{"over b", "", "e/0=4 b/1=5! a/0=8"},
			// {e, c}: e weight 0, c deleted; wlc finds nothing: no destination.
			{"conn dst=10.0.0.1", "-", "e/0=4 b/1=5! a/0=8"},
			// No entry and nothing usable: no destination, and no entry is made.
			{"conn dst=10.0.0.3", "-", "e/0=4 b/1=5! a/0=8"},
			{"entries", "2", "e/0=4 b/1=5! a/0=8"},
			{"edit a/4", "", "e/0=4 b/1=5! a/4=8"},
			// Timer runs 1-29.
			{"collect x29", "", "e/0=4 b/1=5! a/4=8"},
			// {a}: a 8 > 4, but nobody is below half its weight: a.
			{"conn dst=10.0.0.2", "a", "e/0=4 b/1=5! a/4=9"},
			{"entries", "2", "e/0=4 b/1=5! a/4=9"},
			// Run 30: the full check drops 10.0.0.1 (unused for 30 minutes).
			{"collect", "", "e/0=4 b/1=5! a/4=9"},
			{"entries", "1", "e/0=4 b/1=5! a/4=9"},
			{"set dst=10.0.0.1", "-", "e/0=4 b/1=5! a/4=9"},
			{"set dst=10.0.0.2", "a", "e/0=4 b/1=5! a/4=9"},
		},
	})
}

// ip_vs_lblc_check_expire with more than max_size (16 * 1024) entries:
// goal = (entries - max_size) * 4 / 3, here (16390 - 16384) * 4 / 3 = 8,
// and the hash buckets are swept from rover + 1 on; each bucket is swept
// whole (every entry unused for ENTRY_TIMEOUT, 6 minutes, goes) and the
// sweep stops after the bucket that brings goal to 0 or below. The
// addresses 10.200.0.0 + i fall (hash_32(addr, 10), as in recent kernels;
// older ones hashed lblc differently) so that bucket 1 holds 17 of them:
// the kernel drops 17 entries, not 8. This run does not count towards the
// full check (counter is not incremented).
func TestLBLCCollectOverfull(t *testing.T) {
	runTable(t, schedTable{
		sched:   "lblc",
		servers: "a/1",
		steps: []step{
			// 16390 new addresses, one entry each.
			{"fill 16390", "", "a/1=0"},
			{"entries", "16390", "a/1=0"},
			{"advance 7m", "", "a/1=0"},
			// Over max_size: the partial sweep of bucket 1.
			{"collect", "", "a/1=0"},
			{"entries", "16373", "a/1=0"},
			// At most max_size now: counter++ only.
			{"collect", "", "a/1=0"},
			{"entries", "16373", "a/1=0"},
		},
	})
}

// ip_vs_lblcr_check_expire: the same over-full sweep as lblc's (lblcr
// hashes with hash_32(addr, 10) too).
func TestLBLCRCollectOverfull(t *testing.T) {
	runTable(t, schedTable{
		sched:   "lblcr",
		servers: "a/1",
		steps: []step{
			{"fill 16390", "", "a/1=0"},
			{"entries", "16390", "a/1=0"},
			{"advance 7m", "", "a/1=0"},
			{"collect", "", "a/1=0"},
			{"entries", "16373", "a/1=0"},
			{"collect", "", "a/1=0"},
			{"entries", "16373", "a/1=0"},
		},
	})
}

// ip_vs_twos_schedule keeps weights, overheads and their products in int
// (32 bits; the kernel is built with -fno-strict-overflow, so they wrap):
// "if (choice2 && (weight2 * overhead1) > (weight1 * overhead2))". With
// weight 1000 and 9000 active connections (overhead 2304000) the product
// 2304000000 wraps to -1990967296: the comparison fails and the kernel keeps
// the loaded choice1.
func TestTWOSIntOverflow(t *testing.T) {
	runTable(t, schedTable{
		sched:   "twos",
		servers: "c/1000 b/1000",
		steps: []step{
			{"load c 8000", "", "c/1000=8000 b/1000=0"},
			{"load b 1", "", "c/1000=8000 b/1000=1"},
			// total_weight = 2001. r1 = 0: c; r2 = 2000: b (2000-1000-1000 = 0).
			// 1000 * 2048000 = 2048000000 fits in an int: > 1000 * 256: b.
			{"conn rand=0,2000", "b", "c/1000=8000 b/1000=2"},
			{"load c 9000", "", "c/1000=9000 b/1000=2"},
			{"load b 1", "", "c/1000=9000 b/1000=1"},
			// 1000 * 2304000 wraps negative: not > 1000 * 256: c stays.
			{"conn rand=0,2000", "c", "c/1000=9001 b/1000=1"},
		},
	})
}

// fuzzBytes hands out the fuzz input a byte at a time, then zeros.
type fuzzBytes struct {
	b []byte
	i int
}

func (f *fuzzBytes) next() byte {
	if f.i >= len(f.b) {
		return 0
	}
	f.i++
	return f.b[f.i-1]
}

var fuzzWeights = [...]int32{0, 1, 2, 3, 5, 8, 100, 0}

// FuzzSchedulers builds random destination lists (1..20 servers, weights
// including 0, random overload flags and connection counts), then replays a
// random script of new connections and list changes against every
// scheduler, checking the kernel's guarantees:
//
//   - no scheduler ever picks a server with weight 0 or the overload flag:
//     every kernel scheduler skips IP_VS_DEST_F_OVERLOAD and weight <= 0
//     (wrr through weight >= cw >= 1; fo through weight > hw >= 0; later
//     weight-0 servers of the wlc-style walks lose "loh * 0 > doh * w").
//     The one exception is lblc's cache: ip_vs_lblc_schedule returns the
//     cached en->dest when it is IP_VS_DEST_F_AVAILABLE, has weight > 0 and
//     is not is_overloaded() (active > weight while some server has
//     active*2 < weight); it does not look at IP_VS_DEST_F_OVERLOAD. So an
//     overloaded lblc pick must be the server cached for that address.
//     lblcr's ip_vs_dest_set_min skips overloaded members, so lblcr has no
//     such exception.
//   - nil only when the kernel gives nil: for rr, wrr, lc, wlc, sed, nq, fo,
//     twos, lblc and lblcr exactly when no server has weight > 0 and no
//     overload flag (lblc may still return its cached server then); for
//     ovf when none of those also has active <= weight; dh, sh and mh
//     (whose hashed bucket may hold an unusable server) at least then.
//   - lc, wlc, sed, nq, fo and ovf pick the first server, in list order,
//     with the best value of their kernel cost (the walks only replace the
//     current pick on a strictly better value).
func FuzzSchedulers(f *testing.F) {
	f.Add([]byte{3, 1, 0, 2, 3, 2, 1, 0, 0, 5, 4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2})
	f.Add([]byte{19, 0, 0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 8, 8, 8, 8, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 9, 5, 0, 7, 3, 8, 0, 0, 1, 0, 2})
	f.Add([]byte{7, 6, 0, 5, 0, 6, 1, 1, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3, 2, 1, 0, 9, 9, 9, 8, 8, 7, 7,
		6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 255, 128, 64, 32, 16})
	f.Add([]byte{12, 2, 4, 1, 3, 5, 2, 0, 2, 1, 5, 1, 4, 3, 0, 2, 5, 0, 4, 0, 1, 1, 1, 1, 1, 1, 1, 1,
		6, 0, 6, 1, 7, 2, 8, 3, 9, 4, 0, 5, 1, 6, 2, 7, 3, 8, 4, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range model.Schedulers {
			fuzzOne(t, name, data)
		}
	})
}

func fuzzOne(t *testing.T, name string, data []byte) {
	in := &fuzzBytes{b: data}
	newServer := func(id int) *model.Server {
		s := model.NewServer(model.Dest{
			Addr:   netip.AddrFrom4([4]byte{192, 0, 2, byte(id)}),
			Port:   80,
			Weight: fuzzWeights[in.next()%8],
		})
		s.Overloaded = in.next()%4 == 0
		s.ActiveConns = int(in.next() % 6)
		s.InactConns = int(in.next() % 6)
		if in.next()%5 == 0 {
			s.UThreshold = uint32(1 + in.next()%8)
		}
		return s
	}
	svc := &Service{Flags: model.ServiceFlags(in.next()%4) * model.FlagSched1}
	n := 1 + int(in.next()%20)
	ids := 0
	for range n {
		ids++
		svc.Servers = append(svc.Servers, newServer(ids))
	}
	seed := uint32(len(data))*2654435761 + 1
	o := Options{
		MHTableIndex:    8,
		LBLCExpiration:  2 * time.Minute,
		LBLCRExpiration: 2 * time.Minute,
		Rand: func() uint32 { // xorshift32
			seed ^= seed << 13
			seed ^= seed >> 17
			seed ^= seed << 5
			return seed
		},
	}
	sch, err := New(name, svc, o)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cached := map[netip.Addr]*model.Server{} // lblc: last server given per address
	pickIdx := func(b byte) int { return int(b) % len(svc.Servers) }

	for step := 0; step < 40 && in.i < len(in.b); step++ {
		op := in.next() % 10
		switch {
		case op <= 4:
			dst := netip.AddrFrom4([4]byte{10, 0, 0, in.next() % 4})
			p := Packet{
				Src: netip.AddrFrom4([4]byte{198, 51, 100, in.next() % 8}), SrcPort: uint16(in.next()),
				Dst: dst, DstPort: 80, Protocol: model.ProtoTCP,
			}
			before := fmt.Sprint(fuzzState(svc))
			r := sch.Schedule(svc, p, now)
			where := fmt.Sprintf("%s step %d, list %s: picked %s", name, step, before, fuzzName(svc, r))
			checkPick(t, name, svc, r, cached[dst], where)
			if r != nil {
				cached[dst] = r
				r.Bind(false, in.next()%3 == 0)
			}
		case op == 5 && len(svc.Servers) > 0:
			s := svc.Servers[pickIdx(in.next())]
			s.Overloaded = !s.Overloaded
		case op == 6 && len(svc.Servers) > 0:
			s := svc.Servers[pickIdx(in.next())]
			d := s.Dest
			d.Weight = fuzzWeights[in.next()%8]
			s.Update(d, false)
			sch.Update(svc, Change{Kind: Edited, Server: s})
		case op == 7 && len(svc.Servers) < 20:
			ids++
			s := newServer(ids)
			svc.Servers = append([]*model.Server{s}, svc.Servers...)
			sch.Update(svc, Change{Kind: Added, Server: s})
		case op == 8 && len(svc.Servers) > 0:
			i := pickIdx(in.next())
			s := svc.Servers[i]
			svc.Servers = append(svc.Servers[:i:i], svc.Servers[i+1:]...)
			s.Available = false
			sch.Update(svc, Change{Kind: Removed, Server: s, Index: i})
		case op == 9:
			now = now.Add(CollectInterval + time.Second)
			if c, ok := sch.(Collector); ok {
				c.Collect(now)
			}
			if len(svc.Servers) > 0 {
				if s := svc.Servers[pickIdx(in.next())]; s.ActiveConns > 0 {
					s.Unbind(false, false)
				}
			}
		}
	}
}

func fuzzState(svc *Service) []string {
	var out []string
	for i, s := range svc.Servers {
		st := fmt.Sprintf("#%d w%d a%d i%d", i, s.Weight, s.ActiveConns, s.InactConns)
		if s.Overloaded {
			st += "!"
		}
		out = append(out, st)
	}
	return out
}

func fuzzName(svc *Service, r *model.Server) string {
	if r == nil {
		return "nil"
	}
	return fmt.Sprintf("#%d", indexOf(svc.Servers, r))
}

// kernelLBLCOverloaded is is_overloaded() of ip_vs_lblc.c.
func kernelLBLCOverloaded(d *model.Server, list []*model.Server) bool {
	if d.ActiveConns <= int(d.Weight) {
		return false
	}
	for _, o := range list {
		if o.ActiveConns*2 < int(o.Weight) {
			return true
		}
	}
	return false
}

// firstBest returns the first server of list, among those ok accepts, that
// no later one beats (better(a, b): a is strictly better than b).
func firstBest(list []*model.Server, ok func(*model.Server) bool, better func(a, b *model.Server) bool) *model.Server {
	var best *model.Server
	for _, s := range list {
		if ok(s) && (best == nil || better(s, best)) {
			best = s
		}
	}
	return best
}

func checkPick(t *testing.T, name string, svc *Service, r, cachedForDst *model.Server, where string) {
	t.Helper()
	list := svc.Servers
	usable := func(s *model.Server) bool { return s.Weight > 0 && !s.Overloaded }
	anyUsable := false
	for _, s := range list {
		anyUsable = anyUsable || usable(s)
	}
	if r != nil {
		if indexOf(list, r) < 0 || !r.Available {
			t.Fatalf("%s: not a server of the list", where)
		}
		if r.Weight <= 0 {
			t.Fatalf("%s: weight %d", where, r.Weight)
		}
		if r.Overloaded {
			// Only lblc's cache hit skips the overload flag.
			if name != "lblc" || r != cachedForDst || kernelLBLCOverloaded(r, list) {
				t.Fatalf("%s: overloaded", where)
			}
		}
	}
	if !anyUsable && r != nil && name != "lblc" {
		t.Fatalf("%s: no server is usable", where)
	}
	// ratio(a) < ratio(b) for cost/weight, both weights > 0.
	lower := func(cost func(*model.Server) int64) func(a, b *model.Server) bool {
		return func(a, b *model.Server) bool { return cost(a)*int64(b.Weight) < cost(b)*int64(a.Weight) }
	}
	overhead := func(s *model.Server) int64 { return int64(s.ActiveConns)*256 + int64(s.InactConns) }
	sed := func(s *model.Server) int64 { return int64(s.ActiveConns) + 1 }
	var want *model.Server
	switch name {
	case "rr", "wrr", "twos", "lblc", "lblcr":
		if anyUsable && r == nil {
			t.Fatalf("%s: nil although a server is usable", where)
		}
		return
	case "lc":
		want = firstBest(list, usable, func(a, b *model.Server) bool { return overhead(a) < overhead(b) })
	case "wlc":
		want = firstBest(list, usable, lower(overhead))
	case "sed":
		want = firstBest(list, usable, lower(sed))
	case "nq":
		want = firstBest(list, func(s *model.Server) bool { return usable(s) && s.ActiveConns == 0 },
			func(a, b *model.Server) bool { return false })
		if want == nil {
			want = firstBest(list, usable, lower(sed))
		}
	case "fo":
		want = firstBest(list, usable, func(a, b *model.Server) bool { return a.Weight > b.Weight })
	case "ovf":
		want = firstBest(list, func(s *model.Server) bool { return usable(s) && s.ActiveConns <= int(s.Weight) },
			func(a, b *model.Server) bool { return a.Weight > b.Weight })
	default: // dh, sh, mh: the hashed server or nothing
		return
	}
	if r != want {
		t.Fatalf("%s, kernel picks %s", where, fuzzName(svc, want))
	}
}
