// Command xdpbench measures what gvs's XDP director costs per packet,
// side by side in one run with the floor (a minimal XDP forwarder: MAC
// rewrite and redirect), the kernel's plain IP forwarding and nftables
// DNAT load balancing, on one topology of network namespaces (topo.go).
//
//	go run ./bench/xdpbench -bin bin [-runs 5] [-duration 2s] [-scale] [-plot docs/bench-cost.png]
//	go run ./bench/xdpbench -bin bin -flood-only [-flood-runs 3]
//	go run ./bench/xdpbench -bin bin -family 6 -scale=false   (the IPv6 rows alone)
//
// Two generators, as shared/BENCHMARKING.md found: BPF_PROG_RUN live
// frames (frames reach the director as from a NIC driver) for the XDP
// paths, trafgen (AF_PACKET skbs) for the kernel paths, which live frames
// cannot feed. Every scenario is also run without a director (generator
// straight into the sink) in the same round; the director's cost per
// packet is 1e9/rate(with) - 1e9/rate(without). Rounds go over every
// scenario in turn, so drift on the shared CPUs spreads over all alike;
// the report gives medians. IPv6 rows (", IPv6": 80-byte frames, the
// same TCP/UDP segment behind an IPv6 header) have their own baseline and
// floor, the minimal forwarder fed IPv6 frames; every row's cost is also
// given as a ratio to its family's floor measured in the same round (the
// median of the rounds' ratios). Results: a markdown report on stdout, the
// plot as PNG. -flood (or -flood-only) adds the SYN-flood benchmark
// (flood.go): legitimate connections and an established transfer through
// gvs and through nftables DNAT under the same flood.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"gvs/bpf/benchprog"
)

var cleanups []func()

func cleanup() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "xdpbench:", err)
	cleanup()
	os.Exit(1)
}

func progress(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }

type options struct {
	bin       string
	runs      int
	duration  time.Duration
	flows     int
	scale     bool
	scaleRuns int
	scaleOnly string
	plot      string
	only      string
	family    string
	flood     bool
	floodOnly bool
	fl        floodOptions
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory with gvsd and gvsadm (make build)")
	flag.IntVar(&o.runs, "runs", 5, "rounds (the median is reported)")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "length of one measurement (new-flow scenarios: at most 1 s, the table holds 2M connections)")
	flag.IntVar(&o.flows, "flows", 64, "flows of the established scenarios")
	flag.BoolVar(&o.scale, "scale", true, "also run the scale measurements (services, servers, 1M connections)")
	flag.IntVar(&o.scaleRuns, "scale-runs", 3, "rounds of each scale measurement")
	flag.StringVar(&o.scaleOnly, "scale-only", "", "run only the scale rows whose name contains one of these (comma-separated; e.g. \"1024 servers\")")
	flag.StringVar(&o.plot, "plot", "docs/bench-cost.png", "where to write the plot of cost per packet (empty: none)")
	flag.StringVar(&o.only, "only", "", "run only scenarios whose name contains one of these (comma-separated)")
	flag.StringVar(&o.family, "family", "", "4 or 6: only the IPv4 or only the IPv6 scenarios (the scale measurements are IPv4's; -family 6 skips them)")
	flag.BoolVar(&o.flood, "flood", false, "also run the SYN-flood benchmark (flood.go; about 3 minutes with -flood-runs 3)")
	flag.BoolVar(&o.floodOnly, "flood-only", false, "run only the SYN-flood benchmark")
	flag.IntVar(&o.fl.runs, "flood-runs", 3, "rounds of the flood benchmark (the median is reported)")
	flag.IntVar(&o.fl.conns, "flood-conns", 100, "legitimate connections per measurement")
	flag.DurationVar(&o.fl.interval, "flood-interval", 20*time.Millisecond, "time between two legitimate connections")
	flag.DurationVar(&o.fl.timeout, "flood-timeout", time.Second, "a legitimate connection's time to connect, and then to send its request and read the answer")
	flag.DurationVar(&o.fl.ramp, "flood-ramp", 500*time.Millisecond, "flood at least this long before the legitimate connections start")
	flag.DurationVar(&o.fl.fillMax, "flood-fill-max", 15*time.Second, "flood until the director's table is full, at most this long, before the legitimate connections start")
	flag.StringVar(&o.fl.maxConns, "flood-max-conns", "4096", "gvsd --max-conns in the flood benchmark; several, comma-separated, measure gvs with each")
	flag.BoolVar(&o.fl.sharedLink, "flood-shared-link", false, "send the flood from the clients' namespace over their link (default: from a namespace and link of its own)")
	flag.StringVar(&o.fl.prefix, "flood-prefix", "198.19.0.0/16", "the flood's spoofed source addresses")
	flag.Float64Var(&o.fl.xferRate, "flood-xfer-rate", 50, "the established transfer's rate in MB/s (0: as fast as it goes)")
	flag.StringVar(&o.fl.only, "flood-only-case", "", "run only the flood measurements whose \"director, generator\" contains this")
	flag.Parse()
	if o.family != "" && o.family != "4" && o.family != "6" {
		fmt.Fprintln(os.Stderr, "xdpbench: -family is 4 or 6")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "xdpbench: needs root (network namespaces, XDP)")
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; fatal(fmt.Errorf("interrupted")) }()
	_ = rlimit.RemoveMemlock()
	defer cleanup()
	defer enableBPFStats()()

	if o.floodOnly {
		rows := runFlood(o.fl, o.bin)
		floodReport(os.Stdout, o.fl, rows)
		return
	}
	t := newTopo(1024)
	p := loadProgs(t)
	g := newGvsd(t, o.bin)
	b := &bench{o: o, t: t, p: p, g: g}
	b.cases()
	rep := b.measure()
	var sc []scaleRow
	if o.scale && o.family != "6" {
		sc = b.scale()
	}
	report(os.Stdout, o, rep, sc)
	if o.plot != "" {
		if err := plotCosts(o.plot, rep); err != nil {
			fatal(err)
		}
		progress("plot: %s", o.plot)
	}
	if o.flood {
		t.destroy()
		rows := runFlood(o.fl, o.bin)
		floodReport(os.Stdout, o.fl, rows)
	}
}

type bench struct {
	o  options
	t  *topo
	p  *progs
	g  *gvsd
	cs []scenario
}

// scenario is one row of the report.
type scenario struct {
	name  string
	group string // "live" (BPF_PROG_RUN live frames), "live6" (the same, IPv6) or "trafgen"
	peer  bool   // a peer, not gvs
	// target is the cost goal (ns), 0 none; relFloor: the goal is this
	// multiple of the minimal forwarder's cost.
	target   float64
	relFloor float64
	newFlows bool
	run      func(d time.Duration) sample
}

type sample struct {
	pps   float64
	bpfNs float64 // BPF run time per packet of the director's program, 0: n/a
}

const rules = `-A -u ` + vip + `:1 -s rr
-a -u ` + vip + `:1 -r ` + sinkIP + ` -g
-A -u ` + vip + `:2 -s rr
-a -u ` + vip + `:2 -r ` + sinkIP + ` -i
-A -u ` + vip + `:3 -s rr
-a -u ` + vip + `:3 -r ` + sinkIP + `:8080 -m
-A -u ` + vip + `:4 -s rr
-a -u ` + vip + `:4 -r ` + sinkIP + `:8080 --fullnat
-A -t ` + vip + `:1 -s rr
-a -t ` + vip + `:1 -r ` + sinkIP + ` -g
-A -u [` + vip6 + `]:1 -s rr
-a -u [` + vip6 + `]:1 -r [` + sink6 + `]:1 -g
-A -u [` + vip6 + `]:2 -s rr
-a -u [` + vip6 + `]:2 -r [` + sink6 + `]:2 -i
-A -u [` + vip6 + `]:3 -s rr
-a -u [` + vip6 + `]:3 -r [` + sink6 + `]:8080 -m
-A -u [` + vip6 + `]:4 -s rr
-a -u [` + vip6 + `]:4 -r [` + sink6 + `]:8080 --fullnat
-A -t [` + vip6 + `]:1 -s rr
-a -t [` + vip6 + `]:1 -r [` + sink6 + `]:1 -g
`

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// client frames, g0 to the VIP.
func (b *bench) toVIP(port uint16, tcp bool, flags uint8) []byte {
	return frame{srcMAC: b.t.macs["g0"], dstMAC: b.t.macs["d0"], src: ap(clientIP + ":10000"),
		dst: netip.AddrPortFrom(netip.MustParseAddr(vip), port), tcp: tcp, flags: flags}.bytes()
}

// toVIP6 is toVIP over IPv6 (80-byte frames).
func (b *bench) toVIP6(port uint16, tcp bool, flags uint8) []byte {
	return frame{srcMAC: b.t.macs["g0"], dstMAC: b.t.macs["d0"], src: netip.AddrPortFrom(netip.MustParseAddr(client6), 10000),
		dst: netip.AddrPortFrom(netip.MustParseAddr(vip6), port), tcp: tcp, flags: flags}.bytes()
}

const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

func (b *bench) cases() {
	fixed := benchprog.GenCfg{Mode: benchprog.GenFixedSport, Nflows: uint32(b.o.flows), Port: 10000}
	newFlows := benchprog.GenCfg{Mode: benchprog.GenNew, Saddr: ip4("198.18.128.0"), Port: 1024}
	baseFrame := frame{srcMAC: b.t.macs["g1"], dstMAC: b.t.macs["s1"], src: ap("198.18.2.1:10000"), dst: ap("198.18.2.2:9")}.bytes()
	g0, s0, g1 := b.t.ifindex["g0"], b.t.ifindex["s0"], b.t.ifindex["g1"]

	// withGvsd measures send against a fresh gvsd with the rules, after
	// warm (one packet per flow) if set.
	withGvsd := func(warm func(), send func() sample) sample {
		b.g.start()
		defer b.g.stop()
		b.g.restore(rules)
		if warm != nil {
			warm()
		}
		prog := b.g.prog() // d0's; replies entering on d1 run the same program
		if prog != nil {
			defer prog.Close()
		}
		s := withBPFTime(prog, send)
		b.checkEvents()
		return s
	}
	// gvsLive is withGvsd with the live-frames generator on g0.
	gvsLive := func(fr []byte, cfg benchprog.GenCfg, warm func()) func(time.Duration) sample {
		return func(d time.Duration) sample {
			return withGvsd(warm, func() sample { return b.live(b.t.gen, g0, fr, cfg, d) })
		}
	}
	warmUDP := func(port uint16) func() {
		return func() { b.p.generate(b.t.gen, g0, b.toVIP(port, false, 0), fixed, 0, b.o.flows) }
	}
	warmSYN := func() { b.p.generate(b.t.gen, g0, b.toVIP(1, true, tcpSYN), fixed, 0, b.o.flows) }

	b.cs = []scenario{
		{name: "no director (veth pair)", group: "live", peer: true, run: func(d time.Duration) sample {
			return b.live(b.t.gen, g1, baseFrame, fixed, d)
		}},
		{name: "minimal XDP forwarder", group: "live", peer: true, run: func(d time.Duration) sample {
			b.p.attachFwd(b.t)
			defer b.p.detachFwd()
			return withBPFTime(b.p.o.Fwd, func() sample { return b.live(b.t.gen, g0, b.toVIP(1, false, 0), fixed, d) })
		}},
		{name: "gvs DR, UDP established", group: "live", relFloor: 1.5, run: gvsLive(b.toVIP(1, false, 0), fixed, warmUDP(1))},
		{name: "gvs DR, TCP established", group: "live", relFloor: 1.5, run: gvsLive(b.toVIP(1, true, tcpACK), fixed, warmSYN)},
		{name: "gvs DR, UDP new flows", group: "live", target: 300, newFlows: true, run: gvsLive(b.toVIP(1, false, 0), newFlows, nil)},
		{name: "gvs DR, TCP SYN new flows", group: "live", target: 300, newFlows: true, run: gvsLive(b.toVIP(1, true, tcpSYN), newFlows, nil)},
		{name: "gvs TUN, UDP established", group: "live", relFloor: 1.5, run: gvsLive(b.toVIP(2, false, 0), fixed, warmUDP(2))},
		{name: "gvs NAT, UDP established, client to server", group: "live", relFloor: 1.5, run: gvsLive(b.toVIP(3, false, 0), fixed, warmUDP(3))},
		{name: "gvs NAT, UDP established, server to client", group: "live", relFloor: 1.5, run: func(d time.Duration) sample {
			reply := frame{srcMAC: b.t.macs["s0"], dstMAC: b.t.macs["d1"], src: ap(sinkIP + ":8080"), dst: ap(clientIP + ":10000")}.bytes()
			rcfg := benchprog.GenCfg{Mode: benchprog.GenFixedDport, Nflows: uint32(b.o.flows), Port: 10000}
			return withGvsd(warmUDP(3), func() sample { return b.live(b.t.sink, s0, reply, rcfg, d) })
		}},
		{name: "gvs FULLNAT, UDP established", group: "live", relFloor: 1.5, run: gvsLive(b.toVIP(4, false, 0), fixed, warmUDP(4))},
		{name: "gvs NAT, UDP new flows", group: "live", target: 300, newFlows: true, run: gvsLive(b.toVIP(3, false, 0), newFlows, nil)},
	}
	b.cs = append(b.cs, b.cases6(fixed, withGvsd)...)
	b.cs = slices.DeleteFunc(b.cs, func(c scenario) bool {
		return (b.o.family == "4" && c.group == "live6") || (b.o.family == "6" && c.group != "live6")
	})
	if b.o.family == "6" {
		return
	}
	if _, err := os.Stat("/usr/sbin/trafgen"); err != nil {
		progress("trafgen (netsniff-ng) not installed: the kernel-path peers are skipped (scripts/install-deps.sh --bench)")
		return
	}
	base := func(d time.Duration) sample {
		return b.trafgen("g1", b.t.macs["s1"].String(), b.t.macs["g1"].String(), "198.18.2.2", "9", d)
	}
	fromG0 := func(daddr, dport string) func(time.Duration) sample {
		return func(d time.Duration) sample {
			return b.trafgen("g0", b.t.macs["d0"].String(), b.t.macs["g0"].String(), daddr, dport, d)
		}
	}
	b.cs = append(b.cs,
		scenario{name: "no director (veth pair), trafgen", group: "trafgen", peer: true, run: base},
		scenario{name: "kernel IP forwarding", group: "trafgen", peer: true, run: fromG0(sinkIP, "9")},
		scenario{name: "nftables DNAT (numgen map, 2 servers)", group: "trafgen", peer: true, run: func(d time.Duration) sample {
			b.nft(true)
			defer b.nft(false)
			return fromG0(vip, "80")(d)
		}},
		scenario{name: "gvs DR, UDP established, trafgen", group: "trafgen", run: func(d time.Duration) sample {
			return withGvsd(nil, func() sample { return fromG0(vip, "1")(d) })
		}},
	)
}

// cases6 are the IPv6 rows: their own baseline (g1 to s1) and floor (the
// minimal forwarder fed IPv6 frames), the established flows of every
// method and new flows of DR and NAT, against the [VIP6] services of the
// same gvsd rules.
func (b *bench) cases6(fixed benchprog.GenCfg, withGvsd func(warm func(), send func() sample) sample) []scenario {
	// New flows from 2001:db8::1:0 up (the last word of the source).
	a := netip.MustParseAddr("2001:db8::1:0").As16()
	newFlows := benchprog.GenCfg{Mode: benchprog.GenNew, Saddr: binary.NativeEndian.Uint32(a[12:]), Port: 1024}
	baseFrame := frame{srcMAC: b.t.macs["g1"], dstMAC: b.t.macs["s1"], src: netip.AddrPortFrom(netip.MustParseAddr(base6Src), 10000),
		dst: netip.AddrPortFrom(netip.MustParseAddr(base6Sink), 9)}.bytes()
	g0, s0, g1 := b.t.ifindex["g0"], b.t.ifindex["s0"], b.t.ifindex["g1"]
	gvsLive := func(fr []byte, cfg benchprog.GenCfg, warm func()) func(time.Duration) sample {
		return func(d time.Duration) sample {
			return withGvsd(warm, func() sample { return b.live(b.t.gen, g0, fr, cfg, d) })
		}
	}
	warmUDP := func(port uint16) func() {
		return func() { b.p.generate(b.t.gen, g0, b.toVIP6(port, false, 0), fixed, 0, b.o.flows) }
	}
	warmSYN := func() { b.p.generate(b.t.gen, g0, b.toVIP6(1, true, tcpSYN), fixed, 0, b.o.flows) }
	return []scenario{
		{name: "no director (veth pair), IPv6", group: "live6", peer: true, run: func(d time.Duration) sample {
			return b.live(b.t.gen, g1, baseFrame, fixed, d)
		}},
		{name: "minimal XDP forwarder, IPv6", group: "live6", peer: true, run: func(d time.Duration) sample {
			b.p.attachFwd(b.t)
			defer b.p.detachFwd()
			return withBPFTime(b.p.o.Fwd, func() sample { return b.live(b.t.gen, g0, b.toVIP6(1, false, 0), fixed, d) })
		}},
		{name: "gvs DR, UDP established, IPv6", group: "live6", relFloor: 1.5, run: gvsLive(b.toVIP6(1, false, 0), fixed, warmUDP(1))},
		{name: "gvs DR, TCP established, IPv6", group: "live6", relFloor: 1.5, run: gvsLive(b.toVIP6(1, true, tcpACK), fixed, warmSYN)},
		{name: "gvs DR, UDP new flows, IPv6", group: "live6", target: 300, newFlows: true, run: gvsLive(b.toVIP6(1, false, 0), newFlows, nil)},
		{name: "gvs DR, TCP SYN new flows, IPv6", group: "live6", target: 300, newFlows: true, run: gvsLive(b.toVIP6(1, true, tcpSYN), newFlows, nil)},
		{name: "gvs TUN, UDP established, IPv6", group: "live6", relFloor: 1.5, run: gvsLive(b.toVIP6(2, false, 0), fixed, warmUDP(2))},
		{name: "gvs NAT, UDP established, client to server, IPv6", group: "live6", relFloor: 1.5, run: gvsLive(b.toVIP6(3, false, 0), fixed, warmUDP(3))},
		{name: "gvs NAT, UDP established, server to client, IPv6", group: "live6", relFloor: 1.5, run: func(d time.Duration) sample {
			reply := frame{srcMAC: b.t.macs["s0"], dstMAC: b.t.macs["d1"], src: netip.AddrPortFrom(netip.MustParseAddr(sink6), 8080),
				dst: netip.AddrPortFrom(netip.MustParseAddr(client6), 10000)}.bytes()
			rcfg := benchprog.GenCfg{Mode: benchprog.GenFixedDport, Nflows: uint32(b.o.flows), Port: 10000}
			return withGvsd(warmUDP(3), func() sample { return b.live(b.t.sink, s0, reply, rcfg, d) })
		}},
		{name: "gvs FULLNAT, UDP established, IPv6", group: "live6", relFloor: 1.5, run: gvsLive(b.toVIP6(4, false, 0), fixed, warmUDP(4))},
		{name: "gvs NAT, UDP new flows, IPv6", group: "live6", target: 300, newFlows: true, run: gvsLive(b.toVIP6(3, false, 0), newFlows, nil)},
	}
}

// live runs the live-frames generator for d and returns the rate the
// sinks counted.
func (b *bench) live(ns string, dev int, fr []byte, cfg benchprog.GenCfg, d time.Duration) sample {
	before := b.p.sunk()
	el := b.p.generate(ns, dev, fr, cfg, d, 0)
	return sample{pps: float64(b.p.sunk()-before) / el.Seconds()}
}

// withBPFTime runs f and adds prog's BPF run time per packet meanwhile
// (nil prog: none).
func withBPFTime(prog *ebpf.Program, f func() sample) sample {
	st := progStats(prog)
	s := f()
	if st2 := progStats(prog); st2.cnt > st.cnt {
		s.bpfNs = float64(st2.ns-st.ns) / float64(st2.cnt-st.cnt)
	}
	return s
}

// checkEvents reports what gvs did with packets other than forwarding
// them: a scenario that drops or passes is not measuring forwarding.
func (b *bench) checkEvents() {
	ev := b.g.events()
	total := ev["forward"] + ev["reply"]
	for name, n := range ev {
		if name != "forward" && name != "reply" && n > total/1000 {
			progress("  gvs events: %v", ev)
			out, _ := b.g.adm("", "-L", "-n", "--stats")
			progress("%s", out)
			return
		}
	}
}

func ip4(s string) uint32 {
	a := netip.MustParseAddr(s).As4()
	return uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16 | uint32(a[3])<<24
}

// row is a scenario's measurements over the rounds.
type row struct {
	scenario
	pps, cost, bpfNs []float64
	// ratio is the cost over the same round's floor of the family (the
	// minimal forwarder's cost).
	ratio []float64
}

func (b *bench) measure() []row {
	rows := make([]row, len(b.cs))
	for i, c := range b.cs {
		rows[i].scenario = c
	}
	for r := range b.o.runs {
		base, floor := map[string]float64{}, map[string]float64{}
		for i, c := range b.cs {
			if !b.selected(c.name) {
				continue
			}
			d := b.o.duration
			if c.newFlows && d > time.Second {
				d = time.Second
			}
			runtime.GC()
			s := c.run(d)
			if strings.HasPrefix(c.name, "no director") {
				base[c.group] = s.pps
			}
			rows[i].pps = append(rows[i].pps, s.pps)
			if s.bpfNs > 0 {
				rows[i].bpfNs = append(rows[i].bpfNs, s.bpfNs)
			}
			if bp := base[c.group]; bp > 0 && s.pps > 0 {
				cost := 1e9/s.pps - 1e9/bp
				rows[i].cost = append(rows[i].cost, cost)
				if strings.HasPrefix(c.name, "minimal XDP forwarder") {
					floor[c.group] = cost
				} else if f := floor[c.group]; f > 0 && !c.peer {
					rows[i].ratio = append(rows[i].ratio, cost/f)
				}
			}
			progress("round %d/%d  %-48s %10.0f pps  bpf %5.0f ns", r+1, b.o.runs, c.name, s.pps, s.bpfNs)
		}
	}
	return rows
}

// selected says whether -only lets scenario name run (the baselines
// and the floors always run: every cost is against them).
func (b *bench) selected(name string) bool {
	if b.o.only == "" || strings.HasPrefix(name, "no director") || strings.HasPrefix(name, "minimal XDP forwarder") {
		return true
	}
	for _, pat := range strings.Split(b.o.only, ",") {
		if strings.Contains(name, pat) {
			return true
		}
	}
	return false
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
