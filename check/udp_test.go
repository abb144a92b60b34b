package check

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const udpTestTimeout = 300 * time.Millisecond

// udpServer listens on 127.0.0.1; reply (nil: stay silent) turns each
// datagram into the answer.
func udpServer(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			if reply != nil {
				c.WriteToUDPAddrPort(reply(append([]byte(nil), b[:n]...)), from)
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// closedUDPPort is a port nothing listens on (one just released).
func closedUDPPort(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return ap
}

func runCheck(t *testing.T, s Spec, server netip.AddrPort) Result {
	t.Helper()
	c, err := New(s, Target{Server: server})
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(context.Background())
}

func mustHex(t *testing.T, s string) (data, mask []byte) {
	t.Helper()
	d, m, err := ParseHex(s, true)
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

func TestParseHex(t *testing.T) {
	// The man page's example.
	d, m, err := ParseHex("Ab12f 3 456 546443123", false)
	if err != nil || m != nil {
		t.Fatal(d, m, err)
	}
	if want := []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}; !bytes.Equal(d, want) {
		t.Errorf("got % x, want % x", d, want)
	}
	d, m, err = ParseHex("6X x1 xx 4 X", true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d, []byte{0x60, 0x01, 0, 4, 0}) || !bytes.Equal(m, []byte{0xf0, 0x0f, 0, 0xff, 0xf0}) {
		t.Errorf("got % x mask % x", d, m)
	}
	for _, bad := range []string{"", "  ", "0g", "6X"} {
		if _, _, err := ParseHex(bad, false); err == nil {
			t.Errorf("ParseHex(%q) accepted", bad)
		}
	}
}

func TestUDPEcho(t *testing.T) {
	srv := udpServer(t, func(b []byte) []byte { return b })
	base := Spec{Kind: UDP, ConnectTimeout: udpTestTimeout}

	// No payload: keepalived's 32 bytes of filler come back.
	s := base
	s.UDP.RequireReply = true
	if r := runCheck(t, s, srv); !r.Up || r.Reason != "reply of 32 bytes" {
		t.Errorf("default payload: %+v", r)
	}

	for _, tc := range []struct {
		name     string
		payload  string
		pattern  string
		min, max int
		up       bool
		reason   string
	}{
		{"match with X nibbles", "hello world", "68 65 6X 6x 6f", 0, 0, true, "reply of 11 bytes"},
		{"pattern longer than reply", "he", "68 65 6X 6x 6f", 0, 0, true, "reply of 2 bytes"},
		{"mismatch", "help", "68 65 6X 6x 6f", 0, 0, false, "reply does not match at byte 3"},
		{"mismatch in a fixed nibble", "hello", "68 65 7X", 0, 0, false, "reply does not match at byte 2"},
		{"too short", "abc", "", 4, 0, false, "reply of 3 bytes, want 4-255"},
		{"too long", "abcdefgh", "", 0, 5, false, "reply of more than 5 bytes, want 0-5"},
		{"within bounds", "abcde", "", 5, 5, true, "reply of 5 bytes"},
	} {
		s := base
		s.UDP = UDPSpec{Payload: []byte(tc.payload), RequireReply: true, MinReplyLen: tc.min, MaxReplyLen: tc.max}
		if tc.pattern != "" {
			s.UDP.ReplyPattern, s.UDP.ReplyMask = mustHex(t, tc.pattern)
		}
		r := runCheck(t, s, srv)
		if r.Up != tc.up || r.Reason != tc.reason {
			t.Errorf("%s: got %+v, want up=%v %q", tc.name, r, tc.up, tc.reason)
		}
	}

	// A reply ends the check at once, require_reply or not.
	s = base
	s.UDP.Payload = []byte("x")
	start := time.Now()
	if r := runCheck(t, s, srv); !r.Up || time.Since(start) > udpTestTimeout/2 {
		t.Errorf("reply without require_reply: %+v after %v", r, time.Since(start))
	}
}

func TestUDPPortUnreachable(t *testing.T) {
	for _, req := range []bool{false, true} {
		s := Spec{Kind: UDP, ConnectTimeout: udpTestTimeout, UDP: UDPSpec{RequireReply: req}}
		r := runCheck(t, s, closedUDPPort(t))
		if r.Up || r.Reason != "port unreachable" {
			t.Errorf("require_reply=%v: %+v", req, r)
		}
	}
}

func TestUDPSilent(t *testing.T) {
	srv := udpServer(t, nil)
	s := Spec{Kind: UDP, ConnectTimeout: udpTestTimeout}
	start := time.Now()
	r := runCheck(t, s, srv)
	if !r.Up {
		t.Errorf("silent server without require_reply is up in keepalived: %+v", r)
	}
	if d := time.Since(start); d < udpTestTimeout {
		t.Errorf("gave up after %v, before connect_timeout", d)
	}
	s.UDP.RequireReply = true
	if r := runCheck(t, s, srv); r.Up || r.Reason != "no reply within 300ms" {
		t.Errorf("silent server with require_reply: %+v", r)
	}
}

func TestUDPConnectPortAndCancel(t *testing.T) {
	srv := udpServer(t, nil)
	// connect_port takes the check elsewhere than the server's port.
	s := Spec{Kind: UDP, ConnectTimeout: 5 * time.Second, ConnectPort: srv.Port(), UDP: UDPSpec{RequireReply: true}}
	c, err := New(s, Target{Server: netip.AddrPortFrom(srv.Addr(), 9)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := c.Check(ctx)
	if r.Up || !strings.Contains(r.Reason, "deadline") || time.Since(start) > time.Second {
		t.Errorf("cancelled check: %+v after %v", r, time.Since(start))
	}
}

func TestUDPNoRoute(t *testing.T) {
	inFreshNetNS(t, nil, func() {
		r := runCheckNoFatal(Spec{Kind: UDP, ConnectTimeout: udpTestTimeout}, netip.MustParseAddrPort("10.1.2.3:53"))
		if r.Up || r.Reason != "network unreachable" {
			t.Errorf("%+v", r)
		}
	})
}
