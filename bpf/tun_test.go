package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	dirMAC = net.HardwareAddr{0x02, 0xd1, 0, 0, 0, 1}
	gwMAC  = net.HardwareAddr{0x02, 0x9a, 0, 0, 0, 2}
	tunSrc = netip.MustParseAddr("198.18.0.1")
)

// inNetNS runs f on an OS thread moved into a new network namespace with
// interface gvs0 (198.18.0.1/24, MTU 1400, peer gvs1), gateway 198.18.0.2
// (a permanent neighbour) for 198.18.64.0/24, and forwarding on (which
// bpf_fib_lookup needs on the ingress device). BPF_PROG_TEST_RUN runs in
// the caller's namespace, so the program's FIB lookups see this one. The
// thread is never unlocked: it dies with its goroutine, taking the
// namespace with it.
func inNetNS(t *testing.T, f func(gvs0 int) error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return err
			}
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gvs0", MTU: 1400, HardwareAddr: dirMAC}, PeerName: "gvs1"}
			if err := netlink.LinkAdd(veth); err != nil {
				return fmt.Errorf("veth: %w", err)
			}
			l, err := netlink.LinkByName("gvs0")
			if err != nil {
				return err
			}
			peer, err := netlink.LinkByName("gvs1")
			if err != nil {
				return err
			}
			for _, x := range []netlink.Link{l, peer} {
				if err := netlink.LinkSetUp(x); err != nil {
					return err
				}
			}
			a, _ := netlink.ParseAddr("198.18.0.1/24")
			if err := netlink.AddrAdd(l, a); err != nil {
				return err
			}
			if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
				State: netlink.NUD_PERMANENT, IP: net.ParseIP("198.18.0.2"), HardwareAddr: gwMAC}); err != nil {
				return fmt.Errorf("neighbour: %w", err)
			}
			_, dst, _ := net.ParseCIDR("198.18.64.0/24")
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: net.ParseIP("198.18.0.2")}); err != nil {
				return fmt.Errorf("route: %w", err)
			}
			for _, p := range []string{"all", "default", "lo"} {
				if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+p+"/forwarding", []byte("1"), 0); err != nil {
					return err
				}
			}
			return f(l.Attrs().Index)
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// runNS is run for the namespace thread: errors, not t.Fatal.
func runNS(o *Objects, pkt []byte) (uint32, []byte, error) {
	out := make([]byte, len(pkt)+512)
	opts := ebpf.RunOptions{Data: pkt, DataOut: out}
	ret, err := o.XdpGvs.Run(&opts)
	return ret, opts.DataOut, err
}

func tunDest(addr netip.Addr, weight int32) Dest {
	d := Dest{Port: htons(80), Method: fwdTunnel, Af: 4, Weight: weight, Flags: destAvailable}
	d.Addr[0] = ip4(addr)
	return d
}

func TestTunnelAndMTU(t *testing.T) {
	o := loadObjects(t)
	rsTun := netip.MustParseAddr("198.18.64.10")
	putDest(t, o, 1, tunDest(rsTun, 1))
	putService(t, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{1}})
	rsFar := netip.MustParseAddr("203.0.113.10") // no route to it
	putDest(t, o, 2, tunDest(rsFar, 1))
	putService(t, o, svcSpec{id: 2, proto: unix.IPPROTO_TCP, addr: vip, port: 81, sched: schedRR, dests: []uint32{2}})
	must(t, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))

	inNetNS(t, func(gvs0 int) error {
		// DR out of gvs0 (MTU 1400): service 82.
		d := drDest(rs1, 82, 1, uint32(gvs0), 3)
		if err := o.Dests.Put(uint32(3), &d); err != nil {
			return err
		}
		k := SvcKey{Port: htons(82), Proto: unix.IPPROTO_TCP, Af: 4}
		k.Addr[0] = ip4(vip)
		s := Svc{Id: 3, Ndests: 1}
		s.Dests[0] = 3
		if err := o.Services.Put(&k, &s); err != nil {
			return err
		}
		if err := o.Ifmacs.Put(uint32(gvs0), &IfMAC{Mac: [6]byte(dirMAC)}); err != nil {
			return err
		}

		for i, c := range []struct {
			name    string
			vlan    uint16
			payload int
			df      bool
			dport   uint16
			act     uint32
			check   func(in, out []byte) error
		}{
			{"encapsulated", 0, 100, true, 80, xdpRedirect, checkTunnel},
			{"encapsulated, vlan dropped", 12, 100, false, 80, xdpRedirect, checkTunnel},
			{"fits exactly", 0, 1400 - 20 - 40, true, 80, xdpRedirect, checkTunnel},
			{"too big with DF", 0, 1400 - 20 - 40 + 1, true, 80, xdpTX, func(in, out []byte) error {
				return icmpErr(in, out, 14, 4, 1380)
			}},
			{"too big with DF, vlan", 3, 1500, true, 80, xdpTX, func(in, out []byte) error {
				return icmpErr(in, out, 18, 4, 1380)
			}},
			{"too big without DF", 0, 1400, false, 80, xdpPass, unchanged},
			{"no route", 0, 10, true, 81, xdpPass, unchanged},
			{"DR fits", 0, 1400 - 40, true, 82, xdpRedirect, nil},
			{"DR too big with DF", 0, 1400 - 40 + 1, true, 82, xdpTX, func(in, out []byte) error {
				return icmpErr(in, out, 14, 4, 1400)
			}},
		} {
			p := syn(netip.AddrPortFrom(client.Addr(), uint16(2000+i)), c.dport)
			p.vlan, p.payload, p.df, p.tos = c.vlan, c.payload, c.df, 0x10
			in := p.build()
			act, out, err := runNS(o, in)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if act != c.act {
				return fmt.Errorf("%s: action %s, want %s", c.name, actionNames[act], actionNames[c.act])
			}
			if c.check != nil {
				if err := c.check(in, out); err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
			}
		}
		return nil
	})
	ev := events(t, o)
	if ev[evFragNeeded] != 3 || ev[evTooBig] != 1 || ev[evNoRoute] != 1 {
		t.Fatalf("events %v: want 3 frag needed, 1 too big, 1 no route", ev)
	}
}

func unchanged(in, out []byte) error {
	if !bytes.Equal(in, out) {
		return fmt.Errorf("packet changed")
	}
	return nil
}

// checkTunnel: [eth to the gateway from gvs0][outer IPv4][the IP packet].
func checkTunnel(in, out []byte) error {
	l3 := 14
	if binary.BigEndian.Uint16(in[12:]) == 0x8100 {
		l3 = 18
	}
	inner := in[l3:]
	var want []byte
	want = append(want, gwMAC...)
	want = append(want, dirMAC...)
	want = append(want, 0x08, 0x00)
	df := inner[6] & 0x40
	outer := []byte{0x45, inner[1], 0, 0, 0, 0, df, 0, 64, 4, 0, 0}
	binary.BigEndian.PutUint16(outer[2:], uint16(20+len(inner)))
	t4, r4 := tunSrc.As4(), netip.MustParseAddr("198.18.64.10").As4()
	outer = append(append(outer, t4[:]...), r4[:]...)
	binary.BigEndian.PutUint16(outer[10:], checksum(outer))
	want = append(append(want, outer...), inner...)
	if !bytes.Equal(out, want) {
		return fmt.Errorf("output\n%x\nwant\n%x", out, want)
	}
	if checksum(out[14:34]) != 0 {
		return fmt.Errorf("outer checksum does not verify")
	}
	return nil
}

func icmpErr(in, out []byte, l3 int, code byte, mtu uint16) error {
	return icmpCheck(in, out, l3, code, mtu)
}
