package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "Usage:"},
		{[]string{"--help"}, 0, ""},
		{[]string{"up", "--help"}, 0, ""},
		{[]string{"frob"}, 2, "unknown command"},
		{[]string{"up"}, 2, "at least one --vip"},
		{[]string{"up", "--vip", "198.18.50"}, 2, "not an IP address"},
		{[]string{"up", "--vip", "198.18.50.1/24"}, 2, "single address"},
		{[]string{"up", "--vip", "198.18.50.1", "--tunnel"}, 2, "--tunnel needs --interface"},
		{[]string{"up", "--vip", "198.18.50.1", "--attach", "xdp"}, 2, "bad attach mode"},
		{[]string{"up", "--vip", "198.18.50.1", "--interface", "gvsrs-nonesuch"}, 1, `interface "gvsrs-nonesuch": no such interface`},
		{[]string{"up", "--vip", "198.18.50.1", "extra"}, 2, "unexpected argument"},
		{[]string{"down", "--tunnel"}, 2, "flag provided but not defined"},
		{[]string{"status", "--state-dir", "/nonexistent/gvsrs-test"}, 0, ""},
	} {
		var out, errb bytes.Buffer
		code := run(tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d, stderr with %q", tt.args, code, errb.String(), tt.code, tt.stderr)
		}
	}
}
