package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gvs/control"
	"gvs/health"
)

func TestViaVIP(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noSave := func([]byte) (*control.Rules, error) { t.Fatal("read as ipvsadm-save"); return nil, nil }
	y, err := Load(write("ok.yaml", `services:
  - tcp: 198.18.0.1:80
    check: [{type: TCP_CHECK, via_vip: true}]
    servers:
      - {address: 198.18.1.1, method: route}
      - {address: 198.18.1.2, method: tunnel}
`), noSave)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Load(write("ok.conf", `virtual_server 198.18.0.1 80 {
    lb_algo wlc
    lb_kind DR
    protocol TCP
    real_server 198.18.1.1 80 {
        TCP_CHECK {
            via_vip
        }
    }
    real_server 198.18.1.2 80 {
        lvs_method TUN
        TCP_CHECK {
            via_vip
        }
    }
}
`), noSave)
	if err != nil {
		t.Fatal(err)
	}
	if s := y.Health.Services[0].Servers; !s[0].Checks[0].ViaVIP || !s[1].Checks[0].ViaVIP {
		t.Errorf("via_vip not read: %+v", s)
	}
	if !reflect.DeepEqual(y.Health, k.Health) {
		t.Errorf("YAML and keepalived.conf differ:\n%+v\n%+v", y.Health, k.Health)
	}

	for name, doc := range map[string]string{
		"masq.yaml": `services:
  - tcp: 198.18.0.1:80
    check: [{type: TCP_CHECK, via_vip: true}]
    servers: [{address: 198.18.1.1, method: masq}]
`,
		"fullnat.conf": `virtual_server 198.18.0.1 80 {
    lb_kind FNAT
    protocol TCP
    real_server 198.18.1.1 80 {
        HTTP_GET {
            url {
                path /
            }
            via_vip
        }
    }
}
`,
		"fwmark.yaml": `services:
  - fwmark: 1
    check: [{type: TCP_CHECK, via_vip: true}]
    servers: [{address: 198.18.1.1:80, method: route}]
`,
	} {
		if _, err := Load(write(name, doc), noSave); !errors.Is(err, health.ErrViaVIP) {
			t.Errorf("%s: %v, want %v", name, err, health.ErrViaVIP)
		}
	}
	if _, err := Load(write("arg.conf", "virtual_server 198.18.0.1 80 {\n  real_server 198.18.1.1 80 {\n    TCP_CHECK {\n      via_vip yes\n    }\n  }\n}\n"), noSave); err == nil {
		t.Errorf("via_vip with a value accepted")
	}
}
