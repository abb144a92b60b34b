package ipvsadm

import "strings"

// A small re-implementation of the parts of popt (1.16 and later) that
// ipvsadm uses: poptGetNextOpt over a fixed option table, poptGetArg for
// the words that are not options, and poptBadOption for messages.

type argKind int

const (
	argNone     argKind = iota
	argRequired         // POPT_ARG_STRING
	argOptional         // POPT_ARG_STRING | POPT_ARGFLAG_OPTIONAL
)

// Option tags of the long-only options (ipvsadm's TAG_* values are
// outside the ASCII range, like these).
const (
	tagSet = 128 + iota
	tagStartDaemon
	tagStopDaemon
	tagMcastInterface
	tagTimeout
	tagDaemon
	tagStats
	tagRate
	tagThresholds
	tagPersistentConn
	tagSort
	tagNoSort
	tagPersistenceEngine
	tagSCTPService
	tagMcastGroup
	tagMcastPort
	tagMcastTTL
	tagSyncMaxLen
	tagTunInfo
	tagTunType
	tagTunPort
	tagTunNoCsum
	tagTunCsum
	tagTunRemCsum
	tagFullNAT // gvs extension
	tagListChecks
	tagMaintenance
	tagDrain
	tagSyncID // ipvsadm uses 'I' but gives the option no short name
)

type optSpec struct {
	long  string
	short byte
	arg   argKind
	val   int
}

// optionTable is ipvsadm 1.31's popt table, in its order (the first of
// two entries with the same long name wins), plus --fullnat and DPVS
// ipvsadm's local address commands and options.
var optionTable = []optSpec{
	{"add-service", 'A', argNone, 'A'},
	{"edit-service", 'E', argNone, 'E'},
	{"delete-service", 'D', argNone, 'D'},
	{"clear", 'C', argNone, 'C'},
	{"list", 'L', argNone, 'L'},
	{"list", 'l', argNone, 'l'},
	{"zero", 'Z', argNone, 'Z'},
	{"add-server", 'a', argNone, 'a'},
	{"edit-server", 'e', argNone, 'e'},
	{"delete-server", 'd', argNone, 'd'},
	{"set", 0, argNone, tagSet},
	{"help", 'h', argNone, 'h'},
	{"version", 'v', argNone, 'v'},
	{"restore", 'R', argNone, 'R'},
	{"save", 'S', argNone, 'S'},
	{"start-daemon", 0, argRequired, tagStartDaemon},
	{"stop-daemon", 0, argRequired, tagStopDaemon},
	{"tcp-service", 't', argRequired, 't'},
	{"udp-service", 'u', argRequired, 'u'},
	{"sctp-service", 0, argRequired, tagSCTPService},
	{"fwmark-service", 'f', argRequired, 'f'},
	{"scheduler", 's', argRequired, 's'},
	{"persistent", 'p', argOptional, 'p'},
	{"netmask", 'M', argRequired, 'M'},
	{"real-server", 'r', argRequired, 'r'},
	{"masquerading", 'm', argNone, 'm'},
	{"ipip", 'i', argNone, 'i'},
	{"gatewaying", 'g', argNone, 'g'},
	{"weight", 'w', argRequired, 'w'},
	{"u-threshold", 'x', argRequired, 'x'},
	{"l-threshold", 'y', argRequired, 'y'},
	{"numeric", 'n', argNone, 'n'},
	{"connection", 'c', argNone, 'c'},
	{"mcast-interface", 0, argRequired, tagMcastInterface},
	{"syncid", 0, argRequired, tagSyncID},
	{"timeout", 0, argNone, tagTimeout},
	{"daemon", 0, argNone, tagDaemon},
	{"stats", 0, argNone, tagStats},
	{"rate", 0, argNone, tagRate},
	{"thresholds", 0, argNone, tagThresholds},
	{"persistent-conn", 0, argNone, tagPersistentConn},
	{"nosort", 0, argNone, tagNoSort},
	{"sort", 0, argNone, tagSort},
	{"exact", 'X', argNone, 'X'},
	{"ipv6", '6', argNone, '6'},
	{"ops", 'o', argNone, 'o'},
	{"pe", 0, argRequired, tagPersistenceEngine},
	{"sched-flags", 'b', argRequired, 'b'},
	{"mcast-group", 0, argRequired, tagMcastGroup},
	{"mcast-port", 0, argRequired, tagMcastPort},
	{"mcast-ttl", 0, argRequired, tagMcastTTL},
	{"sync-maxlen", 0, argRequired, tagSyncMaxLen},
	{"tun-info", 0, argNone, tagTunInfo},
	{"tun-type", 0, argRequired, tagTunType},
	{"tun-port", 0, argRequired, tagTunPort},
	{"tun-nocsum", 0, argNone, tagTunNoCsum},
	{"tun-csum", 0, argNone, tagTunCsum},
	{"tun-remcsum", 0, argNone, tagTunRemCsum},
	{"fullnat", 0, argNone, tagFullNAT},
	{"add-laddr", 'P', argNone, 'P'},
	{"del-laddr", 'Q', argNone, 'Q'},
	{"get-laddr", 'G', argNone, 'G'},
	{"list-checks", 0, argNone, tagListChecks},
	{"maintenance", 0, argRequired, tagMaintenance},
	{"drain", 0, argRequired, tagDrain},
	{"laddr", 'z', argRequired, 'z'},
	{"ifname", 'F', argRequired, 'F'},
}

// popt errors (poptGetNextOpt's negative results) and their messages.
const (
	poptEnd      = -1
	poptNoArg    = -10 // POPT_ERROR_NOARG
	poptBadOpt   = -11 // POPT_ERROR_BADOPT
	poptBadOptMs = "unknown option"
	poptNoArgMs  = "missing argument"
)

func poptStrerror(code int) string {
	if code == poptNoArg {
		return poptNoArgMs
	}
	return poptBadOptMs
}

type popt struct {
	argv         []string // argv[0] is the program name
	next         int
	nextChar     string // rest of a short-option cluster
	hasNextChar  bool
	restLeftover bool
	leftovers    []string
	nextLeftover int
}

func newPopt(argv []string) *popt { return &popt{argv: argv, next: 1} }

func findLong(name string) *optSpec {
	for i := range optionTable {
		if optionTable[i].long == name {
			return &optionTable[i]
		}
	}
	return nil
}

func findShort(c byte) *optSpec {
	if c == 0 {
		return nil
	}
	for i := range optionTable {
		if optionTable[i].short == c {
			return &optionTable[i]
		}
	}
	return nil
}

// getNextOpt is poptGetNextOpt: the next option's value and its argument
// (arg is nil for an option without one, or an optional one left out),
// or poptEnd, or an error code.
func (p *popt) getNextOpt() (val int, arg *string) {
	for {
		if !p.hasNextChar && p.next == len(p.argv) {
			return poptEnd, nil
		}
		var opt *optSpec
		var longArg *string
		if !p.hasNextChar {
			orig := p.argv[p.next]
			p.next++
			if p.restLeftover || !strings.HasPrefix(orig, "-") || orig == "-" {
				p.leftovers = append(p.leftovers, orig)
				continue
			}
			if orig == "--" {
				p.restLeftover = true
				continue
			}
			s := orig[1:]
			if s[0] == '-' {
				s = s[1:]
				name := s
				if i := strings.IndexByte(s, '='); i >= 0 {
					name = s[:i]
					v := s[i+1:]
					longArg = &v
				}
				opt = findLong(name)
				if opt == nil {
					return poptBadOpt, nil
				}
			} else {
				// A single dash: no option of the table may be
				// written so (none has POPT_ARGFLAG_ONEDASH), so
				// it is a cluster of short options.
				p.nextChar, p.hasNextChar = orig[1:], true
			}
		}
		if p.hasNextChar {
			nc := p.nextChar
			p.nextChar, p.hasNextChar = "", false
			var c byte
			if nc != "" {
				c = nc[0]
			}
			opt = findShort(c)
			if opt == nil {
				return poptBadOpt, nil
			}
			rest := nc[1:]
			if rest != "" {
				if rest[0] == '=' {
					rest = rest[1:]
				}
				p.nextChar, p.hasNextChar = rest, true
			}
		}
		if opt.arg != argNone {
			switch {
			case longArg != nil:
				arg = longArg
			case p.hasNextChar:
				v := p.nextChar
				arg = &v
				p.nextChar, p.hasNextChar = "", false
			case p.next == len(p.argv):
				if opt.arg != argOptional {
					return poptNoArg, nil
				}
			case opt.arg == argOptional && strings.HasPrefix(p.argv[p.next], "-"):
				// popt 1.16+: an optional argument is never a word
				// that starts with '-'.
			default:
				v := p.argv[p.next]
				p.next++
				arg = &v
			}
		}
		return opt.val, arg
	}
}

// badOption is poptBadOption: the last word consumed.
func (p *popt) badOption() string { return p.argv[p.next-1] }

// getArg is poptGetArg: the next word that was not an option, or nil.
func (p *popt) getArg() *string {
	if p.nextLeftover < len(p.leftovers) {
		s := p.leftovers[p.nextLeftover]
		p.nextLeftover++
		return &s
	}
	return nil
}
