package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// report writes the results as markdown: the machine, the command, the
// per-scenario table and the scale table.
func report(w io.Writer, o options, rows []row, sc []scaleRow) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(w, "- Command: `go run ./bench/xdpbench -bin %s -runs %d -duration %s -flows %d`\n", o.bin, o.runs, o.duration, o.flows)
	fmt.Fprintf(w, "- Machine: %d CPUs (%s), kernel %s, %s\n", runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintf(w, "- Date: %s\n\n", time.Now().UTC().Format("2006-01-02"))
	floor := 0.0
	for _, r := range rows {
		if r.name == "minimal XDP forwarder" {
			floor = median(r.cost)
		}
	}
	fmt.Fprintf(w, "Medians of %d rounds; 64-byte frames, %d flows for the established scenarios.\n\n", o.runs, o.flows)
	fmt.Fprintln(w, "| scenario | generator | forwarded (pps) | director cost (ns/packet) | BPF run time (ns/packet) | goal | met |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|---|---|")
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
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.name, gen, thousands(median(r.pps)), cost, bpfNs, goal, met)
	}
	if len(sc) == 0 {
		return
	}
	fmt.Fprintln(w, "\nScale (gvs DR, UDP, live frames; cost per packet against the round's no-director rate):")
	fmt.Fprintln(w, "\n| setting | established (ns/packet) | new flows (ns/packet) | notes |")
	fmt.Fprintln(w, "|---|--:|--:|---|")
	for _, s := range sc {
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %s |\n", s.what, s.established, s.newFlows, s.note)
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
