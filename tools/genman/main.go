package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	out := flag.String("out", "packaging/man", "where the pages are written")
	bin := flag.String("bin", "", "directory with built gvsd, gvs-lbaas and gvs-realserver (default: build them)")
	flag.Parse()
	if err := run(*out, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}

func run(out, bin string) error {
	if bin == "" {
		tmp, err := os.MkdirTemp("", "genman")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := Build(tmp); err != nil {
			return err
		}
		bin = tmp
	}
	pages, err := Generate(".", bin)
	if err != nil {
		return err
	}
	for _, p := range Pages {
		if err := os.WriteFile(filepath.Join(out, p), pages[p], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Build builds the programs whose -h the pages are made from into dir.
func Build(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/gvsd", "./cmd/gvs-lbaas", "./cmd/gvs-realserver")
	cmd.Stderr = os.Stderr
	return cmd.Run()
}
