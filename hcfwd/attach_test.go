package hcfwd

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestAttach attaches to a dummy interface in a namespace of its own (it
// goes with the test's thread) and checks that Close detaches.
func TestAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and attaches BPF programs")
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread and its namespace end with this goroutine
		done <- attachInNewNS()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
	}
}

func attachInNewNS() error {
	ns, err := netns.New()
	if err != nil {
		return fmt.Errorf("new namespace: %w", err)
	}
	defer ns.Close()
	// A veth pair: the dummy driver may not be built here.
	dev := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hc0"}, PeerName: "hc1"}
	if err := netlink.LinkAdd(dev); err != nil {
		return fmt.Errorf("adding a veth pair: %w", err)
	}
	lk, err := netlink.LinkByName("hc0")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lk); err != nil {
		return err
	}
	idx := lk.Attrs().Index
	count := func(at ebpf.AttachType) int {
		r, err := link.QueryPrograms(link.QueryOptions{Target: idx, Attach: at})
		if err != nil {
			return -1
		}
		return len(r.Programs)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(log, []string{"hc0", "nope0"}); err == nil {
		return fmt.Errorf("a missing interface accepted")
	}
	if n, m := count(ebpf.AttachTCXIngress), count(ebpf.AttachTCXEgress); n != 0 || m != 0 {
		return fmt.Errorf("a failed New left %d ingress and %d egress programs", n, m)
	}
	f, err := New(log, []string{"hc0"})
	if err != nil {
		return err
	}
	if want := []string{"hc0 ingress tcx", "hc0 egress tcx"}; !slices.Equal(f.Modes(), want) {
		f.Close()
		return fmt.Errorf("modes %v, want %v", f.Modes(), want)
	}
	if n, m := count(ebpf.AttachTCXIngress), count(ebpf.AttachTCXEgress); n != 1 || m != 1 {
		f.Close()
		return fmt.Errorf("attached: %d ingress and %d egress programs, want 1 and 1", n, m)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if n, m := count(ebpf.AttachTCXIngress), count(ebpf.AttachTCXEgress); n != 0 || m != 0 {
		return fmt.Errorf("after Close: %d ingress and %d egress programs", n, m)
	}
	if _, err := f.Add(netip4("198.18.0.1:80"), netip4("198.18.1.1:80"), false); err == nil {
		return fmt.Errorf("Add after Close accepted")
	}
	return nil
}
