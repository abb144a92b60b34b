// Package hcfwd forwards gvsd's health checks of DR and TUN real servers
// through the VIP (a checker's via_vip): the server sees the check as a
// client's packet, destination VIP:vport, delivered to its MAC (DR) or
// IP-in-IP to its address (TUN), and answers from the VIP it has on lo.
//
// The director owns the VIP, so a socket to it would stay local. Instead
// the checker's socket connects to the server's own address RIP:rport with
// a mark from a reserved range (MarkBase | id, SO_MARK); a tc egress
// program (hcfwd.c) rewrites marked packets to VIP:vport (and
// encapsulates them for TUN) and remembers the flow, and a tc ingress
// program maps the server's replies, and ICMP errors quoting the flow,
// back to RIP:rport for the socket.
//
// The programs are attached with TCX (kernel 6.6), else as clsact
// direct-action filters, to ingress and egress of the interfaces given
// (gvsd's --interface), and are not pinned: they live with the Forwarder
// (Close detaches them; TCX links also go when the process dies; a clsact
// filter left by a crash is replaced by the next New).
package hcfwd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"

	"golang.org/x/sys/unix"
	"gvs/tcattach"
)

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -no-global-types hcfwd hcfwd.c -- -I/usr/include/x86_64-linux-gnu

// The reserved marks: MarkBase | id, id 1 to 65535. Policy routing or
// netfilter rules on these marks also apply to the checks.
const (
	MarkBase uint32 = 0x47560000 // "GV"
	MarkMask uint32 = 0xffff0000
)

// The clsact filters' identity (attach mode tc).
const (
	tcFilterPrio   = 1
	tcFilterHandle = 0x6863 // "hc"
)

// target is struct hc_target in hcfwd.c: network order throughout.
type target struct {
	VIP    [4]byte
	RIP    [4]byte
	VPort  [2]byte
	RPort  [2]byte
	Tunnel uint8
	_      [3]byte
}

func port(p uint16) [2]byte { return [2]byte{byte(p >> 8), byte(p)} }

func targetOf(vip, rip netip.AddrPort, tunnel bool) (target, error) {
	if !vip.Addr().Unmap().Is4() || !rip.Addr().Unmap().Is4() {
		return target{}, fmt.Errorf("via_vip: %s -> %s: IPv4 only", vip, rip)
	}
	t := target{VIP: vip.Addr().Unmap().As4(), RIP: rip.Addr().Unmap().As4(), VPort: port(vip.Port()), RPort: port(rip.Port())}
	if tunnel {
		t.Tunnel = 1
	}
	return t, nil
}

// Forwarder owns the programs, their attachments and the marks.
type Forwarder struct {
	log  *slog.Logger
	objs hcfwdObjects

	mu      sync.Mutex
	next    uint32          // the last id handed out
	used    map[uint32]bool // ids in use
	closers []func() error  // detach, newest last
	modes   []string
}

// load loads the programs and their (unpinned) maps.
func load() (*hcfwdObjects, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lifting the memlock limit: %w", err)
	}
	var objs hcfwdObjects
	if err := loadHcfwdObjects(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading the health check forwarding programs: %+v", ve)
		}
		return nil, fmt.Errorf("loading the health check forwarding programs: %w", err)
	}
	return &objs, nil
}

// New loads the programs and attaches them to ingress and egress of each
// interface. Nothing stays attached if it fails.
func New(log *slog.Logger, ifaces []string) (*Forwarder, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("health check forwarding: no interface")
	}
	objs, err := load()
	if err != nil {
		return nil, err
	}
	f := &Forwarder{log: log, objs: *objs, used: map[uint32]bool{}}
	for _, name := range ifaces {
		lk, err := netlink.LinkByName(name)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("health check forwarding: interface %s: %w", name, err)
		}
		idx := lk.Attrs().Index
		for _, dir := range []struct {
			prog    *ebpf.Program
			attach  ebpf.AttachType
			parent  uint32
			anchor  link.Anchor
			dirName string
		}{
			{f.objs.HcfwdIngress, ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS, link.Head(), "ingress"},
			{f.objs.HcfwdEgress, ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS, link.Tail(), "egress"},
		} {
			mode, err := f.attach(idx, dir.prog, dir.attach, dir.parent, dir.anchor)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("health check forwarding: %s %s: %w", name, dir.dirName, err)
			}
			f.modes = append(f.modes, name+" "+dir.dirName+" "+mode)
		}
	}
	return f, nil
}

// Modes says how each program is attached ("eth0 ingress tcx", ...).
func (f *Forwarder) Modes() []string { return f.modes }

// attach attaches prog to ifindex with TCX, or as a clsact filter where
// the kernel has no TCX; it records how to undo it.
func (f *Forwarder) attach(ifindex int, prog *ebpf.Program, at ebpf.AttachType, parent uint32, anchor link.Anchor) (string, error) {
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: at, Anchor: anchor})
	if err == nil {
		f.closers = append(f.closers, l.Close)
		return "tcx", nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return "", fmt.Errorf("attaching with TCX: %w", err)
	}
	added, err := tcattach.EnsureClsact(ifindex)
	if err != nil {
		return "", err
	}
	if old := tcattach.FindFilter(ifindex, parent, tcFilterHandle, tcFilterPrio); old != nil {
		netlink.FilterDel(old) // a crashed gvsd's
	}
	flt := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: parent, Handle: tcFilterHandle,
			Priority: tcFilterPrio, Protocol: unix.ETH_P_ALL},
		Fd: prog.FD(), Name: "gvs_hcfwd", DirectAction: true,
	}
	if err := netlink.FilterAdd(flt); err != nil {
		if added {
			tcattach.RemoveClsactIfUnused(ifindex)
		}
		return "", fmt.Errorf("adding a tc filter: %w", err)
	}
	f.closers = append(f.closers, func() error {
		var err error
		if cur := tcattach.FindFilter(ifindex, parent, tcFilterHandle, tcFilterPrio); cur != nil {
			err = netlink.FilterDel(cur)
		}
		if added {
			tcattach.RemoveClsactIfUnused(ifindex)
		}
		return err
	})
	return "tc", nil
}

// Add gives a mark for checks that must reach rip as a packet to vip
// does: the checker's socket, marked with it, connects to rip; the server
// sees vip (DR: delivered to rip's MAC; tunnel: IP-in-IP to rip). IPv4
// only. Remove releases it.
func (f *Forwarder) Add(vip, rip netip.AddrPort, tunnel bool) (uint32, error) {
	t, err := targetOf(vip, rip, tunnel)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used == nil {
		return 0, errors.New("health check forwarding: closed")
	}
	// Round robin over the ids, so a released mark is reused as late as
	// possible (its TIME_WAIT packets long gone).
	id := uint32(0)
	for range 1 << 16 {
		f.next = f.next%0xffff + 1
		if !f.used[f.next] {
			id = f.next
			break
		}
	}
	if id == 0 {
		return 0, errors.New("health check forwarding: all 65535 marks in use")
	}
	mark := MarkBase | id
	if err := f.objs.HcTargets.Put(mark, &t); err != nil {
		return 0, fmt.Errorf("health check forwarding: %w", err)
	}
	f.used[id] = true
	return mark, nil
}

// Remove releases a mark Add gave.
func (f *Forwarder) Remove(mark uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used == nil || mark&MarkMask != MarkBase || !f.used[mark&^MarkMask] {
		return
	}
	delete(f.used, mark&^MarkMask)
	if err := f.objs.HcTargets.Delete(mark); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		f.log.Warn("health check forwarding: removing a mark", "mark", fmt.Sprintf("%#x", mark), "err", err)
	}
}

// Close detaches the programs and frees them.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for i := len(f.closers) - 1; i >= 0; i-- {
		if err := f.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	f.closers = nil
	if f.used != nil {
		f.used = nil
		errs = append(errs, f.objs.Close())
	}
	return errors.Join(errs...)
}
