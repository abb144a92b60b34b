// Package nftsteer steers packets carrying a firewall mark to gvs with
// nftables. It owns the tables of one name (the caller's, e.g. "gvs") and
// replaces their rules as a whole: Sync writes the rules it is given in
// one netlink batch, Remove deletes the tables. It is how firewall-mark
// services (ipvsadm -f) reach a data plane that sits after the operator's
// own mangle rules:
//
//   - TProxy rules hand a marked TCP or UDP packet to a local transparent
//     listener (the proxy engine's); routing must deliver the packet
//     locally (a policy route for the mark, which the caller owns).
//   - Dup rules send a copy of a marked packet out of a device toward an
//     address, and drop the original (the xdp engine's way to hand a
//     marked packet to a device its program runs on).
//
// Tables and chains: TProxy rules live in table "inet NAME"; Dup rules in
// "ip NAME" and "ip6 NAME", because the kernel's dup expression exists for
// the ip and ip6 families only (an inet table refuses it). Each table has
// one base chain "prerouting" of type filter on the prerouting hook at
// priority mangle + 1 (-149): after the operator's mangle rules (priority
// -150 and lower) have set the marks. The inet table always exists after
// Sync; the ip and ip6 tables only while they hold rules.
//
// Nothing shells out to nft: the rules go through github.com/google/nftables.
// Needs CAP_NET_ADMIN in the namespace and a kernel with nf_tables,
// nft_tproxy (4.19+) and nft_dup_ipv4/ipv6 (4.5+).
package nftsteer

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ChainName is the base chain of each table.
const ChainName = "prerouting"

// Priority is the chains' priority: mangle + 1.
const Priority = -149

// Family is the address family a rule applies to.
type Family uint8

// Families. Both makes one rule per family.
const (
	Both Family = 0
	IPv4 Family = 4
	IPv6 Family = 6
)

// Proto is the transport protocol a rule applies to.
type Proto uint8

// Protocols. AnyProto on a TProxy rule means TCP and UDP (transparent
// proxying knows no other); on a Dup rule, every protocol.
const (
	AnyProto Proto = 0
	TCP      Proto = unix.IPPROTO_TCP
	UDP      Proto = unix.IPPROTO_UDP
)

// TProxy steers the packet to the local transparent socket listening on
// Port (and Addr, when valid; else the kernel's choice: the address of
// the receiving interface, which a socket bound to the wildcard address
// matches). The socket needs IP_TRANSPARENT. Established connections are
// found by their own addresses first, as the kernel's tproxy does.
type TProxy struct {
	Port uint16
	Addr netip.Addr
}

// Dup sends a copy of the packet out of Device with To as the next hop
// (dup to To device Device), then drops the original. Device is resolved
// to its index at Sync: a device created again later needs another Sync.
//
// nf_dup_ipv4 sets DF on every IPv4 copy. With ToIfDF (IPv4), a packet
// that had DF goes to ToIfDF instead, so what receives the copies can
// tell (by the next hop's MAC) and clear DF on the others.
//
// With NotFrom, packets that came in on that interface are not
// duplicated: a copy the receiving program hands back to the stack there
// (with its mark) does not loop.
type Dup struct {
	To      netip.Addr
	ToIfDF  netip.Addr
	Device  string
	NotFrom string
}

// Rule matches packets with mark Mark (exactly: the whole 32 bits), of
// Family and Proto, and applies exactly one of TProxy or Dup.
type Rule struct {
	Mark   uint32
	Family Family
	Proto  Proto
	TProxy *TProxy
	Dup    *Dup
}

// String is the rule in nft's words, for errors and logs.
func (r Rule) String() string {
	s := fmt.Sprintf("mark %#x", r.Mark)
	switch r.Family {
	case IPv4:
		s += " ipv4"
	case IPv6:
		s += " ipv6"
	}
	switch r.Proto {
	case TCP:
		s += " tcp"
	case UDP:
		s += " udp"
	}
	switch {
	case r.TProxy != nil && r.TProxy.Addr.IsValid():
		s += " tproxy to " + netip.AddrPortFrom(r.TProxy.Addr, r.TProxy.Port).String()
	case r.TProxy != nil:
		s += fmt.Sprintf(" tproxy to :%d", r.TProxy.Port)
	case r.Dup != nil && r.Dup.ToIfDF.IsValid():
		s += fmt.Sprintf(" dup to %s (DF: %s) device %s drop", r.Dup.To, r.Dup.ToIfDF, r.Dup.Device)
	case r.Dup != nil:
		s += fmt.Sprintf(" dup to %s device %s drop", r.Dup.To, r.Dup.Device)
	}
	return s
}

// ErrInvalid is wrapped by the errors of rules Sync refuses.
var ErrInvalid = errors.New("invalid steering rule")

// Validate checks a rule without touching the system.
func (r Rule) Validate() error {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, r, why) }
	if r.Mark == 0 {
		return bad("mark 0 would match every unmarked packet")
	}
	switch r.Family {
	case Both, IPv4, IPv6:
	default:
		return bad(fmt.Sprintf("family %d", r.Family))
	}
	switch r.Proto {
	case AnyProto, TCP, UDP:
	default:
		return bad(fmt.Sprintf("protocol %d", r.Proto))
	}
	switch {
	case (r.TProxy == nil) == (r.Dup == nil):
		return bad("needs exactly one action, tproxy or dup")
	case r.TProxy != nil:
		t := r.TProxy
		if t.Port == 0 {
			return bad("tproxy port 0")
		}
		if t.Addr.IsValid() {
			if t.Addr.Zone() != "" || t.Addr.Is4In6() {
				return bad("tproxy address")
			}
			if r.Family != familyOf(t.Addr) {
				return bad("a tproxy address needs the rule's family to be the address's")
			}
		}
	default:
		d := r.Dup
		if !d.To.IsValid() || d.To.Zone() != "" || d.To.Is4In6() || d.To.IsUnspecified() {
			return bad("dup needs a next-hop address")
		}
		if r.Family != Both && r.Family != familyOf(d.To) {
			return bad("the dup address is not of the rule's family")
		}
		if d.ToIfDF.IsValid() && (!d.To.Is4() || !d.ToIfDF.Is4() || d.ToIfDF == d.To || d.ToIfDF.IsUnspecified()) {
			return bad("a DF next hop needs IPv4 addresses, other than the dup address")
		}
		if len(d.NotFrom) >= unix.IFNAMSIZ {
			return bad("dup's not-from interface name is too long")
		}
		if d.Device == "" || len(d.Device) >= unix.IFNAMSIZ {
			return bad("dup needs a device name")
		}
	}
	return nil
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Table is the set of tables of one name in one network namespace.
type Table struct {
	name  string
	netns int // -1: the current namespace
}

// Option configures New.
type Option func(*Table)

// WithNetNS works in the network namespace of file descriptor fd (e.g.
// of /run/netns/NAME) instead of the current one. The caller keeps fd
// open while the Table is used.
func WithNetNS(fd int) Option { return func(t *Table) { t.netns = fd } }

// New returns the tables named name; nothing is created before Sync.
func New(name string, opts ...Option) (*Table, error) {
	if name == "" || len(name) > 255 {
		return nil, fmt.Errorf("nftsteer: table name %q", name)
	}
	t := &Table{name: name, netns: -1}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

// Name is the tables' name.
func (t *Table) Name() string { return t.name }

func (t *Table) conn() (*nftables.Conn, error) {
	if t.netns >= 0 {
		return nftables.New(nftables.WithNetNSFd(t.netns))
	}
	return nftables.New()
}

func (t *Table) table(f nftables.TableFamily) *nftables.Table {
	return &nftables.Table{Name: t.name, Family: f}
}

func (t *Table) chain(tb *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Name:     ChainName,
		Table:    tb,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityRef(Priority),
		Policy:   ptr(nftables.ChainPolicyAccept),
	}
}

func ptr[T any](v T) *T { return &v }

// exists reports which of the families' tables of this name exist.
func (t *Table) exists(c *nftables.Conn) (map[nftables.TableFamily]bool, error) {
	all, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("nftsteer: list tables: %w", err)
	}
	out := map[nftables.TableFamily]bool{}
	for _, tb := range all {
		if tb.Name == t.name {
			out[tb.Family] = true
		}
	}
	return out, nil
}

// Sync makes the chains hold exactly rules, in order: in one netlink
// batch (all or nothing) it creates what is missing, flushes the chains
// and adds the rules; an ip or ip6 table left without rules is deleted.
// Running it again with the same rules changes nothing. Invalid rules
// (see Rule.Validate) or an unknown dup device change nothing either.
func (t *Table) Sync(rules []Rule) error {
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	ifindex, err := t.devices(rules)
	if err != nil {
		return err
	}
	c, err := t.conn()
	if err != nil {
		return fmt.Errorf("nftsteer: %w", err)
	}
	have, err := t.exists(c)
	if err != nil {
		return err
	}
	byFamily := map[nftables.TableFamily][][]expr.Any{}
	for _, r := range rules {
		for _, f := range families(r) {
			if r.TProxy != nil {
				for _, p := range tproxyProtos(r.Proto) {
					byFamily[nftables.TableFamilyINet] = append(byFamily[nftables.TableFamilyINet], tproxyExprs(r, f, p))
				}
				continue
			}
			tf := nftables.TableFamilyIPv4
			if f == IPv6 {
				tf = nftables.TableFamilyIPv6
			}
			if r.Dup.ToIfDF.IsValid() {
				// First the copies of packets with DF, then the rest.
				byFamily[tf] = append(byFamily[tf], dupDFExprs(r, ifindex[r.Dup.Device]))
			}
			byFamily[tf] = append(byFamily[tf], dupExprs(r, ifindex[r.Dup.Device]))
		}
	}
	for _, tf := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		list := byFamily[tf]
		if len(list) == 0 && tf != nftables.TableFamilyINet {
			if have[tf] {
				c.DelTable(t.table(tf))
			}
			continue
		}
		tb := c.AddTable(t.table(tf))
		ch := c.AddChain(t.chain(tb))
		c.FlushChain(ch)
		for _, e := range list {
			c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: e})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftsteer: sync table %s: %w", t.name, err)
	}
	return nil
}

// Remove deletes the tables (those that exist), in one batch.
func (t *Table) Remove() error {
	c, err := t.conn()
	if err != nil {
		return fmt.Errorf("nftsteer: %w", err)
	}
	have, err := t.exists(c)
	if err != nil {
		return err
	}
	n := 0
	for _, tf := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		if have[tf] {
			c.DelTable(t.table(tf))
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftsteer: remove table %s: %w", t.name, err)
	}
	return nil
}

// devices resolves the dup devices' indexes in the table's namespace.
func (t *Table) devices(rules []Rule) (map[string]uint32, error) {
	out := map[string]uint32{}
	var h *netlink.Handle
	for _, r := range rules {
		if r.Dup == nil || out[r.Dup.Device] != 0 {
			continue
		}
		if h == nil {
			var err error
			if t.netns >= 0 {
				h, err = netlink.NewHandleAt(netns.NsHandle(t.netns))
			} else {
				h, err = netlink.NewHandle()
			}
			if err != nil {
				return nil, fmt.Errorf("nftsteer: %w", err)
			}
			defer h.Close()
		}
		l, err := h.LinkByName(r.Dup.Device)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: device %s: %v", ErrInvalid, r, r.Dup.Device, err)
		}
		out[r.Dup.Device] = uint32(l.Attrs().Index)
	}
	return out, nil
}

func families(r Rule) []Family {
	switch {
	case r.Family != Both:
		return []Family{r.Family}
	case r.Dup != nil:
		return []Family{familyOf(r.Dup.To)}
	}
	return []Family{IPv4, IPv6}
}

func tproxyProtos(p Proto) []Proto {
	if p == AnyProto {
		return []Proto{TCP, UDP}
	}
	return []Proto{p}
}

func nfproto(f Family) byte {
	if f == IPv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// match is "meta nfproto F meta l4proto P meta mark M"; the family
// match only in the inet table.
func match(r Rule, f Family, p Proto, inet bool) []expr.Any {
	var e []expr.Any
	if inet {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(f)}})
	}
	if p != AnyProto {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p)}})
	}
	return append(e,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(r.Mark)},
		&expr.Counter{})
}

func tproxyExprs(r Rule, f Family, p Proto) []expr.Any {
	e := match(r, f, p, true)
	tp := &expr.TProxy{Family: nfproto(f), TableFamily: byte(nftables.TableFamilyINet), RegPort: 2}
	e = append(e, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(r.TProxy.Port)})
	if a := r.TProxy.Addr; a.IsValid() {
		e = append(e, &expr.Immediate{Register: 1, Data: a.AsSlice()})
		tp.RegAddr = 1
	}
	return append(e, tp)
}

func dupExprs(r Rule, ifindex uint32) []expr.Any {
	return dupTo(append(notFrom(r.Dup.NotFrom), match(r, familyOf(r.Dup.To), r.Proto, false)...), r.Dup.To, ifindex)
}

// notFrom is "iifname != NAME" (nothing for no name).
func notFrom(name string) []expr.Any {
	if name == "" {
		return nil
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b},
	}
}

// dupDFExprs is dupExprs for IPv4 packets with DF set ("ip frag-off &
// 0x4000 != 0"), duplicated to ToIfDF.
func dupDFExprs(r Rule, ifindex uint32) []expr.Any {
	e := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 6, Len: 2},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 2, Mask: []byte{0x40, 0}, Xor: []byte{0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0}},
	}
	e = append(notFrom(r.Dup.NotFrom), e...)
	return dupTo(append(e, match(r, IPv4, r.Proto, false)...), r.Dup.ToIfDF, ifindex)
}

func dupTo(e []expr.Any, to netip.Addr, ifindex uint32) []expr.Any {
	return append(e,
		&expr.Immediate{Register: 1, Data: to.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.NativeEndian.PutUint32(ifindex)},
		&expr.Dup{RegAddr: 1, RegDev: 2, IsRegDevSet: true},
		&expr.Verdict{Kind: expr.VerdictDrop})
}
