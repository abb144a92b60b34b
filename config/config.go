// Package config reads gvsd's declarative rules file: YAML, keepalived.conf
// (package keepalived), or the ipvsadm-save format (what gvsadm -S
// prints). The result is the complete desired rule set and the health
// checks of its servers; gvsd converges the running rules to it.
package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"gvs/bgp"
	"gvs/control"
	"gvs/health"
	"gvs/keepalived"
	"gvs/model"
	"gvs/vrrp"
)

// Config is what a config file asks for: the rules, and the health
// checks of their servers (nil: none; the ipvsadm-save form has none).
type Config struct {
	Rules  *control.Rules
	Health *health.Config
	// VRRP is the VRRP instances (nil: none).
	VRRP *vrrp.Config
	// Sync is the sync daemons the file runs (keepalived's
	// lvs_sync_daemon, YAML sync_daemon:); nil: none.
	Sync *control.SyncFollow
	// BGP is the BGP speaker's config (nil: none; YAML only).
	BGP *bgp.Config
	// Notices are what the file gives that gvs does not use (the
	// keepalived.conf form's BFD part, say), "file:line: what", for
	// gvsd to log.
	Notices []string
}

// File is the YAML document.
type File struct {
	Timeouts *Timeouts `yaml:"timeouts"`
	// Services nil (absent, or nothing under services:) is not the same
	// as services: [], the only way to ask for no services.
	Services []Service `yaml:"services"`
	// Sysctls are IPVS sysctls by their /proc/sys/net/ipv4/vs/ names; the
	// ones not given keep their values.
	Sysctls map[string]int `yaml:"sysctls"`
	// Allow is the source allow list of every service that has no allow
	// key of its own: its entries of the service's family.
	Allow []string `yaml:"allow"`
	// VRRP is the VRRP instances (vrrp.go).
	VRRP *VRRP `yaml:"vrrp"`
	// SyncDaemon is keepalived's lvs_sync_daemon (syncd.go).
	SyncDaemon *SyncDaemon `yaml:"sync_daemon"`
	// BGP announces the VIPs to routers (docs/bgp.md).
	BGP *bgp.Config `yaml:"bgp"`
}

// Timeouts are ipvsadm --set's values in seconds (0: the default).
type Timeouts struct {
	TCP    uint32 `yaml:"tcp"`
	TCPFin uint32 `yaml:"tcpfin"`
	UDP    uint32 `yaml:"udp"`
}

// Service is one virtual service: exactly one of TCP, UDP, SCTP (an
// address and port) or FWMark.
type Service struct {
	TCP        string  `yaml:"tcp"`
	UDP        string  `yaml:"udp"`
	SCTP       string  `yaml:"sctp"`
	FWMark     uint32  `yaml:"fwmark"`
	IPv6       bool    `yaml:"ipv6"` // family of a fwmark service
	Scheduler  string  `yaml:"scheduler"`
	Persistent *uint32 `yaml:"persistent"` // seconds; 0 means ipvsadm's default 360
	Netmask    string  `yaml:"netmask"`    // IPv4 mask, or IPv6 prefix length
	OnePacket  bool    `yaml:"ops"`
	// Sloppy: whether a TCP connection may start on any packet but a RST
	// (IPVS's sloppy_tcp, for this service): absent, on for mh (a flow
	// ECMP moves from another director keeps its server), off otherwise.
	Sloppy     *bool    `yaml:"sloppy"`
	SchedFlags []string `yaml:"sched-flags"` // sh-fallback, sh-port, mh-fallback, mh-port
	Servers    []Server `yaml:"servers"`
	// LocalAddrs is the FULLNAT local address pool, in round robin order
	// (DPVS ipvsadm -P).
	LocalAddrs []string `yaml:"local_addrs"`
	// Allow is the source allow list: addresses or prefixes of the
	// service's family. Absent: the top-level list; empty (allow: []):
	// none, every source.
	Allow []string `yaml:"allow"`

	// Health checking, as keepalived's virtual_server: the least sum of
	// live servers' weights (default 1) and its dead band, scripts run
	// when it is gained or lost, the sorry server served meanwhile.
	Quorum     *uint32 `yaml:"quorum"`
	Hysteresis uint32  `yaml:"hysteresis"`
	QuorumUp   *Script `yaml:"quorum_up"`
	QuorumDown *Script `yaml:"quorum_down"`
	Sorry      *Sorry  `yaml:"sorry_server"`
	Omega      bool    `yaml:"omega"`
	HASuspend  bool    `yaml:"ha_suspend"`
	// Alpha and DelayLoop are the default of every check of the service.
	Alpha     bool     `yaml:"alpha"`
	DelayLoop Duration `yaml:"delay_loop"`
	// Check is the checks of every server without a check list of its own.
	Check []Check `yaml:"check"`
}

// Server is one real server.
type Server struct {
	Address    string `yaml:"address"`
	Method     string `yaml:"method"` // route (default), tunnel, masq, fullnat
	Weight     *int32 `yaml:"weight"` // default 1
	UThreshold uint32 `yaml:"u-threshold"`
	LThreshold uint32 `yaml:"l-threshold"`

	InhibitOnFailure bool    `yaml:"inhibit_on_failure"`
	NotifyUp         *Script `yaml:"notify_up"`
	NotifyDown       *Script `yaml:"notify_down"`
	// Check replaces the service's checks for this server (check: [] for
	// none).
	Check []Check `yaml:"check"`
}

// SaveParser parses ipvsadm-save lines into rules; the ipvsadm package
// provides it (gvsd wires it in), keeping this package free of the CLI.
type SaveParser func(lines []byte) (*control.Rules, error)

// Load reads path: keepalived.conf when its first word is one of
// keepalived's top-level keywords, ipvsadm-save lines when its first rule
// line starts with "-", YAML otherwise.
func Load(path string, save SaveParser) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if isKeepalived(b) {
		// Its errors name the file and line.
		res, err := keepalived.Parse(path)
		if err != nil {
			return nil, err
		}
		c := &Config{Rules: res.Rules, Health: res.Health, VRRP: res.VRRP, Notices: res.Notices, Sync: res.Sync}
		if err := checkViaVIP(c); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return c, nil
	}
	var c *Config
	if isSaveFormat(b) {
		var r *control.Rules
		if r, err = save(b); err == nil {
			c = &Config{Rules: r}
		}
	} else {
		c, err = ParseConfig(b)
	}
	if err == nil {
		err = checkViaVIP(c)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// isKeepalived reports whether the first word outside comments is a
// keepalived.conf top-level keyword.
func isKeepalived(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		word, _, _ := strings.Cut(strings.ReplaceAll(l, "\t", " "), " ")
		word, _, _ = strings.Cut(word, "{")
		return keepalived.TopLevel(word)
	}
	return false
}

func isSaveFormat(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return strings.HasPrefix(l, "-")
	}
	return false
}

// Parse reads the YAML form's rules.
func Parse(b []byte) (*control.Rules, error) {
	c, err := ParseConfig(b)
	if err != nil {
		return nil, err
	}
	return c.Rules, nil
}

// ParseConfig reads the YAML form: rules and health checks.
func ParseConfig(b []byte) (*Config, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err.Error() != "EOF" {
		return nil, err
	}
	r := &control.Rules{ExplicitEmpty: f.Services != nil && len(f.Services) == 0}
	if f.Sysctls != nil {
		if _, err := model.DefaultSysctls().With(f.Sysctls); err != nil {
			return nil, err
		}
		r.Sysctls = f.Sysctls
	}
	if f.Timeouts != nil {
		r.Timeouts = model.Timeouts{TCP: f.Timeouts.TCP, TCPFin: f.Timeouts.TCPFin, UDP: f.Timeouts.UDP}
	}
	var allow []netip.Prefix
	for j, text := range f.Allow {
		p, err := parseAllow(text)
		if err != nil {
			return nil, fmt.Errorf("allow entry %d: %w", j+1, err)
		}
		allow = append(allow, p)
	}
	seen := map[model.ServiceKey]bool{}
	var hc health.Config
	for i, s := range f.Services {
		sr, err := s.rules(allow)
		if err != nil {
			return nil, fmt.Errorf("service %d: %w", i+1, err)
		}
		if seen[sr.Service.ServiceKey] {
			return nil, fmt.Errorf("service %d: %s: %w", i+1, sr.Service.ServiceKey, model.ErrServiceExists)
		}
		seen[sr.Service.ServiceKey] = true
		r.Services = append(r.Services, sr)
		hs, err := s.healthOf(sr.Service, sr.Dests)
		if err != nil {
			return nil, fmt.Errorf("service %d: %w", i+1, err)
		}
		if hs != nil {
			hc.Services = append(hc.Services, *hs)
		}
	}
	c := &Config{Rules: r}
	if len(hc.Services) > 0 {
		c.Health = &hc
	}
	if f.VRRP != nil {
		vc, err := f.VRRP.config()
		if err != nil {
			return nil, err
		}
		c.VRRP = vc
	}
	if f.SyncDaemon != nil {
		s, err := f.SyncDaemon.follow(c.VRRP)
		if err != nil {
			return nil, fmt.Errorf("sync_daemon: %w", err)
		}
		c.Sync = s
	}
	if f.BGP != nil {
		if err := f.BGP.Validate(); err != nil {
			return nil, err
		}
		c.BGP = f.BGP
	}
	return c, nil
}

// rules reads one service; allow is the top-level allow list.
func (s Service) rules(allow []netip.Prefix) (control.ServiceRules, error) {
	var sr control.ServiceRules
	svc := model.Service{Scheduler: s.Scheduler}
	n := 0
	for _, c := range []struct {
		addr  string
		proto model.Protocol
	}{{s.TCP, model.ProtoTCP}, {s.UDP, model.ProtoUDP}, {s.SCTP, model.ProtoSCTP}} {
		if c.addr == "" {
			continue
		}
		n++
		ap, err := netip.ParseAddrPort(c.addr)
		if err != nil {
			return sr, fmt.Errorf("address %q: want ADDR:PORT or [ADDR6]:PORT", c.addr)
		}
		svc.Protocol, svc.Addr, svc.Port = c.proto, ap.Addr().Unmap(), ap.Port()
		svc.Family = model.FamilyOf(svc.Addr)
	}
	if s.FWMark != 0 {
		n++
		svc.FWMark, svc.Family = s.FWMark, model.IPv4
		if s.IPv6 {
			svc.Family = model.IPv6
		}
	}
	if n != 1 {
		return sr, fmt.Errorf("give exactly one of tcp, udp, sctp or fwmark")
	}
	if s.Persistent != nil {
		svc.Flags |= model.FlagPersistent
		svc.Timeout = *s.Persistent
		if svc.Timeout == 0 {
			svc.Timeout = model.DefaultPersistTimeout
		}
		svc.Netmask = model.DefaultNetmask(svc.Family)
	}
	if s.OnePacket {
		svc.Flags |= model.FlagOnePacket
	}
	if s.Sloppy != nil {
		svc.Sloppy = model.SloppyOff
		if *s.Sloppy {
			svc.Sloppy = model.SloppyOn
		}
	}
	for _, fl := range s.SchedFlags {
		switch fl {
		case "sh-fallback", "mh-fallback", "flag-1":
			svc.Flags |= model.FlagSched1
		case "sh-port", "mh-port", "flag-2":
			svc.Flags |= model.FlagSched2
		case "flag-3":
			svc.Flags |= model.FlagSched3
		default:
			return sr, fmt.Errorf("unknown sched-flag %q", fl)
		}
	}
	if s.Netmask != "" {
		m, err := parseNetmask(s.Netmask, svc.Family)
		if err != nil {
			return sr, err
		}
		svc.Netmask = m
	}
	svc = svc.Normalize()
	if err := svc.Validate(); err != nil {
		return sr, fmt.Errorf("%s: %w", svc.ServiceKey, err)
	}
	sr.Service = svc
	for j, d := range s.Servers {
		md, err := d.dest(svc)
		if err != nil {
			return sr, fmt.Errorf("server %d: %w", j+1, err)
		}
		if slices.ContainsFunc(sr.Dests, func(x model.Dest) bool { return x.AddrPort() == md.AddrPort() }) {
			return sr, fmt.Errorf("server %d: %s: %w", j+1, md.AddrPort(), model.ErrDestExists)
		}
		// Listed in the order they are added; the kernel's list is newest first.
		sr.Dests = slices.Insert(sr.Dests, 0, md)
	}
	for j, text := range s.LocalAddrs {
		a, err := netip.ParseAddr(text)
		if err != nil {
			return sr, fmt.Errorf("local address %d: %q: want an IPv4 or IPv6 address", j+1, text)
		}
		a = a.Unmap()
		if err := model.ValidateLocalAddr(svc, a); err != nil {
			return sr, fmt.Errorf("local address %d: %s: %w", j+1, a, err)
		}
		if slices.Contains(sr.LocalAddrs, a) {
			return sr, fmt.Errorf("local address %d: %s: %w", j+1, a, model.ErrLocalAddrExists)
		}
		if len(sr.LocalAddrs) == model.MaxLocalAddrs {
			return sr, fmt.Errorf("local address %d: %s: %w", j+1, a, model.ErrTooManyLocalAddrs)
		}
		sr.LocalAddrs = append(sr.LocalAddrs, a)
	}
	var list []netip.Prefix
	if s.Allow != nil {
		for j, text := range s.Allow {
			p, err := parseAllow(text)
			if err != nil {
				return sr, fmt.Errorf("%s: allow entry %d: %w", svc.ServiceKey, j+1, err)
			}
			list = append(list, p)
		}
	} else if len(allow) > 0 {
		for _, p := range allow {
			if model.FamilyOf(p.Addr()) == svc.Family {
				list = append(list, p)
			}
		}
		if len(list) == 0 {
			return sr, fmt.Errorf("%s: the top-level allow list has no IPv%d entry for it: give the service an allow list of its own (allow: [] for none)", svc.ServiceKey, svc.Family)
		}
	}
	l, err := model.NormalizeAllow(svc, list)
	if err != nil {
		return sr, fmt.Errorf("%s: %w", svc.ServiceKey, err)
	}
	sr.Allow = l
	return sr, nil
}

// parseAllow reads an allow list entry: a prefix (ADDR/LEN) or an
// address (its /32 or /128).
func parseAllow(text string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(text); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, -1))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(text)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: want an address or a prefix (ADDR/LEN)", text)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseNetmask(s string, f model.Family) (uint32, error) {
	if f == model.IPv6 {
		var n uint32
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || n > 128 {
			return 0, fmt.Errorf("netmask %q: want an IPv6 prefix length 1..128", s)
		}
		return n, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("netmask %q: want an IPv4 netmask such as 255.255.255.0", s)
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

func (d Server) dest(svc model.Service) (model.Dest, error) {
	var md model.Dest
	ap, err := netip.ParseAddrPort(d.Address)
	if err != nil {
		a, aerr := netip.ParseAddr(d.Address)
		if aerr != nil {
			return md, fmt.Errorf("address %q: want ADDR[:PORT]", d.Address)
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	md.Addr, md.Port = ap.Addr().Unmap(), ap.Port()
	if md.Port == 0 {
		md.Port = svc.Port
	}
	md.Method = model.Route
	if d.Method != "" {
		if err := md.Method.UnmarshalText([]byte(d.Method)); err != nil {
			return md, err
		}
	}
	md.Weight = 1
	if d.Weight != nil {
		md.Weight = *d.Weight
	}
	md.UThreshold, md.LThreshold = d.UThreshold, d.LThreshold
	md = model.NormalizeDest(svc, md)
	if err := model.ValidateDest(svc, md); err != nil {
		return md, fmt.Errorf("%s: %w", md.AddrPort(), err)
	}
	return md, nil
}
