package check

import (
	"fmt"
	"net/netip"
	"time"
)

// constructors holds each kind's constructor; each checker's file
// registers its own.
var constructors = map[Kind]func(Spec, Target) (Checker, error){}

func register(k Kind, f func(Spec, Target) (Checker, error)) { constructors[k] = f }

// New returns the checker spec describes for target, spec's defaults
// filled in (Defaults).
func New(spec Spec, t Target) (Checker, error) {
	f, ok := constructors[spec.Kind]
	if !ok {
		return nil, fmt.Errorf("checker %q: not supported", spec.Kind)
	}
	if spec.ViaVIP {
		if err := spec.viaVIPValid(); err != nil {
			return nil, err
		}
	}
	return f(spec.Defaults(), t)
}

// viaVIPValid refuses via_vip where it cannot apply: checkers that open
// no TCP or UDP connection, connect_ip (the check goes to the VIP), and
// bind_port (every server of a service would be checked from the same
// address and port to the same VIP:port, and the replies could not be
// told apart).
func (s Spec) viaVIPValid() error {
	switch s.Kind {
	case TCP, HTTP, SSL, SMTP, UDP, DNS:
	default:
		return fmt.Errorf("%s: via_vip applies to TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK, UDP_CHECK and DNS_CHECK", s.Kind)
	}
	if s.ConnectIP.IsValid() {
		return fmt.Errorf("%s: via_vip with connect_ip: the check goes to the VIP", s.Kind)
	}
	if s.BindPort != 0 {
		return fmt.Errorf("%s: via_vip with bind_port: the servers' replies from the VIP could not be told apart", s.Kind)
	}
	return nil
}

// keepalived's defaults.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultDelayLoop      = 60 * time.Second
)

// Defaults returns spec with keepalived's defaults in place of zero
// values (Warmup stays nil: "delay_loop").
func (s Spec) Defaults() Spec {
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.DelayLoop == 0 {
		s.DelayLoop = DefaultDelayLoop
	}
	if s.Retry == nil {
		n := 1
		switch s.Kind {
		case DNS:
			n = 3
		case Misc:
			n = 0
		}
		s.Retry = &n
	}
	if s.DelayBeforeRetry == 0 {
		switch s.Kind {
		case DNS:
			s.DelayBeforeRetry = s.DelayLoop
		case HTTP, SSL:
			s.DelayBeforeRetry = 3 * time.Second
		default:
			s.DelayBeforeRetry = time.Second
		}
	}
	switch s.Kind {
	case UDP:
		if s.UDP.MaxReplyLen == 0 {
			s.UDP.MaxReplyLen = 255
		}
	case DNS:
		if s.DNS.Type == "" {
			s.DNS.Type = "SOA"
		}
		if s.DNS.Name == "" {
			s.DNS.Name = "."
		}
	case HTTP, SSL:
		if s.HTTP.Protocol == "" {
			s.HTTP.Protocol = "1.0"
		}
	case File:
		if s.File.Weight == 0 {
			s.File.Weight = 1
		}
		// FILE_CHECK has none of the common options: keepalived watches
		// the file (inotify) and acts at once, with no retry. It is read
		// every second here.
		zero, retry := time.Duration(0), 0
		s.DelayLoop, s.Retry, s.Warmup, s.DelayBeforeRetry = time.Second, &retry, &zero, time.Second
	}
	return s
}

// Dest returns where a check of t goes: connect_ip and connect_port in
// place of the server's address and port.
func (s Spec) Dest(t Target) netip.AddrPort {
	a, p := t.Server.Addr(), t.Server.Port()
	if s.ConnectIP.IsValid() {
		a = s.ConnectIP
	}
	if s.ConnectPort != 0 {
		p = s.ConnectPort
	}
	return netip.AddrPortFrom(a, p)
}

// VIPDest is what the server sees as a via_vip check's destination: its
// service's virtual address, with connect_port, else the service's port,
// else (a port-0 service) the server's.
func (s Spec) VIPDest(t Target) netip.AddrPort {
	p := t.VIP.Port()
	if s.ConnectPort != 0 {
		p = s.ConnectPort
	}
	if p == 0 {
		p = t.Server.Port()
	}
	return netip.AddrPortFrom(t.VIP.Addr(), p)
}

// Describe says what a check of t looks at, for listings: the address
// and port it connects to, the command it runs or the file it reads.
func (s Spec) Describe(t Target) string {
	switch s.Kind {
	case Misc:
		return s.Misc.Path
	case File:
		return s.File.Path
	case Ping:
		return s.Dest(t).Addr().String()
	}
	if s.ViaVIP {
		return s.VIPDest(t).String() + " via " + s.Dest(t).Addr().String()
	}
	return s.Dest(t).String()
}
