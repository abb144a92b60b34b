// Package ipvssync is the Linux kernel's IPVS connection synchronization
// (net/netfilter/ipvs/ip_vs_sync.c): the message codec (this file, pure,
// no I/O) and the master and backup daemons (daemon.go) that ipvsadm's
// --start-daemon starts.
//
// Wire format, version 1 (what the master sends; the backup reads version
// 0 too): an 8-byte header (reserved 0, syncid, size, nr_conns, version
// 1, spare 0), then nr_conns entries, each an ip_vs_sync_v4 (36 bytes) or
// ip_vs_sync_v6 (72 bytes) followed by TLV options, the next entry
// starting at the next 4-byte boundary. Multi-byte fields are big endian;
// addresses and ports are as on the wire.
package ipvssync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Protocol constants of ip_vs_sync.c.
const (
	Version      = 1    // SYNC_PROTO_VER
	DefaultPort  = 8848 // IP_VS_SYNC_PORT
	HeaderLen    = 8    // struct ip_vs_sync_mesg
	HeaderLenV0  = 4    // struct ip_vs_sync_mesg_v0
	ConnV4Len    = 36   // struct ip_vs_sync_v4
	ConnV6Len    = 72   // struct ip_vs_sync_v6
	ConnV0Len    = 24   // struct ip_vs_sync_conn_v0
	SeqOptLen    = 24   // struct ip_vs_sync_conn_options
	MaxConns     = 255  // nr_conns is one byte
	PEDataMaxLen = 255  // IP_VS_PEDATA_MAXLEN
	PENameMaxLen = 16   // IP_VS_PENAME_MAXLEN
)

// DefaultGroup is IP_VS_SYNC_GROUP. The kernel has no IPv6 default: an
// IPv6 group must be given.
var DefaultGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

// Connection flags (IP_VS_CONN_F_*), as carried in an entry.
const (
	FwdMask    = 0x0007 // forwarding method bits
	FwdMasq    = 0x0000
	FwdLocal   = 0x0001
	FwdTunnel  = 0x0002
	FwdRoute   = 0x0003
	FwdBypass  = 0x0004
	FwdFullNAT = 0x0005 // not the kernel's: gvs (and DPVS) FULLNAT

	FlagSync      = 0x0020 // entry created by sync (set by the backup)
	FlagHashed    = 0x0040 // never sent
	FlagNoOutput  = 0x0080
	FlagInactive  = 0x0100
	FlagOutSeq    = 0x0200
	FlagInSeq     = 0x0400
	FlagSeqMask   = 0x0600
	FlagNoCPort   = 0x0800
	FlagTemplate  = 0x1000
	FlagOnePacket = 0x2000

	// BackupMask is IP_VS_CONN_F_BACKUP_MASK: the flags a backup takes
	// from an entry; BackupUpdMask those it updates on an entry it has.
	BackupMask    = FwdMask | FlagNoOutput | FlagInactive | FlagSeqMask | FlagNoCPort | FlagTemplate
	BackupUpdMask = FlagInactive | FlagSeqMask
)

// Option types (IPVS_OPT_*). An option whose type has OptFlagParam set
// may be ignored by a receiver that does not know it; an unknown one
// without it makes the receiver skip the entry.
const (
	OptSeqData   = 1
	OptPEData    = 2
	OptPEName    = 3
	OptFlagParam = 0x40 // IPVS_OPT_F_PARAM

	// OptLocal is gvs's own (ignorable) option: a FULLNAT connection's
	// local address and port (4 or 16 bytes, then 2), which the
	// kernel's entry has no field for.
	OptLocal = OptFlagParam | 8
)

// Protocol numbers and the state counts the kernel checks entries
// against (ip_vs_proto_get, pp->num_states).
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
	protoAH   = 51
	protoESP  = 50
)

func numStates(proto uint8) (int, bool) {
	switch proto {
	case protoTCP:
		return 11, true // IP_VS_TCP_S_LAST
	case protoUDP:
		return 2, true // IP_VS_UDP_S_LAST
	case protoSCTP:
		return 10, true // IP_VS_SCTP_S_LAST
	case protoAH, protoESP:
		return 1, true
	}
	return 0, false
}

// templateStates is IP_VS_CTPL_S_LAST.
const templateStates = 2

// Seq is struct ip_vs_seq.
type Seq struct {
	InitSeq, Delta, PreviousDelta uint32
}

// Conn is one entry: a connection or (FlagTemplate) a persistence
// template, with what the protocol carries.
type Conn struct {
	Protocol uint8
	Flags    uint32 // IP_VS_CONN_F_*; version 0 carries the low 16 bits
	State    uint16 // IP_VS_TCP_S_*, IP_VS_UDP_S_NORMAL (0), ...
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Dest     netip.AddrPort
	FWMark   uint32
	Timeout  uint32 // seconds; 0 from version 0 (the backup's default)

	// Seq is the sequence adjustment data (option 1), sent when Flags
	// has FlagSeqMask bits.
	HasSeq        bool
	InSeq, OutSeq Seq
	// PEData and PEName are a persistence engine's data and name
	// (options 2 and 3; the kernel sends the name only with data).
	PEData []byte
	PEName string
	// Local is a FULLNAT connection's local address and port (OptLocal,
	// ignorable: kernels skip it).
	Local netip.AddrPort
}

// IPv6 says whether the entry is an ip_vs_sync_v6.
func (c *Conn) IPv6() bool { return c.Client.Addr().Is6() && !c.Client.Addr().Is4In6() }

// Len is the entry's length (ver_size), without the padding that may
// follow it.
func (c *Conn) Len() int {
	n := ConnV4Len
	if c.IPv6() {
		n = ConnV6Len
	}
	if c.Flags&FlagSeqMask != 0 {
		n += 2 + SeqOptLen
	}
	if len(c.PEData) > 0 {
		n += 2 + len(c.PEData)
		if c.PEName != "" {
			n += 2 + len(c.PEName)
		}
	}
	if c.Local.IsValid() {
		n += 2 + 2 + len(c.Local.Addr().AsSlice())
	}
	return n
}

func (c *Conn) check() error {
	v6 := c.IPv6()
	for _, a := range []netip.AddrPort{c.Client, c.Virtual, c.Dest} {
		if !a.IsValid() || a.Addr().Is6() != v6 {
			return fmt.Errorf("ipvssync: entry addresses %v %v %v: all IPv4 or all IPv6", c.Client, c.Virtual, c.Dest)
		}
	}
	if c.Local.IsValid() && c.Local.Addr().Is6() != v6 {
		return fmt.Errorf("ipvssync: local address %v of another family", c.Local)
	}
	if len(c.PEData) > PEDataMaxLen || len(c.PEName) > PENameMaxLen {
		return errors.New("ipvssync: persistence engine data or name too long")
	}
	if c.Len() > 0x0fff {
		return errors.New("ipvssync: entry too long")
	}
	return nil
}

// appendConn appends an entry (no padding) to b.
func appendConn(b []byte, c *Conn) []byte {
	var typ byte
	if c.IPv6() {
		typ = 1 // STYPE_F_INET6
	}
	b = append(b, typ, c.Protocol)
	b = binary.BigEndian.AppendUint16(b, uint16(c.Len())&0x0fff) // version 0 in the top 4 bits
	b = binary.BigEndian.AppendUint32(b, c.Flags&^FlagHashed)
	b = binary.BigEndian.AppendUint16(b, c.State)
	b = binary.BigEndian.AppendUint16(b, c.Client.Port())
	b = binary.BigEndian.AppendUint16(b, c.Virtual.Port())
	b = binary.BigEndian.AppendUint16(b, c.Dest.Port())
	b = binary.BigEndian.AppendUint32(b, c.FWMark)
	b = binary.BigEndian.AppendUint32(b, c.Timeout)
	for _, a := range []netip.AddrPort{c.Client, c.Virtual, c.Dest} {
		b = append(b, a.Addr().AsSlice()...)
	}
	if c.Flags&FlagSeqMask != 0 {
		b = append(b, OptSeqData, SeqOptLen)
		for _, s := range []Seq{c.InSeq, c.OutSeq} {
			b = binary.BigEndian.AppendUint32(b, s.InitSeq)
			b = binary.BigEndian.AppendUint32(b, s.Delta)
			b = binary.BigEndian.AppendUint32(b, s.PreviousDelta)
		}
	}
	if len(c.PEData) > 0 {
		b = append(b, OptPEData, byte(len(c.PEData)))
		b = append(b, c.PEData...)
		if c.PEName != "" {
			b = append(b, OptPEName, byte(len(c.PEName)))
			b = append(b, c.PEName...)
		}
	}
	if c.Local.IsValid() {
		a := c.Local.Addr().AsSlice()
		b = append(b, OptLocal, byte(len(a)+2))
		b = append(b, a...)
		b = binary.BigEndian.AppendUint16(b, c.Local.Port())
	}
	return b
}

// Builder batches entries into one version 1 message of at most maxLen
// bytes and MaxConns entries, as the kernel's sync buffer: each entry
// after the first is preceded by the padding that aligns it.
type Builder struct {
	syncID uint8
	maxLen int
	buf    []byte
	n      int
}

// NewBuilder returns an empty message for syncID of at most maxLen bytes
// (an entry longer than that still makes a message of its own).
func NewBuilder(syncID uint8, maxLen int) *Builder {
	b := &Builder{syncID: syncID, maxLen: maxLen}
	b.Reset()
	return b
}

// Reset empties the message.
func (b *Builder) Reset() {
	b.buf = append(b.buf[:0], 0, b.syncID, 0, HeaderLen, 0, Version, 0, 0)
	b.n = 0
}

// Len is the number of entries.
func (b *Builder) Len() int { return b.n }

// Fits says whether c can be added without going over the limits.
func (b *Builder) Fits(c *Conn) bool {
	if b.n == 0 {
		return true
	}
	pad := (4 - len(b.buf)%4) % 4
	return b.n < MaxConns && len(b.buf)+pad+c.Len() <= b.maxLen
}

// Add appends c; the caller checks Fits first (Add does not refuse an
// entry past maxLen, only a malformed one).
func (b *Builder) Add(c *Conn) error {
	if err := c.check(); err != nil {
		return err
	}
	if b.n >= MaxConns {
		return errors.New("ipvssync: message full")
	}
	if len(b.buf)+3+c.Len() > 0xffff {
		return errors.New("ipvssync: message too long")
	}
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
	b.buf = appendConn(b.buf, c)
	b.n++
	return nil
}

// Bytes returns the message (valid until the next Add or Reset).
func (b *Builder) Bytes() []byte {
	binary.BigEndian.PutUint16(b.buf[2:], uint16(len(b.buf)))
	b.buf[4] = byte(b.n)
	return b.buf
}

// Encode returns conns as one version 1 message.
func Encode(syncID uint8, conns []Conn) ([]byte, error) {
	b := NewBuilder(syncID, 0xffff)
	for i := range conns {
		if err := b.Add(&conns[i]); err != nil {
			return nil, err
		}
	}
	return append([]byte(nil), b.Bytes()...), nil
}

// EncodeV0 returns conns as one version 0 message (IPv4 only; no
// timeout, fwmark or options but the sequence data, which version 0
// carries in the sender's byte order: here little endian, x86's).
func EncodeV0(syncID uint8, conns []Conn) ([]byte, error) {
	if len(conns) > MaxConns {
		return nil, errors.New("ipvssync: too many entries")
	}
	b := []byte{byte(len(conns)), syncID, 0, 0}
	for i := range conns {
		c := &conns[i]
		if err := c.check(); err != nil {
			return nil, err
		}
		if c.IPv6() {
			return nil, errors.New("ipvssync: version 0 carries IPv4 only")
		}
		b = append(b, 0, c.Protocol)
		b = binary.BigEndian.AppendUint16(b, c.Client.Port())
		b = binary.BigEndian.AppendUint16(b, c.Virtual.Port())
		b = binary.BigEndian.AppendUint16(b, c.Dest.Port())
		for _, a := range []netip.AddrPort{c.Client, c.Virtual, c.Dest} {
			b = append(b, a.Addr().AsSlice()...)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(c.Flags&^FlagHashed))
		b = binary.BigEndian.AppendUint16(b, c.State)
		if c.Flags&FlagSeqMask != 0 {
			for _, s := range []Seq{c.InSeq, c.OutSeq} {
				b = binary.LittleEndian.AppendUint32(b, s.InitSeq)
				b = binary.LittleEndian.AppendUint32(b, s.Delta)
				b = binary.LittleEndian.AppendUint32(b, s.PreviousDelta)
			}
		}
	}
	if len(b) > 0xffff {
		return nil, errors.New("ipvssync: message too long")
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b, nil
}

// Reason is why (part of) a message was dropped.
type Reason int

// Drop reasons. Those before ReasonSkipped drop what is left of the
// message (the entries before stay decoded), as the kernel does; the
// others skip one entry.
const (
	ReasonShort     Reason = iota // shorter than a header
	ReasonSize                    // header size is not the datagram's length
	ReasonTruncated               // an entry runs past the end of the message
	ReasonVersion                 // an entry's version (ver_size's top 4 bits) is not 0
	ReasonType                    // an entry's type is neither IPv4 nor IPv6
	ReasonOption                  // a malformed or repeated option
	ReasonSkipped                 // (not a reason: the first that skips only an entry)
	ReasonMandatory               // an unknown option without the ignorable bit
	ReasonProtocol                // a protocol IPVS does not sync
	ReasonState                   // a state out of its protocol's range
	ReasonPE                      // persistence engine data without a name
	NumReasons
)

var reasonNames = [NumReasons]string{"short", "bad_size", "truncated", "bad_version", "bad_type", "bad_option", "",
	"unknown_mandatory_option", "bad_protocol", "bad_state", "bad_pe"}

func (r Reason) String() string {
	if r >= 0 && r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// DecodeError is the error of a message Decode dropped (all of it, or
// the rest from an entry on).
type DecodeError struct {
	Reason Reason
	Entry  int // index of the entry where decoding stopped (-1: the header)
}

func (e *DecodeError) Error() string {
	if e.Entry < 0 {
		return "ipvssync: message dropped: " + e.Reason.String()
	}
	return fmt.Sprintf("ipvssync: message dropped from entry %d: %s", e.Entry, e.Reason)
}

// Message is a decoded message.
type Message struct {
	Version int // 0 or 1
	SyncID  uint8
	Conns   []Conn
}

// Counts are decoding statistics: messages and entries decoded, and what
// was dropped, by reason.
type Counts struct {
	Messages uint64
	Conns    uint64
	Dropped  [NumReasons]uint64
}

// Decode decodes a version 1 or version 0 message as ip_vs_process_message
// reads it. Entries the kernel skips (an unknown mandatory option, an
// unsupported protocol, a bad state, persistence data without a name)
// are counted in c and left out; an error that drops the rest of the
// message is returned as a *DecodeError, with the entries before it in
// the Message. c may be nil. The sync id is not filtered here.
func Decode(b []byte, c *Counts) (Message, error) {
	if c == nil {
		c = &Counts{}
	}
	m, err := decode(b, c)
	var de *DecodeError
	if errors.As(err, &de) {
		c.Dropped[de.Reason]++
	}
	if err == nil || de != nil && de.Entry >= 0 {
		c.Messages++
		c.Conns += uint64(len(m.Conns))
	}
	return m, err
}

func decode(b []byte, c *Counts) (Message, error) {
	if len(b) < HeaderLenV0 {
		return Message{}, &DecodeError{ReasonShort, -1}
	}
	if int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		return Message{}, &DecodeError{ReasonSize, -1}
	}
	m := Message{SyncID: b[1]}
	// The kernel reads the v1 header fields even from a 4-byte
	// message (its buffer is larger); a short one is version 0.
	if len(b) >= HeaderLen && b[5] == Version && b[0] == 0 && b[6] == 0 && b[7] == 0 {
		m.Version = 1
		return m, decodeV1(b, &m, c)
	}
	return m, decodeV0(b, &m, c)
}

func decodeV1(b []byte, m *Message, c *Counts) error {
	n := int(b[4])
	off := HeaderLen
	for i := range n {
		if off+ConnV4Len > len(b) {
			return &DecodeError{ReasonTruncated, i}
		}
		vs := binary.BigEndian.Uint16(b[off+2:])
		size := int(vs & 0x0fff)
		end := off + size
		if end > len(b) {
			return &DecodeError{ReasonTruncated, i}
		}
		if vs>>12 != 0 {
			return &DecodeError{ReasonVersion, i}
		}
		conn, skip, err := decodeEntry(b[off], b[off:end])
		if err != 0 {
			return &DecodeError{err, i}
		}
		if skip != 0 {
			c.Dropped[skip]++
		} else {
			m.Conns = append(m.Conns, conn)
		}
		off += (size + 3) &^ 3
	}
	return nil
}

// decodeEntry decodes one version 1 entry (ip_vs_proc_sync_conn): a
// nonzero drop drops the rest of the message, a nonzero skip the entry.
// typ is the entry's first byte, read even when its size is smaller.
func decodeEntry(typ byte, e []byte) (conn Conn, skip, drop Reason) {
	var alen int
	switch typ {
	case 0:
		alen = 4
	default:
		if typ&1 == 0 {
			return conn, 0, ReasonType
		}
		alen = 16
	}
	fixed := 24 + 3*alen
	if fixed > len(e) {
		return conn, 0, ReasonTruncated
	}
	addr := func(o int) netip.Addr {
		if alen == 4 {
			return netip.AddrFrom4([4]byte(e[o : o+4]))
		}
		return netip.AddrFrom16([16]byte(e[o : o+16]))
	}
	conn = Conn{
		Protocol: e[1],
		Flags:    binary.BigEndian.Uint32(e[4:]),
		State:    binary.BigEndian.Uint16(e[8:]),
		Client:   netip.AddrPortFrom(addr(24), binary.BigEndian.Uint16(e[10:])),
		Virtual:  netip.AddrPortFrom(addr(24+alen), binary.BigEndian.Uint16(e[12:])),
		Dest:     netip.AddrPortFrom(addr(24+2*alen), binary.BigEndian.Uint16(e[14:])),
		FWMark:   binary.BigEndian.Uint32(e[16:]),
		Timeout:  binary.BigEndian.Uint32(e[20:]),
	}
	var seen [8]bool
	for p := fixed; p < len(e); {
		if p+2 > len(e) {
			return conn, 0, ReasonOption
		}
		typ, l := e[p], int(e[p+1])
		p += 2
		if l == 0 || p+l > len(e) {
			return conn, 0, ReasonOption
		}
		d := e[p : p+l]
		switch typ &^ OptFlagParam {
		case OptSeqData:
			if l != SeqOptLen || seen[OptSeqData] {
				return conn, 0, ReasonOption
			}
			seen[OptSeqData] = true
			conn.HasSeq = true
			for i, s := range []*Seq{&conn.InSeq, &conn.OutSeq} {
				s.InitSeq = binary.BigEndian.Uint32(d[12*i:])
				s.Delta = binary.BigEndian.Uint32(d[12*i+4:])
				s.PreviousDelta = binary.BigEndian.Uint32(d[12*i+8:])
			}
		case OptPEData:
			if seen[OptPEData] {
				return conn, 0, ReasonOption
			}
			seen[OptPEData] = true
			conn.PEData = append([]byte(nil), d...)
		case OptPEName:
			if l > PENameMaxLen || seen[OptPEName] {
				return conn, 0, ReasonOption
			}
			seen[OptPEName] = true
			conn.PEName = string(d)
		default:
			if typ == OptLocal && (l == 6 || l == 18) {
				a, _ := netip.AddrFromSlice(d[:l-2])
				conn.Local = netip.AddrPortFrom(a, binary.BigEndian.Uint16(d[l-2:]))
			} else if typ&OptFlagParam == 0 {
				// The kernel stops reading the entry here: later
				// options are not checked.
				return conn, ReasonMandatory, 0
			}
		}
		p += l
	}
	return conn, checkEntry(&conn), 0
}

// checkEntry is the kernel's check of an entry's protocol and state, and
// of its persistence engine data (data without a name is refused; a
// named engine is for the installer to know).
func checkEntry(c *Conn) Reason {
	if c.Flags&FlagTemplate == 0 {
		n, ok := numStates(c.Protocol)
		if !ok {
			return ReasonProtocol
		}
		if int(c.State) >= n {
			return ReasonState
		}
	} else if c.State >= templateStates {
		return ReasonState
	}
	if len(c.PEData) > 0 && c.PEName == "" {
		return ReasonPE
	}
	return 0
}

func decodeV0(b []byte, m *Message, c *Counts) error {
	n := int(b[0])
	off := HeaderLenV0
	for i := range n {
		if off+ConnV0Len > len(b) {
			return &DecodeError{ReasonTruncated, i}
		}
		e := b[off:]
		flags := uint32(binary.BigEndian.Uint16(e[20:]))
		conn := Conn{
			Protocol: e[1],
			Flags:    flags,
			State:    binary.BigEndian.Uint16(e[22:]),
			Client:   netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[8:12])), binary.BigEndian.Uint16(e[2:])),
			Virtual:  netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[12:16])), binary.BigEndian.Uint16(e[4:])),
			Dest:     netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[16:20])), binary.BigEndian.Uint16(e[6:])),
		}
		off += ConnV0Len
		if flags&FlagSeqMask != 0 {
			if off+SeqOptLen > len(b) {
				return &DecodeError{ReasonTruncated, i}
			}
			d := b[off:]
			conn.HasSeq = true
			for j, s := range []*Seq{&conn.InSeq, &conn.OutSeq} {
				s.InitSeq = binary.LittleEndian.Uint32(d[12*j:])
				s.Delta = binary.LittleEndian.Uint32(d[12*j+4:])
				s.PreviousDelta = binary.LittleEndian.Uint32(d[12*j+8:])
			}
			off += SeqOptLen
		}
		if r := checkEntry(&conn); r != 0 {
			c.Dropped[r]++
			continue
		}
		m.Conns = append(m.Conns, conn)
	}
	return nil
}
