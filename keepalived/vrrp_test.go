package keepalived

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"gvs/model"
	"gvs/vrrp"
)

const vrrpConf = `global_defs {
   router_id LB1
   vrrp_version 3
   vrrp_garp_master_delay 2
   vrrp_garp_master_repeat 3
   vrrp_garp_interval 0.001
}

vrrp_script chk_gvsd {
    script "/usr/bin/pgrep -x gvsd"
    interval 2
    timeout 1
    weight -30
    rise 2
    fall 3
}

vrrp_sync_group VG_1 {
    group {
        VI_1
        VI_6
    }
    notify /usr/local/bin/vg.sh
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    version 2
    preempt_delay 30
    virtual_ipaddress {
        198.18.0.100
        198.18.0.101/24 dev eth1 label eth1:vip
    }
    virtual_ipaddress_excluded {
        2001:db8::100/64
    }
    authentication {
        auth_type PASS
        auth_pass gvs
    }
    unicast_src_ip 198.18.0.1
    unicast_peer {
        198.18.0.2
    }
    track_interface {
        eth0
        eth1 weight -20
    }
    track_script {
        chk_gvsd
        chk_gvsd weight 10 reverse
    }
    track_service {
        tcp 198.18.0.100:80 weight -20
        fwmark 7
    }
    notify_master "/usr/local/bin/state.sh master"
    notify /usr/local/bin/notify.sh
    garp_master_refresh 60
    use_vmac
}

vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 52
    nopreempt
    advert_int 0.5
    virtual_ipaddress {
        2001:db8::1
    }
}
`

func TestParseVRRP(t *testing.T) {
	res, err := Parse(write(t, "keepalived.conf", vrrpConf))
	if err != nil {
		t.Fatal(err)
	}
	c := res.VRRP
	if c == nil {
		t.Fatal("no VRRP config")
	}
	w := func(n int) *int { return &n }
	dflt := vrrp.GARP{MasterDelay: 2 * time.Second, MasterRepeat: 3, RefreshRepeat: 1, Interval: time.Millisecond}
	withRefresh := dflt
	withRefresh.MasterRefresh = time.Minute
	want := &vrrp.Config{
		Version: 3,
		GARP:    dflt,
		Scripts: []vrrp.CheckScript{{Name: "chk_gvsd", Script: vrrp.Script{Command: "/usr/bin/pgrep -x gvsd"},
			Interval: 2 * time.Second, Timeout: time.Second, Weight: -30, Rise: 2, Fall: 3}},
		SyncGroups: []vrrp.SyncGroup{{Name: "VG_1", Instances: []string{"VI_1", "VI_6"},
			Notify: vrrp.Notify{Notify: &vrrp.Script{Command: "/usr/local/bin/vg.sh"}}}},
		Instances: []vrrp.Instance{
			{
				Name: "VI_1", InitMaster: true, Interface: "eth0", VRID: 51, Priority: 150,
				AdvertInterval: time.Second, Version: 2, PreemptDelay: 30 * time.Second,
				VIPs: []vrrp.VIP{
					{Prefix: netip.MustParsePrefix("198.18.0.100/32")},
					{Prefix: netip.MustParsePrefix("198.18.0.101/24"), Dev: "eth1", Label: "eth1:vip"},
				},
				Excluded:     []vrrp.VIP{{Prefix: netip.MustParsePrefix("2001:db8::100/64")}},
				AuthPass:     "gvs",
				UnicastSrc:   netip.MustParseAddr("198.18.0.1"),
				UnicastPeers: []netip.Addr{netip.MustParseAddr("198.18.0.2")},
				TrackInterfaces: []vrrp.TrackInterface{
					{Name: "eth0"}, {Name: "eth1", Weight: -20},
				},
				TrackScripts: []vrrp.TrackScript{{Name: "chk_gvsd"}, {Name: "chk_gvsd", Weight: w(10), Reverse: true}},
				TrackServices: []vrrp.TrackService{
					{Service: model.ServiceKey{Protocol: model.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Family: model.IPv4}, Weight: -20},
					{Service: model.ServiceKey{FWMark: 7, Family: model.IPv4}},
				},
				Notify: vrrp.Notify{Master: &vrrp.Script{Command: "/usr/local/bin/state.sh master"},
					Notify: &vrrp.Script{Command: "/usr/local/bin/notify.sh"}},
				GARP: &withRefresh,
			},
			{
				Name: "VI_6", Interface: "eth0", VRID: 52, NoPreempt: true, AdvertInterval: 500 * time.Millisecond,
				VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix("2001:db8::1/128")}},
			},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
		for i := range c.Instances {
			if !reflect.DeepEqual(c.Instances[i], want.Instances[i]) {
				t.Errorf("instance %d\n%+v\nwant\n%+v", i, c.Instances[i], want.Instances[i])
			}
		}
	}
	notices := strings.Join(res.Notices, "\n")
	if !strings.Contains(notices, "keepalived.conf:64: vrrp_instance VI_1: use_vmac: not supported by gvs") {
		t.Errorf("notices %q lack use_vmac", notices)
	}
	if strings.Contains(notices, "vrrp_instance: not used") {
		t.Errorf("notices %q still skip VRRP", notices)
	}
}

func TestParseVRRPErrors(t *testing.T) {
	inst := func(body string) string {
		return "vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  198.18.0.1\n }\n" + body + "\n}\n"
	}
	for _, tc := range []struct{ conf, want string }{
		{inst("priority 0"), "priority"},
		{inst("state LEADER"), "state: want MASTER or BACKUP"},
		{inst("track_script {\n nope\n}"), "track_script nope: no such vrrp_script"},
		{inst("version 3\nauthentication {\n auth_type PASS\n auth_pass x\n}"), "authentication is VRRPv2 only"},
		{inst("advert_int 1.5"), "VRRPv2 takes whole seconds"},
		{inst("authentication {\n auth_type AH\n}"), "AH: not supported"},
		{inst("track_interface {\n eth1 weight -300\n}"), "want -253..253"},
		{inst("track_service {\n tcp 198.18.0.1 weight 1\n}"), "want PROTO ADDR:PORT"},
		{inst("nopreempt\npreempt_delay 5"), "exclusive"},
		{"vrrp_sync_group G {\n group {\n  VI_X\n }\n}\n" + inst(""), "no vrrp_instance VI_X"},
		{"vrrp_script s {\n interval 1\n}\n", "no script"},
	} {
		_, err := Parse(write(t, "keepalived.conf", tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.conf, err, tc.want)
		}
	}
}
