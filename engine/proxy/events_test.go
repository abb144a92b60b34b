package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvs/model"
)

// countLog counts the records logged.
type countLog struct{ n atomic.Int64 }

func (h *countLog) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countLog) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countLog) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countLog) WithGroup(string) slog.Handler             { return h }

// emfile fails every accept with EMFILE until closed.
type emfile struct {
	calls  atomic.Int64
	closed atomic.Bool
}

func (l *emfile) AcceptTCP() (*net.TCPConn, error) {
	if l.closed.Load() {
		return nil, net.ErrClosed
	}
	l.calls.Add(1)
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// Out of descriptors, accept is retried after a growing delay, not at
// once, and logged once, not per failure; every failure is counted.
func TestAcceptBackoff(t *testing.T) {
	h := &countLog{}
	e := New(slog.New(h))
	defer e.Close()
	ln := &emfile{}
	done := make(chan struct{})
	go func() { e.serveTCP(ln); close(done) }()
	time.Sleep(500 * time.Millisecond)
	ln.closed.Store(true)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("serveTCP did not return once the listener was closed")
	}
	// 5+10+...+320 ms: 7 accepts in the first 635 ms.
	calls := ln.calls.Load()
	if calls < 3 || calls > 10 {
		t.Fatalf("%d accepts in 500 ms of EMFILE, want about 7", calls)
	}
	if n := h.n.Load(); n != 1 {
		t.Fatalf("%d log records for %d failures, want 1", n, calls)
	}
	if got := e.Events()[EvAcceptError]; got != uint64(calls) {
		t.Fatalf("accept_error %d, want %d", got, calls)
	}
}

// A closed engine stops waiting out a back-off.
func TestAcceptBackoffClose(t *testing.T) {
	e := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { e.serveTCP(&emfile{}); close(done) }()
	time.Sleep(1500 * time.Millisecond) // the delay is at its 1 s cap
	start := time.Now()
	e.Close()
	<-done
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("Close waited %v for a back-off", d)
	}
}

// udpClient sends one datagram from a socket of its own (a new flow)
// and says whether the answer came back within wait.
func udpClient(t *testing.T, vip netip.AddrPort, wait time.Duration) bool {
	t.Helper()
	c, err := net.Dial("udp4", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 16))
	return err == nil
}

func udpService(t *testing.T, e *Engine, server netip.AddrPort) netip.AddrPort {
	t.Helper()
	k := model.ServiceKey{Protocol: model.ProtoUDP, Addr: netip.MustParseAddr("127.0.0.1"), Port: freePort(t, model.ProtoUDP), Family: model.IPv4}
	if err := e.AddService(model.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddDest(k, model.Dest{Addr: server.Addr(), Port: server.Port(), Method: model.Masq, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(k.Addr, k.Port)
}

// UDP flows are bounded, in all and per service: a new flow's datagrams
// beyond the bound are dropped and counted; existing flows go on.
func TestUDPFlowLimit(t *testing.T) {
	h := &countLog{}
	e := New(slog.New(h), WithMaxUDPFlows(3), WithMaxUDPFlowsPerService(2))
	defer e.Close()
	var src sources
	server := udpServer(t, &src)
	a, b := udpService(t, e, server), udpService(t, e, server)
	// A flow kept open throughout.
	c, err := net.Dial("udp4", a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func() error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err := c.Read(make([]byte, 16))
		return err
	}
	if err := echo(); err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		vip     netip.AddrPort
		through bool
		dropped uint64
	}{
		{a, true, 0},
		{a, false, 1}, // a's bound
		{b, true, 1},
		{b, false, 2}, // the total's
		{b, false, 3},
	} {
		wait := 300 * time.Millisecond // for an answer that should not come
		if step.through {
			wait = 5 * time.Second
		}
		if got := udpClient(t, step.vip, wait); got != step.through {
			t.Fatalf("flow %d: answered %v, want %v", i, got, step.through)
		}
		if got := e.Events()[EvUDPFlowLimit]; got != step.dropped {
			t.Fatalf("flow %d: udp_flow_limit %d, want %d", i, got, step.dropped)
		}
	}
	if n := h.n.Load(); n != 1 {
		t.Fatalf("%d log records for 3 drops, want 1", n)
	}
	// An open flow goes on at the limit.
	for range 3 {
		if err := echo(); err != nil {
			t.Fatalf("an open flow at the limit: %v", err)
		}
	}
	if got := e.Events()[EvUDPFlowLimit]; got != 3 {
		t.Fatalf("udp_flow_limit %d, want 3", got)
	}
}

// Expired flows give their place back.
func TestUDPFlowLimitExpiry(t *testing.T) {
	e := New(slog.New(slog.NewTextHandler(io.Discard, nil)), WithMaxUDPFlows(1))
	defer e.Close()
	if err := e.SetTimeouts(model.Timeouts{UDP: 1}); err != nil {
		t.Fatal(err)
	}
	var src sources
	vip := udpService(t, e, udpServer(t, &src))
	if !udpClient(t, vip, 5*time.Second) {
		t.Fatal("first flow not answered")
	}
	if udpClient(t, vip, 300*time.Millisecond) {
		t.Fatal("a second flow passed the bound of 1")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !udpClient(t, vip, 300*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no flow opens after the first expired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.mu.Lock()
	n := len(e.svcFlows)
	e.mu.Unlock()
	if n != 1 {
		t.Fatalf("flows counted for %d services, want 1", n)
	}
}
