package ipvsadm

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gvs/model"
)

// DefaultProgram is the program name used in messages ("Try `gvsadm -h'
// ...") when none is given.
const DefaultProgram = "gvsadm"

// Parser parses ipvsadm command lines. The zero value is ready to use.
type Parser struct {
	// Program is the program name ipvsadm takes from argv[0] for its
	// messages; empty means DefaultProgram.
	Program string
	// Resolver resolves host and service names; nil means Builtin.
	Resolver Resolver
}

// Parse parses one ipvsadm command line (the arguments after the program
// name) with the zero Parser.
func Parse(args []string) (*Command, error) { return Parser{}.Parse(args) }

func (p Parser) program() string {
	if p.Program == "" {
		return DefaultProgram
	}
	return p.Program
}

func (p Parser) resolver() Resolver {
	if p.Resolver == nil {
		return Builtin
	}
	return p.Resolver
}

// tryHelp is ipvsadm's tryhelp_exit(argv[0], -1).
func (p Parser) tryHelp() *Error {
	prog := p.program()
	return &Error{Msg: fmt.Sprintf("Try `%s -h' or '%s --help' for more information.", prog, prog), Code: 255}
}

// unsupportedCode is the exit status for ipvsadm features gvs does not
// implement (ipvsadm's status for a command line it rejects).
const unsupportedCode = 2

func unsupported(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Code: unsupportedCode}
}

// Tunnel types, as ipvsadm numbers them.
const (
	tunIPIP = 0
	tunGUE  = 1
	tunGRE  = 2
)

var tunNames = [...]string{"ipip", "gue", "gre"}

// state is ipvsadm's struct ipvs_command_entry plus its options and
// format words.
type state struct {
	cmd     Kind
	options Options
	format  Format
	list    ListWhat

	// svc
	proto     model.Protocol
	ep        endpoint // family, address, port, netmask of the service
	fwmark    uint32
	sched     string
	flags     model.ServiceFlags
	timeout   uint32
	netmaskM  bool // -M given (explicit netmask, even 0.0.0.0)
	peName    string
	schedArgs string

	// dest
	dest       endpoint
	method     model.Method
	weight     int64
	uThreshold uint32
	lThreshold uint32
	tunType    int

	// local address commands
	laddr  netip.Addr
	ifname string

	timeouts model.Timeouts
	daemon   Daemon

	// --maintenance on|off, --drain
	maintenance bool
	drain       uint32
}

func (s *state) setOption(o Options) *Error {
	if s.options&o != 0 {
		return fail("multiple '%s' options specified", optName(o))
	}
	s.options |= o
	return nil
}

func optName(o Options) string {
	for i := 0; i < numOptions; i++ {
		if o == 1<<i {
			return optNames[i]
		}
	}
	return "?"
}

// Parse parses one ipvsadm command line: args are the arguments after the
// program name. With no arguments the command is a plain list, as for
// ipvsadm.
func (p Parser) Parse(args []string) (*Command, error) {
	if len(args) == 0 {
		return &Command{Kind: KindList, List: ListServiceTable}, nil
	}
	c, err := p.parse(args)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p Parser) parse(args []string) (*Command, *Error) {
	argv := append([]string{p.program()}, args...)
	s := &state{
		weight: 1,
		method: model.Route,
		ep:     endpoint{netmask: 0xffffffff},
	}
	po := newPopt(argv)

	// The first option is the command.
	c, arg := po.getNextOpt()
	if c < 0 {
		return nil, p.tryHelp()
	}
	switch c {
	case 'A':
		s.cmd = KindAddService
	case 'E':
		s.cmd = KindEditService
	case 'D':
		s.cmd = KindDelService
	case 'a':
		s.cmd = KindAddDest
	case 'e':
		s.cmd = KindEditDest
	case 'd':
		s.cmd = KindDelDest
	case 'C':
		s.cmd = KindFlush
	case 'L', 'l':
		s.cmd = KindList
	case 'Z':
		s.cmd = KindZero
	case tagSet:
		s.cmd = KindSetTimeout
	case 'R':
		s.cmd = KindRestore
	case 'S':
		s.cmd = KindSave
	case 'P':
		s.cmd = KindAddLaddr
	case 'Q':
		s.cmd = KindDelLaddr
	case 'G':
		s.cmd = KindGetLaddr
	case tagListChecks:
		s.cmd = KindListChecks
	case tagMaintenance:
		s.cmd = KindMaintenance
		switch *arg {
		case "on":
			s.maintenance = true
		case "off":
		default:
			return nil, fail("illegal maintenance parameter specified (on or off)")
		}
	case tagStartDaemon:
		s.cmd = KindStartDaemon
		if *arg != "master" && *arg != "backup" {
			return nil, fail("illegal start-daemon parameter specified")
		}
		s.daemon.State = *arg
	case tagStopDaemon:
		s.cmd = KindStopDaemon
		if *arg != "master" && *arg != "backup" {
			return nil, fail("illegal start_daemon specified")
		}
		s.daemon.State = *arg
	case 'h':
		return &Command{Kind: KindHelp}, nil
	case 'v':
		return &Command{Kind: KindVersion}, nil
	default:
		return nil, p.tryHelp()
	}

	// The options.
	r := p.resolver()
	for {
		c, arg = po.getNextOpt()
		if c < 0 {
			break
		}
		if err := s.option(c, arg, r, po); err != nil {
			return nil, err
		}
	}
	if c < poptEnd {
		return nil, &Error{Msg: fmt.Sprintf("%s: %s", po.badOption(), poptStrerror(c)), Code: 255}
	}

	if s.cmd == KindSetTimeout {
		a0, a1, a2 := po.getArg(), po.getArg(), po.getArg()
		if a0 == nil || a1 == nil || a2 == nil {
			return nil, fail("--set option requires 3 timeout values")
		}
		var vals [3]uint32
		for i, a := range []*string{a0, a1, a2} {
			v, err := parseTimeout(*a, 0, model.MaxPersistTimeout)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		s.timeouts = model.Timeouts{TCP: vals[0], TCPFin: vals[1], UDP: vals[2]}
	}
	if a := po.getArg(); a != nil {
		return nil, fail("unexpected argument %s", *a)
	}
	if s.schedArgs != "" {
		f, err := parseSchedFlags(s.sched, s.schedArgs)
		if err != nil {
			return nil, err
		}
		s.flags = s.flags&^(model.FlagSched1|model.FlagSched2|model.FlagSched3) | f
	}

	// process_options
	if err := genericOptCheck(s.cmd, s.options); err != nil {
		return nil, err
	}
	if s.cmd == KindAddService || s.cmd == KindEditService {
		if s.fwmark == 0 && s.ep.port == 0 && s.flags&model.FlagPersistent == 0 {
			return nil, fail("Zero port specified for non-persistent service")
		}
		if s.flags&model.FlagOnePacket != 0 && s.fwmark == 0 && s.proto != model.ProtoUDP {
			return nil, fail("One-Packet Scheduling is only for UDP virtual services")
		}
	}
	if s.cmd == KindStartDaemon && s.daemon.McastIfn == "" {
		s.daemon.McastIfn = "eth0"
	}
	if s.cmd == KindAddDest || s.cmd == KindEditDest {
		if s.fwmark == 0 && (s.method == model.Tunnel || s.method == model.Route) {
			s.dest.port = s.ep.port
		}
		// gvs: and an IPv6 service's IPv4 FULLNAT servers (NAT64, as
		// DPVS's ipvsadm takes them).
		nat64 := s.method == model.FullNAT && s.ep.af == model.IPv6 && s.dest.af == model.IPv4
		if s.dest.af != s.ep.af && s.method != model.Tunnel && !nat64 {
			return nil, fail("Different address family is allowed only for tunneling servers")
		}
		if s.options&(OptTunType|OptTunPort|OptTunNoCsum|OptTunCsum|OptTunRemCsum) != 0 && s.method != model.Tunnel {
			return nil, fail("Tunnel options conflict with forward method")
		}
		if err := tunnelOptCheck(s.tunType, s.options); err != nil {
			return nil, err
		}
	}
	if s.cmd == KindList {
		o := s.options
		if (o&(OptConnection|OptTimeout|OptDaemon) != 0 && o&(OptStats|OptRate|OptThresholds) != 0) ||
			(o&(OptTimeout|OptDaemon) != 0 && o&OptPersistentConn != 0) {
			return nil, fail("options conflicts in the list command")
		}
		switch {
		case o&OptConnection != 0:
			s.list = ListConnTable
		case o&OptService != 0:
			s.list = ListServiceTable
		case o&OptTimeout != 0:
			s.list = ListTimeouts
		case o&OptDaemon != 0:
			s.list = ListDaemons
		}
	}

	// What gvs does not implement, once ipvsadm's own checks passed.
	switch {
	case s.peName != "" && (s.cmd == KindAddService || s.cmd == KindEditService):
		return nil, unsupported("--pe %s: persistence engines are not supported by gvs", s.peName)
	case s.tunType != tunIPIP && (s.cmd == KindAddDest || s.cmd == KindEditDest):
		return nil, unsupported("--tun-type %s: only ipip tunnels are supported by gvs", tunNames[s.tunType])
	}
	return s.command(), nil
}

// option handles one option after the command (the loop of
// parse_options).
func (s *state) option(c int, arg *string, r Resolver, po *popt) *Error {
	switch c {
	case 't', 'u', tagSCTPService:
		if err := s.setOption(OptService); err != nil {
			return err
		}
		s.proto = map[int]model.Protocol{'t': model.ProtoTCP, 'u': model.ProtoUDP, tagSCTPService: model.ProtoSCTP}[c]
		if parseService(*arg, s.proto, r, &s.ep)&serviceAddr == 0 {
			return fail("illegal virtual server address[:port] specified")
		}
	case 'f':
		if err := s.setOption(OptService); err != nil {
			return err
		}
		// ipvsadm sets a "sane" protocol for look-ups of -r's port.
		s.ep.af, s.proto = model.IPv4, model.ProtoTCP
		v, rest, ok, overflow := strtol10(*arg)
		if rest != "" || !ok || overflow || v <= 0 || v > 0xffffffff {
			return fail("invalid fwmark value `%s' specified", *arg)
		}
		s.fwmark = uint32(v)
	case 's':
		if err := s.setOption(OptScheduler); err != nil {
			return err
		}
		s.sched = truncate(*arg, 15) // IP_VS_SCHEDNAME_MAXLEN - 1
	case 'p':
		if err := s.setOption(OptPersistent); err != nil {
			return err
		}
		s.flags |= model.FlagPersistent
		if arg == nil {
			s.timeout = model.DefaultPersistTimeout
		} else {
			t, err := parseTimeout(*arg, 1, model.MaxPersistTimeout)
			if err != nil {
				return err
			}
			s.timeout = t
		}
	case 'M':
		if err := s.setOption(OptNetmask); err != nil {
			return err
		}
		s.netmaskM = true
		if s.ep.af != model.IPv6 {
			m, ok := parseNetmask(*arg, r)
			if !ok {
				return fail("illegal virtual server persistent mask specified")
			}
			s.ep.netmask = m
		} else {
			m := uint32(atoi(*arg))
			if m < 1 || m > 128 {
				return fail("illegal ipv6 netmask specified")
			}
			s.ep.netmask = m
		}
	case 'r':
		if err := s.setOption(OptServer); err != nil {
			return err
		}
		// ipvsadm parses into a copy of the service.
		t := s.ep
		res := parseService(*arg, s.proto, r, &t)
		s.dest = endpoint{af: t.af, addr: t.addr, port: t.port}
		if res&serviceAddr == 0 {
			return fail("illegal real server address[:port] specified")
		}
		if res == serviceAddr {
			s.dest.port = s.ep.port
		}
	case 'i', 'g', 'm', tagFullNAT:
		if err := s.setOption(OptForward); err != nil {
			return err
		}
		s.method = map[int]model.Method{'i': model.Tunnel, 'g': model.Route, 'm': model.Masq, tagFullNAT: model.FullNAT}[c]
	case 'w':
		if err := s.setOption(OptWeight); err != nil {
			return err
		}
		if s.weight = stringToNumber(*arg, 0, 65535); s.weight == -1 {
			return fail("illegal weight specified")
		}
	case 'x':
		if err := s.setOption(OptUThreshold); err != nil {
			return err
		}
		v := stringToNumber(*arg, 0, 1<<31-1)
		if v == -1 {
			return fail("illegal u_threshold specified")
		}
		s.uThreshold = uint32(v)
	case 'y':
		if err := s.setOption(OptLThreshold); err != nil {
			return err
		}
		v := stringToNumber(*arg, 0, 1<<31-1)
		if v == -1 {
			return fail("illegal l_threshold specified")
		}
		s.lThreshold = uint32(v)
	case 'c':
		return s.setOption(OptConnection)
	case 'n':
		s.format.Numeric = true
		return s.setOption(OptNumeric)
	case tagMcastInterface:
		if err := s.setOption(OptMcastInterface); err != nil {
			return err
		}
		s.daemon.McastIfn = truncate(*arg, 15)
	case tagSyncID:
		if err := s.setOption(OptSyncID); err != nil {
			return err
		}
		v := stringToNumber(*arg, 0, 255)
		if v == -1 {
			return fail("illegal syncid specified")
		}
		s.daemon.SyncID = int(v)
	case tagTimeout:
		return s.setOption(OptTimeout)
	case tagDaemon:
		return s.setOption(OptDaemon)
	case tagStats:
		s.format.Stats = true
		return s.setOption(OptStats)
	case tagRate:
		s.format.Rate = true
		return s.setOption(OptRate)
	case tagThresholds:
		s.format.Thresholds = true
		return s.setOption(OptThresholds)
	case tagPersistentConn:
		s.format.PersistentConn = true
		return s.setOption(OptPersistentConn)
	case tagNoSort:
		s.format.NoSort = true
		return s.setOption(OptNoSort)
	case tagSort:
		// The default; a no-op kept for compatibility.
	case 'X':
		s.format.Exact = true
		return s.setOption(OptExact)
	case '6':
		if s.fwmark == 0 {
			return fail("-6 used before -f\n")
		}
		s.ep.af = model.IPv6
		s.ep.netmask = 128
	case 'o':
		if err := s.setOption(OptOnePacket); err != nil {
			return err
		}
		s.flags |= model.FlagOnePacket
	case tagPersistenceEngine:
		if err := s.setOption(OptPersistenceEngine); err != nil {
			return err
		}
		s.peName = truncate(*arg, 16)
	case 'b':
		if err := s.setOption(OptSchedFlags); err != nil {
			return err
		}
		s.schedArgs = truncate(*arg, 127)
	case tagMcastGroup:
		if err := s.setOption(OptMcastGroup); err != nil {
			return err
		}
		if strings.Contains(*arg, ":") {
			a, ok := inetPton6(*arg)
			if !ok || !a.IsMulticast() {
				return fail("invalid IPv6 mcast-group `%s'", *arg)
			}
		} else {
			a, err := netip.ParseAddr(*arg)
			if err != nil || !a.Is4() || !a.IsMulticast() {
				return fail("invalid IPv4 mcast-group `%s'", *arg)
			}
		}
		s.daemon.McastGroup = *arg
	case tagMcastPort:
		if err := s.setOption(OptMcastPort); err != nil {
			return err
		}
		v := stringToNumber(*arg, 1, 65535)
		if v == -1 {
			return fail("illegal mcast-port specified")
		}
		s.daemon.McastPort = int(v)
	case tagMcastTTL:
		if err := s.setOption(OptMcastTTL); err != nil {
			return err
		}
		v := stringToNumber(*arg, 1, 255)
		if v == -1 {
			return fail("illegal mcast-ttl specified")
		}
		s.daemon.McastTTL = int(v)
	case tagSyncMaxLen:
		if err := s.setOption(OptSyncMaxLen); err != nil {
			return err
		}
		v := stringToNumber(*arg, 1, 65535-20-8)
		if v == -1 {
			return fail("illegal sync-maxlen specified")
		}
		s.daemon.SyncMaxLen = int(v)
	case tagTunInfo:
		s.format.TunInfo = true
		return s.setOption(OptTunInfo)
	case tagTunType:
		if err := s.setOption(OptTunType); err != nil {
			return err
		}
		t := -1
		for i, n := range tunNames {
			if *arg == n {
				t = i
			}
		}
		if t == -1 {
			return fail("illegal tunnel type specified")
		}
		s.tunType = t
	case tagTunPort:
		if err := s.setOption(OptTunPort); err != nil {
			return err
		}
		if stringToNumber(*arg, 1, 65535) == -1 {
			return fail("illegal tunnel port specified")
		}
	case tagTunNoCsum:
		return s.setOption(OptTunNoCsum)
	case tagTunCsum:
		return s.setOption(OptTunCsum)
	case tagTunRemCsum:
		return s.setOption(OptTunRemCsum)
	case 'z':
		if err := s.setOption(OptLocalAddress); err != nil {
			return err
		}
		// DPVS parses it as a service address: a port is allowed and
		// ignored.
		var t endpoint
		if parseService(*arg, s.proto, r, &t)&serviceAddr == 0 {
			return fail("illegal local address")
		}
		s.laddr = t.addr
	case 'F':
		if err := s.setOption(OptIfname); err != nil {
			return err
		}
		s.ifname = truncate(*arg, 15)
	case tagDrain:
		if err := s.setOption(OptDrain); err != nil {
			return err
		}
		v, err := strconv.ParseUint(*arg, 10, 32)
		if err != nil || v > 86400 {
			return fail("illegal drain time specified (0 to 86400 seconds)")
		}
		s.drain = uint32(v)
	default:
		return fail("invalid option `%s'", po.badOption())
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseTimeout is ipvsadm's parse_timeout for a given value.
func parseTimeout(buf string, min, max int64) (uint32, *Error) {
	v := stringToNumber(buf, min, max)
	if v == -1 {
		return 0, fail("invalid timeout value `%s' specified", buf)
	}
	return uint32(v), nil
}

// parseSchedFlags is ipvsadm's parse_sched_flags.
func parseSchedFlags(sched, arg string) (model.ServiceFlags, *Error) {
	if sched == "" {
		sched = model.DefaultScheduler
	}
	var flags model.ServiceFlags
	tokens := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' })
	if len(tokens) == 0 {
		// ipvsadm dereferences a NULL token here and crashes.
		return 0, fail("invalid scheduler flag `%s'", "")
	}
	for _, f := range tokens {
		switch f {
		case "flag-1":
			flags |= model.FlagSched1
		case "flag-2":
			flags |= model.FlagSched2
		case "flag-3":
			flags |= model.FlagSched3
		case "sh-fallback", "sh-port", "mh-fallback", "mh-port":
			if strings.HasSuffix(f, "-fallback") {
				flags |= model.FlagSched1
			} else {
				flags |= model.FlagSched2
			}
			if sched != f[:2] {
				return 0, fail("incompatible scheduler flag `%s'", f)
			}
		default:
			return 0, fail("invalid scheduler flag `%s'", f)
		}
	}
	return flags, nil
}

// Table of legal combinations of commands and options (ipvsadm's
// commands_v_options): '+' compulsory, 'x' illegal, '1' exclusive (only
// one '1' option can be supplied), ' ' optional. The local address rows
// and columns are DPVS ipvsadm's, but for --ifname: DPVS needs it to put
// the address on an interface, gvs puts none, so it is optional (and
// ignored) for the -P and -Q lines that -S writes without it.
var commandsVOptions = [...][numOptions]byte{
	//                 -n   -c   svc  -s   -p   -M   -r   fwd  -w   -x   -y   -mc  tot  dmn  -st  -rt  thr  -pc  srt  sid  -ex  ops  -pe  -b   grp  port ttl  size tinf type tprt nocs csum remc lad  ifn  drn
	KindAddService:  {'x', 'x', '+', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindEditService: {'x', 'x', '+', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindDelService:  {'x', 'x', '+', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindFlush:       {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindList:        {' ', '1', '1', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', '1', '1', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindAddDest:     {'x', 'x', '+', 'x', 'x', 'x', '+', ' ', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', ' ', ' ', ' ', ' ', 'x', 'x', 'x'},
	KindDelDest:     {'x', 'x', '+', 'x', 'x', 'x', '+', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindEditDest:    {'x', 'x', '+', 'x', 'x', 'x', '+', ' ', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', ' ', ' ', ' ', ' ', 'x', 'x', 'x'},
	KindSetTimeout:  {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindStartDaemon: {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', 'x', 'x', 'x', 'x', ' ', ' ', ' ', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindStopDaemon:  {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindRestore:     {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindSave:        {' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindZero:        {'x', 'x', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindAddLaddr:    {'x', 'x', '+', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', '+', ' ', 'x'},
	KindDelLaddr:    {'x', 'x', '+', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', '+', ' ', 'x'},
	KindGetLaddr:    {'x', 'x', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindListChecks:  {' ', 'x', ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'},
	KindMaintenance: {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', ' '},
}

// genericOptCheck is ipvsadm's generic_opt_check.
func genericOptCheck(cmd Kind, options Options) *Error {
	row := commandsVOptions[cmd]
	last, count := 0, 0
	for j := 0; j < numOptions; j++ {
		if options&(1<<j) == 0 {
			if row[j] == '+' {
				return fail("You need to supply the '%s' option for the '%s' command", optNames[j], cmd)
			}
			continue
		}
		if row[j] == 'x' {
			return fail("Illegal '%s' option with the '%s' command", optNames[j], cmd)
		}
		if row[j] == '1' {
			count++
			if count == 1 {
				last = j
				continue
			}
			return fail("The option '%s' conflicts with the '%s' option in the '%s' command", optNames[j], optNames[last], cmd)
		}
	}
	return nil
}

// The tunnel options and the table of legal combinations of tunnel types
// and options (ipvsadm's tunnel_types_v_options).
var tunOpts = [4]int{30, 31, 32, 33} // tun-port, tun-nocsum, tun-csum, tun-remcsum

var tunnelTypesVOptions = [3][4]byte{
	//          tprt nocs csum remc
	tunIPIP: {'x', 'x', 'x', 'x'},
	tunGUE:  {'+', '1', '1', '1'},
	tunGRE:  {'x', '1', '1', 'x'},
}

// tunnelOptCheck is ipvsadm's tunnel_opt_check.
func tunnelOptCheck(tunType int, options Options) *Error {
	row := tunnelTypesVOptions[tunType]
	last, count := 0, 0
	for j, k := range tunOpts {
		if options&(1<<k) == 0 {
			if row[j] == '+' {
				return fail("You need to supply the '%s' option for the '%s' tunnel type", optNames[k], tunNames[tunType])
			}
			continue
		}
		if row[j] == 'x' {
			return fail("Illegal '%s' option with the '%s' tunnel type", optNames[k], tunNames[tunType])
		}
		if row[j] == '1' {
			count++
			if count == 1 {
				last = k
				continue
			}
			return fail("The option '%s' conflicts with the '%s' option in the '%s' tunnel type", optNames[k], optNames[last], tunNames[tunType])
		}
	}
	return nil
}

// command builds the Command of a checked command line.
func (s *state) command() *Command {
	c := &Command{Kind: s.cmd, Given: s.options, Timeouts: s.timeouts, List: s.list, Format: s.format, Daemon: s.daemon,
		Maintenance: s.maintenance, Drain: s.drain}
	if s.options.Has(OptService) {
		svc := model.Service{
			ServiceKey: model.ServiceKey{Family: s.ep.af},
			Scheduler:  s.sched,
			Flags:      s.flags,
			Netmask:    s.ep.netmask,
		}
		if s.flags&model.FlagPersistent != 0 {
			svc.Timeout = s.timeout
		}
		if s.fwmark != 0 {
			svc.FWMark = s.fwmark
		} else {
			svc.Protocol, svc.Addr, svc.Port = s.proto, s.ep.addr, s.ep.port
		}
		svc = svc.Normalize()
		if s.netmaskM {
			// An explicit -M 0.0.0.0 is kept (Normalize would read 0
			// as "none given").
			svc.Netmask = s.ep.netmask
		}
		c.Service = svc
		if s.cmd == KindList {
			key := svc.ServiceKey
			c.Format.Service = &key
		}
	}
	if s.cmd == KindAddLaddr || s.cmd == KindDelLaddr {
		c.LocalAddr = s.laddr
	}
	if s.options.Has(OptServer) {
		d := model.Dest{
			Addr:       s.dest.addr,
			Port:       s.dest.port,
			Method:     s.method,
			Weight:     int32(s.weight),
			UThreshold: s.uThreshold,
			LThreshold: s.lThreshold,
		}
		if s.cmd == KindAddDest || s.cmd == KindEditDest {
			d = model.NormalizeDest(c.Service, d)
		}
		c.Dest = d
	}
	return c
}
