package vrrp

import (
	"context"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"gvs/check"
)

const defaultNotifyTimeout = 10 * time.Second

// command builds s's command line with args appended, as its user.
func command(ctx context.Context, s *Script, args ...string) (*exec.Cmd, error) {
	words, err := check.SplitCommand(s.Command)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errEmpty
	}
	words = append(words, args...)
	cmd := exec.CommandContext(ctx, words[0], words[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if s.User != "" {
		cred, err := credential(s.User, s.Group)
		if err != nil {
			return nil, err
		}
		cmd.SysProcAttr.Credential = cred
	}
	return cmd, nil
}

type scriptError string

func (e scriptError) Error() string { return string(e) }

const errEmpty = scriptError("empty command")

// runScript runs a notify script in the background (nil: nothing).
func (m *Manager) runScript(s *Script, args ...string) {
	if s == nil || s.Command == "" {
		return
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = defaultNotifyTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd, err := command(ctx, s, args...)
	if err != nil {
		cancel()
		m.log.Error("vrrp: notify script not run", "script", s.Command, "err", err)
		return
	}
	m.notify.Add(1)
	go func() {
		defer m.notify.Done()
		defer cancel()
		out, err := cmd.CombinedOutput()
		if err != nil {
			m.log.Warn("vrrp: notify script failed", "script", s.Command, "args", args, "err", err, "output", string(out))
			return
		}
		m.log.Debug("vrrp: notify script ran", "script", s.Command, "args", args)
	}()
}

// startScript runs a vrrp_script every interval and feeds its results
// to the loop.
func (m *Manager) startScript(def CheckScript) *scriptState {
	if def.Interval <= 0 {
		def.Interval = time.Second
	}
	if def.Timeout <= 0 {
		def.Timeout = def.Interval
	}
	def.Rise, def.Fall = max(def.Rise, 1), max(def.Fall, 1)
	s := &scriptState{def: def, stop: make(chan struct{})}
	if def.InitFail {
		s.known, s.up = true, false
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		t := time.NewTicker(def.Interval)
		defer t.Stop()
		for {
			ok := m.checkOnce(def)
			select {
			case m.events <- func() { m.scriptResult(s, ok) }:
			case <-s.stop:
				return
			case <-m.quit:
				return
			}
			select {
			case <-t.C:
			case <-s.stop:
				return
			case <-m.quit:
				return
			}
		}
	}()
	return s
}

func (m *Manager) checkOnce(def CheckScript) bool {
	ctx, cancel := context.WithTimeout(context.Background(), def.Timeout)
	defer cancel()
	sc := def.Script
	cmd, err := command(ctx, &sc)
	if err != nil {
		m.log.Error("vrrp: vrrp_script not run", "script", def.Name, "err", err)
		return false
	}
	return cmd.Run() == nil
}

// scriptResult applies rise and fall; the first result decides at once.
func (m *Manager) scriptResult(s *scriptState, ok bool) {
	if m.scripts[s.def.Name] != s {
		return // replaced or stopped
	}
	was, wasKnown := s.up, s.known
	if ok {
		s.good, s.bad = s.good+1, 0
	} else {
		s.good, s.bad = 0, s.bad+1
	}
	switch {
	case !s.known:
		s.known, s.up = true, ok
	case ok && !s.up && s.good >= s.def.Rise:
		s.up = true
	case !ok && s.up && s.bad >= s.def.Fall:
		s.up = false
	}
	if s.up != was || !wasKnown {
		m.log.Info("vrrp: vrrp_script", "script", s.def.Name, "up", s.up)
		m.recompute(time.Now())
	}
}

// credential looks up user (and group, default the user's).
func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if group != "" && group[0] != ':' {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
