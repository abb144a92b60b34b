package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

func isNotExist(err error) bool { return errors.Is(err, ebpf.ErrKeyNotExist) }

var ncpu int

func ebpfCPUs() int {
	if ncpu == 0 {
		n, err := ebpf.PossibleCPU()
		if err != nil || n < 1 {
			n = 1
		}
		ncpu = n
	}
	return ncpu
}

// ifaceInfo returns an interface's index, MAC and first IPv4 address.
func ifaceInfo(name string) (int, net.HardwareAddr, netip.Addr, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return 0, nil, netip.Addr{}, fmt.Errorf("interface %s: %w", name, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return 0, nil, netip.Addr{}, fmt.Errorf("interface %s has no Ethernet address", name)
	}
	var v4 netip.Addr
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !v4.IsValid() {
			v4 = p.Addr()
		}
	}
	return ifc.Index, ifc.HardwareAddr, v4, nil
}

// ensureBPFFS makes sure dir is on a BPF filesystem, mounting one on
// /sys/fs/bpf when none is (as bpftool does).
func ensureBPFFS(dir string) error {
	const root = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return err
		}
		if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mounting the BPF filesystem on %s: %w", root, err)
		}
	}
	return os.MkdirAll(dir, 0o700)
}
