package check

import (
	"errors"
	"fmt"
)

// ParseHex reads keepalived's free-format hex string (UDP_CHECK payload
// and require_reply): blanks separate groups, each pair of digits is a
// byte and a lone digit before a blank or the end is a byte of its own
// ("Ab12f 3" is AB 12 0F 03). With wildcards, X stands for a nibble
// whose value does not matter: its bits are 0 in mask (0xff elsewhere);
// without, mask is nil.
func ParseHex(s string, wildcards bool) (data, mask []byte, err error) {
	nibble := func(c byte) (val, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0xf, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0xf, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0xf, true
		case wildcards && (c == 'x' || c == 'X'):
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
			return nil, nil, fmt.Errorf("%q: %q is not a hex digit", s, s[i])
		}
		i++
		if i < len(s) && s[i] != ' ' && s[i] != '\t' {
			v2, m2, ok := nibble(s[i])
			if !ok {
				return nil, nil, fmt.Errorf("%q: %q is not a hex digit", s, s[i])
			}
			v, m = v<<4|v2, m<<4|m2
			i++
		} else {
			// A lone digit is a whole byte (0x04 for "4"): its high
			// nibble, zero, is compared too; a lone X ignores only the
			// low one.
			m |= 0xf0
		}
		data, mask = append(data, v), append(mask, m)
	}
	if len(data) == 0 {
		return nil, nil, errors.New("empty hex string")
	}
	if !wildcards {
		mask = nil
	}
	return data, mask, nil
}
