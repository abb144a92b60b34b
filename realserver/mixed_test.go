package realserver

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTunnelMixedFamilies: a director tunnelling between the families
// (IPv4 in IPv6 for an IPv4 VIP, IPv6 in IPv4 for an IPv6 VIP, as IPVS
// does for a TUN server of the other family) reaches the services on
// both VIPs: the packets, sent by raw sockets of the outer family, are
// decapsulated on vethB (the family of the frame changes) and delivered.
func TestTunnelMixedFamilies(t *testing.T) {
	p := newPair(t)
	p.withPins()
	p.must(p.a, "ip", "-6", "addr", "add", "2001:db8::1/64", "dev", "vethA", "nodad")
	p.must(p.b, "ip", "-6", "addr", "add", "2001:db8::2/64", "dev", "vethB", "nodad")
	p.must(p.b, "ip", "-6", "route", "add", "default", "via", "2001:db8::1")
	p.mustRS("up", "--vip", "198.18.50.1", "--vip", "2001:db8:50::1", "--tunnel", "--interface", "vethB")

	msg := []byte("hello word\n")
	client4, vip4 := netip.MustParseAddr("198.18.60.1"), netip.MustParseAddr("198.18.50.1")
	client6, vip6 := netip.MustParseAddr("2001:db8:60::1"), netip.MustParseAddr("2001:db8:50::1")

	// IPv4 in IPv6: a raw IPv6 socket of next header 4.
	l4 := listen(t, p.b, "198.18.50.1:9999")
	fd6 := inNS(t, p.a, func() (int, error) {
		return unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
	})
	t.Cleanup(func() { unix.Close(fd6) })
	to6 := &unix.SockaddrInet6{Addr: netip.MustParseAddr("2001:db8::2").As16()}
	if err := unix.Sendto(fd6, udp4(client4, vip4, 9999, msg), 0, to6); err != nil {
		t.Fatalf("sending IPv4 in IPv6: %v", err)
	}
	expectDatagram(t, l4, msg, client4.String())

	// IPv6 in IPv4: a raw IPv4 socket of protocol 41.
	l6 := listen(t, p.b, "[2001:db8:50::1]:9999")
	fd4 := inNS(t, p.a, func() (int, error) {
		return unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_IPV6)
	})
	t.Cleanup(func() { unix.Close(fd4) })
	if err := unix.Sendto(fd4, udp6(client6, vip6, 9999, msg), 0, &unix.SockaddrInet4{Addr: netip.MustParseAddr(addrB).As4()}); err != nil {
		t.Fatalf("sending IPv6 in IPv4: %v", err)
	}
	expectDatagram(t, l6, msg, client6.String())

	// To an address that is not a VIP: not decapsulated.
	if err := unix.Sendto(fd6, udp4(client4, netip.MustParseAddr("198.18.50.2"), 9999, msg), 0, to6); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, l4, nil, "")
	p.mustRS("down")
}
