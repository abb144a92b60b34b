package lbagent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"gvs/lbaas"
)

// netnsDir is where named namespaces live, as ip netns keeps them.
const netnsDir = "/run/netns"

// nsIfName is the load balancer's interface inside its namespace.
const nsIfName = "eth0"

// NamespaceName is the network namespace of load balancer id.
func NamespaceName(id string) string { return "lvs-" + id }

// HostIfName is the host end of load balancer id's port: "lvs" and the
// first 11 characters of the id without dashes, as neutron names tap
// devices after the port id.
func HostIfName(id string) string {
	s := strings.ReplaceAll(id, "-", "")
	if len(s) > 11 {
		s = s[:11]
	}
	return "lvs" + s
}

func nsPath(id string) string { return filepath.Join(netnsDir, NamespaceName(id)) }

// inNamespace runs f on a thread in namespace ns, and puts the thread
// back; a thread that cannot be put back is not reused.
func inNamespace(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		ferr := f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else the thread ends with the goroutine, still locked.
		errc <- ferr
	}()
	return <-errc
}

// makeNetnsDirShared does what ip netns add does to /run/netns before it
// mounts a namespace there: makes it a shared mount (bind-mounting it on
// itself first when it is not a mount point), so that namespaces created
// later appear in mount namespaces made before (a daemon's private /run).
func makeNetnsDirShared() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if err = unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	return err
}

// ensureNamespace opens namespace lvs-<id>, creating it (named, as ip
// netns add does) when it does not exist. created says which.
func ensureNamespace(id string) (ns netns.NsHandle, created bool, err error) {
	if h, err := netns.GetFromPath(nsPath(id)); err == nil {
		return h, false, nil
	}
	// A file left without a namespace mounted on it (a crash between
	// creating and mounting) is in the way.
	os.Remove(nsPath(id))
	makeNetnsDirShared() // best effort, as a mount here is what matters
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(NamespaceName(id))
		if err == nil {
			h.Close()
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return 0, false, fmt.Errorf("creating namespace %s: %w", NamespaceName(id), err)
	}
	h, err := netns.GetFromPath(nsPath(id))
	if err != nil {
		return 0, false, err
	}
	// lo up, as ip netns add leaves it down but every local socket
	// (gvsd's checks to the VIP, say) wants it.
	if err := inNamespace(h, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		h.Close()
		return 0, false, err
	}
	return h, true, nil
}

// deleteNamespace unmounts and removes /run/netns/lvs-<id>; the
// namespace goes when nothing else holds it.
func deleteNamespace(id string) error {
	p := nsPath(id)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmounting %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// plug makes the load balancer's port: a veth pair, the host end in the
// bridge and up with GRO on (frames the xdp engine sends back out with
// XDP_TX reach the bridge only through the peer's NAPI), the other end
// eth0 in the namespace with TX checksum offload off (nothing would fill
// the checksums in), carrying the VIP with the subnet's prefix length
// and the default route via the subnet's gateway, as neutron's bridge
// interface driver plugs a port. Forwarding is on in the namespace (NAT
// replies pass through it). It is idempotent: what exists is checked and
// what is missing made; addresses the port should not have are removed.
// garp says whether the VIP was added (and so is to be announced).
func plug(id string, ns netns.NsHandle, nw *lbaas.NetworkRef, vip netip.Addr) (garp bool, err error) {
	br, err := netlink.LinkByName(nw.Bridge)
	if err != nil {
		return false, fmt.Errorf("bridge %q: %w", nw.Bridge, err)
	}
	if br.Type() != "bridge" {
		return false, fmt.Errorf("%q is a %s, not a bridge", nw.Bridge, br.Type())
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, err
	}
	defer nh.Close()
	host := HostIfName(id)
	hl, herr := netlink.LinkByName(host)
	_, perr := nh.LinkByName(nsIfName)
	if herr == nil && perr != nil {
		// Half a pair (the namespace was recreated): start again.
		netlink.LinkDel(hl)
		herr = perr
	}
	if herr != nil {
		if _, ok := herr.(netlink.LinkNotFoundError); !ok && perr == nil {
			return false, herr
		}
		// eth0 left in the namespace without its host end cannot be: a
		// veth dies with its peer.
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MTU: br.Attrs().MTU},
			PeerName: nsIfName, PeerNamespace: netlink.NsFd(int(ns))}
		if err := netlink.LinkAdd(v); err != nil {
			return false, fmt.Errorf("veth %s: %w", host, err)
		}
		if hl, err = netlink.LinkByName(host); err != nil {
			return false, err
		}
	}
	if hl.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(hl, br); err != nil {
			return false, fmt.Errorf("%s into %s: %w", host, nw.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		return false, err
	}
	if out, err := exec.Command("ethtool", "-K", host, "gro", "on").CombinedOutput(); err != nil {
		return false, fmt.Errorf("ethtool -K %s gro on: %v: %s", host, err, strings.TrimSpace(string(out)))
	}
	pl, err := nh.LinkByName(nsIfName)
	if err != nil {
		return false, err
	}
	vip = vip.Unmap()
	bits := nw.CIDR.Bits()
	if !nw.CIDR.IsValid() || !nw.CIDR.Contains(vip) {
		bits = vip.BitLen()
	}
	want := netip.PrefixFrom(vip, bits)
	family := netlink.FAMILY_V4
	if vip.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := nh.AddrList(pl, netlink.FAMILY_ALL)
	if err != nil {
		return false, err
	}
	have := false
	for _, a := range addrs {
		p, ok := netipPrefix(a.IPNet)
		switch {
		case !ok || p.Addr().IsLinkLocalUnicast():
		case p == want:
			have = true
		default:
			nh.AddrDel(pl, &a)
		}
	}
	if !have {
		a := &netlink.Addr{IPNet: ipNet(want)}
		if vip.Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := nh.AddrAdd(pl, a); err != nil {
			return false, fmt.Errorf("%s on %s: %w", want, nsIfName, err)
		}
	}
	if err := nh.LinkSetUp(pl); err != nil {
		return false, err
	}
	if nw.Gateway.IsValid() {
		gw := nw.Gateway.Unmap()
		r := &netlink.Route{LinkIndex: pl.Attrs().Index, Gw: gw.AsSlice(), Family: family}
		if err := nh.RouteReplace(r); err != nil {
			return false, fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	err = inNamespace(ns, func() error {
		for _, s := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(s, []byte("1\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("forwarding in %s: %w", NamespaceName(id), err)
	}
	out, err := exec.Command("nsenter", "--net="+nsPath(id), "ethtool", "-K", nsIfName, "tx", "off").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("ethtool -K %s tx off in %s: %v: %s", nsIfName, NamespaceName(id), err, strings.TrimSpace(string(out)))
	}
	return !have, nil
}

// unplug deletes the port (its peer goes with it).
func unplug(id string) error {
	l, err := netlink.LinkByName(HostIfName(id))
	if err != nil {
		if _, ok := err.(netlink.LinkNotFoundError); ok {
			return nil
		}
		return err
	}
	return netlink.LinkDel(l)
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// announce sends gratuitous ARP for an IPv4 VIP from eth0 in the
// namespace (a request for the VIP from the VIP to the broadcast
// address, as arping -U and the kernel's own announcements do), so that
// neighbours which knew the address at another MAC learn the port's. An
// IPv6 VIP is not announced (its address is added without DAD).
func announce(ns netns.NsHandle, vip netip.Addr) error {
	vip = vip.Unmap()
	if !vip.Is4() {
		return nil
	}
	return inNamespace(ns, func() error {
		ifi, err := net.InterfaceByName(nsIfName)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		a := vip.As4()
		p := make([]byte, 0, 28)
		p = append(p, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
		p = append(p, ifi.HardwareAddr...)
		p = append(p, a[:]...)
		p = append(p, 0, 0, 0, 0, 0, 0)
		p = append(p, a[:]...)
		to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6,
			Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		return unix.Sendto(fd, p, 0, to)
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
