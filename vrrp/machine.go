package vrrp

import (
	"net/netip"
	"time"
)

// State is an instance's VRRP state.
type State int

// The states: keepalived's INIT, BACKUP, MASTER, FAULT and STOP.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStop
)

func (s State) String() string {
	switch s {
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStop:
		return "STOP"
	}
	return "INIT"
}

// MarshalText makes a State its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// machineIO is what the state machine does to the world.
type machineIO interface {
	advertise(prio uint8) // send one advertisement
	setVIPs(up bool)      // add or remove the virtual addresses
	garp(repeat int)      // send gratuitous ARPs / NAs for them
	// changed is told of every transition after it is made.
	changed(from, to State)
	// discarded is told of an advert ignored for its lower priority.
	discarded(src netip.Addr, prio uint8)
}

// machine is one instance's state machine (RFC 5798 section 6.4, with
// keepalived's choices where the RFCs leave them): pure, driven by the
// time it is given.
type machine struct {
	version      int
	advInt       time.Duration
	basePrio     uint8
	initMaster   bool
	preempt      bool
	preemptDelay time.Duration
	self         netip.Addr // our primary address, for ties
	garpCfg      GARP
	io           machineIO

	state        State
	prio         uint8 // effective priority
	fault        bool
	masterAdvInt time.Duration
	downAt       time.Time // backup: when the master is declared down
	advAt        time.Time // master: the next advert
	preemptAt    time.Time // backup: preempt_delay running until
	garpAt       time.Time // master: the next delayed burst
	refreshAt    time.Time // master: the next refresh burst
	master       netip.Addr
	masterPrio   uint8
	lastChange   time.Time
}

func newMachine(in Instance, self netip.Addr, io machineIO) *machine {
	return &machine{
		version: in.Version, advInt: in.AdvertInterval, basePrio: in.Priority,
		initMaster: in.InitMaster || in.Priority == OwnerPriority,
		preempt:    !in.NoPreempt, preemptDelay: in.PreemptDelay,
		self: self, garpCfg: *in.GARP, io: io,
		prio: in.Priority, masterAdvInt: in.AdvertInterval,
	}
}

// skewFor is the skew time for priority p: RFC 3768's (256-p)/256 s
// for v2, RFC 5798's ((256-p) * Master_Adver_Interval)/256 for v3 (in
// centiseconds there, so rounded down to them here, as keepalived).
func (m *machine) skewFor(p int) time.Duration {
	if m.version == 3 {
		cs := int64(m.masterAdvInt / (10 * time.Millisecond))
		return time.Duration(int64(p)*cs*625/16) * time.Microsecond
	}
	return time.Duration(p) * time.Second / 256
}

func (m *machine) skew() time.Duration {
	p := m.prio
	if m.basePrio == OwnerPriority {
		p = OwnerPriority
	}
	return m.skewFor(256 - int(p))
}

// masterDown is the master-down interval: 3 intervals and the skew.
func (m *machine) masterDown() time.Duration { return 3*m.masterAdvInt + m.skew() }

func (m *machine) setState(now time.Time, s State) {
	from := m.state
	m.state = s
	m.lastChange = now
	m.io.changed(from, s)
}

// start enters the first state: master at once for the address owner,
// backup otherwise (waiting one interval instead of the master-down
// interval for state MASTER), FAULT when a tracked item is down.
func (m *machine) start(now time.Time) {
	m.masterAdvInt = m.advInt
	switch {
	case m.fault:
		m.setState(now, StateFault)
	case m.initMaster && m.basePrio == OwnerPriority:
		m.becomeMaster(now)
	default:
		m.downAt = now.Add(m.masterDown())
		if m.initMaster {
			m.downAt = now.Add(m.masterAdvInt + m.skewFor(1))
		}
		m.setState(now, StateBackup)
	}
}

func (m *machine) becomeMaster(now time.Time) {
	m.master, m.masterPrio = m.self, m.prio
	m.preemptAt = time.Time{}
	m.io.setVIPs(true)
	m.io.garp(m.garpCfg.MasterRepeat)
	m.io.advertise(m.prio)
	m.advAt = now.Add(m.advInt)
	m.garpAt, m.refreshAt = time.Time{}, time.Time{}
	if m.garpCfg.MasterDelay > 0 {
		m.garpAt = now.Add(m.garpCfg.MasterDelay)
	}
	if m.garpCfg.MasterRefresh > 0 {
		m.refreshAt = now.Add(m.garpCfg.MasterDelay + m.garpCfg.MasterRefresh)
	}
	m.setState(now, StateMaster)
}

// becomeBackup leaves master for backup, waiting the master-down
// interval for the new master's adverts.
func (m *machine) becomeBackup(now time.Time) {
	m.io.setVIPs(false)
	m.downAt = now.Add(m.masterDown())
	m.preemptAt = time.Time{}
	m.setState(now, StateBackup)
}

// receive handles an advert that passed the instance's checks.
func (m *machine) receive(now time.Time, a *Advert, src netip.Addr) {
	switch m.state {
	case StateBackup:
		switch {
		case a.Priority == StopPriority:
			// The master resigned: take over after the skew time.
			m.downAt = now.Add(m.skew())
		case !m.preempt || a.Priority >= m.prio ||
			(m.preemptDelay > 0 && (m.preemptAt.IsZero() || m.preemptAt.After(now))):
			if m.version == 3 {
				m.masterAdvInt = a.Interval
			}
			m.downAt = now.Add(m.masterDown())
			m.master, m.masterPrio = src, a.Priority
			if m.preemptDelay > 0 {
				if a.Priority >= m.prio {
					m.preemptAt = time.Time{}
				} else if m.preemptAt.IsZero() {
					m.preemptAt = now.Add(m.preemptDelay)
				}
			}
		default:
			// Lower priority and we preempt: let the down timer run out.
			m.io.discarded(src, a.Priority)
		}
	case StateMaster:
		if a.Priority == StopPriority {
			m.io.advertise(m.prio)
			m.advAt = now.Add(m.advInt)
			return
		}
		higher := a.Priority > m.prio || (a.Priority == m.prio && src.Compare(m.self) > 0)
		if !higher {
			// A lower priority master: assert ourselves (keepalived's
			// default, lower_prio_no_advert false).
			m.io.advertise(m.prio)
			return
		}
		if m.version == 3 {
			m.masterAdvInt = a.Interval
		}
		m.master, m.masterPrio = src, a.Priority
		m.becomeBackup(now)
	}
}

// tick runs the timers that are due at now.
func (m *machine) tick(now time.Time) {
	switch m.state {
	case StateBackup:
		if !now.Before(m.downAt) {
			m.becomeMaster(now)
		}
	case StateMaster:
		if !now.Before(m.advAt) {
			m.io.advertise(m.prio)
			m.advAt = now.Add(m.advInt)
		}
		if !m.garpAt.IsZero() && !now.Before(m.garpAt) {
			m.garpAt = time.Time{}
			m.io.garp(m.garpCfg.MasterRepeat)
		}
		if !m.refreshAt.IsZero() && !now.Before(m.refreshAt) {
			m.refreshAt = now.Add(m.garpCfg.MasterRefresh)
			m.io.garp(m.garpCfg.RefreshRepeat)
		}
	}
}

// next is when tick has something to do (zero: nothing).
func (m *machine) next() time.Time {
	switch m.state {
	case StateBackup:
		return m.downAt
	case StateMaster:
		t := m.advAt
		for _, x := range []time.Time{m.garpAt, m.refreshAt} {
			if !x.IsZero() && x.Before(t) {
				t = x
			}
		}
		return t
	}
	return time.Time{}
}

// setPriority sets the effective priority (tracking weights); a master
// advertises it at once.
func (m *machine) setPriority(now time.Time, p uint8) {
	if p == m.prio {
		return
	}
	m.prio = p
	if m.state == StateMaster {
		m.io.advertise(m.prio)
		m.advAt = now.Add(m.advInt)
	}
}

// setFault enters FAULT (a master resigns with priority 0 first) or
// leaves it for backup (master at once for the address owner).
func (m *machine) setFault(now time.Time, fault bool) {
	if fault == m.fault {
		return
	}
	m.fault = fault
	switch {
	case fault && m.state == StateMaster:
		m.io.advertise(StopPriority)
		m.io.setVIPs(false)
		m.setState(now, StateFault)
	case fault && (m.state == StateBackup || m.state == StateInit):
		m.setState(now, StateFault)
	case !fault && m.state == StateFault:
		m.masterAdvInt = m.advInt
		if m.basePrio == OwnerPriority {
			m.becomeMaster(now)
			return
		}
		m.downAt = now.Add(m.masterDown())
		m.setState(now, StateBackup)
	}
}

// forceMaster and forceBackup are a sync group's: a member follows the
// one that changed.
func (m *machine) forceMaster(now time.Time) {
	if m.state == StateBackup {
		m.becomeMaster(now)
	}
}

func (m *machine) forceBackup(now time.Time) {
	if m.state == StateMaster {
		m.becomeBackup(now)
	}
}

// stop resigns: a master sends priority 0 and removes its addresses.
func (m *machine) stop(now time.Time) {
	if m.state == StateMaster {
		m.io.advertise(StopPriority)
		m.io.setVIPs(false)
	}
	m.setState(now, StateStop)
}
