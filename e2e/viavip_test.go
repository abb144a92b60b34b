package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthChecksViaVIP: via_vip checks of DR and TUN servers reach the
// server at VIP:port, as a client's packet does. rs1 serves only on
// VIP:8081 (a check of its own address would fail: it is up); rs2 only on
// its own address 198.18.0.12:8081 (a check of its own address would pass:
// it is down, its TCP_CHECK refused and its UDP_CHECK answered by a port
// unreachable that the forwarding maps back). rs1 goes down when its
// daemon stops and comes back when it starts again.
func TestHealthChecksViaVIP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tunnel bool
	}{{"DR", false}, {"TUN", true}} {
		t.Run(tc.name, func(t *testing.T) { testViaVIP(t, tc.tunnel) })
	}
}

func testViaVIP(t *testing.T, tunnel bool) {
	method := "route"
	if tunnel {
		method = "tunnel"
	}
	servers := `    servers:
      - {address: 198.18.0.11:8081, method: ` + method + `}
      - {address: 198.18.0.12:8081, method: ` + method + `}
`
	cfg := filepath.Join(t.TempDir(), "gvs.yaml")
	if err := os.WriteFile(cfg, []byte(`services:
  - tcp: `+vip+`:8081
    scheduler: rr
    delay_loop: 1
    check:
      - {type: TCP_CHECK, via_vip: true, connect_timeout: 1, retry: 1, delay_before_retry: 0.5}
`+servers+`  - udp: `+vip+`:8081
    scheduler: rr
    delay_loop: 1
    check:
      - {type: UDP_CHECK, via_vip: true, connect_timeout: 1, retry: 1, delay_before_retry: 0.5}
`+servers), 0o600); err != nil {
		t.Fatal(err)
	}
	tp := newDRTopoArgs(t, tunnel, "--config", cfg)
	exe, _ := os.Executable()
	var rs1 *exec.Cmd
	serveRS1 := func() {
		rs1 = tp.start(tp.ns("rs1"), "env", "GVS_E2E_ROLE=serve "+vip+":8081 rs1", exe)
	}
	serveRS1()
	tp.start(tp.ns("rs2"), "env", "GVS_E2E_ROLE=serve 198.18.0.12:8081 rs2", exe)
	d := tp.d
	if !strings.Contains(d.log.String(), "health check forwarding attached") {
		t.Fatalf("no health check forwarding:\n%s", d.log)
	}
	// served says which servers each service has: "tcp=[...] udp=[...]".
	served := func() string {
		out := ""
		for _, p := range []string{"-t", "-u"} {
			l := d.must("-L", "-n", p, vip+":8081")
			out += p + "=[" + map[bool]string{true: "rs1", false: ""}[strings.Contains(l, "198.18.0.11:8081")] +
				map[bool]string{true: " rs2", false: ""}[strings.Contains(l, "198.18.0.12:8081")] + "] "
		}
		return strings.TrimSpace(out)
	}
	want := func(limit time.Duration, what, w string) time.Duration {
		return waitFor(t, limit, what, func() (bool, string) {
			s := served()
			return s == w, s + "\n" + d.must("--list-checks", "-n")
		})
	}
	want(8*time.Second, "rs1 up, rs2 down", "-t=[rs1] -u=[rs1]")
	checks := d.must("--list-checks", "-n")
	t.Logf("checks:\n%s", checks)
	if !strings.Contains(checks, vip+":8081 via 198.18.0.11") {
		t.Errorf("--list-checks does not show the check through the VIP:\n%s", checks)
	}
	if !strings.Contains(checks, "refused") {
		t.Errorf("rs2's checks not refused (TCP RST, ICMP port unreachable mapped back):\n%s", checks)
	}
	// Clients reach rs1 through the director as the check did.
	if got := strings.Join(tp.hellos(d, tp.ns("client"), vip+":8081", 2), " "); got != "rs1 rs1" {
		t.Errorf("clients: %s", got)
	}

	rs1.Process.Kill()
	rs1.Wait()
	took := want(6*time.Second, "rs1 down", "-t=[] -u=[]")
	t.Logf("rs1 removed %v after its daemon died", took)
	serveRS1()
	want(6*time.Second, "rs1 back", "-t=[rs1] -u=[rs1]")
}
