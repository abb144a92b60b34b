// Package xdp is the fast engine: the XDP program of package gvs/bpf on
// each --interface does the per-packet work (connection lookup,
// scheduling, persistence, state, counters, DR, TUN, NAT and FULLNAT
// forwarding); this
// package keeps its maps equal to the model's rules, reads its counters and
// connections back, and runs the expiry sweep.
//
// Maps and links are pinned under PinDir: a restarted gvsd loads the pinned
// maps, reattaches in place and keeps every connection.
package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gvs/api"
	"gvs/bpf"
	"gvs/bpffs"
	"gvs/conn"
	"gvs/engine"
	"gvs/ipvs"
	"gvs/model"
	"gvs/stats"
)

// Options configure the engine.
type Options struct {
	Interfaces []string
	// PinDir is where maps and links are pinned (default PinDir).
	PinDir string
	// TunSrc is the outer source address of TUN packets (default: the
	// first IPv4 address of the first interface).
	TunSrc netip.Addr
	// TunSrc6 is the outer source of IPv6-in-IPv6 TUN packets (default:
	// the first global IPv6 address of the first interface).
	TunSrc6 netip.Addr
	// LocalPorts is the FULLNAT source port range (default 1024-32767).
	LocalPorts [2]uint16
	// MaxConns is the connection table's capacity (0: bpf's default,
	// GVS_MAX_CONNS); its memory is taken when the maps are created.
	MaxConns uint32
}

// Engine is the XDP engine.
type Engine struct {
	*engine.Table
	log  *slog.Logger
	opts Options
	objs bpf.Objects
	att  []*attachment

	mu sync.Mutex // ids and slots; taken inside the table lock
	// svcIDs and destIDs hold the ids of the services and servers in the
	// maps and of the deleted ones whose ids are retired, not yet free;
	// svcKeys and destKeys say whose an id is.
	svcIDs    map[model.ServiceKey]uint32
	destIDs   map[model.ServiceKey]map[netip.AddrPort]uint32 // by service, then server
	svcKeys   map[uint32]model.ServiceKey
	destKeys  map[uint32]destRef
	svcPool   *idPool
	destPool  *idPool
	passes    uint64         // sweep passes begun
	refs      *refs          // what the last sweep pass saw
	gone      stats.Counters // counters of the service ids freed, for the totals
	hashSlots slots
	mhSlots   slots
	lists     lists              // svc_chunks (lists.go)
	hops      map[uint32]nextHop // DR next hops by dest id
	addrHops  map[hopKey]hopResult
	// hopsMissing: a server has no next hop yet (tick retries every
	// second while so).
	hopsMissing bool
	// warmed: clients of synced NAT connections whose next hop was
	// looked at, and when (warmClient).
	warmMu sync.Mutex
	warmed map[netip.Addr]time.Time
	// seen holds the services synced by this process: the first sync of
	// a service (new, or recovered after a restart) resets its rr position.
	seen map[model.ServiceKey]bool
	// svcMeta is what the sweep needs to find a connection's template,
	// kept for a deleted service until its id is free (until none of its
	// connections is left).
	svcMeta map[uint32]svcMeta
	dmem    *destMem
	ticks   int
	// sweepEvery is the ticks between expiry sweeps (sweepPeriod).
	sweepEvery int
	// natSrcs is the reply filter last written (nil: not yet).
	natSrcs *bpf.NATSrc
	// natServers is nat_servers' bookkeeping (natservers.go).
	natServers natServers
	// orphans are the reply entries without a connection at the last
	// sweepReplies, by reply key.
	orphans map[bpf.ConnKey]bpf.ConnKey
	// batching defers map updates to the end of a batch (see Batch);
	// dirty holds the services it touched.
	tunSrc   netip.Addr // outer source of TUN packets, if any
	tunSrc6  netip.Addr // the same for IPv6-in-IPv6
	batching bool
	dirty    map[model.ServiceKey]bool
	// pend holds a batch's map writes until flushPending (sync.go); nil
	// outside Batch's sync.
	pend *pending
	// allowed holds the allow map's entries by service id (allow.go).
	allowed map[uint32]map[bpf.AllowKey]bool

	warner eventWarner // rate-limited warnings of data-path events
	// managed are the --interface indexes; warnedIfaces the others a
	// server was found behind (ifaceKnown).
	ifMu         sync.Mutex
	managed      map[int]bool
	warnedIfaces map[int]bool
	// cfg is the config map's value as last written (writeConfig).
	cfgMu sync.Mutex
	cfg   bpf.Config
	// syncEx is the running connection export of a sync master
	// (syncd.go), if any.
	syncEx atomic.Pointer[syncExporter]
	// connStates is the table by state as the last complete sweep pass
	// counted it (ConnStates).
	connStates atomic.Pointer[engine.ConnStates]

	// pullSvcs and pullDests index the model for pullLocked (indexPull),
	// as of model generation pullGen; pullStale says the ids changed.
	pullSvcs  []svcPull
	pullDests []destPull
	pullGen   uint64
	pullStale bool
	// steerFwmark brings netfilter's steering of marked packets in line
	// with the fwmark services (syncFwmark; tests replace it).
	steerFwmark func(*ipvs.IPVS) error
	// fwmXDP is xdp_gvs on gvs-fwm1 while there are firewall-mark
	// services (fwmark.go).
	fwmXDP *attachment

	stop chan struct{}
	wg   sync.WaitGroup
}

type svcMeta struct {
	netmask  uint32
	portZero bool
	fwmark   uint32 // a firewall-mark service's mark
}

// Modes reports how the program is attached, per interface.
func (e *Engine) Modes() map[string]string {
	m := map[string]string{}
	for _, a := range e.att {
		m[a.iface] = a.mode
	}
	return m
}

// New loads (or reopens) the data path and attaches it.
func New(log *slog.Logger, o Options) (*Engine, error) {
	if len(o.Interfaces) == 0 {
		return nil, errors.New("the xdp engine needs at least one --interface")
	}
	if o.PinDir == "" {
		o.PinDir = PinDir
	}
	if err := bpffs.EnsurePinDir(o.PinDir, "gvsd", func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }); err != nil {
		return nil, err
	}
	spec, err := bpf.LoadSpec()
	if err != nil {
		return nil, err
	}
	bpf.SizeConns(spec, o.MaxConns)
	for name, m := range spec.Maps {
		if !strings.HasPrefix(name, ".") && !slices.Contains(bpf.ScratchMaps, name) { // not the data sections
			m.Pinning = ebpf.PinByName
		}
	}
	// An older gvsd pinned its scratch maps: their layout may differ,
	// and nothing reads them.
	for _, name := range bpf.ScratchMaps {
		_ = os.Remove(filepath.Join(o.PinDir, name))
	}
	if err := setAsideGrown(o.PinDir, spec); err != nil {
		return nil, err
	}
	// A services map pinned by a gvs that kept every server id in the
	// value: converted, not refused.
	if ok, err := migrateServices(o.PinDir, spec); err != nil {
		return nil, fmt.Errorf("converting the pinned services map: %w", err)
	} else if ok {
		log.Info("converted the pinned services map to server lists in svc_chunks", "pin_dir", o.PinDir)
	}
	e := newEngine(log, o)
	if err := spec.LoadAndAssign(&e.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: o.PinDir}}); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("the maps pinned under %s are from an incompatible gvs: run gvsd --cleanup (drops their connections): %w", o.PinDir, err)
		}
		return nil, fmt.Errorf("loading the XDP program: %w", err)
	}
	if err := e.objs.LinkPrograms(); err != nil {
		e.objs.Close()
		return nil, err
	}
	// An older gvsd's entries of a map this one extended, while its
	// program still runs (carried again after the attach, below).
	grown := grownObjects(&e.objs)
	carried, err := carryOver(o.PinDir, grown, false)
	if err != nil {
		e.objs.Close()
		return nil, err
	}
	if e.dmem, err = mapDests(e.objs.Dests); err != nil {
		e.objs.Close()
		return nil, err
	}
	if err := e.recoverIDs(); err != nil {
		e.objs.Close()
		return nil, err
	}
	if err := e.recoverAllow(); err != nil {
		e.objs.Close()
		return nil, err
	}
	if err := e.initNATSources(); err != nil {
		e.objs.Close()
		return nil, err
	}
	if err := e.configure(); err != nil {
		e.objs.Close()
		return nil, err
	}
	detachOthers(o.PinDir, append(slices.Clone(o.Interfaces), fwmIn), func(iface string) {
		log.Info("detached the XDP program from an interface no longer in --interface", "interface", iface)
	})
	for _, ifname := range o.Interfaces {
		a, err := attach(o.PinDir, ifname, e.objs.XdpGvs)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.att = append(e.att, a)
	}
	if n, err := carryOver(o.PinDir, grown, true); err != nil {
		log.Warn("carrying the previous gvsd's maps over", "err", err)
	} else if carried += n; carried > 0 {
		log.Info("carried the previous gvsd's entries over to extended maps", "entries", carried)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.RunTimers(e.stop, e.tick)
	}()
	return e, nil
}

// newEngine is an engine with nothing loaded yet.
func newEngine(log *slog.Logger, o Options) *Engine {
	e := &Engine{
		Table: engine.NewTable(ipvs.Options{}), log: log, opts: o,
		svcIDs: map[model.ServiceKey]uint32{}, destIDs: map[model.ServiceKey]map[netip.AddrPort]uint32{},
		hashSlots: newSlots(hashSlots), mhSlots: newSlots(mhSlots), lists: newLists(), seen: map[model.ServiceKey]bool{}, pullStale: true, svcMeta: map[uint32]svcMeta{}, dirty: map[model.ServiceKey]bool{},
		hops: map[uint32]nextHop{}, addrHops: map[hopKey]hopResult{}, stop: make(chan struct{}),
		svcKeys: map[uint32]model.ServiceKey{}, destKeys: map[uint32]destRef{}, refs: newRefs(),
		allowed: map[uint32]map[bpf.AllowKey]bool{}, warmed: map[netip.Addr]time.Time{},
	}
	e.svcPool = newIDPool(maxServices, e.cleanSvc)
	e.destPool = newIDPool(maxDests, e.cleanDest)
	e.steerFwmark = e.syncFwmark
	return e
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return "xdp" }

// Close stops the engine's timers and closes its handles. The program stays
// attached and the maps pinned, so traffic keeps flowing and a new gvsd
// takes over; Cleanup removes them.
func (e *Engine) Close() error {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	e.wg.Wait()
	for _, a := range e.att {
		a.link.Close()
	}
	if e.fwmXDP != nil {
		e.fwmXDP.link.Close()
	}
	if e.dmem != nil {
		e.dmem.close()
	}
	return e.objs.Close()
}

// writeIfaces writes each interface's MAC and MTU (ifmacs): the data
// path's source MAC and its too-big check. Rewritten every 30 s, so an
// MTU change is followed.
func (e *Engine) writeIfaces() error {
	for _, ifname := range e.opts.Interfaces {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil || len(ifc.HardwareAddr) != 6 {
			return fmt.Errorf("interface %s: no Ethernet interface: %v", ifname, err)
		}
		if err := e.writeIface(ifc); err != nil {
			return err
		}
		e.ifMu.Lock()
		if e.managed == nil {
			e.managed = map[int]bool{}
		}
		e.managed[ifc.Index] = true
		e.ifMu.Unlock()
	}
	return nil
}

func (e *Engine) writeIface(ifc *net.Interface) error {
	v := bpf.IfMAC{Mtu: uint32(ifc.MTU)}
	copy(v.Mac[:], ifc.HardwareAddr)
	if err := e.objs.Ifmacs.Put(uint32(ifc.Index), &v); err != nil {
		return fmt.Errorf("ifmacs: %w", err)
	}
	return nil
}

// ifaceKnown reports whether the data path may send out of interface
// ifindex, a server's next hop: only the --interface ones, which run the
// program (a redirect to a device without XDP transmit support would be
// dropped in the kernel after the data path counted it forwarded). A
// server behind another interface is not given a next hop: its DR
// packets pass to the stack (counted no_route) and TUN/NAT ask the FIB;
// gvsd says so once per interface.
func (e *Engine) ifaceKnown(ifindex int) bool {
	e.ifMu.Lock()
	defer e.ifMu.Unlock()
	if e.managed[ifindex] {
		return true
	}
	if !e.warnedIfaces[ifindex] {
		if e.warnedIfaces == nil {
			e.warnedIfaces = map[int]bool{}
		}
		e.warnedIfaces[ifindex] = true
		name := fmt.Sprint(ifindex)
		if ifc, err := net.InterfaceByIndex(ifindex); err == nil {
			name = ifc.Name
		}
		e.log.Warn("a real server is reached through an interface not in --interface: the data path does not forward to it (add the interface to --interface)", "interface", name)
	}
	return false
}

// configure writes the interface MACs, the TUN source and the timeouts.
func (e *Engine) configure() error {
	var tunSrc netip.Addr = e.opts.TunSrc
	tunSrc6 := e.opts.TunSrc6
	if err := e.writeIfaces(); err != nil {
		return err
	}
	for _, ifname := range e.opts.Interfaces {
		_, _, addr, err := ifaceInfo(ifname)
		if err != nil {
			return err
		}
		if !tunSrc.IsValid() {
			tunSrc = addr
		}
		if !tunSrc6.IsValid() {
			tunSrc6 = ifaceAddr6(ifname)
		}
	}
	if tunSrc6.Is6() && !tunSrc6.Is4In6() {
		if err := e.objs.V6Config.Put(uint32(0), &bpf.Config6{TunSrc: addrWords(tunSrc6)}); err != nil {
			return fmt.Errorf("v6_config: %w", err)
		}
		e.tunSrc6 = tunSrc6
	}
	cpus, err := onlineCPUs()
	if err != nil {
		return err
	}
	e.cfg = bpf.DefaultConfig()
	e.cfg.HopGen = 1
	e.cfg.LportMin, e.cfg.LportMax = e.opts.LocalPorts[0], e.opts.LocalPorts[1]
	e.cfg.SetRing(e.objs.ConnRing.MaxEntries(), uint32(cpus))
	if tunSrc.Is4() {
		e.cfg.TunSrc = addrWords(tunSrc)[0]
		e.tunSrc = tunSrc
	}
	e.cfgMu.Lock()
	err = e.writeConfig()
	e.cfgMu.Unlock()
	if err != nil {
		return err
	}
	return e.writeTimeouts()
}

// onlineCPUs counts the CPUs online (the ring's parts: one per CPU that
// can run the program; possible CPUs can be many more on a VM). A CPU
// brought online later shares a part (the data path folds CPU ids).
func onlineCPUs() (int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if n, ok := countCPUList(string(b)); err == nil && ok {
		return n, nil
	}
	return ebpf.PossibleCPU()
}

// countCPUList counts the CPUs of a kernel CPU list ("0-3,8,10-11").
func countCPUList(s string) (int, bool) {
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if found {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || z < a {
			return 0, false
		}
		n += z - a + 1
	}
	return n, n > 0
}

// writeConfig writes e.cfg, the data path's settings, as one value.
// Everything that changes a setting changes e.cfg and calls it, under
// cfgMu.
func (e *Engine) writeConfig() error {
	return e.objs.Config.Put(uint32(0), &e.cfg)
}

func (e *Engine) writeTimeouts() error {
	t := e.Table.Timeouts()
	var v bpf.Timeouts
	def := [...]uint32{2, t.TCP, 120, 60, t.TCPFin, 120, 10, 60, 30, 120, 120}
	copy(v.Tcp[:], def[:])
	v.Udp = t.UDP
	if err := e.objs.Timeouts.Put(uint32(0), &v); err != nil {
		return err
	}
	// SCTP's: the kernel's (ipvsadm --set has none for SCTP).
	var sv bpf.SCTPTimeouts
	for i, d := range conn.SCTPTimeouts() {
		sv.S[i] = uint32(d / time.Second)
	}
	return e.objs.SctpTimeouts.Put(uint32(0), &sv)
}

// addrWords is an address as gvs.h stores it: network byte order.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = binary.LittleEndian.Uint32(b[:])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

func wordsAddr(w [4]uint32, af uint8) netip.Addr {
	if af == 4 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], w[0])
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range w {
		binary.LittleEndian.PutUint32(b[4*i:], w[i])
	}
	return netip.AddrFrom16(b)
}

func htons(p uint16) uint16 { return bits.ReverseBytes16(p) }

func svcKey(k model.ServiceKey) bpf.SvcKey {
	if k.IsFWMark() {
		return fwmSvcKey(k)
	}
	return bpf.SvcKey{Addr: addrWords(k.Addr), Port: htons(k.Port), Proto: uint8(k.Protocol), Af: uint8(k.Family)}
}

var schedIndex = func() map[string]uint32 {
	m := map[string]uint32{}
	for i, n := range model.Schedulers {
		m[n] = uint32(i)
	}
	return m
}()

// checkService refuses what this engine cannot carry: nothing today
// (IPv4 and IPv6 TCP, UDP and SCTP, fwmark services); kept as the one
// place a service is vetted.
func checkService(model.Service) error {
	return nil
}

// maxLocalAddrs6 is GVS_SVC_LADDRS6: the pool's 16 words as IPv6
// addresses.
const maxLocalAddrs6 = 4

// checkLocalAddr refuses a fifth IPv6 FULLNAT local address: the data
// path's pool (gvs_svc.laddrs) holds 16 IPv4 or 4 IPv6 addresses. An
// IPv6 service's IPv4 addresses (NAT64) are in laddrs4, 16 of them, as
// many as the model takes.
func (e *Engine) checkLocalAddr(k model.ServiceKey, a netip.Addr) error {
	if !a.Is6() {
		return nil
	}
	n := 0
	e.Do(func(v *ipvs.IPVS) {
		if s := v.Service(k); s != nil {
			for _, l := range s.LocalAddrs() {
				if l.Is6() {
					n++
				}
			}
		}
	})
	if n >= maxLocalAddrs6 {
		return engine.NotSupported(fmt.Sprintf("an IPv6 service takes at most %d FULLNAT local addresses on the xdp engine", maxLocalAddrs6))
	}
	return nil
}

// checkDest refuses a server the data path cannot forward to for a
// service of family fam and protocol proto.
func (e *Engine) checkDest(fam model.Family, proto model.Protocol, d model.Dest) error {
	if fam == 0 {
		fam = model.IPv4
	}
	// A server of the other family: IPVS takes that for tunnelling only
	// (the data path's tun46.h: IPv4 in IPv6, IPv6 in IPv4); an IPv6
	// service's IPv4 FULLNAT server is translated (NAT64, bpf/nat64.h),
	// TCP and UDP only.
	dfam := model.FamilyOf(d.Addr)
	if dfam != fam && d.Method != model.Tunnel {
		if fam == model.IPv6 && d.Method == model.FullNAT && d.Addr.Is4() {
			if proto == model.ProtoSCTP {
				return engine.NotSupported("an IPv6 SCTP service cannot have an IPv4 FULLNAT server (NAT64) on the xdp engine: NAT64 translates TCP and UDP only")
			}
			return nil
		}
		return model.ErrInvalid
	}
	switch d.Method {
	case model.Route:
		return nil
	case model.Tunnel:
		// The outer header is the server's family: it needs that
		// family's tunnel source.
		if dfam == model.IPv6 && !e.tunSrc6.IsValid() {
			return engine.NotSupported("tunnelling (-i) to an IPv6 server needs an IPv6 outer source address: give gvsd --tun-src with an IPv6 address, or a global IPv6 address on its first --interface")
		}
		if dfam == model.IPv4 && !e.tunSrc.IsValid() {
			return engine.NotSupported("tunnelling (-i) to an IPv4 server needs an IPv4 outer source address: give gvsd --tun-src with an IPv4 address, or an IPv4 address on its first --interface")
		}
		return nil
	case model.Masq, model.FullNAT:
		return nil
	}
	return model.ErrInvalid
}

// opFamily is the family of the service an op is about.
func opFamily(s model.Service) model.Family {
	if s.Family != 0 {
		return s.Family
	}
	if s.Addr.IsValid() {
		return model.FamilyOf(s.Addr)
	}
	return model.IPv4
}

// Check implements the control core's engine check for batches.
func (e *Engine) Check(op api.Op) error {
	switch op.Op {
	case api.AddService, api.EditService:
		return checkService(op.Service.Normalize())
	case api.AddDest, api.EditDest:
		return e.checkDest(opFamily(op.Service), op.Service.Protocol, op.Dest)
	case api.AddLocalAddr:
		return e.checkLocalAddr(op.Service.ServiceKey, op.LocalAddr)
	}
	return nil
}

// AddService implements engine.Engine.
func (e *Engine) AddService(s model.Service) error {
	if err := checkService(s.Normalize()); err != nil {
		return err
	}
	if err := e.Table.AddService(s); err != nil {
		return err
	}
	return e.sync(s.ServiceKey, change{kind: chReplace})
}

// EditService implements engine.Engine.
func (e *Engine) EditService(s model.Service) error {
	if err := checkService(s.Normalize()); err != nil {
		return err
	}
	var oldSched string
	e.Do(func(v *ipvs.IPVS) {
		if cur := v.Service(s.ServiceKey); cur != nil {
			oldSched = cur.Config.Scheduler
		}
	})
	if err := e.Table.EditService(s); err != nil {
		return err
	}
	// A new scheduler starts afresh (init_service); the same one keeps its
	// position.
	return e.sync(s.ServiceKey, change{kind: chService, reset: s.Normalize().Scheduler != oldSched})
}

// DelService implements engine.Engine.
func (e *Engine) DelService(k model.ServiceKey) error {
	if err := e.Table.DelService(k); err != nil {
		return err
	}
	return e.sync(k, change{kind: chReplace})
}

// Flush implements engine.Engine.
func (e *Engine) Flush() error {
	var keys []model.ServiceKey
	e.Do(func(v *ipvs.IPVS) {
		for _, s := range v.Services() {
			keys = append(keys, s.Config.ServiceKey)
		}
	})
	for _, k := range keys {
		if err := e.DelService(k); err != nil {
			return err
		}
	}
	return nil
}

// AddDest implements engine.Engine.
func (e *Engine) AddDest(k model.ServiceKey, d model.Dest) error {
	if err := e.checkDest(opFamily(model.Service{ServiceKey: k}), k.Protocol, d); err != nil {
		return err
	}
	if err := e.Table.AddDest(k, d); err != nil {
		return err
	}
	return e.sync(k, change{kind: chAdded})
}

// EditDest implements engine.Engine.
func (e *Engine) EditDest(k model.ServiceKey, d model.Dest) error {
	if err := e.checkDest(opFamily(model.Service{ServiceKey: k}), k.Protocol, d); err != nil {
		return err
	}
	if err := e.Table.EditDest(k, d); err != nil {
		return err
	}
	return e.sync(k, change{kind: chDestEdited})
}

// DelDest implements engine.Engine.
func (e *Engine) DelDest(k model.ServiceKey, a netip.AddrPort) error {
	var idx = -1
	e.Do(func(v *ipvs.IPVS) {
		if s := v.Service(k); s != nil {
			for i, d := range s.Servers() {
				if d.AddrPort() == a || (a.Port() == 0 && d.Addr == a.Addr()) {
					idx = i
				}
			}
		}
	})
	if err := e.Table.DelDest(k, a); err != nil {
		return err
	}
	return e.sync(k, change{kind: chRemoved, index: idx})
}

// SetTimeouts implements engine.Engine.
func (e *Engine) SetTimeouts(t model.Timeouts) error {
	if err := e.Table.SetTimeouts(t); err != nil {
		return err
	}
	if err := e.writeTimeouts(); err != nil {
		return err
	}
	// Replies on the fast path carry their connection's timeout
	// (struct gvs_reply): a new hop generation sends each back to the
	// slow path once, which takes the new one.
	e.nextHopGen()
	return nil
}

// Zero implements engine.Engine: the model's counters hold the values
// read from BPF, so zeroing them moves the zero point as -Z should.
func (e *Engine) Zero(k *model.ServiceKey) error {
	e.pullStats()
	return e.Table.Zero(k)
}

// now is bpf_ktime_get_coarse_ns's clock (CLOCK_MONOTONIC_COARSE).
func now() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts)
	return uint64(ts.Nano())
}
