package model

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Protocol is an IP protocol number of a virtual service.
type Protocol uint8

// Protocols a virtual service can have. A firewall-mark service has no
// protocol of its own (ProtoNone): it matches whatever the mark matches.
const (
	ProtoNone Protocol = 0
	ProtoTCP  Protocol = 6
	ProtoUDP  Protocol = 17
	ProtoSCTP Protocol = 132
)

// String returns the name ipvsadm prints ("TCP", "UDP", "SCTP"), "IP" for a
// fwmark template's protocol.
func (p Protocol) String() string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	case ProtoNone:
		return "IP"
	}
	return strconv.Itoa(int(p))
}

// Family is an address family.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Method is a forwarding method ("LVS type").
type Method uint8

// Forwarding methods. The numeric values of the first four are the kernel's
// IP_VS_CONN_F_* forwarding codes; FullNAT has none in stock IPVS.
const (
	Masq    Method = 0 // NAT, ipvsadm -m
	Local   Method = 1 // the director itself (kernel internal)
	Tunnel  Method = 2 // IP-in-IP, ipvsadm -i
	Route   Method = 3 // direct routing, ipvsadm -g (the default)
	FullNAT Method = 5 // source and destination translated, --fullnat
)

// String returns the Forward column of ipvsadm -L.
func (m Method) String() string {
	switch m {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	case FullNAT:
		return "FullNat"
	}
	return "Unknown"
}

// MapsPorts reports whether the method rewrites the destination port, so a
// real server may listen on a port other than the virtual one.
func (m Method) MapsPorts() bool { return m == Masq || m == FullNAT }

// ServiceFlags are the IP_VS_SVC_F_* flags of a service, with the kernel's values.
type ServiceFlags uint32

// Service flags.
const (
	FlagPersistent ServiceFlags = 0x0001
	FlagHashed     ServiceFlags = 0x0002 // kernel-internal, never set by users
	FlagOnePacket  ServiceFlags = 0x0004
	FlagSched1     ServiceFlags = 0x0008
	FlagSched2     ServiceFlags = 0x0010
	FlagSched3     ServiceFlags = 0x0020

	FlagSHFallback = FlagSched1 // sh: fall back to another server
	FlagSHPort     = FlagSched2 // sh: hash the source port too
	FlagMHFallback = FlagSched1 // mh: fall back to another server
	FlagMHPort     = FlagSched2 // mh: hash the source port too
)

// Defaults and limits of the kernel and ipvsadm.
const (
	DefaultScheduler      = "wlc"
	DefaultPersistTimeout = 360 // what ipvsadm sets for -p without a value
	MaxPersistTimeout     = 31 * 24 * 60 * 60
	MaxWeight             = 1<<31 - 1
	ConnTableSize         = 4096 // the (size=) ipvsadm prints
	// MaxLocalAddrs bounds a service's FULLNAT local address pool: the
	// XDP data path keeps the pool in a fixed array of this size.
	MaxLocalAddrs = 16
	// MaxAllow bounds a service's source allow list (gvs's own, see
	// NormalizeAllow).
	MaxAllow = 1024
)

// Schedulers lists every scheduler the model implements, by the names
// ipvsadm uses.
var Schedulers = []string{
	"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq",
	"fo", "ovf", "mh", "twos",
}

// KnownScheduler reports whether name is a scheduler of Schedulers.
func KnownScheduler(name string) bool {
	for _, s := range Schedulers {
		if s == name {
			return true
		}
	}
	return false
}

// ServiceKey identifies a virtual service: protocol, address and port, or a
// firewall mark (with the family the mark applies to).
type ServiceKey struct {
	Protocol Protocol   `json:"protocol"`
	Addr     netip.Addr `json:"addr,omitzero"`
	Port     uint16     `json:"port"`
	FWMark   uint32     `json:"fwmark,omitempty"`
	Family   Family     `json:"family"`
}

// IsFWMark reports whether the service is a firewall-mark service.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// String is the key as ipvsadm writes it on its command line, e.g.
// "-t 198.18.0.1:80", "-u [2001:db8::1]:53", "-f 1".
func (k ServiceKey) String() string {
	if k.IsFWMark() {
		return fmt.Sprintf("-f %d", k.FWMark)
	}
	flag := map[Protocol]string{ProtoTCP: "-t", ProtoUDP: "-u", ProtoSCTP: "--sctp-service"}[k.Protocol]
	return flag + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Service is the configuration of a virtual service.
type Service struct {
	ServiceKey
	Scheduler string       `json:"scheduler"`
	Flags     ServiceFlags `json:"flags"`
	// Timeout is the persistence timeout in seconds (with FlagPersistent).
	Timeout uint32 `json:"timeout"`
	// Netmask groups clients for persistence: an IPv4 mask in host byte
	// order (0xffffffff = per client) or, for IPv6, a prefix length.
	Netmask uint32 `json:"netmask"`
	// Sloppy is gvs's per-service sloppy_tcp (the YAML config's sloppy:
	// key): whether a TCP connection may start on a packet other than a
	// SYN, so that a flow another director was serving (ECMP moved it)
	// is scheduled here and tracked. The default is on for mh, off for
	// the others.
	Sloppy Sloppy `json:"sloppy,omitempty"`
}

// Sloppy is a service's sloppy_tcp setting.
type Sloppy uint8

const (
	SloppyDefault Sloppy = iota // on for mh, off otherwise
	SloppyOn
	SloppyOff
)

// SloppyTCP says whether a TCP connection of the service may start on
// any packet but a RST (besides the sloppy_tcp sysctl, which does it for
// every service).
func (s Service) SloppyTCP() bool {
	switch s.Sloppy {
	case SloppyOn:
		return true
	case SloppyOff:
		return false
	}
	return s.Scheduler == "mh"
}

// Persistent reports whether the service has persistence.
func (s Service) Persistent() bool { return s.Flags&FlagPersistent != 0 }

// DefaultNetmask is the netmask the kernel uses when none is given.
func DefaultNetmask(f Family) uint32 {
	if f == IPv6 {
		return 128
	}
	return 0xffffffff
}

// Dest is the configuration of a destination (real server) of a service.
type Dest struct {
	Addr   netip.Addr `json:"addr"`
	Port   uint16     `json:"port"`
	Method Method     `json:"method"`
	Weight int32      `json:"weight"`
	// UThreshold and LThreshold are the upper and lower connection
	// thresholds (0 = none); see Server for the overload hysteresis.
	UThreshold uint32 `json:"u_threshold"`
	LThreshold uint32 `json:"l_threshold"`
}

// AddrPort returns the destination's address and port.
func (d Dest) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Timeouts are the connection timeouts ipvsadm --set changes, in seconds.
type Timeouts struct {
	TCP    uint32 `json:"tcp"`     // established TCP
	TCPFin uint32 `json:"tcp_fin"` // TCP after FIN (FIN_WAIT)
	UDP    uint32 `json:"udp"`
}

// DefaultTimeouts are the kernel's: tcp 900 s, tcpfin 120 s, udp 300 s.
var DefaultTimeouts = Timeouts{TCP: 900, TCPFin: 120, UDP: 300}
