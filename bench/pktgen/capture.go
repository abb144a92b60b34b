package pktgen

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf/link"

	"gvs/bpf/benchprog"
)

// Capture is bpf/benchprog's capture program attached (XDP, native
// mode) to an interface: it counts every frame that arrives there, keeps
// the first 64 (each cut to 64 bytes) and drops them all, ARP included.
// It gives a veth end the NAPI that live frames need. Needs root.
type Capture struct {
	o benchprog.FloodObjects
	l link.Link
}

// StartCapture attaches a capture to interface iface of the namespace
// at netns ("": the caller's).
func StartCapture(netns, iface string) (*Capture, error) {
	c := &Capture{}
	if err := benchprog.LoadFlood(&c.o); err != nil {
		return nil, fmt.Errorf("pktgen: loading the capture program: %w", err)
	}
	err := InNetNS(netns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		c.l, err = link.AttachXDP(link.XDPOptions{Program: c.o.Capture, Interface: ifi.Index, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		c.o.Close()
		return nil, fmt.Errorf("pktgen: capture on %s: %w", iface, err)
	}
	return c, nil
}

// Count is the number of frames seen so far.
func (c *Capture) Count() (uint64, error) {
	var n uint64
	err := c.o.CapCount.Lookup(uint32(0), &n)
	return n, err
}

// Frames are the first frames seen (up to 64, each cut to 64 bytes, or
// to 60 or 14 when shorter).
func (c *Capture) Frames() ([][]byte, error) {
	n, err := c.Count()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i := range min(n, benchprog.CapSlots) {
		var s benchprog.CapSlot
		if err := c.o.CapFrames.Lookup(uint32(i), &s); err != nil {
			return out, err
		}
		out = append(out, append([]byte(nil), s.Data[:min(int(s.Len), benchprog.CapBytes)]...))
	}
	return out, nil
}

// Close detaches the program.
func (c *Capture) Close() error {
	if c.l != nil {
		c.l.Close()
	}
	return c.o.Close()
}
