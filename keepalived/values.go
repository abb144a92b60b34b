package keepalived

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gvs/check"
	"gvs/health"
)

var timerSyntax = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// ParseTimer reads a keepalived TIMER: seconds, with an optional
// fraction ("2.5"), to the microsecond.
func ParseTimer(s string) (time.Duration, error) {
	if !timerSyntax.MatchString(s) {
		return 0, fmt.Errorf("%q: want seconds, such as 3 or 2.5", s)
	}
	d, err := time.ParseDuration(s + "s")
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	return d.Truncate(time.Microsecond), nil
}

// parseBool reads keepalived's optional <BOOL>: absent means true.
func parseBool(args []string) (bool, error) {
	if len(args) == 0 {
		return true, nil
	}
	if len(args) > 1 {
		return false, fmt.Errorf("want at most one of on|off|true|false|yes|no")
	}
	switch args[0] {
	case "on", "true", "yes":
		return true, nil
	case "off", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on|off|true|false|yes|no", args[0])
}

func parseUint(s string, min, max uint64) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < min || v > max {
		return 0, fmt.Errorf("%q: want an integer %d..%d", s, min, max)
	}
	return v, nil
}

func parsePort(s string) (uint16, error) {
	v, err := parseUint(s, 0, 65535)
	return uint16(v), err
}

// parseAddr reads a numeric IPv4 or IPv6 address.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q: want an IPv4 or IPv6 address", s)
	}
	return a.Unmap(), nil
}

// ParseStatusCodes reads status_code words: codes and ranges (200-299)
// of 100..599.
func ParseStatusCodes(words []string) ([]check.StatusRange, error) {
	var out []check.StatusRange
	for _, w := range words {
		lo, hi, isRange := strings.Cut(w, "-")
		min, err1 := strconv.Atoi(lo)
		max := min
		var err2 error
		if isRange {
			max, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || min < 100 || max > 599 || min > max {
			return nil, fmt.Errorf("status_code %q: want a code or a range of codes within 100-599", w)
		}
		out = append(out, check.StatusRange{Min: min, Max: max})
	}
	if len(out) == 0 {
		return nil, errors.New("status_code: no codes given")
	}
	return out, nil
}

// ParseDigest checks an MD5 digest as genhash prints it.
func ParseDigest(s string) (string, error) {
	if len(s) != 32 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
		return "", fmt.Errorf("digest %q: want 32 hex digits (an MD5 as genhash prints it)", s)
	}
	return strings.ToLower(s), nil
}

// quotedWords splits raw the way keepalived re-reads script lines: both
// quote characters group, a backslash and the character after it are kept
// as they are (the command line is split again when run).
func quotedWords(raw string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, in = c, true
		case c == '\\' && i+1 < len(raw):
			cur.WriteByte(c)
			i++
			cur.WriteByte(raw[i])
			in = true
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("missing terminating %c", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseScript reads "KEYWORD COMMAND [USER [[:]GROUP]]", COMMAND quoted
// when it has arguments. The group is kept as written: a leading ':'
// asks for the user's supplementary groups, as in keepalived.
func parseScript(raw string, withUser bool) (*health.Script, error) {
	w, err := quotedWords(raw)
	if err != nil {
		return nil, err
	}
	if len(w) < 2 || w[1] == "" {
		return nil, errors.New("no command given")
	}
	s := &health.Script{Command: w[1]}
	rest := w[2:]
	if !withUser && len(rest) > 0 {
		return nil, fmt.Errorf("%q after the command: quote the whole command line", rest[0])
	}
	if len(rest) > 2 {
		return nil, fmt.Errorf("want COMMAND [USER [GROUP]], quoting a command line with arguments")
	}
	if len(rest) > 0 {
		s.User = rest[0]
		if u, g, ok := strings.Cut(s.User, ":"); ok {
			s.User, s.Group = u, ":"+g
		}
	}
	if len(rest) > 1 {
		s.Group = rest[1]
	}
	return s, nil
}
