// Package bgp announces gvsd's service addresses over BGP: an embedded
// GoBGP speaker (github.com/osrg/gobgp/v4, as a library, no gRPC) peers
// with the routers in front of the directors and announces each VIP as a
// host route (/32, /128) while a service of that VIP has a healthy
// server (its quorum, with health checks: health.Manager.ServiceUp), and
// withdraws it when none has, in maintenance (after a drain period
// announced with the GRACEFUL_SHUTDOWN community) and at shutdown. With
// several directors announcing the same VIP the routers spread flows with
// ECMP; see docs/bgp.md.
package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Config is the bgp: section of gvsd's YAML config.
type Config struct {
	// ASN is the directors' AS number.
	ASN uint32 `yaml:"asn"`
	// RouterID is the BGP identifier, an IPv4 address.
	RouterID string `yaml:"router_id"`
	// ListenPort is the TCP port the speaker accepts sessions on; 0 (the
	// default) or -1: none, the speaker only connects to its peers.
	ListenPort int32 `yaml:"listen_port"`
	// Peers are the routers.
	Peers []Peer `yaml:"peers"`
	// Communities, MED and LocalPref go with every VIP's announcement
	// that VIPs does not give its own. Communities are "ASN:VALUE", a
	// number, or a well-known name (no-export, no-advertise,
	// no-export-subconfed, graceful-shutdown, blackhole).
	Communities []string `yaml:"communities"`
	MED         *uint32  `yaml:"med"`
	LocalPref   *uint32  `yaml:"local_pref"`
	// VIPs are per-address attributes.
	VIPs []VIP `yaml:"vips"`
}

// Peer is one BGP neighbour.
type Peer struct {
	Address string `yaml:"address"`
	ASN     uint32 `yaml:"asn"`
	// Password is the TCP MD5 signature key (RFC 2385); "": none.
	Password string `yaml:"password"`
	// HoldTime and Keepalive are in seconds: 0, the defaults 90 and 30.
	HoldTime  uint32 `yaml:"hold_time"`
	Keepalive uint32 `yaml:"keepalive"`
	// Multihop is the TTL of an eBGP session to a router that is not
	// directly connected; 0: directly connected.
	Multihop uint32 `yaml:"multihop"`
	// Port is the peer's BGP port; 0: 179.
	Port uint16 `yaml:"port"`
	// ConnectRetry is the seconds between connection attempts; 0: 5.
	ConnectRetry uint32 `yaml:"connect_retry"`
}

// VIP is the announcement attributes of one service address.
type VIP struct {
	Address     string   `yaml:"address"`
	Communities []string `yaml:"communities"`
	MED         *uint32  `yaml:"med"`
	LocalPref   *uint32  `yaml:"local_pref"`
}

// Community values (RFC 1997, RFC 8326, RFC 7999).
const (
	CommunityGracefulShutdown  = 0xFFFF0000
	CommunityBlackhole         = 0xFFFF029A
	CommunityNoExport          = 0xFFFFFF01
	CommunityNoAdvertise       = 0xFFFFFF02
	CommunityNoExportSubconfed = 0xFFFFFF03
)

var wellKnown = map[string]uint32{
	"graceful-shutdown":   CommunityGracefulShutdown,
	"blackhole":           CommunityBlackhole,
	"no-export":           CommunityNoExport,
	"no-advertise":        CommunityNoAdvertise,
	"no-export-subconfed": CommunityNoExportSubconfed,
}

// ParseCommunity reads "ASN:VALUE" (each 0-65535), a number, or a
// well-known name.
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnown[strings.ToLower(s)]; ok {
		return v, nil
	}
	if a, b, ok := strings.Cut(s, ":"); ok {
		x, err1 := strconv.ParseUint(a, 10, 16)
		y, err2 := strconv.ParseUint(b, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("community %q: want ASN:VALUE, each 0 to 65535", s)
		}
		return uint32(x)<<16 | uint32(y), nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("community %q: want ASN:VALUE, a number or a well-known name", s)
	}
	return uint32(v), nil
}

// FormatCommunity is ParseCommunity's inverse ("ASN:VALUE").
func FormatCommunity(v uint32) string { return fmt.Sprintf("%d:%d", v>>16, v&0xffff) }

func parseCommunities(l []string) ([]uint32, error) {
	var out []uint32
	for _, s := range l {
		v, err := ParseCommunity(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Validate checks the config as a whole.
func (c *Config) Validate() error {
	if c.ASN == 0 {
		return errors.New("bgp: asn is required")
	}
	if a, err := netip.ParseAddr(c.RouterID); err != nil || !a.Is4() {
		return fmt.Errorf("bgp: router_id %q: want an IPv4 address", c.RouterID)
	}
	if c.ListenPort < -1 {
		return fmt.Errorf("bgp: listen_port %d: want a port, or 0 or -1 for none", c.ListenPort)
	}
	if len(c.Peers) == 0 {
		return errors.New("bgp: no peers")
	}
	seen := map[netip.Addr]bool{}
	for _, p := range c.Peers {
		a, err := netip.ParseAddr(p.Address)
		if err != nil {
			return fmt.Errorf("bgp: peer address %q: %v", p.Address, err)
		}
		if seen[a] {
			return fmt.Errorf("bgp: peer %s given twice", a)
		}
		seen[a] = true
		if p.ASN == 0 {
			return fmt.Errorf("bgp: peer %s: asn is required", a)
		}
		if p.HoldTime != 0 && p.HoldTime < 3 {
			return fmt.Errorf("bgp: peer %s: hold_time %d: want 0 (the default, 90) or at least 3 seconds", a, p.HoldTime)
		}
		hold := p.HoldTime
		if hold == 0 {
			hold = 90
		}
		if p.Keepalive != 0 && p.Keepalive >= hold {
			return fmt.Errorf("bgp: peer %s: keepalive %d must be less than the hold time %d", a, p.Keepalive, hold)
		}
		if p.Multihop > 255 {
			return fmt.Errorf("bgp: peer %s: multihop %d: want a TTL up to 255", a, p.Multihop)
		}
	}
	if _, err := parseCommunities(c.Communities); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	vips := map[netip.Addr]bool{}
	for _, v := range c.VIPs {
		a, err := netip.ParseAddr(v.Address)
		if err != nil {
			return fmt.Errorf("bgp: vips: address %q: %v", v.Address, err)
		}
		if vips[a] {
			return fmt.Errorf("bgp: vips: %s given twice", a)
		}
		vips[a] = true
		if _, err := parseCommunities(v.Communities); err != nil {
			return fmt.Errorf("bgp: vips: %s: %w", a, err)
		}
	}
	return nil
}

// attrs is what one VIP is announced with.
type attrs struct {
	communities []uint32
	med         *uint32
	localPref   *uint32
}

func (a attrs) key() string {
	s := fmt.Sprint(a.communities)
	if a.med != nil {
		s += fmt.Sprintf(" med %d", *a.med)
	}
	if a.localPref != nil {
		s += fmt.Sprintf(" lp %d", *a.localPref)
	}
	return s
}

// attrsOf returns the attributes of VIP a (validated config).
func (c *Config) attrsOf(a netip.Addr) attrs {
	at := attrs{med: c.MED, localPref: c.LocalPref}
	at.communities, _ = parseCommunities(c.Communities)
	for _, v := range c.VIPs {
		if va, err := netip.ParseAddr(v.Address); err == nil && va == a {
			if v.Communities != nil {
				at.communities, _ = parseCommunities(v.Communities)
			}
			if v.MED != nil {
				at.med = v.MED
			}
			if v.LocalPref != nil {
				at.localPref = v.LocalPref
			}
		}
	}
	return at
}
