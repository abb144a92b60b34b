package vrrp

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"gvs/model"
)

// TestTracking checks how tracked items set the effective priority and
// FAULT (Manager.recompute), on machines of the fake network.
func TestTracking(t *testing.T) {
	svc := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4}
	w := func(n int) *int { return &n }
	for _, tc := range []struct {
		name      string
		prio      uint8
		in        func(*Instance)
		links     map[string]bool
		scriptUp  bool
		serviceUp bool
		want      uint8
		fault     bool
	}{
		{"all up", 100, nil, nil, true, true, 100, false},
		{"own interface down", 100, nil, map[string]bool{"eth0": false}, true, true, 100, true},
		{"interface weight", 100, func(in *Instance) { in.TrackInterfaces = []TrackInterface{{Name: "eth1", Weight: -20}} },
			map[string]bool{"eth1": false}, true, true, 80, false},
		{"interface weight 0", 100, func(in *Instance) { in.TrackInterfaces = []TrackInterface{{Name: "eth1"}} },
			map[string]bool{"eth1": false}, true, true, 100, true},
		{"positive weight while up", 100, func(in *Instance) { in.TrackScripts = []TrackScript{{Name: "chk", Weight: w(30)}} },
			nil, true, true, 130, false},
		{"script's own weight while down", 100, func(in *Instance) { in.TrackScripts = []TrackScript{{Name: "chk"}} },
			nil, false, true, 50, false},
		{"reverse", 100, func(in *Instance) { in.TrackScripts = []TrackScript{{Name: "chk", Reverse: true}} },
			nil, true, true, 50, false},
		{"clamped to 1", 20, func(in *Instance) { in.TrackScripts = []TrackScript{{Name: "chk"}} },
			nil, false, true, 1, false},
		{"clamped to 254", 250, func(in *Instance) { in.TrackScripts = []TrackScript{{Name: "chk", Weight: w(30)}} },
			nil, true, true, 254, false},
		{"owner: weights act as 0", 255, func(in *Instance) { in.TrackScripts = []TrackScript{{Name: "chk"}} },
			nil, false, true, 255, true},
		{"service quorum lost, weight", 100, func(in *Instance) { in.TrackServices = []TrackService{{Service: svc, Weight: -60}} },
			nil, true, false, 40, false},
		{"service quorum lost", 100, func(in *Instance) { in.TrackServices = []TrackService{{Service: svc}} },
			nil, true, false, 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			raw := inst(tc.prio)
			if tc.in != nil {
				tc.in(&raw)
			}
			cfg := &Config{Scripts: []CheckScript{{Name: "chk", Weight: -50}}}
			in := cfg.withDefaults(raw)
			n := &node{name: "a", s: s, addr: netip.MustParseAddr("198.18.0.1")}
			n.m = newMachine(in, n.addr, n)
			s.nodes = append(s.nodes, n)
			m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				insts: map[string]*instance{in.Name: {cfg: in, m: n.m}}, order: []string{in.Name},
				scripts:  map[string]*scriptState{"chk": {def: cfg.Scripts[0], known: true, up: tc.scriptUp}},
				links:    map[string]bool{"eth0": true, "eth1": true},
				services: map[model.ServiceKey]bool{svc: tc.serviceUp},
			}
			for k, v := range tc.links {
				m.links[k] = v
			}
			m.recompute(s.now)
			s.run(10 * time.Second)
			if n.m.prio != tc.want || (n.m.state == StateFault) != tc.fault {
				t.Fatalf("priority %d state %v (%v), want %d fault %v", n.m.prio, n.m.state, m.insts[in.Name].faults, tc.want, tc.fault)
			}
		})
	}
}
