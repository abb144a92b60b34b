package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvs/model"
)

// echoTCP echoes each connection until its client closes.
func echoTCP(t *testing.T) netip.AddrPort {
	return serveTCPWith(t, func(c *net.TCPConn) { io.Copy(c, c); c.Close() })
}

// dialFrom connects to vip from the source address src (all of
// 127.0.0.0/8 is the host's).
func dialFrom(t *testing.T, network, src string, vip netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if network == "udp4" {
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0))
	} else {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0))
	}
	c, err := d.Dial(network, vip.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tcpTry opens a TCP connection from src and echoes msg through it; the
// refused ones fail at the dial or at the read, as the reset comes.
func tcpTry(src string, vip netip.AddrPort, msg string) error {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0))}
	c, err := d.Dial("tcp4", vip.String())
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c, msg, 5*time.Second)
}

// roundTrip writes msg and reads it back, within wait.
func roundTrip(c net.Conn, msg string, wait time.Duration) error {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echoed " + string(buf))
	}
	return nil
}

// A service's allow list refuses new TCP connections (closed at once)
// and new UDP flows (datagrams dropped) from other sources, and counts
// them as "denied"; connections and flows made before it go on.
func TestAllowList(t *testing.T) {
	e := New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer e.Close()
	vipT := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, model.ProtoTCP))
	vipU := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, model.ProtoUDP))
	var src sources
	for _, s := range []struct {
		vip   netip.AddrPort
		proto model.Protocol
		dest  netip.AddrPort
	}{{vipT, model.ProtoTCP, echoTCP(t)}, {vipU, model.ProtoUDP, udpServer(t, &src)}} {
		k := model.ServiceKey{Protocol: s.proto, Addr: s.vip.Addr(), Port: s.vip.Port(), Family: model.IPv4}
		if err := e.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
		if err := e.AddDest(k, model.Dest{Addr: s.dest.Addr(), Port: s.dest.Port(), Method: model.Masq, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		if err := e.SetAllow(k, []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}); err != nil {
			t.Fatal(err)
		}
	}
	kT := model.ServiceKey{Protocol: model.ProtoTCP, Addr: vipT.Addr(), Port: vipT.Port(), Family: model.IPv4}
	kU := model.ServiceKey{Protocol: model.ProtoUDP, Addr: vipU.Addr(), Port: vipU.Port(), Family: model.IPv4}

	// Allowed: both work.
	ok := dialFrom(t, "tcp4", "127.0.0.2", vipT)
	if err := roundTrip(ok, "a", 5*time.Second); err != nil {
		t.Fatalf("allowed TCP: %v", err)
	}
	okU := dialFrom(t, "udp4", "127.0.0.2", vipU)
	if err := roundTrip(okU, "a", 5*time.Second); err != nil {
		t.Fatalf("allowed UDP: %v", err)
	}
	// Elsewhere: TCP closed at once (not a timeout), UDP unanswered.
	start := time.Now()
	err := tcpTry("127.0.0.3", vipT, "b")
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() || time.Since(start) > 2*time.Second {
		t.Fatalf("TCP from elsewhere: %v after %v, want closed at once", err, time.Since(start))
	}
	noU := dialFrom(t, "udp4", "127.0.0.3", vipU)
	if err := roundTrip(noU, "b", 300*time.Millisecond); err == nil {
		t.Fatal("UDP from elsewhere answered")
	}
	if got := e.Events()[EvDenied]; got != 2 {
		t.Fatalf("denied %d, want 2", got)
	}
	if s := e.Services(); s[0].Stats.Conns != 1 || s[1].Stats.Conns != 1 {
		t.Errorf("connections counted %d and %d, want 1 each (denied ones are not)", s[0].Stats.Conns, s[1].Stats.Conns)
	}

	// A list without the first client: what it opened goes on, a new
	// connection from it is refused.
	for _, k := range []model.ServiceKey{kT, kU} {
		if err := e.SetAllow(k, []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := roundTrip(ok, "c", 5*time.Second); err != nil {
		t.Fatalf("established TCP after the list changed: %v", err)
	}
	if err := roundTrip(okU, "c", 5*time.Second); err != nil {
		t.Fatalf("established UDP flow after the list changed: %v", err)
	}
	if err := tcpTry("127.0.0.2", vipT, "d"); err == nil {
		t.Fatal("a new TCP connection from a source no longer listed was served")
	}
	if err := tcpTry("127.0.0.3", vipT, "e"); err != nil {
		t.Fatalf("TCP from the newly listed source: %v", err)
	}
	if got := e.Events()[EvDenied]; got != 3 {
		t.Fatalf("denied %d, want 3", got)
	}
	// No list: everyone.
	if err := e.SetAllow(kT, nil); err != nil {
		t.Fatal(err)
	}
	if err := tcpTry("127.0.0.4", vipT, "f"); err != nil {
		t.Fatalf("TCP with the list removed: %v", err)
	}
}
