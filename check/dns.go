package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func init() { register(DNS, newDNS) }

// dnsTypes are the query types keepalived's DNS_CHECK knows.
var dnsTypes = map[string]dnsmessage.Type{
	"A":      dnsmessage.TypeA,
	"NS":     dnsmessage.TypeNS,
	"CNAME":  dnsmessage.TypeCNAME,
	"SOA":    dnsmessage.TypeSOA,
	"MX":     dnsmessage.TypeMX,
	"TXT":    dnsmessage.TypeTXT,
	"AAAA":   dnsmessage.TypeAAAA,
	"RRSIG":  46,
	"DNSKEY": 48,
}

type dnsChecker struct {
	spec  Spec
	t     Target
	qtype dnsmessage.Type
	name  dnsmessage.Name
}

func newDNS(s Spec, t Target) (Checker, error) {
	qt, ok := dnsTypes[strings.ToUpper(s.DNS.Type)]
	if !ok {
		return nil, fmt.Errorf("DNS_CHECK: unknown type %q", s.DNS.Type)
	}
	n := s.DNS.Name
	if n != "." && (strings.HasPrefix(n, ".") || strings.Contains(n, "..")) {
		return nil, fmt.Errorf("DNS_CHECK: name %q has an empty label", n)
	}
	if !strings.HasSuffix(n, ".") {
		n += "."
	}
	name, err := dnsmessage.NewName(n)
	if err != nil {
		return nil, fmt.Errorf("DNS_CHECK: name %q: %v", s.DNS.Name, err)
	}
	if !s.Dest(t).IsValid() {
		return nil, errors.New("DNS_CHECK: no destination")
	}
	return &dnsChecker{spec: s, t: t, qtype: qt, name: name}, nil
}

// query builds what keepalived sends: one question, recursion desired,
// no EDNS.
func (c *dnsChecker) query(id uint16) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: c.name, Type: c.qtype, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

func (c *dnsChecker) Check(ctx context.Context) Result {
	s := c.spec
	dst := s.Dest(c.t)
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	id := uint16(rand.Uint32())
	q, err := c.query(id)
	if err != nil {
		return Result{Reason: "building query: " + err.Error()}
	}
	network := "udp4"
	if !dst.Addr().Unmap().Is4() {
		network = "udp6"
	}
	conn, err := s.Dialer("udp").DialContext(ctx, network, dst.String())
	if err != nil {
		return Result{Reason: dgramReason(err)}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(s.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	if _, err := conn.Write(q); err != nil {
		return Result{Reason: dgramReason(err)}
	}
	buf := make([]byte, 4096)
	var ignored []string
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return Result{Reason: ctx.Err().Error()}
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r := fmt.Sprintf("no reply within %v", s.ConnectTimeout)
				if len(ignored) > 0 {
					r += " (ignored: " + strings.Join(ignored, ", ") + ")"
				}
				return Result{Reason: r}
			}
			return Result{Reason: dgramReason(err)}
		}
		// keepalived waits on past a datagram too short for a header, of
		// another ID or that is not a response; only the header counts.
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		switch {
		case err != nil:
			ignored = append(ignored, fmt.Sprintf("%d-byte datagram", n))
			continue
		case h.ID != id:
			ignored = append(ignored, fmt.Sprintf("reply with ID %#04x, want %#04x", h.ID, id))
			continue
		case !h.Response:
			ignored = append(ignored, "a query")
			continue
		}
		if h.RCode != dnsmessage.RCodeSuccess {
			return Result{Reason: fmt.Sprintf("rcode %d (%s)", int(h.RCode), rcodeName(h.RCode))}
		}
		// Neither answers nor the question's echo are checked: an empty
		// NOERROR answer is up, as in keepalived.
		return Result{Up: true, Reason: "rcode 0 (NOERROR)"}
	}
}

func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return "RCODE" + fmt.Sprint(int(r))
}
