package main

import "testing"

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi uint16
		ok     bool
	}{
		{"1024-32767", 1024, 32767, true},
		{"5000-5000", 5000, 5000, true},
		{"1-65535", 1, 65535, true},
		{"0-100", 0, 0, false},
		{"200-100", 0, 0, false},
		{"1024", 0, 0, false},
		{"1024-65536", 0, 0, false},
		{"a-b", 0, 0, false},
	} {
		lo, hi, err := parsePortRange(c.in)
		if (err == nil) != c.ok || lo != c.lo || hi != c.hi {
			t.Errorf("%q: %d-%d %v", c.in, lo, hi, err)
		}
	}
}
