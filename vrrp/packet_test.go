package vrrp

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// refSum is the Internet checksum done the long way: 16-bit words added
// with end-around carry one at a time, then complemented.
func refSum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint16
	for i := 0; i < len(all); i += 2 {
		w := uint16(all[i])<<8 | uint16(all[i+1])
		t := uint32(s) + uint32(w)
		s = uint16(t) + uint16(t>>16)
	}
	return ^s
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalExact(t *testing.T) {
	src4, src6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fe80::1")
	vip4 := []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101")}
	vip6 := []netip.Addr{netip.MustParseAddr("2001:db8::100")}
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		// want has the checksum as XXXX; pseudo is the pseudo-header
		// the test's own checksum covers (nil for v2).
		want   string
		pseudo string
	}{
		{
			name: "v2 no auth", src: src4, dst: Group4,
			a:    Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, Addrs: vip4},
			want: "21 33 64 02 00 01 XXXX c6120064 c6120065 0000000000000000",
		},
		{
			name: "v2 pass", src: src4, dst: Group4,
			a:    Advert{Version: 2, VRID: 7, Priority: 255, Interval: 3 * time.Second, Addrs: vip4[:1], AuthType: AuthPass, AuthData: password("secret")},
			want: "21 07 ff 01 01 03 XXXX c6120064 7365637265740000",
		},
		{
			name: "v3 ipv4", src: src4, dst: Group4,
			a:      Advert{Version: 3, VRID: 51, Priority: 100, Interval: 1500 * time.Millisecond, Addrs: vip4},
			want:   "31 33 64 02 00 96 XXXX c6120064 c6120065",
			pseudo: "c6120001 e0000012 00 70 0010",
		},
		{
			name: "v3 ipv6 priority 0", src: src6, dst: Group6,
			a:      Advert{Version: 3, VRID: 1, Priority: 0, Interval: 40950 * time.Millisecond, Addrs: vip6},
			want:   "31 01 00 01 0f ff XXXX 20010db8000000000000000000000100",
			pseudo: "fe800000000000000000000000000001 ff020000000000000000000000000012 00000018 000000 3a",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Marshal(tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, strings.Replace(tc.want, "XXXX", "0000", 1))
			var pseudo []byte
			if tc.pseudo != "" {
				pseudo = unhex(t, tc.pseudo)
				if tc.src.Is6() {
					pseudo[len(pseudo)-1] = IPProto // next header
				}
			}
			sum := refSum(pseudo, want)
			want[6], want[7] = byte(sum>>8), byte(sum)
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal:\n got %x\nwant %x", got, want)
			}
			back, err := Parse(got, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if back.Version != tc.a.Version || back.VRID != tc.a.VRID || back.Priority != tc.a.Priority ||
				back.Interval != tc.a.Interval || !slices.Equal(back.Addrs, tc.a.Addrs) ||
				back.AuthType != tc.a.AuthType || back.AuthData != tc.a.AuthData {
				t.Fatalf("Parse: got %+v, want %+v", back, tc.a)
			}
			// A flipped bit anywhere fails the checksum.
			for i := range got {
				bad := slices.Clone(got)
				bad[i] ^= 0x40
				if _, err := Parse(bad, tc.src, tc.dst); err == nil {
					t.Errorf("byte %d flipped: parsed", i)
				}
			}
			// v3's checksum covers the addresses, v2's does not.
			other := netip.MustParseAddr("198.18.0.2")
			if tc.src.Is6() {
				other = netip.MustParseAddr("fe80::2")
			}
			_, err = Parse(got, other, tc.dst)
			if tc.a.Version == 3 && err != ErrChecksum {
				t.Errorf("v3 from another source: err %v, want %v", err, ErrChecksum)
			}
			if tc.a.Version == 2 && err != nil {
				t.Errorf("v2 from another source: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	src := netip.MustParseAddr("198.18.0.1")
	good, _ := (&Advert{Version: 2, VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{src}}).Marshal(src, Group4)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:7], ErrShort},
		{"truncated", good[:len(good)-1], ErrShort},
		{"long", append(slices.Clone(good), 0, 0), ErrLength},
		{"type 2", append([]byte{0x22}, good[1:]...), ErrType},
		{"version 4", append([]byte{0x41}, good[1:]...), ErrVersion},
	} {
		if _, err := Parse(tc.b, src, Group4); err != tc.want {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := (&Advert{Version: 2, VRID: 1, Interval: time.Second}).Marshal(netip.MustParseAddr("fe80::1"), Group6); err == nil {
		t.Error("v2 over IPv6 marshalled")
	}
	if _, err := (&Advert{Version: 3, VRID: 1, Interval: 41 * time.Second}).Marshal(src, Group4); err == nil {
		t.Error("v3 interval 41 s marshalled")
	}
}

func FuzzParse(f *testing.F) {
	src4, src6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fe80::1")
	for _, a := range []Advert{
		{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}},
		{Version: 3, VRID: 2, Priority: 255, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}},
	} {
		b, _ := a.Marshal(src4, Group4)
		f.Add(b, false)
	}
	b, _ := (&Advert{Version: 3, VRID: 3, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}).Marshal(src6, Group6)
	f.Add(b, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		src, dst := src4, Group4
		if v6 {
			src, dst = src6, Group6
		}
		a, err := Parse(b, src, dst)
		if err != nil {
			return
		}
		// What parses encodes back to the same bytes, except v3's
		// reserved bits.
		out, err := a.Marshal(src, dst)
		if err != nil {
			if a.Interval == 0 {
				return // interval 0 is refused on the way out
			}
			t.Fatalf("Marshal of parsed %+v: %v", a, err)
		}
		in := slices.Clone(b)
		if a.Version == 3 {
			in[4] &= 0x0f
			sum := Checksum(3, src, dst, append(in[:6:6], append([]byte{0, 0}, in[8:]...)...))
			in[6], in[7] = byte(sum>>8), byte(sum)
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("round trip:\n in %x\nout %x", in, out)
		}
	})
}
