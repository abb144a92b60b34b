package vrrp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// packet is a received advertisement with what the checks need.
type packet struct {
	adv      *Advert
	src, dst netip.Addr
	ttl      int // -1: unknown
}

// conn is an instance's raw IP protocol 112 socket, bound to its
// interface and joined to the group there.
type conn interface {
	send(b []byte, dst netip.Addr) error
	// read blocks for the next advertisement that decodes; it returns an
	// error once closed.
	read() (*packet, error)
	close() error
}

type conn4 struct {
	ifi *net.Interface
	src netip.Addr
	rc  *ipv4.RawConn
}

type conn6 struct {
	ifi *net.Interface
	src netip.Addr
	pc  *ipv6.PacketConn
	raw net.PacketConn
}

func bindTo(ifname string) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// openConn opens the socket of an instance on ifi, sending from src;
// multicast joins the group.
func openConn(ifi *net.Interface, src netip.Addr, multicast bool) (conn, error) {
	lc := net.ListenConfig{Control: bindTo(ifi.Name)}
	if src.Is4() {
		pc, err := lc.ListenPacket(context.Background(), "ip4:112", "0.0.0.0")
		if err != nil {
			return nil, err
		}
		rc, err := ipv4.NewRawConn(pc)
		if err != nil {
			pc.Close()
			return nil, err
		}
		c := &conn4{ifi: ifi, src: src, rc: rc}
		if err := c.setup(multicast); err != nil {
			rc.Close()
			return nil, err
		}
		return c, nil
	}
	pc, err := lc.ListenPacket(context.Background(), "ip6:112", "::")
	if err != nil {
		return nil, err
	}
	c := &conn6{ifi: ifi, src: src, pc: ipv6.NewPacketConn(pc), raw: pc}
	if err := c.setup(multicast); err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

func (c *conn4) setup(multicast bool) error {
	if err := c.rc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		return err
	}
	if !multicast {
		return nil
	}
	if err := c.rc.SetMulticastInterface(c.ifi); err != nil {
		return err
	}
	if err := c.rc.SetMulticastLoopback(false); err != nil {
		return err
	}
	return c.rc.JoinGroup(c.ifi, &net.IPAddr{IP: Group4.AsSlice()})
}

func (c *conn4) send(b []byte, dst netip.Addr) error {
	h := &ipv4.Header{
		Version: ipv4.Version, Len: ipv4.HeaderLen, TOS: 0xc0, // internetwork control, as keepalived
		TotalLen: ipv4.HeaderLen + len(b), TTL: TTL, Protocol: IPProto,
		Src: c.src.AsSlice(), Dst: dst.AsSlice(),
	}
	return c.rc.WriteTo(h, b, nil)
}

func (c *conn4) read() (*packet, error) {
	buf := make([]byte, 1500)
	for {
		h, p, cm, err := c.rc.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		if cm != nil && cm.IfIndex != 0 && cm.IfIndex != c.ifi.Index {
			continue
		}
		if h.Protocol != IPProto {
			continue
		}
		src, _ := netip.AddrFromSlice(h.Src.To4())
		dst, _ := netip.AddrFromSlice(h.Dst.To4())
		if h.TotalLen > 0 && h.TotalLen-h.Len < len(p) {
			p = p[:h.TotalLen-h.Len] // Ethernet padding
		}
		a, err := Parse(p, src, dst)
		if err != nil {
			continue
		}
		return &packet{adv: a, src: src, dst: dst, ttl: h.TTL}, nil
	}
}

func (c *conn4) close() error { return c.rc.Close() }

func (c *conn6) setup(multicast bool) error {
	if err := c.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return err
	}
	// The kernel fills in the checksum of what we send and drops what
	// arrives with a bad one (as keepalived relies on).
	if err := c.pc.SetChecksum(true, 6); err != nil {
		return err
	}
	if err := c.pc.SetHopLimit(TTL); err != nil {
		return err
	}
	if !multicast {
		return nil
	}
	if err := c.pc.SetMulticastHopLimit(TTL); err != nil {
		return err
	}
	if err := c.pc.SetMulticastInterface(c.ifi); err != nil {
		return err
	}
	if err := c.pc.SetMulticastLoopback(false); err != nil {
		return err
	}
	return c.pc.JoinGroup(c.ifi, &net.IPAddr{IP: Group6.AsSlice()})
}

func (c *conn6) send(b []byte, dst netip.Addr) error {
	cm := &ipv6.ControlMessage{HopLimit: TTL, Src: c.src.AsSlice(), IfIndex: c.ifi.Index}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: c.ifi.Name})
	return err
}

func (c *conn6) read() (*packet, error) {
	buf := make([]byte, 1500)
	for {
		n, cm, from, err := c.pc.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		if cm == nil || (cm.IfIndex != 0 && cm.IfIndex != c.ifi.Index) {
			continue
		}
		ip, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		src, _ := netip.AddrFromSlice(ip.IP)
		dst, _ := netip.AddrFromSlice(cm.Dst)
		a, err := Parse(buf[:n], src.WithZone(""), dst)
		if err != nil {
			continue
		}
		return &packet{adv: a, src: src.WithZone(""), dst: dst, ttl: cm.HopLimit}, nil
	}
}

func (c *conn6) close() error { return c.raw.Close() }

// primaryAddr is the address adverts are sent from on ifname: the
// first IPv4 address that is not secondary, or the IPv6 link-local one.
func primaryAddr(ifname string, v6 bool) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	fam := netlink.FAMILY_V4
	if v6 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if v6 && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !v6 && a.Flags&unix.IFA_F_SECONDARY == 0 {
			return ip, nil
		}
	}
	if v6 {
		return netip.Addr{}, fmt.Errorf("%s has no IPv6 link-local address", ifname)
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address", ifname)
}

// addrs adds and removes virtual addresses with netlink.
type addrs struct{}

func vipLink(v VIP, dflt string) (netlink.Link, *netlink.Addr, error) {
	dev := v.Dev
	if dev == "" {
		dev = dflt
	}
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return nil, nil, err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: v.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(v.Prefix.Bits(), v.Prefix.Addr().BitLen())}, Label: v.Label}
	if v.Prefix.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return link, a, nil
}

func (addrs) add(v VIP, dflt string) error {
	link, a, err := vipLink(v, dflt)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

func (addrs) del(v VIP, dflt string) error {
	link, a, err := vipLink(v, dflt)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(link, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// sendGARP sends a gratuitous ARP (an ARP request for a from a, to
// broadcast, as keepalived) or, for IPv6, an unsolicited neighbour
// advertisement (from a to ff02::1 with the override flag, and the
// router flag when forwarding is on) on the VIP's interface.
func sendGARP(v VIP, dflt string) error {
	dev := v.Dev
	if dev == "" {
		dev = dflt
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil // no Ethernet: nothing to announce
	}
	var frame []byte
	var proto uint16
	if a := v.Prefix.Addr(); a.Is4() {
		frame, proto = garpFrame(ifi.HardwareAddr, a), unix.ETH_P_ARP
	} else {
		frame, proto = naFrame(ifi.HardwareAddr, a, forwarding6(dev)), unix.ETH_P_IPV6
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(proto), Halen: 6}
	copy(sa.Addr[:], frame[:6])
	return unix.Sendto(fd, frame, 0, sa)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func garpFrame(mac net.HardwareAddr, a netip.Addr) []byte {
	b := make([]byte, 14+28)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_ARP)
	p := b[14:]
	binary.BigEndian.PutUint16(p[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(p[2:], 0x0800) // IPv4
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:14], mac)
	ip := a.As4()
	copy(p[14:18], ip[:])
	copy(p[18:24], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(p[24:28], ip[:])
	return b
}

var allNodes = netip.MustParseAddr("ff02::1")

func naFrame(mac net.HardwareAddr, a netip.Addr, router bool) []byte {
	const icmpLen = 24 + 8
	b := make([]byte, 14+40+icmpLen)
	copy(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IPV6)
	ip := b[14:54]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], icmpLen)
	ip[6], ip[7] = unix.IPPROTO_ICMPV6, 255
	src, dst := a.As16(), allNodes.As16()
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	icmp := b[54:]
	icmp[0] = 136               // neighbour advertisement
	flags := uint32(0x20000000) // override
	if router {
		flags |= 0x80000000
	}
	binary.BigEndian.PutUint32(icmp[4:], flags)
	copy(icmp[8:24], src[:])
	icmp[24], icmp[25] = 2, 1 // target link-layer address, 8 bytes
	copy(icmp[26:32], mac)
	var sum uint32
	sum = sumBytes(sum, src[:])
	sum = sumBytes(sum, dst[:])
	sum += icmpLen + unix.IPPROTO_ICMPV6
	sum = sumBytes(sum, icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(icmp[2:], ^uint16(sum))
	return b
}

func forwarding6(dev string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + dev + "/forwarding")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// linkUp says whether ifname is up and running (IFF_UP and
// IFF_RUNNING, as keepalived tracks it).
func linkUp(ifname string) bool {
	ifi, err := net.InterfaceByName(ifname)
	return err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
}
