package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	gapi "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"gvs/model"
)

func TestParseCommunity(t *testing.T) {
	for s, want := range map[string]uint32{"65535:0": CommunityGracefulShutdown, "graceful-shutdown": CommunityGracefulShutdown,
		"65000:100": 65000<<16 | 100, "7": 7, "no-export": CommunityNoExport} {
		if got, err := ParseCommunity(s); err != nil || got != want {
			t.Errorf("%q: %#x %v, want %#x", s, got, err, want)
		}
	}
	for _, s := range []string{"65536:1", "a:b", "x", ""} {
		if _, err := ParseCommunity(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if FormatCommunity(CommunityGracefulShutdown) != "65535:0" {
		t.Error(FormatCommunity(CommunityGracefulShutdown))
	}
}

func TestValidate(t *testing.T) {
	ok := Config{ASN: 65001, RouterID: "198.18.0.2", Peers: []Peer{{Address: "198.18.0.1", ASN: 65000, HoldTime: 3, Keepalive: 1}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(c *Config){
		func(c *Config) { c.ASN = 0 },
		func(c *Config) { c.RouterID = "2001:db8::1" },
		func(c *Config) { c.Peers = nil },
		func(c *Config) { c.Peers[0].ASN = 0 },
		func(c *Config) { c.Peers[0].HoldTime = 2 },
		func(c *Config) { c.Peers[0].Keepalive = 3 },
		func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) },
		func(c *Config) { c.Communities = []string{"x"} },
		func(c *Config) { c.VIPs = []VIP{{Address: "nope"}} },
	}
	for i, f := range bad {
		c := ok
		c.Peers = slices.Clone(ok.Peers)
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

// services is a fake control core and health manager.
type services struct {
	mu sync.Mutex
	up map[model.ServiceKey]bool
}

func (s *services) list() []model.ServiceKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []model.ServiceKey
	for k := range s.up {
		l = append(l, k)
	}
	return l
}

func (s *services) serviceUp(k model.ServiceKey) (bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up, ok := s.up[k]
	return up, ok
}

func (s *services) set(k model.ServiceKey, up bool) {
	s.mu.Lock()
	s.up[k] = up
	s.mu.Unlock()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// router is a second GoBGP, passive, as the router the speaker peers with.
func router(t *testing.T, port int) *server.BgpServer {
	r := server.NewBgpServer()
	go r.Serve()
	t.Cleanup(r.Stop)
	if err := r.StartBgp(context.Background(), &gapi.StartBgpRequest{Global: &gapi.Global{Asn: 65000, RouterId: "198.18.0.1",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPeer(context.Background(), &gapi.AddPeerRequest{Peer: &gapi.Peer{
		Conf:      &gapi.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Timers:    &gapi.Timers{Config: &gapi.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
		Transport: &gapi.Transport{PassiveMode: true}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// ribOf returns the router's paths: prefix -> communities of its best path.
func ribOf(r *server.BgpServer) map[string][]uint32 {
	out := map[string][]uint32{}
	r.ListPath(apiutil.ListPathRequest{TableType: gapi.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
		func(prefix gbgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				var cs []uint32
				for _, a := range p.Attrs {
					if c, ok := a.(*gbgp.PathAttributeCommunities); ok {
						cs = c.Value
					}
				}
				out[prefix.String()] = cs
			}
		})
	return out
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The speaker against another BGP implementation's library (GoBGP as the
// router, on loopback): the VIP of a service that is up is announced with
// the configured community, withdrawn when the service goes down, drained
// with GRACEFUL_SHUTDOWN in maintenance, and withdrawn at shutdown; a
// reload that changes nothing keeps the session.
func TestSpeaker(t *testing.T) {
	port := freePort(t)
	r := router(t, port)
	svc := &services{up: map[model.ServiceKey]bool{}}
	k := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4}
	k2 := model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 53, Family: model.IPv4}
	svc.set(k, true)
	svc.set(k2, false)
	s := New(slog.New(slog.NewTextHandler(os.Stderr, nil)), Options{Services: svc.list, ServiceUp: svc.serviceUp, Interval: 50 * time.Millisecond})
	defer s.Close()
	cfg := &Config{ASN: 65001, RouterID: "198.18.0.2", Communities: []string{"65001:80"},
		Peers: []Peer{{Address: "127.0.0.1", ASN: 65000, Port: uint16(port), HoldTime: 3, Keepalive: 1, ConnectRetry: 1}}}
	if err := s.Update(cfg); err != nil {
		t.Fatal(err)
	}
	const vip = "198.18.0.100/32"
	waitFor(t, "the VIP at the router", func() bool { _, ok := ribOf(r)[vip]; return ok })
	if cs := ribOf(r)[vip]; !slices.Equal(cs, []uint32{65001<<16 | 80}) {
		t.Fatalf("communities %x", cs)
	}
	st := s.Status()
	if len(st.Peers) != 1 || st.Peers[0].State != "established" || len(st.VIPs) != 1 || !st.VIPs[0].Announced {
		t.Fatalf("status %+v", st)
	}
	up := *st.Peers[0].Uptime

	// The same config again: the session stays.
	if err := s.Update(&Config{ASN: 65001, RouterID: "198.18.0.2", Communities: []string{"65001:80"},
		Peers: []Peer{{Address: "127.0.0.1", ASN: 65000, Port: uint16(port), HoldTime: 3, Keepalive: 1, ConnectRetry: 1}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st := s.Status(); st.Peers[0].State != "established" || !st.Peers[0].Uptime.Equal(up) || st.Peers[0].Flops != 0 {
		t.Fatalf("session reset by an unchanged config: %+v", st.Peers[0])
	}

	// No service of the VIP up: withdrawn; one up again: announced.
	svc.set(k, false)
	waitFor(t, "the withdrawal", func() bool { _, ok := ribOf(r)[vip]; return !ok })
	svc.set(k2, true)
	waitFor(t, "the announcement", func() bool { _, ok := ribOf(r)[vip]; return ok })

	// Maintenance: GRACEFUL_SHUTDOWN for the drain, then withdrawn.
	if err := s.Maintenance(true, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "graceful shutdown", func() bool { return slices.Contains(ribOf(r)[vip], CommunityGracefulShutdown) })
	if st := s.Status(); !st.Draining || st.VIPs[0].Reason != "draining" {
		t.Fatalf("status %+v", st)
	}
	waitFor(t, "the withdrawal after the drain", func() bool { _, ok := ribOf(r)[vip]; return !ok })
	if err := s.Maintenance(false, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announcement after maintenance", func() bool {
		cs, ok := ribOf(r)[vip]
		return ok && !slices.Contains(cs, CommunityGracefulShutdown)
	})

	// Shutdown withdraws.
	s.Shutdown(time.Second)
	waitFor(t, "the withdrawal at shutdown", func() bool { _, ok := ribOf(r)[vip]; return !ok })
}
