package ipvsadm

import (
	"fmt"
	"net/netip"

	"gvs/model"
)

// Kind is the command of an ipvsadm command line. The values follow
// ipvsadm's CMD_* numbers (DPVS ipvsadm's for the local address
// commands); Help and Version come after them.
type Kind int

// Commands.
const (
	KindNone        Kind = iota
	KindAddService       // -A, --add-service
	KindEditService      // -E, --edit-service
	KindDelService       // -D, --delete-service
	KindFlush            // -C, --clear
	KindList             // -L, -l, --list (and no arguments at all)
	KindAddDest          // -a, --add-server
	KindDelDest          // -d, --delete-server
	KindEditDest         // -e, --edit-server
	KindSetTimeout       // --set tcp tcpfin udp
	KindStartDaemon      // --start-daemon (parsed, then rejected)
	KindStopDaemon       // --stop-daemon (parsed, then rejected)
	KindRestore          // -R, --restore
	KindSave             // -S, --save
	KindZero             // -Z, --zero
	KindAddLaddr         // -P, --add-laddr (DPVS ipvsadm)
	KindDelLaddr         // -Q, --del-laddr (DPVS ipvsadm)
	KindGetLaddr         // -G, --get-laddr (DPVS ipvsadm)
	KindListChecks       // --list-checks (gvs extension: the health checks)
	KindMaintenance      // --maintenance on|off (gvs extension: BGP maintenance)
	KindHelp             // -h, --help: print Usage, exit 0
	KindVersion          // -v, --version: print Version, exit 0
)

// cmdNames are ipvsadm's names of the commands, used in its messages.
var cmdNames = [...]string{
	KindAddService:  "add-service",
	KindEditService: "edit-service",
	KindDelService:  "delete-service",
	KindFlush:       "flush",
	KindList:        "list",
	KindAddDest:     "add-server",
	KindDelDest:     "delete-server",
	KindEditDest:    "edit-server",
	KindSetTimeout:  "set",
	KindStartDaemon: "start-daemon",
	KindStopDaemon:  "stop-daemon",
	KindRestore:     "restore",
	KindSave:        "save",
	KindZero:        "zero",
	KindAddLaddr:    "add-laddr",
	KindDelLaddr:    "del-laddr",
	KindGetLaddr:    "get-laddr",
	KindListChecks:  "list-checks",
	KindMaintenance: "maintenance",
	KindHelp:        "help",
	KindVersion:     "version",
}

// String returns ipvsadm's name of the command ("add-service", "list", ...).
func (k Kind) String() string {
	if k > KindNone && int(k) < len(cmdNames) {
		return cmdNames[k]
	}
	return "none"
}

// Options is the set of options given on a command line, with ipvsadm's
// option numbers (OPT_* in ipvsadm.c). Executors may use it to tell a
// default from an explicit value (Given.Has(OptWeight)).
type Options uint64

// Options, in ipvsadm's order.
const (
	OptNumeric Options = 1 << iota
	OptConnection
	OptService
	OptScheduler
	OptPersistent
	OptNetmask
	OptServer
	OptForward
	OptWeight
	OptUThreshold
	OptLThreshold
	OptMcastInterface
	OptTimeout
	OptDaemon
	OptStats
	OptRate
	OptThresholds
	OptPersistentConn
	OptNoSort
	OptSyncID
	OptExact
	OptOnePacket
	OptPersistenceEngine
	OptSchedFlags
	OptMcastGroup
	OptMcastPort
	OptMcastTTL
	OptSyncMaxLen
	OptTunInfo
	OptTunType
	OptTunPort
	OptTunNoCsum
	OptTunCsum
	OptTunRemCsum
	OptLocalAddress // -z, --laddr (DPVS ipvsadm)
	OptIfname       // -F, --ifname (DPVS ipvsadm; accepted, not used)
	OptDrain        // --drain SECONDS (gvs: with --maintenance on)
)

const numOptions = 37

// optNames are ipvsadm's names of the options, used in its messages.
var optNames = [numOptions]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
	"sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
	"tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum",
	"tun-remcsum", "local-address", "ifname", "drain",
}

// Has reports whether every option of o is in the set.
func (s Options) Has(o Options) bool { return s&o == o }

// ListWhat is what a list command lists.
type ListWhat int

// What -L lists.
const (
	ListServiceTable ListWhat = iota // the virtual server table (or one service)
	ListConnTable                    // -c: the connection table
	ListTimeouts                     // --timeout: the connection timeouts
	ListDaemons                      // --daemon: the sync daemons (gvs has none)
)

// Command is one parsed ipvsadm command line.
type Command struct {
	Kind Kind
	// Given is the set of options on the command line.
	Given Options

	// Service is the virtual service (-t, -u, --sctp-service, -f), with
	// its options, completed by model.Service.Normalize (default
	// scheduler wlc, default netmask). It is the zero Service when no
	// service was given (HasService reports which).
	Service model.Service
	// Dest is the real server of -a, -e and -d: weight 1 and direct
	// routing unless given. For -a and -e, model.NormalizeDest is applied
	// (direct routing and tunnelling keep the service's port), as ipvsadm
	// does; for -d the port is the one given (or the service's when none
	// was given), as ipvsadm sends it.
	Dest model.Dest

	// LocalAddr is the FULLNAT local address of -P and -Q (-z). A port
	// given with it is ignored, as DPVS ipvsadm does.
	LocalAddr netip.Addr

	// Timeouts are the three values of --set (0 = leave unchanged, as
	// the kernel reads it).
	Timeouts model.Timeouts

	// List is what KindList lists; Format how (and, for a list with a
	// service, which service). Save uses Format.Numeric.
	List   ListWhat
	Format Format

	// Maintenance is --maintenance on (true) or off, and Drain its
	// --drain seconds: the VIPs announced with GRACEFUL_SHUTDOWN before
	// they are withdrawn.
	Maintenance bool
	Drain       uint32

	// Daemon holds the sync daemon options (commands that use them are
	// rejected, but the values are checked as ipvsadm checks them).
	Daemon Daemon
}

// HasService reports whether a virtual service was given.
func (c *Command) HasService() bool { return c.Given.Has(OptService) }

// Daemon is the configuration of ipvsadm's --start-daemon and
// --stop-daemon. gvs does not implement connection synchronisation; it is
// kept so that the checks and messages are ipvsadm's.
type Daemon struct {
	State      string // "master" or "backup"
	McastIfn   string
	SyncID     int
	SyncMaxLen int
	McastGroup string
	McastPort  int
	McastTTL   int
}

// Error is a command line ipvsadm rejects: its message, as ipvsadm prints
// it on stderr (a newline follows), and its exit status.
type Error struct {
	Msg  string
	Code int
}

func (e *Error) Error() string { return e.Msg }

// ExitCode is the status ipvsadm exits with: 2 for its fail(2, ...)
// messages, 255 for popt errors and the "Try ... -h" hint.
func (e *Error) ExitCode() int { return e.Code }

func fail(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Code: 2}
}
