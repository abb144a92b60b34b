package proxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
)

// onePacketWait is how long a one-packet (-o) flow waits for replies.
const onePacketWait = 5 * time.Second

// udpFlow is one client's flow: a connected socket toward its real server.
type udpFlow struct {
	upstream *net.UDPConn
	// until keeps a one-packet flow, which is in no table, open for its
	// replies; zero for flows that live as long as their connection.
	until time.Time
}

func (e *Engine) serveUDP(pc *svcUDP, vip netip.AddrPort) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return
	}
	b := newBatch(udpBatch, 64*1024)
	in := make([]udpDatagram, 0, udpBatch)
	for {
		n, err := b.read(rc)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		in = in[:0]
		for i := range n {
			d, src := b.datagram(i)
			in = append(in, udpDatagram{b: d, src: src})
		}
		e.udpInBatch(in, vip, 0, pc)
	}
}

// udpDatagram is a client's datagram and, once scheduled, its flow.
type udpDatagram struct {
	b    []byte
	src  netip.AddrPort
	flow *udpFlow
}

// udpInBatch is udpIn for datagrams read together: one hold of the
// table's lock for all of them.
func (e *Engine) udpInBatch(in []udpDatagram, vip netip.AddrPort, mark uint32, pc replyConn) {
	denied := 0
	e.Do(func(v *ipvs.IPVS) {
		now := e.Now()
		for i := range in {
			d := &in[i]
			p := ipvs.Packet{Protocol: model.ProtoUDP, Src: d.src, Dst: vip, FWMark: mark, Len: len(d.b) + 8 + ipHeader(d.src.Addr())}
			c, verdict := v.In(p, now)
			if verdict == ipvs.Forward {
				d.flow = e.flowFor(v, c, pc)
			} else if verdict == ipvs.Deny {
				denied++
			}
		}
	})
	for _, d := range in {
		if d.flow != nil {
			d.flow.upstream.Write(d.b)
		}
	}
	if denied > 0 {
		e.ev.denied.Add(uint64(denied))
	}
}

// udpIn handles a client's datagram b for virtual address vip (with
// firewall mark mark, 0 for none): schedules a new flow or finds its
// flow, and sends b on to the real server. Replies go back through pc.
func (e *Engine) udpIn(b []byte, src, vip netip.AddrPort, mark uint32, pc replyConn) {
	p := ipvs.Packet{Protocol: model.ProtoUDP, Src: src, Dst: vip, FWMark: mark, Len: len(b) + 8 + ipHeader(src.Addr())}
	var c *ipvs.Conn
	var verdict ipvs.Verdict
	var f *udpFlow
	e.Do(func(v *ipvs.IPVS) {
		c, verdict = v.In(p, e.Now())
		if verdict == ipvs.Forward {
			f = e.flowFor(v, c, pc)
		}
	})
	if f != nil {
		f.upstream.Write(b)
	} else if verdict == ipvs.Deny {
		e.ev.denied.Add(1)
	}
}

// flowFor returns the flow of connection c, opening it on first use; nil
// (the datagram is dropped, and counted) at the flow limit or when the
// socket cannot be opened. The table is locked.
//
// At the limit the model's entry stays, as IPVS keeps one whose packet
// could not be sent: the client's next datagram tries again.
func (e *Engine) flowFor(v *ipvs.IPVS, c *ipvs.Conn, pc replyConn) *udpFlow {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.flows[c]; f != nil {
		return f
	}
	if len(e.flows) >= e.maxFlows || e.maxSvcFlows > 0 && e.svcFlows[c.Virtual] >= e.maxSvcFlows {
		e.ev.udpFlowLimit.Add(1)
		e.flowLog.warn(e.log, "udp flow limit reached: datagrams of new flows dropped", "service", c.Virtual,
			"flows", len(e.flows), "service_flows", e.svcFlows[c.Virtual])
		return nil
	}
	local, _ := v.NextLocalAddr(c)
	d := upstreamDialer(local, model.ProtoUDP)
	conn, err := d.Dial("udp", c.Dest.String())
	if err != nil {
		e.ev.udpUpstreamError.Add(1)
		e.flowLog.warn(e.log, "udp upstream", "dest", c.Dest, "err", err)
		return nil
	}
	f := &udpFlow{upstream: conn.(*net.UDPConn)}
	if !v.Has(c) {
		f.until = e.Now().Add(onePacketWait)
	}
	e.flows[c] = f
	e.svcFlows[c.Virtual]++
	go e.replies(c, f, pc)
	return f
}

// dropFlow forgets c's flow. e.mu is held.
func (e *Engine) dropFlow(c *ipvs.Conn) {
	delete(e.flows, c)
	if e.svcFlows[c.Virtual]--; e.svcFlows[c.Virtual] <= 0 {
		delete(e.svcFlows, c.Virtual)
	}
}

// replies carries the real server's datagrams back to the client from the
// virtual address.
func (e *Engine) replies(c *ipvs.Conn, f *udpFlow, pc replyConn) {
	buf := make([]byte, 64*1024)
	for {
		n, err := f.upstream.Read(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				continue // e.g. ICMP port unreachable from the server
			}
			return
		}
		p := ipvs.Packet{Protocol: model.ProtoUDP, Src: c.Dest, Dst: c.Client, Len: n + 8 + ipHeader(c.Client.Addr())}
		forward := false
		e.Do(func(v *ipvs.IPVS) {
			if !f.until.IsZero() {
				v.Account(c, stats.Counters{OutPkts: 1, OutBytes: uint64(p.Len)})
				forward = true
				return
			}
			_, verdict := v.Out(p, e.Now())
			forward = verdict == ipvs.Forward
		})
		if forward {
			pc.WriteToUDPAddrPort(buf[:n], c.Client)
		}
	}
}

// replyConn sends replies from a virtual address.
type replyConn interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// svcUDP is a UDP service socket whose replies are sent without Go's
// per-descriptor write lock, on which the flows' reply goroutines would
// queue (and sleep) otherwise; mu keeps the descriptor from being
// closed under a send.
type svcUDP struct {
	*net.UDPConn
	fd     int
	v6     bool
	mu     sync.RWMutex
	closed bool
}

func newSvcUDP(pc *net.UDPConn, v6 bool) (*svcUDP, error) {
	s := &svcUDP{UDPConn: pc, v6: v6}
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := rc.Control(func(fd uintptr) { s.fd = int(fd) }); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *svcUDP) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.UDPConn.Close()
}

// WriteToUDPAddrPort sends b to addr with one sendto. A zoned address
// (link-local), a full send buffer or a closed socket go Go's way.
func (s *svcUDP) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	a := addr.Addr()
	if a.Zone() == "" && a.Is6() == s.v6 {
		s.mu.RLock()
		if !s.closed {
			n, err := sendto(s.fd, b, addr)
			s.mu.RUnlock()
			if err != unix.EAGAIN {
				if err != nil {
					return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: os.NewSyscallError("sendto", err)}
				}
				return n, nil
			}
		} else {
			s.mu.RUnlock()
		}
	}
	return s.UDPConn.WriteToUDPAddrPort(b, addr)
}

// sendto is sendto(2) without allocating a socket address.
func sendto(fd int, b []byte, addr netip.AddrPort) (int, error) {
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	var sa unsafe.Pointer
	var size uintptr
	port := (*[2]byte)(unsafe.Pointer(&sa4.Port))
	if addr.Addr().Is6() {
		sa6.Family = unix.AF_INET6
		sa6.Addr = addr.Addr().As16()
		port = (*[2]byte)(unsafe.Pointer(&sa6.Port))
		sa, size = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	} else {
		sa4.Family = unix.AF_INET
		sa4.Addr = addr.Addr().As4()
		sa, size = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	}
	port[0], port[1] = byte(addr.Port()>>8), byte(addr.Port())
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0, uintptr(sa), size)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}
