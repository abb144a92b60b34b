package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// measurement is one timed run of one test against one peer.
type measurement struct {
	rate     float64 // per second (MB/s for the throughput test)
	ops      int64   // completed operations counted in rate (bytes for throughput)
	started  int64   // connections opened / bytes written / datagrams sent, counted or not
	recv     int64   // datagrams received, counted or not (UDP)
	errs     int64
	firstErr string
	peerCPU  time.Duration // CPU time the peer's processes used in the window
	window   time.Duration
}

// errLog keeps the first error of a run.
type errLog struct {
	n     atomic.Int64
	once  sync.Once
	first string
}

func (e *errLog) add(err error) {
	e.n.Add(1)
	e.once.Do(func() { e.first = err.Error() })
}

// connRate opens, reads and closes connections from workers goroutines for
// d and counts the ones that completed (greeting read up to EOF) within d.
func connRate(target netip.AddrPort, workers int, d time.Duration) measurement {
	var done, started atomic.Int64
	var el errLog
	dialer := net.Dialer{Timeout: 2 * time.Second}
	addr := target.String()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for time.Now().Before(deadline) {
				c, err := dialer.Dial("tcp4", addr)
				if err != nil {
					el.add(err)
					time.Sleep(time.Millisecond)
					continue
				}
				started.Add(1)
				c.SetDeadline(time.Now().Add(2 * time.Second))
				n, err := readFull(c, buf)
				c.Close()
				if err != nil {
					el.add(err)
					continue
				}
				if string(buf[:n]) != string(greeting) {
					el.add(fmt.Errorf("greeting: got %q", buf[:n]))
					continue
				}
				if time.Now().Before(deadline) {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return measurement{rate: float64(done.Load()) / d.Seconds(), ops: done.Load(), started: started.Load(),
		errs: el.n.Load(), firstErr: el.first, window: d}
}

// readFull reads until EOF.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if n == len(buf) {
			return n, errors.New("greeting too long")
		}
	}
}

// throughput streams 64 KiB writes from streams connections and measures
// the bytes the backends' sinks receive during d, after a warm-up.
func throughput(target netip.AddrPort, streams int, d time.Duration, sunk *atomic.Int64, cpu func() time.Duration) measurement {
	var el errLog
	var stop atomic.Bool
	var written atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, streams)
	for range streams {
		c, err := net.DialTimeout("tcp4", target.String(), 2*time.Second)
		if err != nil {
			el.add(err)
			continue
		}
		conns = append(conns, c)
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				n, err := c.Write(buf)
				written.Add(int64(n))
				if err != nil {
					if !stop.Load() {
						el.add(err)
					}
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // warm-up: windows and buffers fill
	s0, c0, t0 := sunk.Load(), cpu(), time.Now()
	time.Sleep(d)
	s1, c1, t1 := sunk.Load(), cpu(), time.Now()
	stop.Store(true)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	win := t1.Sub(t0)
	return measurement{rate: float64(s1-s0) / 1e6 / win.Seconds(), ops: s1 - s0, started: written.Load(),
		errs: el.n.Load(), firstErr: el.first, peerCPU: c1 - c0, window: win}
}

// udpRate runs workers request/response loops of 64-byte datagrams for d
// and counts the responses received within d. A datagram with no answer
// within 200 ms is lost; the worker sends the next one.
func udpRate(target netip.AddrPort, workers int, d time.Duration) measurement {
	var done, sent, recv, lost atomic.Int64
	var el errLog
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(target))
		if err != nil {
			el.add(err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			req := make([]byte, 64)
			resp := make([]byte, 2048)
			binary.BigEndian.PutUint32(req[0:], uint32(w))
			for seq := uint32(1); time.Now().Before(deadline); seq++ {
				binary.BigEndian.PutUint32(req[4:], seq)
				if _, err := c.Write(req); err != nil {
					el.add(err)
					time.Sleep(time.Millisecond)
					continue
				}
				sent.Add(1)
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				for {
					n, err := c.Read(resp)
					if err != nil {
						if errors.Is(err, os.ErrDeadlineExceeded) {
							lost.Add(1)
						} else {
							el.add(err)
						}
						break
					}
					recv.Add(1)
					if n == len(req) && binary.BigEndian.Uint32(resp[4:]) == seq {
						if time.Now().Before(deadline) {
							done.Add(1)
						}
						break
					}
					// A late answer to an earlier, timed-out datagram.
				}
			}
		}()
	}
	wg.Wait()
	m := measurement{rate: float64(done.Load()) / d.Seconds(), ops: done.Load(), started: sent.Load(), recv: recv.Load(),
		errs: el.n.Load(), firstErr: el.first, window: d}
	if l := lost.Load(); l > 0 {
		m.errs += l
		if m.firstErr == "" {
			m.firstErr = fmt.Sprintf("%d datagrams unanswered within 200 ms", l)
		}
	}
	return m
}
