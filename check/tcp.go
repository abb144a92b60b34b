package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

func init() { register(TCP, newTCP) }

// tcpChecker is TCP_CHECK: up when a connection opens.
type tcpChecker struct {
	spec Spec
	dest netip.AddrPort
}

func newTCP(s Spec, t Target) (Checker, error) {
	dest, err := tcpDest(s, t)
	if err != nil {
		return nil, err
	}
	return &tcpChecker{spec: s, dest: dest}, nil
}

// tcpDest is where a TCP-based check of t goes.
func tcpDest(s Spec, t Target) (netip.AddrPort, error) {
	d := s.Dest(t)
	if !d.Addr().IsValid() || d.Port() == 0 {
		return d, fmt.Errorf("%s: no address or port to connect to (%v)", s.Kind, d)
	}
	return d, nil
}

func (c *tcpChecker) Check(ctx context.Context) Result {
	// keepalived closes as soon as the connect completes, sending nothing.
	if err := connect(ctx, c.spec, c.dest); err != nil {
		return Result{Reason: tcpDialErrText(ctx, c.spec.ConnectTimeout, err)}
	}
	return Result{Up: true, Reason: "connected to " + c.dest.String()}
}

// tcpLongAgo is a deadline in the past: it ends pending I/O at once.
var tcpLongAgo = time.Unix(1, 0)

// tcpDial connects to dest as s says (bindto, bind_port, bind_if, fwmark)
// within connect_timeout, and gives the connection that same deadline, so
// that everything done on it fits in connect_timeout; ctx ending also ends
// pending I/O. release must be called once the connection is done with.
func tcpDial(ctx context.Context, s Spec, dest netip.AddrPort) (conn net.Conn, release func(), err error) {
	dctx, cancel := context.WithTimeout(ctx, s.ConnectTimeout)
	conn, err = s.Dialer("tcp").DialContext(dctx, "tcp", dest.String())
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if dl, ok := dctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(dctx, func() { conn.SetDeadline(tcpLongAgo) })
	return conn, func() { stop(); cancel() }, nil
}

// tcpIsTimeout tells a deadline's expiry from other errors.
func tcpIsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// tcpDialErrText says why a connect failed: "connect: connection
// refused", "bind: cannot assign requested address", "timeout after 5s
// connecting", "canceled while connecting".
func tcpDialErrText(ctx context.Context, timeout time.Duration, err error) string {
	if ctx.Err() != nil {
		return "canceled while connecting"
	}
	if tcpIsTimeout(err) {
		return fmt.Sprintf("timeout after %v connecting", timeout)
	}
	// net.OpError's own text repeats the addresses; its Err is the
	// system call and errno ("connect: connection refused").
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// tcpIOErrText says why I/O on a check's connection failed, doing being
// what the checker was at ("reading the response").
func tcpIOErrText(ctx context.Context, timeout time.Duration, doing string, err error) string {
	if ctx.Err() != nil {
		return "canceled while " + doing
	}
	if tcpIsTimeout(err) {
		return fmt.Sprintf("timeout after %v %s", timeout, doing)
	}
	if errors.Is(err, io.EOF) {
		return doing + ": connection closed"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return doing + ": connection closed midway"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return doing + ": " + errno.Error()
	}
	return doing + ": " + err.Error()
}
