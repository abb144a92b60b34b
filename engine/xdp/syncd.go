package xdp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"gvs/bpf"
	"gvs/conn"
	"gvs/engine"
	"gvs/model"
)

// Connection synchronization (gvs/ipvssync), the engine's side.
//
// Master: SyncChanges sets config.sync_master; the data path then writes
// the connections due to be sent to sync_events (bpf/sync.h: TCP state
// changes and every sync_period packets, as the kernel), which a reader
// turns into SyncConns, a controlled connection's template first. The
// expiry sweep, which reads the whole table every second anyway, adds a
// refresh: each established TCP connection, UDP flow and template once
// per syncRefresh, spread over the period by a hash of its key, so
// entries that see few packets, templates, and records the ring had no
// room for still reach the backups before their timeouts run out there.
//
// Backup: InstallSynced resolves each entry's service and server to
// their ids and installs it with gvs_sync_install (bpf/sync.h), which
// follows conn.h's ownership rules. Entries learnt so carry
// GVS_CONN_F_SYNCED.

const (
	syncThreshold = 3  // net.ipv4.vs.sync_threshold's defaults
	syncPeriod    = 50 //
	// syncRefresh is how often an entry is sent again from the table.
	syncRefresh  = 60 // seconds (sweep passes)
	connNoOutput = 0x2
	connSynced   = 0x20 // GVS_CONN_F_SYNCED
)

// syncExporter is a running SyncChanges.
type syncExporter struct {
	out     chan []engine.SyncConn
	refresh chan []engine.SyncConn
	pending []engine.SyncConn // the sweep's refresh, sent at its end
}

// SyncChanges implements engine.Syncer.
func (e *Engine) SyncChanges(ctx context.Context) (<-chan []engine.SyncConn, error) {
	rd, err := ringbuf.NewReader(e.objs.SyncEvents)
	if err != nil {
		return nil, fmt.Errorf("sync_events: %w", err)
	}
	ex := &syncExporter{out: make(chan []engine.SyncConn, 64), refresh: make(chan []engine.SyncConn, 4)}
	if !e.syncEx.CompareAndSwap(nil, ex) {
		rd.Close()
		return nil, errors.New("a sync master is already exporting this engine's connections")
	}
	if err := e.setSyncMaster(true); err != nil {
		e.syncEx.Store(nil)
		rd.Close()
		return nil, err
	}
	recs := make(chan []engine.SyncConn, 64)
	go func() { // the ring's reader
		defer close(recs)
		var r ringbuf.Record
		for {
			if err := rd.ReadInto(&r); err != nil {
				if !errors.Is(err, ringbuf.ErrClosed) {
					e.log.Warn("sync_events", "err", err)
				}
				return
			}
			if len(r.RawSample) < int(unsafe.Sizeof(bpf.SyncRec{})) {
				continue
			}
			var rec bpf.SyncRec
			if _, err := binary.Decode(r.RawSample, binary.LittleEndian, &rec); err != nil {
				continue
			}
			if b := e.syncRecord(&rec.Key, &rec.Conn, true); len(b) > 0 {
				recs <- b
			}
		}
	}()
	go func() {
		defer close(ex.out)
		defer func() {
			if err := e.setSyncMaster(false); err != nil {
				e.log.Warn("config", "err", err)
			}
			e.syncEx.Store(nil)
			rd.Close()
			for range recs { // until the reader has gone
			}
		}()
		for {
			var b []engine.SyncConn
			select {
			case <-ctx.Done():
				return
			case b = <-recs:
			case b = <-ex.refresh:
			}
			// The daemon reads until the channel is closed, also after
			// ctx ends: a batch taken is handed over, never dropped.
			ex.out <- b
		}
	}()
	return ex.out, nil
}

func (e *Engine) setSyncMaster(on bool) error {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	e.cfg.SyncMaster, e.cfg.SyncThreshold, e.cfg.SyncPeriod = 0, syncThreshold, syncPeriod
	if on {
		e.cfg.SyncMaster = 1
	}
	return e.writeConfig()
}

// syncRecord converts a connection (and, withTemplate, its template
// first) for the sync master.
func (e *Engine) syncRecord(k *bpf.ConnKey, c *bpf.Conn, withTemplate bool) []engine.SyncConn {
	if c.Dest == destNone || (k.Af != 4 && k.Af != 6) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	dest, ok := e.syncDestAddr(c.Dest)
	if !ok || mixedFamily(dest, k.Af, model.Method(c.Method)) {
		return nil
	}
	var out []engine.SyncConn
	if withTemplate && c.Flags&connControlled != 0 {
		if t, ok := e.syncTemplateOf(*k, c.Svc); ok {
			out = append(out, t)
		}
	}
	sc := engine.SyncConn{
		Protocol: model.Protocol(k.Proto),
		Client:   netip.AddrPortFrom(wordsAddr(k.Caddr, k.Af), htons(k.Cport)),
		Virtual:  netip.AddrPortFrom(wordsAddr(k.Vaddr, k.Af), htons(k.Vport)),
		Dest:     dest,
		Method:   model.Method(c.Method),
		Inactive: c.Flags&connInactive != 0,
		NoOutput: c.Flags&connNoOutput != 0,
		State:    conn.State(c.State),
		Timeout:  c.Timeout,
	}
	if c.Rport != 0 {
		sc.Dest = netip.AddrPortFrom(dest.Addr(), htons(c.Rport))
	}
	sc.Dest = syncMapped(k.Af, sc.Dest)
	// A fwmark service's connection carries the mark, which the backup
	// finds the service by (the kernel sends the packet's skb->mark).
	sc.FWMark = e.svcMeta[c.Svc].fwmark
	if model.Method(c.Method) == model.FullNAT {
		// The server's family: a NAT64 connection's local address is
		// IPv4, sent mapped as its server is.
		la := wordsAddr(c.Laddr, uint8(model.FamilyOf(dest.Addr())))
		sc.Local = syncMapped(k.Af, netip.AddrPortFrom(la, htons(c.Lport)))
	}
	return append(out, sc)
}

// mixedFamily: a tunnelled connection (af) to a server of the other
// family is not synced. The kernel's sync message has one family for the
// client, virtual and server addresses: its master sends such a
// connection with the server's address read as the message's family, and
// its backup, which "does not support heterogeneous pools"
// (ip_vs_proc_conn looks the server up in the connection's family), keeps
// it bound to no server. Sending it would only carry a wrong address.
// NAT64 entries (an IPv6 connection's IPv4 FULLNAT server) are synced,
// their IPv4 addresses mapped (syncMapped).
func mixedFamily(dest netip.AddrPort, af uint8, method model.Method) bool {
	return uint8(model.FamilyOf(dest.Addr())) != af && method != model.FullNAT
}

// syncMapped is an address of an entry of family af as the sync message
// carries it: an IPv6 entry's IPv4 server and local address (NAT64) as
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), as the message has one
// family for all its addresses. A gvs backup maps them back (syncInput);
// a kernel's finds no such server and does not forward by the entry.
func syncMapped(af uint8, a netip.AddrPort) netip.AddrPort {
	if af == 6 && a.Addr().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	return a
}

// syncDestAddr is a server's address and port (under e.mu).
func (e *Engine) syncDestAddr(id uint32) (netip.AddrPort, bool) {
	ref, ok := e.destKeys[id]
	return ref.addr, ok
}

// syncTemplateOf finds a controlled connection's template (under e.mu).
func (e *Engine) syncTemplateOf(k bpf.ConnKey, svc uint32) (engine.SyncConn, bool) {
	meta, ok := e.svcMeta[svc]
	if !ok {
		return engine.SyncConn{}, false
	}
	tk := meta.templateKey(k)
	var tv bpf.Template
	if e.objs.Templates.Lookup(&tk, &tv) != nil {
		return engine.SyncConn{}, false
	}
	return e.syncTemplate(&tk, &tv)
}

func (e *Engine) syncTemplate(tk *bpf.ConnKey, tv *bpf.Template) (engine.SyncConn, bool) {
	dest, ok := e.syncDestAddr(tv.Dest)
	if tv.Dest == destNone || !ok || mixedFamily(dest, tk.Af, e.dmem.method(tv.Dest)) {
		return engine.SyncConn{}, false
	}
	if tk.Vport == 0 {
		dest = netip.AddrPortFrom(dest.Addr(), 0)
	}
	st := conn.None
	if tk.Proto == uint8(model.ProtoUDP) {
		st = conn.StateUDP
	}
	return engine.SyncConn{
		Protocol: model.Protocol(tk.Proto),
		Client:   netip.AddrPortFrom(wordsAddr(tk.Caddr, tk.Af), 0),
		Virtual:  netip.AddrPortFrom(wordsAddr(tk.Vaddr, tk.Af), htons(tk.Vport)),
		Dest:     syncMapped(tk.Af, dest),
		Method:   e.dmem.method(tv.Dest),
		Template: true,
		State:    st,
		Timeout:  tv.Timeout,
		// A fwmark service's template: IPPROTO_IP, the mark as its
		// virtual address, and the mark.
		FWMark: e.svcMeta[tv.Svc].fwmark,
	}, true
}

// syncDue says whether the sweep's pass sends an entry again: once per
// syncRefresh passes, at a pass its key's hash picks.
func syncDue(k *bpf.ConnKey, pass uint64, every int) bool {
	// The addresses folded (an IPv4 key has zeros after its first word).
	ca := k.Caddr[0] ^ k.Caddr[1] ^ k.Caddr[2] ^ k.Caddr[3]
	va := k.Vaddr[0] ^ k.Vaddr[1] ^ k.Vaddr[2] ^ k.Vaddr[3]
	h := ca*2654435761 ^ va*40503 ^ (uint32(k.Cport)<<16|uint32(k.Vport))*2246822519 ^ uint32(k.Proto)
	h ^= h >> 15
	// One pass in syncRefresh seconds' worth of passes.
	return (uint64(h)+pass)%uint64(max(1, syncRefresh/max(1, every))) == 0
}

// syncSweepConn is the sweep's look at a live connection (e.mu not
// held).
func (e *Engine) syncSweepConn(ex *syncExporter, k *bpf.ConnKey, c *bpf.Conn) {
	if (c.State == uint8(conn.Established) || c.State == uint8(conn.StateUDP)) && syncDue(k, e.passes, e.sweepEvery) {
		ex.pending = append(ex.pending, e.syncRecord(k, c, false)...)
	}
}

func (e *Engine) syncSweepTemplate(ex *syncExporter, k *bpf.ConnKey, t *bpf.Template) {
	if t.Dest != destNone && syncDue(k, e.passes, e.sweepEvery) {
		e.mu.Lock()
		sc, ok := e.syncTemplate(k, t)
		e.mu.Unlock()
		if ok {
			ex.pending = append(ex.pending, sc)
		}
	}
}

// syncSweepDone hands the pass's refresh to the exporter (dropped if it
// is behind: the next period sends them again).
func (e *Engine) syncSweepDone(ex *syncExporter) {
	if len(ex.pending) == 0 {
		return
	}
	b := slices.Clone(ex.pending)
	ex.pending = ex.pending[:0]
	select {
	case ex.refresh <- b:
	default:
	}
}

// Install results of gvs_sync_install (bpf/sync.h).
const (
	syncNew     = 0
	syncUpdated = 1
	syncStale   = 2
)

// InstallSynced implements engine.Syncer.
func (e *Engine) InstallSynced(conns []engine.SyncConn) (int, error) {
	if len(conns) == 0 {
		return 0, nil
	}
	// Templates first: a connection takes its hold on its template as
	// it is installed.
	order := make([]int, 0, len(conns))
	for i := range conns {
		if conns[i].Template {
			order = append(order, i)
		}
	}
	for i := range conns {
		if !conns[i].Template {
			order = append(order, i)
		}
	}
	var to bpf.Timeouts
	if err := e.objs.Timeouts.Lookup(uint32(0), &to); err != nil {
		return 0, err
	}
	installed := 0
	var firstErr error
	for _, i := range order {
		in, ok := e.syncInput(&conns[i], &to)
		if !ok {
			continue
		}
		ret, err := e.objs.GvsSyncInstall.Run(&ebpf.RunOptions{Context: in})
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("installing a synced connection: %w", err)
			}
			continue
		}
		if r := int32(ret); r == syncNew || r == syncUpdated {
			installed++
			c := &conns[i]
			if r == syncNew && !c.Template && (c.Method == model.Masq || c.Method == model.FullNAT) {
				e.warmClient(c.Client.Addr())
			}
		}
	}
	return installed, firstErr
}

// warmClient has the kernel resolve the next hop toward a client of a
// NAT or FULLNAT connection learnt from a master, in the background, so
// that its replies can go out the moment this director takes over: the
// client never ARPed for the VIP here. An address is looked at once per
// warmEvery.
func (e *Engine) warmClient(a netip.Addr) {
	now := time.Now()
	e.warmMu.Lock()
	if t, ok := e.warmed[a]; ok && now.Sub(t) < warmEvery {
		e.warmMu.Unlock()
		return
	}
	if len(e.warmed) > 65536 {
		clear(e.warmed)
	}
	e.warmed[a] = now
	e.warmMu.Unlock()
	go resolveRouted(a, 0)
}

// warmEvery is how often a synced client's next hop is looked at.
const warmEvery = time.Minute

// syncInput resolves an entry's service and server: false for what the
// engine does not have (a service or server unknown here, addresses of
// mixed families, or a protocol it does not carry).
func (e *Engine) syncInput(sc *engine.SyncConn, to *bpf.Timeouts) (bpf.SyncIn, bool) {
	var in bpf.SyncIn
	fam := model.FamilyOf(sc.Virtual.Addr())
	if sc.Virtual.Addr().Is4In6() || model.FamilyOf(sc.Client.Addr()) != fam || model.FamilyOf(sc.Dest.Addr()) != fam {
		return in, false
	}
	if fam == model.IPv6 && sc.Dest.Addr().Is4In6() {
		// An IPv4 server of an IPv6 service (NAT64), mapped by the
		// master (syncMapped), its local address too.
		m := *sc
		m.Dest = netip.AddrPortFrom(m.Dest.Addr().Unmap(), m.Dest.Port())
		if m.Local.IsValid() {
			m.Local = netip.AddrPortFrom(m.Local.Addr().Unmap(), m.Local.Port())
		}
		sc = &m
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// As ip_vs_service_find: a fwmark service of the entry's mark (the
	// kernel sends the packet's skb->mark whatever the service), else the
	// service of its address and port, else the port-zero one.
	var sk model.ServiceKey
	var svc uint32
	ok := false
	if sc.FWMark != 0 {
		sk = model.ServiceKey{FWMark: sc.FWMark, Family: fam}
		svc, ok = e.svcIDs[sk]
		ok = ok && !e.svcPool.isRetired(svc)
	}
	if !ok {
		if sc.Protocol != model.ProtoTCP && sc.Protocol != model.ProtoUDP {
			return in, false
		}
		sk = model.ServiceKey{Protocol: sc.Protocol, Addr: sc.Virtual.Addr(), Port: sc.Virtual.Port(), Family: fam}
		svc, ok = e.svcIDs[sk]
		if !ok || e.svcPool.isRetired(svc) {
			sk.Port = 0
			if svc, ok = e.svcIDs[sk]; !ok || e.svcPool.isRetired(svc) {
				return in, false
			}
		}
	}
	if !sc.Template && sc.Protocol != model.ProtoTCP && sc.Protocol != model.ProtoUDP {
		return in, false
	}
	dest, ok := e.destIDs[sk][sc.Dest]
	if !ok {
		// A template of a port-zero service, or a port-zero server:
		// by address.
		for a, id := range e.destIDs[sk] {
			if a.Addr() == sc.Dest.Addr() && (sc.Dest.Port() == 0 || a.Port() == 0) {
				dest, ok = id, true
				break
			}
		}
	}
	if !ok {
		return in, false
	}
	in.Key = bpf.ConnKey{Caddr: addrWords(sc.Client.Addr()), Vaddr: addrWords(sc.Virtual.Addr()),
		Cport: htons(sc.Client.Port()), Vport: htons(sc.Virtual.Port()), Proto: uint8(sc.Protocol), Af: uint8(fam)}
	in.Now = now()
	in.Dest, in.Svc = dest, svc
	in.Timeout = sc.Timeout
	// The forwarding method (and NOOUTPUT) is this director's server's,
	// as the kernel's ip_vs_bind_dest takes them, not the master's.
	method := sc.Method
	var bd bpf.Dest
	if err := e.objs.Dests.Lookup(dest, &bd); err == nil {
		method = model.Method(bd.Method)
	}
	in.Method = uint8(method)
	in.Rport = htons(sc.Dest.Port())
	if sc.Template {
		in.Tmpl = 1
		in.Key.Cport = 0
		if in.Timeout == 0 {
			in.Timeout = 180 // the kernel's for a template without one
		}
		return in, true
	}
	in.State = uint8(sc.State)
	if sc.Protocol == model.ProtoUDP {
		in.State = uint8(conn.StateUDP)
	}
	if in.Timeout == 0 {
		in.Timeout = to.Udp
		if sc.Protocol == model.ProtoTCP && int(in.State) < len(to.Tcp) {
			in.Timeout = to.Tcp[in.State]
		}
	}
	if sc.Inactive {
		in.Flags |= connInactive
	}
	if method == model.Route || method == model.Tunnel {
		in.Flags |= connNoOutput
	}
	switch method {
	case model.Masq:
		in.Laddr, in.Lport = addrWords(sc.Client.Addr()), htons(sc.Client.Port())
	case model.FullNAT:
		if !sc.Local.Addr().IsValid() || sc.Local.Addr().Is4() != sc.Dest.Addr().Is4() {
			return in, false // no local address: its replies could not be matched
		}
		in.Laddr, in.Lport = addrWords(sc.Local.Addr()), htons(sc.Local.Port())
	}
	if in.Rport == 0 {
		in.Rport = in.Key.Vport
	}
	return in, true
}

var _ engine.Syncer = (*Engine)(nil)
