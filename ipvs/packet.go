package ipvs

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"gvs/conn"
	"gvs/model"
	"gvs/sched"
	"gvs/stats"
)

// Packet is what the connection logic reads from a packet.
type Packet struct {
	Protocol model.Protocol
	Src, Dst netip.AddrPort
	FWMark   uint32
	TCPFlags conn.TCPFlags
	// SCTPEvent is an SCTP packet's event, from its chunks
	// (conn.SCTPChunkEvent); EvInit alone opens an association.
	SCTPEvent conn.SCTPEvent
	// Len is the packet's length at the IP level (IP header included),
	// what IPVS adds to InBytes/OutBytes.
	Len int
	// Synthetic marks an event an engine saw at the socket level (the
	// proxy's accept, EOF, close) rather than a packet: it drives state and
	// timers but is not counted; the engine counts with Account.
	Synthetic bool
}

// Verdict is what to do with a packet.
type Verdict uint8

// Verdicts.
const (
	// Pass: not for a virtual service (or not a packet that may open a
	// connection); hand it to the local stack untouched.
	Pass Verdict = iota
	// Forward: send it on along the connection returned with it.
	Forward
	// Drop: discard it silently (its server was deleted).
	Drop
	// Reject: no server may take the new connection; answer with ICMP
	// port unreachable and discard it, as ip_vs_leave does.
	Reject
	// Deny: the first packet of a connection from a source the service's
	// allow list does not cover (gvs's own, Service.Allow); discard it.
	Deny
)

// Conn is an entry of the connection table: a connection, or a persistence
// template (Template set; Client port 0, Virtual port 0 for port-zero and
// fwmark services).
type Conn struct {
	Protocol model.Protocol // ProtoNone for a fwmark template
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Dest     netip.AddrPort
	FWMark   uint32
	Method   model.Method
	State    conn.State
	Template bool
	Timeout  time.Duration
	Expires  time.Time
	Server   *model.Server

	svc       model.ServiceKey
	inactive  bool // IP_VS_CONN_F_INACTIVE: counted in InactConns
	noOutput  bool // IP_VS_CONN_F_NOOUTPUT: no reply seen (DR/TUN)
	onePacket bool
	control   *Conn // its persistence template
	nControl  int   // connections this template controls
}

// Remaining is the time left before the entry expires.
func (c *Conn) Remaining(now time.Time) time.Duration { return max(c.Expires.Sub(now), 0) }

type connKey struct {
	proto model.Protocol
	a, b  netip.AddrPort
}

func (c *Conn) inKey() connKey    { return connKey{c.Protocol, c.Client, c.Virtual} }
func (c *Conn) replyKey() connKey { return connKey{c.Protocol, c.Dest, c.Client} }

// In handles a packet from a client (ip_vs_in): the packet of a known
// connection updates its state, counters and timer; the first packet of a
// new one (any UDP datagram, a TCP SYN, an SCTP INIT) for a virtual
// service is scheduled, with persistence.
func (v *IPVS) In(p Packet, now time.Time) (*Conn, Verdict) {
	if p.Protocol != model.ProtoTCP && p.Protocol != model.ProtoUDP && p.Protocol != model.ProtoSCTP {
		return nil, Pass
	}
	c := v.lookup(v.conns, connKey{p.Protocol, p.Src, p.Dst}, now)
	if c != nil && v.reopens(c, p) {
		// A SYN for a finished connection starts a new one
		// (conn_reuse_mode).
		v.remove(c)
		c = nil
	}
	if c == nil {
		svc := v.serviceFor(p)
		if svc == nil {
			return nil, Pass
		}
		if p.Protocol == model.ProtoTCP && (p.TCPFlags&conn.SYN == 0 && !v.opts.SloppyTCP && !svc.Config.SloppyTCP() || p.TCPFlags&conn.RST != 0) {
			return nil, Pass
		}
		if p.Protocol == model.ProtoSCTP && p.SCTPEvent != conn.EvInit { // sctp_conn_schedule
			return nil, Pass
		}
		if !model.AllowListed(svc.allow, p.Src.Addr()) {
			return nil, Deny
		}
		var verdict Verdict
		if c, verdict = v.schedule(svc, p, now); c == nil {
			return nil, verdict
		}
	} else if !c.Server.Available {
		if v.opts.ExpireNodestConn {
			v.remove(c)
		}
		return c, Drop
	}
	if !p.Synthetic {
		v.count(c, p.Len, true)
	}
	v.setState(c, conn.Input, p)
	c.Expires = now.Add(c.Timeout)
	if c.onePacket {
		v.remove(c)
	}
	return c, Forward
}

// Out handles a reply from a real server to a client through the director
// (ip_vs_out, NAT): counters, state on the full TCP table, timer. Replies
// that match no connection pass to the local stack.
func (v *IPVS) Out(p Packet, now time.Time) (*Conn, Verdict) {
	c := v.lookup(v.replies, connKey{p.Protocol, p.Src, p.Dst}, now)
	if c == nil {
		return nil, Pass
	}
	if !p.Synthetic {
		v.count(c, p.Len, false)
	}
	v.setState(c, conn.Output, p)
	c.Expires = now.Add(c.Timeout)
	return c, Forward
}

// reopens is is_new_conn && is_new_conn_expected under conn_reuse_mode:
// 0 never; else a finished TCP connection, and with bit 2 a DR/TUN one
// (no output seen) in FIN_WAIT; an INIT on a CLOSED SCTP association.
func (v *IPVS) reopens(c *Conn, p Packet) bool {
	if c.Protocol == model.ProtoSCTP {
		return !v.opts.NoConnReuse && c.control == nil && p.SCTPEvent == conn.EvInit && c.State == conn.SCTPClosed
	}
	if v.opts.NoConnReuse || c.Protocol != model.ProtoTCP || p.TCPFlags&(conn.SYN|conn.ACK|conn.RST) != conn.SYN || c.control != nil {
		return false
	}
	return c.State == conn.TimeWait || c.State == conn.Close ||
		v.opts.ConnReuseFinWait && c.State == conn.FinWait && c.noOutput
}

// lookup finds an entry, expiring it first if its time is up (the kernel's
// timer would have fired already).
func (v *IPVS) lookup(m map[connKey]*Conn, k connKey, now time.Time) *Conn {
	c := m[k]
	if c != nil && !now.Before(c.Expires) && v.expire(c, now) {
		return nil
	}
	return c
}

func (v *IPVS) serviceFor(p Packet) *Service {
	fam := model.FamilyOf(p.Dst.Addr())
	if p.FWMark != 0 {
		if s := v.byKey[model.ServiceKey{FWMark: p.FWMark, Family: fam}]; s != nil {
			return s
		}
	}
	k := model.ServiceKey{Protocol: p.Protocol, Addr: p.Dst.Addr(), Port: p.Dst.Port(), Family: fam}
	if s := v.byKey[k]; s != nil {
		return s
	}
	k.Port = 0
	return v.byKey[k]
}

func schedPacket(p Packet) sched.Packet {
	return sched.Packet{Src: p.Src.Addr(), Dst: p.Dst.Addr(), SrcPort: p.Src.Port(), DstPort: p.Dst.Port(), Protocol: p.Protocol}
}

// schedule is ip_vs_schedule: pick a server and create the connection.
func (v *IPVS) schedule(svc *Service, p Packet, now time.Time) (*Conn, Verdict) {
	cfg := &svc.Config
	if cfg.Persistent() {
		return v.schedulePersistent(svc, p, now)
	}
	if !cfg.IsFWMark() && p.Dst.Port() != cfg.Port {
		return nil, Pass
	}
	d := svc.sched.Schedule(&svc.list, schedPacket(p), now)
	if d == nil {
		return nil, Reject
	}
	dport := d.Port
	if dport == 0 {
		dport = p.Dst.Port()
	}
	return v.newConn(svc, p, d, dport), Forward
}

// schedulePersistent is ip_vs_sched_persist: clients of one masked network
// share a template naming their server until it expires.
func (v *IPVS) schedulePersistent(svc *Service, p Packet, now time.Time) (*Conn, Verdict) {
	cfg := &svc.Config
	snet := maskAddr(p.Src.Addr(), cfg.Netmask)
	proto, vaddr, vport := p.Protocol, p.Dst.Addr(), uint16(0)
	if p.Dst.Port() == cfg.Port {
		vport = p.Dst.Port()
	} else if cfg.IsFWMark() {
		proto, vaddr = model.ProtoNone, fwmarkAddr(cfg.FWMark, cfg.Family)
	}
	tk := connKey{proto, netip.AddrPortFrom(snet, 0), netip.AddrPortFrom(vaddr, vport)}
	ct := v.lookup(v.templates, tk, now)
	if ct == nil || !v.checkTemplate(ct) {
		d := svc.sched.Schedule(&svc.list, schedPacket(p), now)
		if d == nil {
			return nil, Reject
		}
		var dport uint16
		if p.Dst.Port() == cfg.Port {
			dport = d.Port
		}
		ct = &Conn{
			Protocol: proto, Client: tk.a, Virtual: tk.b, Dest: netip.AddrPortFrom(d.Addr, dport),
			FWMark: cfg.FWMark, Method: d.Method, Template: true, Server: d, svc: cfg.ServiceKey,
			Timeout: time.Duration(cfg.Timeout) * time.Second,
		}
		if proto == model.ProtoUDP {
			ct.State = conn.StateUDP
		}
		d.Bind(true, false)
		v.templates[tk] = ct
		v.all[ct] = struct{}{}
	}
	d := ct.Server
	dport := p.Dst.Port()
	if dport == cfg.Port && d.Port != 0 {
		dport = d.Port
	}
	c := v.newConn(svc, p, d, dport)
	c.control = ct
	ct.nControl++
	ct.Expires = now.Add(ct.Timeout) // using the template restarts its timer
	return c, Forward
}

// checkTemplate is ip_vs_check_template: a template whose server was
// deleted (or quiesced, with expire_quiescent_template) is invalidated:
// unhashed and shown with ports 65535 until it expires.
func (v *IPVS) checkTemplate(ct *Conn) bool {
	d := ct.Server
	if d.Available && !(v.opts.ExpireQuiescentTemplate && d.Weight == 0) {
		return true
	}
	if v.templates[ct.inKey()] == ct {
		delete(v.templates, ct.inKey())
	}
	ct.Client = netip.AddrPortFrom(ct.Client.Addr(), 0)
	ct.Virtual = netip.AddrPortFrom(ct.Virtual.Addr(), 0xffff)
	ct.Dest = netip.AddrPortFrom(ct.Dest.Addr(), 0xffff)
	return false
}

// newConn is ip_vs_conn_new + ip_vs_bind_dest + ip_vs_conn_stats: a
// connection starts inactive and, for DR and TUN, input-only.
func (v *IPVS) newConn(svc *Service, p Packet, d *model.Server, dport uint16) *Conn {
	c := &Conn{
		Protocol: p.Protocol, Client: p.Src, Virtual: p.Dst,
		Dest: netip.AddrPortFrom(d.Addr, dport), FWMark: svc.Config.FWMark,
		Method: d.Method, Server: d, svc: svc.Config.ServiceKey,
		inactive:  true,
		noOutput:  !d.Method.MapsPorts(),
		onePacket: svc.Config.Flags&model.FlagOnePacket != 0 && p.Protocol == model.ProtoUDP,
	}
	switch p.Protocol {
	case model.ProtoUDP:
		c.State = conn.StateUDP
	case model.ProtoSCTP:
		c.State = conn.SCTPNone
	}
	d.Bind(false, true)
	if !c.onePacket {
		v.conns[c.inKey()] = c
		v.replies[c.replyKey()] = c
		v.all[c] = struct{}{}
	}
	d.Stats.Conn()
	svc.Stats.Conn()
	v.total.Conn()
	return c
}

// Account adds traffic an engine counted itself (packets and IP-level
// bytes in both directions) to the connection's server, its service and
// the total.
func (v *IPVS) Account(c *Conn, t stats.Counters) {
	all, n := v.statsOf(c)
	for _, s := range all[:n] {
		s.AddCounters(t)
	}
}

// Touch restarts c's timer, for traffic an engine saw without packets
// (the proxy's bytes on an established connection).
func (v *IPVS) Touch(c *Conn, now time.Time) { c.Expires = now.Add(c.Timeout) }

// Has reports whether c is still in the connection table.
func (v *IPVS) Has(c *Conn) bool {
	_, ok := v.all[c]
	return ok
}

// statsOf returns the counters a connection's traffic adds to; an array,
// not a slice, so that counting a packet allocates nothing.
func (v *IPVS) statsOf(c *Conn) (out [3]*stats.Stats, n int) {
	out[0], out[1], n = &c.Server.Stats, &v.total, 2
	if svc := v.byKey[c.svc]; svc != nil {
		out[2], n = &svc.Stats, 3
	}
	return out, n
}

// count adds a packet to the server's, the service's and the total counters.
func (v *IPVS) count(c *Conn, n int, in bool) {
	all, k := v.statsOf(c)
	for _, s := range all[:k] {
		if in {
			s.In(n)
		} else {
			s.Out(n)
		}
	}
}

// setState runs the protocol's state transition and moves the connection
// between the server's active and inactive counts (set_tcp_state,
// set_sctp_state).
func (v *IPVS) setState(c *Conn, d conn.Dir, p Packet) {
	if c.Protocol == model.ProtoTCP || c.Protocol == model.ProtoSCTP {
		inputOnly := false
		if c.noOutput {
			if d == conn.Output {
				c.noOutput = false
			} else {
				inputOnly = true
			}
		}
		var next conn.State
		if c.Protocol == model.ProtoTCP {
			next = conn.NextTCP(c.State, d, inputOnly, p.TCPFlags)
		} else {
			next = conn.NextSCTP(c.State, d, inputOnly, p.SCTPEvent)
		}
		if next != c.State {
			switch {
			case !c.inactive && !next.Active():
				c.Server.SetActive(false)
				c.inactive = true
			case c.inactive && next.Active():
				c.Server.SetActive(true)
				c.inactive = false
			}
		}
		c.State = next
	}
	c.Timeout = v.timeouts.Of(c.Protocol, c.State)
}

// Expire runs the timers: every entry whose time is up goes, except a
// template that still controls connections, which is given 60 more
// seconds (ip_vs_conn_expire).
func (v *IPVS) Expire(now time.Time) {
	for c := range v.all {
		if !now.Before(c.Expires) {
			v.expire(c, now)
		}
	}
}

// expire handles an entry whose timer fired; it reports whether the entry
// is gone.
func (v *IPVS) expire(c *Conn, now time.Time) bool {
	if c.Template && c.nControl > 0 {
		c.Timeout = 60 * time.Second
		c.Expires = now.Add(c.Timeout)
		return false
	}
	v.remove(c)
	return true
}

// remove unhashes an entry and unbinds it from its server and template.
func (v *IPVS) remove(c *Conn) {
	del := func(m map[connKey]*Conn, k connKey) {
		if m[k] == c {
			delete(m, k)
		}
	}
	if c.Template {
		del(v.templates, c.inKey())
	} else {
		del(v.conns, c.inKey())
		del(v.replies, c.replyKey())
	}
	delete(v.all, c)
	if c.control != nil {
		c.control.nControl--
		c.control = nil
	}
	s := c.Server
	s.Unbind(c.Template, c.inactive)
	if !s.Available && !referenced(s) {
		tk := trashKey{c.svc, s.AddrPort()}
		if v.trash[tk] == s {
			delete(v.trash, tk)
		}
	}
}

// EachConn calls f for every entry, templates included, in no order; f
// must not change the table.
func (v *IPVS) EachConn(f func(*Conn)) {
	for c := range v.all {
		f(c)
	}
}

// Conns returns every entry of the connection table, templates included,
// ordered by client, virtual and destination address.
func (v *IPVS) Conns() []*Conn {
	out := make([]*Conn, 0, len(v.all))
	for c := range v.all {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Conn) int {
		return cmp.Or(a.Client.Compare(b.Client), a.Virtual.Compare(b.Virtual),
			a.Dest.Compare(b.Dest), cmp.Compare(a.Protocol, b.Protocol))
	})
	return out
}

// maskAddr applies a persistence netmask: an IPv4 mask or an IPv6 prefix length.
func maskAddr(a netip.Addr, mask uint32) netip.Addr {
	if a.Is4() {
		b := a.As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])&mask)
		return netip.AddrFrom4(b)
	}
	p, err := a.Prefix(int(mask))
	if err != nil {
		return a
	}
	return p.Addr()
}

// fwmarkAddr is how a fwmark template stores its mark: as the first 32
// bits of the virtual address.
func fwmarkAddr(mark uint32, f model.Family) netip.Addr {
	if f == model.IPv6 {
		var b [16]byte
		binary.BigEndian.PutUint32(b[:], mark)
		return netip.AddrFrom16(b)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], mark)
	return netip.AddrFrom4(b)
}
