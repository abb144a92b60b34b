package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	for _, tc := range []struct {
		content string // "-": no file
		weight  int64
		reverse bool
		dynamic bool
		up      bool
		want    int64 // Result.Weight when dynamic
	}{
		{"5\n", 1, false, false, true, 0},
		{"5\n", 3, false, true, true, 15},
		{"5\n", 3, true, true, true, -15},
		{"-20", 10, false, true, true, -200}, // -254 is VRRP's fault, not LVS's
		{"0x10 trailing", 1, false, true, true, 16},
		{"010", 1, false, true, true, 8}, // strtol base 0: octal
		{"  \t-7abc", 2, false, true, true, -14},
		{"", 5, false, true, true, 0},
		{"abc", 5, false, true, true, 0},
		{"-", 5, false, true, true, 0}, // missing file: 0
		{"-", 5, false, false, true, 0},
		// IPVS_WEIGHT_FAULT: the product clamped to 32 bits at INT32_MIN.
		{"-2147483648", 1, false, false, false, 0},
		{"-2147483648", 1, false, true, false, 0},
		{"2147483648", 1, true, true, false, 0},
		{"-1", 2147483647, false, false, true, 0},
		{"100000", 100000, true, false, false, 0},
		{"100000", 100000, false, true, true, 2147483647}, // clamped
	} {
		os.Remove(path)
		if tc.content != "-" {
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := New(Spec{Kind: File, File: FileSpec{Name: "tf", Path: path, Weight: tc.weight, Reverse: tc.reverse, Dynamic: tc.dynamic}}, Target{})
		if err != nil {
			t.Fatal(err)
		}
		r := c.Check(context.Background())
		bad := r.Up != tc.up
		if tc.dynamic && tc.up {
			bad = bad || r.Weight == nil || *r.Weight != tc.want
		} else {
			bad = bad || r.Weight != nil
		}
		if bad {
			t.Errorf("%q weight %d reverse %v dynamic %v: %+v (weight %v)", tc.content, tc.weight, tc.reverse, tc.dynamic, r, deref(r.Weight))
		}
	}
}

func TestFileCheckKeepsLastOnBadNumber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weight")
	c, err := New(Spec{Kind: File, File: FileSpec{Path: path, Dynamic: true}}, Target{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(content string, want int64) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		r := c.Check(context.Background())
		if !r.Up || r.Weight == nil || *r.Weight != want {
			t.Errorf("%q: %+v (weight %v), want %d", content, r, deref(r.Weight), want)
		}
	}
	check("12", 12)
	// Out of [INT32_MIN, INT32_MAX+1], or past int64: ignored, as
	// keepalived does, keeping 12.
	check("4294967296", 12)
	check("99999999999999999999", 12)
	check("7", 7)
	// The default weight is 1.
	if r := c.Check(context.Background()); !strings.Contains(r.Reason, "times 1 is 7") {
		t.Errorf("reason %q", r.Reason)
	}
	if _, err := New(Spec{Kind: File}, Target{}); err == nil {
		t.Error("no file accepted")
	}
}

func TestStrtol(t *testing.T) {
	for in, want := range map[string]int64{
		"42": 42, "+42": 42, "-42": -42, " \n 42x": 42, "0x1f": 31, "0X1F": 31, "0x": 0, "0xg": 0,
		"017": 15, "08": 0, "": 0, "-": 0, "x": 0, "9223372036854775807": 9223372036854775807,
		"-9223372036854775808": -9223372036854775808,
	} {
		if got, ok := strtol(in); !ok || got != want {
			t.Errorf("strtol(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := strtol("9223372036854775808"); ok {
		t.Error("overflow accepted")
	}
}
