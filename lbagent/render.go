package lbagent

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"gvs/config"
	"gvs/lbaas"
)

// The YAML gvsd reads (docs/config.md), written with only what a load
// balancer uses. config.File is not marshalled directly: its durations
// would be written as nanoseconds.
type yFile struct {
	// Services is never omitted: services: [] is how gvsd is told to
	// serve nothing.
	Services []yService `yaml:"services"`
}

type yService struct {
	TCP        string    `yaml:"tcp,omitempty"`
	UDP        string    `yaml:"udp,omitempty"`
	SCTP       string    `yaml:"sctp,omitempty"`
	Scheduler  string    `yaml:"scheduler"`
	Persistent *uint32   `yaml:"persistent,omitempty"`
	Netmask    string    `yaml:"netmask,omitempty"`
	SchedFlags []string  `yaml:"sched-flags,omitempty"`
	LocalAddrs []string  `yaml:"local_addrs,omitempty"`
	Servers    []yServer `yaml:"servers"`
	Sorry      *ySorry   `yaml:"sorry_server,omitempty"`
	DelayLoop  string    `yaml:"delay_loop,omitempty"`
	Check      []yCheck  `yaml:"check,omitempty"`
}

type yServer struct {
	Address    string   `yaml:"address"`
	Method     string   `yaml:"method"`
	Weight     int32    `yaml:"weight"`
	UThreshold uint32   `yaml:"u-threshold,omitempty"`
	Check      []yCheck `yaml:"check,omitempty"`
}

type ySorry struct {
	Address string `yaml:"address"`
	Method  string `yaml:"method"`
	Weight  int32  `yaml:"weight"`
}

type yCheck struct {
	Type             string `yaml:"type"`
	ConnectIP        string `yaml:"connect_ip,omitempty"`
	ConnectPort      uint16 `yaml:"connect_port,omitempty"`
	ConnectTimeout   string `yaml:"connect_timeout,omitempty"`
	Retry            *int   `yaml:"retry,omitempty"`
	DelayBeforeRetry string `yaml:"delay_before_retry,omitempty"`
	DelayLoop        string `yaml:"delay_loop,omitempty"`
	HTTPProtocol     string `yaml:"http_protocol,omitempty"`
	VirtualHost      string `yaml:"virtualhost,omitempty"`
	EnableSNI        bool   `yaml:"enable_sni,omitempty"`
	URLs             []yURL `yaml:"urls,omitempty"`
}

type yURL struct {
	Path       string   `yaml:"path"`
	StatusCode []string `yaml:"status_code,omitempty"`
}

// forwarding is how a member is reached; see Options.Forwarding and
// memberMethod.
const (
	ForwardAuto    = ""        // NAT on the VIP's subnet, FULLNAT off it
	ForwardFullNAT = "fullnat" // FULLNAT for every member
)

// memberMethod is the forwarding method of a member: NAT (masq) when
// its address is inside the VIP's subnet (it is on the load balancer's
// segment, and LVS-NAT's premise holds: its replies to clients are
// routed through the load balancer), FULLNAT otherwise (off the VIP's
// subnet it reaches the load balancer only through a router and answers
// clients by its own routes: only replies addressed to the VIP itself
// come back, so the VIP is the local address too).
func memberMethod(spec *lbaas.Spec, m lbaas.MemberSpec, forwarding string) string {
	if forwarding == ForwardFullNAT {
		return "fullnat"
	}
	if spec.Network.CIDR.IsValid() && spec.Network.CIDR.Contains(m.Address.Unmap()) {
		return "masq"
	}
	return "fullnat"
}

// schedulers maps Octavia's lb_algorithm to an IPVS scheduler and its
// flags.
func scheduler(alg string) (string, []string, error) {
	switch strings.ToUpper(alg) {
	case "ROUND_ROBIN", "":
		return "wrr", nil, nil
	case "LEAST_CONNECTIONS":
		return "lc", nil, nil
	case "SOURCE_IP":
		return "sh", nil, nil
	case "SOURCE_IP_PORT":
		return "sh", []string{"sh-port"}, nil
	}
	return "", nil, fmt.Errorf("lb_algorithm %q: want ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP or SOURCE_IP_PORT", alg)
}

// render writes spec as gvsd's YAML config and checks it with gvsd's own
// reader, so a config gvsd would refuse is never written.
func render(spec *lbaas.Spec, forwarding string) ([]byte, error) {
	f := yFile{Services: []yService{}}
	pools := map[string]*lbaas.PoolSpec{}
	for i := range spec.Pools {
		pools[spec.Pools[i].ID] = &spec.Pools[i]
	}
	if spec.AdminUp {
		for _, l := range spec.Listeners {
			if !l.AdminUp {
				continue
			}
			s, err := renderListener(spec, l, pools[l.DefaultPoolID], forwarding)
			if err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.ID, err)
			}
			f.Services = append(f.Services, s)
		}
	}
	b, err := yaml.Marshal(&f)
	if err != nil {
		return nil, err
	}
	b = append([]byte("# Written by gvs-lbaas for load balancer "+spec.ID+"; rewritten at each change.\n"), b...)
	if _, err := config.ParseConfig(b); err != nil {
		return nil, fmt.Errorf("rendered config refused: %w", err)
	}
	return b, nil
}

func addrPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a.Unmap(), port).String()
}

func renderListener(spec *lbaas.Spec, l lbaas.ListenerSpec, pool *lbaas.PoolSpec, forwarding string) (yService, error) {
	var s yService
	vip := addrPort(spec.VIP, l.ProtocolPort)
	switch strings.ToUpper(l.Protocol) {
	case "TCP":
		s.TCP = vip
	case "UDP":
		s.UDP = vip
	case "SCTP":
		s.SCTP = vip
	default:
		return s, fmt.Errorf("protocol %q: want TCP, UDP or SCTP", l.Protocol)
	}
	s.Servers = []yServer{}
	s.Scheduler = "wrr"
	if pool == nil || !pool.AdminUp {
		// No pool, or a disabled one: the service exists with no server.
		return s, nil
	}
	var err error
	if s.Scheduler, s.SchedFlags, err = scheduler(pool.LBAlgorithm); err != nil {
		return s, err
	}
	if sp := pool.SessionPersistence; sp != nil {
		if sp.Type != "SOURCE_IP" {
			return s, fmt.Errorf("session_persistence %q: only SOURCE_IP", sp.Type)
		}
		t := uint32(360)
		if sp.PersistenceTimeout > 0 {
			t = uint32(sp.PersistenceTimeout)
		}
		s.Persistent = &t
		if sp.PersistenceGranularity != "" {
			if s.Netmask, err = netmask(sp.PersistenceGranularity, spec.VIP.Unmap().Is6()); err != nil {
				return s, err
			}
		}
	}
	var in []lbaas.MemberSpec
	for _, m := range pool.Members {
		if m.AdminUp && !m.Backup {
			in = append(in, m)
		}
	}
	// connection_limit is the listener's; IPVS has per-server upper
	// thresholds: each server gets its share, rounded up.
	var uthr uint32
	if l.ConnectionLimit > 0 && len(in) > 0 {
		uthr = uint32((l.ConnectionLimit + len(in) - 1) / len(in))
	}
	hm := pool.HealthMonitor
	if hm != nil && !hm.AdminUp {
		hm = nil
	}
	fullnat := false
	for _, m := range in {
		method := memberMethod(spec, m, forwarding)
		fullnat = fullnat || method == "fullnat"
		srv := yServer{Address: addrPort(m.Address, m.ProtocolPort), Method: method, Weight: int32(m.Weight), UThreshold: uthr}
		if hm != nil && (m.MonitorAddress.IsValid() || m.MonitorPort != 0) {
			c, err := renderCheck(hm, m.MonitorAddress, m.MonitorPort)
			if err != nil {
				return s, err
			}
			srv.Check = []yCheck{c}
		}
		s.Servers = append(s.Servers, srv)
	}
	if hm != nil {
		c, err := renderCheck(hm, netip.Addr{}, 0)
		if err != nil {
			return s, err
		}
		s.Check = []yCheck{c}
	}
	// The first enabled backup member is the sorry server: served while
	// no live server is left (gvsd's health checks decide that, so a
	// sorry server needs a health monitor to come into play).
	for _, m := range pool.Members {
		if m.AdminUp && m.Backup {
			method := memberMethod(spec, m, forwarding)
			fullnat = fullnat || method == "fullnat"
			w := int32(m.Weight)
			if w == 0 {
				w = 1
			}
			s.Sorry = &ySorry{Address: addrPort(m.Address, m.ProtocolPort), Method: method, Weight: w}
			break
		}
	}
	if fullnat {
		s.LocalAddrs = []string{spec.VIP.Unmap().String()}
	}
	return s, nil
}

// netmask turns persistence_granularity (a netmask, "255.255.255.0" or
// "ffff:ffff:ffff:ffff::") into gvsd's netmask: the mask for IPv4, the
// prefix length for IPv6.
func netmask(g string, v6 bool) (string, error) {
	a, err := netip.ParseAddr(g)
	if err != nil {
		// A prefix length is taken too ("24", "/64").
		n, nerr := strconv.Atoi(strings.TrimPrefix(g, "/"))
		if nerr != nil {
			return "", fmt.Errorf("persistence_granularity %q: want a netmask", g)
		}
		if v6 {
			return strconv.Itoa(n), nil
		}
		if n < 0 || n > 32 {
			return "", fmt.Errorf("persistence_granularity %q: want a netmask", g)
		}
		m := uint32(0xffffffff) << (32 - n)
		if n == 0 {
			m = 0
		}
		return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String(), nil
	}
	a = a.Unmap()
	if !v6 {
		if !a.Is4() {
			return "", fmt.Errorf("persistence_granularity %q: want an IPv4 netmask", g)
		}
		return a.String(), nil
	}
	n := 0
	for _, b := range a.As16() {
		n += bits.OnesCount8(b)
	}
	if n == 0 {
		return "", fmt.Errorf("persistence_granularity %q: an empty IPv6 mask", g)
	}
	return strconv.Itoa(n), nil
}

func seconds(n int) string { return strconv.Itoa(n) }

// renderCheck maps a health monitor to a gvsd checker (docs/health.md).
// delay is delay_loop, timeout connect_timeout; max_retries_down (the
// failures that take a member down) is keepalived's retry + 1, retried
// delay apart; keepalived brings a server back at its first success, so
// max_retries (the successes that bring it back) has no counterpart.
func renderCheck(hm *lbaas.HealthMonitorSpec, addr netip.Addr, port uint16) (yCheck, error) {
	c := yCheck{ConnectPort: port}
	if addr.IsValid() {
		c.ConnectIP = addr.Unmap().String()
	}
	if hm.Delay > 0 {
		c.DelayLoop = seconds(hm.Delay)
		c.DelayBeforeRetry = seconds(hm.Delay)
	}
	if hm.Timeout > 0 {
		c.ConnectTimeout = seconds(hm.Timeout)
	}
	down := hm.MaxRetriesDown
	if down <= 0 {
		down = 3 // Octavia's default
	}
	r := down - 1
	c.Retry = &r
	switch strings.ToUpper(hm.Type) {
	case "TCP", "TLS-HELLO":
		// TLS-HELLO: a TCP connect; the handshake is not checked.
		c.Type = "TCP_CHECK"
	case "HTTP", "HTTPS":
		c.Type = "HTTP_GET"
		if strings.ToUpper(hm.Type) == "HTTPS" {
			c.Type = "SSL_GET"
		}
		path := hm.URLPath
		if path == "" {
			path = "/"
		}
		u := yURL{Path: path}
		codes := hm.ExpectedCodes
		if codes == "" {
			codes = "200"
		}
		for _, p := range strings.Split(codes, ",") {
			if p = strings.TrimSpace(p); p != "" {
				u.StatusCode = append(u.StatusCode, p)
			}
		}
		c.URLs = []yURL{u}
		switch hm.HTTPVersion {
		case "", "1.0":
		case "1.1":
			c.HTTPProtocol = "1.1"
		default:
			return c, fmt.Errorf("http_version %q: want 1.0 or 1.1", hm.HTTPVersion)
		}
		if hm.DomainName != "" {
			c.VirtualHost = hm.DomainName
			c.EnableSNI = c.Type == "SSL_GET"
			if c.HTTPProtocol == "" {
				c.HTTPProtocol = "1.1"
			}
		}
	case "UDP-CONNECT":
		c.Type = "UDP_CHECK"
	case "PING", "SCTP":
		// SCTP: gvsd has no SCTP checker; the member's host is pinged.
		c.Type = "PING_CHECK"
		c.ConnectPort = 0
	default:
		return c, fmt.Errorf("health monitor type %q: want TCP, HTTP, HTTPS, PING, TLS-HELLO, UDP-CONNECT or SCTP", hm.Type)
	}
	return c, nil
}
