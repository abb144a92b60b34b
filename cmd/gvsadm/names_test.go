package main

import (
	"bytes"
	"strings"
	"testing"

	"gvs/ipvsadm"
)

// runAs runs gvsadm under another name (argv[0]), as a symlink or an
// update-alternatives link would.
func runAs(name, sock, stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(append([]string{"/usr/sbin/" + name, "--socket", sock}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// ipvsadm-save is ipvsadm -S and ipvsadm-restore is ipvsadm -R, as the
// init scripts of ipvsadm's package call them: the rules saved under one
// name come back under the other.
func TestSaveRestoreNames(t *testing.T) {
	src := startGvsd(t)
	for _, a := range []string{"-A -t 198.18.0.1:80 -s wrr", "-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -m -w 3", "-A -u 198.18.0.2:53 -s rr"} {
		if _, stderr, code := gvsadm(src, "", strings.Fields(a)...); code != 0 {
			t.Fatalf("%s: %d %s", a, code, stderr)
		}
	}
	want, _, _ := gvsadm(src, "", "-S", "-n")
	saved, stderr, code := runAs("ipvsadm-save", src, "", "-n")
	if code != 0 || saved != want || saved == "" {
		t.Fatalf("ipvsadm-save -n: code %d, stderr %q\n%s\nwant\n%s", code, stderr, saved, want)
	}
	dst := startGvsd(t)
	if _, stderr, code := runAs("ipvsadm-restore", dst, saved); code != 0 {
		t.Fatalf("ipvsadm-restore: code %d: %s", code, stderr)
	}
	if got, _, _ := gvsadm(dst, "", "-S", "-n"); got != want {
		t.Fatalf("after ipvsadm-restore:\n%s\nwant\n%s", got, want)
	}
	// Messages name ipvsadm, as under that name.
	_, stderr, code = runAs("ipvsadm-restore", dst, "-A -t 198.18.0.9:80 -s nosuch\n")
	if code == 0 || strings.Contains(stderr, "gvsadm") {
		t.Fatalf("bad restore line: code %d, stderr %q", code, stderr)
	}
}

// -v keeps ipvsadm's version line byte for byte (scripts parse it); gvs's
// build shows only under --gvs-version.
func TestVersionLines(t *testing.T) {
	var want bytes.Buffer
	ipvsadm.VersionAs(&want, "gvsadm")
	for _, arg := range []string{"-v", "--version"} {
		out, _, code := gvsadm("/nonexistent", "", arg)
		if code != 0 || out != want.String() {
			t.Fatalf("%s: %d %q, want %q", arg, code, out, want.String())
		}
	}
	out, _, code := gvsadm("/nonexistent", "", "--gvs-version")
	if code != 0 || !strings.HasPrefix(out, "gvsadm "+version+" (ipvsadm "+ipvsadm.IpvsadmVersion) || strings.Count(out, "\n") != 1 {
		t.Fatalf("--gvs-version: %d %q", code, out)
	}
	if out, _, _ := runAs("ipvsadm", "/nonexistent", "", "-v"); !strings.HasPrefix(out, "ipvsadm v1.31 ") {
		t.Fatalf("ipvsadm -v: %q", out)
	}
}
