package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"gvs/api"
	"gvs/check"
	"gvs/control"
	"gvs/model"
)

// Core is what the manager drives: the control core.
type Core interface {
	SetHealth(model.ServiceKey, control.ServiceHealth) error
	ClearHealth(keep map[model.ServiceKey]bool) error
	ConfiguredDests(model.ServiceKey) ([]model.Dest, bool)
	Health(model.ServiceKey) control.ServiceHealth
}

// Forwarder gives the marks with which via_vip checks of DR and TUN
// servers reach the server through the VIP (package hcfwd): a checker's
// socket marked with Add's mark, connecting to rip, is seen by the server
// as a packet to vip (tunnel: encapsulated to rip). Remove releases it.
type Forwarder interface {
	Add(vip, rip netip.AddrPort, tunnel bool) (mark uint32, err error)
	Remove(mark uint32)
}

// ErrViaVIP is the refusal of a via_vip checker that cannot be forwarded.
var ErrViaVIP = errors.New("via_vip needs a DR or TUN server and the xdp engine")

// Manager runs the checks of a Config and applies keepalived's ipwrapper
// semantics through the core.
type Manager struct {
	core Core
	log  *slog.Logger
	// newChecker and localAddr are replaced in tests.
	newChecker func(check.Spec, check.Target) (check.Checker, error)
	isLocal    func(netip.Addr) bool
	scripts    scriptRunner
	fwd        Forwarder // nil: via_vip is refused

	mu       sync.Mutex
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	services map[model.ServiceKey]*service
	order    []model.ServiceKey

	counters counters // Metrics
}

type service struct {
	cfg     Service
	quorum  bool // keepalived's quorum_state_up
	sorryOn bool // the sorry server is in service
	servers []*server
}

type server struct {
	cfg      Server
	alive    bool // ISALIVE: in service as far as the checks go
	failed   int  // checkers that are down (num_failed_checkers)
	checkers []*checker
}

// checker is one running checker and what it has found.
type checker struct {
	svc    *service
	srv    *server
	spec   check.Spec // defaults applied
	id     string     // identity across reloads
	c      check.Checker
	target check.Target
	cancel context.CancelFunc
	tunnel bool // via_vip: the server's method is TUN (else DR)

	up          bool // is_up
	hasRun      bool
	weight      *int64 // a dynamic checker's last answer
	retries     int    // failed checks of this round so far
	lastCheck   time.Time
	lastResult  string
	lastReason  string
	lastChange  time.Time
	consecutive int // failed checks in a row
}

// NewManager returns a manager that drives core; it checks nothing until
// Update gives it a config.
func NewManager(core Core, log *slog.Logger) *Manager {
	ctx, stop := context.WithCancel(context.Background())
	return &Manager{core: core, log: log, newChecker: check.New, isLocal: isLocalAddr,
		scripts: execScripts{log: log, wg: &sync.WaitGroup{}}, ctx: ctx, stop: stop, services: map[model.ServiceKey]*service{}}
}

// SetForwarder makes via_vip checks possible (gvsd: with the xdp engine).
// Call it before the first Update.
func (m *Manager) SetForwarder(f Forwarder) {
	m.mu.Lock()
	m.fwd = f
	m.mu.Unlock()
}

// Validate is cfg.Validate, and refuses via_vip checkers without a
// forwarder, so that gvsd refuses such a config before it changes
// anything.
func (m *Manager) Validate(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	fwd := m.fwd
	m.mu.Unlock()
	if cfg == nil || fwd != nil {
		return nil
	}
	for _, s := range cfg.Services {
		for _, srv := range s.Servers {
			for _, spec := range srv.Checks {
				if spec.ViaVIP {
					return fmt.Errorf("%s: real server %s: %s: %w (this gvsd runs no xdp engine)", s.Key, srv.Addr, spec.Kind, ErrViaVIP)
				}
			}
		}
	}
	return nil
}

// Prepare tells the core, before the rules that cfg checks are applied
// (restored at start, or converged to a reloaded file), which of their
// servers start down: those the manager does not check yet whose
// checkers include an alpha one. So they are never served before their
// first check, not even for the moment between the rules and Update.
func (m *Manager) Prepare(cfg *Config) error {
	if cfg == nil {
		return nil
	}
	for _, sc := range cfg.Services {
		m.mu.Lock()
		prev := m.services[sc.Key]
		m.mu.Unlock()
		var down []Server
		for _, rc := range sc.Servers {
			if prev != nil && slices.ContainsFunc(prev.servers, func(s *server) bool { return s.cfg.Addr == rc.Addr }) {
				continue
			}
			if slices.ContainsFunc(rc.Checks, func(s check.Spec) bool { return s.Alpha }) {
				down = append(down, rc)
			}
		}
		if len(down) == 0 {
			continue
		}
		h := m.core.Health(sc.Key)
		dests := map[netip.AddrPort]control.DestHealth{}
		for a, dh := range h.Dests {
			dests[a] = dh
		}
		for _, rc := range down {
			dests[rc.Addr] = control.DestHealth{Down: true, Inhibit: rc.Inhibit}
		}
		h.Dests = dests
		if err := m.core.SetHealth(sc.Key, h); err != nil {
			return err
		}
	}
	return nil
}

// Update makes cfg the checks that run. Checkers whose service, server
// and options are unchanged keep running with their state (a reload does
// not take servers down or bring them back); others stop or start.
// Services that are no longer checked are served as configured again.
func (m *Manager) Update(cfg *Config) error {
	if cfg == nil {
		cfg = &Config{}
	}
	m.mu.Lock()
	old := m.services
	m.services = map[model.ServiceKey]*service{}
	m.order = nil
	keep := map[model.ServiceKey]bool{}
	kept := map[*server]bool{}
	var stopped []*checker
	for _, sc := range cfg.Services {
		if _, dup := m.services[sc.Key]; dup {
			continue
		}
		svc := &service{cfg: sc, quorum: true}
		prev := old[sc.Key]
		if prev != nil {
			// A sorry server the new config drops is out: the live
			// servers come back (keepalived's clear_diff_s_srv).
			svc.quorum, svc.sorryOn = prev.quorum, prev.sorryOn && sc.Sorry != nil
		}
		for _, rc := range sc.Servers {
			srv := &server{cfg: rc, alive: true}
			var psrv *server
			if prev != nil {
				if i := slices.IndexFunc(prev.servers, func(s *server) bool { return s.cfg.Addr == rc.Addr }); i >= 0 {
					psrv = prev.servers[i]
					kept[psrv] = true
				}
			}
			for _, spec := range rc.Checks {
				spec = spec.Defaults()
				id := checkerID(spec)
				tunnel := false
				if spec.ViaVIP {
					// A change of method restarts the checker.
					tunnel = m.method(sc.Key, rc.Addr) == model.Tunnel
					id += fmt.Sprintf("|tunnel=%v", tunnel)
				}
				var pck *checker
				if psrv != nil {
					if j := slices.IndexFunc(psrv.checkers, func(c *checker) bool { return c != nil && c.id == id }); j >= 0 {
						pck = psrv.checkers[j]
						psrv.checkers[j] = nil
					}
				}
				if pck != nil && reflect.DeepEqual(pck.spec, spec) {
					pck.svc, pck.srv = svc, srv
					srv.checkers = append(srv.checkers, pck)
					continue
				}
				ck := &checker{svc: svc, srv: srv, spec: spec, id: id, up: !spec.Alpha, tunnel: tunnel,
					target: check.Target{Server: rc.Addr, VIP: netip.AddrPortFrom(sc.Key.Addr, sc.Key.Port)}}
				if pck != nil {
					// The same check with another schedule (delay_loop,
					// retry, alpha...): it keeps what it found and starts
					// its loop again.
					ck.up, ck.hasRun, ck.weight = pck.up, pck.hasRun, pck.weight
					ck.lastCheck, ck.lastResult, ck.lastReason, ck.lastChange, ck.consecutive =
						pck.lastCheck, pck.lastResult, pck.lastReason, pck.lastChange, pck.consecutive
					stopped = append(stopped, pck)
				}
				srv.checkers = append(srv.checkers, ck)
			}
			for _, ck := range srv.checkers {
				if !ck.up {
					srv.failed++
				}
			}
			// Kept checkers keep their state; new ones start up unless
			// alpha (keepalived's init_service_rs): the server is alive
			// when none of them is down.
			srv.alive = srv.failed == 0
			svc.servers = append(svc.servers, srv)
		}
		m.clampQuorum(svc)
		m.services[sc.Key] = svc
		m.order = append(m.order, sc.Key)
		keep[sc.Key] = true
	}
	for _, svc := range old {
		for _, srv := range svc.servers {
			if !kept[srv] && srv.alive {
				// Taken out by the reload: its down notifier runs, as
				// keepalived's does when it removes a live server.
				m.scripts.run(srv.cfg.NotifyDown)
			}
			for _, ck := range srv.checkers {
				if ck != nil {
					stopped = append(stopped, ck)
				}
			}
		}
	}
	for _, ck := range stopped {
		if ck.cancel != nil {
			ck.cancel()
		}
	}
	var errs []error
	for _, k := range m.order {
		svc := m.services[k]
		m.updateQuorum(svc, old[k] == nil, true)
		if err := m.apply(svc); err != nil {
			errs = append(errs, err)
		}
		for _, srv := range svc.servers {
			for _, ck := range srv.checkers {
				if ck.cancel == nil {
					if err := m.start(ck); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	m.mu.Unlock()
	if err := m.core.ClearHealth(keep); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("health checks: %w", errs[0])
	}
	return nil
}

// checkerID identifies a checker across reloads, as keepalived matches
// them (by kind and what they check, in any order): its options without
// the schedule (delay_loop, retry, delay_before_retry, warmup, alpha,
// log_all_failures), which a reload may change without losing what the
// checker found.
func checkerID(s check.Spec) string {
	s.Retry, s.DelayBeforeRetry, s.DelayLoop, s.Warmup, s.Alpha, s.LogAllFailures = nil, 0, 0, nil, false, false
	b, _ := json.Marshal(s)
	return string(b)
}

// clampQuorum applies keepalived's config check to svc: a quorum above
// the sum of its servers' configured weights could never be met, and a
// hysteresis of the quorum or more could never be regained once lost.
func (m *Manager) clampQuorum(svc *service) {
	dests, _ := m.core.ConfiguredDests(svc.cfg.Key)
	var total int64
	for _, srv := range svc.servers {
		if i := slices.IndexFunc(dests, func(d model.Dest) bool { return d.AddrPort() == srv.cfg.Addr }); i >= 0 {
			total += int64(dests[i].Weight)
		}
	}
	q := max(svc.cfg.Quorum, 1)
	if total > 0 && int64(q) > total {
		m.log.Warn("quorum above the servers' total weight: lowered to it", "service", svc.cfg.Key.String(), "quorum", q, "total_weight", total)
		q = uint32(total)
	}
	svc.cfg.Quorum = q
	if svc.cfg.Hysteresis >= q {
		m.log.Warn("hysteresis not below the quorum: lowered to quorum - 1", "service", svc.cfg.Key.String(), "hysteresis", svc.cfg.Hysteresis, "quorum", q)
		svc.cfg.Hysteresis = q - 1
	}
}

// noMethod: a server that is not configured.
const noMethod = model.Method(255)

// method is the configured forwarding method of server addr of service
// key; noMethod if it is not configured.
func (m *Manager) method(key model.ServiceKey, addr netip.AddrPort) model.Method {
	dests, _ := m.core.ConfiguredDests(key)
	if i := slices.IndexFunc(dests, func(d model.Dest) bool { return d.AddrPort() == addr }); i >= 0 {
		return dests[i].Method
	}
	return noMethod
}

// start starts ck's goroutine. m.mu is held.
func (m *Manager) start(ck *checker) error {
	spec := ck.spec
	var mark uint32
	if spec.ViaVIP {
		var err error
		if mark, err = m.viaVIP(ck); err != nil {
			return fmt.Errorf("%s: server %s: %s: %w", ck.svc.cfg.Key, ck.target.Server, spec.Kind, err)
		}
		spec.FWMark = mark
	}
	c, err := m.newChecker(spec, ck.target)
	if err != nil {
		if mark != 0 {
			m.fwd.Remove(mark)
		}
		return fmt.Errorf("%s: server %s: %w", ck.svc.cfg.Key, ck.target.Server, err)
	}
	ck.c = c
	ctx, cancel := context.WithCancel(m.ctx)
	ck.cancel = cancel
	m.wg.Add(1)
	fwd := m.fwd
	go func() {
		defer m.wg.Done()
		if mark != 0 {
			// Released once no check of this checker is in flight.
			defer fwd.Remove(mark)
		}
		m.run(ctx, ck)
	}()
	return nil
}

// viaVIP asks the forwarder for ck's mark. m.mu is held.
func (m *Manager) viaVIP(ck *checker) (uint32, error) {
	if m.fwd == nil {
		return 0, fmt.Errorf("%w (this gvsd runs no xdp engine)", ErrViaVIP)
	}
	if !ck.svc.cfg.Key.Addr.IsValid() {
		return 0, fmt.Errorf("%w (a fwmark service has no VIP)", ErrViaVIP)
	}
	switch meth := m.method(ck.svc.cfg.Key, ck.target.Server); meth {
	case model.Route, model.Tunnel:
		if (meth == model.Tunnel) != ck.tunnel {
			return 0, fmt.Errorf("%w (the server's method changed)", ErrViaVIP)
		}
	case noMethod:
		return 0, fmt.Errorf("%w (the server is not in the configured rules)", ErrViaVIP)
	default:
		return 0, fmt.Errorf("%w (the server's method is %v)", ErrViaVIP, meth)
	}
	return m.fwd.Add(ck.spec.VIPDest(ck.target), ck.spec.Dest(ck.target), ck.tunnel)
}

// run checks until ctx ends: a random warmup first (so thousands of
// checkers spread over the loop), then every delay_loop, or
// delay_before_retry after a failure that has retries left.
func (m *Manager) run(ctx context.Context, ck *checker) {
	warm := ck.spec.DelayLoop
	if ck.spec.Warmup != nil {
		warm = *ck.spec.Warmup
	}
	delay := time.Duration(0)
	if warm > 0 {
		delay = rand.N(warm)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var next time.Duration
		if m.suspended(ck) {
			next = ck.spec.DelayLoop
		} else {
			start := time.Now()
			res := ck.c.Check(ctx)
			if ctx.Err() != nil {
				return
			}
			m.counters.observe(string(ck.spec.Kind), time.Since(start))
			next = m.handle(ck, res)
		}
		t.Reset(next)
	}
}

// suspended says whether ha_suspend holds ck's checks: its service's VIP
// is not on this host.
func (m *Manager) suspended(ck *checker) bool {
	m.mu.Lock()
	on := ck.svc.cfg.HASuspend && ck.svc.cfg.Key.Addr.IsValid()
	m.mu.Unlock()
	return on && !m.isLocal(ck.svc.cfg.Key.Addr)
}

// handle takes one check's result (keepalived's checker epilogue and
// update_svr_checker_state) and returns the delay before the next check.
func (m *Manager) handle(ck *checker, res check.Result) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.services[ck.svc.cfg.Key] != ck.svc {
		return ck.spec.DelayLoop // replaced by a reload; about to stop
	}
	ck.lastCheck = time.Now()
	ck.lastReason = res.Reason
	if res.Up {
		ck.lastResult, ck.consecutive = "ok", 0
	} else {
		ck.lastResult = "failed"
		ck.consecutive++
	}
	retry := *ck.spec.Retry
	// Retries are for a server that was seen up: the first check of a
	// checker declares it as found (keepalived starts with its retries
	// used up).
	if !res.Up && ck.up && ck.hasRun && ck.retries < retry {
		ck.retries++
		if ck.spec.LogAllFailures {
			m.log.Info("check failed, retrying", m.attrs(ck, "reason", res.Reason, "retry", ck.retries, "of", retry)...)
		}
		return ck.spec.DelayBeforeRetry
	}
	retries := ck.retries
	ck.retries = 0
	next := jitter(ck.spec.DelayLoop)
	if !res.Up && !ck.up && ck.spec.LogAllFailures {
		m.log.Info("check failed", m.attrs(ck, "reason", res.Reason)...)
	}
	changed := false
	if res.Up && !weightEq(ck.weight, res.Weight) {
		ck.weight, changed = res.Weight, true
		if res.Weight != nil {
			m.log.Info("dynamic weight", m.attrs(ck, "weight", *res.Weight)...)
		}
	}
	if res.Up != ck.up {
		why := res.Reason
		if !res.Up && retries > 0 {
			why = fmt.Sprintf("%s (after %d retries)", why, retries)
		}
		m.transition(ck, res.Up, why)
		changed = true
	} else if !ck.hasRun && !res.Up {
		// An alpha checker's first failure confirms the server down:
		// keepalived runs its down notifier then.
		m.log.Info("check failed", m.attrs(ck, "reason", res.Reason)...)
		m.scripts.run(ck.srv.cfg.NotifyDown)
	}
	ck.hasRun = true
	if changed {
		m.updateQuorum(ck.svc, false, false)
		if err := m.apply(ck.svc); err != nil {
			m.log.Error("health verdict not applied", "err", err)
		}
	}
	return next
}

// transition records a checker going up or down, and its server's
// (keepalived: a server goes down with its first failing checker and
// comes back with the last one recovering).
func (m *Manager) transition(ck *checker, up bool, why string) {
	srv := ck.srv
	ck.up = up
	ck.lastChange = time.Now()
	if up {
		srv.failed--
	} else {
		srv.failed++
	}
	m.log.Info("check "+map[bool]string{true: "succeeded", false: "failed"}[up], m.attrs(ck, "reason", why)...)
	alive := srv.failed == 0
	if alive == srv.alive {
		return
	}
	srv.alive = alive
	m.counters.transition(ck.svc.cfg.Key, srv.cfg.Addr, alive)
	verb := map[bool]string{true: "adding", false: "removing"}[alive]
	if srv.cfg.Inhibit {
		verb = map[bool]string{true: "enabling", false: "disabling (weight 0)"}[alive]
	}
	m.log.Warn("real server "+map[bool]string{true: "up", false: "down"}[alive]+": "+verb,
		"service", ck.svc.cfg.Key.String(), "server", srv.cfg.Addr.String(), "checker", string(ck.spec.Kind), "reason", why)
	script := srv.cfg.NotifyDown
	if alive {
		script = srv.cfg.NotifyUp
	}
	m.scripts.run(script)
}

// updateQuorum applies keepalived's quorum rule to svc: the quorum is
// gained when the live weight reaches quorum+hysteresis and lost when it
// drops below quorum-hysteresis (or to 0); the sorry server replaces the
// live servers while it is lost. init is a service's first look: it
// starts with the quorum up if the live weight is at least
// quorum+hysteresis. load is a look at a (re)load of the config, which
// also brings in a sorry server a service without quorum lacks.
func (m *Manager) updateQuorum(svc *service, init, load bool) {
	sum := m.liveWeight(svc)
	q, hy := int64(max(svc.cfg.Quorum, 1)), int64(svc.cfg.Hysteresis)
	if init {
		svc.quorum = sum >= q+hy
	}
	threshold := q + hy
	if svc.quorum {
		threshold = q - hy
	}
	k := svc.cfg.Key.String()
	switch {
	case !svc.quorum && sum >= threshold:
		svc.quorum = true
		m.log.Warn("quorum gained", "service", k, "live_weight", sum, "threshold", threshold,
			"sorry_server", map[bool]string{true: "removed", false: "none"}[svc.sorryOn])
		svc.sorryOn = false
		m.scripts.run(svc.cfg.QuorumUp)
	case svc.quorum && (sum == 0 || sum < threshold), load && !svc.quorum && svc.cfg.Sorry != nil && !svc.sorryOn:
		svc.quorum = false
		svc.sorryOn = svc.cfg.Sorry != nil
		m.log.Warn(map[bool]string{true: "starting with quorum down", false: "quorum lost"}[init], "service", k,
			"live_weight", sum, "threshold", threshold, "sorry_server", map[bool]string{true: "added", false: "none"}[svc.sorryOn])
		m.scripts.run(svc.cfg.QuorumDown)
	}
}

// liveWeight is the sum of the effective weights of the live servers.
func (m *Manager) liveWeight(svc *service) int64 {
	cfg, _ := m.core.ConfiguredDests(svc.cfg.Key)
	var sum int64
	for _, srv := range svc.servers {
		if !srv.alive {
			continue
		}
		i := slices.IndexFunc(cfg, func(d model.Dest) bool { return d.AddrPort() == srv.cfg.Addr })
		if i < 0 {
			continue // not configured (deleted by hand): not served
		}
		sum += int64(srv.health(false).Weight(cfg[i].Weight))
	}
	return sum
}

// health is what the core is told about srv.
func (srv *server) health(sorryOn bool) control.DestHealth {
	h := control.DestHealth{Down: !srv.alive || sorryOn, Inhibit: srv.cfg.Inhibit}
	for _, ck := range srv.checkers {
		if ck.weight == nil || !ck.up {
			continue
		}
		switch ck.spec.Kind {
		case check.Misc:
			h.Dynamic = append(h.Dynamic, *ck.weight)
		case check.File:
			h.Add += *ck.weight
		}
	}
	return h
}

// apply tells the core what the checks make of svc. m.mu is held.
func (m *Manager) apply(svc *service) error {
	h := control.ServiceHealth{Dests: map[netip.AddrPort]control.DestHealth{}}
	for _, srv := range svc.servers {
		if dh := srv.health(svc.sorryOn); dh.Down || dh.Dynamic != nil || dh.Add != 0 {
			h.Dests[srv.cfg.Addr] = dh
		}
	}
	if s := svc.cfg.Sorry; s != nil {
		h.Sorry = &control.SorryHealth{Dest: s.Dest, Active: svc.sorryOn, Inhibit: s.Inhibit}
	}
	return m.core.SetHealth(svc.cfg.Key, h)
}

// Close stops every checker and waits for them; with omega, the down
// notifiers of what was up run, as keepalived's do on shutdown.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.order {
		svc := m.services[k]
		if !svc.cfg.Omega {
			continue
		}
		for _, srv := range svc.servers {
			if srv.alive {
				m.scripts.run(srv.cfg.NotifyDown)
			}
		}
		// keepalived runs it whatever the quorum was.
		m.scripts.run(svc.cfg.QuorumDown)
	}
	m.scripts.wait()
}

func (m *Manager) attrs(ck *checker, kv ...any) []any {
	return append([]any{"service", ck.svc.cfg.Key.String(), "server", ck.srv.cfg.Addr.String(),
		"checker", string(ck.spec.Kind)}, kv...)
}

func weightEq(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// jitter spreads d by up to 5% either way, so that checkers started
// together (warmup 0) drift apart instead of checking in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/20 + rand.N(d/10+1)
}

// ServiceUp says whether service k has its quorum, for VRRP's
// track_service: a checked service's quorum state; an unchecked one is up
// while it has a server of non-zero weight. known is false for a service
// that is not configured.
func (m *Manager) ServiceUp(k model.ServiceKey) (up, known bool) {
	m.mu.Lock()
	svc := m.services[k]
	if svc != nil {
		up := svc.quorum
		m.mu.Unlock()
		return up, true
	}
	m.mu.Unlock()
	dests, ok := m.core.ConfiguredDests(k)
	if !ok {
		return false, false
	}
	return slices.ContainsFunc(dests, func(d model.Dest) bool { return d.Weight > 0 }), true
}

// Status returns every checked service, server and checker.
func (m *Manager) Status() api.Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := api.Health{Services: []api.ServiceHealth{}}
	for _, k := range m.order {
		svc := m.services[k]
		sh := api.ServiceHealth{Service: k, QuorumUp: svc.quorum, LiveWeight: m.liveWeight(svc),
			Quorum: max(svc.cfg.Quorum, 1), Hysteresis: svc.cfg.Hysteresis, SorryActive: svc.sorryOn, Servers: []api.ServerHealth{}}
		if svc.cfg.Sorry != nil {
			a := svc.cfg.Sorry.Dest.AddrPort()
			sh.Sorry = &a
		}
		for _, srv := range svc.servers {
			vh := api.ServerHealth{Server: srv.cfg.Addr, Up: srv.alive, Inhibit: srv.cfg.Inhibit, Checks: []api.CheckStatus{}}
			for _, ck := range srv.checkers {
				vh.Checks = append(vh.Checks, api.CheckStatus{Kind: string(ck.spec.Kind), Target: ck.spec.Describe(ck.target),
					Up: ck.up, LastResult: ck.lastResult, LastReason: ck.lastReason, LastCheck: ck.lastCheck,
					LastTransition: ck.lastChange, ConsecutiveFailures: ck.consecutive, Weight: ck.weight})
			}
			sh.Servers = append(sh.Servers, vh)
		}
		out.Services = append(out.Services, sh)
	}
	return out
}
