package proxy

// Firewall-mark services (ipvsadm -f MARK). The operator's netfilter
// rules mark packets; the proxy engine then needs them on its sockets
// with their original destination:
//
//   - each fwmark service has a TCP and a UDP transparent socket
//     (IP_TRANSPARENT) on a loopback address and a port the kernel picks;
//   - nftsteer rules in gvs's own table (inet "gvs", prerouting, priority
//     mangle+1) TPROXY packets with the service's mark to those sockets;
//   - a policy route delivers them locally: ip rule "fwmark MARK lookup
//     TABLE" and "local default dev lo table TABLE" (the mark is not
//     rewritten: the operator's mark is the service's).
//
// An accepted connection's local address is the packet's original
// destination, which the model schedules as the fwmark service's, so
// persistence templates are IPVS's (protocol IP, the mark in place of the
// virtual address, port 0): one client's port-80 and port-443
// connections go to one server. A datagram's original destination comes
// with IP_ORIGDSTADDR; replies leave from it through a transparent socket
// bound to it. Everything is removed when the last fwmark service goes,
// and at Close; the first fwmark service also removes what a gvsd killed
// before it could clean up left (rules of the route table and the
// nftables table, both gvs's own by name).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gvs/model"
	"gvs/nftsteer"
)

// Defaults of what fwmark services create (WithFWMark changes them).
const (
	DefaultNFTable      = "gvs"
	DefaultRouteTable   = 4747
	DefaultRulePriority = 4747
)

// WithFWMark names what fwmark services create: the nftables tables
// (nftsteer), the routing table of the local default routes and the
// priority of the ip rules that point marks at it.
func WithFWMark(nfTable string, routeTable, rulePriority int) Option {
	return func(e *Engine) {
		e.fwmCfg = fwmConfig{nfTable: nfTable, routeTable: routeTable, rulePriority: rulePriority}
	}
}

type fwmConfig struct {
	nfTable                  string
	routeTable, rulePriority int
}

// fwmService is one fwmark service's sockets.
type fwmService struct {
	key model.ServiceKey
	tcp *net.TCPListener
	udp *net.UDPConn

	mu      sync.Mutex
	replies map[netip.AddrPort]*net.UDPConn // by original destination
	closed  bool
}

// fwm is the engine's fwmark state; fwm.mu orders changes to the
// system's rules (the control core serialises commands already).
type fwm struct {
	mu       sync.Mutex
	services map[model.ServiceKey]*fwmService
	table    *nftsteer.Table
	cleaned  bool // stale rules removed once
	rules    map[fwmRule]bool
	routes   map[model.Family]bool
}

type fwmRule struct {
	mark   uint32
	family model.Family
}

func (e *Engine) fwmConf() fwmConfig {
	c := e.fwmCfg
	if c.nfTable == "" {
		c.nfTable = DefaultNFTable
	}
	if c.routeTable == 0 {
		c.routeTable = DefaultRouteTable
	}
	if c.rulePriority == 0 {
		c.rulePriority = DefaultRulePriority
	}
	return c
}

// addFWMark opens the service's transparent sockets and steers its mark
// to them. On error nothing is left (the model's service included).
func (e *Engine) addFWMark(s model.Service) error {
	if err := e.Table.AddService(s); err != nil {
		return err
	}
	fs, err := openFWMark(s.ServiceKey)
	if err != nil {
		_ = e.Table.DelService(s.ServiceKey)
		return &model.Error{Errno: syscall.EPERM, Msg: fmt.Sprintf("%s: transparent sockets (CAP_NET_ADMIN needed): %v", s.ServiceKey, err)}
	}
	e.fw.mu.Lock()
	defer e.fw.mu.Unlock()
	if e.fw.services == nil {
		e.fw.services = map[model.ServiceKey]*fwmService{}
	}
	e.fw.services[s.ServiceKey] = fs
	if err := e.applyFWMark(); err != nil {
		delete(e.fw.services, s.ServiceKey)
		_ = e.applyFWMark()
		fs.close()
		_ = e.Table.DelService(s.ServiceKey)
		return &model.Error{Errno: syscall.EPERM, Msg: fmt.Sprintf("%s: steering the mark: %v", s.ServiceKey, err)}
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.serveTCPMark(fs.tcp, s.FWMark)
	}()
	go func() {
		defer e.wg.Done()
		e.serveFWMarkUDP(fs)
	}()
	return nil
}

// delFWMark closes the service's sockets and removes its steering.
func (e *Engine) delFWMark(k model.ServiceKey) {
	e.fw.mu.Lock()
	defer e.fw.mu.Unlock()
	fs := e.fw.services[k]
	if fs == nil {
		return
	}
	delete(e.fw.services, k)
	if err := e.applyFWMark(); err != nil {
		e.log.Warn("fwmark: removing steering", "service", k, "err", err)
	}
	fs.close()
}

// fwmKeys returns the fwmark services' keys.
func (e *Engine) fwmKeys() []model.ServiceKey {
	e.fw.mu.Lock()
	defer e.fw.mu.Unlock()
	var out []model.ServiceKey
	for k := range e.fw.services {
		out = append(out, k)
	}
	return out
}

// applyFWMark makes the nftables rules, ip rules and local routes those of
// the current fwmark services; with none, it removes them all. fw.mu is
// held.
func (e *Engine) applyFWMark() error {
	cfg := e.fwmConf()
	if e.fw.table == nil {
		t, err := nftsteer.New(cfg.nfTable)
		if err != nil {
			return err
		}
		e.fw.table = t
		e.fw.rules = map[fwmRule]bool{}
		e.fw.routes = map[model.Family]bool{}
	}
	if !e.fw.cleaned && len(e.fw.services) > 0 {
		if err := e.removeStale(cfg); err != nil {
			return err
		}
		e.fw.cleaned = true
	}
	var rules []nftsteer.Rule
	wantRules := map[fwmRule]bool{}
	wantRoutes := map[model.Family]bool{}
	keys := make([]model.ServiceKey, 0, len(e.fw.services))
	for k := range e.fw.services {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b model.ServiceKey) int {
		if a.FWMark != b.FWMark {
			return int(a.FWMark) - int(b.FWMark)
		}
		return int(a.Family) - int(b.Family)
	})
	for _, k := range keys {
		fs := e.fw.services[k]
		fam, lo := nftsteer.IPv4, netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if k.Family == model.IPv6 {
			fam, lo = nftsteer.IPv6, netip.IPv6Loopback()
		}
		rules = append(rules,
			nftsteer.Rule{Mark: k.FWMark, Family: fam, Proto: nftsteer.TCP, TProxy: &nftsteer.TProxy{Port: addrPort(fs.tcp.Addr()).Port(), Addr: lo}},
			nftsteer.Rule{Mark: k.FWMark, Family: fam, Proto: nftsteer.UDP, TProxy: &nftsteer.TProxy{Port: addrPort(fs.udp.LocalAddr()).Port(), Addr: lo}})
		wantRules[fwmRule{k.FWMark, k.Family}] = true
		wantRoutes[k.Family] = true
	}
	// Routes and rules first, so that steered packets are delivered from
	// the moment the nftables rules exist; removed after them.
	var errs []error
	for f := range wantRoutes {
		if !e.fw.routes[f] {
			if err := localRoute(cfg, f, true); err != nil {
				return err
			}
			e.fw.routes[f] = true
		}
	}
	for r := range wantRules {
		if !e.fw.rules[r] {
			if err := markRule(cfg, r, true); err != nil {
				return err
			}
			e.fw.rules[r] = true
		}
	}
	if len(rules) > 0 {
		if err := e.fw.table.Sync(rules); err != nil {
			return err
		}
	} else if err := e.fw.table.Remove(); err != nil {
		errs = append(errs, err)
	}
	for r := range e.fw.rules {
		if !wantRules[r] {
			if err := markRule(cfg, r, false); err != nil {
				errs = append(errs, err)
			}
			delete(e.fw.rules, r)
		}
	}
	for f := range e.fw.routes {
		if !wantRoutes[f] {
			if err := localRoute(cfg, f, false); err != nil {
				errs = append(errs, err)
			}
			delete(e.fw.routes, f)
		}
	}
	return errors.Join(errs...)
}

func nlFamily(f model.Family) int {
	if f == model.IPv6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// markRule adds or deletes "ip rule fwmark MARK/0xffffffff lookup TABLE".
func markRule(cfg fwmConfig, r fwmRule, add bool) error {
	nr := netlink.NewRule()
	nr.Family = nlFamily(r.family)
	nr.Mark = r.mark
	mask := uint32(0xffffffff)
	nr.Mask = &mask
	nr.Table = cfg.routeTable
	nr.Priority = cfg.rulePriority
	if add {
		if err := netlink.RuleAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("ip rule add fwmark %d lookup %d: %w", r.mark, cfg.routeTable, err)
		}
		return nil
	}
	if err := netlink.RuleDel(nr); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("ip rule del fwmark %d lookup %d: %w", r.mark, cfg.routeTable, err)
	}
	return nil
}

// localRoute adds or deletes "local default dev lo table TABLE".
func localRoute(cfg fwmConfig, f model.Family, add bool) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if f == model.IPv6 {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	rt := &netlink.Route{
		LinkIndex: lo.Attrs().Index, Table: cfg.routeTable, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST,
		Dst:    &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(0, dst.Addr().BitLen())},
		Family: nlFamily(f),
	}
	if add {
		if err := netlink.RouteReplace(rt); err != nil {
			return fmt.Errorf("ip route replace local %s dev lo table %d: %w", dst, cfg.routeTable, err)
		}
		return nil
	}
	if err := netlink.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("ip route del local %s dev lo table %d: %w", dst, cfg.routeTable, err)
	}
	return nil
}

// removeStale deletes what a gvsd that died without cleaning up left:
// the ip rules and routes of gvs's route table, and its nftables table.
func (e *Engine) removeStale(cfg fwmConfig) error {
	var errs []error
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := netlink.RuleList(fam)
		if err != nil {
			errs = append(errs, fmt.Errorf("ip rule list: %w", err))
			continue
		}
		for _, r := range rules {
			if r.Table == cfg.routeTable {
				if err := netlink.RuleDel(&r); err != nil {
					errs = append(errs, fmt.Errorf("ip rule del: %w", err))
				}
			}
		}
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: cfg.routeTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("ip route list table %d: %w", cfg.routeTable, err))
			continue
		}
		for _, rt := range routes {
			if err := netlink.RouteDel(&rt); err != nil {
				errs = append(errs, fmt.Errorf("ip route del: %w", err))
			}
		}
	}
	if err := e.fw.table.Remove(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// transparent sets IP_TRANSPARENT (and, for UDP, IP_RECVORIGDSTADDR) and
// SO_REUSEADDR on a socket.
func transparent(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		v6 := network == "tcp6" || network == "udp6"
		udp := network == "udp4" || network == "udp6"
		set := func(level, opt int) {
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), level, opt, 1)
			}
		}
		set(unix.SOL_SOCKET, unix.SO_REUSEADDR)
		if v6 {
			set(unix.SOL_IPV6, unix.IPV6_TRANSPARENT)
			if udp {
				set(unix.SOL_IPV6, unix.IPV6_RECVORIGDSTADDR)
			}
		} else {
			set(unix.SOL_IP, unix.IP_TRANSPARENT)
			if udp {
				set(unix.SOL_IP, unix.IP_RECVORIGDSTADDR)
			}
		}
	})
	return errors.Join(err, serr)
}

// openFWMark opens a service's transparent listeners on the loopback
// address of its family, on ports the kernel picks.
func openFWMark(k model.ServiceKey) (*fwmService, error) {
	lc := net.ListenConfig{Control: transparent, KeepAlive: -1}
	tcpNet, udpNet, addr := "tcp4", "udp4", "127.0.0.1:0"
	if k.Family == model.IPv6 {
		tcpNet, udpNet, addr = "tcp6", "udp6", "[::1]:0"
	}
	ln, err := lc.Listen(context.Background(), tcpNet, addr)
	if err != nil {
		return nil, err
	}
	pc, err := lc.ListenPacket(context.Background(), udpNet, addr)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &fwmService{key: k, tcp: ln.(*net.TCPListener), udp: pc.(*net.UDPConn), replies: map[netip.AddrPort]*net.UDPConn{}}, nil
}

func (fs *fwmService) close() {
	fs.tcp.Close()
	fs.udp.Close()
	fs.mu.Lock()
	fs.closed = true
	for _, c := range fs.replies {
		c.Close()
	}
	fs.replies = nil
	fs.mu.Unlock()
}

// maxReplySockets bounds a fwmark service's UDP reply sockets (one per
// virtual address and port its clients sent to; they live as long as the
// service).
const maxReplySockets = 4096

// replySocket returns the socket that sends replies from virtual address
// vip: transparent, bound to vip, never connected (so the kernel's tproxy
// lookup, which takes connected sockets only, never hands it packets).
func (fs *fwmService) replySocket(vip netip.AddrPort) (*net.UDPConn, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return nil, net.ErrClosed
	}
	if c := fs.replies[vip]; c != nil {
		return c, nil
	}
	if len(fs.replies) >= maxReplySockets {
		return nil, fmt.Errorf("%d virtual addresses answered already: limit reached", len(fs.replies))
	}
	network := "udp4"
	if vip.Addr().Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: transparent}
	pc, err := lc.ListenPacket(context.Background(), network, vip.String())
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	fs.replies[vip] = c
	return c, nil
}

// serveFWMarkUDP reads the datagrams steered to a fwmark service with
// their original destinations.
func (e *Engine) serveFWMarkUDP(fs *fwmService) {
	buf := make([]byte, 64*1024)
	oob := make([]byte, 256)
	self := addrPort(fs.udp.LocalAddr())
	for {
		n, oobn, _, src, err := fs.udp.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		dst, ok := origDst(oob[:oobn])
		if !ok || dst == self {
			continue // not steered: sent to the listener itself
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		rs, err := fs.replySocket(dst)
		if err != nil {
			e.ev.udpUpstreamError.Add(1)
			e.flowLog.warn(e.log, "fwmark udp reply socket", "vip", dst, "err", err)
			continue
		}
		e.udpIn(buf[:n], src, dst, fs.key.FWMark, rs)
	}
}

// origDst reads IP_ORIGDSTADDR / IPV6_ORIGDSTADDR from control messages.
func origDst(oob []byte) (netip.AddrPort, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for _, m := range msgs {
		d := m.Data
		switch {
		case m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_ORIGDSTADDR && len(d) >= 8:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(d[4:8])), binary.BigEndian.Uint16(d[2:4])), true
		case m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_ORIGDSTADDR && len(d) >= 24:
			a := netip.AddrFrom16([16]byte(d[8:24])).Unmap()
			return netip.AddrPortFrom(a, binary.BigEndian.Uint16(d[2:4])), true
		}
	}
	return netip.AddrPort{}, false
}
