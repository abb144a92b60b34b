package ipvssync

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

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"gvs/conn"
	"gvs/engine"
	"gvs/model"
)

// FlushTime is how long the master holds a message that is not full
// (IPVS_SYNC_FLUSH_TIME).
const FlushTime = 2 * time.Second

// DaemonConfig is a sync daemon's configuration: ipvsadm --start-daemon's
// options.
type DaemonConfig struct {
	State  string // "master" or "backup"
	Iface  string // --mcast-interface: where messages are sent or received
	SyncID uint8  // --syncid: the master's id; a backup's filter (0: any)
	// MaxLen is --sync-maxlen, the longest message (UDP payload). 0: the
	// kernel's default, 1500 minus the IP and UDP headers (1472 for an
	// IPv4 group, 1452 for IPv6). A backup reads messages of up to 64 KiB
	// whatever it is.
	MaxLen int
	Group  netip.Addr // --mcast-group (default 224.0.0.81)
	Port   uint16     // --mcast-port (default 8848)
	TTL    uint8      // --mcast-ttl (default 1)
	// Loopback has the master's messages looped back to this host's
	// sockets (the kernel turns it off; for tests on one host).
	Loopback bool
}

// withDefaults fills the defaults in and checks the rest, as
// start_sync_thread does.
func (c DaemonConfig) withDefaults() (DaemonConfig, error) {
	if c.State != "master" && c.State != "backup" {
		return c, fmt.Errorf("sync daemon state %q: master or backup", c.State)
	}
	if c.Iface == "" {
		return c, errors.New("the sync daemon needs a multicast interface")
	}
	if !c.Group.IsValid() {
		c.Group = DefaultGroup
	}
	c.Group = c.Group.Unmap()
	if !c.Group.IsMulticast() {
		return c, fmt.Errorf("%v is not a multicast group", c.Group)
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.TTL == 0 {
		c.TTL = 1
	}
	hlen := 20 + 8
	if c.Group.Is6() {
		hlen = 40 + 8
	}
	if c.MaxLen == 0 {
		c.MaxLen = 1500 - hlen
	}
	c.MaxLen = max(1, min(c.MaxLen, 65535-hlen))
	return c, nil
}

// Stats are a daemon's counters.
type Stats struct {
	State string
	// Master: messages and entries sent, and send errors.
	Sent, SentConns, SendErrors uint64
	// Backup: messages received; entries installed (new or updated),
	// and those the engine did not take (an unknown service or server,
	// persistence engine data, a full table); messages of another sync
	// id; receive errors.
	Received, Installed, NotInstalled, OtherSyncID, ReceiveErrors uint64
	// Decode is what the decoder saw and dropped, by reason.
	Decode Counts
}

// Add returns the sum of s's counters and o's (State is s's): the
// counts of daemons that came and went, kept monotonic.
func (s Stats) Add(o Stats) Stats {
	s.Sent += o.Sent
	s.SentConns += o.SentConns
	s.SendErrors += o.SendErrors
	s.Received += o.Received
	s.Installed += o.Installed
	s.NotInstalled += o.NotInstalled
	s.OtherSyncID += o.OtherSyncID
	s.ReceiveErrors += o.ReceiveErrors
	s.Decode.Messages += o.Decode.Messages
	s.Decode.Conns += o.Decode.Conns
	for i := range s.Decode.Dropped {
		s.Decode.Dropped[i] += o.Decode.Dropped[i]
	}
	return s
}

// Daemon is a running master or backup sync daemon.
type Daemon struct {
	cfg    DaemonConfig
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	conn   *net.UDPConn

	mu    sync.Mutex
	stats Stats
}

// Start starts a sync daemon: a master sends the engine's connection
// changes to cfg.Group, a backup installs what it receives in the
// engine. It stops when ctx is done or at Stop. eng is the engine whose
// connections are exported or installed (engine.Syncer): the proxy
// engine refuses with an error saying why.
func Start(ctx context.Context, cfg DaemonConfig, eng engine.Syncer, log *slog.Logger) (*Daemon, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return nil, fmt.Errorf("sync daemon: interface %s: %w", cfg.Iface, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &Daemon{cfg: cfg, log: log.With("sync", cfg.State), cancel: cancel, done: make(chan struct{}), stats: Stats{State: cfg.State}}
	if cfg.State == "master" {
		changes, err := eng.SyncChanges(ctx)
		if err != nil {
			cancel()
			return nil, err
		}
		if d.conn, err = sendSocket(cfg, ifi); err != nil {
			cancel()
			for range changes {
			}
			return nil, err
		}
		go d.master(ctx, changes)
	} else {
		if _, err := eng.InstallSynced(nil); err != nil {
			cancel()
			return nil, err
		}
		if d.conn, err = receiveSocket(cfg, ifi); err != nil {
			cancel()
			return nil, err
		}
		go d.backup(ctx, eng)
		go func() { <-ctx.Done(); d.conn.Close() }()
	}
	d.log.Info("sync daemon started", "interface", cfg.Iface, "syncid", cfg.SyncID, "group", cfg.Group, "port", cfg.Port, "maxlen", cfg.MaxLen)
	return d, nil
}

// Config is the daemon's configuration, defaults filled in.
func (d *Daemon) Config() DaemonConfig { return d.cfg }

// Stop stops the daemon; a master first sends what it holds.
func (d *Daemon) Stop() {
	d.cancel()
	<-d.done
}

// Stats returns the daemon's counters.
func (d *Daemon) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *Daemon) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// master batches changes into messages: one goes out when the next entry
// would not fit, or FlushTime after its first entry.
func (d *Daemon) master(ctx context.Context, changes <-chan []engine.SyncConn) {
	defer close(d.done)
	defer d.conn.Close()
	b := NewBuilder(d.cfg.SyncID, d.cfg.MaxLen)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	send := func() {
		if b.Len() == 0 {
			return
		}
		n := b.Len()
		_, err := d.conn.Write(b.Bytes())
		d.count(func(s *Stats) {
			if err != nil {
				s.SendErrors++
			} else {
				s.Sent++
				s.SentConns += uint64(n)
			}
		})
		if err != nil {
			d.log.Warn("sending a sync message", "err", err)
		}
		b.Reset()
		flush.Stop()
	}
	add := func(batch []engine.SyncConn) {
		for i := range batch {
			c := ToWire(&batch[i])
			if !b.Fits(&c) {
				send()
			}
			if err := b.Add(&c); err != nil {
				d.log.Warn("a connection the sync protocol cannot carry", "err", err)
				continue
			}
			if b.Len() == 1 {
				flush.Reset(FlushTime)
			}
		}
	}
	for {
		select {
		case batch, ok := <-changes:
			if !ok {
				send()
				return
			}
			add(batch)
		case <-flush.C:
			send()
		case <-ctx.Done():
			// What the engine hands over until it closes the channel
			// (its export stops with ctx) goes out too: a batch it had
			// already taken would be lost otherwise.
			for batch := range changes {
				add(batch)
			}
			send()
			return
		}
	}
}

func (d *Daemon) backup(ctx context.Context, eng engine.Syncer) {
	defer close(d.done)
	buf := make([]byte, 65536)
	var batch []engine.SyncConn
	for {
		n, err := d.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			d.count(func(s *Stats) { s.ReceiveErrors++ })
			continue
		}
		var counts Counts
		m, derr := Decode(buf[:n], &counts)
		// The kernel filters by sync id once the header is sound.
		var de *DecodeError
		headerBad := errors.As(derr, &de) && de.Entry < 0
		other := !headerBad && d.cfg.SyncID != 0 && m.SyncID != d.cfg.SyncID
		batch = batch[:0]
		skipped := 0
		if !other {
			for i := range m.Conns {
				if sc, ok := FromWire(&m.Conns[i]); ok {
					batch = append(batch, sc)
				} else {
					skipped++
				}
			}
		}
		installed := 0
		if len(batch) > 0 {
			installed, err = eng.InstallSynced(batch)
			if err != nil {
				d.log.Warn("installing synced connections", "err", err)
			}
		}
		d.count(func(s *Stats) {
			s.Received++
			if other {
				s.OtherSyncID++
				return
			}
			s.Decode.Messages += counts.Messages
			s.Decode.Conns += counts.Conns
			for r := range counts.Dropped {
				s.Decode.Dropped[r] += counts.Dropped[r]
			}
			s.Installed += uint64(installed)
			s.NotInstalled += uint64(len(batch) - installed + skipped)
		})
	}
}

// ToWire is an engine's entry as the protocol carries it.
func ToWire(sc *engine.SyncConn) Conn {
	c := Conn{
		Protocol: uint8(sc.Protocol),
		Flags:    uint32(sc.Method) & FwdMask,
		State:    uint16(sc.State),
		Client:   sc.Client,
		Virtual:  sc.Virtual,
		Dest:     sc.Dest,
		FWMark:   sc.FWMark,
		Timeout:  sc.Timeout,
		Local:    sc.Local,
	}
	if sc.Template {
		c.Flags |= FlagTemplate
		c.State = 0
	}
	if sc.Inactive {
		c.Flags |= FlagInactive
	}
	if sc.NoOutput {
		c.Flags |= FlagNoOutput
	}
	if sc.State == conn.StateUDP {
		c.State = 0 // IP_VS_UDP_S_NORMAL
	}
	return c
}

// FromWire is an entry for the engine, with the flags a backup takes
// (IP_VS_CONN_F_BACKUP_MASK); false for one it cannot take: persistence
// engine data (no engine here knows one).
func FromWire(c *Conn) (engine.SyncConn, bool) {
	if len(c.PEData) > 0 {
		return engine.SyncConn{}, false
	}
	f := c.Flags & BackupMask
	sc := engine.SyncConn{
		Protocol: model.Protocol(c.Protocol),
		Client:   c.Client,
		Virtual:  c.Virtual,
		Dest:     c.Dest,
		Local:    c.Local,
		Method:   model.Method(f & FwdMask),
		Template: f&FlagTemplate != 0,
		Inactive: f&FlagInactive != 0,
		NoOutput: f&FlagNoOutput != 0,
		State:    conn.State(c.State),
		Timeout:  c.Timeout,
		FWMark:   c.FWMark,
	}
	switch {
	case sc.Template && c.Protocol == protoUDP:
		sc.State = conn.StateUDP
	case sc.Template:
		sc.State = conn.None
	case c.Protocol != protoTCP:
		sc.State = conn.StateUDP
	}
	return sc, true
}

// sendSocket is make_send_sock: UDP from the interface's address to the
// group, multicast out of the interface with the TTL, no loopback, no
// path MTU discovery (messages may be fragmented).
func sendSocket(cfg DaemonConfig, ifi *net.Interface) (*net.UDPConn, error) {
	network := "udp4"
	var laddr *net.UDPAddr
	if cfg.Group.Is6() {
		network = "udp6"
	} else if a, ok := ifaceAddr4(ifi); ok {
		laddr = &net.UDPAddr{IP: a.AsSlice()}
	}
	c, err := net.DialUDP(network, laddr, net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Group, cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("sync master socket: %w", err)
	}
	if cfg.Group.Is6() {
		p := ipv6.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastHopLimit(int(cfg.TTL)), p.SetMulticastLoopback(cfg.Loopback),
			setsockopt(c, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT))
	} else {
		p := ipv4.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastTTL(int(cfg.TTL)), p.SetMulticastLoopback(cfg.Loopback),
			setsockopt(c, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("sync master socket: %w", err)
	}
	return c, nil
}

// receiveSocket is make_receive_sock: bound to the group and port
// (address reuse on), to the interface, and a member of the group there.
func receiveSocket(cfg DaemonConfig, ifi *net.Interface) (*net.UDPConn, error) {
	network := "udp4"
	if cfg.Group.Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
			}
		})
		return errors.Join(err, serr)
	}}
	addr := netip.AddrPortFrom(cfg.Group, cfg.Port).String()
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("sync backup socket: %w", err)
	}
	c := pc.(*net.UDPConn)
	group := &net.UDPAddr{IP: cfg.Group.AsSlice()}
	if cfg.Group.Is6() {
		err = ipv6.NewPacketConn(c).JoinGroup(ifi, group)
	} else {
		err = ipv4.NewPacketConn(c).JoinGroup(ifi, group)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("sync backup: joining %v on %s: %w", cfg.Group, ifi.Name, err)
	}
	return c, nil
}

func ifaceAddr4(ifi *net.Interface) (netip.Addr, bool) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

func setsockopt(c *net.UDPConn, level, opt, v int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) })
	return errors.Join(err, serr)
}
