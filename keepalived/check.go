package keepalived

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"gvs/check"
)

var checkerKinds = map[string]check.Kind{
	"TCP_CHECK": check.TCP, "HTTP_GET": check.HTTP, "SSL_GET": check.SSL, "UDP_CHECK": check.UDP,
	"DNS_CHECK": check.DNS, "SMTP_CHECK": check.SMTP, "PING_CHECK": check.Ping,
	"MISC_CHECK": check.Misc, "FILE_CHECK": check.File,
}

// checker is one checker block: its own settings, completed by the
// real and virtual server's when the spec is made.
type checker struct {
	spec0 check.Spec
	own   inherit
}

// spec returns the checker's spec with the settings it does not give
// taken from parent (the real server's over the virtual server's).
func (c *checker) spec(parent inherit) check.Spec {
	s := c.spec0
	if s.Kind == check.File {
		// FILE_CHECK has none of the common options.
		return s
	}
	in := c.own.over(parent)
	if in.connectTimeout != nil && s.Kind != check.Misc {
		s.ConnectTimeout = *in.connectTimeout
	}
	if in.retry != nil {
		r := *in.retry
		s.Retry = &r
	}
	if in.delayBeforeRetry != nil {
		s.DelayBeforeRetry = *in.delayBeforeRetry
	}
	if in.warmup != nil {
		w := *in.warmup
		s.Warmup = &w
	}
	if in.delayLoop != nil {
		s.DelayLoop = *in.delayLoop
	}
	if in.alpha != nil {
		s.Alpha = *in.alpha
	}
	if (s.Kind == check.HTTP || s.Kind == check.SSL) && s.HTTP.VirtualHost == "" && in.virtualhost != nil {
		s.HTTP.VirtualHost = *in.virtualhost
	}
	return s
}

// connOpt reads a connection option into s; ok false: not one.
func connOpt(s *check.Spec, own *inherit, n *node) (bool, error) {
	a := n.args()
	one := func() (string, error) {
		if len(a) != 1 {
			return "", n.pos.errorf("%s: want one value", n.kw())
		}
		return a[0], nil
	}
	switch n.kw() {
	case "connect_ip", "bindto":
		v, err := one()
		if err != nil {
			return true, err
		}
		addr, err := parseAddr(v)
		if err != nil {
			return true, n.pos.errorf("%s: %v", n.kw(), err)
		}
		if n.kw() == "connect_ip" {
			s.ConnectIP = addr
		} else {
			s.BindTo = addr
		}
	case "connect_port", "bind_port":
		v, err := one()
		if err != nil {
			return true, err
		}
		port, err := parseUint(v, 1, 65535)
		if err != nil {
			return true, n.pos.errorf("%s: %v", n.kw(), err)
		}
		if n.kw() == "connect_port" {
			s.ConnectPort = uint16(port)
		} else {
			s.BindPort = uint16(port)
		}
	case "bind_if":
		v, err := one()
		if err != nil {
			return true, err
		}
		if len(v) > 15 {
			return true, n.pos.errorf("bind_if: %q: interface names are at most 15 characters", v)
		}
		s.BindIf = v
	case "fwmark":
		v, err := one()
		if err != nil {
			return true, err
		}
		m, err := parseUint(v, 0, 1<<32-1)
		if err != nil {
			return true, n.pos.errorf("fwmark: %v", err)
		}
		s.FWMark = uint32(m)
	case "via_vip":
		// A gvs extension (keepalived refuses it): check a DR or TUN
		// server through the VIP (docs/health.md).
		if len(a) != 0 {
			return true, n.pos.errorf("via_vip: takes no value")
		}
		s.ViaVIP = true
	case "connect_timeout":
		return own.common(n, 0)
	default:
		return false, nil
	}
	return true, nil
}

// checker reads a checker block; SMTP_CHECK's old host sub-blocks make
// more than one.
func (p *parser) checker(kind check.Kind, n *node) ([]*checker, error) {
	if len(n.args()) != 0 {
		return nil, n.pos.errorf("%s: takes no value before its block", n.kw())
	}
	c := &checker{spec0: check.Spec{Kind: kind}}
	s := &c.spec0
	var hosts []*checker
	ownConn := false
	var fileWeight *[]string
	for _, o := range n.block {
		a := o.args()
		if o.hasBlock {
			if kind == check.SMTP && o.kw() == "host" {
				h := &checker{}
				for _, ho := range o.block {
					ok, err := connOpt(&h.spec0, &h.own, ho)
					if err != nil {
						return nil, err
					}
					if !ok || ho.hasBlock {
						return nil, ho.pos.errorf("unknown keyword %q in SMTP_CHECK host", ho.kw())
					}
				}
				hosts = append(hosts, h)
				continue
			}
			if (kind == check.HTTP || kind == check.SSL) && o.kw() == "url" {
				u, err := p.url(kind, o, s)
				if err != nil {
					return nil, err
				}
				s.HTTP.URLs = append(s.HTTP.URLs, u)
				continue
			}
			return nil, o.pos.errorf("unknown block %q in %s", o.kw(), n.kw())
		}
		if kind == check.File {
			switch o.kw() {
			case "track_file":
				if len(a) != 1 {
					return nil, o.pos.errorf("track_file: want a name")
				}
				tf, ok := p.trackFiles[a[0]]
				if !ok {
					return nil, o.pos.errorf("track_file %s: no track_file block of that name", a[0])
				}
				s.File.Name, s.File.Path = a[0], tf.path
				if fileWeight == nil {
					s.File.Weight, s.File.Reverse = tf.weight, tf.reverse
				}
			case "weight":
				fileWeight = &a
			case "dynamic":
				if len(a) != 0 {
					return nil, o.pos.errorf("dynamic: takes no value")
				}
				s.File.Dynamic = true
			default:
				return nil, o.pos.errorf("unknown keyword %q in FILE_CHECK", o.kw())
			}
			if o.kw() == "weight" {
				w, rev, err := parseFileWeight(a)
				if err != nil {
					return nil, o.pos.errorf("weight: %v", err)
				}
				s.File.Weight, s.File.Reverse = w, rev
			}
			continue
		}
		if kind != check.Misc {
			ok, err := connOpt(s, &c.own, o)
			if err != nil {
				return nil, err
			}
			if ok {
				ownConn = true
				continue
			}
		}
		if o.kw() == "connect_timeout" {
			return nil, o.pos.errorf("unknown keyword %q in %s (misc_timeout bounds a MISC_CHECK)", o.kw(), n.kw())
		}
		if ok, err := c.own.common(o, 0); ok {
			if err != nil {
				return nil, err
			}
			if o.kw() == "virtualhost" && kind != check.HTTP && kind != check.SSL {
				return nil, o.pos.errorf("unknown keyword %q in %s", o.kw(), n.kw())
			}
			if o.kw() == "virtualhost" {
				s.HTTP.VirtualHost = a[0]
			}
			continue
		}
		switch o.kw() {
		case "alpha", "log_all_failures":
			b, err := parseBool(a)
			if err != nil {
				return nil, o.pos.errorf("%s: %v", o.kw(), err)
			}
			if o.kw() == "alpha" {
				c.own.alpha = &b
			} else {
				s.LogAllFailures = b
			}
			continue
		}
		if err := checkerOption(kind, n.kw(), o, s); err != nil {
			return nil, err
		}
	}
	switch kind {
	case check.File:
		if s.File.Name == "" {
			return nil, n.pos.errorf("FILE_CHECK: no track_file given")
		}
		if s.File.Weight == 0 {
			// check.Spec's zero weight means the default, 1.
			return nil, n.pos.errorf("FILE_CHECK %s: weight 0 (a non-zero value is a failure) is not supported by gvs", s.File.Name)
		}
	case check.Misc:
		if s.Misc.Path == "" {
			return nil, n.pos.errorf("MISC_CHECK: no misc_path given")
		}
	case check.UDP:
		if s.UDP.MaxReplyLen != 0 && s.UDP.MinReplyLen > s.UDP.MaxReplyLen {
			return nil, n.pos.errorf("UDP_CHECK: min_reply_length %d > max_reply_length %d", s.UDP.MinReplyLen, s.UDP.MaxReplyLen)
		}
	case check.HTTP, check.SSL:
		if len(s.HTTP.URLs) == 0 {
			return nil, n.pos.errorf("%s: no url block", n.kw())
		}
	}
	if len(hosts) == 0 {
		return []*checker{c}, nil
	}
	// Each host is a checker of its own with the SMTP_CHECK's settings;
	// the SMTP_CHECK itself checks too only if it gives a connection
	// option (keepalived's rule).
	var out []*checker
	if ownConn {
		out = append(out, c)
	}
	for _, h := range hosts {
		hc := &checker{spec0: *s, own: c.own}
		hs := &hc.spec0
		hs.ConnectIP, hs.ConnectPort, hs.BindTo = h.spec0.ConnectIP, h.spec0.ConnectPort, h.spec0.BindTo
		hs.BindPort, hs.BindIf, hs.FWMark = h.spec0.BindPort, h.spec0.BindIf, h.spec0.FWMark
		hs.ViaVIP = hs.ViaVIP || h.spec0.ViaVIP
		hc.own.connectTimeout = h.own.connectTimeout
		out = append(out, hc)
	}
	p.notice(n.pos, "SMTP_CHECK host blocks are deprecated (keepalived too): one SMTP_CHECK per host does the same")
	return out, nil
}

var dnsTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"}

// checkerOption reads a kind's own option.
func checkerOption(kind check.Kind, block string, o *node, s *check.Spec) error {
	a := o.args()
	one := func() (string, error) {
		if len(a) != 1 {
			return "", o.pos.errorf("%s: want one value", o.kw())
		}
		return a[0], nil
	}
	flag := func(dst *bool) error {
		b, err := parseBool(a)
		if err != nil {
			return o.pos.errorf("%s: %v", o.kw(), err)
		}
		*dst = b
		return nil
	}
	unknown := o.pos.errorf("unknown keyword %q in %s", o.kw(), block)
	switch kind {
	case check.HTTP, check.SSL:
		switch o.kw() {
		case "http_protocol":
			v, err := one()
			if err != nil {
				return err
			}
			switch v {
			case "1.0", "1.1", "1.0C":
			case "1.0c":
				v = "1.0C"
			default:
				return o.pos.errorf("http_protocol: %q: want 1.0, 1.0C or 1.1", v)
			}
			s.HTTP.Protocol = v
			return nil
		case "fast_recovery":
			return flag(&s.HTTP.FastRecovery)
		}
		if kind == check.SSL {
			switch o.kw() {
			case "enable_sni":
				return flag(&s.HTTP.EnableSNI)
			case "sni_name":
				v, err := one()
				if err != nil {
					return err
				}
				s.HTTP.SNIName, s.HTTP.EnableSNI = v, true
				return nil
			case "tls_compliant":
				return flag(&s.HTTP.TLSCompliant)
			}
		}
	case check.UDP:
		switch o.kw() {
		case "payload":
			if len(a) == 0 {
				return o.pos.errorf("payload: want a hex string")
			}
			d, _, err := check.ParseHex(strings.Join(a, " "), false)
			if err != nil {
				return o.pos.errorf("payload: %v", err)
			}
			s.UDP.Payload = d
			return nil
		case "require_reply":
			s.UDP.RequireReply = true
			if len(a) == 0 {
				return nil
			}
			d, m, err := check.ParseHex(strings.Join(a, " "), true)
			if err != nil {
				return o.pos.errorf("require_reply: %v", err)
			}
			s.UDP.ReplyPattern, s.UDP.ReplyMask = d, m
			return nil
		case "min_reply_length", "max_reply_length":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := parseUint(v, 0, 65535)
			if err != nil {
				return o.pos.errorf("%s: %v", o.kw(), err)
			}
			if o.kw() == "min_reply_length" {
				s.UDP.MinReplyLen = int(n)
			} else if n == 0 {
				return o.pos.errorf("max_reply_length 0: not supported by gvs (0 means the default, 255)")
			} else {
				s.UDP.MaxReplyLen = int(n)
			}
			return nil
		}
	case check.DNS:
		switch o.kw() {
		case "type":
			v, err := one()
			if err != nil {
				return err
			}
			v = strings.ToUpper(v)
			if !containsStr(dnsTypes, v) {
				return o.pos.errorf("type: %q: want one of %s", a[0], strings.Join(dnsTypes, " "))
			}
			s.DNS.Type = v
			return nil
		case "name":
			v, err := one()
			if err != nil {
				return err
			}
			s.DNS.Name = v
			return nil
		}
	case check.SMTP:
		if o.kw() == "helo_name" {
			v, err := one()
			if err != nil {
				return err
			}
			s.SMTP.HeloName = v
			return nil
		}
	case check.Misc:
		switch o.kw() {
		case "misc_path":
			sc, err := parseScript(o.raw, false)
			if err != nil {
				return o.pos.errorf("misc_path: %v", err)
			}
			s.Misc.Path = sc.Command
			return nil
		case "misc_timeout":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := parseUint(v, 0, 1<<31-1)
			if err != nil {
				return o.pos.errorf("misc_timeout: %v", err)
			}
			s.Misc.Timeout = time.Duration(n) * time.Second
			return nil
		case "misc_dynamic":
			if len(a) != 0 {
				return o.pos.errorf("misc_dynamic: takes no value")
			}
			s.Misc.Dynamic = true
			return nil
		case "user":
			if len(a) < 1 || len(a) > 2 {
				return o.pos.errorf("user: want USER [[:]GROUP]")
			}
			s.Misc.User, s.Misc.Group = a[0], ""
			if len(a) == 2 {
				s.Misc.Group = a[1]
			}
			return nil
		}
	}
	return unknown
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// url reads an url block of HTTP_GET or SSL_GET.
func (p *parser) url(kind check.Kind, n *node, s *check.Spec) (check.URL, error) {
	var u check.URL
	var options []string
	for _, o := range n.block {
		a := o.args()
		if o.hasBlock {
			return u, o.pos.errorf("unknown block %q in url", o.kw())
		}
		one := func() (string, error) {
			if len(a) != 1 {
				return "", o.pos.errorf("%s: want one value", o.kw())
			}
			return a[0], nil
		}
		var err error
		switch o.kw() {
		case "path":
			u.Path, err = one()
		case "digest":
			var v string
			if v, err = one(); err == nil {
				if u.Digest, err = ParseDigest(v); err != nil {
					err = o.pos.errorf("%v", err)
				}
			}
		case "status_code":
			if u.StatusCodes, err = ParseStatusCodes(a); err != nil {
				err = o.pos.errorf("%v", err)
			}
		case "virtualhost":
			u.VirtualHost, err = one()
		case "regex":
			w, qerr := quotedWords(o.raw)
			if qerr != nil || len(w) != 2 {
				return u, o.pos.errorf("regex: want one (quoted) pattern")
			}
			u.Regex = unescape(w[1])
		case "regex_no_match":
			u.RegexNoMatch = true
		case "regex_options":
			options = append(options, a...)
		case "regex_stack":
			p.notice(o.pos, "regex_stack: not needed by gvs (RE2), ignored")
		case "tls_compliant":
			if kind != check.SSL {
				return u, o.pos.errorf("unknown keyword %q in url", o.kw())
			}
			var b bool
			if b, err = parseBool(a); err == nil {
				s.HTTP.TLSCompliant = s.HTTP.TLSCompliant || b
			}
		default:
			return u, o.pos.errorf("unknown keyword %q in url", o.kw())
		}
		if err != nil {
			return u, err
		}
	}
	if u.Path == "" {
		return u, n.pos.errorf("url: no path given")
	}
	if u.Regex == "" && (u.RegexNoMatch || len(options) > 0) {
		return u, n.pos.errorf("url: regex options without regex")
	}
	if u.Regex != "" {
		// PCRE2 options that RE2 has as flags.
		flags := ""
		for _, o := range options {
			f, ok := map[string]string{"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U"}[o]
			if !ok {
				return u, n.pos.errorf("regex_options %s: not supported by gvs (caseless, multiline, dotall and ungreedy are)", o)
			}
			flags += f
		}
		if flags != "" {
			u.Regex = "(?" + flags + ")" + u.Regex
		}
		if _, err := regexp.Compile(u.Regex); err != nil {
			return u, n.pos.errorf("regex %q: %v (gvs uses RE2 syntax)", u.Regex, err)
		}
	}
	return u, nil
}

// unescape applies keepalived's escapes (\n, \t, \xXX, \NNN, \cC, \C)
// to a word quotedWords kept them in.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		c := s[i]
		switch {
		case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
			v, j := 0, i+1
			for ; j < len(s) && j < i+3 && isHex(s[j]); j++ {
				d, _ := strconv.ParseUint(s[j:j+1], 16, 8)
				v = v<<4 | int(d)
			}
			b.WriteByte(byte(v))
			i = j - 1
		case c >= '0' && c <= '7':
			v, j := 0, i
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
				v = v<<3 | int(s[j]-'0')
			}
			b.WriteByte(byte(v))
			i = j - 1
		case c == 'c' && i+1 < len(s):
			i++
			b.WriteByte(s[i] & 0x1f)
		default:
			esc := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
			if e, ok := esc[c]; ok {
				b.WriteByte(e)
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
