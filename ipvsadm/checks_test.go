package ipvsadm

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"gvs/api"
	"gvs/model"
)

func TestListChecksGolden(t *testing.T) {
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	sorry := netip.MustParseAddrPort("198.18.2.1:80")
	w := int64(7)
	h := api.Health{Services: []api.ServiceHealth{
		{Service: tcp("198.18.0.1", 80).ServiceKey, QuorumUp: true, LiveWeight: 3, Quorum: 2, Hysteresis: 1, Sorry: &sorry,
			Servers: []api.ServerHealth{
				{Server: netip.MustParseAddrPort("198.18.1.1:80"), Up: true, Checks: []api.CheckStatus{
					{Kind: "HTTP_GET", Target: "198.18.1.1:80", Up: true, LastResult: "ok", LastReason: "GET /health: status 200"},
					{Kind: "MISC_CHECK", Target: "/usr/local/bin/load", Up: true, LastResult: "ok", LastReason: "exit status 9", Weight: &w,
						LastTransition: now.Add(-3*time.Hour - 5*time.Minute)},
				}},
				{Server: netip.MustParseAddrPort("198.18.1.2:80"), Inhibit: true, Checks: []api.CheckStatus{
					{Kind: "TCP_CHECK", Target: "198.18.1.2:80", LastResult: "failed", LastReason: "connection refused (after 1 retries)",
						ConsecutiveFailures: 4, LastTransition: now.Add(-95 * time.Second)},
				}},
			}},
		{Service: model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53, Family: model.IPv6},
			LiveWeight: 0, Quorum: 1, Sorry: &sorry, SorryActive: true,
			Servers: []api.ServerHealth{
				{Server: netip.MustParseAddrPort("[2001:db8::10]:53"), Checks: []api.CheckStatus{
					{Kind: "DNS_CHECK", Target: "[2001:db8::10]:53", ConsecutiveFailures: 0},
				}},
			}},
	}}
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"checks.txt", []string{"--list-checks", "-n"}},
		{"checks_service.txt", []string{"--list-checks", "-t", "198.18.0.1:http"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cmd, err := Parse(tc.args)
			if err != nil || cmd.Kind != KindListChecks {
				t.Fatalf("%v parsed as %+v, %v", tc.args, cmd, err)
			}
			var k *model.ServiceKey
			if cmd.HasService() {
				k = &cmd.Service.ServiceKey
			}
			var b bytes.Buffer
			if err := ListChecks(&b, h, k, cmd.Format, now); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
	k := tcp("198.18.0.9", 80).ServiceKey
	var b bytes.Buffer
	if err := ListChecks(&b, h, &k, Format{}, now); err != model.ErrServiceNotDefined || b.Len() != 0 {
		t.Errorf("unknown service: %q, %v", b.String(), err)
	}
	if _, err := Parse([]string{"--list-checks", "-w", "1"}); err == nil || err.Error() != "Illegal 'weight' option with the 'list-checks' command" {
		t.Errorf("--list-checks -w 1: %v", err)
	}
}
