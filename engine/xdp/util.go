package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
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

// ifaceAddr6 is an interface's first global unicast IPv6 address (the
// default outer source of IPv6 tunnels), if it has one.
func ifaceAddr6(name string) netip.Addr {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() && p.Addr().IsGlobalUnicast() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}
