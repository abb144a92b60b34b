package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"gvs/check"
	"gvs/health"
	"gvs/keepalived"
	"gvs/model"
)

// Duration is seconds (a number, fractions allowed) or a Go duration
// string ("1500ms").
type Duration time.Duration

// UnmarshalYAML reads either form.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want seconds or a duration such as 1500ms", n.Line)
	}
	if t, err := keepalived.ParseTimer(n.Value); err == nil {
		*d = Duration(t)
		return nil
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil || t < 0 {
		return fmt.Errorf("line %d: %q: want seconds or a duration such as 1500ms", n.Line, n.Value)
	}
	*d = Duration(t)
	return nil
}

// Script is a notify or quorum script: a command line (keepalived's
// quoting), or {command, user, group}.
type Script struct {
	Command string `yaml:"command"`
	User    string `yaml:"user"`
	Group   string `yaml:"group"`
}

// UnmarshalYAML reads either form.
func (s *Script) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Command = n.Value
		return nil
	}
	type plain Script
	return n.Decode((*plain)(s))
}

func (s *Script) health() *health.Script {
	if s == nil {
		return nil
	}
	return &health.Script{Command: s.Command, User: s.User, Group: s.Group}
}

// Sorry is a service's sorry server.
type Sorry struct {
	Address string `yaml:"address"`
	Method  string `yaml:"method"` // default route
	Weight  *int32 `yaml:"weight"` // default 1
	Inhibit bool   `yaml:"inhibit"`
}

// Check is one checker: keepalived's checker keyword as type and its
// options by their keepalived names (DNS_CHECK's query type is
// dns_type).
type Check struct {
	Type string `yaml:"type"`

	ConnectIP        string    `yaml:"connect_ip"`
	ConnectPort      uint16    `yaml:"connect_port"`
	BindTo           string    `yaml:"bindto"`
	BindPort         uint16    `yaml:"bind_port"`
	BindIf           string    `yaml:"bind_if"`
	FWMark           uint32    `yaml:"fwmark"`
	ViaVIP           bool      `yaml:"via_vip"` // gvs: check a DR or TUN server through the VIP (docs/health.md)
	ConnectTimeout   Duration  `yaml:"connect_timeout"`
	Retry            *int      `yaml:"retry"`
	DelayBeforeRetry Duration  `yaml:"delay_before_retry"`
	DelayLoop        Duration  `yaml:"delay_loop"`
	Warmup           *Duration `yaml:"warmup"`
	Alpha            *bool     `yaml:"alpha"`
	LogAllFailures   bool      `yaml:"log_all_failures"`

	// HTTP_GET, SSL_GET
	HTTPProtocol string `yaml:"http_protocol"`
	VirtualHost  string `yaml:"virtualhost"`
	URLs         []URL  `yaml:"urls"`
	FastRecovery bool   `yaml:"fast_recovery"`
	EnableSNI    bool   `yaml:"enable_sni"`
	SNIName      string `yaml:"sni_name"`
	TLSCompliant bool   `yaml:"tls_compliant"`

	// UDP_CHECK: hex strings in keepalived's free format; require_reply
	// is true, or the hex the reply must start with (X: any nibble).
	Payload        string  `yaml:"payload"`
	RequireReply   *string `yaml:"require_reply"`
	MinReplyLength int     `yaml:"min_reply_length"`
	MaxReplyLength int     `yaml:"max_reply_length"`

	DNSType string `yaml:"dns_type"`
	Name    string `yaml:"name"` // DNS_CHECK's query name

	HeloName string `yaml:"helo_name"`

	MiscPath    string   `yaml:"misc_path"`
	MiscTimeout Duration `yaml:"misc_timeout"`
	MiscDynamic bool     `yaml:"misc_dynamic"`
	User        string   `yaml:"user"`
	Group       string   `yaml:"group"`

	// FILE_CHECK: the file itself (track_file only names it).
	TrackFile string `yaml:"track_file"`
	File      string `yaml:"file"`
	Weight    int64  `yaml:"weight"`
	Reverse   bool   `yaml:"reverse"`
	Dynamic   bool   `yaml:"dynamic"`
}

// URL is an url block of HTTP_GET or SSL_GET.
type URL struct {
	Path         string   `yaml:"path"`
	Digest       string   `yaml:"digest"`
	StatusCode   []string `yaml:"status_code"` // codes and ranges: [200-299, 301]
	VirtualHost  string   `yaml:"virtualhost"`
	Regex        string   `yaml:"regex"`
	RegexNoMatch bool     `yaml:"regex_no_match"`
}

// spec makes the check's spec; delayLoop and alpha are the service's.
func (c Check) spec(delayLoop Duration, alpha bool) (check.Spec, error) {
	s := check.Spec{Kind: check.Kind(strings.ToUpper(c.Type))}
	known := false
	for _, k := range check.Kinds {
		known = known || k == s.Kind
	}
	if !known {
		return s, fmt.Errorf("check type %q: want one of %v", c.Type, check.Kinds)
	}
	var err error
	addr := func(v string) netip.Addr {
		if v == "" || err != nil {
			return netip.Addr{}
		}
		a, perr := netip.ParseAddr(v)
		if perr != nil || a.Zone() != "" {
			err = fmt.Errorf("%q: want an IPv4 or IPv6 address", v)
		}
		return a.Unmap()
	}
	s.ConnectIP, s.BindTo = addr(c.ConnectIP), addr(c.BindTo)
	if err != nil {
		return s, err
	}
	s.ConnectPort, s.BindPort, s.BindIf, s.FWMark = c.ConnectPort, c.BindPort, c.BindIf, c.FWMark
	s.ViaVIP = c.ViaVIP
	s.ConnectTimeout, s.DelayBeforeRetry = time.Duration(c.ConnectTimeout), time.Duration(c.DelayBeforeRetry)
	s.DelayLoop = time.Duration(delayLoop)
	if c.DelayLoop != 0 {
		s.DelayLoop = time.Duration(c.DelayLoop)
	}
	if c.Retry != nil {
		if *c.Retry < 0 {
			return s, fmt.Errorf("retry %d: want 0 or more", *c.Retry)
		}
		r := *c.Retry
		s.Retry = &r
	}
	if c.Warmup != nil {
		w := time.Duration(*c.Warmup)
		s.Warmup = &w
	}
	s.Alpha = alpha
	if c.Alpha != nil {
		s.Alpha = *c.Alpha
	}
	s.LogAllFailures = c.LogAllFailures
	if s.Kind == check.File {
		// FILE_CHECK has none of the common options.
		s = check.Spec{Kind: check.File}
	}
	switch s.Kind {
	case check.HTTP, check.SSL:
		switch c.HTTPProtocol {
		case "", "1.0", "1.1", "1.0C":
		default:
			return s, fmt.Errorf("http_protocol %q: want 1.0, 1.0C or 1.1", c.HTTPProtocol)
		}
		if len(c.URLs) == 0 {
			return s, fmt.Errorf("%s: no urls", s.Kind)
		}
		s.HTTP = check.HTTPSpec{Protocol: c.HTTPProtocol, VirtualHost: c.VirtualHost, FastRecovery: c.FastRecovery}
		if s.Kind == check.SSL {
			s.HTTP.EnableSNI, s.HTTP.SNIName, s.HTTP.TLSCompliant = c.EnableSNI || c.SNIName != "", c.SNIName, c.TLSCompliant
		}
		for i, u := range c.URLs {
			cu, err := u.url()
			if err != nil {
				return s, fmt.Errorf("url %d: %w", i+1, err)
			}
			s.HTTP.URLs = append(s.HTTP.URLs, cu)
		}
	case check.UDP:
		if c.Payload != "" {
			if s.UDP.Payload, _, err = check.ParseHex(c.Payload, false); err != nil {
				return s, fmt.Errorf("payload: %w", err)
			}
		}
		if c.RequireReply != nil {
			switch v := *c.RequireReply; v {
			case "true", "yes", "on":
				s.UDP.RequireReply = true
			case "false", "no", "off":
			default:
				s.UDP.RequireReply = true
				if s.UDP.ReplyPattern, s.UDP.ReplyMask, err = check.ParseHex(v, true); err != nil {
					return s, fmt.Errorf("require_reply: %w", err)
				}
			}
		}
		if c.MinReplyLength < 0 || c.MaxReplyLength < 0 || c.MaxReplyLength > 65535 ||
			(c.MaxReplyLength != 0 && c.MinReplyLength > c.MaxReplyLength) {
			return s, fmt.Errorf("min_reply_length %d, max_reply_length %d: want 0 <= min <= max <= 65535", c.MinReplyLength, c.MaxReplyLength)
		}
		s.UDP.MinReplyLen, s.UDP.MaxReplyLen = c.MinReplyLength, c.MaxReplyLength
	case check.DNS:
		s.DNS = check.DNSSpec{Type: strings.ToUpper(c.DNSType), Name: c.Name}
		switch s.DNS.Type {
		case "", "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA":
		default:
			return s, fmt.Errorf("dns_type %q: want A, NS, CNAME, SOA, MX, TXT or AAAA", c.DNSType)
		}
	case check.SMTP:
		s.SMTP.HeloName = c.HeloName
	case check.Misc:
		if c.MiscPath == "" {
			return s, fmt.Errorf("MISC_CHECK: no misc_path")
		}
		if c.ConnectTimeout != 0 {
			return s, fmt.Errorf("MISC_CHECK: connect_timeout: misc_timeout bounds it")
		}
		s.Misc = check.MiscSpec{Path: c.MiscPath, Timeout: time.Duration(c.MiscTimeout), Dynamic: c.MiscDynamic, User: c.User, Group: c.Group}
	case check.File:
		if c.File == "" {
			return s, fmt.Errorf("FILE_CHECK: no file")
		}
		w := c.Weight
		if w == 0 {
			w = 1
		}
		s.File = check.FileSpec{Name: c.TrackFile, Path: c.File, Weight: w, Reverse: c.Reverse, Dynamic: c.Dynamic}
	}
	return s, nil
}

func (u URL) url() (check.URL, error) {
	cu := check.URL{Path: u.Path, VirtualHost: u.VirtualHost, Regex: u.Regex, RegexNoMatch: u.RegexNoMatch}
	if u.Path == "" {
		return cu, fmt.Errorf("no path")
	}
	var err error
	if u.Digest != "" {
		if cu.Digest, err = keepalived.ParseDigest(u.Digest); err != nil {
			return cu, err
		}
	}
	if len(u.StatusCode) > 0 {
		if cu.StatusCodes, err = keepalived.ParseStatusCodes(u.StatusCode); err != nil {
			return cu, err
		}
	}
	if u.Regex != "" {
		if err := checkRegex(u.Regex); err != nil {
			return cu, err
		}
	} else if u.RegexNoMatch {
		return cu, fmt.Errorf("regex_no_match without regex")
	}
	return cu, nil
}

// checks makes the specs of a list of checks.
func checks(list []Check, delayLoop Duration, alpha bool) ([]check.Spec, error) {
	var out []check.Spec
	for i, c := range list {
		s, err := c.spec(delayLoop, alpha)
		if err != nil {
			return nil, fmt.Errorf("check %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// healthOf makes a service's health checking: nil when none of its
// servers has a check.
func (s Service) healthOf(svc model.Service, dests []model.Dest) (*health.Service, error) {
	hs := &health.Service{Key: svc.ServiceKey, Quorum: 1, Hysteresis: s.Hysteresis,
		QuorumUp: s.QuorumUp.health(), QuorumDown: s.QuorumDown.health(), Omega: s.Omega, HASuspend: s.HASuspend}
	if s.Quorum != nil {
		if *s.Quorum < 1 {
			return nil, fmt.Errorf("%s: quorum 0: want 1 or more", svc.ServiceKey)
		}
		hs.Quorum = *s.Quorum
	}
	common, err := checks(s.Check, s.DelayLoop, s.Alpha)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", svc.ServiceKey, err)
	}
	checked := false
	for j, d := range s.Servers {
		specs := common
		if d.Check != nil {
			if specs, err = checks(d.Check, s.DelayLoop, s.Alpha); err != nil {
				return nil, fmt.Errorf("server %d: %w", j+1, err)
			}
		}
		checked = checked || len(specs) > 0
		// dests are newest first.
		hs.Servers = append(hs.Servers, health.Server{Addr: dests[len(dests)-1-j].AddrPort(), Inhibit: d.InhibitOnFailure,
			NotifyUp: d.NotifyUp.health(), NotifyDown: d.NotifyDown.health(), Checks: specs})
	}
	if s.Sorry != nil {
		md, err := Server{Address: s.Sorry.Address, Method: s.Sorry.Method, Weight: s.Sorry.Weight}.dest(svc)
		if err != nil {
			return nil, fmt.Errorf("sorry_server: %w", err)
		}
		hs.Sorry = &health.Sorry{Dest: md, Inhibit: s.Sorry.Inhibit}
	}
	if !checked {
		return nil, nil
	}
	return hs, nil
}

func checkRegex(re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("regex %q: %v (RE2 syntax)", re, err)
	}
	return nil
}
