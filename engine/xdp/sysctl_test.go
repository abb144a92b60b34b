package xdp

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"gvs/bpf"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
)

func TestSysctlConfig(t *testing.T) {
	c := bpf.Config{TunSrc: 7, LportMin: 1024, ConnReuseMode: 1, SnatReroute: 1}
	setSysctls(&c, model.Sysctls{ExpireNodestConn: 1, ExpireQuiescentTemplate: 1, ConnReuseMode: 3,
		SloppyTCP: 1, SloppyUDP: 1, ScheduleICMP: 1, NATICMPSend: 1, SNATReroute: 0})
	want := bpf.Config{TunSrc: 7, LportMin: 1024, ExpireNodestConn: 1, ExpireQuiescentTemplate: 1, ConnReuseMode: 3,
		SloppyTcp: 1, SloppyUdp: 1, ScheduleIcmp: 1, NatIcmpSend: 1, SnatReroute: 0}
	if c != want {
		t.Fatalf("config %+v, want %+v", c, want)
	}
	setSysctls(&c, model.DefaultSysctls())
	want = bpf.Config{TunSrc: 7, LportMin: 1024, ConnReuseMode: 1, SnatReroute: 1}
	if c != want {
		t.Fatalf("defaults: config %+v, want %+v", c, want)
	}
}

// SetSysctls writes the config value with the sysctls changed and the
// rest as it was.
func TestSetSysctlsWritesConfig(t *testing.T) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: uint32(binary.Size(bpf.Config{})), MaxEntries: 1})
	if err != nil {
		t.Skipf("cannot create a BPF map (needs root and BPF): %v", err)
	}
	defer m.Close()
	e := &Engine{Table: engine.NewTable(ipvs.Options{})}
	e.objs.Config = m
	e.cfg = bpf.Config{TunSrc: 7, HopGen: 3, ConnReuseMode: 1, SnatReroute: 1}
	s := model.DefaultSysctls()
	s.ExpireNodestConn, s.SloppyUDP = 1, 1
	if err := e.SetSysctls(s); err != nil {
		t.Fatal(err)
	}
	var got bpf.Config
	if err := m.Lookup(uint32(0), &got); err != nil {
		t.Fatal(err)
	}
	want := bpf.Config{TunSrc: 7, HopGen: 3, ConnReuseMode: 1, SnatReroute: 1, ExpireNodestConn: 1, SloppyUdp: 1}
	if got != want || e.cfg != want {
		t.Fatalf("map holds %+v, engine %+v, want %+v", got, e.cfg, want)
	}
	if err := e.SetSysctls(model.Sysctls{SloppyTCP: 5}); err == nil || e.cfg != want {
		t.Fatalf("out of range: %v, config now %+v", err, e.cfg)
	}
}
