package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// report writes the results as markdown: the machine, the command, the
// per-scenario table and the scale table.
func report(w io.Writer, o options, rows []row, sc []scaleRow) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	// The flags given, then the defaults that shape the table.
	var given []string
	flag.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if v == "" || strings.ContainsAny(v, " ,") {
			v = strconv.Quote(v)
		}
		given = append(given, "-"+f.Name+"="+v)
	})
	fmt.Fprintf(w, "- Command: `go run ./bench/xdpbench %s` (-runs %d -duration %s -flows %d)\n", strings.Join(given, " "), o.runs, o.duration, o.flows)
	fmt.Fprintf(w, "- Machine: %d CPUs (%s), kernel %s, %s\n", runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintf(w, "- Date: %s\n\n", time.Now().UTC().Format("2006-01-02"))
	floors := map[string]float64{} // by group
	for _, r := range rows {
		if strings.HasPrefix(r.name, "minimal XDP forwarder") {
			floors[r.group] = median(r.cost)
		}
	}
	fmt.Fprintf(w, "Medians of %d rounds; 64-byte frames (IPv6: 84, the same TCP/UDP segment), %d flows for the established scenarios; "+
		"× floor: the cost over the minimal forwarder's of the same family and round.\n\n", o.runs, o.flows)
	fmt.Fprintln(w, "| scenario | generator | forwarded (pps) | director cost (ns/packet) | × floor | BPF run time (ns/packet) | goal | met |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|---|---|")
	for _, r := range rows {
		if len(r.pps) == 0 {
			continue
		}
		cost := "—"
		if !strings.HasPrefix(r.name, "no director") && len(r.cost) > 0 {
			cost = fmt.Sprintf("%.0f", median(r.cost))
		}
		bpfNs := "—"
		if len(r.bpfNs) > 0 {
			bpfNs = fmt.Sprintf("%.0f", median(r.bpfNs))
		}
		ratio := "—"
		if len(r.ratio) > 0 {
			ratio = fmt.Sprintf("%.2f", median(r.ratio))
		}
		floor := floors[r.group]
		goal, met := "", ""
		switch {
		case r.target > 0:
			goal = fmt.Sprintf("≤ %.0f ns", r.target)
			met = yes(median(r.cost) <= r.target)
		case r.relFloor > 0 && floor > 0:
			goal = fmt.Sprintf("≤ %.1f × floor (%.0f ns)", r.relFloor, r.relFloor*floor)
			met = yes(median(r.cost) <= r.relFloor*floor)
		}
		gen := "live frames"
		if r.group == "trafgen" {
			gen = "trafgen"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, gen, thousands(median(r.pps)), cost, ratio, bpfNs, goal, met)
	}
	sideBySide(w, rows)
	if len(sc) == 0 {
		return
	}
	fmt.Fprintln(w, "\nScale (gvs DR, UDP, live frames; cost per packet against the round's no-director rate). "+
		"Goals: flat within 10% of 1 service (services, live connections) or of 2 servers of the same scheduler; wlc's new flows within 2× of rr's with as many servers:")
	fmt.Fprintln(w, "Ratios are of BPF run times where both rows have them (the steadier figure here), else of costs.")
	fmt.Fprintln(w, "\n| setting | established (ns/packet) | new flows (ns/packet) | BPF established (ns) | BPF new flows (ns) | against | established × | new flows × | met | notes |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|---|--:|--:|---|---|")
	byName := map[string]scaleRow{}
	for _, s := range sc {
		byName[s.what] = s
	}
	for _, s := range sc {
		against, estX, newX, met := "", "", "", ""
		if b, ok := byName[s.base]; ok && s.base != s.what && b.established > 0 && b.newFlows > 0 {
			e, n := s.established/b.established, s.newFlows/b.newFlows
			if s.bpf[0] > 0 && s.bpf[1] > 0 && b.bpf[0] > 0 && b.bpf[1] > 0 {
				e, n = s.bpf[0]/b.bpf[0], s.bpf[1]/b.bpf[1]
			}
			against, estX, newX = s.base, fmt.Sprintf("%.2f", e), fmt.Sprintf("%.2f", n)
			limit := 1.10
			if s.newLimit > 0 { // wlc against rr: new flows only
				met = yes(n <= s.newLimit)
			} else {
				met = yes(e <= limit && n <= limit)
			}
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s |\n", s.what, s.established, s.newFlows, s.bpf[0], s.bpf[1], against, estX, newX, met, s.note)
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// sideBySide puts each IPv4 live-frames row beside its IPv6 twin (the
// same name with ", IPv6"): director cost, × floor and BPF run time.
func sideBySide(w io.Writer, rows []row) {
	byName := map[string]row{}
	for _, r := range rows {
		byName[r.name] = r
	}
	med := func(v []float64, f string) string {
		if len(v) == 0 {
			return "—"
		}
		return fmt.Sprintf(f, median(v))
	}
	header := false
	for _, r := range rows {
		r6, ok := byName[r.name+", IPv6"]
		if r.group != "live" || !ok || len(r.pps) == 0 || len(r6.pps) == 0 || strings.HasPrefix(r.name, "no director") {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nIPv4 and IPv6 side by side (live frames; director cost in ns/packet, × its family's floor, BPF run time in ns/packet):")
			fmt.Fprintln(w, "\n| scenario | IPv4 cost | IPv4 × floor | IPv4 BPF | IPv6 cost | IPv6 × floor | IPv6 BPF |")
			fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
			header = true
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.name, med(r.cost, "%.0f"), med(r.ratio, "%.2f"), med(r.bpfNs, "%.0f"),
			med(r6.cost, "%.0f"), med(r6.ratio, "%.2f"), med(r6.bpfNs, "%.0f"))
	}
}
