package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gvs/check"
	"gvs/control"
)

func TestKeepalivedDetected(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want bool
	}{
		{"! keepalived\n# more\nglobal_defs {\n}\n", true},
		{"virtual_server 198.18.0.1 80 {\n", true},
		{"virtual_server_group g {\n", true},
		{"vrrp_instance VI_1 {\n", true},
		{"include /etc/keepalived/lvs.conf\n", true},
		{"track_file f {\n", true},
		{"services: []\n", false},
		{"# virtual_server\nservices: []\n", false},
		{"-A -t 198.18.0.1:80\n", false},
	} {
		if got := isKeepalived([]byte(tc.doc)); got != tc.want {
			t.Errorf("%q: keepalived %v, want %v", tc.doc, got, tc.want)
		}
	}
}

const healthYAML = `
services:
  - tcp: 198.18.0.1:80
    scheduler: wrr
    quorum: 2
    hysteresis: 1
    quorum_up: {command: "/bin/up 'a b'", user: lvs}
    quorum_down: /bin/down
    sorry_server: {address: "198.18.9.9:8080", method: masq, inhibit: true}
    omega: true
    ha_suspend: true
    alpha: true
    delay_loop: 6
    check:
      - type: HTTP_GET
        connect_timeout: 1500ms
        retry: 2
        urls:
          - {path: /health, status_code: [200-299, 301], digest: 9B3A0C85A887A256D6939DA88AABD8CD, regex: "ok"}
    servers:
      - address: 198.18.1.1
        method: masq
        weight: 2
        inhibit_on_failure: true
        notify_up: /bin/echo up
        notify_down: {command: /bin/echo down, user: nobody, group: nogroup}
      - address: 198.18.1.2
        method: masq
        check:
          - {type: UDP_CHECK, payload: "01 02", require_reply: "Xf", delay_loop: 2.5, warmup: 0}
          - {type: MISC_CHECK, misc_path: "/bin/check 'x y'", misc_timeout: 3, user: nobody}
      - address: 198.18.1.3
        method: masq
        check: []
  - udp: 198.18.0.1:53
    servers: [{address: 198.18.1.1}]
`

const healthKeepalived = `virtual_server 198.18.0.1 80 {
    lvs_sched wrr
    quorum 2
    hysteresis 1
    quorum_up "/bin/up 'a b'" lvs
    quorum_down /bin/down
    sorry_server 198.18.9.9 8080
    sorry_server_inhibit
    omega
    ha_suspend
    alpha
    delay_loop 6
    real_server 198.18.1.1 80 {
        weight 2
        inhibit_on_failure
        notify_up "/bin/echo up"
        notify_down "/bin/echo down" nobody nogroup
        HTTP_GET {
            connect_timeout 1.5
            retry 2
            url {
                path /health
                status_code 200-299 301
                digest 9b3a0c85a887a256d6939da88aabd8cd
                regex ok
            }
        }
    }
    real_server 198.18.1.2 80 {
        UDP_CHECK {
            payload 01 02
            require_reply Xf
            delay_loop 2.5
            warmup 0
        }
        MISC_CHECK {
            misc_path "/bin/check 'x y'"
            misc_timeout 3
            user nobody
        }
    }
    real_server 198.18.1.3 80 {
    }
}
virtual_server 198.18.0.1 53 {
    protocol UDP
    lvs_method DR
    real_server 198.18.1.1 53 {
    }
}
`

// A YAML file and the keepalived.conf that says the same give the same
// rules and health checks.
func TestHealthYAMLEqualsKeepalived(t *testing.T) {
	dir := t.TempDir()
	y, k := filepath.Join(dir, "gvs.yaml"), filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(y, []byte(healthYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k, []byte(healthKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}
	noSave := func([]byte) (*control.Rules, error) { t.Fatal("read as ipvsadm-save"); return nil, nil }
	cy, err := Load(y, noSave)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := Load(k, noSave)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cy.Rules, ck.Rules) {
		t.Errorf("rules differ:\nyaml       %+v\nkeepalived %+v", cy.Rules, ck.Rules)
	}
	if !reflect.DeepEqual(cy.Health, ck.Health) {
		t.Errorf("health differs:\nyaml       %+v\nkeepalived %+v", cy.Health, ck.Health)
	}
	h := cy.Health
	if h == nil || len(h.Services) != 1 { // the UDP service has no checks
		t.Fatalf("health %+v", h)
	}
	s := h.Services[0]
	if s.Quorum != 2 || s.Sorry == nil || !s.Sorry.Inhibit || s.Sorry.Dest.Port != 8080 || len(s.Servers) != 3 {
		t.Fatalf("service %+v", s)
	}
	if c := s.Servers[0].Checks; len(c) != 1 || c[0].Kind != check.HTTP || c[0].ConnectTimeout != 1500*time.Millisecond ||
		c[0].DelayLoop != 6*time.Second || !c[0].Alpha || c[0].HTTP.URLs[0].Digest != "9b3a0c85a887a256d6939da88aabd8cd" {
		t.Errorf("service-wide check %+v", c)
	}
	if c := s.Servers[1].Checks; len(c) != 2 || c[0].UDP.ReplyMask[0] != 0x0f || c[0].DelayLoop != 2500*time.Millisecond || c[1].Misc.Path != "/bin/check 'x y'" {
		t.Errorf("own checks %+v", c)
	}
	if s.Servers[2].Checks != nil {
		t.Errorf("check: [] gave %+v", s.Servers[2].Checks)
	}
	if _, err := ParseConfig([]byte("services:\n  - tcp: 198.18.0.1:80\n    servers: [{address: 198.18.1.1}]\n")); err != nil {
		t.Fatal(err)
	}
}

func TestHealthYAMLErrors(t *testing.T) {
	svc := "services:\n  - tcp: 198.18.0.1:80\n    servers: [{address: 198.18.1.1}]\n"
	for _, tc := range []struct{ doc, want string }{
		{svc + "    check: [{type: NOPE}]\n", `check type "NOPE"`},
		{svc + "    check: [{type: TCP_CHECK, colour: red}]\n", "field colour not found"},
		{svc + "    check: [{type: HTTP_GET, urls: [{path: /, status_code: [200-700]}]}]\n", `status_code "200-700"`},
		{svc + "    check: [{type: HTTP_GET, urls: [{path: /, digest: abc}]}]\n", `digest "abc"`},
		{svc + "    check: [{type: TCP_CHECK, connect_timeout: soon}]\n", `"soon": want seconds`},
		{svc + "    check: [{type: UDP_CHECK, payload: 0g}]\n", "payload"},
		{svc + "    quorum: 0\n    check: [{type: TCP_CHECK}]\n", "quorum 0"},
		{svc + "    sorry_server: {address: nope}\n", "sorry_server"},
	} {
		_, err := ParseConfig([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
}
