package ipvsadm

import (
	"bytes"
	"net/netip"
	"testing"

	"gvs/api"
	"gvs/model"
)

func TestListDaemons(t *testing.T) {
	var b bytes.Buffer
	ds := []model.SyncDaemon{
		model.SyncDaemon{State: "backup", McastIfn: "eth1", SyncID: 7, McastGroup: netip.MustParseAddr("ff02::81")}.Normalize(),
		model.SyncDaemon{State: "master", McastIfn: "eth0"}.Normalize(),
	}
	if err := ListSyncDaemons(&b, ds); err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
		"backup sync daemon (mcast=eth1, syncid=7, maxlen=1452, group=ff02::81, port=8848, ttl=1)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestDaemonOps(t *testing.T) {
	cmd, err := Parse([]string{"--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "9", "--mcast-group", "239.1.2.3", "--mcast-port", "9000", "--mcast-ttl", "2", "--sync-maxlen", "1400"})
	if err != nil {
		t.Fatal(err)
	}
	op, ok, err := cmd.Op()
	want := model.SyncDaemon{State: "master", McastIfn: "eth1", SyncID: 9, SyncMaxLen: 1400, McastGroup: netip.MustParseAddr("239.1.2.3"), McastPort: 9000, McastTTL: 2}
	if err != nil || !ok || op.Op != api.StartDaemon || op.Daemon != want {
		t.Fatalf("%+v %v %v", op, ok, err)
	}
	// ipvsadm's default interface.
	cmd, _ = Parse([]string{"--start-daemon", "backup"})
	if op, _, _ := cmd.Op(); op.Daemon.McastIfn != "eth0" || op.Daemon.State != "backup" {
		t.Fatalf("%+v", op)
	}
	cmd, _ = Parse([]string{"--stop-daemon", "backup"})
	if op, ok, err := cmd.Op(); err != nil || !ok || op.Op != api.StopDaemon || op.Daemon.State != "backup" {
		t.Fatalf("%+v", op)
	}
}
