package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	gapi "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"gvs/api"
	"gvs/model"
)

// Options are what the speaker reads the services from.
type Options struct {
	// Services lists the configured services (the control core's rules).
	Services func() []model.ServiceKey
	// ServiceUp says whether a service has its quorum (the health
	// manager's ServiceUp).
	ServiceUp func(model.ServiceKey) (up, known bool)
	// Interval is how often the services are looked at; 0: 500 ms.
	Interval time.Duration
}

// Speaker is the embedded BGP speaker. Its methods are safe for
// concurrent use.
type Speaker struct {
	log *slog.Logger
	o   Options

	mu  sync.Mutex
	cfg *Config // applied; nil: not running
	srv *server.BgpServer
	// peers are the applied peers by address.
	peers map[string]Peer
	// announced are the VIPs announced, with their attributes.
	announced map[netip.Addr]attrs
	// state is the last reason of every VIP (for the status and the log).
	state      map[netip.Addr]string
	maint      bool
	drainUntil time.Time
	closed     bool
	// peerState is the last session state seen, for the log.
	peerState map[string]string

	stop chan struct{}
	done chan struct{}
}

// New returns a speaker that runs nothing until Update gives it a config.
func New(log *slog.Logger, o Options) *Speaker {
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	s := &Speaker{log: log.With("part", "bgp"), o: o, announced: map[netip.Addr]attrs{}, state: map[netip.Addr]string{},
		peerState: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *Speaker) loop() {
	defer close(s.done)
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.closed {
				s.reconcile()
				s.watchPeers()
			}
			s.mu.Unlock()
		}
	}
}

// Update applies c (nil: no BGP). Sessions whose peer did not change are
// kept; a change of the global part (asn, router_id, listen_port)
// restarts the speaker.
func (s *Speaker) Update(c *Config) error {
	if c != nil {
		if err := c.Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp: closed")
	}
	if c == nil {
		s.stopServer()
		return nil
	}
	if s.srv != nil && (s.cfg.ASN != c.ASN || s.cfg.RouterID != c.RouterID || listenPort(s.cfg) != listenPort(c)) {
		s.log.Info("global settings changed: restarting the speaker")
		s.stopServer()
	}
	if s.srv == nil {
		srv := server.NewBgpServer(server.LoggerOption(slog.New(warnOnly{s.log.Handler()}), &slog.LevelVar{}))
		go srv.Serve()
		err := srv.StartBgp(context.Background(), &gapi.StartBgpRequest{Global: &gapi.Global{
			Asn: c.ASN, RouterId: c.RouterID, ListenPort: listenPort(c)}})
		if err != nil {
			srv.Stop()
			return fmt.Errorf("bgp: %w", err)
		}
		s.srv, s.peers = srv, map[string]Peer{}
		s.log.Info("speaker started", "asn", c.ASN, "router_id", c.RouterID, "listen_port", listenPort(c))
	}
	want := map[string]Peer{}
	for _, p := range c.Peers {
		want[canon(p.Address)] = p
	}
	var errs []error
	for addr, p := range s.peers {
		if q, ok := want[addr]; !ok || q != p {
			if err := s.srv.DeletePeer(context.Background(), &gapi.DeletePeerRequest{Address: addr}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: removing peer %s: %w", addr, err))
				continue
			}
			delete(s.peers, addr)
			delete(s.peerState, addr)
			s.log.Info("peer removed", "peer", addr)
		}
	}
	for addr, p := range want {
		if _, ok := s.peers[addr]; ok {
			continue
		}
		if err := s.srv.AddPeer(context.Background(), &gapi.AddPeerRequest{Peer: peerOf(addr, p)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: adding peer %s: %w", addr, err))
			continue
		}
		s.peers[addr] = p
		s.log.Info("peer added", "peer", addr, "asn", p.ASN)
	}
	s.cfg = c
	s.reconcile()
	return errors.Join(errs...)
}

// warnOnly passes GoBGP's warnings and errors; the speaker logs the
// sessions' states and the announcements itself.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(a)} }
func (h warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{h.Handler.WithGroup(n)} }

func listenPort(c *Config) int32 {
	if c.ListenPort <= 0 {
		return -1
	}
	return c.ListenPort
}

func canon(a string) string { return netip.MustParseAddr(a).String() }

func peerOf(addr string, p Peer) *gapi.Peer {
	hold, keep := uint64(p.HoldTime), uint64(p.Keepalive)
	if hold == 0 {
		hold = 90
	}
	if keep == 0 {
		keep = hold / 3
	}
	retry := uint64(p.ConnectRetry)
	if retry == 0 {
		retry = 5
	}
	gp := &gapi.Peer{
		Conf: &gapi.PeerConf{NeighborAddress: addr, PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers: &gapi.Timers{Config: &gapi.TimersConfig{HoldTime: hold, KeepaliveInterval: keep, ConnectRetry: retry,
			IdleHoldTimeAfterReset: 1}},
		Transport: &gapi.Transport{RemotePort: uint32(p.Port)},
	}
	if p.Multihop > 0 {
		gp.EbgpMultihop = &gapi.EbgpMultihop{Enabled: true, MultihopTtl: p.Multihop}
	}
	return gp
}

// stopServer stops the speaker (its sessions close: the peers drop its
// routes). s.mu is held.
func (s *Speaker) stopServer() {
	if s.srv == nil {
		return
	}
	s.srv.Stop() // StopBgp: a NOTIFICATION (cease) to every peer
	s.srv, s.cfg, s.peers = nil, nil, nil
	s.announced = map[netip.Addr]attrs{}
	s.peerState = map[string]string{}
	s.log.Info("speaker stopped")
}

// Maintenance puts the director in maintenance (on) or takes it out. In
// maintenance the VIPs stay announced for drain with the
// GRACEFUL_SHUTDOWN community (65535:0) and LOCAL_PREF 0, so routers
// that honour it (RFC 8326) move the flows to the other directors, and
// are withdrawn after it.
func (s *Speaker) Maintenance(on bool, drain time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return errors.New("bgp is not configured (no bgp: section in the config)")
	}
	if on {
		if !s.maint || drain > 0 {
			s.drainUntil = time.Now().Add(drain)
		}
		s.maint = true
		s.log.Info("maintenance on", "drain", drain)
	} else {
		s.maint = false
		s.log.Info("maintenance off")
	}
	s.reconcile()
	return nil
}

// desired returns the VIPs to announce and the reason of every VIP.
// s.mu is held.
func (s *Speaker) desired() (map[netip.Addr]attrs, map[netip.Addr]string) {
	want, why := map[netip.Addr]attrs{}, map[netip.Addr]string{}
	if s.cfg == nil {
		return want, why
	}
	draining := s.maint && time.Now().Before(s.drainUntil)
	for _, k := range s.o.Services() {
		if k.IsFWMark() || !k.Addr.IsValid() {
			continue
		}
		a := k.Addr.Unmap()
		if why[a] == "up" {
			continue
		}
		why[a] = "down"
		// A VIP is announced while any of its services is up.
		if up, known := s.o.ServiceUp(k); known && up {
			why[a] = "up"
		}
	}
	for a, w := range why {
		switch {
		case w != "up":
		case s.maint && !draining:
			why[a] = "maintenance"
		case draining:
			why[a] = "draining"
			at := s.cfg.attrsOf(a)
			at.communities = append(slices.Clone(at.communities), CommunityGracefulShutdown)
			zero := uint32(0)
			at.localPref = &zero
			want[a] = at
		default:
			want[a] = s.cfg.attrsOf(a)
		}
	}
	return want, why
}

// reconcile announces and withdraws. s.mu is held.
func (s *Speaker) reconcile() {
	if s.srv == nil {
		return
	}
	want, why := s.desired()
	for a, at := range want {
		if old, ok := s.announced[a]; ok && old.key() == at.key() {
			continue
		}
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{pathOf(a, at)}}); err != nil {
			s.log.Error("announcing", "vip", a, "err", err)
			continue
		}
		s.announced[a] = at
		s.log.Info("announced", "vip", a, "reason", why[a])
	}
	for a, at := range s.announced {
		if _, ok := want[a]; ok {
			continue
		}
		s.withdraw(a, at)
		s.log.Info("withdrawn", "vip", a, "reason", cmpOr(why[a], "no service"))
	}
	s.state = why
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// withdraw withdraws a. s.mu is held.
func (s *Speaker) withdraw(a netip.Addr, at attrs) {
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{pathOf(a, at)}}); err != nil {
		s.log.Error("withdrawing", "vip", a, "err", err)
		return
	}
	delete(s.announced, a)
}

// pathOf is the host route of a, next hop "self": GoBGP puts its
// address toward each peer in place of the unspecified one.
func pathOf(a netip.Addr, at attrs) *apiutil.Path {
	nlri, _ := gbgp.NewIPAddrPrefix(netip.PrefixFrom(a, a.BitLen()))
	p := &apiutil.Path{Nlri: nlri}
	attrsl := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(0)}
	if a.Is4() {
		p.Family = gbgp.RF_IPv4_UC
		nh, _ := gbgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		attrsl = append(attrsl, nh)
	} else {
		p.Family = gbgp.RF_IPv6_UC
		mp, _ := gbgp.NewPathAttributeMpReachNLRI(gbgp.RF_IPv6_UC, []gbgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		attrsl = append(attrsl, mp)
	}
	if len(at.communities) > 0 {
		attrsl = append(attrsl, gbgp.NewPathAttributeCommunities(at.communities))
	}
	if at.med != nil {
		attrsl = append(attrsl, gbgp.NewPathAttributeMultiExitDisc(*at.med))
	}
	if at.localPref != nil {
		attrsl = append(attrsl, gbgp.NewPathAttributeLocalPref(*at.localPref))
	}
	p.Attrs = attrsl
	return p
}

// watchPeers logs session state changes. s.mu is held.
func (s *Speaker) watchPeers() {
	if s.srv == nil {
		return
	}
	s.srv.ListPeer(context.Background(), &gapi.ListPeerRequest{}, func(p *gapi.Peer) {
		if p.State == nil || p.Conf == nil {
			return
		}
		addr, st := p.Conf.NeighborAddress, sessionState(p.State.SessionState)
		if old, ok := s.peerState[addr]; ok && old == st {
			return
		}
		s.peerState[addr] = st
		s.log.Info("peer session", "peer", addr, "state", st)
	})
}

func sessionState(st gapi.PeerState_SessionState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "SESSION_STATE_"))
}

// Shutdown withdraws every VIP and stops the speaker, waiting up to wait
// for the withdrawals to be sent: gvsd's first step at SIGTERM, before
// it stops forwarding. Update does nothing afterwards.
func (s *Speaker) Shutdown(wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.srv == nil {
		return
	}
	n := len(s.announced)
	for a, at := range s.announced {
		s.withdraw(a, at)
	}
	// The UPDATEs leave from the peers' queues; a NOTIFICATION (StopBgp)
	// would withdraw them too, but some routers keep the routes for a
	// graceful-restart time after a session closes.
	deadline := time.Now().Add(wait)
	for n > 0 && time.Now().Before(deadline) && s.outQueued() {
		time.Sleep(20 * time.Millisecond)
	}
	s.log.Info("withdrew the VIPs for shutdown", "vips", n)
	s.stopServer()
}

func (s *Speaker) outQueued() bool {
	q := false
	s.srv.ListPeer(context.Background(), &gapi.ListPeerRequest{}, func(p *gapi.Peer) {
		if p.State != nil && p.State.OutQ > 0 {
			q = true
		}
	})
	return q
}

// Close stops the speaker (Shutdown with no wait) and its loop.
func (s *Speaker) Close() {
	s.Shutdown(0)
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Status is GET /v1/bgp.
func (s *Speaker) Status() api.BGP {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.BGP{Peers: []api.BGPPeer{}, VIPs: []api.BGPVIP{}, Maintenance: s.maint}
	if s.srv == nil {
		return st
	}
	st.Running, st.ASN, st.RouterID = true, s.cfg.ASN, s.cfg.RouterID
	if s.maint && time.Now().Before(s.drainUntil) {
		st.Draining = true
		u := s.drainUntil
		st.DrainUntil = &u
	}
	s.srv.ListPeer(context.Background(), &gapi.ListPeerRequest{}, func(p *gapi.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		bp := api.BGPPeer{Address: p.Conf.NeighborAddress, ASN: p.Conf.PeerAsn, State: sessionState(p.State.SessionState), Flops: p.State.Flops}
		if p.Timers != nil && p.Timers.State != nil {
			bp.HoldTime = p.Timers.State.NegotiatedHoldTime
			if u := p.Timers.State.Uptime; u != nil && p.State.SessionState == gapi.PeerState_SESSION_STATE_ESTABLISHED {
				t := u.AsTime()
				bp.Uptime = &t
			}
		}
		if m := p.State.Messages; m != nil {
			if m.Received != nil {
				bp.ReceivedUpdates = m.Received.Update
			}
			if m.Sent != nil {
				bp.SentUpdates = m.Sent.Update
			}
		}
		st.Peers = append(st.Peers, bp)
	})
	slices.SortFunc(st.Peers, func(a, b api.BGPPeer) int { return strings.Compare(a.Address, b.Address) })
	for a, why := range s.state {
		v := api.BGPVIP{Prefix: netip.PrefixFrom(a, a.BitLen()), Reason: why}
		if at, ok := s.announced[a]; ok {
			v.Announced = true
			for _, c := range at.communities {
				v.Communities = append(v.Communities, FormatCommunity(c))
			}
			v.MED, v.LocalPref = at.med, at.localPref
		}
		st.VIPs = append(st.VIPs, v)
	}
	slices.SortFunc(st.VIPs, func(a, b api.BGPVIP) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return st
}
