package ipvsadm

import (
	"math"
	"net/netip"
	"strings"

	"gvs/model"
)

// This file mirrors the C library calls ipvsadm's parsers rely on, so that
// the same strings are accepted and rejected: strtol, strtoul (base 0),
// atoi, inet_aton and inet_pton.

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// strtol10 is strtol(s, &end, 10) for a 64-bit long: the value (saturated
// on overflow), the unparsed rest, whether digits were found, and whether
// it overflowed (errno ERANGE).
func strtol10(s string) (v int64, rest string, ok, overflow bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	for i < len(s) && isDigit(s[i]) {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			overflow = true
		} else {
			u = u*10 + d
		}
		i++
	}
	if i == start {
		return 0, s, false, false
	}
	switch {
	case !neg && (overflow || u > math.MaxInt64):
		return math.MaxInt64, s[i:], true, true
	case neg && (overflow || u > 1<<63):
		return math.MinInt64, s[i:], true, true
	case neg:
		return -int64(u), s[i:], true, false
	}
	return int64(u), s[i:], true, false
}

// stringToNumber is ipvsadm's string_to_number: a decimal number in
// [min, max] filling the whole string (leading blanks allowed), or -1.
func stringToNumber(s string, min, max int64) int64 {
	v, rest, ok, overflow := strtol10(s)
	if ok && rest == "" && !overflow && min <= v && v <= max {
		return v
	}
	return -1
}

// atoi is glibc's atoi: (int)strtol(s, NULL, 10).
func atoi(s string) int32 {
	v, _, _, _ := strtol10(s)
	return int32(v)
}

// strIsDigit is ipvsadm's str_is_digit (true for the empty string).
func strIsDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// inetAton is glibc's inet_aton: "a.b.c.d", "a.b.c", "a.b" and "a", each
// part decimal, octal (leading 0) or hexadecimal (0x), trailing blanks
// allowed. It returns the address in host byte order.
func inetAton(s string) (uint32, bool) {
	var parts []uint32
	i := 0
	var val uint64
	for {
		if i >= len(s) || !isDigit(s[i]) {
			return 0, false
		}
		// strtoul(cp, &end, 0)
		base := uint64(10)
		j := i
		if s[j] == '0' {
			if j+2 < len(s) && (s[j+1] == 'x' || s[j+1] == 'X') && isHex(s[j+2]) {
				base = 16
				j += 2
			} else {
				base = 8
			}
		}
		val = 0
		over := false
		for j < len(s) {
			d, ok := digitVal(s[j])
			if !ok || d >= base {
				break
			}
			val = val*base + d
			if val > 0xffffffff {
				over = true
			}
			j++
		}
		if over {
			return 0, false
		}
		i = j
		if i < len(s) && s[i] == '.' {
			if len(parts) > 2 || val > 0xff {
				return 0, false
			}
			parts = append(parts, uint32(val))
			i++
			continue
		}
		break
	}
	if i < len(s) && !isSpace(s[i]) {
		return 0, false
	}
	max := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	if val > max[len(parts)] {
		return 0, false
	}
	var res uint32
	for k, p := range parts {
		res |= p << (24 - 8*k)
	}
	return res | uint32(val), true
}

func isHex(c byte) bool {
	_, ok := digitVal(c)
	return ok
}

func digitVal(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

func addrFromHost(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// inetPton6 is inet_pton(AF_INET6, s): an IPv6 address without zone.
func inetPton6(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// Results of parseService, as ipvsadm's SERVICE_* bits.
const (
	serviceNone = 0
	serviceAddr = 1
	servicePort = 2
)

// endpoint is what parse_service fills in.
type endpoint struct {
	af      model.Family
	addr    netip.Addr
	port    uint16
	netmask uint32
}

// parseService is ipvsadm's parse_service: it parses "addr", "addr:port"
// or "[v6addr]:port" into ep (which keeps its other values) and returns
// serviceNone or serviceAddr, plus servicePort when a port was given.
// proto selects the service names port names are looked up in.
func parseService(buf string, proto model.Protocol, r Resolver, ep *endpoint) int {
	if strIsDigit(buf) {
		return serviceNone
	}
	host := buf
	if buf[0] == '[' {
		b := buf[1:]
		i := strings.IndexByte(b, ']')
		if i < 0 {
			return serviceNone
		}
		if i+1 >= len(b) || b[i+1] != ':' {
			return serviceNone
		}
		// The C code cuts the string at ']' and at the ':' after it;
		// unless the address is IPv6, the port after the bracket is
		// then lost (see below).
		host = b[:i]
	}
	var portStr string
	hasPort := false
	if a, ok := inetPton6(host); ok {
		ep.addr, ep.af, ep.netmask = a, model.IPv6, 128
		if buf[0] == '[' {
			portStr = buf[1+len(host)+2:]
			hasPort = true
		}
	} else {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			portStr, host, hasPort = host[i+1:], host[:i], true
		}
		if v, ok := inetAton(host); ok {
			ep.addr, ep.af = addrFromHost(v), model.IPv4
		} else if a, ok := r.LookupHost(host); ok && a.Is4() {
			ep.addr, ep.af = a, model.IPv4
		} else {
			return serviceNone
		}
	}
	result := serviceAddr
	if hasPort {
		result |= servicePort
		if n := stringToNumber(portStr, 0, 65535); n != -1 {
			ep.port = uint16(n)
		} else if p, ok := r.LookupPort(portStr, proto); ok {
			ep.port = p
		} else {
			return serviceNone
		}
	}
	return result
}

// parseNetmask is ipvsadm's parse_netmask: an IPv4 mask in inet_aton form
// or a host name, in host byte order.
func parseNetmask(buf string, r Resolver) (uint32, bool) {
	if v, ok := inetAton(buf); ok {
		return v, true
	}
	if a, ok := r.LookupHost(buf); ok && a.Is4() {
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
	}
	return 0, false
}
