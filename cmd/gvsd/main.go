// Command gvsd is the gvs director daemon: it holds the rules, keeps them
// on disk, runs a data-plane engine and serves the control API that gvsadm
// uses.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"gvs/api"
	"gvs/apiserver"
	"gvs/client"
	"gvs/config"
	"gvs/control"
	"gvs/engine"
	"gvs/engine/proxy"
	"gvs/engine/xdp"
	"gvs/hcfwd"
	"gvs/health"
	"gvs/model"
	"gvs/vrrp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type listFlag []string

// sysctlFlag collects --sysctl NAME=VALUE.
type sysctlFlag map[string]int

func (f sysctlFlag) String() string {
	var l []string
	for k, v := range f {
		l = append(l, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(l)
	return strings.Join(l, ",")
}
func (f sysctlFlag) Set(s string) error {
	name, v, err := model.ParseSysctl(s)
	if err != nil {
		return err
	}
	f[name] = v
	return nil
}

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/gvs"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "gvs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "gvs")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("gvs-%d", os.Geteuid()), "state")
}

func main() {
	fs := flag.NewFlagSet("gvsd", flag.ExitOnError)
	engineName := fs.String("engine", "auto", "data plane: auto, xdp or proxy")
	var ifaces listFlag
	fs.Var(&ifaces, "interface", "interface the xdp engine attaches to (repeat, or a comma list)")
	socket := fs.String("socket", "", "control socket (default $GVS_SOCKET, else "+client.DefaultSocket()+")")
	socketGroup := fs.String("socket-group", "", "group allowed on the control socket besides root (mode 0660)")
	stateDir := fs.String("state-dir", defaultStateDir(), "directory where the rules are kept")
	configFile := fs.String("config", "", "declarative rules (YAML, or ipvsadm-save lines) applied at start and on SIGHUP")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pinDir := fs.String("bpf-pin-dir", xdp.PinDir, "where the xdp engine pins its maps and links")
	tunSrc := fs.String("tun-src", "", "outer source address of TUN (-i) packets: an IPv4 address, an IPv6 one, or one of each comma-separated (default: the first IPv4 and the first global IPv6 address of the first --interface)")
	maxConns := fs.Uint("max-conns", 1<<20, "capacity of the xdp engine's connection table, taken at start (about 460 bytes per entry with its NAT reply table and index); new connections beyond it pass to the stack, counted")
	lports := fs.String("fullnat-ports", "1024-32767", "FULLNAT source ports of the xdp engine, MIN-MAX (keep them out of net.ipv4.ip_local_port_range, which the director's own connections use)")
	sysctls := sysctlFlag{}
	fs.Var(sysctls, "sysctl", "an IPVS sysctl, NAME=VALUE, named as in /proc/sys/net/ipv4/vs/ (repeat): "+strings.Join(model.SysctlNames(), ", "))
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics (/metrics) and the status page (/) on ADDR, e.g. 127.0.0.1:9723 (default: off)")
	cleanup := fs.Bool("cleanup", false, "detach the XDP program and remove the pins under --bpf-pin-dir (drops the xdp engine's connections), then exit")
	// Hidden: for profiling the engine (make bench), not in the usage.
	cpuProfile := fs.String("cpuprofile", "", "")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gvsd [--engine auto|xdp|proxy] [--interface IF ...] [--socket PATH] [--state-dir DIR] [--config FILE]\n            [--sysctl NAME=VALUE ...]\n       gvsd --cleanup\n\n")
		shown := flag.NewFlagSet("gvsd", flag.ContinueOnError)
		shown.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage != "" {
				shown.Var(f.Value, f.Name, f.Usage)
			}
		})
		shown.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Printf("gvsd %s (IPVS %s)\n", version, api.Version)
		printCapabilities(os.Stdout)
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *cleanup {
		if err := xdp.Cleanup(*pinDir); err != nil {
			log.Error("cleanup", "err", err)
			os.Exit(1)
		}
		log.Info("cleaned up", "pins", *pinDir)
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			log.Error("gvsd", "err", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	tun, tun6, err := parseTunSrc(*tunSrc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gvsd: --tun-src %q: %v\n", *tunSrc, err)
		os.Exit(2)
	}
	lo, hi, err := parsePortRange(*lports)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gvsd: --fullnat-ports %q: %v\n", *lports, err)
		os.Exit(2)
	}
	if *maxConns < 1024 || *maxConns > 1<<28 {
		fmt.Fprintf(os.Stderr, "gvsd: --max-conns %d: want 1024 to %d\n", *maxConns, 1<<28)
		os.Exit(2)
	}
	xo := xdp.Options{Interfaces: ifaces, PinDir: *pinDir, TunSrc: tun, TunSrc6: tun6, LocalPorts: [2]uint16{lo, hi}, MaxConns: uint32(*maxConns)}
	// Caught from here on: a signal before the API is up waits for it.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	o := options{engine: *engineName, xdp: xo, socket: client.Socket(*socket), group: *socketGroup,
		stateDir: *stateDir, configFile: *configFile, sysctls: sysctls, metricsAddr: *metricsAddr}
	if err := run(log, o, sig); err != nil {
		log.Error("gvsd", "err", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func newEngine(log *slog.Logger, name string, xo xdp.Options) (engine.Engine, string, error) {
	switch name {
	case "proxy":
		return proxy.New(log), "requested", nil
	case "xdp":
		e, err := xdp.New(log, xo)
		if err != nil {
			return nil, "", err
		}
		return e, fmt.Sprintf("requested, attached %v", e.Modes()), nil
	case "auto":
		if len(xo.Interfaces) == 0 {
			return proxy.New(log), "no --interface for the xdp engine", nil
		}
		e, err := xdp.New(log, xo)
		if err != nil {
			if ents, _ := os.ReadDir(xo.PinDir); len(ents) > 0 {
				// A previous gvsd's program may still be forwarding with
				// its maps; a proxy beside it would hide that.
				return nil, "", fmt.Errorf("xdp engine: %w (pins of a previous gvsd are in %s: fix the cause, or gvsd --cleanup)", err, xo.PinDir)
			}
			return proxy.New(log), "xdp unavailable: " + err.Error(), nil
		}
		return e, fmt.Sprintf("BPF loaded, attached %v", e.Modes()), nil
	}
	return nil, "", fmt.Errorf("unknown engine %q (auto, xdp or proxy)", name)
}

// parsePortRange reads MIN-MAX, 1 <= MIN <= MAX <= 65535.
func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(s, "-")
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if !ok || err1 != nil || err2 != nil || x == 0 || x > y {
		return 0, 0, fmt.Errorf("want MIN-MAX with 1 <= MIN <= MAX <= 65535")
	}
	return uint16(x), uint16(y), nil
}

// options are run's settings, from the command line.
type options struct {
	engine     string
	xdp        xdp.Options
	socket     string
	group      string
	stateDir   string
	configFile string
	sysctls    map[string]int
	// metricsAddr: where /metrics and the status page are served ("": not).
	metricsAddr string
}

// run serves until SIGTERM or SIGINT arrives on sig; SIGHUP reloads the
// config. Once the engine is up, bad saved rules or a bad config are
// logged, not fatal: exiting would leave an XDP program forwarding with
// no gvsd to repair it.
func run(log *slog.Logger, o options, sig <-chan os.Signal) error {
	// Before the engine, so an unsafe state dir attaches nothing.
	store, err := control.NewStore(o.stateDir)
	if err != nil {
		return err
	}
	eng, why, err := newEngine(log, o.engine, o.xdp)
	if err != nil {
		return err
	}
	log.Info("gvsd starting", "engine", eng.Name(), "why", why, "version", version, "socket", o.socket, "state_dir", o.stateDir)
	if eng.Name() == "proxy" {
		log.Info("proxy engine: real servers see the director's address (full NAT); -g and -i need the xdp engine")
	}
	core := control.New(eng, store, log)
	// Closed last, after the API has finished its requests, and under the
	// core's lock so no operation is half-way.
	defer core.Close()
	// Sync daemons (the xdp engine; the proxy engine refuses them); see
	// the shutdown order below.
	var sr *syncRunner
	if eng.Name() == "xdp" {
		if sr = newSyncRunner(log, eng); sr != nil {
			core.SetDaemonRunner(sr)
			defer sr.Close() // a no-op after the shutdown below
		}
	}
	checks := health.NewManager(core, log)
	// The config's alpha servers start down: told to the core before the
	// saved rules are restored, they are not served until checked.
	if o.configFile != "" {
		if c, err := config.Load(o.configFile, saveLinesToRules); err == nil {
			if err := checks.Prepare(c.Health); err != nil {
				log.Error("alpha servers not held back", "err", err)
			}
		}
	}
	if err := core.Restore(); err != nil {
		log.Error("dropping what the saved rules do not have from the data path failed; serving anyway", "err", err)
	}
	// via_vip checks (docs/health.md) need the xdp engine's interfaces;
	// the forwarding closes after the checks stop.
	var fwd *hcfwd.Forwarder
	if eng.Name() == "xdp" {
		if fwd, err = hcfwd.New(log, o.xdp.Interfaces); err != nil {
			log.Error("health checks via the VIP unavailable (via_vip will be refused)", "err", err)
			fwd = nil
		} else {
			defer fwd.Close()
			log.Info("health check forwarding attached", "where", fwd.Modes())
		}
	}
	if fwd != nil {
		checks.SetForwarder(fwd)
	}
	// Stopped before the forwarding and the core close (defers run last
	// first); with omega its down notifiers run then.
	defer checks.Close()
	// At shutdown, before the checks: stop following VRRP; flush and
	// stop the sync daemons while the peer is still a backup listening
	// (once it takes over, its lvs_sync_daemon stops its backup daemon,
	// within its skew time); then resign VRRP (priority 0, VIPs removed).
	ha := &haParts{vm: vrrp.NewManager(log, vrrp.Options{ServiceUp: checks.ServiceUp})}
	ha.sync = newSyncFollower(log, core, ha.vm)
	defer func() {
		ha.sync.Close()
		if sr != nil {
			sr.Close()
		}
		ha.vm.Close()
	}()
	// Run before the defer above: at SIGTERM BGP withdraws first.
	var stopBGP func()
	ha.bgp, stopBGP = newBGP(log, core, checks)
	defer stopBGP()
	if len(o.sysctls) > 0 {
		if err := core.SetSysctls(o.sysctls); err != nil {
			log.Error("--sysctl not applied", "err", err)
		}
	}
	if o.configFile != "" {
		if err := applyConfig(log, core, checks, ha, o.configFile); err != nil {
			logConfigError(log, o.configFile, true, err)
		} else {
			log.Info("config applied", "file", o.configFile)
		}
	}

	mode, gid := os.FileMode(0o600), -1
	if o.group != "" {
		g, err := user.LookupGroup(o.group)
		if err != nil {
			return err
		}
		gid, _ = strconv.Atoi(g.Gid)
		mode = 0o660
	}
	info := api.Info{Version: api.Version, ConnTableSize: 4096, Engine: eng.Name(), GVSVersion: version}
	srv := apiserver.New(core, info, log)
	srv.SetHealth(checks.Status)
	srv.SetVRRP(ha.vm.Status)
	srv.SetBGP(ha.bgp.Status, ha.bgp.Maintenance)
	if o.metricsAddr != "" {
		ms, err := startMetrics(log, o.metricsAddr, core, checks, ha.vm, sr, ha.bgp.Status, info)
		if err != nil {
			return err
		}
		defer ms.Close()
	}
	if err := srv.Listen(o.socket, mode, gid); err != nil {
		return err
	}
	defer os.Remove(o.socket)
	defer srv.Close()
	log.Info("ready", "socket", o.socket)
	sdNotify(log, "READY=1")

	for s := range sig {
		if s == syscall.SIGHUP {
			if o.configFile == "" {
				log.Info("SIGHUP without --config: nothing to reload")
				continue
			}
			if err := applyConfig(log, core, checks, ha, o.configFile); err != nil {
				logConfigError(log, o.configFile, false, err)
			} else {
				log.Info("config reloaded", "file", o.configFile)
			}
			continue
		}
		log.Info("shutting down", "signal", s.String())
		sdNotify(log, "STOPPING=1")
		return nil
	}
	return nil
}

// parseTunSrc reads --tun-src: an IPv4 address, an IPv6 address, or one
// of each separated by a comma.
func parseTunSrc(v string) (v4, v6 netip.Addr, err error) {
	if v == "" {
		return v4, v6, nil
	}
	for _, f := range strings.Split(v, ",") {
		a, perr := netip.ParseAddr(strings.TrimSpace(f))
		switch {
		case perr != nil || a.Zone() != "" || a.Is4In6() || a.IsUnspecified() || a.IsMulticast():
			return v4, v6, fmt.Errorf("want an IPv4 and/or an IPv6 unicast address")
		case a.Is4() && !v4.IsValid():
			v4 = a
		case a.Is6() && !v6.IsValid():
			v6 = a
		default:
			return v4, v6, fmt.Errorf("one address of each family at most")
		}
	}
	return v4, v6, nil
}
