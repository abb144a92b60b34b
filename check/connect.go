package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// connect opens a TCP connection to dest as s says (bindto, bind_port,
// bind_if, fwmark) within connect_timeout, and closes it at once: all
// TCP_CHECK needs. It works on the socket directly rather than through
// net.Dialer, which would resolve the address, set TCP_NODELAY and build
// a net.Conn for a connection that carries nothing: about a fifth of a
// check's CPU at thousands of checks per second. The error says why the
// connect failed: a *os.SyscallError with the errno, or
// os.ErrDeadlineExceeded, or ctx's error.
func connect(ctx context.Context, s Spec, dest netip.AddrPort) error {
	dest = netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port())
	family := unix.AF_INET
	if dest.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	if err := s.prepare(fd, family); err != nil {
		unix.Close(fd)
		return err
	}
	err = unix.Connect(fd, sockaddr(dest))
	if err == nil {
		return os.NewSyscallError("close", unix.Close(fd))
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return os.NewSyscallError("connect", err)
	}
	// Wait for the outcome in Go's poller: os.NewFile takes a
	// non-blocking descriptor into it.
	f := os.NewFile(uintptr(fd), "tcp-check")
	defer f.Close()
	f.SetWriteDeadline(time.Now().Add(s.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var soErr error
	werr := rc.Write(func(fd uintptr) bool {
		// Called at once, then at each writability: a pending error
		// ends it, a peer name says connected, ENOTCONN still in
		// progress. (The poller forgets a readiness that came before
		// the wait, so the first call must look rather than wait.)
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			soErr = os.NewSyscallError("getsockopt", err)
		case v != 0:
			soErr = os.NewSyscallError("connect", unix.Errno(v))
		default:
			if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
				return false
			}
		}
		return true
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if werr != nil {
		return werr
	}
	return soErr
}

// prepare sets the options and the source address s asks for on a new
// socket.
func (s Spec) prepare(fd, family int) error {
	set := func(name string, opt, v int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, v); err != nil {
			return os.NewSyscallError("setsockopt "+name, err)
		}
		return nil
	}
	if s.BindPort != 0 {
		if err := set("SO_REUSEADDR", unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if s.BindIf != "" {
		if err := unix.BindToDevice(fd, s.BindIf); err != nil {
			return os.NewSyscallError("setsockopt SO_BINDTODEVICE", err)
		}
	}
	if s.FWMark != 0 {
		if err := set("SO_MARK", unix.SO_MARK, int(s.FWMark)); err != nil {
			return err
		}
	}
	if s.BindTo.IsValid() || s.BindPort != 0 {
		a := s.BindTo
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
			if family == unix.AF_INET6 {
				a = netip.IPv6Unspecified()
			}
		}
		if a.Unmap().Is4() != (family == unix.AF_INET) {
			return fmt.Errorf("bindto %s: not of the destination's family", a)
		}
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(a.Unmap(), s.BindPort))); err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	return nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}
