package health

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gvs/check"
)

// scriptRunner runs notify and quorum scripts.
type scriptRunner interface {
	run(*Script) // nil: nothing to run
	wait()       // for the scripts started so far
}

// execScripts runs each script in the background, without a shell, as
// its user when given, killed after its timeout (default 10 s).
type execScripts struct {
	log *slog.Logger
	wg  *sync.WaitGroup
}

const defaultScriptTimeout = 10 * time.Second

func (e execScripts) run(s *Script) {
	if s == nil || s.Command == "" {
		return
	}
	args, err := check.SplitCommand(s.Command)
	if err != nil || len(args) == 0 {
		e.log.Error("notify script not run", "script", s.Command, "err", err)
		return
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = defaultScriptTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that left the group and holds the output does not
	// keep the script (and gvsd's shutdown) waiting.
	cmd.WaitDelay = 2 * time.Second
	if s.User != "" {
		cred, err := credential(s.User, s.Group)
		if err != nil {
			cancel()
			e.log.Error("notify script not run", "script", s.Command, "err", err)
			return
		}
		cmd.SysProcAttr.Credential = cred
	}
	if e.wg != nil {
		e.wg.Add(1)
	}
	go func() {
		defer cancel()
		if e.wg != nil {
			defer e.wg.Done()
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			e.log.Warn("notify script failed", "script", s.Command, "err", err, "output", string(out))
			return
		}
		e.log.Info("notify script ran", "script", s.Command)
	}()
}

func (e execScripts) wait() {
	if e.wg != nil {
		e.wg.Wait()
	}
}

// credential looks up user (and group, default the user's) for
// SysProcAttr.Credential.
func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// isLocalAddr says whether a is an address of this host (ha_suspend).
func isLocalAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: do not suspend
	}
	for _, x := range addrs {
		if n, ok := x.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}
