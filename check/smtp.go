package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"strings"
)

func init() { register(SMTP, newSMTP) }

// DefaultHeloName is SMTP_CHECK's helo_name when none is configured:
// keepalived's SMTP_DEFAULT_HELO (check_smtp.h), not the host name.
const DefaultHeloName = "smtpchecker.keepalived.org"

// smtpChecker is SMTP_CHECK: a 220 greeting, 250 to HELO, then QUIT.
type smtpChecker struct {
	spec Spec
	dest netip.AddrPort
	helo string
}

func newSMTP(s Spec, t Target) (Checker, error) {
	dest, err := tcpDest(s, t)
	if err != nil {
		return nil, err
	}
	helo := s.SMTP.HeloName
	if helo == "" {
		helo = DefaultHeloName
	}
	if strings.ContainsAny(helo, "\r\n") {
		return nil, fmt.Errorf("%s: helo_name %q: line break", s.Kind, helo)
	}
	return &smtpChecker{spec: s, dest: dest, helo: helo}, nil
}

func (c *smtpChecker) Check(ctx context.Context) Result {
	timeout := c.spec.ConnectTimeout
	conn, release, err := tcpDial(ctx, c.spec, c.dest)
	if err != nil {
		return Result{Reason: tcpDialErrText(ctx, timeout, err)}
	}
	defer release()
	tp := textproto.NewConn(conn)
	defer tp.Close()

	// fail says what went wrong at step: a reply with the wrong code
	// ("greeting: 554 go away"), or an I/O error.
	fail := func(step, doing string, err error) Result {
		var te *textproto.Error
		if errors.As(err, &te) {
			return Result{Reason: fmt.Sprintf("%s: %d %s", step, te.Code, te.Msg)}
		}
		var pe textproto.ProtocolError
		if errors.As(err, &pe) {
			return Result{Reason: step + ": " + pe.Error()}
		}
		return Result{Reason: tcpIOErrText(ctx, timeout, doing, err)}
	}

	// keepalived takes the first line's code; textproto also accepts a
	// multi-line "220-" greeting, which keepalived wrongly refuses.
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fail("greeting", "waiting for the greeting", err)
	}
	if _, err := tp.Cmd("HELO %s", c.helo); err != nil {
		return fail("HELO", "sending HELO", err)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return fail("HELO", "waiting for the HELO reply", err)
	}
	if _, err := tp.Cmd("QUIT"); err != nil {
		return fail("QUIT", "sending QUIT", err)
	}
	// keepalived wants a reply to QUIT, whatever its code.
	if _, err := tp.ReadLine(); err != nil {
		return fail("QUIT", "waiting for the QUIT reply", err)
	}
	return Result{Up: true, Reason: "greeting 220, HELO " + c.helo + " 250"}
}
