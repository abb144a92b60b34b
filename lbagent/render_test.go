package lbagent

import (
	"net/netip"
	"strings"
	"testing"

	"gvs/config"
	"gvs/lbaas"
	"gvs/model"
)

func testSpec() *lbaas.Spec {
	a := netip.MustParseAddr
	return &lbaas.Spec{
		ID: "lb1", VIP: a("198.18.0.100"), AdminUp: true,
		Network: lbaas.NetworkRef{Bridge: "br0", CIDR: netip.MustParsePrefix("198.18.0.0/24"), Gateway: a("198.18.0.1")},
		Listeners: []lbaas.ListenerSpec{
			{ID: "l1", Protocol: "TCP", ProtocolPort: 80, AdminUp: true, ConnectionLimit: 101, DefaultPoolID: "p1"},
			{ID: "l2", Protocol: "UDP", ProtocolPort: 53, AdminUp: true, ConnectionLimit: -1, DefaultPoolID: "p2"},
			{ID: "l3", Protocol: "TCP", ProtocolPort: 81, AdminUp: false, DefaultPoolID: "p1"},
		},
		Pools: []lbaas.PoolSpec{
			{ID: "p1", LBAlgorithm: "LEAST_CONNECTIONS", AdminUp: true,
				SessionPersistence: &lbaas.SessionPersistence{Type: "SOURCE_IP", PersistenceTimeout: 60, PersistenceGranularity: "255.255.255.0"},
				Members: []lbaas.MemberSpec{
					{ID: "m1", Address: a("198.18.0.11"), ProtocolPort: 8080, Weight: 3, AdminUp: true},
					{ID: "m2", Address: a("198.19.5.12"), ProtocolPort: 8080, Weight: 0, AdminUp: true, MonitorPort: 9000},
					{ID: "m3", Address: a("198.18.0.13"), ProtocolPort: 8080, Weight: 1, AdminUp: false},
					{ID: "m4", Address: a("198.18.0.14"), ProtocolPort: 8080, Weight: 1, AdminUp: true, Backup: true},
				},
				HealthMonitor: &lbaas.HealthMonitorSpec{Type: "HTTP", Delay: 5, Timeout: 2, MaxRetries: 2, MaxRetriesDown: 3,
					HTTPMethod: "GET", URLPath: "/healthz", ExpectedCodes: "200-204,301", AdminUp: true}},
			{ID: "p2", LBAlgorithm: "SOURCE_IP_PORT", AdminUp: true,
				Members:       []lbaas.MemberSpec{{ID: "m5", Address: a("198.18.0.15"), ProtocolPort: 53, Weight: 1, AdminUp: true}},
				HealthMonitor: &lbaas.HealthMonitorSpec{Type: "UDP-CONNECT", Delay: 3, Timeout: 1, MaxRetriesDown: 1, AdminUp: true}},
		},
	}
}

func TestRender(t *testing.T) {
	b, err := render(testSpec(), ForwardAuto)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules.Services) != 2 {
		t.Fatalf("services %d, want 2 (the admin-down listener has none):\n%s", len(c.Rules.Services), b)
	}
	tcp := c.Rules.Services[0]
	s := tcp.Service
	if s.Scheduler != "lc" || !s.Persistent() || s.Timeout != 60 || s.Netmask != 0xffffff00 {
		t.Errorf("TCP service %+v", s)
	}
	if len(tcp.Dests) != 2 {
		t.Fatalf("dests %+v: want m1 and m2 (m3 admin down, m4 backup)", tcp.Dests)
	}
	for _, d := range tcp.Dests {
		switch d.Addr.String() {
		case "198.18.0.11":
			if d.Method != model.Masq || d.Weight != 3 || d.UThreshold != 51 || d.Port != 8080 {
				t.Errorf("m1: %+v", d)
			}
		case "198.19.5.12":
			if d.Method != model.FullNAT || d.Weight != 0 || d.UThreshold != 51 {
				t.Errorf("m2: %+v", d)
			}
		default:
			t.Errorf("unexpected dest %+v", d)
		}
	}
	if len(tcp.LocalAddrs) != 1 || tcp.LocalAddrs[0].String() != "198.18.0.100" {
		t.Errorf("local addresses %v, want the VIP", tcp.LocalAddrs)
	}
	hs := c.Health.Services[0]
	if hs.Sorry == nil || hs.Sorry.Dest.Addr.String() != "198.18.0.14" {
		t.Errorf("sorry server %+v", hs.Sorry)
	}
	for _, srv := range hs.Servers {
		ck := srv.Checks[0]
		if ck.Kind != "HTTP_GET" || *ck.Retry != 2 || ck.DelayLoop.Seconds() != 5 || ck.ConnectTimeout.Seconds() != 2 ||
			ck.DelayBeforeRetry.Seconds() != 5 || ck.HTTP.URLs[0].Path != "/healthz" || len(ck.HTTP.URLs[0].StatusCodes) != 2 {
			t.Errorf("%s: check %+v", srv.Addr, ck)
		}
		if srv.Addr.Addr().String() == "198.19.5.12" && ck.ConnectPort != 9000 {
			t.Errorf("m2's monitor port: %+v", ck)
		}
	}
	udp := c.Rules.Services[1]
	if udp.Service.Scheduler != "sh" || udp.Service.Flags&model.FlagSched2 == 0 || udp.Dests[0].UThreshold != 0 {
		t.Errorf("UDP service %+v %+v", udp.Service, udp.Dests)
	}
	if ck := c.Health.Services[1].Servers[0].Checks[0]; ck.Kind != "UDP_CHECK" || *ck.Retry != 0 {
		t.Errorf("UDP check %+v", ck)
	}

	// FULLNAT for all; an admin-down load balancer serves nothing.
	b, err = render(testSpec(), ForwardFullNAT)
	if err != nil || strings.Contains(string(b), "masq") {
		t.Errorf("forwarding fullnat: %v\n%s", err, b)
	}
	sp := testSpec()
	sp.AdminUp = false
	if b, err = render(sp, ForwardAuto); err != nil || !strings.Contains(string(b), "services: []") {
		t.Errorf("admin down: %v\n%s", err, b)
	}
	sp = testSpec()
	sp.Pools[0].HealthMonitor.Type = "SCTP"
	if b, err = render(sp, ForwardAuto); err != nil || !strings.Contains(string(b), "PING_CHECK") {
		t.Errorf("SCTP monitor: %v\n%s", err, b)
	}
}

func TestNetmask(t *testing.T) {
	for _, tc := range []struct {
		in   string
		v6   bool
		want string
	}{
		{"255.255.0.0", false, "255.255.0.0"},
		{"24", false, "255.255.255.0"},
		{"ffff:ffff:ffff:ffff::", true, "64"},
		{"/48", true, "48"},
	} {
		if got, err := netmask(tc.in, tc.v6); err != nil || got != tc.want {
			t.Errorf("netmask(%q): %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestHostIfName(t *testing.T) {
	if n := HostIfName("0c3b3a5e-5f5e-4c1e-9a77-6a0f2f1d2c11"); n != "lvs0c3b3a5e5f5" || len(n) > 15 {
		t.Errorf("HostIfName: %q", n)
	}
}
