package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"gvs/bench/pktgen"
	"gvs/bpf/benchprog"
)

// progs are the benchmark's own programs: the live-frames generator,
// the sinks (attached to s0, s1 and g0 for the whole run) and the
// minimal forwarder.
type progs struct {
	o     benchprog.Objects
	links []link.Link
	fwd   link.Link
}

func loadProgs(t *topo) *progs {
	p := &progs{}
	if err := benchprog.Load(&p.o); err != nil {
		fatal(fmt.Errorf("loading the benchmark's BPF programs: %w", err))
	}
	for _, x := range [][2]string{{"s0", t.sink}, {"s1", t.sink}, {"g0", t.gen}} {
		err := inNS(x[1], func() error {
			l, err := link.AttachXDP(link.XDPOptions{Program: p.o.Sink, Interface: t.ifindex[x[0]], Flags: link.XDPDriverMode})
			if err == nil {
				p.links = append(p.links, l)
			}
			return err
		})
		if err != nil {
			fatal(fmt.Errorf("attaching the sink to %s: %w", x[0], err))
		}
	}
	cleanups = append(cleanups, p.close)
	return p
}

func (p *progs) close() {
	p.detachFwd()
	for _, l := range p.links {
		l.Close()
	}
	p.links = nil
	p.o.Close()
}

// attachFwd puts the minimal forwarder on d0: frames leave by d1 to s0.
func (p *progs) attachFwd(t *topo) {
	cfg := benchprog.FwdCfg{Ifindex: uint32(t.ifindex["d1"]), Dst: [6]byte(t.macs["s0"]), Src: [6]byte(t.macs["d1"])}
	if err := p.o.FwdConfig.Put(uint32(0), &cfg); err != nil {
		fatal(err)
	}
	err := inNS(t.dir, func() error {
		l, err := link.AttachXDP(link.XDPOptions{Program: p.o.Fwd, Interface: t.ifindex["d0"], Flags: link.XDPDriverMode})
		p.fwd = l
		return err
	})
	if err != nil {
		fatal(fmt.Errorf("attaching the minimal forwarder: %w", err))
	}
}

func (p *progs) detachFwd() {
	if p.fwd != nil {
		p.fwd.Close()
		p.fwd = nil
	}
}

// sunk is the number of frames the sinks have counted so far.
func (p *progs) sunk() uint64 {
	var per []uint64
	if err := p.o.SinkCount.Lookup(uint32(0), &per); err != nil {
		fatal(err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// xdpMD is struct xdp_md, BPF_PROG_RUN's context for XDP.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// generate sends frame out of interface dev of namespace ns with live
// frames, the generator changing each frame's flow as cfg says, for d
// (at least one batch), or count frames if count > 0. It returns the
// time it ran.
func (p *progs) generate(ns string, dev int, frame []byte, cfg benchprog.GenCfg, d time.Duration, count int) time.Duration {
	// An 80-byte frame is IPv6 (pktgen.Frame): gen6, whose GEN_NEW varies
	// the last word of the source address (cfg.Saddr) and the port.
	gen := p.o.Gen
	switch len(frame) {
	case len(cfg.Frame):
		copy(cfg.Frame[:], frame)
		if err := p.o.GenConfig.Put(uint32(0), &cfg); err != nil {
			fatal(err)
		}
	case len(benchprog.Gen6Cfg{}.Frame):
		c6 := benchprog.Gen6Cfg{Nflows: cfg.Nflows, Mode: cfg.Mode, SaddrLo: cfg.Saddr, Port: cfg.Port}
		copy(c6.Frame[:], frame)
		if err := p.o.Gen6Config.Put(uint32(0), &c6); err != nil {
			fatal(err)
		}
		gen = p.o.Gen6
	default:
		fatal(fmt.Errorf("generator frames are %d (IPv4) or %d bytes (IPv6), not %d", len(cfg.Frame),
			len(benchprog.Gen6Cfg{}.Frame), len(frame)))
	}
	var elapsed time.Duration
	err := inNS(ns, func() error {
		start := time.Now()
		for {
			repeat := 1 << 18
			if count > 0 {
				repeat = count
			}
			opts := ebpf.RunOptions{Data: frame, Repeat: uint32(repeat), Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
				BatchSize: 64, Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(dev)}}
			if _, err := gen.Run(&opts); err != nil {
				return fmt.Errorf("live frames: %w", err)
			}
			if count > 0 || time.Since(start) >= d {
				break
			}
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		fatal(err)
	}
	// Frames still in the veth rings land within microseconds.
	time.Sleep(20 * time.Millisecond)
	return elapsed
}

// frame is a 64-byte Ethernet frame with correct checksums (60 bytes
// without the FCS), or with IPv6 addresses an 84-byte one (80): pktgen.Frame.
type frame struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.AddrPort
	tcp            bool
	flags          uint8
}

func (f frame) bytes() []byte {
	proto := pktgen.UDP
	if f.tcp {
		proto = pktgen.TCP
	}
	return pktgen.Frame{SrcMAC: f.srcMAC, DstMAC: f.dstMAC, Src: f.src, Dst: f.dst, Proto: proto, TCPFlags: f.flags}.Bytes()
}

// bpfStats is a program's cumulative run time and count
// (kernel.bpf_stats_enabled).
type bpfStats struct{ ns, cnt uint64 }

func progStats(p *ebpf.Program) bpfStats {
	if p == nil {
		return bpfStats{}
	}
	st, err := p.Stats()
	if err != nil {
		return bpfStats{}
	}
	return bpfStats{uint64(st.Runtime), st.RunCount}
}

// enableBPFStats turns the run-time statistics on for as long as the
// benchmark runs: by BPF_ENABLE_STATS, a reference the kernel counts, so
// another benchmark that writes kernel.bpf_stats_enabled back to 0 when it
// ends does not turn them off under this one.
func enableBPFStats() func() {
	c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpbench: enabling BPF statistics: %v (no BPF run times)\n", err)
		return func() {}
	}
	return func() { c.Close() }
}
