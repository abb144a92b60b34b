package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// xdpNativeDrivers are drivers with native (driver-mode) XDP in mainline
// Linux. The kernel's own answer (the netdev netlink family's
// xdp-features, 6.3+) would be exact; the driver name is a cheap guess
// that needs nothing but a read of /sys.
var xdpNativeDrivers = []string{
	"bnxt_en", "dpaa2-eth", "ena", "enetc", "fec", "gve", "hv_netvsc", "i40e", "ice",
	"idpf", "igb", "igc", "ixgbe", "ixgbevf", "lan966x-switch", "mlx4_core", "mlx4_en",
	"mlx5_core", "mvneta", "mvpp2", "netdevsim", "nfp", "qede", "sfc", "stmmaceth",
	"thunder-nicvf", "tun", "veth", "virtio_net", "xen-netfront",
}

// printCapabilities writes what the engines can use on this kernel,
// probed cheaply: a minimal XDP program is loaded and closed (never
// attached), the rest is read from /sys and uname. Probes that need
// privileges say so instead of guessing.
func printCapabilities(w io.Writer) {
	var u unix.Utsname
	release := "unknown"
	if unix.Uname(&u) == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	fmt.Fprintf(w, "engine capabilities of this kernel (%s):\n", release)
	fmt.Fprintf(w, "  xdp:        %s\n", probeXDP())
	fmt.Fprintf(w, "  xdp native: %s\n", probeNative())
	fmt.Fprintf(w, "  btf:        %s\n", probeBTF())
	fmt.Fprintf(w, "  bpffs:      %s\n", probeBPFFS("/sys/fs/bpf"))
	fmt.Fprintf(w, "  tcx:        %s\n", probeTCX(release))
	fmt.Fprintf(w, "  proxy:      yes (no privileges needed)\n")
}

func probeXDP() string {
	err := features.HaveProgramType(ebpf.XDP)
	switch {
	case err == nil:
		return "yes (generic mode on any interface; the xdp engine can load)"
	case errors.Is(err, ebpf.ErrNotSupported):
		return "no (this kernel cannot load XDP programs: only the proxy engine)"
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return "unknown (loading a BPF program needs root or CAP_BPF)"
	}
	return "unknown (" + err.Error() + ")"
}

// probeNative lists the interfaces whose driver has native XDP.
func probeNative() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var native, generic []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		d := ifaceDriver(ifc.Name)
		if d == "" {
			continue
		}
		if slices.Contains(xdpNativeDrivers, d) {
			native = append(native, ifc.Name+" ("+d+")")
		} else {
			generic = append(generic, ifc.Name+" ("+d+")")
		}
	}
	s := "none found"
	if len(native) > 0 {
		s = strings.Join(native, ", ")
	}
	if len(generic) > 0 {
		s += "; generic only: " + strings.Join(generic, ", ")
	}
	return s + " (by driver)"
}

// ifaceDriver is the driver of a network interface: its device's driver
// in /sys, or for virtual interfaces the link kind (veth, tun) that
// ethtool would report.
func ifaceDriver(name string) string {
	if l, err := os.Readlink(filepath.Join("/sys/class/net", name, "device", "driver")); err == nil {
		return filepath.Base(l)
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "uevent"))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, ok := strings.CutPrefix(line, "DEVTYPE="); ok {
				return k
			}
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", name, "tun_flags")); err == nil {
		return "tun"
	}
	if b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "iflink")); err == nil {
		// veth pairs have a peer ifindex other than their own.
		if idx, err := os.ReadFile(filepath.Join("/sys/class/net", name, "ifindex")); err == nil && strings.TrimSpace(string(b)) != strings.TrimSpace(string(idx)) {
			return "veth"
		}
	}
	return ""
}

func probeBTF() string {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		return "yes (/sys/kernel/btf/vmlinux)"
	}
	return "no (/sys/kernel/btf/vmlinux missing)"
}

func probeBPFFS(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "no (" + dir + ": " + err.Error() + ")"
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return "no (" + dir + " is not a BPF file system; gvsd mounts one when it can)"
	}
	return "mounted at " + dir
}

// probeTCX: the TCX hooks (BPF links on tc ingress/egress) came in Linux
// 6.6; gvs-realserver --attach auto uses them there, else a clsact qdisc.
func probeTCX(release string) string {
	major, minor := kernelVersion(release)
	if major > 6 || major == 6 && minor >= 6 {
		return "yes (kernel 6.6 or later)"
	}
	return "no (kernel before 6.6: tc clsact is used instead)"
}

func kernelVersion(release string) (major, minor int) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ = strconv.Atoi(parts[0])
	m := parts[1]
	if i := strings.IndexFunc(m, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		m = m[:i]
	}
	minor, _ = strconv.Atoi(m)
	return major, minor
}
