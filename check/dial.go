package check

import (
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dialer returns a dialer for network ("tcp", "udp", "ip4:icmp", ...) that
// honours bindto, bind_port, bind_if and fwmark, with connect_timeout.
func (s Spec) Dialer(network string) *net.Dialer {
	// KeepAlive off: a check's connection lives for one exchange, and
	// the keepalive setsockopts cost a tenth of a TCP_CHECK's CPU.
	d := &net.Dialer{Timeout: s.ConnectTimeout, KeepAlive: -1}
	if s.BindTo.IsValid() || s.BindPort != 0 {
		ap := netip.AddrPortFrom(s.BindTo, s.BindPort)
		switch network {
		case "udp", "udp4", "udp6":
			d.LocalAddr = net.UDPAddrFromAddrPort(ap)
		case "tcp", "tcp4", "tcp6":
			d.LocalAddr = net.TCPAddrFromAddrPort(ap)
		default:
			d.LocalAddr = &net.IPAddr{IP: s.BindTo.AsSlice()}
		}
	}
	if s.BindIf != "" || s.FWMark != 0 || s.BindPort != 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if s.BindPort != 0 {
					// A fixed source port is reused check after check.
					if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
						return
					}
				}
				if s.BindIf != "" {
					if serr = unix.BindToDevice(int(fd), s.BindIf); serr != nil {
						return
					}
				}
				if s.FWMark != 0 {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(s.FWMark))
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}
