package check

import (
	"context"
	"net"
	"net/textproto"
	"testing"
	"time"
)

const smtpTestTimeout = 300 * time.Millisecond

// smtpTestServer is a fake SMTP server: it sends greeting (none if
// empty: it stays silent), answers the first command with heloReply and
// QUIT with 221, and reports the commands it received.
func smtpTestServer(t *testing.T, greeting, heloReply string) (Target, chan []string) {
	cmds := make(chan []string, 1)
	ln := tcpTestListen(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		tp := textproto.NewConn(c)
		var got []string
		defer func() { cmds <- got }()
		if greeting == "" {
			tp.ReadLine() // until the checker gives up
			return
		}
		tp.PrintfLine("%s", greeting)
		for {
			l, err := tp.ReadLine()
			if err != nil {
				return
			}
			got = append(got, l)
			if l == "QUIT" {
				tp.PrintfLine("221 bye")
				return
			}
			tp.PrintfLine("%s", heloReply)
		}
	})
	return tcpTestTarget(t, ln.Addr()), cmds
}

func smtpTestCheck(t *testing.T, tg Target, helo string) Result {
	t.Helper()
	c, err := New(Spec{Kind: SMTP, ConnectTimeout: smtpTestTimeout, SMTP: SMTPSpec{HeloName: helo}}, tg)
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(context.Background())
}

func TestSMTPCheckUp(t *testing.T) {
	for _, tc := range []struct{ helo, want string }{
		{"", "HELO " + DefaultHeloName},
		{"lb1.example.test", "HELO lb1.example.test"},
	} {
		tg, cmds := smtpTestServer(t, "220 mx.example.test ESMTP", "250 mx.example.test")
		if r := smtpTestCheck(t, tg, tc.helo); !r.Up {
			t.Errorf("helo %q: down: %s", tc.helo, r.Reason)
			continue
		}
		got := <-cmds
		if len(got) != 2 || got[0] != tc.want || got[1] != "QUIT" {
			t.Errorf("helo %q: server got %q, want [%q QUIT]", tc.helo, got, tc.want)
		}
	}
}

func TestSMTPCheckMultilineGreeting(t *testing.T) {
	tg, _ := smtpTestServer(t, "220-mx.example.test ESMTP\r\n220 ready", "250 ok")
	if r := smtpTestCheck(t, tg, ""); !r.Up {
		t.Fatalf("down: %s", r.Reason)
	}
}

func TestSMTPCheckFailures(t *testing.T) {
	for _, tc := range []struct{ greeting, helo, want string }{
		{"554 go away", "250 ok", "greeting: 554 go away"},
		{"220 mx.example.test", "550 not you", "HELO: 550 not you"},
		{"hello", "250 ok", `greeting: short response: "hello"`},
		{"", "", "timeout after 300ms waiting for the greeting"},
	} {
		tg, _ := smtpTestServer(t, tc.greeting, tc.helo)
		start := time.Now()
		r := smtpTestCheck(t, tg, "")
		if r.Up || r.Reason != tc.want {
			t.Errorf("%q/%q: got %v %q, want down %q", tc.greeting, tc.helo, r.Up, r.Reason, tc.want)
		}
		if el := time.Since(start); el > smtpTestTimeout+300*time.Millisecond {
			t.Errorf("%q/%q: took %v", tc.greeting, tc.helo, el)
		}
	}
}

func TestSMTPCheckRefused(t *testing.T) {
	r := smtpTestCheck(t, tcpTestTarget(t, tcpTestClosedAddr(t)), "")
	if r.Up || r.Reason != "connect: connection refused" {
		t.Fatalf("got %+v", r)
	}
}

func TestSMTPNewBadHelo(t *testing.T) {
	if _, err := New(Spec{Kind: SMTP, SMTP: SMTPSpec{HeloName: "a\r\nRCPT"}}, tcpTestTarget(t, tcpTestClosedAddr(t))); err == nil {
		t.Fatal("no error for a helo_name with a line break")
	}
}
