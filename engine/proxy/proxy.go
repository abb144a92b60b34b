// Package proxy is the userspace engine: it accepts TCP connections and
// receives UDP datagrams on each virtual service's address and forwards
// them to the real server the IPVS model schedules, like a full-NAT
// director (the real server sees the director's address). It needs no
// privileges beyond binding the virtual address; firewall-mark services
// (see fwmark.go) need CAP_NET_ADMIN for their nftables steering,
// policy routes and transparent sockets. FULLNAT destinations of a
// service with a local address pool (DPVS ipvsadm -P) see the pool's
// addresses instead, in round robin per service; NAT (-m) ones do not.
// A service with a source allow list (engine.Rules.SetAllow) closes TCP
// connections from other sources as soon as it accepts them (a reset)
// and drops their datagrams, counting both (EvDenied); connections and
// flows made before go on.
//
// How the IPVS counters are derived at the socket level:
//   - Conns: one per accepted TCP connection or new UDP flow (the model's
//     scheduling, with persistence).
//   - TCP InPkts/OutPkts: segments received from / sent to the client, read
//     from the client socket's TCP_INFO (tcpi_segs_in, tcpi_segs_out).
//   - TCP InBytes/OutBytes: payload bytes (tcpi_bytes_received,
//     tcpi_bytes_sent) plus an IP and TCP header per segment (20 or 40
//     bytes of IP, 20 of TCP, 12 more with timestamps). SACK blocks and SYN
//     options are not seen, so bytes are a close lower bound.
//   - UDP: one packet per datagram, payload + 8 + IP header, exact.
//   - ActiveConn/InActConn and -Lc states: the socket events drive the
//     kernel's TCP state table as NAT would see them: accept is the
//     client's SYN, a connected upstream is the server's SYN+ACK and the
//     client's ACK, EOF from either side is that side's FIN, and once both
//     sides are closed the entry waits in TIME_WAIT (or CLOSE after a
//     reset) for its timeout, as in IPVS.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// DialTimeout bounds the connection to a real server.
const DialTimeout = 5 * time.Second

// udpReaders is the number of goroutines reading each UDP service socket,
// each up to udpBatch datagrams at a time (recvmmsg) into buffers of
// 64 KiB, the largest datagram: 1 MiB a socket.
const (
	udpReaders = 2
	udpBatch   = 8
)

// DefaultMaxUDPFlows bounds the UDP flows open at once: each holds a
// socket, a goroutine and a 64 KiB buffer for up to the UDP timeout.
const DefaultMaxUDPFlows = 65536

// Option configures New.
type Option func(*Engine)

// WithMaxUDPFlows bounds the UDP flows open at once, all services
// together (default DefaultMaxUDPFlows); a datagram whose flow would pass
// it is dropped and counted (EvUDPFlowLimit).
func WithMaxUDPFlows(n int) Option { return func(e *Engine) { e.maxFlows = n } }

// WithMaxUDPFlowsPerService bounds the UDP flows of each service too, so
// one busy service cannot take them all (default 0: no bound but the
// total).
func WithMaxUDPFlowsPerService(n int) Option { return func(e *Engine) { e.maxSvcFlows = n } }

// Engine is the proxy engine.
type Engine struct {
	*engine.Table
	log *slog.Logger

	mu        sync.Mutex
	listeners map[model.ServiceKey]listener
	tcpConns  map[*tcpConn]struct{}
	flows     map[*ipvs.Conn]*udpFlow
	svcFlows  map[netip.AddrPort]int // open flows by virtual address

	maxFlows, maxSvcFlows int
	fwmCfg                fwmConfig
	fw                    fwm
	ev                    events
	acceptLog, flowLog    sparseLog

	stop chan struct{}
	wg   sync.WaitGroup
}

type listener interface{ Close() error }

// New returns a running proxy engine with no services.
func New(log *slog.Logger, opts ...Option) *Engine {
	e := &Engine{
		Table:     engine.NewTable(ipvs.Options{}),
		log:       log,
		listeners: map[model.ServiceKey]listener{},
		tcpConns:  map[*tcpConn]struct{}{},
		flows:     map[*ipvs.Conn]*udpFlow{},
		svcFlows:  map[netip.AddrPort]int{},
		maxFlows:  DefaultMaxUDPFlows,
		stop:      make(chan struct{}),
	}
	for _, o := range opts {
		o(e)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.RunTimers(e.stop, e.afterExpiry)
	}()
	return e
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return "proxy" }

// AddService opens the service's listener after the model accepts it.
func (e *Engine) AddService(s model.Service) error {
	if s.IsFWMark() {
		return e.addFWMark(s)
	}
	if s.Protocol == model.ProtoSCTP {
		return engine.NotSupported("SCTP services are not supported by the proxy engine")
	}
	if s.Port == 0 {
		if err := s.Normalize().Validate(); err != nil {
			return err
		}
		return engine.NotSupported("port-zero (all ports) services need the xdp engine")
	}
	if err := e.Table.AddService(s); err != nil {
		return err
	}
	ln, err := e.listen(s.ServiceKey)
	if err != nil {
		_ = e.Table.DelService(s.ServiceKey)
		return &model.Error{Errno: syscall.EADDRNOTAVAIL, Msg: fmt.Sprintf("cannot listen on %s: %v", s.ServiceKey, err)}
	}
	e.mu.Lock()
	e.listeners[s.ServiceKey] = ln
	e.mu.Unlock()
	return nil
}

// DelService closes the listener; connections in progress go on.
func (e *Engine) DelService(k model.ServiceKey) error {
	if err := e.Table.DelService(k); err != nil {
		return err
	}
	if k.IsFWMark() {
		e.delFWMark(k)
		return nil
	}
	e.closeListener(k)
	return nil
}

// Flush deletes every service.
func (e *Engine) Flush() error {
	_ = e.Table.Flush()
	e.mu.Lock()
	keys := make([]model.ServiceKey, 0, len(e.listeners))
	for k := range e.listeners {
		keys = append(keys, k)
	}
	e.mu.Unlock()
	for _, k := range keys {
		e.closeListener(k)
	}
	for _, k := range e.fwmKeys() {
		e.delFWMark(k)
	}
	return nil
}

func (e *Engine) closeListener(k model.ServiceKey) {
	e.mu.Lock()
	ln := e.listeners[k]
	delete(e.listeners, k)
	e.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// AddDest accepts masquerading and FULLNAT destinations.
func (e *Engine) AddDest(k model.ServiceKey, d model.Dest) error {
	if err := checkMethod(d.Method); err != nil {
		return err
	}
	return e.Table.AddDest(k, d)
}

// EditDest accepts masquerading and FULLNAT destinations.
func (e *Engine) EditDest(k model.ServiceKey, d model.Dest) error {
	if err := checkMethod(d.Method); err != nil {
		return err
	}
	return e.Table.EditDest(k, d)
}

func checkMethod(m model.Method) error {
	switch m {
	case model.Masq, model.FullNAT:
		return nil
	case model.Route:
		return engine.NotSupported("direct routing (-g, the default method) needs the xdp engine; the proxy engine forwards with -m or --fullnat")
	case model.Tunnel:
		return engine.NotSupported("IP-in-IP tunnelling (-i) needs the xdp engine; the proxy engine forwards with -m or --fullnat")
	}
	return model.ErrInvalid
}

// Close stops every listener and connection.
func (e *Engine) Close() error {
	close(e.stop)
	e.Flush()
	e.mu.Lock()
	for c := range e.tcpConns {
		c.client.Close()
		if c.server != nil {
			c.server.Close()
		}
	}
	for _, f := range e.flows {
		f.upstream.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// freebind lets a listener bind a virtual address not (yet) configured on
// the host, as a director's VIP may be.
func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		if network == "tcp6" || network == "udp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		}
	})
	return errors.Join(err, serr)
}

// upstreamDialer dials a real server. With local, the connection's
// FULLNAT local address from its service's pool, the socket is bound to
// it (the kernel picks the port), with freebind as for virtual addresses:
// replies come back only when the address is the host's or routed to it.
func upstreamDialer(local netip.Addr, proto model.Protocol) net.Dialer {
	d := net.Dialer{Timeout: DialTimeout, KeepAlive: -1}
	if !local.IsValid() {
		return d
	}
	d.Control = freebind
	if proto == model.ProtoUDP {
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	} else {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	return d
}

func (e *Engine) listen(k model.ServiceKey) (listener, error) {
	// Keep-alive probes are the endpoints' business; setting them costs two
	// system calls per connection.
	lc := net.ListenConfig{Control: freebind, KeepAlive: -1}
	addr := netip.AddrPortFrom(k.Addr, k.Port).String()
	switch k.Protocol {
	case model.ProtoTCP:
		network := "tcp4"
		if k.Family == model.IPv6 {
			network = "tcp6"
		}
		ln, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			return nil, err
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.serveTCP(ln.(*net.TCPListener))
		}()
		return ln, nil
	case model.ProtoUDP:
		network := "udp4"
		if k.Family == model.IPv6 {
			network = "udp6"
		}
		c, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			return nil, err
		}
		pc, err := newSvcUDP(c.(*net.UDPConn), k.Family == model.IPv6)
		if err != nil {
			c.Close()
			return nil, err
		}
		// Several readers share the socket so one CPU's reads do not cap it.
		for range udpReaders {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.serveUDP(pc, netip.AddrPortFrom(k.Addr, k.Port))
			}()
		}
		return pc, nil
	}
	return nil, fmt.Errorf("protocol %s", k.Protocol)
}

// afterExpiry closes the UDP flows whose connection expired, and brings
// the TCP counters up to date before the estimator runs.
func (e *Engine) afterExpiry(v *ipvs.IPVS) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.Now()
	for c, f := range e.flows {
		if !v.Has(c) && now.After(f.until) {
			e.dropFlow(c)
			f.upstream.Close()
		}
	}
	for c := range e.tcpConns {
		c.account(v, now)
		// Idle past its timeout, as IPVS would have forgotten it: reset
		// both sides.
		if !v.Has(c.conn) {
			c.client.SetLinger(0)
			c.client.Close()
			if c.server != nil {
				c.server.SetLinger(0)
				c.server.Close()
			}
		}
	}
}

func ipHeader(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return 20
	}
	return 40
}

// SetSysctls implements control.SysctlSetter: the model the proxy runs
// honours expire_nodest_conn and expire_quiescent_template; the others
// are about packets the proxy never sees (it works on sockets).
func (e *Engine) SetSysctls(s model.Sysctls) error {
	e.Do(func(v *ipvs.IPVS) { v.SetSysctls(s) })
	return nil
}
