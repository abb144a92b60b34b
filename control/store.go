package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"gvs/api"
	"gvs/ipvs"
	"gvs/model"
)

const rulesVersion = 1

// Rules is the rule set as saved: services in creation order, each with its
// destinations in kernel list order (newest first), the timeouts and the
// sysctls.
type Rules struct {
	Version  int            `json:"version"`
	Timeouts model.Timeouts `json:"timeouts"`
	Services []ServiceRules `json:"services"`
	// Sysctls are IPVS sysctls by name (model.Sysctls); saved rules hold
	// all of them, desired rules the ones to change. Files saved before
	// they existed have none: the kernel's defaults.
	Sysctls map[string]int `json:"sysctls,omitempty"`
	// ExplicitEmpty says that rules without services mean it (YAML
	// services: [], an ipvsadm-save -C line): see Converge.
	ExplicitEmpty bool `json:"-"`
	// Daemons are the running connection synchronisation daemons
	// (--start-daemon), restarted with the rules.
	Daemons []model.SyncDaemon `json:"daemons,omitempty"`
}

// ServiceRules is one service, its destinations, its FULLNAT local
// address pool (in the order the addresses were added) and its source
// allow list (model.NormalizeAllow; files saved before allow lists
// existed have none).
type ServiceRules struct {
	Service    model.Service  `json:"service"`
	Dests      []model.Dest   `json:"dests"`
	LocalAddrs []netip.Addr   `json:"local_addrs,omitempty"`
	Allow      []netip.Prefix `json:"allow,omitempty"`
}

// Ops returns the operations that rebuild the rules on an empty engine.
// A service's allow list comes right after it, before its destinations
// (so an engine that applies one operation at a time never serves it
// without its list). Destinations are added oldest first, so that each
// new one going to the head of the list recreates the saved order; local
// addresses follow in their order.
func (r *Rules) Ops() []api.Op {
	ops := []api.Op{{Op: api.SetTimeouts, Timeouts: r.Timeouts}}
	for _, s := range r.Services {
		ops = append(ops, api.Op{Op: api.AddService, Service: s.Service})
		if len(s.Allow) > 0 {
			ops = append(ops, api.Op{Op: api.SetAllow, Service: model.Service{ServiceKey: s.Service.ServiceKey}, Allow: s.Allow})
		}
		for _, d := range slices.Backward(s.Dests) {
			ops = append(ops, api.Op{Op: api.AddDest, Service: model.Service{ServiceKey: s.Service.ServiceKey}, Dest: d})
		}
		for _, a := range s.LocalAddrs {
			ops = append(ops, api.Op{Op: api.AddLocalAddr, Service: model.Service{ServiceKey: s.Service.ServiceKey}, LocalAddr: a})
		}
	}
	return ops
}

// Store keeps the rules in a file, replaced atomically: a crash at any
// point leaves the old file or the new one, never a mix.
type Store struct{ path string }

// NewStore returns a store in dir, creating dir (mode 0700) if needed. It
// refuses a dir that another user could change under gvsd: one owned by
// another user or writable by others, or below such a dir (the non-root
// defaults live in places others may write to, such as /tmp).
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkStateDir(dir); err != nil {
		return nil, err
	}
	return &Store{path: filepath.Join(dir, "rules.json")}, nil
}

// checkStateDir: dir must be the user's own and writable by no one else;
// each directory above must belong to the user or root and, when others
// may write to it, be sticky (as /tmp is) so they cannot rename what is
// in it.
func checkStateDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	uid := uint32(os.Geteuid())
	for d, first := abs, true; ; d, first = filepath.Dir(d), false {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("state dir %s: cannot read its owner", d)
		}
		mode := fi.Mode()
		switch {
		case first && st.Uid != uid:
			return fmt.Errorf("state dir %s is owned by uid %d, not by this user (uid %d): refusing it (another user could change the rules)", d, st.Uid, uid)
		case first && mode.Perm()&0o022 != 0:
			return fmt.Errorf("state dir %s has mode %v, writable by others: refusing it (chmod go-w it)", d, mode.Perm())
		case !first && st.Uid != uid && st.Uid != 0:
			return fmt.Errorf("state dir %s: %s above it is owned by uid %d, neither this user (uid %d) nor root: refusing it", abs, d, st.Uid, uid)
		case !first && mode.Perm()&0o022 != 0 && mode&os.ModeSticky == 0:
			return fmt.Errorf("state dir %s: %s above it has mode %v, writable by others and not sticky: refusing it", abs, d, mode.Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// Path is the rules file.
func (s *Store) Path() string { return s.path }

// Load reads the saved rules; nil when none were saved yet.
func (s *Store) Load() (*Rules, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Rules
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	if r.Version != rulesVersion {
		return nil, fmt.Errorf("%s: rules version %d, this gvsd reads %d", s.path, r.Version, rulesVersion)
	}
	return &r, nil
}

// SetAside renames the rules file to rules.json.bad-TIME (UTC) and
// returns the new name. It never replaces an earlier set-aside file.
func (s *Store) SetAside() (string, error) {
	base := s.path + ".bad-" + time.Now().UTC().Format("20060102T150405Z")
	dst := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(s.path, dst); err != nil {
		return "", err
	}
	return dst, syncDir(filepath.Dir(s.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Save writes the rules: a temporary file in the same directory, synced,
// renamed over the old one, and the directory synced. Compact JSON (gvsadm
// -S is the readable form): at 100,000 services indenting doubled the
// file and cost 0.35 s of CPU per change.
func (s *Store) Save(r *Rules) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, ".rules-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	return syncDir(dir)
}

// RulesFromOps replays ops (ipvsadm-restore lines, say) on an empty model
// and returns the rules they build, or the first refusal. Timeouts are
// left zero (unchanged) unless an operation sets them; a Clear operation
// makes rules without services explicit (ExplicitEmpty).
func RulesFromOps(ops []api.Op) (*Rules, error) {
	v := ipvs.New(ipvs.Options{})
	for i, op := range ops {
		if err := applyTo(modelTarget{v}, op); err != nil {
			return nil, &BatchError{i, err}
		}
	}
	// A -C asks for what follows and nothing else, even for nothing.
	r := &Rules{Version: rulesVersion, ExplicitEmpty: slices.ContainsFunc(ops, func(o api.Op) bool { return o.Op == api.Clear })}
	if slices.ContainsFunc(ops, func(o api.Op) bool { return o.Op == api.SetTimeouts }) {
		r.Timeouts = v.Timeouts()
	}
	r.Services = rulesOfModel(v).Services
	return r, nil
}

// rulesOfModel returns the services and timeouts of the model v.
func rulesOfModel(v *ipvs.IPVS) *Rules {
	r := &Rules{Version: rulesVersion, Timeouts: v.Timeouts()}
	for _, s := range v.Services() {
		sr := ServiceRules{Service: s.Config, LocalAddrs: slices.Clone(s.LocalAddrs()), Allow: slices.Clone(s.Allow())}
		for _, d := range s.Servers() {
			sr.Dests = append(sr.Dests, d.Dest)
		}
		r.Services = append(r.Services, sr)
	}
	return r
}
