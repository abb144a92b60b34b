package main

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// greeting is what the conn/s backend writes before it closes.
var greeting = []byte("hello from the backend\n")

// backend is one real server: a TCP greeter (write the greeting, close), a
// TCP sink (read and count), and a UDP echo server, on one loopback
// address.
type backend struct {
	greet, sink, echo netip.AddrPort

	greetLn, sinkLn *net.TCPListener
	echoPC          *net.UDPConn

	sunk *atomic.Int64 // bytes received by every sink, shared by all backends

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startBackend listens on addr, on ephemeral ports.
func startBackend(addr netip.Addr, sunk *atomic.Int64) (*backend, error) {
	b := &backend{sunk: sunk, conns: map[net.Conn]struct{}{}}
	var err error
	if b.greetLn, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 0))); err != nil {
		return nil, err
	}
	if b.sinkLn, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 0))); err != nil {
		b.greetLn.Close()
		return nil, err
	}
	if b.echoPC, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0))); err != nil {
		b.greetLn.Close()
		b.sinkLn.Close()
		return nil, err
	}
	_ = b.echoPC.SetReadBuffer(4 << 20)
	_ = b.echoPC.SetWriteBuffer(4 << 20)
	b.greet = b.greetLn.Addr().(*net.TCPAddr).AddrPort()
	b.sink = b.sinkLn.Addr().(*net.TCPAddr).AddrPort()
	b.echo = b.echoPC.LocalAddr().(*net.UDPAddr).AddrPort()

	b.wg.Add(4)
	go b.acceptLoop(b.greetLn, b.serveGreet)
	go b.acceptLoop(b.sinkLn, b.serveSink)
	for range 2 {
		go b.serveEcho()
	}
	return b, nil
}

func (b *backend) acceptLoop(ln *net.TCPListener, serve func(*net.TCPConn)) {
	defer b.wg.Done()
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off a little rather than spin.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}

func (b *backend) serveGreet(c *net.TCPConn) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(greeting)
	c.Close()
}

func (b *backend) track(c net.Conn, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
}

func (b *backend) serveSink(c *net.TCPConn) {
	b.track(c, true)
	defer b.track(c, false)
	defer c.Close()
	buf := make([]byte, 256<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			b.sunk.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

func (b *backend) serveEcho() {
	defer b.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, src, err := b.echoPC.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b.echoPC.WriteToUDPAddrPort(buf[:n], src)
	}
}

func (b *backend) Close() {
	b.greetLn.Close()
	b.sinkLn.Close()
	b.echoPC.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
