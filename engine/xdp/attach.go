package xdp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// PinDir is where the engine pins its maps and links, so that a restarted
// (or upgraded) gvsd finds its connections and stays attached.
const PinDir = "/sys/fs/bpf/gvs"

// attachment is the XDP program on one interface.
type attachment struct {
	iface string
	mode  string // "native" or "generic"
	link  link.Link
}

func linkPin(dir, iface string) string { return filepath.Join(dir, "link_"+iface) }

// attach puts prog on iface: on the pinned link of a previous gvsd if there
// is one (replacing the program in place, so no packet goes unhandled),
// else a new link, native mode where the driver has it, generic otherwise.
func attach(dir, iface string, prog *ebpf.Program) (*attachment, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	pin := linkPin(dir, iface)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if err := l.Update(prog); err == nil {
			return &attachment{iface: iface, mode: "kept from the previous gvsd", link: l}, nil
		}
		l.Unpin()
		l.Close()
	}
	var l link.Link
	mode := "native"
	l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPDriverMode})
	if err != nil {
		mode = "generic"
		var gerr error
		l, gerr = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: link.XDPGenericMode})
		if gerr != nil {
			return nil, fmt.Errorf("attaching XDP to %s: native: %v; generic: %w", iface, err, gerr)
		}
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		return nil, fmt.Errorf("pinning the XDP link of %s: %w", iface, err)
	}
	return &attachment{iface: iface, mode: mode, link: l}, nil
}

// Cleanup detaches every pinned XDP link and removes the pins, and the
// firewall-mark steering (fwmark.go): what `gvsd --cleanup` and an
// uninstall do. Connections in the maps are lost.
func Cleanup(dir string) error {
	if err := CleanupFwmark(dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), "link_") {
			if l, err := link.LoadPinnedLink(p, nil); err == nil {
				l.Unpin()
				l.Close()
				continue
			}
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// detachOthers removes the pinned XDP links of interfaces no longer in
// keep, so an interface dropped from --interface stops forwarding.
func detachOthers(dir string, keep []string, log func(iface string)) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		iface, ok := strings.CutPrefix(e.Name(), "link_")
		if !ok || slices.Contains(keep, iface) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			l.Unpin()
			l.Close()
			log(iface)
		}
	}
}
