package bpf

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkScheduleWalk times xdp_gvs scheduling one UDP datagram of a
// one-packet service (no connection is kept, so every run schedules) with
// rr and wlc over 1, 64 and 1,024 DR servers: the list walks. Reported as
// BPF ns per packet (BPF_PROG_TEST_RUN's own timing, 10,000 repeats).
func BenchmarkScheduleWalk(b *testing.B) {
	o := loadObjects(b)
	must(b, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	id := uint32(1)
	for _, sched := range []struct {
		name string
		n    uint32
	}{{"rr", 0}, {"wlc", 3}} {
		for _, n := range []int{1, 64, 1024} {
			b.Run(fmt.Sprintf("%s/%d", sched.name, n), func(b *testing.B) {
				port := uint16(1000 + id)
				var ids []uint32
				for i := range n {
					a := netip.AddrFrom4([4]byte{198, 18, byte(1 + i/200), byte(1 + i%200)})
					putDest(b, o, id, drDest(a, port, 1, 1, id))
					ids = append(ids, id)
					id++
				}
				putService(b, o, svcSpec{id: uint32(port), proto: unix.IPPROTO_UDP, addr: vip, port: port,
					sched: sched.n, flags: 0x4 /* one-packet */, dests: ids})
				in := pkt{srcMAC: clientMAC, dstMAC: vipMAC, src: client, dst: netip.AddrPortFrom(vip, port),
					proto: unix.IPPROTO_UDP, df: true}.build()
				var total float64
				for range b.N {
					_, d, err := o.XdpGvs.Benchmark(in, 10000, nil)
					must(b, err)
					total += float64(d.Nanoseconds())
				}
				b.ReportMetric(total/float64(b.N), "bpf-ns/pkt")
			})
		}
	}
}
