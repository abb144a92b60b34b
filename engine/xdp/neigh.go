package xdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// nextHop is where the director sends a DR packet for a real server: the
// interface the server is reached on and the server's MAC address.
type nextHop struct {
	ifindex int
	mac     net.HardwareAddr
}

// resolve finds the interface toward addr (which must be on-link: direct
// routing needs the real server on the director's segment) and its MAC
// from the neighbour table, making the kernel ask (ARP or neighbour
// discovery) when it is not there yet.
func resolve(addr netip.Addr, wait time.Duration) (nextHop, error) {
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil || len(routes) == 0 {
		return nextHop{}, fmt.Errorf("no route to real server %s: %v", addr, err)
	}
	r := routes[0]
	if r.Gw != nil && !r.Gw.Equal(addr.AsSlice()) {
		return nextHop{}, fmt.Errorf("real server %s is behind gateway %s: direct routing needs it on the director's segment", addr, r.Gw)
	}
	deadline := time.Now().Add(wait)
	for probed := false; ; {
		if mac := lookupNeigh(r.LinkIndex, addr); mac != nil {
			return nextHop{ifindex: r.LinkIndex, mac: mac}, nil
		}
		if !probed {
			probe(addr)
			probed = true
		}
		if time.Now().After(deadline) {
			return nextHop{}, fmt.Errorf("real server %s does not answer ARP/ND", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lookupNeigh(ifindex int, addr netip.Addr) net.HardwareAddr {
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(ifindex, family)
	if err != nil {
		return nil
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.Unmap() != addr || len(n.HardwareAddr) != 6 {
			continue
		}
		if n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_PERMANENT|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_NOARP) != 0 {
			return n.HardwareAddr
		}
	}
	return nil
}

// probe makes the kernel resolve addr: a datagram to the discard port
// needs the neighbour entry first.
func probe(addr netip.Addr) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 9)))
	if err != nil {
		return
	}
	c.Write(nil)
	c.Close()
}

// resolveRouted resolves the next hop toward a TUN or NAT server: the
// server itself when on-link, else its gateway (bpf_fib_lookup, and the
// cached next hop, both need a resolved neighbour).
func resolveRouted(addr netip.Addr, wait time.Duration) (nextHop, error) {
	routes, err := netlink.RouteGet(addr.AsSlice())
	if err != nil || len(routes) == 0 {
		return nextHop{}, fmt.Errorf("no route to real server %s: %v", addr, err)
	}
	hop := addr
	if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok && routes[0].Gw != nil {
		hop = gw.Unmap()
	}
	return resolve(hop, wait)
}

// hopResult is what resolve found for one address.
type hopResult struct {
	hop nextHop
	err error
}

// hopKey is a server address and how it is reached: DR needs it on the
// segment; TUN and NAT take the route's gateway if there is one.
type hopKey struct {
	addr    netip.Addr
	gateway bool
}

// resolve finds k's next hop, waiting up to wait for the neighbour.
func (k hopKey) resolve(wait time.Duration) (nextHop, error) {
	if k.gateway {
		return resolveRouted(k.addr, wait)
	}
	return resolve(k.addr, wait)
}

// hopOf is a server's next hop, resolved once per address until the next
// refreshHops: a batch of many services on one server asks the kernel
// once, and a server that does not answer costs one wait, not one per
// service.
func (e *Engine) hopOf(addr netip.Addr, gateway bool) (nextHop, error) {
	k := hopKey{addr, gateway}
	if r, ok := e.addrHops[k]; ok {
		return r.hop, r.err
	}
	h, err := k.resolve(resolveFor)
	if err != nil {
		e.log.Warn("next hop not resolved yet; retrying", "server", addr, "err", err)
		e.hopsMissing = true
	}
	e.addrHops[k] = hopResult{h, err}
	return h, err
}

// resolveMisses has the kernel resolve the next hops the data path found
// without a neighbour entry (the neigh_miss map), and forgets them: the
// data path records them again if they are still missing next time.
func (e *Engine) resolveMisses() {
	var key uint32
	var at uint64
	var seen []uint32
	it := e.objs.NeighMiss.Iterate()
	for it.Next(&key, &at) && len(seen) < 256 {
		seen = append(seen, key)
	}
	for _, k := range seen {
		e.objs.NeighMiss.Delete(&k)
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], k) // the address as it lies in the packet
		probe(netip.AddrFrom4(b))
	}
	// IPv6 next hops: the same, by neighbour discovery.
	var key6 [4]uint32
	var seen6 [][4]uint32
	it6 := e.objs.NeighMiss6.Iterate()
	for it6.Next(&key6, &at) && len(seen6) < 256 {
		seen6 = append(seen6, key6)
	}
	for _, k := range seen6 {
		e.objs.NeighMiss6.Delete(&k)
		probe(wordsAddr(k, 6))
	}
}
