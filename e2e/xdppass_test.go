package e2e

import (
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// napiPeer gives a host's switch port a pass-everything XDP program: veth
// delivers frames a director sends with XDP_TX or redirect to a peer with
// NAPI, and on this kernel GRO-enabled NAPI holds them until other traffic
// flushes the queue, while an XDP program makes them go at once (real NICs
// need neither).
func (tp *topo) napiPeer(name string) {
	tp.t.Helper()
	tp.xdpPass(tp.prefix+"-sw", "p-"+name)
}

// xdpPass attaches the pass-everything XDP program to dev in namespace ns
// (napiPeer's, for topologies without the switch).
func (tp *topo) xdpPass(ns, dev string) {
	tp.t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		tp.t.Fatalf("XDP pass program: %v", err)
	}
	defer prog.Close()
	pin := filepath.Join("/sys/fs/bpf", tp.prefix+"-pass-"+ns+"-"+dev)
	if err := prog.Pin(pin); err != nil {
		tp.t.Fatalf("pinning the pass program (is /sys/fs/bpf a BPF file system?): %v", err)
	}
	defer os.Remove(pin)
	// nsenter, not ip netns exec, which would mount a /sys without the pin.
	tp.mustRun("", append(nsenter(ns), "ip", "link", "set", dev, "xdpdrv", "pinned", pin)...)
}
