package model_test

import (
	"maps"
	"strings"
	"testing"

	"gvs/model"
)

// Defaults and ranges from the kernel's ipvs-sysctl.rst: conn_reuse_mode
// is a bitmap of two bits (default 1), snat_reroute defaults to 1, the
// others are booleans defaulting to 0.
func TestSysctls(t *testing.T) {
	want := map[string]int{
		"conn_reuse_mode": 1, "expire_nodest_conn": 0, "expire_quiescent_template": 0, "nat_icmp_send": 0,
		"schedule_icmp": 0, "sloppy_tcp": 0, "sloppy_udp": 0, "snat_reroute": 1,
	}
	d := model.DefaultSysctls()
	if got := d.Map(); !maps.Equal(got, want) {
		t.Fatalf("defaults %v, want %v", got, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		arg  string
		ok   bool
		name string
		v    int
	}{
		{"conn_reuse_mode=0", true, "conn_reuse_mode", 0},
		{"conn_reuse_mode=3", true, "conn_reuse_mode", 3},
		{"conn_reuse_mode=4", false, "", 0},
		{"expire_nodest_conn=1", true, "expire_nodest_conn", 1},
		{" sloppy_tcp = 1 ", true, "sloppy_tcp", 1},
		{"expire_nodest_conn=2", false, "", 0},
		{"snat_reroute=-1", false, "", 0},
		{"schedule_icmp", false, "", 0},
		{"=1", false, "", 0},
		{"nat_icmp_send=yes", false, "", 0},
		{"am_droprate=10", false, "", 0}, // a real IPVS sysctl gvs does not have
	} {
		name, v, err := model.ParseSysctl(c.arg)
		if (err == nil) != c.ok || name != c.name || v != c.v {
			t.Errorf("%q: %s=%d %v", c.arg, name, v, err)
		}
	}
	s, err := d.With(map[string]int{"sloppy_udp": 1, "snat_reroute": 0})
	if err != nil || s.SloppyUDP != 1 || s.SNATReroute != 0 || s.ConnReuseMode != 1 {
		t.Errorf("With: %+v %v", s, err)
	}
	if _, err := d.With(map[string]int{"nope": 1}); err == nil || !strings.Contains(err.Error(), "unknown sysctl") {
		t.Errorf("unknown name: %v", err)
	}
	if err := (model.Sysctls{ExpireNodestConn: 5}).Validate(); err == nil {
		t.Error("out of range value validated")
	}
}
