// Command proxybench measures gvsd's userspace proxy engine against HAProxy
// (TCP) and nginx's stream module (TCP and UDP), and against no proxy at
// all, on loopback, in one run: TCP connections/s, TCP MB/s and UDP
// datagrams/s. Every peer balances two backends (Go servers in this
// process) with round robin; the load generator is in this process too.
//
//	go run ./bench/proxybench -bin bin
//
// A peer whose binary is missing is skipped with a message. The results are
// a markdown table on stdout (medians of -repeat runs of -duration each,
// and gvsd's ratio to each peer); progress goes to stderr. Every child
// process runs in its own process group and is killed at exit, on a
// signal, on failure and at -timeout.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	bin         string
	binB        string
	duration    time.Duration
	repeat      int
	connWorkers int
	udpWorkers  int
	streams     int
	peers       []string
	tests       []string
	port        uint16
	threads     int
	timeout     time.Duration
	gvsdArgs    []string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var c config
	var peers, tests string
	var gvsdArgs listFlag
	var port uint
	flag.StringVar(&c.bin, "bin", "bin", "directory with the gvsd and gvsadm binaries (make build)")
	flag.StringVar(&c.binB, "bin-b", "", "directory with another gvsd build, measured as peer gvsd-b (add it to -peers) for an A/B in one run")
	flag.DurationVar(&c.duration, "duration", 3*time.Second, "length of one measurement")
	flag.IntVar(&c.repeat, "repeat", 5, "measurements per test and peer (the median is reported)")
	flag.IntVar(&c.connWorkers, "conn-workers", 32, "concurrent workers of the TCP connections/s test")
	flag.IntVar(&c.udpWorkers, "udp-workers", 32, "concurrent workers (one flow each) of the UDP test")
	flag.IntVar(&c.streams, "streams", 4, "concurrent streams of the TCP MB/s test")
	flag.StringVar(&peers, "peers", "direct,gvsd,haproxy,nginx", "peers to measure, in this order")
	flag.StringVar(&tests, "tests", "conn,mbps,udp", "tests to run: conn, mbps, udp")
	flag.UintVar(&port, "port", 10001, "first of the three ports the proxies listen on (127.77.N.1)")
	flag.IntVar(&c.threads, "threads", runtime.NumCPU(), "HAProxy threads and nginx worker processes (gvsd uses GOMAXPROCS)")
	flag.DurationVar(&c.timeout, "timeout", 20*time.Minute, "abort the whole run after this long")
	flag.Var(&gvsdArgs, "gvsd-arg", "extra argument for gvsd (repeat)")
	flag.Parse()
	c.peers, c.tests, c.port, c.gvsdArgs = strings.Split(peers, ","), strings.Split(tests, ","), uint16(port), gvsdArgs
	if c.repeat < 1 || c.duration <= 0 || c.connWorkers < 1 || c.udpWorkers < 1 || c.streams < 1 {
		fmt.Fprintln(os.Stderr, "proxybench: -repeat, -duration and the worker counts must be positive")
		os.Exit(2)
	}

	// Children die with us: on a signal, at the time limit, on a panic.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "proxybench: %v: stopping\n", s)
		killAll()
		os.Exit(130)
	}()
	timer := time.AfterFunc(c.timeout, func() {
		fmt.Fprintf(os.Stderr, "proxybench: still running after -timeout %v: stopping\n", c.timeout)
		killAll()
		os.Exit(1)
	})
	defer timer.Stop()

	code := func() int {
		defer killAll()
		return run(c, os.Stdout)
	}()
	os.Exit(code)
}

var testNames = map[string]string{
	"conn": "TCP connections/s",
	"mbps": "TCP MB/s",
	"udp":  "UDP datagrams/s",
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func run(c config, out io.Writer) int {
	dir, err := os.MkdirTemp("", "proxybench-")
	if err != nil {
		logf("proxybench: %v", err)
		return 1
	}
	failed := false
	defer func() {
		if failed {
			logf("proxybench: logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	var sunk atomic.Int64
	var backends []*backend
	for _, a := range []string{"127.77.0.1", "127.77.0.2"} {
		b, err := startBackend(netip.MustParseAddr(a), &sunk)
		if err != nil {
			logf("proxybench: backend %s: %v", a, err)
			failed = true
			return 1
		}
		defer b.Close()
		backends = append(backends, b)
	}

	var ps []*peer
	var skipped []string
	var gvsd *gvsdPeer
	var gvsdPeerP *peer
	for i, id := range c.peers {
		s := vip(fmt.Sprintf("127.77.%d.1", i+1), c.port) // backends are 127.77.0.x
		pdir := dir + "/" + id
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			logf("proxybench: %v", err)
			failed = true
			return 1
		}
		var p *peer
		var err error
		switch id {
		case "direct":
			b := backends[0]
			p = &peer{id: id, label: "no proxy", greet: b.greet, sink: b.sink, echo: b.echo}
		case "gvsd":
			p, gvsd, err = startGVSD(c.bin, pdir, s, backends, c.gvsdArgs)
			gvsdPeerP = p
		case "gvsd-b":
			if c.binB == "" {
				logf("proxybench: peer gvsd-b needs -bin-b")
				return 2
			}
			p, _, err = startGVSD(c.binB, pdir, s, backends, c.gvsdArgs)
			if p != nil {
				p.id, p.label = "gvsd-b", "gvsd proxy (B: "+c.binB+")"
			}
		case "haproxy":
			p, err = startHAProxy(pdir, s, backends, c.threads)
		case "nginx":
			p, err = startNginx(pdir, s, backends, c.threads)
		default:
			logf("proxybench: unknown peer %q (direct, gvsd, gvsd-b, haproxy, nginx)", id)
			return 2
		}
		if err != nil {
			msg := fmt.Sprintf("%s skipped: %v", id, err)
			logf("proxybench: %s", msg)
			skipped = append(skipped, strings.SplitN(msg, "\n", 2)[0])
			if p != nil && p.proc != nil {
				// It exists but does not work: that is a failure, not a skip.
				p.proc.stop(3 * time.Second)
				failed = true
			}
			if id == "gvsd" {
				gvsd, gvsdPeerP = nil, nil
			}
			continue
		}
		ps = append(ps, p)
		echo := "none"
		if p.echo.IsValid() {
			echo = p.echo.String()
		}
		logf("proxybench: %s ready (greet %s, sink %s, echo %s)", p.label, p.greet, p.sink, echo)
	}
	if len(ps) == 0 {
		logf("proxybench: no peer to measure")
		return 1
	}
	var before gvsdState
	if gvsd != nil {
		before = gvsdSnapshot(gvsd, gvsdPeerP)
	}

	// results[test][peer id] = one measurement per round. Rounds go over
	// every peer in turn, so that a slow drift of the machine (other load
	// on shared CPUs) spreads over all peers alike.
	results := map[string]map[string][]measurement{}
	totals := map[string]map[string]*measurement{} // everything sent, for gvsd's counters
	for _, t := range c.tests {
		if _, ok := testNames[t]; !ok {
			logf("proxybench: unknown test %q (conn, mbps, udp)", t)
			return 2
		}
		results[t] = map[string][]measurement{}
		totals[t] = map[string]*measurement{}
	}
	start := time.Now()
	for r := 1; r <= c.repeat; r++ {
		for _, t := range c.tests {
			for _, p := range ps {
				var m measurement
				switch t {
				case "conn":
					c0 := p.cpu()
					m = connRate(p.greet, c.connWorkers, c.duration)
					m.peerCPU = p.cpu() - c0
				case "mbps":
					m = throughput(p.sink, c.streams, c.duration, &sunk, p.cpu)
				case "udp":
					if !p.echo.IsValid() {
						continue
					}
					c0 := p.cpu()
					m = udpRate(p.echo, c.udpWorkers, c.duration)
					m.peerCPU = p.cpu() - c0
				}
				results[t][p.id] = append(results[t][p.id], m)
				tot := totals[t][p.id]
				if tot == nil {
					tot = &measurement{}
					totals[t][p.id] = tot
				}
				tot.started += m.started
				tot.ops += m.ops
				tot.recv += m.recv
				tot.errs += m.errs
				note := ""
				if m.errs > 0 {
					note = fmt.Sprintf(" (%d errors, first: %s)", m.errs, m.firstErr)
				}
				logf("[%d/%d %4.0fs] %-4s %-22s %12.1f%s", r, c.repeat, time.Since(start).Seconds(), t, p.label, m.rate, note)
				if p.proc != nil && p.proc.exited() {
					logf("proxybench: %s died: %v\n%s", p.label, p.proc.err, p.proc.tail(20))
					failed = true
					return 1
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}

	printTables(out, c, ps, results, skipped)
	if gvsd != nil {
		time.Sleep(500 * time.Millisecond) // let the last connections close
		if !gvsdReport(out, gvsd, gvsdPeerP, before, totals, c.streams) {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rates(ms []measurement) []float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = m.rate
	}
	return v
}

// fmtRate prints a rate with thousands separators, or one decimal under 100.
func fmtRate(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

func testLabel(c config, t string) string {
	switch t {
	case "conn":
		return fmt.Sprintf("TCP connections/s (%d workers)", c.connWorkers)
	case "mbps":
		return fmt.Sprintf("TCP MB/s (%d streams, 64 KiB writes)", c.streams)
	}
	return fmt.Sprintf("UDP datagrams/s (%d flows, 64 B echo)", c.udpWorkers)
}

func printTables(out io.Writer, c config, ps []*peer, results map[string]map[string][]measurement, skipped []string) {
	var g *peer
	var others []*peer
	for _, p := range ps {
		if p.id == "gvsd" {
			g = p
		} else {
			others = append(others, p)
		}
	}
	fmt.Fprintf(out, "Medians of %d runs of %v each (MB = 10^6 bytes, counted at the backends); each peer balances 2 backends round robin.\n\n", c.repeat, c.duration)
	hdr := "| test |"
	sep := "|---|"
	for _, p := range ps {
		hdr += " " + p.label + " |"
		sep += "--:|"
	}
	if g != nil {
		for _, p := range others {
			hdr += " gvsd / " + p.short() + " |"
			sep += "--:|"
		}
	}
	fmt.Fprintln(out, hdr)
	fmt.Fprintln(out, sep)
	for _, t := range c.tests {
		row := "| " + testLabel(c, t) + " |"
		for _, p := range ps {
			if ms := results[t][p.id]; len(ms) > 0 {
				row += " " + fmtRate(median(rates(ms))) + " |"
			} else {
				row += " — |"
			}
		}
		if g != nil {
			gm := results[t]["gvsd"]
			for _, p := range others {
				pm := results[t][p.id]
				if len(gm) == 0 || len(pm) == 0 || median(rates(pm)) == 0 {
					row += " — |"
					continue
				}
				row += fmt.Sprintf(" %.2f |", median(rates(gm))/median(rates(pm)))
			}
		}
		fmt.Fprintln(out, row)
	}

	// Spread and the peer's CPU cost, to read the medians by.
	fmt.Fprintf(out, "\nSpread (min–max of the %d runs), errors summed over the runs, and the proxy's CPU time per operation (median; and CPU cores it used):\n\n", c.repeat)
	hdr, sep = "| test |", "|---|"
	for _, p := range ps {
		hdr += " " + p.label + " |"
		sep += "---|"
	}
	fmt.Fprintln(out, hdr)
	fmt.Fprintln(out, sep)
	for _, t := range c.tests {
		unit := map[string]string{"conn": "conn", "mbps": "MB", "udp": "datagram"}[t]
		row := "| " + testLabel(c, t) + " |"
		for _, p := range ps {
			ms := results[t][p.id]
			if len(ms) == 0 {
				row += " — |"
				continue
			}
			v := rates(ms)
			var errs int64
			var perOp, cores []float64
			for _, m := range ms {
				errs += m.errs
				if m.ops > 0 && p.proc != nil {
					n := float64(m.ops)
					if t == "mbps" {
						n /= 1e6
					}
					perOp = append(perOp, float64(m.peerCPU.Microseconds())/n)
					cores = append(cores, m.peerCPU.Seconds()/m.window.Seconds())
				}
			}
			cell := fmtRate(slices.Min(v)) + "–" + fmtRate(slices.Max(v))
			if errs > 0 {
				cell += fmt.Sprintf(", %d err", errs)
			}
			if len(perOp) > 0 {
				cell += fmt.Sprintf("; %.1f µs/%s (%.2f cores)", median(perOp), unit, median(cores))
			}
			row += " " + cell + " |"
		}
		fmt.Fprintln(out, row)
	}
	if len(skipped) > 0 {
		fmt.Fprintln(out)
		for _, s := range skipped {
			fmt.Fprintf(out, "- %s\n", s)
		}
	}
}
