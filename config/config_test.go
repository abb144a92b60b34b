package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"gvs/model"
)

func TestParseYAML(t *testing.T) {
	r, err := Parse([]byte(`
timeouts: {tcp: 60}
services:
  - tcp: 198.18.0.1:80
    scheduler: sh
    persistent: 0
    netmask: 255.255.255.0
    sched-flags: [sh-port]
    servers:
      - address: 198.18.1.1:8080
        method: masq
      - address: 198.18.1.2
        weight: 0
  - fwmark: 7
    ipv6: true
    servers:
      - address: "[2001:db8::1]:443"
        method: tunnel
    local_addrs: ["2001:db8::a"]
  - udp: 198.18.0.1:53
    servers: [{address: 198.18.1.1, method: fullnat}]
    local_addrs: [198.18.3.9, 198.18.3.1]
`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Timeouts.TCP != 60 || len(r.Services) != 3 {
		t.Fatalf("%+v", r)
	}
	s := r.Services[0]
	if s.Service.Scheduler != "sh" || s.Service.Timeout != 360 || s.Service.Netmask != 0xffffff00 ||
		s.Service.Flags != model.FlagPersistent|model.FlagSHPort {
		t.Errorf("service %+v", s.Service)
	}
	// Listed in adding order; kept newest first, as the kernel's list.
	if len(s.Dests) != 2 || s.Dests[0].AddrPort() != netip.MustParseAddrPort("198.18.1.2:80") ||
		s.Dests[0].Method != model.Route || s.Dests[0].Weight != 0 ||
		s.Dests[1].Port != 8080 || s.Dests[1].Method != model.Masq || s.Dests[1].Weight != 1 {
		t.Errorf("dests %+v", s.Dests)
	}
	f := r.Services[1]
	if f.Service.FWMark != 7 || f.Service.Family != model.IPv6 || f.Service.Scheduler != "wlc" || f.Dests[0].Port != 443 ||
		!slices.Equal(f.LocalAddrs, []netip.Addr{netip.MustParseAddr("2001:db8::a")}) {
		t.Errorf("fwmark service %+v %+v %v", f.Service, f.Dests, f.LocalAddrs)
	}
	if s.LocalAddrs != nil {
		t.Errorf("no local_addrs read as %v", s.LocalAddrs)
	}
	// In the order given: the round robin's.
	u := r.Services[2]
	if want := []netip.Addr{netip.MustParseAddr("198.18.3.9"), netip.MustParseAddr("198.18.3.1")}; !slices.Equal(u.LocalAddrs, want) {
		t.Errorf("pool %v, want %v", u.LocalAddrs, want)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	var many []string
	for i := range model.MaxLocalAddrs + 1 {
		many = append(many, fmt.Sprintf("198.18.3.%d", i+1))
	}
	tooMany := strings.Join(many, ", ")
	for _, tc := range []struct{ doc, want string }{
		{"services:\n  - tcp: 198.18.0.1:80\n    scheduler: nope\n", "Scheduler or persistence engine not found"},
		{"services:\n  - tcp: 198.18.0.1:80\n    colour: red\n", "field colour not found"},
		{"services:\n  - tcp: 198.18.0.1:80\n    udp: 198.18.0.1:53\n", "exactly one of"},
		{"services:\n  - tcp: 198.18.0.1:80\n  - tcp: 198.18.0.1:80\n", "Service already exists"},
		{"services:\n  - tcp: 198.18.0.1:80\n    servers: [{address: 198.18.1.1, weight: -1}]\n", "out of range"},
		{"services:\n  - tcp: 198.18.0.1\n", "want ADDR:PORT"},
		{"services:\n  - tcp: 198.18.0.1:80\n    local_addrs: [nope]\n", `local address 1: "nope": want an IPv4 or IPv6 address`},
		{"services:\n  - tcp: 198.18.0.1:80\n    local_addrs: [198.18.3.1, \"2001:db8::1\"]\n", "local address 2: 2001:db8::1: Invalid operation"},
		{"services:\n  - tcp: 198.18.0.1:80\n    local_addrs: [224.0.0.1]\n", "local address 1: 224.0.0.1: Invalid operation"},
		{"services:\n  - tcp: 198.18.0.1:80\n    local_addrs: [198.18.3.1, 198.18.3.1]\n", "local address 2: 198.18.3.1: Local address already exists"},
		{"services:\n  - tcp: 198.18.0.1:80\n    local_addrs: [" + tooMany + "]\n", "local address 17: 198.18.3.17: Too many local addresses"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
	_, err := Parse([]byte("services:\n  - tcp: 198.18.0.1:80\n    scheduler: nope\n"))
	if !errors.Is(err, model.ErrSchedulerNotFound) {
		t.Errorf("error chain lost: %v", err)
	}
}

func TestSaveFormatDetected(t *testing.T) {
	if !isSaveFormat([]byte("# saved\n\n-A -t 198.18.0.1:80 -s rr\n")) || isSaveFormat([]byte("services: []\n")) {
		t.Fatal("format detection")
	}
}

// Rules without services are explicit only when the file says services: [];
// an empty file, one of comments only, or a services: with nothing under
// it (a truncated file, say) are not, and gvsd refuses them when that
// would delete every running service.
func TestParseEmpty(t *testing.T) {
	for _, tc := range []struct {
		doc      string
		explicit bool
	}{
		{"", false},
		{"\n\n", false},
		{"# rules\n# more rules\n", false},
		{"services:\n", false},
		{"services:\n# - tcp: 198.18.0.1:80\n", false},
		{"timeouts: {tcp: 60}\n", false},
		{"sysctls: {sloppy_tcp: 1}\n", false},
		{"services: ~\n", false},
		{"services: []\n", true},
		{"# nothing\nservices: []  # on purpose\n", true},
	} {
		r, err := Parse([]byte(tc.doc))
		if err != nil {
			t.Errorf("%q: %v", tc.doc, err)
			continue
		}
		if len(r.Services) != 0 || r.ExplicitEmpty != tc.explicit {
			t.Errorf("%q: %d services, explicit %v, want %v", tc.doc, len(r.Services), r.ExplicitEmpty, tc.explicit)
		}
	}
	// A truncated line is an error, not an empty file.
	if _, err := Parse([]byte("serv")); err == nil {
		t.Error(`"serv" accepted`)
	}
}

func TestParseSysctls(t *testing.T) {
	r, err := Parse([]byte("sysctls:\n  expire_nodest_conn: 1\n  conn_reuse_mode: 0\nservices: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"expire_nodest_conn": 1, "conn_reuse_mode": 0}; !maps.Equal(r.Sysctls, want) {
		t.Fatalf("sysctls %v, want %v", r.Sysctls, want)
	}
	if r, err := Parse([]byte("services: []\n")); err != nil || r.Sysctls != nil {
		t.Fatalf("no sysctls: %v %v", r.Sysctls, err)
	}
	for _, tc := range []struct{ doc, want string }{
		{"sysctls: {expire_nodest_con: 1}\n", `unknown sysctl "expire_nodest_con"`},
		{"sysctls: {sloppy_udp: 2}\n", "sloppy_udp: 2 out of range 0..1"},
		{"sysctls: {conn_reuse_mode: 4}\n", "conn_reuse_mode: 4 out of range 0..3"},
		{"sysctls: {sloppy_udp: yes}\n", "cannot unmarshal"},
	} {
		if _, err := Parse([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// allow: prefixes or bare addresses, masked and sorted; a service without
// an allow key takes the top-level list's entries of its family, allow: []
// takes none.
func TestParseAllow(t *testing.T) {
	r, err := Parse([]byte(`
allow: [198.18.9.0/24, "2001:db8:9::/48"]
services:
  - tcp: 198.18.0.1:80
    allow: [203.0.113.7, 198.18.0.77/24, "::ffff:10.1.2.3"]
  - udp: 198.18.0.1:53
  - tcp: "[2001:db8::1]:443"
  - tcp: 198.18.0.2:80
    allow: []
  - tcp: 198.18.0.3:80
    allow:
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]netip.Prefix{
		prefixes("10.1.2.3/32", "198.18.0.0/24", "203.0.113.7/32"),
		prefixes("198.18.9.0/24"),
		prefixes("2001:db8:9::/48"),
		nil,
		prefixes("198.18.9.0/24"), // allow: with nothing is absent
	} {
		if got := r.Services[i].Allow; !slices.Equal(got, want) {
			t.Errorf("service %d: allow %v, want %v", i+1, got, want)
		}
	}
	r, err = Parse([]byte("services:\n  - tcp: 198.18.0.1:80\n"))
	if err != nil || r.Services[0].Allow != nil {
		t.Fatalf("no allow anywhere: %v %v", r.Services[0].Allow, err)
	}
}

func TestParseAllowErrors(t *testing.T) {
	var many []string
	for i := range model.MaxAllow + 1 {
		many = append(many, fmt.Sprintf("10.0.%d.%d", i>>8, i&255))
	}
	tooMany := strings.Join(many, ", ")
	for _, tc := range []struct {
		doc  string
		want []string // all in the message
		is   error
	}{
		{"services:\n  - tcp: 198.18.0.1:80\n    allow: [198.18.0.0/24, nope]\n",
			[]string{"service 1", "-t 198.18.0.1:80", "allow entry 2", `"nope"`, "want an address or a prefix"}, nil},
		{"services:\n  - tcp: 198.18.0.1:80\n    allow: [198.18.0.0/33]\n",
			[]string{"service 1", "allow entry 1", `"198.18.0.0/33"`}, nil},
		{"services:\n  - tcp: 198.18.0.1:80\n  - tcp: 198.18.0.2:80\n    allow: [198.18.0.0/24, \"2001:db8::/32\"]\n",
			[]string{"service 2", "-t 198.18.0.2:80", "allow entry 2001:db8::/32", "Invalid allow list entry"}, model.ErrAllowInvalid},
		{"services:\n  - tcp: 198.18.0.1:80\n    allow: [198.18.0.1/24, 198.18.0.0/24]\n",
			[]string{"service 1", "198.18.0.0/24", "given twice"}, model.ErrAllowExists},
		{"services:\n  - tcp: 198.18.0.1:80\n    allow: [" + tooMany + "]\n",
			[]string{"service 1", "1025 allow list entries", "at most 1024"}, model.ErrTooManyAllows},
		{"allow: [198.18.0.0/24, x]\nservices:\n  - tcp: 198.18.0.1:80\n",
			[]string{"allow entry 2", `"x"`}, nil},
		{"allow: [198.18.0.0/24]\nservices:\n  - tcp: 198.18.0.1:80\n  - udp: \"[2001:db8::1]:53\"\n",
			[]string{"service 2", "-u [2001:db8::1]:53", "no IPv6 entry", "allow: []"}, nil},
		{"allow: 198.18.0.0/24\nservices:\n  - tcp: 198.18.0.1:80\n", []string{"cannot unmarshal"}, nil},
	} {
		_, err := Parse([]byte(tc.doc))
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want %q in it", tc.doc, err, w)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%q: %v is not %v", tc.doc, err, tc.is)
		}
	}
	// Exactly the maximum is fine.
	if _, err := Parse([]byte("services:\n  - tcp: 198.18.0.1:80\n    allow: [" + strings.Join(many[:model.MaxAllow], ", ") + "]\n")); err != nil {
		t.Fatal(err)
	}
}

func TestBGPSection(t *testing.T) {
	c, err := ParseConfig([]byte(`
services:
  - tcp: 198.18.0.100:80
    scheduler: mh
    servers: [{address: 198.18.0.11}]
  - tcp: 198.18.0.100:81
    scheduler: mh
    sloppy: false
    servers: [{address: 198.18.0.11}]
bgp:
  asn: 65001
  router_id: 198.18.0.2
  communities: ["65001:1"]
  peers:
    - {address: 198.18.0.1, asn: 65000, hold_time: 3, keepalive: 1}
  vips:
    - {address: 198.18.0.100, med: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.BGP == nil || c.BGP.ASN != 65001 || len(c.BGP.Peers) != 1 || c.BGP.Peers[0].HoldTime != 3 || *c.BGP.VIPs[0].MED != 10 {
		t.Fatalf("bgp %+v", c.BGP)
	}
	s := c.Rules.Services
	if !s[0].Service.SloppyTCP() || s[1].Service.SloppyTCP() {
		t.Fatalf("sloppy: %v %v", s[0].Service.SloppyTCP(), s[1].Service.SloppyTCP())
	}
	if _, err := ParseConfig([]byte("bgp:\n  asn: 65001\n  router_id: 198.18.0.2\n")); err == nil {
		t.Fatal("bgp without peers accepted")
	}
}
