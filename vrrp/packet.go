package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol numbers and groups of RFC 5798 and RFC 3768.
const (
	IPProto = 112 // IP protocol number of VRRP
	// TTL is the IPv4 TTL and IPv6 hop limit every advertisement is sent
	// with and (multicast) received with.
	TTL = 255

	typeAdvert = 1
	authLen    = 8  // v2 authentication data
	headerLen  = 8  // fixed part of both versions
	maxV3Int   = 40 // 0xfff centiseconds, in whole seconds rounded down
	// OwnerPriority is the address owner's priority; StopPriority the one a
	// master sends when it stops.
	OwnerPriority = 255
	StopPriority  = 0
)

var (
	// Group4 and Group6 are the VRRP multicast groups.
	Group4 = netip.MustParseAddr("224.0.0.18")
	Group6 = netip.MustParseAddr("ff02::12")
)

// Auth types of VRRPv2 (RFC 3768 section 5.3.6; keepalived's PASS).
const (
	AuthNone = 0
	AuthPass = 1
	AuthAH   = 2
)

// Advert is a VRRP advertisement, either version.
type Advert struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds in v2,
	// centiseconds (up to 40.95 s) in v3.
	Interval time.Duration
	Addrs    []netip.Addr // all IPv4 or all IPv6
	// AuthType and AuthData are v2's authentication: AuthPass with the
	// password zero-padded to 8 bytes.
	AuthType uint8
	AuthData [authLen]byte
}

// Errors of Parse.
var (
	ErrShort    = errors.New("vrrp: packet too short")
	ErrLength   = errors.New("vrrp: length does not match the address count")
	ErrVersion  = errors.New("vrrp: unknown version")
	ErrType     = errors.New("vrrp: not an advertisement")
	ErrChecksum = errors.New("vrrp: bad checksum")
)

// Marshal encodes a: v2 as RFC 3768 (checksum over the VRRP message
// only, IPv4 only), v3 as RFC 5798 (checksum with the pseudo-header of
// src and dst). The addresses must all be of src's family.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	v6 := src.Is6() && !src.Is4In6()
	alen := 4
	if v6 {
		alen = 16
	}
	if len(a.Addrs) > 255 {
		return nil, fmt.Errorf("vrrp: %d addresses (at most 255)", len(a.Addrs))
	}
	n := headerLen + alen*len(a.Addrs)
	if a.Version == 2 {
		if v6 {
			return nil, errors.New("vrrp: VRRPv2 is IPv4 only")
		}
		n += authLen
	}
	b := make([]byte, n)
	b[0] = byte(a.Version)<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addrs))
	switch a.Version {
	case 2:
		secs := a.Interval / time.Second
		if secs < 1 || secs > 255 {
			return nil, fmt.Errorf("vrrp: v2 interval %v (want 1..255 s)", a.Interval)
		}
		b[4] = a.AuthType
		b[5] = byte(secs)
	case 3:
		cs := a.Interval / (10 * time.Millisecond)
		if cs < 1 || cs > 0xfff {
			return nil, fmt.Errorf("vrrp: v3 interval %v (want 10ms..40.95s)", a.Interval)
		}
		binary.BigEndian.PutUint16(b[4:], uint16(cs))
	default:
		return nil, ErrVersion
	}
	off := headerLen
	for _, ad := range a.Addrs {
		ad = ad.Unmap()
		if ad.Is6() != v6 {
			return nil, fmt.Errorf("vrrp: address %s is not of the source's family", ad)
		}
		off += copy(b[off:], ad.AsSlice())
	}
	if a.Version == 2 {
		copy(b[off:], a.AuthData[:])
	}
	binary.BigEndian.PutUint16(b[6:], Checksum(a.Version, src, dst, b))
	return b, nil
}

// Parse decodes an advertisement received from src to dst (the checksum
// of v3 covers them; v2's does not, and is IPv4 only). It checks the
// version, type, length and checksum; what the instance expects (VRID,
// interval, authentication, TTL) is the caller's to check.
func Parse(b []byte, src, dst netip.Addr) (*Advert, error) {
	if len(b) < headerLen {
		return nil, ErrShort
	}
	a := &Advert{Version: int(b[0] >> 4), VRID: b[1], Priority: b[2]}
	if b[0]&0xf != typeAdvert {
		return nil, ErrType
	}
	v6 := src.Is6() && !src.Is4In6()
	alen := 4
	if v6 {
		alen = 16
	}
	n := headerLen + alen*int(b[3])
	switch a.Version {
	case 2:
		if v6 {
			return nil, ErrVersion
		}
		n += authLen
		a.AuthType = b[4]
		a.Interval = time.Duration(b[5]) * time.Second
	case 3:
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0xfff) * 10 * time.Millisecond
	default:
		return nil, ErrVersion
	}
	if len(b) < n {
		return nil, ErrShort
	}
	if len(b) > n {
		// Ethernet padding may follow a short IPv4 packet: the IP layer
		// trims it, so anything more is a lie about the count.
		return nil, ErrLength
	}
	if Checksum(a.Version, src, dst, b) != 0 {
		return nil, ErrChecksum
	}
	off := headerLen
	for range int(b[3]) {
		ad, _ := netip.AddrFromSlice(b[off : off+alen])
		a.Addrs = append(a.Addrs, ad)
		off += alen
	}
	if a.Version == 2 {
		copy(a.AuthData[:], b[off:])
	}
	return a, nil
}

// Checksum is the Internet checksum of the VRRP message b: for v3 with
// the pseudo-header of src, dst, length and protocol 112 (RFC 5798
// section 5.2.8), for v2 of b alone. Over a message with its checksum
// field filled in it is 0 when the checksum is right; over one with the
// field zeroed it is the value to put there.
func Checksum(version int, src, dst netip.Addr, b []byte) uint16 {
	var sum uint32
	if version == 3 {
		src, dst = src.Unmap(), dst.Unmap()
		sum = sumBytes(sum, src.AsSlice())
		sum = sumBytes(sum, dst.AsSlice())
		if src.Is4() {
			sum += IPProto + uint32(len(b))
		} else {
			sum += uint32(len(b)>>16) + uint32(len(b)&0xffff) + IPProto
		}
	}
	sum = sumBytes(sum, b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func sumBytes(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// password is a v2 PASS password as sent: its first 8 bytes,
// zero-padded (keepalived truncates longer ones).
func password(p string) (d [authLen]byte) {
	copy(d[:], p)
	return d
}
