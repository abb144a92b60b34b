package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"gvs/api"
	"gvs/ipvs"
	"gvs/model"
)

const rulesVersion = 1

// Rules is the rule set as saved: services in creation order, each with its
// destinations in kernel list order (newest first), and the timeouts.
type Rules struct {
	Version  int            `json:"version"`
	Timeouts model.Timeouts `json:"timeouts"`
	Services []ServiceRules `json:"services"`
}

// ServiceRules is one service, its destinations and its FULLNAT local
// address pool (in the order the addresses were added).
type ServiceRules struct {
	Service    model.Service `json:"service"`
	Dests      []model.Dest  `json:"dests"`
	LocalAddrs []netip.Addr  `json:"local_addrs,omitempty"`
}

// Ops returns the operations that rebuild the rules on an empty engine.
// Destinations are added oldest first, so that each new one going to the
// head of the list recreates the saved order; local addresses follow in
// their order.
func (r *Rules) Ops() []api.Op {
	ops := []api.Op{{Op: api.SetTimeouts, Timeouts: r.Timeouts}}
	for _, s := range r.Services {
		ops = append(ops, api.Op{Op: api.AddService, Service: s.Service})
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

// NewStore returns a store in dir, creating dir if needed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{path: filepath.Join(dir, "rules.json")}, nil
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

// Save writes the rules: a temporary file in the same directory, synced,
// renamed over the old one, and the directory synced.
func (s *Store) Save(r *Rules) error {
	b, err := json.MarshalIndent(r, "", "  ")
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
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RulesFromOps replays ops (ipvsadm-restore lines, say) on an empty model
// and returns the rules they build, or the first refusal. Timeouts are
// left zero (unchanged) unless an operation sets them.
func RulesFromOps(ops []api.Op) (*Rules, error) {
	v := ipvs.New(ipvs.Options{})
	for i, op := range ops {
		if err := applyTo(modelTarget{v}, op); err != nil {
			return nil, &BatchError{i, err}
		}
	}
	r := &Rules{Version: rulesVersion}
	if slices.ContainsFunc(ops, func(o api.Op) bool { return o.Op == api.SetTimeouts }) {
		r.Timeouts = v.Timeouts()
	}
	for _, s := range v.Services() {
		sr := ServiceRules{Service: s.Config, LocalAddrs: slices.Clone(s.LocalAddrs())}
		for _, d := range s.Servers() {
			sr.Dests = append(sr.Dests, d.Dest)
		}
		r.Services = append(r.Services, sr)
	}
	return r, nil
}
