package main

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// gvsdState is what the report compares before and after the load.
type gvsdState struct {
	rss, threads  string
	fds, pipes    int
	entries, udps int // connection table entries, of which UDP
}

func gvsdSnapshot(g *gvsdPeer, p *peer) gvsdState {
	pid := p.proc.cmd.Process.Pid
	rss, fds := procStatus(pid, "VmRSS")
	threads, _ := procStatus(pid, "Threads")
	s := gvsdState{rss: rss, threads: threads, fds: fds, pipes: socketStates(pid)["pipe"]}
	// gvsadm -L -n -c: two header lines, then "PRO expire state ...".
	if conns, err := g.adm("-L", "-n", "-c"); err == nil {
		for _, l := range strings.Split(conns, "\n") {
			switch {
			case strings.HasPrefix(l, "UDP "):
				s.udps++
				s.entries++
			case strings.HasPrefix(l, "TCP "):
				s.entries++
			}
		}
	}
	return s
}

// svcStats is one service line of gvsadm -L -n --stats --exact.
type svcStats struct {
	conns, inPkts, outPkts, inBytes, outBytes uint64
}

func parseStats(out string) map[string]svcStats {
	m := map[string]svcStats{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 7 || (f[0] != "TCP" && f[0] != "UDP") {
			continue
		}
		var n [5]uint64
		for i := range n {
			n[i], _ = strconv.ParseUint(f[2+i], 10, 64)
		}
		m[f[0]+" "+f[1]] = svcStats{n[0], n[1], n[2], n[3], n[4]}
	}
	return m
}

// gvsdReport prints gvsd's own view after the run next to what the load
// generator did through it, and its resources before and after. It returns
// false if gvsd shows a problem: counters that disagree, connections left
// active, descriptors left open, warnings in its log.
func gvsdReport(out io.Writer, g *gvsdPeer, p *peer, before gvsdState, totals map[string]map[string]*measurement, streams int) bool {
	ok := true
	fmt.Fprintf(out, "\ngvsd after the run:\n\n")
	stats, err := g.adm("-L", "-n", "--stats", "--exact")
	if err != nil {
		fmt.Fprintf(out, "- gvsadm --stats failed: %v\n", err)
		return false
	}
	st := parseStats(stats)
	check := func(what string, got, want uint64, exact bool) {
		verdict := "ok"
		if (exact && got != want) || (!exact && got < want) {
			verdict, ok = "MISMATCH", false
		}
		fmt.Fprintf(out, "- %s: gvsd %d, load generator %d: %s\n", what, got, want, verdict)
	}
	// The readiness probe made one TCP connection and one UDP exchange.
	if t := totals["conn"]["gvsd"]; t != nil {
		s := st["TCP "+p.greet.String()]
		check("TCP connections/s service: Conns vs connections opened (+1 probe)", s.conns, uint64(t.started)+1, true)
	}
	if t := totals["mbps"]["gvsd"]; t != nil {
		s := st["TCP "+p.sink.String()]
		check("TCP MB/s service: InBytes (payload + headers) vs payload bytes written, at least", s.inBytes, uint64(t.started), false)
	}
	if t := totals["udp"]["gvsd"]; t != nil {
		s := st["UDP "+p.echo.String()]
		check("UDP service: InPkts vs datagrams sent (+1 probe)", s.inPkts, uint64(t.started)+1, true)
		check("UDP service: OutPkts vs datagrams received (+1 probe)", s.outPkts, uint64(t.recv)+1, true)
	}

	// Connections still active: every client is gone by now.
	list, err := g.adm("-L", "-n")
	if err == nil {
		var active, inact uint64
		for _, l := range strings.Split(list, "\n") {
			f := strings.Fields(l)
			if len(f) == 6 && f[0] == "->" {
				if _, err := netip.ParseAddrPort(f[1]); err != nil {
					continue
				}
				a, _ := strconv.ParseUint(f[4], 10, 64)
				i, _ := strconv.ParseUint(f[5], 10, 64)
				active += a
				inact += i
			}
		}
		verdict := "ok"
		if active > 0 {
			verdict, ok = "connections left active", false
		}
		fmt.Fprintf(out, "- ActiveConn %d, InActConn %d summed over the real servers: %s\n", active, inact, verdict)
	}

	// Each UDP flow holds one socket toward its real server until its
	// entry expires (300 s); nothing else should stay open.
	after := gvsdSnapshot(g, p)
	fmt.Fprintf(out, "- connection table (-Lnc): %d entries before the load, %d after (UDP %d, %d)\n", before.entries, after.entries, before.udps, after.udps)
	// Go keeps the pipes of splice (TCP to TCP copies) in a pool that only
	// a garbage collection empties; the -Lnc listing in gvsdSnapshot
	// allocates, so a few rounds may let that happen. A pool is as large
	// as the splices that ran at once, one per bulk stream (gvsd copies
	// short connections without a pipe): up to two pipes of two
	// descriptors a stream are pooled, not leaked.
	pooled := func(s gvsdState) int { return min(max(s.pipes-before.pipes, 0), 4*streams) }
	excess := func(s gvsdState) bool { return s.fds-before.fds-pooled(s) > s.udps-before.udps+4 }
	first := after
	firstKinds := describeFDs(p)
	waited := 0
	for ; excess(after) && waited < 10; waited++ {
		time.Sleep(time.Second)
		after = gvsdSnapshot(g, p)
	}
	verdict := "ok"
	if excess(after) {
		verdict, ok = "descriptors leaked", false
	}
	fmt.Fprintf(out, "- open descriptors %d before the load, %d after, %d more UDP flows (one socket each), %d in pooled splice pipes: %s\n", before.fds, after.fds, after.udps-before.udps, pooled(after), verdict)
	if excess(first) {
		fmt.Fprintf(out, "  - right after the load: %d descriptors (%s); %d after %d s more\n", first.fds, firstKinds, after.fds, waited)
	}
	fmt.Fprintf(out, "- RSS %s before, %s after; threads %s before, %s after\n", before.rss, after.rss, before.threads, after.threads)

	b, _ := os.ReadFile(p.proc.log)
	var warns []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			warns = append(warns, l)
		}
	}
	if len(warns) == 0 {
		fmt.Fprintf(out, "- log: no warnings or errors\n")
	} else {
		ok = false
		fmt.Fprintf(out, "- log: %d warnings or errors, first: `%s`\n", len(warns), warns[0])
	}
	return ok
}

func describeFDs(p *peer) string {
	counts := socketStates(p.proc.cmd.Process.Pid)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}
