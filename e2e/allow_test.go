package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvs/api"
	"gvs/client"
	"gvs/model"
)

// Source allow lists on the xdp engine: gvsd starts with --config
// holding a DR service whose list admits the client (198.18.0.1), and
// the client connects; a SIGHUP brings a list that does not admit it,
// and its new connection is dropped in XDP and counted as "denied";
// set-allow through the API admits it again. gvsadm -S stays ipvsadm's
// (no list), GET /v1/services shows the list.
func TestXDPAllowList(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(allow string) {
		t.Helper()
		doc := "services:\n  - tcp: " + vip + ":80\n    scheduler: rr\n" +
			"    servers: [{address: 198.18.0.11}, {address: 198.18.0.12}]\n" +
			"    allow: " + allow + "\n"
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[198.18.0.0/30, 203.0.113.7]")
	tp := newDRTopoArgs(t, false, "--config", cfg)
	d := tp.d
	c := client.New(d.socket)
	clientNS := tp.ns("client")
	svc := model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr(vip), Port: 80, Family: model.IPv4}
	// waitAllow waits for the running list to be want (a reload is
	// asynchronous).
	waitAllow := func(want ...string) {
		t.Helper()
		var w []netip.Prefix
		for _, s := range want {
			w = append(w, netip.MustParsePrefix(s))
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			snap, err := c.Services()
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Services) == 1 && slices.Equal(snap.Services[0].Allow, w) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("services %+v, want the allow list %v\n%s", snap.Services, w, d.log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitAllow("198.18.0.0/30", "203.0.113.7/32")
	if got := tp.hellos(d, clientNS, vip+":80", 2); len(got) != 2 {
		t.Fatalf("greetings %v", got)
	}
	saved := d.must("-S", "-n")
	for _, l := range strings.Split(strings.TrimSpace(saved), "\n") {
		if !strings.HasPrefix(l, "-A -t "+vip+":80 ") && !strings.HasPrefix(l, "-a -t "+vip+":80 ") {
			t.Fatalf("gvsadm -S prints more than ipvsadm would:\n%s", saved)
		}
	}
	denied := d.events()["denied"]

	// A list without the client: its SYNs are dropped (it times out).
	write("[198.18.0.2/32, 203.0.113.0/24]")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitAllow("198.18.0.2/32", "203.0.113.0/24")
	if out, err := tp.role(clientNS, "hello", vip+":80"); err == nil {
		t.Fatalf("a client the list does not admit connected: %q", out)
	}
	if got := d.events()["denied"]; got <= denied {
		t.Fatalf("denied %d, was %d: the refused SYNs are not counted", got, denied)
	}
	if got := d.must("-S", "-n"); got != saved {
		t.Errorf("gvsadm -S changed with the list:\n%s\nwas:\n%s", got, saved)
	}

	// set-allow through the API admits it again.
	if err := c.Do(api.Op{Op: api.SetAllow, Service: model.Service{ServiceKey: svc}, Allow: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/32")}}); err != nil {
		t.Fatal(err)
	}
	waitAllow("198.18.0.1/32")
	tp.hellos(d, clientNS, vip+":80", 1)
}
