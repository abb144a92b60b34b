package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() { register(UDP, newUDP) }

// udpDefaultPayloadLen is the size of what keepalived sends when no
// payload is configured (its UDP_BUFSIZE).
const udpDefaultPayloadLen = 32

type udpChecker struct {
	spec    Spec
	t       Target
	payload []byte
}

func newUDP(s Spec, t Target) (Checker, error) {
	u := s.UDP
	if u.MinReplyLen < 0 || u.MaxReplyLen < 0 || u.MaxReplyLen > 65535 {
		return nil, fmt.Errorf("UDP_CHECK: reply length bounds %d-%d out of range", u.MinReplyLen, u.MaxReplyLen)
	}
	if u.ReplyMask != nil && len(u.ReplyMask) != len(u.ReplyPattern) {
		return nil, fmt.Errorf("UDP_CHECK: reply mask of %d bytes for a pattern of %d", len(u.ReplyMask), len(u.ReplyPattern))
	}
	if !s.Dest(t).IsValid() {
		return nil, errors.New("UDP_CHECK: no destination")
	}
	p := u.Payload
	if p == nil {
		p = fillPayload(make([]byte, udpDefaultPayloadLen))
	}
	return &udpChecker{spec: s, t: t, payload: p}, nil
}

func (c *udpChecker) Check(ctx context.Context) Result {
	s := c.spec
	dst := s.Dest(c.t)
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	v4 := dst.Addr().Unmap().Is4()
	d := s.Dialer("udp")
	// IP_RECVERR makes host and net unreachable errors reach the socket
	// too (without it a connected socket only sees port unreachable), as
	// keepalived sets it.
	prev := d.Control
	d.Control = func(network, address string, rc syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, rc); err != nil {
				return err
			}
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			if v4 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	network := "udp6"
	if v4 {
		network = "udp4"
	}
	conn, err := d.DialContext(ctx, network, dst.String())
	if err != nil {
		return Result{Reason: dgramReason(err)}
	}
	defer conn.Close()
	deadline := time.Now().Add(s.ConnectTimeout)
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	if _, err := conn.Write(c.payload); err != nil {
		return Result{Reason: dgramReason(err)}
	}
	u := s.UDP
	// One byte more than the maximum tells a too long reply.
	buf := make([]byte, u.MaxReplyLen+1)
	n, err := conn.Read(buf)
	if err != nil {
		if ctx.Err() != nil {
			return Result{Reason: ctx.Err().Error()}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if u.RequireReply {
				return Result{Reason: fmt.Sprintf("no reply within %v", s.ConnectTimeout)}
			}
			// keepalived: silence is success unless a reply is required.
			return Result{Up: true, Reason: fmt.Sprintf("no ICMP error within %v", s.ConnectTimeout)}
		}
		return Result{Reason: dgramReason(err)}
	}
	if !u.RequireReply {
		return Result{Up: true, Reason: fmt.Sprintf("reply of %d bytes", n)}
	}
	if n < u.MinReplyLen || n > u.MaxReplyLen {
		got := fmt.Sprintf("%d", n)
		if n > u.MaxReplyLen {
			got = fmt.Sprintf("more than %d", u.MaxReplyLen)
		}
		return Result{Reason: fmt.Sprintf("reply of %s bytes, want %d-%d", got, u.MinReplyLen, u.MaxReplyLen)}
	}
	if i := udpMismatch(buf[:n], u.ReplyPattern, u.ReplyMask); i >= 0 {
		return Result{Reason: fmt.Sprintf("reply does not match at byte %d", i)}
	}
	return Result{Up: true, Reason: fmt.Sprintf("reply of %d bytes", n)}
}

// udpMismatch returns the index of the first byte of got that differs from
// pattern in a bit set in mask (all bits when mask is nil), comparing
// the shorter of the two lengths as keepalived does; -1 if none.
func udpMismatch(got, pattern, mask []byte) int {
	for i := 0; i < len(got) && i < len(pattern); i++ {
		m := byte(0xff)
		if mask != nil {
			m = mask[i]
		}
		if (got[i]^pattern[i])&m != 0 {
			return i
		}
	}
	return -1
}

// dgramReason words a socket error for the log: the ICMP errors by name.
func dgramReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ECONNREFUSED:
			return "port unreachable"
		case unix.EHOSTUNREACH:
			return "host unreachable"
		case unix.ENETUNREACH:
			return "network unreachable"
		case unix.ENOPROTOOPT:
			return "protocol unreachable"
		}
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "timeout"
	}
	return err.Error()
}
