// Package ipvs is one IPVS instance in pure Go: the service table with its
// destinations and schedulers, the connection table with persistence
// templates, and the counters. It does what the kernel's IPVS does for each
// packet (ip_vs_in / ip_vs_out) and for each ipvsadm command, with time
// passed in, so it runs the proxy engine and serves as the oracle the XDP
// engine is tested against. It has no I/O and is not safe for concurrent
// use: its owner serialises calls.
package ipvs

import (
	"net/netip"
	"slices"
	"time"

	"gvs/conn"
	"gvs/model"
	"gvs/sched"
	"gvs/stats"
)

// Options are the kernel's sysctls and build options that change behaviour.
type Options struct {
	Sched sched.Options
	// ExpireNodestConn is the sysctl expire_nodest_conn: expire a
	// connection at its next packet when its server was deleted (instead of
	// dropping packets until it times out).
	ExpireNodestConn bool
	// ExpireQuiescentTemplate is the sysctl expire_quiescent_template:
	// a persistence template whose server has weight 0 stops being used.
	ExpireQuiescentTemplate bool
	// SloppyTCP is the sysctl sloppy_tcp: any TCP packet but a RST may
	// start a connection, not only a SYN.
	SloppyTCP bool
	// NoConnReuse and ConnReuseFinWait are conn_reuse_mode 0 (a SYN never
	// reopens a finished connection) and its bit 2 (a DR/TUN connection
	// in FIN_WAIT is reopened too); the zero Options are mode 1, the
	// kernel's default.
	NoConnReuse      bool
	ConnReuseFinWait bool
}

// IPVS is one instance: what the kernel keeps per network namespace.
type IPVS struct {
	opts     Options
	services []*Service // in creation order
	byKey    map[model.ServiceKey]*Service
	timeouts conn.Timeouts
	total    stats.Stats

	conns     map[connKey]*Conn // by client and virtual address
	replies   map[connKey]*Conn // by real server and client address (NAT replies)
	templates map[connKey]*Conn
	all       map[*Conn]struct{} // every entry, invalidated templates included

	// trash holds deleted servers that connections still use, so that
	// re-adding the same server to the same service (even after -C) revives
	// it with its counts and its connections flow again, as the kernel's
	// dest_trash does.
	trash map[trashKey]*model.Server

	// gen moves on with every change of services or servers (Gen).
	gen uint64
}

// Gen is a number that changes whenever a service or server is added,
// edited or removed: what keeps a view of the services (an engine's
// index of them) can tell it is stale.
func (v *IPVS) Gen() uint64 { return v.gen }

type trashKey struct {
	svc  model.ServiceKey
	dest netip.AddrPort
}

// New returns an empty instance with the default timeouts.
func New(o Options) *IPVS {
	return &IPVS{
		opts:      o,
		byKey:     map[model.ServiceKey]*Service{},
		timeouts:  conn.NewTimeouts(model.Timeouts{}),
		conns:     map[connKey]*Conn{},
		replies:   map[connKey]*Conn{},
		templates: map[connKey]*Conn{},
		all:       map[*Conn]struct{}{},
		trash:     map[trashKey]*model.Server{},
	}
}

// Service is a virtual service with its servers in kernel list order.
type Service struct {
	Config model.Service
	sched  sched.Scheduler
	list   sched.Service
	Stats  stats.Stats

	// localAddrs is the FULLNAT local address pool in the order the
	// addresses were added; localNext is the round robin's next index.
	localAddrs []netip.Addr
	localNext  int
	// allow is the source allow list (model.NormalizeAllow's form); nil:
	// every source may connect.
	allow []netip.Prefix
}

// Scheduler returns the service's scheduler.
func (s *Service) Scheduler() sched.Scheduler { return s.sched }

// Servers returns the servers in kernel list order (newest first).
func (s *Service) Servers() []*model.Server { return s.list.Servers }

// Server returns the server with that address and port, or nil.
func (s *Service) Server(a netip.AddrPort) *model.Server {
	for _, d := range s.list.Servers {
		if d.AddrPort() == a {
			return d
		}
	}
	return nil
}

// LocalAddrs returns the FULLNAT local address pool in the order the
// addresses were added. The slice is the service's own: do not modify it.
func (s *Service) LocalAddrs() []netip.Addr { return s.localAddrs }

// Allow returns the service's source allow list, masked and sorted (nil:
// none, every source may connect). The slice is the service's own: do not
// modify it.
func (s *Service) Allow() []netip.Prefix { return s.allow }

// Services returns the services in creation order.
func (v *IPVS) Services() []*Service { return v.services }

// Service returns the service with key k, or nil.
func (v *IPVS) Service(k model.ServiceKey) *Service { return v.byKey[k] }

// Total returns the instance-wide counters.
func (v *IPVS) Total() *stats.Stats { return &v.total }

// Timeouts returns the --set values.
func (v *IPVS) Timeouts() model.Timeouts { return v.timeouts.Model() }

// SetTimeouts applies ipvsadm --set; a zero value leaves that timeout as it is.
func (v *IPVS) SetTimeouts(t model.Timeouts) {
	cur := v.timeouts.Model()
	if t.TCP == 0 {
		t.TCP = cur.TCP
	}
	if t.TCPFin == 0 {
		t.TCPFin = cur.TCPFin
	}
	if t.UDP == 0 {
		t.UDP = cur.UDP
	}
	v.timeouts = conn.NewTimeouts(t)
}

// AddService is ipvsadm -A.
func (v *IPVS) AddService(cfg model.Service) error {
	v.gen++
	cfg = cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if v.byKey[cfg.ServiceKey] != nil {
		return model.ErrServiceExists
	}
	s := &Service{Config: cfg}
	s.list.Flags = cfg.Flags
	sc, err := sched.New(cfg.Scheduler, &s.list, v.opts.Sched)
	if err != nil {
		return model.ErrSchedulerNotFound
	}
	s.sched = sc
	v.services = append(v.services, s)
	v.byKey[cfg.ServiceKey] = s
	return nil
}

// EditService is ipvsadm -E: scheduler, flags, timeout and netmask change;
// connections and templates stay.
func (v *IPVS) EditService(cfg model.Service) error {
	v.gen++
	cfg = cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return err
	}
	s := v.byKey[cfg.ServiceKey]
	if s == nil {
		return model.ErrNoSuchService
	}
	if cfg.Scheduler != s.Config.Scheduler {
		sc, err := sched.New(cfg.Scheduler, &s.list, v.opts.Sched)
		if err != nil {
			return model.ErrSchedulerNotFound
		}
		s.sched = sc
	}
	s.Config = cfg
	s.list.Flags = cfg.Flags
	return nil
}

// DelService is ipvsadm -D. Its connections stay until they expire; their
// packets are dropped since their servers are gone.
func (v *IPVS) DelService(k model.ServiceKey) error {
	v.gen++
	s := v.byKey[k]
	if s == nil {
		return model.ErrNoSuchService
	}
	for _, d := range s.list.Servers {
		v.unlink(k, d)
	}
	s.list.Servers = nil
	delete(v.byKey, k)
	v.services = slices.DeleteFunc(v.services, func(x *Service) bool { return x == s })
	return nil
}

// Flush is ipvsadm -C.
func (v *IPVS) Flush() {
	v.gen++
	for _, s := range slices.Clone(v.services) {
		_ = v.DelService(s.Config.ServiceKey)
	}
}

// destFor finds the service of a destination command and completes and
// checks the destination as the kernel does.
func (v *IPVS) destFor(k model.ServiceKey, d model.Dest) (*Service, model.Dest, error) {
	s := v.byKey[k]
	if s == nil {
		return nil, d, model.ErrServiceNotDefined
	}
	d = model.NormalizeDest(s.Config, d)
	return s, d, model.ValidateDest(s.Config, d)
}

// AddDest is ipvsadm -a. The new server goes to the head of the list.
func (v *IPVS) AddDest(k model.ServiceKey, d model.Dest) error {
	v.gen++
	s, d, err := v.destFor(k, d)
	if err != nil {
		return err
	}
	if s.Server(d.AddrPort()) != nil {
		return model.ErrDestExists
	}
	tk := trashKey{k, d.AddrPort()}
	srv := v.trash[tk]
	if srv != nil {
		delete(v.trash, tk)
		srv.Update(d, true)
	} else {
		srv = model.NewServer(d)
	}
	s.list.Servers = slices.Insert(s.list.Servers, 0, srv)
	s.sched.Update(&s.list, sched.Change{Kind: sched.Added, Server: srv})
	return nil
}

// EditDest is ipvsadm -e.
func (v *IPVS) EditDest(k model.ServiceKey, d model.Dest) error {
	v.gen++
	s, d, err := v.destFor(k, d)
	if err != nil {
		return err
	}
	srv := s.Server(d.AddrPort())
	if srv == nil {
		return model.ErrNoSuchDest
	}
	srv.Update(d, false)
	s.sched.Update(&s.list, sched.Change{Kind: sched.Edited, Server: srv})
	return nil
}

// DelDest is ipvsadm -d. Connections to the server stay until they expire;
// their packets are dropped (see Options.ExpireNodestConn).
func (v *IPVS) DelDest(k model.ServiceKey, a netip.AddrPort) error {
	v.gen++
	s := v.byKey[k]
	if s == nil {
		return model.ErrServiceNotDefined
	}
	if !s.Config.IsFWMark() && a.Port() == 0 {
		a = netip.AddrPortFrom(a.Addr(), s.Config.Port)
	}
	i := slices.IndexFunc(s.list.Servers, func(d *model.Server) bool { return d.AddrPort() == a })
	if i < 0 {
		return model.ErrNoSuchDest
	}
	srv := s.list.Servers[i]
	s.list.Servers = slices.Delete(s.list.Servers, i, i+1)
	v.unlink(k, srv)
	s.sched.Update(&s.list, sched.Change{Kind: sched.Removed, Server: srv, Index: i})
	return nil
}

// unlink marks a removed server unavailable and keeps it while
// connections refer to it.
func (v *IPVS) unlink(k model.ServiceKey, srv *model.Server) {
	srv.Available = false
	if referenced(srv) {
		v.trash[trashKey{k, srv.AddrPort()}] = srv
	}
}

func referenced(s *model.Server) bool { return s.ActiveConns+s.InactConns+s.PersistConns > 0 }

// AddLocalAddr is DPVS ipvsadm -P: a is appended to the FULLNAT local
// address pool of service k. The pool survives -E and goes with the
// service at -D and -C.
func (v *IPVS) AddLocalAddr(k model.ServiceKey, a netip.Addr) error {
	s := v.byKey[k]
	if s == nil {
		return model.ErrServiceNotDefined
	}
	if err := model.ValidateLocalAddr(s.Config, a); err != nil {
		return err
	}
	if slices.Contains(s.localAddrs, a) {
		return model.ErrLocalAddrExists
	}
	if len(s.localAddrs) >= model.MaxLocalAddrs {
		return model.ErrTooManyLocalAddrs
	}
	s.localAddrs = append(s.localAddrs, a)
	return nil
}

// DelLocalAddr is DPVS ipvsadm -Q. The round robin goes on with the
// address that followed the deleted one, as DPVS's does.
func (v *IPVS) DelLocalAddr(k model.ServiceKey, a netip.Addr) error {
	s := v.byKey[k]
	if s == nil {
		return model.ErrServiceNotDefined
	}
	i := slices.Index(s.localAddrs, a)
	if i < 0 {
		return model.ErrNoSuchLocalAddr
	}
	// A new slice: callers may still hold the old one (LocalAddrs).
	s.localAddrs = slices.Delete(slices.Clone(s.localAddrs), i, i+1)
	if i < s.localNext {
		s.localNext--
	}
	return nil
}

// SetAllow replaces service k's source allow list (gvs's own; no ipvsadm
// command has it): new connections only from the sources it covers, once
// it is not empty; connections already made go on. An empty list removes
// it. The list survives -E and goes with the service at -D and -C.
func (v *IPVS) SetAllow(k model.ServiceKey, list []netip.Prefix) error {
	s := v.byKey[k]
	if s == nil {
		return model.ErrServiceNotDefined
	}
	l, err := model.NormalizeAllow(s.Config, list)
	if err != nil {
		return err
	}
	s.allow = l
	return nil
}

// NextLocalAddr is the source address of a new connection's traffic to
// its real server: for FULLNAT, the next address of its service's pool of
// the server's family (an IPv6 service's pool may hold IPv4 addresses for
// its IPv4 servers, NAT64) in round robin. ok is false when the engine
// should use the director's own address: another method, or no pool
// address of the server's family.
func (v *IPVS) NextLocalAddr(c *Conn) (a netip.Addr, ok bool) {
	if c.Method != model.FullNAT || c.Template {
		return a, false
	}
	s := v.byKey[c.svc]
	if s == nil || len(s.localAddrs) == 0 {
		return a, false
	}
	n := len(s.localAddrs)
	for range n {
		if s.localNext >= n {
			s.localNext = 0
		}
		a = s.localAddrs[s.localNext]
		s.localNext = (s.localNext + 1) % n
		if !c.Dest.IsValid() || a.Is4() == c.Dest.Addr().Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Zero is ipvsadm -Z: all counters, or one service's (with its servers').
func (v *IPVS) Zero(k *model.ServiceKey) error {
	if k != nil {
		s := v.byKey[*k]
		if s == nil {
			return model.ErrNoSuchService
		}
		s.zero()
		return nil
	}
	for _, s := range v.services {
		s.zero()
	}
	v.total.Zero()
	return nil
}

func (s *Service) zero() {
	s.Stats.Zero()
	for _, d := range s.list.Servers {
		d.Stats.Zero()
	}
}

// Estimate runs one 2-second period of every rate estimator.
func (v *IPVS) Estimate() {
	v.total.Estimate()
	for _, s := range v.services {
		s.Stats.Estimate()
		for _, d := range s.list.Servers {
			d.Stats.Estimate()
		}
	}
}

// Collect runs the lblc/lblcr garbage collection; call it every
// sched.CollectInterval.
func (v *IPVS) Collect(now time.Time) {
	for _, s := range v.services {
		if c, ok := s.sched.(sched.Collector); ok {
			c.Collect(now)
		}
	}
}
