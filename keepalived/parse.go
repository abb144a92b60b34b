// Package keepalived reads the LVS part of keepalived.conf(5) into gvs's
// rules and health checks: virtual servers and groups, real servers,
// sorry servers and every checker keepalived has, with keepalived's
// defaults and inheritance; and the VRRP part (vrrp.go). The parts gvs
// does not run (most global settings, BFD, ...) are skipped with a
// notice; anything else it does not know is an error naming the file and
// line.
package keepalived

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gvs/control"
	"gvs/health"
	"gvs/model"
	"gvs/vrrp"
)

// Result is what a keepalived.conf asks for.
type Result struct {
	Rules  *control.Rules
	Health *health.Config // nil when no service has a check
	VRRP   *vrrp.Config   // nil when there is no vrrp_instance
	// Sync is global_defs' lvs_sync_daemon (nil: none).
	Sync *control.SyncFollow
	// Notices say what was read but is not used ("file:line: what"), for
	// gvsd to log.
	Notices []string
}

// Parse reads the keepalived.conf at path and the files it includes.
func Parse(path string) (*Result, error) {
	l := &lexer{}
	if err := l.readFile(path, nil); err != nil {
		return nil, err
	}
	nodes, err := tree(l.items)
	if err != nil {
		return nil, err
	}
	p := &parser{
		notices:    l.notices,
		groups:     map[string]*node{},
		trackFiles: map[string]*trackFile{},
	}
	return p.parse(nodes)
}

// ignoredTop are the top-level blocks and settings of the parts of
// keepalived gvs does not run.
var ignoredTop = map[string]string{
	"linkbeat_use_polling": "", "net_namespace": "", "net_namespace_ipvs": "",
	"namespace_with_ipsets": "", "use_pid_dir": "", "instance": "", "child_wait_time": "",
	"bfd_instance": "", "track_group": "", "static_ipaddress": "", "static_routes": "",
	"static_rules": "", "garp_group": "", "linkbeat_interfaces": "", "vrrp_track_process": "",
	"interface_up_down_delays": "",
	"SSL":                      " (SSL_GET checks present no client certificate)",
}

// TopLevel reports whether word is a keyword that may start a
// keepalived.conf (for telling the format from others).
func TopLevel(word string) bool {
	switch word {
	case "virtual_server", "virtual_server_group", "global_defs", "track_file", "vrrp_track_file",
		"include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	_, ok := ignoredTop[word]
	return ok || strings.HasPrefix(word, "vrrp_")
}

type parser struct {
	notices    []string
	groups     map[string]*node
	trackFiles map[string]*trackFile
	rules      control.Rules
	health     health.Config
	seen       map[model.ServiceKey]pos
	vrrp       vrrpParser
	sync       *control.SyncFollow
	syncPos    pos
}

func (p *parser) notice(at pos, format string, a ...any) {
	p.notices = append(p.notices, fmt.Sprintf("%s: ", at)+fmt.Sprintf(format, a...))
}

func (p *parser) parse(nodes []*node) (*Result, error) {
	p.seen = map[model.ServiceKey]pos{}
	// Groups and track files may be defined after their use.
	var servers []*node
	for _, n := range nodes {
		switch kw := n.kw(); kw {
		case "virtual_server_group":
			if len(n.args()) != 1 || !n.hasBlock {
				return nil, n.pos.errorf("virtual_server_group: want NAME { ... }")
			}
			if prev, ok := p.groups[n.args()[0]]; ok {
				return nil, n.pos.errorf("virtual_server_group %s: already defined at %s", n.args()[0], prev.pos)
			}
			p.groups[n.args()[0]] = n
		case "track_file", "vrrp_track_file":
			if err := p.trackFile(n); err != nil {
				return nil, err
			}
		case "virtual_server":
			servers = append(servers, n)
		case "global_defs":
			if err := p.globalDefs(n); err != nil {
				return nil, err
			}
		case "vrrp_instance", "vrrp_sync_group", "vrrp_script":
			if err := p.vrrpBlock(n); err != nil {
				return nil, err
			}
		default:
			why, ok := ignoredTop[kw]
			if !ok && !strings.HasPrefix(kw, "vrrp_") {
				return nil, n.pos.errorf("unknown keyword %q at top level", kw)
			}
			p.notice(n.pos, "%s: not used by gvs%s, ignored", kw, why)
		}
	}
	for _, n := range servers {
		if err := p.virtualServer(n); err != nil {
			return nil, err
		}
	}
	vc, err := p.vrrpResult()
	if err != nil {
		return nil, err
	}
	res := &Result{Rules: &p.rules, VRRP: vc, Notices: p.notices, Sync: p.sync}
	if p.sync != nil && p.sync.Instance != "" {
		i := -1
		if vc != nil {
			i = slices.IndexFunc(vc.Instances, func(in vrrp.Instance) bool { return in.Name == p.sync.Instance })
		}
		if i < 0 {
			return nil, p.syncPos.errorf("lvs_sync_daemon: no vrrp_instance %q", p.sync.Instance)
		}
		if !p.sync.SyncIDSet {
			// keepalived's default: the instance's virtual_router_id.
			p.sync.Daemon.SyncID = vc.Instances[i].VRID
		}
	}
	if len(p.health.Services) > 0 {
		res.Health = &p.health
	}
	return res, nil
}

// globalDefs takes lvs_timeouts and VRRP's defaults; the rest is SMTP, SNMP, D-Bus
// and process settings.
func (p *parser) globalDefs(n *node) error {
	other := false
	for _, c := range n.block {
		if ok, err := p.vrrpGlobal(c); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		if c.kw() == "lvs_sync_daemon" {
			if err := p.lvsSyncDaemon(c); err != nil {
				return err
			}
			continue
		}
		if c.kw() != "lvs_timeouts" {
			other = true
			continue
		}
		a := c.args()
		if len(a) == 0 || len(a)%2 != 0 {
			return c.pos.errorf("lvs_timeouts: want [tcp SECS] [tcpfin SECS] [udp SECS]")
		}
		for i := 0; i < len(a); i += 2 {
			v, err := parseUint(a[i+1], 1, model.MaxPersistTimeout)
			if err != nil {
				return c.pos.errorf("lvs_timeouts %s: %v", a[i], err)
			}
			switch a[i] {
			case "tcp":
				p.rules.Timeouts.TCP = uint32(v)
			case "tcpfin":
				p.rules.Timeouts.TCPFin = uint32(v)
			case "udp":
				p.rules.Timeouts.UDP = uint32(v)
			default:
				return c.pos.errorf("lvs_timeouts: unknown timeout %q (want tcp, tcpfin or udp)", a[i])
			}
		}
	}
	if other || len(n.block) == 0 {
		p.notice(n.pos, "global_defs: not used by gvs (except lvs_timeouts, lvs_sync_daemon, vrrp_version and vrrp_garp_*), ignored")
	}
	return nil
}

type trackFile struct {
	pos     pos
	path    string
	weight  int64
	reverse bool
}

func (p *parser) trackFile(n *node) error {
	if len(n.args()) != 1 || !n.hasBlock {
		return n.pos.errorf("%s: want NAME { file PATH ... }", n.kw())
	}
	name := n.args()[0]
	if prev, ok := p.trackFiles[name]; ok {
		return n.pos.errorf("track_file %s: already defined at %s", name, prev.pos)
	}
	tf := &trackFile{pos: n.pos, weight: 1}
	for _, c := range n.block {
		a := c.args()
		switch c.kw() {
		case "file":
			if len(a) != 1 {
				return c.pos.errorf("file: want one path")
			}
			tf.path = a[0]
		case "weight":
			w, rev, err := parseFileWeight(a)
			if err != nil {
				return c.pos.errorf("track_file weight: %v", err)
			}
			tf.weight, tf.reverse = w, rev
		case "init_file":
			p.notice(c.pos, "track_file %s: init_file: not supported by gvs, ignored (create the file yourself)", name)
		default:
			return c.pos.errorf("unknown keyword %q in track_file", c.kw())
		}
	}
	if tf.path == "" {
		return n.pos.errorf("track_file %s: no file given", name)
	}
	p.trackFiles[name] = tf
	return nil
}

func parseFileWeight(a []string) (int64, bool, error) {
	if len(a) < 1 || len(a) > 2 {
		return 0, false, fmt.Errorf("want N [reverse]")
	}
	var w int64
	if _, err := fmt.Sscan(a[0], &w); err != nil || w < -model.MaxWeight || w > model.MaxWeight || fmt.Sprint(w) != strings.TrimPrefix(a[0], "+") {
		return 0, false, fmt.Errorf("%q: want an integer -%d..%d", a[0], model.MaxWeight, model.MaxWeight)
	}
	rev := false
	if len(a) == 2 {
		switch a[1] {
		case "reverse":
			rev = true
		case "noreverse":
		default:
			return 0, false, fmt.Errorf("%q: want reverse or noreverse", a[1])
		}
	}
	return w, rev, nil
}

// inherit are the settings a virtual server passes to its real servers
// and a real server to its checkers (nil: not set at that level).
type inherit struct {
	connectTimeout   *time.Duration
	retry            *int
	delayBeforeRetry *time.Duration
	warmup           *time.Duration
	delayLoop        *time.Duration
	alpha            *bool
	virtualhost      *string
}

// over returns c with its unset settings taken from parent.
func (c inherit) over(parent inherit) inherit {
	if c.connectTimeout == nil {
		c.connectTimeout = parent.connectTimeout
	}
	if c.retry == nil {
		c.retry = parent.retry
	}
	if c.delayBeforeRetry == nil {
		c.delayBeforeRetry = parent.delayBeforeRetry
	}
	if c.warmup == nil {
		c.warmup = parent.warmup
	}
	if c.delayLoop == nil {
		c.delayLoop = parent.delayLoop
	}
	if c.alpha == nil {
		c.alpha = parent.alpha
	}
	if c.virtualhost == nil {
		c.virtualhost = parent.virtualhost
	}
	return c
}

// common reads a setting every level has; ok false: not one of them.
// minRetry is 1 for virtual and real servers, 0 for checkers.
func (c *inherit) common(n *node, minRetry uint64) (bool, error) {
	a := n.args()
	timer := func(min time.Duration) (*time.Duration, error) {
		if len(a) != 1 {
			return nil, n.pos.errorf("%s: want one value in seconds", n.kw())
		}
		d, err := ParseTimer(a[0])
		if err == nil && d < min {
			err = fmt.Errorf("%q: must be more than 0", a[0])
		}
		if err != nil {
			return nil, n.pos.errorf("%s: %v", n.kw(), err)
		}
		return &d, nil
	}
	var err error
	switch n.kw() {
	case "connect_timeout":
		c.connectTimeout, err = timer(time.Microsecond)
	case "delay_loop":
		c.delayLoop, err = timer(time.Microsecond)
	case "delay_before_retry":
		c.delayBeforeRetry, err = timer(0)
	case "warmup":
		c.warmup, err = timer(0)
	case "retry", "nb_get_retry":
		if len(a) != 1 {
			return true, n.pos.errorf("%s: want one number", n.kw())
		}
		v, perr := parseUint(a[0], minRetry, 1<<31-1)
		if perr != nil {
			return true, n.pos.errorf("%s: %v", n.kw(), perr)
		}
		r := int(v)
		c.retry = &r
	case "virtualhost":
		if len(a) != 1 {
			return true, n.pos.errorf("virtualhost: want one name")
		}
		c.virtualhost = &a[0]
	default:
		return false, nil
	}
	return true, err
}

// vs is a virtual_server block as read.
type vs struct {
	pos        pos
	key        model.ServiceKey // address and port, or fwmark; Family from ip_family
	group      string
	protocol   model.Protocol
	scheduler  string
	flags      model.ServiceFlags
	flagNames  []string
	method     model.Method
	persist    *uint32
	granPos    pos
	gran       string
	quorum     uint32
	hysteresis uint32
	quorumUp   *health.Script
	quorumDown *health.Script
	omega      bool
	haSuspend  bool
	inhibit    bool
	defaults   inherit
	sorry      *sorry
	servers    []*rs
}

type sorry struct {
	pos     pos
	addr    netip.Addr
	port    uint16
	method  *model.Method
	inhibit bool
}

type rs struct {
	pos        pos
	addr       netip.Addr
	port       uint16
	weight     int32
	method     *model.Method
	uthreshold uint32
	lthreshold uint32
	inhibit    *bool
	notifyUp   *health.Script
	notifyDown *health.Script
	defaults   inherit
	checks     []*checker
}

// parseMethod reads lvs_method/lb_kind: NAT, DR, TUN [type ipip], and
// FNAT/FULLNAT (DPVS's keepalived's name for full NAT).
func parseMethod(n *node) (model.Method, error) {
	a := n.args()
	if len(a) == 0 {
		return 0, n.pos.errorf("%s: want NAT, DR, TUN or FNAT", n.kw())
	}
	extra := a[1:]
	var m model.Method
	switch a[0] {
	case "NAT":
		m = model.Masq
	case "DR":
		m = model.Route
	case "TUN":
		m = model.Tunnel
		if len(extra) == 2 && extra[0] == "type" && extra[1] == "ipip" {
			extra = nil
		}
	case "FNAT", "FULLNAT":
		m = model.FullNAT
	default:
		return 0, n.pos.errorf("%s: unknown method %q (want NAT, DR, TUN or FNAT)", n.kw(), a[0])
	}
	if len(extra) > 0 {
		return 0, n.pos.errorf("%s %s: %q not supported by gvs (only ipip tunnels)", n.kw(), a[0], strings.Join(extra, " "))
	}
	return m, nil
}

func (p *parser) virtualServer(n *node) error {
	v := &vs{pos: n.pos, protocol: model.ProtoTCP, method: model.Masq, quorum: 1}
	a := n.args()
	switch {
	case len(a) == 2 && a[0] == "fwmark":
		m, err := parseUint(a[1], 1, 1<<32-1)
		if err != nil {
			return n.pos.errorf("virtual_server fwmark: %v", err)
		}
		v.key.FWMark = uint32(m)
	case len(a) == 2 && a[0] == "group":
		if _, ok := p.groups[a[1]]; !ok {
			return n.pos.errorf("virtual_server group %s: no virtual_server_group of that name", a[1])
		}
		v.group = a[1]
	case len(a) == 1 || len(a) == 2:
		addr, err := parseAddr(a[0])
		if err != nil {
			return n.pos.errorf("virtual_server: %v", err)
		}
		v.key.Addr, v.key.Family = addr, model.FamilyOf(addr)
		if len(a) == 2 {
			if v.key.Port, err = parsePort(a[1]); err != nil {
				return n.pos.errorf("virtual_server port: %v", err)
			}
		}
	default:
		return n.pos.errorf("virtual_server: want IP [PORT], fwmark N or group NAME")
	}
	if !n.hasBlock {
		return n.pos.errorf("virtual_server: no { ... } block")
	}
	var sorryMethod *model.Method
	var sorryInhibit *pos
	for _, c := range n.block {
		if err := p.vsKeyword(v, c, &sorryMethod, &sorryInhibit); err != nil {
			return err
		}
	}
	if v.sorry != nil {
		v.sorry.method = sorryMethod
		v.sorry.inhibit = sorryInhibit != nil
	} else if sorryMethod != nil || sorryInhibit != nil {
		return n.pos.errorf("sorry_server_lvs_method or sorry_server_inhibit without sorry_server")
	}
	if len(v.servers) == 0 {
		p.notice(n.pos, "virtual_server without real servers: ignored, as keepalived does")
		return nil
	}
	keys, err := p.keys(v)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := p.service(v, k); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) vsKeyword(v *vs, c *node, sorryMethod **model.Method, sorryInhibit **pos) error {
	a := c.args()
	noArgs := func() error {
		if len(a) != 0 {
			return c.pos.errorf("%s: takes no value", c.kw())
		}
		return nil
	}
	if ok, err := v.defaults.common(c, 1); ok {
		return err
	}
	if c.hasBlock && c.kw() != "real_server" {
		return c.pos.errorf("unknown block %q in virtual_server", c.kw())
	}
	switch c.kw() {
	case "real_server":
		r, err := p.realServer(v, c)
		if err != nil {
			return err
		}
		v.servers = append(v.servers, r)
	case "lvs_sched", "lb_algo":
		if len(a) != 1 || !model.KnownScheduler(a[0]) {
			return c.pos.errorf("%s: want one of %s", c.kw(), strings.Join(model.Schedulers, ", "))
		}
		v.scheduler = a[0]
	case "lvs_method", "lb_kind":
		m, err := parseMethod(c)
		if err != nil {
			return err
		}
		v.method = m
	case "protocol":
		if len(a) != 1 {
			return c.pos.errorf("protocol: want TCP, UDP or SCTP")
		}
		switch strings.ToUpper(a[0]) {
		case "TCP":
			v.protocol = model.ProtoTCP
		case "UDP":
			v.protocol = model.ProtoUDP
		case "SCTP":
			v.protocol = model.ProtoSCTP
		default:
			return c.pos.errorf("protocol: %q: want TCP, UDP or SCTP", a[0])
		}
	case "persistence_timeout":
		t := uint32(model.DefaultPersistTimeout)
		if len(a) > 1 {
			return c.pos.errorf("persistence_timeout: want at most one number")
		}
		if len(a) == 1 {
			x, err := parseUint(a[0], 1, model.MaxPersistTimeout)
			if err != nil {
				return c.pos.errorf("persistence_timeout: %v", err)
			}
			t = uint32(x)
		}
		v.persist = &t
	case "persistence_granularity":
		if len(a) != 1 {
			return c.pos.errorf("persistence_granularity: want a netmask (IPv6: a prefix length)")
		}
		v.gran, v.granPos = a[0], c.pos
	case "persistence_engine":
		return c.pos.errorf("persistence_engine: not supported by gvs")
	case "ops":
		if err := noArgs(); err != nil {
			return err
		}
		v.flags |= model.FlagOnePacket
	case "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		if err := noArgs(); err != nil {
			return err
		}
		v.flags |= map[string]model.ServiceFlags{
			"flag-1": model.FlagSched1, "flag-2": model.FlagSched2, "flag-3": model.FlagSched3,
			"sh-fallback": model.FlagSHFallback, "sh-port": model.FlagSHPort,
			"mh-fallback": model.FlagMHFallback, "mh-port": model.FlagMHPort,
		}[c.kw()]
		v.flagNames = append(v.flagNames, c.kw())
	case "ip_family":
		if len(a) != 1 || (a[0] != "inet" && a[0] != "inet6") {
			return c.pos.errorf("ip_family: want inet or inet6")
		}
		f := model.IPv4
		if a[0] == "inet6" {
			f = model.IPv6
		}
		if v.key.Addr.IsValid() && v.key.Family != f {
			return c.pos.errorf("ip_family %s: the virtual server's address is IPv%d", a[0], v.key.Family)
		}
		v.key.Family = f
	case "quorum":
		x, err := parseUint(strings.Join(a, " "), 1, 1<<32-1)
		if err != nil {
			return c.pos.errorf("quorum: %v", err)
		}
		v.quorum = uint32(x)
	case "hysteresis":
		x, err := parseUint(strings.Join(a, " "), 0, 1<<32-1)
		if err != nil {
			return c.pos.errorf("hysteresis: %v", err)
		}
		v.hysteresis = uint32(x)
	case "quorum_up", "quorum_down":
		s, err := parseScript(c.raw, true)
		if err != nil {
			return c.pos.errorf("%s: %v", c.kw(), err)
		}
		if c.kw() == "quorum_up" {
			v.quorumUp = s
		} else {
			v.quorumDown = s
		}
	case "alpha":
		if err := noArgs(); err != nil {
			return err
		}
		t := true
		v.defaults.alpha = &t
	case "omega":
		if err := noArgs(); err != nil {
			return err
		}
		v.omega = true
	case "ha_suspend":
		if err := noArgs(); err != nil {
			return err
		}
		v.haSuspend = true
	case "inhibit_on_failure":
		if err := noArgs(); err != nil {
			return err
		}
		v.inhibit = true
	case "sorry_server":
		if v.sorry != nil {
			return c.pos.errorf("sorry_server: given twice")
		}
		addr, port, err := addrPort(c)
		if err != nil {
			return err
		}
		v.sorry = &sorry{pos: c.pos, addr: addr, port: port}
	case "sorry_server_inhibit":
		if err := noArgs(); err != nil {
			return err
		}
		*sorryInhibit = &c.pos
	case "sorry_server_lvs_method":
		m, err := parseMethod(c)
		if err != nil {
			return err
		}
		*sorryMethod = &m
	case "smtp_alert", "snmp_name", "weight", "hashed":
		p.notice(c.pos, "%s: not used by gvs, ignored", c.kw())
	default:
		return c.pos.errorf("unknown keyword %q in virtual_server", c.kw())
	}
	return nil
}

// addrPort reads "KEYWORD IP [PORT]".
func addrPort(n *node) (netip.Addr, uint16, error) {
	a := n.args()
	if len(a) < 1 || len(a) > 2 {
		return netip.Addr{}, 0, n.pos.errorf("%s: want IP [PORT]", n.kw())
	}
	addr, err := parseAddr(a[0])
	if err != nil {
		return addr, 0, n.pos.errorf("%s: %v", n.kw(), err)
	}
	var port uint16
	if len(a) == 2 {
		if port, err = parsePort(a[1]); err != nil {
			return addr, 0, n.pos.errorf("%s port: %v", n.kw(), err)
		}
	}
	return addr, port, nil
}

func (p *parser) realServer(v *vs, n *node) (*rs, error) {
	addr, port, err := addrPort(n)
	if err != nil {
		return nil, err
	}
	if !n.hasBlock {
		return nil, n.pos.errorf("real_server: no { ... } block")
	}
	r := &rs{pos: n.pos, addr: addr, port: port, weight: 1}
	for _, c := range n.block {
		a := c.args()
		if ok, err := r.defaults.common(c, 1); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		if kind, ok := checkerKinds[c.kw()]; ok {
			if !c.hasBlock {
				return nil, c.pos.errorf("%s: no { ... } block", c.kw())
			}
			cs, err := p.checker(kind, c)
			if err != nil {
				return nil, err
			}
			r.checks = append(r.checks, cs...)
			continue
		}
		if c.hasBlock {
			if c.kw() == "BFD_CHECK" {
				p.notice(c.pos, "BFD_CHECK: not supported by gvs, ignored")
				continue
			}
			return nil, c.pos.errorf("unknown block %q in real_server", c.kw())
		}
		switch c.kw() {
		case "weight":
			w, err := parseUint(strings.Join(a, " "), 0, model.MaxWeight)
			if err != nil {
				return nil, c.pos.errorf("weight: %v", err)
			}
			r.weight = int32(w)
		case "lvs_method", "lb_kind":
			m, err := parseMethod(c)
			if err != nil {
				return nil, err
			}
			r.method = &m
		case "uthreshold", "lthreshold":
			t, err := parseUint(strings.Join(a, " "), 0, 1<<32-1)
			if err != nil {
				return nil, c.pos.errorf("%s: %v", c.kw(), err)
			}
			if c.kw() == "uthreshold" {
				r.uthreshold = uint32(t)
			} else {
				r.lthreshold = uint32(t)
			}
		case "inhibit_on_failure", "alpha":
			b, err := parseBool(a)
			if err != nil {
				return nil, c.pos.errorf("%s: %v", c.kw(), err)
			}
			if c.kw() == "alpha" {
				r.defaults.alpha = &b
			} else {
				r.inhibit = &b
			}
		case "notify_up", "notify_down":
			s, err := parseScript(c.raw, true)
			if err != nil {
				return nil, c.pos.errorf("%s: %v", c.kw(), err)
			}
			if c.kw() == "notify_up" {
				r.notifyUp = s
			} else {
				r.notifyDown = s
			}
		case "smtp_alert", "snmp_name":
			p.notice(c.pos, "%s: not used by gvs, ignored", c.kw())
		default:
			return nil, c.pos.errorf("unknown keyword %q in real_server", c.kw())
		}
	}
	return r, nil
}

// maxGroupServices bounds what one virtual_server_group expands to.
const maxGroupServices = 4096

// keys returns the services of v: its own, or one per entry of its group
// (each address of a range). A fwmark without a family, like keepalived,
// takes ip_family, else the persistence_granularity's form, else the
// family of the real and sorry servers not tunnelled, else of all of
// them if they agree, else IPv4.
func (p *parser) keys(v *vs) ([]model.ServiceKey, error) {
	fwFamily := v.key.Family
	if fwFamily == 0 && v.gran != "" {
		fwFamily = model.IPv6
		if strings.Contains(v.gran, ".") {
			fwFamily = model.IPv4
		}
	}
	if fwFamily == 0 {
		var all, direct []model.Family
		add := func(a netip.Addr, m model.Method) {
			all = append(all, model.FamilyOf(a))
			if m != model.Tunnel {
				direct = append(direct, model.FamilyOf(a))
			}
		}
		for _, r := range v.servers {
			m := v.method
			if r.method != nil {
				m = *r.method
			}
			add(r.addr, m)
		}
		if v.sorry != nil {
			m := v.method
			if v.sorry.method != nil {
				m = *v.sorry.method
			}
			add(v.sorry.addr, m)
		}
		fwFamily = model.IPv4
		if len(direct) > 0 {
			fwFamily = direct[0]
		} else if len(all) > 0 && !slices.ContainsFunc(all, func(f model.Family) bool { return f != all[0] }) {
			fwFamily = all[0]
		}
	}
	if v.group == "" {
		k := v.key
		if k.FWMark != 0 {
			k.Family = fwFamily
		} else {
			k.Protocol = v.protocol
		}
		return []model.ServiceKey{k}, nil
	}
	g := p.groups[v.group]
	var keys []model.ServiceKey
	for _, e := range g.block {
		if e.hasBlock {
			return nil, e.pos.errorf("virtual_server_group %s: unexpected block", v.group)
		}
		w := e.words
		if w[0] == "fwmark" {
			if len(w) < 2 || len(w) > 3 {
				return nil, e.pos.errorf("fwmark: want fwmark N [inet|inet6]")
			}
			m, err := parseUint(w[1], 1, 1<<32-1)
			if err != nil {
				return nil, e.pos.errorf("fwmark: %v", err)
			}
			k := model.ServiceKey{FWMark: uint32(m), Family: fwFamily}
			if len(w) == 3 {
				switch w[2] {
				case "inet":
					k.Family = model.IPv4
				case "inet6":
					k.Family = model.IPv6
				default:
					return nil, e.pos.errorf("fwmark %s: %q: want inet or inet6", w[1], w[2])
				}
			}
			keys = append(keys, k)
			continue
		}
		if len(w) > 2 {
			return nil, e.pos.errorf("virtual_server_group %s: want IP[-RANGE|/LEN] [PORT] or fwmark N [inet|inet6]", v.group)
		}
		first, last, err := parseRange(w[0])
		if err != nil {
			return nil, e.pos.errorf("virtual_server_group %s: %v", v.group, err)
		}
		var port uint16
		if len(w) == 2 {
			if port, err = parsePort(w[1]); err != nil {
				return nil, e.pos.errorf("virtual_server_group %s: port %v", v.group, err)
			}
		}
		for a := first; ; a = a.Next() {
			if len(keys) == maxGroupServices {
				return nil, e.pos.errorf("virtual_server_group %s: more than %d services", v.group, maxGroupServices)
			}
			keys = append(keys, model.ServiceKey{Protocol: v.protocol, Addr: a, Port: port, Family: model.FamilyOf(a)})
			if a == last {
				break
			}
		}
	}
	if len(keys) == 0 {
		return nil, g.pos.errorf("virtual_server_group %s: no entries", v.group)
	}
	return keys, nil
}

// parseRange reads a group address: A, A-B (B a whole address, or the
// last part: IPv4's last byte in decimal, IPv6's last 16 bits in hex), or
// A/LEN (A to the end of the prefix).
func parseRange(s string) (first, last netip.Addr, err error) {
	bad := fmt.Errorf("%q: want an address, a range (192.0.2.1-10, 192.0.2.250-192.0.3.10) or a prefix (192.0.2.8/29)", s)
	if pfx, err := netip.ParsePrefix(s); err == nil && strings.Contains(s, "/") {
		first = pfx.Addr().Unmap()
		b := first.AsSlice()
		bits := pfx.Bits()
		if first.Is4() && pfx.Addr().Is4In6() {
			bits -= 96
		}
		for i := range b {
			for j := 7; j >= 0; j-- {
				if i*8+(7-j) >= bits {
					b[i] |= 1 << j
				}
			}
		}
		last, _ = netip.AddrFromSlice(b)
		return first, last, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err = parseAddr(lo)
	if err != nil {
		return first, last, bad
	}
	if !isRange {
		return first, first, nil
	}
	if last, err = parseAddr(hi); err != nil {
		b := first.AsSlice()
		if first.Is4() {
			v, perr := parseUint(hi, 0, 255)
			if perr != nil {
				return first, last, bad
			}
			b[3] = byte(v)
		} else {
			v, perr := strconv.ParseUint(hi, 16, 16)
			if perr != nil {
				return first, last, bad
			}
			b[14], b[15] = byte(v>>8), byte(v)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	if model.FamilyOf(last) != model.FamilyOf(first) || last.Less(first) {
		return first, last, bad
	}
	return first, last, nil
}

// service adds one service of v.
func (p *parser) service(v *vs, key model.ServiceKey) error {
	svc := model.Service{ServiceKey: key, Scheduler: v.scheduler, Flags: v.flags}
	if v.persist != nil || v.gran != "" {
		svc.Flags |= model.FlagPersistent
		svc.Timeout = model.DefaultPersistTimeout
		if v.persist != nil {
			svc.Timeout = *v.persist
		}
		svc.Netmask = model.DefaultNetmask(key.Family)
		if v.gran != "" {
			m, err := parseGranularity(v.gran, key.Family)
			if err != nil {
				return v.granPos.errorf("persistence_granularity: %v", err)
			}
			svc.Netmask = m
		}
	}
	svc = svc.Normalize()
	for _, f := range v.flagNames {
		if want := f[:2]; (want == "sh" || want == "mh") && svc.Scheduler != want {
			return v.pos.errorf("%s: only for the %s scheduler (lvs_sched %s)", f, want, want)
		}
	}
	if err := svc.Validate(); err != nil {
		return v.pos.errorf("virtual_server %s: %w", svc.ServiceKey, err)
	}
	if prev, ok := p.seen[key]; ok {
		return v.pos.errorf("virtual_server %s: %w (also at %s)", key, model.ErrServiceExists, prev)
	}
	p.seen[key] = v.pos
	sr := control.ServiceRules{Service: svc}
	hs := health.Service{Key: key, Quorum: v.quorum, Hysteresis: v.hysteresis, QuorumUp: v.quorumUp,
		QuorumDown: v.quorumDown, Omega: v.omega, HASuspend: v.haSuspend}
	checked := false
	for _, r := range v.servers {
		m := v.method
		if r.method != nil {
			m = *r.method
		}
		d := model.Dest{Addr: r.addr, Port: r.port, Method: m, Weight: r.weight, UThreshold: r.uthreshold, LThreshold: r.lthreshold}
		if d.Port == 0 {
			d.Port = key.Port
		}
		d = model.NormalizeDest(svc, d)
		if err := model.ValidateDest(svc, d); err != nil {
			return r.pos.errorf("real_server %s of %s: %w", d.AddrPort(), svc.ServiceKey, err)
		}
		if slices.ContainsFunc(sr.Dests, func(x model.Dest) bool { return x.AddrPort() == d.AddrPort() }) {
			return r.pos.errorf("real_server %s of %s: %w", d.AddrPort(), svc.ServiceKey, model.ErrDestExists)
		}
		// Kept newest first, as the kernel lists them.
		sr.Dests = slices.Insert(sr.Dests, 0, d)
		hsrv := health.Server{Addr: d.AddrPort(), Inhibit: v.inhibit, NotifyUp: r.notifyUp, NotifyDown: r.notifyDown}
		if r.inhibit != nil {
			hsrv.Inhibit = *r.inhibit
		}
		inh := r.defaults.over(v.defaults)
		for _, c := range r.checks {
			hsrv.Checks = append(hsrv.Checks, c.spec(inh))
		}
		checked = checked || len(hsrv.Checks) > 0
		hs.Servers = append(hs.Servers, hsrv)
	}
	if v.sorry != nil {
		s := v.sorry
		m := v.method
		if s.method != nil {
			m = *s.method
		}
		d := model.Dest{Addr: s.addr, Port: s.port, Method: m, Weight: 1}
		if d.Port == 0 {
			d.Port = key.Port
		}
		d = model.NormalizeDest(svc, d)
		if err := model.ValidateDest(svc, d); err != nil {
			return s.pos.errorf("sorry_server %s of %s: %w", d.AddrPort(), svc.ServiceKey, err)
		}
		hs.Sorry = &health.Sorry{Dest: d, Inhibit: s.inhibit}
	}
	p.rules.Services = append(p.rules.Services, sr)
	if checked {
		p.health.Services = append(p.health.Services, hs)
	}
	return nil
}

// parseGranularity reads an IPv4 netmask or an IPv6 prefix length.
func parseGranularity(s string, f model.Family) (uint32, error) {
	if f == model.IPv6 {
		v, err := parseUint(s, 1, 128)
		return uint32(v), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q: want an IPv4 netmask such as 255.255.255.0", s)
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}
