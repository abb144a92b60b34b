package check

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers each query on 127.0.0.1 with answer(query), nil for
// no answer; it records the questions it was asked.
type dnsServer struct {
	mu        sync.Mutex
	questions []dnsmessage.Question
	headers   []dnsmessage.Header
}

func startDNS(t *testing.T, answer func(q dnsmessage.Message) *dnsmessage.Message) (netip.AddrPort, *dnsServer) {
	t.Helper()
	ds := &dnsServer{}
	ap := udpServer(t, func(b []byte) []byte {
		var q dnsmessage.Message
		if err := q.Unpack(b); err != nil {
			return nil
		}
		ds.mu.Lock()
		ds.headers = append(ds.headers, q.Header)
		ds.questions = append(ds.questions, q.Questions...)
		ds.mu.Unlock()
		a := answer(q)
		if a == nil {
			return nil
		}
		out, err := a.Pack()
		if err != nil {
			t.Error(err)
			return nil
		}
		return out
	})
	return ap, ds
}

func soaRoot() dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("."), Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET, TTL: 60},
		Body: &dnsmessage.SOAResource{NS: dnsmessage.MustNewName("a.root-servers.net."), MBox: dnsmessage.MustNewName("nstld.verisign-grs.com."),
			Serial: 1, Refresh: 1800, Retry: 900, Expire: 604800, MinTTL: 86400},
	}
}

func reply(q dnsmessage.Message, rcode dnsmessage.RCode, answers ...dnsmessage.Resource) *dnsmessage.Message {
	return &dnsmessage.Message{
		Header:    dnsmessage.Header{ID: q.ID, Response: true, RecursionDesired: q.RecursionDesired, RCode: rcode},
		Questions: q.Questions,
		Answers:   answers,
	}
}

func TestDNSUp(t *testing.T) {
	srv, ds := startDNS(t, func(q dnsmessage.Message) *dnsmessage.Message { return reply(q, dnsmessage.RCodeSuccess, soaRoot()) })
	r := runCheck(t, Spec{Kind: DNS, ConnectTimeout: udpTestTimeout}, srv)
	if !r.Up {
		t.Fatalf("SOA for .: %+v", r)
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	// keepalived's query: the defaults SOA and ".", class IN, RD set.
	if len(ds.questions) != 1 || ds.questions[0].Type != dnsmessage.TypeSOA || ds.questions[0].Name.String() != "." ||
		ds.questions[0].Class != dnsmessage.ClassINET || !ds.headers[0].RecursionDesired {
		t.Errorf("query: %+v %+v", ds.headers, ds.questions)
	}
}

func TestDNSTypeAndName(t *testing.T) {
	srv, ds := startDNS(t, func(q dnsmessage.Message) *dnsmessage.Message { return reply(q, dnsmessage.RCodeSuccess) })
	// No answer but NOERROR is up: keepalived looks at the rcode only.
	r := runCheck(t, Spec{Kind: DNS, ConnectTimeout: udpTestTimeout, DNS: DNSSpec{Type: "aaaa", Name: "www.example.com"}}, srv)
	if !r.Up {
		t.Fatalf("empty NOERROR: %+v", r)
	}
	ds.mu.Lock()
	q := ds.questions[0]
	ds.mu.Unlock()
	if q.Type != dnsmessage.TypeAAAA || q.Name.String() != "www.example.com." {
		t.Errorf("question %+v", q)
	}
	for _, bad := range []DNSSpec{{Type: "PTR"}, {Name: "a..b"}, {Name: ".a"}} {
		if _, err := New(Spec{Kind: DNS, DNS: bad}, Target{Server: srv}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestDNSDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(q dnsmessage.Message) *dnsmessage.Message
		reason string
	}{
		{"NXDOMAIN", func(q dnsmessage.Message) *dnsmessage.Message { return reply(q, dnsmessage.RCodeNameError) }, "rcode 3 (NXDOMAIN)"},
		{"SERVFAIL", func(q dnsmessage.Message) *dnsmessage.Message { return reply(q, dnsmessage.RCodeServerFailure) }, "rcode 2 (SERVFAIL)"},
		{"REFUSED", func(q dnsmessage.Message) *dnsmessage.Message { return reply(q, dnsmessage.RCodeRefused) }, "rcode 5 (REFUSED)"},
		// keepalived ignores a reply of another ID, and a query, and
		// waits on: no other reply comes, so the check times out.
		{"wrong ID", func(q dnsmessage.Message) *dnsmessage.Message {
			m := reply(q, dnsmessage.RCodeSuccess, soaRoot())
			m.ID = q.ID + 1
			return m
		}, "no reply within 300ms (ignored: reply with ID"},
		{"not a response", func(q dnsmessage.Message) *dnsmessage.Message {
			m := reply(q, dnsmessage.RCodeSuccess, soaRoot())
			m.Response = false
			return m
		}, "no reply within 300ms (ignored: a query)"},
		{"silent", func(dnsmessage.Message) *dnsmessage.Message { return nil }, "no reply within 300ms"},
	} {
		srv, _ := startDNS(t, tc.answer)
		r := runCheck(t, Spec{Kind: DNS, ConnectTimeout: udpTestTimeout}, srv)
		if r.Up || !strings.HasPrefix(r.Reason, tc.reason) {
			t.Errorf("%s: %+v, want %q", tc.name, r, tc.reason)
		}
	}
	r := runCheck(t, Spec{Kind: DNS, ConnectTimeout: udpTestTimeout}, closedUDPPort(t))
	if r.Up || r.Reason != "port unreachable" {
		t.Errorf("closed port: %+v", r)
	}
}

// A wrong-ID reply followed by the right one: the right one counts.
func TestDNSWrongIDThenRight(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			var q dnsmessage.Message
			if q.Unpack(b[:n]) != nil {
				continue
			}
			wrong := reply(q, dnsmessage.RCodeServerFailure)
			wrong.ID++
			for _, m := range []*dnsmessage.Message{wrong, reply(q, dnsmessage.RCodeSuccess, soaRoot())} {
				out, _ := m.Pack()
				c.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	start := time.Now()
	r := runCheck(t, Spec{Kind: DNS, ConnectTimeout: udpTestTimeout}, c.LocalAddr().(*net.UDPAddr).AddrPort())
	if !r.Up || time.Since(start) > udpTestTimeout {
		t.Errorf("%+v after %v", r, time.Since(start))
	}
}
