package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"gvs/bpf"
)

// gvsd is the director under test: bin/gvsd --engine xdp on d0 and d1 of
// the director's namespace, entered with nsenter (ip netns exec would
// give it a private /sys without the BPF pins).
type gvsd struct {
	t      *topo
	bin    string
	state  string
	socket string
	pins   string
	cmd    *exec.Cmd
	log    bytes.Buffer
	// ifaces and maxConns are what gvsd runs on and its table's size
	// (newGvsd: d0 and d1, 2,097,152).
	ifaces   []string
	maxConns int
}

func newGvsd(t *topo, bin string) *gvsd {
	state, err := os.MkdirTemp("", "xdpbench-")
	if err != nil {
		fatal(err)
	}
	g := &gvsd{t: t, bin: bin, state: state, socket: filepath.Join(state, "gvsd.sock"), pins: "/sys/fs/bpf/" + t.prefix,
		ifaces: []string{"d0", "d1"}, maxConns: 2097152}
	cleanups = append(cleanups, func() { g.stop(); os.RemoveAll(state) })
	return g
}

func (g *gvsd) nsenter(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + g.t.dir}, args...)...)
}

// start runs a fresh gvsd: no rules, empty connection tables.
func (g *gvsd) start(extra ...string) {
	os.Remove(filepath.Join(g.state, "rules.json"))
	g.log.Reset()
	args := []string{filepath.Join(g.bin, "gvsd"), "--engine", "xdp"}
	for _, i := range g.ifaces {
		args = append(args, "--interface", i)
	}
	args = append(args, "--bpf-pin-dir", g.pins, "--state-dir", g.state, "--socket", g.socket,
		// Room for a second of new flows (the 1M-connection scale run asks for more).
		"--max-conns", fmt.Sprint(g.maxConns))
	args = append(args, extra...)
	g.cmd = g.nsenter(args...)
	g.cmd.Stdout, g.cmd.Stderr = &g.log, &g.log
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := g.adm("", "-L", "-n"); err == nil {
			return
		}
		// Up to a minute: the tables are preallocated at load, and 8M
		// entries (the 4M-connection scale run) take seconds.
		if i == 1200 {
			fatal(fmt.Errorf("gvsd did not come up:\n%s", g.log.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops gvsd and removes its program and pins (the next start has
// empty tables).
func (g *gvsd) stop() {
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	g.cmd = nil
	g.nsenter(filepath.Join(g.bin, "gvsd"), "--cleanup", "--bpf-pin-dir", g.pins).Run()
}

// adm runs gvsadm with stdin.
func (g *gvsd) adm(stdin string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(g.bin, "gvsadm"), append([]string{"--socket", g.socket}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("gvsadm %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// restore applies ipvsadm-save lines in one batch and returns how long
// it took.
func (g *gvsd) restore(rules string) time.Duration {
	start := time.Now()
	if _, err := g.adm(rules, "-R"); err != nil {
		fatal(err)
	}
	return time.Since(start)
}

// prog is the gvs program attached to d0 (for its run time), from
// gvsd's pinned link.
func (g *gvsd) prog() *ebpf.Program {
	l, err := link.LoadPinnedLink(filepath.Join(g.pins, "link_d0"), nil)
	if err != nil {
		return nil
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return nil
	}
	p, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		return nil
	}
	return p
}

// pinnedMap opens one of gvsd's maps.
func (g *gvsd) pinnedMap(name string) *ebpf.Map {
	m, err := ebpf.LoadPinnedMap(filepath.Join(g.pins, name), nil)
	if err != nil {
		fatal(err)
	}
	return m
}

// events sums the data path's event counters.
func (g *gvsd) events() map[string]uint64 {
	m := g.pinnedMap("events")
	defer m.Close()
	out := map[string]uint64{}
	for i, name := range bpf.EventNames {
		var per []uint64
		if m.Lookup(uint32(i), &per) != nil {
			continue
		}
		for _, v := range per {
			out[name] += v
		}
	}
	return out
}
