package main

import (
	"net/netip"
	"slices"
	"testing"
)

// A config file in ipvsadm-save form gives pools with -P lines, in order.
func TestSaveLinesLocalAddrs(t *testing.T) {
	r, err := saveLinesToRules([]byte("-A -t 198.18.0.1:80 -s rr\n" +
		"-a -t 198.18.0.1:80 -r 198.18.1.1:8080 --fullnat -w 1\n" +
		"-P -t 198.18.0.1:80 -z 198.18.3.2\n" +
		"-P -t 198.18.0.1:80 -z 198.18.3.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("198.18.3.2"), netip.MustParseAddr("198.18.3.1")}
	if len(r.Services) != 1 || !slices.Equal(r.Services[0].LocalAddrs, want) {
		t.Fatalf("rules %+v, want the pool %v", r, want)
	}
	if _, err := saveLinesToRules([]byte("-A -t 198.18.0.1:80\n-P -t 198.18.0.1:80 -z 2001:db8::1\n")); err == nil {
		t.Fatal("a pool address of the other family was accepted")
	}
}

// In ipvsadm-save form, a -C line is how a config asks for no services.
func TestSaveLinesExplicitEmpty(t *testing.T) {
	for _, c := range []struct {
		text     string
		explicit bool
	}{
		{"-C\n", true},
		{"# cleared on purpose\n-C\n", true},
		{"-A -t 198.18.0.1:80\n-D -t 198.18.0.1:80\n", false},
		{"--set 60 120 300\n", false},
	} {
		r, err := saveLinesToRules([]byte(c.text))
		if err != nil || len(r.Services) != 0 || r.ExplicitEmpty != c.explicit {
			t.Errorf("%q: %+v %v, want explicit %v", c.text, r, err, c.explicit)
		}
	}
}
