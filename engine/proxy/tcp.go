package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gvs/conn"
	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
)

// tcpConn is one proxied TCP connection.
type tcpConn struct {
	client, server *net.TCPConn
	conn           *ipvs.Conn
	hdr            uint64         // IP + TCP header bytes per segment
	seen           stats.Counters // what TCP_INFO showed at the last account
}

func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(interface{ AddrPort() netip.AddrPort }).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Accept back-off: what net/http's server does.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// acceptor is what serveTCP needs of its listener.
type acceptor interface {
	AcceptTCP() (*net.TCPConn, error)
}

func (e *Engine) serveTCP(ln acceptor) { e.serveTCPMark(ln, 0) }

// serveTCPMark accepts the connections of a listener; mark is the
// firewall mark of the service whose transparent listener it is (0: an
// address-and-port service's listener).
func (e *Engine) serveTCPMark(ln acceptor, mark uint32) {
	var delay time.Duration
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors (EMFILE, ENFILE) the next accept fails
			// too: retrying at once would spin and flood the log.
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			e.ev.acceptError.Add(1)
			e.acceptLog.warn(e.log, "accept failed; backing off", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-e.stop:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		go e.handleTCP(c, mark)
	}
}

// event feeds a socket event to the model as a synthetic packet.
func (e *Engine) event(c *ipvs.Conn, dir conn.Dir, flags conn.TCPFlags) {
	p := ipvs.Packet{Protocol: model.ProtoTCP, TCPFlags: flags, Synthetic: true}
	e.Do(func(v *ipvs.IPVS) {
		if dir == conn.Input {
			p.Src, p.Dst = c.Client, c.Virtual
			v.In(p, e.Now())
		} else {
			p.Src, p.Dst = c.Dest, c.Client
			v.Out(p, e.Now())
		}
	})
}

func (e *Engine) handleTCP(client *net.TCPConn, mark uint32) {
	p := ipvs.Packet{Protocol: model.ProtoTCP, Src: addrPort(client.RemoteAddr()), Dst: addrPort(client.LocalAddr()),
		FWMark: mark, TCPFlags: conn.SYN, Synthetic: true}
	if mark != 0 && p.Dst.Addr().IsLoopback() {
		// A connection to a fwmark service's listener itself, not
		// steered to it: no virtual address to schedule.
		client.SetLinger(0)
		client.Close()
		return
	}
	var c *ipvs.Conn
	var verdict ipvs.Verdict
	var local netip.Addr
	e.Do(func(v *ipvs.IPVS) {
		c, verdict = v.In(p, e.Now())
		if verdict == ipvs.Forward {
			local, _ = v.NextLocalAddr(c)
		}
	})
	if verdict != ipvs.Forward {
		if verdict == ipvs.Deny {
			e.ev.denied.Add(1)
		}
		// No server may take it, its source is not allowed (or the
		// service just went): refuse.
		client.SetLinger(0)
		client.Close()
		return
	}
	tc := &tcpConn{client: client, conn: c, hdr: uint64(ipHeader(p.Src.Addr()) + 20)}
	e.mu.Lock()
	e.tcpConns[tc] = struct{}{}
	e.mu.Unlock()
	defer e.finishTCP(tc)

	d := upstreamDialer(local, model.ProtoTCP)
	sc, err := d.Dial("tcp", c.Dest.String())
	if err != nil {
		// As if the real server answered with a reset.
		e.event(c, conn.Output, conn.RST)
		client.SetLinger(0)
		return
	}
	e.mu.Lock() // Close and the expiry read it under e.mu
	tc.server = sc.(*net.TCPConn)
	e.mu.Unlock()
	e.event(c, conn.Output, conn.SYN|conn.ACK)
	e.event(c, conn.Input, conn.ACK)

	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src *net.TCPConn, dir conn.Dir) {
		defer wg.Done()
		// ReadFrom between TCP sockets splices in the kernel.
		_, err := dst.ReadFrom(src)
		if err != nil && !errors.Is(err, io.EOF) {
			// A reset on either side resets both.
			e.event(c, dir, conn.RST)
			tc.client.SetLinger(0)
			tc.server.SetLinger(0)
			tc.client.Close()
			tc.server.Close()
			return
		}
		dst.CloseWrite()
		e.event(c, dir, conn.FIN|conn.ACK)
	}
	go pipe(tc.server, tc.client, conn.Input)
	go pipe(tc.client, tc.server, conn.Output)
	wg.Wait()
	// The last ACK of the close.
	e.event(c, conn.Input, conn.ACK)
}

func (e *Engine) finishTCP(tc *tcpConn) {
	e.Do(func(v *ipvs.IPVS) {
		e.mu.Lock()
		delete(e.tcpConns, tc)
		e.mu.Unlock()
		tc.account(v, e.Now())
	})
	tc.client.Close()
	if tc.server != nil {
		tc.server.Close()
	}
}

// account adds what the client socket's TCP_INFO shows since the last call.
// The table must be locked.
func (tc *tcpConn) account(v *ipvs.IPVS, clock time.Time) {
	raw, err := tc.client.SyscallConn()
	if err != nil {
		return
	}
	var info *unix.TCPInfo
	raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err != nil || info == nil {
		return
	}
	hdr := tc.hdr
	if info.Options&tcpiOptTimestamps != 0 {
		hdr += 12
	}
	counters := stats.Counters{
		InPkts:   uint64(info.Segs_in),
		OutPkts:  uint64(info.Segs_out),
		InBytes:  info.Bytes_received + uint64(info.Segs_in)*hdr,
		OutBytes: info.Bytes_sent + uint64(info.Segs_out)*hdr,
	}
	if d := counters.Sub(tc.seen); d != (stats.Counters{}) {
		v.Account(tc.conn, d)
		v.Touch(tc.conn, clock)
	}
	tc.seen = counters
}

// tcpiOptTimestamps is TCPI_OPT_TIMESTAMPS of linux/tcp.h.
const tcpiOptTimestamps = 1
