package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gvs/control"
	"gvs/model"
)

const syncVRRP = `
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.18.0.100/32
    }
}
`

// lvs_sync_daemon in keepalived.conf and sync_daemon: in YAML give the
// same daemons; the sync id defaults to the instance's VRID.
func TestSyncDaemon(t *testing.T) {
	dir := t.TempDir()
	noSave := func([]byte) (*control.Rules, error) { t.Fatal("read as ipvsadm-save"); return nil, nil }
	load := func(name, text string) (*Config, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load(p, noSave)
	}
	k, err := load("keepalived.conf", "global_defs {\n    lvs_sync_daemon eth1 VI_1 maxlen 1400 port 9000 ttl 2 group 239.1.1.1\n}\n"+syncVRRP)
	if err != nil {
		t.Fatal(err)
	}
	want := &control.SyncFollow{Instance: "VI_1", Daemon: model.SyncDaemon{McastIfn: "eth1", SyncID: 51, SyncMaxLen: 1400,
		McastPort: 9000, McastTTL: 2, McastGroup: netip.MustParseAddr("239.1.1.1")}}
	if !reflect.DeepEqual(k.Sync, want) {
		t.Fatalf("keepalived.conf: %+v", k.Sync)
	}
	y, err := load("gvs.yaml", `vrrp:
  instances:
    - name: VI_1
      state: BACKUP
      interface: eth0
      virtual_router_id: 51
      priority: 100
      virtual_ipaddress: [198.18.0.100/32]
sync_daemon: {interface: eth1, instance: VI_1, maxlen: 1400, port: 9000, ttl: 2, group: 239.1.1.1}
`)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y.Sync, want) {
		t.Fatalf("yaml: %+v", y.Sync)
	}
	// The older form without "inst", an explicit id, no instance at all.
	k, err = load("keepalived.conf", "global_defs {\n    lvs_sync_daemon eth0 inst VI_1 id 7\n}\n"+syncVRRP)
	if err != nil || k.Sync.Daemon.SyncID != 7 || !k.Sync.SyncIDSet {
		t.Fatalf("id 7: %+v %v", k.Sync, err)
	}
	k, err = load("keepalived.conf", "global_defs {\n    lvs_sync_daemon eth0\n}\n")
	if err != nil || k.Sync.Instance != "" || k.Sync.Daemon.SyncID != 0 {
		t.Fatalf("no instance: %+v %v", k.Sync, err)
	}
	for text, why := range map[string]string{
		"global_defs {\n    lvs_sync_daemon eth0 VI_9\n}\n" + syncVRRP:        `keepalived.conf:2: lvs_sync_daemon: no vrrp_instance "VI_9"`,
		"global_defs {\n    lvs_sync_daemon eth0 VI_1 id 300\n}\n" + syncVRRP: "keepalived.conf:2: lvs_sync_daemon id",
		"global_defs {\n    lvs_sync_daemon eth0 VI_1 group 1.2.3.4\n}\n":     "not a multicast address",
		"global_defs {\n    lvs_sync_daemon\n}\n":                             "lvs_sync_daemon: want INTERFACE",
	} {
		if _, err := load("keepalived.conf", text); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want %q", text, err, why)
		}
	}
	if _, err := load("gvs.yaml", "sync_daemon: {interface: eth0, instance: VI_2}\n"); err == nil || !strings.Contains(err.Error(), "no such VRRP instance") {
		t.Errorf("yaml unknown instance: %v", err)
	}
}
