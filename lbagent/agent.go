// Package lbagent runs load balancers as the LBaaS API (package lbaas)
// describes them: each in network namespace lvs-<id>, plugged into its
// network's bridge by a veth pair, with a gvsd of its own inside,
// supervised, configured by a YAML file rendered from the Spec. It
// implements lbaas.Agent; README.md here gives the mapping from
// Octavia's resources to gvsd's rules and checks.
package lbagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gvs/api"
	"gvs/client"
	"gvs/config"
	"gvs/control"
	"gvs/lbaas"
)

// Options configure an Agent.
type Options struct {
	// Gvsd is the gvsd binary (default: gvsd from $PATH).
	Gvsd string
	// Engine is every director's engine: "xdp" or "proxy".
	Engine string
	// StateDir holds a directory per load balancer: gvsd's socket,
	// state directory, config file, log and pid file, and the last Spec
	// applied.
	StateDir string
	// PinDir is the root of the xdp engine's pin directories, one per
	// load balancer (default /sys/fs/bpf/gvs-lbaas).
	PinDir string
	// MaxConns is the xdp engine's connection table size per load
	// balancer (gvsd --max-conns; default 262144).
	MaxConns int
	// Forwarding is ForwardAuto (NAT for members on the VIP's subnet,
	// FULLNAT for the others) or ForwardFullNAT (FULLNAT for all: members
	// whose replies do not pass through the load balancer).
	Forwarding string
	// ExtraArgs are more gvsd arguments.
	ExtraArgs []string
	// StopGrace is how long gvsd has to stop after SIGTERM before it is
	// killed (default 10 s).
	StopGrace time.Duration
	Logger    *slog.Logger
}

// Agent realises load balancers as namespaces with a supervised gvsd.
type Agent struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	dirs  map[string]*director
	locks map[string]*sync.Mutex
}

var _ lbaas.Agent = (*Agent)(nil)

// ErrUnknown is returned by Observe for a load balancer the agent does
// not run.
var ErrUnknown = errors.New("no such load balancer")

// New returns an agent, adopting the directors a previous agent with
// the same StateDir left running (Close leaves them running), so a
// restart of gvs-lbaas drops no traffic. Directors found dead are not
// restarted here: the caller reconciles (Apply for every load balancer
// it has, Delete for the others List reports).
func New(opts Options) (*Agent, error) {
	if opts.Gvsd == "" {
		opts.Gvsd = "gvsd"
	}
	p, err := exec.LookPath(opts.Gvsd)
	if err != nil {
		return nil, fmt.Errorf("gvsd binary: %w", err)
	}
	if opts.Gvsd, err = filepath.Abs(p); err != nil {
		return nil, err
	}
	switch opts.Engine {
	case "xdp", "proxy":
	default:
		return nil, fmt.Errorf("engine %q: want xdp or proxy", opts.Engine)
	}
	switch opts.Forwarding {
	case ForwardAuto, ForwardFullNAT:
	default:
		return nil, fmt.Errorf("forwarding %q: want %q or %q", opts.Forwarding, ForwardAuto, ForwardFullNAT)
	}
	if opts.StateDir == "" {
		return nil, errors.New("no state directory")
	}
	if opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
		return nil, err
	}
	if opts.PinDir == "" {
		opts.PinDir = "/sys/fs/bpf/gvs-lbaas"
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 262144
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, tool := range []string{"nsenter", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s: %w", tool, err)
		}
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, err
	}
	a := &Agent{opts: opts, log: opts.Logger, dirs: map[string]*director{}, locks: map[string]*sync.Mutex{}}
	ents, err := os.ReadDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() || checkID(e.Name()) != nil {
			continue
		}
		if pid := a.runningPid(e.Name()); pid != 0 {
			a.log.Info("adopting running gvsd", "lb", e.Name(), "pid", pid)
			a.dirs[e.Name()] = a.newDirector(e.Name(), pid)
		}
	}
	return a, nil
}

// Close stops supervising, leaving every director running.
func (a *Agent) Close() error {
	a.mu.Lock()
	dirs := a.dirs
	a.dirs = map[string]*director{}
	a.mu.Unlock()
	for _, d := range dirs {
		d.release()
	}
	return nil
}

// List returns the ids of the load balancers the host has: namespaces
// lvs-<id>, and state directories.
func (a *Agent) List() ([]string, error) {
	var ids []string
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), "lvs-"); ok && checkID(id) == nil {
				ids = append(ids, id)
			}
		}
	}
	ents, err := os.ReadDir(a.opts.StateDir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() && checkID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func checkID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("load balancer id %q: want letters, digits, - and _ (up to 64)", id)
	}
	return nil
}

// lock serialises the work on one load balancer.
func (a *Agent) lock(id string) func() {
	a.mu.Lock()
	l := a.locks[id]
	if l == nil {
		l = &sync.Mutex{}
		a.locks[id] = l
	}
	a.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Apply makes load balancer spec.ID run as spec says: namespace, port and
// gvsd the first time, then the rendered config, reloaded; it returns
// once gvsd's configured rules are the spec's.
func (a *Agent) Apply(ctx context.Context, spec *lbaas.Spec) error {
	if err := checkID(spec.ID); err != nil {
		return err
	}
	if !spec.VIP.IsValid() {
		return errors.New("no VIP address")
	}
	if spec.Network.Bridge == "" {
		return errors.New("no bridge for the VIP's network")
	}
	if n := len(a.socket(spec.ID)); n > 107 {
		return fmt.Errorf("socket path %s: %d bytes, too long for a unix socket: use a shorter state directory", a.socket(spec.ID), n)
	}
	conf, err := render(spec, a.opts.Forwarding)
	if err != nil {
		return err
	}
	want, err := config.ParseConfig(conf)
	if err != nil {
		return err
	}
	defer a.lock(spec.ID)()
	id := spec.ID
	if err := os.MkdirAll(filepath.Join(a.lbDir(id), "state"), 0o700); err != nil {
		return err
	}
	ns, created, err := ensureNamespace(id)
	if err != nil {
		return err
	}
	defer ns.Close()
	if created {
		a.log.Info("namespace created", "lb", id, "namespace", NamespaceName(id))
	}
	garp, err := plug(id, ns, &spec.Network, spec.VIP)
	if err != nil {
		return fmt.Errorf("plugging %s into %s: %w", NamespaceName(id), spec.Network.Bridge, err)
	}
	if err := writeFile(a.confPath(id), conf); err != nil {
		return err
	}
	sj, _ := json.MarshalIndent(spec, "", "  ")
	if err := writeFile(a.specPath(id), sj); err != nil {
		return err
	}
	a.mu.Lock()
	d := a.dirs[id]
	if d == nil {
		d = a.newDirector(id, a.runningPid(id))
		a.dirs[id] = d
	}
	a.mu.Unlock()
	pid, err := a.waitReady(ctx, d)
	if err != nil {
		return err
	}
	if err := signalHUP(pid); err != nil {
		return err
	}
	if err := a.waitConverged(ctx, id, want.Rules); err != nil {
		return err
	}
	if garp {
		if err := announce(ns, spec.VIP); err != nil {
			a.log.Warn("gratuitous ARP not sent", "lb", id, "vip", spec.VIP, "err", err)
		}
	}
	a.log.Info("load balancer applied", "lb", id, "vip", spec.VIP, "listeners", len(spec.Listeners))
	return nil
}

func signalHUP(pid int) error { return unix.Kill(pid, unix.SIGHUP) }

// writeFile replaces path atomically.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// waitReady waits until the director's gvsd answers on its socket and
// returns its pid.
func (a *Agent) waitReady(ctx context.Context, d *director) (int, error) {
	c := client.New(a.socket(d.id))
	for {
		if pid, _ := d.current(); pid != 0 {
			if _, err := call(ctx, c.Info); err == nil {
				// The answer may be a previous process's only if it
				// changed meanwhile: check it is still the one.
				if p2, _ := d.current(); p2 == pid {
					return pid, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("gvsd of %s not serving: %w; its log ends:\n%s", d.id, ctx.Err(), tail(a.logPath(d.id), 10))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call runs f, returning early when ctx ends.
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := f()
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// waitConverged waits until gvsd's configured rules are want's.
func (a *Agent) waitConverged(ctx context.Context, id string, want *control.Rules) error {
	c := client.New(a.socket(id))
	w := rulesText(want)
	var got string
	for {
		snap, err := call(ctx, c.ConfiguredServices)
		if err == nil {
			if got = snapText(snap); got == w {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gvsd of %s did not take its config: %w\nwant:\n%s\nhave:\n%s\nits log ends:\n%s", id, ctx.Err(), w, got, tail(a.logPath(id), 10))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rulesText and snapText write rules in one comparable form.
func rulesText(r *control.Rules) string {
	var lines []string
	for _, s := range r.Services {
		var dl []string
		for _, d := range s.Dests {
			dl = append(dl, fmt.Sprintf("%v", d))
		}
		lines = append(lines, serviceText(fmt.Sprintf("%v", s.Service), dl, fmt.Sprint(s.LocalAddrs)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}

func snapText(s api.Snapshot) string {
	var lines []string
	for _, svc := range s.Services {
		var dl []string
		for _, d := range svc.Dests {
			dl = append(dl, fmt.Sprintf("%v", d.Dest))
		}
		lines = append(lines, serviceText(fmt.Sprintf("%v", svc.Service), dl, fmt.Sprint(svc.LocalAddrs)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}

func serviceText(svc string, dests []string, local string) string {
	slices.Sort(dests)
	return svc + " local " + local + "\n  " + strings.Join(dests, "\n  ") + "\n"
}

// Delete stops load balancer id's gvsd, removes its pins, port,
// namespace and files; what is already gone is skipped.
func (a *Agent) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	defer a.lock(id)()
	a.mu.Lock()
	d := a.dirs[id]
	delete(a.dirs, id)
	a.mu.Unlock()
	if d != nil {
		d.terminate(a.opts.StopGrace)
	}
	if pid := a.runningPid(id); pid != 0 {
		stopPid(pid, watchPid(pid, a.socket(id)), a.opts.StopGrace)
	}
	// Anything else left in the namespace (a gvsd whose pid file was
	// lost) goes too.
	for _, pid := range pidsIn(nsPath(id)) {
		a.log.Warn("killing a process left in the namespace", "lb", id, "pid", pid)
		unix.Kill(pid, unix.SIGKILL)
	}
	var errs []error
	pins := a.PinDir(id)
	if _, err := os.Stat(pins); err == nil {
		argv := []string{a.opts.Gvsd, "--cleanup", "--bpf-pin-dir", pins}
		if _, err := os.Stat(nsPath(id)); err == nil {
			argv = append([]string{"nsenter", "--net=" + nsPath(id)}, argv...)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			a.log.Warn("gvsd --cleanup failed; removing the pins", "lb", id, "err", err, "out", strings.TrimSpace(string(out)))
		}
		if err := os.RemoveAll(pins); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unplug(id); err != nil {
		errs = append(errs, fmt.Errorf("port: %w", err))
	}
	if err := deleteNamespace(id); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(a.lbDir(id)); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		a.log.Info("load balancer deleted", "lb", id)
	}
	return errors.Join(errs...)
}
