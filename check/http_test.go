package check

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const httpTestTimeout = 300 * time.Millisecond

// httpTestServerTarget is the Target of an httptest server.
func httpTestServerTarget(t testing.TB, s *httptest.Server) Target {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	a, err := net.ResolveTCPAddr("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	return tcpTestTarget(t, a)
}

// httpTestCheck runs one check of kind against tg with the given urls.
func httpTestCheck(t testing.TB, kind Kind, tg Target, hs HTTPSpec) Result {
	t.Helper()
	c, err := New(Spec{Kind: kind, ConnectTimeout: httpTestTimeout, HTTP: hs}, tg)
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(context.Background())
}

func httpTestMD5(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// httpTestMux answers /ok with 200 "hello world", /503 with 503,
// /404 and /302 with those statuses.
func httpTestMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world") })
	for _, code := range []int{302, 404, 503} {
		m.HandleFunc(fmt.Sprintf("/%d", code), func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, "status page")
		})
	}
	return m
}

func TestHTTPGetStatus(t *testing.T) {
	srv := httptest.NewServer(httpTestMux())
	defer srv.Close()
	tg := httpTestServerTarget(t, srv)
	custom := []StatusRange{{200, 299}, {400, 499}, {503, 503}}
	for _, tc := range []struct {
		path   string
		codes  []StatusRange
		up     bool
		reason string
	}{
		{"/ok", nil, true, "GET /ok: status 200"},
		{"/503", nil, false, "GET /503: status 503 not in 200-299"},
		{"/404", nil, false, "GET /404: status 404 not in 200-299"},
		{"/503", custom, true, "GET /503: status 503"},
		{"/404", custom, true, "GET /404: status 404"},
		{"/302", custom, false, "GET /302: status 302 not in 200-299 400-499 503"},
	} {
		r := httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: tc.path, StatusCodes: tc.codes}}})
		if r.Up != tc.up || r.Reason != tc.reason {
			t.Errorf("%s %v: got %v %q, want %v %q", tc.path, tc.codes, r.Up, r.Reason, tc.up, tc.reason)
		}
	}
}

func TestHTTPGetDigest(t *testing.T) {
	srv := httptest.NewServer(httpTestMux())
	defer srv.Close()
	tg := httpTestServerTarget(t, srv)
	good := httpTestMD5("hello world")
	// keepalived accepts either case; genhash prints lower.
	r := httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/ok", Digest: strings.ToUpper(good)}}})
	if !r.Up || r.Reason != "GET /ok: status 200, digest ok" {
		t.Errorf("right digest: got %+v", r)
	}
	bad := httpTestMD5("goodbye")
	r = httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/ok", Digest: bad}}})
	want := fmt.Sprintf("GET /ok: digest mismatch: got %s, want %s", good, bad)
	if r.Up || r.Reason != want {
		t.Errorf("wrong digest: got %+v, want down %q", r, want)
	}
	// The status is checked first, as keepalived does.
	r = httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/503", Digest: httpTestMD5("status page")}}})
	if r.Up || !strings.Contains(r.Reason, "status 503") {
		t.Errorf("digest of a 503: got %+v", r)
	}
}

func TestHTTPGetVirtualHost(t *testing.T) {
	hosts := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host }))
	defer srv.Close()
	tg := httpTestServerTarget(t, srv)
	for _, tc := range []struct {
		hs   HTTPSpec
		want string
	}{
		// No virtualhost: keepalived's address:port.
		{HTTPSpec{URLs: []URL{{Path: "/"}}}, tg.Server.String()},
		{HTTPSpec{VirtualHost: "www.example.test", URLs: []URL{{Path: "/"}}}, "www.example.test"},
		{HTTPSpec{VirtualHost: "www.example.test", URLs: []URL{{Path: "/", VirtualHost: "url.example.test"}}}, "url.example.test"},
	} {
		if r := httpTestCheck(t, HTTP, tg, tc.hs); !r.Up {
			t.Errorf("%+v: down: %s", tc.hs, r.Reason)
			continue
		}
		if got := <-hosts; got != tc.want {
			t.Errorf("%+v: server saw Host %q, want %q", tc.hs, got, tc.want)
		}
	}
}

func TestHTTPGetRegex(t *testing.T) {
	srv := httptest.NewServer(httpTestMux())
	defer srv.Close()
	tg := httpTestServerTarget(t, srv)
	for _, tc := range []struct {
		re      string
		noMatch bool
		up      bool
		reason  string
	}{
		{`hel+o\s+w`, false, true, "GET /ok: status 200, regex matched"},
		{`^goodbye`, false, false, `GET /ok: regex "^goodbye" did not match`},
		{`world$`, true, false, `GET /ok: regex "world$" matched (regex_no_match)`},
		{`error`, true, true, "GET /ok: status 200, regex did not match (regex_no_match)"},
	} {
		r := httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/ok", Regex: tc.re, RegexNoMatch: tc.noMatch}}})
		if r.Up != tc.up || r.Reason != tc.reason {
			t.Errorf("%q no_match=%v: got %v %q, want %v %q", tc.re, tc.noMatch, r.Up, r.Reason, tc.up, tc.reason)
		}
	}
}

func TestHTTPGetURLs(t *testing.T) {
	srv := httptest.NewServer(httpTestMux())
	defer srv.Close()
	tg := httpTestServerTarget(t, srv)
	r := httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/ok"}, {Path: "/404", StatusCodes: []StatusRange{{404, 404}}}}})
	if !r.Up || r.Reason != "GET /ok: status 200; GET /404: status 404" {
		t.Errorf("all good: got %+v", r)
	}
	// Every URL must pass; the reason names the one that did not.
	r = httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/ok"}, {Path: "/503"}, {Path: "/ok"}}})
	if r.Up || r.Reason != "GET /503: status 503 not in 200-299" {
		t.Errorf("second bad: got %+v", r)
	}
}

func TestHTTPGetRefused(t *testing.T) {
	r := httpTestCheck(t, HTTP, tcpTestTarget(t, tcpTestClosedAddr(t)), HTTPSpec{URLs: []URL{{Path: "/"}}})
	if r.Up || r.Reason != "GET /: connect: connection refused" {
		t.Fatalf("got %+v", r)
	}
}

func TestHTTPGetSlow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	defer srv.Close()
	start := time.Now()
	r := httpTestCheck(t, HTTP, httpTestServerTarget(t, srv), HTTPSpec{URLs: []URL{{Path: "/"}}})
	el := time.Since(start)
	if r.Up || r.Reason != "GET /: timeout after 300ms reading the response" {
		t.Errorf("got %+v", r)
	}
	if el < httpTestTimeout || el > httpTestTimeout+300*time.Millisecond {
		t.Errorf("took %v, want about %v", el, httpTestTimeout)
	}
}

// httpTestRawServer answers every connection with resp once it has read
// a request header, and hands the header it read to reqs.
func httpTestRawServer(t *testing.T, resp string) (Target, chan string) {
	reqs := make(chan string, 4)
	ln := tcpTestListen(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		br := bufio.NewReader(c)
		var req strings.Builder
		for {
			l, err := br.ReadString('\n')
			req.WriteString(l)
			if err != nil || l == "\r\n" {
				break
			}
		}
		reqs <- req.String()
		io.WriteString(c, resp)
	})
	return tcpTestTarget(t, ln.Addr()), reqs
}

func TestHTTPGetProtocol(t *testing.T) {
	tg, reqs := httpTestRawServer(t, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
	host := tg.Server.String()
	for _, tc := range []struct{ proto, want string }{
		{"", "GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + host + "\r\n\r\n"},
		{"1.0", "GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + host + "\r\n\r\n"},
		{"1.0C", "GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: " + host + "\r\n\r\n"},
		{"1.1", "GET /p HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: " + host + "\r\n\r\n"},
	} {
		r := httpTestCheck(t, HTTP, tg, HTTPSpec{Protocol: tc.proto, URLs: []URL{{Path: "/p"}}})
		if !r.Up {
			t.Errorf("%q: down: %s", tc.proto, r.Reason)
			continue
		}
		if got := <-reqs; got != tc.want {
			t.Errorf("%q: server saw %q, want %q", tc.proto, got, tc.want)
		}
	}
}

func TestHTTPGetChunkedDigest(t *testing.T) {
	// keepalived (and genhash) hash a chunked body as sent, framing and
	// all; so must we for their digests to match.
	raw := "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
	tg, _ := httpTestRawServer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+raw)
	r := httpTestCheck(t, HTTP, tg, HTTPSpec{Protocol: "1.1", URLs: []URL{{Path: "/", Digest: httpTestMD5(raw), Regex: `5\r\nhello`}}})
	if !r.Up {
		t.Fatalf("down: %s", r.Reason)
	}
}

func TestHTTPGetShortBody(t *testing.T) {
	// A body shorter than its Content-Length is only noted, as keepalived
	// only logs it.
	tg, _ := httpTestRawServer(t, "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc")
	r := httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/"}}})
	if !r.Up || r.Reason != "GET /: status 200 (body 3 of 10 bytes)" {
		t.Fatalf("got %+v", r)
	}
	r = httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/", Digest: httpTestMD5("abc")}}})
	if !r.Up {
		t.Fatalf("digest of the short body: got %+v", r)
	}
}

func TestHTTPGetNoResponse(t *testing.T) {
	tg, _ := httpTestRawServer(t, "")
	r := httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/"}}})
	if r.Up || r.Reason != "GET /: no response: connection closed" {
		t.Fatalf("got %+v", r)
	}
	tg, _ = httpTestRawServer(t, "SSH-2.0-OpenSSH\r\n\r\n")
	r = httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/"}}})
	if r.Up || !strings.HasPrefix(r.Reason, "GET /: malformed response: ") {
		t.Fatalf("got %+v", r)
	}
}

func TestHTTPGetBodyLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1<<20)
		for range 17 {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, err := New(Spec{Kind: HTTP, ConnectTimeout: 3 * time.Second, HTTP: HTTPSpec{URLs: []URL{{Path: "/"}}}}, httpTestServerTarget(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background())
	if r.Up || r.Reason != "GET /: body larger than 16 MiB" {
		t.Fatalf("got %+v", r)
	}
}

func TestHTTPNewErrors(t *testing.T) {
	tg := tcpTestTarget(t, tcpTestClosedAddr(t))
	for _, hs := range []HTTPSpec{
		{},
		{Protocol: "2", URLs: []URL{{Path: "/"}}},
		{URLs: []URL{{Path: ""}}},
		{URLs: []URL{{Path: "/", Digest: "abc"}}},
		{URLs: []URL{{Path: "/", Digest: strings.Repeat("g", 32)}}},
		{URLs: []URL{{Path: "/", Regex: "(?<=a)b"}}}, // PCRE lookbehind: not RE2
		{URLs: []URL{{Path: "/", StatusCodes: []StatusRange{{300, 200}}}}},
		{URLs: []URL{{Path: "/\r\nX: y"}}},
	} {
		if _, err := New(Spec{Kind: HTTP, HTTP: hs}, tg); err == nil {
			t.Errorf("%+v: no error", hs)
		}
	}
}

// sslTestServer is an httptest TLS server that reports the SNI each
// handshake carried.
func sslTestServer(t *testing.T) (Target, chan string) {
	snis := make(chan string, 4)
	srv := httptest.NewUnstartedServer(httpTestMux())
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		snis <- h.ServerName
		return nil, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // plain HTTP to it is tested
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return httpTestServerTarget(t, srv), snis
}

func TestSSLGet(t *testing.T) {
	tg, snis := sslTestServer(t)
	r := httpTestCheck(t, SSL, tg, HTTPSpec{URLs: []URL{{Path: "/ok", Digest: httpTestMD5("hello world")}}})
	if !r.Up || r.Reason != "GET /ok: status 200, digest ok" {
		t.Errorf("got %+v", r)
	}
	<-snis
	r = httpTestCheck(t, SSL, tg, HTTPSpec{URLs: []URL{{Path: "/503"}}})
	if r.Up || r.Reason != "GET /503: status 503 not in 200-299" {
		t.Errorf("got %+v", r)
	}
	<-snis
	// Plain HTTP to a TLS port fails.
	r = httpTestCheck(t, HTTP, tg, HTTPSpec{URLs: []URL{{Path: "/ok"}}})
	if r.Up {
		t.Errorf("HTTP_GET to a TLS server: up: %s", r.Reason)
	}
}

func TestSSLGetSNI(t *testing.T) {
	tg, snis := sslTestServer(t)
	for _, tc := range []struct {
		hs   HTTPSpec
		want string
	}{
		{HTTPSpec{VirtualHost: "www.example.test", URLs: []URL{{Path: "/ok"}}}, ""},
		{HTTPSpec{EnableSNI: true, VirtualHost: "www.example.test", URLs: []URL{{Path: "/ok"}}}, "www.example.test"},
		{HTTPSpec{EnableSNI: true, VirtualHost: "www.example.test", URLs: []URL{{Path: "/ok", VirtualHost: "url.example.test"}}}, "url.example.test"},
		{HTTPSpec{EnableSNI: true, SNIName: "sni.example.test", VirtualHost: "www.example.test", URLs: []URL{{Path: "/ok"}}}, "sni.example.test"},
		// Nothing to name: no SNI (an address is never sent as SNI).
		{HTTPSpec{EnableSNI: true, URLs: []URL{{Path: "/ok"}}}, ""},
	} {
		if r := httpTestCheck(t, SSL, tg, tc.hs); !r.Up {
			t.Errorf("%+v: down: %s", tc.hs, r.Reason)
			continue
		}
		if got := <-snis; got != tc.want {
			t.Errorf("%+v: server saw SNI %q, want %q", tc.hs, got, tc.want)
		}
	}
}

func TestSSLGetTLSCompliant(t *testing.T) {
	// Borrow httptest's certificate.
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	cfg := hs.TLS.Clone()
	hs.Close()

	// The server answers with a Content-Length so that the checker is the
	// one to close, then counts what comes after on the TCP connection:
	// close_notify is a TLS record, a bare close is nothing.
	after := make(chan int, 1)
	ln := tcpTestListen(t, func(raw net.Conn) {
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(2 * time.Second))
		tc := tls.Server(raw, cfg)
		br := bufio.NewReader(tc)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				after <- -1
				return
			}
			if l == "\r\n" {
				break
			}
		}
		io.WriteString(tc, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
		n, _ := io.Copy(io.Discard, raw)
		after <- int(n)
	})
	tg := tcpTestTarget(t, ln.Addr())
	for _, compliant := range []bool{false, true} {
		r := httpTestCheck(t, SSL, tg, HTTPSpec{TLSCompliant: compliant, URLs: []URL{{Path: "/"}}})
		if !r.Up {
			t.Errorf("tls_compliant %v: down: %s", compliant, r.Reason)
			continue
		}
		n := <-after
		if compliant && n <= 0 || !compliant && n != 0 {
			t.Errorf("tls_compliant %v: %d bytes after the response", compliant, n)
		}
	}
}
