package vrrp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// sim is a fake clock and a fake network joining machines: an advert
// reaches every other live node at once.
type sim struct {
	t     *testing.T
	start time.Time
	now   time.Time
	nodes []*node
	queue []func()
}

type node struct {
	name  string
	s     *sim
	m     *machine
	addr  netip.Addr
	dead  bool // killed: sends and receives nothing
	vips  bool
	garps []time.Duration // when bursts went out, since the start
	trans []string        // "STATE@offset"
	sent  []uint8         // priorities advertised
}

func newSim(t *testing.T) *sim {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &sim{t: t, start: t0, now: t0}
}

// add starts a node with in (defaults applied) at address addr.
func (s *sim) add(name, addr string, in Instance) *node {
	c := &Config{}
	in = c.withDefaults(in)
	n := &node{name: name, s: s, addr: netip.MustParseAddr(addr)}
	n.m = newMachine(in, n.addr, n)
	s.nodes = append(s.nodes, n)
	n.m.start(s.now)
	s.drain()
	return n
}

func (n *node) advertise(p uint8) {
	n.sent = append(n.sent, p)
	a := &Advert{Version: n.m.version, Priority: p, Interval: n.m.advInt}
	for _, o := range n.s.nodes {
		if o != n && !o.dead && o.m.state != StateStop {
			n.s.queue = append(n.s.queue, func() { o.m.receive(n.s.now, a, n.addr) })
		}
	}
}
func (n *node) setVIPs(up bool) { n.vips = up }
func (n *node) garp(int)        { n.garps = append(n.garps, n.s.now.Sub(n.s.start)) }
func (n *node) changed(_, to State) {
	n.trans = append(n.trans, fmt.Sprintf("%s@%v", to, n.s.now.Sub(n.s.start)))
}
func (n *node) discarded(netip.Addr, uint8) {}

func (s *sim) drain() {
	for len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		f()
	}
}

// run advances the clock by d, firing the timers in order.
func (s *sim) run(d time.Duration) {
	end := s.now.Add(d)
	for {
		s.drain()
		next := end
		for _, n := range s.nodes {
			if n.dead {
				continue
			}
			if t := n.m.next(); !t.IsZero() && t.Before(next) {
				next = t
			}
		}
		s.now = next
		for _, n := range s.nodes {
			if !n.dead {
				n.m.tick(s.now)
			}
		}
		s.drain()
		if !next.Before(end) {
			return
		}
	}
}

func (s *sim) elapsed() time.Duration { return s.now.Sub(s.start) }

// masterSince is when n last became master (since the start), or -1.
func (n *node) masterSince() time.Duration {
	if n.m.state != StateMaster {
		return -1
	}
	return n.m.lastChange.Sub(n.s.start)
}

func (n *node) kill() { n.dead = true }

func (n *node) stop() {
	n.m.stop(n.s.now)
	n.dead = true
	n.s.drain()
}

func inst(prio uint8, opts ...func(*Instance)) Instance {
	in := Instance{Name: "VI", Interface: "eth0", VRID: 51, Priority: prio,
		VIPs: []VIP{{Prefix: netip.MustParsePrefix("198.18.0.100/32")}}}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func v3(ms int) func(*Instance) {
	return func(in *Instance) { in.Version, in.AdvertInterval = 3, time.Duration(ms)*time.Millisecond }
}

func near(got, want time.Duration) bool {
	d := got - want
	return d > -time.Millisecond && d < time.Millisecond
}

func TestTimers(t *testing.T) {
	for _, tc := range []struct {
		in         Instance
		skew, down time.Duration
	}{
		// v2: (256-prio)/256 s, whatever the interval.
		{inst(100), 609375 * time.Microsecond, 3*time.Second + 609375*time.Microsecond},
		{inst(200, func(in *Instance) { in.AdvertInterval = 2 * time.Second }), 218750 * time.Microsecond, 6*time.Second + 218750*time.Microsecond},
		// v3: ((256-prio) * interval)/256, interval in centiseconds.
		{inst(100, v3(1000)), 609375 * time.Microsecond, 3*time.Second + 609375*time.Microsecond},
		{inst(100, v3(100)), 60937 * time.Microsecond, 300*time.Millisecond + 60937*time.Microsecond},
		{inst(255, v3(100)), 390 * time.Microsecond, 300*time.Millisecond + 390*time.Microsecond},
	} {
		c := &Config{}
		m := newMachine(c.withDefaults(tc.in), netip.Addr{}, nil)
		if m.skew() != tc.skew || m.masterDown() != tc.down {
			t.Errorf("prio %d v%d %v: skew %v down %v, want %v %v", tc.in.Priority, m.version, m.advInt, m.skew(), m.masterDown(), tc.skew, tc.down)
		}
	}
}

func TestElection(t *testing.T) {
	skew := func(p int) time.Duration { return time.Duration(256-p) * time.Second / 256 }
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *sim)
	}{
		{"higher priority wins the first election", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150))
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(10 * time.Second)
			if got := a.masterSince(); !near(got, 3*time.Second+skew(150)) {
				t.Fatalf("a master since %v (%v)", got, a.trans)
			}
			if b.m.state != StateBackup || !a.vips || b.vips {
				t.Fatalf("b %v, vips a %v b %v", b.trans, a.vips, b.vips)
			}
			if b.m.master != a.addr || b.m.masterPrio != 150 {
				t.Fatalf("b sees master %v/%d", b.m.master, b.m.masterPrio)
			}
		}},
		{"equal priority: the higher address wins", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(100, func(in *Instance) { in.InitMaster = true }))
			b := s.add("b", "198.18.0.2", inst(100, func(in *Instance) { in.InitMaster = true }))
			s.run(10 * time.Second)
			if a.m.state != StateBackup || b.m.state != StateMaster {
				t.Fatalf("a %v b %v", a.trans, b.trans)
			}
		}},
		{"state MASTER waits one interval", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(100, func(in *Instance) { in.InitMaster = true }))
			s.run(5 * time.Second)
			if got := a.masterSince(); !near(got, time.Second+skew(255)) {
				t.Fatalf("master since %v", got)
			}
		}},
		{"owner 255 is master at once and preempts", func(t *testing.T, s *sim) {
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(5 * time.Second)
			a := s.add("a", "198.18.0.1", inst(255))
			if a.masterSince() != 5*time.Second {
				t.Fatalf("owner: %v", a.trans)
			}
			s.run(time.Second)
			if b.m.state != StateBackup || b.vips {
				t.Fatalf("b %v", b.trans)
			}
		}},
		{"master killed: backup takes over after the master-down interval", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150))
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(10 * time.Second)
			s.run(500 * time.Millisecond) // half-way to the next advert
			lastAdv := a.m.advAt.Add(-time.Second).Sub(s.start)
			a.kill()
			s.run(10 * time.Second)
			if got := b.masterSince() - lastAdv; !near(got, 3*time.Second+skew(100)) {
				t.Fatalf("b took over %v after the last advert (%v)", got, b.trans)
			}
		}},
		{"priority 0: backup takes over after the skew time", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150))
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(10 * time.Second)
			stopAt := s.elapsed()
			a.stop()
			if a.sent[len(a.sent)-1] != 0 || a.vips {
				t.Fatalf("a's last advert %d, vips %v", a.sent[len(a.sent)-1], a.vips)
			}
			s.run(5 * time.Second)
			if got := b.masterSince() - stopAt; !near(got, skew(100)) {
				t.Fatalf("b took over %v after priority 0 (%v)", got, b.trans)
			}
		}},
		{"v3 priority 0 at 100 ms", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150, v3(100)))
			b := s.add("b", "198.18.0.2", inst(100, v3(100)))
			s.run(2 * time.Second)
			if b.m.state != StateBackup {
				t.Fatalf("b %v", b.trans)
			}
			stopAt := s.elapsed()
			a.stop()
			s.run(time.Second)
			if got := b.masterSince() - stopAt; !near(got, 60937*time.Microsecond) {
				t.Fatalf("b took over %v after priority 0", got)
			}
		}},
		{"preempt: a higher priority backup takes over", func(t *testing.T, s *sim) {
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(5 * time.Second)
			a := s.add("a", "198.18.0.1", inst(150))
			s.run(10 * time.Second)
			if got := a.masterSince(); !near(got, 5*time.Second+3*time.Second+skew(150)) {
				t.Fatalf("a master since %v (%v)", got, a.trans)
			}
			if b.m.state != StateBackup {
				t.Fatalf("b %v", b.trans)
			}
		}},
		{"nopreempt: a higher priority backup stays backup", func(t *testing.T, s *sim) {
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(5 * time.Second)
			a := s.add("a", "198.18.0.1", inst(150, func(in *Instance) { in.NoPreempt = true }))
			s.run(30 * time.Second)
			if a.m.state != StateBackup || b.m.state != StateMaster {
				t.Fatalf("a %v b %v", a.trans, b.trans)
			}
		}},
		{"preempt_delay: a higher priority backup waits", func(t *testing.T, s *sim) {
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(5 * time.Second)
			a := s.add("a", "198.18.0.1", inst(150, func(in *Instance) { in.PreemptDelay = 10 * time.Second }))
			s.run(12 * time.Second)
			if a.m.state != StateBackup {
				t.Fatalf("a took over within the delay: %v", a.trans)
			}
			s.run(10 * time.Second)
			// The first advert at +0..1 s starts the delay; after it the
			// first discarded advert lets the down timer run out.
			got := a.masterSince() - 5*time.Second
			if got < 10*time.Second || got > 10*time.Second+time.Second+3*time.Second+skew(150) {
				t.Fatalf("a took over %v after joining (%v)", got, a.trans)
			}
			if b.m.state != StateBackup {
				t.Fatalf("b %v", b.trans)
			}
		}},
		{"a fault resigns with priority 0 and comes back as backup", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150))
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(10 * time.Second)
			at := s.elapsed()
			a.m.setFault(s.now, true)
			s.drain()
			if a.m.state != StateFault || a.vips || a.sent[len(a.sent)-1] != 0 {
				t.Fatalf("a %v", a.trans)
			}
			s.run(5 * time.Second)
			if got := b.masterSince() - at; !near(got, skew(100)) {
				t.Fatalf("b took over %v after the fault", got)
			}
			a.m.setFault(s.now, false)
			s.run(10 * time.Second)
			if a.m.state != StateMaster || b.m.state != StateBackup {
				t.Fatalf("after the fault: a %v b %v", a.trans, b.trans)
			}
		}},
		{"a weight below the backup's priority hands over", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150))
			b := s.add("b", "198.18.0.2", inst(100))
			s.run(10 * time.Second)
			a.m.setPriority(s.now, 150-60) // track_script weight -60 failed
			s.run(10 * time.Second)
			if a.m.state != StateBackup || b.m.state != StateMaster {
				t.Fatalf("a %v b %v", a.trans, b.trans)
			}
			a.m.setPriority(s.now, 150)
			s.run(10 * time.Second)
			if a.m.state != StateMaster {
				t.Fatalf("a did not preempt back: %v", a.trans)
			}
		}},
		{"gratuitous ARP schedule", func(t *testing.T, s *sim) {
			a := s.add("a", "198.18.0.1", inst(150, func(in *Instance) {
				in.GARP = &GARP{MasterDelay: 5 * time.Second, MasterRepeat: 5, MasterRefresh: 60 * time.Second, RefreshRepeat: 1}
			}))
			s.run(130 * time.Second)
			m := 3*time.Second + skew(150)
			want := []time.Duration{m, m + 5*time.Second, m + 65*time.Second, m + 125*time.Second}
			if fmt.Sprint(a.garps) != fmt.Sprint(want) {
				t.Fatalf("bursts at %v, want %v", a.garps, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newSim(t)) })
	}
}
