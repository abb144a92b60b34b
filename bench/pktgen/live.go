package pktgen

import (
	"context"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gvs/bpf/benchprog"
)

// xdpMD is struct xdp_md, BPF_PROG_RUN's context for XDP.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// liveRepeat is the frames of one BPF_PROG_RUN call: a few tens of
// milliseconds, so that the context is checked often.
const liveRepeat = 1 << 16

// sendLive runs bpf/benchprog's flood program with live frames on
// interface ifindex (of the calling thread's namespace) until ctx ends
// or g.count frames are sent.
func sendLive(ctx context.Context, ifindex int, g *gen) (uint64, error) {
	var o benchprog.FloodObjects
	if err := benchprog.LoadFlood(&o); err != nil {
		return 0, fmt.Errorf("pktgen: loading the flood program: %w", err)
	}
	defer o.Close()
	cfg := benchprog.FloodCfg{Saddr: g.saddr, Hostmask: g.hostmask, Proto: uint8(g.proto), Frame: g.frame}
	if g.sequential {
		cfg.Sequential = 1
	}
	if err := o.FloodConfig.Put(uint32(0), &cfg); err != nil {
		return 0, fmt.Errorf("pktgen: %w", err)
	}
	var sent uint64
	data := g.frame[:]
	for ctx.Err() == nil && (g.count == 0 || sent < g.count) {
		n := uint64(liveRepeat)
		if g.count > 0 {
			n = min(n, g.count-sent)
		}
		opts := ebpf.RunOptions{Data: data, Repeat: uint32(n), Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
			BatchSize: 64, Context: xdpMD{DataEnd: uint32(len(data)), IngressIfindex: uint32(ifindex)}}
		if _, err := o.Flood.Run(&opts); err != nil {
			return sent, fmt.Errorf("pktgen: live frames: %w", err)
		}
		sent += n
	}
	return sent, nil
}
