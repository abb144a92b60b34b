package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gvs/bpffs"
	"gvs/tcattach"
)

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -no-global-types decap decap.c -- -I/usr/include/x86_64-linux-gnu

// Pin names under the pin directory.
const (
	pinMap  = "gvs_rs_vips" // the VIP map (pinned by name from decap.c)
	pinLink = "link"        // the TCX link (attach mode tcx)
	pinProg = "prog"        // the program (attach mode tc; the filter holds it)
)

// Attach modes of the decapsulation program.
const (
	AttachAuto = "auto" // tcx where the kernel has it (6.6), else tc
	AttachTCX  = "tcx"  // a BPF link on the TCX ingress hook (kernel 6.6)
	AttachTC   = "tc"   // a direct-action bpf filter on a clsact qdisc (kernel 4.5)
)

// The clsact filter's identity, for the tc attach mode.
const (
	tcFilterPrio   = 1
	tcFilterHandle = 0x6773 // "gs"
	tcFilterName   = "gvs_rs_decap"
)

// vipKey is struct vip_key in decap.c: the address in 16 bytes, IPv4 as
// ::ffff:a.b.c.d.
type vipKey [16]byte

func keyOf(a netip.Addr) vipKey { return vipKey(a.As16()) }

// loadObjects loads the program, creating the VIP map pinned in pinDir or
// reusing the one already pinned there.
func loadObjects(pinDir string) (*decapObjects, error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lifting the memlock limit: %w", err)
	}
	var objs decapObjects
	err := loadDecapObjects(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading the decapsulation program: %+v", ve)
		}
		return nil, fmt.Errorf("loading the decapsulation program: %w", err)
	}
	return &objs, nil
}

// syncVIPs makes the pinned VIP map hold exactly vips.
func syncVIPs(pinDir string, vips []netip.Addr) error {
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, pinMap), nil)
	if err != nil {
		return fmt.Errorf("opening the VIP map: %w", err)
	}
	defer m.Close()
	want := map[vipKey]bool{}
	for _, v := range vips {
		want[keyOf(v)] = true
		if err := m.Put(keyOf(v), uint8(1)); err != nil {
			return fmt.Errorf("VIP map: adding %s: %w", v, err)
		}
	}
	var k vipKey
	var val uint8
	var stale []vipKey
	it := m.Iterate()
	for it.Next(&k, &val) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("VIP map: %w", err)
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("VIP map: %w", err)
		}
	}
	return nil
}

// attached reports whether the decapsulation program of a previous run is
// still in place on ifindex.
func attached(t *Tunnel, ifindex int) bool {
	switch t.Attach {
	case AttachTCX:
		l, err := link.LoadPinnedLink(filepath.Join(t.PinDir, pinLink), nil)
		if err != nil {
			return false
		}
		defer l.Close()
		info, err := l.Info()
		if err != nil || info.TCX() == nil {
			return false
		}
		return int(info.TCX().Ifindex) == ifindex
	case AttachTC:
		if _, err := os.Stat(filepath.Join(t.PinDir, pinMap)); err != nil {
			return false
		}
		return tcattach.FindFilter(ifindex, netlink.HANDLE_MIN_INGRESS, tcFilterHandle, tcFilterPrio) != nil
	}
	return false
}

// attach loads the program and attaches it to ingress of ifindex, pinning
// what must outlive this process. It sets t.Attach and t.ClsactAdded.
func attach(t *Tunnel, ifindex int, mode string) error {
	objs, err := loadObjects(t.PinDir)
	if err != nil {
		return err
	}
	defer objs.Close()
	prog := objs.GvsRsDecap

	if mode == AttachAuto || mode == AttachTCX {
		os.Remove(filepath.Join(t.PinDir, pinLink)) // defunct: its interface is gone
		l, err := link.AttachTCX(link.TCXOptions{
			Interface: ifindex,
			Program:   prog,
			Attach:    ebpf.AttachTCXIngress,
			Anchor:    link.Head(), // before other programs: they see the inner packet
		})
		if err == nil {
			defer l.Close()
			if err := l.Pin(filepath.Join(t.PinDir, pinLink)); err != nil {
				return fmt.Errorf("pinning the TCX link: %w", err)
			}
			t.Attach = AttachTCX
			return nil
		}
		if mode == AttachTCX || !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("attaching to TCX ingress: %w", err)
		}
	}

	// Legacy tc: clsact qdisc, direct-action bpf filter. The filter holds
	// the program; the pin lets a later run find it.
	added, err := tcattach.EnsureClsact(ifindex)
	if err != nil {
		return err
	}
	t.ClsactAdded = t.ClsactAdded || added
	if f := tcattach.FindFilter(ifindex, netlink.HANDLE_MIN_INGRESS, tcFilterHandle, tcFilterPrio); f != nil {
		netlink.FilterDel(f)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    netlink.HANDLE_MIN_INGRESS,
			Handle:    tcFilterHandle,
			Priority:  tcFilterPrio,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         tcFilterName,
		DirectAction: true,
	}
	if err := netlink.FilterAdd(f); err != nil {
		return fmt.Errorf("adding the tc ingress filter: %w", err)
	}
	os.Remove(filepath.Join(t.PinDir, pinProg))
	if err := prog.Pin(filepath.Join(t.PinDir, pinProg)); err != nil {
		return fmt.Errorf("pinning the program: %w", err)
	}
	t.Attach = AttachTC
	return nil
}

// detach removes what attach did: the TCX link, or the tc filter (and the
// clsact qdisc if attach added it and nothing else uses it), then the pins.
// An interface that is gone took its attachment with it.
func detach(t *Tunnel) error {
	if t.Attach != "" && !bpffs.On(t.PinDir) && !bpffs.On(filepath.Dir(t.PinDir)) {
		// Not "already gone": the BPF file system is not visible here.
		hint := ""
		if ns := bpffs.IPNetnsExec(); ns != "" {
			hint = fmt.Sprintf(" (under `ip netns exec`; use nsenter --net=/run/netns/%s)", ns)
		}
		return fmt.Errorf("the pins in %s are not visible here%s", t.PinDir, hint)
	}
	var errs []error
	switch t.Attach {
	case AttachTCX:
		if l, err := link.LoadPinnedLink(filepath.Join(t.PinDir, pinLink), nil); err == nil {
			if err := l.Unpin(); err != nil {
				errs = append(errs, err)
			}
			l.Close() // the last reference: detaches
		}
	case AttachTC:
		if lk, err := netlink.LinkByName(t.Interface); err == nil && lk.Attrs().Index == t.Ifindex {
			if f := tcattach.FindFilter(t.Ifindex, netlink.HANDLE_MIN_INGRESS, tcFilterHandle, tcFilterPrio); f != nil {
				if err := netlink.FilterDel(f); err != nil {
					errs = append(errs, fmt.Errorf("removing the tc filter: %w", err))
				}
			}
			if t.ClsactAdded {
				tcattach.RemoveClsactIfUnused(t.Ifindex)
			}
		}
	}
	for _, name := range []string{pinLink, pinProg, pinMap} {
		if err := os.Remove(filepath.Join(t.PinDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// EBUSY: the pin directory is itself a mount point; it stays.
	if err := os.Remove(t.PinDir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EBUSY) {
		errs = append(errs, fmt.Errorf("%s: %w", t.PinDir, err))
	}
	return errors.Join(errs...)
}
