// Package tcattach holds what the tc BPF programs' loaders share to
// attach on kernels without TCX (before 6.6): the clsact qdisc and the
// direct-action filter they find again by handle and priority.
package tcattach

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

func dev(ifindex int) netlink.Link {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
}

func clsact(ifindex int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
}

// EnsureClsact adds a clsact qdisc to the interface unless it has one;
// added says whether it did (so that it is removed again on failure).
func EnsureClsact(ifindex int) (added bool, err error) {
	qs, err := netlink.QdiscList(dev(ifindex))
	if err != nil {
		return false, fmt.Errorf("listing qdiscs: %w", err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			return false, nil
		}
	}
	if err := netlink.QdiscAdd(clsact(ifindex)); err != nil {
		return false, fmt.Errorf("adding a clsact qdisc: %w", err)
	}
	return true, nil
}

// FindFilter returns the BPF filter with handle and priority on parent
// (netlink.HANDLE_MIN_INGRESS or HANDLE_MIN_EGRESS), or nil.
func FindFilter(ifindex int, parent, handle uint32, prio uint16) *netlink.BpfFilter {
	fs, err := netlink.FilterList(dev(ifindex), parent)
	if err != nil {
		return nil
	}
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Handle == handle && bf.Priority == prio {
			return bf
		}
	}
	return nil
}

// RemoveClsactIfUnused removes the interface's clsact qdisc when no
// filter is left on it, ingress or egress (another program's keeps it).
func RemoveClsactIfUnused(ifindex int) {
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		if fs, err := netlink.FilterList(dev(ifindex), parent); err != nil || len(fs) > 0 {
			return
		}
	}
	netlink.QdiscDel(clsact(ifindex))
}
