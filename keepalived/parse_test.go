package keepalived

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gvs/check"
	"gvs/health"
	"gvs/model"
)

// write puts files (name -> content) in a fresh directory and returns
// the path of the first name given.
func write(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		p := filepath.Join(dir, files[i])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, files[0])
}

const mainConf = `! Configuration File for keepalived
global_defs {
   notification_email {
     admin@example.com
   }
   router_id LVS_DEVEL
   lvs_timeouts tcp 7200 udp 60
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.18.0.1
    }
}

track_file maint {
    file "/run/lvs/maint"
    weight -10 reverse
    init_file 0
}

virtual_server 198.18.0.1 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    persistence_timeout
    protocol TCP
    quorum 2
    hysteresis 1
    quorum_up "/usr/local/bin/up.sh 'web up'" lvs :lvs
    quorum_down /usr/local/bin/down.sh
    alpha
    omega
    virtualhost www.example.com
    sorry_server 198.18.9.9 8080
    sorry_server_lvs_method NAT
    sorry_server_inhibit
    retry 2

    real_server 198.18.1.1 80 {
        weight 3
        inhibit_on_failure
        notify_up "/bin/echo up" nobody
        HTTP_GET {
            url {
              path /health
              digest 9b3a0c85a887a256d6939da88aabd8cd
              status_code 200-299 301 # redirects are fine
              regex "ok|ready"
              regex_options caseless
            }
            url { path /ready }
            connect_timeout 3.5
            nb_get_retry 4
            delay_before_retry 1.25
            http_protocol 1.1
            fast_recovery
        }
        FILE_CHECK {
            track_file maint
            dynamic
        }
    }
    real_server 198.18.1.2 80 {
        connect_timeout 2
        warmup 0
        TCP_CHECK {
            connect_port 8080
            bindto 198.18.0.10
            bind_port 40000
            bind_if eth1
            fwmark 7
            log_all_failures
            alpha no
        }
    }
}

include conf.d/*.conf
`

const udpConf = `# UDP and misc checks
virtual_server_group dns {
    198.18.0.53-54 53
    198.18.2.0/31 53
}
virtual_server group dns {
    protocol UDP
    lvs_sched sh
    sh-port
    ops
    real_server 198.18.1.5 53 {
        UDP_CHECK {
            payload Ab12f 3 456
            require_reply 01 xX 3
            min_reply_length 4
        }
        DNS_CHECK {
            type a
            name example.com
        }
    }
    real_server 198.18.1.6 53 {
    }
}
virtual_server fwmark 9 {
    lvs_method TUN
    delay_loop 30
    real_server 2001:db8::5 443 {
        MISC_CHECK {
            misc_path "/usr/bin/check.sh --port 443"
            misc_timeout 7
            misc_dynamic
            user nobody nogroup
        }
        SMTP_CHECK {
            helo_name mx.example.com
        }
        PING_CHECK {
        }
        SSL_GET {
            url {
                path /
            }
            sni_name api.example.com
            tls_compliant
        }
    }
}
virtual_server 198.18.0.2 25 {
    lvs_method FNAT
    real_server 198.18.1.7 2525 {
        weight 0
    }
}
`

func TestParse(t *testing.T) {
	path := write(t, "keepalived.conf", mainConf, "conf.d/udp.conf", udpConf, "conf.d/none.txt", "nonsense")
	res, err := Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Rules
	if r.Timeouts != (model.Timeouts{TCP: 7200, UDP: 60}) {
		t.Errorf("timeouts %+v", r.Timeouts)
	}
	var keys []string
	for _, s := range r.Services {
		keys = append(keys, s.Service.ServiceKey.String())
	}
	if want := "-t 198.18.0.1:80,-u 198.18.0.53:53,-u 198.18.0.54:53,-u 198.18.2.0:53,-u 198.18.2.1:53,-f 9,-t 198.18.0.2:25"; strings.Join(keys, ",") != want {
		t.Fatalf("services %v, want %s", keys, want)
	}

	web := r.Services[0]
	if s := web.Service; s.Scheduler != "wrr" || s.Flags != model.FlagPersistent || s.Timeout != 360 || s.Netmask != 0xffffffff {
		t.Errorf("web service %+v", s)
	}
	ap := netip.MustParseAddrPort
	wantDests := []model.Dest{ // newest first
		{Addr: ap("198.18.1.2:80").Addr(), Port: 80, Method: model.Route, Weight: 1},
		{Addr: ap("198.18.1.1:80").Addr(), Port: 80, Method: model.Route, Weight: 3},
	}
	if !reflect.DeepEqual(web.Dests, wantDests) {
		t.Errorf("web dests %+v", web.Dests)
	}
	dns := r.Services[1]
	if s := dns.Service; s.Scheduler != "sh" || s.Flags != model.FlagOnePacket|model.FlagSHPort || s.Protocol != model.ProtoUDP {
		t.Errorf("dns service %+v", s)
	}
	if len(dns.Dests) != 2 || dns.Dests[1].Method != model.Masq || dns.Dests[1].Port != 53 {
		t.Errorf("dns dests %+v (NAT is keepalived's default)", dns.Dests)
	}
	fw := r.Services[5]
	if s := fw.Service; s.FWMark != 9 || s.Family != model.IPv6 || s.Protocol != model.ProtoNone {
		t.Errorf("fwmark service %+v (family from its tunnelled server)", s)
	}
	if d := fw.Dests[0]; d.Method != model.Tunnel || d.Port != 443 {
		t.Errorf("fwmark dest %+v", d)
	}
	fn := r.Services[6]
	if d := fn.Dests[0]; d.Method != model.FullNAT || d.Port != 2525 || d.Weight != 0 {
		t.Errorf("FNAT dest %+v", d)
	}

	h := res.Health
	if h == nil || len(h.Services) != 6 { // web, 4 dns, fwmark; not the unchecked FNAT one
		t.Fatalf("health %+v", h)
	}
	hw := h.Services[0]
	if hw.Key != web.Service.ServiceKey || hw.Quorum != 2 || hw.Hysteresis != 1 || !hw.Omega || hw.HASuspend {
		t.Errorf("web health %+v", hw)
	}
	if !reflect.DeepEqual(hw.QuorumUp, &health.Script{Command: "/usr/local/bin/up.sh 'web up'", User: "lvs", Group: ":lvs"}) ||
		!reflect.DeepEqual(hw.QuorumDown, &health.Script{Command: "/usr/local/bin/down.sh"}) {
		t.Errorf("quorum scripts %+v %+v", hw.QuorumUp, hw.QuorumDown)
	}
	wantSorry := &health.Sorry{Dest: model.Dest{Addr: ap("198.18.9.9:1").Addr(), Port: 8080, Method: model.Masq, Weight: 1}, Inhibit: true}
	if !reflect.DeepEqual(hw.Sorry, wantSorry) {
		t.Errorf("sorry %+v", hw.Sorry)
	}
	if len(hw.Servers) != 2 || hw.Servers[0].Addr != ap("198.18.1.1:80") || hw.Servers[1].Addr != ap("198.18.1.2:80") {
		t.Fatalf("web servers in config order: %+v", hw.Servers)
	}
	s1 := hw.Servers[0]
	if !s1.Inhibit || !reflect.DeepEqual(s1.NotifyUp, &health.Script{Command: "/bin/echo up", User: "nobody"}) || s1.NotifyDown != nil {
		t.Errorf("server 1 %+v", s1)
	}
	ptr := func(n int) *int { return &n }
	dur := func(d time.Duration) *time.Duration { return &d }
	wantHTTP := check.Spec{
		Kind: check.HTTP, ConnectTimeout: 3500 * time.Millisecond, Retry: ptr(4), DelayBeforeRetry: 1250 * time.Millisecond,
		DelayLoop: 6 * time.Second, Alpha: true,
		HTTP: check.HTTPSpec{Protocol: "1.1", VirtualHost: "www.example.com", FastRecovery: true, URLs: []check.URL{
			{Path: "/health", Digest: "9b3a0c85a887a256d6939da88aabd8cd", StatusCodes: []check.StatusRange{{Min: 200, Max: 299}, {Min: 301, Max: 301}}, Regex: "(?i)ok|ready"},
			{Path: "/ready"},
		}},
	}
	wantFile := check.Spec{Kind: check.File, File: check.FileSpec{Name: "maint", Path: "/run/lvs/maint", Weight: -10, Reverse: true, Dynamic: true}}
	if len(s1.Checks) != 2 || !reflect.DeepEqual(s1.Checks[0], wantHTTP) || !reflect.DeepEqual(s1.Checks[1], wantFile) {
		t.Errorf("server 1 checks\n%+v\nwant\n%+v\n%+v", s1.Checks, wantHTTP, wantFile)
	}
	s2 := hw.Servers[1]
	wantTCP := check.Spec{Kind: check.TCP, ConnectPort: 8080, BindTo: ap("198.18.0.10:1").Addr(), BindPort: 40000, BindIf: "eth1", FWMark: 7,
		ConnectTimeout: 2 * time.Second, Retry: ptr(2), Warmup: dur(0), DelayLoop: 6 * time.Second, LogAllFailures: true}
	if s2.Inhibit || len(s2.Checks) != 1 || !reflect.DeepEqual(s2.Checks[0], wantTCP) {
		t.Errorf("server 2 %+v\nwant %+v", s2.Checks, wantTCP)
	}

	// The group's services share servers and checks.
	for i := 1; i <= 4; i++ {
		if !reflect.DeepEqual(h.Services[i].Servers, h.Services[1].Servers) || h.Services[i].Key != r.Services[i].Service.ServiceKey {
			t.Errorf("group service %d: %+v", i, h.Services[i])
		}
	}
	ds := h.Services[1].Servers
	if len(ds) != 2 || len(ds[1].Checks) != 0 || len(ds[0].Checks) != 2 || h.Services[1].Quorum != 1 {
		t.Fatalf("dns servers %+v", ds)
	}
	wantUDP := check.Spec{Kind: check.UDP, UDP: check.UDPSpec{
		Payload: []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06}, RequireReply: true,
		ReplyPattern: []byte{0x01, 0x00, 0x03}, ReplyMask: []byte{0xff, 0x00, 0xff}, MinReplyLen: 4}}
	wantDNS := check.Spec{Kind: check.DNS, DNS: check.DNSSpec{Type: "A", Name: "example.com"}}
	if !reflect.DeepEqual(ds[0].Checks[0], wantUDP) || !reflect.DeepEqual(ds[0].Checks[1], wantDNS) {
		t.Errorf("dns checks %+v", ds[0].Checks)
	}
	fc := h.Services[5].Servers[0].Checks
	d30 := 30 * time.Second
	want := []check.Spec{
		{Kind: check.Misc, DelayLoop: d30, Misc: check.MiscSpec{Path: "/usr/bin/check.sh --port 443", Timeout: 7 * time.Second, Dynamic: true, User: "nobody", Group: "nogroup"}},
		{Kind: check.SMTP, DelayLoop: d30, SMTP: check.SMTPSpec{HeloName: "mx.example.com"}},
		{Kind: check.Ping, DelayLoop: d30},
		{Kind: check.SSL, DelayLoop: d30, HTTP: check.HTTPSpec{URLs: []check.URL{{Path: "/"}}, SNIName: "api.example.com", EnableSNI: true, TLSCompliant: true}},
	}
	if !reflect.DeepEqual(fc, want) {
		t.Errorf("fwmark checks\n%+v\nwant\n%+v", fc, want)
	}

	if res.VRRP == nil || len(res.VRRP.Instances) != 1 || res.VRRP.Instances[0].Name != "VI_1" {
		t.Errorf("VRRP %+v, want instance VI_1", res.VRRP)
	}
	notices := strings.Join(res.Notices, "\n")
	for _, w := range []string{
		"keepalived.conf:2: global_defs: not used by gvs",
		"keepalived.conf:23: track_file maint: init_file",
	} {
		if !strings.Contains(notices, w) {
			t.Errorf("notices %q lack %q", notices, w)
		}
	}
}

func TestParseErrors(t *testing.T) {
	vs := func(body string) string {
		return "virtual_server 198.18.0.1 80 {\n" + body + "\n}\n"
	}
	rs := func(body string) string {
		return vs("  real_server 198.18.1.1 80 {\n" + body + "\n  }")
	}
	for _, tc := range []struct {
		files []string
		want  string
		is    error
	}{
		{[]string{"keepalived.conf", rs("    foo 1")}, `keepalived.conf:3: unknown keyword "foo" in real_server`, nil},
		{[]string{"keepalived.conf", "\nfoo {\n}\n"}, `keepalived.conf:2: unknown keyword "foo" at top level`, nil},
		{[]string{"keepalived.conf", vs("  colour red")}, `keepalived.conf:2: unknown keyword "colour" in virtual_server`, nil},
		{[]string{"keepalived.conf", "virtual_server 198.18.0.300 80 {\n}\n"}, `keepalived.conf:1: virtual_server: "198.18.0.300": want an IPv4 or IPv6 address`, nil},
		{[]string{"keepalived.conf", vs("  real_server 198.18.1.x 80 {\n  }")}, `keepalived.conf:2: real_server: "198.18.1.x"`, nil},
		{[]string{"keepalived.conf", rs("    TCP_CHECK {\n")}, `keepalived.conf:1: unbalanced braces: '{' never closed`, nil},
		{[]string{"keepalived.conf", rs("    }\n  }")}, `keepalived.conf:5: unbalanced braces: '}' without '{'`, nil},
		{[]string{"keepalived.conf", "# x\ninclude missing.conf\n"}, `keepalived.conf:2: include`, nil},
		{[]string{"keepalived.conf", "include a.conf\n", "a.conf", "\ninclude keepalived.conf\n"}, `a.conf:2: include loop`, nil},
		{[]string{"keepalived.conf", rs("    HTTP_GET {\n      url {\n        path /\n        status_code 200-700\n      }\n    }")}, `keepalived.conf:6: status_code "200-700"`, nil},
		{[]string{"keepalived.conf", rs("    HTTP_GET {\n      url {\n        digest abc\n      }\n    }")}, `keepalived.conf:5: digest "abc"`, nil},
		{[]string{"keepalived.conf", rs("    weight -1")}, `keepalived.conf:3: weight: "-1"`, nil},
		{[]string{"keepalived.conf", vs("  lb_algo nope")}, `keepalived.conf:2: lb_algo: want one of`, nil},
		{[]string{"keepalived.conf", rs("") + rs("")}, `keepalived.conf:6: virtual_server -t 198.18.0.1:80: Service already exists`, model.ErrServiceExists},
		{[]string{"keepalived.conf", "virtual_server 198.18.0.1 80 {\n  real_server 2001:db8::1 80 {\n  }\n}\n"}, `keepalived.conf:2: real_server [2001:db8::1]:80 of -t 198.18.0.1:80`, model.ErrInvalid},
		{[]string{"keepalived.conf", "virtual_server 198.18.0.1 {\n  real_server 198.18.1.1 {\n  }\n}\n"}, "Zero port", nil},
		{[]string{"keepalived.conf", rs("    FILE_CHECK {\n      track_file nope\n    }")}, `keepalived.conf:4: track_file nope: no track_file block`, nil},
		{[]string{"keepalived.conf", vs("  sh-port\n  real_server 198.18.1.1 80 {\n  }")}, "sh-port: only for the sh scheduler", nil},
		{[]string{"keepalived.conf", "virtual_server group g {\n}\n"}, `no virtual_server_group of that name`, nil},
		{[]string{"keepalived.conf", rs("    UDP_CHECK {\n      payload 0g\n    }")}, `keepalived.conf:4: payload: "0g"`, nil},
		{[]string{"keepalived.conf", rs("    MISC_CHECK {\n      misc_path /bin/x arg\n    }")}, `quote the whole command line`, nil},
		{[]string{"keepalived.conf", rs("    notify_up \"/bin/x")}, `keepalived.conf:3: unmatched quote`, nil},
		{[]string{"keepalived.conf", rs("    TCP_CHECK {\n      connect_timeout x\n    }")}, `keepalived.conf:4: connect_timeout: "x": want seconds`, nil},
		{[]string{"keepalived.conf", rs("    lvs_method TUN type gue port 6080")}, `not supported by gvs`, nil},
		{[]string{"keepalived.conf", "$X=1\n"}, `keepalived.conf:1: parameter definitions`, nil},
	} {
		_, err := Parse(write(t, tc.files...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.files, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%q: %v is not %v", tc.files, err, tc.is)
		}
	}
}

// Lines split at braces, as keepalived reads them; comments end a line
// except inside double quotes.
func TestParseLayout(t *testing.T) {
	res, err := Parse(write(t, "k.conf", `virtual_server 198.18.0.1 80 { lvs_sched rr ; ignored? no
}`))
	if err == nil {
		t.Fatalf("a stray word accepted: %+v", res.Rules)
	}
	res, err = Parse(write(t, "k.conf", "virtual_server 198.18.0.1 80 { lvs_sched rr\n"+
		"real_server 198.18.1.1 80 { TCP_CHECK { connect_timeout 2 } } # done\n"+
		"real_server 198.18.1.2 80\n{\nHTTP_GET { url { path \"/a#b\" } }\n}\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := res.Health.Services[0].Servers
	if len(h) != 2 || h[0].Checks[0].ConnectTimeout != 2*time.Second || h[1].Checks[0].HTTP.URLs[0].Path != "/a#b" {
		t.Errorf("%+v", h)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct{ in, first, last string }{
		{"192.0.2.1-10", "192.0.2.1", "192.0.2.10"},
		{"192.0.2.250-192.0.3.10", "192.0.2.250", "192.0.3.10"},
		{"192.0.2.8/29", "192.0.2.8", "192.0.2.15"},
		{"2001:db8::1-1f", "2001:db8::1", "2001:db8::1f"},
		{"2001:db8::/126", "2001:db8::", "2001:db8::3"},
	} {
		f, l, err := parseRange(tc.in)
		if err != nil || f.String() != tc.first || l.String() != tc.last {
			t.Errorf("%s: %s-%s %v", tc.in, f, l, err)
		}
	}
	for _, bad := range []string{"192.0.2.10-1", "192.0.2.1-300", "x", "192.0.2.1-2001:db8::1"} {
		if _, _, err := parseRange(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
