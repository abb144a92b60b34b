package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const vrrpKeepalived = `global_defs {
    vrrp_garp_master_delay 1
    vrrp_gna_interval 0.002
}
vrrp_script chk {
    script "/bin/true"
    interval 2
    weight -30
    fall 2
}
vrrp_sync_group VG {
    group {
        VI_4
        VI_6
    }
    notify /bin/vg.sh
}
vrrp_instance VI_4 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    preempt_delay 10
    virtual_ipaddress {
        198.18.0.100
        198.18.0.101/24 dev eth1 label eth1:vip
    }
    authentication {
        auth_type PASS
        auth_pass secret
    }
    unicast_peer {
        198.18.0.2
    }
    track_interface {
        eth1 weight -20
    }
    track_script {
        chk
    }
    track_service {
        tcp 198.18.0.100:80 weight -20
    }
    notify_master "/bin/echo master"
    notify /bin/notify.sh
}
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 52
    version 3
    advert_int 0.1
    nopreempt
    virtual_ipaddress {
        2001:db8::100/64
    }
    garp_master_repeat 2
}
`

const vrrpYAML = `vrrp:
  garp: {master_delay: 1, na_interval: 2ms}
  scripts:
    - {name: chk, script: /bin/true, interval: 2, weight: -30, fall: 2}
  sync_groups:
    - {name: VG, group: [VI_4, VI_6], notify: /bin/vg.sh}
  instances:
    - name: VI_4
      state: MASTER
      interface: eth0
      virtual_router_id: 51
      priority: 150
      preempt_delay: 10
      virtual_ipaddress: [198.18.0.100, 198.18.0.101/24 dev eth1 label eth1:vip]
      auth_pass: secret
      unicast_peer: [198.18.0.2]
      track_interface: [{name: eth1, weight: -20}]
      track_script: [{name: chk}]
      track_service: [{service: "tcp 198.18.0.100:80", weight: -20}]
      notify_master: /bin/echo master
      notify: /bin/notify.sh
    - name: VI_6
      interface: eth0
      virtual_router_id: 52
      version: 3
      advert_int: 100ms
      nopreempt: true
      virtual_ipaddress: [2001:db8::100/64]
      garp: {master_repeat: 2}
`

func TestVRRPBothForms(t *testing.T) {
	dir := t.TempDir()
	ka, ya := filepath.Join(dir, "keepalived.conf"), filepath.Join(dir, "gvs.yaml")
	if err := os.WriteFile(ka, []byte(vrrpKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ya, []byte(vrrpYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Load(ka, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(ya, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.VRRP == nil || b.VRRP == nil {
		t.Fatalf("VRRP %v / %v", a.VRRP, b.VRRP)
	}
	if !reflect.DeepEqual(a.VRRP, b.VRRP) {
		t.Errorf("keepalived.conf\n%+v\nYAML\n%+v", a.VRRP, b.VRRP)
		for i := range a.VRRP.Instances {
			if !reflect.DeepEqual(a.VRRP.Instances[i], b.VRRP.Instances[i]) {
				t.Errorf("instance %d\n%+v\n%+v", i, a.VRRP.Instances[i], b.VRRP.Instances[i])
			}
		}
	}
	if c, err := ParseConfig([]byte("services: []\n")); err != nil || c.VRRP != nil {
		t.Errorf("no vrrp section: %v %v", c.VRRP, err)
	}
}

func TestVRRPYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"vrrp:\n  instances:\n    - {name: A, interface: eth0, virtual_router_id: 0, virtual_ipaddress: [198.18.0.1]}\n", "virtual_router_id 0"},
		{"vrrp:\n  instances:\n    - {name: A, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [198.18.0.1 brd x]}\n", "unknown option"},
		{"vrrp:\n  instances:\n    - {name: A, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [198.18.0.1], track_service: [{service: http}]}\n", "track_service"},
		{"vrrp:\n  instances:\n    - {name: A, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [198.18.0.1], state: LEADER}\n", "state"},
		{"vrrp:\n  instances:\n    - {name: A, interface: eth0, virtual_router_id: 1}\n", "no virtual_ipaddress"},
		{"vrrp:\n  instance: []\n", "field instance not found"},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
