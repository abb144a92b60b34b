package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed pages are what genman makes now from the programs' -h
// and the docs (else: make man), and they render without warnings.
func TestManPagesCurrent(t *testing.T) {
	root, _ := filepath.Abs("../..")
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/gvsd", "./cmd/gvs-lbaas", "./cmd/gvs-realserver")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pages, err := Generate(root, bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Pages {
		have, err := os.ReadFile(filepath.Join(root, "packaging/man", p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, pages[p]) {
			t.Errorf("packaging/man/%s differs from what tools/genman makes now: run make man", p)
		}
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man (man-db) not installed: pages not rendered")
	}
	for _, p := range Pages {
		cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", filepath.Join(root, "packaging/man", p))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || len(out) < 200 {
			t.Errorf("man -l %s: %v, %d bytes, warnings:\n%s", p, err, len(out), stderr.String())
		}
	}
}
