package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// StateFile is the name of the record in the state directory.
const StateFile = "state.json"

const stateVersion = 1

// State is what `up` changed, so that `down` can undo exactly that. It is
// written before each change is made (record, then act), so a run that
// dies half-way still leaves a record `down` can finish from; `down`
// tolerates records of changes that never happened.
type State struct {
	Version int `json:"version"`
	// BootID and NetNS say which kernel state the record describes: none
	// of it survives a reboot, and a network namespace has its own
	// addresses, sysctls and interfaces. A record from an earlier boot is
	// stale and dropped; one from another namespace is an error.
	BootID string `json:"boot_id"`
	NetNS  string `json:"netns"`

	VIPs    []VIP    `json:"vips,omitempty"`
	Sysctls []Sysctl `json:"sysctls,omitempty"`
	// LoSetUp: lo was down and `up` brought it up (a fresh namespace).
	LoSetUp bool    `json:"lo_set_up,omitempty"`
	Tunnel  *Tunnel `json:"tunnel,omitempty"`
}

// VIP is a VIP `up` manages. Added: `up` put the address on lo (it was
// not there before), so `down` removes it.
type VIP struct {
	Addr  netip.Addr `json:"addr"`
	Added bool       `json:"added"`
}

// Sysctl is one changed setting: Key is the path under /proc/sys.
type Sysctl struct {
	Key      string `json:"key"`
	Previous string `json:"previous"`
	Set      string `json:"set"`
}

// Name is the setting as sysctl(8) spells it.
func (c Sysctl) Name() string { return displayKey(c.Key) }

// Tunnel is the decapsulation program's attachment.
type Tunnel struct {
	Interface string `json:"interface"`
	Ifindex   int    `json:"ifindex"`
	Attach    string `json:"attach,omitempty"` // tcx or tc; empty until attached
	PinDir    string `json:"pin_dir"`
	// ClsactAdded: attach mode tc added the clsact qdisc.
	ClsactAdded bool `json:"clsact_added,omitempty"`
}

func (s *State) empty() bool {
	return len(s.VIPs) == 0 && len(s.Sysctls) == 0 && !s.LoSetUp && s.Tunnel == nil
}

func (s *State) vip(a netip.Addr) int {
	for i, v := range s.VIPs {
		if v.Addr == a {
			return i
		}
	}
	return -1
}

func (s *State) sysctl(key string) int {
	for i, c := range s.Sysctls {
		if c.Key == key {
			return i
		}
	}
	return -1
}

func (s *State) vipAddrs() []netip.Addr {
	out := make([]netip.Addr, len(s.VIPs))
	for i, v := range s.VIPs {
		out[i] = v.Addr
	}
	return out
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

func netnsID() string {
	s, _ := os.Readlink("/proc/self/ns/net")
	return s
}

// store is the state directory, locked for the lifetime of one command.
type store struct {
	dir  string
	lock *os.File
	note func(format string, args ...any)
}

func openStore(dir string, note func(string, ...any)) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return &store{dir: dir, lock: f, note: note}, nil
}

func (st *store) close() { st.lock.Close() }

func (st *store) path() string { return filepath.Join(st.dir, StateFile) }

// load reads the record; a missing one is an empty state.
func (st *store) load() (*State, error) {
	fresh := &State{Version: stateVersion, BootID: bootID(), NetNS: netnsID()}
	b, err := os.ReadFile(st.path())
	if errors.Is(err, os.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", st.path(), err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("%s: version %d, this gvs-realserver reads version %d", st.path(), s.Version, stateVersion)
	}
	if s.BootID != fresh.BootID {
		st.note("%s is from an earlier boot; nothing it records is in place any more: starting afresh", st.path())
		return fresh, nil
	}
	if s.NetNS != fresh.NetNS {
		return nil, fmt.Errorf("%s records network namespace %s, this is %s: give each namespace its own --state-dir (and --pin-dir)", st.path(), s.NetNS, fresh.NetNS)
	}
	return &s, nil
}

// save writes the record atomically (temp file, fsync, rename, fsync of
// the directory), or removes it when there is nothing left to undo.
func (st *store) save(s *State) error {
	if s.empty() {
		err := os.Remove(st.path())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return syncDir(st.dir)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(st.dir, ".state-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), st.path()); err != nil {
		return err
	}
	return syncDir(st.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
