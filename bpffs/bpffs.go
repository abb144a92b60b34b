// Package bpffs finds or mounts the BPF filesystem that pins live on.
package bpffs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const bpffsMagic = 0xcafe4a11

// On reports whether path is on a BPF filesystem.
func On(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && uint32(st.Type) == bpffsMagic
}

// EnsurePinDir makes dir, on a BPF filesystem. If /sys/fs/bpf is not
// mounted, it mounts it (as systemd does at boot), except under `ip netns
// exec`: that gives the command a private /sys, and pins there would
// vanish with the command. prog names the command in the advice.
func EnsurePinDir(dir, prog string, note func(string, ...any)) error {
	parent := filepath.Dir(dir)
	if !On(parent) && !On(dir) {
		if ns := IPNetnsExec(); ns != "" {
			return fmt.Errorf("%s is not on a BPF filesystem: under `ip netns exec %s` /sys is private to this command "+
				"and pins there would vanish when it exits; run `nsenter --net=/run/netns/%s %s ...` instead, "+
				"or pin on a BPF filesystem mounted outside /sys", parent, ns, ns, prog)
		}
		if parent != "/sys/fs/bpf" {
			return fmt.Errorf("%s is not on a BPF filesystem (mount -t bpf bpf DIR)", parent)
		}
		if err := unix.Mount("bpf", parent, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mounting a BPF filesystem on %s: %w", parent, err)
		}
		note("mounted a BPF filesystem on %s", parent)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pin directory: %w", err)
	}
	return nil
}

// IPNetnsExec returns the namespace name when running under `ip netns
// exec NAME`, which mounts a sysfs named NAME on /sys.
func IPNetnsExec() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	name := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[4] != "/sys" {
			continue
		}
		for i, fl := range fields {
			if fl == "-" && i+2 < len(fields) && fields[i+1] == "sysfs" {
				name = fields[i+2] // the last mount on /sys wins
			}
		}
	}
	if name == "" || name == "sysfs" || name == "none" {
		return ""
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
		return ""
	}
	return name
}
