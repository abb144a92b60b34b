package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The flood benchmark's network (-flood), its own namespaces:
//
//	cli: c0 198.18.0.1/24  <->  dir: d0 198.18.0.2/24 + VIP 198.18.0.100/32
//	fl:  f0 198.18.4.1/24  <->  dir: d4 198.18.4.2/24
//	                            dir: d1 198.18.11.1/24 <-> srv1: e0 198.18.11.2/24
//	                            dir: d2 198.18.12.1/24 <-> srv2: e0 198.18.12.2/24
//	                            dir: d3 198.18.13.1/24 <-> srv3: e0 198.18.13.2/24
//
// cli holds the legitimate clients (real sockets), fl the flood source
// (pktgen on f0, spoofing sources of -flood-prefix), which reaches the
// director by a link of its own (as from another part of the Internet;
// -flood-shared-link sends it from cli over c0 instead). The director is
// gvsd (xdp engine on d0-d4) or nftables DNAT; each server has the VIP
// on lo (DR), its default route through the director (NAT's replies;
// DR's go through the director's kernel forwarding, as to any gateway),
// and a Go server on port 80. Replies to spoofed sources are routed back
// to the flood's side, which drops them (it does not forward). All
// neighbours are permanent.
const (
	fVIP    = "198.18.0.100"
	fClient = "198.18.0.1"
	fDirIP  = "198.18.0.2"
	fFlood  = "198.18.4.1" // f0
	fDirFl  = "198.18.4.2" // d4
	fPort   = 80
	fNSrv   = 3
)

func fSrvIP(i int) string { return fmt.Sprintf("198.18.%d.2", 11+i) }
func fGwIP(i int) string  { return fmt.Sprintf("198.18.%d.1", 11+i) }

type floodTopo struct {
	prefix   string
	cli, dir string
	fl       string // the flood's namespace
	// floodNS, floodIf, floodDst: where the flood leaves from and the
	// MAC it is sent to (f0 to d4, or c0 to d0 with -flood-shared-link).
	floodNS, floodIf string
	floodDst         net.HardwareAddr
	srv              []string
	macs             map[string]net.HardwareAddr // c0, d0..d3, e0 of srv i as "e1".."e3"
	destroyed        bool
	servers          []net.Listener
	xferBytes        atomic.Uint64 // bytes the servers have read from bulk transfers
}

// nsx is a command in namespace ns with nsenter (ip netns exec would
// remount /sys).
func nsx(ns string, args ...string) []string {
	return append([]string{"nsenter", "--net=/run/netns/" + ns}, args...)
}

func newFloodTopo(floodPrefix string, sharedLink bool) *floodTopo {
	b := make([]byte, 3)
	rand.Read(b)
	p := "gvsf" + hex.EncodeToString(b)
	t := &floodTopo{prefix: p, cli: p + "-cli", dir: p + "-dir", fl: p + "-fl", macs: map[string]net.HardwareAddr{}}
	for i := range fNSrv {
		t.srv = append(t.srv, fmt.Sprintf("%s-srv%d", p, i+1))
	}
	cleanups = append(cleanups, t.destroy)
	all := append([]string{t.cli, t.dir, t.fl}, t.srv...)
	for _, ns := range all {
		must("ip", "netns", "add", ns)
		must("ip", "-n", ns, "link", "set", "lo", "up")
	}
	pair := func(a, nsA, b, nsB string) {
		must("ip", "link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB)
		for _, x := range [][2]string{{a, nsA}, {b, nsB}} {
			must("ip", "-n", x[1], "link", "set", x[0], "up")
		}
	}
	addr := func(ns, dev, cidr string) { must("ip", "-n", ns, "addr", "add", cidr, "dev", dev) }
	pair("c0", t.cli, "d0", t.dir)
	addr(t.cli, "c0", fClient+"/24")
	addr(t.dir, "d0", fDirIP+"/24")
	addr(t.dir, "d0", fVIP+"/32")
	pair("f0", t.fl, "d4", t.dir)
	addr(t.fl, "f0", fFlood+"/24")
	addr(t.dir, "d4", fDirFl+"/24")
	dirSysctl := []string{"sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.forwarding=1",
		"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.d0.rp_filter=0",
		"net.ipv4.conf.d0.forwarding=1", "net.ipv4.conf.d4.rp_filter=0", "net.ipv4.conf.d4.forwarding=1"}
	for i, ns := range t.srv {
		d := fmt.Sprintf("d%d", i+1)
		pair(d, t.dir, "e0", ns)
		addr(t.dir, d, fGwIP(i)+"/24")
		addr(ns, "e0", fSrvIP(i)+"/24")
		addr(ns, "lo", fVIP+"/32")
		must("ip", "-n", ns, "route", "add", "default", "via", fGwIP(i))
		must(nsx(ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")...)
		// DR's replies come from the VIP, a local address of the
		// director: accept_local lets it forward them.
		dirSysctl = append(dirSysctl, "net.ipv4.conf."+d+".forwarding=1", "net.ipv4.conf."+d+".rp_filter=0",
			"net.ipv4.conf."+d+".accept_local=1")
	}
	must(nsx(t.dir, dirSysctl...)...)
	// Replies to the spoofed sources go back to the flood's side, which
	// drops them.
	if sharedLink {
		must("ip", "-n", t.dir, "route", "add", floodPrefix, "via", fClient, "dev", "d0")
	} else {
		must("ip", "-n", t.dir, "route", "add", floodPrefix, "via", fFlood, "dev", "d4")
	}
	// Checksums in the packets (as a NIC would have filled them in: the
	// director's XDP sees and rewrites real ones); GRO on the hosts, the
	// NAPI that veth needs to take XDP_TX and redirected frames.
	for _, x := range [][2]string{{"c0", t.cli}, {"f0", t.fl}, {"e0", t.srv[0]}, {"e0", t.srv[1]}, {"e0", t.srv[2]}} {
		must(nsx(x[1], "ethtool", "-K", x[0], "tx", "off", "gro", "on")...)
	}
	for i := range fNSrv + 2 {
		must(nsx(t.dir, "ethtool", "-K", fmt.Sprintf("d%d", i), "tx", "off")...)
	}
	mac := func(ns, dev string) net.HardwareAddr {
		var m net.HardwareAddr
		if err := inNS(ns, func() error {
			ifi, err := net.InterfaceByName(dev)
			if err == nil {
				m = ifi.HardwareAddr
			}
			return err
		}); err != nil {
			fatal(err)
		}
		return m
	}
	t.macs["c0"] = mac(t.cli, "c0")
	t.macs["f0"] = mac(t.fl, "f0")
	for i := range fNSrv + 2 {
		t.macs[fmt.Sprintf("d%d", i)] = mac(t.dir, fmt.Sprintf("d%d", i))
	}
	neigh := func(ns, ip, m, dev string) {
		must("ip", "-n", ns, "neigh", "replace", ip, "lladdr", m, "dev", dev, "nud", "permanent")
	}
	neigh(t.cli, fVIP, t.macs["d0"].String(), "c0")
	neigh(t.cli, fDirIP, t.macs["d0"].String(), "c0")
	neigh(t.dir, fClient, t.macs["c0"].String(), "d0")
	neigh(t.dir, fFlood, t.macs["f0"].String(), "d4")
	t.floodNS, t.floodIf, t.floodDst = t.fl, "f0", t.macs["d4"]
	if sharedLink {
		t.floodNS, t.floodIf, t.floodDst = t.cli, "c0", t.macs["d0"]
	}
	for i, ns := range t.srv {
		e := mac(ns, "e0")
		t.macs[fmt.Sprintf("e%d", i+1)] = e
		d := fmt.Sprintf("d%d", i+1)
		neigh(t.dir, fSrvIP(i), e.String(), d)
		neigh(ns, fGwIP(i), t.macs[d].String(), "e0")
	}
	t.startServers()
	return t
}

func (t *floodTopo) destroy() {
	if t.destroyed {
		return
	}
	t.destroyed = true
	for _, l := range t.servers {
		l.Close()
	}
	for _, ns := range append([]string{t.cli, t.dir, t.fl}, t.srv...) {
		run("ip", "netns", "del", ns)
	}
}

// pattern is what a bulk transfer carries: pattern[i % len].
var pattern = func() []byte {
	b := make([]byte, 1<<20)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// startServers runs a server on port 80 of every server namespace:
// after a first byte 'h' it answers "hello srvN\n" and closes; after
// 'b' it reads a bulk transfer, checks it against pattern, counts it in
// xferBytes, and at the end answers "<bytes> ok" (or "bad at <offset>").
func (t *floodTopo) startServers() {
	for i, ns := range t.srv {
		var l net.Listener
		if err := inNS(ns, func() (err error) {
			l, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", fPort))
			return err
		}); err != nil {
			fatal(err)
		}
		t.servers = append(t.servers, l)
		name := fmt.Sprintf("srv%d", i+1)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go t.serve(c, name)
			}
		}()
	}
}

func (t *floodTopo) serve(c net.Conn, name string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var cmd [1]byte
	if _, err := io.ReadFull(c, cmd[:]); err != nil {
		return
	}
	if cmd[0] == 'h' {
		fmt.Fprintf(c, "hello %s\n", name)
		return
	}
	buf := make([]byte, 64<<10)
	var off uint64
	bad := int64(-1)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if bad < 0 {
				for j := 0; j < n; {
					p := int((off + uint64(j)) % uint64(len(pattern)))
					k := min(n-j, len(pattern)-p)
					if !bytes.Equal(buf[j:j+k], pattern[p:p+k]) {
						bad = int64(off) + int64(j)
						break
					}
					j += k
				}
			}
			off += uint64(n)
			t.xferBytes.Add(uint64(n))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	if bad >= 0 {
		fmt.Fprintf(c, "%d bad at %d\n", off, bad)
	} else {
		fmt.Fprintf(c, "%d ok\n", off)
	}
}

// dialVIP connects from the client namespace to the VIP.
func (t *floodTopo) dialVIP(timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(t.cli, func() (err error) {
		c, err = net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", fVIP, fPort), timeout)
		return err
	})
	return c, err
}

// xfer is a bulk transfer from the client to a server through the
// director, at rate bytes/s (0: as fast as it goes).
type xfer struct {
	c       net.Conn
	written atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	err     error
	verdict string
}

func (t *floodTopo) startXfer(rate float64) (*xfer, error) {
	c, err := t.dialVIP(2 * time.Second)
	if err != nil {
		return nil, err
	}
	x := &xfer{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(x.done)
		defer c.Close()
		if _, x.err = c.Write([]byte{'b'}); x.err != nil {
			return
		}
		start := time.Now()
		var off int
		const chunk = 64 << 10
	loop:
		for {
			select {
			case <-x.stop:
				break loop
			default:
			}
			if rate > 0 {
				ahead := time.Duration(float64(x.written.Load())/rate*1e9) - time.Since(start)
				if ahead > 0 {
					time.Sleep(ahead)
				}
			}
			p := off % len(pattern)
			n := min(chunk, len(pattern)-p)
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			m, err := c.Write(pattern[p : p+n])
			off += m
			x.written.Add(uint64(m))
			if err != nil {
				x.err = err
				return
			}
		}
		if x.err = c.(*net.TCPConn).CloseWrite(); x.err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		x.verdict = strings.TrimSpace(string(b))
		if err != nil {
			x.err = err
		}
	}()
	return x, nil
}

// finish stops the transfer and says whether the server got every byte
// written, in order and intact.
func (x *xfer) finish() (exact bool, why string) {
	close(x.stop)
	<-x.done
	want := fmt.Sprintf("%d ok", x.written.Load())
	switch {
	case x.err != nil:
		return false, x.err.Error()
	case x.verdict != want:
		return false, fmt.Sprintf("server: %q, client wrote %d", x.verdict, x.written.Load())
	}
	return true, ""
}

// legitResult is what happened to the legitimate connections.
type legitResult struct {
	ok      int
	n       int
	errs    map[string]int
	latency []time.Duration // of the successful ones
}

// legit opens n connections from the client namespace, one every
// interval, each with connect timeout and then timeout for sending a
// request and reading the whole answer.
func (t *floodTopo) legit(n int, interval, timeout time.Duration) legitResult {
	r := legitResult{n: n, errs: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			why := ""
			c, err := t.dialVIP(timeout)
			if err != nil {
				why = classify("connect", err)
			} else {
				c.SetDeadline(time.Now().Add(timeout))
				var b []byte
				if _, err = c.Write([]byte{'h'}); err == nil {
					b, err = io.ReadAll(c)
				}
				c.Close()
				if err != nil {
					why = classify("answer", err)
				} else if !strings.HasPrefix(string(b), "hello srv") {
					why = "wrong answer"
				}
			}
			mu.Lock()
			if why == "" {
				r.ok++
				r.latency = append(r.latency, time.Since(start))
			} else {
				r.errs[why]++
			}
			mu.Unlock()
		}()
		if i < n-1 {
			time.Sleep(interval)
		}
	}
	wg.Wait()
	return r
}

func classify(stage string, err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "refused"):
		return stage + ": refused"
	case strings.Contains(s, "timeout"):
		return stage + ": timeout"
	case strings.Contains(s, "reset"):
		return stage + ": reset"
	}
	return stage + ": " + s
}
