package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"gvs/model"
)

// Options are what the manager is given besides the config.
type Options struct {
	// ServiceUp reports whether a gvs virtual service has its quorum
	// (track_service); known false (or a nil hook) counts as lost.
	ServiceUp func(model.ServiceKey) (quorumUp, known bool)
	// TrackInterval is how often ServiceUp is asked (default 1 s).
	TrackInterval time.Duration
	// LinkInterval is how often tracked links are looked at (default
	// 200 ms).
	LinkInterval time.Duration
}

// Status is an instance as GET /v1/vrrp shows it.
type Status struct {
	Instance  string `json:"instance"`
	Interface string `json:"interface"`
	VRID      uint8  `json:"virtual_router_id"`
	Version   int    `json:"version"`
	State     State  `json:"state"`
	// Priority is the effective priority (tracking weights applied);
	// BasePriority the configured one.
	Priority     uint8      `json:"priority"`
	BasePriority uint8      `json:"base_priority"`
	Master       netip.Addr `json:"master,omitzero"` // the master's address as last seen (ours as master)
	// MasterPriority is the priority of the master's last advert.
	MasterPriority uint8          `json:"master_priority,omitempty"`
	VIPs           []netip.Prefix `json:"vips"`
	SyncGroup      string         `json:"sync_group,omitempty"`
	LastTransition time.Time      `json:"last_transition,omitzero"`
	// Faults say why the instance is in FAULT (or waiting to start).
	Faults []string `json:"faults,omitempty"`
}

// Manager runs the VRRP instances of a Config.
type Manager struct {
	log  *slog.Logger
	opts Options

	mu      sync.Mutex
	cfg     *Config
	insts   map[string]*instance
	order   []string
	groups  map[string]*group
	scripts map[string]*scriptState
	subs    map[string][]func(State)
	// links and services are the tracked interfaces' and services'
	// states as last polled.
	links    map[string]bool
	services map[model.ServiceKey]bool
	post     []func() // run by the loop after unlocking
	closed   bool

	events chan func()
	wake   chan struct{}
	quit   chan struct{}
	done   chan struct{}
	notify sync.WaitGroup
	bg     sync.WaitGroup // readers, scripts, GARP bursts
}

// NewManager starts a manager with no instances; Update gives it some.
func NewManager(log *slog.Logger, opts Options) *Manager {
	if opts.TrackInterval <= 0 {
		opts.TrackInterval = time.Second
	}
	if opts.LinkInterval <= 0 {
		opts.LinkInterval = 200 * time.Millisecond
	}
	m := &Manager{
		log: log, opts: opts, cfg: &Config{},
		insts: map[string]*instance{}, groups: map[string]*group{}, scripts: map[string]*scriptState{},
		subs:   map[string][]func(State){},
		events: make(chan func(), 256), wake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	go m.run()
	return m
}

// instance is a running vrrp_instance.
type instance struct {
	mgr     *Manager
	cfg     Instance // defaults applied
	m       *machine
	c       conn
	self    netip.Addr
	group   *group
	auth    [authLen]byte
	started bool
	gone    bool
	faults  []string // own fault reasons
	pending []string // vrrp_scripts without a result yet
	openErr string
	sendErr string
	vipsUp  bool
}

type group struct {
	cfg     SyncGroup
	members []*instance
	state   State
	busy    bool // propagating a member's change
}

// scriptState is a running vrrp_script.
type scriptState struct {
	def       CheckScript
	known, up bool
	good, bad int
	stop      chan struct{}
}

// Update makes cfg the running instances: new ones start, removed ones
// stop as on shutdown, changed ones restart; an unchanged instance keeps
// its state. A nil cfg stops them all.
func (m *Manager) Update(cfg *Config) error {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("vrrp: manager closed")
	}
	now := time.Now()
	// Scripts: keep the unchanged ones and their state.
	oldScripts := m.scripts
	m.scripts = map[string]*scriptState{}
	for _, s := range cfg.Scripts {
		if o, ok := oldScripts[s.Name]; ok && reflect.DeepEqual(o.def, s) {
			m.scripts[s.Name] = o
			delete(oldScripts, s.Name)
			continue
		}
		m.scripts[s.Name] = m.startScript(s)
	}
	for _, o := range oldScripts {
		close(o.stop)
	}
	old := m.insts
	m.insts = map[string]*instance{}
	m.order = nil
	for _, raw := range cfg.Instances {
		in := cfg.withDefaults(raw)
		m.order = append(m.order, in.Name)
		if o, ok := old[in.Name]; ok && reflect.DeepEqual(o.cfg, in) {
			m.insts[in.Name] = o
			delete(old, in.Name)
			continue
		}
		if o, ok := old[in.Name]; ok {
			m.log.Info("vrrp: instance changed, restarting it", "instance", in.Name)
			o.shutdown(now)
			delete(old, in.Name)
		}
		m.insts[in.Name] = m.newInstance(in)
	}
	for _, o := range old {
		m.log.Info("vrrp: instance removed", "instance", o.cfg.Name)
		o.shutdown(now)
	}
	m.groups = map[string]*group{}
	for _, in := range m.insts {
		in.group = nil
	}
	for _, g := range cfg.SyncGroups {
		gr := &group{cfg: g, state: StateInit}
		for _, n := range g.Instances {
			in := m.insts[n]
			in.group = gr
			gr.members = append(gr.members, in)
		}
		m.groups[g.Name] = gr
	}
	m.cfg = cfg
	m.pollLinks()
	m.pollServices()
	m.recompute(now)
	m.unlock()
	m.kick()
	return nil
}

func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) newInstance(in Instance) *instance {
	inst := &instance{mgr: m, cfg: in}
	if in.AuthPass != "" {
		inst.auth = password(in.AuthPass)
	}
	// A previous run's addresses go, as keepalived does at start.
	for _, v := range slices.Concat(in.VIPs, in.Excluded) {
		_ = addrs{}.del(v, in.Interface)
	}
	inst.open()
	m.log.Info("vrrp: instance configured", "instance", in.Name, "interface", in.Interface,
		"vrid", in.VRID, "priority", in.Priority, "version", in.Version)
	return inst
}

// open finds the source address and opens the socket; failures are
// retried at each link poll (the interface may come later).
func (inst *instance) open() {
	in := inst.cfg
	six := in.family6()
	self := in.UnicastSrc
	if !self.IsValid() || six {
		a, err := primaryAddr(in.Interface, six)
		if err != nil {
			inst.setOpenErr(err)
			return
		}
		if !self.IsValid() {
			self = a
		}
	}
	ifi, err := net.InterfaceByName(in.Interface)
	if err != nil {
		inst.setOpenErr(err)
		return
	}
	c, err := openConn(ifi, self, len(in.UnicastPeers) == 0)
	if err != nil {
		inst.setOpenErr(err)
		return
	}
	inst.openErr = ""
	inst.self, inst.c = self, c
	inst.m = newMachine(in, self, inst)
	m := inst.mgr
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		for {
			p, err := c.read()
			if err != nil {
				return
			}
			select {
			case m.events <- func() { inst.handle(p) }:
			case <-m.quit:
				return
			}
		}
	}()
}

func (inst *instance) setOpenErr(err error) {
	if inst.openErr != err.Error() {
		inst.mgr.log.Error("vrrp: instance cannot run yet", "instance", inst.cfg.Name, "err", err)
	}
	inst.openErr = err.Error()
}

// shutdown stops the instance as keepalived does on exit.
func (inst *instance) shutdown(now time.Time) {
	inst.gone = true
	if inst.m != nil && inst.started {
		inst.m.stop(now)
	}
	if inst.c != nil {
		inst.c.close()
	}
}

// handle applies keepalived's checks to a received advert and gives it
// to the machine.
func (inst *instance) handle(p *packet) {
	if inst.gone || !inst.started || inst.m == nil {
		return
	}
	a, in := p.adv, inst.cfg
	if a.VRID != in.VRID || p.src == inst.self {
		return
	}
	log := inst.mgr.log
	if a.Version != in.Version {
		log.Debug("vrrp: advert of another version", "instance", in.Name, "from", p.src, "version", a.Version)
		return
	}
	if len(in.UnicastPeers) > 0 {
		if !slices.Contains(in.UnicastPeers, p.src) {
			return
		}
	} else if p.ttl != -1 && p.ttl != TTL {
		log.Warn("vrrp: advert with TTL/hop limit other than 255 ignored", "instance", in.Name, "from", p.src, "ttl", p.ttl)
		return
	}
	if in.Version == 2 {
		want := uint8(AuthNone)
		if in.AuthPass != "" {
			want = AuthPass
		}
		if a.AuthType != want || (want == AuthPass && a.AuthData != inst.auth) {
			log.Warn("vrrp: advert failed authentication", "instance", in.Name, "from", p.src)
			return
		}
		if a.Interval != in.AdvertInterval {
			log.Warn("vrrp: advert interval mismatch, ignored", "instance", in.Name, "from", p.src, "theirs", a.Interval, "ours", in.AdvertInterval)
			return
		}
	}
	inst.m.receive(time.Now(), a, p.src)
}

// The machineIO of a real instance.

func (inst *instance) advertise(prio uint8) {
	in := inst.cfg
	a := &Advert{Version: in.Version, VRID: in.VRID, Priority: prio, Interval: in.AdvertInterval}
	for _, v := range in.VIPs {
		a.Addrs = append(a.Addrs, v.Prefix.Addr())
	}
	if in.AuthPass != "" {
		a.AuthType, a.AuthData = AuthPass, inst.auth
	}
	dsts := in.UnicastPeers
	if len(dsts) == 0 {
		dsts = []netip.Addr{Group4}
		if in.family6() {
			dsts = []netip.Addr{Group6}
		}
	}
	for _, d := range dsts {
		b, err := a.Marshal(inst.self, d)
		if err == nil {
			err = inst.c.send(b, d)
		}
		if err != nil {
			if inst.sendErr != err.Error() {
				inst.mgr.log.Warn("vrrp: cannot send advert", "instance", in.Name, "to", d, "err", err)
			}
			inst.sendErr = err.Error()
			continue
		}
		inst.sendErr = ""
	}
}

func (inst *instance) setVIPs(up bool) {
	in := inst.cfg
	for _, v := range slices.Concat(in.VIPs, in.Excluded) {
		var err error
		if up {
			err = addrs{}.add(v, in.Interface)
		} else {
			err = addrs{}.del(v, in.Interface)
		}
		if err != nil {
			inst.mgr.log.Error("vrrp: virtual address", "instance", in.Name, "address", v.Prefix, "add", up, "err", err)
		}
	}
	inst.vipsUp = up
}

func (inst *instance) garp(repeat int) {
	in := inst.cfg
	vips := slices.Concat(in.VIPs, in.Excluded)
	g := *in.GARP
	m := inst.mgr
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		for i := range repeat {
			for _, v := range vips {
				if err := sendGARP(v, in.Interface); err != nil {
					m.log.Warn("vrrp: gratuitous ARP/NA not sent", "instance", in.Name, "address", v.Prefix, "err", err)
				}
				gap := g.Interval
				if v.Prefix.Addr().Is6() {
					gap = g.NAInterval
				}
				if gap > 0 && i < repeat {
					select {
					case <-time.After(gap):
					case <-m.quit:
						return
					}
				}
			}
		}
	}()
}

func (inst *instance) discarded(src netip.Addr, prio uint8) {
	inst.mgr.log.Info("vrrp: lower priority advert discarded", "instance", inst.cfg.Name, "from", src, "priority", prio, "ours", inst.m.prio)
}

func (inst *instance) changed(from, to State) {
	m := inst.mgr
	in := inst.cfg
	m.log.Info("vrrp: "+to.String(), "instance", in.Name, "from", from.String(), "priority", inst.m.prio)
	m.runNotify(in.Notify, "INSTANCE", in.Name, to, int(inst.m.prio))
	for _, f := range m.subs[in.Name] {
		m.post = append(m.post, func() { f(to) })
	}
	if g := inst.group; g != nil && !g.busy {
		g.busy = true
		now := time.Now()
		for _, o := range g.members {
			if o == inst || o.m == nil || !o.started {
				continue
			}
			switch {
			case to == StateMaster:
				o.m.forceMaster(now)
			case to == StateBackup && from == StateMaster:
				o.m.forceBackup(now)
			}
		}
		g.busy = false
		m.groupState(g)
	}
}

// groupState follows a sync group's state: FAULT when a member is,
// MASTER or BACKUP when all members are.
func (m *Manager) groupState(g *group) {
	st := g.state
	all := func(s State) bool {
		return !slices.ContainsFunc(g.members, func(i *instance) bool { return i.m == nil || i.m.state != s })
	}
	switch {
	case slices.ContainsFunc(g.members, func(i *instance) bool { return i.m != nil && i.m.state == StateFault }):
		st = StateFault
	case all(StateMaster):
		st = StateMaster
	case all(StateBackup):
		st = StateBackup
	case all(StateStop):
		st = StateStop
	}
	if st != g.state {
		g.state = st
		m.log.Info("vrrp: sync group "+st.String(), "group", g.cfg.Name)
		m.runNotify(g.cfg.Notify, "GROUP", g.cfg.Name, st, 0)
	}
}

// runNotify runs the state's script and the notify script with
// keepalived's arguments: "GROUP"|"INSTANCE" name state priority.
func (m *Manager) runNotify(n Notify, kind, name string, st State, prio int) {
	var s *Script
	switch st {
	case StateMaster:
		s = n.Master
	case StateBackup:
		s = n.Backup
	case StateFault:
		s = n.Fault
	case StateStop:
		s = n.Stop
	}
	m.runScript(s)
	if n.Notify != nil {
		m.runScript(n.Notify, kind, name, st.String(), strconv.Itoa(prio))
	}
}

// recompute applies tracking to every instance: its own faults, its
// sync group's, its effective priority; it starts the instances whose
// scripts have all reported.
func (m *Manager) recompute(now time.Time) {
	for _, name := range m.order {
		inst := m.insts[name]
		inst.faults, inst.pending = nil, nil
		if inst.openErr != "" {
			inst.faults = append(inst.faults, inst.openErr)
		}
		prio, w := int(inst.cfg.Priority), 0
		owner := inst.cfg.Priority == OwnerPriority
		track := func(what string, up bool, weight int, reverse bool) {
			if reverse {
				up = !up
			}
			switch {
			case weight == 0 || owner:
				if !up {
					inst.faults = append(inst.faults, what+" down")
				}
			case weight > 0 && up, weight < 0 && !up:
				w += weight
			}
		}
		track("interface "+inst.cfg.Interface, m.links[inst.cfg.Interface], 0, false)
		for _, t := range inst.cfg.TrackInterfaces {
			track("interface "+t.Name, m.links[t.Name], t.Weight, t.Reverse)
		}
		for _, t := range inst.cfg.TrackScripts {
			s := m.scripts[t.Name]
			if s == nil {
				continue
			}
			if !s.known {
				inst.pending = append(inst.pending, "script "+t.Name+" has not run yet")
				continue
			}
			weight := s.def.Weight
			if t.Weight != nil {
				weight = *t.Weight
			}
			track("script "+t.Name, s.up, weight, s.def.Reverse != t.Reverse)
		}
		for _, t := range inst.cfg.TrackServices {
			track("service "+t.Service.String(), m.services[t.Service], t.Weight, false)
		}
		if !owner {
			prio = min(max(prio+w, 1), 254)
		}
		if inst.m == nil {
			continue
		}
		inst.m.setPriority(now, uint8(prio))
	}
	for _, name := range m.order {
		inst := m.insts[name]
		if inst.m == nil {
			continue
		}
		fault := len(inst.faults) > 0
		if g := inst.group; g != nil {
			for _, o := range g.members {
				if len(o.faults) > 0 || o.m == nil {
					fault = true
				}
			}
		}
		if !inst.started {
			if len(inst.pending) > 0 {
				continue
			}
			if g := inst.group; g != nil && slices.ContainsFunc(g.members, func(o *instance) bool { return len(o.pending) > 0 }) {
				continue
			}
			inst.started = true
			inst.m.fault = fault
			inst.m.start(now)
			continue
		}
		inst.m.setFault(now, fault)
	}
}

// The tracked world, polled.

func (m *Manager) pollLinks() bool {
	if m.links == nil {
		m.links = map[string]bool{}
	}
	changed := false
	seen := map[string]bool{}
	for _, inst := range m.insts {
		if inst.m == nil && !inst.gone {
			inst.open()
			if inst.m != nil {
				changed = true
			}
		}
		names := []string{inst.cfg.Interface}
		for _, t := range inst.cfg.TrackInterfaces {
			names = append(names, t.Name)
		}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			up := linkUp(n)
			if old, ok := m.links[n]; !ok || old != up {
				if ok {
					m.log.Info("vrrp: tracked interface", "interface", n, "up", up)
				}
				m.links[n] = up
				changed = true
			}
		}
	}
	return changed
}

func (m *Manager) pollServices() bool {
	if m.services == nil {
		m.services = map[model.ServiceKey]bool{}
	}
	changed := false
	for _, inst := range m.insts {
		for _, t := range inst.cfg.TrackServices {
			up, known := false, false
			if m.opts.ServiceUp != nil {
				up, known = m.opts.ServiceUp(t.Service)
			}
			up = up && known
			if old, ok := m.services[t.Service]; !ok || old != up {
				if ok || !up {
					m.log.Info("vrrp: tracked service", "service", t.Service.String(), "quorum", up, "known", known)
				}
				m.services[t.Service] = up
				changed = true
			}
		}
	}
	return changed
}

// run is the manager's loop: every machine runs in it, under mu.
func (m *Manager) run() {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	links := time.NewTicker(m.opts.LinkInterval)
	svcs := time.NewTicker(m.opts.TrackInterval)
	defer links.Stop()
	defer svcs.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		next := now.Add(time.Hour)
		for _, name := range m.order {
			inst := m.insts[name]
			if inst.m == nil || !inst.started {
				continue
			}
			inst.m.tick(now)
			if t := inst.m.next(); !t.IsZero() && t.Before(next) {
				next = t
			}
		}
		m.unlock()
		timer.Reset(time.Until(next))
		select {
		case <-timer.C:
		case <-m.wake:
		case f := <-m.events:
			m.mu.Lock()
			f()
			m.unlock()
		case <-links.C:
			m.mu.Lock()
			if m.pollLinks() {
				m.recompute(time.Now())
			}
			m.unlock()
		case <-svcs.C:
			m.mu.Lock()
			if m.pollServices() {
				m.recompute(time.Now())
			}
			m.unlock()
		case <-m.quit:
			timer.Stop()
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// unlock releases mu and runs what was queued for after it
// (subscribers).
func (m *Manager) unlock() {
	post := m.post
	m.post = nil
	m.mu.Unlock()
	for _, f := range post {
		f()
	}
}

// Close resigns every instance as keepalived does on shutdown: a master
// sends a priority 0 advert (a backup takes over after its skew time)
// and removes its addresses; the STOP notify scripts run.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	now := time.Now()
	for _, name := range m.order {
		m.insts[name].shutdown(now)
	}
	for _, g := range m.groups {
		m.groupState(g)
	}
	for _, s := range m.scripts {
		close(s.stop)
	}
	m.scripts = map[string]*scriptState{}
	m.unlock()
	close(m.quit)
	<-m.done
	m.bg.Wait()
	waitTimeout(&m.notify, 15*time.Second)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-time.After(d):
	}
}

// Status reports every instance, in config order.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.order))
	for _, name := range m.order {
		inst := m.insts[name]
		in := inst.cfg
		s := Status{Instance: in.Name, Interface: in.Interface, VRID: in.VRID, Version: in.Version,
			State: StateInit, Priority: in.Priority, BasePriority: in.Priority,
			Faults: slices.Concat(inst.faults, inst.pending)}
		for _, v := range in.VIPs {
			s.VIPs = append(s.VIPs, v.Prefix)
		}
		if inst.group != nil {
			s.SyncGroup = inst.group.cfg.Name
		}
		if mc := inst.m; mc != nil {
			s.Priority, s.LastTransition = mc.prio, mc.lastChange
			if inst.started {
				s.State = mc.state
			}
			if mc.master.IsValid() && (mc.state == StateMaster || mc.state == StateBackup) {
				s.Master, s.MasterPriority = mc.master, mc.masterPrio
			}
		}
		out = append(out, s)
	}
	return out
}

// Subscribe calls f with the instance's state now (if it runs) and at
// each of its transitions, from the manager's loop and in order (f must
// not block long); lvs_sync_daemon's "IF INSTANCE" follows an instance
// so. The subscription outlives reloads; it ends with the manager.
func (m *Manager) Subscribe(instance string, f func(State)) {
	m.mu.Lock()
	m.subs[instance] = append(m.subs[instance], f)
	if inst, ok := m.insts[instance]; ok && inst.m != nil && inst.started {
		st := inst.m.state
		m.post = append(m.post, func() { f(st) })
	}
	m.unlock()
}

// String names an instance for errors.
func (inst *instance) String() string { return fmt.Sprintf("vrrp_instance %s", inst.cfg.Name) }
