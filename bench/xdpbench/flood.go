package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"gvs/bench/pktgen"
)

// The flood benchmark (-flood): legitimate connections and an
// established transfer through a director under a spoofed SYN flood,
// gvs's xdp engine (DR and NAT, a small connection table) against
// nftables DNAT with conntrack, on one topology (floodtopo.go). Each
// measurement:
//
//  1. starts the director fresh (empty tables) and a bulk transfer from
//     the client to a server through it, at -flood-xfer-rate;
//  2. after 1 s, starts the flood: pktgen on f0 (or c0), spoofed sources of
//     -flood-prefix, to VIP:80, as fast as the generator goes;
//  3. after -flood-ramp, and once the director's table is full (gvs:
//     it has refused or evicted for room; nftables: conntrack holds 99%
//     of nf_conntrack_max) or -flood-fill-max has passed, opens -flood-conns
//     connections from the client's real sockets, one every
//     -flood-interval, each with -flood-timeout to connect and as much
//     again to send a request and read the answer;
//  4. stops the flood when the last has ended, lets the transfer run
//     0.5 s more, ends it and checks it byte for byte at the server;
//  5. reads the director's counters.
//
// The same without a flood is each director's baseline in the round.
type floodOptions struct {
	runs       int
	conns      int
	interval   time.Duration
	timeout    time.Duration
	ramp       time.Duration
	fillMax    time.Duration
	maxConns   string // gvsd --max-conns, comma-separated: gvs is measured with each
	prefix     string
	xferRate   float64 // MB/s, 0: unlimited
	sharedLink bool    // the flood from the client's namespace, over c0
	only       string
}

// floodDirector is a director under test.
type floodDirector struct {
	name string
	gens []string // the floods it can take
	up   func()
	down func()
	// snap reads its counters; report says what happened between two
	// snapshots, taken the SYNs it received in that time.
	snap   func() map[string]float64
	report func(a, b map[string]float64) (taken float64, counters string)
	// full says whether the director's table is full (nil: fill for
	// -flood-ramp only).
	full func() bool
}

type floodSample struct {
	sentPPS, takenPPS float64
	fill              time.Duration // flood before the legitimate connections
	legit             legitResult
	xferBefore        float64 // MB/s before the flood
	xferDuring        float64 // during it
	exact             bool
	why               string
	counters          string
	srvRxPPS          float64 // packets the servers' IP layers received per second meanwhile
}

type floodRow struct {
	director, gen string
	s             []floodSample
}

const (
	genNone = "none"
	genLive = "live frames"
	genPkt  = "AF_PACKET"
)

func runFlood(o floodOptions, bin string) []floodRow {
	prefix, err := netip.ParsePrefix(o.prefix)
	if err != nil || !prefix.Addr().Is4() {
		fatal(fmt.Errorf("-flood-prefix %q: an IPv4 prefix", o.prefix))
	}
	t := newFloodTopo(o.prefix, o.sharedLink)
	g := newGvsd(&topo{prefix: t.prefix, dir: t.dir}, bin)
	g.ifaces = []string{"d0", "d1", "d2", "d3", "d4"}
	var dirs []floodDirector
	sizes := strings.Split(o.maxConns, ",")
	for _, size := range sizes {
		n, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-flood-max-conns %q: sizes of gvsd's table, comma-separated", o.maxConns))
		}
		suffix := ""
		if len(sizes) > 1 {
			suffix = fmt.Sprintf(" (%d)", n)
		}
		dirs = append(dirs, gvsDirector(g, "gvs DR"+suffix, "-g", n), gvsDirector(g, "gvs NAT"+suffix, "-m", n))
	}
	if _, err := exec.LookPath("nft"); err == nil {
		dirs = append(dirs, nftDirector(t))
	} else {
		progress("nft not installed: the nftables peer is skipped (scripts/install-deps.sh --bench)")
	}
	var rows []floodRow
	for _, d := range dirs {
		for _, gen := range append([]string{genNone}, d.gens...) {
			if o.only == "" || strings.Contains(d.name+", "+gen, o.only) || gen == genNone && strings.Contains(o.only, d.name) {
				rows = append(rows, floodRow{director: d.name, gen: gen})
			}
		}
	}
	byName := map[string]floodDirector{}
	for _, d := range dirs {
		byName[d.name] = d
	}
	var cal []genRate
	for r := range o.runs {
		cal = append(cal, calibrate(t, prefix, r+1, o.runs)...)
		for i := range rows {
			runtime.GC()
			s := measureFlood(t, byName[rows[i].director], rows[i].gen, prefix, o)
			rows[i].s = append(rows[i].s, s)
			progress("round %d/%d  %-14s flood %-11s  sent %8.0f/s taken %8.0f/s  legit %3d/%d %v  xfer %.1f -> %.1f MB/s exact=%v %s",
				r+1, o.runs, rows[i].director, rows[i].gen, s.sentPPS, s.takenPPS, s.legit.ok, s.legit.n, s.legit.errs,
				s.xferBefore, s.xferDuring, s.exact, s.why)
			progress("    %s", s.counters)
		}
	}
	floodCal = cal
	return rows
}

// genRate is one generator's rate straight into an XDP program on the
// director's interface that counts and drops (no director): the most it
// delivers here.
type genRate struct {
	gen            string
	sent, received float64 // frames per second
}

// floodCal is the last runFlood's generator rates.
var floodCal []genRate

func calibrate(t *floodTopo, prefix netip.Prefix, r, runs int) []genRate {
	sinkIf := "d4"
	if t.floodIf == "c0" {
		sinkIf = "d0"
	}
	c, err := pktgen.StartCapture("/run/netns/"+t.dir, sinkIf)
	if err != nil {
		fatal(err)
	}
	defer c.Close()
	var out []genRate
	for _, gen := range []string{genLive, genPkt} {
		method := pktgen.AFPacket
		if gen == genLive {
			method = pktgen.LiveFrames
		}
		n0, _ := c.Count()
		start := time.Now()
		sent, err := pktgen.SYNFlood(context.Background(), pktgen.Flood{NetNS: "/run/netns/" + t.floodNS, Iface: t.floodIf, DstMAC: t.floodDst,
			SrcPrefix: prefix, Dst: netip.MustParseAddrPort(fmt.Sprintf("%s:%d", fVIP, fPort)), Method: method, Duration: time.Second})
		if err != nil {
			fatal(err)
		}
		el := time.Since(start)
		time.Sleep(20 * time.Millisecond)
		n1, _ := c.Count()
		g := genRate{gen: gen, sent: float64(sent) / el.Seconds(), received: float64(n1-n0) / el.Seconds()}
		progress("round %d/%d  generator %-11s into an XDP sink on the director: sent %8.0f/s, received %8.0f/s", r, runs, gen, g.sent, g.received)
		out = append(out, g)
	}
	return out
}

func measureFlood(t *floodTopo, d floodDirector, gen string, prefix netip.Prefix, o floodOptions) floodSample {
	var s floodSample
	d.up()
	defer d.down()
	x, err := t.startXfer(o.xferRate * 1e6)
	if err != nil {
		fatal(fmt.Errorf("%s: the transfer did not connect: %w", d.name, err))
	}
	x0, t0 := t.xferBytes.Load(), time.Now()
	time.Sleep(time.Second)
	x1, t1 := t.xferBytes.Load(), time.Now()
	s.xferBefore = float64(x1-x0) / t1.Sub(t0).Seconds() / 1e6

	snap0 := d.snap()
	rx0 := t.serversRx()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		sent uint64
		err  error
		dur  time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	if gen != genNone {
		method := pktgen.AFPacket
		if gen == genLive {
			method = pktgen.LiveFrames
		}
		go func() {
			n, err := pktgen.SYNFlood(ctx, pktgen.Flood{NetNS: "/run/netns/" + t.floodNS, Iface: t.floodIf, DstMAC: t.floodDst,
				SrcPrefix: prefix, Dst: netip.MustParseAddrPort(fmt.Sprintf("%s:%d", fVIP, fPort)), Method: method})
			done <- result{n, err, time.Since(start)}
		}()
	} else {
		go func() { <-ctx.Done(); done <- result{dur: time.Since(start)} }()
	}
	time.Sleep(o.ramp)
	if d.full != nil && gen != genNone {
		for !d.full() && time.Since(start) < o.fillMax {
			time.Sleep(200 * time.Millisecond)
		}
	}
	s.fill = time.Since(start)
	x2, t2 := t.xferBytes.Load(), time.Now()
	s.legit = t.legit(o.conns, o.interval, o.timeout)
	x3, t3 := t.xferBytes.Load(), time.Now()
	s.xferDuring = float64(x3-x2) / t3.Sub(t2).Seconds() / 1e6
	cancel()
	res := <-done
	if res.err != nil {
		fatal(fmt.Errorf("%s, %s: %w", d.name, gen, res.err))
	}
	s.sentPPS = float64(res.sent) / res.dur.Seconds()
	rx1 := t.serversRx()
	s.srvRxPPS = (rx1 - rx0) / res.dur.Seconds()
	time.Sleep(500 * time.Millisecond)
	s.exact, s.why = x.finish()
	// gvsd reads its counters every second.
	time.Sleep(1100 * time.Millisecond)
	taken, counters := d.report(snap0, d.snap())
	s.takenPPS = taken / res.dur.Seconds()
	s.counters = counters + fmt.Sprintf("; servers received %.0f packets/s", s.srvRxPPS)
	return s
}

// serversRx is the sum of the servers' IP InReceives.
func (t *floodTopo) serversRx() float64 {
	var n float64
	for _, ns := range t.srv {
		out, err := run(nsx(ns, "cat", "/proc/net/snmp")...)
		if err != nil {
			continue
		}
		n += snmp(out, "Ip:", "InReceives")
	}
	return n
}

// snmp is a counter of /proc/net/snmp or /proc/net/netstat (a header
// line and a value line per group).
func snmp(out, group, name string) float64 {
	lines := strings.Split(out, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], group) || !strings.HasPrefix(lines[i+1], group) {
			continue
		}
		h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := range h {
			if h[j] == name && j < len(v) {
				f, _ := strconv.ParseFloat(v[j], 64)
				return f
			}
		}
	}
	return 0
}

// gvsDirector is gvsd's xdp engine with a table of maxConns and a TCP
// service VIP:80, rr, the three servers by method (-g or -m).
func gvsDirector(g *gvsd, name, method string, maxConns int) floodDirector {
	var rules strings.Builder
	fmt.Fprintf(&rules, "-A -t %s:%d -s rr\n", fVIP, fPort)
	for i := range fNSrv {
		port := ""
		if method == "-m" {
			port = fmt.Sprintf(":%d", fPort)
		}
		fmt.Fprintf(&rules, "-a -t %s:%d -r %s%s %s\n", fVIP, fPort, fSrvIP(i), port, method)
	}
	return floodDirector{
		name: name,
		gens: []string{genLive, genPkt},
		up: func() {
			g.maxConns = maxConns
			g.start()
			g.restore(rules.String())
		},
		down: g.stop,
		// Full once the data path has had no free entry for a new
		// connection: refused it (conn_table_full) or, with the
		// defences, evicted a half-open one for it.
		full: func() bool {
			ev := g.events()
			return ev["conn_table_full"]+ev["evicted"] > 0
		},
		snap: func() map[string]float64 {
			m := map[string]float64{}
			for k, v := range g.events() {
				m["ev:"+k] = float64(v)
			}
			out, _ := g.adm("", "-L", "-n", "--stats", "--exact")
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) >= 4 && f[0] == "TCP" {
					m["conns"], _ = strconv.ParseFloat(f[2], 64)
					m["inpkts"], _ = strconv.ParseFloat(f[3], 64)
				}
			}
			out, _ = g.adm("", "-L", "-n")
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) >= 6 && f[0] == "->" && f[1] != "RemoteAddress:Port" {
					a, _ := strconv.ParseFloat(f[4], 64)
					i, _ := strconv.ParseFloat(f[5], 64)
					m["active"] += a
					m["inact"] += i
				}
			}
			return m
		},
		report: func(a, b map[string]float64) (float64, string) {
			var ev []string
			for k := range b {
				if name, ok := strings.CutPrefix(k, "ev:"); ok && b[k] > a[k] {
					ev = append(ev, fmt.Sprintf("%s %.0f", name, b[k]-a[k]))
				}
			}
			sort.Strings(ev)
			// Every SYN for the service makes a connection or is
			// refused for want of room (or, rarely, dropped as busy).
			taken := b["conns"] - a["conns"] + b["ev:conn_table_full"] - a["ev:conn_table_full"] + b["ev:busy"] - a["ev:busy"]
			return taken, fmt.Sprintf("gvsadm: Conns +%.0f, InPkts +%.0f, ActiveConn %.0f, InActConn %.0f; events: %s",
				b["conns"]-a["conns"], b["inpkts"]-a["inpkts"], b["active"], b["inact"], strings.Join(ev, ", "))
		},
	}
}

// nftDirector is nftables DNAT with conntrack: VIP:80 to the three
// servers by numgen round robin (kube-proxy's nftables way), and a
// counter of the SYNs to VIP:80 that reach the director's IP layer (a
// chain at raw priority, before conntrack).
func nftDirector(t *floodTopo) floodDirector {
	ruleset := fmt.Sprintf(`table ip gvsflood {
	counter syns {}
	chain raw {
		type filter hook prerouting priority raw; policy accept;
		ip daddr %s tcp dport %d tcp flags & (syn | ack) == syn counter name "syns"
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s tcp dport %d dnat to numgen inc mod 3 map { 0 : %s, 1 : %s, 2 : %s }
	}
}
`, fVIP, fPort, fVIP, fPort, fSrvIP(0), fSrvIP(1), fSrvIP(2))
	flush := func() {
		err := inNS(t.dir, func() error {
			h, err := netlink.NewHandleAt(netns.None())
			if err != nil {
				return err
			}
			defer h.Close()
			return h.ConntrackTableFlush(netlink.ConntrackTable)
		})
		if err != nil {
			fatal(fmt.Errorf("flushing conntrack: %w", err))
		}
	}
	return floodDirector{
		name: "nftables DNAT",
		gens: []string{genPkt},
		up: func() {
			flush()
			cmd := exec.Command("nsenter", "--net=/run/netns/"+t.dir, "nft", "-f", "-")
			cmd.Stdin = strings.NewReader(ruleset)
			if out, err := cmd.CombinedOutput(); err != nil {
				fatal(fmt.Errorf("nft: %v: %s", err, out))
			}
		},
		down: func() {
			run(nsx(t.dir, "nft", "delete", "table", "ip", "gvsflood")...)
			flush()
		},
		snap: func() map[string]float64 {
			m := map[string]float64{}
			out, _ := run(nsx(t.dir, "nft", "list", "counter", "ip", "gvsflood", "syns")...)
			if v := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out); v != nil {
				m["syns"], _ = strconv.ParseFloat(v[1], 64)
			}
			out, _ = run(nsx(t.dir, "cat", "/proc/sys/net/netfilter/nf_conntrack_count")...)
			m["count"], _ = strconv.ParseFloat(strings.TrimSpace(out), 64)
			out, _ = run(nsx(t.dir, "cat", "/proc/sys/net/netfilter/nf_conntrack_max")...)
			m["max"], _ = strconv.ParseFloat(strings.TrimSpace(out), 64)
			out, _ = run(nsx(t.dir, "cat", "/proc/net/stat/nf_conntrack")...)
			for k, v := range ctStats(out) {
				m["ct:"+k] = v
			}
			return m
		},
		full: func() bool {
			c, _ := run(nsx(t.dir, "cat", "/proc/sys/net/netfilter/nf_conntrack_count")...)
			m, _ := run(nsx(t.dir, "cat", "/proc/sys/net/netfilter/nf_conntrack_max")...)
			nc, _ := strconv.Atoi(strings.TrimSpace(c))
			nm, _ := strconv.Atoi(strings.TrimSpace(m))
			return nm > 0 && nc >= nm*99/100
		},
		report: func(a, b map[string]float64) (float64, string) {
			var st []string
			for _, k := range []string{"drop", "early_drop", "insert_failed", "invalid"} {
				if d := b["ct:"+k] - a["ct:"+k]; d > 0 {
					st = append(st, fmt.Sprintf("%s %.0f", k, d))
				}
			}
			return b["syns"] - a["syns"], fmt.Sprintf("conntrack: %.0f entries of %.0f; %s", b["count"], b["max"], strings.Join(st, ", "))
		},
	}
}

// ctStats sums /proc/net/stat/nf_conntrack's columns (hexadecimal, one
// line per CPU) by name.
func ctStats(out string) map[string]float64 {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m := map[string]float64{}
	if len(lines) < 2 {
		return m
	}
	h := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		for i, v := range strings.Fields(l) {
			if i < len(h) {
				n, _ := strconv.ParseUint(v, 16, 64)
				m[h[i]] += float64(n)
			}
		}
	}
	return m
}

// floodReport writes the flood benchmark's tables.
func floodReport(w io.Writer, o floodOptions, rows []floodRow) {
	fmt.Fprintf(w, "\n## Under a SYN flood\n\n")
	fmt.Fprintf(w, "Medians of %d runs; %d legitimate connections (one every %v, %v to connect and %v more for the answer), a transfer at %s, gvsd --max-conns %s (in brackets when several).\n\n",
		o.runs, o.conns, o.interval, o.timeout, o.timeout, rateString(o.xferRate), o.maxConns)
	fmt.Fprintln(w, "| director | flood generator | flood sent (SYN/s) | SYNs the director took (/s) | flood before the clients (s) | legitimate connections | transfer before (MB/s) | transfer during (MB/s) | transfer byte-exact |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		var sent, taken, fill, ok, before, during []float64
		exact := 0
		for _, s := range r.s {
			sent = append(sent, s.sentPPS)
			taken = append(taken, s.takenPPS)
			fill = append(fill, s.fill.Seconds())
			ok = append(ok, float64(s.legit.ok))
			before = append(before, s.xferBefore)
			during = append(during, s.xferDuring)
			if s.exact {
				exact++
			}
		}
		n := 0
		if len(r.s) > 0 {
			n = r.s[0].legit.n
		}
		sentS, fillS := "—", "—"
		if r.gen != genNone {
			sentS, fillS = fmt.Sprintf("%.0f", median(sent)), fmt.Sprintf("%.1f", median(fill))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s | %.0f/%d (%s) | %.1f | %.1f | %d/%d |\n", r.director, r.gen, sentS, median(taken), fillS,
			median(ok), n, span(ok), median(before), median(during), exact, len(r.s))
	}
	if len(floodCal) > 0 {
		fmt.Fprintf(w, "\nThe generators straight into an XDP program on the director's interface that counts and drops (no director; 1 s each, medians):\n\n")
		fmt.Fprintln(w, "| generator | sent (frames/s) | received (frames/s) |")
		fmt.Fprintln(w, "|---|--:|--:|")
		for _, gen := range []string{genLive, genPkt} {
			var se, re []float64
			for _, c := range floodCal {
				if c.gen == gen {
					se, re = append(se, c.sent), append(re, c.received)
				}
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f |\n", gen, median(se), median(re))
		}
	}
	fmt.Fprintf(w, "\nWhat the director and the servers counted (last run), and why legitimate connections failed (all runs):\n\n")
	for _, r := range rows {
		if len(r.s) == 0 {
			continue
		}
		errs := map[string]int{}
		var why []string
		for _, s := range r.s {
			for k, v := range s.legit.errs {
				errs[k] += v
			}
			if !s.exact {
				why = append(why, s.why)
			}
		}
		var es []string
		for k, v := range errs {
			es = append(es, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(es)
		var lat []float64
		for _, s := range r.s {
			for _, d := range s.legit.latency {
				lat = append(lat, d.Seconds()*1e3)
			}
		}
		fmt.Fprintf(w, "- %s, flood %s: %s", r.director, r.gen, r.s[len(r.s)-1].counters)
		if len(lat) > 0 {
			fmt.Fprintf(w, "; a successful connection took %.1f ms (median)", median(lat))
		}
		if len(es) > 0 {
			fmt.Fprintf(w, "; failures: %s", strings.Join(es, ", "))
		}
		if len(why) > 0 {
			fmt.Fprintf(w, "; transfer: %s", strings.Join(slices.Compact(why), "; "))
		}
		fmt.Fprintln(w)
	}
}

func span(v []float64) string {
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f–%.0f", slices.Min(v), slices.Max(v))
}

func rateString(mbps float64) string {
	if mbps <= 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g MB/s", mbps)
}
