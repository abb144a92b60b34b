package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gvs/bpf"
	"gvs/bpf/benchprog"
)

// scaleRow is one scale measurement: DR, UDP, gvs on live frames, cost
// per packet (medians of the runs, against the round's no-director rate)
// of established flows and of new flows.
type scaleRow struct {
	what        string
	established float64 // ns per packet
	newFlows    float64
	bpf         [2]float64 // BPF run time per packet: established, new flows
	note        string
	base        string  // the row it is compared with (report.go)
	newLimit    float64 // new flows' goal against base; 0: within 10%, both
}

// memlock is what the kernel charges for a map (its memory in use for
// hash maps without preallocation).
func memlock(m *ebpf.Map) uint64 {
	info, err := m.Info()
	if err != nil {
		return 0
	}
	v, _ := info.Memlock()
	return v
}

// listsMemlock is the memlock of the services map and of svc_chunks
// (the server lists past the ids a service value holds; a gvsd from
// before svc_chunks has none).
func (g *gvsd) listsMemlock() uint64 {
	svcs := g.pinnedMap("services")
	defer svcs.Close()
	v := memlock(svcs)
	if c, err := ebpf.LoadPinnedMap(filepath.Join(g.pins, "svc_chunks"), nil); err == nil {
		v += memlock(c)
		c.Close()
	}
	return v
}

// scaleWanted says whether -scale-only lets the row named what run.
func (b *bench) scaleWanted(what string) bool {
	if b.o.scaleOnly == "" {
		return true
	}
	for _, pat := range strings.Split(b.o.scaleOnly, ",") {
		if pat != "" && strings.Contains(what, pat) {
			return true
		}
	}
	return false
}

// servicesRules is n UDP services on VIP ports 1..50000 (then the next
// VIP address), each with one DR server; VIP:1 first, so the traffic's
// service is the oldest.
func servicesRules(n int) string {
	var b strings.Builder
	for i := range n {
		a := netip.MustParseAddr(vip).As4()
		a[3] += byte(i / 50000)
		port := 1 + i%50000
		fmt.Fprintf(&b, "-A -u %s:%d -s rr\n-a -u %s:%d -r %s -g\n", netip.AddrFrom4(a), port, netip.AddrFrom4(a), port, sinkIP)
	}
	return b.String()
}

// serversRules is VIP:1 with n DR servers.
func serversRules(n int, sched string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-A -u %s:1 -s %s\n", vip, sched)
	for i := range n {
		fmt.Fprintf(&b, "-a -u %s:1 -r %s -g\n", vip, serverAddr(i))
	}
	return b.String()
}

func (b *bench) scale() []scaleRow {
	fixed := benchprog.GenCfg{Mode: benchprog.GenFixedSport, Nflows: uint32(b.o.flows), Port: 10000}
	newFlows := benchprog.GenCfg{Mode: benchprog.GenNew, Saddr: ip4("198.18.128.0"), Port: 1024}
	baseFrame := frame{srcMAC: b.t.macs["g1"], dstMAC: b.t.macs["s1"], src: ap("198.18.2.1:10000"), dst: ap("198.18.2.2:9")}.bytes()
	fr := b.toVIP(1, false, 0)
	g0, g1 := b.t.ifindex["g0"], b.t.ifindex["g1"]
	rate := func(ns string, dev int, f []byte, cfg benchprog.GenCfg, d time.Duration) float64 {
		return b.live(ns, dev, f, cfg, d).pps
	}
	// measure runs established then new flows (fresh connections each
	// round: setup restarts gvsd), each against the round's baseline.
	// bpf is gvs's program's run time per packet, established and new
	// flows: on this shared machine the steadier figure.
	measure := func(setup func() string) (est, nf float64, bpf [2]float64, note string) {
		var e, n, eb, nb []float64
		for range b.o.scaleRuns {
			base := rate(b.t.gen, g1, baseFrame, fixed, b.o.duration)
			note = setup()
			prog := b.g.prog()
			b.p.generate(b.t.gen, g0, fr, fixed, 0, b.o.flows) // one packet per flow first
			s := withBPFTime(prog, func() sample { return b.live(b.t.gen, g0, fr, fixed, b.o.duration) })
			e, eb = append(e, 1e9/s.pps-1e9/base), append(eb, s.bpfNs)
			s = withBPFTime(prog, func() sample { return b.live(b.t.gen, g0, fr, newFlows, min(b.o.duration, time.Second)) })
			n, nb = append(n, 1e9/s.pps-1e9/base), append(nb, s.bpfNs)
			if prog != nil {
				prog.Close()
			}
			b.g.stop()
		}
		return median(e), median(n), [2]float64{median(eb), median(nb)}, note
	}
	var rows []scaleRow

	for _, n := range []int{1, 1000, 100000} {
		if !b.scaleWanted(fmt.Sprintf("%d services", n)) {
			continue
		}
		text := servicesRules(n)
		var applied time.Duration
		var failed error
		est, nf, bpfNs, note := measure(func() string {
			b.g.start()
			empty := b.g.listsMemlock() // the hashes' buckets
			start := time.Now()
			if _, err := b.g.adm(text, "-R"); err != nil {
				failed = err
			}
			applied = time.Since(start)
			return fmt.Sprintf("applied in %.2f s (one gvsadm -R); services and their lists %s", applied.Seconds(),
				perEntry(b.g.listsMemlock()-empty, n, "service"))
		})
		if failed != nil {
			note = "not applied: " + strings.TrimSpace(failed.Error())
		}
		progress("scale: %d services: established %.0f ns, new flows %.0f ns; %s", n, est, nf, note)
		what := fmt.Sprintf("%s services", thousands(float64(n)))
		if n == 1 {
			what = "1 service"
		}
		rows = append(rows, scaleRow{what: what, established: est, newFlows: nf, bpf: bpfNs, note: note, base: "1 service"})
	}
	for _, sched := range []string{"rr", "wlc"} {
		for _, n := range []int{2, 64, 1024} {
			if !b.scaleWanted(fmt.Sprintf("%d servers (%s)", n, sched)) {
				continue
			}
			est, nf, bpfNs, note := measure(func() string {
				b.g.start()
				empty := b.g.listsMemlock()
				b.g.restore(serversRules(n, sched))
				return fmt.Sprintf("service and its list: %d bytes of memlock", b.g.listsMemlock()-empty)
			})
			progress("scale: %s, %d servers: established %.0f ns, new flows %.0f ns; %s", sched, n, est, nf, note)
			r := scaleRow{what: fmt.Sprintf("%d servers (%s)", n, sched), established: est, newFlows: nf, bpf: bpfNs, note: note,
				base: fmt.Sprintf("2 servers (%s)", sched)}
			if sched == "wlc" && n > 2 {
				r.base, r.newLimit = fmt.Sprintf("%d servers (rr)", n), 2
			}
			rows = append(rows, r)
		}
	}
	// Live connections, in a table of 4,194,304 entries or twice their
	// number (a full table would measure eviction, not lookups).
	for _, n := range []int{1 << 20, 1 << 22} {
		what := fmt.Sprintf("%s live connections", thousands(float64(n)))
		if !b.scaleWanted(what) {
			continue
		}
		est, nf, bpfNs, note := measure(func() string {
			b.g.start("--max-conns", strconv.Itoa(max(2*n, 1<<22)))
			b.g.restore(serversRules(2, "rr"))
			return b.fillConns(n)
		})
		progress("scale: %d connections: established %.0f ns, new flows %.0f ns; %s", n, est, nf, note)
		rows = append(rows, scaleRow{what: what, established: est, newFlows: nf, bpf: bpfNs, note: note, base: "1 service"})
	}
	return rows
}

func perEntry(bytes uint64, n int, what string) string {
	return fmt.Sprintf("%.1f MiB, %.0f bytes per %s", float64(bytes)/(1<<20), float64(bytes)/float64(n), what)
}

// fillConns puts n UDP connections to VIP:1 (its first server) into the
// director's table, as many clients would have made them, and returns
// what the table then takes in memory.
func (b *bench) fillConns(n int) string {
	svcs := b.g.pinnedMap("services")
	defer svcs.Close()
	conns := b.g.pinnedMap("conns")
	defer conns.Close()
	k := bpf.SvcKey{Port: 1 << 8, Proto: unix.IPPROTO_UDP, Af: 4}
	k.Addr[0] = ip4(vip)
	var s bpf.Svc
	if err := svcs.Lookup(&k, &s); err != nil {
		fatal(fmt.Errorf("the service VIP:1: %w", err))
	}
	rconns := b.g.pinnedMap("rconns")
	defer rconns.Close()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts)
	const chunk = 1 << 14
	keys := make([]bpf.ConnKey, chunk)
	vals := make([]bpf.Conn, chunk)
	for done := 0; done < n; done += chunk {
		for i := range keys {
			c := uint32(done + i)
			keys[i] = bpf.ConnKey{Cport: uint16(c&0xffff)<<8 | uint16(c&0xffff)>>8, Vport: 1 << 8, Proto: unix.IPPROTO_UDP, Af: 4}
			keys[i].Caddr[0] = ip4("198.18.64.0") + (c>>16)<<24 // 198.18.64.(c>>16), network order
			keys[i].Vaddr[0] = ip4(vip)
			vals[i] = bpf.Conn{Expires: uint64(ts.Nano()) + uint64(time.Hour), Dest: s.Dests[0], Svc: s.Id,
				State: 100, Flags: 0x1 | 0x2, Timeout: 300}
		}
		if _, err := conns.BatchUpdate(keys, vals, nil); err != nil {
			fatal(fmt.Errorf("filling the connection table: %w", err))
		}
	}
	// Both tables are preallocated: what they take does not grow with
	// the connections; per entry of capacity.
	capacity := int(conns.MaxEntries())
	return fmt.Sprintf("connection + reply tables (preallocated, %d entries): %s", capacity,
		perEntry(memlock(conns)+memlock(rconns), capacity, "connection"))
}
