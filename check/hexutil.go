package check

import (
	"fmt"
	"strings"
)

// ParseHex reads a hex string as keepalived's UDP_CHECK payload and
// require_reply do: spaces and tabs separate groups, a group of one
// digit or an odd last digit is a byte of its own ("Ab12f 3" is AB 12 0F
// 03). With wildcards, x or X stands for a nibble to ignore: mask then
// has its bits clear there and set elsewhere (nil when there is no
// wildcard), as UDPSpec.ReplyMask wants it.
func ParseHex(s string, wildcards bool) (data, mask []byte, err error) {
	any := false
	nibble := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0xf, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0xf, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0xf, true
		case wildcards && (c == 'x' || c == 'X'):
			any = true
			return 0, 0, true
		}
		return 0, 0, false
	}
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		v, m, ok := nibble(s[i])
		if !ok {
			return nil, nil, fmt.Errorf("hex string %q: bad character %q", s, s[i])
		}
		i++
		m |= 0xf0 // a lone digit is the low nibble; the high one is 0
		if i < len(s) && s[i] != ' ' && s[i] != '\t' {
			v2, m2, ok := nibble(s[i])
			if !ok {
				return nil, nil, fmt.Errorf("hex string %q: bad character %q", s, s[i])
			}
			i++
			v, m = v<<4|v2, (m&0xf)<<4|m2
		}
		data = append(data, v)
		mask = append(mask, m)
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("hex string %q: empty", strings.TrimSpace(s))
	}
	if !any {
		mask = nil
	}
	return data, mask, nil
}

// fillPayload fills b with keepalived's filler text, what it sends when
// a UDP_CHECK has no payload and as a PING_CHECK's echo data.
func fillPayload(b []byte) []byte {
	const s = "keepalived check - "
	for i := range b {
		b[i] = s[i%len(s)]
	}
	return b
}
