// Package realserver prepares a Linux host to be an LVS real server for the
// DR (direct routing, ipvsadm -g) and TUN (IP-in-IP, ipvsadm -i) forwarding
// methods, and undoes it: what the gvs-realserver command does.
//
// In both methods the director hands the real server packets still
// addressed to the VIP, and the real server answers the client directly.
// So the real server must accept packets for the VIP (the VIP goes on lo,
// /32 or /128) without ever claiming the VIP on the wire, or clients and
// routers would send to it directly, bypassing the director (the "ARP
// problem"): conf/*/arp_ignore=1 and arp_announce=2, see arpSettings. In
// TUN mode the packets arrive IP-in-IP; a tc ingress BPF program strips
// the outer header of those whose inner destination is a VIP (decap.c),
// and reverse-path filtering must let them through (rpFilterSetting).
//
// IPv6 VIPs need no sysctl: the kernel answers neighbour solicitations only
// for addresses on the interface they arrive on, so a VIP on lo is never
// advertised.
//
// Everything changed is recorded first in a state file (state.go), so that
// Down restores exactly what Up changed, and Up is idempotent.
//
// Minimum kernel: 4.5 (clsact) with BPF_ADJ_ROOM_MAC from 5.2 for the
// tunnel, 6.3 for IPv4-in-IPv6 and IPv6-in-IPv4 (the decap flags), 6.6 for
// the TCX attachment (otherwise a tc clsact filter is used).
package realserver

import (
	"errors"
	"fmt"
	"gvs/bpffs"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultStateDir holds the state file.
const DefaultStateDir = "/var/lib/gvs-realserver"

// Options of Up and Down.
type Options struct {
	// VIPs to set up (Up) or to remove (Down; none means everything).
	VIPs []netip.Addr
	// Tunnel: decapsulate IP-in-IP on Interface (TUN mode).
	Tunnel bool
	// Interface the director's packets arrive on: its ARP sysctls are set
	// too, and with Tunnel it gets the decapsulation program.
	Interface string
	// Attach mode of the decapsulation program: AttachAuto (default),
	// AttachTCX or AttachTC.
	Attach   string
	StateDir string // DefaultStateDir if empty
	PinDir   string // DefaultPinDir if empty
	// Out receives one line per change made; nil discards them.
	Out io.Writer
}

// UsageError is an error in what was asked, not in doing it.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// ParseVIP parses a VIP: an IPv4 or IPv6 address, optionally with a
// full-length prefix (/32, /128) as LVS recipes write it.
func ParseVIP(s string) (netip.Addr, error) {
	in := s
	if addr, bits, ok := strings.Cut(s, "/"); ok {
		a, err := netip.ParseAddr(addr)
		if err != nil || bits != fmt.Sprint(a.BitLen()) {
			return netip.Addr{}, usagef("bad VIP %q: a VIP is a single address (/32 or /128)", in)
		}
		s = addr
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, usagef("bad VIP %q: not an IP address", in)
	}
	if a.Zone() != "" {
		return netip.Addr{}, usagef("bad VIP %q: no zone allowed", in)
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, usagef("bad VIP %q: not a unicast address a service can use", in)
	}
	return a, nil
}

func (o *Options) defaults() error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.PinDir == "" {
		o.PinDir = DefaultPinDir
	}
	if o.Attach == "" {
		o.Attach = AttachAuto
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	switch o.Attach {
	case AttachAuto, AttachTCX, AttachTC:
	default:
		return usagef("bad attach mode %q: auto, tcx or tc", o.Attach)
	}
	if o.Tunnel && o.Interface == "" {
		return usagef("--tunnel needs --interface: the interface the director's tunnel packets arrive on")
	}
	return nil
}

func (o *Options) note(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

// lookupLink finds an interface, with an error that says what went wrong.
func lookupLink(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("interface %q: no such interface", name)
		}
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	return l, nil
}

func prefixOf(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// Up prepares the real server for opts.VIPs. Run again it changes nothing
// more; with more VIPs it adds them.
func Up(opts Options) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	if len(opts.VIPs) == 0 {
		return usagef("up needs at least one --vip")
	}
	var dev netlink.Link
	if opts.Interface != "" {
		l, err := lookupLink(opts.Interface)
		if err != nil {
			return err
		}
		if l.Attrs().Flags&net.FlagLoopback != 0 {
			return usagef("--interface %s: the interface the director's packets arrive on, not loopback", opts.Interface)
		}
		dev = l
	}
	lo, err := lookupLink("lo")
	if err != nil {
		return err
	}

	st, err := openStore(opts.StateDir, opts.note)
	if err != nil {
		return err
	}
	defer st.close()
	s, err := st.load()
	if err != nil {
		return err
	}
	if opts.Tunnel {
		if s.Tunnel != nil && s.Tunnel.Interface != opts.Interface {
			return fmt.Errorf("the tunnel is already set up on %s: run `gvs-realserver down` first to move it to %s", s.Tunnel.Interface, opts.Interface)
		}
		// Before changing anything: the pins must be able to outlive us.
		if s.Tunnel != nil {
			opts.PinDir = s.Tunnel.PinDir
		}
		if err := bpffs.EnsurePinDir(opts.PinDir, "gvs-realserver", opts.note); err != nil {
			return err
		}
	}

	// A VIP on any interface but lo would be announced by ARP/NDP there.
	all, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	onLo := map[netip.Addr]bool{}
	for _, a := range all {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !slices.Contains(opts.VIPs, ip) {
			continue
		}
		if a.LinkIndex == lo.Attrs().Index {
			onLo[ip] = true
			continue
		}
		name := fmt.Sprint(a.LinkIndex)
		if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
			name = l.Attrs().Name
		}
		return fmt.Errorf("VIP %s is configured on %s: a real server must hold it on lo only, or it answers ARP/ND for it", ip, name)
	}

	// Sysctls first, so the VIP is never announced, not even for a moment.
	// (IPv6 has neither ARP nor rp_filter: only IPv4 VIPs need them.)
	var settings []setting
	if slices.ContainsFunc(opts.VIPs, netip.Addr.Is4) {
		if dev != nil {
			settings = arpSettings(opts.Interface)
		} else {
			settings = arpSettings()
		}
		if opts.Tunnel {
			settings = append(settings, rpFilterSetting(opts.Interface))
		} else if s.Tunnel != nil {
			settings = append(settings, rpFilterSetting(s.Tunnel.Interface))
		}
	}
	for _, set := range settings {
		cur, err := readSysctl(set.key)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", displayKey(set.key), err)
		}
		if set.ok(cur) {
			continue
		}
		if s.sysctl(set.key) < 0 {
			s.Sysctls = append(s.Sysctls, Sysctl{Key: set.key, Previous: cur, Set: set.set})
			if err := st.save(s); err != nil {
				return err
			}
		}
		if err := writeSysctl(set.key, set.set); err != nil {
			return fmt.Errorf("sysctl %s: %w", displayKey(set.key), err)
		}
		opts.note("%s = %s (was %s)", displayKey(set.key), set.set, cur)
	}

	// lo must be up for its addresses to be local.
	if lo.Attrs().Flags&net.FlagUp == 0 {
		s.LoSetUp = true
		if err := st.save(s); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bringing lo up: %w", err)
		}
		opts.note("lo: up")
	}

	for _, vip := range opts.VIPs {
		i := s.vip(vip)
		if onLo[vip] {
			if i < 0 { // there before us: ours to use, not to remove
				s.VIPs = append(s.VIPs, VIP{Addr: vip})
				if err := st.save(s); err != nil {
					return err
				}
			}
			continue
		}
		if i < 0 {
			s.VIPs = append(s.VIPs, VIP{Addr: vip, Added: true})
		} else {
			s.VIPs[i].Added = true
		}
		if err := st.save(s); err != nil {
			return err
		}
		// Scope global, as the LVS HOWTO's `ip addr add VIP/32 dev lo`:
		// the address is only ever the source of replies to the VIP.
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: prefixOf(vip)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding %s to lo: %w", vip, err)
		}
		opts.note("lo: added %s/%d", vip, vip.BitLen())
	}

	if opts.Tunnel {
		if err := tunnelUp(st, s, &opts, dev); err != nil {
			return err
		}
	} else if s.Tunnel != nil && s.Tunnel.Attach != "" {
		// An earlier `up --tunnel`: its map must know the new VIPs too.
		if err := syncVIPs(s.Tunnel.PinDir, s.vipAddrs()); err != nil {
			return err
		}
	}
	return st.save(s)
}

func tunnelUp(st *store, s *State, opts *Options, dev netlink.Link) error {
	ifindex := dev.Attrs().Index
	if s.Tunnel == nil {
		s.Tunnel = &Tunnel{Interface: opts.Interface, Ifindex: ifindex, PinDir: opts.PinDir}
		if err := st.save(s); err != nil {
			return err
		}
	}
	t := s.Tunnel
	if t.Attach != "" && t.Ifindex == ifindex && attached(t, ifindex) && (opts.Attach == AttachAuto || opts.Attach == t.Attach) {
		return syncVIPs(t.PinDir, s.vipAddrs())
	}
	if t.Attach != "" { // moved, gone, or another mode asked for: start over
		if err := detach(t); err != nil {
			return err
		}
		if err := bpffs.EnsurePinDir(t.PinDir, "gvs-realserver", opts.note); err != nil {
			return err
		}
	}
	t.Ifindex = ifindex
	if err := attach(t, ifindex, opts.Attach); err != nil {
		return err
	}
	if err := st.save(s); err != nil {
		return err
	}
	if err := syncVIPs(t.PinDir, s.vipAddrs()); err != nil {
		return err
	}
	opts.note("%s: IP-in-IP decapsulation attached (%s ingress, pinned in %s)", t.Interface, t.Attach, t.PinDir)
	return nil
}

// Down undoes what Up recorded: for opts.VIPs only if given (everything
// once the last VIP goes), else everything. Running it again is harmless.
func Down(opts Options) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	st, err := openStore(opts.StateDir, opts.note)
	if err != nil {
		return err
	}
	defer st.close()
	s, err := st.load()
	if err != nil {
		return err
	}
	if s.empty() {
		opts.note("nothing to undo")
		return st.save(s)
	}

	var errs []error
	if len(opts.VIPs) > 0 {
		for _, vip := range opts.VIPs {
			i := s.vip(vip)
			if i < 0 {
				opts.note("%s: not set up by gvs-realserver, left alone", vip)
				continue
			}
			if err := removeVIP(s.VIPs[i], &opts); err != nil {
				errs = append(errs, err)
				continue
			}
			s.VIPs = slices.Delete(s.VIPs, i, i+1)
		}
		if len(s.VIPs) > 0 || len(errs) > 0 {
			if s.Tunnel != nil && s.Tunnel.Attach != "" {
				if err := syncVIPs(s.Tunnel.PinDir, s.vipAddrs()); err != nil {
					errs = append(errs, err)
				}
			}
			if err := st.save(s); err != nil {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}
		// The last VIP is gone: undo the rest too.
	}

	// Reverse order of Up: tunnel, addresses, lo, sysctls.
	if s.Tunnel != nil {
		if err := detach(s.Tunnel); err != nil {
			errs = append(errs, fmt.Errorf("tunnel: %w", err))
		} else {
			opts.note("%s: IP-in-IP decapsulation removed", s.Tunnel.Interface)
			s.Tunnel = nil
		}
	}
	for i := len(s.VIPs) - 1; i >= 0; i-- {
		if err := removeVIP(s.VIPs[i], &opts); err != nil {
			errs = append(errs, err)
			continue
		}
		s.VIPs = slices.Delete(s.VIPs, i, i+1)
	}
	if s.LoSetUp && len(s.VIPs) == 0 {
		if lo, err := netlink.LinkByName("lo"); err == nil {
			if err := netlink.LinkSetDown(lo); err != nil {
				errs = append(errs, fmt.Errorf("lo: %w", err))
			} else {
				opts.note("lo: down")
				s.LoSetUp = false
			}
		}
	}
	for i := len(s.Sysctls) - 1; i >= 0; i-- {
		c := s.Sysctls[i]
		cur, err := readSysctl(c.Key)
		switch {
		case errors.Is(err, unix.ENOENT):
			// The interface is gone, and its setting with it.
		case err != nil:
			errs = append(errs, fmt.Errorf("sysctl %s: %w", displayKey(c.Key), err))
			continue
		case cur != c.Set:
			opts.note("%s = %s: changed since gvs-realserver set it to %s, left alone", displayKey(c.Key), cur, c.Set)
		default:
			if err := writeSysctl(c.Key, c.Previous); err != nil {
				errs = append(errs, fmt.Errorf("sysctl %s: %w", displayKey(c.Key), err))
				continue
			}
			opts.note("%s = %s (restored)", displayKey(c.Key), c.Previous)
		}
		s.Sysctls = slices.Delete(s.Sysctls, i, i+1)
	}
	if err := st.save(s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func removeVIP(v VIP, opts *Options) error {
	if !v.Added {
		return nil
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	err = netlink.AddrDel(lo, &netlink.Addr{IPNet: prefixOf(v.Addr)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s from lo: %w", v.Addr, err)
	}
	opts.note("lo: removed %s/%d", v.Addr, v.Addr.BitLen())
	return nil
}

// Status returns the record of what Up changed (an empty State if none).
func Status(stateDir string) (*State, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return &State{Version: stateVersion, BootID: bootID(), NetNS: netnsID()}, nil
	}
	st, err := openStore(stateDir, func(string, ...any) {})
	if err != nil {
		return nil, err
	}
	defer st.close()
	return st.load()
}
