package benchprog_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"gvs/bench/pktgen"
	bp "gvs/bpf/benchprog"
)

// sum6 is the ones' complement sum over the IPv6 pseudo-header and the
// segment of an 80-byte frame: 0xffff when the checksum is right.
func sum6(b []byte) uint32 {
	l4 := b[54:]
	w := append(append(append([]byte{}, b[22:54]...), 0, 0, 0, byte(len(l4)), 0, 0, 0, b[20]), l4...)
	var s uint32
	for i := 0; i+1 < len(w); i += 2 {
		s += uint32(w[i])<<8 | uint32(w[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return s
}

// gen6 changes each frame's flow and keeps its TCP or UDP checksum right
// (BPF_PROG_TEST_RUN without live frames: the changed frame comes back).
func TestGen6(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	_ = rlimit.RemoveMemlock()
	var o bp.Objects
	if err := bp.Load(&o); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, proto := range []pktgen.Proto{pktgen.UDP, pktgen.TCP} {
		tmpl := pktgen.Frame{SrcMAC: mac, DstMAC: mac, Src: netip.MustParseAddrPort("[2001:db8::1]:10000"),
			Dst: netip.MustParseAddrPort("[2001:db8::100]:1"), Proto: proto, TCPFlags: pktgen.FlagACK}.Bytes()
		for _, c := range []struct {
			cfg        bp.Gen6Cfg
			n          int
			src        string
			sport, dpt uint16
		}{
			{bp.Gen6Cfg{Mode: bp.GenFixedSport, Nflows: 64, Port: 10000}, 70, "2001:db8::1", 10005, 1},
			{bp.Gen6Cfg{Mode: bp.GenFixedDport, Nflows: 64, Port: 20000}, 3, "2001:db8::1", 10000, 20002},
			// Frame 32768 + 7 (the 32776th): the next source address
			// (a carry from one 16-bit word into the other), port 1024 + 7.
			{bp.Gen6Cfg{Mode: bp.GenNew, SaddrLo: binary.NativeEndian.Uint32([]byte{0, 0xff, 0xff, 0xff}), Port: 1024}, 32776, "2001:db8::100:0", 1031, 1},
		} {
			copy(c.cfg.Frame[:], tmpl)
			if err := o.Gen6Config.Put(uint32(0), &c.cfg); err != nil {
				t.Fatal(err)
			}
			if err := o.GenSeq.Put(uint32(0), make([]uint64, ebpf.MustPossibleCPU())); err != nil {
				t.Fatal(err)
			}
			// One run of n repeats stays on one CPU (gen_seq is per CPU);
			// the frame out is the last one.
			out := make([]byte, len(tmpl))
			opts := ebpf.RunOptions{Data: tmpl, DataOut: out, Repeat: uint32(c.n)}
			if ret, err := o.Gen6.Run(&opts); err != nil || ret != 3 { // XDP_TX
				t.Fatalf("run: %d %v", ret, err)
			}
			src := netip.AddrFrom16([16]byte(out[22:38]))
			sport, dport := binary.BigEndian.Uint16(out[54:]), binary.BigEndian.Uint16(out[56:])
			if src.String() != c.src || sport != c.sport || dport != c.dpt {
				t.Errorf("%v mode %d frame %d: [%v]:%d -> %d, want [%s]:%d -> %d", proto, c.cfg.Mode, c.n, src, sport, dport, c.src, c.sport, c.dpt)
			}
			if s := sum6(out); s != 0xffff {
				t.Errorf("%v mode %d: checksum wrong (sum %#x)", proto, c.cfg.Mode, s)
			}
		}
	}
}
