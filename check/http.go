package check

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

func init() {
	register(HTTP, newHTTP)
	register(SSL, newHTTP)
}

// httpMaxBody bounds what one URL's check reads of a body; keepalived
// has no bound, but a health check has no business with more.
const httpMaxBody = 16 << 20

// httpChecker is HTTP_GET and SSL_GET. Each URL is fetched on its own
// connection, as keepalived does, and every URL must pass.
type httpChecker struct {
	spec  Spec
	dest  netip.AddrPort
	tls   bool
	minor int    // HTTP/1.<minor>
	close bool   // send "Connection: close" (1.0C, 1.1)
	host  string // Host when no virtualhost is set: keepalived's addr:port
	urls  []httpURL
}

type httpURL struct {
	URL
	host   string // the Host header
	sni    string // SSL_GET with enable_sni: the server name sent
	digest string // lowercase hex
	ranges []StatusRange
	// re is matched against the body. It is RE2 (Go's regexp), not
	// keepalived's PCRE2: no backreferences or lookaround, and
	// regex_options become inline flags such as (?i) or (?s).
	// keepalived matches piecewise with partial matching; here the whole
	// body (up to httpMaxBody) is matched at once, which finds the same.
	re *regexp.Regexp
}

// httpDefaultStatus is keepalived's default status_code.
var httpDefaultStatus = []StatusRange{{200, 299}}

func newHTTP(s Spec, t Target) (Checker, error) {
	dest, err := tcpDest(s, t)
	if err != nil {
		return nil, err
	}
	c := &httpChecker{spec: s, dest: dest, tls: s.Kind == SSL}
	switch s.HTTP.Protocol {
	case "", "1.0":
	case "1.0C", "1.0c":
		c.close = true
	case "1.1":
		c.minor, c.close = 1, true
	default:
		return nil, fmt.Errorf("%s: http_protocol %q: want 1.0, 1.0C or 1.1", s.Kind, s.HTTP.Protocol)
	}
	if len(s.HTTP.URLs) == 0 {
		// keepalived ignores such a checker, with a config error.
		return nil, fmt.Errorf("%s: no url", s.Kind)
	}
	// keepalived writes the connect address and port, the address in
	// brackets when IPv6 (RFC 2732), even for port 80 or 443.
	c.host = netip.AddrPortFrom(dest.Addr().WithZone(""), dest.Port()).String()
	for i, u := range s.HTTP.URLs {
		hu := httpURL{URL: u, ranges: u.StatusCodes}
		if u.Path == "" {
			return nil, fmt.Errorf("%s: url %d: no path", s.Kind, i+1)
		}
		hu.host = u.VirtualHost
		if hu.host == "" {
			hu.host = s.HTTP.VirtualHost
		}
		if c.tls && s.HTTP.EnableSNI {
			hu.sni = s.HTTP.SNIName
			if hu.sni == "" {
				hu.sni = hu.host
			}
		}
		if hu.host == "" {
			hu.host = c.host
		}
		for _, f := range []string{u.Path, hu.host} {
			if strings.ContainsAny(f, "\r\n") {
				return nil, fmt.Errorf("%s: url %q: line break in path or virtualhost", s.Kind, u.Path)
			}
		}
		if u.Digest != "" {
			b, err := hex.DecodeString(u.Digest)
			if err != nil || len(b) != md5.Size {
				return nil, fmt.Errorf("%s: url %q: digest %q: want %d hex digits", s.Kind, u.Path, u.Digest, 2*md5.Size)
			}
			hu.digest = hex.EncodeToString(b)
		}
		if len(hu.ranges) == 0 {
			hu.ranges = httpDefaultStatus
		}
		for _, r := range hu.ranges {
			if r.Min < 100 || r.Max > 599 || r.Min > r.Max {
				return nil, fmt.Errorf("%s: url %q: status_code %s: want 100-599", s.Kind, u.Path, httpStatusRanges([]StatusRange{r}))
			}
		}
		if u.Regex != "" {
			if hu.re, err = regexp.Compile(u.Regex); err != nil {
				return nil, fmt.Errorf("%s: url %q: regex: %v", s.Kind, u.Path, err)
			}
		}
		c.urls = append(c.urls, hu)
	}
	return c, nil
}

// Check fetches every URL in turn, each on its own connection bounded by
// connect_timeout, and stops at the first that fails. (keepalived checks
// one URL per delay_loop, all of them at once only with fast_recovery;
// package health owns that schedule.)
func (c *httpChecker) Check(ctx context.Context) Result {
	var ok []string
	for i := range c.urls {
		u := &c.urls[i]
		why, good := c.get(ctx, u)
		if !good {
			return Result{Reason: "GET " + u.Path + ": " + why}
		}
		ok = append(ok, "GET "+u.Path+": "+why)
	}
	return Result{Up: true, Reason: strings.Join(ok, "; ")}
}

// get checks one URL; why says what failed, or what passed.
func (c *httpChecker) get(ctx context.Context, u *httpURL) (why string, up bool) {
	timeout := c.spec.ConnectTimeout
	conn, release, err := tcpDial(ctx, c.spec, c.dest)
	if err != nil {
		return tcpDialErrText(ctx, timeout, err), false
	}
	defer release()
	defer conn.Close()
	if c.tls {
		tc := tls.Client(conn, &tls.Config{
			// keepalived verifies nothing unless given a CA, which Spec
			// has no room for.
			InsecureSkipVerify: true,
			// Empty: no SNI. Go never sends an IP address as SNI.
			ServerName: u.sni,
			// A health check should not fail for an old backend's TLS.
			MinVersion: tls.VersionTLS10,
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			return tcpIOErrText(ctx, timeout, "in the TLS handshake", err), false
		}
		if c.spec.HTTP.TLSCompliant {
			// tls.Conn.Close sends close_notify before closing;
			// otherwise the TCP connection just closes (keepalived's
			// quiet shutdown).
			defer tc.Close()
		}
		conn = tc
	}

	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.%d\r\nUser-Agent: KeepAliveClient\r\n", u.Path, c.minor)
	if c.close {
		req.WriteString("Connection: close\r\n")
	}
	fmt.Fprintf(&req, "Host: %s\r\n\r\n", u.host)
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return tcpIOErrText(ctx, timeout, "sending the request", err), false
	}

	br := bufio.NewReader(conn)
	// ReadResponse calls an empty answer "unexpected EOF"; tell it apart.
	if _, err := br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			// keepalived: "Read, no data received".
			return "no response: connection closed", false
		}
		return tcpIOErrText(ctx, timeout, "reading the response", err), false
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
			return tcpIOErrText(ctx, timeout, "reading the response", err), false
		}
		return "malformed response: " + err.Error(), false
	}
	defer resp.Body.Close()

	// The body is what follows the header, as keepalived (and genhash,
	// whose digests users configure) sees it: a chunked body is taken
	// undecoded, up to the end of the connection.
	body := io.Reader(resp.Body)
	if len(resp.TransferEncoding) > 0 {
		body = br
	}
	var h hash.Hash
	var ws []io.Writer
	if u.digest != "" {
		h = md5.New()
		ws = append(ws, h)
	}
	var bw *httpBodySink
	if u.re != nil {
		bw = &httpBodySink{}
		ws = append(ws, bw)
	}
	// keepalived reads to the end even when it only wants the status,
	// so a server that cannot finish its answer fails the check.
	n, err := io.Copy(io.MultiWriter(append(ws, io.Discard)...), io.LimitReader(body, httpMaxBody+1))
	short := ""
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) && resp.ContentLength > 0:
		// keepalived only logs a short body; a digest will catch it.
		short = fmt.Sprintf(" (body %d of %d bytes)", n, resp.ContentLength)
	case err != nil:
		return tcpIOErrText(ctx, timeout, "reading the response", err), false
	case n > httpMaxBody:
		return fmt.Sprintf("body larger than %d MiB", httpMaxBody>>20), false
	}

	// keepalived's order: status, digest, regex.
	if !httpStatusIn(resp.StatusCode, u.ranges) {
		return fmt.Sprintf("status %d not in %s%s", resp.StatusCode, httpStatusRanges(u.ranges), short), false
	}
	why = "status " + strconv.Itoa(resp.StatusCode)
	if h != nil {
		got := hex.EncodeToString(h.Sum(nil))
		if got != u.digest {
			return fmt.Sprintf("digest mismatch: got %s, want %s%s", got, u.digest, short), false
		}
		why += ", digest ok"
	}
	if u.re != nil {
		switch m := u.re.Match(bw.b); {
		case m && u.RegexNoMatch:
			return fmt.Sprintf("regex %q matched (regex_no_match)%s", u.Regex, short), false
		case !m && !u.RegexNoMatch:
			return fmt.Sprintf("regex %q did not match%s", u.Regex, short), false
		case m:
			why += ", regex matched"
		default:
			why += ", regex did not match (regex_no_match)"
		}
	}
	return why + short, true
}

// httpBodySink keeps what is written to it.
type httpBodySink struct{ b []byte }

func (s *httpBodySink) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

func httpStatusIn(code int, rs []StatusRange) bool {
	for _, r := range rs {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

// httpStatusRanges writes ranges as keepalived's status_code does:
// "200-299 400-499 503".
func httpStatusRanges(rs []StatusRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(r.Min))
		if r.Max != r.Min {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.Max))
		}
	}
	return b.String()
}
