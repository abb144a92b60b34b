package check

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// tcpTestTarget is a Target whose real server is addr.
func tcpTestTarget(t testing.TB, addr net.Addr) Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return Target{Server: ap}
}

// tcpTestListen listens on 127.0.0.1 and hands every accepted
// connection to serve, in its own goroutine.
func tcpTestListen(t testing.TB, serve func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln
}

// tcpTestClosedAddr is an address on which nothing listens.
func tcpTestClosedAddr(t testing.TB) net.Addr {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr()
	ln.Close()
	return a
}

func tcpTestNew(t testing.TB, s Spec, tg Target) Checker {
	t.Helper()
	c, err := New(s, tg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTCPCheckUp(t *testing.T) {
	ln := tcpTestListen(t, func(c net.Conn) { c.Close() })
	c := tcpTestNew(t, Spec{Kind: TCP, ConnectTimeout: 300 * time.Millisecond}, tcpTestTarget(t, ln.Addr()))
	if r := c.Check(context.Background()); !r.Up {
		t.Fatalf("down: %s", r.Reason)
	}
}

func TestTCPCheckRefused(t *testing.T) {
	c := tcpTestNew(t, Spec{Kind: TCP, ConnectTimeout: 300 * time.Millisecond}, tcpTestTarget(t, tcpTestClosedAddr(t)))
	r := c.Check(context.Background())
	if r.Up || r.Reason != "connect: connection refused" {
		t.Fatalf("got %+v, want down with connect: connection refused", r)
	}
}

func TestTCPCheckConnectPort(t *testing.T) {
	// connect_ip/connect_port replace the real server's address.
	ln := tcpTestListen(t, func(c net.Conn) { c.Close() })
	ap := tcpTestTarget(t, ln.Addr()).Server
	tg := tcpTestTarget(t, tcpTestClosedAddr(t))
	c := tcpTestNew(t, Spec{Kind: TCP, ConnectTimeout: 300 * time.Millisecond, ConnectIP: ap.Addr(), ConnectPort: ap.Port()}, tg)
	if r := c.Check(context.Background()); !r.Up {
		t.Fatalf("down: %s", r.Reason)
	}
}

func TestTCPCheckBindTo(t *testing.T) {
	from := make(chan string, 1)
	ln := tcpTestListen(t, func(c net.Conn) {
		from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	})
	s := Spec{Kind: TCP, ConnectTimeout: 300 * time.Millisecond, BindTo: netip.MustParseAddr("127.0.0.2")}
	c := tcpTestNew(t, s, tcpTestTarget(t, ln.Addr()))
	if r := c.Check(context.Background()); !r.Up {
		t.Fatalf("down: %s", r.Reason)
	}
	if got := <-from; got != "127.0.0.2" {
		t.Fatalf("server saw the check from %s, want 127.0.0.2", got)
	}
}

func TestTCPCheckCanceled(t *testing.T) {
	ln := tcpTestListen(t, func(c net.Conn) { c.Close() })
	c := tcpTestNew(t, Spec{Kind: TCP, ConnectTimeout: 300 * time.Millisecond}, tcpTestTarget(t, ln.Addr()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := c.Check(ctx)
	if r.Up || !strings.Contains(r.Reason, "canceled") {
		t.Fatalf("got %+v, want down, canceled", r)
	}
}

func TestTCPNewNoPort(t *testing.T) {
	if _, err := New(Spec{Kind: TCP}, Target{Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 0)}); err == nil {
		t.Fatal("no error for a target without port")
	}
}

// BenchmarkTCPCheck measures TCP_CHECKs per second against a local
// listener that accepts and closes.
func BenchmarkTCPCheck(b *testing.B) {
	ln := tcpTestListen(b, func(c net.Conn) { c.Close() })
	c := tcpTestNew(b, Spec{Kind: TCP, ConnectTimeout: time.Second}, tcpTestTarget(b, ln.Addr()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Check(ctx); !r.Up {
			b.Fatal(r.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
