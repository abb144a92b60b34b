package xdp

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gvs/bpf"
	"gvs/ipvs"
	"gvs/model"
	"gvs/nftsteer"
	"gvs/tcattach"
)

// Firewall-mark services (-f MARK). XDP runs before netfilter, so the
// data path cannot see the mark an operator's mangle rule sets. gvsd's
// nftables rules (nftsteer, table "gvs", after mangle) duplicate a packet
// carrying a fwmark service's mark out of the veth gvs-fwm0 and drop the
// original; gvs_fwm_tag on gvs-fwm0's tc egress restores what the
// duplication changed and writes the mark into the frame; xdp_gvs on the
// peer gvs-fwm1 schedules it on the mark's service (bpf/fwmark.h). Only a
// flow's first packet goes this way: the connection it creates has the
// packet's real 5-tuple, so the rest of the flow is forwarded where it
// arrives, before netfilter, as any connection.
//
// The veth pair, its programs and the rules are kernel objects: they stay
// when gvsd stops (the data path does not need it) and are removed with
// the last fwmark service and by gvsd --cleanup.
const (
	fwmOut   = "gvs-fwm0" // netfilter duplicates marked packets out of it
	fwmIn    = "gvs-fwm1" // xdp_gvs takes them in here
	fwmTable = "gvs"      // nftsteer's table
)

// nf_dup_ipv4 sets DF on every duplicate; the rule duplicating a packet
// that had DF goes to fwmGWDF, one that had not to fwmGW, and the
// neighbour entries give the two different MACs (gvs_fwm_tag reads the
// last byte: GVS_FWM_DF_CLEAR is 0). Link-local, on gvs-fwm0 only.
var (
	fwmGW    = netip.MustParseAddr("169.254.71.1")
	fwmGWDF  = netip.MustParseAddr("169.254.71.2")
	fwmGWNet = &net.IPNet{IP: net.IPv4(169, 254, 71, 0).To4(), Mask: net.CIDRMask(30, 32)}
	// IPv6: nf_dup_ipv6 changes only the hop limit; one next hop, on
	// the link-local prefix every IPv6 interface routes.
	fwmGW6     = netip.MustParseAddr("fe80::4776:7301")
	fwmMAC6    = net.HardwareAddr{0x02, 0x47, 0x76, 0x73, 0, 2}
	fwmMAC     = net.HardwareAddr{0x02, 0x47, 0x76, 0x73, 0, 0}
	fwmMACDF   = net.HardwareAddr{0x02, 0x47, 0x76, 0x73, 0, 1}
	fwmTCXName = "tc_" + fwmOut
)

// fwmSvcKey is the services map key of a firewall-mark service: the mark
// in the first address word, no protocol, no port (gvs.h).
func fwmSvcKey(k model.ServiceKey) bpf.SvcKey {
	return bpf.SvcKey{Addr: [4]uint32{k.FWMark}, Af: uint8(k.Family)}
}

// fwmRules are the steering rules of the fwmark services in v.
func fwmRules(v *ipvs.IPVS) []nftsteer.Rule {
	var out []nftsteer.Rule
	for _, s := range v.Services() {
		k := s.Config.ServiceKey
		switch {
		case !k.IsFWMark():
		case k.Family == model.IPv6:
			out = append(out, nftsteer.Rule{Mark: k.FWMark, Family: nftsteer.IPv6,
				Dup: &nftsteer.Dup{To: fwmGW6, Device: fwmOut, NotFrom: fwmIn}})
		default:
			out = append(out, nftsteer.Rule{Mark: k.FWMark, Family: nftsteer.IPv4,
				Dup: &nftsteer.Dup{To: fwmGW, ToIfDF: fwmGWDF, Device: fwmOut, NotFrom: fwmIn}})
		}
	}
	return out
}

// syncFwmark brings the steering in line with the fwmark services in v
// (under the table lock, after a fwmark service was written or removed):
// the veth pair and its programs while there is one, the rules for their
// marks, all of it removed when none is left.
func (e *Engine) syncFwmark(v *ipvs.IPVS) error {
	rules := fwmRules(v)
	if len(rules) == 0 {
		return e.removeFwmark()
	}
	in, err := e.ensureFwmLinks()
	if err != nil {
		return fmt.Errorf("firewall-mark steering: %w", err)
	}
	if err := e.objs.FwmIf.Put(uint32(0), uint32(in)); err != nil {
		return err
	}
	t, err := nftsteer.New(fwmTable)
	if err != nil {
		return err
	}
	if err := t.Sync(rules); err != nil {
		return fmt.Errorf("firewall-mark steering: %w", err)
	}
	return nil
}

// ensureFwmLinks creates what is missing of the veth pair, its neighbour
// entries, gvs_fwm_tag on gvs-fwm0 and xdp_gvs on gvs-fwm1, and returns
// gvs-fwm1's index. Run again it changes nothing but the programs (this
// gvsd's).
func (e *Engine) ensureFwmLinks() (int, error) {
	out, err := netlink.LinkByName(fwmOut)
	if err != nil {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fwmOut}, PeerName: fwmIn}
		if err := netlink.LinkAdd(veth); err != nil {
			return 0, fmt.Errorf("creating the veth pair %s/%s: %w", fwmOut, fwmIn, err)
		}
		if out, err = netlink.LinkByName(fwmOut); err != nil {
			return 0, err
		}
	}
	in, err := netlink.LinkByName(fwmIn)
	if err != nil {
		return 0, fmt.Errorf("%s has no peer %s: %w", fwmOut, fwmIn, err)
	}
	// gvs-fwm1 passes nothing to the stack, but bpf_fib_lookup (TUN and
	// NAT next hops not resolved by gvsd) asks as if forwarding from it.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+fwmIn+"/forwarding", []byte("1"), 0); err != nil {
		return 0, err
	}
	for _, l := range []netlink.Link{out, in} {
		if err := netlink.LinkSetUp(l); err != nil {
			return 0, fmt.Errorf("setting %s up: %w", l.Attrs().Name, err)
		}
	}
	for _, n := range []struct {
		ip  netip.Addr
		mac net.HardwareAddr
	}{{fwmGW, fwmMAC}, {fwmGWDF, fwmMACDF}, {fwmGW6, fwmMAC6}} {
		fam := unix.AF_INET
		if n.ip.Is6() {
			fam = unix.AF_INET6
		}
		ne := &netlink.Neigh{LinkIndex: out.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT,
			IP: n.ip.AsSlice(), HardwareAddr: n.mac}
		if err := netlink.NeighSet(ne); err != nil {
			return 0, fmt.Errorf("neighbour %s on %s: %w", n.ip, fwmOut, err)
		}
	}
	// A route to them: nf_dup's lookup then takes the dup address as the
	// next hop (with no route it assumes the packet's own destination
	// on-link, and resolves that).
	rt := &netlink.Route{LinkIndex: out.Attrs().Index, Dst: fwmGWNet, Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(rt); err != nil {
		return 0, fmt.Errorf("route %s dev %s: %w", fwmGWNet, fwmOut, err)
	}
	if err := e.attachFwmTag(out.Attrs().Index); err != nil {
		return 0, err
	}
	if e.fwmXDP == nil {
		a, err := attach(e.opts.PinDir, fwmIn, e.objs.XdpGvs)
		if err != nil {
			return 0, err
		}
		e.fwmXDP = a
	}
	return in.Attrs().Index, nil
}

// attachFwmTag puts gvs_fwm_tag on gvs-fwm0's egress: a pinned TCX link
// (updated in place by a restarted gvsd), or a tc filter where the kernel
// has no TCX.
func (e *Engine) attachFwmTag(ifindex int) error {
	pin := filepath.Join(e.opts.PinDir, fwmTCXName)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		err = l.Update(e.objs.GvsFwmTag)
		l.Close()
		if err == nil {
			return nil
		}
		os.Remove(pin)
	}
	l, err := link.AttachTCX(link.TCXOptions{Program: e.objs.GvsFwmTag, Attach: ebpf.AttachTCXEgress, Interface: ifindex})
	if err == nil {
		defer l.Close()
		if err := l.Pin(pin); err != nil {
			return fmt.Errorf("pinning gvs_fwm_tag's link: %w", err)
		}
		return nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("attaching gvs_fwm_tag to %s: %w", fwmOut, err)
	}
	if _, err := tcattach.EnsureClsact(ifindex); err != nil {
		return err
	}
	flt := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_EGRESS, Handle: 1,
			Priority: 1, Protocol: unix.ETH_P_ALL},
		Fd: e.objs.GvsFwmTag.FD(), Name: "gvs_fwm_tag", DirectAction: true,
	}
	if err := netlink.FilterReplace(flt); err != nil {
		return fmt.Errorf("attaching gvs_fwm_tag to %s: %w", fwmOut, err)
	}
	return nil
}

// removeFwmark undoes ensureFwmLinks and the rules, whatever is there.
func (e *Engine) removeFwmark() error {
	var errs []error
	if t, err := nftsteer.New(fwmTable); err == nil {
		if err := t.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.objs.FwmIf.Put(uint32(0), uint32(0)); err != nil {
		errs = append(errs, err)
	}
	if e.fwmXDP != nil {
		e.fwmXDP.link.Close()
		e.fwmXDP = nil
	}
	removeFwmLinks(e.opts.PinDir)
	return errors.Join(errs...)
}

// removeFwmLinks deletes the veth pair (its peer and programs go with it)
// and the pins of its links.
func removeFwmLinks(dir string) {
	for _, p := range []string{linkPin(dir, fwmIn), filepath.Join(dir, fwmTCXName)} {
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			l.Unpin()
			l.Close()
		}
		os.Remove(p)
	}
	if l, err := netlink.LinkByName(fwmOut); err == nil {
		netlink.LinkDel(l)
	}
}

// CleanupFwmark removes the firewall-mark steering: gvsd --cleanup's.
func CleanupFwmark(dir string) error {
	removeFwmLinks(dir)
	t, err := nftsteer.New(fwmTable)
	if err != nil {
		return err
	}
	return t.Remove()
}

// fwmTemplateAddr is the virtual address word of a fwmark service's
// templates: the mark in network order (htonl), as IPVS keys them.
func fwmTemplateAddr(mark uint32) uint32 { return bits.ReverseBytes32(mark) }

// modelKey is the service key of a services map key.
func modelKey(k bpf.SvcKey) model.ServiceKey {
	if k.Proto == 0 {
		return model.ServiceKey{FWMark: k.Addr[0], Family: model.Family(k.Af)}
	}
	return model.ServiceKey{Protocol: model.Protocol(k.Proto), Addr: wordsAddr(k.Addr, k.Af), Port: htons(k.Port), Family: model.Family(k.Af)}
}

func metaOf(k model.ServiceKey, netmask uint32) svcMeta {
	return svcMeta{netmask: netmask, portZero: k.Port == 0 && !k.IsFWMark(), fwmark: k.FWMark}
}
