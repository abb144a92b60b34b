package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// needRoot skips tests that build network namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (scripts/install-deps.sh)")
	}
}

// topo is an L2 segment (a bridge in its own namespace) with hosts
// attached by veth pairs, as a director, its clients and its real servers
// share a network in DR and TUN setups. Everything is removed when the
// test ends, even when it fails.
type topo struct {
	t      *testing.T
	prefix string
	hosts  map[string]string // name -> namespace
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	tp := &topo{t: t, prefix: "gvst" + hex.EncodeToString(b), hosts: map[string]string{}}
	t.Cleanup(tp.destroy)
	tp.mustRun("", "ip", "netns", "add", tp.prefix+"-sw")
	tp.mustRun(tp.prefix+"-sw", "ip", "link", "add", "br0", "type", "bridge")
	tp.mustRun(tp.prefix+"-sw", "ip", "link", "set", "br0", "up")
	return tp
}

func (tp *topo) destroy() {
	for _, ns := range tp.hosts {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "netns", "del", tp.prefix+"-sw").Run()
}

// host adds a namespace attached to the bridge by interface eth0 with the
// given address (CIDR). The switch side has GRO on so that frames a
// director sends with XDP_TX reach the bridge (veth needs NAPI on the
// peer); the host side has TX checksum offload off, as a real NIC would
// have filled the checksums in.
func (tp *topo) host(name, cidr string) string {
	ns := tp.prefix + "-" + name
	tp.hosts[name] = ns
	sw := tp.prefix + "-sw"
	port := "p-" + name
	tp.mustRun("", "ip", "netns", "add", ns)
	tp.mustRun("", "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
	tp.mustRun(sw, "ip", "link", "set", port, "master", "br0", "up")
	tp.mustRun(sw, "ethtool", "-K", port, "gro", "on")
	tp.mustRun(ns, "ip", "link", "set", "lo", "up")
	tp.mustRun(ns, "ip", "addr", "add", cidr, "dev", "eth0")
	tp.mustRun(ns, "ip", "link", "set", "eth0", "up")
	tp.mustRun(ns, "ethtool", "-K", "eth0", "tx", "off")
	return ns
}

func (tp *topo) ns(name string) string { return tp.hosts[name] }

// run runs a command in namespace ns ("" for the test's own).
func (tp *topo) run(ns string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return out.String(), fmt.Errorf("%s: timed out", strings.Join(args, " "))
	}
}

func (tp *topo) mustRun(ns string, args ...string) string {
	tp.t.Helper()
	out, err := tp.run(ns, args...)
	if err != nil {
		tp.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// start runs a long-lived command in namespace ns, stopped at cleanup.
func (tp *topo) start(ns string, args ...string) *exec.Cmd {
	tp.t.Helper()
	args = append([]string{"netns", "exec", ns}, args...)
	cmd := exec.Command("ip", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if tp.t.Failed() && out.Len() > 0 {
			tp.t.Logf("%s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	return cmd
}
