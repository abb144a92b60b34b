package lbagent

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvs/bpffs"
)

// director supervises the gvsd of one load balancer: it starts it in the
// namespace (or adopts one already running), and restarts it with
// backoff when it dies, logging why.
type director struct {
	a  *Agent
	id string

	mu     sync.Mutex
	pid    int
	exited chan struct{} // closed when pid has exited
	starts int           // processes started

	stop chan struct{}
	done chan struct{}
}

// paths of a load balancer's files under the state root.
func (a *Agent) lbDir(id string) string    { return filepath.Join(a.opts.StateDir, id) }
func (a *Agent) socket(id string) string   { return filepath.Join(a.lbDir(id), "gvsd.sock") }
func (a *Agent) confPath(id string) string { return filepath.Join(a.lbDir(id), "gvsd.yaml") }
func (a *Agent) specPath(id string) string { return filepath.Join(a.lbDir(id), "spec.json") }
func (a *Agent) pidPath(id string) string  { return filepath.Join(a.lbDir(id), "gvsd.pid") }
func (a *Agent) logPath(id string) string  { return filepath.Join(a.lbDir(id), "gvsd.log") }

// PinDir is where load balancer id's gvsd pins its BPF maps and links.
func (a *Agent) PinDir(id string) string { return filepath.Join(a.opts.PinDir, id) }

// args are gvsd's arguments for load balancer id.
func (a *Agent) args(id string) []string {
	args := []string{"--socket", a.socket(id), "--state-dir", filepath.Join(a.lbDir(id), "state"),
		"--config", a.confPath(id), "--engine", a.opts.Engine}
	if a.opts.Engine == "xdp" {
		args = append(args, "--interface", nsIfName, "--bpf-pin-dir", a.PinDir(id),
			"--max-conns", strconv.Itoa(a.opts.MaxConns))
	}
	return append(args, a.opts.ExtraArgs...)
}

// newDirector starts supervising: adopting pid when it is not 0, else
// starting a gvsd.
func (a *Agent) newDirector(id string, pid int) *director {
	d := &director{a: a, id: id, stop: make(chan struct{}), done: make(chan struct{})}
	if pid != 0 {
		d.pid, d.exited = pid, watchPid(pid, a.socket(id))
	}
	go d.run()
	return d
}

func (d *director) run() {
	defer close(d.done)
	backoff := time.Second
	for {
		d.mu.Lock()
		exited, pid := d.exited, d.pid
		d.mu.Unlock()
		if exited == nil {
			var err error
			if pid, exited, err = d.start(); err != nil {
				d.a.log.Error("gvsd not started", "lb", d.id, "err", err)
			}
		}
		started := time.Now()
		if exited != nil {
			select {
			case <-d.stop:
				return
			case <-exited:
			}
			if time.Since(started) > time.Minute {
				backoff = time.Second
			}
			d.a.log.Error("gvsd exited; restarting it", "lb", d.id, "pid", pid, "ran", time.Since(started).Round(time.Millisecond),
				"in", backoff, "log", tail(d.a.logPath(d.id), 5))
		}
		d.mu.Lock()
		d.pid, d.exited = 0, nil
		d.mu.Unlock()
		select {
		case <-d.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// start runs gvsd in the namespace, its output appended to gvsd.log.
func (d *director) start() (int, chan struct{}, error) {
	a := d.a
	os.Remove(a.socket(d.id)) // a dead gvsd's
	if a.opts.Engine == "xdp" {
		if err := ensurePinRoot(a.opts.PinDir); err != nil {
			return 0, nil, err
		}
	}
	rotate(a.logPath(d.id), 4<<20)
	logf, err := os.OpenFile(a.logPath(d.id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	argv := append([]string{"--net=" + nsPath(d.id), a.opts.Gvsd}, a.args(d.id)...)
	cmd := exec.Command("nsenter", argv...)
	// A session of its own, and output to a file: a gvs-lbaas that stops
	// or restarts leaves it running (no SIGHUP from a terminal, no SIGPIPE
	// from a closed pipe).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		d.a.log.Info("gvsd exit status", "lb", d.id, "pid", pid, "status", fmt.Sprint(err))
		close(exited)
	}()
	os.WriteFile(a.pidPath(d.id), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	d.mu.Lock()
	d.pid, d.exited = pid, exited
	d.starts++
	d.mu.Unlock()
	a.log.Info("gvsd started", "lb", d.id, "pid", pid, "namespace", NamespaceName(d.id))
	return pid, exited, nil
}

// ensurePinRoot makes the root of the pin directories on a BPF
// filesystem (gvsd makes only its own directory), mounting one on
// /sys/fs/bpf when there is none, as gvsd and systemd would.
func ensurePinRoot(root string) error {
	if bpffs.On(root) {
		return nil
	}
	if !bpffs.On("/sys/fs/bpf") && strings.HasPrefix(root, "/sys/fs/bpf/") {
		if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mounting a BPF filesystem on /sys/fs/bpf: %w", err)
		}
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	if !bpffs.On(root) {
		return fmt.Errorf("pin directory %s is not on a BPF filesystem", root)
	}
	return nil
}

// current returns the running process, if any.
func (d *director) current() (int, chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pid, d.exited
}

// release stops supervising, leaving the process running.
func (d *director) release() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
}

// terminate stops supervising and stops the process: SIGTERM, then
// SIGKILL after grace.
func (d *director) terminate(grace time.Duration) {
	d.release()
	pid, exited := d.current()
	if pid == 0 {
		return
	}
	stopPid(pid, exited, grace)
}

func stopPid(pid int, exited chan struct{}, grace time.Duration) {
	unix.Kill(pid, unix.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	unix.Kill(pid, unix.SIGKILL)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
}

// isOurs reports whether pid is a gvsd serving socket (so a reused pid
// is not taken for it).
func isOurs(pid int, socket string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("\x00--socket\x00"+socket+"\x00"))
}

// runningPid returns the pid in the load balancer's pid file when that
// process is its gvsd, else 0.
func (a *Agent) runningPid(id string) int {
	b, err := os.ReadFile(a.pidPath(id))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isOurs(pid, a.socket(id)) {
		return 0
	}
	return pid
}

// watchPid returns a channel closed when pid (not a child) has exited
// or is no longer that gvsd.
func watchPid(pid int, socket string) chan struct{} {
	ch := make(chan struct{})
	go func() {
		for isOurs(pid, socket) {
			time.Sleep(250 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}

// pidsIn lists the processes in the network namespace mounted at path.
func pidsIn(path string) []int {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var ps unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &ps) == nil && ps.Ino == st.Ino && ps.Dev == st.Dev {
			out = append(out, pid)
		}
	}
	return out
}

// rotate moves a log larger than max to path.1.
func rotate(path string, max int64) {
	if st, err := os.Stat(path); err == nil && st.Size() > max {
		os.Rename(path, path+".1")
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
