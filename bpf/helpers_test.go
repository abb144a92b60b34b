package bpf

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"gvs/conn"
	"gvs/model"
)

// XDP actions.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

// Constants of gvs.h the tests use.
const (
	fwdTunnel = 2
	fwdRoute  = 3

	destAvailable = 0x1
	destOverload  = 0x2

	connInactive   = 0x1
	connNoOutput   = 0x2
	connControlled = 0x4

	destNone = 0xffffffff

	svcAllowList = 0x1000
)

// Events (enum gvs_event).
const (
	evPass = iota
	evForward
	evDropNodest
	evNoDest
	evConnTableFull
	evFragNeeded
	evNoRoute
	evMalformed
	evTooBig
	evFwdUnsupported
	evReply
	evNoLport
	evICMP
	evTTL
	evEvicted
	evReclaimed
	evUnindexed
	evBusy
	evFamily
	evTemplateFull
	evFrag
	evFragUnknown
	evDenied
	evSyncLost
	evNATICMPSend
	evFwmUntagged
	evFwmPass
	evV6Ext
	evV6Frag
	evRevived
	evNAT64Unsupported
	evNAT64ICMP
	evTmplReclaimed
	evLateReply
	evMax
)

var actionNames = map[uint32]string{0: "ABORTED", 1: "DROP", 2: "PASS", 3: "TX", 4: "REDIRECT"}

// loadObjects loads the data path, or skips the test when this process may
// not (not root, no BPF).
func loadObjects(t testing.TB) *Objects {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	_ = rlimit.RemoveMemlock()
	var o Objects
	// A small connection table: it is preallocated, and a test loads
	// its own.
	if err := LoadObjectsSized(&o, 1<<16); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v", ve)
		}
		if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) {
			t.Skipf("BPF unavailable: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	if err := o.Config.Put(uint32(0), conf(Config{})); err != nil {
		t.Fatal(err)
	}
	// The kernel's default timeouts, as conn.NewTimeouts has them.
	ct := conn.NewTimeouts(model.Timeouts{})
	var to Timeouts
	for s := range to.Tcp {
		to.Tcp[s] = uint32(ct.Of(model.ProtoTCP, conn.State(s)) / time.Second)
	}
	to.Udp = uint32(ct.UDP / time.Second)
	must(t, o.Timeouts.Put(uint32(0), &to))
	return &o
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:]) // network order in memory
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func destMAC(id uint32) [6]byte { return [6]byte{0x02, 0xd0, 0, 0, byte(id >> 8), byte(id)} }

var (
	ifMAC     = [6]byte{0x02, 0x1f, 0, 0, 0, 1}
	clientMAC = [6]byte{0x02, 0xc1, 0, 0, 0, 1}
	vipMAC    = [6]byte{0x02, 0x1f, 0, 0, 0, 9}
)

type svcSpec struct {
	id      uint32
	proto   uint8
	addr    netip.Addr
	port    uint16
	sched   uint32
	flags   uint32
	timeout uint32
	netmask uint32
	slot    uint32
	dests   []uint32 // kernel order
}

func putService(t testing.TB, o *Objects, s svcSpec) {
	t.Helper()
	k := SvcKey{Port: htons(s.port), Proto: s.proto, Af: 4}
	k.Addr[0] = ip4(s.addr)
	v := Svc{Id: s.id, Flags: s.flags, Sched: s.sched, Timeout: s.timeout, Netmask: s.netmask,
		TableSlot: s.slot}
	putList(t, o, &v, s.dests, s.id)
	must(t, o.Services.Put(&k, &v))
	st := SchedState{RrLast: -1, WrrCl: -1}
	must(t, o.SchedState.Put(s.id, &st))
}

// putList sets v's server list to ids, its chunks (if any) written
// under list id list.
func putList(t testing.TB, o *Objects, v *Svc, ids []uint32, list uint32) {
	t.Helper()
	keys, vals := v.SetDests(ids, list)
	for i := range keys {
		must(t, o.SvcChunks.Put(&keys[i], &vals[i]))
	}
}

func putDest(t testing.TB, o *Objects, id uint32, d Dest) {
	t.Helper()
	must(t, o.Dests.Put(id, &d))
}

func drDest(addr netip.Addr, port uint16, weight int32, ifindex uint32, id uint32) Dest {
	d := Dest{Port: htons(port), Method: fwdRoute, Af: 4, Weight: weight, Flags: destAvailable,
		Ifindex: ifindex, Mac: destMAC(id)}
	d.Addr[0] = ip4(addr)
	return d
}

func getDest(t testing.TB, o *Objects, id uint32) Dest {
	t.Helper()
	var d Dest
	must(t, o.Dests.Lookup(id, &d))
	return d
}

func sumStats(t testing.TB, m *ebpf.Map, id uint32) Stats {
	t.Helper()
	var per []Stats
	must(t, m.Lookup(id, &per))
	var s Stats
	for _, p := range per {
		s.Conns += p.Conns
		s.Inpkts += p.Inpkts
		s.Inbytes += p.Inbytes
		s.Outpkts += p.Outpkts
		s.Outbytes += p.Outbytes
	}
	return s
}

func events(t testing.TB, o *Objects) [evMax]uint64 {
	t.Helper()
	var out [evMax]uint64
	for i := range out {
		var per []uint64
		must(t, o.Events.Lookup(uint32(i), &per))
		for _, v := range per {
			out[i] += v
		}
	}
	return out
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts)
	return uint64(ts.Nano())
}

func connKey(proto uint8, src, dst netip.AddrPort) ConnKey {
	k := ConnKey{Cport: htons(src.Port()), Vport: htons(dst.Port()), Proto: proto, Af: 4}
	k.Caddr[0] = ip4(src.Addr())
	k.Vaddr[0] = ip4(dst.Addr())
	return k
}

// run runs the program on one packet and returns its action and output.
func run(t testing.TB, o *Objects, pkt []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(pkt)+512)
	opts := ebpf.RunOptions{Data: pkt, DataOut: out}
	ret, err := o.XdpGvs.Run(&opts)
	if err != nil {
		t.Fatalf("running xdp_gvs on %d bytes: %v", len(pkt), err)
	}
	return ret, opts.DataOut
}

// ---- packets, built by hand ----

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

type pkt struct {
	srcMAC, dstMAC [6]byte
	vlan           uint16 // 802.1Q TCI, 0: untagged
	src, dst       netip.AddrPort
	proto          uint8
	flags          uint8 // TCP
	payload        int
	df             bool
	tos, ttl       uint8
	ipOptions      []byte // a multiple of 4 bytes
}

// checksum is the Internet checksum (RFC 1071), written independently of
// the BPF code's.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func (p pkt) build() []byte {
	if p.proto == 0 {
		p.proto = unix.IPPROTO_TCP
	}
	if p.ttl == 0 {
		p.ttl = 64
	}
	var b []byte
	b = append(b, p.dstMAC[:]...)
	b = append(b, p.srcMAC[:]...)
	if p.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, p.vlan)
	}
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	l3 := len(b)
	hl := 20 + len(p.ipOptions)
	l4len := 8
	if p.proto == unix.IPPROTO_TCP {
		l4len = 20
	}
	tot := hl + l4len + p.payload
	var frag uint16
	if p.df {
		frag = 0x4000
	}
	b = append(b, byte(0x40|hl/4), p.tos)
	b = binary.BigEndian.AppendUint16(b, uint16(tot))
	b = binary.BigEndian.AppendUint16(b, 0x1234)
	b = binary.BigEndian.AppendUint16(b, frag)
	b = append(b, p.ttl, p.proto, 0, 0)
	s4, d4 := p.src.Addr().As4(), p.dst.Addr().As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	b = append(b, p.ipOptions...)
	binary.BigEndian.PutUint16(b[l3+10:], checksum(b[l3:l3+hl]))
	l4 := len(b)
	b = binary.BigEndian.AppendUint16(b, p.src.Port())
	b = binary.BigEndian.AppendUint16(b, p.dst.Port())
	if p.proto == unix.IPPROTO_TCP {
		b = binary.BigEndian.AppendUint32(b, 1000) // seq
		b = binary.BigEndian.AppendUint32(b, 0)    // ack
		b = append(b, 5<<4, p.flags)
		b = binary.BigEndian.AppendUint16(b, 65535) // window
		b = append(b, 0, 0, 0, 0)                   // checksum, urgent
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(8+p.payload))
		b = append(b, 0, 0)
	}
	for i := 0; i < p.payload; i++ {
		b = append(b, byte(i))
	}
	// L4 checksum with the pseudo-header.
	ph := append(append(append([]byte{}, s4[:]...), d4[:]...), 0, p.proto)
	ph = binary.BigEndian.AppendUint16(ph, uint16(l4len+p.payload))
	ph = append(ph, b[l4:]...)
	cs := checksum(ph)
	if p.proto == unix.IPPROTO_TCP {
		binary.BigEndian.PutUint16(b[l4+16:], cs)
	} else {
		binary.BigEndian.PutUint16(b[l4+6:], cs)
	}
	return b
}

// ipTotLen is the IP-level length IPVS counts.
func ipTotLen(b []byte) uint64 {
	off := 14
	if binary.BigEndian.Uint16(b[12:]) == 0x8100 {
		off = 18
	}
	return uint64(binary.BigEndian.Uint16(b[off+2:]))
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// clearHash deletes every entry of a hash map.
func clearHash[K, V any](t testing.TB, m *ebpf.Map, k *K, v *V) {
	t.Helper()
	var keys []K
	it := m.Iterate()
	for it.Next(k, v) {
		keys = append(keys, *k)
	}
	must(t, it.Err())
	for i := range keys {
		must(t, m.Delete(&keys[i]))
	}
}

// conf is c over the defaults (DefaultConfig) of the fields it leaves
// zero that have nonzero defaults.
func conf(c Config) *Config {
	d := DefaultConfig()
	if c.ConnReuseMode == 0 {
		c.ConnReuseMode = d.ConnReuseMode
	}
	if c.SnatReroute == 0 {
		c.SnatReroute = d.SnatReroute
	}
	return &c
}
