package keepalived

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gvs/health"
	"gvs/vrrp"
)

// vrrpParser collects the VRRP part: vrrp_instance, vrrp_sync_group,
// vrrp_script and global_defs' vrrp_version and vrrp_garp_* settings.
type vrrpParser struct {
	cfg   vrrp.Config
	used  bool
	first pos // of the first VRRP block, for the config's errors
}

// vrrpBlock reads one top-level VRRP block.
func (p *parser) vrrpBlock(n *node) error {
	if p.vrrp.cfg.GARP == (vrrp.GARP{}) {
		p.vrrp.cfg.GARP = vrrp.DefaultGARP()
	}
	if !p.vrrp.used {
		p.vrrp.used, p.vrrp.first = true, n.pos
	}
	if len(n.args()) != 1 || !n.hasBlock {
		return n.pos.errorf("%s: want NAME { ... }", n.kw())
	}
	switch n.kw() {
	case "vrrp_instance":
		return p.vrrpInstance(n)
	case "vrrp_sync_group":
		return p.vrrpSyncGroup(n)
	}
	return p.vrrpScript(n)
}

// vrrpGlobal takes a global_defs setting of VRRP's; false: not one.
func (p *parser) vrrpGlobal(c *node) (bool, error) {
	g := &p.vrrp.cfg.GARP
	if *g == (vrrp.GARP{}) {
		*g = vrrp.DefaultGARP()
	}
	a := c.args()
	one := func() (string, error) {
		if len(a) != 1 {
			return "", c.pos.errorf("%s: want one value", c.kw())
		}
		return a[0], nil
	}
	var err error
	switch c.kw() {
	case "vrrp_version":
		var v uint64
		var s string
		if s, err = one(); err == nil {
			v, err = parseUint(s, 2, 3)
			p.vrrp.cfg.Version = int(v)
		}
	case "vrrp_garp_master_delay":
		err = secondsArg(c, a, &g.MasterDelay, 0, time.Hour)
	case "vrrp_garp_master_refresh":
		err = secondsArg(c, a, &g.MasterRefresh, 0, 24*time.Hour)
	case "vrrp_garp_interval":
		err = secondsArg(c, a, &g.Interval, 0, time.Hour)
	case "vrrp_gna_interval":
		err = secondsArg(c, a, &g.NAInterval, 0, time.Hour)
	case "vrrp_garp_master_repeat":
		err = intArg(c, a, &g.MasterRepeat, 0, 255)
	case "vrrp_garp_master_refresh_repeat":
		err = intArg(c, a, &g.RefreshRepeat, 1, 255)
	default:
		return false, nil
	}
	if err != nil {
		return true, err
	}
	return true, nil
}

func secondsArg(c *node, a []string, d *time.Duration, lo, hi time.Duration) error {
	if len(a) != 1 {
		return c.pos.errorf("%s: want seconds", c.kw())
	}
	f, err := strconv.ParseFloat(a[0], 64)
	v := time.Duration(f * float64(time.Second))
	if err != nil || v < lo || v > hi {
		return c.pos.errorf("%s: %q: want seconds %v..%v", c.kw(), a[0], lo.Seconds(), hi.Seconds())
	}
	*d = v.Round(time.Microsecond)
	return nil
}

func intArg(c *node, a []string, v *int, lo, hi int) error {
	if len(a) != 1 {
		return c.pos.errorf("%s: want a number", c.kw())
	}
	n, err := strconv.Atoi(a[0])
	if err != nil || n < lo || n > hi {
		return c.pos.errorf("%s: %q: want %d..%d", c.kw(), a[0], lo, hi)
	}
	*v = n
	return nil
}

func (p *parser) vrrpInstance(n *node) error {
	in := vrrp.Instance{Name: n.args()[0]}
	var g *vrrp.GARP
	garp := func() *vrrp.GARP {
		if g == nil {
			c := p.vrrp.cfg.GARP
			g = &c
		}
		return g
	}
	for _, c := range n.block {
		a := c.args()
		kw := c.kw()
		var err error
		switch kw {
		case "state":
			if len(a) != 1 || (a[0] != "MASTER" && a[0] != "BACKUP") {
				return c.pos.errorf("state: want MASTER or BACKUP")
			}
			in.InitMaster = a[0] == "MASTER"
		case "interface":
			if len(a) != 1 {
				return c.pos.errorf("interface: want a name")
			}
			in.Interface = a[0]
		case "virtual_router_id":
			var v uint64
			if len(a) != 1 {
				return c.pos.errorf("virtual_router_id: want 1..255")
			}
			if v, err = parseUint(a[0], 1, 255); err != nil {
				return c.pos.errorf("virtual_router_id: %v", err)
			}
			in.VRID = uint8(v)
		case "priority":
			var v uint64
			if len(a) != 1 {
				return c.pos.errorf("priority: want 1..255")
			}
			if v, err = parseUint(a[0], 1, 255); err != nil {
				return c.pos.errorf("priority: %v", err)
			}
			in.Priority = uint8(v)
		case "advert_int":
			err = secondsArg(c, a, &in.AdvertInterval, 10*time.Millisecond, 255*time.Second)
		case "version":
			var v uint64
			if len(a) != 1 {
				return c.pos.errorf("version: want 2 or 3")
			}
			if v, err = parseUint(a[0], 2, 3); err != nil {
				return c.pos.errorf("version: %v", err)
			}
			in.Version = int(v)
		case "nopreempt":
			in.NoPreempt = true
		case "preempt":
			in.NoPreempt = false
		case "preempt_delay":
			err = secondsArg(c, a, &in.PreemptDelay, 0, 1000*time.Second)
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			vips, err := p.vips(c, in.Interface)
			if err != nil {
				return err
			}
			if kw == "virtual_ipaddress" {
				in.VIPs = append(in.VIPs, vips...)
			} else {
				in.Excluded = append(in.Excluded, vips...)
			}
		case "authentication":
			for _, x := range c.block {
				switch x.kw() {
				case "auth_type":
					if len(x.args()) != 1 || (x.args()[0] != "PASS" && x.args()[0] != "AH") {
						return x.pos.errorf("auth_type: want PASS or AH")
					}
					if x.args()[0] == "AH" {
						return x.pos.errorf("auth_type AH: not supported by gvs (use PASS, or none)")
					}
				case "auth_pass":
					if len(x.args()) != 1 {
						return x.pos.errorf("auth_pass: want one word")
					}
					in.AuthPass = x.args()[0]
					if len(in.AuthPass) > 8 {
						p.notice(x.pos, "auth_pass: only the first 8 characters are used (as keepalived)")
					}
				default:
					return x.pos.errorf("unknown keyword %q in authentication", x.kw())
				}
			}
		case "unicast_src_ip", "mcast_src_ip":
			if len(a) != 1 {
				return c.pos.errorf("%s: want an address", kw)
			}
			if in.UnicastSrc, err = parseAddr(a[0]); err != nil {
				return c.pos.errorf("%s: %v", kw, err)
			}
		case "unicast_peer":
			for _, x := range c.block {
				ad, err := parseAddr(x.kw())
				if err != nil {
					return x.pos.errorf("unicast_peer: %v", err)
				}
				if len(x.args()) > 0 {
					p.notice(x.pos, "unicast_peer %s: %s: not supported by gvs, ignored", x.kw(), strings.Join(x.args(), " "))
				}
				in.UnicastPeers = append(in.UnicastPeers, ad)
			}
		case "track_interface":
			for _, x := range c.block {
				w, rev, err := trackWeight(x)
				if err != nil {
					return err
				}
				in.TrackInterfaces = append(in.TrackInterfaces, vrrp.TrackInterface{Name: x.kw(), Weight: w, Reverse: rev})
			}
		case "track_script":
			for _, x := range c.block {
				w, rev, err := trackWeight(x)
				if err != nil {
					return err
				}
				t := vrrp.TrackScript{Name: x.kw(), Reverse: rev}
				if len(x.args()) > 0 {
					t.Weight = &w
				}
				in.TrackScripts = append(in.TrackScripts, t)
			}
		case "track_service":
			// A gvs extension: "PROTO ADDR:PORT [weight W]" or
			// "fwmark N [ipv6] [weight W]" per line.
			for _, x := range c.block {
				words := x.words
				w := 0
				if len(words) >= 3 && words[len(words)-2] == "weight" {
					v, err := strconv.Atoi(words[len(words)-1])
					if err != nil || v < -253 || v > 253 {
						return x.pos.errorf("track_service: weight %q: want -253..253", words[len(words)-1])
					}
					w, words = v, words[:len(words)-2]
				}
				k, err := vrrp.ParseService(strings.Join(words, " "))
				if err != nil {
					return x.pos.errorf("track_service: %v", err)
				}
				in.TrackServices = append(in.TrackServices, vrrp.TrackService{Service: k, Weight: w})
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			s, err := vrrpScript(c)
			if err != nil {
				return err
			}
			setNotify(&in.Notify, kw, s)
		case "garp_master_delay":
			err = secondsArg(c, a, &garp().MasterDelay, 0, time.Hour)
		case "garp_master_refresh":
			err = secondsArg(c, a, &garp().MasterRefresh, 0, 24*time.Hour)
		case "garp_interval":
			err = secondsArg(c, a, &garp().Interval, 0, time.Hour)
		case "gna_interval":
			err = secondsArg(c, a, &garp().NAInterval, 0, time.Hour)
		case "garp_master_repeat":
			err = intArg(c, a, &garp().MasterRepeat, 0, 255)
		case "garp_master_refresh_repeat":
			err = intArg(c, a, &garp().RefreshRepeat, 1, 255)
		default:
			p.notice(c.pos, "vrrp_instance %s: %s: not supported by gvs, ignored", in.Name, kw)
		}
		if err != nil {
			return err
		}
	}
	in.GARP = g
	p.vrrp.cfg.Instances = append(p.vrrp.cfg.Instances, in)
	return nil
}

// vips reads a virtual_ipaddress block: ADDR[/LEN] [dev DEV] [label
// LABEL] [brd ADDR] [scope SCOPE] per line.
func (p *parser) vips(n *node, iface string) ([]vrrp.VIP, error) {
	var out []vrrp.VIP
	for _, x := range n.block {
		text := x.kw()
		var pfx netip.Prefix
		if strings.Contains(text, "/") {
			q, err := netip.ParsePrefix(text)
			if err != nil {
				return nil, x.pos.errorf("%s: %q: want ADDR[/LEN]", n.kw(), text)
			}
			pfx = netip.PrefixFrom(q.Addr().Unmap(), q.Bits())
		} else {
			ad, err := parseAddr(text)
			if err != nil {
				return nil, x.pos.errorf("%s: %v", n.kw(), err)
			}
			pfx = netip.PrefixFrom(ad, ad.BitLen())
		}
		v := vrrp.VIP{Prefix: pfx}
		a := x.args()
		for i := 0; i < len(a); i++ {
			key := a[i]
			if i+1 >= len(a) {
				if key == "no_track" || key == "preferred" || key == "home" || key == "nodad" {
					p.notice(x.pos, "%s: %s: not supported by gvs, ignored", n.kw(), key)
					continue
				}
				return nil, x.pos.errorf("%s: %s: want a value", n.kw(), key)
			}
			i++
			switch key {
			case "dev":
				v.Dev = a[i]
			case "label":
				v.Label = a[i]
			case "brd", "broadcast", "scope":
				p.notice(x.pos, "%s: %s %s: not supported by gvs, ignored", n.kw(), key, a[i])
			default:
				return nil, x.pos.errorf("%s: unknown option %q", n.kw(), key)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// trackWeight reads "NAME [weight W [reverse]]".
func trackWeight(x *node) (int, bool, error) {
	a := x.args()
	switch {
	case len(a) == 0:
		return 0, false, nil
	case a[0] != "weight" || len(a) < 2 || len(a) > 3 || (len(a) == 3 && a[2] != "reverse"):
		return 0, false, x.pos.errorf("%s: want NAME [weight W [reverse]]", x.kw())
	}
	w, err := strconv.Atoi(a[1])
	if err != nil || w < -253 || w > 253 {
		return 0, false, x.pos.errorf("%s: weight %q: want -253..253", x.kw(), a[1])
	}
	return w, len(a) == 3, nil
}

func vrrpScript(c *node) (*vrrp.Script, error) {
	s, err := parseScript(c.raw, true)
	if err != nil {
		return nil, c.pos.errorf("%s: %v", c.kw(), err)
	}
	return convScript(s), nil
}

func convScript(s *health.Script) *vrrp.Script {
	return &vrrp.Script{Command: s.Command, User: s.User, Group: s.Group, Timeout: s.Timeout}
}

func setNotify(n *vrrp.Notify, kw string, s *vrrp.Script) {
	switch kw {
	case "notify_master":
		n.Master = s
	case "notify_backup":
		n.Backup = s
	case "notify_fault":
		n.Fault = s
	case "notify_stop":
		n.Stop = s
	default:
		n.Notify = s
	}
}

func (p *parser) vrrpSyncGroup(n *node) error {
	g := vrrp.SyncGroup{Name: n.args()[0]}
	for _, c := range n.block {
		switch kw := c.kw(); kw {
		case "group":
			for _, x := range c.block {
				g.Instances = append(g.Instances, x.words...)
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			s, err := vrrpScript(c)
			if err != nil {
				return err
			}
			setNotify(&g.Notify, kw, s)
		default:
			p.notice(c.pos, "vrrp_sync_group %s: %s: not supported by gvs, ignored", g.Name, kw)
		}
	}
	p.vrrp.cfg.SyncGroups = append(p.vrrp.cfg.SyncGroups, g)
	return nil
}

func (p *parser) vrrpScript(n *node) error {
	s := vrrp.CheckScript{Name: n.args()[0], Interval: time.Second, Rise: 1, Fall: 1}
	var user, group string
	for _, c := range n.block {
		a := c.args()
		var err error
		switch c.kw() {
		case "script":
			sc, err := parseScript(c.raw, false)
			if err != nil {
				return c.pos.errorf("script: %v", err)
			}
			s.Script = *convScript(sc)
		case "interval":
			err = secondsArg(c, a, &s.Interval, time.Millisecond, 24*time.Hour)
		case "timeout":
			err = secondsArg(c, a, &s.Timeout, time.Millisecond, 24*time.Hour)
		case "weight":
			if len(a) < 1 || len(a) > 2 || (len(a) == 2 && a[1] != "reverse") {
				return c.pos.errorf("weight: want W [reverse]")
			}
			if s.Weight, err = strconv.Atoi(a[0]); err != nil || s.Weight < -253 || s.Weight > 253 {
				return c.pos.errorf("weight %q: want -253..253", a[0])
			}
			s.Reverse = len(a) == 2
		case "rise":
			err = intArg(c, a, &s.Rise, 1, 1<<20)
		case "fall":
			err = intArg(c, a, &s.Fall, 1, 1<<20)
		case "user":
			if len(a) < 1 || len(a) > 2 {
				return c.pos.errorf("user: want USER [GROUP]")
			}
			user = a[0]
			if len(a) == 2 {
				group = a[1]
			}
		case "init_fail":
			s.InitFail = true
		default:
			return c.pos.errorf("unknown keyword %q in vrrp_script", c.kw())
		}
		if err != nil {
			return fmt.Errorf("vrrp_script %s: %w", s.Name, err)
		}
	}
	if s.Script.Command == "" {
		return n.pos.errorf("vrrp_script %s: no script", s.Name)
	}
	s.Script.User, s.Script.Group = user, group
	p.vrrp.cfg.Scripts = append(p.vrrp.cfg.Scripts, s)
	return nil
}

// vrrpResult is the VRRP config, validated, or nil when there is none.
func (p *parser) vrrpResult() (*vrrp.Config, error) {
	if !p.vrrp.used {
		return nil, nil
	}
	c := p.vrrp.cfg
	if err := c.Validate(); err != nil {
		return nil, p.vrrp.first.errorf("%v", err)
	}
	return &c, nil
}
