package realserver

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVIP(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"198.18.50.1", "198.18.50.1", ""},
		{"198.18.50.1/32", "198.18.50.1", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"2001:db8::1/128", "2001:db8::1", ""},
		{"::ffff:198.18.50.1", "198.18.50.1", ""},
		{"198.18.50.1/24", "", "single address"},
		{"2001:db8::1/64", "", "single address"},
		{"198.18.50", "", "not an IP address"},
		{"", "", "not an IP address"},
		{"vip", "", "not an IP address"},
		{"fe80::1%eth0", "", "zone"},
		{"0.0.0.0", "", "unicast"},
		{"127.0.0.1", "", "unicast"},
		{"::1", "", "unicast"},
		{"224.0.0.1", "", "unicast"},
		{"255.255.255.255", "", "unicast"},
		{"fe80::1", "", "unicast"},
	} {
		got, err := ParseVIP(tt.in)
		if tt.err != "" {
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &ue) {
				t.Errorf("ParseVIP(%q) = %v, %v; want a usage error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != netip.MustParseAddr(tt.want) {
			t.Errorf("ParseVIP(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestDisplayKey(t *testing.T) {
	for in, want := range map[string]string{
		"net/ipv4/conf/all/arp_ignore":        "net.ipv4.conf.all.arp_ignore",
		"net/ipv4/conf/eth0.100/arp_announce": "net.ipv4.conf.eth0/100.arp_announce",
	} {
		if got := displayKey(in); got != want {
			t.Errorf("displayKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionsUsage(t *testing.T) {
	for _, o := range []Options{
		{VIPs: []netip.Addr{netip.MustParseAddr("198.18.50.1")}, Tunnel: true},
		{VIPs: []netip.Addr{netip.MustParseAddr("198.18.50.1")}, Attach: "xdp"},
		{},
	} {
		var ue *UsageError
		if err := Up(o); !errors.As(err, &ue) {
			t.Errorf("Up(%+v) = %v, want a usage error", o, err)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	s, err := st.load()
	if err != nil || !s.empty() || s.BootID == "" || s.NetNS == "" {
		t.Fatalf("fresh state: %+v, %v", s, err)
	}
	s.VIPs = []VIP{{Addr: netip.MustParseAddr("198.18.50.1"), Added: true}, {Addr: netip.MustParseAddr("2001:db8::1")}}
	s.Sysctls = []Sysctl{{Key: "net/ipv4/conf/all/arp_ignore", Previous: "0", Set: "1"}}
	s.Tunnel = &Tunnel{Interface: "eth0", Ifindex: 2, Attach: AttachTCX, PinDir: "/sys/fs/bpf/x"}
	if err := st.save(s); err != nil {
		t.Fatal(err)
	}
	got, err := st.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.VIPs) != 2 || got.VIPs[0] != s.VIPs[0] || got.VIPs[1] != s.VIPs[1] ||
		len(got.Sysctls) != 1 || got.Sysctls[0] != s.Sysctls[0] || *got.Tunnel != *s.Tunnel {
		t.Fatalf("round trip: got %+v, want %+v", got, s)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != StateFile && e.Name() != "lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	// Another namespace's record is refused; an earlier boot's is dropped.
	got.NetNS = "net:[1]"
	st.save(got)
	if _, err := st.load(); err == nil || !strings.Contains(err.Error(), "--state-dir") {
		t.Errorf("record of another namespace: %v", err)
	}
	got.NetNS, got.BootID = netnsID(), "an-earlier-boot"
	st.save(got)
	if s, err := st.load(); err != nil || !s.empty() {
		t.Errorf("record of an earlier boot: %+v, %v", s, err)
	}

	// Nothing left to undo: no file.
	if err := st.save(&State{Version: stateVersion}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !os.IsNotExist(err) {
		t.Errorf("empty state still on disk: %v", err)
	}
}
