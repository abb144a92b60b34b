package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gvs/api"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// logBuf is a logger whose lines a test reads.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *logBuf) logger() *slog.Logger        { return slog.New(slog.NewTextHandler(l, nil)) }

// spyEngine counts what reaches it: rule operations, reconciles and
// sysctls; it can refuse sysctls.
type spyEngine struct {
	tableEngine
	ops, reconciles int
	sysctls         []model.Sysctls
	refuseSysctls   bool
}

func newSpy() *spyEngine {
	return &spyEngine{tableEngine: tableEngine{engine.NewTable(ipvs.Options{})}}
}

func (e *spyEngine) AddService(s model.Service) error {
	e.ops++
	return e.tableEngine.AddService(s)
}
func (e *spyEngine) AddDest(k model.ServiceKey, d model.Dest) error {
	e.ops++
	if d.Port == 9999 { // refused at apply time: a listener that cannot bind, say
		return &model.Error{Errno: 99, Msg: "cannot bind"}
	}
	return e.tableEngine.AddDest(k, d)
}
func (e *spyEngine) Reconcile() error { e.reconciles++; return nil }
func (e *spyEngine) SetSysctls(s model.Sysctls) error {
	if e.refuseSysctls {
		return errors.New("config map write failed")
	}
	e.sysctls = append(e.sysctls, s)
	return nil
}

// checkEngine refuses UDP services in its Check, as the xdp engine refuses
// what its data path cannot carry.
type checkEngine struct{ *spyEngine }

func (e checkEngine) Check(op api.Op) error {
	if op.Op == api.AddService && op.Service.Protocol == model.ProtoUDP {
		return engine.NotSupported("no UDP here")
	}
	return nil
}

func savedRules(t *testing.T, dir string, services ...ServiceRules) *Store {
	t.Helper()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&Rules{Version: rulesVersion, Timeouts: model.DefaultTimeouts, Services: services}); err != nil {
		t.Fatal(err)
	}
	return s
}

// badFiles returns the set-aside rules files of dir.
func badFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "rules.json.bad-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A saved rule set that cannot be restored (unreadable, or refused by the
// engine at any step) leaves the engine as it was, is moved aside (not
// deleted) with a loud log, and gvsd goes on: Restore does not fail.
func TestRestoreSetsAsideBadRules(t *testing.T) {
	svc, udp := key("198.18.0.1:80").Normalize(), key("198.18.0.2:53")
	udp.Protocol = model.ProtoUDP
	udp = udp.Normalize()
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, dir string)
		eng   func(*spyEngine) engine.Engine
		ops   int // operations that may reach the engine
		why   string
	}{
		{"not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "rules.json"), []byte(`{"version": 1, "services": [`), 0o600)
		}, nil, 0, "unexpected end of JSON input"},
		{"unknown version", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "rules.json"), []byte(`{"version": 99}`), 0o600)
		}, nil, 0, "rules version 99"},
		{"a rule the model refuses", func(t *testing.T, dir string) {
			bad := svc
			bad.Scheduler = "nope"
			savedRules(t, dir, ServiceRules{Service: svc}, ServiceRules{Service: bad})
		}, nil, 0, "Scheduler or persistence engine not found"},
		{"a rule the engine's check refuses", func(t *testing.T, dir string) {
			savedRules(t, dir, ServiceRules{Service: svc}, ServiceRules{Service: udp})
		}, func(s *spyEngine) engine.Engine { return checkEngine{s} }, 0, "no UDP here"},
		{"a rule the engine refuses at op 4", func(t *testing.T, dir string) {
			savedRules(t, dir,
				ServiceRules{Service: svc, Dests: []model.Dest{dest("198.18.1.1:80", 1)}},
				ServiceRules{Service: udp, Dests: []model.Dest{dest("198.18.1.2:9999", 1), dest("198.18.1.3:53", 1)}})
		}, nil, 5, "cannot bind"},
		{"a bad sysctl", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "rules.json"), []byte(`{"version": 1, "sysctls": {"conn_reuse_mode": 7}}`), 0o600)
		}, nil, 0, "conn_reuse_mode: 7 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.write(t, dir)
			orig, _ := os.ReadFile(filepath.Join(dir, "rules.json"))
			store, err := NewStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			spy := newSpy()
			var eng engine.Engine = spy
			if tc.eng != nil {
				eng = tc.eng(spy)
			}
			var log logBuf
			c := New(eng, store, log.logger())
			if err := c.Restore(); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if n := len(eng.Services()); n != 0 {
				t.Errorf("%d services left in the engine, want none (all or nothing)", n)
			}
			if spy.ops > tc.ops {
				t.Errorf("%d operations reached the engine, want at most %d", spy.ops, tc.ops)
			}
			if eng.Timeouts() != model.DefaultTimeouts {
				t.Errorf("timeouts %+v left", eng.Timeouts())
			}
			if spy.reconciles != 0 {
				t.Error("the engine was reconciled to rules that were not restored")
			}
			if _, err := os.Stat(store.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("rules.json still there: %v", err)
			}
			bad := badFiles(t, dir)
			if len(bad) != 1 {
				t.Fatalf("set-aside files %v", bad)
			}
			if b, _ := os.ReadFile(bad[0]); !bytes.Equal(b, orig) {
				t.Errorf("%s holds %q, want the original %q", bad[0], b, orig)
			}
			out := log.String()
			if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, tc.why) || !strings.Contains(out, bad[0]) {
				t.Errorf("log does not say why (%q) and where the file went (%s):\n%s", tc.why, bad[0], out)
			}
			// Rules set now are saved as usual.
			if err := c.Do([]api.Op{{Op: api.AddService, Service: svc}}); err != nil {
				t.Fatal(err)
			}
			if r, err := store.Load(); err != nil || r == nil || len(r.Services) != 1 {
				t.Errorf("saved after the set-aside: %+v %v", r, err)
			}
		})
	}
}

// A restore that works reconciles the engine and sets nothing aside.
func TestRestoreGood(t *testing.T) {
	dir := t.TempDir()
	store := savedRules(t, dir, ServiceRules{Service: key("198.18.0.1:80").Normalize(), Dests: []model.Dest{dest("198.18.1.1:80", 1)}})
	spy := newSpy()
	c := New(spy, store, quiet())
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	if len(spy.Services()) != 1 || spy.reconciles != 1 || len(badFiles(t, dir)) != 0 {
		t.Fatalf("services %d, reconciles %d, set aside %v", len(spy.Services()), spy.reconciles, badFiles(t, dir))
	}
}

// Two set-asides in the same second keep both files.
func TestSetAsideKeepsEarlierFiles(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		os.WriteFile(filepath.Join(dir, "rules.json"), []byte{'x', byte('0' + i)}, 0o600)
		store, err := NewStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := New(newSpy(), store, quiet()).Restore(); err != nil {
			t.Fatal(err)
		}
	}
	if bad := badFiles(t, dir); len(bad) != 3 {
		t.Fatalf("set-aside files %v, want 3", bad)
	}
}

// Converging to rules without services deletes the running ones only when
// the rules say so explicitly (a truncated or empty config file must not).
func TestConvergeRefusesAccidentalEmpty(t *testing.T) {
	svc := key("198.18.0.1:80").Normalize()
	c := New(newEngine(), nil, quiet())
	// Nothing running: an empty config deletes nothing and is fine.
	if err := c.Converge(&Rules{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Converge(&Rules{Services: []ServiceRules{{Service: svc}}}); err != nil {
		t.Fatal(err)
	}
	err := c.Converge(&Rules{})
	var de *DeletesAllError
	if !errors.As(err, &de) || de.Running != 1 || !strings.Contains(err.Error(), "services: []") {
		t.Fatalf("empty rules: %v", err)
	}
	if n := len(c.Engine().Services()); n != 1 {
		t.Fatalf("%d services after a refused converge", n)
	}
	if err := c.Converge(&Rules{ExplicitEmpty: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Engine().Services()); n != 0 {
		t.Fatalf("%d services after an explicit empty converge", n)
	}
}

// The sysctls reach the engine, are saved with the rules and restored;
// files saved before they existed read as the kernel's defaults.
func TestSysctlsSavedAndRestored(t *testing.T) {
	dir := t.TempDir()
	store, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	spy := newSpy()
	c := New(spy, store, quiet())
	if got := c.Sysctls(); got != model.DefaultSysctls() {
		t.Fatalf("initial %+v", got)
	}
	if err := c.SetSysctls(map[string]int{"expire_nodest_conn": 1, "conn_reuse_mode": 2}); err != nil {
		t.Fatal(err)
	}
	want := model.DefaultSysctls()
	want.ExpireNodestConn, want.ConnReuseMode = 1, 2
	if c.Sysctls() != want || len(spy.sysctls) != 1 || spy.sysctls[0] != want {
		t.Fatalf("core %+v, engine got %+v", c.Sysctls(), spy.sysctls)
	}
	if err := c.SetSysctls(map[string]int{"sloppy_tcp": 2}); err == nil || c.Sysctls() != want {
		t.Fatalf("a bad value: %v, now %+v", err, c.Sysctls())
	}
	b, _ := os.ReadFile(store.Path())
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["sysctls"] == nil {
		t.Fatalf("rules.json has no sysctls: %s", b)
	}
	spy2 := newSpy()
	c2 := New(spy2, store, quiet())
	if err := c2.Restore(); err != nil {
		t.Fatal(err)
	}
	if c2.Sysctls() != want || len(spy2.sysctls) == 0 || spy2.sysctls[len(spy2.sysctls)-1] != want {
		t.Fatalf("restored %+v, engine got %+v", c2.Sysctls(), spy2.sysctls)
	}

	// A file from before the sysctls.
	os.WriteFile(store.Path(), []byte(`{"version": 1, "timeouts": {"tcp": 900, "tcp_fin": 120, "udp": 300}, "services": []}`), 0o600)
	c3 := New(newSpy(), store, quiet())
	if err := c3.Restore(); err != nil || c3.Sysctls() != model.DefaultSysctls() || len(badFiles(t, dir)) != 0 {
		t.Fatalf("old file: %v %+v %v", err, c3.Sysctls(), badFiles(t, dir))
	}
}

// A config's sysctls change the names it gives, the others keep their
// values; a refused rule change leaves the sysctls as they were, and an
// engine that refuses the sysctls leaves the rules alone.
func TestConvergeSysctls(t *testing.T) {
	spy := newSpy()
	c := New(spy, nil, quiet())
	svc := key("198.18.0.1:80").Normalize()
	if err := c.SetSysctls(map[string]int{"sloppy_udp": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Converge(&Rules{Services: []ServiceRules{{Service: svc}}, Sysctls: map[string]int{"expire_quiescent_template": 1}}); err != nil {
		t.Fatal(err)
	}
	want := model.DefaultSysctls()
	want.SloppyUDP, want.ExpireQuiescentTemplate = 1, 1
	if c.Sysctls() != want {
		t.Fatalf("%+v, want %+v", c.Sysctls(), want)
	}
	// The rule change fails at apply time: the sysctls go back.
	err := c.Converge(&Rules{
		Services: []ServiceRules{{Service: svc, Dests: []model.Dest{dest("198.18.1.1:9999", 1)}}},
		Sysctls:  map[string]int{"expire_quiescent_template": 0},
	})
	if err == nil || c.Sysctls() != want || spy.sysctls[len(spy.sysctls)-1] != want {
		t.Fatalf("after a refused converge: %v, core %+v, engine %+v", err, c.Sysctls(), spy.sysctls)
	}
	// Unknown names change nothing.
	if err := c.Converge(&Rules{Services: []ServiceRules{{Service: svc}}, Sysctls: map[string]int{"nope": 1}}); err == nil {
		t.Fatal("unknown sysctl accepted")
	}
	// The engine refuses the sysctls: the rules are not changed.
	spy.refuseSysctls = true
	svc2 := key("198.18.0.2:80").Normalize()
	if err := c.Converge(&Rules{Services: []ServiceRules{{Service: svc}, {Service: svc2}}, Sysctls: map[string]int{"sloppy_tcp": 1}}); err == nil {
		t.Fatal("the engine's refusal was lost")
	}
	if n := len(spy.Services()); n != 1 || c.Sysctls() != want {
		t.Fatalf("%d services, sysctls %+v", n, c.Sysctls())
	}
}

// The state directory is created 0700, and one another user could change
// (its owner, or the owner of a directory above it, or write permission
// for others) is refused.
func TestStateDirOwnership(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "state")
	if _, err := NewStore(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v, want mode 0700", d, fi.Mode(), err)
		}
	}
	if _, err := NewStore(dir); err != nil {
		t.Fatalf("reopening: %v", err)
	}
	mk := func(t *testing.T, path string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("readable by others is fine", func(t *testing.T) {
		if _, err := NewStore(mk(t, filepath.Join(root, "r"), 0o755)); err != nil {
			t.Fatal(err)
		}
	})
	for _, mode := range []os.FileMode{0o770, 0o777, 0o702} {
		t.Run("mode "+mode.String(), func(t *testing.T) {
			d := mk(t, filepath.Join(root, "m"+mode.String()), mode)
			if _, err := NewStore(d); err == nil || !strings.Contains(err.Error(), "writable by others") {
				t.Fatalf("%v", err)
			}
		})
	}
	t.Run("under a world-writable dir", func(t *testing.T) {
		open := mk(t, filepath.Join(root, "open"), 0o777)
		if _, err := NewStore(filepath.Join(open, "state")); err == nil || !strings.Contains(err.Error(), "not sticky") {
			t.Fatalf("%v", err)
		}
		os.Chmod(open, 0o777|os.ModeSticky)
		if _, err := NewStore(filepath.Join(open, "state2")); err != nil {
			t.Fatalf("under a sticky dir (as /tmp): %v", err)
		}
	})
	t.Run("another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory to another user")
		}
		// What another user could do to the non-root default
		// /tmp/gvs-UID/state: create it, or the directory above it.
		theirs := mk(t, filepath.Join(root, "theirs", "state"), 0o700)
		if err := os.Chown(theirs, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := NewStore(theirs); err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
			t.Fatalf("%v", err)
		}
		above := mk(t, filepath.Join(root, "above"), 0o755)
		if err := os.Chown(above, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := NewStore(filepath.Join(above, "state")); err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
			t.Fatalf("%v", err)
		}
	})
}

// pinnedEngine is a spy whose data path outlived the last gvsd: it
// forwards pinned rules the model does not have.
type pinnedEngine struct {
	*spyEngine
	pinned []api.Op
}

func (e pinnedEngine) Pinned() ([]api.Op, error) { return e.pinned, nil }

// Saved rules that cannot be restored are set aside, and what the data
// path still forwards is adopted: -L shows it, it is saved, and it can be
// changed like any rule.
func TestRestoreAdoptsPinnedRules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.json"), []byte(`{"version": 1, "services": [`), 0o600)
	store, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := key("198.18.0.1:80").Normalize()
	k := model.Service{ServiceKey: svc.ServiceKey}
	eng := pinnedEngine{newSpy(), []api.Op{
		{Op: api.AddService, Service: svc},
		{Op: api.AddDest, Service: k, Dest: dest("198.18.1.1:80", 3)},
		{Op: api.AddDest, Service: k, Dest: dest("198.18.1.2:80", 1)},
	}}
	var log logBuf
	c := New(eng, store, log.logger())
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	if len(badFiles(t, dir)) != 1 {
		t.Fatal("the corrupt file was not set aside")
	}
	got := eng.Services()
	if len(got) != 1 || len(got[0].Dests) != 2 || got[0].Dests[1].Weight != 3 {
		t.Fatalf("adopted rules: %+v", got)
	}
	if r, err := store.Load(); err != nil || r == nil || len(r.Services) != 1 || len(r.Services[0].Dests) != 2 {
		t.Fatalf("adopted rules not saved: %+v %v", r, err)
	}
	if !strings.Contains(log.String(), "adopted the rules the data path still forwards") {
		t.Errorf("log:\n%s", log.String())
	}
	if eng.reconciles != 0 {
		t.Error("reconciled after a failed restore")
	}
	if err := c.Do([]api.Op{{Op: api.DelService, Service: k}}); err != nil || len(eng.Services()) != 0 {
		t.Fatalf("removing an adopted service: %v", err)
	}
}
