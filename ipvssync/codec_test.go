package ipvssync

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// hx turns "00 05 00 2c | ..." into bytes (spaces and bars ignored).
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var ap = netip.MustParseAddrPort

// The entries below are laid out field by field after struct
// ip_vs_sync_mesg, ip_vs_sync_v4 and ip_vs_sync_v6 of ip_vs_sync.c.
var (
	connDR = Conn{Protocol: 6, Flags: FwdRoute, State: 1, Client: ap("10.0.0.1:1234"),
		Virtual: ap("10.0.0.100:80"), Dest: ap("10.0.1.1:8080"), Timeout: 900}
	connDRBytes = "" +
		"00 06 0024 | 00000003 | 0001 04d2 | 0050 1f90 | 00000000 | 00000384 | 0a000001 | 0a000064 | 0a000101"

	tmpl = Conn{Protocol: 6, Flags: FlagTemplate | FwdRoute, Client: ap("10.0.0.0:0"),
		Virtual: ap("10.0.0.100:80"), Dest: ap("10.0.1.1:8080"), Timeout: 300}
	tmplBytes = "00 06 0024 | 00001003 | 0000 0000 | 0050 1f90 | 00000000 | 0000012c | 0a000000 | 0a000064 | 0a000101"

	// NAT with sequence data: 36 + 2 + 24 = 62 bytes, so 2 bytes of
	// padding before the next entry.
	connSeq = Conn{Protocol: 6, Flags: FwdMasq | FlagInSeq | FlagInactive, State: 3, Client: ap("192.0.2.7:40000"),
		Virtual: ap("192.0.2.1:443"), Dest: ap("198.51.100.9:443"), FWMark: 7, Timeout: 60, HasSeq: true,
		InSeq: Seq{1, 2, 3}, OutSeq: Seq{0x11223344, 0xfffffffe, 5}}
	connSeqBytes = "00 06 003e | 00000500 | 0003 9c40 | 01bb 01bb | 00000007 | 0000003c | c0000207 | c0000201 | c6336409 |" +
		"01 18 | 00000001 00000002 00000003 | 11223344 fffffffe 00000005"

	// IPv6 UDP with persistence engine data and name: 72 + 4 + 5 = 81.
	conn6 = Conn{Protocol: 17, Flags: FwdTunnel, Client: ap("[2001:db8::1]:5060"), Virtual: ap("[2001:db8::100]:5060"),
		Dest: ap("[2001:db8:1::5]:5060"), Timeout: 300, PEData: []byte("ab"), PEName: "sip"}
	conn6Bytes = "01 11 0051 | 00000002 | 0000 13c4 | 13c4 13c4 | 00000000 | 0000012c |" +
		"20010db8000000000000000000000001 | 20010db8000000000000000000000100 | 20010db8000100000000000000000005 |" +
		"02 02 6162 | 03 03 736970"
)

func TestEncodeDecodeV1(t *testing.T) {
	for _, tc := range []struct {
		name   string
		syncID uint8
		conns  []Conn
		wire   string
	}{
		{"one IPv4", 5, []Conn{connDR}, "00 05 002c 01 01 0000 |" + connDRBytes},
		{"template, seq option (padding), IPv6 with PE options", 0, []Conn{tmpl, connSeq, conn6},
			"00 00 00bd 03 01 0000 |" + tmplBytes + "|" + connSeqBytes + "| 0000 |" + conn6Bytes},
		{"empty", 9, nil, "00 09 0008 00 01 0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := hx(t, tc.wire)
			got, err := Encode(tc.syncID, tc.conns)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%x\nwant\n%x", got, want)
			}
			var c Counts
			m, err := Decode(want, &c)
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != 1 || m.SyncID != tc.syncID || len(m.Conns) != len(tc.conns) {
				t.Fatalf("decoded %+v", m)
			}
			for i := range tc.conns {
				if !reflect.DeepEqual(m.Conns[i], tc.conns[i]) {
					t.Fatalf("entry %d: %+v\nwant %+v", i, m.Conns[i], tc.conns[i])
				}
			}
			if c.Messages != 1 || c.Conns != uint64(len(tc.conns)) || c.Dropped != [NumReasons]uint64{} {
				t.Fatalf("counts %+v", c)
			}
		})
	}
}

// gvs's FULLNAT option is ignorable (0x40 set): kernels skip it.
func TestLocalOption(t *testing.T) {
	c := connDR
	c.Flags = FwdFullNAT
	c.Local = ap("10.9.0.1:20000")
	b, err := Encode(1, []Conn{c})
	if err != nil {
		t.Fatal(err)
	}
	want := hx(t, "00 01 0034 01 01 0000 | 00 06 002c | 00000005 | 0001 04d2 | 0050 1f90 | 00000000 | 00000384 | 0a000001 | 0a000064 | 0a000101 | 48 06 0a090001 4e20")
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded %x\nwant    %x", b, want)
	}
	m, err := Decode(b, nil)
	if err != nil || len(m.Conns) != 1 || m.Conns[0].Local != c.Local {
		t.Fatalf("decoded %+v %v", m, err)
	}
}

func TestEncodeDecodeV0(t *testing.T) {
	c1 := Conn{Protocol: 6, Flags: FwdRoute | FlagInactive, State: 3, Client: ap("10.0.0.1:1234"), Virtual: ap("10.0.0.100:80"), Dest: ap("10.0.1.1:80")}
	c2 := Conn{Protocol: 17, Flags: FwdMasq | FlagOutSeq, Client: ap("10.0.0.2:53"), Virtual: ap("10.0.0.100:53"), Dest: ap("10.0.1.2:53"),
		HasSeq: true, InSeq: Seq{1, 2, 3}, OutSeq: Seq{4, 5, 6}}
	// struct ip_vs_sync_mesg_v0, then ip_vs_sync_conn_v0 (24 bytes) and,
	// for the second, ip_vs_sync_conn_options in the sender's order.
	want := hx(t, "02 07 004c |"+
		"00 06 04d2 0050 0050 0a000001 0a000064 0a000101 0103 0003 |"+
		"00 11 0035 0035 0035 0a000002 0a000064 0a000102 0200 0000 |"+
		"01000000 02000000 03000000 04000000 05000000 06000000")
	got, err := EncodeV0(7, []Conn{c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x\nwant    %x", got, want)
	}
	m, err := Decode(want, nil)
	if err != nil || m.Version != 0 || m.SyncID != 7 || len(m.Conns) != 2 {
		t.Fatalf("decoded %+v %v", m, err)
	}
	if !reflect.DeepEqual(m.Conns[0], c1) || !reflect.DeepEqual(m.Conns[1], c2) {
		t.Fatalf("decoded %+v", m.Conns)
	}
}

// Malformed input is dropped as the kernel drops it, counted by reason;
// entries before the fault (and, for faults that skip one entry, those
// after it) are kept.
func TestMalformed(t *testing.T) {
	hdr := func(size, n int) string {
		return "00 00 " + hex.EncodeToString([]byte{byte(size >> 8), byte(size)}) + hex.EncodeToString([]byte{byte(n)}) + " 01 0000"
	}
	dr := connDRBytes
	for _, tc := range []struct {
		name   string
		wire   string
		reason Reason
		kept   int
		drop   bool // an error (the rest of the message dropped)
	}{
		{"short", "00 05 00", ReasonShort, 0, true},
		{"size not the length", "00 05 0030 01 01 0000 |" + dr, ReasonSize, 0, true},
		{"entry past the end", hdr(44+8, 2) + "|" + dr + "| 00 06 0024 00000003", ReasonTruncated, 1, true},
		{"entry size past the end", hdr(80, 2) + "|" + dr + "|" + strings.Replace(dr, "0024", "0028", 1), ReasonTruncated, 1, true},
		{"bad version", hdr(80, 2) + "|" + dr + "|" + strings.Replace(dr, "0024", "1024", 1), ReasonVersion, 1, true},
		{"bad type", hdr(80, 2) + "|" + dr + "|" + "02" + dr[2:], ReasonType, 1, true},
		{"option length 0", hdr(84, 2) + "|" + dr + "|" + strings.Replace(dr, "0024", "0026", 1) + "| 01 00 | 0000", ReasonOption, 1, true},
		{"seq option of the wrong length", hdr(8+40, 1) + "|" + strings.Replace(dr, "0024", "0028", 1) + "| 01 02 0000", ReasonOption, 0, true},
		{"unknown mandatory option skips the entry", hdr(8+40+36, 2) + "|" + strings.Replace(dr, "0024", "0027", 1) + "| 05 01 00 | 00 |" + dr, ReasonMandatory, 1, false},
		{"unknown ignorable option", hdr(8+40+36, 2) + "|" + strings.Replace(dr, "0024", "0027", 1) + "| 45 01 00 | 00 |" + dr, 0, 2, false},
		{"bad TCP state", hdr(44, 1) + "|" + strings.Replace(dr, "0001 04d2", "000b 04d2", 1), ReasonState, 0, false},
		{"bad protocol", hdr(44, 1) + "|" + "00 2f" + dr[5:], ReasonProtocol, 0, false},
		{"PE data without a name", hdr(8+40, 1) + "|" + strings.Replace(dr, "0024", "0028", 1) + "| 02 02 6162", ReasonPE, 0, false},
		{"v0 entry past the end", "02 01 0020 | 00 06 04d2 0050 0050 0a000001 0a000064 0a000101 0003 0001 | 00112233", ReasonTruncated, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Counts
			m, err := Decode(hx(t, tc.wire), &c)
			var de *DecodeError
			if tc.drop != (err != nil) || err != nil && (!errors.As(err, &de) || de.Reason != tc.reason) {
				t.Fatalf("err %v, want reason %v (drop %v)", err, tc.reason, tc.drop)
			}
			if len(m.Conns) != tc.kept {
				t.Fatalf("kept %d entries, want %d", len(m.Conns), tc.kept)
			}
			for r := range NumReasons {
				want := uint64(0)
				if r == tc.reason && (tc.drop || r > ReasonSkipped) {
					want = 1
				}
				if c.Dropped[r] != want {
					t.Fatalf("dropped[%v] = %d, want %d (%+v)", r, c.Dropped[r], want, c.Dropped)
				}
			}
		})
	}
}

// The builder makes MTU-sized messages: at most maxLen bytes.
func TestBuilderMaxLen(t *testing.T) {
	b := NewBuilder(1, 1472)
	n := 0
	for {
		c := connDR
		c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(1000+n))
		if !b.Fits(&c) {
			break
		}
		if err := b.Add(&c); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != (1472-8)/36 || len(b.Bytes()) > 1472 {
		t.Fatalf("%d entries, %d bytes", n, len(b.Bytes()))
	}
	m, err := Decode(b.Bytes(), nil)
	if err != nil || len(m.Conns) != n {
		t.Fatalf("%d decoded, %v", len(m.Conns), err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"00 05 002c 01 01 0000 |" + connDRBytes, "00 00 00bd 03 01 0000 |" + tmplBytes + "|" + connSeqBytes + "| 0000 |" + conn6Bytes,
		"01 07 001c | 00 06 04d2 0050 0050 0a000001 0a000064 0a000101 0103 0003"} {
		f.Add(hx(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Counts
		m, err := Decode(b, &c)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v", err, err)
			}
		}
		// What decodes encodes again and decodes the same (version 1
		// entries; the sync id and the order kept).
		if len(m.Conns) == 0 {
			return
		}
		var ok []Conn
		for _, cn := range m.Conns {
			if cn.check() == nil {
				ok = append(ok, cn)
			}
		}
		if len(ok) == 0 {
			return
		}
		enc, err := Encode(m.SyncID, ok)
		if err != nil {
			return // too long for one message
		}
		m2, err := Decode(enc, nil)
		if err != nil || len(m2.Conns) != len(ok) {
			t.Fatalf("re-decoded %d of %d: %v", len(m2.Conns), len(ok), err)
		}
		for i := range ok {
			a, b := ok[i], m2.Conns[i]
			a.Flags &^= FlagHashed
			if a.HasSeq && a.Flags&FlagSeqMask == 0 {
				a.HasSeq, a.InSeq, a.OutSeq = false, Seq{}, Seq{}
			}
			if !a.HasSeq && a.Flags&FlagSeqMask != 0 {
				b.HasSeq, b.InSeq, b.OutSeq = false, Seq{}, Seq{}
			}
			if a.PEName != "" && len(a.PEData) == 0 {
				a.PEName = ""
			}
			if len(a.PEData) == 0 {
				a.PEData = nil
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("entry %d: %+v\nre-decoded %+v", i, a, b)
			}
		}
	})
}
