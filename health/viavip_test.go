package health

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gvs/api"
	"gvs/check"
	"gvs/control"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

// fakeFwd records the forwarder's marks.
type fakeFwd struct {
	mu   sync.Mutex
	next uint32
	live map[uint32]string
}

func (f *fakeFwd) Add(vip, rip netip.AddrPort, tunnel bool) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.live[f.next] = fmt.Sprintf("%s via %s tunnel=%v", vip, rip, tunnel)
	return f.next, nil
}

func (f *fakeFwd) Remove(mark uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, mark)
}

func (f *fakeFwd) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

func TestViaVIP(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := control.New(tableEngine{engine.NewTable(ipvs.Options{})}, nil, log)
	svc := model.Service{ServiceKey: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80, Family: model.IPv4}, Scheduler: "rr"}
	methods := []model.Method{model.Route, model.Tunnel, model.Masq}
	ops := []api.Op{{Op: api.AddService, Service: svc}}
	for i, meth := range methods {
		ops = append(ops, api.Op{Op: api.AddDest, Service: svc, Dest: model.Dest{Addr: srvAddr(i).Addr(), Port: 80, Method: meth, Weight: 1}})
	}
	if err := core.Do(ops); err != nil {
		t.Fatal(err)
	}
	m := NewManager(core, log)
	defer m.Close()
	var mu sync.Mutex
	marks := map[netip.AddrPort]uint32{}
	m.newChecker = func(s check.Spec, tg check.Target) (check.Checker, error) {
		mu.Lock()
		marks[tg.Server] = s.FWMark
		mu.Unlock()
		return idle{}, nil
	}
	viaVIP := spec(check.TCP, 1)
	viaVIP.ViaVIP = true
	cfg := func(n int) *Config {
		return &Config{Services: []Service{{Key: svc.ServiceKey, Servers: servers(n, func(int) Server { return Server{Checks: []check.Spec{viaVIP}} })}}}
	}

	// Without a forwarder (the proxy engine): refused before anything.
	if err := m.Validate(cfg(1)); !errors.Is(err, ErrViaVIP) {
		t.Fatalf("without a forwarder: %v, want %v", err, ErrViaVIP)
	}
	fwd := &fakeFwd{live: map[uint32]string{}}
	m.SetForwarder(fwd)
	if err := m.Validate(cfg(3)); err != nil {
		t.Fatalf("with a forwarder: %v", err)
	}
	// The DR and TUN servers get marks; the NAT one is refused.
	err := m.Update(cfg(3))
	if !errors.Is(err, ErrViaVIP) || !strings.Contains(err.Error(), "198.18.1.3:80") {
		t.Errorf("a NAT server: %v, want %v naming it", err, ErrViaVIP)
	}
	fwd.mu.Lock()
	got := fmt.Sprint(fwd.live)
	fwd.mu.Unlock()
	if want := "map[1:198.18.0.1:80 via 198.18.1.1:80 tunnel=false 2:198.18.0.1:80 via 198.18.1.2:80 tunnel=true]"; got != want {
		t.Errorf("marks %s, want %s", got, want)
	}
	mu.Lock()
	if marks[srvAddr(0)] != 1 || marks[srvAddr(1)] != 2 {
		t.Errorf("checkers' fwmarks %v, want the forwarder's marks", marks)
	}
	mu.Unlock()

	// Unchanged on a reload: the same marks, nothing released.
	if err := m.Update(cfg(2)); err != nil {
		t.Fatal(err)
	}
	if fwd.count() != 2 || fwd.next != 2 {
		t.Errorf("reload: %d marks live, %d given, want the same 2", fwd.count(), fwd.next)
	}
	// Stopped checkers release theirs.
	if err := m.Update(&Config{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for fwd.count() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := fwd.count(); n != 0 {
		t.Errorf("%d marks left after the checkers stopped", n)
	}

	// via_vip with fwmark, or a checker that opens no connection: refused.
	bad := viaVIP
	bad.FWMark = 7
	c := cfg(1)
	c.Services[0].Servers[0].Checks = []check.Spec{bad}
	if err := c.Validate(); err == nil {
		t.Errorf("via_vip with fwmark accepted")
	}
	bad = spec(check.Ping, 1)
	bad.ViaVIP = true
	c.Services[0].Servers[0].Checks = []check.Spec{bad}
	if err := c.Validate(); err == nil {
		t.Errorf("via_vip on PING_CHECK accepted")
	}
}
