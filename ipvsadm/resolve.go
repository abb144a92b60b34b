package ipvsadm

import (
	"net/netip"
	"strconv"
	"strings"

	"gvs/model"
)

// Resolver answers the name look-ups ipvsadm makes through the C library:
// gethostbyname (IPv4 only), getservbyname, gethostbyaddr and
// getservbyport. The parser and the formatters do no I/O themselves; a
// caller that wants DNS passes a Resolver that does it.
type Resolver interface {
	// LookupHost is gethostbyname: the IPv4 address of a host name.
	LookupHost(name string) (netip.Addr, bool)
	// LookupPort is getservbyname: the port of a service name for TCP,
	// UDP or SCTP (any other protocol has no names).
	LookupPort(name string, proto model.Protocol) (uint16, bool)
	// HostName is gethostbyaddr: the name of an address.
	HostName(a netip.Addr) (string, bool)
	// PortName is getservbyport: the service name of a port.
	PortName(port uint16, proto model.Protocol) (string, bool)
}

// Builtin is the Resolver used when none is given: the service names of
// Debian's /etc/services, the host name "localhost" (127.0.0.1), and no
// DNS (addresses print numerically).
var Builtin Resolver = builtin{}

type builtin struct{}

type servEntry struct {
	names []string // official name first, then aliases
	port  uint16
	proto string
}

var services = func() []servEntry {
	var out []servEntry
	for _, line := range strings.Split(servicesTable, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		portStr, proto, ok := strings.Cut(f[1], "/")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			continue
		}
		names := append([]string{f[0]}, f[2:]...)
		out = append(out, servEntry{names: names, port: uint16(port), proto: proto})
	}
	return out
}()

func protoName(p model.Protocol) string {
	switch p {
	case model.ProtoTCP:
		return "tcp"
	case model.ProtoUDP:
		return "udp"
	case model.ProtoSCTP:
		return "sctp"
	}
	return ""
}

func (builtin) LookupHost(name string) (netip.Addr, bool) {
	if name == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	return netip.Addr{}, false
}

func (builtin) LookupPort(name string, proto model.Protocol) (uint16, bool) {
	pn := protoName(proto)
	if pn == "" {
		return 0, false
	}
	for _, e := range services {
		if e.proto != pn {
			continue
		}
		for _, n := range e.names {
			if n == name {
				return e.port, true
			}
		}
	}
	return 0, false
}

func (builtin) HostName(netip.Addr) (string, bool) { return "", false }

func (builtin) PortName(port uint16, proto model.Protocol) (string, bool) {
	pn := protoName(proto)
	if pn == "" {
		return "", false
	}
	for _, e := range services {
		if e.proto == pn && e.port == port {
			return e.names[0], true
		}
	}
	return "", false
}
