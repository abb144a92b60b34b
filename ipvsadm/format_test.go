package ipvsadm

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"gvs/api"
	"gvs/model"
	"gvs/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name byte for byte (or rewrites it
// with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file\n--- got:\n%s\n--- want:\n%s", name, got, want)
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func svc(proto model.Protocol, addr string, port uint16, sched string) model.Service {
	a := ip(addr)
	return model.Service{
		ServiceKey: model.ServiceKey{Protocol: proto, Addr: a, Port: port, Family: model.FamilyOf(a)},
		Scheduler:  sched,
	}.Normalize()
}

func fwm(mark uint32, f model.Family, sched string) model.Service {
	return model.Service{ServiceKey: model.ServiceKey{FWMark: mark, Family: f}, Scheduler: sched}.Normalize()
}

func dest(addr string, port uint16, m model.Method, w int32, active, inact int) api.Dest {
	return api.Dest{
		Dest:        model.Dest{Addr: ip(addr), Port: port, Method: m, Weight: w},
		ActiveConns: active, InactConns: inact,
	}
}

// missionSnapshot is the worked example of the mission notes: a UDP
// service with source hashing and persistence 120 s, one NAT server.
func missionSnapshot(c stats.Counters) api.Snapshot {
	s := svc(model.ProtoUDP, "10.33.46.64", 9999, "sh")
	s.Flags |= model.FlagPersistent
	s.Timeout = 120
	d := dest("10.33.46.68", 9999, model.Masq, 1, 0, 0)
	d.Stats = c
	return api.Snapshot{
		Info:     api.Info{Version: "1.2.1", ConnTableSize: 4096},
		Services: []api.Service{{Service: s, Stats: c, Dests: []api.Dest{d}}},
	}
}

func TestMissionStatsExample(t *testing.T) {
	// Verbatim from the mission notes (ipvsadm -ln --stats).
	const before = "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
		"  -> RemoteAddress:Port\n" +
		"UDP  10.33.46.64:9999                    0        0        0        0        0\n" +
		"  -> 10.33.46.68:9999                    0        0        0        0        0\n"
	const after = "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
		"  -> RemoteAddress:Port\n" +
		"UDP  10.33.46.64:9999                    1        1        0       39        0\n" +
		"  -> 10.33.46.68:9999                    1        1        0       39        0\n"
	for _, tc := range []struct {
		c    stats.Counters
		want string
	}{
		{stats.Counters{}, before},
		{stats.Counters{Conns: 1, InPkts: 1, InBytes: 39}, after},
	} {
		cmd, err := Parse([]string{"-ln", "--stats"})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := List(&b, missionSnapshot(tc.c), cmd.Format); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
		}
	}
}

// richSnapshot has one of everything, in no particular order.
func richSnapshot() api.Snapshot {
	web := svc(model.ProtoTCP, "198.18.0.1", 80, "wlc")
	webDests := []api.Dest{
		dest("198.18.1.12", 8080, model.Masq, 3, 12, 40),
		dest("198.18.1.10", 80, model.Route, 1, 1234, 56789),
		dest("198.18.1.11", 80, model.Tunnel, 0, 0, 7),
		dest("198.18.1.13", 8081, model.FullNAT, 65535, 2, 0),
	}
	webDests[0].UThreshold, webDests[0].LThreshold = 1000, 600
	webDests[0].PersistConns = 4
	webDests[0].Stats = stats.Counters{Conns: 123456789, InPkts: 999999999, OutPkts: 1000000000, InBytes: 99999999999, OutBytes: 123456789012345}
	webDests[1].Stats = stats.Counters{Conns: 5000000001, InPkts: 42, OutPkts: 41, InBytes: 5000000000, OutBytes: 100000000000000}
	webDests[1].Rates = stats.Rates{CPS: 5, InPPS: 123456789, OutPPS: 4294967297, InBPS: 4294967296 + 39, OutBPS: 100000000}
	webDests[2].Rates = stats.Rates{CPS: 1, InPPS: 2, OutPPS: 3, InBPS: 4, OutBPS: 5}

	dns := svc(model.ProtoUDP, "198.18.0.1", 53, "rr")
	dns.Flags |= model.FlagOnePacket

	persist := svc(model.ProtoTCP, "198.18.0.2", 443, "sh")
	persist.Flags |= model.FlagPersistent | model.FlagSHPort | model.FlagSHFallback
	persist.Timeout = 360
	persist.Netmask = 0xffffff00

	v6 := svc(model.ProtoTCP, "2001:db8::1", 443, "mh")
	v6.Flags |= model.FlagPersistent | model.FlagMHPort
	v6.Timeout = 1800
	v6.Netmask = 64

	sctp := svc(model.ProtoSCTP, "198.18.0.3", 3868, "lc")
	sctp.Flags |= model.FlagSched3

	mark := fwm(1, model.IPv4, "wrr")
	mark6 := fwm(2, model.IPv6, "rr")
	mark6.Flags |= model.FlagPersistent
	mark6.Timeout = 60
	bigMark := fwm(3000000000, model.IPv4, "wlc")

	return api.Snapshot{
		Info: api.Info{Version: "1.2.1", ConnTableSize: 4096},
		Services: []api.Service{
			{Service: mark6, Dests: []api.Dest{dest("2001:db8::20", 0, model.Route, 1, 0, 0), dest("2001:db8::10", 0, model.Masq, 2, 0, 0)}},
			{Service: sctp, Dests: []api.Dest{dest("198.18.3.1", 3868, model.Route, 1, 0, 0)}},
			{Service: web, Dests: webDests,
				Stats:      stats.Counters{Conns: 5123456790, InPkts: 1000000083, OutPkts: 1000000041, InBytes: 105000000000, OutBytes: 223456789012345},
				Rates:      stats.Rates{CPS: 6, InPPS: 123456790, OutPPS: 99999999, InBPS: 4294967300, OutBPS: 100000001},
				LocalAddrs: []netip.Addr{ip("198.18.0.51"), ip("198.18.0.50"), ip("198.18.1.10")}},
			{Service: v6, Dests: []api.Dest{
				dest("2001:db8:1::2", 443, model.Masq, 1, 3, 4),
				dest("2001:db8:1::1", 8443, model.Masq, 1, 0, 0),
				dest("198.18.9.9", 443, model.Tunnel, 1, 0, 0),
			}, LocalAddrs: []netip.Addr{ip("2001:db8::51")}},
			{Service: dns, Dests: []api.Dest{dest("198.18.2.2", 53, model.Masq, 1, 0, 0), dest("198.18.2.1", 53, model.Masq, 1, 0, 0)}},
			{Service: bigMark},
			{Service: persist, Dests: []api.Dest{dest("198.18.4.1", 443, model.Route, 100, 0, 0)}},
			{Service: mark, Dests: []api.Dest{dest("198.18.5.1", 0, model.Route, 5, 0, 0)}, LocalAddrs: []netip.Addr{ip("198.18.0.60")}},
		},
	}
}

func TestListGolden(t *testing.T) {
	snap := richSnapshot()
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"list.txt", []string{"-L"}},
		{"list_n.txt", []string{"-Ln"}},
		{"list_stats.txt", []string{"-Ln", "--stats"}},
		{"list_stats_exact.txt", []string{"-Ln", "--stats", "--exact"}},
		{"list_rate.txt", []string{"-Ln", "--rate"}},
		{"list_rate_exact.txt", []string{"-Ln", "--rate", "--exact"}},
		{"list_thresholds.txt", []string{"-Ln", "--thresholds"}},
		{"list_persistent_conn.txt", []string{"-Ln", "--persistent-conn"}},
		{"list_tun_info.txt", []string{"-Ln", "--tun-info"}},
		{"list_nosort.txt", []string{"-Ln", "--nosort"}},
		{"list_service.txt", []string{"-L", "-n", "-t", "198.18.0.1:http"}},
		{"list_service_stats.txt", []string{"-L", "-n", "--stats", "-f", "2", "-6"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cmd, err := Parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if cmd.Kind != KindList || cmd.List != ListServiceTable {
				t.Fatalf("%v parsed as %+v", tc.args, cmd)
			}
			var b bytes.Buffer
			if err := List(&b, snap, cmd.Format); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
}

func TestSaveGolden(t *testing.T) {
	snap := richSnapshot()
	for _, tc := range []struct {
		file    string
		numeric bool
	}{
		{"save_n.txt", true},
		{"save.txt", false},
	} {
		var b bytes.Buffer
		if err := Save(&b, snap, tc.numeric); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.file, b.Bytes())
	}
}

func TestListEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := List(&b, api.Snapshot{}, Format{}); err != nil {
		t.Fatal(err)
	}
	want := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestListNoSuchService(t *testing.T) {
	cmd, err := Parse([]string{"-Ln", "-t", "198.18.0.9:80"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = List(&b, richSnapshot(), cmd.Format)
	if err != model.ErrNoSuchService || b.Len() != 0 {
		t.Fatalf("got %v and %q, want No such service and nothing", err, b.String())
	}
}

// TestSortWrap shows ipvs_cmp_dests's 32-bit wrap-around: 200.0.0.1 lists
// before 10.0.0.1, while addresses less than 2^31 apart sort normally.
func TestSortWrap(t *testing.T) {
	s := svc(model.ProtoTCP, "198.18.0.1", 80, "rr")
	snap := api.Snapshot{Services: []api.Service{{Service: s, Dests: []api.Dest{
		dest("10.0.0.1", 80, model.Route, 1, 0, 0),
		dest("200.0.0.1", 80, model.Route, 1, 0, 0),
		dest("10.0.0.2", 80, model.Route, 1, 0, 0),
	}}}}
	var b bytes.Buffer
	if err := List(&b, snap, Format{Numeric: true}); err != nil {
		t.Fatal(err)
	}
	golden(t, "list_sort_wrap.txt", b.Bytes())
}

func TestLargenum(t *testing.T) {
	for _, tc := range []struct {
		v     uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99999999, false, " 99999999"},
		{100000000, false, "  100000K"},
		{999999999, false, "  999999K"},
		{1000000000, false, "    1000M"},
		{99999999999, false, "   99999M"},
		{100000000000, false, "     100G"},
		{99999999999999, false, "   99999G"},
		{100000000000000, false, "     100T"},
		{18446744073709551615, false, "18446744T"},
		{12345678, true, " 12345678"},
		{123456789, true, " 123456789"},
		{18446744073709551615, true, " 18446744073709551615"},
	} {
		if got := largenum(tc.v, tc.exact); got != tc.want {
			t.Errorf("largenum(%d, %v) = %q, want %q", tc.v, tc.exact, got, tc.want)
		}
	}
}

func TestListConnsGolden(t *testing.T) {
	ap := netip.MustParseAddrPort
	conns := []api.Conn{
		{Protocol: model.ProtoTCP, Client: ap("198.51.100.7:40312"), Virtual: ap("198.18.0.1:80"), Dest: ap("198.18.1.10:80"), State: "ESTABLISHED", ExpireMS: 899_999},
		{Protocol: model.ProtoTCP, Client: ap("198.51.100.8:40313"), Virtual: ap("198.18.0.1:80"), Dest: ap("198.18.1.12:8080"), State: "FIN_WAIT", ExpireMS: 61_500},
		{Protocol: model.ProtoUDP, Client: ap("198.51.100.9:5353"), Virtual: ap("198.18.0.1:53"), Dest: ap("198.18.2.1:53"), State: "UDP", ExpireMS: 299_000},
		{Protocol: model.ProtoTCP, Client: ap("198.51.100.7:0"), Virtual: ap("198.18.0.2:443"), Dest: ap("198.18.4.1:443"), State: "NONE", ExpireMS: 10_800_000, Template: true},
		{Protocol: model.ProtoNone, Client: ap("198.51.100.7:0"), Virtual: ap("0.0.0.1:0"), Dest: ap("198.18.5.1:0"), State: "NONE", ExpireMS: 359_000, Template: true},
		{Protocol: model.ProtoTCP, Client: ap("[2001:db8:ffff::7]:50000"), Virtual: ap("[2001:db8::1]:443"), Dest: ap("[2001:db8:1::2]:443"), State: "SYN_RECV", ExpireMS: 59_000},
		{Protocol: model.ProtoSCTP, Client: ap("198.51.100.10:3868"), Virtual: ap("198.18.0.3:3868"), Dest: ap("198.18.3.1:3868"), State: "ESTABLISHED", ExpireMS: 0},
	}
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"conns_n.txt", []string{"-Lcn"}},
		{"conns.txt", []string{"-lc"}},
		{"conns_persistent_conn.txt", []string{"-L", "-n", "-c", "--persistent-conn"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cmd, err := Parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if cmd.List != ListConnTable {
				t.Fatalf("%v: list %v", tc.args, cmd.List)
			}
			var b bytes.Buffer
			if err := ListConns(&b, conns, cmd.Format); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
}

func TestListTimeout(t *testing.T) {
	cmd, err := Parse([]string{"-L", "--timeout"})
	if err != nil || cmd.List != ListTimeouts {
		t.Fatalf("got %+v, %v", cmd, err)
	}
	var b bytes.Buffer
	if err := ListTimeout(&b, model.DefaultTimeouts); err != nil {
		t.Fatal(err)
	}
	golden(t, "timeout.txt", b.Bytes())
	if b.String() != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Errorf("got %q", b.String())
	}
}

func TestUsageGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Usage(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "usage.txt", b.Bytes())
	if !bytes.Contains(b.Bytes(), []byte("--fullnat")) || !bytes.Contains(b.Bytes(), []byte("  gvsadm -A|E virtual-service")) {
		t.Error("usage does not name gvsadm or mention --fullnat")
	}
}

func TestInetNtop(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8::1":        "2001:db8::1",
		"::1":                "::1",
		"::":                 "::",
		"::1.2.3.4":          "::1.2.3.4", // glibc prints IPv4-compatible addresses dotted
		"::ffff:1.2.3.4":     "::ffff:1.2.3.4",
		"2001:db8:0:1::":     "2001:db8:0:1::",
		"2001:0:0:1:0:0:0:1": "2001:0:0:1::1",
		"1:0:1:0:1:0:1:0":    "1:0:1:0:1:0:1:0",
	} {
		if got := inetNtop(ip(in)); got != want {
			t.Errorf("inetNtop(%s) = %s, want %s", in, got, want)
		}
	}
}

func readGolden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeResolver names a few addresses, on top of the built-in service names.
type fakeResolver struct{ builtin }

var fakeHosts = map[string]string{
	"198.18.0.1":  "www.a-rather-long-virtual-service-name.example",
	"198.18.1.10": "rs1.a-rather-long-real-server-name.example",
	"198.18.1.11": "rs2.example",
	"2001:db8::1": "v6.example",
}

func (fakeResolver) HostName(a netip.Addr) (string, bool) {
	n, ok := fakeHosts[a.String()]
	return n, ok
}

func (fakeResolver) LookupHost(name string) (netip.Addr, bool) {
	for a, n := range fakeHosts {
		if n == name && ip(a).Is4() {
			return ip(a), true
		}
	}
	return netip.Addr{}, false
}

// TestListNames: without -n, names from the Resolver, cut at 33 bytes
// for IPv4 services and 28 for IPv4 destinations, as ipvsadm does.
func TestListNames(t *testing.T) {
	snap := richSnapshot()
	f := Format{Resolver: fakeResolver{}}
	var b bytes.Buffer
	if err := List(&b, snap, f); err != nil {
		t.Fatal(err)
	}
	golden(t, "list_names.txt", b.Bytes())

	p := Parser{Resolver: fakeResolver{}}
	c, err := p.Parse([]string{"-a", "-t", "www.a-rather-long-virtual-service-name.example:http", "-r", "rs2.example", "-m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Service.Addr != ip("198.18.0.1") || c.Service.Port != 80 || c.Dest.Addr != ip("198.18.1.11") || c.Dest.Port != 80 {
		t.Errorf("got %+v", c)
	}
}

func TestConnProtoName(t *testing.T) {
	for p, want := range map[model.Protocol]string{0: "IP", 6: "TCP", 17: "UDP", 132: "SCTP", 1: "ICMP", 58: "ICMPv6", 50: "IP_50"} {
		if got := connProtoName(p); got != want {
			t.Errorf("connProtoName(%d) = %q, want %q", p, got, want)
		}
	}
}

// DPVS ipvsadm -G's table: all services in the order given, or one.
func TestListLocalAddrsGolden(t *testing.T) {
	snap := richSnapshot()
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"laddr.txt", []string{"-G"}},
		{"laddr_service.txt", []string{"--get-laddr", "-t", "198.18.0.1:http"}},
		{"laddr_service6.txt", []string{"-G", "-t", "[2001:db8::1]:443"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cmd, err := Parse(tc.args)
			if err != nil || cmd.Kind != KindGetLaddr {
				t.Fatalf("%v parsed as %+v, %v", tc.args, cmd, err)
			}
			var k *model.ServiceKey
			if cmd.HasService() {
				k = &cmd.Service.ServiceKey
			}
			var b bytes.Buffer
			if err := ListLocalAddrs(&b, snap.Services, k); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
	// No service: nothing, not even the title, as DPVS.
	var b bytes.Buffer
	if err := ListLocalAddrs(&b, nil, nil); err != nil || b.Len() != 0 {
		t.Errorf("no services: %q, %v", b.String(), err)
	}
	k := tcp("198.18.0.9", 80).ServiceKey
	if err := ListLocalAddrs(&b, snap.Services, &k); err != model.ErrServiceNotDefined || b.Len() != 0 {
		t.Errorf("unknown service: %q, %v", b.String(), err)
	}
}
