// Package e2e runs the real gvsd and gvsadm binaries: the proxy engine on
// loopback without privileges here, and the XDP engine in network
// namespaces where the test runs as root.
package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds gvsd and gvsadm once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gvs-e2e-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "gvs/cmd/gvsd", "gvs/cmd/gvsadm", "gvs/cmd/gvs-realserver", "gvs/cmd/gvs-lbaas").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// daemon is a running gvsd.
type daemon struct {
	t        *testing.T
	cmd      *exec.Cmd
	socket   string
	stateDir string
	log      *bytes.Buffer
	args     []string
	wrap     []string // command prefix, e.g. nsenter into a namespace
}

func startDaemon(t *testing.T, stateDir string, args ...string) *daemon {
	t.Helper()
	binaries(t)
	return startWrapped(t, stateDir, nil, args...)
}

// startWrapped starts gvsd under a command prefix (nsenter into a test
// namespace, say).
func startWrapped(t *testing.T, stateDir string, wrap []string, args ...string) *daemon {
	t.Helper()
	binaries(t)
	d := &daemon{t: t, socket: filepath.Join(t.TempDir(), "gvsd.sock"), stateDir: stateDir, log: &bytes.Buffer{}, args: args, wrap: wrap}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	args := append([]string{"--socket", d.socket, "--state-dir", d.stateDir}, d.args...)
	argv := append(append(append([]string{}, d.wrap...), filepath.Join(binDir, "gvsd")), args...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	// Loading and verifying the XDP program takes seconds of CPU; on a
	// loaded 2-core machine much longer.
	deadline := time.Now().Add(45 * time.Second)
	for {
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("gvsd did not come up:\n%s", d.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}

// kill stops gvsd the hard way, as a crash would.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	d.cmd = nil
}

// adm runs gvsadm and returns stdout, stderr and the exit status.
func (d *daemon) adm(stdin string, args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "gvsadm"), args...)
	cmd.Env = append(os.Environ(), "GVS_SOCKET="+d.socket)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// must runs gvsadm and fails the test unless it succeeds.
func (d *daemon) must(args ...string) string {
	d.t.Helper()
	out, errs, code := d.adm("", args...)
	if code != 0 {
		d.t.Fatalf("gvsadm %s: exit %d: %s\ngvsd log:\n%s", strings.Join(args, " "), code, errs, d.log)
	}
	return out
}
