package xdp

import (
	"math/bits"
	"time"

	"github.com/cilium/ebpf"

	"gvs/bpf"
	"gvs/conn"
	"gvs/engine"
)

// templateGrace is how long a template that still controls connections
// lives on after its timeout (ip_vs_conn_expire re-arms it for 60 s).
const templateGrace = 60 * time.Second

// sweep expires connections and templates whose time is up, following the
// ownership rule of bpf/conn.h: an entry is taken with lookup-and-delete;
// one a packet refreshed meanwhile goes back; whoever deleted unbinds.
// Going over every entry, it notes the ids they name (refs), and at the
// end of a complete pass frees the retired ids none named.
//
// An expired template that still controls connections (n_control > 0)
// gets 60 s more, but only while the pass saw a controlled connection of
// its service: a count no connection is left to release is stale, and
// the template goes. Counts go stale when a connection's hold cannot be
// found again: its service is deleted and BPF removed it (svc_by_id finds
// no service), or gvsd restarted after the deletion and has no meta for
// the service to find the template by (the netmask is not kept in BPF;
// rebuilding it from entries would be a guess). Connections of a deleted
// service are never made again, so once the last one is gone its
// templates expire; none stays armed forever. A live service's template
// rewritten from a deleted service's id, whose old connections still
// hold it after a restart, may go early: its persistence ends sooner.
// sweepPeriod is the seconds between sweeps of a connection table of
// capacity entries: one a second up to 1,048,576, then one per 1,048,576
// more. A pass costs the kernel's batch read of every bucket, whatever
// the entries (measured: half a core a second at 4,194,304 buckets on
// this project's 2-vCPU machine); the data path treats an expired entry
// as gone meanwhile, so a longer period delays only its removal, its
// server's counts and the state counts.
func sweepPeriod(capacity uint32) int {
	return max(1, int(capacity>>20))
}

func (e *Engine) sweep() error {
	t := now()
	e.passes++
	e.refs.reset()
	var expired []bpf.ConnKey
	ex := e.syncEx.Load() // a sync master's refresh (syncd.go)
	// Live entries by state, for ConnStates: counted here since the
	// pass reads every entry anyway.
	var byState [256]uint64
	var templates uint64
	iterErr := eachEntry(e.objs.Conns, func(k *bpf.ConnKey, c *bpf.Conn) {
		// A NAT connection whose replies took the fast path lives by
		// its reply entry's deadline too.
		live := c.Expires > t || c.Dest != destNone && e.replyDeadline(*k, c) > t
		e.refs.conn(c, live)
		if live && c.Dest != destNone {
			byState[c.State]++
		}
		if ex != nil && live {
			e.syncSweepConn(ex, k, c)
		}
		// An expired reservation (destNone) was abandoned: see below.
		if !live {
			expired = append(expired, *k)
		}
	})
	// A read cut short still yields the keys it saw; handle those now,
	// the rest at the next sweep.
	allConns := iterErr == nil
	for _, key := range expired {
		var got bpf.Conn
		if err := e.objs.Conns.LookupAndDelete(&key, &got); err != nil {
			continue // BPF took it first
		}
		if t := now(); got.Expires > t || got.Dest != destNone && e.replyDeadline(key, &got) > t {
			// Refreshed meanwhile: back, and whoever claimed it in
			// BPF (DYING) lost it to this delete and undid nothing.
			got.Flags &^= connDying
			if err := e.objs.Conns.Update(&key, &got, ebpf.UpdateNoExist); err == nil {
				continue
			}
		}
		if got.Dest == destNone {
			// A reservation (the data path's RESERVATION_NS): one
			// being made was put back above; an expired one was
			// abandoned and never bound anything.
			continue
		}
		e.dmem.unbind(got.Dest, false, got.Flags&connInactive != 0)
		if got.Flags&connNAT != 0 {
			e.releaseReply(key, &got)
		}
		if got.Flags&connControlled != 0 {
			e.releaseTemplate(key, got.Svc)
		}
	}

	var due []bpf.ConnKey
	err := eachEntry(e.objs.Templates, func(tk *bpf.ConnKey, tv *bpf.Template) {
		e.refs.template(tv)
		if tv.Expires > t && tv.Dest != destNone {
			templates++
		}
		if ex != nil && tv.Expires > t {
			e.syncSweepTemplate(ex, tk, tv)
		}
		if tv.Expires <= t {
			due = append(due, *tk)
		}
	})
	if err != nil && iterErr == nil {
		iterErr = err
	}
	// Remembered handshakes (the evicted map) name their ids until
	// their time is up; those past it are dropped here, as the data
	// path ignores them.
	var stale []bpf.ConnKey
	err = eachEntry(e.objs.Evicted, func(k *bpf.ConnKey, v *bpf.Evicted) {
		if v.Expires > t {
			e.refs.svc.set(v.Svc)
			e.refs.dest.set(v.Dest)
		} else {
			stale = append(stale, *k)
		}
	})
	if err != nil && iterErr == nil {
		iterErr = err
	}
	for i := range stale {
		_ = e.objs.Evicted.Delete(&stale[i])
	}
	e.refs.complete = iterErr == nil
	if e.refs.complete {
		cs := &engine.ConnStates{ByState: map[string]uint64{}, Templates: templates, Capacity: uint64(e.objs.Conns.MaxEntries())}
		for st, n := range byState {
			if n > 0 {
				cs.ByState[conn.State(st).String()] += n
			}
		}
		e.connStates.Store(cs)
	}
	if ex != nil {
		e.syncSweepDone(ex)
	}
	for _, key := range due {
		var got bpf.Template
		if err := e.objs.Templates.LookupAndDelete(&key, &got); err != nil {
			continue
		}
		if got.Dest == destNone {
			// A reservation: put back while it may still be
			// published, else abandoned (it bound nothing).
			if got.Expires > now() {
				e.objs.Templates.Update(&key, &got, ebpf.UpdateNoExist)
			}
			continue
		}
		if got.Expires > now() || got.N_control > 0 && (!allConns || e.refs.controlled.has(got.Svc)) {
			if got.Expires <= now() {
				got.Expires = now() + uint64(templateGrace)
				got.Timeout = uint32(templateGrace / time.Second)
			}
			if err := e.objs.Templates.Update(&key, &got, ebpf.UpdateNoExist); err == nil {
				continue
			}
		}
		e.dmem.unbind(got.Dest, true, false)
	}
	if e.refs.complete {
		e.releaseIDs()
	}
	return iterErr
}

// replyKey is the rconns key of a NAT/FULLNAT connection (bpf/conn.h
// reply_key): the server, then the client side of the server leg, in the
// server's family (an IPv6 connection to an IPv4 server, NAT64, has an
// IPv4 reply key).
func (e *Engine) replyKey(k bpf.ConnKey, c *bpf.Conn) bpf.ConnKey {
	af := k.Af
	if f := e.dmem.family(c.Dest); f != 0 {
		af = f
	}
	caddr := [4]uint32{e.dmem.addr4(c.Dest)}
	if af == 6 {
		caddr = e.dmem.addrWords(c.Dest)
	}
	return bpf.ConnKey{Caddr: caddr, Vaddr: c.Laddr,
		Cport: c.Rport, Vport: c.Lport, Proto: k.Proto, Af: af}
}

// releaseReply drops a removed connection's reply entry (for FULLNAT,
// its local port) unless another connection holds it now.
func (e *Engine) releaseReply(k bpf.ConnKey, c *bpf.Conn) {
	rk := e.replyKey(k, c)
	var owner bpf.Reply
	if err := e.objs.Rconns.Lookup(&rk, &owner); err == nil && owner.Fk == k {
		e.objs.Rconns.Delete(&rk)
	}
}

// replyDeadline is the deadline the replies of NAT/FULLNAT connection k
// keep in its reply entry while they take the data path's fast path
// (bpf/gvs.h struct gvs_reply), 0 when they do not: the connection lives
// until the later of it and its own.
func (e *Engine) replyDeadline(k bpf.ConnKey, c *bpf.Conn) uint64 {
	if c.Flags&connNAT == 0 || k.Af != 4 {
		return 0
	}
	rk := e.replyKey(k, c)
	var r bpf.Reply
	if e.objs.Rconns.Lookup(&rk, &r) != nil || r.Fast == 0 || r.Fk != k {
		return 0
	}
	return r.Expires
}

// sweepReplies removes reply entries whose connection is gone and that
// were already orphans at the previous pass: a FULLNAT port is reserved
// an instant before its connection is created, so one pass is not proof.
// Orphans come from a connection removed between a reply lookup and its
// release, or from maps kept across a crash of the sweep's work.
func (e *Engine) sweepReplies() {
	var c bpf.Conn
	orphans := map[bpf.ConnKey]bpf.ConnKey{}
	eachEntry(e.objs.Rconns, func(rk *bpf.ConnKey, r *bpf.Reply) {
		if e.objs.Conns.Lookup(&r.Fk, &c) != nil {
			orphans[*rk] = r.Fk
		}
	})
	for rk, fk := range orphans {
		if prev, ok := e.orphans[rk]; ok && prev == fk {
			var cur bpf.Reply
			if e.objs.Rconns.Lookup(&rk, &cur) == nil && cur.Fk == fk && e.objs.Conns.Lookup(&fk, &c) != nil {
				e.objs.Rconns.Delete(&rk)
				delete(orphans, rk)
			}
		}
	}
	e.orphans = orphans
}

// collectLBLC drops lblc/lblcr entries unused for the expiration time
// (ip_vs_lblc_full_check, which the kernel runs every 30 minutes at the
// latest; here every minute).
func (e *Engine) collectLBLC() {
	var cfg bpf.Config
	if e.objs.Config.Lookup(uint32(0), &cfg) != nil {
		return
	}
	t := now()
	old := func(last uint64, exp uint32) bool {
		if exp == 0 {
			exp = 24 * 3600
		}
		return last+uint64(exp)*uint64(time.Second) <= t
	}
	var k bpf.LBLCKey
	var v bpf.LBLC
	var gone []bpf.LBLCKey
	for it := e.objs.Lblc.Iterate(); it.Next(&k, &v); {
		if old(v.Lastuse, cfg.LblcExpiration) {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		e.objs.Lblc.Delete(&k)
	}
	gone = gone[:0]
	var vr bpf.LBLCR
	for it := e.objs.Lblcr.Iterate(); it.Next(&k, &vr); {
		if old(vr.Lastuse, cfg.LblcrExpiration) {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		e.objs.Lblcr.Delete(&k)
	}
}

// Connection flags of gvs.h.
const (
	connInactive   = 0x1
	connControlled = 0x4
	connDying      = 0x40 // GVS_CONN_F_DYING
	connNAT        = 0x8
)

// releaseTemplate drops a controlled connection's hold on its template,
// found by key as BPF finds it: masked client, cport 0, the virtual
// address, and the virtual port unless the service is port-zero.
func (e *Engine) releaseTemplate(k bpf.ConnKey, svc uint32) {
	e.mu.Lock()
	meta, ok := e.svcMeta[svc]
	e.mu.Unlock()
	if !ok {
		return // a service deleted before a restart: see sweep
	}
	tk := meta.templateKey(k)
	// An atomic decrement in BPF (gvs_release_template), the same word the
	// packet path increments.
	if _, err := e.objs.GvsReleaseTemplate.Run(&ebpf.RunOptions{Context: tk}); err != nil {
		e.log.Warn("template release", "err", err)
	}
}

// templateKey is the key of connection k's persistence template, as
// tmpl_key and tmpl_key6 (conn.h) make it: the client masked (IPv4 mask
// or IPv6 prefix length), cport 0; vport 0 for a port-zero service;
// IPPROTO_IP, the mark as the virtual address and port 0 for a fwmark one.
func (m svcMeta) templateKey(k bpf.ConnKey) bpf.ConnKey {
	tk := k
	tk.Cport = 0
	if k.Af == 6 {
		tk.Caddr = mask6(k.Caddr, m.netmask)
	} else {
		tk.Caddr = [4]uint32{k.Caddr[0] & bits.ReverseBytes32(m.netmask)}
	}
	switch {
	case m.fwmark != 0:
		tk.Vaddr = [4]uint32{fwmTemplateAddr(m.fwmark)}
		tk.Vport = 0
		tk.Proto = 0
	case m.portZero:
		tk.Vport = 0
	}
	return tk
}

// mask6 masks an IPv6 address (words as gvs.h stores them) to a prefix
// length, as tmpl_key6 of bpf/conn.h does.
func mask6(a [4]uint32, plen uint32) [4]uint32 {
	var out [4]uint32
	for i := range out {
		b := int(plen) - 32*i
		var m uint32
		switch {
		case b >= 32:
			m = 0xffffffff
		case b > 0:
			m = ^(uint32(0xffffffff) >> b)
		}
		out[i] = a[i] & bits.ReverseBytes32(m)
	}
	return out
}
