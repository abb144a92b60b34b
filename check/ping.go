package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

func init() { register(Ping, newPing) }

// pingDataLen is the echo data keepalived sends (its ICMP_BUFSIZE).
const pingDataLen = 128

type pingChecker struct {
	spec Spec
	dst  netip.Addr
	id   uint16 // raw sockets only: a ping socket's ID is the kernel's
	seq  atomic.Uint32
}

func newPing(s Spec, t Target) (Checker, error) {
	dst := s.Dest(t).Addr().Unmap()
	if !dst.IsValid() {
		return nil, errors.New("PING_CHECK: no destination")
	}
	return &pingChecker{spec: s, dst: dst, id: uint16(rand.Uint32())}, nil
}

func (c *pingChecker) Check(ctx context.Context) Result {
	s := c.spec
	v4 := c.dst.Is4()
	conn, raw, err := c.open(ctx)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return Result{Reason: "no ICMP socket: " + err.Error()}
		}
		return Result{Reason: dgramReason(err)}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(s.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	seq := uint16(c.seq.Add(1))
	proto, typ, replyType := 1, icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply)
	if !v4 {
		proto, typ, replyType = 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(c.id), Seq: int(seq), Data: fillPayload(make([]byte, pingDataLen))}}
	// ICMPv6 checksums are the kernel's (it has the addresses); ICMPv4's
	// is computed here (a ping socket recomputes it anyway).
	b, err := m.Marshal(nil)
	if err != nil {
		return Result{Reason: err.Error()}
	}
	if _, err := conn.Write(b); err != nil {
		return Result{Reason: dgramReason(err)}
	}
	buf := make([]byte, 1500)
	for {
		n, err := readICMP(conn, buf)
		if err != nil {
			if ctx.Err() != nil {
				return Result{Reason: ctx.Err().Error()}
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return Result{Reason: fmt.Sprintf("no echo reply within %v", s.ConnectTimeout)}
			}
			return Result{Reason: dgramReason(err)}
		}
		rm, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch body := rm.Body.(type) {
		case *icmp.Echo:
			// A raw socket also sees our own request (when pinging a
			// local address) and other processes' echoes.
			if rm.Type == replyType && body.Seq == int(seq) && (!raw || body.ID == int(c.id)) {
				return Result{Up: true, Reason: "echo reply"}
			}
		case *icmp.DstUnreach:
			if raw && c.ours(body.Data, seq) {
				return Result{Reason: fmt.Sprintf("destination unreachable (code %d)", rm.Code)}
			}
		case *icmp.TimeExceeded:
			if raw && c.ours(body.Data, seq) {
				return Result{Reason: "time exceeded"}
			}
		}
	}
}

// ours tells whether an ICMP error quotes our echo request.
func (c *pingChecker) ours(quoted []byte, seq uint16) bool {
	hl := 40
	if c.dst.Is4() {
		if len(quoted) < 1 {
			return false
		}
		hl = int(quoted[0]&0x0f) * 4
	}
	if len(quoted) < hl+8 {
		return false
	}
	q := quoted[hl:]
	return binary.BigEndian.Uint16(q[4:]) == c.id && binary.BigEndian.Uint16(q[6:]) == seq
}

// readICMP reads one ICMP message; on a raw IPv4 socket ReadFrom (unlike
// Read) strips the IP header.
func readICMP(conn net.Conn, b []byte) (int, error) {
	if pc, ok := conn.(net.PacketConn); ok {
		n, _, err := pc.ReadFrom(b)
		return n, err
	}
	return conn.Read(b)
}

// open returns a socket connected to the destination: an unprivileged
// ping socket (SOCK_DGRAM, what keepalived uses: the kernel keeps other
// processes' echoes away) when net.ipv4.ping_group_range allows our
// group, else a raw one (raw true). Both honour bindto, bind_if and
// fwmark, and have IP_RECVERR set so ICMP errors fail the read.
func (c *pingChecker) open(ctx context.Context) (conn net.Conn, raw bool, err error) {
	s := c.spec
	conn, err = c.openDgram()
	if err == nil {
		return conn, false, nil
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EPROTONOSUPPORT) {
		return nil, false, err
	}
	network := "ip4:icmp"
	if !c.dst.Is4() {
		network = "ip6:ipv6-icmp"
	}
	d := s.Dialer(network)
	prev := d.Control
	d.Control = func(network, address string, rc syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, rc); err != nil {
				return err
			}
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = c.setRecvErr(int(fd)) }); err != nil {
			return err
		}
		return serr
	}
	conn, err = d.DialContext(ctx, network, c.dst.String())
	return conn, true, err
}

func (c *pingChecker) setRecvErr(fd int) error {
	if c.dst.Is4() {
		return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_RECVERR, 1)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
}

// openDgram makes the ping socket by hand: package net has no network
// name for it.
func (c *pingChecker) openDgram() (net.Conn, error) {
	s := c.spec
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if !c.dst.Is4() {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := c.setRecvErr(fd); err != nil {
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if s.BindIf != "" {
		if err := unix.BindToDevice(fd, s.BindIf); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if s.FWMark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(s.FWMark)); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if s.BindTo.IsValid() {
		sa, err := pingSockaddr(s.BindTo)
		if err != nil {
			return nil, err
		}
		if err := unix.Bind(fd, sa); err != nil {
			return nil, os.NewSyscallError("bind", err)
		}
	}
	sa, err := pingSockaddr(c.dst)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "ping")
	ok = true
	defer f.Close() // FileConn dups it
	return net.FileConn(f)
}

func pingSockaddr(a netip.Addr) (unix.Sockaddr, error) {
	a = a.Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}
