package model

import (
	"fmt"
	"net/netip"
	"slices"
)

// Validate checks a service as ipvsadm and the kernel do before adding or
// editing it. It does not check whether the service exists.
func (s Service) Validate() error {
	if s.IsFWMark() {
		if s.Protocol != ProtoNone || s.Addr.IsValid() || s.Port != 0 {
			return ErrInvalid
		}
		if s.Family != IPv4 && s.Family != IPv6 {
			return ErrAFNotSupported
		}
	} else {
		switch s.Protocol {
		case ProtoTCP, ProtoUDP, ProtoSCTP:
		default:
			return ErrProtoNotAvailable
		}
		if !s.Addr.IsValid() || s.Addr.Zone() != "" {
			return ErrInvalid
		}
		if s.Addr.Is4In6() || FamilyOf(s.Addr) != s.Family {
			return ErrAFNotSupported
		}
		if s.Port == 0 && !s.Persistent() {
			return Usage("Zero port specified for non-persistent service")
		}
	}
	if s.Flags&FlagOnePacket != 0 && !s.IsFWMark() && s.Protocol != ProtoUDP {
		return Usage("One-Packet Scheduling is only for UDP virtual services")
	}
	if s.Flags&^(FlagPersistent|FlagOnePacket|FlagSched1|FlagSched2|FlagSched3) != 0 {
		return ErrInvalid
	}
	if !KnownScheduler(s.Scheduler) {
		return ErrSchedulerNotFound
	}
	if s.Persistent() && (s.Timeout < 1 || s.Timeout > MaxPersistTimeout) {
		return Usage("illegal timeout for persistent service")
	}
	if s.Family == IPv6 && (s.Netmask < 1 || s.Netmask > 128) {
		return ErrInvalid
	}
	return nil
}

// Normalize fills in what ipvsadm fills in when the user leaves it out: the
// default scheduler, and the default netmask of a service without
// persistence. A persistent service's netmask is taken as given: for IPv4,
// 0 (0.0.0.0) sends every client to one server, as ipvsadm -M 0.0.0.0
// does; for IPv6 a prefix length of 0 is refused, as the kernel does.
func (s Service) Normalize() Service {
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	if s.Netmask == 0 && !s.Persistent() {
		s.Netmask = DefaultNetmask(s.Family)
	}
	if s.IsFWMark() {
		s.Protocol = ProtoNone
	}
	return s
}

// NormalizeDest applies ipvsadm's rule that direct routing and tunnelling
// cannot map ports: for a non-fwmark service their port is the service's.
func NormalizeDest(svc Service, d Dest) Dest {
	if !svc.IsFWMark() && !d.Method.MapsPorts() {
		d.Port = svc.Port
	}
	return d
}

// ValidateDest checks a destination for service svc as the kernel does
// before adding or editing it, in the kernel's order: the family (netlink
// parsing), then the numbers (ip_vs_add_dest), then the address
// (ip_vs_new_dest).
func ValidateDest(svc Service, d Dest) error {
	if !d.Addr.IsValid() || d.Addr.Zone() != "" || d.Addr.Is4In6() {
		return ErrInvalid
	}
	switch d.Method {
	case Masq, Route, Tunnel, FullNAT:
	default:
		return ErrInvalid
	}
	// Only tunnelling can carry one family inside the other, and
	// FULLNAT translate an IPv6 service's packets for an IPv4 server
	// (NAT64, as DPVS does): it owns both sides' addresses.
	if FamilyOf(d.Addr) != svc.Family && d.Method != Tunnel && !NAT64(svc, d) {
		return ErrInvalid
	}
	if d.Weight < 0 || d.LThreshold > d.UThreshold {
		return ErrRange
	}
	if !unicast(d.Addr) {
		return ErrInvalid
	}
	return nil
}

// NAT64 says whether d is an IPv4 FULLNAT server of IPv6 service svc.
func NAT64(svc Service, d Dest) bool {
	return svc.Family == IPv6 && d.Method == FullNAT && d.Addr.Is4()
}

// ValidateLocalAddr checks an address for the FULLNAT local address pool
// of service svc: a unicast address of the service's family (the source
// address of packets toward the real servers, which have that family),
// or an IPv4 one for an IPv6 service (the source toward its IPv4 servers,
// NAT64). A server uses the pool's addresses of its own family.
func ValidateLocalAddr(svc Service, a netip.Addr) error {
	if !a.IsValid() || a.Zone() != "" || a.Is4In6() || !unicast(a) {
		return ErrInvalid
	}
	if FamilyOf(a) != svc.Family && !(svc.Family == IPv6 && a.Is4()) {
		return ErrInvalid
	}
	return nil
}

// NormalizeAllow checks a source allow list for service svc and returns
// it in its one form: each prefix masked (198.18.0.7/24 is 198.18.0.0/24),
// sorted by address then length; nil for an empty list (no list: every
// source may connect). An entry must be a prefix of the service's family
// (an address is its /32 or /128); the same prefix twice, or more than
// MaxAllow entries, are refused. Errors name the entry and wrap
// ErrAllowInvalid, ErrAllowExists or ErrTooManyAllows.
func NormalizeAllow(svc Service, list []netip.Prefix) ([]netip.Prefix, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if len(list) > MaxAllow {
		return nil, fmt.Errorf("%d allow list entries: %w", len(list), ErrTooManyAllows)
	}
	out := make([]netip.Prefix, 0, len(list))
	seen := make(map[netip.Prefix]bool, len(list))
	for _, p := range list {
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() || FamilyOf(p.Addr()) != svc.Family {
			return nil, fmt.Errorf("allow entry %s: %w", p, ErrAllowInvalid)
		}
		m := p.Masked()
		if seen[m] {
			return nil, fmt.Errorf("allow entry %s: %w", p, ErrAllowExists)
		}
		seen[m] = true
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out, nil
}

// AllowListed reports whether allow list l (NormalizeAllow's form; nil:
// no list) lets a connect.
func AllowListed(l []netip.Prefix, a netip.Addr) bool {
	if l == nil {
		return true
	}
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func unicast(a netip.Addr) bool {
	if a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	return true
}
