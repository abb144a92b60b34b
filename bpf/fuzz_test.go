package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// forService reports whether b could be a packet for one of the fuzz
// services (TCP or UDP to vip, any port: the program decides the rest).
// Everything else must pass untouched.
func forService(b []byte) bool {
	if len(b) < 14 {
		return false
	}
	l3, et := 14, binary.BigEndian.Uint16(b[12:])
	if et == 0x8100 {
		if len(b) < 18 {
			return false
		}
		l3, et = 18, binary.BigEndian.Uint16(b[16:])
	}
	if et == 0x86dd {
		// IPv6 to vip6: the program walks the rest.
		v6 := vip6.As16()
		return len(b) >= l3+40 && bytes.Equal(b[l3+24:l3+40], v6[:])
	}
	if et != 0x0800 || len(b) < l3+20 {
		return false
	}
	ip := b[l3:]
	v := vip.As4()
	return (ip[9] == unix.IPPROTO_TCP || ip[9] == unix.IPPROTO_UDP) && bytes.Equal(ip[16:20], v[:])
}

func FuzzXDP(f *testing.F) {
	o := loadObjects(f)
	// TCP vip:80 DR (rr, weights 1 and 0), UDP vip:53 persistent TUN
	// (no route here: passes), TCP vip:0 persistent port-zero (mh).
	putDest(f, o, 1, drDest(rs1, 80, 1, 1, 1))
	putDest(f, o, 2, drDest(rs2, 80, 0, 1, 2))
	putDest(f, o, 3, tunDest(netip.MustParseAddr("198.18.64.10"), 1))
	putService(f, o, svcSpec{id: 1, proto: unix.IPPROTO_TCP, addr: vip, port: 80, sched: schedRR, dests: []uint32{2, 1}})
	putService(f, o, svcSpec{id: 2, proto: unix.IPPROTO_UDP, addr: vip, port: 53, sched: schedWLC, flags: 1, timeout: 60,
		netmask: 0xffffff00, dests: []uint32{3}})
	putService(f, o, svcSpec{id: 3, proto: unix.IPPROTO_TCP, addr: vip, port: 0, sched: 12 /* mh */, flags: 1 | 8,
		timeout: 60, netmask: 0xffffffff, slot: 0, dests: []uint32{1}})
	must(f, o.Ifmacs.Put(uint32(1), &IfMAC{Mac: ifMAC}))
	must(f, o.Config.Put(uint32(0), conf(Config{TunSrc: ip4(tunSrc)})))
	for i := range 4093 {
		must(f, o.MhTables.Put(uint32(i), uint32(1)))
	}

	seeds := []pkt{syn(client, 80), syn(client, 8080), syn(ap("198.18.9.9:9"), 80)}
	u := syn(client, 53)
	u.proto, u.payload = unix.IPPROTO_UDP, 20
	seeds = append(seeds, u)
	v := syn(client, 80)
	v.vlan, v.ipOptions = 100, []byte{1, 1, 1, 0}
	seeds = append(seeds, v)
	other := syn(client, 80)
	other.dst = ap("198.18.0.7:80")
	seeds = append(seeds, other)
	for _, s := range seeds {
		f.Add(s.build())
	}
	// IPv6: TCP vip6:80 DR, UDP vip6:53 NAT (persistent /64).
	d6 := dest6(netip.AddrPortFrom(rs6, 80), fwdRoute)
	d6.Ifindex = 1
	putDest(f, o, 4, d6)
	putDest(f, o, 5, dest6(rs6NAT, fwdMasq))
	putService6(f, o, svcSpec{id: 4, proto: unix.IPPROTO_TCP, addr: vip6, port: 80, sched: schedRR, dests: []uint32{4}})
	putService6(f, o, svcSpec{id: 5, proto: unix.IPPROTO_UDP, addr: vip6, port: 53, sched: schedRR, flags: 1, timeout: 60,
		netmask: 64, dests: []uint32{5}})
	vp6 := netip.AddrPortFrom(vip6, 80)
	for _, p := range []pkt6{
		{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp6, flags: tcpSYN},
		{srcMAC: clientMAC, dstMAC: vipMAC, vlan: 3, src: client6, dst: vp6, flags: tcpACK, payload: 30},
		{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: netip.AddrPortFrom(vip6, 53), proto: unix.IPPROTO_UDP, payload: 9},
		{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp6, flags: tcpSYN,
			ext: []ext6{{0, []byte{1, 4, 0, 0, 0, 0}}, {43, make([]byte, 22)}, {44, make([]byte, 6)}, {60, []byte{1, 4, 0, 0, 0, 0}}}},
		{srcMAC: clientMAC, dstMAC: vipMAC, src: client6, dst: vp6, flags: tcpSYN, ext: []ext6{{44, []byte{0, 9, 0, 0, 0, 1}}}},
	} {
		f.Add(p.build())
	}
	f.Add(icmp6Frame(clientMAC, vipMAC, client6.Addr(), vip6, 1, 4, 0,
		(pkt6{src: vp6, dst: client6, flags: tcpACK}).build()[14:][:48], 64))
	f.Add(append(append(append([]byte{}, vipMAC[:]...), clientMAC[:]...), 0x86, 0xdd, 0x60, 0, 0, 0))
	f.Add(make([]byte, 14))

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 4000 {
			return // the kernel's test run wants an Ethernet header
		}
		out := make([]byte, len(in)+512)
		opts := ebpf.RunOptions{Data: in, DataOut: out}
		act, err := o.XdpGvs.Run(&opts)
		if err != nil {
			if strings.Contains(err.Error(), "invalid argument") {
				return
			}
			t.Fatalf("run: %v", err)
		}
		switch act {
		case xdpPass:
			if !bytes.Equal(opts.DataOut, in) {
				t.Fatalf("passed a changed packet:\n%x\n%x", in, opts.DataOut)
			}
		case xdpDrop, xdpTX, xdpRedirect:
			if !forService(in) {
				t.Fatalf("action %s for a packet that is for no service: %x", actionNames[act], in)
			}
		default:
			t.Fatalf("action %d", act)
		}
	})
}
