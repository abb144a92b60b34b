package proxy

import (
	"cmp"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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
	var tc *tcpConn
	var verdict ipvs.Verdict
	var local netip.Addr
	e.Do(func(v *ipvs.IPVS) {
		c, verdict = v.In(p, e.Now())
		if verdict == ipvs.Forward {
			local, _ = v.NextLocalAddr(c)
			tc = &tcpConn{client: client, conn: c, hdr: uint64(ipHeader(p.Src.Addr()) + 20)}
			e.mu.Lock()
			e.tcpConns[tc] = struct{}{}
			e.mu.Unlock()
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
	var last lastEvents

	d := upstreamDialer(local, model.ProtoTCP)
	sc, err := d.Dial("tcp", c.Dest.String())
	if err != nil {
		// As if the real server answered with a reset.
		e.event(c, conn.Output, conn.RST)
		client.SetLinger(0)
		e.finishTCP(tc, last)
		return
	}
	e.mu.Lock() // Close and the expiry read it under e.mu
	tc.server = sc.(*net.TCPConn)
	e.mu.Unlock()
	e.Do(func(v *ipvs.IPVS) {
		now := e.Now()
		v.Out(ipvs.Packet{Protocol: model.ProtoTCP, Src: c.Dest, Dst: c.Client, TCPFlags: conn.SYN | conn.ACK, Synthetic: true}, now)
		v.In(ipvs.Packet{Protocol: model.ProtoTCP, Src: c.Client, Dst: c.Virtual, TCPFlags: conn.ACK, Synthetic: true}, now)
	})

	// ended counts the directions that reached EOF. The second to end
	// leaves the server socket's FIN to the close, as nothing more is to
	// be sent, and its FIN event to finishTCP's lock.
	var ended atomic.Int32
	pipe := func(dst, src *net.TCPConn, dir conn.Dir) {
		second, err := relay(dst, src, dir == conn.Output, dir == conn.Input, &ended)
		if err != nil {
			// A reset on either side resets both.
			e.event(c, dir, conn.RST)
			tc.client.SetLinger(0)
			tc.server.SetLinger(0)
			tc.client.Close()
			tc.server.Close()
			return
		}
		if second {
			last.fin, last.finDir = true, dir
			return
		}
		e.event(c, dir, conn.FIN|conn.ACK)
	}
	// The direction that ends last finishes the connection: no goroutine
	// waits for the other.
	var exited atomic.Int32
	run := func(dst, src *net.TCPConn, dir conn.Dir) {
		pipe(dst, src, dir)
		if exited.Add(1) == 2 {
			last.ack = true
			e.finishTCP(tc, last)
		}
	}
	go run(tc.server, tc.client, conn.Input)
	run(tc.client, tc.server, conn.Output)
}

// lastEvents are the socket events left for finishTCP to feed.
type lastEvents struct {
	fin    bool     // the FIN of the second side to close...
	finDir conn.Dir // ...from this side
	ack    bool     // the client's last ACK of the close
}

// finishTCP feeds the last events, forgets tc, accounts it and closes its
// sockets.
func (e *Engine) finishTCP(tc *tcpConn, last lastEvents) {
	e.Do(func(v *ipvs.IPVS) {
		now := e.Now()
		c := tc.conn
		if last.fin {
			if last.finDir == conn.Input {
				v.In(ipvs.Packet{Protocol: model.ProtoTCP, Src: c.Client, Dst: c.Virtual, TCPFlags: conn.FIN | conn.ACK, Synthetic: true}, now)
			} else {
				v.Out(ipvs.Packet{Protocol: model.ProtoTCP, Src: c.Dest, Dst: c.Client, TCPFlags: conn.FIN | conn.ACK, Synthetic: true}, now)
			}
		}
		if last.ack {
			v.In(ipvs.Packet{Protocol: model.ProtoTCP, Src: c.Client, Dst: c.Virtual, TCPFlags: conn.ACK, Synthetic: true}, now)
		}
		e.mu.Lock()
		delete(e.tcpConns, tc)
		e.mu.Unlock()
		tc.account(v, now)
	})
	tc.client.Close()
	if tc.server != nil {
		tc.server.Close()
	}
}

// A direction copies through a user-space buffer first and splices in
// the kernel only after spliceAfter bytes: most connections end before,
// and a copy costs no pipe and lets the last data and the FIN go in one
// segment.
const (
	copyBufSize = 16 << 10
	spliceAfter = 64 << 10
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// relay copies src to dst until src's EOF, counts it in ended and shuts
// dst's write side; second says whether the other direction had ended
// before. With lazyFIN the second direction to end leaves the FIN to the
// close. A non-nil error is a reset or a closed socket. mergeFIN lets the
// last data found with the EOF go out with the FIN in one segment. Both
// are for one side only: the client's FIN must be sent before TCP_INFO
// is read for the counters.
func relay(dst, src *net.TCPConn, mergeFIN, lazyFIN bool, ended *atomic.Int32) (second bool, err error) {
	if err := copyFirst(dst, src, mergeFIN); err != nil {
		if err == errEOF {
			return closeWrite(dst, lazyFIN, ended), nil
		}
		return false, err
	}
	// A long stream: splice in the kernel from here.
	if _, err := dst.ReadFrom(src); err != nil {
		return false, err
	}
	return closeWrite(dst, lazyFIN, ended), nil
}

// errEOF ends copyFirst at src's EOF (with everything sent and, with
// mergeFIN, the last of it held for the FIN).
var errEOF = errors.New("EOF")

// copyFirst copies the first spliceAfter bytes of src to dst through a
// user-space buffer; nil means there may be more.
func copyFirst(dst, src *net.TCPConn, mergeFIN bool) error {
	rs, err := src.SyscallConn()
	if err != nil {
		return err
	}
	ws, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for total := 0; total < spliceAfter; {
		n, err := recv(rs, buf, true)
		if err != nil {
			return err
		}
		if n == 0 {
			return errEOF
		}
		// Is the EOF (or more data) already queued? Then the data can
		// go with the FIN.
		eof := false
		var peekErr error
		if mergeFIN && n < len(buf) {
			m, err := recv(rs, buf[n:], false)
			switch {
			case err != nil:
				peekErr = err // a reset: the data first, then the error
			case m == 0:
				eof = true
			case m > 0:
				n += m
			}
		}
		flags := 0
		if eof {
			flags = unix.MSG_MORE // held until the shutdown: data and FIN in one segment
		}
		if err := cmp.Or(send(ws, buf[:n], flags), peekErr); err != nil {
			return err
		}
		if eof {
			return errEOF
		}
		total += n
	}
	return nil
}

func closeWrite(c *net.TCPConn, lazyFIN bool, ended *atomic.Int32) (second bool) {
	second = ended.Add(1) == 2
	if !second || !lazyFIN {
		c.CloseWrite()
	}
	return second
}

// recv reads into b once. With wait it waits for data or the EOF (n 0);
// without it n is -1 when nothing is queued.
func recv(rc syscall.RawConn, b []byte, wait bool) (n int, err error) {
	cerr := rc.Read(func(fd uintptr) bool {
		for {
			n, err = unix.Read(int(fd), b)
			if err != unix.EINTR {
				break
			}
		}
		if err == unix.EAGAIN {
			n, err = -1, nil
			return !wait
		}
		return true
	})
	if cerr != nil {
		return 0, cerr
	}
	if err != nil {
		return 0, os.NewSyscallError("read", err)
	}
	return n, nil
}

// send writes all of b, waiting for room as needed.
func send(wc syscall.RawConn, b []byte, flags int) error {
	var err error
	cerr := wc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			var n int
			n, err = unix.SendmsgN(int(fd), b, nil, nil, flags|unix.MSG_NOSIGNAL)
			switch err {
			case nil:
				b = b[n:]
			case unix.EINTR:
			case unix.EAGAIN:
				err = nil
				return false
			default:
				return true
			}
		}
		return true
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("sendmsg", err)
	}
	return nil
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
